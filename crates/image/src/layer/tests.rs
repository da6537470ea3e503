//! Tests of layer apply/diff, including crafted malicious tars (run as root: device nodes,
//! ownership, trusted.* xattrs).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::{Builder, EntryType, Header};

use super::*;
use crate::digest::Digest;

/// Builds tar entries with raw path/link bytes (no sanitising, unlike tar's own helpers).
struct Tb {
    b: Builder<Vec<u8>>,
}

impl Tb {
    fn new() -> Self {
        Tb {
            b: Builder::new(Vec::new()),
        }
    }

    fn long(&mut self, kind: u8, data: &[u8]) {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        h.set_size(data.len() as u64 + 1);
        h.set_entry_type(EntryType::new(kind));
        h.set_mode(0o644);
        h.set_cksum();
        let mut d = data.to_vec();
        d.push(0);
        self.b.append(&h, d.as_slice()).unwrap();
    }

    #[allow(clippy::too_many_arguments)]
    fn raw(
        &mut self,
        path: &[u8],
        kind: EntryType,
        link: Option<&[u8]>,
        data: &[u8],
        mode: u32,
        uid: u64,
        mtime: u64,
    ) {
        if path.len() > 100 {
            self.long(b'L', path);
        }
        let mut h = Header::new_gnu();
        let n = path.len().min(100);
        h.as_old_mut().name[..n].copy_from_slice(&path[..n]);
        if let Some(l) = link {
            if l.len() > 100 {
                self.long(b'K', l);
            }
            let n = l.len().min(100);
            h.as_old_mut().linkname[..n].copy_from_slice(&l[..n]);
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mtime(mtime);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
    }

    fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.raw(
            path.as_bytes(),
            EntryType::Regular,
            None,
            data,
            0o644,
            0,
            1_000_000,
        );
        self
    }
    fn dir(&mut self, path: &str) -> &mut Self {
        self.raw(
            path.as_bytes(),
            EntryType::Directory,
            None,
            b"",
            0o755,
            0,
            1_000_000,
        );
        self
    }
    fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(
            path.as_bytes(),
            EntryType::Symlink,
            Some(target.as_bytes()),
            b"",
            0o777,
            0,
            1_000_000,
        );
        self
    }
    fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.raw(
            path.as_bytes(),
            EntryType::Link,
            Some(target.as_bytes()),
            b"",
            0o644,
            0,
            1_000_000,
        );
        self
    }
    fn pax(&mut self, recs: &[(&str, &[u8])]) -> &mut Self {
        self.b.append_pax_extensions(recs.iter().copied()).unwrap();
        self
    }
    fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

/// A sandbox: `outer/` holds the target `outer/root` and sentinel files next to it.
struct Sandbox {
    _t: tempfile::TempDir,
    outer: PathBuf,
    root: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let t = tempfile::tempdir().unwrap();
        let outer = t.path().join("outer");
        let root = outer.join("a/b/root");
        fs::create_dir_all(&root).unwrap();
        fs::write(outer.join("secret"), b"untouched").unwrap();
        Sandbox { outer, root, _t: t }
    }

    /// Every path under `outer` except those under `root`.
    fn outside(&self) -> Vec<PathBuf> {
        fn walk(p: &Path, skip: &Path, out: &mut Vec<PathBuf>) {
            for e in fs::read_dir(p).unwrap() {
                let e = e.unwrap().path();
                if e == skip {
                    continue;
                }
                out.push(e.clone());
                if fs::symlink_metadata(&e).unwrap().is_dir() {
                    walk(&e, skip, out);
                }
            }
        }
        let mut v = Vec::new();
        walk(&self.outer, &self.root, &mut v);
        v.sort();
        v
    }

    fn assert_outside_untouched(&self) {
        let o = self.outside();
        let want: Vec<PathBuf> = vec![
            self.outer.join("a"),
            self.outer.join("a/b"),
            self.outer.join("secret"),
        ];
        assert_eq!(o, want, "something was written outside the root");
        assert_eq!(fs::read(self.outer.join("secret")).unwrap(), b"untouched");
        assert_eq!(fs::metadata(self.outer.join("secret")).unwrap().nlink(), 1);
    }

    fn apply(&self, tar: &[u8], mode: WhiteoutMode) -> Result<AppliedLayer, LayerError> {
        apply_layer(
            tar,
            &self.root,
            &ApplyOptions {
                whiteouts: mode,
                ..Default::default()
            },
        )
    }
}

