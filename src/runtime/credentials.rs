//! Which Confluent credentials an Invitation uses: the Secret its spec names (in its own
//! namespace, never another), else the operator's defaults. One client per credential, cached, so
//! calls made with the same key share one connection pool and one rate limiter.
//!
//! Messages name Secrets and keys, never values.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use parking_lot::Mutex;

use crate::reason;
use crate::runtime::service_account_token::{Minting, ServiceAccountToken};
use confluent_client::{ClientSettings, Credentials, Observer};

/// Keys of a credentials Secret.
pub const KEY_API_KEY: &str = "apiKey";
/// Keys of a credentials Secret.
pub const KEY_API_SECRET: &str = "apiSecret";
/// Keys of a credentials Secret.
pub const KEY_ACCESS_TOKEN: &str = "accessToken";
/// Keys of a keyless credentials Secret: the Confluent identity pool...
pub const KEY_IDENTITY_POOL_ID: &str = "identityPoolId";
/// ...and the ServiceAccount of the Secret's own namespace whose tokens it admits.
pub const KEY_SERVICE_ACCOUNT_NAME: &str = "serviceAccountName";

/// Why no usable credentials could be had.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No Secret was named and the operator has no defaults (or must not use them), or the
    /// named Secret does not exist.
    #[error("{0}")]
    Missing(String),
    /// The Secret exists but does not hold usable credentials.
    #[error("{0}")]
    Invalid(String),
    /// Reading the Secret failed for another reason (RBAC, API server down).
    #[error("reading Secret {namespace}/{name}: {source}")]
    Kube {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// The condition / Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing(_) => reason::CREDENTIALS_MISSING,
            Self::Invalid(_) => confluent_client::CREDENTIALS_INVALID,
            Self::Kube { .. } => reason::CREDENTIALS_UNREADABLE,
        }
    }
}

/// (namespace, name) of a Secret.
type SecretKey = (String, String);

/// Resolves and caches Confluent clients per credential.
pub struct CredentialStore {
    http: reqwest::Client,
    settings: ClientSettings,
    observer: Option<Arc<dyn Observer>>,
    default: Option<confluent_client::Client>,
    require_ref: bool,
    /// How keyless credentials Secrets get their subject tokens (`None`: such Secrets are
    /// refused, the operator was not started with `--allow-serviceaccount-tokens`).
    minting: Option<Minting>,
    /// (namespace, secret name) -> (Secret resourceVersion, client). Bounded by the number of
    /// distinct Secrets referenced; a changed Secret replaces its entry.
    by_secret: Mutex<HashMap<SecretKey, (Option<String>, confluent_client::Client)>>,
}

impl CredentialStore {
    /// A store using `default` for Invitations without `credentialsSecretRef` (unless
    /// `require_ref` forbids it).
    pub fn new(
        http: reqwest::Client,
        settings: ClientSettings,
        observer: Option<Arc<dyn Observer>>,
        default: Option<Credentials>,
        require_ref: bool,
    ) -> Self {
        let default = default.map(|c| {
            confluent_client::Client::new(http.clone(), settings.clone(), c, observer.clone())
        });
        Self {
            http,
            settings,
            observer,
            default,
            require_ref,
            minting: None,
            by_secret: Mutex::new(HashMap::new()),
        }
    }

    /// Lets credentials Secrets name a ServiceAccount whose tokens the operator mints
    /// (`--allow-serviceaccount-tokens`).
    pub fn with_minting(mut self, minting: Option<Minting>) -> Self {
        self.minting = minting;
        self
    }

