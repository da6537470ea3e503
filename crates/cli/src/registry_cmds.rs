//! `pull`, `push`, `login`, `logout`: the registry client over the local image store, with
//! docker's progress output.

use std::io::IsTerminal;

use anyhow::{anyhow, bail, Context, Result};
use image::{Images, Reference};
use registry::{Client, ClientConfig, Platform, TerminalProgress};

/// Registries named in BERTH_INSECURE_REGISTRIES (comma separated) are reached over plain
/// HTTP, as dockerd's --insecure-registry; loopback registries always are.
fn client() -> Result<Client> {
    let insecure = std::env::var("BERTH_INSECURE_REGISTRIES")
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    Ok(Client::new(ClientConfig {
        insecure_registries: insecure,
        ..Default::default()
    })?)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn parse_ref(name: &str) -> Result<Reference> {
    Reference::parse_normalized(name).map_err(|e| anyhow!("{e}"))
}

/// Passes progress through, except the final `Digest:`/`Status:` lines, kept for [`release`].
struct HoldSummary<'a> {
    inner: &'a TerminalProgress,
    held: std::sync::Mutex<Vec<registry::ProgressMessage>>,
}

impl HoldSummary<'_> {
    fn release(&self) {
        use registry::Progress;
        if let Ok(mut h) = self.held.lock() {
            for m in h.drain(..) {
                self.inner.update(&m);
            }
        }
    }
}

impl registry::Progress for HoldSummary<'_> {
    fn update(&self, m: &registry::ProgressMessage) {
        if m.id.is_none() && (m.status.starts_with("Digest:") || m.status.starts_with("Status:")) {
            if let Ok(mut h) = self.held.lock() {
                h.push(m.clone());
            }
            return;
        }
        self.inner.update(m);
    }
}

/// Pull an image into the store and tag it; returns the image record.
pub fn pull_into(
    images: &Images,
    name: &str,
    platform: Option<&str>,
    quiet: bool,
) -> Result<image::store::ImageRecord> {
    let parsed = parse_ref(name)?;
    if parsed.is_name_only() && !quiet {
        println!("Using default tag: latest");
    }
    let reference = parsed.with_default_tag();
    let platform = match platform {
        Some(p) => Some(Platform::parse(p).map_err(|e| anyhow!("{e}"))?),
        None => None,
    };
    let client = client()?;
    let rt = runtime()?;
    let progress = if quiet {
        TerminalProgress::plain(Box::new(std::io::sink()))
    } else {
        TerminalProgress::stdout()
    };
    // The summary lines (Digest:, Status:) are held back until the layers are unpacked and
    // the image is in the store, so they never claim more than is true.
    let held = HoldSummary {
        inner: &progress,
        held: std::sync::Mutex::new(Vec::new()),
    };
    let pulled = rt.block_on(client.pull(&reference, platform.as_ref(), &images.content, &held));
    let pulled = match pulled {
        Ok(p) => p,
        Err(e) => {
            progress.finish();
            return Err(anyhow!("Error response from daemon: {e}"));
        }
    };
    let extra: Vec<image::Digest> = pulled.index.iter().map(|i| i.digest.clone()).collect();
    let added = images.add_from_manifest(&pulled.manifest_digest(), &extra, None);
    if added.is_ok() {
        held.release();
    }
    progress.finish();
    let img = added?;
    if reference.digest().is_none() {
        images.store.tag(&img.id, &reference)?;
    }
    images.store.tag(
        &img.id,
        &reference.name_only().with_digest(pulled.digest.clone()),
    )?;
    Ok(img)
}

pub fn pull(
    data_root: &std::path::Path,
    name: &str,
    platform: Option<&str>,
    quiet: bool,
    all_tags: bool,
) -> Result<i32> {
    if all_tags {
        bail!("--all-tags is not supported yet");
    }
    let images = crate::images::open(data_root)?;
    pull_into(&images, name, platform, quiet)?;
    let reference = parse_ref(name)?.with_default_tag();
    println!("{reference}");
    Ok(0)
}

pub fn push(data_root: &std::path::Path, name: &str, quiet: bool) -> Result<i32> {
    let images = crate::images::open(data_root)?;
    let reference = parse_ref(name)?;
    let img = images.resolve(name).map_err(|_| {
        anyhow!(
            "An image does not exist locally with the tag: {}",
            reference.familiar_name()
        )
    })?;
    let (_, bytes, media_type) = images.manifest_for_push(&img)?;
    let client = client()?;
    let rt = runtime()?;
    let progress = if quiet {
        TerminalProgress::plain(Box::new(std::io::sink()))
    } else {
        TerminalProgress::stdout()
    };
    let pushed =
        rt.block_on(client.push(&reference, &bytes, &media_type, &images.content, &progress));
    progress.finish();
    let pushed = pushed.map_err(|e| anyhow!("{e}"))?;
    images.store.tag(
        &img.id,
        &reference.name_only().with_digest(pushed.digest.clone()),
    )?;
    if quiet {
        println!("{}", reference.with_default_tag());
    }
    Ok(0)
}

