//! Containers and execs: create (bundle from the image), start through a per-container shim
//! (`berth shim start --no-start`, then `{"start":true}` so an attach made first misses no
//! output), attach, wait, logs (json-file), stop/kill/pause, remove, list, inspect, top, and
//! reconciliation with the shims at daemon start-up.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api::backend::*;
use api::stream::{AttachStdin, Frame, StdStream};
use api::types::*;
use api::ApiError;
use shim::protocol::{AttachRequest, ControlRequest, ExecRequest};

use super::store::{ContainerRecord, StateRecord};
use super::{blocking, config, health, restart, Event, Inner};

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub(crate) fn poisoned() -> ApiError {
    ApiError::Internal(
        "the daemon's container table is unusable (a task panicked); restart the daemon".into(),
    )
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn now_rfc3339() -> String {
    let t = api::time::Timestamp::now();
    shim::timefmt::rfc3339_nano(t.seconds, t.nanos)
}

pub(crate) fn state_dir(inner: &Inner, id: &str) -> PathBuf {
    inner.opts.exec_root.join("shims").join(id)
}

fn runtime_root(inner: &Inner) -> PathBuf {
    inner.opts.exec_root.join("runtime")
}

/// Finds a container by full ID, name (with or without `/`), or unique ID prefix.
pub(crate) fn lookup(inner: &Inner, key: &str) -> ApiResult<ContainerRecord> {
    let m = inner.containers.lock().map_err(|_| poisoned())?;
    let k = key.strip_prefix('/').unwrap_or(key);
    if let Some(c) = m.get(k) {
        return Ok(c.clone());
    }
    if let Some(c) = m.values().find(|c| c.name == k) {
        return Ok(c.clone());
    }
    let hits: Vec<&ContainerRecord> = m
        .values()
        .filter(|c| !k.is_empty() && c.id.starts_with(k))
        .collect();
    match hits.len() {
        1 => Ok(hits[0].clone()),
        0 => Err(ApiError::no_such_container(key)),
        _ => Err(ApiError::InvalidParameter(format!(
            "multiple IDs found with provided prefix: {key}"
        ))),
    }
}

/// Publishes a container event (`GET /events`) about the container `key`, if it exists.
pub(crate) fn publish(inner: &Inner, key: &str, action: &str, extra: &[(&str, String)]) {
    if let Ok(c) = lookup(inner, key) {
        inner.bus.container(&c, action, extra);
    }
}

/// Writes the in-memory record of `id` (or its absence) to the database; see
/// [`super::store::Store::sync`]. Every change to a record goes to memory first (under the
/// containers lock), then through here, so the database ends with the newest state.
pub(crate) fn persist(inner: &Inner, id: &str) -> ApiResult<()> {
    inner
        .store
        .sync(id, || {
            inner
                .containers
                .lock()
                .map(|m| m.get(id).cloned())
                .map_err(|_| "the container table's lock is poisoned".to_string())
        })
        .map_err(internal)
}

pub(crate) fn update(
    inner: &Inner,
    id: &str,
    f: impl FnOnce(&mut ContainerRecord),
) -> ApiResult<ContainerRecord> {
    let c = {
        let mut m = inner.containers.lock().map_err(|_| poisoned())?;
        let c = m
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such_container(id))?;
        f(c);
        c.clone()
    };
    persist(inner, id)?;
    Ok(c)
}

pub(crate) fn is_running(c: &ContainerRecord) -> bool {
    matches!(c.state.status.as_str(), "running" | "paused" | "restarting")
}

const ADJ: &[&str] = &[
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nifty", "proud", "quirky", "sharp", "tender", "vivid", "witty", "zen",
];
const NOUN: &[&str] = &[
    "albatross",
    "beacon",
    "capstan",
    "dinghy",
    "ferry",
    "galley",
    "harbor",
    "jetty",
    "keel",
    "lighthouse",
    "mooring",
    "pier",
    "quay",
    "rudder",
    "schooner",
    "tugboat",
    "wharf",
];

fn random_name(inner: &Inner) -> ApiResult<String> {
    for _ in 0..100 {
        let r = ::image::content::random_hex(4).map_err(internal)?;
        let n = u32::from_str_radix(&r, 16).unwrap_or(0) as usize;
        let name = format!("{}_{}", ADJ[n % ADJ.len()], NOUN[(n / 31) % NOUN.len()]);
        let taken = inner
            .containers
            .lock()
            .map_err(|_| poisoned())?
            .values()
            .any(|c| c.name == name);
        if !taken {
            return Ok(name);
        }
    }
    Ok(format!(
        "berth_{}",
        ::image::content::random_hex(4).map_err(internal)?
    ))
}

// ---------------------------------------------------------------- create

