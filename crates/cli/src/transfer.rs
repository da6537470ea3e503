//! Commands that move bytes between the CLI and the daemon: streams to files or stdout
//! (export, save), files or stdin to request bodies (load, import), `docker cp` both ways
//! (tar archives through `/containers/{id}/archive`), and `docker stats` (its table, once or
//! redrawn as samples arrive).

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use api::backend::*;
use api::stream::ByteStream;
use api::types::*;
use bytes::Bytes;
use clap::Args;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use crate::containers::{fail, print_rows};
use crate::daemon::Conn;
use crate::opts;
use crate::units;

/// Writes a stream to `output` (through a temporary file renamed at the end) or stdout.
pub async fn write_stream(mut s: ByteStream, output: Option<&Path>, what: &str) -> Result<()> {
    match output {
        Some(p) => {
            let tmp = p.with_extension("berth-partial");
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(&tmp)
                    .with_context(|| format!("cannot create {}", tmp.display()))?,
            );
            let r: Result<()> = async {
                while let Some(chunk) = s.next().await {
                    let chunk = chunk.map_err(|e| anyhow!("{what} failed: {e}"))?;
                    f.write_all(&chunk)?;
                }
                f.flush()?;
                Ok(())
            }
            .await;
            if let Err(e) = r {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, p)?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = s.next().await {
                let chunk = chunk.map_err(|e| anyhow!("{what} failed: {e}"))?;
                out.write_all(&chunk)?;
            }
            out.flush()?;
        }
    }
    Ok(())
}

/// A file (or stdin) as a request body stream.
pub async fn input_stream(path: Option<&Path>) -> Result<ByteStream> {
    let rd: Box<dyn tokio::io::AsyncRead + Unpin + Send> = match path {
        Some(p) => Box::new(
            tokio::fs::File::open(p)
                .await
                .with_context(|| format!("open {}", p.display()))?,
        ),
        None => Box::new(tokio::io::stdin()),
    };
    Ok(Box::pin(futures_util::stream::unfold(
        (rd, false),
        |(mut rd, done)| async move {
            if done {
                return None;
            }
            let mut buf = vec![0u8; 256 * 1024];
            match rd.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), (rd, false)))
                }
                Err(e) => Some((
                    Err(api::ApiError::Internal(format!("reading the input: {e}"))),
                    (rd, true),
                )),
            }
        },
    )))
}

fn once_stream(v: Vec<u8>) -> ByteStream {
    Box::pin(futures_util::stream::once(
        async move { Ok(Bytes::from(v)) },
    ))
}

/// `docker cp`.
#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information).
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy.
    #[arg(short, long)]
    pub quiet: bool,
    /// SRC: CONTAINER:SRC_PATH, a local path, or - (a tar stream on stdin).
    pub src: String,
    /// DEST: CONTAINER:DEST_PATH, a local path, or - (a tar stream on stdout).
    pub dest: String,
}

fn base_name(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some((_, b)) if !b.is_empty() => b.to_string(),
        _ if t.is_empty() => "/".into(),
        _ => t.to_string(),
    }
}

fn parent_of(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some(("", _)) => "/".into(),
        Some((d, _)) => d.to_string(),
        None => ".".into(),
    }
}

pub fn cp(conn: &Conn, a: CpArgs) -> i32 {
    let (sc, sp) = opts::split_cp_arg(&a.src);
    let (dc, dp) = opts::split_cp_arg(&a.dest);
    let r = match (sc, dc) {
        (Some(c), None) => conn.block_on(copy_from(conn, c, sp, dp, &a)),
        (None, Some(c)) => conn.block_on(copy_to(conn, sp, c, dp, &a)),
        (Some(_), Some(_)) => Err(anyhow!("copying between containers is not supported")),
        (None, None) => Err(anyhow!("must specify at least one container source")),
    };
    match r {
        Ok(()) => 0,
        Err(e) => fail(crate::error_text(&e), 1),
    }
}

