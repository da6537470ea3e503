//! berth's OCI runtime.
//!
//! Turns an OCI bundle (`config.json` + a root filesystem) into an isolated process, with the
//! state handling runc's clients (containerd, podman, dockerd) expect. The modules each own one
//! thing; [`container`] ties them together into the runc verbs (create, start, kill, delete, …).
//!
//! Process model: the runtime command (single-threaded) forks an intermediate process that joins
//! namespaces given by path and clones the container init into the new ones. The runtime command
//! is a child subreaper, so the init is reparented to it and its exit can never be missed.

pub mod cgroups;
pub mod console;
pub mod console_proxy;
pub mod container;
pub mod exe_guard;
pub mod hooks;
pub mod init;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod state;
pub mod sync;
