//! Registry credentials kept in Docker-style config files (`{"auths": {"<registry>":
//! {"auth": "<base64 user:password>"}}}`): berth's own file (read and written by `login` /
//! `logout`) and, read-only, Docker's `~/.docker/config.json`, so that a `docker login` done
//! on the machine also works for berth. Registry names are normalised the way Docker does
//! (`https://index.docker.io/v1/`, `index.docker.io` and `docker.io` are one registry;
//! `https://host:5000/v2/` is `host:5000`). Files are written atomically with mode 0600.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// The key Docker uses for Docker Hub in `auths`.
pub const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// What went wrong reading or writing a credentials file.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The file exists but could not be read.
    #[error("reading credentials file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("credentials file {path} is malformed: {detail} (fix or remove it)")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// An entry's `auth` field is not base64 of `user:password`.
    #[error("credentials for {registry} in {path} are malformed: {detail} (log in again)")]
    BadEntry {
        /// The file.
        path: PathBuf,
        /// The registry key.
        registry: String,
        /// What is wrong.
        detail: String,
    },
    /// The file could not be written.
    #[error("writing credentials file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// A username and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl Credentials {
    /// Builds credentials.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The value of an HTTP `Authorization: Basic …` header for these credentials.
    pub fn basic_header(&self) -> String {
        format!("Basic {}", self.encoded())
    }

    /// base64 of `user:password`, as stored in `auths.<registry>.auth`.
    pub fn encoded(&self) -> String {
        B64.encode(format!("{}:{}", self.username, self.password))
    }

    /// Decodes an `auth` field.
    pub fn decode(auth: &str) -> Result<Credentials, String> {
        let raw = B64
            .decode(auth.trim())
            .map_err(|e| format!("auth is not base64: {e}"))?;
        let s = String::from_utf8(raw).map_err(|_| "auth is not UTF-8".to_string())?;
        let (u, p) = s
            .split_once(':')
            .ok_or_else(|| "auth is not user:password".to_string())?;
        Ok(Credentials::new(u, p))
    }
}

impl fmt::Debug for Credentials {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Where credentials are read from and written to.
#[derive(Debug, Clone, Default)]
pub struct CredentialStore {
    /// Files searched in order; the first entry for a registry wins.
    read_paths: Vec<PathBuf>,
    /// The file `login`/`logout` change (also the first read path). None: read-only store.
    write_path: Option<PathBuf>,
}

impl CredentialStore {
    /// A store with no files at all (anonymous access only, `login` cannot persist).
    pub fn none() -> CredentialStore {
        CredentialStore::default()
    }

    /// A store that reads and writes `path`.
    pub fn new(path: impl Into<PathBuf>) -> CredentialStore {
        let p = path.into();
        CredentialStore {
            read_paths: vec![p.clone()],
            write_path: Some(p),
        }
    }

    /// Adds a read-only file searched after the ones already configured.
    pub fn with_fallback(mut self, path: impl Into<PathBuf>) -> CredentialStore {
        self.read_paths.push(path.into());
        self
    }

    /// berth's usual setup: writes `$BERTH_CONFIG/config.json` (else `~/.berth/config.json`),
    /// and also reads Docker's `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`).
    pub fn default_paths() -> CredentialStore {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/root".into());
        let dir = |var: &str, default: &str| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(default))
        };
        CredentialStore::new(dir("BERTH_CONFIG", ".berth").join("config.json"))
            .with_fallback(dir("DOCKER_CONFIG", ".docker").join("config.json"))
    }

    /// The file `login` writes, if any.
    pub fn write_path(&self) -> Option<&Path> {
        self.write_path.as_deref()
    }

    /// The files searched, in order.
    pub fn read_paths(&self) -> &[PathBuf] {
        &self.read_paths
    }

    /// The credentials stored for `registry` (any spelling: `docker.io`,
    /// `https://index.docker.io/v1/`, `localhost:5000`), if any.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>, CredentialError> {
        let want = normalize_registry(registry);
        for path in &self.read_paths {
            let Some(doc) = read_json(path)? else {
                continue;
            };
            let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
                continue;
            };
            for (key, entry) in auths {
                if normalize_registry(key) != want {
                    continue;
                }
                let bad = |detail: String| CredentialError::BadEntry {
                    path: path.clone(),
                    registry: key.clone(),
                    detail,
                };
                if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
                    if !auth.is_empty() {
                        return Credentials::decode(auth).map(Some).map_err(bad);
                    }
                }
                let user = entry.get("username").and_then(|v| v.as_str());
                let pass = entry.get("password").and_then(|v| v.as_str());
                if let (Some(u), Some(p)) = (user, pass) {
                    return Ok(Some(Credentials::new(u, p)));
                }
            }
        }
        Ok(None)
    }

    /// Stores credentials for `registry` in the writable file, keeping everything else in it.
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<(), CredentialError> {
        let Some(path) = &self.write_path else {
            return Err(CredentialError::Write {
                path: PathBuf::new(),
                source: io::Error::other("no credentials file is configured"),
            });
        };
        let mut doc = read_json(path)?.unwrap_or_else(|| serde_json::json!({}));
        let key = config_key(registry);
        let obj = doc.as_object_mut().ok_or_else(|| CredentialError::Parse {
            path: path.clone(),
            detail: "top level is not an object".into(),
        })?;
        let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
        let auths = auths
            .as_object_mut()
            .ok_or_else(|| CredentialError::Parse {
                path: path.clone(),
                detail: "\"auths\" is not an object".into(),
            })?;
        // Drop other spellings of the same registry so the new entry is the one found.
        let want = normalize_registry(registry);
        auths.retain(|k, _| normalize_registry(k) != want);
        auths.insert(key, serde_json::json!({ "auth": creds.encoded() }));
        write_json(path, &doc)
    }

    /// Removes the credentials for `registry` from the writable file. Returns whether there
    /// were any.
    pub fn erase(&self, registry: &str) -> Result<bool, CredentialError> {
        let Some(path) = &self.write_path else {
            return Ok(false);
        };
        let Some(mut doc) = read_json(path)? else {
            return Ok(false);
        };
        let want = normalize_registry(registry);
        let mut removed = false;
        if let Some(auths) = doc.get_mut("auths").and_then(|a| a.as_object_mut()) {
            let before = auths.len();
            auths.retain(|k, _| normalize_registry(k) != want);
            removed = auths.len() != before;
        }
        if removed {
            write_json(path, &doc)?;
        }
        Ok(removed)
    }
}

