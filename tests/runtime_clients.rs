//! Real runc clients drive berth's OCI runtime: podman (`--runtime`), containerd through
//! `ctr run --runc-binary`, and dockerd (`--add-runtime`).
//!
//! Each test builds a busybox rootfs, points its client (and daemon, if any) at the runtime under
//! test with every state directory inside its own temp dir, and checks that a container's output
//! and exit code come back through the client; a second test per client drives a detached
//! container through ps / exec / stop (or kill) / rm.
//!
//! The runtime under test is `$BERTH_TEST_RUNTIME` (a path, or a name looked up in `PATH`: set it
//! to `runc` or `crun` to validate these tests against a reference runtime), or else a symlink
//! named `berth-runtime` to the `berth` binary Cargo built (the binary acts as the runtime when
//! invoked by that name). A test whose client is not installed, or that is not run as root,
//! prints `SKIP <test>: <why>` and passes.
//!
//! Everything a test starts is torn down by [`Sandbox`]'s `Drop`, so it also runs when an
//! assertion fails: client-level removal, daemons stopped (SIGTERM, then SIGKILL), stray
//! processes whose command line names the temp dir killed (shims, conmon, cleanup helpers),
//! `delete --force` through the runtime for every container it may know, the test's private
//! cgroup parent emptied and removed in every hierarchy, every mount under the temp dir
//! detached, and the temp dir removed. Containers run with `--network none` and dockerd with
//! `--bridge=none --iptables=false`, so no links or iptables rules are created; the network
//! namespaces dockerd bind-mounts live under the temp dir and go with the unmount sweep.
//!
//! Paths the clients hard-code and these tests cannot move (all empty when the tests are done):
//! `/run/containerd/s` (containerd 1.6 shim sockets), `/run/docker/plugins` (dockerd), and the
//! runtime's default `--root` for podman (conmon passes no `--root`, and podman's
//! `--runtime-flag` is not passed to the `delete` its cleanup runs, so it cannot be moved).

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// How long one client command may take before it is killed and reported as timed out.
const CMD_TIMEOUT: Duration = Duration::from_secs(30);
/// A container process that runs until SIGTERM and then exits 0 (busybox sh as PID 1 has no
/// default action for SIGTERM, so it needs the trap).
const SERVE_UNTIL_TERM: &str = r#"trap "exit 0" TERM; while :; do sleep 0.1; done"#;
/// Name of the busybox image the docker tests import.
const DOCKER_IMAGE: &str = "berth-test/busybox:latest";

// ---------------------------------------------------------------------------------------------
// podman
// ---------------------------------------------------------------------------------------------

#[test]
fn podman_run_rm_reports_output_and_exit_code() {
    const TEST: &str = "podman_run_rm_reports_output_and_exit_code";
    let Some(tools) = need(TEST, &["podman", "conmon"]) else {
        return;
    };
    let Some(sb) = Sandbox::new(TEST) else { return };
    let podman = Podman::new(&sb, &tools[0]);

    let cidfile = sb.root.join("run-rm.cid");
    let out = sb.run(
        podman
            .cmd()
            .args(["run", "--rm", "--network", "none", "--cgroup-parent"])
            .arg(&sb.cgroup_parent)
            .arg("--cidfile")
            .arg(&cidfile)
            .arg("--rootfs")
            .arg(&sb.rootfs)
            .args(["/bin/sh", "-c", "echo hello; exit 3"]),
    );
    sb.track_cidfile(&cidfile);
    sb.expect_code(&out, 3);
    sb.expect_stdout(&out, "hello");

    let ps = sb.run(podman.cmd().args(["ps", "--all", "--quiet", "--no-trunc"]));
    sb.expect_code(&ps, 0);
    assert!(
        ps.stdout.trim().is_empty(),
        "--rm left a container behind:\n{ps}"
    );
}

#[test]
fn podman_detached_ps_exec_stop_rm() {
    const TEST: &str = "podman_detached_ps_exec_stop_rm";
    let Some(tools) = need(TEST, &["podman", "conmon"]) else {
        return;
    };
    let Some(sb) = Sandbox::new(TEST) else { return };
    let podman = Podman::new(&sb, &tools[0]);
    let name = format!("berth-test-{}", sb.uniq);

    let out = sb.run(
        podman
            .cmd()
            .args([
                "run",
                "--detach",
                "--name",
                &name,
                "--network",
                "none",
                "--cgroup-parent",
            ])
            .arg(&sb.cgroup_parent)
            .arg("--rootfs")
            .arg(&sb.rootfs)
            .args(["/bin/sh", "-c", SERVE_UNTIL_TERM]),
    );
    if let Some(id) = out.stdout.lines().last() {
        sb.track_id(id.trim());
    }
    sb.expect_code(&out, 0);
    let id = out.stdout.trim();
    assert!(
        is_container_id(id),
        "`podman run -d` printed no container id:\n{out}"
    );

    let ps = sb.run(
        podman
            .cmd()
            .args(["ps", "--format", "{{.Names}} {{.Status}}"]),
    );
    sb.expect_code(&ps, 0);
    assert!(
        ps.stdout
            .lines()
            .any(|l| l.starts_with(&format!("{name} Up"))),
        "{name} is not listed as Up:\n{ps}"
    );

    // The runtime under test owns the container (conmon passes no --root: default root), and
    // reports the same init pid podman shows.
    let pid = sb.run(
        podman
            .cmd()
            .args(["inspect", "--format", "{{.State.Pid}}", &name]),
    );
    sb.expect_code(&pid, 0);
    sb.expect_runtime_state(&[None], id, "running", pid.stdout.trim());

    let exec = sb.run(
        podman
            .cmd()
            .args(["exec", &name, "/bin/sh", "-c", "echo in-exec; exit 7"]),
    );
    sb.expect_code(&exec, 7);
    sb.expect_stdout(&exec, "in-exec");

    let stop = sb.run(podman.cmd().args(["stop", "--time", "10", &name]));
    sb.expect_code(&stop, 0);
    assert!(
        stop.elapsed < Duration::from_secs(8),
        "stop needed the SIGKILL fallback: SIGTERM did not reach the container's trap:\n{stop}"
    );
    let status = sb.run(podman.cmd().args([
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]));
    sb.expect_code(&status, 0);
    assert_eq!(
        status.stdout.trim(),
        "exited 0",
        "unexpected state after stop:\n{status}"
    );

    let rm = sb.run(podman.cmd().args(["rm", &name]));
    sb.expect_code(&rm, 0);
    let ps = sb.run(podman.cmd().args(["ps", "--all", "--format", "{{.Names}}"]));
    sb.expect_code(&ps, 0);
    assert!(
        !ps.stdout.lines().any(|l| l.trim() == name),
        "{name} still listed after rm:\n{ps}"
    );
}

