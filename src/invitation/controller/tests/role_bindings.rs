//! Role bindings: recorded in the status ledger before they are created, adopted after a lost
//! answer, deleted before the invitation, and a previous user's kept until its delete succeeds.

use super::*;
use crate::invitation::resource::DeletionPolicy;
use crate::role_bindings::resource::{RoleBinding, RoleBindingState, RoleBindingStatus};
use confluent_client::model::InviteStatus;

const ENV_CRN_REL: &str = "environment=env-abc";
const TOPIC_CRN_REL: &str = "environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders";

fn environment_admin() -> RoleBinding {
    RoleBinding {
        role_name: "EnvironmentAdmin".into(),
        crn_pattern: ENV_CRN_REL.into(),
    }
}

fn with_bindings(mut inv: Invitation) -> Invitation {
    inv.spec.role_bindings = vec![
        environment_admin(),
        RoleBinding {
            role_name: "DeveloperRead".into(),
            crn_pattern: TOPIC_CRN_REL.into(),
        },
    ];
    inv
}

/// An EnvironmentAdmin binding of `user` on `ENV_CRN_REL` in `remote`'s organization, seeded in
/// the mock: its status entry, Bound.
fn seeded_environment_admin(
    h: &Harness,
    remote: &RemoteInvitation,
    user: &str,
) -> RoleBindingStatus {
    let org = remote
        .resource_name()
        .and_then(confluent_client::role_bindings::organization_of)
        .expect("an organization");
    let crn = format!("crn://confluent.cloud/organization={org}/{ENV_CRN_REL}");
    let binding =
        h.confluent
            .seed_role_binding(&confluent_client::role_bindings::CreateRoleBinding {
                principal: format!("User:{user}"),
                role_name: "EnvironmentAdmin".into(),
                crn_pattern: crn.clone(),
            });
    RoleBindingStatus {
        role_name: "EnvironmentAdmin".into(),
        crn_pattern: crn,
        id: binding.id,
        state: RoleBindingState::Bound,
        message: None,
        principal: None,
    }
}

/// A pending invitation whose invitee holds the seeded EnvironmentAdmin binding, and an
/// Invitation being deleted whose ledger records it Bound: (the remote invitation, the
/// binding's id, the object).
fn deleting_with_recorded_admin(h: &Harness) -> (RemoteInvitation, String, Invitation) {
    let remote = h.confluent.seed_invitation(EMAIL, None);
    let user = remote.user_id().expect("a user").to_owned();
    let entry = seeded_environment_admin(h, &remote, &user);
    let id = entry.id.clone().expect("an id");
    let mut status = observed(&remote);
    status.role_bindings = vec![entry];
    let obj = with_status(&deleting(invitation(true)), &status);
    (remote, id, obj)
}

/// 14. An invitation with two bindings over two scopes: the invitation, then one list per
/// scope; the ledger is recorded with both `Creating` before any create is sent (a lost answer
/// or a crash can then never leave one unrecorded), then one create per binding, both Bound in
/// the next status write, Ready True.
#[tokio::test]
async fn bindings_are_recorded_before_they_are_created_then_bound() {
    within(async {
        let mut h = harness().await;
        let obj = with_bindings(invitation(true));
        let task = h.reconcile(&obj);

        // the ledger before the creates
        let intent = h.api.status_patch(&obj).await;
        assert!(
            h.confluent.role_bindings().is_empty(),
            "recorded before anything is sent"
        );
        assert_eq!(
            intent
                .role_bindings
                .iter()
                .map(|e| e.state)
                .collect::<Vec<_>>(),
            [RoleBindingState::Creating; 2]
        );
        let user = intent.user_id.clone().expect("a user id");
        assert!(
            intent
                .role_bindings
                .iter()
                .all(|e| e.principal.as_deref() == Some(format!("User:{user}").as_str())),
            "each entry names whose binding it is: {intent:?}"
        );
        assert!(
            intent.invitation_id.is_some(),
            "the invitation is recorded with it"
        );
        let first = h.api.event("Normal", "RoleBindingCreated").await;
        let second = h.api.event("Normal", "RoleBindingCreated").await;
        assert!(
            first.contains("EnvironmentAdmin on crn://confluent.cloud/organization="),
            "{first}"
        );
        assert!(
            second.contains("DeveloperRead") && second.contains("topic=orders"),
            "{second}"
        );
        let written = h.api.status_patch(&obj).await;
        let remote = h.confluent.role_bindings();
        assert_eq!(remote.len(), 2, "{remote:?}");
        assert_eq!(written.role_bindings.len(), 2);
        for (entry, role) in written
            .role_bindings
            .iter()
            .zip(["EnvironmentAdmin", "DeveloperRead"])
        {
            assert_eq!(entry.role_name, role);
            assert_eq!(entry.state, RoleBindingState::Bound);
            assert!(
                entry
                    .crn_pattern
                    .starts_with("crn://confluent.cloud/organization=")
            );
            let id = entry.id.as_deref().expect("an id");
            let b = remote
                .iter()
                .find(|b| b.id.as_deref() == Some(id))
                .expect("in the mock");
            assert_eq!(
                b.principal.as_deref(),
                Some(format!("User:{user}").as_str())
            );
            assert_eq!(b.role_name.as_deref(), Some(role));
        }
        let (st, reason, _) = ready(&written);
        assert_eq!((st.as_str(), reason.as_str()), ("True", "Sent"));
        h.api.event("Normal", "Created").await;

        let action = h.api.finish(task).await.expect("reconcile succeeds");
        assert_eq!(action, Action::await_change());
        let calls = h.confluent.role_binding_calls();
        assert_eq!(
            (calls.list, calls.create),
            (2, 2),
            "one list per scope: {calls:?}"
        );
    })
    .await;
}

