//! Guard against the /proc/self/exe overwrite class (CVE-2019-5736): a process inside a
//! container that can reach the runtime's binary through `/proc/PID/exe` (for instance by
//! making `exec` run `#!/proc/self/exe`) must not be able to write to it.
//!
//! Instead of copying the binary into a sealed memfd on every command (youki's approach, which
//! costs milliseconds per command), the runtime runs from a **read-only bind mount** of its own
//! binary, made once per boot and per binary at `/run/berth/exe/<dev>-<inode>-<mtime>/berth`
//! (so two berth builds or versions side by side never run each other's code): any open for
//! writing through
//! `/proc/PID/exe` then fails with EROFS, and a container cannot remount a mount of the host's
//! mount namespace. A command started from the writable path re-executes itself once through the
//! sealed path (about a millisecond); callers that know the sealed path (the berth daemon) use it
//! directly and pay nothing. A replaced binary (an upgrade) has a new inode, hence a new
//! sealed path; processes still running the old one keep theirs.

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Where the read-only view of the binary lives.
pub const SEALED_DIR: &str = "/run/berth/exe";
const ENV_MARK: &str = "_BERTH_SEALED";

/// Errors making or using the sealed binary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot protect the runtime binary ({what} {path}): {source}; containers could overwrite it, refusing to continue")]
    Sys {
        what: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("cannot protect the runtime binary ({what} {path}): {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn is_readonly(p: &Path) -> bool {
    nix::sys::statvfs::statvfs(p)
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        .unwrap_or(false)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Is this process already running from a read-only mount?
pub fn running_sealed() -> bool {
    is_readonly(Path::new("/proc/self/exe"))
}

/// Make sure `/run/berth/exe/<dev>-<inode>-<mtime>/berth` is a read-only bind of the current
/// binary; return its path.
pub fn sealed_path() -> Result<PathBuf, Error> {
    sealed_path_in(Path::new(SEALED_DIR))
}

/// Make sure `BASE/<dev>-<inode>-<mtime>/berth` is a read-only bind of the current binary;
/// return its path. A daemon seals under its own exec root; the key keeps builds apart even
/// under one base (a single machine-wide seal would be re-bound by whichever started last).
pub fn sealed_path_in(base: &Path) -> Result<PathBuf, Error> {
    let exe = std::fs::read_link("/proc/self/exe").map_err(|source| Error::Io {
        what: "readlink",
        path: "/proc/self/exe".into(),
        source,
    })?;
    let md = std::fs::metadata(&exe).map_err(|source| Error::Io {
        what: "stat",
        path: exe.clone(),
        source,
    })?;
    let key = format!("{}-{}-{}", md.dev(), md.ino(), md.mtime());
    let dir_buf = base.join(key);
    let dir = dir_buf.as_path();
    let target = dir.join("berth");
    if is_readonly(&target) && same_file(&target, &exe) {
        return Ok(target);
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        what: "mkdir",
        path: dir.to_path_buf(),
        source,
    })?;
    // Serialise concurrent first uses.
    let lock = std::fs::File::create(dir.join(".lock")).map_err(|source| Error::Io {
        what: "create",
        path: dir.join(".lock"),
        source,
    })?;
    let _locked = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive);
    if is_readonly(&target) && same_file(&target, &exe) {
        return Ok(target);
    }
    // A stale bind (the binary was replaced): peel it off.
    while umount2(&target, MntFlags::MNT_DETACH).is_ok() {}
    if std::fs::symlink_metadata(&target).is_err() {
        std::fs::File::create(&target).map_err(|source| Error::Io {
            what: "create",
            path: target.clone(),
            source,
        })?;
    }
    let sys = |what, source| Error::Sys {
        what,
        path: target.clone(),
        source,
    };
    mount(
        Some(&exe),
        &target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| sys("bind", e))?;
    mount(
        None::<&str>,
        &target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|e| sys("remount read-only", e))?;
    Ok(target)
}

/// Re-execute through the sealed binary unless already running from it. On success this does
/// not return. `args` is this process's argv (argv[0] is kept, so the multi-call name stays).
pub fn reexec_sealed(args: &[String]) -> Result<(), Error> {
    if running_sealed() || std::env::var_os(ENV_MARK).is_some() {
        return Ok(());
    }
    let target = sealed_path()?;
    let cpath = CString::new(target.as_os_str().as_encoded_bytes()).map_err(|_| Error::Io {
        what: "path",
        path: target.clone(),
        source: std::io::Error::other("NUL in path"),
    })?;
    let cargs: Vec<CString> = args
        .iter()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let mut env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut s = k.into_encoded_bytes();
            s.push(b'=');
            s.extend(v.into_encoded_bytes());
            CString::new(s).ok()
        })
        .collect();
    env.push(CString::new(format!("{ENV_MARK}=1")).unwrap_or_default());
    let err = nix::unistd::execve(&cpath, &cargs, &env).unwrap_err();
    Err(Error::Sys {
        what: "exec",
        path: target,
        source: err,
    })
}

/// Remove the marker from our environment so children do not inherit it.
pub fn clear_mark() {
    std::env::remove_var(ENV_MARK);
}
