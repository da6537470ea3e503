//! Volumes and container mounts. Owns the volume store (records in the `volumes` table of
//! `engine.redb`, data under `<data-root>/volumes/<name>/_data`, the local driver's `-o
//! type/device/o` mounts made on first use and undone when the last user stops), the volume
//! API (create, list, inspect, remove, prune), and the translation of a container's
//! `Binds`, `Mounts`, `Tmpfs`, `VolumesFrom`, `Config.Volumes` and the image's `VOLUME`s into
//! [`MountRecord`]s: validated with Docker's errors, volumes created on demand (anonymous
//! ones with 64-hex names), the image's content copied into empty volumes, and the mounts
//! written into the bundle's config.json.
//!
//! Volumes are referenced by the container records that mount them (any state); a volume
//! with users, or one a container create is resolving, refuses removal.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use api::backend::ApiResult;
use api::types::{ContainerConfig, HostConfig, MountPoint, Volume, VolumeCreateRequest};
use api::types::{VolumeListResponse, VolumePruneResponse};
use api::{ApiError, Filters};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::store::{ContainerRecord, Store};
use super::{blocking, Inner};

/// The label Docker puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// A stored volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeRecord {
    /// Name (64 hex digits for anonymous ones).
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Labels as given (None: none given).
    pub labels: Option<BTreeMap<String, String>>,
    /// Driver options as given (`type`, `device`, `o`).
    pub options: Option<BTreeMap<String, String>>,
}

impl VolumeRecord {
    fn opt(&self, k: &str) -> &str {
        self.options
            .as_ref()
            .and_then(|o| o.get(k))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The local driver mounts something at `_data` (`-o type=… -o device=…`).
    fn needs_mount(&self) -> bool {
        !self.opt("type").is_empty() || !self.opt("device").is_empty()
    }

    fn anonymous(&self) -> bool {
        self.labels
            .as_ref()
            .is_some_and(|l| l.contains_key(ANONYMOUS_LABEL))
    }
}

/// One mount of a container, as stored in its record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountRecord {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    /// Volume name (volumes).
    pub name: String,
    /// Host path: the bind source or the volume's `_data`.
    pub source: String,
    /// Path in the container.
    pub destination: String,
    /// Volume driver (volumes).
    pub driver: String,
    /// Mode as given (`ro`, `z`...), Docker's `Mode`.
    pub mode: String,
    /// Writable.
    pub rw: bool,
    /// Bind propagation (binds).
    pub propagation: String,
    /// tmpfs mount data (`size=…,mode=…`).
    pub tmpfs: String,
    /// From `--tmpfs` (HostConfig.Tmpfs): not listed in inspect's `Mounts`, as Docker.
    pub hidden: bool,
    /// Copy the image's content into the volume when it is empty.
    pub copy: bool,
    /// `bind-nonrecursive`.
    pub non_recursive: bool,
}

impl MountRecord {
    /// Docker's view (`Mounts` of inspect and list).
    pub fn point(&self) -> MountPoint {
        MountPoint {
            kind: self.kind.clone(),
            name: self.name.clone(),
            source: self.source.clone(),
            destination: self.destination.clone(),
            driver: self.driver.clone(),
            mode: self.mode.clone(),
            rw: self.rw,
            propagation: self.propagation.clone(),
        }
    }
}

/// The mounts of a container as inspect and list show them.
pub fn mount_points(c: &ContainerRecord) -> Vec<MountPoint> {
    c.mounts
        .iter()
        .filter(|m| !m.hidden)
        .map(MountRecord::point)
        .collect()
}

#[derive(Default)]
struct State {
    vols: BTreeMap<String, VolumeRecord>,
    /// Volumes a container create is resolving (not yet in a container record).
    pending: HashMap<String, usize>,
    /// Option-mounted volumes: the containers that need their mount.
    active: HashMap<String, HashSet<String>>,
    /// Containers started with volumes (for their `unmount` events).
    started: HashMap<String, Vec<String>>,
}

/// The volume store.
pub struct Volumes {
    root: PathBuf,
    state: Mutex<State>,
    /// Serialises first-use copies (two creates must not fill one volume at once).
    copying: Mutex<()>,
}

