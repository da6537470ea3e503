//! What runs inside the container before the user's program: the container init (after
//! `create`) and the process an `exec` starts. Both are forked from the single-threaded
//! runtime command, so everything here may use any syscall; they report failures to the
//! runtime over the sync channel and never return.

use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::console;
use crate::hooks;
use crate::namespaces::Plan;
use crate::process::{self, CapSets};
use crate::rootfs;
use crate::seccomp;
use crate::sync::{self, Channel, Msg};

/// Errors inside the container setup; the text is what the user sees from `create`/`exec`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Sync(#[from] sync::Error),
    #[error(transparent)]
    Rootfs(#[from] rootfs::Error),
    #[error(transparent)]
    Process(#[from] process::Error),
    #[error(transparent)]
    Console(#[from] console::Error),
    #[error(transparent)]
    Seccomp(#[from] seccomp::Error),
    #[error(transparent)]
    Hook(#[from] hooks::Error),
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error("{0}")]
    Config(String),
}

type Result<T> = std::result::Result<T, Error>;

/// config.json annotation (value `true`) asking the container init to stay PID 1 as a tiny
/// init (`docker run --init`): it forks right before exec; the child execs the process, the
/// init forwards signals to it, reaps every zombie of the container, and exits with the
/// child's status (128+N when a signal N killed it).
pub const INIT_ANNOTATION: &str = "org.berth.init";

fn wants_init(spec: &Spec) -> bool {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(INIT_ANNOTATION))
        .is_some_and(|v| v == "true")
}

fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> Error {
    let what = what.into();
    move |source| Error::Sys { what, source }
}

/// Everything the container init needs, prepared by the runtime before it forks.
pub struct InitConfig<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub plan: &'a Plan,
    pub sync: &'a Channel,
    /// Read end of exec.fifo (opened O_RDWR): `start` writes one byte to it.
    pub fifo: RawFd,
    /// Connected console socket, when process.terminal is set.
    pub console_socket: Option<RawFd>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    pub stdio: Option<[RawFd; 3]>,
}

/// Everything an exec'd process needs.
pub struct ExecConfig<'a> {
    pub process: &'a Process,
    pub seccomp: Option<&'a oci_spec::runtime::LinuxSeccomp>,
    pub sync: &'a Channel,
    pub console_socket: Option<RawFd>,
    pub preserve_fds: i32,
    pub stdio: Option<[RawFd; 3]>,
}

/// Report an error to the runtime and exit. Never returns.
fn fail(sync: &Channel, e: Error) -> ! {
    let _ = sync.send(&Msg::Error(e.to_string()));
    // SAFETY: _exit ends this forked child without running the parent's atexit handlers.
    unsafe { libc::_exit(1) }
}

/// Entry of the container init. Never returns: it execs the user's program or exits.
pub fn container_main(cfg: InitConfig) -> ! {
    match container_init(&cfg) {
        Ok(never) => match never {},
        Err(e) => fail(cfg.sync, e),
    }
}

/// Entry of an exec'd process. Never returns.
pub fn exec_main(cfg: ExecConfig) -> ! {
    match exec_init(&cfg) {
        Ok(never) => match never {},
        Err(e) => fail(cfg.sync, e),
    }
}

/// Close (on exec) every descriptor above the ones to pass through, and unblock signals the
/// runtime blocked for forwarding.
fn clean_process_state(preserve_fds: i32, stdio: Option<[RawFd; 3]>) {
    if let Some(fds) = stdio {
        for (target, fd) in fds.into_iter().enumerate() {
            if fd != target as RawFd {
                // SAFETY: dup2 onto a standard descriptor of this single-threaded child.
                unsafe { libc::dup2(fd, target as RawFd) };
            }
        }
    }
    let first = 3 + preserve_fds.max(0) as u32;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only flags descriptors; nothing is freed.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    let empty = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&empty),
        None,
    );
    // Until exec, this process is the runtime binary: keep other container processes from
    // reaching it through /proc/PID (exec resets this for the user's program).
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    // The runtime may have been started with SIGPIPE ignored (Rust does that): restore it.
    // SAFETY: resetting a signal disposition to default.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

fn wait_go(sync: &Channel) -> Result<String> {
    match sync.expect("Go", |m| matches!(m, Msg::Go(_)))? {
        Msg::Go(state) => Ok(state),
        _ => Err(Error::Config("unexpected message".into())),
    }
}

