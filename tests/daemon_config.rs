//! `berth daemon`'s configuration as dockerd's: a daemon.json (`--config-file`) with
//! `runtimes`, `default-runtime` and `log-opts`; `--add-runtime NAME=PATH`; a directive given
//! both as a flag and in the file is refused; containers run under an external runc-compatible
//! runtime (`docker run --runtime runc`) with exec, pause, a terminal and stop; json-file log
//! rotation from `log-opts` and `--log-opt`. Driven with the real docker CLI.

#[path = "daemon_common/mod.rs"]
mod daemon_common;

use daemon_common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

fn runc() -> Option<&'static str> {
    ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

#[test]
fn daemon_json_conflicting_flag_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("daemon.json");
    fs::write(&cfg, r#"{"data-root": "/nonexistent/x"}"#).unwrap();
    let out = Command::new(BERTH)
        .args(["daemon", "--data-root"])
        .arg(d.path().join("data"))
        .arg("--config-file")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("specified both as a flag and in the configuration file")
            && err.contains("data-root"),
        "{err}"
    );
    fs::write(&cfg, "{oops").unwrap();
    let out = Command::new(BERTH)
        .args(["daemon", "--config-file"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid configuration file"));
    let out = Command::new(BERTH)
        .args(["daemon", "--default-runtime", "nosuch", "--data-root"])
        .arg(d.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch"));
}

#[test]
fn external_runtimes_and_log_rotation_from_daemon_json() {
    let Some(runc) = runc() else {
        eprintln!("SKIP: no runc");
        return;
    };
    if !nix::unistd::geteuid().is_root() || docker_cli().is_none() {
        eprintln!("SKIP: needs root and a docker CLI");
        return;
    }
    let mut sb = Sandbox::new(docker_cli().unwrap());
    sb.import_busybox();
    let cfg = sb.dir.join("daemon.json");
    fs::write(
        &cfg,
        format!(
            r#"{{"log-opts": {{"max-size": "1k", "max-file": "2"}},
                "runtimes": {{"other": {{"path": "{runc}"}}}}}}"#
        ),
    )
    .unwrap();
    sb.start_daemon_with(&[
        "--config-file",
        cfg.to_str().unwrap(),
        "--add-runtime",
        &format!("flagged={runc}"),
    ]);

    let rts = sb.ok(&["info", "--format", "{{json .Runtimes}}"]);
    for name in ["berth", "other", "flagged"] {
        assert!(rts.contains(&format!("\"{name}\"")), "{rts}");
    }
    assert_eq!(
        sb.ok(&["info", "--format", "{{.DefaultRuntime}}"]).trim(),
        "berth"
    );

    // A container under the external runtime: output, exit code, exec, pause, stop.
    assert_eq!(
        sb.ok(&["run", "--rm", "--runtime", "other", "busybox", "echo", "hi"]),
        "hi\n"
    );
    assert_eq!(
        sb.code(&[
            "run",
            "--rm",
            "--runtime",
            "flagged",
            "busybox",
            "sh",
            "-c",
            "exit 7"
        ]),
        7
    );
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "ext",
        "--runtime",
        "other",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(
        sb.ok(&["inspect", "-f", "{{.HostConfig.Runtime}}", "ext"])
            .trim(),
        "other"
    );
    assert_eq!(sb.ok(&["exec", "ext", "echo", "in"]), "in\n");
    assert_eq!(sb.code(&["exec", "ext", "sh", "-c", "exit 3"]), 3);
    sb.ok(&["pause", "ext"]);
    assert_eq!(
        sb.ok(&["inspect", "-f", "{{.State.Status}}", "ext"]).trim(),
        "paused"
    );
    sb.ok(&["unpause", "ext"]);
    // The state lives under the external runtime's own root.
    let st = Command::new(runc)
        .arg("--root")
        .arg(sb.dir.join("exec/runtimes/other"))
        .args(["list", "-q"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&st.stdout).trim().len() == 64);
    // sleep as PID 1 ignores SIGTERM: SIGKILL after the timeout, as with docker.
    sb.ok(&["stop", "-t", "1", "ext"]);
    assert_eq!(
        sb.ok(&["inspect", "-f", "{{.State.ExitCode}}", "ext"])
            .trim(),
        "137"
    );
    sb.ok(&["rm", "ext"]);
    // A terminal through the external runtime's console socket.
    let out = sb.ok(&[
        "run",
        "--rm",
        "-t",
        "--runtime",
        "other",
        "busybox",
        "busybox",
        "tty",
    ]);
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    let e = sb.docker(&["run", "--rm", "--runtime", "nosuch", "busybox", "true"]);
    assert_eq!(e.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&e.stderr).contains("unknown or invalid runtime name: nosuch"));

    // log-opts from daemon.json rotate the json-file log: 2 files, each <= ~1 KiB.
    sb.ok(&[
        "run",
        "--name",
        "lg",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    let log = sb.ok(&["inspect", "-f", "{{.LogPath}}", "lg"]);
    let log = Path::new(log.trim());
    let rotated = log.with_file_name(format!("{}.1", log.file_name().unwrap().to_string_lossy()));
    assert!(rotated.exists(), "no rotated log next to {}", log.display());
    assert!(!log
        .with_file_name(format!("{}.2", log.file_name().unwrap().to_string_lossy()))
        .exists());
    assert!(fs::metadata(log).unwrap().len() <= 1100);
    let tail = sb.ok(&["logs", "--tail", "1", "lg"]);
    assert_eq!(tail, "line-299\n");
    // --log-opt on the container wins over daemon.json; --log-driver none keeps no log.
    sb.ok(&[
        "run",
        "--name",
        "lg2",
        "--log-opt",
        "max-size=10k",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    let log2 = sb.ok(&["inspect", "-f", "{{.LogPath}}", "lg2"]);
    assert!(fs::metadata(log2.trim()).unwrap().len() > 1100);
    let bad = sb.docker(&["run", "--rm", "--log-driver", "syslog", "busybox", "true"]);
    assert_ne!(bad.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("syslog"));
}
