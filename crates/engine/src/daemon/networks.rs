//! Networks: the predefined `bridge`, `host` and `none` networks and user-defined bridge
//! networks (create/list/inspect/remove/prune/connect/disconnect), their records and address
//! allocations in the store (tables `networks` and `endpoints`), and each container's
//! networking while it runs: a persistent named network namespace under
//! `<exec-root>/netns/<id>` (given to the runtime in config.json, so links are made before
//! start), a veth pair per network, published ports (host port reservation + DNAT), the
//! embedded DNS server at 127.0.0.11 on user-defined networks, and the container's
//! /etc/hosts and /etc/resolv.conf. Everything is undone when the container stops, and at
//! daemon start for containers that are gone (crash recovery). A network made with `--ipv6`
//! also has an IPv6 subnet (given or a random unique local /64): its bridge and containers
//! get IPv6 addresses, a default route and AAAA answers; berth turns no IPv6 forwarding on
//! and has no IPv6 NAT or published ports.
//!
//! Coexistence: berth only ever deletes links it recorded (its bridges and veths) and only
//! writes its own nftables table. A daemon whose exec root is not the default one is an
//! *instance* with its own tag: its default bridge carries the tag (or is `--bridge-name`),
//! and the nft table is named after the default bridge (`berth` for `berth0`, else
//! `berth_<bridge>`), so test daemons run side by side. The default bridge link and its rules are
//! made on first use and kept until the daemon stops (or, after a crash, until it starts again
//! and finds them idle).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use ::network::ipam::{AddressSpace, AddressSpace6, Ipv4Net, Ipv6Net, Pool};
use ::network::ports::{Proto, Reservation};
use api::backend::ApiResult;
use api::types::*;
use api::{ApiError, Filters};
use serde::{Deserialize, Serialize};

use super::store::ContainerRecord;
use super::{blocking, DaemonOptions, Inner};

const NETWORKS: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("networks");
const ENDPOINTS: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("endpoints");

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn poisoned() -> ApiError {
    ApiError::Internal(
        "the daemon's network table is unusable (a task panicked); restart the daemon".into(),
    )
}

fn random_id() -> ApiResult<String> {
    ::image::content::random_hex(32).map_err(internal)
}

fn now_rfc3339() -> String {
    let t = api::time::Timestamp::now();
    shim::timefmt::rfc3339_nano(t.seconds, t.nanos)
}

/// A network as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub created: String,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    /// The subnet was given by the user (never re-picked).
    pub user_subnet: bool,
    /// Dynamic addresses come from this part of the subnet (`--ip-range`).
    pub ip_range: Option<Ipv4Net>,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// The bridge link (bridge driver).
    pub bridge: String,
    /// Addresses in use.
    pub space: AddressSpace,
    /// IPv6 (`--ipv6`): the subnet, the bridge's address, the addresses in use.
    pub subnet6: Option<Ipv6Net>,
    pub gateway6: Option<Ipv6Addr>,
    pub space6: AddressSpace6,
}

impl NetworkRecord {
    fn predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }
    fn is_default_bridge(&self) -> bool {
        self.name == "bridge"
    }
}

/// A container's attachment to a network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct EndpointRecord {
    pub network_id: String,
    pub aliases: Vec<String>,
    pub requested_ip: Option<Ipv4Addr>,
    pub requested_mac: String,
    /// Set while running.
    pub endpoint_id: String,
    pub ip: Option<Ipv4Addr>,
    pub mac: String,
    pub host_if: String,
    pub ifname: String,
    /// `--ip6`.
    pub requested_ip6: Option<Ipv6Addr>,
    /// Set while running on an IPv6 network.
    pub ip6: Option<Ipv6Addr>,
}

/// A published port while the container runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct PortRecord {
    pub proto: String,
    pub host_ip: String,
    pub host_port: u16,
    pub port: u16,
}

/// A container's networking as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ContainerNet {
    /// Attachments, the primary (network mode) one first.
    pub endpoints: Vec<EndpointRecord>,
    /// Published ports (while running).
    pub ports: Vec<PortRecord>,
    /// The namespace is mounted (while running).
    pub netns: bool,
}

#[derive(Default)]
struct Live {
    reservations: Vec<Reservation>,
    dns: Option<tokio::task::AbortHandle>,
}

struct State {
    nets: BTreeMap<String, NetworkRecord>,
    cons: HashMap<String, ContainerNet>,
    live: HashMap<String, Live>,
}

/// The daemon's networks.
pub(crate) struct Networks {
    st: Mutex<State>,
    /// berth's nftables table.
    table: String,
    /// The default bridge link.
    default_bridge: String,
    pools: Vec<Pool>,
    netns_dir: PathBuf,
    /// The ruleset applied last (an unchanged one is not applied again), and the generation
    /// of the state it was rendered from.
    applied: Arc<Mutex<Applied>>,
    /// Generations of rendered rulesets (taken under the state lock, so they follow the
    /// order of state changes).
    rules_gen: std::sync::atomic::AtomicU64,
    /// The default bridge was made by this daemon: it and its rules stay until the daemon
    /// stops (as docker0 does), so each `run --rm` does not make and delete a bridge and an
    /// nft table (tens of milliseconds of kernel work each).
    default_kept: std::sync::atomic::AtomicBool,
}

/// A daemon's instance tag: empty for the default exec root, else a hash of it.
fn instance_tag(opts: &DaemonOptions) -> String {
    if opts.exec_root == std::path::Path::new("/run/berth") {
        return String::new();
    }
    // FNV-1a of the exec root: stable for one daemon, distinct between test daemons.
    let mut h: u32 = 0x811c_9dc5;
    for b in opts.exec_root.as_os_str().as_encoded_bytes() {
        h ^= *b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

fn load_table(db: &redb::Database, t: redb::TableDefinition<&str, &str>) -> Vec<String> {
    use redb::ReadableTable;
    let Ok(tx) = db.begin_read() else {
        return Vec::new();
    };
    let Ok(tab) = tx.open_table(t) else {
        return Vec::new();
    };
    let Ok(it) = tab.iter() else {
        return Vec::new();
    };
    it.flatten().map(|(_, v)| v.value().to_string()).collect()
}

fn put(inner: &Inner, t: redb::TableDefinition<&str, &str>, k: &str, v: &str) -> ApiResult<()> {
    let db = inner.store.db();
    let tx = db.begin_write().map_err(internal)?;
    {
        let mut tab = tx.open_table(t).map_err(internal)?;
        tab.insert(k, v).map_err(internal)?;
    }
    tx.commit().map_err(internal)
}

fn del(inner: &Inner, t: redb::TableDefinition<&str, &str>, k: &str) -> ApiResult<()> {
    let db = inner.store.db();
    let tx = db.begin_write().map_err(internal)?;
    {
        let mut tab = tx.open_table(t).map_err(internal)?;
        tab.remove(k).map_err(internal)?;
    }
    tx.commit().map_err(internal)
}

fn save_net(inner: &Inner, n: &NetworkRecord) -> ApiResult<()> {
    put(
        inner,
        NETWORKS,
        &n.id,
        &serde_json::to_string(n).map_err(internal)?,
    )
}

/// Publishes a network event (`create`, `destroy`, `connect`, `disconnect`).
fn event(inner: &Inner, action: &str, n: &NetworkRecord, container: Option<&str>) {
    let mut a = BTreeMap::new();
    a.insert("name".to_string(), n.name.clone());
    a.insert("type".to_string(), n.driver.clone());
    if let Some(c) = container {
        a.insert("container".to_string(), c.to_string());
    }
    inner.bus.publish("network", action, &n.id, a);
}

/// Holds the host-wide lock that serialises subnet choice and bridge creation between berth
/// daemons (so two daemons never pick the same free subnet at once).
fn host_lock() -> Option<nix::fcntl::Flock<std::fs::File>> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/run/berth-network.lock")
        .ok()?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).ok()
}

/// Subnets in use on the host, except those of `own` links.
fn host_subnets(own: &BTreeSet<String>) -> Vec<Ipv4Net> {
    ::network::ipam::host_routes()
        .into_iter()
        .filter(|r| !own.contains(&r.iface))
        .map(|r| r.dst)
        .collect()
}

