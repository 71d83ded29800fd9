//! `/healthz`, `/readyz`, `/metrics`.

use crate::harness::*;

#[tokio::test]
async fn health_readiness_and_metrics_answer_and_move() {
    let Some(env) = env("endpoints").await else {
        return;
    };
    let base = format!("http://{}", env.http());
    for path in ["/healthz", "/readyz"] {
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    env.create(&invitation("m", "metrics@example.com")).await;
    env.wait_phase("m", "Sent", "True").await;
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for want in [
        "confluent_invitation_operator_reconciles_total{result=\"ok\"}",
        "confluent_invitation_operator_confluent_requests_total{operation=\"create_invitation\",code=\"201\"} 1",
        "confluent_invitation_operator_confluent_requests_total{operation=\"list_invitations\",code=\"200\"}",
        "confluent_invitation_operator_confluent_request_duration_seconds_count{operation=\"create_invitation\"} 1",
        "confluent_invitation_operator_invitations{phase=\"Sent\"} 1",
        "confluent_invitation_operator_events_total{reason=\"Created\",type=\"Normal\"} 1",
        "confluent_invitation_operator_reconcile_duration_seconds_count",
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
    assert!(!text.contains(API_SECRET) && !text.contains("metrics@example.com"));
}
