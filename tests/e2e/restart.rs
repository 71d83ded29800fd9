//! SIGKILL at random moments: converges with no duplicate and no orphan.

use std::time::Duration;

use confluent_client::model::InviteStatus;
use kube::api::DeleteParams;

use crate::harness::*;

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn killed_operators_converge_without_duplicates_or_orphans() {
    let mut env = env("restart").await;
    env.remote().set_latency(Duration::from_millis(150));
    let n = 12;
    for i in 0..n {
        env.create(&invitation(&format!("r{i}"), &format!("r{i}@example.com")))
            .await;
    }
    for round in 0..3u64 {
        tokio::time::sleep(Duration::from_millis(300 + 250 * round)).await;
        env.kill_operator();
        env.start_operator();
    }
    for i in 0..n {
        env.wait_phase(&format!("r{i}"), "Sent", "True").await;
    }
    for i in 0..n {
        let email = format!("r{i}@example.com");
        let inv = env.api.get(&format!("r{i}")).await.unwrap();
        let live = env.live(&email);
        assert_eq!(live.len(), 1, "{email}: {live:?}");
        assert_eq!(live[0].id, Some(id_of(&inv)));
    }
    // delete half while the operator is down, then let a fresh one clean up
    env.kill_operator();
    for i in 0..n / 2 {
        env.api
            .delete(&format!("r{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
    env.start_operator();
    for i in 0..n / 2 {
        env.wait_gone(&format!("r{i}")).await;
        let email = format!("r{i}@example.com");
        assert!(env.live(&email).is_empty(), "{email} orphaned");
    }
    let deactivated = env
        .remote()
        .invitations()
        .iter()
        .filter(|i| i.status == Some(InviteStatus::Deactivated))
        .count();
    assert_eq!(deactivated, n / 2);
    assert_eq!(
        env.remote().live_invitations_for("r11@example.com").len(),
        1
    );
}
