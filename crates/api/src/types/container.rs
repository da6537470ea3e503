//! Container shapes: the create request (`Config` + `HostConfig` + `NetworkingConfig`), list
//! and inspect answers, wait/top/changes/update/prune answers, stats, and the path stat of
//! `docker cp`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{is_empty_map, nd, Extra};

/// A port map: `"80/tcp"` to the host bindings (`null` when exposed but not published).
pub type PortMap = BTreeMap<String, Option<Vec<PortBinding>>>;

/// The container's own configuration (`Config` in create and inspect; Docker's
/// `container.Config`), portable across hosts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// Hostname inside the container.
    #[serde(deserialize_with = "nd")]
    pub hostname: String,
    /// Domain name inside the container.
    #[serde(deserialize_with = "nd")]
    pub domainname: String,
    /// `user`, `user:group`, `uid` or `uid:gid` to run as.
    #[serde(deserialize_with = "nd")]
    pub user: String,
    /// Attach stdin (set by clients for `run -i`).
    #[serde(deserialize_with = "nd")]
    pub attach_stdin: bool,
    /// Attach stdout.
    #[serde(deserialize_with = "nd")]
    pub attach_stdout: bool,
    /// Attach stderr.
    #[serde(deserialize_with = "nd")]
    pub attach_stderr: bool,
    /// Exposed ports: `"80/tcp": {}`.
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    /// Allocate a pseudo-TTY.
    #[serde(deserialize_with = "nd")]
    pub tty: bool,
    /// Keep stdin open even when not attached.
    #[serde(deserialize_with = "nd")]
    pub open_stdin: bool,
    /// Close stdin after the first attached client disconnects.
    #[serde(deserialize_with = "nd")]
    pub stdin_once: bool,
    /// Environment, `NAME=value`.
    pub env: Option<Vec<String>>,
    /// Command (null: the image's).
    pub cmd: Option<Vec<String>>,
    /// Health check.
    pub healthcheck: Option<HealthConfig>,
    /// Windows-only: the command is already escaped.
    pub args_escaped: Option<bool>,
    /// Image reference the container is created from.
    #[serde(deserialize_with = "nd")]
    pub image: String,
    /// Anonymous volumes: `"/data": {}`.
    pub volumes: Option<BTreeMap<String, Value>>,
    /// Working directory.
    #[serde(deserialize_with = "nd")]
    pub working_dir: String,
    /// Entrypoint (null: the image's; `[""]`: none).
    pub entrypoint: Option<Vec<String>>,
    /// Disable networking.
    pub network_disabled: Option<bool>,
    /// Container-wide MAC address (deprecated in API 1.44: per endpoint now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// ONBUILD triggers (images).
    pub on_build: Option<Vec<String>>,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Signal that stops the container (`SIGTERM` when empty).
    pub stop_signal: Option<String>,
    /// Seconds to wait before killing on stop.
    pub stop_timeout: Option<i64>,
    /// Shell for the shell form of RUN/CMD/ENTRYPOINT.
    pub shell: Option<Vec<String>>,
    /// Fields not modelled here.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Extra,
}

/// A container health check (`HealthConfig`). Durations are nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    pub test: Option<Vec<String>>,
    /// Time between checks (ns).
    #[serde(deserialize_with = "nd")]
    pub interval: i64,
    /// Time before a check is considered hung (ns).
    #[serde(deserialize_with = "nd")]
    pub timeout: i64,
    /// Consecutive failures before unhealthy.
    #[serde(deserialize_with = "nd")]
    pub retries: i64,
    /// Start period (ns).
    #[serde(deserialize_with = "nd")]
    pub start_period: i64,
    /// Interval during the start period (ns; API 1.44).
    #[serde(deserialize_with = "nd")]
    pub start_interval: i64,
}

