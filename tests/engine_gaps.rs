//! Engine behaviours checked against dockerd's, each driven end to end through the REAL docker
//! CLI and the berth CLI on a sandbox daemon (tests/daemon_common): `rename` reserving names
//! atomically, `login` validated by the daemon's `POST /auth`, `import` from a URL fetched by
//! the daemon, `cp` between containers refused as docker refuses it, and execs across a
//! daemon restart (in-memory exec store, as dockerd's).

#[path = "daemon_common/mod.rs"]
mod daemon_common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use daemon_common::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn conflict_message(name: &str, id: &str) -> String {
    format!(
        "Error response from daemon: Error when allocating new name: Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )
}

/// Six parallel renames of six containers to one name: exactly one wins; the others get
/// dockerd's 409 message naming the winner, and the database keeps only the winner's name
/// (checked after a daemon kill -9 and restart).
#[test]
fn rename_is_atomic_and_conflicts_answer_as_dockerd() {
    let Some(mut sb) = setup("rename_is_atomic_and_conflicts_answer_as_dockerd") else {
        return;
    };
    let mut ids = Vec::new();
    for i in 0..6 {
        let id = sb.ok(&["create", "--name", &format!("r{i}"), "busybox", "true"]);
        ids.push(id.trim().to_string());
    }
    for round in 0..3 {
        let target = format!("winner{round}");
        let outs: Vec<(usize, Output)> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..6)
                .map(|i| {
                    let (sb, target, ids) = (&sb, target.clone(), &ids);
                    s.spawn(move || {
                        let old = ids[i].clone();
                        (i, sb.docker(&["rename", &old, &target]))
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<usize> = outs
            .iter()
            .filter(|(_, o)| o.status.success())
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outs:?}");
        let w = winners[0];
        for (i, o) in &outs {
            if *i == w {
                continue;
            }
            assert_eq!(o.status.code(), Some(1), "{o:?}");
            assert_eq!(
                text(&o.stderr),
                format!(
                    "{}\nError: failed to rename container named {}\n",
                    conflict_message(&target, &ids[w]),
                    ids[*i]
                )
            );
        }
        let names = sb.ok(&["ps", "-a", "--format", "{{.Names}}"]);
        assert_eq!(names.lines().filter(|n| *n == target).count(), 1, "{names}");
        assert_eq!(
            sb.ok(&["inspect", "-f", "{{.Name}}", &ids[w]]).trim(),
            format!("/{target}")
        );
        // Give the winner its old name back for the next round.
        sb.ok(&["rename", &target, &format!("r{w}")]);
    }

    // Renaming onto an existing container's name, to the same name, to a bad name.
    let o = sb.docker(&["rename", "r0", "r1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        format!(
            "{}\nError: failed to rename container named r0\n",
            conflict_message("r1", &ids[1])
        )
    );
    let o = sb.berth(&["rename", "r0", "r1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        format!(
            "{}\nError: failed to rename container named r0\n",
            conflict_message("r1", &ids[1])
        )
    );
    let o = sb.docker(&["rename", "r0", "r0"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        "Error response from daemon: Renaming a container with the same name as its current name\nError: failed to rename container named r0\n"
    );
    let o = sb.docker(&["rename", "r0", "bad name"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        "Error response from daemon: Error when allocating new name: Invalid container name (/bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed\nError: failed to rename container named r0\n"
    );

    // A missing container is 404 before the new name is judged, as dockerd answers.
    let o = sb.docker(&["rename", "nosuch", "bad name"]);
    assert_eq!(
        text(&o.stderr),
        "Error response from daemon: No such container: nosuch\nError: failed to rename container named nosuch\n"
    );

    // A rename and a create racing for one name: one wins.
    let (a, b) = std::thread::scope(|s| {
        let h1 = s.spawn(|| sb.docker(&["rename", "r2", "both"]));
        let h2 = s.spawn(|| sb.docker(&["create", "--name", "both", "busybox", "true"]));
        (h1.join().unwrap(), h2.join().unwrap())
    });
    assert!(
        a.status.success() != b.status.success(),
        "rename {a:?} create {b:?}"
    );

    // Renames racing other writers of the same record (update, pause): the database
    // ends with the newest of everything.
    let id4 = ids[4].clone();
    std::thread::scope(|s| {
        let sbr = &sb;
        let id = id4.clone();
        s.spawn(move || {
            for i in 0..8 {
                sbr.ok(&["rename", &id, &format!("moving{i}")]);
            }
        });
        let id = id4.clone();
        s.spawn(move || {
            for i in 0..8 {
                let policy = if i % 2 == 0 { "always" } else { "no" };
                sbr.ok(&["update", "--restart", policy, &id]);
            }
        });
    });

    // The database holds the names as answered: after kill -9 and a restart, the same.
    sb.ok(&["rename", "r3", "renamed3"]);
    let before = sb.ok(&["ps", "-a", "--format", "{{.ID}} {{.Names}}"]);
    sb.kill_daemon();
    sb.start_daemon();
    let after = sb.ok(&["ps", "-a", "--format", "{{.ID}} {{.Names}}"]);
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(String::from).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&before), sorted(&after));
    assert!(after.contains(" renamed3\n"), "{after}");
    assert!(after.contains(" moving7\n"), "{after}");
    assert_eq!(
        sb.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.RestartPolicy.Name}}",
            "moving7"
        ])
        .trim(),
        "no"
    );
    // The old name is free again.
    sb.ok(&["create", "--name", "r3", "busybox", "true"]);
}

