//! The manifest formats a registry serves and accepts: Docker image manifest v2 schema 2,
//! Docker manifest lists, OCI image manifests and OCI image indexes — their media types,
//! and telling them apart from a response's `Content-Type` and body. The document types
//! themselves (descriptor, manifest, index) are the image crate's ([`image::config`]), so
//! what a pull returns goes into the image store as is. The bytes of a manifest are always
//! kept as received: its digest is the hash of those exact bytes.

use image::digest::Digest;
use serde::Deserialize;

use crate::platform::Platform;

/// Docker image manifest, v2 schema 2.
pub const DOCKER_MANIFEST: &str = image::config::MEDIA_DOCKER_MANIFEST;
/// Docker manifest list (multi-platform).
pub const DOCKER_MANIFEST_LIST: &str = image::config::MEDIA_DOCKER_MANIFEST_LIST;
/// OCI image manifest.
pub const OCI_MANIFEST: &str = image::config::MEDIA_OCI_MANIFEST;
/// OCI image index (multi-platform).
pub const OCI_INDEX: &str = image::config::MEDIA_OCI_INDEX;
/// Docker image config.
pub const DOCKER_CONFIG: &str = image::config::MEDIA_DOCKER_CONFIG;
/// OCI image config.
pub const OCI_CONFIG: &str = image::config::MEDIA_OCI_CONFIG;
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = image::config::MEDIA_DOCKER_LAYER_GZIP;
/// Docker foreign (non-distributable) gzip layer.
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = image::config::MEDIA_OCI_LAYER;
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = image::config::MEDIA_OCI_LAYER_GZIP;
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = image::config::MEDIA_OCI_LAYER_ZSTD;
/// Docker schema 1 manifest (unsupported, recognised to say so).
pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker signed schema 1 manifest (unsupported, recognised to say so).
pub const DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The `Accept` header for manifest requests: every kind berth can use.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest accepted (Docker's limit): 4 MiB.
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

pub use image::config::{Descriptor, Index, Manifest};

/// A descriptor with just media type, digest and size.
pub fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest,
        size,
        annotations: None,
        platform: None,
        urls: None,
    }
}

/// A decoded manifest of either kind.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyManifest {
    /// A single-platform image manifest.
    Image(Manifest),
    /// A manifest list / index.
    Index(Index),
}

/// A manifest as fetched or pushed: its exact bytes, media type and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    /// The SHA-256 of `bytes` (verified).
    pub digest: Digest,
    /// The media type (one of the four supported).
    pub media_type: String,
    /// The bytes as served.
    pub bytes: Vec<u8>,
}

impl FetchedManifest {
    /// Decodes the bytes.
    pub fn decode(&self) -> Result<AnyManifest, String> {
        decode(&self.media_type, &self.bytes)
    }
}

/// True for the two multi-platform media types.
pub fn is_index_type(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST_LIST || media_type == OCI_INDEX
}

/// True for the two single-platform manifest media types.
pub fn is_manifest_type(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST || media_type == OCI_MANIFEST
}

/// Works out a manifest's media type: the body's own `mediaType` field when present (it is
/// covered by the digest), else the response's `Content-Type` (parameters stripped), else
/// from the shape of the body (OCI allows omitting `mediaType`). Schema 1 and unknown types
/// are refused with an explanation.
pub fn detect_media_type(content_type: Option<&str>, body: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        schema_version: Option<u32>,
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
        #[serde(default)]
        fs_layers: Option<serde_json::Value>,
    }
    let probe: Probe =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON manifest ({e})"))?;
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .filter(|c| !c.is_empty());
    let mt = match (probe.media_type, header) {
        (Some(m), _) if !m.is_empty() => m,
        (_, Some(h)) if is_index_type(&h) || is_manifest_type(&h) || is_schema1(&h) => h,
        _ => {
            if probe.schema_version == Some(1) || probe.fs_layers.is_some() {
                DOCKER_MANIFEST_V1_SIGNED.to_string()
            } else if probe.manifests.is_some() {
                OCI_INDEX.to_string()
            } else if probe.config.is_some() {
                OCI_MANIFEST.to_string()
            } else {
                return Err("cannot tell what kind of manifest this is (no mediaType, no manifests, no config)".into());
            }
        }
    };
    if is_schema1(&mt) {
        return Err("Docker image format v1 (schema 1) is not supported: push the image again with a current client to convert it".into());
    }
    if !(is_index_type(&mt) || is_manifest_type(&mt)) {
        return Err(format!("unsupported manifest media type {mt:?}"));
    }
    Ok(mt)
}

