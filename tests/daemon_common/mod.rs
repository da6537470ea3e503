//! Shared harness for tests that drive `berth daemon`: a [`Sandbox`] is a temp dir with a
//! daemon on its own unix socket, data root and exec root, the busybox image imported, and
//! helpers that run the real docker CLI (`docker`, `ok`, `code`) or the berth CLI (`berth`)
//! against it. Its `Drop` removes every container through the daemon, stops the daemon, kills
//! stray processes naming the temp dir, detaches every mount under it and removes it.
//!
//! Include with `#[path = "daemon_common/mod.rs"] mod daemon_common;`.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

pub fn docker_cli() -> Option<PathBuf> {
    for p in ["/usr/local/bin/docker", "/usr/bin/docker"] {
        if Path::new(p).exists() {
            return Some(PathBuf::from(p));
        }
    }
    None
}

pub struct Sandbox {
    pub dir: PathBuf,
    pub docker: PathBuf,
    pub daemon: Option<Child>,
}

impl Sandbox {
    pub fn new(docker: PathBuf) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("berth-daemon-")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        Sandbox {
            dir,
            docker,
            daemon: None,
        }
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.join("berth.sock")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn import_busybox(&self) {
        let root = self.dir.join("rootfs");
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for a in ["sh", "echo", "cat", "sleep", "ls", "true", "false", "id"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
        }
        fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
        let tar = self.dir.join("busybox.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        let out = Command::new(BERTH)
            .arg("--data-root")
            .arg(self.data())
            .args(["import", "-c", "CMD [\"sh\"]"])
            .arg(&tar)
            .arg("busybox:latest")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "berth import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn start_daemon(&mut self) {
        self.start_daemon_with(&[]);
    }

    /// Starts the daemon with extra flags (after -H, --data-root, --exec-root).
    pub fn start_daemon_with(&mut self, extra: &[&str]) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("daemon.log"))
            .unwrap();
        let child = Command::new(BERTH)
            .arg("daemon")
            .arg("-H")
            .arg(format!("unix://{}", self.sock().display()))
            .arg("--data-root")
            .arg(self.data())
            .arg("--exec-root")
            .arg(self.dir.join("exec"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemon = Some(child);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if self.docker(&["version"]).status.success() {
                return;
            }
            sleep(Duration::from_millis(100));
        }
        panic!(
            "the daemon did not answer; its log: {}",
            fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
        );
    }

