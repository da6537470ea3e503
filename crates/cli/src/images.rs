//! Image commands with docker's flags and output: `images`/`image ls`, `image inspect`,
//! `history`, `tag`, `rmi`, `image prune`, `save`, `load`, `import`.
//!
//! Until the daemon exists these run in-process on the image store under the data root; the
//! output is what docker prints, so scripts keep working when they move behind the API.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use image::store::{DeleteItem, ImageRecord, Usage};
use image::Images;
use serde_json::{json, Value};

use crate::format;
use crate::units;

/// Where the image store lives.
pub fn open(data_root: &std::path::Path) -> Result<Images> {
    Images::open(data_root)
        .with_context(|| format!("cannot open the image store in {}", data_root.display()))
}

/// `docker images` / `docker image ls`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Show only images matching REPOSITORY[:TAG].
    pub reference: Option<String>,
    /// Show all images (default hides intermediate images).
    #[arg(short, long)]
    pub all: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided (dangling=, reference=, before=, since=, label=).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE').
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

fn short_id(id: &image::Digest, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.hex()[..12].to_string()
    }
}

fn matches_reference(pattern: &str, repo: &str, tag: &str) -> bool {
    let (prepo, ptag) = match pattern.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (pattern, None),
    };
    glob(prepo, repo) && ptag.is_none_or(|t| glob(t, tag))
}

/// Shell-style `*` matching (what docker's reference filter uses for the common cases).
fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let mut pos = 0;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            if !s.starts_with(p) {
                return false;
            }
            pos = p.len();
        } else if i == parts.len() - 1 {
            return s.len() >= pos + p.len() && s[pos..].ends_with(p);
        } else if let Some(f) = s[pos..].find(p) {
            pos += f + p.len();
        } else {
            return false;
        }
    }
    true
}

struct Filters {
    dangling: Option<bool>,
    reference: Vec<String>,
    before: Option<i64>,
    since: Option<i64>,
    label: Vec<String>,
}

fn parse_filters(images: &Images, list: &[String]) -> Result<Filters> {
    let mut f = Filters {
        dangling: None,
        reference: vec![],
        before: None,
        since: None,
        label: vec![],
    };
    for item in list {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| anyhow!("bad format of filter (expected name=value)"))?;
        match k {
            "dangling" => {
                f.dangling = Some(match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => bail!("Invalid filter 'dangling={v}'"),
                })
            }
            "reference" => f.reference.push(v.to_string()),
            "before" => f.before = Some(images.resolve(v)?.created_unix),
            "since" => f.since = Some(images.resolve(v)?.created_unix),
            "label" => f.label.push(v.to_string()),
            other => bail!("invalid filter '{other}'"),
        }
    }
    Ok(f)
}

fn labels_of(images: &Images, img: &ImageRecord) -> HashMap<String, String> {
    images
        .config(&img.id)
        .ok()
        .and_then(|c| c.config)
        .and_then(|c| serde_json::to_value(c).ok())
        .and_then(|v| v.get("Labels").cloned())
        .and_then(|l| serde_json::from_value(l).ok())
        .unwrap_or_default()
}

/// Rows for `docker images`: one per (image, tag), or one `<none>` row for a dangling image.
fn rows(images: &Images, a: &ListArgs) -> Result<Vec<Value>> {
    let f = parse_filters(images, &a.filter)?;
    let mut out = Vec::new();
    for img in images.list()? {
        if let Some(d) = f.dangling {
            if d != img.is_dangling() {
                continue;
            }
        }
        if f.before.is_some_and(|b| img.created_unix >= b)
            || f.since.is_some_and(|s| img.created_unix <= s)
        {
            continue;
        }
        if !f.label.is_empty() {
            let labels = labels_of(images, &img);
            let ok = f.label.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                None => labels.contains_key(l.as_str()),
            });
            if !ok {
                continue;
            }
        }
        let mut pairs: Vec<(String, String)> = img
            .repo_tags
            .iter()
            .map(|r| (r.familiar_name(), r.tag().unwrap_or("<none>").to_string()))
            .collect();
        if pairs.is_empty() {
            let repos: Vec<String> = img.repo_digests.iter().map(|r| r.familiar_name()).collect();
            if repos.is_empty() {
                pairs.push(("<none>".into(), "<none>".into()));
            } else {
                for r in repos {
                    pairs.push((r, "<none>".into()));
                }
            }
        }
        for (repo, tag) in pairs {
            let wanted = a
                .reference
                .iter()
                .chain(f.reference.iter())
                .all(|p| matches_reference(p, &repo, &tag));
            if !wanted {
                continue;
            }
            let digest = img
                .repo_digests
                .iter()
                .find(|d| d.familiar_name() == repo)
                .and_then(|d| d.digest().map(|x| x.to_string()))
                .unwrap_or_else(|| "<none>".into());
            out.push(json!({
                "Containers": "N/A",
                "CreatedAt": image::config::unix_to_rfc3339(img.created_unix, 0),
                "CreatedSince": units::ago(img.created_unix),
                "Digest": digest,
                "ID": short_id(&img.id, a.no_trunc),
                "Repository": repo,
                "SharedSize": "N/A",
                "Size": units::human_size(img.size),
                "Tag": tag,
                "UniqueSize": "N/A",
                "VirtualSize": units::human_size(img.size),
            }));
        }
    }
    Ok(out)
}

