//! `/images/...`, `/build`, `/distribution/...`.

use std::collections::BTreeMap;

use http::StatusCode;

use super::{decode_base64, registry_auth};
use crate::backend::*;
use crate::error::ApiError;
use crate::filters::{Filters, IMAGE_LIST_FILTERS, IMAGE_PRUNE_FILTERS};
use crate::server::http::{bytes_body, json, json_lines, peek_first, status, streaming, Req, Resp};
use crate::server::Shared;
use crate::stream::JsonStream;
use crate::types::{AuthConfig, JsonMessage};

/// A progress stream as the answer: the first item decides between an HTTP error and 200.
async fn progress(s: JsonStream<JsonMessage>) -> Result<Resp, ApiError> {
    let s = peek_first(s).await?;
    Ok(streaming("application/json", json_lines(s, true)))
}

/// `GET /images/json`.
pub(crate) async fn list(s: &Shared, req: &Req) -> Result<Resp, ApiError> {
    let q = &req.query;
    let filters = Filters::from_json(q.str("filters"))?;
    filters.validate(IMAGE_LIST_FILTERS)?;
    let opts = ImageListOptions {
        all: q.bool("all"),
        filters,
        shared_size: q.bool("shared-size"),
        digests: q.bool("digests"),
        manifests: req.api.at_least(1, 47) && q.bool("manifests"),
    };
    let mut images = s.backend.image_list(opts).await?;
    if !req.api.at_least(1, 44) {
        // `VirtualSize` (= `Size`) was removed in API 1.44; older clients show it.
        for i in &mut images {
            i.extra
                .entry("VirtualSize")
                .or_insert_with(|| i.size.into());
        }
    }
    Ok(json(StatusCode::OK, &images))
}

/// `POST /images/create`: pull (`fromImage`) or import (`fromSrc`).
pub(crate) async fn create(s: &Shared, mut req: Req) -> Result<Resp, ApiError> {
    let auth = registry_auth(req.header("x-registry-auth"))?;
    let q = &req.query;
    let platform = if req.api.at_least(1, 32) {
        q.opt("platform")
    } else {
        None
    };
    let from_image = q.str("fromImage").to_string();
    let from_src = q.str("fromSrc").to_string();
    if !from_image.is_empty() {
        let opts = ImagePullOptions {
            from_image,
            tag: q.str("tag").to_string(),
            platform,
            auth,
        };
        return progress(s.backend.image_pull(opts).await?).await;
    }
    if from_src.is_empty() {
        return Err(ApiError::InvalidParameter(
            "either fromImage (pull) or fromSrc (import) must be given".into(),
        ));
    }
    let (repo, tag, message, changes) = (
        q.str("repo").to_string(),
        q.str("tag").to_string(),
        q.str("message").to_string(),
        q.all("changes"),
    );
    let source = if from_src == "-" {
        ImportSource::Body(req.take_body())
    } else {
        ImportSource::Url(from_src)
    };
    let opts = ImageImportOptions {
        source,
        repo,
        tag,
        message,
        changes,
        platform,
    };
    progress(s.backend.image_import(opts).await?).await
}

/// `GET /images/{name}/json`.
pub(crate) async fn inspect(s: &Shared, req: &Req, name: &str) -> Result<Resp, ApiError> {
    let mut image = s.backend.image_inspect(name).await?;
    if !req.api.at_least(1, 44) {
        image
            .extra
            .entry("VirtualSize")
            .or_insert_with(|| image.size.into());
    }
    Ok(json(StatusCode::OK, &image))
}

/// `GET /images/{name}/history`.
pub(crate) async fn history(s: &Shared, name: &str) -> Result<Resp, ApiError> {
    Ok(json(StatusCode::OK, &s.backend.image_history(name).await?))
}

/// `POST /images/{name}/push`.
pub(crate) async fn push(s: &Shared, req: &Req, name: &str) -> Result<Resp, ApiError> {
    let auth = registry_auth(req.header("x-registry-auth"))?;
    let platform = if req.api.at_least(1, 46) {
        req.query.opt("platform")
    } else {
        None
    };
    let opts = ImagePushOptions {
        name: name.to_string(),
        tag: req.query.str("tag").to_string(),
        platform,
        auth,
    };
    progress(s.backend.image_push(opts).await?).await
}

/// `POST /images/{name}/tag`.
pub(crate) async fn tag(s: &Shared, req: &Req, name: &str) -> Result<Resp, ApiError> {
    let repo = req.query.str("repo");
    if repo.is_empty() {
        return Err(ApiError::InvalidParameter(
            "repository name (repo) must be given".into(),
        ));
    }
    s.backend
        .image_tag(name, repo, req.query.str("tag"))
        .await?;
    Ok(status(StatusCode::CREATED))
}

/// `DELETE /images/{name}`.
pub(crate) async fn remove(s: &Shared, req: &Req, name: &str) -> Result<Resp, ApiError> {
    let opts = ImageRemoveOptions {
        force: req.query.bool("force"),
        noprune: req.query.bool("noprune"),
    };
    Ok(json(
        StatusCode::OK,
        &s.backend.image_remove(name, opts).await?,
    ))
}

