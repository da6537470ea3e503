//! Image archives: `docker save` (the Docker 25+ layout: `manifest.json` + `repositories`
//! for older tools, and an OCI image layout `index.json` + `oci-layout` + `blobs/` for newer
//! ones, with uncompressed layers), `docker load` (either format, plain or compressed; an
//! archive is unpacked with the same escape-proof unpacker as layers and every blob is
//! verified), `docker import` (a root filesystem tarball, optionally with `--change`
//! instructions, as a one-layer image) and `docker export` (a root filesystem as a tar).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::Path;

use tar::{Builder, EntryType, Header};

use crate::config::{
    host_architecture, now_rfc3339, Descriptor, History, ImageConfig, Index, Manifest, RunConfig,
    MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_MANIFEST_LIST, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX,
    MEDIA_OCI_LAYER, MEDIA_OCI_MANIFEST,
};
use crate::digest::{Digest, HashingReader};
use crate::images::{Images, ImagesError, NewLayer};
use crate::layer::{
    apply_layer, decompress, fsops, write_tar, ApplyOptions, Compression, Compressor, LayerError,
    TarOptions, WhiteoutMode,
};
use crate::reference::Reference;
use crate::store::{ImageRecord, StoreError};

/// Annotation with the full image name in an OCI index (containerd, Docker).
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// OCI annotation with the tag (or full name) of a manifest in an index.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// What went wrong with an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The image service failed.
    #[error(transparent)]
    Images(#[from] ImagesError),
    /// Unpacking or writing a tar failed.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The archive is not a docker-save or OCI layout archive, or is inconsistent.
    #[error("invalid image archive: {0}")]
    Invalid(String),
    /// A `--change` instruction is not supported or malformed.
    #[error("invalid change {0:?}: {1}")]
    Change(String, String),
    /// I/O on the output or a temporary file.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
}

impl From<StoreError> for ArchiveError {
    fn from(e: StoreError) -> Self {
        ArchiveError::Images(e.into())
    }
}

impl From<crate::content::ContentError> for ArchiveError {
    fn from(e: crate::content::ContentError) -> Self {
        ArchiveError::Images(e.into())
    }
}

fn ioe(what: impl Into<String>) -> impl FnOnce(io::Error) -> ArchiveError {
    let what = what.into();
    move |source| ArchiveError::Io { what, source }
}

fn bad(m: impl Into<String>) -> ArchiveError {
    ArchiveError::Invalid(m.into())
}

/// One entry of `manifest.json` (docker save).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SaveManifestEntry {
    /// Path of the config blob in the archive.
    #[serde(rename = "Config")]
    pub config: String,
    /// Familiar tags (`busybox:latest`).
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars, bottom first.
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
}

/// What `load` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Images loaded, with the tags given to them.
    pub images: Vec<(Digest, Vec<Reference>)>,
    /// Docker's output lines (`Loaded image: busybox:latest`, `Loaded image ID: sha256:…`).
    pub lines: Vec<String>,
}

// ---- load -------------------------------------------------------------------------------

fn open_member(dir: &Path, rel: &str) -> Result<File, ArchiveError> {
    fsops::open_in_root(dir, rel)
        .map_err(ioe(format!("opening {rel} in the archive")))?
        .ok_or_else(|| bad(format!("{rel} is missing from the archive")))
}

fn read_member(dir: &Path, rel: &str) -> Result<Vec<u8>, ArchiveError> {
    let mut f = open_member(dir, rel)?;
    let mut v = Vec::new();
    f.read_to_end(&mut v)
        .map_err(ioe(format!("reading {rel} in the archive")))?;
    Ok(v)
}

fn layer_media_type(images: &Images, blob: &Digest) -> Result<String, ArchiveError> {
    let mut f = images.content.read(blob)?;
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        let k = f.read(&mut head[n..]).map_err(ioe("reading layer blob"))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(Compression::detect(&head[..n])?
        .oci_media_type()
        .to_string())
}

