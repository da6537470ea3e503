//! Issue 3 (images), end to end against real registries: the `berth` binary pushes to and
//! pulls from Debian's `docker-registry` on 127.0.0.1 (plain HTTP, storage in the test's temp
//! dir), with and without htpasswd auth, and skopeo reads and copies what berth pushed.
//!
//! Every test has its own registry, data roots and credential dirs ([`common::Sandbox`]), and
//! names its images with the sandbox's unique token, so the tests run in parallel. A test whose
//! tools are missing, or that is not run as root, prints `SKIP <test>: <why>` and passes.

#[path = "images_common/mod.rs"]
mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{
    base64, digest_after, is_digest, sha256_digest, snapshot_dirs, Out, Registry, Sandbox,
    TEST_PASSWORD, TEST_PASSWORD_BCRYPT,
};

/// `berth image inspect --format '{{.Id}} {{json .RootFS.Layers}}' IMAGE`, trimmed.
fn id_and_layers(sb: &Sandbox, dr: &Path, image: &str) -> String {
    let out = sb.b_ok(
        dr,
        &[
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{json .RootFS.Layers}}",
            image,
        ],
    );
    out.stdout.trim().to_string()
}

/// `berth image inspect IMAGE` as JSON (the single object of the array).
fn inspect_json(sb: &Sandbox, dr: &Path, image: &str) -> serde_json::Value {
    let out = sb.b_ok(dr, &["image", "inspect", image]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("`image inspect` printed no JSON ({e}):\n{out}"));
    v[0].clone()
}

/// The digest `berth push` reported (`TAG: digest: sha256:... size: N`), checking the
/// progress lines docker prints around it.
fn pushed_digest(sb: &Sandbox, out: &Out, repo: &str, tag: &str) -> String {
    sb.expect_code(out, 0);
    assert!(
        out.stdout
            .contains(&format!("The push refers to repository [{repo}]")),
        "push did not name the repository like docker:\n{out}"
    );
    assert!(
        out.stdout.lines().any(|l| l.ends_with(": Pushed")
            || l.ends_with(": Layer already exists")
            || l.ends_with(": Mounted from")),
        "push printed no per-layer `Pushed` line:\n{out}"
    );
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{tag}: digest: ")))
        .unwrap_or_else(|| panic!("push printed no `{tag}: digest: ... size: N` line:\n{out}"));
    let digest = digest_after(line, "digest: ").unwrap();
    assert!(
        line.contains(" size: "),
        "digest line lacks the size: {line}"
    );
    digest
}

/// Row `repo tag digest id ...` of `berth images --digests` for `repo`:`tag`.
fn digest_column(sb: &Sandbox, dr: &Path, repo: &str, tag: &str) -> Option<String> {
    let out = sb.b_ok(dr, &["images", "--digests"]);
    let header = out.stdout.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("REPOSITORY") && header.contains("DIGEST"),
        "`images --digests` has no DIGEST column:\n{out}"
    );
    out.stdout.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 4 && f[0] == repo && f[1] == tag).then(|| f[2].to_string())
    })
}

/// Checks `berth pull` printed docker's progress shape and returns the `Digest:` it printed.
fn check_pull_output(out: &Out, reference: &str, tag: &str, path: &str, fresh: bool) -> String {
    let want_first = format!("{tag}: Pulling from {path}");
    assert!(
        out.stdout.lines().any(|l| l == want_first),
        "pull did not start with `{want_first}`:\n{out}"
    );
    if fresh {
        assert!(
            out.stdout.lines().any(|l| l.ends_with(": Pull complete")),
            "pull printed no `<layer>: Pull complete` line:\n{out}"
        );
        assert!(
            out.stdout
                .contains(&format!("Status: Downloaded newer image for {reference}")),
            "pull printed no `Status: Downloaded newer image for {reference}`:\n{out}"
        );
    } else {
        assert!(
            out.stdout
                .contains(&format!("Status: Image is up to date for {reference}")),
            "second pull printed no `Status: Image is up to date for {reference}`:\n{out}"
        );
    }
    assert_eq!(
        out.stdout.lines().last().map(str::trim),
        Some(reference),
        "pull's last line is not the reference:\n{out}"
    );
    digest_after(&out.stdout, "Digest: ")
        .unwrap_or_else(|| panic!("pull printed no `Digest: sha256:...` line:\n{out}"))
}

