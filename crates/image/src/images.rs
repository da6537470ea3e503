//! The image service: the content store, the metadata store and the snapshots of one data
//! root tied together. Adding an image from a manifest (pull, load), building one from
//! layers (import, commit), `tag`, `rmi`, `prune`, `history`, container root filesystems,
//! and garbage collection all go through here so that blobs, snapshots and records stay
//! consistent: metadata is committed first, then what it freed is deleted from disk.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::config::{
    now_rfc3339, Descriptor, History, ImageConfig, Manifest, RunConfig, MEDIA_OCI_CONFIG,
    MEDIA_OCI_MANIFEST,
};
use crate::content::{ContentError, ContentStore};
use crate::digest::Digest;
use crate::layer::{write_tar, Compression, Compressor, LayerError, TarOptions};
use crate::reference::{Reference, ReferenceError};
use crate::snapshot::{self, LayerSource, RootfsLayout, SnapshotError, Snapshotter};
use crate::store::{
    ImageRecord, ImageStore, LayerRecord, NewImage, RemoveOutcome, StoreError, Usage,
};

/// What went wrong in the image service.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    /// Content store.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// Metadata store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Snapshots.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Layer tar.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// Reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A manifest, config or archive is malformed.
    #[error("{0}")]
    Invalid(String),
    /// A filesystem operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// One row of `docker history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image ID for the top row; `None` (Docker's `<missing>`) below it.
    pub id: Option<Digest>,
    /// When (RFC 3339), if recorded.
    pub created: Option<String>,
    /// `created` in seconds since the epoch (0 if absent).
    pub created_unix: i64,
    /// The step.
    pub created_by: String,
    /// Bytes added by the step's layer (0 for empty layers).
    pub size: u64,
    /// Comment.
    pub comment: String,
    /// True when the step made no layer.
    pub empty_layer: bool,
}

/// A layer blob in the content store, to be part of a new image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLayer {
    /// The blob.
    pub blob: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// Its diffID.
    pub diff_id: Digest,
}

/// `docker commit` options.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Run settings replacing the base image's (`--change`, or the container's config).
    pub config: Option<RunConfig>,
    /// `--author`.
    pub author: Option<String>,
    /// `--message`.
    pub comment: Option<String>,
    /// The history line (Docker writes the container's command).
    pub created_by: Option<String>,
    /// Paths of the upper directory (relative, no leading `/`) left out of the layer: the
    /// mount points every container gets (Docker keeps them in its init layer).
    pub exclude: Vec<String>,
}

/// The image service over one data root.
pub struct Images {
    root: PathBuf,
    /// Blobs.
    pub content: ContentStore,
    /// Metadata.
    pub store: ImageStore,
    /// Unpacked layers.
    pub snapshots: Snapshotter,
}

fn invalid(m: impl Into<String>) -> ImagesError {
    ImagesError::Invalid(m.into())
}

impl Images {
    /// Opens (creating) the image service at `root` (`blobs/`, `ingest/`, `snapshots/`,
    /// `metadata.redb`, `tmp/`).
    pub fn open(root: &Path) -> Result<Images, ImagesError> {
        let content = ContentStore::open(root)?;
        let snapshots = Snapshotter::open(root)?;
        let store = ImageStore::open(root)?;
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|source| ImagesError::Io {
            what: "creating",
            path: tmp.clone(),
            source,
        })?;
        Ok(Images {
            root: root.to_path_buf(),
            content,
            store,
            snapshots,
        })
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A fresh private temporary directory under `<root>/tmp` (removed when dropped).
    pub fn tempdir(&self) -> Result<TempDir, ImagesError> {
        let p = self.root.join("tmp").join(crate::content::random_hex(8)?);
        std::fs::create_dir(&p).map_err(|source| ImagesError::Io {
            what: "creating",
            path: p.clone(),
            source,
        })?;
        Ok(TempDir(p))
    }