/// `POST /containers/create`.
pub async fn create(
    inner: &Arc<Inner>,
    opts: ContainerCreateOptions,
    req: ContainerCreateRequest,
) -> ApiResult<ContainerCreateResponse> {
    let cfg = req.config;
    let hc = req.host_config.unwrap_or_default();
    let runtime_name = if hc.runtime.as_deref().is_none_or(str::is_empty) {
        inner.opts.default_runtime.clone()
    } else {
        hc.runtime.clone().unwrap_or_default()
    };
    if !inner.opts.runtimes.contains_key(&runtime_name) {
        return Err(ApiError::InvalidParameter(format!(
            "unknown or invalid runtime name: {runtime_name}"
        )));
    }
    log_config(inner, &hc)?;
    restart::validate(&hc)?;
    health::validate(cfg.healthcheck.as_ref())?;
    let name = match opts.name {
        Some(n) => {
            let m = inner.containers.lock().map_err(|_| poisoned())?;
            if let Some(c) = m.values().find(|c| c.name == n) {
                return Err(ApiError::Conflict(format!(
                    "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    c.id
                )));
            }
            n
        }
        None => random_name(inner)?,
    };
    let image_ref = cfg.image.clone();
    if inner.images.resolve(&image_ref).is_err() {
        return Err(ApiError::no_such_image(&image_ref));
    }
    let sec = hc.security_opt.clone().unwrap_or_default();
    let unconfined = sec
        .iter()
        .any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined");
    let entrypoint = cfg.entrypoint.clone().map(|e| {
        if e.len() == 1 && e[0].is_empty() {
            vec![]
        } else {
            e
        }
    });
    let run = ::image::spec::RunOptions {
        entrypoint,
        cmd: cfg.cmd.clone().unwrap_or_default(),
        env: cfg.env.clone().unwrap_or_default(),
        workdir: Some(cfg.working_dir.clone()).filter(|w| !w.is_empty()),
        user: Some(cfg.user.clone()).filter(|w| !w.is_empty()),
        hostname: Some(cfg.hostname.clone())
            .filter(|w| !w.is_empty())
            .or_else(|| super::networks::host_hostname(&hc.network_mode)),
        domainname: Some(cfg.domainname.clone()).filter(|w| !w.is_empty()),
        tty: cfg.tty,
        group_add: hc.group_add.clone().unwrap_or_default(),
        cap_add: hc.cap_add.clone().unwrap_or_default(),
        cap_drop: hc.cap_drop.clone().unwrap_or_default(),
        privileged: hc.privileged,
        read_only: hc.readonly_rootfs,
        cgroupns_private: match hc.cgroupns_mode.as_str() {
            "private" => Some(true),
            "host" => Some(false),
            _ => None,
        },
    };
    let inner2 = inner.clone();
    let res = hc.resources.clone();
    let console = console_size(hc.console_size.as_ref()).filter(|_| cfg.tty);
    let init = hc.resources.init == Some(true);
    let (cfg2, hc2) = (cfg.clone(), hc.clone());
    let (bundle, vols) = blocking(move || {
        let vols = super::volumes::prepare(&inner2, &image_ref, &cfg2, &hc2)?;
        let b = crate::bundle::create(
            &inner2.images,
            &inner2.opts.data_root,
            &image_ref,
            &run,
            unconfined,
        )
        .map_err(|e| match e {
            crate::bundle::Error::NoImage(i) => ApiError::no_such_image(&i),
            crate::bundle::Error::Spec(m) => ApiError::InvalidParameter(m),
            e => internal(e),
        });
        let b = match b {
            Ok(b) => b,
            Err(e) => {
                super::volumes::abort(&inner2, &vols);
                return Err(e);
            }
        };
        let annotated = if init {
            crate::bundle::set_annotation(&b.dir, crate::bundle::INIT_ANNOTATION, "true")
                .map_err(internal)
        } else {
            Ok(())
        };
        if let Err(e) = annotated
            .and_then(|()| apply_resources(&b.dir, &res, console))
            .and_then(|()| super::volumes::apply(&inner2, &vols, &b.dir))
        {
            let _ = crate::bundle::remove(&inner2.images, &inner2.opts.data_root, &b.id);
            super::volumes::abort(&inner2, &vols);
            return Err(e);
        }
        Ok((b, vols))
    })
    .await?;
    let warnings = Vec::new();
    let (created, created_unix) = (now_rfc3339(), api::time::Timestamp::now().seconds);
    let mut config = cfg;
    if config.hostname.is_empty() {
        config.hostname = bundle.id[..12].to_string();
    }
    if config.env.is_none() || config.env.as_ref().is_some_and(|e| e.is_empty()) {
        config.env = Some(bundle.run.env.clone());
    }
    if config.cmd.is_none() {
        config.cmd = Some(bundle.run.cmd.clone());
    }
    if config.entrypoint.is_none() && !bundle.run.entrypoint.is_empty() {
        config.entrypoint = Some(bundle.run.entrypoint.clone());
    }
    if config.working_dir.is_empty() {
        config.working_dir = bundle.run.working_dir.clone();
    }
    config.healthcheck = health::merge(config.healthcheck.take(), bundle.run.healthcheck.as_ref());
    if !vols.config_volumes.is_empty() {
        config.volumes = Some(vols.config_volumes.clone());
    }
    let mut hc = hc;
    if hc.network_mode.is_empty() || hc.network_mode == "default" {
        hc.network_mode = "bridge".into();
    }
    if hc.restart_policy.is_none() {
        hc.restart_policy = Some(api::types::container::RestartPolicy {
            name: "no".into(),
            maximum_retry_count: 0,
        });
    }
    hc.runtime = Some(runtime_name);
    {
        // As inspect shows it: the driver, and the daemon's log-opts under the container's.
        let mut lc = hc.log_config.take().unwrap_or_default();
        if lc.kind.is_empty() {
            lc.kind = "json-file".into();
        }
        if lc.kind == "json-file" {
            let mut opts = inner.opts.log_opts.clone();
            opts.extend(lc.config.take().unwrap_or_default());
            lc.config = Some(opts.into_iter().collect());
        }
        hc.log_config = Some(lc);
    }
    if let Err(e) = super::networks::on_create(
        inner,
        &bundle.id,
        &mut config,
        &mut hc,
        req.networking_config.as_ref(),
        &bundle.run.exposed_ports,
    )
    .and_then(|_| super::networks::patch_spec(inner, &bundle.dir, &bundle.id, &hc.network_mode))
    {
        let _ = super::networks::forget(inner, &bundle.id);
        let _ = crate::bundle::remove(&inner.images, &inner.opts.data_root, &bundle.id);
        super::volumes::abort(inner, &vols);
        return Err(e);
    }
    let args = bundle.run.args.clone();
    let rec = ContainerRecord {
        id: bundle.id.clone(),
        name,
        created,
        created_unix,
        image: config.image.clone(),
        image_id: bundle.image.to_string(),
        path: args.first().cloned().unwrap_or_default(),
        args: args.iter().skip(1).cloned().collect(),
        tty: config.tty,
        config,
        host_config: hc,
        state: StateRecord {
            status: "created".into(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            ..Default::default()
        },
        log_path: bundle.dir.join(format!("{}-json.log", bundle.id)),
        restart_count: 0,
        manually_stopped: false,
        mounts: vols.mounts.clone(),
    };
    // The name is checked again and reserved (the record goes in) under one lock: two
    // creates or renames to one name that both passed a first check (the bundle takes a
    // while) cannot both win. The database follows (`persist`); if it cannot, the record
    // leaves memory again.
    let taken = {
        let mut m = inner.containers.lock().map_err(|_| poisoned())?;
        match m.values().find(|o| o.name == rec.name) {
            Some(o) => Err(ApiError::Conflict(format!(
                "Conflict. The container name \"/{}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                rec.name, o.id
            ))),
            None => {
                m.insert(rec.id.clone(), rec.clone());
                Ok(())
            }
        }
    }
    .and_then(|()| {
        persist(inner, &rec.id).inspect_err(|_| {
            if let Ok(mut m) = inner.containers.lock() {
                m.remove(&rec.id);
            }
        })
    });
    if let Err(e) = taken {
        super::volumes::abort(inner, &vols);
        let _ = super::networks::forget(inner, &rec.id);
        let (i2, id) = (inner.clone(), rec.id.clone());
        let _ = blocking(move || {
            crate::bundle::remove(&i2.images, &i2.opts.data_root, &id).map_err(internal)
        })
        .await;
        return Err(e);
    }
    super::volumes::release(inner, &vols);
    inner.bus.container(&rec, "create", &[]);
    Ok(ContainerCreateResponse {
        id: rec.id,
        warnings,
    })
}

/// A `[height, width]` console size, when both are set.
fn console_size(v: Option<&Vec<u32>>) -> Option<[u32; 2]> {
    match v.map(Vec::as_slice) {
        Some([h, w]) if *h > 0 && *w > 0 => Some([*h, *w]),
        _ => None,
    }
}

/// Maps the cheap resource limits (and the console size) into the bundle's config.json.
fn apply_resources(dir: &Path, r: &Resources, console: Option<[u32; 2]>) -> ApiResult<()> {
    let p = dir.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&p).map_err(internal)?).map_err(internal)?;
    if let Some([h, w]) = console {
        // The client's terminal size from the start (API >= 1.42 sends it with create).
        spec["process"]["consoleSize"] = serde_json::json!({"height": h, "width": w});
    }
    let res = &mut spec["linux"]["resources"];
    if !res.is_object() {
        *res = serde_json::json!({});
    }
    if r.memory > 0 {
        res["memory"]["limit"] = r.memory.into();
        if r.memory_swap != 0 {
            res["memory"]["swap"] = r.memory_swap.into();
        }
    }
    if r.memory_reservation > 0 {
        res["memory"]["reservation"] = r.memory_reservation.into();
    }
    if r.nano_cpus > 0 {
        res["cpu"]["period"] = 100_000.into();
        res["cpu"]["quota"] = (r.nano_cpus / 10_000).into();
    }
    if r.cpu_quota > 0 {
        res["cpu"]["quota"] = r.cpu_quota.into();
    }
    if r.cpu_period > 0 {
        res["cpu"]["period"] = r.cpu_period.into();
    }
    if r.cpu_shares > 0 {
        res["cpu"]["shares"] = r.cpu_shares.into();
    }
    if !r.cpuset_cpus.is_empty() {
        res["cpu"]["cpus"] = r.cpuset_cpus.clone().into();
    }
    if let Some(l) = r.pids_limit.filter(|l| *l > 0) {
        res["pids"]["limit"] = l.into();
    }
    std::fs::write(&p, serde_json::to_vec_pretty(&spec).map_err(internal)?).map_err(internal)
}

// ---------------------------------------------------------------- shim

/// The container's log settings: json-file with `max-size`/`max-file` (the container's
/// `--log-opt`s over the daemon's `log-opts`), or None for the `none` driver.
fn log_config(inner: &Inner, hc: &HostConfig) -> ApiResult<Option<(Option<u64>, u32)>> {
    let lc = hc.log_config.clone().unwrap_or_default();
    match lc.kind.as_str() {
        "" | "json-file" => {}
        "none" => return Ok(None),
        k => {
            return Err(ApiError::InvalidParameter(format!(
                "failed to create task for container: logger: no log driver named '{k}' is registered (berth has json-file and none)"
            )))
        }
    }
    let mut opts = inner.opts.log_opts.clone();
    opts.extend(lc.config.unwrap_or_default());
    let max_size = match opts.get("max-size").filter(|v| !v.is_empty() && *v != "-1") {
        Some(v) => Some(shim::cli::parse_size(v).map_err(ApiError::InvalidParameter)?),
        None => None,
    };
    let max_files = match opts.get("max-file") {
        Some(v) => v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            ApiError::InvalidParameter(format!("invalid value for max-file: {v:?}"))
        })?,
        None => 1,
    };
    Ok(Some((max_size, max_files)))
}

/// The container's external runtime (None for berth's built-in one).
fn external_runtime(inner: &Inner, c: &ContainerRecord) -> Option<(String, config::RuntimeSpec)> {
    let name = c
        .host_config
        .runtime
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| inner.opts.default_runtime.clone());
    inner
        .opts
        .runtimes
        .get(&name)
        .filter(|r| !r.path.is_empty())
        .map(|r| (name, r.clone()))
}

/// The state root of the container's runtime.
fn runtime_root_of(inner: &Inner, c: &ContainerRecord) -> PathBuf {
    match external_runtime(inner, c) {
        Some((name, _)) => inner.opts.exec_root.join("runtimes").join(name),
        None => runtime_root(inner),
    }
}

/// Spawns the container's shim (created, not started); returns the init's pid.
fn spawn_shim(inner: &Inner, c: &ContainerRecord) -> ApiResult<i32> {
    let sd = state_dir(inner, &c.id);
    let _ = std::fs::remove_dir_all(&sd);
    std::fs::create_dir_all(&sd).map_err(internal)?;
    let external = external_runtime(inner, c);
    let log = log_config(inner, &c.host_config)?;
    let o = shim::StartOptions {
        id: c.id.clone(),
        bundle: crate::bundle::dir(&inner.opts.data_root, &c.id),
        runtime_root: runtime_root_of(inner, c),
        state_dir: sd.clone(),
        tty: c.tty,
        stdin: c.config.open_stdin,
        log: log.map(|(max_size, max_files)| shim::LogConfig {
            path: c.log_path.clone(),
            max_size,
            max_files,
        }),
        ready_fd: Some(3),
        no_start: true,
        runtime_binary: external.as_ref().map(|(_, r)| PathBuf::from(&r.path)),
        runtime_args: external.map(|(_, r)| r.runtime_args).unwrap_or_default(),
        ..Default::default()
    };
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(internal)?;
    let wfd = w.as_raw_fd();
    let mut cmd = std::process::Command::new(&inner.exe);
    cmd.arg("shim")
        .args(o.to_args())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if wfd == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(wfd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| internal(format!("cannot run the shim {}: {e}", inner.exe.display())))?;
    drop(w);
    let _ = child.wait();
    shim::client::read_ready(std::fs::File::from(r))
        .map_err(|e| ApiError::Internal(format!("failed to create task for container: {e}")))
}

