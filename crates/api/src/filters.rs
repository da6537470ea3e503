//! The `filters` query parameter: a JSON map of filter names to values, in Docker's two
//! encodings (`{"label":{"a=b":true}}` and the legacy `{"label":["a=b"]}`), parsed into
//! [`Filters`], checked against the names an endpoint accepts, and matched the way Docker
//! matches (labels, booleans).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ApiError;

/// Parsed filters: each name with the set of values given for it. A value set matches
/// when any of its values does (Docker's semantics: OR within a name, AND across names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    fields: BTreeMap<String, BTreeSet<String>>,
}

impl Filters {
    /// No filters.
    pub fn new() -> Filters {
        Filters::default()
    }

    /// Parses the `filters` parameter; an empty string is no filters. Errors are
    /// [`ApiError::InvalidParameter`], as Docker answers them (400).
    pub fn from_json(s: &str) -> Result<Filters, ApiError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Filters::new());
        }
        if let Ok(map) = serde_json::from_str::<BTreeMap<String, BTreeMap<String, bool>>>(s) {
            let fields = map
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        v.into_iter().filter(|(_, b)| *b).map(|(v, _)| v).collect(),
                    )
                })
                .collect();
            return Ok(Filters { fields });
        }
        match serde_json::from_str::<BTreeMap<String, Vec<String>>>(s) {
            Ok(map) => Ok(Filters {
                fields: map
                    .into_iter()
                    .map(|(k, v)| (k, v.into_iter().collect()))
                    .collect(),
            }),
            Err(e) => Err(ApiError::InvalidParameter(format!("invalid filter: {e}"))),
        }
    }

    /// The JSON encoding Docker's clients send (`{"name":{"value":true}}`).
    pub fn to_json(&self) -> String {
        let map: BTreeMap<&str, BTreeMap<&str, bool>> = self
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.iter().map(|x| (x.as_str(), true)).collect()))
            .collect();
        serde_json::to_string(&map).unwrap_or_else(|_| "{}".to_string())
    }

    /// Adds `value` under `name`.
    pub fn add(&mut self, name: &str, value: &str) -> &mut Filters {
        self.fields
            .entry(name.to_string())
            .or_default()
            .insert(value.to_string());
        self
    }

    /// Builder form of [`Filters::add`].
    pub fn with(mut self, name: &str, value: &str) -> Filters {
        self.add(name, value);
        self
    }

    /// True when no filter is set.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// True when `name` was given.
    pub fn contains(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    /// The values given for `name` (empty when it was not given).
    pub fn get(&self, name: &str) -> Vec<&str> {
        self.fields
            .get(name)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The filter names given.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// Rejects names outside `accepted` with Docker's `invalid filter 'name'` (400).
    pub fn validate(&self, accepted: &[&str]) -> Result<(), ApiError> {
        match self.fields.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(bad) => Err(ApiError::InvalidParameter(format!(
                "invalid filter '{bad}'"
            ))),
            None => Ok(()),
        }
    }

    /// True when `name` is not given or one of its values equals `value`.
    pub fn exact_match(&self, name: &str, value: &str) -> bool {
        match self.fields.get(name) {
            None => true,
            Some(vals) => vals.contains(value),
        }
    }

    /// True when `name` is not given or one of its values is a prefix of `value`
    /// (Docker's ID filters match by prefix).
    pub fn prefix_match(&self, name: &str, value: &str) -> bool {
        match self.fields.get(name) {
            None => true,
            Some(vals) => vals.iter().any(|v| value.starts_with(v.as_str())),
        }
    }

    /// Docker's label matching: every value of `name` (`key`, `key=value` or
    /// `key!=value`) must hold for `labels`. True when `name` is not given.
    pub fn match_labels(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        let Some(vals) = self.fields.get(name) else {
            return true;
        };
        vals.iter().all(|want| {
            if let Some((k, v)) = want.split_once("!=") {
                labels.get(k).map(|have| have != v).unwrap_or(true)
            } else if let Some((k, v)) = want.split_once('=') {
                labels.get(k).map(|have| have == v).unwrap_or(false)
            } else {
                labels.contains_key(want.as_str())
            }
        })
    }

    /// A boolean filter such as `dangling=true`: None when not given, an error unless every
    /// value is `true`/`1` or `false`/`0` and they agree.
    pub fn bool_value(&self, name: &str) -> Result<Option<bool>, ApiError> {
        let Some(vals) = self.fields.get(name) else {
            return Ok(None);
        };
        let mut out = None;
        for v in vals {
            let b = match v.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(ApiError::InvalidParameter(format!(
                        "invalid filter '{name}={v}': value must be true or false"
                    )))
                }
            };
            if out.is_some_and(|o| o != b) {
                return Err(ApiError::InvalidParameter(format!(
                    "invalid filter '{name}': conflicting values"
                )));
            }
            out = Some(b);
        }
        Ok(out)
    }
}

/// Filter names `GET /containers/json` accepts.
pub const CONTAINER_LIST_FILTERS: &[&str] = &[
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];
/// Filter names `GET /images/json` accepts.
pub const IMAGE_LIST_FILTERS: &[&str] =
    &["before", "dangling", "label", "reference", "since", "until"];
/// Filter names `GET /events` accepts.
pub const EVENT_FILTERS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];
/// Filter names `POST /containers/prune` accepts.
pub const CONTAINER_PRUNE_FILTERS: &[&str] = &["label", "label!", "until"];
/// Filter names `POST /images/prune` accepts.
pub const IMAGE_PRUNE_FILTERS: &[&str] = &["dangling", "label", "label!", "until"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_encodings() {
        let a = Filters::from_json(r#"{"label":{"a=b":true},"status":{"running":true}}"#).unwrap();
        let b = Filters::from_json(r#"{"label":["a=b"],"status":["running"]}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.get("status"), vec!["running"]);
        assert!(Filters::from_json("").unwrap().is_empty());
        assert!(matches!(
            Filters::from_json("{nope"),
            Err(ApiError::InvalidParameter(_))
        ));
        let round = Filters::from_json(&a.to_json()).unwrap();
        assert_eq!(round, a);
    }

    #[test]
    fn validation_and_matching() {
        let f = Filters::from_json(r#"{"foo":["x"]}"#).unwrap();
        let e = f.validate(CONTAINER_LIST_FILTERS).unwrap_err();
        assert_eq!(e.message(), "invalid filter 'foo'");
        let mut labels = BTreeMap::new();
        labels.insert("a".to_string(), "b".to_string());
        let f = Filters::new().with("label", "a=b").with("label", "a");
        assert!(f.match_labels("label", &labels));
        let f = Filters::new().with("label", "a!=b");
        assert!(!f.match_labels("label", &labels));
        let f = Filters::new().with("dangling", "true");
        assert_eq!(f.bool_value("dangling").unwrap(), Some(true));
    }
}
