//! Tests against the real kernel (they need root and skip themselves otherwise).
//!
//! v1: a cgroup with a unique name in the host's v1 hierarchies (plus the unified one on a
//! hybrid host). v2: a private mount of the cgroup2 hierarchy (on a hybrid host it shows the
//! same, controller-less unified tree). Every test owns a [`Fixture`] whose `Drop` thaws,
//! kills and reaps its processes, removes its cgroups, restores what it changed and
//! unmounts, so cleanup happens even when an assertion fails.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::tests::TempDir;
use super::{detect, Error, Manager, Version};

/// The v2 tests change the shared root's `cgroup.subtree_control` (and restore it): one
/// at a time.
static V2_LOCK: Mutex<()> = Mutex::new(());

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Everything a test created, undone on drop in a safe order.
#[derive(Default)]
struct Fixture {
    managers: Vec<Manager>,
    children: Vec<Child>,
    /// A private cgroup2 mount point to unmount and remove.
    mount: Option<PathBuf>,
    /// `cgroup.subtree_control` of that mount's root before the test.
    subtree_before: Option<String>,
}

impl Fixture {
    fn spawn(&mut self, cmd: &mut Command) -> i32 {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn test process");
        let pid = child.id() as i32;
        self.children.push(child);
        pid
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Thaw first: killing a frozen v1 task and waiting for it would hang.
        for m in &self.managers {
            let _ = m.thaw();
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for m in &self.managers {
            for pid in m.pids().unwrap_or_default() {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            wait_until(Duration::from_secs(2), || {
                m.pids().map(|p| p.is_empty()).unwrap_or(true)
            });
            let _ = m.destroy();
        }
        if let Some(mnt) = &self.mount {
            if let Some(before) = &self.subtree_before {
                let now =
                    std::fs::read_to_string(mnt.join("cgroup.subtree_control")).unwrap_or_default();
                for c in now.split_whitespace() {
                    if !before.split_whitespace().any(|b| b == c) {
                        let _ = std::fs::write(mnt.join("cgroup.subtree_control"), format!("-{c}"));
                    }
                }
            }
            let _ = nix::mount::umount2(mnt, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(mnt);
        }
    }
}

/// Forks a child that waits until it has been moved into `m`'s cgroup, then opens `path`
/// for reading; returns 0 if the open worked, else its errno.
fn open_in_cgroup(m: &Manager, path: &str) -> i32 {
    let cpath = std::ffi::CString::new(path).unwrap();
    let (rd, wr) = nix::unistd::pipe().unwrap();
    // SAFETY: the child only calls async-signal-safe functions (read, open, _exit) on
    // memory prepared before the fork, so forking a multi-threaded test process is sound.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            use std::os::fd::AsRawFd;
            let mut b = [0u8; 1];
            // SAFETY: raw syscalls on valid buffers/fds; _exit never returns.
            unsafe {
                libc::read(rd.as_raw_fd(), b.as_mut_ptr().cast(), 1);
                let fd = libc::open(cpath.as_ptr(), libc::O_RDONLY);
                let code = if fd >= 0 {
                    0
                } else {
                    *libc::__errno_location()
                };
                libc::_exit(code);
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(rd);
            let joined = m.apply(child.as_raw());
            nix::unistd::write(&wr, b"x").unwrap();
            drop(wr);
            let status = nix::sys::wait::waitpid(child, None).unwrap();
            joined.unwrap();
            match status {
                nix::sys::wait::WaitStatus::Exited(_, code) => code,
                other => panic!("helper child ended unexpectedly: {other:?}"),
            }
        }
    }
}

/// A shell that appends a line to `file` every 10 ms.
fn ticker(file: &Path) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("while :; do echo x >> \"$0\"; sleep 0.01; done")
        .arg(file);
    c
}

fn size(file: &Path) -> u64 {
    std::fs::metadata(file).map(|m| m.len()).unwrap_or(0)
}

fn proc_state(pid: i32) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("State:"))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Freezes `m` (which holds a ticker writing `file`), checks nothing runs, thaws, checks it
/// runs again.
fn check_freeze(m: &Manager, file: &Path) {
    assert!(
        wait_until(Duration::from_secs(5), || size(file) > 0),
        "ticker never ran"
    );
    assert!(!m.is_frozen().unwrap());
    m.freeze().unwrap();
    assert!(m.is_frozen().unwrap());
    let before = size(file);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(size(file), before, "processes kept running while frozen");
    m.thaw().unwrap();
    assert!(!m.is_frozen().unwrap());
    assert!(
        wait_until(Duration::from_secs(5), || size(file) > before),
        "ticker did not resume"
    );
}