fn shim_alive(inner: &Inner, id: &str) -> bool {
    shim::client::shim_pid(&state_dir(inner, id)).is_some()
}

/// Makes sure a created (not started) container has its shim.
fn ensure_shim(inner: &Arc<Inner>, id: &str) -> ApiResult<()> {
    let c = lookup(inner, id)?;
    if shim_alive(inner, &c.id) && shim::client::read_exit(&state_dir(inner, &c.id)).is_none() {
        return Ok(());
    }
    super::volumes::activate(inner, &c)?;
    let rules = match super::networks::setup(inner, &c) {
        Ok(r) => r,
        Err(e) => {
            super::volumes::deactivate(inner, &c.id);
            return Err(e);
        }
    };
    // The container's nft rules (published ports) are applied while the shim creates it;
    // both must be done before the start is answered.
    let spawned = spawn_shim(inner, &c);
    let applied = rules.wait();
    let pid = match (spawned, applied) {
        (Ok(pid), Ok(())) => pid,
        (spawned, applied) => {
            if spawned.is_ok() {
                // Created, but its ports are not published: end the created container.
                let sd = state_dir(inner, &c.id);
                let kill = ControlRequest {
                    kill: Some("SIGKILL".into()),
                    ..Default::default()
                };
                if shim::client::control(&sd, &kill).is_ok() {
                    let _ = shim::client::wait(&sd);
                }
            }
            let _ = super::networks::teardown(inner, &c.id);
            super::volumes::deactivate(inner, &c.id);
            return Err(match (spawned, applied) {
                (Err(e), _) | (Ok(_), Err(e)) => e,
                (Ok(_), Ok(())) => internal("unreachable"),
            });
        }
    };
    // In memory only (one fsync less per start): the start that follows stores it with the
    // running state, and after a crash the daemon asks the shim (adopt_started).
    if let Some(r) = inner
        .containers
        .lock()
        .map_err(|_| poisoned())?
        .get_mut(&c.id)
    {
        r.state.pid = pid as i64;
    }
    Ok(())
}

/// Waits for the container of the shim in `sd` to exit, as `shim::client::wait` does but
/// without holding a thread: a daemon with many running containers would otherwise keep one
/// blocked thread (its stack and malloc arena) per container.
async fn wait_shim(sd: &Path) -> Option<shim::protocol::ExitStatus> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let ask = async {
        let path = sd.join(shim::protocol::CONTROL_SOCKET);
        let s = shim::sock::connect(&path).ok()?;
        s.set_nonblocking(true).ok()?;
        let mut s = tokio::net::UnixStream::from_std(s).ok()?;
        let req = ControlRequest {
            wait: Some(true),
            ..Default::default()
        };
        let mut line = serde_json::to_vec(&req).ok()?;
        line.push(b'\n');
        s.write_all(&line).await.ok()?;
        let mut reply = String::new();
        tokio::io::BufReader::new(s)
            .read_line(&mut reply)
            .await
            .ok()?;
        let rep: shim::protocol::ControlReply = serde_json::from_str(reply.trim_end()).ok()?;
        rep.exit_status()
    };
    match ask.await {
        Some(st) => Some(st),
        // The shim is gone (or went while we asked): it wrote exit.json before it went.
        None => shim::client::read_exit(sd),
    }
}

/// Watches a running container until it exits, then records the exit.
fn monitor(inner: Arc<Inner>, id: String) {
    tokio::spawn(async move {
        let sd = state_dir(&inner, &id);
        let (code, finished, oom) = match wait_shim(&sd).await {
            Some(s) => (s.exit_code as i64, s.finished_at, s.oom_killed),
            None => (255, now_rfc3339(), false),
        };
        health::stop(&inner, &id);
        // Networking first: a start seen after the exit must not race this teardown.
        let (i2, id2) = (inner.clone(), id.clone());
        let _ = blocking(move || super::networks::teardown(&i2, &id2)).await;
        let mut again = None;
        let rec = update(&inner, &id, |c| {
            c.state.status = "exited".into();
            c.state.exit_code = code;
            c.state.pid = 0;
            c.state.finished_at = finished;
            c.state.oom_killed = oom;
            health::on_exit(c);
            again = restart::on_exit(&inner, c);
        });
        if let Ok(c) = &rec {
            let ran = super::events::seconds_between(&c.state.started_at, &c.state.finished_at);
            let attrs = [("exitCode", code.to_string()), ("execDuration", ran)];
            inner.bus.container(c, "die", &attrs);
        }
        super::volumes::deactivate(&inner, &id);
        let _ = inner.events.send(Event::Die(id.clone(), code));
        if let (Ok(c), Some(delay)) = (&rec, again) {
            restart::schedule(inner.clone(), id.clone(), delay, c.restart_count);
        } else if let Ok(c) = rec {
            if c.host_config.auto_remove {
                let _ = remove_now(&inner, &id).await;
            }
        }
    });
}

/// At start-up: containers whose shim is alive are running; the others exited.
pub(crate) fn reconcile(inner: &Arc<Inner>) {
    let ids: Vec<String> = match inner.containers.lock() {
        Ok(m) => m.keys().cloned().collect(),
        Err(_) => return,
    };
    remove_orphans(inner, &ids);
    for id in ids {
        let sd = state_dir(inner, &id);
        let Ok(c) = lookup(inner, &id) else { continue };
        if c.state.status == "created" {
            adopt_started(inner, &c);
            continue;
        }
        if !is_running(&c) {
            continue;
        }
        if shim::client::shim_pid(&sd).is_some() && shim::client::read_exit(&sd).is_none() {
            health::resume(inner, &id);
            monitor(inner.clone(), id);
        } else {
            let e = shim::client::read_exit(&sd);
            let _ = update(inner, &id, |c| {
                c.state.status = "exited".into();
                c.state.pid = 0;
                match e {
                    Some(e) => {
                        c.state.exit_code = e.exit_code as i64;
                        c.state.finished_at = e.finished_at;
                        c.state.oom_killed = e.oom_killed;
                    }
                    None => {
                        c.state.exit_code = 255;
                        c.state.finished_at = now_rfc3339();
                    }
                }
                health::on_exit(c);
            });
            if c.host_config.auto_remove {
                let (inner, id) = (inner.clone(), id.clone());
                tokio::spawn(async move {
                    let _ = remove_now(&inner, &id).await;
                });
            }
        }
    }
}

/// At start-up, a container recorded as created may have been started by a request the crash
/// cut short (the shim started it, the record was not updated yet): take what its shim says.
fn adopt_started(inner: &Arc<Inner>, c: &ContainerRecord) {
    let sd = state_dir(inner, &c.id);
    if shim::client::shim_pid(&sd).is_some() {
        let req = ControlRequest {
            state: Some(true),
            ..Default::default()
        };
        let Ok(r) = shim::client::control(&sd, &req) else {
            return;
        };
        let status = match r.status.as_deref() {
            Some("running") => "running",
            Some("paused") => "paused",
            Some("stopped") => "running", // its exit is collected by the monitor
            _ => return,
        };
        let started = now_rfc3339();
        let _ = update(inner, &c.id, |c| {
            c.state.status = status.into();
            c.state.pid = r.pid.unwrap_or(0) as i64;
            c.state.started_at = started;
            c.state.finished_at = ZERO_TIME.into();
        });
        monitor(inner.clone(), c.id.clone());
    } else if let Some(e) = shim::client::read_exit(&sd) {
        // Started and exited while the daemon was down.
        let _ = update(inner, &c.id, |c| {
            c.state.status = "exited".into();
            c.state.pid = 0;
            c.state.exit_code = e.exit_code as i64;
            c.state.started_at = e.finished_at.clone();
            c.state.finished_at = e.finished_at;
            c.state.oom_killed = e.oom_killed;
        });
    }
}

