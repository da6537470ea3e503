//! Unpacking one layer tar stream into a directory. Entry paths are cleaned lexically (a
//! leading `/` is dropped; `..` that would climb above the root refuses the layer); parent
//! directories are resolved one component at a time from an open fd of the root, with
//! symlinks resolved inside the root; the final component is created with `*at` calls that
//! never follow it. Hard links must name a target inside the root; symlink targets that climb
//! out of the root are refused like Docker does.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

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
use crate::digest::{Digest, HashingReader};

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

/// Unpacks the layer stream `r` (plain, gzip or zstd tar) into `dest`, which must be an
/// existing directory. Returns the layer's diffID. On error, `dest` may hold part of the layer
/// (the caller unpacks into a fresh directory and removes it on failure), but nothing outside
/// `dest` is ever touched.
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
    let mut hashing = HashingReader::new(stream);
    let mut st = Unpacker {
        root,
        opts: opts.clone(),
        dirs: Vec::new(),
        created: HashSet::new(),
        unpacked: 0,
    };
    {
        let mut ar = tar::Archive::new(&mut hashing);
        let entries = ar.entries().map_err(LayerError::Tar)?;
        for entry in entries {
            let mut entry = entry.map_err(LayerError::Tar)?;
            st.entry(&mut entry)?;
        }
    }
    st.finish_dirs()?;
    let (diff_id, tar_size) = hashing.finish().map_err(LayerError::Tar)?;
    Ok(AppliedLayer {
        diff_id,
        tar_size,
        unpacked_size: st.unpacked,
        compression,
    })
}

struct Unpacker {
    root: OwnedFd,
    opts: ApplyOptions,
    /// Directories whose times are set at the end (children change them while unpacking).
    dirs: Vec<(Vec<OsString>, i64)>,
    /// Paths (cleaned) created by this layer, for opaque directories in Delete mode.
    created: HashSet<Vec<u8>>,
    unpacked: u64,
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

