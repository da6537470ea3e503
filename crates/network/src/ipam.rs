//! IP address management: IPv4 subnets ([`Ipv4Net`]), the host's routes (from
//! /proc/net/route), subnet pools (Docker's defaults: 172.17–31.0.0/16, then 192.168.0.0/16
//! cut in /20s) with [`pick_subnet`] skipping subnets that overlap a route or another
//! network, and [`AddressSpace`], a network's allocator: it never hands out an address that
//! is in use, moves on from the last address given (a freed address is reused only after the
//! others), and is plain serde data so the engine persists it. IPv6 networks have
//! [`Ipv6Net`] and [`AddressSpace6`] (addresses handed out in order, no pools: a network
//! without a given subnet gets a random unique local /64).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Errors of address management.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Text that is not `a.b.c.d/n`.
    #[error("invalid CIDR address: {0}")]
    BadCidr(String),
    /// Text that is not an IPv4 address.
    #[error("invalid IP address: {0}")]
    BadAddress(String),
    /// A `--default-address-pools` value that is not `base=CIDR,size=N`.
    #[error("invalid default address pool {0:?}: use base=CIDR,size=N with N >= the base's prefix length")]
    BadPool(String),
    /// Every address of the subnet is taken.
    #[error("no available IPv4 addresses on network {0}")]
    Exhausted(String),
    /// A requested address is outside the subnet.
    #[error("requested address {addr} is not in subnet {subnet}")]
    OutOfRange { addr: Ipv4Addr, subnet: Ipv4Net },
    /// A requested address is taken.
    #[error("Address already in use")]
    InUse(Ipv4Addr),
    /// A requested IPv6 address is outside the subnet.
    #[error("requested address {addr} is not in subnet {subnet}")]
    OutOfRange6 { addr: Ipv6Addr, subnet: Ipv6Net },
    /// A requested IPv6 address is taken.
    #[error("Address already in use")]
    InUse6(Ipv6Addr),
    /// Every subnet of the pools overlaps something.
    #[error("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")]
    PoolsExhausted,
}

/// An IPv4 subnet (the address is the network address: host bits are cleared on parse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    /// Network address.
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

impl Ipv4Net {
    /// A subnet from an address (host bits cleared) and a prefix length.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Ipv4Net {
        let prefix = prefix.min(32);
        Ipv4Net {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        }
    }

    /// Parses `a.b.c.d/n`, returning the subnet and the address as written (`172.17.0.1/16`
    /// gives 172.17.0.0/16 and 172.17.0.1).
    pub fn parse_with_host(s: &str) -> Result<(Ipv4Net, Ipv4Addr), Error> {
        let bad = || Error::BadCidr(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok((Ipv4Net::new(addr, prefix), addr))
    }

    /// The netmask as a number.
    pub fn mask(&self) -> u32 {
        mask(self.prefix)
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(&self, o: &Ipv4Net) -> bool {
        let m = mask(self.prefix.min(o.prefix));
        u32::from(self.addr) & m == u32::from(o.addr) & m
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// The first usable host address (the usual gateway).
    pub fn first_host(&self) -> Ipv4Addr {
        if self.prefix >= 31 {
            self.addr
        } else {
            Ipv4Addr::from(u32::from(self.addr) + 1)
        }
    }

    /// Number of addresses.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix as u32)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32) as u32)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = Error;
    fn from_str(s: &str) -> Result<Ipv4Net, Error> {
        Ipv4Net::parse_with_host(s).map(|(n, _)| n)
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Ipv4Net, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A route of the host's main table.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Output interface.
    pub iface: String,
    /// Destination.
    pub dst: Ipv4Net,
}

/// The host's IPv4 routes except the default route (read from /proc/net/route).
pub fn host_routes() -> Vec<Route> {
    std::fs::read_to_string("/proc/net/route")
        .map(|t| parse_proc_route(&t))
        .unwrap_or_default()
}

fn parse_proc_route(text: &str) -> Vec<Route> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(d), Ok(m)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16)) else {
            continue;
        };
        // The kernel prints the raw network-order words as native integers.
        let dst = Ipv4Addr::from(d.to_ne_bytes());
        let mask = u32::from_be_bytes(m.to_ne_bytes());
        if mask == 0 {
            continue;
        }
        out.push(Route {
            iface: f[0].to_string(),
            dst: Ipv4Net::new(dst, mask.count_ones() as u8),
        });
    }
    out
}

