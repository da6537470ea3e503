//! Test fixtures: a real registry (Debian's `docker-registry`) on a free loopback port with
//! its storage in a temp dir (plain, htpasswd- or token-protected), a tiny HTTP server (token
//! server, fake registries), and tiny images built from /bin/busybox.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use image::content::ContentStore;
use image::digest::Digest;
use registry::manifest::{self, Manifest};
use registry::{Progress, ProgressMessage};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "s3cret-pass";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the registry authenticates.
pub enum RegistryAuth {
    None,
    Htpasswd,
    /// Token auth with the given token server.
    Token(Arc<TokenServer>),
}

/// A running `docker-registry serve`, killed on drop.
pub struct Registry {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub token_server: Option<Arc<TokenServer>>,
}

impl Registry {
    pub fn start(auth: RegistryAuth) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let mut auth_yaml = String::new();
        let mut token_server = None;
        match auth {
            RegistryAuth::None => {}
            RegistryAuth::Htpasswd => {
                let hash = bcrypt::hash_with_result(PASSWORD, 4)
                    .unwrap()
                    .format_for_version(bcrypt::Version::TwoY);
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, format!("{USER}:{hash}\n")).unwrap();
                auth_yaml = format!(
                    "auth:\n  htpasswd:\n    realm: berth-test-realm\n    path: {}\n",
                    htpasswd.display()
                );
            }
            RegistryAuth::Token(ts) => {
                let bundle = dir.path().join("token-ca.pem");
                std::fs::write(&bundle, &ts.cert_pem).unwrap();
                auth_yaml = format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    ts.http.port,
                    TokenServer::SERVICE,
                    TokenServer::ISSUER,
                    bundle.display()
                );
                token_server = Some(ts);
            }
        }
        // A few tries in case another test grabs the port between probe and bind.
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n{auth_yaml}",
                storage.display()
            );
            let cfg_path = dir.path().join("config.yml");
            std::fs::write(&cfg_path, config).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("docker-registry must be installed");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if http_status(port, "/v2/").is_some() {
                    return Registry {
                        child,
                        dir,
                        port,
                        token_server,
                    };
                }
                std::thread::sleep(Duration::from_millis(30));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
        panic!("docker-registry did not start: {log}");
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where the registry keeps a blob's bytes.
    pub fn blob_data(&self, d: &Digest) -> PathBuf {
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&d.hex()[..2])
            .join(d.hex())
            .join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status of a plain GET to 127.0.0.1:port.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// ---------------------------------------------------------------------------------------
// A tiny HTTP/1.1 server.

pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Response {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

pub struct HttpServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub requests: Arc<Mutex<Vec<String>>>,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(h, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl HttpServer {
    pub fn start(handler: Handler) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (stop2, reqs2) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let _ = serve_one(conn, &handler, &reqs2);
            }
        });
        HttpServer {
            port,
            stop,
            thread: Some(thread),
            requests,
        }
    }
}

fn serve_one(conn: TcpStream, handler: &Handler, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    // A TLS ClientHello (record type 0x16): this server only speaks plain HTTP, hang up.
    if reader.fill_buf()?.first() == Some(&0x16) {
        return Ok(());
    }
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let req = Request {
        method,
        path: path.to_string(),
        query,
        headers,
    };
    log.lock()
        .unwrap()
        .push(format!("{} {}", req.method, target));
    let resp = handler(&req);
    let mut out = conn;
    write!(out, "HTTP/1.1 {} X\r\n", resp.status)?;
    for (k, v) in &resp.headers {
        write!(out, "{k}: {v}\r\n")?;
    }
    if req.method == "HEAD" {
        write!(out, "Connection: close\r\n\r\n")?;
    } else {
        write!(
            out,
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            resp.body.len()
        )?;
        out.write_all(&resp.body)?;
    }
    out.flush()
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The token server: issues ES256 JWTs signed by a self-signed certificate the registry
// trusts. alice/s3cret-pass gets every action asked for; anonymous callers get a token
// with no access; wrong passwords get 401.

pub struct TokenServer {
    pub http: HttpServer,
    pub cert_pem: String,
}

#[derive(serde::Serialize)]
struct Access {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    actions: Vec<String>,
}

#[derive(serde::Serialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<Access>,
}

impl TokenServer {
    pub const SERVICE: &'static str = "berth-test-registry";
    pub const ISSUER: &'static str = "berth-test-issuer";

