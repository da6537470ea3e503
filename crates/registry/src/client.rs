//! The registry [`Client`]: its configuration, how a registry name becomes an endpoint
//! (HTTPS, or plain HTTP for insecure registries — loopback addresses and the configured
//! `insecure_registries`, as dockerd does), sending requests with authentication (answering
//! 401 challenges with basic credentials or bearer tokens, cached per registry, user and
//! scope), mapping error statuses to [`Error`]s, and the small operations: `login`,
//! `logout`, `manifest`, `blob`. Pull and push live in their own modules.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use image::digest::Digest;
use image::reference::Reference;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, USER_AGENT};
use reqwest::{Method, Response, StatusCode, Url};

use crate::auth::{self, Challenge, Token};
use crate::credentials::{normalize_registry, CredentialStore, Credentials};
use crate::error::{describe_body, Error, Result};
use crate::manifest::{self, FetchedManifest, MANIFEST_ACCEPT, MAX_MANIFEST_SIZE};

/// How the client behaves. `Default` is Docker's behaviour with berth's credential files.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The `User-Agent` sent with every request.
    pub user_agent: String,
    /// Registries reachable over plain HTTP or with unverified TLS, besides loopback ones:
    /// `host`, `host:port`, or a CIDR (`10.0.0.0/8`) matched against the host's addresses.
    pub insecure_registries: Vec<String>,
    /// Where credentials are looked up and `login` stores them.
    pub credentials: CredentialStore,
    /// Layers downloaded at once (Docker: 3).
    pub max_concurrent_downloads: usize,
    /// Layers uploaded at once (Docker: 5).
    pub max_concurrent_uploads: usize,
    /// Upload blobs in PATCH chunks of this many bytes; None uploads each blob in one PUT.
    pub upload_chunk_size: Option<u64>,
    /// A `certs.d`-style directory: `<dir>/<registry>/*.crt` are extra CA roots for that
    /// registry (Docker uses /etc/docker/certs.d).
    pub certs_dir: Option<PathBuf>,
    /// Timeout for establishing connections.
    pub connect_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            insecure_registries: Vec::new(),
            credentials: CredentialStore::default_paths(),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            upload_chunk_size: None,
            certs_dir: None,
            connect_timeout: Duration::from_secs(15),
        }
    }
}

/// A client for OCI Distribution registries. Cheap to clone: clones share connection pools,
/// endpoints, the token cache and the blob-source memory used for cross-repository mounts.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    /// Credentials given for one operation (the engine API's `X-Registry-Auth`), overriding
    /// the credential store for that registry.
    override_auth: Option<Arc<(String, Credentials)>>,
}

pub(crate) struct Inner {
    pub(crate) config: ClientConfig,
    secure: reqwest::Client,
    insecure: reqwest::Client,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    tokens: Mutex<HashMap<String, Token>>,
    /// digest -> (registry, repository path) where the blob is known to exist.
    blob_sources: Mutex<HashMap<Digest, Vec<(String, String)>>>,
}

/// A registry endpoint that answered `GET /v2/`.
pub(crate) struct Endpoint {
    /// The registry as named in references (`docker.io`, `localhost:5000`).
    pub registry: String,
    /// `https://host[:port]` or `http://host[:port]`.
    pub base: Url,
    /// The HTTP client to use for it.
    pub http: reqwest::Client,
    /// The last challenge it sent (None: no authentication needed).
    pub challenge: Mutex<Option<Challenge>>,
}

/// What an operation is doing, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Pull,
    Push,
    Fetch,
}

/// Context of a request for mapping failures to errors.
pub(crate) struct Op<'a> {
    pub action: Action,
    pub reference: &'a Reference,
}

impl Op<'_> {
    /// The repository in familiar form, for messages.
    pub(crate) fn repo_name(&self) -> String {
        self.reference.name_only().familiar_string()
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn build_http(
    config: &ClientConfig,
    insecure: bool,
    roots: &[reqwest::Certificate],
) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .user_agent(config.user_agent.clone())
        .connect_timeout(config.connect_timeout)
        .redirect(reqwest::redirect::Policy::limited(10))
        .danger_accept_invalid_certs(insecure);
    for c in roots {
        b = b.add_root_certificate(c.clone());
    }
    b.build()
        .map_err(|e| Error::Protocol(format!("cannot set up the HTTP client: {e}")))
}

