//! Networking of berth's daemon, driven by the real docker CLI: containers reach each other by
//! name and `--network-alias` on a user-defined network (embedded DNS at 127.0.0.11), are
//! reached from the host through ports published on 127.0.0.1 (TCP and UDP, fixed and random
//! host ports, `-P`), are isolated between networks, reach published ports through the
//! gateway (hairpin), get the embedded DNS when connected to a user network while running,
//! and bad input gets docker's errors. Every
//! test checks that berth leaves no link, rule or namespace behind (after `rm`, after a daemon
//! crash, and at the end).
//!
//! Each test's daemon has its own default bridge (`--bridge-name`), subnet (`--bip`) and pool
//! (`--default-address-pools`), so the tests run in parallel with each other and with other
//! daemon tests. Only loopback and the test's own containers are contacted. Needs root, `nft`
//! and a docker CLI; otherwise prints SKIP and passes.

#[path = "daemon_common/mod.rs"]
mod daemon_common;

use daemon_common::*;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A sandboxed daemon with its own bridge; its Drop removes containers and networks through
/// the daemon, then (only if something was left) berth's own bridge and table for this test.
struct Net {
    sb: Option<Sandbox>,
    bridge: String,
}

impl Net {
    fn new(test: &str, index: u8) -> Option<Net> {
        Net::with(test, index, true)
    }

    /// `bip`: give the default bridge 10.(190+index).0.1/24 explicitly (else it is picked
    /// from the pool 10.(190+index).0.0/16 in /24s).
    fn with(test: &str, index: u8, bip: bool) -> Option<Net> {
        if Command::new("nft").arg("--version").output().is_err() {
            eprintln!("SKIP {test}: no nft");
            return None;
        }
        let tag = std::process::id() % 10000;
        let bridge = format!("bt{tag}n{index}");
        let octet = 190 + index;
        let bip_v = format!("10.{octet}.0.1/24");
        let pool = format!("base=10.{octet}.0.0/16,size=24");
        let mut flags = vec!["--bridge-name", &bridge, "--default-address-pools", &pool];
        if bip {
            flags.extend(["--bip", bip_v.as_str()]);
        }
        let sb = setup_with(test, &flags)?;
        Some(Net {
            sb: Some(sb),
            bridge,
        })
    }

    fn sb(&self) -> &Sandbox {
        self.sb.as_ref().unwrap()
    }

    fn table(&self) -> String {
        format!("berth_{}", self.bridge)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.sb().ok(args).trim().to_string()
    }

