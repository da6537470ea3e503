//! The typed Engine API client berth's CLI uses (and that works against dockerd too).
//!
//! [`Client::new`] takes `unix:///path`, `tcp://host:port` (or `http://`); [`Client::from_env`]
//! reads `BERTH_HOST`, then `DOCKER_HOST`, else [`DEFAULT_HOST`]; a version can be pinned with
//! `BERTH_API_VERSION`/`DOCKER_API_VERSION` or [`Client::with_version`], otherwise the first
//! request negotiates it as Docker clients do (ping, then the lower of ours and the daemon's).
//!
//! Low-level helpers ([`Client::get_json`], [`Client::post_json`], [`Client::json_lines`],
//! [`Client::bytes`], [`Client::hijack`]...) carry the typed operations in `ops`. Each request
//! uses its own connection (cheap on a unix socket, and required for hijacks anyway).
//! Daemon errors come back as [`ClientError::Api`] with the daemon's message.

mod error;
mod ops;
mod streams;

pub use error::ClientError;
pub use ops::{PendingWait, PingInfo};
pub use streams::{FrameReader, HijackedStream, InputWriter};

use std::io;
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, HOST, UPGRADE, USER_AGENT};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, BodyStream, Empty, Full, StreamBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::OnceCell;

use crate::error::{ApiError, ErrorResponse};
use crate::stream::{ByteStream, RAW_STREAM};
use crate::version::{ApiVersion, CLIENT_API_VERSION, MIN_API_VERSION};

/// Where the CLI looks for the daemon when nothing else is set.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// A daemon address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A unix socket path.
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

impl Host {
    /// Parses `unix:///path`, `tcp://host[:port]` (port 2375 by default), `http://host:port`,
    /// or a bare absolute path (a unix socket).
    pub fn parse(s: &str) -> Result<Host, ClientError> {
        let bad = || ClientError::InvalidHost(s.to_string());
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(bad());
            }
            return Ok(Host::Unix(PathBuf::from(p)));
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        let rest = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("http://"))
            .ok_or_else(bad)?
            .trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') {
            return Err(bad());
        }
        let has_port = match rest.rfind(']') {
            Some(b) => rest[b..].contains(':'),
            None => rest.contains(':'),
        };
        Ok(Host::Tcp(if has_port {
            rest.to_string()
        } else {
            format!("{rest}:2375")
        }))
    }

    /// The host as a URL (`unix:///path`, `tcp://host:port`).
    pub fn url(&self) -> String {
        match self {
            Host::Unix(p) => format!("unix://{}", p.display()),
            Host::Tcp(a) => format!("tcp://{a}"),
        }
    }
}

/// A request body for the low-level helpers.
pub enum Body {
    /// No body.
    Empty,
    /// A JSON document (sent with `Content-Type: application/json`).
    Json(Vec<u8>),
    /// Raw bytes with a content type (`application/x-tar`...).
    Bytes(Bytes, &'static str),
    /// A stream with a content type (uploads: archives, tarballs, build contexts).
    Stream(ByteStream, &'static str),
}

impl Body {
    /// A JSON body from any serializable value.
    pub fn json<T: Serialize>(v: &T) -> Result<Body, ClientError> {
        serde_json::to_vec(v)
            .map(Body::Json)
            .map_err(|source| ClientError::Encode {
                what: "a request".to_string(),
                source,
            })
    }
}

type ReqBody = UnsyncBoxBody<Bytes, io::Error>;

/// Characters escaped in path segments (names keep `/`, `:` and `@`).
const PATH_ESCAPE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'?')
    .add(b'<')
    .add(b'>');

/// Escapes a name for use in a request path.
pub fn escape_path(name: &str) -> String {
    utf8_percent_encode(name, PATH_ESCAPE).to_string()
}

/// An Engine API client.
#[derive(Debug)]
pub struct Client {
    host: Host,
    pinned: Option<ApiVersion>,
    negotiated: OnceCell<ApiVersion>,
    user_agent: String,
}

impl Client {
    /// A client of the daemon at `host` (see [`Host::parse`]). Nothing is contacted yet.
    pub fn new(host: &str) -> Result<Client, ClientError> {
        Ok(Client {
            host: Host::parse(host)?,
            pinned: None,
            negotiated: OnceCell::new(),
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
        })
    }

    /// A client from the environment: `BERTH_HOST`, else `DOCKER_HOST`, else
    /// [`DEFAULT_HOST`]; `BERTH_API_VERSION`/`DOCKER_API_VERSION` pin the version.
    pub fn from_env() -> Result<Client, ClientError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let host = var("BERTH_HOST")
            .or_else(|| var("DOCKER_HOST"))
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let mut c = Client::new(&host)?;
        if let Some(v) = var("BERTH_API_VERSION").or_else(|| var("DOCKER_API_VERSION")) {
            let v = v
                .parse::<ApiVersion>()
                .map_err(|_| ClientError::InvalidHost(format!("API version {v:?}")))?;
            c.pinned = Some(v);
        }
        Ok(c)
    }

    /// Pins the API version (no negotiation).
    pub fn with_version(mut self, v: ApiVersion) -> Client {
        self.pinned = Some(v);
        self
    }

