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

    // Interfaces of the container's network namespace (lo left out): a veth pair made
    // inside it (it goes with the namespace), traffic between its ends.
    let pid = sb
        .ok(&["inspect", "-f", "{{.State.Pid}}", "st2"])
        .trim()
        .to_string();
    let ns = |args: &[&str]| {
        Command::new("nsenter")
            .args(["-t", &pid, "-n"])
            .args(args)
            .status()
            .unwrap()
            .success()
    };
    assert!(ns(&[
        "ip", "link", "add", "bva", "type", "veth", "peer", "name", "bvb"
    ]));
    assert!(ns(&["ip", "link", "set", "bva", "up"]));
    assert!(ns(&["ip", "link", "set", "bvb", "up"]));
    assert!(ns(&["ip", "addr", "add", "10.254.77.1/24", "dev", "bva"]));
    let _ = ns(&["ping", "-c", "2", "-W", "1", "10.254.77.2"]);
    let one = Command::new("curl")
        .args(["-s", "--unix-socket"])
        .arg(sb.sock())
        .arg("http://berth/v1.41/containers/st2/stats?stream=false&one-shot=true")
        .output()
        .unwrap();
    let one: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    let nets = one["networks"].as_object().expect("networks");
    assert!(!nets.contains_key("lo"));
    assert!(nets["bva"]["tx_bytes"].as_u64().unwrap() > 0, "{nets:?}");
    assert!(nets["bvb"]["rx_packets"].as_u64().unwrap() > 0, "{nets:?}");
    let out = sb.ok(&["stats", "--no-stream", "--format", "{{.NetIO}}", "st2"]);
    assert_ne!(out.trim(), "0B / 0B");

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

/// The password of the htpasswd registry and its bcrypt hash (cost 4), as in
/// tests/images_common.
const TEST_PASSWORD: &str = "berth-test-pw";
const TEST_PASSWORD_BCRYPT: &str = "$2b$04$hPiVCMIgZKfXyOuIlmTp7.WoTSJyjKejD63HOUWoem62t8ZU5wPcG";

/// A docker-registry requiring basic auth (user `tester`) on a free loopback port, killed
/// on drop. None when docker-registry is not installed.
struct AuthRegistry {
    port: u16,
    child: std::process::Child,
}

