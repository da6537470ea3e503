//! berth's nftables rules. berth owns exactly one table (`table ip berth`, or
//! `berth-<tag>` for a daemon with its own instance tag) and never reads or changes any other
//! table or chain. The whole table is rendered from the daemon's state ([`Ruleset`]) and
//! replaced in one atomic `nft -f -` transaction, so a crash never leaves half a change, and
//! rules of containers that are gone disappear at the next apply. When the only change is
//! new published ports, their rules are added instead ([`Ruleset::apply_added`]): adding is
//! quick, while replacing or deleting rules waits for an RCU grace period in the kernel.
//!
//! What the table holds (iptables-nft's hooks and priorities, so it composes with Docker's or
//! podman's rules):
//! * `postrouting` (srcnat): masquerade of each non-internal bridge subnet leaving its bridge,
//!   of 127.0.0.0/8 entering a bridge (published ports reached at 127.0.0.1), and of a
//!   bridge's own subnet DNATed back into it (hairpin: a container reaching a published port
//!   through a host address).
//! * `prerouting` and `output` (dstnat): DNAT of published host ports to the container.
//! * `forward` (filter): isolation between berth's bridges, and internal bridges cut off from
//!   every other interface; the same in an `ip6` table of the same name when a network has
//!   IPv6.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::ipam::{Ipv4Net, Ipv6Net};
use crate::ports::Proto;

/// Errors applying rules.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `nft` could not be run.
    #[error("cannot run nft (install the nftables package): {0}")]
    Spawn(std::io::Error),
    /// `nft` refused the rules.
    #[error("nft refused berth's rules for table {table}: {stderr}")]
    Refused { table: String, stderr: String },
}

/// A bridge network in the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Bridge {
    /// Link name.
    pub name: String,
    /// Its subnet.
    pub subnet: Ipv4Net,
    /// No traffic to or from other interfaces.
    pub internal: bool,
    /// Its IPv6 subnet (IPv6 networks).
    pub subnet6: Option<Ipv6Net>,
}

/// A published port.
#[derive(Debug, Clone, PartialEq)]
pub struct PortMap {
    /// Protocol.
    pub proto: Proto,
    /// Host address (`None`: every local address).
    pub host_ip: Option<Ipv4Addr>,
    /// Host port.
    pub host_port: u16,
    /// Container address.
    pub addr: Ipv4Addr,
    /// Container port.
    pub port: u16,
}

/// Everything berth's table holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ruleset {
    /// Table name (`berth`).
    pub table: String,
    /// Bridges.
    pub bridges: Vec<Bridge>,
    /// Published ports.
    pub ports: Vec<PortMap>,
}

fn q(s: &str) -> String {
    // Names are validated interface names (no quotes or whitespace).
    format!("\"{s}\"")
}

impl Ruleset {
    /// The table in nft's language.
    pub fn render(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "table ip {} {{", self.table);
        // srcnat
        t.push_str("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
        for b in &self.bridges {
            if !b.internal {
                let _ = writeln!(
                    t,
                    "    ip saddr {} oifname != {} masquerade",
                    b.subnet,
                    q(&b.name)
                );
            }
            let _ = writeln!(
                t,
                "    ip saddr 127.0.0.0/8 oifname {} masquerade",
                q(&b.name)
            );
            // Hairpin: a container reaching a published port (its own or a neighbour's)
            // through a host address is DNATed back into its own bridge; the source is
            // masqueraded to the bridge's address so the answer comes back through the host
            // (and is un-NATed) instead of going straight to the client.
            let _ = writeln!(
                t,
                "    ip saddr {} oifname {} ct status dnat masquerade",
                b.subnet,
                q(&b.name)
            );
        }
        t.push_str("  }\n");
        // dstnat
        for (chain, hook) in [("prerouting", "prerouting"), ("output", "output")] {
            let _ = writeln!(
                t,
                "  chain {chain} {{\n    type nat hook {hook} priority -100; policy accept;"
            );
            for p in &self.ports {
                if let Some(r) = port_rule(p, chain) {
                    let _ = writeln!(t, "    {r}");
                }
            }
            t.push_str("  }\n");
        }
        // filter
        self.render_forward(&mut t);
        t
    }

