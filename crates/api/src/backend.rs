//! The [`Backend`] trait: everything the HTTP routes ask of the engine, one method per
//! operation, with the options each route parses from its query, headers and body. The
//! server does all HTTP work (parsing, validation, version rules, status codes, framing,
//! hijacking); a backend only deals in typed values, streams and [`ApiError`]s.
//!
//! Errors a method returns before a response has started become Docker's error responses
//! (`ApiError::NotFound` -> 404 `{"message": ...}`); errors inside a stream are reported in
//! band (an `errorDetail` line in progress streams) or end the stream.

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use serde_json::Value;

use crate::error::ApiError;
use crate::filters::Filters;
use crate::stream::{AttachStdin, ByteStream, DetachKeys, FrameStream, JsonStream};
use crate::time::Timestamp;
use crate::types::*;

/// Shorthand for results of backend methods.
pub type ApiResult<T> = Result<T, ApiError>;

/// The second half of a wait: resolves when the condition is met. The server has already
/// answered 200 when it is polled, so its errors go into the body's `Error.Message`.
pub type WaitFuture = Pin<Box<dyn Future<Output = ApiResult<ContainerWaitResponse>> + Send>>;

/// Options of `GET /containers/json`.
#[derive(Debug, Clone, Default)]
pub struct ContainerListOptions {
    /// Include stopped containers.
    pub all: bool,
    /// At most this many, newest first (implies `all`, as in Docker).
    pub limit: Option<usize>,
    /// Compute `SizeRw` and `SizeRootFs`.
    pub size: bool,
    /// Filters (names already validated against
    /// [`CONTAINER_LIST_FILTERS`](crate::filters::CONTAINER_LIST_FILTERS)).
    pub filters: Filters,
}

/// Options of `POST /containers/create`.
#[derive(Debug, Clone, Default)]
pub struct ContainerCreateOptions {
    /// `--name` (validated: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, without the leading `/`).
    pub name: Option<String>,
    /// `os[/arch[/variant]]` of the image to use (API 1.41).
    pub platform: Option<String>,
    /// Read-only bind mounts are non-recursive unless told otherwise (clients below API
    /// 1.44 expect this).
    pub default_read_only_non_recursive: bool,
}

/// Options of stop and restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopOptions {
    /// Signal to send first (API 1.42; None: the container's `StopSignal` or SIGTERM).
    pub signal: Option<String>,
    /// Seconds before SIGKILL (None: the container's `StopTimeout` or 10; -1: forever).
    pub timeout: Option<i64>,
}

/// Options of `DELETE /containers/{id}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerRemoveOptions {
    /// Kill a running container first.
    pub force: bool,
    /// Remove its anonymous volumes (`v`).
    pub volumes: bool,
    /// Remove a legacy link instead of the container.
    pub link: bool,
}

/// What `POST /containers/{id}/wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    /// The container is not running (now or later): the default.
    #[default]
    NotRunning,
    /// The next exit after the call.
    NextExit,
    /// The container is removed.
    Removed,
}

/// Options of `GET /containers/{id}/logs`.
#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    /// Keep streaming new output.
    pub follow: bool,
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// Only records at or after this time.
    pub since: Option<Timestamp>,
    /// Only records before this time.
    pub until: Option<Timestamp>,
    /// Prefix each line with its RFC 3339 nanosecond timestamp and a space.
    pub timestamps: bool,
    /// Only the last N lines (None: all).
    pub tail: Option<u64>,
    /// Include log attributes (`details`).
    pub details: bool,
}

/// The output of logs: frames plus whether the container has a TTY (then the server sends
/// them raw, else multiplexed).
pub struct LogOutput {
    /// The container has a TTY.
    pub tty: bool,
    /// The records.
    pub frames: FrameStream,
}

/// Options of `GET /containers/{id}/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsOptions {
    /// Keep sampling (about once a second) until the client goes.
    pub stream: bool,
    /// With `stream == false`: answer at once, without waiting for a second sample to fill
    /// `precpu_stats` (API 1.41).
    pub one_shot: bool,
}

