//! Authentication as the real API does it: HTTP Basic with a Cloud API key (key as user name,
//! secret as password) or an OAuth `Bearer` token. Each credential stands for one principal (a
//! user id that becomes the `creator` of what it creates) and owns one rate-limit bucket.
//!
//! Credential values are never logged or printed; `Debug` shows only counts.

use std::collections::HashMap;
use std::fmt;

use axum::http::HeaderValue;

use super::pagination::fnv1a32;

/// The authenticated principal of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The principal's user id (`u-…`), stable for the credential.
    pub user_id: String,
    /// The rate-limit bucket key: the API key id, or a digest of the token.
    pub bucket: String,
    /// The organization the credential belongs to when it is not the mock's main one.
    pub org_id: Option<String>,
}

/// The accepted credentials.
#[derive(Clone, Default)]
pub struct Credentials {
    /// API key id → (secret, principal user id, organization when not the main one).
    keys: HashMap<String, (String, String, Option<String>)>,
    /// Token → (principal user id, organization when not the main one).
    tokens: HashMap<String, (String, Option<String>)>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("api_keys", &self.keys.len())
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

/// A stable, non-reversible-looking user id for a credential.
pub fn principal_id(kind: &str, value: &str) -> String {
    let digest = fnv1a32(format!("{kind}:{value}").as_bytes());
    let mut n = u64::from(digest);
    let mut s = String::with_capacity(8);
    s.push_str("u-");
    for _ in 0..6 {
        let d = (n % 36) as u32;
        n /= 36;
        s.push(char::from_digit(d, 36).unwrap_or('0'));
    }
    s
}

impl Credentials {
    /// Builds the table from the configured key pairs and tokens.
    pub fn new(api_keys: &[(String, String)], tokens: &[String]) -> Self {
        Self {
            keys: api_keys
                .iter()
                .map(|(k, s)| (k.clone(), (s.clone(), principal_id("key", k), None)))
                .collect(),
            tokens: tokens
                .iter()
                .map(|t| (t.clone(), (principal_id("token", t), None)))
                .collect(),
        }
    }

    /// Replaces the accepted API keys of the main organization; tokens and other
    /// organizations' keys stay.
    pub fn set_api_keys(&mut self, api_keys: &[(String, String)]) {
        self.keys.retain(|_, (_, _, org)| org.is_some());
        for (k, s) in api_keys {
            self.keys
                .insert(k.clone(), (s.clone(), principal_id("key", k), None));
        }
    }

    /// Accepts the API keys and tokens of other organizations too.
    pub fn with_other_organizations(mut self, others: &[super::OtherOrganization]) -> Self {
        for o in others {
            for t in &o.tokens {
                self.tokens.insert(
                    t.clone(),
                    (principal_id("token", t), Some(o.org_id.clone())),
                );
            }
            self.keys.insert(
                o.api_key.clone(),
                (
                    o.api_secret.clone(),
                    principal_id("key", &o.api_key),
                    Some(o.org_id.clone()),
                ),
            );
        }
        self
    }

    /// Checks an `Authorization` header; `None` means 401.
    pub fn authenticate(&self, header: Option<&HeaderValue>) -> Option<Caller> {
        let value = header?.to_str().ok()?.trim();
        let (scheme, rest) = value.split_once(' ')?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = String::from_utf8(base64_decode(rest)?).ok()?;
            let (key, secret) = decoded.split_once(':')?;
            let (expected, user_id, org_id) = self.keys.get(key)?;
            (expected == secret).then(|| Caller {
                user_id: user_id.clone(),
                bucket: format!("key:{key}"),
                org_id: org_id.clone(),
            })
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let (user_id, org_id) = self.tokens.get(rest)?;
            Some(Caller {
                user_id: user_id.clone(),
                bucket: format!("token:{:08x}", fnv1a32(rest.as_bytes())),
                org_id: org_id.clone(),
            })
        } else {
            None
        }
    }
}

/// Decodes standard base64 (padding optional); `None` on any invalid character.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let s = s.trim_end_matches('=');
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new(
            &[("mock-key".into(), "mock-secret".into())],
            &["tok-1".into()],
        )
    }

    #[test]
    fn base64() {
        assert_eq!(
            base64_decode("bW9jay1rZXk6bW9jay1zZWNyZXQ=").unwrap(),
            b"mock-key:mock-secret"
        );
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI").unwrap(), b"ab");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("Y").is_none());
        assert!(base64_decode("Y*==").is_none());
    }

    #[test]
    fn basic_and_bearer() {
        let c = creds();
        let h = |s: &str| HeaderValue::from_str(s).unwrap();
        let basic = c
            .authenticate(Some(&h("Basic bW9jay1rZXk6bW9jay1zZWNyZXQ=")))
            .unwrap();
        assert!(basic.user_id.starts_with("u-"));
        assert_eq!(basic.bucket, "key:mock-key");
        // the same credential is always the same principal
        assert_eq!(
            c.authenticate(Some(&h("basic bW9jay1rZXk6bW9jay1zZWNyZXQ=")))
                .unwrap(),
            basic
        );
        let bearer = c.authenticate(Some(&h("Bearer tok-1"))).unwrap();
        assert_ne!(bearer.user_id, basic.user_id);
        assert!(!bearer.bucket.contains("tok-1"));
        // wrong secret, unknown token, other schemes, nothing
        assert!(
            c.authenticate(Some(&h("Basic bW9jay1rZXk6d3Jvbmc=")))
                .is_none()
        );
        assert!(c.authenticate(Some(&h("Bearer tok-2"))).is_none());
        assert!(c.authenticate(Some(&h("Digest x"))).is_none());
        assert!(c.authenticate(None).is_none());
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn a_token_of_another_organization_acts_there() {
        let c = creds().with_other_organizations(&[crate::OtherOrganization {
            api_key: "other-key".into(),
            api_secret: "other-secret".into(),
            org_id: "org-2".into(),
            tokens: vec!["tok-2".into()],
        }]);
        let h = |s: &str| HeaderValue::from_str(s).unwrap();
        let main = c.authenticate(Some(&h("Bearer tok-1"))).unwrap();
        let other = c.authenticate(Some(&h("Bearer tok-2"))).unwrap();
        assert_eq!(main.org_id, None);
        assert_eq!(other.org_id.as_deref(), Some("org-2"));
        assert_ne!(other.user_id, main.user_id);
        assert_ne!(other.bucket, main.bucket, "a bucket of its own");
        assert!(!format!("{c:?}").contains("tok-2"));
    }
}