    /// Runs docker, expects failure, returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.sb().docker(args);
        assert!(
            !o.status.success(),
            "docker {args:?} should have failed: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    /// Asserts berth left nothing (call after every container and network is removed):
    /// while the daemon runs, no veth on any bridge of this daemon, no user bridge and no
    /// namespace; once it stops (SIGTERM), no default bridge and no table either (the default
    /// bridge lives as long as the daemon, as docker0 does).
    fn assert_clean(&mut self, user_bridges: &[String]) {
        self.wait_clean(user_bridges, false);
        if let Some(sb) = self.sb.as_mut() {
            sb.stop_daemon();
        }
        self.wait_clean(user_bridges, true);
    }

    fn wait_clean(&self, user_bridges: &[String], stopped: bool) {
        let t = Instant::now();
        loop {
            let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
            let links = String::from_utf8_lossy(&links.stdout).into_owned();
            let left: Vec<&str> = links
                .lines()
                .filter(|l| {
                    (stopped && l.contains(&format!(" {}:", self.bridge)))
                        || l.contains(&format!("master {} ", self.bridge))
                        || user_bridges.iter().any(|b| {
                            l.contains(&format!(" {b}:")) || l.contains(&format!("master {b} "))
                        })
                })
                .collect();
            let table = stopped
                && Command::new("nft")
                    .args(["list", "table", "ip", &self.table()])
                    .output()
                    .unwrap()
                    .status
                    .success();
            let netns = std::fs::read_dir(self.sb().dir.join("exec/netns"))
                .map(|d| d.count())
                .unwrap_or(0);
            if left.is_empty() && !table && netns == 0 {
                return;
            }
            if t.elapsed() > Duration::from_secs(10) {
                panic!("berth left links {left:?}, table {table}, {netns} namespaces (daemon stopped: {stopped})");
            }
            sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(sb) = self.sb.take() {
            if let Ok(ids) = String::from_utf8(sb.docker(&["ps", "-aq"]).stdout) {
                for id in ids.split_whitespace() {
                    let _ = sb.docker(&["rm", "-f", id]);
                }
            }
            let _ = sb.docker(&["network", "prune", "-f"]);
            drop(sb);
        }
        // Last resort after a failed test: only this test's own table and bridge.
        for family in ["ip", "ip6"] {
            let _ = Command::new("nft")
                .args(["delete", "table", family, &self.table()])
                .output();
        }
        let _ = Command::new("ip")
            .args(["link", "delete", &self.bridge])
            .output();
    }
}

/// An HTTP GET of `/` on 127.0.0.1:port, returning the body (retries while the server starts).
fn http_get(port: u16) -> String {
    let t = Instant::now();
    loop {
        let r = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match r {
            Ok(o) if o.contains("200") => {
                return o.split("\r\n\r\n").nth(1).unwrap_or("").trim().to_string()
            }
            _ if t.elapsed() > Duration::from_secs(10) => {
                panic!("no answer on 127.0.0.1:{port}: {r:?}")
            }
            _ => sleep(Duration::from_millis(100)),
        }
    }
}

const HTTPD: &str =
    "busybox mkdir -p /www && echo hello-$HOSTNAME-$0 > /www/index.html && exec busybox httpd -f -p 80 -h /www";

fn server(n: &Net, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "--pull", "never", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", HTTPD, name]);
    n.ok(&args)
}

/// `nc NAME 80` from a new container on `net`: the page, or an empty string.
fn fetch_from(n: &Net, net: &str, target: &str) -> String {
    let script = format!(
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {target} 80 | busybox tail -n 1"
    );
    let o = n.sb().docker(&[
        "run",
        "--pull",
        "never",
        "--rm",
        "--network",
        net,
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn wait_http_in(n: &Net, net: &str, target: &str, want: &str) {
    let t = Instant::now();
    loop {
        let got = fetch_from(n, net, target);
        if got.contains(want) {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{target} on {net}: got {got:?}, want {want:?}; daemon log: {}",
            n.sb().daemon_log()
        );
        sleep(Duration::from_millis(200));
    }
}

#[test]
fn containers_reach_each_other_by_name_and_alias() {
    let Some(mut n) = Net::new("containers_reach_each_other_by_name_and_alias", 0) else {
        return;
    };
    let net = format!("app{}", std::process::id());
    let id = n.ok(&["network", "create", "--label", "team=berth", &net]);
    assert_eq!(id.len(), 64);
    let web = server(
        &n,
        "web",
        &["--network", &net, "--network-alias", "frontend"],
    );
    wait_http_in(&n, &net, "web", "hello-");
    wait_http_in(&n, &net, "frontend", "hello-");
    wait_http_in(&n, &net, &web[..12], "hello-");
    wait_http_in(&n, &net, &format!("web.{net}"), "hello-");
    // resolv.conf points at the embedded server; names outside are refused, not forwarded.
    let out = n.ok(&[
        "run", "--pull", "never", "--rm", "--network", &net, "busybox", "sh", "-c",
        "cat /etc/resolv.conf; busybox nslookup web 127.0.0.11; busybox nslookup nothing.invalid 127.0.0.11; true",
    ]);
    assert!(out.contains("nameserver 127.0.0.11"), "{out}");
    assert!(out.contains("REFUSED"), "{out}");
    // inspect: the endpoint's address is in the network's subnet.
    let ip = n.ok(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        "web",
    ]);
    let subnet = n.ok(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Subnet}}",
        &net,
    ]);
    assert!(subnet.starts_with("10.190."), "{subnet}");
    assert!(
        ip.starts_with(subnet.trim_end_matches("0/24")),
        "{ip} in {subnet}"
    );
    let members = n.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}} {{end}}",
        &net,
    ]);
    assert_eq!(members, "web");
    assert!(n
        .ok(&[
            "network",
            "ls",
            "--filter",
            "label=team=berth",
            "--format",
            "{{.Name}}"
        ])
        .contains(&net));
    // --ip on a network with a user subnet, and connect/disconnect of a running container.
    let fixed = format!("fix{}", std::process::id());
    n.ok(&[
        "network",
        "create",
        "--subnet",
        "10.190.77.0/24",
        "--gateway",
        "10.190.77.254",
        &fixed,
    ]);
    let out = n.ok(&[
        "run",
        "--pull",
        "never",
        "--rm",
        "--network",
        &fixed,
        "--ip",
        "10.190.77.9",
        "busybox",
        "sh",
        "-c",
        "busybox ip -4 -o addr show eth0; busybox ip route",
    ]);
    assert!(out.contains("10.190.77.9/24"), "{out}");
    assert!(out.contains("default via 10.190.77.254"), "{out}");
    // --ip-range: dynamic addresses from the range only.
    let rng = format!("rng{}", std::process::id());
    n.ok(&[
        "network",
        "create",
        "--subnet",
        "10.190.88.0/24",
        "--ip-range",
        "10.190.88.128/25",
        &rng,
    ]);
    let out = n.ok(&[
        "run",
        "--pull",
        "never",
        "--rm",
        "--network",
        &rng,
        "busybox",
        "busybox",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out.contains("inet 10.190.88.128/24"), "{out}");
    n.ok(&["network", "rm", &rng]);
    n.ok(&["network", "connect", &fixed, "web"]);
    assert!(n.ok(&["inspect", "-f", "{{len .NetworkSettings.Networks}}", "web"]) == "2");
    wait_http_in(&n, &fixed, "web", "hello-");
    n.ok(&["network", "disconnect", &fixed, "web"]);
    assert!(fetch_from(&n, &fixed, "web").is_empty());
    // /etc/hosts has the container's address; --add-host adds lines.
    let hosts = n.ok(&[
        "run",
        "--pull",
        "never",
        "--rm",
        "--network",
        &net,
        "--hostname",
        "box",
        "--add-host",
        "db.example:10.9.8.7",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert!(hosts.contains("10.9.8.7\tdb.example"), "{hosts}");
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with("10.190.") && l.ends_with("\tbox")),
        "{hosts}"
    );
    n.ok(&["rm", "-f", "web"]);
    n.ok(&["network", "rm", &net, &fixed]);
    // Docker's network events.
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let ev = n.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=network",
        "--filter",
        &format!("network={net}"),
        "--format",
        "{{.Action}}",
    ]);
    let ev: Vec<&str> = ev.lines().collect();
    assert_eq!(ev.first(), Some(&"create"), "{ev:?}");
    assert!(
        ev.contains(&"connect") && ev.contains(&"disconnect"),
        "{ev:?}"
    );
    assert_eq!(ev.last(), Some(&"destroy"), "{ev:?}");
    n.assert_clean(&[]);
}

