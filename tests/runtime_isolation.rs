//! Namespace isolation as a containerised process sees it: its own pid 1 and process table,
//! hostname and domainname, a network with only loopback, private ipc/uts/mount namespaces,
//! a user namespace with uid/gid mappings, a cgroup namespace, joining an existing namespace
//! by path, and a root filesystem that hides the host (with pivot_root and with --no-pivot).

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

/// `readlink /proc/self/ns/<ns>` of this (host) process.
fn host_ns(ns: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Runs `script` in a fresh container built with `tweak` and returns its stdout (asserts exit 0).
fn run_sh(env: &TestEnv, script: &str, tweak: impl FnOnce(&mut serde_json::Value)) -> String {
    let b = env.bundle(|s| {
        sh(s, script);
        tweak(s)
    });
    let out = env.run(&b);
    out.assert_ok();
    out.stdout
}

#[test]
fn process_is_pid_1_and_sees_no_host_processes() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("pidns");
    let out = run_sh(
        &env,
        "echo pid=$$; echo procs=$(ls -d /proc/[0-9]* | wc -l); ps -o pid | wc -l",
        |_| {},
    );
    assert!(
        out.contains("pid=1\n"),
        "container process should be pid 1: {out:?}"
    );
    let procs: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(usize::MAX);
    assert!(
        procs <= 4,
        "container sees {procs} processes in /proc: {out:?}"
    );
    let host_procs = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count();
    assert!(
        host_procs > procs,
        "host has more processes ({host_procs}) than the container sees"
    );
    let me = std::process::id();
    let out = run_sh(
        &env,
        &format!("test -e /proc/{me} && echo visible || echo hidden"),
        |_| {},
    );
    if me > 10 {
        assert_eq!(
            out.trim(),
            "hidden",
            "the test process (pid {me}) is visible"
        );
    }
}

#[test]
fn uts_namespace_has_its_own_hostname() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("uts");
    let host_before = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = run_sh(&env, "hostname; cat /proc/sys/kernel/hostname", |s| {
        s["hostname"] = "berth-box".into();
    });
    assert_eq!(out, "berth-box\nberth-box\n");
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_before
    );
}

/// `domainname` is in the OCI spec since 1.0.2; runc supports it from 1.2 only.
#[test]
fn uts_namespace_has_its_own_domainname() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("domain");
    let host_before = fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let out = run_sh(&env, "cat /proc/sys/kernel/domainname", |s| {
        s["domainname"] = "example.test".into();
    });
    assert_eq!(out, "example.test\n");
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        host_before
    );
}

#[test]
fn network_namespace_has_only_a_working_loopback() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("netns");
    let out = run_sh(
        &env,
        "ls /sys/class/net; echo --; ip -o link show; echo --; ip -o addr show lo",
        |_| {},
    );
    let parts: Vec<&str> = out.split("--\n").collect();
    assert_eq!(parts[0].trim(), "lo", "only lo in /sys/class/net: {out:?}");
    let links: Vec<&str> = parts[1].lines().collect();
    assert_eq!(links.len(), 1, "only one link: {out:?}");
    assert!(
        links[0].contains("lo:") && links[0].contains("UP"),
        "lo is up: {out:?}"
    );
    assert!(parts[2].contains("127.0.0.1"), "lo has 127.0.0.1: {out:?}");
    // Loopback works: a listener and a client inside the container talk over 127.0.0.1.
    let out = run_sh(
        &env,
        // Retry whole listener+client rounds: under load a round can lose the race.
        "for round in 1 2 3 4 5; do \
           nc -l -p 7777 > /tmp/got & \
           for i in $(seq 100); do echo ping-over-lo | nc 127.0.0.1 7777 2>/dev/null && break; sleep 0.05; done; \
           wait; grep -q ping-over-lo /tmp/got && break; \
         done; cat /tmp/got",
        tmpfs_tmp,
    );
    assert!(out.contains("ping-over-lo"), "{out:?}");
}

#[test]
fn namespaces_differ_from_the_host_exactly_when_requested() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("nsids");
    let script =
        "for n in ipc mnt net pid uts cgroup; do echo $n=$(readlink /proc/self/ns/$n); done";
    let parse = |out: &str| -> std::collections::HashMap<String, String> {
        out.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let all_new = parse(&run_sh(&env, script, |_| {}));
    for ns in ["ipc", "mnt", "net", "pid", "uts"] {
        assert_ne!(
            all_new[ns],
            host_ns(ns),
            "{ns} namespace should be private: {all_new:?}"
        );
    }
    assert_eq!(
        all_new["cgroup"],
        host_ns("cgroup"),
        "no cgroup ns was requested"
    );

    let shared = parse(&run_sh(&env, script, |s| {
        remove_namespace(s, "network");
        remove_namespace(s, "ipc");
        remove_namespace(s, "uts");
        s.as_object_mut().unwrap().remove("hostname");
    }));
    for ns in ["ipc", "net", "uts"] {
        assert_eq!(
            shared[ns],
            host_ns(ns),
            "{ns} namespace should be the host's: {shared:?}"
        );
    }
    assert_ne!(shared["pid"], host_ns("pid"));
}