/// Runs the berth CLI against the sandbox with extra environment, optionally in a new
/// network namespace (where it cannot reach any loopback registry itself) and with stdin.
fn berth_with(
    sb: &Sandbox,
    env: &[(&str, &Path)],
    own_netns: bool,
    args: &[&str],
    input: Option<&str>,
) -> Output {
    let mut cmd = if own_netns {
        let mut c = Command::new("unshare");
        c.args(["-n", "--"]).arg(BERTH);
        c
    } else {
        Command::new(BERTH)
    };
    cmd.arg("-H")
        .arg(format!("unix://{}", sb.sock().display()))
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(i) = input {
        child.stdin.take().unwrap().write_all(i.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// `berth login` asks the daemon (`POST /auth`) like `docker login`: run from a network
/// namespace that cannot reach the registry, it still logs in (the daemon checks), gives
/// docker's error and exit code 1 for a wrong password, stores the credentials docker-style
/// in its own config.json, and `logout` removes them.
#[test]
fn login_is_checked_by_the_daemon() {
    let Some(sb) = setup("login_is_checked_by_the_daemon") else {
        return;
    };
    let Some(reg) = HtpasswdRegistry::start(&sb.dir.join("registry")) else {
        eprintln!("SKIP login_is_checked_by_the_daemon: no docker-registry");
        return;
    };
    let addr = format!("127.0.0.1:{}", reg.port);
    let cfg = sb.dir.join("berth-config");
    let docker_cfg = sb.dir.join("docker-config-empty");
    std::fs::create_dir_all(&docker_cfg).unwrap();
    let env = [
        ("BERTH_CONFIG", cfg.as_path()),
        ("DOCKER_CONFIG", docker_cfg.as_path()),
        ("HOME", sb.dir.as_path()),
    ];
    let refused = format!(
        "Error response from daemon: login attempt to http://{addr}/v2/ failed with status: 401 Unauthorized"
    );

    // Bad flag combinations and no terminal to prompt on: docker's messages, exit 1.
    for args in [
        vec!["login", &addr],
        vec!["login", "-u", HTPASSWD_USER, &addr],
        vec!["login", "--password-stdin", &addr],
        vec![
            "login",
            "-u",
            HTPASSWD_USER,
            "-p",
            "x",
            "--password-stdin",
            &addr,
        ],
    ] {
        let d = sb.docker(&args);
        let b = berth_with(&sb, &env, false, &args, None);
        assert_eq!(d.status.code(), Some(1), "{d:?}");
        assert_eq!(b.status.code(), Some(1), "{b:?}");
        assert_eq!(text(&b.stderr), text(&d.stderr), "{args:?}");
    }

    // Wrong password: docker's message and exit code, from both CLIs; nothing stored.
    let d = sb.docker_in(
        &["login", "-u", HTPASSWD_USER, "--password-stdin", &addr],
        Some("wrong\n"),
    );
    assert_eq!(d.status.code(), Some(1), "{d:?}");
    assert!(text(&d.stderr).contains(&refused), "{}", text(&d.stderr));
    let b = berth_with(
        &sb,
        &env,
        true,
        &["login", "-u", HTPASSWD_USER, "--password-stdin", &addr],
        Some("wrong\n"),
    );
    assert_eq!(b.status.code(), Some(1), "{b:?}");
    assert_eq!(text(&b.stderr), format!("{refused}\n"));
    assert!(!cfg.join("config.json").exists());

    // Right password, from a netns where the registry is unreachable: the daemon checks.
    let b = berth_with(
        &sb,
        &env,
        true,
        &["login", "-u", HTPASSWD_USER, "--password-stdin", &addr],
        Some(&format!("{HTPASSWD_PASSWORD}\n")),
    );
    assert_eq!(b.status.code(), Some(0), "{b:?}");
    assert_eq!(text(&b.stdout), "Login Succeeded\n");
    assert!(
        text(&b.stderr).contains(&format!(
            "WARNING! Your credentials are stored unencrypted in '{}'.",
            cfg.join("config.json").display()
        )),
        "{}",
        text(&b.stderr)
    );
    let d = sb.docker_in(
        &["login", "-u", HTPASSWD_USER, "--password-stdin", &addr],
        Some(&format!("{HTPASSWD_PASSWORD}\n")),
    );
    assert!(d.status.success(), "{d:?}");
    assert!(text(&d.stdout).contains("Login Succeeded"));
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.join("config.json")).unwrap()).unwrap();
    let auth = stored["auths"][&addr]["auth"].as_str().unwrap().to_string();
    let decoded = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(auth.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(
        text(&decoded.stdout),
        format!("{HTPASSWD_USER}:{HTPASSWD_PASSWORD}")
    );

    // The stored credentials are what push sends: a push through the daemon works.
    let target = format!("{addr}/berth/gaps:1");
    sb.ok(&["tag", "busybox", &target]);
    let p = berth_with(&sb, &env, false, &["push", &target], None);
    assert!(p.status.success(), "{p:?}");

    // logout: removed; docker 28 prints the same line whether or not any were stored.
    for _ in 0..2 {
        let o = berth_with(&sb, &env, false, &["logout", &addr], None);
        assert!(o.status.success(), "{o:?}");
        assert_eq!(
            text(&o.stdout),
            format!("Removing login credentials for {addr}\n")
        );
        let d = sb.docker(&["logout", &addr]);
        assert_eq!(text(&d.stdout), text(&o.stdout));
    }
    let stored = std::fs::read_to_string(cfg.join("config.json")).unwrap_or_default();
    assert!(!stored.contains(&addr), "{stored}");
}

/// A tiny HTTP server on 127.0.0.1 serving fixed files (404 for anything else) until dropped.
struct FileServer {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl FileServer {
    fn start(files: Vec<(String, Vec<u8>)>) -> FileServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut c) = conn else { continue };
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&req)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                let _ = match files.iter().find(|(p, _)| *p == path) {
                    Some((_, body)) => c
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/x-tar\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|()| c.write_all(body)),
                    None => c.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n",
                    ),
                };
            }
        });
        FileServer { port, stop }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// `docker import URL` and `berth import URL`: the daemon downloads the tarball, answering
