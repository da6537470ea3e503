//! seccomp as configured by `linux.seccomp`: an ERRNO rule makes a syscall fail with EPERM,
//! `errnoRet` picks the errno, argument conditions narrow a rule, KILL actions kill, and
//! Docker's default profile (converted for the container's capabilities) loads and blocks
//! what it should (`unshare`) while ordinary commands keep working.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::PathBuf;

/// A profile with the given default action and rules, for the native architectures.
fn profile(default_action: &str, syscalls: Value) -> Value {
    let arches: &[&str] = if cfg!(target_arch = "x86_64") {
        &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    } else if cfg!(target_arch = "aarch64") {
        &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    } else {
        &[]
    };
    json!({ "defaultAction": default_action, "architectures": arches, "syscalls": syscalls })
}

fn run_sh(env: &TestEnv, script: &str, tweak: impl FnOnce(&mut Value)) -> common::Out {
    let b = env.bundle(|s| {
        sh(s, script);
        tmpfs_tmp(s);
        tweak(s)
    });
    env.run(&b)
}

#[test]
fn errno_rule_makes_the_syscall_fail_with_eperm() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("scerrno");
    let script = "mkdir /tmp/d && echo MKDIR-OK; touch /tmp/f && echo TOUCH-OK";
    let out = run_sh(&env, script, |s| {
        s["linux"]["seccomp"] = profile(
            "SCMP_ACT_ALLOW",
            json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }]),
        );
    });
    out.assert_ok();
    assert!(
        !out.stdout.contains("MKDIR-OK"),
        "mkdir should be blocked: {out}"
    );
    assert!(
        out.stderr.contains("Operation not permitted"),
        "EPERM by default: {out}"
    );
    assert!(
        out.stdout.contains("TOUCH-OK"),
        "other syscalls still work: {out}"
    );

    // Control: without the profile mkdir works.
    let out = run_sh(&env, script, |_| {});
    assert!(out.stdout.contains("MKDIR-OK"), "{out}");
}

#[test]
fn errno_ret_chooses_the_errno() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("scerrnoret");
    let out = run_sh(&env, "mkdir /tmp/d || true", |s| {
        s["linux"]["seccomp"] = profile(
            "SCMP_ACT_ALLOW",
            json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSPC }]),
        );
    });
    out.assert_ok();
    assert!(
        out.stderr.contains("No space left on device"),
        "errnoRet=ENOSPC: {out}"
    );
}

#[test]
fn argument_conditions_narrow_a_rule() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("scargs");
    // kill(pid, SIGUSR1) is refused; kill(pid, 0) and kill(pid, SIGUSR2) are not.
    let script = "trap '' USR1 USR2; kill -0 $$ && echo sig0-ok; kill -USR2 $$ && echo usr2-ok; \
                  kill -USR1 $$ && echo usr1-ok || echo usr1-blocked";
    let out = run_sh(&env, script, |s| {
        s["linux"]["seccomp"] = profile(
            "SCMP_ACT_ALLOW",
            json!([{
                "names": ["kill"], "action": "SCMP_ACT_ERRNO",
                "args": [{ "index": 1, "value": libc::SIGUSR1, "op": "SCMP_CMP_EQ" }]
            }]),
        );
    });
    out.assert_ok();
    assert_eq!(out.stdout, "sig0-ok\nusr2-ok\nusr1-blocked\n", "{out}");
}

