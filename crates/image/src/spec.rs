//! From an image config plus `docker run` overrides to an OCI runtime spec the runtime can
//! run, with Docker's rules: ENTRYPOINT/CMD merging (an overridden entrypoint drops the
//! image's CMD), environment merging (PATH, HOSTNAME, TERM defaults; run `-e` wins; `-e KEY`
//! without a value removes KEY), the working directory, user/group resolution in the
//! container's own `/etc/passwd` and `/etc/group` (symlinks resolved inside the rootfs), and
//! Docker's default mounts, namespaces, capabilities, masked/read-only paths and device rules.
//!
//! Seccomp is left to the caller (the daemon applies Docker's default profile through the
//! runtime crate); networking sysctls are the network layer's.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::Spec;
use serde_json::json;

use crate::config::ImageConfig;
use crate::layer::fsops;

/// Docker's default `PATH`.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability Linux knows (for `--privileged` and `--cap-add ALL`).
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's masked paths.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What went wrong making the spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Neither the image nor the run gives a command.
    #[error("no command specified")]
    NoCommand,
    /// The working directory is relative.
    #[error("the working directory '{0}' is invalid, it needs to be an absolute path")]
    RelativeWorkdir(String),
    /// The user is not in the container's /etc/passwd.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoSuchUser(String),
    /// The group is not in the container's /etc/group.
    #[error("unable to find group {0}: no matching entries in group file")]
    NoSuchGroup(String),
    /// A uid/gid is out of range.
    #[error("uids and gids must be in range 0-2147483647: {0}")]
    IdRange(String),
    /// Unknown capability name.
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),
    /// Reading files of the rootfs failed.
    #[error("reading {path} in the container's root filesystem: {source}")]
    Io {
        /// The path inside the rootfs.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The generated document was not a valid spec (a bug).
    #[error("internal error building the runtime spec: {0}")]
    Internal(String),
}