impl AuthRegistry {
    fn start(dir: &Path) -> Option<AuthRegistry> {
        if !Path::new("/usr/bin/docker-registry").exists() {
            return None;
        }
        fs::create_dir_all(dir).unwrap();
        fs::write(
            dir.join("htpasswd"),
            format!("tester:{TEST_PASSWORD_BCRYPT}\n"),
        )
        .unwrap();
        for _ in 0..5 {
            let port = free_port();
            fs::write(
                dir.join("config.yml"),
                format!(
                    "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    dir.join("data").display(),
                    dir.join("htpasswd").display()
                ),
            )
            .unwrap();
            let mut child = Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(dir.join("config.yml"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let t = std::time::Instant::now();
            while t.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(AuthRegistry { port, child });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("the registry did not start");
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn image_transfer() {
    let Some(sb) = setup("image_transfer") else {
        return;
    };
    let s = |p: &Path| p.to_str().unwrap().to_string();
    sb.ok(&[
        "run",
        "--name",
        "mk",
        "busybox",
        "sh",
        "-c",
        "echo saved > /saved",
    ]);
    sb.ok(&["commit", "mk", "mine:1"]);

    // save (file and stdout), rmi, load (progress and quiet forms).
    let tar = sb.dir.join("mine.tar");
    sb.ok(&["save", "-o", &s(&tar), "mine:1"]);
    assert!(tar_list(&fs::read(&tar).unwrap()).contains(&"manifest.json".to_string()));
    let o = sb.docker(&["save", "mine:1", "busybox"]);
    assert!(o.status.success());
    assert!(o.stdout.len() > 1_000_000);
    assert!(!sb.docker(&["save", "nosuch:1"]).status.success());
    sb.ok(&["rm", "mk"]);
    sb.ok(&["rmi", "mine:1"]);
    assert_eq!(sb.ok(&["load", "-i", &s(&tar)]), "Loaded image: mine:1\n");
    assert_eq!(
        sb.ok(&["run", "--rm", "mine:1", "cat", "/saved"]),
        "saved\n"
    );
    let data = fs::read(&tar).unwrap();
    let mut child = Command::new(&sb.docker)
        .args(["load", "-q"])
        .env("DOCKER_HOST", format!("unix://{}", sb.sock().display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "Loaded image: mine:1\n");
    let bad = sb.dir.join("bad.tar");
    fs::write(&bad, b"not a tar at all").unwrap();
    assert!(!sb.docker(&["load", "-i", &s(&bad)]).status.success());

    // import from stdin with changes and a message.
    let root = sb.dir.join("imp");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    fs::write(root.join("hello.txt"), "imported\n").unwrap();
    let t = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["-cf", "-", "."])
        .output()
        .unwrap()
        .stdout;
    let mut child = Command::new(&sb.docker)
        .args([
            "import",
            "-c",
            "CMD [\"/bin/busybox\", \"cat\", \"/hello.txt\"]",
            "-c",
            "ENV X=1",
            "-m",
            "from a tar",
            "-",
            "imp:1",
        ])
        .env("DOCKER_HOST", format!("unix://{}", sb.sock().display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&t).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout)
        .trim()
        .starts_with("sha256:"));
    assert_eq!(sb.ok(&["run", "--rm", "imp:1"]), "imported\n");
    assert_eq!(
        sb.ok(&["history", "--format", "{{.Comment}}", "imp:1"])
            .trim(),
        "from a tar"
    );
    assert_eq!(
        sb.ok(&["inspect", "-f", "{{.Config.Env}}", "imp:1"]).trim(),
        "[X=1]"
    );

    // login and push to a registry with basic auth.
    let Some(reg) = AuthRegistry::start(&sb.dir.join("registry")) else {
        eprintln!("SKIP push/login: no docker-registry");
        return;
    };
    let addr = format!("127.0.0.1:{}", reg.port);
    let e = sb.docker(&["login", "-u", "tester", "-p", "wrong", &addr]);
    assert!(!e.status.success());
    let o = sb.docker_in(
        &["login", "-u", "tester", "--password-stdin", &addr],
        Some(TEST_PASSWORD),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Login Succeeded"));
    let target = format!("{addr}/berth/mine:1");
    sb.ok(&["tag", "mine:1", &target]);
    let out = sb.ok(&["push", &target]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{addr}/berth/mine]"
        )),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("1: digest: sha256:") && last.contains(" size: "),
        "{out}"
    );
    // Pushed again: the layers exist.
    assert!(sb.ok(&["push", &target]).contains("Layer already exists"));
    // The pushed image is what a pull gets back.
    sb.ok(&["rmi", &target, "mine:1"]);
    sb.ok(&["pull", &target]);
    assert_eq!(sb.ok(&["run", "--rm", &target, "cat", "/saved"]), "saved\n");
    assert!(sb
        .ok(&[
            "images",
            "--digests",
            "--format",
            "{{.Digest}}",
            &format!("{addr}/berth/mine")
        ])
        .starts_with("sha256:"));
    // Without credentials the registry refuses.
    sb.ok(&["logout", &addr]);
    let e = sb.docker(&["push", &target]);
    assert!(!e.status.success());
    let e = sb.docker(&["push", &format!("{addr}/nosuch:1")]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("An image does not exist locally"));

    // image prune: dangling first, then every unused image.
    sb.ok(&["run", "--name", "keep", "busybox", "true"]);
    sb.ok(&["commit", "keep"]);
    let before = sb.ok(&["images", "-q"]).lines().count();
    let out = sb.ok(&["image", "prune", "-f"]);
    assert!(out.contains("deleted: sha256:"), "{out}");
    assert_eq!(sb.ok(&["images", "-q"]).lines().count(), before - 1);
    assert!(sb
        .ok(&["image", "prune", "-a", "-f", "--filter", "until=1h"])
        .contains("Total reclaimed space: 0B"));
    sb.ok(&["image", "prune", "-a", "-f"]);
    // busybox is used by the container "keep": kept.
    assert_eq!(
        sb.ok(&["images", "--format", "{{.Repository}}"]),
        "busybox\n"
    );
}

/// docker-py (the Docker SDK for Python) over the same endpoints: stats (one sample and a
/// stream), diff, commit, get_archive / put_archive, update, save and load.
#[test]
fn docker_py_fsops() {
    let has_py = Command::new("python3")
        .args(["-c", "import docker"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !has_py {
        eprintln!("SKIP docker_py_fsops: no docker-py");
        return;
    }
    let Some(sb) = setup("docker_py_fsops") else {
        return;
    };
    let script = r#"
import io, sys, tarfile, docker
c = docker.DockerClient(base_url="unix://" + sys.argv[1], version="1.41")
ct = c.containers.run("busybox", ["sleep", "300"], detach=True, name="py1")
s = ct.stats(stream=False)
assert s["name"] == "/py1", s
assert s["memory_stats"]["usage"] > 0 and s["pids_stats"]["current"] == 1, s
gen = ct.stats(stream=True, decode=True)
a, b = next(gen), next(gen)
assert b["preread"] == a["read"], (a["read"], b["preread"])
gen.close()
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    data = b"from python\n"
    ti = tarfile.TarInfo("py.txt"); ti.size = len(data); ti.mode = 0o644
    t.addfile(ti, io.BytesIO(data))
assert ct.put_archive("/etc", buf.getvalue())
bits, stat = ct.get_archive("/etc/py.txt")
assert stat["name"] == "py.txt" and stat["size"] == 12, stat
with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as t:
    assert t.extractfile("py.txt").read() == b"from python\n"
assert {"Path": "/etc/py.txt", "Kind": 1} in ct.diff(), ct.diff()
ct.update(mem_limit="32m", memswap_limit="64m", cpu_shares=256)
ct.reload()
assert ct.attrs["HostConfig"]["Memory"] == 32 * 1024 * 1024
assert ct.attrs["HostConfig"]["CpuShares"] == 256
img = ct.commit(repository="pyimg", tag="1", message="py commit")
r = c.containers.run("pyimg:1", ["cat", "/etc/py.txt"], detach=True)
r.wait()
assert r.logs() == b"from python\n", r.logs()
r.remove()
data = b"".join(c.images.get("pyimg:1").save(named=True))
c.images.remove("pyimg:1")
loaded = c.images.load(data)
assert "pyimg:1" in loaded[0].tags, loaded
ct.remove(force=True)
print("ok")
"#;
    let o = Command::new("timeout")
        .arg("120")
        .arg("python3")
        .arg("-c")
        .arg(script)
        .arg(sb.sock())
        .output()
        .unwrap();
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "ok",
        "docker-py: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