fn is_schema1(mt: &str) -> bool {
    mt == DOCKER_MANIFEST_V1 || mt == DOCKER_MANIFEST_V1_SIGNED
}

/// Decodes a manifest of a known media type.
pub fn decode(media_type: &str, bytes: &[u8]) -> Result<AnyManifest, String> {
    if is_index_type(media_type) {
        let idx: Index =
            serde_json::from_slice(bytes).map_err(|e| format!("malformed {media_type}: {e}"))?;
        if idx.schema_version != 2 {
            return Err(format!("unsupported schemaVersion {}", idx.schema_version));
        }
        Ok(AnyManifest::Index(idx))
    } else if is_manifest_type(media_type) {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("malformed {media_type}: {e}"))?;
        if m.schema_version != 2 {
            return Err(format!("unsupported schemaVersion {}", m.schema_version));
        }
        Ok(AnyManifest::Image(m))
    } else {
        Err(format!("unsupported manifest media type {media_type:?}"))
    }
}

/// The parts of an image config the registry client reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigSummary {
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// Architecture.
    #[serde(default)]
    pub architecture: String,
    /// Variant.
    #[serde(default)]
    pub variant: Option<String>,
    /// The layer diff IDs.
    #[serde(default)]
    pub rootfs: Option<RootFs>,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootFs {
    /// Uncompressed layer digests, base first.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl ConfigSummary {
    /// Reads what it can of a config; a malformed config yields the empty summary.
    pub fn parse(bytes: &[u8]) -> ConfigSummary {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    /// The config's platform, if it names one.
    pub fn platform(&self) -> Option<Platform> {
        if self.os.is_empty() || self.architecture.is_empty() {
            return None;
        }
        Some(Platform::new(
            &self.os,
            &self.architecture,
            self.variant.as_deref(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_types() {
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(detect_media_type(None, idx).unwrap(), OCI_INDEX);
        assert_eq!(
            detect_media_type(
                Some("application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8"),
                idx
            )
            .unwrap(),
            DOCKER_MANIFEST_LIST
        );
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{},"layers":[]}"#;
        assert_eq!(
            detect_media_type(Some("application/json"), m).unwrap(),
            DOCKER_MANIFEST
        );
        let v1 = br#"{"schemaVersion":1,"fsLayers":[]}"#;
        assert!(detect_media_type(None, v1)
            .unwrap_err()
            .contains("schema 1"));
        assert!(detect_media_type(None, b"<html>").is_err());
        let other = br#"{"mediaType":"application/vnd.example+json"}"#;
        assert!(detect_media_type(None, other)
            .unwrap_err()
            .contains("unsupported"));
    }

    #[test]
    fn decodes_manifest() {
        let d = Digest::sha256(b"x");
        let m = Manifest {
            schema_version: 2,
            media_type: Some(DOCKER_MANIFEST.into()),
            config: descriptor(DOCKER_CONFIG, d.clone(), 1),
            layers: vec![descriptor(DOCKER_LAYER_GZIP, d, 1)],
            annotations: None,
        };
        let bytes = serde_json::to_vec(&m).unwrap();
        assert_eq!(
            decode(DOCKER_MANIFEST, &bytes).unwrap(),
            AnyManifest::Image(m)
        );
        assert!(decode(DOCKER_MANIFEST, br#"{"schemaVersion":2}"#).is_err());
    }
}