/// A pool of subnets: `base` cut into subnets of prefix length `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// The pool's range.
    pub base: Ipv4Net,
    /// Prefix length of the subnets handed out.
    pub size: u8,
}

impl Pool {
    /// Parses dockerd's `--default-address-pools` value `base=10.10.0.0/16,size=24`.
    pub fn parse(s: &str) -> Result<Pool, Error> {
        let bad = || Error::BadPool(s.to_string());
        let (mut base, mut size) = (None, None);
        for kv in s.split(',') {
            match kv.split_once('=') {
                Some(("base", v)) => base = Some(v.parse::<Ipv4Net>().map_err(|_| bad())?),
                Some(("size", v)) => size = Some(v.parse::<u8>().map_err(|_| bad())?),
                _ => return Err(bad()),
            }
        }
        let (base, size) = (base.ok_or_else(bad)?, size.ok_or_else(bad)?);
        if size < base.prefix || size > 30 {
            return Err(bad());
        }
        Ok(Pool { base, size })
    }

    /// The subnets of the pool, in order.
    pub fn subnets(&self) -> impl Iterator<Item = Ipv4Net> + '_ {
        let count = 1u64 << (self.size - self.base.prefix) as u32;
        let step = 1u64 << (32 - self.size as u32);
        (0..count).map(move |i| {
            Ipv4Net::new(
                Ipv4Addr::from((u32::from(self.base.addr) as u64 + i * step) as u32),
                self.size,
            )
        })
    }
}

/// Docker's default pools: 172.17.0.0/16 … 172.31.0.0/16, then 192.168.0.0/16 in /20s.
pub fn default_pools() -> Vec<Pool> {
    vec![
        Pool {
            base: Ipv4Net::new(Ipv4Addr::new(172, 17, 0, 0), 16),
            size: 16,
        },
        Pool {
            base: Ipv4Net::new(Ipv4Addr::new(172, 18, 0, 0), 15),
            size: 16,
        },
        Pool {
            base: Ipv4Net::new(Ipv4Addr::new(172, 20, 0, 0), 14),
            size: 16,
        },
        Pool {
            base: Ipv4Net::new(Ipv4Addr::new(172, 24, 0, 0), 14),
            size: 16,
        },
        Pool {
            base: Ipv4Net::new(Ipv4Addr::new(172, 28, 0, 0), 14),
            size: 16,
        },
        Pool {
            base: Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16),
            size: 20,
        },
    ]
}

/// The first subnet of `pools` overlapping none of `taken` (other networks and host routes).
pub fn pick_subnet(pools: &[Pool], taken: &[Ipv4Net]) -> Result<Ipv4Net, Error> {
    for p in pools {
        for s in p.subnets() {
            if !taken.iter().any(|t| t.overlaps(&s)) {
                return Ok(s);
            }
        }
    }
    Err(Error::PoolsExhausted)
}

/// A network's addresses: which are in use (by whom) and where the next search starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AddressSpace {
    /// Address -> owner (container ID, or `gateway`).
    pub allocated: BTreeMap<Ipv4Addr, String>,
    /// The address handed out last.
    pub last: Option<Ipv4Addr>,
}

impl AddressSpace {
    /// Marks `ip` used by `owner`; fails if it is outside `subnet` or taken by someone else.
    pub fn reserve(&mut self, subnet: &Ipv4Net, ip: Ipv4Addr, owner: &str) -> Result<(), Error> {
        if !subnet.contains(ip)
            || (subnet.prefix < 31 && (ip == subnet.addr || ip == subnet.broadcast()))
        {
            return Err(Error::OutOfRange {
                addr: ip,
                subnet: *subnet,
            });
        }
        match self.allocated.get(&ip) {
            Some(o) if o != owner => Err(Error::InUse(ip)),
            _ => {
                self.allocated.insert(ip, owner.to_string());
                Ok(())
            }
        }
    }

    /// Hands out the next free address after the last one given (wrapping around).
    pub fn allocate(&mut self, subnet: &Ipv4Net, owner: &str) -> Result<Ipv4Addr, Error> {
        self.allocate_in(subnet, None, owner)
    }