/// A podman whose whole configuration and state live in the sandbox.
#[derive(Clone)]
struct Podman {
    bin: PathBuf,
    runtime: PathBuf,
    root: PathBuf,
}

impl Podman {
    /// Writes the private containers.conf / storage.conf and registers the teardown.
    fn new(sb: &Sandbox, bin: &Path) -> Podman {
        let root = sb.root.clone();
        // default_ulimits = []: podman's default nofile/nproc ulimits need CAP_SYS_RESOURCE to
        // raise, which this machine lacks. netns = "none": no network stack, no CNI/netavark.
        let conf = format!(
            r#"[containers]
default_ulimits = []
netns = "none"
log_driver = "k8s-file"

[network]
network_config_dir = "{root}/podman/networks"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{root}/podman/tmp"
volume_path = "{root}/podman/volumes"
"#,
            root = root.display()
        );
        let storage = format!(
            r#"[storage]
driver = "vfs"
runroot = "{root}/podman/run"
graphroot = "{root}/podman/storage"
"#,
            root = root.display()
        );
        fs::create_dir_all(root.join("podman")).unwrap();
        fs::write(root.join("podman/containers.conf"), conf).unwrap();
        fs::write(root.join("podman/storage.conf"), storage).unwrap();
        let podman = Podman {
            bin: bin.to_path_buf(),
            runtime: sb.runtime.clone(),
            root,
        };
        sb.sweep_runtime_root(None);
        let p = podman.clone();
        sb.on_teardown(move |sb| {
            let _ = sb.run(p.cmd().args(["rm", "--force", "--all", "--time", "0"]));
        });
        podman
    }

