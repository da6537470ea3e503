//! The shim process proper: it creates the container with the runtime library, then runs a
//! single-threaded poll(2) loop until the container has exited and everyone was told.
//!
//! Owns: container creation with pipes or a pty, the event loop (output -> log and attached
//! clients, clients -> stdin, attach and control sockets, execs), reaping (the shim is a child
//! subreaper: the container init and every exec'd process are its children), and the end:
//! kill what is left in the cgroup, drain the output, `rt.delete`, write `exit.json`, answer
//! waiters, close the streams, remove the sockets.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::driver::Driver;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use runtime::cgroups;
use runtime::container::{CreateOptions, ExecOptions, Runtime};

use crate::jsonlog::writer::{LogConfig, LogWriter};
use crate::jsonlog::Stream;
use crate::protocol::{
    self, AttachReply, AttachRequest, ControlReply, ControlRequest, ExecRequest, ExecState,
    ExitStatus, Ready,
};
use crate::session::{Client, Session, STDIN_HIGH_WATER};
use crate::sock;
use crate::timefmt::{self, Stamp};

/// How the shim was asked to run the container.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime_root: PathBuf,
    pub state_dir: PathBuf,
    pub tty: bool,
    pub stdin: bool,
    pub log: Option<LogConfig>,
    pub systemd_cgroup: bool,
    pub no_start: bool,
    pub no_pivot: bool,
    /// An external runc-compatible runtime instead of berth's own.
    pub external: Option<crate::driver::External>,
}

/// How long output may keep coming after the init died (its pipes are normally closed at once).
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// How long queued output may take to reach clients at the end.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// An exec whose process was reaped but whose pipes stay open (a background child holds
/// them) is ended after this long without output.
const EXEC_GRACE: Duration = Duration::from_secs(2);
/// A client must send its attach request within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Size of one read from the container.
const READ_SIZE: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// The init exited: reading what is left of the output.
    Draining(Instant),
    /// Exit recorded: sending what is queued to clients.
    Closing(Instant),
    Done,
}

#[derive(Debug)]
struct Handshake {
    sock: UnixStream,
    buf: Vec<u8>,
    session: usize,
    deadline: Instant,
    dead: bool,
}

#[derive(Debug)]
struct Ctl {
    sock: UnixStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    reading: bool,
    /// Waiting for an exit: `Some(None)` the container's, `Some(Some(id))` an exec's.
    waiting: Option<Option<String>>,
    dead: bool,
}

impl Ctl {
    fn reply(&mut self, r: &ControlReply) {
        let mut line = serde_json::to_vec(r).unwrap_or_else(|_| b"{}".to_vec());
        line.push(b'\n');
        self.out.extend_from_slice(&line);
        self.flush();
    }

    fn flush(&mut self) {
        while self.pos < self.out.len() && !self.dead {
            match self.sock.write(&self.out[self.pos..]) {
                Ok(0) => self.dead = true,
                Ok(n) => self.pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => self.dead = true,
            }
        }
        if self.pos == self.out.len() {
            self.out.clear();
            self.pos = 0;
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Tok {
    Sig,
    AttachL,
    ControlL,
    ExecL(usize),
    Hs(usize),
    Ctl(usize),
    Out(usize, usize),
    In(usize),
    Client(usize, usize),
}

struct Shim {
    cfg: Config,
    rt: Driver,
    init_pid: i32,
    started: bool,
    cgroup: Option<cgroups::Manager>,
    attach_l: UnixListener,
    control_l: UnixListener,
    /// [0] is the container; execs follow (None once removed).
    sessions: Vec<Option<Session>>,
    handshakes: Vec<Handshake>,
    ctls: Vec<Ctl>,
    sfd: SignalFd,
    log: Option<LogWriter>,
    log_failed: bool,
    stamp: Stamp,
    rbuf: Vec<u8>,
    /// The init's exit (known from reaping; announced when `phase` reaches Closing).
    exit: Option<ExitStatus>,
    announced: bool,
    phase: Phase,
}

fn warn(msg: impl std::fmt::Display) {
    let _ = writeln!(io::stderr(), "berth shim: {msg}");
}

fn now_text() -> String {
    let (s, n) = timefmt::now();
    timefmt::rfc3339_nano(s, n)
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let fl = fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    fcntl(
        fd,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK),
    )
    .map_err(io::Error::from)?;
    Ok(())
}

fn pipe() -> Result<(File, File), String> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("cannot create a pipe for the container's stdio: {e}"))?;
    Ok((File::from(r), File::from(w)))
}

/// An output pipe: our (read) end non-blocking, with a 1 MiB kernel buffer.
fn output_pipe() -> Result<(File, File), String> {
    let (r, w) = pipe()?;
    let _ = nix::fcntl::fcntl(
        r.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETPIPE_SZ(READ_SIZE as i32),
    );
    set_nonblocking(r.as_raw_fd()).map_err(|e| format!("cannot set up the stdio pipe: {e}"))?;
    Ok((r, w))
}

fn dev_null() -> Result<File, String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("cannot open /dev/null: {e}"))
}

/// Gives the heap that creating the container used (the parsed spec, the seccomp filter,
/// mount plans) back to the kernel: a shim lives as long as its container, and with many
/// containers its resident memory is most of the engine's.
fn release_setup_memory() {
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it touches no live
    // allocation and is safe to call at any time from this single-threaded process.
    unsafe {
        libc::malloc_trim(0);
    }
    // The stack too: setup went deep (spec parsing, the seccomp filter), the loop does not.
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    let Some(low) = stack_low_end() else {
        return;
    };
    // Below the current frame (and the ABI's red zone) nothing is live; what the loop later
    // needs there faults back in as zero pages.
    let page = 4096;
    let end = sp.saturating_sub(2 * page) & !(page - 1);
    if end > low {
        // SAFETY: [low, end) is the part of this thread's stack mapping below the current
        // frame and a two-page margin: no live frame is there (the process is single-threaded
        // and takes signals through a signalfd, so no handler runs on it). MADV_DONTNEED only
        // drops those private pages; touching them again gives fresh zero pages.
        unsafe {
            libc::madvise(low as *mut libc::c_void, end - low, libc::MADV_DONTNEED);
        }
    }
}