    /// Adds the image whose manifest (and config and layer blobs) are already in the content
    /// store: every blob is verified, layers are unpacked into snapshots (diffIDs checked
    /// against the config), and the record is committed. `extra_manifests` are other
    /// manifest digests to remember (an index it was pulled through).
    pub fn add_from_manifest(
        &self,
        manifest: &Digest,
        extra_manifests: &[Digest],
        parent: Option<&Digest>,
    ) -> Result<ImageRecord, ImagesError> {
        let mbytes = self.content.get_bytes(manifest)?;
        let m: Manifest = serde_json::from_slice(&mbytes).map_err(|e| {
            invalid(format!(
                "manifest {manifest} is not a valid image manifest: {e}"
            ))
        })?;
        let cbytes = self.content.get_bytes(&m.config.digest)?;
        let cfg = ImageConfig::parse(&cbytes)
            .map_err(|e| invalid(format!("image config {} is invalid: {e}", m.config.digest)))?;
        if cfg.rootfs.diff_ids.len() != m.layers.len() {
            return Err(invalid(format!(
                "manifest {manifest} has {} layers but its config lists {} diff_ids",
                m.layers.len(),
                cfg.rootfs.diff_ids.len()
            )));
        }
        let sources: Vec<LayerSource> = m
            .layers
            .iter()
            .zip(cfg.rootfs.diff_ids.iter())
            .map(|(l, d)| LayerSource {
                blob: l.digest.clone(),
                diff_id: d.clone(),
            })
            .collect();
        for l in &m.layers {
            let size = self.content.size(&l.digest)?;
            if size != l.size {
                return Err(invalid(format!(
                    "layer {} is {size} bytes but the manifest says {}",
                    l.digest, l.size
                )));
            }
        }
        let snaps = self.snapshots.prepare_layers(&self.content, &sources)?;
        let layers = m
            .layers
            .iter()
            .zip(snaps.iter())
            .map(|(l, s)| LayerRecord {
                diff_id: s.diff_id.clone(),
                chain_id: s.chain_id.clone(),
                blob: Some(l.digest.clone()),
                media_type: Some(l.media_type.clone()),
                blob_size: Some(l.size),
                size: s.size,
            })
            .collect();
        let mut manifests = vec![manifest.clone()];
        manifests.extend(extra_manifests.iter().cloned());
        let config_media_type = if m.config.media_type.is_empty() {
            MEDIA_OCI_CONFIG.to_string()
        } else {
            m.config.media_type.clone()
        };
        Ok(self.store.add_image(NewImage {
            manifests,
            config: &cbytes,
            config_media_type,
            layers,
            parent: parent.cloned(),
        })?)
    }

    /// Writes `config` (with `rootfs.diff_ids` set from `layers`) and an OCI manifest into
    /// the content store and adds the image.
    pub fn create_image(
        &self,
        mut config: ImageConfig,
        layers: &[NewLayer],
        parent: Option<&Digest>,
    ) -> Result<ImageRecord, ImagesError> {
        config.rootfs.kind = "layers".into();
        config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
        let cbytes = serde_json::to_vec(&config)
            .map_err(|e| invalid(format!("encoding image config: {e}")))?;
        self.create_image_raw(&cbytes, layers, parent)
    }

