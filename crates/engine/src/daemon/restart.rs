//! Restart policies as Docker implements them (`HostConfig.RestartPolicy`): `no`, `always`,
//! `on-failure[:N]`, `unless-stopped`. Owns the policy check at create, the decision when a
//! container's process exits (taken atomically with recording the exit, so a user's
//! stop/restart racing with it is seen), Docker's backoff (100 ms, doubling up to a minute,
//! back to 100 ms once the container ran 10 s), the delayed start while the container shows
//! `restarting`, cancelling it on a user's stop/kill/rm, and starting the containers whose
//! policy asks for it when the daemon starts.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::backend::ApiResult;
use api::types::HostConfig;
use api::ApiError;

use super::store::ContainerRecord;
use super::Inner;

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run this long resets the backoff.
const RESET_AFTER: Duration = Duration::from_secs(10);

/// A restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// `no` (or empty): never.
    No,
    /// `always`.
    Always,
    /// `unless-stopped`.
    UnlessStopped,
    /// `on-failure` with a maximum retry count (0: unlimited).
    OnFailure(i64),
}

/// The container's policy (unknown names were refused at create; they count as `no`).
pub(crate) fn policy(hc: &HostConfig) -> Policy {
    let Some(p) = hc.restart_policy.as_ref() else {
        return Policy::No;
    };
    match p.name.as_str() {
        "always" => Policy::Always,
        "unless-stopped" => Policy::UnlessStopped,
        "on-failure" => Policy::OnFailure(p.maximum_retry_count.max(0)),
        _ => Policy::No,
    }
}

/// Docker's checks of a restart policy at create/update (400 with Docker's messages).
pub(crate) fn validate(hc: &HostConfig) -> ApiResult<()> {
    let Some(p) = hc.restart_policy.as_ref() else {
        return Ok(());
    };
    match p.name.as_str() {
        "always" | "unless-stopped" | "no" => {
            if p.maximum_retry_count != 0 {
                return Err(ApiError::InvalidParameter(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                        .into(),
                ));
            }
        }
        "on-failure" => {
            if p.maximum_retry_count < 0 {
                return Err(ApiError::InvalidParameter(
                    "invalid restart policy: maximum retry count cannot be negative".into(),
                ));
            }
        }
        "" => {}
        n => {
            return Err(ApiError::InvalidParameter(format!(
                "invalid restart policy: unknown policy '{n}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            )))
        }
    }
    if hc.auto_remove && policy(hc) != Policy::No {
        return Err(ApiError::InvalidParameter(
            "can't create 'AutoRemove' container with restart policy".into(),
        ));
    }
    Ok(())
}

/// Docker's decision: restart after an exit with `code`?
pub(crate) fn should_restart(
    p: Policy,
    code: i64,
    manually_stopped: bool,
    restart_count: i64,
) -> bool {
    match p {
        Policy::No => false,
        Policy::Always => !manually_stopped,
        Policy::UnlessStopped => !manually_stopped,
        Policy::OnFailure(max) => {
            !manually_stopped && code != 0 && (max == 0 || restart_count < max)
        }
    }
}

/// Per-container backoff delays (in memory, like Docker's restart manager), and the
/// containers whose policy start is under way.
#[derive(Default)]
pub(crate) struct Backoff {
    delays: Mutex<HashMap<String, Duration>>,
    starting: Mutex<HashSet<String>>,
}

impl Backoff {
    /// The delay before the next restart of `id`, which ran for `ran`.
    fn next(&self, id: &str, ran: Duration) -> Duration {
        let Ok(mut m) = self.delays.lock() else {
            return FIRST_DELAY;
        };
        let d = m.entry(id.to_string()).or_insert(Duration::ZERO);
        if ran >= RESET_AFTER {
            *d = Duration::ZERO;
        }
        *d = if d.is_zero() {
            FIRST_DELAY
        } else {
            (*d * 2).min(MAX_DELAY)
        };
        *d
    }

    /// Forgets `id` (removed, or started by the user).
    pub fn reset(&self, id: &str) {
        if let Ok(mut m) = self.delays.lock() {
            m.remove(id);
        }
    }
}

fn nanos(t: &str) -> Option<i64> {
    shim::timefmt::parse_rfc3339_nanos(t.as_bytes())
}

/// Called with the container record while its exit is being recorded (status already
/// `exited`): when the policy restarts it, marks it `restarting` with one more restart and
/// returns the delay before the start. `ran` is how long it ran.
pub(crate) fn on_exit(inner: &Inner, c: &mut ContainerRecord) -> Option<Duration> {
    let p = policy(&c.host_config);
    if !should_restart(p, c.state.exit_code, c.manually_stopped, c.restart_count) {
        return None;
    }
    let ran = match (nanos(&c.state.started_at), nanos(&c.state.finished_at)) {
        (Some(a), Some(b)) if b > a => Duration::from_nanos((b - a) as u64),
        _ => Duration::ZERO,
    };
    c.state.status = "restarting".into();
    c.restart_count += 1;
    Some(inner.restart.next(&c.id, ran))
}

/// Starts `id` after `delay` unless, by then, it is no longer `restarting` with `count`
/// restarts (a user stopped, started or removed it meanwhile).
pub(crate) fn schedule(inner: Arc<Inner>, id: String, delay: Duration, count: i64) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        // Checked and marked under the table's lock: a user's stop/kill/rm either comes
        // first (no start) or waits for this start to finish (see `stopped_by_user`).
        {
            let Ok(m) = inner.containers.lock() else {
                return;
            };
            let still = m
                .get(&id)
                .is_some_and(|c| c.state.status == "restarting" && c.restart_count == count);
            if !still {
                return;
            }
            if let Ok(mut s) = inner.restart.starting.lock() {
                s.insert(id.clone());
            }
        }
        let r = super::containers::start_as(&inner, &id, false).await;
        if let Ok(mut s) = inner.restart.starting.lock() {
            s.remove(&id);
        }
        if let Err(e) = r {
            eprintln!("berth daemon: restarting container {id} failed: {e}");
        }
    });
}

