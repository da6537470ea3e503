//! Unix sockets at paths of any length.
//!
//! Owns: binding and connecting the shim's sockets. A socket address holds at most 107 bytes
//! of path, and a state directory under `/var/lib/berth/containers/<64 hex>/` with an exec
//! id can exceed that; longer paths are reached through `/proc/self/fd/<dirfd>/<name>`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Longest path used directly (sun_path is 108 bytes with its NUL; keep a margin).
const DIRECT_MAX: usize = 100;

/// Runs `f` with a path that reaches `path` and fits in a socket address.
fn with_short_path<T>(path: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    if path.as_os_str().len() <= DIRECT_MAX {
        return f(path);
    }
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(d), Some(n)) => (d, n),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("socket path {} has no file name", path.display()),
            ))
        }
    };
    let d = File::open(dir)?;
    let mut short = PathBuf::from(format!("/proc/self/fd/{}", d.as_raw_fd()));
    short.push(name);
    if short.as_os_str().len() > DIRECT_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "socket name {:?} is too long for a unix socket address",
                name
            ),
        ));
    }
    let r = f(&short);
    drop(d);
    r
}

/// Binds a listening socket at `path` (a stale socket file there is removed first).
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    with_short_path(path, |p| UnixListener::bind(p))
}

/// Connects to the socket at `path`.
pub fn connect(path: &Path) -> io::Result<UnixStream> {
    with_short_path(path, |p| UnixStream::connect(p))
}

/// Calls `f` with a path for `path` that fits a socket address (for APIs that connect by
/// path themselves, such as the runtime's console socket). The path is only valid inside `f`.
pub fn short_path<T>(path: &Path, f: impl FnOnce(&Path) -> T) -> io::Result<T> {
    with_short_path(path, |p| Ok(f(p)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn long_paths_work() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(90));
        std::fs::create_dir(&deep).unwrap();
        let p = deep.join("exec-0123456789abcdef0123456789abcdef.sock");
        assert!(p.as_os_str().len() > 108);
        let l = bind(&p).unwrap();
        let mut c = connect(&p).unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(b"hi").unwrap();
        let mut b = [0u8; 2];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hi");
        // Binding again replaces the stale socket.
        drop(l);
        bind(&p).unwrap();
    }
}
