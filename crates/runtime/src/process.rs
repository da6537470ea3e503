//! The container process's identity and limits: rlimits, user and groups, capabilities (all
//! five sets), no_new_privileges, umask, environment, and the final exec.

use std::collections::HashSet;
use std::ffi::CString;

use caps::{CapSet, Capability as Cap, CapsHashSet};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxCapabilities, PosixRlimit, PosixRlimitType, Process};

/// Errors applying the process settings.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("process.rlimits: {name}: {msg}")]
    Rlimit { name: String, msg: String },
    #[error("process.capabilities.{set}: unknown capability {name}")]
    UnknownCap { set: &'static str, name: String },
    #[error("process.capabilities.{set}: cannot set: {msg}")]
    Caps { set: &'static str, msg: String },
    #[error("process.user: cannot switch to uid {uid} gid {gid}: {source}")]
    User {
        uid: u32,
        gid: u32,
        source: nix::Error,
    },
    #[error("process.user.additionalGids: cannot set groups: {0}")]
    Groups(nix::Error),
    #[error("process.noNewPrivileges: {0}")]
    NoNewPrivs(nix::Error),
    #[error("process.oomScoreAdj: cannot write {value}: {source}{hint}")]
    Oom {
        value: i32,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("process.args: {0}")]
    Args(String),
    #[error("exec {path}: {source}")]
    Exec { path: String, source: nix::Error },
}

type Result<T> = std::result::Result<T, Error>;

fn resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Apply process.rlimits. Raising a hard limit needs CAP_SYS_RESOURCE: say so plainly.
pub fn set_rlimits(limits: &[PosixRlimit]) -> Result<()> {
    for l in limits {
        let name = l.typ().to_string();
        if l.soft() > l.hard() {
            return Err(Error::Rlimit {
                name,
                msg: format!("soft limit {} is above hard limit {}", l.soft(), l.hard()),
            });
        }
        let r = resource(l.typ());
        let new = libc::rlimit {
            rlim_cur: l.soft(),
            rlim_max: l.hard(),
        };
        // SAFETY: setrlimit reads a valid, initialised rlimit struct.
        if unsafe { libc::setrlimit(r, &new) } != 0 {
            let err = std::io::Error::last_os_error();
            let mut cur = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes into a valid rlimit struct we own.
            unsafe { libc::getrlimit(r, &mut cur) };
            let msg = if err.raw_os_error() == Some(libc::EPERM) && l.hard() > cur.rlim_max {
                format!(
                    "cannot raise the hard limit to {} (current hard limit {}): that needs \
                     CAP_SYS_RESOURCE, which this runtime does not have on this host; use a \
                     value at or below {}",
                    l.hard(),
                    cur.rlim_max,
                    cur.rlim_max
                )
            } else {
                format!("setrlimit({}, {}): {err}", l.soft(), l.hard())
            };
            return Err(Error::Rlimit { name, msg });
        }
    }
    Ok(())
}

/// Write /proc/PID/oom_score_adj.
pub fn set_oom_score_adj(pid: &str, value: i32) -> Result<()> {
    std::fs::write(format!("/proc/{pid}/oom_score_adj"), value.to_string()).map_err(|source| {
        Error::Oom {
            value,
            hint: if source.raw_os_error() == Some(libc::EACCES) {
                " (lowering it needs CAP_SYS_RESOURCE, which this host does not grant)"
            } else {
                ""
            },
            source,
        }
    })
}

fn cap_set(
    set: &'static str,
    names: Option<&oci_spec::runtime::Capabilities>,
) -> Result<CapsHashSet> {
    let mut out = CapsHashSet::new();
    let all = caps::all();
    for c in names.into_iter().flatten() {
        let name = c.to_string();
        let name = if name.starts_with("CAP_") {
            name
        } else {
            format!("CAP_{name}")
        };
        match name.parse::<Cap>() {
            // Capabilities the running kernel does not know are skipped, as runc does.
            Ok(cap) if all.contains(&cap) => {
                out.insert(cap);
            }
            Ok(_) => {}
            Err(_) => return Err(Error::UnknownCap { set, name }),
        }
    }
    Ok(out)
}

/// The capability sets, parsed once before privileges are dropped.
#[derive(Debug, Default)]
pub struct CapSets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

impl CapSets {
    pub fn new(c: Option<&LinuxCapabilities>) -> Result<CapSets> {
        let Some(c) = c else {
            return Ok(CapSets::default());
        };
        Ok(CapSets {
            bounding: cap_set("bounding", c.bounding().as_ref())?,
            effective: cap_set("effective", c.effective().as_ref())?,
            permitted: cap_set("permitted", c.permitted().as_ref())?,
            inheritable: cap_set("inheritable", c.inheritable().as_ref())?,
            ambient: cap_set("ambient", c.ambient().as_ref())?,
        })
    }

    /// Drop from the bounding set everything not in it (needs CAP_SETPCAP: do it first).
    pub fn drop_bounding(&self) -> Result<()> {
        for c in caps::all() {
            if !self.bounding.contains(&c) {
                caps::drop(None, CapSet::Bounding, c).map_err(|e| Error::Caps {
                    set: "bounding",
                    msg: e.to_string(),
                })?;
            }
        }
        Ok(())
    }

    /// Set effective/permitted/inheritable, then raise the ambient ones (after the uid switch).
    pub fn apply(&self) -> Result<()> {
        let err = |set| {
            move |e: caps::errors::CapsError| Error::Caps {
                set,
                msg: e.to_string(),
            }
        };
        // Effective must stay within permitted: set permitted (which may have to grow the
        // effective set first while we still hold it), then the rest.
        caps::set(
            None,
            CapSet::Effective,
            &self
                .effective
                .intersection(&current_permitted())
                .cloned()
                .collect(),
        )
        .map_err(err("effective"))?;
        caps::set(None, CapSet::Permitted, &self.permitted).map_err(err("permitted"))?;
        caps::set(None, CapSet::Effective, &self.effective).map_err(err("effective"))?;
        caps::set(None, CapSet::Inheritable, &self.inheritable).map_err(err("inheritable"))?;
        caps::clear(None, CapSet::Ambient).map_err(err("ambient"))?;
        for c in &self.ambient {
            // Ambient needs the cap in both permitted and inheritable; skip otherwise as runc does.
            if self.permitted.contains(c) && self.inheritable.contains(c) {
                caps::raise(None, CapSet::Ambient, *c).map_err(err("ambient"))?;
            }
        }
        Ok(())
    }
}

fn current_permitted() -> HashSet<Cap> {
    caps::read(None, CapSet::Permitted).unwrap_or_default()
}

/// Switch to the process user: groups, gid, uid — keeping capabilities across the switch so
/// [`CapSets::apply`] can set them afterwards.
pub fn switch_user(p: &Process, setgroups_allowed: bool) -> Result<()> {
    let u = p.user();
    if setgroups_allowed {
        let gids: Vec<Gid> = u
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&gids).map_err(Error::Groups)?;
    }
    let err = |source| Error::User {
        uid: u.uid(),
        gid: u.gid(),
        source,
    };
    // SAFETY: prctl(PR_SET_KEEPCAPS) takes plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let gid = Gid::from_raw(u.gid());
    nix::unistd::setresgid(gid, gid, gid).map_err(err)?;
    let uid = Uid::from_raw(u.uid());
    nix::unistd::setresuid(uid, uid, uid).map_err(err)?;
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    Ok(())
}

