//! The container process as configured by `process`: user, groups, umask, cwd, env and HOME,
//! rlimits, oom_score_adj, no_new_privileges and the five capability sets.

mod common;

use common::*;
use serde_json::json;

fn run_sh(env: &TestEnv, script: &str, tweak: impl FnOnce(&mut serde_json::Value)) -> common::Out {
    let b = env.bundle(|s| {
        sh(s, script);
        tweak(s)
    });
    env.run(&b)
}

/// The value of a `Name:` line of /proc/self/status as printed by the container.
fn status_field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name}: in {text:?}"))
}

#[test]
fn user_group_and_additional_groups() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("user");
    let out = run_sh(&env, "id -u; id -g; cat /proc/self/status; id", |s| {
        s["process"]["user"] = json!({ "uid": 1000, "gid": 1000, "additionalGids": [2000, 3000] });
    });
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..2], &["1000", "1000"], "{out}");
    assert_eq!(status_field(&out.stdout, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out.stdout, "Gid"), "1000\t1000\t1000\t1000");
    let groups: Vec<&str> = status_field(&out.stdout, "Groups")
        .split_whitespace()
        .collect();
    assert!(
        groups.contains(&"2000") && groups.contains(&"3000"),
        "supplementary groups: {groups:?}"
    );
    assert!(
        !groups.contains(&"0"),
        "root group must not leak into the groups: {groups:?}"
    );
    assert!(
        out.stdout.contains("uid=1000(u1000)"),
        "names come from the rootfs /etc/passwd: {out}"
    );
}

#[test]
fn root_user_has_no_stray_supplementary_groups() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("rootgroups");
    let out = run_sh(&env, "grep Groups /proc/self/status", |_| {});
    out.assert_ok();
    let groups = status_field(&out.stdout, "Groups");
    assert!(
        groups.is_empty() || groups == "0",
        "unexpected groups {groups:?}"
    );
}

#[test]
fn umask_is_applied() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("umask");
    let out = run_sh(&env, "umask; touch /tmp/f; stat -c %a /tmp/f", |s| {
        s["process"]["user"]["umask"] = json!(0o027);
        tmpfs_tmp(s);
    });
    out.assert_ok();
    assert_eq!(out.stdout, "0027\n640\n", "{out}");
}

#[test]
fn default_umask_is_0022() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("umask0");
    let out = run_sh(&env, "umask", |_| {});
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "0022", "{out}");
}

#[test]
fn cwd_is_applied() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("cwd");
    let out = run_sh(&env, "pwd", |s| s["process"]["cwd"] = "/home/u1000".into());
    out.assert_ok();
    assert_eq!(out.stdout, "/home/u1000\n");
}

#[test]
fn env_is_exactly_the_configured_one_plus_home() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("env");
    let out = run_sh(
        &env,
        "echo \"[$FOO]\"; echo \"[$EMPTY]\"; echo home=$HOME; env | sort",
        |s| {
            s["process"]["env"] = json!(["PATH=/bin:/sbin", "FOO=bar baz=qux", "EMPTY=",]);
            s["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
        },
    );
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0], "[bar baz=qux]",
        "values keep spaces and '=': {out}"
    );
    assert_eq!(lines[1], "[]");
    assert_eq!(
        lines[2], "home=/home/u1000",
        "HOME defaults to the passwd entry: {out}"
    );
    let host_only = std::env::vars()
        .map(|(k, _)| k)
        .find(|k| k == "CARGO_MANIFEST_DIR" || k == "USER");
    if let Some(k) = host_only {
        assert!(
            !out.stdout.contains(&format!("{k}=")),
            "host env leaked ({k}): {out}"
        );
    }
}