    /// `podman` with the global flags that keep it inside the sandbox.
    fn cmd(&self) -> Command {
        let r = &self.root;
        let mut c = Command::new(&self.bin);
        c.env("CONTAINERS_CONF", r.join("podman/containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", r.join("podman/storage.conf"))
            .env_remove("CONTAINER_HOST")
            .env_remove("CONTAINER_CONNECTION")
            .arg("--runtime")
            .arg(&self.runtime)
            .arg("--root")
            .arg(r.join("podman/storage"))
            .arg("--runroot")
            .arg(r.join("podman/run"))
            .arg("--tmpdir")
            .arg(r.join("podman/tmp"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"]);
        c
    }
}

// ---------------------------------------------------------------------------------------------
// containerd + ctr
// ---------------------------------------------------------------------------------------------

#[test]
fn containerd_ctr_run_rm_reports_output_and_exit_code() {
    const TEST: &str = "containerd_ctr_run_rm_reports_output_and_exit_code";
    let Some(tools) = need(TEST, &["containerd", "ctr", "containerd-shim-runc-v2"]) else {
        return;
    };
    let Some(sb) = Sandbox::new(TEST) else { return };
    let cd = Containerd::start(&sb, &tools[0], &tools[1]);
    let id = format!("ctr-test-{}", sb.uniq);
    sb.track_id(&id);

    let out = sb.run(&mut cd.run_cmd(&sb, &id, &["--rm"], &["/bin/sh", "-c", "echo hi; exit 5"]));
    sb.expect_code(&out, 5);
    sb.expect_stdout(&out, "hi");

    let ls = sb.run(cd.cmd().args(["containers", "ls", "--quiet"]));
    sb.expect_code(&ls, 0);
    assert!(
        !ls.stdout.lines().any(|l| l.trim() == id),
        "--rm left {id} behind:\n{ls}"
    );
}

#[test]
fn containerd_ctr_detached_exec_kill_delete() {
    const TEST: &str = "containerd_ctr_detached_exec_kill_delete";
    let Some(tools) = need(TEST, &["containerd", "ctr", "containerd-shim-runc-v2"]) else {
        return;
    };
    let Some(sb) = Sandbox::new(TEST) else { return };
    let cd = Containerd::start(&sb, &tools[0], &tools[1]);
    let id = format!("ctr-test-{}", sb.uniq);
    sb.track_id(&id);

    let out = sb.run(&mut cd.run_cmd(
        &sb,
        &id,
        &["--detach"],
        &["/bin/sh", "-c", SERVE_UNTIL_TERM],
    ));
    sb.expect_code(&out, 0);
    cd.wait_task_status(&sb, &id, "RUNNING");

    // The runtime under test owns the task (in the --runc-root/<namespace> ctr gave the shim)
    // and reports the same init pid containerd shows.
    let pid = cd.task_pid(&sb, &id);
    let root = cd.runtime_root.join(&cd.namespace);
    sb.expect_runtime_state(&[Some(root)], &id, "running", &pid);

    let exec = sb.run(
        cd.cmd()
            .args(["tasks", "exec", "--exec-id", "exec1", "--fifo-dir"])
            .arg(sb.root.join("ctr-fifo"))
            .args([&id, "/bin/sh", "-c", "echo in-exec; exit 6"]),
    );
    sb.expect_code(&exec, 6);
    sb.expect_stdout(&exec, "in-exec");

    let killed = sb.run(cd.cmd().args(["tasks", "kill", "--signal", "SIGTERM", &id]));
    sb.expect_code(&killed, 0);
    cd.wait_task_status(&sb, &id, "STOPPED");

    let del = sb.run(cd.cmd().args(["tasks", "delete", &id]));
    sb.expect_code(&del, 0);
    let rm = sb.run(cd.cmd().args(["containers", "delete", &id]));
    sb.expect_code(&rm, 0);
    let ls = sb.run(cd.cmd().args(["containers", "ls", "--quiet"]));
    sb.expect_code(&ls, 0);
    assert!(
        !ls.stdout.lines().any(|l| l.trim() == id),
        "{id} still listed after delete:\n{ls}"
    );
}

/// A private containerd serving on a socket in the sandbox.
#[derive(Clone)]
struct Containerd {
    ctr: PathBuf,
    sock: PathBuf,
    namespace: String,
    /// `--runc-root` given to `ctr run`; the shim appends the namespace.
    runtime_root: PathBuf,
}

impl Containerd {
    /// Writes the config, starts containerd and waits until `ctr version` answers.
    fn start(sb: &Sandbox, containerd: &Path, ctr: &Path) -> Containerd {
        let dir = sb.root.join("containerd");
        fs::create_dir_all(&dir).unwrap();
        // Everything under the sandbox; CRI (needs CNI/network) and the snapshotters that probe
        // for kernel/filesystem support are disabled. `ctr run --rootfs` needs no snapshotter.
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
temp = "{d}/tmp"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.devmapper",
]

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[debug]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{d}/opt"
"#,
            d = dir.display()
        );
        let config_path = dir.join("config.toml");
        fs::write(&config_path, config).unwrap();
        let cd = Containerd {
            ctr: ctr.to_path_buf(),
            sock: dir.join("containerd.sock"),
            namespace: "berth-test".to_string(),
            runtime_root: sb.root.join("ctr-runtime-root"),
        };
        fs::create_dir_all(sb.root.join("ctr-fifo")).unwrap();
        sb.spawn_daemon(
            "containerd",
            Command::new(containerd).arg("--config").arg(&config_path),
        );
        sb.wait_ready("containerd", "serving", Duration::from_secs(20), || {
            cd.sock.exists()
                && sb
                    .run_for(cd.cmd().arg("version"), Duration::from_secs(5))
                    .code()
                    == Some(0)
        });
        sb.sweep_runtime_root(Some(cd.runtime_root.join(&cd.namespace)));
        let c = cd.clone();
        sb.on_teardown(move |sb| {
            for id in sb.ids.borrow().iter() {
                let quick = Duration::from_secs(10);
                let _ = sb.run_for(
                    c.cmd().args(["tasks", "kill", "--signal", "SIGKILL", id]),
                    quick,
                );
                let _ = sb.run_for(c.cmd().args(["tasks", "delete", "--force", id]), quick);
                let _ = sb.run_for(c.cmd().args(["containers", "delete", id]), quick);
            }
        });
        cd
    }

    /// `ctr` talking to this containerd, in its namespace.
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.ctr);
        c.arg("--address")
            .arg(&self.sock)
            .arg("--namespace")
            .arg(&self.namespace);
        c
    }

    /// `ctr run <flags> --runc-binary RUNTIME ... --rootfs ROOTFS ID ARGS...`
    fn run_cmd(&self, sb: &Sandbox, id: &str, flags: &[&str], args: &[&str]) -> Command {
        let mut c = self.cmd();
        c.arg("run")
            .args(flags)
            .arg("--runc-binary")
            .arg(&sb.runtime)
            .arg("--runc-root")
            .arg(&self.runtime_root)
            .arg("--cgroup")
            .arg(format!("{}/{id}", sb.cgroup_parent))
            .arg("--fifo-dir")
            .arg(sb.root.join("ctr-fifo"))
            .arg("--rootfs")
            .arg(&sb.rootfs)
            .arg(id)
            .args(args);
        c
    }

    /// (pid, status) of `id` in `ctr tasks ls`, if listed.
    fn task_row(&self, sb: &Sandbox, id: &str) -> (Option<(String, String)>, Out) {
        let ls = sb.run(self.cmd().args(["tasks", "ls"]));
        let row = ls.stdout.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && f[0] == id).then(|| (f[1].to_string(), f[2].to_string()))
        });
        (row, ls)
    }

    /// The task's init pid as containerd reports it.
    fn task_pid(&self, sb: &Sandbox, id: &str) -> String {
        match self.task_row(sb, id) {
            (Some((pid, _)), _) => pid,
            (None, ls) => panic!("task {id} not listed:\n{ls}\n{}", sb.diagnostics()),
        }
    }

    /// Polls `ctr tasks ls` until `id` has `want` status (RUNNING, STOPPED, ...).
    fn wait_task_status(&self, sb: &Sandbox, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (row, ls) = self.task_row(sb, id);
            if row.as_ref().is_some_and(|(_, status)| status == want) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "task {id} never became {want}; last listing:\n{ls}\n{}",
                    sb.diagnostics()
                );
            }
            sleep(Duration::from_millis(50));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// dockerd + docker CLI
