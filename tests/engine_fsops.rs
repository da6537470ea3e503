//! berth's daemon: a container's filesystem, resources and image transfer, driven by the real
//! docker CLI (and docker-py where it is installed): `docker stats` (one shot and streaming,
//! also the raw JSON shape), `docker update` (limits applied live to the cgroup, stored in
//! inspect), `docker diff`, `docker cp` both ways (files, directories, `-` tar streams,
//! symlinks that must not escape the container's root, stopped containers), `docker commit`
//! (then `docker run` of the new image and `docker history`), and image transfer through the
//! API: save, load, import, push to a local registry, login, image prune.
//!
//! Needs root and a docker CLI, else prints SKIP and passes. Each test has its own
//! [`Sandbox`] (temp dir, daemon, busybox image) that cleans up after itself.

#[path = "daemon_common/mod.rs"]
mod daemon_common;

use daemon_common::*;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A raw HTTP/1.1 GET on the daemon's socket; returns the status line and a reader of the
/// rest (headers included), for streaming answers.
fn raw_get(sb: &Sandbox, path: &str) -> BufReader<std::os::unix::net::UnixStream> {
    let mut s = std::os::unix::net::UnixStream::connect(sb.sock()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: berth\r\n\r\n").unwrap();
    BufReader::new(s)
}

/// Reads JSON documents (one per line) from a chunked streaming answer until `n` are read.
fn json_lines(
    r: &mut BufReader<std::os::unix::net::UnixStream>,
    n: usize,
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut line = String::new();
    while out.len() < n {
        line.clear();
        if r.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let t = line.trim();
        if t.starts_with('{') {
            out.push(serde_json::from_str(t).unwrap());
        }
    }
    out
}

fn full_id(sb: &Sandbox, name: &str) -> String {
    sb.ok(&["inspect", "-f", "{{.Id}}", name])
        .trim()
        .to_string()
}

/// The first existing `/sys/fs/cgroup/<ctl>/berth/<id>/<file>` (v1), or the v2 file.
fn cgroup_file(id: &str, ctl: &str, v1: &str, v2: &str) -> String {
    for p in [
        format!("/sys/fs/cgroup/{ctl}/berth/{id}/{v1}"),
        format!("/sys/fs/cgroup/berth/{id}/{v2}"),
    ] {
        if let Ok(t) = fs::read_to_string(&p) {
            return t.trim().to_string();
        }
    }
    panic!("no cgroup file {ctl}/{v1} for {id}");
}

#[test]
fn stats_and_update() {
    let Some(sb) = setup("stats_and_update") else {
        return;
    };
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "st",
        "busybox",
        "sh",
        "-c",
        "while true; do :; done",
    ]);
    sb.ok(&["run", "-d", "--name", "st2", "busybox", "sleep", "300"]);

    // docker stats --no-stream: a row per running container with sane values.
    let out = sb.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}|{{.NetIO}}|{{.BlockIO}}",
    ]);
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 2, "{out}");
    let busy = rows.iter().find(|r| r.starts_with("st|")).unwrap();
    let f: Vec<&str> = busy.split('|').collect();
    let cpu: f64 = f[1].trim_end_matches('%').parse().unwrap();
    assert!(cpu > 20.0, "a busy loop uses CPU: {busy}");
    assert!(f[2].contains(" / ") && !f[2].starts_with("0B"), "{busy}");
    assert_eq!(f[3], "1", "{busy}");

    // The raw sample: dockerd's keys, precpu filled for stream=false.
    let v: serde_json::Value = serde_json::from_str(
        &String::from_utf8(
            Command::new("curl")
                .args(["-s", "--unix-socket"])
                .arg(sb.sock())
                .arg("http://berth/containers/st2/stats?stream=false")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(v["name"], "/st2");
    assert!(v["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0);
    assert!(v["precpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert!(v["cpu_stats"]["online_cpus"].as_u64().unwrap() >= 1);
    assert!(v["memory_stats"]["usage"].as_u64().unwrap() > 0);
    assert!(v["memory_stats"]["limit"].as_u64().unwrap() > 0);
    assert!(v["memory_stats"]["stats"].is_object());
    assert_eq!(v["pids_stats"]["current"], 1);
    assert!(v["blkio_stats"].is_object());
    assert_ne!(v["read"], "0001-01-01T00:00:00Z");
    assert_ne!(v["preread"], "0001-01-01T00:00:00Z");

    // one-shot: at once, no precpu.
    let t = std::time::Instant::now();
    let one = Command::new("curl")
        .args(["-s", "--unix-socket"])
        .arg(sb.sock())
        .arg("http://berth/v1.41/containers/st2/stats?stream=false&one-shot=true")
        .output()
        .unwrap();
    let one: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert!(t.elapsed() < Duration::from_millis(900));
    assert_eq!(one["preread"], "0001-01-01T00:00:00Z");

    // Streaming: samples about a second apart, each with the previous as precpu.
    let mut r = raw_get(&sb, "/containers/st/stats");
    let s = json_lines(&mut r, 3);
    assert_eq!(s.len(), 3);
    assert_eq!(s[2]["preread"], s[1]["read"]);
    assert!(
        s[2]["cpu_stats"]["cpu_usage"]["total_usage"].as_u64()
            > s[1]["cpu_stats"]["cpu_usage"]["total_usage"].as_u64()
    );
    drop(r);

    // docker stats (streaming) prints rows until stopped.
    let mut child = Command::new(&sb.docker)
        .args(["stats", "st2"])
        .env("DOCKER_HOST", format!("unix://{}", sb.sock().display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    let _ = child.kill();
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let _ = child.wait();
    assert!(text.matches("st2").count() >= 2, "{text}");

    // A stopped container: one empty sample.
    sb.ok(&["run", "--name", "gone", "busybox", "true"]);
    let out = sb.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "gone",
    ]);
    assert_eq!(out.trim(), "gone 0");

    // docker update: limits applied live and stored.
    let id = full_id(&sb, "st2");
    sb.ok(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--restart",
        "on-failure:3",
        "st2",
    ]);
    assert_eq!(
        cgroup_file(&id, "memory", "memory.limit_in_bytes", "memory.max"),
        "67108864"
    );
    assert_eq!(cgroup_file(&id, "pids", "pids.max", "pids.max"), "50");
    let quota = cgroup_file(&id, "cpu", "cpu.cfs_quota_us", "cpu.max");
    assert!(quota.starts_with("50000"), "{quota}");
    assert_eq!(
        sb.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            "st2"
        ])
        .trim(),
        "67108864 134217728 50 500000000 512 on-failure:3"
    );
    let out = sb.ok(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "st2"]);
    assert!(out.contains("/ 64MiB"), "{out}");
    // Raising memory past the swap limit needs the swap too; dockerd's error.
    let e = sb.docker(&["update", "--memory", "200m", "st2"]);
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("memoryswap"));
    sb.ok(&["update", "--memory", "200m", "--memory-swap", "400m", "st2"]);
    assert_eq!(
        cgroup_file(&id, "memory", "memory.limit_in_bytes", "memory.max"),
        "209715200"
    );
    // A stopped container is updated too (applied at its next start).
    sb.ok(&["update", "--pids-limit", "20", "gone"]);
    sb.ok(&["start", "gone"]);
    assert_eq!(
        sb.ok(&["inspect", "-f", "{{.HostConfig.PidsLimit}}", "gone"])
            .trim(),
        "20"
    );
}