#[test]
fn published_ports_on_loopback() {
    let Some(mut n) = Net::new("published_ports_on_loopback", 1) else {
        return;
    };
    let port = free_port();
    let spec = format!("127.0.0.1:{port}:80");
    server(&n, "pub", &["-p", &spec]);
    assert!(http_get(port).starts_with("hello-"));
    assert_eq!(
        n.ok(&["port", "pub"]),
        format!("80/tcp -> 127.0.0.1:{port}")
    );
    assert!(n
        .ok(&["ps", "--format", "{{.Ports}}"])
        .contains(&format!("127.0.0.1:{port}->80/tcp")));
    let ip = n.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "pub"]);
    assert!(ip.starts_with("10.191.0."), "{ip}");
    assert_eq!(
        n.ok(&["inspect", "-f", "{{.NetworkSettings.Gateway}}", "pub"]),
        "10.191.0.1"
    );
    // A second publication of the port: docker's error, and no container network left over.
    let err = n.fails(&[
        "run", "--pull", "never", "-d", "--name", "dup", "-p", &spec, "busybox", "sleep", "60",
    ]);
    assert!(err.contains("port is already allocated"), "{err}");
    // -p 80 (random host port) and -P from --expose.
    server(&n, "rnd", &["-p", "80", "--expose", "8080", "-P"]);
    let out = n.ok(&["port", "rnd", "80/tcp"]);
    let rp: u16 = out
        .lines()
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rp > 1024, "{out}");
    assert!(http_get(rp).starts_with("hello-"));
    assert!(n.ok(&["port", "rnd"]).contains("8080/tcp -> 0.0.0.0:"));
    // After stop the host port is free again and its rule is gone.
    n.ok(&["stop", "-t", "1", "pub"]);
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    let rules = Command::new("nft")
        .args(["list", "table", "ip", &n.table()])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&rules.stdout).contains(&format!("dport {port} ")));
    n.ok(&["start", "dup"]);
    n.ok(&["rm", "-f", "pub", "dup", "rnd"]);
    n.assert_clean(&[]);
}

#[test]
fn udp_published_port() {
    let Some(mut n) = Net::new("udp_published_port", 2) else {
        return;
    };
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let spec = format!("127.0.0.1:{port}:5353/udp");
    n.ok(&[
        "run", "--pull", "never", "-d", "--name", "udpsrv", "-p", &spec, "busybox", "sleep", "120",
    ]);
    assert_eq!(
        n.ok(&["port", "udpsrv"]),
        format!("5353/udp -> 127.0.0.1:{port}")
    );
    // The UDP server runs inside the container's network namespace (entered by a thread of
    // this test): an echo of one datagram.
    let pid = n.ok(&["inspect", "-f", "{{.State.Pid}}", "udpsrv"]);
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let echo = std::thread::spawn(move || {
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let s = UdpSocket::bind("0.0.0.0:5353").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tx.send(()).unwrap();
        let mut b = [0u8; 100];
        let (len, from) = s.recv_from(&mut b).unwrap();
        s.send_to(&b[..len], from).unwrap();
        String::from_utf8_lossy(&b[..len]).into_owned()
    });
    rx.recv().unwrap();
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.send_to(b"ping-udp", ("127.0.0.1", port)).unwrap();
    let mut b = [0u8; 100];
    let len = c.recv(&mut b).unwrap();
    assert_eq!(&b[..len], b"ping-udp");
    assert_eq!(echo.join().unwrap(), "ping-udp");
    n.ok(&["rm", "-f", "udpsrv"]);
    n.assert_clean(&[]);
}

