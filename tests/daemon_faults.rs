//! Fault tests for `berth daemon`: the daemon is SIGKILLed (a) while several containers run,
//! one of them exiting and all of them logging while it is down, and (b) over and over while
//! `docker create` / `docker run -d` requests are in flight, at varied delays. After each
//! restart the daemon must be consistent: nothing that was acknowledged is lost, nothing is
//! duplicated (IDs, names), every listed container can be inspected, started, exec'd into and
//! removed, exit codes and logs written while the daemon was down are there, and once every
//! container is removed nothing is left behind (bundles, overlay mounts, shims and their state
//! dirs, runtime state, cgroups) — also for containers whose creation was cut short and never
//! recorded. A third test races creates for one name: exactly one may win.
//!
//! Needs root and the docker CLI (the harness drives the daemon with it); otherwise SKIP.

#[path = "daemon_common/mod.rs"]
mod daemon_common;

use daemon_common::*;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// `docker ps -a`: (full id, name, state) per container.
fn ps_all(sb: &Sandbox) -> Vec<(String, String, String)> {
    sb.ok(&[
        "ps",
        "-a",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Names}} {{.State}}",
    ])
    .lines()
    .filter(|l| !l.trim().is_empty())
    .map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f.len(), 3, "ps line {l:?}");
        (f[0].to_string(), f[1].to_string(), f[2].to_string())
    })
    .collect()
}

fn inspect(sb: &Sandbox, key: &str, fmt: &str) -> String {
    sb.ok(&["inspect", "-f", fmt, key]).trim().to_string()
}

/// Mount points at or under `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|p| p.starts_with(&needle))
        .collect()
}

/// (pid, command line) of every process whose command line names `needle`, except `skip`.
fn procs_naming(needle: &str, skip: Option<u32>) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if skip == Some(pid as u32) || pid == std::process::id() as i32 {
            continue;
        }
        if let Ok(cmd) = fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                out.push((pid, cmd));
            }
        }
    }
    out
}

