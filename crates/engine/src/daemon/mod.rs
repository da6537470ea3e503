//! berth's daemon: the Docker Engine API ([`api::Server`]) over the engine. Owns the daemon's
//! options and entry points ([`main`], [`run`]), the [`Daemon`] that implements
//! [`api::Backend`] (dispatching to `containers`, `images` and `system`), and start-up
//! reconciliation with the shims of containers that kept running while the daemon was down
//! (live restore: the daemon never kills containers when it exits).

mod archive;
mod changes;
mod config;
mod containers;
mod events;
mod health;
mod images;
mod networks;
mod restart;
mod stats;
mod store;
mod system;
mod transfer;
mod update;
mod volumes;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use api::backend::*;
use api::stream::{AttachStdin, ByteStream, JsonStream};
use api::types::*;
use api::{ApiError, Backend, Filters};
use async_trait::async_trait;
use clap::Parser;

pub use store::{ContainerRecord, StateRecord};

/// Errors starting or running the daemon.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `-H` value that is neither `unix://PATH` nor `tcp://ADDR:PORT`.
    #[error("invalid host {0:?}: use unix:///path/to.sock or tcp://127.0.0.1:PORT")]
    BadHost(String),
    /// Two hosts of one kind (the server listens on one unix socket and one TCP address).
    #[error("only one unix socket and one TCP address can be given with -H; got {0:?}")]
    TooManyHosts(Vec<String>),
    /// The image store could not be opened.
    #[error("cannot open the image store in {path}: {source}")]
    Images {
        path: PathBuf,
        source: ::image::ImagesError,
    },
    /// The container store could not be opened.
    #[error("cannot open the container store {path}: {message}")]
    Store { path: PathBuf, message: String },
    /// A directory could not be made.
    #[error("cannot create {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The API server failed.
    #[error(transparent)]
    Server(#[from] api::ServerError),
    /// The registry client could not be made.
    #[error("cannot make the registry client: {0}")]
    Registry(String),
    /// The network options or state are unusable.
    #[error("networking: {0}")]
    Network(String),
}

/// What the daemon is told on its command line (dockerd's flags).
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// `unix:///path` and/or `tcp://127.0.0.1:port`.
    pub hosts: Vec<String>,
    /// Persistent state: images, containers, logs.
    pub data_root: PathBuf,
    /// Runtime state: shim state dirs, runtime root.
    pub exec_root: PathBuf,
    /// Registries reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Keep containers running while the daemon is down (berth always does; reported in info).
    pub live_restore: bool,
    /// `debug`, `info`, `warn`, `error`, `fatal`.
    pub log_level: String,
    /// OCI runtimes by name (`berth` is the built-in one).
    pub runtimes: std::collections::BTreeMap<String, config::RuntimeSpec>,
    /// The runtime of containers that do not name one.
    pub default_runtime: String,
    /// Default json-file log options (`max-size`, `max-file`) of daemon.json's `log-opts`.
    pub log_opts: std::collections::BTreeMap<String, String>,
    /// The default bridge's link name (`berth0`; a daemon with its own exec root gets its own).
    pub bridge_name: Option<String>,
    /// The default bridge's address and prefix, `172.17.0.1/16` (default: picked from the pools).
    pub bip: Option<String>,
    /// Subnet pools, `base=10.10.0.0/16,size=24` (default: Docker's).
    pub default_address_pools: Vec<String>,
}