    /// The client for an Invitation in `namespace` naming `secret` (or none).
    pub async fn client_for(
        &self,
        kube: &kube::Client,
        namespace: &str,
        secret: Option<&str>,
    ) -> Result<confluent_client::Client, Error> {
        let Some(name) = secret else {
            if self.require_ref {
                return Err(Error::Missing(
                    "spec.credentialsSecretRef is required: this operator runs with --require-credentials-ref".into(),
                ));
            }
            return self.default.clone().ok_or_else(|| {
                Error::Missing(
                    "no spec.credentialsSecretRef, and the operator has no default credentials (CONFLUENT_CLOUD_API_KEY/CONFLUENT_CLOUD_API_SECRET, CONFLUENT_CLOUD_ACCESS_TOKEN_FILE, or STS_IDENTITY_POOL_ID/STS_SUBJECT_TOKEN_FILE)".into(),
                )
            });
        };
        if !is_object_name(name) {
            return Err(Error::Invalid(format!(
                "spec.credentialsSecretRef.name {:?} is not a valid Secret name",
                confluent_client::error::bounded(name)
            )));
        }
        let api: Api<Secret> = Api::namespaced(kube.clone(), namespace);
        let secret = match api.get_opt(name).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Err(Error::Missing(format!(
                    "Secret {namespace}/{name} named by spec.credentialsSecretRef does not exist"
                )));
            }
            Err(source) => {
                return Err(Error::Kube {
                    namespace: namespace.into(),
                    name: name.into(),
                    source,
                });
            }
        };
        let key = (namespace.to_owned(), name.to_owned());
        let version = secret.metadata.resource_version.clone();
        if let Some((v, client)) = self.cache().get(&key)
            && *v == version
            && version.is_some()
        {
            return Ok(client.clone());
        }
        let credentials = match keyless_from(&secret, namespace, name)? {
            Some((pool, account)) => {
                let Some(minting) = &self.minting else {
                    return Err(Error::Invalid(format!(
                        "Secret {namespace}/{name} holds keyless credentials ({KEY_IDENTITY_POOL_ID} + {KEY_SERVICE_ACCOUNT_NAME}), but this operator mints ServiceAccount tokens only when started with --allow-serviceaccount-tokens"
                    )));
                };
                let source = ServiceAccountToken::new(kube.clone(), namespace, &account, minting);
                Credentials::sts(pool, Arc::new(source), minting.sts_lifetime)
            }
            None => credentials_from(&secret, namespace, name)?,
        };
        // Changed in something else (labels, an annotation): the same credential, whose client,
        // limiter and snapshot stay. Changed credentials: a new client, so nothing built with
        // the old secret (snapshot, limiter) is used again.
        if let Some((v, client)) = self.cache().get_mut(&key)
            && client.uses(&credentials)
        {
            *v = version;
            return Ok(client.clone());
        }
        let client = confluent_client::Client::new(
            self.http.clone(),
            self.settings.clone(),
            credentials,
            self.observer.clone(),
        );
        self.cache().insert(key, (version, client.clone()));
        Ok(client)
    }

    fn cache(
        &self,
    ) -> parking_lot::MutexGuard<'_, HashMap<SecretKey, (Option<String>, confluent_client::Client)>>
    {
        self.by_secret.lock()
    }
}

/// Whether `name` is a valid Kubernetes object name (DNS-1123 subdomain): the only names that
/// stay one path segment of the Secret's GET.
pub fn is_object_name(name: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label)
}

/// One key of a credentials Secret, trimmed: `None` when absent, refused (naming the key, never
/// the value) when empty, not UTF-8, oversized or with control characters.
fn secret_value(
    secret: &Secret,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<Option<String>, Error> {
    let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes.0.clone()).map_err(|_| {
        Error::Invalid(format!(
            "Secret {namespace}/{name}: key {key} is not UTF-8 text"
        ))
    })?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(Error::Invalid(format!(
            "Secret {namespace}/{name}: key {key} is empty"
        )));
    }
    if text.len() > 8192 || text.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "Secret {namespace}/{name}: key {key} does not look like a credential (too long or control characters)"
        )));
    }
    Ok(Some(text))
}

/// The identity pool and ServiceAccount of a keyless credentials Secret; `None` when the Secret
/// holds neither key. The ServiceAccount is one of the Secret's own namespace: a name, never a
/// `namespace/name`, so no Secret can have tokens minted for another namespace's account.
pub fn keyless_from(
    secret: &Secret,
    namespace: &str,
    name: &str,
) -> Result<Option<(String, String)>, Error> {
    let pool = secret_value(secret, namespace, name, KEY_IDENTITY_POOL_ID)?;
    let account = secret_value(secret, namespace, name, KEY_SERVICE_ACCOUNT_NAME)?;
    let (pool, account) = match (pool, account) {
        (None, None) => return Ok(None),
        (Some(pool), Some(account)) => (pool, account),
        _ => {
            return Err(Error::Invalid(format!(
                "Secret {namespace}/{name} must hold both {KEY_IDENTITY_POOL_ID} and {KEY_SERVICE_ACCOUNT_NAME}"
            )));
        }
    };
    for key in [KEY_API_KEY, KEY_API_SECRET, KEY_ACCESS_TOKEN] {
        if secret.data.as_ref().is_some_and(|d| d.contains_key(key)) {
            return Err(Error::Invalid(format!(
                "Secret {namespace}/{name} holds keyless credentials and {key}: keep one kind"
            )));
        }
    }
    let valid_pool = pool.len() <= 255
        && pool
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_pool {
        return Err(Error::Invalid(format!(
            "Secret {namespace}/{name}: {KEY_IDENTITY_POOL_ID} is not an identity pool id (pool-…)"
        )));
    }
    if !is_object_name(&account) {
        return Err(Error::Invalid(format!(
            "Secret {namespace}/{name}: {KEY_SERVICE_ACCOUNT_NAME} {:?} is not the name of a ServiceAccount of this namespace",
            confluent_client::error::bounded(&account)
        )));
    }
    Ok(Some((pool, account)))
}

