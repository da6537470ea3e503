//! The server against real clients: the docker CLI (28.x at /usr/local/bin/docker, 20.10 at
//! /usr/bin/docker) and docker-py, serving the fake backend. A client that is not installed
//! is skipped with a note.

mod common;
mod fake;

use std::path::Path;
use std::process::Stdio;

use common::TestServer;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const DOCKER_28: &str = "/usr/local/bin/docker";
const DOCKER_20: &str = "/usr/bin/docker";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs a docker CLI against the test server with a private config dir.
async fn docker(bin: &str, t: &TestServer, args: &[&str], stdin: Option<&[u8]>) -> Out {
    let cfg = t.dir.path().join("docker-config");
    std::fs::create_dir_all(&cfg).unwrap();
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("DOCKER_HOST", t.host())
        .env("DOCKER_CONFIG", &cfg)
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .env("DOCKER_CLI_HINTS", "false")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    if let Some(data) = stdin {
        let mut s = child.stdin.take().unwrap();
        s.write_all(data).await.unwrap();
        drop(s);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("docker {args:?} timed out"))
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

fn have(bin: &str) -> bool {
    if Path::new(bin).exists() {
        true
    } else {
        eprintln!("skipping: {bin} is not installed");
        false
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_cli_version_info_ps() {
    for bin in [DOCKER_28, DOCKER_20] {
        if !have(bin) {
            continue;
        }
        let t = TestServer::start().await;
        t.fake.add_running("web", false);
        let v = docker(bin, &t, &["version"], None).await;
        assert_eq!(v.code, 0, "{bin} version: {}{}", v.stdout, v.stderr);
        assert!(v.stdout.contains("Server:"), "{}", v.stdout);
        assert!(
            v.stdout.contains("1.47 (minimum version 1.24)"),
            "{bin}: {}",
            v.stdout
        );
        let f = docker(
            bin,
            &t,
            &[
                "version",
                "--format",
                "{{.Server.APIVersion}} {{.Client.APIVersion}}",
            ],
            None,
        )
        .await;
        assert_eq!(f.code, 0, "{}", f.stderr);
        let negotiated = f.stdout.trim().to_string();
        // The CLI negotiates down to 1.47 (CLI 28) or keeps its own 1.41 (CLI 20.10).
        assert!(
            negotiated == "1.47 1.47" || negotiated == "1.47 1.41",
            "{bin}: {negotiated}"
        );

        let i = docker(bin, &t, &["info"], None).await;
        assert_eq!(i.code, 0, "{bin} info: {}{}", i.stdout, i.stderr);
        assert!(i.stdout.contains("Server Version: 0.1.0"), "{}", i.stdout);
        assert!(i.stdout.contains("Name: fakehost"), "{}", i.stdout);
        assert!(i.stdout.contains("Swarm: inactive"), "{}", i.stdout);

        let ps = docker(bin, &t, &["ps"], None).await;
        assert_eq!(ps.code, 0, "{bin} ps: {}", ps.stderr);
        assert!(
            ps.stdout.contains("web") && ps.stdout.contains("Up 5 minutes"),
            "{}",
            ps.stdout
        );
        assert!(ps.stdout.contains("0.0.0.0:8080->80/tcp"), "{}", ps.stdout);
        let ps = docker(
            bin,
            &t,
            &[
                "ps",
                "-a",
                "--filter",
                "label=app=test",
                "--format",
                "{{.Names}} {{.Image}}",
            ],
            None,
        )
        .await;
        assert_eq!(ps.stdout.trim(), "web busybox", "{}", ps.stderr);
        let ps = docker(
            bin,
            &t,
            &["ps", "-a", "--filter", "label=app=other", "-q"],
            None,
        )
        .await;
        assert_eq!(ps.stdout.trim(), "");

        let leave = docker(bin, &t, &["swarm", "leave"], None).await;
        assert_ne!(leave.code, 0);
        assert!(
            leave.stderr.contains("This node is not part of a swarm"),
            "{bin}: {}",
            leave.stderr
        );
        let nodes = docker(bin, &t, &["node", "ls"], None).await;
        assert_ne!(nodes.code, 0);
        assert!(
            nodes.stderr.contains("This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\""),
            "{bin}: {}",
            nodes.stderr
        );
        let missing = docker(bin, &t, &["inspect", "--type", "container", "nosuch"], None).await;
        assert_ne!(missing.code, 0);
        assert!(
            missing.stderr.contains("No such container: nosuch"),
            "{bin}: {}",
            missing.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_cli_exec_logs_run_pull() {
    for bin in [DOCKER_28, DOCKER_20] {
        if !have(bin) {
            continue;
        }
        let t = TestServer::start().await;
        t.fake.add_running("web", false);
        // exec -i: stdin through the hijacked connection, half-closed at its end.
        let e = docker(
            bin,
            &t,
            &["exec", "-i", "web", "cat"],
            Some(b"hello from stdin\n"),
        )
        .await;
        assert_eq!(e.code, 0, "{bin} exec -i: {}", e.stderr);
        assert_eq!(e.stdout, "hello from stdin\n");
        let e = docker(bin, &t, &["exec", "web", "echo", "hi", "there"], None).await;
        assert_eq!(
            (e.code, e.stdout.as_str(), e.stderr.as_str()),
            (0, "hi there\n", "to stderr\n"),
            "{bin}"
        );
        let e = docker(bin, &t, &["exec", "web", "false"], None).await;
        assert_eq!(e.code, 1, "{bin}: exit code of the exec");
        let e = docker(bin, &t, &["exec", "-d", "web", "echo", "x"], None).await;
        assert_eq!(e.code, 0, "{bin} exec -d: {}", e.stderr);

        let l = docker(bin, &t, &["logs", "web"], None).await;
        assert_eq!(l.code, 0, "{}", l.stderr);
        assert_eq!(l.stdout, "out line 1\nout line 2\n");
        assert_eq!(l.stderr, "err line 1\n");

        // run -i --rm: create, attach (hijack), wait(removed), start; stdin echoed.
        let r = docker(
            bin,
            &t,
            &["run", "-i", "--rm", "busybox", "cat"],
            Some(b"hi from run\n"),
        )
        .await;
        assert_eq!(r.code, 0, "{bin} run: {}{}", r.stdout, r.stderr);
        assert_eq!(r.stdout, "hi from run\n");
        // Implicit pull of a missing image: create 404, pull fails with the daemon's message.
        let r = docker(bin, &t, &["run", "--rm", "nosuchimage"], None).await;
        assert_ne!(r.code, 0);
        assert!(
            r.stderr
                .contains("Unable to find image 'nosuchimage:latest' locally"),
            "{bin}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("pull access denied for nosuchimage"),
            "{bin}: {}",
            r.stderr
        );

        let p = docker(bin, &t, &["pull", "busybox:1.36"], None).await;
        assert_eq!(p.code, 0, "{bin} pull: {}", p.stderr);
        // CLI 28 sends the fully qualified name, 20.10 the short one.
        assert!(
            p.stdout
                .contains("Status: Downloaded newer image for docker.io/library/busybox:1.36")
                || p.stdout
                    .contains("Status: Downloaded newer image for busybox:1.36"),
            "{}",
            p.stdout
        );
        let p = docker(bin, &t, &["pull", "midfail"], None).await;
        assert_ne!(p.code, 0);
        assert!(p.stderr.contains("unexpected EOF"), "{bin}: {}", p.stderr);
        let i = docker(bin, &t, &["images"], None).await;
        assert_eq!(i.code, 0, "{}", i.stderr);
        assert!(
            i.stdout.contains("busybox") && i.stdout.contains("latest"),
            "{}",
            i.stdout
        );

        let k = docker(bin, &t, &["stop", "web"], None).await;
        assert_eq!((k.code, k.stdout.trim()), (0, "web"), "{}", k.stderr);
        let k = docker(bin, &t, &["rm", "web"], None).await;
        assert_eq!(k.code, 0, "{}", k.stderr);
        let k = docker(bin, &t, &["rm", "web"], None).await;
        assert!(k.stderr.contains("No such container: web"), "{}", k.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_py() {
    let ok = Command::new("python3")
        .args(["-c", "import docker"])
        .output()
        .await
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipping: docker-py is not installed (pip install docker)");
        return;
    }
    let t = TestServer::start().await;
    t.fake.add_running("web", false);
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1])
assert c.ping() is True
v = c.version()
print("api", v["ApiVersion"], c.api.api_version)
print("info", c.info()["Name"])
print("list", [x.name for x in c.containers.list()])
r = c.api.exec_create("web", ["echo", "hi"])
print("exec", repr(c.api.exec_start(r["Id"], demux=True)))
res = c.containers.get("web").exec_run(["cat"], stdin=True, socket=True)
s = res.output._sock
s.sendall(b"py-stdin\n")
import socket
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print("cat", repr(data))
img = c.images.pull("busybox", tag="latest")
print("pulled", img.tags)
try:
    c.swarm.leave()
except docker.errors.APIError as e:
    print("swarm", e.status_code, e.explanation)
try:
    c.containers.get("nosuch")
except docker.errors.NotFound as e:
    print("notfound", e.explanation)
"#;
    let out = Command::new("python3")
        .args(["-c", script, &t.host()])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "docker-py failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("api 1.47 1.47"), "{stdout}");
    assert!(stdout.contains("info fakehost"), "{stdout}");
    assert!(stdout.contains("list ['web']"), "{stdout}");
    assert!(
        stdout.contains("exec (b'hi\\n', b'to stderr\\n')"),
        "{stdout}"
    );
    // The raw socket carries multiplexed frames: header 1,0,0,0,0,0,0,9 then the data.
    assert!(
        stdout.contains(r"cat b'\x01\x00\x00\x00\x00\x00\x00\tpy-stdin\n'"),
        "{stdout}"
    );
    assert!(stdout.contains("pulled ['busybox:latest']"), "{stdout}");
    assert!(
        stdout.contains("swarm 503 This node is not part of a swarm"),
        "{stdout}"
    );
    assert!(
        stdout.contains("notfound No such container: nosuch"),
        "{stdout}"
    );
}
