//! The berth CLI as a client of `berth daemon` (tests/daemon_common's sandbox daemon),
//! compared with the real docker CLI on the same daemon: output shapes (`ps`, `images`,
//! `inspect`, `--format`), exit codes (container's own, 125, 127, 1 for daemon errors),
//! the container lifecycle commands, the daemon auto-start on the default socket, and the
//! image, filesystem, stats, events/prune, volume and network commands.

#[path = "daemon_common/mod.rs"]
mod daemon_common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use daemon_common::{setup, Sandbox, BERTH};

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// `berth -H SOCK ARGS` asserting success; returns stdout.
fn bok(sb: &Sandbox, args: &[&str]) -> String {
    let o = sb.berth(args);
    assert!(
        o.status.success(),
        "berth {args:?} failed ({}): {}{}\ndaemon log: {}",
        o.status,
        out(&o),
        err(&o),
        sb.daemon_log()
    );
    out(&o)
}

/// `berth -H SOCK ARGS` with `input` on stdin.
fn berth_in(sb: &Sandbox, args: &[&str], input: &str) -> Output {
    let mut child = Command::new("timeout")
        .arg("60")
        .arg(BERTH)
        .arg("-H")
        .arg(format!("unix://{}", sb.sock().display()))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = child.stdin.take().unwrap();
    w.write_all(input.as_bytes()).unwrap();
    drop(w);
    child.wait_with_output().unwrap()
}

fn uniq(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

#[test]
fn run_exit_codes_and_output_like_docker() {
    let Some(sb) = setup("run_exit_codes_and_output_like_docker") else {
        return;
    };
    assert_eq!(
        bok(&sb, &["run", "--rm", "busybox", "echo", "hello"]),
        "hello\n"
    );
    // The container's own code, stdout and stderr kept apart.
    let o = sb.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(code(&o), 3);
    assert_eq!(out(&o), "out\n");
    assert_eq!(err(&o), "err\n");
    // 127: command not found; the same as docker on the same daemon.
    let o = sb.berth(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(code(&o), 127, "{}", err(&o));
    assert_eq!(sb.code(&["run", "--rm", "busybox", "no-such-command"]), 127);
    assert!(err(&o).contains("executable file not found"), "{}", err(&o));
    // 125: a usage error and a daemon error (an image that cannot be found or pulled).
    assert_eq!(
        code(&sb.berth(&["run", "--restart", "sometimes", "busybox", "true"])),
        125
    );
    let o = sb.berth(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "127.0.0.1:1/nosuch:1",
        "true",
    ]);
    assert_eq!(code(&o), 125, "{}", err(&o));
    assert_eq!(
        sb.code(&[
            "run",
            "--rm",
            "--pull",
            "never",
            "127.0.0.1:1/nosuch:1",
            "true"
        ]),
        125
    );
    // -i: stdin reaches the container; env, workdir, user, hostname, entrypoint pass through.
    let o = berth_in(&sb, &["run", "--rm", "-i", "busybox", "cat"], "piped in\n");
    assert_eq!(out(&o), "piped in\n", "{}", err(&o));
    let o = bok(
        &sb,
        &[
            "run",
            "--rm",
            "-e",
            "A=1",
            "-w",
            "/etc",
            "-u",
            "0:0",
            "--hostname",
            "hb",
            "--entrypoint",
            "sh",
            "busybox",
            "-c",
            "echo $A $(pwd) $(id -u) $(hostname)",
        ],
    );
    assert_eq!(o, "1 /etc 0 hb\n");
    // --rm removed them all.
    assert_eq!(bok(&sb, &["ps", "-aq"]), "");
}

#[test]
fn ps_images_inspect_match_docker() {
    let Some(sb) = setup("ps_images_inspect_match_docker") else {
        return;
    };
    let name = uniq("web");
    let id = bok(
        &sb,
        &[
            "run", "-d", "--name", &name, "-l", "k=v", "busybox", "sleep", "60",
        ],
    );
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    // Same table as docker's (the time columns are left out: a second may pass between).
    let f =
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Ports}}\t{{.Names}}\t{{.Labels}}\t{{.State}}";
    assert_eq!(
        bok(&sb, &["ps", "--format", f]),
        sb.ok(&["ps", "--format", f])
    );
    // The column names (their widths follow the rows: "Less than a second ago" is wider than
    // "1 second ago", and the two commands run a moment apart).
    let head = |s: String| {
        s.lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(head(bok(&sb, &["ps"])), head(sb.ok(&["ps"])));
    assert_eq!(bok(&sb, &["ps", "-q"]), sb.ok(&["ps", "-q"]));
    assert_eq!(
        bok(&sb, &["ps", "-a", "--no-trunc", "-q"]),
        format!("{id}\n")
    );
    assert_eq!(
        bok(
            &sb,
            &[
                "ps",
                "--filter",
                &format!("name={name}"),
                "--format",
                "{{.Names}}"
            ]
        ),
        format!("{name}\n")
    );
    assert_eq!(
        bok(&sb, &["ps", "--format", "{{json .Names}}"]),
        format!("\"{name}\"\n")
    );
    let f = "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}";
    assert_eq!(
        bok(&sb, &["images", "--format", f]),
        sb.ok(&["images", "--format", f])
    );
    assert_eq!(head(bok(&sb, &["images"])), head(sb.ok(&["images"])));
    assert_eq!(bok(&sb, &["images", "-q"]), sb.ok(&["images", "-q"]));
    // inspect: the daemon's JSON indented as docker does, and -f templates.
    assert_eq!(bok(&sb, &["inspect", &name]), sb.ok(&["inspect", &name]));
    assert_eq!(
        bok(&sb, &["image", "inspect", "busybox"]),
        sb.ok(&["image", "inspect", "busybox"])
    );
    for f in [
        "{{.State.Running}} {{.Name}} {{.Config.Image}}",
        "{{json .Config.Labels}}",
        "{{index .Config.Labels \"k\"}}",
        "{{.HostConfig.NetworkMode}}",
    ] {
        assert_eq!(
            bok(&sb, &["inspect", "-f", f, &name]),
            sb.ok(&["inspect", "-f", f, &name])
        );
    }
    // Not found: docker's words and exit code.
    let o = sb.berth(&["inspect", "nosuch-object"]);
    let d = sb.docker(&["inspect", "nosuch-object"]);
    assert_eq!((code(&o), out(&o), err(&o)), (code(&d), out(&d), err(&d)));
    let o = sb.berth(&["rm", "nosuch-ctr"]);
    let d = sb.docker(&["rm", "nosuch-ctr"]);
    assert_eq!((code(&o), err(&o)), (code(&d), err(&d)));
    bok(&sb, &["rm", "-f", &name]);
}

