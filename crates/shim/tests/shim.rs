//! End-to-end tests of the shim: real containers (busybox bundles) created by the runtime
//! library inside a detached `berth-shim start` process, on the real kernel. Needs root.
//!
//! Each test has its own temp dir (bundle, runtime root, shim state dir, log), container id
//! and cgroup parent; on drop the container is killed, its shim waited for, the container
//! deleted, the cgroups and the temp dir removed.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shim::client;
use shim::protocol::{self, AttachRequest, ControlRequest, ExecRequest, ExitStatus};
use shim::{read_logs, Framing, LogConfig, ReadOptions, StartOptions, Stream};

const SHIM: &str = env!("CARGO_BIN_EXE_berth-shim");
static SEQ: AtomicUsize = AtomicUsize::new(0);

fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() && Path::new("/bin/busybox").exists() {
        true
    } else {
        eprintln!("SKIP: needs root and /bin/busybox");
        false
    }
}

/// Runs `f` on a thread and fails the test if it takes longer than `d`.
fn within<T: Send + 'static>(d: Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(d)
        .unwrap_or_else(|_| panic!("{what} did not finish within {d:?}"))
}

fn spec(args: &[&str], terminal: bool, cgroups_path: &str) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": terminal,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": ["PATH=/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": { "bounding": caps, "effective": caps, "permitted": caps },
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "shimtest",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
            { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"] }
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "namespaces": [ { "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" } ]
        }
    })
}

struct Env {
    _tmp: tempfile::TempDir,
    id: String,
    cg_parent: String,
    root: PathBuf,
    state: PathBuf,
    bundle: PathBuf,
    log: PathBuf,
}

impl Env {
    fn new(name: &str, args: &[&str], tweak: impl FnOnce(&mut Value)) -> Env {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{name}-{}-{n}", std::process::id());
        let tmp = tempfile::Builder::new()
            .prefix(&format!("berth-shim-{tag}-"))
            .tempdir()
            .unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let bundle = tmp.path().join("bundle");
        let rootfs = bundle.join("rootfs");
        for d in ["bin", "proc", "dev", "tmp", "etc"] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for a in String::from_utf8_lossy(&list.stdout).lines() {
            if !a.is_empty() && a != "busybox" {
                let _ = symlink("busybox", rootfs.join("bin").join(a));
            }
        }
        let id = format!("shim-{tag}");
        let cg_parent = format!("/berth-shim-test-{tag}");
        let mut s = spec(args, false, &format!("{cg_parent}/{id}"));
        tweak(&mut s);
        fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&s).unwrap(),
        )
        .unwrap();
        Env {
            root: tmp.path().join("runtime"),
            state: tmp.path().join("state"),
            log: tmp.path().join("logs").join(format!("{id}-json.log")),
            _tmp: tmp,
            id,
            cg_parent,
            bundle,
        }
    }

    /// Moves the shim's state dir to a path too long for a socket address, so the sockets
    /// must be reached through /proc/self/fd.
    fn with_long_state_dir(mut self) -> Env {
        self.state = self._tmp.path().join("s".repeat(100)).join("state");
        self
    }

    fn options(&self) -> StartOptions {
        StartOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            runtime_root: self.root.clone(),
            state_dir: self.state.clone(),
            log: Some(LogConfig {
                path: self.log.clone(),
                max_size: None,
                max_files: 1,
            }),
            ready_fd: Some(3),
            ..Default::default()
        }
    }

    /// Starts the shim as `prog args…` with the ready pipe on fd 3; returns the readiness.
    fn launch(&self, mut cmd: Command) -> (Result<i32, client::Error>, std::process::Child) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let wfd = w.as_raw_fd();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if wfd == 3 {
                    if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                } else if libc::dup2(wfd, 3) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop(w);
        let ready = within(Duration::from_secs(60), "shim readiness", move || {
            client::read_ready(fs::File::from(r))
        });
        (ready, child)
    }

    fn start_with(&self, o: StartOptions) -> Result<i32, client::Error> {
        let mut cmd = Command::new(SHIM);
        cmd.args(o.to_args());
        let (ready, mut child) = self.launch(cmd);
        let st = child.wait().unwrap();
        assert!(st.success(), "berth-shim start exited with {st}");
        ready
    }

    fn start(&self) -> i32 {
        self.start_with(self.options()).expect("shim start")
    }

    fn control(&self, req: ControlRequest) -> Result<protocol::ControlReply, client::Error> {
        let state = self.state.clone();
        within(Duration::from_secs(30), "control request", move || {
            client::control(&state, &req)
        })
    }

    fn wait(&self) -> ExitStatus {
        let state = self.state.clone();
        within(Duration::from_secs(120), "wait", move || {
            client::wait(&state)
        })
        .unwrap()
    }

    fn shim_gone(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !self.state.join(protocol::PID_FILE).exists() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn log_entries(&self) -> Vec<(Stream, String)> {
        read_logs(&self.log, ReadOptions::default())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.stream, String::from_utf8_lossy(&e.log).into_owned())
            })
            .collect()
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let d = e.path().join(self.cg_parent.trim_start_matches('/'));
                if d.exists() {
                    v.push(d);
                }
            }
        }
        v
    }
}

