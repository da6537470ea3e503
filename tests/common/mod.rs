//! Shared harness for the OCI runtime end-to-end tests (`tests/runtime_*.rs`).
//!
//! Owns: choosing the runtime under test, per-test temp dirs (`--root` state dir and bundles),
//! unique container ids and cgroup paths, building busybox bundles with a `runc spec`-equivalent
//! config.json, wrappers for every runc verb (each with a deadline, so a hang fails a test
//! instead of stalling the suite), and cleanup of everything a test created.
//!
//! Which runtime runs: `BERTH_TEST_RUNTIME` (e.g. `runc`, `crun`, a path) if set, invoked as
//! `RUNTIME --root DIR VERB ...`; otherwise the `berth` binary of this package, invoked as
//! `berth runtime --root DIR VERB ...`.
//!
//! Every test file does `mod common;` and starts with `if !common::require_root() { return; }`.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Deadline for one runtime command unless a test asks for another.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

static ENV_COUNTER: AtomicUsize = AtomicUsize::new(0);
static IO_COUNTER: AtomicUsize = AtomicUsize::new(0);

// ---------------------------------------------------------------------------------------------
// Which runtime, skips
// ---------------------------------------------------------------------------------------------

/// The program to execute and the arguments that precede the global flags
/// (`["runtime"]` for berth, nothing for an external runtime).
pub fn runtime_program() -> (PathBuf, Vec<OsString>) {
    if let Some(rt) = std::env::var_os("BERTH_TEST_RUNTIME").filter(|v| !v.is_empty()) {
        return (resolve_in_path(&rt), Vec::new());
    }
    match option_env!("CARGO_BIN_EXE_berth") {
        Some(b) => (PathBuf::from(b), vec![OsString::from("runtime")]),
        None => panic!(
            "no runtime to test: set BERTH_TEST_RUNTIME (e.g. runc) or build these tests as \
             targets of the berth package"
        ),
    }
}

/// Short name of the runtime under test: "runc", "crun", … or "berth".
pub fn runtime_name() -> String {
    match std::env::var_os("BERTH_TEST_RUNTIME").filter(|v| !v.is_empty()) {
        Some(rt) => Path::new(&rt)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| rt.to_string_lossy().into_owned()),
        None => "berth".to_string(),
    }
}

/// True when the runtime under test is runc (some runc-only verbs, e.g. `events`).
pub fn is_runc() -> bool {
    runtime_name() == "runc"
}

fn resolve_in_path(prog: &OsStr) -> PathBuf {
    let p = Path::new(prog);
    if p.components().count() > 1 {
        return p.to_path_buf();
    }
    which(&prog.to_string_lossy()).unwrap_or_else(|| p.to_path_buf())
}

/// Finds `name` in $PATH (plus the sbin dirs, which a non-login root shell may lack).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// Returns false (and says why) when the test must be skipped because it is not run as root.
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("SKIP: this test needs root (it creates namespaces, mounts and cgroups)");
        false
    }
}

/// Returns false (and says why) when a peer tool the test needs is missing.
pub fn require_tool(name: &str) -> bool {
    if which(name).is_some() {
        true
    } else {
        eprintln!("SKIP: this test needs `{name}` on the host");
        false
    }
}

// ---------------------------------------------------------------------------------------------
// The config.json template
// ---------------------------------------------------------------------------------------------

/// What `runc spec` writes, except `process.terminal` is false.
pub fn spec_template() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps.clone(),
                "effective": caps.clone(),
                "permitted": caps.clone(),
                "ambient": caps
            },
            "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runc",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// Every capability this kernel knows (for specs that want a fully privileged process).
pub fn all_caps() -> Vec<String> {
    let last: u32 = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    (0..=last)
        .filter_map(cap_name)
        .map(str::to_string)
        .collect()
}

/// The name of capability number `n`.
pub fn cap_name(n: u32) -> Option<&'static str> {
    const NAMES: [&str; 41] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    NAMES.get(n as usize).copied()
}

