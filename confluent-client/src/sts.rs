//! Keyless credentials: a JWT from an external identity provider (for the operator, a projected
//! Kubernetes ServiceAccount token) exchanged at Confluent's Security Token Service for a
//! short-lived access token (`openapi/sts-v1-oauth.openapi.yaml`, RFC 8693 token exchange).
//!
//! Nothing long-lived is held: the subject JWT is asked of its [`SubjectTokenSource`] again
//! before every exchange (the kubelet rotates a projected token in place), and the access token
//! lives in memory only, replaced before it expires. One exchange runs at a time per credential,
//! so a burst of calls after expiry costs one exchange, not one each.
//!
//! Neither token is ever part of a `Debug` output, a log line or an error: errors carry the
//! server's words, and the identity names the pool and the source, never a token.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
/// Re-exported so that a [`SubjectTokenSource`] can be written without depending on `secrecy`.
pub use secrecy::SecretString;
use tokio::time::Instant;

use super::error::Error;

/// The exchange's path, below the endpoint.
pub const TOKEN_PATH: &str = "/sts/v1/oauth2/token";
/// `grant_type`: RFC 8693's token exchange, the only one the STS takes.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// `subject_token_type`: the only supported value.
pub const SUBJECT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// `requested_token_type`: the only supported value.
pub const REQUESTED_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The longest lifetime the STS issues (and the default it uses).
pub const MAX_LIFETIME: Duration = Duration::from_secs(900);
/// A token is replaced this long before it expires, unless its lifetime is short (see
/// [`refresh_after`]).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// The longest subject JWT read (a ServiceAccount token is about 1 KiB).
const MAX_SUBJECT_BYTES: usize = 64 * 1024;

/// Where the subject JWT comes from. Called before every exchange, so a rotated token is used
/// at once.
pub trait SubjectTokenSource: Send + Sync {
    /// A stable, non-secret name of the source (a file path, a ServiceAccount): part of the
    /// credential's identity, so a new subject JWT keeps the same client and limiter.
    fn name(&self) -> String;
    /// The subject JWT of the moment.
    fn subject_token(&self) -> BoxFuture<'_, Result<SecretString, Error>>;
}

/// A subject JWT in a file (a projected ServiceAccount token), read again before every exchange.
pub struct SubjectTokenFile {
    path: PathBuf,
}

impl SubjectTokenFile {
    /// The JWT in `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl SubjectTokenSource for SubjectTokenFile {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn subject_token(&self) -> BoxFuture<'_, Result<SecretString, Error>> {
        Box::pin(async move {
            let text = tokio::fs::read_to_string(&self.path).await.map_err(|e| {
                Error::Config(format!("subject token file {}: {e}", self.path.display()))
            })?;
            checked_subject(&text, &self.name())
        })
    }
}

/// The trimmed JWT, refused (without showing it) when empty, huge or not header-safe.
pub fn checked_subject(text: &str, source: &str) -> Result<SecretString, Error> {
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::Config(format!("subject token {source} is empty")));
    }
    if token.len() > MAX_SUBJECT_BYTES || token.chars().any(|c| c.is_control() || c == ' ') {
        return Err(Error::Config(format!(
            "subject token {source} does not look like a JWT (too long, spaces or control characters)"
        )));
    }
    Ok(SecretString::from(token.to_owned()))
}

/// When a token that lives `lifetime` is replaced: a minute early, or at half its lifetime when
/// that is short (a 5 s token is replaced after 2.5 s, so a call never carries one about to die).
pub fn refresh_after(lifetime: Duration) -> Duration {
    lifetime.saturating_sub(REFRESH_MARGIN).max(lifetime / 2)
}

/// A keyless credential: an identity pool and the source of the subject JWT exchanged for it.
pub struct Sts {
    pool: String,
    source: Arc<dyn SubjectTokenSource>,
    lifetime: Duration,
    /// The token of the moment. An async mutex, held across the exchange: the single flight.
    current: tokio::sync::Mutex<Option<Issued>>,
}

/// An access token the STS issued, and when to replace it.
pub(crate) struct Issued {
    pub(crate) token: SecretString,
    /// Tells this token from the ones before it, so a 401 drops only the token it met.
    pub(crate) generation: u64,
    pub(crate) refresh_at: Instant,
    pub(crate) expires_at: Instant,
}

