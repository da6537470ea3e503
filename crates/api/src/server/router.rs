//! Paths to handlers. A path is percent-decoded (as Go's `URL.Path`), an optional
//! `/v<version>` prefix is split off and checked against the served range (Docker's 400
//! messages), then the rest is matched; names may contain `/` (images), so they are matched
//! by what precedes and follows them. Unknown paths answer 404 `page not found`.

use http::{HeaderMap, Method, StatusCode, Uri};
use percent_encoding::percent_decode_str;

use super::handlers::{containers, exec, images, other, system};
use super::http::{error, status, Query, Reply, Req};
use super::Shared;
use crate::error::ApiError;
use crate::stream::ByteStream;
use crate::version::{too_new_message, too_old_message, ApiVersion};

/// Splits `/v1.41/rest` into (`Some("1.41")`, `/rest`).
pub(crate) fn split_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(slash) = rest.find('/') {
            let v = &rest[..slash];
            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return (Some(v), &rest[slash..]);
            }
        }
    }
    (None, path)
}

/// True for the paths that hijack the connection (attach, exec start).
pub(crate) fn is_hijack_path(raw_path: &str) -> bool {
    let path = percent_decode_str(raw_path).decode_utf8_lossy();
    let (_, rest) = split_version(&path);
    let segs: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    matches!(segs.as_slice(), ["containers", id @ .., "attach"] if !id.is_empty())
        || matches!(segs.as_slice(), ["exec", _, "start"])
}

/// Answers one request.
pub(crate) async fn dispatch(
    shared: &Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: ByteStream,
) -> Reply {
    let path = percent_decode_str(uri.path())
        .decode_utf8_lossy()
        .into_owned();
    let (version, rest) = split_version(&path);
    let cfg = &shared.config;
    let api = match version {
        None => cfg.max_api_version,
        Some(v) => match v.parse::<ApiVersion>() {
            Err(_) => {
                return Reply::Response(error(&ApiError::InvalidParameter(format!(
                    "invalid API version {v:?}"
                ))))
            }
            Ok(parsed) if parsed < cfg.min_api_version => {
                return Reply::Response(error(&ApiError::InvalidParameter(too_old_message(
                    v,
                    cfg.min_api_version,
                ))))
            }
            Ok(parsed) if parsed > cfg.max_api_version => {
                return Reply::Response(error(&ApiError::InvalidParameter(too_new_message(
                    v,
                    cfg.max_api_version,
                ))))
            }
            Ok(parsed) => parsed,
        },
    };
    if method == Method::OPTIONS {
        return Reply::Response(status(StatusCode::OK));
    }
    let req = Req {
        method,
        api,
        query: Query::parse(uri.query()),
        headers,
        body: std::sync::Mutex::new(Some(body)),
    };
    match route(shared, req, rest).await {
        Ok(r) => r,
        Err(e) => Reply::Response(error(&e)),
    }
}

fn page_not_found() -> ApiError {
    ApiError::NotFound("page not found".to_string())
}

/// Joins the segments of a name that may contain `/`; empty is no match.
fn name(segs: &[&str]) -> Option<String> {
    if segs.is_empty() || segs.iter().all(|s| s.is_empty()) {
        None
    } else {
        Some(segs.join("/"))
    }
}