// ---------------------------------------------------------------------------------------------

#[test]
fn dockerd_run_rm_reports_output_and_exit_code() {
    const TEST: &str = "dockerd_run_rm_reports_output_and_exit_code";
    let Some(tools) = need(
        TEST,
        &["dockerd", "containerd", "containerd-shim-runc-v2", "tar"],
    ) else {
        return;
    };
    let Some(cli) = docker_cli() else {
        skip(
            TEST,
            "no docker CLI at /usr/local/bin/docker or /usr/bin/docker",
        );
        return;
    };
    let Some(sb) = Sandbox::new(TEST) else { return };
    let docker = Docker::start(&sb, &tools[0], &cli);
    docker.import_busybox(&sb);

    let cidfile = sb.root.join("docker-run-rm.cid");
    let out = sb.run(
        docker
            .cmd()
            .args([
                "run",
                "--rm",
                "--runtime",
                "berth",
                "--network",
                "none",
                "--cidfile",
            ])
            .arg(&cidfile)
            .args([DOCKER_IMAGE, "sh", "-c", "echo ok; exit 4"]),
    );
    sb.track_cidfile(&cidfile);
    sb.expect_code(&out, 4);
    sb.expect_stdout(&out, "ok");

    let ps = sb.run(docker.cmd().args(["ps", "--all", "--quiet"]));
    sb.expect_code(&ps, 0);
    assert!(
        ps.stdout.trim().is_empty(),
        "--rm left a container behind:\n{ps}"
    );
}

#[test]
fn dockerd_detached_ps_exec_stop_rm() {
    const TEST: &str = "dockerd_detached_ps_exec_stop_rm";
    let Some(tools) = need(
        TEST,
        &["dockerd", "containerd", "containerd-shim-runc-v2", "tar"],
    ) else {
        return;
    };
    let Some(cli) = docker_cli() else {
        skip(
            TEST,
            "no docker CLI at /usr/local/bin/docker or /usr/bin/docker",
        );
        return;
    };
    let Some(sb) = Sandbox::new(TEST) else { return };
    let docker = Docker::start(&sb, &tools[0], &cli);
    docker.import_busybox(&sb);
    let name = format!("berth-test-{}", sb.uniq);

    let out = sb.run(docker.cmd().args([
        "run",
        "--detach",
        "--runtime",
        "berth",
        "--network",
        "none",
        "--name",
        &name,
        DOCKER_IMAGE,
        "sh",
        "-c",
        SERVE_UNTIL_TERM,
    ]));
    if let Some(id) = out.stdout.lines().last() {
        sb.track_id(id.trim());
    }
    sb.expect_code(&out, 0);
    assert!(
        is_container_id(out.stdout.trim()),
        "`docker run -d` printed no id:\n{out}"
    );

    let ps = sb.run(
        docker
            .cmd()
            .args(["ps", "--format", "{{.Names}} {{.Status}}"]),
    );
    sb.expect_code(&ps, 0);
    assert!(
        ps.stdout
            .lines()
            .any(|l| l.starts_with(&format!("{name} Up"))),
        "{name} is not listed as Up:\n{ps}"
    );
    let rt = sb.run(
        docker
            .cmd()
            .args(["inspect", "--format", "{{.HostConfig.Runtime}}", &name]),
    );
    sb.expect_code(&rt, 0);
    assert_eq!(
        rt.stdout.trim(),
        "berth",
        "container is not on the berth runtime:\n{rt}"
    );
    // The runtime under test owns the container (dockerd's containerd keeps runtime state in
    // <exec-root>/runtime-<...>/moby) and reports the same init pid dockerd shows.
    let pid = sb.run(
        docker
            .cmd()
            .args(["inspect", "--format", "{{.State.Pid}}", &name]),
    );
    sb.expect_code(&pid, 0);
    let roots: Vec<Option<PathBuf>> = docker.runtime_roots().into_iter().map(Some).collect();
    sb.expect_runtime_state(&roots, out.stdout.trim(), "running", pid.stdout.trim());

    let exec = sb.run(
        docker
            .cmd()
            .args(["exec", &name, "sh", "-c", "echo in-exec; exit 7"]),
    );
    sb.expect_code(&exec, 7);
    sb.expect_stdout(&exec, "in-exec");

    let stop = sb.run(docker.cmd().args(["stop", "--time", "10", &name]));
    sb.expect_code(&stop, 0);
    assert!(
        stop.elapsed < Duration::from_secs(8),
        "stop needed the SIGKILL fallback: SIGTERM did not reach the container's trap:\n{stop}"
    );
    let state = sb.run(docker.cmd().args([
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]));
    sb.expect_code(&state, 0);
    assert_eq!(
        state.stdout.trim(),
        "exited 0",
        "unexpected state after stop:\n{state}"
    );

    let rm = sb.run(docker.cmd().args(["rm", &name]));
    sb.expect_code(&rm, 0);
    let ps = sb.run(docker.cmd().args(["ps", "--all", "--format", "{{.Names}}"]));
    sb.expect_code(&ps, 0);
    assert!(
        !ps.stdout.lines().any(|l| l.trim() == name),
        "{name} still listed after rm:\n{ps}"
    );
}