/// Bitmask of a capability list, as /proc/PID/status prints it (CapEff, CapBnd, …).
pub fn cap_mask<S: AsRef<str>>(caps: &[S]) -> u64 {
    let mut mask = 0u64;
    for c in caps {
        let n = (0..64u32)
            .find(|&n| cap_name(n) == Some(c.as_ref()))
            .unwrap_or_else(|| panic!("unknown capability {}", c.as_ref()));
        mask |= 1 << n;
    }
    mask
}

/// The capabilities the host (this test process) has in its bounding set.
pub fn host_bounding_caps() -> Vec<String> {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string();
    let mask = u64::from_str_radix(&hex, 16).unwrap();
    (0..64u32)
        .filter(|n| mask & (1 << n) != 0)
        .filter_map(cap_name)
        .map(str::to_string)
        .collect()
}

// --- small spec editors ------------------------------------------------------------------------

/// Sets `process.args`.
pub fn set_args(spec: &mut Value, args: &[&str]) {
    spec["process"]["args"] = json!(args);
}

/// Sets `process.args` to `sh -c SCRIPT`.
pub fn sh(spec: &mut Value, script: &str) {
    set_args(spec, &["sh", "-c", script]);
}

/// Appends a mount.
pub fn add_mount(spec: &mut Value, dest: &str, typ: &str, source: &str, options: &[&str]) {
    spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": dest, "type": typ, "source": source, "options": options
    }));
}

/// Bind-mounts a host directory (or file) into the container.
pub fn bind(spec: &mut Value, host: &Path, dest: &str, readonly: bool) {
    let mut opts = vec!["bind"];
    if readonly {
        opts.push("ro");
    }
    add_mount(spec, dest, "bind", host.to_str().unwrap(), &opts);
}

/// Adds a tmpfs at `/tmp` (the template's root is read-only).
pub fn tmpfs_tmp(spec: &mut Value) {
    add_mount(
        spec,
        "/tmp",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "mode=1777"],
    );
}

/// Removes a namespace (by type) from `linux.namespaces`.
pub fn remove_namespace(spec: &mut Value, typ: &str) {
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != typ);
}

/// Adds (or replaces) a namespace, optionally joining the one at `path`.
pub fn set_namespace(spec: &mut Value, typ: &str, path: Option<&str>) {
    remove_namespace(spec, typ);
    let mut ns = json!({ "type": typ });
    if let Some(p) = path {
        ns["path"] = json!(p);
    }
    spec["linux"]["namespaces"].as_array_mut().unwrap().push(ns);
}

/// Sets all five capability sets of the process to `caps`.
pub fn set_caps<S: AsRef<str>>(spec: &mut Value, caps: &[S]) {
    let list: Vec<&str> = caps.iter().map(|c| c.as_ref()).collect();
    for set in [
        "bounding",
        "effective",
        "permitted",
        "ambient",
        "inheritable",
    ] {
        spec["process"]["capabilities"][set] = json!(list);
    }
}

// ---------------------------------------------------------------------------------------------
// Running commands with a deadline
// ---------------------------------------------------------------------------------------------

/// The result of one runtime (or other) command.
#[derive(Debug, Clone)]
pub struct Out {
    /// Exit code; 128+N when killed by signal N.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Files the command's stdout/stderr went to; processes it left behind (a created
    /// container's init) keep writing there.
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    /// The command line, for messages.
    pub cmdline: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// Panics with the whole record unless the command succeeded.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(self.ok(), "command failed, expected success:\n{self}");
        self
    }

    /// Panics with the whole record unless the command failed.
    #[track_caller]
    pub fn assert_fail(&self) -> &Self {
        assert!(!self.ok(), "command succeeded, expected failure:\n{self}");
        self
    }

    /// Panics unless the exit code is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code:\n{self}");
        self
    }

    /// stdout followed by stderr.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// stdout/stderr as they are now (a container may have written more since).
    pub fn reread(&self) -> (String, String) {
        (read_lossy(&self.stdout_path), read_lossy(&self.stderr_path))
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "  $ {}\n  exit code: {}\n  stdout: {:?}\n  stderr: {:?}",
            self.cmdline, self.code, self.stdout, self.stderr
        )
    }
}

