//! Container commands through the daemon's Engine API, with docker's flags, output and exit
//! codes: run, create, start, stop, kill, restart, pause, unpause, rm, rename, wait, attach,
//! logs, exec, top, port, ps, inspect, diff, commit, export, update, container prune.
//! (`stats` and `cp` are in `transfer`.)

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use api::backend::*;
use api::types::*;
use api::{ClientError, Filters};
use clap::Args;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::daemon::Conn;
use crate::format;
use crate::opts;
use crate::run::RunArgs;
use crate::stdio::{self, IoOptions, ResizeTarget};
use crate::units;

/// Prints an error as docker does and returns `code`.
pub fn fail(e: impl std::fmt::Display, code: i32) -> i32 {
    eprintln!("{e}");
    code
}

fn filters_of(list: &[String]) -> Result<Filters> {
    let mut f = Filters::new();
    for item in list {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| anyhow!("bad format of filter (expected name=value)"))?;
        f.add(k, v);
    }
    Ok(f)
}

/// The docker `run`/`create` flags as a create request.
pub fn create_request(a: &RunArgs) -> Result<ContainerCreateRequest> {
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(opts::read_kv_file(f, true)?);
    }
    env.extend(opts::env_items(&a.env));
    let mut labels = Vec::new();
    for f in &a.label_file {
        labels.extend(opts::read_kv_file(f, false)?);
    }
    labels.extend(a.label.iter().cloned());
    let mut exposed = BTreeMap::new();
    let mut bindings = PortMap::new();
    for p in &a.publish {
        opts::publish(p, &mut exposed, &mut bindings)?;
    }
    for e in &a.expose {
        opts::expose(e, &mut exposed)?;
    }
    let mut binds = Vec::new();
    let mut volumes = BTreeMap::new();
    for v in &a.volume {
        // `/dst` alone is an anonymous volume; `src:dst[:opts]` a bind or named volume.
        if v.contains(':') {
            binds.push(v.clone());
        } else {
            volumes.insert(v.clone(), json!({}));
        }
    }
    let mounts = a
        .mount
        .iter()
        .map(|m| opts::mount(m))
        .collect::<Result<Vec<_>, _>>()?;
    let tmpfs: BTreeMap<String, String> = a.tmpfs.iter().map(|t| opts::tmpfs(t)).collect();
    let mut health = None;
    if a.no_healthcheck {
        health = Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        });
    } else if a.health_cmd.is_some()
        || a.health_interval.is_some()
        || a.health_timeout.is_some()
        || a.health_retries.is_some()
        || a.health_start_period.is_some()
        || a.health_start_interval.is_some()
    {
        let d = |v: &Option<String>| -> Result<i64> {
            Ok(match v {
                Some(s) => opts::go_duration(s)?,
                None => 0,
            })
        };
        health = Some(HealthConfig {
            test: a
                .health_cmd
                .as_ref()
                .map(|c| vec!["CMD-SHELL".to_string(), c.clone()]),
            interval: d(&a.health_interval)?,
            timeout: d(&a.health_timeout)?,
            retries: a.health_retries.unwrap_or(0),
            start_period: d(&a.health_start_period)?,
            start_interval: d(&a.health_start_interval)?,
        });
    }
    let attach_all = a.attach.is_empty() && !a.detach;
    let attach = |s: &str| attach_all || a.attach.iter().any(|x| x.eq_ignore_ascii_case(s));
    let config = ContainerConfig {
        hostname: a.hostname.clone().unwrap_or_default(),
        domainname: a.domainname.clone().unwrap_or_default(),
        user: a.user.clone().unwrap_or_default(),
        attach_stdin: a.interactive && !a.detach && (a.attach.is_empty() || attach("stdin")),
        attach_stdout: attach("stdout"),
        attach_stderr: attach("stderr"),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        tty: a.tty,
        open_stdin: a.interactive,
        stdin_once: a.interactive && !a.detach,
        env: (!env.is_empty()).then_some(env),
        cmd: (!a.command.is_empty()).then(|| a.command.clone()),
        healthcheck: health,
        image: a.image.clone(),
        volumes: (!volumes.is_empty()).then_some(volumes),
        working_dir: a.workdir.clone().unwrap_or_default(),
        entrypoint: a.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                vec![String::new()]
            } else {
                vec![e.clone()]
            }
        }),
        mac_address: a.mac_address.clone(),
        labels: (!labels.is_empty()).then(|| opts::kv_map(&labels)),
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        ..Default::default()
    };
    let size = |v: &Option<String>| -> Result<i64> {
        Ok(match v {
            Some(s) if s == "-1" => -1,
            Some(s) => opts::ram_in_bytes(s)?,
            None => 0,
        })
    };
    let resources = Resources {
        cpu_shares: a.cpu_shares.unwrap_or(0),
        memory: size(&a.memory)?,
        cgroup_parent: a.cgroup_parent.clone().unwrap_or_default(),
        blkio_weight: a.blkio_weight.unwrap_or(0),
        cpu_period: a.cpu_period.unwrap_or(0),
        cpu_quota: a.cpu_quota.unwrap_or(0),
        cpuset_cpus: a.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: a.cpuset_mems.clone().unwrap_or_default(),
        devices: (!a.device.is_empty()).then(|| a.device.iter().map(|d| device(d)).collect()),
        memory_reservation: size(&a.memory_reservation)?,
        memory_swap: size(&a.memory_swap)?,
        memory_swappiness: a.memory_swappiness,
        nano_cpus: match &a.cpus {
            Some(c) => opts::nano_cpus(c)?,
            None => 0,
        },
        oom_kill_disable: a.oom_kill_disable.then_some(true),
        init: a.init.then_some(true),
        pids_limit: a.pids_limit,
        ulimits: if a.ulimit.is_empty() {
            None
        } else {
            Some(
                a.ulimit
                    .iter()
                    .map(|u| opts::ulimit(u))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        },
        ..Default::default()
    };
    let network = a.network.clone().unwrap_or_else(|| "default".to_string());
    let host_config = HostConfig {
        resources,
        binds: (!binds.is_empty()).then_some(binds),
        container_id_file: a.cidfile.clone().unwrap_or_default(),
        log_config: a.log_driver.as_ref().map(|d| LogConfig {
            kind: d.clone(),
            config: (!a.log_opt.is_empty()).then(|| opts::kv_map(&a.log_opt)),
        }),
        network_mode: network.clone(),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        restart_policy: match &a.restart {
            Some(r) => Some(opts::restart_policy(r)?),
            None => None,
        },
        auto_remove: a.rm,
        volume_driver: a.volume_driver.clone().unwrap_or_default(),
        volumes_from: (!a.volumes_from.is_empty()).then(|| a.volumes_from.clone()),
        mounts: (!mounts.is_empty()).then_some(mounts),
        console_size: if a.tty {
            stdio::term_size().map(|(h, w)| vec![h, w])
        } else {
            None
        },
        cap_add: (!a.cap_add.is_empty()).then(|| a.cap_add.clone()),
        cap_drop: (!a.cap_drop.is_empty()).then(|| a.cap_drop.clone()),
        cgroupns_mode: a.cgroupns.clone().unwrap_or_default(),
        dns: (!a.dns.is_empty()).then(|| a.dns.clone()),
        dns_options: (!a.dns_option.is_empty()).then(|| a.dns_option.clone()),
        dns_search: (!a.dns_search.is_empty()).then(|| a.dns_search.clone()),
        extra_hosts: (!a.add_host.is_empty()).then(|| a.add_host.clone()),
        group_add: (!a.group_add.is_empty()).then(|| a.group_add.clone()),
        ipc_mode: a.ipc.clone().unwrap_or_default(),
        links: (!a.link.is_empty()).then(|| a.link.clone()),
        oom_score_adj: a.oom_score_adj.unwrap_or(0),
        pid_mode: a.pid.clone().unwrap_or_default(),
        privileged: a.privileged,
        publish_all_ports: a.publish_all,
        readonly_rootfs: a.read_only,
        security_opt: (!a.security_opt.is_empty()).then(|| a.security_opt.clone()),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        uts_mode: a.uts.clone().unwrap_or_default(),
        userns_mode: a.userns.clone().unwrap_or_default(),
        shm_size: size(&a.shm_size)?,
        sysctls: (!a.sysctl.is_empty()).then(|| opts::kv_map(&a.sysctl)),
        runtime: a.runtime.clone(),
        ..Default::default()
    };
    let mut endpoints = BTreeMap::new();
    if !a.network_alias.is_empty() || a.ip.is_some() || a.ip6.is_some() {
        endpoints.insert(
            network.clone(),
            EndpointSettings {
                aliases: (!a.network_alias.is_empty()).then(|| a.network_alias.clone()),
                ipam_config: (a.ip.is_some() || a.ip6.is_some()).then(|| EndpointIpamConfig {
                    ipv4_address: a.ip.clone().unwrap_or_default(),
                    ipv6_address: a.ip6.clone().unwrap_or_default(),
                    link_local_ips: None,
                }),
                ..Default::default()
            },
        );
    }
    Ok(ContainerCreateRequest {
        config,
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: (!endpoints.is_empty()).then_some(endpoints),
        }),
    })
}

