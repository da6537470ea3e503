//! Timestamps as the Engine API passes them in query parameters (`since`, `until` of logs
//! and events): Unix seconds with an optional fraction, `1700000000.123456789`.

use std::fmt;
use std::str::FromStr;

use crate::error::ApiError;

/// A point in time, Unix seconds and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Seconds since the epoch.
    pub seconds: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

impl Timestamp {
    /// Nanoseconds since the epoch.
    pub fn as_nanos(&self) -> i128 {
        self.seconds as i128 * 1_000_000_000 + self.nanos as i128
    }

    /// The current time.
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos(),
        }
    }

    /// Parses an optional query value: empty means none; anything but `SECONDS[.FRACTION]`
    /// is a 400 naming the parameter.
    pub fn parse_param(name: &str, value: &str) -> Result<Option<Timestamp>, ApiError> {
        if value.is_empty() {
            return Ok(None);
        }
        value.parse().map(Some).map_err(|_| {
            ApiError::InvalidParameter(format!(
                "invalid value for {name}: {value:?}: expected Unix seconds, optionally with a fraction"
            ))
        })
    }
}

/// Not a `SECONDS[.FRACTION]` timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {0:?}: expected SECONDS[.FRACTION]")]
pub struct ParseTimestampError(pub String);

impl FromStr for Timestamp {
    type Err = ParseTimestampError;

    fn from_str(s: &str) -> Result<Timestamp, ParseTimestampError> {
        let bad = || ParseTimestampError(s.to_string());
        let (sec, frac) = match s.split_once('.') {
            Some((a, b)) => (a, b),
            None => (s, ""),
        };
        let seconds: i64 = sec.parse().map_err(|_| bad())?;
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let nanos = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<9}").parse::<u32>().map_err(|_| bad())?
        };
        Ok(Timestamp { seconds, nanos })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.seconds, self.nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            "12".parse::<Timestamp>().unwrap(),
            Timestamp {
                seconds: 12,
                nanos: 0
            }
        );
        assert_eq!(
            "12.5".parse::<Timestamp>().unwrap(),
            Timestamp {
                seconds: 12,
                nanos: 500_000_000
            }
        );
        assert_eq!(
            "1700000000.000000001"
                .parse::<Timestamp>()
                .unwrap()
                .to_string(),
            "1700000000.000000001"
        );
        assert!("x".parse::<Timestamp>().is_err());
        assert!(Timestamp::parse_param("since", "").unwrap().is_none());
        assert!(Timestamp::parse_param("since", "abc").is_err());
    }
}
