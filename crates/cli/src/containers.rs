//! Container commands that go through the daemon's Engine API (the CLI's future for every
//! command): `export`. The daemon is found like docker's: `-H`, BERTH_HOST, DOCKER_HOST, else
//! unix:///run/berth/berth.sock.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use futures_util::StreamExt;

fn client(host: Option<&str>) -> Result<api::Client> {
    Ok(match host {
        Some(h) => api::Client::new(h)?,
        None => api::Client::from_env()?,
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `docker export [-o FILE] CONTAINER`: the container's filesystem as a tar archive.
pub fn export(host: Option<&str>, container: &str, output: Option<PathBuf>) -> Result<i32> {
    if output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let c = client(host)?;
    runtime()?.block_on(async {
        let mut stream = c
            .container_export(container)
            .await
            .map_err(|e| anyhow!("Error response from daemon: {e}"))?;
        let (mut out, tmp): (Box<dyn Write>, Option<(PathBuf, PathBuf)>) = match &output {
            Some(p) => {
                let tmp = p.with_extension("berth-partial");
                (
                    Box::new(std::io::BufWriter::new(std::fs::File::create(&tmp)?)),
                    Some((tmp, p.clone())),
                )
            }
            None => (
                Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
                None,
            ),
        };
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| anyhow!("export of {container} failed: {e}"))?;
            out.write_all(&chunk)?;
        }
        out.flush()?;
        drop(out);
        if let Some((tmp, p)) = tmp {
            std::fs::rename(tmp, p)?;
        }
        Ok(0)
    })
}