async fn copy_from(conn: &Conn, ctr: &str, src: &str, dest: &str, a: &CpArgs) -> Result<()> {
    let (stat, mut s) = conn.client.container_archive_get(ctr, src).await?;
    if dest == "-" {
        return write_stream(s, None, "cp").await;
    }
    let mut tar = Vec::new();
    while let Some(c) = s.next().await {
        tar.extend_from_slice(&c.map_err(|e| anyhow!("copying from {ctr}: {e}"))?);
    }
    let dest_path = PathBuf::from(dest);
    let into_dir = dest_path.is_dir();
    let unpack = |dir: &Path| -> Result<()> {
        let mut ar = tar::Archive::new(std::io::Cursor::new(&tar));
        ar.set_preserve_permissions(true);
        ar.set_preserve_ownerships(a.archive);
        ar.set_overwrite(true);
        ar.unpack(dir)
            .with_context(|| format!("extracting into {}", dir.display()))
    };
    if into_dir {
        unpack(&dest_path)?;
    } else {
        let parent = dest_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            bail!(
                "invalid output path: directory {} does not exist",
                parent.display()
            );
        }
        let tmp = parent.join(format!(".berth-cp-{}", std::process::id()));
        std::fs::create_dir_all(&tmp)?;
        let r = unpack(&tmp).and_then(|_| {
            let name = if stat.name.is_empty() {
                base_name(src)
            } else {
                stat.name.clone()
            };
            std::fs::rename(tmp.join(&name), &dest_path)
                .with_context(|| format!("moving the copy to {}", dest_path.display()))
        });
        let _ = std::fs::remove_dir_all(&tmp);
        r?;
    }
    if !a.quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {dest}",
            units::human_size4(tar.len() as u64)
        );
    }
    Ok(())
}

async fn copy_to(conn: &Conn, src: &str, ctr: &str, dest: &str, a: &CpArgs) -> Result<()> {
    let c = &conn.client;
    let opts = ArchivePutOptions {
        no_overwrite_dir_non_dir: true,
        copy_uid_gid: a.archive,
    };
    if src == "-" {
        let body = input_stream(None).await?;
        c.container_archive_put(ctr, dest, &opts, body).await?;
        return Ok(());
    }
    let meta = if a.follow_link {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .with_context(|| format!("could not find the file {src} on the local host"))?;
    // Where it goes: into DEST when DEST is a directory, else as DEST itself.
    let (dir, name) = match c.container_archive_stat(ctr, dest).await {
        Ok(st) if st.mode & (1 << 31) != 0 => (dest.to_string(), base_name(src)),
        Ok(_) => {
            if meta.is_dir() {
                bail!("cannot copy a directory to a file: {dest}");
            }
            (parent_of(dest), base_name(dest))
        }
        Err(e) if e.is_not_found() => {
            if dest.ends_with('/') {
                bail!("the destination directory {dest} must exist");
            }
            (parent_of(dest), base_name(dest))
        }
        Err(e) => return Err(e.into()),
    };
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(a.follow_link);
    if meta.is_dir() {
        b.append_dir_all(&name, src)?;
    } else {
        b.append_path_with_name(src, &name)?;
    }
    let data = b.into_inner()?;
    let n = data.len();
    c.container_archive_put(ctr, &dir, &opts, once_stream(data))
        .await?;
    if !a.quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {ctr}:{dest}",
            units::human_size4(n as u64)
        );
    }
    Ok(())
}

/// `docker stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result.
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    pub containers: Vec<String>,
}

/// `units.BytesSize`: binary units, 4 significant digits.
pub fn bytes_size(v: f64) -> String {
    const U: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = v;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", go_g4(v), U[i])
}