/// `docker load`: reads a docker-save or OCI layout archive (plain, gzip or zstd) and adds its
/// images. Tags move to the loaded images (Docker's "renaming the old one" line is reported).
pub fn load<R: Read>(images: &Images, r: R) -> Result<LoadReport, ArchiveError> {
    load_with_progress(images, r, &|_, _, _| {})
}

/// Progress of [`load_with_progress`]: `(layer, bytes stored, layer size)` where `layer` is
/// the first 12 hex digits of the layer's diffID (dockerd's `Loading layer` lines).
pub type LoadProgress<'a> = dyn Fn(&str, u64, u64) + 'a;

/// Reports the bytes read through it (about every MiB and at the end).
struct CountingReader<'a, R> {
    inner: R,
    id: String,
    done: u64,
    total: u64,
    last: u64,
    progress: &'a LoadProgress<'a>,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if n == 0 || self.done - self.last >= 1 << 20 {
            self.last = self.done;
            (self.progress)(&self.id, self.done, self.total);
        }
        Ok(n)
    }
}

/// [`load`], calling `progress` while each layer of a docker-save archive is stored.
pub fn load_with_progress<R: Read>(
    images: &Images,
    r: R,
    progress: &LoadProgress<'_>,
) -> Result<LoadReport, ArchiveError> {
    let tmp = images.tempdir()?;
    apply_layer(
        r,
        tmp.path(),
        &ApplyOptions {
            whiteouts: WhiteoutMode::Delete,
            ..Default::default()
        },
    )?;
    let dir = tmp.path();
    if fsops::open_in_root(dir, "manifest.json")
        .map_err(ioe("opening manifest.json"))?
        .is_some()
    {
        load_docker(images, dir, progress)
    } else if fsops::open_in_root(dir, "index.json")
        .map_err(ioe("opening index.json"))?
        .is_some()
    {
        load_oci(images, dir)
    } else {
        Err(bad(
            "neither manifest.json (docker save) nor index.json (OCI layout) found",
        ))
    }
}

fn tag_loaded(
    images: &Images,
    id: &Digest,
    r: &Reference,
    rep: &mut LoadReport,
) -> Result<(), ArchiveError> {
    if let Some(old) = images.store.tag(id, r)? {
        rep.lines.push(format!(
            "The image {} already exists, renaming the old one with ID {} to empty string",
            r.familiar_string(),
            old
        ));
    }
    rep.lines
        .push(format!("Loaded image: {}", r.familiar_string()));
    Ok(())
}

fn load_docker(
    images: &Images,
    dir: &Path,
    progress: &LoadProgress<'_>,
) -> Result<LoadReport, ArchiveError> {
    let entries: Vec<SaveManifestEntry> =
        serde_json::from_slice(&read_member(dir, "manifest.json")?)
            .map_err(|e| bad(format!("manifest.json: {e}")))?;
    let mut rep = LoadReport::default();
    for e in entries {
        let cbytes = read_member(dir, &e.config)?;
        let cfg = ImageConfig::parse(&cbytes).map_err(|err| bad(format!("{}: {err}", e.config)))?;
        if cfg.rootfs.diff_ids.len() != e.layers.len() {
            return Err(bad(format!(
                "{} lists {} layers but its config has {} diff_ids",
                e.config,
                e.layers.len(),
                cfg.rootfs.diff_ids.len()
            )));
        }
        let mut layers = Vec::new();
        for (path, diff_id) in e.layers.iter().zip(cfg.rootfs.diff_ids.iter()) {
            let f = open_member(dir, path)?;
            let total = f.metadata().map(|m| m.len()).unwrap_or(0);
            let id: String = diff_id.hex().chars().take(12).collect();
            progress(&id, 0, total);
            let counted = CountingReader {
                inner: f,
                id,
                done: 0,
                total,
                last: 0,
                progress,
            };
            let (blob, size) = images.content.put_reader(counted, None)?;
            let media_type = layer_media_type(images, &blob)?;
            layers.push(NewLayer {
                blob,
                media_type,
                size,
                diff_id: diff_id.clone(),
            });
        }
        let img = images.create_image_raw(&cbytes, &layers, None)?;
        let mut tags = Vec::new();
        for t in e.repo_tags.unwrap_or_default() {
            let r = Reference::parse(&t).map_err(|err| bad(format!("tag {t:?}: {err}")))?;
            tag_loaded(images, &img.id, &r, &mut rep)?;
            tags.push(r);
        }
        if tags.is_empty() {
            rep.lines.push(format!("Loaded image ID: {}", img.id));
        }
        rep.images.push((img.id, tags));
    }
    Ok(rep)
}

