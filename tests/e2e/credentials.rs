//! Credentials that change while the operator runs: a Secret fixed or rotated is used within one
//! resync for lists and single calls alike, and a credential Confluent refuses shows on every
//! resource using it, until it works again.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::harness::*;

const TEAM_KEY: &str = "team-key-1";
const TEAM_SECRET: &str = "team-secret-1-4b2e-never-log-me";
const ROTATED_KEY: &str = "team-key-2";
const ROTATED_SECRET: &str = "team-secret-2-9c1d-never-log-me";
const WRONG_SECRET: &str = "team-secret-wrong-77aa-never-log-me";

/// The mock accepts exactly these keys (plus the operator's default one) from now on.
fn accept(env: &Env, keys: &[(&str, &str)]) {
    let mut all = vec![(API_KEY.to_owned(), API_SECRET.to_owned())];
    all.extend(keys.iter().map(|(k, s)| (k.to_string(), s.to_string())));
    env.remote().set_api_keys(&all);
}

/// Replaces a Secret's credentials, as a rotation job or a human would.
async fn rewrite_secret(env: &Env, name: &str, key: &str, secret: &str) {
    let secrets: Api<Secret> = Api::namespaced(env.kube.clone(), &env.ns);
    let patch = serde_json::json!({"stringData": {"apiKey": key, "apiSecret": secret}});
    secrets
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("Secret patched");
}

/// No secret value reached the log, a status or an Event.
async fn assert_no_secret_shown(env: &Env, names: &[&str]) {
    let log = env.operator_log();
    for secret in [TEAM_SECRET, ROTATED_SECRET, WRONG_SECRET] {
        assert!(!log.contains(secret), "a secret value reached the log");
        for name in names {
            for (_, _, note) in env.events(name).await {
                assert!(!note.contains(secret), "a secret value in an Event");
            }
            let inv = env.api.get(name).await.expect("readable");
            let status = serde_json::to_string(&inv.status).expect("serializable");
            assert!(!status.contains(secret), "a secret value in a status");
        }
    }
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_fixed_secret_is_used_for_lists_and_calls_without_a_restart() {
    let env = env("secret-fixed").await;
    accept(&env, &[(TEAM_KEY, TEAM_SECRET)]);
    env.secret("team", &[("apiKey", TEAM_KEY), ("apiSecret", WRONG_SECRET)])
        .await;
    env.create(&with_secret(invitation("fix", "fix@example.com"), "team"))
        .await;
    env.wait_reason("fix", "CredentialsInvalid").await;

    rewrite_secret(&env, "team", TEAM_KEY, TEAM_SECRET).await;
    let id = id_of(&env.wait_phase("fix", "Sent", "True").await);
    // a second resource using the fixed Secret is not told the old secret was refused
    env.create(&with_secret(invitation("fix2", "fix2@example.com"), "team"))
        .await;
    env.wait_phase("fix2", "Sent", "True").await;
    assert!(
        env.events("fix2").await.iter().all(|e| e.0 != "Warning"),
        "{:?}",
        env.events("fix2").await
    );
    // the lists use the fixed secret: no more 401s, and a remote accept is seen
    let refused = env.remote().calls().unauthenticated;
    tokio::time::sleep(RESYNC * 3).await;
    assert_eq!(
        env.remote().calls().unauthenticated,
        refused,
        "the wrong secret is still in use somewhere"
    );
    env.remote().accept(&id).expect("accepted in the mock");
    env.wait_phase("fix", "Accepted", "True").await;
    assert_no_secret_shown(&env, &["fix", "fix2"]).await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_rotated_key_is_used_within_one_resync() {
    let env = env("secret-rotated").await;
    accept(&env, &[(TEAM_KEY, TEAM_SECRET)]);
    env.secret("team", &[("apiKey", TEAM_KEY), ("apiSecret", TEAM_SECRET)])
        .await;
    env.create(&with_secret(invitation("rot", "rot@example.com"), "team"))
        .await;
    let id = id_of(&env.wait_phase("rot", "Sent", "True").await);

    // rotation: the new key goes into the Secret, then the old one is revoked
    accept(
        &env,
        &[(TEAM_KEY, TEAM_SECRET), (ROTATED_KEY, ROTATED_SECRET)],
    );
    rewrite_secret(&env, "team", ROTATED_KEY, ROTATED_SECRET).await;
    accept(&env, &[(ROTATED_KEY, ROTATED_SECRET)]);
    let refused = env.remote().calls().unauthenticated;
    env.remote().accept(&id).expect("accepted in the mock");
    let started = std::time::Instant::now();
    env.wait_phase("rot", "Accepted", "True").await;
    assert!(
        started.elapsed() < RESYNC * 5,
        "the accept was seen only after {:?}",
        started.elapsed()
    );
    tokio::time::sleep(RESYNC * 2).await;
    let after = env.remote().calls().unauthenticated;
    tokio::time::sleep(RESYNC * 3).await;
    assert_eq!(
        env.remote().calls().unauthenticated,
        after,
        "the revoked key is still listed with ({refused} 401s before the rotation)"
    );
    assert_no_secret_shown(&env, &["rot"]).await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_revoked_credential_shows_on_every_resource_until_it_works_again() {
    let env = env("secret-revoked").await;
    accept(&env, &[(TEAM_KEY, TEAM_SECRET)]);
    env.secret("team", &[("apiKey", TEAM_KEY), ("apiSecret", TEAM_SECRET)])
        .await;
    for name in ["rev-a", "rev-b"] {
        env.create(&with_secret(
            invitation(name, &format!("{name}@example.com")),
            "team",
        ))
        .await;
    }
    // a resource using another credential is not concerned
    env.create(&invitation("other", "other@example.com")).await;
    for name in ["rev-a", "rev-b", "other"] {
        env.wait_phase(name, "Sent", "True").await;
    }

    accept(&env, &[]); // the team key is revoked in Confluent
    let revoked = std::time::Instant::now();
    for name in ["rev-a", "rev-b"] {
        let inv = env.wait_reason(name, "CredentialsInvalid").await;
        let (ready, _, message) = ready_of(&inv).expect("a Ready condition");
        assert_eq!(ready, "False");
        assert!(message.contains("401"), "Confluent's words: {message}");
        let (kind, _) = env.wait_event(name, "CredentialsInvalid").await;
        assert_eq!(kind, "Warning");
    }
    assert!(
        revoked.elapsed() < RESYNC * 5,
        "told only after {:?}",
        revoked.elapsed()
    );
    let other = env.api.get("other").await.expect("readable");
    assert_eq!(
        ready_of(&other).map(|r| r.0),
        Some("True".to_owned()),
        "another credential's resource stays Ready"
    );

    accept(&env, &[(TEAM_KEY, TEAM_SECRET)]); // restored
    for name in ["rev-a", "rev-b"] {
        env.wait_phase(name, "Sent", "True").await;
    }
    // and the truth again: an accept during the outage would have been missed otherwise
    let id = id_of(&env.api.get("rev-a").await.expect("readable"));
    env.remote().accept(&id).expect("accepted in the mock");
    env.wait_phase("rev-a", "Accepted", "True").await;
    assert_no_secret_shown(&env, &["rev-a", "rev-b"]).await;
}
