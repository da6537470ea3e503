//! Moving images in and out of the daemon through the API, over the image and registry
//! crates' library functions (the same ones the berth CLI calls in-process): `docker save`
//! ([`::image::archive::save`]), `docker load` ([`::image::archive::load`]), `docker import`
//! ([`::image::archive::import`]), `docker push` ([`registry::Client::push`], progress streamed
//! as dockerd's JSON messages, ending with the `tag: digest: … size: …` line and its `aux`),
//! `docker login` (`POST /auth`, [`registry::Client::check_credentials`]) and
//! `docker image prune`.

use std::sync::Arc;

use ::image::store::ImageRecord;
use api::backend::{
    ApiResult, ImageImportOptions, ImageLoadOptions, ImagePushOptions, ImportSource,
};
use api::stream::{ByteStream, JsonStream};
use api::types::*;
use api::{ApiError, Filters};

use super::archive::{blocking_reader, byte_stream};
use super::{blocking, Inner};

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

type Tx = tokio::sync::mpsc::UnboundedSender<ApiResult<JsonMessage>>;

fn message_stream(
    rx: tokio::sync::mpsc::UnboundedReceiver<ApiResult<JsonMessage>>,
) -> JsonStream<JsonMessage> {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|m| (m, rx))
    }))
}

/// `GET /images/get?names=…`: a docker-save tarball, streamed as it is written.
pub async fn save(inner: &Arc<Inner>, names: Vec<String>) -> ApiResult<ByteStream> {
    let i2 = inner.clone();
    let names = blocking(move || {
        for n in &names {
            let img = i2
                .images
                .resolve(n)
                .map_err(|_| ApiError::no_such_image(n))?;
            i2.bus.image("save", &img.id.to_string(), n);
        }
        Ok(names)
    })
    .await?;
    let inner = inner.clone();
    Ok(byte_stream(move |w| {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        ::image::archive::save(&inner.images, &refs, w).map_err(|e| e.to_string())
    }))
}

/// `POST /images/load`: reads the tarball as it arrives; answers dockerd's messages:
/// `Loading layer` progress per layer (unless `quiet`), then
/// `{"stream":"Loaded image: …\n"}` lines. An unreadable archive is an HTTP error.
pub async fn load(
    inner: &Arc<Inner>,
    opts: ImageLoadOptions,
    tarball: ByteStream,
) -> ApiResult<JsonStream<JsonMessage>> {
    let reader = blocking_reader(tarball);
    let inner = inner.clone();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<ApiResult<JsonMessage>>();
    std::thread::spawn(move || {
        let quiet = opts.quiet;
        let progress = |id: &str, current: u64, total: u64| {
            if quiet {
                return;
            }
            let _ = tx.send(Ok(JsonMessage {
                status: Some("Loading layer".into()),
                progress_detail: Some(ProgressDetail {
                    current: Some(current as i64),
                    total: Some(total as i64),
                    units: None,
                }),
                id: Some(id.to_string()),
                ..Default::default()
            }));
        };
        let r = ::image::archive::load_with_progress(
            &inner.images,
            std::io::BufReader::new(reader),
            &progress,
        );
        match r {
            Ok(report) => {
                for (id, _) in &report.images {
                    inner.bus.image("load", &id.to_string(), &id.to_string());
                }
                for l in report.lines {
                    let _ = tx.send(Ok(JsonMessage::stream(format!("{l}\n"))));
                }
            }
            Err(e) => {
                let _ = tx.send(Err(ApiError::InvalidParameter(e.to_string())));
            }
        }
    });
    Ok(message_stream(rx))
}

/// `repo[:tag]` of an import or commit, tagged `latest` when no tag is given.
fn repo_tag(repo: &str, tag: &str) -> ApiResult<Option<::image::Reference>> {
    if repo.is_empty() {
        return Ok(None);
    }
    let s = if tag.is_empty() {
        repo.to_string()
    } else {
        format!("{repo}:{tag}")
    };
    let r = ::image::Reference::parse_normalized(&s)
        .map_err(|e| ApiError::InvalidParameter(e.to_string()))?;
    if r.digest().is_some() {
        return Err(ApiError::InvalidParameter(
            "refusing to create a tag with a digest reference".into(),
        ));
    }
    Ok(Some(r.with_default_tag()))
}