/// Resource limits (`Resources`, embedded in `HostConfig` and the update body).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Resources {
    /// Relative CPU weight.
    #[serde(deserialize_with = "nd")]
    pub cpu_shares: i64,
    /// Memory limit in bytes (0: none).
    #[serde(deserialize_with = "nd")]
    pub memory: i64,
    /// Parent cgroup path.
    #[serde(deserialize_with = "nd")]
    pub cgroup_parent: String,
    /// Block IO weight (10-1000).
    #[serde(deserialize_with = "nd")]
    pub blkio_weight: u16,
    /// Per-device block IO weights.
    pub blkio_weight_device: Option<Vec<WeightDevice>>,
    /// Read limits in bytes per second.
    pub blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
    /// Write limits in bytes per second.
    pub blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
    /// Read limits in IO per second.
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
    /// Write limits in IO per second.
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
    /// CFS period (µs).
    #[serde(deserialize_with = "nd")]
    pub cpu_period: i64,
    /// CFS quota (µs).
    #[serde(deserialize_with = "nd")]
    pub cpu_quota: i64,
    /// Real-time period (µs).
    #[serde(deserialize_with = "nd")]
    pub cpu_realtime_period: i64,
    /// Real-time runtime (µs).
    #[serde(deserialize_with = "nd")]
    pub cpu_realtime_runtime: i64,
    /// CPUs allowed (`0-3`, `0,1`).
    #[serde(deserialize_with = "nd")]
    pub cpuset_cpus: String,
    /// Memory nodes allowed.
    #[serde(deserialize_with = "nd")]
    pub cpuset_mems: String,
    /// Devices to add.
    pub devices: Option<Vec<DeviceMapping>>,
    /// Device cgroup rules (`c 1:3 mr`).
    pub device_cgroup_rules: Option<Vec<String>>,
    /// Device requests (GPUs).
    pub device_requests: Option<Vec<Value>>,
    /// Memory soft limit.
    #[serde(deserialize_with = "nd")]
    pub memory_reservation: i64,
    /// Memory + swap limit (-1: unlimited swap).
    #[serde(deserialize_with = "nd")]
    pub memory_swap: i64,
    /// Swappiness 0-100 (null: inherit).
    pub memory_swappiness: Option<i64>,
    /// CPU quota in units of 1e-9 CPUs.
    #[serde(deserialize_with = "nd")]
    pub nano_cpus: i64,
    /// Disable the OOM killer.
    pub oom_kill_disable: Option<bool>,
    /// Run an init inside the container.
    pub init: Option<bool>,
    /// Maximum number of pids (0 / -1 / null: unlimited).
    pub pids_limit: Option<i64>,
    /// Resource limits (`nofile` ...).
    pub ulimits: Option<Vec<Ulimit>>,
    /// Windows: number of CPUs.
    #[serde(deserialize_with = "nd")]
    pub cpu_count: i64,
    /// Windows: CPU percent.
    #[serde(deserialize_with = "nd")]
    pub cpu_percent: i64,
    /// Windows: maximum IO per second.
    #[serde(rename = "IOMaximumIOps", deserialize_with = "nd")]
    pub io_maximum_iops: i64,
    /// Windows: maximum IO bytes per second.
    #[serde(rename = "IOMaximumBandwidth", deserialize_with = "nd")]
    pub io_maximum_bandwidth: i64,
}

/// A block device weight.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct WeightDevice {
    /// Device path.
    #[serde(deserialize_with = "nd")]
    pub path: String,
    /// Weight.
    #[serde(deserialize_with = "nd")]
    pub weight: u16,
}

/// A block device rate limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ThrottleDevice {
    /// Device path.
    #[serde(deserialize_with = "nd")]
    pub path: String,
    /// Rate (bytes or IOs per second).
    #[serde(deserialize_with = "nd")]
    pub rate: u64,
}

/// A device to make available in the container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DeviceMapping {
    /// Host path.
    #[serde(deserialize_with = "nd")]
    pub path_on_host: String,
    /// Path in the container.
    #[serde(deserialize_with = "nd")]
    pub path_in_container: String,
    /// `rwm` subset.
    #[serde(deserialize_with = "nd")]
    pub cgroup_permissions: String,
}

/// An rlimit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Ulimit {
    /// Name without `RLIMIT_`, lower case (`nofile`).
    #[serde(deserialize_with = "nd")]
    pub name: String,
    /// Soft limit.
    #[serde(deserialize_with = "nd")]
    pub soft: i64,
    /// Hard limit.
    #[serde(deserialize_with = "nd")]
    pub hard: i64,
}