/// The low end of the main thread's stack mapping (`[stack]` in /proc/self/maps).
fn stack_low_end() -> Option<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[stack]"))?;
    let range = line.split_whitespace().next()?;
    let (lo, _) = range.split_once('-')?;
    usize::from_str_radix(lo, 16).ok()
}

/// Writes `data` to `path` atomically (temp file + rename).
///
/// Not fsynced: these files (pid, exec states, exit status) live in the exec root, which is
/// state of the running system (`/run` is a tmpfs on most hosts). A crashed or killed daemon
/// or shim loses nothing that reached the page cache; a host crash ends every container
/// anyway, and the daemon then records them as exited. An fsync here cost 2-5 ms on each
/// container start and exit.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
    }
    std::fs::rename(&tmp, path)
}

/// Did the OOM killer kill a process of this cgroup? (`oom_kill` in v1's
/// `memory.oom_control`, v2's `memory.events`.)
fn oom_killed(cg: &cgroups::Manager) -> bool {
    let file = match cg.version() {
        cgroups::Version::V1 => cg
            .controllers()
            .get("memory")
            .map(|h| h.dir.join("memory.oom_control")),
        cgroups::Version::V2 => cg.unified().map(|h| h.dir.join("memory.events")),
    };
    let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) else {
        return false;
    };
    text.lines().any(|l| {
        let mut it = l.split_whitespace();
        it.next() == Some("oom_kill")
            && it.next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0) > 0
    })
}

/// Accepts the terminal the container sent over the console socket.
fn receive_master(l: &UnixListener) -> Result<File, String> {
    l.set_nonblocking(true)
        .map_err(|e| format!("console socket: {e}"))?;
    let (conn, _) = l
        .accept()
        .map_err(|e| format!("the container did not connect to the console socket: {e}"))?;
    conn.set_nonblocking(false)
        .map_err(|e| format!("console socket: {e}"))?;
    let fd: OwnedFd = runtime::sync::recv_fd(&conn)
        .map_err(|e| format!("cannot receive the container's terminal: {e}"))?;
    let f = File::from(fd);
    set_nonblocking(f.as_raw_fd()).map_err(|e| format!("terminal: {e}"))?;
    Ok(f)
}

/// The stdio handed to a new process and the session ends we keep.
struct Stdio {
    /// Descriptors for the process (kept open until it has them).
    child: Vec<File>,
    fds: [RawFd; 3],
    outs: [Option<File>; 2],
    stdin: Option<File>,
}

fn make_stdio(tty: bool, stdin: bool) -> Result<Stdio, String> {
    let null = dev_null()?;
    let n = null.as_raw_fd();
    if tty {
        return Ok(Stdio {
            child: vec![null],
            fds: [n, n, n],
            outs: [None, None],
            stdin: None,
        });
    }
    let (out_r, out_w) = output_pipe()?;
    let (err_r, err_w) = output_pipe()?;
    let (in_fd, stdin_w, extra) = if stdin {
        let (r, w) = pipe()?;
        set_nonblocking(w.as_raw_fd()).map_err(|e| format!("stdin pipe: {e}"))?;
        (r.as_raw_fd(), Some(w), Some(r))
    } else {
        (n, None, None)
    };
    let fds = [in_fd, out_w.as_raw_fd(), err_w.as_raw_fd()];
    let mut child = vec![null, out_w, err_w];
    child.extend(extra);
    Ok(Stdio {
        child,
        fds,
        outs: [Some(out_r), Some(err_r)],
        stdin: stdin_w,
    })
}

