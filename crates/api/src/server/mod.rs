//! The Engine API server: listens on a unix socket (mode 0660, owner root, group as
//! configured; a stale socket is replaced, a live one refused) and optionally on a loopback
//! TCP address, and serves each connection with hyper (HTTP/1.1), routing requests to a
//! [`Backend`].
//!
//! - `conn`: one connection: the legacy (non-upgrade) hijack of old clients, then hyper.
//! - `router`: path and version handling, the route table.
//! - `handlers`: one module per area (system, containers, exec, images, volumes/networks,
//!   features berth does not offer).
//! - `hijack`: running an attach/exec session on a taken-over connection.
//! - `http`: request/response plumbing shared by the above.

mod conn;
mod handlers;
mod hijack;
mod http;
mod router;

pub(crate) use handlers::decode_base64;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ::http::header::{HeaderName, HeaderValue};
use ::http::HeaderMap;
use tokio::net::{TcpListener, UnixListener};

use crate::backend::Backend;
use crate::version::{ApiVersion, MAX_API_VERSION, MIN_API_VERSION};

/// How the server listens and what it advertises.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Unix socket to create (e.g. `/run/berth/berth.sock`).
    pub unix_socket: Option<PathBuf>,
    /// Group given access to the socket (a name or a numeric gid); None: root only.
    pub socket_group: Option<String>,
    /// TCP address to listen on; must be a loopback address (the API is unauthenticated).
    pub tcp: Option<SocketAddr>,
    /// Oldest API version accepted.
    pub min_api_version: ApiVersion,
    /// Newest API version accepted; also the version of unversioned paths and the one
    /// advertised in `Api-Version`.
    pub max_api_version: ApiVersion,
    /// Engine version, for the `Server` header.
    pub engine_version: String,
    /// Advertise experimental features (`Docker-Experimental`).
    pub experimental: bool,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            unix_socket: None,
            socket_group: None,
            tcp: None,
            min_api_version: MIN_API_VERSION,
            max_api_version: MAX_API_VERSION,
            engine_version: env!("CARGO_PKG_VERSION").to_string(),
            experimental: false,
        }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// No listener configured.
    #[error("no listener configured: give a unix socket path and/or a loopback TCP address")]
    NoListener,
    /// The TCP address is not loopback.
    #[error(
        "refusing to listen on {0}: the Engine API has no authentication, so TCP is only \
         allowed on a loopback address (127.0.0.1 or ::1)"
    )]
    NotLoopback(SocketAddr),
    /// A daemon already answers on the socket.
    #[error("another daemon is already listening on {0}: stop it or choose another socket path")]
    SocketInUse(PathBuf),
    /// Something that is not a socket is in the way.
    #[error("{0} exists and is not a socket: remove it or choose another socket path")]
    NotASocket(PathBuf),
    /// The socket group does not exist.
    #[error("socket group {0:?} does not exist: create it or give a numeric gid")]
    NoSuchGroup(String),
    /// A filesystem or socket operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// On what.
        path: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// State shared by all connections.
pub(crate) struct Shared {
    pub backend: Arc<dyn Backend>,
    pub config: ServerConfig,
}

impl Shared {
    /// Headers every response carries (Docker's version and experimental middlewares).
    pub(crate) fn decorate(&self, h: &mut HeaderMap) {
        let set = |h: &mut HeaderMap, k: &'static str, v: String| {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(HeaderName::from_static(k), v);
            }
        };
        set(h, "api-version", self.config.max_api_version.to_string());
        set(h, "ostype", "linux".to_string());
        set(
            h,
            "docker-experimental",
            self.config.experimental.to_string(),
        );
        set(
            h,
            "server",
            format!("berth/{} (linux)", self.config.engine_version),
        );
    }
}

/// A bound server, ready to [`serve`](Server::serve).
pub struct Server {
    shared: Arc<Shared>,
    unix: Option<(UnixListener, PathBuf)>,
    tcp: Option<(TcpListener, SocketAddr)>,
}

