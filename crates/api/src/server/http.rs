//! HTTP plumbing of the server: the request as handlers see it ([`Req`]: API version, query,
//! headers, body stream), what they answer ([`Reply`]: a response or a hijacked session),
//! query parsing with Docker's rules, and response builders (JSON, Docker errors, chunked
//! streams of bytes, frames and JSON lines).

use std::convert::Infallible;
use std::io;

use bytes::{Bytes, BytesMut};
use futures_util::{stream, Stream, StreamExt, TryStreamExt};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::backend::AttachOutput;
use crate::error::{ApiError, ErrorResponse};
use crate::stream::{encode_frame, ByteStream, FrameStream, JsonStream, StdStream, StdinFeeder};
use crate::types::JsonMessage;
use crate::version::ApiVersion;

/// The body type of every response.
pub(crate) type RespBody = UnsyncBoxBody<Bytes, io::Error>;
/// A response.
pub(crate) type Resp = Response<RespBody>;

/// Largest JSON request body accepted (a create body is a few KiB).
const MAX_JSON_BODY: usize = 32 << 20;

/// A request as handlers see it.
pub(crate) struct Req {
    /// Method.
    pub method: Method,
    /// The API version asked for (the path prefix, or the server's maximum).
    pub api: ApiVersion,
    /// Query parameters.
    pub query: Query,
    /// Headers.
    pub headers: HeaderMap,
    /// The body, taken once (in a mutex only so that `&Req` is `Send`).
    pub body: std::sync::Mutex<Option<ByteStream>>,
}

impl Req {
    /// Takes the body stream (empty when already taken).
    pub fn take_body(&mut self) -> ByteStream {
        let slot = match self.body.get_mut() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        slot.take().unwrap_or_else(|| Box::pin(stream::empty()))
    }

    /// The declared body length, when the client sent `Content-Length`.
    pub fn content_length(&self) -> Option<u64> {
        self.headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    }

    /// True when the body is chunked (length unknown).
    pub fn chunked(&self) -> bool {
        self.headers
            .get(http::header::TRANSFER_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    /// A header as a string (empty when absent or not UTF-8).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Reads the whole body.
    pub async fn body_bytes(&mut self) -> Result<Bytes, ApiError> {
        let mut body = self.take_body();
        let mut out = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if out.len() + chunk.len() > MAX_JSON_BODY {
                return Err(ApiError::InvalidParameter(format!(
                    "request body is larger than {MAX_JSON_BODY} bytes"
                )));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }

    /// Docker's `CheckForJSON`: a body with a Content-Type other than JSON is refused.
    pub fn check_json_content_type(&self) -> Result<(), ApiError> {
        let ct = self.header("content-type");
        let has_body = self.chunked() || self.content_length().is_some_and(|l| l > 0);
        if ct.is_empty() || !has_body {
            return Ok(());
        }
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if mime == "application/json" {
            Ok(())
        } else {
            Err(ApiError::InvalidParameter(format!(
                "unsupported Content-Type header ({ct}): must be 'application/json'"
            )))
        }
    }

    /// Parses the body as JSON; None when the body is empty (or only whitespace).
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ApiError> {
        let bytes = self.body_bytes().await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ApiError::InvalidParameter(format!("invalid JSON in request body: {e}")))
    }
}

/// What a handler answers.
pub(crate) enum Reply {
    /// An HTTP response.
    Response(Resp),
    /// Take over the connection (attach, exec start).
    Hijack(Hijack),
}

impl From<Resp> for Reply {
    fn from(r: Resp) -> Reply {
        Reply::Response(r)
    }
}

/// A session to run on a hijacked connection.
pub(crate) struct Hijack {
    /// `Content-Type` of the 101 answer.
    pub media_type: &'static str,
    /// The backend's side.
    pub session: AttachOutput,
    /// Where the client's input goes (None: input is read and discarded).
    pub stdin: Option<StdinFeeder>,
}

/// Query parameters, in order (Go's `Form.Get` returns the first of repeated keys).
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Query {
        Query(
            raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        )
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, empty when absent.
    pub fn str(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// The first value of `key` when present and not empty.
    pub fn opt(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !v.is_empty()).map(str::to_string)
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's `BoolValue`: false when absent or one of `""`, `0`, `no`, `false`, `none`.
    pub fn bool(&self, key: &str) -> bool {
        let v = self.str(key).trim().to_ascii_lowercase();
        !matches!(v.as_str(), "" | "0" | "no" | "false" | "none")
    }

    /// Docker's `BoolValueOrDefault`: `default` when the key is absent.
    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(_) => self.bool(key),
        }
    }

    /// An integer parameter; empty or absent is None, anything unparsable a 400.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::InvalidParameter(format!(
                    "invalid value for {key}: strconv.Atoi: parsing {v:?}: invalid syntax"
                ))
            }),
        }
    }

    /// A required dimension (`h`, `w` of resize).
    pub fn dimension(&self, key: &str) -> Result<u32, ApiError> {
        let v = self.str(key).trim();
        v.parse::<u32>().map_err(|_| {
            ApiError::InvalidParameter(format!(
                "invalid value for {key}: strconv.Atoi: parsing {v:?}: invalid syntax"
            ))
        })
    }
}

