//! Control groups: one interface over cgroup v1, hybrid and pure v2.
//!
//! This module owns everything the runtime does with cgroups: working out where a
//! container's cgroup lives (from OCI `linux.cgroupsPath`, including runc's
//! `--systemd-cgroup` form `slice:prefix:name`, which is mapped onto the cgroupfs layout —
//! berth never talks to systemd), creating it and moving processes in ([`Manager::apply`]),
//! writing `linux.resources` limits ([`Manager::set`]), freezing, listing processes,
//! statistics in the shape of `runc events --stats` ([`Stats`]) and removing it again.
//!
//! Hierarchies are found from `/proc/self/mountinfo`, never by assumed names. On a hybrid
//! host (v1 controllers plus a unified hierarchy without controllers) the cgroup is also
//! created in the unified hierarchy, best effort, so that cgroup namespaces and tools see it.
//! On v2 the device allow-list is an eBPF program this module assembles and attaches itself
//! (`devices_bpf.rs`).
//!
//! Files: `paths.rs` (path arithmetic, mountinfo), `v1.rs`, `v2.rs`, `devices.rs` (device
//! rules), `devices_bpf.rs` (v2 device filter), `stats.rs` (statistics types and parsers).

mod devices;
mod devices_bpf;
mod paths;
mod stats;
mod v1;
mod v2;

#[cfg(test)]
mod kernel_tests;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use devices::default_device_rules;
pub use stats::{
    Blkio, BlkioEntry, Cpu, CpuSet, CpuUsage, Hugetlb, IntelRdt, Memory, MemoryEntry,
    NetworkInterface, Pids, Stats, Throttling,
};

use paths::{CgroupPath, Mount};

/// Everything that can go wrong with cgroups.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `linux.cgroupsPath` (or the container id the default path is built from) is unusable.
    #[error("invalid cgroupsPath {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A value in `linux.resources` is malformed or out of range.
    #[error("invalid {field}: {reason}")]
    InvalidValue {
        /// The configuration field, e.g. `linux.resources.memory.swappiness`.
        field: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A limit was requested for a controller this host (or this cgroup) does not have.
    #[error("{field} is set, but the {controller} cgroup controller is not available: {detail}")]
    ControllerMissing {
        /// The controller, e.g. `memory`.
        controller: String,
        /// The configuration field that asked for it.
        field: String,
        /// What is missing and what to do.
        detail: String,
    },
    /// A setting this cgroup version cannot express.
    #[error("{what} is not supported on cgroup {version}: {hint}")]
    Unsupported {
        /// The setting.
        what: String,
        /// The cgroup version in use.
        version: Version,
        /// What to do instead.
        hint: String,
    },
    /// No cgroup hierarchy could be found.
    #[error("no cgroup hierarchy found: {0}; is cgroupfs mounted at /sys/fs/cgroup?")]
    NoHierarchy(String),
    /// Reading a cgroup file or directory failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Writing a cgroup file failed.
    #[error("cannot write {value:?} to {path}: {source}{}", hint_for_write(.source))]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The cause.
        source: io::Error,
    },
    /// Creating a cgroup directory failed.
    #[error("cannot create cgroup {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Removing a cgroup directory failed.
    #[error("cannot remove cgroup {path}: {source}{}", hint_for_remove(.source))]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A cgroup file had unexpected content.
    #[error("unexpected content in {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Freezing or thawing did not complete.
    #[error("cannot {action} cgroup {path}: {reason}")]
    Freeze {
        /// `freeze` or `thaw`.
        action: &'static str,
        /// The cgroup directory.
        path: PathBuf,
        /// What happened.
        reason: String,
    },
    /// Loading or attaching the cgroup v2 device filter failed.
    #[error(
        "cannot install the cgroup v2 device filter on {path}: {op} failed: {errno}{}",
        parenthesized(.detail)
    )]
    Bpf {
        /// The cgroup directory.
        path: PathBuf,
        /// The bpf(2) command that failed.
        op: &'static str,
        /// The error the kernel returned.
        errno: Errno,
        /// Why, when known (e.g. the verifier log).
        detail: String,
    },
}

fn hint_for_write(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EBUSY) => " (the value is in use or below current usage)",
        Some(libc::EINVAL) => " (the kernel rejected the value)",
        Some(libc::ENOSPC) => {
            " (for cpuset: cpus/mems are empty; for v2: the cgroup has children with controllers)"
        }
        Some(libc::EPERM) | Some(libc::EACCES) => " (permission denied: run as root)",
        _ => "",
    }
}

fn parenthesized(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

fn hint_for_remove(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EBUSY) => " (processes are still in it: kill them first)",
        _ => "",
    }
}

