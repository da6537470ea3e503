//! A small NETLINK_ROUTE client: the link, address and route operations container
//! networking needs (bridge create/delete, veth pairs with one end created directly inside a
//! network namespace, master, up/down, IPv4 addresses, default routes). Each [`Netlink`]
//! talks to the network namespace of the thread that opened it; to work inside a container's
//! namespace, open one from [`crate::netns::run_in`].

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};

/// Errors of netlink operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The netlink socket could not be opened or used.
    #[error("netlink socket: {0}")]
    Socket(nix::Error),
    /// The kernel refused an operation.
    #[error("netlink: cannot {what}: {err}")]
    Kernel { what: String, err: nix::Error },
    /// A link name that the kernel cannot take.
    #[error("invalid interface name {0:?}: 1 to 15 bytes, no '/', ':' or whitespace")]
    BadName(String),
    /// A link that does not exist.
    #[error("no network interface named {0:?}")]
    NoLink(String),
    /// The kernel answered something this client does not understand.
    #[error("netlink: malformed answer to {0}")]
    Malformed(String),
}

type Result<T> = std::result::Result<T, Error>;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_PROTINFO: u16 = 12;
const IFLA_BRPORT_MODE: u16 = 4;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_F_NODAD: u8 = 0x02;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;

const IFF_UP: u32 = 0x1;

/// Checks a Linux interface name (IFNAMSIZ - 1 bytes at most).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
}

/// A netlink message being built: header, fixed part, attributes (nested ones through
/// [`Msg::nest`] / [`Msg::end`]).
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(kind: u16, flags: u16, fixed: &[u8]) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set in finish
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // seq, set on send
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
        buf.extend_from_slice(fixed);
        pad(&mut buf);
        Msg {
            buf,
            nests: Vec::new(),
        }
    }

    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Msg {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        pad(&mut self.buf);
        self
    }

    fn attr_str(&mut self, kind: u16, s: &str) -> &mut Msg {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(kind, &d)
    }

    fn attr_u32(&mut self, kind: u16, v: u32) -> &mut Msg {
        self.attr(kind, &v.to_ne_bytes())
    }

    fn nest(&mut self, kind: u16) -> &mut Msg {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    /// Raw bytes inside the current nest (a fixed header such as a peer's ifinfomsg).
    fn raw(&mut self, data: &[u8]) -> &mut Msg {
        self.buf.extend_from_slice(data);
        pad(&mut self.buf);
        self
    }

    fn end(&mut self) -> &mut Msg {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }
}

fn pad(b: &mut Vec<u8>) {
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
}

/// struct ifinfomsg.
fn ifinfomsg(index: i32, flags: u32, change: u32) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[0] = libc::AF_UNSPEC as u8;
    m[4..8].copy_from_slice(&index.to_ne_bytes());
    m[8..12].copy_from_slice(&flags.to_ne_bytes());
    m[12..16].copy_from_slice(&change.to_ne_bytes());
    m
}

