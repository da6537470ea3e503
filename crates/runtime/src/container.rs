//! The runc verbs: create, start, run, state, kill, delete, exec, ps, pause, resume, list.
//!
//! The runtime command is single-threaded. To create a container it forks an intermediate
//! process that joins the namespaces named by path and clones the container init into the new
//! ones; the intermediate reports the init's pid and exits. The runtime command is a child
//! subreaper, so the init (and an exec'd process) is reparented to it: its exit can be waited
//! for from the moment it exists, and on any error it is killed and reaped before the cgroup
//! and state directory are removed — no leftovers.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, Process, Spec};

use crate::cgroups;
use crate::hooks;
use crate::init;
use crate::namespaces::{self, Plan};
use crate::signal as sig;
use crate::spec;
use crate::state::{self, Root, State, Status};
use crate::sync::{self, Msg};

/// Errors of the runtime verbs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] spec::Error),
    #[error(transparent)]
    State(#[from] state::Error),
    #[error(transparent)]
    Namespace(#[from] namespaces::Error),
    #[error(transparent)]
    Cgroup(#[from] cgroups::Error),
    #[error(transparent)]
    Sync(#[from] sync::Error),
    #[error(transparent)]
    Hook(#[from] hooks::Error),
    #[error(transparent)]
    Signal(#[from] sig::Error),
    #[error(transparent)]
    Process(#[from] crate::process::Error),
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("container {id} is {status}: {msg}")]
    BadStatus {
        id: String,
        status: Status,
        msg: &'static str,
    },
    #[error("{0}")]
    Usage(String),
}

type Result<T> = std::result::Result<T, Error>;

fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> Error {
    let what = what.into();
    move |source| Error::Sys { what, source }
}

/// Options of `create` (and `run`).
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    /// Descriptors to become the container's stdin, stdout and stderr (default: ours).
    pub stdio: Option<[RawFd; 3]>,
}

/// Options of `exec`.
#[derive(Debug, Default, Clone)]
pub struct ExecOptions {
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: i32,
    /// Descriptors to become the process's stdin, stdout and stderr (default: ours).
    pub stdio: Option<[RawFd; 3]>,
}

/// The runtime: a state root and how cgroup paths are read.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: Root,
    pub systemd_cgroup: bool,
}

/// Signals a foreground `run`/`exec` forwards to the container.
const FORWARDED: [Signal; 8] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCHLD,
];

fn forwarded_set() -> nix::sys::signal::SigSet {
    let mut s = nix::sys::signal::SigSet::empty();
    for sg in FORWARDED {
        s.add(sg);
    }
    s
}

/// Raw clone(2) without a new stack: behaves like fork, with namespace flags.
fn clone_process(flags: nix::sched::CloneFlags) -> nix::Result<i32> {
    // SAFETY: the runtime is single-threaded, so the child gets a consistent copy of the
    // address space, exactly as with fork(); stack 0 means "share the copy-on-write stack".
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags.bits() as libc::c_ulong) | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(r as i32)
    }
}

fn exit_child(code: i32) -> ! {
    // SAFETY: ends a forked child without unwinding or running the parent's exit handlers.
    unsafe { libc::_exit(code) }
}

fn set_subreaper() -> Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(sys("become child subreaper")(nix::Error::last()));
    }
    Ok(())
}

/// Reap the intermediate process (its failures arrive as messages on the sync channel).
fn reap_intermediate(pid: i32) {
    while let Err(nix::Error::EINTR) = waitpid(Pid::from_raw(pid), None) {}
}

/// Kill a process we may or may not be the parent of, and wait until it is gone.
fn kill_and_wait(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    // If it is our child (subreaper), reap it; otherwise poll until its parent does.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => return,
            Err(nix::Error::ECHILD) => match state::proc_stat(pid) {
                None | Some(('Z', _)) | Some(('X', _)) => return,
                _ => {}
            },
            Err(_) => return,
        }
        if Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Undo a half-made container on error: kill its init, remove its cgroup and state.
struct CreateGuard<'a> {
    rt: &'a Runtime,
    id: String,
    pid: Option<i32>,
    cgroup: Option<cgroups::Manager>,
    armed: bool,
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            kill_and_wait(pid);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.destroy();
        }
        let _ = self.rt.root.remove(&self.id);
    }
}

