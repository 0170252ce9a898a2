//! Who is calling and what they may do. A caller sends `Authorization: Bearer <token>`:
//! an API key (the gateway keeps only SHA-256 hashes of them) or a JWT (HS256 against a
//! secret, RS256/ES256 against a JWKS file or URL), each carrying scopes. Every route
//! under `/api` needs one scope; `admin` holds them all. Health, metrics and the API
//! document stay open.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::Request,
    http::{HeaderMap, header, uri::Authority},
    middleware::Next,
    response::{IntoResponse, Response},
};
use crm_platform::settings::constant_time_eq;
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode, decode_header,
    jwk::{Jwk, JwkSet},
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{error::Error, rate_limit::RateLimit, settings::Settings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    CustomersRead,
    CustomersWrite,
    EventsWrite,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::CustomersRead,
        Scope::CustomersWrite,
        Scope::EventsWrite,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CustomersRead => "customers:read",
            Scope::CustomersWrite => "customers:write",
            Scope::EventsWrite => "events:write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's name or the token's subject: what logs and rate limits go by.
    pub name: String,
    pub scopes: Vec<Scope>,
}

impl Principal {
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&scope)
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex SHA-256 of an API key: what the gateway's configuration holds.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

#[derive(Debug)]
struct ApiKey {
    name: String,
    sha256: [u8; 32],
    scopes: Vec<Scope>,
}

fn decode_sha256(text: &str) -> Option<[u8; 32]> {
    let mut hash = [0u8; 32];
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    for (byte, pair) in hash.iter_mut().zip(text.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(hash)
}

/// Entries `name:sha256-hex:scope,scope`, one per line or separated by `;`; `#` starts
/// a comment.
fn parse_keys(text: &str) -> Result<Vec<ApiKey>, String> {
    text.split(['\n', ';'])
        .map(|entry| entry.split('#').next().unwrap_or_default().trim())
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let mut parts = entry.splitn(3, ':');
            let (Some(name), Some(sha256), Some(scopes)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(format!(
                    "API key entry {:?}: expected name:sha256-hex:scope,scope",
                    entry.split(':').next().unwrap_or_default()
                ));
            };
            let sha256 = decode_sha256(sha256.trim()).ok_or_else(|| {
                format!("API key {name:?}: the hash must be 64 hex digits (SHA-256)")
            })?;
            let scopes = parse_scopes(scopes.split(',').map(str::trim))
                .map_err(|bad| format!("API key {name:?}: unknown scope {bad:?}"))?;
            Ok(ApiKey {
                name: name.trim().to_owned(),
                sha256,
                scopes,
            })
        })
        .collect()
}

fn parse_scopes<'a>(texts: impl Iterator<Item = &'a str>) -> Result<Vec<Scope>, String> {
    texts
        .filter(|s| !s.is_empty())
        .map(|s| Scope::parse(s).ok_or_else(|| s.to_owned()))
        .collect()
}

/// The JWKS is fetched again for an unknown key id at most this often.
const JWKS_REFRESH: Duration = Duration::from_secs(60);

/// The keys of a JWKS URL and when they were fetched.
struct FetchedKeys {
    url: String,
    keys: Mutex<(JwkSet, Instant)>,
}

struct Jwt {
    hs256: Option<DecodingKey>,
    /// From `CRM_JWT_JWKS_FILE`: they stay whatever the URL serves.
    file_keys: JwkSet,
    url_keys: Option<FetchedKeys>,
    issuer: Option<String>,
    audience: Option<String>,
    scope_claim: String,
}

