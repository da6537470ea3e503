//! The container's filesystem: tmpfs with size/mode, read-only and recursive binds, a read-only
//! root, masked and read-only paths, the default /dev (nodes, symlinks, devpts, shm, mqueue),
//! extra device nodes and the device cgroup, sysctls, and mount propagation.

mod common;

use common::*;
use serde_json::json;
use std::fs;
use std::path::Path;
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

fn run_sh(env: &TestEnv, script: &str, tweak: impl FnOnce(&mut serde_json::Value)) -> common::Out {
    let b = env.bundle(|s| {
        sh(s, script);
        tweak(s)
    });
    env.run(&b)
}

/// Mounts a tmpfs at `at` in the host's mount namespace (the env's Drop unmounts leftovers).
fn host_tmpfs(at: &Path) {
    fs::create_dir_all(at).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        at,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
}

fn host_umount(at: &Path) {
    let _ = nix::mount::umount2(at, nix::mount::MntFlags::MNT_DETACH);
}

#[test]
fn tmpfs_mount_honours_size_and_mode() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("tmpfs");
    let out = run_sh(
        &env,
        "stat -c %a /scratch; df -k /scratch | tail -n 1; \
         head -c 2097152 /dev/zero > /scratch/big && echo FITS || echo FULL",
        |s| {
            add_mount(
                s,
                "/scratch",
                "tmpfs",
                "tmpfs",
                &["nosuid", "nodev", "size=1m", "mode=0710"],
            )
        },
    );
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "710", "mode=0710: {out}");
    let size_kb: u64 = lines[1]
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert_eq!(size_kb, 1024, "size=1m: {out}");
    assert_eq!(
        lines[2], "FULL",
        "writing 2 MiB into a 1 MiB tmpfs must fail: {out}"
    );
}

#[test]
fn bind_mounts_read_write_and_read_only() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("bind");
    let rw = env.mkdir("rw");
    let ro = env.mkdir("ro");
    fs::write(ro.join("file"), "from-host\n").unwrap();
    let out = run_sh(
        &env,
        "cat /ro/file; echo x > /ro/new && echo RO-WRITABLE; echo from-container > /rw/made; echo done",
        |s| {
            bind(s, &ro, "/ro", true);
            bind(s, &rw, "/rw", false);
        },
    );
    out.assert_ok();
    assert!(out.stdout.starts_with("from-host\n"), "{out}");
    assert!(
        !out.stdout.contains("RO-WRITABLE"),
        "wrote through a read-only bind: {out}"
    );
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert!(!ro.join("new").exists());
    assert_eq!(
        fs::read_to_string(rw.join("made")).unwrap(),
        "from-container\n"
    );
}

#[test]
fn bind_mount_of_a_single_file() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("bindfile");
    let f = env.dir.join("hosts-file");
    fs::write(&f, "127.0.0.1 berth-e2e\n").unwrap();
    let out = run_sh(&env, "cat /etc/hosts", |s| bind(s, &f, "/etc/hosts", true));
    out.assert_ok();
    assert_eq!(out.stdout, "127.0.0.1 berth-e2e\n");
}

#[test]
fn rbind_carries_submounts_and_bind_does_not() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("rbind");
    let src = env.mkdir("src");
    fs::write(src.join("top"), "").unwrap();
    host_tmpfs(&src.join("sub"));
    fs::write(src.join("sub/in-submount"), "").unwrap();
    let out = run_sh(&env, "ls /nb/sub; echo --; ls /rb/sub", |s| {
        add_mount(s, "/nb", "bind", src.to_str().unwrap(), &["bind", "ro"]);
        add_mount(s, "/rb", "bind", src.to_str().unwrap(), &["rbind", "ro"]);
    });
    host_umount(&src.join("sub"));
    out.assert_ok();
    let (nb, rb) = out.stdout.split_once("--\n").unwrap();
    assert_eq!(
        nb.trim(),
        "",
        "plain bind must not carry the submount: {out}"
    );
    assert_eq!(
        rb.trim(),
        "in-submount",
        "rbind carries the submount: {out}"
    );
}

#[test]
fn readonly_root_with_writable_tmpfs() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("roroot");
    let out = run_sh(
        &env,
        "touch /newfile && echo ROOT-WRITABLE; touch /tmp/ok && echo TMP-WRITABLE",
        tmpfs_tmp,
    );
    out.assert_ok();
    assert!(!out.stdout.contains("ROOT-WRITABLE"), "{out}");
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert!(out.stdout.contains("TMP-WRITABLE"), "{out}");

    let b = env.bundle(|s| {
        s["root"]["readonly"] = false.into();
        sh(s, "touch /newfile && echo ROOT-WRITABLE");
    });
    let out = env.run(&b);
    out.assert_ok();
    assert!(out.stdout.contains("ROOT-WRITABLE"), "{out}");
    assert!(
        b.rootfs().join("newfile").exists(),
        "write lands in the bundle's rootfs"
    );
}