impl Client {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> Result<Client> {
        let secure = build_http(&config, false, &[])?;
        let insecure = build_http(&config, true, &[])?;
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                secure,
                insecure,
                endpoints: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashMap::new()),
                blob_sources: Mutex::new(HashMap::new()),
            }),
            override_auth: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// A handle that uses `creds` for `registry` instead of the credential store (for one
    /// engine API request carrying `X-Registry-Auth`). Shares everything else with `self`.
    pub fn with_credentials(&self, registry: &str, creds: Credentials) -> Client {
        Client {
            inner: self.inner.clone(),
            override_auth: Some(Arc::new((normalize_registry(registry), creds))),
        }
    }

    /// The credentials used for `registry`, if any.
    pub fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>> {
        let reg = normalize_registry(registry);
        if let Some(o) = &self.override_auth {
            if o.0 == reg {
                return Ok(Some(o.1.clone()));
            }
        }
        Ok(self.inner.config.credentials.get(&reg)?)
    }

    /// Remembers that `digest` exists in `repository` on `registry` (pull and push do this
    /// themselves); push then mounts it from there instead of uploading it.
    pub fn add_blob_source(&self, registry: &str, repository: &str, digest: &Digest) {
        if let Ok(mut m) = self.inner.blob_sources.lock() {
            let v = m.entry(digest.clone()).or_default();
            let entry = (registry.to_string(), repository.to_string());
            if !v.contains(&entry) {
                v.push(entry);
            }
        }
    }

    /// Where `digest` is known to exist: (registry, repository path) pairs.
    pub fn blob_sources(&self, digest: &Digest) -> Vec<(String, String)> {
        self.inner
            .blob_sources
            .lock()
            .map(|m| m.get(digest).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Whether `registry` may be reached over plain HTTP / unverified TLS: loopback hosts
    /// (`localhost`, 127.0.0.0/8, ::1) and the configured insecure registries.
    pub async fn is_insecure(&self, registry: &str) -> bool {
        let (host, _) = split_host_port(registry);
        let ip: Option<IpAddr> = host.parse().ok();
        if host.eq_ignore_ascii_case("localhost") || ip.map(|i| i.is_loopback()).unwrap_or(false) {
            return true;
        }
        let mut cidrs = Vec::new();
        for entry in &self.inner.config.insecure_registries {
            let e = normalize_registry(entry);
            if e == registry || (!e.contains(':') && e.eq_ignore_ascii_case(host)) {
                return true;
            }
            if let Some(c) = Cidr::parse(entry.trim()) {
                cidrs.push(c);
            }
        }
        if cidrs.is_empty() {
            return false;
        }
        let addrs: Vec<IpAddr> = match ip {
            Some(i) => vec![i],
            None => match tokio::net::lookup_host((host, 0)).await {
                Ok(it) => it.map(|a| a.ip()).collect(),
                Err(_) => Vec::new(),
            },
        };
        addrs.iter().any(|a| cidrs.iter().any(|c| c.contains(a)))
    }

    /// The endpoint for `registry`, found by `GET /v2/` on each candidate URL (HTTPS first;
    /// for insecure registries HTTPS without verification, then HTTP). Cached.
    pub(crate) async fn endpoint(&self, registry: &str) -> Result<Arc<Endpoint>> {
        if let Some(ep) = self
            .inner
            .endpoints
            .lock()
            .ok()
            .and_then(|m| m.get(registry).cloned())
        {
            return Ok(ep);
        }
        let host = if registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            registry
        };
        let insecure = self.is_insecure(registry).await;
        let secure_http = match self.custom_roots(registry)? {
            Some(roots) => build_http(&self.inner.config, false, &roots)?,
            None => self.inner.secure.clone(),
        };
        let mut candidates = vec![];
        if insecure {
            candidates.push((format!("https://{host}"), self.inner.insecure.clone()));
            candidates.push((format!("http://{host}"), self.inner.insecure.clone()));
        } else {
            candidates.push((format!("https://{host}"), secure_http));
        }
        let mut failures = Vec::new();
        for (base, http) in candidates {
            let base = Url::parse(&base).map_err(|e| {
                Error::Protocol(format!("invalid registry address {registry:?}: {e}"))
            })?;
            let url = join(&base, "/v2/")?;
            let resp = http
                .get(url.clone())
                .header(USER_AGENT, &self.inner.config.user_agent)
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            match resp {
                Ok(r)
                    if r.status().is_success()
                        || r.status() == StatusCode::UNAUTHORIZED
                        || r.status() == StatusCode::FORBIDDEN =>
                {
                    let challenge = if r.status().is_success() {
                        None
                    } else {
                        auth::challenge_from_headers(r.headers())
                    };
                    let ep = Arc::new(Endpoint {
                        registry: registry.to_string(),
                        base,
                        http,
                        challenge: Mutex::new(challenge),
                    });
                    if let Ok(mut m) = self.inner.endpoints.lock() {
                        m.insert(registry.to_string(), ep.clone());
                    }
                    return Ok(ep);
                }
                Ok(r) => failures.push(format!("GET {url}: unexpected status {}", r.status())),
                Err(e) => failures.push(format!("GET {url}: {}", error_chain(&e))),
            }
        }
        let mut detail = failures.join("; ");
        if !insecure {
            detail.push_str(&format!(
                " (if {registry} is a plain-HTTP registry, add it to insecure-registries)"
            ));
        }
        Err(Error::Unreachable {
            registry: registry.to_string(),
            detail,
        })
    }

    fn custom_roots(&self, registry: &str) -> Result<Option<Vec<reqwest::Certificate>>> {
        let Some(dir) = &self.inner.config.certs_dir else {
            return Ok(None);
        };
        let dir = dir.join(registry);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Ok(None);
        };
        let mut roots = Vec::new();
        for ent in rd.flatten() {
            let p = ent.path();
            if p.extension().map(|e| e == "crt").unwrap_or(false) {
                let pem = std::fs::read(&p).map_err(|e| {
                    Error::Protocol(format!("reading CA certificate {}: {e}", p.display()))
                })?;
                let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                    Error::Protocol(format!(
                        "CA certificate {} is not valid PEM: {e}",
                        p.display()
                    ))
                })?;
                roots.push(cert);
            }
        }
        Ok(if roots.is_empty() { None } else { Some(roots) })
    }

    /// The `Authorization` header value for `scopes` on `ep`, fetching a token if needed.
    async fn authorization(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        refresh: bool,
        op: &Op<'_>,
    ) -> Result<Option<String>> {
        let challenge = ep.challenge.lock().ok().and_then(|c| c.clone());
        if challenge.is_none() {
            return Ok(None);
        }
        let creds = self.credentials_for(&ep.registry)?;
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic { .. }) => Ok(creds.map(|c| c.basic_header())),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let user = creds.as_ref().map(|c| c.username.as_str()).unwrap_or("");
                let key = format!("{}\0{}\0{}", ep.registry, user, scopes.join(" "));
                if !refresh {
                    if let Some(t) = self
                        .inner
                        .tokens
                        .lock()
                        .ok()
                        .and_then(|m| m.get(&key).filter(|t| t.is_fresh()).cloned())
                    {
                        return Ok(Some(format!("Bearer {}", t.value)));
                    }
                }
                let token = auth::fetch_token(
                    &ep.http,
                    &self.inner.config.user_agent,
                    &realm,
                    service.as_deref(),
                    scopes,
                    creds.as_ref(),
                )
                .await
                .map_err(|f| match f.status {
                    Some(401) | Some(403) => {
                        self.denied(op, &ep.registry, f.detail, creds.is_some())
                    }
                    _ => Error::Token {
                        realm: realm.clone(),
                        detail: f.detail,
                    },
                })?;
                let header = format!("Bearer {}", token.value);
                if let Ok(mut m) = self.inner.tokens.lock() {
                    m.retain(|_, t| t.is_fresh());
                    m.insert(key, token);
                }
                Ok(Some(header))
            }
        }
    }

    /// The error for a refused request.
    fn denied(&self, op: &Op<'_>, registry: &str, detail: String, had_creds: bool) -> Error {
        let repository = op.repo_name();
        match op.action {
            Action::Pull => Error::PullDenied { repository, detail },
            Action::Push => Error::PushDenied { repository, detail },
            Action::Fetch => Error::Unauthorized {
                action: "access",
                repository,
                registry: registry.to_string(),
                detail: if had_creds {
                    format!("{detail}; the stored credentials were refused")
                } else {
                    detail
                },
            },
        }
    }

    /// Sends a request to `ep`, authenticated for `scopes`. On a 401 with a challenge the
    /// request is built again (by `build`, which may reopen a body) and retried once with
    /// fresh authentication. The response is returned whatever its status.
    pub(crate) async fn send(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        method: Method,
        url: Url,
        op: &Op<'_>,
        build: &(dyn Fn(reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder> + Send + Sync),
    ) -> Result<Response> {
        let same_origin = url.origin() == ep.base.origin();
        let mut scopes: Vec<String> = scopes.to_vec();
        let mut refresh = false;
        loop {
            let auth = if same_origin {
                self.authorization(ep, &scopes, refresh, op).await?
            } else {
                None
            };
            let mut rb = ep
                .http
                .request(method.clone(), url.clone())
                .header(USER_AGENT, &self.inner.config.user_agent);
            if let Some(a) = &auth {
                rb = rb.header(AUTHORIZATION, a);
            }
            let rb = build(rb)?;
            let resp = rb.send().await.map_err(|e| Error::Http {
                method: method_name(&method),
                url: url.to_string(),
                source: e,
            })?;
            if resp.status() == StatusCode::UNAUTHORIZED && !refresh && same_origin {
                if let Some(ch) = auth::challenge_from_headers(resp.headers()) {
                    if let Challenge::Bearer { scope: Some(s), .. } = &ch {
                        for one in s.split(' ') {
                            if !one.is_empty() && !scopes.iter().any(|x| x == one) {
                                scopes.push(one.to_string());
                            }
                        }
                    }
                    let changed = ep
                        .challenge
                        .lock()
                        .map(|c| c.as_ref() != Some(&ch))
                        .unwrap_or(true);
                    // Retry when something can change: a new challenge, or credentials/tokens
                    // to (re)present.
                    let have_creds = self.credentials_for(&ep.registry)?.is_some();
                    if changed || have_creds || matches!(ch, Challenge::Bearer { .. }) {
                        if let Ok(mut c) = ep.challenge.lock() {
                            *c = Some(ch);
                        }
                        refresh = true;
                        continue;
                    }
                }
            }
            return Ok(resp);
        }
    }

    /// Turns a non-success response into an error (reading its body for the registry's
    /// explanation).
    pub(crate) async fn status_error(
        &self,
        ep: &Endpoint,
        op: &Op<'_>,
        method: &'static str,
        resp: Response,
        what: Missing<'_>,
    ) -> Error {
        let status = resp.status();
        let url = resp.url().to_string();
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        let detail = describe_body(status, &body);
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let had = self.credentials_for(&ep.registry).ok().flatten().is_some();
                let no_basic = matches!(
                    ep.challenge.lock().ok().and_then(|c| c.clone()),
                    Some(Challenge::Basic { .. })
                ) && !had;
                let detail = if no_basic {
                    format!("no basic auth credentials ({detail})")
                } else {
                    detail
                };
                self.denied(op, &ep.registry, detail, had)
            }
            StatusCode::NOT_FOUND => match what {
                Missing::Manifest(r) => Error::ManifestNotFound {
                    reference: r,
                    detail,
                },
                Missing::Blob(d) => Error::BlobNotFound {
                    digest: d.clone(),
                    repository: op.repo_name(),
                    detail,
                },
                Missing::Other => Error::Status {
                    method,
                    url,
                    status: status.as_u16(),
                    detail,
                },
            },
            _ => Error::Status {
                method,
                url,
                status: status.as_u16(),
                detail,
            },
        }
    }

    /// Fetches a manifest by tag or digest and verifies it: size limit, digest (against the
    /// digest asked for, else against `Docker-Content-Digest` when the registry sends one),
    /// supported media type.
    pub(crate) async fn fetch_manifest(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        op: &Op<'_>,
        tag_or_digest: &str,
        expected: Option<&Digest>,
    ) -> Result<FetchedManifest> {
        let r = op.reference;
        let shown = match expected {
            Some(d) => format!("{}@{d}", r.familiar_name()),
            None => format!("{}:{tag_or_digest}", r.familiar_name()),
        };
        let url = join(
            &ep.base,
            &format!("/v2/{}/manifests/{}", r.path(), tag_or_digest),
        )?;
        let resp = self
            .send(ep, scopes, Method::GET, url.clone(), op, &|rb| {
                Ok(rb.header(ACCEPT, MANIFEST_ACCEPT))
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .status_error(ep, op, "GET", resp, Missing::Manifest(shown))
                .await);
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let header_digest = header_digest(resp.headers());
        let bytes = read_limited(resp, MAX_MANIFEST_SIZE, &url)
            .await?
            .map_err(|size| Error::ManifestTooLarge {
                reference: shown.clone(),
                size,
            })?;
        let algorithm = expected
            .map(|d| d.algorithm())
            .unwrap_or(image::digest::Algorithm::Sha256);
        let digest = Digest::of(algorithm, &bytes);
        let check = expected
            .cloned()
            .or_else(|| header_digest.filter(|h| h.algorithm() == digest.algorithm()));
        if let Some(want) = check {
            if want != digest {
                return Err(Error::DigestMismatch {
                    what: "manifest",
                    repository: op.repo_name(),
                    expected: want,
                    actual: digest,
                });
            }
        }
        let media_type =
            manifest::detect_media_type(content_type.as_deref(), &bytes).map_err(|detail| {
                Error::BadManifest {
                    reference: shown.clone(),
                    detail,
                }
            })?;
        Ok(FetchedManifest {
            digest,
            media_type,
            bytes,
        })
    }

    /// Fetches a whole blob into memory (at most `limit` bytes), verifying size and digest.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn fetch_blob_bytes(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        op: &Op<'_>,
        digest: &Digest,
        expected_size: Option<u64>,
        limit: u64,
        what: &'static str,
    ) -> Result<Vec<u8>> {
        if let Some(s) = expected_size {
            if s > limit {
                return Err(Error::BlobTooLarge {
                    digest: digest.clone(),
                    size: s,
                    limit,
                });
            }
        }
        let url = join(
            &ep.base,
            &format!("/v2/{}/blobs/{digest}", op.reference.path()),
        )?;
        let resp = self
            .send(ep, scopes, Method::GET, url.clone(), op, &Ok)
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .status_error(ep, op, "GET", resp, Missing::Blob(digest))
                .await);
        }
        let bytes = read_limited(resp, limit, &url)
            .await?
            .map_err(|size| Error::BlobTooLarge {
                digest: digest.clone(),
                size,
                limit,
            })?;
        if let Some(s) = expected_size {
            if bytes.len() as u64 != s {
                return Err(Error::SizeMismatch {
                    what,
                    repository: op.repo_name(),
                    digest: digest.clone(),
                    expected: s,
                    actual: bytes.len() as u64,
                });
            }
        }
        let actual = Digest::of(digest.algorithm(), &bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                what,
                repository: op.repo_name(),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Fetches the manifest `reference` points to (by digest if it has one, else by tag,
    /// `latest` by default), verified. A manifest list or index is returned as is.
    pub async fn manifest(&self, reference: &Reference) -> Result<FetchedManifest> {
        let ep = self.endpoint(reference.domain()).await?;
        let scopes = [auth::pull_scope(reference.path())];
        let op = Op {
            action: Action::Fetch,
            reference,
        };
        let (tag_or_digest, expected) = target(reference);
        self.fetch_manifest(&ep, &scopes, &op, &tag_or_digest, expected)
            .await
    }

    /// Fetches a blob of `reference`'s repository into memory (at most `max_size` bytes) and
    /// verifies its digest.
    pub async fn blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        max_size: u64,
    ) -> Result<Vec<u8>> {
        let ep = self.endpoint(reference.domain()).await?;
        let scopes = [auth::pull_scope(reference.path())];
        let op = Op {
            action: Action::Fetch,
            reference,
        };
        self.fetch_blob_bytes(&ep, &scopes, &op, digest, None, max_size, "blob")
            .await
    }

    /// Whether a blob exists in `reference`'s repository (`HEAD /v2/<name>/blobs/<digest>`).
    pub async fn blob_exists(&self, reference: &Reference, digest: &Digest) -> Result<bool> {
        let ep = self.endpoint(reference.domain()).await?;
        let scopes = [auth::pull_scope(reference.path())];
        let op = Op {
            action: Action::Fetch,
            reference,
        };
        self.head_blob(&ep, &scopes, &op, digest).await
    }

    pub(crate) async fn head_blob(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        op: &Op<'_>,
        digest: &Digest,
    ) -> Result<bool> {
        let url = join(
            &ep.base,
            &format!("/v2/{}/blobs/{digest}", op.reference.path()),
        )?;
        let resp = self.send(ep, scopes, Method::HEAD, url, op, &Ok).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self
                .status_error(ep, op, "HEAD", resp, Missing::Other)
                .await),
        }
    }

    /// Checks `username`/`password` against `registry` (`GET /v2/` with basic credentials,
    /// or a token request to its token server) and, if accepted, stores them in the
    /// credential store. A registry that needs no authentication accepts any credentials, as
    /// with Docker.
    pub async fn login(&self, registry: &str, username: &str, password: &str) -> Result<()> {
        let creds = Credentials::new(username, password);
        self.check_credentials(registry, &creds).await?;
        self.inner.config.credentials.store(registry, &creds)?;
        Ok(())
    }

    /// Checks credentials against a registry without storing them (the engine API's
    /// `POST /auth`).
    pub async fn check_credentials(&self, registry: &str, creds: &Credentials) -> Result<()> {
        let reg = normalize_registry(registry);
        let ep = self.endpoint(&reg).await?;
        // Ask again: the cached challenge may be stale, and login must see the current one.
        let url = join(&ep.base, "/v2/")?;
        let resp = ep
            .http
            .get(url.clone())
            .header(USER_AGENT, &self.inner.config.user_agent)
            .send()
            .await
            .map_err(|e| Error::Http {
                method: "GET",
                url: url.to_string(),
                source: e,
            })?;
        if resp.status().is_success() {
            return Ok(());
        }
        let challenge = auth::challenge_from_headers(resp.headers());
        let failed = |detail: String| Error::LoginFailed {
            registry: reg.clone(),
            detail,
        };
        match challenge {
            None => Err(failed(format!(
                "GET {url} answered {} without an authentication challenge",
                resp.status()
            ))),
            Some(Challenge::Basic { .. }) => {
                let resp = ep
                    .http
                    .get(url.clone())
                    .header(USER_AGENT, &self.inner.config.user_agent)
                    .header(AUTHORIZATION, creds.basic_header())
                    .send()
                    .await
                    .map_err(|e| Error::Http {
                        method: "GET",
                        url: url.to_string(),
                        source: e,
                    })?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    let status = resp.status();
                    Err(Error::LoginRejected {
                        url: url.to_string(),
                        status: format!(
                            "{} {}",
                            status.as_u16(),
                            status.canonical_reason().unwrap_or("")
                        )
                        .trim_end()
                        .to_string(),
                    })
                }
            }
            Some(Challenge::Bearer { realm, service, .. }) => auth::fetch_token(
                &ep.http,
                &self.inner.config.user_agent,
                &realm,
                service.as_deref(),
                &[],
                Some(creds),
            )
            .await
            .map(|_| ())
            .map_err(|f| match f.status {
                Some(401) | Some(403) => Error::LoginTokenRefused {
                    url: url.to_string(),
                    detail: f.detail,
                },
                _ => failed(f.detail),
            }),
        }
    }

    /// Forgets the stored credentials for `registry` (and its cached tokens). Returns
    /// whether any were stored.
    pub fn logout(&self, registry: &str) -> Result<bool> {
        let reg = normalize_registry(registry);
        if let Ok(mut m) = self.inner.tokens.lock() {
            m.retain(|k, _| !k.starts_with(&format!("{reg}\0")));
        }
        Ok(self.inner.config.credentials.erase(&reg)?)
    }
}

