//! Image commands through the daemon's Engine API (`images`, `pull`, `push`, `rmi`, `tag`,
//! `history`, `save`, `load`, `import`, `image prune`), printing what docker prints. The
//! `--data-root` mode of the same commands is in `images` and `registry_cmds`.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use api::backend::*;
use api::types::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::containers::{confirm, fail, parse_filters, print_rows};
use crate::daemon::Conn;
use crate::images::ListArgs;
use crate::transfer;
use crate::units;

/// Splits `name[:tag]` (a digest stays with the name) into repository and tag.
pub fn split_tag(r: &str) -> (String, String) {
    if r.contains('@') {
        return (r.to_string(), String::new());
    }
    match r.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n.to_string(), t.to_string()),
        _ => (r.to_string(), String::new()),
    }
}

/// Stored credentials (from `berth login`) for the registry of `image`, as X-Registry-Auth.
pub fn auth_for(image: &str) -> AuthConfig {
    let domain = ::image::Reference::parse_normalized(image)
        .map(|r| r.domain().to_string())
        .unwrap_or_default();
    let store = registry::credentials::CredentialStore::default_paths();
    match store.get(&domain) {
        Ok(Some(c)) => AuthConfig {
            username: c.username,
            password: c.password,
            serveraddress: domain,
            ..Default::default()
        },
        _ => AuthConfig::default(),
    }
}

/// One progress message as docker prints it without a terminal (byte-count updates are
/// left out, as docker does).
pub fn progress_line(m: &JsonMessage) -> Option<String> {
    if let Some(s) = &m.stream {
        let s = s.trim_end_matches('\n');
        return (!s.is_empty()).then(|| s.to_string());
    }
    let status = m.status.as_deref()?;
    let counting = m
        .progress_detail
        .as_ref()
        .is_some_and(|p| p.current.is_some() || p.total.is_some());
    if counting {
        return None;
    }
    Some(match &m.id {
        Some(id) if !id.is_empty() => format!("{id}: {status}"),
        _ => status.to_string(),
    })
}

fn short(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.trim_start_matches("sha256:").chars().take(12).collect()
    }
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
        ("Containers", "CONTAINERS"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
        ("VirtualSize", "VIRTUAL SIZE"),
    ])
}

/// `docker history` calls the ID column IMAGE.
fn history_headers() -> HashMap<&'static str, &'static str> {
    let mut h = headers();
    h.insert("ID", "IMAGE");
    h
}

