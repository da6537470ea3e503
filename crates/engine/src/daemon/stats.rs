//! `GET /containers/{id}/stats`: samples of a container's cgroup (the runtime's
//! [`runtime::cgroups::Manager::stats`], v1 or v2) and of its network namespace
//! (`/proc/<init pid>/net/dev`), in dockerd's JSON shape (`cpu_stats`/`precpu_stats`,
//! `memory_stats`, `pids_stats`, `blkio_stats`, `networks`), so `docker stats` computes the
//! same CPU %, memory and I/O columns it does against dockerd.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use api::backend::{ApiResult, StatsOptions};
use api::stream::JsonStream;
use api::types::{ContainerStats, CpuStats, CpuUsage, MemoryStats};
use api::ApiError;
use runtime::cgroups::{self, BlkioEntry, Manager, Stats};
use serde_json::{json, Value};

use super::containers::{is_running, lookup};
use super::Inner;

/// Docker's zero time, for `read`/`preread` with no sample.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One sample: the container's counters and the host's CPU time when taken.
struct Sample {
    read: String,
    cg: Stats,
    system_cpu: u64,
    online_cpus: u32,
    networks: Option<BTreeMap<String, Value>>,
}

/// The container's cgroup, as the bundle named it (`/berth/<id>`).
pub(crate) fn manager(id: &str) -> ApiResult<Manager> {
    Manager::new(&format!("/berth/{id}"), id, false)
        .map_err(|e| ApiError::Internal(format!("cannot find the cgroup of container {id}: {e}")))
}

fn now_rfc3339() -> String {
    let t = api::time::Timestamp::now();
    shim::timefmt::rfc3339_nano(t.seconds, t.nanos)
}

/// Host CPU time in nanoseconds (the first seven fields of the `cpu` line of /proc/stat, as
/// dockerd sums them), and the number of online CPUs.
fn system_cpu() -> (u64, u32) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    // SAFETY: sysconf only reads a system constant.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let tck = if tck > 0 { tck as u64 } else { 100 };
    let mut total = 0u64;
    let mut cpus = 0u32;
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("cpu ") {
            total = rest
                .split_whitespace()
                .take(7)
                .filter_map(|f| f.parse::<u64>().ok())
                .sum::<u64>()
                .saturating_mul(1_000_000_000 / tck);
        } else if l.starts_with("cpu") {
            cpus += 1;
        }
    }
    (total, cpus.max(1))
}

/// Host memory in bytes (dockerd caps an unlimited cgroup's limit to it).
fn machine_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Interface counters of the container's network namespace, read through its init's
/// `/proc/<pid>/net/dev`; `lo` is left out, as dockerd reports only the container's
/// endpoints. None when there are no other interfaces.
pub(crate) fn networks(pid: i64) -> Option<BTreeMap<String, Value>> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    let mut out = BTreeMap::new();
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        if f.len() < 16 {
            continue;
        }
        out.insert(
            name.to_string(),
            json!({
                "rx_bytes": f[0], "rx_packets": f[1], "rx_errors": f[2], "rx_dropped": f[3],
                "tx_bytes": f[8], "tx_packets": f[9], "tx_errors": f[10], "tx_dropped": f[11],
            }),
        );
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

fn take_sample(m: &Manager, pid: i64) -> ApiResult<Sample> {
    let cg = m
        .stats()
        .map_err(|e| ApiError::Internal(format!("cannot read the container's cgroup: {e}")))?;
    let (system_cpu, online_cpus) = system_cpu();
    Ok(Sample {
        read: now_rfc3339(),
        cg,
        system_cpu,
        online_cpus,
        networks: networks(pid),
    })
}

fn cpu_stats(s: &Sample) -> CpuStats {
    let u = &s.cg.cpu.usage;
    let t = &s.cg.cpu.throttling;
    CpuStats {
        cpu_usage: CpuUsage {
            total_usage: u.total,
            percpu_usage: if u.percpu.is_empty() {
                None
            } else {
                Some(u.percpu.clone())
            },
            usage_in_kernelmode: u.kernel,
            usage_in_usermode: u.user,
        },
        system_cpu_usage: Some(s.system_cpu),
        online_cpus: Some(s.online_cpus),
        throttling_data: json!({
            "periods": t.periods,
            "throttled_periods": t.throttled_periods,
            "throttled_time": t.throttled_time,
        }),
    }
}

fn blkio_list(v: &[BlkioEntry]) -> Value {
    if v.is_empty() {
        return Value::Null;
    }
    Value::Array(
        v.iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect(),
    )
}

