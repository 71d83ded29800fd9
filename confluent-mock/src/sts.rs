//! Confluent's Security Token Service, `POST /sts/v1/oauth2/token`
//! (`confluent-client/openapi/sts-v1-oauth.openapi.yaml`): a subject JWT of an identity pool's
//! provider for a short-lived, opaque access token that then authenticates `/iam/v2` calls as
//! `Bearer`.
//!
//! What the mock checks, and its choices where the contract is silent (the openapi README's "What
//! the spec leaves open"):
//! - no `Authorization` header (the operation declares no security): 400 `invalid_request`;
//! - the form: each field present once, the three URNs exactly, `expires_in` 1..=900 (default
//!   900): 400 `invalid_request`, or `unsupported_grant_type` for another `grant_type`;
//! - the subject JWT: three base64url parts whose payload is JSON with `aud` (a string, or a list
//!   holding it) equal to the pool's audience, `exp` in the future, and `sub` equal to the pool's
//!   subject when the pool names one: 400 `invalid_grant` otherwise. **The signature is not
//!   checked**: the mock has no issuer keys, and what it tests is the operator's side of the
//!   exchange, not Confluent's verification;
//! - the pool: unknown is 400 `invalid_grant`; revoked ([`crate::MockHandle::revoke_sts_pool`]) is
//!   401 `invalid_grant`, and the tokens it issued answer 401 on `/iam/v2` from then on;
//! - tokens live [`crate::MockConfig::sts_token_lifetime`] (or less when asked): an expired or
//!   unknown one answers 401 like a bad API key. They start with [`TOKEN_PREFIX`], so that a
//!   leak check can find them in logs.
//!
//! The handler, [`super::sts_api`], reads the form (the first two checks) and renders refusals
//! with the contract's `Failure` body. Exchanges are counted by result
//! ([`StsExchanges`]), not in [`crate::CallCounts`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::auth::{Caller, principal_id};

/// The exchange's path.
pub const TOKEN_PATH: &str = "/sts/v1/oauth2/token";
/// Every token the mock issues starts so: recognisable by a leak check.
pub const TOKEN_PREFIX: &str = "cio-mock-sts-";
/// The longest (and default) lifetime of a token.
pub const MAX_LIFETIME_SECS: u64 = 900;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// An identity pool: whose subject JWTs it exchanges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StsPool {
    /// `pool-…`, the exchange's `identity_pool_id`.
    pub id: String,
    /// The `aud` a subject JWT must carry (e.g. `confluent`).
    pub audience: String,
    /// The `sub` it must carry, when set (e.g. `system:serviceaccount:ns:sa`).
    pub subject: Option<String>,
}

/// Exchanges by result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StsExchanges {
    /// A token was issued.
    pub issued: u64,
    /// 400 `invalid_request`: a field missing, repeated or out of range.
    pub invalid_request: u64,
    /// 400 `unsupported_grant_type`.
    pub unsupported_grant_type: u64,
    /// 400/401 `invalid_grant`: the subject JWT or the pool refused.
    pub invalid_grant: u64,
}

impl StsExchanges {
    /// Every exchange answered by the handler.
    pub fn total(&self) -> u64 {
        self.issued + self.invalid_request + self.unsupported_grant_type + self.invalid_grant
    }
}

#[derive(Debug)]
struct Issued {
    pool: String,
    expires_at: Instant,
}

/// The STS's state: pools, live tokens, counters, and each issue: when, and to which `sub`
/// (empty when absent).
#[derive(Debug)]
pub(crate) struct StsState {
    pools: HashMap<String, (StsPool, bool)>,
    tokens: HashMap<String, Issued>,
    lifetime: Duration,
    counts: StsExchanges,
    issues: Vec<(Instant, String)>,
}

impl StsState {
    pub(crate) fn new(pools: &[StsPool], lifetime: Duration) -> Self {
        Self {
            pools: pools
                .iter()
                .map(|p| (p.id.clone(), (p.clone(), false)))
                .collect(),
            tokens: HashMap::new(),
            lifetime: clamp(lifetime),
            counts: StsExchanges::default(),
            issues: Vec::new(),
        }
    }

    pub(crate) fn set_pool(&mut self, pool: StsPool) {
        self.pools.insert(pool.id.clone(), (pool, false));
    }

    /// Revokes (or restores) a pool; `false` when there is no such pool.
    pub(crate) fn set_revoked(&mut self, id: &str, revoked: bool) -> bool {
        match self.pools.get_mut(id) {
            Some((_, r)) => {
                *r = revoked;
                true
            }
            None => false,
        }
    }

    pub(crate) fn set_lifetime(&mut self, lifetime: Duration) {
        self.lifetime = clamp(lifetime);
    }

    pub(crate) fn counts(&self) -> StsExchanges {
        self.counts.clone()
    }

    pub(crate) fn subjects(&self) -> Vec<String> {
        self.issues.iter().map(|(_, sub)| sub.clone()).collect()
    }

    pub(crate) fn issued_at(&self) -> Vec<Instant> {
        self.issues.iter().map(|(at, _)| *at).collect()
    }

