//! berth's daemon driven by the real Docker CLI: `berth daemon` serves the Engine API on a unix
//! socket in a temp dir, and `docker` (DOCKER_HOST pointing at it) runs the everyday commands:
//! version/info, images/inspect/history/tag/rmi, run (output and exit codes, --rm, -d, -i),
//! logs (--tail, -t, -f), ps (-a, -q, filters), inspect, exec (output, exit code, stdin),
//! top, pause/unpause, rename, stop (SIGKILL after the timeout), restart, kill, wait, rm (-f),
//! and live restore: the daemon is SIGKILLed while a container runs, restarted, and still
//! shows the container running with its logs.
//!
//! The busybox image is imported with `berth import` before the daemon starts (the image store
//! is one process' at a time). Needs root and a `docker` CLI (`/usr/local/bin/docker` or
//! `docker` in PATH); otherwise the test prints `SKIP` and passes. The [`Sandbox`]'s `Drop`
//! removes every container through the daemon, stops the daemon, kills stray shims naming the
//! temp dir, detaches every mount under it and removes it.

#[path = "daemon_common/mod.rs"]
mod daemon_common;

use daemon_common::*;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

#[test]
fn docker_cli_against_berth_daemon() {
    let Some(mut sb) = setup("docker_cli_against_berth_daemon") else {
        return;
    };

    // system and images
    assert!(
        sb.ok(&["version", "--format", "{{.Server.Version}}"])
            .trim()
            .len()
            > 0
    );
    assert!(sb.ok(&["info"]).contains("Storage Driver: overlay2"));
    assert!(sb.ok(&["images"]).contains("busybox"));
    assert_eq!(
        sb.ok(&["image", "inspect", "-f", "{{.Os}}", "busybox"])
            .trim(),
        "linux"
    );
    assert!(sb.ok(&["history", "busybox"]).contains("IMAGE"));
    sb.ok(&["tag", "busybox", "bb:two"]);
    assert!(sb
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .contains("bb:two"));
    assert!(sb.ok(&["rmi", "bb:two"]).contains("Untagged: bb:two"));
    assert_ne!(sb.code(&["image", "inspect", "nosuchimage"]), 0);

    // run: output and exit codes
    assert_eq!(sb.ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi\n");
    assert_eq!(
        sb.code(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]),
        3
    );
    assert_eq!(sb.code(&["run", "--rm", "busybox", "nosuchcmd"]), 127);
    assert_eq!(sb.code(&["run", "--rm", "busybox", "/etc/passwd"]), 126);
    let o = sb.docker(&[
        "run",
        "--name",
        "e3",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    assert!(sb
        .ok(&["ps", "-a", "--filter", "name=e3", "--format", "{{.Status}}"])
        .starts_with("Exited (3)"));
    let o = sb.docker(&["logs", "e3"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    sb.ok(&["rm", "e3"]);
    assert_eq!(
        sb.docker_in(&["run", "-i", "--rm", "busybox", "cat"], Some("piped\n"))
            .stdout,
        b"piped\n"
    );
    assert_eq!(
        sb.code(&["run", "--rm", "--network", "host", "busybox", "true"]),
        0
    );

    // a detached container through the lifecycle
    let id = sb.ok(&[
        "run",
        "-d",
        "--name",
        "d1",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.2; done",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64);
    sleep(Duration::from_millis(800));
    assert!(sb.ok(&["ps"]).contains("d1"));
    assert_eq!(sb.ok(&["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(
        sb.ok(&[
            "ps",
            "-q",
            "--filter",
            "status=running",
            "--filter",
            "name=d1"
        ])
        .trim(),
        &id[..12]
    );
    assert_eq!(sb.ok(&["ps", "-q", "--filter", "status=exited"]).trim(), "");
    assert_eq!(
        sb.ok(&["ps", "-q", "--filter", &format!("id={}", &id[..6])])
            .trim(),
        &id[..12]
    );
    assert_eq!(sb.ok(&["logs", "--tail", "2", "d1"]).lines().count(), 2);
    // docker export: a plain tar of the container's root filesystem.
    let tarball = sb.dir.join("d1-export.tar");
    sb.ok(&["export", "-o", tarball.to_str().unwrap(), "d1"]);
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(&tarball)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(
        names
            .lines()
            .any(|l| l.trim_start_matches("./") == "bin/busybox"),
        "{names}"
    );
    // berth's own CLI reaches the daemon for export too (-H like docker's).
    let tarball2 = sb.dir.join("d1-export-berth.tar");
    let host = format!("unix://{}", sb.sock().display());
    let o = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "-H",
            &host,
            "export",
            "-o",
            tarball2.to_str().unwrap(),
            "d1",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        fs::metadata(&tarball).unwrap().len(),
        fs::metadata(&tarball2).unwrap().len(),
        "berth export and docker export give the same archive"
    );
    let t = sb.ok(&["logs", "-t", "--tail", "1", "d1"]);
    assert!(t.starts_with("20") && t.contains("Z line"), "{t}");
    // -f keeps streaming until killed by timeout
    let o = Command::new("timeout")
        .args([
            "2",
            sb.docker.to_str().unwrap(),
            "logs",
            "-f",
            "--tail",
            "1",
            "d1",
        ])
        .env("DOCKER_HOST", format!("unix://{}", sb.sock().display()))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).lines().count() >= 4);
    assert_eq!(
        sb.ok(&["inspect", "-f", "{{.State.Status}} {{.Name}}", "d1"])
            .trim(),
        "running /d1"
    );
    // exec
    assert_eq!(sb.ok(&["exec", "d1", "echo", "fromexec"]), "fromexec\n");
    assert_eq!(sb.code(&["exec", "d1", "sh", "-c", "exit 7"]), 7);
    // a missing command: the error in the stream and 127, as dockerd answers
    let missing = sb.docker(&["exec", "d1", "nosuchcmd"]);
    assert_eq!(missing.status.code(), Some(127));
    assert!(
        String::from_utf8_lossy(&missing.stdout).contains("nosuchcmd")
            || String::from_utf8_lossy(&missing.stderr).contains("nosuchcmd")
    );
    // exec -u by name (from the container's /etc/passwd) and by number
    assert_eq!(
        sb.ok(&["exec", "-u", "root", "d1", "sh", "-c", "echo $(id -u)"]),
        "0\n"
    );
    assert_eq!(
        sb.ok(&[
            "exec",
            "-u",
            "1000:1001",
            "d1",
            "sh",
            "-c",
            "echo $(id -u):$(id -g)"
        ]),
        "1000:1001\n"
    );
    let ghost = sb.docker(&["exec", "-u", "ghost", "d1", "true"]);
    assert_ne!(ghost.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&ghost.stderr).contains("unable to find user ghost"),
        "{}",
        String::from_utf8_lossy(&ghost.stderr)
    );
    assert_eq!(
        sb.docker_in(&["exec", "-i", "d1", "cat"], Some("hello\n"))
            .stdout,
        b"hello\n"
    );
    assert!(sb.ok(&["top", "d1"]).contains("while true"));
    sb.ok(&["pause", "d1"]);
    assert!(sb
        .ok(&["ps", "--format", "{{.Status}}"])
        .contains("(Paused)"));
    sb.ok(&["unpause", "d1"]);
    sb.ok(&["rename", "d1", "d2"]);
    assert_eq!(sb.ok(&["ps", "--format", "{{.Names}}"]).trim(), "d2");
    // sh as PID 1 ignores SIGTERM: stop kills after the timeout
    let t0 = Instant::now();
    sb.ok(&["stop", "-t", "1", "d2"]);
    assert!(t0.elapsed() < Duration::from_secs(15));
    assert_eq!(
        sb.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "d2"
        ])
        .trim(),
        "exited 137"
    );
    sb.ok(&["restart", "-t", "1", "d2"]);
    assert_eq!(
        sb.ok(&["inspect", "-f", "{{.State.Status}}", "d2"]).trim(),
        "running"
    );
    sb.ok(&["kill", "d2"]);
    assert_eq!(sb.ok(&["wait", "d2"]).trim(), "137");
    assert_ne!(sb.code(&["kill", "d2"]), 0);
    sb.ok(&["rm", "d2"]);
    assert_ne!(sb.code(&["inspect", "d2"]), 0);

    // rm -f of a running container
    sb.ok(&["run", "-d", "--name", "f1", "busybox", "sleep", "1000"]);
    assert_ne!(sb.code(&["rm", "f1"]), 0);
    sb.ok(&["rm", "-f", "f1"]);
    assert_eq!(sb.ok(&["ps", "-aq"]).trim(), "");

    // live restore: the daemon dies, the container runs on
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "lr",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done",
    ]);
    sleep(Duration::from_millis(500));
    sb.kill_daemon();
    sleep(Duration::from_millis(500));
    sb.start_daemon();
    assert_eq!(
        sb.ok(&["ps", "--format", "{{.Names}} {{.State}}"]).trim(),
        "lr running"
    );
    assert!(sb.ok(&["logs", "--tail", "1", "lr"]).starts_with("tick"));
    assert_eq!(sb.ok(&["exec", "lr", "echo", "alive"]), "alive\n");
    sb.ok(&["stop", "-t", "1", "lr"]);
    assert_eq!(
        sb.ok(&["inspect", "-f", "{{.State.Status}}", "lr"]).trim(),
        "exited"
    );
    sb.ok(&["rm", "lr"]);
}