/// At start-up: bundles and shim state dirs of containers that have no record — a create cut
/// short by a crash between making the bundle and storing the record, or a removal cut short
/// after the record was deleted (the files go after the answer) — are removed (the rootfs
/// unmounted), so they hold no mount, disk space or image reference.
fn remove_orphans(inner: &Arc<Inner>, known: &[String]) {
    let known: std::collections::HashSet<&str> = known.iter().map(String::as_str).collect();
    let is_id = |n: &str| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit());
    let list = |d: PathBuf| -> Vec<String> {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| is_id(n) && !known.contains(n.as_str()))
                    .collect()
            })
            .unwrap_or_default()
    };
    for id in list(inner.opts.data_root.join("containers")) {
        if let Err(e) = crate::bundle::remove(&inner.images, &inner.opts.data_root, &id) {
            eprintln!("berth daemon: warning: cannot remove the unrecorded container {id}: {e}");
        }
    }
    // Markers of `logs --follow` requests of the previous run.
    let _ = std::fs::remove_dir_all(inner.opts.exec_root.join("follow"));
    for id in list(inner.opts.exec_root.join("shims")) {
        let sd = state_dir(inner, &id);
        if let Some(pid) = shim::client::shim_pid(&sd) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = std::fs::remove_dir_all(&sd);
    }
}

// ---------------------------------------------------------------- lifecycle

/// `POST /containers/{id}/start`.
pub async fn start(inner: &Arc<Inner>, key: &str) -> ApiResult<()> {
    start_as(inner, key, true).await
}

/// Starts a container; `by_user` (not by its restart policy) resets its restart count and
/// its manually-stopped mark, as Docker does.
pub(crate) async fn start_as(inner: &Arc<Inner>, key: &str, by_user: bool) -> ApiResult<()> {
    let c = lookup(inner, key)?;
    if c.state.status == "running" || c.state.status == "paused" {
        return Err(ApiError::NotModified("container already started".into()));
    }
    let (i2, id) = (inner.clone(), c.id.clone());
    let earlier = c.state.error.clone();
    // Taken before the start request: a process that exits at once must not show a
    // FinishedAt earlier than its StartedAt.
    let started = now_rfc3339();
    let r = blocking(move || {
        ensure_shim(&i2, &id)?;
        shim::client::control(
            &state_dir(&i2, &id),
            &ControlRequest {
                start: Some(true),
                ..Default::default()
            },
        )
        .map_err(|e| match e {
            // The shim of a failed create (reported to an earlier attach) is gone.
            shim::client::Error::Connect { .. } if !earlier.is_empty() => {
                ApiError::Internal(earlier)
            }
            e => ApiError::Internal(format!("failed to create task for container: {e}")),
        })
    })
    .await;
    if let Err(e) = r {
        let msg = e.to_string();
        let (i2, id2) = (inner.clone(), c.id.clone());
        let _ = blocking(move || super::networks::teardown(&i2, &id2)).await;
        let _ = update(inner, &c.id, |c| {
            c.state.error = msg.clone();
            c.state.status = if c.state.started_at == ZERO_TIME {
                "created".into()
            } else {
                "exited".into()
            };
            c.state.exit_code = 128;
        });
        if c.host_config.auto_remove {
            let _ = remove_now(inner, &c.id).await;
        }
        return Err(e);
    }
    update(inner, &c.id, |c| {
        c.state.status = "running".into();
        c.state.started_at = started.clone();
        c.state.finished_at = ZERO_TIME.into();
        c.state.exit_code = 0;
        c.state.error.clear();
        if by_user {
            c.restart_count = 0;
            c.manually_stopped = false;
        }
    })?;
    if by_user {
        inner.restart.reset(&c.id);
    }
    publish(inner, &c.id, "start", &[]);
    health::start(inner, &c.id);
    monitor(inner.clone(), c.id.clone());
    Ok(())
}

fn signal_name(s: &str) -> String {
    let s = s.trim();
    if s.chars().all(|c| c.is_ascii_digit()) {
        s.to_string()
    } else {
        let u = s.to_ascii_uppercase();
        if u.starts_with("SIG") {
            u
        } else {
            format!("SIG{u}")
        }
    }
}

async fn send_signal(inner: &Arc<Inner>, id: &str, sig: &str) -> ApiResult<()> {
    let (sd, sig) = (state_dir(inner, id), signal_name(sig));
    let num = runtime::signal::parse(&sig)
        .map(|s| (s as i32).to_string())
        .unwrap_or_else(|_| sig.clone());
    publish(inner, id, "kill", &[("signal", num)]);
    blocking(move || {
        shim::client::control(
            &sd,
            &ControlRequest {
                kill: Some(sig),
                ..Default::default()
            },
        )
        .map(|_| ())
        .map_err(|e| internal(format!("cannot signal the container: {e}")))
    })
    .await
}

/// Waits until the container is no longer running, at most `limit`.
async fn wait_stopped(inner: &Arc<Inner>, id: &str, limit: Option<Duration>) -> bool {
    let mut rx = inner.events.subscribe();
    if lookup(inner, id).map(|c| !is_running(&c)).unwrap_or(true) {
        return true;
    }
    let fut = async {
        loop {
            match rx.recv().await {
                Ok(Event::Die(i, _)) if i == id => return,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                Err(_) if lookup(inner, id).map(|c| !is_running(&c)).unwrap_or(true) => return,
                _ => {}
            }
        }
    };
    match limit {
        Some(d) => tokio::time::timeout(d, fut).await.is_ok(),
        None => {
            fut.await;
            true
        }
    }
}

/// `POST /containers/{id}/stop`.
pub async fn stop(inner: &Arc<Inner>, key: &str, opts: StopOptions) -> ApiResult<()> {
    let c = lookup(inner, key)?;
    if !is_running(&c) {
        return Err(ApiError::NotModified("container already stopped".into()));
    }
    if restart::stopped_by_user(inner, &c.id).await? {
        publish(inner, &c.id, "stop", &[]);
        return Ok(());
    }
    if c.state.status == "paused" {
        let _ = pause(inner, &c.id, false).await;
    }
    let sig = opts
        .signal
        .or(c.config.stop_signal.clone())
        .unwrap_or_else(|| "SIGTERM".into());
    let timeout = opts.timeout.or(c.config.stop_timeout).unwrap_or(10);
    let _ = send_signal(inner, &c.id, &sig).await;
    let limit = if timeout < 0 {
        None
    } else {
        Some(Duration::from_secs(timeout as u64))
    };
    if !wait_stopped(inner, &c.id, limit).await {
        send_signal(inner, &c.id, "SIGKILL").await?;
        wait_stopped(inner, &c.id, Some(Duration::from_secs(30))).await;
    }
    publish(inner, &c.id, "stop", &[]);
    Ok(())
}

