//! The bundle: loading `config.json`, resolving the rootfs, and checking the parts of the
//! spec the kernel would otherwise reject with an unhelpful errno.
//!
//! Every error names the field (as a JSON path, e.g. `linux.namespaces[2].type`) so that a
//! user can find the mistake in their config.json.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

/// Errors from loading or checking a bundle.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}; is --bundle pointing at an OCI bundle directory?")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid config at `{field}`: {msg}")]
    Parse {
        path: PathBuf,
        field: String,
        msg: String,
    },
    #[error("config.json: `{field}`: {msg}")]
    Invalid { field: String, msg: String },
    #[error("rootfs {path} (root.path in config.json) does not exist or is not a directory")]
    MissingRootfs { path: PathBuf },
}

fn invalid(field: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        msg: msg.into(),
    }
}

/// A loaded, checked bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    /// The parsed config.json.
    pub spec: Spec,
}

/// Parse a config.json document, naming the failing field on error. Capabilities this
/// runtime does not know are dropped with a warning on stderr, as runc does (specs written
/// for newer kernels must still run).
pub fn parse(text: &str, path: &Path) -> Result<Spec, Error> {
    parse_as(text, path, Some("process"))
}

/// Parse an OCI process object (`exec --process FILE`), like [`parse`].
pub fn parse_process(text: &str, path: &Path) -> Result<oci_spec::runtime::Process, Error> {
    parse_as(text, path, None)
}

fn parse_as<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
    process_key: Option<&str>,
) -> Result<T, Error> {
    let perr = |field: String, msg: String| Error::Parse {
        path: path.to_path_buf(),
        field,
        msg,
    };
    let mut value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        perr(
            format!("line {} column {}", e.line(), e.column()),
            e.to_string(),
        )
    })?;
    let process = match process_key {
        Some(k) => value.get_mut(k),
        None => Some(&mut value),
    };
    if let Some(caps) = process.and_then(|p| p.get_mut("capabilities")) {
        drop_unknown_caps(caps);
    }
    serde_path_to_error::deserialize(value)
        .map_err(|e| perr(e.path().to_string(), e.inner().to_string()))
}

fn drop_unknown_caps(caps: &mut serde_json::Value) {
    let Some(sets) = caps.as_object_mut() else {
        return;
    };
    for (set, list) in sets.iter_mut() {
        if let Some(items) = list.as_array_mut() {
            items.retain(|c| {
                let known =
                    serde_json::from_value::<oci_spec::runtime::Capability>(c.clone()).is_ok();
                if !known {
                    eprintln!(
                        "berth-runtime: warning: process.capabilities.{set}: ignoring unknown capability {c}"
                    );
                }
                known
            });
        }
    }
}

/// Load `<dir>/config.json`, resolve and check the rootfs, and validate the spec.
pub fn load(dir: &Path) -> Result<Bundle, Error> {
    let dir = std::path::absolute(dir).map_err(|source| Error::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    let spec = parse(&text, &path)?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing: the bundle must name its root filesystem"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    if !rootfs.is_dir() {
        return Err(Error::MissingRootfs { path: rootfs });
    }
    validate(&spec)?;
    Ok(Bundle { dir, rootfs, spec })
}

/// Check what serde cannot: namespace combinations, id mappings, process fields.
pub fn validate(spec: &Spec) -> Result<(), Error> {
    let process = spec.process().as_ref();
    if let Some(p) = process {
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(invalid("process.args", "must name the program to run"));
        }
        if !p.cwd().is_absolute() {
            return Err(invalid(
                "process.cwd",
                format!("{:?} must be an absolute path", p.cwd()),
            ));
        }
    }
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(());
    };
    let mut seen = HashSet::new();
    let mut has_user_ns = false;
    let mut new_user_ns = false;
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}]"),
                format!("namespace type {} is listed twice", ns.typ()),
            ));
        }
        if ns.typ() == LinuxNamespaceType::User {
            has_user_ns = true;
            new_user_ns = ns.path().is_none();
        }
        if let Some(p) = ns.path() {
            if !p.exists() {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    format!("{} does not exist", p.display()),
                ));
            }
        }
    }
    let uid = linux.uid_mappings().as_deref().unwrap_or_default();
    let gid = linux.gid_mappings().as_deref().unwrap_or_default();
    if new_user_ns {
        if uid.is_empty() {
            return Err(invalid(
                "linux.uidMappings",
                "a new user namespace needs uid mappings",
            ));
        }
        if gid.is_empty() {
            return Err(invalid(
                "linux.gidMappings",
                "a new user namespace needs gid mappings",
            ));
        }
    } else if !has_user_ns && (!uid.is_empty() || !gid.is_empty()) {
        return Err(invalid(
            "linux.uidMappings",
            "id mappings given but no user namespace is requested in linux.namespaces",
        ));
    }
    check_mappings("linux.uidMappings", uid)?;
    check_mappings("linux.gidMappings", gid)?;
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            if key.is_empty() || key.contains("..") || key.starts_with('/') || key.starts_with('.')
            {
                return Err(invalid(
                    format!("linux.sysctl.{key}"),
                    "not a valid sysctl name",
                ));
            }
            check_sysctl_namespace(key, &seen)?;
        }
    }
    Ok(())
}

