//! `/containers/...` and `/commit`.

use base64::Engine;
use futures_util::{stream, StreamExt};
use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use serde_json::Value;

use crate::backend::*;
use crate::error::ApiError;
use crate::filters::{Filters, CONTAINER_LIST_FILTERS, CONTAINER_PRUNE_FILTERS};
use crate::server::http::{
    bytes_body, frames_body, json, json_lines, no_content, status, streaming, Hijack, Reply, Req,
    Resp, RespBody,
};
use crate::server::Shared;
use crate::stream::{stdin_channel, DetachKeys, MULTIPLEXED_STREAM, RAW_STREAM};
use crate::time::Timestamp;
use crate::types::*;
use crate::version::ApiVersion;

const PATH_STAT_HEADER: &str = "x-docker-container-path-stat";

/// `GET /containers/json`.
pub(crate) async fn list(s: &Shared, req: &Req) -> Result<Resp, ApiError> {
    let q = &req.query;
    let filters = Filters::from_json(q.str("filters"))?;
    filters.validate(CONTAINER_LIST_FILTERS)?;
    let limit = match q.int("limit")? {
        Some(l) if l > 0 => Some(l as usize),
        _ => None,
    };
    let opts = ContainerListOptions {
        all: q.bool("all"),
        limit,
        size: q.bool("size"),
        filters,
    };
    Ok(json(StatusCode::OK, &s.backend.container_list(opts).await?))
}

