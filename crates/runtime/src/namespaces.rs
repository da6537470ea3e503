//! Linux namespaces: which to create, which to join by path, and joining them (setns) in the
//! order the kernel requires (the user namespace first, so the others are joined with its
//! privileges).

use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

/// Errors creating or joining namespaces.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open namespace {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot join {kind} namespace {path}: {source}")]
    Join {
        kind: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("the {0} namespace is not supported by this runtime")]
    Unsupported(&'static str),
}

/// Short kernel name of a namespace type (as in /proc/PID/ns/).
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// The clone flag of a namespace type.
pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The namespace plan of a container.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Namespaces to create (clone flags), excluding the cgroup namespace, which the init
    /// unshares itself after it has been placed in its cgroup.
    pub clone_flags: CloneFlags,
    /// Create a new cgroup namespace after joining the cgroup.
    pub new_cgroup: bool,
    /// Namespaces to join, user namespace first.
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
}

impl Plan {
    /// Build the plan from linux.namespaces.
    pub fn new(list: &[LinuxNamespace]) -> Result<Plan, Error> {
        let mut p = Plan {
            clone_flags: CloneFlags::empty(),
            new_cgroup: false,
            join: Vec::new(),
        };
        for ns in list {
            let t = ns.typ();
            if t == LinuxNamespaceType::Time {
                return Err(Error::Unsupported("time"));
            }
            match ns.path() {
                Some(path) => p.join.push((t, path.clone())),
                None if t == LinuxNamespaceType::Cgroup => p.new_cgroup = true,
                None => p.clone_flags |= flag(t),
            }
        }
        p.join
            .sort_by_key(|(t, _)| if *t == LinuxNamespaceType::User { 0 } else { 1 });
        Ok(p)
    }

    /// Is this namespace type part of the container (new or joined)?
    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        self.clone_flags.contains(flag(t))
            || (t == LinuxNamespaceType::Cgroup && self.new_cgroup)
            || self.join.iter().any(|(j, _)| *j == t)
    }

    /// Does the container get a user namespace of its own (we write its id maps)?
    pub fn new_user(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWUSER)
    }
}

/// Join the given namespaces (by path), in order.
pub fn join_all(list: &[(LinuxNamespaceType, PathBuf)]) -> Result<(), Error> {
    // Open all first: after joining the mount namespace, host paths may no longer resolve.
    let mut files = Vec::with_capacity(list.len());
    for (t, path) in list {
        let f = std::fs::File::open(path).map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        files.push((*t, path, f));
    }
    for (t, path, f) in files {
        nix::sched::setns(f.as_fd(), flag(t)).map_err(|source| Error::Join {
            kind: proc_name(t),
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Namespaces of a running process that differ from ours, user namespace first: what an
/// `exec` must join.
pub fn of_process(pid: i32) -> Vec<(LinuxNamespaceType, PathBuf)> {
    use LinuxNamespaceType::*;
    let mut out = Vec::new();
    for t in [User, Ipc, Uts, Network, Pid, Cgroup, Mount] {
        let theirs = PathBuf::from(format!("/proc/{pid}/ns/{}", proc_name(t)));
        let ours = PathBuf::from(format!("/proc/self/ns/{}", proc_name(t)));
        let differs = match (std::fs::metadata(&theirs), std::fs::metadata(&ours)) {
            (Ok(a), Ok(b)) => {
                use std::os::unix::fs::MetadataExt;
                a.ino() != b.ino() || a.dev() != b.dev()
            }
            _ => false,
        };
        if differs {
            out.push((t, theirs));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_splits_new_and_joined() {
        let list: Vec<LinuxNamespace> = serde_json::from_str(
            r#"[{"type":"pid"},{"type":"network","path":"/proc/1/ns/net"},{"type":"cgroup"},{"type":"user","path":"/proc/1/ns/user"}]"#,
        )
        .unwrap();
        let p = Plan::new(&list).unwrap();
        assert!(p.clone_flags.contains(CloneFlags::CLONE_NEWPID));
        assert!(!p.clone_flags.contains(CloneFlags::CLONE_NEWCGROUP));
        assert!(p.new_cgroup);
        assert_eq!(p.join[0].0, LinuxNamespaceType::User);
        assert!(p.has(LinuxNamespaceType::Network));
        assert!(!p.has(LinuxNamespaceType::Uts));
    }

    #[test]
    fn own_process_has_no_differing_namespaces() {
        assert!(of_process(std::process::id() as i32).is_empty());
    }
}

/// Bring up `lo` in a new network namespace (runc does; programs expect 127.0.0.1 to work).
pub fn loopback_up() -> Result<(), Error> {
    let err = |source| Error::Join {
        kind: "net",
        path: PathBuf::from("lo"),
        source,
    };
    // SAFETY: a plain datagram socket used only for interface ioctls; closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(err(nix::Error::last()));
    }
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo\0".iter().enumerate() {
        ifr.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
    let r = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            -1
        } else {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr)
        }
    };
    let e = nix::Error::last();
    // SAFETY: closing the socket we opened.
    unsafe { libc::close(fd) };
    if r < 0 {
        return Err(err(e));
    }
    Ok(())
}
