//! The daemon's configuration file (dockerd's `daemon.json`) and the OCI runtimes it knows.
//!
//! Owns: reading the file (`--config-file`, default `/etc/berth/daemon.json` when present),
//! refusing a directive given both as a flag and in the file (dockerd's rule), and the runtime
//! table: berth's built-in runtime (`berth`, the default), `runc` when a `runc` binary is on
//! PATH (as dockerd registers it), and each `--add-runtime NAME=PATH` / `"runtimes"` entry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The built-in runtime's name.
pub const BUILTIN_RUNTIME: &str = "berth";

/// Where the daemon looks for its configuration file when `--config-file` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("invalid configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A directive is both a flag and in the file.
    #[error("unable to configure the berth daemon with file {path}: the following directives are specified both as a flag and in the configuration file: {names}")]
    Conflict { path: PathBuf, names: String },
    /// `--add-runtime` without `NAME=PATH`.
    #[error("invalid --add-runtime {0:?}: use NAME=PATH")]
    BadRuntime(String),
    /// The default runtime is not a known one.
    #[error("default runtime {0:?} is not configured: add it with --add-runtime NAME=PATH or \"runtimes\" in daemon.json")]
    UnknownDefault(String),
}

/// One runtime entry of daemon.json's `"runtimes"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct RuntimeSpec {
    /// The runc-compatible binary (empty for the built-in runtime).
    pub path: String,
    /// Global arguments passed before the verb.
    #[serde(rename = "runtimeArgs")]
    pub runtime_args: Vec<String>,
}

/// One of daemon.json's `default-address-pools`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AddressPool {
    /// The pool, e.g. `10.10.0.0/16`.
    pub base: String,
    /// The prefix length of each network taken from it.
    pub size: u8,
}

/// The keys of daemon.json berth reads (dockerd's names); others are reported and ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FileConfig {
    pub hosts: Option<Vec<String>>,
    #[serde(rename = "data-root")]
    pub data_root: Option<PathBuf>,
    #[serde(rename = "exec-root")]
    pub exec_root: Option<PathBuf>,
    #[serde(rename = "insecure-registries")]
    pub insecure_registries: Option<Vec<String>>,
    #[serde(rename = "log-level")]
    pub log_level: Option<String>,
    #[serde(rename = "live-restore")]
    pub live_restore: Option<bool>,
    pub runtimes: Option<BTreeMap<String, RuntimeSpec>>,
    #[serde(rename = "default-runtime")]
    pub default_runtime: Option<String>,
    #[serde(rename = "log-driver")]
    pub log_driver: Option<String>,
    #[serde(rename = "log-opts")]
    pub log_opts: Option<BTreeMap<String, String>>,
    /// The default bridge's address and prefix.
    pub bip: Option<String>,
    /// Subnet pools for networks.
    #[serde(rename = "default-address-pools")]
    pub default_address_pools: Option<Vec<AddressPool>>,
    /// Everything else.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Reads a daemon.json. `flags` are the dockerd names of the directives given as flags.
pub fn load(path: &Path, flags: &[&str]) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let raw: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let mut both: Vec<String> = flags
        .iter()
        .filter(|f| raw.contains_key(**f))
        .map(|f| {
            let v = raw.get(*f).map(|v| v.to_string()).unwrap_or_default();
            format!("{f}: (from flag: given, from file: {v})")
        })
        .collect();
    both.sort();
    if !both.is_empty() {
        return Err(ConfigError::Conflict {
            path: path.to_path_buf(),
            names: both.join(", "),
        });
    }
    let cfg: FileConfig =
        serde_json::from_value(serde_json::Value::Object(raw)).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    for k in cfg.other.keys() {
        eprintln!(
            "berth daemon: warning: {}: {k:?} is not supported by berth and is ignored",
            path.display()
        );
    }
    Ok(cfg)
}

/// Builds the runtime table from `--add-runtime` values and the file's `"runtimes"`.
pub fn runtimes(
    add: &[String],
    file: Option<&BTreeMap<String, RuntimeSpec>>,
) -> Result<BTreeMap<String, RuntimeSpec>, ConfigError> {
    let mut t = BTreeMap::new();
    t.insert(BUILTIN_RUNTIME.to_string(), RuntimeSpec::default());
    if let Some(p) = find_in_path("runc") {
        t.insert(
            "runc".to_string(),
            RuntimeSpec {
                path: p.to_string_lossy().into_owned(),
                runtime_args: Vec::new(),
            },
        );
    }
    for (k, v) in file.into_iter().flatten() {
        t.insert(k.clone(), v.clone());
    }
    for a in add {
        let (name, path) = a
            .split_once('=')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
            .ok_or_else(|| ConfigError::BadRuntime(a.clone()))?;
        t.insert(
            name.to_string(),
            RuntimeSpec {
                path: path.to_string(),
                runtime_args: Vec::new(),
            },
        );
    }
    Ok(t)
}

/// Checks that the default runtime is in the table.
pub fn check_default(
    default: &str,
    table: &BTreeMap<String, RuntimeSpec>,
) -> Result<(), ConfigError> {
    if table.contains_key(default) {
        Ok(())
    } else {
        Err(ConfigError::UnknownDefault(default.to_string()))
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_known_keys_and_refuses_flag_conflicts() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("daemon.json");
        std::fs::write(
            &p,
            r#"{"data-root":"/x","log-opts":{"max-size":"10m"},"runtimes":{"crun":{"path":"/usr/bin/crun","runtimeArgs":["--debug"]}},"bip":"10.9.0.1/24","default-address-pools":[{"base":"10.10.0.0/16","size":24}],"iptables":false}"#,
        )
        .unwrap();
        let c = load(&p, &[]).unwrap();
        assert_eq!(c.data_root.as_deref(), Some(Path::new("/x")));
        assert_eq!(c.log_opts.unwrap()["max-size"], "10m");
        assert_eq!(c.bip.as_deref(), Some("10.9.0.1/24"));
        assert_eq!(c.default_address_pools.unwrap()[0].size, 24);
        assert!(c.other.contains_key("iptables"));
        let t = runtimes(&["mine=/bin/true".into()], c.runtimes.as_ref()).unwrap();
        assert_eq!(t["crun"].runtime_args, vec!["--debug".to_string()]);
        assert_eq!(t["mine"].path, "/bin/true");
        assert!(t.contains_key(BUILTIN_RUNTIME));
        let e = load(&p, &["data-root"]).unwrap_err().to_string();
        assert!(
            e.contains("specified both as a flag and in the configuration file"),
            "{e}"
        );
        assert!(e.contains("data-root"), "{e}");
    }

    #[test]
    fn bad_input_is_reported() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("daemon.json");
        std::fs::write(&p, "{not json").unwrap();
        assert!(load(&p, &[])
            .unwrap_err()
            .to_string()
            .contains("invalid configuration file"));
        std::fs::write(&p, r#"{"hosts":"notalist"}"#).unwrap();
        assert!(load(&p, &[]).is_err());
        assert!(runtimes(&["noequals".into()], None).is_err());
        let t = runtimes(&[], None).unwrap();
        assert!(check_default("nosuch", &t).is_err());
        assert!(check_default(BUILTIN_RUNTIME, &t).is_ok());
    }
}