/// Reads a file as text, empty if missing.
pub fn read_lossy(p: &Path) -> String {
    fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` with stdin from /dev/null and stdout/stderr into fresh files under `io_dir`,
/// waiting at most `timeout`. Err on spawn failure or when the deadline passes (the command is
/// then killed).
pub fn try_output(mut cmd: Command, timeout: Duration, io_dir: &Path) -> Result<Out, String> {
    let n = IO_COUNTER.fetch_add(1, Ordering::SeqCst);
    let stdout_path = io_dir.join(format!("{n}.out"));
    let stderr_path = io_dir.join(format!("{n}.err"));
    let cmdline = describe(&cmd);
    let so = fs::File::create(&stdout_path).map_err(|e| format!("{stdout_path:?}: {e}"))?;
    let se = fs::File::create(&stderr_path).map_err(|e| format!("{stderr_path:?}: {e}"))?;
    cmd.stdout(so).stderr(se);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `{cmdline}`: {e}"))?;
    let deadline = Instant::now() + timeout;
    let mut nap = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for `{cmdline}`: {e}")),
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "`{cmdline}` did not finish within {timeout:?} (killed)\n  stdout: {:?}\n  stderr: {:?}",
                read_lossy(&stdout_path),
                read_lossy(&stderr_path)
            ));
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(Out {
        code,
        stdout: read_lossy(&stdout_path),
        stderr: read_lossy(&stderr_path),
        stdout_path,
        stderr_path,
        cmdline,
    })
}

/// Polls `cond` until it is true or `timeout` passes; returns whether it became true.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the file at `path` contains `needle`; returns its content (panics on timeout).
#[track_caller]
pub fn wait_file_contains(path: &Path, needle: &str, timeout: Duration) -> String {
    let mut last = String::new();
    if wait_until(timeout, || {
        last = read_lossy(path);
        last.contains(needle)
    }) {
        last
    } else {
        panic!("{path:?} did not come to contain {needle:?} within {timeout:?}; it holds {last:?}")
    }
}

/// Whether a process exists (and is not a zombie).
pub fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // state is the field after the ")" that closes the comm
            let st = s
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start())
                .unwrap_or("");
            !st.starts_with('Z') && !st.starts_with('X')
        }
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Host inspection: cgroups, mounts
// ---------------------------------------------------------------------------------------------

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone)]
pub struct MountInfo {
    pub root: String,
    pub mount_point: String,
    pub fs_type: String,
    pub source: String,
    pub super_options: String,
    pub line: String,
}

/// Parses /proc/self/mountinfo.
pub fn mountinfo() -> Vec<MountInfo> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(MountInfo {
                root: unescape_mount(l.get(3)?),
                mount_point: unescape_mount(l.get(4)?),
                fs_type: r.first()?.to_string(),
                source: r.get(1).unwrap_or(&"").to_string(),
                super_options: r.get(2).unwrap_or(&"").to_string(),
                line: line.to_string(),
            })
        })
        .collect()
}

fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Host mounts whose mount point or root mentions `path`.
pub fn mounts_mentioning(path: &Path) -> Vec<String> {
    let p = path.to_string_lossy();
    mountinfo()
        .into_iter()
        .filter(|m| m.mount_point.contains(&*p) || m.root.contains(&*p))
        .map(|m| m.line)
        .collect()
}

/// Mount points of the host's cgroup hierarchies (v1 controllers and cgroup2).
pub fn cgroup_mount_points() -> Vec<PathBuf> {
    mountinfo()
        .into_iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .map(|m| PathBuf::from(m.mount_point))
        .collect()
}

/// Mount point of the v1 hierarchy holding `controller` (e.g. "memory", "cpu", "pids"),
/// or of the cgroup2 hierarchy when the host is pure v2.
pub fn cgroup_mount_for(controller: &str) -> Option<PathBuf> {
    let mi = mountinfo();
    mi.iter()
        .find(|m| m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == controller))
        .or_else(|| {
            mi.iter()
                .find(|m| m.fs_type == "cgroup2" && m.mount_point == "/sys/fs/cgroup")
        })
        .map(|m| PathBuf::from(&m.mount_point))
}

/// The host path of `file` in a container's cgroup for `controller`.
pub fn cgroup_file(controller: &str, cgroups_path: &str, file: &str) -> PathBuf {
    cgroup_mount_for(controller)
        .unwrap_or_else(|| panic!("no cgroup hierarchy with controller {controller}"))
        .join(cgroups_path.trim_start_matches('/'))
        .join(file)
}

/// The cgroup directories for `cgroups_path` that exist, across all hierarchies.
pub fn cgroup_dirs(cgroups_path: &str) -> Vec<PathBuf> {
    cgroup_mount_points()
        .into_iter()
        .map(|m| m.join(cgroups_path.trim_start_matches('/')))
        .filter(|p| p.is_dir())
        .collect()
}

/// Cgroup directories named `name` anywhere up to three levels under a hierarchy's root
/// (a runtime's default cgroup sits under the caller's own cgroup, e.g. /a/b/ID).
pub fn cgroup_dirs_named(name: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, name: &str, depth: u32, found: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if !ft.is_dir() {
                continue;
            }
            if e.file_name() == name {
                found.push(e.path());
            }
            if depth > 1 {
                walk(&e.path(), name, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    for m in cgroup_mount_points() {
        walk(&m, name, 3, &mut found);
    }
    found
}

/// Kills every process in a cgroup subtree (thawing a frozen one first) and removes it.
/// Best effort, never panics: used from Drop.
fn remove_cgroup_tree(dir: &Path) {
    if !dir.is_dir() {
        return;
    }
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = fs::write(dir.join("freezer.state"), "THAWED");
    let _ = fs::write(dir.join("cgroup.freeze"), "0");
    for _ in 0..50 {
        let procs = read_lossy(&dir.join("cgroup.procs"));
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: plain kill(2) on a pid read from this test's own cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A network namespace made with `ip netns add`, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `ip netns add NAME` (panics if that fails).
    pub fn new(name: &str) -> Netns {
        let st = Command::new(which("ip").expect("ip"))
            .args(["netns", "add", name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name} failed");
        Netns {
            name: name.to_string(),
        }
    }

    /// `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// Runs `ip -n NAME ARGS…` and asserts it worked.
    pub fn ip(&self, args: &[&str]) {
        let out = Command::new(which("ip").expect("ip"))
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip -n {} {:?}: {}",
            self.name,
            args,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(ip) = which("ip") {
            let _ = Command::new(ip)
                .args(["netns", "del", &self.name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Console socket (terminal: true)
// ---------------------------------------------------------------------------------------------

/// A unix socket a runtime sends a pty master to (`--console-socket PATH`).
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: std::os::unix::net::UnixListener,
}

impl ConsoleSocket {
    /// Listens on `path`.
    pub fn bind(path: &Path) -> ConsoleSocket {
        let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
        listener.set_nonblocking(true).unwrap();
        ConsoleSocket {
            path: path.to_path_buf(),
            listener,
        }
    }

    /// Accepts one connection and receives the fd it carries (SCM_RIGHTS), within `timeout`.
    #[track_caller]
    pub fn recv_fd(&self, timeout: Duration) -> std::os::fd::OwnedFd {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        use std::os::fd::{AsRawFd, FromRawFd};
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        Instant::now() < deadline,
                        "no connection on the console socket within {timeout:?}"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept on console socket: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 4096];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .expect("recvmsg on the console socket");
        for c in msg.cmsgs().expect("control messages") {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(&fd) = fds.first() {
                    for &extra in &fds[1..] {
                        // SAFETY: fds received just now are ours to close.
                        drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(extra) });
                    }
                    // SAFETY: the fd was just received through SCM_RIGHTS and is owned by us.
                    return unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
                }
            }
        }
        panic!("the console socket message carried no fd");
    }
}