impl Default for DaemonOptions {
    fn default() -> DaemonOptions {
        DaemonOptions {
            hosts: vec!["unix:///run/berth/berth.sock".into()],
            data_root: PathBuf::from("/var/lib/berth"),
            exec_root: PathBuf::from("/run/berth"),
            insecure_registries: Vec::new(),
            live_restore: false,
            log_level: "info".into(),
            runtimes: [(
                config::BUILTIN_RUNTIME.to_string(),
                config::RuntimeSpec::default(),
            )]
            .into_iter()
            .collect(),
            default_runtime: config::BUILTIN_RUNTIME.into(),
            log_opts: Default::default(),
            bridge_name: None,
            bip: None,
            default_address_pools: Vec::new(),
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "berth daemon",
    about = "berth's daemon: serves the Docker Engine API"
)]
struct Cli {
    /// Daemon socket(s) to listen on (unix:///path, tcp://127.0.0.1:port).
    #[arg(short = 'H', long = "host")]
    host: Vec<String>,
    /// Root of persistent state [default: /var/lib/berth].
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Root of runtime state [default: /run/berth].
    #[arg(long)]
    exec_root: Option<PathBuf>,
    /// Registries reached over plain HTTP.
    #[arg(long = "insecure-registry")]
    insecure_registry: Vec<String>,
    /// Log level [default: info].
    #[arg(short = 'l', long)]
    log_level: Option<String>,
    /// Keep containers alive while the daemon is down.
    #[arg(long)]
    live_restore: bool,
    /// An OCI runtime: NAME=PATH of a runc-compatible binary (repeatable).
    #[arg(long = "add-runtime")]
    add_runtime: Vec<String>,
    /// The runtime of containers that do not name one [default: berth].
    #[arg(long)]
    default_runtime: Option<String>,
    /// Name of the default bridge link.
    #[arg(long = "bridge-name")]
    bridge_name: Option<String>,
    /// Address and prefix of the default bridge (`172.17.0.1/16`).
    #[arg(long)]
    bip: Option<String>,
    /// Subnet pools for networks: `base=10.10.0.0/16,size=24` (repeatable).
    #[arg(long = "default-address-pools")]
    default_address_pools: Vec<String>,
    /// dockerd-style daemon.json [default: /etc/berth/daemon.json when it exists].
    #[arg(long)]
    config_file: Option<PathBuf>,
}

/// Merges the command line with daemon.json into the daemon's options.
fn options(cli: Cli) -> Result<DaemonOptions, config::ConfigError> {
    let path = cli.config_file.clone().or_else(|| {
        let p = PathBuf::from(config::DEFAULT_CONFIG_FILE);
        p.exists().then_some(p)
    });
    let file = match &path {
        Some(p) => {
            let mut given = Vec::new();
            for (on, name) in [
                (!cli.host.is_empty(), "hosts"),
                (cli.data_root.is_some(), "data-root"),
                (cli.exec_root.is_some(), "exec-root"),
                (!cli.insecure_registry.is_empty(), "insecure-registries"),
                (cli.log_level.is_some(), "log-level"),
                (cli.default_runtime.is_some(), "default-runtime"),
                (cli.bip.is_some(), "bip"),
                (
                    !cli.default_address_pools.is_empty(),
                    "default-address-pools",
                ),
            ] {
                if on {
                    given.push(name);
                }
            }
            config::load(p, &given)?
        }
        None => config::FileConfig::default(),
    };
    let d = DaemonOptions::default();
    let runtimes = config::runtimes(&cli.add_runtime, file.runtimes.as_ref())?;
    let default_runtime = cli
        .default_runtime
        .or(file.default_runtime)
        .unwrap_or(d.default_runtime);
    config::check_default(&default_runtime, &runtimes)?;
    Ok(DaemonOptions {
        hosts: if !cli.host.is_empty() {
            cli.host
        } else {
            file.hosts.unwrap_or(d.hosts)
        },
        data_root: cli.data_root.or(file.data_root).unwrap_or(d.data_root),
        exec_root: cli.exec_root.or(file.exec_root).unwrap_or(d.exec_root),
        insecure_registries: if !cli.insecure_registry.is_empty() {
            cli.insecure_registry
        } else {
            file.insecure_registries.unwrap_or_default()
        },
        live_restore: cli.live_restore || file.live_restore.unwrap_or(false),
        log_level: cli.log_level.or(file.log_level).unwrap_or(d.log_level),
        runtimes,
        default_runtime,
        log_opts: file.log_opts.unwrap_or_default(),
        bridge_name: cli.bridge_name,
        bip: cli.bip.or(file.bip),
        default_address_pools: if !cli.default_address_pools.is_empty() {
            cli.default_address_pools
        } else {
            file.default_address_pools
                .unwrap_or_default()
                .into_iter()
                .map(|p| format!("base={},size={}", p.base, p.size))
                .collect()
        },
    })
}

/// `berth daemon ARGS…` (`args[0]` is the program name): parses dockerd-style flags and
/// serves until SIGINT/SIGTERM. Returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 125 } else { 0 };
        }
    };
    let opts = match options(cli) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("berth daemon: {e}");
            return 1;
        }
    };
    // glibc gives each thread that allocates its own malloc arena (up to 8 per core); the
    // daemon's blocking threads come and go, and their arenas would keep freed memory
    // resident. Two arenas serve a mostly idle daemon as well.
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth daemon: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let r = rt.block_on(run(opts));
    // Tasks blocked on shims (waits, log follows) must not hold the exit: containers run on.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth daemon: {e}");
            1
        }
    }
}

