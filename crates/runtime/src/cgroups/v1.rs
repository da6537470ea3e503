//! cgroup v1 (and hybrid hosts): one directory per controller hierarchy.
//!
//! This file owns creating and joining the per-controller directories (copying cpuset
//! `cpus`/`mems` from the parents, without which no task may join; joining the unified
//! hierarchy of a hybrid host best effort), writing `linux.resources` into the v1 files the
//! way runc's `fs` driver does, the v1 freezer, and v1 statistics.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::stats::{self, Stats};
use super::{
    check_memory_value, devices, mkdir, mkdir_p, read_opt, read_text, read_u64_opt, write,
    write_limit, Error, Hierarchy, Manager, Result, Version,
};

/// The directory of `controller`, or an error saying `field` needs it.
fn dir<'a>(m: &'a Manager, controller: &str, field: &str) -> Result<&'a Path> {
    m.controllers
        .get(controller)
        .map(|h| h.dir.as_path())
        .ok_or_else(|| Error::ControllerMissing {
            controller: controller.to_string(),
            field: field.to_string(),
            detail: format!(
                "no cgroup v1 hierarchy with the {controller} controller is mounted \
                 (see /proc/self/mountinfo); mount it or drop the setting"
            ),
        })
}

/// Unique directories, in a stable order.
fn unique_dirs(m: &Manager) -> Vec<&Path> {
    let set: BTreeSet<&Path> = m.controllers.values().map(|h| h.dir.as_path()).collect();
    set.into_iter().collect()
}

/// Creates the cgroup in every hierarchy (idempotent).
fn create(m: &Manager) -> Result<()> {
    if let Some(h) = m.controllers.get("cpuset") {
        ensure_cpuset(h)?;
    }
    for d in unique_dirs(m) {
        mkdir_p(d)?;
    }
    if let Some(u) = &m.unified {
        // Best effort: the hybrid unified hierarchy only mirrors the path.
        let _ = mkdir_p(&u.dir);
    }
    Ok(())
}

/// Creates the cpuset directories from the mount point down, giving each level whose
/// `cpuset.cpus`/`cpuset.mems` are empty its parent's values (a new cpuset starts empty and
/// refuses tasks until both are set).
fn ensure_cpuset(h: &Hierarchy) -> Result<()> {
    let rel = h.dir.strip_prefix(&h.mount_point).unwrap_or(Path::new(""));
    let mut parent: PathBuf = h.mount_point.clone();
    for comp in rel.components() {
        let cur = parent.join(comp);
        mkdir(&cur)?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = read_text(&cur.join(file))?;
            if own.trim().is_empty() {
                let from_parent = read_text(&parent.join(file))?;
                write(&cur, file, from_parent.trim())?;
            }
        }
        parent = cur;
    }
    Ok(())
}

pub(super) fn apply(m: &Manager, pid: i32) -> Result<()> {
    create(m)?;
    let pid = pid.to_string();
    for d in unique_dirs(m) {
        write(d, "cgroup.procs", &pid)?;
    }
    if let Some(u) = &m.unified {
        let _ = write(&u.dir, "cgroup.procs", &pid);
    }
    Ok(())
}

pub(super) fn set(m: &Manager, r: &LinuxResources) -> Result<()> {
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(Error::Unsupported {
            what: "linux.resources.unified".into(),
            version: Version::V1,
            hint: "this host uses cgroup v1 (unified keys are cgroup v2 file names); \
                   express the limits with the other linux.resources fields"
                .into(),
        });
    }
    create(m)?;
    if let Some(cpu) = r.cpu() {
        set_cpuset(m, cpu)?;
    }
    if let Some(list) = r.devices() {
        let rules = devices::normalize(list)?;
        let d = dir(m, "devices", "linux.resources.devices")?;
        for (file, line) in devices::v1_writes(&rules) {
            write(d, file, &line)?;
        }
    }
    if let Some(mem) = r.memory() {
        set_memory(m, mem)?;
    }
    if let Some(cpu) = r.cpu() {
        set_cpu(m, cpu)?;
    }
    if let Some(pids) = r.pids() {
        let limit = pids.limit();
        let d = dir(m, "pids", "linux.resources.pids.limit")?;
        let value = if limit > 0 {
            limit.to_string()
        } else {
            "max".to_string()
        };
        write_limit(d, "pids.max", &value, "pids", "linux.resources.pids.limit")?;
    }
    if let Some(bio) = r.block_io() {
        set_blkio(m, bio)?;
    }
    if let Some(limits) = r.hugepage_limits() {
        for l in limits {
            let field = "linux.resources.hugepageLimits";
            let d = dir(m, "hugetlb", field)?;
            let file = format!("hugetlb.{}.limit_in_bytes", l.page_size());
            write_limit(d, &file, &l.limit().to_string(), "hugetlb", field)?;
        }
    }
    if let Some(net) = r.network() {
        if let Some(class) = net.class_id() {
            let field = "linux.resources.network.classID";
            let d = dir(m, "net_cls", field)?;
            write_limit(d, "net_cls.classid", &class.to_string(), "net_cls", field)?;
        }
        for p in net.priorities().iter().flatten() {
            let field = "linux.resources.network.priorities";
            let d = dir(m, "net_prio", field)?;
            let line = format!("{} {}", p.name(), p.priority());
            write_limit(d, "net_prio.ifpriomap", &line, "net_prio", field)?;
        }
    }
    if let Some(rdma) = r.rdma() {
        let mut names: Vec<&String> = rdma.keys().collect();
        names.sort();
        for name in names {
            let field = "linux.resources.rdma";
            if let Some(line) = rdma_line(name, &rdma[name]) {
                let d = dir(m, "rdma", field)?;
                write_limit(d, "rdma.max", &line, "rdma", field)?;
            }
        }
    }
    Ok(())
}

