//! Tests of import/export/save/load and of the image service built on them. They use the
//! host's static busybox as image content and skopeo (when installed) as a second opinion on
//! the archive formats.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::store::Usage;

fn rootfs_tar(extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    for d in ["bin/", "etc/", "tmp/"] {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1);
        h.set_size(0);
        b.append_data(&mut h, d, io::empty()).unwrap();
    }
    let bb = fs::read("/bin/busybox").unwrap_or_else(|_| b"#!fake busybox".to_vec());
    let mut h = file_header(bb.len() as u64);
    h.set_mode(0o755);
    b.append_data(&mut h, "bin/busybox", bb.as_slice()).unwrap();
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Symlink);
    h.set_mode(0o777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1);
    h.set_size(0);
    b.append_link(&mut h, "bin/sh", "busybox").unwrap();
    let passwd = b"root:x:0:0:root:/root:/bin/sh\n";
    let mut h = file_header(passwd.len() as u64);
    b.append_data(&mut h, "etc/passwd", &passwd[..]).unwrap();
    for (p, d) in extra {
        let mut h = file_header(d.len() as u64);
        b.append_data(&mut h, p, *d).unwrap();
    }
    b.into_inner().unwrap()
}

fn import_bb(images: &Images, tag: &str) -> ImageRecord {
    import(
        images,
        Cursor::new(rootfs_tar(&[])),
        &ImportOptions {
            reference: Some(Reference::parse(tag).unwrap()),
            changes: vec!["CMD [\"sh\"]".into(), "ENV A=1".into(), "EXPOSE 80".into()],
            message: None,
            source: "-".into(),
        },
    )
    .unwrap()
}

fn tar_names(data: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(data);
    ar.entries()
        .unwrap()
        .map(|e| String::from_utf8(e.unwrap().path_bytes().to_vec()).unwrap())
        .collect()
}

fn unused(_: &Digest) -> Usage {
    Usage::Unused
}

#[test]
fn import_history_and_config() {
    let t = tempfile::tempdir().unwrap();
    let images = Images::open(t.path()).unwrap();
    let img = import_bb(&images, "bb:1");
    assert_eq!(img.familiar_tags(), vec!["bb:1"]);
    assert_eq!(img.layers.len(), 1);
    assert!(images.snapshots.exists(&img.layers[0].chain_id));
    let cfg = images.config(&img.id).unwrap();
    let rc = cfg.run_config();
    assert_eq!(rc.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(rc.env, Some(vec!["A=1".to_string()]));
    assert!(rc.exposed_ports.unwrap().contains_key("80/tcp"));
    assert_eq!(cfg.os, "linux");
    let h = images.history("bb:1").unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].id.as_ref(), Some(&img.id));
    assert_eq!(h[0].comment, "Imported from -");
    assert_eq!(h[0].size, img.size);
    // The manifest and layer blob are in the content store and verify.
    let (md, m) = images.manifest(&img).unwrap();
    images.content.verify(&md).unwrap();
    images.content.verify(&m.layers[0].digest).unwrap();
    assert_eq!(m.layers[0].media_type, crate::config::MEDIA_OCI_LAYER_GZIP);
    // Garbage collection keeps everything that is referenced.
    assert_eq!(images.gc().unwrap(), (0, 0));
}

#[test]
fn bad_changes() {
    let mut rc = RunConfig::default();
    assert!(apply_changes(&mut rc, &["RUN rm -rf /".into()]).is_err());
    assert!(apply_changes(&mut rc, &["EXPOSE abc".into()]).is_err());
    apply_changes(
        &mut rc,
        &[
            "ENTRYPOINT /bin/app --flag".into(),
            "ENV B \"two words\"".into(),
            "LABEL a=1 \"b c\"=\"d e\"".into(),
            "WORKDIR /srv".into(),
            "WORKDIR sub".into(),
            "VOLUME [\"/data\", \"/logs\"]".into(),
            "USER nobody".into(),
            "STOPSIGNAL SIGQUIT".into(),
        ],
    )
    .unwrap();
    assert_eq!(
        rc.entrypoint.unwrap(),
        vec!["/bin/sh", "-c", "/bin/app --flag"]
    );
    assert_eq!(rc.env.unwrap(), vec!["B=two words"]);
    assert_eq!(rc.labels.unwrap()["b c"], "d e");
    assert_eq!(rc.working_dir.as_deref(), Some("/srv/sub"));
    assert_eq!(rc.volumes.unwrap().len(), 2);
    assert_eq!(rc.user.as_deref(), Some("nobody"));
}

