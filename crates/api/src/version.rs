//! Engine API versions (`1.41`, `1.47`...): parsing, ordering, the range berth serves, and
//! negotiation as Docker clients do it (use the lower of the client's and the daemon's).

use std::fmt;
use std::str::FromStr;

/// An Engine API version, `major.minor` (Docker's versions are compared numerically part
/// by part, so `1.9 < 1.10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// Always 1 so far.
    pub major: u16,
    /// The part that moves with each engine release.
    pub minor: u16,
}

/// The oldest API version berth serves (Docker's own minimum for years: docker-compose's
/// v2.1 file format and old SDKs still ask for it).
pub const MIN_API_VERSION: ApiVersion = ApiVersion::new(1, 24);

/// The newest API version berth serves by default, advertised in `/_ping` and `/version`
/// (Docker Engine 27.x). The docker CLI 28 and docker-py 7 negotiate down to it.
pub const MAX_API_VERSION: ApiVersion = ApiVersion::new(1, 47);

/// The version berth's own client asks for before negotiating.
pub const CLIENT_API_VERSION: ApiVersion = MAX_API_VERSION;

impl ApiVersion {
    /// `major.minor`.
    pub const fn new(major: u16, minor: u16) -> ApiVersion {
        ApiVersion { major, minor }
    }

    /// Negotiation as Docker clients do it: the lower of what the client speaks and what
    /// the daemon advertises.
    pub fn negotiate(client: ApiVersion, server: ApiVersion) -> ApiVersion {
        client.min(server)
    }

    /// True when this version is `major.minor` or newer.
    pub fn at_least(self, major: u16, minor: u16) -> bool {
        self >= ApiVersion::new(major, minor)
    }
}

/// A string that is not an API version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid API version {0:?}: expected MAJOR.MINOR, e.g. 1.41")]
pub struct ParseVersionError(pub String);

impl FromStr for ApiVersion {
    type Err = ParseVersionError;

    fn from_str(s: &str) -> Result<ApiVersion, ParseVersionError> {
        let bad = || ParseVersionError(s.to_string());
        let mut parts = s.trim().split('.');
        let major = parts
            .next()
            .filter(|p| !p.is_empty())
            .ok_or_else(bad)?
            .parse::<u16>()
            .map_err(|_| bad())?;
        let minor = match parts.next() {
            Some(p) => p.parse::<u16>().map_err(|_| bad())?,
            None => 0,
        };
        // Docker compares further parts too, but no API version has ever had one; accept
        // and ignore numeric ones.
        for p in parts {
            p.parse::<u16>().map_err(|_| bad())?;
        }
        Ok(ApiVersion { major, minor })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl serde::Serialize for ApiVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ApiVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ApiVersion, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Docker's message for a version below the minimum (answered with 400).
pub fn too_old_message(requested: &str, min: ApiVersion) -> String {
    format!(
        "client version {requested} is too old. Minimum supported API version is {min}, \
         please upgrade your client to a newer version"
    )
}

/// Docker's message for a version above the maximum (answered with 400).
pub fn too_new_message(requested: &str, max: ApiVersion) -> String {
    format!("client version {requested} is too new. Maximum supported API version is {max}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_numerically() {
        let v9: ApiVersion = "1.9".parse().unwrap();
        let v10: ApiVersion = "1.10".parse().unwrap();
        assert!(v9 < v10);
        assert_eq!(
            "1.41".parse::<ApiVersion>().unwrap(),
            ApiVersion::new(1, 41)
        );
        assert_eq!("1".parse::<ApiVersion>().unwrap(), ApiVersion::new(1, 0));
        assert!("1.x".parse::<ApiVersion>().is_err());
        assert!("".parse::<ApiVersion>().is_err());
        assert_eq!(ApiVersion::new(1, 47).to_string(), "1.47");
    }

    #[test]
    fn negotiation_takes_the_lower() {
        let c = ApiVersion::new(1, 50);
        let s = ApiVersion::new(1, 47);
        assert_eq!(ApiVersion::negotiate(c, s), s);
        assert_eq!(ApiVersion::negotiate(s, c), s);
    }
}
