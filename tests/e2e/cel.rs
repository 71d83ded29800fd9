//! The CRD's CEL rules (`x-kubernetes-validations`) enforced by the API server itself: every
//! change they forbid is refused with the field named, whether a user patches or a GitOps tool
//! applies server-side, and the stored object stays as it was. These fail against a CRD applied
//! without its rules (validation off, or a server older than 1.25 that drops them): such a
//! server accepts the change.

use confluent_invitation_operator::invitation::resource::{AuthType, Invitation};
use kube::api::{Patch, PatchParams};

use crate::harness::*;

/// The server's refusal of `patch` on `name`: asserts it is a 422 naming `field` and the rule's
/// message, and that the stored object did not change. Returns the refusal's message.
async fn refused(
    env: &Env,
    name: &str,
    patch: Patch<serde_json::Value>,
    params: &PatchParams,
    field: &str,
    rule: &str,
) -> String {
    let before = env.api.get(name).await.expect("Invitation readable");
    let outcome = env.api.patch(name, params, &patch).await;
    let after = env.api.get(name).await.expect("Invitation readable");
    let message = match outcome {
        Ok(accepted) => panic!(
            "the API server accepted {patch:?}: spec now {:?}; are the CRD's CEL rules on the server?",
            accepted.spec
        ),
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422, "refused as Invalid: {s:?}");
            s.message.clone()
        }
        Err(e) => panic!("not an API server refusal: {e}"),
    };
    assert!(message.contains(field), "{field} not named in: {message}");
    assert!(
        message.contains(rule),
        "the rule's message not in: {message}"
    );
    assert_eq!(after.spec, before.spec, "the stored spec is unchanged");
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "nothing was written"
    );
    message
}

fn with_auth(mut inv: Invitation, auth: AuthType) -> Invitation {
    inv.spec.auth_type = Some(auth);
    inv
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn the_api_server_refuses_changing_the_email() {
    let env = env("cel-email").await;
    env.create(&invitation("eve", "eve@example.com")).await;
    let id = id_of(&env.wait_phase("eve", "Sent", "True").await);

    // a user's edit
    refused(
        &env,
        "eve",
        Patch::Merge(serde_json::json!({"spec": {"email": "mallory@example.com"}})),
        &PatchParams::default(),
        "spec.email",
        "email is immutable",
    )
    .await;
    // a GitOps tool's server-side apply of the changed manifest
    let mut manifest = invitation("eve", "mallory@example.com");
    manifest.metadata.namespace = Some(env.ns.clone());
    refused(
        &env,
        "eve",
        Patch::Apply(serde_json::to_value(&manifest).expect("manifest serializes")),
        &PatchParams::apply("e2e-gitops").force(),
        "spec.email",
        "email is immutable",
    )
    .await;
    // a case-only change is a change too
    refused(
        &env,
        "eve",
        Patch::Merge(serde_json::json!({"spec": {"email": "Eve@example.com"}})),
        &PatchParams::default(),
        "spec.email",
        "email is immutable",
    )
    .await;

    // the controller never saw another email: the one invitation stays, nothing else is sent
    tokio::time::sleep(RESYNC * 2).await;
    let inv = env.wait_phase("eve", "Sent", "True").await;
    assert_eq!(id_of(&inv), id);
    assert!(env.live("mallory@example.com").is_empty());
    assert_eq!(env.remote().calls().create, 1, "one create, for eve");
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn the_api_server_refuses_changing_the_auth_type() {
    let env = env("cel-auth").await;
    env.create(&with_auth(
        invitation("sso", "sso@example.com"),
        AuthType::Sso,
    ))
    .await;
    env.wait_phase("sso", "Sent", "True").await;

    refused(
        &env,
        "sso",
        Patch::Merge(serde_json::json!({"spec": {"authType": "AUTH_TYPE_LOCAL"}})),
        &PatchParams::default(),
        "spec.authType",
        "authType is immutable",
    )
    .await;
    let mut manifest = with_auth(invitation("sso", "sso@example.com"), AuthType::Local);
    manifest.metadata.namespace = Some(env.ns.clone());
    refused(
        &env,
        "sso",
        Patch::Apply(serde_json::to_value(&manifest).expect("manifest serializes")),
        &PatchParams::apply("e2e-gitops").force(),
        "spec.authType",
        "authType is immutable",
    )
    .await;

    // what the rules allow still goes through: a mutable field, with the immutable ones as they were
    let patched = env
        .patch_spec("sso", serde_json::json!({"deletionPolicy": "Orphan"}))
        .await;
    assert_eq!(patched.spec.auth_type, Some(AuthType::Sso));
    assert_eq!(patched.spec.email, "sso@example.com");
}