#[test]
fn diff_and_commit() {
    let Some(sb) = setup("diff_and_commit") else {
        return;
    };
    sb.ok(&[
        "run",
        "--name",
        "ch",
        "busybox",
        "sh",
        "-c",
        "busybox mkdir -p /data/sub && echo new > /data/sub/f && echo x >> /etc/passwd && busybox rm /bin/false /bin/cat",
    ]);
    assert_eq!(
        sb.ok(&["diff", "ch"]),
        "C /bin\nD /bin/cat\nD /bin/false\nA /data\nA /data/sub\nA /data/sub/f\nC /etc\nC /etc/passwd\n"
    );
    assert_ne!(sb.code(&["diff", "nosuch"]), 0);

    // commit with message, author and changes; the image runs with the changes.
    let id = sb.ok(&[
        "commit",
        "-m",
        "added data",
        "-a",
        "Tester <t@example.invalid>",
        "-c",
        "ENV GREETING=hello",
        "-c",
        "WORKDIR /data",
        "-c",
        "CMD [\"sh\", \"-c\", \"echo $GREETING; busybox cat sub/f; ls /bin/cat || echo no-cat\"]",
        "ch",
        "committed:v1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        sb.ok(&["run", "--rm", "committed:v1"]),
        "hello\nnew\nno-cat\n"
    );
    let h = sb.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "committed:v1",
    ]);
    let rows: Vec<&str> = h.lines().collect();
    assert_eq!(rows.len(), 2, "{h}");
    assert!(rows[0].ends_with("|added data"), "{h}");
    assert!(rows[0].contains("busybox mkdir"), "{h}");
    assert_eq!(
        sb.ok(&[
            "inspect",
            "-f",
            "{{.Author}}|{{.Comment}}|{{.Config.WorkingDir}}",
            "committed:v1"
        ])
        .trim(),
        "Tester <t@example.invalid>|added data|/data"
    );
    // The image's layer does not carry the mount points every container gets.
    sb.ok(&["run", "--name", "c2", "committed:v1", "true"]);
    assert_eq!(sb.ok(&["diff", "c2"]), "");

    // An opaque directory (a directory of the image removed and made again) is a deletion.
    sb.ok(&[
        "run",
        "--name",
        "op",
        "committed:v1",
        "sh",
        "-c",
        "busybox rm -rf /data && busybox mkdir /data && echo a > /data/x",
    ]);
    let d = sb.ok(&["diff", "op"]);
    assert!(d.contains("D /data\n") && d.contains("A /data/x\n"), "{d}");
    // A running container is paused while committed, and keeps running.
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "run1",
        "busybox",
        "sh",
        "-c",
        "echo live > /live; sleep 300",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    sb.ok(&["commit", "run1", "live:1"]);
    assert_eq!(
        sb.ok(&["inspect", "-f", "{{.State.Status}}", "run1"])
            .trim(),
        "running"
    );
    assert_eq!(
        sb.ok(&["run", "--rm", "live:1", "busybox", "cat", "/live"]),
        "live\n"
    );
    // Untagged commit.
    let id = sb.ok(&["commit", "run1"]);
    assert!(sb.ok(&["images", "-q", "--no-trunc"]).contains(id.trim()));
}