/// Restart policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RestartPolicy {
    /// `""`/`no`, `always`, `unless-stopped`, `on-failure`.
    #[serde(deserialize_with = "nd")]
    pub name: String,
    /// Retries for `on-failure`.
    #[serde(deserialize_with = "nd")]
    pub maximum_retry_count: i64,
}

/// Logging driver configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct LogConfig {
    /// Driver name (`json-file`, `local`, `none`...).
    #[serde(rename = "Type", deserialize_with = "nd")]
    pub kind: String,
    /// Driver options.
    pub config: Option<BTreeMap<String, String>>,
}

/// A host port binding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortBinding {
    /// Host IP (empty: all).
    #[serde(rename = "HostIp", deserialize_with = "nd")]
    pub host_ip: String,
    /// Host port (empty: any free one).
    #[serde(rename = "HostPort", deserialize_with = "nd")]
    pub host_port: String,
}

/// A mount given with `--mount` (`HostConfig.Mounts`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Mount {
    /// Path in the container.
    #[serde(deserialize_with = "nd")]
    pub target: String,
    /// Host path (bind), volume name (volume), image (image).
    #[serde(deserialize_with = "nd")]
    pub source: String,
    /// `bind`, `volume`, `tmpfs`, `image`, `npipe`, `cluster`.
    #[serde(rename = "Type", deserialize_with = "nd")]
    pub kind: String,
    /// Read-only.
    #[serde(deserialize_with = "nd")]
    pub read_only: bool,
    /// macOS consistency flag (ignored).
    #[serde(deserialize_with = "nd")]
    pub consistency: String,
    /// Bind options.
    pub bind_options: Option<BindOptions>,
    /// Volume options.
    pub volume_options: Option<VolumeOptions>,
    /// Image options.
    pub image_options: Option<Value>,
    /// Tmpfs options.
    pub tmpfs_options: Option<TmpfsOptions>,
}

/// Options of a bind mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct BindOptions {
    /// `private`, `rprivate`, `shared`, `rshared`, `slave`, `rslave`.
    #[serde(deserialize_with = "nd")]
    pub propagation: String,
    /// Do not bind submounts.
    #[serde(deserialize_with = "nd")]
    pub non_recursive: bool,
    /// Create the host path when missing (API 1.42).
    #[serde(deserialize_with = "nd")]
    pub create_mountpoint: bool,
    /// Read-only only at the top (API 1.44).
    #[serde(deserialize_with = "nd")]
    pub read_only_non_recursive: bool,
    /// Fail unless read-only can be applied recursively (API 1.44).
    #[serde(deserialize_with = "nd")]
    pub read_only_force_recursive: bool,
}

/// Options of a volume mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct VolumeOptions {
    /// Do not copy the image's content into a new volume.
    #[serde(deserialize_with = "nd")]
    pub no_copy: bool,
    /// Labels for a new volume.
    pub labels: Option<BTreeMap<String, String>>,
    /// Driver for a new volume: `{"Name": ..., "Options": {...}}`.
    pub driver_config: Option<Value>,
    /// Path inside the volume to mount (API 1.45).
    #[serde(deserialize_with = "nd")]
    pub subpath: String,
}

/// Options of a tmpfs mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TmpfsOptions {
    /// Size in bytes (0: unlimited).
    #[serde(deserialize_with = "nd")]
    pub size_bytes: i64,
    /// Permission bits.
    #[serde(deserialize_with = "nd")]
    pub mode: u32,
    /// Extra mount options, `[["noexec"], ["uid", "1000"]]` (API 1.46).
    pub options: Option<Vec<Vec<String>>>,
}

