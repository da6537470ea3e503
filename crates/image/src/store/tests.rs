//! Tests of the image store: lookups, `docker rmi` semantics, prune, refcounts.

use super::*;
use crate::snapshot::chain_ids;

struct Fx {
    _t: tempfile::TempDir,
    s: ImageStore,
}

fn fx() -> Fx {
    let t = tempfile::tempdir().unwrap();
    let s = ImageStore::open(t.path()).unwrap();
    Fx { _t: t, s }
}

fn diff(n: &str) -> Digest {
    Digest::sha256(n.as_bytes())
}

/// Adds an image whose layers have diffIDs sha256(name) for each name; `tag` is an extra
/// string making the config unique.
fn add(s: &ImageStore, layers: &[&str], tag: &str, parent: Option<&Digest>) -> ImageRecord {
    let diffs: Vec<Digest> = layers.iter().map(|l| diff(l)).collect();
    let chains = chain_ids(&diffs);
    let cfg = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-02T03:04:05.5Z",
        "config": {"Labels": {"x": tag}},
        "rootfs": {"type": "layers", "diff_ids": diffs.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    });
    let cfg = serde_json::to_vec(&cfg).unwrap();
    let recs = diffs
        .iter()
        .zip(chains.iter())
        .map(|(d, c)| LayerRecord {
            diff_id: d.clone(),
            chain_id: c.clone(),
            blob: Some(Digest::sha256(format!("blob-{d}").as_bytes())),
            media_type: Some("application/vnd.oci.image.layer.v1.tar+gzip".into()),
            blob_size: Some(10),
            size: 100,
        })
        .collect();
    s.add_image(NewImage {
        manifests: vec![Digest::sha256(format!("manifest-{tag}").as_bytes())],
        config: &cfg,
        config_media_type: "application/vnd.oci.image.config.v1+json".into(),
        layers: recs,
        parent: parent.cloned(),
    })
    .unwrap()
}

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn unused(_: &Digest) -> Usage {
    Usage::Unused
}

fn items(o: &RemoveOutcome) -> Vec<String> {
    o.items
        .iter()
        .map(|i| match i {
            DeleteItem::Untagged(s) => format!("Untagged: {s}"),
            DeleteItem::Deleted(d) => format!("Deleted: {d}"),
        })
        .collect()
}

#[test]
fn rfc3339() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        parse_rfc3339("2024-01-02T03:04:05.123456789Z"),
        Some(1704164645)
    );
    assert_eq!(parse_rfc3339("2024-01-02T05:04:05+02:00"), Some(1704164645));
    assert_eq!(parse_rfc3339("garbage"), None);
}

#[test]
fn add_and_resolve() {
    let f = fx();
    let img = add(&f.s, &["base", "top"], "a", None);
    assert_eq!(img.created_unix, 1704164645);
    assert_eq!(img.size, 200);
    assert_eq!(img.architecture, "amd64");
    f.s.tag(&img.id, &r("busybox")).unwrap();
    f.s.tag(&img.id, &r("localhost:5000/x/y:1.0")).unwrap();
    let m = Digest::sha256(b"manifest-a");
    f.s.tag(
        &img.id,
        &Reference::parse_normalized(&format!("busybox@{m}")).unwrap(),
    )
    .unwrap();
    let id = img.id.to_string();
    for q in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        "library/busybox:latest",
        "localhost:5000/x/y:1.0",
        &format!("busybox@{m}"),
        &id,
        img.id.hex(),
        &img.id.hex()[..12],
        &img.id.hex()[..3],
        &format!("sha256:{}", &img.id.hex()[..8]),
    ] {
        assert_eq!(f.s.resolve(q).unwrap().id, img.id, "{q}");
    }
    for q in [
        "busybox:1",
        "nope",
        "localhost:5000/x/y",
        "sha256:0000",
        "UPPER",
    ] {
        assert!(
            matches!(f.s.resolve(q), Err(StoreError::NotFound(_))),
            "{q}"
        );
    }
    let got = f.s.resolve("busybox").unwrap();
    assert_eq!(
        got.familiar_tags(),
        vec!["busybox:latest", "localhost:5000/x/y:1.0"]
    );
    assert_eq!(got.familiar_digests(), vec![format!("busybox@{m}")]);
    // Re-adding merges manifests and keeps a single reference on snapshots.
    let again = add(&f.s, &["base", "top"], "a", None);
    assert_eq!(again.id, img.id);
    assert_eq!(
        f.s.snapshot_refs()
            .unwrap()
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![1, 1]
    );
    assert_eq!(f.s.len().unwrap(), 1);
}

