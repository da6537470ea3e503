//! Shared harness for the image end-to-end tests (`tests/images_*.rs`): they drive the real
//! `berth` binary Cargo built (`$BERTH_TEST_BIN` overrides it) against real registries
//! (Debian's `docker-registry`), skopeo and a private dockerd.
//!
//! [`Sandbox`] owns one test's world: a temp dir under /tmp holding the berth data roots,
//! berth's and docker's credential dirs, the registries' storage, dockerd's data and every
//! command's output (logs/). Dropping it tears everything down, also when an assertion failed:
//! teardown hooks (`docker rm -f`), daemons stopped (SIGTERM, then SIGKILL of the process
//! group), stray processes whose command line names the temp dir killed (containerd, shims),
//! containers berth's runtime may still know deleted (`berth runtime --root DR/runtime delete
//! --force`), the private cgroup parent emptied and removed, every mount below the temp dir
//! detached, files registered with [`Sandbox::remove_on_drop`] removed, and the temp dir
//! removed.
//!
//! A test that cannot run here (not root, a tool missing) prints `SKIP <test>: <why>` and
//! passes. Each sandbox has a unique lowercase token ([`Sandbox::uniq`]) for image names, tags
//! and cgroups, so the tests can run in parallel.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// How long one command may take before it is killed and reported as timed out.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(45);

/// The `berth` binary under test.
pub fn berth_bin() -> PathBuf {
    match std::env::var_os("BERTH_TEST_BIN").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_berth")),
    }
}

