//! Terminals: with `process.terminal: true`, `create`/`run -d --console-socket SOCK` hand the
//! pty master to the socket (SCM_RIGHTS); the container's stdio is that pty (`tty` prints
//! /dev/pts/0), input typed on the master reaches it, consoleSize is applied, and a terminal
//! without a console socket is refused when detaching.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

fn tty_bundle(env: &TestEnv, script: &str) -> Bundle {
    env.bundle(|s| {
        s["process"]["terminal"] = true.into();
        sh(s, script);
    })
}

#[test]
fn create_with_console_socket_gives_the_container_a_pty() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("console");
    let sock = ConsoleSocket::bind(&env.dir.join("console.sock"));
    let b = tty_bundle(&env, "tty; test -t 0 && echo stdin-tty; test -t 1 && echo stdout-tty; test -t 2 && echo stderr-tty");
    env.create_with(
        &b,
        &b.id,
        &["--console-socket", sock.path.to_str().unwrap()],
    )
    .assert_ok();
    let master = sock.recv_fd(10 * SECOND);
    env.start(&b.id).assert_ok();
    let text = read_pty(&master, 10 * SECOND);
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(
        lines,
        ["/dev/pts/0", "stdin-tty", "stdout-tty", "stderr-tty"],
        "pty output: {text:?}"
    );
    assert!(
        text.contains("\r\n"),
        "the pty translates newlines (onlcr): {text:?}"
    );
    assert!(env.wait_status(&b.id, "stopped", 10 * SECOND));
    env.delete(&b.id).assert_ok();
}

#[test]
fn input_written_to_the_master_reaches_the_container() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("consolein");
    let sock = ConsoleSocket::bind(&env.dir.join("console.sock"));
    let b = tty_bundle(
        &env,
        "stty -echo; echo ready; read line; echo \"got:$line\"",
    );
    env.create_with(
        &b,
        &b.id,
        &["--console-socket", sock.path.to_str().unwrap()],
    )
    .assert_ok();
    let master = sock.recv_fd(10 * SECOND);
    env.start(&b.id).assert_ok();
    // Wait for the prompt before typing, so `stty -echo` has taken effect.
    let mut seen = String::new();
    assert!(
        wait_until(10 * SECOND, || {
            seen.push_str(&read_pty(&master, Duration::from_millis(50)));
            seen.contains("ready")
        }),
        "no prompt: {seen:?}"
    );
    write_pty(&master, b"hello from the test\n");
    let text = read_pty(&master, 10 * SECOND);
    assert!(
        text.contains("got:hello from the test"),
        "{seen:?} {text:?}"
    );
    assert!(env.wait_status(&b.id, "stopped", 10 * SECOND));
}

#[test]
fn console_size_is_applied() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("consolesize");
    let sock = ConsoleSocket::bind(&env.dir.join("console.sock"));
    let b = env.bundle(|s| {
        s["process"]["terminal"] = true.into();
        s["process"]["consoleSize"] = json!({ "height": 33, "width": 111 });
        set_args(s, &["stty", "size"]);
    });
    env.create_with(
        &b,
        &b.id,
        &["--console-socket", sock.path.to_str().unwrap()],
    )
    .assert_ok();
    let master = sock.recv_fd(10 * SECOND);
    env.start(&b.id).assert_ok();
    let text = read_pty(&master, 10 * SECOND);
    assert_eq!(text.trim(), "33 111", "{text:?}");
}

#[test]
fn run_detached_with_console_socket() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("consolerun");
    let sock = ConsoleSocket::bind(&env.dir.join("console.sock"));
    let b = tty_bundle(&env, "echo detached-tty; exec sleep 1000");
    let out = env.rt(&[
        "run".as_ref(),
        "-d".as_ref(),
        "--console-socket".as_ref(),
        sock.path.as_os_str(),
        "--bundle".as_ref(),
        b.dir.as_os_str(),
        b.id.as_ref(),
    ] as &[&std::ffi::OsStr]);
    out.assert_ok();
    let master = sock.recv_fd(10 * SECOND);
    let mut seen = String::new();
    assert!(
        wait_until(10 * SECOND, || {
            seen.push_str(&read_pty(&master, Duration::from_millis(50)));
            seen.contains("detached-tty")
        }),
        "{seen:?}"
    );
    assert_eq!(env.status(&b.id), "running");
    env.delete_force(&b.id).assert_ok();
}

#[test]
fn terminal_without_console_socket_is_refused_for_create() {
    if !require_root() {
        return;
    }
    let env = TestEnv::new("consolemissing");
    let b = tty_bundle(&env, "true");
    let out = env.create(&b);
    out.assert_fail();
    assert!(
        out.stderr.contains("console")
            || out.stderr.contains("tty")
            || out.stderr.contains("terminal"),
        "{out}"
    );
    env.delete_force(&b.id);
    env.assert_no_leftovers(&b, &b.id);
}