fn poisoned() -> ApiError {
    ApiError::Internal(
        "the daemon's volume table is unusable (a task panicked); restart the daemon".into(),
    )
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn now_rfc3339() -> String {
    let t = api::time::Timestamp::now();
    let s = shim::timefmt::rfc3339_nano(t.seconds, 0);
    // Docker shows seconds: drop a fractional part if any.
    match s.find('.') {
        Some(i) => format!("{}Z", &s[..i]),
        None => s,
    }
}

impl Volumes {
    /// Loads the records; recreates a missing `_data` of a recorded volume.
    pub fn open(data_root: &Path, store: &Store) -> Result<Volumes, super::Error> {
        let root = data_root.join("volumes");
        std::fs::create_dir_all(&root).map_err(|source| super::Error::Io {
            path: root.clone(),
            source,
        })?;
        let mut vols = BTreeMap::new();
        for v in store.load_volumes()? {
            let data = root.join(&v.name).join("_data");
            if !data.exists() {
                if let Err(e) = std::fs::create_dir_all(&data) {
                    eprintln!(
                        "berth daemon: warning: volume {}: cannot create {}: {e}",
                        v.name,
                        data.display()
                    );
                }
            }
            vols.insert(v.name.clone(), v);
        }
        Ok(Volumes {
            root,
            state: Mutex::new(State {
                vols,
                ..Default::default()
            }),
            copying: Mutex::new(()),
        })
    }

    fn data(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    fn view(&self, v: &VolumeRecord) -> Volume {
        Volume {
            name: v.name.clone(),
            driver: v.driver.clone(),
            mountpoint: self.data(&v.name).display().to_string(),
            created_at: v.created_at.clone(),
            labels: v.labels.clone(),
            scope: "local".into(),
            options: v.options.clone(),
            ..Default::default()
        }
    }
}

// ---------------------------------------------------------------- validation

fn valid_name(name: &str) -> Result<(), String> {
    if name.len() == 1 {
        return Err(
            "volume name is too short, names should be at least two alphanumeric characters".into(),
        );
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-') {
        return Err(format!(
            "{name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        ));
    }
    Ok(())
}

fn valid_opts(opts: &BTreeMap<String, String>) -> Result<(), String> {
    for k in opts.keys() {
        if !["type", "o", "device", "size"].contains(&k.as_str()) {
            return Err(format!("invalid option: {k:?}"));
        }
    }
    if opts.contains_key("size") {
        return Err("quota size requested but no quota support".into());
    }
    for (opt, req) in [
        ("device", &["type"][..]),
        ("type", &["device"][..]),
        ("o", &["device", "type"][..]),
    ] {
        if opts.contains_key(opt) {
            for r in req {
                if !opts.contains_key(*r) {
                    return Err(format!("missing required option: {r:?}"));
                }
            }
        }
    }
    Ok(())
}

fn check_driver(name: &str, driver: &str) -> ApiResult<()> {
    if driver.is_empty() || driver == "local" {
        return Ok(());
    }
    Err(ApiError::NotFound(format!(
        "create {name}: error looking up volume plugin {driver}: plugin {driver:?} not found"
    )))
}

// ---------------------------------------------------------------- store operations

impl Volumes {
    /// Creates a volume (record first, then its directory; the record goes if the directory
    /// cannot be made). Returns the record and whether it was made now. Caller holds `st`.
    fn create_locked(
        &self,
        inner: &Inner,
        st: &mut State,
        name: &str,
        labels: Option<BTreeMap<String, String>>,
        options: Option<BTreeMap<String, String>>,
    ) -> ApiResult<(VolumeRecord, bool)> {
        if let Some(v) = st.vols.get(name) {
            return Ok((v.clone(), false));
        }
        valid_name(name).map_err(|m| ApiError::InvalidParameter(format!("create {name}: {m}")))?;
        if let Some(o) = &options {
            valid_opts(o).map_err(|m| ApiError::InvalidParameter(format!("create {name}: {m}")))?;
        }
        let rec = VolumeRecord {
            name: name.to_string(),
            driver: "local".into(),
            created_at: now_rfc3339(),
            labels,
            options,
        };
        inner.store.put_volume(&rec).map_err(internal)?;
        let data = self.data(name);
        if let Err(e) = std::fs::create_dir_all(&data) {
            let _ = std::fs::remove_dir_all(self.root.join(name));
            let _ = inner.store.delete_volume(name);
            return Err(internal(format!(
                "create {name}: cannot create {}: {e}",
                data.display()
            )));
        }
        st.vols.insert(name.to_string(), rec.clone());
        volume_event(inner, "create", name, &[]);
        Ok((rec, true))
    }

    /// Deletes a volume's record and data (unmounting it first). Caller holds `st`.
    fn remove_locked(&self, inner: &Inner, st: &mut State, name: &str) -> ApiResult<()> {
        let dir = self.root.join(name);
        let data = self.data(name);
        unmount_all_under(&dir);
        if is_mounted(&data) {
            return Err(ApiError::Internal(format!(
                "remove {name}: {} is still mounted; unmount it and retry",
                data.display()
            )));
        }
        inner.store.delete_volume(name).map_err(internal)?;
        st.vols.remove(name);
        st.active.remove(name);
        volume_event(inner, "destroy", name, &[]);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(internal(format!(
                "remove {name}: cannot remove {}: {e}",
                dir.display()
            ))),
        }
    }
}

/// Publishes a volume event (`create`, `destroy`, `mount`, `unmount`) as Docker does.
fn volume_event(inner: &Inner, action: &str, name: &str, extra: &[(&str, String)]) {
    let mut a = BTreeMap::new();
    a.insert("driver".to_string(), "local".to_string());
    for (k, v) in extra {
        a.insert((*k).to_string(), v.clone());
    }
    inner.bus.publish("volume", action, name, a);
}

/// Containers whose records mount volume `name`.
fn users(inner: &Inner, name: &str) -> ApiResult<Vec<String>> {
    let m = inner
        .containers
        .lock()
        .map_err(|_| super::containers::poisoned())?;
    let mut ids: Vec<String> = m
        .values()
        .filter(|c| {
            c.mounts
                .iter()
                .any(|x| x.kind == "volume" && x.name == name)
        })
        .map(|c| c.id.clone())
        .collect();
    ids.sort();
    Ok(ids)
}

fn in_use(inner: &Inner, st: &State, name: &str) -> ApiResult<Vec<String>> {
    let mut u = users(inner, name)?;
    if st.pending.get(name).is_some_and(|n| *n > 0) && u.is_empty() {
        u.push("a container being created".into());
    }
    Ok(u)
}

// ---------------------------------------------------------------- API

/// `POST /volumes/create`.
pub async fn create(inner: &std::sync::Arc<Inner>, req: VolumeCreateRequest) -> ApiResult<Volume> {
    let inner = inner.clone();
    blocking(move || {
        let name = if req.name.is_empty() {
            ::image::content::random_hex(32).map_err(internal)?
        } else {
            req.name.clone()
        };
        check_driver(&name, &req.driver)?;
        let vs = &inner.volumes;
        let mut st = vs.state.lock().map_err(|_| poisoned())?;
        let (rec, _) = vs.create_locked(
            &inner,
            &mut st,
            &name,
            Some(req.labels.clone().unwrap_or_default()),
            Some(req.driver_opts.clone().unwrap_or_default()),
        )?;
        Ok(vs.view(&rec))
    })
    .await
}

/// `GET /volumes/{name}`.
pub async fn inspect(inner: &std::sync::Arc<Inner>, name: &str) -> ApiResult<Volume> {
    let vs = &inner.volumes;
    let st = vs.state.lock().map_err(|_| poisoned())?;
    st.vols
        .get(name)
        .map(|v| vs.view(v))
        .ok_or_else(|| ApiError::NotFound(format!("get {name}: no such volume")))
}

/// The volumes with their `UsageData` (`Size`, `RefCount`), for `GET /system/df`.
pub fn usage(inner: &Inner) -> ApiResult<Vec<Value>> {
    let vs = &inner.volumes;
    let st = vs.state.lock().map_err(|_| poisoned())?;
    let mut out = Vec::new();
    for v in st.vols.values() {
        let mut view = vs.view(v);
        let size = if v.needs_mount() {
            -1
        } else {
            dir_size(&vs.data(&v.name)) as i64
        };
        let refs = users(inner, &v.name)?.len();
        view.usage_data = Some(serde_json::json!({"Size": size, "RefCount": refs}));
        out.push(serde_json::to_value(view).map_err(internal)?);
    }
    Ok(out)
}

/// `GET /volumes`.
pub async fn list(inner: &std::sync::Arc<Inner>, f: Filters) -> ApiResult<VolumeListResponse> {
    f.validate(&["dangling", "name", "label", "driver"])?;
    let dangling = f.bool_value("dangling")?;
    let vs = &inner.volumes;
    let st = vs.state.lock().map_err(|_| poisoned())?;
    let mut out = Vec::new();
    for v in st.vols.values() {
        let names = f.get("name");
        if !names.is_empty() && !names.iter().any(|n| v.name.contains(n)) {
            continue;
        }
        if !f.exact_match("driver", &v.driver) {
            continue;
        }
        if !f.match_labels("label", &v.labels.clone().unwrap_or_default()) {
            continue;
        }
        if let Some(d) = dangling {
            let used = !in_use(inner, &st, &v.name)?.is_empty();
            if d == used {
                continue;
            }
        }
        out.push(vs.view(v));
    }
    Ok(VolumeListResponse {
        volumes: Some(out),
        warnings: None,
    })
}

/// `DELETE /volumes/{name}`: refused while a container uses it; `force` ignores a missing
/// volume.
pub async fn remove(inner: &std::sync::Arc<Inner>, name: &str, force: bool) -> ApiResult<()> {
    let (inner, name) = (inner.clone(), name.to_string());
    blocking(move || {
        let vs = &inner.volumes;
        let mut st = vs.state.lock().map_err(|_| poisoned())?;
        if !st.vols.contains_key(&name) {
            if force {
                return Ok(());
            }
            return Err(ApiError::NotFound(format!("get {name}: no such volume")));
        }
        let u = in_use(&inner, &st, &name)?;
        if !u.is_empty() {
            return Err(ApiError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                u.join(", ")
            )));
        }
        vs.remove_locked(&inner, &mut st, &name)
    })
    .await
}

/// `POST /volumes/prune`: unused anonymous volumes (all unused ones with `all=true`).
pub async fn prune(inner: &std::sync::Arc<Inner>, f: Filters) -> ApiResult<VolumePruneResponse> {
    f.validate(&["label", "label!", "all"])?;
    let all = f.bool_value("all")?.unwrap_or(false);
    let inner = inner.clone();
    blocking(move || {
        let vs = &inner.volumes;
        let mut st = vs.state.lock().map_err(|_| poisoned())?;
        let names: Vec<String> = st.vols.keys().cloned().collect();
        let mut deleted = Vec::new();
        let mut space = 0u64;
        for n in names {
            let Some(v) = st.vols.get(&n).cloned() else {
                continue;
            };
            if !all && !v.anonymous() {
                continue;
            }
            let labels = v.labels.clone().unwrap_or_default();
            if !f.match_labels("label", &labels) {
                continue;
            }
            if f.contains("label!") {
                let mut neg = Filters::new();
                for l in f.get("label!") {
                    neg.add("label", l);
                }
                if neg.match_labels("label", &labels) {
                    continue;
                }
            }
            if !in_use(&inner, &st, &n)?.is_empty() {
                continue;
            }
            let size = if v.needs_mount() {
                0
            } else {
                dir_size(&vs.data(&n))
            };
            if vs.remove_locked(&inner, &mut st, &n).is_ok() {
                space += size;
                deleted.push(n);
            }
        }
        Ok(VolumePruneResponse {
            volumes_deleted: Some(deleted),
            space_reclaimed: space,
        })
    })
    .await
}

fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        if let Ok(m) = e.path().symlink_metadata() {
            if m.is_dir() {
                n += dir_size(&e.path());
            } else {
                n += m.len();
            }
        }
    }
    n
}

