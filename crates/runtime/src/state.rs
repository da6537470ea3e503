//! The state directory: one directory per container under the runtime root
//! (`--root`, default `/run/berth/runtime`), holding `state.json` (written atomically) and, while
//! the container is created but not started, `exec.fifo`.
//!
//! The status is never trusted from the file alone: it is derived from the init process (alive?
//! the same process, by its start time?), the fifo (not yet started) and the freezer (paused),
//! as runc does, so a crash of any process leaves an answer that is still true.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cgroups;

/// Default runtime root, like runc's /run/runc.
pub const DEFAULT_ROOT: &str = "/run/berth/runtime";
/// OCI runtime spec version this runtime implements.
pub const OCI_VERSION: &str = "1.2.0";

const STATE_FILE: &str = "state.json";
/// Name of the fifo that holds a created container before `start`.
pub const EXEC_FIFO: &str = "exec.fifo";

/// Errors of the state directory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container id {0:?} is invalid: use letters, digits, '_', '+', '-' and '.' only (and not only dots)")]
    InvalidId(String),
    #[error("container with id {0:?} already exists")]
    Exists(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "state file {path} is corrupt: {source}; remove the directory to forget the container"
    )]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

type Result<T> = std::result::Result<T, Error>;

/// The status of a container, as the OCI spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// What the runtime remembers of a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// Host pid of the container init.
    pub pid: i32,
    /// Start time of the init (field 22 of /proc/PID/stat), to detect pid reuse.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: cgroups::Manager,
    /// The spec the container was created with (exec and delete need it; the bundle may be gone).
    pub spec: oci_spec::runtime::Spec,
}

/// The OCI state document printed by `state`.
#[derive(Debug, Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'static str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

/// The runtime root directory.
#[derive(Debug, Clone)]
pub struct Root {
    pub dir: PathBuf,
}

/// Check a container id the way runc does.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))
        && !id.chars().all(|c| c == '.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Root { dir: dir.into() }
    }

    /// Directory of one container.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Reserve a container id: creates its directory, failing if it exists.
    pub fn reserve(&self, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        std::fs::create_dir_all(&self.dir).map_err(|source| Error::Io {
            what: "cannot create runtime root",
            path: self.dir.clone(),
            source,
        })?;
        let dir = self.container_dir(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::Exists(id.to_string()))
            }
            Err(source) => Err(Error::Io {
                what: "cannot create state directory",
                path: dir,
                source,
            }),
        }
    }

    /// Load a container's saved state.
    pub fn load(&self, id: &str) -> Result<State> {
        check_id(id)?;
        let path = self.container_dir(id).join(STATE_FILE);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(source) => {
                return Err(Error::Io {
                    what: "cannot read",
                    path,
                    source,
                })
            }
        };
        serde_json::from_slice(&text).map_err(|source| Error::Corrupt { path, source })
    }

    /// Save a container's state atomically (write a temp file, rename). Not fsynced, as runc
    /// does not: the state describes live processes, which a host crash ends anyway.
    pub fn save(&self, st: &State) -> Result<()> {
        let dir = self.container_dir(&st.id);
        let tmp = dir.join(".state.json.tmp");
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { what, path, source }
        };
        let body = serde_json::to_vec(st).map_err(|source| Error::Corrupt {
            path: tmp.clone(),
            source,
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(io("cannot write", &tmp))?;
        f.write_all(&body).map_err(io("cannot write", &tmp))?;
        std::fs::rename(&tmp, dir.join(STATE_FILE)).map_err(io("cannot rename", &tmp))?;
        Ok(())
    }

    /// Forget a container: remove its directory.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.container_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io {
                what: "cannot remove state directory",
                path: dir,
                source,
            }),
        }
    }

    /// Ids of all containers under the root, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    what: "cannot list",
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut ids: Vec<String> = rd
            .flatten()
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

impl State {
    /// Is the saved init process still the one we started (and not a zombie)?
    pub fn init_alive(&self) -> bool {
        if self.pid <= 0 {
            return false;
        }
        match proc_stat(self.pid) {
            Some((state, start)) => state != 'Z' && state != 'X' && start == self.pid_start,
            None => false,
        }
    }

    /// The status, derived from the live system.
    pub fn status(&self, root: &Root) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if root.container_dir(&self.id).join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if self.cgroup.is_frozen().unwrap_or(false) {
            return Status::Paused;
        }
        Status::Running
    }

    /// The OCI state document.
    pub fn oci<'a>(&'a self, status: Status) -> OciState<'a> {
        OciState {
            oci_version: OCI_VERSION,
            id: &self.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            annotations: &self.annotations,
        }
    }
}

/// (state letter, start time in clock ticks) of a process, from /proc/PID/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // rest starts at field 3; starttime is field 22 => index 19 in `rest`.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Current time as RFC 3339 (UTC, nanoseconds), without a date library.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// Format seconds since the epoch (UTC) as RFC 3339.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_like_runc() {
        assert!(check_id("abc-1.2_x+y").is_ok());
        assert!(check_id("").is_err());
        assert!(check_id("..").is_err());
        assert!(check_id("a/b").is_err());
        assert!(check_id("a b").is_err());
    }

    #[test]
    fn rfc3339_formats() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_700_000_000, 5), "2023-11-14T22:13:20.000000005Z");
    }

    #[test]
    fn proc_stat_reads_self() {
        let (s, start) = proc_stat(std::process::id() as i32).unwrap();
        assert!(s == 'R' || s == 'S');
        assert!(start > 0);
    }

    #[test]
    fn reserve_refuses_duplicates() {
        let d = std::env::temp_dir().join(format!("berth-state-test-{}", std::process::id()));
        let root = Root::new(&d);
        root.reserve("c1").unwrap();
        assert!(matches!(root.reserve("c1"), Err(Error::Exists(_))));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
