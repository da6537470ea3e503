//! Issue 3 (images), bad input to the `berth` binary: archives whose layers try to write
//! outside the layer root are refused (or confined) and leave nothing outside, corrupt
//! archives are refused, and invalid references and flags fail with docker's messages and
//! exit codes.
//!
//! The malicious archives are crafted here (`docker save` layout, see
//! [`common::docker_archive`]); every path they aim at lies inside the test's own temp dir or
//! carries its unique token, and is removed at teardown if berth ever created it.

#[path = "images_common/mod.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{docker_archive, sha256_digest, snapshot_dirs, Sandbox, TarWriter};

/// Where a file named `name` would land if an entry climbed `..` out of any directory at or
/// below `data_root` (one candidate per ancestor, up to /).
fn escape_candidates(data_root: &Path, name: &str) -> Vec<PathBuf> {
    data_root.ancestors().map(|a| a.join(name)).collect()
}

/// Files named `<prefix>*` anywhere under `dir`, except inside a snapshot's `fs` (that is
/// inside the layer root: where a confined entry belongs).
fn found_outside_layers(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let in_layer = p.ancestors().any(|a| {
                a.file_name().is_some_and(|n| n == "fs")
                    && a.parent()
                        .and_then(Path::parent)
                        .is_some_and(|s| s.ends_with("snapshots"))
            });
            if e.file_name().to_string_lossy().starts_with(prefix) && !in_layer {
                hits.push(p.clone());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            }
        }
    }
    hits
}

#[test]
fn load_refuses_layers_that_escape_their_root() {
    const TEST: &str = "load_refuses_layers_that_escape_their_root";
    let Some(sb) = Sandbox::new(TEST, &["sha256sum"]) else {
        return;
    };
    let dr = sb.data_root("data");
    let outside = sb.root.join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("victim"), "original\n").unwrap();
    let marker = format!("escaped-{}", sb.uniq);
    let depth = dr.components().count() + 4;
    for n in 1..=depth {
        for p in escape_candidates(&dr, &format!("{marker}-{n}")) {
            sb.remove_on_drop(p);
        }
    }
    let load = |name: &str, layer: Vec<u8>| {
        let tag = format!("berth-test/evil-{name}:{}", sb.uniq);
        let archive = sb.root.join(format!("{name}.tar"));
        fs::write(&archive, docker_archive(&layer, &tag, None)).unwrap();
        (sb.b(&dr, &["load", "-i", archive.to_str().unwrap()]), tag)
    };

    // 1. `../` entries at every depth up to /: refused.
    let mut t = TarWriter::new();
    t.file("harmless", b"x");
    for n in 1..=depth {
        t.file(&format!("{}{marker}-{n}", "../".repeat(n)), b"pwned\n");
    }
    let (out, tag) = load("dotdot", t.finish());
    sb.expect_code(&out, 1);
    assert!(
        !out.stderr.trim().is_empty(),
        "refused without a message:\n{out}"
    );
    eprintln!("{TEST}: dotdot -> {}", out.stderr.trim());
    let listed = sb.b_ok(&dr, &["images", "--quiet", &tag]);
    assert!(
        listed.stdout.trim().is_empty(),
        "a refused image is listed:\n{listed}"
    );

    // 2. A hard link to a file outside the root: refused, the file untouched.
    let rel = format!(
        "{}{}",
        "../".repeat(depth),
        outside
            .join("victim")
            .to_str()
            .unwrap()
            .trim_start_matches('/')
    );
    let mut t = TarWriter::new();
    t.hardlink("hl", &rel);
    let (out, _) = load("hardlink", t.finish());
    sb.expect_code(&out, 1);
    eprintln!("{TEST}: hardlink -> {}", out.stderr.trim());

    // 3. A symlink climbing out with `..`, then a file through it: refused.
    let rel_dir = format!(
        "{}{}",
        "../".repeat(depth),
        outside.to_str().unwrap().trim_start_matches('/')
    );
    let mut t = TarWriter::new();
    t.symlink("up", &rel_dir)
        .file(&format!("up/{marker}-sym"), b"pwned\n");
    let (out, _) = load("symlink-up", t.finish());
    sb.expect_code(&out, 1);
    eprintln!("{TEST}: symlink-up -> {}", out.stderr.trim());

    // 4. Absolute names and an absolute symlink followed by a file: these may load (docker
    //    resolves them inside the root), but nothing may land outside.
    let mut t = TarWriter::new();
    t.file(
        &format!("{}/{marker}-abs", outside.to_str().unwrap()),
        b"pwned\n",
    )
    .symlink("abs-link", outside.to_str().unwrap())
    .file(&format!("abs-link/{marker}-abslink"), b"pwned\n")
    .file("abs-link/victim", b"overwritten\n");
    let (out, tag) = load("absolute", t.finish());
    eprintln!(
        "{TEST}: absolute -> exit {:?} {}",
        out.code(),
        out.stderr.trim()
    );
    assert!(
        out.code() == Some(0) || out.code() == Some(1),
        "unexpected result:\n{out}"
    );
    if out.code() == Some(0) {
        let run = sb.b(&dr, &["image", "inspect", &tag]);
        sb.expect_code(&run, 0);
    }

    // Nothing escaped anywhere, and the victim is intact.
    let mut escaped = found_outside_layers(&sb.root, &marker);
    for n in 1..=depth {
        for p in escape_candidates(&dr, &format!("{marker}-{n}")) {
            if fs::symlink_metadata(&p).is_ok() {
                escaped.push(p);
            }
        }
    }
    assert!(
        escaped.is_empty(),
        "files written outside the layer root: {escaped:?}"
    );
    assert_eq!(
        fs::read_to_string(outside.join("victim")).unwrap(),
        "original\n",
        "a file outside the root was changed"
    );
    // Refused loads leave no half-unpacked snapshot behind: only the absolute one may exist.
    assert!(
        snapshot_dirs(&dr).len() <= 1,
        "refused layers left snapshots: {:?}",
        snapshot_dirs(&dr)
    );
}

