//! Volumes, networks, and the features berth does not offer, answered as a Docker daemon
//! without them answers: swarm (503), plugins (none installed).

use http::StatusCode;

use crate::error::ApiError;
use crate::filters::Filters;
use crate::server::http::{json, no_content, status, Req, Resp};
use crate::server::Shared;
use crate::types::{NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest};

/// 503 for manager-only swarm operations on a node outside any swarm (Docker's wording).
pub(crate) fn not_a_manager() -> ApiError {
    ApiError::Unavailable(
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" \
         to connect this node to swarm and try again."
            .into(),
    )
}

/// 503 for `swarm leave` outside any swarm (Docker's wording).
pub(crate) fn no_swarm() -> ApiError {
    ApiError::Unavailable("This node is not part of a swarm".into())
}

/// 503 for `swarm init`/`join`: berth has no swarm mode.
pub(crate) fn swarm_unsupported() -> ApiError {
    ApiError::Unavailable(
        "swarm mode is not supported by berth: this node cannot create or join a swarm".into(),
    )
}

/// `GET /plugins`: none installed.
pub(crate) fn plugin_list() -> Resp {
    json(StatusCode::OK, &Vec::<serde_json::Value>::new())
}

/// Other plugin routes: a named plugin is never found; installing one is not supported.
pub(crate) fn plugin_error(rest: &[&str], method: &str) -> ApiError {
    const VERBS: &[&str] = &["json", "enable", "disable", "push", "set", "upgrade"];
    match (method, rest) {
        ("POST", ["pull"]) | ("POST", ["create"]) | ("GET", ["privileges"]) => {
            ApiError::NotImplemented("plugins are not supported by berth".into())
        }
        _ => {
            let name = match rest.split_last() {
                Some((last, parts)) if !parts.is_empty() && VERBS.contains(last) => parts,
                _ => rest,
            };
            if name.iter().all(|p| p.is_empty()) {
                ApiError::NotFound("page not found".into())
            } else {
                ApiError::NotFound(format!("plugin {:?} not found", name.join("/")))
            }
        }
    }
}

fn filters(req: &Req) -> Result<Filters, ApiError> {
    Filters::from_json(req.query.str("filters"))
}

/// `GET /volumes`.
pub(crate) async fn volume_list(s: &Shared, req: &Req) -> Result<Resp, ApiError> {
    Ok(json(
        StatusCode::OK,
        &s.backend.volume_list(filters(req)?).await?,
    ))
}

/// `POST /volumes/create`.
pub(crate) async fn volume_create(s: &Shared, mut req: Req) -> Result<Resp, ApiError> {
    req.check_json_content_type()?;
    let body = req.json().await?.unwrap_or_default();
    Ok(json(
        StatusCode::CREATED,
        &s.backend.volume_create(body).await?,
    ))
}

/// `GET /volumes/{name}`.
pub(crate) async fn volume_inspect(s: &Shared, name: &str) -> Result<Resp, ApiError> {
    Ok(json(StatusCode::OK, &s.backend.volume_inspect(name).await?))
}

/// `DELETE /volumes/{name}`.
pub(crate) async fn volume_remove(s: &Shared, req: &Req, name: &str) -> Result<Resp, ApiError> {
    s.backend
        .volume_remove(name, req.query.bool("force"))
        .await?;
    Ok(no_content())
}

/// `POST /volumes/prune`.
pub(crate) async fn volume_prune(s: &Shared, req: &Req) -> Result<Resp, ApiError> {
    Ok(json(
        StatusCode::OK,
        &s.backend.volume_prune(filters(req)?).await?,
    ))
}

/// `GET /networks`.
pub(crate) async fn network_list(s: &Shared, req: &Req) -> Result<Resp, ApiError> {
    Ok(json(
        StatusCode::OK,
        &s.backend.network_list(filters(req)?).await?,
    ))
}

/// `GET /networks/{id}`.
pub(crate) async fn network_inspect(s: &Shared, req: &Req, id: &str) -> Result<Resp, ApiError> {
    Ok(json(
        StatusCode::OK,
        &s.backend
            .network_inspect(id, req.query.bool("verbose"))
            .await?,
    ))
}

/// `POST /networks/create`.
pub(crate) async fn network_create(s: &Shared, mut req: Req) -> Result<Resp, ApiError> {
    req.check_json_content_type()?;
    let body: NetworkCreateRequest = req.json().await?.ok_or_else(|| {
        ApiError::InvalidParameter("missing network configuration in the request body".into())
    })?;
    Ok(json(
        StatusCode::CREATED,
        &s.backend.network_create(body).await?,
    ))
}

/// `DELETE /networks/{id}`.
pub(crate) async fn network_remove(s: &Shared, id: &str) -> Result<Resp, ApiError> {
    s.backend.network_remove(id).await?;
    Ok(no_content())
}

/// `POST /networks/{id}/connect`.
pub(crate) async fn network_connect(s: &Shared, mut req: Req, id: &str) -> Result<Resp, ApiError> {
    req.check_json_content_type()?;
    let body: NetworkConnectRequest = req.json().await?.unwrap_or_default();
    s.backend.network_connect(id, body).await?;
    Ok(status(StatusCode::OK))
}

/// `POST /networks/{id}/disconnect`.
pub(crate) async fn network_disconnect(
    s: &Shared,
    mut req: Req,
    id: &str,
) -> Result<Resp, ApiError> {
    req.check_json_content_type()?;
    let body: NetworkDisconnectRequest = req.json().await?.unwrap_or_default();
    s.backend.network_disconnect(id, body).await?;
    Ok(status(StatusCode::OK))
}

/// `POST /networks/prune`.
pub(crate) async fn network_prune(s: &Shared, req: &Req) -> Result<Resp, ApiError> {
    Ok(json(
        StatusCode::OK,
        &s.backend.network_prune(filters(req)?).await?,
    ))
}