/// What a 404 means for the request that got it.
pub(crate) enum Missing<'a> {
    Manifest(String),
    Blob(&'a Digest),
    Other,
}

/// (tag or digest to ask for, digest to verify against) for a reference.
pub(crate) fn target(reference: &Reference) -> (String, Option<&Digest>) {
    match reference.digest() {
        Some(d) => (d.to_string(), Some(d)),
        None => (
            reference
                .tag()
                .unwrap_or(image::reference::DEFAULT_TAG)
                .to_string(),
            None,
        ),
    }
}

/// `base` joined with an absolute path or a full URL (as `Location` headers may be).
pub(crate) fn join(base: &Url, path: &str) -> Result<Url> {
    base.join(path)
        .map_err(|e| Error::Protocol(format!("cannot build URL from {base} and {path:?}: {e}")))
}

pub(crate) fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "request",
    }
}

/// The `Docker-Content-Digest` header, if present and valid.
pub(crate) fn header_digest(h: &HeaderMap) -> Option<Digest> {
    h.get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| Digest::parse(s.trim()).ok())
}

/// Reads a body of at most `limit` bytes; `Ok(Err(size))` when it is larger.
pub(crate) async fn read_limited(
    mut resp: Response,
    limit: u64,
    url: &Url,
) -> Result<std::result::Result<Vec<u8>, u64>> {
    if let Some(len) = resp.content_length() {
        if len > limit {
            return Ok(Err(len));
        }
    }
    let mut buf = Vec::new();
    loop {
        let chunk = resp.chunk().await.map_err(|e| Error::Http {
            method: "GET",
            url: url.to_string(),
            source: e,
        })?;
        let Some(chunk) = chunk else { break };
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Ok(Err(buf.len() as u64 + chunk.len() as u64));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Ok(buf))
}