/// `Downloading from`, `Importing` progress and the image ID; the image runs and carries
/// dockerd's "Imported from URL" history; a 404 is dockerd's error and exit code 1.
#[test]
fn import_from_a_url_is_fetched_by_the_daemon() {
    let Some(sb) = setup("import_from_a_url_is_fetched_by_the_daemon") else {
        return;
    };
    let root = sb.dir.join("urlroot");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::fs::write(root.join("hello.txt"), "from a url\n").unwrap();
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["-cf", "-", "."])
        .output()
        .unwrap()
        .stdout;
    assert!(tar.len() > 1_000_000);
    let gz = {
        let mut c = Command::new("gzip")
            .arg("-c")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut w = c.stdin.take().unwrap();
        let t2 = tar.clone();
        let feeder = std::thread::spawn(move || w.write_all(&t2).unwrap());
        let o = c.wait_with_output().unwrap();
        feeder.join().unwrap();
        o.stdout
    };
    let srv = FileServer::start(vec![
        ("/rootfs.tar".into(), tar.clone()),
        ("/rootfs.tar.gz".into(), gz),
    ]);
    let url = format!("http://127.0.0.1:{}/rootfs.tar", srv.port);

    // The docker CLI.
    let out = sb.ok(&[
        "import",
        "-c",
        "CMD [\"/bin/busybox\", \"cat\", \"/hello.txt\"]",
        &url,
        "fromurl:1",
    ]);
    let id = out.lines().last().unwrap_or("").trim().to_string();
    assert!(id.starts_with("sha256:"), "{out}");
    assert_eq!(sb.ok(&["run", "--rm", "fromurl:1"]), "from a url\n");
    assert_eq!(
        sb.ok(&[
            "history",
            "--no-trunc",
            "--format",
            "{{.Comment}}",
            "fromurl:1"
        ])
        .trim(),
        format!("Imported from {url}")
    );

    // The berth CLI.
    let b = sb.berth(&["import", "-m", "by berth", &url, "fromurl:2"]);
    assert!(b.status.success(), "{b:?}");
    let out = text(&b.stdout);
    assert!(
        out.starts_with(&format!("Downloading from {url}\n")),
        "{out}"
    );
    assert!(
        out.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("sha256:"),
        "{out}"
    );
    assert_eq!(
        sb.ok(&[
            "run",
            "--rm",
            "fromurl:2",
            "/bin/busybox",
            "cat",
            "/hello.txt"
        ]),
        "from a url\n"
    );

    // A compressed tarball, and a URL without a scheme (dockerd makes it http://).
    let o = Command::new("curl")
        .args(["-s", "-X", "POST", "--unix-socket"])
        .arg(sb.sock())
        .arg(format!(
            "http://berth/images/create?fromSrc=127.0.0.1:{}/rootfs.tar.gz&repo=fromurl&tag=gz",
            srv.port
        ))
        .output()
        .unwrap();
    assert!(
        text(&o.stdout).contains(&format!(
            "Downloading from http://127.0.0.1:{}/rootfs.tar.gz",
            srv.port
        )),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(
        sb.ok(&[
            "run",
            "--rm",
            "fromurl:gz",
            "/bin/busybox",
            "cat",
            "/hello.txt"
        ]),
        "from a url\n"
    );

    // The messages as dockerd sends them.
    let o = Command::new("curl")
        .args(["-s", "-X", "POST", "--unix-socket"])
        .arg(sb.sock())
        .arg(format!(
            "http://berth/images/create?fromSrc={url}&repo=fromurl&tag=3"
        ))
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["status"], format!("Downloading from {url}"));
    let progress: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["status"] == "Importing")
        .collect();
    assert!(!progress.is_empty(), "{lines:?}");
    let last = progress.last().unwrap();
    assert_eq!(last["progressDetail"]["current"], tar.len() as u64);
    assert_eq!(last["progressDetail"]["total"], tar.len() as u64);
    assert!(last["progress"].as_str().unwrap().starts_with("[====="));
    let end = lines.last().unwrap()["status"].as_str().unwrap();
    assert!(end.starts_with("sha256:"), "{lines:?}");

    // Missing: dockerd's error, exit 1, nothing imported.
    let missing = format!("http://127.0.0.1:{}/nosuch.tar", srv.port);
    let before = sb.ok(&["images", "-q"]);
    for o in [
        sb.docker(&["import", &missing, "nope:1"]),
        sb.berth(&["import", &missing, "nope:1"]),
    ] {
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        assert_eq!(
            text(&o.stderr),
            format!(
                "Error response from daemon: failed to GET {missing} with status 404 Not Found: not found\n"
            )
        );
    }
    // Nothing listens: the connection error, named.
    let port = free_port();
    let o = sb.docker(&["import", &format!("http://127.0.0.1:{port}/x.tar")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).starts_with(&format!(
            "Error response from daemon: Get \"http://127.0.0.1:{port}/x.tar\""
        )),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(sb.ok(&["images", "-q"]), before);
}

