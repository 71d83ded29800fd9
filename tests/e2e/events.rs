//! Events say what happened, and are published whatever the object's name.

use confluent_mock::{Fault, FaultAction};

use crate::harness::*;

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_253_character_name_gets_its_events() {
    let env = env("long-name").await;
    // the longest valid name, with dots: every label at most 63 characters
    let name = format!(
        "{}.{}.{}.{}",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61)
    );
    assert_eq!(name.len(), 253);
    env.create(&invitation(&name, "long@example.com")).await;
    let id = id_of(&env.wait_phase(&name, "Sent", "True").await);
    let (kind, note) = env.wait_event(&name, "Created").await;
    assert_eq!(kind, "Normal");
    assert!(note.contains(&id), "{note}");
    env.delete_and_wait_gone(&name).await;
    env.wait_event(&name, "Deleted").await;
    assert!(
        !env.operator_log().contains("could not publish Event"),
        "an Event was refused"
    );
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn two_replicas_without_election_never_call_our_own_invitation_adopted() {
    let mut env = env("two-replicas").await;
    let second = env.spawn_operator(&[]);
    let ready = format!("http://{}/readyz", second.http);
    eventually("the second replica ready", WAIT, || async {
        let r = reqwest::get(&ready).await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    // slow answers: both replicas look up, find nothing and create at the same time
    env.remote()
        .set_latency(std::time::Duration::from_millis(400));
    for i in 0..4 {
        env.create(&invitation(&format!("r{i}"), &format!("r{i}@example.com")))
            .await;
    }
    for i in 0..4 {
        let name = format!("r{i}");
        let id = id_of(&env.wait_phase(&name, "Sent", "True").await);
        assert_eq!(env.live(&format!("r{i}@example.com")).len(), 1);
        let (_, note) = env.wait_event(&name, "Created").await;
        assert!(note.contains(&id), "{note}");
        let events = env.events(&name).await;
        assert!(
            events.iter().all(|e| e.1 != "Adopted"),
            "{name}'s own invitation announced as adopted: {events:?}"
        );
        assert_eq!(
            events.iter().filter(|e| e.1 == "Created").count(),
            1,
            "{events:?}"
        );
    }
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn an_invitation_whose_create_response_was_lost_is_recovered_not_adopted() {
    let env = env("recovered").await;
    env.remote().inject(Fault {
        method: Some("POST".into()),
        path_prefix: "/iam/v2/invitations".into(),
        count: 1,
        action: FaultAction::CommitThen500,
    });
    env.create(&invitation("lost", "lost@example.com")).await;
    let id = id_of(&env.wait_phase("lost", "Sent", "True").await);
    let (kind, note) = env.wait_event("lost", "Recovered").await;
    assert_eq!(kind, "Normal");
    assert!(note.contains(&id), "{note}");
    let events = env.events("lost").await;
    assert!(events.iter().all(|e| e.1 != "Adopted"), "{events:?}");
    assert_eq!(env.live("lost@example.com").len(), 1);
}
