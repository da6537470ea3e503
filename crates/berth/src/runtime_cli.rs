//! `berth runtime …` / `berth-runtime …`: runc's command line over the runtime library, so
//! containerd, podman and dockerd can use berth as their OCI runtime.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use runtime::container::{CreateOptions, ExecOptions, Runtime};
use runtime::state::{Status, DEFAULT_ROOT};

/// runc-compatible OCI runtime.
#[derive(Parser, Debug)]
#[command(
    name = "berth-runtime",
    version,
    about = "berth's OCI runtime (runc-compatible command line)"
)]
pub struct Cli {
    /// Root directory for container state.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Write errors (and warnings) to this file as well as stderr.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of --log: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Read cgroupsPath as systemd's "slice:prefix:name".
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for compatibility.
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted for compatibility (no effect).
    #[arg(long, value_name = "VALUE", num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Accepted for compatibility (checkpointing is not supported).
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Debug, Clone)]
struct CreateArgs {
    /// Container id.
    id: String,
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is set.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Write the init's pid to this file.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Use chroot instead of pivot_root (for a rootfs on ramfs).
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Accepted for compatibility (no session keyring is created).
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass N extra file descriptors (3..3+N) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
}

impl CreateArgs {
    fn options(&self) -> CreateOptions {
        CreateOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            preserve_fds: self.preserve_fds,
            stdio: None,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a container (its process waits for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Create and start a container; in the foreground, wait for it and delete it.
    Run {
        #[command(flatten)]
        c: CreateArgs,
        /// Return once the container has started.
        #[arg(short, long)]
        detach: bool,
        /// Accepted for compatibility: keep the container after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Print a container's state as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to a container's init.
    Kill {
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
        /// Signal every process of the container.
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container.
    Delete {
        id: String,
        /// Kill the container first if it is running.
        #[arg(short, long)]
        force: bool,
    },
    /// List containers.
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Run a new process in a container.
    Exec(ExecArgs),
    /// List a container's processes.
    Ps {
        id: String,
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Arguments for ps(1) (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze all processes of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Print the features this runtime supports, as JSON.
    Features,
    /// Write a default config.json.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A spec for a rootless container (user namespace, no network namespace).
        #[arg(long)]
        rootless: bool,
    },
    /// Print container events; with --stats, one stats sample.
    Events {
        id: String,
        #[arg(long)]
        stats: bool,
        #[arg(long, default_value = "5s")]
        interval: String,
    },
    /// Change a container's resource limits.
    Update {
        id: String,
        /// JSON file with linux.resources ("-" for stdin).
        #[arg(short, long)]
        resources: Option<PathBuf>,
        #[arg(long)]
        memory: Option<String>,
        #[arg(long = "memory-swap")]
        memory_swap: Option<String>,
        #[arg(long = "pids-limit")]
        pids_limit: Option<i64>,
        #[arg(long = "cpu-shares")]
        cpu_shares: Option<u64>,
        #[arg(long = "cpu-quota")]
        cpu_quota: Option<i64>,
        #[arg(long = "cpu-period")]
        cpu_period: Option<u64>,
        #[arg(long = "cpuset-cpus")]
        cpuset_cpus: Option<String>,
    },
    /// Not supported: checkpointing needs CRIU.
    Checkpoint {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
    /// Not supported: restoring needs CRIU.
    Restore {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
}

#[derive(Args, Debug)]
struct ExecArgs {
    id: String,
    /// Command and arguments (unless --process is given).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long)]
    cwd: Option<PathBuf>,
    #[arg(short, long)]
    env: Vec<String>,
    #[arg(short, long)]
    tty: bool,
    /// uid[:gid]
    #[arg(short, long)]
    user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// A JSON file with the process (OCI process object).
    #[arg(short, long)]
    process: Option<PathBuf>,
    #[arg(short, long)]
    detach: bool,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "process-label")]
    process_label: Option<String>,
    #[arg(long)]
    apparmor: Option<String>,
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Add a capability.
    #[arg(short, long)]
    cap: Vec<String>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    #[arg(long)]
    cgroup: Option<String>,
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
}

/// Parse and run; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    let log = cli.log.clone();
    let json = cli.log_format == "json";
    // Commands that put a process into a container run from a read-only view of this binary.
    if matches!(cli.cmd, Cmd::Create(_) | Cmd::Run { .. } | Cmd::Exec(_)) {
        if let Err(e) = runtime::exe_guard::reexec_sealed(&std::env::args().collect::<Vec<_>>()) {
            eprintln!("berth-runtime: {e}");
            if let Some(path) = &log {
                write_log(path, json, &e.to_string());
            }
            return 1;
        }
        runtime::exe_guard::clear_mark();
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = error_text(&e);
            eprintln!("berth-runtime: {msg}");
            if let Some(path) = log {
                write_log(&path, json, &msg);
            }
            1
        }
    }
}

/// The error and its causes, skipping causes whose text the message already includes
/// (our error types print their source inline).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let t = cause.to_string();
        if !msg.contains(&t) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&t);
        }
    }
    msg
}

