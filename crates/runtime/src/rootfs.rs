//! The container's filesystem view: mount propagation, the spec's mounts (resolved inside the
//! rootfs so a symlink in an image can never point a mount at the host), default devices and
//! /dev symlinks, pivot_root (or chroot), and the masked/readonly paths applied afterwards.
//!
//! Everything here runs in the container's init, inside its new mount namespace.

use std::ffi::CString;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};

/// Errors setting up the root filesystem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("mount {what} on {dest}: {source}")]
    Mount {
        what: String,
        dest: PathBuf,
        source: nix::Error,
    },
    #[error("mounts[{index}] ({dest}): {msg}")]
    Spec {
        index: usize,
        dest: String,
        msg: String,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path}: {source}")]
    Sys {
        what: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("path {0} resolves through too many symlinks inside the rootfs")]
    SymlinkLoop(PathBuf),
}

type Result<T> = std::result::Result<T, Error>;

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { what, path, source }
}

fn sys(what: &'static str, path: &Path) -> impl FnOnce(nix::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Sys { what, path, source }
}

/// Resolve `unsafe_path` as if `root` were `/`: symlinks are followed but can never lead
/// outside `root`, and `..` stops at `root`. The result need not exist.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let mut todo: Vec<std::ffi::OsString> = unsafe_path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut cur: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            cur.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&cur);
        candidate.push(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return Err(Error::SymlinkLoop(unsafe_path.to_path_buf()));
                }
                let target = std::fs::read_link(&candidate).map_err(io("readlink", &candidate))?;
                if target.is_absolute() {
                    cur.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => todo.push(n.to_os_string()),
                        Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => cur.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&cur);
    Ok(out)
}

/// Mount flags and data parsed from a mount's options.
#[derive(Debug, PartialEq)]
pub struct Options {
    pub flags: MsFlags,
    /// Flags to clear (e.g. `rw`, `suid`): only matter for remounts.
    pub clear: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub bind: bool,
    pub recursive: bool,
    pub data: Vec<String>,
}

/// Parse OCI mount options (`ro`, `nosuid`, `rbind`, `rprivate`, `size=64m`, …).
pub fn parse_options(opts: &[String]) -> Options {
    let mut o = Options {
        flags: MsFlags::empty(),
        clear: MsFlags::empty(),
        propagation: Vec::new(),
        bind: false,
        recursive: false,
        data: Vec::new(),
    };
    for opt in opts {
        let (set, clear) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "bind" => {
                o.bind = true;
                continue;
            }
            "rbind" => {
                o.bind = true;
                o.recursive = true;
                continue;
            }
            "private" => {
                o.propagation.push(MsFlags::MS_PRIVATE);
                continue;
            }
            "rprivate" => {
                o.propagation.push(MsFlags::MS_PRIVATE | MsFlags::MS_REC);
                continue;
            }
            "shared" => {
                o.propagation.push(MsFlags::MS_SHARED);
                continue;
            }
            "rshared" => {
                o.propagation.push(MsFlags::MS_SHARED | MsFlags::MS_REC);
                continue;
            }
            "slave" => {
                o.propagation.push(MsFlags::MS_SLAVE);
                continue;
            }
            "rslave" => {
                o.propagation.push(MsFlags::MS_SLAVE | MsFlags::MS_REC);
                continue;
            }
            "unbindable" => {
                o.propagation.push(MsFlags::MS_UNBINDABLE);
                continue;
            }
            "runbindable" => {
                o.propagation.push(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC);
                continue;
            }
            // Options other runtimes understand that have no meaning for us here.
            "tmpcopyup" | "defaults" | "z" | "Z" | "rro" | "rrw" | "norbind" => continue,
            other => {
                o.data.push(other.to_string());
                continue;
            }
        };
        o.flags |= set;
        o.flags &= !clear;
        o.clear |= clear;
    }
    o
}

/// The propagation flag for linux.rootfsPropagation.
pub fn root_propagation(p: Option<&str>) -> std::result::Result<MsFlags, String> {
    Ok(match p.unwrap_or("") {
        "" | "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        other => return Err(format!("unknown rootfsPropagation {other:?}")),
    })
}