async fn fetch_jwks(url: &str) -> Result<JwkSet, String> {
    let answer = reqwest_tls::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| format!("cannot fetch the JWKS at {url}: {e}"))?;
    answer
        .error_for_status()
        .map_err(|e| format!("cannot fetch the JWKS at {url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("the JWKS at {url} is not a key set: {e}"))
}

impl Jwt {
    async fn key(&self, alg: Algorithm, kid: Option<&str>) -> Option<DecodingKey> {
        if alg == Algorithm::HS256 {
            return self.hs256.clone();
        }
        if !matches!(alg, Algorithm::RS256 | Algorithm::ES256) {
            return None;
        }
        let find = |set: &JwkSet| -> Option<Jwk> {
            match kid {
                Some(kid) => set.find(kid).cloned(),
                None if set.keys.len() == 1 => set.keys.first().cloned(),
                None => None,
            }
        };
        let mut jwk = find(&self.file_keys);
        if let (None, Some(fetched)) = (&jwk, &self.url_keys) {
            let due = {
                let mut keys = fetched.keys.lock().expect("jwks");
                jwk = find(&keys.0);
                // A rotated key: fetch the set again, but not on every bad token.
                let due = jwk.is_none() && keys.1.elapsed() >= JWKS_REFRESH;
                if due {
                    keys.1 = Instant::now();
                }
                due
            };
            if due {
                match fetch_jwks(&fetched.url).await {
                    Ok(set) => {
                        jwk = find(&set);
                        fetched.keys.lock().expect("jwks").0 = set;
                    }
                    Err(error) => tracing::warn!(%error, "JWKS refresh failed"),
                }
            }
        }
        DecodingKey::from_jwk(&jwk?).ok()
    }

    async fn verify(&self, token: &str) -> Option<Principal> {
        let header = decode_header(token).ok()?;
        let key = self.key(header.alg, header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let claims: Value = decode(token, &key, &validation).ok()?.claims;
        Some(Principal {
            name: claims["sub"].as_str().unwrap_or("jwt").to_owned(),
            scopes: token_scopes(&claims[&self.scope_claim]),
        })
    }
}

/// The scopes a token's claim grants: a space-separated string or an array. Scopes of
/// other systems share the claim (`openid profile`): those are passed over, ours kept.
fn token_scopes(claim: &Value) -> Vec<Scope> {
    let texts: Vec<&str> = match claim {
        Value::String(text) => text.split_whitespace().collect(),
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    texts.into_iter().filter_map(Scope::parse).collect()
}

/// Checks bearer credentials against the configured keys and token issuers.
pub struct Authenticator {
    keys: Vec<ApiKey>,
    jwt: Option<Jwt>,
}

impl Authenticator {
    /// `None` when no credential of any kind is configured.
    pub async fn from_settings(settings: &Settings) -> Result<Option<Self>, String> {
        let mut keys = parse_keys(settings.api_keys.expose())?;
        if let Some(file) = &settings.api_keys_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read the API keys file {file:?}: {e}"))?;
            keys.extend(parse_keys(&text)?);
        }
        let hs256 = settings
            .jwt_hs256_secret
            .as_ref()
            .filter(|s| !s.expose().is_empty())
            .map(|s| DecodingKey::from_secret(s.expose().as_bytes()));
        let mut file_keys = JwkSet { keys: Vec::new() };
        if let Some(file) = &settings.jwt_jwks_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read the JWKS file {file:?}: {e}"))?;
            file_keys = serde_json::from_str(&text)
                .map_err(|e| format!("the JWKS file {file:?} is not a key set: {e}"))?;
        }
        let url_keys = match &settings.jwt_jwks_url {
            Some(url) => Some(FetchedKeys {
                url: url.clone(),
                keys: Mutex::new((fetch_jwks(url).await?, Instant::now())),
            }),
            None => None,
        };
        let any_jwks = !file_keys.keys.is_empty() || url_keys.is_some();
        let jwt = (hs256.is_some() || any_jwks).then(|| Jwt {
            hs256,
            file_keys,
            url_keys,
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            scope_claim: settings.jwt_scope_claim.clone(),
        });
        if keys.is_empty() && jwt.is_none() {
            return Ok(None);
        }
        Ok(Some(Self { keys, jwt }))
    }

    /// The caller a bearer token stands for; `None` for any token that is not valid.
    pub async fn authenticate(&self, token: &str) -> Option<Principal> {
        // A JWT has three dot-separated parts; an API key has none.
        if token.split('.').count() == 3 {
            return self.jwt.as_ref()?.verify(token).await;
        }
        let hash = Sha256::digest(token.as_bytes());
        self.keys
            .iter()
            .find(|key| constant_time_eq(&key.sha256, &hash))
            .map(|key| Principal {
                name: key.name.clone(),
                scopes: key.scopes.clone(),
            })
    }
}

/// Who may call and how often: what every route's authorization checks with
/// (`crate::policy`).
pub struct Guard {
    /// `None`: no credentials configured (the standalone binary on loopback).
    pub authenticator: Option<Authenticator>,
    pub limiter: Arc<dyn RateLimit>,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl Guard {
    /// The caller the request's credentials stand for: 401 for none or a bad one. With no
    /// credentials configured, everyone is an admin (allowed on loopback only).
    pub async fn caller(&self, headers: &HeaderMap) -> Result<Principal, Error> {
        let Some(authenticator) = &self.authenticator else {
            return Ok(Principal {
                name: "anonymous".into(),
                scopes: vec![Scope::Admin],
            });
        };
        let found = match bearer(headers) {
            Some(token) => authenticator.authenticate(token).await,
            None => None,
        };
        found.ok_or(Error::Unauthenticated)
    }

    /// 403 unless `principal` holds `scope`; then 429 when it is over its rate.
    pub async fn admit(&self, principal: &Principal, scope: Scope) -> Result<(), Error> {
        if !principal.may(scope) {
            tracing::info!(caller = %principal.name, scope = scope.as_str(), "forbidden");
            return Err(Error::Forbidden);
        }
        self.limiter
            .take(&principal.name)
            .await
            .map_err(Error::RateLimited)
    }
}

/// Without credentials the API is open to whoever reaches the listener, which is allowed
/// on loopback only. A web page on another site can still reach loopback through a name
/// that resolves to 127.0.0.1 (DNS rebinding); its requests carry that name as their
/// Host, so only loopback names and addresses are served.
pub async fn loopback_hosts_only(request: Request, next: Next) -> Response {
    let authority = request
        .uri()
        .authority()
        .map(|a| a.host().to_owned())
        .or_else(|| {
            let host = request.headers().get(header::HOST)?.to_str().ok()?;
            Some(host.parse::<Authority>().ok()?.host().to_owned())
        });
    match authority {
        Some(host) if is_loopback_host(&host) => next.run(request).await,
        other => {
            tracing::warn!(host = ?other, "refused a request for another host name");
            Error::MisdirectedHost.into_response()
        }
    }
}

/// `localhost` (and names below it) or a loopback address, as a Host header spells them.
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_keeps_our_scopes_among_other_systems_ones() {
        assert_eq!(
            token_scopes(&serde_json::json!("openid customers:read profile")),
            [Scope::CustomersRead]
        );
        assert_eq!(
            token_scopes(&serde_json::json!(["email", "admin", 7])),
            [Scope::Admin]
        );
        assert!(token_scopes(&serde_json::json!(null)).is_empty());
    }

    #[test]
    fn only_loopback_host_names_are_loopback() {
        for host in [
            "localhost",
            "LOCALHOST.",
            "app.localhost",
            "127.0.0.1",
            "127.3.2.1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "localhost.evil.example",
            "10.0.0.1",
            "[::2]",
            "0.0.0.0",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn admin_holds_every_scope() {
        let admin = Principal {
            name: "ops".into(),
            scopes: vec![Scope::Admin],
        };
        let reader = Principal {
            name: "web".into(),
            scopes: vec![Scope::CustomersRead],
        };
        assert!(Scope::ALL.iter().all(|s| admin.may(*s)));
        assert!(reader.may(Scope::CustomersRead) && !reader.may(Scope::CustomersWrite));
    }

    #[test]
    fn key_entries_are_checked() {
        let hash = hash_key("secret");
        let keys = parse_keys(&format!(
            "web:{hash}:customers:read # the shop\n;ops:{hash}:admin"
        ))
        .unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].scopes, [Scope::CustomersRead]);
        assert!(parse_keys("web:abc:admin").unwrap_err().contains("64 hex"));
        assert!(
            parse_keys(&format!("web:{hash}:root"))
                .unwrap_err()
                .contains("root")
        );
        assert!(parse_keys("just-a-key").is_err());
    }
}
