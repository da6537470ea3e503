//! Image references (`busybox`, `user/app:1.0`, `localhost:5000/a/b@sha256:…`): parsing,
//! normalisation and the short "familiar" form, with the grammar, defaults and error messages
//! of Docker's reference package (github.com/distribution/reference), so that every name a
//! user types means exactly what it means to the docker CLI.
//!
//! The grammar:
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain "/"] path-component ["/" path-component]*
//! domain           := host [":" port-number]
//! host             := domain-name | "[" ipv6 "]"
//! domain-name      := domain-component ["." domain-component]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! port-number      := /[0-9]+/
//! path-component   := alpha-numeric [separator alpha-numeric]*
//! alpha-numeric    := /[a-z0-9]+/
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := algorithm ":" hex   (sha256 or sha512, lowercase hex of the right length)
//! ```
//!
//! Normalisation (what `docker pull NAME` does): a name whose first `/`-separated component
//! contains a `.` or a `:`, is `localhost`, or contains an uppercase letter names a registry
//! ("domain"); anything else lives on Docker Hub (`docker.io`), and a one-component Docker
//! Hub name gets the `library/` prefix of official images. `index.docker.io` is the legacy
//! name of `docker.io`. With neither tag nor digest, the tag is `latest`.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// The registry domain of Docker Hub in normalised names.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The legacy name of Docker Hub, normalised to [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of Docker Hub's official images.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag used when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest allowed repository name (domain included), in characters.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// The longest allowed tag, in characters.
pub const TAG_LENGTH_MAX: usize = 128;

/// Why a string is not a valid image reference. The messages are Docker's, word for word,
/// because scripts and users match on them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The string does not follow the reference grammar.
    #[error("invalid reference format")]
    InvalidFormat,
    /// A tag given on its own does not follow the tag grammar.
    #[error("invalid tag format")]
    InvalidTag,
    /// The name part contains uppercase letters (only reported by the un-normalised parser).
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    /// The repository path of a familiar name contains uppercase letters.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    UppercaseRepository(String),
    /// The string is empty.
    #[error("repository name must have at least one component")]
    NameEmpty,
    /// The name (domain included) is longer than [`NAME_TOTAL_LENGTH_MAX`].
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// The whole string is 64 hex digits: an image ID, not a name.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier(String),
    /// The digest part is not `algorithm:hex`.
    #[error("invalid checksum digest format")]
    DigestFormat,
    /// The digest's hex part has the wrong length for its algorithm.
    #[error("invalid checksum digest length")]
    DigestLength,
    /// The digest's algorithm is well formed but not supported (only sha256 and sha512 are).
    #[error("unsupported digest algorithm")]
    DigestUnsupported,
}

