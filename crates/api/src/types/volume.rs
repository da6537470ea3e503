//! Volume shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{is_empty_map, nd, Extra};

/// A volume (`GET /volumes/{name}`, create answer, list entries).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Volume {
    /// Name.
    pub name: String,
    /// Driver (`local`).
    pub driver: String,
    /// Host path of the data.
    pub mountpoint: String,
    /// Creation time, RFC 3339.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub created_at: String,
    /// Driver status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<BTreeMap<String, Value>>,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// `local` or `global`.
    pub scope: String,
    /// Driver options.
    pub options: Option<BTreeMap<String, String>>,
    /// `{"Size": n, "RefCount": n}` (system df only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<Value>,
    /// Fields not modelled here.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Extra,
}

/// The body of `POST /volumes/create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct VolumeCreateRequest {
    /// Name (empty: generated).
    #[serde(deserialize_with = "nd")]
    pub name: String,
    /// Driver (empty: `local`).
    #[serde(deserialize_with = "nd")]
    pub driver: String,
    /// Driver options.
    pub driver_opts: Option<BTreeMap<String, String>>,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Fields not modelled here (`ClusterVolumeSpec`).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Extra,
}

/// The answer of `GET /volumes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct VolumeListResponse {
    /// Volumes.
    pub volumes: Option<Vec<Volume>>,
    /// Warnings.
    pub warnings: Option<Vec<String>>,
}

/// The answer of `POST /volumes/prune`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct VolumePruneResponse {
    /// Names removed.
    pub volumes_deleted: Option<Vec<String>>,
    /// Bytes freed.
    pub space_reclaimed: u64,
}
