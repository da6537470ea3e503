//! Cgroup statistics in the shape of runc's `events --stats` JSON `"data"` object.
//!
//! This file owns the serialisable types (field names and omit-if-zero rules follow runc's
//! `types/events.go`, so tools parsing runc's output parse ours) and the parsers for the
//! kernel's stat file formats shared by v1 and v2.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Error, Result};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// All statistics of one cgroup (runc's `types.Stats`). Absent controllers leave zeros.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// CPU time used and throttling.
    pub cpu: Cpu,
    /// cpuset configuration.
    pub cpuset: CpuSet,
    /// Memory and swap usage.
    pub memory: Memory,
    /// Task counts.
    pub pids: Pids,
    /// Block I/O counters.
    pub blkio: Blkio,
    /// Huge page usage, keyed by page size (`2MB`).
    pub hugetlb: BTreeMap<String, Hugetlb>,
    /// Intel RDT data; cgroups never fill it (kept for the JSON shape).
    pub intel_rdt: IntelRdt,
    /// Network interfaces; cgroups never fill it (kept for the JSON shape, `null`).
    pub network_interfaces: Option<Vec<NetworkInterface>>,
}

/// Huge page usage of one page size.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hugetlb {
    /// Bytes in use.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Peak bytes in use.
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

/// One block I/O counter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioEntry {
    /// Device major number.
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    /// Device minor number.
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    /// Operation: `Read`, `Write`, `Sync`, `Async`, `Discard` or `Total`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// The counter.
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

/// Block I/O counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Blkio {
    /// Bytes transferred.
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Requests made.
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    /// Requests queued.
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    /// Time spent servicing requests.
    #[serde(
        rename = "ioServiceTimeRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    /// Time spent waiting.
    #[serde(rename = "ioWaitTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    /// Requests merged.
    #[serde(rename = "ioMergedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    /// Disk time.
    #[serde(rename = "ioTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    /// Sectors transferred.
    #[serde(rename = "sectorsRecursive", skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

/// Task counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pids {
    /// Tasks in the cgroup now.
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// The limit; 0 when unlimited.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// CFS bandwidth throttling counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Throttling {
    /// Enforcement periods elapsed.
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Total time throttled, in nanoseconds.
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// CPU time used, in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    /// Total CPU time.
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Per-CPU total (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// Per-CPU kernel time (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    /// Per-CPU user time (v1 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// Kernel-mode time.
    pub kernel: u64,
    /// User-mode time.
    pub user: u64,
}

/// CPU statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cpu {
    /// Time used.
    pub usage: CpuUsage,
    /// Bandwidth throttling.
    pub throttling: Throttling,
}

/// cpuset configuration (runc's `types.CPUSet`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuSet {
    /// CPUs the cgroup may use.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    /// `cpuset.cpu_exclusive` (v1).
    pub cpu_exclusive: u64,
    /// Memory nodes the cgroup may use.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    /// `cpuset.mem_hardwall` (v1).
    pub mem_hardwall: u64,
    /// `cpuset.mem_exclusive` (v1).
    pub mem_exclusive: u64,
    /// `cpuset.memory_migrate` (v1).
    pub memory_migrate: u64,
    /// `cpuset.memory_spread_page` (v1).
    pub memory_spread_page: u64,
    /// `cpuset.memory_spread_slab` (v1).
    pub memory_spread_slab: u64,
    /// `cpuset.memory_pressure` (v1).
    pub memory_pressure: u64,
    /// `cpuset.sched_load_balance` (v1).
    pub sched_load_balance: u64,
    /// `cpuset.sched_relax_domain_level` (v1).
    pub sched_relax_domain_level: i64,
}

/// One memory counter group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryEntry {
    /// The limit in bytes (`u64::MAX`-ish values mean unlimited, as the kernel reports them).
    pub limit: u64,
    /// Bytes in use.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Peak bytes in use.
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

/// Memory statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Memory {
    /// Page cache bytes (`cache` on v1, `file` on v2).
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory + swap, as v1 reports it (v2 values are summed to match).
    pub swap: MemoryEntry,
    /// Kernel memory (v1).
    pub kernel: MemoryEntry,
    /// Kernel TCP buffer memory (v1).
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// `memory.stat`, verbatim.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// Intel RDT statistics; cgroups leave it empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntelRdt {}

/// Network interface counters (runc field names); cgroups never fill it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkInterface {
    /// Interface name.
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Sent packets dropped.
    pub tx_dropped: u64,
}

fn parse_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Parses one number; `max` (an unlimited v2 limit) is `u64::MAX`.
pub(crate) fn parse_u64(path: &Path, s: &str) -> Result<u64> {
    let s = s.trim();
    if s == "max" {
        return Ok(u64::MAX);
    }
    s.parse::<u64>()
        .map_err(|_| parse_error(path, format!("expected a number, got {s:?}")))
}

