//! Network shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{is_empty_map, nd, EndpointSettings, Extra};

/// IP address management of a network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Ipam {
    /// Driver (`default`).
    #[serde(deserialize_with = "nd")]
    pub driver: String,
    /// Pools: `{"Subnet": "...", "IPRange": "...", "Gateway": "...", "AuxiliaryAddresses": {}}`.
    pub config: Option<Vec<BTreeMap<String, Value>>>,
    /// Driver options.
    pub options: Option<BTreeMap<String, String>>,
}

/// A network (`GET /networks/{id}`, list entries).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Network {
    /// Name.
    pub name: String,
    /// ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// Creation time, RFC 3339.
    pub created: String,
    /// `local`.
    pub scope: String,
    /// `bridge`, `host`, `null`...
    pub driver: String,
    /// IPv4 enabled (API 1.47).
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: bool,
    /// IPv6 enabled.
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// Address management.
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    /// No outside access.
    pub internal: bool,
    /// Attachable by standalone containers (swarm).
    pub attachable: bool,
    /// Swarm routing mesh.
    pub ingress: bool,
    /// Connected containers by ID (inspect only).
    pub containers: Option<BTreeMap<String, Value>>,
    /// Driver options.
    pub options: Option<BTreeMap<String, String>>,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Fields not modelled here (`ConfigFrom`, `ConfigOnly`, `Peers`...).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Extra,
}

/// The body of `POST /networks/create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkCreateRequest {
    /// Name.
    #[serde(deserialize_with = "nd")]
    pub name: String,
    /// Driver (empty: `bridge`).
    #[serde(deserialize_with = "nd")]
    pub driver: String,
    /// No outside access.
    #[serde(deserialize_with = "nd")]
    pub internal: bool,
    /// Attachable.
    #[serde(deserialize_with = "nd")]
    pub attachable: bool,
    /// IPv6.
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    /// Address management.
    #[serde(rename = "IPAM")]
    pub ipam: Option<Ipam>,
    /// Driver options.
    pub options: Option<BTreeMap<String, String>>,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Fields not modelled here (`CheckDuplicate`, `Scope`, `ConfigFrom`, `EnableIPv4`...).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Extra,
}

/// The answer of `POST /networks/create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkCreateResponse {
    /// ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// Warning.
    #[serde(rename = "Warning")]
    pub warning: String,
}

/// The body of `POST /networks/{id}/connect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkConnectRequest {
    /// Container ID or name.
    #[serde(deserialize_with = "nd")]
    pub container: String,
    /// Endpoint settings.
    pub endpoint_config: Option<EndpointSettings>,
}

/// The body of `POST /networks/{id}/disconnect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkDisconnectRequest {
    /// Container ID or name.
    #[serde(deserialize_with = "nd")]
    pub container: String,
    /// Force.
    #[serde(deserialize_with = "nd")]
    pub force: bool,
}

/// The answer of `POST /networks/prune`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkPruneResponse {
    /// Names removed.
    pub networks_deleted: Option<Vec<String>>,
}
