//! OCI hooks: prestart, createRuntime, createContainer (at create), startContainer, poststart
//! (at start) and poststop (at delete) run in that order, each gets the container state on
//! stdin, hook env/args are passed, a failing create-time hook fails the create and leaves
//! nothing behind, and a hook exceeding its timeout is killed.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

/// A hook that appends its name, then the state it got on stdin, to `log`. `sh` is the shell
/// path as seen where the hook runs.
fn logging_hook(sh: &str, name: &str, log: &str) -> Value {
    json!({
        "path": sh,
        "args": ["sh", "-c", format!("echo {name} >> {log}; cat >> {log}; echo >> {log}")],
    })
}

/// Parses the hook log: (hook name, state JSON) pairs in the order they ran.
fn read_log(log: &Path) -> Vec<(String, Value)> {
    let text = read_lossy(log);
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(2)
        .map(|c| {
            let state = c.get(1).copied().unwrap_or("");
            let v = serde_json::from_str(state)
                .unwrap_or_else(|e| panic!("hook {} got bad state {state:?}: {e}", c[0]));
            (c[0].to_string(), v)
        })
        .collect()
}

#[test]
fn hooks_run_in_order_with_the_container_state() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("hooks");
    let logdir = env.mkdir("hooklog");
    let log = logdir.join("log");
    let host_log = log.to_str().unwrap().to_string();
    let b = env.bundle(|s| {
        bind(s, &logdir, "/hooklog", false);
        s["hooks"] = json!({
            "prestart": [logging_hook("/bin/sh", "prestart", &host_log)],
            "createRuntime": [logging_hook("/bin/sh", "createRuntime", &host_log)],
            "createContainer": [logging_hook("/bin/sh", "createContainer", &host_log)],
            // startContainer runs inside the container: container paths.
            "startContainer": [logging_hook("/bin/sh", "startContainer", "/hooklog/log")],
            "poststart": [logging_hook("/bin/sh", "poststart", &host_log)],
            "poststop": [logging_hook("/bin/sh", "poststop", &host_log)],
        });
        sh(s, "echo main >> /hooklog/log; echo '{}' >> /hooklog/log");
    });
    let names = |l: &[(String, Value)]| l.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();

    env.create(&b).assert_ok();
    let pid = env.pid(&b.id);
    // poststart's timing is checked by poststart_runs_at_start_not_at_create (runc 1.1 runs it
    // at create); here only the order of the rest.
    let after_create: Vec<String> = names(&read_log(&log))
        .into_iter()
        .filter(|n| n != "poststart")
        .collect();
    assert_eq!(
        after_create,
        ["prestart", "createRuntime", "createContainer"],
        "at create"
    );

    env.start(&b.id).assert_ok();
    assert!(
        env.wait_status(&b.id, "stopped", 10 * SECOND),
        "container did not finish"
    );
    assert!(
        wait_until(5 * SECOND, || read_log(&log).len() >= 6),
        "poststart not run: {:?}",
        read_lossy(&log)
    );
    let after_start = read_log(&log);
    let n: Vec<String> = names(&after_start)
        .into_iter()
        .filter(|n| n != "poststart")
        .collect();
    assert_eq!(
        n,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "main"
        ],
        "{n:?}"
    );
    let all_names = names(&after_start);
    let pos = |h: &str| all_names.iter().position(|x| x == h).unwrap();
    assert!(pos("poststart") > pos("createContainer"), "{all_names:?}");

    env.delete(&b.id).assert_ok();
    let all = read_log(&log);
    assert_eq!(
        all.last().map(|(n, _)| n.as_str()),
        Some("poststop"),
        "poststop runs at delete"
    );
    assert_eq!(all.len(), 7);

    let bundle = fs::canonicalize(&b.dir).unwrap();
    for (name, state) in &all {
        if name == "main" {
            continue;
        }
        assert_eq!(
            state["id"],
            b.id.as_str(),
            "{name} got the container id: {state}"
        );
        assert_eq!(
            fs::canonicalize(state["bundle"].as_str().unwrap_or("?"))
                .ok()
                .as_ref(),
            Some(&bundle),
            "{name} got the bundle: {state}"
        );
        assert!(
            state["ociVersion"].as_str().unwrap_or("").starts_with("1."),
            "{name}: {state}"
        );
        match name.as_str() {
            "poststop" => {}
            // These run inside the container's namespaces, where the init may be seen as pid 1.
            "createContainer" | "startContainer" => assert!(
                state["pid"].as_i64() == Some(pid as i64) || state["pid"].as_i64() == Some(1),
                "{name} got the init pid: {state}"
            ),
            _ => assert_eq!(
                state["pid"].as_i64(),
                Some(pid as i64),
                "{name} got the init pid: {state}"
            ),
        }
    }
    let status = |hook: &str| all.iter().find(|(n, _)| n == hook).unwrap().1["status"].clone();
    assert_eq!(status("poststop"), "stopped");
    for h in ["prestart", "createRuntime", "createContainer"] {
        let s = status(h);
        assert!(s == "creating" || s == "created", "{h} status {s}");
    }
}