/// Parses `key value` lines (`memory.stat`, `cpu.stat`, `cpuacct.stat`, `cgroup.events`).
pub(crate) fn parse_keyed(path: &Path, text: &str) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(k), Some(v)) = (it.next(), it.next()) else {
            continue;
        };
        out.insert(k.to_string(), parse_u64(path, v)?);
    }
    Ok(out)
}

/// Parses whitespace-separated numbers (`cpuacct.usage_percpu`).
pub(crate) fn parse_list(path: &Path, text: &str) -> Result<Vec<u64>> {
    text.split_whitespace()
        .map(|v| parse_u64(path, v))
        .collect()
}

/// Parses a CPU/node list such as `0-3,8,10-11`.
pub(crate) fn parse_cpu_list(path: &Path, text: &str) -> Result<Vec<u16>> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let num = |s: &str| {
            s.trim()
                .parse::<u16>()
                .map_err(|_| parse_error(path, format!("bad CPU list entry {part:?}")))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(parse_error(path, format!("bad CPU range {part:?}")));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    Ok(out)
}

/// Parses a v1 blkio file: `MAJ:MIN Op value` lines and a final `Total value`, which is
/// dropped (runc drops it too).
pub(crate) fn parse_blkio_v1(path: &Path, text: &str) -> Result<Vec<BlkioEntry>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (dev, op, value) = match fields.as_slice() {
            [dev, op, value] => (*dev, *op, *value),
            [dev, value] if dev.contains(':') => (*dev, "", *value),
            _ => continue,
        };
        let Some((major, minor)) = dev.split_once(':') else {
            continue;
        };
        out.push(BlkioEntry {
            major: parse_u64(path, major)?,
            minor: parse_u64(path, minor)?,
            op: op.to_string(),
            value: parse_u64(path, value)?,
        });
    }
    Ok(out)
}

/// Parses v2 `io.stat` (`MAJ:MIN rbytes=… wbytes=… rios=… wios=… …`) into v1-style tables:
/// bytes into `io_service_bytes_recursive`, operations into `io_serviced_recursive`.
pub(crate) fn parse_io_stat(path: &Path, text: &str) -> Result<Blkio> {
    let mut blkio = Blkio::default();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some(dev) = it.next() else { continue };
        let Some((major, minor)) = dev.split_once(':') else {
            continue;
        };
        let (major, minor) = (parse_u64(path, major)?, parse_u64(path, minor)?);
        for item in it {
            let Some((key, value)) = item.split_once('=') else {
                continue;
            };
            let (table, op) = match key {
                "rbytes" => (&mut blkio.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut blkio.io_service_bytes_recursive, "Write"),
                "rios" => (&mut blkio.io_serviced_recursive, "Read"),
                "wios" => (&mut blkio.io_serviced_recursive, "Write"),
                _ => continue,
            };
            table.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value: parse_u64(path, value)?,
            });
        }
    }
    Ok(blkio)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        let p = Path::new("/x");
        assert_eq!(parse_u64(p, " 12\n").unwrap(), 12);
        assert_eq!(parse_u64(p, "max").unwrap(), u64::MAX);
        assert!(parse_u64(p, "-1").is_err());
        let m = parse_keyed(p, "cache 10\nrss 20\n\n").unwrap();
        assert_eq!(m["cache"], 10);
        assert_eq!(m["rss"], 20);
        assert_eq!(parse_list(p, "1 2 3 \n").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_cpu_list(p, "0-2,5\n").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list(p, "\n").unwrap(), Vec::<u16>::new());
        assert!(parse_cpu_list(p, "3-1").is_err());
        let b = parse_blkio_v1(p, "8:0 Read 100\n8:0 Write 5\n8:0 Total 105\nTotal 105\n").unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(
            b[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 100
            }
        );
        let io =
            parse_io_stat(p, "8:16 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n").unwrap();
        assert_eq!(io.io_service_bytes_recursive.len(), 2);
        assert_eq!(io.io_serviced_recursive[1].op, "Write");
        assert_eq!(io.io_serviced_recursive[1].value, 4);
    }

    #[test]
    fn json_shape_matches_runc() {
        let mut s = Stats::default();
        s.memory.usage.limit = 5;
        s.pids.current = 1;
        let v = serde_json::to_value(&s).unwrap();
        // Always-present keys, as in runc's output.
        for k in [
            "cpu",
            "cpuset",
            "memory",
            "pids",
            "blkio",
            "hugetlb",
            "intel_rdt",
            "network_interfaces",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["network_interfaces"], serde_json::Value::Null);
        assert_eq!(v["cpu"]["usage"]["kernel"], 0);
        assert!(v["cpu"]["usage"].get("total").is_none());
        assert!(v["cpu"]["throttling"].as_object().unwrap().is_empty());
        assert_eq!(v["memory"]["usage"]["limit"], 5);
        assert_eq!(v["memory"]["usage"]["failcnt"], 0);
        assert!(v["memory"].get("kernelTCP").is_some());
        assert!(v["memory"].get("raw").is_none());
        assert_eq!(v["pids"]["current"], 1);
        assert!(v["pids"].get("limit").is_none());
        let back: Stats = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }
}
