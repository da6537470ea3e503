//! The typed operations of [`Client`], one per Engine API endpoint the CLI needs, built on
//! its low-level helpers. Option structs are shared with the server side
//! ([`crate::backend`]), so both ends agree on what a parameter means.

use base64::Engine;
use http::header::CONTENT_TYPE;
use http::Method;

use super::streams::{progress, FrameReader, HijackedStream, JsonLines};
use super::{escape_path, Body, Client, ClientError};
use crate::backend::*;
use crate::filters::Filters;
use crate::stream::{ByteStream, MULTIPLEXED_STREAM};
use crate::types::*;
use crate::version::ApiVersion;

/// What `/_ping` tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PingInfo {
    /// `Api-Version` (None when the daemon sent none: older than 1.25).
    pub api_version: Option<ApiVersion>,
    /// `Ostype`.
    pub os_type: String,
    /// `Docker-Experimental`.
    pub experimental: bool,
    /// `Builder-Version` (`1` classic, `2` BuildKit).
    pub builder_version: String,
    /// `Swarm` (`inactive`...).
    pub swarm: String,
}

type Q = Vec<(&'static str, String)>;

/// A wait the daemon has registered (see [`Client::container_wait_begin`]).
pub struct PendingWait {
    body: ByteStream,
}

impl PendingWait {
    /// The exit status once the condition is met; a wait that failed on the daemon's side
    /// (`Error.Message`) is an error.
    pub async fn result(mut self) -> Result<ContainerWaitResponse, ClientError> {
        use futures_util::StreamExt;
        let mut buf = Vec::new();
        while let Some(chunk) = self.body.next().await {
            let chunk = chunk.map_err(|e| ClientError::Stream(e.message().to_string()))?;
            buf.extend_from_slice(&chunk);
        }
        let r: ContainerWaitResponse =
            serde_json::from_slice(&buf).map_err(|source| ClientError::Decode {
                what: "container wait".into(),
                source,
            })?;
        match &r.error {
            Some(e) if !e.message.is_empty() => Err(ClientError::Stream(e.message.clone())),
            _ => Ok(r),
        }
    }
}

fn flag(q: &mut Q, k: &'static str, v: bool) {
    if v {
        q.push((k, "1".to_string()));
    }
}

fn filters_param(q: &mut Q, f: &Filters) {
    if !f.is_empty() {
        q.push(("filters", f.to_json()));
    }
}

fn auth_header(auth: &AuthConfig) -> Result<(&'static str, String), ClientError> {
    let raw = serde_json::to_vec(auth).map_err(|source| ClientError::Encode {
        what: "X-Registry-Auth".to_string(),
        source,
    })?;
    Ok((
        "x-registry-auth",
        base64::engine::general_purpose::URL_SAFE.encode(raw),
    ))
}

impl Client {
    // ---- system ----

    /// `GET /_ping` (unversioned).
    pub async fn ping(&self) -> Result<PingInfo, ClientError> {
        let resp = self
            .send_raw(Method::GET, "/_ping".to_string(), &[], Body::Empty)
            .await?;
        let resp = self.check(resp).await?;
        let h = resp.headers();
        let get = |k: &str| {
            h.get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        Ok(PingInfo {
            api_version: get("api-version").parse().ok(),
            os_type: get("ostype"),
            experimental: get("docker-experimental") == "true",
            builder_version: get("builder-version"),
            swarm: get("swarm"),
        })
    }

    /// `GET /version`.
    pub async fn version(&self) -> Result<SystemVersion, ClientError> {
        self.get_json("/version", &[]).await
    }

    /// `GET /info`.
    pub async fn info(&self) -> Result<SystemInfo, ClientError> {
        self.get_json("/info", &[]).await
    }

    /// `GET /system/df`.
    pub async fn disk_usage(&self) -> Result<DiskUsage, ClientError> {
        self.get_json("/system/df", &[]).await
    }

    /// `GET /events`.
    pub async fn events(
        &self,
        opts: &EventsOptions,
    ) -> Result<JsonLines<EventMessage>, ClientError> {
        let mut q = Q::new();
        if let Some(s) = opts.since {
            q.push(("since", s.to_string()));
        }
        if let Some(u) = opts.until {
            q.push(("until", u.to_string()));
        }
        filters_param(&mut q, &opts.filters);
        self.json_lines(Method::GET, "/events", &q, &[], Body::Empty)
            .await
    }

    /// `POST /auth`.
    pub async fn auth(&self, auth: &AuthConfig) -> Result<AuthResponse, ClientError> {
        self.post_json("/auth", &[], Body::json(auth)?).await
    }

    // ---- containers ----

    /// `GET /containers/json`.
    pub async fn container_list(
        &self,
        opts: &ContainerListOptions,
    ) -> Result<Vec<ContainerSummary>, ClientError> {
        let mut q = Q::new();
        flag(&mut q, "all", opts.all);
        flag(&mut q, "size", opts.size);
        if let Some(l) = opts.limit {
            q.push(("limit", l.to_string()));
        }
        filters_param(&mut q, &opts.filters);
        self.get_json("/containers/json", &q).await
    }

    /// `POST /containers/create`.
    pub async fn container_create(
        &self,
        name: Option<&str>,
        platform: Option<&str>,
        req: &ContainerCreateRequest,
    ) -> Result<ContainerCreateResponse, ClientError> {
        let mut q = Q::new();
        if let Some(n) = name {
            q.push(("name", n.to_string()));
        }
        if let Some(p) = platform {
            q.push(("platform", p.to_string()));
        }
        self.post_json("/containers/create", &q, Body::json(req)?)
            .await
    }

    /// `GET /containers/{id}/json`.
    pub async fn container_inspect(&self, id: &str) -> Result<ContainerInspect, ClientError> {
        self.get_json(&format!("/containers/{}/json", escape_path(id)), &[])
            .await
    }

    /// `POST /containers/{id}/start` (a 304 "already started" is not an error).
    pub async fn container_start(&self, id: &str) -> Result<(), ClientError> {
        self.call(
            Method::POST,
            &format!("/containers/{}/start", escape_path(id)),
            &[],
            Body::Empty,
        )
        .await
    }

    fn stop_query(opts: &StopOptions) -> Q {
        let mut q = Q::new();
        if let Some(t) = opts.timeout {
            q.push(("t", t.to_string()));
        }
        if let Some(s) = &opts.signal {
            q.push(("signal", s.clone()));
        }
        q
    }

    /// `POST /containers/{id}/stop`.
    pub async fn container_stop(&self, id: &str, opts: &StopOptions) -> Result<(), ClientError> {
        let q = Self::stop_query(opts);
        self.call(
            Method::POST,
            &format!("/containers/{}/stop", escape_path(id)),
            &q,
            Body::Empty,
        )
        .await
    }

    /// `POST /containers/{id}/restart`.
    pub async fn container_restart(&self, id: &str, opts: &StopOptions) -> Result<(), ClientError> {
        let q = Self::stop_query(opts);
        self.call(
            Method::POST,
            &format!("/containers/{}/restart", escape_path(id)),
            &q,
            Body::Empty,
        )
        .await
    }

    /// `POST /containers/{id}/kill`.
    pub async fn container_kill(&self, id: &str, signal: Option<&str>) -> Result<(), ClientError> {
        let q: Q = signal
            .map(|s| vec![("signal", s.to_string())])
            .unwrap_or_default();
        self.call(
            Method::POST,
            &format!("/containers/{}/kill", escape_path(id)),
            &q,
            Body::Empty,
        )
        .await
    }

    /// `POST /containers/{id}/pause`.
    pub async fn container_pause(&self, id: &str) -> Result<(), ClientError> {
        self.call(
            Method::POST,
            &format!("/containers/{}/pause", escape_path(id)),
            &[],
            Body::Empty,
        )
        .await
    }

    /// `POST /containers/{id}/unpause`.
    pub async fn container_unpause(&self, id: &str) -> Result<(), ClientError> {
        self.call(
            Method::POST,
            &format!("/containers/{}/unpause", escape_path(id)),
            &[],
            Body::Empty,
        )
        .await
    }

    /// `POST /containers/{id}/wait`: resolves when the condition is met.
    pub async fn container_wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<ContainerWaitResponse, ClientError> {
        let c = match condition {
            WaitCondition::NotRunning => "not-running",
            WaitCondition::NextExit => "next-exit",
            WaitCondition::Removed => "removed",
        };
        let r: ContainerWaitResponse = self
            .post_json(
                &format!("/containers/{}/wait", escape_path(id)),
                &[("condition", c.to_string())],
                Body::Empty,
            )
            .await?;
        match &r.error {
            Some(e) if !e.message.is_empty() => Err(ClientError::Stream(e.message.clone())),
            _ => Ok(r),
        }
    }

    /// `POST /containers/{id}/wait` in two steps: this returns once the daemon has taken
    /// the wait (its answer's headers came), so a `start` sent afterwards cannot be missed;
    /// [`PendingWait::result`] then resolves when the condition is met.
    pub async fn container_wait_begin(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<PendingWait, ClientError> {
        let c = match condition {
            WaitCondition::NotRunning => "not-running",
            WaitCondition::NextExit => "next-exit",
            WaitCondition::Removed => "removed",
        };
        let (_, body) = self
            .bytes(
                Method::POST,
                &format!("/containers/{}/wait", escape_path(id)),
                &[("condition", c.to_string())],
                Body::Empty,
            )
            .await?;
        Ok(PendingWait { body })
    }

    /// A `GET` answered with JSON, returned as the daemon's bytes (field order kept, for
    /// `inspect`).
    pub async fn get_raw(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<bytes::Bytes, ClientError> {
        let resp = self
            .request(Method::GET, path, query, &[], Body::Empty)
            .await?;
        super::read_all(resp.into_body(), 256 << 20).await
    }

    /// `DELETE /containers/{id}`.
    pub async fn container_remove(
        &self,
        id: &str,
        opts: &ContainerRemoveOptions,
    ) -> Result<(), ClientError> {
        let mut q = Q::new();
        flag(&mut q, "force", opts.force);
        flag(&mut q, "v", opts.volumes);
        flag(&mut q, "link", opts.link);
        self.call(
            Method::DELETE,
            &format!("/containers/{}", escape_path(id)),
            &q,
            Body::Empty,
        )
        .await
    }

    /// `POST /containers/{id}/rename`.
    pub async fn container_rename(&self, id: &str, new_name: &str) -> Result<(), ClientError> {
        let q = [("name", new_name.to_string())];
        self.call(
            Method::POST,
            &format!("/containers/{}/rename", escape_path(id)),
            &q,
            Body::Empty,
        )
        .await
    }

    /// `GET /containers/{id}/logs`: frames, demultiplexed unless the container has a TTY
    /// (`tty`, from inspect; the `Content-Type` decides when the daemon says).
    pub async fn container_logs(
        &self,
        id: &str,
        opts: &LogsOptions,
        tty: bool,
    ) -> Result<FrameReader, ClientError> {
        let mut q = Q::new();
        flag(&mut q, "follow", opts.follow);
        flag(&mut q, "stdout", opts.stdout);
        flag(&mut q, "stderr", opts.stderr);
        flag(&mut q, "timestamps", opts.timestamps);
        flag(&mut q, "details", opts.details);
        if let Some(s) = opts.since {
            q.push(("since", s.to_string()));
        }
        if let Some(u) = opts.until {
            q.push(("until", u.to_string()));
        }
        q.push((
            "tail",
            opts.tail
                .map(|t| t.to_string())
                .unwrap_or_else(|| "all".to_string()),
        ));
        let resp = self
            .request(
                Method::GET,
                &format!("/containers/{}/logs", escape_path(id)),
                &q,
                &[],
                Body::Empty,
            )
            .await?;
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let multiplexed = ct.contains(MULTIPLEXED_STREAM) || !tty;
        Ok(FrameReader::from_stream(
            super::body_stream(resp.into_body()),
            multiplexed,
        ))
    }

    /// `GET /containers/{id}/top`.
    pub async fn container_top(
        &self,
        id: &str,
        ps_args: Option<&str>,
    ) -> Result<ContainerTopResponse, ClientError> {
        let q: Q = ps_args
            .map(|a| vec![("ps_args", a.to_string())])
            .unwrap_or_default();
        self.get_json(&format!("/containers/{}/top", escape_path(id)), &q)
            .await
    }

    /// `GET /containers/{id}/stats?stream=0`: one sample.
    pub async fn container_stats_once(
        &self,
        id: &str,
        one_shot: bool,
    ) -> Result<ContainerStats, ClientError> {
        let mut q: Q = vec![("stream", "0".to_string())];
        flag(&mut q, "one-shot", one_shot);
        self.get_json(&format!("/containers/{}/stats", escape_path(id)), &q)
            .await
    }

    /// `GET /containers/{id}/stats`: a sample about every second.
    pub async fn container_stats(
        &self,
        id: &str,
    ) -> Result<JsonLines<ContainerStats>, ClientError> {
        let path = format!("/containers/{}/stats", escape_path(id));
        self.json_lines(
            Method::GET,
            &path,
            &[("stream", "1".to_string())],
            &[],
            Body::Empty,
        )
        .await
    }

    /// `GET /containers/{id}/changes`.
    pub async fn container_changes(&self, id: &str) -> Result<Vec<FilesystemChange>, ClientError> {
        self.get_json(&format!("/containers/{}/changes", escape_path(id)), &[])
            .await
    }

    /// `GET /containers/{id}/export`: a tar stream.
    pub async fn container_export(&self, id: &str) -> Result<ByteStream, ClientError> {
        let (_, s) = self
            .bytes(
                Method::GET,
                &format!("/containers/{}/export", escape_path(id)),
                &[],
                Body::Empty,
            )
            .await?;
        Ok(s)
    }

    fn path_stat(headers: &http::HeaderMap) -> Result<PathStat, ClientError> {
        let raw = headers
            .get("x-docker-container-path-stat")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::server::decode_base64)
            .ok_or_else(|| {
                ClientError::Stream(
                    "the daemon sent no valid X-Docker-Container-Path-Stat header".into(),
                )
            })?;
        serde_json::from_slice(&raw).map_err(|source| ClientError::Decode {
            what: "X-Docker-Container-Path-Stat".into(),
            source,
        })
    }

    /// `HEAD /containers/{id}/archive`.
    pub async fn container_archive_stat(
        &self,
        id: &str,
        path: &str,
    ) -> Result<PathStat, ClientError> {
        let p = format!("/containers/{}/archive", escape_path(id));
        let resp = self
            .send(
                Method::HEAD,
                &p,
                &[("path", path.to_string())],
                &[],
                Body::Empty,
                true,
            )
            .await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let msg = if status.as_u16() == 404 {
                format!("Could not find the file {path} in container {id}")
            } else {
                status.canonical_reason().unwrap_or("error").to_string()
            };
            return Err(ClientError::Api {
                status: status.as_u16(),
                error: crate::error::ApiError::from_status(status, msg),
            });
        }
        Self::path_stat(resp.headers())
    }

    /// `GET /containers/{id}/archive`: the stat and a tar stream of `path`.
    pub async fn container_archive_get(
        &self,
        id: &str,
        path: &str,
    ) -> Result<(PathStat, ByteStream), ClientError> {
        let p = format!("/containers/{}/archive", escape_path(id));
        let (headers, s) = self
            .bytes(Method::GET, &p, &[("path", path.to_string())], Body::Empty)
            .await?;
        Ok((Self::path_stat(&headers)?, s))
    }

    /// `PUT /containers/{id}/archive`: extract a tar stream at `path`.
    pub async fn container_archive_put(
        &self,
        id: &str,
        path: &str,
        opts: &ArchivePutOptions,
        tar: ByteStream,
    ) -> Result<(), ClientError> {
        let mut q: Q = vec![("path", path.to_string())];
        flag(
            &mut q,
            "noOverwriteDirNonDir",
            opts.no_overwrite_dir_non_dir,
        );
        flag(&mut q, "copyUIDGID", opts.copy_uid_gid);
        let p = format!("/containers/{}/archive", escape_path(id));
        self.call(Method::PUT, &p, &q, Body::Stream(tar, "application/x-tar"))
            .await
    }

    /// `POST /containers/{id}/update`.
    pub async fn container_update(
        &self,
        id: &str,
        update: &ContainerUpdateRequest,
    ) -> Result<ContainerUpdateResponse, ClientError> {
        self.post_json(
            &format!("/containers/{}/update", escape_path(id)),
            &[],
            Body::json(update)?,
        )
        .await
    }

    /// `POST /containers/{id}/resize`.
    pub async fn container_resize(
        &self,
        id: &str,
        height: u32,
        width: u32,
    ) -> Result<(), ClientError> {
        let q = [("h", height.to_string()), ("w", width.to_string())];
        self.call(
            Method::POST,
            &format!("/containers/{}/resize", escape_path(id)),
            &q,
            Body::Empty,
        )
        .await
    }

    /// `POST /containers/{id}/attach` (hijacked). `tty` tells how to read output from a
    /// daemon older than API 1.42.
    pub async fn container_attach(
        &self,
        id: &str,
        opts: &AttachOptions,
        tty: bool,
    ) -> Result<HijackedStream, ClientError> {
        let mut q = Q::new();
        flag(&mut q, "stdin", opts.stdin);
        flag(&mut q, "stdout", opts.stdout);
        flag(&mut q, "stderr", opts.stderr);
        flag(&mut q, "stream", opts.stream);
        flag(&mut q, "logs", opts.logs);
        if let Some(k) = &opts.detach_keys {
            q.push(("detachKeys", k.to_string()));
        }
        self.hijack(
            &format!("/containers/{}/attach", escape_path(id)),
            &q,
            Body::Empty,
            !tty,
        )
        .await
    }

    /// `POST /containers/prune`.
    pub async fn container_prune(
        &self,
        filters: &Filters,
    ) -> Result<ContainerPruneResponse, ClientError> {
        let mut q = Q::new();
        filters_param(&mut q, filters);
        self.post_json("/containers/prune", &q, Body::Empty).await
    }

    /// `POST /commit`.
    pub async fn container_commit(&self, opts: &CommitOptions) -> Result<IdResponse, ClientError> {
        let mut q: Q = vec![("container", opts.container.clone())];
        for (k, v) in [
            ("repo", &opts.repo),
            ("tag", &opts.tag),
            ("comment", &opts.comment),
            ("author", &opts.author),
        ] {
            if !v.is_empty() {
                q.push((k, v.clone()));
            }
        }
        if !opts.pause {
            q.push(("pause", "0".to_string()));
        }
        for c in &opts.changes {
            q.push(("changes", c.clone()));
        }
        let body = match &opts.config {
            Some(c) => Body::json(c)?,
            None => Body::Empty,
        };
        self.post_json("/commit", &q, body).await
    }

    // ---- exec ----

    /// `POST /containers/{id}/exec`.
    pub async fn exec_create(
        &self,
        container: &str,
        config: &ExecConfig,
    ) -> Result<IdResponse, ClientError> {
        self.post_json(
            &format!("/containers/{}/exec", escape_path(container)),
            &[],
            Body::json(config)?,
        )
        .await
    }

    /// `POST /exec/{id}/start` attached (hijacked).
    pub async fn exec_start(
        &self,
        id: &str,
        config: &ExecStartConfig,
    ) -> Result<HijackedStream, ClientError> {
        let body = Body::json(&ExecStartConfig {
            detach: false,
            ..config.clone()
        })?;
        self.hijack(
            &format!("/exec/{}/start", escape_path(id)),
            &[],
            body,
            !config.tty,
        )
        .await
    }

    /// `POST /exec/{id}/start` detached.
    pub async fn exec_start_detached(
        &self,
        id: &str,
        config: &ExecStartConfig,
    ) -> Result<(), ClientError> {
        let body = Body::json(&ExecStartConfig {
            detach: true,
            ..config.clone()
        })?;
        self.call(
            Method::POST,
            &format!("/exec/{}/start", escape_path(id)),
            &[],
            body,
        )
        .await
    }

    /// `POST /exec/{id}/resize`.
    pub async fn exec_resize(&self, id: &str, height: u32, width: u32) -> Result<(), ClientError> {
        let q = [("h", height.to_string()), ("w", width.to_string())];
        self.call(
            Method::POST,
            &format!("/exec/{}/resize", escape_path(id)),
            &q,
            Body::Empty,
        )
        .await
    }

    /// `GET /exec/{id}/json`.
    pub async fn exec_inspect(&self, id: &str) -> Result<ExecInspect, ClientError> {
        self.get_json(&format!("/exec/{}/json", escape_path(id)), &[])
            .await
    }

    // ---- images ----

    /// `GET /images/json`.
    pub async fn image_list(
        &self,
        opts: &ImageListOptions,
    ) -> Result<Vec<ImageSummary>, ClientError> {
        let mut q = Q::new();
        flag(&mut q, "all", opts.all);
        flag(&mut q, "shared-size", opts.shared_size);
        flag(&mut q, "digests", opts.digests);
        flag(&mut q, "manifests", opts.manifests);
        filters_param(&mut q, &opts.filters);
        self.get_json("/images/json", &q).await
    }

    /// `GET /images/{name}/json`.
    pub async fn image_inspect(&self, name: &str) -> Result<ImageInspect, ClientError> {
        self.get_json(&format!("/images/{}/json", escape_path(name)), &[])
            .await
    }

    /// `GET /images/{name}/history`.
    pub async fn image_history(&self, name: &str) -> Result<Vec<ImageHistoryItem>, ClientError> {
        self.get_json(&format!("/images/{}/history", escape_path(name)), &[])
            .await
    }

    /// `POST /images/{name}/tag`.
    pub async fn image_tag(&self, name: &str, repo: &str, tag: &str) -> Result<(), ClientError> {
        let mut q: Q = vec![("repo", repo.to_string())];
        if !tag.is_empty() {
            q.push(("tag", tag.to_string()));
        }
        self.call(
            Method::POST,
            &format!("/images/{}/tag", escape_path(name)),
            &q,
            Body::Empty,
        )
        .await
    }

    /// `DELETE /images/{name}`.
    pub async fn image_remove(
        &self,
        name: &str,
        opts: &ImageRemoveOptions,
    ) -> Result<Vec<ImageDeleteItem>, ClientError> {
        let mut q = Q::new();
        flag(&mut q, "force", opts.force);
        flag(&mut q, "noprune", opts.noprune);
        let resp = self
            .request(
                Method::DELETE,
                &format!("/images/{}", escape_path(name)),
                &q,
                &[],
                Body::Empty,
            )
            .await?;
        super::decode("image remove", resp).await
    }

    /// `POST /images/prune`.
    pub async fn image_prune(&self, filters: &Filters) -> Result<ImagePruneResponse, ClientError> {
        let mut q = Q::new();
        filters_param(&mut q, filters);
        self.post_json("/images/prune", &q, Body::Empty).await
    }

    /// `POST /images/create?fromImage=`: progress; an error line becomes an error item.
    pub async fn image_pull(
        &self,
        opts: &ImagePullOptions,
    ) -> Result<JsonLines<JsonMessage>, ClientError> {
        let mut q: Q = vec![("fromImage", opts.from_image.clone())];
        if !opts.tag.is_empty() {
            q.push(("tag", opts.tag.clone()));
        }
        if let Some(p) = &opts.platform {
            q.push(("platform", p.clone()));
        }
        let h = [auth_header(&opts.auth)?];
        Ok(progress(
            self.json_lines(Method::POST, "/images/create", &q, &h, Body::Empty)
                .await?,
        ))
    }

    /// `POST /images/create?fromSrc=-`: import a root filesystem tarball.
    pub async fn image_import(
        &self,
        tar: ByteStream,
        repo: &str,
        tag: &str,
        message: &str,
        changes: &[String],
    ) -> Result<JsonLines<JsonMessage>, ClientError> {
        let mut q: Q = vec![("fromSrc", "-".to_string())];
        for (k, v) in [("repo", repo), ("tag", tag), ("message", message)] {
            if !v.is_empty() {
                q.push((k, v.to_string()));
            }
        }
        for c in changes {
            q.push(("changes", c.clone()));
        }
        let body = Body::Stream(tar, "application/x-tar");
        Ok(progress(
            self.json_lines(Method::POST, "/images/create", &q, &[], body)
                .await?,
        ))
    }

    /// `POST /images/create?fromSrc=URL`: the daemon downloads the tarball and imports it.
    pub async fn image_import_url(
        &self,
        url: &str,
        repo: &str,
        tag: &str,
        message: &str,
        changes: &[String],
    ) -> Result<JsonLines<JsonMessage>, ClientError> {
        let mut q: Q = vec![("fromSrc", url.to_string())];
        for (k, v) in [("repo", repo), ("tag", tag), ("message", message)] {
            if !v.is_empty() {
                q.push((k, v.to_string()));
            }
        }
        for c in changes {
            q.push(("changes", c.clone()));
        }
        Ok(progress(
            self.json_lines(Method::POST, "/images/create", &q, &[], Body::Empty)
                .await?,
        ))
    }

    /// `POST /images/{name}/push`.
    pub async fn image_push(
        &self,
        opts: &ImagePushOptions,
    ) -> Result<JsonLines<JsonMessage>, ClientError> {
        let mut q = Q::new();
        if !opts.tag.is_empty() {
            q.push(("tag", opts.tag.clone()));
        }
        let h = [auth_header(&opts.auth)?];
        let path = format!("/images/{}/push", escape_path(&opts.name));
        Ok(progress(
            self.json_lines(Method::POST, &path, &q, &h, Body::Empty)
                .await?,
        ))
    }

    /// `GET /images/get?names=`: a `docker save` tarball.
    pub async fn image_save(&self, names: &[String]) -> Result<ByteStream, ClientError> {
        let q: Vec<(&str, String)> = names.iter().map(|n| ("names", n.clone())).collect();
        let (_, s) = self
            .bytes(Method::GET, "/images/get", &q, Body::Empty)
            .await?;
        Ok(s)
    }

    /// `POST /images/load`.
    pub async fn image_load(
        &self,
        tar: ByteStream,
        quiet: bool,
    ) -> Result<JsonLines<JsonMessage>, ClientError> {
        let mut q = Q::new();
        flag(&mut q, "quiet", quiet);
        let body = Body::Stream(tar, "application/x-tar");
        Ok(progress(
            self.json_lines(Method::POST, "/images/load", &q, &[], body)
                .await?,
        ))
    }

    /// `POST /build` with a tar context.
    pub async fn build(
        &self,
        opts: &BuildOptions,
        context: ByteStream,
    ) -> Result<JsonLines<JsonMessage>, ClientError> {
        let mut q = Q::new();
        if !opts.dockerfile.is_empty() {
            q.push(("dockerfile", opts.dockerfile.clone()));
        }
        for t in &opts.tags {
            q.push(("t", t.clone()));
        }
        flag(&mut q, "q", opts.quiet);
        flag(&mut q, "nocache", opts.no_cache);
        flag(&mut q, "pull", opts.pull);
        flag(&mut q, "forcerm", opts.force_rm);
        if !opts.rm {
            q.push(("rm", "0".to_string()));
        }
        if !opts.build_args.is_empty() {
            q.push((
                "buildargs",
                serde_json::to_string(&opts.build_args).unwrap_or_default(),
            ));
        }
        if !opts.labels.is_empty() {
            q.push((
                "labels",
                serde_json::to_string(&opts.labels).unwrap_or_default(),
            ));
        }
        if !opts.cache_from.is_empty() {
            q.push((
                "cachefrom",
                serde_json::to_string(&opts.cache_from).unwrap_or_default(),
            ));
        }
        for (k, v) in [
            ("target", &opts.target),
            ("platform", &opts.platform),
            ("networkmode", &opts.network_mode),
        ] {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        }
        q.push((
            "version",
            if opts.version.is_empty() {
                "1".to_string()
            } else {
                opts.version.clone()
            },
        ));
        let mut headers = Vec::new();
        if !opts.registry_auth.is_empty() {
            let raw =
                serde_json::to_vec(&opts.registry_auth).map_err(|source| ClientError::Encode {
                    what: "X-Registry-Config".into(),
                    source,
                })?;
            headers.push((
                "x-registry-config",
                base64::engine::general_purpose::URL_SAFE.encode(raw),
            ));
        }
        let body = Body::Stream(context, "application/x-tar");
        Ok(progress(
            self.json_lines(Method::POST, "/build", &q, &headers, body)
                .await?,
        ))
    }

    // ---- volumes ----

    /// `GET /volumes`.
    pub async fn volume_list(&self, filters: &Filters) -> Result<VolumeListResponse, ClientError> {
        let mut q = Q::new();
        filters_param(&mut q, filters);
        self.get_json("/volumes", &q).await
    }

    /// `POST /volumes/create`.
    pub async fn volume_create(&self, req: &VolumeCreateRequest) -> Result<Volume, ClientError> {
        self.post_json("/volumes/create", &[], Body::json(req)?)
            .await
    }

    /// `GET /volumes/{name}`.
    pub async fn volume_inspect(&self, name: &str) -> Result<Volume, ClientError> {
        self.get_json(&format!("/volumes/{}", escape_path(name)), &[])
            .await
    }

    /// `DELETE /volumes/{name}`.
    pub async fn volume_remove(&self, name: &str, force: bool) -> Result<(), ClientError> {
        let mut q = Q::new();
        flag(&mut q, "force", force);
        self.call(
            Method::DELETE,
            &format!("/volumes/{}", escape_path(name)),
            &q,
            Body::Empty,
        )
        .await
    }

    /// `POST /volumes/prune`.
    pub async fn volume_prune(
        &self,
        filters: &Filters,
    ) -> Result<VolumePruneResponse, ClientError> {
        let mut q = Q::new();
        filters_param(&mut q, filters);
        self.post_json("/volumes/prune", &q, Body::Empty).await
    }

    // ---- networks ----

    /// `GET /networks`.
    pub async fn network_list(&self, filters: &Filters) -> Result<Vec<Network>, ClientError> {
        let mut q = Q::new();
        filters_param(&mut q, filters);
        self.get_json("/networks", &q).await
    }

    /// `GET /networks/{id}`.
    pub async fn network_inspect(&self, id: &str) -> Result<Network, ClientError> {
        self.get_json(&format!("/networks/{}", escape_path(id)), &[])
            .await
    }

    /// `POST /networks/create`.
    pub async fn network_create(
        &self,
        req: &NetworkCreateRequest,
    ) -> Result<NetworkCreateResponse, ClientError> {
        self.post_json("/networks/create", &[], Body::json(req)?)
            .await
    }

    /// `DELETE /networks/{id}`.
    pub async fn network_remove(&self, id: &str) -> Result<(), ClientError> {
        self.call(
            Method::DELETE,
            &format!("/networks/{}", escape_path(id)),
            &[],
            Body::Empty,
        )
        .await
    }

    /// `POST /networks/{id}/connect`.
    pub async fn network_connect(
        &self,
        id: &str,
        req: &NetworkConnectRequest,
    ) -> Result<(), ClientError> {
        self.call(
            Method::POST,
            &format!("/networks/{}/connect", escape_path(id)),
            &[],
            Body::json(req)?,
        )
        .await
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn network_disconnect(
        &self,
        id: &str,
        req: &NetworkDisconnectRequest,
    ) -> Result<(), ClientError> {
        self.call(
            Method::POST,
            &format!("/networks/{}/disconnect", escape_path(id)),
            &[],
            Body::json(req)?,
        )
        .await
    }

    /// `POST /networks/prune`.
    pub async fn network_prune(
        &self,
        filters: &Filters,
    ) -> Result<NetworkPruneResponse, ClientError> {
        let mut q = Q::new();
        filters_param(&mut q, filters);
        self.post_json("/networks/prune", &q, Body::Empty).await
    }
}
