//! Events say what happened, and are published whatever the object's name.

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
    let _second = env.spawn_operator(&[]);
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