/// Docker's container name rule.
fn valid_name(name: &str) -> bool {
    let n = name.strip_prefix('/').unwrap_or(name);
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `POST /containers/create`.
pub(crate) async fn create(s: &Shared, mut req: Req) -> Result<Resp, ApiError> {
    req.check_json_content_type()?;
    let name = req.query.opt("name");
    if let Some(n) = &name {
        if !valid_name(n) {
            return Err(ApiError::InvalidParameter(format!(
                "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
    }
    let platform = if req.api.at_least(1, 41) {
        req.query.opt("platform")
    } else {
        None
    };
    let api = req.api;
    let value: Value = req.json().await?.ok_or_else(|| {
        ApiError::InvalidParameter("invalid JSON: got EOF while reading request body".into())
    })?;
    if value.is_null() {
        return Err(ApiError::InvalidParameter(
            "config cannot be empty in order to create a container".into(),
        ));
    }
    let mut body: ContainerCreateRequest = serde_json::from_value(value)
        .map_err(|e| ApiError::InvalidParameter(format!("invalid JSON in request body: {e}")))?;
    let (warnings, default_ro_non_recursive) = create_compat(api, &mut body)?;
    let opts = ContainerCreateOptions {
        name: name.map(|n| n.trim_start_matches('/').to_string()),
        platform,
        default_read_only_non_recursive: default_ro_non_recursive,
    };
    let mut resp = s.backend.container_create(opts, body).await?;
    resp.warnings.extend(warnings);
    Ok(json(StatusCode::CREATED, &resp))
}

/// True for network modes that give the container its own endpoint (bridge or a named
/// network), as opposed to `host`, `none`, `container:<id>`.
fn is_private_network(mode: &str) -> bool {
    !(mode == "host" || mode == "none" || mode.starts_with("container:"))
}

/// Docker's version-compatibility rules for create bodies. Returns warnings and whether
/// read-only binds default to non-recursive.
pub(crate) fn create_compat(
    api: ApiVersion,
    body: &mut ContainerCreateRequest,
) -> Result<(Vec<String>, bool), ApiError> {
    let mut warnings = Vec::new();
    let hc = body.host_config.get_or_insert_with(Default::default);
    let nc = body.networking_config.get_or_insert_with(Default::default);
    let eps = nc.endpoints_config.get_or_insert_with(Default::default);

    if hc.network_mode.is_empty() || hc.network_mode == "default" {
        hc.network_mode = "bridge".to_string();
        if let Some(ep) = eps.remove("default") {
            eps.insert("bridge".to_string(), ep);
        }
    }
    if !api.at_least(1, 25) {
        hc.auto_remove = false;
    }
    let mounts = hc.mounts.get_or_insert_with(Vec::new);
    if !api.at_least(1, 40) {
        for m in mounts.iter_mut() {
            if let Some(b) = m.bind_options.as_mut() {
                b.non_recursive = false;
            }
        }
        if hc.ipc_mode.is_empty() {
            hc.ipc_mode = "shareable".to_string();
        }
    }
    if !api.at_least(1, 42) {
        for m in mounts.iter_mut() {
            if let Some(b) = m.bind_options.as_mut() {
                b.create_mountpoint = false;
            }
            if m.kind != "volume" {
                m.volume_options = None;
            }
            if m.kind != "tmpfs" {
                m.tmpfs_options = None;
            }
        }
        hc.console_size = None;
    } else {
        for m in mounts.iter() {
            let bad = |what: &str| {
                Err(ApiError::InvalidParameter(format!(
                    "{what} must not be specified on mount type {:?}",
                    m.kind
                )))
            };
            if m.volume_options.is_some() && m.kind != "volume" {
                return bad("VolumeOptions");
            }
            if m.bind_options.is_some() && m.kind != "bind" {
                return bad("BindOptions");
            }
            if m.tmpfs_options.is_some() && m.kind != "tmpfs" {
                return bad("TmpfsOptions");
            }
        }
    }
    if !api.at_least(1, 43) {
        hc.annotations = None;
    }
    let mut default_ro_non_recursive = false;
    if !api.at_least(1, 44) {
        if let Some(h) = body.config.healthcheck.as_mut() {
            h.start_interval = 0;
        }
        default_ro_non_recursive = true;
        for m in mounts.iter() {
            if m.kind == "bind"
                && m.bind_options
                    .as_ref()
                    .is_some_and(|b| b.read_only_force_recursive)
            {
                return Err(ApiError::InvalidParameter(
                    "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer".into(),
                ));
            }
        }
        if eps.len() > 1 {
            let names: Vec<&str> = eps.keys().map(String::as_str).collect();
            return Err(ApiError::InvalidParameter(format!(
                "Container cannot be created with multiple network endpoints: {}",
                names.join(", ")
            )));
        }
    }
    if !api.at_least(1, 45)
        && mounts.iter().any(|m| {
            m.volume_options
                .as_ref()
                .is_some_and(|v| !v.subpath.is_empty())
        })
    {
        return Err(ApiError::InvalidParameter(
            "VolumeOptions.Subpath needs API v1.45 or newer".into(),
        ));
    }
    if mounts.is_empty() {
        hc.mounts = None;
    }

    // The container-wide MAC address moved to the endpoint in API 1.44.
    let mac = body.config.mac_address.take().filter(|m| !m.is_empty());
    let net = hc.network_mode.clone();
    if !api.at_least(1, 44) {
        match mac {
            None => {
                for ep in eps.values_mut() {
                    ep.mac_address.clear();
                }
            }
            Some(mac) => {
                if !is_private_network(&net) {
                    return Err(ApiError::InvalidParameter(
                        "conflicting options: mac-address and the network mode".into(),
                    ));
                }
                if eps.is_empty() {
                    eps.insert(net.clone(), EndpointSettings::default());
                }
                if let Some(ep) = eps.values_mut().next() {
                    ep.mac_address = mac;
                }
            }
        }
    } else if let Some(mac) = mac {
        if is_private_network(&net) {
            if eps.is_empty() {
                eps.insert(net.clone(), EndpointSettings::default());
            }
            let ep = eps.get_mut(&net).ok_or_else(|| {
                ApiError::InvalidParameter(
                    "HostConfig.NetworkMode must match the identity of a network in \
                     NetworkSettings.Networks"
                        .into(),
                )
            })?;
            if ep.mac_address.is_empty() {
                ep.mac_address = mac;
            } else if ep.mac_address != mac {
                return Err(ApiError::InvalidParameter(
                    "the container-wide MAC address must match the endpoint-specific MAC \
                     address for the main network, or be left empty"
                        .into(),
                ));
            }
        }
        warnings.push(
            "The container-wide MacAddress field is now deprecated. It should be specified \
             in EndpointsConfig instead."
                .to_string(),
        );
    }

    if hc.resources.pids_limit.is_some_and(|p| p <= 0) {
        hc.resources.pids_limit = None;
    }
    Ok((warnings, default_ro_non_recursive))
}

/// `GET /containers/{id}/json`.
pub(crate) async fn inspect(s: &Shared, req: &Req, id: &str) -> Result<Resp, ApiError> {
    let size = req.query.bool("size");
    Ok(json(
        StatusCode::OK,
        &s.backend.container_inspect(id, size).await?,
    ))
}

/// `GET /containers/{id}/top`.
pub(crate) async fn top(s: &Shared, req: &Req, id: &str) -> Result<Resp, ApiError> {
    Ok(json(
        StatusCode::OK,
        &s.backend
            .container_top(id, req.query.str("ps_args"))
            .await?,
    ))
}

/// `GET /containers/{id}/logs`.
pub(crate) async fn logs(s: &Shared, req: &Req, id: &str) -> Result<Resp, ApiError> {
    let q = &req.query;
    let (stdout, stderr) = (q.bool("stdout"), q.bool("stderr"));
    if !(stdout || stderr) {
        return Err(ApiError::InvalidParameter(
            "Bad parameters: you must choose at least one stream".into(),
        ));
    }
    // Docker reads anything but a number (e.g. "all") as all lines.
    let tail = q
        .str("tail")
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(|n| n as u64);
    let opts = LogsOptions {
        follow: q.bool("follow"),
        stdout,
        stderr,
        since: Timestamp::parse_param("since", q.str("since"))?
            .filter(|t| *t != Timestamp::default()),
        until: Timestamp::parse_param("until", q.str("until"))?
            .filter(|t| *t != Timestamp::default()),
        timestamps: q.bool("timestamps"),
        tail,
        details: q.bool("details"),
    };
    let out = s.backend.container_logs(id, opts).await?;
    let ct = if !out.tty && req.api.at_least(1, 42) {
        MULTIPLEXED_STREAM
    } else {
        RAW_STREAM
    };
    Ok(streaming(ct, frames_body(out.frames, out.tty)))
}

/// `GET /containers/{id}/changes`.
pub(crate) async fn changes(s: &Shared, id: &str) -> Result<Resp, ApiError> {
    Ok(json(
        StatusCode::OK,
        &s.backend.container_changes(id).await?,
    ))
}

/// `GET /containers/{id}/export`.
pub(crate) async fn export(s: &Shared, id: &str) -> Result<Resp, ApiError> {
    let tar = s.backend.container_export(id).await?;
    Ok(streaming("application/octet-stream", bytes_body(tar)))
}

/// `GET /containers/{id}/stats`.
pub(crate) async fn stats(s: &Shared, req: &Req, id: &str) -> Result<Resp, ApiError> {
    let stream_it = req.query.bool_or("stream", true);
    let one_shot = req.api.at_least(1, 41) && req.query.bool_or("one-shot", false);
    let mut samples = s
        .backend
        .container_stats(
            id,
            StatsOptions {
                stream: stream_it,
                one_shot,
            },
        )
        .await?;
    if stream_it {
        return Ok(streaming("application/json", json_lines(samples, false)));
    }
    match samples.next().await {
        Some(Ok(v)) => Ok(json(StatusCode::OK, &v)),
        Some(Err(e)) => Err(e),
        None => Err(ApiError::Internal(format!(
            "no stats available for container {id}"
        ))),
    }
}

/// `POST /containers/{id}/resize`.
pub(crate) async fn resize(s: &Shared, req: &Req, id: &str) -> Result<Resp, ApiError> {
    let h = req.query.dimension("h")?;
    let w = req.query.dimension("w")?;
    s.backend.container_resize(id, h, w).await?;
    Ok(status(StatusCode::OK))
}

/// `POST /containers/{id}/start`.
pub(crate) async fn start(s: &Shared, req: &Req, id: &str) -> Result<Resp, ApiError> {
    // A non-empty JSON object is at least 7 bytes ({"A":1}); Docker refuses a HostConfig
    // given at start since API 1.24.
    if req.content_length().is_some_and(|l| l > 7) || req.chunked() {
        return Err(ApiError::InvalidParameter(
            "starting container with non-empty request body was deprecated since API v1.22 \
             and removed in v1.24"
                .into(),
        ));
    }
    s.backend.container_start(id).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/stop` and `/restart`.
pub(crate) async fn stop(s: &Shared, req: &Req, id: &str, restart: bool) -> Result<Resp, ApiError> {
    let signal = if req.api.at_least(1, 42) {
        req.query.opt("signal")
    } else {
        None
    };
    let opts = StopOptions {
        signal,
        timeout: req.query.int("t")?,
    };
    if restart {
        s.backend.container_restart(id, opts).await?;
    } else {
        s.backend.container_stop(id, opts).await?;
    }
    Ok(no_content())
}

/// `POST /containers/{id}/kill`: errors are prefixed as Docker does.
pub(crate) async fn kill(s: &Shared, req: &Req, id: &str) -> Result<Resp, ApiError> {
    let signal = req.query.opt("signal");
    s.backend.container_kill(id, signal).await.map_err(|e| {
        let msg = format!("cannot kill container: {id}: {}", e.message());
        match e {
            ApiError::NotFound(_) => ApiError::NotFound(msg),
            ApiError::Conflict(_) => ApiError::Conflict(msg),
            ApiError::InvalidParameter(_) => ApiError::InvalidParameter(msg),
            other => ApiError::from_status(other.status(), msg),
        }
    })?;
    Ok(no_content())
}

/// `POST /containers/{id}/update`.
pub(crate) async fn update(s: &Shared, mut req: Req, id: &str) -> Result<Resp, ApiError> {
    let api = req.api;
    let mut body: ContainerUpdateRequest = req.json().await?.unwrap_or_default();
    if !api.at_least(1, 40) {
        body.resources.pids_limit = None;
    }
    if body.resources.pids_limit.is_some_and(|p| p <= 0) {
        // 0 and -1 both mean unlimited when updating.
        body.resources.pids_limit = Some(0);
    }
    Ok(json(
        StatusCode::OK,
        &s.backend.container_update(id, body).await?,
    ))
}

/// `POST /containers/{id}/rename`.
pub(crate) async fn rename(s: &Shared, req: &Req, id: &str) -> Result<Resp, ApiError> {
    let new = req.query.str("name");
    if new.is_empty() {
        return Err(ApiError::InvalidParameter(
            "Neither old nor new names may be empty".into(),
        ));
    }
    // The new name's rule is checked by the backend, after the container is found (dockerd
    // answers 404 for a missing container before judging the name).
    s.backend
        .container_rename(id, new.trim_start_matches('/'))
        .await?;
    Ok(no_content())
}

/// `POST /containers/{id}/pause` and `/unpause`.
pub(crate) async fn pause(s: &Shared, id: &str, pause: bool) -> Result<Resp, ApiError> {
    if pause {
        s.backend.container_pause(id).await?;
    } else {
        s.backend.container_unpause(id).await?;
    }
    Ok(no_content())
}

/// `POST /containers/{id}/attach`: hijacks the connection.
pub(crate) async fn attach(s: &Shared, req: &Req, id: &str) -> Result<Reply, ApiError> {
    let q = &req.query;
    let detach_keys = match q.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(k) => {
            Some(DetachKeys::parse(k).map_err(|e| ApiError::InvalidParameter(e.to_string()))?)
        }
        None => None,
    };
    let opts = AttachOptions {
        stdin: q.bool("stdin"),
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        stream: q.bool("stream"),
        logs: q.bool("logs"),
        detach_keys,
    };
    let (feeder, stdin) = if opts.stdin {
        let (f, r) = stdin_channel();
        (Some(f), Some(r))
    } else {
        (None, None)
    };
    let session = s.backend.container_attach(id, opts, stdin).await?;
    let media_type = if !session.tty && req.api.at_least(1, 42) {
        MULTIPLEXED_STREAM
    } else {
        RAW_STREAM
    };
    Ok(Reply::Hijack(Hijack {
        media_type,
        session,
        stdin: feeder,
    }))
}

/// `POST /containers/{id}/wait`: headers at once, the result when the condition is met.
pub(crate) async fn wait(s: &Shared, req: &Req, id: &str) -> Result<Resp, ApiError> {
    let condition = if req.api.at_least(1, 30) {
        match req.query.str("condition") {
            "" | "not-running" => WaitCondition::NotRunning,
            "next-exit" => WaitCondition::NextExit,
            "removed" => WaitCondition::Removed,
            other => {
                return Err(ApiError::InvalidParameter(format!(
                    "invalid condition: {other:?}"
                )))
            }
        }
    } else {
        WaitCondition::NotRunning
    };
    let fut = s.backend.container_wait(id, condition).await?;
    let body = stream::once(async move {
        let resp = match fut.await {
            Ok(r) => r,
            Err(e) => ContainerWaitResponse {
                status_code: -1,
                error: Some(WaitExitError {
                    message: e.message().to_string(),
                }),
            },
        };
        let mut line = serde_json::to_vec(&resp).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::io::Error>(http_body::Frame::data(bytes::Bytes::from(line)))
    });
    let body: RespBody =
        http_body_util::BodyExt::boxed_unsync(http_body_util::StreamBody::new(body));
    Ok(streaming("application/json", body))
}

/// `DELETE /containers/{id}`.
pub(crate) async fn remove(s: &Shared, req: &Req, id: &str) -> Result<Resp, ApiError> {
    let q = &req.query;
    let opts = ContainerRemoveOptions {
        force: q.bool("force"),
        volumes: q.bool("v"),
        link: q.bool("link"),
    };
    s.backend.container_remove(id, opts).await?;
    Ok(no_content())
}

fn archive_path(req: &Req) -> Result<String, ApiError> {
    let p = req.query.str("path");
    if p.is_empty() {
        return Err(ApiError::InvalidParameter("path cannot be empty".into()));
    }
    Ok(p.to_string())
}

fn path_stat_header(stat: &PathStat) -> Result<HeaderValue, ApiError> {
    let raw = serde_json::to_vec(stat).map_err(|e| ApiError::Internal(e.to_string()))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    HeaderValue::from_str(&b64).map_err(|e| ApiError::Internal(e.to_string()))
}

/// `HEAD /containers/{id}/archive`.
pub(crate) async fn archive_head(s: &Shared, req: &Req, id: &str) -> Result<Resp, ApiError> {
    let path = archive_path(req)?;
    let stat = s.backend.container_archive_stat(id, &path).await?;
    let mut r = status(StatusCode::OK);
    r.headers_mut().insert(
        HeaderName::from_static(PATH_STAT_HEADER),
        path_stat_header(&stat)?,
    );
    Ok(r)
}

/// `GET /containers/{id}/archive`.
pub(crate) async fn archive_get(s: &Shared, req: &Req, id: &str) -> Result<Resp, ApiError> {
    let path = archive_path(req)?;
    let archive = s.backend.container_archive_get(id, &path).await?;
    let mut r = streaming("application/x-tar", bytes_body(archive.content));
    r.headers_mut().insert(
        HeaderName::from_static(PATH_STAT_HEADER),
        path_stat_header(&archive.stat)?,
    );
    Ok(r)
}

/// `PUT /containers/{id}/archive`.
pub(crate) async fn archive_put(s: &Shared, mut req: Req, id: &str) -> Result<Resp, ApiError> {
    let path = archive_path(&req)?;
    let opts = ArchivePutOptions {
        no_overwrite_dir_non_dir: req.query.bool("noOverwriteDirNonDir"),
        copy_uid_gid: req.query.bool("copyUIDGID"),
    };
    let body = req.take_body();
    s.backend
        .container_archive_put(id, &path, opts, body)
        .await?;
    Ok(status(StatusCode::OK))
}

/// `POST /containers/prune`.
pub(crate) async fn prune(s: &Shared, req: &Req) -> Result<Resp, ApiError> {
    let filters = Filters::from_json(req.query.str("filters"))?;
    filters.validate(CONTAINER_PRUNE_FILTERS)?;
    Ok(json(
        StatusCode::OK,
        &s.backend.container_prune(filters).await?,
    ))
}

/// `POST /commit`.
pub(crate) async fn commit(s: &Shared, mut req: Req) -> Result<Resp, ApiError> {
    req.check_json_content_type()?;
    let q = &req.query;
    let container = q.str("container").to_string();
    if container.is_empty() {
        return Err(ApiError::InvalidParameter("container is required".into()));
    }
    let mut opts = CommitOptions {
        container,
        repo: q.str("repo").to_string(),
        tag: q.str("tag").to_string(),
        comment: q.str("comment").to_string(),
        author: q.str("author").to_string(),
        pause: q.bool_or("pause", true),
        changes: q.all("changes"),
        config: None,
    };
    if !opts.tag.is_empty() && opts.repo.is_empty() {
        return Err(ApiError::InvalidParameter(
            "a tag needs a repository (repo)".into(),
        ));
    }
    opts.config = req.json::<Option<ContainerConfig>>().await?.flatten();
    Ok(json(
        StatusCode::CREATED,
        &s.backend.container_commit(opts).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("web"));
        assert!(valid_name("/web-1.a_b"));
        assert!(!valid_name("w"));
        assert!(!valid_name("-web"));
        assert!(!valid_name("we b"));
    }

    #[test]
    fn compat_rules() {
        let mut b: ContainerCreateRequest = serde_json::from_str(
            r#"{"Image":"x","MacAddress":"02:42:ac:11:00:02","HostConfig":{"PidsLimit":-1,
               "NetworkMode":"default"}}"#,
        )
        .unwrap();
        let (w, ro) = create_compat(ApiVersion::new(1, 47), &mut b).unwrap();
        assert_eq!(w.len(), 1);
        assert!(!ro);
        let hc = b.host_config.as_ref().unwrap();
        assert_eq!(hc.network_mode, "bridge");
        assert_eq!(hc.resources.pids_limit, None);
        let eps = b
            .networking_config
            .as_ref()
            .unwrap()
            .endpoints_config
            .as_ref()
            .unwrap();
        assert_eq!(eps["bridge"].mac_address, "02:42:ac:11:00:02");

        let mut b: ContainerCreateRequest = serde_json::from_str(
            r#"{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"a":{},"b":{}}}}"#,
        )
        .unwrap();
        assert!(create_compat(ApiVersion::new(1, 43), &mut b).is_err());
        assert!(create_compat(ApiVersion::new(1, 44), &mut b).is_ok());
    }
}