/// `POST /images/create?fromSrc=-`: a root filesystem tarball from the body as a one-layer
/// image; the answer's last message carries the image ID.
pub async fn import(
    inner: &Arc<Inner>,
    opts: ImageImportOptions,
) -> ApiResult<JsonStream<JsonMessage>> {
    let body = match opts.source {
        ImportSource::Body(b) => b,
        ImportSource::Url(u) => {
            return import_url(inner, u, opts.repo, opts.tag, opts.message, opts.changes).await
        }
    };
    let reference = repo_tag(&opts.repo, &opts.tag)?;
    let reader = blocking_reader(body);
    let inner = inner.clone();
    let o = ::image::archive::ImportOptions {
        reference,
        changes: opts.changes,
        message: Some(opts.message).filter(|m| !m.is_empty()),
        source: "-".into(),
    };
    let img = blocking(move || {
        let img = ::image::archive::import(&inner.images, std::io::BufReader::new(reader), &o)
            .map_err(|e| match e {
                ::image::archive::ArchiveError::Change(..) => {
                    ApiError::InvalidParameter(e.to_string())
                }
                e => internal(e),
            })?;
        inner
            .bus
            .image("import", &img.id.to_string(), &img.id.to_string());
        Ok(img)
    })
    .await?;
    Ok(Box::pin(futures_util::stream::iter([Ok(
        JsonMessage::status(None, img.id.to_string()),
    )])))
}

/// Bytes between two `Importing` progress messages (dockerd's progress reader: 512 KiB).
const IMPORT_PROGRESS_STEP: u64 = 512 * 1024;

/// `GET`s an import's URL as dockerd does: a URL without a scheme is `http://`; a status of
/// 400 and above is an error naming the URL, the status and the body, classed as dockerd
/// classes it (404 not found, 400 invalid, 401 unauthorized, 403 forbidden, else 500).
async fn fetch_import_url(src: &str) -> ApiResult<reqwest::Response> {
    let url = reqwest::Url::parse(src)
        .map_err(|e| ApiError::InvalidParameter(format!("parse \"{src}\": {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::Internal(format!(
            "Get \"{src}\": unsupported protocol scheme \"{}\"",
            url.scheme()
        )));
    }
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(internal)?;
    let resp = client.get(url).send().await.map_err(|e| {
        let mut msg = format!("Get \"{src}\"");
        let mut cause: Option<&dyn std::error::Error> = Some(&e);
        while let Some(c) = cause {
            let t = c.to_string();
            if !msg.contains(&t) {
                msg.push_str(": ");
                msg.push_str(&t);
            }
            cause = c.source();
        }
        ApiError::Internal(msg)
    })?;
    let status = resp.status();
    if status.as_u16() < 400 {
        return Ok(resp);
    }
    let mut msg = format!(
        "failed to GET {src} with status {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    match resp.bytes().await {
        Ok(b) => {
            msg.push_str(": ");
            msg.push_str(String::from_utf8_lossy(&b).trim());
        }
        Err(_) => msg.push_str(": error reading body"),
    }
    Err(match status.as_u16() {
        400 => ApiError::InvalidParameter(msg),
        401 => ApiError::Unauthorized(msg),
        403 => ApiError::Forbidden(msg),
        404 => ApiError::NotFound(msg),
        _ => ApiError::Internal(msg),
    })
}

/// A size as Docker's progress bars print it (decimal units, 4 significant digits).
fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let t = format!("{v:.digits$}");
    let t = if t.contains('.') {
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        t
    };
    format!("{t}{}", units[i])
}

/// An `Importing` progress message: byte counts and the rendered bar, as dockerd's
/// progress reader sends them.
fn import_progress(current: u64, total: Option<u64>) -> JsonMessage {
    let bar = match total.filter(|t| *t > 0) {
        Some(t) => {
            let done = ((current.min(t) * 50) / t) as usize;
            format!(
                "[{}>{}] {:>8}/{}",
                "=".repeat(done),
                " ".repeat(50 - done),
                human_size(current),
                human_size(t)
            )
        }
        None => format!("{:>8}", human_size(current)),
    };
    JsonMessage {
        status: Some("Importing".into()),
        progress_detail: Some(ProgressDetail {
            current: Some(current as i64),
            total: total.map(|t| t as i64),
            units: None,
        }),
        progress: Some(bar),
        ..Default::default()
    }
}

