//! The registry client against real peers: Debian's docker-registry (plain, htpasswd and
//! token auth), skopeo, and small fake servers for the failure cases a real registry will not
//! produce (oversized or lying manifests, redirects to another host).

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use image::content::ContentStore;
use image::digest::Digest;
use image::reference::Reference;
use registry::manifest::{self, Index};
use registry::{Client, ClientConfig, CredentialStore, Error, Platform, TerminalProgress};

fn config_in(dir: &Path) -> ClientConfig {
    ClientConfig {
        credentials: CredentialStore::new(dir.join("auth.json")),
        ..ClientConfig::default()
    }
}

fn client_in(dir: &Path) -> Client {
    Client::new(config_in(dir)).unwrap()
}

fn reference(reg: &Registry, repo: &str) -> Reference {
    Reference::parse(&format!("{}/{repo}", reg.addr())).unwrap()
}

fn store(dir: &Path, name: &str) -> ContentStore {
    ContentStore::open(dir.join(name)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_monolithic_and_chunked() {
    let reg = Registry::start(RegistryAuth::None);
    let t = tempfile::tempdir().unwrap();
    let src = store(t.path(), "src");
    let img = make_image(&src, "amd64", Some("hello"));
    let addr = reg.addr();

    // Monolithic upload.
    let c = client_in(t.path());
    let rec = Recorder::default();
    let r1 = reference(&reg, "test/busybox:v1");
    let pushed = c
        .push(&r1, &img.manifest, &img.media_type, &src, &rec)
        .await
        .unwrap();
    assert_eq!(pushed.digest, img.manifest_digest);
    assert_eq!(pushed.size, img.manifest.len() as u64);
    let lines = rec.lines();
    assert_eq!(
        lines[0],
        format!("The push refers to repository [{addr}/test/busybox]")
    );
    let busybox_diff = busybox_layer().1.short().to_string();
    assert!(rec.has(&format!("{busybox_diff}: Pushed")), "{lines:#?}");
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            "v1: digest: {} size: {}",
            img.manifest_digest,
            img.manifest.len()
        )
    );

    // Chunked upload (256 KiB PATCHes), from a client that knows no mount sources.
    let chunked = Client::new(ClientConfig {
        upload_chunk_size: Some(256 * 1024),
        ..config_in(t.path())
    })
    .unwrap();
    let rec2 = Recorder::default();
    let r2 = reference(&reg, "test/chunked:v2");
    let pushed2 = chunked
        .push(&r2, &img.manifest, &img.media_type, &src, &rec2)
        .await
        .unwrap();
    assert_eq!(pushed2.digest, img.manifest_digest);
    assert!(
        rec2.has(&format!("{busybox_diff}: Pushed")),
        "{:#?}",
        rec2.lines()
    );
    assert!(!rec2.lines().iter().any(|l| l.contains("Mounted")));
    let log = reg.log();
    let patches = log
        .lines()
        .filter(|l| l.contains("\"PATCH /v2/test/chunked/blobs/uploads/"))
        .count();
    let layer_size = busybox_layer().0.len();
    assert!(
        patches >= layer_size / (256 * 1024),
        "{patches} PATCH requests for {layer_size} bytes:\n{log}"
    );
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("\"PATCH /v2/test/busybox/"))
            .count(),
        0
    );

    // Pull both back into empty stores with a fresh client.
    for (r, tag, path) in [(&r1, "v1", "test/busybox"), (&r2, "v2", "test/chunked")] {
        let puller = client_in(t.path());
        let dst = store(t.path(), &format!("dst-{tag}"));
        let rec = Recorder::default();
        let p = puller.pull(r, None, &dst, &rec).await.unwrap();
        assert_eq!(p.digest, img.manifest_digest);
        assert_eq!(p.manifest.digest, img.manifest_digest);
        assert_eq!(p.manifest.bytes, img.manifest);
        assert_eq!(p.manifest.media_type, manifest::DOCKER_MANIFEST);
        assert_eq!(p.config, img.config);
        assert_eq!(p.image_id(), &img.config_digest);
        assert_eq!(
            p.layers
                .iter()
                .map(|l| l.digest.clone())
                .collect::<Vec<_>>(),
            img.layers
        );
        assert!(p.index.is_none());
        assert_eq!(p.layers_downloaded, 2);
        for d in img
            .layers
            .iter()
            .chain([&img.config_digest, &img.manifest_digest])
        {
            dst.verify(d).unwrap();
        }
        assert!(ingest_files(dst.root()).is_empty());
        let lines = rec.lines();
        let short = img.layers[0].short();
        assert_eq!(lines[0], format!("{tag}: Pulling from {path}"));
        assert!(rec.has(&format!("{short}: Pulling fs layer")), "{lines:#?}");
        assert!(rec.has(&format!("{short}: Pull complete")), "{lines:#?}");
        assert!(rec.transfers() >= 1);
        let n = lines.len();
        assert_eq!(lines[n - 2], format!("Digest: {}", img.manifest_digest));
        assert_eq!(
            lines[n - 1],
            format!("Status: Downloaded newer image for {addr}/{path}:{tag}")
        );

        // Rendered like the docker CLI (plain mode, as when piped).
        let out = Arc::new(std::sync::Mutex::new(Vec::new()));
        struct W(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let term = TerminalProgress::plain(Box::new(W(out.clone())));
        for m in rec.0.lock().unwrap().iter() {
            registry::Progress::update(&term, m);
        }
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert!(
            text.starts_with(&format!("{tag}: Pulling from {path}\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{short}: Pull complete\n")),
            "{text}"
        );
        assert!(
            text.ends_with(&format!(
                "Status: Downloaded newer image for {addr}/{path}:{tag}\n"
            )),
            "{text}"
        );

        // Again: everything is there.
        let rec = Recorder::default();
        let p2 = puller.pull(r, None, &dst, &rec).await.unwrap();
        assert_eq!(p2.layers_downloaded, 0);
        assert!(!p2.is_new);
        assert!(
            rec.has(&format!("{short}: Already exists")),
            "{:#?}",
            rec.lines()
        );
        assert!(rec.has(&format!(
            "Status: Image is up to date for {addr}/{path}:{tag}"
        )));
    }

    // By digest, and the small APIs.
    let by_digest =
        Reference::parse(&format!("{addr}/test/busybox@{}", img.manifest_digest)).unwrap();
    let dst = store(t.path(), "by-digest");
    let p = c
        .pull(&by_digest, None, &dst, &registry::NoProgress)
        .await
        .unwrap();
    assert_eq!(p.manifest.digest, img.manifest_digest);
    let m = c.manifest(&r1).await.unwrap();
    assert_eq!(m.digest, img.manifest_digest);
    assert_eq!(
        c.blob(&r1, &img.config_digest, 1 << 20).await.unwrap(),
        img.config
    );
    assert!(c.blob_exists(&r1, &img.layers[0]).await.unwrap());
    assert!(!c.blob_exists(&r1, &Digest::sha256(b"nope")).await.unwrap());
    let missing = c
        .manifest(&reference(&reg, "test/busybox:nope"))
        .await
        .unwrap_err();
    assert_eq!(
        missing.to_string(),
        format!(
            "manifest for {addr}/test/busybox:nope not found: manifest unknown: manifest unknown"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_repository_push_mounts_blobs() {
    let reg = Registry::start(RegistryAuth::None);
    let t = tempfile::tempdir().unwrap();
    let src = store(t.path(), "src");
    let img = make_image(&src, "amd64", Some("mount me"));
    let c = client_in(t.path());
    c.push(
        &reference(&reg, "first/app:1"),
        &img.manifest,
        &img.media_type,
        &src,
        &registry::NoProgress,
    )
    .await
    .unwrap();
    let rec = Recorder::default();
    let second = reference(&reg, "second/app:1");
    c.push(&second, &img.manifest, &img.media_type, &src, &rec)
        .await
        .unwrap();
    let busybox_diff = busybox_layer().1.short().to_string();
    assert!(
        rec.has(&format!("{busybox_diff}: Mounted from first/app")),
        "{:#?}",
        rec.lines()
    );
    assert!(
        !rec.lines().iter().any(|l| l.ends_with(": Pushed")),
        "{:#?}",
        rec.lines()
    );
    for d in img.layers.iter().chain([&img.config_digest]) {
        assert!(c.blob_exists(&second, d).await.unwrap());
    }
    // Pushing again: everything already exists.
    let rec = Recorder::default();
    c.push(&second, &img.manifest, &img.media_type, &src, &rec)
        .await
        .unwrap();
    assert!(
        rec.has(&format!("{busybox_diff}: Layer already exists")),
        "{:#?}",
        rec.lines()
    );
    let dst = store(t.path(), "dst");
    let p = client_in(t.path())
        .pull(&second, None, &dst, &registry::NoProgress)
        .await
        .unwrap();
    assert_eq!(p.manifest.digest, img.manifest_digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_registry_requires_login() {
    let reg = Registry::start(RegistryAuth::Htpasswd);
    let t = tempfile::tempdir().unwrap();
    let src = store(t.path(), "src");
    let img = make_image(&src, "amd64", None);
    let r = reference(&reg, "private/app:1");
    let addr = reg.addr();
    let c = client_in(t.path());

    let err = c
        .push(
            &r,
            &img.manifest,
            &img.media_type,
            &src,
            &registry::NoProgress,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PushDenied { .. }), "{err:?}");
    assert!(
        err.to_string().contains("no basic auth credentials"),
        "{err}"
    );
    let dst = store(t.path(), "dst");
    let err = c
        .pull(&r, None, &dst, &registry::NoProgress)
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "pull access denied for {addr}/private/app, repository does not exist or may require 'docker login'"
        )),
        "{err}"
    );
    assert!(dst.list().unwrap().is_empty());

    let err = c.login(&addr, USER, "wrong").await.unwrap_err();
    assert!(matches!(err, Error::LoginRejected { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("login attempt to http://{addr}/v2/ failed with status: 401 Unauthorized")
    );
    assert!(!t.path().join("auth.json").exists());

    c.login(&addr, USER, PASSWORD).await.unwrap();
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path().join("auth.json")).unwrap()).unwrap();
    assert!(saved["auths"][&addr]["auth"].is_string(), "{saved}");

    c.push(
        &r,
        &img.manifest,
        &img.media_type,
        &src,
        &registry::NoProgress,
    )
    .await
    .unwrap();
    // A new client reads the stored credentials.
    let c2 = client_in(t.path());
    let p = c2
        .pull(&r, None, &dst, &registry::NoProgress)
        .await
        .unwrap();
    assert_eq!(p.manifest.digest, img.manifest_digest);

    // Per-request credentials (X-Registry-Auth) work without the file.
    let anon = Client::new(ClientConfig {
        credentials: CredentialStore::none(),
        ..ClientConfig::default()
    })
    .unwrap();
    let with = anon.with_credentials(&addr, registry::Credentials::new(USER, PASSWORD));
    with.manifest(&r).await.unwrap();
    assert!(anon.manifest(&r).await.is_err());

    assert!(c2.logout(&addr).unwrap());
    let c3 = client_in(t.path());
    assert!(c3.manifest(&r).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_registry() {
    let ts = TokenServer::start();
    let reg = Registry::start(RegistryAuth::Token(ts.clone()));
    let t = tempfile::tempdir().unwrap();
    let src = store(t.path(), "src");
    let img = make_image(&src, "amd64", Some("token"));
    let r = reference(&reg, "team/app:1");
    let addr = reg.addr();
    let c = client_in(t.path());

    let err = c
        .push(
            &r,
            &img.manifest,
            &img.media_type,
            &src,
            &registry::NoProgress,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PushDenied { .. }), "{err:?}");
    let dst = store(t.path(), "dst");
    let err = c
        .pull(&r, None, &dst, &registry::NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PullDenied { .. }), "{err:?}");

    let err = c.login(&addr, USER, "wrong").await.unwrap_err();
    assert!(
        err.to_string().contains("incorrect username or password"),
        "{err}"
    );
    // dockerd's wording: the /v2/ request, then the token server's error.
    assert!(
        err.to_string()
            .starts_with(&format!("Get \"http://{addr}/v2/\": ")),
        "{err}"
    );
    c.login(&addr, USER, PASSWORD).await.unwrap();

    let before = ts.http.requests.lock().unwrap().len();
    c.push(
        &r,
        &img.manifest,
        &img.media_type,
        &src,
        &registry::NoProgress,
    )
    .await
    .unwrap();
    let tokens_for_push = ts.http.requests.lock().unwrap().len() - before;
    // Tokens are cached per scope, not fetched per request.
    assert!(
        tokens_for_push <= 2,
        "{tokens_for_push} token requests for one push"
    );

    let p = c.pull(&r, None, &dst, &registry::NoProgress).await.unwrap();
    assert_eq!(p.manifest.digest, img.manifest_digest);

    // A cross-repository mount needs a token for both repositories.
    let rec = Recorder::default();
    c.push(
        &reference(&reg, "team/other:1"),
        &img.manifest,
        &img.media_type,
        &src,
        &rec,
    )
    .await
    .unwrap();
    let busybox_diff = busybox_layer().1.short().to_string();
    assert!(
        rec.has(&format!("{busybox_diff}: Mounted from team/app")),
        "{:#?}",
        rec.lines()
    );
    let scopes: Vec<String> = ts.http.requests.lock().unwrap().clone();
    assert!(
        scopes
            .iter()
            .any(|q| q.contains("repository%3Ateam%2Fapp%3Apull") && q.contains("team%2Fother")),
        "{scopes:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_or_truncated_blobs_are_refused() {
    let reg = Registry::start(RegistryAuth::None);
    let t = tempfile::tempdir().unwrap();
    let src = store(t.path(), "src");
    let c = client_in(t.path());

    // One layer, corrupted in place (same size).
    let img = make_image(&src, "amd64", None);
    let r = reference(&reg, "evil/app:1");
    c.push(
        &r,
        &img.manifest,
        &img.media_type,
        &src,
        &registry::NoProgress,
    )
    .await
    .unwrap();
    let data = reg.blob_data(&img.layers[0]);
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    let dst = store(t.path(), "dst");
    let err = client_in(t.path())
        .pull(&r, None, &dst, &registry::NoProgress)
        .await
        .unwrap_err();
    match &err {
        Error::DigestMismatch { what, expected, .. } => {
            assert_eq!(*what, "layer");
            assert_eq!(expected, &img.layers[0]);
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("failed verification"), "{err}");
    assert!(dst.list().unwrap().is_empty(), "{:?}", dst.list());
    assert!(ingest_files(dst.root()).is_empty());

    // A truncated layer.
    let img2 = make_image(&src, "amd64", Some("will be cut short"));
    let r2 = reference(&reg, "evil/short:1");
    c.push(
        &r2,
        &img2.manifest,
        &img2.media_type,
        &src,
        &registry::NoProgress,
    )
    .await
    .unwrap();
    let data = reg.blob_data(&img2.layers[1]);
    let bytes = std::fs::read(&data).unwrap();
    std::fs::write(&data, &bytes[..bytes.len() - 7]).unwrap();
    let dst2 = store(t.path(), "dst2");
    let err = client_in(t.path())
        .pull(&r2, None, &dst2, &registry::NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err:?}");
    assert!(!dst2.has(&img2.layers[1]));
    assert!(!dst2.has(&img2.manifest_digest));
    assert!(!dst2.has(&img2.config_digest));
    assert!(ingest_files(dst2.root()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_list_platform_selection() {
    let reg = Registry::start(RegistryAuth::None);
    let t = tempfile::tempdir().unwrap();
    let src = store(t.path(), "src");
    let amd = make_image(&src, "amd64", Some("amd64 flavour"));
    let arm = make_image(&src, "arm64", Some("arm64 flavour"));
    let entry = |img: &TestImage, arch: &str, variant: Option<&str>| {
        let mut d = manifest::descriptor(
            &img.media_type,
            img.manifest_digest.clone(),
            img.manifest.len() as u64,
        );
        d.platform = Some((&Platform::new("linux", arch, variant)).into());
        d
    };
    let index = Index {
        schema_version: 2,
        media_type: Some(manifest::DOCKER_MANIFEST_LIST.into()),
        manifests: vec![entry(&arm, "arm64", Some("v8")), entry(&amd, "amd64", None)],
        annotations: None,
    };
    let index_bytes = serde_json::to_vec_pretty(&index).unwrap();
    let index_digest = src.put_bytes(&index_bytes).unwrap();
    let c = client_in(t.path());
    let r = reference(&reg, "multi/app:latest");
    let pushed = c
        .push(
            &r,
            &index_bytes,
            manifest::DOCKER_MANIFEST_LIST,
            &src,
            &registry::NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(pushed.digest, index_digest);

    let arm64 = Platform::parse("linux/arm64").unwrap();
    let dst = store(t.path(), "arm");
    let p = c
        .pull(&r, Some(&arm64), &dst, &registry::NoProgress)
        .await
        .unwrap();
    assert_eq!(p.digest, index_digest);
    assert_eq!(p.manifest.digest, arm.manifest_digest);
    assert_eq!(p.config, arm.config);
    assert_eq!(
        p.platform.as_ref().map(|p| p.to_string()).as_deref(),
        Some("linux/arm64")
    );
    assert_eq!(p.index.as_ref().unwrap().bytes, index_bytes);
    assert!(dst.has(&index_digest));
    assert!(!dst.has(&amd.config_digest));

    if Platform::host().to_string() == "linux/amd64" {
        let dst = store(t.path(), "host");
        let p = c.pull(&r, None, &dst, &registry::NoProgress).await.unwrap();
        assert_eq!(p.manifest.digest, amd.manifest_digest);
    }

    let s390x = Platform::parse("linux/s390x").unwrap();
    let err = c
        .pull(
            &r,
            Some(&s390x),
            &store(t.path(), "none"),
            &registry::NoProgress,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no matching manifest for linux/s390x in the manifest list entries"),
        "{err}"
    );

    // A single-platform image does not satisfy an explicit, different platform.
    let single = reference(&reg, "multi/amd-only:1");
    c.push(
        &single,
        &amd.manifest,
        &amd.media_type,
        &src,
        &registry::NoProgress,
    )
    .await
    .unwrap();
    let err = c
        .pull(
            &single,
            Some(&arm64),
            &store(t.path(), "x"),
            &registry::NoProgress,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PlatformMismatch { .. }), "{err:?}");
}

fn skopeo(args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo must be installed");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_agrees() {
    let reg = Registry::start(RegistryAuth::None);
    let t = tempfile::tempdir().unwrap();
    let src = store(t.path(), "src");
    let img = make_image(&src, "amd64", Some("skopeo"));
    let c = client_in(t.path());
    let addr = reg.addr();
    c.push(
        &reference(&reg, "interop/app:v1"),
        &img.manifest,
        &img.media_type,
        &src,
        &registry::NoProgress,
    )
    .await
    .unwrap();

    let url = format!("docker://{addr}/interop/app:v1");
    let out = skopeo(&["inspect", "--tls-verify=false", &url]);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["Digest"], img.manifest_digest.to_string());
    assert_eq!(info["Architecture"], "amd64");
    let layers: Vec<String> = img.layers.iter().map(|d| d.to_string()).collect();
    assert_eq!(info["Layers"], serde_json::json!(layers));
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &url]);
    assert_eq!(raw.stdout, img.manifest);
    let cfg = skopeo(&["inspect", "--config", "--raw", "--tls-verify=false", &url]);
    assert_eq!(Digest::sha256(&cfg.stdout), img.config_digest);

    // skopeo copies what we pushed; we pull what skopeo pushed.
    let copy = format!("docker://{addr}/interop/copy:v1");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &url,
        &copy,
    ]);
    let dst = store(t.path(), "dst");
    let p = client_in(t.path())
        .pull(
            &reference(&reg, "interop/copy:v1"),
            None,
            &dst,
            &registry::NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(p.image_id(), &img.config_digest);
    assert_eq!(
        p.layers
            .iter()
            .map(|l| l.digest.clone())
            .collect::<Vec<_>>(),
        img.layers
    );
    for d in &img.layers {
        dst.verify(d).unwrap();
    }
    // And an OCI layout copy of our image is byte-identical in its blobs.
    let layout = t.path().join("layout");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &url,
        &format!("oci:{}:v1", layout.display()),
    ]);
    for d in &img.layers {
        let blob = layout.join("blobs/sha256").join(d.hex());
        assert_eq!(Digest::sha256(&std::fs::read(blob).unwrap()), *d);
    }
}