fn rmdir_tree(d: &Path) {
    if let Ok(rd) = fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(d);
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(pid) = client::shim_pid(&self.state) {
            let _ = client::control(
                &self.state,
                &ControlRequest {
                    kill: Some("SIGKILL".into()),
                    all: Some(true),
                    ..Default::default()
                },
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while client::shim_pid(&self.state).is_some() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if client::shim_pid(&self.state).is_some() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = runtime::container::Runtime::new(&self.root, false).delete(&self.id, true);
        for d in self.cgroup_dirs() {
            rmdir_tree(&d);
        }
    }
}

/// Reads an attach stream until `done(stdout, stderr)` or EOF; demultiplexes unless `tty`.
fn read_attach(
    s: &mut UnixStream,
    tty: bool,
    timeout: Duration,
    mut done: impl FnMut(&str, &str) -> bool,
) -> (String, String, bool) {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let deadline = Instant::now() + timeout;
    let mut raw = Vec::new();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut eof = false;
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => eof = true,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("attach read: {e}"),
        }
        if tty {
            out.append(&mut raw);
        } else {
            while raw.len() >= 8 {
                let len = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]) as usize;
                if raw.len() < 8 + len {
                    break;
                }
                let data = raw[8..8 + len].to_vec();
                match raw[0] {
                    1 => out.extend(data),
                    2 => err.extend(data),
                    b => panic!("bad stream byte {b}"),
                }
                raw.drain(..8 + len);
            }
        }
        let (o, e) = (
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        );
        if eof || done(&o, &e) {
            return (o, e, eof);
        }
        assert!(
            Instant::now() < deadline,
            "attach output did not arrive in time; stdout so far {o:?}, stderr {e:?}"
        );
    }
}

fn attach(state_dir: &Path, stdin: bool) -> client::Attached {
    client::attach(
        state_dir,
        &AttachRequest {
            stdin,
            stdout: true,
            stderr: true,
            stdin_once: None,
        },
    )
    .unwrap()
}

fn is_rfc3339_nano(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[10] == b'T'
        && t.ends_with('Z')
        && shim::timefmt::parse_rfc3339_nanos(b).is_some()
        // Go's RFC3339Nano trims trailing zeros of the fraction.
        && !(t.contains('.') && t.trim_end_matches('Z').ends_with('0'))
}

