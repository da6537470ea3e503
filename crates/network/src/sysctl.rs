//! The /proc/sys knobs container networking needs: IPv4 forwarding (turned on, never off:
//! other software may rely on it) and `route_localnet` on a bridge (so a DNAT of
//! 127.0.0.1:PORT to a container is routed, as dockerd does without its userland proxy).

use std::path::PathBuf;

/// Errors writing a sysctl.
#[derive(Debug, thiserror::Error)]
#[error("cannot set {path} to {value}: {err}")]
pub struct Error {
    /// The /proc/sys file.
    pub path: PathBuf,
    /// The value written.
    pub value: String,
    /// Why.
    pub err: std::io::Error,
}

fn set(path: PathBuf, value: &str) -> Result<(), Error> {
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(&path, value).map_err(|err| Error {
        path,
        value: value.to_string(),
        err,
    })
}

/// `net.ipv4.ip_forward = 1`.
pub fn enable_ip_forward() -> Result<(), Error> {
    set(PathBuf::from("/proc/sys/net/ipv4/ip_forward"), "1")
}

/// `net.ipv4.conf.<iface>.route_localnet = 1`.
pub fn enable_route_localnet(iface: &str) -> Result<(), Error> {
    set(
        PathBuf::from(format!("/proc/sys/net/ipv4/conf/{iface}/route_localnet")),
        "1",
    )
}