/// A private dockerd (with the containerd it starts itself) on a socket in the sandbox.
#[derive(Clone)]
struct Docker {
    cli: PathBuf,
    sock: PathBuf,
    cli_config: PathBuf,
    exec_root: PathBuf,
}

impl Docker {
    /// Starts dockerd with the runtime under test registered as `berth`; waits for `/_ping`.
    fn start(sb: &Sandbox, dockerd: &Path, cli: &Path) -> Docker {
        let dir = sb.root.join("docker");
        for sub in ["data", "exec", "cli"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // A private config file so /etc/docker/daemon.json (if any) is not read. dockerd before
        // 23 writes a trust key to /etc/docker/key.json unless told otherwise (config-file key
        // only: the matching command-line flag is not registered).
        let config = if dockerd_major(dockerd).is_some_and(|v| v < 23) {
            serde_json::json!({ "deprecated-key-path": dir.join("key.json") })
        } else {
            serde_json::json!({})
        };
        fs::write(dir.join("daemon.json"), config.to_string()).unwrap();
        let docker = Docker {
            cli: cli.to_path_buf(),
            sock: dir.join("docker.sock"),
            cli_config: dir.join("cli"),
            exec_root: dir.join("exec"),
        };
        let mut cmd = Command::new(dockerd);
        cmd.arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("--add-runtime")
            .arg(format!("berth={}", sb.runtime.display()))
            .arg("-H")
            .arg(format!("unix://{}", docker.sock.display()))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                "--exec-opt",
                "native.cgroupdriver=cgroupfs",
                "--storage-driver",
                "overlay2",
                "--shutdown-timeout",
                "5",
            ])
            .arg("--cgroup-parent")
            .arg(&sb.cgroup_parent);
        sb.spawn_daemon("dockerd", &mut cmd);
        sb.wait_ready(
            "dockerd",
            "answering /_ping",
            Duration::from_secs(30),
            || docker_ping(&docker.sock),
        );
        let d = docker.clone();
        sb.on_teardown(move |sb| {
            let ps = sb.run(d.cmd().args(["ps", "--all", "--quiet", "--no-trunc"]));
            let ids: Vec<&str> = ps.stdout.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = sb.run(d.cmd().args(["rm", "--force"]).args(&ids));
            }
            for root in d.runtime_roots() {
                sb.sweep_runtime_root(Some(root));
            }
        });
        docker
    }

    /// The runtime `--root`s dockerd's containerd uses: <exec-root>/runtime-<name>/moby
    /// (dockerd 20.10 puts every runtime registered by path under `runtime-runc`).
    fn runtime_roots(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(&self.exec_root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_name().as_bytes().starts_with(b"runtime-"))
            .map(|e| e.path().join("moby"))
            .filter(|p| p.is_dir())
            .collect()
    }

    /// The docker CLI talking to this dockerd only.
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.cli);
        c.env("DOCKER_CONFIG", &self.cli_config)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()));
        c
    }

    /// `docker import` of a tar of the sandbox's busybox rootfs as [`DOCKER_IMAGE`].
    fn import_busybox(&self, sb: &Sandbox) {
        let tar = sb.root.join("rootfs.tar");
        let out = sb.run(
            Command::new("tar")
                .arg("-C")
                .arg(&sb.rootfs)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        );
        sb.expect_code(&out, 0);
        let out = sb.run(self.cmd().arg("import").arg(&tar).arg(DOCKER_IMAGE));
        sb.expect_code(&out, 0);
    }
}

/// `GET /_ping` over the unix socket answers 200 OK.
fn docker_ping(sock: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.starts_with("HTTP/1.") && resp.lines().next().is_some_and(|l| l.contains(" 200 "))
}

/// Major version from `dockerd --version` ("Docker version 20.10.24+dfsg1, build ...").
fn dockerd_major(dockerd: &Path) -> Option<u32> {
    let out = Command::new(dockerd).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().nth(2)?;
    version.split('.').next()?.parse().ok()
}

/// The docker CLI: `$BERTH_TEST_DOCKER_CLI`, else /usr/local/bin/docker, else /usr/bin/docker.
fn docker_cli() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_TEST_DOCKER_CLI").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    ["/usr/local/bin/docker", "/usr/bin/docker"]
        .iter()
        .map(PathBuf::from)
        .find(|p| is_executable(p))
}

// ---------------------------------------------------------------------------------------------
// Sandbox: temp dir, runtime, rootfs, command runner, teardown
// ---------------------------------------------------------------------------------------------

/// One test's private world. Dropping it removes everything the test started or created.
struct Sandbox {
    dir: Option<tempfile::TempDir>,
    /// Canonical path of the temp dir; every client's state lives below it.
    root: PathBuf,
    /// Short lowercase token unique to this sandbox, for names and ids.
    uniq: String,
    /// The OCI runtime under test.
    runtime: PathBuf,
    /// The busybox root filesystem.
    rootfs: PathBuf,
    /// Absolute cgroup path that is the parent of every container cgroup of this test.
    cgroup_parent: String,
    seq: Cell<u32>,
    daemons: RefCell<Vec<Daemon>>,
    hooks: RefCell<Vec<TeardownHook>>,
    /// Runtime `--root`s to `delete --force` in (None: the runtime's default root).
    runtime_roots: RefCell<Vec<Option<PathBuf>>>,
    /// Container ids the runtime may hold state for.
    ids: RefCell<Vec<String>>,
}

/// Client-level cleanup run at teardown, before daemons are stopped.
type TeardownHook = Box<dyn FnOnce(&Sandbox)>;

struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
}