/// `rdma.max` line for one device, `None` when nothing is limited.
pub(super) fn rdma_line(name: &str, r: &oci_spec::runtime::LinuxRdma) -> Option<String> {
    let mut line = name.to_string();
    if let Some(h) = r.hca_handles() {
        line.push_str(&format!(" hca_handle={h}"));
    }
    if let Some(o) = r.hca_objects() {
        line.push_str(&format!(" hca_object={o}"));
    }
    (line.len() > name.len()).then_some(line)
}

fn set_cpuset(m: &Manager, cpu: &LinuxCpu) -> Result<()> {
    for (file, value, field) in [
        ("cpuset.cpus", cpu.cpus(), "linux.resources.cpu.cpus"),
        ("cpuset.mems", cpu.mems(), "linux.resources.cpu.mems"),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            let d = dir(m, "cpuset", field)?;
            write_limit(d, file, v, "cpuset", field)?;
        }
    }
    Ok(())
}

fn set_memory(m: &Manager, mem: &LinuxMemory) -> Result<()> {
    const LIMIT: &str = "memory.limit_in_bytes";
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    let limit = mem.limit().unwrap_or(0);
    let mut swap = mem.swap().unwrap_or(0);
    let reservation = mem.reservation().unwrap_or(0);
    check_memory_value("limit", limit)?;
    check_memory_value("swap", swap)?;
    check_memory_value("reservation", reservation)?;
    // -1 (unset, as Go runtimes serialise it) arrives as u64::MAX.
    let swappiness = mem.swappiness().filter(|&s| s != u64::MAX);
    let oom_off = mem.disable_oom_killer() == Some(true);
    if limit == 0 && swap == 0 && reservation == 0 && swappiness.is_none() && !oom_off {
        return Ok(());
    }
    let first_field = if limit != 0 {
        "linux.resources.memory.limit"
    } else if swap != 0 {
        "linux.resources.memory.swap"
    } else if reservation != 0 {
        "linux.resources.memory.reservation"
    } else if swappiness.is_some() {
        "linux.resources.memory.swappiness"
    } else {
        "linux.resources.memory.disableOOMKiller"
    };
    let d = dir(m, "memory", first_field)?;
    let has_memsw = d.join(MEMSW).exists();

    // An unlimited memory limit with swap unspecified means unlimited swap too.
    if limit == -1 && swap == 0 && has_memsw {
        swap = -1;
    }
    if swap != 0 && !has_memsw {
        if swap > 0 {
            return Err(Error::ControllerMissing {
                controller: "memory".into(),
                field: "linux.resources.memory.swap".into(),
                detail: format!(
                    "{} does not exist: the kernel does not account swap (boot with \
                     swapaccount=1, or drop the swap limit)",
                    d.join(MEMSW).display()
                ),
            });
        }
        swap = 0; // unlimited swap is what we have anyway
    }
    if swap > 0 && limit > 0 && swap < limit {
        return Err(Error::InvalidValue {
            field: "linux.resources.memory.swap".into(),
            reason: format!(
                "memory+swap limit {swap} is below the memory limit {limit}; it must be >= \
                 the memory limit (or -1 for unlimited)"
            ),
        });
    }
    let set_limit = |v: i64| -> Result<()> {
        if v == 0 {
            return Ok(());
        }
        match write(d, LIMIT, &v.to_string()) {
            Err(Error::Write {
                source,
                path,
                value,
            }) if source.raw_os_error() == Some(libc::EBUSY) => {
                let usage = read_u64_opt(d, "memory.usage_in_bytes")
                    .ok()
                    .flatten()
                    .unwrap_or(0);
                Err(Error::InvalidValue {
                    field: "linux.resources.memory.limit".into(),
                    reason: format!(
                        "the kernel refused {value} for {} ({source}): the cgroup already uses \
                         {usage} bytes; give a higher limit",
                        path.display()
                    ),
                })
            }
            other => other,
        }
    };
    let set_swap = |v: i64| -> Result<()> {
        if v == 0 {
            return Ok(());
        }
        write(d, MEMSW, &v.to_string())
    };
    // memsw must stay >= memory at every step: raise memsw first when it grows.
    let mut done = false;
    if limit != 0 && swap != 0 {
        let current = read_u64_opt(d, LIMIT)?.unwrap_or(u64::MAX);
        if swap == -1 || current < swap as u64 {
            set_swap(swap)?;
            set_limit(limit)?;
            done = true;
        }
    }
    if !done {
        set_limit(limit)?;
        set_swap(swap)?;
    }
    if reservation != 0 {
        write(d, "memory.soft_limit_in_bytes", &reservation.to_string())?;
    }
    if oom_off {
        write(d, "memory.oom_control", "1")?;
    }
    if let Some(s) = swappiness {
        if s > 100 {
            return Err(Error::InvalidValue {
                field: "linux.resources.memory.swappiness".into(),
                reason: format!("{s} is out of range 0..=100"),
            });
        }
        write_limit(
            d,
            "memory.swappiness",
            &s.to_string(),
            "memory",
            "linux.resources.memory.swappiness",
        )?;
    }
    Ok(())
}