#[test]
fn ambiguous_short_ids() {
    let f = fx();
    let mut ids: Vec<Digest> = Vec::new();
    let mut i = 0;
    // Find two images whose IDs share the first hex digit.
    let (a, b) = loop {
        let img = add(&f.s, &["l"], &format!("img{i}"), None);
        i += 1;
        if let Some(o) = ids.iter().find(|o| o.hex()[..1] == img.id.hex()[..1]) {
            break (o.clone(), img.id);
        }
        ids.push(img.id);
    };
    let prefix = &a.hex()[..1];
    assert!(matches!(f.s.resolve(prefix), Err(StoreError::Ambiguous(_))));
    assert_eq!(f.s.resolve(&a.hex()[..20]).unwrap().id, a);
    assert_eq!(f.s.resolve(&b.hex()[..20]).unwrap().id, b);
}

#[test]
fn config_must_match_layers() {
    let f = fx();
    let cfg = br#"{"rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}}"#;
    let err =
        f.s.add_image(NewImage {
            manifests: vec![],
            config: cfg,
            config_media_type: String::new(),
            layers: vec![],
            parent: None,
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::LayerMismatch { .. }));
    assert!(f
        .s
        .add_image(NewImage {
            manifests: vec![],
            config: b"not json",
            config_media_type: String::new(),
            layers: vec![],
            parent: None,
        })
        .is_err());
    assert!(f.s.is_empty().unwrap());
}

#[test]
fn rmi_untags_before_deleting() {
    let f = fx();
    let img = add(&f.s, &["base", "top"], "a", None);
    f.s.tag(&img.id, &r("a:1")).unwrap();
    f.s.tag(&img.id, &r("b:1")).unwrap();
    let o = f.s.remove("a:1", false, true, &unused).unwrap();
    assert_eq!(items(&o), vec!["Untagged: a:1"]);
    assert!(o.deleted_images.is_empty());
    let o = f.s.remove("b:1", false, true, &unused).unwrap();
    let chains = img.chain_ids();
    assert_eq!(
        items(&o),
        vec![
            "Untagged: b:1".to_string(),
            format!("Deleted: {}", img.id),
            format!("Deleted: {}", chains[1]),
            format!("Deleted: {}", chains[0]),
        ]
    );
    assert_eq!(o.freed_snapshots.len(), 2);
    assert_eq!(o.freed_blobs.len(), 4); // manifest, config, 2 layers
    assert!(f.s.is_empty().unwrap());
    assert!(f.s.snapshot_refs().unwrap().is_empty());
}

#[test]
fn rmi_by_id_rules() {
    let f = fx();
    let img = add(&f.s, &["base"], "a", None);
    f.s.tag(&img.id, &r("a:1")).unwrap();
    f.s.tag(&img.id, &r("b:1")).unwrap();
    let e =
        f.s.remove(&img.id.hex()[..12], false, true, &unused)
            .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            img.id.short()
        )
    );
    assert_eq!(f.s.resolve("a:1").unwrap().id, img.id);
    let o =
        f.s.remove(&img.id.hex()[..12], true, true, &unused)
            .unwrap();
    assert_eq!(
        items(&o)[..3],
        [
            "Untagged: a:1".to_string(),
            "Untagged: b:1".to_string(),
            format!("Deleted: {}", img.id)
        ]
    );

    // A single tag plus digests of the same repository: by ID removes them all.
    let img = add(&f.s, &["base"], "b", None);
    f.s.tag(&img.id, &r("busybox")).unwrap();
    let m = Digest::sha256(b"manifest-b");
    f.s.tag(
        &img.id,
        &Reference::parse_normalized(&format!("busybox@{m}")).unwrap(),
    )
    .unwrap();
    let o =
        f.s.remove(img.id.as_ref_str(), false, true, &unused)
            .unwrap();
    assert_eq!(
        items(&o)[..3],
        [
            "Untagged: busybox:latest".to_string(),
            format!("Untagged: busybox@{m}"),
            format!("Deleted: {}", img.id)
        ]
    );
}

