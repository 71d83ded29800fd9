//! Lost responses, 429s and 5xx: never two invitations, never none.

use confluent_invitation_operator::mock::{Fault, FaultAction};

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
async fn a_create_whose_response_was_lost_is_adopted_not_repeated() {
    let Some(env) = env("lost-create").await else {
        return;
    };
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
async fn rate_limits_server_errors_and_dropped_connections_are_retried() {
    let Some(env) = env("transient").await else {
        return;
    };
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