/// `POST /containers/{id}/kill`.
pub async fn kill(inner: &Arc<Inner>, key: &str, signal: Option<String>) -> ApiResult<()> {
    let c = lookup(inner, key)?;
    if !is_running(&c) {
        return Err(ApiError::Conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    let sig = signal.as_deref().unwrap_or("SIGKILL");
    if restart::is_fatal(sig, c.config.stop_signal.as_deref()) {
        if restart::stopped_by_user(inner, &c.id).await? {
            return Ok(());
        }
    } else if c.state.status == "restarting" {
        return Ok(());
    }
    send_signal(inner, &c.id, sig).await
}

/// Pause or unpause through the runtime (`berth runtime --root R pause|resume ID`).
pub async fn pause(inner: &Arc<Inner>, key: &str, on: bool) -> ApiResult<()> {
    let c = lookup(inner, key)?;
    match (on, c.state.status.as_str()) {
        (true, "running") | (false, "paused") => {}
        (true, "paused") => {
            return Err(ApiError::Conflict(format!(
                "Container {} is already paused",
                c.id
            )))
        }
        (false, _) => {
            return Err(ApiError::Conflict(format!(
                "Container {} is not paused",
                c.id
            )))
        }
        _ => {
            return Err(ApiError::Conflict(format!(
                "Container {} is not running",
                c.id
            )))
        }
    }
    let (root, id) = (runtime_root_of(inner, &c), c.id.clone());
    let mut cmd = match external_runtime(inner, &c) {
        Some((_, r)) => {
            let mut cmd = std::process::Command::new(&r.path);
            cmd.args(&r.runtime_args);
            cmd
        }
        None => {
            let mut cmd = std::process::Command::new(&inner.exe);
            cmd.arg("runtime");
            cmd
        }
    };
    blocking(move || {
        let out = cmd
            .arg("--root")
            .arg(&root)
            .arg(if on { "pause" } else { "resume" })
            .arg(&id)
            .output()
            .map_err(internal)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(internal(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ))
        }
    })
    .await?;
    update(inner, &c.id, |c| {
        c.state.status = if on {
            "paused".into()
        } else {
            "running".into()
        }
    })?;
    publish(inner, &c.id, if on { "pause" } else { "unpause" }, &[]);
    Ok(())
}

/// `POST /containers/{id}/wait`.
pub fn wait(inner: &Arc<Inner>, key: &str, cond: WaitCondition) -> ApiResult<WaitFuture> {
    let mut rx = inner.events.subscribe();
    let c = lookup(inner, key)?;
    let inner = inner.clone();
    Ok(Box::pin(async move {
        if cond == WaitCondition::NotRunning && !is_running(&c) {
            return Ok(ContainerWaitResponse {
                status_code: c.state.exit_code,
                error: None,
            });
        }
        let mut code = c.state.exit_code;
        loop {
            match rx.recv().await {
                Ok(Event::Die(i, x)) if i == c.id => {
                    code = x;
                    if cond != WaitCondition::Removed {
                        break;
                    }
                }
                Ok(Event::Destroy(i)) if i == c.id => {
                    if let Ok(cur) = lookup(&inner, &c.id) {
                        code = cur.state.exit_code;
                    }
                    break;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                _ => {}
            }
        }
        Ok(ContainerWaitResponse {
            status_code: code,
            error: None,
        })
    }))
}

async fn remove_now(inner: &Arc<Inner>, id: &str) -> ApiResult<()> {
    health::stop(inner, id);
    inner.restart.reset(id);
    let gone = lookup(inner, id).ok();
    let (i2, id2) = (inner.clone(), id.to_string());
    blocking(move || {
        let _ = std::fs::remove_dir_all(state_dir(&i2, &id2));
        let _ = super::networks::forget(&i2, &id2);
        // Out of memory first, then out of the database: a concurrent update's write
        // (which reads memory inside its transaction) cannot bring the record back.
        let gone = i2.containers.lock().map_err(|_| poisoned())?.remove(&id2);
        if let Err(e) = persist(&i2, &id2) {
            if let (Some(c), Ok(mut m)) = (gone, i2.containers.lock()) {
                m.insert(id2.clone(), c);
            }
            return Err(e);
        }
        if let Some(c) = gone {
            super::volumes::container_removed(&i2, &c, c.host_config.auto_remove);
        }
        Ok(())
    })
    .await?;
    // The bundle goes after the answer: unmounting the overlay syncs the whole filesystem
    // under it (overlayfs syncs its upper layer's filesystem on unmount), which takes from
    // a few to hundreds of milliseconds on a busy disk. The record is already gone, so a
    // crash before this ends leaves an orphan bundle, which the next start removes.
    let (i2, id2) = (inner.clone(), id.to_string());
    tokio::task::spawn_blocking(move || {
        if let Err(e) = crate::bundle::remove(&i2.images, &i2.opts.data_root, &id2) {
            eprintln!("berth daemon: warning: cannot remove the files of container {id2}: {e}");
        }
    });
    if let Some(c) = gone {
        inner.bus.container(&c, "destroy", &[]);
    }
    let _ = inner.events.send(Event::Destroy(id.to_string()));
    Ok(())
}

/// `DELETE /containers/{id}`.
pub async fn remove(inner: &Arc<Inner>, key: &str, opts: ContainerRemoveOptions) -> ApiResult<()> {
    let mut c = lookup(inner, key)?;
    if c.state.status == "restarting" {
        if !opts.force {
            return Err(ApiError::Conflict(format!(
                "cannot remove container \"/{}\": container is restarting: stop the container before removing or force remove",
                c.name
            )));
        }
        restart::stopped_by_user(inner, &c.id).await?;
        c = lookup(inner, &c.id)?;
    }
    if is_running(&c) {
        if !opts.force {
            return Err(ApiError::Conflict(format!(
                "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                c.name
            )));
        }
        if c.state.status == "paused" {
            let _ = pause(inner, &c.id, false).await;
        }
        let _ = send_signal(inner, &c.id, "SIGKILL").await;
        wait_stopped(inner, &c.id, Some(Duration::from_secs(30))).await;
    }
    // A created container's shim (from an attach) holds the init: kill it.
    if shim_alive(inner, &c.id) && !is_running(&lookup(inner, &c.id)?) {
        let _ = send_signal(inner, &c.id, "SIGKILL").await;
        let sd = state_dir(inner, &c.id);
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            blocking(move || Ok(shim::client::wait(&sd).ok())),
        )
        .await;
    }
    remove_now(inner, &c.id).await?;
    if opts.volumes {
        super::volumes::container_removed(inner, &c, true);
    }
    Ok(())
}

/// `POST /containers/{id}/rename`: the name is checked and taken under the one lock that
/// create also takes to reserve names, so of two renames (or a rename and a create) to one
/// name exactly one wins and the others get dockerd's 409; the database then follows
/// ([`persist`]), and a failed write gives the old name back.
pub fn rename(inner: &Arc<Inner>, key: &str, new_name: &str) -> ApiResult<()> {
    let c = lookup(inner, key)?;
    let n = new_name.strip_prefix('/').unwrap_or(new_name).to_string();
    if n.is_empty() {
        return Err(ApiError::InvalidParameter(
            "Neither old nor new names may be empty".into(),
        ));
    }
    if c.name == n {
        return Err(ApiError::InvalidParameter(
            "Renaming a container with the same name as its current name".into(),
        ));
    }
    // Docker's name rule: [a-zA-Z0-9][a-zA-Z0-9_.-]+
    let b = n.as_bytes();
    let valid = b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if !valid {
        return Err(ApiError::InvalidParameter(format!(
            "Error when allocating new name: Invalid container name (/{n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    let old = {
        let mut m = inner.containers.lock().map_err(|_| poisoned())?;
        if let Some(o) = m.values().find(|o| o.name == n && o.id != c.id) {
            return Err(ApiError::Conflict(format!(
                "Error when allocating new name: Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                o.id
            )));
        }
        let rec = m
            .get_mut(&c.id)
            .ok_or_else(|| ApiError::no_such_container(key))?;
        std::mem::replace(&mut rec.name, n.clone())
    };
    if let Err(e) = persist(inner, &c.id) {
        if let Ok(mut m) = inner.containers.lock() {
            if let Some(rec) = m.get_mut(&c.id).filter(|r| r.name == n) {
                rec.name = old;
            }
        }
        return Err(e);
    }
    publish(inner, &c.id, "rename", &[("oldName", format!("/{old}"))]);
    Ok(())
}

/// `POST /containers/prune`: removes stopped containers (filters `label`, `label!`,
/// `until`), answering their IDs and the size of their writable layers.
pub async fn prune(inner: &Arc<Inner>, filters: api::Filters) -> ApiResult<ContainerPruneResponse> {
    filters.validate(api::filters::CONTAINER_PRUNE_FILTERS)?;
    let until = match filters.get("until").first() {
        Some(u) => Some(parse_until(u)?),
        None => None,
    };
    let ids: Vec<String> = inner
        .containers
        .lock()
        .map_err(|_| poisoned())?
        .values()
        .filter(|c| !is_running(c))
        .filter(|c| {
            let labels = c.config.labels.clone().unwrap_or_default();
            filters.match_labels("label", &labels)
                && !(filters.contains("label!") && filters.match_labels("label!", &labels))
                && until.is_none_or(|u| c.created_unix < u)
        })
        .map(|c| c.id.clone())
        .collect();
    let mut done = Vec::new();
    let mut space = 0u64;
    for id in ids {
        let upper = crate::bundle::dir(&inner.opts.data_root, &id).join("upper");
        let size = blocking(move || Ok(dir_size(&upper))).await.unwrap_or(0);
        if remove(inner, &id, ContainerRemoveOptions::default())
            .await
            .is_ok()
        {
            done.push(id);
            space += size;
        }
    }
    let mut a = std::collections::BTreeMap::new();
    a.insert("reclaimed".to_string(), space.to_string());
    inner.bus.publish("container", "prune", "", a);
    Ok(ContainerPruneResponse {
        containers_deleted: Some(done),
        space_reclaimed: space,
    })
}

/// A prune `until`: Unix seconds, RFC 3339, or a Go duration before now (`24h`, `10m`).
pub(crate) fn parse_until(u: &str) -> ApiResult<i64> {
    let bad = || ApiError::InvalidParameter(format!("invalid value for until: {u:?}"));
    if let Ok(t) = u.parse::<api::time::Timestamp>() {
        return Ok(t.seconds);
    }
    if let Some(n) = shim::timefmt::parse_rfc3339_nanos(u.as_bytes()) {
        return Ok(n / 1_000_000_000);
    }
    let (num, unit) = u.split_at(u.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(bad)?);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "h" => n * 3600.0,
        "m" => n * 60.0,
        "s" => n,
        "ms" => n / 1000.0,
        _ => return Err(bad()),
    };
    Ok(api::time::Timestamp::now().seconds - secs as i64)
}

/// Bytes under `p` (files' sizes, symlinks not followed).
fn dir_size(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// `GET /system/df`: images (with how many containers use them), containers with the sizes
/// of their writable layers, volumes with their sizes and users, no build cache.
pub async fn disk_usage(inner: &Arc<Inner>, opts: DiskUsageOptions) -> ApiResult<DiskUsage> {
    let want = |t: &str| opts.types.is_empty() || opts.types.iter().any(|x| x == t);
    let mut du = DiskUsage::default();
    let images = super::images::list(inner, ImageListOptions::default()).await?;
    let image_size: std::collections::HashMap<String, i64> =
        images.iter().map(|i| (i.id.clone(), i.size)).collect();
    if want("image") {
        du.layers_size = images.iter().map(|i| i.size).sum();
        du.images = Some(
            images
                .iter()
                .map(|i| serde_json::to_value(i).map_err(internal))
                .collect::<ApiResult<_>>()?,
        );
    }
    if want("container") {
        let list = list(
            inner,
            ContainerListOptions {
                all: true,
                ..Default::default()
            },
        )?;
        let root = inner.opts.data_root.clone();
        let list = blocking(move || {
            Ok(list
                .into_iter()
                .map(|mut c| {
                    c.size_rw =
                        Some(dir_size(&crate::bundle::dir(&root, &c.id).join("upper")) as i64);
                    c.size_root_fs = Some(
                        c.size_rw.unwrap_or(0) + image_size.get(&c.image_id).copied().unwrap_or(0),
                    );
                    c
                })
                .collect::<Vec<_>>())
        })
        .await?;
        du.containers = Some(
            list.iter()
                .map(|c| serde_json::to_value(c).map_err(internal))
                .collect::<ApiResult<_>>()?,
        );
    }
    if want("volume") {
        let i = inner.clone();
        du.volumes = Some(blocking(move || super::volumes::usage(&i)).await?);
    }
    if want("build-cache") {
        du.build_cache = Some(Vec::new());
    }
    Ok(du)
}

// ---------------------------------------------------------------- views

fn status_text(c: &ContainerRecord) -> String {
    let ago = |t: &str| {
        let secs = shim::timefmt::parse_rfc3339_nanos(t.as_bytes())
            .map(|n| n / 1_000_000_000)
            .unwrap_or(0);
        human_duration(api::time::Timestamp::now().seconds - secs)
    };
    let health = match &c.state.health {
        Some(h) if h.status == "starting" => " (health: starting)".to_string(),
        Some(h) if !h.status.is_empty() && health::probe_args(&c.config).is_some() => {
            format!(" ({})", h.status)
        }
        _ => String::new(),
    };
    match c.state.status.as_str() {
        "running" => format!("Up {}{health}", ago(&c.state.started_at)),
        "restarting" => format!(
            "Restarting ({}) {} ago",
            c.state.exit_code,
            ago(&c.state.finished_at)
        ),
        "paused" => format!("Up {} (Paused)", ago(&c.state.started_at)),
        "created" => "Created".into(),
        "exited" => format!(
            "Exited ({}) {} ago",
            c.state.exit_code,
            ago(&c.state.finished_at)
        ),
        s => s.to_string(),
    }
}

fn human_duration(s: i64) -> String {
    match s {
        s if s < 1 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".into(),
        s if s < 48 * 3600 => format!("{} hours", s / 3600),
        s => format!("{} days", s / 86400),
    }
}

/// `GET /containers/json`.
pub fn list(inner: &Arc<Inner>, opts: ContainerListOptions) -> ApiResult<Vec<ContainerSummary>> {
    let mut all: Vec<ContainerRecord> = inner
        .containers
        .lock()
        .map_err(|_| poisoned())?
        .values()
        .cloned()
        .collect();
    all.sort_by(|a, b| b.created.cmp(&a.created));
    let f = &opts.filters;
    let show_all = opts.all || opts.limit.is_some() || f.contains("status");
    let mut out = Vec::new();
    for c in all {
        if !show_all && !is_running(&c) {
            continue;
        }
        let names = f.get("name");
        if !names.is_empty()
            && !names
                .iter()
                .any(|n| c.name.contains(n.trim_start_matches('/')))
        {
            continue;
        }
        let ids = f.get("id");
        if !ids.is_empty() && !ids.iter().any(|i| c.id.starts_with(i)) {
            continue;
        }
        let st = f.get("status");
        if !st.is_empty() && !st.iter().any(|s| *s == c.state.status) {
            continue;
        }
        for h in f.get("health") {
            if !matches!(h, "starting" | "healthy" | "unhealthy" | "none") {
                return Err(ApiError::InvalidParameter(format!(
                    "Unrecognised filter value for health: {h}"
                )));
            }
        }
        if !f.exact_match("health", health::filter_value(&c)) {
            continue;
        }
        // exited=<code>: stopped containers that ran and exited with that code (docker's).
        let exited = f.get("exited");
        if !exited.is_empty()
            && (is_running(&c)
                || c.state.started_at == ZERO_TIME
                || !exited
                    .iter()
                    .any(|e| e.parse::<i64>().ok() == Some(c.state.exit_code)))
        {
            continue;
        }
        let labels = c.config.labels.clone().unwrap_or_default();
        if f.contains("label") && !f.match_labels("label", &labels) {
            continue;
        }
        let vols = f.get("volume");
        if !vols.is_empty()
            && !c
                .mounts
                .iter()
                .any(|m| vols.iter().any(|v| *v == m.name || *v == m.destination))
        {
            continue;
        }
        let anc = f.get("ancestor");
        if !anc.is_empty() && !anc.iter().any(|a| *a == c.image || c.image_id.contains(a)) {
            continue;
        }
        // docker quotes the arguments that hold a space: `sh -c 'exit 3'`.
        let mut cmd = vec![c.path.clone()];
        cmd.extend(c.args.iter().map(|a| {
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        }));
        out.push(ContainerSummary {
            id: c.id.clone(),
            names: vec![format!("/{}", c.name)],
            image: c.image.clone(),
            image_id: c.image_id.clone(),
            command: cmd.join(" "),
            created: c.created_unix,
            labels,
            state: c.state.status.clone(),
            status: status_text(&c),
            host_config: Some(serde_json::json!({"NetworkMode": c.host_config.network_mode})),
            ports: super::networks::summary_ports(inner, &c),
            mounts: super::volumes::mount_points(&c),
            ..Default::default()
        });
        if opts.limit.is_some_and(|l| out.len() >= l) {
            break;
        }
    }
    Ok(out)
}

/// `GET /containers/{id}/json`.
pub fn inspect(inner: &Arc<Inner>, key: &str) -> ApiResult<ContainerInspect> {
    let c = lookup(inner, key)?;
    let dir = crate::bundle::dir(&inner.opts.data_root, &c.id);
    let exec_ids: Vec<String> = inner
        .execs
        .lock()
        .map_err(|_| poisoned())?
        .values()
        .filter(|e| e.container == c.id)
        .map(|e| e.id.clone())
        .collect();
    Ok(ContainerInspect {
        id: c.id.clone(),
        created: c.created.clone(),
        path: c.path.clone(),
        args: c.args.clone(),
        state: ContainerState {
            status: c.state.status.clone(),
            running: is_running(&c),
            paused: c.state.status == "paused",
            restarting: c.state.status == "restarting",
            oom_killed: c.state.oom_killed,
            dead: c.state.status == "dead",
            pid: if is_running(&c) { c.state.pid } else { 0 },
            exit_code: c.state.exit_code,
            error: c.state.error.clone(),
            started_at: c.state.started_at.clone(),
            finished_at: c.state.finished_at.clone(),
            health: c
                .state
                .health
                .clone()
                .filter(|_| health::probe_args(&c.config).is_some()),
        },
        image: c.image_id.clone(),
        resolv_conf_path: dir.join("resolv.conf").display().to_string(),
        hostname_path: dir.join("hostname").display().to_string(),
        hosts_path: dir.join("hosts").display().to_string(),
        log_path: c.log_path.display().to_string(),
        name: format!("/{}", c.name),
        restart_count: c.restart_count,
        driver: "overlay2".into(),
        platform: "linux".into(),
        exec_ids: if exec_ids.is_empty() {
            None
        } else {
            Some(exec_ids)
        },
        host_config: c.host_config.clone(),
        graph_driver: DriverData {
            name: "overlay2".into(),
            data: None,
        },
        config: c.config.clone(),
        network_settings: super::networks::settings(inner, &c),
        mounts: super::volumes::mount_points(&c),
        ..Default::default()
    })
}

/// `GET /containers/{id}/logs`.
pub fn logs(inner: &Arc<Inner>, key: &str, opts: LogsOptions) -> ApiResult<LogOutput> {
    let c = lookup(inner, key)?;
    let to_st = |t: api::time::Timestamp| {
        std::time::UNIX_EPOCH + Duration::new(t.seconds.max(0) as u64, t.nanos)
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let follow = opts.follow && is_running(&c);
    // A follow ends at a marker the daemon writes once the container has exited (its log is
    // complete then) or was removed. The shim's exit.json is not enough: `rm` deletes it with
    // the state dir, and a reader that had not seen it yet would follow forever (docker-py's
    // `containers.run` reads its `logs(follow=True)` stream only after wait and remove).
    let marker = if follow {
        Some(follow_marker(inner, &c.id)?)
    } else {
        None
    };
    let ro = shim::ReadOptions {
        follow,
        tail: opts.tail.map(|t| t as usize),
        since: opts.since.map(to_st),
        until: opts.until.map(to_st),
        timestamps: false,
        stdout: opts.stdout,
        stderr: opts.stderr,
        stop_file: marker.clone(),
        cancel: Some(cancel.clone()),
    };
    let path = c.log_path.clone();
    let ts = opts.timestamps;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame, ApiError>>(64);
    std::thread::spawn(move || {
        let _marker = RemoveOnDrop(marker);
        let mut reader = match shim::read_logs(&path, ro) {
            Ok(r) => r,
            Err(e) => {
                if path.exists() {
                    let _ = tx.blocking_send(Err(internal(e)));
                }
                return;
            }
        };
        loop {
            match reader.next_entry() {
                Ok(Some(e)) => {
                    let mut data = Vec::new();
                    if ts {
                        data.extend_from_slice(e.time);
                        data.push(b' ');
                    }
                    data.extend_from_slice(e.log);
                    let stream = if e.stream == shim::Stream::Stderr {
                        StdStream::Stderr
                    } else {
                        StdStream::Stdout
                    };
                    if tx
                        .blocking_send(Ok(Frame {
                            stream,
                            data: data.into(),
                        }))
                        .is_err()
                    {
                        cancel.store(true, Ordering::SeqCst);
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.blocking_send(Err(internal(e)));
                    return;
                }
            }
        }
    });
    Ok(LogOutput {
        tty: c.tty,
        frames: frame_stream(rx),
    })
}

/// Removes a file when dropped.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A fresh marker path under `<exec-root>/follow/`, written once container `id` has exited or
/// was removed (see [`logs`]). Left-over markers are cleared at start-up.
fn follow_marker(inner: &Arc<Inner>, id: &str) -> ApiResult<PathBuf> {
    use tokio::sync::broadcast::error::RecvError;
    let dir = inner.opts.exec_root.join("follow");
    std::fs::create_dir_all(&dir).map_err(internal)?;
    let token = ::image::content::random_hex(8).map_err(internal)?;
    let m = dir.join(format!("{id}-{token}"));
    // Subscribed before the state is checked again: an exit in between is not missed.
    let mut rx = inner.events.subscribe();
    let (inner, id, m2) = (inner.clone(), id.to_string(), m.clone());
    let key = id.clone();
    let running = move |inner: &Inner| lookup(inner, &key).is_ok_and(|c| is_running(&c));
    tokio::spawn(async move {
        if running(&inner) {
            loop {
                match rx.recv().await {
                    Ok(Event::Die(i, _)) | Ok(Event::Destroy(i)) if i == id => break,
                    Err(RecvError::Closed) => break,
                    Err(RecvError::Lagged(_)) if !running(&inner) => break,
                    _ => {}
                }
            }
        }
        let _ = std::fs::write(&m2, b"");
    });
    Ok(m)
}

fn frame_stream(
    rx: tokio::sync::mpsc::Receiver<Result<Frame, ApiError>>,
) -> api::stream::FrameStream {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|m| (m, rx))
    }))
}

/// Pumps a shim attach socket into frames (in a thread); `done` runs when it ends.
fn pump_output(
    attached: shim::client::Attached,
    done: impl FnOnce() -> Option<ApiError> + Send + 'static,
) -> api::stream::FrameStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame, ApiError>>(64);
    let tty = attached.tty;
    let mut s = attached.stream;
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        loop {
            let f = if tty {
                let mut b = vec![0u8; 32 * 1024];
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        b.truncate(n);
                        Frame::stdout(b)
                    }
                }
            } else {
                match shim::protocol::read_frame(&mut s, &mut buf) {
                    Ok(Some(st)) => Frame {
                        stream: if st == shim::Stream::Stderr {
                            StdStream::Stderr
                        } else {
                            StdStream::Stdout
                        },
                        data: std::mem::take(&mut buf).into(),
                    },
                    _ => break,
                }
            };
            if tx.blocking_send(Ok(f)).is_err() {
                let _ = s.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
        if let Some(e) = done() {
            let _ = tx.blocking_send(Err(e));
        }
    });
    frame_stream(rx)
}