#[test]
fn registry_round_trip_import_push_rmi_pull_run() {
    const TEST: &str = "registry_round_trip_import_push_rmi_pull_run";
    let Some(sb) = Sandbox::new(TEST, &["docker-registry", "tar", "sha256sum"]) else {
        return;
    };
    let reg = Registry::start(&sb, "registry", None);
    let dr = sb.data_root("data");
    let tar = sb.busybox_tar();
    let tag = sb.uniq.clone();
    let local = format!("berth-test/busybox:{tag}");
    let repo = format!("{}/berth-test/busybox", reg.addr);
    let remote = format!("{repo}:{tag}");

    let imported = sb.b_ok(&dr, &["import", tar.to_str().unwrap(), &local]);
    let id = imported.stdout.trim().to_string();
    assert!(is_digest(&id), "import printed no image id:\n{imported}");
    sb.b_ok(&dr, &["tag", &local, &remote]);
    let before = id_and_layers(&sb, &dr, &remote);
    assert!(
        before.starts_with(&id),
        "tag points at another image: {before}"
    );
    assert_eq!(
        digest_column(&sb, &dr, &repo, &tag).as_deref(),
        Some("<none>"),
        "an image never pushed has no digest"
    );

    let push = sb.b(&dr, &["push", &remote]);
    let digest = pushed_digest(&sb, &push, &repo, &tag);
    eprintln!("pushed {remote}: {digest}");
    assert_eq!(
        digest_column(&sb, &dr, &repo, &tag).as_deref(),
        Some(digest.as_str()),
        "`images --digests` does not show the pushed digest"
    );

    // Remove every trace locally, then pull it back.
    let rmi = sb.b_ok(&dr, &["rmi", &remote, &local]);
    assert!(
        rmi.stdout.contains(&format!("Untagged: {remote}"))
            && rmi.stdout.contains(&format!("Deleted: {id}")),
        "rmi output is not docker's:\n{rmi}"
    );
    let left = sb.b_ok(&dr, &["images", "--all", "--quiet"]);
    assert!(left.stdout.trim().is_empty(), "rmi left images:\n{left}");
    assert!(
        snapshot_dirs(&dr).is_empty(),
        "rmi left snapshots: {:?}",
        snapshot_dirs(&dr)
    );

    let pull = sb.b_ok(&dr, &["pull", &remote]);
    let pulled = check_pull_output(&pull, &remote, &tag, "berth-test/busybox", true);
    assert_eq!(pulled, digest, "pulled another manifest than was pushed");
    assert_eq!(
        id_and_layers(&sb, &dr, &remote),
        before,
        "image id / layers changed over the round trip"
    );
    let img = inspect_json(&sb, &dr, &remote);
    assert_eq!(
        img["RepoDigests"],
        serde_json::json!([format!("{repo}@{digest}")]),
        "RepoDigests after pull:\n{img:#}"
    );
    assert_eq!(
        digest_column(&sb, &dr, &repo, &tag).as_deref(),
        Some(digest.as_str())
    );

    let run = sb.b(&dr, &["run", "--rm", &remote, "sh", "-c", "echo ok"]);
    sb.expect_stdout(&run, "ok");

    // Again: nothing to download. And by digest.
    let again = sb.b_ok(&dr, &["pull", &remote]);
    assert_eq!(
        check_pull_output(&again, &remote, &tag, "berth-test/busybox", false),
        digest
    );
    let by_digest = format!("{repo}@{digest}");
    let pull = sb.b_ok(&dr, &["pull", &by_digest]);
    assert!(
        pull.stdout.contains(&format!("Digest: {digest}")),
        "pull by digest:\n{pull}"
    );

    // A tag the registry does not have: docker's message, exit 1, nothing added.
    let missing = format!("{repo}:missing-{tag}");
    let out = sb.b(&dr, &["pull", &missing]);
    sb.expect_code(&out, 1);
    let want = format!("Error response from daemon: manifest for {missing} not found");
    assert!(
        out.stderr.trim_start().starts_with(&want) && out.stderr.contains("manifest unknown"),
        "expected `{want}: manifest unknown: manifest unknown`:\n{out}"
    );
    let images = sb.b_ok(&dr, &["images", "--quiet"]);
    assert_eq!(
        images.stdout.trim().lines().count(),
        1,
        "a failed pull changed the image list:\n{images}"
    );
}

