//! The daemon's event bus behind `GET /events`: every action the daemon does on a container
//! or an image is published here as Docker's event message (`Type`, `Action`, `Actor` with its
//! attributes, `scope`, `time`, `timeNano`, and the legacy `status`/`id`/`from` fields). The
//! last [`HISTORY`] events are kept for `since`; subscribers get the stored events matching
//! their filters, then live ones until `until`. Filters match the way Docker's do (`type`,
//! `event` with the fuzzy `exec_*`/`health_status` forms, `container`/`volume`/`network` by
//! ID or name prefix, `image` by ID or name with or without tag, `label`, `scope`, `daemon`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use api::backend::EventsOptions;
use api::stream::JsonStream;
use api::time::Timestamp;
use api::types::{EventActor, EventMessage};
use api::Filters;
use tokio::sync::broadcast;

use super::store::ContainerRecord;

/// How many past events are kept for `since`.
pub const HISTORY: usize = 1024;

/// The bus: a bounded history and a broadcast channel for live subscribers.
pub(crate) struct Bus {
    history: Mutex<VecDeque<EventMessage>>,
    tx: broadcast::Sender<EventMessage>,
}

impl Bus {
    /// An empty bus.
    pub fn new() -> Bus {
        let (tx, _) = broadcast::channel(HISTORY);
        Bus {
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            tx,
        }
    }

    /// Live subscribers (`NEventsListener` of `docker info`).
    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Publishes an event of type `kind` about object `id`.
    pub fn publish(
        &self,
        kind: &str,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let now = Timestamp::now();
        let legacy = matches!(kind, "container" | "image");
        let msg = EventMessage {
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: if kind == "container" {
                attributes.get("image").cloned()
            } else {
                None
            },
            kind: kind.to_string(),
            action: action.to_string(),
            actor: EventActor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".into(),
            time: now.seconds,
            time_nano: now.as_nanos() as i64,
        };
        // History and send under one lock: a subscriber taking the lock sees each event
        // either in the replay or live, never both, never neither.
        let Ok(mut h) = self.history.lock() else {
            return;
        };
        if h.len() >= HISTORY {
            h.pop_front();
        }
        h.push_back(msg.clone());
        let _ = self.tx.send(msg);
    }

    /// Publishes a container event: attributes are the container's labels, `name`, `image`,
    /// then `extra`.
    pub fn container(&self, c: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
        let mut a: BTreeMap<String, String> = c.config.labels.clone().unwrap_or_default();
        a.insert("name".into(), c.name.clone());
        a.insert("image".into(), c.image.clone());
        for (k, v) in extra {
            a.insert((*k).to_string(), v.clone());
        }
        self.publish("container", action, &c.id, a);
    }

    /// Publishes an image event about `id` (an image ID or a reference) named `name`.
    pub fn image(&self, action: &str, id: &str, name: &str) {
        let mut a = BTreeMap::new();
        a.insert("name".to_string(), name.to_string());
        self.publish("image", action, id, a);
    }