/// 15. A create whose answer is lost: recorded `Creating` (it was recorded before it was sent,
/// and stays so), Ready False, a retry; the retry looks the binding up exactly before anything
/// else and takes the one the lost create made: one binding, never two.
#[tokio::test]
async fn a_binding_whose_create_answer_was_lost_is_adopted_not_created_twice() {
    within(async {
        let mut h = harness().await;
        let remote = h.confluent.seed_invitation(EMAIL, None);
        let mut obj = observing(invitation(true), &remote);
        obj.spec.role_bindings = vec![environment_admin()];
        let lost = FaultAction::CommitThenDrop;
        h.confluent
            .inject(fault("POST", "/iam/v2/role-bindings", 1, lost));
        let task = h.reconcile(&obj);
        // the ledger before the create, then the status
        h.api.status_patch(&obj).await;
        let written = h.api.status_patch(&obj).await;
        assert_eq!(written.role_bindings.len(), 1);
        assert_eq!(
            (
                written.role_bindings[0].state,
                written.role_bindings[0].id.as_deref()
            ),
            (RoleBindingState::Creating, None),
            "maybe created: to be looked up"
        );
        let (st, reason, _) = ready(&written);
        assert_eq!(
            (st.as_str(), reason.as_str()),
            ("False", "RoleBindingPending")
        );
        assert_eq!(
            written.phase.as_deref(),
            Some("Sent"),
            "the invitation's phase stands"
        );
        let after = with_status(&obj, &written);
        let action = h.api.finish(task).await.expect("reconcile returns");
        assert_ne!(action, Action::await_change(), "a retry is scheduled");
        assert_eq!(
            h.confluent.role_bindings().len(),
            1,
            "the lost create committed"
        );

        // the retry: an exact look-up finds it, it is taken, no second create
        let task = h.reconcile(&after);
        let note = h.api.event("Normal", "RoleBindingAdopted").await;
        let id = h.confluent.role_bindings()[0].id.clone().expect("an id");
        assert!(note.contains(&id), "{note}");
        let written = h.api.status_patch(&after).await;
        assert_eq!(written.role_bindings[0].id.as_deref(), Some(id.as_str()));
        assert_eq!(written.role_bindings[0].state, RoleBindingState::Bound);
        assert_eq!(ready(&written).0, "True");
        h.api.finish(task).await.expect("reconcile succeeds");
        // the held list predates the lost create: the retry looks the binding up exactly (one
        // small list, not the whole scope again) before any create, and adopts it
        let calls = h.confluent.role_binding_calls();
        assert_eq!(
            (calls.create, calls.list),
            (1, 2),
            "scope list, create (lost), exact look-up: {calls:?}"
        );
        assert_eq!(
            h.confluent.role_bindings().len(),
            1,
            "never a second binding"
        );
    })
    .await;
}

/// 16. Deletion with `Delete`: the recorded bindings go first, then the pending invitation.
#[tokio::test]
async fn deletion_deletes_the_recorded_bindings_before_the_invitation() {
    within(async {
        let mut h = harness().await;
        let (_, id, obj) = deleting_with_recorded_admin(&h);
        let task = h.reconcile(&obj);
        h.api.current_read(&obj).await;

        let note = h.api.event("Normal", "RoleBindingDeleted").await;
        assert!(note.contains(&id), "{note}");
        assert!(
            h.confluent.role_bindings().is_empty(),
            "the binding went first"
        );
        assert_eq!(
            h.confluent.invitations()[0].status,
            Some(InviteStatus::Sent),
            "the invitation is still there"
        );
        h.api.event("Normal", "Deleted").await;
        h.api.finalizer_removal(&obj).await;
        h.api.finish(task).await.expect("cleanup succeeds");
        assert_eq!(
            h.confluent.invitations()[0].status,
            Some(InviteStatus::Deactivated)
        );
        let calls = h.confluent.role_binding_calls();
        assert_eq!(
            (calls.list, calls.delete),
            (0, 1),
            "deleted by id, no list: {calls:?}"
        );
    })
    .await;
}