/// Reads a pty master until the other side is gone (EIO/EOF) or `timeout` passes.
pub fn read_pty(master: &std::os::fd::OwnedFd, timeout: Duration) -> String {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        let ms =
            PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, ms) {
            Ok(0) => break,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(master), &mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
            Err(_) => break, // EIO: slave side closed
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes all of `data` to a pty master.
pub fn write_pty(master: &std::os::fd::OwnedFd, data: &[u8]) {
    use std::os::fd::AsFd;
    let mut off = 0;
    while off < data.len() {
        off += nix::unistd::write(master.as_fd(), &data[off..]).expect("write to pty");
    }
}

// ---------------------------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------------------------

/// An OCI bundle made for one container id.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory (holds config.json and rootfs/).
    pub dir: PathBuf,
    /// The container id this bundle was made for.
    pub id: String,
    /// `linux.cgroupsPath` written into its config (unless the tweak removed it).
    pub cgroups_path: String,
}

impl Bundle {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// The current config.json.
    pub fn spec(&self) -> Value {
        serde_json::from_str(&fs::read_to_string(self.config_path()).unwrap()).unwrap()
    }

    /// Rewrites config.json through `tweak`.
    pub fn edit(&self, tweak: impl FnOnce(&mut Value)) {
        let mut v = self.spec();
        tweak(&mut v);
        fs::write(self.config_path(), serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }

    /// Host dirs of this bundle's cgroup that still exist.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        cgroup_dirs(&self.cgroups_path)
    }
}