#[test]
fn masked_paths_read_empty() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("masked");
    let b = env.bundle(|s| {
        s["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .push("/etc/secret".into());
        s["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .push("/etc/secret-dir".into());
        s["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .push("/does/not/exist".into());
        sh(
            s,
            "echo kcore=$(head -c 16 /proc/kcore | wc -c); echo secret=$(cat /etc/secret); \
             echo dir=$(ls -A /etc/secret-dir | wc -l); echo keys=$(cat /proc/keys | wc -c)",
        );
    });
    fs::write(b.rootfs().join("etc/secret"), "hunter2").unwrap();
    fs::create_dir(b.rootfs().join("etc/secret-dir")).unwrap();
    fs::write(b.rootfs().join("etc/secret-dir/key"), "k").unwrap();
    let out = env.run(&b);
    out.assert_ok();
    assert_eq!(out.stdout, "kcore=0\nsecret=\ndir=0\nkeys=0\n", "{out}");
}

#[test]
fn readonly_paths_refuse_writes() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("ropaths");
    let script = "echo changed > /proc/sys/kernel/hostname && echo PROC-WRITABLE; \
                  touch /etc/rodir/x && echo DIR-WRITABLE; touch /etc/other && echo OTHER-WRITABLE";
    let b = env.bundle(|s| {
        s["root"]["readonly"] = false.into();
        s["linux"]["readonlyPaths"]
            .as_array_mut()
            .unwrap()
            .push("/etc/rodir".into());
        sh(s, script);
    });
    fs::create_dir(b.rootfs().join("etc/rodir")).unwrap();
    let out = env.run(&b);
    out.assert_ok();
    assert!(
        !out.stdout.contains("PROC-WRITABLE"),
        "/proc/sys is read-only: {out}"
    );
    assert!(
        !out.stdout.contains("DIR-WRITABLE"),
        "/etc/rodir is read-only: {out}"
    );
    assert!(
        out.stdout.contains("OTHER-WRITABLE"),
        "the rest of / stays writable: {out}"
    );
    assert!(out.stderr.contains("Read-only file system"), "{out}");

    // Control: without /proc/sys in readonlyPaths the (namespaced) hostname sysctl is writable.
    let out = run_sh(
        &env,
        "echo changed > /proc/sys/kernel/hostname && hostname",
        |s| {
            s["linux"]["readonlyPaths"] = json!([]);
        },
    );
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "changed", "{out}");
}

#[test]
fn default_devices_and_dev_symlinks_exist() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("devs");
    let out = run_sh(
        &env,
        "for d in null zero full random urandom tty; do echo $d $(stat -c '%F %t:%T %a' /dev/$d); done; \
         for l in fd stdin stdout stderr ptmx; do echo $l $(readlink /dev/$l); done; \
         echo hi > /dev/null && echo null-ok; echo zero=$(head -c 4 /dev/zero | wc -c); \
         echo rnd=$(head -c 8 /dev/urandom | wc -c); echo x > /dev/full || echo full-refused",
        |_| {},
    );
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    for (name, majmin) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ] {
        let want = format!("{name} character special file {majmin} 666");
        assert!(lines.contains(&want.as_str()), "missing {want:?}: {out}");
    }
    assert!(lines.contains(&"fd /proc/self/fd"), "{out}");
    assert!(lines.contains(&"stdin /proc/self/fd/0"), "{out}");
    assert!(lines.contains(&"stdout /proc/self/fd/1"), "{out}");
    assert!(lines.contains(&"stderr /proc/self/fd/2"), "{out}");
    assert!(lines.contains(&"ptmx pts/ptmx"), "{out}");
    for want in ["null-ok", "zero=4", "rnd=8", "full-refused"] {
        assert!(lines.contains(&want), "missing {want}: {out}");
    }
    assert!(
        out.stderr.contains("No space left"),
        "writing /dev/full fails with ENOSPC: {out}"
    );
}