/// Options of `POST /containers/{id}/attach`.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    /// Attach stdin (the server passes an [`AttachStdin`] only then).
    pub stdin: bool,
    /// Attach stdout.
    pub stdout: bool,
    /// Attach stderr.
    pub stderr: bool,
    /// Stream output from now on (else only `logs`).
    pub stream: bool,
    /// Replay the logs first.
    pub logs: bool,
    /// Detach keys the client asked for (None: the default applies).
    pub detach_keys: Option<DetachKeys>,
}

/// A hijacked session the backend sets up (attach, exec start): the server answers
/// 101/200, then writes `output` to the client (raw when `tty`, else multiplexed) until it
/// ends, then closes the connection.
pub struct AttachOutput {
    /// Output is raw (TTY) rather than multiplexed.
    pub tty: bool,
    /// Detach keys to watch for in the client's input (only honoured with a TTY, as in
    /// Docker); None disables detaching.
    pub detach_keys: Option<DetachKeys>,
    /// The output.
    pub output: FrameStream,
}

/// Options of `PUT /containers/{id}/archive`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchivePutOptions {
    /// Error if a directory would replace a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Give the files the container's root uid/gid (`copyUIDGID`).
    pub copy_uid_gid: bool,
}

/// A path fetched from a container: its stat and a tar stream of it.
pub struct ContainerArchive {
    /// Stat of the path (sent in `X-Docker-Container-Path-Stat`).
    pub stat: PathStat,
    /// The tar archive.
    pub content: ByteStream,
}

/// Options of `POST /commit`.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Container to commit.
    pub container: String,
    /// Repository of the new image (empty: untagged).
    pub repo: String,
    /// Tag.
    pub tag: String,
    /// Commit message.
    pub comment: String,
    /// Author.
    pub author: String,
    /// Pause the container while committing (default true).
    pub pause: bool,
    /// Dockerfile instructions to apply (`CMD ["sh"]`, `ENV A=b`...).
    pub changes: Vec<String>,
    /// Config to merge into the image's.
    pub config: Option<ContainerConfig>,
}

/// Options of `GET /images/json`.
#[derive(Debug, Clone, Default)]
pub struct ImageListOptions {
    /// Include intermediate images.
    pub all: bool,
    /// Filters (validated against [`IMAGE_LIST_FILTERS`](crate::filters::IMAGE_LIST_FILTERS)).
    pub filters: Filters,
    /// Compute `SharedSize`.
    pub shared_size: bool,
    /// Include digests.
    pub digests: bool,
    /// Include `Manifests` (API 1.47).
    pub manifests: bool,
}

/// Options of a pull (`POST /images/create?fromImage=`).
#[derive(Debug, Clone, Default)]
pub struct ImagePullOptions {
    /// `fromImage` as given (may carry a tag or digest).
    pub from_image: String,
    /// `tag` as given (a tag or a digest; empty: from `from_image`, else `latest`).
    pub tag: String,
    /// `os[/arch[/variant]]`.
    pub platform: Option<String>,
    /// Credentials from `X-Registry-Auth`.
    pub auth: AuthConfig,
}

/// Where an import takes its root filesystem tarball from.
pub enum ImportSource {
    /// The request body (`fromSrc=-`).
    Body(ByteStream),
    /// A URL to fetch.
    Url(String),
}

/// Options of an import (`POST /images/create?fromSrc=`).
pub struct ImageImportOptions {
    /// The tarball.
    pub source: ImportSource,
    /// Repository of the new image.
    pub repo: String,
    /// Tag.
    pub tag: String,
    /// Commit message.
    pub message: String,
    /// Dockerfile instructions to apply.
    pub changes: Vec<String>,
    /// `os[/arch[/variant]]`.
    pub platform: Option<String>,
}

/// Options of `POST /images/{name}/push`.
#[derive(Debug, Clone, Default)]
pub struct ImagePushOptions {
    /// The image name from the path.
    pub name: String,
    /// `tag` (empty: all tags of the repository, as in Docker).
    pub tag: String,
    /// `os[/arch[/variant]]` (API 1.46).
    pub platform: Option<String>,
    /// Credentials from `X-Registry-Auth`.
    pub auth: AuthConfig,
}

