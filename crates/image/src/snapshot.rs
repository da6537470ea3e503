//! Overlayfs snapshots keyed by chain ID: `<root>/snapshots/<chain-hex>/fs` holds one layer
//! unpacked in overlay format (whiteouts as 0/0 devices, opaque xattrs), with `meta.json`
//! beside it. A layer shared by several images (same chain ID: same content on the same
//! base) is unpacked once. `<root>/snapshots/l/<16 hex>` are short symlinks to the `fs`
//! directories, used to keep the overlay `lowerdir=` option under the kernel's page-size
//! limit when an image has many layers.
//!
//! Which snapshots are still needed is decided by the image store's refcounts
//! ([`crate::store`]); this module only creates, lists, measures, mounts and removes them.
//!
//! Chain IDs (OCI image spec): `chainID(L1) = diffID(L1)`,
//! `chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln))`.
//!
//! Crash safety: a layer is unpacked into `<root>/snapshots/tmp-*`, the filesystem is flushed
//! (one `syncfs`, not an fsync per file; a background thread writes back while layers unpack
//! so that little is left for it), and only then is the directory renamed to its chain ID.
//! A crash before the rename leaves a `tmp-*` directory that [`Snapshotter::open`] removes; a
//! snapshot that exists is complete on disk.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::content::{random_hex, ContentError, ContentStore};
use crate::digest::Digest;
use crate::layer::{apply_layer, ApplyOptions, LayerError, WhiteoutMode};

/// What went wrong with a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A filesystem operation failed.
    #[error("snapshots: {what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Unpacking the layer failed.
    #[error("snapshots: unpacking layer {diff_id}: {source}")]
    Layer {
        /// The layer's diffID.
        diff_id: Digest,
        /// Why.
        source: LayerError,
    },
    /// Reading the layer blob failed.
    #[error("snapshots: {0}")]
    Content(#[from] ContentError),
    /// The unpacked layer does not have the diffID the image config promises.
    #[error("snapshots: layer blob {blob} unpacks to {actual}, but the image config says {expected} (the image is corrupt or was tampered with)")]
    DiffIdMismatch {
        /// The blob.
        blob: Digest,
        /// The diffID from the config.
        expected: Digest,
        /// What it really is.
        actual: Digest,
    },
    /// A snapshot the operation needs is absent.
    #[error("snapshots: snapshot {0} does not exist (pull the image again)")]
    Missing(Digest),
    /// Mounting the overlay failed.
    #[error("snapshots: mounting overlay on {target}: {source} (options: {options})")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// The options tried last.
        options: String,
        /// The error.
        source: nix::Error,
    },
    /// Unmounting failed.
    #[error("snapshots: unmounting {target}: {source}")]
    Unmount {
        /// The mount point.
        target: PathBuf,
        /// The error.
        source: nix::Error,
    },
    /// The overlay would need too many layers or too long an option string.
    #[error("snapshots: {0}")]
    TooManyLayers(String),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Chain IDs of a list of diffIDs (bottom layer first).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::sha256(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// What is recorded about a snapshot (`meta.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotInfo {
    /// The chain ID (the snapshot's key).
    pub chain_id: Digest,
    /// The layer's diffID.
    pub diff_id: Digest,
    /// The chain ID of the snapshot below, if any.
    pub parent: Option<Digest>,
    /// Bytes of file content in the layer.
    pub size: u64,
    /// Size of the uncompressed layer tar.
    pub tar_size: u64,
}

/// A layer to prepare: its blob in the content store and its diffID from the image config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSource {
    /// Digest of the (possibly compressed) layer blob.
    pub blob: Digest,
    /// Expected diffID (SHA-256 of the uncompressed tar).
    pub diff_id: Digest,
}

/// The directories of a container's overlay root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsLayout {
    /// Lower directories, bottom layer FIRST (the `lowerdir=` option lists them reversed).
    pub lowerdirs: Vec<PathBuf>,
    /// The container's upper (writable) directory: `<container_dir>/upper`.
    pub upper: PathBuf,
    /// Overlay's work directory: `<container_dir>/work`.
    pub work: PathBuf,
    /// Where the merged tree is mounted: `<container_dir>/rootfs`.
    pub target: PathBuf,
    /// Short relative names of the lower directories (`l/<id>`), relative to
    /// `snapshots_dir`, bottom first; used when absolute paths would be too long.
    pub short_lowerdirs: Vec<String>,
    /// The snapshots directory the short names are relative to.
    pub snapshots_dir: PathBuf,
}

