//! Credentials for Confluent Cloud: a Cloud API key (HTTP Basic), an OAuth access token
//! (Bearer), possibly read from a file that is re-read when it changes (STS tokens are
//! short-lived and rotated by whoever writes the file), or keyless: a subject JWT the client
//! exchanges for short-lived access tokens itself ([`super::sts`]).
//!
//! Secret material lives in [`secrecy::SecretString`] so that `Debug` never shows it, and the
//! `Authorization` header built from it is marked sensitive so HTTP-level tracing hides it too.

use std::path::PathBuf;
use std::time::SystemTime;

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use parking_lot::{Mutex, MutexGuard};
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

use super::error::Error;
use super::sts::{Sts, SubjectTokenFile, SubjectTokenSource};

/// Where a Confluent client's identity comes from.
pub enum Credentials {
    /// A Cloud API key: key id as user name, key secret as password.
    ApiKey { key: String, secret: SecretString },
    /// A fixed OAuth access token (e.g. from a Kubernetes Secret's `accessToken`).
    Token(SecretString),
    /// An OAuth access token in a file, re-read whenever its modification time changes.
    TokenFile(TokenFile),
    /// Keyless: access tokens from Confluent's STS for a subject JWT, exchanged by the client
    /// that holds this credential, before every expiry.
    Sts(Sts),
}

impl Credentials {
    /// A Cloud API key pair.
    pub fn api_key(key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self::ApiKey {
            key: key.into(),
            secret: SecretString::from(secret.into()),
        }
    }

    /// A fixed bearer token.
    pub fn token(token: impl Into<String>) -> Self {
        Self::Token(SecretString::from(token.into()))
    }

    /// A bearer token read from `path` (lazily, and again whenever the file changes).
    pub fn token_file(path: impl Into<PathBuf>) -> Self {
        Self::TokenFile(TokenFile {
            path: path.into(),
            cached: Mutex::new(None),
        })
    }

    /// Keyless credentials of identity pool `pool`, exchanging the JWT in `path` (re-read before
    /// every exchange) for tokens living `lifetime`.
    pub fn sts_file(
        pool: impl Into<String>,
        path: impl Into<PathBuf>,
        lifetime: std::time::Duration,
    ) -> Self {
        Self::Sts(Sts::new(
            pool,
            std::sync::Arc::new(SubjectTokenFile::new(path)),
            lifetime,
        ))
    }

    /// Keyless credentials with a subject JWT from any source (e.g. minted by the operator).
    pub fn sts(
        pool: impl Into<String>,
        source: std::sync::Arc<dyn SubjectTokenSource>,
        lifetime: std::time::Duration,
    ) -> Self {
        Self::Sts(Sts::new(pool, source, lifetime))
    }

    /// A stable, non-secret name for this identity: what Confluent sees of it, the API key id,
    /// else a digest of the token (the first 16 hex digits of its SHA-256: two tokens, of two
    /// organizations perhaps, are two identities, and the token itself is never shown), or the
    /// token file path, or for keyless credentials the pool and where the subject token comes
    /// from (never the token of the moment). Names the credential in logs, and keys what is learnt of it (its
    /// organization). Two credentials of one identity may still differ ([`Self::same_as`]: a
    /// fixed API secret).
    pub fn identity(&self) -> String {
        match self {
            Self::ApiKey { key, .. } => format!("api-key:{key}"),
            Self::Token(t) => format!("token:{}", token_digest(t.expose_secret())),
            Self::TokenFile(f) => format!("token-file:{}", f.path.display()),
            // the pool and where the subject comes from: never the token of the moment, so a
            // refresh keeps the client, its limiter and its snapshot
            Self::Sts(s) => format!("sts:{}:{}", s.pool(), s.source_name()),
        }
    }

    /// Whether two credentials are the same (compared in memory, never printed).
    pub fn same_as(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::ApiKey { key, secret }, Self::ApiKey { key: k, secret: s }) => {
                key == k && secret.expose_secret() == s.expose_secret()
            }
            (Self::Token(a), Self::Token(b)) => a.expose_secret() == b.expose_secret(),
            (Self::TokenFile(a), Self::TokenFile(b)) => a.path == b.path,
            (Self::Sts(a), Self::Sts(b)) => {
                a.pool() == b.pool()
                    && a.source_name() == b.source_name()
                    && a.lifetime() == b.lifetime()
            }
            _ => false,
        }
    }

    /// The `Authorization` header value, marked sensitive. Keyless credentials have none of
    /// their own: their client exchanges the subject JWT first ([`Error::Config`] here).
    pub async fn authorization(&self) -> Result<HeaderValue, Error> {
        let raw = match self {
            Self::Sts(_) => {
                return Err(Error::Config(
                    "an STS credential's token is exchanged by its client".into(),
                ));
            }
            Self::ApiKey { key, secret } => {
                let pair = format!("{key}:{}", secret.expose_secret());
                format!("Basic {}", BASE64_STANDARD.encode(pair))
            }
            Self::Token(t) => format!("Bearer {}", t.expose_secret()),
            Self::TokenFile(f) => format!("Bearer {}", f.current().await?.expose_secret()),
        };
        sensitive_header(&raw)
    }
}