    pub(crate) fn reset_counts(&mut self) {
        self.counts = StsExchanges::default();
        self.issues.clear();
    }

    /// The caller a live token stands for: one principal and one rate-limit bucket per pool,
    /// whichever token of it is used.
    pub(crate) fn authenticate(&mut self, token: &str, now: Instant) -> Option<Caller> {
        if !token.starts_with(TOKEN_PREFIX) {
            return None;
        }
        self.tokens.retain(|_, t| t.expires_at > now);
        let issued = self.tokens.get(token)?;
        let (_, revoked) = self.pools.get(&issued.pool)?;
        if *revoked {
            return None;
        }
        Some(Caller {
            user_id: principal_id("pool", &issued.pool),
            bucket: format!("pool:{}", issued.pool),
            org_id: None,
        })
    }

    /// Answers one exchange of `form` (or its refusal, when the form could not be read) and
    /// counts it by result.
    pub(crate) fn answer(
        &mut self,
        form: Result<HashMap<String, String>, Refusal>,
        now: Instant,
    ) -> Result<Reply, Refusal> {
        let answer = form.and_then(|form| self.exchange(&form, now));
        match &answer {
            Ok(_) => self.counts.issued += 1,
            Err(r) => match r.code {
                "invalid_request" => self.counts.invalid_request += 1,
                "unsupported_grant_type" => self.counts.unsupported_grant_type += 1,
                _ => self.counts.invalid_grant += 1,
            },
        }
        answer
    }

    fn exchange(&mut self, form: &HashMap<String, String>, now: Instant) -> Result<Reply, Refusal> {
        let field = |name: &str| -> Result<&str, Refusal> {
            form.get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Refusal::request(format!("{name} is required")))
        };
        let grant = field("grant_type")?;
        if grant != GRANT_TYPE {
            return Err(Refusal {
                status: StatusCode::BAD_REQUEST,
                code: "unsupported_grant_type",
                detail: format!("grant_type must be {GRANT_TYPE}"),
            });
        }
        for (name, want) in [
            ("subject_token_type", JWT),
            ("requested_token_type", ACCESS_TOKEN),
        ] {
            if field(name)? != want {
                return Err(Refusal::request(format!("{name} must be {want}")));
            }
        }
        let pool_id = field("identity_pool_id")?;
        let subject = field("subject_token")?;
        let lifetime = match form.get("expires_in") {
            None => MAX_LIFETIME_SECS,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=MAX_LIFETIME_SECS).contains(s))
                .ok_or_else(|| {
                    Refusal::request(format!(
                        "expires_in must be a number of seconds from 1 to {MAX_LIFETIME_SECS}"
                    ))
                })?,
        };
        let Some((pool, revoked)) = self.pools.get(pool_id) else {
            return Err(Refusal::grant(format!(
                "identity pool {pool_id} does not exist"
            )));
        };
        if *revoked {
            return Err(Refusal {
                status: StatusCode::UNAUTHORIZED,
                code: "invalid_grant",
                detail: format!("identity pool {pool_id} does not allow this exchange"),
            });
        }
        let claims = claims(subject)?;
        let aud_ok = match &claims.aud {
            Some(Audience::One(a)) => *a == pool.audience,
            Some(Audience::Many(list)) => list.contains(&pool.audience),
            None => false,
        };
        if !aud_ok {
            return Err(Refusal::grant(format!(
                "the subject token's aud is not {:?}",
                pool.audience
            )));
        }
        let unix_now = jiff::Timestamp::now().as_second();
        if claims.exp.is_none_or(|exp| exp <= unix_now) {
            return Err(Refusal::grant("the subject token has expired".into()));
        }
        if let Some(want) = &pool.subject
            && claims.sub.as_deref() != Some(want.as_str())
        {
            return Err(Refusal::grant(format!(
                "the subject token's sub is not {want:?}"
            )));
        }
        let lifetime = Duration::from_secs(lifetime).min(self.lifetime);
        let token = format!(
            "{TOKEN_PREFIX}{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        self.tokens.retain(|_, t| t.expires_at > now);
        self.tokens.insert(
            token.clone(),
            Issued {
                pool: pool_id.to_owned(),
                expires_at: now + lifetime,
            },
        );
        self.issues.push((now, claims.sub.unwrap_or_default()));
        Ok(Reply {
            access_token: token,
            issued_token_type: ACCESS_TOKEN,
            token_type: "Bearer",
            // whole seconds, as the contract's int32; a sub-second mock lifetime says 1
            expires_in: lifetime.as_secs().max(1),
        })
    }
}

fn clamp(lifetime: Duration) -> Duration {
    lifetime.clamp(
        Duration::from_millis(100),
        Duration::from_secs(MAX_LIFETIME_SECS),
    )
}

/// An issued token, as the contract's answer.
#[derive(Serialize)]
pub(crate) struct Reply {
    access_token: String,
    issued_token_type: &'static str,
    token_type: &'static str,
    pub(crate) expires_in: u64,
}

/// A refused exchange: the status and the contract's error code, with why.
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) detail: String,
}