impl Server {
    /// Creates the listeners (must run inside a Tokio runtime).
    pub async fn bind(
        config: ServerConfig,
        backend: Arc<dyn Backend>,
    ) -> Result<Server, ServerError> {
        if config.unix_socket.is_none() && config.tcp.is_none() {
            return Err(ServerError::NoListener);
        }
        let unix = match &config.unix_socket {
            Some(path) => Some((
                bind_unix(path, config.socket_group.as_deref())?,
                path.clone(),
            )),
            None => None,
        };
        let tcp = match config.tcp {
            Some(addr) => {
                if !addr.ip().is_loopback() {
                    return Err(ServerError::NotLoopback(addr));
                }
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Io {
                        what: "listening on",
                        path: addr.to_string(),
                        source,
                    })?;
                let local = l.local_addr().map_err(|source| ServerError::Io {
                    what: "reading the address of",
                    path: addr.to_string(),
                    source,
                })?;
                Some((l, local))
            }
            None => None,
        };
        Ok(Server {
            shared: Arc::new(Shared { backend, config }),
            unix,
            tcp,
        })
    }

    /// The unix socket path, when listening on one.
    pub fn unix_path(&self) -> Option<&Path> {
        self.unix.as_ref().map(|(_, p)| p.as_path())
    }

    /// The TCP address actually bound (port 0 resolved), when listening on TCP.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().map(|(_, a)| *a)
    }

    /// Accepts connections until `shutdown` resolves, then removes the socket file.
    /// Connections already accepted finish on their own.
    pub async fn serve<F>(self, shutdown: F) -> Result<(), ServerError>
    where
        F: Future<Output = ()> + Send,
    {
        let Server { shared, unix, tcp } = self;
        let socket_path = unix.as_ref().map(|(_, p)| p.clone());
        let unix_l = unix.map(|(l, _)| l);
        let tcp_l = tcp.map(|(l, _)| l);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                r = accept_unix(unix_l.as_ref()) => match r {
                    Ok(stream) => {
                        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
                        tokio::spawn(conn::serve(shared.clone(), stream, fd));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                },
                r = accept_tcp(tcp_l.as_ref()) => match r {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
                        tokio::spawn(conn::serve(shared.clone(), stream, fd));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                },
            }
        }
        if let Some(p) = socket_path {
            let _ = std::fs::remove_file(p);
        }
        Ok(())
    }
}

async fn accept_unix(l: Option<&UnixListener>) -> io::Result<tokio::net::UnixStream> {
    match l {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

async fn accept_tcp(l: Option<&TcpListener>) -> io::Result<tokio::net::TcpStream> {
    match l {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

/// Creates the unix socket: replaces a stale one, refuses a live one, then mode 0660 and
/// the group.
fn bind_unix(path: &Path, group: Option<&str>) -> Result<UnixListener, ServerError> {
    let io_err = |what: &'static str| {
        let p = path.display().to_string();
        move |source| ServerError::Io {
            what,
            path: p,
            source,
        }
    };
    let gid = match group {
        Some(g) => Some(resolve_group(g)?),
        None => None,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => return Err(ServerError::SocketInUse(path.to_path_buf())),
                Err(_) => {
                    std::fs::remove_file(path).map_err(io_err("removing the stale socket"))?
                }
            }
        }
        Ok(_) => return Err(ServerError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("checking")(e)),
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_err("creating the directory of"))?;
    }
    let listener = UnixListener::bind(path).map_err(io_err("listening on"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(io_err("setting the mode of"))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(io_err("setting the group of"))?;
    }
    Ok(listener)
}

fn resolve_group(g: &str) -> Result<u32, ServerError> {
    if let Ok(gid) = g.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(g) {
        Ok(Some(grp)) => Ok(grp.gid.as_raw()),
        Ok(None) => Err(ServerError::NoSuchGroup(g.to_string())),
        Err(e) => Err(ServerError::Io {
            what: "looking up the group",
            path: g.to_string(),
            source: io::Error::from(e),
        }),
    }
}
