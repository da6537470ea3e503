//! Test harness: a server on a fresh unix socket (in a temp dir) serving the fake backend,
//! and a raw HTTP helper for checking exact bytes on the wire.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use api::{Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::oneshot;

use crate::fake::Fake;

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub fake: Arc<Fake>,
    pub tcp: Option<std::net::SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), api::ServerError>>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("berth-api-test")
            .tempdir()
            .unwrap();
        let sock = dir.path().join("api.sock");
        let fake = Fake::new();
        let mut cfg = ServerConfig {
            unix_socket: Some(sock.clone()),
            ..Default::default()
        };
        tweak(&mut cfg);
        let server = Server::bind(cfg, fake.clone()).await.unwrap();
        let tcp = server.tcp_addr();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server.serve(async {
            let _ = rx.await;
        }));
        TestServer {
            dir,
            sock,
            fake,
            tcp,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    pub fn client(&self) -> api::Client {
        api::Client::new(&self.host()).unwrap()
    }

    /// Stops accepting and waits for the socket to be removed.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A parsed raw HTTP response.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_string())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends `method path` with optional extra headers and body on a fresh connection, reads
/// the whole answer (the connection is closed after it).
pub async fn raw(
    sock: &std::path::Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Raw {
    let mut s = UnixStream::connect(sock).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut all = req.into_bytes();
    all.extend_from_slice(body);
    // The server may answer (and close) before reading a body it refuses.
    let _ = s.write_all(&all).await;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    assert!(
        out.windows(4).any(|w| w == b"\r\n\r\n"),
        "{method} {path}: incomplete answer {:?}",
        String::from_utf8_lossy(&out)
    );
    parse_raw(&out, method == "HEAD")
}

pub fn parse_raw(out: &[u8], head_only: bool) -> Raw {
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of head")
        + 4;
    let head = String::from_utf8_lossy(&out[..end]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut r = Raw {
        status,
        head,
        body: Vec::new(),
    };
    if head_only {
        return r;
    }
    let rest = &out[end..];
    if r.header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        let mut i = 0;
        loop {
            let nl = rest[i..].windows(2).position(|w| w == b"\r\n").unwrap() + i;
            let n = usize::from_str_radix(std::str::from_utf8(&rest[i..nl]).unwrap().trim(), 16)
                .unwrap();
            if n == 0 {
                break;
            }
            r.body.extend_from_slice(&rest[nl + 2..nl + 2 + n]);
            i = nl + 2 + n + 2;
        }
    } else {
        r.body = rest.to_vec();
    }
    r
}