/// A finished (or timed-out) command.
struct Out {
    desc: String,
    /// None: timed out and killed, or could not be started.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Out {
    fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.status {
            None => "did not finish (timed out or failed to start)".to_string(),
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exit {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => format!("{s}"),
            },
        };
        write!(
            f,
            "`{}` -> {status} after {:.2?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.desc,
            self.elapsed,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

impl Sandbox {
    /// A fresh sandbox, or None (after printing why) when the test cannot run here.
    fn new(test: &str) -> Option<Sandbox> {
        if !nix::unistd::geteuid().is_root() {
            skip(test, "needs root");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-cl-")
            .tempdir_in("/tmp")
            .unwrap();
        let root = dir.path().canonicalize().unwrap();
        let token = root.file_name().unwrap().to_string_lossy().into_owned();
        let uniq = token.trim_start_matches("berth-cl-").to_ascii_lowercase();
        fs::create_dir(root.join("logs")).unwrap();
        let runtime = match resolve_runtime(&root) {
            Ok(r) => r,
            Err(why) => {
                skip(test, &why);
                return None;
            }
        };
        let rootfs = root.join("rootfs");
        if let Err(why) = build_busybox_rootfs(&rootfs) {
            skip(test, &why);
            return None;
        }
        eprintln!(
            "{test}: runtime {}, sandbox {}",
            runtime.display(),
            root.display()
        );
        Some(Sandbox {
            dir: Some(dir),
            cgroup_parent: format!("/berth-cl-{uniq}"),
            root,
            uniq,
            runtime,
            rootfs,
            seq: Cell::new(0),
            daemons: RefCell::new(Vec::new()),
            hooks: RefCell::new(Vec::new()),
            runtime_roots: RefCell::new(Vec::new()),
            ids: RefCell::new(Vec::new()),
        })
    }

    /// Runs `f` at teardown, before daemons are stopped (last registered runs first).
    fn on_teardown(&self, f: impl FnOnce(&Sandbox) + 'static) {
        self.hooks.borrow_mut().push(Box::new(f));
    }

    fn track_id(&self, id: &str) {
        if !id.is_empty() && !self.ids.borrow().iter().any(|i| i == id) {
            self.ids.borrow_mut().push(id.to_string());
        }
    }

    fn track_cidfile(&self, path: &Path) {
        if let Ok(id) = fs::read_to_string(path) {
            self.track_id(id.trim());
        }
    }

    fn sweep_runtime_root(&self, root: Option<PathBuf>) {
        if !self.runtime_roots.borrow().contains(&root) {
            self.runtime_roots.borrow_mut().push(root);
        }
    }

    fn run(&self, cmd: &mut Command) -> Out {
        self.run_for(cmd, CMD_TIMEOUT)
    }

    /// Runs `cmd` to completion (killing its process group after `timeout`), stdio in files
    /// under logs/ (files, not pipes: a client's daemonized helper may hold them open).
    fn run_for(&self, cmd: &mut Command, timeout: Duration) -> Out {
        let n = self.seq.get();
        self.seq.set(n + 1);
        let desc = describe(cmd);
        let out_path = self.root.join("logs").join(format!("cmd{n:03}.out"));
        let err_path = self.root.join("logs").join(format!("cmd{n:03}.err"));
        let started = Instant::now();
        let files = File::create(&out_path).and_then(|o| Ok((o, File::create(&err_path)?)));
        let spawned = files.and_then(|(o, e)| {
            cmd.stdin(Stdio::null())
                .stdout(o)
                .stderr(e)
                .process_group(0)
                .spawn()
        });
        let status = match spawned {
            Ok(mut child) => wait_child(&mut child, timeout),
            Err(e) => {
                return Out {
                    desc,
                    status: None,
                    stdout: String::new(),
                    stderr: format!("could not start: {e}"),
                    elapsed: started.elapsed(),
                }
            }
        };
        Out {
            desc,
            status,
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
            elapsed: started.elapsed(),
        }
    }

    fn expect_code(&self, out: &Out, code: i32) {
        if out.code() != Some(code) {
            panic!("expected exit {code} from {out}\n{}", self.diagnostics());
        }
    }

    fn expect_stdout(&self, out: &Out, want: &str) {
        if out.stdout.trim() != want {
            panic!(
                "expected stdout {want:?} from {out}\n{}",
                self.diagnostics()
            );
        }
    }

    /// `RUNTIME [--root R] state ID` answers (under one of `roots`) with JSON naming `id`, the
    /// `status` wanted and the init `pid` the client reported: proof that the runtime under
    /// test, not some other runc, holds the container.
    fn expect_runtime_state(&self, roots: &[Option<PathBuf>], id: &str, status: &str, pid: &str) {
        let mut tried = Vec::new();
        for root in roots {
            let mut c = Command::new(&self.runtime);
            if let Some(r) = root {
                c.arg("--root").arg(r);
            }
            let out = self.run(c.args(["state", id]));
            if out.code() != Some(0) {
                tried.push(out.to_string());
                continue;
            }
            let state: serde_json::Value = serde_json::from_str(&out.stdout)
                .unwrap_or_else(|e| panic!("`state` printed no JSON ({e}):\n{out}"));
            assert_eq!(state["id"], id, "state names another container:\n{out}");
            assert_eq!(state["status"], status, "unexpected status:\n{out}");
            assert_eq!(
                state["pid"].to_string(),
                pid,
                "runtime and client disagree on the pid:\n{out}"
            );
            return;
        }
        panic!(
            "the runtime does not know {id}:\n{}\n{}",
            tried.join("\n"),
            self.diagnostics()
        );
    }

    /// Starts a long-running daemon in its own process group, output in logs/<name>.log.
    fn spawn_daemon(&self, name: &str, cmd: &mut Command) {
        let log = self.root.join("logs").join(format!("{name}.log"));
        let f = File::create(&log).unwrap();
        let f2 = f.try_clone().unwrap();
        let tmp = self.root.join("tmp");
        fs::create_dir_all(&tmp).unwrap();
        cmd.env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(f2)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.daemons.borrow_mut().push(Daemon {
            name: name.to_string(),
            child,
            log,
        });
    }

    /// Polls `ready` until true; panics with the daemon's log if it exits or times out.
    fn wait_ready(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return;
            }
            let exited = self
                .daemons
                .borrow_mut()
                .iter_mut()
                .find(|d| d.name == name)
                .and_then(|d| d.child.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!(
                    "{name} exited ({status}) before {what}\n{}",
                    self.diagnostics()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{name} not {what} within {timeout:?}\n{}",
                    self.diagnostics()
                );
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of every daemon's log, for failure messages.
    fn diagnostics(&self) -> String {
        let mut s = String::new();
        for d in self.daemons.borrow().iter() {
            let text = fs::read_to_string(&d.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            s.push_str(&format!(
                "--- last lines of {} log ---\n{}\n",
                d.name,
                tail.join("\n")
            ));
        }
        s
    }

    fn stop_daemons(&self) {
        for d in self.daemons.borrow_mut().iter_mut().rev() {
            if let Ok(None) = d.child.try_wait() {
                let _ = kill(Pid::from_raw(d.child.id() as i32), Signal::SIGTERM);
                // wait_child SIGKILLs the whole process group if SIGTERM is not enough.
                if wait_child(&mut d.child, Duration::from_secs(20)).is_none() {
                    eprintln!("warning: {} ignored SIGTERM for 20 s; killed", d.name);
                }
            }
        }
    }

    /// Pids of live processes whose command line names the sandbox (shims, conmon, helpers).
    fn stray_pids(&self) -> Vec<i32> {
        let me = std::process::id() as i32;
        let needle = self.root.as_os_str().as_bytes();
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me)
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle))
            })
            .collect()
    }