/// What the mount code needs to know about the container.
pub struct Context<'a> {
    pub rootfs: &'a Path,
    /// In a new user namespace: devices are bind-mounted from the host, not created.
    pub in_user_ns: bool,
    /// The container has its own cgroup namespace.
    pub cgroup_ns: bool,
    /// The container's cgroup paths for a `cgroup` mount without a namespace (v1: controller
    /// mount point on the host -> container's cgroup dir on the host).
    pub cgroup_binds: Vec<(PathBuf, PathBuf)>,
    /// The host uses the unified (v2) hierarchy only.
    pub cgroup_v2: bool,
}

/// Prepare the mount namespace: set / propagation and make the rootfs a mount point.
pub fn prepare(ctx: &Context, propagation: MsFlags) -> Result<()> {
    mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>).map_err(|source| {
        Error::Mount {
            what: "propagation".into(),
            dest: "/".into(),
            source,
        }
    })?;
    // pivot_root refuses a new root whose parent mount is shared.
    make_parent_private(ctx.rootfs)?;
    mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|source| Error::Mount {
        what: "rootfs bind".into(),
        dest: ctx.rootfs.to_path_buf(),
        source,
    })
}

/// Make the mount containing `path` private if it is shared.
fn make_parent_private(path: &Path) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(io("read", Path::new("/proc/self/mountinfo")))?;
    let mut best: Option<(&str, bool)> = None;
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 7 {
            continue;
        }
        let mp = f[4];
        let shared = f[6..]
            .iter()
            .take_while(|x| **x != "-")
            .any(|x| x.starts_with("shared:"));
        if path.starts_with(mp) && best.is_none_or(|(b, _)| mp.len() >= b.len()) {
            best = Some((mp, shared));
        }
    }
    if let Some((mp, true)) = best {
        mount(
            None::<&str>,
            mp,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|source| Error::Mount {
            what: "private".into(),
            dest: mp.into(),
            source,
        })?;
    }
    Ok(())
}

/// Mount every entry of `mounts` under the rootfs; `first` is the index of `mounts[0]` in the
/// spec's list (for error messages).
pub fn mount_all(ctx: &Context, mounts: &[Mount], first: usize) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        mount_one(ctx, first + i, m)?;
    }
    Ok(())
}

fn spec_err(index: usize, m: &Mount, msg: impl Into<String>) -> Error {
    Error::Spec {
        index,
        dest: m.destination().display().to_string(),
        msg: msg.into(),
    }
}

fn mount_one(ctx: &Context, index: usize, m: &Mount) -> Result<()> {
    if !m.destination().is_absolute() {
        return Err(spec_err(index, m, "destination must be an absolute path"));
    }
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if opts.bind { "bind" } else { "" });
    let dest = secure_join(ctx.rootfs, m.destination())?;
    let is_bind = opts.bind || typ == "bind";
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(ctx, &dest, &opts);
    }
    if is_bind {
        let src = m
            .source()
            .as_ref()
            .ok_or_else(|| spec_err(index, m, "a bind mount needs a source"))?;
        let meta = std::fs::metadata(src)
            .map_err(|e| spec_err(index, m, format!("source {}: {e}", src.display())))?;
        create_target(&dest, meta.is_dir())?;
        let mut flags = MsFlags::MS_BIND;
        if opts.recursive {
            flags |= MsFlags::MS_REC;
        }
        do_mount(Some(src.as_path()), &dest, None, flags, None)?;
        // Flags on a bind mount only take effect through a remount.
        let extra = opts.flags & !(MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            remount_bind(&dest, extra)?;
        }
    } else {
        if typ.is_empty() {
            return Err(spec_err(index, m, "the mount has no type"));
        }
        create_target(&dest, true)?;
        let data = opts.data.join(",");
        let src = m
            .source()
            .as_ref()
            .map(|p| p.as_path())
            .unwrap_or(Path::new(typ));
        let data = if data.is_empty() {
            None
        } else {
            Some(data.as_str())
        };
        let r = do_mount(Some(src), &dest, Some(typ), opts.flags, data);
        match r {
            // sysfs cannot be mounted in a user namespace without its own network namespace:
            // give it the host's, read-only, as runc does.
            Err(Error::Mount {
                source: nix::Error::EPERM,
                ..
            }) if typ == "sysfs" => {
                do_mount(
                    Some(Path::new("/sys")),
                    &dest,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )?;
                remount_bind(&dest, opts.flags | MsFlags::MS_RDONLY)?;
            }
            r => r?,
        }
        if typ == "tmpfs" && opts.flags.contains(MsFlags::MS_RDONLY) {
            // Fine as is; nothing to copy up.
        }
    }
    for p in &opts.propagation {
        do_mount(None, &dest, None, *p, None)?;
    }
    Ok(())
}

