//! Pushing an image: for every layer and the config, skip it if the registry already has it
//! (`HEAD`), mount it from another repository of the same registry where it is known to be
//! (`POST …/blobs/uploads/?mount=<digest>&from=<repo>`), else upload it from the content
//! store — in one `PUT` (monolithic) or in `PATCH` chunks with `Content-Range` followed by a
//! closing `PUT` — and finally `PUT` the manifest with its media type. A manifest list / OCI
//! index is pushed after each of its manifests (pushed by digest). Progress is reported as
//! Docker's push messages, ending with `<tag>: digest: sha256:… size: N`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use image::content::ContentStore;
use image::digest::Digest;
use image::reference::Reference;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode, Url};
use tokio::io::AsyncReadExt;

use crate::auth;
use crate::client::{header_digest, join, Action, Client, Endpoint, Missing, Op};
use crate::error::{Error, Result};
use crate::manifest::{self, AnyManifest, ConfigSummary, Descriptor};
use crate::progress::{Progress, ProgressMessage};

/// What a push produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// The digest of the pushed (top-level) manifest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// The tag pushed (None when pushed by digest).
    pub tag: Option<String>,
}

/// How a blob got to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BlobOutcome {
    Existed,
    Mounted(String),
    Uploaded,
}

impl Client {
    /// Pushes the image whose manifest is `manifest` (of `media_type`) to `reference` (its
    /// tag, `latest` if none; or by digest). Every blob the manifest names — and, for a
    /// manifest list / index, every manifest it lists — must be in `store`.
    pub async fn push(
        &self,
        reference: &Reference,
        manifest_bytes: &[u8],
        media_type: &str,
        store: &ContentStore,
        progress: &dyn Progress,
    ) -> Result<PushedImage> {
        let reference = if reference.digest().is_some() {
            reference.clone()
        } else {
            reference.clone().with_default_tag()
        };
        let ep = self.endpoint(reference.domain()).await?;
        let scopes = [auth::push_scope(reference.path())];
        let op = Op {
            action: Action::Push,
            reference: &reference,
        };
        progress.update(&ProgressMessage::line(format!(
            "The push refers to repository [{}]",
            reference.name()
        )));
        let bad = |detail: String| Error::BadManifest {
            reference: reference.familiar_string(),
            detail,
        };
        match manifest::decode(media_type, manifest_bytes).map_err(bad)? {
            AnyManifest::Image(m) => {
                self.push_image_blobs(&ep, &scopes, &op, &m, store, progress)
                    .await?;
            }
            AnyManifest::Index(idx) => {
                for child in &idx.manifests {
                    if !manifest::is_manifest_type(&child.media_type) {
                        return Err(bad(format!(
                            "index entry {} has media type {:?}: only image manifests can be pushed inside an index",
                            child.digest, child.media_type
                        )));
                    }
                    let bytes = store.get_bytes(&child.digest)?;
                    let m = match manifest::decode(&child.media_type, &bytes).map_err(bad)? {
                        AnyManifest::Image(m) => m,
                        AnyManifest::Index(_) => return Err(bad("nested index".into())),
                    };
                    self.push_image_blobs(&ep, &scopes, &op, &m, store, progress)
                        .await?;
                    self.put_manifest(
                        &ep,
                        &scopes,
                        &op,
                        &child.digest.to_string(),
                        &bytes,
                        &child.media_type,
                    )
                    .await?;
                }
            }
        }
        let (target, tag) = match (reference.digest(), reference.tag()) {
            (Some(d), _) => (d.to_string(), None),
            (None, t) => {
                let t = t.unwrap_or(image::reference::DEFAULT_TAG).to_string();
                (t.clone(), Some(t))
            }
        };
        let digest = self
            .put_manifest(&ep, &scopes, &op, &target, manifest_bytes, media_type)
            .await?;
        if let Some(want) = reference.digest() {
            if want != &digest {
                return Err(Error::DigestMismatch {
                    what: "manifest",
                    repository: op.repo_name(),
                    expected: want.clone(),
                    actual: digest,
                });
            }
        }
        progress.update(&ProgressMessage::line(format!(
            "{}: digest: {digest} size: {}",
            tag.as_deref().unwrap_or(&target),
            manifest_bytes.len()
        )));
        Ok(PushedImage {
            digest,
            size: manifest_bytes.len() as u64,
            media_type: media_type.to_string(),
            tag,
        })
    }