/// `POST /images/create?fromSrc=URL`: the daemon downloads the tarball (`http`/`https`)
/// and imports it, answering dockerd's messages: `Downloading from URL`, `Importing`
/// progress, then the image ID. A failed download is an HTTP error before any message.
async fn import_url(
    inner: &Arc<Inner>,
    src: String,
    repo: String,
    tag: String,
    message: String,
    changes: Vec<String>,
) -> ApiResult<JsonStream<JsonMessage>> {
    let src = if src.contains("://") {
        src
    } else {
        format!("http://{src}")
    };
    let reference = repo_tag(&repo, &tag)?;
    let resp = fetch_import_url(&src).await?;
    let total = resp.content_length();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<ApiResult<JsonMessage>>();
    let _ = tx.send(Ok(JsonMessage::status(
        None,
        format!("Downloading from {src}"),
    )));
    struct Counting {
        inner: std::pin::Pin<
            Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>,
        >,
        current: u64,
        reported: u64,
        total: Option<u64>,
        tx: Tx,
        src: String,
    }
    let counting = Counting {
        inner: Box::pin(resp.bytes_stream()),
        current: 0,
        reported: 0,
        total,
        tx: tx.clone(),
        src: src.clone(),
    };
    let body: api::stream::ByteStream = Box::pin(futures_util::stream::unfold(
        counting,
        |mut st| async move {
            use futures_util::StreamExt;
            match st.inner.next().await {
                Some(Ok(b)) => {
                    st.current += b.len() as u64;
                    if st.current - st.reported >= IMPORT_PROGRESS_STEP {
                        st.reported = st.current;
                        let _ = st.tx.send(Ok(import_progress(st.current, st.total)));
                    }
                    Some((Ok(b), st))
                }
                Some(Err(e)) => {
                    let msg = format!("reading {}: {e}", st.src);
                    Some((Err(ApiError::Internal(msg)), st))
                }
                None => {
                    if st.current != st.reported || st.current == 0 {
                        st.reported = st.current;
                        let _ = st.tx.send(Ok(import_progress(st.current, st.total)));
                    }
                    None
                }
            }
        },
    ));
    let reader = blocking_reader(body);
    let inner = inner.clone();
    let o = ::image::archive::ImportOptions {
        reference,
        changes,
        message: Some(message).filter(|m| !m.is_empty()),
        source: src,
    };
    tokio::task::spawn_blocking(move || {
        let r = ::image::archive::import(&inner.images, std::io::BufReader::new(reader), &o);
        let _ = match r {
            Ok(img) => {
                inner
                    .bus
                    .image("import", &img.id.to_string(), &img.id.to_string());
                tx.send(Ok(JsonMessage::status(None, img.id.to_string())))
            }
            Err(e @ ::image::archive::ArchiveError::Change(..)) => {
                tx.send(Err(ApiError::InvalidParameter(e.to_string())))
            }
            Err(e) => tx.send(Err(internal(e))),
        };
    });
    Ok(message_stream(rx))
}

/// Forwards the registry client's progress as JSON messages.
struct ChannelProgress(Tx);

impl registry::Progress for ChannelProgress {
    fn update(&self, m: &registry::ProgressMessage) {
        if let Ok(j) = serde_json::from_value::<JsonMessage>(m.to_json()) {
            let _ = self.0.send(Ok(j));
        }
    }
}

/// The local images to push for `name` (`repo` or `repo:tag`) and `tag` (empty: every tag
/// of the repository, as dockerd does).
fn push_targets(
    inner: &Inner,
    name: &str,
    tag: &str,
) -> ApiResult<Vec<(::image::Reference, ImageRecord)>> {
    let full = if tag.is_empty() {
        name.to_string()
    } else {
        format!("{name}:{tag}")
    };
    let reference = ::image::Reference::parse_normalized(&full)
        .map_err(|e| ApiError::InvalidParameter(e.to_string()))?;
    let missing = || {
        ApiError::NotFound(format!(
            "An image does not exist locally with the tag: {}",
            reference.familiar_name()
        ))
    };
    if reference.tag().is_some() || reference.digest().is_some() {
        let img = inner.images.resolve(&full).map_err(|_| missing())?;
        return Ok(vec![(reference, img)]);
    }
    let mut out = Vec::new();
    for img in inner.images.list().map_err(internal)? {
        for t in &img.repo_tags {
            if t.name() == reference.name() {
                out.push((t.clone(), img.clone()));
            }
        }
    }
    if out.is_empty() {
        return Err(missing());
    }
    out.sort_by_key(|(r, _)| r.to_string());
    Ok(out)
}