fn do_mount(
    src: Option<&Path>,
    dest: &Path,
    typ: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(src, dest, typ, flags, data).map_err(|source| Error::Mount {
        what: format!(
            "{} ({})",
            src.map(|s| s.display().to_string()).unwrap_or_default(),
            typ.unwrap_or("bind")
        ),
        dest: dest.to_path_buf(),
        source,
    })
}

/// Remount a bind mount with flags, keeping the flags the kernel locked (in a user namespace,
/// nodev/nosuid/noexec inherited from the host cannot be cleared).
fn remount_bind(dest: &Path, flags: MsFlags) -> Result<()> {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match do_mount(None, dest, None, base | flags, None) {
        Err(Error::Mount {
            source: nix::Error::EPERM,
            ..
        }) => {
            let st = nix::sys::statvfs::statvfs(dest).map_err(sys("statvfs", dest))?;
            let f = st.flags();
            let mut locked = MsFlags::empty();
            use nix::sys::statvfs::FsFlags as F;
            for (sf, mf) in [
                (F::ST_NODEV, MsFlags::MS_NODEV),
                (F::ST_NOSUID, MsFlags::MS_NOSUID),
                (F::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (F::ST_RDONLY, MsFlags::MS_RDONLY),
                (F::ST_NOATIME, MsFlags::MS_NOATIME),
                (F::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
                (F::ST_RELATIME, MsFlags::MS_RELATIME),
            ] {
                if f.contains(sf) {
                    locked |= mf;
                }
            }
            do_mount(None, dest, None, base | flags | locked, None)
        }
        r => r,
    }
}

fn mount_cgroup(ctx: &Context, dest: &Path, opts: &Options) -> Result<()> {
    create_target(dest, true)?;
    let ro = opts.flags & MsFlags::MS_RDONLY;
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if ctx.cgroup_v2 {
        if ctx.cgroup_ns {
            return do_mount(
                Some(Path::new("cgroup2")),
                dest,
                Some("cgroup2"),
                base | ro,
                None,
            );
        }
        if let Some((_, host)) = ctx.cgroup_binds.first() {
            do_mount(
                Some(host),
                dest,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
            return remount_bind(dest, base | ro);
        }
        return Ok(());
    }
    // v1: a tmpfs holding one directory per hierarchy.
    do_mount(
        Some(Path::new("tmpfs")),
        dest,
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )?;
    for (host_mount, host_dir) in &ctx.cgroup_binds {
        let Some(name) = host_mount.file_name() else {
            continue;
        };
        let sub = dest.join(name);
        create_target(&sub, true)?;
        if ctx.cgroup_ns {
            let subsys = cgroup_v1_options(host_mount);
            let fstype = if name == "unified" {
                "cgroup2"
            } else {
                "cgroup"
            };
            let data = if fstype == "cgroup2" {
                None
            } else {
                Some(subsys.as_str())
            };
            if do_mount(
                Some(Path::new("cgroup")),
                &sub,
                Some(fstype),
                base | ro,
                data,
            )
            .is_ok()
            {
                continue;
            }
        }
        do_mount(
            Some(host_dir),
            &sub,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        remount_bind(&sub, base | ro)?;
    }
    if ro.contains(MsFlags::MS_RDONLY) {
        remount_bind(dest, base | MsFlags::MS_RDONLY).or_else(|_| {
            do_mount(
                None,
                dest,
                None,
                MsFlags::MS_REMOUNT | base | MsFlags::MS_RDONLY,
                None,
            )
        })?;
    }
    Ok(())
}

/// The superblock options of a v1 cgroup mount point (e.g. "memory" or "name=systemd").
fn cgroup_v1_options(mount_point: &Path) -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() > 4 && Path::new(f[4]) == mount_point {
            if let Some(sep) = f.iter().position(|x| *x == "-") {
                if let Some(super_opts) = f.get(sep + 3) {
                    return super_opts
                        .split(',')
                        .filter(|o| *o != "rw" && *o != "ro")
                        .collect::<Vec<_>>()
                        .join(",");
                }
            }
        }
    }
    String::new()
}

/// Create a mount target: a directory, or an empty file for a file bind mount.
fn create_target(dest: &Path, dir: bool) -> Result<()> {
    if dir {
        if !dest.is_dir() {
            std::fs::create_dir_all(dest).map_err(io("cannot create mount point", dest))?;
        }
    } else if std::fs::symlink_metadata(dest).is_err() {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io("cannot create mount point", parent))?;
        }
        std::fs::File::create(dest).map_err(io("cannot create mount point", dest))?;
    }
    Ok(())
}

