//! `berth shim …`: the shim's command line, and [`StartOptions`] to build it.
//!
//! Owns: flag parsing (clap), the checks made before detaching (so a bad flag is reported on
//! the ready descriptor and stderr at once), and the order of start-up: check, detach, pid
//! file, stdio, then the shim proper (the private `server` module).

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::daemonize::{self, Role};
use crate::jsonlog::writer::LogConfig;
use crate::protocol::{self, Ready};
use crate::server;

#[derive(Parser, Debug)]
#[command(
    name = "berth shim",
    about = "Per-container supervisor: holds the container's stdio, writes its log, reaps it and records its exit",
    disable_version_flag = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create and start a container under a new, detached shim.
    Start(StartArgs),
}

#[derive(Args, Debug)]
struct StartArgs {
    /// Container id (the runtime's id).
    #[arg(long)]
    id: String,
    /// OCI bundle directory (config.json + rootfs).
    #[arg(long)]
    bundle: PathBuf,
    /// The runtime's state root (its --root).
    #[arg(long)]
    runtime_root: PathBuf,
    /// Directory for the shim's sockets, pid file and exit record.
    #[arg(long)]
    state_dir: PathBuf,
    /// The container has a terminal (config.json process.terminal must be true).
    #[arg(long)]
    tty: bool,
    /// Keep the container's stdin open for attach clients (else it is /dev/null).
    #[arg(long)]
    stdin: bool,
    /// json-file log (no log without it).
    #[arg(long)]
    log_path: Option<PathBuf>,
    /// Rotate the log at this size (bytes; k, m, g suffixes are binary multiples).
    #[arg(long, value_parser = parse_size, requires = "log_path")]
    log_max_size: Option<u64>,
    /// Log files to keep, rotated ones included.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    log_max_file: u32,
    /// Descriptor to report readiness on: one JSON line {"pid":N} or {"error":"..."}.
    #[arg(long)]
    ready_fd: Option<RawFd>,
    /// cgroupsPath is systemd's slice:prefix:name form (the runtime's --systemd-cgroup).
    #[arg(long)]
    systemd_cgroup: bool,
    /// Create only; start on a {"start":true} control request (attach first, miss nothing).
    #[arg(long)]
    no_start: bool,
    /// Use chroot instead of pivot_root (the runtime's --no-pivot).
    #[arg(long)]
    no_pivot: bool,
    /// Do not detach (for debugging, or under a supervisor).
    #[arg(long)]
    foreground: bool,
    /// Drive this runc-compatible runtime binary instead of berth's own runtime.
    #[arg(long)]
    runtime_binary: Option<PathBuf>,
    /// A global argument for --runtime-binary (repeatable).
    #[arg(
        long = "runtime-arg",
        allow_hyphen_values = true,
        requires = "runtime_binary"
    )]
    runtime_args: Vec<String>,
}

/// Parses `1234`, `10k`, `10m`, `1g` (binary multiples, as docker's max-size).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid size {s:?}: use bytes, or a number with k, m or g"))?;
    let v = n
        .checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))?;
    if v == 0 {
        return Err("the log size limit must be above 0".into());
    }
    Ok(v)
}

/// Everything `berth shim start` takes, for the daemon to build its command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartOptions {
    /// Container id.
    pub id: String,
    /// OCI bundle.
    pub bundle: PathBuf,
    /// Runtime state root.
    pub runtime_root: PathBuf,
    /// Shim state directory.
    pub state_dir: PathBuf,
    /// Terminal.
    pub tty: bool,
    /// Open stdin.
    pub stdin: bool,
    /// json-file log settings.
    pub log: Option<LogConfig>,
    /// Readiness descriptor number in the shim process.
    pub ready_fd: Option<RawFd>,
    /// systemd cgroup paths.
    pub systemd_cgroup: bool,
    /// Create only.
    pub no_start: bool,
    /// chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Do not detach.
    pub foreground: bool,
    /// An external runc-compatible runtime (None: berth's own, in-process).
    pub runtime_binary: Option<PathBuf>,
    /// Its global arguments.
    pub runtime_args: Vec<String>,
}

impl StartOptions {
    /// The arguments after `berth shim`: `start --id … `.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["start".into()];
        let mut kv = |k: &str, v: OsString| {
            a.push(k.into());
            a.push(v);
        };
        kv("--id", self.id.clone().into());
        kv("--bundle", self.bundle.clone().into());
        kv("--runtime-root", self.runtime_root.clone().into());
        kv("--state-dir", self.state_dir.clone().into());
        if let Some(l) = &self.log {
            kv("--log-path", l.path.clone().into());
            if let Some(m) = l.max_size {
                kv("--log-max-size", m.to_string().into());
            }
            kv("--log-max-file", l.max_files.max(1).to_string().into());
        }
        if let Some(fd) = self.ready_fd {
            kv("--ready-fd", fd.to_string().into());
        }
        if let Some(b) = &self.runtime_binary {
            kv("--runtime-binary", b.clone().into());
            for x in &self.runtime_args {
                kv("--runtime-arg", x.clone().into());
            }
        }
        for (on, flag) in [
            (self.tty, "--tty"),
            (self.stdin, "--stdin"),
            (self.systemd_cgroup, "--systemd-cgroup"),
            (self.no_start, "--no-start"),
            (self.no_pivot, "--no-pivot"),
            (self.foreground, "--foreground"),
        ] {
            if on {
                a.push(flag.into());
            }
        }
        a
    }
}

