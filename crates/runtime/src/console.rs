//! Terminals: the container's pty (created inside the container, from its own devpts, and
//! handed to the caller over `--console-socket` as runc does), and the host side used when
//! `run`/`exec` keep a terminal in the foreground.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt, PtyMaster};

/// Errors setting up a terminal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("terminal: {what}: {source}")]
    Sys {
        what: &'static str,
        source: nix::Error,
    },
    #[error("terminal: cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> Error {
    move |source| Error::Sys { what, source }
}

/// A new pty pair: the master and the slave's path.
pub fn open_pty(size: Option<(u16, u16)>) -> Result<(PtyMaster, PathBuf), Error> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(sys("open /dev/ptmx"))?;
    grantpt(&master).map_err(sys("grantpt"))?;
    unlockpt(&master).map_err(sys("unlockpt"))?;
    let name = ptsname_r(&master).map_err(sys("ptsname"))?;
    if let Some((h, w)) = size {
        set_size(master.as_raw_fd(), h, w)?;
    }
    Ok((master, PathBuf::from(name)))
}

/// Set a terminal's size (rows, columns).
pub fn set_size(fd: RawFd, rows: u16, cols: u16) -> Result<(), Error> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a valid winsize struct.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(Error::Sys {
            what: "set window size",
            source: nix::Error::last(),
        });
    }
    Ok(())
}

/// Open the slave and make it this process's stdio and controlling terminal (call after setsid).
pub fn attach_slave(path: &std::path::Path) -> Result<(), Error> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
    let fd: OwnedFd = f.into();
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors of this (single-threaded) process.
        if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
            return Err(Error::Sys {
                what: "dup2",
                source: nix::Error::last(),
            });
        }
    }
    // SAFETY: TIOCSCTTY on a terminal we hold; arg 0 = do not steal.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
        return Err(Error::Sys {
            what: "set controlling terminal",
            source: nix::Error::last(),
        });
    }
    Ok(())
}

/// Size of the terminal on `fd`, if it is one.
pub fn get_size(fd: RawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes into a valid winsize struct we own.
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0).then_some((ws.ws_row, ws.ws_col))
}