/// Shorthand for results in this module.
pub type Result<T> = std::result::Result<T, Error>;

/// The cgroup version of the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    /// Legacy per-controller hierarchies; hybrid hosts count as v1.
    V1,
    /// The unified hierarchy.
    V2,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

/// Detects the host's cgroup version: `/sys/fs/cgroup` being a cgroup2 mount means v2;
/// anything else (a tmpfs of v1 hierarchies, with or without a unified one) means v1.
pub fn detect() -> Version {
    match nix::sys::statfs::statfs("/sys/fs/cgroup") {
        Ok(fs) if fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => Version::V2,
        _ => Version::V1,
    }
}

/// One hierarchy's mount point and this cgroup's directory in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// Where the hierarchy is mounted.
    pub mount_point: PathBuf,
    /// The cgroup's directory.
    pub dir: PathBuf,
}

/// A container's cgroup, in every hierarchy it lives in.
///
/// Built once from the configuration ([`Manager::new`]); it only records directories, so it
/// can be stored in the runtime's state (serde) and used again by later commands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manager {
    version: Version,
    /// The cgroup path inside the hierarchies, normalised (relative paths stay relative for
    /// v1, where each hierarchy resolves them on its own).
    path: String,
    /// v1: controller name (`memory`, `name=systemd`, …) to hierarchy. Co-mounted
    /// controllers share a directory. Empty on v2.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    controllers: BTreeMap<String, Hierarchy>,
    /// v2: the cgroup. v1: the same path in the unified hierarchy of a hybrid host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unified: Option<Hierarchy>,
}

impl Manager {
    /// Works out the cgroup for `cgroups_path` (OCI `linux.cgroupsPath`) on this host.
    ///
    /// `""` means `/berth/<id>`; an absolute path is relative to each hierarchy's root; a
    /// relative one to the calling process's own cgroup (from `/proc/self/cgroup`). With
    /// `systemd` (runc's `--systemd-cgroup`), `slice:prefix:name` maps onto the directory
    /// systemd would use (`system.slice:docker:abc` → `/system.slice/docker-abc.scope`),
    /// `""` means `/system.slice/berth-<id>.scope`, and a plain path is accepted as well.
    /// Nothing is created until [`Manager::apply`] or [`Manager::set`].
    pub fn new(cgroups_path: &str, id: &str, systemd: bool) -> Result<Manager> {
        let path = paths::parse_cgroups_path(cgroups_path, id, systemd)?;
        let mountinfo = read_text(Path::new("/proc/self/mountinfo"))?;
        let mounts = paths::parse_mountinfo(&mountinfo);
        let (v1_mounts, unified_mount) = paths::discover_mounts(&mounts);
        match detect() {
            Version::V2 => {
                let mount = mounts
                    .iter()
                    .find(|m| m.fstype == "cgroup2" && m.mount_point == Path::new("/sys/fs/cgroup"))
                    .map(|m| Mount {
                        mount_point: m.mount_point.clone(),
                        root: m.root.clone(),
                    })
                    .unwrap_or_else(|| Mount {
                        mount_point: PathBuf::from("/sys/fs/cgroup"),
                        root: "/".into(),
                    });
                Manager::build_v2(mount, &path)
            }
            Version::V1 => Manager::build_v1(v1_mounts, unified_mount, &path),
        }
    }

    /// Like [`Manager::new`], with an explicit hierarchy root instead of the host's mounts:
    /// for v1 a directory holding one sub-directory per hierarchy (named by its controllers,
    /// e.g. `memory`, `cpu,cpuacct`, `systemd` for `name=systemd`, `unified` for the v2
    /// hierarchy of a hybrid layout); for v2 the cgroup2 mount point. Relative paths still
    /// resolve against `/proc/self/cgroup`.
    pub fn with_root(
        version: Version,
        root: &Path,
        cgroups_path: &str,
        id: &str,
        systemd: bool,
    ) -> Result<Manager> {
        let path = paths::parse_cgroups_path(cgroups_path, id, systemd)?;
        match version {
            Version::V2 => Manager::build_v2(
                Mount {
                    mount_point: root.to_path_buf(),
                    root: "/".into(),
                },
                &path,
            ),
            Version::V1 => {
                let (v1_mounts, unified) = paths::discover_root(root)?;
                Manager::build_v1(v1_mounts, unified, &path)
            }
        }
    }

    fn own_cgroups(path: &CgroupPath) -> Result<Vec<paths::ProcCgroup>> {
        Ok(match path {
            CgroupPath::Relative(_) => {
                paths::parse_proc_cgroup(&read_text(Path::new("/proc/self/cgroup"))?)
            }
            CgroupPath::Absolute(_) => Vec::new(),
        })
    }

