//! An in-memory fake engine implementing `api::Backend`, for driving the server with real
//! clients. Containers are records whose "process" echoes stdin to stdout; exec commands
//! are `cat` (echo stdin), `echo ARGS...` (prints them), `false` (exit 1); pulls of
//! `nosuchimage` fail at once, of `midfail` after one progress line.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use api::backend::*;
use api::stream::{AttachStdin, ByteStream, Frame, FrameStream, JsonStream};
use api::types::*;
use api::{ApiError, Filters};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{stream, StreamExt};
use tokio::sync::watch;

/// Lifecycle of a fake container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Created,
    Running,
    Paused,
    Exited(i64),
    Removed,
}

pub struct FakeContainer {
    pub id: String,
    pub name: String,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub phase: watch::Sender<Phase>,
    pub uploads: Vec<(String, usize)>,
}

pub struct FakeExec {
    pub container: String,
    pub config: ExecConfig,
    pub exit_code: Arc<Mutex<Option<i64>>>,
}

#[derive(Default)]
pub struct State {
    pub containers: BTreeMap<String, FakeContainer>,
    pub execs: BTreeMap<String, FakeExec>,
    pub next: u64,
    pub last_create: Option<ContainerCreateRequest>,
    pub last_auth: Option<AuthConfig>,
}

#[derive(Default)]
pub struct Fake {
    pub state: Mutex<State>,
}

fn hex_id(n: u64) -> String {
    format!("{:064x}", 0xabc0_0000_u64 + n)
}

impl Fake {
    pub fn new() -> Arc<Fake> {
        Arc::new(Fake::default())
    }

    /// Adds a running container named `name` (for ps / exec tests).
    pub fn add_running(&self, name: &str, tty: bool) -> String {
        let mut st = self.state.lock().unwrap();
        st.next += 1;
        let id = hex_id(st.next);
        let (tx, _) = watch::channel(Phase::Running);
        let config = ContainerConfig {
            image: "busybox".into(),
            tty,
            open_stdin: tty,
            cmd: Some(vec!["sh".into()]),
            labels: Some(BTreeMap::from([("app".to_string(), "test".to_string())])),
            ..Default::default()
        };
        st.containers.insert(
            id.clone(),
            FakeContainer {
                id: id.clone(),
                name: name.to_string(),
                config,
                host_config: HostConfig {
                    network_mode: "bridge".into(),
                    ..Default::default()
                },
                phase: tx,
                uploads: Vec::new(),
            },
        );
        id
    }

    fn find(&self, st: &State, id: &str) -> Result<String, ApiError> {
        let needle = id.trim_start_matches('/');
        st.containers
            .values()
            .find(|c| {
                c.id == needle
                    || c.name == needle
                    || (needle.len() >= 3 && c.id.starts_with(needle))
            })
            .map(|c| c.id.clone())
            .ok_or_else(|| ApiError::no_such_container(id))
    }

    fn with<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut FakeContainer) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut st = self.state.lock().unwrap();
        let key = self.find(&st, id)?;
        let c = st
            .containers
            .get_mut(&key)
            .ok_or_else(|| ApiError::no_such_container(id))?;
        f(c)
    }

    fn phase(&self, id: &str) -> Result<Phase, ApiError> {
        self.with(id, |c| Ok(*c.phase.borrow()))
    }
}

/// Output that echoes `stdin` to stdout until end of file (or detach), then runs `on_end`.
fn echo(stdin: AttachStdin, on_end: impl FnOnce() + Send + 'static) -> FrameStream {
    Box::pin(stream::unfold(
        (stdin, Some(on_end)),
        |(mut stdin, mut on_end)| async move {
            match stdin.recv().await {
                Ok(Some(data)) => Some((Ok(Frame::stdout(data)), (stdin, on_end))),
                // Detached: the session ends, the "process" keeps running.
                Err(e) if api::stream::is_detached(&e) => None,
                _ => {
                    if let Some(f) = on_end.take() {
                        f();
                    }
                    None
                }
            }
        },
    ))
}

fn rfc3339_zero() -> String {
    "0001-01-01T00:00:00Z".to_string()
}

