//! Detaching the shim from whoever started it.
//!
//! Owns: the double fork (the caller's child is reaped at once; the shim itself ends up a
//! child of init in its own session, so a daemon killed with -9 or restarted takes nothing
//! with it), the shim's stdio (`/dev/null`, stderr appended to `state-dir/shim.log`), and its
//! pid file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, setsid, ForkResult};

use crate::protocol::{self, Ready};

/// Which process returned from [`daemonize`].
pub(crate) enum Role {
    /// The original process: its child exited with this code; return it.
    Parent(i32),
    /// The detached shim: carry on.
    Shim,
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1)
}

fn report_error(ready: Option<&File>, msg: &str) {
    if let Some(mut f) = ready {
        let mut line = serde_json::to_vec(&Ready {
            pid: None,
            error: Some(msg.to_string()),
        })
        .unwrap_or_default();
        line.push(b'\n');
        let _ = f.write_all(&line);
    }
}

fn exit_now(code: i32) -> ! {
    // SAFETY: ends a forked child without running the parent's exit handlers twice.
    unsafe { libc::_exit(code) }
}

/// Redirects stdin/stdout to /dev/null and stderr to `log`.
pub(crate) fn redirect_stdio(log: &Path) -> Result<(), String> {
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("cannot open /dev/null: {e}"))?;
    let err = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    for (fd, target) in [
        (null.as_raw_fd(), 0),
        (null.as_raw_fd(), 1),
        (err.as_raw_fd(), 2),
    ] {
        // SAFETY: dup2 onto a standard descriptor of this single-threaded process.
        if unsafe { libc::dup2(fd, target) } < 0 {
            return Err(format!(
                "cannot redirect the shim's stdio: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Writes the shim's pid file atomically.
pub(crate) fn write_pid_file(state_dir: &Path) -> Result<(), String> {
    let path = state_dir.join(protocol::PID_FILE);
    crate::server::write_atomic(&path, std::process::id().to_string().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Forks twice and detaches. Must run before the process starts any thread.
pub(crate) fn daemonize(ready: Option<&File>) -> Result<Role, String> {
    if threads() > 1 {
        return Err("berth shim must detach before any thread is started (it forks)".into());
    }
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: this process is single-threaded (checked above), so the child gets a consistent
    // copy of it.
    match unsafe { fork() }.map_err(|e| format!("cannot fork the shim: {e}"))? {
        ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(Role::Parent(code)),
                Ok(WaitStatus::Signaled(_, s, _)) => return Ok(Role::Parent(128 + s as i32)),
                Ok(_) | Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(format!("cannot wait for the shim's first child: {e}")),
            }
        },
        ForkResult::Child => {}
    }
    if let Err(e) = setsid() {
        report_error(ready, &format!("shim: setsid: {e}"));
        exit_now(1);
    }
    // SAFETY: still single-threaded (a fork child has one thread).
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => exit_now(0),
        Ok(ForkResult::Child) => {}
        Err(e) => {
            report_error(ready, &format!("cannot fork the shim: {e}"));
            exit_now(1);
        }
    }
    let _ = std::env::set_current_dir("/");
    Ok(Role::Shim)
}