/// A parsed image reference: a repository (domain + path) with an optional tag and an
/// optional digest.
///
/// Values built by [`Reference::parse`] / [`Reference::parse_normalized`] are normalised
/// (`busybox` is stored as domain `docker.io`, path `library/busybox`). [`fmt::Display`]
/// prints the full form (`docker.io/library/busybox:latest`); [`Reference::familiar_string`]
/// prints the short form users type (`busybox:latest`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference the way `docker pull`/`docker run`/`docker tag` do: normalised
    /// ([`Reference::parse_normalized`]) and, when it has neither tag nor digest, tagged
    /// `latest`. A reference with both a tag and a digest keeps both (the digest wins when
    /// pulling).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        Ok(Reference::parse_normalized(s)?.with_default_tag())
    }

    /// Parses and normalises a reference without adding a default tag (Docker's
    /// `ParseNormalizedNamed`).
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        if is_identifier(s) {
            return Err(ReferenceError::HexIdentifier(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = match remainder.find(':') {
            Some(i) => &remainder[..i],
            None => &remainder[..],
        };
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::UppercaseRepository(remote.to_string()));
        }
        Reference::parse_canonical(&format!("{domain}/{remainder}"))
    }

    /// Parses a reference exactly as written, without normalisation (Docker's `Parse`): the
    /// domain is whatever the grammar finds before the first `/` (possibly none), so
    /// `busybox` has domain `""` and path `busybox`. Used for strings that are already in full
    /// form (stored names); user input goes through [`Reference::parse`].
    pub fn parse_canonical(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::NameEmpty);
        }
        let parts = match match_reference(s) {
            Some(p) => p,
            None => {
                let lower = s.to_lowercase();
                if lower != s && match_reference(&lower).is_some() {
                    return Err(ReferenceError::NameContainsUppercase);
                }
                return Err(ReferenceError::InvalidFormat);
            }
        };
        if parts.name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        let digest = match parts.digest {
            Some(d) => Some(parse_digest(d)?),
            None => None,
        };
        Ok(Reference {
            domain: parts.domain.to_string(),
            path: parts.path.to_string(),
            tag: parts.tag.map(str::to_string),
            digest,
        })
    }

    /// The registry domain (`docker.io`, `localhost:5000`, `[::1]:5000`), or `""` for a
    /// reference parsed un-normalised without one.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry (`library/busybox`, `user/app`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The full repository name, domain included (`docker.io/library/busybox`).
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// True when the reference has neither tag nor digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// This reference, tagged `latest` if it has neither tag nor digest (Docker's
    /// `TagNameOnly`).
    pub fn with_default_tag(mut self) -> Reference {
        if self.is_name_only() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The same repository (and digest, if any) with `tag`; fails with "invalid tag format"
    /// if `tag` breaks the tag grammar.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::InvalidTag);
        }
        let mut r = self.clone();
        r.tag = Some(tag.to_string());
        Ok(r)
    }

    /// The same repository (and tag, if any) with `digest`.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        let mut r = self.clone();
        r.digest = Some(digest);
        r
    }

    /// The repository alone, without tag or digest (Docker's `TrimNamed`).
    pub fn name_only(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    /// The short name the docker CLI shows (`docker images`' REPOSITORY column): Docker Hub's
    /// domain is dropped, and so is `library/` for a one-level official name — `busybox`,
    /// `user/app`, `library/a/b`, `localhost:5000/a`.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }

    /// The short form of the whole reference: [`Reference::familiar_name`] plus `:tag` and
    /// `@digest` when present (`busybox:latest`).
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

impl fmt::Display for Reference {
    /// The full form: `docker.io/library/busybox:latest@sha256:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    /// Same as [`Reference::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    /// Accepts the full form written by `Serialize` (normalising it again is harmless).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse_normalized(&s).map_err(serde::de::Error::custom)
    }
}

/// True when `s` is exactly 64 lowercase hex digits: a full image ID, which Docker refuses as
/// a repository name.
pub fn is_identifier(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// True when `s` is a valid tag: a word character followed by up to 127 word characters,
/// dots and dashes.
pub fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_LENGTH_MAX
        && is_word(b[0])
        && b[1..].iter().all(|&c| is_word(c) || c == b'.' || c == b'-')
}

/// Splits a familiar name into (domain, remainder) the way Docker does, adding Docker Hub and
/// the `library/` prefix where they are implied.
fn split_docker_domain(name: &str) -> (String, String) {
    let Some((first, rest)) = name.split_once('/') else {
        return (
            DEFAULT_DOMAIN.to_string(),
            format!("{OFFICIAL_REPO_PREFIX}{name}"),
        );
    };
    let (domain, remainder) = if first == "localhost" {
        (first, rest)
    } else if first == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, rest)
    } else if first.contains(['.', ':']) || first.to_lowercase() != first {
        (first, rest)
    } else {
        (DEFAULT_DOMAIN, name)
    };
    let remainder = if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        format!("{OFFICIAL_REPO_PREFIX}{remainder}")
    } else {
        remainder.to_string()
    };
    (domain.to_string(), remainder)
}