fn server_config(hosts: &[String]) -> Result<api::ServerConfig, Error> {
    let mut cfg = api::ServerConfig::default();
    for h in hosts {
        if let Some(p) = h.strip_prefix("unix://") {
            if cfg.unix_socket.is_some() {
                return Err(Error::TooManyHosts(hosts.to_vec()));
            }
            cfg.unix_socket = Some(PathBuf::from(p));
        } else if let Some(a) = h.strip_prefix("tcp://") {
            if cfg.tcp.is_some() {
                return Err(Error::TooManyHosts(hosts.to_vec()));
            }
            cfg.tcp = Some(a.parse().map_err(|_| Error::BadHost(h.clone()))?);
        } else if h.starts_with('/') {
            cfg.unix_socket = Some(PathBuf::from(h));
        } else {
            return Err(Error::BadHost(h.clone()));
        }
    }
    Ok(cfg)
}

/// Serves the API until SIGINT or SIGTERM; containers keep running afterwards.
pub async fn run(opts: DaemonOptions) -> Result<(), Error> {
    let cfg = server_config(&opts.hosts)?;
    let daemon = Arc::new(Daemon::open(opts).await?);
    let server = api::Server::bind(cfg, daemon.clone()).await?;
    let shutdown = async {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut i), Ok(mut t)) => {
                tokio::select! {
                    _ = i.recv() => {},
                    _ = t.recv() => {},
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    server.serve(shutdown).await?;
    let inner = daemon.inner.clone();
    let _ = tokio::task::spawn_blocking(move || networks::shutdown(&inner)).await;
    Ok(())
}

/// An event of a container's life, for waits.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// It exited with this code.
    Die(String, i64),
    /// It was removed.
    Destroy(String),
}

/// The engine state shared by the daemon's tasks.
pub(crate) struct Inner {
    pub opts: DaemonOptions,
    pub images: ::image::Images,
    pub store: store::Store,
    pub containers: Mutex<HashMap<String, ContainerRecord>>,
    pub execs: Mutex<HashMap<String, containers::ExecRecord>>,
    pub events: tokio::sync::broadcast::Sender<Event>,
    /// `GET /events`: the Docker event bus.
    pub bus: events::Bus,
    /// Restart-policy backoff delays.
    pub restart: restart::Backoff,
    /// Health-check tasks.
    pub health: health::Monitors,
    pub exe: PathBuf,
    pub registry: registry::Client,
    pub networks: networks::Networks,
    pub volumes: volumes::Volumes,
}

/// The daemon: implements [`api::Backend`].
pub struct Daemon {
    inner: Arc<Inner>,
}

