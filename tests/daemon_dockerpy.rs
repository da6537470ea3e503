//! berth's daemon driven by docker-py (the Docker SDK for Python, PyPI `docker`): the SDK path
//! real programs use. Each test starts a sandbox daemon (tests/daemon_common) and runs one or
//! more cases of tests/data/dockerpy/suite.py against it with `DOCKER_HOST` at its socket:
//! container create/start/logs (plain and streamed, follow, tail, timestamps)/wait/remove,
//! `containers.run` (foreground, detached, remove=True, ContainerError; 20 foreground runs in a
//! row, whose follow of the logs must end after the container is removed), stop/restart/kill/
//! pause/rename; exec_run (exit code, output, demux, stream, env/workdir/user, tty, stdin over
//! the hijacked socket, detached); attach (stream=True before start, demux, attach_socket with
//! stdin, StdinOnce, TTY); list with filters and inspect fields (State, Config, HostConfig);
//! images list/get/tag/remove; version/info/ping and a client pinned to API 1.40; errors
//! (NotFound, ImageNotFound, 409 conflicts); container prune.
//!
//! Needs root, the docker CLI (the harness uses it to wait for the daemon and clean up) and
//! docker-py (`python3 -c 'import docker'`; .ci/run installs it with pip); otherwise each test
//! prints `SKIP` and passes.

#[path = "daemon_common/mod.rs"]
mod daemon_common;

use daemon_common::*;
use std::path::Path;
use std::process::{Command, Stdio};

fn dockerpy_available() -> bool {
    Command::new("python3")
        .args(["-c", "import docker"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs suite.py's `cases` against a fresh sandbox daemon; fails with the script's output and
/// the daemon's log.
fn run_cases(test: &str, cases: &[&str]) {
    if !dockerpy_available() {
        eprintln!("SKIP {test}: docker-py is not installed (pip install docker)");
        return;
    }
    let Some(sb) = setup(test) else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dockerpy/suite.py");
    let out = Command::new("timeout")
        .arg("300")
        .arg("python3")
        .arg(&script)
        .args(cases)
        .env("DOCKER_HOST", format!("unix://{}", sb.sock().display()))
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "docker-py cases {cases:?} failed ({}):\n{stdout}{stderr}\n--- daemon log ---\n{}",
        out.status,
        sb.daemon_log()
    );
    for c in cases {
        assert!(stdout.contains(&format!("PASS {c} ")), "{stdout}{stderr}");
    }
    // Every case cleans up after itself.
    assert_eq!(
        sb.ok(&["ps", "-aq"]).trim(),
        "",
        "containers left behind by {cases:?}"
    );
}

#[test]
fn dockerpy_container_lifecycle() {
    run_cases("dockerpy_container_lifecycle", &["lifecycle", "run_loop"]);
}

#[test]
fn dockerpy_exec() {
    run_cases("dockerpy_exec", &["exec"]);
}

#[test]
fn dockerpy_attach() {
    run_cases("dockerpy_attach", &["attach"]);
}

#[test]
fn dockerpy_list_and_inspect() {
    run_cases("dockerpy_list_and_inspect", &["list_inspect"]);
}

#[test]
fn dockerpy_images_system_errors() {
    run_cases(
        "dockerpy_images_system_errors",
        &["images", "system", "errors", "prune"],
    );
}

#[test]
fn dockerpy_stats() {
    run_cases("dockerpy_stats", &["stats"]);
}

#[test]
fn dockerpy_events() {
    run_cases("dockerpy_events", &["events"]);
}

#[test]
fn dockerpy_image_prune() {
    run_cases("dockerpy_image_prune", &["image_prune"]);
}

#[test]
fn dockerpy_system_df() {
    run_cases("dockerpy_system_df", &["df"]);
}

#[test]
fn dockerpy_exec_missing_command() {
    run_cases("dockerpy_exec_missing_command", &["exec_missing_command"]);
}

#[test]
fn dockerpy_exec_output_race() {
    run_cases("dockerpy_exec_output_race", &["exec_output_race"]);
}