/// Devices every container gets (OCI "default devices").
pub fn default_devices() -> Vec<(&'static str, u64, u64)> {
    vec![
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
}

/// Create the default devices, the spec's linux.devices, and the /dev symlinks.
pub fn create_devices(ctx: &Context, devices: &[LinuxDevice]) -> Result<()> {
    for (path, major, minor) in default_devices() {
        if devices.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        make_device(
            ctx,
            Path::new(path),
            SFlag::S_IFCHR,
            major,
            minor,
            0o666,
            0,
            0,
        )?;
    }
    for d in devices {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => continue,
        };
        let mode = d.file_mode().unwrap_or(0o666);
        make_device(
            ctx,
            d.path(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            mode,
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        )?;
    }
    let dev = secure_join(ctx.rootfs, Path::new("/dev"))?;
    let links = [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    for (target, name) in links {
        let p = dev.join(name);
        if std::fs::symlink_metadata(&p).is_err() {
            symlink(target, &p).map_err(io("cannot create symlink", &p))?;
        }
    }
    if Path::new("/proc/kcore").exists() {
        let p = dev.join("core");
        if std::fs::symlink_metadata(&p).is_err() {
            symlink("/proc/kcore", &p).map_err(io("cannot create symlink", &p))?;
        }
    }
    // /dev/ptmx must be the container's own devpts instance.
    if dev.join("pts/ptmx").exists() {
        let p = dev.join("ptmx");
        if let Ok(m) = std::fs::symlink_metadata(&p) {
            if !m.file_type().is_symlink() {
                std::fs::remove_file(&p).map_err(io("cannot remove", &p))?;
            }
        }
        if std::fs::symlink_metadata(&p).is_err() {
            symlink("pts/ptmx", &p).map_err(io("cannot create symlink", &p))?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    ctx: &Context,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let dest = secure_join(ctx.rootfs, path)?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(io("cannot create", parent))?;
    }
    let want = makedev(major, minor);
    if let Ok(m) = std::fs::symlink_metadata(&dest) {
        let ft = m.file_type();
        if (ft.is_char_device() || ft.is_block_device()) && m.rdev() == want {
            return Ok(());
        }
    }
    if ctx.in_user_ns {
        // mknod is not allowed in a user namespace: bind the host's node instead.
        if std::fs::symlink_metadata(&dest).is_err() {
            std::fs::File::create(&dest).map_err(io("cannot create", &dest))?;
        }
        return do_mount(Some(path), &dest, None, MsFlags::MS_BIND, None);
    }
    let _ = std::fs::remove_file(&dest);
    let perm = Mode::from_bits_truncate(mode & 0o7777);
    mknod(&dest, kind, perm, want).map_err(sys("mknod", &dest))?;
    // mknod is subject to umask; set the exact mode and owner.
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(io("chmod", &dest))?;
    nix::unistd::chown(
        &dest,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .map_err(sys("chown", &dest))
}

/// Bind the terminal's pty onto /dev/console in the rootfs (before pivot) or / (after).
pub fn bind_console(slave_path: &Path) -> Result<()> {
    let dest = Path::new("/dev/console");
    create_target(dest, false)?;
    do_mount(Some(slave_path), dest, None, MsFlags::MS_BIND, None)
}

/// Switch the root: pivot_root into the rootfs and detach the old root; or, with `no_pivot`,
/// move the rootfs over / and chroot (for rootfs on ramfs/initramfs, where pivot fails).
pub fn switch_root(rootfs: &Path, no_pivot: bool) -> Result<()> {
    std::env::set_current_dir(rootfs).map_err(io("chdir", rootfs))?;
    if no_pivot {
        do_mount(Some(rootfs), Path::new("/"), None, MsFlags::MS_MOVE, None)?;
        nix::unistd::chroot(".").map_err(sys("chroot", rootfs))?;
    } else {
        // pivot_root(".", "."): the old root ends up stacked under the new one; detach it.
        nix::unistd::pivot_root(".", ".").map_err(sys("pivot_root", rootfs))?;
        // Make the old root a slave so that unmounting it cannot propagate to the host.
        do_mount(
            None,
            Path::new("."),
            None,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None,
        )?;
        umount2(".", MntFlags::MNT_DETACH).map_err(sys("unmount old root", rootfs))?;
    }
    std::env::set_current_dir("/").map_err(io("chdir", Path::new("/")))
}

/// Write linux.sysctl entries (after the switch, through the container's /proc).
pub fn apply_sysctls(sysctl: &std::collections::HashMap<String, String>) -> Result<()> {
    for (k, v) in sysctl {
        let path = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
        std::fs::write(&path, v.as_bytes()).map_err(io("cannot set sysctl", &path))?;
    }
    Ok(())
}

/// Bind-mount each path read-only over itself; missing paths are skipped.
pub fn readonly_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        let path = Path::new(p);
        if std::fs::symlink_metadata(path).is_err() {
            continue;
        }
        do_mount(
            Some(path),
            path,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        remount_bind(
            path,
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )?;
    }
    Ok(())
}

/// Hide each path: /dev/null over files, an empty read-only tmpfs over directories.
pub fn mask_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        let path = Path::new(p);
        let Ok(m) = std::fs::metadata(path) else {
            continue;
        };
        if m.is_dir() {
            do_mount(
                Some(Path::new("tmpfs")),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
            )?;
        } else {
            do_mount(
                Some(Path::new("/dev/null")),
                path,
                None,
                MsFlags::MS_BIND,
                None,
            )?;
        }
    }
    Ok(())
}

/// Make / read-only (root.readonly).
pub fn readonly_root() -> Result<()> {
    remount_bind(Path::new("/"), MsFlags::MS_RDONLY)
}

/// The path of a program, looked up in `PATH` (from the process env) inside the current root.
pub fn find_executable(prog: &str, env: &[String]) -> std::result::Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let is_exec = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return match std::fs::metadata(&p) {
            Err(_) => Err(format!("exec: {prog:?}: no such file or directory")),
            Ok(m) if m.is_dir() => Err(format!("exec: {prog:?}: is a directory")),
            Ok(_) if !is_exec(&p) => Err(format!("exec: {prog:?}: permission denied")),
            Ok(_) => Ok(p),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let p = Path::new(dir).join(prog);
        if is_exec(&p) {
            return Ok(p);
        }
    }
    Err(format!(
        "exec: {prog:?}: executable file not found in $PATH"
    ))
}