#[test]
fn masked_eq_argument_condition() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("scmasked");
    // Refuse fchmodat when the mode has the setuid bit (mask 04000 == 04000): arg 2.
    let script = "touch /tmp/f; chmod 0755 /tmp/f && echo plain-ok; chmod 4755 /tmp/f && echo suid-ok || echo suid-blocked";
    let out = run_sh(&env, script, |s| {
        s["linux"]["seccomp"] = profile(
            "SCMP_ACT_ALLOW",
            json!([
                { "names": ["fchmodat"], "action": "SCMP_ACT_ERRNO",
                  "args": [{ "index": 2, "value": 0o4000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ" }] },
                { "names": ["chmod"], "action": "SCMP_ACT_ERRNO",
                  "args": [{ "index": 1, "value": 0o4000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ" }] },
                { "names": ["fchmodat2"], "action": "SCMP_ACT_ERRNO",
                  "args": [{ "index": 2, "value": 0o4000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ" }] }
            ]),
        );
    });
    out.assert_ok();
    assert_eq!(out.stdout, "plain-ok\nsuid-blocked\n", "{out}");
}

#[test]
fn kill_action_kills_the_process_with_sigsys() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("sckill");
    let out = run_sh(&env, "mkdir /tmp/d; echo rc=$?", |s| {
        s["linux"]["seccomp"] = profile(
            "SCMP_ACT_ALLOW",
            json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL" }]),
        );
    });
    out.assert_ok();
    assert_eq!(
        out.stdout.trim(),
        format!("rc={}", 128 + libc::SIGSYS),
        "{out}"
    );
}

#[test]
fn seccomp_survives_into_exec_processes() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("scexec");
    let b = env.bundle(|s| {
        tmpfs_tmp(s);
        set_args(s, &["sleep", "1000"]);
        s["linux"]["seccomp"] = profile(
            "SCMP_ACT_ALLOW",
            json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }]),
        );
    });
    env.run_detached(&b).assert_ok();
    let out = env.exec(&b.id, &["mkdir", "/tmp/x"]);
    out.assert_fail();
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    env.delete_force(&b.id).assert_ok();
}

// --- Docker's default profile --------------------------------------------------------------

/// Docker's default capability set (what `docker run` grants).
const DOCKER_DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn docker_profile_path() -> PathBuf {
    let candidates = [
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/seccomp-default.json"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/seccomp-default.json"),
        PathBuf::from(file!())
            .parent()
            .unwrap()
            .join("data/seccomp-default.json"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| panic!("tests/data/seccomp-default.json not found in {candidates:?}"))
}

/// Docker's default profile converted by berth's library into an OCI `linux.seccomp` for a
/// container with capabilities `caps`, on this host's architecture.
fn docker_default_seccomp(caps: &[&str]) -> Value {
    let text = std::fs::read_to_string(docker_profile_path()).unwrap();
    let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
    let arch =
        runtime::seccomp::docker_arch().expect("berth supports seccomp on this architecture");
    let seccomp = runtime::seccomp::from_docker_profile(&text, &caps, arch)
        .unwrap_or_else(|e| panic!("converting Docker's default profile: {e}"));
    serde_json::to_value(seccomp).unwrap()
}

#[test]
fn docker_default_profile_loads_and_is_enforced() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("scdocker");
    let seccomp = docker_default_seccomp(&DOCKER_DEFAULT_CAPS);
    assert!(seccomp["syscalls"].as_array().unwrap().len() > 10);
    // CAP_SYS_ADMIN is granted so that only seccomp (built for Docker's default caps, which
    // lack it) stands between the process and unshare(2).
    let mut caps: Vec<&str> = DOCKER_DEFAULT_CAPS.to_vec();
    caps.push("CAP_SYS_ADMIN");
    let script =
        "true && echo true-ok; ls / > /dev/null && echo ls-ok; mkdir /tmp/d && echo mkdir-ok; \
                  unshare -n true && echo unshare-ok || echo unshare-blocked";
    let with = run_sh(&env, script, |s| {
        set_caps(s, &caps);
        s["linux"]["seccomp"] = seccomp.clone();
    });
    with.assert_ok();
    assert_eq!(
        with.stdout, "true-ok\nls-ok\nmkdir-ok\nunshare-blocked\n",
        "{with}"
    );
    assert!(with.stderr.contains("Operation not permitted"), "{with}");

    let without = run_sh(&env, script, |s| set_caps(s, &caps));
    without.assert_ok();
    assert!(
        without.stdout.contains("unshare-ok"),
        "control without seccomp: {without}"
    );
}

#[test]
fn default_errno_ret_applies_to_unlisted_syscalls() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("scdefret");
    // Docker's profile denies by default; unshare(2) is not listed for these caps, so it gets
    // the default action with defaultErrnoRet (changed here to EROFS to make it visible).
    let mut seccomp = docker_default_seccomp(&DOCKER_DEFAULT_CAPS);
    seccomp["defaultErrnoRet"] = json!(libc::EROFS);
    let mut caps: Vec<&str> = DOCKER_DEFAULT_CAPS.to_vec();
    caps.push("CAP_SYS_ADMIN");
    let out = run_sh(&env, "unshare -n true || true", |s| {
        set_caps(s, &caps);
        s["linux"]["seccomp"] = seccomp;
    });
    out.assert_ok();
    assert!(
        out.stderr.contains("Read-only file system"),
        "defaultErrnoRet=EROFS: {out}"
    );
}

#[test]
fn docker_default_profile_blocks_unlisted_syscalls_with_eperm() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("scdocker2");
    let seccomp = docker_default_seccomp(&DOCKER_DEFAULT_CAPS);
    // mount(2) is allowed by the profile only with CAP_SYS_ADMIN; the hostname change
    // (sethostname) likewise. Both fail with EPERM under the profile even with the capability.
    let mut caps: Vec<&str> = DOCKER_DEFAULT_CAPS.to_vec();
    caps.push("CAP_SYS_ADMIN");
    let out = run_sh(
        &env,
        "mount -t tmpfs none /mnt && echo mount-ok; hostname other && echo hostname-ok; true",
        |s| {
            set_caps(s, &caps);
            s["linux"]["seccomp"] = seccomp;
        },
    );
    out.assert_ok();
    assert_eq!(out.stdout, "", "{out}");
    assert!(
        out.stderr.contains("Operation not permitted") || out.stderr.contains("Permission denied"),
        "{out}"
    );
}