#[test]
fn v1_lifecycle_on_the_host() {
    if !is_root() || detect() != Version::V1 {
        eprintln!("skipped: needs root on a cgroup v1/hybrid host");
        return;
    }
    let mut fx = Fixture::default();
    let tmp = TempDir::new("v1real");
    let name = format!("/{}", unique("berth-test-v1"));
    let m = Manager::new(&name, "unused", false).unwrap();
    fx.managers.push(m.clone());
    assert_eq!(m.path(), name);
    for c in [
        "cpu", "cpuacct", "memory", "pids", "freezer", "devices", "cpuset",
    ] {
        assert!(m.controllers().contains_key(c), "{c} hierarchy not found");
    }
    assert_ne!(m.controllers()["cpu"].dir, m.controllers()["cpuacct"].dir);

    m.set(&resources(
        r#"{"memory":{"limit":67108864,"reservation":33554432},
            "pids":{"limit":64},
            "cpu":{"shares":512,"quota":20000,"period":100000,"cpus":"0"},
            "devices":[{"allow":false,"access":"rwm"},
                       {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
                       {"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"}]}"#,
    ))
    .unwrap();
    let file = |c: &str, f: &str| {
        std::fs::read_to_string(m.controllers()[c].dir.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(file("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(file("memory", "memory.soft_limit_in_bytes"), "33554432");
    assert_eq!(file("pids", "pids.max"), "64");
    assert_eq!(file("cpu", "cpu.shares"), "512");
    assert_eq!(file("cpu", "cpu.cfs_quota_us"), "20000");
    assert_eq!(file("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(file("cpuset", "cpuset.cpus"), "0");
    assert!(
        !file("cpuset", "cpuset.mems").is_empty(),
        "mems copied from the parent"
    );
    assert_eq!(file("devices", "devices.list"), "c 1:3 rwm\nc 1:5 rwm");

    // Out-of-range shares are reported, not silently clamped.
    let e = m.set(&resources(r#"{"cpu":{"shares":1}}"#)).unwrap_err();
    assert!(matches!(e, Error::InvalidValue { .. }), "{e}");

    let sleeper = fx.spawn(Command::new("sleep").arg("1000"));
    m.apply(sleeper).unwrap();
    let own = std::fs::read_to_string(format!("/proc/{sleeper}/cgroup")).unwrap();
    assert!(
        own.lines().any(|l| l.ends_with(&format!(":memory:{name}"))),
        "{own}"
    );
    assert!(
        own.lines().any(|l| l.ends_with(&format!(":cpu:{name}"))),
        "{own}"
    );
    assert!(
        own.lines()
            .any(|l| l.ends_with(&format!(":name=systemd:{name}"))),
        "{own}"
    );
    if m.unified().is_some() {
        assert!(
            own.lines().any(|l| l == format!("0::{name}")),
            "hybrid join missing: {own}"
        );
    }
    assert_eq!(m.pids().unwrap(), vec![sleeper]);

    // Device rules are enforced: /dev/null and /dev/zero allowed, /dev/full not.
    assert_eq!(open_in_cgroup(&m, "/dev/null"), 0);
    assert_eq!(open_in_cgroup(&m, "/dev/full"), libc::EPERM);

    let stats = m.stats().unwrap();
    assert_eq!(stats.memory.usage.limit, 67108864);
    assert!(stats.memory.usage.usage > 0);
    assert!(!stats.memory.raw.is_empty());
    assert_eq!(stats.pids.current, 1);
    assert_eq!(stats.pids.limit, 64);
    assert_eq!(stats.cpuset.cpus, vec![0]);
    let json = serde_json::to_value(&stats).unwrap();
    assert!(json["memory"]["usage"]["limit"].is_u64());

    // Freeze: a plain sleep shows D (in the refrigerator), a ticker stops ticking.
    let ticks = tmp.0.join("ticks");
    let t = fx.spawn(&mut ticker(&ticks));
    m.apply(t).unwrap();
    m.freeze().unwrap();
    assert!(
        proc_state(sleeper).starts_with('D'),
        "sleep state {}",
        proc_state(sleeper)
    );
    m.thaw().unwrap();
    assert!(
        proc_state(sleeper).starts_with('S'),
        "sleep state {}",
        proc_state(sleeper)
    );
    check_freeze(&m, &ticks);
    let pids = m.pids().unwrap();
    assert!(pids.contains(&sleeper) && pids.contains(&t), "{pids:?}");

    // Tear down by hand and check every directory is gone.
    for c in &mut fx.children {
        let _ = c.kill();
        let _ = c.wait();
    }
    fx.children.clear();
    assert!(wait_until(Duration::from_secs(2), || m
        .pids()
        .unwrap()
        .is_empty()));
    m.destroy().unwrap();
    for (k, dir) in m.paths() {
        assert!(!dir.exists(), "{k}: {} still exists", dir.display());
    }
    // Destroying again is fine.
    m.destroy().unwrap();
}

#[test]
fn v1_destroy_refuses_while_busy_and_reports_it() {
    if !is_root() || detect() != Version::V1 {
        eprintln!("skipped: needs root on a cgroup v1/hybrid host");
        return;
    }
    let mut fx = Fixture::default();
    let name = format!("/{}/nested", unique("berth-test-v1busy"));
    let m = Manager::new(&name, "unused", false).unwrap();
    // The parent of `nested` is ours too: clean it as well.
    let parent = Manager::new(name.trim_end_matches("/nested"), "unused", false).unwrap();
    fx.managers.push(m.clone());
    fx.managers.push(parent);
    let pid = fx.spawn(Command::new("sleep").arg("1000"));
    m.apply(pid).unwrap();
    let e = m.destroy().unwrap_err();
    assert!(matches!(&e, Error::Remove { .. }), "{e}");
    assert!(e.to_string().contains("processes are still in it"), "{e}");
}

#[test]
fn v2_private_mount() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let _serial = V2_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut fx = Fixture::default();
    let tmp = TempDir::new("v2real");
    let mnt = std::env::temp_dir().join(unique("berth-cg2"));
    std::fs::create_dir(&mnt).unwrap();
    if let Err(e) = nix::mount::mount(
        Some("none"),
        &mnt,
        Some("cgroup2"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        None::<&str>,
    ) {
        let _ = std::fs::remove_dir(&mnt);
        panic!("mount -t cgroup2 failed: {e}");
    }
    fx.mount = Some(mnt.clone());
    fx.subtree_before = Some(std::fs::read_to_string(mnt.join("cgroup.subtree_control")).unwrap());
    let controllers = std::fs::read_to_string(mnt.join("cgroup.controllers")).unwrap();

    let name = format!("/{}", unique("berth-test-v2"));
    let m = Manager::with_root(Version::V2, &mnt, &name, "unused", false).unwrap();
    fx.managers.push(m.clone());
    let sleeper = fx.spawn(Command::new("sleep").arg("1000"));
    m.apply(sleeper).unwrap();
    let own = std::fs::read_to_string(format!("/proc/{sleeper}/cgroup")).unwrap();
    assert!(own.lines().any(|l| l == format!("0::{name}")), "{own}");
    assert_eq!(m.pids().unwrap(), vec![sleeper]);
    let stats = m.stats().unwrap();
    assert!(stats.cpu.usage.total < u64::MAX);

    // Freeze via cgroup.freeze.
    let ticks = tmp.0.join("ticks");
    let t = fx.spawn(&mut ticker(&ticks));
    m.apply(t).unwrap();
    check_freeze(&m, &ticks);

    // unified keys are written verbatim (cgroup.* files need no controller).
    m.set(&resources(r#"{"unified":{"cgroup.max.descendants":"7"}}"#))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(m.unified().unwrap().dir.join("cgroup.max.descendants"))
            .unwrap()
            .trim(),
        "7"
    );
    if !controllers.split_whitespace().any(|c| c == "pids") {
        let e = m.set(&resources(r#"{"pids":{"limit":5}}"#)).unwrap_err();
        assert!(
            matches!(&e, Error::ControllerMissing { controller, .. } if controller == "pids"),
            "{e}"
        );
    }

    // Device filter: deny everything, then allow /dev/null only (replacing the program).
    assert_eq!(open_in_cgroup(&m, "/dev/null"), 0);
    m.set(&resources(
        r#"{"devices":[{"allow":false,"access":"rwm"}]}"#,
    ))
    .unwrap();
    assert_eq!(open_in_cgroup(&m, "/dev/null"), libc::EPERM);
    m.set(&resources(
        r#"{"devices":[{"allow":false,"access":"rwm"},
                       {"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}]}"#,
    ))
    .unwrap();
    assert_eq!(open_in_cgroup(&m, "/dev/null"), 0);
    assert_eq!(open_in_cgroup(&m, "/dev/zero"), libc::EPERM);

    for c in &mut fx.children {
        let _ = c.kill();
        let status = c.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
    fx.children.clear();
    assert!(wait_until(Duration::from_secs(2), || m
        .pids()
        .unwrap()
        .is_empty()));
    m.destroy().unwrap();
    assert!(!m.unified().unwrap().dir.exists());
}