/// Copies the client's stdin into the shim socket; end of file half-closes it.
fn pump_stdin(mut stdin: AttachStdin, mut w: std::os::unix::net::UnixStream) {
    tokio::spawn(async move {
        loop {
            match stdin.recv().await {
                Ok(Some(d)) => {
                    let r = tokio::task::block_in_place(|| w.write_all(&d));
                    if r.is_err() {
                        return;
                    }
                }
                Ok(None) => {
                    let _ = w.shutdown(std::net::Shutdown::Write);
                    return;
                }
                Err(_) => return,
            }
        }
    });
}

/// `POST /containers/{id}/attach`.
pub async fn attach(
    inner: &Arc<Inner>,
    key: &str,
    opts: AttachOptions,
    stdin: Option<AttachStdin>,
) -> ApiResult<AttachOutput> {
    let c = lookup(inner, key)?;
    if c.state.status == "exited" && !opts.logs {
        return Err(ApiError::Conflict(
            "You cannot attach to a stopped container, start it first".into(),
        ));
    }
    if opts.logs && !opts.stream {
        let l = logs(
            inner,
            &c.id,
            LogsOptions {
                stdout: opts.stdout,
                stderr: opts.stderr,
                ..Default::default()
            },
        )?;
        return Ok(AttachOutput {
            tty: c.tty,
            detach_keys: None,
            output: l.frames,
        });
    }
    let (i2, id) = (inner.clone(), c.id.clone());
    let req = AttachRequest {
        stdin: opts.stdin && c.config.open_stdin,
        stdout: opts.stdout,
        stderr: opts.stderr,
        stdin_once: Some(c.config.stdin_once),
    };
    let want_stdin = req.stdin;
    let attached = blocking(move || {
        if lookup(&i2, &id)?.state.status == "created" {
            // A container that cannot be created (bad command...) reports it on start, as
            // Docker does: the attach just ends.
            if let Err(e) = ensure_shim(&i2, &id) {
                let msg = e.to_string();
                update(&i2, &id, |c| c.state.error = msg)?;
                return Ok(None);
            }
        }
        shim::client::attach(&state_dir(&i2, &id), &req)
            .map(Some)
            .map_err(|e| ApiError::Conflict(format!("cannot attach: {e}")))
    })
    .await?;
    let Some(attached) = attached else {
        return Ok(AttachOutput {
            tty: c.tty,
            detach_keys: None,
            output: Box::pin(futures_util::stream::empty()),
        });
    };
    if let (Some(stdin), true) = (stdin, want_stdin) {
        let w = attached.stream.try_clone().map_err(internal)?;
        pump_stdin(stdin, w);
    }
    publish(inner, &c.id, "attach", &[]);
    Ok(AttachOutput {
        tty: attached.tty,
        detach_keys: opts
            .detach_keys
            .or_else(|| Some(api::stream::DetachKeys::default_keys())),
        output: pump_output(attached, || None),
    })
}

