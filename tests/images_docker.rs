//! Issue 3 (images), end to end against Docker: image archives move both ways between a
//! private dockerd and the `berth` binary with the same image IDs, and images that share a
//! base share its layer on disk in berth's store.
//!
//! Each test starts its own dockerd (all state in its temp dir, no bridge, no iptables,
//! containers under a private cgroup parent; see [`common::Docker`]) and tears it down in the
//! sandbox's `Drop`. A test whose tools are missing, or that is not run as root, prints
//! `SKIP <test>: <why>` and passes.

#[path = "images_common/mod.rs"]
mod common;

use std::fs;

use common::{disk_usage, is_digest, snapshot_dirs, Docker, Sandbox};

/// Tools every test here needs besides the docker CLI.
const TOOLS: &[&str] = &[
    "dockerd",
    "containerd",
    "containerd-shim-runc-v2",
    "tar",
    "sha256sum",
];

#[test]
fn docker_save_berth_load_and_berth_save_docker_load() {
    const TEST: &str = "docker_save_berth_load_and_berth_save_docker_load";
    let Some(sb) = Sandbox::new(TEST, TOOLS) else {
        return;
    };
    let Some(docker) = Docker::start(&sb) else {
        return;
    };
    let dr = sb.data_root("data");
    let tar = sb.busybox_tar();
    let tar = tar.to_str().unwrap();

    // docker -> berth
    let from_docker = format!("berth-test/from-docker:{}", sb.uniq);
    docker.ok(&sb, &["import", tar, &from_docker]);
    let docker_id = docker.ok(
        &sb,
        &["image", "inspect", "--format", "{{.Id}}", &from_docker],
    );
    let docker_id = docker_id.stdout.trim().to_string();
    assert!(is_digest(&docker_id), "docker image id: {docker_id:?}");
    let archive = sb.root.join("from-docker.tar");
    docker.ok(
        &sb,
        &["save", "-o", archive.to_str().unwrap(), &from_docker],
    );
    let load = sb.b_ok(&dr, &["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(
        load.stdout.trim(),
        format!("Loaded image: {from_docker}"),
        "berth load output:\n{load}"
    );
    let berth_id = sb.b_ok(
        &dr,
        &["image", "inspect", "--format", "{{.Id}}", &from_docker],
    );
    assert_eq!(
        berth_id.stdout.trim(),
        docker_id,
        "berth and docker disagree on the image id"
    );
    let run = sb.b(&dr, &["run", "--rm", &from_docker, "sh", "-c", "echo ok"]);
    sb.expect_stdout(&run, "ok");

    // berth -> docker (an image berth made itself)
    let from_berth = format!("berth-test/from-berth:{}", sb.uniq);
    let imported = sb.b_ok(&dr, &["import", tar, &from_berth]);
    let berth_id = imported.stdout.trim().to_string();
    let archive = sb.root.join("from-berth.tar");
    sb.b_ok(&dr, &["save", "-o", archive.to_str().unwrap(), &from_berth]);
    let load = docker.ok(&sb, &["load", "-i", archive.to_str().unwrap()]);
    assert!(
        load.stdout.contains(&format!("Loaded image: {from_berth}")),
        "docker load did not load the tag:\n{load}"
    );
    let docker_id = docker.ok(
        &sb,
        &["image", "inspect", "--format", "{{.Id}}", &from_berth],
    );
    assert_eq!(
        docker_id.stdout.trim(),
        berth_id,
        "docker and berth disagree on the image id"
    );
    let run = sb.run(docker.cmd().args([
        "run",
        "--rm",
        "--network",
        "none",
        &from_berth,
        "sh",
        "-c",
        "echo ok",
    ]));
    sb.expect_stdout(&run, "ok");

    // `berth save` to stdout works the same (docker load reads stdin).
    let archive2 = sb.root.join("from-berth-stdout.tar");
    let out = sb.run_redirected(
        sb.berth(&dr).args(["save", &from_berth]),
        None,
        Some(&archive2),
    );
    sb.expect_code(&out, 0);
    docker.ok(&sb, &["rmi", &from_berth]);
    let load = sb.run_redirected(docker.cmd().arg("load"), Some(&archive2), None);
    sb.expect_code(&load, 0);
    assert!(
        load.stdout.contains(&from_berth),
        "docker load < (berth save):\n{load}"
    );
}

#[test]
fn images_on_one_base_share_its_layer_on_disk() {
    const TEST: &str = "images_on_one_base_share_its_layer_on_disk";
    let Some(sb) = Sandbox::new(TEST, TOOLS) else {
        return;
    };
    let Some(docker) = Docker::start(&sb) else {
        return;
    };
    let dr = sb.data_root("data");
    let tar = sb.busybox_tar();
    let base = format!("berth-test/base:{}", sb.uniq);
    docker.ok(&sb, &["import", tar.to_str().unwrap(), &base]);

    // Two images FROM base, each adding one file (legacy builder: offline, no buildx).
    let sizes = [64 * 1024usize, 128 * 1024];
    let mut names = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let ctx = sb.root.join(format!("ctx{i}"));
        fs::create_dir_all(&ctx).unwrap();
        let data: Vec<u8> = (0..*size)
            .map(|n| (n as u32).wrapping_mul(2_654_435_761).wrapping_shr(13) as u8)
            .collect();
        fs::write(ctx.join("x"), data).unwrap();
        fs::write(ctx.join("Dockerfile"), format!("FROM {base}\nCOPY x /x\n")).unwrap();
        let name = format!("berth-test/child{i}:{}", sb.uniq);
        let out = sb.run(
            docker
                .cmd()
                .env("DOCKER_BUILDKIT", "0")
                .args(["build", "--quiet", "--tag", &name])
                .arg(&ctx),
        );
        sb.expect_code(&out, 0);
        names.push(name);
    }
    let archive = sb.root.join("children.tar");
    let mut args = vec!["save", "-o", archive.to_str().unwrap()];
    args.extend(names.iter().map(String::as_str));
    docker.ok(&sb, &args);

    let load = sb.b_ok(&dr, &["load", "-i", archive.to_str().unwrap()]);
    for n in &names {
        assert!(
            load.stdout.contains(&format!("Loaded image: {n}")),
            "berth load did not load {n}:\n{load}"
        );
        let docker_id = docker.ok(&sb, &["image", "inspect", "--format", "{{.Id}}", n]);
        let berth_id = sb.b_ok(&dr, &["image", "inspect", "--format", "{{.Id}}", n]);
        assert_eq!(
            berth_id.stdout.trim(),
            docker_id.stdout.trim(),
            "{n}: ids differ"
        );
    }

    let snaps = snapshot_dirs(&dr);
    let usage: Vec<(u64, u64)> = snaps.iter().map(|s| disk_usage(s)).collect();
    let (rootfs_bytes, _) = disk_usage(&sb.root.join("rootfs"));
    let total: u64 = usage.iter().map(|u| u.0).sum();
    let total_alloc: u64 = usage.iter().map(|u| u.1).sum();
    let base_bytes = usage.iter().map(|u| u.0).max().unwrap_or(0);
    eprintln!("{TEST}: busybox rootfs {rootfs_bytes} bytes; added files {sizes:?} bytes");
    for (s, (bytes, alloc)) in snaps.iter().zip(&usage) {
        eprintln!(
            "{TEST}: snapshot {} : {bytes} bytes ({alloc} allocated)",
            &s.file_name().unwrap().to_string_lossy()[..12]
        );
    }
    let (store_bytes, store_alloc) = disk_usage(&dr);
    eprintln!(
        "{TEST}: snapshots total {total} bytes ({total_alloc} allocated) for 2 images of \
         {rootfs_bytes}+ bytes each; whole data root {store_bytes} bytes ({store_alloc} allocated)"
    );

    assert_eq!(
        snaps.len(),
        3,
        "expected 3 snapshots (base + one per child), found {snaps:?}"
    );
    assert!(
        base_bytes >= rootfs_bytes,
        "the largest snapshot ({base_bytes}) is smaller than the base rootfs ({rootfs_bytes})"
    );
    let added: u64 = sizes.iter().map(|s| *s as u64).sum();
    let slack = 64 * 1024;
    assert!(
        total <= base_bytes + added + slack,
        "snapshots hold {total} bytes: more than one base ({base_bytes}) + the added files \
         ({added}) + {slack}: the base is not shared"
    );

    // Both images still see the base and their own file only.
    for (n, size) in names.iter().zip(sizes) {
        let run = sb.b(
            &dr,
            &[
                "run",
                "--rm",
                n,
                "sh",
                "-c",
                "wc -c < /x; test -x /bin/busybox && echo base-ok",
            ],
        );
        sb.expect_stdout(&run, &format!("{size}\nbase-ok"));
    }
}