/// `cp` between two containers (and between two host paths) is refused by the docker CLI
/// itself; the berth CLI refuses it the same way.
#[test]
fn cp_between_containers_is_refused_like_docker() {
    let Some(sb) = setup("cp_between_containers_is_refused_like_docker") else {
        return;
    };
    sb.ok(&["create", "--name", "c1", "busybox", "true"]);
    sb.ok(&["create", "--name", "c2", "busybox", "true"]);
    for (args, msg) in [
        (
            ["cp", "c1:/etc/passwd", "c2:/tmp/"],
            "copying between containers is not supported\n",
        ),
        (
            ["cp", "/etc/hostname", "/tmp/x"],
            "must specify at least one container source\n",
        ),
    ] {
        let d = sb.docker(&args);
        let b = sb.berth(&args);
        assert_eq!(d.status.code(), Some(1), "{d:?}");
        assert_eq!(text(&d.stderr), msg);
        assert_eq!(b.status.code(), Some(1), "{b:?}");
        assert_eq!(text(&b.stderr), msg);
    }
}

fn api(sb: &Sandbox, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
        "--unix-socket",
    ])
    .arg(sb.sock());
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "-d", b]);
    }
    let o = c.arg(format!("http://berth{path}")).output().unwrap();
    let t = text(&o.stdout);
    let (body, code) = t.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

