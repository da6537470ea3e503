//! `docker cp`: `HEAD`/`GET`/`PUT /containers/{id}/archive`. Each copy runs on its own
//! thread in a private mount namespace where the container's volumes and bind mounts are
//! mounted at their destinations in its root filesystem (dockerd's container filesystem
//! view; [`enter_view`]), so paths under a mount read and write its source, for running and
//! stopped containers; the namespace and its mounts end with the thread. Paths are resolved
//! INSIDE that root (the overlay, mounted again if a stopped container's is not): symlinks
//! are followed with the rootfs as `/` ([`runtime::rootfs::secure_join`]), so nothing a
//! container put in its filesystem can make the daemon read or write outside it. Writes
//! under a read-only mount or into a `--read-only` rootfs are refused with dockerd's
//! messages.
//! As in dockerd, the last component of a path that is read is not followed (a symlink is
//! reported and archived as a symlink), while an extraction point is fully resolved.
//!
//! A running container is frozen (its cgroup freezer) while the daemon works in its
//! filesystem, so its processes cannot swap a resolved directory for a symlink under the
//! daemon's feet (the race of CVE-2018-15664); a container the user paused stays paused.
//!
//! Archives are tars whose root entry is named after the path's base name (`d/`, `d/a`… for
//! a directory `d`; `./…` for a path ending in `/.`); uploads are unpacked by the image
//! crate's escape-proof [`::image::layer::apply_layer`] (`.wh.` files kept as files,
//! `noOverwriteDirNonDir` and `copyUIDGID` honoured).

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use api::backend::{ApiResult, ArchivePutOptions, ContainerArchive};
use api::stream::ByteStream;
use api::types::{go_file_mode, PathStat};
use api::ApiError;
use bytes::Bytes;
use futures_util::StreamExt;

use super::containers::{lookup, ChannelWriter};
use super::store::ContainerRecord;
use super::Inner;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// A blocking [`Read`] over an upload (request body), fed by a task on the async runtime.
/// Create it inside the runtime; read it on a blocking thread.
pub(crate) struct BlockingReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, ApiError>>,
    cur: Bytes,
}

/// Starts forwarding `stream` into a [`BlockingReader`].
pub(crate) fn blocking_reader(mut stream: ByteStream) -> BlockingReader {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        while let Some(item) = stream.next().await {
            if tx.send(item).await.is_err() {
                return;
            }
        }
    });
    BlockingReader {
        rx,
        cur: Bytes::new(),
    }
}

impl Read for BlockingReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if !self.cur.is_empty() {
                let n = self.cur.len().min(out.len());
                out[..n].copy_from_slice(&self.cur.split_to(n));
                return Ok(n);
            }
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
                None => return Ok(0),
            }
        }
    }
}

/// Runs `write` on a thread with a writer whose bytes become the returned stream.
pub(crate) fn byte_stream(
    write: impl FnOnce(ChannelWriter) -> Result<ChannelWriter, String> + Send + 'static,
) -> ByteStream {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    std::thread::spawn(move || {
        let w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        match write(w) {
            Ok(mut w) => {
                let _ = w.flush();
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(ApiError::Internal(e)));
            }
        }
    });
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// A running container frozen for the duration of a filesystem operation; thawed on drop.
pub(crate) struct Frozen(Option<runtime::cgroups::Manager>);

impl Frozen {
    /// Freezes `c` if it runs and is not frozen already.
    pub(crate) fn new(c: &ContainerRecord) -> ApiResult<Frozen> {
        if c.state.status != "running" {
            return Ok(Frozen(None));
        }
        let m = super::stats::manager(&c.id)?;
        if m.is_frozen().unwrap_or(false) {
            return Ok(Frozen(None));
        }
        m.freeze()
            .map_err(|e| internal(format!("cannot pause container {} for the copy: {e}", c.id)))?;
        Ok(Frozen(Some(m)))
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Some(m) = self.0.take() {
            if let Err(e) = m.thaw() {
                eprintln!("berth daemon: warning: cannot thaw the container after a copy: {e}");
            }
        }
    }
}

