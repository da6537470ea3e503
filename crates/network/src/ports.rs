//! Host port reservations: a published port holds a bound socket on the host (a listening
//! TCP socket that never accepts, or a UDP socket that is never read), so a second
//! publication of the same port — by berth or anything else — fails, as with Docker. The
//! traffic itself never reaches these sockets: nftables DNATs it to the container first.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

/// `tcp` or `udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `tcp` / `udp`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// Parses `tcp`/`udp` (empty: tcp).
    pub fn parse(s: &str) -> Option<Proto> {
        match s {
            "" | "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            _ => None,
        }
    }
}

/// A held host port.
#[derive(Debug)]
pub enum Reservation {
    /// A listening TCP socket.
    Tcp(TcpListener),
    /// A bound UDP socket.
    Udp(UdpSocket),
}

impl Reservation {
    /// Binds `ip:port` (`port` 0: the kernel picks a free ephemeral port).
    pub fn bind(proto: Proto, ip: Ipv4Addr, port: u16) -> std::io::Result<Reservation> {
        let a = SocketAddrV4::new(ip, port);
        Ok(match proto {
            Proto::Tcp => Reservation::Tcp(TcpListener::bind(a)?),
            Proto::Udp => Reservation::Udp(UdpSocket::bind(a)?),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        let a = match self {
            Reservation::Tcp(l) => l.local_addr(),
            Reservation::Udp(u) => u.local_addr(),
        };
        a.map(|a| a.port()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_bind_fails_then_frees() {
        let r = Reservation::bind(Proto::Tcp, Ipv4Addr::LOCALHOST, 0).unwrap();
        let p = r.port();
        assert!(p > 0);
        assert!(Reservation::bind(Proto::Tcp, Ipv4Addr::LOCALHOST, p).is_err());
        assert!(Reservation::bind(Proto::Tcp, Ipv4Addr::UNSPECIFIED, p).is_err());
        drop(r);
        Reservation::bind(Proto::Tcp, Ipv4Addr::LOCALHOST, p).unwrap();
        let u = Reservation::bind(Proto::Udp, Ipv4Addr::LOCALHOST, 0).unwrap();
        assert!(Reservation::bind(Proto::Udp, Ipv4Addr::LOCALHOST, u.port()).is_err());
    }
}