#[test]
fn networks_are_isolated() {
    let Some(mut n) = Net::new("networks_are_isolated", 3) else {
        return;
    };
    let (a, b, i) = (
        format!("isoa{}", std::process::id()),
        format!("isob{}", std::process::id()),
        format!("isoi{}", std::process::id()),
    );
    n.ok(&["network", "create", &a]);
    n.ok(&["network", "create", &b]);
    n.ok(&["network", "create", "--internal", &i]);
    server(&n, "srv", &["--network", &a]);
    wait_http_in(&n, &a, "srv", "hello-");
    let ip = n.ok(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{a}\").IPAddress}}}}"),
        "srv",
    ]);
    // From another network: neither the name nor the address.
    assert_eq!(fetch_from(&n, &b, &ip), "");
    let out = String::from_utf8_lossy(
        &n.sb()
            .docker(&[
                "run",
                "--pull",
                "never",
                "--rm",
                "--network",
                &b,
                "busybox",
                "busybox",
                "nslookup",
                "srv",
                "127.0.0.11",
            ])
            .stdout,
    )
    .into_owned();
    assert!(!out.contains(&ip), "{out}");
    // From the default bridge neither.
    assert_eq!(fetch_from(&n, "bridge", &ip), "");
    // An internal network has no default route and cannot leave its bridge.
    let out = n.ok(&[
        "run",
        "--pull",
        "never",
        "--rm",
        "--network",
        &i,
        "busybox",
        "busybox",
        "ip",
        "route",
    ]);
    assert!(!out.contains("default"), "{out}");
    assert_eq!(fetch_from(&n, &i, &ip), "");
    // The same network still works.
    assert!(fetch_from(&n, &a, &ip).contains("hello-"));
    n.ok(&["rm", "-f", "srv"]);
    n.ok(&["network", "rm", &a, &b, &i]);
    n.assert_clean(&[]);
}

#[test]
fn network_errors_leave_nothing_behind() {
    let Some(mut n) = Net::new("network_errors_leave_nothing_behind", 4) else {
        return;
    };
    let e = n.fails(&[
        "network",
        "create",
        "--subnet",
        "10.194.300.0/24",
        "badcidr",
    ]);
    assert!(e.contains("invalid CIDR address"), "{e}");
    let e = n.fails(&["network", "create", "--subnet", "10.194.9.0/33", "badcidr"]);
    assert!(e.contains("invalid CIDR address"), "{e}");
    let net = format!("err{}", std::process::id());
    n.ok(&["network", "create", "--subnet", "10.194.50.0/24", &net]);
    let e = n.fails(&[
        "network",
        "create",
        "--subnet",
        "10.194.50.128/25",
        "overlap",
    ]);
    assert!(
        e.contains("Pool overlaps with other one on this address space"),
        "{e}"
    );
    let e = n.fails(&[
        "network",
        "create",
        "--subnet",
        "10.194.0.0/24",
        "overlapbridge",
    ]);
    assert!(e.contains("Pool overlaps"), "{e}");
    let e = n.fails(&["network", "create", &net]);
    assert!(
        e.contains(&format!("network with name {net} already exists")),
        "{e}"
    );
    let e = n.fails(&[
        "run",
        "--pull",
        "never",
        "--rm",
        "--network",
        "nosuchnet",
        "busybox",
        "true",
    ]);
    assert!(e.contains("network nosuchnet not found"), "{e}");
    let e = n.fails(&["network", "inspect", "nosuchnet"]);
    assert!(e.contains("nosuchnet"), "{e}");
    let e = n.fails(&["network", "rm", "nosuchnet"]);
    assert!(e.contains("not found"), "{e}");
    let e = n.fails(&["network", "rm", "bridge"]);
    assert!(
        e.contains("pre-defined network and cannot be removed"),
        "{e}"
    );
    let e = n.fails(&[
        "run",
        "--pull",
        "never",
        "--rm",
        "--network",
        &net,
        "--ip",
        "10.194.51.5",
        "busybox",
        "true",
    ]);
    assert!(e.contains("10.194.51.5"), "{e}");
    let e = n.fails(&[
        "run",
        "--pull",
        "never",
        "--rm",
        "--ip",
        "10.194.0.9",
        "busybox",
        "true",
    ]);
    assert!(e.contains("user specified IP address is supported"), "{e}");
    // In use: refused while a container runs on it.
    n.ok(&[
        "run",
        "--pull",
        "never",
        "-d",
        "--name",
        "user",
        "--network",
        &net,
        "busybox",
        "sleep",
        "60",
    ]);
    let e = n.fails(&["network", "rm", &net]);
    assert!(e.contains("has active endpoints"), "{e}");
    // An address in use is not handed out twice.
    let ip = n.ok(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        "user",
    ]);
    let e = n.fails(&[
        "run",
        "--pull",
        "never",
        "--rm",
        "--network",
        &net,
        "--ip",
        &ip,
        "busybox",
        "true",
    ]);
    assert!(e.contains("Address already in use"), "{e}");
    n.ok(&["rm", "-f", "user"]);
    // prune removes unused user networks only.
    let pruned = n.ok(&["network", "prune", "-f"]);
    assert!(pruned.contains(&net), "{pruned}");
    assert_eq!(n.ok(&["network", "ls", "-q"]).lines().count(), 3);
    n.assert_clean(&[]);
}

