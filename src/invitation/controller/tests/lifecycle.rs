//! An Invitation's life, one reconcile at a time: the finalizer, the create, the reads, the
//! refusals, the deletion, the Events and the pause.

use std::time::Duration;

use http::{Method, StatusCode};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::*;
use crate::invitation::resource::{DeletionPolicy, PAUSED_ANNOTATION, SecretRef};
use confluent_client::model::InviteStatus;

/// 1. No finalizer yet: the finalizer is added (and nothing else happens) before any remote work.
#[tokio::test]
async fn a_new_invitation_first_gets_the_finalizer_and_nothing_else() {
    within(async {
        let mut h = harness().await;
        let obj = invitation(false);
        let task = h.reconcile(&obj);

        let patch = json!([
            { "op": "test", "path": "/metadata/finalizers", "value": null },
            { "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] },
        ]);
        h.api.finalizer_added(&obj, &patch).await;

        let action = h.api.finish(task).await.expect("reconcile succeeds");
        assert_eq!(
            action,
            Action::await_change(),
            "the patch's watch event follows"
        );
        assert_eq!(
            h.confluent.calls().total,
            0,
            "no Confluent call before the finalizer"
        );
        assert!(h.confluent.invitations().is_empty());
    })
    .await;
}

/// 1b. Someone else's finalizer is kept: the test op pins the current list, the add appends.
#[tokio::test]
async fn the_finalizer_is_appended_after_foreign_ones() {
    within(async {
        let mut h = harness().await;
        let mut obj = invitation(false);
        obj.metadata.finalizers = Some(vec!["example.com/other".into()]);
        let task = h.reconcile(&obj);

        let patch = json!([
            { "op": "test", "path": "/metadata/finalizers", "value": ["example.com/other"] },
            { "op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER },
        ]);
        h.api.finalizer_added(&obj, &patch).await;

        let action = h.api.finish(task).await.expect("reconcile succeeds");
        assert_eq!(action, Action::await_change());
        assert_eq!(h.confluent.calls().total, 0);
    })
    .await;
}

/// 2. Finalizer on, no status: look up by email, create, apply status, then the `Created` Event.
#[tokio::test]
async fn a_new_invitation_is_created_then_status_then_event() {
    within(async {
        let mut h = harness().await;
        let obj = invitation(true);
        let task = h.reconcile(&obj);

        let (written, patch) = h.api.status_patch_held(&obj).await;
        // by now Confluent was asked: one look-up by email, one create
        let calls = h.confluent.calls();
        assert_eq!(
            (calls.list, calls.create, calls.total),
            (1, 1, 2),
            "{calls:?}"
        );
        let remote = h.confluent.invitations();
        assert_eq!(remote.len(), 1, "{remote:?}");
        let remote = &remote[0];
        let id = remote.id.clone().expect("an id");
        assert_eq!(remote.status, Some(InviteStatus::Sent));

        assert_eq!(written.invitation_id.as_deref(), Some(id.as_str()));
        assert_eq!(written.user_id.as_deref(), remote.user_id());
        assert_eq!(written.email.as_deref(), Some(EMAIL));
        assert_eq!(written.phase.as_deref(), Some("Sent"));
        assert_eq!(written.remote_status.as_deref(), Some("INVITE_STATUS_SENT"));
        assert_eq!(written.observed_generation, Some(GENERATION));
        let (st, reason, message) = ready(&written);
        assert_eq!((st.as_str(), reason.as_str()), ("True", "Sent"));
        assert!(message.contains(&id), "{message}");
        // every other field is exactly the status computed from the mock's invitation
        let mut want = observed(remote);
        want.conditions[0].last_transition_time =
            written.ready().expect("Ready").last_transition_time.clone();
        assert_eq!(written, want);
        patch.answer();

        let note = h.api.event("Normal", "Created").await;
        assert_eq!(note, format!("Sent invitation {id} to {EMAIL}"));

        let action = h.api.finish(task).await.expect("reconcile succeeds");
        assert_eq!(action, Action::await_change(), "the sweeper looks again");
        assert_eq!(h.confluent.calls().total, 2, "nothing after the create");
    })
    .await;
}

/// 3. Status already says what Confluent says: one read (the credential's snapshot list, not a
/// GET), no write, no Event; a second reconcile reads the same snapshot and calls nothing.
#[tokio::test]
async fn an_unchanged_invitation_is_read_and_nothing_is_written() {
    within(async {
        let mut h = harness().await;
        let remote = h.confluent.seed_invitation(EMAIL, None);
        let obj = observing(invitation(true), &remote);
        let task = h.reconcile(&obj);

        // zero Kubernetes requests: the first one would fail the test
        let action = h.api.finish(task).await.expect("reconcile succeeds");
        assert_eq!(action, Action::await_change(), "the sweeper looks again");
        let calls = h.confluent.calls();
        assert_eq!(
            (calls.list, calls.get, calls.total),
            (1, 0, 1),
            "one snapshot list only: {calls:?}"
        );
        // and nothing trickles in afterwards
        assert!(
            h.api.quiet_for(Duration::from_millis(300)).await,
            "a request came after the reconcile returned"
        );

        // the next reconcile of the same credential reuses the snapshot: no call at all
        let task = h.reconcile(&obj);
        h.api.finish(task).await.expect("reconcile succeeds");
        assert_eq!(h.confluent.calls().total, 1, "the snapshot was reused");
    })
    .await;
}

/// 3b. The snapshot list fails on every attempt. An invitation reconciled again unchanged
/// (after a restart, every one at once) is not read by id instead: one GET per resource would be
/// N calls on an outage; it backs off, writing nothing, status as last observed. One whose spec
/// changed reads its own invitation by id, since the list alone may be what is broken; not under
/// a 429 though: that GET would spend the budget that just ran out.
#[tokio::test]
async fn a_failed_snapshot_is_replaced_by_a_get_only_for_a_changed_invitation_and_not_under_a_429()
{
    within(async {
        for (status, changed, gets) in [(503, false, 0), (503, true, 1), (429, true, 0)] {
            let mut h = harness().await;
            let remote = h.confluent.seed_invitation(EMAIL, None);
            h.confluent.inject(failing_lists(status));
            let mut obj = observing(invitation(true), &remote);
            if changed {
                obj.metadata.generation = Some(GENERATION + 1);
            }
            let task = h.reconcile(&obj);
            let (written, _) = h.api.answer_all(&obj, task).await;
            let calls = h.confluent.calls();
            assert_eq!(
                (calls.list, calls.get),
                (4, gets),
                "{status} changed={changed}: the list and its retries, then {gets} GET: {calls:?}"
            );
            if gets == 0 {
                assert_eq!(
                    written, None,
                    "{status} changed={changed}: status as it was"
                );
            } else {
                let written = written.expect("the change observed");
                assert_eq!(written.observed_generation, Some(GENERATION + 1));
            }
        }
    })
    .await;
}

/// 3d. While the credential's list is in flight (slow: another resource's reconcile started
/// it), an unchanged invitation does not wait for it, holding a worker: it returns at once,
/// without a call or a write, and looks again shortly. (After a restart every resource is
/// reconciled at once: waiting, they took every worker for the length of each list, and a new
/// Invitation queued behind all of them.)
#[tokio::test]
async fn an_unchanged_invitation_does_not_wait_for_a_list_in_flight() {
    within(async {
        let mut h = harness().await;
        let remote = h.confluent.seed_invitation(EMAIL, None);
        h.confluent.set_latency(Duration::from_secs(3));
        let unchanged = observing(invitation(true), &remote);
        let mut changed = unchanged.clone();
        changed.metadata.generation = Some(GENERATION + 1);
        let listing = h.reconcile(&changed);
        // the changed one's list is on its way
        while h.confluent.calls().list == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let task = h.reconcile(&unchanged);
        let action = h.api.finish(task).await.expect("returns");
        assert!(
            !listing.is_finished(),
            "returned while the list was in flight"
        );
        assert_ne!(action, Action::await_change(), "looks again shortly");
        assert_eq!(h.confluent.calls().total, 1, "no call of its own");
        // the changed one goes on and observes its change
        let (written, _) = h.api.answer_all(&changed, listing).await;
        assert_eq!(
            written.expect("a status write").observed_generation,
            Some(GENERATION + 1)
        );
    })
    .await;
}

/// 3c. A new Invitation whose credential's snapshot cannot be listed (a 5xx on every attempt):
/// one look-up by email stands in for the whole organization's pages, and the invitation is
/// created; under a 429 it waits for the list like everyone (3b).
#[tokio::test]
async fn a_new_invitation_looks_its_email_up_when_the_snapshot_cannot_be_listed() {
    within(async {
        for (status, created) in [(503, 1), (429, 0)] {
            let mut h = harness().await;
            h.confluent.inject(failing_lists(status));
            let obj = invitation(true);
            let task = h.reconcile(&obj);
            let (written, _) = h.api.answer_all(&obj, task).await;
            let calls = h.confluent.calls();
            assert_eq!(
                (calls.list, calls.create),
                (4 + created, created),
                "{status}: the list's attempts, then {created} look-up and create: {calls:?}"
            );
            if created == 1 {
                let written = written.expect("a status write");
                assert!(written.invitation_id.is_some(), "{written:?}");
            }
        }
    })
    .await;
}

/// 4. The email changed under an existing invitation: refused without asking Confluent.
#[tokio::test]
async fn a_changed_email_is_refused_with_a_warning_and_no_confluent_call() {
    within(async {
        let mut h = harness().await;
        let remote = h.confluent.seed_invitation(EMAIL, None);
        let id = remote.id.clone().expect("an id");
        let mut obj = observing(invitation(true), &remote);
        obj.spec.email = "john@example.com".into();
        let task = h.reconcile(&obj);

        let written = h.api.status_patch(&obj).await;
        let (st, reason, message) = ready(&written);
        assert_eq!(
            (st.as_str(), reason.as_str()),
            ("False", "ImmutableFieldChanged")
        );
        assert!(
            message.contains(EMAIL) && message.contains("john@example.com"),
            "{message}"
        );
        // the remote facts stay as they were; Ready flipped, so its transition time moved
        assert_eq!(written.invitation_id.as_deref(), Some(id.as_str()));
        assert_eq!(written.email.as_deref(), Some(EMAIL));
        assert_eq!(written.phase.as_deref(), Some("Sent"));
        assert_eq!(written.observed_generation, Some(GENERATION));

        let note = h.api.event("Warning", "ImmutableFieldChanged").await;
        assert_eq!(note, message);

        let action = h.api.finish(task).await.expect("a refusal is not an error");
        assert_ne!(action, Action::await_change(), "retried slowly");
        assert_eq!(h.confluent.calls().total, 0, "nothing sent for a bad spec");
    })
    .await;
}

/// 5. Confluent answers 403 to the create: Ready=False Forbidden with Confluent's words, and a
/// Warning.
#[tokio::test]
async fn a_forbidden_create_is_explained_in_status_and_a_warning() {
    within(async {
        let mut h = harness().await;
        let forbidden = FaultAction::Status { status: 403 };
        h.confluent
            .inject(fault("POST", "/iam/v2/invitations", 1, forbidden));
        let obj = invitation(true);
        let task = h.reconcile(&obj);

        let (written, patch) = h.api.status_patch_held(&obj).await;
        let calls = h.confluent.calls();
        assert_eq!(
            (calls.list, calls.create, calls.faults_injected, calls.total),
            (1, 1, 1, 2),
            "{calls:?}"
        );
        let (st, reason, message) = ready(&written);
        assert_eq!((st.as_str(), reason.as_str()), ("False", "Forbidden"));
        assert!(
            message.contains("Injected fault: the mock answers 403"),
            "Confluent's detail: {message}"
        );
        assert!(message.contains("HTTP 403"), "{message}");
        assert!(message.contains("user_unauthorized"), "{message}");
        assert_eq!(
            written.phase.as_deref(),
            Some(status::Phase::Pending.as_str())
        );
        assert_eq!(written.invitation_id, None);
        assert_eq!(written.observed_generation, Some(GENERATION));
        patch.answer();

        let note = h.api.event("Warning", "Forbidden").await;
        assert_eq!(note, message);

        let action = h.api.finish(task).await.expect("a refusal is not an error");
        assert_ne!(action, Action::await_change());
        assert!(h.confluent.invitations().is_empty(), "nothing was created");
    })
    .await;
}

/// 6. Deletion with policy Delete: read, delete remotely, `Deleted` Event, then the finalizer goes.
#[tokio::test]
async fn deletion_deletes_the_invitation_then_releases_the_finalizer() {
    within(async {
        let mut h = harness().await;
        let remote = h.confluent.seed_invitation(EMAIL, None);
        let id = remote.id.clone().expect("an id");
        let obj = observing(deleting(invitation(true)), &remote);
        let task = h.reconcile(&obj);
        h.api.current_read(&obj).await;

        let (note, event) = h.api.event_held("Normal", "Deleted").await;
        let calls = h.confluent.calls();
        assert_eq!(
            (calls.get, calls.delete, calls.total),
            (1, 1, 2),
            "GET then DELETE: {calls:?}"
        );
        let now = h.confluent.invitations();
        assert_eq!(now.len(), 1);
        assert_eq!(now[0].status, Some(InviteStatus::Deactivated), "{now:?}");
        assert_eq!(note, format!("Deleted invitation {id} for {EMAIL}"));
        event.answer();

        h.api.finalizer_removal(&obj).await;

        let action = h.api.finish(task).await.expect("cleanup succeeds");
        assert_eq!(action, Action::await_change());
        assert_eq!(h.confluent.calls().total, 2);
    })
    .await;
}

/// 7. Deletion with policy Orphan: nothing remote, `Orphaned` Event, the finalizer goes.
#[tokio::test]
async fn orphan_deletion_touches_nothing_remote() {
    within(async {
        let mut h = harness().await;
        let remote = h.confluent.seed_invitation(EMAIL, None);
        let id = remote.id.clone().expect("an id");
        let mut obj = observing(deleting(invitation(true)), &remote);
        obj.spec.deletion_policy = DeletionPolicy::Orphan;
        let task = h.reconcile(&obj);
        h.api.current_read(&obj).await;

        let note = h.api.event("Normal", "Orphaned").await;
        assert!(note.contains(&id), "{note}");
        h.api.finalizer_removal(&obj).await;

        let action = h.api.finish(task).await.expect("cleanup succeeds");
        assert_eq!(action, Action::await_change());
        assert_eq!(h.confluent.calls().total, 0, "Orphan sends nothing");
        assert_eq!(
            h.confluent.invitations()[0].status,
            Some(InviteStatus::Sent),
            "the invitation is left as it is"
        );
    })
    .await;
}

/// 8. The named Secret does not exist: Ready=False CredentialsMissing, a Warning, no Confluent
/// call.
#[tokio::test]
async fn a_missing_secret_is_reported_without_calling_confluent() {
    within(async {
        let mut h = harness().await;
        let mut obj = invitation(true);
        obj.spec.credentials_secret_ref = Some(SecretRef {
            name: "nope".into(),
        });
        let task = h.reconcile(&obj);

        let secret = format!("/api/v1/namespaces/{NS}/secrets/nope");
        let seen = h
            .api
            .expect(Method::GET, &secret, None, "the Secret read")
            .await;
        assert_eq!(seen.body, Value::Null);
        seen.respond(StatusCode::NOT_FOUND, &not_found("secrets", "nope"));

        let written = h.api.status_patch(&obj).await;
        let (st, reason, message) = ready(&written);
        assert_eq!(
            (st.as_str(), reason.as_str()),
            ("False", "CredentialsMissing")
        );
        assert_eq!(
            message,
            format!("Secret {NS}/nope named by spec.credentialsSecretRef does not exist")
        );
        assert_eq!(
            written.phase.as_deref(),
            Some(status::Phase::Pending.as_str())
        );

        let note = h.api.event("Warning", "CredentialsMissing").await;
        assert_eq!(note, message);

        let action = h.api.finish(task).await.expect("a refusal is not an error");
        assert_ne!(action, Action::await_change());
        assert_eq!(h.confluent.calls().total, 0, "no Confluent call");
    })
    .await;
}

/// 9. kube's Recorder deduplicates: the same Event again (same type, reason and object) within its
/// cache window is a merge PATCH of the first Event with `series.count: 2`, not a second POST.
#[tokio::test]
async fn a_repeated_event_patches_the_first_one_as_a_series() {
    within(async {
        let mut h = harness().await;
        let remote = h.confluent.seed_invitation(EMAIL, None);
        let mut obj = observing(invitation(true), &remote);
        obj.spec.email = "john@example.com".into();

        // first round: status, then a new Event
        let task = h.reconcile(&obj);
        h.api.status_patch(&obj).await;
        let (_, event) = h.api.event_held("Warning", "ImmutableFieldChanged").await;
        let first = event.sent().clone();
        let first_name = first["metadata"]["name"].as_str().expect("name").to_owned();
        event.answer();
        h.api.finish(task).await.expect("first reconcile");

        // second round of the same object: the Recorder patches the Event it remembers
        let task = h.reconcile(&obj);
        h.api.status_patch(&obj).await;
        let seen = h
            .api
            .expect(
                Method::PATCH,
                &format!("/apis/events.k8s.io/v1/namespaces/{NS}/events/{first_name}?"),
                Some(MERGE_PATCH),
                "the Event series patch",
            )
            .await;
        let patch = &seen.body;
        assert_eq!(patch["series"]["count"], 2, "{patch}");
        assert!(patch["series"]["lastObservedTime"].is_string(), "{patch}");
        let mut rest = patch.clone();
        rest.as_object_mut().expect("object").remove("series");
        assert_eq!(rest, first, "otherwise the first Event as it was sent");
        let mut stored_event = seen.body.clone();
        stored_event["metadata"]["resourceVersion"] = json!("2002");
        seen.ok(&stored_event);
        h.api.finish(task).await.expect("second reconcile");
        assert_eq!(h.confluent.calls().total, 0);
    })
    .await;
}

/// 10. The Recorder is handed over after its share of Events, so its cache stays bounded.
#[tokio::test]
async fn the_event_recorder_is_replaced_after_its_share_of_events() {
    let (service, _handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let kube = kube::Client::new(service, "default");
    let reporter = kube::runtime::events::Reporter {
        controller: "test".into(),
        instance: None,
    };
    let sink = crate::runtime::events::EventSink::new(kube, reporter, 3);
    for _ in 0..3 {
        let _ = sink.recorder();
    }
    assert_eq!(
        sink.handovers(),
        0,
        "the first three Events share one Recorder"
    );
    let _ = sink.recorder();
    assert_eq!(sink.handovers(), 1, "the fourth gets a fresh one");
    for _ in 0..5 {
        let _ = sink.recorder();
    }
    assert_eq!(sink.handovers(), 2);
}

/// The watch cache keeps what reconciles read and nothing a `kubectl apply` or a GitOps tool adds.
#[test]
fn the_watch_cache_keeps_what_reconciles_read_and_drops_the_rest() {
    let mut obj: Invitation = serde_json::from_value(json!({
        "apiVersion": "iam.ccloud.dev/v1alpha1",
        "kind": "Invitation",
        "metadata": {
            "name": "jane", "namespace": "team-a", "uid": "u1", "resourceVersion": "7",
            "generation": 2, "finalizers": [FINALIZER],
            "labels": {"app.kubernetes.io/instance": "people"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"spec\":{}}",
                "argocd.argoproj.io/tracking-id": "people:iam.ccloud.dev/Invitation:team-a/jane"
            },
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
        },
        "spec": {"email": "jane@example.com"},
        "status": {"invitationId": "i-1", "observedGeneration": 2}
    }))
    .unwrap();
    let kept = (
        obj.spec.clone(),
        obj.status.clone(),
        obj.finalizers().to_vec(),
    );
    controller::strip_for_cache(&mut obj);
    assert!(obj.annotations().is_empty() && obj.labels().is_empty());
    assert!(
        obj.metadata
            .managed_fields
            .as_ref()
            .is_none_or(Vec::is_empty)
    );
    assert_eq!(
        (
            obj.spec.clone(),
            obj.status.clone(),
            obj.finalizers().to_vec()
        ),
        kept
    );
    assert_eq!(
        (obj.metadata.generation, obj.metadata.uid.as_deref()),
        (Some(2), Some("u1"))
    );
    assert_eq!(obj.metadata.resource_version.as_deref(), Some("7"));
}

#[test]
fn the_pause_annotation_survives_the_cache_and_its_change_wakes_a_reconcile() {
    let mut obj = invitation(true);
    let unpaused = controller::user_changes(&obj);
    obj.annotations_mut().insert(
        "kubectl.kubernetes.io/last-applied-configuration".into(),
        "{}".into(),
    );
    obj.annotations_mut()
        .insert(PAUSED_ANNOTATION.into(), "true".into());
    controller::strip_for_cache(&mut obj);
    assert_eq!(obj.annotations().len(), 1);
    assert!(obj.paused());
    assert_ne!(controller::user_changes(&obj), unpaused);
    obj.annotations_mut()
        .insert(PAUSED_ANNOTATION.into(), "false".into());
    assert!(!obj.paused(), "only \"true\" pauses");
    assert_eq!(controller::user_changes(&obj), unpaused);
}

/// A paused Invitation, even one being deleted: status says Paused, one Normal Event, no
/// Confluent call and no finalizer change; held again, it writes nothing at all.
#[tokio::test]
async fn a_paused_invitation_is_held_without_any_confluent_call() {
    within(async {
        let mut h = harness().await;
        let remote = h.confluent.seed_invitation(EMAIL, None);
        let mut obj = observing(deleting(invitation(true)), &remote);
        obj.annotations_mut()
            .insert(PAUSED_ANNOTATION.into(), "true".into());
        let task = h.reconcile(&obj);

        let written = h.api.status_patch(&obj).await;
        let (st, reason, message) = ready(&written);
        assert_eq!((st.as_str(), reason.as_str()), ("False", "Paused"));
        assert!(message.contains("deletion waits"), "{message}");
        assert_eq!(written.phase.as_deref(), Some("Sent"), "remote facts kept");
        h.api.event("Normal", "Paused").await;
        let action = h.api.finish(task).await.expect("held");
        assert_eq!(action, Action::await_change());

        let task = h.reconcile(&with_status(&obj, &written));
        h.api.finish(task).await.expect("held again, silently");
        assert_eq!(h.confluent.calls().total, 0, "no Confluent call");
    })
    .await;
}