    /// Gives strays `grace` to finish on their own, then SIGKILLs them.
    fn kill_strays(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        while !self.stray_pids().is_empty() && Instant::now() < deadline {
            sleep(Duration::from_millis(50));
        }
        for _ in 0..3 {
            let pids = self.stray_pids();
            if pids.is_empty() {
                return;
            }
            // A killed process cannot unlink the sockets it bound (containerd 1.6 shims bind
            // theirs in /run/containerd/s): note them first, unlink them once it is gone.
            let sockets: Vec<PathBuf> = pids.iter().flat_map(|p| bound_unix_sockets(*p)).collect();
            for pid in &pids {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
            let gone_by = Instant::now() + Duration::from_secs(2);
            while !self.stray_pids().is_empty() && Instant::now() < gone_by {
                sleep(Duration::from_millis(20));
            }
            for sock in sockets {
                if fs::symlink_metadata(&sock).is_ok_and(|m| m.file_type().is_socket()) {
                    let _ = fs::remove_file(&sock);
                }
            }
        }
        let left = self.stray_pids();
        if !left.is_empty() {
            eprintln!(
                "warning: processes naming {} survived SIGKILL: {left:?}",
                self.root.display()
            );
        }
    }

    /// `RUNTIME [--root R] delete --force ID` for every tracked id and every state dir found.
    fn force_delete_containers(&self) {
        let ids = self.ids.borrow().clone();
        for root in self.runtime_roots.borrow().iter() {
            let mut all = ids.clone();
            if let Some(r) = root {
                if let Ok(entries) = fs::read_dir(r) {
                    for e in entries.flatten() {
                        if e.path().is_dir() {
                            all.push(e.file_name().to_string_lossy().into_owned());
                        }
                    }
                }
            }
            all.sort();
            all.dedup();
            for id in all {
                let mut c = Command::new(&self.runtime);
                if let Some(r) = root {
                    c.arg("--root").arg(r);
                }
                c.args(["delete", "--force", &id]);
                let _ = self.run_for(&mut c, Duration::from_secs(10));
            }
        }
    }

    /// Kills what is left in the test's cgroup parent and removes it from every hierarchy.
    fn remove_cgroups(&self) {
        let rel = self.cgroup_parent.trim_start_matches('/');
        for mount in cgroup_mounts() {
            let dir = mount.join(rel);
            if !dir.exists() {
                continue;
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                kill_cgroup_tree(&dir);
                if rmdir_tree(&dir).is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    eprintln!("warning: could not remove cgroup {}", dir.display());
                    break;
                }
                sleep(Duration::from_millis(50));
            }
        }
    }