    /// [`AddressSpace::allocate`] limited to `range` (dockerd's `--ip-range`) inside `subnet`.
    pub fn allocate_in(
        &mut self,
        subnet: &Ipv4Net,
        range: Option<&Ipv4Net>,
        owner: &str,
    ) -> Result<Ipv4Addr, Error> {
        let (mut lo, mut hi) = if subnet.prefix >= 31 {
            (u32::from(subnet.addr), u32::from(subnet.broadcast()))
        } else {
            (
                u32::from(subnet.addr) + 1,
                u32::from(subnet.broadcast()) - 1,
            )
        };
        if let Some(r) = range {
            lo = lo.max(u32::from(r.addr));
            hi = hi.min(u32::from(r.broadcast()));
            if lo > hi {
                return Err(Error::Exhausted(subnet.to_string()));
            }
        }
        let n = (hi - lo) as u64 + 1;
        let start = match self.last {
            Some(l) if subnet.contains(l) && u32::from(l) >= lo && u32::from(l) < hi => {
                u32::from(l) + 1 - lo
            }
            _ => 0,
        } as u64;
        for i in 0..n {
            let ip = Ipv4Addr::from(lo + ((start + i) % n) as u32);
            if let std::collections::btree_map::Entry::Vacant(e) = self.allocated.entry(ip) {
                e.insert(owner.to_string());
                self.last = Some(ip);
                return Ok(ip);
            }
        }
        Err(Error::Exhausted(subnet.to_string()))
    }

    /// Frees `ip` if `owner` holds it.
    pub fn release(&mut self, ip: Ipv4Addr, owner: &str) {
        if self.allocated.get(&ip).is_some_and(|o| o == owner) {
            self.allocated.remove(&ip);
        }
    }

    /// Frees every address `owner` holds.
    pub fn release_owner(&mut self, owner: &str) {
        self.allocated.retain(|_, o| o != owner);
    }
}

/// Parses an IPv4 address with Docker's error text.
pub fn parse_addr(s: &str) -> Result<Ipv4Addr, Error> {
    s.parse().map_err(|_| Error::BadAddress(s.to_string()))
}

/// An IPv6 subnet (host bits cleared on parse), e.g. `fd00:1::/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv6Net {
    /// Network address.
    pub addr: Ipv6Addr,
    /// Prefix length, 0..=128.
    pub prefix: u8,
}

fn mask6(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix.min(128) as u32)
    }
}

impl Ipv6Net {
    /// A subnet from an address (host bits cleared) and a prefix length.
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Ipv6Net {
        let prefix = prefix.min(128);
        Ipv6Net {
            addr: Ipv6Addr::from(u128::from(addr) & mask6(prefix)),
            prefix,
        }
    }

    /// Parses `x:y::/n`, returning the subnet and the address as written.
    pub fn parse_with_host(s: &str) -> Result<(Ipv6Net, Ipv6Addr), Error> {
        let bad = || Error::BadCidr(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = a.parse().map_err(|_| bad())?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 128 {
            return Err(bad());
        }
        Ok((Ipv6Net::new(addr, prefix), addr))
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & mask6(self.prefix) == u128::from(self.addr)
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(&self, o: &Ipv6Net) -> bool {
        let m = mask6(self.prefix.min(o.prefix));
        u128::from(self.addr) & m == u128::from(o.addr) & m
    }

    /// The `n`th address of the subnet (`None` past its end).
    pub fn nth(&self, n: u128) -> Option<Ipv6Addr> {
        let size_bits = 128 - self.prefix as u32;
        if size_bits < 128 && n >> size_bits != 0 {
            return None;
        }
        Some(Ipv6Addr::from(u128::from(self.addr) | n))
    }

    /// The first address after the subnet-router anycast one (the usual gateway, `…::1`).
    pub fn first_host(&self) -> Ipv6Addr {
        self.nth(1).unwrap_or(self.addr)
    }

    /// A random unique local /64 (`fdXX:XXXX:XXXX:YYYY::/64`, RFC 4193), as Docker picks
    /// for an IPv6 network created without a subnet.
    pub fn random_ula() -> Ipv6Net {
        let mut b = [0u8; 16];
        let ok = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b[1..8]));
        if ok.is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
                ^ u128::from(std::process::id());
            b[1..8].copy_from_slice(&t.to_be_bytes()[9..16]);
        }
        b[0] = 0xfd;
        Ipv6Net::new(Ipv6Addr::from(b), 64)
    }
}

