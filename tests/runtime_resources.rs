//! cgroup resource control: a memory limit OOM-kills an allocation beyond it, a pids limit
//! stops a fork bomb, cpu/cpuset/memory/pids values are written to the container's cgroup
//! (read back on the host), pause/resume freeze and thaw the processes, `events --stats`
//! reports usage, and the cgroup is removed on delete.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

/// Whether `controller` is a v1 hierarchy here (else the unified v2 one is used).
fn is_v1(controller: &str) -> bool {
    mountinfo()
        .iter()
        .any(|m| m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == controller))
}

/// Reads a cgroup file of a container from the host: `v1` (controller, file) on a v1
/// hierarchy, else `v2` file in the unified hierarchy.
fn cg_read(cgroups_path: &str, v1: (&str, &str), v2: &str) -> String {
    let p = if is_v1(v1.0) {
        cgroup_file(v1.0, cgroups_path, v1.1)
    } else {
        cgroup_file(v1.0, cgroups_path, v2)
    };
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("cannot read {p:?}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn memory_limit_oom_kills_an_allocation_beyond_it() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("oom");
    let b = env.bundle(|s| {
        s["linux"]["resources"]["memory"] = json!({ "limit": 32 * 1024 * 1024 });
        // busybox tail keeps a newline-free stream in memory: ~100 MiB.
        sh(s, "head -c 100m /dev/zero | tail > /dev/null; echo rc=$?");
    });
    let out = env.run(&b);
    out.assert_ok();
    assert_eq!(
        out.stdout.trim(),
        "rc=137",
        "the allocation must be OOM-killed: {out}"
    );
    assert!(
        b.cgroup_dirs().is_empty(),
        "cgroup removed after run: {:?}",
        b.cgroup_dirs()
    );

    // Below the limit the same pipeline works.
    let small = env.bundle(|s| {
        s["linux"]["resources"]["memory"] = json!({ "limit": 32 * 1024 * 1024 });
        sh(s, "head -c 4m /dev/zero | tail > /dev/null; echo rc=$?");
    });
    let out = env.run(&small);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "rc=0", "{out}");
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("pids");
    let b = env.bundle(|s| {
        s["linux"]["resources"]["pids"] = json!({ "limit": 20 });
        sh(s, "i=0; while [ $i -lt 50 ]; do sleep 1000 & i=$((i+1)); echo started $i; done; echo loop-finished");
    });
    let out = env.run(&b);
    assert!(
        !out.stdout.contains("loop-finished"),
        "50 processes started under pids.max=20: {out}"
    );
    let started: u32 = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("started "))
        .filter_map(|n| n.parse().ok())
        .max()
        .unwrap_or(0);
    assert!(
        (10..20).contains(&started),
        "between 10 and 19 sleeps fit beside sh: {out}"
    );
    assert!(
        out.stderr.contains("fork") || out.stderr.contains("Resource temporarily unavailable"),
        "fork failure reported: {out}"
    );
    assert!(
        b.cgroup_dirs().is_empty(),
        "cgroup (and its sleeps) removed: {:?}",
        b.cgroup_dirs()
    );
}

#[test]
fn resource_values_are_written_to_the_cgroup() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("cgvals");
    let b = env.bundle(|s| {
        s["linux"]["resources"]["memory"] =
            json!({ "limit": 64 * 1024 * 1024, "reservation": 32 * 1024 * 1024 });
        s["linux"]["resources"]["pids"] = json!({ "limit": 123 });
        s["linux"]["resources"]["cpu"] =
            json!({ "shares": 512, "quota": 50000, "period": 100000, "cpus": "0" });
        set_args(s, &["sleep", "1000"]);
    });
    env.run_detached(&b).assert_ok();
    let p = &b.cgroups_path;
    assert_eq!(
        cg_read(p, ("memory", "memory.limit_in_bytes"), "memory.max"),
        "67108864"
    );
    if is_v1("memory") {
        assert_eq!(
            cg_read(p, ("memory", "memory.soft_limit_in_bytes"), "memory.low"),
            "33554432"
        );
    }
    assert_eq!(cg_read(p, ("pids", "pids.max"), "pids.max"), "123");
    if is_v1("cpu") {
        assert_eq!(cg_read(p, ("cpu", "cpu.shares"), ""), "512");
        assert_eq!(cg_read(p, ("cpu", "cpu.cfs_quota_us"), ""), "50000");
        assert_eq!(cg_read(p, ("cpu", "cpu.cfs_period_us"), ""), "100000");
    } else {
        assert_eq!(cg_read(p, ("cpu", ""), "cpu.max"), "50000 100000");
    }
    assert_eq!(cg_read(p, ("cpuset", "cpuset.cpus"), "cpuset.cpus"), "0");
    // The container's init is in the cgroup of every controller.
    let pid = env.pid(&b.id).to_string();
    for ctrl in ["memory", "pids", "cpu", "cpuset"] {
        let procs = cg_read(p, (ctrl, "cgroup.procs"), "cgroup.procs");
        assert!(
            procs.lines().any(|l| l == pid),
            "{ctrl}: init {pid} not in {procs:?}"
        );
    }
    env.delete_force(&b.id).assert_ok();
    assert!(
        b.cgroup_dirs().is_empty(),
        "cgroup removed after delete: {:?}",
        b.cgroup_dirs()
    );
}