fn to_docker(
    id: &str,
    name: &str,
    s: &Sample,
    pre: Option<&Sample>,
    machine_mem: u64,
) -> ContainerStats {
    let mem = &s.cg.memory;
    let mut limit = mem.usage.limit;
    if limit == 0 || (machine_mem > 0 && limit > machine_mem) {
        limit = machine_mem;
    }
    let v1 = cgroups::detect() == cgroups::Version::V1;
    let b = &s.cg.blkio;
    let mut pids = json!({"current": s.cg.pids.current});
    if s.cg.pids.limit > 0 {
        pids["limit"] = s.cg.pids.limit.into();
    }
    ContainerStats {
        id: id.to_string(),
        name: format!("/{name}"),
        read: s.read.clone(),
        preread: pre
            .map(|p| p.read.clone())
            .unwrap_or_else(|| ZERO_TIME.into()),
        num_procs: 0,
        cpu_stats: cpu_stats(s),
        precpu_stats: pre.map(cpu_stats).unwrap_or_default(),
        memory_stats: MemoryStats {
            usage: Some(mem.usage.usage),
            max_usage: if v1 { Some(mem.usage.max) } else { None },
            stats: Some(mem.raw.clone()),
            failcnt: if v1 { Some(mem.usage.failcnt) } else { None },
            limit: Some(limit),
        },
        pids_stats: pids,
        blkio_stats: json!({
            "io_service_bytes_recursive": blkio_list(&b.io_service_bytes_recursive),
            "io_serviced_recursive": blkio_list(&b.io_serviced_recursive),
            "io_queue_recursive": blkio_list(&b.io_queued_recursive),
            "io_service_time_recursive": blkio_list(&b.io_service_time_recursive),
            "io_wait_time_recursive": blkio_list(&b.io_wait_time_recursive),
            "io_merged_recursive": blkio_list(&b.io_merged_recursive),
            "io_time_recursive": blkio_list(&b.io_time_recursive),
            "sectors_recursive": blkio_list(&b.sectors_recursive),
        }),
        networks: s.networks.clone(),
        storage_stats: json!({}),
        extra: Default::default(),
    }
}

/// The sample dockerd sends for a container that is not running: names and zeros.
fn empty(id: &str, name: &str) -> ContainerStats {
    ContainerStats {
        id: id.to_string(),
        name: format!("/{name}"),
        read: ZERO_TIME.into(),
        preread: ZERO_TIME.into(),
        pids_stats: json!({}),
        blkio_stats: json!({
            "io_service_bytes_recursive": null, "io_serviced_recursive": null,
            "io_queue_recursive": null, "io_service_time_recursive": null,
            "io_wait_time_recursive": null, "io_merged_recursive": null,
            "io_time_recursive": null, "sectors_recursive": null,
        }),
        storage_stats: json!({}),
        ..Default::default()
    }
}

/// `GET /containers/{id}/stats`. Streaming: a sample at once (no `precpu_stats`), then one
/// a second with the previous as `precpu_stats`, until the container stops or the client
/// goes. Not streaming: one sample taken a second after a first (so the CPU % can be
/// computed), or at once with `one_shot`.
pub async fn stats(
    inner: &Arc<Inner>,
    key: &str,
    opts: StatsOptions,
) -> ApiResult<JsonStream<ContainerStats>> {
    let c = lookup(inner, key)?;
    if !is_running(&c) {
        let one = empty(&c.id, &c.name);
        return Ok(Box::pin(futures_util::stream::iter([Ok(one)])));
    }
    let m = manager(&c.id)?;
    let machine_mem = machine_memory();
    let (tx, rx) = tokio::sync::mpsc::channel::<ApiResult<ContainerStats>>(2);
    let (inner, id, name, pid) = (inner.clone(), c.id.clone(), c.name.clone(), c.state.pid);
    tokio::spawn(async move {
        let sample = |m: Manager| tokio::task::spawn_blocking(move || (take_sample(&m, pid), m));
        let mut pre: Option<Sample> = None;
        let mut m = m;
        loop {
            let (s, back) = match sample(m).await {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(ApiError::Internal(e.to_string()))).await;
                    return;
                }
            };
            m = back;
            let s = match s {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let first = pre.is_none();
            if opts.stream || opts.one_shot || !first {
                let out = to_docker(&id, &name, &s, pre.as_ref(), machine_mem);
                if tx.send(Ok(out)).await.is_err() || !opts.stream {
                    return;
                }
            }
            pre = Some(s);
            tokio::time::sleep(Duration::from_secs(1)).await;
            match lookup(&inner, &id) {
                Ok(c) if is_running(&c) => {}
                _ => return,
            }
        }
    });
    Ok(Box::pin(futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|m| (m, rx)) },
    )))
}
