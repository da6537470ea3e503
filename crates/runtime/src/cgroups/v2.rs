//! cgroup v2: the unified hierarchy.
//!
//! This file owns creating the cgroup (enabling the available controllers in every
//! ancestor's `cgroup.subtree_control` on the way down, as runc does), writing
//! `linux.resources` into the v2 files the way runc's `fs2` driver does (including the
//! shares → weight and swap conversions), `linux.resources.unified`, `cgroup.freeze`, and v2
//! statistics. Device rules go to `devices_bpf.rs`.

use std::path::Path;
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::stats::{self, Stats};
use super::{
    check_memory_value, devices, devices_bpf, limit_str, mkdir, read_opt, read_text, read_u64_opt,
    v1, write, write_limit, Error, Hierarchy, Manager, Result, Version,
};

fn cgroup(m: &Manager) -> Result<&Hierarchy> {
    m.unified.as_ref().ok_or_else(|| {
        Error::NoHierarchy("this cgroup v2 manager has no unified hierarchy recorded".into())
    })
}

/// runc's conversion of v1 CPU shares (2..=262144) to a v2 weight (1..=10000).
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// runc's conversion of a v1 blkio weight (10..=1000) to a v2 `io.weight` (1..=10000).
pub(crate) fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// The value for `memory.swap.max` given OCI `swap` (memory + swap) and `limit`: 0 means
/// leave it alone, -1 unlimited.
pub(crate) fn swap_to_v2(swap: i64, limit: i64) -> Result<i64> {
    let field = "linux.resources.memory.swap".to_string();
    // Unlimited memory with swap unspecified: unlimited swap too (as on v1).
    if limit == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if limit == 0 || limit == -1 {
        return Err(Error::InvalidValue {
            field,
            reason: "a swap limit needs a memory limit too (swap is memory+swap on cgroup v2 \
                     as well)"
                .into(),
        });
    }
    if limit < 0 || swap < 0 {
        return Err(Error::InvalidValue {
            field,
            reason: format!("invalid values swap={swap}, limit={limit}"),
        });
    }
    if swap < limit {
        return Err(Error::InvalidValue {
            field,
            reason: format!(
                "memory+swap limit {swap} is below the memory limit {limit}; it must be >= \
                 the memory limit"
            ),
        });
    }
    Ok(swap - limit)
}

/// Creates the cgroup, enabling in each ancestor's `cgroup.subtree_control` the controllers
/// it has, so they reach the new cgroup. Failures to enable are ignored (a controller may
/// be in use elsewhere); a limit that then cannot be written says so.
fn create(m: &Manager) -> Result<()> {
    let h = cgroup(m)?;
    let rel = h.dir.strip_prefix(&h.mount_point).unwrap_or(Path::new(""));
    let mut cur = h.mount_point.clone();
    for comp in rel.components() {
        enable_controllers(&cur);
        cur.push(comp);
        mkdir(&cur)?;
    }
    Ok(())
}

