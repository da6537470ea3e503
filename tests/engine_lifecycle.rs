//! Container lifecycle features of `berth daemon`, driven by the real docker CLI: restart
//! policies (on-failure:N, always, unless-stopped, backoff and `restarting`, manual stop,
//! daemon restart), HEALTHCHECK (create options and the image's, probes as execs, status in
//! inspect and ps, `--filter health=`, timeouts, stop and resume), `--init` (PID 1 is the
//! init, signals reach the command, zombies are reaped, exit codes propagate), `docker
//! events` (since/until, filters, container/exec/image actions), and `container prune`,
//! `system df`, `system prune`.
//!
//! Needs root and a docker CLI; otherwise each test prints SKIP and passes. Every test has its
//! own [`Sandbox`] (temp dir, daemon, socket), removed with everything in it on drop.

#[path = "daemon_common/mod.rs"]
mod daemon_common;

use daemon_common::*;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// `docker inspect -f FORMAT NAME`, trimmed.
fn inspect(sb: &Sandbox, fmt: &str, name: &str) -> String {
    sb.ok(&["inspect", "-f", fmt, name]).trim().to_string()
}

/// Polls `f` every 20 ms until it is true, at most `secs` seconds; panics with `what`.
fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if f() {
            return;
        }
        sleep(Duration::from_millis(20));
    }
    panic!("timed out after {secs}s waiting for {what}");
}

fn now_secs() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}

/// Events between `since` and now (the stream ends at `until`).
fn events(sb: &Sandbox, since: &str, extra: &[&str]) -> String {
    let until = format!("{}", now_secs().parse::<u64>().unwrap() + 1);
    sleep(Duration::from_millis(1100));
    let mut args = vec![
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ];
    args.extend_from_slice(extra);
    sb.ok(&args)
}