#[test]
fn docker_pull_through_berth_daemon() {
    if !Path::new("/usr/bin/docker-registry").exists() {
        eprintln!("SKIP docker_pull_through_berth_daemon: no docker-registry");
        return;
    }
    let Some(sb) = setup("docker_pull_through_berth_daemon") else {
        return;
    };
    let Some(registry) = Registry::start(&sb.dir.join("registry")) else {
        return;
    };
    let port = registry.port;
    // Push with the berth CLI from a second data root (the daemon holds the first).
    let name = format!("127.0.0.1:{port}/bb:1");
    let data2 = sb.dir.join("data2");
    let tar = sb.dir.join("busybox.tar");
    for args in [
        vec![
            "import",
            "-c",
            "CMD [\"sh\"]",
            tar.to_str().unwrap(),
            name.as_str(),
        ],
        vec!["push", name.as_str()],
    ] {
        let o = Command::new(BERTH)
            .arg("--data-root")
            .arg(&data2)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "berth {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let out = sb.ok(&["pull", &name]);
    assert!(out.contains("Status: Downloaded newer image for"), "{out}");
    assert_eq!(out.matches("Digest:").count(), 1, "{out}");
    assert_eq!(sb.ok(&["run", "--rm", &name, "echo", "pulled"]), "pulled\n");
    sb.ok(&["rmi", &name]);
    // run pulls a missing image itself
    assert_eq!(sb.ok(&["run", "--rm", &name, "echo", "again"]), "again\n");
    assert_ne!(sb.code(&["pull", &format!("127.0.0.1:{port}/nosuch:1")]), 0);
}
