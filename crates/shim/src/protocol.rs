//! The shim's files and wire protocol, shared by the shim and its clients (the daemon).
//!
//! Owns: the names of the files in a container's state directory, the JSON messages on the
//! attach and control sockets, the exit record, and docker's multiplexed stream framing.
//!
//! Every request and reply is one JSON object on one line (`\n`-terminated).
//!
//! **Attach** (`attach.sock`, and `exec-<id>.sock` for an exec): the client sends
//! [`AttachRequest`]; the shim answers [`AttachReply`]; then the socket carries the output
//! (raw bytes with a terminal, else frames `[stream, 0, 0, 0, len (u32 BE)]` + data) and what
//! the client writes goes to the process's stdin. The client's EOF (shutdown(SHUT_WR) or
//! close) on stdin closes the process's stdin when `stdin_once` (default true). When the
//! process has exited and its output is drained, the shim closes the socket.
//!
//! **Control** (`control.sock`): requests are [`ControlRequest`] (exactly one action key),
//! replies [`ControlReply`]; several requests may follow one another on one connection; a
//! `wait` is answered when the process exits.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::jsonlog::Stream;

/// The attach socket for the container's stdio.
pub const ATTACH_SOCKET: &str = "attach.sock";
/// The control socket.
pub const CONTROL_SOCKET: &str = "control.sock";
/// The container's exit record ([`ExitStatus`]), written atomically.
pub const EXIT_FILE: &str = "exit.json";
/// The shim's pid.
pub const PID_FILE: &str = "shim.pid";
/// The shim's own diagnostics (its stderr).
pub const SHIM_LOG: &str = "shim.log";

/// `exec-<id>.sock`: the attach socket of an exec.
pub fn exec_socket(state_dir: &Path, exec_id: &str) -> PathBuf {
    state_dir.join(format!("exec-{exec_id}.sock"))
}

/// `exec-<id>.exit`: an exec's exit record ([`ExitStatus`], `oom_killed` always false).
pub fn exec_exit_file(state_dir: &Path, exec_id: &str) -> PathBuf {
    state_dir.join(format!("exec-{exec_id}.exit"))
}

/// Checks an exec id: 1–128 of `[A-Za-z0-9_.-]`, not starting with '.' or '-'.
pub fn check_exec_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with(['.', '-'])
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "exec id {id:?} is invalid: use 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        ))
    }
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code; 128+N when killed by signal N.
    pub exit_code: i32,
    /// When the shim reaped it (RFC 3339, nanoseconds, UTC).
    pub finished_at: String,
    /// The kernel's OOM killer killed a process of the container (memory cgroup `oom_kill`).
    pub oom_killed: bool,
}

/// First line on an attach socket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRequest {
    /// Forward what the client writes to the process's stdin.
    #[serde(default)]
    pub stdin: bool,
    /// Send stdout (with a terminal: the terminal's output).
    #[serde(default)]
    pub stdout: bool,
    /// Send stderr (nothing with a terminal).
    #[serde(default)]
    pub stderr: bool,
    /// Close the process's stdin when this client's stdin ends (docker's `StdinOnce`);
    /// default true. Has no effect with a terminal (its input stays open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin_once: Option<bool>,
}

/// The shim's answer to an [`AttachRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachReply {
    /// Attached.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ok: bool,
    /// The stream is raw terminal output (else multiplexed frames).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An exec: run a process in the running container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The exec's id (its socket is `exec-<id>.sock`, its exit record `exec-<id>.exit`).
    pub id: String,
    /// Give it a terminal (sets `process.terminal`).
    #[serde(default)]
    pub tty: bool,
    /// Give it a stdin pipe (else /dev/null).
    #[serde(default)]
    pub stdin: bool,
    /// Nobody will attach: its output is discarded (docker exec -d). Otherwise the output is
    /// held (in the pipe) until the first client attaches.
    #[serde(default)]
    pub detach: bool,
    /// The OCI process; keys given replace the container's own `process` keys, absent keys
    /// (env, cwd, user, capabilities, …) are inherited. `args` is required. Instead of this
    /// key, the process keys may also be given directly in this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<serde_json::Value>,
    /// Process keys given inline.
    #[serde(flatten)]
    pub inline: serde_json::Map<String, serde_json::Value>,
}