fn set_cpu(m: &Manager, cpu: &LinuxCpu) -> Result<()> {
    let shares = cpu.shares().unwrap_or(0);
    let quota = cpu.quota().unwrap_or(0);
    let period = cpu.period().unwrap_or(0);
    let rt_runtime = cpu.realtime_runtime().unwrap_or(0);
    let rt_period = cpu.realtime_period().unwrap_or(0);
    let wanted = [
        (shares != 0, "linux.resources.cpu.shares"),
        (quota != 0, "linux.resources.cpu.quota"),
        (period != 0, "linux.resources.cpu.period"),
        (cpu.burst().is_some(), "linux.resources.cpu.burst"),
        (cpu.idle().is_some(), "linux.resources.cpu.idle"),
        (rt_runtime != 0, "linux.resources.cpu.realtimeRuntime"),
        (rt_period != 0, "linux.resources.cpu.realtimePeriod"),
    ];
    let Some((_, first)) = wanted.iter().find(|(on, _)| *on) else {
        return Ok(());
    };
    let d = dir(m, "cpu", first)?;

    // Realtime first: a SCHED_RR/FIFO task cannot join a cgroup without RT bandwidth.
    if rt_period != 0 {
        write_limit(
            d,
            "cpu.rt_period_us",
            &rt_period.to_string(),
            "cpu",
            "linux.resources.cpu.realtimePeriod",
        )?;
    }
    if rt_runtime != 0 {
        write_limit(
            d,
            "cpu.rt_runtime_us",
            &rt_runtime.to_string(),
            "cpu",
            "linux.resources.cpu.realtimeRuntime",
        )?;
    }
    if shares != 0 {
        write(d, "cpu.shares", &shares.to_string())?;
        // The kernel clamps out-of-range values silently; say so instead.
        if let Some(got) = read_u64_opt(d, "cpu.shares")? {
            if got != shares {
                let bound = if shares > got { "maximum" } else { "minimum" };
                return Err(Error::InvalidValue {
                    field: "linux.resources.cpu.shares".into(),
                    reason: format!("{shares} is out of range: the {bound} allowed is {got}"),
                });
            }
        }
    }
    // A shorter period can be refused (EINVAL) while the old quota is in place; then set
    // the quota first and retry the period.
    let mut period_pending = false;
    if period != 0 {
        match write(d, "cpu.cfs_period_us", &period.to_string()) {
            Ok(()) => {}
            Err(Error::Write { source, .. })
                if source.raw_os_error() == Some(libc::EINVAL) && quota != 0 =>
            {
                period_pending = true;
            }
            Err(e) => return Err(e),
        }
    }
    if quota != 0 {
        let q = if quota < 0 {
            "-1".to_string()
        } else {
            quota.to_string()
        };
        write(d, "cpu.cfs_quota_us", &q)?;
        if period_pending {
            write(d, "cpu.cfs_period_us", &period.to_string())?;
        }
    }
    if let Some(burst) = cpu.burst() {
        write_limit(
            d,
            "cpu.cfs_burst_us",
            &burst.to_string(),
            "cpu",
            "linux.resources.cpu.burst",
        )?;
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
    Ok(())
}

fn set_blkio(m: &Manager, b: &LinuxBlockIo) -> Result<()> {
    let field = "linux.resources.blockIO";
    let weight = b.weight().unwrap_or(0);
    let leaf = b.leaf_weight().unwrap_or(0);
    let weight_devices = b.weight_device().as_deref().unwrap_or(&[]);
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
            "throttleReadBpsDevice",
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
            "throttleWriteBpsDevice",
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
            "throttleReadIOPSDevice",
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
            "throttleWriteIOPSDevice",
        ),
    ];
    let any_throttle = throttles
        .iter()
        .any(|(_, l, _)| l.as_ref().is_some_and(|l| !l.is_empty()));
    if weight == 0 && leaf == 0 && weight_devices.is_empty() && !any_throttle {
        return Ok(());
    }
    let d = dir(m, "blkio", field)?;
    // BFQ's files when present (runc prefers them), else CFQ's.
    let (weight_file, weight_device_file) = if d.join("blkio.bfq.weight").exists() {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    } else {
        ("blkio.weight", "blkio.weight_device")
    };
    let no_weight = |what: &str| Error::ControllerMissing {
        controller: "blkio".into(),
        field: format!("{field}.{what}"),
        detail: format!(
            "{} has neither blkio.weight nor blkio.bfq.weight: the block I/O scheduler has no \
             proportional weights (use the BFQ scheduler, or drop the weight)",
            d.display()
        ),
    };
    if weight != 0 {
        if !d.join(weight_file).exists() {
            return Err(no_weight("weight"));
        }
        write(d, weight_file, &weight.to_string())?;
    }
    if leaf != 0 {
        write_limit(
            d,
            "blkio.leaf_weight",
            &leaf.to_string(),
            "blkio",
            &format!("{field}.leafWeight"),
        )?;
    }
    for wd in weight_devices {
        if let Some(w) = wd.weight() {
            if !d.join(weight_device_file).exists() {
                return Err(no_weight("weightDevice"));
            }
            write(
                d,
                weight_device_file,
                &format!("{}:{} {w}", wd.major(), wd.minor()),
            )?;
        }
        if let Some(lw) = wd.leaf_weight() {
            let line = format!("{}:{} {lw}", wd.major(), wd.minor());
            write_limit(
                d,
                "blkio.leaf_weight_device",
                &line,
                "blkio",
                &format!("{field}.weightDevice"),
            )?;
        }
    }
    for (file, list, name) in throttles {
        for t in list.iter().flatten() {
            let line = format!("{}:{} {}", t.major(), t.minor(), t.rate());
            write_limit(d, file, &line, "blkio", &format!("{field}.{name}"))?;
        }
    }
    Ok(())
}