/// Whether `docker kill -s SIG` stops the container for its restart policy: SIGKILL and the
/// container's stop signal (SIGTERM by default) do; others (SIGHUP, SIGUSR1…, which programs
/// often handle) leave the policy in place, as Docker documents.
pub(crate) fn is_fatal(sig: &str, stop_signal: Option<&str>) -> bool {
    let num = |s: &str| {
        s.trim()
            .parse::<i32>()
            .ok()
            .or_else(|| runtime::signal::parse(s).ok().map(|s| s as i32))
    };
    let Some(n) = num(sig) else { return true };
    n == libc::SIGKILL || Some(n) == num(stop_signal.unwrap_or("SIGTERM"))
}

/// A user's stop or kill: from now on the policy does not restart it. When it is
/// `restarting` (waiting for its delayed start), the restart is cancelled and the container
/// is `exited`; returns true then (there is no process to signal). A policy start already
/// under way is waited for first (the caller then stops the running container).
pub(crate) async fn stopped_by_user(inner: &Inner, id: &str) -> ApiResult<bool> {
    let t = std::time::Instant::now();
    let (c, was_restarting) = loop {
        {
            let mut m = inner
                .containers
                .lock()
                .map_err(|_| super::containers::poisoned())?;
            // Looked at under the table's lock, where `schedule` marks its start.
            let busy = inner
                .restart
                .starting
                .lock()
                .map(|s| s.contains(id))
                .unwrap_or(false);
            if !busy || t.elapsed() > Duration::from_secs(60) {
                let Some(c) = m.get_mut(id) else {
                    return Ok(false);
                };
                c.manually_stopped = true;
                let was = c.state.status == "restarting";
                if was {
                    c.state.status = "exited".into();
                }
                break (c.clone(), was);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    super::containers::persist(inner, &c.id)?;
    Ok(was_restarting)
}

/// At daemon start: containers that are not running and whose policy says so are started
/// again, as Docker does (`always` even after a user's stop, `unless-stopped` unless the user
/// stopped it, `on-failure` after a failure with retries left), with their restart count.
pub(crate) fn on_daemon_start(inner: &Arc<Inner>) {
    let due: Vec<String> = match inner.containers.lock() {
        Ok(m) => m
            .values()
            .filter(|c| {
                let p = policy(&c.host_config);
                let started_before = nanos(&c.state.started_at).is_some_and(|n| n > 0);
                let stopped = c.state.status == "exited" || c.state.status == "restarting";
                let manual = c.manually_stopped && p != Policy::Always;
                stopped
                    && started_before
                    && should_restart(p, c.state.exit_code, manual, c.restart_count)
            })
            .map(|c| c.id.clone())
            .collect(),
        Err(_) => return,
    };
    for id in due {
        let inner = inner.clone();
        tokio::spawn(async move {
            if let Err(e) = super::containers::start_as(&inner, &id, false).await {
                eprintln!("berth daemon: starting container {id} (restart policy) failed: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_follow_docker() {
        assert!(!should_restart(Policy::No, 1, false, 0));
        assert!(should_restart(Policy::Always, 0, false, 5));
        assert!(!should_restart(Policy::Always, 0, true, 0));
        assert!(should_restart(Policy::UnlessStopped, 0, false, 0));
        assert!(!should_restart(Policy::UnlessStopped, 1, true, 0));
        assert!(!should_restart(Policy::OnFailure(0), 0, false, 0));
        assert!(should_restart(Policy::OnFailure(0), 3, false, 100));
        assert!(should_restart(Policy::OnFailure(2), 1, false, 1));
        assert!(!should_restart(Policy::OnFailure(2), 1, false, 2));
    }

    #[test]
    fn fatal_signals() {
        assert!(is_fatal("SIGKILL", None));
        assert!(is_fatal("KILL", Some("SIGUSR1")));
        assert!(is_fatal("9", None));
        assert!(is_fatal("TERM", None));
        assert!(is_fatal("15", None));
        assert!(!is_fatal("HUP", None));
        assert!(!is_fatal("SIGUSR1", None));
        assert!(is_fatal("USR1", Some("SIGUSR1")));
        assert!(!is_fatal("TERM", Some("SIGQUIT")));
    }

    #[test]
    fn backoff_doubles_and_resets() {
        let b = Backoff::default();
        let short = Duration::from_millis(5);
        assert_eq!(b.next("a", short), Duration::from_millis(100));
        assert_eq!(b.next("a", short), Duration::from_millis(200));
        assert_eq!(b.next("a", short), Duration::from_millis(400));
        assert_eq!(
            b.next("a", Duration::from_secs(11)),
            Duration::from_millis(100)
        );
        for _ in 0..20 {
            b.next("a", short);
        }
        assert_eq!(b.next("a", short), MAX_DELAY);
        b.reset("a");
        assert_eq!(b.next("a", short), Duration::from_millis(100));
    }

    #[test]
    fn validation() {
        let hc = |name: &str, n: i64, rm: bool| HostConfig {
            restart_policy: Some(api::types::RestartPolicy {
                name: name.into(),
                maximum_retry_count: n,
            }),
            auto_remove: rm,
            ..Default::default()
        };
        assert!(validate(&hc("always", 0, false)).is_ok());
        assert!(validate(&hc("on-failure", 3, false)).is_ok());
        assert!(validate(&hc("always", 3, false)).is_err());
        assert!(validate(&hc("sometimes", 0, false)).is_err());
        assert!(validate(&hc("always", 0, true)).is_err());
        assert!(validate(&hc("no", 0, true)).is_ok());
    }
}