    fn build_v2(mount: Mount, path: &CgroupPath) -> Result<Manager> {
        let own = Manager::own_cgroups(path)?;
        let own = paths::own_cgroup(&own, None);
        let inner = paths::inner_path(&mount, own.as_deref(), path, "unified")?;
        let dir = paths::dir_of(&mount, &inner);
        Ok(Manager {
            version: Version::V2,
            path: inner,
            controllers: BTreeMap::new(),
            unified: Some(Hierarchy {
                mount_point: mount.mount_point,
                dir,
            }),
        })
    }

    fn build_v1(
        mounts: BTreeMap<String, Mount>,
        unified: Option<Mount>,
        path: &CgroupPath,
    ) -> Result<Manager> {
        if mounts.is_empty() {
            return Err(Error::NoHierarchy(
                "no cgroup v1 controller hierarchy is mounted (checked /proc/self/mountinfo)"
                    .into(),
            ));
        }
        let own = Manager::own_cgroups(path)?;
        let mut controllers = BTreeMap::new();
        for (name, mount) in mounts {
            let own_path = paths::own_cgroup(&own, Some(&name));
            let inner = paths::inner_path(&mount, own_path.as_deref(), path, &name)?;
            let dir = paths::dir_of(&mount, &inner);
            controllers.insert(
                name,
                Hierarchy {
                    mount_point: mount.mount_point,
                    dir,
                },
            );
        }
        // The unified hierarchy of a hybrid host is best effort: if our path cannot be
        // resolved there, we simply do not join it.
        let unified = unified.and_then(|mount| {
            let own_path = paths::own_cgroup(&own, None);
            let inner = paths::inner_path(&mount, own_path.as_deref(), path, "unified").ok()?;
            let dir = paths::dir_of(&mount, &inner);
            Some(Hierarchy {
                mount_point: mount.mount_point,
                dir,
            })
        });
        Ok(Manager {
            version: Version::V1,
            path: path.as_str().to_string(),
            controllers,
            unified,
        })
    }

    /// The cgroup version this manager drives.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The cgroup path inside the hierarchies (e.g. `/berth/<id>`), for state and debugging.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The cgroup's directory in every hierarchy, keyed like runc's `cgroup_paths`: v1
    /// controller names, and `""` for the unified hierarchy (the cgroup itself on v2, the
    /// extra join on a hybrid host).
    pub fn paths(&self) -> BTreeMap<String, PathBuf> {
        let mut out: BTreeMap<String, PathBuf> = self
            .controllers
            .iter()
            .map(|(k, h)| (k.clone(), h.dir.clone()))
            .collect();
        if let Some(u) = &self.unified {
            out.insert(String::new(), u.dir.clone());
        }
        out
    }

    /// The v1 hierarchies by controller name (empty on v2).
    pub fn controllers(&self) -> &BTreeMap<String, Hierarchy> {
        &self.controllers
    }

    /// The unified hierarchy: the cgroup on v2, the hybrid join on v1 (if mounted).
    pub fn unified(&self) -> Option<&Hierarchy> {
        self.unified.as_ref()
    }

    /// Creates the cgroup (`mkdir -p` in every hierarchy, copying cpuset `cpus`/`mems` from
    /// the parents on v1, enabling controllers in the parents' `cgroup.subtree_control` on
    /// v2) and moves `pid` into it (`cgroup.procs`). Idempotent.
    pub fn apply(&self, pid: i32) -> Result<()> {
        match self.version {
            Version::V1 => v1::apply(self, pid),
            Version::V2 => v2::apply(self, pid),
        }
    }

    /// Writes the limits of `r`, creating the cgroup first if needed (so it may be called
    /// before [`Manager::apply`], which realtime CPU settings on v1 need, like runc).
    ///
    /// Fields that are absent or 0 are left alone. A requested limit whose controller is
    /// missing is an error naming the controller and the field. `unified` is written
    /// verbatim on v2 and refused on v1. Kernel memory limits are ignored, as runc does.
    ///
    /// `devices`, when present, replaces the whole device policy starting from "deny all"
    /// (v1: `devices.deny a`, then each rule in order; v2: a new eBPF filter replacing the
    /// previous one). The runtime appends [`default_device_rules`] itself, as runc does.
    pub fn set(&self, r: &LinuxResources) -> Result<()> {
        match self.version {
            Version::V1 => v1::set(self, r),
            Version::V2 => v2::set(self, r),
        }
    }

