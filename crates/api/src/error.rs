//! The errors the Engine API speaks: [`ApiError`], one variant per class of HTTP status the
//! Docker daemon answers with (its `errdefs` classes), carrying the message that goes into
//! Docker's error body `{"message": "..."}`.
//!
//! The [`Backend`](crate::Backend) returns these; the server turns them into responses; the
//! client turns error responses back into them (inside
//! [`ClientError::Api`](crate::client::ClientError)), so a `404 No such container: x` from
//! any Docker-compatible daemon reads the same on both sides.

use http::StatusCode;
use serde::{Deserialize, Serialize};

/// An error as the Engine API reports it: an HTTP status class and Docker's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: a bad parameter or request body (`errdefs.InvalidParameter`).
    #[error("{0}")]
    InvalidParameter(String),
    /// 401: registry credentials were refused (`errdefs.Unauthorized`).
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the operation is not allowed on this object (`errdefs.Forbidden`).
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such container, image, exec, volume, network... (`errdefs.NotFound`).
    #[error("{0}")]
    NotFound(String),
    /// 409: the object is in a state that forbids the operation, or the name is taken
    /// (`errdefs.Conflict`).
    #[error("{0}")]
    Conflict(String),
    /// 304: nothing to do (start of a running container, stop of a stopped one). Docker
    /// answers these with an empty body.
    #[error("{0}")]
    NotModified(String),
    /// 501: the daemon does not implement this operation (`errdefs.NotImplemented`).
    #[error("{0}")]
    NotImplemented(String),
    /// 503: the feature is not available on this node (swarm; `errdefs.Unavailable`).
    #[error("{0}")]
    Unavailable(String),
    /// 500: anything else (`errdefs.System` / unknown errors).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// `No such container: <id>` (404), Docker's wording.
    pub fn no_such_container(id: &str) -> ApiError {
        ApiError::NotFound(format!("No such container: {id}"))
    }

    /// `No such image: <name>` (404), Docker's wording.
    pub fn no_such_image(name: &str) -> ApiError {
        ApiError::NotFound(format!("No such image: {name}"))
    }

    /// `No such exec instance: <id>` (404), Docker's wording.
    pub fn no_such_exec(id: &str) -> ApiError {
        ApiError::NotFound(format!("No such exec instance: {id}"))
    }

    /// A 501 naming the operation a backend does not implement.
    pub fn not_implemented(operation: &str) -> ApiError {
        ApiError::NotImplemented(format!("{operation} is not implemented on this backend"))
    }

    /// The HTTP status Docker answers this error with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidParameter(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NotModified(_) => StatusCode::NOT_MODIFIED,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error a response with `status` and `message` stands for (the client's side of
    /// [`ApiError::status`]); statuses Docker does not use map to [`ApiError::Internal`].
    pub fn from_status(status: StatusCode, message: String) -> ApiError {
        match status.as_u16() {
            400 => ApiError::InvalidParameter(message),
            401 => ApiError::Unauthorized(message),
            403 => ApiError::Forbidden(message),
            404 => ApiError::NotFound(message),
            409 => ApiError::Conflict(message),
            304 => ApiError::NotModified(message),
            501 => ApiError::NotImplemented(message),
            503 => ApiError::Unavailable(message),
            _ => ApiError::Internal(message),
        }
    }

    /// The message alone (what goes into `{"message": ...}`).
    pub fn message(&self) -> &str {
        match self {
            ApiError::InvalidParameter(m)
            | ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::NotModified(m)
            | ApiError::NotImplemented(m)
            | ApiError::Unavailable(m)
            | ApiError::Internal(m) => m,
        }
    }

    /// True for 404s.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::NotFound(_))
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

/// Docker's error body: `{"message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error message.
    pub message: String,
}