    /// Sets the `User-Agent`.
    pub fn with_user_agent(mut self, ua: impl Into<String>) -> Client {
        self.user_agent = ua.into();
        self
    }

    /// The daemon's address.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The API version requests use: pinned, or negotiated once (ping, then the lower of
    /// [`CLIENT_API_VERSION`] and the daemon's `Api-Version`; 1.24 when it sends none).
    pub async fn api_version(&self) -> Result<ApiVersion, ClientError> {
        if let Some(v) = self.pinned {
            return Ok(v);
        }
        self.negotiated
            .get_or_try_init(|| async {
                let ping = self.ping().await?;
                let server = ping.api_version.unwrap_or(MIN_API_VERSION);
                if server < MIN_API_VERSION {
                    return Err(ClientError::UnsupportedVersion {
                        server,
                        min: MIN_API_VERSION,
                    });
                }
                Ok(ApiVersion::negotiate(CLIENT_API_VERSION, server))
            })
            .await
            .copied()
    }

    async fn connect(
        &self,
    ) -> Result<hyper::client::conn::http1::SendRequest<ReqBody>, ClientError> {
        let connect_err = |source| ClientError::Connect {
            host: self.host.url(),
            source,
        };
        let http_err = |source| ClientError::Http {
            host: self.host.url(),
            source,
        };
        macro_rules! handshake {
            ($stream:expr) => {{
                let (sender, conn) = hyper::client::conn::http1::Builder::new()
                    .title_case_headers(true)
                    .handshake(TokioIo::new($stream))
                    .await
                    .map_err(http_err)?;
                tokio::spawn(async move {
                    let _ = conn.with_upgrades().await;
                });
                sender
            }};
        }
        Ok(match &self.host {
            Host::Unix(p) => handshake!(UnixStream::connect(p).await.map_err(connect_err)?),
            Host::Tcp(a) => {
                let s = TcpStream::connect(a.as_str()).await.map_err(connect_err)?;
                let _ = s.set_nodelay(true);
                handshake!(s)
            }
        })
    }

