//! System commands through the daemon: `version`, `info`, `system df`, `system prune`,
//! `events`, in docker's output shapes.

use std::collections::HashMap;

use anyhow::Result;
use api::backend::*;
use api::Filters;
use clap::Args;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::containers::{api_time, confirm, parse_filters, print_rows};
use crate::daemon::Conn;
use crate::format;
use crate::units;

fn client_part(conn: Option<&Conn>) -> Value {
    json!({
        "Platform": {"Name": "berth"},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": api::version::CLIENT_API_VERSION.to_string(),
        "DefaultAPIVersion": api::version::CLIENT_API_VERSION.to_string(),
        "GoVersion": "rust",
        "GitCommit": "",
        "BuildTime": "",
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
        "Context": "default",
        "Host": conn.map(|c| c.client.host().url()).unwrap_or_default(),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `docker version`.
pub fn version(
    conn: Result<Conn, crate::daemon::DaemonError>,
    format: Option<&str>,
) -> Result<i32> {
    let client = client_part(conn.as_ref().ok());
    let server = match &conn {
        Ok(c) => c.block_on(c.client.version()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Some(f) = format {
        let v = json!({
            "Client": client,
            "Server": server.as_ref().ok().map(|s| serde_json::to_value(s).unwrap_or(Value::Null)),
        });
        let t = format::Template::parse(f)?;
        println!("{}", t.render(&v));
        return Ok(match server {
            Ok(_) => 0,
            Err(e) => crate::containers::fail(e, 1),
        });
    }
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       {}", api::version::CLIENT_API_VERSION);
    println!(" Go version:        rust");
    println!(" OS/Arch:           {}/{}", std::env::consts::OS, go_arch());
    println!(" Context:           default");
    match server {
        Ok(s) => {
            println!();
            println!("Server: {}", s.platform.name);
            println!(" Engine:");
            println!("  Version:          {}", s.version);
            println!(
                "  API version:      {} (minimum version {})",
                s.api_version, s.min_api_version
            );
            println!("  Go version:       {}", s.go_version);
            println!("  Git commit:       {}", s.git_commit);
            println!("  Built:            {}", s.build_time);
            println!("  OS/Arch:          {}/{}", s.os, s.arch);
            println!("  Experimental:     {}", s.experimental);
            for comp in s.components.unwrap_or_default() {
                if comp.name == "Engine" {
                    continue;
                }
                println!(" {}:", comp.name);
                println!("  Version:          {}", comp.version);
                let mut details: Vec<_> = comp.details.unwrap_or_default().into_iter().collect();
                details.sort();
                for (k, v) in details {
                    println!("  {:<18}{v}", format!("{k}:"));
                }
            }
            Ok(0)
        }
        Err(e) => {
            println!();
            Ok(crate::containers::fail(e, 1))
        }
    }
}

/// `docker info`.
pub fn info(conn: &Conn, format: Option<&str>) -> Result<i32> {
    let i = conn.block_on(conn.client.info())?;
    if let Some(f) = format {
        let v = serde_json::to_value(&i)?;
        let t = format::Template::parse(f)?;
        println!("{}", t.render(&v));
        return Ok(0);
    }
    let mut o = String::new();
    let mut line = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    line("Client:".into());
    line(format!(" Version:    {}", env!("CARGO_PKG_VERSION")));
    line(" Context:    default".into());
    line(" Debug Mode: false".into());
    line(String::new());
    line("Server:".into());
    line(format!(" Containers: {}", i.containers));
    line(format!("  Running: {}", i.containers_running));
    line(format!("  Paused: {}", i.containers_paused));
    line(format!("  Stopped: {}", i.containers_stopped));
    line(format!(" Images: {}", i.images));
    line(format!(" Server Version: {}", i.server_version));
    line(format!(" Storage Driver: {}", i.driver));
    for kv in i.driver_status.clone().unwrap_or_default() {
        if kv.len() == 2 {
            line(format!("  {}: {}", kv[0], kv[1]));
        }
    }
    line(format!(" Logging Driver: {}", i.logging_driver));
    line(format!(" Cgroup Driver: {}", i.cgroup_driver));
    line(format!(" Cgroup Version: {}", i.cgroup_version));
    if let Some(p) = i.plugins.as_object() {
        line(" Plugins:".into());
        for k in ["Volume", "Network", "Log"] {
            if let Some(v) = p.get(k).and_then(Value::as_array) {
                let names: Vec<&str> = v.iter().filter_map(Value::as_str).collect();
                line(format!("  {k}: {}", names.join(" ")));
            }
        }
    }
    let swarm = i
        .swarm
        .get("LocalNodeState")
        .and_then(Value::as_str)
        .unwrap_or("inactive");
    line(format!(" Swarm: {swarm}"));
    let mut runtimes: Vec<String> = i.runtimes.clone().unwrap_or_default().into_keys().collect();
    runtimes.sort();
    line(format!(" Runtimes: {}", runtimes.join(" ")));
    line(format!(" Default Runtime: {}", i.default_runtime));
    line(format!(" Init Binary: {}", i.init_binary));
    if let Some(so) = &i.security_options {
        line(" Security Options:".into());
        for s in so {
            let mut parts = s.split(',');
            if let Some(first) = parts.next() {
                line(format!("  {}", first.trim_start_matches("name=")));
            }
            for p in parts {
                if let Some((k, v)) = p.split_once('=') {
                    let mut k = k.to_string();
                    if let Some(c) = k.get_mut(0..1) {
                        c.make_ascii_uppercase();
                    }
                    line(format!("   {k}: {v}"));
                }
            }
        }
    }
    line(format!(" Kernel Version: {}", i.kernel_version));
    line(format!(" Operating System: {}", i.operating_system));
    line(format!(" OSType: {}", i.os_type));
    line(format!(" Architecture: {}", i.architecture));
    line(format!(" CPUs: {}", i.ncpu));
    line(format!(
        " Total Memory: {}",
        crate::transfer::bytes_size(i.mem_total as f64)
    ));
    line(format!(" Name: {}", i.name));
    line(format!(" ID: {}", i.id));
    line(format!(" Docker Root Dir: {}", i.docker_root_dir));
    line(format!(" Debug Mode: {}", i.debug));
    line(format!(" Experimental: {}", i.experimental_build));
    if let Some(r) = &i.registry_config {
        if let Some(c) = r.get("InsecureRegistryCIDRs").and_then(Value::as_array) {
            line(" Insecure Registries:".into());
            for x in c.iter().filter_map(Value::as_str) {
                line(format!("  {x}"));
            }
        }
    }
    line(format!(" Live Restore Enabled: {}", i.live_restore_enabled));
    print!("{o}");
    for w in i.warnings.unwrap_or_default() {
        eprintln!("{w}");
    }
    Ok(0)
}

/// `docker system df`.
pub fn df(conn: &Conn, verbose: bool, format: Option<&str>) -> Result<i32> {
    let d = conn.block_on(conn.client.disk_usage())?;
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
    let images = d.images.clone().unwrap_or_default();
    let containers = d.containers.clone().unwrap_or_default();
    let volumes = d.volumes.clone().unwrap_or_default();
    let cache = d.build_cache.clone().unwrap_or_default();
    if verbose {
        println!("Images space usage:\n");
        for i in &images {
            let tags = i
                .get("RepoTags")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            println!(
                "{}\t{}\t{}",
                tags.first()
                    .and_then(Value::as_str)
                    .unwrap_or("<none>:<none>"),
                i.get("Id").and_then(Value::as_str).unwrap_or(""),
                units::human_size4(num(i, "Size").max(0) as u64)
            );
        }
    }
    let active_images = images.iter().filter(|i| num(i, "Containers") > 0).count();
    let img_size = d.layers_size.max(0) as u64;
    let img_used: u64 = images
        .iter()
        .filter(|i| num(i, "Containers") > 0)
        .map(|i| (num(i, "Size") - num(i, "SharedSize").max(0)).max(0) as u64)
        .sum();
    let img_reclaim = img_size.saturating_sub(img_used);
    let running = |c: &Value| c.get("State").and_then(Value::as_str) == Some("running");
    let ctr_size: u64 = containers
        .iter()
        .map(|c| num(c, "SizeRw").max(0) as u64)
        .sum();
    let ctr_reclaim: u64 = containers
        .iter()
        .filter(|c| !running(c))
        .map(|c| num(c, "SizeRw").max(0) as u64)
        .sum();
    let usage = |v: &Value, k: &str| {
        v.get("UsageData")
            .and_then(|u| u.get(k))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let vol_size: u64 = volumes.iter().map(|v| usage(v, "Size").max(0) as u64).sum();
    let vol_active = volumes.iter().filter(|v| usage(v, "RefCount") > 0).count();
    let vol_reclaim: u64 = volumes
        .iter()
        .filter(|v| usage(v, "RefCount") == 0)
        .map(|v| usage(v, "Size").max(0) as u64)
        .sum();
    let cache_size: u64 = cache.iter().map(|c| num(c, "Size").max(0) as u64).sum();
    let pct = |r: u64, t: u64| {
        if t > 0 {
            format!("{} ({}%)", units::human_size4(r), r * 100 / t)
        } else {
            units::human_size4(r)
        }
    };
    let rows = vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(), "Active": active_images.to_string(),
               "Size": units::human_size4(img_size), "Reclaimable": pct(img_reclaim, img_size)}),
        json!({"Type": "Containers", "TotalCount": containers.len().to_string(),
               "Active": containers.iter().filter(|c| running(c)).count().to_string(),
               "Size": units::human_size4(ctr_size), "Reclaimable": pct(ctr_reclaim, ctr_size)}),
        json!({"Type": "Local Volumes", "TotalCount": volumes.len().to_string(), "Active": vol_active.to_string(),
               "Size": units::human_size4(vol_size), "Reclaimable": pct(vol_reclaim, vol_size)}),
        json!({"Type": "Build Cache", "TotalCount": cache.len().to_string(), "Active": "0",
               "Size": units::human_size4(cache_size), "Reclaimable": units::human_size4(cache_size)}),
    ];
    let headers = HashMap::from([
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ]);
    print_rows(
        &rows,
        format,
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        &headers,
    )?;
    Ok(0)
}

/// `docker system prune`.
#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>").
    #[arg(long)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Prune anonymous volumes.
    #[arg(long)]
    pub volumes: bool,
}

pub fn system_prune(conn: &Conn, a: SystemPruneArgs) -> Result<i32> {
    let mut warning = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
    if a.volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    if a.all {
        warning.push_str("  - all images without at least one container associated to them\n");
    } else {
        warning.push_str("  - all dangling images\n");
    }
    warning.push_str("  - unused build cache\n");
    if !confirm(a.force, &warning)? {
        return Ok(0);
    }
    let f = parse_filters(&a.filter)?;
    let c = &conn.client;
    let mut reclaimed = 0u64;
    let mut code = 0;
    conn.block_on(async {
        match c.container_prune(&f).await {
            Ok(r) => {
                reclaimed += r.space_reclaimed;
                let d = r.containers_deleted.unwrap_or_default();
                if !d.is_empty() {
                    println!("Deleted Containers:");
                    for x in d {
                        println!("{x}");
                    }
                    println!();
                }
            }
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
        match c.network_prune(&f).await {
            Ok(r) => {
                let d = r.networks_deleted.unwrap_or_default();
                if !d.is_empty() {
                    println!("Deleted Networks:");
                    for x in d {
                        println!("{x}");
                    }
                    println!();
                }
            }
            Err(e) if e.status() == Some(501) => {}
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
        if a.volumes {
            match c.volume_prune(&f).await {
                Ok(r) => {
                    reclaimed += r.space_reclaimed;
                    let d = r.volumes_deleted.unwrap_or_default();
                    if !d.is_empty() {
                        println!("Deleted Volumes:");
                        for x in d {
                            println!("{x}");
                        }
                        println!();
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    code = 1;
                }
            }
        }
        let mut fi = f.clone();
        if a.all {
            fi.add("dangling", "false");
        }
        match c.image_prune(&fi).await {
            Ok(r) => {
                reclaimed += r.space_reclaimed;
                let d = r.images_deleted.unwrap_or_default();
                if !d.is_empty() {
                    println!("Deleted Images:");
                    for i in d {
                        match (i.untagged, i.deleted) {
                            (Some(u), _) => println!("untagged: {u}"),
                            (None, Some(x)) => println!("deleted: {x}"),
                            _ => {}
                        }
                    }
                    println!();
                }
            }
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    });
    println!("Total reclaimed space: {}", units::human_size4(reclaimed));
    Ok(code)
}

/// `docker events`.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided.
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
    /// Show all events created since timestamp.
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp.
    #[arg(long)]
    pub until: Option<String>,
}

/// Unix nanoseconds as docker's `RFC3339NanoFixed`, in UTC.
fn rfc3339_nano(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let base = image::config::unix_to_rfc3339(secs, 0);
    let base = base.trim_end_matches('Z');
    let base = base.split('.').next().unwrap_or(base);
    // docker prints a fixed nine digits (jsonmessage.RFC3339NanoFixed).
    format!("{base}.{frac:09}Z")
}

pub fn events(conn: &Conn, a: EventsArgs) -> Result<i32> {
    let opts = EventsOptions {
        since: api_time(&a.since)?,
        until: api_time(&a.until)?,
        filters: if a.filter.is_empty() {
            Filters::new()
        } else {
            parse_filters(&a.filter)?
        },
    };
    let tmpl = match a.format.as_deref() {
        Some("json") => Some(format::Template::parse("{{json .}}")?),
        Some(f) => Some(format::Template::parse(f)?),
        None => None,
    };
    conn.block_on(async {
        let mut s = conn.client.events(&opts).await?;
        while let Some(ev) = s.next().await {
            let ev = ev?;
            let text = match &tmpl {
                Some(t) => t.render(&serde_json::to_value(&ev)?),
                None => {
                    let attrs: Vec<String> = ev
                        .actor
                        .attributes
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    let nanos = if ev.time_nano != 0 {
                        ev.time_nano
                    } else {
                        ev.time * 1_000_000_000
                    };
                    let mut l = format!(
                        "{} {} {} {}",
                        rfc3339_nano(nanos),
                        ev.kind,
                        ev.action,
                        ev.actor.id
                    );
                    if !attrs.is_empty() {
                        l.push_str(&format!(" ({})", attrs.join(", ")));
                    }
                    l
                }
            };
            println!("{text}");
            use std::io::Write;
            let _ = std::io::stdout().flush();
        }
        Ok(0)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_times() {
        assert_eq!(
            super::rfc3339_nano(1_500_000_000),
            "1970-01-01T00:00:01.500000000Z"
        );
        assert_eq!(
            super::rfc3339_nano(86_400_000_000_000),
            "1970-01-02T00:00:00.000000000Z"
        );
    }
}