#[test]
fn registry_htpasswd_login_push_pull_logout() {
    const TEST: &str = "registry_htpasswd_login_push_pull_logout";
    let Some(sb) = Sandbox::new(TEST, &["docker-registry", "tar", "sha256sum"]) else {
        return;
    };
    let user = "tester";
    let reg = Registry::start(&sb, "registry", Some((user, TEST_PASSWORD_BCRYPT)));
    let dr = sb.data_root("data");
    let tar = sb.busybox_tar();
    let tag = sb.uniq.clone();
    let repo = format!("{}/private/busybox", reg.addr);
    let remote = format!("{repo}:{tag}");
    let config = sb.berth_config.join("config.json");
    let denied = |out: &Out| {
        out.stderr.contains("no basic auth credentials")
            || out.stderr.contains("authentication required")
            || out.stderr.contains("unauthorized")
    };

    sb.b_ok(&dr, &["import", tar.to_str().unwrap(), &remote]);

    // Not logged in: push and pull fail with a clear message.
    let push = sb.b(&dr, &["push", &remote]);
    sb.expect_code(&push, 1);
    assert!(
        denied(&push),
        "push without login: no clear auth message:\n{push}"
    );
    let pull = sb.b(&dr, &["pull", &remote]);
    sb.expect_code(&pull, 1);
    assert!(
        denied(&pull),
        "pull without login: no clear auth message:\n{pull}"
    );

    // A wrong password is refused and stores nothing.
    let bad = sb.run_stdin(
        sb.berth(&dr)
            .args(["login", "-u", user, "--password-stdin", &reg.addr]),
        b"wrong-password\n",
    );
    sb.expect_code(&bad, 1);
    assert!(
        bad.stderr.contains("unauthorized") || bad.stderr.contains("401"),
        "wrong password: unclear message:\n{bad}"
    );
    let stored = fs::read_to_string(&config).unwrap_or_default();
    assert!(
        !stored.contains(&reg.addr),
        "a failed login stored credentials:\n{stored}"
    );

    let good = sb.run_stdin(
        sb.berth(&dr)
            .args(["login", "-u", user, "--password-stdin", &reg.addr]),
        format!("{TEST_PASSWORD}\n").as_bytes(),
    );
    sb.expect_code(&good, 0);
    assert!(
        good.stdout.contains("Login Succeeded"),
        "login output:\n{good}"
    );
    let stored: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(
        stored["auths"][&reg.addr]["auth"],
        base64(format!("{user}:{TEST_PASSWORD}").as_bytes()),
        "credentials not stored docker-style in {}:\n{stored:#}",
        config.display()
    );
    let mode = fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} is mode {mode:o}", config.display());

    let push = sb.b(&dr, &["push", &remote]);
    let digest = pushed_digest(&sb, &push, &repo, &tag);
    sb.b_ok(&dr, &["rmi", &remote]);
    let pull = sb.b_ok(&dr, &["pull", &remote]);
    assert_eq!(
        check_pull_output(&pull, &remote, &tag, "private/busybox", true),
        digest
    );
    let run = sb.b(&dr, &["run", "--rm", &remote, "sh", "-c", "echo ok"]);
    sb.expect_stdout(&run, "ok");

    let logout = sb.b_ok(&dr, &["logout", &reg.addr]);
    assert!(
        logout
            .stdout
            .contains(&format!("Removing login credentials for {}", reg.addr)),
        "logout output:\n{logout}"
    );
    let stored = fs::read_to_string(&config).unwrap_or_default();
    assert!(
        !stored.contains(&reg.addr),
        "logout left the credentials:\n{stored}"
    );
    sb.b_ok(&dr, &["rmi", &remote]);
    let pull = sb.b(&dr, &["pull", &remote]);
    sb.expect_code(&pull, 1);
    assert!(denied(&pull), "pull after logout:\n{pull}");

    // A `docker login` (docker's config.json in DOCKER_CONFIG) is honoured too.
    fs::write(
        sb.docker_config.join("config.json"),
        serde_json::json!({
            "auths": { &reg.addr: { "auth": base64(format!("{user}:{TEST_PASSWORD}").as_bytes()) } }
        })
        .to_string(),
    )
    .unwrap();
    let pull = sb.b_ok(&dr, &["pull", "--quiet", &remote]);
    assert_eq!(pull.stdout.trim(), remote, "pull --quiet output:\n{pull}");
}

