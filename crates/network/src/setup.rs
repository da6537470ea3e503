//! The link recipes the engine uses, built from [`crate::netlink`], [`crate::netns`] and
//! [`crate::sysctl`]: making sure a bridge exists with its gateway address, and attaching a
//! network namespace to a bridge through a veth pair (its bridge port in hairpin mode).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::netlink::{self, Netlink};

/// Errors of the recipes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A netlink step.
    #[error(transparent)]
    Netlink(#[from] netlink::Error),
    /// A namespace step.
    #[error(transparent)]
    Netns(#[from] crate::netns::Error),
    /// A sysctl.
    #[error(transparent)]
    Sysctl(#[from] crate::sysctl::Error),
    /// Opening the namespace file.
    #[error("cannot open network namespace {0}: {1}")]
    Open(String, std::io::Error),
}

/// Makes sure bridge `name` exists, carries `gateway/prefix`, is up, routes 127.0.0.0/8
/// (route_localnet) and that IPv4 forwarding is on. Returns whether it was created.
pub fn ensure_bridge(name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<bool, Error> {
    let mut nl = Netlink::open()?;
    let created = match nl.index(name)? {
        Some(_) => false,
        None => {
            nl.create_bridge(name, None)?;
            true
        }
    };
    let r = (|| {
        nl.add_address(name, gateway, prefix)?;
        nl.set_up(name, true)?;
        crate::sysctl::enable_route_localnet(name)?;
        crate::sysctl::enable_ip_forward()?;
        Ok::<(), Error>(())
    })();
    if let Err(e) = r {
        if created {
            let _ = nl.delete_link(name);
        }
        return Err(e);
    }
    Ok(created)
}

/// Gives bridge `name` (made by [`ensure_bridge`]) the IPv6 gateway address `gateway/prefix`.
pub fn bridge_address6(name: &str, gateway: Ipv6Addr, prefix: u8) -> Result<(), Error> {
    Ok(Netlink::open()?.add_address6(name, gateway, prefix)?)
}

/// Deletes link `name` if it exists.
pub fn delete_link(name: &str) -> Result<bool, Error> {
    Ok(Netlink::open()?.delete_link(name)?)
}

/// Whether link `name` exists in the daemon's namespace.
pub fn link_exists(name: &str) -> bool {
    Netlink::open()
        .and_then(|mut n| n.index(name))
        .is_ok_and(|i| i.is_some())
}

/// Sets the loopback of the namespace at `netns` up.
pub fn loopback_up(netns: &Path) -> Result<(), Error> {
    crate::netns::run_in(netns, || {
        Netlink::open()?.set_up("lo", true)?;
        Ok::<(), Error>(())
    })
}

/// What [`attach`] sets up.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    /// The bridge.
    pub bridge: &'a str,
    /// Host end of the veth pair.
    pub host_if: &'a str,
    /// Name inside the namespace (`eth0`).
    pub ifname: &'a str,
    /// Address inside.
    pub ip: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
    /// MAC inside.
    pub mac: [u8; 6],
    /// Default route via this gateway (none for internal networks or extra networks).
    pub default_gateway: Option<Ipv4Addr>,
    /// IPv6 address and prefix length inside (IPv6 networks).
    pub ip6: Option<(Ipv6Addr, u8)>,
    /// IPv6 default route via this gateway.
    pub default_gateway6: Option<Ipv6Addr>,
}

/// Attaches the namespace at `netns` to a bridge: a veth pair whose inside end is created
/// directly in the namespace, addressed and up, with the default route when asked. On error
/// the pair is deleted.
pub fn attach(netns: &Path, a: &Attachment<'_>) -> Result<(), Error> {
    let ns = std::fs::File::open(netns).map_err(|e| Error::Open(netns.display().to_string(), e))?;
    let mut nl = Netlink::open()?;
    nl.create_veth(
        a.host_if,
        Some(a.bridge),
        a.ifname,
        ns.as_raw_fd(),
        Some(a.mac),
    )?;
    let r = (|| {
        nl.set_up(a.host_if, true)?;
        // Hairpin NAT (a container reaching its own published port) as docker without its
        // userland proxy: berth has none.
        nl.set_hairpin(a.host_if, true)?;
        crate::netns::run_in(netns, || {
            let mut inner = Netlink::open()?;
            inner.set_up("lo", true)?;
            inner.add_address(a.ifname, a.ip, a.prefix)?;
            inner.set_up(a.ifname, true)?;
            if let Some(gw) = a.default_gateway {
                inner.add_route(Ipv4Addr::UNSPECIFIED, 0, Some(gw), a.ifname)?;
            }
            if let Some((ip6, prefix6)) = a.ip6 {
                inner.add_address6(a.ifname, ip6, prefix6)?;
                if let Some(gw6) = a.default_gateway6 {
                    inner.add_default_route6(gw6, a.ifname)?;
                }
            }
            Ok::<(), Error>(())
        })
    })();
    if let Err(e) = r {
        let _ = nl.delete_link(a.host_if);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bridge, a namespace attached to it, ping-free reachability checked with a TCP
    /// connection from inside the namespace to a listener on the bridge's address.
    #[test]
    fn bridge_veth_namespace() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let pid = std::process::id();
        let br = format!("btu{}", pid % 100000);
        let veth = format!("vtu{}", pid % 100000);
        let dir = std::env::temp_dir().join(format!("berth-setup-test-{pid}"));
        let ns = dir.join("ns");
        crate::netns::create(&ns).unwrap();
        let gw = Ipv4Addr::new(10, 213, (pid % 200) as u8, 1);
        let ip = Ipv4Addr::new(10, 213, (pid % 200) as u8, 2);
        let r = (|| {
            assert!(ensure_bridge(&br, gw, 24)?);
            assert!(!ensure_bridge(&br, gw, 24)?);
            attach(
                &ns,
                &Attachment {
                    bridge: &br,
                    host_if: &veth,
                    ifname: "eth0",
                    ip,
                    prefix: 24,
                    mac: netlink::mac_for(ip),
                    default_gateway: Some(gw),
                    ip6: None,
                    default_gateway6: None,
                },
            )?;
            assert!(link_exists(&veth));
            let hp = std::fs::read_to_string(format!("/sys/class/net/{veth}/brport/hairpin_mode"))
                .unwrap();
            assert_eq!(hp.trim(), "1", "hairpin mode on the bridge port");
            let l = std::net::TcpListener::bind((gw, 0)).unwrap();
            let port = l.local_addr().unwrap().port();
            let peer = crate::netns::run_in::<_, Error>(&ns, || {
                let s = std::net::TcpStream::connect((gw, port)).unwrap();
                Ok(s.local_addr().unwrap().ip())
            })?;
            assert_eq!(peer, std::net::IpAddr::V4(ip));
            Ok::<(), Error>(())
        })();
        let _ = delete_link(&veth);
        let _ = delete_link(&br);
        crate::netns::remove(&ns).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        r.unwrap();
        assert!(!link_exists(&br));
    }
}
