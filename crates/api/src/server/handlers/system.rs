//! `/_ping`, `/version`, `/info`, `/system/df`, `/events`, `/auth`.

use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Response, StatusCode};

use crate::backend::{DiskUsageOptions, EventsOptions};
use crate::error::ApiError;
use crate::filters::{Filters, EVENT_FILTERS};
use crate::server::http::{full, json, json_lines, status, streaming, Req, Resp};
use crate::server::Shared;
use crate::time::Timestamp;
use crate::types::AuthConfig;

/// `GET`/`HEAD /_ping`: `OK`, no caching, the builder version (classic) and swarm state.
pub(crate) fn ping(req: &Req) -> Resp {
    let mut r = if req.method == Method::HEAD {
        let mut r = status(StatusCode::OK);
        r.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        r
    } else {
        Response::new(full("OK"))
    };
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        HeaderName::from_static("cache-control"),
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(
        HeaderName::from_static("pragma"),
        HeaderValue::from_static("no-cache"),
    );
    h.insert(
        HeaderName::from_static("builder-version"),
        HeaderValue::from_static("1"),
    );
    h.insert(
        HeaderName::from_static("swarm"),
        HeaderValue::from_static("inactive"),
    );
    r
}

/// `GET /version`, with the served API range filled in.
pub(crate) async fn version(s: &Shared) -> Result<Resp, ApiError> {
    let mut v = s.backend.version().await?;
    let max = s.config.max_api_version.to_string();
    let min = s.config.min_api_version.to_string();
    v.api_version = max.clone();
    v.min_api_version = min.clone();
    for c in v.components.iter_mut().flatten() {
        if c.name == "Engine" {
            let d = c.details.get_or_insert_with(Default::default);
            d.insert("ApiVersion".to_string(), max.clone());
            d.insert("MinAPIVersion".to_string(), min.clone());
        }
    }
    Ok(json(StatusCode::OK, &v))
}

/// `GET /info`.
pub(crate) async fn info(s: &Shared) -> Result<Resp, ApiError> {
    Ok(json(StatusCode::OK, &s.backend.info().await?))
}

/// `GET /system/df`.
pub(crate) async fn disk_usage(s: &Shared, req: &Req) -> Result<Resp, ApiError> {
    let mut types = req.query.all("type");
    types.retain(|t| !t.is_empty());
    for t in &types {
        if !matches!(t.as_str(), "container" | "image" | "volume" | "build-cache") {
            return Err(ApiError::InvalidParameter(format!(
                "unknown object type: {t}"
            )));
        }
    }
    let opts = DiskUsageOptions {
        types,
        verbose: req.query.bool("verbose"),
    };
    Ok(json(StatusCode::OK, &s.backend.disk_usage(opts).await?))
}

/// `GET /events`: JSON lines until `until` or the client goes.
pub(crate) async fn events(s: &Shared, req: &Req) -> Result<Resp, ApiError> {
    let q = &req.query;
    let since = Timestamp::parse_param("since", q.str("since"))?;
    let until = Timestamp::parse_param("until", q.str("until"))?;
    if let (Some(a), Some(b)) = (since, until) {
        if b < a {
            return Err(ApiError::InvalidParameter(format!(
                "`since` time ({}) cannot be after `until` time ({})",
                q.str("since"),
                q.str("until")
            )));
        }
    }
    let filters = Filters::from_json(q.str("filters"))?;
    filters.validate(EVENT_FILTERS)?;
    let events = s
        .backend
        .events(EventsOptions {
            since,
            until,
            filters,
        })
        .await?;
    Ok(streaming("application/json", json_lines(events, false)))
}

/// `POST /auth`.
pub(crate) async fn auth(s: &Shared, mut req: Req) -> Result<Resp, ApiError> {
    let auth: AuthConfig = req.json().await?.ok_or_else(|| {
        ApiError::InvalidParameter(
            "missing authentication configuration in the request body".into(),
        )
    })?;
    Ok(json(StatusCode::OK, &s.backend.auth(auth).await?))
}