trait AsRefStr {
    fn as_ref_str(&self) -> &str;
}
impl AsRefStr for Digest {
    fn as_ref_str(&self) -> &str {
        self.hex()
    }
}

#[test]
fn rmi_tag_removes_same_repo_digests() {
    let f = fx();
    let img = add(&f.s, &["base"], "a", None);
    let m = Digest::sha256(b"manifest-a");
    f.s.tag(&img.id, &r("busybox")).unwrap();
    f.s.tag(
        &img.id,
        &Reference::parse_normalized(&format!("busybox@{m}")).unwrap(),
    )
    .unwrap();
    let o = f.s.remove("busybox", false, true, &unused).unwrap();
    assert_eq!(
        items(&o)[..3],
        [
            "Untagged: busybox:latest".to_string(),
            format!("Untagged: busybox@{m}"),
            format!("Deleted: {}", img.id)
        ]
    );
}

#[test]
fn rmi_with_containers() {
    let f = fx();
    let img = add(&f.s, &["base"], "a", None);
    f.s.tag(&img.id, &r("app")).unwrap();
    let cid = "0123456789abcdef0123456789abcdef";
    let stopped = |_: &Digest| Usage::Stopped(cid.to_string());
    let running = |_: &Digest| Usage::Running(cid.to_string());
    let e = f.s.remove("app", false, true, &stopped).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "conflict: unable to remove repository reference \"app\" (must force) - container 0123456789ab is using its referenced image {}",
            img.id.short()
        )
    );
    let e = f.s.remove(img.id.hex(), false, true, &stopped).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("(must be forced) - image is being used by stopped container 0123456789ab"),
        "{e}"
    );
    let e = f.s.remove(img.id.hex(), true, true, &running).unwrap_err();
    assert!(
        e.to_string().ends_with(
            "(cannot be forced) - image is being used by running container 0123456789ab"
        ),
        "{e}"
    );
    assert!(f.s.resolve("app").is_ok(), "a failed rmi changes nothing");

    // The container holds the snapshots: rmi -f frees the image but not its layers.
    f.s.add_container(cid, &img.id).unwrap();
    let o = f.s.remove("app", true, true, &stopped).unwrap();
    assert_eq!(o.deleted_images, vec![img.id.clone()]);
    assert!(o.freed_snapshots.is_empty());
    assert_eq!(f.s.remove_container(cid).unwrap(), img.chain_ids());
    assert!(f.s.remove_container(cid).unwrap().is_empty());
}

#[test]
fn shared_layers_are_refcounted() {
    let f = fx();
    let a = add(&f.s, &["base", "a"], "a", None);
    let b = add(&f.s, &["base", "b"], "b", None);
    assert_eq!(a.layers[0].chain_id, b.layers[0].chain_id);
    assert_eq!(f.s.snapshot_refs().unwrap()[&a.layers[0].chain_id], 2);
    let o = f.s.remove(a.id.hex(), false, true, &unused).unwrap();
    assert_eq!(o.freed_snapshots, vec![a.layers[1].chain_id.clone()]);
    // The base layer blob is still needed by b.
    assert!(!o.freed_blobs.contains(a.layers[0].blob.as_ref().unwrap()));
    let o = f.s.remove(b.id.hex(), false, true, &unused).unwrap();
    assert_eq!(o.freed_snapshots.len(), 2);
    assert!(o.freed_blobs.contains(b.layers[0].blob.as_ref().unwrap()));
}