async fn route(s: &Shared, req: Req, path: &str) -> Result<Reply, ApiError> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let m = req.method.as_str().to_string();
    let r = |x: Result<super::http::Resp, ApiError>| x.map(Reply::Response);
    match (m.as_str(), segs.as_slice()) {
        // ---- system ----
        ("GET" | "HEAD", ["_ping"]) => Ok(Reply::Response(system::ping(&req))),
        ("GET", ["version"]) => r(system::version(s).await),
        ("GET", ["info"]) => r(system::info(s).await),
        ("GET", ["system", "df"]) => r(system::disk_usage(s, &req).await),
        ("GET", ["events"]) => r(system::events(s, &req).await),
        ("POST", ["auth"]) => r(system::auth(s, req).await),

        // ---- containers ----
        ("GET", ["containers", "json"]) => r(containers::list(s, &req).await),
        ("POST", ["containers", "create"]) => r(containers::create(s, req).await),
        ("POST", ["containers", "prune"]) => r(containers::prune(s, &req).await),
        ("POST", ["commit"]) => r(containers::commit(s, req).await),
        ("GET", ["containers", id @ .., "json"]) if name(id).is_some() => {
            r(containers::inspect(s, &req, &segs_name(id)).await)
        }
        ("GET", ["containers", id @ .., "top"]) if name(id).is_some() => {
            r(containers::top(s, &req, &segs_name(id)).await)
        }
        ("GET", ["containers", id @ .., "logs"]) if name(id).is_some() => {
            r(containers::logs(s, &req, &segs_name(id)).await)
        }
        ("GET", ["containers", id @ .., "changes"]) if name(id).is_some() => {
            r(containers::changes(s, &segs_name(id)).await)
        }
        ("GET", ["containers", id @ .., "export"]) if name(id).is_some() => {
            r(containers::export(s, &segs_name(id)).await)
        }
        ("GET", ["containers", id @ .., "stats"]) if name(id).is_some() => {
            r(containers::stats(s, &req, &segs_name(id)).await)
        }
        ("POST", ["containers", id @ .., "resize"]) if name(id).is_some() => {
            r(containers::resize(s, &req, &segs_name(id)).await)
        }
        ("POST", ["containers", id @ .., "start"]) if name(id).is_some() => {
            r(containers::start(s, &req, &segs_name(id)).await)
        }
        ("POST", ["containers", id @ .., "stop"]) if name(id).is_some() => {
            r(containers::stop(s, &req, &segs_name(id), false).await)
        }
        ("POST", ["containers", id @ .., "restart"]) if name(id).is_some() => {
            r(containers::stop(s, &req, &segs_name(id), true).await)
        }
        ("POST", ["containers", id @ .., "kill"]) if name(id).is_some() => {
            r(containers::kill(s, &req, &segs_name(id)).await)
        }
        ("POST", ["containers", id @ .., "update"]) if name(id).is_some() => {
            r(containers::update(s, req, &segs_name(id)).await)
        }
        ("POST", ["containers", id @ .., "rename"]) if name(id).is_some() => {
            r(containers::rename(s, &req, &segs_name(id)).await)
        }
        ("POST", ["containers", id @ .., "pause"]) if name(id).is_some() => {
            r(containers::pause(s, &segs_name(id), true).await)
        }
        ("POST", ["containers", id @ .., "unpause"]) if name(id).is_some() => {
            r(containers::pause(s, &segs_name(id), false).await)
        }
        ("POST", ["containers", id @ .., "attach"]) if name(id).is_some() => {
            containers::attach(s, &req, &segs_name(id)).await
        }
        ("GET", ["containers", id @ .., "attach", "ws"]) if name(id).is_some() => Err(
            ApiError::NotImplemented("attaching over a websocket is not supported by berth".into()),
        ),
        ("POST", ["containers", id @ .., "wait"]) if name(id).is_some() => {
            r(containers::wait(s, &req, &segs_name(id)).await)
        }
        ("HEAD", ["containers", id @ .., "archive"]) if name(id).is_some() => {
            r(containers::archive_head(s, &req, &segs_name(id)).await)
        }
        ("GET", ["containers", id @ .., "archive"]) if name(id).is_some() => {
            r(containers::archive_get(s, &req, &segs_name(id)).await)
        }
        ("PUT", ["containers", id @ .., "archive"]) if name(id).is_some() => {
            r(containers::archive_put(s, req, &segs_name(id)).await)
        }
        ("POST", ["containers", id @ .., "exec"]) if name(id).is_some() => {
            r(exec::create(s, req, &segs_name(id)).await)
        }
        ("DELETE", ["containers", id @ ..]) if name(id).is_some() => {
            r(containers::remove(s, &req, &segs_name(id)).await)
        }

        // ---- exec ----
        ("POST", ["exec", id, "start"]) => exec::start(s, req, id).await,
        ("POST", ["exec", id, "resize"]) => r(exec::resize(s, &req, id).await),
        ("GET", ["exec", id, "json"]) => r(exec::inspect(s, id).await),

        // ---- images ----
        ("GET", ["images", "json"]) => r(images::list(s, &req).await),
        ("POST", ["images", "create"]) => r(images::create(s, req).await),
        ("POST", ["images", "load"]) => r(images::load(s, req).await),
        ("POST", ["images", "prune"]) => r(images::prune(s, &req).await),
        ("GET", ["images", "search"]) => r(images::search(s, &req).await),
        ("GET", ["images", "get"]) => r(images::save(s, req.query.all("names")).await),
        ("POST", ["build"]) => r(images::build(s, req).await),
        ("POST", ["build", "prune"]) => r(images::build_prune(s, &req).await),
        ("GET", ["images", n @ .., "json"]) if name(n).is_some() => {
            r(images::inspect(s, &req, &segs_name(n)).await)
        }
        ("GET", ["images", n @ .., "history"]) if name(n).is_some() => {
            r(images::history(s, &segs_name(n)).await)
        }
        ("GET", ["images", n @ .., "get"]) if name(n).is_some() => {
            r(images::save(s, vec![segs_name(n)]).await)
        }
        ("POST", ["images", n @ .., "push"]) if name(n).is_some() => {
            r(images::push(s, &req, &segs_name(n)).await)
        }
        ("POST", ["images", n @ .., "tag"]) if name(n).is_some() => {
            r(images::tag(s, &req, &segs_name(n)).await)
        }
        ("DELETE", ["images", n @ ..]) if name(n).is_some() => {
            r(images::remove(s, &req, &segs_name(n)).await)
        }
        ("GET", ["distribution", n @ .., "json"]) if name(n).is_some() => {
            r(images::distribution(s, &req, &segs_name(n)).await)
        }

        // ---- volumes ----
        ("GET", ["volumes"]) => r(other::volume_list(s, &req).await),
        ("POST", ["volumes", "create"]) => r(other::volume_create(s, req).await),
        ("POST", ["volumes", "prune"]) => r(other::volume_prune(s, &req).await),
        ("GET", ["volumes", n @ ..]) if name(n).is_some() => {
            r(other::volume_inspect(s, &segs_name(n)).await)
        }
        ("PUT", ["volumes", n @ ..]) if name(n).is_some() => Err(ApiError::Unavailable(
            "volume update only valid for cluster volumes, but swarm is not enabled".into(),
        )),
        ("DELETE", ["volumes", n @ ..]) if name(n).is_some() => {
            r(other::volume_remove(s, &req, &segs_name(n)).await)
        }

        // ---- networks ----
        ("GET", ["networks"]) | ("GET", ["networks", ""]) => r(other::network_list(s, &req).await),
        ("POST", ["networks", "create"]) => r(other::network_create(s, req).await),
        ("POST", ["networks", "prune"]) => r(other::network_prune(s, &req).await),
        ("GET", ["networks", id]) => r(other::network_inspect(s, &req, id).await),
        ("DELETE", ["networks", id]) => r(other::network_remove(s, id).await),
        ("POST", ["networks", id, "connect"]) => r(other::network_connect(s, req, id).await),
        ("POST", ["networks", id, "disconnect"]) => r(other::network_disconnect(s, req, id).await),

        // ---- what berth does not offer ----
        (_, ["swarm", "leave"]) => Err(other::no_swarm()),
        (_, ["swarm", "init"]) | (_, ["swarm", "join"]) => Err(other::swarm_unsupported()),
        (_, [first, ..])
            if matches!(
                *first,
                "swarm" | "nodes" | "services" | "tasks" | "secrets" | "configs"
            ) =>
        {
            Err(other::not_a_manager())
        }
        ("GET", ["plugins"]) => r(Ok(other::plugin_list())),
        (_, ["plugins", ..]) => Err(other::plugin_error(&segs[1..], &m)),
        ("POST", ["session"]) => Err(ApiError::NotImplemented(
            "BuildKit sessions are not supported by berth: use the classic builder \
             (DOCKER_BUILDKIT=0)"
                .into(),
        )),
        _ => Err(page_not_found()),
    }
}

fn segs_name(segs: &[&str]) -> String {
    segs.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix() {
        assert_eq!(
            split_version("/v1.41/containers/json"),
            (Some("1.41"), "/containers/json")
        );
        assert_eq!(
            split_version("/containers/json"),
            (None, "/containers/json")
        );
        assert_eq!(split_version("/volumes/x"), (None, "/volumes/x"));
        assert_eq!(split_version("/v1.41"), (None, "/v1.41"));
        assert!(is_hijack_path("/v1.41/containers/abc/attach"));
        assert!(is_hijack_path("/exec/abc/start"));
        assert!(!is_hijack_path("/containers/abc/start"));
    }
}