#[test]
fn load_refuses_corrupt_archives() {
    const TEST: &str = "load_refuses_corrupt_archives";
    let Some(sb) = Sandbox::new(TEST, &["sha256sum"]) else {
        return;
    };
    let dr = sb.data_root("data");

    // A layer that does not hash to the diff_id its config promises.
    let mut t = TarWriter::new();
    t.file("hello", b"hello\n");
    let layer = t.finish();
    let wrong = sha256_digest(b"something else");
    let tag = format!("berth-test/corrupt:{}", sb.uniq);
    let archive = sb.root.join("wrong-diffid.tar");
    fs::write(&archive, docker_archive(&layer, &tag, Some(&wrong))).unwrap();
    let out = sb.b(&dr, &["load", "-i", archive.to_str().unwrap()]);
    sb.expect_code(&out, 1);
    eprintln!("{TEST}: wrong diff_id -> {}", out.stderr.trim());
    let listed = sb.b_ok(&dr, &["images", "--quiet"]);
    assert!(
        listed.stdout.trim().is_empty(),
        "corrupt image listed:\n{listed}"
    );
    assert!(
        snapshot_dirs(&dr).is_empty(),
        "corrupt layer left a snapshot"
    );

    // Not a tar at all.
    let junk = sb.root.join("junk.tar");
    fs::write(&junk, b"this is not a tar archive\n".repeat(100)).unwrap();
    let out = sb.b(&dr, &["load", "-i", junk.to_str().unwrap()]);
    sb.expect_code(&out, 1);
    assert!(!out.stderr.trim().is_empty(), "no message:\n{out}");
    eprintln!("{TEST}: junk -> {}", out.stderr.trim());

    // A tar without manifest.json / index.json.
    let mut t = TarWriter::new();
    t.file("hello", b"hello\n");
    let empty = sb.root.join("no-manifest.tar");
    fs::write(&empty, t.finish()).unwrap();
    let out = sb.b(&dr, &["load", "-i", empty.to_str().unwrap()]);
    sb.expect_code(&out, 1);
    eprintln!("{TEST}: no manifest -> {}", out.stderr.trim());

    // A missing file.
    let out = sb.b(
        &dr,
        &["load", "-i", sb.root.join("absent.tar").to_str().unwrap()],
    );
    sb.expect_code(&out, 1);
}

#[test]
fn invalid_references_and_flags_fail_like_docker() {
    const TEST: &str = "invalid_references_and_flags_fail_like_docker";
    let Some(sb) = Sandbox::new(TEST, &[]) else {
        return;
    };
    let dr = sb.data_root("data");

    let out = sb.b(&dr, &["pull", "Busybox"]);
    sb.expect_code(&out, 1);
    assert_eq!(
        out.stderr.trim(),
        "invalid reference format: repository name (library/Busybox) must be lowercase",
        "pull Busybox:\n{out}"
    );
    assert!(
        out.stdout.trim().is_empty(),
        "pull printed progress:\n{out}"
    );

    // (No uppercase first component: docker reads `UPPER/x` as a registry host and dials it.)
    for bad in [
        "busybox:",
        "bUsybox:latest",
        "a//b",
        "busybox@sha256:123",
        ":tag",
    ] {
        let out = sb.b(&dr, &["pull", bad]);
        sb.expect_code(&out, 1);
        assert!(
            out.stderr.contains("invalid reference format"),
            "pull {bad:?}:\n{out}"
        );
    }

    let out = sb.b(&dr, &["images", "--bogus"]);
    sb.expect_code(&out, 125);
    assert!(out.stderr.contains("--bogus"), "images --bogus:\n{out}");

    let out = sb.b(&dr, &["image", "inspect", "nosuchimage"]);
    sb.expect_code(&out, 1);
    assert!(
        out.stderr.contains("No such image: nosuchimage"),
        "inspect of a missing image:\n{out}"
    );
    let out = sb.b(&dr, &["rmi", "nosuchimage"]);
    sb.expect_code(&out, 1);
    assert!(
        out.stderr.contains("No such image: nosuchimage"),
        "rmi of a missing image:\n{out}"
    );
    let out = sb.b(&dr, &["tag", "nosuchimage", "other:tag"]);
    sb.expect_code(&out, 1);
    assert!(
        out.stderr.contains("No such image: nosuchimage"),
        "tag of a missing image:\n{out}"
    );

    // Nothing was created for any of it.
    let listed = sb.b_ok(&dr, &["images", "--all", "--quiet"]);
    assert!(listed.stdout.trim().is_empty());
}
