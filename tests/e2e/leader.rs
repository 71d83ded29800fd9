//! High availability: with leader election, only the leader talks to Confluent; a killed leader
//! is replaced within the lease duration; SIGTERM releases the lease at once.

use std::time::{Duration, Instant};

use crate::harness::*;

/// The number after `name` in a Prometheus text, 0 when absent.
fn value(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

const REQUESTS: &str = "confluent_invitation_operator_confluent_requests_total";
const LEADER: &str = "confluent_invitation_operator_leader ";

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn only_the_leader_acts_and_a_standby_takes_over() {
    let mut env = env("leader").await;
    // The single-replica operator of the harness does not take part: stop it.
    env.kill_operator();
    let (lease_ns, lease) = env.lease();
    let flags = [
        "--leader-election",
        "--leader-election-namespace",
        lease_ns.as_str(),
        "--leader-election-lease-name",
        lease.as_str(),
    ];
    let a = env.spawn_operator(&flags);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut b = env.spawn_operator(&flags);

    env.create(&invitation("ha1", "ha1@example.com")).await;
    env.wait_phase("ha1", "Sent", "True").await;
    let (ma, mb) = (a.metrics().await, b.metrics().await);
    assert_eq!(value(&ma, LEADER), 1.0, "the first replica leads:\n{ma}");
    assert_eq!(value(&mb, LEADER), 0.0, "the second stands by:\n{mb}");
    assert!(
        value(&ma, REQUESTS) >= 2.0,
        "the leader called Confluent:\n{ma}"
    );
    assert_eq!(
        value(&mb, REQUESTS),
        0.0,
        "the standby never called Confluent"
    );
    // a standby reports ready once it joined the election (rolling updates need it)
    eventually("the standby never became ready", WAIT, || async {
        reqwest::get(format!("http://{}/readyz", b.http))
            .await
            .is_ok_and(|r| r.status().is_success())
            .then_some(())
    })
    .await;
    assert_eq!(value(&b.metrics().await, LEADER), 0.0, "still standing by");

    // SIGKILL: no release; the standby takes over once the lease expires
    a.signal("KILL");
    let killed = Instant::now();
    env.create(&invitation("ha2", "ha2@example.com")).await;
    env.wait_phase("ha2", "Sent", "True").await;
    let failover = killed.elapsed();
    eprintln!("failover after SIGKILL of the leader: {failover:?}");
    assert!(failover < Duration::from_secs(40), "{failover:?}");
    assert_eq!(value(&b.metrics().await, LEADER), 1.0);
    assert_eq!(env.live("ha2@example.com").len(), 1);

    // SIGTERM: the leader finishes, releases the lease, exits 0; a new replica leads at once
    let mut c = env.spawn_operator(&flags);
    tokio::time::sleep(Duration::from_secs(1)).await;
    b.signal("TERM");
    let termed = Instant::now();
    assert_eq!(
        b.wait_exit(Duration::from_secs(20)),
        Some(0),
        "clean exit on SIGTERM"
    );
    env.create(&invitation("ha3", "ha3@example.com")).await;
    env.wait_phase("ha3", "Sent", "True").await;
    let handover = termed.elapsed();
    eprintln!("hand-over after SIGTERM of the leader: {handover:?}");
    assert_eq!(value(&c.metrics().await, LEADER), 1.0);
    assert_eq!(env.live("ha1@example.com").len(), 1);
    assert_eq!(
        env.remote().calls().create,
        3,
        "no invitation was created twice"
    );
    c.signal("TERM");
    let _ = c.wait_exit(Duration::from_secs(20));
}