/// `--device /dev/x[:/dev/y[:rwm]]`.
fn device(spec: &str) -> DeviceMapping {
    let parts: Vec<&str> = spec.split(':').collect();
    let host = parts[0].to_string();
    let (ctr, perms) = match parts.len() {
        1 => (host.clone(), "rwm".to_string()),
        2 if parts[1].chars().all(|c| "rwm".contains(c)) => (host.clone(), parts[1].to_string()),
        2 => (parts[1].to_string(), "rwm".to_string()),
        _ => (parts[1].to_string(), parts[2].to_string()),
    };
    DeviceMapping {
        path_on_host: host,
        path_in_container: ctr,
        cgroup_permissions: perms,
    }
}

/// Docker's exit code for a failed start: 127 not found, 126 not executable, else 125.
pub fn start_error_code(msg: &str) -> i32 {
    if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

/// Pulls `image` through the daemon, printing docker's progress lines to `out`.
pub async fn pull_image(
    conn: &Conn,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
    to_stderr: bool,
) -> Result<(), ClientError> {
    let auth = crate::images_api::auth_for(image);
    let (from, tag) = crate::images_api::split_tag(image);
    let mut s = conn
        .client
        .image_pull(&ImagePullOptions {
            from_image: from,
            tag,
            platform: platform.map(str::to_string),
            auth,
        })
        .await?;
    while let Some(m) = s.next().await {
        let m = m?;
        if !quiet {
            let line = crate::images_api::progress_line(&m);
            if let Some(l) = line {
                if to_stderr {
                    eprintln!("{l}");
                } else {
                    println!("{l}");
                }
            }
        }
    }
    Ok(())
}

fn is_no_such_image(e: &ClientError) -> bool {
    e.is_not_found() && e.to_string().contains("No such image")
}

async fn create_with_pull(conn: &Conn, a: &RunArgs) -> Result<String, (ClientError, bool)> {
    let req = create_request(a).map_err(|e| (ClientError::Stream(crate::error_text(&e)), true))?;
    if a.pull == "always" {
        pull_image(conn, &a.image, a.platform.as_deref(), a.quiet, true)
            .await
            .map_err(|e| (e, false))?;
    }
    let platform = a.platform.as_deref();
    let r = match conn
        .client
        .container_create(a.name.as_deref(), platform, &req)
        .await
    {
        Ok(r) => r,
        Err(e) if is_no_such_image(&e) && a.pull != "never" => {
            let shown = ::image::Reference::parse_normalized(&a.image)
                .map(|r| r.with_default_tag().familiar_string())
                .unwrap_or_else(|_| a.image.clone());
            eprintln!("Unable to find image '{shown}' locally");
            pull_image(conn, &a.image, platform, a.quiet, true)
                .await
                .map_err(|e| (e, false))?;
            conn.client
                .container_create(a.name.as_deref(), platform, &req)
                .await
                .map_err(|e| (e, false))?
        }
        Err(e) => return Err((e, false)),
    };
    for w in &r.warnings {
        eprintln!("WARNING: {w}");
    }
    if let Some(f) = &a.cidfile {
        if let Err(e) = std::fs::write(f, &r.id) {
            eprintln!("berth: cannot write the container ID file {f}: {e}");
        }
    }
    Ok(r.id)
}

fn run_usage_error(cmd: &str, msg: &str) -> i32 {
    eprintln!("berth: {msg}\n\nRun 'berth {cmd} --help' for more information");
    125
}

/// `docker create`.
pub fn create(conn: &Conn, a: RunArgs) -> i32 {
    let a = a.normalized();
    match conn.block_on(create_with_pull(conn, &a)) {
        Ok(id) => {
            println!("{id}");
            0
        }
        Err((e, usage)) => {
            if usage {
                run_usage_error("create", &e.to_string())
            } else {
                fail(format!("berth: {e}"), 125)
            }
        }
    }
}

/// `docker run`.
pub fn run(conn: &Conn, a: RunArgs) -> i32 {
    let a = a.normalized();
    if a.tty && a.interactive && !stdio::stdin_is_tty() {
        return fail("the input device is not a TTY", 1);
    }
    if a.detach && a.rm && a.restart.as_deref().is_some_and(|r| r != "no") {
        return run_usage_error("run", "Conflicting options: --restart and --rm");
    }
    conn.block_on(async {
        let id = match create_with_pull(conn, &a).await {
            Ok(id) => id,
            Err((e, true)) => return run_usage_error("run", &e.to_string()),
            Err((e, false)) => return fail(format!("berth: {e}"), 125),
        };
        let c = &conn.client;
        if a.detach {
            if let Err(e) = c.container_start(&id).await {
                let msg = e.to_string();
                return fail(format!("berth: {msg}"), start_error_code(&msg));
            }
            println!("{id}");
            return 0;
        }
        let want =
            |s: &str| a.attach.is_empty() || a.attach.iter().any(|x| x.eq_ignore_ascii_case(s));
        let attach = AttachOptions {
            stdin: a.interactive && want("stdin"),
            stdout: want("stdout"),
            stderr: want("stderr"),
            stream: true,
            logs: false,
            detach_keys: a
                .detach_keys
                .as_deref()
                .and_then(|k| api::stream::DetachKeys::parse(k).ok()),
        };
        let session = match c.container_attach(&id, &attach, a.tty).await {
            Ok(s) => s,
            Err(e) => return fail(format!("berth: {e}"), 125),
        };
        let cond = if a.rm {
            WaitCondition::Removed
        } else {
            WaitCondition::NextExit
        };
        let wait = match c.container_wait_begin(&id, cond).await {
            Ok(w) => w,
            Err(e) => return fail(format!("berth: {e}"), 125),
        };
        if let Err(e) = c.container_start(&id).await {
            let msg = e.to_string();
            if a.rm {
                let _ = c
                    .container_remove(
                        &id,
                        &ContainerRemoveOptions {
                            force: true,
                            ..Default::default()
                        },
                    )
                    .await;
            }
            return fail(format!("berth: {msg}"), start_error_code(&msg));
        }
        let io = IoOptions {
            stdin: attach.stdin,
            tty: a.tty,
            resize: a.tty.then(|| ResizeTarget::Container(id.clone())),
            proxy_signals_to: (a.sig_proxy && !a.tty).then(|| id.clone()),
        };
        if a.tty {
            stdio::resize(c, &ResizeTarget::Container(id.clone())).await;
        }
        if let Err(e) = stdio::run_session(c, session, &io).await {
            eprintln!("berth: {e}");
        }
        // Output ended: the container exited, or the user detached (it still runs).
        if a.rm {
            return match wait.result().await {
                Ok(r) => r.status_code as i32,
                Err(e) => fail(format!("berth: {e}"), 125),
            };
        }
        match exit_after_session(c, &id, wait.result()).await {
            None => 0,
            Some(Ok(code)) => code,
            Some(Err(e)) => fail(format!("berth: {e}"), 125),
        }
    })
}

/// After an attached session's output ended: the container's exit code, or None when it is
/// still running (the user detached). The daemon records an exit a moment after the output
/// closes, so a container that still looks running gets a short grace before it counts as
/// detached.
async fn exit_after_session<F>(
    c: &api::Client,
    id: &str,
    wait: F,
) -> Option<Result<i32, ClientError>>
where
    F: std::future::Future<Output = Result<ContainerWaitResponse, ClientError>>,
{
    let mut wait = std::pin::pin!(wait);
    let running = matches!(c.container_inspect(id).await, Ok(i) if i.state.running);
    if !running {
        return Some(wait.await.map(|r| r.status_code as i32));
    }
    match tokio::time::timeout(std::time::Duration::from_millis(1500), &mut wait).await {
        Ok(r) => Some(r.map(|r| r.status_code as i32)),
        Err(_) => None,
    }
}

/// `docker start [-a] [-i] CONTAINER...`.
#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN.
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn start(conn: &Conn, a: StartArgs) -> i32 {
    conn.block_on(async {
        let c = &conn.client;
        if a.attach || a.interactive {
            if a.containers.len() > 1 {
                return fail(
                    "berth: you cannot start and attach multiple containers at once",
                    1,
                );
            }
            let id = &a.containers[0];
            let info = match c.container_inspect(id).await {
                Ok(i) => i,
                Err(e) => return fail(e, 1),
            };
            let tty = info.config.tty;
            let opts = AttachOptions {
                stdin: a.interactive && info.config.open_stdin,
                stdout: true,
                stderr: true,
                stream: true,
                logs: false,
                detach_keys: a
                    .detach_keys
                    .as_deref()
                    .and_then(|k| api::stream::DetachKeys::parse(k).ok()),
            };
            let session = match c.container_attach(id, &opts, tty).await {
                Ok(s) => s,
                Err(e) => return fail(e, 1),
            };
            let wait = match c.container_wait_begin(id, WaitCondition::NextExit).await {
                Ok(w) => w,
                Err(e) => return fail(e, 1),
            };
            if let Err(e) = c.container_start(id).await {
                return fail(e, 1);
            }
            let io = IoOptions {
                stdin: opts.stdin,
                tty,
                resize: tty.then(|| ResizeTarget::Container(info.id.clone())),
                proxy_signals_to: (!tty).then(|| info.id.clone()),
            };
            if tty {
                stdio::resize(c, &ResizeTarget::Container(info.id.clone())).await;
            }
            let _ = stdio::run_session(c, session, &io).await;
            return match exit_after_session(c, id, wait.result()).await {
                None => 0,
                Some(Ok(code)) => code,
                Some(Err(e)) => fail(e, 1),
            };
        }
        let mut failed = Vec::new();
        for id in &a.containers {
            match c.container_start(id).await {
                Ok(()) => println!("{id}"),
                Err(e) => {
                    eprintln!("{e}");
                    failed.push(id.clone());
                }
            }
        }
        if failed.is_empty() {
            0
        } else {
            fail(
                format!("Error: failed to start containers: {}", failed.join(", ")),
                1,
            )
        }
    })
}

/// `docker stop` / `docker restart`.
#[derive(Args, Debug)]
pub struct StopArgs {
    /// Signal to send to the container.
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container.
    #[arg(short, long, alias = "time", allow_negative_numbers = true)]
    pub timeout: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Runs `op` on each name, printing the name on success (docker's multi-container shape).
fn each<F, Fut>(conn: &Conn, names: &[String], op: F) -> i32
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), ClientError>>,
{
    conn.block_on(async {
        let mut code = 0;
        for n in names {
            match op(n.clone()).await {
                Ok(()) => println!("{n}"),
                Err(e) => {
                    eprintln!("{e}");
                    code = 1;
                }
            }
        }
        code
    })
}

pub fn stop(conn: &Conn, a: StopArgs, restart: bool) -> i32 {
    let o = StopOptions {
        signal: a.signal.clone(),
        timeout: a.timeout,
    };
    let c = &conn.client;
    each(conn, &a.containers, |n| {
        let o = o.clone();
        async move {
            if restart {
                c.container_restart(&n, &o).await
            } else {
                c.container_stop(&n, &o).await
            }
        }
    })
}

pub fn kill(conn: &Conn, signal: Option<String>, names: &[String]) -> i32 {
    let c = &conn.client;
    each(conn, names, |n| {
        let s = signal.clone();
        async move { c.container_kill(&n, s.as_deref()).await }
    })
}

pub fn pause(conn: &Conn, names: &[String], unpause: bool) -> i32 {
    let c = &conn.client;
    each(conn, names, |n| async move {
        if unpause {
            c.container_unpause(&n).await
        } else {
            c.container_pause(&n).await
        }
    })
}

/// `docker rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    pub force: bool,
    /// Remove the specified link.
    #[arg(short, long)]
    pub link: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn rm(conn: &Conn, a: RmArgs) -> i32 {
    let o = ContainerRemoveOptions {
        force: a.force,
        volumes: a.volumes,
        link: a.link,
    };
    let c = &conn.client;
    each(conn, &a.containers, |n| async move {
        c.container_remove(&n, &o).await
    })
}

pub fn rename(conn: &Conn, old: &str, new: &str) -> i32 {
    match conn.block_on(conn.client.container_rename(old, new)) {
        Ok(()) => 0,
        Err(e) => fail(
            format!("{e}\nError: failed to rename container named {old}"),
            1,
        ),
    }
}

pub fn wait(conn: &Conn, names: &[String]) -> i32 {
    conn.block_on(async {
        let mut code = 0;
        for n in names {
            match conn
                .client
                .container_wait(n, WaitCondition::NotRunning)
                .await
            {
                Ok(r) => println!("{}", r.status_code),
                Err(e) => {
                    eprintln!("{e}");
                    code = 1;
                }
            }
        }
        code
    })
}

/// `docker attach`.
#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN.
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process.
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    pub container: String,
}

pub fn attach(conn: &Conn, a: AttachArgs) -> i32 {
    conn.block_on(async {
        let c = &conn.client;
        let info = match c.container_inspect(&a.container).await {
            Ok(i) => i,
            Err(e) => return fail(e, 1),
        };
        if !info.state.running {
            return fail(
                "You cannot attach to a stopped container, start it first",
                1,
            );
        }
        if info.state.paused {
            return fail(
                "You cannot attach to a paused container, unpause it first",
                1,
            );
        }
        let tty = info.config.tty;
        let stdin = !a.no_stdin && info.config.open_stdin;
        let opts = AttachOptions {
            stdin,
            stdout: true,
            stderr: true,
            stream: true,
            logs: false,
            detach_keys: a
                .detach_keys
                .as_deref()
                .and_then(|k| api::stream::DetachKeys::parse(k).ok()),
        };
        let wait = c
            .container_wait_begin(&info.id, WaitCondition::NextExit)
            .await;
        let session = match c.container_attach(&info.id, &opts, tty).await {
            Ok(s) => s,
            Err(e) => return fail(e, 1),
        };
        let io = IoOptions {
            stdin,
            tty,
            resize: tty.then(|| ResizeTarget::Container(info.id.clone())),
            proxy_signals_to: (a.sig_proxy && !tty).then(|| info.id.clone()),
        };
        if tty {
            stdio::resize(c, &ResizeTarget::Container(info.id.clone())).await;
        }
        let _ = stdio::run_session(c, session, &io).await;
        match wait {
            Ok(w) => match exit_after_session(c, &info.id, w.result()).await {
                None => 0,
                Some(Ok(code)) => code,
                Some(Err(_)) => 0,
            },
            Err(_) => match c.container_inspect(&info.id).await {
                Ok(i) if !i.state.running => i.state.exit_code as i32,
                _ => 0,
            },
        }
    })
}

/// `docker logs`.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Show extra details provided to logs.
    #[arg(long)]
    pub details: bool,
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Show logs since timestamp or relative (e.g. 42m for 42 minutes).
    #[arg(long)]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs.
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs before a timestamp or relative.
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

fn now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A `--since`/`--until` value as an API timestamp.
pub fn api_time(v: &Option<String>) -> Result<Option<api::time::Timestamp>> {
    match v {
        None => Ok(None),
        Some(s) => {
            let t = opts::timestamp(s, now_f64())?;
            if t.is_empty() {
                return Ok(None);
            }
            let (sec, frac) = t.split_once('.').unwrap_or((&t, ""));
            let frac: String = frac.chars().take(9).collect();
            let t = if frac.is_empty() {
                sec.to_string()
            } else {
                format!("{sec}.{frac}")
            };
            Ok(Some(t.parse().map_err(|e| anyhow!("{e}"))?))
        }
    }
}

pub fn logs(conn: &Conn, a: LogsArgs) -> Result<i32> {
    let tail = if a.tail == "all" || a.tail.is_empty() {
        None
    } else {
        Some(
            a.tail
                .parse::<i64>()
                .map(|n| if n < 0 { None } else { Some(n as u64) })
                .map_err(|_| anyhow!("invalid value for --tail: {}", a.tail))?,
        )
        .flatten()
    };
    let opts = LogsOptions {
        follow: a.follow,
        stdout: true,
        stderr: true,
        since: api_time(&a.since)?,
        until: api_time(&a.until)?,
        timestamps: a.timestamps,
        tail,
        details: a.details,
    };
    conn.block_on(async {
        let c = &conn.client;
        let info = c.container_inspect(&a.container).await?;
        let mut r = c.container_logs(&info.id, &opts, info.config.tty).await?;
        while let Some(f) = r.next().await? {
            let res = if f.stream == api::stream::StdStream::Stderr {
                let mut e = std::io::stderr().lock();
                e.write_all(&f.data).and_then(|_| e.flush())
            } else {
                let mut o = std::io::stdout().lock();
                o.write_all(&f.data).and_then(|_| o.flush())
            };
            if res.is_err() {
                break;
            }
        }
        Ok(0)
    })
}

/// `docker exec`.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Set environment variables.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]").
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn exec(conn: &Conn, a: ExecArgs) -> i32 {
    if a.tty && a.interactive && !stdio::stdin_is_tty() {
        return fail("the input device is not a TTY", 1);
    }
    let mut env = Vec::new();
    for f in &a.env_file {
        match opts::read_kv_file(f, true) {
            Ok(v) => env.extend(v),
            Err(e) => return fail(format!("berth: {e}"), 125),
        }
    }
    env.extend(opts::env_items(&a.env));
    let cfg = ExecConfig {
        attach_stdin: a.interactive && !a.detach,
        attach_stdout: !a.detach,
        attach_stderr: !a.detach,
        console_size: if a.tty {
            stdio::term_size().map(|(h, w)| vec![h, w])
        } else {
            None
        },
        detach_keys: a.detach_keys.clone().unwrap_or_default(),
        tty: a.tty,
        env: (!env.is_empty()).then_some(env),
        cmd: Some(a.command.clone()),
        privileged: a.privileged,
        user: a.user.clone().unwrap_or_default(),
        working_dir: a.workdir.clone().unwrap_or_default(),
        ..Default::default()
    };
    conn.block_on(async {
        let c = &conn.client;
        let id = match c.exec_create(&a.container, &cfg).await {
            Ok(r) => r.id,
            Err(e) => return fail(e, 1),
        };
        let start = ExecStartConfig {
            detach: a.detach,
            tty: a.tty,
            console_size: cfg.console_size.clone(),
        };
        if a.detach {
            return match c.exec_start_detached(&id, &start).await {
                Ok(()) => 0,
                Err(e) => fail(e, 1),
            };
        }
        let session = match c.exec_start(&id, &start).await {
            Ok(s) => s,
            Err(e) => {
                let msg = e.to_string();
                return fail(msg.clone(), start_error_code(&msg));
            }
        };
        let io = IoOptions {
            stdin: a.interactive,
            tty: a.tty,
            resize: a.tty.then(|| ResizeTarget::Exec(id.clone())),
            proxy_signals_to: None,
        };
        if a.tty {
            stdio::resize(c, &ResizeTarget::Exec(id.clone())).await;
        }
        if let Err(e) = stdio::run_session(c, session, &io).await {
            eprintln!("{e}");
        }
        // The exit code lands right after the output ends.
        for _ in 0..100 {
            match c.exec_inspect(&id).await {
                Ok(i) if !i.running => {
                    let code = i.exit_code.unwrap_or(0) as i32;
                    return code;
                }
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                Err(e) => return fail(e, 1),
            }
        }
        0
    })
}

pub fn top(conn: &Conn, container: &str, ps_args: &[String]) -> i32 {
    let args = (!ps_args.is_empty()).then(|| ps_args.join(" "));
    match conn.block_on(conn.client.container_top(container, args.as_deref())) {
        Ok(t) => {
            let mut text = t.titles.join("\t") + "\n";
            for p in &t.processes {
                text.push_str(&p.join("\t"));
                text.push('\n');
            }
            print!("{}", format::align_min(&text, 20));
            0
        }
        Err(e) => fail(e, 1),
    }
}

/// `docker port CONTAINER [PRIVATE_PORT[/PROTO]]`.
pub fn port(conn: &Conn, container: &str, private: Option<&str>) -> i32 {
    let info = match conn.block_on(conn.client.container_inspect(container)) {
        Ok(i) => i,
        Err(e) => return fail(e, 1),
    };
    let ports = info.network_settings.ports.unwrap_or_default();
    let want = private.map(|p| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut lines = Vec::new();
    // docker lists them by port number, then protocol.
    let mut ports: Vec<_> = ports.into_iter().collect();
    ports.sort_by_key(|(k, _)| {
        let (n, proto) = k.split_once('/').unwrap_or((k.as_str(), ""));
        (n.parse::<u32>().unwrap_or(0), proto.to_string())
    });
    for (k, v) in &ports {
        if want.as_ref().is_some_and(|w| w != k) {
            continue;
        }
        for b in v.iter().flatten() {
            let ip = if b.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                &b.host_ip
            };
            let addr = if ip.contains(':') {
                format!("[{ip}]:{}", b.host_port)
            } else {
                format!("{ip}:{}", b.host_port)
            };
            if want.is_some() {
                lines.push(addr);
            } else {
                lines.push(format!("{k} -> {addr}"));
            }
        }
    }
    if lines.is_empty() {
        if let Some(w) = want {
            return fail(
                format!("Error: No public port '{w}' published for {container}"),
                1,
            );
        }
    }
    for l in lines {
        println!("{l}");
    }
    0
}

/// `docker ps`.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Filter output based on conditions provided.
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long, default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Show the latest created container (includes all states).
    #[arg(short, long)]
    pub latest: bool,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Display total file sizes.
    #[arg(short, long)]
    pub size: bool,
}

