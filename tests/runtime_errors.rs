//! Bad input is refused with a clear error and leaves nothing behind: malformed or missing
//! config.json, missing rootfs, unknown namespace type, broken user namespace mappings,
//! a duplicate id, a bad id, an unknown signal, bad process fields, a missing bind source,
//! a bad seccomp action. (Unknown capabilities are a warning, as in runc.)
//! Each failure is checked for: non-zero exit, a message naming the problem (loosely, so
//! runc's and berth's wordings both pass), no state dir, no cgroup, no mount left.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;

/// Runs `create` on a bundle built with `tweak`, expects failure with stderr containing one
/// of `needles` (case-insensitive), and checks nothing is left behind. Returns the output.
#[track_caller]
fn create_fails(env: &TestEnv, tweak: impl FnOnce(&mut Value), needles: &[&str]) -> common::Out {
    let b = env.bundle(|s| {
        set_args(s, &["sleep", "1000"]);
        tweak(s)
    });
    let out = env.create(&b);
    expect_failure(&out, needles);
    env.assert_no_leftovers(&b, &b.id);
    env.state(&b.id).assert_fail();
    out
}

#[track_caller]
fn expect_failure(out: &common::Out, needles: &[&str]) {
    out.assert_fail();
    let err = out.stderr.to_lowercase();
    assert!(
        needles.iter().any(|n| err.contains(&n.to_lowercase())),
        "stderr should mention one of {needles:?}:\n{out}"
    );
}

#[test]
fn malformed_config_json() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("badjson");
    let b = env.bundle(|_| {});
    fs::write(
        b.config_path(),
        "{ \"ociVersion\": \"1.0.2\", \"process\": { not json",
    )
    .unwrap();
    let out = env.create(&b);
    expect_failure(&out, &["config.json", "json", "invalid character"]);
    env.assert_no_leftovers(&b, &b.id);
}

#[test]
fn config_json_with_a_wrongly_typed_field() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("badtype");
    create_fails(
        &env,
        |s| s["process"]["user"]["uid"] = json!("root"),
        &["uid", "json", "config"],
    );
}

#[test]
fn missing_config_json() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("noconfig");
    let b = env.bundle(|_| {});
    fs::remove_file(b.config_path()).unwrap();
    let out = env.create(&b);
    expect_failure(&out, &["config.json"]);
    env.assert_no_leftovers(&b, &b.id);
}

#[test]
fn missing_bundle_directory() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("nobundle");
    let id = env.new_id();
    let missing = env.dir.join("no-such-bundle");
    let out = env.rt(&["create", "--bundle", missing.to_str().unwrap(), &id]);
    expect_failure(&out, &["no-such-bundle", "no such file", "bundle"]);
    assert!(!env.state_dir_exists(&id));
}

#[test]
fn missing_rootfs() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("norootfs");
    let b = env.bundle(|_| {});
    fs::remove_dir_all(b.rootfs()).unwrap();
    let out = env.create(&b);
    expect_failure(&out, &["rootfs", "root"]);
    env.assert_no_leftovers(&b, &b.id);
}

#[test]
fn unknown_namespace_type() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("badns");
    create_fails(
        &env,
        |s| {
            s["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "bogus"}))
        },
        &["namespace", "bogus"],
    );
}

#[test]
fn namespace_path_that_does_not_exist() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("badnspath");
    create_fails(
        &env,
        |s| set_namespace(s, "network", Some("/run/netns/berth-e2e-does-not-exist")),
        &["berth-e2e-does-not-exist", "namespace"],
    );
}

#[test]
fn user_namespace_without_mappings() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("nomap");
    create_fails(
        &env,
        |s| set_namespace(s, "user", None),
        &["mapping", "uid_map", "user namespace", "userns"],
    );
}

#[test]
fn overlapping_uid_mappings() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("overlap");
    create_fails(
        &env,
        |s| {
            set_namespace(s, "user", None);
            s["linux"]["uidMappings"] = json!([
                { "containerID": 0, "hostID": 100000, "size": 1000 },
                { "containerID": 500, "hostID": 200000, "size": 1000 }
            ]);
            s["linux"]["gidMappings"] =
                json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
        },
        &["map", "overlap", "invalid argument"],
    );
}