/// A request on the control socket: exactly one of the action keys is set.
///
/// ```text
/// {"start":true}                         start a container created with --no-start
/// {"resize":[rows,cols]}                 set the terminal size (add "exec_id" for an exec)
/// {"kill":"SIGTERM","all":false}         signal the container (or an exec with "exec_id")
/// {"wait":true}                          answered when it exits (or an exec with "exec_id")
/// {"exec":{"id":"x","tty":false,"stdin":false,"process":{"args":["ls"]}}}
/// {"state":true}                         what the shim knows
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlRequest {
    /// Start the created container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<bool>,
    /// New terminal size: rows, columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<[u16; 2]>,
    /// Signal to send (name or number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<String>,
    /// With `kill`: every process of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    /// Wait for the exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<bool>,
    /// Run a process in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecRequest>,
    /// Report the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<bool>,
    /// With resize, kill and wait: act on this exec instead of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_id: Option<String>,
}

/// What the shim reports of an exec in a state reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecState {
    /// Its id.
    pub id: String,
    /// Host pid.
    pub pid: i32,
    /// Still running.
    pub running: bool,
    /// Exit code once it has exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// A reply on the control socket. Errors carry only `error`; a wait reply is exactly an
/// [`ExitStatus`]; other replies carry `ok` and what they report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlReply {
    /// The request failed: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    /// wait: the exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// wait: when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// wait: OOM-killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_killed: Option<bool>,
    /// exec: the process's pid; state: the container init's pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// exec: its attach socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// state: the container id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// state: created | running | paused | stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// state: the shim's pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shim_pid: Option<i32>,
    /// state: the container has a terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
    /// state: its exit, once it has exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitStatus>,
    /// state: the execs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execs: Option<Vec<ExecState>>,
}

impl ControlReply {
    /// An error reply.
    pub fn error(msg: impl Into<String>) -> ControlReply {
        ControlReply {
            error: Some(msg.into()),
            ..Default::default()
        }
    }

    /// A plain success.
    pub fn ok() -> ControlReply {
        ControlReply {
            ok: Some(true),
            ..Default::default()
        }
    }

    /// The reply to a wait.
    pub fn exited(e: &ExitStatus) -> ControlReply {
        ControlReply {
            exit_code: Some(e.exit_code),
            finished_at: Some(e.finished_at.clone()),
            oom_killed: Some(e.oom_killed),
            ..Default::default()
        }
    }

    /// The exit status in a wait reply.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        Some(ExitStatus {
            exit_code: self.exit_code?,
            finished_at: self.finished_at.clone().unwrap_or_default(),
            oom_killed: self.oom_killed.unwrap_or(false),
        })
    }
}

/// The line the shim writes on `--ready-fd`: `{"pid":N}` or `{"error":"..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// The container init's host pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Why the container could not be created or started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The 8-byte header of one frame of docker's multiplexed stream.
pub fn frame_header(stream: Stream, len: u32) -> [u8; 8] {
    let l = len.to_be_bytes();
    [stream as u8, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Reads one frame of a multiplexed stream into `buf` (replacing its contents).
/// `Ok(None)` at a clean end of stream.
pub fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<Option<Stream>> {
    let mut h = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        match r.read(&mut h[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let stream = Stream::from_u8(h[0]).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad stream byte {} in frame header", h[0]),
        )
    })?;
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf)?;
    Ok(Some(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_in_the_documented_shapes() {
        let r: ControlRequest = serde_json::from_str(r#"{"resize":[24,80]}"#).unwrap();
        assert_eq!(r.resize, Some([24, 80]));
        let r: ControlRequest = serde_json::from_str(r#"{"kill":"SIGTERM","all":false}"#).unwrap();
        assert_eq!(r.kill.as_deref(), Some("SIGTERM"));
        let r: ControlRequest =
            serde_json::from_str(r#"{"exec":{"id":"e1","tty":true,"args":["ls"],"cwd":"/"}}"#)
                .unwrap();
        let e = r.exec.unwrap();
        assert!(e.tty && e.process.is_none());
        assert_eq!(e.inline["args"][0], "ls");
        let reply = ControlReply::exited(&ExitStatus {
            exit_code: 3,
            finished_at: "t".into(),
            oom_killed: false,
        });
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"exit_code":3,"finished_at":"t","oom_killed":false}"#
        );
        assert!(check_exec_id("abc-1.x_2").is_ok());
        assert!(check_exec_id("../x").is_err());
        assert!(check_exec_id("").is_err());
    }

    #[test]
    fn frames_round_trip() {
        let mut v = frame_header(Stream::Stderr, 3).to_vec();
        v.extend_from_slice(b"abc");
        let mut r = &v[..];
        let mut buf = Vec::new();
        assert_eq!(read_frame(&mut r, &mut buf).unwrap(), Some(Stream::Stderr));
        assert_eq!(buf, b"abc");
        assert_eq!(read_frame(&mut r, &mut buf).unwrap(), None);
    }
}