/// The snapshot directory tree.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    dir: PathBuf,
}

/// A layer unpacked into `tmp`, not yet published.
struct Pending {
    tmp: PathBuf,
    info: SnapshotInfo,
    /// The lock on `tmp` (released once it is renamed into place or removed).
    _lock: fs::File,
}

/// How long a `tmp-*` directory must have been left unchanged before [`Snapshotter::open`]
/// may remove it (when nobody holds it locked).
const TMP_MIN_AGE: Duration = Duration::from_secs(10);

/// Opens the directory `path` and takes an exclusive `flock` on it, waiting for it when
/// `wait`; `None` when it is locked and `wait` is false. The lock lasts as long as the file.
fn lock_dir(path: &Path, wait: bool) -> io::Result<Option<fs::File>> {
    let f = fs::File::open(path)?;
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock on a file we hold open; no memory is passed.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), op) } == 0 {
            return Ok(Some(f));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if !wait => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// How often the [`Flusher`] writes the snapshots' filesystem back while layers unpack.
const FLUSH_PERIOD: Duration = Duration::from_millis(100);

/// Writes the snapshots' filesystem back (`syncfs`) every [`FLUSH_PERIOD`] from a background
/// thread while layers are being unpacked, so that the disk works while the CPU unpacks and
/// the `syncfs` that must precede publishing only has the tail left to write. Failures here
/// are ignored: that final `syncfs` reports them.
struct Flusher {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Flusher {
    /// Starts flushing the filesystem of `dir`; `None` if that cannot be set up (then only
    /// the final `syncfs` runs).
    fn start(dir: &Path) -> Option<Flusher> {
        let d = fs::File::open(dir).ok()?;
        let (stop, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("snapshot-flush".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(FLUSH_PERIOD) {
                    // SAFETY: syncfs on a directory fd this thread owns; no memory is passed.
                    unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&d)) };
                }
            })
            .ok()?;
        Some(Flusher { stop, thread })
    }

    /// Tells the thread to stop; it does once a `syncfs` it may be in returns.
    fn signal(self) -> std::thread::JoinHandle<()> {
        let _ = self.stop.send(());
        self.thread
    }

    /// Stops the thread and waits for it.
    fn stop(self) {
        let _ = self.signal().join();
    }
}

const SHORT_LEN: usize = 16;

impl Snapshotter {
    /// Opens (creating) `<root>/snapshots` and removes leftovers of interrupted unpacks.
    pub fn open(root: &Path) -> Result<Snapshotter, SnapshotError> {
        let dir = root.join("snapshots");
        for d in [dir.clone(), dir.join("l"), dir.join("empty")] {
            fs::create_dir_all(&d).map_err(io_err("creating", &d))?;
        }
        let s = Snapshotter { dir };
        s.clean_tmp(TMP_MIN_AGE)?;
        Ok(s)
    }

    /// Removes `tmp-*` directories left by interrupted unpacks or removals: those no process
    /// holds locked (a running unpack or removal does, see [`lock_dir`]) and that have not
    /// changed for `min_age` (which covers the moment between making one and locking it).
    fn clean_tmp(&self, min_age: Duration) -> Result<(), SnapshotError> {
        let rd = fs::read_dir(&self.dir).map_err(io_err("listing", &self.dir))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        for ent in rd.flatten() {
            if !ent.file_name().to_string_lossy().starts_with("tmp-") {
                continue;
            }
            let path = ent.path();
            let Ok(m) = fs::symlink_metadata(&path) else {
                continue;
            };
            let changed = Duration::new(
                m.ctime().max(0) as u64,
                m.ctime_nsec().clamp(0, 999_999_999) as u32,
            );
            if now.saturating_sub(changed) < min_age {
                continue;
            }
            if m.is_dir() {
                if let Ok(Some(_lock)) = lock_dir(&path, false) {
                    let _ = fs::remove_dir_all(&path);
                }
            } else {
                let _ = fs::remove_file(&path);
            }
        }
        Ok(())
    }

    /// The snapshots directory (`<root>/snapshots`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<root>/snapshots/<chain-hex>`.
    pub fn snapshot_dir(&self, chain: &Digest) -> PathBuf {
        self.dir.join(chain.hex())
    }

    /// The unpacked layer: `<root>/snapshots/<chain-hex>/fs`.
    pub fn fs_dir(&self, chain: &Digest) -> PathBuf {
        self.snapshot_dir(chain).join("fs")
    }