// ---------------------------------------------------------------- mount specs

fn invalid_spec(raw: &str) -> String {
    format!("invalid volume specification: '{raw}'")
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "slave", "rslave", "shared", "rshared",
];

/// Docker's `linuxValidMountMode`: each kind of flag at most once.
fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut counts = [0u8; 5];
    for o in mode.split(',') {
        let i = match o {
            "rw" | "ro" => 0,
            "z" | "Z" => 1,
            o if PROPAGATIONS.contains(&o) => 2,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return false,
        };
        counts[i] += 1;
    }
    counts.iter().all(|c| *c <= 1)
}

fn mode_has(mode: &str, what: &str) -> bool {
    mode.split(',').any(|o| o == what)
}

fn mode_propagation(mode: &str) -> Option<&str> {
    mode.split(',').find(|o| PROPAGATIONS.contains(o))
}

/// A mount as asked for, before volumes are resolved.
#[derive(Debug, Clone, Default)]
struct Spec {
    kind: String,
    source: String,
    target: String,
    read_only: bool,
    mode: String,
    propagation: Option<String>,
    /// Has bind options (propagation given).
    bind_options: bool,
    /// Has volume options.
    volume_options: bool,
    nocopy: bool,
    driver: String,
    driver_opts: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
    tmpfs: String,
    tmpfs_given: bool,
    non_recursive: bool,
    create_mountpoint: bool,
}

fn validate_target(t: &str) -> Result<(), String> {
    if t.is_empty() {
        return Err("field Target must not be empty".into());
    }
    if clean(t) == "/" {
        return Err("invalid specification: destination can't be '/'".into());
    }
    if !t.starts_with('/') {
        return Err(format!(
            "invalid mount path: '{t}' mount path must be absolute"
        ));
    }
    Ok(())
}

/// Docker's `validateMountConfigImpl`: the message without the `invalid mount config` prefix.
fn validate_spec(s: &Spec, check_source: bool) -> Result<(), String> {
    validate_target(&s.target)?;
    match s.kind.as_str() {
        "bind" => {
            if s.source.is_empty() {
                return Err("field Source must not be empty".into());
            }
            if let Some(p) = &s.propagation {
                if !PROPAGATIONS.contains(&p.as_str()) {
                    return Err(format!("invalid propagation mode: {p}"));
                }
            }
            if s.volume_options {
                return Err("field VolumeOptions must not be specified".into());
            }
            if !s.source.starts_with('/') {
                return Err(format!(
                    "invalid mount path: '{}' mount path must be absolute",
                    s.source
                ));
            }
            if check_source && !s.create_mountpoint && std::fs::metadata(&s.source).is_err() {
                return Err(format!("bind source path does not exist: {}", s.source));
            }
        }
        "volume" => {
            if s.bind_options {
                return Err("field BindOptions must not be specified".into());
            }
            if s.read_only && s.source.is_empty() {
                return Err("must not set ReadOnly mode when using anonymous volumes".into());
            }
        }
        "tmpfs" => {
            if s.bind_options {
                return Err("field BindOptions must not be specified".into());
            }
            if !s.source.is_empty() {
                return Err("field Source must not be specified".into());
            }
        }
        _ => return Err("mount type unknown".into()),
    }
    Ok(())
}

fn config_err(kind: &str, m: String) -> String {
    format!("invalid mount config for type {kind:?}: {m}")
}

/// `-v SRC:DST[:MODE]` / `-v DST` (Docker's `ParseMountRaw`).
fn parse_raw(raw: &str, volume_driver: &str) -> Result<Spec, String> {
    let arr: Vec<&str> = raw.splitn(4, ':').collect();
    if arr[0].is_empty() {
        return Err(invalid_spec(raw));
    }
    let mut s = Spec::default();
    let mut mode = "";
    match arr.len() {
        1 => s.target = arr[0].into(),
        2 => {
            if valid_mode(arr[1]) {
                return Err(invalid_spec(raw));
            }
            s.source = arr[0].into();
            s.target = arr[1].into();
        }
        3 => {
            s.source = arr[0].into();
            s.target = arr[1].into();
            mode = arr[2];
        }
        _ => return Err(invalid_spec(raw)),
    }
    if !valid_mode(mode) {
        return Err(format!("invalid mode: {mode}"));
    }
    s.kind = if s.source.starts_with('/') {
        "bind".into()
    } else {
        "volume".into()
    };
    s.read_only = mode_has(mode, "ro");
    s.mode = mode.into();
    if s.kind == "volume" && !volume_driver.is_empty() {
        s.driver = volume_driver.into();
        s.volume_options = true;
    }
    if mode_has(mode, "nocopy") {
        s.nocopy = true;
        s.volume_options = true;
    }
    if let Some(p) = mode_propagation(mode) {
        s.propagation = Some(p.into());
        s.bind_options = true;
    }
    // -v creates a missing host directory.
    s.create_mountpoint = true;
    validate_spec(&s, false)
        .map_err(|e| format!("{}: {}", invalid_spec(raw), config_err(&s.kind, e)))?;
    Ok(s)
}