/// A finished (or timed-out) command.
pub struct Out {
    pub desc: String,
    /// None: timed out and killed, or could not be started.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Out {
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.status {
            None => "did not finish (timed out or failed to start)".to_string(),
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exit {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => format!("{s}"),
            },
        };
        write!(
            f,
            "`{}` -> {status} after {:.2?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.desc,
            self.elapsed,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
}

type TeardownHook = Box<dyn FnOnce(&Sandbox)>;

/// One test's private world. Dropping it removes everything the test started or created.
pub struct Sandbox {
    dir: Option<tempfile::TempDir>,
    /// Canonical path of the temp dir.
    pub root: PathBuf,
    /// Short lowercase token unique to this sandbox, for names, tags and cgroups.
    pub uniq: String,
    /// The berth binary under test.
    pub berth: PathBuf,
    /// berth's credentials dir (`BERTH_CONFIG`).
    pub berth_config: PathBuf,
    /// Docker's credentials dir as berth sees it (`DOCKER_CONFIG`, read-only for berth).
    pub docker_config: PathBuf,
    /// Cgroup parent of the private dockerd's containers.
    pub cgroup_parent: String,
    test: String,
    seq: Cell<u32>,
    daemons: RefCell<Vec<Daemon>>,
    hooks: RefCell<Vec<TeardownHook>>,
    data_roots: RefCell<Vec<PathBuf>>,
    extra_files: RefCell<Vec<PathBuf>>,
    busybox_tar: RefCell<Option<PathBuf>>,
}

impl Sandbox {
    /// A fresh sandbox, or None (after printing why) when the test cannot run here. `tools`
    /// must all be installed (looked up in PATH and the sbin/bin dirs).
    pub fn new(test: &str, tools: &[&str]) -> Option<Sandbox> {
        if !nix::unistd::geteuid().is_root() {
            skip(test, "needs root");
            return None;
        }
        let missing: Vec<&str> = tools
            .iter()
            .copied()
            .filter(|t| find_tool(t).is_none())
            .collect();
        if !missing.is_empty() {
            skip(test, &format!("not installed: {}", missing.join(", ")));
            return None;
        }
        let berth = berth_bin();
        if !is_executable(&berth) {
            skip(
                test,
                &format!(
                    "no berth binary at {} (set BERTH_TEST_BIN)",
                    berth.display()
                ),
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-img-")
            .tempdir_in("/tmp")
            .unwrap();
        let root = dir.path().canonicalize().unwrap();
        let token = root.file_name().unwrap().to_string_lossy().into_owned();
        let uniq = token
            .trim_start_matches("berth-img-")
            .to_ascii_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "x");
        for d in ["logs", "berth-config", "docker-config", "home", "tmp"] {
            fs::create_dir(root.join(d)).unwrap();
        }
        eprintln!(
            "{test}: berth {}, sandbox {}",
            berth.display(),
            root.display()
        );
        Some(Sandbox {
            dir: Some(dir),
            berth_config: root.join("berth-config"),
            docker_config: root.join("docker-config"),
            cgroup_parent: format!("/berth-img-{uniq}"),
            root,
            uniq,
            berth,
            test: test.to_string(),
            seq: Cell::new(0),
            daemons: RefCell::new(Vec::new()),
            hooks: RefCell::new(Vec::new()),
            data_roots: RefCell::new(Vec::new()),
            extra_files: RefCell::new(Vec::new()),
            busybox_tar: RefCell::new(None),
        })
    }

    /// A new, empty berth data root `<sandbox>/<name>`, swept for containers at teardown.
    pub fn data_root(&self, name: &str) -> PathBuf {
        let dr = self.root.join(name);
        fs::create_dir_all(&dr).unwrap();
        self.data_roots.borrow_mut().push(dr.clone());
        dr
    }

    /// `berth --data-root DR` with every config path inside the sandbox.
    pub fn berth(&self, data_root: &Path) -> Command {
        let mut c = Command::new(&self.berth);
        c.env("BERTH_CONFIG", &self.berth_config)
            .env("DOCKER_CONFIG", &self.docker_config)
            .env("HOME", self.root.join("home"))
            .env("TMPDIR", self.root.join("tmp"))
            .env_remove("BERTH_HOST")
            .env_remove("BERTH_DATA_ROOT")
            .env_remove("BERTH_INSECURE_REGISTRIES")
            .arg("--data-root")
            .arg(data_root);
        c
    }

    /// Runs `berth --data-root DR ARGS...`.
    pub fn b(&self, data_root: &Path, args: &[&str]) -> Out {
        self.run(self.berth(data_root).args(args))
    }

    /// Runs `berth --data-root DR ARGS...` and panics unless it exits 0.
    pub fn b_ok(&self, data_root: &Path, args: &[&str]) -> Out {
        let out = self.b(data_root, args);
        self.expect_code(&out, 0);
        out
    }

    /// Runs `f` at teardown, before daemons are stopped (last registered runs first).
    pub fn on_teardown(&self, f: impl FnOnce(&Sandbox) + 'static) {
        self.hooks.borrow_mut().push(Box::new(f));
    }

    /// A path outside the sandbox the test may have caused to be created; removed at drop.
    pub fn remove_on_drop(&self, p: PathBuf) {
        self.extra_files.borrow_mut().push(p);
    }

    pub fn run(&self, cmd: &mut Command) -> Out {
        self.run_full(cmd, None, None, CMD_TIMEOUT)
    }

    /// Runs `cmd` with `input` as its stdin.
    pub fn run_stdin(&self, cmd: &mut Command, input: &[u8]) -> Out {
        let p = self
            .root
            .join("logs")
            .join(format!("stdin{:03}", self.seq.get()));
        fs::write(&p, input).unwrap();
        self.run_full(cmd, Some(&p), None, CMD_TIMEOUT)
    }

    /// Runs `cmd` with stdin from the file `stdin` and/or stdout into the file `stdout` (then
    /// [`Out::stdout`] is empty).
    pub fn run_redirected(
        &self,
        cmd: &mut Command,
        stdin: Option<&Path>,
        stdout: Option<&Path>,
    ) -> Out {
        self.run_full(cmd, stdin, stdout, CMD_TIMEOUT)
    }

    pub fn run_for(&self, cmd: &mut Command, timeout: Duration) -> Out {
        self.run_full(cmd, None, None, timeout)
    }

    /// Runs `cmd` to completion (killing its process group after `timeout`); stdout and stderr
    /// go to files under logs/ unless redirected (files, not pipes: a daemonized helper may
    /// hold them open).
    fn run_full(
        &self,
        cmd: &mut Command,
        stdin: Option<&Path>,
        stdout: Option<&Path>,
        timeout: Duration,
    ) -> Out {
        let n = self.seq.get();
        self.seq.set(n + 1);
        let mut desc = describe(cmd);
        if let Some(p) = stdin {
            desc.push_str(&format!(" < {}", p.display()));
        }
        if let Some(p) = stdout {
            desc.push_str(&format!(" > {}", p.display()));
        }
        let logs = self.root.join("logs");
        let out_path = logs.join(format!("cmd{n:03}.out"));
        let err_path = logs.join(format!("cmd{n:03}.err"));
        let started = Instant::now();
        let stdin = match stdin {
            None => Ok(Stdio::null()),
            Some(p) => File::open(p).map(Stdio::from),
        };
        let files = stdin.and_then(|i| {
            let o = File::create(stdout.unwrap_or(&out_path))?;
            Ok((i, o, File::create(&err_path)?))
        });
        let spawned =
            files.and_then(|(i, o, e)| cmd.stdin(i).stdout(o).stderr(e).process_group(0).spawn());
        let status = match spawned {
            Ok(mut child) => wait_child(&mut child, timeout),
            Err(e) => {
                return Out {
                    desc,
                    status: None,
                    stdout: String::new(),
                    stderr: format!("could not start: {e}"),
                    elapsed: started.elapsed(),
                }
            }
        };
        Out {
            desc,
            status,
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
            elapsed: started.elapsed(),
        }
    }

    pub fn expect_code(&self, out: &Out, code: i32) {
        if out.code() != Some(code) {
            panic!("expected exit {code} from {out}\n{}", self.diagnostics());
        }
    }

    /// Panics unless `out` exited 0 and printed exactly `want` (trimmed) on stdout.
    pub fn expect_stdout(&self, out: &Out, want: &str) {
        self.expect_code(out, 0);
        if out.stdout.trim() != want {
            panic!(
                "expected stdout {want:?} from {out}\n{}",
                self.diagnostics()
            );
        }
    }

    /// Starts a long-running daemon in its own process group, output in logs/<name>.log.
    pub fn spawn_daemon(&self, name: &str, cmd: &mut Command) {
        let log = self.root.join("logs").join(format!("{name}.log"));
        let f = File::create(&log).unwrap();
        let f2 = f.try_clone().unwrap();
        cmd.env("TMPDIR", self.root.join("tmp"))
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(f2)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.daemons.borrow_mut().push(Daemon {
            name: name.to_string(),
            child,
            log,
        });
    }

    /// Whether the daemon `name` (the latest of that name) has exited.
    fn daemon_exited(&self, name: &str) -> Option<ExitStatus> {
        self.daemons
            .borrow_mut()
            .iter_mut()
            .rev()
            .find(|d| d.name == name)
            .and_then(|d| d.child.try_wait().ok().flatten())
    }

    /// Polls `ready` until true; Err(log tail) if the daemon exits first; panics on timeout.
    pub fn wait_ready(
        &self,
        name: &str,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return Ok(());
            }
            if let Some(status) = self.daemon_exited(name) {
                return Err(format!(
                    "{name} exited ({status}) before it was ready\n{}",
                    self.diagnostics()
                ));
            }
            if Instant::now() > deadline {
                panic!(
                    "{name} not ready within {timeout:?}\n{}",
                    self.diagnostics()
                );
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of every daemon's log, for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut s = String::new();
        for d in self.daemons.borrow().iter() {
            let text = fs::read_to_string(&d.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(20)..];
            s.push_str(&format!(
                "--- last lines of {} log ---\n{}\n",
                d.name,
                tail.join("\n")
            ));
        }
        s
    }

    /// A tar of a busybox root filesystem (static busybox, applet symlinks, passwd, group),
    /// built once per sandbox.
    pub fn busybox_tar(&self) -> PathBuf {
        if let Some(p) = self.busybox_tar.borrow().as_ref() {
            return p.clone();
        }
        let rootfs = self.root.join("rootfs");
        build_busybox_rootfs(&rootfs).unwrap_or_else(|e| panic!("busybox rootfs: {e}"));
        let tar = self.root.join("busybox.tar");
        let out = self.run(
            Command::new("tar")
                .arg("--numeric-owner")
                .arg("-C")
                .arg(&rootfs)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        );
        self.expect_code(&out, 0);
        *self.busybox_tar.borrow_mut() = Some(tar.clone());
        tar
    }

    fn stop_daemons(&self) {
        for d in self.daemons.borrow_mut().iter_mut().rev() {
            if let Ok(None) = d.child.try_wait() {
                let _ = kill(Pid::from_raw(d.child.id() as i32), Signal::SIGTERM);
                if wait_child(&mut d.child, Duration::from_secs(20)).is_none() {
                    eprintln!("warning: {} ignored SIGTERM for 20 s; killed", d.name);
                }
            }
            // Whatever is left in its process group.
            let _ = killpg(Pid::from_raw(d.child.id() as i32), Signal::SIGKILL);
        }
    }

    /// Pids of live processes whose command line names the sandbox.
    fn stray_pids(&self) -> Vec<i32> {
        let me = std::process::id() as i32;
        let needle = self.root.as_os_str().as_bytes();
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me)
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle))
            })
            .collect()
    }

    /// Gives strays `grace` to finish on their own, then SIGKILLs them.
    fn kill_strays(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        while !self.stray_pids().is_empty() && Instant::now() < deadline {
            sleep(Duration::from_millis(50));
        }
        for _ in 0..3 {
            let pids = self.stray_pids();
            if pids.is_empty() {
                return;
            }
            for pid in &pids {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
            let gone_by = Instant::now() + Duration::from_secs(2);
            while !self.stray_pids().is_empty() && Instant::now() < gone_by {
                sleep(Duration::from_millis(20));
            }
        }
        let left = self.stray_pids();
        if !left.is_empty() {
            eprintln!(
                "warning: processes naming {} survived SIGKILL: {left:?}",
                self.root.display()
            );
        }
    }

    /// `berth runtime --root DR/runtime delete --force ID` for every container state dir a
    /// data root still has, and removal of its `/berth/<id>` cgroups.
    fn sweep_berth_containers(&self) {
        for dr in self.data_roots.borrow().iter() {
            let state_root = dr.join("runtime");
            let Ok(entries) = fs::read_dir(&state_root) else {
                continue;
            };
            for e in entries.flatten() {
                if !e.path().is_dir() {
                    continue;
                }
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.run_for(
                    Command::new(&self.berth)
                        .arg("runtime")
                        .arg("--root")
                        .arg(&state_root)
                        .args(["delete", "--force", &id]),
                    Duration::from_secs(10),
                );
                remove_cgroup(&format!("/berth/{id}"));
            }
        }
    }

    /// Detaches every mount at or below the sandbox, deepest first.
    fn unmount_all(&self) {
        for _ in 0..10 {
            let mut mounts = mounts_under(&self.root);
            if mounts.is_empty() {
                return;
            }
            mounts.sort_by_key(|p| Reverse(p.components().count()));
            for m in mounts {
                let _ = umount2(&m, MntFlags::MNT_DETACH);
            }
        }
        let left = mounts_under(&self.root);
        if !left.is_empty() {
            eprintln!(
                "warning: mounts left under {}: {left:?}",
                self.root.display()
            );
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let hooks = std::mem::take(&mut *self.hooks.borrow_mut());
        for hook in hooks.into_iter().rev() {
            hook(self);
        }
        self.stop_daemons();
        self.kill_strays(Duration::from_secs(3));
        self.sweep_berth_containers();
        remove_cgroup(&self.cgroup_parent);
        self.kill_strays(Duration::from_millis(100));
        self.unmount_all();
        for p in self.extra_files.borrow().iter() {
            if fs::symlink_metadata(p).is_ok() {
                eprintln!("{}: removing {}", self.test, p.display());
                let _ = fs::remove_file(p).or_else(|_| fs::remove_dir_all(p));
            }
        }
        if let Some(dir) = self.dir.take() {
            if let Err(e) = dir.close() {
                eprintln!("warning: removing {}: {e}", self.root.display());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// docker-registry
// ---------------------------------------------------------------------------------------------

/// A password and its bcrypt hash (cost 4, so that the registry's per-request check is cheap),
/// for the htpasswd registry. Generated offline with
/// `python3 -c 'import crypt; print(crypt.crypt("berth-test-pw", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))'`
/// (or `htpasswd -nbB -C 4 USER PASSWORD`).
pub const TEST_PASSWORD: &str = "berth-test-pw";
pub const TEST_PASSWORD_BCRYPT: &str =
    "$2b$04$hPiVCMIgZKfXyOuIlmTp7.WoTSJyjKejD63HOUWoem62t8ZU5wPcG";

/// A Debian `docker-registry` serving plain HTTP on 127.0.0.1:<free port>, storage in the
/// sandbox.
pub struct Registry {
    /// `127.0.0.1:PORT`
    pub addr: String,
}

impl Registry {
    /// Starts a registry; with `htpasswd = Some((user, bcrypt))` it requires basic auth.
    pub fn start(sb: &Sandbox, name: &str, htpasswd: Option<(&str, &str)>) -> Registry {
        let bin = find_tool("docker-registry").expect("docker-registry not installed");
        let dir = sb.root.join(name);
        fs::create_dir_all(dir.join("storage")).unwrap();
        let mut auth = String::new();
        if let Some((user, hash)) = htpasswd {
            let file = dir.join("htpasswd");
            fs::write(&file, format!("{user}:{hash}\n")).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                file.display()
            );
        }
        // A free port can be taken by someone else between probing and binding: retry.
        let mut last_err = String::new();
        for attempt in 0..5 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let config = format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {addr}\n{auth}",
                dir.join("storage").display()
            );
            let config_path = dir.join(format!("config-{attempt}.yml"));
            fs::write(&config_path, config).unwrap();
            let daemon = format!("{name}-{attempt}");
            sb.spawn_daemon(&daemon, Command::new(&bin).arg("serve").arg(&config_path));
            // Ready when *this* registry says it listens (another process may hold the port:
            // then ours exits, but the port would still answer) and the port answers HTTP.
            let log = sb.root.join("logs").join(format!("{daemon}.log"));
            let listening = format!("listening on {addr}");
            let ready = || {
                fs::read_to_string(&log).is_ok_and(|l| l.contains(&listening))
                    && http_answers(&addr)
            };
            match sb.wait_ready(&daemon, Duration::from_secs(20), ready) {
                Ok(()) => return Registry { addr },
                Err(e) => last_err = e,
            }
        }
        panic!("docker-registry did not start:\n{last_err}");
    }
}

/// A TCP port on 127.0.0.1 nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /v2/` on `addr` gets any HTTP answer (200, or 401 from an auth registry).
fn http_answers(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: registry\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.starts_with("HTTP/1.")
}

// ---------------------------------------------------------------------------------------------
// private dockerd
// ---------------------------------------------------------------------------------------------

/// A private dockerd (with the containerd it starts itself), all state in the sandbox, no
/// bridge and no iptables; containers under the sandbox's cgroup parent.
#[derive(Clone)]
pub struct Docker {
    cli: PathBuf,
    sock: PathBuf,
    cli_config: PathBuf,
}

impl Docker {
    /// The tools [`Docker::start`] needs (the CLI is looked up separately).
    pub const TOOLS: &'static [&'static str] =
        &["dockerd", "containerd", "containerd-shim-runc-v2"];

    /// Starts dockerd, or None (after printing why) if there is no docker CLI.
    pub fn start(sb: &Sandbox) -> Option<Docker> {
        let Some(cli) = docker_cli() else {
            skip(
                &sb.test,
                "no docker CLI at /usr/local/bin/docker or /usr/bin/docker",
            );
            return None;
        };
        let dockerd = find_tool("dockerd")?;
        let dir = sb.root.join("docker");
        for sub in ["data", "exec", "cli"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // A private config file so /etc/docker/daemon.json is not read. dockerd before 23
        // writes a trust key to /etc/docker/key.json unless told otherwise (config file only).
        let config = if dockerd_major(&dockerd).is_some_and(|v| v < 23) {
            serde_json::json!({ "deprecated-key-path": dir.join("key.json") })
        } else {
            serde_json::json!({})
        };
        fs::write(dir.join("daemon.json"), config.to_string()).unwrap();
        let docker = Docker {
            cli,
            sock: dir.join("docker.sock"),
            cli_config: dir.join("cli"),
        };
        let mut cmd = Command::new(&dockerd);
        cmd.arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("-H")
            .arg(format!("unix://{}", docker.sock.display()))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                "--exec-opt",
                "native.cgroupdriver=cgroupfs",
                "--storage-driver",
                "overlay2",
                "--shutdown-timeout",
                "5",
            ])
            .arg("--cgroup-parent")
            .arg(&sb.cgroup_parent);
        sb.spawn_daemon("dockerd", &mut cmd);
        let sock = docker.sock.clone();
        if let Err(e) = sb.wait_ready("dockerd", Duration::from_secs(40), || docker_ping(&sock)) {
            panic!("{e}");
        }
        let d = docker.clone();
        sb.on_teardown(move |sb| {
            let ps = sb.run(d.cmd().args(["ps", "--all", "--quiet", "--no-trunc"]));
            let ids: Vec<&str> = ps.stdout.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = sb.run(d.cmd().args(["rm", "--force"]).args(&ids));
            }
        });
        Some(docker)
    }

    /// The docker CLI talking to this dockerd only.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.cli);
        c.env("DOCKER_CONFIG", &self.cli_config)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()));
        c
    }

    /// Runs `docker ARGS...` and panics unless it exits 0.
    pub fn ok(&self, sb: &Sandbox, args: &[&str]) -> Out {
        let out = sb.run(self.cmd().args(args));
        sb.expect_code(&out, 0);
        out
    }
}

