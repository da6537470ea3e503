//! The server driven by berth's typed client and by raw HTTP, against the fake backend.

mod common;
mod fake;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use api::backend::*;
use api::client::FrameReader;
use api::stream::{Demuxer, Frame, StdStream};
use api::types::*;
use api::{ApiVersion, Client, ClientError, Filters, ServerConfig};
use bytes::Bytes;
use common::{raw, TestServer};
use futures_util::{stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

fn api_err(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Api { status, error } => (status, error.message().to_string()),
        other => panic!("expected a daemon error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_get_and_head_carry_docker_headers() {
    let t = TestServer::start().await;
    let r = raw(&t.sock, "GET", "/_ping", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"OK");
    // Title-cased as dockerd writes them.
    assert!(r.head.contains("\r\nApi-Version: 1.47\r\n"), "{}", r.head);
    assert!(r.head.contains("\r\nOstype: linux\r\n"), "{}", r.head);
    assert_eq!(r.header("docker-experimental").as_deref(), Some("false"));
    assert_eq!(r.header("builder-version").as_deref(), Some("1"));
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("no-cache, no-store, must-revalidate")
    );
    assert_eq!(r.header("pragma").as_deref(), Some("no-cache"));
    let h = raw(&t.sock, "HEAD", "/_ping", &[], b"").await;
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-length").as_deref(), Some("0"));
    assert_eq!(h.header("api-version").as_deref(), Some("1.47"));
    let v = raw(&t.sock, "GET", "/v1.41/_ping", &[], b"").await;
    assert_eq!(v.status, 200);

    let p = t.client().ping().await.unwrap();
    assert_eq!(p.api_version, Some(ApiVersion::new(1, 47)));
    assert_eq!(p.os_type, "linux");
    assert_eq!(p.builder_version, "1");
    assert_eq!(p.swarm, "inactive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_negotiation() {
    let t = TestServer::start().await;
    let r = raw(&t.sock, "GET", "/v1.99/version", &[], b"").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "client version 1.99 is too new. Maximum supported API version is 1.47"
    );
    let r = raw(&t.sock, "GET", "/v1.12/containers/json", &[], b"").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
    );
    // Unversioned: the newest version.
    let r = raw(&t.sock, "GET", "/version", &[], b"").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["ApiVersion"], "1.47");
    assert_eq!(v["MinAPIVersion"], "1.24");
    assert_eq!(v["Components"][0]["Details"]["ApiVersion"], "1.47");
    assert_eq!(v["Components"][0]["Details"]["MinAPIVersion"], "1.24");
    for v in ["1.24", "1.41", "1.47"] {
        let r = raw(&t.sock, "GET", &format!("/v{v}/version"), &[], b"").await;
        assert_eq!(r.status, 200, "version {v}");
    }

    // The client negotiates to the server's version...
    let c = t.client();
    assert_eq!(c.api_version().await.unwrap(), ApiVersion::new(1, 47));
    assert_eq!(c.version().await.unwrap().api_version, "1.47");
    // ...or to an older server's.
    let old = TestServer::start_with(|c| c.max_api_version = ApiVersion::new(1, 41)).await;
    let c = old.client();
    assert_eq!(c.api_version().await.unwrap(), ApiVersion::new(1, 41));
    assert_eq!(c.info().await.unwrap().name, "fakehost");
    // A pinned version too new for the server gets Docker's error.
    let pinned = old.client().with_version(ApiVersion::new(1, 45));
    let (status, msg) = api_err(pinned.info().await.unwrap_err());
    assert_eq!(status, 400);
    assert_eq!(
        msg,
        "client version 1.45 is too new. Maximum supported API version is 1.41"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_error_shapes_and_unsupported_features() {
    let t = TestServer::start().await;
    let s = &t.sock;
    let r = raw(s, "GET", "/v1.47/nope", &[], b"").await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (404, "page not found".into())
    );
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let r = raw(s, "GET", "/v1.47/containers/nosuch/json", &[], b"").await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (404, "No such container: nosuch".into())
    );
    for p in [
        "/v1.47/swarm",
        "/v1.47/services",
        "/v1.47/nodes",
        "/v1.47/tasks",
        "/v1.47/secrets",
        "/v1.47/configs",
    ] {
        let r = raw(s, "GET", p, &[], b"").await;
        assert_eq!(r.status, 503, "{p}");
        assert_eq!(
            r.json()["message"],
            "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."
        );
    }
    let r = raw(s, "POST", "/v1.47/swarm/leave", &[], b"").await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (503, "This node is not part of a swarm".into())
    );
    let r = raw(s, "GET", "/v1.47/plugins", &[], b"").await;
    assert_eq!((r.status, r.json()), (200, serde_json::json!([])));
    let r = raw(s, "GET", "/v1.47/plugins/foo/json", &[], b"").await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (404, "plugin \"foo\" not found".into())
    );
    let r = raw(
        s,
        "GET",
        "/v1.47/containers/json?filters=%7B%22foo%22%3A%5B%22x%22%5D%7D",
        &[],
        b"",
    )
    .await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (400, "invalid filter 'foo'".into())
    );
    let r = raw(s, "GET", "/v1.47/volumes", &[], b"").await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (501, "volume list is not implemented on this backend".into())
    );
    let r = raw(s, "OPTIONS", "/v1.47/anything", &[], b"").await;
    assert_eq!(r.status, 200);

    let id = t.fake.add_running("web", false);
    let c = t.client();
    // Start of a running container: 304 without body, not an error for the client.
    let r = raw(
        s,
        "POST",
        &format!("/v1.47/containers/{id}/start"),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    c.container_start("web").await.unwrap();
    // Start with a HostConfig body is refused as Docker does.
    let r = raw(
        s,
        "POST",
        "/v1.47/containers/web/start",
        &[("Content-Type", "application/json")],
        br#"{"Binds":["/a:/b"]}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    // Conflict on name.
    let req = ContainerCreateRequest {
        config: ContainerConfig {
            image: "busybox".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    c.container_create(Some("dup"), None, &req).await.unwrap();
    let (status, msg) = api_err(
        c.container_create(Some("dup"), None, &req)
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 409);
    assert!(
        msg.starts_with("Conflict. The container name \"/dup\" is already in use"),
        "{msg}"
    );
    let (status, msg) = api_err(
        c.container_create(Some("-bad"), None, &req)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (status, msg.as_str()),
        (
            400,
            "Invalid container name (-bad), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    );
    // Kill errors are prefixed as Docker does.
    let (status, msg) = api_err(c.container_kill("nosuch", None).await.unwrap_err());
    assert_eq!(
        (status, msg.as_str()),
        (
            404,
            "cannot kill container: nosuch: No such container: nosuch"
        )
    );
    // Logs need a stream.
    let r = raw(s, "GET", "/v1.47/containers/web/logs", &[], b"").await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (
            400,
            "Bad parameters: you must choose at least one stream".into()
        )
    );
    // Create with a wrong content type, an empty body.
    let r = raw(
        s,
        "POST",
        "/v1.47/containers/create",
        &[("Content-Type", "text/plain")],
        b"{}",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "unsupported Content-Type header (text/plain): must be 'application/json'"
    );
    let r = raw(
        s,
        "POST",
        "/v1.47/containers/create",
        &[("Content-Type", "application/json")],
        b"",
    )
    .await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (
            400,
            "invalid JSON: got EOF while reading request body".into()
        )
    );
    let r = raw(
        s,
        "POST",
        "/v1.47/containers/create",
        &[("Content-Type", "application/json")],
        b"{bad",
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(c
        .container_inspect("nosuch")
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_lifecycle_with_the_client() {
    let t = TestServer::start().await;
    let c = t.client();
    let req: ContainerCreateRequest = serde_json::from_value(serde_json::json!({
        "Image": "busybox", "Cmd": ["sh"], "Labels": {"app": "x"}, "User": null,
        "HostConfig": {"NetworkMode": "default", "PidsLimit": 0, "AutoRemove": false}
    }))
    .unwrap();
    let created = c.container_create(Some("life"), None, &req).await.unwrap();
    assert_eq!(created.id.len(), 64);
    // The server applied Docker's compatibility rules before the backend saw it.
    let seen = t.fake.state.lock().unwrap().last_create.clone().unwrap();
    let hc = seen.host_config.unwrap();
    assert_eq!(hc.network_mode, "bridge");
    assert_eq!(hc.resources.pids_limit, None);

    let all = c
        .container_list(&ContainerListOptions {
            all: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].names, vec!["/life"]);
    let running = c
        .container_list(&ContainerListOptions::default())
        .await
        .unwrap();
    assert!(running.is_empty());
    let filtered = c
        .container_list(&ContainerListOptions {
            all: true,
            filters: Filters::new().with("label", "app=nope"),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(filtered.is_empty());

    // Wait registered before the stop resolves with the exit code.
    let c2 = t.client();
    c.container_start("life").await.unwrap();
    let waiter =
        tokio::spawn(async move { c2.container_wait("life", WaitCondition::NotRunning).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished());
    c.container_stop(
        "life",
        &StopOptions {
            timeout: Some(1),
            signal: None,
        },
    )
    .await
    .unwrap();
    let w = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(w.status_code, 143);
    // Stop of a stopped container: 304, fine for the client.
    c.container_stop("life", &StopOptions::default())
        .await
        .unwrap();
    let insp = c.container_inspect("life").await.unwrap();
    assert_eq!(insp.state.status, "exited");
    assert_eq!(insp.name, "/life");
    assert_eq!(insp.config.labels.unwrap()["app"], "x");
    // Waiting on a stopped container answers at once.
    let w = tokio::time::timeout(
        Duration::from_secs(5),
        c.container_wait("life", WaitCondition::NotRunning),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(w.status_code, 143);
    c.container_rename("life", "life2").await.unwrap();
    c.container_remove("life2", &ContainerRemoveOptions::default())
        .await
        .unwrap();
    assert!(c
        .container_inspect("life2")
        .await
        .unwrap_err()
        .is_not_found());

    // Top, changes, update, resize, commit, prune.
    t.fake.add_running("busy", false);
    let top = c.container_top("busy", Some("aux")).await.unwrap();
    assert_eq!(top.titles, vec!["UID", "PID", "CMD"]);
    assert_eq!(top.processes[0][2], "sh aux");
    assert_eq!(
        c.container_changes("busy").await.unwrap()[1].kind,
        CHANGE_ADDED
    );
    c.container_update("busy", &ContainerUpdateRequest::default())
        .await
        .unwrap();
    c.container_resize("busy", 24, 80).await.unwrap();
    let img = c
        .container_commit(&CommitOptions {
            container: "busy".into(),
            repo: "x".into(),
            pause: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(img.id.starts_with("sha256:"));
    c.container_prune(&Filters::new()).await.unwrap();
    let (status, msg) = api_err(
        c.container_remove("busy", &ContainerRemoveOptions::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 409);
    assert!(msg.contains("container is running"), "{msg}");
    c.container_remove(
        "busy",
        &ContainerRemoveOptions {
            force: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_logs_events_stats() {
    let t = TestServer::start().await;
    let c = t.client();
    t.fake.add_running("web", false);
    t.fake.add_running("tty", true);

    // Logs without a TTY are multiplexed (API >= 1.42 says so in the Content-Type).
    let r = raw(
        &t.sock,
        "GET",
        "/v1.47/containers/web/logs?stdout=1&stderr=1",
        &[],
        b"",
    )
    .await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/vnd.docker.multiplexed-stream")
    );
    let mut d = Demuxer::new();
    d.push(&r.body);
    assert_eq!(d.next_frame().unwrap(), Some(Frame::stdout("out line 1\n")));
    assert_eq!(d.next_frame().unwrap(), Some(Frame::stderr("err line 1\n")));
    // Before 1.42 the type is raw-stream even though the bytes are multiplexed.
    let r = raw(
        &t.sock,
        "GET",
        "/v1.41/containers/web/logs?stdout=1",
        &[],
        b"",
    )
    .await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/vnd.docker.raw-stream")
    );
    assert_eq!(r.body[0], 1);
    // With a TTY: raw.
    let r = raw(
        &t.sock,
        "GET",
        "/v1.47/containers/tty/logs?stdout=1&stderr=1",
        &[],
        b"",
    )
    .await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/vnd.docker.raw-stream")
    );
    assert_eq!(r.body, b"out line 1\nerr line 1\nout line 2\n");

    let opts = LogsOptions {
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let (out, err) = c
        .container_logs("web", &opts, false)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(out, b"out line 1\nout line 2\n");
    assert_eq!(err, b"err line 1\n");

    // Events: JSON lines; with `until` the stream ends.
    let evs: Vec<_> = c
        .events(&EventsOptions {
            until: Some("200".parse().unwrap()),
            ..Default::default()
        })
        .await
        .unwrap()
        .collect()
        .await;
    let evs: Vec<EventMessage> = evs.into_iter().map(Result::unwrap).collect();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[1].action, "start");
    assert_eq!(evs[1].actor.attributes["name"], "web");
    // Live events arrive before the stream ends (it never does here).
    let mut live = c
        .events(&EventsOptions {
            filters: Filters::new().with("event", "start"),
            ..Default::default()
        })
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), live.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.action, "start");
    // Headers of endless streams (events, wait) are sent before the first item.
    for (method, path) in [
        (
            "GET",
            "/v1.47/events?filters=%7B%22event%22%3A%5B%22nomatch%22%5D%7D",
        ),
        ("POST", "/v1.47/containers/web/wait"),
    ] {
        let mut s = UnixStream::connect(&t.sock).await.unwrap();
        s.write_all(
            format!("{method} {path} HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .expect("headers at once")
                .unwrap();
            assert!(n > 0);
            head.extend_from_slice(&buf[..n]);
        }
        assert!(head.starts_with(b"HTTP/1.1 200 OK\r\n"), "{path}");
    }
    let r = raw(&t.sock, "GET", "/v1.47/events?since=10&until=5", &[], b"").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "`since` time (10) cannot be after `until` time (5)"
    );
    let r = raw(
        &t.sock,
        "GET",
        "/v1.47/events?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 400);

    // Stats: a stream, or one JSON document.
    let samples: Vec<_> = c.container_stats("web").await.unwrap().collect().await;
    assert_eq!(samples.len(), 3);
    assert_eq!(
        samples[2].as_ref().unwrap().cpu_stats.cpu_usage.total_usage,
        3000
    );
    let one = c.container_stats_once("web", true).await.unwrap();
    assert_eq!(one.memory_stats.limit, Some(1 << 30));
    let r = raw(
        &t.sock,
        "GET",
        "/v1.47/containers/web/stats?stream=false",
        &[],
        b"",
    )
    .await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    assert!(r.header("transfer-encoding").is_none());
    assert_eq!(r.json()["memory_stats"]["usage"], 1 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_progress_auth_and_byte_streams() {
    let t = TestServer::start().await;
    let c = t.client();
    let auth = AuthConfig {
        username: "u".into(),
        password: "p".into(),
        serveraddress: "localhost:5000".into(),
        ..Default::default()
    };
    let msgs: Vec<_> = c
        .image_pull(&ImagePullOptions {
            from_image: "busybox".into(),
            tag: "1.36".into(),
            auth: auth.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .collect()
        .await;
    let msgs: Vec<JsonMessage> = msgs.into_iter().map(Result::unwrap).collect();
    assert_eq!(msgs.len(), 5);
    assert_eq!(msgs[1].progress_detail.as_ref().unwrap().total, Some(100));
    assert_eq!(
        msgs[4].status.as_deref(),
        Some("Status: Downloaded newer image for busybox:1.36")
    );
    assert_eq!(
        t.fake.state.lock().unwrap().last_auth.clone().unwrap(),
        auth
    );
    // An error before any progress is an HTTP error...
    let e = c
        .image_pull(&ImagePullOptions {
            from_image: "nosuchimage".into(),
            ..Default::default()
        })
        .await
        .err()
        .unwrap();
    assert!(e.is_not_found(), "{e}");
    // ...after some progress it comes in band.
    let r = raw(
        &t.sock,
        "POST",
        "/v1.47/images/create?fromImage=midfail&tag=latest",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let lines: Vec<serde_json::Value> = r
        .body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["errorDetail"]["message"], "unexpected EOF");
    assert_eq!(lines[1]["error"], "unexpected EOF");
    let mut s = c
        .image_pull(&ImagePullOptions {
            from_image: "midfail".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(s.next().await.unwrap().is_ok());
    match s.next().await.unwrap() {
        Err(ClientError::Stream(m)) => assert_eq!(m, "unexpected EOF"),
        other => panic!("{other:?}"),
    }
    assert!(s.next().await.is_none());
    // Bad auth header.
    let r = raw(
        &t.sock,
        "POST",
        "/v1.47/images/create?fromImage=busybox",
        &[("X-Registry-Auth", "!!!")],
        b"",
    )
    .await;
    assert_eq!(r.status, 400);

    let pushed: Vec<_> = c
        .image_push(&ImagePushOptions {
            name: "localhost:5000/a/b".into(),
            tag: "v1".into(),
            auth,
            ..Default::default()
        })
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(
        pushed[0].as_ref().unwrap().status.as_deref(),
        Some("The push refers to repository [localhost:5000/a/b]")
    );

    // API < 1.44 clients get VirtualSize (CLI 20.10 shows it as SIZE).
    let r = raw(&t.sock, "GET", "/v1.41/images/json", &[], b"").await;
    assert_eq!(r.json()[0]["VirtualSize"], 4_400_000);
    let r = raw(&t.sock, "GET", "/v1.47/images/json", &[], b"").await;
    assert!(r.json()[0].get("VirtualSize").is_none());
    let list = c.image_list(&ImageListOptions::default()).await.unwrap();
    assert_eq!(list[0].repo_tags, vec!["busybox:latest"]);
    let insp = c.image_inspect("busybox:latest").await.unwrap();
    assert_eq!(insp.os, "linux");
    assert!(c
        .image_inspect("localhost:5000/nope/x:1")
        .await
        .unwrap_err()
        .is_not_found());
    c.image_tag("busybox", "localhost:5000/x", "v2")
        .await
        .unwrap();
    assert_eq!(c.image_history("busybox").await.unwrap().len(), 1);
    let del = c
        .image_remove("localhost:5000/x:v2", &ImageRemoveOptions::default())
        .await
        .unwrap();
    assert_eq!(del[0].untagged.as_deref(), Some("localhost:5000/x:v2"));
    c.image_prune(&Filters::new().with("dangling", "true"))
        .await
        .unwrap();

    // Save, load, import: byte streams both ways.
    let mut saved = c
        .image_save(&["busybox".into(), "alpine".into()])
        .await
        .unwrap();
    let mut data = Vec::new();
    while let Some(chunk) = saved.next().await {
        data.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(data, b"SAVED:busybox,alpine");
    let upload: api::stream::ByteStream = Box::pin(stream::iter(vec![
        Ok(Bytes::from(vec![7u8; 100_000])),
        Ok(Bytes::from(vec![8u8; 5])),
    ]));
    let loaded: Vec<_> = c.image_load(upload, false).await.unwrap().collect().await;
    assert_eq!(
        loaded[0].as_ref().unwrap().stream.as_deref(),
        Some("Loaded image: busybox:latest (100005 bytes)\n")
    );
    let upload: api::stream::ByteStream = Box::pin(stream::once(async {
        Ok(Bytes::from_static(b"0123456789"))
    }));
    let imported: Vec<_> = c
        .image_import(upload, "imp", "v1", "", &[])
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(
        imported[0].as_ref().unwrap().status.as_deref(),
        Some(format!("sha256:{:064x}", 10).as_str())
    );
    let r = raw(&t.sock, "GET", "/v1.47/images/busybox/get", &[], b"").await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/x-tar")
    );
    assert_eq!(r.body, b"SAVED:busybox");

    // Build is not in the fake: Docker's 501 shape.
    let r = raw(&t.sock, "POST", "/v1.47/build?t=x", &[], b"").await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (501, "image build is not implemented on this backend".into())
    );
    let r = raw(&t.sock, "POST", "/v1.47/build/prune", &[], b"").await;
    assert_eq!(
        (r.status, r.json()["SpaceReclaimed"].clone()),
        (200, 0.into())
    );

    // Login.
    assert_eq!(
        c.auth(&AuthConfig {
            username: "u".into(),
            password: "p".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .status,
        "Login Succeeded"
    );
    let (status, _) = api_err(
        c.auth(&AuthConfig {
            username: "u".into(),
            password: "bad".into(),
            ..Default::default()
        })
        .await
        .unwrap_err(),
    );
    assert_eq!(status, 401);
    assert_eq!(c.disk_usage().await.unwrap().layers_size, 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_and_export() {
    let t = TestServer::start().await;
    let c = t.client();
    t.fake.add_running("box", false);
    let stat = c
        .container_archive_stat("box", "/etc/hostname")
        .await
        .unwrap();
    assert_eq!(stat.name, "hostname");
    assert_eq!(stat.mode, 0o644);
    let r = raw(
        &t.sock,
        "HEAD",
        "/v1.47/containers/box/archive?path=/etc/missing",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 404);
    let e = c
        .container_archive_stat("box", "/etc/missing")
        .await
        .unwrap_err();
    assert!(e.is_not_found());
    let r = raw(&t.sock, "GET", "/v1.47/containers/box/archive", &[], b"").await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (400, "path cannot be empty".into())
    );
    let (stat, mut tar) = c
        .container_archive_get("box", "/etc/hostname")
        .await
        .unwrap();
    assert_eq!(stat.size, 5);
    assert_eq!(
        tar.next().await.unwrap().unwrap(),
        Bytes::from_static(b"TARDATA")
    );
    let up: api::stream::ByteStream = Box::pin(stream::iter(
        (0..10).map(|_| Ok(Bytes::from(vec![1u8; 1000]))),
    ));
    c.container_archive_put("box", "/tmp", &ArchivePutOptions::default(), up)
        .await
        .unwrap();
    let uploads = {
        let st = t.fake.state.lock().unwrap();
        st.containers
            .values()
            .find(|c| c.name == "box")
            .unwrap()
            .uploads
            .clone()
    };
    assert_eq!(uploads, vec![("/tmp".to_string(), 10_000)]);
    let mut exp = c.container_export("box").await.unwrap();
    let mut all = Vec::new();
    while let Some(b) = exp.next().await {
        all.extend_from_slice(&b.unwrap());
    }
    assert_eq!(all, b"tar-part-1tar-part-2");
}

async fn exec_cat(c: &Client, container: &str, tty: bool) -> String {
    let cfg = ExecConfig {
        attach_stdin: true,
        attach_stdout: true,
        attach_stderr: true,
        tty,
        cmd: Some(vec!["cat".into()]),
        ..Default::default()
    };
    c.exec_create(container, &cfg).await.unwrap().id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_hijack_echo_and_half_close() {
    let t = TestServer::start().await;
    let c = t.client();
    t.fake.add_running("box", false);
    for tty in [false, true] {
        let id = exec_cat(&c, "box", tty).await;
        let session = c
            .exec_start(
                &id,
                &ExecStartConfig {
                    tty,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(session.multiplexed(), !tty);
        let (mut out, mut input) = session.split();
        input.send(b"hello\n").await.unwrap();
        let f = tokio::time::timeout(Duration::from_secs(5), out.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(f, Frame::stdout("hello\n"));
        input.send(b"world\n").await.unwrap();
        let f = tokio::time::timeout(Duration::from_secs(5), out.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(f.data, Bytes::from_static(b"world\n"));
        // Half-close: the backend reads end of file, the process ends, the output ends.
        assert!(c.exec_inspect(&id).await.unwrap().running);
        input.close_write().await.unwrap();
        let end = tokio::time::timeout(Duration::from_secs(5), out.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(end, None);
        let insp = c.exec_inspect(&id).await.unwrap();
        assert_eq!(insp.exit_code, Some(0));
        assert!(!insp.running);
    }
    // Non-TTY output with stderr, multiplexed.
    let id = c
        .exec_create(
            "box",
            &ExecConfig {
                attach_stdout: true,
                attach_stderr: true,
                cmd: Some(vec!["echo".into(), "hi".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    let (out, _in) = c
        .exec_start(&id, &ExecStartConfig::default())
        .await
        .unwrap()
        .split();
    let (o, e) = out.collect().await.unwrap();
    assert_eq!(
        (o.as_slice(), e.as_slice()),
        (&b"hi\n"[..], &b"to stderr\n"[..])
    );
    // Detached start, resize, inspect errors.
    let id = c
        .exec_create(
            "box",
            &ExecConfig {
                cmd: Some(vec!["true".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    c.exec_start_detached(&id, &ExecStartConfig::default())
        .await
        .unwrap();
    c.exec_resize(&id, 10, 10).await.unwrap();
    let (status, msg) = api_err(c.exec_inspect("nosuch").await.unwrap_err());
    assert_eq!(
        (status, msg.as_str()),
        (404, "No such exec instance: nosuch")
    );
    let r = raw(
        &t.sock,
        "POST",
        "/v1.47/containers/box/exec",
        &[("Content-Type", "application/json")],
        br#"{"Cmd":[]}"#,
    )
    .await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (400, "No exec command specified".into())
    );
    // Starting an unknown exec answers 404 instead of upgrading.
    let e = c
        .exec_start("nosuch", &ExecStartConfig::default())
        .await
        .err()
        .unwrap();
    assert!(e.is_not_found());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_upgrade_bytes_and_detach_keys() {
    let t = TestServer::start().await;
    let c = t.client();
    // The exact 101 answer, read off the wire.
    t.fake.add_running("plain", false);
    let mut s = UnixStream::connect(&t.sock).await.unwrap();
    s.write_all(b"POST /v1.47/containers/plain/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&got).to_string();
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nUpgrade: tcp\r\n"), "{head}");
    s.write_all(b"ping").await.unwrap();
    s.shutdown().await.unwrap();
    let mut rest = got[got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..].to_vec();
    s.read_to_end(&mut rest).await.unwrap();
    assert_eq!(
        rest,
        api::stream::encode_frame(StdStream::Stdout, b"ping").to_vec()
    );

    // A TTY session ends on ctrl-p ctrl-q without closing the container's stdin.
    t.fake.add_running("term", true);
    let session = c
        .container_attach(
            "term",
            &AttachOptions {
                stdin: true,
                stdout: true,
                stderr: true,
                stream: true,
                ..Default::default()
            },
            true,
        )
        .await
        .unwrap();
    assert!(!session.multiplexed());
    let (mut out, mut input) = session.split();
    input.send(b"ls\r").await.unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), out.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
            .data,
        Bytes::from_static(b"ls\r")
    );
    input.send(&[0x10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    input.send(&[0x11]).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), out.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end, None, "the session ends on the detach keys");
    let insp = c.container_inspect("term").await.unwrap();
    assert!(insp.state.running, "detaching does not stop the container");

    // Invalid detach keys: 400 before any upgrade.
    let e = c
        .container_attach(
            "term",
            &AttachOptions {
                stdin: true,
                detach_keys: None,
                ..Default::default()
            },
            true,
        )
        .await;
    assert!(e.is_ok());
    let r = raw(
        &t.sock,
        "POST",
        "/v1.47/containers/term/attach?stdin=1&detachKeys=ctrl-foo",
        &[("Upgrade", "tcp"), ("Connection", "Upgrade")],
        b"",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "Invalid detach keys (ctrl-foo) provided: Unknown character: 'ctrl-foo'"
    );
    let r = raw(
        &t.sock,
        "POST",
        "/v1.47/containers/nosuch/attach?stdin=1",
        &[("Upgrade", "tcp"), ("Connection", "Upgrade")],
        b"",
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_hijack_without_upgrade() {
    let t = TestServer::start().await;
    let c = t.client();
    t.fake.add_running("box", false);
    let id = exec_cat(&c, "box", false).await;
    let body = br#"{"Detach":false,"Tty":false}"#;
    let mut s = UnixStream::connect(&t.sock).await.unwrap();
    let req = format!(
        "POST /v1.41/exec/{id}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // Old clients may send stdin right behind the request.
    let mut all = req.into_bytes();
    all.extend_from_slice(body);
    all.extend_from_slice(b"early ");
    s.write_all(&all).await.unwrap();
    s.write_all(b"late").await.unwrap();
    s.shutdown().await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&out[..end]).to_string();
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n"),
        "{head}"
    );
    assert!(head.contains("Api-Version: 1.47"), "{head}");
    let mut d = Demuxer::new();
    d.push(&out[end..]);
    let mut text = Vec::new();
    while let Some(f) = d.next_frame().unwrap() {
        text.extend_from_slice(&f.data);
    }
    assert_eq!(text, b"early late");
    assert_eq!(c.exec_inspect(&id).await.unwrap().exit_code, Some(0));
    // Errors still come as Docker JSON.
    let mut s = UnixStream::connect(&t.sock).await.unwrap();
    s.write_all(b"POST /exec/nosuch/start HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let r = common::parse_raw(&out, false);
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (404, "No such exec instance: nosuch".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_listener_and_socket_handling() {
    let t = TestServer::start_with(|c| c.tcp = Some("127.0.0.1:0".parse().unwrap())).await;
    let addr = t.tcp.unwrap();
    let c = Client::new(&format!("tcp://{addr}")).unwrap();
    assert_eq!(
        c.ping().await.unwrap().api_version,
        Some(ApiVersion::new(1, 47))
    );
    assert_eq!(c.info().await.unwrap().ncpu, 2);
    // Mode 0660 (root-only unless a group is given).
    let mode = std::fs::metadata(&t.sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    // A live socket is refused...
    let again = api::Server::bind(
        ServerConfig {
            unix_socket: Some(t.sock.clone()),
            ..Default::default()
        },
        t.fake.clone(),
    )
    .await;
    assert!(
        matches!(again, Err(api::ServerError::SocketInUse(_))),
        "{:?}",
        again.err()
    );
    // ...non-loopback TCP too.
    let remote = api::Server::bind(
        ServerConfig {
            tcp: Some("0.0.0.0:0".parse().unwrap()),
            ..Default::default()
        },
        t.fake.clone(),
    )
    .await;
    assert!(matches!(remote, Err(api::ServerError::NotLoopback(_))));
    let sock = t.sock.clone();
    t.stop().await;
    let tmp = tempfile::Builder::new()
        .prefix("berth-api-test")
        .tempdir()
        .unwrap();
    let dir = tmp.path().to_path_buf();
    assert!(!sock.exists(), "the socket is removed on shutdown");
    // A stale socket (nobody listening) is replaced; a group is applied.
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let s = api::Server::bind(
        ServerConfig {
            unix_socket: Some(stale.clone()),
            socket_group: Some("0".into()),
            ..Default::default()
        },
        fake::Fake::new(),
    )
    .await
    .unwrap();
    assert_eq!(s.unix_path(), Some(stale.as_path()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(s.serve(async {
        let _ = rx.await;
    }));
    let c = Client::new(&format!("unix://{}", stale.display())).unwrap();
    c.ping().await.unwrap();
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert!(!stale.exists());
    // A file in the way is not clobbered.
    let file = dir.join("file.sock");
    std::fs::write(&file, b"x").unwrap();
    let r = api::Server::bind(
        ServerConfig {
            unix_socket: Some(file.clone()),
            ..Default::default()
        },
        fake::Fake::new(),
    )
    .await;
    assert!(matches!(r, Err(api::ServerError::NotASocket(_))));
    let r = api::Server::bind(
        ServerConfig {
            unix_socket: Some(dir.join("g.sock")),
            socket_group: Some("no-such-group-xyz".into()),
            ..Default::default()
        },
        fake::Fake::new(),
    )
    .await;
    assert!(matches!(r, Err(api::ServerError::NoSuchGroup(_))));
    // Unreachable daemon: a clear error.
    let e = Client::new(&format!("unix://{}", dir.join("none.sock").display()))
        .unwrap()
        .ping()
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Cannot connect to the berth daemon at unix://"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_reader_over_body() {
    let t = TestServer::start().await;
    t.fake.add_running("web", false);
    let c = t.client();
    let mut r: FrameReader = c
        .container_logs(
            "web",
            &LogsOptions {
                stdout: true,
                ..Default::default()
            },
            false,
        )
        .await
        .unwrap();
    assert_eq!(r.next().await.unwrap(), Some(Frame::stdout("out line 1\n")));
    assert_eq!(r.next().await.unwrap(), Some(Frame::stdout("out line 2\n")));
    assert_eq!(r.next().await.unwrap(), None);
}