    /// Pushes a manifest's layers (in parallel) and then its config.
    async fn push_image_blobs(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        op: &Op<'_>,
        m: &manifest::Manifest,
        store: &ContentStore,
        progress: &dyn Progress,
    ) -> Result<()> {
        // Docker shows layers by their diff ID (from the config) when it can.
        let diff_ids = store
            .get_bytes(&m.config.digest)
            .ok()
            .map(|c| ConfigSummary::parse(&c))
            .and_then(|c| c.rootfs)
            .map(|r| r.diff_ids)
            .unwrap_or_default();
        let mut layers: Vec<(String, Descriptor)> = Vec::new();
        for (i, l) in m.layers.iter().enumerate() {
            if layers.iter().any(|(_, d)| d.digest == l.digest) {
                continue;
            }
            let id = diff_ids
                .get(i)
                .and_then(|s| Digest::parse(s).ok())
                .unwrap_or_else(|| l.digest.clone())
                .short()
                .to_string();
            layers.push((id, l.clone()));
        }
        // Docker lists layers top-most first.
        for (id, _) in layers.iter().rev() {
            progress.update(&ProgressMessage::with_id(id.clone(), "Preparing"));
        }
        let limit = self.inner.config.max_concurrent_uploads.max(1);
        for (id, _) in layers.iter().rev().skip(limit) {
            progress.update(&ProgressMessage::with_id(id.clone(), "Waiting"));
        }
        // Owned items: a closure over borrowed ones makes the future lose `Send`
        // (rust-lang/rust#102211).
        stream::iter(layers.iter().rev().cloned().collect::<Vec<_>>())
            .map(|(id, l)| async move {
                let outcome = self
                    .push_blob(ep, scopes, op, &l, store, Some((id.as_str(), progress)))
                    .await?;
                let status = match outcome {
                    BlobOutcome::Existed => "Layer already exists".to_string(),
                    BlobOutcome::Mounted(from) => format!("Mounted from {from}"),
                    BlobOutcome::Uploaded => "Pushed".to_string(),
                };
                progress.update(&ProgressMessage::with_id(id.clone(), status));
                Ok::<(), Error>(())
            })
            .buffer_unordered(limit)
            .try_collect::<Vec<()>>()
            .await?;
        self.push_blob(ep, scopes, op, &m.config, store, None)
            .await?;
        Ok(())
    }