/// The container's root filesystem, mounted (a stopped container's overlay may have been
/// unmounted, e.g. after a reboot: it is mounted again).
pub(crate) fn rootfs(inner: &Inner, c: &ContainerRecord) -> ApiResult<PathBuf> {
    let dir = crate::bundle::dir(&inner.opts.data_root, &c.id);
    let root = dir.join("rootfs");
    let mounted = match (std::fs::metadata(&root), std::fs::metadata(&dir)) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    };
    if !mounted {
        let img: ::image::Digest = c.image_id.parse().map_err(|e| {
            internal(format!(
                "the image ID of container {} is invalid: {e}",
                c.id
            ))
        })?;
        let layout = inner
            .images
            .container_layout(&img, &dir)
            .map_err(internal)?;
        ::image::snapshot::mount_overlay(&layout).map_err(|e| {
            internal(format!(
                "cannot mount the root filesystem of container {}: {e}",
                c.id
            ))
        })?;
    }
    Ok(root)
}

/// A container path as dockerd cleans it: absolute, `..` resolved lexically, a trailing `/`
/// or `/.` kept. Returns (directory part, base name part), e.g. `/a/b` -> (`/a/`, `b`),
/// `/a/b/` -> (`/a/b/`, ``), `/a/.` -> (`/a/`, `.`).
fn split(path: &str) -> (String, String) {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut abs = format!("/{}", parts.join("/"));
    if path.ends_with("/.") && abs != "/" {
        abs.push_str("/.");
    } else if (path.ends_with('/') || path.ends_with("/.") || path == ".") && !abs.ends_with('/') {
        abs.push('/');
    }
    match abs.rfind('/') {
        Some(i) => (abs[..=i].to_string(), abs[i + 1..].to_string()),
        None => ("/".into(), abs),
    }
}

/// Docker's name for a path: its base name (`/` for the root, `.` for `…/.`).
fn base_name(dir: &str, base: &str) -> String {
    if !base.is_empty() {
        return base.to_string();
    }
    dir.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("/")
        .to_string()
}

fn join_in(root: &Path, p: &str) -> ApiResult<PathBuf> {
    runtime::rootfs::secure_join(root, Path::new(p)).map_err(internal)
}

/// Resolves `path` for reading: every directory component followed inside `root`, the last
/// component not. Returns the host path.
fn resolve_last_unfollowed(root: &Path, path: &str) -> ApiResult<PathBuf> {
    let (dir, base) = split(path);
    let d = join_in(root, &dir)?;
    Ok(if base.is_empty() { d } else { d.join(base) })
}

/// The container path of host path `p` under `root`.
fn container_path(root: &Path, p: &Path) -> String {
    match p.strip_prefix(root) {
        Ok(r) => format!("/{}", r.display()),
        Err(_) => "/".into(),
    }
}

fn not_found(path: &str, c: &ContainerRecord) -> ApiError {
    ApiError::NotFound(format!(
        "Could not find the file {path} in container {}",
        c.name
    ))
}

/// The files the daemon bind-mounts over `/etc/hostname`, `/etc/hosts` and
/// `/etc/resolv.conf` live in the bundle: read those instead of the empty mount points.
fn bind_mounted(root: &Path, host: PathBuf) -> PathBuf {
    for f in ["hostname", "hosts", "resolv.conf"] {
        if host == root.join("etc").join(f) {
            if let Some(bundle) = root.parent() {
                return bundle.join(f);
            }
        }
    }
    host
}