fn size_text(n: i64) -> String {
    for (suffix, d) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
        if n % d == 0 {
            return format!("{}{suffix}", n / d);
        }
    }
    n.to_string()
}

/// `--mount` (HostConfig.Mounts, Docker's `ParseMountSpec`).
fn parse_mount(m: &api::types::Mount) -> Result<Spec, String> {
    let mut s = Spec {
        kind: m.kind.clone(),
        source: m.source.clone(),
        target: m.target.clone(),
        read_only: m.read_only,
        ..Default::default()
    };
    if let Some(b) = &m.bind_options {
        s.bind_options = true;
        if !b.propagation.is_empty() {
            s.propagation = Some(b.propagation.clone());
        }
        s.non_recursive = b.non_recursive;
        s.create_mountpoint = b.create_mountpoint;
    }
    if let Some(v) = &m.volume_options {
        s.volume_options = true;
        s.nocopy = v.no_copy;
        s.labels = v.labels.clone();
        if let Some(d) = &v.driver_config {
            s.driver = d
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(o) = d.get("Options").and_then(Value::as_object) {
                s.driver_opts = Some(
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect(),
                );
            }
        }
        if !v.subpath.is_empty() {
            return Err(config_err(
                &s.kind,
                "volume subpaths are not supported by berth".into(),
            ));
        }
    }
    if let Some(t) = &m.tmpfs_options {
        let mut parts = Vec::new();
        if t.mode != 0 {
            parts.push(format!("mode={:o}", t.mode));
        }
        if t.size_bytes != 0 {
            parts.push(format!("size={}", size_text(t.size_bytes)));
        }
        for o in t.options.clone().unwrap_or_default() {
            if o.is_empty() || o.len() > 2 {
                return Err(config_err(&s.kind, "invalid option array length".into()));
            }
            if o[0] != "exec" && o[0] != "noexec" {
                return Err(config_err(&s.kind, format!("invalid option: {}", o[0])));
            }
            parts.push(o.join("="));
        }
        s.tmpfs = parts.join(",");
        s.tmpfs_given = true;
    }
    validate_spec(&s, true).map_err(|e| config_err(&s.kind, e))?;
    Ok(s)
}

/// `path.Clean` for absolute container paths.
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if p.starts_with('/') {
        format!("/{}", out.join("/"))
    } else {
        out.join("/")
    }
}

/// tmpfs mount options: Docker's defaults (`noexec,nosuid,nodev`) then the given ones, a
/// later flag replacing its opposite.
fn tmpfs_options(data: &str, read_only: bool) -> Vec<String> {
    let mut out: Vec<String> = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
    let opposite = |o: &str| -> Option<String> {
        match o {
            "exec" => Some("noexec".into()),
            "noexec" => Some("exec".into()),
            "suid" => Some("nosuid".into()),
            "nosuid" => Some("suid".into()),
            "dev" => Some("nodev".into()),
            "nodev" => Some("dev".into()),
            "ro" => Some("rw".into()),
            "rw" => Some("ro".into()),
            _ => None,
        }
    };
    let mut given: Vec<&str> = data.split(',').filter(|o| !o.is_empty()).collect();
    if read_only {
        given.push("ro");
    }
    for o in given {
        if let Some(x) = opposite(o) {
            out.retain(|e| *e != x);
        }
        if let Some((k, _)) = o.split_once('=') {
            out.retain(|e| !e.starts_with(&format!("{k}=")));
        }
        if !out.iter().any(|e| e == o) {
            out.push(o.to_string());
        }
    }
    out
}

// ---------------------------------------------------------------- container mounts

/// A volume a container create wants.
#[derive(Debug, Clone)]
struct Want {
    name: String,
    labels: Option<BTreeMap<String, String>>,
    options: Option<BTreeMap<String, String>>,
}

/// What a container create resolved: its mounts, and the volumes it made or holds.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The container's mounts.
    pub mounts: Vec<MountRecord>,
    /// `Config.Volumes` merged with the image's `VOLUME`s.
    pub config_volumes: BTreeMap<String, Value>,
    /// Volumes made by this create (removed if it fails).
    created: Vec<String>,
    /// Volumes this create holds (pending references).
    held: Vec<String>,
}

fn image_volumes(inner: &Inner, image_ref: &str) -> Vec<String> {
    let Ok(img) = inner.images.resolve(image_ref) else {
        return Vec::new();
    };
    inner
        .images
        .config(&img.id)
        .ok()
        .and_then(|c| c.config)
        .and_then(|c| c.volumes)
        .map(|v| v.into_keys().collect())
        .unwrap_or_default()
}

type Points = HashMap<String, (MountRecord, Option<Want>)>;

/// Records a mount; a later one for the same destination replaces an earlier one.
fn put(order: &mut Vec<String>, points: &mut Points, m: MountRecord, w: Option<Want>) {
    if !points.contains_key(&m.destination) {
        order.push(m.destination.clone());
    }
    points.insert(m.destination.clone(), (m, w));
}

fn dup(dest: &str) -> ApiError {
    ApiError::InvalidParameter(format!("Duplicate mount point: {dest}"))
}