#[test]
fn restart_policies() {
    let Some(mut sb) = setup("restart_policies") else {
        return;
    };

    // on-failure:2 restarts a failing command twice, then leaves it exited.
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "of",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    wait_for(15, "on-failure:2 to give up", || {
        inspect(&sb, "{{.State.Status}} {{.RestartCount}}", "of") == "exited 2"
    });
    assert_eq!(inspect(&sb, "{{.State.ExitCode}}", "of"), "3");
    assert_eq!(
        inspect(
            &sb,
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            "of"
        ),
        "on-failure:2"
    );
    sleep(Duration::from_millis(500));
    assert_eq!(inspect(&sb, "{{.RestartCount}}", "of"), "2");

    // on-failure does not restart a success.
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "ok",
        "--restart",
        "on-failure",
        "busybox",
        "true",
    ]);
    wait_for(10, "ok to exit", || {
        inspect(&sb, "{{.State.Status}}", "ok") == "exited"
    });
    sleep(Duration::from_millis(400));
    assert_eq!(
        inspect(&sb, "{{.State.Status}} {{.RestartCount}}", "ok"),
        "exited 0"
    );

    // always: `restarting` between runs (Running stays true, as Docker shows it), with the
    // exit code in ps; the backoff doubles so the count grows slower than the runs would.
    let t0 = Instant::now();
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "al",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    let (mut seen_restarting, mut seen_in_ps) = (false, false);
    wait_for(15, "always to restart 5 times", || {
        let s = inspect(
            &sb,
            "{{.State.Status}} {{.State.Running}} {{.State.Restarting}}",
            "al",
        );
        if s == "restarting true true" {
            seen_restarting = true;
        }
        // One snapshot of ps: while restarting, the status shows the last exit code.
        let ps = sb.ok(&["ps", "-a", "--format", "{{.Names}}|{{.State}}|{{.Status}}"]);
        if let Some(st) = ps.lines().find_map(|l| l.strip_prefix("al|restarting|")) {
            assert!(st.starts_with("Restarting (1) "), "{ps}");
            seen_in_ps = true;
        }
        inspect(&sb, "{{.RestartCount}}", "al")
            .parse::<i64>()
            .unwrap()
            >= 5
    });
    assert!(seen_restarting, "never saw the container restarting");
    assert!(seen_in_ps, "never saw the container restarting in ps");
    // 100 + 200 + 400 + 800 ms of backoff at least before the 5th restart.
    assert!(
        t0.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t0.elapsed()
    );
    // A user's stop ends it for good (even during the backoff wait), quickly.
    let t = Instant::now();
    sb.ok(&["stop", "al"]);
    assert!(t.elapsed() < Duration::from_secs(5));
    wait_for(10, "al to stop", || {
        inspect(&sb, "{{.State.Status}}", "al") == "exited"
    });
    let n = inspect(&sb, "{{.RestartCount}}", "al");
    sleep(Duration::from_millis(1500));
    assert_eq!(
        inspect(&sb, "{{.State.Status}} {{.RestartCount}}", "al"),
        format!("exited {n}")
    );

    // A user's start resets the count; kill is a manual stop too.
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "lo",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]);
    sb.ok(&["kill", "lo"]);
    wait_for(10, "lo to die", || {
        inspect(&sb, "{{.State.Status}}", "lo") == "exited"
    });
    sleep(Duration::from_millis(600));
    assert_eq!(
        inspect(&sb, "{{.State.Status}} {{.RestartCount}}", "lo"),
        "exited 0"
    );
    // An exit of the process itself (not the user) is restarted.
    sb.ok(&["start", "lo"]);
    let pid = inspect(&sb, "{{.State.Pid}}", "lo");
    Command::new("kill").args(["-9", &pid]).status().unwrap();
    wait_for(10, "lo to be restarted", || {
        inspect(&sb, "{{.State.Status}} {{.RestartCount}}", "lo") == "running 1"
    });
    // docker restart: a running container again, count reset.
    sb.ok(&["restart", "-t", "0", "lo"]);
    assert_eq!(
        inspect(&sb, "{{.State.Status}} {{.RestartCount}}", "lo"),
        "running 0"
    );

    // A non-fatal signal (not SIGKILL nor the stop signal) leaves the policy in place: the
    // command (not PID 1: --init) dies of SIGHUP and is restarted.
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "hup",
        "--restart",
        "always",
        "--init",
        "busybox",
        "sleep",
        "1000",
    ]);
    sb.ok(&["kill", "-s", "HUP", "hup"]);
    wait_for(10, "hup to be restarted", || {
        inspect(&sb, "{{.State.Status}} {{.RestartCount}}", "hup") == "running 1"
    });

    // docker update --restart changes the policy of an existing container.
    sb.ok(&["run", "-d", "--name", "up", "busybox", "sleep", "1000"]);
    sb.ok(&["update", "--restart", "on-failure:1", "up"]);
    assert_eq!(
        inspect(&sb, "{{json .HostConfig.RestartPolicy}}", "up"),
        r#"{"Name":"on-failure","MaximumRetryCount":1}"#
    );
    let pid = inspect(&sb, "{{.State.Pid}}", "up");
    Command::new("kill").args(["-9", &pid]).status().unwrap();
    wait_for(10, "up to be restarted", || {
        inspect(&sb, "{{.State.Status}} {{.RestartCount}}", "up") == "running 1"
    });
    let o = sb.docker(&["update", "--restart", "always:3", "up"]);
    assert!(!o.status.success());

    // rm -f of a restarting container is quick.
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "rr",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "exit 2",
    ]);
    wait_for(10, "rr to restart", || {
        inspect(&sb, "{{.RestartCount}}", "rr") != "0"
    });
    let t = Instant::now();
    sb.ok(&["rm", "-f", "rr"]);
    assert!(t.elapsed() < Duration::from_secs(5));

    // Bad policies are refused by the daemon.
    let o = sb.docker(&["create", "--restart", "always:3", "busybox"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("maximum retry count"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Daemon start: `always` comes back even after a user's stop, `unless-stopped` only when
    // the user did not stop it, `no` never; a container that exited while the daemon was
    // down is started again by its policy.
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "us-stopped",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "1000",
    ]);
    sb.ok(&["stop", "-t", "0", "us-stopped"]);
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "al-stopped",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]);
    sb.ok(&["stop", "-t", "0", "al-stopped"]);
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "no-stopped",
        "busybox",
        "sleep",
        "1000",
    ]);
    sb.ok(&["stop", "-t", "0", "no-stopped"]);
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "us-dies",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "2",
    ]);
    sb.kill_daemon();
    sleep(Duration::from_secs(3));
    sb.start_daemon();
    wait_for(10, "al-stopped and us-dies to run again", || {
        inspect(&sb, "{{.State.Status}}", "al-stopped") == "running"
            && inspect(&sb, "{{.State.Status}}", "us-dies") == "running"
    });
    assert_eq!(inspect(&sb, "{{.State.Status}}", "us-stopped"), "exited");
    assert_eq!(inspect(&sb, "{{.State.Status}}", "no-stopped"), "exited");
}

