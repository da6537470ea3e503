//! berth's docker-compatible command line: the same verbs, flags, output shapes and exit codes
//! as the docker CLI, so `alias docker=berth` keeps scripts working.
//!
//! Two modes: by default every command is a client of `berth daemon` over the Engine API
//! (`-H`/`--host`, `BERTH_HOST`, `DOCKER_HOST`, else the default socket, where a daemon is
//! started on first use; see `daemon`). With `--data-root` (or `BERTH_DATA_ROOT`) the image
//! commands and `run` work in-process on that data root instead, without a daemon.

pub mod containers;
pub mod daemon;
pub mod format;
pub mod images;
pub mod images_api;
pub mod objects;
pub mod opts;
pub mod registry_cmds;
pub mod run;
pub mod stdio;
pub mod sys;
pub mod transfer;
pub mod units;

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};

use containers::{
    AttachArgs, CommitArgs, ExecArgs, InspectArgs as CtrInspectArgs, LogsArgs, PsArgs, RmArgs,
    StartArgs, StopArgs, UpdateArgs,
};

/// The data root of the daemon berth starts on first use (and of `berth daemon`).
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers",
    version,
    disable_help_subcommand = true
)]
struct Cli {
    /// Work in-process on this data root (image commands and run) instead of through the daemon.
    #[arg(long = "data-root", global = true, env = "BERTH_DATA_ROOT")]
    data_root: Option<PathBuf>,
    /// Daemon socket to connect to (default: BERTH_HOST, DOCKER_HOST, else unix:///run/berth/berth.sock).
    #[arg(short = 'H', long = "host")]
    host: Option<String>,
    /// Enable debug mode.
    #[arg(short = 'D', long)]
    debug: bool,
    /// Set the logging level.
    #[arg(short = 'l', long = "log-level")]
    log_level: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List images.
    Images(images::ListArgs),
    /// Manage images.
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// Show the history of an image.
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag { source: String, target: String },
    /// Remove one or more images.
    Rmi(RmiArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN.
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(ImportArgs),
    /// Return low-level information on Docker objects.
    Inspect(CtrInspectArgs),
    #[command(flatten)]
    Ctr(CtrCmd),
    /// List containers.
    Ps(PsArgs),
    /// Manage containers.
    Container {
        #[command(subcommand)]
        cmd: ContainerCmd,
    },
    /// Manage volumes.
    Volume {
        #[command(subcommand)]
        cmd: objects::VolumeCmd,
    },
    /// Manage networks.
    Network {
        #[command(subcommand)]
        cmd: objects::NetworkCmd,
    },
    /// Manage berth.
    System {
        #[command(subcommand)]
        cmd: SystemCmd,
    },
    /// Display system-wide information.
    Info {
        /// Format output using a custom template.
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Show the berth version information.
    Version {
        /// Format output using a custom template.
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Get real time events from the server.
    Events(sys::EventsArgs),
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// Log in to a registry.
    Login {
        server: Option<String>,
        #[arg(short, long)]
        username: Option<String>,
        #[arg(short, long)]
        password: Option<String>,
        #[arg(long = "password-stdin")]
        password_stdin: bool,
    },
    /// Log out from a registry.
    Logout { server: Option<String> },
}

/// Container commands docker has both at the top level and under `container`.
#[derive(Subcommand, Debug)]
enum CtrCmd {
    /// Create and run a new container from an image.
    Run(run::RunArgs),
    /// Create a new container.
    Create(run::RunArgs),
    /// Start one or more stopped containers.
    Start(StartArgs),
    /// Stop one or more running containers.
    Stop(StopArgs),
    /// Restart one or more containers.
    Restart(StopArgs),
    /// Kill one or more running containers.
    Kill {
        /// Signal to send to the container.
        #[arg(short, long)]
        signal: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Pause all processes within one or more containers.
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Unpause all processes within one or more containers.
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove one or more containers.
    Rm(RmArgs),
    /// Rename a container.
    Rename { container: String, new_name: String },
    /// Block until one or more containers stop, then print their exit codes.
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Attach local standard input, output, and error streams to a running container.
    Attach(AttachArgs),
    /// Fetch the logs of a container.
    Logs(LogsArgs),
    /// Execute a command in a running container.
    Exec(ExecArgs),
    /// Display the running processes of a container.
    Top {
        container: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Display a live stream of container(s) resource usage statistics.
    Stats(transfer::StatsArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(transfer::CpArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff { container: String },
    /// Create a new image from a container's changes.
    Commit(CommitArgs),
    /// Export a container's filesystem as a tar archive.
    Export {
        container: String,
        /// Write to a file, instead of STDOUT.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// List port mappings or a specific mapping for the container.
    Port {
        container: String,
        private_port: Option<String>,
    },
    /// Update configuration of one or more containers.
    Update(UpdateArgs),
}

/// `docker container COMMAND`.
#[derive(Subcommand, Debug)]
enum ContainerCmd {
    #[command(flatten)]
    Common(CtrCmd),
    /// List containers.
    #[command(aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Display detailed information on one or more containers.
    Inspect(CtrInspectArgs),
    /// Remove all stopped containers.
    Prune {
        /// Provide filter values (e.g. "until=<timestamp>").
        #[arg(long)]
        filter: Vec<String>,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

/// `docker system COMMAND`.
#[derive(Subcommand, Debug)]
enum SystemCmd {
    /// Show docker disk usage.
    Df {
        /// Show detailed information on space usage.
        #[arg(short, long)]
        verbose: bool,
        /// Format output using a custom template.
        #[arg(long)]
        format: Option<String>,
    },
    /// Remove unused data.
    Prune(sys::SystemPruneArgs),
    /// Display system-wide information.
    Info {
        /// Format output using a custom template.
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Get real time events from the server.
    Events(sys::EventsArgs),
}

#[derive(clap::Args, Debug)]
struct PullArgs {
    name: String,
    /// Download all tagged images in the repository.
    #[arg(short, long = "all-tags")]
    all_tags: bool,
    /// Set platform if server is multi-platform capable (os/arch[/variant]).
    #[arg(long)]
    platform: Option<String>,
    /// Suppress verbose output.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct PushArgs {
    name: String,
    /// Suppress verbose output.
    #[arg(short, long)]
    quiet: bool,
    /// Push all tags of the repository (not supported yet).
    #[arg(short, long = "all-tags")]
    all_tags: bool,
}

#[derive(Subcommand, Debug)]
enum ImageCmd {
    /// List images.
    #[command(alias = "list")]
    Ls(images::ListArgs),
    /// Display detailed information on one or more images.
    Inspect(CtrInspectArgs),
    /// Show the history of an image.
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag { source: String, target: String },
    /// Remove one or more images.
    #[command(alias = "remove")]
    Rm(RmiArgs),
    /// Remove unused images.
    Prune {
        /// Remove all unused images, not just dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
        /// Provide filter values (e.g. "until=<timestamp>").
        #[arg(long)]
        filter: Vec<String>,
    },
    /// Save one or more images to a tar archive.
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN.
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(ImportArgs),
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
}

#[derive(clap::Args, Debug)]
struct HistoryArgs {
    image: String,
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    #[arg(short, long)]
    quiet: bool,
    /// Print sizes and dates in human readable format.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    human: bool,
    #[arg(long)]
    format: Option<String>,
}

#[derive(clap::Args, Debug)]
struct RmiArgs {
    #[arg(required = true)]
    images: Vec<String>,
    /// Force removal of the image.
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents.
    #[arg(long = "no-prune")]
    no_prune: bool,
}

#[derive(clap::Args, Debug)]
struct SaveArgs {
    #[arg(required = true)]
    images: Vec<String>,
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct LoadArgs {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Suppress the load output.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct ImportArgs {
    /// file|URL|- (a local file or "-" for STDIN).
    source: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long)]
    change: Vec<String>,
    /// Set commit message for imported image.
    #[arg(short, long)]
    message: Option<String>,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    platform: Option<String>,
}

/// Run the CLI; returns the exit code (125 for usage errors, 1 for failed commands, as docker).
pub fn main(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => 125,
            };
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", error_text(&e));
            1
        }
    }
}

/// The error and its causes, skipping causes the message already contains.
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

/// Prints a connection failure as docker does and gives its exit code.
fn conn_or_exit(host: Option<&str>, code: i32) -> Result<daemon::Conn, i32> {
    daemon::connect(host).map_err(|e| {
        eprintln!("{e}");
        code
    })
}

/// Commands that work in-process on a data root (`--data-root` mode).
fn run_direct(root: &Path, cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::Login {
            server,
            username,
            password,
            password_stdin,
        } => registry_cmds::login(server.as_deref(), username, password, password_stdin),
        Cmd::Ctr(CtrCmd::Run(a)) => run::run(root, a),
        Cmd::Pull(a)
        | Cmd::Image {
            cmd: ImageCmd::Pull(a),
        } => registry_cmds::pull(root, &a.name, a.platform.as_deref(), a.quiet, a.all_tags),
        Cmd::Push(a)
        | Cmd::Image {
            cmd: ImageCmd::Push(a),
        } => {
            if a.all_tags {
                anyhow::bail!("--all-tags is not supported yet");
            }
            registry_cmds::push(root, &a.name, a.quiet)
        }
        Cmd::Images(a)
        | Cmd::Image {
            cmd: ImageCmd::Ls(a),
        } => images::list(root, a),
        Cmd::Inspect(a)
        | Cmd::Image {
            cmd: ImageCmd::Inspect(a),
        } => {
            if a.typ.as_deref().is_some_and(|t| t != "image") {
                anyhow::bail!(
                    "with --data-root berth inspects images only (--type image); drop --data-root to ask the daemon"
                );
            }
            images::inspect(root, &a.names, a.format.as_deref())
        }
        Cmd::History(a)
        | Cmd::Image {
            cmd: ImageCmd::History(a),
        } => images::history(
            root,
            &a.image,
            a.no_trunc,
            a.quiet,
            a.human,
            a.format.as_deref(),
        ),
        Cmd::Tag { source, target }
        | Cmd::Image {
            cmd: ImageCmd::Tag { source, target },
        } => images::tag(root, &source, &target),
        Cmd::Rmi(a)
        | Cmd::Image {
            cmd: ImageCmd::Rm(a),
        } => images::rmi(root, &a.images, a.force, a.no_prune),
        Cmd::Image {
            cmd: ImageCmd::Prune { all, force, filter },
        } => images::prune(root, all, force, &filter),
        Cmd::Save(a)
        | Cmd::Image {
            cmd: ImageCmd::Save(a),
        } => images::save(root, &a.images, a.output),
        Cmd::Load(a)
        | Cmd::Image {
            cmd: ImageCmd::Load(a),
        } => images::load(root, a.input, a.quiet),
        Cmd::Import(a)
        | Cmd::Image {
            cmd: ImageCmd::Import(a),
        } => images::import(root, &a.source, a.reference.as_deref(), a.change, a.message),
        _ => {
            eprintln!(
                "berth: this command works through the daemon only; drop --data-root (and BERTH_DATA_ROOT) to use it (a daemon's data root is set with `berth daemon --data-root`)"
            );
            Ok(125)
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    let host = cli.host.as_deref();
    match (&cli.data_root, &cli.cmd) {
        (None, Cmd::Login { .. }) | (_, Cmd::Logout { .. }) => {}
        (Some(root), _) => return run_direct(&root.clone(), cli.cmd),
        _ => {}
    }
    // `run` and `create` fail with 125 when the daemon cannot be reached; the rest with 1.
    let code_for = |c: &Cmd| match c {
        Cmd::Ctr(CtrCmd::Run(_)) | Cmd::Ctr(CtrCmd::Create(_)) => 125,
        Cmd::Container {
            cmd: ContainerCmd::Common(CtrCmd::Run(_) | CtrCmd::Create(_)),
        } => 125,
        _ => 1,
    };
    let needs_daemon = !matches!(
        cli.cmd,
        Cmd::Login { .. } | Cmd::Logout { .. } | Cmd::Version { .. }
    );
    let conn = if needs_daemon {
        match conn_or_exit(host, code_for(&cli.cmd)) {
            Ok(c) => Some(c),
            Err(code) => return Ok(code),
        }
    } else {
        None
    };
    let conn_ref = || {
        conn.as_ref()
            .ok_or_else(|| anyhow::anyhow!("no daemon connection"))
    };
    match cli.cmd {
        Cmd::Login {
            server,
            username,
            password,
            password_stdin,
        } => registry_cmds::login_via_daemon(
            host,
            server.as_deref(),
            username,
            password,
            password_stdin,
        ),
        Cmd::Logout { server } => registry_cmds::logout(server.as_deref()),
        Cmd::Version { format } => sys::version(daemon::connect(host), format.as_deref()),
        Cmd::Ctr(c)
        | Cmd::Container {
            cmd: ContainerCmd::Common(c),
        } => run_ctr(conn_ref()?, c),
        Cmd::Ps(a)
        | Cmd::Container {
            cmd: ContainerCmd::Ls(a),
        } => containers::ps(conn_ref()?, a),
        Cmd::Inspect(a) => containers::inspect(conn_ref()?, &a, None),
        Cmd::Container {
            cmd: ContainerCmd::Inspect(a),
        } => containers::inspect(conn_ref()?, &a, Some("container")),
        Cmd::Container {
            cmd: ContainerCmd::Prune { filter, force },
        } => containers::prune(conn_ref()?, force, &filter),
        Cmd::Volume { cmd } => objects::volume(conn_ref()?, cmd),
        Cmd::Network { cmd } => objects::network(conn_ref()?, cmd),
        Cmd::Info { format }
        | Cmd::System {
            cmd: SystemCmd::Info { format },
        } => sys::info(conn_ref()?, format.as_deref()),
        Cmd::Events(a)
        | Cmd::System {
            cmd: SystemCmd::Events(a),
        } => sys::events(conn_ref()?, a),
        Cmd::System {
            cmd: SystemCmd::Df { verbose, format },
        } => sys::df(conn_ref()?, verbose, format.as_deref()),
        Cmd::System {
            cmd: SystemCmd::Prune(a),
        } => sys::system_prune(conn_ref()?, a),
        Cmd::Pull(a)
        | Cmd::Image {
            cmd: ImageCmd::Pull(a),
        } => Ok(images_api::pull(
            conn_ref()?,
            &a.name,
            a.platform.as_deref(),
            a.quiet,
            a.all_tags,
        )),
        Cmd::Push(a)
        | Cmd::Image {
            cmd: ImageCmd::Push(a),
        } => Ok(images_api::push(conn_ref()?, &a.name, a.quiet, a.all_tags)),
        Cmd::Images(a)
        | Cmd::Image {
            cmd: ImageCmd::Ls(a),
        } => images_api::list(conn_ref()?, a),
        Cmd::Image {
            cmd: ImageCmd::Inspect(a),
        } => containers::inspect(conn_ref()?, &a, Some("image")),
        Cmd::History(a)
        | Cmd::Image {
            cmd: ImageCmd::History(a),
        } => images_api::history(
            conn_ref()?,
            &a.image,
            a.no_trunc,
            a.quiet,
            a.human,
            a.format.as_deref(),
        ),
        Cmd::Tag { source, target }
        | Cmd::Image {
            cmd: ImageCmd::Tag { source, target },
        } => Ok(images_api::tag(conn_ref()?, &source, &target)),
        Cmd::Rmi(a)
        | Cmd::Image {
            cmd: ImageCmd::Rm(a),
        } => Ok(images_api::rmi(conn_ref()?, &a.images, a.force, a.no_prune)),
        Cmd::Image {
            cmd: ImageCmd::Prune { all, force, filter },
        } => images_api::prune(conn_ref()?, all, force, &filter),
        Cmd::Save(a)
        | Cmd::Image {
            cmd: ImageCmd::Save(a),
        } => images_api::save(conn_ref()?, &a.images, a.output),
        Cmd::Load(a)
        | Cmd::Image {
            cmd: ImageCmd::Load(a),
        } => images_api::load(conn_ref()?, a.input, a.quiet),
        Cmd::Import(a)
        | Cmd::Image {
            cmd: ImageCmd::Import(a),
        } => images_api::import(
            conn_ref()?,
            &a.source,
            a.reference.as_deref(),
            a.change,
            a.message,
        ),
    }
}

fn run_ctr(conn: &daemon::Conn, cmd: CtrCmd) -> Result<i32> {
    Ok(match cmd {
        CtrCmd::Run(a) => containers::run(conn, a),
        CtrCmd::Create(a) => containers::create(conn, a),
        CtrCmd::Start(a) => containers::start(conn, a),
        CtrCmd::Stop(a) => containers::stop(conn, a, false),
        CtrCmd::Restart(a) => containers::stop(conn, a, true),
        CtrCmd::Kill { signal, containers } => containers::kill(conn, signal, &containers),
        CtrCmd::Pause { containers } => containers::pause(conn, &containers, false),
        CtrCmd::Unpause { containers } => containers::pause(conn, &containers, true),
        CtrCmd::Rm(a) => containers::rm(conn, a),
        CtrCmd::Rename {
            container,
            new_name,
        } => containers::rename(conn, &container, &new_name),
        CtrCmd::Wait { containers } => containers::wait(conn, &containers),
        CtrCmd::Attach(a) => containers::attach(conn, a),
        CtrCmd::Logs(a) => containers::logs(conn, a)?,
        CtrCmd::Exec(a) => containers::exec(conn, a),
        CtrCmd::Top { container, ps_args } => containers::top(conn, &container, &ps_args),
        CtrCmd::Stats(a) => transfer::stats(conn, a)?,
        CtrCmd::Cp(a) => transfer::cp(conn, a),
        CtrCmd::Diff { container } => containers::diff(conn, &container),
        CtrCmd::Commit(a) => containers::commit(conn, a),
        CtrCmd::Export { container, output } => containers::export(conn, &container, output)?,
        CtrCmd::Port {
            container,
            private_port,
        } => containers::port(conn, &container, private_port.as_deref()),
        CtrCmd::Update(a) => containers::update(conn, a)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_exit_125() {
        assert_eq!(
            main(vec!["berth".into(), "images".into(), "--bogus".into()]),
            125
        );
    }
}
