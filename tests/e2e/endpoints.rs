//! `/healthz`, `/readyz`, `/metrics`.

use crate::harness::*;

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn health_readiness_and_metrics_answer_and_move() {
    let env = env("endpoints").await;
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

    // steady state: no reconcile storm from our own status writes, and Confluent is read in
    // batches (one list per resync for this credential), not once per object and loop
    let count = |text: &str, prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let reconciles = "confluent_invitation_operator_reconciles_total";
    let requests = "confluent_invitation_operator_confluent_requests_total";
    let (r0, q0) = (count(&text, reconciles), count(&text, requests));
    tokio::time::sleep(RESYNC * 5).await;
    let later = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (r1, q1) = (count(&later, reconciles), count(&later, requests));
    assert!(
        r1 - r0 <= 12.0,
        "{} reconciles of one object in 5 resyncs",
        r1 - r0
    );
    assert!(q1 - q0 <= 10.0, "{} Confluent calls in 5 resyncs", q1 - q0);
}