/// Go's `%.4g`.
fn go_g4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = v.abs().log10().floor() as i32 + 1;
    let decimals = (4 - digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn stats_row(st: &ContainerStats, id: &str, no_trunc: bool) -> Value {
    let cpu_delta =
        st.cpu_stats.cpu_usage.total_usage as f64 - st.precpu_stats.cpu_usage.total_usage as f64;
    let sys_delta = st.cpu_stats.system_cpu_usage.unwrap_or(0) as f64
        - st.precpu_stats.system_cpu_usage.unwrap_or(0) as f64;
    let online = st
        .cpu_stats
        .online_cpus
        .map(|n| n as f64)
        .unwrap_or_else(|| {
            st.cpu_stats
                .cpu_usage
                .percpu_usage
                .as_ref()
                .map(|v| v.len() as f64)
                .unwrap_or(1.0)
        });
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let m = &st.memory_stats;
    let usage = m.usage.unwrap_or(0) as f64;
    let stats = m.stats.clone().unwrap_or_default();
    let inactive = stats
        .get("total_inactive_file")
        .or_else(|| stats.get("inactive_file"))
        .copied()
        .unwrap_or(0) as f64;
    let mem = if inactive < usage {
        usage - inactive
    } else {
        usage
    };
    let limit = m.limit.unwrap_or(0) as f64;
    let mem_perc = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0u64, 0u64);
    for n in st.networks.clone().unwrap_or_default().values() {
        rx += n.get("rx_bytes").and_then(Value::as_u64).unwrap_or(0);
        tx += n.get("tx_bytes").and_then(Value::as_u64).unwrap_or(0);
    }
    let (mut br, mut bw) = (0u64, 0u64);
    if let Some(list) = st
        .blkio_stats
        .get("io_service_bytes_recursive")
        .and_then(Value::as_array)
    {
        for e in list {
            let v = e.get("value").and_then(Value::as_u64).unwrap_or(0);
            match e
                .get("op")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("read") => br += v,
                Some("write") => bw += v,
                _ => {}
            }
        }
    }
    let pids = st
        .pids_stats
        .get("current")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let shown_id = if no_trunc {
        id.to_string()
    } else {
        id.chars().take(12).collect()
    };
    json!({
        "BlockIO": format!("{} / {}", units::human_size(br), units::human_size(bw)),
        "CPUPerc": format!("{cpu:.2}%"),
        "Container": shown_id,
        "ID": shown_id,
        "MemPerc": format!("{mem_perc:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(mem), bytes_size(limit)),
        "Name": st.name.trim_start_matches('/'),
        "NetIO": format!("{} / {}", units::human_size(rx), units::human_size(tx)),
        "PIDs": pids.to_string(),
    })
}

fn stats_headers() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("ID", "CONTAINER ID"),
        ("Container", "CONTAINER"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ])
}

const STATS_TABLE: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

pub fn stats(conn: &Conn, a: StatsArgs) -> Result<i32> {
    conn.block_on(async {
        let c = &conn.client;
        let ids: Vec<String> = if a.containers.is_empty() {
            c.container_list(&ContainerListOptions {
                all: a.all,
                ..Default::default()
            })
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect()
        } else {
            let mut v = Vec::new();
            for n in &a.containers {
                match c.container_inspect(n).await {
                    Ok(i) => v.push(i.id),
                    Err(e) => return Ok(fail(e, 1)),
                }
            }
            v
        };
        if a.no_stream {
            let samples = futures_util::future::join_all(
                ids.iter().map(|id| c.container_stats_once(id, false)),
            )
            .await;
            let mut rows = Vec::new();
            for (id, s) in ids.iter().zip(samples) {
                match s {
                    Ok(s) => rows.push(stats_row(&s, id, a.no_trunc)),
                    Err(e) => return Ok(fail(e, 1)),
                }
            }
            print_rows(&rows, a.format.as_deref(), STATS_TABLE, &stats_headers())?;
            return Ok(0);
        }
        let mut streams = Vec::new();
        for id in &ids {
            let id2 = id.clone();
            let s = c.container_stats(id).await?;
            streams.push(s.map(move |r| (id2.clone(), r)).boxed());
        }
        let mut all = futures_util::stream::select_all(streams);
        let mut latest: BTreeMap<String, Value> = BTreeMap::new();
        let mut last_draw = std::time::Instant::now() - std::time::Duration::from_secs(2);
        let draw = |latest: &BTreeMap<String, Value>| -> Result<()> {
            let rows: Vec<Value> = ids.iter().filter_map(|i| latest.get(i).cloned()).collect();
            print!("\x1b[2J\x1b[H");
            print_rows(&rows, a.format.as_deref(), STATS_TABLE, &stats_headers())?;
            std::io::stdout().flush()?;
            Ok(())
        };
        if ids.is_empty() {
            draw(&latest)?;
        }
        while let Some((id, r)) = all.next().await {
            match r {
                Ok(s) => {
                    latest.insert(id.clone(), stats_row(&s, &id, a.no_trunc));
                }
                Err(_) => {
                    latest.remove(&id);
                }
            }
            if last_draw.elapsed() >= std::time::Duration::from_millis(900)
                || latest.len() == ids.len()
            {
                draw(&latest)?;
                last_draw = std::time::Instant::now();
            }
        }
        Ok(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_sizes() {
        assert_eq!(bytes_size(0.0), "0B");
        assert_eq!(bytes_size(1220608.0), "1.164MiB");
        assert_eq!(bytes_size(8_194_048_000.0), "7.631GiB");
        assert_eq!(base_name("/etc/hosts"), "hosts");
        assert_eq!(parent_of("/etc/hosts"), "/etc");
        assert_eq!(parent_of("/x"), "/");
    }
}
