//! Parsers for docker's option values: sizes (`512m`), CPU counts (`1.5`), Go durations
//! (`1m30s`), port specs (`127.0.0.1:8080:80/tcp`), `--mount` specs, `--env-file`s, restart
//! policies, ulimits and `KEY=VALUE` lists, with docker's error wording.

use std::collections::BTreeMap;

use api::types::{
    BindOptions, Mount, PortBinding, PortMap, RestartPolicy, TmpfsOptions, Ulimit, VolumeOptions,
};

/// A value docker would reject.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OptError(pub String);

type R<T> = Result<T, OptError>;

fn bad<T>(msg: impl Into<String>) -> R<T> {
    Err(OptError(msg.into()))
}

/// `units.RAMInBytes`: `512`, `512k`, `1.5g`, `64MiB` in binary units.
pub fn ram_in_bytes(s: &str) -> R<i64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| OptError(format!("invalid size: '{s}'")))?;
    let unit = unit.trim_end_matches('b').trim_end_matches('i');
    let mul: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return bad(format!("invalid size: '{s}'")),
    };
    Ok((n * mul) as i64)
}

/// `--cpus 1.5` as NanoCPUs.
pub fn nano_cpus(s: &str) -> R<i64> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| OptError(format!("invalid argument \"{s}\" for \"--cpus\" flag")))?;
    if v < 0.0 {
        return bad(format!("invalid argument \"{s}\" for \"--cpus\" flag"));
    }
    Ok((v * 1e9).round() as i64)
}

/// A Go duration (`1h2m3.5s`, `300ms`, `10us`, `0`) in nanoseconds.
pub fn go_duration(s: &str) -> R<i64> {
    let t = s.trim();
    if t == "0" {
        return Ok(0);
    }
    let err = || OptError(format!("time: invalid duration \"{s}\""));
    let mut rest = t;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if n == 0 {
            return Err(err());
        }
        let v: f64 = rest[..n].parse().map_err(|_| err())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mul = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err()),
        };
        total += v * mul;
        rest = &rest[u..];
    }
    Ok(total as i64)
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn restart_policy(s: &str) -> R<RestartPolicy> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    let max = match count {
        Some(c) => c.parse::<i64>().map_err(|_| {
            OptError(format!(
                "invalid restart policy format: maximum retry count must be an integer: {c}"
            ))
        })?,
        None => 0,
    };
    match name {
        "no" | "" | "always" | "unless-stopped" if count.is_some() => bad(format!(
            "invalid restart policy format: maximum retry count can only be used with 'on-failure': {s}"
        )),
        "no" | "" | "always" | "unless-stopped" | "on-failure" => Ok(RestartPolicy {
            name: if name.is_empty() { "no".into() } else { name.into() },
            maximum_retry_count: max,
        }),
        _ => bad(format!("invalid restart policy format: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")),
    }
}

/// `--ulimit nofile=1024:2048`.
pub fn ulimit(s: &str) -> R<Ulimit> {
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| OptError(format!("invalid ulimit argument: {s}")))?;
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (a, b),
        None => (vals, vals),
    };
    let p = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| OptError(format!("invalid ulimit argument: {s}")))
    };
    Ok(Ulimit {
        name: name.to_string(),
        soft: p(soft)?,
        hard: p(hard)?,
    })
}

/// `KEY=VALUE` items into a map (`--label`, `--sysctl`, `--log-opt`, `--opt`); a bare `KEY`
/// maps to the empty string.
pub fn kv_map(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|i| match i.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (i.to_string(), String::new()),
        })
        .collect()
}

/// Reads a file of `KEY=VALUE` lines (`--env-file`, `--label-file`): `#` comments and blank
/// lines skipped; a bare `KEY` takes its value from our environment (dropped when unset, for
/// env files).
pub fn read_kv_file(path: &str, from_env: bool) -> R<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| OptError(format!("open {path}: {e}")))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.contains('=') || !from_env {
            out.push(l.to_string());
        } else if let Ok(v) = std::env::var(l.trim()) {
            out.push(format!("{}={v}", l.trim()));
        }
    }
    Ok(out)
}