/// The user name and password of a `login`: from the flags, stdin (`--password-stdin`) or
/// the terminal, as docker reads them.
fn login_credentials(
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
) -> Result<(String, String)> {
    if password_stdin && password.is_some() {
        bail!("conflicting options: cannot specify both --password and --password-stdin");
    }
    if password_stdin && username.is_none() {
        bail!("the --password-stdin option requires --username to be set");
    }
    let needs_prompt = username.is_none() || (password.is_none() && !password_stdin);
    if needs_prompt && !std::io::stdin().is_terminal() {
        bail!("Error: Cannot perform an interactive login from a non TTY device");
    }
    let username = match username {
        Some(u) => u,
        None => {
            eprint!("Username: ");
            let mut u = String::new();
            std::io::stdin().read_line(&mut u)?;
            u.trim().to_string()
        }
    };
    let password = if password_stdin {
        let mut p = String::new();
        std::io::stdin()
            .read_line(&mut p)
            .context("reading the password from stdin")?;
        p.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        if !std::io::stdin().is_terminal() {
            bail!("Error: Cannot perform an interactive login from a non TTY device");
        }
        eprint!("Password: ");
        let p = read_hidden_line()?;
        eprintln!();
        p.trim_end_matches(['\n', '\r']).to_string()
    };
    Ok((username, password))
}

/// Reads one line from the terminal on stdin with echo off (restored afterwards).
fn read_hidden_line() -> Result<String> {
    use nix::sys::termios;
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(stdin.as_fd()).ok();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_flags.remove(termios::LocalFlags::ECHO);
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &quiet);
    }
    let mut p = String::new();
    let r = stdin.read_line(&mut p);
    if let Some(t) = &saved {
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, t);
    }
    r.context("reading the password from the terminal")?;
    Ok(p)
}

/// `login` in `--data-root` mode: checks the credentials in-process and stores them.
pub fn login(
    server: Option<&str>,
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
) -> Result<i32> {
    let server = server.unwrap_or("docker.io");
    let (username, password) = login_credentials(username, password, password_stdin)?;
    let client = client()?;
    let rt = runtime()?;
    rt.block_on(client.login(server, &username, &password))
        .map_err(|e| anyhow!("Error response from daemon: {e}"))?;
    warn_unencrypted();
    println!("Login Succeeded");
    Ok(0)
}

/// `login` as docker does it: the daemon checks the credentials (`POST /auth`); when they
/// are accepted they are stored in the CLI's config.json (docker's format, under
/// `$BERTH_CONFIG`, else `~/.berth`). When no daemon can be reached the check is made
/// in-process, as docker falls back to a client-side login.
pub fn login_via_daemon(
    host: Option<&str>,
    server: Option<&str>,
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
) -> Result<i32> {
    let server = server.unwrap_or("docker.io");
    let (username, password) = login_credentials(username, password, password_stdin)?;
    let conn = match crate::daemon::connect(host) {
        Ok(c) => c,
        Err(_) => return login(Some(server), Some(username), Some(password), false),
    };
    let auth = api::types::AuthConfig {
        username: username.clone(),
        password: password.clone(),
        serveraddress: server.to_string(),
        ..Default::default()
    };
    let answer = match conn.block_on(conn.client.auth(&auth)) {
        Ok(a) => a,
        Err(api::client::ClientError::Connect { .. }) => {
            return login(Some(server), Some(username), Some(password), false)
        }
        Err(e) => return Ok(crate::containers::fail(crate::daemon::message(&e), 1)),
    };
    let store = registry::credentials::CredentialStore::default_paths();
    store
        .store(server, &registry::Credentials::new(username, password))
        .map_err(|e| anyhow!("Error saving credentials: {e}"))?;
    warn_unencrypted();
    let status = if answer.status.is_empty() {
        "Login Succeeded".to_string()
    } else {
        answer.status
    };
    println!("{status}");
    Ok(0)
}

/// `logout`: forgets the stored credentials (client-side, as docker's), printing what
/// docker prints whether or not any were stored.
pub fn logout(server: Option<&str>) -> Result<i32> {
    let shown = match server {
        None => registry::credentials::DOCKER_HUB_CONFIG_KEY.to_string(),
        Some(s) => s
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or(s)
            .to_string(),
    };
    println!("Removing login credentials for {shown}");
    client()?.logout(server.unwrap_or("docker.io"))?;
    Ok(0)
}

/// docker's warning after storing credentials in a plain config.json.
fn warn_unencrypted() {
    let store = registry::credentials::CredentialStore::default_paths();
    if let Some(p) = store.write_path() {
        eprintln!(
            "\nWARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n",
            p.display()
        );
    }
}
