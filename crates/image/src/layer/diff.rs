//! Writing a directory as a layer tar: the whole tree (`docker export`, `import`) or an
//! overlayfs upper directory as a layer diff (`docker commit`), where the overlay's whiteout
//! devices and opaque xattrs become OCI `.wh.` entries. The walk never follows symlinks;
//! hard-linked files are written once and linked afterwards; sockets are skipped (as Docker
//! does). Returns the SHA-256 and size of the uncompressed tar (the diffID).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::{Builder, EntryType, Header};

use super::fsops;
use super::{LayerError, OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};
use crate::digest::{Algorithm, Digest, Verifier};

/// Options for [`write_tar`].
#[derive(Debug, Clone, Default)]
pub struct TarOptions {
    /// Translate overlayfs whiteouts (0/0 char devices, opaque xattr) into `.wh.` entries.
    pub overlay_whiteouts: bool,
    /// Paths (relative, no leading `/`) left out of the tar, with everything under them.
    pub exclude: Vec<String>,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarSummary {
    /// SHA-256 of the uncompressed tar (the layer's diffID).
    pub digest: Digest,
    /// Size of the uncompressed tar.
    pub size: u64,
}

/// Writes the overlay upper directory `upper` as an OCI layer tar into `w` (compress by
/// passing a [`super::Compressor`]). Returns the diffID and the writer.
pub fn write_diff<W: Write>(upper: &Path, w: W) -> Result<(TarSummary, W), LayerError> {
    write_tar(
        upper,
        w,
        &TarOptions {
            overlay_whiteouts: true,
            exclude: Vec::new(),
        },
    )
}

/// Writes the tree under `dir` as a tar into `w`. Returns the tar's digest and size, and `w`.
pub fn write_tar<W: Write>(
    dir: &Path,
    w: W,
    opts: &TarOptions,
) -> Result<(TarSummary, W), LayerError> {
    let v = Verifier::new(w, Algorithm::Sha256, None, None);
    let mut t = TarWriter {
        b: Builder::new(v),
        links: HashMap::new(),
        opts: opts.clone(),
    };
    t.walk(dir, &[])?;
    let v =
        t.b.into_inner()
            .map_err(|e| io_err("finishing tar of", dir, e))?;
    let (digest, size, mut w) = v.finish().map_err(|e| LayerError::Io {
        what: "hashing tar of",
        path: dir.display().to_string(),
        source: io::Error::other(e.to_string()),
    })?;
    w.flush().map_err(|e| io_err("flushing tar of", dir, e))?;
    Ok((TarSummary { digest, size }, w))
}

/// Writes the file, symlink or directory tree at `path` as a tar into `w`, its root entry
/// named `name` (`docker cp`'s archives: a directory `d` gives `d/`, `d/a`...; a symlink is
/// archived, not followed). Returns the writer.
pub fn write_path_tar<W: Write>(path: &Path, name: &[u8], w: W) -> Result<W, LayerError> {
    let v = Verifier::new(w, Algorithm::Sha256, None, None);
    let mut t = TarWriter {
        b: Builder::new(v),
        links: HashMap::new(),
        opts: TarOptions::default(),
    };
    let base = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| OsString::from("."));
    t.entry(path, name.to_vec(), b"", &base)?;
    let v =
        t.b.into_inner()
            .map_err(|e| io_err("finishing tar of", path, e))?;
    let (_, _, mut w) = v.finish().map_err(|e| LayerError::Io {
        what: "hashing tar of",
        path: path.display().to_string(),
        source: io::Error::other(e.to_string()),
    })?;
    w.flush().map_err(|e| io_err("flushing tar of", path, e))?;
    Ok(w)
}

fn io_err(what: &'static str, p: &Path, source: io::Error) -> LayerError {
    LayerError::Io {
        what,
        path: p.display().to_string(),
        source,
    }
}

struct TarWriter<W: Write> {
    b: Builder<Verifier<W>>,
    /// (dev, ino) of multiply-linked files already written -> their tar path.
    links: HashMap<(u64, u64), Vec<u8>>,
    opts: TarOptions,
}

fn rel_join(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut v = rel.to_vec();
    if !v.is_empty() {
        v.push(b'/');
    }
    v.extend_from_slice(name);
    v
}

fn base_header(m: &fs::Metadata) -> Header {
    let mut h = Header::new_gnu();
    h.set_mode(m.mode() & 0o7777);
    h.set_uid(m.uid() as u64);
    h.set_gid(m.gid() as u64);
    h.set_mtime(m.mtime().max(0) as u64);
    h.set_size(0);
    h
}

/// Writes a GNU long-name ('L') or long-link ('K') record carrying `data` exactly.
fn gnu_long<W: Write>(b: &mut Builder<W>, kind: u8, data: &[u8]) -> io::Result<()> {
    let mut h = Header::new_gnu();
    let name = b"././@LongLink";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64 + 1);
    h.set_entry_type(EntryType::new(kind));
    h.set_cksum();
    let mut d = data.to_vec();
    d.push(0);
    b.append(&h, d.as_slice())
}

/// Appends an entry whose path and link name are written byte for byte.
fn append_raw<W: Write, R: io::Read>(
    b: &mut Builder<W>,
    h: &mut Header,
    path: &[u8],
    link: Option<&[u8]>,
    data: R,
) -> io::Result<()> {
    {
        let old = h.as_old_mut();
        if path.len() <= old.name.len() {
            old.name = [0; 100];
            old.name[..path.len()].copy_from_slice(path);
        }
    }
    if path.len() > 100 {
        gnu_long(b, b'L', path)?;
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name.copy_from_slice(&path[..100]);
    }
    if let Some(link) = link {
        if link.len() > 100 {
            gnu_long(b, b'K', link)?;
        }
        let old = h.as_old_mut();
        old.linkname = [0; 100];
        let n = link.len().min(100);
        old.linkname[..n].copy_from_slice(&link[..n]);
    }
    h.set_cksum();
    b.append(h, data)
}

