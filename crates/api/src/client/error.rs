//! Errors of the client: the daemon's own errors (status and Docker's message, typed as
//! [`ApiError`]) kept apart from failures to reach or understand it.

use crate::error::ApiError;
use crate::stream::DemuxError;
use crate::version::ApiVersion;

/// What went wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The host string is not `unix://PATH`, `tcp://HOST:PORT` or `http://HOST:PORT`.
    #[error("invalid daemon host {0:?}: expected unix:///path/to/socket or tcp://host:port")]
    InvalidHost(String),
    /// The daemon cannot be reached.
    #[error("Cannot connect to the berth daemon at {host}. Is the daemon running? ({source})")]
    Connect {
        /// The host as given.
        host: String,
        /// The connect error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("talking to the daemon at {host}: {source}")]
    Http {
        /// The host as given.
        host: String,
        /// The HTTP error.
        #[source]
        source: hyper::Error,
    },
    /// The daemon answered with an error (Docker's `{"message": ...}`).
    #[error("Error response from daemon: {error}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error, typed by status.
        error: ApiError,
    },
    /// An answer did not decode.
    #[error("decoding the daemon's answer to {what}: {source}")]
    Decode {
        /// The request.
        what: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A request body did not encode.
    #[error("encoding the request body of {what}: {source}")]
    Encode {
        /// The request.
        what: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The daemon speaks only API versions older than this client supports.
    #[error(
        "the daemon's API version {server} is older than the oldest this client speaks ({min})"
    )]
    UnsupportedVersion {
        /// What the daemon advertised.
        server: ApiVersion,
        /// Our minimum.
        min: ApiVersion,
    },
    /// A hijack (attach, exec) was not upgraded.
    #[error("the daemon did not take over the connection for {what} (HTTP {status})")]
    NotUpgraded {
        /// The request.
        what: String,
        /// The status received instead of 101.
        status: u16,
    },
    /// A stream reported an error in band (a progress `errorDetail`).
    #[error("{0}")]
    Stream(String),
    /// A multiplexed stream did not parse.
    #[error(transparent)]
    Demux(#[from] DemuxError),
    /// Reading or writing a stream failed.
    #[error("streaming to or from the daemon: {0}")]
    Io(#[from] std::io::Error),
}

impl ClientError {
    /// The daemon's error, when it answered with one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api { error, .. } => Some(error),
            _ => None,
        }
    }

    /// True for a 404 from the daemon.
    pub fn is_not_found(&self) -> bool {
        self.api_error().is_some_and(ApiError::is_not_found)
    }

    /// The HTTP status of a daemon error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}
