//! Bad credentials and Confluent refusals: explained in status and Events with Confluent's own
//! words, retried slowly, and never in the way of the other resources.

use confluent_mock::{Fault, FaultAction};

use crate::harness::*;

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn credential_problems_are_explained_and_nobody_else_is_blocked() {
    let mut env = env("credentials").await;
    env.secret("wrong-keys", &[("api_key", "x"), ("secret", "y")])
        .await;
    env.secret(
        "wrong-creds",
        &[
            ("apiKey", "stolen-key"),
            ("apiSecret", "not-the-secret-9c2e"),
        ],
    )
    .await;
    env.secret("good", &[("apiKey", API_KEY), ("apiSecret", API_SECRET)])
        .await;

    env.create(&with_secret(
        invitation("missing", "missing@example.com"),
        "nope",
    ))
    .await;
    env.create(&with_secret(
        invitation("keys", "keys@example.com"),
        "wrong-keys",
    ))
    .await;
    env.create(&with_secret(
        invitation("creds", "creds@example.com"),
        "wrong-creds",
    ))
    .await;
    env.create(&with_secret(invitation("ok", "ok@example.com"), "good"))
        .await;
    env.create(&invitation("default", "default@example.com"))
        .await;

    let inv = env.wait_reason("missing", "CredentialsMissing").await;
    assert!(
        ready_of(&inv).unwrap().2.contains("Secret"),
        "{:?}",
        ready_of(&inv)
    );
    let inv = env.wait_reason("keys", "CredentialsInvalid").await;
    assert!(ready_of(&inv).unwrap().2.contains("apiKey"));
    let inv = env.wait_reason("creds", "CredentialsInvalid").await;
    let (status, _, message) = ready_of(&inv).unwrap();
    assert_eq!(status, "False");
    assert!(
        message.contains("Valid authentication credentials must be provided")
            && message.contains("HTTP 401"),
        "Confluent's own detail: {message}"
    );
    for name in ["missing", "keys", "creds"] {
        let (kind, _) = env
            .wait_event(
                name,
                ready_of(&env.api.get(name).await.unwrap())
                    .unwrap()
                    .1
                    .as_str(),
            )
            .await;
        assert_eq!(kind, "Warning");
        assert_eq!(phase_of(&env.api.get(name).await.unwrap()), Some("Pending"));
    }
    env.wait_phase("ok", "Sent", "True").await;
    env.wait_phase("default", "Sent", "True").await;
    assert!(env.live("creds@example.com").is_empty() && env.live("keys@example.com").is_empty());

    // fixing the Secret heals the resource on a later retry
    env.secret("nope", &[("apiKey", API_KEY), ("apiSecret", API_SECRET)])
        .await;
    env.wait_phase("missing", "Sent", "True").await;

    assert!(env.operator_alive());
    let log = env.operator_log();
    for secret in [API_SECRET, "not-the-secret-9c2e"] {
        assert!(
            !log.contains(secret),
            "a secret value reached the operator's log"
        );
    }
    for name in ["missing", "keys", "creds", "ok", "default"] {
        let inv = env.api.get(name).await.unwrap();
        let text = serde_json::to_string(&inv.status).unwrap();
        assert!(!text.contains(API_SECRET) && !text.contains("not-the-secret-9c2e"));
        for (_, _, note) in env.events(name).await {
            assert!(!note.contains(API_SECRET) && !note.contains("not-the-secret-9c2e"));
        }
    }
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn confluent_refusals_surface_with_their_detail() {
    let mut env = env("refusals").await;
    for (name, status, reason) in [
        ("forbidden", 403, "Forbidden"),
        ("quota", 402, "QuotaExceeded"),
    ] {
        // Confluent refuses every create until the test has seen the refusal (a one-off one
        // can be retried away before a poll sees it: a reconcile queued meanwhile runs at once)
        env.remote().inject(Fault {
            method: Some("POST".into()),
            path_prefix: "/iam/v2/invitations".into(),
            count: 1_000,
            action: FaultAction::Status { status },
        });
        env.create(&invitation(name, &format!("{name}@example.com")))
            .await;
        let inv = env.wait_reason(name, reason).await;
        let (ready, _, message) = ready_of(&inv).unwrap();
        assert_eq!(ready, "False");
        assert!(message.contains(&format!("HTTP {status}")), "{message}");
        let (kind, note) = env.wait_event(name, reason).await;
        assert_eq!(kind, "Warning");
        assert!(note.contains(&format!("HTTP {status}")), "{note}");
        assert!(
            env.live(&format!("{name}@example.com")).is_empty(),
            "a refused create made nothing"
        );
        // the refusal ends: a slow retry succeeds, exactly once
        env.remote().clear_faults();
        env.wait_phase(name, "Sent", "True").await;
        assert_eq!(env.live(&format!("{name}@example.com")).len(), 1);
    }
    assert!(env.operator_alive());
}