/// Creates (and unless `no_start`, starts) the container. On error nothing is left behind.
fn setup(cfg: Config, sfd: SignalFd) -> Result<Shim, String> {
    let attach_path = cfg.state_dir.join(protocol::ATTACH_SOCKET);
    let control_path = cfg.state_dir.join(protocol::CONTROL_SOCKET);
    let attach_l = sock::bind(&attach_path)
        .map_err(|e| format!("cannot listen on {}: {e}", attach_path.display()))?;
    let control_l = sock::bind(&control_path)
        .map_err(|e| format!("cannot listen on {}: {e}", control_path.display()))?;
    for l in [&attach_l, &control_l] {
        l.set_nonblocking(true)
            .map_err(|e| format!("cannot set up the sockets: {e}"))?;
    }
    let log = match &cfg.log {
        Some(lc) => Some(
            LogWriter::open(lc.clone())
                .map_err(|e| format!("cannot open log file {}: {e}", lc.path.display()))?,
        ),
        None => None,
    };

    // The terminal setting must agree with the bundle's.
    let config_path = cfg.bundle.join("config.json");
    let spec: serde_json::Value = std::fs::read(&config_path)
        .map_err(|e| format!("cannot read {}: {e}", config_path.display()))
        .and_then(|b| {
            serde_json::from_slice(&b)
                .map_err(|e| format!("{} is not valid JSON: {e}", config_path.display()))
        })?;
    let terminal = spec["process"]["terminal"].as_bool().unwrap_or(false);
    if terminal != cfg.tty {
        return Err(format!(
            "{}: process.terminal is {terminal} but the shim was started {} --tty; they must agree",
            config_path.display(),
            if cfg.tty { "with" } else { "without" }
        ));
    }

    let rt = match &cfg.external {
        Some(x) => Driver::External(x.clone()),
        None => Driver::Builtin(Runtime::new(&cfg.runtime_root, cfg.systemd_cgroup)),
    };
    let stdio = make_stdio(cfg.tty, cfg.stdin)?;
    let console_path = cfg.state_dir.join("console.sock");
    let console_l = if cfg.tty {
        Some(
            sock::bind(&console_path)
                .map_err(|e| format!("cannot listen on {}: {e}", console_path.display()))?,
        )
    } else {
        None
    };
    let create = |console: Option<&Path>| {
        rt.create(&CreateOptions {
            id: cfg.id.clone(),
            bundle: cfg.bundle.clone(),
            pid_file: None,
            console_socket: console.map(Path::to_path_buf),
            no_pivot: cfg.no_pivot,
            preserve_fds: 0,
            stdio: Some(stdio.fds),
        })
    };
    let created = if cfg.tty {
        sock::short_path(&console_path, |p| create(Some(p)))
            .map_err(|e| format!("console socket {}: {e}", console_path.display()))?
    } else {
        create(None)
    };
    let pid = match created {
        Ok(pid) => pid,
        Err(e) => {
            let _ = std::fs::remove_file(&console_path);
            return Err(e);
        }
    };
    let Stdio {
        child, outs, stdin, ..
    } = stdio;
    drop(child);
    let fail = |msg: String| {
        let _ = rt.delete(&cfg.id, true);
        let _ = std::fs::remove_file(&console_path);
        msg
    };
    let mut main = Session::new(None, pid, cfg.tty);
    main.outs = outs;
    main.stdin = stdin;
    if let Some(l) = &console_l {
        let master = receive_master(l).map_err(&fail)?;
        let _ = std::fs::remove_file(&console_path);
        let dup = |what: &str| {
            master
                .try_clone()
                .map_err(|e| format!("cannot duplicate the terminal ({what}): {e}"))
        };
        main.stdin = if cfg.stdin {
            Some(dup("stdin").map_err(&fail)?)
        } else {
            None
        };
        main.master = Some(dup("resize").map_err(&fail)?);
        main.outs = [Some(master), None];
    }
    drop(console_l);
    let cgroup = rt.cgroup(&cfg.id, &cfg.bundle, cfg.systemd_cgroup);
    let started = !cfg.no_start;
    if started {
        rt.start(&cfg.id).map_err(fail)?;
    }
    Ok(Shim {
        rt,
        init_pid: pid,
        started,
        cgroup,
        attach_l,
        control_l,
        sessions: vec![Some(main)],
        handshakes: Vec::new(),
        ctls: Vec::new(),
        sfd,
        log,
        log_failed: false,
        stamp: Stamp::default(),
        rbuf: vec![0u8; READ_SIZE],
        exit: None,
        announced: false,
        phase: Phase::Running,
        cfg,
    })
}

/// Signals the shim handles through its signalfd.
fn handled_signals() -> SigSet {
    let mut s = SigSet::empty();
    for sg in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        s.add(sg);
    }
    s
}

fn report(ready: &mut Option<File>, r: &Ready) {
    if let Some(mut f) = ready.take() {
        let mut line = serde_json::to_vec(r).unwrap_or_default();
        line.push(b'\n');
        let _ = f.write_all(&line);
    }
}

/// Runs the shim: create, report on `ready`, serve until the container is gone. Returns the
/// shim's exit code.
pub(crate) fn run(cfg: Config, mut ready: Option<File>) -> i32 {
    // SAFETY: setting a signal disposition; the runtime restores SIGPIPE for the container.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // SAFETY: prctl with integer arguments (the runtime sets it too; before create, orphans
    // of a failed create must come to us as well).
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let set = handled_signals();
    let sfd = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .and_then(|_| SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC));
    let sfd = match sfd {
        Ok(s) => s,
        Err(e) => {
            let msg = format!("cannot set up signal handling: {e}");
            warn(&msg);
            report(
                &mut ready,
                &Ready {
                    pid: None,
                    error: Some(msg),
                },
            );
            return 1;
        }
    };
    let state_dir = cfg.state_dir.clone();
    let mut shim = match setup(cfg, sfd) {
        Ok(s) => s,
        Err(msg) => {
            warn(&msg);
            report(
                &mut ready,
                &Ready {
                    pid: None,
                    error: Some(msg),
                },
            );
            for f in [
                protocol::ATTACH_SOCKET,
                protocol::CONTROL_SOCKET,
                protocol::PID_FILE,
            ] {
                let _ = std::fs::remove_file(state_dir.join(f));
            }
            return 1;
        }
    };
    report(
        &mut ready,
        &Ready {
            pid: Some(shim.init_pid),
            error: None,
        },
    );
    release_setup_memory();
    shim.serve();
    shim.cleanup();
    0
}

impl Shim {
    fn serve(&mut self) {
        loop {
            self.advance_phase();
            if self.phase == Phase::Done {
                self.final_pass();
                return;
            }
            let (mut fds, toks) = self.poll_set();
            let timeout = if self.needs_tick() { 100 } else { -1 };
            // SAFETY: poll(2) on a valid array of pollfd structs we own, of the length given.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    warn(format!("poll: {e}"));
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            for (i, pfd) in fds.iter().enumerate() {
                if pfd.revents != 0 {
                    self.handle(toks[i], pfd.revents);
                }
            }
            self.after_round();
        }
    }

    /// Answers control requests that arrived before the end (a wait gets the exit at once).
    fn final_pass(&mut self) {
        self.accept_control();
        for i in 0..self.ctls.len() {
            self.on_ctl(i, libc::POLLIN);
            let c = &mut self.ctls[i];
            if c.pos < c.out.len() && c.sock.set_nonblocking(false).is_ok() {
                let _ = c.sock.set_write_timeout(Some(Duration::from_millis(200)));
                c.flush();
            }
        }
    }

    fn needs_tick(&self) -> bool {
        !self.handshakes.is_empty()
            || self.phase != Phase::Running
            || self
                .sessions
                .iter()
                .flatten()
                .any(|s| s.reaped_at.is_some() && !s.finished && s.gate)
    }

