//! A blocking client of a running shim (for the daemon's blocking threads, tools and tests).
//!
//! Owns: connecting to a shim's sockets by state directory, the attach handshake, one-shot
//! control requests, waiting for an exit (falling back to `exit.json` when the shim has
//! already gone), and reading the readiness line. An async daemon can speak the same
//! protocol with the types in [`crate::protocol`].

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::protocol::{
    self, AttachReply, AttachRequest, ControlReply, ControlRequest, ExitStatus, Ready,
};
use crate::sock;

/// Errors talking to a shim.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket is not there or refuses connections: the shim is not running.
    #[error("cannot connect to the shim at {path}: {source} (is the container's shim running?)")]
    Connect { path: PathBuf, source: io::Error },
    /// Reading or writing the socket failed.
    #[error("talking to the shim at {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// The shim's answer is not what the protocol says.
    #[error("the shim at {path} answered something unexpected: {text:?}")]
    Protocol { path: PathBuf, text: String },
    /// The shim refused the request.
    #[error("the shim refused: {0}")]
    Refused(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads one line byte by byte (so nothing after it is consumed).
fn read_line_unbuffered(s: &mut UnixStream, path: &Path) -> Result<Vec<u8>, Error> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => {
                return Err(Error::Protocol {
                    path: path.to_path_buf(),
                    text: String::from_utf8_lossy(&line).into_owned(),
                })
            }
            Ok(_) if b[0] == b'\n' => return Ok(line),
            Ok(_) => line.push(b[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(path)(e)),
        }
        if line.len() > 64 * 1024 {
            return Err(Error::Protocol {
                path: path.to_path_buf(),
                text: "reply too long".into(),
            });
        }
    }
}

/// An attached stream.
#[derive(Debug)]
pub struct Attached {
    /// The socket: read output from it, write stdin to it, `shutdown(Write)` to end stdin.
    pub stream: UnixStream,
    /// Output is raw terminal bytes (else docker's multiplexed frames).
    pub tty: bool,
}

/// Attaches to the socket at `socket` (`attach.sock` or an exec's socket).
pub fn attach_socket(socket: &Path, req: &AttachRequest) -> Result<Attached, Error> {
    let mut s = sock::connect(socket).map_err(|source| Error::Connect {
        path: socket.to_path_buf(),
        source,
    })?;
    let mut line = serde_json::to_vec(req).map_err(|e| io_err(socket)(io::Error::other(e)))?;
    line.push(b'\n');
    s.write_all(&line).map_err(io_err(socket))?;
    let reply = read_line_unbuffered(&mut s, socket)?;
    let r: AttachReply = serde_json::from_slice(&reply).map_err(|_| Error::Protocol {
        path: socket.to_path_buf(),
        text: String::from_utf8_lossy(&reply).into_owned(),
    })?;
    if let Some(e) = r.error {
        return Err(Error::Refused(e));
    }
    Ok(Attached {
        stream: s,
        tty: r.tty,
    })
}

/// Attaches to the container of the shim in `state_dir`.
pub fn attach(state_dir: &Path, req: &AttachRequest) -> Result<Attached, Error> {
    attach_socket(&state_dir.join(protocol::ATTACH_SOCKET), req)
}

/// Sends one control request and reads its reply (an `error` reply becomes
/// [`Error::Refused`]). A wait blocks until the exit.
pub fn control(state_dir: &Path, req: &ControlRequest) -> Result<ControlReply, Error> {
    let path = state_dir.join(protocol::CONTROL_SOCKET);
    let mut s = sock::connect(&path).map_err(|source| Error::Connect {
        path: path.clone(),
        source,
    })?;
    let mut line = serde_json::to_vec(req).map_err(|e| io_err(&path)(io::Error::other(e)))?;
    line.push(b'\n');
    s.write_all(&line).map_err(io_err(&path))?;
    let mut r = BufReader::new(s);
    let mut reply = String::new();
    r.read_line(&mut reply).map_err(io_err(&path))?;
    let rep: ControlReply =
        serde_json::from_str(reply.trim_end()).map_err(|_| Error::Protocol {
            path: path.clone(),
            text: reply.clone(),
        })?;
    match rep.error {
        Some(e) => Err(Error::Refused(e)),
        None => Ok(rep),
    }
}

/// The container's exit record, if it has exited.
pub fn read_exit(state_dir: &Path) -> Option<ExitStatus> {
    let b = std::fs::read(state_dir.join(protocol::EXIT_FILE)).ok()?;
    serde_json::from_slice(&b).ok()
}

/// Waits for the container to exit: through the shim, or from `exit.json` if the shim has
/// already finished (or finishes while the request is in flight: a connection that ends
/// without a reply means the shim is gone, and `exit.json` was written before it went).
pub fn wait(state_dir: &Path) -> Result<ExitStatus, Error> {
    let req = ControlRequest {
        wait: Some(true),
        ..Default::default()
    };
    match control(state_dir, &req) {
        Ok(r) => r.exit_status().ok_or_else(|| Error::Protocol {
            path: state_dir.join(protocol::CONTROL_SOCKET),
            text: format!("{r:?}"),
        }),
        Err(e @ Error::Refused(_)) => Err(e),
        Err(e) => read_exit(state_dir).ok_or(e),
    }
}

/// Waits for an exec to exit (or reads its record if the shim already forgot it).
pub fn wait_exec(state_dir: &Path, exec_id: &str) -> Result<ExitStatus, Error> {
    let req = ControlRequest {
        wait: Some(true),
        exec_id: Some(exec_id.to_string()),
        ..Default::default()
    };
    let file = protocol::exec_exit_file(state_dir, exec_id);
    let from_file =
        || -> Option<ExitStatus> { serde_json::from_slice(&std::fs::read(&file).ok()?).ok() };
    match control(state_dir, &req) {
        Ok(r) => r.exit_status().ok_or_else(|| Error::Protocol {
            path: state_dir.join(protocol::CONTROL_SOCKET),
            text: format!("{r:?}"),
        }),
        Err(e @ Error::Refused(_)) => Err(e),
        Err(e) => from_file().ok_or(e),
    }
}

/// Reads the readiness line from the read end of the `--ready-fd` pipe (up to its newline,
/// or EOF if the shim died first): the container init's pid, or the shim's error as
/// [`Error::Refused`]. (Read one line, not to EOF: a created-but-not-started init still holds
/// a copy of the descriptor until it execs.)
pub fn read_ready(r: impl Read) -> Result<i32, Error> {
    let mut text = String::new();
    BufReader::new(r)
        .read_line(&mut text)
        .map_err(|source| Error::Io {
            path: PathBuf::from("<ready pipe>"),
            source,
        })?;
    let line = text.trim_end();
    let ready: Ready = serde_json::from_str(line).map_err(|_| Error::Protocol {
        path: PathBuf::from("<ready pipe>"),
        text: if text.is_empty() {
            "nothing (the shim exited without reporting; see its shim.log)".into()
        } else {
            text.clone()
        },
    })?;
    match (ready.pid, ready.error) {
        (_, Some(e)) => Err(Error::Refused(e)),
        (Some(pid), None) => Ok(pid),
        (None, None) => Err(Error::Protocol {
            path: PathBuf::from("<ready pipe>"),
            text,
        }),
    }
}

/// The shim's pid from its pid file, if it is alive.
pub fn shim_pid(state_dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(state_dir.join(protocol::PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
        .is_ok()
        .then_some(pid)
}