/// Spec: poststart hooks run after the user process has started, i.e. during `start`.
/// runc 1.1 runs them at the end of `create` (fixed in runc 1.2).
#[test]
fn poststart_runs_at_start_not_at_create() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("poststart");
    let log = env.dir.join("hook.log");
    let b = env.bundle(|s| {
        s["hooks"] =
            json!({ "poststart": [logging_hook("/bin/sh", "poststart", log.to_str().unwrap())] });
        set_args(s, &["sleep", "1000"]);
    });
    env.create(&b).assert_ok();
    assert!(
        read_lossy(&log).is_empty(),
        "poststart ran at create: {:?}",
        read_lossy(&log)
    );
    env.start(&b.id).assert_ok();
    let l = read_log(&log);
    assert_eq!(
        l.len(),
        1,
        "poststart ran once, by the time start returned: {l:?}"
    );
    assert_eq!(l[0].1["status"], "running");
    env.delete_force(&b.id).assert_ok();
}

#[test]
fn hook_args_and_env_are_passed() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("hookenv");
    let out_file = env.dir.join("hook-out");
    let b = env.bundle(|s| {
        s["hooks"] = json!({
            "createRuntime": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", format!("echo \"$0|$1|$HOOKVAR|$PATH\" > {}", out_file.display()), "first", "second"],
                "env": ["HOOKVAR=from-spec", "PATH=/hook/path"],
            }]
        });
        set_args(s, &["true"]);
    });
    env.run(&b).assert_ok();
    assert_eq!(read_lossy(&out_file), "first|second|from-spec|/hook/path\n");
}

#[test]
fn failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("hookfail");
    let b = env.bundle(|s| {
        s["hooks"] = json!({
            "createRuntime": [{ "path": "/bin/sh", "args": ["sh", "-c", "echo hook-said-no >&2; exit 3"] }]
        });
        set_args(s, &["sleep", "1000"]);
    });
    let out = env.create(&b);
    out.assert_fail();
    assert!(
        out.stderr.contains("hook") || out.stderr.contains("hook-said-no"),
        "error mentions the hook: {out}"
    );
    assert!(env.state(&b.id).code != 0 || env.status(&b.id) == "stopped");
    env.delete_force(&b.id);
    env.assert_no_leftovers(&b, &b.id);
}

#[test]
fn hook_exceeding_its_timeout_fails_create() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("hooktimeout");
    let b = env.bundle(|s| {
        s["hooks"] = json!({
            "prestart": [{ "path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1 }]
        });
        set_args(s, &["true"]);
    });
    let started = std::time::Instant::now();
    let out = env.rt_timeout(
        &[
            "create".as_ref(),
            "--bundle".as_ref(),
            b.dir.as_os_str(),
            b.id.as_ref(),
        ] as &[&std::ffi::OsStr],
        20 * SECOND,
    );
    out.assert_fail();
    assert!(
        started.elapsed() < 15 * SECOND,
        "the hook was not cut off at its timeout"
    );
    assert!(
        out.stderr.to_lowercase().contains("timed out")
            || out.stderr.to_lowercase().contains("timeout"),
        "{out}"
    );
    env.delete_force(&b.id);
    env.assert_no_leftovers(&b, &b.id);
}

#[test]
fn poststop_runs_on_delete_force_of_a_running_container() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("hookstop");
    let log = env.dir.join("poststop.log");
    let b = env.bundle(|s| {
        s["hooks"] =
            json!({ "poststop": [logging_hook("/bin/sh", "poststop", log.to_str().unwrap())] });
        set_args(s, &["sleep", "1000"]);
    });
    env.run_detached(&b).assert_ok();
    assert!(read_lossy(&log).is_empty());
    env.delete_force(&b.id).assert_ok();
    let l = read_log(&log);
    assert_eq!(l.len(), 1, "poststop ran once: {l:?}");
    assert_eq!(l[0].1["id"], b.id.as_str());
}