    pub fn kill_daemon(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the daemon as a service manager would (SIGTERM, then SIGKILL after 10 s), so it
    /// removes its default bridge and nft table.
    pub fn stop_daemon(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let t = std::time::Instant::now();
            while t.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The default bridge of this sandbox's daemon (named after its exec root, as the
    /// daemon names it) and its nft table.
    fn default_bridge(&self) -> (String, String) {
        let mut h: u32 = 0x811c_9dc5;
        for b in self.dir.join("exec").as_os_str().as_encoded_bytes() {
            h ^= *b as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
        let bridge = format!("berth-{h:08x}");
        let table = format!("berth_{bridge}");
        (bridge, table)
    }

    pub fn docker_in(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut cmd = Command::new("timeout");
        cmd.arg("60")
            .arg(&self.docker)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.sock().display()))
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(i) = input {
            use std::io::Write;
            let mut w = child.stdin.take().unwrap();
            w.write_all(i.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_in(args, None)
    }

    /// Runs docker, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({}): {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn code(&self, args: &[&str]) -> i32 {
        self.docker(args).status.code().unwrap_or(-1)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            if let Ok(ids) = String::from_utf8(self.docker(&["ps", "-aq"]).stdout) {
                for id in ids.split_whitespace() {
                    let _ = self.docker(&["rm", "-f", id]);
                }
            }
        }
        self.stop_daemon();
        // A daemon killed by the test left its default bridge and table: remove them.
        let (bridge, table) = self.default_bridge();
        if Path::new("/sys/class/net").join(&bridge).exists() {
            let _ = Command::new("ip")
                .args(["link", "delete", &bridge])
                .output();
        }
        for family in ["ip", "ip6"] {
            let _ = Command::new("nft")
                .args(["delete", "table", family, &table])
                .stderr(Stdio::null())
                .output();
        }
        // Stray shims / container processes naming the sandbox.
        let needle = self.dir.to_string_lossy().into_owned();
        if let Ok(rd) = fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                if let Ok(cmd) = fs::read(format!("/proc/{pid}/cmdline")) {
                    if String::from_utf8_lossy(&cmd).contains(&needle) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
        }
        sleep(Duration::from_millis(200));
        // Detach every mount under the sandbox, deepest first.
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<String> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(String::from))
            .filter(|p| p.starts_with(&needle))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        // Cgroups the containers left under /berth/<id> are removed by the runtime on delete.
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub fn setup(test: &str) -> Option<Sandbox> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP {test}: needs root");
        return None;
    }
    let Some(docker) = docker_cli() else {
        eprintln!("SKIP {test}: no docker CLI");
        return None;
    };
    let mut sb = Sandbox::new(docker);
    sb.import_busybox();
    sb.start_daemon();
    Some(sb)
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sandbox {
    /// Runs the berth CLI against this sandbox's daemon (`-H unix://…`).
    pub fn berth(&self, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg("60")
            .arg(BERTH)
            .arg("-H")
            .arg(format!("unix://{}", self.sock().display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The daemon's log so far (for assertion messages).
    pub fn daemon_log(&self) -> String {
        fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }
}

/// A registry (Debian's `docker-registry`) on a free loopback port, killed on drop.
pub struct Registry {
    pub port: u16,
    child: Child,
}

impl Registry {
    /// Starts one storing under `dir`; None when docker-registry is not installed.
    pub fn start(dir: &Path) -> Option<Registry> {
        if !Path::new("/usr/bin/docker-registry").exists() {
            return None;
        }
        let port = free_port();
        fs::create_dir_all(dir).unwrap();
        fs::write(
            dir.join("config.yml"),
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "the registry did not start"
            );
            sleep(Duration::from_millis(100));
        }
        Some(Registry { port, child })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// [`setup`] with extra daemon flags.
pub fn setup_with(test: &str, extra: &[&str]) -> Option<Sandbox> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP {test}: needs root");
        return None;
    }
    let Some(docker) = docker_cli() else {
        eprintln!("SKIP {test}: no docker CLI");
        return None;
    };
    let mut sb = Sandbox::new(docker);
    sb.import_busybox();
    sb.start_daemon_with(extra);
    Some(sb)
}

/// The user of [`HtpasswdRegistry`].
pub const HTPASSWD_USER: &str = "tester";
/// [`HTPASSWD_USER`]'s password.
pub const HTPASSWD_PASSWORD: &str = "berth-test-pw";

/// A docker-registry requiring basic auth ([`HTPASSWD_USER`] / [`HTPASSWD_PASSWORD`],
/// bcrypt cost 4) on a free loopback port, killed on drop. None when docker-registry is
/// not installed.
pub struct HtpasswdRegistry {
    pub port: u16,
    child: Child,
}

impl HtpasswdRegistry {
    pub fn start(dir: &Path) -> Option<HtpasswdRegistry> {
        if !Path::new("/usr/bin/docker-registry").exists() {
            return None;
        }
        fs::create_dir_all(dir).unwrap();
        fs::write(
            dir.join("htpasswd"),
            "tester:$2b$04$hPiVCMIgZKfXyOuIlmTp7.WoTSJyjKejD63HOUWoem62t8ZU5wPcG\n",
        )
        .unwrap();
        for _ in 0..5 {
            let port = free_port();
            fs::write(
                dir.join("config.yml"),
                format!(
                    "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    dir.join("data").display(),
                    dir.join("htpasswd").display()
                ),
            )
            .unwrap();
            let mut child = Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(dir.join("config.yml"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(HtpasswdRegistry { port, child });
                }
                sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("the registry did not start");
    }
}

impl Drop for HtpasswdRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