#[async_trait]
impl Backend for Fake {
    async fn version(&self) -> ApiResult<SystemVersion> {
        Ok(SystemVersion {
            platform: PlatformName {
                name: "berth (fake backend)".into(),
            },
            components: Some(vec![ComponentVersion {
                name: "Engine".into(),
                version: "0.1.0".into(),
                details: Some(BTreeMap::from([
                    ("GitCommit".to_string(), "fake".to_string()),
                    ("GoVersion".to_string(), "rust".to_string()),
                    ("Os".to_string(), "linux".to_string()),
                    ("Arch".to_string(), "amd64".to_string()),
                    ("KernelVersion".to_string(), "6.1".to_string()),
                    ("BuildTime".to_string(), "2025-01-01T00:00:00Z".to_string()),
                    ("Experimental".to_string(), "false".to_string()),
                ])),
            }]),
            version: "0.1.0".into(),
            git_commit: "fake".into(),
            go_version: "rust".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            kernel_version: "6.1".into(),
            build_time: "2025-01-01T00:00:00Z".into(),
            ..Default::default()
        })
    }

    async fn info(&self) -> ApiResult<SystemInfo> {
        let st = self.state.lock().unwrap();
        let running = st
            .containers
            .values()
            .filter(|c| *c.phase.borrow() == Phase::Running)
            .count() as i64;
        Ok(SystemInfo {
            id: "FAKE:ID".into(),
            containers: st.containers.len() as i64,
            containers_running: running,
            containers_stopped: st.containers.len() as i64 - running,
            images: 1,
            driver: "overlay2".into(),
            docker_root_dir: "/var/lib/berth".into(),
            plugins: serde_json::json!({"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": null, "Log": ["json-file"]}),
            logging_driver: "json-file".into(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: "1".into(),
            kernel_version: "6.1".into(),
            operating_system: "FakeOS".into(),
            os_version: "1".into(),
            os_type: "linux".into(),
            architecture: "x86_64".into(),
            ncpu: 2,
            mem_total: 1 << 30,
            index_server_address: "https://index.docker.io/v1/".into(),
            name: "fakehost".into(),
            server_version: "0.1.0".into(),
            default_runtime: "berth".into(),
            runtimes: Some(BTreeMap::from([(
                "berth".to_string(),
                serde_json::json!({"path": "berth-runtime"}),
            )])),
            swarm: serde_json::json!({"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null}),
            security_options: Some(vec!["name=seccomp,profile=builtin".into()]),
            containerd_commit: serde_json::json!({"ID": ""}),
            runc_commit: serde_json::json!({"ID": ""}),
            init_commit: serde_json::json!({"ID": ""}),
            ..Default::default()
        })
    }

    async fn disk_usage(&self, _opts: DiskUsageOptions) -> ApiResult<DiskUsage> {
        Ok(DiskUsage {
            layers_size: 42,
            images: Some(vec![]),
            containers: Some(vec![]),
            volumes: Some(vec![]),
            build_cache: Some(vec![]),
            ..Default::default()
        })
    }

    async fn events(&self, opts: EventsOptions) -> ApiResult<JsonStream<EventMessage>> {
        let mk = |action: &str, t: i64| EventMessage {
            kind: "container".into(),
            action: action.into(),
            actor: EventActor {
                id: "c1".into(),
                attributes: BTreeMap::from([("name".to_string(), "web".to_string())]),
            },
            scope: "local".into(),
            time: t,
            time_nano: t * 1_000_000_000,
            status: Some(action.into()),
            id: Some("c1".into()),
            from: Some("busybox".into()),
        };
        let evs = vec![Ok(mk("create", 100)), Ok(mk("start", 101))];
        let filtered: Vec<_> = evs
            .into_iter()
            .filter(|e: &ApiResult<EventMessage>| {
                let e = e.as_ref().unwrap();
                opts.filters.exact_match("event", &e.action)
            })
            .collect();
        if opts.until.is_some() {
            Ok(Box::pin(stream::iter(filtered)))
        } else {
            // Live: the stored events, then nothing until the client goes.
            Ok(Box::pin(stream::iter(filtered).chain(stream::pending())))
        }
    }

    async fn auth(&self, auth: AuthConfig) -> ApiResult<AuthResponse> {
        if auth.password == "bad" {
            return Err(ApiError::Unauthorized(
                "login attempt to https://registry/v2/ failed with status: 401 Unauthorized".into(),
            ));
        }
        self.state.lock().unwrap().last_auth = Some(auth);
        Ok(AuthResponse {
            status: "Login Succeeded".into(),
            identity_token: String::new(),
        })
    }

    async fn container_create(
        &self,
        opts: ContainerCreateOptions,
        req: ContainerCreateRequest,
    ) -> ApiResult<ContainerCreateResponse> {
        if req.config.image == "nosuchimage" {
            return Err(ApiError::no_such_image("nosuchimage:latest"));
        }
        let mut st = self.state.lock().unwrap();
        st.next += 1;
        let id = hex_id(st.next);
        let name = opts.name.unwrap_or_else(|| format!("fake_{}", st.next));
        if let Some(other) = st.containers.values().find(|c| c.name == name) {
            return Err(ApiError::Conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.id
            )));
        }
        let (tx, _) = watch::channel(Phase::Created);
        st.last_create = Some(req.clone());
        st.containers.insert(
            id.clone(),
            FakeContainer {
                id: id.clone(),
                name,
                config: req.config,
                host_config: req.host_config.unwrap_or_default(),
                phase: tx,
                uploads: Vec::new(),
            },
        );
        Ok(ContainerCreateResponse {
            id,
            warnings: vec![],
        })
    }

    async fn container_start(&self, id: &str) -> ApiResult<()> {
        self.with(id, |c| {
            let p = *c.phase.borrow();
            match p {
                Phase::Running | Phase::Paused => {
                    Err(ApiError::NotModified("already started".into()))
                }
                _ => {
                    c.phase.send_replace(Phase::Running);
                    Ok(())
                }
            }
        })
    }

    async fn container_stop(&self, id: &str, _opts: StopOptions) -> ApiResult<()> {
        self.with(id, |c| match *c.phase.borrow() {
            Phase::Running | Phase::Paused => Ok(()),
            _ => Err(ApiError::NotModified("not running".into())),
        })?;
        self.with(id, |c| {
            c.phase.send_replace(Phase::Exited(143));
            Ok(())
        })
    }

    async fn container_restart(&self, id: &str, _opts: StopOptions) -> ApiResult<()> {
        self.with(id, |c| {
            c.phase.send_replace(Phase::Running);
            Ok(())
        })
    }

    async fn container_kill(&self, id: &str, signal: Option<String>) -> ApiResult<()> {
        if signal.as_deref() == Some("SIGBOGUS") {
            return Err(ApiError::InvalidParameter(
                "Invalid signal: SIGBOGUS".into(),
            ));
        }
        self.with(id, |c| match *c.phase.borrow() {
            Phase::Running => Ok(()),
            _ => Err(ApiError::Conflict(format!(
                "container {} is not running",
                c.id
            ))),
        })?;
        self.with(id, |c| {
            c.phase.send_replace(Phase::Exited(137));
            Ok(())
        })
    }

    async fn container_pause(&self, id: &str) -> ApiResult<()> {
        self.with(id, |c| {
            c.phase.send_replace(Phase::Paused);
            Ok(())
        })
    }

    async fn container_unpause(&self, id: &str) -> ApiResult<()> {
        self.with(id, |c| {
            c.phase.send_replace(Phase::Running);
            Ok(())
        })
    }

    async fn container_wait(&self, id: &str, condition: WaitCondition) -> ApiResult<WaitFuture> {
        let mut rx = self.with(id, |c| Ok(c.phase.subscribe()))?;
        let next_exit = condition == WaitCondition::NextExit;
        Ok(Box::pin(async move {
            let mut first = true;
            loop {
                let p = *rx.borrow_and_update();
                let done = match (condition, p) {
                    (WaitCondition::Removed, Phase::Removed) => true,
                    (WaitCondition::Removed, _) => false,
                    (_, Phase::Exited(_)) if !(next_exit && first) => true,
                    (_, Phase::Created) if condition == WaitCondition::NotRunning => true,
                    (_, Phase::Removed) => true,
                    _ => false,
                };
                if done {
                    let code = match p {
                        Phase::Exited(c) => c,
                        _ => 0,
                    };
                    return Ok(ContainerWaitResponse {
                        status_code: code,
                        error: None,
                    });
                }
                first = false;
                if rx.changed().await.is_err() {
                    return Ok(ContainerWaitResponse {
                        status_code: 0,
                        error: None,
                    });
                }
            }
        }))
    }

    async fn container_remove(&self, id: &str, opts: ContainerRemoveOptions) -> ApiResult<()> {
        let mut st = self.state.lock().unwrap();
        let key = self.find(&st, id)?;
        let running = matches!(
            *st.containers[&key].phase.borrow(),
            Phase::Running | Phase::Paused
        );
        if running && !opts.force {
            return Err(ApiError::Conflict(format!(
                "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                st.containers[&key].name
            )));
        }
        if let Some(c) = st.containers.remove(&key) {
            c.phase.send_replace(Phase::Removed);
        }
        Ok(())
    }

    async fn container_rename(&self, id: &str, new_name: &str) -> ApiResult<()> {
        self.with(id, |c| {
            c.name = new_name.to_string();
            Ok(())
        })
    }

    async fn container_inspect(&self, id: &str, _size: bool) -> ApiResult<ContainerInspect> {
        self.with(id, |c| {
            let p = *c.phase.borrow();
            let (status, code) = match p {
                Phase::Created => ("created", 0),
                Phase::Running => ("running", 0),
                Phase::Paused => ("paused", 0),
                Phase::Exited(code) => ("exited", code),
                Phase::Removed => ("removing", 0),
            };
            Ok(ContainerInspect {
                id: c.id.clone(),
                created: "2025-01-01T00:00:00.000000000Z".into(),
                path: "sh".into(),
                args: vec![],
                state: ContainerState {
                    status: status.into(),
                    running: matches!(p, Phase::Running | Phase::Paused),
                    paused: p == Phase::Paused,
                    pid: if p == Phase::Running { 4242 } else { 0 },
                    exit_code: code,
                    started_at: "2025-01-01T00:00:01.000000000Z".into(),
                    finished_at: rfc3339_zero(),
                    ..Default::default()
                },
                image: "sha256:".to_string() + &"1".repeat(64),
                name: format!("/{}", c.name),
                driver: "overlay2".into(),
                platform: "linux".into(),
                host_config: c.host_config.clone(),
                config: c.config.clone(),
                network_settings: NetworkSettings {
                    networks: Some(BTreeMap::new()),
                    ..Default::default()
                },
                ..Default::default()
            })
        })
    }

    async fn container_list(&self, opts: ContainerListOptions) -> ApiResult<Vec<ContainerSummary>> {
        let st = self.state.lock().unwrap();
        let mut out: Vec<ContainerSummary> = st
            .containers
            .values()
            .filter(|c| opts.all || matches!(*c.phase.borrow(), Phase::Running | Phase::Paused))
            .filter(|c| {
                opts.filters.match_labels(
                    "label",
                    c.config.labels.as_ref().unwrap_or(&BTreeMap::new()),
                )
            })
            .filter(|c| {
                opts.filters.get("name").is_empty()
                    || opts.filters.get("name").iter().any(|n| c.name.contains(n))
            })
            .map(|c| {
                let p = *c.phase.borrow();
                ContainerSummary {
                    id: c.id.clone(),
                    names: vec![format!("/{}", c.name)],
                    image: c.config.image.clone(),
                    image_id: "sha256:".to_string() + &"1".repeat(64),
                    command: "sh".into(),
                    created: 1_700_000_000,
                    ports: vec![PortSummary {
                        ip: "0.0.0.0".into(),
                        private_port: 80,
                        public_port: Some(8080),
                        kind: "tcp".into(),
                    }],
                    labels: c.config.labels.clone().unwrap_or_default(),
                    state: match p {
                        Phase::Running => "running",
                        Phase::Paused => "paused",
                        Phase::Created => "created",
                        _ => "exited",
                    }
                    .into(),
                    status: match p {
                        Phase::Running => "Up 5 minutes".to_string(),
                        Phase::Exited(c) => format!("Exited ({c}) 1 second ago"),
                        _ => "Created".to_string(),
                    },
                    host_config: Some(serde_json::json!({"NetworkMode": "bridge"})),
                    network_settings: Some(SummaryNetworkSettings {
                        networks: Some(BTreeMap::new()),
                    }),
                    ..Default::default()
                }
            })
            .collect();
        if let Some(l) = opts.limit {
            out.truncate(l);
        }
        Ok(out)
    }

    async fn container_logs(&self, id: &str, opts: LogsOptions) -> ApiResult<LogOutput> {
        let tty = self.with(id, |c| Ok(c.config.tty))?;
        let mut frames = Vec::new();
        if opts.stdout {
            frames.push(Ok(Frame::stdout("out line 1\n")));
        }
        if opts.stderr {
            frames.push(Ok(Frame::stderr("err line 1\n")));
        }
        if opts.stdout {
            frames.push(Ok(Frame::stdout("out line 2\n")));
        }
        Ok(LogOutput {
            tty,
            frames: Box::pin(stream::iter(frames)),
        })
    }

    async fn container_top(&self, id: &str, ps_args: &str) -> ApiResult<ContainerTopResponse> {
        self.find(&self.state.lock().unwrap(), id)?;
        Ok(ContainerTopResponse {
            titles: vec!["UID".into(), "PID".into(), "CMD".into()],
            processes: vec![vec!["root".into(), "4242".into(), format!("sh {ps_args}")]],
        })
    }

    async fn container_stats(
        &self,
        id: &str,
        opts: StatsOptions,
    ) -> ApiResult<JsonStream<ContainerStats>> {
        let cid = self.find(&self.state.lock().unwrap(), id)?;
        let n = if opts.stream { 3 } else { 1 };
        let items: Vec<ApiResult<ContainerStats>> = (0..n)
            .map(|i| {
                Ok(ContainerStats {
                    id: cid.clone(),
                    name: "/web".into(),
                    read: "2025-01-01T00:00:00Z".into(),
                    cpu_stats: CpuStats {
                        cpu_usage: CpuUsage {
                            total_usage: 1000 * (i + 1),
                            ..Default::default()
                        },
                        system_cpu_usage: Some(1_000_000 * (i + 1)),
                        online_cpus: Some(2),
                        ..Default::default()
                    },
                    memory_stats: MemoryStats {
                        usage: Some(1 << 20),
                        limit: Some(1 << 30),
                        ..Default::default()
                    },
                    ..Default::default()
                })
            })
            .collect();
        Ok(Box::pin(stream::iter(items)))
    }

    async fn container_changes(&self, id: &str) -> ApiResult<Vec<FilesystemChange>> {
        self.find(&self.state.lock().unwrap(), id)?;
        Ok(vec![
            FilesystemChange {
                path: "/tmp".into(),
                kind: CHANGE_MODIFIED,
            },
            FilesystemChange {
                path: "/tmp/x".into(),
                kind: CHANGE_ADDED,
            },
        ])
    }

    async fn container_export(&self, id: &str) -> ApiResult<ByteStream> {
        self.find(&self.state.lock().unwrap(), id)?;
        Ok(Box::pin(stream::iter(vec![
            Ok(Bytes::from_static(b"tar-part-1")),
            Ok(Bytes::from_static(b"tar-part-2")),
        ])))
    }

    async fn container_archive_stat(&self, id: &str, path: &str) -> ApiResult<PathStat> {
        self.find(&self.state.lock().unwrap(), id)?;
        if path.contains("missing") {
            return Err(ApiError::NotFound(format!(
                "Could not find the file {path} in container {id}"
            )));
        }
        Ok(PathStat {
            name: path.rsplit('/').next().unwrap_or("").into(),
            size: 5,
            mode: go_file_mode(0o100644),
            mtime: "2025-01-01T00:00:00Z".into(),
            link_target: String::new(),
        })
    }

    async fn container_archive_get(&self, id: &str, path: &str) -> ApiResult<ContainerArchive> {
        let stat = self.container_archive_stat(id, path).await?;
        Ok(ContainerArchive {
            stat,
            content: Box::pin(stream::once(async { Ok(Bytes::from_static(b"TARDATA")) })),
        })
    }

    async fn container_archive_put(
        &self,
        id: &str,
        path: &str,
        _opts: ArchivePutOptions,
        mut content: ByteStream,
    ) -> ApiResult<()> {
        let mut n = 0;
        while let Some(c) = content.next().await {
            n += c?.len();
        }
        self.with(id, |c| {
            c.uploads.push((path.to_string(), n));
            Ok(())
        })
    }

    async fn container_update(
        &self,
        id: &str,
        _update: ContainerUpdateRequest,
    ) -> ApiResult<ContainerUpdateResponse> {
        self.find(&self.state.lock().unwrap(), id)?;
        Ok(ContainerUpdateResponse {
            warnings: Some(vec![]),
        })
    }

    async fn container_resize(&self, id: &str, _h: u32, _w: u32) -> ApiResult<()> {
        self.find(&self.state.lock().unwrap(), id).map(|_| ())
    }

    async fn container_attach(
        &self,
        id: &str,
        opts: AttachOptions,
        stdin: Option<AttachStdin>,
    ) -> ApiResult<AttachOutput> {
        let (tty, auto_remove, phase_tx) = self.with(id, |c| {
            Ok((c.config.tty, c.host_config.auto_remove, c.phase.clone()))
        })?;
        let output: FrameStream = match stdin {
            Some(stdin) => {
                let phase = phase_tx.clone();
                echo(stdin, move || {
                    // The "process" ends with its stdin, but not before it was started (the
                    // CLI streams stdin as soon as it is attached, before it starts).
                    tokio::spawn(async move {
                        let mut rx = phase.subscribe();
                        while *rx.borrow_and_update() == Phase::Created {
                            if rx.changed().await.is_err() {
                                return;
                            }
                        }
                        phase.send_replace(Phase::Exited(0));
                        if auto_remove {
                            phase.send_replace(Phase::Removed);
                        }
                    });
                })
            }
            None => Box::pin(stream::iter(vec![Ok(Frame::stdout("attached\n"))])),
        };
        let _ = phase_tx;
        Ok(AttachOutput {
            tty,
            detach_keys: Some(
                opts.detach_keys
                    .unwrap_or_else(api::stream::DetachKeys::default_keys),
            ),
            output,
        })
    }

    async fn container_prune(&self, _filters: Filters) -> ApiResult<ContainerPruneResponse> {
        Ok(ContainerPruneResponse {
            containers_deleted: Some(vec![]),
            space_reclaimed: 0,
        })
    }

    async fn container_commit(&self, opts: CommitOptions) -> ApiResult<IdResponse> {
        self.find(&self.state.lock().unwrap(), &opts.container)?;
        Ok(IdResponse {
            id: "sha256:".to_string() + &"c".repeat(64),
        })
    }

    async fn exec_create(&self, container: &str, config: ExecConfig) -> ApiResult<IdResponse> {
        let mut st = self.state.lock().unwrap();
        let cid = self.find(&st, container)?;
        if *st.containers[&cid].phase.borrow() != Phase::Running {
            return Err(ApiError::Conflict(format!(
                "container {cid} is not running"
            )));
        }
        st.next += 1;
        let id = format!("{:064x}", 0xe7ec_0000_u64 + st.next);
        st.execs.insert(
            id.clone(),
            FakeExec {
                container: cid,
                config,
                exit_code: Arc::new(Mutex::new(None)),
            },
        );
        Ok(IdResponse { id })
    }

    async fn exec_start(
        &self,
        id: &str,
        config: ExecStartConfig,
        stdin: AttachStdin,
    ) -> ApiResult<AttachOutput> {
        let (cmd, code_slot, attach_stdin) = {
            let st = self.state.lock().unwrap();
            let e = st.execs.get(id).ok_or_else(|| ApiError::no_such_exec(id))?;
            (
                e.config.cmd.clone().unwrap_or_default(),
                e.exit_code.clone(),
                e.config.attach_stdin,
            )
        };
        let tty = config.tty;
        let slot = code_slot.clone();
        let output: FrameStream = match cmd.first().map(String::as_str) {
            Some("cat") if attach_stdin => echo(stdin, move || {
                *slot.lock().unwrap() = Some(0);
            }),
            Some("echo") => {
                *slot.lock().unwrap() = Some(0);
                let line = cmd[1..].join(" ") + "\n";
                let mut frames = vec![Ok(Frame::stdout(line))];
                if !tty {
                    frames.push(Ok(Frame::stderr("to stderr\n")));
                }
                Box::pin(stream::iter(frames))
            }
            Some("false") => {
                *slot.lock().unwrap() = Some(1);
                Box::pin(stream::empty())
            }
            other => {
                *slot.lock().unwrap() = Some(127);
                let msg = format!(
                    "exec: {:?}: executable file not found in $PATH\n",
                    other.unwrap_or("")
                );
                Box::pin(stream::iter(vec![Ok(Frame::stderr(msg))]))
            }
        };
        Ok(AttachOutput {
            tty,
            detach_keys: None,
            output,
        })
    }

    async fn exec_start_detached(&self, id: &str, _config: ExecStartConfig) -> ApiResult<()> {
        let st = self.state.lock().unwrap();
        let e = st.execs.get(id).ok_or_else(|| ApiError::no_such_exec(id))?;
        *e.exit_code.lock().unwrap() = Some(0);
        Ok(())
    }

    async fn exec_resize(&self, id: &str, _h: u32, _w: u32) -> ApiResult<()> {
        let st = self.state.lock().unwrap();
        st.execs
            .get(id)
            .map(|_| ())
            .ok_or_else(|| ApiError::no_such_exec(id))
    }

    async fn exec_inspect(&self, id: &str) -> ApiResult<ExecInspect> {
        let st = self.state.lock().unwrap();
        let e = st.execs.get(id).ok_or_else(|| ApiError::no_such_exec(id))?;
        let code = *e.exit_code.lock().unwrap();
        let cmd = e.config.cmd.clone().unwrap_or_default();
        Ok(ExecInspect {
            id: id.to_string(),
            running: code.is_none(),
            exit_code: code,
            can_remove: code.is_some(),
            container_id: e.container.clone(),
            open_stdin: e.config.attach_stdin,
            open_stdout: e.config.attach_stdout,
            open_stderr: e.config.attach_stderr,
            process_config: ProcessConfig {
                tty: e.config.tty,
                entrypoint: cmd.first().cloned().unwrap_or_default(),
                arguments: cmd.iter().skip(1).cloned().collect(),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    async fn image_list(&self, _opts: ImageListOptions) -> ApiResult<Vec<ImageSummary>> {
        Ok(vec![ImageSummary {
            id: "sha256:".to_string() + &"1".repeat(64),
            repo_tags: vec!["busybox:latest".into()],
            repo_digests: vec![],
            created: 1_700_000_000,
            size: 4_400_000,
            shared_size: -1,
            containers: -1,
            ..Default::default()
        }])
    }

    async fn image_inspect(&self, name: &str) -> ApiResult<ImageInspect> {
        if !name.starts_with("busybox") {
            return Err(ApiError::no_such_image(name));
        }
        Ok(ImageInspect {
            id: "sha256:".to_string() + &"1".repeat(64),
            repo_tags: vec!["busybox:latest".into()],
            os: "linux".into(),
            architecture: "amd64".into(),
            config: Some(ContainerConfig {
                cmd: Some(vec!["sh".into()]),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    async fn image_history(&self, _name: &str) -> ApiResult<Vec<ImageHistoryItem>> {
        Ok(vec![ImageHistoryItem {
            id: "<missing>".into(),
            created_by: "/bin/sh -c #(nop) CMD [\"sh\"]".into(),
            ..Default::default()
        }])
    }

    async fn image_tag(&self, name: &str, _repo: &str, _tag: &str) -> ApiResult<()> {
        if name.starts_with("busybox") {
            Ok(())
        } else {
            Err(ApiError::no_such_image(name))
        }
    }

    async fn image_remove(
        &self,
        name: &str,
        _opts: ImageRemoveOptions,
    ) -> ApiResult<Vec<ImageDeleteItem>> {
        Ok(vec![ImageDeleteItem {
            untagged: Some(name.to_string()),
            deleted: None,
        }])
    }

    async fn image_prune(&self, _filters: Filters) -> ApiResult<ImagePruneResponse> {
        Ok(ImagePruneResponse {
            images_deleted: None,
            space_reclaimed: 0,
        })
    }

    async fn image_pull(&self, opts: ImagePullOptions) -> ApiResult<JsonStream<JsonMessage>> {
        self.state.lock().unwrap().last_auth = Some(opts.auth.clone());
        let image = opts.from_image.clone();
        let tag = if opts.tag.is_empty() {
            "latest".to_string()
        } else {
            opts.tag.clone()
        };
        let short = image.rsplit('/').next().unwrap_or("").to_string();
        match short.as_str() {
            "nosuchimage" => Ok(Box::pin(stream::iter(vec![Err(ApiError::NotFound(
                "pull access denied for nosuchimage, repository does not exist or may require 'docker login'".into(),
            ))]))),
            "midfail" => Ok(Box::pin(stream::iter(vec![
                Ok(JsonMessage::status(Some(&tag), format!("Pulling from library/{short}"))),
                Err(ApiError::Internal("unexpected EOF".into())),
            ]))),
            _ => Ok(Box::pin(stream::iter(vec![
                Ok(JsonMessage::status(Some(&tag), format!("Pulling from library/{short}"))),
                Ok(JsonMessage { status: Some("Downloading".into()), id: Some("a1b2c3d4e5f6".into()), progress_detail: Some(ProgressDetail { current: Some(50), total: Some(100), units: None }), ..Default::default() }),
                Ok(JsonMessage::status(Some("a1b2c3d4e5f6"), "Pull complete")),
                Ok(JsonMessage::status(None, format!("Digest: sha256:{}", "d".repeat(64)))),
                Ok(JsonMessage::status(None, format!("Status: Downloaded newer image for {image}:{tag}"))),
            ]))),
        }
    }

    async fn image_import(&self, opts: ImageImportOptions) -> ApiResult<JsonStream<JsonMessage>> {
        let n = match opts.source {
            ImportSource::Body(mut b) => {
                let mut n = 0;
                while let Some(c) = b.next().await {
                    n += c?.len();
                }
                n
            }
            ImportSource::Url(_) => 0,
        };
        Ok(Box::pin(stream::iter(vec![Ok(JsonMessage::status(
            None,
            format!("sha256:{:064x}", n),
        ))])))
    }

    async fn image_push(&self, opts: ImagePushOptions) -> ApiResult<JsonStream<JsonMessage>> {
        self.state.lock().unwrap().last_auth = Some(opts.auth.clone());
        Ok(Box::pin(stream::iter(vec![
            Ok(JsonMessage::status(
                None,
                format!("The push refers to repository [{}]", opts.name),
            )),
            Ok(JsonMessage::status(Some("a1b2c3d4e5f6"), "Pushed")),
        ])))
    }

    async fn image_save(&self, names: Vec<String>) -> ApiResult<ByteStream> {
        let data = Bytes::from(format!("SAVED:{}", names.join(",")));
        Ok(Box::pin(stream::once(async move { Ok(data) })))
    }

    async fn image_load(
        &self,
        _opts: ImageLoadOptions,
        mut tarball: ByteStream,
    ) -> ApiResult<JsonStream<JsonMessage>> {
        let mut n = 0;
        while let Some(c) = tarball.next().await {
            n += c?.len();
        }
        Ok(Box::pin(stream::iter(vec![Ok(JsonMessage::stream(
            format!("Loaded image: busybox:latest ({n} bytes)\n"),
        ))])))
    }
}