// ---------------------------------------------------------------------------------------
// Fake registries for what a real one will not do.

fn json_manifest_for(config: &[u8], layer: &[u8]) -> Vec<u8> {
    let m = manifest::Manifest {
        schema_version: 2,
        media_type: Some(manifest::DOCKER_MANIFEST.into()),
        config: manifest::descriptor(
            manifest::DOCKER_CONFIG,
            Digest::sha256(config),
            config.len() as u64,
        ),
        layers: vec![manifest::descriptor(
            manifest::DOCKER_LAYER_GZIP,
            Digest::sha256(layer),
            layer.len() as u64,
        )],
        annotations: None,
    };
    serde_json::to_vec(&m).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_lying_manifests_are_refused() {
    let good = json_manifest_for(b"{}", b"layer");
    let good_digest = Digest::sha256(&good);
    let other = Digest::sha256(b"something else");
    let good2 = good.clone();
    let other2 = other.clone();
    let server = HttpServer::start(Arc::new(move |req: &Request| {
        let mt = manifest::DOCKER_MANIFEST;
        match req.path.as_str() {
            "/v2/" => Response::new(200, "{}"),
            "/v2/big/manifests/latest" => {
                Response::new(200, vec![b' '; 5 * 1024 * 1024]).header("Content-Type", mt)
            }
            "/v2/liar/manifests/latest" => Response::new(200, good2.clone())
                .header("Content-Type", mt)
                .header("Docker-Content-Digest", &other2.to_string()),
            p if p.starts_with("/v2/bydigest/manifests/") => {
                Response::new(200, good2.clone()).header("Content-Type", mt)
            }
            _ => Response::new(
                404,
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            ),
        }
    }));
    let t = tempfile::tempdir().unwrap();
    let c = client_in(t.path());
    let base = format!("127.0.0.1:{}", server.port);
    let r = |s: &str| Reference::parse(&format!("{base}/{s}")).unwrap();

    let err = c.manifest(&r("big")).await.unwrap_err();
    assert!(matches!(err, Error::ManifestTooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("over the 4 MiB limit"), "{err}");

    let err = c.manifest(&r("liar")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::DigestMismatch {
                what: "manifest",
                ..
            }
        ),
        "{err:?}"
    );

    // Asked by digest, served something else.
    let err = c
        .manifest(&r(&format!("bydigest@{other}")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DigestMismatch {
                what: "manifest",
                ..
            }
        ),
        "{err:?}"
    );
    let ok = c
        .manifest(&r(&format!("bydigest@{good_digest}")))
        .await
        .unwrap();
    assert_eq!(ok.bytes, good);

    let dst = store(t.path(), "dst");
    assert!(c
        .pull(&r("big"), None, &dst, &registry::NoProgress)
        .await
        .is_err());
    assert!(dst.list().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_redirects_are_followed_without_credentials() {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let layer = busybox_layer().0.clone();
    let m = json_manifest_for(&config, &layer);
    let (cd, ld) = (Digest::sha256(&config), Digest::sha256(&layer));

    // The "CDN": serves blobs by hex, and notes whether credentials leaked to it.
    let blobs: Vec<(String, Vec<u8>)> = vec![
        (cd.hex().to_string(), config.clone()),
        (ld.hex().to_string(), layer.clone()),
    ];
    let leaked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let leaked2 = leaked.clone();
    let cdn = HttpServer::start(Arc::new(move |req: &Request| {
        if req.header("authorization").is_some() {
            leaked2.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let hex = req.path.trim_start_matches("/cdn/");
        match blobs.iter().find(|(h, _)| h == hex) {
            Some((_, b)) => Response::new(200, b.clone()),
            None => Response::new(404, "no"),
        }
    }));
    let cdn_port = cdn.port;
    let m2 = m.clone();
    let reg = HttpServer::start(Arc::new(move |req: &Request| {
        let authed = req.header("authorization")
            == Some(&registry::Credentials::new(USER, PASSWORD).basic_header());
        if !authed {
            return Response::new(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            )
            .header("WWW-Authenticate", "Basic realm=\"fake\"");
        }
        match req.path.as_str() {
            "/v2/" => Response::new(200, "{}"),
            "/v2/cdn/app/manifests/latest" => {
                Response::new(200, m2.clone()).header("Content-Type", manifest::DOCKER_MANIFEST)
            }
            p if p.starts_with("/v2/cdn/app/blobs/sha256:") => {
                let hex = p.trim_start_matches("/v2/cdn/app/blobs/sha256:");
                Response::new(307, "").header(
                    "Location",
                    &format!("http://127.0.0.1:{cdn_port}/cdn/{hex}"),
                )
            }
            _ => Response::new(404, "{}"),
        }
    }));
    let t = tempfile::tempdir().unwrap();
    let c = client_in(t.path());
    let addr = format!("127.0.0.1:{}", reg.port);
    c.login(&addr, USER, PASSWORD).await.unwrap();
    let dst = store(t.path(), "dst");
    let r = Reference::parse(&format!("{addr}/cdn/app")).unwrap();
    let p = c.pull(&r, None, &dst, &registry::NoProgress).await.unwrap();
    assert_eq!(p.manifest.bytes, m);
    dst.verify(&ld).unwrap();
    dst.verify(&cd).unwrap();
    assert!(
        !leaked.load(std::sync::atomic::Ordering::SeqCst),
        "credentials were sent to the redirect target"
    );
}
