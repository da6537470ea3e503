//! Route handlers, one module per area of the API. Each parses what its route takes (query
//! with Docker's rules, headers, JSON body), applies Docker's version-compatibility rules,
//! calls the backend and shapes the answer (status, content type, streaming).

pub(crate) mod containers;
pub(crate) mod exec;
pub(crate) mod images;
pub(crate) mod other;
pub(crate) mod system;

use base64::Engine;

use crate::error::ApiError;
use crate::types::AuthConfig;

/// Decodes base64 as Docker's clients write it (URL-safe with padding; standard and
/// unpadded forms are accepted too).
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let s = s.trim();
    URL_SAFE
        .decode(s)
        .or_else(|_| URL_SAFE_NO_PAD.decode(s))
        .or_else(|_| STANDARD.decode(s))
        .or_else(|_| STANDARD_NO_PAD.decode(s))
        .ok()
}

/// The `X-Registry-Auth` header: empty is anonymous; anything undecodable a 400.
pub(crate) fn registry_auth(header: &str) -> Result<AuthConfig, ApiError> {
    if header.trim().is_empty() {
        return Ok(AuthConfig::default());
    }
    let bad =
        |why: String| ApiError::InvalidParameter(format!("invalid X-Registry-Auth header: {why}"));
    let raw = decode_base64(header).ok_or_else(|| bad("not base64".to_string()))?;
    serde_json::from_slice(&raw).map_err(|e| bad(e.to_string()))
}