fn headers() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("ID", "IMAGE ID"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Size", "SIZE"),
        ("Digest", "DIGEST"),
        ("CreatedBy", "CREATED BY"),
        ("Comment", "COMMENT"),
    ])
}

/// Print rows in docker's way for `--format` (json / table / template) or the default table.
pub fn print(rows: &[Value], format: Option<&str>, default: &str) -> Result<()> {
    let text = match format {
        Some("json") => rows.iter().map(|r| r.to_string() + "\n").collect(),
        Some("table") | None => format::print_rows(default, rows, &headers())?,
        Some(f) => format::print_rows(f, rows, &headers())?,
    };
    print!("{text}");
    Ok(())
}

pub fn list(data_root: &std::path::Path, a: ListArgs) -> Result<i32> {
    let images = open(data_root)?;
    let rows = rows(&images, &a)?;
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            let id = r["ID"].as_str().unwrap_or("").to_string();
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    let default = if a.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    print(&rows, a.format.as_deref(), default)?;
    Ok(0)
}

/// The Engine API's image object (`docker image inspect`).
pub fn inspect_value(images: &Images, img: &ImageRecord) -> Result<Value> {
    let cfg = images.config(&img.id)?;
    let run = cfg
        .config
        .clone()
        .map(|c| serde_json::to_value(c).unwrap_or(Value::Null));
    let snap_dirs: Vec<String> = img
        .chain_ids()
        .iter()
        .rev()
        .map(|c| images.snapshots.fs_dir(c).display().to_string())
        .collect();
    let other = |k: &str| cfg.other.get(k).cloned().unwrap_or(json!(""));
    let mut v = json!({
        "Id": img.id.to_string(),
        "RepoTags": img.familiar_tags(),
        "RepoDigests": img.familiar_digests(),
        "Parent": img.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        "Comment": other("comment"),
        "Created": cfg.created.clone().unwrap_or_default(),
        "DockerVersion": other("docker_version"),
        "Author": cfg.author.clone().unwrap_or_default(),
        "Config": run,
        "Architecture": cfg.architecture,
        "Os": cfg.os,
        "Size": img.size,
        "GraphDriver": {
            "Data": {"LowerDir": snap_dirs.join(":")},
            "Name": "overlay2"
        },
        "RootFS": {
            "Type": "layers",
            "Layers": cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()
        },
        "Metadata": {"LastTagTime": image::config::unix_to_rfc3339(img.added_unix, 0)}
    });
    if let Some(variant) = &cfg.variant {
        v["Variant"] = json!(variant);
    }
    Ok(v)
}

pub fn inspect(data_root: &std::path::Path, names: &[String], format: Option<&str>) -> Result<i32> {
    let images = open(data_root)?;
    let mut out = Vec::new();
    let mut code = 0;
    for n in names {
        match images.resolve(n) {
            Ok(img) => out.push(inspect_value(&images, &img)?),
            Err(_) => {
                eprintln!("Error response from daemon: No such image: {n}");
                code = 1;
            }
        }
    }
    match format {
        Some(f) if f != "json" => {
            let t = format::Template::parse(f)?;
            for v in &out {
                println!("{}", t.render(v));
            }
        }
        _ => println!("{}", serde_json::to_string_pretty(&out)?),
    }
    Ok(code)
}

pub fn history(
    data_root: &std::path::Path,
    name: &str,
    no_trunc: bool,
    quiet: bool,
    human: bool,
    format: Option<&str>,
) -> Result<i32> {
    let images = open(data_root)?;
    let entries = images
        .history(name)
        .map_err(|_| anyhow!("Error response from daemon: No such image: {name}"))?;
    if quiet {
        for e in &entries {
            println!(
                "{}",
                e.id.as_ref()
                    .map(|d| short_id(d, no_trunc))
                    .unwrap_or_else(|| "<missing>".into())
            );
        }
        return Ok(0);
    }
    let rows: Vec<Value> = entries
        .iter()
        .map(|e| {
            let created_by = if no_trunc || e.created_by.chars().count() <= 45 {
                e.created_by.clone()
            } else {
                e.created_by.chars().take(44).collect::<String>() + "…"
            };
            json!({
                "ID": e.id.as_ref().map(|d| short_id(d, no_trunc)).unwrap_or_else(|| "<missing>".into()),
                "CreatedSince": if human { units::ago(e.created_unix) } else { e.created.clone().unwrap_or_default() },
                "CreatedAt": e.created.clone().unwrap_or_default(),
                "CreatedBy": created_by,
                "Size": if human { units::human_size(e.size) } else { e.size.to_string() },
                "Comment": e.comment,
            })
        })
        .collect();
    // docker calls the ID column IMAGE here.
    let mut h = headers();
    h.insert("ID", "IMAGE");
    let f = match format {
        Some("json") => {
            for r in &rows {
                println!("{r}");
            }
            return Ok(0);
        }
        Some("table") | None => {
            "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
        }
        Some(f) => f,
    };
    print!("{}", format::print_rows(f, &rows, &h)?);
    Ok(0)
}