#[test]
fn ipc_namespace_hides_host_shared_memory() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("ipc");
    // A host SysV shared memory segment, removed at the end.
    // SAFETY: plain shmget/shmctl syscalls on a private segment this test owns.
    let shmid = unsafe { libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600) };
    assert!(shmid >= 0);
    let out = run_sh(&env, "cat /proc/sysvipc/shm", |_| {});
    let host = fs::read_to_string("/proc/sysvipc/shm").unwrap();
    // SAFETY: removes the segment created above.
    unsafe { libc::shmctl(shmid, libc::IPC_RMID, std::ptr::null_mut()) };
    let id_in = |text: &str| {
        text.lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(&shmid.to_string()))
    };
    assert!(id_in(&host), "host lists its segment: {host}");
    assert!(
        !id_in(&out),
        "container sees the host's shm segment {shmid}: {out}"
    );
}

#[test]
fn mounts_made_in_the_container_are_invisible_on_the_host() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("mntns");
    let b = env.bundle(|s| {
        set_caps(s, &["CAP_SYS_ADMIN"]);
        sh(s, "mount -t tmpfs berth-e2e-inner /mnt && touch /mnt/inside && echo mounted; exec sleep 1000");
    });
    let out = env.run_detached(&b);
    out.assert_ok();
    wait_file_contains(&out.stdout_path, "mounted", 10 * SECOND);
    let pid = env.pid(&b.id);
    let inner = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(
        inner.contains("berth-e2e-inner"),
        "the container has its tmpfs: {inner}"
    );
    let host = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host.contains("berth-e2e-inner"),
        "the container's mount leaked to the host"
    );
    assert!(
        !b.rootfs().join("mnt/inside").exists(),
        "file written in the container's tmpfs is on the host"
    );
    let leaked = mounts_mentioning(&b.dir);
    assert!(
        leaked.is_empty(),
        "host sees mounts under the bundle: {leaked:#?}"
    );
    env.delete_force(&b.id).assert_ok();
}

#[test]
fn user_namespace_maps_container_root_to_a_host_range() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("userns");
    let data = env.mkdir("data");
    std::os::unix::fs::chown(&data, Some(100000), Some(100000)).unwrap();
    let b = env.bundle(|s| {
        set_namespace(s, "user", None);
        s["linux"]["uidMappings"] =
            serde_json::json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
        s["linux"]["gidMappings"] =
            serde_json::json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
        bind(s, &data, "/data", false);
        sh(
            s,
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /data/by-root; \
               stat -c %u /bin/busybox; echo ready; exec sleep 1000",
        );
    });
    // The rootfs belongs to host root, so the mapped root cannot create mount points in it.
    fs::create_dir(b.rootfs().join("data")).unwrap();
    let out = env.run_detached(&b);
    out.assert_ok();
    let text = wait_file_contains(&out.stdout_path, "ready", 10 * SECOND);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], vec!["0", "100000", "65536"], "uid_map: {text:?}");
    assert_eq!(lines[1], vec!["0", "100000", "65536"], "gid_map: {text:?}");
    assert_eq!(lines[2], vec!["0"], "root inside: {text:?}");
    // Host-root-owned files are unmapped inside: they show as the overflow uid.
    assert_eq!(
        lines[3],
        vec!["65534"],
        "host root shows as nobody: {text:?}"
    );

    let meta = fs::metadata(data.join("by-root")).expect("file created through the bind mount");
    assert_eq!(
        (meta.uid(), meta.gid()),
        (100000, 100000),
        "owned by the mapped ids on the host"
    );

    let pid = env.pid(&b.id);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "100000"),
        "host sees uid 100000: {uid_line}"
    );
    assert_ne!(
        fs::read_link(format!("/proc/{pid}/ns/user"))
            .unwrap()
            .to_string_lossy(),
        host_ns("user")
    );
    env.delete_force(&b.id).assert_ok();
}

#[test]
fn user_namespace_root_cannot_touch_host_owned_files() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("userns2");
    let data = env.mkdir("hostowned");
    fs::write(data.join("secret"), "host-only").unwrap();
    fs::set_permissions(
        data.join("secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let b = env.bundle(|s| {
        set_namespace(s, "user", None);
        s["linux"]["uidMappings"] =
            serde_json::json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
        s["linux"]["gidMappings"] =
            serde_json::json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
        set_caps(s, &all_caps());
        bind(s, &data, "/data", false);
        sh(
            s,
            "cat /data/secret && echo READ; echo x > /data/new && echo WROTE; true",
        );
    });
    fs::create_dir(b.rootfs().join("data")).unwrap();
    let out = env.run(&b);
    out.assert_ok();
    assert!(
        !out.stdout.contains("READ"),
        "userns root read a host root 0600 file: {out}"
    );
    assert!(
        !out.stdout.contains("WROTE"),
        "userns root wrote into a host root dir: {out}"
    );
}