#[test]
fn healthchecks() {
    let Some(mut sb) = setup("healthchecks") else {
        return;
    };
    let t0 = now_secs();

    // Starting until the first probe.
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "true",
        "--health-interval",
        "30s",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(inspect(&sb, "{{.State.Health.Status}}", "slow"), "starting");
    let ps = sb.ok(&["ps", "--filter", "name=slow", "--format", "{{.Status}}"]);
    assert!(ps.contains("(health: starting)"), "{ps}");
    assert_eq!(
        sb.ok(&["ps", "-q", "--filter", "health=starting"])
            .lines()
            .count(),
        1
    );

    // A shell probe: unhealthy after `retries` failures, healthy once it passes.
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "hh",
        "--health-cmd",
        "test -e /ok && echo fine",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "1000",
    ]);
    wait_for(15, "h unhealthy", || {
        inspect(&sb, "{{.State.Health.Status}}", "hh") == "unhealthy"
    });
    assert!(
        inspect(&sb, "{{.State.Health.FailingStreak}}", "hh")
            .parse::<i64>()
            .unwrap()
            >= 2
    );
    assert!(sb
        .ok(&[
            "ps",
            "--filter",
            "health=unhealthy",
            "--format",
            "{{.Names}}"
        ])
        .contains("hh"));
    // The log keeps the last 5 results.
    wait_for(15, "6 failures", || {
        inspect(&sb, "{{.State.Health.FailingStreak}}", "hh")
            .parse::<i64>()
            .unwrap()
            >= 6
    });
    assert_eq!(inspect(&sb, "{{len .State.Health.Log}}", "hh"), "5");
    sb.ok(&["exec", "hh", "sh", "-c", ": > /ok"]);
    wait_for(15, "h healthy", || {
        inspect(&sb, "{{.State.Health.Status}}", "hh") == "healthy"
    });
    assert_eq!(inspect(&sb, "{{.State.Health.FailingStreak}}", "hh"), "0");
    let last = sb.ok(&[
        "inspect",
        "-f",
        "{{json (index .State.Health.Log 4)}}",
        "hh",
    ]);
    let last: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(last["ExitCode"], 0);
    assert_eq!(last["Output"], "fine\n");
    assert!(last["Start"].as_str().unwrap() <= last["End"].as_str().unwrap());
    let ps = sb.ok(&[
        "ps",
        "--filter",
        "health=healthy",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    assert!(
        ps.starts_with("hh Up") && ps.trim_end().ends_with("(healthy)"),
        "{ps}"
    );
    assert_eq!(sb.ok(&["ps", "-q", "--filter", "health=none"]).trim(), "");
    let ev = events(
        &sb,
        &t0,
        &[
            "--filter",
            "event=health_status",
            "--filter",
            "container=hh",
        ],
    );
    assert!(ev.contains("container health_status: unhealthy hh"), "{ev}");
    assert!(ev.contains("container health_status: healthy hh"), "{ev}");
    // Probes are execs, and show as exec events like Docker's.
    let ev = events(
        &sb,
        &t0,
        &["--filter", "container=hh", "--filter", "event=exec_die"],
    );
    assert!(ev.lines().count() >= 6, "{ev}");

    // Timeout: the probe is killed, exit -1, Docker's message.
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "to",
        "--health-cmd",
        "sleep 5",
        "--health-interval",
        "200ms",
        "--health-timeout",
        "300ms",
        "busybox",
        "sleep",
        "1000",
    ]);
    wait_for(15, "a timed-out probe", || {
        inspect(&sb, "{{len .State.Health.Log}}", "to") != "0"
    });
    let r = sb.ok(&[
        "inspect",
        "-f",
        "{{json (index .State.Health.Log 0)}}",
        "to",
    ]);
    let r: serde_json::Value = serde_json::from_str(&r).unwrap();
    assert_eq!(r["ExitCode"], -1, "{r}");
    assert_eq!(r["Output"], "Health check exceeded timeout (300ms)", "{r}");

    // Stopping ends the probes; the status reads unhealthy, as Docker reports it.
    sb.ok(&["stop", "-t", "0", "hh"]);
    assert_eq!(inspect(&sb, "{{.State.Health.Status}}", "hh"), "unhealthy");
    let n = inspect(&sb, "{{json .State.Health.Log}}", "hh");
    sleep(Duration::from_millis(700));
    assert_eq!(inspect(&sb, "{{json .State.Health.Log}}", "hh"), n);
    // Started again: starting, then healthy (the file is in its writable layer).
    sb.ok(&["start", "hh"]);
    wait_for(15, "h healthy again", || {
        inspect(&sb, "{{.State.Health.Status}}", "hh") == "healthy"
    });

    // Probes resume after a daemon restart.
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "rs",
        "--health-cmd",
        "test ! -e /bad",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "1000",
    ]);
    wait_for(15, "r healthy", || {
        inspect(&sb, "{{.State.Health.Status}}", "rs") == "healthy"
    });
    sb.kill_daemon();
    sb.start_daemon();
    sb.ok(&["exec", "rs", "sh", "-c", ": > /bad"]);
    wait_for(15, "r unhealthy", || {
        inspect(&sb, "{{.State.Health.Status}}", "rs") == "unhealthy"
    });

    // The image's HEALTHCHECK (CMD form), overridden field by field or disabled.
    sb.kill_daemon();
    load_image_with_healthcheck(&sb);
    sb.start_daemon();
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "img",
        "--health-interval",
        "200ms",
        "hc:latest",
        "sleep",
        "1000",
    ]);
    assert_eq!(
        inspect(&sb, "{{json .Config.Healthcheck.Test}}", "img"),
        r#"["CMD","cat","/etc/group"]"#
    );
    wait_for(15, "img healthy", || {
        inspect(&sb, "{{.State.Health.Status}}", "img") == "healthy"
    });
    let out = sb.ok(&[
        "inspect",
        "-f",
        "{{(index .State.Health.Log 0).Output}}",
        "img",
    ]);
    assert!(out.contains("root:x:0:"), "{out}");
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "nohc",
        "--no-healthcheck",
        "hc:latest",
        "sleep",
        "1000",
    ]);
    assert_eq!(inspect(&sb, "{{json .State.Health}}", "nohc"), "null");
    assert!(sb
        .ok(&["ps", "--filter", "health=none", "--format", "{{.Names}}"])
        .contains("nohc"));
}

