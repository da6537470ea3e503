//! One client connection. The first request's head is read first: an attach or exec start
//! without an `Upgrade` header is the old hijack (answer `200 OK`, then the raw session on
//! the same connection), which hyper cannot do, so it is served here by hand. Everything
//! else — including the `Upgrade: tcp` hijack of current clients (101) — goes to hyper, with
//! the bytes already read put back in front.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::{stream, TryStreamExt};
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, BodyStream};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::http::{error, frames_body, streaming, Reply, Resp};
use super::{hijack, router, Shared};
use crate::error::ApiError;
use crate::stream::{ByteStream, RAW_STREAM};

/// Bytes of a request head read before giving up on sniffing (hyper then judges).
const MAX_SNIFF: usize = 64 * 1024;

/// Serves one connection until it closes. `fd` is the connection's socket (it lives as long
/// as `io`), used to see when a hijacking client has read the answer's head.
pub(crate) async fn serve<IO>(shared: Arc<Shared>, mut io: IO, fd: std::os::fd::RawFd)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = BytesMut::with_capacity(8192);
    loop {
        if head_end(&buf).is_some() || buf.len() >= MAX_SNIFF {
            break;
        }
        match io.read_buf(&mut buf).await {
            Ok(0) if buf.is_empty() => return,
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => return,
        }
    }
    if let Some(head) = head_end(&buf).and_then(|n| legacy_hijack(&buf[..n], n)) {
        serve_legacy(shared, io, buf, head, fd).await;
        return;
    }
    let io = Rewind {
        prefix: buf.freeze(),
        inner: io,
    };
    let svc = service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, req, fd).await) }
    });
    let _ = http1::Builder::new()
        .title_case_headers(true)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades()
        .await;
}

/// One request through hyper.
async fn handle(shared: Arc<Shared>, mut req: Request<Incoming>, fd: std::os::fd::RawFd) -> Resp {
    let on_upgrade = if req.headers().contains_key(UPGRADE) {
        Some(hyper::upgrade::on(&mut req))
    } else {
        None
    };
    let (parts, body) = req.into_parts();
    let body: ByteStream = Box::pin(
        BodyStream::new(body)
            .try_filter_map(|f| async move { Ok(f.into_data().ok()) })
            .map_err(|e| ApiError::Internal(format!("reading the request body: {e}"))),
    );
    let reply = router::dispatch(&shared, parts.method, parts.uri, parts.headers, body).await;
    let mut resp = match reply {
        Reply::Response(r) => r,
        Reply::Hijack(h) => match on_upgrade {
            Some(upgrade) => {
                let media = h.media_type;
                tokio::spawn(async move {
                    if let Ok(upgraded) = upgrade.await {
                        hijack::run(TokioIo::new(upgraded), Bytes::new(), h, Some(fd)).await;
                    }
                });
                let mut r = Response::new(super::http::empty());
                *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                let hd = r.headers_mut();
                hd.insert(CONTENT_TYPE, HeaderValue::from_static(media));
                hd.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
                hd.insert(UPGRADE, HeaderValue::from_static("tcp"));
                r
            }
            // A hijack asked for in the middle of a kept-alive connection, without an
            // upgrade: the input cannot be told from the next request, so the session is
            // output only (stdin gets end of file at once).
            None => {
                drop(h.stdin);
                streaming(RAW_STREAM, frames_body(h.session.output, h.session.tty))
            }
        },
    };
    shared.decorate(resp.headers_mut());
    resp
}

/// Where the request head ends (after the blank line).
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// A first request that is an old-style hijack.
struct LegacyHead {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    head_len: usize,
}

fn legacy_hijack(head: &[u8], head_len: usize) -> Option<LegacyHead> {
    let mut hs = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut hs);
    if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    if req.method? != "POST" {
        return None;
    }
    let uri: Uri = req.path?.parse().ok()?;
    if !router::is_hijack_path(uri.path()) {
        return None;
    }
    let mut headers = HeaderMap::new();
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        headers.append(name, value);
    }
    if headers.contains_key(UPGRADE) {
        return None;
    }
    Some(LegacyHead {
        method: Method::POST,
        uri,
        headers,
        head_len,
    })
}

/// The old hijack: the body is read by length, the answer is `200 OK` with the raw-stream
/// type, then the session runs on the same connection.
async fn serve_legacy<IO>(
    shared: Arc<Shared>,
    mut io: IO,
    mut buf: BytesMut,
    head: LegacyHead,
    fd: std::os::fd::RawFd,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut rest = buf.split_off(head.head_len);
    let chunked = head
        .headers
        .get(http::header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        let e = ApiError::InvalidParameter(
            "a chunked body is not supported on a hijacked request without Upgrade: send \
             Content-Length or the Upgrade: tcp header"
                .to_string(),
        );
        write_plain(&shared, &mut io, error(&e)).await;
        return;
    }
    let need = head
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if need > MAX_SNIFF {
        let e = ApiError::InvalidParameter("request body too large".to_string());
        write_plain(&shared, &mut io, error(&e)).await;
        return;
    }
    while rest.len() < need {
        match io.read_buf(&mut rest).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
    let body = rest.split_to(need).freeze();
    let leftover = rest.freeze();
    let body: ByteStream = Box::pin(stream::once(async move { Ok(body) }));
    let reply = router::dispatch(&shared, head.method, head.uri, head.headers, body).await;
    match reply {
        Reply::Hijack(h) => {
            let mut hd = HeaderMap::new();
            shared.decorate(&mut hd);
            let mut out = String::from("HTTP/1.1 200 OK\r\nContent-Type: ");
            out.push_str(RAW_STREAM);
            out.push_str("\r\n");
            push_headers(&mut out, &hd);
            out.push_str("\r\n");
            if io.write_all(out.as_bytes()).await.is_err() || io.flush().await.is_err() {
                return;
            }
            hijack::run(io, leftover, h, Some(fd)).await;
        }
        Reply::Response(r) => write_plain(&shared, &mut io, r).await,
    }
}

fn push_headers(out: &mut String, hd: &HeaderMap) {
    for (k, v) in hd {
        if let Ok(v) = v.to_str() {
            out.push_str(&title_case(k.as_str()));
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
    }
}

fn title_case(name: &str) -> String {
    name.split('-')
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Writes a complete response by hand and leaves the connection to be closed.
async fn write_plain<IO: AsyncWrite + Unpin>(shared: &Shared, io: &mut IO, mut r: Resp) {
    shared.decorate(r.headers_mut());
    let status = r.status();
    let (parts, body) = r.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    push_headers(&mut out, &parts.headers);
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let _ = io.write_all(out.as_bytes()).await;
    let _ = io.write_all(&body).await;
    let _ = io.flush().await;
    let _ = io.shutdown().await;
}

/// An IO with bytes already read put back in front.
struct Rewind<IO> {
    prefix: Bytes,
    inner: IO,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Rewind<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let chunk = self.prefix.split_to(n);
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Rewind<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