#[test]
fn unpacks_all_kinds() {
    let sb = Sandbox::new();
    let mut t = Tb::new();
    t.dir("etc/").file("etc/hosts", b"127.0.0.1 localhost\n");
    t.raw(
        b"bin/su",
        EntryType::Regular,
        None,
        b"#!",
        0o4755,
        0,
        1_000_000,
    );
    t.raw(
        b"home/u/f",
        EntryType::Regular,
        None,
        b"x",
        0o600,
        1234,
        1_234_567,
    );
    t.symlink("etc/localtime", "/usr/share/zoneinfo/UTC");
    t.hardlink("etc/hosts2", "etc/hosts");
    t.raw(b"dev/null", EntryType::Char, None, b"", 0o666, 0, 1_000_000);
    t.raw(b"run/fifo", EntryType::Fifo, None, b"", 0o620, 0, 1_000_000);
    t.pax(&[
        ("SCHILY.xattr.user.greeting", b"hi"),
        ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
    ]);
    t.dir("xdir/");
    let long = format!("deep/{}/file", "d".repeat(150));
    t.file(&long, b"long");
    t.raw(b"./", EntryType::Directory, None, b"", 0o755, 0, 1_000_000);
    let tar = t.finish();
    let plain_id = Digest::sha256(&tar);

    let applied = sb.apply(&tar, WhiteoutMode::Overlay).unwrap();
    assert_eq!(applied.diff_id, plain_id);
    assert_eq!(applied.tar_size, tar.len() as u64);
    assert_eq!(applied.compression, Compression::None);
    let r = &sb.root;
    assert_eq!(
        fs::read(r.join("etc/hosts")).unwrap(),
        b"127.0.0.1 localhost\n"
    );
    assert_eq!(fs::metadata(r.join("etc/hosts")).unwrap().nlink(), 2);
    assert_eq!(
        fs::metadata(r.join("etc/hosts")).unwrap().ino(),
        fs::metadata(r.join("etc/hosts2")).unwrap().ino()
    );
    assert_eq!(
        fs::metadata(r.join("bin/su")).unwrap().permissions().mode() & 0o7777,
        0o4755
    );
    let m = fs::metadata(r.join("home/u/f")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777, m.mtime()),
        (1234, 1234, 0o600, 1_234_567)
    );
    assert_eq!(
        fs::read_link(r.join("etc/localtime")).unwrap(),
        PathBuf::from("/usr/share/zoneinfo/UTC")
    );
    let dn = fs::symlink_metadata(r.join("dev/null")).unwrap();
    assert!(dn.file_type().is_char_device());
    let fifo = fs::symlink_metadata(r.join("run/fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o620);
    assert_eq!(
        fsops::lgetxattr(&r.join("xdir"), "user.greeting")
            .unwrap()
            .as_deref(),
        Some(&b"hi"[..])
    );
    // A layer cannot set overlayfs' own attributes.
    assert_eq!(
        fsops::lgetxattr(&r.join("xdir"), OVERLAY_OPAQUE_XATTR).unwrap(),
        None
    );
    assert_eq!(fs::read(r.join(&long)).unwrap(), b"long");
    assert_eq!(fs::metadata(r.join("etc")).unwrap().mtime(), 1_000_000);
    assert_eq!(applied.unpacked_size, 20 + 2 + 1 + 4);
    sb.assert_outside_untouched();

    // Compressed forms give the same diffID.
    for c in [Compression::Gzip, Compression::Zstd] {
        let sb2 = Sandbox::new();
        let mut comp = Compressor::new(Vec::new(), c).unwrap();
        comp.write_all(&tar).unwrap();
        let z = comp.finish().unwrap();
        let a = sb2.apply(&z, WhiteoutMode::Overlay).unwrap();
        assert_eq!(a.diff_id, plain_id);
        assert_eq!(a.compression, c);
    }
}

#[test]
fn overlay_whiteouts() {
    let sb = Sandbox::new();
    let mut t = Tb::new();
    t.dir("a/")
        .file("a/.wh.gone", b"")
        .dir("b/")
        .file("b/.wh..wh..opq", b"");
    t.file("b/kept", b"k").file(".wh..wh.plnk", b"");
    let applied = sb.apply(&t.finish(), WhiteoutMode::Overlay).unwrap();
    let w = fs::symlink_metadata(sb.root.join("a/gone")).unwrap();
    assert!(w.file_type().is_char_device());
    assert_eq!(w.rdev(), 0);
    assert_eq!(
        fsops::lgetxattr(&sb.root.join("b"), OVERLAY_OPAQUE_XATTR)
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert!(!sb.root.join(".wh..wh.plnk").exists());
    assert!(!sb.root.join("a/.wh.gone").exists());
    assert!(applied.diff_id.to_string().starts_with("sha256:"));

    // The diff of that directory gives back the same whiteouts.
    let (sum, tar) = write_diff(&sb.root, Vec::new()).unwrap();
    assert_eq!(sum.digest, Digest::sha256(&tar));
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(tar.as_slice());
    for e in ar.entries().unwrap() {
        names.push(String::from_utf8(e.unwrap().path_bytes().to_vec()).unwrap());
    }
    assert_eq!(
        names,
        vec!["a/", "a/.wh.gone", "b/", "b/.wh..wh..opq", "b/kept"]
    );
    let sb2 = Sandbox::new();
    let again = sb2.apply(&tar, WhiteoutMode::Overlay).unwrap();
    assert_eq!(again.diff_id, sum.digest);
    assert!(fs::symlink_metadata(sb2.root.join("a/gone"))
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn delete_mode_whiteouts() {
    let sb = Sandbox::new();
    let mut t = Tb::new();
    t.dir("d/")
        .file("d/old1", b"1")
        .file("d/old2", b"2")
        .file("x", b"x")
        .file("y", b"y");
    sb.apply(&t.finish(), WhiteoutMode::Delete).unwrap();
    let mut t = Tb::new();
    t.dir("d/")
        .file("d/.wh..wh..opq", b"")
        .file("d/new", b"n")
        .file(".wh.x", b"");
    t.file(".wh.nonexistent", b"");
    sb.apply(&t.finish(), WhiteoutMode::Delete).unwrap();
    let mut in_d: Vec<_> = fs::read_dir(sb.root.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    in_d.sort();
    assert_eq!(in_d, vec!["new"]);
    assert!(!sb.root.join("x").exists());
    assert!(sb.root.join("y").exists());
}

#[test]
fn write_tar_roundtrip_with_hardlinks_and_devices() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("d/e")).unwrap();
    fs::write(src.join("d/f"), b"data").unwrap();
    fs::hard_link(src.join("d/f"), src.join("d/e/g")).unwrap();
    std::os::unix::fs::symlink("../f", src.join("d/e/s")).unwrap();
    nix::sys::stat::mknod(
        &src.join("tty"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o620),
        nix::sys::stat::makedev(5, 0),
    )
    .unwrap();
    fs::write(src.join("skip-me"), b"no").unwrap();
    let opts = TarOptions {
        overlay_whiteouts: false,
        exclude: vec!["skip-me".into()],
    };
    let (sum, tar) = write_tar(&src, Vec::new(), &opts).unwrap();
    let dst = t.path().join("dst");
    fs::create_dir(&dst).unwrap();
    let a = apply_layer(tar.as_slice(), &dst, &ApplyOptions::default()).unwrap();
    assert_eq!(a.diff_id, sum.digest);
    assert_eq!(
        fs::metadata(dst.join("d/e/g")).unwrap().ino(),
        fs::metadata(dst.join("d/f")).unwrap().ino()
    );
    assert_eq!(
        fs::read_link(dst.join("d/e/s")).unwrap(),
        PathBuf::from("../f")
    );
    let tty = fs::symlink_metadata(dst.join("tty")).unwrap();
    assert!(tty.file_type().is_char_device());
    assert_eq!(tty.rdev(), nix::sys::stat::makedev(5, 0));
    assert!(!dst.join("skip-me").exists());
}

// ---- malicious layers -------------------------------------------------------------------

#[test]
fn refuses_dotdot_paths() {
    for path in [
        &b"../../secret"[..],
        b"../../../../../../tmp/evil",
        b"a/../../x",
        b"./../x",
        b"..",
    ] {
        let sb = Sandbox::new();
        let mut t = Tb::new();
        t.raw(path, EntryType::Regular, None, b"pwned", 0o644, 0, 0);
        let err = sb.apply(&t.finish(), WhiteoutMode::Overlay).unwrap_err();
        assert!(
            matches!(err, LayerError::Breakout { .. }),
            "{path:?}: {err}"
        );
        sb.assert_outside_untouched();
    }
    // The same through a GNU long name and a PAX path record.
    let sb = Sandbox::new();
    let mut t = Tb::new();
    let long = format!("{}../../../../secret", "x/../".repeat(30));
    t.raw(
        long.as_bytes(),
        EntryType::Regular,
        None,
        b"pwned",
        0o644,
        0,
        0,
    );
    assert!(sb.apply(&t.finish(), WhiteoutMode::Overlay).is_err());
    sb.assert_outside_untouched();
    let sb = Sandbox::new();
    let mut t = Tb::new();
    t.pax(&[("path", b"../../../secret")]);
    t.file("innocent", b"pwned");
    assert!(sb.apply(&t.finish(), WhiteoutMode::Overlay).is_err());
    sb.assert_outside_untouched();
}

#[test]
fn absolute_paths_are_contained() {
    let sb = Sandbox::new();
    let mut t = Tb::new();
    t.raw(b"/abs/file", EntryType::Regular, None, b"in", 0o644, 0, 0);
    let secret = sb.outer.join("secret");
    t.raw(
        secret.as_os_str().as_encoded_bytes(),
        EntryType::Regular,
        None,
        b"pwned",
        0o644,
        0,
        0,
    );
    sb.apply(&t.finish(), WhiteoutMode::Overlay).unwrap();
    assert_eq!(fs::read(sb.root.join("abs/file")).unwrap(), b"in");
    let inside = sb.root.join(secret.strip_prefix("/").unwrap());
    assert_eq!(fs::read(inside).unwrap(), b"pwned");
    sb.assert_outside_untouched();
}

#[test]
fn symlink_parent_escapes_are_contained() {
    let sb = Sandbox::new();
    let outer = sb.outer.to_str().unwrap().to_string();
    let mut t = Tb::new();
    // An absolute symlink to the host's outer directory, then writes "through" it.
    t.symlink("link", &outer);
    t.file("link/secret", b"pwned");
    t.file("link/newfile", b"pwned");
    // A symlink to "/" then a deep write.
    t.symlink("rootlink", "/");
    t.file("rootlink/etc/shadow-x", b"pwned");
    // Chains of symlinks.
    t.symlink("c1", "c2").symlink("c2", "/c3").dir("c3/");
    t.file("c1/through", b"ok");
    sb.apply(&t.finish(), WhiteoutMode::Overlay).unwrap();
    let rel = outer.trim_start_matches('/');
    assert_eq!(
        fs::read(sb.root.join(rel).join("secret")).unwrap(),
        b"pwned"
    );
    assert_eq!(fs::read(sb.root.join("etc/shadow-x")).unwrap(), b"pwned");
    assert_eq!(fs::read(sb.root.join("c3/through")).unwrap(), b"ok");
    sb.assert_outside_untouched();
}

#[test]
fn preexisting_symlinks_from_lower_layers_are_contained() {
    // A lower layer (applied in Delete mode into the same tree) left symlinks that point out of
    // the root; an upper layer writes through them, replaces them, hard-links through them and
    // whites out through them.
    let sb = Sandbox::new();
    std::os::unix::fs::symlink("../../..", sb.root.join("up")).unwrap();
    std::os::unix::fs::symlink(&sb.outer, sb.root.join("abs")).unwrap();
    std::os::unix::fs::symlink(sb.outer.join("secret"), sb.root.join("victim")).unwrap();
    let mut t = Tb::new();
    t.file("up/secret", b"pwned");
    t.file("abs/secret2", b"pwned");
    t.file("victim", b"replaced the link, not its target");
    t.file(".wh.nothing", b"");
    t.file("up/.wh.secret", b"");
    t.file("abs/.wh.secret", b"");
    sb.apply(&t.finish(), WhiteoutMode::Delete).unwrap();
    assert_eq!(fs::read(sb.root.join("secret")).unwrap_or_default(), b"");
    assert!(fs::symlink_metadata(sb.root.join("victim"))
        .unwrap()
        .is_file());
    sb.assert_outside_untouched();

    let mut t = Tb::new();
    t.hardlink("hl", "abs/secret");
    assert!(sb.apply(&t.finish(), WhiteoutMode::Delete).is_err());
    sb.assert_outside_untouched();
}

#[test]
fn refuses_escaping_links() {
    type Build = Box<dyn Fn(&mut Tb, &str)>;
    let cases: Vec<(&str, Build)> = vec![
        (
            "symlink ../",
            Box::new(|t: &mut Tb, _| {
                t.symlink("esc", "../../../secret");
            }),
        ),
        (
            "symlink deep ../",
            Box::new(|t: &mut Tb, _| {
                t.symlink("d/e/esc", "../../../x");
            }),
        ),
        (
            "hardlink ../",
            Box::new(|t: &mut Tb, _| {
                t.hardlink("hl", "../../../secret");
            }),
        ),
        (
            "hardlink absolute outside",
            Box::new(|t: &mut Tb, outer: &str| {
                t.hardlink("hl", &format!("{outer}/secret"));
            }),
        ),
        (
            "hardlink /etc/passwd",
            Box::new(|t: &mut Tb, _| {
                t.hardlink("hl", "/etc/passwd");
            }),
        ),
        (
            "hardlink via symlink",
            Box::new(|t: &mut Tb, outer: &str| {
                t.symlink("l", outer);
                t.hardlink("hl", "l/secret");
            }),
        ),
        (
            "hardlink via symlink ..",
            Box::new(|t: &mut Tb, _| {
                t.symlink("l", "/");
                t.hardlink("hl", "l/../../../secret");
            }),
        ),
        (
            "whiteout ..",
            Box::new(|t: &mut Tb, _| {
                t.file("d/.wh...", b"");
            }),
        ),
    ];
    for (name, build) in cases {
        for mode in [WhiteoutMode::Overlay, WhiteoutMode::Delete] {
            let sb = Sandbox::new();
            let mut t = Tb::new();
            build(&mut t, sb.outer.to_str().unwrap());
            assert!(
                sb.apply(&t.finish(), mode).is_err(),
                "{name} ({mode:?}) was accepted"
            );
            sb.assert_outside_untouched();
        }
    }
    let pw = fs::metadata("/etc/passwd").unwrap().nlink();
    assert_eq!(pw, 1);
}

#[test]
fn garbage_and_unsupported_input() {
    let sb = Sandbox::new();
    assert!(sb
        .apply(
            b"this is not a tar file at all, just text........",
            WhiteoutMode::Overlay
        )
        .is_err());
    assert!(matches!(
        sb.apply(
            &[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2],
            WhiteoutMode::Overlay
        ),
        Err(LayerError::Compression("xz"))
    ));
    // Truncated gzip.
    let mut t = Tb::new();
    t.file("f", &[7u8; 10000]);
    let mut c = Compressor::new(Vec::new(), Compression::Gzip).unwrap();
    c.write_all(&t.finish()).unwrap();
    let z = c.finish().unwrap();
    assert!(sb.apply(&z[..z.len() / 2], WhiteoutMode::Overlay).is_err());
    sb.assert_outside_untouched();
}

// ---- the pipelined unpacker and its shortcuts --------------------------------------------

/// Deterministic, poorly compressible bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn large_layers_cross_chunk_boundaries() {
    // Files larger than the chunks passed between the threads, and many small ones between
    // them, so headers and contents straddle chunk boundaries.
    let mut t = Tb::new();
    let mut want = Vec::new();
    for i in 0..4u64 {
        let big = noise((3 << 20) + 1234 * i as usize, i);
        let p = format!("big/{i}");
        t.file(&p, &big);
        want.push((p, big));
        for j in 0..300u64 {
            let small = noise((j * 37 % 2000) as usize, i * 1000 + j);
            let p = format!("small/{i}/{j}");
            t.file(&p, &small);
            want.push((p, small));
        }
    }
    let tar = t.finish();
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let sb = Sandbox::new();
        let mut comp = Compressor::new(Vec::new(), c).unwrap();
        comp.write_all(&tar).unwrap();
        let z = comp.finish().unwrap();
        let a = sb.apply(&z, WhiteoutMode::Overlay).unwrap();
        assert_eq!(a.diff_id, Digest::sha256(&tar), "{c:?}");
        assert_eq!(a.tar_size, tar.len() as u64);
        for (p, data) in &want {
            assert_eq!(&fs::read(sb.root.join(p)).unwrap(), data, "{p} ({c:?})");
        }
        sb.assert_outside_untouched();
    }
}

#[test]
fn early_refusal_with_more_stream_behind_it() {
    // The unpacking thread stops at the first entry while megabytes are still coming: the
    // error is the refusal, and nothing hangs.
    let sb = Sandbox::new();
    let mut t = Tb::new();
    t.raw(b"../../secret", EntryType::Regular, None, b"x", 0o644, 0, 0);
    t.file("after", &noise(8 << 20, 7));
    let err = sb.apply(&t.finish(), WhiteoutMode::Overlay).unwrap_err();
    assert!(matches!(err, LayerError::Breakout { .. }), "{err}");
    sb.assert_outside_untouched();
}

/// Yields `data`, then fails instead of reporting the end (like a blob whose digest turns
/// out wrong once it has been read to the end).
struct FailAtEnd<'a> {
    data: &'a [u8],
}