#[test]
fn logs_in_docker_format_and_records_exit_code() {
    if !require_root() {
        return;
    }
    let env = Env::new(
        "exit",
        &[
            "sh",
            "-c",
            "echo out; echo 'err \"q\" <&>' >&2; printf partial; exit 3",
        ],
        |_| {},
    );
    let pid = env.start();
    assert!(pid > 0);
    let exit = env.wait();
    assert_eq!(exit.exit_code, 3);
    assert!(!exit.oom_killed);
    assert!(is_rfc3339_nano(&exit.finished_at) || exit.finished_at.ends_with('Z'));
    // exit.json says the same.
    let rec: ExitStatus =
        serde_json::from_slice(&fs::read(env.state.join(protocol::EXIT_FILE)).unwrap()).unwrap();
    assert_eq!(rec, exit);
    // The log, line by line, in dockerd's exact shape.
    let text = fs::read_to_string(&env.log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let mut seen_out = false;
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap();
        let t = v["time"].as_str().unwrap();
        assert!(is_rfc3339_nano(t), "time {t}");
        let expect_prefix = match v["log"].as_str().unwrap() {
            "out\n" => {
                seen_out = true;
                r#"{"log":"out\n","stream":"stdout","time":""#
            }
            "err \"q\" <&>\n" => {
                r#"{"log":"err \"q\" \u003c\u0026\u003e\n","stream":"stderr","time":""#
            }
            "partial" => r#"{"log":"partial","stream":"stdout","time":""#,
            other => panic!("unexpected log line {other:?}"),
        };
        assert!(l.starts_with(expect_prefix), "{l}");
        assert!(l.ends_with("\"}"), "{l}");
    }
    assert!(seen_out);
    // The shim cleaned up after itself; the runtime forgot the container.
    assert!(env.shim_gone(), "shim.pid still there");
    assert!(!env.state.join(protocol::ATTACH_SOCKET).exists());
    assert!(!env.state.join(protocol::CONTROL_SOCKET).exists());
    assert!(!env.root.join(&env.id).exists());
    // And the log reads back.
    let entries = env.log_entries();
    assert!(entries.contains(&(Stream::Stdout, "out\n".into())));
    assert!(entries.contains(&(Stream::Stdout, "partial".into())));
}

#[test]
fn attach_streams_live_and_stdin_reaches_cat() {
    if !require_root() {
        return;
    }
    let env = Env::new(
        "attach",
        &["sh", "-c", "echo started; cat; echo done >&2; exit 0"],
        |_| {},
    );
    let mut o = env.options();
    o.stdin = true;
    o.no_start = true;
    env.start_with(o).unwrap();
    let mut a = attach(&env.state, true);
    assert!(!a.tty);
    env.control(ControlRequest {
        start: Some(true),
        ..Default::default()
    })
    .unwrap();
    // Attached before start: nothing is missed.
    read_attach(&mut a.stream, false, Duration::from_secs(20), |o, _| {
        o.contains("started\n")
    });
    for word in ["hello", "world"] {
        a.stream.write_all(format!("{word}\n").as_bytes()).unwrap();
        let (out, _, _) = read_attach(&mut a.stream, false, Duration::from_secs(20), |o, _| {
            o.contains(&format!("{word}\n"))
        });
        assert!(out.contains(word));
    }
    // A second, output-only client sees live output too.
    let mut b = attach(&env.state, false);
    a.stream.write_all(b"both\n").unwrap();
    read_attach(&mut b.stream, false, Duration::from_secs(20), |o, _| {
        o.contains("both\n")
    });
    // EOF on stdin closes the container's stdin: cat ends, the container exits.
    a.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let (_, err, eof) = read_attach(&mut a.stream, false, Duration::from_secs(20), |_, _| false);
    assert!(eof);
    assert!(err.contains("done\n"), "{err:?}");
    assert_eq!(env.wait().exit_code, 0);
    let logged: Vec<String> = env.log_entries().into_iter().map(|e| e.1).collect();
    assert_eq!(
        logged,
        ["started\n", "hello\n", "world\n", "both\n", "done\n"]
    );
}

