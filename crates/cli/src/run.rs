//! `berth run` flags, and the in-process run of `--data-root` mode: make a container from an
//! image and run it in the foreground (always removing it afterwards, like `--rm`), with
//! docker's exit codes: 125 when berth fails, 126 when the command cannot be invoked, 127 when
//! it is not found, otherwise the container's own code. Through the daemon, `run` is in
//! `containers`.

use anyhow::Result;
use clap::Args;
use image::spec::RunOptions;

/// `docker run` / `docker create` flags. Every flag is passed to the daemon's create request
/// (so it works as soon as the daemon supports it); the in-process `--data-root` mode uses
/// the subset it knows.
#[derive(Args, Debug, Default, Clone)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print usage.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Run container in background and print container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Attach to STDIN, STDOUT or STDERR.
    #[arg(short, long)]
    pub attach: Vec<String>,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process.
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Set environment variables.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Add additional groups to join.
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name.
    #[arg(long)]
    pub domainname: Option<String>,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set meta data on a container.
    #[arg(short, long)]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels.
    #[arg(long = "label-file")]
    pub label_file: Vec<String>,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    pub restart: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// Memory limit.
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap.
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Tune container memory swappiness (0 to 100).
    #[arg(long = "memory-swappiness")]
    pub memory_swappiness: Option<i64>,
    /// Disable OOM Killer.
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000).
    #[arg(long = "oom-score-adj")]
    pub oom_score_adj: Option<i64>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period.
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota.
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable.
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Ulimit options.
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm.
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Sysctl options.
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Add Linux capabilities.
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Security options.
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Add a host device to the container.
    #[arg(long)]
    pub device: Vec<String>,
    /// Connect a container to a network.
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container.
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104).
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address.
    #[arg(long)]
    pub ip6: Option<String>,
    /// Container MAC address.
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Publish a container's port(s) to the host.
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports.
    #[arg(long)]
    pub expose: Vec<String>,
    /// Set custom DNS servers.
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Add link to another container.
    #[arg(long)]
    pub link: Vec<String>,
    /// Bind mount a volume.
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container.
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory.
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s).
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Optional volume driver for the container.
    #[arg(long = "volume-driver")]
    pub volume_driver: Option<String>,
    /// Command to run to check health.
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h).
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h).
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown.
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period.
    #[arg(long = "health-start-interval")]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Signal to stop the container.
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    /// Logging driver for the container.
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options.
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// PID namespace to use.
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC mode to use.
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace to use.
    #[arg(long)]
    pub uts: Option<String>,
    /// User namespace to use.
    #[arg(long)]
    pub userns: Option<String>,
    /// Cgroup namespace to use (host|private).
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// Optional parent cgroup for the container.
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,
    /// Runtime to use for this container.
    #[arg(long)]
    pub runtime: Option<String>,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never").
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Write the container ID to the file.
    #[arg(long)]
    pub cidfile: Option<String>,
    /// Suppress the pull output.
    #[arg(short, long)]
    pub quiet: bool,
    /// IMAGE [COMMAND] [ARG...]: the image, then the command and its arguments (which may
    /// start with `-`).
    #[arg(
        required = true,
        value_name = "IMAGE [COMMAND] [ARG...]",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
    /// The image (filled from `args` by [`RunArgs::normalized`]).
    #[arg(skip)]
    pub image: String,
    /// The command (filled from `args` by [`RunArgs::normalized`]).
    #[arg(skip)]
    pub command: Vec<String>,
}

impl RunArgs {
    /// Splits the positional arguments into image and command.
    pub fn normalized(mut self) -> RunArgs {
        if self.image.is_empty() && !self.args.is_empty() {
            self.image = self.args[0].clone();
            self.command = self.args[1..].to_vec();
        }
        self
    }
}

/// Run in-process (`--data-root` mode); returns the exit code.
pub fn run(data_root: &std::path::Path, a: RunArgs) -> Result<i32> {
    let a = a.normalized();
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
