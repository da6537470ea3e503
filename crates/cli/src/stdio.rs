//! The terminal side of attach, run and exec: raw mode while a TTY session runs (restored on
//! every exit path), the terminal's size sent at start and on SIGWINCH, stdin pumped into
//! the hijacked connection (half-closed at end of file), output frames written to stdout and
//! stderr, and (without a TTY) SIGINT/SIGTERM forwarded to the container as docker's
//! `--sig-proxy` does.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;

use api::client::HijackedStream;
use api::stream::StdStream;
use api::Client;
use nix::sys::termios;
use tokio::sync::mpsc;

/// Puts stdin in raw mode while alive (when it is a terminal).
pub struct RawGuard {
    saved: Option<termios::Termios>,
}

impl RawGuard {
    /// Raw mode on stdin if `tty` and stdin is a terminal.
    pub fn new(tty: bool) -> RawGuard {
        let stdin = std::io::stdin();
        if !tty || !stdin.is_terminal() {
            return RawGuard { saved: None };
        }
        let fd = stdin.as_fd();
        let Ok(saved) = termios::tcgetattr(fd) else {
            return RawGuard { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        // Keep output post-processing so our own messages still start at column 0.
        raw.output_flags |= termios::OutputFlags::OPOST;
        let _ = termios::tcsetattr(fd, termios::SetArg::TCSANOW, &raw);
        RawGuard { saved: Some(saved) }
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), termios::SetArg::TCSANOW, t);
        }
    }
}

/// The size of the terminal on stdout (or stdin), `(height, width)`.
pub fn term_size() -> Option<(u32, u32)> {
    for fd in [1, 0, 2] {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ only writes a winsize into the struct we own.
        let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
        if r == 0 && ws.ws_row > 0 && ws.ws_col > 0 {
            return Some((ws.ws_row as u32, ws.ws_col as u32));
        }
    }
    None
}

/// What a TTY resize goes to.
#[derive(Debug, Clone)]
pub enum ResizeTarget {
    /// `POST /containers/{id}/resize`.
    Container(String),
    /// `POST /exec/{id}/resize`.
    Exec(String),
}

/// Sends the terminal's current size to the target (errors ignored, as docker does).
pub async fn resize(client: &Client, target: &ResizeTarget) {
    if let Some((h, w)) = term_size() {
        let _ = match target {
            ResizeTarget::Container(id) => client.container_resize(id, h, w).await,
            ResizeTarget::Exec(id) => client.exec_resize(id, h, w).await,
        };
    }
}

/// How to run a session's streams.
#[derive(Debug, Clone, Default)]
pub struct IoOptions {
    /// Pump our stdin into the session.
    pub stdin: bool,
    /// The session has a TTY (raw mode, resize).
    pub tty: bool,
    /// Where resizes go (with `tty`).
    pub resize: Option<ResizeTarget>,
    /// Forward SIGINT/SIGTERM to this container (`--sig-proxy`, without a TTY).
    pub proxy_signals_to: Option<String>,
}

/// Reads stdin on a thread of its own (a blocked read must not hold the process at exit).
fn stdin_channel() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

fn write_out(stream: StdStream, data: &[u8]) -> std::io::Result<()> {
    if stream == StdStream::Stderr {
        let mut e = std::io::stderr().lock();
        e.write_all(data)?;
        e.flush()
    } else {
        let mut o = std::io::stdout().lock();
        o.write_all(data)?;
        o.flush()
    }
}

/// Runs a hijacked session until its output ends.
pub async fn run_session(
    client: &Client,
    session: HijackedStream,
    opts: &IoOptions,
) -> Result<(), api::ClientError> {
    let _raw = RawGuard::new(opts.tty && opts.stdin);
    let (mut output, mut input) = session.split();
    let mut stdin = if opts.stdin {
        Some(stdin_channel())
    } else {
        None
    };
    if !opts.stdin {
        // Nothing to send: the daemon sees end of file on stdin at once (as docker does
        // when it closes the write side without -i).
        let _ = input.close_write().await;
    }
    use tokio::signal::unix::{signal, SignalKind};
    let mut winch = match (&opts.resize, opts.tty) {
        (Some(_), true) => signal(SignalKind::window_change()).ok(),
        _ => None,
    };
    let (mut sigint, mut sigterm) = match &opts.proxy_signals_to {
        Some(_) if !opts.tty => (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        ),
        _ => (None, None),
    };
    async fn recv_opt(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
        match s {
            Some(s) => s.recv().await,
            None => std::future::pending().await,
        }
    }
    async fn recv_in(s: &mut Option<mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
        match s {
            Some(s) => s.recv().await,
            None => std::future::pending().await,
        }
    }
    loop {
        tokio::select! {
            f = output.next() => {
                match f? {
                    Some(f) => { let _ = write_out(f.stream, &f.data); }
                    None => return Ok(()),
                }
            }
            data = recv_in(&mut stdin) => {
                match data {
                    Some(d) => {
                        if input.send(&d).await.is_err() {
                            stdin = None;
                        }
                    }
                    None => {
                        stdin = None;
                        let _ = input.close_write().await;
                    }
                }
            }
            Some(()) = recv_opt(&mut winch) => {
                if let Some(t) = &opts.resize {
                    resize(client, t).await;
                }
            }
            Some(()) = recv_opt(&mut sigint) => {
                if let Some(id) = &opts.proxy_signals_to {
                    let _ = client.container_kill(id, Some("SIGINT")).await;
                }
            }
            Some(()) = recv_opt(&mut sigterm) => {
                if let Some(id) = &opts.proxy_signals_to {
                    let _ = client.container_kill(id, Some("SIGTERM")).await;
                }
            }
        }
    }
}

/// True when stdin is a terminal.
pub fn stdin_is_tty() -> bool {
    std::io::stdin().is_terminal()
}

/// True when stdout is a terminal.
pub fn stdout_is_tty() -> bool {
    std::io::stdout().is_terminal()
}
