//! Directory-fd based filesystem operations used by the layer unpacker: every path is resolved
//! one component at a time from an open root directory, symlinks met on the way are resolved
//! *inside* the root (as if the root were `/`), and the final component is never followed.
//! Nothing here can reach a file outside the root.

use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// Maximum number of symlinks followed while resolving one path (like the kernel's 40).
const MAX_SYMLINKS: usize = 40;

/// Opens a directory (following symlinks only for `path` itself, which the caller chose).
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let fd = openat(
        None,
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    Ok(owned(fd))
}

/// Wraps a freshly returned raw fd.
pub fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open-like syscall and is owned by nobody
    // else; OwnedFd takes over closing it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Opens `name` in `dir` as a directory, refusing symlinks.
pub fn open_subdir(dir: RawFd, name: &OsStr) -> io::Result<OwnedFd> {
    let fd = openat(
        Some(dir),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    Ok(owned(fd))
}

/// `lstat` of `name` in `dir`; `None` when it does not exist.
pub fn lstat_at(dir: RawFd, name: &OsStr) -> io::Result<Option<FileStat>> {
    match fstatat(Some(dir), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// File type bits of a stat.
pub fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT)
}

/// Splits a path's bytes into components (empty ones and `.` dropped, `..` kept).
pub fn components(bytes: &[u8]) -> Vec<OsString> {
    bytes
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| OsString::from_vec(c.to_vec()))
        .collect()
}