/// `POST /images/{name}/push`.
pub async fn push(
    inner: &Arc<Inner>,
    opts: ImagePushOptions,
) -> ApiResult<JsonStream<JsonMessage>> {
    let (i2, name, tag) = (inner.clone(), opts.name.clone(), opts.tag.clone());
    let targets = blocking(move || push_targets(&i2, &name, &tag)).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let inner = inner.clone();
    let auth = opts.auth;
    tokio::spawn(async move {
        for (reference, img) in targets {
            let client = if !auth.username.is_empty() {
                inner.registry.with_credentials(
                    reference.domain(),
                    registry::Credentials::new(auth.username.clone(), auth.password.clone()),
                )
            } else {
                inner.registry.clone()
            };
            let (i2, img2) = (inner.clone(), img.clone());
            let manifest =
                blocking(move || i2.images.manifest_for_push(&img2).map_err(internal)).await;
            let (_, bytes, media_type) = match manifest {
                Ok(m) => m,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let progress = ChannelProgress(tx.clone());
            let pushed = client
                .push(
                    &reference,
                    &bytes,
                    &media_type,
                    &inner.images.content,
                    &progress,
                )
                .await;
            let pushed = match pushed {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(ApiError::Internal(e.to_string())));
                    return;
                }
            };
            inner.bus.image(
                "push",
                &reference.familiar_string(),
                &reference.familiar_name(),
            );
            let _ = tx.send(Ok(JsonMessage {
                progress_detail: Some(ProgressDetail::default()),
                aux: Some(serde_json::json!({
                    "Tag": pushed.tag.clone().unwrap_or_default(),
                    "Digest": pushed.digest.to_string(),
                    "Size": pushed.size,
                })),
                ..Default::default()
            }));
            let (i2, digest) = (inner.clone(), pushed.digest.clone());
            let _ = blocking(move || {
                i2.images
                    .store
                    .tag(&img.id, &reference.name_only().with_digest(digest))
                    .map_err(internal)
            })
            .await;
        }
    });
    Ok(message_stream(rx))
}

/// `POST /auth`: checks the credentials against the registry (`serveraddress`, Docker Hub
/// when empty); the registry answering without asking for credentials also succeeds.
pub async fn auth(inner: &Arc<Inner>, a: AuthConfig) -> ApiResult<AuthResponse> {
    let (user, pass) = if !a.username.is_empty() {
        (a.username.clone(), a.password.clone())
    } else if !a.auth.is_empty() {
        let c = registry::Credentials::decode(&a.auth)
            .map_err(|e| ApiError::InvalidParameter(format!("invalid auth: {e}")))?;
        (c.username, c.password)
    } else {
        (String::new(), String::new())
    };
    let server = if a.serveraddress.is_empty() {
        "docker.io".to_string()
    } else {
        a.serveraddress
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .trim_end_matches("/v1")
            .trim_end_matches("/v2")
            .to_string()
    };
    let creds = registry::Credentials::new(user, pass);
    inner
        .registry
        .check_credentials(&server, &creds)
        .await
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    Ok(AuthResponse {
        status: "Login Succeeded".into(),
        identity_token: String::new(),
    })
}

/// `POST /images/prune` (`dangling=false`: every unused image; `until`, `label`,
/// `label!`).
pub async fn prune(inner: &Arc<Inner>, filters: Filters) -> ApiResult<ImagePruneResponse> {
    let all = filters.bool_value("dangling")? == Some(false);
    let until = match filters.get("until").first() {
        Some(u) => Some(super::containers::parse_until(u)?),
        None => None,
    };
    let inner = inner.clone();
    blocking(move || {
        let usage = super::images::usage(&inner, super::containers::is_running)?;
        let labels_ok = |img: &ImageRecord| -> bool {
            if !filters.contains("label") && !filters.contains("label!") {
                return true;
            }
            let labels: std::collections::BTreeMap<String, String> = inner
                .images
                .config(&img.id)
                .ok()
                .and_then(|c| c.config)
                .and_then(|c| c.labels)
                .unwrap_or_default();
            (!filters.contains("label") || filters.match_labels("label", &labels))
                && (!filters.contains("label!") || !filters.match_labels("label!", &labels))
        };
        let filter =
            |img: &ImageRecord| until.is_none_or(|u| img.created_unix < u) && labels_ok(img);
        let (o, reclaimed) = inner.images.prune(all, &usage, &filter).map_err(internal)?;
        let items = super::images::delete_items(&inner, o.items, None);
        let mut a = std::collections::BTreeMap::new();
        a.insert("reclaimed".to_string(), reclaimed.to_string());
        inner.bus.publish("image", "prune", "", a);
        Ok(ImagePruneResponse {
            images_deleted: Some(items),
            space_reclaimed: reclaimed,
        })
    })
    .await
}
