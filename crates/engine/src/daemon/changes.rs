//! A container's filesystem changes: `GET /containers/{id}/changes` (`docker diff`), read
//! from its overlay upper directory (whiteouts and opaque directories are deletions), and
//! `POST /commit` (`docker commit`), which stores that upper directory as a new layer on top
//! of the container's image ([`::image::Images::commit`]) with the container's config plus
//! `--change` instructions.
//!
//! The mount points the runtime creates for every container (`/dev`, `/proc`, `/sys`,
//! `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`) are left out of both, as Docker keeps
//! them in a hidden init layer.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use api::backend::{ApiResult, CommitOptions};
use api::types::{FilesystemChange, IdResponse, CHANGE_ADDED, CHANGE_DELETED, CHANGE_MODIFIED};
use api::ApiError;

use super::containers::{is_running, lookup, pause};
use super::{blocking, Inner};

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// Paths (relative to the root) every container gets as mount points; Docker's init layer.
pub(crate) const INIT_PATHS: &[&str] = &[
    "dev",
    "proc",
    "sys",
    ".dockerenv",
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
    "etc/mtab",
];

/// Directories holding init paths: left out when nothing else in them changed.
const INIT_PARENTS: &[&str] = &["etc"];

/// Whether `rel` exists in one of the image's layers (`lowers`, bottom first), not counting
/// a layer that deleted it with a whiteout above.
fn in_lower(lowers: &[PathBuf], rel: &Path) -> bool {
    for l in lowers.iter().rev() {
        if let Ok(m) = std::fs::symlink_metadata(l.join(rel)) {
            return !(m.file_type().is_char_device() && m.rdev() == 0);
        }
    }
    false
}

