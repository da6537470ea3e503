//! berth's OCI Distribution client: talks to Docker Hub and any registry speaking the
//! distribution API (`/v2/`), as dockerd does.
//!
//! - [`Client`] holds the configuration ([`ClientConfig`]: credential files, insecure
//!   registries, user agent, concurrency, chunked uploads), connection pools, the bearer token
//!   cache and the memory of where blobs live (for cross-repository mounts).
//! - [`Client::pull`] resolves a reference to a manifest (choosing a platform from manifest
//!   lists / OCI indexes), verifies everything it fetches and streams layers into the
//!   content store ([`image::content::ContentStore`]).
//! - [`Client::push`] uploads what the registry lacks (mounting from sibling repositories
//!   when possible) and puts the manifest.
//! - [`Client::login`] / [`Client::logout`] manage Docker-style credentials
//!   ([`credentials::CredentialStore`]).
//! - Progress is reported as Docker's JSON messages ([`progress::ProgressMessage`]);
//!   [`progress::TerminalProgress`] draws them like the docker CLI.

pub mod auth;
pub mod client;
pub mod credentials;
pub mod error;
pub mod manifest;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod push;

pub use client::{Client, ClientConfig};
pub use credentials::{CredentialStore, Credentials};
pub use error::{Error, Result};
pub use manifest::{Descriptor, FetchedManifest};
pub use platform::Platform;
pub use progress::{NoProgress, Progress, ProgressMessage, TerminalProgress};
pub use pull::PulledImage;
pub use push::PushedImage;
