//! The finalizer and the deletion policies.

use confluent_client::model::InviteStatus;
use confluent_invitation_operator::invitation::resource::{DeletionPolicy, FINALIZER};
use kube::api::{DeleteParams, PostParams};

use crate::harness::*;

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn delete_removes_a_pending_invitation() {
    let env = env("del-pending").await;
    env.create(&invitation("p", "pending@example.com")).await;
    let id = id_of(&env.wait_phase("p", "Sent", "True").await);
    env.delete_and_wait_gone("p").await;
    let remote = env.remote_by_id(&id).unwrap();
    assert_eq!(remote.status, Some(InviteStatus::Deactivated));
    assert!(env.live("pending@example.com").is_empty());
    let (_, note) = env.wait_event("p", "Deleted").await;
    assert!(note.contains(&id));
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn delete_keeps_an_accepted_member_and_says_so() {
    let env = env("del-accepted").await;
    env.create(&invitation("m", "member@example.com")).await;
    let inv = env.wait_phase("m", "Sent", "True").await;
    let id = id_of(&inv);
    let user = inv.status.unwrap().user_id.unwrap();
    env.remote().accept(&id).unwrap();
    env.wait_phase("m", "Accepted", "True").await;
    env.delete_and_wait_gone("m").await;
    let (kind, note) = env.wait_event("m", "AcceptedUserKept").await;
    assert_eq!(kind, "Normal");
    assert!(note.contains(&user), "{note}");
    assert!(
        env.remote()
            .users()
            .iter()
            .any(|u| u.id.as_deref() == Some(user.as_str()))
    );
    assert_eq!(
        env.remote_by_id(&id).unwrap().status,
        Some(InviteStatus::Accepted)
    );
    assert_eq!(env.remote().calls().delete_user, 0);
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn delete_user_removes_an_accepted_member() {
    let env = env("del-user").await;
    let mut inv = invitation("gone", "leaver@example.com");
    inv.spec.deletion_policy = DeletionPolicy::DeleteUser;
    env.create(&inv).await;
    let inv = env.wait_phase("gone", "Sent", "True").await;
    let user = inv.status.clone().unwrap().user_id.unwrap();
    env.remote().accept(&id_of(&inv)).unwrap();
    env.wait_phase("gone", "Accepted", "True").await;
    env.delete_and_wait_gone("gone").await;
    assert!(
        !env.remote()
            .users()
            .iter()
            .any(|u| u.id.as_deref() == Some(user.as_str()))
    );
    env.wait_event("gone", "UserDeleted").await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn orphan_touches_nothing_remote() {
    let env = env("del-orphan").await;
    let mut inv = invitation("o", "orphan@example.com");
    inv.spec.deletion_policy = DeletionPolicy::Orphan;
    env.create(&inv).await;
    let id = id_of(&env.wait_phase("o", "Sent", "True").await);
    env.delete_and_wait_gone("o").await;
    assert_eq!(
        env.remote_by_id(&id).unwrap().status,
        Some(InviteStatus::Sent)
    );
    assert_eq!(env.remote().calls().delete, 0);
    env.wait_event("o", "Orphaned").await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_resource_deleted_before_its_id_reached_status_is_cleaned_up_by_email() {
    let mut env = env("del-noid").await;
    // The operator crashed right after its create reached Confluent, before status was written.
    env.kill_operator();
    let remote = env.remote().seed_invitation("crash@example.com", None);
    let mut inv = invitation("c", "crash@example.com");
    inv.metadata.finalizers = Some(vec![FINALIZER.to_owned()]);
    env.api.create(&PostParams::default(), &inv).await.unwrap();
    env.api.delete("c", &DeleteParams::default()).await.unwrap();
    assert!(
        env.api.get_opt("c").await.unwrap().is_some(),
        "held by the finalizer"
    );
    env.start_operator();
    env.wait_gone("c").await;
    assert_eq!(
        env.remote_by_id(remote.id.as_deref().unwrap())
            .unwrap()
            .status,
        Some(InviteStatus::Deactivated)
    );
    assert!(env.live("crash@example.com").is_empty());
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn cleanup_never_deletes_the_invitation_a_patched_status_names() {
    let env = env("del-patched").await;
    env.create(&invitation("a", "a@example.com")).await;
    env.create(&invitation("b", "b@example.com")).await;
    let ours = id_of(&env.wait_phase("a", "Sent", "True").await);
    let theirs = id_of(&env.wait_phase("b", "Sent", "True").await);
    // someone with invitations/status write access (or a restore) points a at b's invitation
    let patch = serde_json::json!({"status": {"invitationId": theirs}});
    env.api
        .patch_status(
            "a",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .expect("status patched");
    env.delete_and_wait_gone("a").await;
    assert_eq!(
        env.remote_by_id(&theirs).and_then(|i| i.status),
        Some(InviteStatus::Sent),
        "b's invitation was touched"
    );
    assert_eq!(
        env.remote_by_id(&ours).and_then(|i| i.status),
        Some(InviteStatus::Deactivated),
        "a's own invitation was left behind"
    );
    assert!(env.live("a@example.com").is_empty());
    let (_, note) = env.wait_event("a", "Deleted").await;
    assert!(note.contains(&ours) && !note.contains(&theirs), "{note}");
    // b never noticed anything
    let b = env.api.get("b").await.expect("readable");
    assert_eq!(id_of(&b), theirs);
    assert_eq!(ready_of(&b).map(|r| r.0), Some("True".to_owned()));
    assert_eq!(env.live("b@example.com").len(), 1);
}