/// Set no_new_privs.
pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1) takes plain integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if r != 0 {
        return Err(Error::NoNewPrivs(nix::Error::last()));
    }
    Ok(())
}

/// The process environment, with HOME filled in from the container's /etc/passwd when unset
/// (as runc does), and PATH defaulted.
pub fn environment(p: &Process) -> Vec<String> {
    let mut env: Vec<String> = p.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = home_of(p.user().uid()).unwrap_or_else(|| "/".to_string());
        env.push(format!("HOME={home}"));
    }
    env
}

fn home_of(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok()? == uid).then(|| f[5].to_string())
    })
}

/// Replace this process with the program (never returns on success).
pub fn exec(
    path: &std::path::Path,
    args: &[String],
    env: &[String],
) -> Result<std::convert::Infallible> {
    let to_c =
        |s: &str| CString::new(s).map_err(|_| Error::Args(format!("{s:?} contains a NUL byte")));
    let cpath =
        crate::rootfs::cstring(path).map_err(|_| Error::Args("path contains NUL".into()))?;
    let cargs = args.iter().map(|a| to_c(a)).collect::<Result<Vec<_>>>()?;
    let cenv = env.iter().map(|a| to_c(a)).collect::<Result<Vec<_>>>()?;
    nix::unistd::execve(&cpath, &cargs, &cenv).map_err(|source| Error::Exec {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_caps_are_named() {
        let c: LinuxCapabilities = serde_json::from_str(r#"{"bounding":["CAP_CHOWN"]}"#).unwrap();
        let s = CapSets::new(Some(&c)).unwrap();
        assert!(s.bounding.contains(&Cap::CAP_CHOWN));
        assert!(s.effective.is_empty());
    }

    #[test]
    fn soft_above_hard_is_refused() {
        let l: PosixRlimit =
            serde_json::from_str(r#"{"type":"RLIMIT_NOFILE","soft":10,"hard":5}"#).unwrap();
        let e = set_rlimits(&[l]).unwrap_err().to_string();
        assert!(e.contains("RLIMIT_NOFILE"), "{e}");
    }
}
