//! berth's docker-compatible command line: the same verbs, flags, output shapes and exit codes
//! as the docker CLI, so `alias docker=berth` keeps scripts working.

pub mod containers;
pub mod format;
pub mod images;
pub mod registry_cmds;
pub mod run;
pub mod units;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Default data root (`--data-root`, or BERTH_DATA_ROOT).
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers",
    version,
    disable_help_subcommand = true
)]
struct Cli {
    /// Where berth keeps images and containers.
    #[arg(long = "data-root", global = true, env = "BERTH_DATA_ROOT", default_value = DEFAULT_DATA_ROOT)]
    data_root: PathBuf,
    /// Daemon socket to connect to.
    #[arg(short = 'H', long = "host", env = "BERTH_HOST")]
    host: Option<String>,
    /// Enable debug mode.
    #[arg(short = 'D', long, global = true)]
    debug: bool,
    /// Set the logging level.
    #[arg(short = 'l', long = "log-level", global = true)]
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
    /// Return low-level information on images.
    Inspect(InspectArgs),
    /// Create and run a new container from an image.
    Run(run::RunArgs),
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
    /// Export a container's filesystem as a tar archive (through the daemon).
    Export {
        container: String,
        /// Write to a file, instead of STDOUT.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
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
    Inspect(InspectArgs),
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

#[derive(clap::Args, Debug)]
struct InspectArgs {
    #[arg(required = true)]
    names: Vec<String>,
    /// Format output using a custom template.
    #[arg(short, long)]
    format: Option<String>,
    /// Return JSON for specified type (image).
    #[arg(long = "type")]
    typ: Option<String>,
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

fn run(cli: Cli) -> Result<i32> {
    let root = cli.data_root.as_path();
    match cli.cmd {
        Cmd::Run(a) => run::run(root, a),
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
        Cmd::Login {
            server,
            username,
            password,
            password_stdin,
        } => registry_cmds::login(server.as_deref(), username, password, password_stdin),
        Cmd::Logout { server } => registry_cmds::logout(server.as_deref()),
        Cmd::Export { container, output } => {
            containers::export(cli.host.as_deref(), &container, output)
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
                    "berth can inspect images only until the daemon lands (--type image)"
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
    }
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
