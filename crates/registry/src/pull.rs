//! Pulling an image: resolve the reference to a manifest (choosing the platform's entry from
//! a manifest list or OCI index), fetch and verify the config, download the missing layers in
//! parallel (bounded, like Docker's three at a time) straight into the content store through
//! its verifying writer — a digest mismatch, a short or over-long body leaves nothing behind —
//! and finally store config, manifest and index, so that a stored manifest always means its
//! whole image is present. Progress is reported as Docker's pull messages.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use image::content::{ContentError, ContentStore};
use image::digest::{Digest, DigestError};
use image::reference::Reference;
use reqwest::Method;
use tokio::task::JoinHandle;

use crate::auth;
use crate::client::{join, target, Action, Client, Endpoint, Missing, Op};
use crate::error::{Error, Result};
use crate::manifest::{
    self, AnyManifest, ConfigSummary, Descriptor, FetchedManifest, MAX_MANIFEST_SIZE,
};
use crate::platform::{self, Platform};
use crate::progress::{Progress, ProgressMessage};

/// The largest image config accepted.
pub const MAX_CONFIG_SIZE: u64 = 16 * 1024 * 1024;

/// What a pull produced. Every blob it names is in the content store.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The reference pulled (normalised; tag `latest` if none was given).
    pub reference: Reference,
    /// The digest the reference resolved to: the manifest list / index digest for
    /// multi-platform images, else the manifest digest (Docker's `Digest:` line, the
    /// `RepoDigests` entry).
    pub digest: Digest,
    /// The manifest list or index, when the reference pointed at one.
    pub index: Option<FetchedManifest>,
    /// The platform-specific image manifest.
    pub manifest: FetchedManifest,
    /// The decoded manifest.
    pub manifest_parsed: manifest::Manifest,
    /// The image config bytes (its digest is the image ID).
    pub config: Vec<u8>,
    /// The config descriptor.
    pub config_descriptor: Descriptor,
    /// The layer descriptors, base first.
    pub layers: Vec<Descriptor>,
    /// The platform chosen from the index (None for a single-platform image).
    pub platform: Option<Platform>,
    /// Layers downloaded by this pull (the rest were already present).
    pub layers_downloaded: usize,
    /// False when the config was already in the store before the pull (Docker's "Image is
    /// up to date").
    pub is_new: bool,
}

impl PulledImage {
    /// The image manifest's digest.
    pub fn manifest_digest(&self) -> &Digest {
        &self.manifest.digest
    }

    /// The image ID (the config digest).
    pub fn image_id(&self) -> &Digest {
        &self.config_descriptor.digest
    }
}

/// The short ID Docker shows for a layer: 12 hex digits.
pub fn short_id(d: &Digest) -> String {
    d.short().to_string()
}