impl Daemon {
    /// Opens the stores under the data root and reconciles containers with their shims.
    pub async fn open(opts: DaemonOptions) -> Result<Daemon, Error> {
        for d in [&opts.data_root, &opts.exec_root] {
            std::fs::create_dir_all(d).map_err(|source| Error::Io {
                path: d.clone(),
                source,
            })?;
        }
        let images = ::image::Images::open(&opts.data_root).map_err(|source| Error::Images {
            path: opts.data_root.clone(),
            source,
        })?;
        let store = store::Store::open(
            images.store.database(),
            images.store.path(),
            &opts.data_root.join("engine.redb"),
        )?;
        let exe = match runtime::exe_guard::sealed_path_in(&opts.exec_root.join("exe")) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("berth daemon: warning: cannot seal the berth binary ({e}); containers' shims use /proc/self/exe");
                std::fs::read_link("/proc/self/exe")
                    .unwrap_or_else(|_| PathBuf::from("/proc/self/exe"))
            }
        };
        let registry = registry::Client::new(registry::ClientConfig {
            insecure_registries: opts.insecure_registries.clone(),
            ..Default::default()
        })
        .map_err(|e| Error::Registry(e.to_string()))?;
        let networks = networks::Networks::open(&opts, store.db())?;
        let records = store.load_all()?;
        let volumes = volumes::Volumes::open(&opts.data_root, &store)?;
        let (events, _) = tokio::sync::broadcast::channel(256);
        let inner = Arc::new(Inner {
            opts,
            images,
            store,
            containers: Mutex::new(records.into_iter().map(|c| (c.id.clone(), c)).collect()),
            execs: Mutex::new(HashMap::new()),
            events,
            bus: events::Bus::new(),
            restart: restart::Backoff::default(),
            health: health::Monitors::default(),
            exe,
            registry,
            networks,
            volumes,
        });
        containers::reconcile(&inner);
        volumes::reconcile(&inner);
        networks::restore(&inner);
        restart::on_daemon_start(&inner);
        Ok(Daemon { inner })
    }
}

#[async_trait]
impl Backend for Daemon {
    async fn version(&self) -> ApiResult<SystemVersion> {
        system::version()
    }
    async fn info(&self) -> ApiResult<SystemInfo> {
        system::info(&self.inner)
    }
    async fn disk_usage(&self, opts: DiskUsageOptions) -> ApiResult<DiskUsage> {
        containers::disk_usage(&self.inner, opts).await
    }
    async fn events(&self, opts: EventsOptions) -> ApiResult<JsonStream<EventMessage>> {
        Ok(self.inner.bus.subscribe(opts))
    }
    async fn auth(&self, auth: AuthConfig) -> ApiResult<AuthResponse> {
        transfer::auth(&self.inner, auth).await
    }