impl Networks {
    /// Loads the networks, making the predefined ones.
    pub(crate) fn open(
        opts: &DaemonOptions,
        db: &redb::Database,
    ) -> Result<Networks, super::Error> {
        let bad = |m: String| super::Error::Network(m);
        let tag = instance_tag(opts);
        let default_bridge = match &opts.bridge_name {
            Some(b) => b.clone(),
            None if tag.is_empty() => "berth0".into(),
            None => format!("berth-{tag}"),
        };
        // One table per default bridge: `berth` for berth0, `berth_<bridge>` otherwise.
        let table = if default_bridge == "berth0" {
            "berth".to_string()
        } else {
            format!("berth_{default_bridge}")
        };
        if !::network::netlink::valid_name(&default_bridge) {
            return Err(bad(format!(
                "invalid --bridge-name {default_bridge:?}: 1 to 15 characters"
            )));
        }
        let pools = if opts.default_address_pools.is_empty() {
            ::network::ipam::default_pools()
        } else {
            opts.default_address_pools
                .iter()
                .map(|p| Pool::parse(p).map_err(|e| bad(e.to_string())))
                .collect::<Result<Vec<_>, _>>()?
        };
        let bip = match &opts.bip {
            Some(b) => Some(Ipv4Net::parse_with_host(b).map_err(|e| bad(format!("--bip: {e}")))?),
            None => None,
        };
        let mut nets = BTreeMap::new();
        for t in load_table(db, NETWORKS) {
            if let Ok(n) = serde_json::from_str::<NetworkRecord>(&t) {
                nets.insert(n.id.clone(), n);
            }
        }
        let mut cons = HashMap::new();
        for t in load_table(db, ENDPOINTS) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) {
                if let (Some(id), Ok(c)) = (
                    v.get("id").and_then(|i| i.as_str()).map(String::from),
                    serde_json::from_value::<ContainerNet>(v.clone()),
                ) {
                    cons.insert(id, c);
                }
            }
        }
        let me = Networks {
            st: Mutex::new(State {
                nets,
                cons,
                live: HashMap::new(),
            }),
            table,
            default_bridge,
            pools,
            netns_dir: opts.exec_root.join("netns"),
            applied: Arc::new(Mutex::new(Applied::default())),
            rules_gen: std::sync::atomic::AtomicU64::new(0),
            default_kept: std::sync::atomic::AtomicBool::new(false),
        };
        {
            let mut st = me.st.lock().map_err(|_| bad("poisoned".into()))?;
            for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
                if !st.nets.values().any(|n| n.name == name) {
                    let id = random_id().map_err(|e| bad(e.to_string()))?;
                    st.nets.insert(
                        id.clone(),
                        NetworkRecord {
                            id,
                            name: name.into(),
                            driver: driver.into(),
                            created: now_rfc3339(),
                            ..Default::default()
                        },
                    );
                }
            }
            let others: Vec<Ipv4Net> = st
                .nets
                .values()
                .filter(|n| !n.is_default_bridge())
                .filter_map(|n| n.subnet)
                .collect();
            let own = me.own_links(&st);
            let br = st
                .nets
                .values_mut()
                .find(|n| n.is_default_bridge())
                .ok_or_else(|| bad("no bridge network".into()))?;
            br.bridge = me.default_bridge.clone();
            let mut options = BTreeMap::new();
            options.insert(
                "com.docker.network.bridge.default_bridge".into(),
                "true".into(),
            );
            options.insert("com.docker.network.bridge.enable_icc".into(), "true".into());
            options.insert(
                "com.docker.network.bridge.enable_ip_masquerade".into(),
                "true".into(),
            );
            options.insert(
                "com.docker.network.bridge.host_binding_ipv4".into(),
                "0.0.0.0".into(),
            );
            options.insert(
                "com.docker.network.bridge.name".into(),
                me.default_bridge.clone(),
            );
            options.insert("com.docker.network.driver.mtu".into(), "1500".into());
            br.options = options;
            if let Some((subnet, gw)) = bip {
                if br.subnet != Some(subnet) || br.gateway != Some(gw) {
                    br.subnet = Some(subnet);
                    br.gateway = Some(gw);
                    br.space = AddressSpace::default();
                    let _ = br.space.reserve(&subnet, gw, "gateway");
                }
                br.user_subnet = true;
            } else if br.subnet.is_none()
                || (br.user_subnet && !br.space.allocated.values().any(|o| o != "gateway"))
            {
                let _l = host_lock();
                let mut taken = others;
                taken.extend(host_subnets(&own));
                let s = ::network::ipam::pick_subnet(&me.pools, &taken)
                    .map_err(|e| bad(e.to_string()))?;
                br.subnet = Some(s);
                br.gateway = Some(s.first_host());
                br.user_subnet = false;
                br.space = AddressSpace::default();
                let _ = br.space.reserve(&s, s.first_host(), "gateway");
            }
            // Stored now, before any container's endpoint can name them: a daemon killed
            // before its first network change would otherwise come back with new ids for
            // them, and its containers' endpoints would name networks that do not exist.
            let tx = db.begin_write().map_err(|e| bad(e.to_string()))?;
            {
                let mut tab = tx.open_table(NETWORKS).map_err(|e| bad(e.to_string()))?;
                for n in st.nets.values().filter(|n| n.predefined()) {
                    let text = serde_json::to_string(n).map_err(|e| bad(e.to_string()))?;
                    tab.insert(n.id.as_str(), text.as_str())
                        .map_err(|e| bad(e.to_string()))?;
                }
            }
            tx.commit().map_err(|e| bad(e.to_string()))?;
        }
        Ok(me)
    }

    fn lock(&self) -> ApiResult<MutexGuard<'_, State>> {
        self.st.lock().map_err(|_| poisoned())
    }

    /// Links berth made (bridges of its networks, veths of its containers).
    fn own_links(&self, st: &State) -> BTreeSet<String> {
        let mut s: BTreeSet<String> = st
            .nets
            .values()
            .filter(|n| !n.bridge.is_empty())
            .map(|n| n.bridge.clone())
            .collect();
        s.insert(self.default_bridge.clone());
        s
    }

    fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(id)
    }

    /// Whether the default bridge has containers.
    fn default_in_use(st: &State) -> bool {
        let Some(br) = st.nets.values().find(|n| n.is_default_bridge()) else {
            return false;
        };
        st.cons.values().any(|c| {
            c.endpoints
                .iter()
                .any(|e| e.network_id == br.id && e.ip.is_some())
        })
    }

    /// berth's nft table as the state says, with its generation.
    fn ruleset(&self, st: &State) -> (u64, ::network::nft::Ruleset) {
        let default_active =
            Self::default_in_use(st) || self.default_kept.load(std::sync::atomic::Ordering::SeqCst);
        let mut rs = ::network::nft::Ruleset {
            table: self.table.clone(),
            ..Default::default()
        };
        for n in st.nets.values() {
            if n.driver != "bridge" || (n.is_default_bridge() && !default_active) {
                continue;
            }
            if let Some(s) = n.subnet {
                rs.bridges.push(::network::nft::Bridge {
                    name: n.bridge.clone(),
                    subnet: s,
                    internal: n.internal,
                    subnet6: n.subnet6,
                });
            }
        }
        for c in st.cons.values() {
            let Some(ip) = c.endpoints.first().and_then(|e| e.ip) else {
                continue;
            };
            for p in &c.ports {
                let host_ip: Option<Ipv4Addr> = p
                    .host_ip
                    .parse()
                    .ok()
                    .filter(|a: &Ipv4Addr| !a.is_unspecified());
                rs.ports.push(::network::nft::PortMap {
                    proto: Proto::parse(&p.proto).unwrap_or(Proto::Tcp),
                    host_ip,
                    host_port: p.host_port,
                    addr: ip,
                    port: p.port,
                });
            }
        }
        let gen = self
            .rules_gen
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        (gen, rs)
    }

    /// Brings berth's nft table to the state before returning (new published ports must work
    /// when a start answers).
    fn sync_rules(&self, st: &State) -> ApiResult<()> {
        let (gen, rs) = self.ruleset(st);
        apply_rules(&self.applied, gen, rs)
    }

    /// Starts bringing berth's nft table to the state on a thread; the caller waits for it
    /// (with [`PendingRules::wait`]) after doing other work meanwhile.
    fn sync_rules_async(&self, st: &State) -> PendingRules {
        let (gen, rs) = self.ruleset(st);
        let applied = self.applied.clone();
        PendingRules(Some(std::thread::spawn(move || {
            apply_rules(&applied, gen, rs)
        })))
    }

    /// Brings berth's nft table to the state in the background: for removals (a container's
    /// ports going away), which wait for an RCU grace period in the kernel (~15-20 ms) that
    /// an exit or a `rm` need not wait for. A later state applied first wins.
    fn sync_rules_later(&self, st: &State) {
        let (gen, rs) = self.ruleset(st);
        let applied = self.applied.clone();
        std::thread::spawn(move || {
            if let Err(e) = apply_rules(&applied, gen, rs) {
                eprintln!("berth daemon: warning: cannot update the nft rules: {e}");
            }
        });
    }
}

/// The ruleset in the kernel, and the generation of the state it came from.
#[derive(Default)]
struct Applied {
    gen: u64,
    rules: Option<::network::nft::Ruleset>,
}

/// Applies `rs` (of generation `gen`) unless a later one was applied already: by adding the
/// new ports' rules when only ports were added (quick), else by replacing the table.
fn apply_rules(applied: &Mutex<Applied>, gen: u64, rs: ::network::nft::Ruleset) -> ApiResult<()> {
    let mut last = applied.lock().map_err(|_| poisoned())?;
    if last.gen > gen {
        return Ok(());
    }
    if last.rules.as_ref() == Some(&rs) {
        last.gen = gen;
        return Ok(());
    }
    if let Some(added) = last.rules.as_ref().and_then(|prev| rs.added_ports(prev)) {
        if rs.apply_added(&added).is_ok() {
            last.rules = Some(rs);
            last.gen = gen;
            return Ok(());
        }
        // Whatever went wrong, replacing the whole table below sets it right.
    }
    last.rules = None;
    match rs.apply() {
        Ok(()) => {}
        // Without nft, containers still reach each other and the host; only NAT and
        // published ports need it, so only those fail.
        Err(::network::nft::Error::Spawn(e))
            if e.kind() == std::io::ErrorKind::NotFound && rs.ports.is_empty() =>
        {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                eprintln!("berth daemon: warning: nft is not installed: containers get no outbound NAT (install nftables)")
            });
        }
        Err(e) => return Err(internal(e)),
    }
    last.rules = Some(rs);
    last.gen = gen;
    Ok(())
}

// ---------------------------------------------------------------- lookups

fn find_net<'a>(st: &'a State, key: &str) -> ApiResult<&'a NetworkRecord> {
    if let Some(n) = st.nets.get(key) {
        return Ok(n);
    }
    if let Some(n) = st.nets.values().find(|n| n.name == key) {
        return Ok(n);
    }
    let hits: Vec<&NetworkRecord> = st
        .nets
        .values()
        .filter(|n| !key.is_empty() && n.id.starts_with(key))
        .collect();
    match hits.len() {
        1 => Ok(hits[0]),
        0 => Err(ApiError::NotFound(format!("network {key} not found"))),
        _ => Err(ApiError::InvalidParameter(format!(
            "network {key} is ambiguous ({} matches found based on ID prefix)",
            hits.len()
        ))),
    }
}

fn container(inner: &Inner, key: &str) -> ApiResult<ContainerRecord> {
    let m = inner.containers.lock().map_err(|_| poisoned())?;
    let k = key.strip_prefix('/').unwrap_or(key);
    if let Some(c) = m.get(k) {
        return Ok(c.clone());
    }
    if let Some(c) = m.values().find(|c| c.name == k) {
        return Ok(c.clone());
    }
    let hits: Vec<&ContainerRecord> = m
        .values()
        .filter(|c| !k.is_empty() && c.id.starts_with(k))
        .collect();
    if hits.len() == 1 {
        return Ok(hits[0].clone());
    }
    Err(ApiError::no_such_container(key))
}

fn running(c: &ContainerRecord) -> bool {
    matches!(c.state.status.as_str(), "running" | "paused" | "restarting")
}

// ---------------------------------------------------------------- container create