#[test]
fn skopeo_reads_and_copies_what_berth_pushed() {
    const TEST: &str = "skopeo_reads_and_copies_what_berth_pushed";
    let Some(sb) = Sandbox::new(TEST, &["docker-registry", "skopeo", "tar", "sha256sum"]) else {
        return;
    };
    let reg = Registry::start(&sb, "registry", None);
    let dr = sb.data_root("data");
    let tar = sb.busybox_tar();
    let tag = sb.uniq.clone();
    let a = format!("{}/interop/a:{tag}", reg.addr);
    let b = format!("{}/interop/b:{tag}", reg.addr);
    let c = format!("{}/interop/c:{tag}", reg.addr);
    let skopeo = |args: &[&str]| {
        let mut cmd = Command::new("skopeo");
        cmd.env("HOME", sb.root.join("home"))
            .env("TMPDIR", sb.root.join("tmp"))
            .env("XDG_RUNTIME_DIR", sb.root.join("tmp"))
            .args(args);
        let out = sb.run(&mut cmd);
        sb.expect_code(&out, 0);
        out
    };

    let id = sb.b_ok(&dr, &["import", tar.to_str().unwrap(), &a]);
    let id = id.stdout.trim().to_string();
    let push = sb.b(&dr, &["push", &a]);
    let digest = pushed_digest(&sb, &push, &format!("{}/interop/a", reg.addr), &tag);

    let inspect = skopeo(&["inspect", "--tls-verify=false", &format!("docker://{a}")]);
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(
        v["Digest"],
        digest.as_str(),
        "skopeo sees another digest:\n{v:#}"
    );
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{a}"),
    ]);
    assert_eq!(
        sha256_digest(raw.stdout.as_bytes()),
        digest,
        "the manifest bytes do not hash to the pushed digest"
    );
    let manifest: serde_json::Value = serde_json::from_str(&raw.stdout).unwrap();
    assert_eq!(
        manifest["config"]["digest"],
        id.as_str(),
        "the pushed config is not the image id:\n{manifest:#}"
    );

    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{a}"),
        &format!("docker://{b}"),
    ]);
    let dr2 = sb.data_root("data2");
    let pull = sb.b_ok(&dr2, &["pull", &b]);
    assert_eq!(
        check_pull_output(&pull, &b, &tag, "interop/b", true),
        digest,
        "skopeo copy kept the manifest, so the digest must be the same"
    );
    let got = sb.b_ok(&dr2, &["image", "inspect", "--format", "{{.Id}}", &b]);
    assert_eq!(got.stdout.trim(), id);
    let run = sb.b(&dr2, &["run", "--rm", &b, "sh", "-c", "echo ok"]);
    sb.expect_stdout(&run, "ok");

    // skopeo reads `berth save` archives (OCI layout + docker manifest.json) too.
    let saved = sb.root.join("saved.tar");
    sb.b_ok(&dr, &["save", "-o", saved.to_str().unwrap(), &a]);
    for (n, transport) in ["oci-archive", "docker-archive"].iter().enumerate() {
        let dest = format!("{c}-{n}");
        skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            &format!("{transport}:{}", saved.display()),
            &format!("docker://{dest}"),
        ]);
        sb.b_ok(&dr2, &["pull", "--quiet", &dest]);
        let got = sb.b_ok(&dr2, &["image", "inspect", "--format", "{{.Id}}", &dest]);
        assert_eq!(
            got.stdout.trim(),
            id,
            "{transport} of `berth save` gave another image"
        );
    }
}