    /// The full request target: `/v<version><path>?<query>` (unversioned when `versioned`
    /// is false, as for `/_ping`).
    async fn target(
        &self,
        path: &str,
        query: &[(&str, String)],
        versioned: bool,
    ) -> Result<String, ClientError> {
        let mut t = if versioned {
            let v = self.api_version().await?;
            format!("/v{v}{path}")
        } else {
            path.to_string()
        };
        if !query.is_empty() {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                ser.append_pair(k, v);
            }
            t.push('?');
            t.push_str(&ser.finish());
        }
        Ok(t)
    }

    /// Sends one request and returns the response whatever its status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&str, String)],
        body: Body,
        versioned: bool,
    ) -> Result<Response<Incoming>, ClientError> {
        let target = self.target(path, query, versioned).await?;
        self.send_raw(method, target, headers, body).await
    }

    /// Sends one request to a complete target (path and query), whatever the answer's status.
    pub(crate) async fn send_raw(
        &self,
        method: Method,
        target: String,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<Response<Incoming>, ClientError> {
        let host = match &self.host {
            Host::Unix(_) => "api.moby.localhost".to_string(),
            Host::Tcp(a) => a.clone(),
        };
        let mut b = Request::builder().method(method).uri(target);
        let h = b
            .headers_mut()
            .ok_or_else(|| ClientError::InvalidHost(self.host.url()))?;
        h.insert(
            HOST,
            HeaderValue::from_str(&host).map_err(|_| ClientError::InvalidHost(host.clone()))?,
        );
        if let Ok(ua) = HeaderValue::from_str(&self.user_agent) {
            h.insert(USER_AGENT, ua);
        }
        for (k, v) in headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                h.insert(k, v);
            }
        }
        let body: ReqBody = match body {
            Body::Empty => Empty::new().map_err(|e| match e {}).boxed_unsync(),
            Body::Json(v) => {
                h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Full::new(Bytes::from(v))
                    .map_err(|e| match e {})
                    .boxed_unsync()
            }
            Body::Bytes(v, ct) => {
                h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
                Full::new(v).map_err(|e| match e {}).boxed_unsync()
            }
            Body::Stream(s, ct) => {
                h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
                let s = s.map_err(io::Error::other).map_ok(http_body::Frame::data);
                StreamBody::new(s).boxed_unsync()
            }
        };
        let req = b
            .body(body)
            .map_err(|_| ClientError::InvalidHost(self.host.url()))?;
        let mut sender = self.connect().await?;
        sender
            .send_request(req)
            .await
            .map_err(|source| ClientError::Http {
                host: self.host.url(),
                source,
            })
    }

    /// Turns an error status into [`ClientError::Api`] (reading Docker's message).
    async fn check(&self, resp: Response<Incoming>) -> Result<Response<Incoming>, ClientError> {
        let status = resp.status();
        // As Docker's client: below 400 is not an error (304 "already started" included).
        if status.as_u16() < 400 {
            return Ok(resp);
        }
        let body = read_all(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let message = match serde_json::from_slice::<ErrorResponse>(&body) {
            Ok(e) => e.message,
            Err(_) => {
                let t = String::from_utf8_lossy(&body).trim().to_string();
                if t.is_empty() {
                    status.canonical_reason().unwrap_or("error").to_string()
                } else {
                    t
                }
            }
        };
        Err(ClientError::Api {
            status: status.as_u16(),
            error: ApiError::from_status(status, message),
        })
    }

    /// Sends a versioned request and fails on an error status.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<Response<Incoming>, ClientError> {
        let resp = self.send(method, path, query, headers, body, true).await?;
        self.check(resp).await
    }

    /// `GET` and decode JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        let resp = self
            .request(Method::GET, path, query, &[], Body::Empty)
            .await?;
        decode(path, resp).await
    }

    /// `POST` a body and decode the JSON answer.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: Body,
    ) -> Result<T, ClientError> {
        let resp = self.request(Method::POST, path, query, &[], body).await?;
        decode(path, resp).await
    }

    /// A request whose answer body is not needed (204s, 201s without body...).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Body,
    ) -> Result<(), ClientError> {
        let resp = self.request(method, path, query, &[], body).await?;
        let _ = read_all(resp.into_body(), 1 << 20).await;
        Ok(())
    }

    /// A request answered with JSON lines (events, stats, progress): each line decoded as
    /// it arrives.
    pub async fn json_lines<T: DeserializeOwned + Send + 'static>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<streams::JsonLines<T>, ClientError> {
        let resp = self.request(method, path, query, headers, body).await?;
        Ok(streams::json_lines(path.to_string(), resp.into_body()))
    }

    /// A request answered with bytes (export, save, archives), as a stream.
    pub async fn bytes(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Body,
    ) -> Result<(http::HeaderMap, ByteStream), ClientError> {
        let resp = self.request(method, path, query, &[], body).await?;
        let (parts, body) = resp.into_parts();
        Ok((parts.headers, body_stream(body)))
    }

    /// A hijacked request (attach, exec start): sends `Upgrade: tcp`, expects 101 and
    /// returns the connection, multiplexed or raw as the daemon's `Content-Type` says (or,
    /// for daemons older than API 1.42 which always say raw, as `multiplexed_hint` says).
    pub async fn hijack(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: Body,
        multiplexed_hint: bool,
    ) -> Result<HijackedStream, ClientError> {
        let headers = [
            (CONNECTION.as_str(), "Upgrade".to_string()),
            (UPGRADE.as_str(), "tcp".to_string()),
        ];
        let resp = self
            .send(Method::POST, path, query, &headers, body, true)
            .await?;
        let resp = self.check(resp).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(ClientError::NotUpgraded {
                what: path.to_string(),
                status: resp.status().as_u16(),
            });
        }
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(RAW_STREAM)
            .to_string();
        let multiplexed = if ct.contains("multiplexed") {
            true
        } else {
            multiplexed_hint
        };
        let upgraded = hyper::upgrade::on(resp)
            .await
            .map_err(|source| ClientError::Http {
                host: self.host.url(),
                source,
            })?;
        Ok(HijackedStream::new(TokioIo::new(upgraded), multiplexed))
    }
}

/// Reads a whole body (at most `limit` bytes).
async fn read_all(body: Incoming, limit: usize) -> Result<Bytes, ClientError> {
    let mut s = body_stream(body);
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| ClientError::Stream(e.message().to_string()))?;
        if out.len() + chunk.len() > limit {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// Decodes a JSON answer.
async fn decode<T: DeserializeOwned>(
    what: &str,
    resp: Response<Incoming>,
) -> Result<T, ClientError> {
    let body = read_all(resp.into_body(), 256 << 20).await?;
    serde_json::from_slice(&body).map_err(|source| ClientError::Decode {
        what: what.to_string(),
        source,
    })
}

/// A response body as a [`ByteStream`].
fn body_stream(body: Incoming) -> ByteStream {
    Box::pin(
        BodyStream::new(body)
            .try_filter_map(|f| async move { Ok(f.into_data().ok()) })
            .map_err(|e| ApiError::Internal(format!("reading from the daemon: {e}"))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            Host::parse("unix:///run/x.sock").unwrap(),
            Host::Unix("/run/x.sock".into())
        );
        assert_eq!(
            Host::parse("/run/x.sock").unwrap(),
            Host::Unix("/run/x.sock".into())
        );
        assert_eq!(
            Host::parse("tcp://127.0.0.1:2375").unwrap(),
            Host::Tcp("127.0.0.1:2375".into())
        );
        assert_eq!(
            Host::parse("tcp://localhost").unwrap(),
            Host::Tcp("localhost:2375".into())
        );
        assert_eq!(
            Host::parse("http://[::1]:80/").unwrap(),
            Host::Tcp("[::1]:80".into())
        );
        assert_eq!(
            Host::parse("tcp://[::1]").unwrap(),
            Host::Tcp("[::1]:2375".into())
        );
        assert!(Host::parse("ssh://x").is_err());
        assert!(Host::parse("unix://").is_err());
        assert_eq!(escape_path("localhost:5000/a b"), "localhost:5000/a%20b");
    }
}