    /// Like [`Images::create_image`] with the config blob given byte for byte (its digest is
    /// the image ID; `docker load` must keep it). Its `rootfs.diff_ids` must match `layers`.
    pub fn create_image_raw(
        &self,
        cbytes: &[u8],
        layers: &[NewLayer],
        parent: Option<&Digest>,
    ) -> Result<ImageRecord, ImagesError> {
        let cdigest = self.content.put_bytes(cbytes)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: MEDIA_OCI_CONFIG.into(),
                digest: cdigest,
                size: cbytes.len() as u64,
                annotations: None,
                platform: None,
                urls: None,
            },
            layers: layers
                .iter()
                .map(|l| Descriptor {
                    media_type: l.media_type.clone(),
                    digest: l.blob.clone(),
                    size: l.size,
                    annotations: None,
                    platform: None,
                    urls: None,
                })
                .collect(),
            annotations: None,
        };
        let mbytes = serde_json::to_vec(&manifest)
            .map_err(|e| invalid(format!("encoding manifest: {e}")))?;
        let mdigest = self.content.put_bytes(&mbytes)?;
        self.add_from_manifest(&mdigest, &[], parent)
    }

    /// Finds an image (see [`ImageStore::resolve`]).
    pub fn resolve(&self, s: &str) -> Result<ImageRecord, ImagesError> {
        Ok(self.store.resolve(s)?)
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImagesError> {
        Ok(self.store.list()?)
    }

    /// The parsed config of an image.
    pub fn config(&self, id: &Digest) -> Result<ImageConfig, ImagesError> {
        let b = self.content.get_bytes(id)?;
        ImageConfig::parse(&b).map_err(|e| invalid(format!("image config {id} is invalid: {e}")))
    }

    /// The raw config blob of an image (what `docker inspect` is built from).
    pub fn config_bytes(&self, id: &Digest) -> Result<Vec<u8>, ImagesError> {
        Ok(self.content.get_bytes(id)?)
    }

    /// The image's (platform) manifest: its digest and parsed form.
    pub fn manifest(&self, img: &ImageRecord) -> Result<(Digest, Manifest), ImagesError> {
        let d = img
            .manifests
            .first()
            .cloned()
            .ok_or_else(|| invalid(format!("image {} has no manifest", img.id)))?;
        let b = self.content.get_bytes(&d)?;
        let m = serde_json::from_slice(&b)
            .map_err(|e| invalid(format!("manifest {d} is invalid: {e}")))?;
        Ok((d, m))
    }

    /// What a push sends for an image: its manifest's digest, bytes as stored and media
    /// type (from the document, OCI's when it names none).
    pub fn manifest_for_push(
        &self,
        img: &ImageRecord,
    ) -> Result<(Digest, Vec<u8>, String), ImagesError> {
        let (d, _) = self.manifest(img)?;
        let bytes = self.content.get_bytes(&d)?;
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(String::from)
            })
            .unwrap_or_else(|| MEDIA_OCI_MANIFEST.to_string());
        Ok((d, bytes, media_type))
    }

    /// `docker tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageRecord, ImagesError> {
        let img = self.store.resolve(source)?;
        let r = Reference::parse(target)?;
        if r.digest().is_some() {
            return Err(invalid(format!(
                "refusing to create a tag with a digest reference: {target}"
            )));
        }
        self.store.tag(&img.id, &r)?;
        Ok(self.store.resolve(&img.id.to_string())?)
    }

    /// `docker history`: newest step first.
    pub fn history(&self, s: &str) -> Result<Vec<HistoryEntry>, ImagesError> {
        let img = self.store.resolve(s)?;
        let cfg = self.config(&img.id)?;
        let hist = cfg.history.clone().unwrap_or_default();
        let mut rows = Vec::new();
        let mut li = 0usize;
        if hist.is_empty() {
            for l in &img.layers {
                rows.push(HistoryEntry {
                    id: None,
                    created: cfg.created.clone(),
                    created_unix: cfg
                        .created
                        .as_deref()
                        .and_then(crate::store::parse_rfc3339)
                        .unwrap_or(0),
                    created_by: String::new(),
                    size: l.size,
                    comment: String::new(),
                    empty_layer: false,
                });
            }
        }
        for h in &hist {
            let empty = h.empty_layer.unwrap_or(false);
            let size = if empty {
                0
            } else {
                let s = img.layers.get(li).map(|l| l.size).unwrap_or(0);
                li += 1;
                s
            };
            rows.push(HistoryEntry {
                id: None,
                created: h.created.clone(),
                created_unix: h
                    .created
                    .as_deref()
                    .and_then(crate::store::parse_rfc3339)
                    .unwrap_or(0),
                created_by: h.created_by.clone().unwrap_or_default(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
                empty_layer: empty,
            });
        }
        rows.reverse();
        if let Some(first) = rows.first_mut() {
            first.id = Some(img.id.clone());
        }
        Ok(rows)
    }

    fn delete_freed(&self, o: &RemoveOutcome) -> Result<(), ImagesError> {
        for c in &o.freed_snapshots {
            self.snapshots.remove(c)?;
        }
        for b in &o.freed_blobs {
            self.content.delete(b)?;
        }
        Ok(())
    }

    /// `docker rmi`: see [`ImageStore::remove`]; freed snapshots and blobs are deleted.
    pub fn remove(
        &self,
        s: &str,
        force: bool,
        prune: bool,
        usage: &dyn Fn(&Digest) -> Usage,
    ) -> Result<RemoveOutcome, ImagesError> {
        let o = self.store.remove(s, force, prune, usage)?;
        self.delete_freed(&o)?;
        Ok(o)
    }

    /// `docker image prune [-a]`: returns what was removed and the bytes reclaimed (unpacked
    /// layer sizes, as Docker reports).
    pub fn prune(
        &self,
        all: bool,
        usage: &dyn Fn(&Digest) -> Usage,
        filter: &dyn Fn(&ImageRecord) -> bool,
    ) -> Result<(RemoveOutcome, u64), ImagesError> {
        let o = self.store.prune(all, usage, filter)?;
        let mut reclaimed = 0;
        for c in &o.freed_snapshots {
            if let Ok(i) = self.snapshots.info(c) {
                reclaimed += i.size;
            }
        }
        self.delete_freed(&o)?;
        Ok((o, reclaimed))
    }

    /// Removes snapshots no image or container references and blobs no image references
    /// (recovery after a crash between a metadata commit and the disk cleanup). Returns the
    /// numbers of snapshots and blobs removed.
    pub fn gc(&self) -> Result<(usize, usize), ImagesError> {
        let refs = self.store.snapshot_refs()?;
        let mut ns = 0;
        for c in self.snapshots.list()? {
            if !refs.contains_key(&c) {
                self.snapshots.remove(&c)?;
                ns += 1;
            }
        }
        let keep: HashSet<Digest> = self.store.referenced_blobs()?;
        let rep = self.content.gc(&keep)?;
        Ok((ns, rep.removed.len()))
    }

    /// Prepares a container's root filesystem: takes references on the image's snapshots
    /// for `container` and makes `<container_dir>/{upper,work,rootfs}`; with `mount`, mounts
    /// the overlay at `<container_dir>/rootfs`.
    pub fn create_container_rootfs(
        &self,
        container: &str,
        image: &Digest,
        container_dir: &Path,
        mount: bool,
    ) -> Result<RootfsLayout, ImagesError> {
        let img = self
            .store
            .get(image)?
            .ok_or_else(|| StoreError::NotFound(image.to_string()))?;
        self.store.add_container(container, image)?;
        let res = if mount {
            self.snapshots.mount_rootfs(&img.chain_ids(), container_dir)
        } else {
            self.snapshots
                .rootfs_layout(&img.chain_ids(), container_dir)
        };
        match res {
            Ok(l) => Ok(l),
            Err(e) => {
                let _ = self.store.remove_container(container);
                Err(e.into())
            }
        }
    }

    /// The overlay layout of an existing container rootfs (to mount it again after a
    /// restart).
    pub fn container_layout(
        &self,
        image: &Digest,
        container_dir: &Path,
    ) -> Result<RootfsLayout, ImagesError> {
        let img = self
            .store
            .get(image)?
            .ok_or_else(|| StoreError::NotFound(image.to_string()))?;
        Ok(self
            .snapshots
            .rootfs_layout(&img.chain_ids(), container_dir)?)
    }

    /// Undoes [`Images::create_container_rootfs`]: unmounts `<container_dir>/rootfs`, removes
    /// `upper`, `work` and `rootfs`, drops the container's snapshot references and deletes
    /// snapshots nothing uses any more.
    pub fn remove_container_rootfs(
        &self,
        container: &str,
        container_dir: &Path,
    ) -> Result<(), ImagesError> {
        let target = container_dir.join("rootfs");
        snapshot::unmount(&target)?;
        for d in ["rootfs", "upper", "work"] {
            let p = container_dir.join(d);
            match std::fs::remove_dir_all(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ImagesError::Io {
                        what: "removing",
                        path: p,
                        source,
                    })
                }
            }
        }
        let freed = self.store.remove_container(container)?;
        // Only snapshots no image uses either (an image holds its own references).
        let refs = self.store.snapshot_refs()?;
        for c in freed {
            if !refs.contains_key(&c) {
                self.snapshots.remove(&c)?;
            }
        }
        Ok(())
    }

    /// Stores the overlay upper directory `upper` as a gzip layer blob. Returns the layer.
    pub fn layer_from_upper(&self, upper: &Path) -> Result<NewLayer, ImagesError> {
        self.layer_from_upper_excluding(upper, &[])
    }

    /// [`Images::layer_from_upper`] leaving out `exclude` (relative paths, with everything
    /// under them).
    pub fn layer_from_upper_excluding(
        &self,
        upper: &Path,
        exclude: &[String],
    ) -> Result<NewLayer, ImagesError> {
        let w = self.content.writer(None)?;
        let comp = Compressor::new(w, Compression::Gzip).map_err(|source| ImagesError::Io {
            what: "compressing layer of",
            path: upper.to_path_buf(),
            source,
        })?;
        let (sum, comp) = write_tar(
            upper,
            comp,
            &TarOptions {
                overlay_whiteouts: true,
                exclude: exclude.to_vec(),
            },
        )?;
        let mut w = comp.finish().map_err(|source| ImagesError::Io {
            what: "compressing layer of",
            path: upper.to_path_buf(),
            source,
        })?;
        w.flush().map_err(|source| ImagesError::Io {
            what: "writing layer of",
            path: upper.to_path_buf(),
            source,
        })?;
        let size = w.written();
        let blob = w.commit()?;
        Ok(NewLayer {
            blob,
            media_type: Compression::Gzip.oci_media_type().into(),
            size,
            diff_id: sum.digest,
        })
    }

    /// `docker commit`: a new image made of `base`'s layers plus the container's changes
    /// (its overlay upper directory), with `base` as parent.
    pub fn commit(
        &self,
        base: &Digest,
        upper: &Path,
        opts: &CommitOptions,
    ) -> Result<ImageRecord, ImagesError> {
        let img = self
            .store
            .get(base)?
            .ok_or_else(|| StoreError::NotFound(base.to_string()))?;
        let mut cfg = self.config(base)?;
        let (_, manifest) = self.manifest(&img)?;
        let mut layers: Vec<NewLayer> = manifest
            .layers
            .iter()
            .zip(cfg.rootfs.diff_ids.iter())
            .map(|(l, d)| NewLayer {
                blob: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
                diff_id: d.clone(),
            })
            .collect();
        let new = self.layer_from_upper_excluding(upper, &opts.exclude)?;
        layers.push(new);
        let now = now_rfc3339();
        if let Some(c) = &opts.config {
            cfg.config = Some(c.clone());
        }
        if opts.author.is_some() {
            cfg.author = opts.author.clone();
        }
        match &opts.comment {
            Some(c) => {
                cfg.other
                    .insert("comment".into(), serde_json::Value::String(c.clone()));
            }
            None => {
                cfg.other.remove("comment");
            }
        }
        cfg.created = Some(now.clone());
        cfg.other.remove("container");
        cfg.other.remove("container_config");
        let mut hist = cfg.history.take().unwrap_or_default();
        hist.push(History {
            created: Some(now),
            created_by: opts.created_by.clone(),
            author: opts.author.clone(),
            comment: opts.comment.clone(),
            empty_layer: None,
        });
        cfg.history = Some(hist);
        self.create_image(cfg, &layers, Some(base))
    }

    /// Bytes of unpacked layers per image, for `docker system df`-like reports.
    pub fn layer_sizes(&self) -> Result<BTreeMap<Digest, u64>, ImagesError> {
        let mut out = BTreeMap::new();
        for c in self.snapshots.list()? {
            out.insert(c.clone(), self.snapshots.info(&c)?.size);
        }
        Ok(out)
    }
}

/// A temporary directory removed (recursively) when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
