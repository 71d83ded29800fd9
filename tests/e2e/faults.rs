//! Lost responses, 429s and 5xx: never two invitations, never none.

use confluent_invitation_operator::runtime::snapshot;
use confluent_mock::{Fault, FaultAction};

use crate::harness::*;

fn on_create(action: FaultAction) -> Fault {
    Fault {
        method: Some("POST".into()),
        path_prefix: "/iam/v2/invitations".into(),
        count: 1,
        action,
    }
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_create_whose_response_was_lost_is_adopted_not_repeated() {
    let env = env("lost-create").await;
    for (name, email, action) in [
        (
            "five-hundred",
            "commit500@example.com",
            FaultAction::CommitThen500,
        ),
        (
            "dropped",
            "commitdrop@example.com",
            FaultAction::CommitThenDrop,
        ),
    ] {
        env.remote().inject(on_create(action));
        env.create(&invitation(name, email)).await;
        let inv = env.wait_phase(name, "Sent", "True").await;
        let live = env.live(email);
        assert_eq!(
            live.len(),
            1,
            "{name}: exactly one remote invitation: {live:?}"
        );
        assert_eq!(live[0].id, Some(id_of(&inv)), "{name}: status names it");
        assert!(inv.status.unwrap().user_id.is_some());
    }
    assert_eq!(
        env.remote().calls().create,
        2,
        "the lost creates were never retried blindly"
    );
    assert_eq!(env.remote().calls().faults_injected, 2);
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn rate_limits_server_errors_and_dropped_connections_are_retried() {
    let env = env("transient").await;
    for (method, status) in [("GET", 429), ("GET", 503), ("POST", 500), ("POST", 429)] {
        env.remote().inject(Fault {
            method: Some(method.into()),
            path_prefix: "/iam/v2/invitations".into(),
            count: 1,
            action: FaultAction::Status { status },
        });
    }
    env.remote().inject(Fault {
        method: Some("GET".into()),
        path_prefix: "/iam/v2/invitations".into(),
        count: 1,
        action: FaultAction::Drop,
    });
    env.create(&invitation("t", "transient@example.com")).await;
    let inv = env.wait_phase("t", "Sent", "True").await;
    assert_eq!(env.live("transient@example.com").len(), 1);
    assert_eq!(env.live("transient@example.com")[0].id, Some(id_of(&inv)));
    assert!(env.remote().calls().faults_injected >= 5);
}

/// While the credential's list keeps failing, status stays as last observed (no resource is
/// woken to GET its invitation: that would spend N calls per resync on an outage), and a resource
/// that is reconciled anyway, because its spec changed, reads its own invitation by id.
#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn when_lists_keep_failing_a_reconciled_resource_reads_its_own_invitation() {
    let env = env("list-outage").await;
    env.create(&invitation("ada", "ada@example.com")).await;
    let id = id_of(&env.wait_phase("ada", "Sent", "True").await);
    let gets_before = env.remote().calls().get;
    env.remote().inject(Fault {
        method: Some("GET".into()),
        path_prefix: "/iam/v2/invitations?".into(),
        count: 10_000,
        action: FaultAction::Status { status: 500 },
    });
    let injected = std::time::Instant::now();
    env.remote().accept(&id).expect("accepted in the mock");
    // a list was tried and failed, and the last good snapshot (taken before the faults) is now
    // older than a reconcile may read
    eventually("no list was tried", WAIT, || async {
        (env.remote().calls().faults_injected > 0).then_some(())
    })
    .await;
    let stale = injected + snapshot::max_age(RESYNC) + std::time::Duration::from_millis(500);
    tokio::time::sleep_until(stale.into()).await;
    let inv = env.api.get("ada").await.unwrap();
    assert_eq!(
        phase_of(&inv),
        Some("Sent"),
        "nothing observed without a list"
    );
    assert_eq!(
        env.remote().calls().get,
        gets_before,
        "and nobody polled by id meanwhile"
    );
    env.patch_spec("ada", serde_json::json!({"deletionPolicy": "Orphan"}))
        .await;
    let inv = env.wait_phase("ada", "Accepted", "True").await;
    assert_eq!(id_of(&inv), id);
    assert_eq!(
        inv.status.unwrap().observed_generation,
        inv.metadata.generation
    );
    let calls = env.remote().calls();
    assert!(
        calls.get > gets_before,
        "seen through a GET of its own: {calls:?}"
    );
    assert_eq!(
        env.remote().pending_faults().len(),
        1,
        "lists were failing all along"
    );
}