    fn poll_set(&self) -> (Vec<libc::pollfd>, Vec<Tok>) {
        let mut fds = Vec::with_capacity(16);
        let mut toks = Vec::with_capacity(16);
        let mut add = |fd: RawFd, events: i16, t: Tok| {
            fds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            });
            toks.push(t);
        };
        add(self.sfd.as_raw_fd(), libc::POLLIN, Tok::Sig);
        add(self.attach_l.as_raw_fd(), libc::POLLIN, Tok::AttachL);
        add(self.control_l.as_raw_fd(), libc::POLLIN, Tok::ControlL);
        let draining = matches!(self.phase, Phase::Draining(_));
        for (si, s) in self.sessions.iter().enumerate() {
            let Some(s) = s else { continue };
            if let Some(l) = &s.listener {
                add(l.as_raw_fd(), libc::POLLIN, Tok::ExecL(si));
            }
            if s.gate && (draining || !s.backpressured()) {
                for (k, o) in s.outs.iter().enumerate() {
                    if let Some(f) = o {
                        add(f.as_raw_fd(), libc::POLLIN, Tok::Out(si, k));
                    }
                }
            }
            if let Some(f) = &s.stdin {
                if !s.stdin_buf.is_empty() {
                    add(f.as_raw_fd(), libc::POLLOUT, Tok::In(si));
                }
            }
            let stdin_room = s.stdin_buf.len() < STDIN_HIGH_WATER;
            for (ci, c) in s.clients.iter().enumerate() {
                if c.dead {
                    continue;
                }
                let mut ev = 0;
                if c.reading && stdin_room {
                    ev |= libc::POLLIN;
                }
                if c.pending() > 0 {
                    ev |= libc::POLLOUT;
                }
                add(c.sock.as_raw_fd(), ev, Tok::Client(si, ci));
            }
        }
        for (i, h) in self.handshakes.iter().enumerate() {
            add(h.sock.as_raw_fd(), libc::POLLIN, Tok::Hs(i));
        }
        for (i, c) in self.ctls.iter().enumerate() {
            let mut ev = 0;
            if c.reading {
                ev |= libc::POLLIN;
            }
            if c.pos < c.out.len() {
                ev |= libc::POLLOUT;
            }
            add(c.sock.as_raw_fd(), ev, Tok::Ctl(i));
        }
        (fds, toks)
    }

    fn handle(&mut self, t: Tok, rev: i16) {
        match t {
            Tok::Sig => self.on_signals(),
            Tok::AttachL => self.accept_attach(0),
            Tok::ExecL(si) => self.accept_attach(si),
            Tok::ControlL => self.accept_control(),
            Tok::Hs(i) => self.on_handshake(i),
            Tok::Ctl(i) => self.on_ctl(i, rev),
            Tok::Out(si, k) => self.on_output(si, k),
            Tok::In(si) => {
                if let Some(s) = self.sessions[si].as_mut() {
                    s.flush_stdin();
                }
            }
            Tok::Client(si, ci) => self.on_client(si, ci, rev),
        }
    }

    // ---- signals and reaping ----------------------------------------------------------

    fn on_signals(&mut self) {
        let mut chld = false;
        while let Ok(Some(info)) = self.sfd.read_signal() {
            match info.ssi_signo as i32 {
                libc::SIGCHLD => chld = true,
                libc::SIGTERM | libc::SIGINT if self.exit.is_none() => {
                    // Stopping the shim stops its container; the shim ends when it has exited.
                    let _ = nix::sys::signal::kill(Pid::from_raw(self.init_pid), Signal::SIGTERM);
                }
                _ => {}
            }
        }
        if chld {
            self.reap();
        }
    }

    fn reap(&mut self) {
        loop {
            let (pid, code) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, c)) => (p.as_raw(), c),
                Ok(WaitStatus::Signaled(p, s, _)) => (p.as_raw(), 128 + s as i32),
                Ok(WaitStatus::StillAlive) => return,
                Ok(_) => continue,
                Err(nix::Error::EINTR) => continue,
                Err(_) => return,
            };
            if pid == self.init_pid && self.exit.is_none() {
                self.on_init_exit(code);
                continue;
            }
            for s in self.sessions.iter_mut().skip(1).flatten() {
                if s.pid == pid && s.exit.is_none() {
                    s.exit = Some(ExitStatus {
                        exit_code: code,
                        finished_at: now_text(),
                        oom_killed: false,
                    });
                    s.reaped_at = Some(Instant::now());
                }
            }
        }
    }

    fn on_init_exit(&mut self, code: i32) {
        let oom = self.cgroup.as_ref().is_some_and(oom_killed);
        self.exit = Some(ExitStatus {
            exit_code: code,
            finished_at: now_text(),
            oom_killed: oom,
        });
        // Whatever is left in the cgroup (no pid namespace) goes too, so the pipes close.
        if let Some(cg) = &self.cgroup {
            for p in cg.pids().unwrap_or_default() {
                let _ = nix::sys::signal::kill(Pid::from_raw(p), Signal::SIGKILL);
            }
        }
        if let Some(m) = self.sessions[0].as_mut() {
            m.stdin = None;
            m.stdin_buf.clear();
        }
        self.phase = Phase::Draining(Instant::now() + DRAIN_GRACE);
    }

    // ---- phases -------------------------------------------------------------------------

    fn advance_phase(&mut self) {
        let now = Instant::now();
        match self.phase {
            Phase::Running | Phase::Done => {}
            Phase::Draining(deadline) => {
                let drained = self.sessions[0].as_ref().is_none_or(Session::outputs_done);
                if drained || now >= deadline {
                    self.finish_container();
                    self.phase = Phase::Closing(now + CLOSE_GRACE);
                }
            }
            Phase::Closing(deadline) => {
                let quiet =
                    self.sessions.iter().flatten().all(|s| {
                        s.finished && s.clients.iter().all(|c| c.dead || c.pending() == 0)
                    }) && self.ctls.iter().all(|c| c.pos >= c.out.len());
                if quiet || now >= deadline {
                    self.phase = Phase::Done;
                }
            }
        }
    }

    /// The init is gone and its output drained: delete the container, record and announce.
    fn finish_container(&mut self) {
        if let Err(e) = self.rt.delete(&self.cfg.id, true) {
            warn(format!("cannot delete container {}: {e}", self.cfg.id));
        }
        let exit = self.exit.clone().unwrap_or(ExitStatus {
            exit_code: 255,
            finished_at: now_text(),
            oom_killed: false,
        });
        // Partial lines still buffered go to the log, then the log is flushed.
        if let Some(m) = self.sessions[0].as_mut() {
            let time = self.stamp.now().to_vec();
            for k in 0..2 {
                m.outs[k] = None;
                let stream = if k == 0 {
                    Stream::Stdout
                } else {
                    Stream::Stderr
                };
                let log = &mut self.log;
                let failed = &mut self.log_failed;
                m.splitters[k].finish(|line| log_line(log, failed, stream, line, &time));
            }
        }
        if let Some(l) = self.log.as_mut() {
            if let Err(e) = l.flush() {
                warn(format!("cannot write the log: {e}"));
            }
        }
        let path = self.cfg.state_dir.join(protocol::EXIT_FILE);
        let body = serde_json::to_vec(&exit).unwrap_or_default();
        if let Err(e) = write_atomic(&path, &body) {
            warn(format!("cannot write {}: {e}", path.display()));
        }
        self.announced = true;
        // Every exec ends with the container.
        for si in 1..self.sessions.len() {
            if self.sessions[si].as_ref().is_some_and(|s| !s.finished) {
                self.finish_exec(si);
            }
        }
        if let Some(m) = self.sessions[0].as_mut() {
            m.finished = true;
            m.stdin = None;
            m.master = None;
            for c in &mut m.clients {
                c.closing = true;
                c.flush();
            }
        }
        let reply = ControlReply::exited(&exit);
        for c in &mut self.ctls {
            if c.waiting == Some(None) {
                c.waiting = None;
                c.reply(&reply);
            }
        }
    }

    /// An exec is over (or the container is): record its exit, tell waiters, close streams.
    fn finish_exec(&mut self, si: usize) {
        let Some(s) = self.sessions[si].as_mut() else {
            return;
        };
        let Some(id) = s.exec_id.clone() else { return };
        let exit = s.exit.clone().unwrap_or(ExitStatus {
            // Never reaped (the container went first): it was killed with the container.
            exit_code: 137,
            finished_at: now_text(),
            oom_killed: false,
        });
        s.exit = Some(exit.clone());
        s.finished = true;
        s.outs = [None, None];
        s.stdin = None;
        s.master = None;
        s.listener = None;
        if let Some(p) = s.socket.take() {
            let _ = std::fs::remove_file(p);
        }
        let path = protocol::exec_exit_file(&self.cfg.state_dir, &id);
        if let Err(e) = write_atomic(&path, &serde_json::to_vec(&exit).unwrap_or_default()) {
            warn(format!("cannot write {}: {e}", path.display()));
        }
        for c in &mut s.clients {
            c.closing = true;
            c.flush();
        }
        let reply = ControlReply::exited(&exit);
        for c in &mut self.ctls {
            if c.waiting
                .as_ref()
                .is_some_and(|w| w.as_deref() == Some(id.as_str()))
            {
                c.waiting = None;
                c.reply(&reply);
            }
        }
    }

    fn after_round(&mut self) {
        if let Some(l) = self.log.as_mut() {
            if let Err(e) = l.flush() {
                if !self.log_failed {
                    warn(format!("cannot write the log (entries are dropped): {e}"));
                    self.log_failed = true;
                }
            }
        }
        let now = Instant::now();
        for si in 1..self.sessions.len() {
            let due = match &self.sessions[si] {
                Some(s) if !s.finished && s.exit.is_some() => {
                    s.outputs_done() || s.stalled(now, EXEC_GRACE)
                }
                _ => false,
            };
            if due {
                self.finish_exec(si);
            }
        }
        for (si, slot) in self.sessions.iter_mut().enumerate() {
            let Some(s) = slot else { continue };
            let mut ended_stdin = Vec::new();
            s.clients.retain(|c| {
                if c.dead && c.stdin && c.reading {
                    ended_stdin.push(c.stdin_once);
                }
                !c.dead
            });
            for once in ended_stdin {
                s.client_stdin_ended(once);
            }
            if si > 0 && s.finished && s.clients.is_empty() {
                *slot = None;
            }
        }
        self.handshakes.retain(|h| !h.dead && h.deadline > now);
        // Requests queued behind a wait that has now been answered.
        for i in 0..self.ctls.len() {
            if self.ctls[i].waiting.is_none()
                && memchr::memchr(b'\n', &self.ctls[i].inbuf).is_some()
            {
                self.process_ctl_lines(i);
            }
        }
        for c in &mut self.ctls {
            if !c.reading && c.waiting.is_none() && c.pos >= c.out.len() {
                c.dead = true;
            }
        }
        self.ctls.retain(|c| !c.dead);
    }

    // ---- output ---------------------------------------------------------------------------

    fn on_output(&mut self, si: usize, k: usize) {
        let Some(s) = self.sessions[si].as_mut() else {
            return;
        };
        let Some(f) = s.outs[k].as_mut() else { return };
        let r = loop {
            match f.read(&mut self.rbuf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        let stream = if k == 0 {
            Stream::Stdout
        } else {
            Stream::Stderr
        };
        let n = match r {
            Ok(n) if n > 0 => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            // 0 = end of the pipe; EIO = every slave of the terminal is closed.
            _ => {
                s.outs[k] = None;
                if si == 0 {
                    let time = self.stamp.now().to_vec();
                    let log = &mut self.log;
                    let failed = &mut self.log_failed;
                    s.splitters[k].finish(|line| log_line(log, failed, stream, line, &time));
                }
                return;
            }
        };
        s.last_output = Some(Instant::now());
        let data = &self.rbuf[..n];
        if si == 0 && self.log.is_some() {
            let time = self.stamp.now();
            let log = &mut self.log;
            let failed = &mut self.log_failed;
            s.splitters[k].feed(data, |line| log_line(log, failed, stream, line, time));
        }
        let tty = s.tty;
        for c in &mut s.clients {
            if !c.dead && !c.closing {
                c.output(tty, stream, data);
            }
        }
    }

    // ---- attach ---------------------------------------------------------------------------

    fn accept_attach(&mut self, si: usize) {
        loop {
            let l = if si == 0 {
                &self.attach_l
            } else {
                match self.sessions[si].as_ref().and_then(|s| s.listener.as_ref()) {
                    Some(l) => l,
                    None => return,
                }
            };
            match l.accept() {
                Ok((sock, _)) => {
                    if sock.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.handshakes.push(Handshake {
                        sock,
                        buf: Vec::new(),
                        session: si,
                        deadline: Instant::now() + HANDSHAKE_TIMEOUT,
                        dead: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn on_handshake(&mut self, i: usize) {
        let h = &mut self.handshakes[i];
        let mut tmp = [0u8; 4096];
        match h.sock.read(&mut tmp) {
            Ok(0) => {
                h.dead = true;
                return;
            }
            Ok(n) => h.buf.extend_from_slice(&tmp[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return
            }
            Err(_) => {
                h.dead = true;
                return;
            }
        }
        let Some(nl) = memchr::memchr(b'\n', &h.buf) else {
            if h.buf.len() > 4096 {
                h.dead = true;
            }
            return;
        };
        h.dead = true;
        let sock = match h.sock.try_clone() {
            Ok(s) => s,
            Err(_) => return,
        };
        let rest = h.buf[nl + 1..].to_vec();
        let parsed: Result<AttachRequest, _> = serde_json::from_slice(&h.buf[..nl]);
        let si = h.session;
        let session = self.sessions.get_mut(si).and_then(Option::as_mut);
        let (req, s) = match (parsed, session) {
            (Ok(r), Some(s)) => (r, s),
            (Err(e), _) => {
                let _ = write_line(
                    &sock,
                    &AttachReply {
                        error: Some(format!("bad attach request: {e}")),
                        ..Default::default()
                    },
                );
                return;
            }
            (_, None) => {
                let _ = write_line(
                    &sock,
                    &AttachReply {
                        error: Some("the process has exited".into()),
                        ..Default::default()
                    },
                );
                return;
            }
        };
        let mut c = Client::new(
            sock,
            req.stdin,
            req.stdout,
            req.stderr,
            req.stdin_once.unwrap_or(true),
        );
        let mut reply = serde_json::to_vec(&AttachReply {
            ok: true,
            tty: s.tty,
            error: None,
        })
        .unwrap_or_default();
        reply.push(b'\n');
        c.send(&[&reply]);
        if !rest.is_empty() && c.stdin && s.stdin.is_some() {
            s.stdin_buf.extend_from_slice(&rest);
            s.flush_stdin();
        }
        if s.finished {
            c.closing = true;
            c.flush();
        }
        s.gate = true;
        s.clients.push(c);
    }

    fn on_client(&mut self, si: usize, ci: usize, rev: i16) {
        let Some(s) = self.sessions[si].as_mut() else {
            return;
        };
        let Some(c) = s.clients.get_mut(ci) else {
            return;
        };
        if c.dead {
            return;
        }
        if rev & libc::POLLOUT != 0 {
            c.flush();
        }
        if c.reading && rev & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            let mut tmp = [0u8; 64 * 1024];
            match c.read(&mut tmp) {
                Some(0) => {
                    c.reading = false;
                    if c.stdin {
                        let once = c.stdin_once;
                        s.client_stdin_ended(once);
                    }
                }
                Some(n) if c.stdin && s.stdin.is_some() => {
                    s.stdin_buf.extend_from_slice(&tmp[..n]);
                    s.flush_stdin();
                }
                Some(_) => {}
                None => {}
            }
        }
        let Some(c) = s.clients.get_mut(ci) else {
            return;
        };
        if rev & (libc::POLLHUP | libc::POLLERR) != 0 && !c.reading {
            // Gone in both directions.
            c.dead = true;
        }
    }

    // ---- control --------------------------------------------------------------------------

    fn accept_control(&mut self) {
        loop {
            match self.control_l.accept() {
                Ok((sock, _)) => {
                    if sock.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.ctls.push(Ctl {
                        sock,
                        inbuf: Vec::new(),
                        out: Vec::new(),
                        pos: 0,
                        reading: true,
                        waiting: None,
                        dead: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn on_ctl(&mut self, i: usize, rev: i16) {
        {
            let c = &mut self.ctls[i];
            if rev & libc::POLLOUT != 0 {
                c.flush();
            }
            if c.reading && rev & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                let mut tmp = [0u8; 16 * 1024];
                match c.sock.read(&mut tmp) {
                    Ok(0) => c.reading = false,
                    Ok(n) => c.inbuf.extend_from_slice(&tmp[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) => {}
                    Err(_) => c.dead = true,
                }
                if c.inbuf.len() > 1024 * 1024 && memchr::memchr(b'\n', &c.inbuf).is_none() {
                    c.reply(&ControlReply::error("request too long"));
                    c.inbuf.clear();
                    c.reading = false;
                }
            }
        }
        self.process_ctl_lines(i);
        let c = &mut self.ctls[i];
        // Hung up in both directions: nobody is left to answer (and POLLHUP would fire on
        // every round).
        if rev & (libc::POLLERR | libc::POLLHUP) != 0 && !c.reading {
            c.dead = true;
        }
    }

    fn process_ctl_lines(&mut self, i: usize) {
        loop {
            let c = &mut self.ctls[i];
            if c.dead || c.waiting.is_some() {
                return;
            }
            let Some(nl) = memchr::memchr(b'\n', &c.inbuf) else {
                return;
            };
            let line: Vec<u8> = c.inbuf.drain(..=nl).collect();
            let line = &line[..line.len() - 1];
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let reply = match serde_json::from_slice::<ControlRequest>(line) {
                Ok(req) => self.control(i, req),
                Err(e) => Some(ControlReply::error(format!("bad control request: {e}"))),
            };
            if let Some(r) = reply {
                self.ctls[i].reply(&r);
            }
        }
    }

    /// Executes one control request; `None` when the reply comes later (a wait).
    fn control(&mut self, ci: usize, req: ControlRequest) -> Option<ControlReply> {
        let actions = [
            req.start.is_some(),
            req.resize.is_some(),
            req.kill.is_some(),
            req.wait.is_some(),
            req.exec.is_some(),
            req.state.is_some(),
        ];
        if actions.iter().filter(|a| **a).count() != 1 {
            return Some(ControlReply::error(
                "a control request takes exactly one of: start, resize, kill, wait, exec, state",
            ));
        }
        let exec_id = req.exec_id.clone();
        if let Some(id) = &exec_id {
            if self.exec_index(id).is_none() && req.wait.is_none() {
                return Some(ControlReply::error(format!(
                    "no running exec with id {id:?}"
                )));
            }
        }
        Some(if req.start.is_some() {
            self.start()
        } else if let Some([rows, cols]) = req.resize {
            self.resize(exec_id.as_deref(), rows, cols)
        } else if let Some(sig) = &req.kill {
            self.kill(exec_id.as_deref(), sig, req.all.unwrap_or(false))
        } else if req.wait.is_some() {
            return self.wait(ci, exec_id);
        } else if let Some(e) = req.exec {
            match self.exec(e) {
                Ok(r) => r,
                Err(msg) => ControlReply::error(msg),
            }
        } else {
            self.state()
        })
    }

    fn exec_index(&self, id: &str) -> Option<usize> {
        self.sessions
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.exec_id.as_deref() == Some(id)))
    }

    fn start(&mut self) -> ControlReply {
        if self.exit.is_some() {
            return ControlReply::error("the container has exited");
        }
        if self.started {
            return ControlReply::error("the container is already started");
        }
        match self.rt.start(&self.cfg.id) {
            Ok(()) => {
                self.started = true;
                ControlReply::ok()
            }
            Err(e) => ControlReply::error(e.to_string()),
        }
    }

    fn resize(&mut self, exec_id: Option<&str>, rows: u16, cols: u16) -> ControlReply {
        let si = match exec_id {
            Some(id) => self.exec_index(id).unwrap_or(usize::MAX),
            None => 0,
        };
        let Some(s) = self.sessions.get(si).and_then(Option::as_ref) else {
            return ControlReply::error("no such process");
        };
        let Some(m) = &s.master else {
            return ControlReply::error(if s.tty {
                "the process has exited"
            } else {
                "the process has no terminal to resize (it was not started with a tty)"
            });
        };
        match runtime::console::set_size(m.as_raw_fd(), rows, cols) {
            Ok(()) => ControlReply::ok(),
            Err(e) => ControlReply::error(e.to_string()),
        }
    }

    fn kill(&mut self, exec_id: Option<&str>, sig: &str, all: bool) -> ControlReply {
        let signal = match runtime::signal::parse(sig) {
            Ok(s) => s,
            Err(e) => return ControlReply::error(e.to_string()),
        };
        if let Some(id) = exec_id {
            let Some(s) = self.exec_index(id).and_then(|i| self.sessions[i].as_ref()) else {
                return ControlReply::error(format!("no running exec with id {id:?}"));
            };
            if s.exit.is_some() {
                return ControlReply::error(format!("exec {id} has exited"));
            }
            return match nix::sys::signal::kill(Pid::from_raw(s.pid), signal) {
                Ok(()) => ControlReply::ok(),
                Err(e) => ControlReply::error(format!("kill exec {id}: {e}")),
            };
        }
        if self.exit.is_some() {
            return ControlReply::error("the container is not running (it has exited)");
        }
        match self.rt.kill(&self.cfg.id, sig, all) {
            Ok(()) => ControlReply::ok(),
            Err(e) => ControlReply::error(e.to_string()),
        }
    }

    fn wait(&mut self, ci: usize, exec_id: Option<String>) -> Option<ControlReply> {
        match &exec_id {
            None => {
                if self.announced {
                    return self.exit.as_ref().map(ControlReply::exited);
                }
            }
            Some(id) => match self.exec_index(id).and_then(|i| self.sessions[i].as_ref()) {
                Some(s) if s.finished => return s.exit.as_ref().map(ControlReply::exited),
                Some(_) => {}
                None => {
                    let path = protocol::exec_exit_file(&self.cfg.state_dir, id);
                    return Some(
                        std::fs::read(&path)
                            .ok()
                            .and_then(|b| serde_json::from_slice::<ExitStatus>(&b).ok())
                            .map(|e| ControlReply::exited(&e))
                            .unwrap_or_else(|| {
                                ControlReply::error(format!("no exec with id {id:?}"))
                            }),
                    );
                }
            },
        }
        self.ctls[ci].waiting = Some(exec_id);
        None
    }

    fn state(&self) -> ControlReply {
        let status = if self.exit.is_some() {
            "stopped".to_string()
        } else {
            match self.rt.status(&self.cfg.id) {
                Ok(st) => st,
                Err(_) => "stopped".to_string(),
            }
        };
        let execs = self
            .sessions
            .iter()
            .skip(1)
            .flatten()
            .map(|s| ExecState {
                id: s.exec_id.clone().unwrap_or_default(),
                pid: s.pid,
                running: s.exit.is_none(),
                exit_code: s.exit.as_ref().map(|e| e.exit_code),
            })
            .collect();
        ControlReply {
            ok: Some(true),
            id: Some(self.cfg.id.clone()),
            pid: Some(self.init_pid),
            status: Some(status),
            shim_pid: Some(std::process::id() as i32),
            tty: Some(self.cfg.tty),
            exit: if self.announced {
                self.exit.clone()
            } else {
                None
            },
            execs: Some(execs),
            ..Default::default()
        }
    }

    // ---- exec -----------------------------------------------------------------------------

    fn exec(&mut self, req: ExecRequest) -> Result<ControlReply, String> {
        protocol::check_exec_id(&req.id)?;
        if self.exit.is_some() || !self.started {
            return Err("cannot exec: the container is not running".into());
        }
        let exit_file = protocol::exec_exit_file(&self.cfg.state_dir, &req.id);
        if self.exec_index(&req.id).is_some() || exit_file.exists() {
            return Err(format!("exec id {:?} is already in use", req.id));
        }
        let spec = self
            .rt
            .spec(&self.cfg.id, &self.cfg.bundle)
            .map_err(|e| format!("cannot exec: {e}"))?;
        // The container's process, overlaid with the keys the request gives.
        let mut proc_json = spec
            .process()
            .as_ref()
            .and_then(|p| serde_json::to_value(p).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        let overlay = match &req.process {
            Some(serde_json::Value::Object(m)) => m.clone(),
            Some(_) => return Err("exec.process must be a JSON object".into()),
            None => req.inline.clone(),
        };
        let Some(base) = proc_json.as_object_mut() else {
            return Err("the container's process is not an object".into());
        };
        for (k, v) in overlay {
            base.insert(k, v);
        }
        base.insert("terminal".into(), serde_json::Value::Bool(req.tty));
        if !req.tty {
            base.remove("consoleSize");
        }
        let process: oci_spec::runtime::Process = serde_json::from_value(proc_json)
            .map_err(|e| format!("exec.process is not a valid OCI process: {e}"))?;

        let sock_path = protocol::exec_socket(&self.cfg.state_dir, &req.id);
        let listener = sock::bind(&sock_path)
            .map_err(|e| format!("cannot listen on {}: {e}", sock_path.display()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("exec socket: {e}"))?;
        let cleanup = |msg: String| {
            let _ = std::fs::remove_file(&sock_path);
            msg
        };
        let stdio = make_stdio(req.tty, req.stdin).map_err(cleanup)?;
        let pid_file = self.cfg.state_dir.join(format!("exec-{}.pid", req.id));
        let console_path = self.cfg.state_dir.join(format!("exec-{}.console", req.id));
        let console_l = if req.tty {
            Some(sock::bind(&console_path).map_err(|e| {
                cleanup(format!("cannot listen on {}: {e}", console_path.display()))
            })?)
        } else {
            None
        };
        let run = |console: Option<&Path>| {
            self.rt.exec(
                &self.cfg.id,
                &process,
                &ExecOptions {
                    console_socket: console.map(Path::to_path_buf),
                    pid_file: Some(pid_file.clone()),
                    detach: true,
                    preserve_fds: 0,
                    stdio: Some(stdio.fds),
                },
            )
        };
        let r = if req.tty {
            sock::short_path(&console_path, |p| run(Some(p)))
                .map_err(|e| format!("console socket: {e}"))
        } else {
            Ok(run(None))
        };
        let r = r.and_then(|x| x);
        let pid = r.and_then(|()| {
            std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
                .ok_or_else(|| "the exec'd process did not report its pid".to_string())
        });
        let _ = std::fs::remove_file(&pid_file);
        let pid = match pid {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_file(&console_path);
                return Err(cleanup(e));
            }
        };
        let Stdio {
            child, outs, stdin, ..
        } = stdio;
        drop(child);
        let mut s = Session::new(Some(req.id.clone()), pid, req.tty);
        s.outs = outs;
        s.stdin = stdin;
        if let Some(l) = &console_l {
            let got = receive_master(l);
            let _ = std::fs::remove_file(&console_path);
            let master = match got {
                Ok(m) => m,
                Err(e) => {
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                    return Err(cleanup(e));
                }
            };
            s.stdin = if req.stdin {
                master.try_clone().ok()
            } else {
                None
            };
            s.master = master.try_clone().ok();
            s.outs = [Some(master), None];
        }
        s.listener = Some(listener);
        s.socket = Some(sock_path.clone());
        s.gate = req.detach;
        // A process reaped before it was registered (it exited at once) is recorded now.
        self.sessions.push(Some(s));
        self.reap();
        Ok(ControlReply {
            ok: Some(true),
            pid: Some(pid),
            socket: Some(sock_path),
            ..Default::default()
        })
    }

    fn cleanup(&mut self) {
        for s in self.sessions.iter_mut().flatten() {
            if let Some(p) = s.socket.take() {
                let _ = std::fs::remove_file(p);
            }
        }
        for f in [
            protocol::ATTACH_SOCKET,
            protocol::CONTROL_SOCKET,
            protocol::PID_FILE,
        ] {
            let _ = std::fs::remove_file(self.cfg.state_dir.join(f));
        }
    }
}

fn log_line(
    log: &mut Option<LogWriter>,
    failed: &mut bool,
    stream: Stream,
    line: &[u8],
    time: &[u8],
) {
    if let Some(l) = log.as_mut() {
        if let Err(e) = l.append(stream, line, time) {
            if !*failed {
                warn(format!("cannot write the log (entries are dropped): {e}"));
                *failed = true;
            }
        }
    }
}

fn write_line<T: serde::Serialize>(mut sock: &UnixStream, v: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(v).map_err(io::Error::other)?;
    line.push(b'\n');
    sock.write_all(&line)
}
