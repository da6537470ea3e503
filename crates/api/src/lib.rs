//! berth's Docker Engine API layer: the HTTP server the daemon runs and the typed client the
//! CLI uses, without any engine logic.
//!
//! - [`server`]: listens on a unix socket (and optionally loopback TCP), negotiates API
//!   versions (1.24 to 1.47 by default), routes Docker's paths to a [`Backend`], speaks
//!   Docker's error shapes and status codes, streams logs/events/stats/progress, and hijacks
//!   connections for attach and exec (`Upgrade: tcp` 101, and the old 200 hijack).
//! - [`Backend`]: the trait the engine implements, one method per operation.
//! - [`client`]: a typed async client over `unix://` or `tcp://` with version negotiation,
//!   JSON and streaming helpers, and hijacked bidirectional streams.
//! - [`types`]: the API's JSON shapes; [`filters`], [`stream`], [`time`], [`version`]: the
//!   pieces both sides share.

pub mod backend;
pub mod client;
pub mod error;
pub mod filters;
pub mod server;
pub mod stream;
pub mod time;
pub mod types;
pub mod version;

pub use backend::Backend;
pub use client::{Client, ClientError};
pub use error::ApiError;
pub use filters::Filters;
pub use server::{Server, ServerConfig, ServerError};
pub use version::ApiVersion;