/// Lexically cleans a path that must stay inside the root: leading `/` is dropped, `.` and
/// empty components are removed and `..` pops. Returns `None` when `..` would climb above the
/// root.
pub fn clean_inside(bytes: &[u8]) -> Option<Vec<OsString>> {
    let mut out: Vec<OsString> = Vec::new();
    for c in components(bytes) {
        if c.as_bytes() == b".." {
            out.pop()?;
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// What went wrong while resolving a path inside the root.
#[derive(Debug)]
pub enum ResolveError {
    /// A component that must be a directory is something else.
    NotADirectory(OsString),
    /// Too many symlinks.
    Loop,
    /// A syscall failed.
    Io(io::Error),
}

impl From<Errno> for ResolveError {
    fn from(e: Errno) -> Self {
        ResolveError::Io(e.into())
    }
}

impl From<io::Error> for ResolveError {
    fn from(e: io::Error) -> Self {
        ResolveError::Io(e)
    }
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::NotADirectory(c) => {
                write!(f, "path component {:?} is not a directory", c)
            }
            ResolveError::Loop => write!(f, "too many levels of symbolic links"),
            ResolveError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Resolves `comps` as a directory inside `root` and opens it. Symlinks are followed with the
/// root as `/` (absolute targets restart at the root, `..` never climbs above it). With
/// `create`, missing directories are made (mode 0755). Returns the open directory.
pub fn resolve_dir(
    root: &OwnedFd,
    comps: &[OsString],
    create: bool,
) -> Result<OwnedFd, ResolveError> {
    let mut queue: VecDeque<OsString> = comps.iter().cloned().collect();
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut links = 0usize;
    while let Some(c) = queue.pop_front() {
        let b = c.as_bytes();
        if b.is_empty() || b == b"." {
            continue;
        }
        if b == b".." {
            stack.pop();
            continue;
        }
        let cur = stack.last().unwrap_or(root).as_raw_fd();
        match lstat_at(cur, &c)? {
            Some(st) if kind(&st) == SFlag::S_IFLNK => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(ResolveError::Loop);
                }
                let target = readlinkat(Some(cur), c.as_os_str())?;
                let tb = target.as_bytes();
                if tb.first() == Some(&b'/') {
                    stack.clear();
                }
                for t in components(tb).into_iter().rev() {
                    queue.push_front(t);
                }
            }
            Some(st) if kind(&st) == SFlag::S_IFDIR => {
                stack.push(open_subdir(cur, &c)?);
            }
            Some(_) => return Err(ResolveError::NotADirectory(c)),
            None if create => {
                match mkdirat(Some(cur), c.as_os_str(), Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                stack.push(open_subdir(cur, &c)?);
            }
            None => return Err(ResolveError::Io(io::Error::from(io::ErrorKind::NotFound))),
        }
    }
    match stack.pop() {
        Some(fd) => Ok(fd),
        None => Ok(root.try_clone()?),
    }
}

/// Set once `openat2` turned out to be unusable here (an old kernel, or a seccomp filter that
/// refuses it), so [`open_dir_in_root`] stops trying.
static OPENAT2_UNUSABLE: AtomicBool = AtomicBool::new(false);

/// Opens the directory `comps` inside `root` with one `openat2(RESOLVE_IN_ROOT |
/// RESOLVE_NO_MAGICLINKS)` call: the kernel resolves symlinks with `root` as `/` and never lets
/// `..` climb above it — the rules of [`resolve_dir`], without creating anything. `None` when
/// that did not work for any reason (missing component, not a directory, a kernel without
/// openat2...): the caller then falls back to [`resolve_dir`], which gives the precise error.
pub fn open_dir_in_root(root: RawFd, comps: &[OsString]) -> Option<OwnedFd> {
    if OPENAT2_UNUSABLE.load(Ordering::Relaxed) {
        return None;
    }
    let mut path = Vec::with_capacity(comps.iter().map(|c| c.len() + 1).sum());
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            path.push(b'/');
        }
        path.extend_from_slice(c.as_bytes());
    }
    if path.is_empty() {
        path.push(b'.');
    }
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(root, OsStr::from_bytes(&path), how) {
        Ok(fd) => Some(owned(fd)),
        Err(Errno::ENOSYS) | Err(Errno::EPERM) | Err(Errno::E2BIG) | Err(Errno::EINVAL) => {
            OPENAT2_UNUSABLE.store(true, Ordering::Relaxed);
            None
        }
        Err(_) => None,
    }
}

/// Removes `name` in `dir` (recursively if it is a directory, never following symlinks).
/// Not an error if it does not exist.
pub fn remove_all_at(dir: RawFd, name: &OsStr) -> io::Result<()> {
    let st = match lstat_at(dir, name)? {
        Some(st) => st,
        None => return Ok(()),
    };
    if kind(&st) == SFlag::S_IFDIR {
        let sub = open_subdir(dir, name)?;
        clear_dir(sub.as_raw_fd(), &|_| false)?;
        unlinkat(Some(dir), name, UnlinkatFlags::RemoveDir)?;
    } else {
        unlinkat(Some(dir), name, UnlinkatFlags::NoRemoveDir)?;
    }
    Ok(())
}

/// Names in a directory (without `.` and `..`).
pub fn list_dir(dir: RawFd) -> io::Result<Vec<OsString>> {
    let mut d = nix::dir::Dir::openat(
        Some(dir),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    for ent in d.iter() {
        let ent = ent?;
        let name = ent.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        out.push(OsString::from_vec(name.to_vec()));
    }
    Ok(out)
}

/// Removes every entry of `dir` for which `keep(name)` is false.
pub fn clear_dir(dir: RawFd, keep: &dyn Fn(&OsStr) -> bool) -> io::Result<()> {
    for name in list_dir(dir)? {
        if !keep(&name) {
            remove_all_at(dir, &name)?;
        }
    }
    Ok(())
}

/// A C string of `/proc/self/fd/<dir>/<name>`: names `name` inside `dir` for path-only
/// syscalls (the magic link is the parent, so `name` itself is not followed by l* calls).
pub fn proc_path(dir: RawFd, name: &OsStr) -> io::Result<CString> {
    let mut v = format!("/proc/self/fd/{dir}/").into_bytes();
    v.extend_from_slice(name.as_bytes());
    CString::new(v).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Sets an extended attribute on `name` in `dir` without following it.
pub fn lsetxattr_at(dir: RawFd, name: &OsStr, key: &str, value: &[u8]) -> io::Result<()> {
    let p = proc_path(dir, name)?;
    let k = CString::new(key).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: both C strings are valid and NUL-terminated for the call; value points to
    // value.len() readable bytes.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            k.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets an extended attribute on an open file.
pub fn fsetxattr(fd: RawFd, key: &str, value: &[u8]) -> io::Result<()> {
    let k = CString::new(key).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `k` is a valid C string; value points to value.len() readable bytes; fd is open.
    let r = unsafe { libc::fsetxattr(fd, k.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the open file `fd` has the extended attribute `key`.
pub fn has_xattr(fd: RawFd, key: &str) -> bool {
    let Ok(k) = CString::new(key) else {
        return false;
    };
    // SAFETY: `k` is a valid C string; a zero size asks for the value's length only, so no
    // buffer is written.
    let r = unsafe { libc::fgetxattr(fd, k.as_ptr(), std::ptr::null_mut(), 0) };
    r >= 0
}

/// The process' umask, read from `/proc/self/status` (calling umask(2) would change it for
/// every thread for a moment); `None` if it cannot be read.
pub fn process_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Umask:"))?;
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
}

/// Lists the extended attribute names of `path` (not following it).
pub fn llistxattr(path: &Path) -> io::Result<Vec<String>> {
    let p = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `p` is a valid C string and buf has buf.len() writable bytes.
        let n = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ERANGE) => {
                    buf.resize(buf.len() * 4, 0);
                    continue;
                }
                Some(libc::ENOTSUP) => return Ok(Vec::new()),
                _ => return Err(e),
            }
        }
        let n = n as usize;
        return Ok(buf[..n]
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .filter_map(|s| std::str::from_utf8(s).ok().map(str::to_string))
            .collect());
    }
}

/// Reads one extended attribute of `path` (not following it); `None` when absent.
pub fn lgetxattr(path: &Path, key: &str) -> io::Result<Option<Vec<u8>>> {
    let p = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let k = CString::new(key).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: valid C strings; buf has buf.len() writable bytes.
        let n =
            unsafe { libc::lgetxattr(p.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ERANGE) => {
                    buf.resize(buf.len() * 4, 0);
                    continue;
                }
                Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(None),
                _ => return Err(e),
            }
        }
        buf.truncate(n as usize);
        return Ok(Some(buf));
    }
}