fn is_opaque(p: &Path) -> bool {
    let mut buf = [0u8; 4];
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: lgetxattr reads at most buf.len() bytes into buf; both pointers are valid.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

fn walk(
    upper: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    out: &mut Vec<FilesystemChange>,
) -> std::io::Result<()> {
    let dir = upper.join(rel);
    let mut names: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for n in names {
        let r = rel.join(&n);
        let rs = r.to_string_lossy().to_string();
        let p = upper.join(&r);
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let path = format!("/{rs}");
        if m.file_type().is_char_device() && m.rdev() == 0 {
            out.push(FilesystemChange {
                path,
                kind: CHANGE_DELETED,
            });
            continue;
        }
        if INIT_PATHS.contains(&rs.as_str()) {
            continue;
        }
        let kind = if m.is_dir() && is_opaque(&p) && in_lower(lowers, &r) {
            CHANGE_DELETED
        } else if in_lower(lowers, &r) {
            CHANGE_MODIFIED
        } else {
            CHANGE_ADDED
        };
        let at = out.len();
        out.push(FilesystemChange { path, kind });
        if m.is_dir() {
            walk(upper, &r, lowers, out)?;
            if INIT_PARENTS.contains(&rs.as_str()) && out.len() == at + 1 && kind != CHANGE_DELETED
            {
                out.truncate(at);
            }
        }
    }
    Ok(())
}

/// The changes in the upper directory `upper` over the layers `lowers` (bottom first), in
/// dockerd's order: a depth-first walk, each directory's entries sorted by name, a directory
/// before what is in it.
pub(crate) fn changes_of(
    upper: &Path,
    lowers: &[PathBuf],
) -> std::io::Result<Vec<FilesystemChange>> {
    let mut out = Vec::new();
    walk(upper, Path::new(""), lowers, &mut out)?;
    Ok(out)
}

fn image_digest(s: &str) -> ApiResult<::image::Digest> {
    s.parse()
        .map_err(|e| ApiError::Internal(format!("the container's image ID {s:?} is invalid: {e}")))
}

/// `GET /containers/{id}/changes`.
pub async fn changes(inner: &Arc<Inner>, key: &str) -> ApiResult<Vec<FilesystemChange>> {
    let c = lookup(inner, key)?;
    let inner = inner.clone();
    blocking(move || {
        let dir = crate::bundle::dir(&inner.opts.data_root, &c.id);
        let img = image_digest(&c.image_id)?;
        let layout = inner
            .images
            .container_layout(&img, &dir)
            .map_err(internal)?;
        changes_of(&layout.upper, &layout.lowerdirs).map_err(|e| {
            internal(format!(
                "cannot read the changes of container {}: {e}",
                c.id
            ))
        })
    })
    .await
}

/// The image's run config made from the container's (as dockerd commits it), with the
/// request's config over it.
fn run_config(
    c: &api::types::ContainerConfig,
    over: Option<&api::types::ContainerConfig>,
) -> ApiResult<::image::config::RunConfig> {
    let mut v = serde_json::to_value(c).map_err(internal)?;
    if let (Some(o), Some(obj)) = (over, v.as_object_mut()) {
        let ov = serde_json::to_value(o).map_err(internal)?;
        if let Some(m) = ov.as_object() {
            for (k, x) in m {
                let empty = match x {
                    serde_json::Value::Null => true,
                    serde_json::Value::String(s) => s.is_empty(),
                    serde_json::Value::Array(a) => a.is_empty(),
                    serde_json::Value::Object(o) => o.is_empty(),
                    serde_json::Value::Bool(b) => !b,
                    _ => false,
                };
                if !empty {
                    obj.insert(k.clone(), x.clone());
                }
            }
        }
    }
    serde_json::from_value(v).map_err(internal)
}

/// `POST /commit`.
pub async fn commit(inner: &Arc<Inner>, opts: CommitOptions) -> ApiResult<IdResponse> {
    let c = lookup(inner, &opts.container)?;
    let reference = if opts.repo.is_empty() {
        if !opts.tag.is_empty() {
            return Err(ApiError::InvalidParameter(
                "tag is specified without a repository".into(),
            ));
        }
        None
    } else {
        let s = if opts.tag.is_empty() {
            opts.repo.clone()
        } else {
            format!("{}:{}", opts.repo, opts.tag)
        };
        let r = ::image::Reference::parse_normalized(&s)
            .map_err(|e| ApiError::InvalidParameter(e.to_string()))?;
        if r.digest().is_some() {
            return Err(ApiError::InvalidParameter(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        Some(r.with_default_tag())
    };
    let mut rc = run_config(&c.config, opts.config.as_ref())?;
    ::image::archive::apply_changes(&mut rc, &opts.changes)
        .map_err(|e| ApiError::InvalidParameter(e.to_string()))?;
    let paused = opts.pause && c.state.status == "running" && is_running(&c);
    if paused {
        pause(inner, &c.id, true).await?;
    }
    let (i2, c2) = (inner.clone(), c.clone());
    let created_by = c.config.cmd.clone().unwrap_or_default().join(" ");
    let res = blocking(move || {
        let dir = crate::bundle::dir(&i2.opts.data_root, &c2.id);
        let base = image_digest(&c2.image_id)?;
        let o = ::image::images::CommitOptions {
            config: Some(rc),
            author: Some(opts.author.clone()).filter(|a| !a.is_empty()),
            comment: Some(opts.comment.clone()).filter(|a| !a.is_empty()),
            created_by: Some(created_by),
            exclude: INIT_PATHS.iter().map(|s| s.to_string()).collect(),
        };
        let img = i2
            .images
            .commit(&base, &dir.join("upper"), &o)
            .map_err(internal)?;
        if let Some(r) = &reference {
            i2.images.store.tag(&img.id, r).map_err(internal)?;
        }
        Ok(img.id.to_string())
    })
    .await;
    if paused {
        let _ = pause(inner, &c.id, false).await;
    }
    Ok(IdResponse { id: res? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_in_walk_order_without_init_paths() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: needs root for whiteout devices");
            return;
        }
        let t = std::env::temp_dir().join(format!("berth-changes-{}", std::process::id()));
        let (upper, lower) = (t.join("upper"), t.join("lower"));
        for d in [
            upper.join("a"),
            upper.join("etc"),
            lower.join("a"),
            lower.join("etc"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(lower.join("x"), "old").unwrap();
        std::fs::write(upper.join("a/b"), "new").unwrap();
        std::fs::write(upper.join("a-c"), "new").unwrap();
        std::fs::write(upper.join("etc/hostname"), "").unwrap();
        nix::sys::stat::mknod(
            &upper.join("x"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let got: Vec<(String, u8)> = changes_of(&upper, &[lower])
            .unwrap()
            .into_iter()
            .map(|c| (c.path, c.kind))
            .collect();
        let _ = std::fs::remove_dir_all(&t);
        assert_eq!(
            got,
            vec![
                ("/a".to_string(), CHANGE_MODIFIED),
                ("/a/b".to_string(), CHANGE_ADDED),
                ("/a-c".to_string(), CHANGE_ADDED),
                ("/x".to_string(), CHANGE_DELETED),
            ]
        );
    }
}
