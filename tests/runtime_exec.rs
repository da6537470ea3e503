//! `exec` into a running container (output, exit code, stdin, the container's namespaces,
//! cgroup and spec defaults; `--process FILE`; `--env/--cwd/--user/--cap`; `--detach
//! --pid-file`; `--tty` through a console socket; refusals for stopped/paused containers)
//! and `ps` (table and JSON).

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

/// A running `sleep` container with the spec tweaks applied.
fn running(env: &TestEnv, tweak: impl FnOnce(&mut Value)) -> Bundle {
    let b = env.bundle(|s| {
        set_args(s, &["sleep", "1000"]);
        tweak(s)
    });
    env.run_detached(&b).assert_ok();
    b
}

#[test]
fn exec_output_and_exit_code() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("exec");
    let b = running(&env, |_| {});
    let out = env.exec(&b.id, &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    out.assert_code(3);
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    env.exec(&b.id, &["true"]).assert_code(0);
    assert_eq!(
        env.status(&b.id),
        "running",
        "exec does not disturb the container"
    );
    env.delete_force(&b.id).assert_ok();
}

#[test]
fn exec_joins_the_container_namespaces_and_cgroup() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("execns");
    let b = running(&env, |s| s["hostname"] = "exec-box".into());
    let init = env.pid(&b.id);
    let out = env.exec(
        &b.id,
        &["sh", "-c", "hostname; for n in pid net ipc uts mnt; do readlink /proc/self/ns/$n; done; cat /proc/1/cmdline | tr '\\0' ' '"],
    );
    out.assert_ok();
    let mut want = String::from("exec-box\n");
    for n in ["pid", "net", "ipc", "uts", "mnt"] {
        want.push_str(&format!(
            "{}\n",
            fs::read_link(format!("/proc/{init}/ns/{n}"))
                .unwrap()
                .display()
        ));
    }
    want.push_str("sleep 1000 ");
    assert_eq!(out.stdout, want, "{out}");

    // The exec'd process is in the container's cgroup.
    let out = env.exec_with(&["--detach"], &b.id, &["sleep", "1000"]);
    out.assert_ok();
    let procs = read_lossy(&cgroup_file("pids", &b.cgroups_path, "cgroup.procs"));
    assert_eq!(
        procs.lines().count(),
        2,
        "init and the exec'd sleep share the cgroup: {procs:?}"
    );
    env.delete_force(&b.id).assert_ok();
}

#[test]
fn exec_defaults_come_from_the_container_spec() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("execdef");
    let b = running(&env, |s| {
        s["process"]["cwd"] = "/home/u1000".into();
        s["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push("FROM_SPEC=yes".into());
        s["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    });
    let out = env.exec(
        &b.id,
        &[
            "sh",
            "-c",
            "pwd; echo $FROM_SPEC; id -u; grep NoNewPrivs /proc/self/status",
        ],
    );
    out.assert_ok();
    assert_eq!(
        out.stdout, "/home/u1000\nyes\n1000\nNoNewPrivs:\t1\n",
        "{out}"
    );
    env.delete_force(&b.id).assert_ok();
}

#[test]
fn exec_passes_stdin_through() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("execstdin");
    let b = running(&env, |_| {});
    let input = env.dir.join("input");
    fs::write(&input, "line one\nline two\n").unwrap();
    let mut cmd = env.command(&["exec", &b.id, "wc", "-l"]);
    cmd.stdin(fs::File::open(&input).unwrap());
    let out = env.output_of(cmd, DEFAULT_TIMEOUT);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "2", "{out}");
    env.delete_force(&b.id).assert_ok();
}

#[test]
fn exec_with_a_process_file() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("execproc");
    let b = running(&env, tmpfs_tmp);
    let process = json!({
        "terminal": false,
        "user": { "uid": 1000, "gid": 1000, "additionalGids": [4000] },
        "args": ["sh", "-c", "id -u; id -g; grep Groups /proc/self/status; pwd; echo $ONLY_HERE; echo ${FROM_SPEC:-unset}"],
        "env": ["PATH=/bin", "ONLY_HERE=process-file"],
        "cwd": "/tmp",
        "capabilities": { "bounding": [], "effective": [], "permitted": [] },
        "noNewPrivileges": true
    });
    let pf = env.dir.join("process.json");
    fs::write(&pf, serde_json::to_vec(&process).unwrap()).unwrap();
    let out = env.rt(&["exec", "--process", pf.to_str().unwrap(), &b.id]);
    out.assert_ok();
    assert_eq!(
        out.stdout, "1000\n1000\nGroups:\t4000 \n/tmp\nprocess-file\nunset\n",
        "{out}"
    );
    env.delete_force(&b.id).assert_ok();
}

#[test]
fn exec_flags_env_cwd_user() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("execflags");
    let b = running(&env, tmpfs_tmp);
    let out = env.exec_with(
        &[
            "--env",
            "A=1",
            "--env",
            "B=two words",
            "--cwd",
            "/tmp",
            "--user",
            "1000:1000",
            "--additional-gids",
            "5000",
        ],
        &b.id,
        &[
            "sh",
            "-c",
            "echo \"$A|$B\"; pwd; id -u; id -g; grep Groups /proc/self/status",
        ],
    );
    out.assert_ok();
    assert_eq!(
        out.stdout, "1|two words\n/tmp\n1000\n1000\nGroups:\t5000 \n",
        "{out}"
    );
    env.delete_force(&b.id).assert_ok();
}