/// Copies `blobs/<alg>/<hex>` from the unpacked layout into the content store, verifying
/// digest and size.
fn import_blob(images: &Images, dir: &Path, d: &Descriptor) -> Result<(), ArchiveError> {
    if images.content.has(&d.digest) {
        return Ok(());
    }
    let rel = format!("blobs/{}/{}", d.digest.algorithm(), d.digest.hex());
    let f = open_member(dir, &rel)?;
    images
        .content
        .put_reader(f, Some((d.digest.clone(), Some(d.size))))?;
    Ok(())
}

fn platform_matches(d: &Descriptor) -> bool {
    match &d.platform {
        None => true,
        Some(p) => p.os == "linux" && p.architecture == host_architecture(),
    }
}

fn load_oci(images: &Images, dir: &Path) -> Result<LoadReport, ArchiveError> {
    let index: Index = serde_json::from_slice(&read_member(dir, "index.json")?)
        .map_err(|e| bad(format!("index.json: {e}")))?;
    let mut rep = LoadReport::default();
    for d in &index.manifests {
        let name = d
            .annotations
            .as_ref()
            .and_then(|a| {
                a.get(ANNOTATION_IMAGE_NAME).cloned().or_else(|| {
                    a.get(ANNOTATION_REF_NAME)
                        .filter(|n| n.contains('/') || n.contains(':'))
                        .cloned()
                })
            })
            .and_then(|n| Reference::parse(&n).ok());
        let Some(id) = load_oci_descriptor(images, dir, d, &[])? else {
            continue;
        };
        let mut tags = Vec::new();
        if let Some(r) = name {
            if r.digest().is_none() {
                tag_loaded(images, &id, &r, &mut rep)?;
                tags.push(r);
            }
        }
        if tags.is_empty() {
            rep.lines.push(format!("Loaded image ID: {id}"));
        }
        rep.images.push((id, tags));
    }
    Ok(rep)
}

fn load_oci_descriptor(
    images: &Images,
    dir: &Path,
    d: &Descriptor,
    parents: &[Digest],
) -> Result<Option<Digest>, ArchiveError> {
    import_blob(images, dir, d)?;
    let bytes = images.content.get_bytes(&d.digest)?;
    let mt = if d.media_type.is_empty() {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_default()
    } else {
        d.media_type.clone()
    };
    if mt == MEDIA_OCI_INDEX || mt == MEDIA_DOCKER_MANIFEST_LIST {
        if parents.len() > 4 {
            return Err(bad("indexes nested too deeply"));
        }
        let idx: Index =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("index {}: {e}", d.digest)))?;
        // The manifest for this machine whose blobs the archive has.
        let mut chain = parents.to_vec();
        chain.push(d.digest.clone());
        for m in idx.manifests.iter().filter(|m| platform_matches(m)) {
            let rel = format!("blobs/{}/{}", m.digest.algorithm(), m.digest.hex());
            let present = images.content.has(&m.digest)
                || fsops::open_in_root(dir, &rel).ok().flatten().is_some();
            if present {
                return load_oci_descriptor(images, dir, m, &chain);
            }
        }
        return Err(bad(format!(
            "index {} has no manifest for linux/{} in the archive",
            d.digest,
            host_architecture()
        )));
    }
    if !(mt == MEDIA_OCI_MANIFEST || mt == MEDIA_DOCKER_MANIFEST || mt.is_empty()) {
        // Attestations and other artifacts are skipped.
        return Ok(None);
    }
    let m: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("manifest {}: {e}", d.digest)))?;
    import_blob(images, dir, &m.config)?;
    for l in &m.layers {
        import_blob(images, dir, l)?;
    }
    let img = images.add_from_manifest(&d.digest, parents, None)?;
    Ok(Some(img.id))
}

