//! The subject JWT of a namespace's keyless credentials: a token of a ServiceAccount of that
//! namespace, minted with the TokenRequest API for each STS exchange (never stored, never
//! cached: the STS token it buys is what the client keeps).
//!
//! Only with `--allow-serviceaccount-tokens`: minting tokens takes `create` on
//! `serviceaccounts/token`, which SECURITY.md weighs.

use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;

use confluent_client::sts::{SecretString, SubjectTokenSource, checked_subject};
use confluent_client::{Error, ServerRefusal};

/// The shortest life the API server grants a requested token (it refuses less than 10 minutes).
pub const MIN_EXPIRATION: Duration = Duration::from_secs(600);

/// How the operator mints ServiceAccount tokens for keyless credentials Secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Minting {
    /// The tokens' audience (the pool's filter checks `claims.aud`).
    pub audience: String,
    /// Their life: short, they are used once, within seconds.
    pub expiration: Duration,
    /// The lifetime asked for each STS token bought with them.
    pub sts_lifetime: Duration,
}

/// ServiceAccount `name` of `namespace`, as a subject token source.
pub struct ServiceAccountToken {
    kube: kube::Client,
    namespace: String,
    name: String,
    audience: String,
    expiration: Duration,
}

impl ServiceAccountToken {
    /// Tokens of `namespace/name` minted as `minting` says.
    pub fn new(kube: kube::Client, namespace: &str, name: &str, minting: &Minting) -> Self {
        Self {
            kube,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            audience: minting.audience.clone(),
            expiration: minting.expiration.max(MIN_EXPIRATION),
        }
    }
}

impl SubjectTokenSource for ServiceAccountToken {
    fn name(&self) -> String {
        format!("serviceaccount:{}/{}", self.namespace, self.name)
    }

    fn subject_token(&self) -> BoxFuture<'_, Result<SecretString, Error>> {
        Box::pin(async move {
            let api: Api<ServiceAccount> = Api::namespaced(self.kube.clone(), &self.namespace);
            let request = TokenRequest {
                spec: Some(TokenRequestSpec {
                    audiences: Some(vec![self.audience.clone()]),
                    expiration_seconds: i64::try_from(self.expiration.as_secs()).ok(),
                    ..TokenRequestSpec::default()
                }),
                ..TokenRequest::default()
            };
            let sa = format!("{}/{}", self.namespace, self.name);
            match api
                .create_token_request(&self.name, &PostParams::default(), &request)
                .await
            {
                Ok(minted) => {
                    let token = minted.status.and_then(|s| s.token).unwrap_or_default();
                    checked_subject(&token, &format!("of ServiceAccount {sa}"))
                }
                // A ServiceAccount the Secret names but that does not exist: the credential does
                // not work, as a refused key does not (the resource says CredentialsInvalid).
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    Err(Error::Unauthenticated(ServerRefusal {
                        status: 404,
                        code: Some("ServiceAccountNotFound".into()),
                        detail: format!(
                            "ServiceAccount {sa}, named by the credentials Secret, does not exist"
                        ),
                        source: None,
                        request_id: None,
                    }))
                }
                Err(e) => Err(Error::Config(format!(
                    "minting a token of ServiceAccount {sa}: {e}"
                ))),
            }
        })
    }
}