#[test]
fn cgroup_namespace_shows_the_container_cgroup_as_root() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("cgns");
    let out = run_sh(&env, "cat /proc/self/cgroup", |s| {
        set_namespace(s, "cgroup", None)
    });
    assert!(!out.is_empty());
    for line in out.lines() {
        assert!(
            line.ends_with(":/"),
            "cgroup path inside a cgroup ns should be /: {line:?} in {out:?}"
        );
    }
    // Without it, the container sees its real cgroup path.
    let b = env.bundle(|s| set_args(s, &["cat", "/proc/self/cgroup"]));
    let out = env.run(&b);
    out.assert_ok();
    assert!(out.stdout.contains(&b.cgroups_path), "{out}");
}

#[test]
fn joins_an_existing_network_namespace_by_path() {
    if !require_root() || !require_tool("ip") {
        return;
    }
    let env = TestEnv::new("joinns");
    let ns = Netns::new(&format!("berth-e2e-{}", env.new_id()));
    ns.ip(&["link", "set", "lo", "up"]);
    ns.ip(&["addr", "add", "10.254.254.1/32", "dev", "lo"]);
    let ns_path = ns.path();
    let ino = fs::metadata(&ns_path).unwrap().ino();
    let out = run_sh(
        &env,
        "readlink /proc/self/ns/net; ip -o addr show lo",
        |s| {
            set_namespace(s, "network", Some(ns_path.to_str().unwrap()));
        },
    );
    assert!(
        out.contains(&format!("net:[{ino}]")),
        "container is in the given netns (inode {ino}): {out:?}"
    );
    assert!(
        out.contains("10.254.254.1"),
        "address set up by the test is visible: {out:?}"
    );
}

#[test]
fn joins_the_namespaces_of_another_container() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("joinctr");
    let first = env.bundle(|s| {
        s["hostname"] = "first-box".into();
        set_args(s, &["sleep", "1000"]);
    });
    env.run_detached(&first).assert_ok();
    let pid = env.pid(&first.id);
    let out = run_sh(
        &env,
        "hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/ipc",
        |s| {
            s.as_object_mut().unwrap().remove("hostname");
            set_namespace(s, "uts", Some(&format!("/proc/{pid}/ns/uts")));
            set_namespace(s, "network", Some(&format!("/proc/{pid}/ns/net")));
            set_namespace(s, "ipc", Some(&format!("/proc/{pid}/ns/ipc")));
        },
    );
    let want_net = fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let want_ipc = fs::read_link(format!("/proc/{pid}/ns/ipc")).unwrap();
    assert_eq!(
        out,
        format!(
            "first-box\n{}\n{}\n",
            want_net.display(),
            want_ipc.display()
        ),
        "second container shares uts/net/ipc of the first"
    );
    env.delete_force(&first.id).assert_ok();
}

#[test]
fn root_filesystem_hides_the_host_with_pivot_root() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("pivot");
    let b = env.bundle(|s| sh(s, "ls /; echo --; cat /proc/self/mountinfo"));
    fs::write(b.rootfs().join("marker-in-rootfs"), "").unwrap();
    let out = env.run(&b);
    out.assert_ok();
    let (ls, mountinfo) = out.stdout.split_once("--\n").unwrap();
    assert!(ls.lines().any(|l| l == "marker-in-rootfs"), "{ls}");
    assert!(
        !ls.lines().any(|l| l == "usr"),
        "host /usr is visible: {ls}"
    );
    let host_tmp = env.dir.to_string_lossy().into_owned();
    for line in mountinfo.lines() {
        let mp = line.split(' ').nth(4).unwrap_or("");
        assert!(
            !mp.contains(&host_tmp),
            "host path is a mount point inside: {line}"
        );
    }
    let n = mountinfo.lines().count();
    let host_n = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    assert!(
        n < 40,
        "{n} mounts inside, the old root was not detached? {mountinfo}"
    );
    assert!(n < host_n + 10);
    // The old root is gone: nothing mounted at the host's real root path inside.
    assert!(
        mountinfo
            .lines()
            .filter(|l| l.split(' ').nth(4) == Some("/"))
            .count()
            == 1,
        "one root mount: {mountinfo}"
    );
}

#[test]
fn no_pivot_still_confines_the_process_to_the_rootfs() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("nopivot");
    let b = env.bundle(|s| sh(s, "ls /; echo --; cat /proc/self/mountinfo | wc -l"));
    fs::write(b.rootfs().join("marker-in-rootfs"), "").unwrap();
    let out = env.rt(&[
        "run".as_ref(),
        "--no-pivot".as_ref(),
        "--bundle".as_ref(),
        b.dir.as_os_str(),
        b.id.as_ref(),
    ]);
    out.assert_ok();
    let (ls, _) = out.stdout.split_once("--\n").unwrap();
    assert!(ls.lines().any(|l| l == "marker-in-rootfs"), "{out}");
    assert!(
        !ls.lines().any(|l| l == "usr"),
        "host /usr visible under --no-pivot: {out}"
    );
    assert!(b.cgroup_dirs().is_empty());
}
