//! Where a container's cgroup lives.
//!
//! This file owns the path arithmetic: parsing OCI `linux.cgroupsPath` in its cgroupfs form
//! (absolute, relative, empty) and in runc's `--systemd-cgroup` form `slice:prefix:name`
//! (mapped onto the cgroupfs layout systemd would have produced; we never talk to systemd),
//! reading `/proc/self/mountinfo` and `/proc/self/cgroup`, and turning a cgroup path into the
//! directory of every mounted hierarchy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Error, Result};

/// A cgroup path as the configuration gave it, normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CgroupPath {
    /// Relative to each hierarchy's root; starts with `/` and is never the root itself.
    Absolute(String),
    /// Relative to the calling process's own cgroup in each hierarchy; never empty, may start
    /// with `..` components.
    Relative(String),
}

impl CgroupPath {
    /// The normalised path as text.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            CgroupPath::Absolute(p) | CgroupPath::Relative(p) => p,
        }
    }
}

/// Where one cgroup hierarchy is mounted, and which cgroup is at that mount point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The directory the hierarchy is mounted on.
    pub(crate) mount_point: PathBuf,
    /// The cgroup (inside the hierarchy) shown at the mount point; `/` unless the mount is a
    /// bind of a sub-tree or was made inside a cgroup namespace.
    pub(crate) root: String,
}

/// Turns OCI `linux.cgroupsPath` into a normalised cgroup path.
///
/// - cgroupfs form (`systemd == false`): `""` gives `/berth/<id>`; an absolute path is taken
///   relative to the hierarchy root; a relative one relative to our own cgroup.
/// - systemd form (`systemd == true`): `slice:prefix:name` gives `<expanded slice>/<prefix>-<name>.scope`
///   (or `<expanded slice>/<name>` when `name` is itself a `.slice`), an empty slice meaning
///   `system.slice`; `""` gives `/system.slice/berth-<id>.scope`; a plain path (no `:`) is
///   accepted and treated as in the cgroupfs form.
pub(crate) fn parse_cgroups_path(
    cgroups_path: &str,
    id: &str,
    systemd: bool,
) -> Result<CgroupPath> {
    let invalid = |reason: String| Error::InvalidPath {
        path: cgroups_path.to_string(),
        reason,
    };
    if cgroups_path.contains('\0') {
        return Err(invalid("it contains a NUL byte".into()));
    }
    if cgroups_path.is_empty() {
        check_id(id, cgroups_path)?;
        return Ok(CgroupPath::Absolute(if systemd {
            format!("/system.slice/berth-{id}.scope")
        } else {
            format!("/berth/{id}")
        }));
    }
    if systemd && cgroups_path.contains(':') {
        let parts: Vec<&str> = cgroups_path.split(':').collect();
        let [slice, prefix, name] = parts.as_slice() else {
            return Err(invalid(
                "expected the systemd form \"slice:prefix:name\" (e.g. \"system.slice:docker:abc\")"
                    .into(),
            ));
        };
        if name.is_empty() || name.contains('/') || *name == "." || *name == ".." {
            return Err(invalid(format!(
                "the unit name part {name:?} must be non-empty and contain no '/'"
            )));
        }
        if prefix.contains('/') {
            return Err(invalid(format!(
                "the prefix part {prefix:?} must not contain '/'"
            )));
        }
        let slice = if slice.is_empty() {
            "system.slice"
        } else {
            slice
        };
        let parent = expand_slice(slice).map_err(invalid)?;
        // Like runc: a scope unless the name asks for a slice; the prefix is always joined
        // with a dash, even when empty.
        let unit = if name.ends_with(".slice") {
            (*name).to_string()
        } else {
            format!("{prefix}-{name}.scope")
        };
        let joined = if parent == "/" {
            format!("/{unit}")
        } else {
            format!("{parent}/{unit}")
        };
        return Ok(CgroupPath::Absolute(joined));
    }
    if cgroups_path.starts_with('/') {
        let cleaned = normalize("/", cgroups_path).map_err(invalid)?;
        if cleaned == "/" {
            return Err(invalid(
                "it names the root of the cgroup hierarchy; give the container its own cgroup"
                    .into(),
            ));
        }
        Ok(CgroupPath::Absolute(cleaned))
    } else {
        let cleaned = clean_relative(cgroups_path);
        if cleaned.is_empty() {
            return Err(invalid(
                "it names the runtime's own cgroup; give the container its own cgroup".into(),
            ));
        }
        Ok(CgroupPath::Relative(cleaned))
    }
}