impl std::io::Read for FailAtEnd<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.data.is_empty() {
            return Err(std::io::Error::other("digest mismatch"));
        }
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn stream_errors_after_the_tar_fail_the_layer() {
    let sb = Sandbox::new();
    let mut t = Tb::new();
    t.file("f", &noise(3 << 20, 1));
    let tar = t.finish();
    let err =
        apply_layer(FailAtEnd { data: &tar }, &sb.root, &ApplyOptions::default()).unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    // Also when it fails in the middle of an entry.
    let sb = Sandbox::new();
    let err = apply_layer(
        FailAtEnd {
            data: &tar[..tar.len() / 2],
        },
        &sb.root,
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
}

/// A tar of (path, type, mode, gid, symlink target) entries, all of uid 0 and empty.
fn owned_entries(entries: &[(&str, EntryType, u32, u64, Option<&str>)]) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    for (path, kind, mode, gid, link) in entries {
        let mut h = Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_entry_type(*kind);
        h.set_mode(*mode);
        h.set_uid(0);
        h.set_gid(*gid);
        h.set_mtime(1_000_000);
        h.set_size(0);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        h.set_cksum();
        b.append(&h, &b""[..]).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn owners_and_modes_survive_setgid_dirs_and_umask() {
    use EntryType::{Directory as D, Regular as F, Symlink as L};
    let sb = Sandbox::new();
    let tar = owned_entries(&[
        // A set-group-ID directory of group 50: entries made in it inherit group 50 (and
        // subdirectories the bit), so their owner and mode must still be set explicitly.
        ("h/", D, 0o2775, 50, None),
        ("h/f", F, 0o644, 0, None),
        ("h/same", F, 0o644, 50, None),
        ("h/sub/", D, 0o755, 0, None),
        ("h/l", L, 0o777, 0, Some("f")),
        // The same directory again, now of group 0: still set-group-ID.
        ("g/", D, 0o2775, 50, None),
        ("g/", D, 0o2775, 0, None),
        ("g/f", F, 0o644, 0, None),
        ("g/sub/", D, 0o755, 0, None),
        // Modes the usual umask would cut, and special bits.
        ("w/", D, 0o777, 0, None),
        ("w/f", F, 0o666, 0, None),
        ("x", F, 0o000, 0, None),
        ("sticky/", D, 0o1777, 0, None),
        ("suid", F, 0o4755, 0, None),
    ]);
    sb.apply(&tar, WhiteoutMode::Overlay).unwrap();
    let m = |p: &str| {
        let m = fs::symlink_metadata(sb.root.join(p)).unwrap();
        (m.gid(), m.mode() & 0o7777)
    };
    assert_eq!(m("h"), (50, 0o2775));
    assert_eq!(m("h/f"), (0, 0o644));
    assert_eq!(m("h/same"), (50, 0o644));
    assert_eq!(m("h/sub"), (0, 0o755));
    assert_eq!(m("h/l").0, 0);
    assert_eq!(m("g"), (0, 0o2775));
    assert_eq!(m("g/f"), (0, 0o644));
    assert_eq!(m("g/sub"), (0, 0o755));
    assert_eq!(m("w"), (0, 0o777));
    assert_eq!(m("w/f"), (0, 0o666));
    assert_eq!(m("x"), (0, 0o000));
    assert_eq!(m("sticky"), (0, 0o1777));
    assert_eq!(m("suid"), (0, 0o4755));
}

#[test]
fn default_acls_do_not_change_modes() {
    // A directory with a default ACL granting its owner only: entries created in it would get
    // at most rwx------ whatever mode they are created with.
    let mut acl = Vec::new();
    acl.extend_from_slice(&2u32.to_le_bytes()); // POSIX_ACL_XATTR_VERSION
    for (tag, perm) in [(0x01u16, 7u16), (0x04, 0), (0x20, 0)] {
        // ACL_USER_OBJ rwx, ACL_GROUP_OBJ ---, ACL_OTHER ---
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&u32::MAX.to_le_bytes());
    }
    let sb = Sandbox::new();
    let mut t = Tb::new();
    t.pax(&[("SCHILY.xattr.system.posix_acl_default", acl.as_slice())]);
    t.dir("acl/");
    t.file("acl/f", b"f");
    t.dir("acl/d/");
    sb.apply(&t.finish(), WhiteoutMode::Overlay).unwrap();
    let supported = fsops::lgetxattr(&sb.root.join("acl"), "system.posix_acl_default")
        .unwrap()
        .is_some();
    let m = |p: &str| fs::symlink_metadata(sb.root.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(m("acl/f"), 0o644, "ACLs supported here: {supported}");
    assert_eq!(m("acl/d"), 0o755, "ACLs supported here: {supported}");
}

// ---- docker cp's extraction options and path tars -----------------------------------------

fn apply_with(sb: &Sandbox, tar: &[u8], o: ApplyOptions) -> Result<AppliedLayer, LayerError> {
    apply_layer(tar, &sb.root, &o)
}

#[test]
fn cp_options_keep_whiteouts_refuse_dir_nondir_and_chown() {
    let sb = Sandbox::new();
    fs::write(sb.root.join("victim"), b"v").unwrap();
    fs::create_dir(sb.root.join("d")).unwrap();
    let mut t = Tb::new();
    t.file(".wh.victim", b"plain").file("f", b"x");
    let o = ApplyOptions {
        keep_whiteout_files: true,
        chown: Some((1234, 4321)),
        ..Default::default()
    };
    apply_with(&sb, &t.finish(), o.clone()).unwrap();
    assert_eq!(fs::read(sb.root.join("victim")).unwrap(), b"v");
    assert_eq!(fs::read(sb.root.join(".wh.victim")).unwrap(), b"plain");
    let m = fs::metadata(sb.root.join("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 4321));

    let strict = ApplyOptions {
        no_overwrite_dir_non_dir: true,
        ..Default::default()
    };
    let mut t = Tb::new();
    t.file("d", b"would replace a directory");
    let e = apply_with(&sb, &t.finish(), strict.clone()).unwrap_err();
    assert!(matches!(e, LayerError::Overwrite(_)), "{e}");
    assert!(sb.root.join("d").is_dir());
    let mut t = Tb::new();
    t.dir("f/");
    let e = apply_with(&sb, &t.finish(), strict.clone()).unwrap_err();
    assert!(matches!(e, LayerError::Overwrite(_)), "{e}");
    assert!(sb.root.join("f").is_file());
    // Same kinds replace each other as usual.
    let mut t = Tb::new();
    t.file("f", b"new").dir("d/");
    apply_with(&sb, &t.finish(), strict).unwrap();
    assert_eq!(fs::read(sb.root.join("f")).unwrap(), b"new");
    sb.assert_outside_untouched();
}

fn tar_names(data: &[u8]) -> Vec<(String, EntryType)> {
    tar::Archive::new(data)
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().entry_type(),
            )
        })
        .collect()
}

#[test]
fn path_tar_names_entries_after_the_given_name() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("dir");
    fs::create_dir_all(d.join("sub")).unwrap();
    fs::write(d.join("sub/f"), b"data").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.join("l")).unwrap();
    let out = write_path_tar(&d, b"renamed", Vec::new()).unwrap();
    let names = tar_names(&out);
    assert_eq!(
        names,
        vec![
            ("renamed/".to_string(), EntryType::Directory),
            ("renamed/l".to_string(), EntryType::Symlink),
            ("renamed/sub/".to_string(), EntryType::Directory),
            ("renamed/sub/f".to_string(), EntryType::Regular),
        ]
    );
    let out = write_path_tar(&d.join("sub/f"), b"f", Vec::new()).unwrap();
    assert_eq!(tar_names(&out), vec![("f".to_string(), EntryType::Regular)]);
    // A symlink is archived, not followed.
    let out = write_path_tar(&d.join("l"), b"l", Vec::new()).unwrap();
    assert_eq!(tar_names(&out), vec![("l".to_string(), EntryType::Symlink)]);
    let out = write_path_tar(&d, b".", Vec::new()).unwrap();
    assert_eq!(tar_names(&out)[0].0, "./");
}