/// `POST /containers/{id}/resize` and `/exec/{id}/resize`.
pub async fn resize(
    inner: &Arc<Inner>,
    key: &str,
    exec: Option<String>,
    h: u32,
    w: u32,
) -> ApiResult<()> {
    let c = lookup(inner, key)?;
    let sd = state_dir(inner, &c.id);
    blocking(move || {
        let req = ControlRequest {
            resize: Some([h.min(65535) as u16, w.min(65535) as u16]),
            exec_id: exec,
            ..Default::default()
        };
        shim::client::control(&sd, &req)
            .map(|_| ())
            .map_err(|e| ApiError::Conflict(format!("cannot resize: {e}")))
    })
    .await
}

/// `GET /containers/{id}/top`: the host's `ps` filtered to the container's cgroup.
pub async fn top(inner: &Arc<Inner>, key: &str, ps_args: &str) -> ApiResult<ContainerTopResponse> {
    let c = lookup(inner, key)?;
    if !is_running(&c) {
        return Err(ApiError::Conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    let id = c.id.clone();
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.split_whitespace().map(String::from).collect()
    };
    blocking(move || {
        let mut pids = std::collections::HashSet::new();
        for ctl in ["pids", "memory", "cpu", "freezer", "unified", ""] {
            let p = PathBuf::from("/sys/fs/cgroup")
                .join(ctl)
                .join("berth")
                .join(&id)
                .join("cgroup.procs");
            if let Ok(t) = std::fs::read_to_string(&p) {
                pids.extend(t.lines().map(|l| l.trim().to_string()));
                break;
            }
        }
        let out = std::process::Command::new("ps")
            .args(&args)
            .output()
            .map_err(internal)?;
        if !out.status.success() {
            return Err(ApiError::InvalidParameter(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let titles: Vec<String> = lines
            .next()
            .unwrap_or("")
            .split_whitespace()
            .map(String::from)
            .collect();
        let pid_col = titles.iter().position(|t| t == "PID").ok_or_else(|| {
            ApiError::InvalidParameter("Couldn't find PID field in ps output".into())
        })?;
        let mut procs = Vec::new();
        for l in lines {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < titles.len() || !pids.contains(f[pid_col]) {
                continue;
            }
            let mut row: Vec<String> = f[..titles.len() - 1]
                .iter()
                .map(|s| s.to_string())
                .collect();
            row.push(f[titles.len() - 1..].join(" "));
            procs.push(row);
        }
        Ok(ContainerTopResponse {
            titles,
            processes: procs,
        })
    })
    .await
}

// ---------------------------------------------------------------- exec

/// An exec instance.
#[derive(Debug, Clone)]
pub(crate) struct ExecRecord {
    pub id: String,
    pub container: String,
    pub config: ExecConfig,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
}

/// `POST /containers/{id}/exec`.
pub fn exec_create(inner: &Arc<Inner>, key: &str, config: ExecConfig) -> ApiResult<IdResponse> {
    let c = lookup(inner, key)?;
    if c.state.status != "running" {
        return Err(ApiError::Conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    if !config.user.is_empty() {
        // Refused here, before any stream is hijacked, with the runtime's message.
        parse_user(inner, &c.id, &config.user)?;
    }
    let id = ::image::content::random_hex(32).map_err(internal)?;
    let action = format!(
        "exec_create: {}",
        config.cmd.clone().unwrap_or_default().join(" ")
    );
    inner.bus.container(&c, &action, &[("execID", id.clone())]);
    inner.execs.lock().map_err(|_| poisoned())?.insert(
        id.clone(),
        ExecRecord {
            id: id.clone(),
            container: c.id,
            config,
            running: false,
            exit_code: None,
            pid: 0,
        },
    );
    Ok(IdResponse { id })
}

fn get_exec(inner: &Inner, id: &str) -> ApiResult<ExecRecord> {
    inner
        .execs
        .lock()
        .map_err(|_| poisoned())?
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::no_such_exec(id))
}

/// The container of an exec.
pub fn exec_container(inner: &Arc<Inner>, id: &str) -> ApiResult<String> {
    get_exec(inner, id).map(|e| e.container)
}

fn set_exec(inner: &Inner, id: &str, f: impl FnOnce(&mut ExecRecord)) {
    if let Ok(mut m) = inner.execs.lock() {
        if let Some(e) = m.get_mut(id) {
            f(e);
        }
    }
}

/// `exec -u` (`name`, `uid`, `name:group`, `uid:gid`…) resolved against the container's
/// own /etc/passwd and /etc/group, as docker does.
fn parse_user(inner: &Inner, id: &str, u: &str) -> ApiResult<serde_json::Value> {
    let rootfs = crate::bundle::dir(&inner.opts.data_root, id).join("rootfs");
    let x = ::image::spec::resolve_user(&rootfs, u, &[]).map_err(|e| match e {
        ::image::spec::SpecError::Io { .. } => internal(e),
        e => ApiError::InvalidParameter(e.to_string()),
    })?;
    let mut v = serde_json::json!({"uid": x.uid, "gid": x.gid});
    if !x.additional_gids.is_empty() {
        v["additionalGids"] = serde_json::json!(x.additional_gids);
    }
    Ok(v)
}

/// `POST /exec/{id}/start`: `stdin` None means detached (returns None).
pub async fn exec_start(
    inner: &Arc<Inner>,
    id: &str,
    config: ExecStartConfig,
    stdin: Option<AttachStdin>,
) -> ApiResult<Option<AttachOutput>> {
    let e = get_exec(inner, id)?;
    if e.running || e.exit_code.is_some() {
        return Err(ApiError::Conflict(format!(
            "exec {id} has already been started"
        )));
    }
    let c = lookup(inner, &e.container)?;
    if c.state.status != "running" {
        return Err(ApiError::Conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    let mut process = serde_json::json!({"args": e.config.cmd.clone().unwrap_or_default()});
    if let Some(env) = e.config.env.as_ref().filter(|v| !v.is_empty()) {
        let mut base = c.config.env.clone().unwrap_or_default();
        base.extend(env.iter().cloned());
        process["env"] = base.into();
    }
    if !e.config.working_dir.is_empty() {
        process["cwd"] = e.config.working_dir.clone().into();
    }
    if !e.config.user.is_empty() {
        process["user"] = parse_user(inner, &c.id, &e.config.user)?;
    }
    let tty = e.config.tty || config.tty;
    if let Some([h, w]) = console_size(
        config
            .console_size
            .as_ref()
            .or(e.config.console_size.as_ref()),
    ) {
        if tty {
            process["consoleSize"] = serde_json::json!({"height": h, "width": w});
        }
    }
    let detach = stdin.is_none();
    let req = ExecRequest {
        id: id.to_string(),
        tty,
        stdin: e.config.attach_stdin && !detach,
        detach,
        process: Some(process),
        inline: Default::default(),
    };
    let sd = state_dir(inner, &c.id);
    let sd2 = sd.clone();
    let reply = blocking(move || {
        shim::client::control(
            &sd2,
            &ControlRequest {
                exec: Some(req),
                ..Default::default()
            },
        )
        .map_err(|e| ApiError::Internal(format!("OCI runtime exec failed: {e}")))
    })
    .await;
    let reply = match reply {
        Ok(r) => r,
        Err(err) => {
            // As dockerd: the exec is over with 127 (not found) or 126 (cannot run); an
            // attached client gets the message in its stream and reads the code from inspect.
            let msg = err.to_string();
            let code = if msg.contains("not found") || msg.contains("No such file") {
                127
            } else {
                126
            };
            set_exec(inner, id, |e| {
                e.running = false;
                e.exit_code = Some(code);
            });
            inner.bus.container(
                &c,
                "exec_die",
                &[("execID", id.to_string()), ("exitCode", code.to_string())],
            );
            if stdin.is_none() {
                return Err(err);
            }
            let frame = Frame {
                stream: StdStream::Stdout,
                data: bytes::Bytes::from(format!("{msg}\r\n")),
            };
            return Ok(Some(AttachOutput {
                tty,
                detach_keys: None,
                output: Box::pin(futures_util::stream::iter([Ok(frame)])),
            }));
        }
    };
    set_exec(inner, id, |e| {
        e.running = true;
        e.pid = reply.pid.unwrap_or(0) as i64;
    });
    let cmdline = e.config.cmd.clone().unwrap_or_default().join(" ");
    inner.bus.container(
        &c,
        &format!("exec_start: {cmdline}"),
        &[("execID", id.to_string())],
    );
    let finish = {
        let (inner, id, sd) = (inner.clone(), id.to_string(), sd.clone());
        let c = c.clone();
        move || {
            let st = shim::client::wait_exec(&sd, &id);
            let code = st.as_ref().map(|s| s.exit_code as i64).unwrap_or(126);
            set_exec(&inner, &id, |e| {
                e.running = false;
                e.exit_code = Some(code);
            });
            inner.bus.container(
                &c,
                "exec_die",
                &[("execID", id.clone()), ("exitCode", code.to_string())],
            );
            None
        }
    };
    let Some(stdin) = stdin else {
        std::thread::spawn(finish);
        return Ok(None);
    };
    let (sd3, id3) = (sd.clone(), id.to_string());
    let areq = AttachRequest {
        stdin: e.config.attach_stdin,
        stdout: e.config.attach_stdout,
        stderr: e.config.attach_stderr,
        stdin_once: Some(true),
    };
    let sock = reply
        .socket
        .clone()
        .unwrap_or_else(|| shim::protocol::exec_socket(&sd3, &id3));
    let attached = blocking(move || {
        shim::client::attach_socket(&sock, &areq)
            .map_err(|e| internal(format!("cannot attach to exec: {e}")))
    })
    .await?;
    if e.config.attach_stdin {
        let w = attached.stream.try_clone().map_err(internal)?;
        pump_stdin(stdin, w);
    }
    Ok(Some(AttachOutput {
        tty: attached.tty || tty,
        detach_keys: Some(api::stream::DetachKeys::default_keys()),
        output: pump_output(attached, finish),
    }))
}

/// `GET /exec/{id}/json`.
pub fn exec_inspect(inner: &Arc<Inner>, id: &str) -> ApiResult<ExecInspect> {
    let e = get_exec(inner, id)?;
    let cmd = e.config.cmd.clone().unwrap_or_default();
    Ok(ExecInspect {
        can_remove: false,
        detach_keys: e.config.detach_keys.clone(),
        id: e.id.clone(),
        running: e.running,
        exit_code: e.exit_code,
        process_config: ProcessConfig {
            privileged: e.config.privileged,
            user: e.config.user.clone(),
            tty: e.config.tty,
            entrypoint: cmd.first().cloned().unwrap_or_default(),
            arguments: cmd.iter().skip(1).cloned().collect(),
        },
        open_stdin: e.config.attach_stdin,
        open_stderr: e.config.attach_stderr,
        open_stdout: e.config.attach_stdout,
        container_id: e.container.clone(),
        pid: e.pid,
    })
}

/// A `Write` that sends chunks into a channel (the tar of `export` is written on a blocking
/// thread and streamed as it is produced).
pub(crate) struct ChannelWriter {
    pub tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, ApiError>>,
    pub buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 256 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

/// `GET /containers/{id}/export`: a tar of the container's root filesystem (its overlay
/// view: image layers plus its own changes), streamed.
pub fn export(inner: &Arc<Inner>, key: &str) -> ApiResult<api::stream::ByteStream> {
    let c = lookup(inner, key)?;
    let rootfs = crate::bundle::dir(&inner.opts.data_root, &c.id).join("rootfs");
    if !rootfs.join("bin").exists()
        && std::fs::read_dir(&rootfs)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)
    {
        return Err(ApiError::Conflict(format!(
            "container {} has no mounted root filesystem to export",
            c.id
        )));
    }
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    std::thread::spawn(move || {
        let w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        match ::image::archive::export(&rootfs, w) {
            Ok(mut w) => {
                let _ = w.flush();
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(ApiError::Internal(format!("export: {e}"))));
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(Box::pin(stream))
}