/// Resources with the device rules every container needs appended (runc's default allow list
/// and /dev/console), so a "deny all" in the spec keeps /dev/null usable. Nodes from
/// linux.devices are not allowed implicitly: as with runc, resources.devices must allow them.
fn effective_resources(spec: &Spec) -> Option<LinuxResources> {
    let linux = spec.linux().as_ref()?;
    let mut res = linux.resources().clone()?;
    if let Some(mut rules) = res.devices().clone() {
        rules.extend(cgroups::default_device_rules());
        let allow = |typ: &str, major: i64, minor: i64| {
            serde_json::from_value::<oci_spec::runtime::LinuxDeviceCgroup>(serde_json::json!({
                "allow": true, "type": typ, "major": major, "minor": minor, "access": "rwm"
            }))
            .ok()
        };
        rules.extend(allow("c", 5, 1)); // /dev/console
        res.set_devices(Some(rules));
    }
    Some(res)
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>, systemd_cgroup: bool) -> Self {
        Runtime {
            root: Root::new(root),
            systemd_cgroup,
        }
    }

    /// `create`: set the container up and leave its init waiting for `start`. Returns the
    /// init's host pid.
    pub fn create(&self, o: &CreateOptions) -> Result<i32> {
        Ok(self.create_inner(o, false)?.0)
    }

    /// Create; in the foreground with a terminal, also return our end of the console socket.
    fn create_inner(
        &self,
        o: &CreateOptions,
        foreground: bool,
    ) -> Result<(i32, Option<UnixStream>)> {
        state::check_id(&o.id)?;
        let bundle = spec::load(&o.bundle)?;
        let spec = &bundle.spec;
        let linux = spec.linux().as_ref();
        let plan = Plan::new(
            linux
                .and_then(|l| l.namespaces().as_deref())
                .unwrap_or_default(),
        )?;
        if !plan.has(LinuxNamespaceType::Mount) {
            return Err(Error::Usage(
                "linux.namespaces: a mount namespace is required (add {\"type\": \"mount\"})"
                    .into(),
            ));
        }
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::Usage("config.json: `process` is missing".into()))?;
        let terminal = process.terminal().unwrap_or(false);
        if terminal && o.console_socket.is_none() && !foreground {
            return Err(Error::Usage(
                "process.terminal is true: pass --console-socket (or run in the foreground)".into(),
            ));
        }
        let cgroups_path = linux
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        // Check the seccomp profile now, so a bad one fails before anything is made.
        if let Some(s) = linux.and_then(|l| l.seccomp().as_ref()) {
            crate::seccomp::compile(s).map_err(|e| Error::Usage(format!("linux.seccomp: {e}")))?;
        }

        let dir = self.root.reserve(&o.id)?;
        let mut guard = CreateGuard {
            rt: self,
            id: o.id.clone(),
            pid: None,
            cgroup: None,
            armed: true,
        };
        let cgroup = cgroups::Manager::new(&cgroups_path, &o.id, self.systemd_cgroup)?;
        guard.cgroup = Some(cgroup.clone());

        let fifo_path = dir.join(state::EXEC_FIFO);
        nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(sys(format!("mkfifo {}", fifo_path.display())))?;
        let fifo: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo_path)
            .map_err(|source| Error::Io {
                what: "open",
                path: fifo_path.clone(),
                source,
            })?
            .into();

        // The terminal: a caller's console socket, or our own pair for a foreground run.
        let (console, console_local) = console_sockets(o.console_socket.as_deref(), terminal)?;

        let (parent, child) = sync::pair()?;
        set_subreaper()?;
        let now = state::now_rfc3339();

        // SAFETY: single-threaded process; the child only runs our own code before exec/_exit.
        match unsafe { nix::unistd::fork() }.map_err(sys("fork"))? {
            nix::unistd::ForkResult::Child => {
                drop(parent);
                if let Err(e) = namespaces::join_all(&plan.join) {
                    let _ = child.send(&Msg::Error(e.to_string()));
                    exit_child(1);
                }
                match clone_process(plan.clone_flags) {
                    Ok(0) => init::container_main(init::InitConfig {
                        spec,
                        rootfs: &bundle.rootfs,
                        plan: &plan,
                        sync: &child,
                        fifo: fifo.as_raw_fd(),
                        console_socket: console.as_ref().map(|c| c.as_raw_fd()),
                        no_pivot: o.no_pivot,
                        preserve_fds: o.preserve_fds,
                        stdio: o.stdio,
                    }),
                    Ok(pid) => {
                        let _ = child.send(&Msg::Pid(pid));
                        exit_child(0);
                    }
                    Err(e) => {
                        let _ = child.send(&Msg::Error(format!(
                            "cannot create namespaces ({:?}): {e}",
                            plan.clone_flags
                        )));
                        exit_child(1);
                    }
                }
            }
            nix::unistd::ForkResult::Parent { child: ipid } => {
                drop(child);
                // Create the cgroup and write its limits while the intermediate clones the init.
                let resources = effective_resources(spec);
                let limits = match &resources {
                    Some(r) => cgroup.set(r),
                    None => Ok(()),
                };
                let msg = parent.expect("Pid", |m| matches!(m, Msg::Pid(_)));
                reap_intermediate(ipid.as_raw());
                let Msg::Pid(pid) = msg? else {
                    return Err(Error::Usage("internal: expected a pid".into()));
                };
                guard.pid = Some(pid);
                limits?;
                if plan.new_user() {
                    write_id_maps(pid, spec)?;
                }
                if let Some(adj) = process.oom_score_adj() {
                    crate::process::set_oom_score_adj(&pid.to_string(), adj)?;
                }
                let pid_start = state::proc_stat(pid).map(|s| s.1).unwrap_or(0);
                let mut st = State {
                    id: o.id.clone(),
                    pid,
                    pid_start,
                    bundle: bundle.dir.clone(),
                    rootfs: bundle.rootfs.clone(),
                    created: now,
                    owner: String::new(),
                    annotations: spec.annotations().clone().unwrap_or_default(),
                    cgroup: cgroup.clone(),
                    spec: spec.clone(),
                };
                let creating = serde_json::to_string(&st.oci(Status::Creating)).unwrap_or_default();
                parent.send(&Msg::Go(creating.clone()))?;
                // The init mounts its filesystems meanwhile.
                cgroup.apply(pid)?;
                parent.send(&Msg::CgroupReady)?;
                loop {
                    match parent.recv()? {
                        Some(Msg::RunHooks) => {
                            #[allow(deprecated)]
                            if let Some(h) = spec.hooks() {
                                hooks::run(
                                    "prestart",
                                    h.prestart().as_deref().unwrap_or_default(),
                                    creating.as_bytes(),
                                )?;
                                hooks::run(
                                    "createRuntime",
                                    h.create_runtime().as_deref().unwrap_or_default(),
                                    creating.as_bytes(),
                                )?;
                            }
                            parent.send(&Msg::HooksDone)?;
                        }
                        Some(Msg::Ready) => break,
                        Some(Msg::Error(e)) => return Err(Error::Usage(e)),
                        Some(m) => return Err(Error::Usage(format!("internal: unexpected {m:?}"))),
                        None => return Err(sync::Error::Closed.into()),
                    }
                }
                st.pid_start = state::proc_stat(pid).map(|s| s.1).unwrap_or(pid_start);
                self.root.save(&st)?;
                if let Some(pf) = &o.pid_file {
                    write_pid_file(pf, pid)?;
                }
                guard.armed = false;
                Ok((pid, console_local))
            }
        }
    }

    /// `start`: let a created container's init exec the user's program.
    pub fn start(&self, id: &str) -> Result<()> {
        let st = self.root.load(id)?;
        let status = st.status(&self.root);
        if status != Status::Created {
            return Err(Error::BadStatus {
                id: id.into(),
                status,
                msg: "cannot start a container that is not created",
            });
        }
        let fifo = self.root.container_dir(id).join(state::EXEC_FIFO);
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .map_err(|source| Error::Io {
                what: "cannot open",
                path: fifo.clone(),
                source,
            })?;
        use std::io::Write;
        f.write_all(&[0]).map_err(|source| Error::Io {
            what: "cannot write",
            path: fifo.clone(),
            source,
        })?;
        let _ = std::fs::remove_file(&fifo);
        // Wait until the init has exec'd the user's program (after its startContainer hooks):
        // its fifo descriptor closes on exec, and a fifo's write end reports POLLERR once no
        // reader is left. poststart hooks must run only after that.
        {
            use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
            use std::os::fd::AsFd;
            loop {
                let mut fds = [PollFd::new(f.as_fd(), PollFlags::empty())];
                match poll(&mut fds, PollTimeout::NONE) {
                    Err(nix::Error::EINTR) => continue,
                    _ => break,
                }
            }
        }
        if let Some(h) = st
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().as_ref())
        {
            let json = serde_json::to_string(&st.oci(Status::Running)).unwrap_or_default();
            if let Err(e) = hooks::run("poststart", h, json.as_bytes()) {
                // The spec: a failing poststart hook is a warning; the container keeps running.
                eprintln!("berth: warning: {e}");
            }
        }
        Ok(())
    }

    /// `run`: create and start; in the foreground, wait and return the exit code (the
    /// container is deleted afterwards). Detached, return 0 once it has started.
    pub fn run(&self, o: &CreateOptions, detach: bool) -> Result<i32> {
        if detach {
            self.create(o)?;
            self.start(&o.id)?;
            return Ok(0);
        }
        block_forwarded()?;
        let (pid, console) = self.create_inner(o, true)?;
        let master = match console {
            Some(sock) => Some(sync::recv_fd(&sock)?),
            None => None,
        };
        if let Err(e) = self.start(&o.id) {
            let _ = self.delete(&o.id, true);
            return Err(e);
        }
        let code = wait_foreground(pid, master);
        let _ = self.delete(&o.id, true);
        Ok(code)
    }

    /// `state`: the container's status as runc prints it.
    pub fn state(&self, id: &str) -> Result<(State, Status)> {
        let st = self.root.load(id)?;
        let status = st.status(&self.root);
        Ok((st, status))
    }

    /// `kill`: send a signal to the init (or, with `all`, to every process of the container).
    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Result<()> {
        let signal = sig::parse(signal)?;
        let st = self.root.load(id)?;
        let status = st.status(&self.root);
        if status == Status::Stopped {
            return Err(Error::BadStatus {
                id: id.into(),
                status,
                msg: "container not running",
            });
        }
        if all {
            for p in st.cgroup.pids().unwrap_or_default() {
                let _ = kill(Pid::from_raw(p), signal);
            }
            if status == Status::Paused {
                let _ = st.cgroup.thaw();
            }
        }
        kill(Pid::from_raw(st.pid), signal).map_err(sys(format!("kill {}", st.pid)))
    }

    /// `delete`: remove a stopped (or created) container; `force` kills a running one first.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let st = match self.root.load(id) {
            Ok(st) => st,
            Err(state::Error::NotFound(_)) | Err(state::Error::Corrupt { .. }) if force => {
                // An aborted create may leave a directory without state: clear it.
                self.root.remove(id)?;
                return Ok(());
            }
            Err(state::Error::NotFound(i)) if self.root.container_dir(id).exists() => {
                self.root.remove(id)?;
                return Err(state::Error::NotFound(i).into());
            }
            Err(e) => return Err(e.into()),
        };
        let status = st.status(&self.root);
        match status {
            Status::Stopped => {}
            Status::Created => self.kill_all(&st),
            _ if force => self.kill_all(&st),
            _ => {
                return Err(Error::BadStatus {
                    id: id.into(),
                    status,
                    msg: "cannot delete a running container; stop it first or use --force",
                })
            }
        }
        // Processes left in the cgroup (no pid namespace): kill them too.
        if let Ok(pids) = st.cgroup.pids() {
            if !pids.is_empty() {
                self.kill_all(&st);
            }
        }
        let destroyed = st.cgroup.destroy();
        if let Some(h) = st.spec.hooks().as_ref().and_then(|h| h.poststop().as_ref()) {
            let json = serde_json::to_string(&st.oci(Status::Stopped)).unwrap_or_default();
            if let Err(e) = hooks::run("poststop", h, json.as_bytes()) {
                eprintln!("berth: warning: {e}");
            }
        }
        self.root.remove(id)?;
        destroyed?;
        Ok(())
    }

    fn kill_all(&self, st: &State) {
        let frozen = st.cgroup.is_frozen().unwrap_or(false);
        for p in st.cgroup.pids().unwrap_or_default() {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        if frozen {
            let _ = st.cgroup.thaw();
        }
        if st.init_alive() {
            kill_and_wait(st.pid);
        }
        // Wait (briefly) for the cgroup to empty so it can be removed.
        let deadline = Instant::now() + Duration::from_secs(5);
        while st.cgroup.pids().map(|p| !p.is_empty()).unwrap_or(false) && Instant::now() < deadline
        {
            for p in st.cgroup.pids().unwrap_or_default() {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// `pause`: freeze every process of the container.
    pub fn pause(&self, id: &str) -> Result<()> {
        let (st, status) = self.state(id)?;
        if status != Status::Running && status != Status::Created {
            return Err(Error::BadStatus {
                id: id.into(),
                status,
                msg: "container not running",
            });
        }
        Ok(st.cgroup.freeze()?)
    }

    /// `resume`: thaw a paused container.
    pub fn resume(&self, id: &str) -> Result<()> {
        let (st, status) = self.state(id)?;
        if status != Status::Paused {
            return Err(Error::BadStatus {
                id: id.into(),
                status,
                msg: "container not paused",
            });
        }
        Ok(st.cgroup.thaw()?)
    }

    /// `ps`: host pids of the container's processes.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let (st, _) = self.state(id)?;
        let mut p = st.cgroup.pids()?;
        if p.is_empty() && st.init_alive() {
            p.push(st.pid);
        }
        p.sort();
        Ok(p)
    }

    /// `exec`: run a new process in a running container. Returns its exit code (foreground)
    /// or 0 once it has started (detached).
    pub fn exec(&self, id: &str, process: &Process, o: &ExecOptions) -> Result<i32> {
        let st = self.root.load(id)?;
        let status = st.status(&self.root);
        if status != Status::Running && status != Status::Created {
            return Err(Error::BadStatus {
                id: id.into(),
                status,
                msg: "cannot exec in a container that is not running",
            });
        }
        if process.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(Error::Usage(
                "exec: no command given (process.args is empty)".into(),
            ));
        }
        let terminal = process.terminal().unwrap_or(false);
        if terminal && o.console_socket.is_none() && o.detach {
            return Err(Error::Usage(
                "cannot allocate a terminal for a detached exec without --console-socket".into(),
            ));
        }
        let join = namespaces::of_process(st.pid);
        let (console, console_local) = console_sockets(o.console_socket.as_deref(), terminal)?;
        let seccomp = st.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
        let (parent, child) = sync::pair()?;
        set_subreaper()?;
        if !o.detach {
            block_forwarded()?;
        }
        // SAFETY: single-threaded process; the child runs only our code before exec/_exit.
        match unsafe { nix::unistd::fork() }.map_err(sys("fork"))? {
            nix::unistd::ForkResult::Child => {
                drop(parent);
                if let Err(e) = namespaces::join_all(&join) {
                    let _ = child.send(&Msg::Error(e.to_string()));
                    exit_child(1);
                }
                // SAFETY: as above; the grandchild is in the joined pid namespace.
                match unsafe { nix::unistd::fork() } {
                    Ok(nix::unistd::ForkResult::Child) => init::exec_main(init::ExecConfig {
                        process,
                        seccomp,
                        sync: &child,
                        console_socket: console.as_ref().map(|c| c.as_raw_fd()),
                        preserve_fds: o.preserve_fds,
                        stdio: o.stdio,
                    }),
                    Ok(nix::unistd::ForkResult::Parent { child: pid }) => {
                        let _ = child.send(&Msg::Pid(pid.as_raw()));
                        exit_child(0);
                    }
                    Err(e) => {
                        let _ = child.send(&Msg::Error(format!("fork in container: {e}")));
                        exit_child(1);
                    }
                }
            }
            nix::unistd::ForkResult::Parent { child: ipid } => {
                drop(child);
                drop(console);
                let msg = parent.expect("Pid", |m| matches!(m, Msg::Pid(_)));
                reap_intermediate(ipid.as_raw());
                let Msg::Pid(pid) = msg? else {
                    return Err(Error::Usage("internal: expected a pid".into()));
                };
                if let Err(e) = st.cgroup.apply(pid) {
                    kill_and_wait(pid);
                    return Err(e.into());
                }
                let json = serde_json::to_string(&st.oci(status)).unwrap_or_default();
                parent.send(&Msg::Go(json))?;
                let master = match &console_local {
                    Some(sock) => match sync::recv_fd(sock) {
                        Ok(m) => Some(m),
                        Err(e) => {
                            // The process failed before making its terminal: report its error.
                            if let Ok(Some(Msg::Error(msg))) = parent.recv() {
                                kill_and_wait(pid);
                                return Err(Error::Usage(msg));
                            }
                            kill_and_wait(pid);
                            return Err(e.into());
                        }
                    },
                    None => None,
                };
                match parent.recv()? {
                    None => {}
                    Some(Msg::Error(e)) => {
                        kill_and_wait(pid);
                        return Err(Error::Usage(e));
                    }
                    Some(m) => return Err(Error::Usage(format!("internal: unexpected {m:?}"))),
                }
                if let Some(pf) = &o.pid_file {
                    write_pid_file(pf, pid)?;
                }
                if o.detach {
                    return Ok(0);
                }
                Ok(wait_foreground(pid, master))
            }
        }
    }

    /// `list`: ids of all containers with their state.
    pub fn list(&self) -> Result<Vec<(State, Status)>> {
        let mut out = Vec::new();
        for id in self.root.list()? {
            if let Ok(st) = self.root.load(&id) {
                let status = st.status(&self.root);
                out.push((st, status));
            }
        }
        Ok(out)
    }
}

/// The terminal's sockets: (the end the container sends its pty master on, our receiving end
/// when we hold the terminal ourselves). A caller's console socket is connected; without one,
/// a foreground run/exec gets a private pair.
fn console_sockets(
    path: Option<&Path>,
    terminal: bool,
) -> Result<(Option<UnixStream>, Option<UnixStream>)> {
    if !terminal {
        return Ok((None, None));
    }
    if let Some(p) = path {
        let s = UnixStream::connect(p).map_err(|source| Error::Io {
            what: "cannot connect to console socket",
            path: p.to_path_buf(),
            source,
        })?;
        return Ok((Some(s), None));
    }
    let (a, b) = UnixStream::pair().map_err(|source| Error::Io {
        what: "socketpair",
        path: PathBuf::new(),
        source,
    })?;
    Ok((Some(a), Some(b)))
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("berth-tmp");
    std::fs::write(&tmp, pid.to_string())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|source| Error::Io {
            what: "cannot write pid file",
            path: path.to_path_buf(),
            source,
        })
}

fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(());
    };
    let write = |file: &str, text: String| {
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        std::fs::write(&path, text).map_err(|source| Error::Io {
            what: "cannot write id mappings to",
            path,
            source,
        })
    };
    if !nix::unistd::geteuid().is_root() {
        write("setgroups", "deny".into())?;
    }
    write(
        "uid_map",
        spec::mapping_text(linux.uid_mappings().as_deref().unwrap_or_default()),
    )?;
    write(
        "gid_map",
        spec::mapping_text(linux.gid_mappings().as_deref().unwrap_or_default()),
    )
}

fn block_forwarded() -> Result<()> {
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&forwarded_set()),
        None,
    )
    .map_err(sys("block signals"))
}

/// Wait for a foreground process: forward signals to it, proxy its terminal if we hold the
/// master, and return its exit code (128+N if killed by signal N). Reaps every orphan the
/// subreaper inherits meanwhile.
fn wait_foreground(pid: i32, master: Option<OwnedFd>) -> i32 {
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let Ok(sfd) = SignalFd::with_flags(&forwarded_set(), SfdFlags::SFD_CLOEXEC) else {
        return wait_plain(pid);
    };
    let mut tty = master.map(crate::console_proxy::Proxy::new);
    loop {
        // Reap first: the child may already be gone.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => {
                    if let Some(t) = tty.as_mut() {
                        t.drain();
                    }
                    return code;
                }
                Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => {
                    if let Some(t) = tty.as_mut() {
                        t.drain();
                    }
                    return 128 + s as i32;
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        let got = match tty.as_mut() {
            Some(t) => t.pump(&sfd),
            None => true,
        };
        if !got {
            continue;
        }
        match sfd.read_signal() {
            Ok(Some(info)) => {
                let s = info.ssi_signo as i32;
                if s == libc::SIGCHLD {
                    continue;
                }
                if s == libc::SIGWINCH {
                    if let Some(t) = tty.as_ref() {
                        t.resize();
                    }
                    continue;
                }
                if let Ok(signal) = Signal::try_from(s) {
                    let _ = kill(Pid::from_raw(pid), signal);
                }
            }
            Ok(None) => {}
            Err(_) => return wait_plain(pid),
        }
    }
}

fn wait_plain(pid: i32) -> i32 {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Err(nix::Error::EINTR) | Ok(_) => continue,
            Err(_) => return 255,
        }
    }
}