#[test]
fn base_directory_is_resolved_inside_the_root() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.root.join("real/dir")).unwrap();
    // A symlink in the base path that points "outside" resolves inside the root.
    std::os::unix::fs::symlink("/real", sb.root.join("link")).unwrap();
    std::os::unix::fs::symlink("../../../../..", sb.root.join("up")).unwrap();
    let mut t = Tb::new();
    t.dir("./").file("f", b"in base").hardlink("h", "f");
    let o = ApplyOptions {
        base: Some(PathBuf::from("link/dir")),
        keep_whiteout_files: true,
        ..Default::default()
    };
    apply_with(&sb, &t.finish(), o).unwrap();
    assert_eq!(fs::read(sb.root.join("real/dir/f")).unwrap(), b"in base");
    assert_eq!(
        fs::metadata(sb.root.join("real/dir/h")).unwrap().ino(),
        fs::metadata(sb.root.join("real/dir/f")).unwrap().ino()
    );
    let mut t = Tb::new();
    t.file("g", b"x");
    let o = ApplyOptions {
        base: Some(PathBuf::from("up")),
        ..Default::default()
    };
    apply_with(&sb, &t.finish(), o).unwrap();
    assert_eq!(fs::read(sb.root.join("g")).unwrap(), b"x");
    // A missing base is an error, not created.
    let mut t = Tb::new();
    t.file("g", b"x");
    let o = ApplyOptions {
        base: Some(PathBuf::from("nope/deeper")),
        ..Default::default()
    };
    assert!(apply_with(&sb, &t.finish(), o).is_err());
    assert!(!sb.root.join("nope").exists());
    // Symlink targets are checked against the root, not the base.
    let mut t = Tb::new();
    t.symlink("ok", "../../real")
        .symlink("bad", "../../../../../../x");
    let o = ApplyOptions {
        base: Some(PathBuf::from("real/dir")),
        ..Default::default()
    };
    let e = apply_with(&sb, &t.finish(), o).unwrap_err();
    assert!(matches!(e, LayerError::Breakout { .. }), "{e}");
    assert_eq!(
        fs::read_link(sb.root.join("real/dir/ok")).unwrap(),
        PathBuf::from("../../real")
    );
    sb.assert_outside_untouched();
}