fn check_id(id: &str, cgroups_path: &str) -> Result<()> {
    if id.is_empty() || id.contains('/') || id.contains('\0') || id == "." || id == ".." {
        return Err(Error::InvalidPath {
            path: cgroups_path.to_string(),
            reason: format!(
                "the default path is derived from the container id {id:?}, which must be \
                 non-empty and contain no '/' or NUL"
            ),
        });
    }
    Ok(())
}

/// Expands a systemd slice name into its cgroup path: `a-b-c.slice` lives at
/// `/a.slice/a-b.slice/a-b-c.slice`, and `-.slice` is the root.
pub(crate) fn expand_slice(slice: &str) -> std::result::Result<String, String> {
    const SUFFIX: &str = ".slice";
    let Some(stem) = slice.strip_suffix(SUFFIX) else {
        return Err(format!("the slice {slice:?} must end in \".slice\""));
    };
    if slice.contains('/') {
        return Err(format!("the slice {slice:?} must not contain '/'"));
    }
    if stem == "-" {
        return Ok("/".into());
    }
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err(format!(
            "the slice {slice:?} is not a valid slice name (empty parts between '-')"
        ));
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        path.push('/');
        path.push_str(&prefix);
        path.push_str(part);
        path.push_str(SUFFIX);
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

/// Joins `rel` onto the absolute cgroup path `base` and resolves `.`/`..` lexically.
/// Climbing above the hierarchy root is an error.
pub(crate) fn normalize(base: &str, rel: &str) -> std::result::Result<String, String> {
    let mut parts: Vec<&str> = Vec::new();
    let start: &str = if rel.starts_with('/') { "" } else { base };
    for comp in start.split('/').chain(rel.split('/')) {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!(
                        "{rel:?} climbs above the root of the cgroup hierarchy"
                    ));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Resolves `.` and inner `..` of a relative path; leading `..` are kept.
fn clean_relative(rel: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for comp in rel.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if matches!(parts.last(), Some(p) if *p != "..") {
                    parts.pop();
                } else {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// One line of `/proc/self/mountinfo`, the fields we use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MountInfo {
    pub(crate) root: String,
    pub(crate) mount_point: PathBuf,
    pub(crate) fstype: String,
    pub(crate) super_options: String,
}

/// Parses `/proc/self/mountinfo` text; malformed lines are skipped.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 6 || right.len() < 3 {
            continue;
        }
        out.push(MountInfo {
            root: unescape(left[3]),
            mount_point: PathBuf::from(unescape(left[4])),
            fstype: right[0].to_string(),
            super_options: right[2].to_string(),
        });
    }
    out
}