/// A sysctl is only allowed when the namespace it belongs to is the container's own (as runc
/// checks): otherwise writing it would change the host.
fn check_sysctl_namespace(key: &str, have: &HashSet<LinuxNamespaceType>) -> Result<(), Error> {
    use LinuxNamespaceType as T;
    let ipc = key.starts_with("fs.mqueue.")
        || matches!(
            key,
            "kernel.msgmax"
                | "kernel.msgmnb"
                | "kernel.msgmni"
                | "kernel.sem"
                | "kernel.shmall"
                | "kernel.shmmax"
                | "kernel.shmmni"
                | "kernel.shm_rmid_forced"
        );
    let needed = if ipc {
        T::Ipc
    } else if key.starts_with("net.") {
        T::Network
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        T::Uts
    } else {
        return Err(invalid(
            format!("linux.sysctl.{key}"),
            "this sysctl is not namespaced: setting it would change the host",
        ));
    };
    if !have.contains(&needed) {
        return Err(invalid(
            format!("linux.sysctl.{key}"),
            format!(
                "sysctl needs the container's own {needed} namespace (add it to linux.namespaces)"
            ),
        ));
    }
    Ok(())
}

fn check_mappings(field: &str, maps: &[LinuxIdMapping]) -> Result<(), Error> {
    if maps.len() > 340 {
        return Err(invalid(field, "the kernel allows at most 340 mappings"));
    }
    for (i, m) in maps.iter().enumerate() {
        if m.size() == 0 {
            return Err(invalid(format!("{field}[{i}].size"), "must be at least 1"));
        }
        for (j, o) in maps.iter().enumerate().skip(i + 1) {
            let overlap = |a: u32, asz: u32, b: u32, bsz: u32| {
                (a as u64) < b as u64 + bsz as u64 && (b as u64) < a as u64 + asz as u64
            };
            if overlap(m.container_id(), m.size(), o.container_id(), o.size()) {
                return Err(invalid(
                    format!("{field}[{j}]"),
                    format!("containerID range overlaps {field}[{i}]"),
                ));
            }
            if overlap(m.host_id(), m.size(), o.host_id(), o.size()) {
                return Err(invalid(
                    format!("{field}[{j}]"),
                    format!("hostID range overlaps {field}[{i}]"),
                ));
            }
        }
    }
    Ok(())
}

/// The id mapping text the kernel takes in /proc/PID/{u,g}id_map.
pub fn mapping_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<Spec, Error> {
        parse(json, Path::new("config.json"))
    }

    #[test]
    fn unknown_namespace_names_the_field() {
        let e = spec(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("linux.namespaces[1].type"), "{e}");
    }

    #[test]
    fn malformed_json_is_refused() {
        let e = spec("{\"ociVersion\": ").unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
    }

    #[test]
    fn user_namespace_needs_mappings() {
        let s = spec(r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"user"}]}}"#).unwrap();
        let e = validate(&s).unwrap_err().to_string();
        assert!(e.contains("uidMappings"), "{e}");
    }

    #[test]
    fn overlapping_mappings_are_refused() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"user"}],
            "uidMappings":[{"containerID":0,"hostID":1000,"size":10},{"containerID":5,"hostID":5000,"size":10}],
            "gidMappings":[{"containerID":0,"hostID":1000,"size":10}]}}"#,
        )
        .unwrap();
        let e = validate(&s).unwrap_err().to_string();
        assert!(e.contains("overlaps"), "{e}");
    }

    #[test]
    fn duplicate_namespace_is_refused() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}}"#,
        )
        .unwrap();
        assert!(validate(&s).is_err());
    }

    #[test]
    fn mapping_text_format() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","linux":{"uidMappings":[{"containerID":0,"hostID":100000,"size":65536}]}}"#,
        )
        .unwrap();
        let m = s.linux().as_ref().unwrap().uid_mappings().as_ref().unwrap();
        assert_eq!(mapping_text(m), "0 100000 65536\n");
    }
}