fn container_init(cfg: &InitConfig) -> Result<std::convert::Infallible> {
    clean_process_state(cfg.preserve_fds, cfg.stdio);
    let spec = cfg.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Config("config.json has no process to run".into()))?;
    let linux = spec.linux().as_ref();
    let state_json = wait_go(cfg.sync)?;

    if cfg.plan.new_user() {
        // Become root of the new user namespace (the runtime has written our id maps).
        nix::unistd::setresgid(0.into(), 0.into(), 0.into())
            .map_err(sys("setgid in user namespace"))?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into())
            .map_err(sys("setuid in user namespace"))?;
    }
    if cfg
        .plan
        .clone_flags
        .contains(nix::sched::CloneFlags::CLONE_NEWNET)
    {
        crate::namespaces::loopback_up().map_err(|e| Error::Config(e.to_string()))?;
    }
    let has_uts = cfg.plan.has(LinuxNamespaceType::Uts);
    if let Some(h) = spec.hostname() {
        if !has_uts {
            return Err(Error::Config(
                "hostname: setting a hostname needs a uts namespace in linux.namespaces".into(),
            ));
        }
        nix::unistd::sethostname(h).map_err(sys(format!("hostname {h:?}")))?;
    }
    if let Some(d) = spec.domainname() {
        if !has_uts {
            return Err(Error::Config(
                "domainname: setting a domainname needs a uts namespace in linux.namespaces".into(),
            ));
        }
        // SAFETY: setdomainname reads `len` bytes from a valid buffer.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(sys(format!("domainname {d:?}"))(nix::Error::last()));
        }
    }

    let propagation =
        rootfs::root_propagation(linux.and_then(|l| l.rootfs_propagation().as_deref()))
            .map_err(|m| Error::Config(format!("linux.rootfsPropagation: {m}")))?;
    let ctx = rootfs::Context {
        rootfs: cfg.rootfs,
        in_user_ns: cfg.plan.has(LinuxNamespaceType::User),
        cgroup_ns: cfg.plan.has(LinuxNamespaceType::Cgroup),
        cgroup_binds: Vec::new(),
        cgroup_v2: crate::cgroups::detect() == crate::cgroups::Version::V2,
    };
    // Mount what does not depend on the cgroup while the runtime moves us into it; the
    // cgroup namespace and cgroup mounts wait for CgroupReady.
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    let split = mounts
        .iter()
        .position(|m| matches!(m.typ().as_deref(), Some("cgroup") | Some("cgroup2")))
        .unwrap_or(mounts.len());
    rootfs::prepare(&ctx, propagation)?;
    rootfs::mount_all(&ctx, &mounts[..split], 0)?;
    cfg.sync
        .expect("CgroupReady", |m| matches!(m, Msg::CgroupReady))?;
    if cfg.plan.new_cgroup {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(sys("unshare cgroup namespace"))?;
    }
    let ctx = rootfs::Context {
        cgroup_binds: own_cgroup_dirs(),
        ..ctx
    };
    rootfs::mount_all(&ctx, &mounts[split..], split)?;
    rootfs::create_devices(
        &ctx,
        linux
            .and_then(|l| l.devices().as_deref())
            .unwrap_or_default(),
    )?;

    // prestart/createRuntime hooks run in the runtime's namespaces: ask the runtime.
    let hooks = spec.hooks().as_ref();
    if needs_runtime_hooks(spec) {
        cfg.sync.send(&Msg::RunHooks)?;
        cfg.sync
            .expect("HooksDone", |m| matches!(m, Msg::HooksDone))?;
    }
    if let Some(h) = hooks.and_then(|h| h.create_container().as_ref()) {
        hooks::run("createContainer", h, state_json.as_bytes())?;
    }

    rootfs::switch_root(cfg.rootfs, cfg.no_pivot)?;

    if let Some(s) = linux.and_then(|l| l.sysctl().as_ref()) {
        rootfs::apply_sysctls(s)?;
    }
    setup_stdio(process, cfg.console_socket)?;
    if let Some(p) = linux.and_then(|l| l.readonly_paths().as_ref()) {
        rootfs::readonly_paths(p)?;
    }
    if let Some(p) = linux.and_then(|l| l.masked_paths().as_ref()) {
        rootfs::mask_paths(p)?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        rootfs::readonly_root()?;
    }

    let prepared = prepare_process(process, linux.and_then(|l| l.seccomp().as_ref()))?;
    cfg.sync.send(&Msg::Ready)?;

    // Wait for `start`: it writes one byte into the fifo.
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(cfg.fifo, &mut b) {
            Ok(_) => break,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(sys("wait for start")(e)),
        }
    }
    if let Some(h) = hooks.and_then(|h| h.start_container().as_ref()) {
        if let Err(e) = hooks::run("startContainer", h, state_json.as_bytes()) {
            eprintln!("berth: {e}");
            // SAFETY: ending the forked init.
            unsafe { libc::_exit(1) }
        }
    }
    if wants_init(spec) {
        become_init(process.args().as_deref().unwrap_or_default());
    }
    match prepared.exec() {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("berth: {e}");
            // SAFETY: ending the forked init; 127 like a shell's "cannot run".
            unsafe { libc::_exit(127) }
        }
    }
}

