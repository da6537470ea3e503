//! The embedded DNS server, Docker's 127.0.0.11: sockets bound inside a container's network
//! namespace (UDP and TCP on 127.0.0.11:53, made by [`bind_in`] from a thread in that
//! namespace) and served by the daemon ([`serve`]). It answers A and AAAA queries for the names a
//! [`Resolver`] knows (container names, short IDs and aliases on the container's networks)
//! and never forwards anything: other names get REFUSED, so no query leaves the host.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Docker's address of the embedded server.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// Answers names for one container.
pub trait Resolver: Send + Sync + 'static {
    /// The addresses (IPv4 and IPv6) of `name` (lower case, no trailing dot), `None` when
    /// unknown.
    fn lookup(&self, name: &str) -> Option<Vec<IpAddr>>;
}

impl<F> Resolver for F
where
    F: Fn(&str) -> Option<Vec<IpAddr>> + Send + Sync + 'static,
{
    fn lookup(&self, name: &str) -> Option<Vec<IpAddr>> {
        self(name)
    }
}

/// Response codes used.
const NOERROR: u8 = 0;
const FORMERR: u8 = 1;
const NXDOMAIN: u8 = 3;
const NOTIMP: u8 = 4;
const REFUSED: u8 = 5;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// A parsed question.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// Lower-cased name without the trailing dot.
    pub name: String,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// End offset of the question in the packet.
    end: usize,
}

/// Parses the first question of a query (`None`: not a query this server can read).
pub fn parse_query(p: &[u8]) -> Option<Question> {
    if p.len() < 12 || p[2] & 0x80 != 0 {
        return None;
    }
    let qd = u16::from_be_bytes([p[4], p[5]]);
    if qd != 1 {
        return None;
    }
    let mut off = 12;
    let mut labels = Vec::new();
    loop {
        let l = *p.get(off)? as usize;
        off += 1;
        if l == 0 {
            break;
        }
        if l & 0xc0 != 0 {
            return None; // no compression in questions
        }
        let lab = p.get(off..off + l)?;
        labels.push(String::from_utf8_lossy(lab).to_ascii_lowercase());
        off += l;
        if off > 255 + 12 {
            return None;
        }
    }
    let qtype = u16::from_be_bytes([*p.get(off)?, *p.get(off + 1)?]);
    let qclass = u16::from_be_bytes([*p.get(off + 2)?, *p.get(off + 3)?]);
    Some(Question {
        name: labels.join("."),
        qtype,
        qclass,
        end: off + 4,
    })
}

/// Builds the answer to `query` (its first question) from `resolver`.
pub fn answer(query: &[u8], resolver: &dyn Resolver) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let opcode = (query[2] >> 3) & 0x0f;
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&query[0..2]);
    let rd = query[2] & 0x01;
    let header = |out: &mut Vec<u8>, rcode: u8, qd: u16, an: u16| {
        out.truncate(2);
        out.push(0x80 | (opcode << 3) | 0x04 | rd); // QR, AA, RD copied
        out.push(0x80 | rcode); // RA
        out.extend_from_slice(&qd.to_be_bytes());
        out.extend_from_slice(&an.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
    };
    if opcode != 0 {
        header(&mut out, NOTIMP, 0, 0);
        return Some(out);
    }
    let Some(q) = parse_query(query) else {
        header(&mut out, FORMERR, 0, 0);
        return Some(out);
    };
    let question = &query[12..q.end];
    let found = if q.qclass == CLASS_IN {
        resolver.lookup(&q.name)
    } else {
        None
    };
    match found {
        None => {
            header(&mut out, REFUSED, 1, 0);
            out.extend_from_slice(question);
        }
        Some(ips) if ips.is_empty() => {
            header(&mut out, NXDOMAIN, 1, 0);
            out.extend_from_slice(question);
        }
        Some(ips) => {
            // Known name: A records for A queries, AAAA for AAAA; an empty NOERROR for other
            // types and for a family the name has no address of.
            let an: Vec<Vec<u8>> = ips
                .iter()
                .filter_map(|ip| match (ip, q.qtype) {
                    (IpAddr::V4(a), TYPE_A) => Some(a.octets().to_vec()),
                    (IpAddr::V6(a), TYPE_AAAA) => Some(a.octets().to_vec()),
                    _ => None,
                })
                .collect();
            header(&mut out, NOERROR, 1, an.len() as u16);
            out.extend_from_slice(question);
            for data in an {
                out.extend_from_slice(&[0xc0, 0x0c]); // name: pointer to the question
                out.extend_from_slice(&q.qtype.to_be_bytes());
                out.extend_from_slice(&CLASS_IN.to_be_bytes());
                out.extend_from_slice(&600u32.to_be_bytes());
                out.extend_from_slice(&(data.len() as u16).to_be_bytes());
                out.extend_from_slice(&data);
            }
        }
    }
    Some(out)
}

/// The server's sockets, bound in a container's namespace.
#[derive(Debug)]
pub struct Sockets {
    /// UDP 127.0.0.11:53.
    pub udp: std::net::UdpSocket,
    /// TCP 127.0.0.11:53.
    pub tcp: std::net::TcpListener,
}