fn freezer_dir(m: &Manager) -> Result<&Path> {
    dir(m, "freezer", "pause/resume (the freezer)")
}

fn freezer_state(d: &Path) -> Result<String> {
    Ok(read_text(&d.join("freezer.state"))?.trim().to_string())
}

pub(super) fn freeze(m: &Manager) -> Result<()> {
    let d = freezer_dir(m)?;
    // The v1 freezer can sit in FREEZING while tasks keep appearing; keep asking, and now
    // and then thaw briefly so a racing fork can finish, for up to a few seconds.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut round = 0u32;
    loop {
        if round % 50 == 49 {
            write(d, "freezer.state", "THAWED")?;
            std::thread::sleep(Duration::from_millis(10));
        }
        write(d, "freezer.state", "FROZEN")?;
        if round % 25 == 24 {
            std::thread::sleep(Duration::from_micros(100));
        }
        match freezer_state(d)?.as_str() {
            "FROZEN" => return Ok(()),
            "FREEZING" => {}
            other => {
                return Err(Error::Freeze {
                    action: "freeze",
                    path: d.to_path_buf(),
                    reason: format!("unexpected freezer.state {other:?}"),
                })
            }
        }
        round += 1;
        if Instant::now() > deadline {
            let _ = write(d, "freezer.state", "THAWED");
            return Err(Error::Freeze {
                action: "freeze",
                path: d.to_path_buf(),
                reason: "still FREEZING after 5 s (processes keep forking?); thawed it again"
                    .into(),
            });
        }
    }
}