/// The signals the tiny init forwards: all but the synchronous fault signals (and SIGKILL /
/// SIGSTOP, which cannot be caught).
fn forwarded_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigfillset/sigdelset initialise and edit it in place.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for s in [
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGABRT,
            libc::SIGTRAP,
            libc::SIGSYS,
        ] {
            libc::sigdelset(&mut set, s);
        }
        set
    }
}

/// `--init`: forks. Returns in the child (which then execs the user's process) in its own
/// process group, the terminal's foreground group when there is a terminal; the parent stays
/// PID 1, forwards signals to the child, reaps zombies, and exits with the child's status.
fn become_init(args: &[String]) {
    let set = forwarded_signals();
    // Before forking: a `ps` the child runs must already see the init's title.
    set_init_title(args);
    // Block them before forking: none sent between the fork and the wait loop is lost.
    // SAFETY: sigprocmask with a valid set on this single-threaded process.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) };
    // SAFETY: the container init is single-threaded; the child only execs or exits.
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            eprintln!("berth: --init: fork: {e}");
            // SAFETY: ending the forked init.
            unsafe { libc::_exit(127) }
        }
        Ok(nix::unistd::ForkResult::Child) => {
            let _ =
                nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0));
            // SAFETY: isatty/tcsetpgrp on descriptor 0 (SIGTTOU is blocked, so a background
            // group may take the terminal).
            unsafe {
                if libc::isatty(0) == 1 {
                    libc::tcsetpgrp(0, libc::getpid());
                }
            }
            let empty = nix::sys::signal::SigSet::empty();
            let _ = nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&empty),
                None,
            );
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => init_loop(child.as_raw(), &set),
    }
}

/// Shows the init as `berth-init -- ARGS…` in the container's `ps` (instead of the runtime's
/// command line, which names host paths): rewrites this process's argument area in place.
fn set_init_title(args: &[String]) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"berth-init".as_ptr(), 0, 0, 0) };
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name (which may hold spaces) start at field 3; arg_start and
    // arg_end are fields 48 and 49.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (Some(start), Some(end)) = (
        f.get(45).and_then(|v| v.parse::<usize>().ok()),
        f.get(46).and_then(|v| v.parse::<usize>().ok()),
    ) else {
        return;
    };
    if end <= start || end - start > 1 << 20 {
        return;
    }
    let mut title = b"berth-init\0--\0".to_vec();
    for a in args {
        title.extend_from_slice(a.as_bytes());
        title.push(0);
    }
    let len = end - start;
    title.resize(len, 0);
    title[len - 1] = 0;
    // SAFETY: [arg_start, arg_end) is this process's own argument strings, on its stack and
    // writable; the kernel reports it in /proc/PID/stat. Nothing holds references into it
    // (the runtime copied its arguments at start-up), and a trailing NUL is kept.
    unsafe { std::ptr::copy_nonoverlapping(title.as_ptr(), start as *mut u8, len) };
}

/// PID 1 of a `--init` container: wait for signals; forward them to `child`; on SIGCHLD reap
/// every exited process, and when `child` is one of them, exit with its status.
fn init_loop(child: libc::pid_t, set: &libc::sigset_t) -> ! {
    // The runtime's descriptors (sync socket, exec fifo, console socket) are not ours to keep.
    // SAFETY: close_range on descriptors above stdio; nothing in this process uses them.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    loop {
        // SAFETY: waits for one of the blocked signals in `set`; no siginfo wanted.
        let sig = unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) };
        if sig < 0 {
            continue;
        }
        if sig != libc::SIGCHLD {
            // SAFETY: sending a signal to our own child.
            unsafe { libc::kill(child, sig) };
            continue;
        }
        loop {
            let mut status = 0;
            // SAFETY: reaping any exited child without blocking.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == child {
                let code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else if libc::WIFSIGNALED(status) {
                    128 + libc::WTERMSIG(status)
                } else {
                    continue;
                };
                // SAFETY: ending PID 1; the kernel kills what is left in the pid namespace.
                unsafe { libc::_exit(code) }
            }
        }
    }
}

/// Whether the runtime must pause the init to run prestart/createRuntime hooks.
pub fn needs_runtime_hooks(spec: &Spec) -> bool {
    #[allow(deprecated)]
    spec.hooks().as_ref().is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    })
}

