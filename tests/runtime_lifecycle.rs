//! Container lifecycle through the runtime's runc command line: create → start → kill →
//! delete with the state each step reports, `run` (foreground exit codes, detached), `list`,
//! `kill --all`, `delete --force`, refusing a second `start`, and containers that exit at
//! once, in a loop, never hanging the runtime.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

/// A script that runs until SIGTERM (pid 1 of a pid namespace ignores signals it has no
/// handler for, so the trap is what makes SIGTERM stop it).
const UNTIL_TERM: &str =
    "trap 'echo got-term; exit 0' TERM; echo started; while true; do sleep 0.05; done";

#[test]
fn create_start_kill_delete_reports_each_state() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("life");
    let b = env.bundle(|s| sh(s, UNTIL_TERM));
    let pid_file = env.dir.join("container.pid");

    let created = env.create_with(&b, &b.id, &["--pid-file", pid_file.to_str().unwrap()]);
    created.assert_ok();

    let st = env.state_json(&b.id);
    assert_eq!(st["status"], "created", "state after create: {st}");
    assert_eq!(st["id"], b.id.as_str(), "state id: {st}");
    let bundle = fs::canonicalize(&b.dir).unwrap();
    assert_eq!(
        fs::canonicalize(st["bundle"].as_str().unwrap_or("?")).ok(),
        Some(bundle),
        "state bundle: {st}"
    );
    let oci = st["ociVersion"].as_str().unwrap_or("");
    assert!(
        oci.starts_with("1."),
        "ociVersion should be a 1.x spec version: {st}"
    );
    let pid = st["pid"].as_i64().unwrap_or(0) as i32;
    assert!(
        pid > 0 && pid_alive(pid),
        "created container has a live init pid: {st}"
    );

    let pid_text = fs::read_to_string(&pid_file).expect("--pid-file was written at create");
    assert_eq!(
        pid_text.trim(),
        pid.to_string(),
        "pid file matches state pid"
    );

    // The user process has not started yet: nothing printed.
    std::thread::sleep(Duration::from_millis(100));
    let (out, _) = created.reread();
    assert!(
        !out.contains("started"),
        "process ran before start: {out:?}"
    );

    env.start(&b.id).assert_ok();
    assert_eq!(env.status(&b.id), "running");
    assert_eq!(env.pid(&b.id), pid, "pid is stable across start");
    wait_file_contains(&created.stdout_path, "started", 10 * SECOND);

    env.kill(&b.id, "SIGTERM").assert_ok();
    assert!(
        env.wait_status(&b.id, "stopped", 10 * SECOND),
        "container did not stop after SIGTERM: {}",
        env.state(&b.id)
    );
    wait_file_contains(&created.stdout_path, "got-term", 5 * SECOND);
    assert!(!pid_alive(pid), "init process gone after stop");

    assert!(env.state_dir_exists(&b.id), "state kept until delete");
    env.delete(&b.id).assert_ok();
    assert!(!env.state_dir_exists(&b.id), "state dir removed by delete");
    let st = env.state(&b.id);
    st.assert_fail();
    assert!(
        b.cgroup_dirs().is_empty(),
        "cgroup removed after delete: {:?}",
        b.cgroup_dirs()
    );
}

#[test]
fn kill_accepts_signal_names_and_numbers() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("sigs");
    let b = env.bundle(|s| {
        sh(s, "trap 'echo usr1' USR1; trap 'exit 0' TERM; echo ready; while true; do sleep 0.05; done")
    });
    let c = env.run_detached(&b);
    c.assert_ok();
    wait_file_contains(&c.stdout_path, "ready", 10 * SECOND);
    env.kill(&b.id, "USR1").assert_ok();
    wait_file_contains(&c.stdout_path, "usr1", 5 * SECOND);
    env.kill(&b.id, "SIGUSR1").assert_ok();
    // Default signal of `kill` is SIGTERM.
    env.rt(&["kill", &b.id]).assert_ok();
    assert!(env.wait_status(&b.id, "stopped", 10 * SECOND));
    env.delete(&b.id).assert_ok();
}