/// `-e KEY` without a value takes it from our environment (dropped when unset).
pub fn env_items(items: &[String]) -> Vec<String> {
    items
        .iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect()
}

fn port_range(s: &str) -> R<(u16, u16)> {
    let p = |x: &str| {
        x.parse::<u16>()
            .map_err(|_| OptError(format!("invalid containerPort: {s}")))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (p(a)?, p(b)?);
            if b < a {
                return bad(format!("invalid port range: {s}"));
            }
            Ok((a, b))
        }
        None => {
            let a = p(s)?;
            Ok((a, a))
        }
    }
}

/// `-p [ip:][hostPort:]containerPort[/proto]` (ranges allowed) into exposed ports and
/// bindings, as `nat.ParsePortSpecs`.
pub fn publish(
    spec: &str,
    exposed: &mut BTreeMap<String, serde_json::Value>,
    bindings: &mut PortMap,
) -> R<()> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return bad(format!("invalid proto: {proto}"));
    }
    // An IPv6 host IP is written in brackets.
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, after) = r
            .split_once(']')
            .ok_or_else(|| OptError(format!("invalid IP address: {spec}")))?;
        (ip.to_string(), after.trim_start_matches(':').to_string())
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (String::new(), rest.to_string()),
            3 => (parts[0].to_string(), format!("{}:{}", parts[1], parts[2])),
            _ => return bad(format!("invalid port format: {spec}")),
        }
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return bad(format!("invalid IP address: {ip}"));
    }
    let (host, ctr) = match rest.split_once(':') {
        Some((h, c)) => (h.to_string(), c.to_string()),
        None => (String::new(), rest.clone()),
    };
    if ctr.is_empty() {
        return bad(format!("no port specified: {spec}<empty>"));
    }
    let (c0, c1) = port_range(&ctr)?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(port_range(&host)?)
    };
    let n = (c1 - c0) as u32;
    if let Some((h0, h1)) = host_range {
        let hn = (h1 - h0) as u32;
        if hn != n && !(n == 0) {
            return bad(format!(
                "invalid ranges specified for container and host Ports: {ctr} and {host}"
            ));
        }
    }
    for i in 0..=n {
        let key = format!("{}/{proto}", c0 as u32 + i);
        exposed.insert(key.clone(), serde_json::json!({}));
        let host_port = match host_range {
            None => String::new(),
            Some((h0, h1)) if n == 0 && h1 != h0 => format!("{h0}-{h1}"),
            Some((h0, _)) => (h0 as u32 + i).to_string(),
        };
        bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: ip.clone(),
                host_port,
            });
    }
    Ok(())
}

/// `--expose 80[/tcp]` or a range.
pub fn expose(spec: &str, exposed: &mut BTreeMap<String, serde_json::Value>) -> R<()> {
    let (p, proto) = match spec.split_once('/') {
        Some((p, pr)) => (p, pr),
        None => (spec, "tcp"),
    };
    let (a, b) = port_range(p)?;
    for x in a..=b {
        exposed.insert(format!("{x}/{proto}"), serde_json::json!({}));
    }
    Ok(())
}

