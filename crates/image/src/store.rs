//! Image metadata in one embedded, transactional store (`<root>/metadata.redb`, redb: ACID,
//! crash-safe): image records keyed by image ID (the config digest), repository tags and
//! digests pointing at them, and reference counts of snapshots (by chain ID) held by images
//! and containers. Lookups follow the docker CLI's rules (`name[:tag]`, `name@digest`, full
//! or short image IDs), and removal follows `docker rmi` (untag vs delete, conflicts, parent
//! pruning) and `docker image prune`.
//!
//! This module only changes metadata. Operations that free snapshots or blobs return them, so
//! the caller (see [`crate::Images`]) removes them from disk after the commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::digest::{Algorithm, Digest};
use crate::reference::{Reference, ReferenceError};

const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
const DIGESTS: TableDefinition<&str, &str> = TableDefinition::new("digests");
const SNAPSHOT_REFS: TableDefinition<&str, u64> = TableDefinition::new("snapshot_refs");
const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");

/// What went wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("image store {path}: {source} (is another berth daemon using this data root?)")]
    Db {
        /// The database file.
        path: PathBuf,
        /// The error.
        source: Box<redb::Error>,
    },
    /// A stored record could not be decoded.
    #[error("image store: corrupt record {key}: {message}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// No image matches.
    #[error("No such image: {0}")]
    NotFound(String),
    /// A short ID matches several images.
    #[error("ambiguous image ID {0:?}: it matches several images, give more digits")]
    Ambiguous(String),
    /// The reference is not valid.
    #[error("{0}")]
    Reference(#[from] ReferenceError),
    /// `docker rmi` conflicts (the messages are Docker's).
    #[error("{0}")]
    Conflict(String),
    /// The image config is not valid JSON or lacks its rootfs.
    #[error("invalid image config {id}: {message}")]
    InvalidConfig {
        /// The config's digest.
        id: Digest,
        /// What is wrong.
        message: String,
    },
    /// The layers given do not match the config's `rootfs.diff_ids`.
    #[error("image {id}: layers do not match the config's rootfs.diff_ids ({message})")]
    LayerMismatch {
        /// The image.
        id: Digest,
        /// Details.
        message: String,
    },
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerRecord {
    /// SHA-256 of the uncompressed layer tar.
    pub diff_id: Digest,
    /// Chain ID (the snapshot key).
    pub chain_id: Digest,
    /// The layer blob as stored/distributed (compressed), if known.
    pub blob: Option<Digest>,
    /// The blob's media type.
    pub media_type: Option<String>,
    /// The blob's size.
    pub blob_size: Option<u64>,
    /// Bytes of file content in the layer once unpacked.
    pub size: u64,
}

/// An image as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageRecord {
    /// The image ID: the digest of its config.
    pub id: Digest,
    /// Manifest digests known for this image (the platform manifest first; an index it was
    /// pulled through may follow).
    pub manifests: Vec<Digest>,
    /// The config's media type.
    pub config_media_type: String,
    /// The config's `created` field as written (RFC 3339), if any.
    pub created: Option<String>,
    /// `created` in seconds since the epoch (0 when absent or unparsable).
    pub created_unix: i64,
    /// When this image was added to the store (seconds since the epoch).
    pub added_unix: i64,
    /// Sum of the layers' unpacked sizes (Docker's `Size`).
    pub size: u64,
    /// The parent image (local builds and commits).
    pub parent: Option<Digest>,
    /// The config's `os`.
    pub os: String,
    /// The config's `architecture`.
    pub architecture: String,
    /// Layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// Repository tags (`docker.io/library/busybox:latest`), filled on read.
    #[serde(skip)]
    pub repo_tags: Vec<Reference>,
    /// Repository digests (`docker.io/library/busybox@sha256:…`), filled on read.
    #[serde(skip)]
    pub repo_digests: Vec<Reference>,
}

impl ImageRecord {
    /// Chain IDs of the layers, bottom first.
    pub fn chain_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.chain_id.clone()).collect()
    }

    /// Tags in the familiar form (`busybox:latest`), as `docker images`/the API show them.
    pub fn familiar_tags(&self) -> Vec<String> {
        self.repo_tags.iter().map(|r| r.familiar_string()).collect()
    }

    /// Digests in the familiar form (`busybox@sha256:…`).
    pub fn familiar_digests(&self) -> Vec<String> {
        self.repo_digests
            .iter()
            .map(|r| r.familiar_string())
            .collect()
    }

    /// No tags (Docker's "dangling" `<none>:<none>`).
    pub fn is_dangling(&self) -> bool {
        self.repo_tags.is_empty()
    }

    /// Every blob this image needs: manifests, config and layer blobs.
    pub fn blobs(&self) -> Vec<Digest> {
        let mut v = self.manifests.clone();
        v.push(self.id.clone());
        v.extend(self.layers.iter().filter_map(|l| l.blob.clone()));
        v
    }
}