fn busybox_applets() -> &'static [String] {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .expect("/bin/busybox (busybox-static) is needed to build test bundles");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty() && l != "busybox" && !l.contains('/'))
            .collect()
    })
}

/// Fills `rootfs` with a static busybox, its applets, and a minimal /etc.
pub fn build_rootfs(rootfs: &Path) {
    for d in [
        "bin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/u1000",
        "mnt",
        "run",
        "var",
    ] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for a in busybox_applets() {
        let _ = symlink("busybox", rootfs.join("bin").join(a));
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
         u1000:x:1000:1000:u1000:/home/u1000:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\ntty:x:5:\nnobody:x:65534:\nu1000:x:1000:\n",
    )
    .unwrap();
    std::os::unix::fs::chown(rootfs.join("home/u1000"), Some(1000), Some(1000)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The per-test environment
// ---------------------------------------------------------------------------------------------

/// One test's world: a temp dir with the runtime's `--root`, bundles, and command output.
/// On drop: `delete --force` every container id it handed out, kill and remove its cgroups,
/// unmount anything left under its dir, remove the dir.
pub struct TestEnv {
    tmp: Option<tempfile::TempDir>,
    /// The temp dir (mode 0755 so user-namespaced containers can traverse it).
    pub dir: PathBuf,
    /// The runtime's `--root` state directory.
    pub root: PathBuf,
    io: PathBuf,
    tag: String,
    /// Parent of every cgroupsPath this env hands out: "/berth-e2e-<tag>".
    pub cgroup_parent: String,
    ids: Mutex<Vec<String>>,
    seq: AtomicUsize,
}

impl TestEnv {
    /// A fresh environment; `name` (short, [a-z0-9-]) goes into ids and paths.
    pub fn new(name: &str) -> TestEnv {
        let n = ENV_COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{name}-{}-{n}", std::process::id());
        let tmp = tempfile::Builder::new()
            .prefix(&format!("berth-e2e-{tag}-"))
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.join("state");
        let io = dir.join("io");
        fs::create_dir_all(&io).unwrap();
        // --root is left for the runtime to create, like a first run on a clean host.
        TestEnv {
            tmp: Some(tmp),
            dir,
            root,
            io,
            cgroup_parent: format!("/berth-e2e-{tag}"),
            tag,
            ids: Mutex::new(Vec::new()),
            seq: AtomicUsize::new(0),
        }
    }

    /// A new unique container id (remembered for cleanup).
    pub fn new_id(&self) -> String {
        let k = self.seq.fetch_add(1, Ordering::SeqCst);
        let id = format!("bt-{}-{k}", self.tag);
        self.ids.lock().unwrap().push(id.clone());
        id
    }

    /// A fresh scratch directory under the env dir.
    pub fn mkdir(&self, name: &str) -> PathBuf {
        let p = self.dir.join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }

    /// Builds a busybox bundle for a new id: the `runc spec` template with terminal=false and
    /// a unique `linux.cgroupsPath`, then `tweak`.
    pub fn bundle(&self, tweak: impl FnOnce(&mut Value)) -> Bundle {
        let id = self.new_id();
        let dir = self.dir.join(format!("bundle-{id}"));
        build_rootfs(&dir.join("rootfs"));
        let cgroups_path = format!("{}/{id}", self.cgroup_parent);
        let mut spec = spec_template();
        spec["linux"]["cgroupsPath"] = json!(cgroups_path);
        tweak(&mut spec);
        fs::write(
            dir.join("config.json"),
            serde_json::to_vec_pretty(&spec).unwrap(),
        )
        .unwrap();
        Bundle {
            dir,
            id,
            cgroups_path,
        }
    }

    /// A `berth-runtime`-named path (symlink in the env dir) to the runtime under test, for
    /// clients that take one binary path. For berth, it invokes the runtime by argv[0];
    /// an external runtime ignores its name.
    pub fn berth_runtime_path(&self) -> PathBuf {
        let (prog, _) = runtime_program();
        let bin = self.dir.join("bin");
        fs::create_dir_all(&bin).unwrap();
        let link = bin.join("berth-runtime");
        if !link.exists() {
            symlink(&prog, &link).unwrap();
        }
        link
    }

    /// `RUNTIME [runtime] --root ROOT ARGS…` as a Command (stdin null), not yet run.
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let (prog, pre) = runtime_program();
        let mut c = Command::new(prog);
        c.args(pre).arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs any command with a deadline, output captured into this env's io dir.
    #[track_caller]
    pub fn output_of(&self, cmd: Command, timeout: Duration) -> Out {
        try_output(cmd, timeout, &self.io).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs the runtime with `args` (after `--root`), default deadline.
    #[track_caller]
    pub fn rt<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        self.output_of(self.command(args), DEFAULT_TIMEOUT)
    }

    /// Like [`rt`](Self::rt) with a custom deadline.
    #[track_caller]
    pub fn rt_timeout<S: AsRef<OsStr>>(&self, args: &[S], timeout: Duration) -> Out {
        self.output_of(self.command(args), timeout)
    }

    // --- verbs ---------------------------------------------------------------------------------

    /// `run --bundle DIR ID` in the foreground; returns when the container exits.
    #[track_caller]
    pub fn run(&self, b: &Bundle) -> Out {
        self.run_id(b, &b.id)
    }

    /// `run --bundle DIR ID` with another id.
    #[track_caller]
    pub fn run_id(&self, b: &Bundle, id: &str) -> Out {
        self.rt(&[
            OsStr::new("run"),
            "--bundle".as_ref(),
            b.dir.as_os_str(),
            id.as_ref(),
        ])
    }

    /// `run -d --bundle DIR ID`.
    #[track_caller]
    pub fn run_detached(&self, b: &Bundle) -> Out {
        self.rt(&[
            OsStr::new("run"),
            "-d".as_ref(),
            "--bundle".as_ref(),
            b.dir.as_os_str(),
            b.id.as_ref(),
        ])
    }

    /// `create --bundle DIR ID`.
    #[track_caller]
    pub fn create(&self, b: &Bundle) -> Out {
        self.create_with(b, &b.id, &[])
    }

    /// `create --bundle DIR EXTRA… ID`.
    #[track_caller]
    pub fn create_with(&self, b: &Bundle, id: &str, extra: &[&str]) -> Out {
        let mut args: Vec<OsString> =
            vec!["create".into(), "--bundle".into(), b.dir.clone().into()];
        args.extend(extra.iter().map(OsString::from));
        args.push(id.into());
        self.rt(&args)
    }

    #[track_caller]
    pub fn start(&self, id: &str) -> Out {
        self.rt(&["start", id])
    }

    #[track_caller]
    pub fn state(&self, id: &str) -> Out {
        self.rt(&["state", id])
    }

    /// `state ID` parsed (panics unless it succeeds and prints JSON).
    #[track_caller]
    pub fn state_json(&self, id: &str) -> Value {
        let out = self.state(id);
        out.assert_ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state output is not JSON ({e}):\n{out}"))
    }

    /// The `status` field of `state ID`.
    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        self.state_json(id)["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The `pid` field of `state ID`.
    #[track_caller]
    pub fn pid(&self, id: &str) -> i32 {
        self.state_json(id)["pid"].as_i64().unwrap_or(0) as i32
    }

    /// Polls `state` until the status is `want`; returns whether it got there.
    pub fn wait_status(&self, id: &str, want: &str, timeout: Duration) -> bool {
        wait_until(timeout, || {
            let out = self.state(id);
            out.ok()
                && serde_json::from_str::<Value>(&out.stdout)
                    .map(|v| v["status"] == want)
                    .unwrap_or(false)
        })
    }

    #[track_caller]
    pub fn kill(&self, id: &str, sig: &str) -> Out {
        self.rt(&["kill", id, sig])
    }

    #[track_caller]
    pub fn kill_all(&self, id: &str, sig: &str) -> Out {
        self.rt(&["kill", "--all", id, sig])
    }

    #[track_caller]
    pub fn delete(&self, id: &str) -> Out {
        self.rt(&["delete", id])
    }

    #[track_caller]
    pub fn delete_force(&self, id: &str) -> Out {
        self.rt(&["delete", "--force", id])
    }

    /// `exec ID CMD…`.
    #[track_caller]
    pub fn exec(&self, id: &str, cmd: &[&str]) -> Out {
        self.exec_with(&[], id, cmd)
    }

    /// `exec FLAGS… ID CMD…`.
    #[track_caller]
    pub fn exec_with(&self, flags: &[&str], id: &str, cmd: &[&str]) -> Out {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.push(id);
        args.extend_from_slice(cmd);
        self.rt(&args)
    }

    /// `ps FLAGS… ID`.
    #[track_caller]
    pub fn ps(&self, flags: &[&str], id: &str) -> Out {
        let mut args = vec!["ps"];
        args.extend_from_slice(flags);
        args.push(id);
        self.rt(&args)
    }

    /// `list FLAGS…`.
    #[track_caller]
    pub fn list(&self, flags: &[&str]) -> Out {
        let mut args = vec!["list"];
        args.extend_from_slice(flags);
        self.rt(&args)
    }

    #[track_caller]
    pub fn pause(&self, id: &str) -> Out {
        self.rt(&["pause", id])
    }

    #[track_caller]
    pub fn resume(&self, id: &str) -> Out {
        self.rt(&["resume", id])
    }

    /// Whether the runtime's state dir still has an entry for `id`.
    pub fn state_dir_exists(&self, id: &str) -> bool {
        self.root.join(id).exists()
    }

    /// Asserts nothing is left of container `id` made from bundle `b`: no state entry, no cgroup
    /// dirs, no host mount mentioning the bundle.
    #[track_caller]
    pub fn assert_no_leftovers(&self, b: &Bundle, id: &str) {
        assert!(
            !self.state_dir_exists(id),
            "state dir {:?} left behind",
            self.root.join(id)
        );
        let left = b.cgroup_dirs();
        assert!(
            left.is_empty(),
            "cgroup dirs left behind for {id}: {left:?}"
        );
        let named = cgroup_dirs_named(id);
        assert!(
            named.is_empty(),
            "cgroup dirs named {id} left behind: {named:?}"
        );
        let mounts = mounts_mentioning(&b.dir);
        assert!(
            mounts.is_empty(),
            "host mounts of the bundle left behind: {mounts:#?}"
        );
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let ids: Vec<String> = self.ids.lock().map(|g| g.clone()).unwrap_or_default();
        for id in ids.iter().rev() {
            if self.root.join(id).exists() {
                let _ = try_output(
                    self.command(&["delete", "--force", id]),
                    Duration::from_secs(20),
                    &self.io,
                );
            }
        }
        for m in cgroup_mount_points() {
            remove_cgroup_tree(&m.join(self.cgroup_parent.trim_start_matches('/')));
        }
        // Cgroups a runtime named after a container id (no cgroupsPath in the spec).
        for id in &ids {
            for dir in cgroup_dirs_named(id) {
                remove_cgroup_tree(&dir);
            }
        }
        // Anything still mounted under our dir (a runtime bug) would make removal fail.
        let dir = self.dir.to_string_lossy().into_owned();
        let mut left: Vec<String> = mountinfo()
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|mp| mp.starts_with(&dir))
            .collect();
        left.reverse();
        for mp in left {
            let _ = nix::mount::umount2(mp.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        drop(self.tmp.take());
    }
}