fn skopeo() -> Option<PathBuf> {
    ["/usr/bin/skopeo", "/usr/local/bin/skopeo"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

#[test]
fn save_load_roundtrip_and_interop() {
    let t = tempfile::tempdir().unwrap();
    let a = Images::open(&t.path().join("a")).unwrap();
    let img = import_bb(&a, "bb:1");
    a.tag("bb:1", "bb:2").unwrap();
    a.tag("bb:1", "other:x").unwrap();

    // `save bb` saves every tag of repository bb, not other:x.
    let tar = save(&a, &["bb"], Vec::new()).unwrap();
    let names = tar_names(&tar);
    for n in ["index.json", "manifest.json", "oci-layout", "repositories"] {
        assert!(names.contains(&n.to_string()), "{n} missing: {names:?}");
    }
    let diff = &img.layers[0].diff_id;
    assert!(names.contains(&format!("blobs/sha256/{}", diff.hex())));
    assert!(names.contains(&format!("blobs/sha256/{}", img.id.hex())));
    let mut ar = tar::Archive::new(tar.as_slice());
    let mut mj = String::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path_bytes().as_ref() == b"manifest.json" {
            e.read_to_string(&mut mj).unwrap();
        }
    }
    let entries: Vec<SaveManifestEntry> = serde_json::from_str(&mj).unwrap();
    assert_eq!(entries.len(), 1);
    let mut tags = entries[0].repo_tags.clone().unwrap();
    tags.sort();
    assert_eq!(tags, vec!["bb:1", "bb:2"]);

    // Load into another root: same image ID, same tags, layer unpacked.
    let b = Images::open(&t.path().join("b")).unwrap();
    let rep = load(&b, tar.as_slice()).unwrap();
    assert_eq!(rep.images.len(), 1);
    assert_eq!(rep.images[0].0, img.id);
    assert!(
        rep.lines.contains(&"Loaded image: bb:1".to_string()),
        "{:?}",
        rep.lines
    );
    let loaded = b.resolve("bb:2").unwrap();
    assert_eq!(loaded.id, img.id);
    assert!(b.snapshots.exists(&loaded.layers[0].chain_id));
    // Loading again is idempotent.
    load(&b, tar.as_slice()).unwrap();
    assert_eq!(b.list().unwrap().len(), 1);

    // Saving by ID: no tags.
    let by_id = save(&a, &[&img.id.hex()[..12]], Vec::new()).unwrap();
    let c = Images::open(&t.path().join("c")).unwrap();
    let rep = load(&c, by_id.as_slice()).unwrap();
    assert_eq!(rep.lines, vec![format!("Loaded image ID: {}", img.id)]);

    // umoci (when installed) unpacks our archive as an OCI image layout.
    if Path::new("/usr/bin/umoci").exists() {
        let layout = t.path().join("layout");
        fs::create_dir(&layout).unwrap();
        let archive_path = t.path().join("for-umoci.tar");
        fs::write(&archive_path, &tar).unwrap();
        let st = Command::new("tar")
            .arg("-xf")
            .arg(&archive_path)
            .arg("-C")
            .arg(&layout)
            .status()
            .unwrap();
        assert!(st.success());
        let bundle = t.path().join("bundle");
        let out = Command::new("/usr/bin/umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:1", layout.display()))
            .arg(&bundle)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "umoci: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(bundle.join("rootfs/bin/busybox").is_file());
        assert!(bundle.join("config.json").is_file());
    }

    let Some(sk) = skopeo() else {
        eprintln!("skopeo not installed: interop part skipped");
        return;
    };
    let saved = t.path().join("saved.tar");
    fs::write(&saved, &tar).unwrap();
    // skopeo reads our archive both as docker-archive and as oci-archive.
    // (Two tags in the index: oci-archive needs the tag, which is the ref.name annotation.)
    for src in [
        format!("docker-archive:{}", saved.display()),
        format!("oci-archive:{}:1", saved.display()),
    ] {
        let out = Command::new(&sk)
            .args(["inspect", "--raw", &src])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo {src}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(&sk)
        .args([
            "inspect",
            "--config",
            &format!("docker-archive:{}", saved.display()),
        ])
        .output()
        .unwrap();
    let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cfg["config"]["Cmd"][0], "sh");
    // skopeo writes an OCI archive (gzip layers, its own manifest) that we load.
    let oci = t.path().join("oci.tar");
    let st = Command::new(&sk)
        .args([
            "copy",
            "--quiet",
            &format!("docker-archive:{}", saved.display()),
            &format!("oci-archive:{}:bb:oci", oci.display()),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let d = Images::open(&t.path().join("d")).unwrap();
    let rep = load(&d, File::open(&oci).unwrap()).unwrap();
    assert_eq!(rep.images.len(), 1);
    // skopeo rewrites a Docker config as an OCI config (new image ID); the layers and the
    // run settings are the same.
    let loaded = d.store.get(&rep.images[0].0).unwrap().unwrap();
    assert_eq!(loaded.layers[0].diff_id, img.layers[0].diff_id);
    assert_eq!(
        d.config(&loaded.id).unwrap().run_config().cmd,
        Some(vec!["sh".to_string()])
    );
    // skopeo names the manifest "bb:oci" in org.opencontainers.image.ref.name.
    assert_eq!(rep.lines, vec!["Loaded image: bb:oci".to_string()]);
    // And a docker-archive written by skopeo (compressed or not, legacy layout).
    let da = t.path().join("da.tar");
    let st = Command::new(&sk)
        .args([
            "copy",
            "--quiet",
            &format!("oci-archive:{}:bb:oci", oci.display()),
            &format!("docker-archive:{}:skopeo/bb:1", da.display()),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let e = Images::open(&t.path().join("e")).unwrap();
    let rep = load(&e, File::open(&da).unwrap()).unwrap();
    assert_eq!(rep.lines, vec!["Loaded image: skopeo/bb:1".to_string()]);
    assert_eq!(e.resolve("skopeo/bb:1").unwrap().id, loaded.id);
}

fn archive(entries: &[(&str, EntryType, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    for (path, kind, link, data) in entries {
        let mut h = file_header(data.len() as u64);
        h.set_entry_type(*kind);
        match link {
            Some(l) => b.append_link(&mut h, path, l).unwrap(),
            None => b.append_data(&mut h, path, *data).unwrap(),
        }
    }
    b.into_inner().unwrap()
}

#[test]
fn malicious_archives_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let images = Images::open(&t.path().join("root")).unwrap();
    let secret = t.path().join("secret.json");
    fs::write(&secret, br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#).unwrap();
    let cases: Vec<Vec<u8>> = vec![
        // Config path climbing out of the archive.
        archive(&[(
            "manifest.json",
            EntryType::Regular,
            None,
            br#"[{"Config":"../../../../../../../../tmp/x.json","RepoTags":["evil:1"],"Layers":[]}]"#,
        )]),
        // Config behind an absolute symlink to a host file.
        archive(&[
            ("manifest.json", EntryType::Regular, None, br#"[{"Config":"c.json","RepoTags":["evil:1"],"Layers":[]}]"#),
            ("c.json", EntryType::Symlink, Some(secret.to_str().unwrap()), b""),
        ]),
        // An OCI index naming a blob that is not there, and one with a wrong digest.
        archive(&[
            ("oci-layout", EntryType::Regular, None, br#"{"imageLayoutVersion":"1.0.0"}"#),
            (
                "index.json",
                EntryType::Regular,
                None,
                br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}]}"#,
            ),
            (
                "blobs/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                EntryType::Regular,
                None,
                b"not empty",
            ),
        ]),
        b"garbage garbage garbage".to_vec(),
    ];
    for (i, c) in cases.iter().enumerate() {
        assert!(load(&images, c.as_slice()).is_err(), "case {i} loaded");
    }
    assert!(images.list().unwrap().is_empty());
    assert!(images.store.resolve("evil:1").is_err());
    // No blob was kept from the bad index.
    assert!(images.content.list().unwrap().is_empty());
}

fn mounted_dirs(p: &Path) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(p.to_str().unwrap()))
}

#[test]
fn containers_commit_export_and_sharing() {
    let t = tempfile::tempdir().unwrap();
    let images = Images::open(&t.path().join("root")).unwrap();
    let base = import_bb(&images, "base:1");

    // Two containers of the base image, each committed into a child image.
    let mut children = Vec::new();
    for (n, content) in [("c1", vec![1u8; 5000]), ("c2", vec![2u8; 7000])] {
        let cdir = t.path().join(n);
        let l = images
            .create_container_rootfs(n, &base.id, &cdir, true)
            .unwrap();
        assert!(mounted_dirs(&l.target));
        let res = std::panic::catch_unwind(|| {
            assert!(l.target.join("bin/busybox").exists());
            fs::write(l.target.join("tmp/data"), &content).unwrap();
            fs::remove_file(l.target.join("etc/passwd")).unwrap();
            // docker export of the running container.
            let tar = export(&l.target, Vec::new()).unwrap();
            let names = tar_names(&tar);
            assert!(names.contains(&"bin/busybox".to_string()));
            assert!(names.contains(&"tmp/data".to_string()));
            assert!(!names.contains(&"etc/passwd".to_string()));
        });
        let child = images
            .commit(
                &base.id,
                &l.upper,
                &CommitOptionsAlias {
                    comment: Some(format!("commit {n}")),
                    created_by: Some("sh".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        images.remove_container_rootfs(n, &cdir).unwrap();
        assert!(!mounted_dirs(&l.target));
        res.unwrap();
        assert_eq!(child.parent.as_ref(), Some(&base.id));
        assert_eq!(child.layers.len(), 2);
        assert_eq!(child.layers[0].chain_id, base.layers[0].chain_id);
        children.push(child);
    }
    // The base layer is stored once: three snapshots for three images.
    assert_eq!(images.snapshots.list().unwrap().len(), 3);
    let base_bytes = images
        .snapshots
        .disk_usage(&base.layers[0].chain_id)
        .unwrap();
    let total = images.snapshots.total_disk_usage().unwrap();
    assert!(
        total < 2 * base_bytes,
        "base stored twice? total {total}, base {base_bytes}"
    );
    assert_eq!(total, base_bytes + 5000 + 7000);

    // A child's rootfs shows the commit: the new file, and the whiteout hides etc/passwd.
    let cdir = t.path().join("check");
    let l = images
        .create_container_rootfs("check", &children[0].id, &cdir, true)
        .unwrap();
    let seen = (
        fs::read(l.target.join("tmp/data"))
            .map(|v| v.len())
            .unwrap_or(0),
        l.target.join("etc/passwd").exists(),
    );
    images.remove_container_rootfs("check", &cdir).unwrap();
    assert_eq!(seen, (5000, false));
    let h = images.history(&children[0].id.to_string()).unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].comment, "commit c1");
    assert_eq!(h[0].size, 5000);

    // rmi: the base is a parent, so it cannot go while children exist.
    assert!(images.remove("base:1", false, true, &unused).is_ok()); // only untags? no: single tag
                                                                    // Removing the only tag of a parent image with children deletes nothing but the tag.
    assert!(images.store.get(&base.id).unwrap().is_some());
    let o = images
        .remove(&children[0].id.to_string(), false, true, &unused)
        .unwrap();
    assert_eq!(
        o.freed_snapshots,
        vec![children[0].layers[1].chain_id.clone()]
    );
    assert!(!images.snapshots.exists(&children[0].layers[1].chain_id));
    assert!(images.snapshots.exists(&base.layers[0].chain_id));
    let o = images
        .remove(&children[1].id.to_string(), false, true, &unused)
        .unwrap();
    // The untagged parent is pruned with its last child.
    assert!(o.deleted_images.contains(&base.id), "{o:?}");
    assert!(images.snapshots.list().unwrap().is_empty());
    assert!(images.content.list().unwrap().is_empty(), "all blobs freed");
}

use crate::images::CommitOptions as CommitOptionsAlias;