/// Resolves a container's mounts (Docker's `registerMountPoints` order: volumes-from, then
/// binds, then `--mount`, then tmpfs, then anonymous volumes for `Config.Volumes` and the
/// image's `VOLUME`s not otherwise mounted) and creates the volumes it needs. Nothing is
/// left behind when it fails.
pub fn prepare(
    inner: &Inner,
    image_ref: &str,
    cfg: &ContainerConfig,
    hc: &HostConfig,
) -> ApiResult<Prepared> {
    let bad = ApiError::InvalidParameter;
    let mut order: Vec<String> = Vec::new();
    let mut points: Points = HashMap::new();
    let tmpfs = hc.tmpfs.clone().unwrap_or_default();
    let tmpfs_dests: HashSet<String> = tmpfs.keys().map(|k| clean(k)).collect();

    // --volumes-from
    for spec in hc.volumes_from.clone().unwrap_or_default() {
        if spec.is_empty() {
            return Err(bad(
                "volumes-from specification cannot be an empty string".into()
            ));
        }
        let (id, mode) = spec.split_once(':').unwrap_or((spec.as_str(), "rw"));
        let mode = if mode.is_empty() { "rw" } else { mode };
        if !valid_mode(mode) || mode_propagation(mode).is_some() || mode_has(mode, "nocopy") {
            return Err(bad(format!("invalid mode: {mode}")));
        }
        // A 404 would make the docker CLI try to pull the image: a bad parameter instead.
        let c = super::containers::lookup(inner, id).map_err(|e| match e {
            ApiError::NotFound(m) => ApiError::InvalidParameter(m),
            e => e,
        })?;
        for m in &c.mounts {
            if m.hidden || m.kind == "tmpfs" {
                continue;
            }
            let mut cp = m.clone();
            cp.rw = m.rw && !mode_has(mode, "ro");
            cp.mode = String::new();
            cp.copy = false;
            let w = (m.kind == "volume").then(|| Want {
                name: m.name.clone(),
                labels: None,
                options: None,
            });
            put(&mut order, &mut points, cp, w);
        }
    }

    // -v SRC:DST[:MODE]
    let mut binds: HashSet<String> = HashSet::new();
    for raw in hc.binds.clone().unwrap_or_default() {
        let s = parse_raw(&raw, &hc.volume_driver).map_err(bad)?;
        let dest = clean(&s.target);
        if binds.contains(&dest) || tmpfs_dests.contains(&dest) {
            return Err(dup(&dest));
        }
        binds.insert(dest.clone());
        let (m, w) = to_record(inner, s, dest)?;
        put(&mut order, &mut points, m, w);
    }

    // --mount
    for mnt in hc.mounts.clone().unwrap_or_default() {
        let s = parse_mount(&mnt).map_err(bad)?;
        let dest = clean(&s.target);
        if binds.contains(&dest) || tmpfs_dests.contains(&dest) {
            return Err(dup(&mnt.target));
        }
        binds.insert(dest.clone());
        let (m, w) = to_record(inner, s, dest)?;
        put(&mut order, &mut points, m, w);
    }

    // --tmpfs
    let mut tmpfs_sorted: Vec<(&String, &String)> = tmpfs.iter().collect();
    tmpfs_sorted.sort();
    for (dest, data) in tmpfs_sorted {
        validate_target(dest).map_err(bad)?;
        let m = MountRecord {
            kind: "tmpfs".into(),
            destination: clean(dest),
            rw: true,
            tmpfs: data.clone(),
            hidden: true,
            ..Default::default()
        };
        put(&mut order, &mut points, m, None);
    }

    // Config.Volumes and the image's VOLUMEs: anonymous volumes.
    let mut config_volumes: BTreeMap<String, Value> = cfg.volumes.clone().unwrap_or_default();
    for v in image_volumes(inner, image_ref) {
        config_volumes
            .entry(v)
            .or_insert_with(|| serde_json::json!({}));
    }
    for dest in config_volumes.keys() {
        let s = parse_raw(dest, "").map_err(bad)?;
        if s.kind != "volume" || !s.source.is_empty() {
            return Err(bad(invalid_spec(dest)));
        }
        let d = clean(dest);
        if points.contains_key(&d) {
            continue;
        }
        let (m, w) = to_record(inner, s, d)?;
        put(&mut order, &mut points, m, w);
    }

    let mut mounts: Vec<MountRecord> = Vec::new();
    let mut wants: Vec<Want> = Vec::new();
    for d in &order {
        if let Some((m, w)) = points.remove(d) {
            mounts.push(m);
            wants.extend(w);
        }
    }

    // Host directories for -v binds (Docker creates a missing one).
    for m in &mounts {
        if m.kind == "bind" && std::fs::symlink_metadata(&m.source).is_err() {
            std::fs::create_dir_all(&m.source).map_err(|e| {
                bad(format!(
                    "error while creating mount source path '{}': {e}",
                    m.source
                ))
            })?;
        }
    }

    // Volumes: get or create, under the lock, all or nothing.
    let vs = &inner.volumes;
    let mut st = vs.state.lock().map_err(|_| poisoned())?;
    let mut p = Prepared {
        mounts,
        config_volumes,
        ..Default::default()
    };
    for w in wants {
        match vs.create_locked(inner, &mut st, &w.name, w.labels, w.options) {
            Ok((_, made)) => {
                if made {
                    p.created.push(w.name.clone());
                }
                *st.pending.entry(w.name.clone()).or_insert(0) += 1;
                p.held.push(w.name);
            }
            Err(e) => {
                drop(st);
                abort(inner, &p);
                return Err(e);
            }
        }
    }
    Ok(p)
}

/// Shared and slave bind propagation need the host mount holding the source to be shared
/// (or a slave): Docker's `ensureShared` / `ensureSharedOrSlave`.
fn check_propagation(source: &str, prop: &str) -> Result<(), String> {
    let need_shared = matches!(prop, "shared" | "rshared");
    if !need_shared && !matches!(prop, "slave" | "rslave") {
        return Ok(());
    }
    let real = std::fs::canonicalize(source).unwrap_or_else(|_| PathBuf::from(source));
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut best: Option<(String, Vec<String>)> = None;
    for l in info.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let Some(mp) = f.get(4) else { continue };
        let mp = mp
            .replace("\\040", " ")
            .replace("\\011", "\t")
            .replace("\\012", "\n")
            .replace("\\134", "\\");
        if !real.starts_with(&mp) {
            continue;
        }
        if best.as_ref().is_some_and(|(b, _)| b.len() > mp.len()) {
            continue;
        }
        let optional: Vec<String> = f
            .iter()
            .skip(6)
            .take_while(|x| **x != "-")
            .map(|x| x.to_string())
            .collect();
        best = Some((mp, optional));
    }
    let Some((mp, optional)) = best else {
        return Ok(());
    };
    let shared = optional.iter().any(|o| o.starts_with("shared:"));
    let slave = optional.iter().any(|o| o.starts_with("master:"));
    if need_shared && !shared {
        return Err(format!(
            "path {source} is mounted on {mp} but it is not a shared mount"
        ));
    }
    if !need_shared && !shared && !slave {
        return Err(format!(
            "path {source} is mounted on {mp} but it is not a shared or slave mount"
        ));
    }
    Ok(())
}

/// A parsed spec to a mount record (volumes: the name, made up for anonymous ones).
fn to_record(inner: &Inner, s: Spec, dest: String) -> ApiResult<(MountRecord, Option<Want>)> {
    match s.kind.as_str() {
        "bind" => Ok((
            MountRecord {
                kind: "bind".into(),
                source: clean(&s.source),
                destination: dest,
                mode: s.mode.clone(),
                rw: !s.read_only,
                propagation: s.propagation.clone().unwrap_or_else(|| "rprivate".into()),
                non_recursive: s.non_recursive,
                ..Default::default()
            },
            None,
        )),
        "volume" => {
            let anonymous = s.source.is_empty();
            let name = if anonymous {
                ::image::content::random_hex(32).map_err(internal)?
            } else {
                s.source.clone()
            };
            // A 404 would make the docker CLI pull the image: say it as a bad parameter.
            check_driver(&name, &s.driver)
                .map_err(|e| ApiError::InvalidParameter(e.to_string()))?;
            let labels = if anonymous {
                let mut l = s.labels.clone().unwrap_or_default();
                l.insert(ANONYMOUS_LABEL.into(), String::new());
                Some(l)
            } else {
                s.labels.clone()
            };
            if let Some(o) = &s.driver_opts {
                if !inner
                    .volumes
                    .state
                    .lock()
                    .map_err(|_| poisoned())?
                    .vols
                    .contains_key(&name)
                {
                    valid_opts(o)
                        .map_err(|m| ApiError::InvalidParameter(format!("create {name}: {m}")))?;
                }
            }
            valid_name(&name)
                .map_err(|m| ApiError::InvalidParameter(format!("create {name}: {m}")))?;
            let mode = if s.mode.is_empty() && !anonymous {
                "z".to_string()
            } else {
                s.mode.clone()
            };
            Ok((
                MountRecord {
                    kind: "volume".into(),
                    name: name.clone(),
                    source: inner.volumes.data(&name).display().to_string(),
                    destination: dest,
                    driver: "local".into(),
                    mode,
                    rw: !s.read_only,
                    copy: !s.nocopy,
                    ..Default::default()
                },
                Some(Want {
                    name,
                    labels,
                    options: s.driver_opts,
                }),
            ))
        }
        _ => Ok((
            MountRecord {
                kind: "tmpfs".into(),
                destination: dest,
                rw: !s.read_only,
                tmpfs: s.tmpfs,
                ..Default::default()
            },
            None,
        )),
    }
}