/// Normalises a registry as written by users or in config files to the domain used in image
/// references: scheme and path dropped, Docker Hub's aliases mapped to `docker.io`, an empty
/// name meaning Docker Hub.
pub fn normalize_registry(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("").to_string();
    match host.as_str() {
        ""
        | "docker.io"
        | "index.docker.io"
        | "registry-1.docker.io"
        | "registry.hub.docker.com" => "docker.io".to_string(),
        _ => host,
    }
}

/// The key under which credentials for `registry` are written (Docker's spelling).
pub fn config_key(registry: &str) -> String {
    let n = normalize_registry(registry);
    if n == "docker.io" {
        DOCKER_HUB_CONFIG_KEY.to_string()
    } else {
        n
    }
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>, CredentialError> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CredentialError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if data.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|e| CredentialError::Parse {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}

fn write_json(path: &Path, doc: &serde_json::Value) -> Result<(), CredentialError> {
    let werr = |source| CredentialError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.as_os_str().is_empty() && !dir.exists() {
        fs::create_dir_all(dir).map_err(werr)?;
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    }
    let mut data = serde_json::to_vec_pretty(doc).map_err(|e| werr(io::Error::other(e)))?;
    data.push(b'\n');
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config.json".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let res = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.map_err(werr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_names() {
        for (input, norm, key) in [
            ("", "docker.io", DOCKER_HUB_CONFIG_KEY),
            ("docker.io", "docker.io", DOCKER_HUB_CONFIG_KEY),
            (
                "https://index.docker.io/v1/",
                "docker.io",
                DOCKER_HUB_CONFIG_KEY,
            ),
            ("index.docker.io", "docker.io", DOCKER_HUB_CONFIG_KEY),
            ("localhost:5000", "localhost:5000", "localhost:5000"),
            (
                "https://localhost:5000/v2/",
                "localhost:5000",
                "localhost:5000",
            ),
            ("http://[::1]:5000", "[::1]:5000", "[::1]:5000"),
        ] {
            assert_eq!(normalize_registry(input), norm, "{input}");
            assert_eq!(config_key(input), key, "{input}");
        }
    }

    #[test]
    fn store_get_erase_and_fallback() {
        let t = tempfile::tempdir().unwrap();
        let mine = t.path().join("berth/config.json");
        let docker = t.path().join("docker.json");
        fs::write(
            &docker,
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}},"reg.example:5000":{{"username":"u2","password":"p2"}}}},"credsStore":"x"}}"#,
                Credentials::new("hubuser", "hub:pass").encoded()
            ),
        )
        .unwrap();
        let s = CredentialStore::new(&mine).with_fallback(&docker);
        assert_eq!(
            s.get("docker.io").unwrap(),
            Some(Credentials::new("hubuser", "hub:pass"))
        );
        assert_eq!(
            s.get("reg.example:5000").unwrap(),
            Some(Credentials::new("u2", "p2"))
        );
        assert_eq!(s.get("localhost:5000").unwrap(), None);

        s.store("http://localhost:5000/", &Credentials::new("a", "b"))
            .unwrap();
        s.store("docker.io", &Credentials::new("mine", "pw"))
            .unwrap();
        assert_eq!(
            s.get("localhost:5000").unwrap(),
            Some(Credentials::new("a", "b"))
        );
        // berth's own file wins over Docker's.
        assert_eq!(
            s.get("index.docker.io").unwrap(),
            Some(Credentials::new("mine", "pw"))
        );
        let mode = fs::metadata(&mine).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let doc: serde_json::Value = serde_json::from_slice(&fs::read(&mine).unwrap()).unwrap();
        assert!(doc["auths"][DOCKER_HUB_CONFIG_KEY]["auth"].is_string());

        assert!(s.erase("localhost:5000").unwrap());
        assert!(!s.erase("localhost:5000").unwrap());
        assert_eq!(s.get("localhost:5000").unwrap(), None);
        // Docker's file is never modified.
        assert!(fs::read_to_string(&docker).unwrap().contains("credsStore"));

        fs::write(&mine, "{not json").unwrap();
        assert!(matches!(s.get("x"), Err(CredentialError::Parse { .. })));
        assert!(format!("{:?}", Credentials::new("u", "secret")).contains("redacted"));
    }
}