/// The non-portable part of a container's configuration (`HostConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HostConfig {
    /// Resource limits (Docker embeds them at this level).
    #[serde(flatten)]
    pub resources: Resources,
    /// `host:container[:opts]` or `volume:container[:opts]`.
    pub binds: Option<Vec<String>>,
    /// File the client wrote the ID to (informational).
    #[serde(rename = "ContainerIDFile", deserialize_with = "nd")]
    pub container_id_file: String,
    /// Logging.
    pub log_config: Option<LogConfig>,
    /// `bridge`, `host`, `none`, `container:<id>`, or a network name (`default`: bridge).
    #[serde(deserialize_with = "nd")]
    pub network_mode: String,
    /// Published ports.
    pub port_bindings: Option<PortMap>,
    /// Restart policy.
    pub restart_policy: Option<RestartPolicy>,
    /// Remove the container when it exits (`--rm`).
    #[serde(deserialize_with = "nd")]
    pub auto_remove: bool,
    /// Volume driver for `Binds` volumes.
    #[serde(deserialize_with = "nd")]
    pub volume_driver: String,
    /// `container[:ro|rw]` to take volumes from.
    pub volumes_from: Option<Vec<String>>,
    /// `--mount` mounts.
    pub mounts: Option<Vec<Mount>>,
    /// Initial console size `[height, width]` (API 1.42).
    pub console_size: Option<Vec<u32>>,
    /// OCI annotations (API 1.43).
    pub annotations: Option<BTreeMap<String, String>>,
    /// Capabilities to add.
    pub cap_add: Option<Vec<String>>,
    /// Capabilities to drop.
    pub cap_drop: Option<Vec<String>>,
    /// `host` or `private` cgroup namespace.
    #[serde(deserialize_with = "nd")]
    pub cgroupns_mode: String,
    /// DNS servers.
    pub dns: Option<Vec<String>>,
    /// DNS options.
    pub dns_options: Option<Vec<String>>,
    /// DNS search domains.
    pub dns_search: Option<Vec<String>>,
    /// `host:ip` lines for /etc/hosts.
    pub extra_hosts: Option<Vec<String>>,
    /// Supplementary groups.
    pub group_add: Option<Vec<String>>,
    /// `none`, `private`, `shareable`, `container:<id>`, `host`.
    #[serde(deserialize_with = "nd")]
    pub ipc_mode: String,
    /// Cgroup to use (`container:<id>`).
    #[serde(deserialize_with = "nd")]
    pub cgroup: String,
    /// Legacy links `name:alias`.
    pub links: Option<Vec<String>>,
    /// OOM score adjustment.
    #[serde(deserialize_with = "nd")]
    pub oom_score_adj: i64,
    /// `host` or `container:<id>` pid namespace.
    #[serde(deserialize_with = "nd")]
    pub pid_mode: String,
    /// Privileged.
    #[serde(deserialize_with = "nd")]
    pub privileged: bool,
    /// Publish all exposed ports to random host ports (`-P`).
    #[serde(deserialize_with = "nd")]
    pub publish_all_ports: bool,
    /// Read-only root filesystem.
    #[serde(deserialize_with = "nd")]
    pub readonly_rootfs: bool,
    /// `seccomp=...`, `apparmor=...`, `no-new-privileges`, `label=...`.
    pub security_opt: Option<Vec<String>>,
    /// Storage driver options.
    pub storage_opt: Option<BTreeMap<String, String>>,
    /// Tmpfs mounts: path to options.
    pub tmpfs: Option<BTreeMap<String, String>>,
    /// `host` UTS namespace.
    #[serde(rename = "UTSMode", deserialize_with = "nd")]
    pub uts_mode: String,
    /// `host` user namespace.
    #[serde(deserialize_with = "nd")]
    pub userns_mode: String,
    /// /dev/shm size in bytes.
    #[serde(deserialize_with = "nd")]
    pub shm_size: i64,
    /// Namespaced sysctls.
    pub sysctls: Option<BTreeMap<String, String>>,
    /// OCI runtime name.
    pub runtime: Option<String>,
    /// Windows isolation.
    #[serde(deserialize_with = "nd")]
    pub isolation: String,
    /// Paths masked in the container (overrides the default list).
    pub masked_paths: Option<Vec<String>>,
    /// Paths made read-only in the container (overrides the default list).
    pub readonly_paths: Option<Vec<String>>,
    /// Fields not modelled here.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Extra,
}

/// Per-network configuration given at create time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkingConfig {
    /// Network name to endpoint settings.
    pub endpoints_config: Option<BTreeMap<String, EndpointSettings>>,
}