/// Checks a create request's networking and records the container's endpoints; adds the
/// image's EXPOSEd ports to the config. Called before the container record is saved.
pub(crate) fn on_create(
    inner: &Inner,
    id: &str,
    cfg: &mut ContainerConfig,
    hc: &mut HostConfig,
    nc: Option<&NetworkingConfig>,
    image_exposed: &[String],
) -> ApiResult<()> {
    if !image_exposed.is_empty() {
        let e = cfg.exposed_ports.get_or_insert_with(Default::default);
        for p in image_exposed {
            e.entry(p.clone()).or_insert_with(|| serde_json::json!({}));
        }
    }
    // Published ports are exposed too.
    if let Some(pb) = &hc.port_bindings {
        let e = cfg.exposed_ports.get_or_insert_with(Default::default);
        for k in pb.keys() {
            e.entry(k.clone()).or_insert_with(|| serde_json::json!({}));
        }
    }
    for k in hc.port_bindings.iter().flat_map(|m| m.keys()) {
        parse_port_key(k)?;
    }
    if let Some(pb) = &hc.port_bindings {
        for b in pb.values().flatten().flatten() {
            if !b.host_ip.is_empty() {
                b.host_ip.parse::<Ipv4Addr>().map_err(|_| {
                    ApiError::InvalidParameter(format!(
                        "invalid host IP {:?}: only IPv4 is supported",
                        b.host_ip
                    ))
                })?;
            }
            parse_host_ports(&b.host_port)?;
        }
    }
    let mode = hc.network_mode.clone();
    let eps = nc
        .and_then(|n| n.endpoints_config.clone())
        .unwrap_or_default();
    let st = inner.networks.lock()?;
    let mut cn = ContainerNet::default();
    match mode.as_str() {
        "none" | "host" => {
            if hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty()) && mode == "host" {
                // Docker ignores published ports in host mode (with a warning).
                hc.port_bindings = None;
            }
        }
        m if m.starts_with("container:") => {
            let target = &m["container:".len()..];
            let t = container(inner, target)?;
            if t.id == id {
                return Err(ApiError::InvalidParameter(
                    "cannot join own network namespace".into(),
                ));
            }
            hc.network_mode = format!("container:{}", t.id);
            cfg.hostname = t.config.hostname.clone();
        }
        m => {
            let net = find_net(&st, m)?;
            if net.driver != "bridge" {
                return Err(ApiError::InvalidParameter(format!(
                    "network {m} cannot be used here"
                )));
            }
            let mut order: Vec<(String, Option<EndpointSettings>)> = vec![(m.to_string(), None)];
            for (k, v) in &eps {
                if k == m || find_net(&st, k).is_ok_and(|n| n.id == net.id) {
                    order[0].1 = Some(v.clone());
                } else {
                    order.push((k.clone(), Some(v.clone())));
                }
            }
            for (name, es) in order {
                let n = find_net(&st, &name)?;
                if n.driver != "bridge" {
                    return Err(ApiError::InvalidParameter(format!(
                        "container cannot be connected to network {name}"
                    )));
                }
                cn.endpoints.push(endpoint_from(n, es.as_ref())?);
            }
        }
    }
    drop(st);
    save_con_with_id(inner, id, &cn)?;
    inner.networks.lock()?.cons.insert(id.to_string(), cn);
    Ok(())
}

fn save_con_with_id(inner: &Inner, id: &str, c: &ContainerNet) -> ApiResult<()> {
    let mut v = serde_json::to_value(c).map_err(internal)?;
    v["id"] = serde_json::json!(id);
    put(inner, ENDPOINTS, id, &v.to_string())
}

fn endpoint_from(n: &NetworkRecord, es: Option<&EndpointSettings>) -> ApiResult<EndpointRecord> {
    let mut ep = EndpointRecord {
        network_id: n.id.clone(),
        ..Default::default()
    };
    let Some(es) = es else { return Ok(ep) };
    let aliases = es.aliases.clone().unwrap_or_default();
    if !aliases.is_empty() && n.is_default_bridge() {
        return Err(ApiError::InvalidParameter(
            "network-scoped alias is supported only for containers in user defined networks".into(),
        ));
    }
    ep.aliases = aliases;
    if let Some(ip) = es
        .ipam_config
        .as_ref()
        .map(|c| c.ipv4_address.clone())
        .filter(|s| !s.is_empty())
    {
        if n.is_default_bridge() || !n.user_subnet {
            return Err(ApiError::InvalidParameter(
                "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
            ));
        }
        let a: Ipv4Addr = ip
            .parse()
            .map_err(|_| ApiError::InvalidParameter(format!("invalid IPv4 address: {ip}")))?;
        if let Some(s) = n.subnet {
            if !s.contains(a) {
                return Err(ApiError::InvalidParameter(format!(
                    "no configured subnet or ip-range contain the IP address {a}"
                )));
            }
        }
        ep.requested_ip = Some(a);
    }
    if let Some(ip) = es
        .ipam_config
        .as_ref()
        .map(|c| c.ipv6_address.clone())
        .filter(|s| !s.is_empty())
    {
        let a: Ipv6Addr = ip
            .parse()
            .map_err(|_| ApiError::InvalidParameter(format!("invalid IPv6 address: {ip}")))?;
        if n.is_default_bridge() {
            return Err(ApiError::InvalidParameter(
                "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
            ));
        }
        if !n.subnet6.is_some_and(|s6| s6.contains(a)) {
            return Err(ApiError::InvalidParameter(format!(
                "invalid endpoint settings:\nno configured subnet contains IP address {a}"
            )));
        }
        ep.requested_ip6 = Some(a);
    }
    if !es.mac_address.is_empty() {
        if ::network::netlink::parse_mac(&es.mac_address).is_none() {
            return Err(ApiError::InvalidParameter(format!(
                "invalid MAC address: {}",
                es.mac_address
            )));
        }
        ep.requested_mac = es.mac_address.clone();
    }
    Ok(ep)
}

/// `80/tcp` -> (80, tcp).
fn parse_port_key(k: &str) -> ApiResult<(u16, Proto)> {
    let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    let proto = Proto::parse(proto)
        .ok_or_else(|| ApiError::InvalidParameter(format!("invalid proto: {proto}")))?;
    let port: u16 =
        p.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
            ApiError::InvalidParameter(format!("invalid port specification: {k:?}"))
        })?;
    Ok((port, proto))
}

/// `""` -> [0] (any), `8080` -> [8080], `8000-8010` -> the range.
fn parse_host_ports(s: &str) -> ApiResult<Vec<u16>> {
    let bad = || ApiError::InvalidParameter(format!("invalid port specification: {s:?}"));
    if s.is_empty() || s == "0" {
        return Ok(vec![0]);
    }
    if let Some((a, b)) = s.split_once('-') {
        let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a == 0 || b < a {
            return Err(bad());
        }
        return Ok((a..=b).collect());
    }
    Ok(vec![s.parse().map_err(|_| bad())?])
}

/// The host's hostname for a container on the host's network (Docker's behaviour).
pub(crate) fn host_hostname(mode: &str) -> Option<String> {
    if mode != "host" {
        return None;
    }
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
}

/// The network namespace config.json gets: `Some(path)` to join, `None` for the host's.
pub(crate) fn spec_netns(inner: &Inner, id: &str, mode: &str) -> Option<Option<PathBuf>> {
    match mode {
        "none" => None, // the runtime's new namespace (loopback only)
        "host" => Some(None),
        m if m.starts_with("container:") => {
            Some(Some(inner.networks.netns_path(&m["container:".len()..])))
        }
        _ => Some(Some(inner.networks.netns_path(id))),
    }
}

/// Points config.json's network namespace at the container's (or host's) namespace.
pub(crate) fn patch_spec(
    inner: &Inner,
    dir: &std::path::Path,
    id: &str,
    mode: &str,
) -> ApiResult<()> {
    let Some(ns) = spec_netns(inner, id, mode) else {
        return Ok(());
    };
    let p = dir.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&p).map_err(internal)?).map_err(internal)?;
    if let Some(target) = mode.strip_prefix("container:") {
        // Docker: a container sharing another's network shows that one's hostname.
        if let Ok(t) = container(inner, target) {
            spec["hostname"] = serde_json::json!(t.config.hostname);
        }
    }
    if let Some(list) = spec["linux"]["namespaces"].as_array_mut() {
        list.retain(|n| n["type"] != "network");
        if let Some(path) = ns {
            list.push(serde_json::json!({"type": "network", "path": path}));
        }
    }
    std::fs::write(&p, serde_json::to_vec_pretty(&spec).map_err(internal)?).map_err(internal)
}

// ---------------------------------------------------------------- start / stop

/// Sets up a container's networking before its runtime creates it (blocking).
pub(crate) fn setup(inner: &Arc<Inner>, c: &ContainerRecord) -> ApiResult<PendingRules> {
    let mode = c.host_config.network_mode.as_str();
    let dir = crate::bundle::dir(&inner.opts.data_root, &c.id);
    match mode {
        "none" => {
            write_etc(inner, c, &[], false);
            return Ok(PendingRules(None));
        }
        "host" => {
            copy_host_file("/etc/hosts", &dir.join("hosts"));
            copy_host_file("/etc/resolv.conf", &dir.join("resolv.conf"));
            return Ok(PendingRules(None));
        }
        m if m.starts_with("container:") => {
            let t = container(inner, &m["container:".len()..])?;
            if !running(&t) || !::network::netns::exists(&inner.networks.netns_path(&t.id)) {
                return Err(ApiError::Conflict(format!(
                    "cannot join network namespace of a non running container: {}",
                    t.id
                )));
            }
            let tdir = crate::bundle::dir(&inner.opts.data_root, &t.id);
            for f in ["hosts", "resolv.conf"] {
                copy_host_file(&tdir.join(f).display().to_string(), &dir.join(f));
            }
            return Ok(PendingRules(None));
        }
        _ => {}
    }
    teardown(inner, &c.id)?;
    let r = setup_bridge(inner, c);
    if r.is_err() {
        let _ = teardown(inner, &c.id);
    }
    r
}

/// nft rules being applied for a container being set up (see [`setup`]).
pub(crate) struct PendingRules(Option<std::thread::JoinHandle<ApiResult<()>>>);

impl PendingRules {
    /// Waits until the rules are in the kernel.
    pub(crate) fn wait(self) -> ApiResult<()> {
        match self.0 {
            None => Ok(()),
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(internal("the nft rules thread panicked"))),
        }
    }
}

fn copy_host_file(from: &str, to: &std::path::Path) {
    if let Ok(b) = std::fs::read(from) {
        let _ = std::fs::write(to, b);
    }
}