#[test]
fn run_returns_the_container_exit_code_and_output() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("exitcode");
    let b = env.bundle(|s| sh(s, "echo to-stdout; echo to-stderr >&2; exit 7"));
    let out = env.run(&b);
    out.assert_code(7);
    assert!(out.stdout.contains("to-stdout"), "{out}");
    assert!(out.stderr.contains("to-stderr"), "{out}");
    // run deletes the container when it exits.
    assert!(!env.state_dir_exists(&b.id), "run leaves no state behind");
    assert!(
        b.cgroup_dirs().is_empty(),
        "run leaves no cgroup: {:?}",
        b.cgroup_dirs()
    );

    let ok = env.bundle(|s| set_args(s, &["true"]));
    env.run(&ok).assert_code(0);

    // Killed by a signal: 128 + signal number, like a shell.
    let killed = env.bundle(|s| set_args(s, &["sleep", "1000"]));
    let out = std::thread::scope(|scope| {
        let runner = scope.spawn(|| env.run(&killed));
        assert!(
            env.wait_status(&killed.id, "running", 10 * SECOND),
            "foreground container never ran"
        );
        env.kill(&killed.id, "KILL").assert_ok();
        runner.join().unwrap()
    });
    out.assert_code(137);
}

#[test]
fn run_detached_returns_while_the_container_runs() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("detach");
    let b = env.bundle(|s| sh(s, "echo hello-detached; exec sleep 1000"));
    let out = env.run_detached(&b);
    out.assert_ok();
    assert_eq!(env.status(&b.id), "running");
    wait_file_contains(&out.stdout_path, "hello-detached", 10 * SECOND);
    let pid = env.pid(&b.id);
    assert!(pid_alive(pid));
    env.kill(&b.id, "KILL").assert_ok();
    assert!(env.wait_status(&b.id, "stopped", 10 * SECOND));
    env.delete(&b.id).assert_ok();
    assert!(b.cgroup_dirs().is_empty());
}

#[test]
fn list_shows_containers_as_table_and_json() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("list");
    let running = env.bundle(|s| set_args(s, &["sleep", "1000"]));
    let created = env.bundle(|s| set_args(s, &["sleep", "1000"]));
    env.run_detached(&running).assert_ok();
    env.create(&created).assert_ok();

    let table = env.list(&[]);
    table.assert_ok();
    let header = table.stdout.lines().next().unwrap_or("");
    for col in ["ID", "PID", "STATUS", "BUNDLE"] {
        assert!(header.contains(col), "table header lacks {col}: {table}");
    }
    let line_of = |id: &str| {
        table
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("{id} not listed: {table}"))
            .to_string()
    };
    assert!(line_of(&running.id).contains("running"));
    assert!(line_of(&created.id).contains("created"));

    let quiet = env.list(&["-q"]);
    quiet.assert_ok();
    let mut ids: Vec<&str> = quiet.stdout.lines().collect();
    ids.sort();
    let mut want = vec![running.id.as_str(), created.id.as_str()];
    want.sort();
    assert_eq!(ids, want, "list -q prints one id per line");

    let json = env.list(&["--format", "json"]);
    json.assert_ok();
    let v: Value = serde_json::from_str(&json.stdout).unwrap_or_else(|e| panic!("{e}: {json}"));
    let arr = v.as_array().expect("list --format json prints an array");
    let find = |id: &str| arr.iter().find(|c| c["id"] == id).cloned();
    let r = find(&running.id).expect("running container in json list");
    assert_eq!(r["status"], "running");
    assert_eq!(r["pid"].as_i64().unwrap_or(0) as i32, env.pid(&running.id));
    assert!(r["bundle"]
        .as_str()
        .unwrap_or("")
        .ends_with(running.dir.file_name().unwrap().to_str().unwrap()));
    assert_eq!(
        find(&created.id).expect("created container listed")["status"],
        "created"
    );
}

#[test]
fn list_on_an_empty_root_prints_no_containers() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("listempty");
    let out = env.list(&["--format", "json"]);
    out.assert_ok();
    let text = out.stdout.trim();
    assert!(
        text == "null" || text == "[]",
        "no containers: json null or [] expected: {out}"
    );
}

#[test]
fn kill_all_signals_every_process_in_the_container() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("killall");
    let b = env.bundle(|s| sh(s, "sleep 1000 & sleep 1000 & echo ready; wait"));
    let out = env.run_detached(&b);
    out.assert_ok();
    wait_file_contains(&out.stdout_path, "ready", 10 * SECOND);
    let procs_file = cgroup_file("pids", &b.cgroups_path, "cgroup.procs");
    let mut pids: Vec<i32> = Vec::new();
    assert!(
        wait_until(5 * SECOND, || {
            pids = read_lossy(&procs_file)
                .lines()
                .filter_map(|l| l.parse().ok())
                .collect();
            pids.len() >= 3
        }),
        "expected sh and two sleeps in {procs_file:?}, got {pids:?}"
    );
    env.kill_all(&b.id, "KILL").assert_ok();
    assert!(env.wait_status(&b.id, "stopped", 10 * SECOND));
    assert!(
        wait_until(5 * SECOND, || pids.iter().all(|&p| !pid_alive(p))),
        "some container processes survived kill --all: {:?}",
        pids.iter().filter(|&&p| pid_alive(p)).collect::<Vec<_>>()
    );
    env.delete(&b.id).assert_ok();
}