/// A container's endpoint on a network (create request and inspect answer).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct EndpointSettings {
    /// Static addresses asked for.
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    /// Legacy links.
    pub links: Option<Vec<String>>,
    /// MAC address.
    #[serde(deserialize_with = "nd")]
    pub mac_address: String,
    /// DNS aliases.
    pub aliases: Option<Vec<String>>,
    /// Driver options.
    pub driver_opts: Option<BTreeMap<String, String>>,
    /// Gateway priority (API 1.48).
    #[serde(deserialize_with = "nd")]
    pub gw_priority: i64,
    /// Network ID.
    #[serde(rename = "NetworkID", deserialize_with = "nd")]
    pub network_id: String,
    /// Endpoint ID.
    #[serde(rename = "EndpointID", deserialize_with = "nd")]
    pub endpoint_id: String,
    /// IPv4 gateway.
    #[serde(deserialize_with = "nd")]
    pub gateway: String,
    /// IPv4 address.
    #[serde(rename = "IPAddress", deserialize_with = "nd")]
    pub ip_address: String,
    /// IPv4 prefix length.
    #[serde(rename = "IPPrefixLen", deserialize_with = "nd")]
    pub ip_prefix_len: i64,
    /// IPv6 gateway.
    #[serde(rename = "IPv6Gateway", deserialize_with = "nd")]
    pub ipv6_gateway: String,
    /// IPv6 address.
    #[serde(rename = "GlobalIPv6Address", deserialize_with = "nd")]
    pub global_ipv6_address: String,
    /// IPv6 prefix length.
    #[serde(rename = "GlobalIPv6PrefixLen", deserialize_with = "nd")]
    pub global_ipv6_prefix_len: i64,
    /// Names the container answers to on this network (API 1.44).
    #[serde(rename = "DNSNames")]
    pub dns_names: Option<Vec<String>>,
    /// Fields not modelled here.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Extra,
}

/// Static addresses of an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointIpamConfig {
    /// IPv4 address.
    #[serde(rename = "IPv4Address", deserialize_with = "nd")]
    pub ipv4_address: String,
    /// IPv6 address.
    #[serde(rename = "IPv6Address", deserialize_with = "nd")]
    pub ipv6_address: String,
    /// Link-local addresses.
    #[serde(rename = "LinkLocalIPs")]
    pub link_local_ips: Option<Vec<String>>,
}

/// The body of `POST /containers/create`: `Config` fields at the top level plus
/// `HostConfig` and `NetworkingConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerCreateRequest {
    /// The portable configuration (flattened at the top level of the body).
    #[serde(flatten)]
    pub config: ContainerConfig,
    /// The host configuration.
    #[serde(rename = "HostConfig")]
    pub host_config: Option<HostConfig>,
    /// Networks to connect at create time.
    #[serde(rename = "NetworkingConfig")]
    pub networking_config: Option<NetworkingConfig>,
}

/// The answer of `POST /containers/create` (201).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerCreateResponse {
    /// The new container's ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// Warnings to show the user.
    #[serde(rename = "Warnings", deserialize_with = "nd")]
    pub warnings: Vec<String>,
}

/// A published port in a container list entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortSummary {
    /// Host IP.
    #[serde(rename = "IP", skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// Port in the container.
    #[serde(rename = "PrivatePort")]
    pub private_port: u16,
    /// Port on the host (absent when not published).
    #[serde(rename = "PublicPort", skip_serializing_if = "Option::is_none")]
    pub public_port: Option<u16>,
    /// `tcp`, `udp`, `sctp`.
    #[serde(rename = "Type")]
    pub kind: String,
}

/// A mount as reported by list and inspect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountPoint {
    /// `bind`, `volume`, `tmpfs`...
    #[serde(rename = "Type")]
    pub kind: String,
    /// Volume name (volumes).
    #[serde(rename = "Name", skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Host path.
    #[serde(rename = "Source")]
    pub source: String,
    /// Path in the container.
    #[serde(rename = "Destination")]
    pub destination: String,
    /// Volume driver (volumes).
    #[serde(rename = "Driver", skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// Mode flags as given (`z`, `ro`...).
    #[serde(rename = "Mode")]
    pub mode: String,
    /// Writable.
    #[serde(rename = "RW")]
    pub rw: bool,
    /// Propagation.
    #[serde(rename = "Propagation")]
    pub propagation: String,
}