/// A header value marked sensitive (HTTP-level tracing hides it); the error never shows it.
pub(crate) fn sensitive_header(raw: &str) -> Result<HeaderValue, Error> {
    let mut value = HeaderValue::from_str(raw).map_err(|_| {
        Error::Config("credentials contain characters not allowed in a header".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// The first 16 hex digits (64 bits) of the token's SHA-256: enough to tell the tokens of one
/// operator apart, and no way back to the token.
fn token_digest(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ApiKey { key, .. } => f
                .debug_struct("ApiKey")
                .field("key", key)
                .field("secret", &"[redacted]")
                .finish(),
            Self::Token(_) => f.write_str("Token([redacted])"),
            Self::TokenFile(t) => f.debug_tuple("TokenFile").field(&t.path).finish(),
            Self::Sts(s) => f
                .debug_struct("Sts")
                .field("pool", &s.pool())
                .field("subject", &s.source_name())
                .field("lifetime", &s.lifetime())
                .finish(),
        }
    }
}

/// A token file and the last token read from it, keyed by the file's modification time.
pub struct TokenFile {
    path: PathBuf,
    cached: Mutex<Option<(SystemTime, SecretString)>>,
}

impl TokenFile {
    async fn current(&self) -> Result<SecretString, Error> {
        let unreadable =
            |e: std::io::Error| Error::Config(format!("token file {}: {e}", self.path.display()));
        let modified = tokio::fs::metadata(&self.path)
            .await
            .and_then(|m| m.modified())
            .map_err(unreadable)?;
        if let Some((at, token)) = &*self.lock()
            && *at == modified
        {
            return Ok(token.clone());
        }
        let text = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(unreadable)?;
        let token = text.trim();
        if token.is_empty() {
            return Err(Error::Config(format!(
                "token file {} is empty",
                self.path.display()
            )));
        }
        let token = SecretString::from(token.to_owned());
        *self.lock() = Some((modified, token.clone()));
        Ok(token)
    }

    fn lock(&self) -> MutexGuard<'_, Option<(SystemTime, SecretString)>> {
        self.cached.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn basic_header_is_sensitive_and_debug_hides_the_secret() {
        let c = Credentials::api_key("KEY", "s3cr3t-value");
        let h = c.authorization().await.unwrap();
        assert!(h.is_sensitive());
        assert_eq!(h.to_str().unwrap(), "Basic S0VZOnMzY3IzdC12YWx1ZQ==");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(!format!("{:?}", Credentials::token("tok-secret")).contains("tok-secret"));
    }

    #[tokio::test]
    async fn token_file_is_reread_when_it_changes() {
        let dir = std::env::temp_dir().join(format!("cio-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "first\n").unwrap();
        let c = Credentials::token_file(&path);
        assert_eq!(c.authorization().await.unwrap(), "Bearer first");
        // make sure the modification time moves even on coarse-grained file systems
        std::fs::write(&path, "second").unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(c.authorization().await.unwrap(), "Bearer second");
        std::fs::write(&path, "  ").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later + std::time::Duration::from_secs(5))
            .unwrap();
        assert!(matches!(c.authorization().await, Err(Error::Config(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_changed_secret_is_another_credential_with_the_same_identity() {
        let old = Credentials::api_key("K", "s1");
        assert!(old.same_as(&Credentials::api_key("K", "s1")));
        let fixed = Credentials::api_key("K", "s2");
        assert!(!old.same_as(&fixed));
        assert_eq!(
            old.identity(),
            fixed.identity(),
            "logs still name the key id"
        );
        assert!(!old.same_as(&Credentials::api_key("K2", "s1")));
        assert!(Credentials::token("t").same_as(&Credentials::token("t")));
        assert!(!Credentials::token("t").same_as(&Credentials::token("u")));
        assert!(!Credentials::token("s1").same_as(&old));
    }

    #[test]
    fn a_token_is_named_by_a_digest_never_by_itself() {
        let a = Credentials::token("tok-of-org-a");
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223…
        assert_eq!(
            Credentials::token("abc").identity(),
            "token:ba7816bf8f01cfea"
        );
        assert_eq!(a.identity(), Credentials::token("tok-of-org-a").identity());
        assert_ne!(
            a.identity(),
            Credentials::token("tok-of-org-b").identity(),
            "two tokens are two identities, so nothing learnt of one is taken for the other"
        );
        assert!(!a.identity().contains("tok-of-org-a"));
        assert_eq!(
            Credentials::api_key("K", "s").identity(),
            "api-key:K",
            "an API key is named by its id"
        );
    }
}