#[test]
fn rlimit_nofile_below_the_host_hard_limit() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("rlimit");
    let out = run_sh(
        &env,
        "ulimit -n; ulimit -H -n; grep 'Max open files' /proc/self/limits",
        |s| {
            s["process"]["rlimits"] =
                json!([{ "type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000 }]);
        },
    );
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..2], &["512", "1000"], "{out}");
    let fields: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(&fields[3..5], &["512", "1000"], "{out}");
}

#[test]
fn other_rlimits_are_applied() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("rlimit2");
    let out = run_sh(
        &env,
        "grep -E 'Max (processes|core file size|stack size)' /proc/self/limits",
        |s| {
            s["process"]["rlimits"] = json!([
                { "type": "RLIMIT_NPROC", "soft": 300, "hard": 400 },
                { "type": "RLIMIT_CORE", "soft": 0, "hard": 0 },
            ]);
        },
    );
    out.assert_ok();
    let nproc = out
        .stdout
        .lines()
        .find(|l| l.contains("processes"))
        .unwrap();
    assert!(
        nproc.split_whitespace().collect::<Vec<_>>()[2..4] == ["300", "400"],
        "{out}"
    );
    let core = out
        .stdout
        .lines()
        .find(|l| l.contains("core file size"))
        .unwrap();
    assert!(
        core.split_whitespace().collect::<Vec<_>>()[4..6] == ["0", "0"],
        "{out}"
    );
}

#[test]
fn rlimit_above_the_host_hard_limit_fails_clearly() {
    if !require_root() {
        return;
    }
    // Raising a hard limit needs CAP_SYS_RESOURCE, which this machine's root lacks.
    let caps = host_bounding_caps();
    if caps.iter().any(|c| c == "CAP_SYS_RESOURCE") {
        eprintln!("SKIP: the host has CAP_SYS_RESOURCE, raising the hard limit would succeed");
        return;
    }
    let host_hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap()
        .1;
    let env = TestEnv::new("rlimitbad");
    let b = env.bundle(|s| {
        s["process"]["rlimits"] =
            json!([{ "type": "RLIMIT_NOFILE", "soft": host_hard + 1000, "hard": host_hard + 1000 }]);
        set_args(s, &["true"]);
    });
    let out = env.run(&b);
    out.assert_fail();
    assert!(
        out.stderr.to_lowercase().contains("rlimit"),
        "error names the rlimit: {out}"
    );
    env.assert_no_leftovers(&b, &b.id);
}

#[test]
fn oom_score_adj_is_applied() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("oomadj");
    let out = run_sh(&env, "cat /proc/self/oom_score_adj", |s| {
        s["process"]["oomScoreAdj"] = json!(500)
    });
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "500");
}

#[test]
fn no_new_privileges_follows_the_spec() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("nnp");
    let on = run_sh(&env, "grep NoNewPrivs /proc/self/status", |_| {});
    on.assert_ok();
    assert_eq!(status_field(&on.stdout, "NoNewPrivs"), "1");
    let off = run_sh(&env, "grep NoNewPrivs /proc/self/status", |s| {
        s["process"]["noNewPrivileges"] = false.into()
    });
    off.assert_ok();
    assert_eq!(status_field(&off.stdout, "NoNewPrivs"), "0");
}

#[test]
fn dropping_cap_chown_makes_chown_fail() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("capchown");
    let script = "touch /tmp/f && chown 1000 /tmp/f && echo CHOWNED";
    let without = run_sh(&env, script, tmpfs_tmp);
    assert!(
        !without.stdout.contains("CHOWNED"),
        "chown worked without CAP_CHOWN: {without}"
    );
    assert!(
        without.stderr.contains("Operation not permitted"),
        "{without}"
    );
    let with = run_sh(&env, script, |s| {
        tmpfs_tmp(s);
        set_caps(s, &["CAP_CHOWN"]);
    });
    with.assert_ok();
    assert!(with.stdout.contains("CHOWNED"), "{with}");
}