#[test]
fn lifecycle_commands() {
    let Some(sb) = setup("lifecycle_commands") else {
        return;
    };
    let name = uniq("life");
    let id = bok(
        &sb,
        &[
            "create",
            "--name",
            &name,
            "busybox",
            "sh",
            "-c",
            "echo started; sleep 60",
        ],
    );
    assert_eq!(id.trim().len(), 64);
    assert_eq!(
        bok(&sb, &["inspect", "-f", "{{.State.Status}}", &name]),
        "created\n"
    );
    assert_eq!(bok(&sb, &["start", &name]), format!("{name}\n"));
    // exec: output, exit code, -e/-w/-u, stdin with -i.
    let o = sb.berth(&[
        "exec",
        "-e",
        "X=y",
        "-w",
        "/etc",
        &name,
        "sh",
        "-c",
        "echo $X $(pwd); exit 4",
    ]);
    assert_eq!(
        (code(&o), out(&o)),
        (4, "y /etc\n".to_string()),
        "{}",
        err(&o)
    );
    let o = berth_in(&sb, &["exec", "-i", &name, "cat"], "to exec\n");
    assert_eq!(out(&o), "to exec\n");
    // top: docker's columns.
    let top = bok(&sb, &["top", &name]);
    assert!(top.starts_with("UID") && top.contains("sleep 60"), "{top}");
    assert_eq!(
        bok(&sb, &["top", &name]).lines().next(),
        sb.ok(&["top", &name]).lines().next()
    );
    // logs (with --tail and -t).
    let t = Instant::now();
    while !bok(&sb, &["logs", &name]).contains("started") {
        assert!(t.elapsed() < Duration::from_secs(10), "no log line");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(bok(&sb, &["logs", "--tail", "1", &name]), "started\n");
    let ts = bok(&sb, &["logs", "-t", &name]);
    assert!(ts.ends_with(" started\n") && ts.contains('T'), "{ts}");
    // pause / unpause / rename / restart / kill / wait / rm.
    bok(&sb, &["pause", &name]);
    assert_eq!(
        bok(&sb, &["inspect", "-f", "{{.State.Paused}}", &name]),
        "true\n"
    );
    bok(&sb, &["unpause", &name]);
    let new = format!("{name}-2");
    bok(&sb, &["rename", &name, &new]);
    assert_eq!(
        bok(&sb, &["ps", "--filter", &format!("name={new}"), "-q"]).len(),
        13
    );
    bok(&sb, &["kill", "-s", "KILL", &new]);
    assert_eq!(bok(&sb, &["wait", &new]), "137\n");
    assert_eq!(
        bok(&sb, &["inspect", "-f", "{{.State.ExitCode}}", &new]),
        "137\n"
    );
    bok(&sb, &["start", &new]);
    assert_eq!(bok(&sb, &["stop", "-t", "1", &new]), format!("{new}\n"));
    assert_eq!(
        bok(&sb, &["inspect", "-f", "{{.State.Running}}", &new]),
        "false\n"
    );
    // start -a: output and the container's exit code.
    let a = uniq("att");
    bok(
        &sb,
        &[
            "create",
            "--name",
            &a,
            "busybox",
            "sh",
            "-c",
            "echo attached; exit 6",
        ],
    );
    let o = sb.berth(&["start", "-a", &a]);
    assert_eq!(
        (code(&o), out(&o)),
        (6, "attached\n".to_string()),
        "{}",
        err(&o)
    );
    // run -d then attach output through logs -f until exit.
    let f = uniq("follow");
    bok(
        &sb,
        &[
            "run",
            "-d",
            "--name",
            &f,
            "busybox",
            "sh",
            "-c",
            "echo one; sleep 1; echo two",
        ],
    );
    assert_eq!(bok(&sb, &["logs", "-f", &f]), "one\ntwo\n");
    assert_eq!(
        bok(&sb, &["rm", &new, &a, &f]),
        format!("{new}\n{a}\n{f}\n")
    );
    assert_eq!(bok(&sb, &["ps", "-aq"]), "");
}

#[test]
fn version_and_info() {
    let Some(sb) = setup("version_and_info") else {
        return;
    };
    let v = bok(&sb, &["version"]);
    assert!(v.contains("Client:") && v.contains("Server: berth"), "{v}");
    assert_eq!(
        bok(&sb, &["version", "--format", "{{.Server.APIVersion}}"])
            .trim()
            .is_empty(),
        false
    );
    assert_eq!(
        bok(&sb, &["info", "--format", "{{.Containers}} {{.Images}}"]),
        sb.ok(&["info", "--format", "{{.Containers}} {{.Images}}"])
    );
    let i = bok(&sb, &["info"]);
    assert!(
        i.contains("Server Version:") && i.contains("Docker Root Dir:"),
        "{i}"
    );
}

/// No daemon on the default socket: the CLI starts one (its own session, log file), waits for
/// it and runs the container. The test's daemon lives in a sandbox dir and is stopped here.
#[test]
fn autostart_on_the_default_socket() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP autostart_on_the_default_socket: needs root");
        return;
    }
    let Some(docker) = daemon_common::docker_cli() else {
        eprintln!("SKIP autostart_on_the_default_socket: no docker CLI");
        return;
    };
    let sb = Sandbox::new(docker);
    sb.import_busybox();
    let log = sb.dir.join("log/daemon.log");
    let berth = |args: &[&str]| {
        Command::new("timeout")
            .arg("60")
            .arg(BERTH)
            .args(args)
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST")
            .env_remove("BERTH_DATA_ROOT")
            .env("BERTH_DEFAULT_SOCKET", sb.sock())
            .env("BERTH_AUTOSTART_DATA_ROOT", sb.data())
            .env("BERTH_AUTOSTART_EXEC_ROOT", sb.dir.join("exec"))
            .env("BERTH_AUTOSTART_LOG", &log)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let o = berth(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!(out(&o), "hello\n", "{}", err(&o));
    assert!(
        code(&o) == 0 && err(&o).contains("started one"),
        "{}",
        err(&o)
    );
    let pid: i32 = err(&o)
        .split("(pid ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|p| p.parse().ok())
        .expect("the daemon's pid in the message");
    // The second command finds it running (no second start).
    let o = berth(&["ps", "-a"]);
    assert!(
        o.status.success() && !err(&o).contains("started one"),
        "{}",
        err(&o)
    );
    assert!(log.exists());
    // The daemon is in its own session.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let sid: i32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(sid, pid);
    // An explicit host is never started.
    let o = Command::new(BERTH)
        .args([
            "-H",
            &format!("unix://{}/none.sock", sb.dir.display()),
            "ps",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    assert!(err(&o).contains("Cannot connect"), "{}", err(&o));
    // Stop the daemon we started; Sandbox's drop cleans up the rest.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    );
    let t = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z"))
            .unwrap_or(false)
        && t.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn import_through_the_daemon() {
    let Some(sb) = setup("import_through_the_daemon") else {
        return;
    };
    let tar = sb.dir.join("busybox.tar");
    let o = bok(
        &sb,
        &[
            "import",
            "-c",
            "CMD [\"sh\"]",
            tar.to_str().unwrap(),
            "imported:1",
        ],
    );
    assert!(o.trim().starts_with("sha256:"), "{o}");
    assert_eq!(
        bok(&sb, &["run", "--rm", "imported:1", "echo", "hi"]),
        "hi\n"
    );
    bok(&sb, &["rmi", "imported:1"]);
}

#[test]
fn cp_diff_commit_save_load() {
    let Some(sb) = setup("cp_diff_commit_save_load") else {
        return;
    };
    let name = uniq("fs");
    bok(
        &sb,
        &["run", "-d", "--name", &name, "busybox", "sleep", "60"],
    );
    let local = sb.dir.join("hello.txt");
    std::fs::write(&local, "from host\n").unwrap();
    bok(
        &sb,
        &["cp", local.to_str().unwrap(), &format!("{name}:/etc/h.txt")],
    );
    assert_eq!(
        bok(&sb, &["exec", &name, "cat", "/etc/h.txt"]),
        "from host\n"
    );
    let back = sb.dir.join("back.txt");
    bok(
        &sb,
        &["cp", &format!("{name}:/etc/h.txt"), back.to_str().unwrap()],
    );
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "from host\n");
    let d = bok(&sb, &["diff", &name]);
    assert!(d.contains("A /etc/h.txt"), "{d}");
    assert_eq!(bok(&sb, &["diff", &name]), sb.ok(&["diff", &name]));
    let img = bok(&sb, &["commit", &name, "committed:1"]);
    assert!(img.starts_with("sha256:"), "{img}");
    assert_eq!(
        bok(&sb, &["run", "--rm", "committed:1", "cat", "/etc/h.txt"]),
        "from host\n"
    );
    bok(&sb, &["update", "--memory", "64m", &name]);
    assert_eq!(
        bok(&sb, &["inspect", "-f", "{{.HostConfig.Memory}}", &name]),
        "67108864\n"
    );
    let saved = sb.dir.join("saved.tar");
    bok(&sb, &["save", "-o", saved.to_str().unwrap(), "committed:1"]);
    bok(&sb, &["rmi", "committed:1"]);
    let o = bok(&sb, &["load", "-i", saved.to_str().unwrap()]);
    assert!(o.contains("committed:1"), "{o}");
    bok(&sb, &["rm", "-f", &name]);
}

#[test]
fn stats_no_stream_like_docker() {
    let Some(sb) = setup("stats_no_stream_like_docker") else {
        return;
    };
    let name = uniq("st");
    bok(
        &sb,
        &["run", "-d", "--name", &name, "busybox", "sleep", "60"],
    );
    let s = bok(&sb, &["stats", "--no-stream"]);
    // Same columns as docker's (widths follow the values, which change between samples).
    let cols = |t: &str| -> Vec<String> {
        t.lines()
            .next()
            .unwrap_or_default()
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    assert_eq!(cols(&s), cols(&sb.ok(&["stats", "--no-stream"])));
    assert!(s.contains(&name), "{s}");
    let f = "{{.Name}} {{.PIDs}}";
    assert_eq!(
        bok(&sb, &["stats", "--no-stream", "--format", f, &name]),
        format!("{name} 1\n")
    );
    bok(&sb, &["rm", "-f", &name]);
}

#[test]
fn events_prune_df_restart_health() {
    let Some(sb) = setup("events_prune_df_restart_health") else {
        return;
    };
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let name = uniq("ev");
    bok(&sb, &["run", "--name", &name, "busybox", "true"]);
    let until = since + 30;
    let ev = bok(
        &sb,
        &[
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &until.to_string(),
            "--filter",
            &format!("container={name}"),
            "--format",
            "{{.Type}} {{.Action}}",
        ],
    );
    assert!(
        ev.contains("container create") && ev.contains("container die"),
        "{ev}"
    );
    let df = bok(&sb, &["system", "df"]);
    assert_eq!(df.lines().next(), sb.ok(&["system", "df"]).lines().next());
    let p = bok(&sb, &["container", "prune", "-f"]);
    assert!(
        p.contains("Deleted Containers:") && p.contains("Total reclaimed space"),
        "{p}"
    );
    let r = uniq("rs");
    bok(
        &sb,
        &[
            "run",
            "-d",
            "--name",
            &r,
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "exit 1",
        ],
    );
    let t = Instant::now();
    while bok(&sb, &["inspect", "-f", "{{.RestartCount}}", &r]).trim() != "2" {
        assert!(t.elapsed() < Duration::from_secs(20), "no restarts");
        std::thread::sleep(Duration::from_millis(200));
    }
    let h = uniq("hc");
    bok(
        &sb,
        &[
            "run",
            "-d",
            "--name",
            &h,
            "--health-cmd",
            "true",
            "--health-interval",
            "1s",
            "busybox",
            "sleep",
            "60",
        ],
    );
    let t = Instant::now();
    while bok(&sb, &["inspect", "-f", "{{.State.Health.Status}}", &h]).trim() != "healthy" {
        assert!(t.elapsed() < Duration::from_secs(20), "never healthy");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(bok(&sb, &["ps"]).contains("(healthy)"));
    bok(&sb, &["rm", "-f", &r, &h]);
}

#[test]
fn volumes_like_docker() {
    let Some(sb) = setup("volumes_like_docker") else {
        return;
    };
    let v = uniq("vol");
    assert_eq!(bok(&sb, &["volume", "create", &v]), format!("{v}\n"));
    assert_eq!(bok(&sb, &["volume", "ls"]), sb.ok(&["volume", "ls"]));
    assert_eq!(
        bok(&sb, &["volume", "inspect", &v]),
        sb.ok(&["volume", "inspect", &v])
    );
    bok(
        &sb,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{v}:/data"),
            "busybox",
            "sh",
            "-c",
            "echo x > /data/f",
        ],
    );
    assert_eq!(
        bok(
            &sb,
            &[
                "run",
                "--rm",
                "--mount",
                &format!("type=volume,source={v},target=/d"),
                "busybox",
                "cat",
                "/d/f"
            ]
        ),
        "x\n"
    );
    assert_eq!(bok(&sb, &["volume", "rm", &v]), format!("{v}\n"));
}

#[test]
fn networks_like_docker() {
    let Some(sb) = setup("networks_like_docker") else {
        return;
    };
    let n = uniq("net");
    let id = bok(&sb, &["network", "create", &n]);
    assert_eq!(id.trim().len(), 64);
    assert_eq!(bok(&sb, &["network", "ls"]), sb.ok(&["network", "ls"]));
    assert_eq!(
        bok(&sb, &["network", "inspect", &n]),
        sb.ok(&["network", "inspect", &n])
    );
    let c = uniq("nc");
    bok(
        &sb,
        &[
            "run",
            "-d",
            "--name",
            &c,
            "--network",
            &n,
            "-p",
            "127.0.0.1::80",
            "busybox",
            "sleep",
            "60",
        ],
    );
    assert_eq!(bok(&sb, &["port", &c]), sb.ok(&["port", &c]));
    bok(&sb, &["network", "disconnect", &n, &c]);
    bok(&sb, &["rm", "-f", &c]);
    assert_eq!(bok(&sb, &["network", "rm", &n]), format!("{n}\n"));
}

/// `--data-root` keeps the in-process mode for the image commands and run; the commands that
/// need a daemon say so (125) instead of reaching one.
#[test]
fn data_root_mode_is_in_process() {
    let dir = tempfile::Builder::new()
        .prefix("berth-cli-dr-")
        .tempdir_in("/tmp")
        .unwrap();
    let berth = |args: &[&str]| {
        Command::new(BERTH)
            .arg("--data-root")
            .arg(dir.path())
            .args(args)
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST")
            .env("BERTH_NO_AUTOSTART", "1")
            .env("BERTH_DEFAULT_SOCKET", dir.path().join("none.sock"))
            .output()
            .unwrap()
    };
    let o = berth(&["images", "-q"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "");
    let o = berth(&["ps"]);
    assert_eq!(code(&o), 125);
    assert!(err(&o).contains("through the daemon only"), "{}", err(&o));
    // Without --data-root and without a daemon (auto-start off): docker's connection error.
    let o = Command::new(BERTH)
        .arg("ps")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_DATA_ROOT")
        .env("BERTH_NO_AUTOSTART", "1")
        .env("BERTH_DEFAULT_SOCKET", dir.path().join("none.sock"))
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    assert!(
        err(&o).contains("Cannot connect to the berth daemon"),
        "{}",
        err(&o)
    );
    let o = Command::new(BERTH)
        .args(["run", "--rm", "busybox", "true"])
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_DATA_ROOT")
        .env("BERTH_NO_AUTOSTART", "1")
        .env("BERTH_DEFAULT_SOCKET", dir.path().join("none.sock"))
        .output()
        .unwrap();
    assert_eq!(code(&o), 125, "{}", err(&o));
}