/// What a container-usage check says about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Usage {
    /// No container uses it.
    Unused,
    /// A stopped container uses it (its ID is given).
    Stopped(String),
    /// A running container uses it (its ID is given).
    Running(String),
}

/// One line of `docker rmi` / prune output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteItem {
    /// A reference was removed (familiar form).
    Untagged(String),
    /// An image (its ID) or a layer (its chain ID) was deleted.
    Deleted(Digest),
}

/// The outcome of a removal: what to print, and what to delete from disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveOutcome {
    /// Docker's `Untagged:`/`Deleted:` lines, in order.
    pub items: Vec<DeleteItem>,
    /// Images deleted.
    pub deleted_images: Vec<Digest>,
    /// Snapshots (chain IDs) no longer referenced by any image or container.
    pub freed_snapshots: Vec<Digest>,
    /// Blobs no longer referenced by any image.
    pub freed_blobs: Vec<Digest>,
}

impl RemoveOutcome {
    fn merge(&mut self, o: RemoveOutcome) {
        self.items.extend(o.items);
        self.deleted_images.extend(o.deleted_images);
        self.freed_snapshots.extend(o.freed_snapshots);
        self.freed_blobs.extend(o.freed_blobs);
    }
}

/// Input to [`ImageStore::add_image`].
#[derive(Debug, Clone)]
pub struct NewImage<'a> {
    /// Manifest digests (platform manifest first), if any.
    pub manifests: Vec<Digest>,
    /// The config blob (its digest is the image ID).
    pub config: &'a [u8],
    /// The config media type.
    pub config_media_type: String,
    /// Layers, bottom first; their diffIDs must equal the config's `rootfs.diff_ids`.
    pub layers: Vec<LayerRecord>,
    /// Parent image, for local builds/commits.
    pub parent: Option<Digest>,
}

/// The image metadata store.
pub struct ImageStore {
    db: std::sync::Arc<Database>,
    path: PathBuf,
}

type Tx = redb::WriteTransaction;

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Seconds since the epoch of an RFC 3339 timestamp (`2024-01-02T03:04:05.123Z`,
/// `…+02:00`); `None` when it does not parse.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        std::str::from_utf8(b.get(r)?).ok()?.parse::<i64>().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let off = match b.get(i) {
        Some(b'Z') | Some(b'z') => 0,
        Some(c @ (b'+' | b'-')) => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if *c == b'+' {
                o
            } else {
                -o
            }
        }
        None => 0,
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + se - off)
}

/// The stored form of a reference: `name@digest` when it has a digest (a tag beside it is
/// dropped), else `name:tag` (`latest` when none).
fn canonical(r: &Reference) -> Reference {
    match r.digest() {
        Some(d) => r.name_only().with_digest(d.clone()),
        None => r.clone().with_default_tag(),
    }
}

fn ref_key(r: &Reference) -> String {
    r.to_string()
}

fn id_key(d: &Digest) -> String {
    d.to_string()
}

/// Docker's isSingleReference: at most one tag, and every digest reference in its repository.
fn is_single_reference(refs: &[Reference]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let mut single: Option<&Reference> = None;
    let mut canonical: HashSet<String> = HashSet::new();
    for r in refs {
        if r.digest().is_some() {
            canonical.insert(r.name());
        } else if single.is_none() {
            single = Some(r);
        } else {
            return false;
        }
    }
    let single = single.unwrap_or(&refs[0]);
    canonical.len() == 1 && canonical.contains(&single.name())
}

fn short_id(d: &Digest) -> &str {
    d.short()
}

fn short_container(c: &str) -> &str {
    &c[..c.len().min(12)]
}

impl ImageStore {
    /// Opens (creating) `<root>/metadata.redb`.
    pub fn open(root: &Path) -> Result<ImageStore, StoreError> {
        let path = root.join("metadata.redb");
        let mk = |e: redb::Error| StoreError::Db {
            path: path.clone(),
            source: Box::new(e),
        };
        std::fs::create_dir_all(root).map_err(|e| mk(redb::Error::Io(e)))?;
        let db = std::sync::Arc::new(Database::create(&path).map_err(|e| mk(e.into()))?);
        let s = ImageStore { db, path };
        let tx = s.begin()?;
        {
            tx.open_table(IMAGES).map_err(|e| s.db_err(e))?;
            tx.open_table(TAGS).map_err(|e| s.db_err(e))?;
            tx.open_table(DIGESTS).map_err(|e| s.db_err(e))?;
            tx.open_table(SNAPSHOT_REFS).map_err(|e| s.db_err(e))?;
            tx.open_table(CONTAINERS).map_err(|e| s.db_err(e))?;
        }
        s.commit(tx)?;
        Ok(s)
    }