fn write_log(path: &PathBuf, json: bool, msg: &str) {
    let line = if json {
        serde_json::json!({"level": "error", "msg": msg, "time": runtime::state::now_rfc3339()})
            .to_string()
    } else {
        format!(
            "time=\"{}\" level=error msg={:?}",
            runtime::state::now_rfc3339(),
            msg
        )
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn run(cli: Cli) -> Result<i32> {
    let rt = Runtime::new(&cli.root, cli.systemd_cgroup);
    match cli.cmd {
        Cmd::Create(c) => {
            rt.create(&c.options())?;
            Ok(0)
        }
        Cmd::Start { id } => {
            rt.start(&id)?;
            Ok(0)
        }
        Cmd::Run { c, detach, .. } => Ok(rt.run(&c.options(), detach)?),
        Cmd::State { id } => {
            let (st, status) = rt.state(&id)?;
            println!("{}", serde_json::to_string_pretty(&st.oci(status))?);
            Ok(0)
        }
        Cmd::Kill { id, signal, all } => {
            rt.kill(&id, &signal, all)?;
            Ok(0)
        }
        Cmd::Delete { id, force } => {
            rt.delete(&id, force)?;
            Ok(0)
        }
        Cmd::List { format, quiet } => list(&rt, &format, quiet),
        Cmd::Exec(a) => exec(&rt, a),
        Cmd::Ps {
            id,
            format,
            ps_args,
        } => ps(&rt, &id, &format, ps_args),
        Cmd::Pause { id } => {
            rt.pause(&id)?;
            Ok(0)
        }
        Cmd::Resume { id } => {
            rt.resume(&id)?;
            Ok(0)
        }
        Cmd::Features => {
            println!("{}", serde_json::to_string_pretty(&features())?);
            Ok(0)
        }
        Cmd::Spec { bundle, rootless } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("File {} exists. Remove it first", path.display());
            }
            let spec = crate::runtime_spec::default_spec(rootless);
            std::fs::write(&path, serde_json::to_string_pretty(&spec)? + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(0)
        }
        Cmd::Events {
            id,
            stats,
            interval,
        } => events(&rt, &id, stats, &interval),
        Cmd::Update {
            id,
            resources,
            memory,
            memory_swap,
            pids_limit,
            cpu_shares,
            cpu_quota,
            cpu_period,
            cpuset_cpus,
        } => {
            let mut r = serde_json::json!({});
            if let Some(p) = resources {
                let text = if p.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin())?
                } else {
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("cannot read {}", p.display()))?
                };
                r = serde_json::from_str(&text).context("--resources: invalid JSON")?;
            }
            let set = |r: &mut serde_json::Value, a: &str, b: &str, v: serde_json::Value| {
                r[a][b] = v;
            };
            if let Some(m) = memory {
                set(&mut r, "memory", "limit", parse_bytes(&m)?.into());
            }
            if let Some(m) = memory_swap {
                set(&mut r, "memory", "swap", parse_bytes(&m)?.into());
            }
            if let Some(p) = pids_limit {
                set(&mut r, "pids", "limit", p.into());
            }
            if let Some(v) = cpu_shares {
                set(&mut r, "cpu", "shares", v.into());
            }
            if let Some(v) = cpu_quota {
                set(&mut r, "cpu", "quota", v.into());
            }
            if let Some(v) = cpu_period {
                set(&mut r, "cpu", "period", v.into());
            }
            if let Some(v) = cpuset_cpus {
                set(&mut r, "cpu", "cpus", v.into());
            }
            let res: oci_spec::runtime::LinuxResources =
                serde_json::from_value(r).context("invalid resources")?;
            let (st, status) = rt.state(&id)?;
            if status == Status::Stopped {
                bail!("container {id} is stopped");
            }
            st.cgroup.set(&res)?;
            Ok(0)
        }
        Cmd::Checkpoint { .. } | Cmd::Restore { .. } => {
            bail!("checkpoint/restore is not supported by berth (it needs CRIU)")
        }
    }
}