    pub fn start() -> Arc<TokenServer> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["berth-test-token".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let cert_pem = cert.pem();
        let cert_der_b64 = base64::engine::general_purpose::STANDARD.encode(cert.der());
        let enc = jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
        let handler: Handler = Arc::new(move |req: &Request| {
            if req.path != "/token" {
                return Response::new(404, "not found");
            }
            let user = match req.header("authorization") {
                None => None,
                Some(h) => {
                    let b = h.strip_prefix("Basic ").unwrap_or("");
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .unwrap_or_default();
                    let s = String::from_utf8_lossy(&raw).into_owned();
                    if s != format!("{USER}:{PASSWORD}") {
                        return Response::new(
                            401,
                            r#"{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}"#,
                        )
                        .header("Content-Type", "application/json");
                    }
                    Some(USER.to_string())
                }
            };
            let mut access = Vec::new();
            if user.is_some() {
                for (k, v) in &req.query {
                    if k != "scope" {
                        continue;
                    }
                    for scope in v.split(' ') {
                        let mut it = scope.splitn(3, ':');
                        let (Some(kind), Some(name), Some(actions)) =
                            (it.next(), it.next(), it.next())
                        else {
                            continue;
                        };
                        access.push(Access {
                            kind: kind.into(),
                            name: name.into(),
                            actions: actions.split(',').map(String::from).collect(),
                        });
                    }
                }
            }
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let claims = Claims {
                iss: TokenServer::ISSUER.into(),
                sub: user.unwrap_or_default(),
                aud: TokenServer::SERVICE.into(),
                exp: now + 300,
                nbf: now - 10,
                iat: now,
                jti: format!("{now}-{}", rand_u64()),
                access,
            };
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
            header.x5c = Some(vec![cert_der_b64.clone()]);
            let token = jsonwebtoken::encode(&header, &claims, &enc).unwrap();
            Response::new(
                200,
                serde_json::json!({"token": token, "access_token": token, "expires_in": 300})
                    .to_string(),
            )
            .header("Content-Type", "application/json")
        });
        Arc::new(TokenServer {
            http: HttpServer::start(handler),
            cert_pem,
        })
    }
}

fn rand_u64() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    t ^ (std::process::id() as u64) << 32
}

// ---------------------------------------------------------------------------------------
// Images.

/// The busybox layer: (tar.gz bytes, diff ID).
pub fn busybox_layer() -> &'static (Vec<u8>, Digest) {
    static L: OnceLock<(Vec<u8>, Digest)> = OnceLock::new();
    L.get_or_init(|| {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        b.append_data(&mut h, "bin/", std::io::empty()).unwrap();
        let data = std::fs::read("/bin/busybox").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, "bin/busybox", &data[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(0);
        b.append_link(&mut h, "bin/sh", "busybox").unwrap();
        let tar = b.into_inner().unwrap();
        let diff_id = Digest::sha256(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        (gz.finish().unwrap(), diff_id)
    })
}

/// A small second layer with one file, so images can differ.
pub fn small_layer(content: &str) -> (Vec<u8>, Digest) {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(content.len() as u64);
    h.set_mtime(0);
    b.append_data(&mut h, "etc/berth-test", content.as_bytes())
        .unwrap();
    let tar = b.into_inner().unwrap();
    let diff_id = Digest::sha256(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// A test image held in a content store.
pub struct TestImage {
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub media_type: String,
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub layers: Vec<Digest>,
}

/// Builds a busybox image (plus a small layer when `extra` is given) for `arch` into `store`.
pub fn make_image(store: &ContentStore, arch: &str, extra: Option<&str>) -> TestImage {
    let mut layers = vec![busybox_layer().clone()];
    if let Some(e) = extra {
        layers.push(small_layer(e));
    }
    let diff_ids: Vec<String> = layers.iter().map(|(_, d)| d.to_string()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "berth registry test"}],
    }))
    .unwrap();
    let config_digest = store.put_bytes(&config).unwrap();
    let mut descs = Vec::new();
    for (gz, _) in &layers {
        let d = store.put_bytes(gz).unwrap();
        descs.push(manifest::descriptor(
            manifest::DOCKER_LAYER_GZIP,
            d,
            gz.len() as u64,
        ));
    }
    let m = Manifest {
        schema_version: 2,
        media_type: Some(manifest::DOCKER_MANIFEST.into()),
        config: manifest::descriptor(
            manifest::DOCKER_CONFIG,
            config_digest.clone(),
            config.len() as u64,
        ),
        layers: descs.clone(),
        annotations: None,
    };
    let bytes = serde_json::to_vec_pretty(&m).unwrap();
    let manifest_digest = store.put_bytes(&bytes).unwrap();
    TestImage {
        manifest: bytes,
        manifest_digest,
        media_type: manifest::DOCKER_MANIFEST.into(),
        config,
        config_digest,
        layers: descs.into_iter().map(|d| d.digest).collect(),
    }
}

/// Collects progress messages.
#[derive(Default, Clone)]
pub struct Recorder(pub Arc<Mutex<Vec<ProgressMessage>>>);

impl Progress for Recorder {
    fn update(&self, msg: &ProgressMessage) {
        self.0.lock().unwrap().push(msg.clone());
    }
}

impl Recorder {
    /// "id: status" / "status" lines, consecutive duplicates and transfer updates dropped.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in self.0.lock().unwrap().iter() {
            if m.detail.is_some() {
                continue;
            }
            let l = match &m.id {
                Some(id) => format!("{id}: {}", m.status),
                None => m.status.clone(),
            };
            if out.last() != Some(&l) {
                out.push(l);
            }
        }
        out
    }

    pub fn has(&self, line: &str) -> bool {
        self.lines().iter().any(|l| l == line)
    }

    pub fn transfers(&self) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.detail.is_some())
            .count()
    }
}

/// Files left in a content store's ingest directory.
pub fn ingest_files(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root.join("ingest"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}