/// `--mount type=bind,source=/a,target=/b,readonly,...`.
pub fn mount(spec: &str) -> R<Mount> {
    let mut m = Mount {
        kind: "volume".into(),
        ..Default::default()
    };
    let mut vol = VolumeOptions::default();
    let mut bind = BindOptions::default();
    let mut tmpfs = TmpfsOptions::default();
    let (mut has_vol, mut has_bind, mut has_tmpfs) = (false, false, false);
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let truthy = |v: Option<&str>| -> R<bool> {
            match v {
                None | Some("1") | Some("true") => Ok(true),
                Some("0") | Some("false") => Ok(false),
                Some(o) => bad(format!("invalid value for {k}: {o}")),
            }
        };
        let need = |v: Option<&str>| -> R<String> {
            v.map(str::to_string).ok_or_else(|| {
                OptError(format!("invalid field '{field}' must be a key=value pair"))
            })
        };
        match k.as_str() {
            "type" => m.kind = need(v)?,
            "source" | "src" => m.source = need(v)?,
            "target" | "destination" | "dst" => m.target = need(v)?,
            "readonly" | "ro" => m.read_only = truthy(v)?,
            "consistency" => m.consistency = need(v)?,
            "bind-propagation" => {
                has_bind = true;
                bind.propagation = need(v)?
            }
            "bind-nonrecursive" => {
                has_bind = true;
                bind.non_recursive = truthy(v)?
            }
            "bind-create-mountpoint" => {
                has_bind = true;
                bind.create_mountpoint = truthy(v)?
            }
            "volume-nocopy" => {
                has_vol = true;
                vol.no_copy = truthy(v)?
            }
            "volume-subpath" => {
                has_vol = true;
                vol.subpath = need(v)?
            }
            "volume-label" => {
                has_vol = true;
                let kv = need(v)?;
                let (a, b) = kv.split_once('=').unwrap_or((&kv, ""));
                vol.labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert(a.to_string(), b.to_string());
            }
            "volume-driver" => {
                has_vol = true;
                let d = need(v)?;
                let cfg = vol
                    .driver_config
                    .get_or_insert_with(|| serde_json::json!({}));
                cfg["Name"] = serde_json::json!(d);
            }
            "volume-opt" => {
                has_vol = true;
                let kv = need(v)?;
                let (a, b) = kv.split_once('=').unwrap_or((&kv, ""));
                let cfg = vol
                    .driver_config
                    .get_or_insert_with(|| serde_json::json!({}));
                if cfg.get("Options").is_none() {
                    cfg["Options"] = serde_json::json!({});
                }
                cfg["Options"][a] = serde_json::json!(b);
            }
            "tmpfs-size" => {
                has_tmpfs = true;
                tmpfs.size_bytes = ram_in_bytes(&need(v)?)?
            }
            "tmpfs-mode" => {
                has_tmpfs = true;
                let s = need(v)?;
                tmpfs.mode = u32::from_str_radix(&s, 8)
                    .map_err(|_| OptError(format!("invalid value for {k}: {s}")))?
            }
            _ => return bad(format!("unexpected key '{k}' in '{field}'")),
        }
    }
    if m.target.is_empty() {
        return bad("target is required");
    }
    if has_vol {
        m.volume_options = Some(vol);
    }
    if has_bind {
        m.bind_options = Some(bind);
    }
    if has_tmpfs {
        m.tmpfs_options = Some(tmpfs);
    }
    Ok(m)
}

/// `--tmpfs /path[:opts]` into the `Tmpfs` map.
pub fn tmpfs(spec: &str) -> (String, String) {
    match spec.split_once(':') {
        Some((p, o)) => (p.to_string(), o.to_string()),
        None => (spec.to_string(), String::new()),
    }
}

/// Splits `CONTAINER:PATH` (`docker cp`); a path with `/` before the colon is local.
pub fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') || arg.starts_with('.') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() && !c.contains('/') => (Some(c), p),
        _ => (None, arg),
    }
}

/// Docker's `--since`/`--until` values: Unix seconds (with fraction), RFC 3339 times, or a
/// Go duration relative to now (`10m` = ten minutes ago), as `SECONDS.NANOS`.
pub fn timestamp(value: &str, now_unix: f64) -> R<String> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(String::new());
    }
    if v.parse::<f64>().is_ok() && !v.contains(['e', 'E']) {
        return Ok(v.to_string());
    }
    if let Ok(d) = go_duration(v) {
        let t = now_unix - d as f64 / 1e9;
        return Ok(format!("{:.9}", t));
    }
    if let Some(secs) = rfc3339_to_unix(v) {
        return Ok(format!("{secs}.000000000"));
    }
    bad(format!("invalid value for \"since\"/\"until\": {value:?}: use a Unix timestamp, an RFC 3339 date or a duration such as 10m"))
}