#[test]
fn capability_sets_match_the_spec() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("capsets");
    let bounding = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
        "CAP_SYS_ADMIN",
    ];
    let effective = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let inheritable = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let ambient = ["CAP_NET_BIND_SERVICE"];
    let out = run_sh(&env, "grep ^Cap /proc/self/status", |s| {
        s["process"]["capabilities"] = json!({
            "bounding": bounding, "effective": effective, "permitted": effective,
            "inheritable": inheritable, "ambient": ambient,
        });
    });
    out.assert_ok();
    let hex = |name: &str| u64::from_str_radix(status_field(&out.stdout, name), 16).unwrap();
    assert_eq!(hex("CapBnd"), cap_mask(&bounding), "CapBnd: {out}");
    assert_eq!(hex("CapEff"), cap_mask(&effective), "CapEff: {out}");
    assert_eq!(hex("CapPrm"), cap_mask(&effective), "CapPrm: {out}");
    assert_eq!(hex("CapInh"), cap_mask(&inheritable), "CapInh: {out}");
    assert_eq!(hex("CapAmb"), cap_mask(&ambient), "CapAmb: {out}");
}

#[test]
fn template_capabilities_are_the_runc_defaults() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("capdef");
    let out = run_sh(&env, "grep ^Cap /proc/self/status", |_| {});
    out.assert_ok();
    let want = cap_mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let hex = |set: &str| u64::from_str_radix(status_field(&out.stdout, set), 16).unwrap();
    for set in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(hex(set), want, "{set}: {out}");
    }
    // The template lists ambient caps but no inheritable ones; the kernel only raises an
    // ambient cap that is also inheritable, so the ambient set ends up empty (not an error).
    assert_eq!(hex("CapInh"), 0, "{out}");
    assert_eq!(hex("CapAmb"), 0, "{out}");
}

#[test]
fn ambient_capabilities_reach_a_non_root_user() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("capamb");
    let set = ["CAP_NET_BIND_SERVICE"];
    let out = run_sh(&env, "grep ^Cap /proc/self/status; id -u", |s| {
        s["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
        set_caps(s, &set);
    });
    out.assert_ok();
    let eff = u64::from_str_radix(status_field(&out.stdout, "CapEff"), 16).unwrap();
    assert_eq!(
        eff,
        cap_mask(&set),
        "uid 1000 keeps ambient caps across exec: {out}"
    );

    // Without ambient, a non-root user ends up with an empty effective set.
    let out = run_sh(&env, "grep ^Cap /proc/self/status", |s| {
        s["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
        set_caps(s, &set);
        s["process"]["capabilities"]
            .as_object_mut()
            .unwrap()
            .remove("ambient");
    });
    out.assert_ok();
    assert_eq!(
        u64::from_str_radix(status_field(&out.stdout, "CapEff"), 16).unwrap(),
        0,
        "{out}"
    );
}

#[test]
fn no_runtime_file_descriptors_leak_into_the_container() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("fdleak");
    // `ls` itself holds the directory it lists open as fd 3.
    let script = "ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; readlink /proc/self/cwd";
    let b = env.bundle(|s| {
        sh(s, &format!("{script}; exec sleep 1000"));
    });
    let out = env.run_detached(&b);
    out.assert_ok();
    let text = wait_file_contains(
        &out.stdout_path,
        "\n/",
        10 * std::time::Duration::from_secs(1),
    );
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap_or("").trim(),
        "0 1 2 3",
        "init sees only stdio: {text:?}"
    );
    assert_eq!(
        lines.next(),
        Some("/"),
        "cwd is inside the container: {text:?}"
    );

    let exec = env.exec(&b.id, &["sh", "-c", script]);
    exec.assert_ok();
    let mut lines = exec.stdout.lines();
    assert_eq!(
        lines.next().unwrap_or("").trim(),
        "0 1 2 3",
        "exec sees only stdio: {exec}"
    );
    assert_eq!(lines.next(), Some("/"), "{exec}");
    env.delete_force(&b.id).assert_ok();
}
