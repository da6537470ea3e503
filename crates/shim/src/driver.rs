//! The OCI runtime a shim drives: berth's own runtime in-process ([`Driver::Builtin`]), or an
//! external runtime binary with runc's command line ([`Driver::External`]: runc, crun, or any
//! `--add-runtime` of the daemon).
//!
//! Owns: the mapping of the shim's five runtime operations (create, start, kill, delete, exec)
//! and its two queries (status, the container's process and cgroup) onto either backend. The
//! shim stays the subreaper and the owner of the container's stdio in both cases: an external
//! runtime is handed the stdio as its own descriptors (runc passes them on to the container
//! init and to exec'd processes), and a terminal through `--console-socket`.

use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::{Process, Spec};
use runtime::cgroups;
use runtime::container::{CreateOptions, ExecOptions, Runtime};

/// An external runtime binary and the arguments it takes before its verb.
#[derive(Debug, Clone)]
pub struct External {
    /// The runtime's executable (absolute, or looked up in PATH).
    pub binary: PathBuf,
    /// Global arguments (`runtimeArgs` of daemon.json).
    pub args: Vec<String>,
    /// Its `--root`.
    pub root: PathBuf,
    /// Its `--systemd-cgroup`.
    pub systemd_cgroup: bool,
}

/// The runtime behind a shim.
pub enum Driver {
    /// berth's runtime, called in-process.
    Builtin(Runtime),
    /// A runc-compatible binary.
    External(External),
}

impl Driver {
    /// Creates the container; returns its init's host pid.
    pub fn create(&self, o: &CreateOptions) -> Result<i32, String> {
        match self {
            Driver::Builtin(rt) => rt.create(o).map_err(|e| e.to_string()),
            Driver::External(x) => {
                let pid_file = o.bundle.join(format!(".{}.create.pid", o.id));
                let _ = std::fs::remove_file(&pid_file);
                let mut c = x.command();
                c.arg("create")
                    .arg("--bundle")
                    .arg(&o.bundle)
                    .arg("--pid-file")
                    .arg(&pid_file);
                if let Some(s) = &o.console_socket {
                    c.arg("--console-socket").arg(for_child(s));
                }
                if o.no_pivot {
                    c.arg("--no-pivot");
                }
                c.arg(&o.id);
                x.run(c, o.stdio, "create")?;
                let pid = read_pid(&pid_file);
                let _ = std::fs::remove_file(&pid_file);
                pid
            }
        }
    }

    /// Starts a created container.
    pub fn start(&self, id: &str) -> Result<(), String> {
        match self {
            Driver::Builtin(rt) => rt.start(id).map_err(|e| e.to_string()),
            Driver::External(x) => {
                let mut c = x.command();
                c.arg("start").arg(id);
                x.run(c, None, "start")
            }
        }
    }

    /// Sends a signal (a name or number) to the init, or to every process with `all`.
    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Result<(), String> {
        match self {
            Driver::Builtin(rt) => rt.kill(id, signal, all).map_err(|e| e.to_string()),
            Driver::External(x) => {
                let mut c = x.command();
                c.arg("kill");
                if all {
                    c.arg("--all");
                }
                c.arg(id).arg(signal);
                x.run(c, None, "kill")
            }
        }
    }

    /// Deletes the container's runtime state (with `force`, killing what still runs).
    pub fn delete(&self, id: &str, force: bool) -> Result<(), String> {
        match self {
            Driver::Builtin(rt) => rt.delete(id, force).map_err(|e| e.to_string()),
            Driver::External(x) => {
                let mut c = x.command();
                c.arg("delete");
                if force {
                    c.arg("--force");
                }
                c.arg(id);
                x.run(c, None, "delete")
            }
        }
    }

    /// The runtime's status word (`created`, `running`, `paused`, `stopped`).
    pub fn status(&self, id: &str) -> Result<String, String> {
        match self {
            Driver::Builtin(rt) => rt
                .state(id)
                .map(|(_, st)| st.to_string())
                .map_err(|e| e.to_string()),
            Driver::External(x) => {
                let mut c = x.command();
                c.arg("state").arg(id);
                let out = x.output(c, "state")?;
                let v: serde_json::Value = serde_json::from_slice(&out)
                    .map_err(|e| format!("{} state: not JSON: {e}", x.binary.display()))?;
                Ok(v["status"].as_str().unwrap_or("unknown").to_string())
            }
        }
    }