/// Undoes the octal escapes (`\040` for a space, …) the kernel uses in mountinfo.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = (oct[0] - b'0') as u32 * 64
                    + (oct[1] - b'0') as u32 * 8
                    + (oct[2] - b'0') as u32;
                if let Ok(b) = u8::try_from(v) {
                    out.push(b);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of `/proc/<pid>/cgroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProcCgroup {
    /// Controllers of the hierarchy (`name=systemd` for named ones); empty for the unified one.
    pub(crate) controllers: Vec<String>,
    /// The process's cgroup in that hierarchy.
    pub(crate) path: String,
    /// Whether this is the unified (v2) hierarchy line `0::/…`.
    pub(crate) unified: bool,
}

/// Parses `/proc/<pid>/cgroup` text; malformed lines are skipped.
pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<ProcCgroup> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let controllers: Vec<String> = ctrls
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        out.push(ProcCgroup {
            unified: id == "0" && controllers.is_empty(),
            controllers,
            path: path.to_string(),
        });
    }
    out
}

/// The v1 controllers berth joins (runc's list); named hierarchies other than
/// `name=systemd` are left alone.
pub(crate) const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
    "name=systemd",
];

/// Finds the v1 hierarchies (by controller) and the unified one, from parsed mountinfo.
/// Mounts under `/sys/fs/cgroup` win over other mounts of the same hierarchy.
pub(crate) fn discover_mounts(mounts: &[MountInfo]) -> (BTreeMap<String, Mount>, Option<Mount>) {
    let preferred = |m: &&MountInfo| m.mount_point.starts_with("/sys/fs/cgroup");
    let ordered: Vec<&MountInfo> = mounts
        .iter()
        .filter(preferred)
        .chain(mounts.iter().filter(|m| !preferred(m)))
        .collect();
    let mut v1 = BTreeMap::new();
    let mut unified = None;
    for m in ordered {
        match m.fstype.as_str() {
            "cgroup" => {
                for opt in m.super_options.split(',') {
                    if V1_CONTROLLERS.contains(&opt) && !v1.contains_key(opt) {
                        v1.insert(
                            opt.to_string(),
                            Mount {
                                mount_point: m.mount_point.clone(),
                                root: m.root.clone(),
                            },
                        );
                    }
                }
            }
            "cgroup2" if unified.is_none() => {
                unified = Some(Mount {
                    mount_point: m.mount_point.clone(),
                    root: m.root.clone(),
                });
            }
            _ => {}
        }
    }
    (v1, unified)
}

/// Finds hierarchies in a directory laid out like `/sys/fs/cgroup` on a v1 host: one
/// sub-directory per hierarchy named by its controllers (`cpu,cpuacct`), `systemd` for
/// `name=systemd` and `unified` for the v2 hierarchy. Symlinks are skipped.
pub(crate) fn discover_root(root: &Path) -> Result<(BTreeMap<String, Mount>, Option<Mount>)> {
    let entries = std::fs::read_dir(root).map_err(|source| Error::Read {
        path: root.to_path_buf(),
        source,
    })?;
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Read {
            path: root.to_path_buf(),
            source,
        })?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !is_dir {
            continue;
        }
        names.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    names.sort();
    let mut v1 = BTreeMap::new();
    let mut unified = None;
    for (name, path) in names {
        let mount = Mount {
            mount_point: path,
            root: "/".into(),
        };
        if name == "unified" {
            unified = Some(mount);
            continue;
        }
        for part in name.split(',') {
            let ctrl = if part == "systemd" {
                "name=systemd".to_string()
            } else {
                part.to_string()
            };
            if V1_CONTROLLERS.contains(&ctrl.as_str()) && !v1.contains_key(&ctrl) {
                v1.insert(ctrl, mount.clone());
            }
        }
    }
    Ok((v1, unified))
}

/// The calling process's own cgroup in a v1 hierarchy (`controller`) or, with `None`, in the
/// unified one.
pub(crate) fn own_cgroup(entries: &[ProcCgroup], controller: Option<&str>) -> Option<String> {
    entries
        .iter()
        .find(|e| match controller {
            None => e.unified,
            Some(c) => e.controllers.iter().any(|x| x == c),
        })
        .map(|e| e.path.clone())
}

/// The cgroup path inside a hierarchy (`/a/b`), for `path` seen from a process whose own
/// cgroup there is `own`.
pub(crate) fn inner_path(
    mount: &Mount,
    own: Option<&str>,
    path: &CgroupPath,
    what: &str,
) -> Result<String> {
    match path {
        CgroupPath::Absolute(p) => Ok(p.clone()),
        CgroupPath::Relative(rel) => {
            let Some(own) = own else {
                return Err(Error::InvalidPath {
                    path: rel.clone(),
                    reason: format!(
                        "it is relative, but /proc/self/cgroup lists no cgroup of ours in the \
                         {what} hierarchy; use an absolute cgroupsPath"
                    ),
                });
            };
            // Our cgroup as seen below the mount point: strip the mount's root.
            let seen = if mount.root != "/" {
                match own.strip_prefix(mount.root.as_str()) {
                    Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_string(),
                    _ => own.to_string(),
                }
            } else {
                own.to_string()
            };
            let base = if seen.is_empty() {
                "/".to_string()
            } else {
                seen
            };
            let joined = normalize(&base, rel).map_err(|reason| Error::InvalidPath {
                path: rel.clone(),
                reason,
            })?;
            if joined == "/" {
                return Err(Error::InvalidPath {
                    path: rel.clone(),
                    reason: format!("it resolves to the root of the {what} hierarchy"),
                });
            }
            Ok(joined)
        }
    }
}

/// The directory of cgroup `inner` (from [`inner_path`]) below `mount`.
pub(crate) fn dir_of(mount: &Mount, inner: &str) -> PathBuf {
    mount.mount_point.join(inner.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abs(s: &str) -> CgroupPath {
        CgroupPath::Absolute(s.into())
    }

    #[test]
    fn cgroupfs_forms() {
        assert_eq!(
            parse_cgroups_path("", "abc", false).unwrap(),
            abs("/berth/abc")
        );
        assert_eq!(
            parse_cgroups_path("/docker/abc", "x", false).unwrap(),
            abs("/docker/abc")
        );
        assert_eq!(
            parse_cgroups_path("/a//b/./c/", "x", false).unwrap(),
            abs("/a/b/c")
        );
        assert_eq!(
            parse_cgroups_path("/a/../b", "x", false).unwrap(),
            abs("/b")
        );
        assert!(parse_cgroups_path("/..", "x", false).is_err());
        assert!(parse_cgroups_path("/", "x", false).is_err());
        assert!(parse_cgroups_path("/a/..", "x", false).is_err());
        assert_eq!(
            parse_cgroups_path("mine/c1", "x", false).unwrap(),
            CgroupPath::Relative("mine/c1".into())
        );
        assert_eq!(
            parse_cgroups_path("../sib/./c", "x", false).unwrap(),
            CgroupPath::Relative("../sib/c".into())
        );
        assert!(parse_cgroups_path(".", "x", false).is_err());
        assert!(parse_cgroups_path("a/..", "x", false).is_err());
        assert!(parse_cgroups_path("", "a/b", false).is_err());
        assert!(parse_cgroups_path("", "", false).is_err());
        // A colon is only special in the systemd form.
        assert_eq!(
            parse_cgroups_path("/a:b:c", "x", false).unwrap(),
            abs("/a:b:c")
        );
    }

    #[test]
    fn systemd_forms() {
        assert_eq!(
            parse_cgroups_path("system.slice:docker:abc", "x", true).unwrap(),
            abs("/system.slice/docker-abc.scope")
        );
        assert_eq!(
            parse_cgroups_path("machine-test.slice:libpod:abc", "x", true).unwrap(),
            abs("/machine.slice/machine-test.slice/libpod-abc.scope")
        );
        assert_eq!(
            parse_cgroups_path(":cri-containerd:abc", "x", true).unwrap(),
            abs("/system.slice/cri-containerd-abc.scope")
        );
        assert_eq!(
            parse_cgroups_path("-.slice:p:n", "x", true).unwrap(),
            abs("/p-n.scope")
        );
        assert_eq!(
            parse_cgroups_path("kubepods.slice:p:kubepods-besteffort.slice", "x", true).unwrap(),
            abs("/kubepods.slice/kubepods-besteffort.slice")
        );
        assert_eq!(
            parse_cgroups_path("", "abc", true).unwrap(),
            abs("/system.slice/berth-abc.scope")
        );
        // Plain paths are accepted with --systemd-cgroup.
        assert_eq!(
            parse_cgroups_path("/plain/x", "x", true).unwrap(),
            abs("/plain/x")
        );
        assert_eq!(
            parse_cgroups_path("rel/x", "x", true).unwrap(),
            CgroupPath::Relative("rel/x".into())
        );
        for bad in [
            "a:b",
            "a:b:c:d",
            "system.slice:p:",
            "nosuffix:p:n",
            "a--b.slice:p:n",
            "system.slice:p:a/b",
        ] {
            assert!(
                parse_cgroups_path(bad, "x", true).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn slices() {
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert_eq!(expand_slice("a.slice").unwrap(), "/a.slice");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        assert!(expand_slice("a-.slice").is_err());
        assert!(expand_slice("-a.slice").is_err());
        assert!(expand_slice(".slice").is_err());
        assert!(expand_slice("a/b.slice").is_err());
    }

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 /sub /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
90 31 0:37 / /sys/fs/cgroup/odd rw,relatime - cgroup cgroup rw,name=other
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:32 / /tmp/with\\040space rw - cgroup cgroup rw,memory
51 23 0:38 / /tmp/x rw - cgroup2 none rw
";

    #[test]
    fn mountinfo_and_discovery() {
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(mounts.len(), 10);
        assert_eq!(mounts[8].mount_point, PathBuf::from("/tmp/with space"));
        let (v1, unified) = discover_mounts(&mounts);
        assert_eq!(v1["cpu"].mount_point, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(
            v1["cpuacct"].mount_point,
            PathBuf::from("/sys/fs/cgroup/cpuacct")
        );
        // /sys/fs/cgroup wins over a later mount of the same hierarchy.
        assert_eq!(
            v1["memory"].mount_point,
            PathBuf::from("/sys/fs/cgroup/memory")
        );
        assert_eq!(v1["memory"].root, "/sub");
        assert_eq!(
            v1["net_prio"].mount_point,
            PathBuf::from("/sys/fs/cgroup/net_cls,net_prio")
        );
        assert_eq!(
            v1["name=systemd"].mount_point,
            PathBuf::from("/sys/fs/cgroup/systemd")
        );
        assert!(!v1.contains_key("name=other"));
        assert_eq!(
            unified.unwrap().mount_point,
            PathBuf::from("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn proc_cgroup_and_relative_resolution() {
        let entries =
            parse_proc_cgroup("9:name=systemd:/\n4:memory:/sub/me\n2:cpu,cpuacct:/me\n0::/u/me\n");
        assert_eq!(
            own_cgroup(&entries, Some("cpuacct")).as_deref(),
            Some("/me")
        );
        assert_eq!(
            own_cgroup(&entries, Some("name=systemd")).as_deref(),
            Some("/")
        );
        assert_eq!(own_cgroup(&entries, None).as_deref(), Some("/u/me"));
        assert_eq!(own_cgroup(&entries, Some("pids")), None);

        let rel = CgroupPath::Relative("c1".into());
        let root = Mount {
            mount_point: "/m".into(),
            root: "/".into(),
        };
        let sub = Mount {
            mount_point: "/m".into(),
            root: "/sub".into(),
        };
        assert_eq!(
            inner_path(&root, Some("/me"), &rel, "cpu").unwrap(),
            "/me/c1"
        );
        assert_eq!(inner_path(&root, Some("/"), &rel, "cpu").unwrap(), "/c1");
        // The mount shows /sub at its mount point: our /sub/me is /me below it.
        assert_eq!(
            inner_path(&sub, Some("/sub/me"), &rel, "memory").unwrap(),
            "/me/c1"
        );
        let up = CgroupPath::Relative("../sib".into());
        assert_eq!(
            inner_path(&root, Some("/a/me"), &up, "cpu").unwrap(),
            "/a/sib"
        );
        assert!(inner_path(
            &root,
            Some("/"),
            &CgroupPath::Relative("../x".into()),
            "cpu"
        )
        .is_err());
        assert!(inner_path(
            &root,
            Some("/me"),
            &CgroupPath::Relative("..".into()),
            "cpu"
        )
        .is_err());
        assert!(inner_path(&root, None, &rel, "cpu").is_err());
        // Absolute paths ignore our own cgroup and the mount root, like runc.
        assert_eq!(
            inner_path(&sub, Some("/sub/me"), &abs("/x/y"), "memory").unwrap(),
            "/x/y"
        );
        assert_eq!(dir_of(&root, "/x/y"), PathBuf::from("/m/x/y"));
    }
}