/// The pieces of a string that matched the reference grammar.
struct Parts<'a> {
    name: &'a str,
    domain: &'a str,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Matches `s` against the whole reference grammar (Docker's anchored `ReferenceRegexp`).
///
/// The split is unambiguous: no part but the digest may contain `@`, a tag holds no `:` or
/// `/`, and the only `:` a name may hold (a port or an IPv6 address) comes before a `/`. So a
/// tag is present exactly when the last `:` before the `@` follows the last `/`.
fn match_reference(s: &str) -> Option<Parts<'_>> {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => {
            if !is_digest_pattern(d) {
                return None;
            }
            (r, Some(d))
        }
        None => (s, None),
    };
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(t) = tag {
        if !is_tag(t) {
            return None;
        }
    }
    let (domain, path) = match_name(name)?;
    Some(Parts {
        name,
        domain,
        path,
        tag,
        digest,
    })
}

/// Matches a name (`[domain/]path`), preferring a domain when the first component can be one,
/// as the greedy optional group of Docker's regexp does. Returns (domain, path).
fn match_name(name: &str) -> Option<(&str, &str)> {
    if let Some((first, rest)) = name.split_once('/') {
        if is_domain(first) && is_remote_name(rest) {
            return Some((first, rest));
        }
    }
    if is_remote_name(name) {
        return Some(("", name));
    }
    None
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `path-component ("/" path-component)*`
fn is_remote_name(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` with separator `[._]|__|-+`.
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let mut expect_alnum = true;
    while i < b.len() {
        if expect_alnum {
            let start = i;
            while i < b.len() && is_lower_alnum(b[i]) {
                i += 1;
            }
            if i == start {
                return false;
            }
            expect_alnum = false;
        } else {
            let start = i;
            while i < b.len() && !is_lower_alnum(b[i]) {
                i += 1;
            }
            let sep = &s[start..i];
            let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
            if !ok {
                return false;
            }
            expect_alnum = true;
        }
    }
    // Must be non-empty and end on an alphanumeric run.
    !b.is_empty() && !expect_alnum
}

/// `host [":" port]` with host a dotted domain name or a bracketed IPv6 address.
fn is_domain(s: &str) -> bool {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let Some(end) = inner.find(']') else {
            return false;
        };
        let addr = &inner[..end];
        if addr.is_empty() || !addr.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
            return false;
        }
        let after = &inner[end + 1..];
        match after.strip_prefix(':') {
            Some(p) => (None, Some(p)),
            None if after.is_empty() => (None, None),
            None => return false,
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(s), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    match host {
        None => true,
        Some(h) => h.split('.').all(is_domain_component),
    }
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn is_domain_component(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        }
        _ => false,
    }
}

/// The reference grammar's digest pattern:
/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`.
fn is_digest_pattern(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else {
        return false;
    };
    hex.len() >= 32
        && hex.bytes().all(|c| c.is_ascii_hexdigit())
        && alg.split(['-', '_', '+', '.']).all(|comp| {
            let b = comp.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphabetic()
                && b.iter().all(|c| c.is_ascii_alphanumeric())
        })
}

/// Validates a digest that matched the grammar the way go-digest does, with its messages,
/// then builds berth's [`Digest`].
fn parse_digest(s: &str) -> Result<Digest, ReferenceError> {
    let Some((alg, hex)) = s.split_once(':') else {
        return Err(ReferenceError::DigestFormat);
    };
    let expected_len = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(ReferenceError::DigestUnsupported),
    };
    if hex.len() != expected_len {
        return Err(ReferenceError::DigestLength);
    }
    if !hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ReferenceError::DigestFormat);
    }
    Digest::parse(s).map_err(|_| ReferenceError::DigestFormat)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D256: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    /// (input, full normalised string as `docker pull` resolves it, familiar string)
    #[test]
    fn normalised_valid() {
        let id = "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";
        let cases: Vec<(String, String, String)> = vec![
            ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
            ("user/app", "docker.io/user/app:latest", "user/app:latest"),
            ("docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("index.docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("index.docker.io/user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
            ("library/foo/bar", "docker.io/library/foo/bar:latest", "library/foo/bar:latest"),
            ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
            ("localhost:5000/a/b:tag", "localhost:5000/a/b:tag", "localhost:5000/a/b:tag"),
            ("127.0.0.1:5000/debian", "127.0.0.1:5000/debian:latest", "127.0.0.1:5000/debian:latest"),
            ("example.com/private/moonbase", "example.com/private/moonbase:latest", "example.com/private/moonbase:latest"),
            ("Foo/bar", "Foo/bar:latest", "Foo/bar:latest"),
            ("test_com/foo", "docker.io/test_com/foo:latest", "test_com/foo:latest"),
            ("192.168.0.1", "docker.io/library/192.168.0.1:latest", "192.168.0.1:latest"),
            ("192.168.0.1:80", "docker.io/library/192.168.0.1:80", "192.168.0.1:80"),
            ("[fc00::1]:5000/docker", "[fc00::1]:5000/docker:latest", "[fc00::1]:5000/docker:latest"),
            ("[::1]:5000/repo:tag", "[::1]:5000/repo:tag", "[::1]:5000/repo:tag"),
            ("docker---rules/docker", "docker.io/docker---rules/docker:latest", "docker---rules/docker:latest"),
            ("dock__er/docker", "docker.io/dock__er/docker:latest", "dock__er/docker:latest"),
            ("lowercase:Uppercase", "docker.io/library/lowercase:Uppercase", "lowercase:Uppercase"),
            ("xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo:latest", "xn--n3h.com:18080/foo:latest"),
            (&format!("host:5000/a/b@{D256}"), &format!("host:5000/a/b@{D256}"), &format!("host:5000/a/b@{D256}")),
            (&format!("busybox:latest@{D256}"), &format!("docker.io/library/busybox:latest@{D256}"), &format!("busybox:latest@{D256}")),
            (&format!("docker.io/{id}"), &format!("docker.io/library/{id}:latest"), &format!("{id}:latest")),
            ("thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest", "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest"),
        ]
        .into_iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
        for (input, full, familiar) in cases {
            let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), full, "full form of {input}");
            assert_eq!(r.familiar_string(), familiar, "familiar form of {input}");
            // The full form parses back to the same reference.
            assert_eq!(Reference::parse(&full).unwrap(), r, "round trip of {input}");
        }
    }

    #[test]
    fn domain_path_and_familiar_name() {
        for (input, domain, path, familiar) in [
            ("busybox", "docker.io", "library/busybox", "busybox"),
            ("fooo/bar", "docker.io", "fooo/bar", "fooo/bar"),
            (
                "store/foo/bar",
                "docker.io",
                "store/foo/bar",
                "store/foo/bar",
            ),
            (
                "other/library",
                "docker.io",
                "other/library",
                "other/library",
            ),
            (
                "localhost:5000/a",
                "localhost:5000",
                "a",
                "localhost:5000/a",
            ),
            (
                "test.com:8080/foo",
                "test.com:8080",
                "foo",
                "test.com:8080/foo",
            ),
            (
                "test-com:8080/foo",
                "test-com:8080",
                "foo",
                "test-com:8080/foo",
            ),
            ("FOO/bar", "FOO", "bar", "FOO/bar"),
            (
                "b.gcr.io/test.example.com/my-app:test.example.com",
                "b.gcr.io",
                "test.example.com/my-app",
                "b.gcr.io/test.example.com/my-app",
            ),
        ] {
            let r = Reference::parse_normalized(input).unwrap();
            assert_eq!(r.domain(), domain, "{input}");
            assert_eq!(r.path(), path, "{input}");
            assert_eq!(r.familiar_name(), familiar, "{input}");
            assert_eq!(r.name(), format!("{domain}/{path}"));
        }
        let r = Reference::parse_normalized("busybox").unwrap();
        assert!(r.is_name_only());
        assert_eq!(r.to_string(), "docker.io/library/busybox");
    }

    #[test]
    fn normalised_invalid_messages() {
        let long_ns = format!("{}/docker", "a_b".repeat(90));
        let cases: Vec<(String, &str)> = vec![
            ("Busybox".into(), "invalid reference format: repository name (library/Busybox) must be lowercase"),
            ("docker/Docker".into(), "invalid reference format: repository name (docker/Docker) must be lowercase"),
            ("docker.io/docker/Docker".into(), "invalid reference format: repository name (docker/Docker) must be lowercase"),
            ("localhost:5000/Upper:tag".into(), "invalid reference format: repository name (Upper) must be lowercase"),
            ("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a".into(), "invalid repository name (1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a), cannot specify 64-byte hexadecimal strings"),
            ("https://github.com/docker/docker".into(), "invalid reference format"),
            ("-docker".into(), "invalid reference format"),
            ("-docker/docker".into(), "invalid reference format"),
            ("docker-/docker".into(), "invalid reference format"),
            ("-docker.io/docker/docker".into(), "invalid reference format"),
            ("docker///docker".into(), "invalid reference format"),
            ("docker.io/docker///docker".into(), "invalid reference format"),
            ("____/____".into(), "invalid reference format"),
            ("_docker/_docker".into(), "invalid reference format"),
            ("dock..er/docker".into(), "invalid reference format"),
            ("dock_.er/docker".into(), "invalid reference format"),
            ("dock-.er/docker".into(), "invalid reference format"),
            ("docker/".into(), "invalid reference format"),
            ("[fc00::1]".into(), "invalid reference format"),
            ("[fc00::1]:5000".into(), "invalid reference format"),
            ("fc00::1:5000/debian".into(), "invalid reference format"),
            ("[fe80::1%eth0]:5000/debian".into(), "invalid reference format"),
            ("[2001:db8:3:4::192.0.2.33]:5000/debian".into(), "invalid reference format"),
            ("a b".into(), "invalid reference format"),
            ("busybox:".into(), "invalid reference format"),
            (":tag".into(), "invalid reference format"),
            ("a:b:c".into(), "invalid reference format"),
            ("busybox:-tag".into(), "invalid reference format"),
            ("busybox@sha256".into(), "invalid reference format"),
            ("busybox@@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff".into(), "invalid reference format"),
            ("aa/asdf$$^/aa".into(), "invalid reference format"),
            (format!("busybox:{}", "t".repeat(129)), "invalid reference format"),
            ("".into(), "invalid reference format"),
            (long_ns, "repository name must not be more than 255 characters"),
            ("repo@sha256:ffffffffffffffffffffffffffffffffff".into(), "invalid checksum digest length"),
            ("validname@invaliddigest:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff".into(), "unsupported digest algorithm"),
            ("repo@sha256:FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF".into(), "invalid checksum digest format"),
        ];
        for (input, msg) in cases {
            match Reference::parse(&input) {
                Ok(r) => panic!("{input:?} parsed as {r}"),
                Err(e) => assert_eq!(e.to_string(), msg, "{input:?}"),
            }
        }
        // A 128-character tag is fine, 129 is not.
        assert!(Reference::parse(&format!("busybox:{}", "t".repeat(128))).is_ok());
    }

    /// (input, domain, path, tag, digest)
    type CanonicalCase<'a> = (String, &'a str, String, Option<&'a str>, Option<&'a str>);

    /// Docker's un-normalised `Parse` table.
    #[test]
    fn canonical_table() {
        let ok: Vec<CanonicalCase> = vec![
            ("test_com".into(), "", "test_com".into(), None, None),
            (
                "test.com:tag".into(),
                "",
                "test.com".into(),
                Some("tag"),
                None,
            ),
            (
                "test.com:5000".into(),
                "",
                "test.com".into(),
                Some("5000"),
                None,
            ),
            (
                "test.com/repo:tag".into(),
                "test.com",
                "repo".into(),
                Some("tag"),
                None,
            ),
            (
                "test:5000/repo".into(),
                "test:5000",
                "repo".into(),
                None,
                None,
            ),
            (
                format!("test:5000/repo:tag@{D256}"),
                "test:5000",
                "repo".into(),
                Some("tag"),
                Some(D256),
            ),
            (
                "foo_bar.com:8080".into(),
                "",
                "foo_bar.com".into(),
                Some("8080"),
                None,
            ),
            (
                "foo/foo_bar.com:8080".into(),
                "foo",
                "foo_bar.com".into(),
                Some("8080"),
                None,
            ),
            (
                "192.168.1.1:5000/repo:5050".into(),
                "192.168.1.1:5000",
                "repo".into(),
                Some("5050"),
                None,
            ),
            (
                "[2001:db8::1]/repo".into(),
                "[2001:db8::1]",
                "repo".into(),
                None,
                None,
            ),
            (
                "[2001:db8::]:5000/repo".into(),
                "[2001:db8::]:5000",
                "repo".into(),
                None,
                None,
            ),
            (
                format!("{}a:tag-puts-this-over-max", "a/".repeat(126)),
                "a",
                format!("{}a", "a/".repeat(125)),
                Some("tag-puts-this-over-max"),
                None,
            ),
        ];
        for (input, domain, path, tag, digest) in ok {
            let r = Reference::parse_canonical(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.domain(), domain, "{input}");
            assert_eq!(r.path(), path, "{input}");
            assert_eq!(r.tag(), tag, "{input}");
            assert_eq!(
                r.digest().map(|d| d.to_string()).as_deref(),
                digest,
                "{input}"
            );
            assert_eq!(r.to_string(), input);
        }
        for (input, err) in [
            ("".to_string(), ReferenceError::NameEmpty),
            (":justtag".into(), ReferenceError::InvalidFormat),
            (format!("@{D256}"), ReferenceError::InvalidFormat),
            (
                "Uppercase:tag".into(),
                ReferenceError::NameContainsUppercase,
            ),
            (
                "test:5000/Uppercase/lowercase:tag".into(),
                ReferenceError::NameContainsUppercase,
            ),
            (
                format!("{}a:tag", "a/".repeat(128)),
                ReferenceError::NameTooLong,
            ),
            ("[2001:db8::1]".into(), ReferenceError::InvalidFormat),
            ("[2001:db8::1]:tag".into(), ReferenceError::InvalidFormat),
            (
                "[fe80::1%@invalidzone]:5000/repo".into(),
                ReferenceError::InvalidFormat,
            ),
        ] {
            assert_eq!(
                Reference::parse_canonical(&input).unwrap_err(),
                err,
                "{input}"
            );
        }
    }

    #[test]
    fn with_tag_digest_and_serde() {
        let r = Reference::parse_normalized("localhost:5000/app").unwrap();
        assert_eq!(
            r.with_tag("v1").unwrap().to_string(),
            "localhost:5000/app:v1"
        );
        assert_eq!(r.with_tag("-x").unwrap_err(), ReferenceError::InvalidTag);
        assert_eq!(r.with_tag("").unwrap_err(), ReferenceError::InvalidTag);
        let d = Digest::parse(D256).unwrap();
        let rd = r.with_tag("v1").unwrap().with_digest(d.clone());
        assert_eq!(rd.to_string(), format!("localhost:5000/app:v1@{D256}"));
        assert_eq!(rd.digest(), Some(&d));
        assert_eq!(rd.name_only().to_string(), "localhost:5000/app");
        // Digest-only references do not get a default tag.
        let by_digest = Reference::parse(&format!("busybox@{D256}")).unwrap();
        assert_eq!(by_digest.tag(), None);
        let json = serde_json::to_string(&rd).unwrap();
        assert_eq!(json, format!("\"localhost:5000/app:v1@{D256}\""));
        assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), rd);
        assert_eq!(
            "busybox".parse::<Reference>().unwrap().familiar_string(),
            "busybox:latest"
        );
    }
}
