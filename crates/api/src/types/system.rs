//! System shapes: `/version`, `/info`, `/events` messages and `/system/df`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{is_empty_map, Extra};

/// A component in the `/version` answer (`Engine`, `containerd`, `runc`...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ComponentVersion {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Free-form details (`ApiVersion`, `GitCommit`, `GoVersion`, `Os`, `Arch`...).
    pub details: Option<BTreeMap<String, String>>,
}

/// `Platform` of the `/version` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PlatformName {
    /// Product name (`Docker Engine - Community`; berth says `berth`).
    pub name: String,
}

/// The answer of `GET /version`. The server fills `ApiVersion` and `MinAPIVersion` from its
/// configured range, whatever the backend put there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SystemVersion {
    /// Product.
    pub platform: PlatformName,
    /// Components.
    pub components: Option<Vec<ComponentVersion>>,
    /// Engine version.
    pub version: String,
    /// Newest API version served.
    pub api_version: String,
    /// Oldest API version served.
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    /// Git commit.
    pub git_commit: String,
    /// Toolchain (Docker reports its Go version; berth its Rust version).
    pub go_version: String,
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`...
    pub arch: String,
    /// Kernel release.
    pub kernel_version: String,
    /// Experimental features on.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub experimental: bool,
    /// Build time, RFC 3339.
    pub build_time: String,
}

/// The answer of `GET /info`. The fields the docker CLI prints are typed; the rest pass
/// through `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SystemInfo {
    /// Daemon ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Containers in all.
    pub containers: i64,
    /// Running.
    pub containers_running: i64,
    /// Paused.
    pub containers_paused: i64,
    /// Stopped.
    pub containers_stopped: i64,
    /// Images.
    pub images: i64,
    /// Storage driver.
    pub driver: String,
    /// Storage driver status lines.
    pub driver_status: Option<Vec<Vec<String>>>,
    /// Data root.
    pub docker_root_dir: String,
    /// `{"Volume": [...], "Network": [...], "Authorization": null, "Log": [...]}`.
    pub plugins: Value,
    /// Memory limits supported.
    pub memory_limit: bool,
    /// Swap limits supported.
    pub swap_limit: bool,
    /// CFS period supported.
    pub cpu_cfs_period: bool,
    /// CFS quota supported.
    pub cpu_cfs_quota: bool,
    /// CPU shares supported.
    #[serde(rename = "CPUShares")]
    pub cpu_shares: bool,
    /// Cpusets supported.
    #[serde(rename = "CPUSet")]
    pub cpu_set: bool,
    /// Pids limit supported.
    pub pids_limit: bool,
    /// OOM kill disable supported.
    pub oom_kill_disable: bool,
    /// IPv4 forwarding on.
    #[serde(rename = "IPv4Forwarding")]
    pub ipv4_forwarding: bool,
    /// Debug mode.
    pub debug: bool,
    /// Open fds of the daemon.
    pub n_fd: i64,
    /// Daemon tasks (Docker: goroutines).
    pub n_goroutines: i64,
    /// Daemon time, RFC 3339 with nanoseconds.
    pub system_time: String,
    /// Default logging driver.
    pub logging_driver: String,
    /// `cgroupfs` or `systemd`.
    pub cgroup_driver: String,
    /// `1` or `2`.
    pub cgroup_version: String,
    /// Event listeners.
    pub n_events_listener: i64,
    /// Kernel release.
    pub kernel_version: String,
    /// OS name (`Debian GNU/Linux 12 (bookworm)`).
    pub operating_system: String,
    /// OS version (`12`).
    #[serde(rename = "OSVersion")]
    pub os_version: String,
    /// `linux`.
    #[serde(rename = "OSType")]
    pub os_type: String,
    /// `x86_64`...
    pub architecture: String,
    /// CPUs.
    #[serde(rename = "NCPU")]
    pub ncpu: i64,
    /// Memory in bytes.
    pub mem_total: i64,
    /// Default registry (`https://index.docker.io/v1/`).
    pub index_server_address: String,
    /// Registry configuration (`InsecureRegistryCIDRs`, `IndexConfigs`, `Mirrors`).
    pub registry_config: Option<Value>,
    /// HTTP proxy.
    pub http_proxy: String,
    /// HTTPS proxy.
    pub https_proxy: String,
    /// No-proxy list.
    pub no_proxy: String,
    /// Host name.
    pub name: String,
    /// Daemon labels.
    pub labels: Option<Vec<String>>,
    /// Experimental build.
    pub experimental_build: bool,
    /// Engine version.
    pub server_version: String,
    /// Runtimes by name: `{"runc": {"path": "runc"}}`.
    pub runtimes: Option<BTreeMap<String, Value>>,
    /// Default runtime.
    pub default_runtime: String,
    /// Swarm state (`{"LocalNodeState": "inactive", ...}`).
    pub swarm: Value,
    /// Live restore on.
    pub live_restore_enabled: bool,
    /// Isolation (Windows).
    pub isolation: String,
    /// Init binary name.
    pub init_binary: String,
    /// `{"ID": "...", "Expected": "..."}` (deprecated `Expected`).
    pub containerd_commit: Value,
    /// Runtime commit.
    pub runc_commit: Value,
    /// Init commit.
    pub init_commit: Value,
    /// `name=seccomp,profile=builtin`...
    pub security_options: Option<Vec<String>>,
    /// Warnings to print.
    pub warnings: Option<Vec<String>>,
    /// Fields not modelled here.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Extra,
}

/// The object an event is about.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventActor {
    /// ID of the object.
    #[serde(rename = "ID")]
    pub id: String,
    /// Attributes (`name`, `image`, labels, `exitCode`...).
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// One message of `GET /events`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventMessage {
    /// Deprecated: the action (container events only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Deprecated: the actor ID (container events only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Deprecated: the image (container events only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `container`, `image`, `volume`, `network`, `daemon`...
    #[serde(rename = "Type")]
    pub kind: String,
    /// `create`, `start`, `die`, `exec_start: sh`...
    #[serde(rename = "Action")]
    pub action: String,
    /// The object.
    #[serde(rename = "Actor")]
    pub actor: EventActor,
    /// `local`.
    pub scope: String,
    /// Unix seconds.
    pub time: i64,
    /// Unix nanoseconds.
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

/// The answer of `GET /system/df`; the parts are kept as JSON (their shapes differ across
/// API versions).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DiskUsage {
    /// Size of all layers.
    pub layers_size: i64,
    /// Images (`ImageSummary` shapes).
    pub images: Option<Vec<Value>>,
    /// Containers (`ContainerSummary` shapes with sizes).
    pub containers: Option<Vec<Value>>,
    /// Volumes (`Volume` shapes with `UsageData`).
    pub volumes: Option<Vec<Value>>,
    /// Build cache records.
    pub build_cache: Option<Vec<Value>>,
    /// Fields not modelled here.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Extra,
}