    async fn container_create(
        &self,
        opts: ContainerCreateOptions,
        req: ContainerCreateRequest,
    ) -> ApiResult<ContainerCreateResponse> {
        containers::create(&self.inner, opts, req).await
    }
    async fn container_start(&self, id: &str) -> ApiResult<()> {
        containers::start(&self.inner, id).await
    }
    async fn container_stop(&self, id: &str, opts: StopOptions) -> ApiResult<()> {
        containers::stop(&self.inner, id, opts).await
    }
    async fn container_restart(&self, id: &str, opts: StopOptions) -> ApiResult<()> {
        match containers::stop(&self.inner, id, opts).await {
            Ok(()) | Err(ApiError::NotModified(_)) => {}
            Err(e) => return Err(e),
        }
        containers::start(&self.inner, id).await?;
        containers::publish(&self.inner, id, "restart", &[]);
        Ok(())
    }
    async fn container_kill(&self, id: &str, signal: Option<String>) -> ApiResult<()> {
        containers::kill(&self.inner, id, signal).await
    }
    async fn container_pause(&self, id: &str) -> ApiResult<()> {
        containers::pause(&self.inner, id, true).await
    }
    async fn container_unpause(&self, id: &str) -> ApiResult<()> {
        containers::pause(&self.inner, id, false).await
    }
    async fn container_wait(&self, id: &str, condition: WaitCondition) -> ApiResult<WaitFuture> {
        containers::wait(&self.inner, id, condition)
    }
    async fn container_remove(&self, id: &str, opts: ContainerRemoveOptions) -> ApiResult<()> {
        containers::remove(&self.inner, id, opts).await
    }
    async fn container_rename(&self, id: &str, new_name: &str) -> ApiResult<()> {
        containers::rename(&self.inner, id, new_name)
    }
    async fn container_inspect(&self, id: &str, _size: bool) -> ApiResult<ContainerInspect> {
        containers::inspect(&self.inner, id)
    }
    async fn container_list(&self, opts: ContainerListOptions) -> ApiResult<Vec<ContainerSummary>> {
        containers::list(&self.inner, opts)
    }
    async fn container_logs(&self, id: &str, opts: LogsOptions) -> ApiResult<LogOutput> {
        containers::logs(&self.inner, id, opts)
    }
    async fn container_top(&self, id: &str, ps_args: &str) -> ApiResult<ContainerTopResponse> {
        containers::top(&self.inner, id, ps_args).await
    }
    async fn container_stats(
        &self,
        id: &str,
        opts: StatsOptions,
    ) -> ApiResult<JsonStream<ContainerStats>> {
        stats::stats(&self.inner, id, opts).await
    }
    async fn container_changes(&self, id: &str) -> ApiResult<Vec<FilesystemChange>> {
        changes::changes(&self.inner, id).await
    }
    async fn container_export(&self, id: &str) -> ApiResult<ByteStream> {
        containers::export(&self.inner, id)
    }
    async fn container_archive_stat(&self, id: &str, path: &str) -> ApiResult<PathStat> {
        archive::stat(&self.inner, id, path).await
    }
    async fn container_archive_get(&self, id: &str, path: &str) -> ApiResult<ContainerArchive> {
        archive::get(&self.inner, id, path).await
    }
    async fn container_archive_put(
        &self,
        id: &str,
        path: &str,
        opts: ArchivePutOptions,
        content: ByteStream,
    ) -> ApiResult<()> {
        archive::put(&self.inner, id, path, opts, content).await
    }
    async fn container_update(
        &self,
        id: &str,
        update: ContainerUpdateRequest,
    ) -> ApiResult<ContainerUpdateResponse> {
        update::update(&self.inner, id, update).await
    }
    async fn container_resize(&self, id: &str, height: u32, width: u32) -> ApiResult<()> {
        containers::resize(&self.inner, id, None, height, width).await
    }
    async fn container_attach(
        &self,
        id: &str,
        opts: AttachOptions,
        stdin: Option<AttachStdin>,
    ) -> ApiResult<AttachOutput> {
        containers::attach(&self.inner, id, opts, stdin).await
    }
    async fn container_prune(&self, filters: Filters) -> ApiResult<ContainerPruneResponse> {
        containers::prune(&self.inner, filters).await
    }
    async fn container_commit(&self, opts: CommitOptions) -> ApiResult<IdResponse> {
        changes::commit(&self.inner, opts).await
    }

    async fn exec_create(&self, container: &str, config: ExecConfig) -> ApiResult<IdResponse> {
        containers::exec_create(&self.inner, container, config)
    }
    async fn exec_start(
        &self,
        id: &str,
        config: ExecStartConfig,
        stdin: AttachStdin,
    ) -> ApiResult<AttachOutput> {
        containers::exec_start(&self.inner, id, config, Some(stdin))
            .await?
            .ok_or_else(|| ApiError::Internal("the exec has no output".into()))
    }
    async fn exec_start_detached(&self, id: &str, config: ExecStartConfig) -> ApiResult<()> {
        containers::exec_start(&self.inner, id, config, None)
            .await
            .map(|_| ())
    }
    async fn exec_resize(&self, id: &str, height: u32, width: u32) -> ApiResult<()> {
        let c = containers::exec_container(&self.inner, id)?;
        containers::resize(&self.inner, &c, Some(id.to_string()), height, width).await
    }
    async fn exec_inspect(&self, id: &str) -> ApiResult<ExecInspect> {
        containers::exec_inspect(&self.inner, id)
    }