/// setsid, and the terminal if asked for: a pty from the container's devpts, its master sent
/// to the console socket, its slave our stdio, controlling terminal and /dev/console.
fn setup_stdio(process: &Process, console_socket: Option<RawFd>) -> Result<()> {
    nix::unistd::setsid().map_err(sys("setsid"))?;
    if !process.terminal().unwrap_or(false) {
        return Ok(());
    }
    let sock = console_socket.ok_or_else(|| {
        Error::Config("process.terminal is set but no --console-socket was given".into())
    })?;
    let size = process
        .console_size()
        .map(|b| (b.height() as u16, b.width() as u16));
    let (master, slave) = console::open_pty(size)?;
    // SAFETY: the console socket descriptor stays open for the life of this process.
    let sock_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(sock) };
    sync::send_fd(sock_fd, &slave.display().to_string(), master.as_raw_fd())?;
    drop(master);
    console::attach_slave(&slave)?;
    // /dev/console may be absent and / read-only later: best effort, like runc's.
    let _ = rootfs::bind_console(&slave);
    Ok(())
}

/// What is left to do right before exec, prepared while errors can still reach `create`.
struct Prepared<'a> {
    process: &'a Process,
    path: PathBuf,
    env: Vec<String>,
    seccomp: Option<(
        seccomp::Program,
        Vec<oci_spec::runtime::LinuxSeccompFilterFlag>,
    )>,
    no_new_privs: bool,
}

impl Prepared<'_> {
    fn exec(self) -> Result<std::convert::Infallible> {
        if self.no_new_privs {
            process::set_no_new_privs()?;
            if let Some((prog, flags)) = &self.seccomp {
                seccomp::install(prog, flags)?;
            }
        }
        let args = self.process.args().as_deref().unwrap_or_default();
        Ok(process::exec(&self.path, args, &self.env)?)
    }
}

/// rlimits, the program's path, seccomp (compiled; installed now if it needs privileges),
/// user and capabilities, umask and cwd.
fn prepare_process<'a>(
    process: &'a Process,
    seccomp_spec: Option<&oci_spec::runtime::LinuxSeccomp>,
) -> Result<Prepared<'a>> {
    if let Some(r) = process.rlimits() {
        process::set_rlimits(r)?;
    }
    let env = process::environment(process);
    let args = process.args().as_deref().unwrap_or_default();
    let prog = args
        .first()
        .ok_or_else(|| Error::Config("process.args is empty".into()))?;
    let path = rootfs::find_executable(prog, &env).map_err(Error::Config)?;
    let no_new_privs = process.no_new_privileges().unwrap_or(false);
    let caps = CapSets::new(process.capabilities().as_ref())?;
    let mut seccomp = match seccomp_spec {
        Some(s) => Some((seccomp::compile(s)?, s.flags().clone().unwrap_or_default())),
        None => None,
    };
    if !no_new_privs {
        // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: do it while we have it.
        if let Some((prog, flags)) = seccomp.take() {
            seccomp::install(&prog, &flags)?;
        }
    }
    caps.drop_bounding()?;
    process::switch_user(process, setgroups_allowed())?;
    caps.apply()?;
    let umask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    nix::unistd::chdir(process.cwd())
        .map_err(sys(format!("process.cwd {}", process.cwd().display())))?;
    Ok(Prepared {
        process,
        path,
        env,
        seccomp,
        no_new_privs,
    })
}

fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

fn exec_init(cfg: &ExecConfig) -> Result<std::convert::Infallible> {
    clean_process_state(cfg.preserve_fds, cfg.stdio);
    let _state = wait_go(cfg.sync)?;
    setup_stdio(cfg.process, cfg.console_socket)?;
    let prepared = prepare_process(cfg.process, cfg.seccomp)?;
    // Success is reported by the sync socket closing on exec.
    prepared.exec()
}

/// The cgroup directories of this process on the host: (hierarchy mount point, our dir in it),
/// used to bind the container's own cgroups for a `cgroup` mount without a cgroup namespace.
fn own_cgroup_dirs() -> Vec<(PathBuf, PathBuf)> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let cg = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut out = Vec::new();
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        let fstype = f.get(sep + 1).copied().unwrap_or("");
        if fstype != "cgroup" && fstype != "cgroup2" || f.len() < 5 {
            continue;
        }
        let (root, mp) = (f[3], f[4]);
        let opts = f.get(sep + 3).copied().unwrap_or("");
        // Find our path in this hierarchy from /proc/self/cgroup.
        let ours = cg.lines().find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrls, path) = (p.next()?, p.next()?, p.next()?);
            let matches = if fstype == "cgroup2" {
                ctrls.is_empty()
            } else {
                !ctrls.is_empty() && ctrls.split(',').all(|c| opts.split(',').any(|o| o == c))
            };
            matches.then(|| path.to_string())
        });
        if let Some(path) = ours {
            let rel = Path::new(&path)
                .strip_prefix(root)
                .unwrap_or(Path::new(&path));
            let rel = rel.strip_prefix("/").unwrap_or(rel);
            out.push((PathBuf::from(mp), Path::new(mp).join(rel)));
        }
    }
    out
}