impl Client {
    /// Pulls `reference` into `store`. `platform` chooses from multi-platform images (None:
    /// the running machine's); when given explicitly it must also match a single-platform
    /// image. Progress goes to `progress` as Docker's messages, ending with `Digest: …` and
    /// `Status: …`.
    pub async fn pull(
        &self,
        reference: &Reference,
        platform: Option<&Platform>,
        store: &ContentStore,
        progress: &dyn Progress,
    ) -> Result<PulledImage> {
        let reference = reference.clone().with_default_tag();
        let ep = self.endpoint(reference.domain()).await?;
        let scopes = [auth::pull_scope(reference.path())];
        let op = Op {
            action: Action::Pull,
            reference: &reference,
        };
        let (tag_or_digest, expected) = target(&reference);
        progress.update(&ProgressMessage::with_id(
            tag_or_digest.clone(),
            format!("Pulling from {}", reference.path()),
        ));

        let top = self
            .fetch_manifest(&ep, &scopes, &op, &tag_or_digest, expected)
            .await?;
        let bad = |detail: String| Error::BadManifest {
            reference: reference.familiar_string(),
            detail,
        };
        let (index, image_manifest, chosen) = match top.decode().map_err(bad)? {
            AnyManifest::Image(m) => (None, (top, m), None),
            AnyManifest::Index(idx) => {
                let wanted = platform.cloned().unwrap_or_else(Platform::host);
                let candidates: Vec<Option<Platform>> = idx
                    .manifests
                    .iter()
                    .map(|d| {
                        d.platform
                            .as_ref()
                            .filter(|_| manifest::is_manifest_type(&d.media_type))
                            .map(Platform::from)
                    })
                    .collect();
                let Some(i) = platform::select(&wanted, candidates.iter().map(Option::as_ref))
                else {
                    let available: Vec<String> = idx
                        .manifests
                        .iter()
                        .filter_map(|d| d.platform.as_ref().map(|p| Platform::from(p).to_string()))
                        .collect();
                    return Err(Error::NoMatchingPlatform {
                        wanted: wanted.to_string(),
                        available: if available.is_empty() {
                            "none".into()
                        } else {
                            available.join(", ")
                        },
                    });
                };
                let desc = &idx.manifests[i];
                if desc.size > MAX_MANIFEST_SIZE {
                    return Err(Error::ManifestTooLarge {
                        reference: format!("{}@{}", reference.familiar_name(), desc.digest),
                        size: desc.size,
                    });
                }
                let m = self
                    .fetch_manifest(
                        &ep,
                        &scopes,
                        &op,
                        &desc.digest.to_string(),
                        Some(&desc.digest),
                    )
                    .await?;
                let parsed = match m.decode().map_err(bad)? {
                    AnyManifest::Image(parsed) => parsed,
                    AnyManifest::Index(_) => {
                        return Err(bad(format!(
                            "index entry {} is itself an index: nested indexes are not supported",
                            desc.digest
                        )))
                    }
                };
                (Some(top), (m, parsed), candidates[i].clone())
            }
        };
        let (manifest_fm, parsed) = image_manifest;

        // The config: from the store if present (verified on read), else from the registry.
        let config_desc = parsed.config.clone();
        let is_new = !store.has(&config_desc.digest);
        let config = if is_new {
            self.fetch_blob_bytes(
                &ep,
                &scopes,
                &op,
                &config_desc.digest,
                Some(config_desc.size),
                MAX_CONFIG_SIZE,
                "config",
            )
            .await?
        } else {
            store.get_bytes(&config_desc.digest)?
        };
        if index.is_none() {
            if let (Some(want), Some(actual)) = (platform, ConfigSummary::parse(&config).platform())
            {
                if want.match_rank(&actual).is_none() {
                    return Err(Error::PlatformMismatch {
                        reference: reference.familiar_string(),
                        wanted: want.to_string(),
                        actual: actual.to_string(),
                    });
                }
            }
        }

        // Layers: each distinct digest once, missing ones downloaded in parallel.
        let mut seen = std::collections::HashSet::new();
        let mut missing = Vec::new();
        for l in &parsed.layers {
            if !seen.insert(l.digest.clone()) {
                continue;
            }
            let id = short_id(&l.digest);
            if store.has(&l.digest) {
                progress.update(&ProgressMessage::with_id(id, "Already exists"));
            } else {
                progress.update(&ProgressMessage::with_id(id, "Pulling fs layer"));
                missing.push(l.clone());
            }
        }
        let limit = self.inner.config.max_concurrent_downloads.max(1);
        for l in missing.iter().skip(limit) {
            progress.update(&ProgressMessage::with_id(short_id(&l.digest), "Waiting"));
        }
        let writers: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        // Owned items: a closure over borrowed ones makes the future lose `Send`
        // (rust-lang/rust#102211).
        let (ep_ref, scopes_ref, op_ref, writers_ref) = (&ep, &scopes, &op, &writers);
        let result: Result<Vec<()>> = stream::iter(missing.clone())
            .map(|l| async move {
                self.download_layer(ep_ref, scopes_ref, op_ref, &l, store, progress, writers_ref)
                    .await
            })
            .buffer_unordered(limit)
            .try_collect()
            .await;
        // Whatever happened, wait for the writer threads so that a failed pull has removed
        // its partial files before returning.
        let handles: Vec<JoinHandle<()>> = writers
            .lock()
            .map(|mut v| v.drain(..).collect())
            .unwrap_or_default();
        for h in handles {
            let _ = h.await;
        }
        result?;

        // Config, manifest, index: stored last, so their presence implies the layers'.
        put_verified(store, &config_desc.digest, &config)?;
        put_verified(store, &manifest_fm.digest, &manifest_fm.bytes)?;
        if let Some(i) = &index {
            put_verified(store, &i.digest, &i.bytes)?;
        }
        for d in parsed
            .layers
            .iter()
            .map(|l| &l.digest)
            .chain([&config_desc.digest])
        {
            self.add_blob_source(reference.domain(), reference.path(), d);
        }

        let digest = index
            .as_ref()
            .map(|i| i.digest.clone())
            .unwrap_or_else(|| manifest_fm.digest.clone());
        progress.update(&ProgressMessage::line(format!("Digest: {digest}")));
        let status = if is_new || !missing.is_empty() {
            "Downloaded newer image for"
        } else {
            "Image is up to date for"
        };
        progress.update(&ProgressMessage::line(format!(
            "Status: {status} {}",
            reference.familiar_string()
        )));
        Ok(PulledImage {
            reference: reference.clone(),
            digest,
            index,
            layers: parsed.layers.clone(),
            config_descriptor: config_desc,
            manifest: manifest_fm,
            manifest_parsed: parsed,
            config,
            platform: chosen,
            layers_downloaded: missing.len(),
            is_new,
        })
    }

