//! Terminals through `berth daemon` with the real docker CLI on a real pseudo-terminal:
//! `docker run -it` (the container sees a tty of the client's size, input echoes, the exit
//! code comes back), `docker exec -it`, `docker attach` to a running `-it` container and
//! detaching with ctrl-p ctrl-q, and TTY resize (the client's window size change reaches the
//! container: `stty size`).

#[path = "daemon_common/mod.rs"]
mod daemon_common;

use daemon_common::*;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The docker CLI on the slave side of a new pty; we hold the master.
struct Term {
    child: Child,
    master: std::fs::File,
    rx: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

fn set_size(fd: i32, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ on a pty fd we own with a valid winsize.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

impl Term {
    fn spawn(sb: &Sandbox, args: &[&str], rows: u16, cols: u16) -> Term {
        let pty = nix::pty::openpty(None, None).unwrap();
        set_size(pty.master.as_raw_fd(), rows, cols);
        let slave: OwnedFd = pty.slave;
        let mut cmd = Command::new(&sb.docker);
        cmd.args(args)
            .env("DOCKER_HOST", format!("unix://{}", sb.sock().display()))
            .env("DOCKER_CONFIG", sb.dir.join("docker-config"))
            .env("TERM", "xterm")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and TIOCSCTTY are async-signal-safe; fd 0 is the pty slave.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut b = [0u8; 4096];
            loop {
                match reader.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(b[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Term {
            child,
            master,
            rx,
            seen: Vec::new(),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Waits until the output so far contains `s`.
    fn expect(&mut self, s: &str) {
        let t = Instant::now();
        while !self.text().contains(s) {
            if let Ok(b) = self.rx.recv_timeout(Duration::from_millis(100)) {
                self.seen.extend(b);
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "no {s:?} on the terminal; saw {:?}",
                self.text()
            );
        }
    }

    /// Like [`Term::expect`], but answers whether `s` came within `limit`.
    fn expect_within(&mut self, s: &str, limit: Duration) -> bool {
        let t = Instant::now();
        while !self.text().contains(s) {
            if t.elapsed() > limit {
                return false;
            }
            if let Ok(b) = self.rx.recv_timeout(Duration::from_millis(100)) {
                self.seen.extend(b);
            }
        }
        true
    }

    fn send(&mut self, s: &[u8]) {
        self.master.write_all(s).unwrap();
    }

    fn resize(&mut self, rows: u16, cols: u16) {
        set_size(self.master.as_raw_fd(), rows, cols);
        // The slave's foreground process group (the docker CLI) gets SIGWINCH from the kernel.
    }

    fn wait(mut self) -> i32 {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            if let Ok(b) = self.rx.recv_timeout(Duration::from_millis(50)) {
                self.seen.extend(b);
            }
            if t.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                panic!("the docker CLI did not exit; terminal: {:?}", self.text());
            }
        }
    }
}

#[test]
fn docker_run_exec_attach_with_a_terminal() {
    let Some(sb) = setup("docker_run_exec_attach_with_a_terminal") else {
        return;
    };

    // run -it: a tty of the client's size, interactive input, the exit code.
    let mut t = Term::spawn(&sb, &["run", "-it", "--rm", "busybox", "sh"], 33, 101);
    t.send(b"stty size; tty; echo mark-$((40+2))\r");
    t.expect("33 101");
    t.expect("/dev/pts/");
    t.expect("mark-42");
    t.resize(40, 120);
    // Give the CLI's SIGWINCH -> resize call time to land, then ask again. On a loaded machine
    // (CI) the resize once landed after the `stty size` was answered: if the new size does
    // not show, change the window once more and ask again.
    std::thread::sleep(Duration::from_millis(500));
    t.send(b"stty size\r");
    if !t.expect_within("40 120", Duration::from_secs(3)) {
        t.resize(41, 121);
        std::thread::sleep(Duration::from_millis(300));
        t.resize(40, 120);
        std::thread::sleep(Duration::from_millis(500));
        t.seen.clear();
        t.send(b"stty size\r");
        t.expect("40 120");
    }
    t.send(b"exit 5\r");
    assert_eq!(t.wait(), 5);

    // exec -it into a detached -it container, then attach and detach with ctrl-p ctrl-q.
    sb.ok(&["run", "-dit", "--name", "tt", "busybox", "sh"]);
    let mut e = Term::spawn(&sb, &["exec", "-it", "tt", "sh"], 25, 80);
    e.send(b"stty size; echo in-exec-$((1+1))\r");
    e.expect("25 80");
    e.expect("in-exec-2");
    e.send(b"exit 3\r");
    assert_eq!(e.wait(), 3);

    let mut a = Term::spawn(&sb, &["attach", "tt"], 24, 80);
    std::thread::sleep(Duration::from_millis(300));
    a.send(b"echo attached-$((3*3))\r");
    a.expect("attached-9");
    a.send(&[0x10, 0x11]); // ctrl-p ctrl-q
                           // The docker CLI notices its detach keys itself and says so (its exit code is its own).
    a.expect("read escape sequence");
    let _ = a.wait();
    assert_eq!(
        sb.ok(&["inspect", "-f", "{{.State.Running}}", "tt"]).trim(),
        "true",
        "detaching must leave the container running"
    );
    // The shell's output while attached is in its log too.
    assert!(sb.ok(&["logs", "tt"]).contains("attached-9"));
    sb.ok(&["rm", "-f", "tt"]);
}