// ---- save -------------------------------------------------------------------------------

struct SaveItem {
    img: ImageRecord,
    tags: Vec<Reference>,
}

fn save_items(images: &Images, names: &[&str]) -> Result<Vec<SaveItem>, ArchiveError> {
    let mut items: Vec<SaveItem> = Vec::new();
    let add = |items: &mut Vec<SaveItem>, img: ImageRecord, tag: Option<Reference>| {
        let pos = match items.iter().position(|i| i.img.id == img.id) {
            Some(p) => p,
            None => {
                items.push(SaveItem {
                    img,
                    tags: Vec::new(),
                });
                items.len() - 1
            }
        };
        if let Some(t) = tag {
            if !items[pos].tags.contains(&t) {
                items[pos].tags.push(t);
            }
        }
    };
    let all = images.list()?;
    for name in names {
        let parsed = Reference::parse_normalized(name).ok();
        match parsed {
            Some(r) if r.is_name_only() => {
                let mut found = false;
                for img in &all {
                    let tags: Vec<Reference> = img
                        .repo_tags
                        .iter()
                        .filter(|t| t.name() == r.name())
                        .cloned()
                        .collect();
                    let digs = img.repo_digests.iter().any(|t| t.name() == r.name());
                    if !tags.is_empty() || digs {
                        found = true;
                        if tags.is_empty() {
                            add(&mut items, img.clone(), None);
                        }
                        for t in tags {
                            add(&mut items, img.clone(), Some(t));
                        }
                    }
                }
                if !found {
                    let img = images.resolve(name)?;
                    add(&mut items, img, None);
                }
            }
            Some(r) if r.digest().is_none() => {
                let img = images.resolve(name)?;
                let by_ref = img.repo_tags.contains(&r.clone().with_default_tag());
                add(
                    &mut items,
                    img,
                    if by_ref {
                        Some(r.with_default_tag())
                    } else {
                        None
                    },
                );
            }
            _ => {
                let img = images.resolve(name)?;
                add(&mut items, img, None);
            }
        }
    }
    Ok(items)
}

fn dir_header(path: &str) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Directory);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    let _ = h.set_path(path);
    h.set_cksum();
    h
}

