//! The registry client's error type: every way talking to a registry can fail, with messages
//! that say what failed, against which registry or repository, and what to do about it.
//! Where Docker has a well-known wording (`manifest unknown`, `pull access denied for …`,
//! `no matching manifest for linux/amd64 in the manifest list entries`), it is kept.

use image::content::ContentError;
use image::digest::Digest;

use crate::credentials::CredentialError;

/// A failed registry operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No endpoint of the registry answered the API version check (`GET /v2/`).
    #[error("cannot reach registry {registry}: {detail}")]
    Unreachable {
        /// The registry (`localhost:5000`, `docker.io`).
        registry: String,
        /// What each attempt returned.
        detail: String,
    },
    /// A request failed at the transport level (connection, TLS, timeout, broken body).
    #[error("{method} {url}: {}", crate::client::error_chain(source))]
    Http {
        /// The HTTP method.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The registry refused the credentials, or demanded some and none are known.
    #[error(
        "{action} {repository}: unauthorized: {detail} (log in with 'docker login {registry}')"
    )]
    Unauthorized {
        /// `pull from`, `push to`, `login to`.
        action: &'static str,
        /// The repository (familiar form).
        repository: String,
        /// The registry.
        registry: String,
        /// The registry's explanation.
        detail: String,
    },
    /// Pull refused: Docker's wording, which scripts match on.
    #[error("pull access denied for {repository}, repository does not exist or may require 'docker login': {detail}")]
    PullDenied {
        /// The repository (familiar form).
        repository: String,
        /// The registry's explanation.
        detail: String,
    },
    /// Push refused.
    #[error(
        "push access denied for {repository}: {detail} (check 'docker login' for this registry)"
    )]
    PushDenied {
        /// The repository (familiar form).
        repository: String,
        /// The registry's explanation.
        detail: String,
    },
    /// Login failed: wrong username or password.
    #[error("login to {registry} failed: {detail}")]
    LoginFailed {
        /// The registry.
        registry: String,
        /// The registry's explanation.
        detail: String,
    },
    /// Login refused by a registry asking for basic credentials (dockerd's wording).
    #[error("login attempt to {url} failed with status: {status}")]
    LoginRejected {
        /// The `/v2/` URL asked.
        url: String,
        /// The HTTP status with its reason (`401 Unauthorized`).
        status: String,
    },
    /// Login refused by a registry's token server (dockerd's wording: the `/v2/` request
    /// that needed the token, then the token server's error).
    #[error("Get \"{url}\": {detail}")]
    LoginTokenRefused {
        /// The `/v2/` URL asked.
        url: String,
        /// The token server's explanation (`unauthorized: incorrect username or password`).
        detail: String,
    },
    /// The tag or digest does not exist in the repository.
    #[error("manifest for {reference} not found: {detail}")]
    ManifestNotFound {
        /// The reference asked for (familiar form).
        reference: String,
        /// The registry's explanation (`manifest unknown: manifest unknown`).
        detail: String,
    },
    /// The blob does not exist in the repository.
    #[error("blob {digest} not found in {repository}: {detail}")]
    BlobNotFound {
        /// The blob.
        digest: Digest,
        /// The repository.
        repository: String,
        /// The registry's explanation.
        detail: String,
    },
    /// Any other error status, with the registry's error list decoded.
    #[error("{method} {url}: {status}: {detail}")]
    Status {
        /// The HTTP method.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The registry's explanation (`code: message`, or the body).
        detail: String,
    },
    /// A manifest larger than the 4 MiB limit (Docker's) was offered.
    #[error("manifest {reference} is {size} bytes, over the 4 MiB limit: refusing it")]
    ManifestTooLarge {
        /// What was being fetched.
        reference: String,
        /// Its announced or received size.
        size: u64,
    },
    /// A blob (config) larger than the limit for in-memory reads.
    #[error("blob {digest} is {size} bytes, over the {limit}-byte limit for in-memory reads")]
    BlobTooLarge {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Content did not hash to the digest it was fetched or referenced by.
    #[error("{what} {expected} from {repository} failed verification: content hashes to {actual}; the registry served wrong or corrupt data, and nothing was stored")]
    DigestMismatch {
        /// `manifest`, `config`, `layer`.
        what: &'static str,
        /// The repository.
        repository: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest of what arrived.
        actual: Digest,
    },
    /// Content had a different length than its descriptor says.
    #[error("{what} {digest} from {repository} has the wrong size: expected {expected} bytes, got {actual}; nothing was stored")]
    SizeMismatch {
        /// `config`, `layer`.
        what: &'static str,
        /// The repository.
        repository: String,
        /// The blob.
        digest: Digest,
        /// The size in the descriptor.
        expected: u64,
        /// What arrived (or was announced).
        actual: u64,
    },
    /// The manifest is not one of the supported kinds, or is malformed.
    #[error("manifest {reference}: {detail}")]
    BadManifest {
        /// The reference or digest.
        reference: String,
        /// What is wrong.
        detail: String,
    },
    /// A manifest list or index has no entry for the wanted platform.
    #[error(
        "no matching manifest for {wanted} in the manifest list entries (available: {available})"
    )]
    NoMatchingPlatform {
        /// The platform asked for (`linux/amd64`).
        wanted: String,
        /// The platforms the list has, comma separated.
        available: String,
    },
    /// A single-platform image does not match the platform explicitly asked for.
    #[error("image with reference {reference} was found but does not match the specified platform: wanted {wanted}, actual: {actual}")]
    PlatformMismatch {
        /// The reference (familiar form).
        reference: String,
        /// The platform asked for (`linux/arm64`).
        wanted: String,
        /// The image's platform.
        actual: String,
    },
    /// The local content store failed (or a local blob to push is missing).
    #[error(transparent)]
    Store(#[from] ContentError),
    /// Reading or writing the credentials file failed.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The token server answered badly.
    #[error("token server {realm}: {detail}")]
    Token {
        /// The token server URL.
        realm: String,
        /// What went wrong.
        detail: String,
    },
    /// A URL could not be built or a header was malformed.
    #[error("{0}")]
    Protocol(String),
    /// A background task (blob writer) died.
    #[error("internal task failed: {0}")]
    Task(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One entry of a registry's `{"errors": [...]}` body.
#[derive(Debug, serde::Deserialize)]
struct ApiError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Debug, serde::Deserialize)]
struct ApiErrors {
    #[serde(default)]
    errors: Vec<ApiError>,
}

/// Renders a registry error body the way Docker does (`manifest unknown: manifest unknown`),
/// falling back to the trimmed body text, or the status text when the body is empty.
pub(crate) fn describe_body(status: reqwest::StatusCode, body: &[u8]) -> String {
    if let Ok(e) = serde_json::from_slice::<ApiErrors>(body) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|e| {
                let code = e.code.to_lowercase().replace('_', " ");
                match (code.is_empty(), e.message.is_empty()) {
                    (false, false) => format!("{code}: {}", e.message),
                    (false, true) => code,
                    _ => e.message.clone(),
                }
            })
            .collect();
        if !parts.is_empty() {
            return parts.join(", ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() && status == reqwest::StatusCode::UNAUTHORIZED {
        "unauthorized: authentication required".to_string()
    } else if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("unexpected status")
            .to_lowercase()
    } else {
        text.chars().take(512).collect()
    }
}