/// One entry of `GET /containers/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerSummary {
    /// Full ID.
    pub id: String,
    /// Names, each with a leading `/`.
    #[serde(deserialize_with = "nd")]
    pub names: Vec<String>,
    /// Image as the user gave it (or its ID).
    pub image: String,
    /// Image ID (`sha256:...`).
    #[serde(rename = "ImageID")]
    pub image_id: String,
    /// The command, quoted and space separated.
    pub command: String,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Ports.
    #[serde(deserialize_with = "nd")]
    pub ports: Vec<PortSummary>,
    /// Size of the writable layer (with `size=1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    /// Size of the whole root filesystem (with `size=1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    /// Labels.
    #[serde(deserialize_with = "nd")]
    pub labels: BTreeMap<String, String>,
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`.
    pub state: String,
    /// Human status: `Up 2 minutes`, `Exited (0) 3 seconds ago`.
    pub status: String,
    /// `{"NetworkMode": "bridge"}`.
    pub host_config: Option<Value>,
    /// `{"Networks": {name: EndpointSettings}}`.
    pub network_settings: Option<SummaryNetworkSettings>,
    /// Mounts.
    #[serde(deserialize_with = "nd")]
    pub mounts: Vec<MountPoint>,
    /// Fields not modelled here.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Extra,
}

/// `NetworkSettings` of a list entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SummaryNetworkSettings {
    /// Network name to endpoint.
    pub networks: Option<BTreeMap<String, EndpointSettings>>,
}

/// `State` of an inspected container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerState {
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`.
    pub status: String,
    /// Running (also true while paused).
    pub running: bool,
    /// Paused.
    pub paused: bool,
    /// Restarting.
    pub restarting: bool,
    /// Killed by the OOM killer.
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    /// Dead.
    pub dead: bool,
    /// Host pid of the init (0 when not running).
    pub pid: i64,
    /// Last exit code.
    pub exit_code: i64,
    /// Last start error.
    pub error: String,
    /// RFC 3339 with nanoseconds (`0001-01-01T00:00:00Z` when never).
    pub started_at: String,
    /// RFC 3339 with nanoseconds (`0001-01-01T00:00:00Z` when never).
    pub finished_at: String,
    /// Health, when a health check is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// Health check state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Health {
    /// `none`, `starting`, `healthy`, `unhealthy`.
    pub status: String,
    /// Consecutive failures.
    pub failing_streak: i64,
    /// Last results.
    #[serde(deserialize_with = "nd")]
    pub log: Vec<HealthcheckResult>,
}

/// One health check run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HealthcheckResult {
    /// Start, RFC 3339.
    pub start: String,
    /// End, RFC 3339.
    pub end: String,
    /// Exit code.
    pub exit_code: i64,
    /// Output (truncated).
    pub output: String,
}

/// Storage driver data (`GraphDriver`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DriverData {
    /// Driver name (`overlay2`).
    pub name: String,
    /// Driver data (`LowerDir`, `UpperDir`, `MergedDir`, `WorkDir`).
    pub data: Option<BTreeMap<String, String>>,
}

/// `NetworkSettings` of an inspected container (with the pre-1.44 top-level fields,
/// which describe the default bridge endpoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkSettings {
    /// Bridge name.
    pub bridge: String,
    /// Sandbox ID.
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    /// Sandbox key (`/var/run/docker/netns/...`).
    pub sandbox_key: String,
    /// Ports (exposed and published).
    pub ports: Option<PortMap>,
    /// Endpoints by network name.
    pub networks: Option<BTreeMap<String, EndpointSettings>>,
    /// Fields not modelled here (deprecated top-level IPAddress, Gateway, MacAddress...).
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Extra,
}