fn setup_bridge(inner: &Arc<Inner>, c: &ContainerRecord) -> ApiResult<PendingRules> {
    let nw = &inner.networks;
    let ns = nw.netns_path(&c.id);
    ::network::netns::create(&ns).map_err(internal)?;
    ::network::setup::loopback_up(&ns).map_err(internal)?;
    let mut st = nw.lock()?;
    let mut cn = st.cons.get(&c.id).cloned().unwrap_or_default();
    if cn.endpoints.is_empty() {
        // A container created before networks existed: the default bridge.
        let br = st
            .nets
            .values()
            .find(|n| n.is_default_bridge())
            .ok_or_else(|| internal("no bridge network"))?;
        cn.endpoints.push(EndpointRecord {
            network_id: br.id.clone(),
            ..Default::default()
        });
    }
    cn.netns = true;
    st.cons.insert(c.id.clone(), cn.clone());
    save_con_with_id(inner, &c.id, &cn)?;
    let mut gw_given = false;
    for i in 0..cn.endpoints.len() {
        let ep = attach_endpoint(inner, &mut st, &c.id, i, &mut gw_given)?;
        cn.endpoints[i] = ep;
        st.cons.insert(c.id.clone(), cn.clone());
        save_con_with_id(inner, &c.id, &cn)?;
    }
    // Published ports.
    let mut reservations = Vec::new();
    let mut ports = Vec::new();
    let mut wanted: Vec<(u16, Proto, String, String)> = Vec::new();
    let pb = c.host_config.port_bindings.clone().unwrap_or_default();
    for (k, binds) in &pb {
        let (port, proto) = parse_port_key(k)?;
        let binds = binds.clone().unwrap_or_default();
        if binds.is_empty() {
            wanted.push((port, proto, String::new(), String::new()));
        }
        for b in binds {
            wanted.push((port, proto, b.host_ip.clone(), b.host_port.clone()));
        }
    }
    if c.host_config.publish_all_ports {
        for k in c.config.exposed_ports.iter().flat_map(|m| m.keys()) {
            if !pb.contains_key(k) {
                let (port, proto) = parse_port_key(k)?;
                wanted.push((port, proto, String::new(), String::new()));
            }
        }
    }
    let ep_name = c.name.clone();
    for (port, proto, host_ip, host_port) in wanted {
        let ip: Ipv4Addr = if host_ip.is_empty() {
            Ipv4Addr::UNSPECIFIED
        } else {
            host_ip
                .parse()
                .map_err(|_| ApiError::InvalidParameter(format!("invalid host IP {host_ip:?}")))?
        };
        let candidates = parse_host_ports(&host_port)?;
        let mut last_err = None;
        let mut got = None;
        for hp in &candidates {
            if *hp != 0 && port_taken(&st, &c.id, proto, ip, *hp, &ports) {
                last_err = Some(format!(
                    "Bind for {ip}:{hp} failed: port is already allocated"
                ));
                continue;
            }
            match Reservation::bind(proto, ip, *hp) {
                Ok(r) => {
                    got = Some(r);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    last_err = Some(format!(
                        "Bind for {ip}:{hp} failed: port is already allocated"
                    ));
                }
                Err(e) => {
                    last_err = Some(format!(
                        "failed to bind host port {ip}:{hp}/{}: {e}",
                        proto.as_str()
                    ))
                }
            }
        }
        let Some(r) = got else {
            return Err(ApiError::Internal(format!(
                "driver failed programming external connectivity on endpoint {ep_name} ({}): {}",
                cn.endpoints
                    .first()
                    .map(|e| e.endpoint_id.as_str())
                    .unwrap_or(""),
                last_err.unwrap_or_default()
            )));
        };
        ports.push(PortRecord {
            proto: proto.as_str().into(),
            host_ip: ip.to_string(),
            host_port: r.port(),
            port,
        });
        reservations.push(r);
    }
    cn.ports = ports;
    st.cons.insert(c.id.clone(), cn.clone());
    save_con_with_id(inner, &c.id, &cn)?;
    st.live.entry(c.id.clone()).or_default().reservations = reservations;
    let pending = nw.sync_rules_async(&st);
    let user_net = cn.endpoints.iter().any(|e| {
        st.nets
            .get(&e.network_id)
            .is_some_and(|n| !n.is_default_bridge())
    });
    let addrs: Vec<IpAddr> = cn.endpoints.iter().flat_map(etc_addrs).collect();
    drop(st);
    if user_net {
        start_dns(inner, &c.id)?;
    }
    write_etc(inner, c, &addrs, user_net);
    Ok(pending)
}

fn port_taken(
    st: &State,
    me: &str,
    proto: Proto,
    ip: Ipv4Addr,
    port: u16,
    mine: &[PortRecord],
) -> bool {
    let clash = |p: &PortRecord| {
        p.host_port == port
            && p.proto == proto.as_str()
            && (p.host_ip == ip.to_string() || p.host_ip == "0.0.0.0" || ip.is_unspecified())
    };
    mine.iter().any(clash)
        || st
            .cons
            .iter()
            .filter(|(id, _)| id.as_str() != me)
            .any(|(_, c)| c.ports.iter().any(clash))
}