pub fn tag(data_root: &std::path::Path, source: &str, target: &str) -> Result<i32> {
    let images = open(data_root)?;
    images
        .tag(source, target)
        .map_err(|e| anyhow!("Error response from daemon: {e}"))?;
    Ok(0)
}

/// Whether containers use an image: a bundle made from it exists (a container running in
/// the foreground with `berth run`).
fn usage_in(data_root: &std::path::Path) -> impl Fn(&image::Digest) -> Usage + '_ {
    move |d| match engine::bundle::users_of(data_root, d).into_iter().next() {
        Some(c) => Usage::Running(c),
        None => Usage::Unused,
    }
}

pub fn rmi(
    data_root: &std::path::Path,
    names: &[String],
    force: bool,
    no_prune: bool,
) -> Result<i32> {
    let images = open(data_root)?;
    let mut code = 0;
    for n in names {
        match images.remove(n, force, !no_prune, &usage_in(data_root)) {
            Ok(o) => print_items(&o.items),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

fn print_items(items: &[DeleteItem]) {
    for i in items {
        match i {
            DeleteItem::Untagged(r) => println!("Untagged: {r}"),
            DeleteItem::Deleted(d) => println!("Deleted: {d}"),
        }
    }
}

pub fn prune(
    data_root: &std::path::Path,
    all: bool,
    force: bool,
    filters: &[String],
) -> Result<i32> {
    if !force {
        let what = if all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let images = open(data_root)?;
    let f = parse_filters(&images, filters)?;
    let filter = |img: &ImageRecord| {
        f.before.is_none_or(|b| img.created_unix < b)
            && f.since.is_none_or(|s| img.created_unix > s)
    };
    let (o, reclaimed) = images.prune(all, &usage_in(data_root), &filter)?;
    if !o.items.is_empty() {
        // docker's prune spells these in lower case (rmi does not).
        println!("Deleted Images:");
        for i in &o.items {
            match i {
                DeleteItem::Untagged(r) => println!("untagged: {r}"),
                DeleteItem::Deleted(d) => println!("deleted: {d}"),
            }
        }
        println!();
    }
    println!("Total reclaimed space: {}", units::human_size4(reclaimed));
    Ok(0)
}

pub fn save(data_root: &std::path::Path, names: &[String], output: Option<PathBuf>) -> Result<i32> {
    let images = open(data_root)?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    match output {
        Some(p) => {
            let tmp = p.with_extension("berth-partial");
            let f = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            let w = image::archive::save(&images, &refs, std::io::BufWriter::new(f))?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&tmp, &p)?;
        }
        None => {
            if unsafe_is_tty(1) {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let out = std::io::stdout().lock();
            let mut w = image::archive::save(&images, &refs, std::io::BufWriter::new(out))?;
            w.flush()?;
        }
    }
    Ok(0)
}

fn unsafe_is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

pub fn load(data_root: &std::path::Path, input: Option<PathBuf>, quiet: bool) -> Result<i32> {
    let images = open(data_root)?;
    let reader: Box<dyn Read> = match input {
        Some(p) => {
            Box::new(std::fs::File::open(&p).with_context(|| format!("open {}", p.display()))?)
        }
        None => {
            if unsafe_is_tty(0) {
                bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(std::io::stdin().lock())
        }
    };
    let report = image::archive::load(&images, std::io::BufReader::new(reader))?;
    if !quiet {
        for l in &report.lines {
            println!("{l}");
        }
    }
    Ok(0)
}

pub fn import(
    data_root: &std::path::Path,
    source: &str,
    reference: Option<&str>,
    changes: Vec<String>,
    message: Option<String>,
) -> Result<i32> {
    let images = open(data_root)?;
    let reader: Box<dyn Read> = if source == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(source).with_context(|| format!("open {source}"))?)
    };
    let reference = match reference {
        Some(r) => Some(
            image::Reference::parse_normalized(r)
                .map_err(|e| anyhow!("{e}"))?
                .with_default_tag(),
        ),
        None => None,
    };
    let opts = image::archive::ImportOptions {
        reference,
        changes,
        message,
        source: source.to_string(),
    };
    let img = image::archive::import(&images, std::io::BufReader::new(reader), &opts)?;
    println!("{}", img.id);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_filter_globs() {
        assert!(matches_reference("busybox", "busybox", "latest"));
        assert!(matches_reference("busy*", "busybox", "latest"));
        assert!(matches_reference("busybox:la*", "busybox", "latest"));
        assert!(!matches_reference("busybox:1.36", "busybox", "latest"));
        assert!(matches_reference(
            "localhost:5000/a/*",
            "localhost:5000/a/b",
            "x"
        ));
    }
}
