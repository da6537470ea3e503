//! HEALTHCHECK as Docker implements it: the effective check is merged at create from the
//! image's `Healthcheck` and the create options (`--health-*`, `--no-healthcheck` = `NONE`);
//! while the container runs, a task per container runs the probe every interval as an exec in
//! the container (`CMD` args, or `CMD-SHELL` through the container's shell), with its timeout
//! (the probe is killed, exit -1), and keeps `State.Health`: `starting` until the first
//! success (failures inside the start period do not count), `healthy`, or `unhealthy` after
//! `retries` consecutive failures; `FailingStreak`; the last 5 results (output capped at
//! 4096 bytes). A status change is a `health_status: …` event. The task ends when the
//! container stops (status `unhealthy` then, as Docker reports it) and is started again for
//! running containers when the daemon starts.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::backend::ApiResult;
use api::types::{ContainerConfig, Health, HealthConfig, HealthcheckResult};
use api::ApiError;
use shim::protocol::{AttachRequest, ControlRequest, ExecRequest};

use super::store::ContainerRecord;
use super::Inner;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
/// Results kept in `State.Health.Log`.
const MAX_LOG: usize = 5;
/// Bytes of probe output kept.
const MAX_OUTPUT: usize = 4096;

/// The running health-check tasks, by container ID.
#[derive(Default)]
pub(crate) struct Monitors {
    tasks: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

/// Docker's merge of the create options' health check with the image's: no check given ->
/// the image's; else empty fields come from the image's.
pub(crate) fn merge(
    user: Option<HealthConfig>,
    image: Option<&serde_json::Value>,
) -> Option<HealthConfig> {
    let image: Option<HealthConfig> = image.and_then(|v| serde_json::from_value(v.clone()).ok());
    match (user, image) {
        (None, i) => i,
        (Some(u), None) => Some(u),
        (Some(mut u), Some(i)) => {
            if u.test.as_ref().is_none_or(|t| t.is_empty()) {
                u.test = i.test;
            }
            if u.interval == 0 {
                u.interval = i.interval;
            }
            if u.timeout == 0 {
                u.timeout = i.timeout;
            }
            if u.start_period == 0 {
                u.start_period = i.start_period;
            }
            if u.start_interval == 0 {
                u.start_interval = i.start_interval;
            }
            if u.retries == 0 {
                u.retries = i.retries;
            }
            Some(u)
        }
    }
}

/// Docker's checks of a health check at create (400).
pub(crate) fn validate(h: Option<&HealthConfig>) -> ApiResult<()> {
    let Some(h) = h else { return Ok(()) };
    let min = 1_000_000; // 1ms
    for (name, v) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        if v != 0 && v < min {
            return Err(ApiError::InvalidParameter(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if h.retries < 0 {
        return Err(ApiError::InvalidParameter(
            "Retries in Healthcheck cannot be negative".into(),
        ));
    }
    Ok(())
}

/// The probe's command, or None when the container has no (active) health check.
pub(crate) fn probe_args(cfg: &ContainerConfig) -> Option<Vec<String>> {
    let test = cfg.healthcheck.as_ref()?.test.as_ref()?;
    match test.first().map(String::as_str) {
        Some("CMD") if test.len() > 1 => Some(test[1..].to_vec()),
        Some("CMD-SHELL") if test.len() > 1 => {
            let mut sh = cfg
                .shell
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            sh.push(test[1..].join(" "));
            Some(sh)
        }
        _ => None,
    }
}

fn ns(v: i64, default: Duration) -> Duration {
    if v > 0 {
        Duration::from_nanos(v as u64)
    } else {
        default
    }
}

/// A duration as Go prints it (`30s`, `1m30s`, `1.5s`, `500ms`).
pub(crate) fn go_duration(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0s".into();
    }
    if n < 1_000 {
        return format!("{n}ns");
    }
    let trim = |v: u128, unit: u128, suffix: &str| {
        let (i, f) = (v / unit, v % unit);
        if f == 0 {
            format!("{i}{suffix}")
        } else {
            let digits = unit.to_string().len() - 1;
            let frac = format!("{f:0digits$}");
            format!("{i}.{}{suffix}", frac.trim_end_matches('0'))
        }
    };
    if n < 1_000_000 {
        return trim(n, 1_000, "µs");
    }
    if n < 1_000_000_000 {
        return trim(n, 1_000_000, "ms");
    }
    let secs = n % 60_000_000_000;
    let mins = n / 60_000_000_000;
    let s = trim(secs, 1_000_000_000, "s");
    match (mins / 60, mins % 60) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

fn now_rfc3339() -> String {
    let t = api::time::Timestamp::now();
    shim::timefmt::rfc3339_nano(t.seconds, t.nanos)
}

/// Starts (or restarts) the health checks of a container that just started running: status
/// `starting`, streak 0 (the log is kept). Nothing when it has no health check.
pub(crate) fn start(inner: &Arc<Inner>, id: &str) {
    stop(inner, id);
    let Some(c) = inner
        .containers
        .lock()
        .ok()
        .and_then(|m| m.get(id).cloned())
    else {
        return;
    };
    if probe_args(&c.config).is_none() {
        return;
    }
    let _ = set(inner, id, |c| {
        let h = c.state.health.get_or_insert_with(Health::default);
        h.status = "starting".into();
        h.failing_streak = 0;
    });
    let task = tokio::spawn(run(inner.clone(), id.to_string()));
    if let Ok(mut m) = inner.health.tasks.lock() {
        m.insert(id.to_string(), task.abort_handle());
    }
}

/// Resumes the checks of a container found running when the daemon starts (its recorded
/// status is kept until the next probe).
pub(crate) fn resume(inner: &Arc<Inner>, id: &str) {
    let Some(c) = inner
        .containers
        .lock()
        .ok()
        .and_then(|m| m.get(id).cloned())
    else {
        return;
    };
    if probe_args(&c.config).is_none() {
        return;
    }
    if c.state.health.is_none() {
        return start(inner, id);
    }
    let task = tokio::spawn(run(inner.clone(), id.to_string()));
    if let Ok(mut m) = inner.health.tasks.lock() {
        m.insert(id.to_string(), task.abort_handle());
    }
}

/// Stops the checks of a container (it stopped or is being removed).
pub(crate) fn stop(inner: &Inner, id: &str) {
    if let Some(t) = inner
        .health
        .tasks
        .lock()
        .ok()
        .and_then(|mut m| m.remove(id))
    {
        t.abort();
    }
}

/// For the exit being recorded: a container with health checks is `unhealthy` once they
/// stopped (Docker's compatibility rule).
pub(crate) fn on_exit(c: &mut ContainerRecord) {
    if let Some(h) = c.state.health.as_mut() {
        h.status = "unhealthy".into();
    }
}

/// The `health` value of `docker ps --filter health=`: the status, or `none`.
pub(crate) fn filter_value(c: &ContainerRecord) -> &str {
    match &c.state.health {
        Some(h) if probe_args(&c.config).is_some() => h.status.as_str(),
        _ => "none",
    }
}

fn set(
    inner: &Inner,
    id: &str,
    f: impl FnOnce(&mut ContainerRecord),
) -> ApiResult<ContainerRecord> {
    let c = {
        let mut m = inner
            .containers
            .lock()
            .map_err(|_| super::containers::poisoned())?;
        let c = m
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such_container(id))?;
        f(c);
        c.clone()
    };
    super::containers::persist(inner, id)?;
    Ok(c)
}

/// The loop of one container: sleep an interval, probe, record.
async fn run(inner: Arc<Inner>, id: String) {
    loop {
        let Some(c) = inner
            .containers
            .lock()
            .ok()
            .and_then(|m| m.get(&id).cloned())
        else {
            return;
        };
        let Some(hc) = c.config.healthcheck.clone() else {
            return;
        };
        let started = shim::timefmt::parse_rfc3339_nanos(c.state.started_at.as_bytes())
            .map(|n| n as i128)
            .unwrap_or(0);
        let now = api::time::Timestamp::now().as_nanos();
        let in_start_period = now - started < hc.start_period as i128;
        let starting = c
            .state
            .health
            .as_ref()
            .is_some_and(|h| h.status == "starting");
        let interval = if in_start_period && starting && hc.start_interval > 0 {
            ns(hc.start_interval, DEFAULT_INTERVAL)
        } else {
            ns(hc.interval, DEFAULT_INTERVAL)
        };
        tokio::time::sleep(interval).await;
        let Some(c) = inner
            .containers
            .lock()
            .ok()
            .and_then(|m| m.get(&id).cloned())
        else {
            return;
        };
        match c.state.status.as_str() {
            "running" => {}
            "paused" => continue,
            _ => return,
        }
        let Some(args) = probe_args(&c.config) else {
            return;
        };
        let result = probe(&inner, &c, args, ns(hc.timeout, DEFAULT_TIMEOUT)).await;
        record(&inner, &id, &hc, result);
    }
}

/// Runs one probe as an exec; its output and exit code (-1 when it could not run or timed
/// out).
async fn probe(
    inner: &Arc<Inner>,
    c: &ContainerRecord,
    args: Vec<String>,
    timeout: Duration,
) -> HealthcheckResult {
    let start = now_rfc3339();
    let fail = |output: String| HealthcheckResult {
        start: start.clone(),
        end: now_rfc3339(),
        exit_code: -1,
        output,
    };
    let exec_id = match ::image::content::random_hex(32) {
        Ok(h) => h,
        Err(e) => return fail(e.to_string()),
    };
    let sd = inner.opts.exec_root.join("shims").join(&c.id);
    let cmdline = args.join(" ");
    let ex = [("execID", exec_id.clone())];
    inner
        .bus
        .container(c, &format!("exec_create: {cmdline}"), &ex);
    let req = ControlRequest {
        exec: Some(ExecRequest {
            id: exec_id.clone(),
            process: Some(serde_json::json!({ "args": args })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let (sd2, id2) = (sd.clone(), exec_id.clone());
    let job = tokio::task::spawn_blocking(move || -> Result<(i64, String), String> {
        let reply = shim::client::control(&sd2, &req).map_err(|e| e.to_string())?;
        let sock = reply
            .socket
            .unwrap_or_else(|| shim::protocol::exec_socket(&sd2, &id2));
        let mut out = Vec::new();
        if let Ok(mut a) = shim::client::attach_socket(
            &sock,
            &AttachRequest {
                stdout: true,
                stderr: true,
                ..Default::default()
            },
        ) {
            let mut buf = Vec::new();
            if a.tty {
                let _ = a.stream.read_to_end(&mut out);
            } else {
                while let Ok(Some(_)) = shim::protocol::read_frame(&mut a.stream, &mut buf) {
                    if out.len() < MAX_OUTPUT {
                        out.extend_from_slice(&buf);
                    }
                }
            }
        }
        let st = shim::client::wait_exec(&sd2, &id2).map_err(|e| e.to_string())?;
        out.truncate(MAX_OUTPUT);
        Ok((
            st.exit_code as i64,
            String::from_utf8_lossy(&out).into_owned(),
        ))
    });
    inner
        .bus
        .container(c, &format!("exec_start: {cmdline}"), &ex);
    let r = match tokio::time::timeout(timeout, job).await {
        Ok(Ok(Ok((code, output)))) => HealthcheckResult {
            start,
            end: now_rfc3339(),
            exit_code: code,
            output,
        },
        Ok(Ok(Err(e))) => fail(e),
        Ok(Err(e)) => fail(e.to_string()),
        Err(_) => {
            let kill = ControlRequest {
                kill: Some("SIGKILL".into()),
                exec_id: Some(exec_id.clone()),
                ..Default::default()
            };
            let _ = tokio::task::spawn_blocking(move || shim::client::control(&sd, &kill)).await;
            fail(format!(
                "Health check exceeded timeout ({})",
                go_duration(timeout)
            ))
        }
    };
    inner.bus.container(
        c,
        "exec_die",
        &[("execID", exec_id), ("exitCode", r.exit_code.to_string())],
    );
    r
}

/// Records a result: streak, status, log; publishes a status change.
fn record(inner: &Arc<Inner>, id: &str, hc: &HealthConfig, r: HealthcheckResult) {
    let retries = if hc.retries > 0 {
        hc.retries
    } else {
        DEFAULT_RETRIES
    };
    let mut changed = None;
    let c = set(inner, id, |c| {
        if c.state.status != "running" {
            return;
        }
        let started = shim::timefmt::parse_rfc3339_nanos(c.state.started_at.as_bytes())
            .map(|n| n as i128)
            .unwrap_or(0);
        let probe_start = shim::timefmt::parse_rfc3339_nanos(r.start.as_bytes())
            .map(|n| n as i128)
            .unwrap_or(0);
        let h = c.state.health.get_or_insert_with(|| Health {
            status: "starting".into(),
            ..Default::default()
        });
        let old = h.status.clone();
        if r.exit_code == 0 {
            h.failing_streak = 0;
            h.status = "healthy".into();
        } else {
            let in_start_period =
                h.status == "starting" && probe_start - started < hc.start_period as i128;
            if !in_start_period {
                h.failing_streak += 1;
                if h.failing_streak >= retries {
                    h.status = "unhealthy".into();
                }
            }
        }
        h.log.push(r);
        if h.log.len() > MAX_LOG {
            let extra = h.log.len() - MAX_LOG;
            h.log.drain(..extra);
        }
        if h.status != old {
            changed = Some(h.status.clone());
        }
    });
    if let (Ok(c), Some(s)) = (c, changed) {
        inner.bus.container(&c, &format!("health_status: {s}"), &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_and_probe() {
        let image = serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000i64, "Retries": 2});
        let m = merge(None, Some(&image)).unwrap();
        assert_eq!(m.interval, 5_000_000_000);
        let user = HealthConfig {
            interval: 1_000_000_000,
            ..Default::default()
        };
        let m = merge(Some(user), Some(&image)).unwrap();
        assert_eq!(m.test.as_deref().unwrap()[0], "CMD-SHELL");
        assert_eq!((m.interval, m.retries), (1_000_000_000, 2));
        let cfg = ContainerConfig {
            healthcheck: Some(m),
            ..Default::default()
        };
        assert_eq!(probe_args(&cfg).unwrap(), vec!["/bin/sh", "-c", "true"]);
        let none = ContainerConfig {
            healthcheck: Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(probe_args(&none).is_none());
        assert!(validate(Some(&HealthConfig {
            interval: 10,
            ..Default::default()
        }))
        .is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }
}