/// `POST /images/prune`.
pub(crate) async fn prune(s: &Shared, req: &Req) -> Result<Resp, ApiError> {
    let filters = Filters::from_json(req.query.str("filters"))?;
    filters.validate(IMAGE_PRUNE_FILTERS)?;
    Ok(json(StatusCode::OK, &s.backend.image_prune(filters).await?))
}

/// `GET /images/search`.
pub(crate) async fn search(s: &Shared, req: &Req) -> Result<Resp, ApiError> {
    let q = &req.query;
    let term = q.str("term");
    if term.is_empty() {
        return Err(ApiError::InvalidParameter(
            "a search term (term) must be given".into(),
        ));
    }
    let limit = q.int("limit")?.filter(|l| *l > 0).map(|l| l as u64);
    let filters = Filters::from_json(q.str("filters"))?;
    filters.validate(&["is-automated", "is-official", "stars"])?;
    Ok(json(
        StatusCode::OK,
        &s.backend.image_search(term, limit, filters).await?,
    ))
}

/// `GET /images/get` and `GET /images/{name}/get`.
pub(crate) async fn save(s: &Shared, names: Vec<String>) -> Result<Resp, ApiError> {
    let names: Vec<String> = names.into_iter().filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return Err(ApiError::InvalidParameter(
            "no image names given (names)".into(),
        ));
    }
    let tar = s.backend.image_save(names).await?;
    Ok(streaming("application/x-tar", bytes_body(tar)))
}

/// `POST /images/load`.
pub(crate) async fn load(s: &Shared, mut req: Req) -> Result<Resp, ApiError> {
    let opts = ImageLoadOptions {
        quiet: req.query.bool("quiet"),
        platforms: req
            .query
            .all("platform")
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect(),
    };
    let body = req.take_body();
    progress(s.backend.image_load(opts, body).await?).await
}

/// `POST /build`.
pub(crate) async fn build(s: &Shared, mut req: Req) -> Result<Resp, ApiError> {
    let opts = build_options(&req)?;
    let body = req.take_body();
    progress(s.backend.build(opts, body).await?).await
}

fn json_param<T: serde::de::DeserializeOwned + Default>(
    req: &Req,
    key: &str,
) -> Result<T, ApiError> {
    let v = req.query.str(key);
    if v.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(v).map_err(|e| ApiError::InvalidParameter(format!("invalid {key}: {e}")))
}

fn build_options(req: &Req) -> Result<BuildOptions, ApiError> {
    let q = &req.query;
    let registry_auth = match req.header("x-registry-config") {
        "" => BTreeMap::new(),
        h => {
            let raw = decode_base64(h).ok_or_else(|| {
                ApiError::InvalidParameter("invalid X-Registry-Config header: not base64".into())
            })?;
            serde_json::from_slice::<BTreeMap<String, AuthConfig>>(&raw).map_err(|e| {
                ApiError::InvalidParameter(format!("invalid X-Registry-Config header: {e}"))
            })?
        }
    };
    let extra_hosts = q
        .all("extrahosts")
        .iter()
        .flat_map(|v| v.split([',', ' ']).map(str::to_string).collect::<Vec<_>>())
        .filter(|h| !h.is_empty())
        .collect();
    Ok(BuildOptions {
        dockerfile: q
            .opt("dockerfile")
            .unwrap_or_else(|| "Dockerfile".to_string()),
        tags: q.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        extra_hosts,
        remote: q.opt("remote"),
        quiet: q.bool("q"),
        no_cache: q.bool("nocache"),
        cache_from: json_param(req, "cachefrom")?,
        pull: q.bool("pull"),
        rm: q.bool_or("rm", true),
        force_rm: q.bool("forcerm"),
        memory: q.int("memory")?,
        memswap: q.int("memswap")?,
        cpu_shares: q.int("cpushares")?,
        cpuset_cpus: q.opt("cpusetcpus"),
        cpu_period: q.int("cpuperiod")?,
        cpu_quota: q.int("cpuquota")?,
        build_args: json_param(req, "buildargs")?,
        shm_size: q.int("shmsize")?,
        squash: q.bool("squash"),
        labels: json_param(req, "labels")?,
        network_mode: q.opt("networkmode"),
        platform: q.opt("platform"),
        target: q.opt("target"),
        outputs: q.opt("outputs"),
        version: q.opt("version").unwrap_or_else(|| "1".to_string()),
        registry_auth,
    })
}

/// `POST /build/prune`.
pub(crate) async fn build_prune(s: &Shared, req: &Req) -> Result<Resp, ApiError> {
    let filters = Filters::from_json(req.query.str("filters"))?;
    Ok(json(
        StatusCode::OK,
        &s.backend
            .build_prune(req.query.bool("all"), filters)
            .await?,
    ))
}

/// `GET /distribution/{name}/json`.
pub(crate) async fn distribution(s: &Shared, req: &Req, name: &str) -> Result<Resp, ApiError> {
    let auth = registry_auth(req.header("x-registry-auth"))?;
    Ok(json(
        StatusCode::OK,
        &s.backend.distribution_inspect(name, auth).await?,
    ))
}