/// The answer of `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerInspect {
    /// Full ID.
    pub id: String,
    /// Creation time, RFC 3339 with nanoseconds.
    pub created: String,
    /// Path of the process.
    pub path: String,
    /// Its arguments.
    #[serde(deserialize_with = "nd")]
    pub args: Vec<String>,
    /// State.
    pub state: ContainerState,
    /// Image ID (`sha256:...`).
    pub image: String,
    /// Host path of the container's resolv.conf.
    pub resolv_conf_path: String,
    /// Host path of its hostname file.
    pub hostname_path: String,
    /// Host path of its hosts file.
    pub hosts_path: String,
    /// Host path of its log.
    pub log_path: String,
    /// Name with a leading `/`.
    pub name: String,
    /// Restarts by the restart policy.
    pub restart_count: i64,
    /// Storage driver.
    pub driver: String,
    /// `linux`.
    pub platform: String,
    /// SELinux mount label.
    pub mount_label: String,
    /// SELinux process label.
    pub process_label: String,
    /// AppArmor profile.
    pub app_armor_profile: String,
    /// Running exec instances.
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    /// Host configuration.
    pub host_config: HostConfig,
    /// Storage driver data.
    pub graph_driver: DriverData,
    /// Size of the writable layer (with `size=1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    /// Size of the root filesystem (with `size=1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    /// Mounts.
    #[serde(deserialize_with = "nd")]
    pub mounts: Vec<MountPoint>,
    /// Configuration.
    pub config: ContainerConfig,
    /// Network settings.
    pub network_settings: NetworkSettings,
    /// Fields not modelled here.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Extra,
}

/// The answer of `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerWaitResponse {
    /// Exit code.
    #[serde(rename = "StatusCode")]
    pub status_code: i64,
    /// Set when waiting failed after the answer started.
    #[serde(rename = "Error", skip_serializing_if = "Option::is_none")]
    pub error: Option<WaitExitError>,
}

/// Why a wait failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WaitExitError {
    /// The message.
    #[serde(rename = "Message")]
    pub message: String,
}

/// The answer of `GET /containers/{id}/top`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerTopResponse {
    /// Column titles from ps.
    #[serde(rename = "Titles", deserialize_with = "nd")]
    pub titles: Vec<String>,
    /// One row per process.
    #[serde(rename = "Processes", deserialize_with = "nd")]
    pub processes: Vec<Vec<String>>,
}

/// One change of `GET /containers/{id}/changes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilesystemChange {
    /// Path in the container.
    #[serde(rename = "Path")]
    pub path: String,
    /// 0 modified, 1 added, 2 deleted.
    #[serde(rename = "Kind")]
    pub kind: u8,
}

/// [`FilesystemChange::kind`] for a modified path.
pub const CHANGE_MODIFIED: u8 = 0;
/// [`FilesystemChange::kind`] for an added path.
pub const CHANGE_ADDED: u8 = 1;
/// [`FilesystemChange::kind`] for a deleted path.
pub const CHANGE_DELETED: u8 = 2;

/// The body of `POST /containers/{id}/update`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerUpdateRequest {
    /// New limits (zero fields are left unchanged, as Docker does).
    #[serde(flatten)]
    pub resources: Resources,
    /// New restart policy.
    #[serde(rename = "RestartPolicy")]
    pub restart_policy: Option<RestartPolicy>,
}

/// The answer of `POST /containers/{id}/update`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerUpdateResponse {
    /// Warnings.
    #[serde(rename = "Warnings")]
    pub warnings: Option<Vec<String>>,
}

/// The answer of `POST /containers/prune`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerPruneResponse {
    /// IDs removed.
    #[serde(rename = "ContainersDeleted")]
    pub containers_deleted: Option<Vec<String>>,
    /// Bytes freed.
    #[serde(rename = "SpaceReclaimed")]
    pub space_reclaimed: u64,
}

/// One sample of `GET /containers/{id}/stats`. The cgroup-shaped parts are kept as JSON
/// (their keys differ between cgroup v1 and v2); the fields the docker CLI computes its
/// columns from are typed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerStats {
    /// Container ID.
    pub id: String,
    /// Container name with leading `/`.
    pub name: String,
    /// Sample time, RFC 3339 with nanoseconds.
    pub read: String,
    /// Previous sample time.
    pub preread: String,
    /// Number of processes (Windows).
    pub num_procs: u32,
    /// CPU usage now.
    pub cpu_stats: CpuStats,
    /// CPU usage at the previous sample.
    pub precpu_stats: CpuStats,
    /// Memory usage.
    pub memory_stats: MemoryStats,
    /// Pids.
    pub pids_stats: Value,
    /// Block IO.
    pub blkio_stats: Value,
    /// Per interface network counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, Value>>,
    /// Storage (Windows).
    pub storage_stats: Value,
    /// Fields not modelled here.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Extra,
}