/// Takes ownership of the readiness descriptor after checking it is open.
fn ready_file(fd: RawFd) -> Result<File, String> {
    if fd < 0 || nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_err() {
        return Err(format!("--ready-fd {fd}: not an open file descriptor"));
    }
    // Not for the container, nor for anything the shim runs.
    let _ = nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    // SAFETY: the descriptor is open (checked above) and handed to this process to own; it is
    // wrapped exactly once.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

fn fail(ready: Option<&File>, msg: &str) -> i32 {
    eprintln!("berth shim: {msg}");
    if let Some(mut f) = ready {
        use std::io::Write;
        let mut line = serde_json::to_vec(&Ready {
            pid: None,
            error: Some(msg.to_string()),
        })
        .unwrap_or_default();
        line.push(b'\n');
        let _ = f.write_all(&line);
    }
    1
}

fn start(a: StartArgs) -> i32 {
    let ready = match a.ready_fd.map(ready_file).transpose() {
        Ok(r) => r,
        Err(msg) => return fail(None, &msg),
    };
    if let Err(e) = runtime::state::check_id(&a.id) {
        return fail(ready.as_ref(), &e.to_string());
    }
    if let Err(e) = std::fs::create_dir_all(&a.state_dir) {
        return fail(
            ready.as_ref(),
            &format!("cannot create state dir {}: {e}", a.state_dir.display()),
        );
    }
    let state_dir = match std::fs::canonicalize(&a.state_dir) {
        Ok(p) => p,
        Err(e) => {
            return fail(
                ready.as_ref(),
                &format!("state dir {}: {e}", a.state_dir.display()),
            )
        }
    };
    // Relative paths would break once the shim changes to /.
    let abs = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    let cfg = server::Config {
        id: a.id.clone(),
        bundle: abs(&a.bundle),
        runtime_root: abs(&a.runtime_root),
        state_dir: state_dir.clone(),
        tty: a.tty,
        stdin: a.stdin,
        log: a.log_path.as_ref().map(|p| LogConfig {
            path: abs(p),
            max_size: a.log_max_size,
            max_files: a.log_max_file,
        }),
        systemd_cgroup: a.systemd_cgroup,
        no_start: a.no_start,
        external: a.runtime_binary.as_ref().map(|b| crate::driver::External {
            binary: b.clone(),
            args: a.runtime_args.clone(),
            root: abs(&a.runtime_root),
            systemd_cgroup: a.systemd_cgroup,
        }),
        no_pivot: a.no_pivot,
    };
    let _ = std::fs::remove_file(state_dir.join(protocol::EXIT_FILE));
    if !a.foreground {
        match daemonize::daemonize(ready.as_ref()) {
            Ok(Role::Parent(code)) => return code,
            Ok(Role::Shim) => {}
            Err(msg) => return fail(ready.as_ref(), &msg),
        }
        if let Err(msg) = daemonize::redirect_stdio(&state_dir.join(protocol::SHIM_LOG)) {
            return fail(ready.as_ref(), &msg);
        }
    }
    if let Err(msg) = daemonize::write_pid_file(&state_dir) {
        return fail(ready.as_ref(), &msg);
    }
    server::run(cfg, ready)
}

/// `berth shim …`: `args[0]` is the program name used in messages (e.g. "berth shim"), the
/// rest the subcommand and its flags. Returns the exit code. In the default (detaching) mode
/// the calling process returns at once with 0 while the shim lives on in a grandchild; call
/// it before starting any thread.
pub fn main(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.cmd {
        Cmd::Start(a) => start(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1234").unwrap(), 1234);
        assert_eq!(parse_size("10k").unwrap(), 10240);
        assert_eq!(parse_size("10m").unwrap(), 10 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert!(parse_size("x").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn options_round_trip_through_clap() {
        let o = StartOptions {
            id: "c1".into(),
            bundle: "/b".into(),
            runtime_root: "/r".into(),
            state_dir: "/s".into(),
            tty: true,
            stdin: true,
            log: Some(LogConfig {
                path: "/l/c1-json.log".into(),
                max_size: Some(1000),
                max_files: 3,
            }),
            ready_fd: Some(3),
            no_start: true,
            ..Default::default()
        };
        let mut args = vec![OsString::from("berth shim")];
        args.extend(o.to_args());
        let cli = Cli::try_parse_from(args).unwrap();
        let Cmd::Start(a) = cli.cmd;
        assert_eq!(a.id, "c1");
        assert!(a.tty && a.stdin && a.no_start && !a.foreground);
        assert_eq!(a.log_max_size, Some(1000));
        assert_eq!(a.log_max_file, 3);
        assert_eq!(a.ready_fd, Some(3));
    }
}