    /// Whether the snapshot exists (complete: it is renamed into place only when done).
    pub fn exists(&self, chain: &Digest) -> bool {
        self.snapshot_dir(chain).join("meta.json").is_file()
    }

    /// The snapshot's recorded metadata.
    pub fn info(&self, chain: &Digest) -> Result<SnapshotInfo, SnapshotError> {
        let p = self.snapshot_dir(chain).join("meta.json");
        let data = match fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SnapshotError::Missing(chain.clone()))
            }
            Err(e) => return Err(io_err("reading", &p)(e)),
        };
        serde_json::from_slice(&data)
            .map_err(|e| io_err("parsing", &p)(io::Error::new(io::ErrorKind::InvalidData, e)))
    }

    /// Every complete snapshot's chain ID.
    pub fn list(&self) -> Result<Vec<Digest>, SnapshotError> {
        let mut out = Vec::new();
        let rd = fs::read_dir(&self.dir).map_err(io_err("listing", &self.dir))?;
        for ent in rd.flatten() {
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Ok(d) = Digest::from_hex(crate::digest::Algorithm::Sha256, name) {
                if self.exists(&d) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Unpacks one layer on top of `parent` (a chain ID) from `blob`, unless that snapshot
    /// already exists. `open` yields the (compressed or not) layer stream; the unpacked diffID
    /// must equal `diff_id`, else nothing is kept.
    pub fn prepare_layer<R: Read>(
        &self,
        parent: Option<&Digest>,
        diff_id: &Digest,
        blob: &Digest,
        open: impl FnOnce() -> Result<R, SnapshotError>,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let chain = match parent {
            None => diff_id.clone(),
            Some(p) => Digest::sha256(format!("{p} {diff_id}").as_bytes()),
        };
        if self.exists(&chain) {
            return self.info(&chain);
        }
        if let Some(p) = parent {
            if !self.exists(p) {
                return Err(SnapshotError::Missing(p.clone()));
            }
        }
        let flusher = Flusher::start(&self.dir);
        let pending = match self.unpack_tmp(parent, &chain, diff_id, blob, open) {
            Ok(p) => p,
            Err(e) => {
                if let Some(f) = flusher {
                    f.stop();
                }
                return Err(e);
            }
        };
        if let Err(e) = self.sync(flusher) {
            let _ = fs::remove_dir_all(&pending.tmp);
            return Err(e);
        }
        self.publish(pending)
    }

    /// Unpacks a layer into a fresh `tmp-*` directory (removed again on failure). Nothing is
    /// synced: [`Snapshotter::sync`] must run before [`Snapshotter::publish`].
    fn unpack_tmp<R: Read>(
        &self,
        parent: Option<&Digest>,
        chain: &Digest,
        diff_id: &Digest,
        blob: &Digest,
        open: impl FnOnce() -> Result<R, SnapshotError>,
    ) -> Result<Pending, SnapshotError> {
        let tmp = self.dir.join(format!("tmp-{}", random_hex(8)?));
        fs::create_dir(&tmp).map_err(io_err("creating", &tmp))?;
        // Locked while in use, so that another berth process opening the snapshots does not
        // take it for a leftover.
        let locked = lock_dir(&tmp, true)
            .and_then(|l| l.ok_or_else(|| io::Error::from(io::ErrorKind::WouldBlock)));
        let lock = match locked {
            Ok(l) => l,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(io_err("locking", &tmp)(e));
            }
        };
        match self.unpack_into(&tmp, parent, chain, diff_id, blob, open) {
            Ok(info) => Ok(Pending {
                tmp,
                info,
                _lock: lock,
            }),
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    }

    /// Flushes the snapshots' filesystem (only that one, not every filesystem of the host), so
    /// that what was unpacked is on disk before it is published. The `flusher` (writing back
    /// in the background while layers were unpacked) is stopped first.
    fn sync(&self, flusher: Option<Flusher>) -> Result<(), SnapshotError> {
        // The flusher may be in a syncfs right now; ours overlaps with its end.
        let stopping = flusher.map(Flusher::signal);
        let synced = fs::File::open(&self.dir)
            .map_err(io_err("opening", &self.dir))
            .and_then(|d| {
                // SAFETY: syncfs on a directory fd we hold open; no memory is passed.
                if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&d)) } != 0 {
                    return Err(io_err("syncing", &self.dir)(io::Error::last_os_error()));
                }
                Ok(())
            });
        if let Some(t) = stopping {
            let _ = t.join();
        }
        synced
    }

    /// Renames an unpacked (and synced) layer into place: from here on it exists. If another
    /// unpack of the same layer won the race, its identical result is kept.
    fn publish(&self, p: Pending) -> Result<SnapshotInfo, SnapshotError> {
        let chain = p.info.chain_id.clone();
        let dst = self.snapshot_dir(&chain);
        match fs::rename(&p.tmp, &dst) {
            Ok(()) => {}
            Err(_) if self.exists(&chain) => {
                let _ = fs::remove_dir_all(&p.tmp);
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&p.tmp);
                return Err(io_err("moving snapshot into", &dst)(e));
            }
        }
        self.ensure_short_link(&chain)?;
        Ok(p.info)
    }

    fn unpack_into<R: Read>(
        &self,
        tmp: &Path,
        parent: Option<&Digest>,
        chain: &Digest,
        diff_id: &Digest,
        blob: &Digest,
        open: impl FnOnce() -> Result<R, SnapshotError>,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let fsd = tmp.join("fs");
        fs::create_dir_all(&fsd).map_err(io_err("creating", &fsd))?;
        // The layer's root directory is world-readable like a real "/".
        fs::set_permissions(&fsd, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(io_err("chmod", &fsd))?;
        let r = open()?;
        let applied = apply_layer(
            r,
            &fsd,
            &ApplyOptions {
                whiteouts: WhiteoutMode::Overlay,
                ..Default::default()
            },
        )
        .map_err(|source| SnapshotError::Layer {
            diff_id: diff_id.clone(),
            source,
        })?;
        if &applied.diff_id != diff_id {
            return Err(SnapshotError::DiffIdMismatch {
                blob: blob.clone(),
                expected: diff_id.clone(),
                actual: applied.diff_id,
            });
        }
        let info = SnapshotInfo {
            chain_id: chain.clone(),
            diff_id: diff_id.clone(),
            parent: parent.cloned(),
            size: applied.unpacked_size,
            tar_size: applied.tar_size,
        };
        let meta = tmp.join("meta.json");
        let json = serde_json::to_vec_pretty(&info)
            .map_err(|e| io_err("encoding", &meta)(io::Error::other(e)))?;
        fs::write(&meta, json).map_err(io_err("writing", &meta))?;
        Ok(info)
    }

    /// Unpacks every layer of an image (bottom first) from the content store, skipping
    /// snapshots that already exist. Returns the snapshots in order.
    ///
    /// The missing layers are all unpacked first (into `tmp-*` directories, with the
    /// filesystem written back in the background meanwhile), then flushed with one `syncfs`,
    /// then renamed into place bottom first: a crash before the end leaves only `tmp-*`
    /// directories, which [`Snapshotter::open`] removes, and a published snapshot is always
    /// complete on disk.
    ///
    /// Blobs are read without re-hashing them: each one was verified when it was stored, and
    /// the unpacked stream must match the diffID the image config (named by its own digest)
    /// lists, which binds the snapshot's content to the image just as tightly.
    pub fn prepare_layers(
        &self,
        content: &ContentStore,
        layers: &[LayerSource],
    ) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let chains = chain_ids(&diff_ids);
        let mut out: Vec<Option<SnapshotInfo>> = Vec::with_capacity(layers.len());
        let mut pending: Vec<(usize, Pending)> = Vec::new();
        // Started with the first layer that needs unpacking.
        let mut flusher: Option<Flusher> = None;
        let mut unpacking = false;
        let mut failed = None;
        for (i, (l, chain)) in layers.iter().zip(chains.iter()).enumerate() {
            if self.exists(chain) {
                match self.info(chain) {
                    Ok(info) => out.push(Some(info)),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
                continue;
            }
            if !unpacking {
                unpacking = true;
                flusher = Flusher::start(&self.dir);
            }
            let parent = i.checked_sub(1).map(|p| &chains[p]);
            match self.unpack_tmp(parent, chain, &l.diff_id, &l.blob, || {
                Ok(content.read(&l.blob)?)
            }) {
                Ok(p) => {
                    pending.push((i, p));
                    out.push(None);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let synced = match failed {
            Some(e) => {
                if let Some(f) = flusher {
                    f.stop();
                }
                Err(e)
            }
            None if unpacking => self.sync(flusher),
            None => Ok(()),
        };
        if let Err(e) = synced {
            for (_, p) in pending {
                let _ = fs::remove_dir_all(&p.tmp);
            }
            return Err(e);
        }
        let mut pending = pending.into_iter();
        while let Some((i, p)) = pending.next() {
            match self.publish(p) {
                Ok(info) => out[i] = Some(info),
                Err(e) => {
                    for (_, p) in pending {
                        let _ = fs::remove_dir_all(&p.tmp);
                    }
                    return Err(e);
                }
            }
        }
        out.into_iter()
            .zip(chains)
            .map(|(info, chain)| info.ok_or(SnapshotError::Missing(chain)))
            .collect()
    }

    fn short_name(chain: &Digest) -> String {
        format!("l/{}", &chain.hex()[..SHORT_LEN])
    }

    fn ensure_short_link(&self, chain: &Digest) -> Result<(), SnapshotError> {
        let link = self.dir.join(Self::short_name(chain));
        let want = PathBuf::from(format!("../{}/fs", chain.hex()));
        match fs::read_link(&link) {
            Ok(t) if t == want => Ok(()),
            Ok(_) => Err(SnapshotError::Io {
                what: "short link collides",
                path: link,
                source: io::Error::from(io::ErrorKind::AlreadyExists),
            }),
            Err(_) => match std::os::unix::fs::symlink(&want, &link) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(io_err("creating short link", &link)(e)),
            },
        }
    }

    /// Removes a snapshot (callers decide, from refcounts, that nothing uses it).
    pub fn remove(&self, chain: &Digest) -> Result<(), SnapshotError> {
        let link = self.dir.join(Self::short_name(chain));
        let _ = fs::remove_file(&link);
        let d = self.snapshot_dir(chain);
        if !d.exists() {
            return Ok(());
        }
        // Rename first so a half-removed snapshot never looks complete.
        let tmp = self.dir.join(format!("tmp-{}", random_hex(8)?));
        fs::rename(&d, &tmp).map_err(io_err("removing", &d))?;
        // Locked (like an unpack's) so that another process does not remove it at the same time.
        let _lock = lock_dir(&tmp, true);
        fs::remove_dir_all(&tmp).map_err(io_err("removing", &tmp))
    }

    /// Bytes used by one snapshot on disk (file sizes, each inode counted once).
    pub fn disk_usage(&self, chain: &Digest) -> Result<u64, SnapshotError> {
        disk_usage(&self.fs_dir(chain))
    }

    /// Bytes of file content in all snapshots' `fs` trees (each inode counted once per
    /// snapshot).
    pub fn total_disk_usage(&self) -> Result<u64, SnapshotError> {
        let mut total = 0;
        for c in self.list()? {
            total += self.disk_usage(&c)?;
        }
        Ok(total)
    }

    /// Makes `<container_dir>/{upper,work,rootfs}` and returns the overlay layout for the
    /// image whose layers have the chain IDs `chain` (bottom first). Does not mount.
    pub fn rootfs_layout(
        &self,
        chain: &[Digest],
        container_dir: &Path,
    ) -> Result<RootfsLayout, SnapshotError> {
        for c in chain {
            if !self.exists(c) {
                return Err(SnapshotError::Missing(c.clone()));
            }
            self.ensure_short_link(c)?;
        }
        let (lowerdirs, short_lowerdirs) = if chain.is_empty() {
            (vec![self.dir.join("empty")], vec!["empty".to_string()])
        } else {
            (
                chain.iter().map(|c| self.fs_dir(c)).collect(),
                chain.iter().map(Self::short_name).collect(),
            )
        };
        let upper = container_dir.join("upper");
        let work = container_dir.join("work");
        let target = container_dir.join("rootfs");
        for d in [&upper, &work, &target] {
            fs::create_dir_all(d).map_err(io_err("creating", d))?;
        }
        fs::set_permissions(&upper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(io_err("chmod", &upper))?;
        Ok(RootfsLayout {
            lowerdirs,
            upper,
            work,
            target,
            short_lowerdirs,
            snapshots_dir: self.dir.clone(),
        })
    }

    /// [`Snapshotter::rootfs_layout`] and [`mount_overlay`] in one: the container's root
    /// filesystem mounted at `<container_dir>/rootfs`.
    pub fn mount_rootfs(
        &self,
        chain: &[Digest],
        container_dir: &Path,
    ) -> Result<RootfsLayout, SnapshotError> {
        let l = self.rootfs_layout(chain, container_dir)?;
        mount_overlay(&l)?;
        Ok(l)
    }
}

/// File bytes under `dir`, each inode counted once (like `du --apparent-size`).
pub fn disk_usage(dir: &Path) -> Result<u64, SnapshotError> {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = match fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("listing", &d)(e)),
        };
        for ent in rd {
            let ent = ent.map_err(io_err("listing", &d))?;
            let m = fs::symlink_metadata(ent.path()).map_err(io_err("inspecting", &ent.path()))?;
            if m.is_dir() {
                stack.push(ent.path());
            } else if m.is_file() && seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    Ok(total)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

const EXTRA_OPTS: [&str; 3] = ["index=off,redirect_dir=off,metacopy=off", "index=off", ""];

fn opts_string(lower: &str, upper: &Path, work: &Path, extra: &str) -> String {
    let mut s = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        upper.display(),
        work.display()
    );
    if !extra.is_empty() {
        s.push(',');
        s.push_str(extra);
    }
    s
}

/// Mounts the overlay described by `l` at `l.target`. The lowerdir list is written top layer
/// first, as overlayfs wants. When the absolute paths would not fit in one page (the kernel's
/// limit on mount data), the mount is made from a helper thread with its own working directory
/// (`unshare(CLONE_FS)`) inside the snapshots directory, using the short `l/<id>` names.
pub fn mount_overlay(l: &RootfsLayout) -> Result<(), SnapshotError> {
    let abs: Vec<String> = l
        .lowerdirs
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let abs = abs.join(":");
    let limit = page_size() - 1;
    let mut last_err = None;
    let mut last_opts = String::new();
    for extra in EXTRA_OPTS {
        let o = opts_string(&abs, &l.upper, &l.work, extra);
        if o.len() <= limit {
            match mount(
                Some("overlay"),
                &l.target,
                Some("overlay"),
                MsFlags::empty(),
                Some(o.as_str()),
            ) {
                Ok(()) => return Ok(()),
                Err(nix::Error::EINVAL) => {
                    last_err = Some(nix::Error::EINVAL);
                    last_opts = o;
                    continue;
                }
                Err(e) => {
                    return Err(SnapshotError::Mount {
                        target: l.target.clone(),
                        options: o,
                        source: e,
                    })
                }
            }
        }
        // Too long: relative short names from inside the snapshots directory.
        let short: Vec<&str> = l.short_lowerdirs.iter().rev().map(String::as_str).collect();
        let o = opts_string(&short.join(":"), &l.upper, &l.work, extra);
        if o.len() > limit {
            return Err(SnapshotError::TooManyLayers(format!(
                "{} layers do not fit in the overlay mount options ({} > {limit} bytes)",
                l.lowerdirs.len(),
                o.len()
            )));
        }
        match mount_from(&l.snapshots_dir, &l.target, &o) {
            Ok(()) => return Ok(()),
            Err(nix::Error::EINVAL) => {
                last_err = Some(nix::Error::EINVAL);
                last_opts = o;
            }
            Err(e) => {
                return Err(SnapshotError::Mount {
                    target: l.target.clone(),
                    options: o,
                    source: e,
                })
            }
        }
    }
    Err(SnapshotError::Mount {
        target: l.target.clone(),
        options: last_opts,
        source: last_err.unwrap_or(nix::Error::EINVAL),
    })
}

/// Mounts overlay with relative lowerdirs resolved from `dir`, in a thread whose working
/// directory is private (so the rest of the process keeps its own).
fn mount_from(dir: &Path, target: &Path, opts: &str) -> Result<(), nix::Error> {
    let dir = dir.to_path_buf();
    let target = target.to_path_buf();
    let opts = opts.to_string();
    let h = std::thread::spawn(move || -> Result<(), nix::Error> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
        nix::unistd::chdir(&dir)?;
        mount(
            Some("overlay"),
            &target,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        )
    });
    h.join().unwrap_or(Err(nix::Error::EIO))
}

/// Unmounts a container root filesystem (lazily if it is busy). Not an error if nothing is
/// mounted there.
pub fn unmount(target: &Path) -> Result<(), SnapshotError> {
    match umount2(target, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(nix::Error::EBUSY) => {
            umount2(target, MntFlags::MNT_DETACH).map_err(|source| SnapshotError::Unmount {
                target: target.to_path_buf(),
                source,
            })
        }
        Err(source) => Err(SnapshotError::Unmount {
            target: target.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{Compression, Compressor};
    use std::io::Write;

    /// A gzip layer with `files` (path, bytes); returns (blob digest, diffID).
    fn make_layer(cs: &ContentStore, files: &[(&str, Vec<u8>)]) -> LayerSource {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, p, data.as_slice()).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let diff_id = Digest::sha256(&tar);
        let mut c = Compressor::new(Vec::new(), Compression::Gzip).unwrap();
        c.write_all(&tar).unwrap();
        let blob = cs.put_bytes(&c.finish().unwrap()).unwrap();
        LayerSource { blob, diff_id }
    }

    #[test]
    fn chain_id_rule() {
        let a = Digest::sha256(b"a");
        let b = Digest::sha256(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::sha256(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn shared_base_is_stored_once() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path()).unwrap();
        let sn = Snapshotter::open(t.path()).unwrap();
        let base = make_layer(&cs, &[("base/big", vec![1u8; 1 << 20])]);
        let a1 = make_layer(&cs, &[("a/file", vec![2u8; 1000])]);
        let b1 = make_layer(&cs, &[("b/file", vec![3u8; 3000])]);
        let img_a = sn.prepare_layers(&cs, &[base.clone(), a1]).unwrap();
        let after_a = sn.total_disk_usage().unwrap();
        let img_b = sn.prepare_layers(&cs, &[base.clone(), b1]).unwrap();
        let after_b = sn.total_disk_usage().unwrap();
        assert_eq!(img_a[0].chain_id, img_b[0].chain_id);
        assert_eq!(sn.list().unwrap().len(), 3);
        assert_eq!(after_a, (1 << 20) + 1000);
        // Image B added only its own layer: the 1 MiB base is not stored twice.
        assert_eq!(after_b - after_a, 3000);
        assert_eq!(sn.disk_usage(&img_a[0].chain_id).unwrap(), 1 << 20);
        assert_eq!(img_b[1].parent.as_ref(), Some(&img_b[0].chain_id));
        assert_eq!(sn.info(&img_b[1].chain_id).unwrap(), img_b[1]);
    }

    #[test]
    fn diff_id_mismatch_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path()).unwrap();
        let sn = Snapshotter::open(t.path()).unwrap();
        let mut l = make_layer(&cs, &[("f", b"x".to_vec())]);
        l.diff_id = Digest::sha256(b"something else");
        assert!(matches!(
            sn.prepare_layers(&cs, &[l]),
            Err(SnapshotError::DiffIdMismatch { .. })
        ));
        assert!(sn.list().unwrap().is_empty());
        let names: Vec<_> = fs::read_dir(sn.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with("tmp-")), "{names:?}");
    }

    #[test]
    fn leftovers_are_removed_but_not_unpacks_in_progress() {
        let t = tempfile::tempdir().unwrap();
        let sn = Snapshotter::open(t.path()).unwrap();
        let busy = sn.dir().join("tmp-busy");
        let stale = sn.dir().join("tmp-stale");
        fs::create_dir_all(busy.join("fs")).unwrap();
        fs::create_dir_all(stale.join("fs/x")).unwrap();
        let lock = lock_dir(&busy, true).unwrap().unwrap();
        // Fresh leftovers are kept for a while (they may be about to be locked)...
        Snapshotter::open(t.path()).unwrap();
        assert!(busy.exists() && stale.exists());
        // ...then removed, unless someone holds them.
        sn.clean_tmp(Duration::ZERO).unwrap();
        assert!(busy.exists());
        assert!(!stale.exists());
        drop(lock);
        sn.clean_tmp(Duration::ZERO).unwrap();
        assert!(!busy.exists());
    }

    #[test]
    fn layers_of_one_image_are_published_together() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path()).unwrap();
        let sn = Snapshotter::open(t.path()).unwrap();
        let l1 = make_layer(&cs, &[("a", b"1".to_vec())]);
        let l2 = make_layer(&cs, &[("b", b"2".to_vec())]);
        let mut bad = make_layer(&cs, &[("c", b"3".to_vec())]);
        bad.diff_id = Digest::sha256(b"not it");
        // The third layer fails: the two below it are not published either, nothing is left.
        assert!(sn
            .prepare_layers(&cs, &[l1.clone(), l2.clone(), bad])
            .is_err());
        assert!(sn.list().unwrap().is_empty());
        let names: Vec<_> = fs::read_dir(sn.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with("tmp-")), "{names:?}");
        // An image whose lower layer exists unpacks only the upper one.
        let base = sn.prepare_layers(&cs, std::slice::from_ref(&l1)).unwrap();
        let both = sn.prepare_layers(&cs, &[l1, l2]).unwrap();
        assert_eq!(both[0], base[0]);
        assert_eq!(both[1].parent.as_ref(), Some(&base[0].chain_id));
        assert_eq!(sn.list().unwrap().len(), 2);
        assert_eq!(
            fs::read(sn.fs_dir(&both[1].chain_id).join("b")).unwrap(),
            b"2"
        );
    }

    #[test]
    fn overlay_mount_and_many_layers() {
        let t = tempfile::tempdir().unwrap();
        // A deep root makes absolute lowerdir paths long.
        let root = t.path().join("x".repeat(60)).join("y".repeat(60));
        let cs = ContentStore::open(&root).unwrap();
        let sn = Snapshotter::open(&root).unwrap();
        let n = 40;
        let mut layers = Vec::new();
        for i in 0..n {
            layers.push(make_layer(
                &cs,
                &[
                    (&format!("f{i}"), format!("{i}").into_bytes()),
                    ("top", format!("{i}").into_bytes()),
                ],
            ));
        }
        let snaps = sn.prepare_layers(&cs, &layers).unwrap();
        let chain: Vec<Digest> = snaps.iter().map(|s| s.chain_id.clone()).collect();
        let cdir = t.path().join("container");
        let l = sn.rootfs_layout(&chain, &cdir).unwrap();
        let abs_len: usize = l.lowerdirs.iter().map(|p| p.as_os_str().len() + 1).sum();
        assert!(abs_len > 4096, "test must exceed a page ({abs_len})");
        mount_overlay(&l).unwrap();
        let r = || {
            assert_eq!(
                fs::read_to_string(l.target.join("top")).unwrap(),
                format!("{}", n - 1)
            );
            assert_eq!(fs::read_to_string(l.target.join("f0")).unwrap(), "0");
            fs::write(l.target.join("new"), b"rw").unwrap();
            assert_eq!(fs::read(l.upper.join("new")).unwrap(), b"rw");
        };
        let res = std::panic::catch_unwind(r);
        unmount(&l.target).unwrap();
        res.unwrap();
        assert!(!l.target.join("top").exists());
        // The process' own working directory was not changed by the helper thread.
        assert_ne!(std::env::current_dir().unwrap(), sn.dir());
    }

    #[test]
    fn whiteouts_hide_lower_files_in_mount() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path()).unwrap();
        let sn = Snapshotter::open(t.path()).unwrap();
        let l1 = make_layer(
            &cs,
            &[
                ("d/a", b"a".to_vec()),
                ("d/b", b"b".to_vec()),
                ("gone", b"g".to_vec()),
            ],
        );
        let l2 = make_layer(
            &cs,
            &[
                (".wh.gone", vec![]),
                ("d/.wh..wh..opq", vec![]),
                ("d/c", b"c".to_vec()),
            ],
        );
        let snaps = sn.prepare_layers(&cs, &[l1, l2]).unwrap();
        let chain: Vec<Digest> = snaps.iter().map(|s| s.chain_id.clone()).collect();
        let l = sn.mount_rootfs(&chain, &t.path().join("c")).unwrap();
        let res = std::panic::catch_unwind(|| {
            assert!(!l.target.join("gone").exists());
            let mut names: Vec<_> = fs::read_dir(l.target.join("d"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            assert_eq!(names, vec!["c"]);
            // Changes in the container show up as a layer diff with whiteouts.
            fs::remove_file(l.target.join("d/c")).unwrap();
            fs::write(l.target.join("added"), b"new").unwrap();
            let (_, tar) = crate::layer::write_diff(&l.upper, Vec::new()).unwrap();
            let mut ar = tar::Archive::new(tar.as_slice());
            let names: Vec<String> = ar
                .entries()
                .unwrap()
                .map(|e| String::from_utf8(e.unwrap().path_bytes().to_vec()).unwrap())
                .collect();
            assert_eq!(names, vec!["added", "d/", "d/.wh.c"]);
        });
        unmount(&l.target).unwrap();
        res.unwrap();
        sn.remove(&chain[1]).unwrap();
        assert!(!sn.exists(&chain[1]));
        assert!(sn.exists(&chain[0]));
    }
}