/// CPU counters of a stats sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuStats {
    /// Usage.
    pub cpu_usage: CpuUsage,
    /// Host CPU time (ns) at the sample, for the percentage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_cpu_usage: Option<u64>,
    /// Online CPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online_cpus: Option<u32>,
    /// Throttling.
    pub throttling_data: Value,
}

/// CPU time of the container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    /// Total (ns).
    pub total_usage: u64,
    /// Per CPU (cgroup v1 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percpu_usage: Option<Vec<u64>>,
    /// Kernel mode (ns).
    pub usage_in_kernelmode: u64,
    /// User mode (ns).
    pub usage_in_usermode: u64,
}

/// Memory counters of a stats sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    /// Current usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<u64>,
    /// Maximum usage (cgroup v1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_usage: Option<u64>,
    /// Detailed counters (`cache`, `inactive_file`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<BTreeMap<String, u64>>,
    /// Limit hits (cgroup v1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failcnt: Option<u64>,
    /// Limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// What `HEAD`/`GET /containers/{id}/archive` report about a path, in the
/// `X-Docker-Container-Path-Stat` header (base64 of this JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PathStat {
    /// Base name.
    pub name: String,
    /// Size in bytes.
    pub size: i64,
    /// Go `os.FileMode` bits (see [`go_file_mode`]).
    pub mode: u32,
    /// Modification time, RFC 3339.
    pub mtime: String,
    /// Symlink target, when the path is a symlink.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Converts a Unix `st_mode` into Go's `os.FileMode`, which `PathStat::mode` carries
/// (permission bits stay; the file type becomes Go's high bits).
pub fn go_file_mode(st_mode: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const NAMED_PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR_DEVICE: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut m = st_mode & 0o777;
    m |= match st_mode & 0o170000 {
        0o040000 => DIR,
        0o120000 => SYMLINK,
        0o060000 => DEVICE,
        0o020000 => DEVICE | CHAR_DEVICE,
        0o010000 => NAMED_PIPE,
        0o140000 => SOCKET,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        m |= SETUID;
    }
    if st_mode & 0o2000 != 0 {
        m |= SETGID;
    }
    if st_mode & 0o1000 != 0 {
        m |= STICKY;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_from_docker_py_nulls() {
        let body = r#"{"Hostname":null,"User":null,"Tty":false,"Cmd":["sh"],"Image":"busybox",
            "Entrypoint":null,"Labels":{"a":"b"},"MacAddress":null,"Unknown":1,
            "HostConfig":{"NetworkMode":"default","Memory":1024,"PortBindings":{"80/tcp":null},
              "Binds":["/a:/b"],"BlkioDeviceReadIOps":[{"Path":"/dev/sda","Rate":5}],"KernelMemory":0},
            "NetworkingConfig":{"EndpointsConfig":{"net1":{"Aliases":["x"],"IPAMConfig":null}}}}"#;
        let r: ContainerCreateRequest = serde_json::from_str(body).unwrap();
        assert_eq!(r.config.image, "busybox");
        assert_eq!(r.config.hostname, "");
        assert_eq!(r.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert!(r.config.entrypoint.is_none());
        assert_eq!(r.config.extra.get("Unknown"), Some(&Value::from(1)));
        let hc = r.host_config.unwrap();
        assert_eq!(hc.resources.memory, 1024);
        assert_eq!(hc.network_mode, "default");
        assert_eq!(hc.port_bindings.unwrap().get("80/tcp"), Some(&None));
        assert_eq!(hc.resources.blkio_device_read_iops.unwrap()[0].rate, 5);
        assert!(hc.extra.contains_key("KernelMemory"));
        let nc = r.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(nc["net1"].aliases.as_ref().unwrap()[0], "x");
    }

    #[test]
    fn go_modes() {
        assert_eq!(go_file_mode(0o040755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(0o100644), 0o644);
        assert_eq!(go_file_mode(0o120777), (1 << 27) | 0o777);
    }
}