/// Entries of a directory (names), empty when it does not exist.
fn entries(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Cgroup directories `/sys/fs/cgroup/<hierarchy>/berth/<id>` that still exist.
fn cgroups_of(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for h in entries(Path::new("/sys/fs/cgroup")) {
        let p = Path::new("/sys/fs/cgroup").join(h).join("berth").join(id);
        if p.exists() {
            out.push(p);
        }
    }
    out
}

fn daemon_pid(sb: &Sandbox) -> Option<u32> {
    sb.daemon.as_ref().map(|c| c.id())
}

/// Asserts the sandbox holds nothing of any container: called once every container is gone.
/// `ids` are all container ids ever seen (records and bundle dirs).
fn assert_nothing_left(sb: &Sandbox, ids: &BTreeSet<String>) {
    let containers = sb.data().join("containers");
    let shims = sb.dir.join("exec").join("shims");
    let runtime = sb.dir.join("exec").join("runtime");
    // The last shims may take a moment to exit after `rm -f` answered.
    let t = Instant::now();
    loop {
        let left_procs: Vec<(i32, String)> =
            procs_naming(&sb.dir.to_string_lossy(), daemon_pid(sb))
                .into_iter()
                .filter(|(_, c)| !c.contains(" daemon "))
                .collect();
        let problems = [
            ("bundle dirs", format!("{:?}", entries(&containers))),
            ("shim state dirs", format!("{:?}", entries(&shims))),
            ("runtime state", format!("{:?}", entries(&runtime))),
            ("mounts", format!("{:?}", mounts_under(&containers))),
            ("processes", format!("{left_procs:?}")),
            (
                "cgroups",
                format!(
                    "{:?}",
                    ids.iter().flat_map(|i| cgroups_of(i)).collect::<Vec<_>>()
                ),
            ),
        ]
        .into_iter()
        .filter(|(_, v)| v != "[]" && v != "{}")
        .collect::<Vec<_>>();
        if problems.is_empty() {
            return;
        }
        if t.elapsed() > Duration::from_secs(15) {
            panic!(
                "left behind after every container was removed: {problems:?}\n--- daemon log ---\n{}",
                sb.daemon_log()
            );
        }
        sleep(Duration::from_millis(200));
    }
}

fn log_lines(sb: &Sandbox, name: &str) -> Vec<String> {
    sb.ok(&["logs", name]).lines().map(String::from).collect()
}

fn parse_time(s: &str) -> f64 {
    // RFC 3339 UTC with nanoseconds, as docker prints: compare via `date`.
    let out = Command::new("date")
        .args(["-u", "-d", s, "+%s.%N"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("cannot parse time {s:?}"))
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn kill9_while_containers_run() {
    let Some(mut sb) = setup("kill9_while_containers_run") else {
        return;
    };
    let ticker = "i=0; while true; do echo t$i; i=$((i+1)); sleep 0.1; done";
    sb.ok(&["run", "-d", "--name", "tick", "busybox", "sh", "-c", ticker]);
    sb.ok(&["run", "-d", "--name", "idle", "busybox", "sleep", "1000"]);
    assert_eq!(
        sb.code(&["run", "--name", "ex3", "busybox", "sh", "-c", "exit 3"]),
        3
    );
    sb.ok(&["create", "--name", "fresh", "busybox", "echo", "fresh"]);
    sb.ok(&["run", "-d", "--name", "paused", "busybox", "sleep", "1000"]);
    sb.ok(&["pause", "paused"]);
    let idle_pid = inspect(&sb, "idle", "{{.State.Pid}}");
    sleep(Duration::from_millis(500));
    let before = log_lines(&sb, "tick").len();
    // Started last, so that they exit while the daemon is down even on a loaded machine.
    // Exits (code 7) while the daemon is down, after writing a last line.
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "busybox",
        "sh",
        "-c",
        "echo started; sleep 1.5; echo done >&2; exit 7",
    ]);
    // Also exits while the daemon is down, with --rm: gone after the restart.
    sb.ok(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "gone",
        "busybox",
        "sh",
        "-c",
        "sleep 1.5; exit 1",
    ]);

    sb.kill_daemon();
    let down_at = now_secs();
    sleep(Duration::from_secs(4));
    let up_at = now_secs();
    sb.start_daemon();

    let mut states: HashMap<String, String> =
        ps_all(&sb).into_iter().map(|(_, n, s)| (n, s)).collect();
    states.remove("gone").map(|s| {
        // --rm: removed once its exit is seen; may take a moment after the restart.
        assert!(s == "exited" || s == "removing", "gone: {s}");
    });
    let want: HashMap<String, String> = [
        ("tick", "running"),
        ("late", "exited"),
        ("idle", "running"),
        ("ex3", "exited"),
        ("fresh", "created"),
        ("paused", "paused"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(states, want, "states after the restart");
    let t = Instant::now();
    while sb.code(&["inspect", "gone"]) == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the --rm container that exited while the daemon was down was not removed"
        );
        sleep(Duration::from_millis(100));
    }

    // Exit code and time of the container that exited while the daemon was down.
    assert_eq!(inspect(&sb, "late", "{{.State.ExitCode}}"), "7");
    assert_eq!(sb.ok(&["wait", "late"]).trim(), "7");
    let fin = parse_time(&inspect(&sb, "late", "{{.State.FinishedAt}}"));
    assert!(
        fin > down_at && fin < up_at,
        "late finished at {fin}, the daemon was down from {down_at} to {up_at}"
    );
    let o = sb.docker(&["logs", "late"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "started\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "done\n");
    assert!(sb
        .ok(&[
            "ps",
            "-a",
            "--filter",
            "name=late",
            "--format",
            "{{.Status}}"
        ])
        .starts_with("Exited (7)"));
    // The stopped one and the created one are as they were.
    assert_eq!(inspect(&sb, "ex3", "{{.State.ExitCode}}"), "3");
    assert_eq!(sb.ok(&["start", "-a", "fresh"]), "fresh\n");

    // The running ones kept running (same process) and logging while the daemon was down.
    assert_eq!(inspect(&sb, "idle", "{{.State.Pid}}"), idle_pid);
    let lines = log_lines(&sb, "tick");
    assert!(
        lines.len() >= before + 20,
        "tick logged {} lines before the kill and {} after 4 s down",
        before,
        lines.len()
    );
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l, &format!("t{i}"), "tick's log has a gap or a duplicate");
    }
    let ts = sb.ok(&["logs", "-t", "tick"]);
    let during = ts
        .lines()
        .filter_map(|l| l.split(' ').next())
        .map(parse_time_fast)
        .filter(|t| *t > down_at + 0.5 && *t < up_at - 0.5)
        .count();
    assert!(
        during >= 15,
        "only {during} log lines are stamped while the daemon was down"
    );
    // Following the log of a restored container streams new lines.
    let o = Command::new("timeout")
        .args([
            "2",
            sb.docker.to_str().unwrap(),
            "logs",
            "-f",
            "--tail",
            "0",
            "tick",
        ])
        .env("DOCKER_HOST", format!("unix://{}", sb.sock().display()))
        .env("DOCKER_CONFIG", sb.dir.join("docker-config"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).lines().count() >= 5);

    // Restored containers are fully manageable: exec, stop (exit code), unpause, kill, wait.
    assert_eq!(sb.ok(&["exec", "idle", "echo", "hi"]), "hi\n");
    sb.ok(&["unpause", "paused"]);
    assert_eq!(sb.ok(&["exec", "paused", "echo", "ok"]), "ok\n");
    sb.ok(&["stop", "-t", "1", "tick"]);
    assert_eq!(
        inspect(&sb, "tick", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    sb.ok(&["kill", "idle"]);
    assert_eq!(sb.ok(&["wait", "idle"]).trim(), "137");
    // A container that exits while the daemon is down, twice in a row, keeps its code.
    sb.ok(&["start", "late"]);
    sb.kill_daemon();
    sleep(Duration::from_millis(2600));
    sb.start_daemon();
    assert_eq!(
        inspect(&sb, "late", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 7"
    );
    assert_eq!(sb.ok(&["logs", "late"]), "started\nstarted\n");

    let mut ids: BTreeSet<String> = ps_all(&sb).into_iter().map(|(i, _, _)| i).collect();
    ids.extend(entries(&sb.data().join("containers")));
    for id in &ids {
        sb.ok(&["rm", "-f", id]);
    }
    assert!(ps_all(&sb).is_empty());
    assert_nothing_left(&sb, &ids);
}

/// Seconds since the epoch of docker's RFC 3339 UTC timestamp (`2026-11-26T03:17:47.009Z`).
fn parse_time_fast(s: &str) -> f64 {
    let (date, rest) = s.split_once('T').unwrap_or(("", ""));
    let d: Vec<i64> = date.split('-').filter_map(|x| x.parse().ok()).collect();
    let rest = rest.trim_end_matches('Z');
    let (hms, frac) = rest.split_once('.').unwrap_or((rest, "0"));
    let t: Vec<i64> = hms.split(':').filter_map(|x| x.parse().ok()).collect();
    if d.len() != 3 || t.len() != 3 {
        return 0.0;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m, dd) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + t[0] * 3600 + t[1] * 60 + t[2];
    secs as f64 + format!("0.{frac}").parse::<f64>().unwrap_or(0.0)
}

#[test]
fn kill9_while_creating() {
    let Some(mut sb) = setup("kill9_while_creating") else {
        return;
    };
    let rounds = 16;
    let mut acked: HashMap<String, (String, bool)> = HashMap::new(); // name -> (id, run -d)
    let mut seen_ids: BTreeSet<String> = BTreeSet::new();
    for i in 0..rounds {
        let name = format!("k{i}");
        let run = i % 2 == 0;
        let mut args = vec!["timeout", "30", sb.docker.to_str().unwrap()];
        if run {
            args.extend(["run", "-d"]);
        } else {
            args.push("create");
        }
        args.extend(["--name", &name, "busybox", "sleep", "1000"]);
        let child = Command::new(args[0])
            .args(&args[1..])
            .env("DOCKER_HOST", format!("unix://{}", sb.sock().display()))
            .env("DOCKER_CONFIG", sb.dir.join("docker-config"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // 0 ms .. 450 ms in 30 ms steps: before, during and after the create (and the start).
        sleep(Duration::from_millis(30 * i as u64));
        sb.kill_daemon();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
            acked.insert(name.clone(), (id, run));
        }
        seen_ids.extend(entries(&sb.data().join("containers")));
        sb.start_daemon();

        // Consistent right after each restart: unique ids and names, every one inspectable.
        let list = ps_all(&sb);
        let ids: HashSet<&String> = list.iter().map(|(i, _, _)| i).collect();
        let names: HashSet<&String> = list.iter().map(|(_, n, _)| n).collect();
        assert_eq!(
            ids.len(),
            list.len(),
            "duplicate ids after round {i}: {list:?}"
        );
        assert_eq!(
            names.len(),
            list.len(),
            "duplicate names after round {i}: {list:?}"
        );
        for (id, n, st) in &list {
            assert_eq!(inspect(&sb, id, "{{.Name}}"), format!("/{n}"));
            assert_eq!(inspect(&sb, n, "{{.State.Status}}"), *st, "{n}");
        }
        // Nothing acknowledged is lost.
        for (n, (id, run)) in &acked {
            let found = list.iter().find(|(_, ln, _)| ln == n);
            let Some((lid, _, st)) = found else {
                panic!(
                    "{n} ({id}) was acknowledged but is gone after round {i}: {list:?}\n{}",
                    sb.daemon_log()
                );
            };
            assert_eq!(lid, id, "{n}'s id changed");
            if *run {
                assert_eq!(st, "running", "{n} was started (run -d acknowledged)");
            }
        }
        seen_ids.extend(list.iter().map(|(i, _, _)| i.clone()));
    }
    eprintln!(
        "kill9_while_creating: {} of {rounds} requests acknowledged before the kill; {} containers listed",
        acked.len(),
        ps_all(&sb).len()
    );

    // A name whose create was cut short is either a container or free: never a ghost.
    let list = ps_all(&sb);
    for i in 0..rounds {
        let name = format!("k{i}");
        if !list.iter().any(|(_, n, _)| *n == name) {
            sb.ok(&["create", "--name", &name, "busybox", "sleep", "1000"]);
        }
    }
    // Every container can be started, exec'd into and removed.
    for (id, n, _) in ps_all(&sb) {
        let st = inspect(&sb, &id, "{{.State.Status}}");
        if st != "running" {
            let o = sb.docker(&["start", &id]);
            assert!(
                o.status.success(),
                "cannot start {n} ({st}) after the kills: {}\n{}",
                String::from_utf8_lossy(&o.stderr),
                sb.daemon_log()
            );
        }
        assert_eq!(inspect(&sb, &id, "{{.State.Status}}"), "running", "{n}");
        assert_eq!(sb.ok(&["exec", &id, "echo", "in"]), "in\n", "{n}");
        seen_ids.insert(id);
    }
    seen_ids.extend(entries(&sb.data().join("containers")));
    for (id, _, _) in ps_all(&sb) {
        sb.ok(&["rm", "-f", &id]);
    }
    assert!(ps_all(&sb).is_empty());
    // A restart after removing everything finds nothing either.
    sb.kill_daemon();
    sb.start_daemon();
    assert!(ps_all(&sb).is_empty());
    assert_nothing_left(&sb, &seen_ids);
}

#[test]
fn concurrent_creates_with_one_name() {
    let Some(sb) = setup("concurrent_creates_with_one_name") else {
        return;
    };
    let children: Vec<_> = (0..6)
        .map(|_| {
            Command::new("timeout")
                .args([
                    "60",
                    sb.docker.to_str().unwrap(),
                    "create",
                    "--name",
                    "one",
                    "busybox",
                    "true",
                ])
                .env("DOCKER_HOST", format!("unix://{}", sb.sock().display()))
                .env("DOCKER_CONFIG", sb.dir.join("docker-config"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let won = outs.iter().filter(|o| o.status.success()).count();
    for o in outs.iter().filter(|o| !o.status.success()) {
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("is already in use"), "{e}");
    }
    assert_eq!(won, 1, "creates of one name that succeeded");
    assert_eq!(ps_all(&sb).len(), 1);
    let bundles = entries(&sb.data().join("containers"));
    assert_eq!(bundles.len(), 1, "bundles of the losers left: {bundles:?}");
}