/// Options of `DELETE /images/{name}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageRemoveOptions {
    /// Remove even if used by stopped containers or tagged several times.
    pub force: bool,
    /// Keep untagged parents.
    pub noprune: bool,
}

/// Options of `POST /images/load`.
#[derive(Debug, Clone, Default)]
pub struct ImageLoadOptions {
    /// Suppress progress.
    pub quiet: bool,
    /// Platforms to load (API 1.48).
    pub platforms: Vec<String>,
}

/// Options of `POST /build` (the classic builder's parameters).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Path of the Dockerfile in the context (default `Dockerfile`).
    pub dockerfile: String,
    /// Tags (`t`, repeatable).
    pub tags: Vec<String>,
    /// `host:ip` entries.
    pub extra_hosts: Vec<String>,
    /// Remote context URL.
    pub remote: Option<String>,
    /// Quiet.
    pub quiet: bool,
    /// Do not use the cache.
    pub no_cache: bool,
    /// Images to use as cache sources.
    pub cache_from: Vec<String>,
    /// Always pull base images.
    pub pull: bool,
    /// Remove intermediate containers after a successful build (default true).
    pub rm: bool,
    /// Always remove intermediate containers.
    pub force_rm: bool,
    /// Memory limit of build containers.
    pub memory: Option<i64>,
    /// Memory + swap limit.
    pub memswap: Option<i64>,
    /// CPU shares.
    pub cpu_shares: Option<i64>,
    /// CPUs allowed.
    pub cpuset_cpus: Option<String>,
    /// CFS period.
    pub cpu_period: Option<i64>,
    /// CFS quota.
    pub cpu_quota: Option<i64>,
    /// Build arguments (a None value: take it from the environment).
    pub build_args: std::collections::BTreeMap<String, Option<String>>,
    /// /dev/shm size.
    pub shm_size: Option<i64>,
    /// Squash layers.
    pub squash: bool,
    /// Labels of the image.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Network mode of RUN steps.
    pub network_mode: Option<String>,
    /// Target platform.
    pub platform: Option<String>,
    /// Target stage.
    pub target: Option<String>,
    /// Outputs (BuildKit).
    pub outputs: Option<String>,
    /// Builder version asked for (`1` classic, `2` BuildKit).
    pub version: String,
    /// Registry credentials by registry, from `X-Registry-Config`.
    pub registry_auth: std::collections::BTreeMap<String, AuthConfig>,
}

/// Options of `GET /system/df`.
#[derive(Debug, Clone, Default)]
pub struct DiskUsageOptions {
    /// Object types to compute (`container`, `image`, `volume`, `build-cache`; empty: all).
    pub types: Vec<String>,
    /// Detailed answer (API 1.52).
    pub verbose: bool,
}

/// Options of `GET /events`.
#[derive(Debug, Clone, Default)]
pub struct EventsOptions {
    /// Replay stored events from this time.
    pub since: Option<Timestamp>,
    /// Stop at this time (the stream ends then).
    pub until: Option<Timestamp>,
    /// Filters (validated against [`EVENT_FILTERS`](crate::filters::EVENT_FILTERS)).
    pub filters: Filters,
}

/// The answer of `POST /build/prune`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct BuildPruneResponse {
    /// Cache records removed.
    #[serde(rename = "CachesDeleted")]
    pub caches_deleted: Option<Vec<String>>,
    /// Bytes freed.
    #[serde(rename = "SpaceReclaimed")]
    pub space_reclaimed: u64,
}