impl fmt::Display for Ipv6Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv6Net {
    type Err = Error;
    fn from_str(s: &str) -> Result<Ipv6Net, Error> {
        Ipv6Net::parse_with_host(s).map(|(n, _)| n)
    }
}

impl Serialize for Ipv6Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv6Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Ipv6Net, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A network's IPv6 addresses: which are in use (by whom); new ones are handed out in order
/// from `…::2` up, skipping those in use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AddressSpace6 {
    /// Address -> owner (container ID, or `gateway`).
    pub allocated: BTreeMap<Ipv6Addr, String>,
}

impl AddressSpace6 {
    /// Marks `ip` used by `owner`; fails if it is outside `subnet` (or its subnet-router
    /// address) or taken by someone else.
    pub fn reserve(&mut self, subnet: &Ipv6Net, ip: Ipv6Addr, owner: &str) -> Result<(), Error> {
        if !subnet.contains(ip) || ip == subnet.addr {
            return Err(Error::OutOfRange6 {
                addr: ip,
                subnet: *subnet,
            });
        }
        match self.allocated.get(&ip) {
            Some(o) if o != owner => Err(Error::InUse6(ip)),
            _ => {
                self.allocated.insert(ip, owner.to_string());
                Ok(())
            }
        }
    }

    /// Hands out the lowest free address of `subnet` from `…::1` up.
    pub fn allocate(&mut self, subnet: &Ipv6Net, owner: &str) -> Result<Ipv6Addr, Error> {
        let mut n = 1u128;
        while let Some(ip) = subnet.nth(n) {
            if let std::collections::btree_map::Entry::Vacant(e) = self.allocated.entry(ip) {
                e.insert(owner.to_string());
                return Ok(ip);
            }
            n += 1;
            if n > 1 << 20 {
                break;
            }
        }
        Err(Error::Exhausted(subnet.to_string()))
    }