    /// The `ip6` table of the same name, when a bridge has an IPv6 subnet: the same
    /// isolation between berth's bridges (and internal bridges cut off) for IPv6 traffic.
    /// berth turns no IPv6 forwarding on and has no IPv6 NAT or published ports, so this is
    /// all the IPv6 filtering there is to do.
    pub fn render6(&self) -> Option<String> {
        if self.bridges.iter().all(|b| b.subnet6.is_none()) {
            return None;
        }
        let mut t = String::new();
        let _ = writeln!(t, "table ip6 {} {{", self.table);
        self.render_forward(&mut t);
        Some(t)
    }

    /// The `forward` chain (the same for `ip` and `ip6`) and the table's closing brace:
    /// internal bridges cut off from every other interface, no traffic between bridges.
    fn render_forward(&self, t: &mut String) {
        t.push_str(
            "  chain forward {\n    type filter hook forward priority filter; policy accept;\n",
        );
        for b in &self.bridges {
            if b.internal {
                let _ = writeln!(t, "    iifname {n} oifname != {n} drop", n = q(&b.name));
                let _ = writeln!(t, "    oifname {n} iifname != {n} drop", n = q(&b.name));
            }
            let others: Vec<String> = self
                .bridges
                .iter()
                .filter(|o| o.name != b.name)
                .map(|o| q(&o.name))
                .collect();
            if !others.is_empty() {
                let _ = writeln!(
                    t,
                    "    iifname {} oifname {{ {} }} drop",
                    q(&b.name),
                    others.join(", ")
                );
            }
        }
        t.push_str("  }\n}\n");
    }

    /// Replaces berth's tables with this ruleset atomically; with no bridges the tables are
    /// deleted instead (the `ip6` one also when no bridge has IPv6).
    pub fn apply(&self) -> Result<(), Error> {
        if self.bridges.is_empty() {
            return delete_table(&self.table);
        }
        // Creating each first makes the delete valid when it does not exist yet.
        let script = format!(
            "table ip {t} {{}}\ndelete table ip {t}\n{}table ip6 {t} {{}}\ndelete table ip6 {t}\n{}",
            self.render(),
            self.render6().unwrap_or_default(),
            t = self.table
        );
        run_nft(&self.table, &script)
    }
}

/// The DNAT rule of a published port in `chain` (`prerouting` or `output`); none in
/// prerouting for a port published on a loopback address (only local clients reach it).
fn port_rule(p: &PortMap, chain: &str) -> Option<String> {
    let m = match p.host_ip {
        None => "fib daddr type local".to_string(),
        Some(ip) if ip.is_loopback() && chain == "prerouting" => return None,
        Some(ip) => format!("ip daddr {ip}"),
    };
    Some(format!(
        "{m} {proto} dport {hp} dnat to {a}:{cp}",
        proto = p.proto.as_str(),
        hp = p.host_port,
        a = p.addr,
        cp = p.port
    ))
}

impl Ruleset {
    /// The ports `self` adds to `applied` when that is all that differs (same table, same
    /// bridges, every applied port still there); `None` when anything else changed.
    pub fn added_ports(&self, applied: &Ruleset) -> Option<Vec<PortMap>> {
        if self.table != applied.table
            || self.bridges != applied.bridges
            || self.bridges.is_empty()
            || !applied.ports.iter().all(|p| self.ports.contains(p))
        {
            return None;
        }
        Some(
            self.ports
                .iter()
                .filter(|p| !applied.ports.contains(p))
                .cloned()
                .collect(),
        )
    }

    /// Adds the DNAT rules of `ports` to the applied table in one transaction. Adding rules
    /// is quick (~5 ms here), where replacing the table (or deleting any rule) waits for an
    /// RCU grace period in the kernel (~15-20 ms).
    pub fn apply_added(&self, ports: &[PortMap]) -> Result<(), Error> {
        let mut script = String::new();
        for p in ports {
            for chain in ["prerouting", "output"] {
                if let Some(r) = port_rule(p, chain) {
                    let _ = writeln!(script, "add rule ip {} {chain} {r}", self.table);
                }
            }
        }
        if script.is_empty() {
            return Ok(());
        }
        run_nft(&self.table, &script)
    }
}

/// Deletes berth's tables (`ip` and `ip6`) if they exist.
pub fn delete_table(table: &str) -> Result<(), Error> {
    run_nft(
        table,
        &format!(
            "table ip {table} {{}}\ndelete table ip {table}\ntable ip6 {table} {{}}\ndelete table ip6 {table}\n"
        ),
    )
}