/// `docker images`.
pub fn list(conn: &Conn, a: ListArgs) -> Result<i32> {
    let mut filters = parse_filters(&a.filter)?;
    if let Some(r) = &a.reference {
        filters.add("reference", r);
    }
    let list = conn.block_on(conn.client.image_list(&ImageListOptions {
        all: a.all,
        filters,
        digests: a.digests,
        ..Default::default()
    }))?;
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for i in &list {
            let id = short(&i.id, a.no_trunc);
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    let mut rows = Vec::new();
    for i in &list {
        let mut pairs: Vec<(String, String)> = i
            .repo_tags
            .iter()
            .filter(|t| t.as_str() != "<none>:<none>")
            .map(|t| split_tag(t))
            .collect();
        if pairs.is_empty() {
            let repos: Vec<String> = i
                .repo_digests
                .iter()
                .filter(|d| d.as_str() != "<none>@<none>")
                .map(|d| d.split('@').next().unwrap_or("").to_string())
                .collect();
            if repos.is_empty() {
                pairs.push(("<none>".into(), "<none>".into()));
            } else {
                for r in repos {
                    pairs.push((r, "<none>".into()));
                }
            }
        }
        for (repo, tag) in pairs {
            let digest = i
                .repo_digests
                .iter()
                .find(|d| d.split('@').next() == Some(repo.as_str()))
                .and_then(|d| d.split_once('@').map(|x| x.1.to_string()))
                .unwrap_or_else(|| "<none>".into());
            let size = i.size.max(0) as u64;
            rows.push(json!({
                "Containers": if i.containers < 0 { "N/A".to_string() } else { i.containers.to_string() },
                "CreatedAt": crate::containers::go_time(i.created),
                "CreatedSince": units::ago(i.created),
                "Digest": digest,
                "ID": short(&i.id, a.no_trunc),
                "Repository": repo,
                "SharedSize": if i.shared_size < 0 { "N/A".to_string() } else { units::human_size(i.shared_size as u64) },
                "Size": units::human_size(size),
                "Tag": tag,
                "UniqueSize": if i.shared_size < 0 { "N/A".to_string() } else { units::human_size(size.saturating_sub(i.shared_size as u64)) },
                "VirtualSize": units::human_size(size),
            }));
        }
    }
    let default = if a.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    print_rows(&rows, a.format.as_deref(), default, &headers())?;
    Ok(0)
}

/// `docker pull`.
pub fn pull(conn: &Conn, name: &str, platform: Option<&str>, quiet: bool, all_tags: bool) -> i32 {
    if all_tags {
        return fail(
            "berth: --all-tags is not supported through the daemon yet",
            1,
        );
    }
    let reference = match ::image::Reference::parse_normalized(name) {
        Ok(r) => r,
        Err(e) => return fail(format!("invalid reference format: {e}"), 1),
    };
    if reference.tag().is_none() && reference.digest().is_none() && !quiet {
        println!("Using default tag: latest");
    }
    let full = if reference.digest().is_some() {
        reference.to_string()
    } else {
        reference.clone().with_default_tag().to_string()
    };
    match conn.block_on(crate::containers::pull_image(
        conn, name, platform, quiet, false,
    )) {
        Ok(()) => {
            println!("{full}");
            0
        }
        Err(e) => fail(e, 1),
    }
}

/// `docker push`.
pub fn push(conn: &Conn, name: &str, quiet: bool, all_tags: bool) -> i32 {
    let (repo, tag) = split_tag(name);
    let tag = if tag.is_empty() && !all_tags && !name.contains('@') {
        if !quiet {
            println!("Using default tag: latest");
        }
        "latest".to_string()
    } else {
        tag
    };
    let r = conn.block_on(async {
        let mut s = conn
            .client
            .image_push(&ImagePushOptions {
                name: repo.clone(),
                tag,
                platform: None,
                auth: auth_for(name),
            })
            .await?;
        while let Some(m) = s.next().await {
            let m = m?;
            if !quiet {
                if let Some(l) = progress_line(&m) {
                    println!("{l}");
                }
            }
        }
        Ok::<_, api::ClientError>(())
    });
    match r {
        Ok(()) => {
            if quiet {
                println!("{name}");
            }
            0
        }
        Err(e) => fail(e, 1),
    }
}

pub fn tag(conn: &Conn, source: &str, target: &str) -> i32 {
    let (repo, tag) = split_tag(target);
    match conn.block_on(conn.client.image_tag(source, &repo, &tag)) {
        Ok(()) => 0,
        Err(e) => fail(e, 1),
    }
}

pub fn rmi(conn: &Conn, names: &[String], force: bool, no_prune: bool) -> i32 {
    conn.block_on(async {
        let mut code = 0;
        for n in names {
            match conn
                .client
                .image_remove(
                    n,
                    &ImageRemoveOptions {
                        force,
                        noprune: no_prune,
                    },
                )
                .await
            {
                Ok(items) => print_delete_items(&items),
                Err(e) => {
                    eprintln!("{e}");
                    code = 1;
                }
            }
        }
        code
    })
}

fn print_delete_items(items: &[ImageDeleteItem]) {
    for i in items {
        if let Some(u) = &i.untagged {
            println!("Untagged: {u}");
        }
        if let Some(d) = &i.deleted {
            println!("Deleted: {d}");
        }
    }
}

pub fn history(
    conn: &Conn,
    name: &str,
    no_trunc: bool,
    quiet: bool,
    human: bool,
    format: Option<&str>,
) -> Result<i32> {
    let items = conn.block_on(conn.client.image_history(name))?;
    let id_of = |id: &str| {
        if id == "<missing>" || id.is_empty() {
            "<missing>".to_string()
        } else {
            short(id, no_trunc)
        }
    };
    if quiet {
        for i in &items {
            println!("{}", id_of(&i.id));
        }
        return Ok(0);
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|e| {
            let by = e.created_by.replace('\t', " ");
            let by = if no_trunc {
                by
            } else {
                crate::containers::ellipsis(&by, 45)
            };
            let created_at = ::image::config::unix_to_rfc3339(e.created, 0);
            json!({
                "ID": id_of(&e.id),
                "CreatedSince": if human { units::ago(e.created) } else { created_at.clone() },
                "CreatedAt": created_at,
                "CreatedBy": by,
                "Size": if human { units::human_size(e.size.max(0) as u64) } else { e.size.to_string() },
                "Comment": e.comment,
            })
        })
        .collect();
    print_rows(
        &rows,
        format,
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
        &history_headers(),
    )?;
    Ok(0)
}

pub fn prune(conn: &Conn, all: bool, force: bool, filter: &[String]) -> Result<i32> {
    let what = if all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    if !confirm(force, &format!("WARNING! This will remove {what}."))? {
        return Ok(0);
    }
    let mut f = parse_filters(filter)?;
    if all {
        f.add("dangling", "false");
    }
    let r = conn.block_on(conn.client.image_prune(&f))?;
    let items = r.images_deleted.unwrap_or_default();
    if !items.is_empty() {
        println!("Deleted Images:");
        for i in &items {
            match (&i.untagged, &i.deleted) {
                (Some(u), _) => println!("untagged: {u}"),
                (None, Some(d)) => println!("deleted: {d}"),
                _ => {}
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        units::human_size4(r.space_reclaimed)
    );
    Ok(0)
}

pub fn save(conn: &Conn, names: &[String], output: Option<PathBuf>) -> Result<i32> {
    if output.is_none() && crate::stdio::stdout_is_tty() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    conn.block_on(async {
        let s = conn.client.image_save(names).await?;
        transfer::write_stream(s, output.as_deref(), "save").await?;
        Ok(0)
    })
}

pub fn load(conn: &Conn, input: Option<PathBuf>, quiet: bool) -> Result<i32> {
    if input.is_none() && crate::stdio::stdin_is_tty() {
        bail!("requested load from stdin, but stdin is empty");
    }
    conn.block_on(async {
        let body = transfer::input_stream(input.as_deref()).await?;
        let mut s = conn.client.image_load(body, quiet).await?;
        while let Some(m) = s.next().await {
            let m = m?;
            if let Some(l) = progress_line(&m) {
                println!("{l}");
            }
        }
        Ok(0)
    })
}

pub fn import(
    conn: &Conn,
    source: &str,
    reference: Option<&str>,
    changes: Vec<String>,
    message: Option<String>,
) -> Result<i32> {
    let (repo, tag) = match reference {
        Some(r) => {
            ::image::Reference::parse_normalized(r).map_err(|e| anyhow!("{e}"))?;
            split_tag(r)
        }
        None => (String::new(), String::new()),
    };
    let message = message.as_deref().unwrap_or("");
    conn.block_on(async {
        // A URL is fetched by the daemon, as docker does it.
        let mut s = if source.starts_with("http://") || source.starts_with("https://") {
            conn.client
                .image_import_url(source, &repo, &tag, message, &changes)
                .await?
        } else {
            let path = (source != "-").then(|| std::path::Path::new(source));
            let body = transfer::input_stream(path).await?;
            conn.client
                .image_import(body, &repo, &tag, message, &changes)
                .await?
        };
        while let Some(m) = s.next().await {
            let m = m?;
            if let Some(l) = progress_line(&m) {
                println!("{l}");
            }
        }
        Ok(0)
    })
}