    /// The container's spec as created (its process is the base of an exec).
    pub fn spec(&self, id: &str, bundle: &Path) -> Result<Spec, String> {
        match self {
            Driver::Builtin(rt) => rt
                .state(id)
                .map(|(st, _)| st.spec)
                .map_err(|e| e.to_string()),
            Driver::External(_) => {
                let p = bundle.join("config.json");
                Spec::load(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            }
        }
    }

    /// The container's cgroup (for OOM detection and final cleanup).
    pub fn cgroup(&self, id: &str, bundle: &Path, systemd: bool) -> Option<cgroups::Manager> {
        match self {
            Driver::Builtin(rt) => rt.state(id).ok().map(|(st, _)| st.cgroup),
            Driver::External(_) => {
                let spec = self.spec(id, bundle).ok()?;
                let path = spec
                    .linux()
                    .as_ref()
                    .and_then(|l| l.cgroups_path().clone())
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                cgroups::Manager::new(&path, id, systemd).ok()
            }
        }
    }

    /// Runs a process in the container, detached; its pid goes to `o.pid_file`.
    pub fn exec(&self, id: &str, process: &Process, o: &ExecOptions) -> Result<(), String> {
        match self {
            Driver::Builtin(rt) => rt
                .exec(id, process, o)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Driver::External(x) => {
                let pf = o
                    .pid_file
                    .clone()
                    .ok_or("an external runtime's exec needs a pid file")?;
                let proc_file = pf.with_extension("process.json");
                let text = serde_json::to_vec(process)
                    .map_err(|e| format!("cannot encode the exec process: {e}"))?;
                std::fs::write(&proc_file, text)
                    .map_err(|e| format!("cannot write {}: {e}", proc_file.display()))?;
                let mut c = x.command();
                c.arg("exec")
                    .arg("--detach")
                    .arg("--pid-file")
                    .arg(&pf)
                    .arg("--process")
                    .arg(&proc_file);
                if let Some(s) = &o.console_socket {
                    c.arg("--tty").arg("--console-socket").arg(for_child(s));
                }
                c.arg(id);
                let r = x.run(c, o.stdio, "exec");
                let _ = std::fs::remove_file(&proc_file);
                r
            }
        }
    }
}

impl External {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.args(&self.args).arg("--root").arg(&self.root);
        c.arg("--log-format").arg("text");
        if self.systemd_cgroup {
            c.arg("--systemd-cgroup");
        }
        c
    }

    /// Runs the runtime with `stdio` as its descriptors 0-2 (else /dev/null and a captured
    /// stderr); fails with its stderr.
    fn run(&self, c: Command, stdio: Option<[RawFd; 3]>, verb: &str) -> Result<(), String> {
        let log = tempfile_in_tmp()?;
        // The global --log must precede the verb: rebuild the command with it.
        let mut full = Command::new(c.get_program());
        let args: Vec<std::ffi::OsString> = c.get_args().map(|a| a.to_os_string()).collect();
        let verb_at = args.iter().position(|a| a == verb).unwrap_or(args.len());
        full.args(&args[..verb_at])
            .arg("--log")
            .arg(log.path())
            .args(&args[verb_at..]);
        let mut c = full;
        match stdio {
            Some(fds) => {
                // SAFETY: only dup2 (async-signal-safe) between fork and exec; the fds stay
                // open in the shim until the child has them.
                unsafe {
                    c.pre_exec(move || {
                        for (target, fd) in fds.iter().enumerate() {
                            if libc::dup2(*fd, target as i32) < 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                        }
                        Ok(())
                    });
                }
            }
            None => {
                c.stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null());
                let err = log
                    .as_file()
                    .try_clone()
                    .map_err(|e| format!("cannot duplicate the runtime's log: {e}"))?;
                c.stderr(err);
            }
        }
        let st = c
            .status()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        if st.success() {
            return Ok(());
        }
        let msg = std::fs::read_to_string(log.path()).unwrap_or_default();
        Err(format!(
            "{} {verb} failed ({st}): {}",
            self.binary.display(),
            msg.trim()
        ))
    }

    /// Runs the runtime and returns its stdout.
    fn output(&self, mut c: Command, verb: &str) -> Result<Vec<u8>, String> {
        c.stdin(std::process::Stdio::null());
        let out = c
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} {verb} failed: {}",
                self.binary.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(out.stdout)
    }
}

/// A `/proc/self/fd/N/…` path (see [`crate::sock`]) as another process must name it.
fn for_child(p: &Path) -> PathBuf {
    match p.strip_prefix("/proc/self") {
        Ok(rest) => Path::new("/proc")
            .join(std::process::id().to_string())
            .join(rest),
        Err(_) => p.to_path_buf(),
    }
}

fn tempfile_in_tmp() -> Result<tempfile::NamedTempFile, String> {
    tempfile::NamedTempFile::new().map_err(|e| format!("cannot make a temp file: {e}"))
}

fn read_pid(p: &Path) -> Result<i32, String> {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .ok_or_else(|| format!("the runtime did not write its pid file {}", p.display()))
}