#[test]
fn cleanup_after_daemon_crash() {
    let Some(mut n) = Net::new("cleanup_after_daemon_crash", 5) else {
        return;
    };
    let port = free_port();
    let spec = format!("127.0.0.1:{port}:80");
    let keep_port = free_port();
    let keep_spec = format!("127.0.0.1:{keep_port}:80");
    server(&n, "gone", &["-p", &spec]);
    server(&n, "kept", &["-p", &keep_spec]);
    assert!(http_get(port).starts_with("hello-"));
    let pid: i32 = n
        .ok(&["inspect", "-f", "{{.State.Pid}}", "gone"])
        .parse()
        .unwrap();
    // The daemon dies; one container dies while it is down.
    n.sb.as_mut().unwrap().kill_daemon();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    sleep(Duration::from_millis(500));
    let bridge = n.bridge.clone();
    let octet = 195;
    n.sb.as_mut().unwrap().start_daemon_with(&[
        "--bridge-name",
        &bridge,
        "--bip",
        &format!("10.{octet}.0.1/24"),
        "--default-address-pools",
        &format!("base=10.{octet}.0.0/16,size=24"),
    ]);
    // The survivor still serves and holds its port; the dead one's port and rules are gone.
    assert!(http_get(keep_port).starts_with("hello-"));
    assert!(std::net::TcpListener::bind(("127.0.0.1", keep_port)).is_err());
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    let rules = Command::new("nft")
        .args(["list", "table", "ip", &n.table()])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout).into_owned();
    assert!(rules.contains(&format!("dport {keep_port} ")), "{rules}");
    assert!(!rules.contains(&format!("dport {port} ")), "{rules}");
    let veths = Command::new("ip")
        .args(["-o", "link", "show", "master", &bridge])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&veths.stdout).lines().count(), 1);
    // The dead one starts again with its port.
    n.ok(&["start", "gone"]);
    assert!(http_get(port).starts_with("hello-"));
    n.ok(&["rm", "-f", "gone", "kept"]);
    n.assert_clean(&[]);
}

#[test]
fn network_modes_and_etc_files() {
    let Some(mut n) = Net::new("network_modes_and_etc_files", 6) else {
        return;
    };
    // host: the host's network and hostname.
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let out = n.ok(&[
        "run",
        "--pull",
        "never",
        "--rm",
        "--network",
        "host",
        "busybox",
        "busybox",
        "hostname",
    ]);
    assert_eq!(out, host);
    // none: loopback only.
    let out = n.ok(&[
        "run",
        "--pull",
        "never",
        "--rm",
        "--network",
        "none",
        "busybox",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(out.lines().count(), 1, "{out}");
    // container:<name>: the same interfaces, address and hostname.
    n.ok(&[
        "run", "--pull", "never", "-d", "--name", "base", "busybox", "sleep", "120",
    ]);
    let ip = n.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "base"]);
    assert!(ip.starts_with("10.196.0."), "{ip}");
    let out = n.ok(&[
        "run",
        "--pull",
        "never",
        "--rm",
        "--network",
        "container:base",
        "busybox",
        "sh",
        "-c",
        "busybox ip -4 -o addr show eth0; busybox hostname",
    ]);
    assert!(out.contains(&format!("{ip}/24")), "{out}");
    assert!(
        out.ends_with(&n.ok(&["inspect", "-f", "{{.Config.Hostname}}", "base"])),
        "{out}"
    );
    // The default bridge: /etc/hosts names the container, --dns/--dns-search in resolv.conf.
    let out = n.ok(&[
        "run",
        "--pull",
        "never",
        "--rm",
        "--hostname",
        "h1",
        "--dns",
        "192.0.2.99",
        "--dns-search",
        "corp.example",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf /etc/hosts",
    ]);
    assert!(out.contains("nameserver 192.0.2.99"), "{out}");
    assert!(out.contains("search corp.example"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("10.196.0.") && l.ends_with("\th1")),
        "{out}"
    );
    // restart: networking is made again, same published port.
    let port = free_port();
    let spec = format!("127.0.0.1:{port}:80");
    server(&n, "re", &["-p", &spec]);
    assert!(http_get(port).starts_with("hello-"));
    n.ok(&["restart", "-t", "1", "re"]);
    assert!(http_get(port).starts_with("hello-"));
    assert_eq!(n.ok(&["port", "re"]), format!("80/tcp -> 127.0.0.1:{port}"));
    n.ok(&["rm", "-f", "re", "base"]);
    n.assert_clean(&[]);
}

/// A test-made link with a route over the start of the pool: berth's default bridge and a
/// new network take the next free subnets, and berth never touches that link.
#[test]
fn subnets_skip_host_routes() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let dummy = format!("btd{}", std::process::id() % 100000);
    let ip = |args: &[&str]| {
        let o = Command::new("ip").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    ip(&["link", "add", &dummy, "type", "bridge"]);
    struct Dummy(String);
    impl Drop for Dummy {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["link", "delete", &self.0])
                .output();
        }
    }
    let _d = Dummy(dummy.clone());
    ip(&["addr", "add", "10.197.0.1/24", "dev", &dummy]);
    ip(&["link", "set", &dummy, "up"]);
    let Some(mut n) = Net::with("subnets_skip_host_routes", 7, false) else {
        return;
    };
    let out = n.ok(&[
        "run", "--pull", "never", "--rm", "busybox", "busybox", "ip", "-4", "-o", "addr", "show",
        "eth0",
    ]);
    assert!(out.contains("inet 10.197.1."), "{out}");
    let net = format!("skip{}", std::process::id());
    n.ok(&["network", "create", &net]);
    let subnet = n.ok(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Subnet}}",
        &net,
    ]);
    assert_eq!(subnet, "10.197.2.0/24");
    // connect a stopped container, then start it: eth0 on the bridge, eth1 on the network.
    n.ok(&["create", "--name", "two", "busybox", "sleep", "60"]);
    n.ok(&["network", "connect", "--alias", "second", &net, "two"]);
    n.ok(&["start", "two"]);
    let out = n.ok(&["exec", "two", "busybox", "ip", "-4", "-o", "addr"]);
    assert!(
        out.contains("eth0") && out.contains("inet 10.197.1."),
        "{out}"
    );
    assert!(
        out.contains("eth1") && out.contains("inet 10.197.2."),
        "{out}"
    );
    n.ok(&["rm", "-f", "two"]);
    n.ok(&["network", "rm", &net]);
    n.assert_clean(&[]);
    let o = Command::new("ip")
        .args(["-4", "-o", "addr", "show", &dummy])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("10.197.0.1/24"));
}

