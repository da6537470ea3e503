//! The host side of a foreground terminal (`run`/`exec` with a tty and no console socket):
//! our stdin goes to the pty master, the master's output to our stdout, the host terminal is
//! put in raw mode meanwhile and window size changes are passed on.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;
use nix::sys::termios::{self, SetArg, Termios};

/// A running terminal proxy; restores the host terminal when dropped.
pub struct Proxy {
    master: OwnedFd,
    saved: Option<Termios>,
    stdin_open: bool,
}

fn stdin() -> BorrowedFd<'static> {
    // SAFETY: fd 0 is open for the life of the process (or reads fail, which we handle).
    unsafe { BorrowedFd::borrow_raw(0) }
}

fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: writing from a valid slice to a descriptor we hold.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n <= 0 {
            if n < 0 && nix::Error::last() == nix::Error::EINTR {
                continue;
            }
            return;
        }
        buf = &buf[n as usize..];
    }
}

impl Proxy {
    pub fn new(master: OwnedFd) -> Proxy {
        let saved = termios::tcgetattr(stdin()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin(), SetArg::TCSANOW, &raw);
        }
        let p = Proxy {
            master,
            saved,
            stdin_open: true,
        };
        p.resize();
        p
    }

    /// Copy the host terminal's size to the pty.
    pub fn resize(&self) {
        if let Some((r, c)) = crate::console::get_size(0) {
            let _ = crate::console::set_size(self.master.as_raw_fd(), r, c);
        }
    }

    /// Move data until the signalfd is readable; returns true then.
    pub fn pump(&mut self, sfd: &SignalFd) -> bool {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let mut fds = vec![
                PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.master.as_fd(), PollFlags::POLLIN),
            ];
            if self.stdin_open {
                fds.push(PollFd::new(stdin(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::Error::EINTR) => continue,
                Err(_) => return true,
                Ok(_) => {}
            }
            let rev = |i: usize| {
                fds.get(i)
                    .and_then(|f| f.revents())
                    .unwrap_or(PollFlags::empty())
            };
            let (sig, m, i) = (rev(0), rev(1), rev(2));
            if !m.is_empty() {
                match nix::unistd::read(self.master.as_raw_fd(), &mut buf) {
                    Ok(n) if n > 0 => write_all(1, &buf[..n]),
                    // EIO: the container side closed; wait for its exit via the signalfd.
                    _ => return true,
                }
            }
            if !i.is_empty() {
                match nix::unistd::read(0, &mut buf) {
                    Ok(n) if n > 0 => write_all(self.master.as_raw_fd(), &buf[..n]),
                    _ => self.stdin_open = false,
                }
            }
            if !sig.is_empty() {
                return true;
            }
        }
    }

    /// Copy whatever output is left after the process exited.
    pub fn drain(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::ZERO) {
                Ok(n) if n > 0 => match nix::unistd::read(self.master.as_raw_fd(), &mut buf) {
                    Ok(n) if n > 0 => write_all(1, &buf[..n]),
                    _ => return,
                },
                _ => return,
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(stdin(), SetArg::TCSANOW, t);
        }
    }
}