    /// Gets one blob into the repository: already there, mounted, or uploaded.
    async fn push_blob(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        op: &Op<'_>,
        desc: &Descriptor,
        store: &ContentStore,
        show: Option<(&str, &dyn Progress)>,
    ) -> Result<BlobOutcome> {
        let digest = &desc.digest;
        let path = op.reference.path();
        if self.head_blob(ep, scopes, op, digest).await? {
            self.add_blob_source(&ep.registry, path, digest);
            return Ok(BlobOutcome::Existed);
        }
        let local_size = store.size(digest)?;
        if local_size != desc.size {
            return Err(Error::SizeMismatch {
                what: "local blob",
                repository: "the local content store".into(),
                digest: digest.clone(),
                expected: desc.size,
                actual: local_size,
            });
        }

        // Try a cross-repository mount from where the blob is known to be.
        let mut session: Option<Url> = None;
        let sources: Vec<String> = self
            .blob_sources(digest)
            .into_iter()
            .filter(|(reg, repo)| reg == &ep.registry && repo != path)
            .map(|(_, repo)| repo)
            .take(3)
            .collect();
        for from in sources {
            let mut mount_scopes = scopes.to_vec();
            mount_scopes.push(auth::pull_scope(&from));
            let mut url = join(&ep.base, &format!("/v2/{path}/blobs/uploads/"))?;
            url.query_pairs_mut()
                .append_pair("mount", &digest.to_string())
                .append_pair("from", &from);
            let resp = self
                .send(ep, &mount_scopes, Method::POST, url, op, &|rb| {
                    Ok(rb.header(CONTENT_LENGTH, "0"))
                })
                .await?;
            match resp.status() {
                StatusCode::CREATED => {
                    self.add_blob_source(&ep.registry, path, digest);
                    return Ok(BlobOutcome::Mounted(from));
                }
                StatusCode::ACCEPTED => {
                    // Mount refused, but an upload session was opened: use it.
                    session = Some(location(ep, &resp)?);
                    break;
                }
                _ => {
                    // Not fatal: fall back to uploading.
                    continue;
                }
            }
        }

        let location = match session {
            Some(l) => l,
            None => {
                let url = join(&ep.base, &format!("/v2/{path}/blobs/uploads/"))?;
                let resp = self
                    .send(ep, scopes, Method::POST, url, op, &|rb| {
                        Ok(rb.header(CONTENT_LENGTH, "0"))
                    })
                    .await?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(self
                        .status_error(ep, op, "POST", resp, Missing::Other)
                        .await);
                }
                location(ep, &resp)?
            }
        };