fn file_header(size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

fn append_bytes<W: Write>(b: &mut Builder<W>, path: &str, data: &[u8]) -> Result<(), ArchiveError> {
    let mut h = file_header(data.len() as u64);
    b.append_data(&mut h, path, data)
        .map_err(ioe(format!("writing {path} to the archive")))
}

/// `docker save NAME...`: writes the images as one tar (Docker 25+ layout, readable by old
/// and new `docker load`, skopeo `docker-archive:` and `oci-archive:`). `NAME` follows
/// Docker: `repo` saves every tag of the repository, `repo:tag` that tag, an ID the image
/// without tags.
pub fn save<W: Write>(images: &Images, names: &[&str], w: W) -> Result<W, ArchiveError> {
    let items = save_items(images, names)?;
    let mut b = Builder::new(w);
    b.append(&dir_header("blobs/"), io::empty())
        .map_err(ioe("writing the archive"))?;
    b.append(&dir_header("blobs/sha256/"), io::empty())
        .map_err(ioe("writing the archive"))?;
    let tmp = images.tempdir()?;
    let mut written: HashMap<Digest, u64> = HashMap::new();
    let mut manifest_json: Vec<SaveManifestEntry> = Vec::new();
    let mut index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_OCI_INDEX.into()),
        manifests: Vec::new(),
        annotations: None,
    };
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for item in &items {
        let img = &item.img;
        let cbytes = images.config_bytes(&img.id)?;
        let (_, m) = images.manifest(img)?;
        let mut layer_descs = Vec::new();
        let mut layer_paths = Vec::new();
        for (l, desc) in img.layers.iter().zip(m.layers.iter()) {
            let path = format!("blobs/sha256/{}", l.diff_id.hex());
            if let Some(size) = written.get(&l.diff_id) {
                layer_descs.push(layer_desc(&l.diff_id, *size));
                layer_paths.push(path);
                continue;
            }
            // Decompress to a temporary file, checking the diffID, then append.
            let tpath = tmp.path().join(l.diff_id.hex());
            let mut tf = File::options()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(&tpath)
                .map_err(ioe(format!("creating {}", tpath.display())))?;
            let blob = images.content.read_verified(&desc.digest)?;
            let (_, dec) = decompress(blob)?;
            let mut hr = HashingReader::new(dec);
            io::copy(&mut hr, &mut tf)
                .map_err(ioe(format!("decompressing layer {}", desc.digest)))?;
            let (got, size) = hr.finish().map_err(ioe("hashing layer"))?;
            if got != l.diff_id {
                return Err(bad(format!(
                    "layer {} decompresses to {got}, expected {}",
                    desc.digest, l.diff_id
                )));
            }
            tf.rewind().map_err(ioe("rewinding layer"))?;
            let mut h = file_header(size);
            b.append_data(&mut h, &path, &mut tf)
                .map_err(ioe(format!("writing {path} to the archive")))?;
            drop(tf);
            let _ = std::fs::remove_file(&tpath);
            written.insert(l.diff_id.clone(), size);
            layer_descs.push(layer_desc(&l.diff_id, size));
            layer_paths.push(path);
        }
        let cpath = format!("blobs/sha256/{}", img.id.hex());
        if !written.contains_key(&img.id) {
            append_bytes(&mut b, &cpath, &cbytes)?;
            written.insert(img.id.clone(), cbytes.len() as u64);
        }
        let om = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: MEDIA_OCI_CONFIG.into(),
                digest: img.id.clone(),
                size: cbytes.len() as u64,
                annotations: None,
                platform: None,
                urls: None,
            },
            layers: layer_descs,
            annotations: None,
        };
        let mbytes = serde_json::to_vec(&om).map_err(|e| bad(e.to_string()))?;
        let md = Digest::sha256(&mbytes);
        if !written.contains_key(&md) {
            append_bytes(&mut b, &format!("blobs/sha256/{}", md.hex()), &mbytes)?;
            written.insert(md.clone(), mbytes.len() as u64);
        }
        let mdesc = |ann: Option<BTreeMap<String, String>>| Descriptor {
            media_type: MEDIA_OCI_MANIFEST.into(),
            digest: md.clone(),
            size: mbytes.len() as u64,
            annotations: ann,
            platform: None,
            urls: None,
        };
        if item.tags.is_empty() {
            index.manifests.push(mdesc(None));
        }
        for t in &item.tags {
            let mut ann = BTreeMap::new();
            ann.insert(ANNOTATION_IMAGE_NAME.to_string(), t.to_string());
            if let Some(tag) = t.tag() {
                ann.insert(ANNOTATION_REF_NAME.to_string(), tag.to_string());
                if let Some(top) = img.layers.last() {
                    repositories
                        .entry(t.familiar_name())
                        .or_default()
                        .insert(tag.to_string(), top.diff_id.hex().to_string());
                }
            }
            index.manifests.push(mdesc(Some(ann)));
        }
        manifest_json.push(SaveManifestEntry {
            config: cpath,
            repo_tags: Some(item.tags.iter().map(|t| t.familiar_string()).collect()),
            layers: layer_paths,
        });
    }
    append_bytes(
        &mut b,
        "index.json",
        &serde_json::to_vec(&index).map_err(|e| bad(e.to_string()))?,
    )?;
    append_bytes(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest_json).map_err(|e| bad(e.to_string()))?,
    )?;
    append_bytes(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    if !repositories.is_empty() {
        append_bytes(
            &mut b,
            "repositories",
            &serde_json::to_vec(&repositories).map_err(|e| bad(e.to_string()))?,
        )?;
    }
    b.into_inner().map_err(ioe("finishing the archive"))
}