    /// Detaches every mount at or below the sandbox, deepest first.
    fn unmount_all(&self) {
        for _ in 0..10 {
            let mut mounts = mounts_under(&self.root);
            if mounts.is_empty() {
                return;
            }
            mounts.sort_by_key(|p| Reverse(p.components().count()));
            for m in mounts {
                let _ = umount2(&m, MntFlags::MNT_DETACH);
            }
        }
        let left = mounts_under(&self.root);
        if !left.is_empty() {
            eprintln!(
                "warning: mounts left under {}: {left:?}",
                self.root.display()
            );
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let hooks = std::mem::take(&mut *self.hooks.borrow_mut());
        for hook in hooks.into_iter().rev() {
            hook(self);
        }
        self.stop_daemons();
        self.kill_strays(Duration::from_secs(5));
        self.force_delete_containers();
        self.remove_cgroups();
        self.kill_strays(Duration::from_millis(200));
        self.unmount_all();
        if let Some(dir) = self.dir.take() {
            if let Err(e) = dir.close() {
                eprintln!("warning: removing {}: {e}", self.root.display());
            }
        }
    }
}

/// Filesystem paths of the unix sockets `pid` holds (from its fds and /proc/net/unix).
fn bound_unix_sockets(pid: i32) -> Vec<PathBuf> {
    let mut inodes = Vec::new();
    if let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for fd in fds.flatten() {
            if let Ok(target) = fs::read_link(fd.path()) {
                let t = target.to_string_lossy();
                if let Some(inode) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                    inodes.push(inode.to_string());
                }
            }
        }
    }
    let table = fs::read_to_string("/proc/net/unix").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            // Num RefCount Protocol Flags Type St Inode [Path]
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f.get(7)?;
            (path.starts_with('/') && inodes.iter().any(|i| i == f[6])).then(|| PathBuf::from(path))
        })
        .collect()
}

/// Waits for `child`, SIGKILLing its process group (and it) once `timeout` passes.
fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(5)),
            _ => {
                let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn skip(test: &str, why: &str) {
    eprintln!("SKIP {test}: {why}");
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `name` in PATH or the usual sbin/bin directories.
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// Paths of all `tools`, or None after printing which are missing.
fn need(test: &str, tools: &[&str]) -> Option<Vec<PathBuf>> {
    let found: Vec<Option<PathBuf>> = tools.iter().map(|t| find_tool(t)).collect();
    let missing: Vec<&str> = tools
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(t, _)| *t)
        .collect();
    if !missing.is_empty() {
        skip(test, &format!("not installed: {}", missing.join(", ")));
        return None;
    }
    Some(found.into_iter().flatten().collect())
}

/// The runtime under test: `$BERTH_TEST_RUNTIME` (path or name in PATH), else a
/// `berth-runtime` symlink in the sandbox to the berth binary Cargo built for this test.
fn resolve_runtime(root: &Path) -> Result<PathBuf, String> {
    if let Some(v) = std::env::var_os("BERTH_TEST_RUNTIME").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(&v);
        if v.as_bytes().contains(&b'/') {
            let abs = if p.is_absolute() {
                p
            } else {
                std::env::current_dir().unwrap().join(p)
            };
            assert!(
                is_executable(&abs),
                "BERTH_TEST_RUNTIME={} is not an executable",
                abs.display()
            );
            return Ok(abs);
        }
        let found = find_tool(&v.to_string_lossy());
        return Ok(found.unwrap_or_else(|| panic!("BERTH_TEST_RUNTIME={v:?} not found in PATH")));
    }
    let Some(berth) = option_env!("CARGO_BIN_EXE_berth") else {
        return Err("this build has no berth binary; set BERTH_TEST_RUNTIME".to_string());
    };
    let bin = root.join("bin");
    fs::create_dir_all(&bin).map_err(|e| format!("creating {}: {e}", bin.display()))?;
    let link = bin.join("berth-runtime");
    symlink(berth, &link).map_err(|e| format!("linking {}: {e}", link.display()))?;
    Ok(link)
}

/// A minimal root filesystem: static busybox with its applet symlinks, passwd and group.
fn build_busybox_rootfs(rootfs: &Path) -> Result<(), String> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| is_executable(p))
        .or_else(|| find_tool("busybox"))
        .ok_or("busybox is not installed")?;
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    for d in [
        "bin", "dev", "etc", "proc", "sys", "tmp", "root", "run", "var",
    ] {
        fs::create_dir_all(rootfs.join(d)).map_err(|e| io(d, e))?;
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
        .map_err(|e| io("tmp", e))?;
    let target = rootfs.join("bin/busybox");
    fs::copy(&busybox, &target).map_err(|e| io("copying busybox", e))?;
    fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).map_err(|e| io("chmod", e))?;
    let list = Command::new(&busybox)
        .arg("--list")
        .output()
        .map_err(|e| io("busybox --list", e))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        match symlink("busybox", rootfs.join("bin").join(applet)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(applet, e)),
        }
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .map_err(|e| io("passwd", e))?;
    fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")
        .map_err(|e| io("group", e))?;
    Ok(())
}

/// (mount point, filesystem type) of every mount in this mount namespace.
fn mountinfo() -> Vec<(PathBuf, String)> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            let mount_point = unescape_mountinfo(fields.get(4)?);
            Some((PathBuf::from(mount_point), fields.get(sep + 1)?.to_string()))
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    std::ffi::OsString::from_vec(out)
}

fn mounts_under(root: &Path) -> Vec<PathBuf> {
    mountinfo()
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.starts_with(root))
        .collect()
}

fn cgroup_mounts() -> Vec<PathBuf> {
    mountinfo()
        .into_iter()
        .filter(|(_, fstype)| fstype == "cgroup" || fstype == "cgroup2")
        .map(|(p, _)| p)
        .collect()
}

/// Thaws (v1 freezer) and SIGKILLs every process in `dir` and its descendants.
fn kill_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                kill_cgroup_tree(&e.path());
            }
        }
    }
    let freezer = dir.join("freezer.state");
    if freezer.exists() {
        let _ = fs::write(&freezer, "THAWED");
    }
    if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// rmdir of a cgroup and all its child cgroups, children first.
fn rmdir_tree(dir: &Path) -> std::io::Result<()> {
    for e in fs::read_dir(dir)?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            rmdir_tree(&e.path())?;
        }
    }
    fs::remove_dir(dir)
}