fn enable_controllers(dir: &Path) {
    let Ok(Some(available)) = read_opt(dir, "cgroup.controllers") else {
        return;
    };
    let enabled = read_opt(dir, "cgroup.subtree_control")
        .ok()
        .flatten()
        .unwrap_or_default();
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    let missing: Vec<String> = available
        .split_whitespace()
        .filter(|c| !enabled.contains(c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return;
    }
    if write(dir, "cgroup.subtree_control", &missing.join(" ")).is_err() {
        for c in &missing {
            let _ = write(dir, "cgroup.subtree_control", c);
        }
    }
}

pub(super) fn apply(m: &Manager, pid: i32) -> Result<()> {
    create(m)?;
    write(&cgroup(m)?.dir, "cgroup.procs", &pid.to_string())
}

/// The controllers available to this cgroup, for error messages.
fn available(d: &Path) -> String {
    match read_opt(d, "cgroup.controllers") {
        Ok(Some(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => "none".to_string(),
    }
}

pub(super) fn set(m: &Manager, r: &LinuxResources) -> Result<()> {
    create(m)?;
    let d = cgroup(m)?.dir.as_path();
    if let Some(pids) = r.pids() {
        let limit = pids.limit();
        let value = if limit > 0 {
            limit.to_string()
        } else {
            "max".to_string()
        };
        write_limit(d, "pids.max", &value, "pids", "linux.resources.pids.limit")?;
    }
    if let Some(mem) = r.memory() {
        set_memory(d, mem)?;
    }
    if let Some(bio) = r.block_io() {
        set_io(d, bio)?;
    }
    if let Some(cpu) = r.cpu() {
        set_cpu(d, cpu)?;
    }
    if let Some(limits) = r.hugepage_limits() {
        for l in limits {
            let file = format!("hugetlb.{}.max", l.page_size());
            write_limit(
                d,
                &file,
                &limit_str(l.limit()),
                "hugetlb",
                "linux.resources.hugepageLimits",
            )?;
        }
    }
    if let Some(rdma) = r.rdma() {
        let mut names: Vec<&String> = rdma.keys().collect();
        names.sort();
        for name in names {
            if let Some(line) = v1::rdma_line(name, &rdma[name]) {
                write_limit(d, "rdma.max", &line, "rdma", "linux.resources.rdma")?;
            }
        }
    }
    if let Some(net) = r.network() {
        if net.class_id().is_some() || net.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(Error::Unsupported {
                what: "linux.resources.network (net_cls classID / net_prio priorities)".into(),
                version: Version::V2,
                hint: "cgroup v2 has no net_cls/net_prio controllers; classify traffic with \
                       nftables/tc cgroup matching instead, or drop the setting"
                    .into(),
            });
        }
    }
    if let Some(list) = r.devices() {
        let rules = devices::normalize(list)?;
        devices_bpf::apply(d, &rules)?;
    }
    if let Some(unified) = r.unified() {
        set_unified(d, unified)?;
    }
    Ok(())
}

fn set_memory(d: &Path, mem: &LinuxMemory) -> Result<()> {
    let limit = mem.limit().unwrap_or(0);
    let swap = mem.swap().unwrap_or(0);
    let reservation = mem.reservation().unwrap_or(0);
    check_memory_value("limit", limit)?;
    check_memory_value("swap", swap)?;
    check_memory_value("reservation", reservation)?;
    if limit == 0 && swap == 0 && reservation == 0 {
        // Swappiness and the OOM-killer switch have no v2 files; runc ignores them too.
        return Ok(());
    }
    if mem.check_before_update() == Some(true) && limit > 0 {
        if let Some(current) = read_u64_opt(d, "memory.current")? {
            if current > limit as u64 {
                return Err(Error::InvalidValue {
                    field: "linux.resources.memory.limit".into(),
                    reason: format!(
                        "{limit} is below the current usage {current} (checkBeforeUpdate is set)"
                    ),
                });
            }
        }
    }
    let swap_v2 = swap_to_v2(swap, limit)?;
    // OCI swap == memory limit means "no swap": write 0 explicitly.
    let swap_value = match swap_v2 {
        0 if swap > 0 => Some("0".to_string()),
        0 => None,
        v => Some(limit_str(v)),
    };
    if let Some(v) = swap_value {
        match write(d, "memory.swap.max", &v) {
            Ok(()) => {}
            // No swap accounting: "no swap" and "unlimited swap" are what we have anyway.
            Err(Error::Write { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && (v == "max" || v == "0") => {}
            Err(Error::Write { source, path, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Err(Error::ControllerMissing {
                    controller: "memory".into(),
                    field: "linux.resources.memory.swap".into(),
                    detail: format!(
                        "{} does not exist (no memory controller for this cgroup, or the \
                         kernel does not account swap); available controllers: {}",
                        path.display(),
                        available(d)
                    ),
                });
            }
            Err(e) => return Err(e),
        }
    }
    if limit != 0 {
        write_limit(
            d,
            "memory.max",
            &limit_str(limit),
            "memory",
            "linux.resources.memory.limit",
        )?;
    }
    if reservation != 0 {
        write_limit(
            d,
            "memory.low",
            &limit_str(reservation),
            "memory",
            "linux.resources.memory.reservation",
        )?;
    }
    // Keep the kernel's default of OOM-killing single processes rather than the whole
    // cgroup (what containers get on v1 and from runc).
    if d.join("memory.oom.group").exists() {
        write(d, "memory.oom.group", "0")?;
    }
    Ok(())
}

fn set_cpu(d: &Path, cpu: &LinuxCpu) -> Result<()> {
    if cpu.realtime_runtime().unwrap_or(0) != 0 || cpu.realtime_period().unwrap_or(0) != 0 {
        return Err(Error::Unsupported {
            what: "linux.resources.cpu.realtimeRuntime/realtimePeriod".into(),
            version: Version::V2,
            hint: "cgroup v2 has no realtime CPU bandwidth; drop the realtime settings".into(),
        });
    }
    let shares = cpu.shares().unwrap_or(0);
    if shares != 0 {
        let w = shares_to_weight(shares).to_string();
        write_limit(d, "cpu.weight", &w, "cpu", "linux.resources.cpu.shares")?;
    }
    if let Some(idle) = cpu.idle() {
        write_limit(
            d,
            "cpu.idle",
            &idle.to_string(),
            "cpu",
            "linux.resources.cpu.idle",
        )?;
    }
    let quota = cpu.quota().unwrap_or(0);
    let period = cpu.period().unwrap_or(0);
    if quota != 0 || period != 0 {
        let mut value = if quota > 0 {
            quota.to_string()
        } else {
            "max".to_string()
        };
        if period != 0 {
            value.push(' ');
            value.push_str(&period.to_string());
        }
        write_limit(
            d,
            "cpu.max",
            &value,
            "cpu",
            "linux.resources.cpu.quota/period",
        )?;
    }
    if let Some(burst) = cpu.burst() {
        write_limit(
            d,
            "cpu.max.burst",
            &burst.to_string(),
            "cpu",
            "linux.resources.cpu.burst",
        )?;
    }
    for (file, value, field) in [
        ("cpuset.cpus", cpu.cpus(), "linux.resources.cpu.cpus"),
        ("cpuset.mems", cpu.mems(), "linux.resources.cpu.mems"),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            write_limit(d, file, v, "cpuset", field)?;
        }
    }
    Ok(())
}

fn set_io(d: &Path, b: &LinuxBlockIo) -> Result<()> {
    let field = "linux.resources.blockIO";
    let bfq = d.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        if bfq {
            write(d, "io.bfq.weight", &w.to_string())?;
        } else {
            let v = blkio_weight_to_io_weight(w).to_string();
            write_limit(d, "io.weight", &v, "io", &format!("{field}.weight"))?;
        }
    }
    // leafWeight has no v2 counterpart; ignored like runc.
    for wd in b.weight_device().iter().flatten() {
        let Some(w) = wd.weight().filter(|&w| w != 0) else {
            continue;
        };
        let (file, value) = if bfq {
            ("io.bfq.weight", u64::from(w))
        } else {
            ("io.weight", blkio_weight_to_io_weight(w))
        };
        let line = format!("{}:{} {value}", wd.major(), wd.minor());
        write_limit(d, file, &line, "io", &format!("{field}.weightDevice"))?;
    }
    for (key, list, name) in [
        (
            "rbps",
            b.throttle_read_bps_device(),
            "throttleReadBpsDevice",
        ),
        (
            "wbps",
            b.throttle_write_bps_device(),
            "throttleWriteBpsDevice",
        ),
        (
            "riops",
            b.throttle_read_iops_device(),
            "throttleReadIOPSDevice",
        ),
        (
            "wiops",
            b.throttle_write_iops_device(),
            "throttleWriteIOPSDevice",
        ),
    ] {
        for t in list.iter().flatten() {
            // A rate of 0 removes the limit, as on v1.
            let rate = if t.rate() == 0 {
                "max".to_string()
            } else {
                t.rate().to_string()
            };
            let line = format!("{}:{} {key}={rate}", t.major(), t.minor());
            write_limit(d, "io.max", &line, "io", &format!("{field}.{name}"))?;
        }
    }
    Ok(())
}

fn set_unified(d: &Path, unified: &std::collections::HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<&String> = unified.keys().collect();
    keys.sort();
    for key in keys {
        let field = format!("linux.resources.unified[{key:?}]");
        if key.is_empty() || key.contains('/') || key.contains('\0') || key == "." || key == ".." {
            return Err(Error::InvalidValue {
                field,
                reason: "a unified key must be a plain cgroup file name such as \"memory.high\""
                    .into(),
            });
        }
        let Some((controller, _)) = key.split_once('.') else {
            return Err(Error::InvalidValue {
                field,
                reason: "a unified key must have the form CONTROLLER.PARAMETER".into(),
            });
        };
        let value = &unified[key];
        match write(d, key, value) {
            Ok(()) => {}
            Err(Error::Write { source, path, .. })
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                let avail = available(d);
                let detail = if controller != "cgroup"
                    && !avail.split_whitespace().any(|c| c == controller)
                {
                    format!(
                        "{} cannot be written ({source}); the controller is not enabled for \
                         this cgroup (available: {avail})",
                        path.display()
                    )
                } else {
                    format!(
                        "{} cannot be written ({source}): no such cgroup file",
                        path.display()
                    )
                };
                return Err(Error::ControllerMissing {
                    controller: controller.to_string(),
                    field,
                    detail,
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads `frozen` from `cgroup.events`; `None` on kernels without it.
fn frozen_event(d: &Path) -> Result<Option<bool>> {
    let Some(text) = read_opt(d, "cgroup.events")? else {
        return Ok(None);
    };
    let map = stats::parse_keyed(&d.join("cgroup.events"), &text)?;
    Ok(map.get("frozen").map(|v| *v == 1))
}

fn set_frozen(m: &Manager, frozen: bool) -> Result<()> {
    let action = if frozen { "freeze" } else { "thaw" };
    let d = cgroup(m)?.dir.as_path();
    match write(d, "cgroup.freeze", if frozen { "1" } else { "0" }) {
        Err(Error::Write { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Freeze {
                action,
                path: d.to_path_buf(),
                reason: "cgroup.freeze does not exist (the cgroup is missing, or the kernel is \
                         older than 5.2)"
                    .into(),
            });
        }
        other => other?,
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut delay = Duration::from_micros(200);
    loop {
        match frozen_event(d)? {
            Some(state) if state == frozen => return Ok(()),
            None => return Ok(()), // no cgroup.events: nothing to wait for
            Some(_) => {}
        }
        if Instant::now() > deadline {
            if frozen {
                let _ = write(d, "cgroup.freeze", "0");
            }
            return Err(Error::Freeze {
                action,
                path: d.to_path_buf(),
                reason: format!(
                    "cgroup.events did not report frozen {} within 5 s{}",
                    u8::from(frozen),
                    if frozen {
                        "; thawed it again"
                    } else {
                        " (is a parent cgroup frozen?)"
                    }
                ),
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
}

pub(super) fn freeze(m: &Manager) -> Result<()> {
    set_frozen(m, true)
}

pub(super) fn thaw(m: &Manager) -> Result<()> {
    set_frozen(m, false)
}

pub(super) fn is_frozen(m: &Manager) -> Result<bool> {
    let d = cgroup(m)?.dir.as_path();
    match frozen_event(d)? {
        Some(f) => Ok(f),
        None => Ok(read_opt(d, "cgroup.freeze")?.is_some_and(|s| s.trim() == "1")),
    }
}

fn u64_or_zero(d: &Path, file: &str) -> Result<u64> {
    Ok(read_u64_opt(d, file)?.unwrap_or(0))
}

pub(super) fn stats(m: &Manager) -> Result<Stats> {
    let mut s = Stats::default();
    let d = cgroup(m)?.dir.as_path();
    if !d.is_dir() {
        return Ok(s);
    }
    if let Some(t) = read_opt(d, "cpu.stat")? {
        let map = stats::parse_keyed(&d.join("cpu.stat"), &t)?;
        let us = |k: &str| map.get(k).copied().unwrap_or(0).saturating_mul(1000);
        s.cpu.usage.total = us("usage_usec");
        s.cpu.usage.user = us("user_usec");
        s.cpu.usage.kernel = us("system_usec");
        s.cpu.throttling.periods = map.get("nr_periods").copied().unwrap_or(0);
        s.cpu.throttling.throttled_periods = map.get("nr_throttled").copied().unwrap_or(0);
        s.cpu.throttling.throttled_time = us("throttled_usec");
    }
    for (file, list) in [
        ("cpuset.cpus.effective", &mut s.cpuset.cpus),
        ("cpuset.mems.effective", &mut s.cpuset.mems),
    ] {
        if let Some(t) = read_opt(d, file)? {
            *list = stats::parse_cpu_list(&d.join(file), &t)?;
        }
    }
    if let Some(usage) = read_u64_opt(d, "memory.current")? {
        let mem = &mut s.memory;
        mem.usage.usage = usage;
        mem.usage.limit = u64_or_zero(d, "memory.max")?;
        mem.usage.max = u64_or_zero(d, "memory.peak")?;
        if let Some(t) = read_opt(d, "memory.events")? {
            let ev = stats::parse_keyed(&d.join("memory.events"), &t)?;
            mem.usage.failcnt = ev.get("max").copied().unwrap_or(0);
        }
        if let Some(swap) = read_u64_opt(d, "memory.swap.current")? {
            // v1 reports memory+swap; do the same.
            mem.swap.usage = swap.saturating_add(usage);
            let swap_max = u64_or_zero(d, "memory.swap.max")?;
            mem.swap.limit = if swap_max == u64::MAX || mem.usage.limit == u64::MAX {
                u64::MAX
            } else {
                swap_max.saturating_add(mem.usage.limit)
            };
            mem.swap.max = u64_or_zero(d, "memory.swap.peak")?;
        }
        if let Some(t) = read_opt(d, "memory.stat")? {
            mem.raw = stats::parse_keyed(&d.join("memory.stat"), &t)?;
            mem.cache = mem.raw.get("file").copied().unwrap_or(0);
        }
    }
    if let Some(current) = read_u64_opt(d, "pids.current")? {
        s.pids.current = current;
        let limit = u64_or_zero(d, "pids.max")?;
        s.pids.limit = if limit == u64::MAX { 0 } else { limit };
    }
    if let Some(t) = read_opt(d, "io.stat")? {
        s.blkio = stats::parse_io_stat(&d.join("io.stat"), &t)?;
    }
    if read_text(&d.join("cgroup.controllers"))
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "hugetlb"))
    {
        v1::hugetlb_stats(d, &mut s, true)?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::super::tests::TempDir;
    use super::*;
    use std::fs;

    #[test]
    fn conversions() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(1 << 40), 10_000);
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(swap_to_v2(0, 0).unwrap(), 0);
        assert_eq!(swap_to_v2(0, -1).unwrap(), -1);
        assert_eq!(swap_to_v2(-1, 100).unwrap(), -1);
        assert_eq!(swap_to_v2(300, 100).unwrap(), 200);
        assert_eq!(swap_to_v2(100, 100).unwrap(), 0);
        assert!(swap_to_v2(50, 100).is_err());
        assert!(swap_to_v2(100, 0).is_err());
        assert!(swap_to_v2(100, -1).is_err());
        assert_eq!(limit_str(-1), "max");
        assert_eq!(limit_str(5), "5");
    }

    const FILES: &[&str] = &[
        "cgroup.procs",
        "cgroup.controllers",
        "cgroup.freeze",
        "memory.max",
        "memory.low",
        "memory.swap.max",
        "cpu.weight",
        "cpu.max",
        "cpuset.cpus",
        "cpuset.mems",
        "pids.max",
        "io.weight",
        "io.max",
        "hugetlb.2MB.max",
        "memory.high",
        "memory.oom.group",
    ];

    fn fake_v2(files: &[&str]) -> TempDir {
        let t = TempDir::new("v2");
        fs::write(t.0.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        fs::write(t.0.join("cgroup.subtree_control"), "").unwrap();
        let cg = t.0.join("a/c");
        fs::create_dir_all(&cg).unwrap();
        fs::write(t.0.join("a/cgroup.controllers"), "cpu memory pids\n").unwrap();
        fs::write(t.0.join("a/cgroup.subtree_control"), "memory\n").unwrap();
        for f in files {
            fs::write(cg.join(f), "").unwrap();
        }
        t
    }

    fn read(t: &TempDir, f: &str) -> String {
        fs::read_to_string(t.0.join("a/c").join(f)).unwrap()
    }

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn writes_limits_into_fake_root() {
        let t = fake_v2(FILES);
        let m = Manager::with_root(Version::V2, &t.0, "/a/c", "x", false).unwrap();
        m.set(&resources(
            r#"{"memory":{"limit":1048576,"swap":3145728,"reservation":524288,"swappiness":5,
                          "disableOOMKiller":true},
                "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-1","mems":"0"},
                "pids":{"limit":0},
                "blockIO":{"weight":500,"throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":0}]},
                "hugepageLimits":[{"pageSize":"2MB","limit":-1}],
                "unified":{"memory.high":"2000000"}}"#,
        ))
        .unwrap();
        assert_eq!(read(&t, "memory.max"), "1048576");
        assert_eq!(read(&t, "memory.swap.max"), "2097152");
        assert_eq!(read(&t, "memory.low"), "524288");
        assert_eq!(read(&t, "memory.oom.group"), "0");
        assert_eq!(read(&t, "cpu.weight"), "39");
        assert_eq!(read(&t, "cpu.max"), "50000 100000");
        assert_eq!(read(&t, "cpuset.cpus"), "0-1");
        assert_eq!(read(&t, "cpuset.mems"), "0");
        assert_eq!(read(&t, "pids.max"), "max");
        assert_eq!(read(&t, "io.weight"), "4950");
        assert_eq!(read(&t, "io.max"), "8:0 wiops=max");
        assert_eq!(read(&t, "hugetlb.2MB.max"), "max");
        assert_eq!(read(&t, "memory.high"), "2000000");
        // Controllers were enabled in the ancestors (root: all; a: the missing ones).
        assert_eq!(
            fs::read_to_string(t.0.join("cgroup.subtree_control")).unwrap(),
            "+cpu +memory +pids"
        );
        assert_eq!(
            fs::read_to_string(t.0.join("a/cgroup.subtree_control")).unwrap(),
            "+cpu +pids"
        );

        // Quota alone: "max period" forms.
        m.set(&resources(r#"{"cpu":{"quota":-1}}"#)).unwrap();
        assert_eq!(read(&t, "cpu.max"), "max");
        m.set(&resources(r#"{"cpu":{"period":20000}}"#)).unwrap();
        assert_eq!(read(&t, "cpu.max"), "max 20000");
        // swap == limit disables swap.
        m.set(&resources(r#"{"memory":{"limit":100,"swap":100}}"#))
            .unwrap();
        assert_eq!(read(&t, "memory.swap.max"), "0");
        m.set(&resources(r#"{"memory":{"limit":-1}}"#)).unwrap();
        assert_eq!(read(&t, "memory.max"), "max");
        assert_eq!(read(&t, "memory.swap.max"), "max");

        m.apply(4321).unwrap();
        assert_eq!(read(&t, "cgroup.procs"), "4321");
    }

    #[test]
    fn missing_files_are_clear_errors() {
        let t = fake_v2(&["cgroup.procs", "memory.max", "cgroup.controllers"]);
        let m = Manager::with_root(Version::V2, &t.0, "/a/c", "x", false).unwrap();
        let e = m.set(&resources(r#"{"pids":{"limit":5}}"#)).unwrap_err();
        assert!(
            matches!(&e, Error::ControllerMissing { controller, field, .. }
            if controller == "pids" && field == "linux.resources.pids.limit"),
            "{e}"
        );
        // No swap accounting: explicit swap is an error, unlimited/none is fine.
        let e = m
            .set(&resources(r#"{"memory":{"limit":100,"swap":300}}"#))
            .unwrap_err();
        assert!(
            matches!(&e, Error::ControllerMissing { field, .. } if field.ends_with("swap")),
            "{e}"
        );
        m.set(&resources(r#"{"memory":{"limit":100,"swap":100}}"#))
            .unwrap();
        m.set(&resources(r#"{"memory":{"limit":100,"swap":-1}}"#))
            .unwrap();
        let e = m.set(&resources(r#"{"memory":{"limit":-2}}"#)).unwrap_err();
        assert!(matches!(e, Error::InvalidValue { .. }), "{e}");
        let e = m
            .set(&resources(r#"{"cpu":{"realtimeRuntime":5}}"#))
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Unsupported {
                    version: Version::V2,
                    ..
                }
            ),
            "{e}"
        );
        let e = m
            .set(&resources(r#"{"network":{"classID":5}}"#))
            .unwrap_err();
        assert!(matches!(e, Error::Unsupported { .. }), "{e}");
        let e = m
            .set(&resources(r#"{"unified":{"io.max":"x"}}"#))
            .unwrap_err();
        assert!(e.to_string().contains("not enabled"), "{e}");
        let e = m
            .set(&resources(r#"{"unified":{"../x.y":"1"}}"#))
            .unwrap_err();
        assert!(matches!(e, Error::InvalidValue { .. }), "{e}");
        let e = m
            .set(&resources(r#"{"unified":{"nodot":"1"}}"#))
            .unwrap_err();
        assert!(matches!(e, Error::InvalidValue { .. }), "{e}");
    }

    #[test]
    fn stats_from_fake_files() {
        let t = fake_v2(&[]);
        let c = |f: &str, v: &str| fs::write(t.0.join("a/c").join(f), v).unwrap();
        c("cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 3\nnr_throttled 1\nthrottled_usec 2\n");
        c("memory.current", "4096\n");
        c("memory.max", "max\n");
        c("memory.swap.current", "0\n");
        c("memory.swap.max", "max\n");
        c("memory.stat", "anon 1\nfile 2\n");
        c("memory.events", "low 0\nhigh 0\nmax 7\noom 0\n");
        c("pids.current", "2\n");
        c("pids.max", "10\n");
        c("io.stat", "8:0 rbytes=5 wbytes=6 rios=1 wios=2\n");
        let m = Manager::with_root(Version::V2, &t.0, "/a/c", "x", false).unwrap();
        let s = m.stats().unwrap();
        assert_eq!(s.cpu.usage.total, 10_000);
        assert_eq!(s.cpu.usage.user, 6_000);
        assert_eq!(s.cpu.usage.kernel, 4_000);
        assert_eq!(s.cpu.throttling.throttled_time, 2_000);
        assert_eq!(s.memory.usage.usage, 4096);
        assert_eq!(s.memory.usage.limit, u64::MAX);
        assert_eq!(s.memory.usage.failcnt, 7);
        assert_eq!(s.memory.swap.usage, 4096);
        assert_eq!(s.memory.swap.limit, u64::MAX);
        assert_eq!(s.memory.cache, 2);
        assert_eq!(s.pids.current, 2);
        assert_eq!(s.pids.limit, 10);
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
    }
}
