//! Unpacking one layer tar stream into a directory. Entry paths are cleaned lexically (a
//! leading `/` is dropped; `..` that would climb above the root refuses the layer); parent
//! directories are resolved inside the root — symlinks are followed with the root as `/` —
//! and the final component is created with `*at` calls that never follow it. Hard links must
//! name a target inside the root; symlink targets that climb out of the root are refused like
//! Docker does.
//!
//! Speed: the stream is read and decompressed on the calling thread while another thread
//! parses the tar and writes the files (chunks pass through a bounded channel), so a layer
//! takes about max(decompress, write) instead of their sum. Parent directories are opened
//! once per directory, not once per entry: the open directories of the last parent path are
//! cached ([`DirCache`]), a miss costs one `openat2(RESOLVE_IN_ROOT)` (component-by-component
//! [`resolve_dir`] when that fails), and the cache is emptied whenever an entry removes or
//! replaces anything, so a cached directory is always what resolving its path would give.
//! Entries are created optimistically (`O_EXCL`, `mkdirat`...), and only an `EEXIST` makes
//! the unpacker look at, and replace, what is there.

use std::cell::Cell;
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmodat, futimens, makedev, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, Gid, Uid};

use super::fsops::{self, clean_inside, kind, lstat_at, resolve_dir, ResolveError};
use super::{
    decompress, Compression, LayerError, OVERLAY_OPAQUE_XATTR, WHITEOUT_META_PREFIX,
    WHITEOUT_OPAQUE, WHITEOUT_PREFIX,
};
use crate::digest::{Algorithm, Digest};

/// How whiteouts are represented in the target directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhiteoutMode {
    /// The directory is an overlayfs layer: `.wh.X` becomes a 0/0 character device `X` and
    /// `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory.
    #[default]
    Overlay,
    /// The directory is a merged tree (layers applied on top of each other): `.wh.X` deletes
    /// `X` and `.wh..wh..opq` deletes what lower layers put in its directory.
    Delete,
}

/// Options for [`apply_layer`].
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// How whiteouts are written.
    pub whiteouts: WhiteoutMode,
    /// `.wh.` entries are ordinary files, not whiteouts (`docker cp` into a container).
    pub keep_whiteout_files: bool,
    /// Refuse to replace a directory with a non-directory or the reverse (`docker cp`'s
    /// `noOverwriteDirNonDir`).
    pub no_overwrite_dir_non_dir: bool,
    /// Give every entry this uid and gid instead of the tar's (`docker cp -a`).
    pub chown: Option<(u32, u32)>,
    /// Unpack under this directory of `dest` (a relative path, resolved inside `dest` like
    /// every entry's parent, without creating it) rather than at `dest` itself; symlink and
    /// hard link targets are then checked against `dest`. The archive's root entry (`./`)
    /// is skipped. For `docker cp` into a container: `dest` is its root filesystem, so that
    /// no component of the destination is ever resolved outside the kernel's in-root lookup.
    pub base: Option<std::path::PathBuf>,
}

/// The result of applying a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedLayer {
    /// SHA-256 of the uncompressed tar stream (compare with the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// Size of the uncompressed tar stream.
    pub tar_size: u64,
    /// Bytes of regular-file content written.
    pub unpacked_size: u64,
    /// The compression the stream had.
    pub compression: Compression,
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn join_comps(c: &[OsString]) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, p) in c.iter().enumerate() {
        if i > 0 {
            v.push(b'/');
        }
        v.extend_from_slice(p.as_bytes());
    }
    v
}

/// The xattr holding a directory's default ACL (which decides new entries' modes instead of
/// the umask).
const ACL_DEFAULT_XATTR: &str = "system.posix_acl_default";
/// Bytes of decompressed stream per chunk handed to the unpacking thread.
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the threads (besides the one each thread holds).
const CHUNKS_IN_FLIGHT: usize = 16;
/// Buffer for copying a regular file's content from the tar stream to the file.
const COPY_BUF: usize = 256 << 10;

