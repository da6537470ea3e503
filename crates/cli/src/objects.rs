//! `docker volume …` and `docker network …` through the daemon, in docker's shapes.

use std::collections::HashMap;

use anyhow::Result;
use api::types::*;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::containers::{self, confirm, fail, parse_filters, print_rows, InspectArgs};
use crate::daemon::Conn;
use crate::opts;
use crate::units;

/// `docker volume COMMAND`.
#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// Create a volume.
    Create {
        /// Volume name.
        name: Option<String>,
        /// Specify volume driver name.
        #[arg(short, long, default_value = "local")]
        driver: String,
        /// Set metadata for a volume.
        #[arg(long)]
        label: Vec<String>,
        /// Set driver specific options.
        #[arg(short, long = "opt")]
        opt: Vec<String>,
        /// Volume name (alternative to the argument).
        #[arg(long = "name")]
        name_flag: Option<String>,
    },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        /// Provide filter values (e.g. "dangling=true").
        #[arg(short, long)]
        filter: Vec<String>,
        /// Format output using a custom template.
        #[arg(long)]
        format: Option<String>,
        /// Only display volume names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display detailed information on one or more volumes.
    Inspect(InspectArgs),
    /// Remove one or more volumes.
    #[command(alias = "remove")]
    Rm {
        /// Force the removal of one or more volumes.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove unused local volumes.
    Prune {
        /// Remove all unused volumes, not just anonymous ones.
        #[arg(short, long)]
        all: bool,
        /// Provide filter values (e.g. "label=<label>").
        #[arg(long)]
        filter: Vec<String>,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

pub fn volume(conn: &Conn, cmd: VolumeCmd) -> Result<i32> {
    let c = &conn.client;
    match cmd {
        VolumeCmd::Create {
            name,
            driver,
            label,
            opt,
            name_flag,
        } => {
            let req = VolumeCreateRequest {
                name: name.or(name_flag).unwrap_or_default(),
                driver,
                driver_opts: (!opt.is_empty()).then(|| opts::kv_map(&opt)),
                labels: (!label.is_empty()).then(|| opts::kv_map(&label)),
                ..Default::default()
            };
            match conn.block_on(c.volume_create(&req)) {
                Ok(v) => {
                    println!("{}", v.name);
                    Ok(0)
                }
                Err(e) => Ok(fail(e, 1)),
            }
        }
        VolumeCmd::Ls {
            filter,
            format,
            quiet,
        } => {
            let r = conn.block_on(c.volume_list(&parse_filters(&filter)?))?;
            let mut vols = r.volumes.unwrap_or_default();
            vols.sort_by(|a, b| a.name.cmp(&b.name));
            for w in r.warnings.unwrap_or_default() {
                eprintln!("{w}");
            }
            if quiet {
                for v in &vols {
                    println!("{}", v.name);
                }
                return Ok(0);
            }
            let rows: Vec<Value> = vols
                .iter()
                .map(|v| {
                    let labels: Vec<String> = v
                        .labels
                        .clone()
                        .unwrap_or_default()
                        .iter()
                        .map(|(k, x)| format!("{k}={x}"))
                        .collect();
                    let size = v
                        .usage_data
                        .as_ref()
                        .and_then(|u| u.get("Size"))
                        .and_then(Value::as_i64)
                        .filter(|s| *s >= 0)
                        .map(|s| units::human_size(s as u64))
                        .unwrap_or_else(|| "N/A".into());
                    json!({
                        "Name": v.name, "Driver": v.driver, "Scope": v.scope,
                        "Mountpoint": v.mountpoint, "Labels": labels.join(","),
                        "Size": size, "Availability": "N/A", "Group": "", "Status": "N/A",
                    })
                })
                .collect();
            let headers = HashMap::from([
                ("Name", "VOLUME NAME"),
                ("Driver", "DRIVER"),
                ("Scope", "SCOPE"),
                ("Mountpoint", "MOUNTPOINT"),
                ("Labels", "LABELS"),
                ("Size", "SIZE"),
            ]);
            print_rows(
                &rows,
                format.as_deref(),
                "table {{.Driver}}\t{{.Name}}",
                &headers,
            )?;
            Ok(0)
        }
        VolumeCmd::Inspect(a) => containers::inspect(conn, &a, Some("volume")),
        VolumeCmd::Rm { force, volumes } => Ok(conn.block_on(async {
            let mut code = 0;
            for v in &volumes {
                match c.volume_remove(v, force).await {
                    Ok(()) => println!("{v}"),
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
            code
        })),
        VolumeCmd::Prune { all, filter, force } => {
            let what = if all {
                "all local volumes not used by at least one container"
            } else {
                "anonymous local volumes not used by at least one container"
            };
            if !confirm(force, &format!("WARNING! This will remove {what}."))? {
                return Ok(0);
            }
            let mut f = parse_filters(&filter)?;
            if all {
                f.add("all", "true");
            }
            let r = conn.block_on(c.volume_prune(&f))?;
            let d = r.volumes_deleted.unwrap_or_default();
            if !d.is_empty() {
                println!("Deleted Volumes:");
                for x in d {
                    println!("{x}");
                }
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                units::human_size(r.space_reclaimed)
            );
            Ok(0)
        }
    }
}

/// `docker network create` flags.
#[derive(Args, Debug)]
pub struct NetworkCreateArgs {
    /// Enable manual container attachment.
    #[arg(long)]
    pub attachable: bool,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver.
    #[arg(long = "aux-address")]
    pub aux_address: Vec<String>,
    /// Driver to manage the Network.
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// IPv4 or IPv6 Gateway for the master subnet.
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Restrict external access to the network.
    #[arg(long)]
    pub internal: bool,
    /// Allocate container ip from a sub-range.
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// IP Address Management Driver.
    #[arg(long = "ipam-driver", default_value = "default")]
    pub ipam_driver: String,
    /// Enable or disable IPv6 networking.
    #[arg(long)]
    pub ipv6: bool,
    /// Set metadata on a network.
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options.
    #[arg(short, long = "opt")]
    pub opt: Vec<String>,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long)]
    pub subnet: Vec<String>,
    pub name: String,
}

/// `docker network COMMAND`.
#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// Create a network.
    Create(NetworkCreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Provide filter values (e.g. "driver=bridge").
        #[arg(short, long)]
        filter: Vec<String>,
        /// Format output using a custom template.
        #[arg(long)]
        format: Option<String>,
        /// Do not truncate the output.
        #[arg(long = "no-trunc")]
        no_trunc: bool,
        /// Only display network IDs.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display detailed information on one or more networks.
    Inspect(InspectArgs),
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm {
        /// Do not error if the network does not exist.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove all unused networks.
    Prune {
        /// Provide filter values (e.g. "until=<timestamp>").
        #[arg(long)]
        filter: Vec<String>,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
    /// Connect a container to a network.
    Connect {
        /// Add network-scoped alias for the container.
        #[arg(long)]
        alias: Vec<String>,
        /// IPv4 address (e.g., "172.30.100.104").
        #[arg(long)]
        ip: Option<String>,
        /// IPv6 address.
        #[arg(long)]
        ip6: Option<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network.
    Disconnect {
        /// Force the container to disconnect from a network.
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
}

pub fn network(conn: &Conn, cmd: NetworkCmd) -> Result<i32> {
    let c = &conn.client;
    match cmd {
        NetworkCmd::Create(a) => {
            let mut pools = Vec::new();
            for (i, s) in a.subnet.iter().enumerate() {
                let mut p = std::collections::BTreeMap::new();
                p.insert("Subnet".to_string(), json!(s));
                if let Some(g) = a.gateway.get(i) {
                    p.insert("Gateway".to_string(), json!(g));
                }
                if let Some(r) = a.ip_range.get(i) {
                    p.insert("IPRange".to_string(), json!(r));
                }
                if i == 0 && !a.aux_address.is_empty() {
                    p.insert(
                        "AuxiliaryAddresses".to_string(),
                        json!(opts::kv_map(&a.aux_address)),
                    );
                }
                pools.push(p);
            }
            let req = NetworkCreateRequest {
                name: a.name.clone(),
                driver: a.driver.clone(),
                internal: a.internal,
                attachable: a.attachable,
                enable_ipv6: a.ipv6.then_some(true),
                ipam: Some(Ipam {
                    driver: a.ipam_driver.clone(),
                    config: Some(pools),
                    options: None,
                }),
                options: (!a.opt.is_empty()).then(|| opts::kv_map(&a.opt)),
                labels: (!a.label.is_empty()).then(|| opts::kv_map(&a.label)),
                ..Default::default()
            };
            match conn.block_on(c.network_create(&req)) {
                Ok(r) => {
                    if !r.warning.is_empty() {
                        eprintln!("WARNING: {}", r.warning);
                    }
                    println!("{}", r.id);
                    Ok(0)
                }
                Err(e) => Ok(fail(e, 1)),
            }
        }
        NetworkCmd::Ls {
            filter,
            format,
            no_trunc,
            quiet,
        } => {
            let mut nets = conn.block_on(c.network_list(&parse_filters(&filter)?))?;
            nets.sort_by(|a, b| a.name.cmp(&b.name));
            let id = |s: &str| {
                if no_trunc {
                    s.to_string()
                } else {
                    s.chars().take(12).collect()
                }
            };
            if quiet {
                for n in &nets {
                    println!("{}", id(&n.id));
                }
                return Ok(0);
            }
            let rows: Vec<Value> = nets
                .iter()
                .map(|n| {
                    let labels: Vec<String> = n
                        .labels
                        .clone()
                        .unwrap_or_default()
                        .iter()
                        .map(|(k, x)| format!("{k}={x}"))
                        .collect();
                    json!({
                        "ID": id(&n.id), "Name": n.name, "Driver": n.driver, "Scope": n.scope,
                        "IPv6": n.enable_ipv6.to_string(), "Internal": n.internal.to_string(),
                        "Labels": labels.join(","), "CreatedAt": n.created,
                    })
                })
                .collect();
            let headers = HashMap::from([
                ("ID", "NETWORK ID"),
                ("Name", "NAME"),
                ("Driver", "DRIVER"),
                ("Scope", "SCOPE"),
                ("IPv6", "IPV6"),
                ("Internal", "INTERNAL"),
                ("Labels", "LABELS"),
                ("CreatedAt", "CREATED AT"),
            ]);
            print_rows(
                &rows,
                format.as_deref(),
                "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
                &headers,
            )?;
            Ok(0)
        }
        NetworkCmd::Inspect(a) => containers::inspect(conn, &a, Some("network")),
        NetworkCmd::Rm { force, networks } => Ok(conn.block_on(async {
            let mut code = 0;
            for n in &networks {
                match c.network_remove(n).await {
                    Ok(()) => println!("{n}"),
                    Err(e) if force && e.is_not_found() => {}
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
            code
        })),
        NetworkCmd::Prune { filter, force } => {
            if !confirm(
                force,
                "WARNING! This will remove all custom networks not used by at least one container.",
            )? {
                return Ok(0);
            }
            let r = conn.block_on(c.network_prune(&parse_filters(&filter)?))?;
            let d = r.networks_deleted.unwrap_or_default();
            if !d.is_empty() {
                println!("Deleted Networks:");
                for x in d {
                    println!("{x}");
                }
            }
            Ok(0)
        }
        NetworkCmd::Connect {
            alias,
            ip,
            ip6,
            network,
            container,
        } => {
            let req = NetworkConnectRequest {
                container,
                endpoint_config: Some(EndpointSettings {
                    aliases: (!alias.is_empty()).then_some(alias),
                    ipam_config: (ip.is_some() || ip6.is_some()).then(|| EndpointIpamConfig {
                        ipv4_address: ip.unwrap_or_default(),
                        ipv6_address: ip6.unwrap_or_default(),
                        link_local_ips: None,
                    }),
                    ..Default::default()
                }),
            };
            match conn.block_on(c.network_connect(&network, &req)) {
                Ok(()) => Ok(0),
                Err(e) => Ok(fail(e, 1)),
            }
        }
        NetworkCmd::Disconnect {
            force,
            network,
            container,
        } => {
            let req = NetworkDisconnectRequest { container, force };
            match conn.block_on(c.network_disconnect(&network, &req)) {
                Ok(()) => Ok(0),
                Err(e) => Ok(fail(e, 1)),
            }
        }
    }
}
