//! Create or adopt, observe, recreate, expire, refuse immutable changes.

use confluent_client::model::InviteStatus;

use crate::harness::*;

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn creates_one_invitation_and_follows_its_acceptance() {
    let env = env("create").await;
    let created = env.create(&invitation("jane", "jane@example.com")).await;
    let inv = env.wait_phase("jane", "Sent", "True").await;
    let status = inv.status.clone().unwrap();
    let id = id_of(&inv);
    assert!(id.starts_with("i-"), "{id}");
    let live = env.live("jane@example.com");
    assert_eq!(live.len(), 1, "exactly one remote invitation: {live:?}");
    assert_eq!(live[0].id.as_deref(), Some(id.as_str()));
    assert_eq!(
        status.user_id.as_deref(),
        live[0].user_id(),
        "userId from creation on"
    );
    assert!(status.user_id.as_deref().unwrap().starts_with("u-"));
    assert_eq!(status.remote_status.as_deref(), Some("INVITE_STATUS_SENT"));
    assert_eq!(status.auth_type.as_deref(), Some("AUTH_TYPE_SSO"));
    assert!(status.expires_at.is_some() && status.created_at.is_some());
    assert!(
        status
            .resource_name
            .unwrap()
            .ends_with(&format!("invitation={id}"))
    );
    assert_eq!(status.observed_generation, created.metadata.generation);
    assert_eq!(
        inv.status
            .as_ref()
            .unwrap()
            .ready()
            .unwrap()
            .observed_generation,
        created.metadata.generation
    );
    assert!(has_finalizer(&inv));
    let (kind, note) = env.wait_event("jane", "Created").await;
    assert_eq!(kind, "Normal");
    assert!(note.contains(&id), "{note}");

    env.remote().accept(&id).expect("accepted in the mock");
    let inv = env.wait_phase("jane", "Accepted", "True").await;
    let status = inv.status.unwrap();
    assert_eq!(
        status.remote_status.as_deref(),
        Some("INVITE_STATUS_ACCEPTED")
    );
    assert!(status.accepted_at.is_some());
    assert_eq!(env.remote().calls().create, 1, "no second create");
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn adopts_an_existing_invitation_instead_of_duplicating_it() {
    let env = env("adopt").await;
    let existing = env.remote().seed_invitation("ada@example.com", None);
    env.create(&invitation("ada", "ADA@example.com")).await;
    let inv = env.wait_phase("ada", "Sent", "True").await;
    assert_eq!(Some(id_of(&inv)), existing.id);
    assert_eq!(env.live("ada@example.com").len(), 1);
    assert_eq!(env.remote().calls().create, 0, "adopted, never created");
    let (_, note) = env.wait_event("ada", "Adopted").await;
    assert!(note.contains(existing.id.as_deref().unwrap()), "{note}");
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn recreates_an_invitation_removed_out_of_band() {
    let env = env("recreate").await;
    env.create(&invitation("bob", "bob@example.com")).await;
    let first = id_of(&env.wait_phase("bob", "Sent", "True").await);
    env.remote().remove(&first).expect("removed in the mock");
    let inv = env
        .wait_for("bob", "recreated", |i| {
            i.status
                .as_ref()
                .and_then(|s| s.invitation_id.as_deref())
                .is_some_and(|id| id != first)
                && phase_of(i) == Some("Sent")
        })
        .await;
    let live = env.live("bob@example.com");
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].id, Some(id_of(&inv)));
    env.wait_event("bob", "Recreated").await;
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn expiry_is_reported_and_reinvited_only_when_asked() {
    let env = env("expiry").await;
    env.create(&invitation("kept", "kept@example.com")).await;
    let mut again = invitation("again", "again@example.com");
    again.spec.reinvite_on_expiry = true;
    env.create(&again).await;
    let kept = id_of(&env.wait_phase("kept", "Sent", "True").await);
    let old = id_of(&env.wait_phase("again", "Sent", "True").await);

    env.remote().expire(&kept).expect("expired");
    env.remote().expire(&old).expect("expired");

    let inv = env.wait_phase("kept", "Expired", "False").await;
    let (_, reason, message) = ready_of(&inv).unwrap();
    assert_eq!(reason, "Expired");
    assert!(message.contains("reinviteOnExpiry"), "{message}");
    assert_eq!(
        id_of(&inv),
        kept,
        "no new invitation without reinviteOnExpiry"
    );

    let inv = env
        .wait_for("again", "reinvited", |i| {
            phase_of(i) == Some("Sent")
                && i.status.as_ref().unwrap().invitation_id.as_deref() != Some(old.as_str())
        })
        .await;
    let (_, note) = env.wait_event("again", "Reinvited").await;
    assert!(note.contains(&old) && note.contains(&id_of(&inv)), "{note}");
    assert_eq!(env.live("again@example.com").len(), 1);
    let old_now = env.remote_by_id(&old).unwrap();
    assert_ne!(old_now.status, Some(InviteStatus::Sent));
    // resyncs later: still exactly one, no further creates
    tokio::time::sleep(RESYNC * 3).await;
    assert_eq!(env.live("again@example.com").len(), 1);
    assert!(env.live("kept@example.com").is_empty());
    assert_eq!(env.remote().calls().create, 3, "2 creates + 1 reinvite");
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn changing_the_email_is_refused_without_any_remote_call() {
    let env = env("immutable").await;
    env.create(&invitation("eve", "eve@example.com")).await;
    let id = id_of(&env.wait_phase("eve", "Sent", "True").await);
    let creates = env.remote().calls().create;
    if env.server_enforces_cel().await {
        // The CRD's CEL rule makes the API server refuse the change itself (`cel.rs` shows
        // every rule refused): the controller never sees it. Its own refusal below is proven
        // against a server without CEL, the oldest supported (tests/run-all.sh's 1.20 run).
        let refusal = env
            .api
            .patch(
                "eve",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(
                    serde_json::json!({"spec": {"email": "mallory@example.com"}}),
                ),
            )
            .await
            .expect_err("the API server refuses a changed email");
        assert!(
            matches!(&refusal, kube::Error::Api(s) if s.code == 422 && s.message.contains("spec.email")),
            "{refusal:?}"
        );
        tokio::time::sleep(RESYNC * 2).await;
        let inv = env.wait_phase("eve", "Sent", "True").await;
        assert_eq!(inv.spec.email, "eve@example.com");
        assert_eq!(env.remote().calls().create, creates, "nothing sent");
        assert!(env.live("mallory@example.com").is_empty());
        assert_eq!(
            env.live("eve@example.com")[0].id.as_deref(),
            Some(id.as_str())
        );
        return;
    }
    // A server without CEL (Kubernetes < 1.25 drops the CRD's rules) lets this update through:
    // the controller must refuse by itself.
    env.patch_spec("eve", serde_json::json!({"email": "mallory@example.com"}))
        .await;
    let inv = env.wait_reason("eve", "ImmutableFieldChanged").await;
    let (status, _, message) = ready_of(&inv).unwrap();
    assert_eq!(status, "False");
    assert!(message.contains("email"), "{message}");
    assert_eq!(
        inv.status.as_ref().unwrap().observed_generation,
        inv.metadata.generation
    );
    let (kind, _) = env.wait_event("eve", "ImmutableFieldChanged").await;
    assert_eq!(kind, "Warning");
    assert_eq!(env.remote().calls().create, creates, "nothing sent");
    assert!(env.live("mallory@example.com").is_empty());
    assert_eq!(
        env.live("eve@example.com")[0].id.as_deref(),
        Some(id.as_str())
    );
}