    /// The database itself, for the engine's own tables: the daemon keeps all its state
    /// (images, containers, networks, volumes) in this one transactional file.
    pub fn database(&self) -> std::sync::Arc<Database> {
        self.db.clone()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db_err(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            source: Box::new(e.into()),
        }
    }

    fn begin(&self) -> Result<Tx, StoreError> {
        self.db.begin_write().map_err(|e| self.db_err(e))
    }

    fn commit(&self, tx: Tx) -> Result<(), StoreError> {
        tx.commit().map_err(|e| self.db_err(e))
    }

    // ---- low-level accessors inside a write transaction ---------------------------------

    fn get_rec(&self, tx: &Tx, id: &Digest) -> Result<Option<ImageRecord>, StoreError> {
        let t = tx.open_table(IMAGES).map_err(|e| self.db_err(e))?;
        let k = id_key(id);
        let v = t.get(k.as_str()).map_err(|e| self.db_err(e))?;
        match v {
            None => Ok(None),
            Some(g) => Ok(Some(decode(&k, g.value())?)),
        }
    }

    fn put_rec(&self, tx: &Tx, r: &ImageRecord) -> Result<(), StoreError> {
        let mut t = tx.open_table(IMAGES).map_err(|e| self.db_err(e))?;
        let json = serde_json::to_vec(r).map_err(|e| StoreError::Corrupt {
            key: r.id.to_string(),
            message: e.to_string(),
        })?;
        t.insert(id_key(&r.id).as_str(), json.as_slice())
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    fn all_recs(&self, tx: &Tx) -> Result<Vec<ImageRecord>, StoreError> {
        let t = tx.open_table(IMAGES).map_err(|e| self.db_err(e))?;
        let mut out = Vec::new();
        for item in t.iter().map_err(|e| self.db_err(e))? {
            let (k, v) = item.map_err(|e| self.db_err(e))?;
            out.push(decode(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// All (reference, image id) pairs of one table.
    fn refs_of_table(
        &self,
        tx: &Tx,
        def: TableDefinition<&str, &str>,
    ) -> Result<Vec<(Reference, Digest)>, StoreError> {
        let t = tx.open_table(def).map_err(|e| self.db_err(e))?;
        collect_refs(t.iter().map_err(|e| self.db_err(e))?, self)
    }

    /// Tags and digests of image `id`, sorted.
    fn refs_for(
        &self,
        tx: &Tx,
        id: &Digest,
    ) -> Result<(Vec<Reference>, Vec<Reference>), StoreError> {
        let mut tags: Vec<Reference> = self
            .refs_of_table(tx, TAGS)?
            .into_iter()
            .filter(|(_, i)| i == id)
            .map(|(r, _)| r)
            .collect();
        let mut digs: Vec<Reference> = self
            .refs_of_table(tx, DIGESTS)?
            .into_iter()
            .filter(|(_, i)| i == id)
            .map(|(r, _)| r)
            .collect();
        tags.sort();
        digs.sort();
        Ok((tags, digs))
    }

    fn fill(&self, tx: &Tx, mut r: ImageRecord) -> Result<ImageRecord, StoreError> {
        let (t, d) = self.refs_for(tx, &r.id)?;
        r.repo_tags = t;
        r.repo_digests = d;
        Ok(r)
    }

    fn ref_get(&self, tx: &Tx, r: &Reference) -> Result<Option<Digest>, StoreError> {
        let def = if r.digest().is_some() { DIGESTS } else { TAGS };
        let t = tx.open_table(def).map_err(|e| self.db_err(e))?;
        let k = ref_key(r);
        let v = t.get(k.as_str()).map_err(|e| self.db_err(e))?;
        match v {
            None => Ok(None),
            Some(g) => Ok(Some(Digest::parse(g.value()).map_err(|e| {
                StoreError::Corrupt {
                    key: k.clone(),
                    message: e.to_string(),
                }
            })?)),
        }
    }

    fn ref_remove(&self, tx: &Tx, r: &Reference) -> Result<Option<Digest>, StoreError> {
        let def = if r.digest().is_some() { DIGESTS } else { TAGS };
        let mut t = tx.open_table(def).map_err(|e| self.db_err(e))?;
        let k = ref_key(r);
        let old = t.remove(k.as_str()).map_err(|e| self.db_err(e))?;
        Ok(old.and_then(|g| Digest::parse(g.value()).ok()))
    }

    fn ref_set(&self, tx: &Tx, r: &Reference, id: &Digest) -> Result<Option<Digest>, StoreError> {
        let def = if r.digest().is_some() { DIGESTS } else { TAGS };
        let mut t = tx.open_table(def).map_err(|e| self.db_err(e))?;
        let k = ref_key(r);
        let v = id_key(id);
        let old = t
            .insert(k.as_str(), v.as_str())
            .map_err(|e| self.db_err(e))?;
        Ok(old.and_then(|g| Digest::parse(g.value()).ok()))
    }

    fn snap_adjust(&self, tx: &Tx, chains: &[Digest], up: bool) -> Result<Vec<Digest>, StoreError> {
        let mut t = tx.open_table(SNAPSHOT_REFS).map_err(|e| self.db_err(e))?;
        let mut freed = Vec::new();
        for c in chains {
            let k = id_key(c);
            let cur = t
                .get(k.as_str())
                .map_err(|e| self.db_err(e))?
                .map(|g| g.value())
                .unwrap_or(0);
            if up {
                t.insert(k.as_str(), cur + 1).map_err(|e| self.db_err(e))?;
            } else if cur <= 1 {
                t.remove(k.as_str()).map_err(|e| self.db_err(e))?;
                freed.push(c.clone());
            } else {
                t.insert(k.as_str(), cur - 1).map_err(|e| self.db_err(e))?;
            }
        }
        Ok(freed)
    }

    // ---- adding and tagging ---------------------------------------------------------------

    /// Adds an image (or merges new manifest digests into an existing one). The config is
    /// parsed for `created`, `os`, `architecture` and `rootfs.diff_ids`, which must match the
    /// layers. New images take a reference on each of their snapshots.
    pub fn add_image(&self, new: NewImage<'_>) -> Result<ImageRecord, StoreError> {
        let id = Digest::sha256(new.config);
        let cfg: serde_json::Value =
            serde_json::from_slice(new.config).map_err(|e| StoreError::InvalidConfig {
                id: id.clone(),
                message: e.to_string(),
            })?;
        let diff_ids: Vec<Digest> = match cfg.pointer("/rootfs/diff_ids") {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .and_then(|s| Digest::parse(s).ok())
                        .ok_or_else(|| StoreError::InvalidConfig {
                            id: id.clone(),
                            message: format!("bad diff_id {v}"),
                        })
                })
                .collect::<Result<_, _>>()?,
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(other) => {
                return Err(StoreError::InvalidConfig {
                    id,
                    message: format!("rootfs.diff_ids is not a list: {other}"),
                })
            }
        };
        let got: Vec<Digest> = new.layers.iter().map(|l| l.diff_id.clone()).collect();
        if got != diff_ids {
            return Err(StoreError::LayerMismatch {
                id,
                message: format!(
                    "config has {} diff_ids, {} layers given",
                    diff_ids.len(),
                    got.len()
                ),
            });
        }
        let want_chain = crate::snapshot::chain_ids(&diff_ids);
        let have_chain: Vec<Digest> = new.layers.iter().map(|l| l.chain_id.clone()).collect();
        if want_chain != have_chain {
            return Err(StoreError::LayerMismatch {
                id,
                message: "chain IDs do not follow from the diff_ids".into(),
            });
        }
        let created = cfg
            .get("created")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let tx = self.begin()?;
        let rec = match self.get_rec(&tx, &id)? {
            Some(mut existing) => {
                for m in &new.manifests {
                    if !existing.manifests.contains(m) {
                        existing.manifests.push(m.clone());
                    }
                }
                // Fill in blob information a previous add (e.g. from `import`) lacked.
                for (e, n) in existing.layers.iter_mut().zip(new.layers.iter()) {
                    if e.blob.is_none() {
                        e.blob = n.blob.clone();
                        e.media_type = n.media_type.clone();
                        e.blob_size = n.blob_size;
                    }
                }
                if existing.parent.is_none() {
                    existing.parent = new.parent.clone();
                }
                existing
            }
            None => {
                let rec = ImageRecord {
                    id: id.clone(),
                    manifests: new.manifests.clone(),
                    config_media_type: new.config_media_type.clone(),
                    created_unix: created.as_deref().and_then(parse_rfc3339).unwrap_or(0),
                    created,
                    added_unix: now_unix(),
                    size: new.layers.iter().map(|l| l.size).sum(),
                    parent: new.parent.clone(),
                    os: cfg
                        .get("os")
                        .and_then(|v| v.as_str())
                        .unwrap_or("linux")
                        .to_string(),
                    architecture: cfg
                        .get("architecture")
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string(),
                    layers: new.layers.clone(),
                    repo_tags: Vec::new(),
                    repo_digests: Vec::new(),
                };
                self.snap_adjust(&tx, &rec.chain_ids(), true)?;
                rec
            }
        };
        self.put_rec(&tx, &rec)?;
        let rec = self.fill(&tx, rec)?;
        self.commit(tx)?;
        Ok(rec)
    }

    /// Points `reference` (a tag, or a `name@digest`) at image `id`. Returns the image it
    /// pointed at before, if another.
    pub fn tag(&self, id: &Digest, reference: &Reference) -> Result<Option<Digest>, StoreError> {
        let tx = self.begin()?;
        if self.get_rec(&tx, id)?.is_none() {
            return Err(StoreError::NotFound(id.to_string()));
        }
        let old = self.ref_set(&tx, &canonical(reference), id)?;
        self.commit(tx)?;
        Ok(old.filter(|o| o != id))
    }

    /// Removes a reference (a tag — `latest` when none is given — or a `name@digest`).
    /// Returns the image it pointed at.
    pub fn untag(&self, reference: &Reference) -> Result<Option<Digest>, StoreError> {
        let tx = self.begin()?;
        let old = self.ref_remove(&tx, &canonical(reference))?;
        self.commit(tx)?;
        Ok(old)
    }

    // ---- lookups --------------------------------------------------------------------------

    /// The image with this ID.
    pub fn get(&self, id: &Digest) -> Result<Option<ImageRecord>, StoreError> {
        let tx = self.begin()?;
        let r = match self.get_rec(&tx, id)? {
            Some(r) => Some(self.fill(&tx, r)?),
            None => None,
        };
        tx.abort().map_err(|e| self.db_err(e))?;
        Ok(r)
    }

    fn resolve_tx(&self, tx: &Tx, s: &str) -> Result<(ImageRecord, bool), StoreError> {
        // A full ID (64 hex, or sha256:<64 hex>).
        let full = if crate::reference::is_identifier(s) {
            Digest::from_hex(Algorithm::Sha256, s).ok()
        } else if s.starts_with("sha256:") {
            Digest::parse(s).ok()
        } else {
            None
        };
        if let Some(d) = full {
            return match self.get_rec(tx, &d)? {
                Some(r) => Ok((r, true)),
                None => Err(StoreError::NotFound(s.to_string())),
            };
        }
        // A reference: name[:tag] or name@digest.
        if let Ok(r) = Reference::parse_normalized(s) {
            let r = canonical(&r);
            if let Some(id) = self.ref_get(tx, &r)? {
                if let Some(rec) = self.get_rec(tx, &id)? {
                    return Ok((rec, false));
                }
            }
        }
        // A short ID prefix.
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hex = hex.to_ascii_lowercase();
            let mut found: Option<ImageRecord> = None;
            for r in self.all_recs(tx)? {
                if r.id.hex().starts_with(&hex) {
                    if found.is_some() {
                        return Err(StoreError::Ambiguous(s.to_string()));
                    }
                    found = Some(r);
                }
            }
            if let Some(r) = found {
                return Ok((r, true));
            }
        }
        Err(StoreError::NotFound(s.to_string()))
    }

    /// Finds an image the way the docker CLI does: a full image ID (`sha256:…` or 64 hex), a
    /// reference (`busybox`, `busybox:1.36`, `localhost:5000/x@sha256:…`; `latest` is implied),
    /// or a unique prefix of an image ID (`3f57d9401f8d`, `sha256:3f57`).
    pub fn resolve(&self, s: &str) -> Result<ImageRecord, StoreError> {
        let tx = self.begin()?;
        let (r, _) = self.resolve_tx(&tx, s)?;
        let r = self.fill(&tx, r)?;
        tx.abort().map_err(|e| self.db_err(e))?;
        Ok(r)
    }

    /// Every image, with tags and digests, newest first.
    pub fn list(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let tx = self.begin()?;
        let recs = self.all_recs(&tx)?;
        let mut tags: HashMap<Digest, Vec<Reference>> = HashMap::new();
        for (r, id) in self.refs_of_table(&tx, TAGS)? {
            tags.entry(id).or_default().push(r);
        }
        let mut digs: HashMap<Digest, Vec<Reference>> = HashMap::new();
        for (r, id) in self.refs_of_table(&tx, DIGESTS)? {
            digs.entry(id).or_default().push(r);
        }
        tx.abort().map_err(|e| self.db_err(e))?;
        let mut out: Vec<ImageRecord> = recs
            .into_iter()
            .map(|mut r| {
                r.repo_tags = tags.remove(&r.id).unwrap_or_default();
                r.repo_tags.sort();
                r.repo_digests = digs.remove(&r.id).unwrap_or_default();
                r.repo_digests.sort();
                r
            })
            .collect();
        out.sort_by(|a, b| {
            b.created_unix
                .cmp(&a.created_unix)
                .then(b.added_unix.cmp(&a.added_unix))
                .then(a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// Images whose parent is `id`.
    pub fn children(&self, id: &Digest) -> Result<Vec<Digest>, StoreError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|r| r.parent.as_ref() == Some(id))
            .map(|r| r.id)
            .collect())
    }

    /// Every blob referenced by some image (the `keep` set for content GC).
    pub fn referenced_blobs(&self) -> Result<HashSet<Digest>, StoreError> {
        Ok(self.list()?.iter().flat_map(|r| r.blobs()).collect())
    }

    /// Snapshot reference counts (chain ID -> count).
    pub fn snapshot_refs(&self) -> Result<BTreeMap<Digest, u64>, StoreError> {
        let tx = self.begin()?;
        let mut out = BTreeMap::new();
        {
            let t = tx.open_table(SNAPSHOT_REFS).map_err(|e| self.db_err(e))?;
            for item in t.iter().map_err(|e| self.db_err(e))? {
                let (k, v) = item.map_err(|e| self.db_err(e))?;
                if let Ok(d) = Digest::parse(k.value()) {
                    out.insert(d, v.value());
                }
            }
        }
        tx.abort().map_err(|e| self.db_err(e))?;
        Ok(out)
    }

    /// Number of images.
    pub fn len(&self) -> Result<u64, StoreError> {
        let r = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let t = r.open_table(IMAGES).map_err(|e| self.db_err(e))?;
        t.len().map_err(|e| self.db_err(e))
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    // ---- containers -----------------------------------------------------------------------

    /// Records that container `container` uses image `id`'s snapshots (taking a reference on
    /// each, so they survive `rmi -f` of the image while the container exists).
    pub fn add_container(&self, container: &str, id: &Digest) -> Result<(), StoreError> {
        let tx = self.begin()?;
        let rec = self
            .get_rec(&tx, id)?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let chains = rec.chain_ids();
        {
            let mut t = tx.open_table(CONTAINERS).map_err(|e| self.db_err(e))?;
            if t.get(container).map_err(|e| self.db_err(e))?.is_some() {
                drop(t);
                tx.abort().map_err(|e| self.db_err(e))?;
                return Ok(());
            }
            let json = serde_json::to_vec(&chains).map_err(|e| StoreError::Corrupt {
                key: container.to_string(),
                message: e.to_string(),
            })?;
            t.insert(container, json.as_slice())
                .map_err(|e| self.db_err(e))?;
        }
        self.snap_adjust(&tx, &chains, true)?;
        self.commit(tx)
    }

    /// Drops container `container`'s snapshot references; returns snapshots now unused.
    pub fn remove_container(&self, container: &str) -> Result<Vec<Digest>, StoreError> {
        let tx = self.begin()?;
        let chains: Option<Vec<Digest>> =
            {
                let mut t = tx.open_table(CONTAINERS).map_err(|e| self.db_err(e))?;
                let v = t.remove(container).map_err(|e| self.db_err(e))?;
                match v {
                    None => None,
                    Some(g) => Some(serde_json::from_slice(g.value()).map_err(|e| {
                        StoreError::Corrupt {
                            key: container.to_string(),
                            message: e.to_string(),
                        }
                    })?),
                }
            };
        let freed = match chains {
            Some(c) => self.snap_adjust(&tx, &c, false)?,
            None => Vec::new(),
        };
        self.commit(tx)?;
        Ok(freed)
    }

    // ---- removal --------------------------------------------------------------------------

    fn conflict(
        &self,
        tx: &Tx,
        rec: &ImageRecord,
        hard: bool,
        soft_stopped: bool,
        soft_refs: bool,
        usage: &dyn Fn(&Digest) -> Usage,
    ) -> Result<Option<(String, bool)>, StoreError> {
        let id = &rec.id;
        let msg = |m: String, hard: bool| {
            Some((
                format!(
                    "conflict: unable to delete {} ({}) - {m}",
                    short_id(id),
                    if hard {
                        "cannot be forced"
                    } else {
                        "must be forced"
                    }
                ),
                hard,
            ))
        };
        if hard
            && self
                .all_recs(tx)?
                .iter()
                .any(|r| r.parent.as_ref() == Some(id))
        {
            return Ok(msg("image has dependent child images".into(), true));
        }
        let u = usage(id);
        if hard {
            if let Usage::Running(c) = &u {
                return Ok(msg(
                    format!(
                        "image is being used by running container {}",
                        short_container(c)
                    ),
                    true,
                ));
            }
        }
        if soft_refs {
            let (t, d) = self.refs_for(tx, id)?;
            if !t.is_empty() || !d.is_empty() {
                return Ok(msg(
                    "image is referenced in multiple repositories".into(),
                    false,
                ));
            }
        }
        if soft_stopped {
            if let Usage::Stopped(c) = &u {
                return Ok(msg(
                    format!(
                        "image is being used by stopped container {}",
                        short_container(c)
                    ),
                    false,
                ));
            }
        }
        Ok(None)
    }

    /// Deletes image `id` after conflict checks (Docker's imageDeleteHelper).
    #[allow(clippy::too_many_arguments)]
    fn delete_helper(
        &self,
        tx: &Tx,
        id: &Digest,
        force: bool,
        prune: bool,
        quiet: bool,
        usage: &dyn Fn(&Digest) -> Usage,
        out: &mut RemoveOutcome,
    ) -> Result<(), StoreError> {
        let Some(rec) = self.get_rec(tx, id)? else {
            return Ok(());
        };
        if let Some((m, _)) = self.conflict(tx, &rec, true, !force, !force, usage)? {
            if quiet {
                return Ok(());
            }
            return Err(StoreError::Conflict(m));
        }
        let (tags, digs) = self.refs_for(tx, id)?;
        for r in tags.iter().chain(digs.iter()) {
            self.ref_remove(tx, r)?;
            out.items.push(DeleteItem::Untagged(r.familiar_string()));
        }
        {
            let mut t = tx.open_table(IMAGES).map_err(|e| self.db_err(e))?;
            t.remove(id_key(id).as_str()).map_err(|e| self.db_err(e))?;
        }
        out.items.push(DeleteItem::Deleted(id.clone()));
        out.deleted_images.push(id.clone());
        let freed = self.snap_adjust(tx, &rec.chain_ids(), false)?;
        // Docker lists freed layers top first.
        for c in freed.iter().rev() {
            out.items.push(DeleteItem::Deleted(c.clone()));
        }
        out.freed_snapshots.extend(freed);
        let still: HashSet<Digest> = self.all_recs(tx)?.iter().flat_map(|r| r.blobs()).collect();
        for b in rec.blobs() {
            if !still.contains(&b) && !out.freed_blobs.contains(&b) {
                out.freed_blobs.push(b);
            }
        }
        if !prune {
            return Ok(());
        }
        if let Some(parent) = &rec.parent {
            let Some(prec) = self.get_rec(tx, parent)? else {
                return Ok(());
            };
            let (pt, pd) = self.refs_for(tx, parent)?;
            if !pt.is_empty() || !pd.is_empty() || usage(parent) != Usage::Unused {
                return Ok(());
            }
            let _ = prec;
            self.delete_helper(tx, parent, false, true, true, usage, out)?;
        }
        Ok(())
    }

    fn remove_tx(
        &self,
        tx: &Tx,
        s: &str,
        force: bool,
        prune: bool,
        usage: &dyn Fn(&Digest) -> Usage,
    ) -> Result<RemoveOutcome, StoreError> {
        let mut out = RemoveOutcome::default();
        let (rec, by_id) = self.resolve_tx(tx, s)?;
        let id = rec.id.clone();
        let (tags, digs) = self.refs_for(tx, &id)?;
        let mut refs: Vec<Reference> = tags.into_iter().chain(digs).collect();
        if !by_id {
            if !force && is_single_reference(&refs) {
                if let Usage::Stopped(c) | Usage::Running(c) = usage(&id) {
                    return Err(StoreError::Conflict(format!(
                        "conflict: unable to remove repository reference \"{s}\" (must force) - container {} is using its referenced image {}",
                        short_container(&c),
                        short_id(&id)
                    )));
                }
            }
            let parsed = canonical(&Reference::parse_normalized(s)?);
            self.ref_remove(tx, &parsed)?;
            out.items
                .push(DeleteItem::Untagged(parsed.familiar_string()));
            refs.retain(|r| r != &parsed);
            if parsed.digest().is_none() {
                let same_repo_tag = refs
                    .iter()
                    .any(|r| r.digest().is_none() && r.name() == parsed.name());
                if !same_repo_tag {
                    let mut remaining = Vec::new();
                    for r in refs {
                        if r.digest().is_some() && r.name() == parsed.name() {
                            self.ref_remove(tx, &r)?;
                            out.items.push(DeleteItem::Untagged(r.familiar_string()));
                        } else {
                            remaining.push(r);
                        }
                    }
                    refs = remaining;
                }
            }
            if !refs.is_empty() {
                return Ok(out);
            }
            // The last reference is gone: delete the image unless something conflicts, in
            // which case the untag alone stands (Docker's "quiet" delete).
            self.delete_helper(tx, &id, force, prune, true, usage, &mut out)?;
            return Ok(out);
        } else if is_single_reference(&refs) {
            if let Some((m, _)) = self.conflict(tx, &rec, true, !force, false, usage)? {
                return Err(StoreError::Conflict(m));
            }
            for r in &refs {
                self.ref_remove(tx, r)?;
                out.items.push(DeleteItem::Untagged(r.familiar_string()));
            }
        }
        self.delete_helper(tx, &id, force, prune, false, usage, &mut out)?;
        Ok(out)
    }

    /// `docker rmi [-f] [--no-prune] NAME|ID`: removes a reference, and the image when no
    /// reference is left (or when given by ID). `usage` tells whether containers use an image;
    /// `prune` (Docker's default, off with `--no-prune`) also deletes untagged parents.
    /// Conflicts are errors with Docker's messages; on error nothing changes.
    pub fn remove(
        &self,
        s: &str,
        force: bool,
        prune: bool,
        usage: &dyn Fn(&Digest) -> Usage,
    ) -> Result<RemoveOutcome, StoreError> {
        let tx = self.begin()?;
        match self.remove_tx(&tx, s, force, prune, usage) {
            Ok(o) => {
                self.commit(tx)?;
                Ok(o)
            }
            Err(e) => {
                let _ = tx.abort();
                Err(e)
            }
        }
    }

    /// `docker image prune [-a]`: removes dangling images (no tags, no children), or with
    /// `all` every image no container uses; `filter` further selects candidates (`until`,
    /// `label` filters). Images in conflict are skipped.
    pub fn prune(
        &self,
        all: bool,
        usage: &dyn Fn(&Digest) -> Usage,
        filter: &dyn Fn(&ImageRecord) -> bool,
    ) -> Result<RemoveOutcome, StoreError> {
        let images = self.list()?;
        let parents: HashSet<Digest> = images.iter().filter_map(|r| r.parent.clone()).collect();
        let mut total = RemoveOutcome::default();
        for img in &images {
            let has_children = parents.contains(&img.id);
            if !all && has_children {
                continue;
            }
            if usage(&img.id) != Usage::Unused {
                continue;
            }
            let refs: Vec<&Reference> = img
                .repo_tags
                .iter()
                .chain(img.repo_digests.iter())
                .collect();
            if refs.is_empty() && has_children {
                continue; // an intermediate image
            }
            if !filter(img) {
                continue;
            }
            let tx = self.begin()?;
            // The image may be gone already (pruned as a parent).
            if self.get_rec(&tx, &img.id)?.is_none() {
                tx.abort().map_err(|e| self.db_err(e))?;
                continue;
            }
            let mut out = RemoveOutcome::default();
            let res: Result<(), StoreError> = (|| {
                if !refs.is_empty() {
                    let should = all || img.repo_tags.is_empty();
                    if should {
                        for r in &refs {
                            match self.remove_tx(&tx, &r.to_string(), false, true, usage) {
                                Ok(o) => out.merge(o),
                                Err(StoreError::NotFound(_)) => {}
                                Err(e) => return Err(e),
                            }
                        }
                    }
                } else {
                    out.merge(self.remove_tx(&tx, img.id.hex(), false, true, usage)?);
                }
                Ok(())
            })();
            match res {
                Ok(()) => {
                    self.commit(tx)?;
                    total.merge(out);
                }
                Err(StoreError::Conflict(_)) => {
                    let _ = tx.abort();
                }
                Err(e) => {
                    let _ = tx.abort();
                    return Err(e);
                }
            }
        }
        Ok(total)
    }
}

fn decode(key: &str, v: &[u8]) -> Result<ImageRecord, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    })
}

fn collect_refs<'a, I>(iter: I, s: &ImageStore) -> Result<Vec<(Reference, Digest)>, StoreError>
where
    I: Iterator<
        Item = Result<
            (
                redb::AccessGuard<'a, &'static str>,
                redb::AccessGuard<'a, &'static str>,
            ),
            redb::StorageError,
        >,
    >,
{
    let mut out = Vec::new();
    for item in iter {
        let (k, v) = item.map_err(|e| s.db_err(e))?;
        let r = Reference::parse_normalized(k.value()).map_err(|e| StoreError::Corrupt {
            key: k.value().to_string(),
            message: e.to_string(),
        })?;
        let d = Digest::parse(v.value()).map_err(|e| StoreError::Corrupt {
            key: k.value().to_string(),
            message: e.to_string(),
        })?;
        out.push((r, d));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