fn parse_bytes(s: &str) -> Result<i64> {
    let s = s.trim();
    if s == "-1" {
        return Ok(-1);
    }
    let (num, mult) = match s.to_ascii_lowercase().chars().last() {
        Some('k') => (&s[..s.len() - 1], 1i64 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        Some('b') => (&s[..s.len() - 1], 1),
        _ => (s, 1),
    };
    let n: i64 = num.parse().map_err(|_| anyhow!("invalid size {s:?}"))?;
    Ok(n * mult)
}

fn list(rt: &Runtime, format: &str, quiet: bool) -> Result<i32> {
    let all = rt.list()?;
    if quiet {
        for (st, _) in &all {
            println!("{}", st.id);
        }
        return Ok(0);
    }
    match format {
        "json" => {
            let v: Vec<_> = all
                .iter()
                .map(|(st, status)| {
                    serde_json::json!({
                        "ociVersion": runtime::state::OCI_VERSION,
                        "id": st.id,
                        "pid": if *status == Status::Stopped { 0 } else { st.pid },
                        "status": status.to_string(),
                        "bundle": st.bundle,
                        "rootfs": st.rootfs,
                        "created": st.created,
                        "annotations": st.annotations,
                        "owner": st.owner,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        "table" => {
            let mut rows = vec![[
                "ID".to_string(),
                "PID".into(),
                "STATUS".into(),
                "BUNDLE".into(),
                "CREATED".into(),
                "OWNER".into(),
            ]];
            for (st, status) in &all {
                let pid = if *status == Status::Stopped {
                    0
                } else {
                    st.pid
                };
                rows.push([
                    st.id.clone(),
                    pid.to_string(),
                    status.to_string(),
                    st.bundle.display().to_string(),
                    st.created.clone(),
                    if st.owner.is_empty() {
                        "root".into()
                    } else {
                        st.owner.clone()
                    },
                ]);
            }
            print_table(&rows);
        }
        other => bail!("invalid format {other:?}: use table or json"),
    }
    Ok(0)
}

fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut w = [0usize; N];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 == N {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<width$}", width = w[i] + 3));
            }
        }
        out.push('\n');
    }
    print!("{out}");
}

fn exec(rt: &Runtime, a: ExecArgs) -> Result<i32> {
    let (st, _) = rt.state(&a.id)?;
    let mut process: oci_spec::runtime::Process = match &a.process {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read process file {}", p.display()))?;
            runtime::spec::parse_process(&text, p)?
        }
        None => {
            let mut p = st.spec.process().clone().unwrap_or_default();
            if a.command.is_empty() {
                bail!("exec: no command given; usage: exec [options] <container-id> <command> [args...]");
            }
            p.set_args(Some(a.command.clone()));
            let mut env = p.env().clone().unwrap_or_default();
            for e in &a.env {
                let key = e.split('=').next().unwrap_or("");
                env.retain(|x| x.split('=').next() != Some(key));
                env.push(e.clone());
            }
            p.set_env(Some(env));
            if let Some(cwd) = &a.cwd {
                p.set_cwd(cwd.clone());
            }
            p.set_terminal(Some(a.tty));
            if let Some(u) = &a.user {
                let (uid, gid) = match u.split_once(':') {
                    Some((u, g)) => (u.parse::<u32>()?, Some(g.parse::<u32>()?)),
                    None => (u.parse::<u32>().context("--user must be uid[:gid]")?, None),
                };
                p.user_mut().set_uid(uid);
                if let Some(g) = gid {
                    p.user_mut().set_gid(g);
                }
            }
            if !a.additional_gids.is_empty() {
                p.user_mut()
                    .set_additional_gids(Some(a.additional_gids.clone()));
            }
            if a.no_new_privs {
                p.set_no_new_privileges(Some(true));
            }
            if !a.cap.is_empty() {
                let mut caps = p.capabilities().clone().unwrap_or_default();
                let add = |set: Option<&oci_spec::runtime::Capabilities>| {
                    let mut s = set.cloned().unwrap_or_default();
                    for c in &a.cap {
                        if let Ok(cap) =
                            serde_json::from_value(serde_json::Value::String(c.clone()))
                        {
                            s.insert(cap);
                        }
                    }
                    Some(s)
                };
                caps.set_bounding(add(caps.bounding().as_ref()));
                caps.set_effective(add(caps.effective().as_ref()));
                caps.set_permitted(add(caps.permitted().as_ref()));
                caps.set_inheritable(add(caps.inheritable().as_ref()));
                caps.set_ambient(add(caps.ambient().as_ref()));
                p.set_capabilities(Some(caps));
            }
            p
        }
    };
    if a.process.is_some() && a.tty {
        process.set_terminal(Some(true));
    }
    let o = ExecOptions {
        console_socket: a.console_socket,
        pid_file: a.pid_file,
        detach: a.detach,
        preserve_fds: a.preserve_fds,
        stdio: None,
    };
    Ok(rt.exec(&a.id, &process, &o)?)
}

fn ps(rt: &Runtime, id: &str, format: &str, ps_args: Vec<String>) -> Result<i32> {
    let pids = rt.pids(id)?;
    match format {
        "json" => {
            println!("{}", serde_json::to_string(&pids)?);
            Ok(0)
        }
        "table" => {
            let args = if ps_args.is_empty() {
                vec!["-ef".to_string()]
            } else {
                ps_args
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .context("cannot run ps")?;
            if !out.status.success() {
                bail!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .ok_or_else(|| anyhow!("ps output has no PID column"))?;
            println!("{header}");
            for l in lines {
                let pid = l
                    .split_whitespace()
                    .nth(col)
                    .and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    println!("{l}");
                }
            }
            Ok(0)
        }
        other => bail!("invalid format {other:?}: use table or json"),
    }
}

fn events(rt: &Runtime, id: &str, stats_once: bool, interval: &str) -> Result<i32> {
    let secs: f64 = interval
        .trim_end_matches('s')
        .parse()
        .map_err(|_| anyhow!("invalid --interval {interval:?}: use e.g. 5s"))?;
    loop {
        let (st, status) = rt.state(id)?;
        if status == Status::Stopped {
            bail!("container {id} is not running");
        }
        let stats = st.cgroup.stats()?;
        println!(
            "{}",
            serde_json::json!({"type": "stats", "id": id, "data": stats})
        );
        if stats_once {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(secs.max(0.1)));
    }
}

fn features() -> serde_json::Value {
    // Seccomp and cgroups are always compiled in (no optional features that could be
    // misreported): what is printed is what this binary does.
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": runtime::state::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "lazytime",
            "mand", "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime",
            "nostrictatime", "nosuid", "private", "rbind", "relatime", "remount", "ro", "rprivate",
            "rshared", "rslave", "runbindable", "rw", "shared", "slave", "strictatime", "suid",
            "sync", "tmpcopyup", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps::all().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": runtime::seccomp::supported_actions(),
                "operators": runtime::seccomp::supported_operators(),
                "archs": runtime::seccomp::supported_architectures(),
                "knownFlags": runtime::seccomp::supported_flags(),
                "supportedFlags": runtime::seccomp::supported_flags(),
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
        },
        "annotations": {
            "org.opencontainers.runc.version": "1.1.0-compatible",
            "io.github.berth.version": env!("CARGO_PKG_VERSION"),
        }
    })
}