    fn resolve(
        &self,
        path: &[u8],
        parent: &[OsString],
        create: bool,
    ) -> Result<OwnedFd, LayerError> {
        resolve_dir(&self.root, parent, create).map_err(|e| match e {
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

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let et = e.header().entry_type();
        if et.is_pax_global_extensions() {
            return Ok(());
        }
        let raw = e.path_bytes().into_owned();
        let comps = clean_inside(&raw).ok_or_else(|| LayerError::Breakout {
            path: lossy(&raw),
            reason: "its path climbs above the layer root".into(),
        })?;
        let meta = self.meta(e, &raw)?;

        let Some((name, parent)) = comps.split_last() else {
            // The root itself ("./"): only its metadata.
            if et.is_dir() {
                let fd = self.root.try_clone().map_err(self.io("opening", &raw))?;
                self.set_fd_meta(fd.as_raw_fd(), &meta, &raw, true)?;
                self.dirs.push((Vec::new(), meta.mtime));
            }
            return Ok(());
        };

        let nb = name.as_bytes();
        if nb.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&raw, parent, name, &meta);
        }

        let pdir = self.resolve(&raw, parent, true)?;
        let pfd = pdir.as_raw_fd();
        if let Some(existing) = lstat_at(pfd, name).map_err(self.io("inspecting", &raw))? {
            if !(kind(&existing) == SFlag::S_IFDIR && et.is_dir()) {
                fsops::remove_all_at(pfd, name).map_err(self.io("replacing", &raw))?;
            }
        }

        use tar::EntryType as T;
        match et {
            T::Regular | T::Continuous | T::GNUSparse => {
                let fd = openat(
                    Some(pfd),
                    name.as_os_str(),
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_WRONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| self.io("creating", &raw)(e.into()))?;
                let mut f = File::from(fsops::owned(fd));
                let n = io::copy(e, &mut f).map_err(LayerError::Tar)?;
                self.unpacked += n;
                self.set_fd_meta(f.as_raw_fd(), &meta, &raw, false)?;
                futimens(f.as_raw_fd(), &ts(meta.mtime), &ts(meta.mtime))
                    .map_err(|e| self.io("setting times of", &raw)(e.into()))?;
            }
            T::Directory => {
                if lstat_at(pfd, name)
                    .map_err(self.io("inspecting", &raw))?
                    .is_none()
                {
                    nix::sys::stat::mkdirat(
                        Some(pfd),
                        name.as_os_str(),
                        Mode::from_bits_truncate(0o700),
                    )
                    .map_err(|e| self.io("creating directory", &raw)(e.into()))?;
                }
                let d =
                    fsops::open_subdir(pfd, name).map_err(self.io("opening directory", &raw))?;
                self.set_fd_meta(d.as_raw_fd(), &meta, &raw, true)?;
                self.dirs.push((comps.clone(), meta.mtime));
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
                symlinkat(OsStr::from_bytes(&target), Some(pfd), name.as_os_str())
                    .map_err(|e| self.io("creating symlink", &raw)(e.into()))?;
                self.set_at_meta(pfd, name, &meta, &raw, false)?;
            }
            T::Link => {
                let target = e
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                let tcomps = clean_inside(&target).ok_or_else(|| LayerError::Breakout {
                    path: lossy(&raw),
                    reason: format!("hard link target {:?} is outside the root", lossy(&target)),
                })?;
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(LayerError::Breakout {
                        path: lossy(&raw),
                        reason: "hard link to the root directory".into(),
                    });
                };
                let tdir = self.resolve(&target, tparent, false)?;
                match lstat_at(tdir.as_raw_fd(), tname).map_err(self.io("inspecting", &target))? {
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
                linkat(
                    Some(tdir.as_raw_fd()),
                    tname.as_os_str(),
                    Some(pfd),
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| self.io("creating hard link", &raw)(e.into()))?;
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
                mknodat(
                    Some(pfd),
                    name.as_os_str(),
                    k,
                    Mode::from_bits_truncate(0o600),
                    dev,
                )
                .map_err(|e| self.io("creating device node", &raw)(e.into()))?;
                self.set_at_meta(pfd, name, &meta, &raw, true)?;
            }
            other => {
                return Err(LayerError::Unsupported {
                    path: lossy(&raw),
                    kind: format!("{other:?}"),
                })
            }
        }
        self.created.insert(join_comps(&comps));
        Ok(())
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
    fn set_fd_meta(&self, fd: RawFd, m: &Meta, raw: &[u8], _dir: bool) -> Result<(), LayerError> {
        fchownat(
            Some(fd),
            "",
            Some(Uid::from_raw(m.uid)),
            Some(Gid::from_raw(m.gid)),
            AtFlags::AT_EMPTY_PATH,
        )
        .map_err(|e| self.io("changing owner of", raw)(e.into()))?;
        // SAFETY: fchmod on an fd we own; no memory is passed.
        let r = unsafe { libc::fchmod(fd, m.mode as libc::mode_t) };
        if r != 0 {
            return Err(self.io("changing mode of", raw)(io::Error::last_os_error()));
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
        chmod: bool,
    ) -> Result<(), LayerError> {
        fchownat(
            Some(dir),
            name,
            Some(Uid::from_raw(m.uid)),
            Some(Gid::from_raw(m.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.io("changing owner of", raw)(e.into()))?;
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
                    let d = match resolve_dir(&self.root, parent, false) {
                        Ok(d) => d,
                        Err(ResolveError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
                            return Ok(())
                        }
                        Err(_) => self.resolve(raw, parent, false)?,
                    };
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
                fsops::remove_all_at(d.as_raw_fd(), target).map_err(self.io("replacing", raw))?;
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
            WhiteoutMode::Delete => match resolve_dir(&self.root, parent, false) {
                Ok(d) => {
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
        for (comps, mtime) in std::mem::take(&mut self.dirs) {
            let raw = join_comps(&comps);
            let d = match resolve_dir(&self.root, &comps, false) {
                Ok(d) => d,
                // Removed or replaced by a later entry of the same layer.
                Err(_) => continue,
            };
            futimens(d.as_raw_fd(), &ts(mtime), &ts(mtime))
                .map_err(|e| self.io("setting times of", &raw)(e.into()))?;
        }
        Ok(())
    }
}