#[test]
fn tty_mode_with_resize() {
    if !require_root() {
        return;
    }
    let env =
        Env::new("tty", &["sh"], |s| s["process"]["terminal"] = json!(true)).with_long_state_dir();
    assert!(env.state.join(protocol::CONTROL_SOCKET).as_os_str().len() > 108);
    let mut o = env.options();
    o.tty = true;
    o.stdin = true;
    o.no_start = true;
    env.start_with(o).unwrap();
    let mut a = attach(&env.state, true);
    assert!(a.tty);
    env.control(ControlRequest {
        resize: Some([33, 77]),
        ..Default::default()
    })
    .unwrap();
    env.control(ControlRequest {
        start: Some(true),
        ..Default::default()
    })
    .unwrap();
    a.stream.write_all(b"stty size\n").unwrap();
    read_attach(&mut a.stream, true, Duration::from_secs(20), |o, _| {
        o.contains("33 77")
    });
    env.control(ControlRequest {
        resize: Some([40, 100]),
        ..Default::default()
    })
    .unwrap();
    a.stream.write_all(b"stty size; tty\n").unwrap();
    let (out, _, _) = read_attach(&mut a.stream, true, Duration::from_secs(20), |o, _| {
        o.contains("40 100") && o.contains("/dev/pts/")
    });
    assert!(out.contains("40 100"));
    a.stream.write_all(b"exit 5\n").unwrap();
    let (_, _, eof) = read_attach(&mut a.stream, true, Duration::from_secs(20), |_, _| false);
    assert!(eof);
    assert_eq!(env.wait().exit_code, 5);
    // Terminal output is logged as stdout, with the terminal's \r\n line ends.
    let logged: String = env.log_entries().into_iter().map(|e| e.1).collect();
    assert!(logged.contains("40 100\r\n"), "{logged:?}");
    // Resizing a container without a terminal is refused clearly.
    let env2 = Env::new("notty", &["sleep", "30"], |_| {});
    env2.start();
    let e = env2
        .control(ControlRequest {
            resize: Some([10, 10]),
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("no terminal"), "{e}");
}

#[test]
fn container_survives_its_spawner_being_killed() {
    if !require_root() {
        return;
    }
    let env = Env::new(
        "live",
        &[
            "sh",
            "-c",
            "trap 'echo bye; exit 7' TERM; while true; do echo tick; sleep 0.1; done",
        ],
        |_| {},
    );
    // The "daemon": a shell that starts the shim and then lingers, to be killed -9.
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("\"$0\" \"$@\"; exec 3>&-; exec sleep 1000")
        .arg(SHIM)
        .args(env.options().to_args());
    let (ready, mut daemon) = env.launch(cmd);
    ready.unwrap();
    let shim_pid = client::shim_pid(&env.state).expect("shim running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    daemon.wait().unwrap();
    // The shim is not the daemon's child, has its own session, and keeps going.
    let stat = fs::read_to_string(format!("/proc/{shim_pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let (ppid, sid): (i32, i32) = (fields[1].parse().unwrap(), fields[3].parse().unwrap());
    assert_ne!(ppid, daemon.id() as i32);
    let our_sid = nix::unistd::getsid(None).unwrap().as_raw();
    assert_ne!(sid, our_sid, "the shim is in a session of its own");
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let before = size(&env.log);
    std::thread::sleep(Duration::from_millis(600));
    assert!(size(&env.log) > before, "the container stopped logging");
    // A new client (a restarted daemon) attaches, sees output, and can stop and wait.
    let mut a = attach(&env.state, false);
    read_attach(&mut a.stream, false, Duration::from_secs(10), |o, _| {
        o.contains("tick\n")
    });
    let st = env
        .control(ControlRequest {
            state: Some(true),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(st.status.as_deref(), Some("running"));
    assert_eq!(st.shim_pid, Some(shim_pid));
    env.control(ControlRequest {
        kill: Some("TERM".into()),
        all: Some(false),
        ..Default::default()
    })
    .unwrap();
    let exit = env.wait();
    assert_eq!(exit.exit_code, 7);
    let (out, _, eof) = read_attach(&mut a.stream, false, Duration::from_secs(10), |_, _| false);
    assert!(eof && out.contains("bye\n"), "{out:?}");
    assert!(env.shim_gone());
}

#[test]
fn exec_via_control_socket() {
    if !require_root() {
        return;
    }
    let env = Env::new("exec", &["sleep", "1000"], |_| {});
    env.start();
    // Output and exit code, streams separated.
    let r = env
        .control(ControlRequest {
            exec: Some(ExecRequest {
                id: "e1".into(),
                process: Some(json!({
                    "args": ["sh", "-c", "echo exec-out; echo exec-err >&2; exit 4"]
                })),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
    assert!(r.pid.unwrap() > 0);
    let sock = r.socket.unwrap();
    assert_eq!(sock, protocol::exec_socket(&env.state, "e1"));
    // Its output waited for us (it was held until a client attached).
    std::thread::sleep(Duration::from_millis(300));
    let mut a = client::attach_socket(
        &sock,
        &AttachRequest {
            stdout: true,
            stderr: true,
            ..Default::default()
        },
    )
    .unwrap();
    let (out, err, eof) = read_attach(&mut a.stream, false, Duration::from_secs(20), |_, _| false);
    assert!(eof);
    assert_eq!(out, "exec-out\n");
    assert_eq!(err, "exec-err\n");
    let st = client::wait_exec(&env.state, "e1").unwrap();
    assert_eq!(st.exit_code, 4);
    let rec: ExitStatus =
        serde_json::from_slice(&fs::read(protocol::exec_exit_file(&env.state, "e1")).unwrap())
            .unwrap();
    assert_eq!(rec.exit_code, 4);
    // The id is taken now.
    let dup = env.control(ControlRequest {
        exec: Some(ExecRequest {
            id: "e1".into(),
            inline: json!({"args": ["true"]}).as_object().unwrap().clone(),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert!(dup.unwrap_err().to_string().contains("already in use"));

    // stdin, with the process keys inline.
    let r = env
        .control(ControlRequest {
            exec: Some(ExecRequest {
                id: "cat".into(),
                stdin: true,
                inline: json!({"args": ["cat"]}).as_object().unwrap().clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
    let mut a = client::attach_socket(
        &r.socket.unwrap(),
        &AttachRequest {
            stdin: true,
            stdout: true,
            ..Default::default()
        },
    )
    .unwrap();
    a.stream.write_all(b"ping\n").unwrap();
    read_attach(&mut a.stream, false, Duration::from_secs(20), |o, _| {
        o == "ping\n"
    });
    a.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let (_, _, eof) = read_attach(&mut a.stream, false, Duration::from_secs(20), |_, _| false);
    assert!(eof);
    assert_eq!(client::wait_exec(&env.state, "cat").unwrap().exit_code, 0);

    // A terminal, resized through the control socket.
    let r = env
        .control(ControlRequest {
            exec: Some(ExecRequest {
                id: "t".into(),
                tty: true,
                stdin: true,
                process: Some(json!({"args": ["sh"]})),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
    env.control(ControlRequest {
        resize: Some([21, 61]),
        exec_id: Some("t".into()),
        ..Default::default()
    })
    .unwrap();
    let mut a = client::attach_socket(
        &r.socket.unwrap(),
        &AttachRequest {
            stdin: true,
            stdout: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(a.tty);
    a.stream.write_all(b"stty size; exit 9\n").unwrap();
    let (out, _, eof) = read_attach(&mut a.stream, true, Duration::from_secs(20), |_, _| false);
    assert!(eof && out.contains("21 61"), "{out:?}");
    assert_eq!(client::wait_exec(&env.state, "t").unwrap().exit_code, 9);

    // Detached: output discarded, exit code recorded.
    env.control(ControlRequest {
        exec: Some(ExecRequest {
            id: "d".into(),
            detach: true,
            process: Some(json!({"args": ["sh", "-c", "yes | head -c 1000000; exit 2"]})),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(client::wait_exec(&env.state, "d").unwrap().exit_code, 2);

    // A bad exec is refused with the runtime's reason.
    let bad = env.control(ControlRequest {
        exec: Some(ExecRequest {
            id: "bad".into(),
            process: Some(json!({"args": ["/no/such/binary"]})),
            ..Default::default()
        }),
        ..Default::default()
    });
    let msg = bad.unwrap_err().to_string();
    assert!(msg.contains("/no/such/binary"), "{msg}");

    // The container's log has none of the execs' output.
    assert!(env.log_entries().is_empty());
    env.control(ControlRequest {
        kill: Some("KILL".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(env.wait().exit_code, 137);
}

#[test]
fn log_rotation_and_tail_across_files() {
    if !require_root() {
        return;
    }
    let env = Env::new(
        "rotate",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 500 ]; do echo \"line $i\"; i=$((i+1)); done",
        ],
        |_| {},
    );
    let mut o = env.options();
    o.log = Some(LogConfig {
        path: env.log.clone(),
        max_size: Some(2048),
        max_files: 4,
    });
    env.start_with(o).unwrap();
    assert_eq!(env.wait().exit_code, 0);
    let rotated = |n: u32| shim::jsonlog::writer::rotated_path(&env.log, n);
    for n in 0..4 {
        assert!(rotated(n).exists(), "{} missing", rotated(n).display());
    }
    assert!(!rotated(4).exists());
    for n in 1..4 {
        let len = fs::metadata(rotated(n)).unwrap().len();
        assert!(
            (2048..2048 + 200).contains(&len),
            "file .{n} is {len} bytes"
        );
    }
    let tail: Vec<String> = read_logs(
        &env.log,
        ReadOptions {
            tail: Some(60),
            ..Default::default()
        },
    )
    .unwrap()
    .map(|e| String::from_utf8(e.unwrap().log).unwrap())
    .collect();
    let want: Vec<String> = (440..500).map(|i| format!("line {i}\n")).collect();
    assert_eq!(tail, want);
    // Everything kept is in order and ends with the last line.
    let all: Vec<String> = env.log_entries().into_iter().map(|e| e.1).collect();
    let first: usize = all[0]
        .trim_end()
        .trim_start_matches("line ")
        .parse()
        .unwrap();
    let want: Vec<String> = (first..500).map(|i| format!("line {i}\n")).collect();
    assert_eq!(all, want);
    assert!(first > 0, "old lines were rotated away");
}

#[test]
fn follow_reads_a_rotating_log_until_the_container_exits() {
    if !require_root() {
        return;
    }
    let env = Env::new(
        "follow",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 40 ]; do echo \"n $i\"; i=$((i+1)); sleep 0.02; done; echo last >&2",
        ],
        |_| {},
    );
    let mut o = env.options();
    o.log = Some(LogConfig {
        path: env.log.clone(),
        max_size: Some(600),
        max_files: 3,
    });
    let opts = ReadOptions {
        follow: true,
        stop_file: Some(env.state.join(protocol::EXIT_FILE)),
        ..Default::default()
    };
    // The reader starts before the log exists, as `docker logs -f` right after `run -d`.
    let path = env.log.clone();
    let reader = std::thread::spawn(move || {
        read_logs(&path, opts)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.stream, String::from_utf8(e.log).unwrap())
            })
            .collect::<Vec<_>>()
    });
    env.start_with(o).unwrap();
    assert_eq!(env.wait().exit_code, 0);
    let got = within(Duration::from_secs(20), "follow to end", move || {
        reader.join().unwrap()
    });
    let mut want: Vec<(Stream, String)> = (0..40)
        .map(|i| (Stream::Stdout, format!("n {i}\n")))
        .collect();
    want.push((Stream::Stderr, "last\n".into()));
    assert_eq!(got, want);
    assert!(shim::jsonlog::writer::rotated_path(&env.log, 2).exists());
}

#[test]
fn containers_that_exit_at_once_never_hang() {
    if !require_root() {
        return;
    }
    let env = Env::new("quick", &["true"], |_| {});
    for _ in 0..8 {
        env.start();
        assert_eq!(env.wait().exit_code, 0);
        assert!(env.shim_gone());
    }
}

#[test]
fn failures_are_reported_on_the_ready_fd() {
    if !require_root() {
        return;
    }
    let env = Env::new("fail", &["/no/such/binary"], |_| {});
    let e = env.start_with(env.options()).unwrap_err();
    assert!(e.to_string().contains("/no/such/binary"), "{e}");
    assert!(env.shim_gone());
    assert!(!env.state.join(protocol::CONTROL_SOCKET).exists());
    assert!(!env.root.join(&env.id).exists());
    assert!(env.cgroup_dirs().iter().all(|d| !d.join(&env.id).exists()));
    // --tty must agree with config.json.
    let mut o = env.options();
    o.tty = true;
    let e = env.start_with(o).unwrap_err();
    assert!(e.to_string().contains("process.terminal"), "{e}");
}

#[test]
fn oom_kill_is_recorded() {
    if !require_root() {
        return;
    }
    let env = Env::new("oom", &["sh", "-c", "tail /dev/zero"], |s| {
        s["linux"]["resources"] = json!({ "memory": { "limit": 33554432, "swap": 33554432 } });
    });
    env.start();
    let exit = env.wait();
    assert_eq!(exit.exit_code, 137, "{exit:?}");
    assert!(exit.oom_killed, "{exit:?}");
}

#[test]
fn throughput_of_logging_and_reading_back() {
    if !require_root() {
        return;
    }
    let mib: u64 = std::env::var("BERTH_SHIM_THROUGHPUT_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let bytes = mib << 20;
    // 100-byte lines (99 characters and a newline).
    let line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopq";
    // Made in the container's /tmp first, then written with cat (busybox `yes | head` alone
    // manages only ~65 MB/s on this machine, which would measure the producer, not the shim).
    let chunk = 10u64 << 20;
    assert_eq!(
        bytes % chunk,
        0,
        "BERTH_SHIM_THROUGHPUT_MIB must be a multiple of 10"
    );
    let script = format!(
        "yes {line} | head -c {chunk} > /tmp/f; i=0; while [ $i -lt {} ]; do cat /tmp/f; i=$((i+1)); done",
        bytes / chunk
    );
    let env = Env::new("speed", &["sh", "-c", &script], |_| {});
    let t0 = Instant::now();
    env.start();
    assert_eq!(env.wait().exit_code, 0);
    let write_s = t0.elapsed().as_secs_f64();
    let file_len = fs::metadata(&env.log).unwrap().len();
    let t1 = Instant::now();
    let mut sink = io::sink();
    let mut r = read_logs(&env.log, ReadOptions::default()).unwrap();
    let n = r.copy_to(&mut sink, Framing::Multiplexed).unwrap();
    let read_s = t1.elapsed().as_secs_f64();
    // One entry per newline, plus the unfinished last line.
    let entries = (bytes / chunk) * (chunk / 100) + (chunk % 100).min(1);
    assert_eq!(n, bytes + 8 * entries, "every entry read back");
    assert_eq!(r.skipped(), 0);
    // The shim's own rate: from the first entry's time stamp to the last's.
    let stamps: Vec<i64> = {
        let mut r = read_logs(&env.log, ReadOptions::default()).unwrap();
        let first = r.next_entry().unwrap().unwrap().time_nanos().unwrap();
        let last = read_logs(
            &env.log,
            ReadOptions {
                tail: Some(1),
                ..Default::default()
            },
        )
        .unwrap()
        .next_entry()
        .unwrap()
        .unwrap()
        .time_nanos()
        .unwrap();
        vec![first, last]
    };
    let log_s = (stamps[1] - stamps[0]) as f64 / 1e9;
    let t2 = Instant::now();
    let tail: Vec<_> = read_logs(
        &env.log,
        ReadOptions {
            tail: Some(1000),
            ..Default::default()
        },
    )
    .unwrap()
    .collect();
    let tail_ms = t2.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(tail.len(), 1000);
    let mb = bytes as f64 / 1e6;
    eprintln!(
        "THROUGHPUT {mib} MiB in 100-byte lines: container->log {:.0} MB/s between first and last entry ({log_s:.2} s), \
         {:.0} MB/s start-to-exit ({write_s:.2} s), log file {:.0} MB; \
         read back (decode + multiplex) {:.0} MB/s of payload, {:.0} MB/s of log file ({read_s:.2} s); tail 1000: {tail_ms:.1} ms",
        mb / log_s,
        mb / write_s,
        file_len as f64 / 1e6,
        mb / read_s,
        file_len as f64 / 1e6 / read_s,
    );
}
