//! With default flags the operator learns Confluent's rate limit from the answers, and follows it
//! when it changes while running.

use crate::harness::*;

/// Creates `count` Invitations `prefix-<i>` and waits until each is Sent.
async fn create_and_wait_sent(env: &Env, prefix: &str, count: usize) {
    for i in 0..count {
        env.create(&invitation(
            &format!("{prefix}-{i}"),
            &format!("{prefix}-{i}@example.com"),
        ))
        .await;
    }
    for i in 0..count {
        env.wait_phase(&format!("{prefix}-{i}"), "Sent", "True")
            .await;
    }
}

/// The mock's limit set through its control endpoint, as a test against the binary would.
async fn set_limit(env: &Env, per_second: f64, burst: u32) {
    let url = format!("{}/_mock/config", env.mock.base_url());
    let answer = reqwest::Client::new()
        .put(&url)
        .json(&serde_json::json!({"rate_limit": {"per_second": per_second, "burst": burst}}))
        .send()
        .await
        .expect("the mock's control endpoint answers");
    assert!(answer.status().is_success(), "PUT {url}: {answer:?}");
    let limit = env.remote().rate_limit().expect("a limit is set");
    assert_eq!((limit.per_second, limit.burst), (per_second, burst));
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_limit_that_halves_mid_run_is_learnt_without_a_flag() {
    let env = env("ratelimit").await;
    set_limit(&env, 10.0, 10).await;
    create_and_wait_sent(&env, "first", 40).await;
    let first = env.remote().calls();

    set_limit(&env, 5.0, 5).await;
    create_and_wait_sent(&env, "second", 20).await;
    let calls = env.remote().calls();
    eprintln!("before the halving {first:?}; at the end {calls:?}");

    for prefix in ["first", "second"] {
        let count = if prefix == "first" { 40 } else { 20 };
        for i in 0..count {
            let live = env.live(&format!("{prefix}-{i}@example.com"));
            assert_eq!(live.len(), 1, "{prefix}-{i}: one invitation: {live:?}");
        }
    }
    // without --confluent-rate-limit, the operator paced itself from the X-RateLimit-* headers:
    // hardly any call was refused, before or after the halving
    assert!(
        first.rate_limited * 20 <= first.total,
        "before the halving {} of {} calls were 429",
        first.rate_limited,
        first.total
    );
    let after = calls.rate_limited - first.rate_limited;
    let after_total = calls.total - first.total;
    assert!(
        after * 20 <= after_total,
        "after the halving {after} of {after_total} calls were 429"
    );
}
