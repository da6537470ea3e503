//! berth's container networking, the `network/` layer of DESIGN.md. Each module owns one
//! kernel or protocol surface and knows nothing of containers or the daemon's store:
//!
//! * [`netlink`]: a small NETLINK_ROUTE client (bridges, veth pairs, moving an end into a
//!   network namespace, addresses, routes, link up/down, deletion) — no `ip` process.
//! * [`netns`]: persistent named network namespaces (a bind mount of the nsfs file) and
//!   running code inside one from a dedicated thread.
//! * [`ipam`]: IPv4 subnets, the host's routes, subnet pools (Docker's defaults) and the
//!   per-network address allocator whose state the engine persists.
//! * [`nft`]: berth's own nftables table (masquerade, isolation, internal networks, DNAT of
//!   published ports), applied atomically with `nft -f -`.
//! * [`ports`]: host port reservations (a bound socket per published port).
//! * [`dns`]: the embedded DNS server answering container names at 127.0.0.11.
//! * [`setup`]: the recipes the engine uses (ensure a bridge, attach a namespace by veth).
//! * [`sysctl`]: the few /proc/sys knobs networking needs (ip_forward, route_localnet).

pub mod dns;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod ports;
pub mod setup;
pub mod sysctl;