/// 16b. The watch cache still shows the object as it was before the ledger was written (the
/// write's watch event not delivered yet, e.g. around an API server restart): the cleanup
/// decides on what the API server holds, so the recorded binding goes, not forgotten.
#[tokio::test]
async fn deletion_decides_on_the_ledger_the_api_server_holds_not_the_cached_one() {
    within(async {
        let mut h = harness().await;
        let (remote, id, current) = deleting_with_recorded_admin(&h);
        let cached = with_status(&deleting(invitation(true)), &observed(&remote));
        let task = h.reconcile(&cached);
        h.api.current_read(&current).await;

        let note = h.api.event("Normal", "RoleBindingDeleted").await;
        assert!(note.contains(&id), "{note}");
        assert!(h.confluent.role_bindings().is_empty(), "the grant went");
        h.api.event("Normal", "Deleted").await;
        h.api.finalizer_removal(&current).await;
        h.api.finish(task).await.expect("cleanup succeeds");
    })
    .await;
}

/// 16c. Deletion with `Orphan`: the recorded binding is left as asked, and the `Orphaned` Event
/// names it (with the invitation): once the Invitation is gone, nothing else records it.
#[tokio::test]
async fn an_orphan_deletion_names_the_bindings_it_leaves_live() {
    within(async {
        let mut h = harness().await;
        let (remote, id, mut obj) = deleting_with_recorded_admin(&h);
        obj.spec.deletion_policy = DeletionPolicy::Orphan;
        let task = h.reconcile(&obj);
        h.api.current_read(&obj).await;

        let note = h.api.event("Normal", "Orphaned").await;
        let invitation_id = remote.id.clone().expect("an id");
        assert!(
            note.contains(&invitation_id)
                && note.contains(&id)
                && note.contains("EnvironmentAdmin"),
            "{note}"
        );
        assert!(note.contains("no longer managed"), "{note}");
        h.api.finalizer_removal(&obj).await;
        h.api.finish(task).await.expect("cleanup succeeds");
        assert_eq!(h.confluent.role_bindings().len(), 1, "left as asked");
        assert_eq!(h.confluent.calls().total, 0, "Orphan sends nothing");
    })
    .await;
}

/// 17. The invitation was sent again and its invitee is a new user: the previous user's binding
/// is deleted. When that delete fails, the entry stays recorded with the previous user's
/// principal (status.userId names the new one by then), and the next reconcile deletes it: it
/// is never taken for the new user's and forgotten, which would leave the previous user's
/// access in place.
#[tokio::test]
async fn a_previous_users_binding_stays_recorded_until_its_delete_succeeds() {
    within(async {
        let mut h = harness().await;
        let remote = h.confluent.seed_invitation(EMAIL, None);
        let previous = h.confluent.seed_invitation("previous@example.com", None);
        let previous_user = previous.user_id().expect("a user").to_owned();
        let old = seeded_environment_admin(&h, &remote, &previous_user);
        let old_id = old.id.clone().expect("an id");
        let mut status = observed(&remote);
        status.user_id = Some(previous_user.clone());
        status.role_bindings = vec![old];
        let mut obj = with_status(&invitation(true), &status);
        obj.spec.role_bindings = vec![environment_admin()];
        let unavailable = FaultAction::Status { status: 503 };
        h.confluent
            .inject(fault("DELETE", "/iam/v2/role-bindings/", 4, unavailable));

        let task = h.reconcile(&obj);
        let (written, _) = h.api.answer_all(&obj, task).await;
        let written = written.expect("a status write");
        let user = remote.user_id().expect("a user");
        assert_eq!(written.user_id.as_deref(), Some(user));
        let kept = written
            .role_bindings
            .iter()
            .find(|r| r.id.as_deref() == Some(old_id.as_str()))
            .unwrap_or_else(|| panic!("the previous user's binding stays recorded: {written:?}"));
        assert_eq!(
            kept.principal.as_deref(),
            Some(format!("User:{previous_user}").as_str())
        );
        assert!(
            h.confluent
                .role_bindings()
                .iter()
                .any(|b| b.id.as_deref() == Some(old_id.as_str())),
            "its delete failed"
        );
        let current = format!("User:{user}");
        assert!(
            written
                .role_bindings
                .iter()
                .any(|r| r.principal.as_deref() == Some(current.as_str())
                    && r.state == RoleBindingState::Bound
                    && r.id.as_deref() != Some(old_id.as_str())),
            "the new user's binding is created meanwhile: {written:?}"
        );

        obj.status = Some(written);
        let task = h.reconcile(&obj);
        let (written, events) = h.api.answer_all(&obj, task).await;
        assert!(
            !h.confluent
                .role_bindings()
                .iter()
                .any(|b| b.id.as_deref() == Some(old_id.as_str())),
            "deleted by the next reconcile"
        );
        assert!(
            events
                .iter()
                .any(|(reason, note)| reason == "RoleBindingDeleted"
                    && note.contains(&old_id)
                    && note.contains(&previous_user)),
            "{events:?}"
        );
        let written = written.expect("a status write");
        assert!(
            written
                .role_bindings
                .iter()
                .all(|r| r.principal.as_deref() == Some(current.as_str())
                    && r.id.as_deref() != Some(old_id.as_str())),
            "{written:?}"
        );
    })
    .await;
}