    /// Downloads one layer, retrying transport failures twice.
    #[allow(clippy::too_many_arguments)]
    async fn download_layer(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        op: &Op<'_>,
        layer: &Descriptor,
        store: &ContentStore,
        progress: &dyn Progress,
        writers: &Arc<Mutex<Vec<JoinHandle<()>>>>,
    ) -> Result<()> {
        let id = short_id(&layer.digest);
        let mut attempt = 0;
        loop {
            match self
                .download_once(ep, scopes, op, layer, store, progress, writers, &id)
                .await
            {
                Ok(()) => break,
                Err(Error::Http { .. }) if attempt < 2 => {
                    attempt += 1;
                    let wait = 1u64 << attempt;
                    progress.update(&ProgressMessage::with_id(
                        id.clone(),
                        format!("Retrying in {wait} seconds"),
                    ));
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                }
                Err(e) => return Err(e),
            }
        }
        progress.update(&ProgressMessage::with_id(id.clone(), "Download complete"));
        progress.update(&ProgressMessage::with_id(id, "Pull complete"));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn download_once(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        op: &Op<'_>,
        layer: &Descriptor,
        store: &ContentStore,
        progress: &dyn Progress,
        writers: &Arc<Mutex<Vec<JoinHandle<()>>>>,
        id: &str,
    ) -> Result<()> {
        let digest = &layer.digest;
        let size = layer.size;
        let url = join(
            &ep.base,
            &format!("/v2/{}/blobs/{digest}", op.reference.path()),
        )?;
        let mut resp = self
            .send(ep, scopes, Method::GET, url.clone(), op, &|rb| Ok(rb))
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .status_error(ep, op, "GET", resp, Missing::Blob(digest))
                .await);
        }
        let size_err = |actual: u64| Error::SizeMismatch {
            what: "layer",
            repository: op.repo_name(),
            digest: digest.clone(),
            expected: size,
            actual,
        };
        if let Some(len) = resp.content_length() {
            if len != size {
                return Err(size_err(len));
            }
        }

        // The store's writer runs on a blocking thread, fed through a bounded channel; an
        // empty chunk means "all data sent, commit". If the channel closes without it, the
        // writer is dropped and its partial file removed.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let (done_tx, done_rx) =
            tokio::sync::oneshot::channel::<std::result::Result<Digest, ContentError>>();
        let writer_store = store.clone();
        let expected = digest.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let res = (|| {
                let mut w = writer_store.writer(Some((&expected, size)))?;
                while let Some(chunk) = rx.blocking_recv() {
                    if chunk.is_empty() {
                        return w.commit();
                    }
                    std::io::Write::write_all(&mut w, &chunk).map_err(|source| {
                        ContentError::Write {
                            digest: Some(expected.clone()),
                            source,
                        }
                    })?;
                }
                Err(ContentError::Write {
                    digest: Some(expected.clone()),
                    source: std::io::Error::other("download aborted"),
                })
            })();
            let _ = done_tx.send(res);
        });
        if let Ok(mut v) = writers.lock() {
            v.push(handle);
        }

        let mut got: u64 = 0;
        let mut last = Instant::now() - Duration::from_secs(1);
        let net: Result<()> = async {
            loop {
                let chunk = resp.chunk().await.map_err(|e| Error::Http {
                    method: "GET",
                    url: url.to_string(),
                    source: e,
                })?;
                let Some(chunk) = chunk else { break };
                if chunk.is_empty() {
                    continue;
                }
                got += chunk.len() as u64;
                if got > size {
                    return Err(size_err(got));
                }
                if tx.send(chunk).await.is_err() {
                    // The writer failed; its error is reported below.
                    return Ok(());
                }
                if last.elapsed() >= Duration::from_millis(100) || got == size {
                    last = Instant::now();
                    progress.update(&ProgressMessage::transfer(
                        id,
                        "Downloading",
                        got,
                        Some(size),
                    ));
                }
            }
            if got < size {
                return Err(size_err(got));
            }
            Ok(())
        }
        .await;
        match net {
            Ok(()) => {
                progress.update(&ProgressMessage::with_id(id, "Verifying Checksum"));
                let _ = tx.send(Bytes::new()).await;
            }
            Err(e) => {
                drop(tx);
                let _ = done_rx.await;
                return Err(e);
            }
        }
        drop(tx);
        match done_rx.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(ContentError::Verify(DigestError::Mismatch { expected, actual }))) => {
                Err(Error::DigestMismatch {
                    what: "layer",
                    repository: op.repo_name(),
                    expected,
                    actual,
                })
            }
            Ok(Err(ContentError::Verify(DigestError::Size { actual, .. }))) => {
                Err(size_err(actual))
            }
            Ok(Err(e)) => Err(Error::Store(e)),
            Err(_) => Err(Error::Task(format!(
                "the writer for layer {digest} stopped"
            ))),
        }
    }
}

/// Stores small verified content under its digest (idempotent).
fn put_verified(store: &ContentStore, digest: &Digest, data: &[u8]) -> Result<()> {
    if store.has(digest) {
        return Ok(());
    }
    let mut w = store.writer(Some((digest, data.len() as u64)))?;
    std::io::Write::write_all(&mut w, data).map_err(|source| ContentError::Write {
        digest: Some(digest.clone()),
        source,
    })?;
    w.commit()?;
    Ok(())
}