/// A path as a C string (for raw syscalls).
pub fn cstring(p: &Path) -> std::result::Result<CString, std::ffi::NulError> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_join_contains_symlinks() {
        let d = std::env::temp_dir().join(format!("berth-sj-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        symlink("/etc", d.join("abs")).unwrap();
        symlink("../../../../..", d.join("a/up")).unwrap();
        symlink("loop2", d.join("loop1")).unwrap();
        symlink("loop1", d.join("loop2")).unwrap();
        assert_eq!(
            secure_join(&d, Path::new("/abs/passwd")).unwrap(),
            d.join("etc/passwd")
        );
        assert_eq!(secure_join(&d, Path::new("/a/up/x")).unwrap(), d.join("x"));
        assert_eq!(secure_join(&d, Path::new("/../../x")).unwrap(), d.join("x"));
        assert_eq!(secure_join(&d, Path::new("a/b")).unwrap(), d.join("a/b"));
        assert!(matches!(
            secure_join(&d, Path::new("/loop1")),
            Err(Error::SymlinkLoop(_))
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn options_parse() {
        let o = parse_options(&[
            "nosuid".into(),
            "ro".into(),
            "rbind".into(),
            "rprivate".into(),
            "size=65536k".into(),
            "mode=755".into(),
        ]);
        assert!(o.bind && o.recursive);
        assert!(o.flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_RDONLY));
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(
            o.data,
            vec!["size=65536k".to_string(), "mode=755".to_string()]
        );
        let o = parse_options(&["ro".into(), "rw".into()]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn executables_are_found_in_path() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(find_executable("sh", &env).unwrap().ends_with("sh"));
        assert!(find_executable("no-such-prog-xyz", &env)
            .unwrap_err()
            .contains("not found"));
        assert!(find_executable("/etc", &env)
            .unwrap_err()
            .contains("directory"));
    }

    #[test]
    fn root_propagation_names() {
        assert_eq!(
            root_propagation(None).unwrap(),
            MsFlags::MS_SLAVE | MsFlags::MS_REC
        );
        assert!(root_propagation(Some("bogus")).is_err());
    }
}