/// `GET /_ping` over the unix socket answers 200 OK.
fn docker_ping(sock: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.lines().next().is_some_and(|l| l.contains(" 200 "))
}

/// Major version from `dockerd --version` ("Docker version 20.10.24+dfsg1, build ...").
fn dockerd_major(dockerd: &Path) -> Option<u32> {
    let out = Command::new(dockerd).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().nth(2)?;
    version.split('.').next()?.parse().ok()
}

/// The docker CLI: `$BERTH_TEST_DOCKER_CLI`, else /usr/local/bin/docker, else /usr/bin/docker.
pub fn docker_cli() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_TEST_DOCKER_CLI").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    ["/usr/local/bin/docker", "/usr/bin/docker"]
        .iter()
        .map(PathBuf::from)
        .find(|p| is_executable(p))
}

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

pub fn skip(test: &str, why: &str) {
    eprintln!("SKIP {test}: {why}");
}

/// Waits for `child`, SIGKILLing its process group (and it) once `timeout` passes.
fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(5)),
            _ => {
                let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `name` in PATH or the usual sbin/bin directories.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// A minimal root filesystem: static busybox with its applet symlinks, passwd and group.
pub fn build_busybox_rootfs(rootfs: &Path) -> Result<(), String> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| is_executable(p))
        .or_else(|| find_tool("busybox"))
        .ok_or("busybox is not installed")?;
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    for d in [
        "bin", "dev", "etc", "proc", "sys", "tmp", "root", "run", "var",
    ] {
        fs::create_dir_all(rootfs.join(d)).map_err(|e| io(d, e))?;
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
        .map_err(|e| io("tmp", e))?;
    let target = rootfs.join("bin/busybox");
    fs::copy(&busybox, &target).map_err(|e| io("copying busybox", e))?;
    fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).map_err(|e| io("chmod", e))?;
    let list = Command::new(&busybox)
        .arg("--list")
        .output()
        .map_err(|e| io("busybox --list", e))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        match symlink("busybox", rootfs.join("bin").join(applet)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(applet, e)),
        }
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .map_err(|e| io("passwd", e))?;
    fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")
        .map_err(|e| io("group", e))?;
    Ok(())
}