/// Unpacks the layer stream `r` (plain, gzip or zstd tar) into `dest`, which must be an
/// existing directory. Returns the layer's diffID. On error, `dest` may hold part of the layer
/// (the caller unpacks into a fresh directory and removes it on failure), but nothing outside
/// `dest` is ever touched.
///
/// `r` is read and decompressed (and the diffID hashed) on the calling thread; the tar is
/// parsed and written out by a second, scoped thread, which ends before this returns.
pub fn apply_layer<R: Read>(
    r: R,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<AppliedLayer, LayerError> {
    let root = fsops::open_dir(dest).map_err(|source| LayerError::Io {
        what: "opening target directory",
        path: dest.display().to_string(),
        source,
    })?;
    let (compression, stream) = decompress(r)?;
    let (tx, rx) = mpsc::sync_channel::<Chunk>(CHUNKS_IN_FLIGHT);
    let (hash_tx, hash_rx) = mpsc::sync_channel::<(Buf, usize)>(CHUNKS_IN_FLIGHT);
    let (recycle_tx, recycle_rx) = mpsc::channel::<Buf>();
    let opts = opts.clone();
    let (produced, hashed, unpacked) = std::thread::scope(|s| {
        let recycle = recycle_tx.clone();
        let hasher = std::thread::Builder::new()
            .name("layer-hash".into())
            .spawn_scoped(s, move || {
                let mut h = Algorithm::Sha256.hasher();
                let mut total = 0u64;
                for (buf, n) in hash_rx {
                    h.update(&buf[..n]);
                    total += n as u64;
                    let _ = recycle.send(buf);
                }
                (h.finish(), total)
            });
        let worker = std::thread::Builder::new()
            .name("layer-unpack".into())
            .spawn_scoped(s, move || {
                let reader = ChunkReader {
                    rx,
                    recycle: recycle_tx,
                    cur: None,
                    len: 0,
                    pos: 0,
                    done: false,
                };
                unpack(reader, root, opts)
            });
        let (hasher, worker) = match (hasher, worker) {
            (Ok(h), Ok(w)) => (h, w),
            (Err(e), _) | (_, Err(e)) => {
                // Whichever thread did start ends when its channel closes on return.
                let e = io::Error::other(format!("starting a layer unpacking thread: {e}"));
                return (Produced::Failed(e), None, Ok(0));
            }
        };
        let produced = produce(stream, tx, hash_tx, recycle_rx);
        let unpacked = match worker.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let hashed = match hasher.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (produced, Some(hashed), unpacked)
    });
    // A failure to read or decompress the stream explains whatever the unpacker then saw.
    match produced {
        Produced::Done => {}
        Produced::Failed(e) => return Err(LayerError::Tar(e)),
        Produced::ConsumerGone => {
            unpacked?;
            return Err(LayerError::Tar(io::Error::other(
                "the unpacking thread stopped before the end of the stream",
            )));
        }
    }
    let unpacked_size = unpacked?;
    let Some((diff_id, tar_size)) = hashed else {
        return Err(LayerError::Tar(io::Error::other(
            "the layer stream was not hashed",
        )));
    };
    Ok(AppliedLayer {
        diff_id,
        tar_size,
        unpacked_size,
        compression,
    })
}

/// A buffer of decompressed stream, shared by the unpacking and the hashing threads.
type Buf = Arc<Vec<u8>>;

/// A chunk of decompressed stream (a buffer and how much of it is filled), or the error that
/// ended the stream.
type Chunk = Result<(Buf, usize), io::Error>;

/// How the producing side ended.
enum Produced {
    /// The whole stream was passed on.
    Done,
    /// Reading or decompressing failed.
    Failed(io::Error),
    /// The unpacking thread hung up (it failed; its error says why).
    ConsumerGone,
}

/// A buffer for the next chunk: one both other threads are done with, or a new one.
fn next_buffer(recycle: &Receiver<Buf>) -> Vec<u8> {
    // Every buffer comes back twice (once from each thread); the second one is unshared.
    while let Ok(b) = recycle.try_recv() {
        if let Ok(v) = Arc::try_unwrap(b) {
            return v;
        }
    }
    vec![0u8; CHUNK]
}

/// Reads `stream` to its end in chunks and sends each to the unpacker and the hasher.
fn produce(
    mut stream: Box<dyn Read + '_>,
    tx: SyncSender<Chunk>,
    hash_tx: SyncSender<(Buf, usize)>,
    recycle: Receiver<Buf>,
) -> Produced {
    loop {
        let mut buf = next_buffer(&recycle);
        let mut n = 0;
        while n < buf.len() {
            match stream.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // The unpacker must not take a truncated stream for a complete one.
                    let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                    return Produced::Failed(e);
                }
            }
        }
        if n == 0 {
            return Produced::Done;
        }
        let buf = Arc::new(buf);
        if hash_tx.send((buf.clone(), n)).is_err() || tx.send(Ok((buf, n))).is_err() {
            return Produced::ConsumerGone;
        }
    }
}

