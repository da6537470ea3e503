//! Registry authentication (the Docker token protocol): parsing `WWW-Authenticate`
//! challenges (`Bearer realm=…,service=…,scope=…` or `Basic realm=…`), asking a token server
//! for a bearer token for a set of scopes (with basic credentials when known, anonymously
//! otherwise), and the scope strings themselves (`repository:<name>:pull,push`).

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, AUTHORIZATION, WWW_AUTHENTICATE};

use crate::credentials::Credentials;

/// How a registry wants to be authenticated, from a 401's `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP basic authentication.
    Basic {
        /// The realm (informational).
        realm: String,
    },
    /// Docker token authentication: get a bearer token from `realm`.
    Bearer {
        /// The token server URL.
        realm: String,
        /// The `service` parameter to pass on.
        service: Option<String>,
        /// The scope the registry says the request needs (space separated, may be several).
        scope: Option<String>,
    },
}

/// Reads the most useful challenge from a response's headers: Bearer before Basic; None when
/// there is no usable challenge.
pub fn challenge_from_headers(headers: &HeaderMap) -> Option<Challenge> {
    let mut found = Vec::new();
    for v in headers.get_all(WWW_AUTHENTICATE) {
        if let Ok(s) = v.to_str() {
            found.extend(parse_challenges(s));
        }
    }
    found
        .iter()
        .find(|c| matches!(c, Challenge::Bearer { .. }))
        .or_else(|| found.first())
        .cloned()
}

/// Parses a `WWW-Authenticate` value, which may hold several challenges
/// (`Bearer realm="a",service="b", Basic realm="c"`). Unknown schemes are skipped.
pub fn parse_challenges(value: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut p = Parser {
        s: value.as_bytes(),
        i: 0,
    };
    let mut current: Option<(String, Vec<(String, String)>)> = None;
    loop {
        p.skip(|c| c == b' ' || c == b'\t' || c == b',');
        if p.done() {
            break;
        }
        let tok = p.token();
        if tok.is_empty() {
            // Garbage: skip one byte and go on.
            p.i += 1;
            continue;
        }
        p.skip(|c| c == b' ' || c == b'\t');
        if p.peek() == Some(b'=') {
            p.i += 1;
            p.skip(|c| c == b' ' || c == b'\t');
            let val = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token()
            };
            if let Some((_, params)) = current.as_mut() {
                params.push((tok.to_lowercase(), val));
            }
        } else {
            if let Some(c) = current.take() {
                out.extend(build(c));
            }
            current = Some((tok, Vec::new()));
        }
    }
    if let Some(c) = current.take() {
        out.extend(build(c));
    }
    out
}

fn build((scheme, params): (String, Vec<(String, String)>)) -> Option<Challenge> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    match scheme.to_lowercase().as_str() {
        "basic" => Some(Challenge::Basic {
            realm: get("realm").unwrap_or_default(),
        }),
        "bearer" => Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        }),
        _ => None,
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().map(&f).unwrap_or(false) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> String {
        let start = self.i;
        self.skip(|c| !matches!(c, b' ' | b'\t' | b',' | b'=' | b'"'));
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    fn quoted(&mut self) -> String {
        // At the opening quote.
        self.i += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                b'"' => break,
                _ => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The scope for pulling from a repository.
pub fn pull_scope(path: &str) -> String {
    format!("repository:{path}:pull")
}

/// The scope for pushing to a repository (pull is needed too, to check for existing blobs).
pub fn push_scope(path: &str) -> String {
    format!("repository:{path}:pull,push")
}

/// A bearer token and when to stop using it.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub value: String,
    pub expires: Instant,
}

impl Token {
    pub fn is_fresh(&self) -> bool {
        Instant::now() < self.expires
    }
}

/// Why a token request failed.
#[derive(Debug)]
pub(crate) struct TokenFailure {
    /// The HTTP status, when the token server answered.
    pub status: Option<u16>,
    /// What went wrong.
    pub detail: String,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Asks the token server at `realm` for a token covering `scopes`.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    user_agent: &str,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    creds: Option<&Credentials>,
) -> Result<Token, TokenFailure> {
    let mut url = reqwest::Url::parse(realm).map_err(|e| TokenFailure {
        status: None,
        detail: format!("invalid realm URL {realm:?}: {e}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TokenFailure {
            status: None,
            detail: format!("realm {realm:?} is not an http(s) URL"),
        });
    }
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        for s in scopes {
            q.append_pair("scope", s);
        }
        if let Some(c) = creds {
            q.append_pair("account", &c.username);
        }
    }
    let mut req = http
        .get(url)
        .header(reqwest::header::USER_AGENT, user_agent);
    if let Some(c) = creds {
        req = req.header(AUTHORIZATION, c.basic_header());
    }
    let resp = req.send().await.map_err(|e| TokenFailure {
        status: None,
        detail: e.to_string(),
    })?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| TokenFailure {
        status: Some(status.as_u16()),
        detail: e.to_string(),
    })?;
    if !status.is_success() {
        return Err(TokenFailure {
            status: Some(status.as_u16()),
            detail: crate::error::describe_body(status, &body),
        });
    }
    let tr: TokenResponse = serde_json::from_slice(&body).map_err(|e| TokenFailure {
        status: Some(status.as_u16()),
        detail: format!("token response is not JSON: {e}"),
    })?;
    let value = tr
        .token
        .filter(|t| !t.is_empty())
        .or(tr.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| TokenFailure {
            status: Some(status.as_u16()),
            detail: "token response has neither token nor access_token".into(),
        })?;
    // The spec's minimum lifetime is 60 s; renew a little early.
    let life = tr.expires_in.unwrap_or(60).max(60);
    Ok(Token {
        value,
        expires: Instant::now() + Duration::from_secs(life.saturating_sub(10)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let v = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#;
        assert_eq!(
            parse_challenges(v),
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:samalba/my-app:pull,push".into()),
            }]
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#),
            vec![Challenge::Basic {
                realm: "Registry Realm".into()
            }]
        );
        let both = r#"Basic realm="x", Bearer realm="http://127.0.0.1:1/t",error="insufficient_scope", Negotiate"#;
        let got = parse_challenges(both);
        assert_eq!(got.len(), 2);
        let mut h = HeaderMap::new();
        h.insert(WWW_AUTHENTICATE, both.parse().unwrap());
        assert!(matches!(
            challenge_from_headers(&h),
            Some(Challenge::Bearer { .. })
        ));
        assert_eq!(parse_challenges(r#"Bearer service="x""#), vec![]);
        assert_eq!(
            parse_challenges(r#"bearer realm=http://a/b , service=svc"#),
            vec![Challenge::Bearer {
                realm: "http://a/b".into(),
                service: Some("svc".into()),
                scope: None
            }]
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="a \"quoted\" realm""#),
            vec![Challenge::Basic {
                realm: "a \"quoted\" realm".into()
            }]
        );
    }
}