/// `sha256:<hex>` of `bytes` (through coreutils' sha256sum).
pub fn sha256_digest(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils) is needed");
    let mut stdin = child.stdin.take().unwrap();
    let data = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}

/// The `sha256:<64 hex>` digest on a line starting with `prefix` (e.g. `Digest: `).
pub fn digest_after(text: &str, marker: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let at = l.find(marker)?;
        let rest = &l[at + marker.len()..];
        let d = rest.split_whitespace().next()?;
        is_digest(d).then(|| d.to_string())
    })
}

pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Base64 (standard alphabet, padded), for docker-style `auth` entries.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Directories under `<data_root>/snapshots` named by a chain ID (64 hex digits).
pub fn snapshot_dirs(data_root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(data_root.join("snapshots"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.as_bytes();
                    n.len() == 64 && n.iter().all(|b| b.is_ascii_hexdigit())
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// (apparent bytes of regular files and symlinks, bytes allocated on disk) below `dir`,
/// counting each inode once.
pub fn disk_usage(dir: &Path) -> (u64, u64) {
    fn walk(p: &Path, seen: &mut std::collections::HashSet<(u64, u64)>, acc: &mut (u64, u64)) {
        let Ok(md) = fs::symlink_metadata(p) else {
            return;
        };
        if seen.insert((md.dev(), md.ino())) {
            if !md.is_dir() {
                acc.0 += md.size();
            }
            acc.1 += md.blocks() * 512;
        }
        if md.is_dir() {
            if let Ok(rd) = fs::read_dir(p) {
                for e in rd.flatten() {
                    walk(&e.path(), seen, acc);
                }
            }
        }
    }
    let mut acc = (0, 0);
    walk(dir, &mut std::collections::HashSet::new(), &mut acc);
    acc
}

/// A minimal ustar writer, for crafting (malicious) archives without a tar crate.
#[derive(Default)]
pub struct TarWriter {
    buf: Vec<u8>,
}

impl TarWriter {
    pub fn new() -> TarWriter {
        TarWriter::default()
    }

    fn header(&mut self, name: &str, mode: u32, size: usize, typeflag: u8, link: &str) {
        assert!(
            name.len() <= 100 && link.len() <= 100,
            "name too long for ustar: {name}"
        );
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |h: &mut [u8; 512], at: usize, width: usize, v: u64| {
            let s = format!("{v:0w$o}\0", w = width - 1);
            h[at..at + width].copy_from_slice(s.as_bytes());
        };
        octal(&mut h, 100, 8, mode as u64);
        octal(&mut h, 108, 8, 0);
        octal(&mut h, 116, 8, 0);
        octal(&mut h, 124, 12, size as u64);
        octal(&mut h, 136, 12, 1_700_000_000);
        h[156] = typeflag;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        self.buf.extend_from_slice(&h);
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.header(name, 0o644, data.len(), b'0', "");
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.resize(self.buf.len() + pad, 0);
        self
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.header(name, 0o755, 0, b'5', "");
        self
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.header(name, 0o777, 0, b'2', target);
        self
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.header(name, 0o644, 0, b'1', target);
        self
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.buf);
        v.resize(v.len() + 1024, 0);
        v
    }
}

/// A `docker save`-style archive (manifest.json, config, one layer) of the layer `layer`,
/// tagged `tag`; the config's diff_id is the layer's true digest unless `diff_id` overrides it.
pub fn docker_archive(layer: &[u8], tag: &str, diff_id: Option<&str>) -> Vec<u8> {
    let diff = diff_id
        .map(String::from)
        .unwrap_or_else(|| sha256_digest(layer));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [diff] },
    })
    .to_string();
    let config_name = format!("{}.json", &sha256_digest(config.as_bytes())[7..]);
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [tag],
        "Layers": ["layer/layer.tar"],
    }])
    .to_string();
    TarWriter::new()
        .dir("layer/")
        .file("layer/layer.tar", layer)
        .file(&config_name, config.as_bytes())
        .file("manifest.json", manifest.as_bytes())
        .finish()
}