/// Undoes [`prepare`] after a failed create: drops the holds and removes the volumes it made.
pub fn abort(inner: &Inner, p: &Prepared) {
    let vs = &inner.volumes;
    let Ok(mut st) = vs.state.lock() else { return };
    release_locked(&mut st, p);
    for n in &p.created {
        if users(inner, n).is_ok_and(|u| u.is_empty()) && st.pending.get(n).is_none_or(|c| *c == 0)
        {
            let _ = vs.remove_locked(&inner, &mut st, n);
        }
    }
}

fn release_locked(st: &mut State, p: &Prepared) {
    for n in &p.held {
        if let Some(c) = st.pending.get_mut(n) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                st.pending.remove(n);
            }
        }
    }
}

/// After the container record is saved: its references now hold the volumes.
pub fn release(inner: &Inner, p: &Prepared) {
    if let Ok(mut st) = inner.volumes.state.lock() {
        release_locked(&mut st, p);
    }
}

/// Finishes the bundle: copies the image's content into empty volumes (Docker's first-use
/// copy, keeping ownership and modes) and writes the mounts into config.json.
pub fn apply(inner: &Inner, p: &Prepared, bundle: &Path) -> ApiResult<()> {
    if p.mounts.is_empty() {
        return Ok(());
    }
    let rootfs = bundle.join("rootfs");
    for m in &p.mounts {
        if m.kind != "volume" || !m.copy {
            continue;
        }
        let needs_mount = inner
            .volumes
            .state
            .lock()
            .map_err(|_| poisoned())?
            .vols
            .get(&m.name)
            .is_some_and(|v| v.needs_mount());
        let data = PathBuf::from(&m.source);
        if needs_mount && !is_mounted(&data) {
            continue;
        }
        let src =
            runtime::rootfs::secure_join(&rootfs, Path::new(&m.destination)).map_err(internal)?;
        let _one = inner.volumes.copying.lock().map_err(|_| poisoned())?;
        copy_up(&src, &data).map_err(|e| {
            internal(format!(
                "cannot copy the image's {} into volume {}: {e}",
                m.destination, m.name
            ))
        })?;
    }
    let cfg = bundle.join("config.json");
    let mut spec: Value =
        serde_json::from_slice(&std::fs::read(&cfg).map_err(internal)?).map_err(internal)?;
    let mine: Vec<Value> = p.mounts.iter().map(oci_mount).collect();
    let dests: HashSet<&str> = p.mounts.iter().map(|m| m.destination.as_str()).collect();
    let existing: Vec<Value> = spec["mounts"].as_array().cloned().unwrap_or_default();
    // The runtime's base mounts first (/proc, /dev, /sys...), then the user's and the /etc
    // files sorted by depth so a parent is mounted before what is mounted inside it.
    let base = |d: &str| {
        ["/proc", "/dev", "/sys"]
            .iter()
            .any(|b| d == *b || d.starts_with(&format!("{b}/")))
    };
    let mut first = Vec::new();
    let mut rest = Vec::new();
    for m in existing {
        let d = m["destination"].as_str().unwrap_or("").to_string();
        if dests.contains(d.as_str()) {
            continue;
        }
        if base(&d) {
            first.push(m);
        } else {
            rest.push(m);
        }
    }
    rest.extend(mine);
    rest.sort_by_key(|m| {
        m["destination"]
            .as_str()
            .unwrap_or("")
            .split('/')
            .filter(|c| !c.is_empty())
            .count()
    });
    first.extend(rest);
    spec["mounts"] = Value::Array(first);
    let prop = p
        .mounts
        .iter()
        .filter(|m| m.kind == "bind")
        .map(|m| m.propagation.as_str());
    let mut root_prop = None;
    for pr in prop {
        match pr {
            "shared" | "rshared" => root_prop = Some("rshared"),
            "slave" | "rslave" if root_prop.is_none() => root_prop = Some("rslave"),
            _ => {}
        }
    }
    if let Some(rp) = root_prop {
        if spec["linux"]["rootfsPropagation"]
            .as_str()
            .unwrap_or("")
            .is_empty()
        {
            spec["linux"]["rootfsPropagation"] = rp.into();
        }
    }
    std::fs::write(&cfg, serde_json::to_vec_pretty(&spec).map_err(internal)?).map_err(internal)
}

fn oci_mount(m: &MountRecord) -> Value {
    match m.kind.as_str() {
        "tmpfs" => serde_json::json!({
            "destination": m.destination,
            "type": "tmpfs",
            "source": "tmpfs",
            "options": tmpfs_options(&m.tmpfs, !m.rw),
        }),
        _ => {
            let mut o = vec![if m.non_recursive { "bind" } else { "rbind" }.to_string()];
            if !m.rw {
                o.push("ro".into());
            }
            o.push(if m.propagation.is_empty() {
                "rprivate".into()
            } else {
                m.propagation.clone()
            });
            serde_json::json!({
                "destination": m.destination,
                "type": "bind",
                "source": m.source,
                "options": o,
            })
        }
    }
}

// ---------------------------------------------------------------- first-use copy

/// Copies `src` (a directory in the container's rootfs) into the empty volume `dst`.
fn copy_up(src: &Path, dst: &Path) -> std::io::Result<()> {
    let Ok(sm) = std::fs::symlink_metadata(src) else {
        return Ok(());
    };
    if !sm.is_dir() {
        return Ok(());
    }
    if std::fs::read_dir(dst)?.next().is_some() {
        return Ok(());
    }
    let mut links = HashMap::new();
    copy_dir(src, dst, &mut links)?;
    own(dst, &sm, src)
}

/// Owner, extended attributes (after the chown, which drops `security.capability`), mode
/// and times of `src` onto `p`.
fn own(p: &Path, m: &std::fs::Metadata, src: &Path) -> std::io::Result<()> {
    std::os::unix::fs::lchown(p, Some(m.uid()), Some(m.gid()))?;
    copy_xattrs(src, p);
    if !m.file_type().is_symlink() {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
    }
    let t = |s: i64, ns: i64| nix::sys::time::TimeSpec::new(s, ns);
    let _ = nix::sys::stat::utimensat(
        None,
        p,
        &t(m.atime(), m.atime_nsec()),
        &t(m.mtime(), m.mtime_nsec()),
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    );
    Ok(())
}

fn c_path(p: &Path) -> Option<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).ok()
}