fn stat_at(root: &Path, path: &str, c: &ContainerRecord) -> ApiResult<(PathBuf, PathStat)> {
    let host = bind_mounted(root, resolve_last_unfollowed(root, path)?);
    let m = std::fs::symlink_metadata(&host).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            not_found(path, c)
        } else {
            internal(format!("cannot stat {path} in container {}: {e}", c.name))
        }
    })?;
    let (dir, base) = split(path);
    if base.is_empty() && !m.is_dir() {
        return Err(ApiError::InvalidParameter(format!(
            "{path}: not a directory"
        )));
    }
    let link_target = if m.file_type().is_symlink() {
        let full = join_in(root, &format!("{dir}{base}"))?;
        container_path(root, &full)
    } else {
        String::new()
    };
    let stat = PathStat {
        name: base_name(&dir, &base),
        size: m.len() as i64,
        mode: go_file_mode(m.mode()),
        mtime: shim::timefmt::rfc3339_nano(m.mtime(), m.mtime_nsec().clamp(0, 999_999_999) as u32),
        link_target,
    };
    Ok((host, stat))
}

/// Mounts the container's volumes and bind mounts at their destinations in `root` (its
/// rootfs), in a private mount namespace the calling thread enters first: dockerd's
/// container filesystem view. `docker cp` then reads and writes a volume's or a bind's
/// source for paths under its destination, for running and stopped containers alike.
///
/// The calling thread must be a fresh one that ends after the copy: the namespace, and every
/// mount made here, goes away with it (nothing to undo, nothing seen by the host or the
/// container). tmpfs mounts are not in the view (as in dockerd: a tmpfs lives only in the
/// container's own namespace).
fn enter_view(inner: &Inner, c: &ContainerRecord, root: &Path) -> ApiResult<()> {
    use nix::mount::{mount, MsFlags};
    let err = |what: &str, e: nix::Error| internal(format!("cannot {what} for the copy: {e}"));
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS | nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| err("make a private mount namespace", e))?;
    // Nothing mounted here may propagate back to the host's mounts.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| err("make the view's mounts slaves", e))?;
    let mut ms: Vec<&super::volumes::MountRecord> =
        c.mounts.iter().filter(|m| m.kind != "tmpfs").collect();
    // Parents before what is mounted inside them.
    ms.sort_by_key(|m| m.destination.split('/').filter(|s| !s.is_empty()).count());
    for m in ms {
        if m.kind == "volume" {
            super::volumes::mount_private(inner, &m.name)?;
        }
        let src = Path::new(&m.source);
        let meta = std::fs::metadata(src).map_err(|e| {
            internal(format!(
                "cannot mount {} at {} for the copy: {e}",
                m.source, m.destination
            ))
        })?;
        // The destination resolved inside the root (the container is frozen or stopped, so
        // nothing changes it under us), created if the container never ran.
        let target = join_in(root, &m.destination)?;
        let made = if meta.is_dir() {
            std::fs::create_dir_all(&target)
        } else {
            target
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|_| {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(&target)
                        .map(drop)
                })
        };
        made.map_err(|e| {
            internal(format!(
                "cannot create the mount point {} for the copy: {e}",
                m.destination
            ))
        })?;
        // Mounted through a descriptor of the resolved inode, not through its path again.
        let fd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
            .open(&target)
            .map_err(|e| internal(format!("cannot open {}: {e}", target.display())))?;
        let via = format!("/proc/thread-self/fd/{}", fd.as_raw_fd());
        let mut flags = MsFlags::MS_BIND;
        if !m.non_recursive {
            flags |= MsFlags::MS_REC;
        }
        mount(Some(src), via.as_str(), None::<&str>, flags, None::<&str>)
            .map_err(|e| err(&format!("mount {} at {}", m.source, m.destination), e))?;
        drop(fd);
        if !m.rw {
            mount(
                None::<&str>,
                &target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(|e| err(&format!("make {} read-only", m.destination), e))?;
        }
        mount(
            None::<&str>,
            &target,
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| err(&format!("make {} private", m.destination), e))?;
    }
    Ok(())
}