/// A NETLINK_ROUTE socket bound to the network namespace of the thread that opened it.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(Error::Socket)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(Error::Socket)?;
        // The kernel answers at once; a stuck answer must not hang the daemon.
        nix::sys::socket::setsockopt(
            &fd,
            nix::sys::socket::sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(10, 0),
        )
        .map_err(Error::Socket)?;
        Ok(Netlink { fd, seq: 1 })
    }

    /// Sends one request and waits for its acknowledgement (or error).
    fn request(&mut self, mut m: Msg, what: impl FnOnce() -> String) -> Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let bytes = m.finish(seq);
        send(self.fd.as_raw_fd(), bytes, MsgFlags::empty()).map_err(Error::Socket)?;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n =
                recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()).map_err(Error::Socket)?;
            let mut off = 0;
            while off + 16 <= n {
                let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
                    as usize;
                let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                let mseq =
                    u32::from_ne_bytes([buf[off + 8], buf[off + 9], buf[off + 10], buf[off + 11]]);
                if len < 16 || off + len > n {
                    return Err(Error::Malformed(what()));
                }
                if mseq == seq && kind == NLMSG_ERROR {
                    if len < 20 {
                        return Err(Error::Malformed(what()));
                    }
                    let code = i32::from_ne_bytes([
                        buf[off + 16],
                        buf[off + 17],
                        buf[off + 18],
                        buf[off + 19],
                    ]);
                    if code == 0 {
                        return Ok(());
                    }
                    return Err(Error::Kernel {
                        what: what(),
                        err: nix::Error::from_raw(-code),
                    });
                }
                if mseq == seq && kind == NLMSG_DONE {
                    return Ok(());
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// The index of link `name`, or `None` when it does not exist.
    pub fn index(&mut self, name: &str) -> Result<Option<i32>> {
        if !valid_name(name) {
            return Err(Error::BadName(name.to_string()));
        }
        // RTM_GETLINK by name; the answer is an RTM_NEWLINK carrying the index.
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut m = Msg::new(RTM_GETLINK, 0, &ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, name);
        let bytes = m.finish(seq);
        send(self.fd.as_raw_fd(), bytes, MsgFlags::empty()).map_err(Error::Socket)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut found = None;
        loop {
            let n =
                recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()).map_err(Error::Socket)?;
            let mut off = 0;
            while off + 16 <= n {
                let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
                    as usize;
                let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                if len < 16 || off + len > n {
                    return Err(Error::Malformed(format!("get link {name}")));
                }
                if kind == RTM_NEWLINK && len >= 32 {
                    found = Some(i32::from_ne_bytes([
                        buf[off + 20],
                        buf[off + 21],
                        buf[off + 22],
                        buf[off + 23],
                    ]));
                } else if kind == NLMSG_ERROR && len >= 20 {
                    let code = i32::from_ne_bytes([
                        buf[off + 16],
                        buf[off + 17],
                        buf[off + 18],
                        buf[off + 19],
                    ]);
                    return match code {
                        0 => Ok(found),
                        c if -c == libc::ENODEV => Ok(None),
                        c => Err(Error::Kernel {
                            what: format!("look up link {name}"),
                            err: nix::Error::from_raw(-c),
                        }),
                    };
                } else if kind == NLMSG_DONE {
                    return Ok(found);
                }
                off += (len + 3) & !3;
            }
        }
    }

    fn must_index(&mut self, name: &str) -> Result<i32> {
        self.index(name)?
            .ok_or_else(|| Error::NoLink(name.to_string()))
    }

    /// Creates a bridge (fails with EEXIST when a link of that name exists).
    pub fn create_bridge(&mut self, name: &str, mtu: Option<u32>) -> Result<()> {
        if !valid_name(name) {
            return Err(Error::BadName(name.to_string()));
        }
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, name);
        if let Some(mtu) = mtu {
            m.attr_u32(IFLA_MTU, mtu);
        }
        m.nest(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "bridge")
            .end();
        self.request(m, || format!("create bridge {name}"))
    }

    /// Creates a veth pair: `host` stays here (enslaved to `master` when given), `peer` is
    /// created directly inside the network namespace `peer_netns` (an open nsfs file) with
    /// MAC `peer_mac`.
    pub fn create_veth(
        &mut self,
        host: &str,
        master: Option<&str>,
        peer: &str,
        peer_netns: RawFd,
        peer_mac: Option<[u8; 6]>,
    ) -> Result<()> {
        for n in [host, peer] {
            if !valid_name(n) {
                return Err(Error::BadName(n.to_string()));
            }
        }
        let master_index = match master {
            Some(b) => Some(self.must_index(b)?),
            None => None,
        };
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, host);
        if let Some(i) = master_index {
            m.attr_u32(IFLA_MASTER, i as u32);
        }
        m.nest(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "veth")
            .nest(IFLA_INFO_DATA)
            .nest(VETH_INFO_PEER)
            .raw(&ifinfomsg(0, 0, 0))
            .attr_str(IFLA_IFNAME, peer)
            .attr_u32(IFLA_NET_NS_FD, peer_netns as u32);
        if let Some(mac) = peer_mac {
            m.attr(IFLA_ADDRESS, &mac);
        }
        m.end().end().end();
        self.request(m, || format!("create veth pair {host} / {peer}"))
    }

    /// Moves link `name` into the network namespace `netns` (an open nsfs file).
    pub fn move_to_netns(&mut self, name: &str, netns: RawFd) -> Result<()> {
        let idx = self.must_index(name)?;
        let mut m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(idx, 0, 0));
        m.attr_u32(IFLA_NET_NS_FD, netns as u32);
        self.request(m, || {
            format!("move link {name} to another network namespace")
        })
    }

    /// Renames link `name` (it must be down).
    pub fn rename(&mut self, name: &str, new_name: &str) -> Result<()> {
        if !valid_name(new_name) {
            return Err(Error::BadName(new_name.to_string()));
        }
        let idx = self.must_index(name)?;
        let mut m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(idx, 0, 0));
        m.attr_str(IFLA_IFNAME, new_name);
        self.request(m, || format!("rename link {name} to {new_name}"))
    }

    /// Sets link `name` up or down.
    pub fn set_up(&mut self, name: &str, up: bool) -> Result<()> {
        let idx = self.must_index(name)?;
        let m = Msg::new(
            RTM_NEWLINK,
            0,
            &ifinfomsg(idx, if up { IFF_UP } else { 0 }, IFF_UP),
        );
        self.request(m, || {
            format!("set link {name} {}", if up { "up" } else { "down" })
        })
    }

    /// Enslaves link `name` to bridge `master`.
    pub fn set_master(&mut self, name: &str, master: &str) -> Result<()> {
        let idx = self.must_index(name)?;
        let midx = self.must_index(master)?;
        let mut m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(idx, 0, 0));
        m.attr_u32(IFLA_MASTER, midx as u32);
        self.request(m, || format!("attach link {name} to bridge {master}"))
    }

    /// Turns hairpin mode on or off on bridge port `name` (`IFLA_BRPORT_MODE`): the bridge
    /// may then send a frame back out of the port it came in on, which a container reaching
    /// its own published port through a host address needs when bridged traffic is NATed
    /// (br_netfilter).
    pub fn set_hairpin(&mut self, name: &str, on: bool) -> Result<()> {
        let idx = self.must_index(name)?;
        let mut info = ifinfomsg(idx, 0, 0);
        info[0] = libc::AF_BRIDGE as u8;
        let mut m = Msg::new(RTM_SETLINK, 0, &info);
        m.nest(IFLA_PROTINFO)
            .attr(IFLA_BRPORT_MODE, &[u8::from(on)])
            .end();
        self.request(m, || {
            format!(
                "set hairpin mode {} on bridge port {name}",
                if on { "on" } else { "off" }
            )
        })
    }

    /// Deletes link `name`; `Ok(false)` when it did not exist.
    pub fn delete_link(&mut self, name: &str) -> Result<bool> {
        let Some(idx) = self.index(name)? else {
            return Ok(false);
        };
        let m = Msg::new(RTM_DELLINK, 0, &ifinfomsg(idx, 0, 0));
        match self.request(m, || format!("delete link {name}")) {
            Ok(()) => Ok(true),
            Err(Error::Kernel {
                err: nix::Error::ENODEV,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds IPv4 address `addr/prefix` to link `name` (EEXIST is success).
    pub fn add_address(&mut self, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<()> {
        let idx = self.must_index(name)?;
        let mut fixed = [0u8; 8];
        fixed[0] = libc::AF_INET as u8;
        fixed[1] = prefix;
        fixed[4..8].copy_from_slice(&(idx as u32).to_ne_bytes());
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &fixed);
        m.attr(IFA_LOCAL, &addr.octets());
        m.attr(IFA_ADDRESS, &addr.octets());
        if prefix < 31 {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            let bcast = u32::from(addr) | !mask;
            m.attr(IFA_BROADCAST, &Ipv4Addr::from(bcast).octets());
        }
        match self.request(m, || format!("add address {addr}/{prefix} to {name}")) {
            Err(Error::Kernel {
                err: nix::Error::EEXIST,
                ..
            }) => Ok(()),
            r => r,
        }
    }

    /// Adds IPv6 address `addr/prefix` to link `name` without duplicate address detection
    /// (the address is berth's to give; hairpin mode on a bridge port would echo DAD's probes
    /// back and fail it). EEXIST is success.
    pub fn add_address6(&mut self, name: &str, addr: Ipv6Addr, prefix: u8) -> Result<()> {
        let idx = self.must_index(name)?;
        let mut fixed = [0u8; 8];
        fixed[0] = libc::AF_INET6 as u8;
        fixed[1] = prefix;
        fixed[2] = IFA_F_NODAD;
        fixed[4..8].copy_from_slice(&(idx as u32).to_ne_bytes());
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &fixed);
        m.attr(IFA_LOCAL, &addr.octets());
        m.attr(IFA_ADDRESS, &addr.octets());
        match self.request(m, || format!("add address {addr}/{prefix} to {name}")) {
            Err(Error::Kernel {
                err: nix::Error::EEXIST,
                ..
            }) => Ok(()),
            r => r,
        }
    }

    /// Adds the IPv6 default route via `gateway` on link `name`.
    pub fn add_default_route6(&mut self, gateway: Ipv6Addr, name: &str) -> Result<()> {
        let idx = self.must_index(name)?;
        let mut fixed = [0u8; 12];
        fixed[0] = libc::AF_INET6 as u8;
        fixed[4] = libc::RT_TABLE_MAIN;
        fixed[5] = libc::RTPROT_BOOT;
        fixed[6] = libc::RT_SCOPE_UNIVERSE;
        fixed[7] = libc::RTN_UNICAST;
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &fixed);
        m.attr(RTA_GATEWAY, &gateway.octets());
        m.attr_u32(RTA_OIF, idx as u32);
        match self.request(m, || format!("add route ::/0 via {gateway} dev {name}")) {
            Err(Error::Kernel {
                err: nix::Error::EEXIST,
                ..
            }) => Ok(()),
            r => r,
        }
    }

    /// Adds a route to `dst/dst_len` (0.0.0.0/0: the default route) via `gateway` on link
    /// `name`.
    pub fn add_route(
        &mut self,
        dst: Ipv4Addr,
        dst_len: u8,
        gateway: Option<Ipv4Addr>,
        name: &str,
    ) -> Result<()> {
        let idx = self.must_index(name)?;
        let mut fixed = [0u8; 12];
        fixed[0] = libc::AF_INET as u8;
        fixed[1] = dst_len;
        fixed[4] = libc::RT_TABLE_MAIN;
        fixed[5] = libc::RTPROT_BOOT;
        fixed[6] = if gateway.is_some() {
            libc::RT_SCOPE_UNIVERSE
        } else {
            libc::RT_SCOPE_LINK
        };
        fixed[7] = libc::RTN_UNICAST;
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &fixed);
        if dst_len > 0 {
            m.attr(RTA_DST, &dst.octets());
        }
        if let Some(gw) = gateway {
            m.attr(RTA_GATEWAY, &gw.octets());
        }
        m.attr_u32(RTA_OIF, idx as u32);
        match self.request(m, || {
            format!("add route {dst}/{dst_len} via {gateway:?} dev {name}")
        }) {
            Err(Error::Kernel {
                err: nix::Error::EEXIST,
                ..
            }) => Ok(()),
            r => r,
        }
    }
}

/// Docker's MAC for an address: 02:42 followed by the four IPv4 octets.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        mac[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("berth0"));
        assert!(valid_name("br-0123456789a"));
        assert!(!valid_name("br-0123456789abc"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(""));
    }

    #[test]
    fn macs() {
        let m = mac_for(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(mac_string(&m), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("02:42:ac:11:00:02"), Some(m));
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
    }

    #[test]
    fn message_layout() {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE, &ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, "ab");
        m.nest(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "bridge")
            .end();
        let b = m.finish(7).to_vec();
        assert_eq!(b.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize,
            b.len()
        );
        // header 16 + ifinfomsg 16 + "ab\0" attr (8) + linkinfo nest 4 + kind attr 4+7 -> 12
        assert_eq!(b.len(), 16 + 16 + 8 + 4 + 12);
        let nest_len = u16::from_ne_bytes([b[40], b[41]]);
        assert_eq!(nest_len, 4 + 12);
    }
}