impl Sts {
    /// Exchanges subject JWTs from `source` in `pool`, asking for tokens living `lifetime`
    /// (clamped to 1 s ..= [`MAX_LIFETIME`]).
    pub fn new(
        pool: impl Into<String>,
        source: Arc<dyn SubjectTokenSource>,
        lifetime: Duration,
    ) -> Self {
        Self {
            pool: pool.into(),
            source,
            lifetime: lifetime.clamp(Duration::from_secs(1), MAX_LIFETIME),
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// The identity pool.
    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// The subject source's name.
    pub fn source_name(&self) -> String {
        self.source.name()
    }

    /// The lifetime asked for.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    pub(crate) fn source(&self) -> &dyn SubjectTokenSource {
        self.source.as_ref()
    }

    pub(crate) fn current(&self) -> &tokio::sync::Mutex<Option<Issued>> {
        &self.current
    }

    /// Drops the token of `generation` (a 401 met it), unless a newer one replaced it already.
    pub(crate) async fn invalidate(&self, generation: u64) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|i| i.generation == generation) {
            *current = None;
        }
    }
}

/// The form of one exchange, `application/x-www-form-urlencoded` (built with the URL crate's
/// form serializer, which is exactly that encoding, so no other dependency is needed).
pub(crate) fn form(pool: &str, subject: &str, lifetime: Duration) -> Result<Vec<u8>, Error> {
    let mut scratch = reqwest::Url::parse("http://form.invalid/")
        .map_err(|e| Error::Config(format!("encoding the token exchange: {e}")))?;
    scratch
        .query_pairs_mut()
        .append_pair("grant_type", GRANT_TYPE)
        .append_pair("subject_token", subject)
        .append_pair("identity_pool_id", pool)
        .append_pair("subject_token_type", SUBJECT_TOKEN_TYPE)
        .append_pair("requested_token_type", REQUESTED_TOKEN_TYPE)
        .append_pair("expires_in", &lifetime.as_secs().to_string());
    Ok(scratch.query().unwrap_or_default().as_bytes().to_vec())
}

/// The STS's answer (all four fields required by the contract).
#[derive(serde::Deserialize)]
pub(crate) struct Reply {
    pub(crate) access_token: String,
    pub(crate) token_type: String,
    pub(crate) expires_in: i64,
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) issued_token_type: Option<String>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_is_a_minute_early_or_at_half_a_short_life() {
        assert_eq!(
            refresh_after(Duration::from_secs(900)),
            Duration::from_secs(840)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(120)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(5)),
            Duration::from_millis(2500)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(100)),
            Duration::from_secs(50)
        );
    }

    #[test]
    fn the_form_encodes_every_field_once() {
        let body =
            String::from_utf8(form("pool-1", "a.b+c/=", Duration::from_secs(5)).unwrap()).unwrap();
        assert_eq!(
            body,
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
             &subject_token=a.b%2Bc%2F%3D&identity_pool_id=pool-1\
             &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt\
             &requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token\
             &expires_in=5"
        );
    }

    #[test]
    fn a_subject_is_checked_without_being_shown() {
        assert!(checked_subject(" x.y.z\n", "f").is_ok());
        for bad in ["", "  ", "a b", "a\u{0}b"] {
            let e = checked_subject(bad, "f").err().unwrap().to_string();
            assert!(!bad.trim().is_empty() || e.contains("empty"), "{e}");
        }
    }

    #[test]
    fn lifetimes_are_clamped_to_the_contract() {
        struct Fixed;
        impl SubjectTokenSource for Fixed {
            fn name(&self) -> String {
                "fixed".into()
            }
            fn subject_token(&self) -> BoxFuture<'_, Result<SecretString, Error>> {
                Box::pin(async { Ok(SecretString::from("j")) })
            }
        }
        let s = Sts::new("p", Arc::new(Fixed), Duration::from_secs(3600));
        assert_eq!(s.lifetime(), MAX_LIFETIME);
        let s = Sts::new("p", Arc::new(Fixed), Duration::ZERO);
        assert_eq!(s.lifetime(), Duration::from_secs(1));
    }
}