/// Runs `job` on a new thread in the container's filesystem view ([`enter_view`]), with the
/// container's rootfs (mounted if needed) or the error that prevented the view. A running
/// container stays frozen until `job` returns.
fn in_view(
    inner: &Arc<Inner>,
    c: ContainerRecord,
    job: impl FnOnce(ApiResult<PathBuf>, &ContainerRecord) + Send + 'static,
) -> ApiResult<()> {
    let inner = inner.clone();
    std::thread::Builder::new()
        .name("berth-cp".into())
        .spawn(move || {
            let view = rootfs(&inner, &c).and_then(|root| {
                let frozen = Frozen::new(&c)?;
                enter_view(&inner, &c, &root)?;
                Ok((root, frozen))
            });
            match view {
                Ok((root, _frozen)) => job(Ok(root), &c),
                Err(e) => job(Err(e), &c),
            }
        })
        .map(drop)
        .map_err(|e| internal(format!("cannot start a copy thread: {e}")))
}

/// dockerd's check of an extraction point (a resolved container path): inside a mount, the
/// mount must be writable; elsewhere the container's rootfs must not be read-only.
fn check_writable(c: &ContainerRecord, cpath: &str) -> ApiResult<()> {
    let within = |d: &str| {
        let d = d.trim_end_matches('/');
        d.is_empty() || cpath == d || cpath.starts_with(&format!("{d}/"))
    };
    let covering = c
        .mounts
        .iter()
        .filter(|m| !m.hidden && within(&m.destination))
        .max_by_key(|m| m.destination.len());
    match covering {
        Some(m) if !m.rw => Err(ApiError::InvalidParameter(
            "mounted volume is marked read-only".into(),
        )),
        None if c.host_config.readonly_rootfs => Err(ApiError::InvalidParameter(
            "container rootfs is marked read-only".into(),
        )),
        _ => Ok(()),
    }
}

/// `HEAD /containers/{id}/archive`.
pub async fn stat(inner: &Arc<Inner>, key: &str, path: &str) -> ApiResult<PathStat> {
    let c = lookup(inner, key)?;
    let path = path.to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    in_view(inner, c, move |root, c| {
        let _ = tx.send(root.and_then(|root| stat_at(&root, &path, c).map(|(_, s)| s)));
    })?;
    rx.await
        .map_err(|_| internal("the copy thread ended early"))?
}

/// `GET /containers/{id}/archive`.
pub async fn get(inner: &Arc<Inner>, key: &str, path: &str) -> ApiResult<ContainerArchive> {
    let c = lookup(inner, key)?;
    let path = path.to_string();
    let (stat_tx, stat_rx) = tokio::sync::oneshot::channel();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    in_view(inner, c, move |root, c| {
        let (host, stat) = match root.and_then(|root| stat_at(&root, &path, c)) {
            Ok(v) => v,
            Err(e) => {
                let _ = stat_tx.send(Err(e));
                return;
            }
        };
        let name = if stat.name == "/" {
            ".".to_string()
        } else {
            stat.name.clone()
        };
        if stat_tx.send(Ok(stat)).is_err() {
            return;
        }
        // Written here, in the view, while the container stays frozen.
        let w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        let r = ::image::layer::write_path_tar(&host, name.as_bytes(), w)
            .map_err(|e| format!("cannot archive {}: {e}", host.display()))
            .and_then(|mut w| w.flush().map_err(|e| e.to_string()));
        if let Err(e) = r {
            let _ = tx.blocking_send(Err(ApiError::Internal(e)));
        }
    })?;
    let stat = stat_rx
        .await
        .map_err(|_| internal("the copy thread ended early"))??;
    let content: ByteStream = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    Ok(ContainerArchive { stat, content })
}

