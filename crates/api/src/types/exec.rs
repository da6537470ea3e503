//! Exec shapes: the create body, the start body and the inspect answer.

use serde::{Deserialize, Serialize};

use super::{is_empty_map, nd, Extra};

/// The body of `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ExecConfig {
    /// Attach stdin.
    #[serde(deserialize_with = "nd")]
    pub attach_stdin: bool,
    /// Attach stdout.
    #[serde(deserialize_with = "nd")]
    pub attach_stdout: bool,
    /// Attach stderr.
    #[serde(deserialize_with = "nd")]
    pub attach_stderr: bool,
    /// Initial console size `[height, width]`.
    pub console_size: Option<Vec<u32>>,
    /// Detach key sequence (`ctrl-p,ctrl-q`).
    #[serde(deserialize_with = "nd")]
    pub detach_keys: String,
    /// Allocate a pseudo-TTY.
    #[serde(deserialize_with = "nd")]
    pub tty: bool,
    /// Extra environment, `NAME=value`.
    pub env: Option<Vec<String>>,
    /// The command.
    pub cmd: Option<Vec<String>>,
    /// Privileged.
    #[serde(deserialize_with = "nd")]
    pub privileged: bool,
    /// User to run as.
    #[serde(deserialize_with = "nd")]
    pub user: String,
    /// Working directory.
    #[serde(deserialize_with = "nd")]
    pub working_dir: String,
    /// Fields not modelled here.
    #[serde(flatten, skip_serializing_if = "is_empty_map")]
    pub extra: Extra,
}

/// The body of `POST /exec/{id}/start`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ExecStartConfig {
    /// Start and return at once, without streams.
    #[serde(deserialize_with = "nd")]
    pub detach: bool,
    /// The client's stream is a TTY: output is raw, not multiplexed.
    #[serde(deserialize_with = "nd")]
    pub tty: bool,
    /// Initial console size `[height, width]`.
    pub console_size: Option<Vec<u32>>,
}

/// The process of an exec instance, as inspect reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessConfig {
    /// Privileged.
    pub privileged: bool,
    /// User.
    pub user: String,
    /// TTY.
    pub tty: bool,
    /// argv\[0].
    pub entrypoint: String,
    /// The rest of argv.
    #[serde(deserialize_with = "nd")]
    pub arguments: Vec<String>,
}

/// The answer of `GET /exec/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecInspect {
    /// Removable (finished).
    #[serde(rename = "CanRemove")]
    pub can_remove: bool,
    /// Detach keys.
    #[serde(rename = "DetachKeys")]
    pub detach_keys: String,
    /// Exec ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Running.
    #[serde(rename = "Running")]
    pub running: bool,
    /// Exit code (null until it exited).
    #[serde(rename = "ExitCode")]
    pub exit_code: Option<i64>,
    /// The process.
    #[serde(rename = "ProcessConfig")]
    pub process_config: ProcessConfig,
    /// Stdin attached.
    #[serde(rename = "OpenStdin")]
    pub open_stdin: bool,
    /// Stderr attached.
    #[serde(rename = "OpenStderr")]
    pub open_stderr: bool,
    /// Stdout attached.
    #[serde(rename = "OpenStdout")]
    pub open_stdout: bool,
    /// Container ID.
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    /// Host pid (0 when not running).
    #[serde(rename = "Pid")]
    pub pid: i64,
}