impl Refusal {
    pub(crate) fn request(detail: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            detail,
        }
    }

    fn grant(detail: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_grant",
            detail,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    aud: Option<Audience>,
    exp: Option<i64>,
    sub: Option<String>,
}

/// The payload of a JWT, decoded without checking its signature (see the module's doc).
fn claims(jwt: &str) -> Result<Claims, Refusal> {
    let bad = || Refusal::grant("the subject token is not a JWT".into());
    let mut parts = jwt.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: serde_json::Value) -> String {
        let enc = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.{}",
            enc(br#"{"alg":"RS256"}"#),
            enc(payload.to_string().as_bytes()),
            enc(b"not-checked")
        )
    }

    fn form(subject: &str, pool: &str, expires_in: Option<&str>) -> HashMap<String, String> {
        let mut f: HashMap<String, String> = [
            ("grant_type", GRANT_TYPE),
            ("subject_token", subject),
            ("identity_pool_id", pool),
            ("subject_token_type", JWT),
            ("requested_token_type", ACCESS_TOKEN),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Some(e) = expires_in {
            f.insert("expires_in".into(), e.into());
        }
        f
    }

    fn state() -> StsState {
        StsState::new(
            &[StsPool {
                id: "pool-a".into(),
                audience: "confluent".into(),
                subject: Some("system:serviceaccount:ns:sa".into()),
            }],
            Duration::from_secs(5),
        )
    }

    fn good() -> String {
        let exp = jiff::Timestamp::now().as_second() + 600;
        jwt(
            serde_json::json!({"aud": ["confluent"], "exp": exp, "sub": "system:serviceaccount:ns:sa"}),
        )
    }

    #[test]
    fn a_good_subject_gets_a_token_of_the_configured_lifetime() {
        let mut s = state();
        let now = Instant::now();
        let r = s
            .exchange(&form(&good(), "pool-a", Some("900")), now)
            .ok()
            .unwrap();
        assert!(r.access_token.starts_with(TOKEN_PREFIX));
        assert_eq!(
            r.expires_in, 5,
            "the mock's lifetime caps the one asked for"
        );
        assert!(s.authenticate(&r.access_token, now).is_some());
        assert!(
            s.authenticate(&r.access_token, now + Duration::from_secs(6))
                .is_none()
        );
        assert_eq!(s.subjects(), ["system:serviceaccount:ns:sa"]);
    }

    #[test]
    fn every_field_and_claim_is_checked() {
        let mut s = state();
        let now = Instant::now();
        let exp = jiff::Timestamp::now().as_second() + 600;
        let code = |s: &mut StsState, f: HashMap<String, String>| {
            s.exchange(&f, now)
                .err()
                .map(|r| (r.status.as_u16(), r.code))
        };
        let mut f = form(&good(), "pool-a", None);
        f.insert("grant_type".into(), "client_credentials".into());
        assert_eq!(code(&mut s, f), Some((400, "unsupported_grant_type")));
        for field in ["subject_token_type", "requested_token_type"] {
            let mut f = form(&good(), "pool-a", None);
            f.insert(field.into(), "urn:other".into());
            assert_eq!(code(&mut s, f), Some((400, "invalid_request")), "{field}");
            let mut f = form(&good(), "pool-a", None);
            f.remove(field);
            assert_eq!(code(&mut s, f), Some((400, "invalid_request")), "{field}");
        }
        for e in ["0", "901", "-1", "x"] {
            assert_eq!(
                code(&mut s, form(&good(), "pool-a", Some(e))),
                Some((400, "invalid_request")),
                "{e}"
            );
        }
        assert_eq!(
            code(&mut s, form(&good(), "pool-b", None)),
            Some((400, "invalid_grant"))
        );
        for bad in [
            jwt(
                serde_json::json!({"aud": "other", "exp": exp, "sub": "system:serviceaccount:ns:sa"}),
            ),
            jwt(
                serde_json::json!({"aud": "confluent", "exp": 1, "sub": "system:serviceaccount:ns:sa"}),
            ),
            jwt(
                serde_json::json!({"aud": "confluent", "exp": exp, "sub": "system:serviceaccount:ns:other"}),
            ),
            "not-a-jwt".into(),
        ] {
            assert_eq!(
                code(&mut s, form(&bad, "pool-a", None)),
                Some((400, "invalid_grant"))
            );
        }
        assert!(s.set_revoked("pool-a", true));
        assert_eq!(
            code(&mut s, form(&good(), "pool-a", None)),
            Some((401, "invalid_grant"))
        );
        assert!(s.set_revoked("pool-a", false));
        assert_eq!(code(&mut s, form(&good(), "pool-a", None)), None);
    }

    #[test]
    fn a_revoked_pool_s_tokens_stop_working() {
        let mut s = state();
        let now = Instant::now();
        let r = s
            .exchange(&form(&good(), "pool-a", None), now)
            .ok()
            .unwrap();
        s.set_revoked("pool-a", true);
        assert!(s.authenticate(&r.access_token, now).is_none());
        s.set_revoked("pool-a", false);
        assert!(s.authenticate(&r.access_token, now).is_some());
        assert!(s.authenticate("cio-mock-sts-unknown", now).is_none());
    }
}