    async fn network_list(&self, filters: Filters) -> ApiResult<Vec<Network>> {
        networks::list(&self.inner, filters)
    }
    async fn network_inspect(&self, id: &str, _verbose: bool) -> ApiResult<Network> {
        networks::inspect(&self.inner, id)
    }
    async fn network_create(&self, req: NetworkCreateRequest) -> ApiResult<NetworkCreateResponse> {
        networks::create(&self.inner, req).await
    }
    async fn network_remove(&self, id: &str) -> ApiResult<()> {
        networks::remove(&self.inner, id).await
    }
    async fn network_connect(&self, id: &str, req: NetworkConnectRequest) -> ApiResult<()> {
        networks::connect(&self.inner, id, req).await
    }
    async fn network_disconnect(&self, id: &str, req: NetworkDisconnectRequest) -> ApiResult<()> {
        networks::disconnect(&self.inner, id, req).await
    }
    async fn network_prune(&self, filters: Filters) -> ApiResult<NetworkPruneResponse> {
        networks::prune(&self.inner, filters).await
    }
    async fn volume_list(&self, filters: Filters) -> ApiResult<VolumeListResponse> {
        volumes::list(&self.inner, filters).await
    }
    async fn volume_create(&self, req: VolumeCreateRequest) -> ApiResult<Volume> {
        volumes::create(&self.inner, req).await
    }
    async fn volume_inspect(&self, name: &str) -> ApiResult<Volume> {
        volumes::inspect(&self.inner, name).await
    }
    async fn volume_remove(&self, name: &str, force: bool) -> ApiResult<()> {
        volumes::remove(&self.inner, name, force).await
    }
    async fn volume_prune(&self, filters: Filters) -> ApiResult<VolumePruneResponse> {
        volumes::prune(&self.inner, filters).await
    }

    async fn image_list(&self, opts: ImageListOptions) -> ApiResult<Vec<ImageSummary>> {
        images::list(&self.inner, opts).await
    }
    async fn image_inspect(&self, name: &str) -> ApiResult<ImageInspect> {
        images::inspect(&self.inner, name).await
    }
    async fn image_history(&self, name: &str) -> ApiResult<Vec<ImageHistoryItem>> {
        images::history(&self.inner, name).await
    }
    async fn image_tag(&self, name: &str, repo: &str, tag: &str) -> ApiResult<()> {
        images::tag(&self.inner, name, repo, tag).await
    }
    async fn image_remove(
        &self,
        name: &str,
        opts: ImageRemoveOptions,
    ) -> ApiResult<Vec<ImageDeleteItem>> {
        images::remove(&self.inner, name, opts).await
    }
    async fn image_prune(&self, filters: Filters) -> ApiResult<ImagePruneResponse> {
        transfer::prune(&self.inner, filters).await
    }
    async fn image_pull(&self, opts: ImagePullOptions) -> ApiResult<JsonStream<JsonMessage>> {
        images::pull(&self.inner, opts).await
    }
    async fn image_import(&self, opts: ImageImportOptions) -> ApiResult<JsonStream<JsonMessage>> {
        transfer::import(&self.inner, opts).await
    }
    async fn image_push(&self, opts: ImagePushOptions) -> ApiResult<JsonStream<JsonMessage>> {
        transfer::push(&self.inner, opts).await
    }
    async fn image_save(&self, names: Vec<String>) -> ApiResult<ByteStream> {
        transfer::save(&self.inner, names).await
    }
    async fn image_load(
        &self,
        opts: ImageLoadOptions,
        tarball: ByteStream,
    ) -> ApiResult<JsonStream<JsonMessage>> {
        transfer::load(&self.inner, opts, tarball).await
    }
}

/// Runs blocking work (shim client, image store) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("a daemon task failed: {e}")))?
}