        let sent = Arc::new(AtomicU64::new(0));
        let upload = async {
            match self.inner.config.upload_chunk_size {
                None => {
                    self.upload_monolithic(ep, scopes, op, location, desc, store, &sent)
                        .await
                }
                Some(chunk) => {
                    self.upload_chunked(ep, scopes, op, location, desc, store, &sent, chunk.max(1))
                        .await
                }
            }
        };
        let resp = match show {
            Some((id, progress)) => {
                with_ticker(upload, || {
                    progress.update(&ProgressMessage::transfer(
                        id,
                        "Pushing",
                        sent.load(Ordering::Relaxed),
                        Some(desc.size),
                    ))
                })
                .await?
            }
            None => upload.await?,
        };
        if resp.status() != StatusCode::CREATED {
            return Err(self.status_error(ep, op, "PUT", resp, Missing::Other).await);
        }
        if let Some(d) = header_digest(resp.headers()) {
            if &d != digest {
                return Err(Error::DigestMismatch {
                    what: "uploaded blob",
                    repository: op.repo_name(),
                    expected: digest.clone(),
                    actual: d,
                });
            }
        }
        self.add_blob_source(&ep.registry, path, digest);
        Ok(BlobOutcome::Uploaded)
    }

    /// `PUT <location>?digest=…` with the whole blob as a streamed body.
    #[allow(clippy::too_many_arguments)]
    async fn upload_monolithic(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        op: &Op<'_>,
        mut location: Url,
        desc: &Descriptor,
        store: &ContentStore,
        sent: &Arc<AtomicU64>,
    ) -> Result<Response> {
        location
            .query_pairs_mut()
            .append_pair("digest", &desc.digest.to_string());
        let path = store.path(&desc.digest);
        let size = desc.size;
        let counter = sent.clone();
        self.send(ep, scopes, Method::PUT, location, op, &move |rb| {
            let file = std::fs::File::open(&path).map_err(|source| {
                Error::Store(image::content::ContentError::Io {
                    what: "opening blob to push",
                    path: path.clone(),
                    source,
                })
            })?;
            counter.store(0, Ordering::Relaxed);
            let c = counter.clone();
            let body = tokio_util::io::ReaderStream::with_capacity(
                tokio::fs::File::from_std(file),
                256 * 1024,
            )
            .inspect(move |r| {
                if let Ok(b) = r {
                    c.fetch_add(b.len() as u64, Ordering::Relaxed);
                }
            });
            Ok(rb
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, size.to_string())
                .body(reqwest::Body::wrap_stream(body)))
        })
        .await
    }

    /// `PATCH` chunks with `Content-Range`, then `PUT <location>?digest=…` with no body.
    #[allow(clippy::too_many_arguments)]
    async fn upload_chunked(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        op: &Op<'_>,
        mut location: Url,
        desc: &Descriptor,
        store: &ContentStore,
        sent: &Arc<AtomicU64>,
        chunk_size: u64,
    ) -> Result<Response> {
        let path = store.path(&desc.digest);
        let mut file = tokio::fs::File::open(&path).await.map_err(|source| {
            Error::Store(image::content::ContentError::Io {
                what: "opening blob to push",
                path: path.clone(),
                source,
            })
        })?;
        let mut offset: u64 = 0;
        while offset < desc.size {
            let want = chunk_size.min(desc.size - offset) as usize;
            let mut buf = vec![0u8; want];
            file.read_exact(&mut buf).await.map_err(|source| {
                Error::Store(image::content::ContentError::Io {
                    what: "reading blob to push",
                    path: path.clone(),
                    source,
                })
            })?;
            let body = bytes::Bytes::from(buf);
            let end = offset + want as u64 - 1;
            let range = format!("{offset}-{end}");
            let resp = self
                .send(ep, scopes, Method::PATCH, location.clone(), op, &|rb| {
                    Ok(rb
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_RANGE, range.clone())
                        .header(CONTENT_LENGTH, want.to_string())
                        .body(body.clone()))
                })
                .await?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(self
                    .status_error(ep, op, "PATCH", resp, Missing::Other)
                    .await);
            }
            location = self::location(ep, &resp)?;
            offset = end + 1;
            sent.store(offset, Ordering::Relaxed);
        }
        location
            .query_pairs_mut()
            .append_pair("digest", &desc.digest.to_string());
        self.send(ep, scopes, Method::PUT, location, op, &|rb| {
            Ok(rb
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, "0"))
        })
        .await
    }

    /// `PUT /v2/<name>/manifests/<tag or digest>`; returns the manifest's digest.
    async fn put_manifest(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        op: &Op<'_>,
        target: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest> {
        let url = join(
            &ep.base,
            &format!("/v2/{}/manifests/{target}", op.reference.path()),
        )?;
        let body = bytes::Bytes::copy_from_slice(bytes);
        let resp = self
            .send(ep, scopes, Method::PUT, url, op, &|rb| {
                Ok(rb.header(CONTENT_TYPE, media_type).body(body.clone()))
            })
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(self.status_error(ep, op, "PUT", resp, Missing::Other).await);
        }
        let digest = Digest::sha256(bytes);
        if let Some(d) = header_digest(resp.headers()) {
            if d.algorithm() == digest.algorithm() && d != digest {
                return Err(Error::DigestMismatch {
                    what: "pushed manifest",
                    repository: op.repo_name(),
                    expected: digest,
                    actual: d,
                });
            }
        }
        Ok(digest)
    }
}

/// The upload session URL from a response's `Location` (relative or absolute).
fn location(ep: &Endpoint, resp: &Response) -> Result<Url> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Error::Protocol(format!(
                "{} answered {} without a Location header for the upload session",
                resp.url(),
                resp.status()
            ))
        })?;
    join(&ep.base, loc)
}

/// Runs `fut`, calling `tick` every 100 ms meanwhile and once at the end.
async fn with_ticker<F: std::future::Future>(fut: F, tick: impl Fn()) -> F::Output {
    tokio::pin!(fut);
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            out = &mut fut => {
                tick();
                return out;
            }
            _ = interval.tick() => tick(),
        }
    }
}