/// An empty body.
pub(crate) fn empty() -> RespBody {
    Empty::new()
        .map_err(|e: Infallible| match e {})
        .boxed_unsync()
}

/// A body of known bytes.
pub(crate) fn full(b: impl Into<Bytes>) -> RespBody {
    Full::new(b.into())
        .map_err(|e: Infallible| match e {})
        .boxed_unsync()
}

/// A response with `status` and no body.
pub(crate) fn status(status: StatusCode) -> Resp {
    let mut r = Response::new(empty());
    *r.status_mut() = status;
    r
}

/// 204 No Content.
pub(crate) fn no_content() -> Resp {
    status(StatusCode::NO_CONTENT)
}

/// A JSON response, encoded as Go's `json.Encoder` does (trailing newline).
pub(crate) fn json<T: Serialize>(code: StatusCode, value: &T) -> Resp {
    match serde_json::to_vec(value) {
        Ok(mut v) => {
            v.push(b'\n');
            let mut r = Response::new(full(v));
            *r.status_mut() = code;
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(e) => error(&ApiError::Internal(format!("encoding the response: {e}"))),
    }
}

/// Docker's error response: the status of the error's class and `{"message": ...}`;
/// 304 without a body.
pub(crate) fn error(e: &ApiError) -> Resp {
    if let ApiError::NotModified(_) = e {
        return status(StatusCode::NOT_MODIFIED);
    }
    json(
        e.status(),
        &ErrorResponse {
            message: e.message().to_string(),
        },
    )
}

/// Sets the `Content-Type`.
pub(crate) fn with_content_type(mut r: Resp, ct: &'static str) -> Resp {
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

/// A 200 response streaming `body` (chunked), with `content_type`.
pub(crate) fn streaming(content_type: &'static str, body: RespBody) -> Resp {
    with_content_type(Response::new(body), content_type)
}

/// A body from a stream of bytes. An error mid-stream aborts the response (the client sees
/// a truncated chunked body), as Docker does.
pub(crate) fn bytes_body(s: ByteStream) -> RespBody {
    let s = s.map_err(io::Error::other).map_ok(http_body::Frame::data);
    BodyExt::boxed_unsync(StreamBody::new(s))
}

/// A body from a stream of output frames: raw when `tty`, else multiplexed. An error
/// mid-stream is written as a last stderr frame (raw text with a TTY).
pub(crate) fn frames_body(s: FrameStream, tty: bool) -> RespBody {
    let s = frames_to_bytes(s, tty).map(|b| Ok::<_, io::Error>(http_body::Frame::data(b)));
    BodyExt::boxed_unsync(StreamBody::new(s))
}

/// The byte encoding of output frames; an error becomes a last `Error: ...` frame.
pub(crate) fn frames_to_bytes(s: FrameStream, tty: bool) -> impl Stream<Item = Bytes> + Send {
    stream::unfold((s, false), move |(mut s, done)| async move {
        if done {
            return None;
        }
        match s.next().await? {
            Ok(f) if tty => Some((f.data, (s, false))),
            Ok(f) => Some((encode_frame(f.stream, &f.data), (s, false))),
            Err(e) => {
                let text = format!("Error: {}\r\n", e.message());
                let b = if tty {
                    Bytes::from(text)
                } else {
                    encode_frame(StdStream::Stderr, text.as_bytes())
                };
                Some((b, (s, true)))
            }
        }
    })
}

/// A body of JSON lines. With `in_band_errors` an error becomes a last
/// `{"errorDetail":...,"error":...}` line (progress streams); otherwise it ends the stream.
pub(crate) fn json_lines<T: Serialize + Send + 'static>(
    s: JsonStream<T>,
    in_band_errors: bool,
) -> RespBody {
    let lines = stream::unfold((s, false), move |(mut s, done)| async move {
        if done {
            return None;
        }
        match s.next().await {
            None => None,
            Some(Ok(v)) => {
                let mut line = serde_json::to_vec(&v).unwrap_or_default();
                line.push(b'\n');
                Some((Bytes::from(line), (s, false)))
            }
            Some(Err(e)) if in_band_errors => {
                let mut line =
                    serde_json::to_vec(&JsonMessage::error(e.message())).unwrap_or_default();
                line.push(b'\n');
                Some((Bytes::from(line), (s, true)))
            }
            Some(Err(_)) => None,
        }
    });
    BodyExt::boxed_unsync(StreamBody::new(
        lines.map(|b| Ok::<_, io::Error>(http_body::Frame::data(b))),
    ))
}

/// Waits for the first item of a progress stream: an error there becomes an HTTP error
/// (nothing was sent yet); otherwise the stream is returned whole.
pub(crate) async fn peek_first<T: Send + 'static>(
    mut s: JsonStream<T>,
) -> Result<JsonStream<T>, ApiError> {
    match s.next().await {
        None => Ok(Box::pin(stream::empty())),
        Some(Err(e)) => Err(e),
        Some(Ok(first)) => Ok(Box::pin(stream::once(async move { Ok(first) }).chain(s))),
    }
}