/// Reads `apiKey`+`apiSecret` or `accessToken` out of a Secret.
pub fn credentials_from(
    secret: &Secret,
    namespace: &str,
    name: &str,
) -> Result<Credentials, Error> {
    let value = |key: &str| secret_value(secret, namespace, name, key);
    match (
        value(KEY_API_KEY)?,
        value(KEY_API_SECRET)?,
        value(KEY_ACCESS_TOKEN)?,
    ) {
        (Some(key), Some(secret), _) => Ok(Credentials::api_key(key, secret)),
        (None, None, Some(token)) => Ok(Credentials::token(token)),
        (Some(_), None, _) | (None, Some(_), _) => Err(Error::Invalid(format!(
            "Secret {namespace}/{name} must hold both {KEY_API_KEY} and {KEY_API_SECRET}"
        ))),
        (None, None, None) => Err(Error::Invalid(format!(
            "Secret {namespace}/{name} holds none of the keys {KEY_API_KEY}+{KEY_API_SECRET}, {KEY_ACCESS_TOKEN} or {KEY_IDENTITY_POOL_ID}+{KEY_SERVICE_ACCOUNT_NAME}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn reads_an_api_key_or_a_token() {
        let c = credentials_from(
            &secret(&[("apiKey", "K1"), ("apiSecret", "S1\n")]),
            "ns",
            "s",
        )
        .unwrap();
        assert_eq!(c.identity(), "api-key:K1");
        let c = credentials_from(&secret(&[("accessToken", "T")]), "ns", "s").unwrap();
        assert_eq!(c.identity(), "token");
    }

    #[test]
    fn keyless_secrets_name_a_pool_and_an_account_of_their_namespace() {
        let read = |pairs: &[(&str, &str)]| keyless_from(&secret(pairs), "ns", "s");
        assert_eq!(
            read(&[
                ("identityPoolId", "pool-a1"),
                ("serviceAccountName", "invite-bot")
            ])
            .unwrap(),
            Some(("pool-a1".into(), "invite-bot".into()))
        );
        assert_eq!(read(&[("apiKey", "K"), ("apiSecret", "S")]).unwrap(), None);
        for (pairs, want) in [
            (vec![("identityPoolId", "pool-a1")], "must hold both"),
            (
                vec![
                    ("identityPoolId", "pool-a1"),
                    ("serviceAccountName", "other/bot"),
                ],
                "not the name of a ServiceAccount of this namespace",
            ),
            (
                vec![("identityPoolId", "pool a1"), ("serviceAccountName", "bot")],
                "not an identity pool id",
            ),
            (
                vec![
                    ("identityPoolId", "pool-a1"),
                    ("serviceAccountName", "bot"),
                    ("accessToken", "T"),
                ],
                "keep one kind",
            ),
        ] {
            let e = read(&pairs).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
            assert_eq!(e.reason(), "CredentialsInvalid");
        }
    }

    #[test]
    fn wrong_or_empty_keys_are_explained_without_values() {
        for (pairs, want) in [
            (vec![("apiKey", "K1")], "must hold both"),
            (
                vec![("api_key", "K1"), ("secret", "S")],
                "holds none of the keys",
            ),
            (
                vec![("apiKey", ""), ("apiSecret", "S3CRET")],
                "key apiKey is empty",
            ),
            (vec![("accessToken", "a\u{0}b")], "control characters"),
        ] {
            let e = credentials_from(&secret(&pairs), "ns", "s").unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(want), "{msg}");
            assert!(!msg.contains("S3CRET") && !msg.contains("K1"), "{msg}");
            assert_eq!(e.reason(), "CredentialsInvalid");
        }
    }
}