/// Execs live in the daemon's memory as in dockerd: after the daemon is killed and
/// restarted, an old exec ID is 404 "No such exec instance", while the container (which
/// kept running) takes new execs: output, exit codes, stdin, env and user.
#[test]
fn execs_across_a_daemon_restart() {
    let Some(mut sb) = setup("execs_across_a_daemon_restart") else {
        return;
    };
    sb.ok(&["run", "-d", "--name", "live", "busybox", "sleep", "1000"]);
    let (code, body) = api(
        &sb,
        "POST",
        "/containers/live/exec",
        Some(r#"{"Cmd":["echo","old"],"AttachStdout":true}"#),
    );
    assert_eq!(code, 201, "{body}");
    let exec_id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _) = api(&sb, "GET", &format!("/exec/{exec_id}/json"), None);
    assert_eq!(code, 200);
    let pid = sb.ok(&["inspect", "-f", "{{.State.Pid}}", "live"]);

    sb.kill_daemon();
    sb.start_daemon();

    let (code, body) = api(&sb, "GET", &format!("/exec/{exec_id}/json"), None);
    assert_eq!(code, 404);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["message"],
        format!("No such exec instance: {exec_id}")
    );
    let (code, body) = api(
        &sb,
        "POST",
        &format!("/exec/{exec_id}/start"),
        Some(r#"{"Detach":true}"#),
    );
    assert_eq!(code, 404, "{body}");
    // The container survived, same process, and takes new execs.
    assert_eq!(sb.ok(&["inspect", "-f", "{{.State.Pid}}", "live"]), pid);
    assert_eq!(sb.ok(&["exec", "live", "echo", "after"]), "after\n");
    assert_eq!(sb.code(&["exec", "live", "sh", "-c", "exit 7"]), 7);
    assert_eq!(
        text(
            &sb.docker_in(&["exec", "-i", "live", "cat"], Some("piped\n"))
                .stdout
        ),
        "piped\n"
    );
    assert_eq!(
        sb.ok(&[
            "exec",
            "-e",
            "X=1",
            "-u",
            "0:0",
            "-w",
            "/bin",
            "live",
            "sh",
            "-c",
            "echo $X $(id -u) $PWD"
        ]),
        "1 0 /bin\n"
    );
    let b = sb.berth(&["exec", "live", "echo", "berth"]);
    assert_eq!(text(&b.stdout), "berth\n");
    // The docker CLI's view of the old exec: the same 404.
    let o = sb.docker(&["exec", "-d", "live", "true"]);
    assert!(o.status.success());
    let o = sb.docker(&["container", "inspect", "-f", "{{.ExecIDs}}", "live"]);
    assert!(!text(&o.stdout).contains(&exec_id), "{o:?}");
}

/// A running container renamed on a user network answers to its new name in the embedded
/// DNS (and in inspect's DNSNames), no longer to the old one, as dockerd updates them.
#[test]
fn rename_moves_a_running_containers_dns_name() {
    let Some(sb) = setup("rename_moves_a_running_containers_dns_name") else {
        return;
    };
    sb.ok(&["network", "create", "gapsnet"]);
    sb.ok(&[
        "run",
        "-d",
        "--network",
        "gapsnet",
        "--name",
        "ga",
        "busybox",
        "sleep",
        "1000",
    ]);
    sb.ok(&[
        "run",
        "-d",
        "--network",
        "gapsnet",
        "--name",
        "gb",
        "busybox",
        "sleep",
        "1000",
    ]);
    let ip = sb.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.gapsnet.IPAddress}}",
        "ga",
    ]);
    sb.ok(&["rename", "ga", "ga2"]);
    let found = sb.docker(&["exec", "gb", "busybox", "nslookup", "ga2"]);
    assert!(found.status.success(), "{found:?}");
    assert!(
        text(&found.stdout).contains(&format!("Address: {}", ip.trim())),
        "{found:?}"
    );
    assert!(!sb
        .docker(&["exec", "gb", "busybox", "nslookup", "ga"])
        .status
        .success());
    let names = sb.ok(&[
        "inspect",
        "-f",
        "{{json .NetworkSettings.Networks.gapsnet.DNSNames}}",
        "ga2",
    ]);
    assert!(names.starts_with("[\"ga2\","), "{names}");
    sb.ok(&["rm", "-f", "ga2", "gb"]);
    sb.ok(&["network", "rm", "gapsnet"]);
}