#[test]
fn exec_cap_flag_adds_a_capability() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("execcap");
    let b = running(&env, tmpfs_tmp);
    let script = [
        "sh",
        "-c",
        "touch /tmp/f; chown 1000 /tmp/f && echo chowned",
    ];
    let without = env.exec(&b.id, &script);
    assert!(!without.stdout.contains("chowned"), "{without}");
    let with = env.exec_with(&["--cap", "CAP_CHOWN"], &b.id, &script);
    with.assert_ok();
    assert!(with.stdout.contains("chowned"), "{with}");
    env.delete_force(&b.id).assert_ok();
}

#[test]
fn exec_detach_writes_a_pid_file() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("execdetach");
    let b = running(&env, |_| {});
    let pid_file = env.dir.join("exec.pid");
    let started = std::time::Instant::now();
    let out = env.exec_with(
        &["--detach", "--pid-file", pid_file.to_str().unwrap()],
        &b.id,
        &["sleep", "1000"],
    );
    out.assert_ok();
    assert!(
        started.elapsed() < 10 * SECOND,
        "exec --detach returned promptly"
    );
    let pid: i32 = fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    assert!(pid_alive(pid), "the detached process runs");
    let init = env.pid(&b.id);
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap(),
        fs::read_link(format!("/proc/{init}/ns/pid")).unwrap(),
        "in the container's pid namespace"
    );
    let cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with("sleep\0"), "{cmdline:?}");

    // ps lists both, and kill --all stops both.
    let ps = env.ps(&["--format", "json"], &b.id);
    ps.assert_ok();
    let pids: Vec<i64> = serde_json::from_str(&ps.stdout).unwrap_or_else(|e| panic!("{e}: {ps}"));
    assert!(
        pids.contains(&(init as i64)) && pids.contains(&(pid as i64)),
        "{pids:?} lacks {init} or {pid}"
    );
    env.kill_all(&b.id, "KILL").assert_ok();
    assert!(
        wait_until(10 * SECOND, || !pid_alive(pid)),
        "detached exec process survived kill --all"
    );
    env.delete_force(&b.id).assert_ok();
}

/// How containerd runs `exec -t`: detached, the pty master handed to a console socket.
#[test]
fn exec_tty_through_a_console_socket() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("exectty");
    let b = running(&env, |_| {});
    let sock = ConsoleSocket::bind(&env.dir.join("exec-console.sock"));
    let pid_file = env.dir.join("exec.pid");
    let out = env.exec_with(
        &[
            "--detach",
            "--tty",
            "--console-socket",
            sock.path.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
        ],
        &b.id,
        &[
            "sh",
            "-c",
            "tty; test -t 0 && echo stdin-tty; read x; echo \"got:$x\"",
        ],
    );
    out.assert_ok();
    let master = sock.recv_fd(10 * SECOND);
    write_pty(&master, b"typed\n");
    let text = read_pty(&master, 10 * SECOND);
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("/dev/pts/")),
        "{text:?}"
    );
    assert!(lines.contains(&"stdin-tty"), "{text:?}");
    assert!(lines.contains(&"got:typed"), "{text:?}");
    let pid: i32 = read_lossy(&pid_file)
        .trim()
        .parse()
        .expect("pid file of the tty exec");
    assert!(
        wait_until(5 * SECOND, || !pid_alive(pid)),
        "exec'd shell exited"
    );
    env.delete_force(&b.id).assert_ok();
}

#[test]
fn exec_of_a_missing_binary_fails_clearly() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("execmissing");
    let b = running(&env, |_| {});
    let out = env.exec(&b.id, &["/no/such/binary"]);
    out.assert_fail();
    assert!(out.stderr.contains("/no/such/binary"), "{out}");
    assert_eq!(env.status(&b.id), "running");
    env.delete_force(&b.id).assert_ok();
}

#[test]
fn exec_is_refused_for_stopped_and_paused_containers() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("execstate");
    let b = running(&env, |_| {});
    env.pause(&b.id).assert_ok();
    let paused = env.rt_timeout(&["exec", &b.id, "true"], 15 * SECOND);
    paused.assert_fail();
    env.resume(&b.id).assert_ok();
    env.kill(&b.id, "KILL").assert_ok();
    assert!(env.wait_status(&b.id, "stopped", 10 * SECOND));
    let stopped = env.exec(&b.id, &["true"]);
    stopped.assert_fail();
    assert!(
        stopped.stderr.contains("stopped") || stopped.stderr.contains("not running"),
        "{stopped}"
    );
    env.delete(&b.id).assert_ok();
}

#[test]
fn ps_lists_container_processes() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("ps");
    let b = running(&env, |_| {});
    let init = env.pid(&b.id);
    let table = env.ps(&[], &b.id);
    table.assert_ok();
    let header = table.stdout.lines().next().unwrap_or("");
    assert!(header.contains("PID"), "{table}");
    let rows: Vec<&str> = table.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "one process: {table}");
    assert!(
        rows[0].split_whitespace().any(|f| f == init.to_string()),
        "{table}"
    );
    assert!(rows[0].contains("sleep"), "{table}");

    let json = env.ps(&["--format", "json"], &b.id);
    json.assert_ok();
    let pids: Vec<i64> =
        serde_json::from_str(&json.stdout).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(pids, vec![init as i64]);

    // Extra arguments go to ps(1).
    let custom = env.rt(&["ps", &b.id, "-o", "pid,comm"]);
    custom.assert_ok();
    assert!(
        custom
            .stdout
            .lines()
            .next()
            .unwrap_or("")
            .contains("COMMAND"),
        "{custom}"
    );
    assert!(custom.stdout.contains("sleep"), "{custom}");
    env.delete_force(&b.id).assert_ok();
}
