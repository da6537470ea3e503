//! One process's stdio inside the shim: the container's, or an exec's.
//!
//! Owns: a [`Session`] (the output pipes or the pty master, the stdin pipe, the line
//! splitters for the log, the exit status once reaped) and its attached [`Client`]s (each
//! with its own non-blocking output buffer, so one slow client delays only the process it
//! watches, by back-pressure, never the log).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Instant;

use crate::jsonlog::writer::LineSplitter;
use crate::jsonlog::Stream;
use crate::protocol::{frame_header, ExitStatus};

/// Stop reading a process's output while a client has this much unsent.
pub(crate) const HIGH_WATER: usize = 4 * 1024 * 1024;
/// Stop reading clients' stdin while this much waits for the process.
pub(crate) const STDIN_HIGH_WATER: usize = 1024 * 1024;

/// An attached client.
#[derive(Debug)]
pub(crate) struct Client {
    pub sock: UnixStream,
    pub stdout: bool,
    pub stderr: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    /// Still reading from the client (its stdin has not ended).
    pub reading: bool,
    buf: Vec<u8>,
    pos: usize,
    /// Close once everything queued is sent.
    pub closing: bool,
    pub dead: bool,
}

impl Client {
    pub fn new(
        sock: UnixStream,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        stdin_once: bool,
    ) -> Self {
        Client {
            sock,
            stdout,
            stderr,
            stdin,
            stdin_once,
            reading: true,
            buf: Vec::new(),
            pos: 0,
            closing: false,
            dead: false,
        }
    }

    /// Bytes queued but not yet sent.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Queues bytes and sends what the socket takes now.
    pub fn send(&mut self, parts: &[&[u8]]) {
        if self.dead {
            return;
        }
        if self.pending() == 0 {
            self.buf.clear();
            self.pos = 0;
        }
        for p in parts {
            self.buf.extend_from_slice(p);
        }
        self.flush();
    }

    /// Sends queued bytes until the socket would block.
    pub fn flush(&mut self) {
        while self.pos < self.buf.len() && !self.dead {
            match self.sock.write(&self.buf[self.pos..]) {
                Ok(0) => self.dead = true,
                Ok(n) => self.pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => self.dead = true,
            }
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > (1 << 20) && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.closing && self.pending() == 0 && !self.dead {
            let _ = self.sock.shutdown(std::net::Shutdown::Both);
            self.dead = true;
        }
    }

    /// Output of `stream` for this client, framed unless `tty`.
    pub fn output(&mut self, tty: bool, stream: Stream, data: &[u8]) {
        if tty {
            if self.stdout {
                self.send(&[data]);
            }
            return;
        }
        let wanted = match stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
            Stream::Stdin => false,
        };
        if wanted {
            self.send(&[&frame_header(stream, data.len() as u32), data]);
        }
    }

    /// Reads what the client wrote: `Some(n)` bytes into `buf`, `Some(0)` at its EOF, `None`
    /// when nothing is there (or the client is gone, then `dead` is set).
    pub fn read(&mut self, buf: &mut [u8]) -> Option<usize> {
        loop {
            match self.sock.read(buf) {
                Ok(n) => return Some(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(_) => {
                    self.dead = true;
                    return None;
                }
            }
        }
    }
}

/// The stdio of one process.
#[derive(Debug)]
pub(crate) struct Session {
    /// None for the container itself.
    pub exec_id: Option<String>,
    /// Host pid.
    pub pid: i32,
    pub tty: bool,
    /// stdout and stderr read ends (with a terminal: the master in [0]).
    pub outs: [Option<File>; 2],
    pub splitters: [LineSplitter; 2],
    /// Where stdin goes (pipe write end, or a dup of the master).
    pub stdin: Option<File>,
    pub stdin_buf: Vec<u8>,
    /// Close stdin once `stdin_buf` is written.
    pub stdin_close: bool,
    /// The terminal master, for resizing.
    pub master: Option<File>,
    pub clients: Vec<Client>,
    /// An exec's own attach socket.
    pub listener: Option<UnixListener>,
    pub socket: Option<PathBuf>,
    /// Read the output (the container: always; an exec: once a client attached, or detached).
    pub gate: bool,
    pub exit: Option<ExitStatus>,
    pub reaped_at: Option<Instant>,
    /// When output was last read.
    pub last_output: Option<Instant>,
    /// Exit recorded and announced; clients are being closed.
    pub finished: bool,
}

impl Session {
    pub fn new(exec_id: Option<String>, pid: i32, tty: bool) -> Session {
        Session {
            exec_id,
            pid,
            tty,
            outs: [None, None],
            splitters: [LineSplitter::default(), LineSplitter::default()],
            stdin: None,
            stdin_buf: Vec::new(),
            stdin_close: false,
            master: None,
            clients: Vec::new(),
            listener: None,
            socket: None,
            gate: true,
            exit: None,
            reaped_at: None,
            last_output: None,
            finished: false,
        }
    }

    /// Some client is too far behind: stop reading output until it catches up.
    pub fn backpressured(&self) -> bool {
        self.clients
            .iter()
            .any(|c| !c.dead && c.pending() >= HIGH_WATER)
    }

    /// Writes queued stdin; drops stdin when the process closed it or when asked to close.
    pub fn flush_stdin(&mut self) {
        if let Some(f) = self.stdin.as_mut() {
            let mut done = 0;
            while done < self.stdin_buf.len() {
                match f.write(&self.stdin_buf[done..]) {
                    Ok(0) => break,
                    Ok(n) => done += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        // The process closed its stdin: nothing more can go there.
                        self.stdin = None;
                        self.stdin_buf.clear();
                        return;
                    }
                }
            }
            self.stdin_buf.drain(..done);
        } else {
            self.stdin_buf.clear();
        }
        if self.stdin_close && self.stdin_buf.is_empty() && !self.tty {
            self.stdin = None;
        }
    }

    /// A stdin client's input ended (or it went away).
    pub fn client_stdin_ended(&mut self, stdin_once: bool) {
        if stdin_once && !self.tty && self.stdin.is_some() {
            self.stdin_close = true;
            self.flush_stdin();
        }
    }

    /// An exec's process is gone but its pipes stay open (a background child holds them):
    /// give up on the rest of its output after `grace` without any, unless a client is
    /// merely slow.
    pub fn stalled(&self, now: Instant, grace: std::time::Duration) -> bool {
        let Some(reaped) = self.reaped_at else {
            return false;
        };
        let since = self.last_output.map_or(reaped, |o| o.max(reaped));
        self.gate && !self.backpressured() && now.duration_since(since) >= grace
    }

    /// True when both outputs have reached their end.
    pub fn outputs_done(&self) -> bool {
        self.outs.iter().all(Option::is_none)
    }
}