/// Errors binding the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Entering the namespace failed.
    #[error(transparent)]
    Netns(#[from] crate::netns::Error),
    /// Binding failed.
    #[error("cannot bind the DNS server at {ADDRESS}:53: {0}")]
    Bind(std::io::Error),
}

/// Binds UDP and TCP 127.0.0.11:53 inside the network namespace at `netns` (its loopback must
/// be up).
pub fn bind_in(netns: &Path) -> Result<Sockets, Error> {
    crate::netns::run_in(netns, || {
        let a = SocketAddr::from((ADDRESS, 53));
        let udp = std::net::UdpSocket::bind(a).map_err(Error::Bind)?;
        let tcp = std::net::TcpListener::bind(a).map_err(Error::Bind)?;
        udp.set_nonblocking(true).map_err(Error::Bind)?;
        tcp.set_nonblocking(true).map_err(Error::Bind)?;
        Ok(Sockets { udp, tcp })
    })
}

/// Serves `sockets` until the returned future is dropped (abort its task to stop).
pub async fn serve(sockets: Sockets, resolver: Arc<dyn Resolver>) {
    let Ok(udp) = tokio::net::UdpSocket::from_std(sockets.udp) else {
        return;
    };
    let Ok(tcp) = tokio::net::TcpListener::from_std(sockets.tcp) else {
        return;
    };
    let r2 = resolver.clone();
    let tcp_task = async move {
        loop {
            let Ok((mut s, _)) = tcp.accept().await else {
                return;
            };
            let r = r2.clone();
            tokio::spawn(async move {
                let fut = async {
                    loop {
                        let mut len = [0u8; 2];
                        s.read_exact(&mut len).await?;
                        let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                        s.read_exact(&mut q).await?;
                        let Some(a) = answer(&q, r.as_ref()) else {
                            return Ok::<(), std::io::Error>(());
                        };
                        s.write_all(&(a.len() as u16).to_be_bytes()).await?;
                        s.write_all(&a).await?;
                    }
                };
                let _ = tokio::time::timeout(std::time::Duration::from_secs(30), fut).await;
            });
        }
    };
    let udp_task = async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = udp.recv_from(&mut buf).await else {
                continue;
            };
            if let Some(a) = answer(&buf[..n], resolver.as_ref()) {
                let _ = udp.send_to(&a, from).await;
            }
        }
    };
    tokio::join!(tcp_task, udp_task);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    fn resolver(name: &str) -> Option<Vec<IpAddr>> {
        match name {
            "web" => Some(vec![IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))]),
            "six" => Some(vec![
                IpAddr::V4(Ipv4Addr::new(10, 1, 2, 4)),
                IpAddr::V6("fd00::4".parse().unwrap()),
            ]),
            _ => None,
        }
    }

    #[test]
    fn answers_known_names() {
        let a = answer(&query("WEB", 1), &resolver).unwrap();
        assert_eq!(&a[0..2], &[0x12, 0x34]);
        assert_eq!(a[3] & 0x0f, NOERROR);
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1);
        assert_eq!(&a[a.len() - 4..], &[10, 1, 2, 3]);
        // AAAA of a known name: empty NOERROR.
        let a = answer(&query("web", 28), &resolver).unwrap();
        assert_eq!(a[3] & 0x0f, NOERROR);
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 0);
        // A name with an IPv6 address: AAAA answers it, A gives only the IPv4 one.
        let a = answer(&query("six", 28), &resolver).unwrap();
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1);
        assert_eq!(&a[a.len() - 18..a.len() - 16], &[0, 16]);
        let want: std::net::Ipv6Addr = "fd00::4".parse().unwrap();
        assert_eq!(&a[a.len() - 16..], &want.octets());
        let a = answer(&query("six", 1), &resolver).unwrap();
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1);
        assert_eq!(&a[a.len() - 4..], &[10, 1, 2, 4]);
        // Unknown: refused, never forwarded.
        let a = answer(&query("example.com", 1), &resolver).unwrap();
        assert_eq!(a[3] & 0x0f, REFUSED);
        assert_eq!(answer(&[1, 2, 3], &resolver), None);
    }

    #[tokio::test]
    async fn serves_udp_and_tcp() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        udp.set_nonblocking(true).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let (ua, ta) = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
        let task = tokio::spawn(serve(Sockets { udp, tcp }, Arc::new(resolver)));
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(&query("web", 1), ua).await.unwrap();
        let mut buf = [0u8; 512];
        let n = c.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[n - 4..n], &[10, 1, 2, 3]);
        let mut s = tokio::net::TcpStream::connect(ta).await.unwrap();
        let q = query("web", 1);
        s.write_all(&(q.len() as u16).to_be_bytes()).await.unwrap();
        s.write_all(&q).await.unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.unwrap();
        let mut a = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut a).await.unwrap();
        assert_eq!(&a[a.len() - 4..], &[10, 1, 2, 3]);
        task.abort();
    }
}