#[test]
fn delete_refuses_a_running_container_unless_forced() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("delforce");
    let b = env.bundle(|s| set_args(s, &["sleep", "1000"]));
    env.run_detached(&b).assert_ok();
    let pid = env.pid(&b.id);

    let refused = env.delete(&b.id);
    refused.assert_fail();
    assert!(
        pid_alive(pid),
        "plain delete must not kill a running container"
    );
    assert_eq!(env.status(&b.id), "running");

    env.delete_force(&b.id).assert_ok();
    assert!(
        wait_until(5 * SECOND, || !pid_alive(pid)),
        "delete --force kills the init"
    );
    env.state(&b.id).assert_fail();
    assert!(!env.state_dir_exists(&b.id));
    assert!(b.cgroup_dirs().is_empty(), "{:?}", b.cgroup_dirs());
}

#[test]
fn delete_force_of_a_created_container_cleans_up() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("delcreated");
    let b = env.bundle(|s| set_args(s, &["sleep", "1000"]));
    env.create(&b).assert_ok();
    let pid = env.pid(&b.id);
    env.delete_force(&b.id).assert_ok();
    assert!(wait_until(5 * SECOND, || !pid_alive(pid)));
    env.assert_no_leftovers(&b, &b.id);
}

/// runc deletes a container that was created but never started without `--force`
/// (containerd relies on this when a task is aborted before start).
#[test]
fn delete_of_a_created_container_needs_no_force() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("delcreated2");
    let b = env.bundle(|s| set_args(s, &["sleep", "1000"]));
    env.create(&b).assert_ok();
    let pid = env.pid(&b.id);
    env.delete(&b.id).assert_ok();
    assert!(
        wait_until(5 * SECOND, || !pid_alive(pid)),
        "the init of a deleted container is killed"
    );
    env.assert_no_leftovers(&b, &b.id);
}

#[test]
fn start_twice_fails() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("start2");
    let b = env.bundle(|s| set_args(s, &["sleep", "1000"]));
    env.create(&b).assert_ok();
    env.start(&b.id).assert_ok();
    let again = env.start(&b.id);
    again.assert_fail();
    assert_eq!(
        env.status(&b.id),
        "running",
        "a refused start leaves it running"
    );
    env.kill(&b.id, "KILL").assert_ok();
    assert!(env.wait_status(&b.id, "stopped", 10 * SECOND));
    // A stopped container cannot be started again either.
    env.start(&b.id).assert_fail();
    env.delete(&b.id).assert_ok();
}

#[test]
fn container_that_exits_at_once_never_hangs_run() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("loop");
    let b = env.bundle(|s| set_args(s, &["true"]));
    let fails = env.bundle(|s| sh(s, "exit 3"));
    for i in 0..50 {
        let (bundle, want) = if i % 5 == 4 { (&fails, 3) } else { (&b, 0) };
        let id = env.new_id();
        let cmd = env.command(&[
            "run".as_ref(),
            "--bundle".as_ref(),
            bundle.dir.as_os_str(),
            std::ffi::OsStr::new(&id),
        ]);
        let out = try_output(cmd, 10 * SECOND, &env.dir)
            .unwrap_or_else(|e| panic!("iteration {i}: run hung: {e}"));
        assert_eq!(out.code, want, "iteration {i}:\n{out}");
    }
    assert!(b.cgroup_dirs().is_empty());
}

#[test]
fn created_container_that_exits_at_once_reaches_stopped() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("loop2");
    let b = env.bundle(|s| set_args(s, &["true"]));
    for i in 0..10 {
        let id = env.new_id();
        env.create_with(&b, &id, &[]).assert_ok();
        env.start(&id).assert_ok();
        assert!(
            env.wait_status(&id, "stopped", 10 * SECOND),
            "iteration {i}: never reported stopped: {}",
            env.state(&id)
        );
        env.delete(&id).assert_ok();
    }
}