/// Writes a docker-save archive of busybox whose config has a HEALTHCHECK (CMD form, every
/// 30 s) tagged `hc:latest`, and loads it with `berth load` (the daemon must be stopped).
fn load_image_with_healthcheck(sb: &Sandbox) {
    let dir = sb.dir.join("hcimg");
    std::fs::create_dir_all(&dir).unwrap();
    let layer = sb.dir.join("busybox.tar");
    std::fs::copy(&layer, dir.join("layer.tar")).unwrap();
    let sha = |p: &std::path::Path| {
        let o = Command::new("sha256sum").arg(p).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let diff = sha(&dir.join("layer.tar"));
    let config = serde_json::json!({
        "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "os": "linux",
        "config": {
            "Cmd": ["sh"],
            "Healthcheck": {"Test": ["CMD", "cat", "/etc/group"], "Interval": 30_000_000_000i64, "Retries": 2}
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff}")]}
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    let cfg_sha = sha(&dir.join("config.json"));
    std::fs::rename(dir.join("config.json"), dir.join(format!("{cfg_sha}.json"))).unwrap();
    let manifest = serde_json::json!([{
        "Config": format!("{cfg_sha}.json"),
        "RepoTags": ["hc:latest"],
        "Layers": ["layer.tar"]
    }]);
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let tar = sb.dir.join("hc.tar");
    assert!(Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap()
        .success());
    let out = Command::new(BERTH)
        .arg("--data-root")
        .arg(sb.data())
        .args(["load", "-i"])
        .arg(&tar)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "berth load: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn init_process() {
    let Some(sb) = setup("init_process") else {
        return;
    };
    // PID 1 is the init, the command is its child.
    let ps = sb.ok(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "busybox",
        "ps",
        "-o",
        "pid,ppid,args",
    ]);
    let rows: Vec<Vec<&str>> = ps
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let one = rows.iter().find(|r| r[0] == "1").expect(&ps);
    assert_eq!(one[2..5], ["berth-init", "--", "busybox"], "{ps}");
    let me = rows
        .iter()
        .find(|r| r[2] == "busybox" && r[3] == "ps")
        .expect(&ps);
    assert_eq!(me[1], "1", "{ps}");
    // Without --init the command is PID 1.
    let ps = sb.ok(&["run", "--rm", "busybox", "busybox", "ps", "-o", "pid,args"]);
    assert!(
        ps.lines()
            .any(|l| l.split_whitespace().take(3).collect::<Vec<_>>() == ["1", "busybox", "ps"]),
        "{ps}"
    );
    assert_eq!(inspect_created_init(&sb), "true");

    // Exit codes propagate.
    assert_eq!(
        sb.code(&["run", "--rm", "--init", "busybox", "sh", "-c", "exit 7"]),
        7
    );

    // Signals reach the command: `sleep` as PID 1 would ignore SIGTERM (10 s timeout).
    sb.ok(&[
        "run", "-d", "--init", "--name", "sl", "busybox", "sleep", "1000",
    ]);
    let t = Instant::now();
    sb.ok(&["stop", "sl"]);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(inspect(&sb, "{{.State.ExitCode}}", "sl"), "143");
    sb.ok(&[
        "run", "-d", "--init", "--name", "u1", "busybox", "sleep", "1000",
    ]);
    sb.ok(&["kill", "-s", "USR1", "u1"]);
    assert_eq!(sb.ok(&["wait", "u1"]).trim(), "138");

    // Zombies: an orphan reparented to PID 1 is reaped by the init (and is not without it).
    let orphan = "(sh -c 'sleep 0.2' &); exec sleep 1000";
    sb.ok(&[
        "run", "-d", "--init", "--name", "zi", "busybox", "sh", "-c", orphan,
    ]);
    sb.ok(&["run", "-d", "--name", "zn", "busybox", "sh", "-c", orphan]);
    sleep(Duration::from_millis(1200));
    let zombies = |name: &str| {
        sb.ok(&["exec", name, "busybox", "ps", "-o", "stat,comm"])
            .lines()
            .filter(|l| l.trim_start().starts_with('Z'))
            .count()
    };
    assert_eq!(zombies("zi"), 0);
    assert_eq!(
        zombies("zn"),
        1,
        "the test cannot tell: no zombie without --init either"
    );
}

fn inspect_created_init(sb: &Sandbox) -> String {
    sb.ok(&["create", "--name", "ci", "--init", "busybox", "true"]);
    inspect(sb, "{{.HostConfig.Init}}", "ci")
}

#[test]
fn events_stream() {
    let Some(sb) = setup("events_stream") else {
        return;
    };
    let t0 = now_secs();
    sb.ok(&["tag", "busybox", "ev:one"]);
    sb.ok(&["run", "--name", "e1", "-l", "team=blue", "busybox", "true"]);
    sb.ok(&["run", "-d", "--name", "e2", "busybox", "sleep", "1000"]);
    sb.ok(&["exec", "e2", "true"]);
    sb.ok(&["pause", "e2"]);
    sb.ok(&["unpause", "e2"]);
    sb.ok(&["rename", "e2", "e3"]);
    sb.ok(&["restart", "-t", "0", "e3"]);
    sb.ok(&["stop", "-t", "0", "e3"]);
    sb.ok(&["rm", "e1", "e3"]);
    sb.ok(&["rmi", "ev:one"]);

    let all = events(&sb, &t0, &[]);
    let want = [
        "image tag ev:one",
        "container create e1",
        "container attach e1",
        "container start e1",
        "container die e1",
        "container create e2",
        "container start e2",
        "container exec_create: true e2",
        "container exec_start: true e2",
        "container exec_die e2",
        "container pause e2",
        "container unpause e2",
        "container rename e3",
        "container kill e3",
        "container die e3",
        "container stop e3",
        "container start e3",
        "container restart e3",
        "container destroy e1",
        "container destroy e3",
        "image untag",
    ];
    let mut pos = 0;
    let lines: Vec<&str> = all.lines().collect();
    for w in want {
        match lines[pos..].iter().position(|l| l.starts_with(w)) {
            Some(p) => pos += p + 1,
            None => panic!("no {w:?} (in order) in:\n{all}"),
        }
    }

    // Filters.
    let f = events(&sb, &t0, &["--filter", "type=image"]);
    assert!(
        f.lines().all(|l| l.starts_with("image ")) && f.contains("image tag"),
        "{f}"
    );
    let f = events(
        &sb,
        &t0,
        &["--filter", "container=e1", "--filter", "event=die"],
    );
    assert_eq!(f.trim(), "container die e1");
    let f = events(
        &sb,
        &t0,
        &["--filter", "label=team=blue", "--filter", "event=start"],
    );
    assert_eq!(f.trim(), "container start e1");
    let f = events(&sb, &t0, &["--filter", "event=exec_start"]);
    assert_eq!(f.trim(), "container exec_start: true e2");
    let f = events(
        &sb,
        &t0,
        &["--filter", "image=busybox", "--filter", "event=create"],
    );
    assert_eq!(f.lines().count(), 2, "{f}");
    // The JSON shape, with the legacy fields.
    let until = (now_secs().parse::<u64>().unwrap() + 1).to_string();
    let j = sb.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        "event=die",
        "--filter",
        "container=e1",
        "--format",
        "{{json .}}",
    ]);
    let v: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
    assert_eq!(v["Type"], "container");
    assert_eq!(v["status"], "die");
    assert_eq!(v["from"], "busybox");
    assert_eq!(v["id"], v["Actor"]["ID"]);
    assert_eq!(v["Actor"]["Attributes"]["exitCode"], "0");
    assert_eq!(v["Actor"]["Attributes"]["team"], "blue");
    assert_eq!(v["scope"], "local");
    assert!(v["timeNano"].as_i64().unwrap() / 1_000_000_000 == v["time"].as_i64().unwrap());

    // Live: a follower sees what happens after it subscribed, and stops at --until.
    let until = (now_secs().parse::<u64>().unwrap() + 3).to_string();
    let child = Command::new(&sb.docker)
        .args([
            "events",
            "--until",
            &until,
            "--filter",
            "event=create",
            "--format",
            "{{.Actor.Attributes.name}}",
        ])
        .env("DOCKER_HOST", format!("unix://{}", sb.sock().display()))
        .env("DOCKER_CONFIG", sb.dir.join("docker-config"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(500));
    sb.ok(&["create", "--name", "live", "busybox"]);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "live");
}

