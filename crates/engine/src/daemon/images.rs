//! Image endpoints over the local image store: list, inspect, history, tag, remove, pull
//! (streaming the registry client's progress as Docker's JSON messages).

use std::sync::Arc;

use ::image::store::{DeleteItem, ImageRecord, Usage};
use api::backend::{ApiResult, ImageListOptions, ImagePullOptions, ImageRemoveOptions};
use api::stream::JsonStream;
use api::types::*;
use api::ApiError;

use super::{blocking, Inner};

fn no_image(name: &str) -> ApiError {
    ApiError::no_such_image(name)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn labels_of(
    inner: &Inner,
    img: &ImageRecord,
) -> Option<std::collections::BTreeMap<String, String>> {
    let cfg = inner.images.config(&img.id).ok()?;
    let v = serde_json::to_value(cfg.config?).ok()?;
    serde_json::from_value(v.get("Labels")?.clone()).ok()
}

/// `GET /images/json`.
pub async fn list(inner: &Arc<Inner>, opts: ImageListOptions) -> ApiResult<Vec<ImageSummary>> {
    let inner = inner.clone();
    blocking(move || {
        let used = container_images(&inner);
        let mut out = Vec::new();
        for img in inner.images.list().map_err(internal)? {
            let tags = img.familiar_tags();
            if let Some(d) = opts.filters.bool_value("dangling")? {
                if d != img.is_dangling() {
                    continue;
                }
            }
            let refs = opts.filters.get("reference");
            if !refs.is_empty() && !tags.iter().any(|t| refs.iter().any(|r| ref_match(r, t))) {
                continue;
            }
            let labels = labels_of(&inner, &img);
            if opts.filters.contains("label")
                && !opts
                    .filters
                    .match_labels("label", &labels.clone().unwrap_or_default())
            {
                continue;
            }
            let id = img.id.to_string();
            out.push(ImageSummary {
                containers: used.iter().filter(|u| **u == id).count() as i64,
                id,
                parent_id: img
                    .parent
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                repo_tags: tags,
                repo_digests: img.familiar_digests(),
                created: img.created_unix,
                size: img.size as i64,
                shared_size: -1,
                labels,
                ..Default::default()
            });
        }
        out.sort_by_key(|i| std::cmp::Reverse(i.created));
        Ok(out)
    })
    .await
}

fn ref_match(pattern: &str, tag: &str) -> bool {
    let (repo, t) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    match pattern.rsplit_once(':') {
        Some((p, pt)) if !pt.contains('/') => glob(p, repo) && glob(pt, t),
        _ => glob(pattern, repo),
    }
}

fn glob(p: &str, s: &str) -> bool {
    match p.find('*') {
        None => p == s,
        Some(i) => {
            let (pre, rest) = (&p[..i], &p[i + 1..]);
            if !s.starts_with(pre) {
                return false;
            }
            let s = &s[pre.len()..];
            (0..=s.len()).any(|k| s.is_char_boundary(k) && glob(rest, &s[k..]))
        }
    }
}

/// Image IDs used by containers.
pub(crate) fn container_images(inner: &Inner) -> Vec<String> {
    inner
        .containers
        .lock()
        .map(|m| m.values().map(|c| c.image_id.clone()).collect())
        .unwrap_or_default()
}

fn inspect_value(inner: &Inner, img: &ImageRecord) -> ApiResult<ImageInspect> {
    let cfg = inner.images.config(&img.id).map_err(internal)?;
    let run = match &cfg.config {
        Some(c) => Some(
            serde_json::from_value(serde_json::to_value(c).map_err(internal)?).map_err(internal)?,
        ),
        None => None,
    };
    let other = |k: &str| {
        cfg.other
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let lower: Vec<String> = img
        .chain_ids()
        .iter()
        .rev()
        .map(|c| inner.images.snapshots.fs_dir(c).display().to_string())
        .collect();
    Ok(ImageInspect {
        id: img.id.to_string(),
        repo_tags: img.familiar_tags(),
        repo_digests: img.familiar_digests(),
        parent: img
            .parent
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        comment: other("comment"),
        created: cfg.created.clone().unwrap_or_default(),
        docker_version: other("docker_version"),
        author: cfg.author.clone().unwrap_or_default(),
        config: run,
        architecture: cfg.architecture.clone(),
        variant: cfg.variant.clone().unwrap_or_default(),
        os: cfg.os.clone(),
        size: img.size as i64,
        graph_driver: DriverData {
            name: "overlay2".into(),
            data: Some(
                [("LowerDir".to_string(), lower.join(":"))]
                    .into_iter()
                    .collect(),
            ),
        },
        root_fs: RootFs {
            kind: "layers".into(),
            layers: Some(cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect()),
        },
        metadata: Some(serde_json::json!({
            "LastTagTime": ::image::config::unix_to_rfc3339(img.added_unix, 0)
        })),
        ..Default::default()
    })
}

/// `GET /images/{name}/json`.
pub async fn inspect(inner: &Arc<Inner>, name: &str) -> ApiResult<ImageInspect> {
    let (inner, name) = (inner.clone(), name.to_string());
    blocking(move || {
        let img = inner.images.resolve(&name).map_err(|_| no_image(&name))?;
        inspect_value(&inner, &img)
    })
    .await
}

/// `GET /images/{name}/history`.
pub async fn history(inner: &Arc<Inner>, name: &str) -> ApiResult<Vec<ImageHistoryItem>> {
    let (inner, name) = (inner.clone(), name.to_string());
    blocking(move || {
        let img = inner.images.resolve(&name).map_err(|_| no_image(&name))?;
        let rows = inner.images.history(&name).map_err(internal)?;
        let tags = img.familiar_tags();
        Ok(rows
            .into_iter()
            .map(|r| ImageHistoryItem {
                tags: r.id.as_ref().map(|_| tags.clone()),
                id: r
                    .id
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "<missing>".into()),
                created: r.created_unix,
                created_by: r.created_by,
                size: r.size as i64,
                comment: r.comment,
            })
            .collect())
    })
    .await
}

/// `POST /images/{name}/tag`.
pub async fn tag(inner: &Arc<Inner>, name: &str, repo: &str, tag: &str) -> ApiResult<()> {
    let (inner, name) = (inner.clone(), name.to_string());
    let target = format!("{repo}:{}", if tag.is_empty() { "latest" } else { tag });
    blocking(move || {
        let img = inner.images.resolve(&name).map_err(|_| no_image(&name))?;
        inner
            .images
            .tag(&name, &target)
            .map(|_| ())
            .map_err(|e| ApiError::InvalidParameter(e.to_string()))?;
        let shown = ::image::Reference::parse_normalized(&target)
            .map(|r| r.familiar_string())
            .unwrap_or(target);
        inner.bus.image("tag", &img.id.to_string(), &shown);
        Ok(())
    })
    .await
}

/// `DELETE /images/{name}`.
pub async fn remove(
    inner: &Arc<Inner>,
    name: &str,
    opts: ImageRemoveOptions,
) -> ApiResult<Vec<ImageDeleteItem>> {
    let (inner, name) = (inner.clone(), name.to_string());
    blocking(move || {
        let img_id = inner
            .images
            .resolve(&name)
            .map_err(|_| no_image(&name))?
            .id
            .to_string();
        let usage = usage(&inner, |c| {
            c.state.status == "running" || c.state.status == "paused"
        })?;
        let o = inner
            .images
            .remove(&name, opts.force, !opts.noprune, &usage)
            .map_err(|e| ApiError::Conflict(e.to_string()))?;
        Ok(delete_items(&inner, o.items, Some(&img_id)))
    })
    .await
}

/// Forwards progress as JSON messages, holding back the summary (`Digest:`, `Status:`)
/// until the image is stored and tagged, so it never claims more than is true.
struct ChannelProgress {
    tx: tokio::sync::mpsc::UnboundedSender<Result<JsonMessage, ApiError>>,
    held: std::sync::Mutex<Vec<JsonMessage>>,
}

impl ChannelProgress {
    fn release(&self) {
        if let Ok(mut h) = self.held.lock() {
            for m in h.drain(..) {
                let _ = self.tx.send(Ok(m));
            }
        }
    }
}

impl registry::Progress for ChannelProgress {
    fn update(&self, m: &registry::ProgressMessage) {
        if let Ok(j) = serde_json::from_value::<JsonMessage>(m.to_json()) {
            if m.id.is_none()
                && (m.status.starts_with("Digest:") || m.status.starts_with("Status:"))
            {
                if let Ok(mut h) = self.held.lock() {
                    h.push(j);
                }
                return;
            }
            let _ = self.tx.send(Ok(j));
        }
    }
}

/// `POST /images/create?fromImage=`: pull, store, tag.
pub async fn pull(
    inner: &Arc<Inner>,
    opts: ImagePullOptions,
) -> ApiResult<JsonStream<JsonMessage>> {
    let name = if opts.tag.is_empty() {
        opts.from_image.clone()
    } else if opts.tag.starts_with("sha256:") {
        format!("{}@{}", opts.from_image, opts.tag)
    } else {
        format!("{}:{}", opts.from_image, opts.tag)
    };
    let reference = ::image::Reference::parse_normalized(&name)
        .map_err(|e| ApiError::InvalidParameter(e.to_string()))?
        .with_default_tag();
    let platform = match &opts.platform {
        Some(p) if !p.is_empty() => Some(
            registry::Platform::parse(p).map_err(|e| ApiError::InvalidParameter(e.to_string()))?,
        ),
        _ => None,
    };
    let creds = if !opts.auth.username.is_empty() {
        Some(registry::Credentials::new(
            opts.auth.username.clone(),
            opts.auth.password.clone(),
        ))
    } else {
        None
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let inner = inner.clone();
    tokio::spawn(async move {
        let client = match creds {
            Some(c) => inner.registry.with_credentials(reference.domain(), c),
            None => inner.registry.clone(),
        };
        let progress = ChannelProgress {
            tx: tx.clone(),
            held: std::sync::Mutex::new(Vec::new()),
        };
        let pulled = client
            .pull(
                &reference,
                platform.as_ref(),
                &inner.images.content,
                &progress,
            )
            .await;
        let pulled = match pulled {
            Ok(p) => p,
            Err(e) => {
                let _ = tx.send(Err(ApiError::NotFound(e.to_string())));
                return;
            }
        };
        let extra: Vec<::image::Digest> = pulled.index.iter().map(|i| i.digest.clone()).collect();
        let (inner2, reference2) = (inner.clone(), reference.clone());
        let digest = pulled.digest.clone();
        let mdigest = pulled.manifest_digest().clone();
        let added = blocking(move || {
            let img = inner2
                .images
                .add_from_manifest(&mdigest, &extra, None)
                .map_err(internal)?;
            if reference2.digest().is_none() {
                inner2
                    .images
                    .store
                    .tag(&img.id, &reference2)
                    .map_err(internal)?;
            }
            inner2
                .images
                .store
                .tag(&img.id, &reference2.name_only().with_digest(digest))
                .map_err(internal)?;
            Ok(img)
        })
        .await;
        match added {
            Ok(_) => {
                inner.bus.image(
                    "pull",
                    &reference.familiar_string(),
                    &reference.familiar_name(),
                );
                progress.release()
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    });
    Ok(Box::pin(futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|m| (m, rx)) },
    )))
}

/// Which containers use an image (running ones first), for `rmi` and image prune. `running`
/// says which container states count as running.
pub(crate) fn usage(
    inner: &Inner,
    running: impl Fn(&super::ContainerRecord) -> bool,
) -> ApiResult<impl Fn(&::image::Digest) -> Usage> {
    let users: Vec<(String, String, bool)> = inner
        .containers
        .lock()
        .map_err(|_| super::containers::poisoned())?
        .values()
        .map(|c| (c.image_id.clone(), c.id.clone(), running(c)))
        .collect();
    Ok(move |d: &::image::Digest| -> Usage {
        let d = d.to_string();
        let mut u = Usage::Unused;
        for (img, id, running) in &users {
            if *img == d {
                if *running {
                    return Usage::Running(id.clone());
                }
                u = Usage::Stopped(id.clone());
            }
        }
        u
    })
}

/// The store's delete report in the API's shape, publishing `untag`/`delete` events (an
/// untag's actor is `untag_actor`, else the tag itself).
pub(crate) fn delete_items(
    inner: &Inner,
    items: Vec<DeleteItem>,
    untag_actor: Option<&str>,
) -> Vec<ImageDeleteItem> {
    items
        .into_iter()
        .map(|i| match i {
            DeleteItem::Untagged(t) => {
                let actor = untag_actor.unwrap_or(&t).to_string();
                inner.bus.image("untag", &actor, &actor);
                ImageDeleteItem {
                    untagged: Some(t),
                    deleted: None,
                }
            }
            DeleteItem::Deleted(d) => {
                inner.bus.image("delete", &d.to_string(), &d.to_string());
                ImageDeleteItem {
                    untagged: None,
                    deleted: Some(d.to_string()),
                }
            }
        })
        .collect()
}