    /// Freezes every process in the cgroup and waits until the kernel reports it frozen.
    pub fn freeze(&self) -> Result<()> {
        match self.version {
            Version::V1 => v1::freeze(self),
            Version::V2 => v2::freeze(self),
        }
    }

    /// Thaws the cgroup and waits until the kernel reports it thawed.
    pub fn thaw(&self) -> Result<()> {
        match self.version {
            Version::V1 => v1::thaw(self),
            Version::V2 => v2::thaw(self),
        }
    }

    /// Whether the cgroup is frozen (fully: a freeze still in progress is `false`).
    pub fn is_frozen(&self) -> Result<bool> {
        match self.version {
            Version::V1 => v1::is_frozen(self),
            Version::V2 => v2::is_frozen(self),
        }
    }

    /// Every process in the cgroup and its sub-cgroups, sorted. A cgroup that does not
    /// exist (yet, or any more) has none.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let Some(dir) = self.pids_dir() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        collect_pids(dir, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn pids_dir(&self) -> Option<&Path> {
        match self.version {
            Version::V2 => self.unified.as_ref().map(|h| h.dir.as_path()),
            Version::V1 => ["pids", "devices", "freezer", "memory", "cpu"]
                .iter()
                .find_map(|c| self.controllers.get(*c))
                .or_else(|| self.controllers.values().next())
                .map(|h| h.dir.as_path()),
        }
    }

    /// Reads the cgroup's statistics (runc's `events --stats` data). Controllers that are
    /// not there leave their fields zero.
    pub fn stats(&self) -> Result<Stats> {
        match self.version {
            Version::V1 => v1::stats(self),
            Version::V2 => v2::stats(self),
        }
    }

    /// Removes the cgroup (and any sub-cgroups) from every hierarchy, retrying briefly while
    /// the kernel still reports it busy. Directories that are already gone are fine; parents
    /// such as `/berth` are left in place (other containers may share them).
    pub fn destroy(&self) -> Result<()> {
        let mut dirs: Vec<&Path> = self.controllers.values().map(|h| h.dir.as_path()).collect();
        if let Some(u) = &self.unified {
            dirs.push(u.dir.as_path());
        }
        dirs.sort();
        dirs.dedup();
        // Retry EBUSY (processes that just exited can hold a cgroup for a moment) for all
        // hierarchies together, for about 0.6 s in total.
        let mut failed: Option<Error> = None;
        let mut pending = dirs;
        let mut delay = Duration::from_millis(10);
        for attempt in 0..=6 {
            let mut busy = Vec::new();
            let mut busy_err = None;
            for dir in pending {
                match remove_cgroup(dir) {
                    Ok(()) => {}
                    Err(e) if is_busy(&e) => {
                        busy.push(dir);
                        busy_err = Some(e);
                    }
                    Err(e) => {
                        failed.get_or_insert(e);
                    }
                }
            }
            let Some(e) = busy_err else { break };
            if attempt == 6 {
                failed.get_or_insert(e);
                break;
            }
            std::thread::sleep(delay);
            delay *= 2;
            pending = busy;
        }
        failed.map_or(Ok(()), Err)
    }
}

fn is_busy(e: &Error) -> bool {
    matches!(e, Error::Remove { source, .. } if source.raw_os_error() == Some(libc::EBUSY))
}

// ---- small file helpers shared by v1 and v2 ----

/// Reads a whole file.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads `dir/file`; `None` if it does not exist.
pub(crate) fn read_opt(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read { path, source }),
    }
}

/// Reads `dir/file` as one number (`max` is `u64::MAX`); `None` if it does not exist.
pub(crate) fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>> {
    match read_opt(dir, file)? {
        Some(s) => Ok(Some(stats::parse_u64(&dir.join(file), &s)?)),
        None => Ok(None),
    }
}

/// Writes `value` to an existing cgroup file (never creates it).
fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).truncate(true).open(path)?;
    f.write_all(value.as_bytes())
}

/// Writes `value` to `dir/file`.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    write_raw(&path, value).map_err(|source| Error::Write {
        path,
        value: value.to_string(),
        source,
    })
}

/// Writes a limit to `dir/file`; a missing file means the controller (or that feature of
/// it) is not available for `field`.
pub(crate) fn write_limit(
    dir: &Path,
    file: &str,
    value: &str,
    controller: &str,
    field: &str,
) -> Result<()> {
    let path = dir.join(file);
    match write_raw(&path, value) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::ControllerMissing {
            controller: controller.to_string(),
            field: field.to_string(),
            detail: format!(
                "{} does not exist (the controller is not enabled for this cgroup, or the \
                 kernel lacks this feature)",
                path.display()
            ),
        }),
        Err(source) => Err(Error::Write {
            path,
            value: value.to_string(),
            source,
        }),
    }
}

