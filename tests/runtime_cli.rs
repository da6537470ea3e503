//! The runtime's informational verbs: `spec` (and `spec --rootless`) writes a config.json that
//! `run` accepts, `features` describes what the runtime supports, `state`/`kill`/`delete` of an
//! unknown id fail cleanly, and the `berth-runtime` name works as a single binary path.

mod common;

use common::*;
use serde_json::Value;
use std::fs;

/// Runs `spec EXTRA… --bundle DIR` in a fresh dir and returns the dir.
fn write_spec(env: &TestEnv, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let dir = env.mkdir(name);
    let mut args = vec!["spec"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--bundle", dir.to_str().unwrap()]);
    env.rt(&args).assert_ok();
    dir
}

fn load(dir: &std::path::Path) -> Value {
    let text = fs::read_to_string(dir.join("config.json")).expect("spec writes config.json");
    serde_json::from_str(&text).expect("config.json is JSON")
}

#[test]
fn spec_writes_a_config_that_run_accepts() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("spec");
    let dir = write_spec(&env, "specbundle", &[]);
    let mut spec = load(&dir);
    assert!(
        spec["ociVersion"].as_str().unwrap_or("").starts_with("1."),
        "{spec}"
    );
    assert_eq!(spec["root"]["path"], "rootfs");
    assert!(spec["process"]["args"].is_array());
    let ns: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for want in ["pid", "mount", "ipc", "uts", "network"] {
        assert!(ns.contains(&want), "spec lacks a {want} namespace: {ns:?}");
    }

    // The only edits: no terminal (the test has none) and a command that exits.
    spec["process"]["terminal"] = Value::Bool(false);
    spec["process"]["args"] = serde_json::json!(["sh", "-c", "echo spec-ok"]);
    fs::write(dir.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    build_rootfs(&dir.join("rootfs"));
    let id = env.new_id();
    let b = Bundle {
        dir,
        id: id.clone(),
        cgroups_path: String::new(),
    };
    let out = env.run(&b);
    out.assert_ok();
    assert!(out.stdout.contains("spec-ok"), "{out}");
}

#[test]
fn spec_refuses_to_overwrite_an_existing_config() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("specexist");
    let dir = write_spec(&env, "b", &[]);
    let out = env.rt(&["spec", "--bundle", dir.to_str().unwrap()]);
    out.assert_fail();
    assert!(
        out.stderr.contains("config.json"),
        "error names the file: {out}"
    );
}

#[test]
fn spec_rootless_writes_a_user_namespace_config_that_runs() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("specrl");
    let dir = write_spec(&env, "rl", &["--rootless"]);
    let mut spec = load(&dir);
    let ns: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert!(
        ns.contains(&"user"),
        "rootless spec has a user namespace: {ns:?}"
    );
    assert!(
        !ns.contains(&"network"),
        "rootless spec keeps the host network: {ns:?}"
    );
    let uid = nix::unistd::geteuid().as_raw();
    assert_eq!(
        spec["linux"]["uidMappings"][0]["hostID"].as_u64(),
        Some(uid as u64),
        "{spec}"
    );
    assert_eq!(
        spec["linux"]["uidMappings"][0]["containerID"].as_u64(),
        Some(0)
    );
    assert!(spec["linux"]["gidMappings"].is_array());

    spec["process"]["terminal"] = Value::Bool(false);
    spec["process"]["args"] = serde_json::json!(["cat", "/proc/self/uid_map"]);
    fs::write(dir.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    build_rootfs(&dir.join("rootfs"));
    let id = env.new_id();
    let b = Bundle {
        dir,
        id,
        cgroups_path: String::new(),
    };
    let out = env.run(&b);
    out.assert_ok();
    let fields: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(fields, vec!["0", &uid.to_string(), "1"], "{out}");
}

#[test]
fn features_describes_the_runtime() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("features");
    let out = env.rt(&["features"]);
    out.assert_ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
    let min = v["ociVersionMin"].as_str().unwrap_or("");
    let max = v["ociVersionMax"].as_str().unwrap_or("");
    assert!(min.starts_with("1."), "ociVersionMin: {v}");
    assert!(max.starts_with("1."), "ociVersionMax: {v}");
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces list")
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    for want in ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"] {
        assert!(
            ns.contains(&want),
            "features lacks namespace {want}: {ns:?}"
        );
    }
    let hooks: Vec<&str> = v["hooks"]
        .as_array()
        .expect("hooks list")
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    for want in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(
            hooks.contains(&want),
            "features lacks hook {want}: {hooks:?}"
        );
    }
    assert!(v["mountOptions"]
        .as_array()
        .is_some_and(|a| a.iter().any(|o| o == "rbind")));
    let caps = v["linux"]["capabilities"]
        .as_array()
        .expect("linux.capabilities");
    assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
}

#[test]
fn verbs_on_an_unknown_id_fail() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("unknown");
    let id = env.new_id();
    for args in [
        vec!["state", id.as_str()],
        vec!["start", id.as_str()],
        vec!["kill", id.as_str(), "KILL"],
        vec!["delete", id.as_str()],
        vec!["pause", id.as_str()],
        vec!["exec", id.as_str(), "true"],
    ] {
        let out = env.rt(&args);
        out.assert_fail();
        assert!(
            out.stderr.contains(&id)
                || out.stderr.to_lowercase().contains("not exist")
                || out.stderr.to_lowercase().contains("not found"),
            "error should say the container does not exist: {out}"
        );
    }
    // delete --force of an unknown id is not an error (clients use it to clean up).
    env.delete_force(&id).assert_ok();
}

#[test]
fn berth_runtime_named_path_runs_containers() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("argv0");
    let b = env.bundle(|s| sh(s, "echo via-symlink"));
    let bin = env.berth_runtime_path();
    assert_eq!(bin.file_name().unwrap(), "berth-runtime");
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg("--root")
        .arg(&env.root)
        .arg("run")
        .arg("--bundle")
        .arg(&b.dir)
        .arg(&b.id);
    cmd.stdin(std::process::Stdio::null());
    let out = env.output_of(cmd, DEFAULT_TIMEOUT);
    out.assert_ok();
    assert!(out.stdout.contains("via-symlink"), "{out}");
}

#[test]
fn global_log_flags_are_accepted() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("logflags");
    let b = env.bundle(|s| set_args(s, &["true"]));
    let log = env.dir.join("runtime.log");
    let out = env.rt(&[
        "--log".as_ref(),
        log.as_os_str(),
        "--log-format".as_ref(),
        "json".as_ref(),
        "run".as_ref(),
        "--bundle".as_ref(),
        b.dir.as_os_str(),
        b.id.as_ref(),
    ]);
    // `--root` comes first from the harness; global flags may follow it.
    out.assert_ok();
    // A failing command writes its error to the log as JSON lines.
    let bad = env.rt(&[
        "--log".as_ref(),
        log.as_os_str(),
        "--log-format".as_ref(),
        "json".as_ref(),
        "start".as_ref(),
        "no-such-container-xyz".as_ref(),
    ]);
    bad.assert_fail();
    let text = read_lossy(&log);
    let last = text.lines().last().unwrap_or("");
    let v: Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("log line not JSON ({e}): {text:?}"));
    assert!(v.get("msg").is_some(), "json log lines carry msg: {v}");
}