/// `docker run` settings that shape the spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// `--entrypoint`: `None` when not given, `Some(vec![])` for `--entrypoint ""` (clears the
    /// image's entrypoint), else the new entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Arguments after the image name (empty when none).
    pub cmd: Vec<String>,
    /// `-e` values, `KEY=value` or `KEY` (removes KEY).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u` (`user`, `uid`, `user:group`, `uid:gid`).
    pub user: Option<String>,
    /// `-h`; Docker uses the short container ID when not given (the caller passes it).
    pub hostname: Option<String>,
    /// `--domainname`.
    pub domainname: Option<String>,
    /// `-t`.
    pub tty: bool,
    /// `--group-add`.
    pub group_add: Vec<String>,
    /// `--cap-add` (with or without `CAP_`, any case, or `ALL`).
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--read-only`.
    pub read_only: bool,
    /// Private cgroup namespace: `None` = Docker's default (private on cgroup v2 hosts, the
    /// host's on v1).
    pub cgroupns_private: Option<bool>,
}

/// The resolved user of the container process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecUser {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups (from /etc/group membership, then `--group-add`).
    pub additional_gids: Vec<u32>,
    /// Home directory from /etc/passwd (`/` when unknown).
    pub home: String,
}

/// The spec and what the daemon needs besides it.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The OCI runtime spec (`root.path` is the rootfs given).
    pub spec: Spec,
    /// The merged entrypoint (Docker's `Config.Entrypoint`).
    pub entrypoint: Vec<String>,
    /// The merged command (Docker's `Config.Cmd`).
    pub cmd: Vec<String>,
    /// The process arguments (entrypoint followed by cmd).
    pub args: Vec<String>,
    /// The process environment.
    pub env: Vec<String>,
    /// Docker's `Config.Env` (image env merged with `-e`, without daemon defaults).
    pub config_env: Vec<String>,
    /// The working directory.
    pub working_dir: String,
    /// The user.
    pub user: ExecUser,
    /// `STOPSIGNAL` (e.g. `SIGTERM`), if the image sets one.
    pub stop_signal: Option<String>,
    /// `EXPOSE`d ports (`80/tcp`).
    pub exposed_ports: Vec<String>,
    /// `VOLUME` paths.
    pub volumes: Vec<String>,
    /// Image labels.
    pub labels: BTreeMap<String, String>,
    /// `HEALTHCHECK`, as in the config.
    pub healthcheck: Option<serde_json::Value>,
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map(|(k, _)| k).unwrap_or(e)
}

/// Docker's ReplaceOrAppendEnvValues: entries of `over` replace same-key entries of `base`
/// (in place) or are appended; an entry without `=` removes its key.
pub fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let mut out: Vec<String> = base.to_vec();
    for o in over {
        let k = env_key(o);
        let pos = out.iter().position(|e| env_key(e) == k);
        if o.contains('=') {
            match pos {
                Some(i) => out[i] = o.clone(),
                None => out.push(o.clone()),
            }
        } else if let Some(i) = pos {
            out.remove(i);
        }
    }
    out
}

fn normalize_cap(c: &str) -> Result<String, SpecError> {
    let up = c.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let name = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if ALL_CAPABILITIES.contains(&name.as_str()) {
        Ok(name)
    } else {
        Err(SpecError::UnknownCapability(c.to_string()))
    }
}

/// The capability set after `--cap-add`/`--cap-drop` (Docker's TweakCapabilities: with
/// `--cap-add ALL` every capability but the dropped ones; with `--cap-drop ALL` only the added
/// ones; otherwise the defaults minus drops plus adds).
pub fn capabilities(
    add: &[String],
    drop: &[String],
    privileged: bool,
) -> Result<Vec<String>, SpecError> {
    let all = || {
        ALL_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    if privileged {
        return Ok(all());
    }
    let add: Vec<String> = add
        .iter()
        .map(|c| normalize_cap(c))
        .collect::<Result<_, _>>()?;
    let drop: Vec<String> = drop
        .iter()
        .map(|c| normalize_cap(c))
        .collect::<Result<_, _>>()?;
    let mut caps: Vec<String> = if add.iter().any(|c| c == "ALL") {
        all().into_iter().filter(|c| !drop.contains(c)).collect()
    } else if drop.iter().any(|c| c == "ALL") {
        add
    } else {
        let mut v: Vec<String> = DEFAULT_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drop.contains(c))
            .collect();
        v.extend(add);
        v
    };
    let mut seen = std::collections::HashSet::new();
    caps.retain(|c| seen.insert(c.clone()));
    Ok(caps)
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(data: &str) -> Vec<PasswdEntry> {
    data.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

fn parse_group(data: &str) -> Vec<GroupEntry> {
    data.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn parse_id(s: &str) -> Option<Result<u32, SpecError>> {
    let n: i64 = s.parse().ok()?;
    if !(0..=i32::MAX as i64).contains(&n) {
        return Some(Err(SpecError::IdRange(s.to_string())));
    }
    Some(Ok(n as u32))
}

fn read_rootfs_file(rootfs: &Path, rel: &str) -> Result<String, SpecError> {
    match fsops::read_in_root(rootfs, rel) {
        Ok(Some(v)) => Ok(String::from_utf8_lossy(&v).into_owned()),
        Ok(None) => Ok(String::new()),
        Err(source) => Err(SpecError::Io {
            path: format!("/{rel}"),
            source,
        }),
    }
}

/// Resolves `-u` (`""`, `name`, `uid`, `name:group`, `uid:gid`...) against the rootfs'
/// `/etc/passwd` and `/etc/group` with runc/Docker's rules, then appends `--group-add` groups.
pub fn resolve_user(
    rootfs: &Path,
    spec: &str,
    group_add: &[String],
) -> Result<ExecUser, SpecError> {
    let passwd = parse_passwd(&read_rootfs_file(rootfs, "etc/passwd")?);
    let groups = parse_group(&read_rootfs_file(rootfs, "etc/group")?);
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, g),
        None => (spec, ""),
    };
    let mut u = ExecUser {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: "/".into(),
    };
    let uid_num = parse_id(user_arg).transpose()?;
    let matched = passwd.iter().find(|p| {
        if user_arg.is_empty() {
            p.uid == 0
        } else if let Some(n) = uid_num {
            p.uid == n
        } else {
            p.name == user_arg
        }
    });
    let mut matched_name = None;
    if let Some(p) = matched {
        u.uid = p.uid;
        u.gid = p.gid;
        u.home = if p.home.is_empty() {
            "/".into()
        } else {
            p.home.clone()
        };
        matched_name = Some(p.name.clone());
    } else if !user_arg.is_empty() {
        match uid_num {
            Some(n) => u.uid = n,
            None => return Err(SpecError::NoSuchUser(user_arg.to_string())),
        }
    }
    if !group_arg.is_empty() {
        let gid_num = parse_id(group_arg).transpose()?;
        let g = groups.iter().find(|g| match gid_num {
            Some(n) => g.gid == n,
            None => g.name == group_arg,
        });
        u.gid = match (g, gid_num) {
            (Some(g), _) => g.gid,
            (None, Some(n)) => n,
            (None, None) => return Err(SpecError::NoSuchGroup(group_arg.to_string())),
        };
    } else if let Some(name) = &matched_name {
        for g in &groups {
            if g.members.iter().any(|m| m == name) && !u.additional_gids.contains(&g.gid) {
                u.additional_gids.push(g.gid);
            }
        }
    }
    for ga in group_add {
        let gid = match parse_id(ga).transpose()? {
            Some(n) => n,
            None => groups
                .iter()
                .find(|g| &g.name == ga)
                .map(|g| g.gid)
                .ok_or_else(|| SpecError::NoSuchGroup(ga.clone()))?,
        };
        if !u.additional_gids.contains(&gid) {
            u.additional_gids.push(gid);
        }
    }
    Ok(u)
}

fn cgroup_v2_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Builds the runtime spec for a container of the image whose config is `config`, with
/// `rootfs` as `root.path` (user names are resolved in it).
pub fn build_spec(
    config: &ImageConfig,
    opts: &RunOptions,
    rootfs: &Path,
) -> Result<RunSpec, SpecError> {
    let rc = config.run_config();

    // ENTRYPOINT / CMD (Docker's merge of user and image config).
    let (entrypoint, cmd) = match &opts.entrypoint {
        Some(ep) if !ep.is_empty() => (ep.clone(), opts.cmd.clone()),
        Some(_) => (
            Vec::new(),
            if opts.cmd.is_empty() {
                rc.cmd.clone().unwrap_or_default()
            } else {
                opts.cmd.clone()
            },
        ),
        None => (
            rc.entrypoint.clone().unwrap_or_default(),
            if opts.cmd.is_empty() {
                rc.cmd.clone().unwrap_or_default()
            } else {
                opts.cmd.clone()
            },
        ),
    };
    let args: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }

    // Working directory.
    let working_dir = opts
        .workdir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| rc.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    if !working_dir.starts_with('/') {
        return Err(SpecError::RelativeWorkdir(working_dir));
    }

    // User.
    let user_spec = opts
        .user
        .clone()
        .or_else(|| rc.user.clone())
        .unwrap_or_default();
    let user = resolve_user(rootfs, &user_spec, &opts.group_add)?;

    // Environment: daemon defaults, then the container config's env (image + -e).
    let config_env = merge_env(&rc.env.clone().unwrap_or_default(), &opts.env);
    let mut base = vec![format!("PATH={DEFAULT_PATH}")];
    if let Some(h) = &opts.hostname {
        base.push(format!("HOSTNAME={h}"));
    }
    if opts.tty {
        base.push("TERM=xterm".into());
    }
    let mut env = merge_env(&base, &config_env);
    if !env.iter().any(|e| env_key(e) == "HOME") {
        env.push(format!("HOME={}", user.home));
    }

    let caps = capabilities(&opts.cap_add, &opts.cap_drop, opts.privileged)?;

    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", if opts.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", if opts.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}),
    ];
    mounts.shrink_to_fit();

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "network"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if opts.cgroupns_private.unwrap_or_else(cgroup_v2_host) {
        namespaces.push(json!({"type": "cgroup"}));
    }

    let devices = if opts.privileged {
        json!([{"allow": true, "access": "rwm"}])
    } else {
        json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "access": "m"},
            {"allow": true, "type": "b", "access": "m"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}
        ])
    };

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": {"devices": devices},
    });
    if !opts.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }

    let mut process = json!({
        "terminal": opts.tty,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": args,
        "env": env,
        "cwd": working_dir,
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
        },
        "noNewPrivileges": false,
    });
    if !user.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(user.additional_gids);
    }

    let mut doc = json!({
        "ociVersion": "1.0.2-dev",
        "root": {"path": rootfs.display().to_string(), "readonly": opts.read_only},
        "process": process,
        "mounts": mounts,
        "linux": linux,
    });
    if let Some(h) = &opts.hostname {
        doc["hostname"] = json!(h);
    }
    if let Some(d) = &opts.domainname {
        doc["domainname"] = json!(d);
    }
    let spec: Spec = serde_json::from_value(doc).map_err(|e| SpecError::Internal(e.to_string()))?;

    let mut exposed_ports: Vec<String> = rc
        .exposed_ports
        .clone()
        .unwrap_or_default()
        .into_keys()
        .collect();
    exposed_ports.sort();
    let volumes: Vec<String> = rc.volumes.clone().unwrap_or_default().into_keys().collect();
    Ok(RunSpec {
        spec,
        entrypoint,
        cmd,
        args,
        env,
        config_env,
        working_dir,
        user,
        stop_signal: rc.stop_signal.clone().filter(|s| !s.is_empty()),
        exposed_ports,
        volumes,
        labels: rc.labels.clone().unwrap_or_default(),
        healthcheck: rc.healthcheck.clone(),
    })
}

/// Creates the working directory inside the rootfs if missing (Docker does, owned by root,
/// mode 0755), resolving symlinks inside the rootfs.
pub fn ensure_workdir(rootfs: &Path, workdir: &str) -> Result<(), SpecError> {
    fsops::mkdir_all_in_root(rootfs, workdir).map_err(|source| SpecError::Io {
        path: workdir.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn cfg(v: serde_json::Value) -> ImageConfig {
        serde_json::from_value(json!({"architecture": "amd64", "os": "linux", "config": v,
            "rootfs": {"type": "layers", "diff_ids": []}}))
        .unwrap()
    }

    fn rootfs() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("etc")).unwrap();
        fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            t.path().join("etc/group"),
            "root:x:0:\nbin:x:1:root,daemon\nwheel:x:10:root\nstaff:x:50:app\napp:x:1000:\naudio:x:29:\n",
        )
        .unwrap();
        t
    }

    fn run(c: &ImageConfig, o: RunOptions, root: &Path) -> RunSpec {
        build_spec(c, &o, root).unwrap()
    }

    #[test]
    fn entrypoint_cmd_rules() {
        let t = rootfs();
        let c = cfg(json!({"Entrypoint": ["/ep"], "Cmd": ["a", "b"]}));
        let o = RunOptions::default();
        assert_eq!(run(&c, o.clone(), t.path()).args, vec!["/ep", "a", "b"]);
        // Args replace CMD only.
        let r = run(
            &c,
            RunOptions {
                cmd: vec!["x".into()],
                ..o.clone()
            },
            t.path(),
        );
        assert_eq!(r.args, vec!["/ep", "x"]);
        // A new entrypoint drops the image's CMD.
        let r = run(
            &c,
            RunOptions {
                entrypoint: Some(vec!["/new".into()]),
                ..o.clone()
            },
            t.path(),
        );
        assert_eq!(r.args, vec!["/new"]);
        assert!(r.cmd.is_empty());
        let r = run(
            &c,
            RunOptions {
                entrypoint: Some(vec!["/new".into()]),
                cmd: vec!["y".into()],
                ..o.clone()
            },
            t.path(),
        );
        assert_eq!(r.args, vec!["/new", "y"]);
        // --entrypoint "" clears the entrypoint and keeps the image CMD.
        let r = run(
            &c,
            RunOptions {
                entrypoint: Some(vec![]),
                ..o.clone()
            },
            t.path(),
        );
        assert_eq!(r.args, vec!["a", "b"]);
        // Nothing at all.
        let empty = cfg(json!({}));
        assert!(matches!(
            build_spec(&empty, &o, t.path()),
            Err(SpecError::NoCommand)
        ));
        // A string CMD (Docker's StrSlice) works.
        let s = cfg(json!({"Cmd": "sh"}));
        assert_eq!(run(&s, o, t.path()).args, vec!["sh"]);
    }

    #[test]
    fn env_rules() {
        let t = rootfs();
        let c = cfg(json!({"Cmd": ["sh"], "Env": ["PATH=/custom", "A=1", "B=2"]}));
        let r = run(
            &c,
            RunOptions {
                env: vec!["A=override".into(), "B".into(), "C=3".into()],
                hostname: Some("abc".into()),
                tty: true,
                ..Default::default()
            },
            t.path(),
        );
        assert_eq!(
            r.env,
            vec![
                "PATH=/custom",
                "HOSTNAME=abc",
                "TERM=xterm",
                "A=override",
                "C=3",
                "HOME=/root"
            ]
        );
        assert_eq!(r.config_env, vec!["PATH=/custom", "A=override", "C=3"]);
        let c = cfg(json!({"Cmd": ["sh"]}));
        let r = run(
            &c,
            RunOptions {
                user: Some("app".into()),
                ..Default::default()
            },
            t.path(),
        );
        assert_eq!(
            r.env,
            vec![format!("PATH={DEFAULT_PATH}"), "HOME=/home/app".into()]
        );
    }

    #[test]
    fn users_and_groups() {
        let t = rootfs();
        let u = |s: &str| resolve_user(t.path(), s, &[]);
        let root = u("").unwrap();
        assert_eq!(
            (root.uid, root.gid, root.additional_gids.clone()),
            (0, 0, vec![1, 10])
        );
        let app = u("app").unwrap();
        assert_eq!(
            (
                app.uid,
                app.gid,
                app.additional_gids.clone(),
                app.home.as_str()
            ),
            (1000, 1000, vec![50], "/home/app")
        );
        assert_eq!(u("1000").unwrap().additional_gids, vec![50]);
        let x = u("1000:staff").unwrap();
        assert_eq!((x.uid, x.gid, x.additional_gids.len()), (1000, 50, 0));
        let x = u("4242:4343").unwrap();
        assert_eq!((x.uid, x.gid, x.home.as_str()), (4242, 4343, "/"));
        let x = u("daemon:0").unwrap();
        assert_eq!((x.uid, x.gid), (1, 0));
        assert!(matches!(u("ghost"), Err(SpecError::NoSuchUser(_))));
        assert!(matches!(u("app:ghosts"), Err(SpecError::NoSuchGroup(_))));
        assert!(matches!(u("-1"), Err(SpecError::IdRange(_))));
        let x = resolve_user(t.path(), "app", &["audio".into(), "4000".into()]).unwrap();
        assert_eq!(x.additional_gids, vec![50, 29, 4000]);
        // No passwd at all: numeric users still work, names do not.
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(resolve_user(empty.path(), "5", &[]).unwrap().uid, 5);
        assert!(resolve_user(empty.path(), "app", &[]).is_err());
    }

    #[test]
    fn passwd_symlink_stays_in_rootfs() {
        // /etc/passwd is an absolute symlink: it must be read from the rootfs, not the host.
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("etc")).unwrap();
        fs::create_dir_all(t.path().join("real")).unwrap();
        fs::write(t.path().join("real/passwd"), "zed:x:77:77::/z:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/real/passwd", t.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink(
            "../../../../../../nonexistent/group",
            t.path().join("etc/group"),
        )
        .unwrap();
        let u = resolve_user(t.path(), "zed", &[]).unwrap();
        assert_eq!(u.uid, 77);
        // The host's root user is not visible.
        assert!(resolve_user(t.path(), "root", &[]).is_err());
    }

    #[test]
    fn defaults_and_metadata() {
        let t = rootfs();
        let c = cfg(json!({"Cmd": ["sh"], "WorkingDir": "/srv", "User": "app",
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "Volumes": {"/data": {}},
            "StopSignal": "SIGQUIT", "Labels": {"k": "v"}}));
        let r = run(
            &c,
            RunOptions {
                hostname: Some("h1".into()),
                ..Default::default()
            },
            t.path(),
        );
        let s = &r.spec;
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.cwd().to_str(), Some("/srv"));
        assert_eq!(p.user().uid(), 1000);
        assert_eq!(p.user().additional_gids().as_deref(), Some(&[50u32][..]));
        let caps = p
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .as_ref()
            .unwrap();
        assert_eq!(caps.len(), 14);
        assert_eq!(s.hostname().as_deref(), Some("h1"));
        let l = s.linux().as_ref().unwrap();
        assert_eq!(l.masked_paths().as_ref().unwrap().len(), MASKED_PATHS.len());
        assert_eq!(l.readonly_paths().as_ref().unwrap().len(), 5);
        let ns: Vec<String> = l
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| format!("{:?}", n.typ()))
            .collect();
        assert_eq!(ns.len(), if cgroup_v2_host() { 6 } else { 5 });
        assert_eq!(s.mounts().as_ref().unwrap().len(), 7);
        assert_eq!(r.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(r.exposed_ports, vec!["53/udp", "80/tcp"]);
        assert_eq!(r.volumes, vec!["/data"]);
        assert_eq!(r.labels["k"], "v");
        // Overrides.
        let r = run(
            &c,
            RunOptions {
                workdir: Some("/w".into()),
                user: Some("0".into()),
                ..Default::default()
            },
            t.path(),
        );
        assert_eq!(r.working_dir, "/w");
        assert_eq!(r.user.uid, 0);
        assert!(matches!(
            build_spec(
                &c,
                &RunOptions {
                    workdir: Some("rel".into()),
                    ..Default::default()
                },
                t.path()
            ),
            Err(SpecError::RelativeWorkdir(_))
        ));
        // The spec serialises to a config.json the runtime can read back.
        let json = serde_json::to_string(&r.spec).unwrap();
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r.spec);
        ensure_workdir(t.path(), "/srv/app").unwrap();
        assert!(t.path().join("srv/app").is_dir());
    }

    #[test]
    fn capability_tweaks() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let c = capabilities(
            &s(&["sys_admin", "CAP_NET_ADMIN"]),
            &s(&["chown", "Cap_Kill"]),
            false,
        )
        .unwrap();
        assert!(c.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()));
        assert!(!c.contains(&"CAP_KILL".to_string()));
        assert_eq!(
            capabilities(&s(&["NET_RAW"]), &s(&["ALL"]), false).unwrap(),
            vec!["CAP_NET_RAW"]
        );
        assert_eq!(capabilities(&s(&["ALL"]), &[], false).unwrap().len(), 41);
        assert!(capabilities(&s(&["bogus"]), &[], false).is_err());
        assert_eq!(capabilities(&[], &[], true).unwrap().len(), 41);
    }
}
