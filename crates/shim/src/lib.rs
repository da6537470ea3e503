//! berth's per-container shim and its json-file log driver.
//!
//! The daemon (multithreaded, tokio) never forks to build a container: it spawns
//! `berth shim start …` ([`main`]), which detaches (double fork: the shim becomes a child of
//! init in its own session, so it survives the daemon — live-restore), creates and starts the
//! container with the runtime library, holds its stdio (pipes, or the pty master), writes the
//! json-file log, serves attach and control clients on unix sockets in its state directory,
//! runs execs, reaps, and records the exit status in `exit.json` before it goes.
//!
//! Modules: [`cli`] (the command line, [`StartOptions`]), [`protocol`] (files and messages),
//! [`client`] (a blocking client), [`jsonlog`] (format, writer with rotation, reader for
//! `docker logs`), [`timefmt`] (RFC 3339 stamps), [`sock`] (unix sockets at long paths);
//! the shim's internals are `server` (event loop), `session` (stdio + clients) and
//! `daemonize`.

pub mod cli;
pub mod client;
mod daemonize;
pub mod driver;
pub mod jsonlog;
pub mod protocol;
mod server;
mod session;
pub mod sock;
pub mod timefmt;

pub use cli::{main, StartOptions};
pub use jsonlog::reader::{read_logs, Entry, Framing, LogEntry, LogReader, ReadOptions};
pub use jsonlog::writer::LogConfig;
pub use jsonlog::Stream;
pub use protocol::ExitStatus;