/// The entry names of a tar, sorted.
fn tar_list(data: &[u8]) -> Vec<String> {
    let mut c = Command::new("tar")
        .args(["-tf", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    let out = c.wait_with_output().unwrap();
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    v.sort();
    v
}

fn tree(dir: &Path) {
    fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    fs::write(dir.join("f1"), "one\n").unwrap();
    fs::write(dir.join("sub/f2"), "two\n").unwrap();
    fs::write(dir.join("sub/deeper/f3"), "three\n").unwrap();
    std::os::unix::fs::symlink("f1", dir.join("lnk")).unwrap();
}

#[test]
fn docker_cp() {
    let Some(sb) = setup("docker_cp") else {
        return;
    };
    let host = sb.dir.join("host");
    let src = host.join("src");
    tree(&src);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    sb.ok(&["run", "-d", "--name", "cp1", "busybox", "sleep", "300"]);

    // host -> container: a directory into an existing directory, a file to a new name.
    sb.ok(&["cp", &s(&src), "cp1:/etc/"]);
    assert_eq!(
        sb.ok(&["exec", "cp1", "sh", "-c", "busybox find /etc/src | busybox sort"]),
        "/etc/src\n/etc/src/f1\n/etc/src/lnk\n/etc/src/sub\n/etc/src/sub/deeper\n/etc/src/sub/deeper/f3\n/etc/src/sub/f2\n"
    );
    assert_eq!(
        sb.ok(&["exec", "cp1", "busybox", "readlink", "/etc/src/lnk"]),
        "f1\n"
    );
    sb.ok(&["cp", &s(&src.join("f1")), "cp1:/renamed"]);
    assert_eq!(sb.ok(&["exec", "cp1", "cat", "/renamed"]), "one\n");
    // The contents of a directory (SRC/.) into a new directory.
    sb.ok(&["cp", &format!("{}/.", s(&src)), "cp1:/newdir"]);
    assert_eq!(sb.ok(&["exec", "cp1", "cat", "/newdir/sub/f2"]), "two\n");

    // container -> host: file, directory, symlink kept / followed (-L).
    let out = host.join("out");
    fs::create_dir_all(&out).unwrap();
    sb.ok(&["cp", "cp1:/etc/src", &s(&out)]);
    assert_eq!(
        fs::read_to_string(out.join("src/sub/deeper/f3")).unwrap(),
        "three\n"
    );
    assert_eq!(
        fs::read_link(out.join("src/lnk")).unwrap(),
        PathBuf::from("f1")
    );
    sb.ok(&["cp", "cp1:/etc/passwd", &s(&out.join("pw"))]);
    assert!(fs::read_to_string(out.join("pw"))
        .unwrap()
        .starts_with("root:"));
    sb.ok(&[
        "exec",
        "cp1",
        "busybox",
        "ln",
        "-s",
        "/etc/passwd",
        "/pwlink",
    ]);
    sb.ok(&["cp", "cp1:/pwlink", &s(&out.join("l1"))]);
    assert_eq!(
        fs::read_link(out.join("l1")).unwrap(),
        PathBuf::from("/etc/passwd")
    );
    sb.ok(&["cp", "-L", "cp1:/pwlink", &s(&out.join("l2"))]);
    assert!(fs::read_to_string(out.join("l2"))
        .unwrap()
        .starts_with("root:"));
    // /etc/hostname is the file the container sees (bind-mounted), not the mount point.
    sb.ok(&["cp", "cp1:/etc/hostname", &s(&out.join("hn"))]);
    assert_eq!(
        fs::read_to_string(out.join("hn")).unwrap().trim(),
        &full_id(&sb, "cp1")[..12]
    );

    // `-`: a tar on stdout / stdin.
    let o = sb.docker(&["cp", "cp1:/etc/src/sub", "-"]);
    assert!(o.status.success());
    assert_eq!(
        tar_list(&o.stdout),
        ["sub/", "sub/deeper/", "sub/deeper/f3", "sub/f2"]
    );
    let o = sb.docker(&["cp", "cp1:/renamed", "-"]);
    assert_eq!(tar_list(&o.stdout), ["renamed"]);
    let mut x = Command::new("tar")
        .args(["-xOf", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    x.stdin.take().unwrap().write_all(&o.stdout).unwrap();
    assert_eq!(x.wait_with_output().unwrap().stdout, b"one\n");
    let tarfile = host.join("in.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&src)
        .arg("-cf")
        .arg(&tarfile)
        .args(["f1", "sub"])
        .status()
        .unwrap();
    assert!(st.success());
    let mut child = Command::new(&sb.docker)
        .args(["cp", "-", "cp1:/tmp"])
        .env("DOCKER_HOST", format!("unix://{}", sb.sock().display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let data = fs::read(&tarfile).unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let o = child.wait_with_output().unwrap();
    // /tmp does not exist in the image: docker says so.
    assert!(!o.status.success());
    sb.ok(&["exec", "cp1", "busybox", "mkdir", "/tmp"]);
    let mut child = Command::new(&sb.docker)
        .args(["cp", "-", "cp1:/tmp"])
        .env("DOCKER_HOST", format!("unix://{}", sb.sock().display()))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        sb.ok(&["exec", "cp1", "cat", "/tmp/sub/deeper/f3"]),
        "three\n"
    );

    // Errors: missing paths, a directory over a file.
    let e = sb.docker(&["cp", "cp1:/nope", &s(&out)]);
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("Could not find the file /nope"));
    assert!(!sb
        .docker(&["cp", &s(&src.join("sub")), "cp1:/renamed"])
        .status
        .success());
    assert!(!sb.docker(&["cp", &s(&src), "nosuch:/"]).status.success());

    // Symlinks inside the container never lead outside its root, either way.
    sb.ok(&["exec", "cp1", "busybox", "ln", "-s", "/", "/escape"]);
    sb.ok(&[
        "exec",
        "cp1",
        "busybox",
        "ln",
        "-s",
        "../../../../../../..",
        "/up",
    ]);
    let marker = sb.dir.join("host-marker");
    fs::write(&marker, "host secret").unwrap();
    let rel = marker.to_str().unwrap().trim_start_matches('/').to_string();
    assert!(!sb
        .docker(&["cp", &format!("cp1:/up/{rel}"), &s(&out.join("leak"))])
        .status
        .success());
    assert!(!out.join("leak").exists());
    sb.ok(&["cp", &s(&src.join("f1")), "cp1:/escape/etc/"]);
    sb.ok(&["cp", &s(&src.join("f1")), "cp1:/up/"]);
    assert_eq!(
        sb.ok(&["exec", "cp1", "cat", "/etc/f1", "/f1"]),
        "one\none\n"
    );
    assert!(!Path::new("/etc/f1").exists() || fs::read_to_string("/etc/f1").unwrap() != "one\n");
    // A tar whose entries climb out is refused.
    let evil_dir = host.join("evil");
    fs::create_dir_all(&evil_dir).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../tmp", evil_dir.join("out")).unwrap();
    let evil = Command::new("tar")
        .arg("-C")
        .arg(&evil_dir)
        .args(["-cf", "-", "out"])
        .output()
        .unwrap()
        .stdout;
    let mut child = Command::new(&sb.docker)
        .args(["cp", "-", "cp1:/tmp"])
        .env("DOCKER_HOST", format!("unix://{}", sb.sock().display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&evil).unwrap();
    assert!(!child.wait().unwrap().success());

    // A stopped container: both ways.
    sb.ok(&["stop", "-t", "0", "cp1"]);
    sb.ok(&["cp", &s(&src.join("sub/f2")), "cp1:/stopped-f2"]);
    sb.ok(&["cp", "cp1:/stopped-f2", &s(&out.join("back"))]);
    assert_eq!(fs::read_to_string(out.join("back")).unwrap(), "two\n");
    sb.ok(&["start", "cp1"]);
    assert_eq!(sb.ok(&["exec", "cp1", "cat", "/stopped-f2"]), "two\n");
}