/// Copies the extended attributes of `src` onto `dst` (best effort: a file system without
/// them, or one refusing a namespace, just skips them).
fn copy_xattrs(src: &Path, dst: &Path) {
    let (Some(s), Some(d)) = (c_path(src), c_path(dst)) else {
        return;
    };
    let mut names = vec![0u8; 4096];
    // SAFETY: llistxattr writes at most `names.len()` bytes into the buffer.
    let n = unsafe { libc::llistxattr(s.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return;
    }
    names.truncate(n as usize);
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(cname) = std::ffi::CString::new(name) else {
            continue;
        };
        let mut val = vec![0u8; 64 * 1024];
        // SAFETY: lgetxattr writes at most `val.len()` bytes into the buffer.
        let len = unsafe {
            libc::lgetxattr(
                s.as_ptr(),
                cname.as_ptr(),
                val.as_mut_ptr().cast(),
                val.len(),
            )
        };
        if len < 0 {
            continue;
        }
        // SAFETY: reads `len` initialised bytes of `val`; the strings are NUL-terminated.
        unsafe {
            libc::lsetxattr(
                d.as_ptr(),
                cname.as_ptr(),
                val.as_ptr().cast(),
                len as usize,
                0,
            );
        }
    }
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> std::io::Result<()> {
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let (s, d) = (e.path(), dst.join(e.file_name()));
        let m = std::fs::symlink_metadata(&s)?;
        let ft = m.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&d)?;
            copy_dir(&s, &d, links)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&s)?, &d)?;
        } else {
            if m.nlink() > 1 {
                if let Some(first) = links.get(&(m.dev(), m.ino())) {
                    std::fs::hard_link(first, &d)?;
                    continue;
                }
                links.insert((m.dev(), m.ino()), d.clone());
            }
            if ft.is_file() {
                std::fs::copy(&s, &d)?;
            } else {
                let kind = nix::sys::stat::SFlag::from_bits_truncate(m.mode() & libc::S_IFMT);
                nix::sys::stat::mknod(
                    &d,
                    kind,
                    nix::sys::stat::Mode::from_bits_truncate(m.mode() & 0o7777),
                    m.rdev(),
                )?;
            }
        }
        own(&d, &m, &s)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- option mounts

fn mountinfo_escape(p: &Path) -> String {
    p.display()
        .to_string()
        .replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
        .replace('\n', "\\012")
}

fn mount_points_under(p: &Path) -> Vec<String> {
    let want = mountinfo_escape(p);
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| *m == want || m.starts_with(&format!("{want}/")))
        .collect()
}

fn is_mounted(p: &Path) -> bool {
    let want = mountinfo_escape(p);
    mount_points_under(p).contains(&want)
}