#[test]
fn prune_and_disk_usage() {
    let Some(sb) = setup("prune_and_disk_usage") else {
        return;
    };
    sb.ok(&["run", "--name", "p1", "-l", "keep=yes", "busybox", "true"]);
    sb.ok(&[
        "run",
        "--name",
        "p2",
        "busybox",
        "sh",
        "-c",
        "echo data > /file",
    ]);
    sb.ok(&["run", "-d", "--name", "p3", "busybox", "sleep", "1000"]);
    let df = sb.ok(&["system", "df"]);
    assert!(df.contains("Images") && df.contains("Containers"), "{df}");
    let ctr = df
        .lines()
        .find(|l| l.starts_with("Containers"))
        .unwrap()
        .to_string();
    let f: Vec<&str> = ctr.split_whitespace().collect();
    assert_eq!((f[1], f[2]), ("3", "1"), "{df}");
    let v = sb.ok(&["system", "df", "-v", "--format", "{{json .}}"]);
    assert!(v.contains("p2"), "{v}");

    // Label filters; the running container stays.
    let out = sb.ok(&["container", "prune", "-f", "--filter", "label!=keep=yes"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let left = sb.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut left: Vec<&str> = left.lines().collect();
    left.sort();
    assert_eq!(left, vec!["p1", "p3"]);
    sb.ok(&["container", "prune", "-f", "--filter", "until=1h"]);
    assert_eq!(sb.ok(&["ps", "-aq"]).lines().count(), 2);

    // system prune: containers, networks, dangling images, build cache.
    let out = sb.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    let left = sb.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(left.trim(), "p3");
    assert!(sb.ok(&["images", "-q"]).trim().len() > 0);
}