#[test]
fn duplicate_container_id() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("dupid");
    let b = env.bundle(|s| set_args(s, &["sleep", "1000"]));
    env.run_detached(&b).assert_ok();
    let pid = env.pid(&b.id);
    let other = env.bundle(|s| set_args(s, &["true"]));
    let out = env.create_with(&other, &b.id, &[]);
    expect_failure(&out, &["exist", &b.id]);
    assert_eq!(
        env.status(&b.id),
        "running",
        "the original container is untouched"
    );
    assert_eq!(env.pid(&b.id), pid);
    assert!(pid_alive(pid));
    assert!(mounts_mentioning(&other.dir).is_empty());
    env.delete_force(&b.id).assert_ok();
}

#[test]
fn invalid_container_ids_are_refused() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("badid");
    let b = env.bundle(|s| set_args(s, &["true"]));
    for id in ["../escape", "a/b", "", ".."] {
        let out = env.rt(&["create", "--bundle", b.dir.to_str().unwrap(), id]);
        out.assert_fail();
        assert!(!env.dir.join("escape").exists(), "id {id:?} escaped --root");
    }
    assert!(b.cgroup_dirs().is_empty());
    assert!(mounts_mentioning(&b.dir).is_empty());
}

#[test]
fn kill_with_an_unknown_signal() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("badsig");
    let b = env.bundle(|s| set_args(s, &["sleep", "1000"]));
    env.run_detached(&b).assert_ok();
    for sig in ["NOSUCHSIG", "SIGNOPE", "999"] {
        let out = env.kill(&b.id, sig);
        expect_failure(&out, &["signal", sig]);
    }
    assert_eq!(
        env.status(&b.id),
        "running",
        "a refused kill leaves the container running"
    );
    env.delete_force(&b.id).assert_ok();
}

#[test]
fn empty_process_args() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("noargs");
    create_fails(&env, |s| s["process"]["args"] = json!([]), &["args"]);
}

#[test]
fn relative_cwd() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("relcwd");
    create_fails(
        &env,
        |s| s["process"]["cwd"] = "relative/dir".into(),
        &["cwd", "absolute"],
    );
}

#[test]
fn unknown_rlimit_type() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("badrlimit");
    create_fails(
        &env,
        |s| s["process"]["rlimits"] = json!([{ "type": "RLIMIT_BOGUS", "soft": 1, "hard": 1 }]),
        &["rlimit"],
    );
}

/// runc's behaviour, which clients rely on when a spec names capabilities newer than the
/// kernel: unknown capabilities are skipped with a warning, not an error.
#[test]
fn unknown_capability_is_ignored_with_a_warning() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("badcap");
    let b = env.bundle(|s| {
        set_caps(s, &["CAP_KILL", "CAP_BOGUS"]);
        sh(s, "grep CapEff /proc/self/status");
    });
    let out = env.run(&b);
    out.assert_ok();
    assert!(
        out.stderr.contains("CAP_BOGUS"),
        "a warning names the unknown capability: {out}"
    );
    let eff = out.stdout.split_whitespace().nth(1).unwrap_or("");
    assert_eq!(
        u64::from_str_radix(eff, 16).ok(),
        Some(cap_mask(&["CAP_KILL"])),
        "{out}"
    );
}

#[test]
fn bind_mount_of_a_missing_source() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("badbind");
    let missing = env.dir.join("no-such-source");
    create_fails(
        &env,
        |s| bind(s, &missing, "/mnt/x", false),
        &["no-such-source", "no such file"],
    );
}

#[test]
fn missing_executable() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("noexe");
    let b = env.bundle(|s| set_args(s, &["/bin/no-such-program"]));
    let out = env.run(&b);
    expect_failure(&out, &["no-such-program"]);
    env.assert_no_leftovers(&b, &b.id);
}

#[test]
fn unknown_seccomp_action() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("badseccomp");
    create_fails(
        &env,
        |s| {
            s["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_BOGUS" }]
            })
        },
        &["seccomp", "SCMP_ACT_BOGUS", "action"],
    );
}

#[test]
fn failed_create_then_same_id_works() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("retry");
    let b = env.bundle(|s| set_args(s, &["sh", "-c", "echo second-try"]));
    let good = b.spec();
    b.edit(|s| {
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "bogus"}))
    });
    env.create(&b).assert_fail();
    fs::write(b.config_path(), serde_json::to_vec(&good).unwrap()).unwrap();
    let out = env.run(&b);
    out.assert_ok();
    assert!(out.stdout.contains("second-try"), "{out}");
}