#[test]
fn linux_devices_entry_creates_a_node_and_the_device_cgroup_guards_it() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("mknod");
    let devices = json!([
        { "path": "/dev/myzero", "type": "c", "major": 1, "minor": 5, "fileMode": 420, "uid": 1000, "gid": 1000 },
        { "path": "/dev/mykmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 438, "uid": 0, "gid": 0 }
    ]);
    let script = "stat -c '%F %t:%T %a %u:%g' /dev/myzero; echo read=$(head -c 3 /dev/myzero | wc -c); \
                  stat -c '%F %t:%T' /dev/mykmsg; \
                  echo berth-e2e device cgroup test > /dev/mykmsg && echo kmsg-open || echo kmsg-denied";
    let out = run_sh(&env, script, |s| s["linux"]["devices"] = devices.clone());
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0], "character special file 1:5 644 1000:1000",
        "{out}"
    );
    assert_eq!(lines[1], "read=3", "{out}");
    assert_eq!(lines[2], "character special file 1:b", "{out}");
    assert_eq!(
        lines[3], "kmsg-denied",
        "the device cgroup must deny c 1:11: {out}"
    );
    assert!(out.stderr.contains("Operation not permitted"), "{out}");

    // Allowed by a resources.devices rule: opening for write succeeds.
    let out = run_sh(&env, script, |s| {
        s["linux"]["devices"] = devices.clone();
        s["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "allow": true, "type": "c", "major": 1, "minor": 11, "access": "w" }));
    });
    out.assert_ok();
    assert!(out.stdout.contains("kmsg-open"), "{out}");
}

#[test]
fn devpts_shm_and_mqueue_are_private_instances() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("devpts");
    let out = run_sh(
        &env,
        "ls /dev/pts; stat -c '%t:%T' /dev/pts/ptmx; \
         awk '{for (i = 7; i < NF; i++) if ($i == \"-\") print $5, $(i+1)}' /proc/self/mountinfo | grep -E '^/dev/(pts|shm|mqueue) '; \
         stat -c %a /dev/shm; touch /dev/shm/x && echo shm-writable",
        |_| {},
    );
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0], "ptmx",
        "a new devpts instance holds only ptmx: {out}"
    );
    assert_eq!(lines[1], "5:2", "{out}");
    assert!(lines.contains(&"/dev/pts devpts"), "{out}");
    assert!(lines.contains(&"/dev/shm tmpfs"), "{out}");
    assert!(lines.contains(&"/dev/mqueue mqueue"), "{out}");
    assert!(lines.contains(&"1777"), "/dev/shm mode=1777: {out}");
    assert!(lines.contains(&"shm-writable"), "{out}");
}

#[test]
fn sysctls_are_applied_in_the_container_namespace() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("sysctl");
    let host_before = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let out = run_sh(
        &env,
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
        |s| {
            s["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1", "kernel.shmmni": "1234" });
        },
    );
    out.assert_ok();
    assert_eq!(out.stdout, "1\n1234\n", "{out}");
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_before,
        "host untouched"
    );
}

#[test]
fn sysctl_outside_the_container_namespaces_is_refused() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("sysctlbad");
    // Without a network namespace, a net.* sysctl would change the host: must be refused.
    let b = env.bundle(|s| {
        remove_namespace(s, "network");
        s["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1" });
        set_args(s, &["true"]);
    });
    let host_before = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let out = env.run(&b);
    out.assert_fail();
    assert!(
        out.stderr.contains("sysctl") || out.stderr.contains("net.ipv4.ip_forward"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_before
    );
    env.assert_no_leftovers(&b, &b.id);
}

#[test]
fn slave_propagation_receives_host_mounts_and_private_does_not() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("prop");
    let shared = env.mkdir("shared");
    // Make `shared` a shared mount of its own (the host root may be private).
    nix::mount::mount(
        Some(&shared),
        &shared,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    nix::mount::mount(
        None::<&str>,
        &shared,
        None::<&str>,
        nix::mount::MsFlags::MS_SHARED,
        None::<&str>,
    )
    .unwrap();
    fs::create_dir(shared.join("later")).unwrap();

    let mk = |opt: &str| {
        env.bundle(|s| {
            s["linux"]["rootfsPropagation"] = "rslave".into();
            add_mount(s, "/prop", "bind", shared.to_str().unwrap(), &["rbind", opt]);
            sh(s, "echo ready; while ! test -e /prop/later/arrived; do sleep 0.05; done; echo saw-it; exec sleep 1000");
        })
    };
    let slave = mk("rslave");
    let private = mk("rprivate");
    let s_out = env.run_detached(&slave);
    s_out.assert_ok();
    let p_out = env.run_detached(&private);
    p_out.assert_ok();
    wait_file_contains(&s_out.stdout_path, "ready", 10 * SECOND);
    wait_file_contains(&p_out.stdout_path, "ready", 10 * SECOND);

    host_tmpfs(&shared.join("later"));
    fs::write(shared.join("later/arrived"), "").unwrap();
    let saw = wait_until(5 * SECOND, || {
        read_lossy(&s_out.stdout_path).contains("saw-it")
    });
    std::thread::sleep(Duration::from_millis(300));
    let private_saw = read_lossy(&p_out.stdout_path).contains("saw-it");
    host_umount(&shared.join("later"));
    host_umount(&shared);
    assert!(
        saw,
        "an rslave bind receives a mount made later on the host"
    );
    assert!(
        !private_saw,
        "an rprivate bind must not receive host mounts"
    );
}
