//! `berth run`: make a container from an image and run it in the foreground. Until the daemon
//! lands this runs in-process (always removing the container afterwards, like `--rm`), with
//! docker's exit codes: 125 when berth fails, 126 when the command cannot be invoked, 127 when
//! it is not found, otherwise the container's own code.

use anyhow::Result;
use clap::Args;
use image::spec::RunOptions;

/// `docker run` flags berth supports so far.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Automatically remove the container when it exits (always, until the daemon lands).
    #[arg(long)]
    pub rm: bool,
    /// Keep STDIN open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Add Linux capabilities.
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Security options (seccomp=unconfined).
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Network mode (none only, until networking lands).
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// Image to run.
    pub image: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Run; returns the exit code.
pub fn run(data_root: &std::path::Path, a: RunArgs) -> Result<i32> {
    if let Some(n) = a.network.as_deref() {
        if n != "none" {
            eprintln!("berth: docker: network mode {n:?} is not available yet; only --network none (loopback) is");
            return Ok(125);
        }
    }
    let images = crate::images::open(data_root)?;
    let opts = RunOptions {
        entrypoint: a
            .entrypoint
            .map(|e| if e.is_empty() { vec![] } else { vec![e] }),
        cmd: a.command,
        env: a.env,
        workdir: a.workdir,
        user: a.user,
        hostname: a.hostname,
        tty: a.tty,
        cap_add: a.cap_add,
        cap_drop: a.cap_drop,
        privileged: a.privileged,
        read_only: a.read_only,
        ..Default::default()
    };
    if images.resolve(&a.image).is_err() {
        let shown = image::Reference::parse_normalized(&a.image)
            .map(|r| r.with_default_tag().familiar_string())
            .unwrap_or_else(|_| a.image.clone());
        eprintln!("Unable to find image '{shown}' locally");
        if let Err(e) = crate::registry_cmds::pull_into(&images, &a.image, None, false) {
            eprintln!("berth: {}", crate::error_text(&e));
            return Ok(125);
        }
    }
    let unconfined = a
        .security_opt
        .iter()
        .any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined");
    let bundle = match engine::bundle::create(&images, data_root, &a.image, &opts, unconfined) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("berth: {e}");
            return Ok(125);
        }
    };
    // Release the image store (one process at a time may hold it) while the container runs.
    drop(images);
    let rt = runtime::container::Runtime::new(data_root.join("runtime"), false);
    let o = runtime::container::CreateOptions {
        id: bundle.id.clone(),
        bundle: bundle.dir.clone(),
        ..Default::default()
    };
    let code = match rt.run(&o, false) {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            eprintln!(
                "berth: Error response from daemon: failed to create task for container: {msg}"
            );
            if msg.contains("executable file not found")
                || msg.contains("no such file or directory")
            {
                127
            } else if msg.contains("permission denied") || msg.contains("is a directory") {
                126
            } else {
                125
            }
        }
    };
    let removed = crate::images::open(data_root)
        .map_err(|e| crate::error_text(&e))
        .and_then(|images| {
            engine::bundle::remove(&images, data_root, &bundle.id).map_err(|e| e.to_string())
        });
    if let Err(e) = removed {
        eprintln!("berth: warning: cannot remove container {}: {e}", bundle.id);
    }
    Ok(code)
}
