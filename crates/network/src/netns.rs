//! Persistent named network namespaces: a new namespace made by a short-lived thread
//! (`unshare(CLONE_NEWNET)`) and kept alive by bind-mounting its nsfs file on a path (as
//! `ip netns add` does), so links can be set up before a container starts and the namespace
//! outlives its processes; and [`run_in`], which runs a closure inside a namespace from a
//! dedicated thread (`setns`), never touching the caller's threads.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// Errors of namespace handling.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A step failed on a path.
    #[error("network namespace {path}: cannot {what}: {err}")]
    Sys {
        what: &'static str,
        path: PathBuf,
        err: nix::Error,
    },
    /// A file step failed.
    #[error("network namespace {path}: cannot {what}: {err}")]
    Io {
        what: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    /// The helper thread died.
    #[error("network namespace {0}: the helper thread panicked")]
    Thread(PathBuf),
}

/// Creates a new network namespace kept alive by a bind mount on `path` (its parent dir is
/// created). An existing namespace mount on `path` is replaced.
pub fn create(path: &Path) -> Result<(), Error> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|err| Error::Io {
            what: "create its directory",
            path: path.to_path_buf(),
            err,
        })?;
    }
    let _ = remove(path);
    File::create(path).map_err(|err| Error::Io {
        what: "create the mount point",
        path: path.to_path_buf(),
        err,
    })?;
    let p = path.to_path_buf();
    let r = std::thread::spawn(move || -> Result<(), Error> {
        // This thread is discarded afterwards, so leaving it in the new namespace is fine.
        // CLONE_FS is not shared between threads of the process for unshare(NEWNET).
        unshare(CloneFlags::CLONE_NEWNET).map_err(|err| Error::Sys {
            what: "unshare",
            path: p.clone(),
            err,
        })?;
        let tid = nix::unistd::gettid();
        let src = format!("/proc/self/task/{tid}/ns/net");
        mount(
            Some(src.as_str()),
            &p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|err| Error::Sys {
            what: "bind-mount",
            path: p.clone(),
            err,
        })
    })
    .join()
    .map_err(|_| Error::Thread(path.to_path_buf()))?;
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

/// Whether `path` is a mounted network namespace (an nsfs file).
pub fn exists(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
        .unwrap_or(false)
}

/// Unmounts (lazily) and deletes a namespace path; missing is fine.
pub fn remove(path: &Path) -> Result<(), Error> {
    while exists(path) {
        if let Err(err) = umount2(path, MntFlags::MNT_DETACH) {
            return Err(Error::Sys {
                what: "unmount",
                path: path.to_path_buf(),
                err,
            });
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::Io {
            what: "remove",
            path: path.to_path_buf(),
            err,
        }),
    }
}

/// Runs `f` on a new thread that first joins the network namespace at `path`; the thread ends
/// with `f`, so no other thread ever changes namespace.
pub fn run_in<T: Send, E: Send + From<Error>>(
    path: &Path,
    f: impl FnOnce() -> Result<T, E> + Send,
) -> Result<T, E> {
    let ns = File::open(path).map_err(|err| Error::Io {
        what: "open",
        path: path.to_path_buf(),
        err,
    })?;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|err| Error::Sys {
                what: "enter (setns)",
                path: path.to_path_buf(),
                err,
            })?;
            f()
        })
        .join()
        .map_err(|_| E::from(Error::Thread(path.to_path_buf())))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_enter_remove() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = std::env::temp_dir().join(format!("berth-netns-test-{}", std::process::id()));
        let p = dir.join("ns1");
        create(&p).unwrap();
        assert!(exists(&p));
        let mine = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        let theirs = run_in::<_, Error>(&p, || {
            Ok(std::fs::read_link("/proc/thread-self/ns/net").unwrap())
        })
        .unwrap();
        assert_ne!(mine, theirs);
        assert_eq!(
            std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
            mine
        );
        remove(&p).unwrap();
        assert!(!p.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