#[test]
fn parents_children_and_prune() {
    let f = fx();
    let parent = add(&f.s, &["base"], "p", None);
    let child = add(&f.s, &["base", "c"], "c", Some(&parent.id));
    f.s.tag(&child.id, &r("child")).unwrap();
    let e =
        f.s.remove(parent.id.hex(), true, true, &unused)
            .unwrap_err();
    assert!(
        e.to_string()
            .contains("(cannot be forced) - image has dependent child images"),
        "{e}"
    );
    assert_eq!(f.s.children(&parent.id).unwrap(), vec![child.id.clone()]);
    // Removing the child prunes the untagged parent too.
    let o = f.s.remove("child", false, true, &unused).unwrap();
    assert_eq!(o.deleted_images, vec![child.id.clone(), parent.id.clone()]);
    assert!(f.s.is_empty().unwrap());

    // --no-prune keeps the parent.
    let parent = add(&f.s, &["base"], "p", None);
    let child = add(&f.s, &["base", "c"], "c", Some(&parent.id));
    f.s.tag(&child.id, &r("child")).unwrap();
    let o = f.s.remove("child", false, false, &unused).unwrap();
    assert_eq!(o.deleted_images, vec![child.id.clone()]);
    assert!(f.s.get(&parent.id).unwrap().is_some());
}

#[test]
fn image_prune() {
    let f = fx();
    let dangling = add(&f.s, &["d"], "dangling", None);
    let used_dangling = add(&f.s, &["u"], "used", None);
    let tagged = add(&f.s, &["t"], "tagged", None);
    f.s.tag(&tagged.id, &r("keep:me")).unwrap();
    let digest_only = add(&f.s, &["g"], "digest-only", None);
    let m = Digest::sha256(b"manifest-digest-only");
    f.s.tag(
        &digest_only.id,
        &Reference::parse_normalized(&format!("x@{m}")).unwrap(),
    )
    .unwrap();
    let uid = used_dangling.id.clone();
    let usage = move |d: &Digest| {
        if *d == uid {
            Usage::Stopped("c1".into())
        } else {
            Usage::Unused
        }
    };
    let o = f.s.prune(false, &usage, &|_| true).unwrap();
    let mut del = o.deleted_images.clone();
    del.sort();
    let mut want = vec![dangling.id.clone(), digest_only.id.clone()];
    want.sort();
    assert_eq!(del, want);
    assert!(f.s.get(&tagged.id).unwrap().is_some());
    assert!(f.s.get(&used_dangling.id).unwrap().is_some());
    let o = f.s.prune(true, &usage, &|_| true).unwrap();
    assert_eq!(o.deleted_images, vec![tagged.id.clone()]);
    assert_eq!(items(&o)[0], "Untagged: keep:me");
    assert_eq!(f.s.len().unwrap(), 1);
}

#[test]
fn persists_across_reopen() {
    let t = tempfile::tempdir().unwrap();
    let id = {
        let s = ImageStore::open(t.path()).unwrap();
        let img = add(&s, &["x"], "a", None);
        s.tag(&img.id, &r("persist:1")).unwrap();
        img.id
    };
    let s = ImageStore::open(t.path()).unwrap();
    let img = s.resolve("persist:1").unwrap();
    assert_eq!(img.id, id);
    assert_eq!(img.layers.len(), 1);
    // Retagging moves the tag; the old image becomes dangling.
    let other = add(&s, &["y"], "b", None);
    assert_eq!(s.tag(&other.id, &r("persist:1")).unwrap(), Some(id.clone()));
    assert!(s.get(&id).unwrap().unwrap().is_dangling());
    assert_eq!(s.untag(&r("persist:1")).unwrap(), Some(other.id));
}