/// Whether the table exists (for tests and diagnostics).
pub fn table_exists(table: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", table])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_nft(table: &str, script: &str) -> Result<(), Error> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::Spawn)?;
    if let Some(mut w) = child.stdin.take() {
        w.write_all(script.as_bytes()).map_err(Error::Spawn)?;
    }
    let out = child.wait_with_output().map_err(Error::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Refused {
            table: table.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(table: &str) -> Ruleset {
        Ruleset {
            table: table.into(),
            bridges: vec![
                Bridge {
                    name: "bt-a".into(),
                    subnet: "10.201.0.0/24".parse().unwrap(),
                    internal: false,
                    subnet6: Some("fd00:201::/64".parse().unwrap()),
                },
                Bridge {
                    name: "bt-b".into(),
                    subnet: "10.201.1.0/24".parse().unwrap(),
                    internal: true,
                    subnet6: None,
                },
            ],
            ports: vec![
                PortMap {
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 18080,
                    addr: Ipv4Addr::new(10, 201, 0, 2),
                    port: 80,
                },
                PortMap {
                    proto: Proto::Udp,
                    host_ip: Some(Ipv4Addr::LOCALHOST),
                    host_port: 18081,
                    addr: Ipv4Addr::new(10, 201, 0, 2),
                    port: 53,
                },
            ],
        }
    }

    #[test]
    fn only_added_ports_are_incremental() {
        let full = sample("t");
        let mut fewer = full.clone();
        fewer.ports.truncate(1);
        assert_eq!(full.added_ports(&fewer), Some(vec![full.ports[1].clone()]));
        assert_eq!(full.added_ports(&full), Some(vec![]));
        // A removed port, or a changed bridge, needs the whole table again.
        assert_eq!(fewer.added_ports(&full), None);
        let mut other = full.clone();
        other.bridges.pop();
        assert_eq!(full.added_ports(&other), None);
        let mut script = String::new();
        for chain in ["prerouting", "output"] {
            if let Some(r) = port_rule(&full.ports[1], chain) {
                script.push_str(&format!("{chain}: {r}\n"));
            }
        }
        // Published on 127.0.0.1: only local clients, so output only.
        assert_eq!(
            script,
            "output: ip daddr 127.0.0.1 udp dport 18081 dnat to 10.201.0.2:53\n"
        );
    }

    #[test]
    fn renders() {
        let t = sample("berth-unit").render();
        assert!(t.contains("ip saddr 10.201.0.0/24 oifname != \"bt-a\" masquerade"));
        assert!(!t.contains("ip saddr 10.201.1.0/24 oifname !="));
        assert!(t.contains("ip saddr 10.201.0.0/24 oifname \"bt-a\" ct status dnat masquerade"));
        assert!(t.contains("fib daddr type local tcp dport 18080 dnat to 10.201.0.2:80"));
        assert_eq!(t.matches("ip daddr 127.0.0.1 udp dport 18081").count(), 1);
        assert!(t.contains("iifname \"bt-a\" oifname { \"bt-b\" } drop"));
        assert!(t.contains("iifname \"bt-b\" oifname != \"bt-b\" drop"));
        let t6 = sample("berth-unit").render6().unwrap();
        assert!(t6.starts_with("table ip6 berth-unit {"));
        assert!(t6.contains("iifname \"bt-a\" oifname { \"bt-b\" } drop"));
        let mut v4 = sample("berth-unit");
        v4.bridges[0].subnet6 = None;
        assert!(v4.render6().is_none());
    }

    #[test]
    fn applies_and_deletes() {
        if !nix::unistd::geteuid().is_root() || Command::new("nft").arg("-v").output().is_err() {
            return;
        }
        let table = format!("berth-unit-{}", std::process::id());
        let r = sample(&table);
        r.apply().unwrap();
        assert!(table_exists(&table));
        let ip6 = |t: &str| {
            Command::new("nft")
                .args(["list", "table", "ip6", t])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        assert!(ip6(&table));
        r.apply().unwrap(); // replace is idempotent
                            // Ports added one by one reach the same rules as a full apply.
        let mut bare = r.clone();
        bare.ports.clear();
        bare.apply().unwrap();
        let added = r.added_ports(&bare).unwrap();
        r.apply_added(&added).unwrap();
        let listed = Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
        assert!(
            listed.contains("tcp dport 18080 dnat to 10.201.0.2:80"),
            "{listed}"
        );
        assert!(
            listed.contains("udp dport 18081 dnat to 10.201.0.2:53"),
            "{listed}"
        );
        Ruleset {
            table: table.clone(),
            ..Default::default()
        }
        .apply()
        .unwrap();
        assert!(!table_exists(&table));
        assert!(!ip6(&table));
        delete_table(&table).unwrap(); // absent is fine
    }
}
