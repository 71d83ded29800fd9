//! Which Confluent credentials an Invitation uses: the Secret its spec names (in its own
//! namespace, never another), else the operator's defaults. One client per credential, whatever
//! holds it: a credential is what Confluent sees (an API key id and its secret, or a token), not
//! the Secret, so every Secret holding the same one, and the defaults, share one client, hence
//! one rate limiter (Confluent's budget is the key's, not the Secret's), one snapshot and one set
//! of role-binding lists (keyed by [`confluent_client::Client::key`]). A key whose secret differs
//! in two Secrets (rotated in one only) is two credentials, two clients.
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
    /// How keyless credentials Secrets get their subject tokens, and the Kubernetes client
    /// minting them (`None`: such Secrets are refused, the operator was not started with
    /// `--allow-serviceaccount-tokens`).
    minting: Option<(Minting, kube::Client)>,
    /// (namespace, secret name) -> (Secret resourceVersion, client). Secrets holding the same
    /// credentials hold clones of one client, found among the others' (and the default) when a
    /// Secret is read with credentials new to it; nothing else holds a client here, so one that
    /// no entry (and not the default) holds is gone with the last entry. Bounded by the Secrets
    /// referenced: a changed Secret replaces its entry, a missing or broken one loses it, and
    /// [`Self::retain_secrets`] drops those no resource names any more.
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

    /// Lets credentials Secrets name a ServiceAccount whose tokens the operator mints with
    /// `kube` (`--allow-serviceaccount-tokens`).
    pub fn with_minting(mut self, minting: Option<Minting>, kube: &kube::Client) -> Self {
        self.minting = minting.map(|m| (m, kube.clone()));
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
        match api.get_opt(name).await {
            Ok(Some(s)) => self.client_of_secret(namespace, name, &s),
            Ok(None) => {
                self.forget_secret(namespace, name);
                Err(Error::Missing(format!(
                    "Secret {namespace}/{name} named by spec.credentialsSecretRef does not exist"
                )))
            }
            Err(source) => Err(Error::Kube {
                namespace: namespace.into(),
                name: name.into(),
                source,
            }),
        }
    }

    /// The client for the credentials `secret` (read as `namespace`/`name`) holds.
    fn client_of_secret(
        &self,
        namespace: &str,
        name: &str,
        secret: &Secret,
    ) -> Result<confluent_client::Client, Error> {
        let key = (namespace.to_owned(), name.to_owned());
        let version = secret.metadata.resource_version.clone();
        if let Some((v, client)) = self.cache().get(&key)
            && *v == version
            && version.is_some()
        {
            return Ok(client.clone());
        }
        let credentials = match self.credentials_of(secret, namespace, name) {
            Ok(c) => c,
            Err(e) => {
                // a broken Secret holds no credential: its old client is not kept for it
                self.forget_secret(namespace, name);
                return Err(e);
            }
        };
        // One lock from the look-up to the insert: two Secrets read at once with the same new
        // credentials must not make two clients.
        let mut cache = self.cache();
        // Changed in something else (labels, an annotation): the same credential, whose client,
        // limiter and snapshot stay.
        if let Some((v, client)) = cache.get_mut(&key)
            && client.uses(&credentials)
        {
            *v = version;
            return Ok(client.clone());
        }
        // Credentials new to this Secret: the client of whatever already holds exactly them (the
        // defaults, another Secret), else a new one, so nothing built with another secret
        // (snapshot, limiter) is used for them.
        let client = self
            .default
            .iter()
            .chain(cache.values().map(|(_, c)| c))
            .find(|c| c.uses(&credentials))
            .cloned()
            .unwrap_or_else(|| {
                confluent_client::Client::new(
                    self.http.clone(),
                    self.settings.clone(),
                    credentials,
                    self.observer.clone(),
                )
            });
        cache.insert(key, (version, client.clone()));
        Ok(client)
    }

    /// The credentials a Secret holds: keyless (a pool and a ServiceAccount of its namespace,
    /// when minting is allowed), else a key or a token.
    fn credentials_of(
        &self,
        secret: &Secret,
        namespace: &str,
        name: &str,
    ) -> Result<Credentials, Error> {
        let Some((pool, account)) = keyless_from(secret, namespace, name)? else {
            return credentials_from(secret, namespace, name);
        };
        let Some((minting, kube)) = &self.minting else {
            return Err(Error::Invalid(format!(
                "Secret {namespace}/{name} holds keyless credentials ({KEY_IDENTITY_POOL_ID} + {KEY_SERVICE_ACCOUNT_NAME}), but this operator mints ServiceAccount tokens only when started with --allow-serviceaccount-tokens"
            )));
        };
        let source = ServiceAccountToken::new(kube.clone(), namespace, &account, minting);
        Ok(Credentials::sts(
            pool,
            Arc::new(source),
            minting.sts_lifetime,
        ))
    }

    /// Forgets a Secret that no longer holds a credential (gone, or broken).
    fn forget_secret(&self, namespace: &str, name: &str) {
        self.cache()
            .remove(&(namespace.to_owned(), name.to_owned()));
    }

    /// Forgets the Secrets `named` rejects (given namespace and name): once per resync, those
    /// no resource names any more, so that a client held only by them goes too.
    pub fn retain_secrets(&self, named: impl Fn(&str, &str) -> bool) {
        self.cache().retain(|(ns, name), _| named(ns, name));
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
        // sha256("T") = e632b7095b0bf32c…: a digest, never the token
        assert_eq!(c.identity(), "token:e632b7095b0bf32c");
    }

    /// A store with `default` credentials; its clients never call anything in these tests.
    fn store(default: Option<Credentials>) -> CredentialStore {
        CredentialStore::new(
            confluent_client::http_client(std::time::Duration::from_secs(1)).unwrap(),
            ClientSettings::new("http://127.0.0.1:9").unwrap(),
            None,
            default,
            false,
        )
    }

    /// The Secret `pairs` at resourceVersion `version`.
    fn versioned(pairs: &[(&str, &str)], version: &str) -> Secret {
        let mut s = secret(pairs);
        s.metadata.resource_version = Some(version.into());
        s
    }

    fn key_pair(key: &str, secret: &str, version: &str) -> Secret {
        versioned(&[("apiKey", key), ("apiSecret", secret)], version)
    }

    #[test]
    fn secrets_holding_the_same_key_share_one_client() {
        let store = store(None);
        let a = store
            .client_of_secret("team-a", "creds", &key_pair("K", "S", "1"))
            .unwrap();
        let b = store
            .client_of_secret("team-b", "other-name", &key_pair("K", "S", "7"))
            .unwrap();
        assert_eq!(a.key(), b.key(), "one client: one limiter, one snapshot");
        // read again (unchanged, then changed in labels only): still that client
        let again = store
            .client_of_secret("team-a", "creds", &key_pair("K", "S", "1"))
            .unwrap();
        let relabelled = store
            .client_of_secret("team-b", "other-name", &key_pair("K", "S", "8"))
            .unwrap();
        assert_eq!((again.key(), relabelled.key()), (a.key(), a.key()));
    }

    #[test]
    fn a_key_rotated_in_one_secret_only_is_two_credentials() {
        let store = store(None);
        let a = store
            .client_of_secret("team-a", "creds", &key_pair("K", "S", "1"))
            .unwrap();
        store
            .client_of_secret("team-b", "creds", &key_pair("K", "S", "1"))
            .unwrap();
        let fixed = store
            .client_of_secret("team-a", "creds", &key_pair("K", "S2", "2"))
            .unwrap();
        assert_ne!(fixed.key(), a.key(), "another secret: another client");
        assert_eq!(fixed.identity(), a.identity(), "of the same key id");
        // the Secret not rotated keeps the client it shared
        let kept = store
            .client_of_secret("team-b", "creds", &key_pair("K", "S", "1"))
            .unwrap();
        assert_eq!(kept.key(), a.key());
        // rotated there too: both share the new one, and nothing holds the old one any more
        let both = store
            .client_of_secret("team-b", "creds", &key_pair("K", "S2", "2"))
            .unwrap();
        assert_eq!(both.key(), fixed.key());
        assert!(store.cache().values().all(|(_, c)| c.key() != a.key()));
        // another key id altogether: another client
        let other = store
            .client_of_secret("team-c", "creds", &key_pair("K2", "S2", "1"))
            .unwrap();
        assert_ne!(other.key(), fixed.key());
    }

    #[test]
    fn a_secret_holding_the_defaults_uses_the_default_client() {
        let store = store(Some(Credentials::api_key("K", "S")));
        let default = store.default.as_ref().unwrap().key();
        let held = store
            .client_of_secret("team-a", "creds", &key_pair("K", "S", "1"))
            .unwrap();
        assert_eq!(held.key(), default);
        let other = store
            .client_of_secret("team-b", "creds", &key_pair("K", "other", "1"))
            .unwrap();
        assert_ne!(other.key(), default);
    }

    #[test]
    fn two_tokens_are_two_identities_and_two_clients() {
        let store = store(None);
        let a = store
            .client_of_secret(
                "team-a",
                "creds",
                &versioned(&[("accessToken", "tok-a")], "1"),
            )
            .unwrap();
        let b = store
            .client_of_secret(
                "team-b",
                "creds",
                &versioned(&[("accessToken", "tok-b")], "1"),
            )
            .unwrap();
        assert_ne!(
            a.identity(),
            b.identity(),
            "organizations are learnt per identity"
        );
        assert_ne!(a.key(), b.key());
        let same = store
            .client_of_secret(
                "team-c",
                "creds",
                &versioned(&[("accessToken", "tok-a")], "1"),
            )
            .unwrap();
        assert_eq!(same.key(), a.key(), "the same token: the same client");
    }

    #[test]
    fn a_secret_no_longer_holding_or_named_keeps_no_client() {
        let store = store(None);
        let a = store
            .client_of_secret("team-a", "creds", &key_pair("K", "S", "1"))
            .unwrap();
        store
            .client_of_secret("team-b", "creds", &key_pair("K2", "S2", "1"))
            .unwrap();
        // broken: its entry goes, and with it the only holder of its client
        store
            .client_of_secret("team-a", "creds", &versioned(&[("apiKey", "K")], "2"))
            .unwrap_err();
        assert_eq!(store.cache().len(), 1);
        let again = store
            .client_of_secret("team-a", "creds", &key_pair("K", "S", "3"))
            .unwrap();
        assert_ne!(again.key(), a.key(), "nothing kept the old client");
        // no longer named by any resource: forgotten
        store.retain_secrets(|ns, _| ns == "team-a");
        assert_eq!(
            store.cache().keys().cloned().collect::<Vec<_>>(),
            vec![("team-a".to_owned(), "creds".to_owned())]
        );
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
