//! `GET /version` and `GET /info`.

use api::backend::ApiResult;
use api::types::{ComponentVersion, PlatformName, SystemInfo, SystemVersion};

use super::Inner;

fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn arch() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        a => a.into(),
    }
}

/// The engine's version.
pub fn version() -> ApiResult<SystemVersion> {
    let v = env!("CARGO_PKG_VERSION").to_string();
    Ok(SystemVersion {
        platform: PlatformName {
            name: "berth".into(),
        },
        components: Some(vec![ComponentVersion {
            name: "Engine".into(),
            version: v.clone(),
            details: Some(
                [
                    ("ApiVersion", api::version::MAX_API_VERSION.to_string()),
                    ("MinAPIVersion", api::version::MIN_API_VERSION.to_string()),
                    ("Os", "linux".to_string()),
                    ("Arch", arch()),
                    ("KernelVersion", kernel()),
                    ("GitCommit", String::new()),
                    ("GoVersion", "n/a (berth is written in Rust)".to_string()),
                    ("Experimental", "false".to_string()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            ),
        }]),
        version: v,
        os: "linux".into(),
        arch: arch(),
        kernel_version: kernel(),
        go_version: "n/a (berth is written in Rust)".into(),
        ..Default::default()
    })
}

/// The daemon's information.
pub fn info(inner: &Inner) -> ApiResult<SystemInfo> {
    let (mut running, mut paused, mut stopped, total) = (0, 0, 0, 0i64);
    let total = {
        let m = inner
            .containers
            .lock()
            .map_err(|_| super::containers::poisoned())?;
        for c in m.values() {
            match c.state.status.as_str() {
                "running" => running += 1,
                "paused" => paused += 1,
                _ => stopped += 1,
            }
        }
        total + m.len() as i64
    };
    let images = inner.images.list().map(|l| l.len() as i64).unwrap_or(0);
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get() as i64)
        .unwrap_or(1);
    let mem = nix::sys::sysinfo::sysinfo()
        .map(|s| s.ram_total() as i64)
        .unwrap_or(0);
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    Ok(SystemInfo {
        id: host.clone(),
        containers: total,
        containers_running: running,
        containers_paused: paused,
        containers_stopped: stopped,
        images,
        driver: "overlay2".into(),
        docker_root_dir: inner.opts.data_root.display().to_string(),
        memory_limit: true,
        cpu_cfs_period: true,
        cpu_cfs_quota: true,
        cpu_shares: true,
        cpu_set: true,
        pids_limit: true,
        debug: inner.opts.log_level == "debug",
        logging_driver: "json-file".into(),
        cgroup_driver: "cgroupfs".into(),
        cgroup_version: if v2 { "2".into() } else { "1".into() },
        kernel_version: kernel(),
        operating_system: "linux".into(),
        os_type: "linux".into(),
        architecture: std::env::consts::ARCH.into(),
        ncpu,
        mem_total: mem,
        name: host,
        server_version: env!("CARGO_PKG_VERSION").into(),
        default_runtime: inner.opts.default_runtime.clone(),
        runtimes: Some(
            inner
                .opts
                .runtimes
                .iter()
                .map(|(k, r)| {
                    let path = if r.path.is_empty() {
                        inner.exe.to_string_lossy().into_owned()
                    } else {
                        r.path.clone()
                    };
                    let mut v = serde_json::json!({ "path": path });
                    if !r.runtime_args.is_empty() {
                        v["runtimeArgs"] = serde_json::json!(r.runtime_args);
                    }
                    (k.clone(), v)
                })
                .collect(),
        ),
        live_restore_enabled: true,
        security_options: Some(vec!["name=seccomp,profile=builtin".into()]),
        warnings: Some(vec![
            "WARNING: berth has no bridge networking yet: containers get a loopback-only network"
                .into(),
        ]),
        system_time: ::image::config::unix_to_rfc3339(api::time::Timestamp::now().seconds, 0),
        n_events_listener: inner.bus.listeners() as i64,
        ..Default::default()
    })
}