    /// The stream of `GET /events`: stored events from `since` (up to `until`), then live
    /// events until `until` (forever without it; nothing live when `until` has passed).
    pub fn subscribe(&self, opts: EventsOptions) -> JsonStream<EventMessage> {
        let until = opts.until.map(|t| t.as_nanos() as i64);
        let since = opts.since.map(|t| t.as_nanos() as i64);
        let filters = opts.filters;
        let in_range = move |m: &EventMessage| {
            since.is_none_or(|s| m.time_nano >= s) && until.is_none_or(|u| m.time_nano <= u)
        };
        let (replay, rx) = {
            let Ok(h) = self.history.lock() else {
                return Box::pin(futures_util::stream::empty());
            };
            let replay: Vec<EventMessage> = if since.is_some() {
                h.iter()
                    .filter(|m| in_range(m) && matches(&filters, m))
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            (replay, self.tx.subscribe())
        };
        let now = Timestamp::now().as_nanos() as i64;
        let replayed = futures_util::stream::iter(replay.into_iter().map(Ok));
        if until.is_some_and(|u| u <= now) {
            return Box::pin(replayed);
        }
        let deadline = until.map(|u| {
            tokio::time::Instant::now()
                + std::time::Duration::from_nanos(u.saturating_sub(now).max(0) as u64)
        });
        let live = futures_util::stream::unfold(
            (rx, filters, deadline),
            |(mut rx, filters, deadline)| async move {
                loop {
                    let next = match deadline {
                        Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                            Ok(r) => r,
                            Err(_) => return None,
                        },
                        None => rx.recv().await,
                    };
                    match next {
                        Ok(m) if matches(&filters, &m) => {
                            return Some((Ok(m), (rx, filters, deadline)))
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        );
        Box::pin(futures_util::StreamExt::chain(replayed, live))
    }
}

/// Whole seconds from RFC 3339 time `a` to `b` (`execDuration` of a `die` event).
pub(crate) fn seconds_between(a: &str, b: &str) -> String {
    let n = |t: &str| shim::timefmt::parse_rfc3339_nanos(t.as_bytes()).map(|n| n as i128);
    match (n(a), n(b)) {
        (Some(a), Some(b)) if b > a => ((b - a) / 1_000_000_000).to_string(),
        _ => "0".into(),
    }
}

/// Docker's `FuzzyMatch`: true when `name` is not given, or one of its values is a prefix of
/// the actor's ID or of its `name` attribute.
fn fuzzy_name(f: &Filters, name: &str, m: &EventMessage) -> bool {
    if !f.contains(name) {
        return true;
    }
    let n = m.actor.attributes.get("name").map(String::as_str);
    f.get(name)
        .iter()
        .any(|v| m.actor.id.starts_with(v) || n.is_some_and(|n| n.starts_with(v)))
}

/// A reference without its tag (`busybox:latest` -> `busybox`; digests and registry ports kept).
fn strip_tag(s: &str) -> &str {
    if s.contains('@') {
        return s;
    }
    match s.rfind(':') {
        Some(i) if !s[i..].contains('/') => &s[..i],
        _ => s,
    }
}

/// Whether event `m` passes the filters (AND across names, OR within one).
pub(crate) fn matches(f: &Filters, m: &EventMessage) -> bool {
    let fuzzy_events = ["health_status", "exec_create", "exec_start"];
    let event_ok = if f.get("event").iter().any(|e| fuzzy_events.contains(e)) {
        f.prefix_match("event", &m.action)
    } else {
        f.exact_match("event", &m.action)
    };
    let image_ok = !f.contains("image") || {
        let name_attr = if m.kind == "image" { "name" } else { "image" };
        let name = m
            .actor
            .attributes
            .get(name_attr)
            .map(String::as_str)
            .unwrap_or("");
        let vals = f.get("image");
        [
            m.actor.id.as_str(),
            name,
            strip_tag(&m.actor.id),
            strip_tag(name),
        ]
        .iter()
        .any(|s| !s.is_empty() && vals.contains(s))
    };
    let daemon_ok = !f.contains("daemon") || m.kind == "daemon";
    event_ok
        && f.exact_match("type", &m.kind)
        && f.exact_match("scope", &m.scope)
        && daemon_ok
        && [
            "container",
            "plugin",
            "volume",
            "network",
            "node",
            "service",
            "secret",
            "config",
        ]
        .iter()
        .all(|n| fuzzy_name(f, n, m))
        && image_ok
        && f.match_labels("label", &m.actor.attributes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> EventMessage {
        EventMessage {
            kind: kind.into(),
            action: action.into(),
            actor: EventActor {
                id: id.into(),
                attributes: attrs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            scope: "local".into(),
            ..Default::default()
        }
    }

    #[test]
    fn filters_match_as_docker() {
        let start = msg(
            "container",
            "start",
            "abcdef",
            &[
                ("name", "web"),
                ("image", "busybox:latest"),
                ("tier", "front"),
            ],
        );
        let exec = msg(
            "container",
            "exec_start: sh -c true",
            "abcdef",
            &[("name", "web")],
        );
        let pull = msg("image", "pull", "busybox:latest", &[("name", "busybox")]);
        let f = |s: &str| Filters::from_json(s).unwrap();
        assert!(matches(&f(""), &start));
        assert!(matches(&f(r#"{"type":["container"]}"#), &start));
        assert!(!matches(&f(r#"{"type":["image"]}"#), &start));
        assert!(matches(&f(r#"{"container":["web"]}"#), &start));
        assert!(matches(&f(r#"{"container":["abc"]}"#), &start));
        assert!(!matches(&f(r#"{"container":["other"]}"#), &start));
        assert!(!matches(&f(r#"{"container":["web"]}"#), &pull));
        assert!(matches(&f(r#"{"event":["start"]}"#), &start));
        assert!(!matches(&f(r#"{"event":["exec_start"]}"#), &start));
        assert!(matches(&f(r#"{"event":["exec_start"]}"#), &exec));
        assert!(!matches(&f(r#"{"event":["exec"]}"#), &exec));
        assert!(matches(&f(r#"{"image":["busybox"]}"#), &start));
        assert!(matches(&f(r#"{"image":["busybox:latest"]}"#), &start));
        assert!(matches(&f(r#"{"image":["busybox"]}"#), &pull));
        assert!(!matches(&f(r#"{"image":["alpine"]}"#), &start));
        assert!(matches(&f(r#"{"label":["tier=front"]}"#), &start));
        assert!(!matches(&f(r#"{"label":["tier=back"]}"#), &start));
        assert!(matches(
            &f(r#"{"type":["container"],"event":["start","die"]}"#),
            &start
        ));
        assert_eq!(strip_tag("127.0.0.1:5000/a/b:v1"), "127.0.0.1:5000/a/b");
        assert_eq!(strip_tag("127.0.0.1:5000/a/b"), "127.0.0.1:5000/a/b");
    }

    #[tokio::test]
    async fn since_replays_and_until_ends() {
        use futures_util::StreamExt;
        let bus = Bus::new();
        let t0 = Timestamp::now();
        bus.image("pull", "busybox:latest", "busybox");
        bus.image("tag", "sha256:1", "bb:1");
        let opts = EventsOptions {
            since: Some(t0),
            until: Some(Timestamp::now()),
            filters: Filters::new(),
        };
        let got: Vec<_> = bus.subscribe(opts).collect().await;
        let actions: Vec<String> = got.into_iter().map(|m| m.unwrap().action).collect();
        assert_eq!(actions, vec!["pull", "tag"]);
        // Live until a near deadline.
        let until = Timestamp {
            seconds: Timestamp::now().seconds + 1,
            nanos: 0,
        };
        let mut s = bus.subscribe(EventsOptions {
            since: None,
            until: Some(until),
            filters: Filters::new().with("event", "untag"),
        });
        bus.image("pull", "x", "x");
        bus.image("untag", "sha256:1", "bb:1");
        assert_eq!(s.next().await.unwrap().unwrap().action, "untag");
        assert!(s.next().await.is_none());
    }
}
