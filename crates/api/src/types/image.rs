//! Image shapes: list, inspect, history, delete and prune answers; the JSON progress messages
//! of pull/push/load/import/build; registry credentials (`X-Registry-Auth`, `/auth`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{is_empty_map, nd, ContainerConfig, DriverData, Extra};

/// One entry of `GET /images/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ImageSummary {
    /// Image ID (`sha256:...`).
    pub id: String,
    /// Parent image ID (empty for pulled images).
    pub parent_id: String,
    /// `name:tag` references.
    #[serde(deserialize_with = "nd")]
    pub repo_tags: Vec<String>,
    /// `name@sha256:...` references.
    #[serde(deserialize_with = "nd")]
    pub repo_digests: Vec<String>,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Size of the image's layers.
    pub size: i64,
    /// Size shared with other images (-1: not computed).
    pub shared_size: i64,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Containers using the image (-1: not computed).
    pub containers: i64,
    /// Fields not modelled here (`VirtualSize` before 1.44, `Manifests`, `Descriptor`...).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Extra,
}

/// The image's own run configuration (`Config` of an image inspect; OCI config).
pub type ImageConfig = ContainerConfig;

/// `RootFS` of an inspected image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RootFs {
    /// `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Layer diff IDs.
    pub layers: Option<Vec<String>>,
}

/// The answer of `GET /images/{name}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ImageInspect {
    /// Image ID (`sha256:...`).
    pub id: String,
    /// `name:tag` references.
    #[serde(deserialize_with = "nd")]
    pub repo_tags: Vec<String>,
    /// `name@sha256:...` references.
    #[serde(deserialize_with = "nd")]
    pub repo_digests: Vec<String>,
    /// Parent image ID.
    pub parent: String,
    /// Commit message.
    pub comment: String,
    /// Creation time, RFC 3339 with nanoseconds.
    pub created: String,
    /// Docker version that built it.
    pub docker_version: String,
    /// Author.
    pub author: String,
    /// Run configuration.
    pub config: Option<ImageConfig>,
    /// `amd64`, `arm64`...
    pub architecture: String,
    /// CPU variant (`v8`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// `linux`.
    pub os: String,
    /// OS version (Windows).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    /// Size of the layers.
    pub size: i64,
    /// Storage driver data.
    pub graph_driver: DriverData,
    /// Layers.
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    /// `{"LastTagTime": "..."}`.
    pub metadata: Option<Value>,
    /// Fields not modelled here (`Container`, `ContainerConfig`, `VirtualSize`...).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Extra,
}

/// One entry of `GET /images/{name}/history`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ImageHistoryItem {
    /// Image ID of the step, or `<missing>`.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// The instruction.
    pub created_by: String,
    /// Tags of that image.
    pub tags: Option<Vec<String>>,
    /// Size the step added.
    pub size: i64,
    /// Comment.
    pub comment: String,
}

/// One entry of `DELETE /images/{name}` and of the prune answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageDeleteItem {
    /// A reference that was removed.
    #[serde(rename = "Untagged", skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    /// An image ID that was deleted.
    #[serde(rename = "Deleted", skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

/// The answer of `POST /images/prune`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImagePruneResponse {
    /// What went.
    #[serde(rename = "ImagesDeleted")]
    pub images_deleted: Option<Vec<ImageDeleteItem>>,
    /// Bytes freed.
    #[serde(rename = "SpaceReclaimed")]
    pub space_reclaimed: u64,
}

/// One entry of `GET /images/search`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageSearchResult {
    /// Description.
    pub description: String,
    /// Official image.
    pub is_official: bool,
    /// Automated build (deprecated).
    pub is_automated: bool,
    /// Repository name.
    pub name: String,
    /// Stars.
    pub star_count: i64,
}

/// Byte counts in a progress message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProgressDetail {
    /// Done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<i64>,
    /// In all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    /// Unit shown instead of bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<String>,
}

/// The error of a failed stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorDetail {
    /// Numeric code (rarely set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// Message.
    pub message: String,
}

/// One line of a JSON progress stream (Docker's `jsonmessage.JSONMessage`), as pull, push,
/// load, import and build send them: `{"status":"Downloading","id":"a1b2",...}`,
/// `{"stream":"Step 1/3 : FROM busybox\n"}`, `{"aux":{"ID":"sha256:..."}}` or, last, an
/// error `{"errorDetail":{"message":"..."},"error":"..."}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonMessage {
    /// Output text (build, load).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Status (`Pulling fs layer`, `Downloading`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Byte counts.
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    /// Pre-rendered progress bar (deprecated but still sent by dockerd).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// What the line is about (short layer ID, tag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Origin (deprecated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The error that ended the stream.
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    /// The same error's message (deprecated twin of `errorDetail`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Side-channel data (`{"ID": "sha256:..."}` after a build, push digests...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<Value>,
}

impl JsonMessage {
    /// `{"status": status}` about `id` when given.
    pub fn status(id: Option<&str>, status: impl Into<String>) -> JsonMessage {
        JsonMessage {
            status: Some(status.into()),
            id: id.map(str::to_string),
            ..JsonMessage::default()
        }
    }

    /// `{"stream": text}`.
    pub fn stream(text: impl Into<String>) -> JsonMessage {
        JsonMessage {
            stream: Some(text.into()),
            ..JsonMessage::default()
        }
    }

    /// The error line that ends a failed stream.
    pub fn error(message: impl Into<String>) -> JsonMessage {
        let message = message.into();
        JsonMessage {
            error_detail: Some(ErrorDetail {
                code: None,
                message: message.clone(),
            }),
            error: Some(message),
            ..JsonMessage::default()
        }
    }

    /// The error this line reports, if it is an error line.
    pub fn error_message(&self) -> Option<&str> {
        self.error_detail
            .as_ref()
            .map(|d| d.message.as_str())
            .or(self.error.as_deref())
    }
}

/// Registry credentials: the body of `POST /auth` and, base64url-encoded, the
/// `X-Registry-Auth` header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// User name.
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "nd")]
    pub username: String,
    /// Password.
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "nd")]
    pub password: String,
    /// Legacy `user:password` base64.
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "nd")]
    pub auth: String,
    /// Email (deprecated).
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "nd")]
    pub email: String,
    /// Registry host, without scheme.
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "nd")]
    pub serveraddress: String,
    /// Identity token from a previous `/auth`.
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "nd")]
    pub identitytoken: String,
    /// Registry bearer token.
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "nd")]
    pub registrytoken: String,
}

impl AuthConfig {
    /// True when no credential is set (anonymous access).
    pub fn is_empty(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.auth.is_empty()
            && self.identitytoken.is_empty()
            && self.registrytoken.is_empty()
    }
}

/// The answer of `POST /auth`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthResponse {
    /// `Login Succeeded`.
    #[serde(rename = "Status")]
    pub status: String,
    /// Token to use instead of the password from now on.
    #[serde(rename = "IdentityToken", skip_serializing_if = "String::is_empty")]
    pub identity_token: String,
}