pub(super) fn thaw(m: &Manager) -> Result<()> {
    let d = freezer_dir(m)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        write(d, "freezer.state", "THAWED")?;
        if freezer_state(d)? == "THAWED" {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Freeze {
                action: "thaw",
                path: d.to_path_buf(),
                reason: "freezer.state is not THAWED after 5 s (is a parent cgroup frozen?)".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub(super) fn is_frozen(m: &Manager) -> Result<bool> {
    let d = freezer_dir(m)?;
    match read_opt(d, "freezer.state")? {
        Some(s) => Ok(s.trim() == "FROZEN"),
        None => Ok(false),
    }
}

fn u64_or_zero(d: &Path, file: &str) -> Result<u64> {
    Ok(read_u64_opt(d, file)?.unwrap_or(0))
}

pub(super) fn stats(m: &Manager) -> Result<Stats> {
    let mut s = Stats::default();
    let existing = |c: &str| {
        m.controllers
            .get(c)
            .map(|h| h.dir.as_path())
            .filter(|d| d.is_dir())
    };

    if let Some(d) = existing("cpuacct") {
        let u = &mut s.cpu.usage;
        u.total = u64_or_zero(d, "cpuacct.usage")?;
        if let Some(t) = read_opt(d, "cpuacct.usage_percpu")? {
            u.percpu = stats::parse_list(&d.join("cpuacct.usage_percpu"), &t)?;
        }
        if let Some(t) = read_opt(d, "cpuacct.usage_all")? {
            // "cpu user system" header, then one line per CPU, in nanoseconds.
            for line in t.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                if let [_, user, system] = f.as_slice() {
                    let p = d.join("cpuacct.usage_all");
                    u.percpu_user.push(stats::parse_u64(&p, user)?);
                    u.percpu_kernel.push(stats::parse_u64(&p, system)?);
                }
            }
        }
        if let Some(t) = read_opt(d, "cpuacct.stat")? {
            // In USER_HZ ticks; report nanoseconds like runc.
            let map = stats::parse_keyed(&d.join("cpuacct.stat"), &t)?;
            let ticks = clock_ticks();
            let ns = |v: u64| v.saturating_mul(1_000_000_000) / ticks;
            u.user = map.get("user").copied().map_or(0, ns);
            u.kernel = map.get("system").copied().map_or(0, ns);
        }
    }
    if let Some(d) = existing("cpu") {
        if let Some(t) = read_opt(d, "cpu.stat")? {
            let map = stats::parse_keyed(&d.join("cpu.stat"), &t)?;
            s.cpu.throttling.periods = map.get("nr_periods").copied().unwrap_or(0);
            s.cpu.throttling.throttled_periods = map.get("nr_throttled").copied().unwrap_or(0);
            s.cpu.throttling.throttled_time = map.get("throttled_time").copied().unwrap_or(0);
        }
    }
    if let Some(d) = existing("cpuset") {
        let c = &mut s.cpuset;
        if let Some(t) = read_opt(d, "cpuset.cpus")? {
            c.cpus = stats::parse_cpu_list(&d.join("cpuset.cpus"), &t)?;
        }
        if let Some(t) = read_opt(d, "cpuset.mems")? {
            c.mems = stats::parse_cpu_list(&d.join("cpuset.mems"), &t)?;
        }
        c.cpu_exclusive = u64_or_zero(d, "cpuset.cpu_exclusive")?;
        c.mem_exclusive = u64_or_zero(d, "cpuset.mem_exclusive")?;
        c.mem_hardwall = u64_or_zero(d, "cpuset.mem_hardwall")?;
        c.memory_migrate = u64_or_zero(d, "cpuset.memory_migrate")?;
        c.memory_spread_page = u64_or_zero(d, "cpuset.memory_spread_page")?;
        c.memory_spread_slab = u64_or_zero(d, "cpuset.memory_spread_slab")?;
        c.memory_pressure = u64_or_zero(d, "cpuset.memory_pressure")?;
        c.sched_load_balance = u64_or_zero(d, "cpuset.sched_load_balance")?;
        if let Some(t) = read_opt(d, "cpuset.sched_relax_domain_level")? {
            c.sched_relax_domain_level = t.trim().parse().unwrap_or(0);
        }
    }
    if let Some(d) = existing("memory") {
        let mem = &mut s.memory;
        let entry = |prefix: &str| -> Result<stats::MemoryEntry> {
            Ok(stats::MemoryEntry {
                limit: u64_or_zero(d, &format!("{prefix}.limit_in_bytes"))?,
                usage: u64_or_zero(d, &format!("{prefix}.usage_in_bytes"))?,
                max: u64_or_zero(d, &format!("{prefix}.max_usage_in_bytes"))?,
                failcnt: u64_or_zero(d, &format!("{prefix}.failcnt"))?,
            })
        };
        mem.usage = entry("memory")?;
        mem.swap = entry("memory.memsw")?;
        mem.kernel = entry("memory.kmem")?;
        mem.kernel_tcp = entry("memory.kmem.tcp")?;
        if let Some(t) = read_opt(d, "memory.stat")? {
            mem.raw = stats::parse_keyed(&d.join("memory.stat"), &t)?;
            mem.cache = mem.raw.get("cache").copied().unwrap_or(0);
        }
    }
    if let Some(d) = existing("pids") {
        s.pids.current = u64_or_zero(d, "pids.current")?;
        let limit = u64_or_zero(d, "pids.max")?;
        s.pids.limit = if limit == u64::MAX { 0 } else { limit };
    }
    if let Some(d) = existing("blkio") {
        // CFQ's recursive files when present, else BFQ's, else the throttle layer's (which
        // every kernel with blkio has); runc's order.
        let b = &mut s.blkio;
        let sets: [(&str, &mut Vec<stats::BlkioEntry>); 8] = [
            (
                "io_service_bytes_recursive",
                &mut b.io_service_bytes_recursive,
            ),
            ("io_serviced_recursive", &mut b.io_serviced_recursive),
            ("io_queued_recursive", &mut b.io_queued_recursive),
            (
                "io_service_time_recursive",
                &mut b.io_service_time_recursive,
            ),
            ("io_wait_time_recursive", &mut b.io_wait_time_recursive),
            ("io_merged_recursive", &mut b.io_merged_recursive),
            ("time_recursive", &mut b.io_time_recursive),
            ("sectors_recursive", &mut b.sectors_recursive),
        ];
        let prefix = if d.join("blkio.io_service_bytes_recursive").exists() {
            Some("blkio.")
        } else if d.join("blkio.bfq.io_service_bytes_recursive").exists() {
            Some("blkio.bfq.")
        } else {
            None
        };
        match prefix {
            Some(prefix) => {
                for (name, table) in sets {
                    let file = format!("{prefix}{name}");
                    if let Some(t) = read_opt(d, &file)? {
                        *table = stats::parse_blkio_v1(&d.join(&file), &t)?;
                    }
                }
            }
            None => {
                let mut sets = sets.into_iter();
                for name in ["io_service_bytes_recursive", "io_serviced_recursive"] {
                    let Some((_, table)) = sets.next() else { break };
                    let file = format!("blkio.throttle.{name}");
                    if let Some(t) = read_opt(d, &file)? {
                        *table = stats::parse_blkio_v1(&d.join(&file), &t)?;
                    }
                }
            }
        }
    }
    if let Some(d) = existing("hugetlb") {
        hugetlb_stats(d, &mut s, false)?;
    }
    Ok(s)
}

/// Fills `s.hugetlb` from `hugetlb.<size>.usage_in_bytes` (v1) or, with `v2`,
/// `hugetlb.<size>.current` files.
pub(super) fn hugetlb_stats(d: &Path, s: &mut Stats, v2: bool) -> Result<()> {
    let entries = std::fs::read_dir(d).map_err(|source| Error::Read {
        path: d.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::Read {
            path: d.to_path_buf(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let suffix = if v2 { ".current" } else { ".usage_in_bytes" };
        let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|n| n.strip_suffix(suffix))
        else {
            continue;
        };
        if size.contains('.') {
            continue; // hugetlb.2MB.rsvd.*
        }
        let h = if v2 {
            let events = read_opt(d, &format!("hugetlb.{size}.events"))?.unwrap_or_default();
            let events = stats::parse_keyed(&d.join(format!("hugetlb.{size}.events")), &events)?;
            stats::Hugetlb {
                usage: u64_or_zero(d, &name)?,
                max: 0,
                failcnt: events.get("max").copied().unwrap_or(0),
            }
        } else {
            stats::Hugetlb {
                usage: u64_or_zero(d, &name)?,
                max: u64_or_zero(d, &format!("hugetlb.{size}.max_usage_in_bytes"))?,
                failcnt: u64_or_zero(d, &format!("hugetlb.{size}.failcnt"))?,
            }
        };
        s.hugetlb.insert(size.to_string(), h);
    }
    Ok(())
}

fn clock_ticks() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(v)) if v > 0 => v as u64,
        _ => 100,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::TempDir;
    use super::*;
    use std::fs;

    /// A fake v1 root: one directory per hierarchy with the given files (empty) in the
    /// cgroup `/c` and, for cpuset, the root's cpus/mems.
    fn fake(files: &[(&str, &[&str])]) -> TempDir {
        let t = TempDir::new("v1");
        for (hier, names) in files {
            let cg = t.0.join(hier).join("c");
            fs::create_dir_all(&cg).unwrap();
            for n in *names {
                fs::write(cg.join(n), "").unwrap();
            }
        }
        t
    }

    fn read(t: &TempDir, hier: &str, file: &str) -> String {
        fs::read_to_string(t.0.join(hier).join("c").join(file)).unwrap()
    }

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn writes_limits_into_fake_root() {
        let t = fake(&[
            (
                "memory",
                &[
                    "cgroup.procs",
                    "memory.limit_in_bytes",
                    "memory.memsw.limit_in_bytes",
                    "memory.soft_limit_in_bytes",
                    "memory.swappiness",
                    "memory.oom_control",
                ],
            ),
            (
                "cpu,cpuacct",
                &[
                    "cgroup.procs",
                    "cpu.shares",
                    "cpu.cfs_quota_us",
                    "cpu.cfs_period_us",
                    "cpu.rt_period_us",
                    "cpu.rt_runtime_us",
                ],
            ),
            ("cpuset", &["cgroup.procs", "cpuset.cpus", "cpuset.mems"]),
            ("pids", &["cgroup.procs", "pids.max"]),
            (
                "devices",
                &["cgroup.procs", "devices.allow", "devices.deny"],
            ),
            (
                "blkio",
                &[
                    "cgroup.procs",
                    "blkio.weight",
                    "blkio.weight_device",
                    "blkio.throttle.read_bps_device",
                ],
            ),
            ("systemd", &["cgroup.procs"]),
        ]);
        fs::write(t.0.join("cpuset/cpuset.cpus"), "0-3\n").unwrap();
        fs::write(t.0.join("cpuset/cpuset.mems"), "0\n").unwrap();
        fs::write(
            t.0.join("memory/c/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        // The fake cannot clamp, so cpu.shares reads back what we wrote.
        let m = Manager::with_root(Version::V1, &t.0, "/c", "x", false).unwrap();
        let r = resources(
            r#"{"memory":{"limit":1048576,"swap":2097152,"reservation":524288,"swappiness":10,
                          "disableOOMKiller":true,"kernel":1},
                "cpu":{"shares":512,"quota":50000,"period":100000,"realtimeRuntime":1000,
                       "realtimePeriod":10000,"mems":"0"},
                "pids":{"limit":-1},
                "devices":[{"allow":false,"access":"rwm"},
                           {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}],
                "blockIO":{"weight":300,"weightDevice":[{"major":8,"minor":0,"weight":200}],
                           "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1000}]}}"#,
        );
        m.set(&r).unwrap();
        // The current limit is above the new swap limit: memory first, then swap.
        assert_eq!(read(&t, "memory", "memory.limit_in_bytes"), "1048576");
        assert_eq!(read(&t, "memory", "memory.memsw.limit_in_bytes"), "2097152");
        assert_eq!(read(&t, "memory", "memory.soft_limit_in_bytes"), "524288");
        assert_eq!(read(&t, "memory", "memory.swappiness"), "10");
        assert_eq!(read(&t, "memory", "memory.oom_control"), "1");
        assert_eq!(read(&t, "cpu,cpuacct", "cpu.shares"), "512");
        assert_eq!(read(&t, "cpu,cpuacct", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(&t, "cpu,cpuacct", "cpu.cfs_period_us"), "100000");
        assert_eq!(read(&t, "cpu,cpuacct", "cpu.rt_runtime_us"), "1000");
        assert_eq!(read(&t, "cpu,cpuacct", "cpu.rt_period_us"), "10000");
        // cpus copied from the parent, mems set explicitly.
        assert_eq!(read(&t, "cpuset", "cpuset.cpus"), "0-3");
        assert_eq!(read(&t, "cpuset", "cpuset.mems"), "0");
        assert_eq!(read(&t, "pids", "pids.max"), "max");
        assert_eq!(read(&t, "devices", "devices.deny"), "a");
        assert_eq!(read(&t, "devices", "devices.allow"), "c 1:3 rwm");
        assert_eq!(read(&t, "blkio", "blkio.weight"), "300");
        assert_eq!(read(&t, "blkio", "blkio.weight_device"), "8:0 200");
        assert_eq!(
            read(&t, "blkio", "blkio.throttle.read_bps_device"),
            "8:0 1000"
        );

        m.apply(1234).unwrap();
        for h in [
            "memory",
            "cpu,cpuacct",
            "cpuset",
            "pids",
            "devices",
            "blkio",
            "systemd",
        ] {
            assert_eq!(read(&t, h, "cgroup.procs"), "1234", "{h}");
        }
        assert!(m.paths().contains_key("name=systemd"));
    }

    #[test]
    fn missing_controller_and_unsupported_fields_are_clear_errors() {
        let t = fake(&[("memory", &["cgroup.procs", "memory.limit_in_bytes"])]);
        let m = Manager::with_root(Version::V1, &t.0, "/c", "x", false).unwrap();
        let e = m.set(&resources(r#"{"pids":{"limit":10}}"#)).unwrap_err();
        assert!(
            matches!(&e, Error::ControllerMissing { controller, field, .. }
            if controller == "pids" && field == "linux.resources.pids.limit"),
            "{e}"
        );
        // Swap requested, no memsw file.
        let e = m
            .set(&resources(r#"{"memory":{"limit":100,"swap":200}}"#))
            .unwrap_err();
        assert!(
            matches!(&e, Error::ControllerMissing { field, .. } if field.ends_with("swap")),
            "{e}"
        );
        // Unlimited swap without memsw is silently fine.
        m.set(&resources(r#"{"memory":{"limit":-1}}"#)).unwrap();
        assert_eq!(read(&t, "memory", "memory.limit_in_bytes"), "-1");
        m.set(&resources(r#"{"memory":{"limit":100,"swap":-1}}"#))
            .unwrap();
        let e = m
            .set(&resources(r#"{"unified":{"memory.max":"1"}}"#))
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Unsupported {
                    version: Version::V1,
                    ..
                }
            ),
            "{e}"
        );
        // An empty unified map is fine.
        m.set(&resources(r#"{"unified":{}}"#)).unwrap();
        let e = m
            .set(&resources(r#"{"memory":{"swappiness":101}}"#))
            .unwrap_err();
        assert!(matches!(e, Error::InvalidValue { .. }), "{e}");
        let e = m.freeze().unwrap_err();
        assert!(
            matches!(&e, Error::ControllerMissing { controller, .. } if controller == "freezer"),
            "{e}"
        );
        // Nothing requested: nothing needed.
        m.set(&resources(r#"{"cpu":{},"memory":{}}"#)).unwrap();
    }

    #[test]
    fn swap_is_raised_before_memory_when_growing() {
        let t = fake(&[(
            "memory",
            &["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"],
        )]);
        fs::write(t.0.join("memory/c/memory.limit_in_bytes"), "100").unwrap();
        let m = Manager::with_root(Version::V1, &t.0, "/c", "x", false).unwrap();
        // Unlimited memory with swap unspecified means unlimited swap.
        m.set(&resources(r#"{"memory":{"limit":-1}}"#)).unwrap();
        assert_eq!(read(&t, "memory", "memory.memsw.limit_in_bytes"), "-1");
        let e = m
            .set(&resources(r#"{"memory":{"limit":300,"swap":200}}"#))
            .unwrap_err();
        assert!(matches!(e, Error::InvalidValue { .. }), "{e}");
    }

    #[test]
    fn freezer_on_fake_root() {
        let t = fake(&[("freezer", &["freezer.state"])]);
        let m = Manager::with_root(Version::V1, &t.0, "/c", "x", false).unwrap();
        // A plain file echoes what we write, so freezing "succeeds" at once.
        m.freeze().unwrap();
        assert!(m.is_frozen().unwrap());
        m.thaw().unwrap();
        assert!(!m.is_frozen().unwrap());
    }

    #[test]
    fn stats_from_fake_files() {
        let t = fake(&[
            ("memory", &[]),
            ("pids", &[]),
            ("cpuacct", &[]),
            ("cpu", &[]),
        ]);
        let c = |h: &str, f: &str, v: &str| fs::write(t.0.join(h).join("c").join(f), v).unwrap();
        c("memory", "memory.usage_in_bytes", "4096\n");
        c("memory", "memory.limit_in_bytes", "9223372036854771712\n");
        c("memory", "memory.max_usage_in_bytes", "8192\n");
        c("memory", "memory.failcnt", "0\n");
        c("memory", "memory.stat", "cache 12\nrss 34\n");
        c("pids", "pids.current", "3\n");
        c("pids", "pids.max", "max\n");
        c("cpuacct", "cpuacct.usage", "1000\n");
        c("cpuacct", "cpuacct.usage_percpu", "600 400 \n");
        c(
            "cpuacct",
            "cpuacct.usage_all",
            "cpu user system\n0 500 100\n1 300 100\n",
        );
        c("cpuacct", "cpuacct.stat", "user 2\nsystem 1\n");
        c(
            "cpu",
            "cpu.stat",
            "nr_periods 5\nnr_throttled 2\nthrottled_time 77\n",
        );
        let m = Manager::with_root(Version::V1, &t.0, "/c", "x", false).unwrap();
        let s = m.stats().unwrap();
        assert_eq!(s.memory.usage.usage, 4096);
        assert_eq!(s.memory.usage.max, 8192);
        assert_eq!(s.memory.usage.limit, 9223372036854771712);
        assert_eq!(s.memory.cache, 12);
        assert_eq!(s.memory.raw["rss"], 34);
        assert_eq!(s.pids.current, 3);
        assert_eq!(s.pids.limit, 0);
        assert_eq!(s.cpu.usage.total, 1000);
        assert_eq!(s.cpu.usage.percpu, vec![600, 400]);
        assert_eq!(s.cpu.usage.percpu_user, vec![500, 300]);
        assert_eq!(s.cpu.usage.percpu_kernel, vec![100, 100]);
        let hz = clock_ticks();
        assert_eq!(s.cpu.usage.user, 2 * 1_000_000_000 / hz);
        assert_eq!(s.cpu.throttling.throttled_periods, 2);
        assert_eq!(s.cpu.throttling.throttled_time, 77);
    }

    #[test]
    fn destroy_removes_every_hierarchy_dir() {
        let t = TempDir::new("v1destroy");
        for h in ["memory", "cpu,cpuacct", "unified"] {
            fs::create_dir_all(t.0.join(h)).unwrap();
        }
        let m = Manager::with_root(Version::V1, &t.0, "/a/b", "x", false).unwrap();
        // No cpuset here, so plain mkdir -p; the fake has no cgroup.procs, so join fails,
        // but the directories exist after set().
        m.set(&resources("{}")).unwrap();
        fs::create_dir_all(t.0.join("memory/a/b/sub")).unwrap();
        for h in ["memory", "cpu,cpuacct", "unified"] {
            assert!(t.0.join(h).join("a/b").is_dir(), "{h}");
        }
        m.destroy().unwrap();
        for h in ["memory", "cpu,cpuacct", "unified"] {
            assert!(!t.0.join(h).join("a/b").exists(), "{h}");
            assert!(t.0.join(h).join("a").is_dir(), "{h}: parents stay");
        }
    }
}