/// What the engine implements for the API server. Object safe (`Arc<dyn Backend>`), all
/// methods async and `Send`. Methods with a default answer like a daemon without the feature
/// (501 `... is not implemented on this backend`, or an empty result where Docker clients
/// call the endpoint routinely).
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    // ---- system ----

    /// `GET /version`. The server overwrites `ApiVersion`/`MinAPIVersion` (top level and in
    /// the `Engine` component's details) with its configured range.
    async fn version(&self) -> ApiResult<SystemVersion>;

    /// `GET /info`.
    async fn info(&self) -> ApiResult<SystemInfo>;

    /// `GET /system/df`.
    async fn disk_usage(&self, opts: DiskUsageOptions) -> ApiResult<DiskUsage>;

    /// `GET /events`: stored events matching the options, then live ones until `until`
    /// or until the client goes (the stream is dropped).
    async fn events(&self, opts: EventsOptions) -> ApiResult<JsonStream<EventMessage>>;

    /// `POST /auth`: check credentials against a registry (`docker login`).
    async fn auth(&self, auth: AuthConfig) -> ApiResult<AuthResponse>;

    // ---- containers ----

    /// `POST /containers/create`. The server has already applied Docker's
    /// version-compatibility rules to `req` (default network mode -> `bridge`, PidsLimit <= 0
    /// -> none, MacAddress moved to the endpoint...).
    async fn container_create(
        &self,
        opts: ContainerCreateOptions,
        req: ContainerCreateRequest,
    ) -> ApiResult<ContainerCreateResponse>;

    /// `POST /containers/{id}/start`. Already running: [`ApiError::NotModified`].
    async fn container_start(&self, id: &str) -> ApiResult<()>;

    /// `POST /containers/{id}/stop`. Already stopped: [`ApiError::NotModified`].
    async fn container_stop(&self, id: &str, opts: StopOptions) -> ApiResult<()>;

    /// `POST /containers/{id}/restart`.
    async fn container_restart(&self, id: &str, opts: StopOptions) -> ApiResult<()>;

    /// `POST /containers/{id}/kill` (signal None: SIGKILL). Not running: Conflict.
    async fn container_kill(&self, id: &str, signal: Option<String>) -> ApiResult<()>;

    /// `POST /containers/{id}/pause`.
    async fn container_pause(&self, id: &str) -> ApiResult<()>;

    /// `POST /containers/{id}/unpause`.
    async fn container_unpause(&self, id: &str) -> ApiResult<()>;

    /// `POST /containers/{id}/wait`: register the wait (errors here are HTTP errors, e.g.
    /// 404), then return the future of its outcome. Registering before answering lets
    /// `docker run --rm` wait for removal without a race.
    async fn container_wait(&self, id: &str, condition: WaitCondition) -> ApiResult<WaitFuture>;

    /// `DELETE /containers/{id}`.
    async fn container_remove(&self, id: &str, opts: ContainerRemoveOptions) -> ApiResult<()>;

    /// `POST /containers/{id}/rename?name=`.
    async fn container_rename(&self, id: &str, new_name: &str) -> ApiResult<()>;

    /// `GET /containers/{id}/json`.
    async fn container_inspect(&self, id: &str, size: bool) -> ApiResult<ContainerInspect>;

    /// `GET /containers/json`.
    async fn container_list(&self, opts: ContainerListOptions) -> ApiResult<Vec<ContainerSummary>>;

    /// `GET /containers/{id}/logs`.
    async fn container_logs(&self, id: &str, opts: LogsOptions) -> ApiResult<LogOutput>;

    /// `GET /containers/{id}/top?ps_args=` (ps_args empty: `-ef`).
    async fn container_top(&self, id: &str, ps_args: &str) -> ApiResult<ContainerTopResponse>;

    /// `GET /containers/{id}/stats`: samples; with `stream == false` the server sends only
    /// the first.
    async fn container_stats(
        &self,
        id: &str,
        opts: StatsOptions,
    ) -> ApiResult<JsonStream<ContainerStats>>;

    /// `GET /containers/{id}/changes`.
    async fn container_changes(&self, id: &str) -> ApiResult<Vec<FilesystemChange>>;

    /// `GET /containers/{id}/export`: tar of the root filesystem.
    async fn container_export(&self, id: &str) -> ApiResult<ByteStream>;

    /// `HEAD /containers/{id}/archive?path=`.
    async fn container_archive_stat(&self, id: &str, path: &str) -> ApiResult<PathStat>;

    /// `GET /containers/{id}/archive?path=`.
    async fn container_archive_get(&self, id: &str, path: &str) -> ApiResult<ContainerArchive>;

    /// `PUT /containers/{id}/archive?path=`: extract the tar `content` at `path`.
    async fn container_archive_put(
        &self,
        id: &str,
        path: &str,
        opts: ArchivePutOptions,
        content: ByteStream,
    ) -> ApiResult<()>;

    /// `POST /containers/{id}/update`.
    async fn container_update(
        &self,
        id: &str,
        update: ContainerUpdateRequest,
    ) -> ApiResult<ContainerUpdateResponse>;

    /// `POST /containers/{id}/resize?h=&w=`.
    async fn container_resize(&self, id: &str, height: u32, width: u32) -> ApiResult<()>;

    /// `POST /containers/{id}/attach`: validate and set up the session (errors here are
    /// HTTP errors), returning the output; `stdin` is given when `opts.stdin`.
    async fn container_attach(
        &self,
        id: &str,
        opts: AttachOptions,
        stdin: Option<AttachStdin>,
    ) -> ApiResult<AttachOutput>;

    /// `POST /containers/prune`.
    async fn container_prune(&self, filters: Filters) -> ApiResult<ContainerPruneResponse>;

    /// `POST /commit`: a new image from a container; answers the image ID.
    async fn container_commit(&self, opts: CommitOptions) -> ApiResult<IdResponse>;

    // ---- exec ----

    /// `POST /containers/{id}/exec` (the server has checked `Cmd` is not empty); answers
    /// the exec ID.
    async fn exec_create(&self, container: &str, config: ExecConfig) -> ApiResult<IdResponse>;

    /// `POST /exec/{id}/start` without `Detach`: start the process and return its output.
    /// `stdin` is always given; drop it when the exec has no `AttachStdin`. The exit code
    /// must be visible in [`Backend::exec_inspect`] by the time `output` ends (clients
    /// inspect right after).
    async fn exec_start(
        &self,
        id: &str,
        config: ExecStartConfig,
        stdin: AttachStdin,
    ) -> ApiResult<AttachOutput>;

    /// `POST /exec/{id}/start` with `Detach`: start the process and return.
    async fn exec_start_detached(&self, id: &str, config: ExecStartConfig) -> ApiResult<()>;

    /// `POST /exec/{id}/resize?h=&w=`.
    async fn exec_resize(&self, id: &str, height: u32, width: u32) -> ApiResult<()>;

    /// `GET /exec/{id}/json`.
    async fn exec_inspect(&self, id: &str) -> ApiResult<ExecInspect>;

    // ---- images ----

    /// `GET /images/json`.
    async fn image_list(&self, opts: ImageListOptions) -> ApiResult<Vec<ImageSummary>>;

    /// `GET /images/{name}/json`.
    async fn image_inspect(&self, name: &str) -> ApiResult<ImageInspect>;

    /// `GET /images/{name}/history`.
    async fn image_history(&self, name: &str) -> ApiResult<Vec<ImageHistoryItem>>;

    /// `POST /images/{name}/tag?repo=&tag=` (tag empty: `latest`).
    async fn image_tag(&self, name: &str, repo: &str, tag: &str) -> ApiResult<()>;

    /// `DELETE /images/{name}`.
    async fn image_remove(
        &self,
        name: &str,
        opts: ImageRemoveOptions,
    ) -> ApiResult<Vec<ImageDeleteItem>>;

    /// `POST /images/prune`.
    async fn image_prune(&self, filters: Filters) -> ApiResult<ImagePruneResponse>;

    /// `POST /images/create?fromImage=`: progress messages. If the stream's first item is an
    /// error, the server answers it as an HTTP error; later errors go in band.
    async fn image_pull(&self, opts: ImagePullOptions) -> ApiResult<JsonStream<JsonMessage>>;

    /// `POST /images/create?fromSrc=`: progress messages, the last with the image ID in
    /// `status`.
    async fn image_import(&self, opts: ImageImportOptions) -> ApiResult<JsonStream<JsonMessage>>;

    /// `POST /images/{name}/push`: progress messages.
    async fn image_push(&self, opts: ImagePushOptions) -> ApiResult<JsonStream<JsonMessage>>;

    /// `GET /images/get?names=` and `GET /images/{name}/get`: a `docker save` tarball.
    async fn image_save(&self, names: Vec<String>) -> ApiResult<ByteStream>;

    /// `POST /images/load`: read a `docker save` tarball; messages such as
    /// `{"stream":"Loaded image: busybox:latest\n"}`.
    async fn image_load(
        &self,
        opts: ImageLoadOptions,
        tarball: ByteStream,
    ) -> ApiResult<JsonStream<JsonMessage>>;

    /// `GET /images/search`.
    async fn image_search(
        &self,
        _term: &str,
        _limit: Option<u64>,
        _filters: Filters,
    ) -> ApiResult<Vec<ImageSearchResult>> {
        Err(ApiError::not_implemented("image search"))
    }

    /// `GET /distribution/{name}/json`.
    async fn distribution_inspect(&self, _name: &str, _auth: AuthConfig) -> ApiResult<Value> {
        Err(ApiError::not_implemented("distribution inspect"))
    }

    /// `POST /build`: progress messages (`stream` lines, `aux` with the image ID).
    async fn build(
        &self,
        _opts: BuildOptions,
        _context: ByteStream,
    ) -> ApiResult<JsonStream<JsonMessage>> {
        Err(ApiError::not_implemented("image build"))
    }

    /// `POST /build/prune` (default: nothing to prune).
    async fn build_prune(&self, _all: bool, _filters: Filters) -> ApiResult<BuildPruneResponse> {
        Ok(BuildPruneResponse {
            caches_deleted: Some(Vec::new()),
            space_reclaimed: 0,
        })
    }

    // ---- volumes ----

    /// `GET /volumes`.
    async fn volume_list(&self, _filters: Filters) -> ApiResult<VolumeListResponse> {
        Err(ApiError::not_implemented("volume list"))
    }

    /// `POST /volumes/create`.
    async fn volume_create(&self, _req: VolumeCreateRequest) -> ApiResult<Volume> {
        Err(ApiError::not_implemented("volume create"))
    }

    /// `GET /volumes/{name}`.
    async fn volume_inspect(&self, _name: &str) -> ApiResult<Volume> {
        Err(ApiError::not_implemented("volume inspect"))
    }

    /// `DELETE /volumes/{name}`.
    async fn volume_remove(&self, _name: &str, _force: bool) -> ApiResult<()> {
        Err(ApiError::not_implemented("volume remove"))
    }

    /// `POST /volumes/prune`.
    async fn volume_prune(&self, _filters: Filters) -> ApiResult<VolumePruneResponse> {
        Err(ApiError::not_implemented("volume prune"))
    }

    // ---- networks ----

    /// `GET /networks`.
    async fn network_list(&self, _filters: Filters) -> ApiResult<Vec<Network>> {
        Err(ApiError::not_implemented("network list"))
    }

    /// `GET /networks/{id}`.
    async fn network_inspect(&self, _id: &str, _verbose: bool) -> ApiResult<Network> {
        Err(ApiError::not_implemented("network inspect"))
    }

    /// `POST /networks/create`.
    async fn network_create(&self, _req: NetworkCreateRequest) -> ApiResult<NetworkCreateResponse> {
        Err(ApiError::not_implemented("network create"))
    }

    /// `DELETE /networks/{id}`.
    async fn network_remove(&self, _id: &str) -> ApiResult<()> {
        Err(ApiError::not_implemented("network remove"))
    }

    /// `POST /networks/{id}/connect`.
    async fn network_connect(&self, _id: &str, _req: NetworkConnectRequest) -> ApiResult<()> {
        Err(ApiError::not_implemented("network connect"))
    }

    /// `POST /networks/{id}/disconnect`.
    async fn network_disconnect(&self, _id: &str, _req: NetworkDisconnectRequest) -> ApiResult<()> {
        Err(ApiError::not_implemented("network disconnect"))
    }

    /// `POST /networks/prune`.
    async fn network_prune(&self, _filters: Filters) -> ApiResult<NetworkPruneResponse> {
        Err(ApiError::not_implemented("network prune"))
    }
}