/// A port published on every address is reached from "another host": a network namespace this
/// test makes, linked to the host by a veth, connects to the host's end of that link (DNAT in
/// prerouting, forwarding to the bridge).
#[test]
fn published_port_from_another_namespace() {
    let Some(mut n) = Net::new("published_port_from_another_namespace", 8) else {
        return;
    };
    let pid = std::process::id();
    let (ns, host_if, peer_if) = (
        format!("btns{pid}"),
        format!("bto{}", pid % 100000),
        format!("bti{}", pid % 100000),
    );
    let x = pid % 250;
    let (host_ip, peer_ip) = (format!("10.189.{x}.1"), format!("10.189.{x}.2"));
    let ip = |args: &[&str]| {
        let o = Command::new("ip").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    struct Outside(String, String);
    impl Drop for Outside {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["link", "delete", &self.1])
                .output();
            let _ = Command::new("ip")
                .args(["netns", "delete", &self.0])
                .output();
        }
    }
    ip(&["netns", "add", &ns]);
    let _o = Outside(ns.clone(), host_if.clone());
    ip(&[
        "link", "add", &host_if, "type", "veth", "peer", "name", &peer_if,
    ]);
    ip(&["link", "set", &peer_if, "netns", &ns]);
    ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_if]);
    ip(&["link", "set", &host_if, "up"]);
    ip(&[
        "netns",
        "exec",
        &ns,
        "ip",
        "addr",
        "add",
        &format!("{peer_ip}/30"),
        "dev",
        &peer_if,
    ]);
    ip(&["netns", "exec", &ns, "ip", "link", "set", &peer_if, "up"]);
    ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
    let port = free_port();
    server(&n, "wide", &["-p", &format!("{port}:80")]);
    assert!(http_get(port).starts_with("hello-"));
    let nsfile = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    let target = host_ip.clone();
    let body = std::thread::spawn(move || {
        nix::sched::setns(nsfile.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let mut s = TcpStream::connect_timeout(
            &format!("{target}:{port}").parse().unwrap(),
            Duration::from_secs(5),
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .join()
    .unwrap();
    assert!(body.contains("hello-"), "{body}");
    n.ok(&["rm", "-f", "wide"]);
    n.assert_clean(&[]);
}

/// `nc TARGET PORT` run inside container `from` (an HTTP GET): the page's last line, or "".
fn fetch_in(n: &Net, from: &str, target: &str, port: u16) -> String {
    let script = format!(
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {target} {port} | busybox tail -n 1"
    );
    let o = n.sb().docker(&["exec", from, "sh", "-c", &script]);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Retries [`fetch_in`] until the page contains `want` (the server may still be starting).
fn wait_fetch_in(n: &Net, from: &str, target: &str, port: u16, want: &str) {
    let t = Instant::now();
    loop {
        let got = fetch_in(n, from, target, port);
        if got.contains(want) {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{target}:{port} from {from}: got {got:?}, want {want:?}; daemon log: {}",
            n.sb().daemon_log()
        );
        sleep(Duration::from_millis(200));
    }
}

/// `docker network connect` of a RUNNING container on the default bridge to a user-defined
/// network, as dockerd: the container's /etc/hosts gains its new address, its resolv.conf
/// now points at the embedded DNS server (127.0.0.11) unless the user edited the file, it
/// resolves and reaches the network's containers by name, and they resolve it by name and
/// alias. Disconnect drops the /etc/hosts line. Nothing is left afterwards.
#[test]
fn connect_running_container_to_user_network() {
    let Some(mut n) = Net::new("connect_running_container_to_user_network", 9) else {
        return;
    };
    n.ok(&[
        "run", "--pull", "never", "-d", "--name", "mover", "busybox", "sleep", "300",
    ]);
    n.ok(&[
        "run", "--pull", "never", "-d", "--name", "keeper", "busybox", "sleep", "300",
    ]);
    let before = n.ok(&["exec", "mover", "cat", "/etc/resolv.conf"]);
    assert!(!before.contains("127.0.0.11"), "{before}");
    // A user's own resolv.conf is never rewritten.
    n.ok(&[
        "exec",
        "keeper",
        "sh",
        "-c",
        "echo 'nameserver 10.199.254.53' > /etc/resolv.conf",
    ]);
    let net_id = n.ok(&["network", "create", "movenet"]);
    let bridge = format!("br-{}", &net_id[..12]);
    server(&n, "target", &["--network", "movenet"]);
    n.ok(&[
        "network",
        "connect",
        "--alias",
        "mover-alias",
        "movenet",
        "mover",
    ]);
    n.ok(&["network", "connect", "movenet", "keeper"]);

    let resolv = n.ok(&["exec", "mover", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 127.0.0.11\n"), "{resolv}");
    assert!(resolv.contains("ndots:0"), "{resolv}");
    let kept = n.ok(&["exec", "keeper", "cat", "/etc/resolv.conf"]);
    assert_eq!(kept, "nameserver 10.199.254.53", "user's resolv.conf kept");

    let ip = n.ok(&[
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"movenet\").IPAddress}}",
        "mover",
    ]);
    let hostname = n.ok(&["inspect", "-f", "{{.Config.Hostname}}", "mover"]);
    let hosts = n.ok(&["exec", "mover", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains(&format!("{ip}\t{hostname}")),
        "no line for {ip}: {hosts}"
    );
    assert_eq!(
        hosts.matches(&hostname).count(),
        2,
        "both addresses: {hosts}"
    );

    // mover reaches target by name through the embedded DNS; target resolves mover.
    wait_fetch_in(&n, "mover", "target", 80, "hello-");
    for name in ["mover", "mover-alias"] {
        let out = n.ok(&["exec", "target", "busybox", "nslookup", name, "127.0.0.11"]);
        assert!(out.contains(&ip), "{name}: {out}");
    }

    n.ok(&["network", "disconnect", "movenet", "mover"]);
    let hosts = n.ok(&["exec", "mover", "cat", "/etc/hosts"]);
    assert!(!hosts.contains(&format!("{ip}\t")), "{hosts}");
    assert_eq!(hosts.matches(&hostname).count(), 1, "{hosts}");

    n.ok(&["rm", "-f", "mover", "keeper", "target"]);
    n.ok(&["network", "rm", "movenet"]);
    n.assert_clean(&[bridge]);
}

/// Hairpin NAT: a container reaches a published port through a host address (the bridge's
/// gateway), its own port and a neighbour's, on the default bridge and on a user network.
/// The veths' bridge ports are in hairpin mode and the table masquerades DNATed traffic
/// that goes back into its own bridge. Nothing is left afterwards.
#[test]
fn hairpin_published_ports() {
    let Some(mut n) = Net::new("hairpin_published_ports", 10) else {
        return;
    };
    let gw = "10.200.0.1";
    let port = free_port();
    server(&n, "hp", &["-p", &format!("{port}:80")]);
    assert!(http_get(port).ends_with("-hp"));
    // Itself, through the gateway and its published port.
    wait_fetch_in(&n, "hp", gw, port, "-hp");
    // A neighbour on the same bridge.
    n.ok(&[
        "run", "--pull", "never", "-d", "--name", "nb", "busybox", "sleep", "300",
    ]);
    wait_fetch_in(&n, "nb", gw, port, "-hp");

    // On a user network, through that network's gateway.
    let net_id = n.ok(&["network", "create", "--subnet", "10.200.77.0/24", "hpnet"]);
    let bridge = format!("br-{}", &net_id[..12]);
    let port2 = free_port();
    server(
        &n,
        "hp2",
        &["--network", "hpnet", "-p", &format!("{port2}:80")],
    );
    wait_fetch_in(&n, "hp2", "10.200.77.1", port2, "-hp2");

    for br in [n.bridge.as_str(), bridge.as_str()] {
        let ports: Vec<_> = std::fs::read_dir(format!("/sys/class/net/{br}/brif"))
            .unwrap()
            .flatten()
            .collect();
        assert!(!ports.is_empty(), "{br} has no ports");
        for p in ports {
            let mode = std::fs::read_to_string(p.path().join("hairpin_mode")).unwrap();
            assert_eq!(mode.trim(), "1", "{:?} on {br}", p.file_name());
        }
    }
    let table = Command::new("nft")
        .args(["list", "table", "ip", &n.table()])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains(&format!(
            "ip saddr 10.200.77.0/24 oifname \"{bridge}\" ct status dnat masquerade"
        )),
        "{table}"
    );

    n.ok(&["rm", "-f", "hp", "nb", "hp2"]);
    n.ok(&["network", "rm", "hpnet"]);
    n.assert_clean(&[bridge]);
}

/// `network create --ipv6`: the network gets its IPv6 subnet (given, or a random unique
/// local /64) on the bridge; containers get addresses from it (in order, or `--ip6`), an
/// IPv6 default route, /etc/hosts lines, inspect fields as dockerd's, AAAA answers from the
/// embedded DNS, and reach each other over IPv6. Bad and overlapping subnets are refused;
/// the `ip6` table goes with the last network.
#[test]
fn ipv6_network() {
    let Some(mut n) = Net::new("ipv6_network", 11) else {
        return;
    };
    let id = n.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:201::/64",
        "six",
    ]);
    let bridge = format!("br-{}", &id[..12]);
    assert_eq!(
        n.ok(&["network", "inspect", "-f", "{{.EnableIPv6}}", "six"]),
        "true"
    );
    let cfg = n.ok(&["network", "inspect", "-f", "{{json .IPAM.Config}}", "six"]);
    assert!(
        cfg.contains(r#"{"Gateway":"fd00:201::1","Subnet":"fd00:201::/64"}"#)
            || cfg.contains(r#"{"Subnet":"fd00:201::/64","Gateway":"fd00:201::1"}"#),
        "{cfg}"
    );
    let addrs = Command::new("ip")
        .args(["-6", "addr", "show", "dev", &bridge])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&addrs.stdout).contains("fd00:201::1/64"));

    server(&n, "web6", &["--network", "six"]);
    n.ok(&[
        "run",
        "--pull",
        "never",
        "-d",
        "--name",
        "cli6",
        "--network",
        "six",
        "--ip6",
        "fd00:201::99",
        "busybox",
        "sleep",
        "300",
    ]);
    let f = |c: &str, t: &str| {
        n.ok(&[
            "inspect",
            "-f",
            &format!("{{{{(index .NetworkSettings.Networks \"six\").{t}}}}}"),
            c,
        ])
    };
    assert_eq!(f("web6", "GlobalIPv6Address"), "fd00:201::2");
    assert_eq!(f("cli6", "GlobalIPv6Address"), "fd00:201::99");
    assert_eq!(f("cli6", "GlobalIPv6PrefixLen"), "64");
    assert_eq!(f("cli6", "IPv6Gateway"), "fd00:201::1");
    let members = n.ok(&["network", "inspect", "-f", "{{json .Containers}}", "six"]);
    assert!(
        members.contains(r#""IPv6Address":"fd00:201::99/64""#),
        "{members}"
    );

    // No duplicate address detection in the container (hairpin mode would echo its probes
    // back): no address ends up tentative or failed.
    sleep(Duration::from_secs(2));
    let cid = n.ok(&["inspect", "-f", "{{.Id}}", "cli6"]);
    let netns = n.sb().dir.join("exec/netns").join(&cid);
    let o = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["ip", "-6", "addr"])
        .output()
        .unwrap();
    let addrs = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success() && addrs.contains("fd00:201::99/64"),
        "{addrs}"
    );
    assert!(
        !addrs.contains("dadfailed") && !addrs.contains("tentative"),
        "{addrs}"
    );
    let route = n.ok(&["exec", "cli6", "busybox", "ip", "-6", "route"]);
    assert!(
        route.contains("default via fd00:201::1 dev eth0"),
        "{route}"
    );
    let hosts = n.ok(&["exec", "cli6", "cat", "/etc/hosts"]);
    assert!(hosts.contains("fd00:201::99\t"), "{hosts}");
    let look = n.ok(&[
        "exec",
        "cli6",
        "busybox",
        "nslookup",
        "-type=aaaa",
        "web6",
        "127.0.0.11",
    ]);
    assert!(look.contains("fd00:201::2"), "{look}");
    // Over IPv6, to the neighbour and to the gateway (the host).
    wait_fetch_in(&n, "cli6", "fd00:201::2", 80, "-web6");
    let ping = n.sb().docker(&[
        "exec",
        "cli6",
        "busybox",
        "ping",
        "-6",
        "-c",
        "1",
        "-W",
        "3",
        "fd00:201::1",
    ]);
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let t6 = Command::new("nft")
        .args(["list", "table", "ip6", &n.table()])
        .output()
        .unwrap();
    assert!(t6.status.success(), "no ip6 table");

    // An --ip6 outside the subnet, or on a network without IPv6: dockerd's message.
    n.ok(&["network", "create", "four", "--subnet", "10.201.9.0/24"]);
    for (net, ip6) in [("six", "fd00:999::5"), ("four", "fd00:201::5")] {
        let e = n.fails(&[
            "run",
            "--pull",
            "never",
            "--rm",
            "--network",
            net,
            "--ip6",
            ip6,
            "busybox",
            "true",
        ]);
        assert!(
            e.contains(&format!(
                "invalid endpoint settings:\nno configured subnet contains IP address {ip6}"
            )),
            "{e}"
        );
    }
    let four_bridge = format!(
        "br-{}",
        &n.ok(&["network", "inspect", "-f", "{{.Id}}", "four"])[..12]
    );

    // Without a subnet: a unique local /64. Bad and overlapping subnets are refused.
    n.ok(&["network", "create", "--ipv6", "auto6"]);
    let cfg = n.ok(&["network", "inspect", "-f", "{{json .IPAM.Config}}", "auto6"]);
    assert!(cfg.contains("\"Subnet\":\"fd"), "{cfg}");
    let auto_bridge = format!(
        "br-{}",
        &n.ok(&["network", "inspect", "-f", "{{.Id}}", "auto6"])[..12]
    );
    let e = n.fails(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:201:0:0:1::/80",
        "over6",
    ]);
    assert!(e.contains("Pool overlaps with other one"), "{e}");
    let e = n.fails(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:zz::/64",
        "bad6",
    ]);
    assert!(
        e.contains("invalid subnet fd00:zz::/64: invalid CIDR address: fd00:zz::/64"),
        "{e}"
    );

    n.ok(&["rm", "-f", "web6", "cli6"]);
    n.ok(&["network", "rm", "six", "auto6", "four"]);
    n.assert_clean(&[bridge, auto_bridge, four_bridge]);
    let t6 = Command::new("nft")
        .args(["list", "table", "ip6", &n.table()])
        .output()
        .unwrap();
    assert!(!t6.status.success(), "the ip6 table is left");
}
