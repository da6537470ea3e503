//! Reaching the daemon: which host the CLI talks to (`-H`, `BERTH_HOST`, `DOCKER_HOST`, else
//! the default socket), starting `berth daemon` on first use when nothing answers on the
//! default socket, and turning client errors into docker's messages and exit codes.
//!
//! Auto-start only applies to the default socket (an explicit host is never started): the
//! daemon runs detached (its own session, stdio to `/var/log/berth/daemon.log`), with the data
//! root `/var/lib/berth`, and the CLI waits for `/_ping` (bounded). Tests and packagers can
//! move the pieces with `BERTH_DEFAULT_SOCKET`, `BERTH_AUTOSTART_DATA_ROOT`,
//! `BERTH_AUTOSTART_EXEC_ROOT` and `BERTH_AUTOSTART_LOG`; `BERTH_NO_AUTOSTART=1` turns it off.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use api::{Client, ClientError};

/// The socket the CLI uses when no host is given.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";
/// Where an auto-started daemon writes its log.
pub const DEFAULT_LOG: &str = "/var/log/berth/daemon.log";
/// How long the CLI waits for an auto-started daemon to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Failures reaching or starting the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The host string is not usable.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The async runtime could not be made.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// `berth daemon` could not be spawned.
    #[error("cannot start the berth daemon ({exe}): {source}")]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    /// The daemon's log or lock could not be opened.
    #[error("cannot open {path} to start the berth daemon: {source}")]
    Setup {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The started daemon did not answer in time or exited.
    #[error("the berth daemon started for {host} {why}; see its log {log}{tail}")]
    NotAnswering {
        host: String,
        why: String,
        log: PathBuf,
        tail: String,
    },
}

/// A connection to the daemon: the client and the runtime its calls run on.
pub struct Conn {
    /// The typed Engine API client.
    pub client: Client,
    /// A current-thread runtime for the CLI's calls.
    pub rt: tokio::runtime::Runtime,
}

impl Conn {
    /// Runs a future on the connection's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// The default socket (`BERTH_DEFAULT_SOCKET` moves it, for tests).
pub fn default_socket() -> PathBuf {
    PathBuf::from(env("BERTH_DEFAULT_SOCKET").unwrap_or_else(|| DEFAULT_SOCKET.to_string()))
}

/// The host the CLI talks to and whether it was given explicitly.
pub fn resolve_host(flag: Option<&str>) -> (String, bool) {
    if let Some(h) = flag.filter(|h| !h.is_empty()) {
        return (h.to_string(), true);
    }
    if let Some(h) = env("BERTH_HOST").or_else(|| env("DOCKER_HOST")) {
        return (h, true);
    }
    (format!("unix://{}", default_socket().display()), false)
}

fn runtime() -> Result<tokio::runtime::Runtime, DaemonError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)
}

/// Connects to the daemon; on the default socket, starts one when none answers.
pub fn connect(flag: Option<&str>) -> Result<Conn, DaemonError> {
    let (host, explicit) = resolve_host(flag);
    let mut client = Client::new(&host)?;
    if let Some(v) = env("BERTH_API_VERSION").or_else(|| env("DOCKER_API_VERSION")) {
        if let Ok(v) = v.parse() {
            client = client.with_version(v);
        }
    }
    client = client.with_user_agent(format!("berth-cli/{}", env!("CARGO_PKG_VERSION")));
    let rt = runtime()?;
    if !explicit && env("BERTH_NO_AUTOSTART").is_none() {
        let answers = rt.block_on(client.ping());
        if let Err(ClientError::Connect { .. }) = answers {
            autostart(&rt, &client, &host)?;
        }
    }
    Ok(Conn { client, rt })
}

fn log_path() -> PathBuf {
    PathBuf::from(env("BERTH_AUTOSTART_LOG").unwrap_or_else(|| DEFAULT_LOG.to_string()))
}

fn tail_of(log: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = fs::File::open(log) {
        let _ = f.read_to_string(&mut s);
    }
    let lines: Vec<&str> = s.lines().collect();
    let last = &lines[lines.len().saturating_sub(5)..];
    if last.is_empty() {
        String::new()
    } else {
        format!(":\n  {}", last.join("\n  "))
    }
}

/// Starts `berth daemon` on the default socket, detached, and waits until it answers.
fn autostart(rt: &tokio::runtime::Runtime, client: &Client, host: &str) -> Result<(), DaemonError> {
    let sock = default_socket();
    let log = log_path();
    let setup = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DaemonError::Setup { path, source }
    };
    let sock_dir = sock.parent().unwrap_or(Path::new("/")).to_path_buf();
    fs::create_dir_all(&sock_dir).map_err(setup(&sock_dir))?;
    // One starter at a time: a second CLI waits for the lock, then finds the daemon up.
    let lock_path = sock_dir.join(".berth-autostart.lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(setup(&lock_path))?;
    let _guard =
        nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
            DaemonError::Setup {
                path: lock_path.clone(),
                source: std::io::Error::from(e),
            }
        })?;
    if rt.block_on(client.ping()).is_ok() {
        return Ok(());
    }
    if let Some(d) = log.parent() {
        fs::create_dir_all(d).map_err(setup(d))?;
    }
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(setup(&log))?;
    let err = out.try_clone().map_err(setup(&log))?;
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let mut cmd = Command::new(&exe);
    cmd.arg("daemon").arg("-H").arg(host);
    if let Some(d) = env("BERTH_AUTOSTART_DATA_ROOT") {
        cmd.arg("--data-root").arg(d);
    }
    if let Some(d) = env("BERTH_AUTOSTART_EXEC_ROOT") {
        cmd.arg("--exec-root").arg(d);
    }
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .current_dir("/")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST");
    // SAFETY: setsid is async-signal-safe and only detaches the child from our session and
    // terminal, so the daemon outlives this command and its terminal's signals.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|source| DaemonError::Spawn {
        exe: exe.clone(),
        source,
    })?;
    eprintln!(
        "berth: no daemon answered on {host}; started one (pid {}, log {})",
        child.id(),
        log.display()
    );
    let t = Instant::now();
    loop {
        if rt.block_on(client.ping()).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(DaemonError::NotAnswering {
                host: host.to_string(),
                why: format!("exited ({status})"),
                tail: tail_of(&log),
                log,
            });
        }
        if t.elapsed() > START_TIMEOUT {
            return Err(DaemonError::NotAnswering {
                host: host.to_string(),
                why: format!("did not answer within {}s", START_TIMEOUT.as_secs()),
                tail: tail_of(&log),
                log,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Docker's message for a client error: `Error response from daemon: ...` for the daemon's
/// own errors, the connection failure otherwise.
pub fn message(e: &ClientError) -> String {
    e.to_string()
}