/// The uid and gid of the container's user (`Config.User`: `name|uid[:group|gid]`), looked
/// up in the container's /etc/passwd and /etc/group; root when unset.
fn container_user(root: &Path, user: &str) -> ApiResult<(u32, u32)> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    let read = |f: &str| -> String {
        join_in(root, f)
            .ok()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    };
    let passwd = read("/etc/passwd");
    let (uid, mut gid) = match u.parse::<u32>() {
        Ok(n) => (
            n,
            passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 3 && f[2] == u)
                .and_then(|f| f[3].parse().ok())
                .unwrap_or(n),
        ),
        Err(_) => passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[0] == u)
            .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .ok_or_else(|| {
                ApiError::InvalidParameter(format!(
                    "unable to find user {u}: no matching entries in passwd file"
                ))
            })?,
    };
    if !g.is_empty() {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => read("/etc/group")
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 2 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    ApiError::InvalidParameter(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    Ok((uid, gid))
}

/// How much of a refused upload is read before answering.
const DRAIN_LIMIT: u64 = 4 << 20;

/// `PUT /containers/{id}/archive`: unpack the tar into the directory `path`.
pub async fn put(
    inner: &Arc<Inner>,
    key: &str,
    path: &str,
    opts: ArchivePutOptions,
    content: ByteStream,
) -> ApiResult<()> {
    let c = lookup(inner, key)?;
    let reader = blocking_reader(content);
    let path = path.to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    in_view(inner, c, move |root, c| {
        let mut reader = reader;
        let r = root.and_then(|root| put_at(&root, &path, &opts, &mut reader, c));
        if r.is_err() {
            // Refused before the archive was read: take (some of) it anyway, as dockerd's
            // HTTP server does, so the client sees the answer rather than a broken pipe.
            let _ = std::io::copy(&mut (&mut reader).take(DRAIN_LIMIT), &mut std::io::sink());
        }
        let _ = tx.send(r);
    })?;
    rx.await
        .map_err(|_| internal("the copy thread ended early"))?
}

/// Unpacks `reader` into the directory `path` of the view rooted at `root`.
fn put_at(
    root: &Path,
    path: &str,
    opts: &ArchivePutOptions,
    reader: &mut BlockingReader,
    c: &ContainerRecord,
) -> ApiResult<()> {
    let (dir, base) = split(path);
    let host = join_in(root, &format!("{dir}{base}"))?;
    match std::fs::metadata(&host) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(ApiError::InvalidParameter(
                "extraction point is not a directory".into(),
            ))
        }
        Err(_) => return Err(not_found(path, c)),
    }
    check_writable(c, &container_path(root, &host))?;
    let chown = if opts.copy_uid_gid {
        Some(container_user(root, &c.config.user)?)
    } else {
        None
    };
    // Unpacked from the root filesystem itself, the destination resolved by the kernel
    // inside it (openat2 RESOLVE_IN_ROOT, crossing into the view's volume mounts), never
    // through a path a container process could change since the check above.
    let rel = format!("{dir}{base}").trim_start_matches('/').to_string();
    let o = ::image::layer::ApplyOptions {
        keep_whiteout_files: true,
        no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
        chown,
        base: Some(PathBuf::from(if rel.is_empty() { "." } else { &rel })),
        ..Default::default()
    };
    ::image::layer::apply_layer(reader, root, &o).map_err(|e| match e {
        ::image::layer::LayerError::Overwrite(m) => ApiError::InvalidParameter(m),
        ::image::layer::LayerError::Breakout { .. } | ::image::layer::LayerError::Tar(_) => {
            ApiError::InvalidParameter(e.to_string())
        }
        e => internal(e),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_dockerd() {
        assert_eq!(split("/a/b"), ("/a/".into(), "b".into()));
        assert_eq!(split("a/b/"), ("/a/b/".into(), "".into()));
        assert_eq!(split("/a/."), ("/a/".into(), ".".into()));
        assert_eq!(split("/"), ("/".into(), "".into()));
        assert_eq!(split("/a/../../b"), ("/".into(), "b".into()));
        assert_eq!(base_name("/a/b/", ""), "b");
        assert_eq!(base_name("/", ""), "/");
    }
}