// ---------------------------------------------------------------------------------------------
// mounts and cgroups
// ---------------------------------------------------------------------------------------------

/// (mount point, filesystem type) of every mount in this mount namespace.
fn mountinfo() -> Vec<(PathBuf, String)> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            let mount_point = unescape_mountinfo(fields.get(4)?);
            Some((PathBuf::from(mount_point), fields.get(sep + 1)?.to_string()))
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    std::ffi::OsString::from_vec(out)
}

pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    mountinfo()
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.starts_with(root))
        .collect()
}

fn cgroup_mounts() -> Vec<PathBuf> {
    mountinfo()
        .into_iter()
        .filter(|(_, fstype)| fstype == "cgroup" || fstype == "cgroup2")
        .map(|(p, _)| p)
        .collect()
}

/// Kills what is left in cgroup `rel` (absolute cgroup path) and removes it everywhere.
fn remove_cgroup(rel: &str) {
    let rel = rel.trim_start_matches('/');
    for mount in cgroup_mounts() {
        let dir = mount.join(rel);
        if !dir.exists() {
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            kill_cgroup_tree(&dir);
            if rmdir_tree(&dir).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                eprintln!("warning: could not remove cgroup {}", dir.display());
                break;
            }
            sleep(Duration::from_millis(50));
        }
    }
}

/// Thaws (v1 freezer) and SIGKILLs every process in `dir` and its descendants.
fn kill_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                kill_cgroup_tree(&e.path());
            }
        }
    }
    let freezer = dir.join("freezer.state");
    if freezer.exists() {
        let _ = fs::write(&freezer, "THAWED");
    }
    if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// rmdir of a cgroup and all its child cgroups, children first.
fn rmdir_tree(dir: &Path) -> std::io::Result<()> {
    for e in fs::read_dir(dir)?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            rmdir_tree(&e.path())?;
        }
    }
    fs::remove_dir(dir)
}