fn layer_desc(diff_id: &Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: MEDIA_OCI_LAYER.into(),
        digest: diff_id.clone(),
        size,
        annotations: None,
        platform: None,
        urls: None,
    }
}

// ---- import / export ----------------------------------------------------------------------

/// `docker import` options.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `REPOSITORY[:TAG]` to tag the image with.
    pub reference: Option<Reference>,
    /// `--change` Dockerfile instructions (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD,
    /// STOPSIGNAL, USER, VOLUME, WORKDIR).
    pub changes: Vec<String>,
    /// `--message`.
    pub message: Option<String>,
    /// Where the tarball came from (`-` for stdin, a file or URL); used in the default
    /// message "Imported from SOURCE".
    pub source: String,
}

/// `docker import`: a root filesystem tarball (plain, gzip or zstd) as a one-layer image.
/// The layer is stored gzip-compressed; the image gets Docker's import history entry.
pub fn import<R: Read>(
    images: &Images,
    r: R,
    opts: &ImportOptions,
) -> Result<ImageRecord, ArchiveError> {
    let mut rc = RunConfig::default();
    apply_changes(&mut rc, &opts.changes)?;
    let (_, dec) = decompress(r)?;
    let mut hr = HashingReader::new(dec);
    let w = images.content.writer(None)?;
    let mut comp = Compressor::new(w, Compression::Gzip).map_err(ioe("compressing the layer"))?;
    io::copy(&mut hr, &mut comp).map_err(ioe("reading the tarball"))?;
    let (diff_id, _) = hr.finish().map_err(ioe("reading the tarball"))?;
    let mut w = comp.finish().map_err(ioe("compressing the layer"))?;
    w.flush().map_err(ioe("writing the layer"))?;
    let size = w.written();
    let blob = w.commit()?;
    let msg = opts
        .message
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| {
            format!(
                "Imported from {}",
                if opts.source.is_empty() {
                    "-"
                } else {
                    &opts.source
                }
            )
        });
    let now = now_rfc3339();
    let mut cfg = ImageConfig {
        architecture: host_architecture().into(),
        os: "linux".into(),
        created: Some(now.clone()),
        config: Some(rc),
        history: Some(vec![History {
            created: Some(now),
            comment: Some(msg.clone()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    cfg.other
        .insert("comment".into(), serde_json::Value::String(msg));
    let layer = NewLayer {
        blob,
        media_type: Compression::Gzip.oci_media_type().into(),
        size,
        diff_id,
    };
    let img = images.create_image(cfg, &[layer], None)?;
    if let Some(r) = &opts.reference {
        images.store.tag(&img.id, r)?;
    }
    Ok(images.store.get(&img.id)?.unwrap_or(img))
}

/// `docker export`: the tree under `rootfs` (a container's mounted root filesystem) as a tar.
/// Returns the writer.
pub fn export<W: Write>(rootfs: &Path, w: W) -> Result<W, ArchiveError> {
    let (_, w) = write_tar(rootfs, w, &TarOptions::default())?;
    Ok(w)
}

fn split_words(s: &str) -> Vec<String> {
    // Whitespace-separated words; double or single quotes group (quotes removed).
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    any = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn exec_or_shell(rest: &str) -> Vec<String> {
    let t = rest.trim();
    if t.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(t) {
            return v;
        }
    }
    vec!["/bin/sh".into(), "-c".into(), t.to_string()]
}

fn key_values(instr: &str, rest: &str) -> Result<Vec<(String, String)>, ArchiveError> {
    let words = split_words(rest);
    if words.is_empty() {
        return Err(ArchiveError::Change(
            instr.into(),
            format!("{instr} requires at least one argument"),
        ));
    }
    if !words[0].contains('=') {
        // Legacy form: KEY VALUE...
        let (k, v) = rest
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((rest.trim(), ""));
        return Ok(vec![(k.to_string(), split_words(v).join(" "))]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(ArchiveError::Change(
                instr.into(),
                format!("{w:?} is not KEY=VALUE"),
            )),
        })
        .collect()
}

/// Applies `docker import/commit --change` Dockerfile instructions to a run config.
pub fn apply_changes(rc: &mut RunConfig, changes: &[String]) -> Result<(), ArchiveError> {
    for ch in changes {
        let t = ch.trim();
        let (instr, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        let rest = rest.trim();
        let err = |m: &str| ArchiveError::Change(ch.clone(), m.to_string());
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => rc.cmd = Some(exec_or_shell(rest)),
            "ENTRYPOINT" => rc.entrypoint = Some(exec_or_shell(rest)),
            "ENV" => {
                let mut env = rc.env.take().unwrap_or_default();
                for (k, v) in key_values("ENV", rest)? {
                    env = crate::spec::merge_env(&env, &[format!("{k}={v}")]);
                }
                rc.env = Some(env);
            }
            "LABEL" => {
                let mut l = rc.labels.take().unwrap_or_default();
                for (k, v) in key_values("LABEL", rest)? {
                    l.insert(k, v);
                }
                rc.labels = Some(l);
            }
            "EXPOSE" => {
                let mut p = rc.exposed_ports.take().unwrap_or_default();
                for w in split_words(rest) {
                    let key = if w.contains('/') {
                        w.to_ascii_lowercase()
                    } else {
                        format!("{w}/tcp")
                    };
                    let port = key.split('/').next().unwrap_or("");
                    if port.is_empty() || !port.split('-').all(|x| x.parse::<u16>().is_ok()) {
                        return Err(err("invalid port"));
                    }
                    p.insert(key, serde_json::json!({}));
                }
                rc.exposed_ports = Some(p);
            }
            "VOLUME" => {
                let list = if rest.starts_with('[') {
                    serde_json::from_str::<Vec<String>>(rest)
                        .map_err(|_| err("invalid JSON list"))?
                } else {
                    split_words(rest)
                };
                let mut v = rc.volumes.take().unwrap_or_default();
                for p in list {
                    v.insert(p, serde_json::json!({}));
                }
                rc.volumes = Some(v);
            }
            "USER" if !rest.is_empty() => rc.user = Some(rest.to_string()),
            "WORKDIR" if !rest.is_empty() => {
                let cur = rc.working_dir.clone().unwrap_or_default();
                rc.working_dir = Some(if rest.starts_with('/') || cur.is_empty() {
                    rest.to_string()
                } else {
                    format!("{}/{rest}", cur.trim_end_matches('/'))
                });
            }
            "STOPSIGNAL" if !rest.is_empty() => rc.stop_signal = Some(rest.to_string()),
            "ONBUILD" if !rest.is_empty() => {
                let mut v = rc.on_build.take().unwrap_or_default();
                v.push(rest.to_string());
                rc.on_build = Some(v);
            }
            "USER" | "WORKDIR" | "STOPSIGNAL" | "ONBUILD" => {
                return Err(err("an argument is required"))
            }
            other => {
                return Err(ArchiveError::Change(
                    ch.clone(),
                    format!("{other} is not a valid change command"),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
