//! One owner per email: the oldest Invitation for an email owns its Confluent invitation, the
//! others wait; the owner's deletion hands the invitation over.

use kube::runtime::controller::Action;

use super::*;
use crate::invitation::resource::SecretRef;

/// Another Invitation for the same email (in other letter case), in another namespace.
fn rival(namespace: &str, name: &str, created: &str) -> Invitation {
    let mut inv = invitation(true);
    inv.metadata.namespace = Some(namespace.into());
    inv.metadata.name = Some(name.into());
    inv.metadata.uid = Some(format!("uid-{namespace}-{name}"));
    inv.metadata.creation_timestamp = Some(Time(created.parse().expect("time")));
    inv.spec.email = EMAIL.to_ascii_uppercase();
    inv
}

/// A harness whose watch cache holds `obj` and, before it, an older owner of its email that
/// observed the seeded invitation.
async fn claimed_by_an_older_owner(obj: &Invitation) -> Harness {
    let h = harness().await;
    let remote = h.confluent.seed_invitation(EMAIL, None);
    let owner = observing(rival("team-0", "first", "2025-12-31T00:00:00Z"), &remote);
    h.cache(&[owner, obj.clone()]);
    h
}

/// 11. An older Invitation owns the email: this one reports EmailConflict naming it, and sends
/// nothing (at most its credential's list, to learn its organization).
#[tokio::test]
async fn a_younger_claimant_reports_email_conflict_and_sends_nothing() {
    within(async {
        let obj = invitation(true);
        let mut h = claimed_by_an_older_owner(&obj).await;
        let task = h.reconcile(&obj);

        let written = h.api.status_patch(&obj).await;
        let (st, reason, message) = ready(&written);
        assert_eq!((st.as_str(), reason.as_str()), ("False", "EmailConflict"));
        assert!(message.contains("team-0/first"), "{message}");
        assert_eq!(written.invitation_id, None, "nothing adopted");
        assert_eq!(h.api.event("Warning", "EmailConflict").await, message);

        h.api.finish(task).await.expect("a refusal is not an error");
        let calls = h.confluent.calls();
        assert_eq!(
            (
                calls.create,
                calls.get,
                calls.delete,
                calls.total - calls.list
            ),
            (0, 0, 0, 0),
            "no call but the credential's list: {calls:?}"
        );
        assert!(calls.list <= 1, "{calls:?}");
    })
    .await;
}

/// 11b. The same, while this Invitation's organization cannot be learnt (its credential's list
/// fails): it acts on nothing and backs off, rather than taking its credential for another
/// organization than the owner's and adopting the owner's invitation.
#[tokio::test]
async fn a_claimant_whose_organization_cannot_be_learnt_acts_on_nothing() {
    within(async {
        let obj = invitation(true);
        let mut h = claimed_by_an_older_owner(&obj).await;
        h.confluent.inject(failing_lists(503));
        let task = h.reconcile(&obj);
        let (written, events) = h.api.answer_all(&obj, task).await;
        if let Some(written) = &written {
            assert_eq!(written.invitation_id, None, "nothing adopted: {written:?}");
        }
        assert!(
            events.iter().all(|(reason, _)| reason != "Adopted"),
            "{events:?}"
        );
        let calls = h.confluent.calls();
        assert_eq!(
            (calls.list, calls.total),
            (4, 4),
            "the failed list only: {calls:?}"
        );
    })
    .await;
}

/// 12. The owner is deleted while a younger Invitation claims the email: the invitation stays
/// (policy Delete notwithstanding), a HandedOver Event names the successor, the finalizer goes.
#[tokio::test]
async fn the_owners_deletion_hands_the_invitation_over_and_deletes_nothing() {
    // and when this process knows the successor's credential but not yet its organization
    // (reconciled once since a restart, its list still to come), it is not taken for another
    // organization's: the invitation stays for it all the same
    for successor_credential_known in [false, true] {
        hands_over(successor_credential_known).await;
    }
}

async fn hands_over(successor_credential_known: bool) {
    within(async {
        let mut h = harness().await;
        let remote = h.confluent.seed_invitation(EMAIL, None);
        let obj = observing(deleting(invitation(true)), &remote);
        let next = rival("team-b", "second", "2026-01-05T00:00:00Z");
        if successor_credential_known {
            let client = h.ctx.client_of(&next, "team-b").await.expect("credentials");
            h.ctx
                .remember_owner(&controller::context::key(&next), &client);
        }
        h.cache(&[obj.clone(), next]);
        let task = h.reconcile(&obj);
        h.api.current_read(&obj).await;

        let note = h.api.event("Normal", "HandedOver").await;
        assert!(note.contains("team-b/second"), "{note}");
        h.api.finalizer_removal(&obj).await;

        let action = h.api.finish(task).await.expect("cleanup succeeds");
        assert_eq!(action, Action::await_change());
        let calls = h.confluent.calls();
        assert_eq!((calls.delete, calls.create), (0, 0), "{calls:?}");
        let live = h.confluent.live_invitations_for(EMAIL);
        assert_eq!(live.len(), 1, "the invitation stays for team-b/second");
        assert_eq!(live[0].id, remote.id);
    })
    .await;
}

/// 13. The Secret finalizer goes with the last user of the Secret: of two Invitations whose
/// cleanups end at once, the first sees the second pending and keeps it, the second sees the
/// first done and releases it; an Invitation using another Secret does not count.
#[tokio::test]
async fn the_secret_is_released_by_its_last_user_even_when_two_finish_at_once() {
    let h = harness().await;
    let with_secret = |name: &str, secret: &str| {
        let mut inv = deleting(rival(NS, name, "2026-01-01T00:00:00Z"));
        inv.spec.credentials_secret_ref = Some(SecretRef {
            name: secret.into(),
        });
        inv
    };
    let a = with_secret("a", "creds");
    let b = with_secret("b", "creds");
    let c = with_secret("c", "other-creds");
    h.cache(&[a.clone(), b.clone(), c.clone()]);
    use controller::credentials_in_use::still_used;
    assert!(still_used(&h.ctx, &a, NS, "creds"), "b still needs it");
    assert!(
        !still_used(&h.ctx, &b, NS, "creds"),
        "a is done: b releases"
    );
    assert!(
        !still_used(&h.ctx, &c, NS, "other-creds"),
        "c alone uses its own"
    );
}