/// An error and its causes, one line, without reqwest's generic wrappers ("error sending
/// request for url (…)", "client error (Connect)") that repeat what the caller says already.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cur {
        let s = c.to_string();
        let generic = s.starts_with("error sending request")
            || s.starts_with("client error (")
            || s.starts_with("error decoding response body")
            || s.starts_with("request or response body error");
        if !generic && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

/// Splits `host:port`, `[v6]:port`, `host`.
fn split_host_port(registry: &str) -> (&str, Option<&str>) {
    if let Some(rest) = registry.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let host = &rest[..end];
            let port = rest[end + 1..].strip_prefix(':');
            return (host, port);
        }
    }
    match registry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (registry, None),
    }
}

/// An IP network (`10.0.0.0/8`, `fd00::/8`).
struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (a, b) = s.split_once('/')?;
        let net: IpAddr = a.parse().ok()?;
        let bits: u8 = b.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        (bits <= max).then_some(Cidr { net, bits })
    }

    fn contains(&self, ip: &IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = if self.bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.bits)
                };
                u32::from(n) & mask == u32::from(*i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = if self.bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.bits)
                };
                u128::from(n) & mask == u128::from(*i) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(insecure: &[&str]) -> Client {
        Client::new(ClientConfig {
            insecure_registries: insecure.iter().map(|s| s.to_string()).collect(),
            credentials: CredentialStore::none(),
            ..ClientConfig::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn insecure_rules() {
        let c = client(&["myreg:5000", "plainhost", "10.1.0.0/16", "fd00::/8"]);
        for (reg, want) in [
            ("localhost:5000", true),
            ("localhost", true),
            ("127.0.0.1:5000", true),
            ("127.9.9.9", true),
            ("[::1]:5000", true),
            ("myreg:5000", true),
            ("myreg:5001", false),
            ("plainhost:7000", true),
            ("10.1.2.3:5000", true),
            ("10.2.0.1:5000", false),
            ("[fd00::5]:5000", true),
            ("docker.io", false),
            ("example.com", false),
        ] {
            assert_eq!(c.is_insecure(reg).await, want, "{reg}");
        }
    }

    /// The daemon spawns pulls and pushes on tokio: their futures must be `Send`.
    #[allow(dead_code)]
    fn futures_are_send(
        c: &Client,
        r: &Reference,
        s: &image::content::ContentStore,
        p: &dyn crate::progress::Progress,
    ) {
        fn send<T: Send>(_: T) {}
        send(c.pull(r, None, s, p));
        send(c.push(r, b"", "", s, p));
        send(c.login("", "", ""));
        send(c.manifest(r));
        send(c.blob(r, &Digest::sha256(b""), 0));
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("a:1"), ("a", Some("1")));
        assert_eq!(split_host_port("a"), ("a", None));
        assert_eq!(split_host_port("[::1]:5000"), ("::1", Some("5000")));
        assert_eq!(split_host_port("[::1]"), ("::1", None));
    }
}
