//! `/containers/{id}/exec` and `/exec/...`.

use http::StatusCode;

use crate::error::ApiError;
use crate::server::http::{json, status, Hijack, Reply, Req, Resp};
use crate::server::Shared;
use crate::stream::{stdin_channel, MULTIPLEXED_STREAM, RAW_STREAM};
use crate::types::{ExecConfig, ExecStartConfig};

/// `POST /containers/{id}/exec`.
pub(crate) async fn create(s: &Shared, mut req: Req, container: &str) -> Result<Resp, ApiError> {
    req.check_json_content_type()?;
    let cfg: ExecConfig = req.json().await?.unwrap_or_default();
    let no_cmd = match &cfg.cmd {
        Some(c) => c.is_empty(),
        None => true,
    };
    if no_cmd {
        return Err(ApiError::InvalidParameter(
            "No exec command specified".into(),
        ));
    }
    Ok(json(
        StatusCode::CREATED,
        &s.backend.exec_create(container, cfg).await?,
    ))
}

/// `POST /exec/{id}/start`: detached (200, nothing else) or hijacked.
pub(crate) async fn start(s: &Shared, mut req: Req, id: &str) -> Result<Reply, ApiError> {
    if req.api.at_least(1, 22) {
        req.check_json_content_type()?;
    }
    let cfg: ExecStartConfig = req.json().await?.unwrap_or_default();
    if cfg.detach {
        s.backend.exec_start_detached(id, cfg).await?;
        return Ok(Reply::Response(status(StatusCode::OK)));
    }
    let (feeder, stdin) = stdin_channel();
    let session = s.backend.exec_start(id, cfg, stdin).await?;
    let media_type = if !session.tty && req.api.at_least(1, 42) {
        MULTIPLEXED_STREAM
    } else {
        RAW_STREAM
    };
    Ok(Reply::Hijack(Hijack {
        media_type,
        session,
        stdin: Some(feeder),
    }))
}

/// `POST /exec/{id}/resize`.
pub(crate) async fn resize(s: &Shared, req: &Req, id: &str) -> Result<Resp, ApiError> {
    let h = req.query.dimension("h")?;
    let w = req.query.dimension("w")?;
    s.backend.exec_resize(id, h, w).await?;
    Ok(status(StatusCode::OK))
}

/// `GET /exec/{id}/json`.
pub(crate) async fn inspect(s: &Shared, id: &str) -> Result<Resp, ApiError> {
    Ok(json(StatusCode::OK, &s.backend.exec_inspect(id).await?))
}