impl<W: Write> TarWriter<W> {
    fn excluded(&self, rel: &[u8]) -> bool {
        self.opts.exclude.iter().any(|e| {
            let e = e.trim_matches('/').as_bytes();
            !e.is_empty() && (rel == e || (rel.starts_with(e) && rel.get(e.len()) == Some(&b'/')))
        })
    }

    fn xattrs(&mut self, p: &Path) -> Result<(), LayerError> {
        let names = fsops::llistxattr(p).map_err(|e| io_err("listing xattrs of", p, e))?;
        let mut recs: Vec<(String, Vec<u8>)> = Vec::new();
        for n in names {
            if n.starts_with("trusted.overlay.") || n == "security.selinux" {
                continue;
            }
            if let Some(v) =
                fsops::lgetxattr(p, &n).map_err(|e| io_err("reading xattr of", p, e))?
            {
                recs.push((format!("SCHILY.xattr.{n}"), v));
            }
        }
        if !recs.is_empty() {
            recs.sort();
            self.b
                .append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(|e| io_err("writing xattrs of", p, e))?;
        }
        Ok(())
    }

    fn walk(&mut self, dir: &Path, rel: &[u8]) -> Result<(), LayerError> {
        let mut names: Vec<OsString> = fs::read_dir(dir)
            .map_err(|e| io_err("listing", dir, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| io_err("listing", dir, e))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let p = dir.join(&name);
            let r = rel_join(rel, name.as_bytes());
            if self.excluded(&r) {
                continue;
            }
            self.entry(&p, r, rel, &name)?;
        }
        Ok(())
    }

    /// Writes `p` (named `r` in the tar; `name` in the directory `rel`) and, for a
    /// directory, everything under it.
    fn entry(
        &mut self,
        p: &Path,
        r: Vec<u8>,
        rel: &[u8],
        name: &std::ffi::OsStr,
    ) -> Result<(), LayerError> {
        {
            let m = fs::symlink_metadata(p).map_err(|e| io_err("inspecting", p, e))?;
            let ft = m.file_type();
            let werr = |e| io_err("writing tar entry for", p, e);
            if ft.is_dir() {
                self.xattrs(p)?;
                let mut h = base_header(&m);
                h.set_entry_type(EntryType::Directory);
                let mut rp = r.clone();
                rp.push(b'/');
                append_raw(&mut self.b, &mut h, &rp, None, io::empty()).map_err(werr)?;
                if self.opts.overlay_whiteouts
                    && fsops::lgetxattr(p, OVERLAY_OPAQUE_XATTR)
                        .map_err(|e| io_err("reading xattr of", p, e))?
                        .as_deref()
                        == Some(b"y")
                {
                    let mut h = base_header(&m);
                    h.set_mode(0);
                    h.set_entry_type(EntryType::Regular);
                    let wp = rel_join(&r, WHITEOUT_OPAQUE.as_bytes());
                    append_raw(&mut self.b, &mut h, &wp, None, io::empty()).map_err(werr)?;
                }
                self.walk(p, &r)?;
            } else if ft.is_file() {
                if m.nlink() > 1 {
                    if let Some(first) = self.links.get(&(m.dev(), m.ino())).cloned() {
                        let mut h = base_header(&m);
                        h.set_entry_type(EntryType::Link);
                        append_raw(&mut self.b, &mut h, &r, Some(&first), io::empty())
                            .map_err(werr)?;
                        return Ok(());
                    }
                    self.links.insert((m.dev(), m.ino()), r.clone());
                }
                self.xattrs(p)?;
                let f = File::open(p).map_err(|e| io_err("opening", p, e))?;
                let mut h = base_header(&m);
                h.set_entry_type(EntryType::Regular);
                h.set_size(m.len());
                // A file that changes size while being read would corrupt the tar: read
                // exactly the size recorded in the header.
                let data = io::Read::take(f, m.len());
                append_raw(&mut self.b, &mut h, &r, None, data).map_err(werr)?;
            } else if ft.is_symlink() {
                let target = fs::read_link(p).map_err(|e| io_err("reading link", p, e))?;
                self.xattrs(p)?;
                let mut h = base_header(&m);
                h.set_entry_type(EntryType::Symlink);
                append_raw(
                    &mut self.b,
                    &mut h,
                    &r,
                    Some(target.as_os_str().as_bytes()),
                    io::empty(),
                )
                .map_err(werr)?;
            } else if ft.is_char_device() && m.rdev() == 0 && self.opts.overlay_whiteouts {
                let mut h = base_header(&m);
                h.set_mode(0);
                h.set_entry_type(EntryType::Regular);
                let mut wname = WHITEOUT_PREFIX.as_bytes().to_vec();
                wname.extend_from_slice(name.as_bytes());
                let wp = rel_join(rel, &wname);
                append_raw(&mut self.b, &mut h, &wp, None, io::empty()).map_err(werr)?;
            } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
                self.xattrs(p)?;
                let mut h = base_header(&m);
                if ft.is_fifo() {
                    h.set_entry_type(EntryType::Fifo);
                } else {
                    h.set_entry_type(if ft.is_char_device() {
                        EntryType::Char
                    } else {
                        EntryType::Block
                    });
                    let rdev = m.rdev();
                    h.set_device_major(libc::major(rdev)).map_err(werr)?;
                    h.set_device_minor(libc::minor(rdev)).map_err(werr)?;
                }
                append_raw(&mut self.b, &mut h, &r, None, io::empty()).map_err(werr)?;
            }
            // Sockets are not archived.
        }
        Ok(())
    }
}