/// Opens the regular file at `rel` inside `root` for reading, resolving every symlink (the
/// file's own too) inside the root. `None` when it does not exist or is not a regular file.
pub fn open_in_root(root: &Path, rel: &str) -> io::Result<Option<std::fs::File>> {
    let rootfd = open_dir(root)?;
    let mut comps = match clean_inside(rel.as_bytes()) {
        Some(c) => c,
        None => components(rel.as_bytes()),
    };
    for _ in 0..MAX_SYMLINKS {
        let Some((name, parent)) = comps.split_last() else {
            return Ok(None);
        };
        let (name, parent) = (name.clone(), parent.to_vec());
        let dir = match resolve_dir(&rootfd, &parent, false) {
            Ok(d) => d,
            Err(ResolveError::Io(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(ResolveError::NotADirectory(_)) => return Ok(None),
            Err(ResolveError::Loop) => return Err(io::Error::from_raw_os_error(libc::ELOOP)),
            Err(ResolveError::Io(e)) => return Err(e),
        };
        if name.as_bytes() == b".." {
            return Ok(None);
        }
        match lstat_at(dir.as_raw_fd(), &name)? {
            None => return Ok(None),
            Some(st) if kind(&st) == SFlag::S_IFLNK => {
                let target = readlinkat(Some(dir.as_raw_fd()), name.as_os_str())?;
                let tb = target.as_bytes();
                comps = if tb.first() == Some(&b'/') {
                    components(tb)
                } else {
                    let mut c = parent;
                    c.extend(components(tb));
                    c
                };
            }
            Some(st) if kind(&st) == SFlag::S_IFREG => {
                let fd = openat(
                    Some(dir.as_raw_fd()),
                    name.as_os_str(),
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                return Ok(Some(std::fs::File::from(owned(fd))));
            }
            Some(_) => return Ok(None),
        }
    }
    Err(io::Error::from_raw_os_error(libc::ELOOP))
}

/// Reads the file at `rel` inside `root` (see [`open_in_root`]). `None` when it does not
/// exist.
pub fn read_in_root(root: &Path, rel: &str) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    match open_in_root(root, rel)? {
        None => Ok(None),
        Some(mut f) => {
            let mut v = Vec::new();
            f.read_to_end(&mut v)?;
            Ok(Some(v))
        }
    }
}

/// Creates the directory `rel` inside `root` (and its parents, mode 0755), resolving symlinks
/// inside the root.
pub fn mkdir_all_in_root(root: &Path, rel: &str) -> io::Result<()> {
    let rootfd = open_dir(root)?;
    let comps = components(rel.as_bytes());
    match resolve_dir(&rootfd, &comps, true) {
        Ok(_) => Ok(()),
        Err(ResolveError::Io(e)) => Err(e),
        Err(ResolveError::Loop) => Err(io::Error::from_raw_os_error(libc::ELOOP)),
        Err(ResolveError::NotADirectory(_)) => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
    }
}