fn unmount_all_under(p: &Path) {
    let mut ms = mount_points_under(p);
    ms.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in ms {
        let m = m
            .replace("\\040", " ")
            .replace("\\011", "\t")
            .replace("\\012", "\n")
            .replace("\\134", "\\");
        let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Mounts a volume's `-o type/device/o` at its `_data`.
fn mount_volume(data: &Path, v: &VolumeRecord) -> ApiResult<()> {
    let (typ, device, o) = (v.opt("type"), v.opt("device"), v.opt("o"));
    let opts: Vec<String> = o
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let po = runtime::rootfs::parse_options(&opts);
    let mut flags = po.flags;
    if po.bind {
        flags |= nix::mount::MsFlags::MS_BIND;
        if po.recursive {
            flags |= nix::mount::MsFlags::MS_REC;
        }
    }
    let data_s = po.data.join(",");
    let fstype = if typ.is_empty() || typ == "none" {
        None
    } else {
        Some(typ)
    };
    let r = nix::mount::mount(
        Some(device),
        data,
        fstype,
        flags,
        (!data_s.is_empty()).then_some(data_s.as_str()),
    );
    if let Err(e) = r {
        return Err(ApiError::Internal(format!(
            "error while mounting volume '{}': failed to mount local volume: mount {device}:{}, flags: {:#x}, data: {data_s}: {}",
            data.display(),
            data.display(),
            flags.bits(),
            e.desc()
        )));
    }
    for p in po.propagation {
        let _ = nix::mount::mount(None::<&str>, data, None::<&str>, p, None::<&str>);
    }
    Ok(())
}

/// Before a container's runtime create: mounts its `-o`-mounted volumes not yet mounted.
pub fn activate(inner: &Inner, c: &ContainerRecord) -> ApiResult<()> {
    // Shared and slave propagation are checked at start, as dockerd does when it makes the
    // spec (a host mount can change between create and start): a server error, the container
    // stays created. A slave bind of (or over) the data root falls back quietly, as there.
    for m in c.mounts.iter().filter(|m| m.kind == "bind") {
        if let Err(e) = check_propagation(&m.source, &m.propagation) {
            let src = Path::new(&m.source);
            let root = inner.opts.data_root.as_path();
            let slave = matches!(m.propagation.as_str(), "slave" | "rslave");
            if !(slave && (src.starts_with(root) || root.starts_with(src))) {
                return Err(ApiError::Internal(e));
            }
        }
    }
    let vs = &inner.volumes;
    let mut st = vs.state.lock().map_err(|_| poisoned())?;
    for m in c.mounts.iter().filter(|m| m.kind == "volume") {
        let Some(v) = st.vols.get(&m.name).cloned() else {
            return Err(ApiError::NotFound(format!(
                "get {}: no such volume",
                m.name
            )));
        };
        if !v.needs_mount() {
            continue;
        }
        let data = vs.data(&v.name);
        if !is_mounted(&data) {
            std::fs::create_dir_all(&data).map_err(internal)?;
            mount_volume(&data, &v)?;
        }
        st.active
            .entry(v.name.clone())
            .or_default()
            .insert(c.id.clone());
    }
    let mut names = Vec::new();
    for m in c.mounts.iter().filter(|m| m.kind == "volume") {
        volume_event(
            inner,
            "mount",
            &m.name,
            &[
                ("container", c.id.clone()),
                ("destination", m.destination.clone()),
                ("propagation", m.propagation.clone()),
                ("read/write", m.rw.to_string()),
            ],
        );
        names.push(m.name.clone());
    }
    if !names.is_empty() {
        st.started.insert(c.id.clone(), names);
    }
    Ok(())
}

/// For a private mount namespace the calling thread has just entered (`docker cp`'s view
/// of a container): mounts volume `name`'s `-o type/device/o` at its `_data` if it needs one
/// that is not there (the container is stopped). The mount goes with the namespace.
pub(crate) fn mount_private(inner: &Inner, name: &str) -> ApiResult<()> {
    let v = {
        let st = inner.volumes.state.lock().map_err(|_| poisoned())?;
        match st.vols.get(name) {
            Some(v) => v.clone(),
            None => return Err(ApiError::NotFound(format!("get {name}: no such volume"))),
        }
    };
    if !v.needs_mount() {
        return Ok(());
    }
    let data = inner.volumes.data(name);
    // Right after the unshare the thread's mount table is still a copy of the daemon's.
    if is_mounted(&data) {
        return Ok(());
    }
    std::fs::create_dir_all(&data).map_err(internal)?;
    mount_volume(&data, &v)
}

/// After a container stopped (or failed to start): unmounts the `-o`-mounted volumes no
/// running container needs any more.
pub fn deactivate(inner: &Inner, id: &str) {
    let vs = &inner.volumes;
    let Ok(mut st) = vs.state.lock() else { return };
    for n in st.started.remove(id).unwrap_or_default() {
        volume_event(inner, "unmount", &n, &[("container", id.to_string())]);
    }
    let mut done = Vec::new();
    for (name, users) in st.active.iter_mut() {
        if users.remove(id) && users.is_empty() {
            done.push(name.clone());
        }
    }
    for n in done {
        st.active.remove(&n);
        let data = vs.data(&n);
        if is_mounted(&data) {
            if let Err(e) = nix::mount::umount2(&data, nix::mount::MntFlags::empty()) {
                eprintln!(
                    "berth daemon: warning: cannot unmount volume {n} at {}: {e}",
                    data.display()
                );
                let _ = nix::mount::umount2(&data, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

/// At daemon start (after the containers are reconciled): running containers hold their
/// volumes' mounts; `-o`-mounted volumes nobody runs with are unmounted.
pub fn reconcile(inner: &Inner) {
    let running: Vec<ContainerRecord> = match inner.containers.lock() {
        Ok(m) => m
            .values()
            .filter(|c| matches!(c.state.status.as_str(), "running" | "paused" | "restarting"))
            .cloned()
            .collect(),
        Err(_) => return,
    };
    let vs = &inner.volumes;
    let Ok(mut st) = vs.state.lock() else { return };
    for c in &running {
        let names: Vec<String> = c
            .mounts
            .iter()
            .filter(|m| m.kind == "volume")
            .map(|m| m.name.clone())
            .collect();
        if !names.is_empty() {
            st.started.insert(c.id.clone(), names);
        }
        for m in c.mounts.iter().filter(|m| m.kind == "volume") {
            if st.vols.get(&m.name).is_some_and(|v| v.needs_mount()) {
                st.active
                    .entry(m.name.clone())
                    .or_default()
                    .insert(c.id.clone());
            }
        }
    }
    let idle: Vec<String> = st
        .vols
        .values()
        .filter(|v| v.needs_mount() && !st.active.contains_key(&v.name))
        .map(|v| v.name.clone())
        .collect();
    for n in idle {
        let data = vs.data(&n);
        if is_mounted(&data) {
            let _ = nix::mount::umount2(&data, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// After a container's record is gone: releases its mounts and, with `remove_anonymous`
/// (`rm -v`, `--rm`), removes its anonymous volumes no other container uses.
pub fn container_removed(inner: &Inner, c: &ContainerRecord, remove_anonymous: bool) {
    deactivate(inner, &c.id);
    if !remove_anonymous {
        return;
    }
    let vs = &inner.volumes;
    let Ok(mut st) = vs.state.lock() else { return };
    for m in c.mounts.iter().filter(|m| m.kind == "volume") {
        let anon = st.vols.get(&m.name).is_some_and(|v| v.anonymous());
        if anon && in_use(inner, &st, &m.name).is_ok_and(|u| u.is_empty()) {
            if let Err(e) = vs.remove_locked(&inner, &mut st, &m.name) {
                eprintln!(
                    "berth daemon: warning: cannot remove volume {}: {e}",
                    m.name
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert!(valid_mode("ro,z"));
        assert!(valid_mode("rw,rshared,nocopy"));
        assert!(!valid_mode("ro,rw"));
        assert!(!valid_mode("bogus"));
        assert!(valid_mode(""));
    }

    #[test]
    fn raw_specs() {
        let s = parse_raw("/tmp:/x:ro", "").unwrap();
        assert_eq!((s.kind.as_str(), s.read_only), ("bind", true));
        let s = parse_raw("vol:/x", "").unwrap();
        assert_eq!(s.kind, "volume");
        let s = parse_raw("/data", "").unwrap();
        assert!(s.source.is_empty());
        assert_eq!(
            parse_raw("/x:rw", "").unwrap_err(),
            "invalid volume specification: '/x:rw'"
        );
        assert_eq!(
            parse_raw("v:/x:bogus", "").unwrap_err(),
            "invalid mode: bogus"
        );
        assert_eq!(
            parse_raw("v:rel", "").unwrap_err(),
            "invalid volume specification: 'v:rel': invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"
        );
        assert!(parse_raw("a:b:c:d", "").is_err());
    }

    #[test]
    fn names() {
        assert!(valid_name("data_1.x-y").is_ok());
        assert!(valid_name("a").is_err());
        assert!(valid_name("a/b").is_err());
        assert!(valid_name("_x").is_err());
    }

    #[test]
    fn copy_up_keeps_tree_owners_modes_and_links() {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let t = std::env::temp_dir().join(format!("berth-copyup-{}", std::process::id()));
        let (src, dst) = (t.join("src"), t.join("dst"));
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(src.join("sub/f"), "data").unwrap();
        std::fs::hard_link(src.join("sub/f"), src.join("hl")).unwrap();
        std::os::unix::fs::symlink("sub/f", src.join("ln")).unwrap();
        nix::unistd::mkfifo(
            &src.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o640),
        )
        .unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o1751)).unwrap();
        let root = nix::unistd::geteuid().is_root();
        if root {
            std::os::unix::fs::lchown(src.join("sub/f"), Some(7), Some(8)).unwrap();
        }
        let f = c_path(&src.join("sub/f")).unwrap();
        // SAFETY: NUL-terminated strings and a 3-byte value.
        let set = unsafe {
            libc::lsetxattr(
                f.as_ptr(),
                c"user.berth".as_ptr(),
                b"yes".as_ptr().cast(),
                3,
                0,
            )
        };
        copy_up(&src, &dst).unwrap();
        if set == 0 {
            let g = c_path(&dst.join("sub/f")).unwrap();
            let mut v = [0u8; 8];
            // SAFETY: lgetxattr writes at most 8 bytes into `v`.
            let n = unsafe {
                libc::lgetxattr(
                    g.as_ptr(),
                    c"user.berth".as_ptr(),
                    v.as_mut_ptr().cast(),
                    v.len(),
                )
            };
            assert_eq!(&v[..n.max(0) as usize], b"yes", "xattrs are copied");
        }
        assert_eq!(std::fs::read_to_string(dst.join("sub/f")).unwrap(), "data");
        assert_eq!(
            std::fs::read_link(dst.join("ln")).unwrap(),
            Path::new("sub/f")
        );
        let (a, b) = (
            std::fs::metadata(dst.join("sub/f")).unwrap(),
            std::fs::metadata(dst.join("hl")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino(), "hard links stay linked");
        assert!(std::fs::symlink_metadata(dst.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(std::fs::metadata(&dst).unwrap().mode() & 0o7777, 0o1751);
        if root {
            assert_eq!((a.uid(), a.gid()), (7, 8));
        }
        // A volume with content is left alone.
        std::fs::write(src.join("new"), "x").unwrap();
        copy_up(&src, &dst).unwrap();
        assert!(!dst.join("new").exists());
        std::fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn tmpfs_merge() {
        assert_eq!(
            tmpfs_options("size=1m,exec", false),
            vec!["nosuid", "nodev", "size=1m", "exec"]
        );
        assert_eq!(clean("/a/./b/../c/"), "/a/c");
        assert_eq!(size_text(1 << 20), "1m");
    }
}