#[test]
fn default_cgroup_path_is_removed_on_delete() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("cgdefault");
    let b = env.bundle(|s| {
        s["linux"].as_object_mut().unwrap().remove("cgroupsPath");
        set_args(s, &["sleep", "1000"]);
    });
    env.run_detached(&b).assert_ok();
    let pid = env.pid(&b.id);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        own.contains(&b.id),
        "without cgroupsPath the cgroup is named after the id: {own}"
    );
    env.delete_force(&b.id).assert_ok();
    let left = cgroup_dirs_named(&b.id);
    assert!(left.is_empty(), "cgroup left behind: {left:?}");
}

#[test]
fn pause_freezes_and_resume_thaws() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("pause");
    let out_dir = env.mkdir("counter");
    let b = env.bundle(|s| {
        bind(s, &out_dir, "/out", false);
        sh(s, "i=0; while true; do i=$((i+1)); echo $i > /out/n.tmp; mv /out/n.tmp /out/n; sleep 0.02; done");
    });
    env.run_detached(&b).assert_ok();
    let n_file = out_dir.join("n");
    let count = || read_lossy(&n_file).trim().parse::<u64>().unwrap_or(0);
    assert!(
        wait_until(10 * SECOND, || count() > 2),
        "counter never advanced"
    );

    env.pause(&b.id).assert_ok();
    assert_eq!(env.status(&b.id), "paused");
    if is_v1("freezer") {
        assert_eq!(
            cg_read(&b.cgroups_path, ("freezer", "freezer.state"), ""),
            "FROZEN"
        );
    }
    let frozen_at = count();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(count(), frozen_at, "processes ran while paused");

    // Pausing twice is refused or harmless; it must not corrupt the state.
    let _ = env.pause(&b.id);
    assert_eq!(env.status(&b.id), "paused");

    env.resume(&b.id).assert_ok();
    assert_eq!(env.status(&b.id), "running");
    assert!(
        wait_until(10 * SECOND, || count() > frozen_at + 2),
        "counter did not resume"
    );

    // A paused container can be force-deleted.
    env.pause(&b.id).assert_ok();
    env.delete_force(&b.id).assert_ok();
    assert!(b.cgroup_dirs().is_empty(), "{:?}", b.cgroup_dirs());
}

#[test]
fn resume_of_a_running_container_fails() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("resume");
    let b = env.bundle(|s| set_args(s, &["sleep", "1000"]));
    env.run_detached(&b).assert_ok();
    env.resume(&b.id).assert_fail();
    assert_eq!(env.status(&b.id), "running");
    env.delete_force(&b.id).assert_ok();
}

#[test]
fn events_stats_reports_memory_and_pids_usage() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("events");
    let b = env.bundle(|s| {
        s["linux"]["resources"]["memory"] = json!({ "limit": 64 * 1024 * 1024 });
        set_args(s, &["sleep", "1000"]);
    });
    env.run_detached(&b).assert_ok();
    let out = env.rt_timeout(&["events", "--stats", &b.id], 20 * SECOND);
    out.assert_ok();
    let line = out.stdout.lines().next().unwrap_or("");
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["type"], "stats", "{v}");
    assert_eq!(v["id"], b.id.as_str(), "{v}");
    let usage = v["data"]["memory"]["usage"]["usage"].as_u64().unwrap_or(0);
    assert!(usage > 0, "memory usage reported: {v}");
    let limit = v["data"]["memory"]["usage"]["limit"].as_u64().unwrap_or(0);
    assert_eq!(limit, 64 * 1024 * 1024, "memory limit reported: {v}");
    assert!(
        v["data"]["pids"]["current"].as_u64().unwrap_or(0) >= 1,
        "pids reported: {v}"
    );
    env.delete_force(&b.id).assert_ok();
}
