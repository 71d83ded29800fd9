//! Deleting a namespace that holds Invitations and the Secret they use completes:
//! the operator's finalizer on the Secret keeps it readable until the Invitations' cleanup has
//! used it, also when the operator is down while the namespace is deleted. The control plane's
//! kube-controller-manager performs the namespace deletion.

use std::time::Duration;

use confluent_invitation_operator::invitation::controller::credentials_in_use::SECRET_FINALIZER;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::DeleteParams;
use kube::{Api, ResourceExt};

use crate::harness::*;

/// The namespace controller retries with backoff while content remains: more than [`WAIT`].
const NAMESPACE_GONE: Duration = Duration::from_secs(120);

const EMAILS: [&str; 2] = ["ns-one@example.com", "ns-two@example.com"];

/// Two Invitations using one Secret, both Sent; the Secret carries the operator's finalizer.
async fn invitations_with_their_secret(env: &Env) {
    env.secret("creds", &[("apiKey", API_KEY), ("apiSecret", API_SECRET)])
        .await;
    for (i, email) in EMAILS.iter().enumerate() {
        env.create(&with_secret(
            invitation(&format!("inv-{i}"), email),
            "creds",
        ))
        .await;
    }
    for i in 0..EMAILS.len() {
        env.wait_phase(&format!("inv-{i}"), "Sent", "True").await;
    }
    let secrets: Api<Secret> = Api::namespaced(env.kube.clone(), &env.ns);
    let secret = secrets.get("creds").await.expect("the Secret");
    assert!(
        secret.finalizers().iter().any(|f| f == SECRET_FINALIZER),
        "the Secret is marked in use: {:?}",
        secret.finalizers()
    );
    for email in EMAILS {
        assert_eq!(env.live(email).len(), 1, "{email} invited");
    }
}

async fn wait_namespace_gone(env: &Env) {
    let nss: Api<Namespace> = Api::all(env.kube.clone());
    eventually(
        &format!("namespace {} deleted (finalizers left behind?)", env.ns),
        NAMESPACE_GONE,
        || {
            let nss = nss.clone();
            let ns = env.ns.clone();
            async move { matches!(nss.get_opt(&ns).await, Ok(None)).then_some(()) }
        },
    )
    .await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn deleting_a_namespace_with_invitations_and_their_secret_completes() {
    let env = env("nsdelete").await;
    invitations_with_their_secret(&env).await;
    let nss: Api<Namespace> = Api::all(env.kube.clone());
    nss.delete(&env.ns, &DeleteParams::default())
        .await
        .expect("namespace deletion accepted");
    wait_namespace_gone(&env).await;
    for email in EMAILS {
        assert!(
            env.live(email).is_empty(),
            "{email}: policy Delete deleted the remote invitation"
        );
    }
    assert_eq!(env.remote().calls().delete, EMAILS.len() as u64);
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn namespace_deletion_completes_when_the_operator_was_down_meanwhile() {
    let mut env = env("nsdelete-restart").await;
    invitations_with_their_secret(&env).await;
    env.kill_operator();
    let nss: Api<Namespace> = Api::all(env.kube.clone());
    nss.delete(&env.ns, &DeleteParams::default())
        .await
        .expect("namespace deletion accepted");
    // the namespace controller deletes what it can while the operator is down: the Secret stays
    // (finalizer), terminating, and so do the Invitations
    let secrets: Api<Secret> = Api::namespaced(env.kube.clone(), &env.ns);
    eventually("the Secret marked for deletion", WAIT, || {
        let secrets = secrets.clone();
        async move {
            let s = secrets.get_opt("creds").await.ok().flatten()?;
            s.metadata.deletion_timestamp.is_some().then_some(())
        }
    })
    .await;
    for email in EMAILS {
        assert_eq!(env.live(email).len(), 1, "nothing deleted while down");
    }
    env.start_operator();
    env.wait_ready().await;
    wait_namespace_gone(&env).await;
    for email in EMAILS {
        assert!(
            env.live(email).is_empty(),
            "{email}: cleaned up after the restart"
        );
    }
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_cleanup_without_credentials_says_what_is_blocked_and_orphan_releases_it() {
    let env = env("cleanup-blocked").await;
    env.secret("creds", &[("apiKey", API_KEY), ("apiSecret", API_SECRET)])
        .await;
    env.create(&with_secret(
        invitation("stuck", "stuck@example.com"),
        "creds",
    ))
    .await;
    env.wait_phase("stuck", "Sent", "True").await;
    // someone strips the operator's finalizer and deletes the Secret
    let secrets: Api<Secret> = Api::namespaced(env.kube.clone(), &env.ns);
    secrets
        .patch(
            "creds",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("finalizer stripped");
    secrets
        .delete("creds", &DeleteParams::default())
        .await
        .expect("Secret deleted");
    eventually("the Secret gone", WAIT, || {
        let secrets = secrets.clone();
        async move { matches!(secrets.get_opt("creds").await, Ok(None)).then_some(()) }
    })
    .await;
    env.api
        .delete("stuck", &DeleteParams::default())
        .await
        .expect("deletion accepted");
    let (_, note) = env.wait_event("stuck", "CleanupBlocked").await;
    assert!(
        note.contains("deletionPolicy: Orphan") && note.contains("creds"),
        "the Event says what is blocked and how to release it: {note}"
    );
    let stuck = env.wait_reason("stuck", "CredentialsMissing").await;
    let (_, _, message) = ready_of(&stuck).expect("Ready");
    assert!(message.contains("Cleanup is blocked"), "{message}");
    assert!(has_finalizer(&stuck), "nothing is released silently");
    assert_eq!(env.live("stuck@example.com").len(), 1);
    // the way out the message names
    env.patch_spec("stuck", serde_json::json!({"deletionPolicy": "Orphan"}))
        .await;
    env.wait_gone("stuck").await;
    assert_eq!(env.live("stuck@example.com").len(), 1, "orphaned, as asked");
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_secret_no_invitation_names_any_more_is_released() {
    let env = env("secret-switch").await;
    for name in ["old-creds", "new-creds"] {
        env.secret(name, &[("apiKey", API_KEY), ("apiSecret", API_SECRET)])
            .await;
    }
    env.create(&with_secret(
        invitation("switch", "switch@example.com"),
        "old-creds",
    ))
    .await;
    env.wait_phase("switch", "Sent", "True").await;
    let secrets: Api<Secret> = Api::namespaced(env.kube.clone(), &env.ns);
    let marked = |name: &'static str, want: bool| {
        let secrets = secrets.clone();
        async move {
            let s = secrets.get_opt(name).await.ok().flatten()?;
            (s.finalizers().iter().any(|f| f == SECRET_FINALIZER) == want).then_some(())
        }
    };
    eventually("old-creds marked in use", WAIT, || {
        marked("old-creds", true)
    })
    .await;
    env.patch_spec(
        "switch",
        serde_json::json!({"credentialsSecretRef": {"name": "new-creds"}}),
    )
    .await;
    eventually("new-creds marked in use", WAIT, || {
        marked("new-creds", true)
    })
    .await;
    eventually("old-creds released within a resync", WAIT, || {
        marked("old-creds", false)
    })
    .await;
    // and deleting it now completes at once
    secrets
        .delete("old-creds", &DeleteParams::default())
        .await
        .expect("deleted");
    eventually("old-creds gone", WAIT, || {
        let secrets = secrets.clone();
        async move { matches!(secrets.get_opt("old-creds").await, Ok(None)).then_some(()) }
    })
    .await;
}