/// Seconds since the epoch of `YYYY-MM-DD[THH:MM:SS[.frac]][Z|±HH:MM]`.
pub fn rfc3339_to_unix(s: &str) -> Option<i64> {
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, t),
        None => (s, "00:00:00Z"),
    };
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if d.len() != 3 {
        return None;
    }
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, o) = time.split_at(i);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let (oh, om) = o[1..].split_once(':')?;
        (
            c,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    } else {
        (time, 0)
    };
    let c: Vec<&str> = clock.split(':').collect();
    let h: i64 = c.first()?.parse().ok()?;
    let mi: i64 = c.get(1).map(|x| x.parse().ok()).unwrap_or(Some(0))?;
    let se: i64 = c
        .get(2)
        .map(|x| x.split('.').next().unwrap_or("0").parse().ok())
        .unwrap_or(Some(0))?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m, day) = (d[0], d[1], d[2]);
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + se - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_cpus() {
        assert_eq!(ram_in_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert!(ram_in_bytes("12x").is_err());
        assert_eq!(nano_cpus("1.5").unwrap(), 1_500_000_000);
    }

    #[test]
    fn durations() {
        assert_eq!(go_duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(go_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(go_duration("500ms").unwrap(), 500_000_000);
        assert!(go_duration("abc").is_err());
    }

    #[test]
    fn ports() {
        let (mut e, mut b) = (BTreeMap::new(), PortMap::new());
        publish("127.0.0.1:8080:80", &mut e, &mut b).unwrap();
        publish("53/udp", &mut e, &mut b).unwrap();
        publish("9000-9001:90-91", &mut e, &mut b).unwrap();
        assert!(e.contains_key("80/tcp") && e.contains_key("53/udp") && e.contains_key("91/tcp"));
        let x = b["80/tcp"].as_ref().unwrap();
        assert_eq!(x[0].host_ip, "127.0.0.1");
        assert_eq!(x[0].host_port, "8080");
        assert_eq!(b["91/tcp"].as_ref().unwrap()[0].host_port, "9001");
        assert_eq!(b["53/udp"].as_ref().unwrap()[0].host_port, "");
    }

    #[test]
    fn mounts_and_policies() {
        let m = mount("type=bind,source=/a,target=/b,readonly").unwrap();
        assert_eq!(
            (
                m.kind.as_str(),
                m.source.as_str(),
                m.target.as_str(),
                m.read_only
            ),
            ("bind", "/a", "/b", true)
        );
        let t = mount("type=tmpfs,dst=/t,tmpfs-size=1m").unwrap();
        assert_eq!(t.tmpfs_options.unwrap().size_bytes, 1 << 20);
        assert_eq!(
            restart_policy("on-failure:3").unwrap().maximum_retry_count,
            3
        );
        assert!(restart_policy("always:3").is_err());
        assert!(restart_policy("sometimes").is_err());
        assert_eq!(ulimit("nofile=10:20").unwrap().hard, 20);
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339_to_unix("1970-01-02T00:00:00Z"), Some(86400));
        assert_eq!(
            rfc3339_to_unix("2024-01-01T00:00:00+01:00"),
            Some(1704063600)
        );
        assert_eq!(timestamp("1700000000", 0.0).unwrap(), "1700000000");
        assert_eq!(split_cp_arg("c1:/etc/hosts"), (Some("c1"), "/etc/hosts"));
        assert_eq!(split_cp_arg("/tmp/a:b"), (None, "/tmp/a:b"));
    }
}