    /// Frees every address `owner` holds.
    pub fn release_owner(&mut self, owner: &str) {
        self.allocated.retain(|_, o| o != owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_overlap() {
        assert_eq!(net("172.17.0.1/16").to_string(), "172.17.0.0/16");
        assert!(net("10.0.0.0/8").overlaps(&net("10.1.2.0/24")));
        assert!(net("10.1.2.0/24").overlaps(&net("10.0.0.0/8")));
        assert!(!net("10.1.2.0/24").overlaps(&net("10.1.3.0/24")));
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "300.0.0.0/8",
            "10.0.0.0/",
            "x/8",
            "10.0.0.0/+8",
        ] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad}");
        }
        assert_eq!(net("10.0.0.0/24").broadcast(), Ipv4Addr::new(10, 0, 0, 255));
        assert!(net("10.0.0.0/24").contains(Ipv4Addr::new(10, 0, 0, 9)));
    }

    #[test]
    fn proc_route() {
        let t =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                 eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                 eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                 docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let r = parse_proc_route(t);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].dst, net("192.0.2.0/24"));
        assert_eq!(r[1].dst, net("172.17.0.0/16"));
        assert_eq!(r[1].iface, "docker0");
    }

    #[test]
    fn pools() {
        let p = default_pools();
        assert_eq!(pick_subnet(&p, &[]).unwrap(), net("172.17.0.0/16"));
        assert_eq!(
            pick_subnet(&p, &[net("172.17.0.0/16")]).unwrap(),
            net("172.18.0.0/16")
        );
        let all: Vec<Ipv4Net> = (17..32).map(|i| net(&format!("172.{i}.0.0/16"))).collect();
        assert_eq!(pick_subnet(&p, &all).unwrap(), net("192.168.0.0/20"));
        let mut more = all.clone();
        more.push(net("192.168.0.0/20"));
        assert_eq!(pick_subnet(&p, &more).unwrap(), net("192.168.16.0/20"));
        let q = Pool::parse("base=10.10.0.0/16,size=24").unwrap();
        assert_eq!(
            pick_subnet(&[q], &[net("10.10.0.0/24")]).unwrap(),
            net("10.10.1.0/24")
        );
        assert!(Pool::parse("base=10.10.0.0/16,size=8").is_err());
        assert!(Pool::parse("base=10.10.0.0/16").is_err());
    }

    #[test]
    fn allocation_never_repeats_in_use() {
        let s = net("10.0.0.0/29"); // hosts .1-.6
        let mut a = AddressSpace::default();
        a.reserve(&s, Ipv4Addr::new(10, 0, 0, 1), "gateway")
            .unwrap();
        let x = a.allocate(&s, "a").unwrap();
        let y = a.allocate(&s, "b").unwrap();
        assert_eq!(x, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(y, Ipv4Addr::new(10, 0, 0, 3));
        a.release(x, "a");
        // Moves on rather than reusing .2 at once.
        assert_eq!(a.allocate(&s, "c").unwrap(), Ipv4Addr::new(10, 0, 0, 4));
        assert_eq!(a.reserve(&s, y, "d"), Err(Error::InUse(y)));
        assert!(a.reserve(&s, Ipv4Addr::new(10, 0, 1, 1), "d").is_err());
        assert!(a.reserve(&s, Ipv4Addr::new(10, 0, 0, 7), "d").is_err());
        for _ in 0..3 {
            a.allocate(&s, "e").unwrap(); // .5 .6 then .2 again
        }
        assert_eq!(a.allocate(&s, "f"), Err(Error::Exhausted(s.to_string())));
        // Survives a round trip through JSON (the engine's store).
        let j = serde_json::to_string(&a).unwrap();
        let b: AddressSpace = serde_json::from_str(&j).unwrap();
        assert_eq!(a, b);
        a.release_owner("e");
        assert_eq!(a.allocated.len(), 3);
        // A range inside the subnet.
        let s = net("10.1.0.0/24");
        let r = net("10.1.0.128/30");
        let mut b = AddressSpace::default();
        let got: Vec<Ipv4Addr> = (0..4)
            .map(|_| b.allocate_in(&s, Some(&r), "x").unwrap())
            .collect();
        assert_eq!(got[0], Ipv4Addr::new(10, 1, 0, 128));
        assert_eq!(got[3], Ipv4Addr::new(10, 1, 0, 131));
        assert!(b.allocate_in(&s, Some(&r), "x").is_err());
    }

    #[test]
    fn ipv6_subnets_and_allocation() {
        let (n, h) = Ipv6Net::parse_with_host("fd00:1:2:3::5/64").unwrap();
        assert_eq!(n.to_string(), "fd00:1:2:3::/64");
        assert_eq!(h, "fd00:1:2:3::5".parse::<Ipv6Addr>().unwrap());
        assert!(Ipv6Net::parse_with_host("fd00::/129").is_err());
        assert!(Ipv6Net::parse_with_host("10.0.0.0/8").is_err());
        assert!(n.contains("fd00:1:2:3:ffff::1".parse().unwrap()));
        assert!(!n.contains("fd00:1:2:4::1".parse().unwrap()));
        assert!(n.overlaps(&"fd00:1::/32".parse().unwrap()));
        assert_eq!(n.first_host().to_string(), "fd00:1:2:3::1");
        let mut s = AddressSpace6::default();
        s.reserve(&n, n.first_host(), "gateway").unwrap();
        assert_eq!(s.allocate(&n, "a").unwrap().to_string(), "fd00:1:2:3::2");
        assert_eq!(s.allocate(&n, "b").unwrap().to_string(), "fd00:1:2:3::3");
        assert!(matches!(
            s.reserve(&n, "fd00:1:2:3::2".parse().unwrap(), "c"),
            Err(Error::InUse6(_))
        ));
        s.release_owner("a");
        assert_eq!(s.allocate(&n, "c").unwrap().to_string(), "fd00:1:2:3::2");
        let tiny: Ipv6Net = "fd00::/127".parse().unwrap();
        let mut t = AddressSpace6::default();
        assert!(t.allocate(&tiny, "x").is_ok());
        assert!(t.allocate(&tiny, "y").is_err());
        let u = Ipv6Net::random_ula();
        assert_eq!(u.prefix, 64);
        assert_eq!(u.addr.octets()[0], 0xfd);
    }
}