/// `mkdir -p`.
pub(crate) fn mkdir_p(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Create {
        path: dir.to_path_buf(),
        source,
    })
}

/// `mkdir`, tolerating an existing directory.
pub(crate) fn mkdir(dir: &Path) -> Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(Error::Create {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Removes a cgroup directory and its sub-cgroups, deepest first (one attempt; `rmdir` on
/// cgroupfs takes the control files with it). A directory already gone is fine.
fn remove_cgroup(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries {
        let entry = entry.map_err(|source| Error::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_cgroup(&entry.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Remove {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Appends the pids of `dir` and all cgroups below it.
fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let Some(text) = read_opt(dir, "cgroup.procs")? else {
        return Ok(());
    };
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let pid = line.parse::<i32>().map_err(|_| Error::Parse {
            path: dir.join("cgroup.procs"),
            reason: format!("{line:?} is not a pid"),
        })?;
        out.push(pid);
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries {
        let entry = entry.map_err(|source| Error::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_pids(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// Checks an OCI memory value: `-1` (unlimited), `0` (unset) or a positive byte count.
pub(crate) fn check_memory_value(field: &str, v: i64) -> Result<()> {
    if v < -1 {
        return Err(Error::InvalidValue {
            field: format!("linux.resources.memory.{field}"),
            reason: format!("{v} is not a byte count (use a positive number, or -1 for unlimited)"),
        });
    }
    Ok(())
}

/// Formats an OCI limit the v2 way: -1 is `max`.
pub(crate) fn limit_str(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary directory removed on drop.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let p = std::env::temp_dir().join(format!(
                "berth-cg-{tag}-{}-{}-{nanos}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn serde_roundtrip_and_paths() {
        let t = TempDir::new("serde");
        for d in ["cpu,cpuacct", "memory", "systemd", "unified"] {
            std::fs::create_dir_all(t.0.join(d)).unwrap();
        }
        let m = Manager::with_root(Version::V1, &t.0, "/a/b", "id", false).unwrap();
        let json = serde_json::to_string(&m).unwrap();
        let back: Manager = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        let p = m.paths();
        assert_eq!(p["cpu"], t.0.join("cpu,cpuacct/a/b"));
        assert_eq!(p["cpuacct"], t.0.join("cpu,cpuacct/a/b"));
        assert_eq!(p["name=systemd"], t.0.join("systemd/a/b"));
        assert_eq!(p[""], t.0.join("unified/a/b"));
        assert_eq!(m.path(), "/a/b");
        assert_eq!(m.version(), Version::V1);

        let m2 =
            Manager::with_root(Version::V2, &t.0, "system.slice:docker:abc", "id", true).unwrap();
        assert_eq!(m2.path(), "/system.slice/docker-abc.scope");
        assert_eq!(m2.paths()[""], t.0.join("system.slice/docker-abc.scope"));
        let back: Manager = serde_json::from_str(&serde_json::to_string(&m2).unwrap()).unwrap();
        assert_eq!(back, m2);
    }

    #[test]
    fn relative_path_uses_own_cgroup() {
        let t = TempDir::new("rel");
        let own = paths::parse_proc_cgroup(&read_text(Path::new("/proc/self/cgroup")).unwrap());
        let m = Manager::with_root(Version::V2, &t.0, "child/x", "id", false).unwrap();
        let base = paths::own_cgroup(&own, None).unwrap();
        let want = paths::normalize(&base, "child/x").unwrap();
        assert_eq!(m.path(), want);
        assert_eq!(m.paths()[""], t.0.join(want.trim_start_matches('/')));
    }

    #[test]
    fn destroy_missing_and_pids_missing_are_fine() {
        let t = TempDir::new("missing");
        let m = Manager::with_root(Version::V2, &t.0, "/nope", "id", false).unwrap();
        m.destroy().unwrap();
        assert!(m.pids().unwrap().is_empty());
    }

    #[test]
    fn error_messages_are_helpful() {
        let e = Error::ControllerMissing {
            controller: "memory".into(),
            field: "linux.resources.memory.limit".into(),
            detail: "x".into(),
        };
        assert_eq!(
            e.to_string(),
            "linux.resources.memory.limit is set, but the memory cgroup controller is not available: x"
        );
        let e = Error::Write {
            path: "/f".into(),
            value: "1".into(),
            source: io::Error::from_raw_os_error(libc::EBUSY),
        };
        assert!(e.to_string().contains("below current usage"), "{e}");
    }
}