/// The unpacking thread's view of the stream: the chunks from [`produce`], in order. Spent
/// buffers go back to the producer for reuse.
struct ChunkReader {
    rx: Receiver<Chunk>,
    recycle: Sender<Buf>,
    cur: Option<Buf>,
    len: usize,
    pos: usize,
    done: bool,
}

impl ChunkReader {
    /// Consumes the rest of the stream (after the tar's end-of-archive blocks the producer
    /// still passes on whatever follows, for the hash); an error if the stream ended with one.
    fn drain(self) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        while let Ok(c) = self.rx.recv() {
            match c {
                Ok((buf, _)) => {
                    let _ = self.recycle.send(buf);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.len {
            if self.done {
                return Ok(0);
            }
            if let Some(b) = self.cur.take() {
                let _ = self.recycle.send(b);
            }
            match self.rx.recv() {
                Ok(Ok((buf, n))) => {
                    self.cur = Some(buf);
                    self.len = n;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let Some(cur) = &self.cur else {
            return Ok(0);
        };
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The unpacking thread: parses the tar from `reader` and writes it under `root`. Returns the
/// bytes of file content written.
fn unpack(reader: ChunkReader, root: OwnedFd, opts: ApplyOptions) -> Result<u64, LayerError> {
    let exact_modes = opts.whiteouts == WhiteoutMode::Overlay
        && !fsops::has_xattr(root.as_raw_fd(), ACL_DEFAULT_XATTR);
    let base = match &opts.base {
        None => Vec::new(),
        Some(b) => clean_inside(b.as_os_str().as_bytes()).ok_or_else(|| LayerError::Breakout {
            path: b.display().to_string(),
            reason: "the base directory climbs above the target".into(),
        })?,
    };
    if !base.is_empty() {
        // The base must exist (and be a directory) inside the root.
        resolve_dir(&root, &base, false).map_err(|e| LayerError::Io {
            what: "opening the base directory",
            path: lossy(&join_comps(&base)),
            source: match e {
                ResolveError::Io(e) => e,
                e => io::Error::other(e.to_string()),
            },
        })?;
    }
    let mut st = Unpacker {
        base,
        root: Rc::new(Dir::inspect(root)),
        opts,
        euid: nix::unistd::geteuid().as_raw(),
        egid: nix::unistd::getegid().as_raw(),
        umask: fsops::process_umask(),
        exact_modes: Cell::new(exact_modes),
        dirs: Vec::new(),
        created: HashSet::new(),
        unpacked: 0,
        cache: DirCache::default(),
        buf: Vec::new(),
    };
    let mut ar = tar::Archive::new(reader);
    {
        let entries = ar.entries().map_err(LayerError::Tar)?;
        for entry in entries {
            let mut entry = entry.map_err(LayerError::Tar)?;
            st.entry(&mut entry)?;
        }
    }
    ar.into_inner().drain().map_err(LayerError::Tar)?;
    st.finish_dirs()?;
    Ok(st.unpacked)
}

/// An open directory of the tree being unpacked, with what a new entry made in it inherits.
struct Dir {
    fd: OwnedFd,
    /// Whether it has the set-group-ID bit, and its group (a new entry's group is that group
    /// when the bit is set, else the process' own). `None` when unknown: then the owner of
    /// every entry made in it is set explicitly.
    sgid: Cell<Option<(bool, u32)>>,
}

impl Dir {
    /// Wraps a directory found by lookup (one `fstat` to learn its set-group-ID bit).
    fn inspect(fd: OwnedFd) -> Dir {
        let sgid = nix::sys::stat::fstat(fd.as_raw_fd())
            .ok()
            .map(|st| (st.st_mode & libc::S_ISGID != 0, st.st_gid));
        Dir {
            fd,
            sgid: Cell::new(sgid),
        }
    }
}

impl AsRawFd for Dir {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Open directories along one lexical path (the parent of the last entries), so that entries
/// in the same directory, or in its ancestors, need no lookup. Each one is what resolving that
/// prefix inside the root gave; the cache is emptied whenever the tree loses or replaces an
/// entry, the only way a path can come to resolve to something else.
#[derive(Default)]
struct DirCache {
    /// The cached path (cleaned components).
    path: Vec<OsString>,
    /// Open directories for prefixes of `path`: (number of components, dir), shortest first.
    dirs: Vec<(usize, Rc<Dir>)>,
}

impl DirCache {
    fn get(&self, comps: &[OsString]) -> Option<Rc<Dir>> {
        if comps.len() > self.path.len() || self.path[..comps.len()] != *comps {
            return None;
        }
        self.dirs
            .iter()
            .rev()
            .find(|(n, _)| *n == comps.len())
            .map(|(_, d)| d.clone())
    }

    fn put(&mut self, comps: &[OsString], dir: Rc<Dir>) {
        let common = self
            .path
            .iter()
            .zip(comps)
            .take_while(|(a, b)| a == b)
            .count();
        self.dirs.retain(|(n, _)| *n <= common && *n != comps.len());
        self.path.clear();
        self.path.extend_from_slice(comps);
        self.dirs.push((comps.len(), dir));
    }

    fn clear(&mut self) {
        self.path.clear();
        self.dirs.clear();
    }
}

struct Unpacker {
    root: Rc<Dir>,
    opts: ApplyOptions,
    /// The process' effective uid and gid: the owner new entries get.
    euid: u32,
    egid: u32,
    /// The process' umask, when known.
    umask: Option<u32>,
    /// Whether entries may be created with their final permission bits (sparing a chmod):
    /// not when directories can carry default ACLs (which override the umask), i.e. when the
    /// root has one, a layer sets one, or lower layers' content is present (Delete mode).
    exact_modes: Cell<bool>,
    /// Directories whose times are set at the end (children change them while unpacking).
    dirs: Vec<(Vec<OsString>, i64)>,
    /// Paths (cleaned) created by this layer, for opaque directories in Delete mode.
    created: HashSet<Vec<u8>>,
    unpacked: u64,
    cache: DirCache,
    /// Copy buffer for file contents (allocated on first use).
    buf: Vec<u8>,
    /// [`ApplyOptions::base`] as cleaned components.
    base: Vec<OsString>,
}

struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

fn empty_field(raw: &[u8], e: io::Error) -> io::Result<u64> {
    if raw.iter().all(|b| *b == 0 || *b == b' ') {
        Ok(0)
    } else {
        Err(e)
    }
}

fn ts(secs: i64) -> TimeSpec {
    TimeSpec::new(secs, 0)
}

fn ignorable_xattr_error(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM))
}

impl Unpacker {
    fn io(&self, what: &'static str, path: &[u8]) -> impl FnOnce(io::Error) -> LayerError {
        let path = lossy(path);
        move |source| LayerError::Io { what, path, source }
    }

    /// The directory `comps` (resolved inside the root; with `create`, missing directories are
    /// made): from the cache, else one `openat2`, else component by component.
    fn lookup(&mut self, comps: &[OsString], create: bool) -> Result<Rc<Dir>, ResolveError> {
        if comps.is_empty() {
            return Ok(self.root.clone());
        }
        if let Some(d) = self.cache.get(comps) {
            return Ok(d);
        }
        let fd = match fsops::open_dir_in_root(self.root.as_raw_fd(), comps) {
            Some(fd) => fd,
            None => resolve_dir(&self.root.fd, comps, create)?,
        };
        let d = Rc::new(Dir::inspect(fd));
        self.cache.put(comps, d.clone());
        Ok(d)
    }

    /// Whether an entry created now in `dir` already has the owner `m` asks for.
    fn owner_matches(&self, dir: &Dir, m: &Meta) -> bool {
        m.uid == self.euid
            && match dir.sgid.get() {
                Some((true, gid)) => gid == m.gid,
                Some((false, _)) => self.egid == m.gid,
                None => false,
            }
    }

    /// The mode to create an entry with in `dir` so that it needs no chmod afterwards, if
    /// there is one: plain permission bits the umask leaves alone (and, for a directory, a
    /// parent without the set-group-ID bit, which new directories would inherit).
    fn exact_mode(&self, dir: &Dir, m: &Meta, is_dir: bool) -> Option<u32> {
        let umask = self.umask?;
        if !self.exact_modes.get() || m.mode & 0o7000 != 0 || m.mode & umask != 0 {
            return None;
        }
        if is_dir && !matches!(dir.sgid.get(), Some((false, _))) {
            return None;
        }
        Some(m.mode)
    }

    fn resolve(
        &mut self,
        path: &[u8],
        parent: &[OsString],
        create: bool,
    ) -> Result<Rc<Dir>, LayerError> {
        self.lookup(parent, create).map_err(|e| match e {
            ResolveError::Io(source) => LayerError::Io {
                what: "resolving the parent directory of",
                path: lossy(path),
                source,
            },
            other => LayerError::Io {
                what: "resolving the parent directory of",
                path: lossy(path),
                source: io::Error::other(other.to_string()),
            },
        })
    }

    /// Removes `name` in `dir` (recursively), forgetting every cached directory first: what a
    /// path resolves to may change.
    fn remove(&mut self, dir: RawFd, name: &OsStr, raw: &[u8]) -> Result<(), LayerError> {
        self.cache.clear();
        fsops::remove_all_at(dir, name).map_err(self.io("replacing", raw))
    }

    /// Runs `create` (an `*at` call making `name` in `dir`); if `name` already exists, removes
    /// it and runs `create` again.
    fn create_replacing<T>(
        &mut self,
        dir: RawFd,
        name: &OsStr,
        raw: &[u8],
        what: &'static str,
        mut create: impl FnMut() -> nix::Result<T>,
    ) -> Result<T, LayerError> {
        match create() {
            Ok(v) => return Ok(v),
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(self.io(what, raw)(e.into())),
        }
        self.remove(dir, name, raw)?;
        create().map_err(|e| self.io(what, raw)(e.into()))
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let et = e.header().entry_type();
        if et.is_pax_global_extensions() {
            return Ok(());
        }
        let raw = e.path_bytes().into_owned();
        let mut comps = clean_inside(&raw).ok_or_else(|| LayerError::Breakout {
            path: lossy(&raw),
            reason: "its path climbs above the layer root".into(),
        })?;
        if self.opts.base.is_some() {
            if comps.is_empty() {
                return Ok(());
            }
            comps = self.base.iter().cloned().chain(comps).collect();
        }
        let meta = self.meta(e, &raw)?;

        let Some((name, parent)) = comps.split_last() else {
            // The root itself ("./"): only its metadata.
            if et.is_dir() {
                let root = self.root.clone();
                self.set_fd_meta(root.as_raw_fd(), &meta, &raw, true, true)?;
                root.sgid
                    .set(Some((meta.mode & libc::S_ISGID != 0, meta.gid)));
                self.dirs.push((Vec::new(), meta.mtime));
            }
            return Ok(());
        };

        let nb = name.as_bytes();
        if nb.starts_with(WHITEOUT_PREFIX.as_bytes()) && !self.opts.keep_whiteout_files {
            return self.whiteout(&raw, parent, name, &meta);
        }

        let pdir = self.resolve(&raw, parent, true)?;
        let pfd = pdir.as_raw_fd();
        if self.opts.no_overwrite_dir_non_dir {
            if let Some(st) = lstat_at(pfd, name).map_err(self.io("inspecting", &raw))? {
                let exists_dir = kind(&st) == SFlag::S_IFDIR;
                let new_dir = et.is_dir();
                if exists_dir != new_dir {
                    let p = lossy(&raw);
                    return Err(LayerError::Overwrite(if exists_dir {
                        format!("cannot overwrite directory {p:?} with non-directory {p:?}")
                    } else {
                        format!("cannot overwrite non-directory {p:?} with directory {p:?}")
                    }));
                }
            }
        }

        use tar::EntryType as T;
        match et {
            T::Regular | T::Continuous | T::GNUSparse => {
                let exact = self.exact_mode(&pdir, &meta, false);
                let chown = !self.owner_matches(&pdir, &meta);
                let fd = self.create_replacing(pfd, name, &raw, "creating", || {
                    openat(
                        Some(pfd),
                        name.as_os_str(),
                        OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_WRONLY
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(exact.unwrap_or(0o600)),
                    )
                })?;
                let mut f = File::from(fsops::owned(fd));
                let n = self.copy_content(e, &mut f, &raw)?;
                self.unpacked += n;
                self.set_fd_meta(f.as_raw_fd(), &meta, &raw, chown, exact.is_none())?;
                futimens(f.as_raw_fd(), &ts(meta.mtime), &ts(meta.mtime))
                    .map_err(|e| self.io("setting times of", &raw)(e.into()))?;
            }
            T::Directory => {
                let exact = self.exact_mode(&pdir, &meta, true);
                let owner_ok = self.owner_matches(&pdir, &meta);
                let mkdir = || {
                    nix::sys::stat::mkdirat(
                        Some(pfd),
                        name.as_os_str(),
                        Mode::from_bits_truncate(exact.unwrap_or(0o700)),
                    )
                };
                // Whether the directory is new (else its owner and mode are unknown).
                let fresh = match mkdir() {
                    Ok(()) => true,
                    Err(Errno::EEXIST) => {
                        // An existing directory is kept (its metadata is updated); anything
                        // else there is replaced.
                        let existing = lstat_at(pfd, name).map_err(self.io("inspecting", &raw))?;
                        if matches!(&existing, Some(st) if kind(st) == SFlag::S_IFDIR) {
                            false
                        } else {
                            self.create_replacing(pfd, name, &raw, "creating directory", mkdir)?;
                            true
                        }
                    }
                    Err(e) => return Err(self.io("creating directory", &raw)(e.into())),
                };
                let d =
                    fsops::open_subdir(pfd, name).map_err(self.io("opening directory", &raw))?;
                let chown = !(fresh && owner_ok);
                let chmod = !(fresh && exact.is_some());
                self.set_fd_meta(d.as_raw_fd(), &meta, &raw, chown, chmod)?;
                self.dirs.push((comps.clone(), meta.mtime));
                // Its entries usually come next.
                let d = Dir {
                    fd: d,
                    sgid: Cell::new(Some((meta.mode & libc::S_ISGID != 0, meta.gid))),
                };
                self.cache.put(&comps, Rc::new(d));
            }
            T::Symlink => {
                let target = e
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                if target.is_empty() {
                    return Err(LayerError::Breakout {
                        path: lossy(&raw),
                        reason: "symlink with an empty target".into(),
                    });
                }
                // Docker's rule: the target, taken relative to the link's directory, must not
                // climb above the root.
                let mut joined = join_comps(parent);
                joined.push(b'/');
                joined.extend_from_slice(&target);
                if clean_inside(&joined).is_none() {
                    return Err(LayerError::Breakout {
                        path: lossy(&raw),
                        reason: format!(
                            "symlink target {:?} points outside the root",
                            lossy(&target)
                        ),
                    });
                }
                self.create_replacing(pfd, name, &raw, "creating symlink", || {
                    symlinkat(OsStr::from_bytes(&target), Some(pfd), name.as_os_str())
                })?;
                let chown = !self.owner_matches(&pdir, &meta);
                self.set_at_meta(pfd, name, &meta, &raw, chown, false)?;
            }
            T::Link => {
                let target = e
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                let mut tcomps = clean_inside(&target).ok_or_else(|| LayerError::Breakout {
                    path: lossy(&raw),
                    reason: format!("hard link target {:?} is outside the root", lossy(&target)),
                })?;
                if !self.base.is_empty() {
                    tcomps = self.base.iter().cloned().chain(tcomps).collect();
                }
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(LayerError::Breakout {
                        path: lossy(&raw),
                        reason: "hard link to the root directory".into(),
                    });
                };
                let tdir = self.resolve(&target, tparent, false)?;
                let tfd = tdir.as_raw_fd();
                match lstat_at(tfd, tname).map_err(self.io("inspecting", &target))? {
                    None => {
                        return Err(LayerError::Io {
                            what: "hard linking to missing target",
                            path: lossy(&target),
                            source: io::Error::from(io::ErrorKind::NotFound),
                        })
                    }
                    Some(s) if kind(&s) == SFlag::S_IFDIR => {
                        return Err(LayerError::Breakout {
                            path: lossy(&raw),
                            reason: "hard link to a directory".into(),
                        })
                    }
                    Some(_) => {}
                }
                self.create_replacing(pfd, name, &raw, "creating hard link", || {
                    linkat(
                        Some(tfd),
                        tname.as_os_str(),
                        Some(pfd),
                        name.as_os_str(),
                        AtFlags::empty(),
                    )
                })?;
            }
            T::Char | T::Block | T::Fifo => {
                let (k, dev) = match et {
                    T::Char | T::Block => {
                        let major = e.header().device_major().ok().flatten().unwrap_or(0);
                        let minor = e.header().device_minor().ok().flatten().unwrap_or(0);
                        let k = if et == T::Char {
                            SFlag::S_IFCHR
                        } else {
                            SFlag::S_IFBLK
                        };
                        (k, makedev(major as u64, minor as u64))
                    }
                    _ => (SFlag::S_IFIFO, 0),
                };
                self.create_replacing(pfd, name, &raw, "creating device node", || {
                    mknodat(
                        Some(pfd),
                        name.as_os_str(),
                        k,
                        Mode::from_bits_truncate(0o600),
                        dev,
                    )
                })?;
                self.set_at_meta(pfd, name, &meta, &raw, true, true)?;
            }
            other => {
                return Err(LayerError::Unsupported {
                    path: lossy(&raw),
                    kind: format!("{other:?}"),
                })
            }
        }
        if self.opts.whiteouts == WhiteoutMode::Delete {
            self.created.insert(join_comps(&comps));
        }
        Ok(())
    }

    /// Copies the entry's content into `f` in large writes; returns the bytes copied.
    fn copy_content(
        &mut self,
        r: &mut impl Read,
        f: &mut File,
        raw: &[u8],
    ) -> Result<u64, LayerError> {
        if self.buf.is_empty() {
            self.buf = vec![0u8; COPY_BUF];
        }
        let mut total = 0u64;
        loop {
            let mut n = 0;
            while n < self.buf.len() {
                match r.read(&mut self.buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(LayerError::Tar(e)),
                }
            }
            if n == 0 {
                return Ok(total);
            }
            f.write_all(&self.buf[..n])
                .map_err(self.io("writing", raw))?;
            total += n as u64;
            if n < self.buf.len() {
                return Ok(total);
            }
        }
    }

    fn meta<R: Read>(&self, e: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<Meta, LayerError> {
        let h = e.header();
        let bad = |what: &str| LayerError::Breakout {
            path: lossy(raw),
            reason: format!("invalid {what} in tar header"),
        };
        // Empty numeric fields (all NULs) read as 0, as Go's archive/tar does.
        let uid = h
            .uid()
            .or_else(|e| empty_field(&h.as_old().uid, e))
            .map_err(|_| bad("uid"))?;
        let gid = h
            .gid()
            .or_else(|e| empty_field(&h.as_old().gid, e))
            .map_err(|_| bad("gid"))?;
        let mode = h
            .mode()
            .map(u64::from)
            .or_else(|e| empty_field(&h.as_old().mode, e))
            .map_err(|_| bad("mode"))? as u32
            & 0o7777;
        let mtime = h.mtime().unwrap_or(0).min(i64::MAX as u64) as i64;
        let uid = u32::try_from(uid).map_err(|_| bad("uid"))?;
        let gid = u32::try_from(gid).map_err(|_| bad("gid"))?;
        let (uid, gid) = self.opts.chown.unwrap_or((uid, gid));
        let mut xattrs = Vec::new();
        if let Some(exts) = e.pax_extensions().map_err(LayerError::Tar)? {
            for ext in exts {
                let ext = ext.map_err(LayerError::Tar)?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    // Never let a layer set overlayfs' own attributes (opaque, redirect...).
                    if name.starts_with("trusted.overlay.") || name.is_empty() {
                        continue;
                    }
                    if name == ACL_DEFAULT_XATTR {
                        // Entries made below this directory get their modes from the ACL.
                        self.exact_modes.set(false);
                    }
                    xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
        Ok(Meta {
            uid,
            gid,
            mode,
            mtime,
            xattrs,
        })
    }

    /// Ownership, mode and xattrs on an open file or directory.
    /// `chown` and `chmod` may be false only when the entry was just created with the owner
    /// and mode `m` asks for.
    fn set_fd_meta(
        &self,
        fd: RawFd,
        m: &Meta,
        raw: &[u8],
        chown: bool,
        chmod: bool,
    ) -> Result<(), LayerError> {
        if chown {
            fchownat(
                Some(fd),
                "",
                Some(Uid::from_raw(m.uid)),
                Some(Gid::from_raw(m.gid)),
                AtFlags::AT_EMPTY_PATH,
            )
            .map_err(|e| self.io("changing owner of", raw)(e.into()))?;
        }
        if chmod {
            // SAFETY: fchmod on an fd we own; no memory is passed.
            let r = unsafe { libc::fchmod(fd, m.mode as libc::mode_t) };
            if r != 0 {
                return Err(self.io("changing mode of", raw)(io::Error::last_os_error()));
            }
        }
        for (k, v) in &m.xattrs {
            if let Err(e) = fsops::fsetxattr(fd, k, v) {
                if !ignorable_xattr_error(&e) {
                    return Err(self.io("setting xattr on", raw)(e));
                }
            }
        }
        Ok(())
    }

    /// Ownership, mode (unless a symlink), xattrs and times on `name` in `dir`, not following it.
    fn set_at_meta(
        &self,
        dir: RawFd,
        name: &OsStr,
        m: &Meta,
        raw: &[u8],
        chown: bool,
        chmod: bool,
    ) -> Result<(), LayerError> {
        if chown {
            fchownat(
                Some(dir),
                name,
                Some(Uid::from_raw(m.uid)),
                Some(Gid::from_raw(m.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.io("changing owner of", raw)(e.into()))?;
        }
        if chmod {
            // The node was created by us just now and is not a symlink.
            fchmodat(
                Some(dir),
                name,
                Mode::from_bits_truncate(m.mode),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| self.io("changing mode of", raw)(e.into()))?;
        }
        for (k, v) in &m.xattrs {
            if let Err(e) = fsops::lsetxattr_at(dir, name, k, v) {
                if !ignorable_xattr_error(&e) {
                    return Err(self.io("setting xattr on", raw)(e));
                }
            }
        }
        utimensat(
            Some(dir),
            name,
            &ts(m.mtime),
            &ts(m.mtime),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| self.io("setting times of", raw)(e.into()))?;
        Ok(())
    }

    fn whiteout(
        &mut self,
        raw: &[u8],
        parent: &[OsString],
        name: &OsStr,
        meta: &Meta,
    ) -> Result<(), LayerError> {
        let nb = name.as_bytes();
        if nb == WHITEOUT_OPAQUE.as_bytes() {
            match self.opts.whiteouts {
                WhiteoutMode::Overlay => {
                    let d = self.resolve(raw, parent, true)?;
                    fsops::fsetxattr(d.as_raw_fd(), OVERLAY_OPAQUE_XATTR, b"y")
                        .map_err(self.io("marking opaque", raw))?;
                }
                WhiteoutMode::Delete => {
                    let d = match self.lookup(parent, false) {
                        Ok(d) => d,
                        Err(ResolveError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
                            return Ok(())
                        }
                        Err(_) => self.resolve(raw, parent, false)?,
                    };
                    self.cache.clear();
                    let prefix = join_comps(parent);
                    let created = &self.created;
                    let keep = |child: &OsStr| {
                        let mut k = prefix.clone();
                        if !k.is_empty() {
                            k.push(b'/');
                        }
                        k.extend_from_slice(child.as_bytes());
                        created.contains(&k)
                    };
                    fsops::clear_dir(d.as_raw_fd(), &keep)
                        .map_err(self.io("clearing opaque directory", raw))?;
                }
            }
            return Ok(());
        }
        if nb.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
            return Ok(());
        }
        let target = OsStr::from_bytes(&nb[WHITEOUT_PREFIX.len()..]);
        let tb = target.as_bytes();
        if tb.is_empty() || tb == b"." || tb == b".." {
            return Err(LayerError::Breakout {
                path: lossy(raw),
                reason: "whiteout of an invalid name".into(),
            });
        }
        match self.opts.whiteouts {
            WhiteoutMode::Overlay => {
                let d = self.resolve(raw, parent, true)?;
                self.remove(d.as_raw_fd(), target, raw)?;
                mknodat(
                    Some(d.as_raw_fd()),
                    target,
                    SFlag::S_IFCHR,
                    Mode::empty(),
                    makedev(0, 0),
                )
                .map_err(|e| self.io("creating whiteout", raw)(e.into()))?;
                fchownat(
                    Some(d.as_raw_fd()),
                    target,
                    Some(Uid::from_raw(meta.uid)),
                    Some(Gid::from_raw(meta.gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| self.io("changing owner of", raw)(e.into()))?;
            }
            WhiteoutMode::Delete => match self.lookup(parent, false) {
                Ok(d) => {
                    self.cache.clear();
                    fsops::remove_all_at(d.as_raw_fd(), target)
                        .map_err(self.io("removing whited-out", raw))?;
                }
                Err(ResolveError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
                Err(ResolveError::NotADirectory(_)) => {}
                Err(_) => {
                    self.resolve(raw, parent, false)?;
                }
            },
        }
        Ok(())
    }

    fn finish_dirs(&mut self) -> Result<(), LayerError> {
        self.cache.clear();
        for (comps, mtime) in std::mem::take(&mut self.dirs) {
            let raw = join_comps(&comps);
            let d = match fsops::open_dir_in_root(self.root.as_raw_fd(), &comps) {
                Some(d) => d,
                None => match resolve_dir(&self.root.fd, &comps, false) {
                    Ok(d) => d,
                    // Removed or replaced by a later entry of the same layer.
                    Err(_) => continue,
                },
            };
            futimens(d.as_raw_fd(), &ts(mtime), &ts(mtime))
                .map_err(|e| self.io("setting times of", &raw)(e.into()))?;
        }
        Ok(())
    }
}
