//! Preview mode (`--dry-run`): reads and plans, reports what it would do, never writes to
//! Confluent; the same objects then reconcile for real once the flag is gone.

use confluent_client::model::InviteStatus;
use kube::api::DeleteParams;

use crate::harness::*;

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_dry_run_reports_creates_adoptions_and_deletions_and_writes_nothing() {
    let mut env = env("dry-run").await;
    env.kill_operator();
    let existing = env.remote().seed_invitation("known@example.com", None);
    let existing_id = existing.id.clone().unwrap();
    let preview = env.spawn_operator(&["--dry-run"]);
    env.operator = Some(preview);
    env.wait_ready().await;

    env.create(&invitation("new", "new@example.com")).await;
    env.create(&invitation("known", "known@example.com")).await;
    let new = env.wait_reason("new", "WouldCreate").await;
    assert_eq!(ready_of(&new).unwrap().0, "False");
    assert!(ready_of(&new).unwrap().2.starts_with("dry run:"));
    let known = env.wait_reason("known", "WouldAdopt").await;
    assert!(ready_of(&known).unwrap().2.contains(&existing_id));
    let (kind, note) = env.wait_event("new", "WouldCreate").await;
    assert_eq!(kind, "Normal");
    assert!(note.contains("new@example.com"), "{note}");
    env.wait_event("known", "WouldAdopt").await;

    // a deletion is previewed too, and waits behind the finalizer
    env.api
        .delete("new", &DeleteParams::default())
        .await
        .expect("delete accepted");
    env.wait_reason("new", "WouldDelete").await;
    env.wait_event("new", "WouldDelete").await;
    tokio::time::sleep(RESYNC * 3).await;
    assert!(
        env.api.get_opt("new").await.unwrap().is_some(),
        "held by the finalizer"
    );

    let metrics = env.operator.as_ref().unwrap().metrics().await;
    for action in ["WouldCreate", "WouldAdopt", "WouldDelete"] {
        let series =
            format!("confluent_invitation_operator_dry_run_actions_total{{action=\"{action}\"}}");
        assert!(metrics.contains(&series), "{series} missing:\n{metrics}");
    }
    let calls = env.remote().calls();
    assert_eq!(
        (calls.create, calls.delete, calls.delete_user),
        (0, 0, 0),
        "no write in a dry run: {calls:?}"
    );
    assert!(calls.list > 0, "it read: {calls:?}");
    assert!(env.live("new@example.com").is_empty());
    assert!(
        env.operator_log()
            .contains("dry run: would send an invitation to new@example.com"),
        "the log says what it would do"
    );

    // without the flag, the same objects reconcile for real
    env.kill_operator();
    env.start_operator();
    env.wait_gone("new").await;
    let adopted = env.wait_phase("known", "Sent", "True").await;
    assert_eq!(id_of(&adopted), existing_id);
    env.wait_event("known", "Adopted").await;
    assert_eq!(env.remote().calls().create, 0, "the adoption sent nothing");
    assert_eq!(
        env.remote_by_id(&existing_id).unwrap().status,
        Some(InviteStatus::Sent)
    );
}