/// Makes sure a network's bridge link exists (the default bridge is made on first use, its
/// subnet re-picked if the host gained a route over it meanwhile).
fn ensure_link(inner: &Inner, st: &mut State, net_id: &str) -> ApiResult<()> {
    let nw = &inner.networks;
    let own = nw.own_links(st);
    let others: Vec<Ipv4Net> = st
        .nets
        .values()
        .filter(|n| n.id != net_id)
        .filter_map(|n| n.subnet)
        .collect();
    let n = st
        .nets
        .get_mut(net_id)
        .ok_or_else(|| ApiError::NotFound(format!("network {net_id} not found")))?;
    if ::network::setup::link_exists(&n.bridge) {
        return Ok(());
    }
    let _l = host_lock();
    if !n.user_subnet {
        let busy = n.space.allocated.values().any(|o| o != "gateway");
        let routes = host_subnets(&own);
        if !busy
            && n.subnet
                .is_none_or(|s| routes.iter().any(|r| r.overlaps(&s)))
        {
            let mut taken = others;
            taken.extend(routes);
            let s = ::network::ipam::pick_subnet(&nw.pools, &taken).map_err(internal)?;
            n.subnet = Some(s);
            n.gateway = Some(s.first_host());
            n.space = AddressSpace::default();
            let _ = n.space.reserve(&s, s.first_host(), "gateway");
        }
    }
    let (Some(s), Some(gw)) = (n.subnet, n.gateway) else {
        return Err(internal(format!("network {} has no subnet", n.name)));
    };
    ::network::setup::ensure_bridge(&n.bridge, gw, s.prefix).map_err(internal)?;
    if let (Some(s6), Some(gw6)) = (n.subnet6, n.gateway6) {
        ::network::setup::bridge_address6(&n.bridge, gw6, s6.prefix).map_err(internal)?;
    }
    if n.is_default_bridge() {
        nw.default_kept
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
    let n = n.clone();
    save_net(inner, &n)
}

fn attach_endpoint(
    inner: &Inner,
    st: &mut State,
    id: &str,
    index: usize,
    gw_given: &mut bool,
) -> ApiResult<EndpointRecord> {
    let nw = &inner.networks;
    let mut ep = st
        .cons
        .get(id)
        .and_then(|c| c.endpoints.get(index))
        .cloned()
        .ok_or_else(|| internal("endpoint vanished"))?;
    if !st.nets.contains_key(&ep.network_id) {
        return Err(ApiError::NotFound(format!(
            "network {} not found",
            ep.network_id
        )));
    }
    ensure_link(inner, st, &ep.network_id)?;
    let n = st
        .nets
        .get_mut(&ep.network_id)
        .ok_or_else(|| ApiError::NotFound(format!("network {} not found", ep.network_id)))?;
    let subnet = n.subnet.ok_or_else(|| internal("network without subnet"))?;
    let ip = match ep.requested_ip {
        Some(a) => {
            n.space.reserve(&subnet, a, id).map_err(|e| match e {
                ::network::ipam::Error::InUse(_) => {
                    ApiError::Forbidden("Address already in use".into())
                }
                e => ApiError::InvalidParameter(e.to_string()),
            })?;
            a
        }
        None => n
            .space
            .allocate_in(&subnet, n.ip_range.as_ref(), id)
            .map_err(|e| ApiError::Forbidden(e.to_string()))?,
    };
    let ip6 = match n.subnet6 {
        None => None,
        Some(s6) => Some(match ep.requested_ip6 {
            Some(a) => {
                if let Err(e) = n.space6.reserve(&s6, a, id) {
                    n.space.release(ip, id);
                    return Err(match e {
                        ::network::ipam::Error::InUse6(_) => {
                            ApiError::Forbidden("Address already in use".into())
                        }
                        e => ApiError::InvalidParameter(e.to_string()),
                    });
                }
                a
            }
            None => match n.space6.allocate(&s6, id) {
                Ok(a) => a,
                Err(e) => {
                    n.space.release(ip, id);
                    return Err(ApiError::Forbidden(e.to_string()));
                }
            },
        }),
    };
    let n2 = n.clone();
    save_net(inner, &n2)?;
    let mac = ::network::netlink::parse_mac(&ep.requested_mac)
        .unwrap_or_else(|| ::network::netlink::mac_for(ip));
    let host_if = format!("veth{}", &random_id()?[..7]);
    let ifname = format!("eth{index}");
    let default_gateway = if !*gw_given && !n2.internal {
        *gw_given = true;
        n2.gateway
    } else {
        None
    };
    // Record before making the link, so a crash in between is cleaned up at restart.
    ep.ip = Some(ip);
    ep.ip6 = ip6;
    ep.host_if = host_if.clone();
    ep.ifname = ifname.clone();
    ep.mac = ::network::netlink::mac_string(&mac);
    ep.endpoint_id = random_id()?;
    if let Some(c) = st.cons.get_mut(id) {
        if let Some(e) = c.endpoints.get_mut(index) {
            *e = ep.clone();
        }
        let c = c.clone();
        save_con_with_id(inner, id, &c)?;
    }
    ::network::setup::attach(
        &nw.netns_path(id),
        &::network::setup::Attachment {
            bridge: &n2.bridge,
            host_if: &host_if,
            ifname: &ifname,
            ip,
            prefix: subnet.prefix,
            mac,
            default_gateway,
            ip6: ip6.zip(n2.subnet6).map(|(a, s6)| (a, s6.prefix)),
            default_gateway6: n2.gateway6.filter(|_| default_gateway.is_some()),
        },
    )
    .map_err(internal)?;
    event(inner, "connect", &n2, Some(id));
    Ok(ep)
}

/// Undoes a container's networking (idempotent; blocking): DNS server, port reservations,
/// veths, addresses, rules, the namespace mount.
pub(crate) fn teardown(inner: &Inner, id: &str) -> ApiResult<()> {
    let nw = &inner.networks;
    let mut st = nw.lock()?;
    if let Some(l) = st.live.remove(id) {
        if let Some(d) = l.dns {
            d.abort();
        }
    }
    let mut changed = false;
    let ns = nw.netns_path(id);
    // The veths go with the namespace: removing its last reference below makes the kernel
    // delete them in the background, where a delete here would wait for the network stack
    // (~20 ms per link).
    let ns_goes = ns.exists();
    if let Some(mut cn) = st.cons.get(id).cloned() {
        for ep in cn.endpoints.iter_mut() {
            if ns_goes && !ep.host_if.is_empty() {
                ep.host_if.clear();
                changed = true;
            }
            changed |= release_endpoint(inner, &mut st, id, ep);
        }
        changed |= !cn.ports.is_empty() || cn.netns;
        cn.ports.clear();
        cn.netns = false;
        st.cons.insert(id.to_string(), cn.clone());
        if changed {
            save_con_with_id(inner, id, &cn)?;
        }
    }
    if ns_goes {
        ::network::netns::remove(&ns).map_err(internal)?;
    }
    if changed {
        nw.sync_rules_later(&st);
    }
    Ok(())
}

/// When the daemon stops: the default bridge and its rules go if no container (left running
/// for live restore) uses them.
pub(crate) fn shutdown(inner: &Inner) {
    let nw = &inner.networks;
    nw.default_kept
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let Ok(st) = nw.lock() else {
        return;
    };
    drop_idle_default_bridge(inner, &st);
    if let Err(e) = nw.sync_rules(&st) {
        eprintln!("berth daemon: warning: cannot update the nft rules at exit: {e}");
    }
}

fn release_endpoint(inner: &Inner, st: &mut State, id: &str, ep: &mut EndpointRecord) -> bool {
    let mut changed = false;
    if !ep.host_if.is_empty() {
        let _ = ::network::setup::delete_link(&ep.host_if);
        ep.host_if.clear();
        changed = true;
    }
    if ep.ip6.take().is_some() {
        if let Some(n) = st.nets.get_mut(&ep.network_id) {
            n.space6.release_owner(id);
            let n = n.clone();
            let _ = save_net(inner, &n);
        }
        changed = true;
    }
    if let Some(ip) = ep.ip.take() {
        if let Some(n) = st.nets.get_mut(&ep.network_id) {
            n.space.release(ip, id);
            let n = n.clone();
            let _ = save_net(inner, &n);
            event(inner, "disconnect", &n, Some(id));
        }
        changed = true;
    }
    ep.mac.clear();
    ep.ifname.clear();
    ep.endpoint_id.clear();
    changed
}

fn drop_idle_default_bridge(inner: &Inner, st: &State) {
    if !Networks::default_in_use(st) {
        let _ = ::network::setup::delete_link(&inner.networks.default_bridge);
    }
}

/// Forgets a removed container's networking.
pub(crate) fn forget(inner: &Inner, id: &str) -> ApiResult<()> {
    teardown(inner, id)?;
    inner.networks.lock()?.cons.remove(id);
    del(inner, ENDPOINTS, id)
}

/// At daemon start (after container reconciliation): containers still running get their
/// port reservations and DNS server back; the others are cleaned up; user bridges are
/// re-made if the host lost them; the rules are rewritten.
pub(crate) fn restore(inner: &Arc<Inner>) {
    let ids: Vec<String> = match inner.networks.lock() {
        Ok(st) => st.cons.keys().cloned().collect(),
        Err(_) => return,
    };
    for id in ids {
        let c = container(inner, &id).ok().filter(|c| c.id == id);
        match c {
            None => {
                let _ = forget(inner, &id);
            }
            Some(c) if !running(&c) => {
                let _ = teardown(inner, &id);
            }
            Some(c) => {
                if let Err(e) = rebind(inner, &c) {
                    eprintln!("berth daemon: warning: networking of container {id}: {e}");
                }
            }
        }
    }
    let Ok(mut st) = inner.networks.lock() else {
        return;
    };
    sweep_addresses(inner, &mut st);
    let user: Vec<String> = st
        .nets
        .values()
        .filter(|n| n.driver == "bridge" && !n.is_default_bridge())
        .map(|n| n.id.clone())
        .collect();
    for id in user {
        if let Err(e) = ensure_link(inner, &mut st, &id) {
            eprintln!("berth daemon: warning: network {id}: {e}");
        }
    }
    drop_idle_default_bridge(inner, &st);
    if let Err(e) = inner.networks.sync_rules(&st) {
        eprintln!("berth daemon: warning: {e}");
    }
}

/// Frees addresses whose owner holds no such endpoint (a crash between the allocation and
/// the endpoint's record).
fn sweep_addresses(inner: &Inner, st: &mut State) {
    let held: BTreeSet<(String, String, Ipv4Addr)> = st
        .cons
        .iter()
        .flat_map(|(id, c)| {
            c.endpoints
                .iter()
                .filter_map(move |e| e.ip.map(|ip| (id.clone(), e.network_id.clone(), ip)))
        })
        .collect();
    let held6: BTreeSet<(String, String, Ipv6Addr)> = st
        .cons
        .iter()
        .flat_map(|(id, c)| {
            c.endpoints
                .iter()
                .filter_map(move |e| e.ip6.map(|ip| (id.clone(), e.network_id.clone(), ip)))
        })
        .collect();
    for n in st.nets.values_mut() {
        let before = n.space.allocated.len();
        let nid = n.id.clone();
        n.space.allocated.retain(|ip, owner| {
            owner == "gateway" || held.contains(&(owner.clone(), nid.clone(), *ip))
        });
        let before6 = n.space6.allocated.len();
        n.space6.allocated.retain(|ip, owner| {
            owner == "gateway" || held6.contains(&(owner.clone(), nid.clone(), *ip))
        });
        if n.space.allocated.len() != before || n.space6.allocated.len() != before6 {
            let n = n.clone();
            let _ = save_net(inner, &n);
        }
    }
}

fn rebind(inner: &Arc<Inner>, c: &ContainerRecord) -> ApiResult<()> {
    let mut st = inner.networks.lock()?;
    let Some(cn) = st.cons.get(&c.id).cloned() else {
        return Ok(());
    };
    let mut res = Vec::new();
    for p in &cn.ports {
        let ip: Ipv4Addr = p.host_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
        match Reservation::bind(
            Proto::parse(&p.proto).unwrap_or(Proto::Tcp),
            ip,
            p.host_port,
        ) {
            Ok(r) => res.push(r),
            Err(e) => eprintln!(
                "berth daemon: warning: cannot reserve host port {ip}:{} again: {e}",
                p.host_port
            ),
        }
    }
    st.live.entry(c.id.clone()).or_default().reservations = res;
    let user_net = cn.endpoints.iter().any(|e| {
        e.ip.is_some()
            && st
                .nets
                .get(&e.network_id)
                .is_some_and(|n| !n.is_default_bridge())
    });
    drop(st);
    if user_net {
        start_dns(inner, &c.id)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- DNS

fn start_dns(inner: &Arc<Inner>, id: &str) -> ApiResult<()> {
    {
        let st = inner.networks.lock()?;
        if st.live.get(id).is_some_and(|l| l.dns.is_some()) {
            return Ok(());
        }
    }
    let socks = ::network::dns::bind_in(&inner.networks.netns_path(id)).map_err(internal)?;
    let weak = Arc::downgrade(inner);
    let me = id.to_string();
    let resolver = move |name: &str| -> Option<Vec<IpAddr>> {
        let inner = weak.upgrade()?;
        resolve(&inner, &me, name)
    };
    let h = tokio::runtime::Handle::try_current().map_err(internal)?;
    let task = h.spawn(::network::dns::serve(socks, Arc::new(resolver)));
    inner
        .networks
        .lock()?
        .live
        .entry(id.to_string())
        .or_default()
        .dns = Some(task.abort_handle());
    Ok(())
}

/// Addresses of `name` as container `me` sees it: containers sharing a user-defined network
/// with `me`, by name, short or full ID, or network alias.
fn resolve(inner: &Inner, me: &str, name: &str) -> Option<Vec<IpAddr>> {
    let name = name.trim_end_matches('.');
    let cands: Vec<(String, Vec<IpAddr>, Vec<String>, String)> = {
        let st = inner.networks.st.lock().ok()?;
        let mine: BTreeSet<&str> = st
            .cons
            .get(me)?
            .endpoints
            .iter()
            .filter(|e| e.ip.is_some())
            .filter(|e| {
                st.nets
                    .get(&e.network_id)
                    .is_some_and(|n| !n.is_default_bridge())
            })
            .map(|e| e.network_id.as_str())
            .collect();
        let mut v = Vec::new();
        for (cid, c) in &st.cons {
            for e in &c.endpoints {
                if let (Some(ip), true) = (e.ip, mine.contains(e.network_id.as_str())) {
                    let net = st
                        .nets
                        .get(&e.network_id)
                        .map(|n| n.name.to_ascii_lowercase())
                        .unwrap_or_default();
                    let mut ips = vec![IpAddr::V4(ip)];
                    ips.extend(e.ip6.map(IpAddr::V6));
                    v.push((cid.clone(), ips, e.aliases.clone(), net));
                }
            }
        }
        v
    };
    let names: HashMap<String, (String, String)> = {
        let m = inner.containers.lock().ok()?;
        cands
            .iter()
            .filter_map(|(id, _, _, _)| {
                m.get(id).map(|c| {
                    (
                        id.clone(),
                        (
                            c.name.to_ascii_lowercase(),
                            c.config.hostname.to_ascii_lowercase(),
                        ),
                    )
                })
            })
            .collect()
    };
    let mut out = Vec::new();
    for (id, ips, aliases, net) in cands {
        // `web` or, qualified by the network, `web.mynet`.
        let bare = name
            .strip_suffix(net.as_str())
            .and_then(|n| n.strip_suffix('.'))
            .filter(|_| !net.is_empty());
        let hit = [Some(name), bare].into_iter().flatten().any(|name| {
            (name.len() >= 12 && id.starts_with(name))
                || names.get(&id).is_some_and(|(n, _)| n == name)
                || aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        });
        if hit {
            for ip in ips {
                if !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

// ---------------------------------------------------------------- /etc files

fn host_resolv() -> (Vec<String>, Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let (mut ns, mut search, mut opts) = (Vec::new(), Vec::new(), Vec::new());
    for l in text.lines() {
        let mut f = l.split_whitespace();
        match f.next() {
            Some("nameserver") => ns.extend(f.next().map(String::from)),
            Some("search") | Some("domain") => search = f.map(String::from).collect(),
            Some("options") => opts.extend(f.map(String::from)),
            _ => {}
        }
    }
    (ns, search, opts)
}

fn resolv_conf(hc: &HostConfig, embedded: bool) -> String {
    let (host_ns, host_search, host_opts) = host_resolv();
    let search = hc
        .dns_search
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or(host_search);
    let mut opts = hc
        .dns_options
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or(host_opts);
    let given = hc.dns.clone().unwrap_or_default();
    let mut out = String::from("# Generated by berth.\n");
    let ext: Vec<String> = if given.is_empty() {
        host_ns
            .into_iter()
            .filter(|n| !n.starts_with("127.") && n != "::1")
            .collect()
    } else {
        given
    };
    if embedded {
        out.push_str("nameserver 127.0.0.11\n");
        if !opts.iter().any(|o| o.starts_with("ndots:")) {
            opts.push("ndots:0".into());
        }
    } else if ext.is_empty() {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    } else {
        for n in &ext {
            out.push_str(&format!("nameserver {n}\n"));
        }
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !opts.is_empty() {
        out.push_str(&format!("options {}\n", opts.join(" ")));
    }
    if embedded {
        out.push_str(&format!(
            "\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# ExtServers: [{}]\n",
            ext.join(" ")
        ));
    }
    out
}

fn extra_hosts(inner: &Inner, hc: &HostConfig) -> String {
    let mut out = String::new();
    for h in hc.extra_hosts.iter().flatten() {
        let Some((name, ip)) = h.split_once([':', '=']) else {
            continue;
        };
        let ip = if ip == "host-gateway" {
            inner
                .networks
                .st
                .lock()
                .ok()
                .and_then(|st| {
                    st.nets
                        .values()
                        .find(|n| n.is_default_bridge())
                        .and_then(|n| n.gateway)
                })
                .map(|g| g.to_string())
                .unwrap_or_default()
        } else {
            ip.to_string()
        };
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out
}

/// The name the container's /etc/hosts gives its own addresses.
fn etc_hostname(c: &ContainerRecord) -> String {
    if c.config.hostname.is_empty() {
        c.id[..12].to_string()
    } else {
        c.config.hostname.clone()
    }
}

/// After a running container joined a network (dockerd's `populateNetworkResources`): its
/// /etc/hosts gains a line for the new address, and when the network is a user-defined one
/// (the embedded DNS server now answers in the container) its /etc/resolv.conf is rewritten
/// to point at 127.0.0.11, unless the user changed the file since berth wrote it.
fn joined_etc(inner: &Inner, c: &ContainerRecord, addrs: &[IpAddr], user_net: bool) {
    let dir = crate::bundle::dir(&inner.opts.data_root, &c.id);
    let path = dir.join("hosts");
    if let Ok(mut h) = std::fs::read_to_string(&path) {
        let before = h.len();
        for ip in addrs {
            let line = format!("{ip}\t{}\n", etc_hostname(c));
            if !h.contains(&line) {
                if !h.is_empty() && !h.ends_with('\n') {
                    h.push('\n');
                }
                h.push_str(&line);
            }
        }
        if h.len() != before {
            let _ = std::fs::write(&path, h);
        }
    }
    if user_net {
        let path = dir.join("resolv.conf");
        let legacy = resolv_conf(&c.host_config, false);
        if std::fs::read_to_string(&path).is_ok_and(|t| t == legacy) {
            let _ = std::fs::write(&path, resolv_conf(&c.host_config, true));
        }
    }
}

/// After a running container left a network: the address's /etc/hosts line goes (dockerd's
/// `deleteHostsEntries`); resolv.conf stays as it is.
fn left_etc(inner: &Inner, c: &ContainerRecord, addrs: &[IpAddr]) {
    let path = crate::bundle::dir(&inner.opts.data_root, &c.id).join("hosts");
    let Ok(h) = std::fs::read_to_string(&path) else {
        return;
    };
    let gone: Vec<String> = addrs
        .iter()
        .map(|ip| format!("{ip}\t{}", etc_hostname(c)))
        .collect();
    let kept: Vec<&str> = h.lines().filter(|l| !gone.iter().any(|g| g == l)).collect();
    if kept.len() != h.lines().count() {
        let mut out = kept.join("\n");
        out.push('\n');
        let _ = std::fs::write(&path, out);
    }
}

/// An endpoint's addresses for /etc/hosts: IPv4, then IPv6.
fn etc_addrs(e: &EndpointRecord) -> Vec<IpAddr> {
    e.ip.map(IpAddr::V4)
        .into_iter()
        .chain(e.ip6.map(IpAddr::V6))
        .collect()
}

/// Writes the container's /etc/hosts (a line for each of its addresses, as dockerd) and
/// /etc/resolv.conf (in place: they are bind mounts).
fn write_etc(inner: &Inner, c: &ContainerRecord, addrs: &[IpAddr], embedded: bool) {
    let dir = crate::bundle::dir(&inner.opts.data_root, &c.id);
    let host = etc_hostname(c);
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    hosts.push_str(&extra_hosts(inner, &c.host_config));
    for ip in addrs {
        hosts.push_str(&format!("{ip}\t{host}\n"));
    }
    if addrs.is_empty() {
        hosts.push_str(&format!("127.0.0.1\t{host}\n"));
    }
    let _ = std::fs::write(dir.join("hosts"), hosts);
    let _ = std::fs::write(
        dir.join("resolv.conf"),
        resolv_conf(&c.host_config, embedded),
    );
}

// ---------------------------------------------------------------- inspect views

/// `NetworkSettings` of a container.
pub(crate) fn settings(inner: &Inner, c: &ContainerRecord) -> NetworkSettings {
    let mut ns = NetworkSettings::default();
    let Ok(st) = inner.networks.lock() else {
        return ns;
    };
    let cn = st.cons.get(&c.id).cloned().unwrap_or_default();
    let live = running(c);
    let mut ports: PortMap = BTreeMap::new();
    if live {
        for k in c.config.exposed_ports.iter().flat_map(|m| m.keys()) {
            ports.entry(k.clone()).or_insert(None);
        }
        for p in &cn.ports {
            ports
                .entry(format!("{}/{}", p.port, p.proto))
                .or_insert(None)
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: p.host_ip.clone(),
                    host_port: p.host_port.to_string(),
                });
        }
        if cn.netns {
            ns.sandbox_key = inner.networks.netns_path(&c.id).display().to_string();
            ns.sandbox_id = c.id.clone();
        }
    }
    ns.ports = Some(ports);
    let mut nets = BTreeMap::new();
    let mode = c.host_config.network_mode.as_str();
    if mode == "host" || mode == "none" {
        if let Some(n) = st.nets.values().find(|n| n.name == mode) {
            nets.insert(
                mode.to_string(),
                EndpointSettings {
                    network_id: n.id.clone(),
                    ..Default::default()
                },
            );
        }
    }
    let mut top = serde_json::Map::new();
    for k in [
        "EndpointID",
        "Gateway",
        "IPAddress",
        "MacAddress",
        "IPv6Gateway",
        "GlobalIPv6Address",
    ] {
        top.insert(k.into(), serde_json::json!(""));
    }
    top.insert("IPPrefixLen".into(), serde_json::json!(0));
    top.insert("GlobalIPv6PrefixLen".into(), serde_json::json!(0));
    top.insert("HairpinMode".into(), serde_json::json!(false));
    top.insert("LinkLocalIPv6Address".into(), serde_json::json!(""));
    top.insert("LinkLocalIPv6PrefixLen".into(), serde_json::json!(0));
    top.insert("SecondaryIPAddresses".into(), serde_json::Value::Null);
    top.insert("SecondaryIPv6Addresses".into(), serde_json::Value::Null);
    for ep in &cn.endpoints {
        let Some(n) = st.nets.get(&ep.network_id) else {
            continue;
        };
        let mut es = EndpointSettings {
            network_id: n.id.clone(),
            aliases: if ep.aliases.is_empty() {
                None
            } else {
                Some(ep.aliases.clone())
            },
            ipam_config: (ep.requested_ip.is_some() || ep.requested_ip6.is_some()).then(|| {
                EndpointIpamConfig {
                    ipv4_address: ep.requested_ip.map(|a| a.to_string()).unwrap_or_default(),
                    ipv6_address: ep.requested_ip6.map(|a| a.to_string()).unwrap_or_default(),
                    ..Default::default()
                }
            }),
            ..Default::default()
        };
        if let (true, Some(ip)) = (live, ep.ip) {
            es.endpoint_id = ep.endpoint_id.clone();
            es.ip_address = ip.to_string();
            es.ip_prefix_len = n.subnet.map(|s| s.prefix as i64).unwrap_or(0);
            es.gateway = n.gateway.map(|g| g.to_string()).unwrap_or_default();
            es.mac_address = ep.mac.clone();
            if let (Some(a), Some(s6)) = (ep.ip6, n.subnet6) {
                es.global_ipv6_address = a.to_string();
                es.global_ipv6_prefix_len = s6.prefix as i64;
                es.ipv6_gateway = n.gateway6.map(|g| g.to_string()).unwrap_or_default();
            }
            if n.is_default_bridge() {
                top.insert("EndpointID".into(), serde_json::json!(es.endpoint_id));
                top.insert("Gateway".into(), serde_json::json!(es.gateway));
                top.insert("IPAddress".into(), serde_json::json!(es.ip_address));
                top.insert("IPPrefixLen".into(), serde_json::json!(es.ip_prefix_len));
                top.insert("MacAddress".into(), serde_json::json!(es.mac_address));
            }
        }
        if !n.is_default_bridge() {
            let mut dn = vec![c.name.clone()];
            dn.extend(ep.aliases.iter().cloned());
            dn.push(c.id[..12].to_string());
            es.dns_names = Some(dn);
        }
        nets.insert(n.name.clone(), es);
    }
    ns.networks = Some(nets);
    ns.extra = top;
    ns
}

/// Ports for `docker ps`.
pub(crate) fn summary_ports(inner: &Inner, c: &ContainerRecord) -> Vec<PortSummary> {
    let mut out = Vec::new();
    let Ok(st) = inner.networks.lock() else {
        return out;
    };
    let cn = st.cons.get(&c.id);
    let live = running(c);
    let mut published = BTreeSet::new();
    if live {
        for p in cn.iter().flat_map(|c| c.ports.iter()) {
            published.insert(format!("{}/{}", p.port, p.proto));
            out.push(PortSummary {
                ip: p.host_ip.clone(),
                private_port: p.port,
                public_port: Some(p.host_port),
                kind: p.proto.clone(),
            });
        }
    }
    for k in c.config.exposed_ports.iter().flat_map(|m| m.keys()) {
        if published.contains(k) {
            continue;
        }
        if let Ok((port, proto)) = parse_port_key(k) {
            out.push(PortSummary {
                private_port: port,
                kind: proto.as_str().into(),
                ..Default::default()
            });
        }
    }
    out
}

// ---------------------------------------------------------------- network API

fn view(st: &State, n: &NetworkRecord, with_containers: bool, inner: &Inner) -> Network {
    let mut cfg = Vec::new();
    if let Some(s) = n.subnet {
        let mut m = BTreeMap::new();
        m.insert("Subnet".to_string(), serde_json::json!(s.to_string()));
        if let Some(g) = n.gateway {
            m.insert("Gateway".to_string(), serde_json::json!(g.to_string()));
        }
        if let Some(r) = n.ip_range {
            m.insert("IPRange".to_string(), serde_json::json!(r.to_string()));
        }
        cfg.push(m);
    }
    if let Some(s6) = n.subnet6 {
        let mut m = BTreeMap::new();
        m.insert("Subnet".to_string(), serde_json::json!(s6.to_string()));
        if let Some(g) = n.gateway6 {
            m.insert("Gateway".to_string(), serde_json::json!(g.to_string()));
        }
        cfg.push(m);
    }
    let mut containers = BTreeMap::new();
    if with_containers {
        let names = inner.containers.lock().ok();
        for (cid, c) in &st.cons {
            for e in &c.endpoints {
                if e.network_id != n.id {
                    continue;
                }
                let Some(ip) = e.ip else { continue };
                let name = names
                    .as_ref()
                    .and_then(|m| m.get(cid).map(|c| c.name.clone()))
                    .unwrap_or_default();
                containers.insert(
                    cid.clone(),
                    serde_json::json!({
                        "Name": name,
                        "EndpointID": e.endpoint_id,
                        "MacAddress": e.mac,
                        "IPv4Address": format!("{ip}/{}", n.subnet.map(|s| s.prefix).unwrap_or(32)),
                        "IPv6Address": e.ip6.zip(n.subnet6).map(|(a, s6)| format!("{a}/{}", s6.prefix)).unwrap_or_default(),
                    }),
                );
            }
        }
    }
    let mut extra = serde_json::Map::new();
    extra.insert("ConfigFrom".into(), serde_json::json!({"Network": ""}));
    extra.insert("ConfigOnly".into(), serde_json::json!(false));
    Network {
        name: n.name.clone(),
        id: n.id.clone(),
        created: n.created.clone(),
        scope: "local".into(),
        driver: n.driver.clone(),
        enable_ipv4: true,
        enable_ipv6: n.subnet6.is_some(),
        ipam: Ipam {
            driver: "default".into(),
            config: Some(cfg),
            options: None,
        },
        internal: n.internal,
        attachable: n.attachable,
        ingress: false,
        containers: Some(containers),
        options: Some(n.options.clone()),
        labels: Some(n.labels.clone()),
        extra,
    }
}

fn matches(f: &Filters, n: &NetworkRecord) -> bool {
    let names = f.get("name");
    if !names.is_empty() && !names.iter().any(|x| n.name.contains(x)) {
        return false;
    }
    let ids = f.get("id");
    if !ids.is_empty() && !ids.iter().any(|x| n.id.starts_with(x)) {
        return false;
    }
    let drivers = f.get("driver");
    if !drivers.is_empty() && !drivers.iter().any(|x| *x == n.driver) {
        return false;
    }
    let types = f.get("type");
    if !types.is_empty()
        && !types.iter().any(|t| match *t {
            "builtin" => n.predefined(),
            "custom" => !n.predefined(),
            _ => false,
        })
    {
        return false;
    }
    if f.contains("label") && !f.match_labels("label", &n.labels) {
        return false;
    }
    true
}

/// `GET /networks`.
pub(crate) fn list(inner: &Inner, f: Filters) -> ApiResult<Vec<Network>> {
    let st = inner.networks.lock()?;
    let mut v: Vec<Network> = st
        .nets
        .values()
        .filter(|n| matches(&f, n))
        .map(|n| view(&st, n, false, inner))
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(v)
}

/// `GET /networks/{id}`.
pub(crate) fn inspect(inner: &Inner, key: &str) -> ApiResult<Network> {
    let st = inner.networks.lock()?;
    let n = find_net(&st, key)?;
    Ok(view(&st, n, true, inner))
}

/// `POST /networks/create`.
pub(crate) async fn create(
    inner: &Arc<Inner>,
    req: NetworkCreateRequest,
) -> ApiResult<NetworkCreateResponse> {
    let i2 = inner.clone();
    blocking(move || create_blocking(&i2, req)).await
}

fn create_blocking(inner: &Inner, req: NetworkCreateRequest) -> ApiResult<NetworkCreateResponse> {
    if req.name.is_empty() {
        return Err(ApiError::InvalidParameter(
            "network name is required".into(),
        ));
    }
    match req.driver.as_str() {
        "" | "bridge" => {}
        "host" | "null" => {
            return Err(ApiError::Forbidden(format!(
                "only one instance of \"{}\" network is allowed",
                req.driver
            )))
        }
        d => return Err(ApiError::NotFound(format!("plugin \"{d}\" not found"))),
    }
    let enable_ipv6 = req.enable_ipv6 == Some(true);
    let s = |m: &BTreeMap<String, serde_json::Value>, k: &str| {
        m.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string()
    };
    // IPv6 entries (a subnet or gateway with a colon) are used with --ipv6 and, as dockerd
    // does, ignored without it.
    let (pools6, pools): (Vec<_>, Vec<_>) = req
        .ipam
        .as_ref()
        .and_then(|i| i.config.clone())
        .unwrap_or_default()
        .into_iter()
        .partition(|m| s(m, "Subnet").contains(':') || s(m, "Gateway").contains(':'));
    if pools.len() > 1 {
        return Err(ApiError::InvalidParameter(
            "berth supports one IPv4 subnet per network".into(),
        ));
    }
    if pools6.len() > 1 && enable_ipv6 {
        return Err(ApiError::InvalidParameter(
            "berth supports one IPv6 subnet per network".into(),
        ));
    }
    let (subnet6_s, gw6_s, range6_s) = pools6
        .first()
        .filter(|_| enable_ipv6)
        .map(|m| (s(m, "Subnet"), s(m, "Gateway"), s(m, "IPRange")))
        .unwrap_or_default();
    if !range6_s.is_empty() {
        return Err(ApiError::InvalidParameter(
            "berth does not support an ip-range in an IPv6 subnet".into(),
        ));
    }
    let user_subnet6 = if subnet6_s.is_empty() {
        None
    } else {
        Some(subnet6_s.parse::<Ipv6Net>().map_err(|_| {
            ApiError::InvalidParameter(format!(
                "invalid network config:\ninvalid subnet {subnet6_s}: invalid CIDR address: {subnet6_s}"
            ))
        })?)
    };
    if user_subnet6.is_none() && !gw6_s.is_empty() {
        return Err(ApiError::InvalidParameter(
            "invalid network config:\ngateway specified without a subnet".into(),
        ));
    }
    let gateway6 = if gw6_s.is_empty() {
        None
    } else {
        Some(gw6_s.parse::<Ipv6Addr>().map_err(|_| {
            ApiError::InvalidParameter(format!(
                "invalid network config:\ninvalid gateway address {gw6_s}"
            ))
        })?)
    };
    let (subnet_s, gw_s, range_s) = pools
        .first()
        .map(|m| (s(m, "Subnet"), s(m, "Gateway"), s(m, "IPRange")))
        .unwrap_or_default();

    let user_subnet = if subnet_s.is_empty() {
        None
    } else {
        Some(subnet_s.parse::<Ipv4Net>().map_err(|_| {
            ApiError::InvalidParameter(format!(
                "invalid network config:\ninvalid subnet {subnet_s}: invalid CIDR address: {subnet_s}"
            ))
        })?)
    };
    if user_subnet.is_none() && !gw_s.is_empty() {
        return Err(ApiError::InvalidParameter(
            "invalid network config:\ngateway specified without a subnet".into(),
        ));
    }
    let gateway = if gw_s.is_empty() {
        None
    } else {
        Some(gw_s.parse::<Ipv4Addr>().map_err(|_| {
            ApiError::InvalidParameter(format!(
                "invalid network config:\ninvalid gateway address {gw_s}"
            ))
        })?)
    };
    let nw = &inner.networks;
    // Lock order everywhere: the state, then the host-wide lock.
    let mut st = nw.lock()?;
    let _l = host_lock();
    if st.nets.values().any(|n| n.name == req.name) {
        return Err(ApiError::Conflict(format!(
            "network with name {} already exists",
            req.name
        )));
    }
    let others: Vec<Ipv4Net> = st.nets.values().filter_map(|n| n.subnet).collect();
    let subnet = match user_subnet {
        Some(s) => {
            if others.iter().any(|o| o.overlaps(&s)) {
                return Err(ApiError::Forbidden(
                    "invalid pool request: Pool overlaps with other one on this address space"
                        .into(),
                ));
            }
            if s.prefix > 30 {
                return Err(ApiError::InvalidParameter(format!(
                    "invalid network config:\nsubnet {s} is too small"
                )));
            }
            s
        }
        None => {
            let mut taken = others;
            taken.extend(host_subnets(&nw.own_links(&st)));
            ::network::ipam::pick_subnet(&nw.pools, &taken)
                .map_err(|e| ApiError::Forbidden(e.to_string()))?
        }
    };
    let ip_range = if range_s.is_empty() {
        None
    } else {
        let r = range_s.parse::<Ipv4Net>().map_err(|_| {
            ApiError::InvalidParameter(format!(
                "invalid network config:\ninvalid ip-range {range_s}: invalid CIDR address: {range_s}"
            ))
        })?;
        if !subnet.contains(r.addr) || r.prefix < subnet.prefix {
            return Err(ApiError::InvalidParameter(format!(
                "invalid network config:\nip-range {r} is not inside subnet {subnet}"
            )));
        }
        Some(r)
    };
    let (subnet6, gateway6, space6) = if enable_ipv6 {
        let others6: Vec<Ipv6Net> = st.nets.values().filter_map(|n| n.subnet6).collect();
        let s6 = match user_subnet6 {
            Some(s6) => {
                if others6.iter().any(|o| o.overlaps(&s6)) {
                    return Err(ApiError::Forbidden(
                        "invalid pool request: Pool overlaps with other one on this address space"
                            .into(),
                    ));
                }
                if s6.prefix > 126 {
                    return Err(ApiError::InvalidParameter(format!(
                        "invalid network config:\nsubnet {s6} is too small"
                    )));
                }
                s6
            }
            // A random unique local /64, as dockerd picks without a subnet.
            None => (0..16)
                .map(|_| Ipv6Net::random_ula())
                .find(|c| !others6.iter().any(|o| o.overlaps(c)))
                .ok_or_else(|| internal("cannot pick a free IPv6 subnet"))?,
        };
        let gw6 = gateway6.unwrap_or_else(|| s6.first_host());
        let mut sp = AddressSpace6::default();
        sp.reserve(&s6, gw6, "gateway").map_err(|_| {
            ApiError::InvalidParameter(format!(
                "invalid network config:\nno matching subnet for gateway {gw6}"
            ))
        })?;
        (Some(s6), Some(gw6), sp)
    } else {
        (None, None, AddressSpace6::default())
    };
    let gw = gateway.unwrap_or_else(|| subnet.first_host());
    let mut space = AddressSpace::default();
    space.reserve(&subnet, gw, "gateway").map_err(|_| {
        ApiError::InvalidParameter(format!(
            "invalid network config:\nno matching subnet for gateway {gw}"
        ))
    })?;
    let id = random_id()?;
    let opts = req.options.clone().unwrap_or_default();
    let bridge = opts
        .get("com.docker.network.bridge.name")
        .cloned()
        .unwrap_or_else(|| format!("br-{}", &id[..12]));
    if !::network::netlink::valid_name(&bridge) {
        return Err(ApiError::InvalidParameter(format!(
            "invalid bridge name {bridge:?}"
        )));
    }
    if ::network::setup::link_exists(&bridge) {
        return Err(ApiError::Conflict(format!(
            "bridge {bridge} already exists on the host and berth did not make it"
        )));
    }
    let rec = NetworkRecord {
        id: id.clone(),
        name: req.name.clone(),
        driver: "bridge".into(),
        created: now_rfc3339(),
        subnet: Some(subnet),
        gateway: Some(gw),
        user_subnet: user_subnet.is_some(),
        ip_range,
        internal: req.internal,
        attachable: req.attachable,
        labels: req.labels.clone().unwrap_or_default(),
        options: opts,
        bridge: bridge.clone(),
        space,
        subnet6,
        gateway6,
        space6,
    };
    ::network::setup::ensure_bridge(&bridge, gw, subnet.prefix).map_err(internal)?;
    if let (Some(s6), Some(gw6)) = (subnet6, gateway6) {
        if let Err(e) = ::network::setup::bridge_address6(&bridge, gw6, s6.prefix) {
            let _ = ::network::setup::delete_link(&bridge);
            return Err(internal(e));
        }
    }
    st.nets.insert(id.clone(), rec.clone());
    let r = save_net(inner, &rec).and_then(|_| nw.sync_rules(&st));
    if let Err(e) = r {
        st.nets.remove(&id);
        let _ = ::network::setup::delete_link(&bridge);
        let _ = del(inner, NETWORKS, &id);
        let _ = nw.sync_rules(&st);
        return Err(e);
    }
    event(inner, "create", &rec, None);
    Ok(NetworkCreateResponse {
        id,
        warning: String::new(),
    })
}

/// `DELETE /networks/{id}`.
pub(crate) async fn remove(inner: &Arc<Inner>, key: &str) -> ApiResult<()> {
    let (i2, k) = (inner.clone(), key.to_string());
    blocking(move || remove_blocking(&i2, &k, false).map(|_| ())).await
}

fn remove_blocking(inner: &Inner, key: &str, only_unused: bool) -> ApiResult<Option<String>> {
    let nw = &inner.networks;
    let mut st = nw.lock()?;
    let n = find_net(&st, key)?.clone();
    if n.predefined() {
        if only_unused {
            return Ok(None);
        }
        return Err(ApiError::Forbidden(format!(
            "{} is a pre-defined network and cannot be removed",
            n.name
        )));
    }
    let users: Vec<String> = st
        .cons
        .iter()
        .filter(|(_, c)| {
            c.endpoints
                .iter()
                .any(|e| e.network_id == n.id && (only_unused || e.ip.is_some()))
        })
        .map(|(id, _)| id.clone())
        .collect();
    if !users.is_empty() {
        if only_unused {
            return Ok(None);
        }
        return Err(ApiError::Forbidden(format!(
            "error while removing network: network {} id {} has active endpoints",
            n.name, n.id
        )));
    }
    let _ = ::network::setup::delete_link(&n.bridge);
    st.nets.remove(&n.id);
    del(inner, NETWORKS, &n.id)?;
    nw.sync_rules(&st)?;
    event(inner, "destroy", &n, None);
    Ok(Some(n.name))
}

/// `POST /networks/prune`.
pub(crate) async fn prune(inner: &Arc<Inner>, f: Filters) -> ApiResult<NetworkPruneResponse> {
    let i2 = inner.clone();
    blocking(move || {
        let keys: Vec<String> = {
            let st = i2.networks.lock()?;
            st.nets
                .values()
                .filter(|n| !n.predefined())
                .filter(|n| !f.contains("label") || f.match_labels("label", &n.labels))
                .map(|n| n.id.clone())
                .collect()
        };
        let mut gone = Vec::new();
        for k in keys {
            if let Ok(Some(name)) = remove_blocking(&i2, &k, true) {
                gone.push(name);
            }
        }
        Ok(NetworkPruneResponse {
            networks_deleted: Some(gone),
        })
    })
    .await
}

/// `POST /networks/{id}/connect`.
pub(crate) async fn connect(
    inner: &Arc<Inner>,
    key: &str,
    req: NetworkConnectRequest,
) -> ApiResult<()> {
    let (i2, k) = (inner.clone(), key.to_string());
    blocking(move || {
        let c = container(&i2, &req.container)?;
        let mode = c.host_config.network_mode.as_str();
        if mode == "host" || mode == "none" || mode.starts_with("container:") {
            return Err(ApiError::Forbidden(
                "container sharing network namespace with another container or host cannot be connected to any other network".into(),
            ));
        }
        let mut st = i2.networks.lock()?;
        let n = find_net(&st, &k)?.clone();
        if n.driver != "bridge" {
            return Err(ApiError::Forbidden(
                "container cannot be disconnected from host network or connected to host network".into(),
            ));
        }
        let ep = endpoint_from(&n, req.endpoint_config.as_ref())?;
        let mut cn = st.cons.get(&c.id).cloned().unwrap_or_default();
        if cn.endpoints.iter().any(|e| e.network_id == n.id) {
            return Err(ApiError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                c.name, n.name
            )));
        }
        cn.endpoints.push(ep);
        let index = cn.endpoints.len() - 1;
        st.cons.insert(c.id.clone(), cn.clone());
        save_con_with_id(&i2, &c.id, &cn)?;
        if running(&c) && cn.netns {
            let mut gw_given = true;
            match attach_endpoint(&i2, &mut st, &c.id, index, &mut gw_given) {
                Ok(e) => {
                    cn.endpoints[index] = e;
                    st.cons.insert(c.id.clone(), cn.clone());
                    save_con_with_id(&i2, &c.id, &cn)?;
                    i2.networks.sync_rules(&st)?;
                    drop(st);
                    let user_net = !n.is_default_bridge();
                    if user_net {
                        start_dns(&i2, &c.id)?;
                    }
                    joined_etc(&i2, &c, &etc_addrs(&cn.endpoints[index]), user_net);
                }
                Err(e) => {
                    let mut ep = cn.endpoints.remove(index);
                    release_endpoint(&i2, &mut st, &c.id, &mut ep);
                    st.cons.insert(c.id.clone(), cn.clone());
                    save_con_with_id(&i2, &c.id, &cn)?;
                    return Err(e);
                }
            }
        }
        Ok(())
    })
    .await
}

/// `POST /networks/{id}/disconnect`.
pub(crate) async fn disconnect(
    inner: &Arc<Inner>,
    key: &str,
    req: NetworkDisconnectRequest,
) -> ApiResult<()> {
    let (i2, k) = (inner.clone(), key.to_string());
    blocking(move || {
        let c = container(&i2, &req.container)?;
        let mut st = i2.networks.lock()?;
        let n = find_net(&st, &k)?.clone();
        let mut cn = st.cons.get(&c.id).cloned().unwrap_or_default();
        let Some(pos) = cn.endpoints.iter().position(|e| e.network_id == n.id) else {
            return Err(ApiError::Forbidden(format!(
                "container {} is not connected to network {}",
                c.id, n.name
            )));
        };
        let mut ep = cn.endpoints.remove(pos);
        let left = etc_addrs(&ep);
        release_endpoint(&i2, &mut st, &c.id, &mut ep);
        st.cons.insert(c.id.clone(), cn.clone());
        save_con_with_id(&i2, &c.id, &cn)?;
        if running(&c) {
            left_etc(&i2, &c, &left);
        }
        drop_idle_default_bridge(&i2, &st);
        i2.networks.sync_rules(&st)?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        assert_eq!(parse_port_key("80/tcp").unwrap(), (80, Proto::Tcp));
        assert_eq!(parse_port_key("53/udp").unwrap(), (53, Proto::Udp));
        assert!(parse_port_key("0/tcp").is_err());
        assert!(parse_port_key("80/sctp").is_err());
        assert_eq!(parse_host_ports("").unwrap(), vec![0]);
        assert_eq!(parse_host_ports("8080").unwrap(), vec![8080]);
        assert_eq!(
            parse_host_ports("8000-8002").unwrap(),
            vec![8000, 8001, 8002]
        );
        assert!(parse_host_ports("x").is_err());
    }

    #[test]
    fn resolv_for_embedded_dns() {
        let hc = HostConfig {
            dns_search: Some(vec!["example.internal".into()]),
            ..Default::default()
        };
        let t = resolv_conf(&hc, true);
        assert!(t.contains("nameserver 127.0.0.11\n"));
        assert!(t.contains("search example.internal\n"));
        assert!(t.contains("ndots:0"));
        let hc = HostConfig {
            dns: Some(vec!["192.0.2.53".into()]),
            ..Default::default()
        };
        let t = resolv_conf(&hc, false);
        assert!(t.contains("nameserver 192.0.2.53\n"));
        assert!(!t.contains("127.0.0.11"));
    }
}