/// Docker's `formatter.Ellipsis`.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Go's `time.Time.String()` of a Unix time, in UTC.
pub fn go_time(unix: i64) -> String {
    let rfc = ::image::config::unix_to_rfc3339(unix, 0);
    // 2006-01-02T15:04:05Z -> 2006-01-02 15:04:05 +0000 UTC
    let t = rfc.trim_end_matches('Z').replacen('T', " ", 1);
    format!("{t} +0000 UTC")
}

/// Docker's PORTS column.
pub fn ports_column(ports: &[PortSummary]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut sorted = ports.to_vec();
    sorted.sort_by(|a, b| {
        (a.public_port.is_none(), a.private_port, &a.kind, &a.ip).cmp(&(
            b.public_port.is_none(),
            b.private_port,
            &b.kind,
            &b.ip,
        ))
    });
    for p in &sorted {
        let s = match p.public_port {
            Some(pp) => {
                let ip = if p.ip.contains(':') {
                    format!("[{}]", p.ip)
                } else {
                    p.ip.clone()
                };
                format!("{ip}:{pp}->{}/{}", p.private_port, p.kind)
            }
            None => format!("{}/{}", p.private_port, p.kind),
        };
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(", ")
}

fn ps_headers() -> std::collections::HashMap<&'static str, &'static str> {
    std::collections::HashMap::from([
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Size", "SIZE"),
        ("Names", "NAMES"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("Networks", "NETWORKS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
    ])
}

fn ps_row(s: &ContainerSummary, no_trunc: bool) -> Value {
    let id = if no_trunc {
        s.id.clone()
    } else {
        s.id.chars().take(12).collect()
    };
    let command = if no_trunc {
        format!("\"{}\"", s.command)
    } else {
        format!("\"{}\"", ellipsis(&s.command, 20))
    };
    let names: Vec<String> = s
        .names
        .iter()
        .filter(|n| n.matches('/').count() <= 1 || no_trunc)
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mounts: Vec<String> = s
        .mounts
        .iter()
        .map(|m| {
            let n = if m.name.is_empty() {
                &m.source
            } else {
                &m.name
            };
            if no_trunc {
                n.clone()
            } else {
                ellipsis(n, 15)
            }
        })
        .collect();
    let networks: Vec<String> = s
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    let size = match (s.size_rw, s.size_root_fs) {
        (Some(rw), Some(root)) => format!(
            "{} (virtual {})",
            units::human_size(rw.max(0) as u64),
            units::human_size(root.max(0) as u64)
        ),
        (Some(rw), None) => units::human_size(rw.max(0) as u64),
        _ => "0B".into(),
    };
    let image = if !no_trunc && s.image.starts_with("sha256:") {
        s.image[7..].chars().take(12).collect()
    } else {
        s.image.clone()
    };
    let local_volumes = s.mounts.iter().filter(|m| m.driver == "local").count();
    json!({
        "Command": command,
        "CreatedAt": go_time(s.created),
        "ID": id,
        "Image": image,
        "Labels": labels.join(","),
        "LocalVolumes": local_volumes.to_string(),
        "Mounts": mounts.join(","),
        "Names": names.join(","),
        "Networks": networks.join(","),
        "Ports": ports_column(&s.ports),
        "RunningFor": units::ago(s.created),
        "Size": size,
        "State": s.state,
        "Status": s.status,
    })
}

pub fn ps(conn: &Conn, a: PsArgs) -> Result<i32> {
    let limit = if a.latest {
        Some(1)
    } else if a.last > 0 {
        Some(a.last as usize)
    } else {
        None
    };
    let opts = ContainerListOptions {
        all: a.all || limit.is_some(),
        limit,
        size: a.size || a.format.as_deref().is_some_and(|f| f.contains(".Size")),
        filters: filters_of(&a.filter)?,
    };
    let list = conn.block_on(conn.client.container_list(&opts))?;
    if a.quiet {
        for s in &list {
            if a.no_trunc {
                println!("{}", s.id);
            } else {
                println!("{}", s.id.chars().take(12).collect::<String>());
            }
        }
        return Ok(0);
    }
    let rows: Vec<Value> = list.iter().map(|s| ps_row(s, a.no_trunc)).collect();
    let default = if a.size {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
    } else {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    };
    print_rows(&rows, a.format.as_deref(), default, &ps_headers())?;
    Ok(0)
}

/// Prints rows for `--format` (`json`, `table`, `table TEMPLATE`, `TEMPLATE`) or the default.
pub fn print_rows(
    rows: &[Value],
    format: Option<&str>,
    default: &str,
    headers: &std::collections::HashMap<&str, &str>,
) -> Result<()> {
    let text = match format {
        Some("json") => rows.iter().map(|r| r.to_string() + "\n").collect(),
        Some("table") | None => format::print_rows(default, rows, headers)?,
        Some(f) => format::print_rows(f, rows, headers)?,
    };
    print!("{text}");
    Ok(())
}

/// `docker inspect` / `container inspect` / `image inspect` / `volume inspect` /
/// `network inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Format output using a custom template.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Display total file sizes if the type is container.
    #[arg(short, long)]
    pub size: bool,
    /// Return JSON for specified type.
    #[arg(long = "type")]
    pub typ: Option<String>,
}

async fn inspect_one(
    conn: &Conn,
    kind: &str,
    name: &str,
    size: bool,
) -> Result<Vec<u8>, ClientError> {
    let e = api::client::escape_path(name);
    let (path, q): (String, Vec<(&str, String)>) = match kind {
        "container" => (
            format!("/containers/{e}/json"),
            if size {
                vec![("size", "1".into())]
            } else {
                vec![]
            },
        ),
        "image" => (format!("/images/{e}/json"), vec![]),
        "network" => (format!("/networks/{e}"), vec![]),
        "volume" => (format!("/volumes/{e}"), vec![]),
        "exec" => (format!("/exec/{e}/json"), vec![]),
        _ => (format!("/containers/{e}/json"), vec![]),
    };
    conn.client.get_raw(&path, &q).await.map(|b| b.to_vec())
}

/// Inspects names of one kind (`kind` None: container, then image, network, volume).
pub fn inspect(conn: &Conn, a: &InspectArgs, kind: Option<&str>) -> Result<i32> {
    let kinds: Vec<&str> = match kind.or(a.typ.as_deref()) {
        Some(k) => {
            if !["container", "image", "network", "volume", "exec"].contains(&k) {
                bail!("\"{k}\" is not a valid value for --type");
            }
            vec![k]
        }
        None => vec!["container", "image", "network", "volume"],
    };
    let mut raws: Vec<Vec<u8>> = Vec::new();
    let mut errors = Vec::new();
    conn.block_on(async {
        for n in &a.names {
            let mut found = false;
            let mut last_err = None;
            let mut hard = None;
            for k in &kinds {
                match inspect_one(conn, k, n, a.size).await {
                    Ok(b) => {
                        // docker prints volumes from its typed struct, whose fields are in
                        // alphabetical order; the other objects as the daemon sent them.
                        let b = if *k == "volume" {
                            serde_json::from_slice::<Value>(&b)
                                .ok()
                                .and_then(|v| serde_json::to_vec(&v).ok())
                                .unwrap_or(b)
                        } else {
                            b
                        };
                        raws.push(b);
                        found = true;
                        break;
                    }
                    Err(e) if e.is_not_found() => last_err = Some(e),
                    Err(e) => {
                        hard = Some(e.to_string());
                        break;
                    }
                }
            }
            if let Some(h) = hard {
                errors.push(h);
            } else if !found {
                let msg = match (kinds.len(), last_err) {
                    (1, Some(e)) => e
                        .api_error()
                        .map(|x| x.message().to_string())
                        .unwrap_or_else(|| e.to_string()),
                    _ => format!("No such object: {n}"),
                };
                errors.push(format!("Error: {msg}"));
            }
        }
        Ok::<(), anyhow::Error>(())
    })?;
    match a.format.as_deref() {
        Some(f) if f != "json" => {
            let t = format::Template::parse(f)?;
            for r in &raws {
                let v: Value = serde_json::from_slice(r)?;
                println!("{}", t.render(&v));
            }
        }
        _ => {
            let mut joined = b"[".to_vec();
            for (i, r) in raws.iter().enumerate() {
                if i > 0 {
                    joined.push(b',');
                }
                joined.extend_from_slice(r);
            }
            joined.push(b']');
            println!("{}", format::indent_json(&joined));
        }
    }
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

pub fn diff(conn: &Conn, container: &str) -> i32 {
    match conn.block_on(conn.client.container_changes(container)) {
        Ok(changes) => {
            for c in changes {
                let k = match c.kind {
                    CHANGE_ADDED => "A",
                    CHANGE_DELETED => "D",
                    _ => "C",
                };
                println!("{k} {}", c.path);
            }
            0
        }
        Err(e) => fail(e, 1),
    }
}

/// `docker commit`.
#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause container during commit.
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    pub container: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

pub fn commit(conn: &Conn, a: CommitArgs) -> i32 {
    let (repo, tag) = match &a.reference {
        Some(r) => crate::images_api::split_tag(r),
        None => (String::new(), String::new()),
    };
    let o = CommitOptions {
        container: a.container.clone(),
        repo,
        tag,
        comment: a.message.clone().unwrap_or_default(),
        author: a.author.clone().unwrap_or_default(),
        pause: a.pause,
        changes: a.change.clone(),
        config: None,
    };
    match conn.block_on(conn.client.container_commit(&o)) {
        Ok(r) => {
            println!("{}", r.id);
            0
        }
        Err(e) => fail(e, 1),
    }
}

/// `docker export [-o FILE] CONTAINER`: the container's filesystem as a tar archive.
pub fn export(conn: &Conn, container: &str, output: Option<PathBuf>) -> Result<i32> {
    if output.is_none() && stdio::stdout_is_tty() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    conn.block_on(async {
        let stream = conn.client.container_export(container).await?;
        crate::transfer::write_stream(stream, output.as_deref(), container).await?;
        Ok(0)
    })
}

/// `docker update`.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable.
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period.
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota.
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit.
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap.
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn update(conn: &Conn, a: UpdateArgs) -> Result<i32> {
    let size = |v: &Option<String>| -> Result<i64> {
        Ok(match v {
            Some(s) if s == "-1" => -1,
            Some(s) => opts::ram_in_bytes(s)?,
            None => 0,
        })
    };
    let req = ContainerUpdateRequest {
        resources: Resources {
            blkio_weight: a.blkio_weight.unwrap_or(0),
            cpu_period: a.cpu_period.unwrap_or(0),
            cpu_quota: a.cpu_quota.unwrap_or(0),
            cpu_shares: a.cpu_shares.unwrap_or(0),
            nano_cpus: match &a.cpus {
                Some(c) => opts::nano_cpus(c)?,
                None => 0,
            },
            cpuset_cpus: a.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: a.cpuset_mems.clone().unwrap_or_default(),
            memory: size(&a.memory)?,
            memory_reservation: size(&a.memory_reservation)?,
            memory_swap: size(&a.memory_swap)?,
            pids_limit: a.pids_limit,
            ..Default::default()
        },
        restart_policy: match &a.restart {
            Some(r) => Some(opts::restart_policy(r)?),
            None => None,
        },
    };
    let c = &conn.client;
    let req = &req;
    Ok(each(conn, &a.containers, |n| async move {
        let r = c.container_update(&n, req).await?;
        for w in r.warnings.unwrap_or_default() {
            eprintln!("WARNING: {w}");
        }
        Ok(())
    }))
}

/// Asks docker's confirmation question; true when the user said yes (or `force`).
pub fn confirm(force: bool, warning: &str) -> Result<bool> {
    if force {
        return Ok(true);
    }
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

pub fn prune(conn: &Conn, force: bool, filter: &[String]) -> Result<i32> {
    if !confirm(force, "WARNING! This will remove all stopped containers.")? {
        return Ok(0);
    }
    let r = conn.block_on(conn.client.container_prune(&filters_of(filter)?))?;
    let deleted = r.containers_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in &deleted {
            println!("{d}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        units::human_size4(r.space_reclaimed)
    );
    Ok(0)
}

/// Parses `--filter` items (shared by the object commands).
pub fn parse_filters(list: &[String]) -> Result<Filters> {
    filters_of(list)
}
