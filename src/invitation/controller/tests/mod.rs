//! Single reconcile steps, checked request by request: the Kubernetes API server is a
//! `tower_test` mock answered by a scripted verifier (kube-rs's controller-rs `fixtures.rs`
//! pattern), Confluent is the crate's in-process mock. Each test asserts the exact Kubernetes
//! requests of one reconcile, in the order kube sends them (method, path and query, content type,
//! JSON body), answers them as an API server would, and counts the Confluent calls.
//!
//! After the scripted requests, [`ApiServer::finish`] waits for the reconcile to return while
//! failing on any further request, so a missing request fails with a timeout and an extra one
//! fails by name instead of hanging (or vanishing: Event errors are only logged).

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::client::Body;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{Context, Error, Settings};
use crate::invitation::resource::{
    DeletionPolicy, FINALIZER, Invitation, InvitationSpec, InvitationStatus, SecretRef,
};
use crate::invitation::status::{self, Outcome};
use crate::runtime::FIELD_MANAGER;
use crate::runtime::credentials::CredentialStore;
use crate::runtime::metrics::Metrics;
use confluent_client::model::{InviteStatus, RemoteInvitation};
use confluent_client::{ClientSettings, Credentials};
use confluent_mock::{Fault, FaultAction, MockConfig, MockHandle, MockServer};

const NS: &str = "team-a";
const NAME: &str = "jane";
const EMAIL: &str = "jane@example.com";
const UID: &str = "5b1c8f0e-2d7a-4e39-9a51-0c6f3e8d2b17";
const GENERATION: i64 = 3;
/// How long one expected request (or the end of the reconcile) may take to come.
const STEP: Duration = Duration::from_secs(10);

const INVITATION_PATH: &str = "/apis/iam.ccloud.dev/v1alpha1/namespaces/team-a/invitations/jane";
const JSON_PATCH: &str = "application/json-patch+json";
const APPLY_PATCH: &str = "application/apply-patch+yaml";
const MERGE_PATCH: &str = "application/merge-patch+json";
const JSON: &str = "application/json";

fn status_path() -> String {
    format!("{INVITATION_PATH}/status?&force=true&fieldManager={FIELD_MANAGER}")
}

fn events_path() -> String {
    format!("/apis/events.k8s.io/v1/namespaces/{NS}/events?")
}

// ---- the scripted API server ----

type ApiServerHandle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
type Reply = tower_test::mock::SendResponse<Response<Body>>;

/// The Kubernetes API server's side of the client: each request is taken, checked and answered
/// by the test, in order.
struct ApiServer(ApiServerHandle);

/// One request of the reconcile, read whole, with its pending answer.
struct Seen {
    method: Method,
    uri: String,
    content_type: Option<String>,
    body: Value,
    reply: Reply,
}

impl ApiServer {
    /// The next request; fails the test if none comes within [`STEP`].
    async fn next(&mut self, what: &str) -> Seen {
        let (request, reply) = tokio::time::timeout(STEP, self.0.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request came: expected {what}"))
            .unwrap_or_else(|| panic!("the client went away: expected {what}"));
        let method = request.method().clone();
        let uri = request.uri().to_string();
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().expect("ASCII content type").to_owned());
        let bytes = request
            .into_body()
            .collect_bytes()
            .await
            .expect("request body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{method} {uri}: body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Seen {
            method,
            uri,
            content_type,
            body,
            reply,
        }
    }

    /// The next request, checked to be `method uri` with `content_type`.
    async fn expect(
        &mut self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        what: &str,
    ) -> Seen {
        let seen = self.next(what).await;
        assert_eq!(
            (&seen.method, seen.uri.as_str()),
            (&method, uri),
            "{what}: wrong request (body {})",
            seen.body
        );
        assert_eq!(
            seen.content_type.as_deref(),
            content_type,
            "{what}: content type"
        );
        seen
    }

    /// Waits for the reconcile to return, failing on any request it sends meanwhile.
    async fn finish(&mut self, task: JoinHandle<Result<Action, Error>>) -> Result<Action, Error> {
        let done = tokio::time::timeout(STEP, task);
        tokio::select! {
            biased;
            request = self.0.next_request() => match request {
                Some((r, _)) => panic!("unexpected request {} {}", r.method(), r.uri()),
                None => panic!("the client went away before the reconcile returned"),
            },
            result = done => result
                .expect("the reconcile did not return")
                .expect("the reconcile panicked"),
        }
    }
}

impl Seen {
    /// Answers with `status` and a JSON body.
    fn respond(self, status: StatusCode, body: &Value) {
        let response = Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, JSON)
            .body(Body::from(serde_json::to_vec(body).expect("JSON")))
            .expect("response");
        self.reply.send_response(response);
    }

    /// Answers 200 with `body`.
    fn ok(self, body: &Value) {
        self.respond(StatusCode::OK, body);
    }

    /// Answers an Event POST as the API server does: 201 with the stored Event.
    fn created_event(self) {
        let mut event = self.body.clone();
        let meta = &mut event["metadata"];
        meta["uid"] = json!("0d7f6c2a-3e1b-4c5d-8e9f-a0b1c2d3e4f5");
        meta["resourceVersion"] = json!("2001");
        meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        self.respond(StatusCode::CREATED, &event);
    }
}

/// A `metav1.Status` 404, as the API server answers a missing object.
fn not_found(resource: &str, name: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("{resource} \"{name}\" not found"),
        "reason": "NotFound",
        "details": { "name": name, "kind": resource },
        "code": 404
    })
}

// ---- the Invitation as stored ----

fn spec() -> InvitationSpec {
    InvitationSpec::of_email(EMAIL)
}

/// An Invitation as the API server would hand it over, with or without our finalizer.
fn invitation(with_finalizer: bool) -> Invitation {
    let mut inv = Invitation::new(NAME, spec());
    let meta = &mut inv.metadata;
    meta.namespace = Some(NS.into());
    meta.uid = Some(UID.into());
    meta.resource_version = Some("1000".into());
    meta.generation = Some(GENERATION);
    meta.creation_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().expect("time")));
    if with_finalizer {
        meta.finalizers = Some(vec![FINALIZER.into()]);
    }
    inv
}

/// The object being deleted: deletionTimestamp set, our finalizer still on.
fn deleting(mut inv: Invitation) -> Invitation {
    inv.metadata.deletion_timestamp = Some(Time("2026-01-02T00:00:00Z".parse().expect("time")));
    inv.metadata.deletion_grace_period_seconds = Some(0);
    inv
}

/// The object as the API server returns it after a write: the new resourceVersion.
fn stored(inv: &Invitation) -> Value {
    let mut v = serde_json::to_value(inv).expect("Invitation to JSON");
    let rv: u64 = inv
        .metadata
        .resource_version
        .as_deref()
        .unwrap_or("0")
        .parse()
        .expect("numeric resourceVersion");
    v["metadata"]["resourceVersion"] = json!((rv + 1).to_string());
    v
}

/// The status the operator writes after observing `remote`.
fn observed(remote: &RemoteInvitation) -> InvitationStatus {
    status::next_status(
        None,
        &Outcome::Remote(remote),
        Some(GENERATION),
        jiff::Timestamp::now(),
    )
}

// ---- the harness ----

struct Harness {
    ctx: Arc<Context>,
    /// Fills the context's watch cache, as the reflector would.
    cache: parking_lot::Mutex<kube::runtime::reflector::store::Writer<Invitation>>,
    api: ApiServer,
    confluent: MockHandle,
    // Kept for the test's length: dropping it stops the mock.
    _server: MockServer,
}

async fn harness() -> Harness {
    let server = confluent_mock::start(
        "127.0.0.1:0".parse().expect("address"),
        MockConfig {
            api_keys: vec![("k".into(), "s".into())],
            ..Default::default()
        },
    )
    .await
    .expect("Confluent mock starts");
    let credentials = CredentialStore::new(
        confluent_client::http_client(Duration::from_secs(5)).expect("HTTP client"),
        ClientSettings::new(&server.base_url()).expect("mock URL"),
        None,
        Some(Credentials::api_key("k", "s")),
        false,
    );
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let kube = kube::Client::new(service, "default");
    let settings = Settings {
        resync: Duration::from_secs(300),
        concurrency: 1,
        namespace: None,
        label_selector: None,
        allowed_email_domains: vec![],
        allowed_roles: None,
        dry_run: false,
    };
    let runtime = crate::runtime::Runtime {
        kube: crate::runtime::Kube::new(kube, None),
        confluent: Arc::new(crate::runtime::Confluent::new(credentials, settings.resync)),
        metrics: Arc::new(Metrics::new()),
    };
    let (store, writer) = kube::runtime::reflector::store();
    let (wake, _woken) = futures::channel::mpsc::unbounded();
    let ctx = Context::new(&runtime, settings, store, wake);
    Harness {
        ctx: Arc::new(ctx),
        cache: parking_lot::Mutex::new(writer),
        api: ApiServer(handle),
        confluent: server.state(),
        _server: server,
    }
}

impl Harness {
    /// Starts one reconcile of `obj`; the test then plays the API server.
    fn reconcile(&self, obj: &Invitation) -> JoinHandle<Result<Action, Error>> {
        tokio::spawn(super::reconcile(Arc::new(obj.clone()), self.ctx.clone()))
    }
}

/// Runs a test body with an overall deadline, so nothing can hang the suite.
async fn within<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(Duration::from_secs(60), body)
        .await
        .expect("test timed out");
}

// ---- assertions on what was sent ----

/// Checks a server-side-apply status patch and returns its status.
fn applied_status(seen: &Seen) -> InvitationStatus {
    let body = &seen.body;
    assert_eq!(body["apiVersion"], "iam.ccloud.dev/v1alpha1", "{body}");
    assert_eq!(body["kind"], "Invitation", "{body}");
    let keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["apiVersion", "kind", "status"],
        "only status is applied: {body}"
    );
    serde_json::from_value(body["status"].clone()).expect("an InvitationStatus")
}

/// The Ready condition's (status, reason, message).
fn ready(status: &InvitationStatus) -> (String, String, String) {
    let c = status.ready().expect("a Ready condition");
    assert_eq!(c.observed_generation, Some(GENERATION));
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

/// Checks an `events.k8s.io/v1` Event about our Invitation; returns its note.
fn event_note(seen: &Seen, type_: &str, reason: &str) -> String {
    let e = &seen.body;
    assert_eq!(e["apiVersion"], "events.k8s.io/v1", "{e}");
    assert_eq!(e["kind"], "Event", "{e}");
    assert_eq!(e["type"], type_, "{e}");
    assert_eq!(e["reason"], reason, "{e}");
    assert_eq!(e["action"], "Reconcile", "{e}");
    assert_eq!(e["reportingController"], FIELD_MANAGER, "{e}");
    assert_eq!(e["reportingInstance"], FIELD_MANAGER, "{e}");
    assert_eq!(e["metadata"]["namespace"], NS, "{e}");
    let name = e["metadata"]["name"].as_str().expect("an Event name");
    assert!(name.starts_with(&format!("{NAME}.")), "{name}");
    assert!(e["eventTime"].is_string(), "{e}");
    assert_eq!(
        e["regarding"],
        json!({
            "apiVersion": "iam.ccloud.dev/v1alpha1",
            "kind": "Invitation",
            "name": NAME,
            "namespace": NS,
            "uid": UID,
        }),
        "{e}"
    );
    assert!(e.get("series").is_none(), "a new Event has no series: {e}");
    e["note"].as_str().expect("a note").to_owned()
}

/// Checks the finalizer-removal JSON patch of kube-runtime's finalizer helper.
fn assert_finalizer_removal(seen: &Seen) {
    assert_eq!(
        seen.body,
        json!([
            { "op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER },
            { "op": "remove", "path": "/metadata/finalizers/0" },
        ])
    );
}

// ---- the tests ----

/// 1. No finalizer yet: the finalizer is added (and nothing else happens) before any remote work.
#[tokio::test]
async fn a_new_invitation_first_gets_the_finalizer_and_nothing_else() {
    within(async {
        let mut h = harness().await;
        let obj = invitation(false);
        let task = h.reconcile(&obj);

        let seen = h
            .api
            .expect(
                Method::PATCH,
                &format!("{INVITATION_PATH}?"),
                Some(JSON_PATCH),
                "the finalizer patch",
            )
            .await;
        assert_eq!(
            seen.body,
            json!([
                { "op": "test", "path": "/metadata/finalizers", "value": null },
                { "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] },
            ])
        );
        seen.ok(&stored(&invitation(true)));

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

        let seen = h
            .api
            .expect(
                Method::PATCH,
                &format!("{INVITATION_PATH}?"),
                Some(JSON_PATCH),
                "the finalizer patch",
            )
            .await;
        assert_eq!(
            seen.body,
            json!([
                { "op": "test", "path": "/metadata/finalizers", "value": ["example.com/other"] },
                { "op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER },
            ])
        );
        let mut patched = obj.clone();
        patched.metadata.finalizers = Some(vec!["example.com/other".into(), FINALIZER.into()]);
        seen.ok(&stored(&patched));

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

        let seen = h
            .api
            .expect(
                Method::PATCH,
                &status_path(),
                Some(APPLY_PATCH),
                "the status patch",
            )
            .await;
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

        let written = applied_status(&seen);
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
        let mut after = obj.clone();
        after.status = Some(written);
        seen.ok(&stored(&after));

        let seen = h
            .api
            .expect(
                Method::POST,
                &events_path(),
                Some(JSON),
                "the Created Event",
            )
            .await;
        let note = event_note(&seen, "Normal", "Created");
        assert_eq!(note, format!("Sent invitation {id} to {EMAIL}"));
        seen.created_event();

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
        let mut obj = invitation(true);
        obj.status = Some(observed(&remote));
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
        let late = tokio::time::timeout(Duration::from_millis(300), h.api.0.next_request()).await;
        assert!(late.is_err(), "a request came after the reconcile returned");

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
            h.confluent.inject(Fault {
                method: Some("GET".into()),
                path_prefix: "/iam/v2/invitations?".into(),
                count: 4,
                action: FaultAction::Status { status },
            });
            let mut obj = invitation(true);
            obj.status = Some(observed(&remote));
            if changed {
                obj.metadata.generation = Some(GENERATION + 1);
            }
            let task = h.reconcile(&obj);
            let (written, _) = answer_all(&mut h, &obj, task).await;
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
        let mut changed = invitation(true);
        changed.status = Some(observed(&remote));
        changed.metadata.generation = Some(GENERATION + 1);
        let listing = h.reconcile(&changed);
        // the changed one's list is on its way
        while h.confluent.calls().list == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut unchanged = invitation(true);
        unchanged.status = Some(observed(&remote));
        let task = h.reconcile(&unchanged);
        let action = h.api.finish(task).await.expect("returns");
        assert!(
            !listing.is_finished(),
            "returned while the list was in flight"
        );
        assert_ne!(action, Action::await_change(), "looks again shortly");
        assert_eq!(h.confluent.calls().total, 1, "no call of its own");
        // the changed one goes on and observes its change
        let (written, _) = answer_all(&mut h, &changed, listing).await;
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
            h.confluent.inject(Fault {
                method: Some("GET".into()),
                path_prefix: "/iam/v2/invitations?".into(),
                count: 4,
                action: FaultAction::Status { status },
            });
            let obj = invitation(true);
            let task = h.reconcile(&obj);
            let (written, _) = answer_all(&mut h, &obj, task).await;
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
        let prev = observed(&remote);
        let mut obj = invitation(true);
        obj.spec.email = "john@example.com".into();
        obj.status = Some(prev.clone());
        let task = h.reconcile(&obj);

        let seen = h
            .api
            .expect(
                Method::PATCH,
                &status_path(),
                Some(APPLY_PATCH),
                "the status patch",
            )
            .await;
        let written = applied_status(&seen);
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
        let mut after = obj.clone();
        after.status = Some(written);
        seen.ok(&stored(&after));

        let seen = h
            .api
            .expect(
                Method::POST,
                &events_path(),
                Some(JSON),
                "the Warning Event",
            )
            .await;
        let note = event_note(&seen, "Warning", "ImmutableFieldChanged");
        assert_eq!(note, message);
        seen.created_event();

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
        h.confluent.inject(Fault {
            method: Some("POST".into()),
            path_prefix: "/iam/v2/invitations".into(),
            count: 1,
            action: FaultAction::Status { status: 403 },
        });
        let obj = invitation(true);
        let task = h.reconcile(&obj);

        let seen = h
            .api
            .expect(
                Method::PATCH,
                &status_path(),
                Some(APPLY_PATCH),
                "the status patch",
            )
            .await;
        let calls = h.confluent.calls();
        assert_eq!(
            (calls.list, calls.create, calls.faults_injected, calls.total),
            (1, 1, 1, 2),
            "{calls:?}"
        );
        let written = applied_status(&seen);
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
        let mut after = obj.clone();
        after.status = Some(written);
        seen.ok(&stored(&after));

        let seen = h
            .api
            .expect(
                Method::POST,
                &events_path(),
                Some(JSON),
                "the Warning Event",
            )
            .await;
        let note = event_note(&seen, "Warning", "Forbidden");
        assert_eq!(note, message);
        seen.created_event();

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
        let mut obj = deleting(invitation(true));
        obj.status = Some(observed(&remote));
        let task = h.reconcile(&obj);

        let seen = h
            .api
            .expect(
                Method::POST,
                &events_path(),
                Some(JSON),
                "the Deleted Event",
            )
            .await;
        let calls = h.confluent.calls();
        assert_eq!(
            (calls.get, calls.delete, calls.total),
            (1, 1, 2),
            "GET then DELETE: {calls:?}"
        );
        let now = h.confluent.invitations();
        assert_eq!(now.len(), 1);
        assert_eq!(now[0].status, Some(InviteStatus::Deactivated), "{now:?}");
        let note = event_note(&seen, "Normal", "Deleted");
        assert_eq!(note, format!("Deleted invitation {id} for {EMAIL}"));
        seen.created_event();

        let seen = h
            .api
            .expect(
                Method::PATCH,
                &format!("{INVITATION_PATH}?"),
                Some(JSON_PATCH),
                "the finalizer removal",
            )
            .await;
        assert_finalizer_removal(&seen);
        let mut released = obj.clone();
        released.metadata.finalizers = None;
        seen.ok(&stored(&released));

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
        let mut obj = deleting(invitation(true));
        obj.spec.deletion_policy = DeletionPolicy::Orphan;
        obj.status = Some(observed(&remote));
        let task = h.reconcile(&obj);

        let seen = h
            .api
            .expect(
                Method::POST,
                &events_path(),
                Some(JSON),
                "the Orphaned Event",
            )
            .await;
        let note = event_note(&seen, "Normal", "Orphaned");
        assert!(note.contains(&id), "{note}");
        seen.created_event();

        let seen = h
            .api
            .expect(
                Method::PATCH,
                &format!("{INVITATION_PATH}?"),
                Some(JSON_PATCH),
                "the finalizer removal",
            )
            .await;
        assert_finalizer_removal(&seen);
        let mut released = obj.clone();
        released.metadata.finalizers = None;
        seen.ok(&stored(&released));

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

        let seen = h
            .api
            .expect(
                Method::GET,
                &format!("/api/v1/namespaces/{NS}/secrets/nope"),
                None,
                "the Secret read",
            )
            .await;
        assert_eq!(seen.body, Value::Null);
        seen.respond(StatusCode::NOT_FOUND, &not_found("secrets", "nope"));

        let seen = h
            .api
            .expect(
                Method::PATCH,
                &status_path(),
                Some(APPLY_PATCH),
                "the status patch",
            )
            .await;
        let written = applied_status(&seen);
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
        let mut after = obj.clone();
        after.status = Some(written);
        seen.ok(&stored(&after));

        let seen = h
            .api
            .expect(
                Method::POST,
                &events_path(),
                Some(JSON),
                "the Warning Event",
            )
            .await;
        let note = event_note(&seen, "Warning", "CredentialsMissing");
        assert_eq!(note, message);
        seen.created_event();

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
        let mut obj = invitation(true);
        obj.spec.email = "john@example.com".into();
        obj.status = Some(observed(&remote));

        // first round: status, then a new Event
        let task = h.reconcile(&obj);
        h.api
            .expect(
                Method::PATCH,
                &status_path(),
                Some(APPLY_PATCH),
                "the status patch",
            )
            .await
            .ok(&stored(&obj));
        let seen = h
            .api
            .expect(Method::POST, &events_path(), Some(JSON), "the first Event")
            .await;
        event_note(&seen, "Warning", "ImmutableFieldChanged");
        let first = seen.body.clone();
        let first_name = first["metadata"]["name"].as_str().expect("name").to_owned();
        seen.created_event();
        h.api.finish(task).await.expect("first reconcile");

        // second round of the same object: the Recorder patches the Event it remembers
        let task = h.reconcile(&obj);
        h.api
            .expect(
                Method::PATCH,
                &status_path(),
                Some(APPLY_PATCH),
                "the status patch",
            )
            .await
            .ok(&stored(&obj));
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
    use kube::ResourceExt;
    let mut obj: Invitation = serde_json::from_value(json!({
        "apiVersion": "iam.ccloud.dev/v1alpha1",
        "kind": "Invitation",
        "metadata": {
            "name": "jane", "namespace": "team-a", "uid": "u1", "resourceVersion": "7",
            "generation": 2, "finalizers": [crate::invitation::resource::FINALIZER],
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
    super::strip_for_cache(&mut obj);
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

// ---- one owner per email ----

/// Puts `objects` in the controller's watch cache, as the reflector would.
fn cache(h: &Harness, objects: &[Invitation]) {
    let mut writer = h.cache.lock();
    for o in objects {
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(o.clone()));
    }
}

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

/// 11. An older Invitation owns the email: this one reports EmailConflict naming it, and sends
/// nothing (at most its credential's list, to learn its organization).
#[tokio::test]
async fn a_younger_claimant_reports_email_conflict_and_sends_nothing() {
    within(async {
        let mut h = harness().await;
        let remote = h.confluent.seed_invitation(EMAIL, None);
        let mut owner = rival("team-0", "first", "2025-12-31T00:00:00Z");
        owner.status = Some(observed(&remote));
        let obj = invitation(true);
        cache(&h, &[owner, obj.clone()]);
        let task = h.reconcile(&obj);

        let seen = h
            .api
            .expect(
                Method::PATCH,
                &status_path(),
                Some(APPLY_PATCH),
                "the status patch",
            )
            .await;
        let written = applied_status(&seen);
        let (st, reason, message) = ready(&written);
        assert_eq!((st.as_str(), reason.as_str()), ("False", "EmailConflict"));
        assert!(message.contains("team-0/first"), "{message}");
        assert_eq!(written.invitation_id, None, "nothing adopted");
        let mut after = obj.clone();
        after.status = Some(written);
        seen.ok(&stored(&after));
        let seen = h
            .api
            .expect(Method::POST, &events_path(), Some(JSON), "the Warning")
            .await;
        assert_eq!(event_note(&seen, "Warning", "EmailConflict"), message);
        seen.created_event();

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
        let mut h = harness().await;
        let remote = h.confluent.seed_invitation(EMAIL, None);
        let mut owner = rival("team-0", "first", "2025-12-31T00:00:00Z");
        owner.status = Some(observed(&remote));
        let obj = invitation(true);
        cache(&h, &[owner, obj.clone()]);
        h.confluent.inject(Fault {
            method: Some("GET".into()),
            path_prefix: "/iam/v2/invitations?".into(),
            count: 4,
            action: FaultAction::Status { status: 503 },
        });
        let task = h.reconcile(&obj);
        let (written, events) = answer_all(&mut h, &obj, task).await;
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
        let mut obj = deleting(invitation(true));
        obj.status = Some(observed(&remote));
        let next = rival("team-b", "second", "2026-01-05T00:00:00Z");
        if successor_credential_known {
            let client = h.ctx.client_of(&next, "team-b").await.expect("credentials");
            h.ctx.remember_owner(&super::context::key(&next), &client);
        }
        cache(&h, &[obj.clone(), next]);
        let task = h.reconcile(&obj);

        let seen = h
            .api
            .expect(
                Method::POST,
                &events_path(),
                Some(JSON),
                "the HandedOver Event",
            )
            .await;
        let note = event_note(&seen, "Normal", "HandedOver");
        assert!(note.contains("team-b/second"), "{note}");
        seen.created_event();
        let seen = h
            .api
            .expect(
                Method::PATCH,
                &format!("{INVITATION_PATH}?"),
                Some(JSON_PATCH),
                "the finalizer removal",
            )
            .await;
        assert_finalizer_removal(&seen);
        let mut released = obj.clone();
        released.metadata.finalizers = None;
        seen.ok(&stored(&released));

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
    cache(&h, &[a.clone(), b.clone(), c.clone()]);
    use super::credentials_in_use::still_used;
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

#[test]
fn the_pause_annotation_survives_the_cache_and_its_change_wakes_a_reconcile() {
    use kube::ResourceExt;
    let mut obj = invitation(true);
    let unpaused = super::user_changes(&obj);
    obj.annotations_mut().insert(
        "kubectl.kubernetes.io/last-applied-configuration".into(),
        "{}".into(),
    );
    obj.annotations_mut().insert(
        crate::invitation::resource::PAUSED_ANNOTATION.into(),
        "true".into(),
    );
    super::strip_for_cache(&mut obj);
    assert_eq!(obj.annotations().len(), 1);
    assert!(obj.paused());
    assert_ne!(super::user_changes(&obj), unpaused);
    obj.annotations_mut().insert(
        crate::invitation::resource::PAUSED_ANNOTATION.into(),
        "false".into(),
    );
    assert!(!obj.paused(), "only \"true\" pauses");
    assert_eq!(super::user_changes(&obj), unpaused);
}

/// A paused Invitation, even one being deleted: status says Paused, one Normal Event, no
/// Confluent call and no finalizer change; held again, it writes nothing at all.
#[tokio::test]
async fn a_paused_invitation_is_held_without_any_confluent_call() {
    within(async {
        use kube::ResourceExt;
        let mut h = harness().await;
        let remote = h.confluent.seed_invitation(EMAIL, None);
        let mut obj = deleting(invitation(true));
        obj.status = Some(observed(&remote));
        obj.annotations_mut().insert(
            crate::invitation::resource::PAUSED_ANNOTATION.into(),
            "true".into(),
        );
        let task = h.reconcile(&obj);

        let seen = h
            .api
            .expect(
                Method::PATCH,
                &status_path(),
                Some(APPLY_PATCH),
                "the status patch",
            )
            .await;
        let written = applied_status(&seen);
        let (st, reason, message) = ready(&written);
        assert_eq!((st.as_str(), reason.as_str()), ("False", "Paused"));
        assert!(message.contains("deletion waits"), "{message}");
        assert_eq!(written.phase.as_deref(), Some("Sent"), "remote facts kept");
        let mut after = obj.clone();
        after.status = Some(written);
        seen.ok(&stored(&after));
        let seen = h
            .api
            .expect(Method::POST, &events_path(), Some(JSON), "the Paused Event")
            .await;
        event_note(&seen, "Normal", "Paused");
        seen.created_event();
        let action = h.api.finish(task).await.expect("held");
        assert_eq!(action, Action::await_change());

        let task = h.reconcile(&after);
        h.api.finish(task).await.expect("held again, silently");
        assert_eq!(h.confluent.calls().total, 0, "no Confluent call");
    })
    .await;
}

// ---- role bindings ----

const ENV_CRN_REL: &str = "environment=env-abc";
const TOPIC_CRN_REL: &str = "environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders";

fn with_bindings(mut inv: Invitation) -> Invitation {
    inv.spec.role_bindings = vec![
        crate::role_bindings::resource::RoleBinding {
            role_name: "EnvironmentAdmin".into(),
            crn_pattern: ENV_CRN_REL.into(),
        },
        crate::role_bindings::resource::RoleBinding {
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
) -> crate::role_bindings::resource::RoleBindingStatus {
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
    crate::role_bindings::resource::RoleBindingStatus {
        role_name: "EnvironmentAdmin".into(),
        crn_pattern: crn,
        id: binding.id,
        state: crate::role_bindings::resource::RoleBindingState::Bound,
        message: None,
        principal: None,
    }
}

/// The next Event request, checked as a Normal `reason` Event; answered; returns its note.
async fn normal_event(h: &mut Harness, reason: &str) -> String {
    let seen = h
        .api
        .expect(Method::POST, &events_path(), Some(JSON), reason)
        .await;
    let note = event_note(&seen, "Normal", reason);
    seen.created_event();
    note
}

/// The next request, checked as the status patch; answered as stored; returns what it wrote.
async fn status_patch(h: &mut Harness, obj: &Invitation, what: &str) -> InvitationStatus {
    let seen = h
        .api
        .expect(Method::PATCH, &status_path(), Some(APPLY_PATCH), what)
        .await;
    let written = applied_status(&seen);
    let mut after = obj.clone();
    after.status = Some(written.clone());
    seen.ok(&stored(&after));
    written
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

        let intent = status_patch(&mut h, &obj, "the ledger before the creates").await;
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
            [crate::role_bindings::resource::RoleBindingState::Creating; 2]
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
        let first = normal_event(&mut h, "RoleBindingCreated").await;
        let second = normal_event(&mut h, "RoleBindingCreated").await;
        assert!(
            first.contains("EnvironmentAdmin on crn://confluent.cloud/organization="),
            "{first}"
        );
        assert!(
            second.contains("DeveloperRead") && second.contains("topic=orders"),
            "{second}"
        );
        let written = status_patch(&mut h, &obj, "the status patch").await;
        let remote = h.confluent.role_bindings();
        assert_eq!(remote.len(), 2, "{remote:?}");
        assert_eq!(written.role_bindings.len(), 2);
        for (entry, role) in written
            .role_bindings
            .iter()
            .zip(["EnvironmentAdmin", "DeveloperRead"])
        {
            assert_eq!(entry.role_name, role);
            assert_eq!(
                entry.state,
                crate::role_bindings::resource::RoleBindingState::Bound
            );
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
        normal_event(&mut h, "Created").await;

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
        let mut obj = invitation(true);
        obj.spec.role_bindings = vec![crate::role_bindings::resource::RoleBinding {
            role_name: "EnvironmentAdmin".into(),
            crn_pattern: ENV_CRN_REL.into(),
        }];
        obj.status = Some(observed(&remote));
        h.confluent.inject(Fault {
            method: Some("POST".into()),
            path_prefix: "/iam/v2/role-bindings".into(),
            count: 1,
            action: FaultAction::CommitThenDrop,
        });
        let task = h.reconcile(&obj);
        status_patch(&mut h, &obj, "the ledger before the create").await;
        let written = status_patch(&mut h, &obj, "the status patch").await;
        assert_eq!(written.role_bindings.len(), 1);
        assert_eq!(
            (
                written.role_bindings[0].state,
                written.role_bindings[0].id.as_deref()
            ),
            (
                crate::role_bindings::resource::RoleBindingState::Creating,
                None
            ),
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
        let mut after = obj.clone();
        after.status = Some(written);
        let action = h.api.finish(task).await.expect("reconcile returns");
        assert_ne!(action, Action::await_change(), "a retry is scheduled");
        assert_eq!(
            h.confluent.role_bindings().len(),
            1,
            "the lost create committed"
        );

        // the retry: an exact look-up finds it, it is taken, no second create
        let task = h.reconcile(&after);
        let note = normal_event(&mut h, "RoleBindingAdopted").await;
        let id = h.confluent.role_bindings()[0].id.clone().expect("an id");
        assert!(note.contains(&id), "{note}");
        let written = status_patch(&mut h, &after, "the status patch").await;
        assert_eq!(written.role_bindings[0].id.as_deref(), Some(id.as_str()));
        assert_eq!(
            written.role_bindings[0].state,
            crate::role_bindings::resource::RoleBindingState::Bound
        );
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
        let remote = h.confluent.seed_invitation(EMAIL, None);
        let user = remote.user_id().expect("a user").to_owned();
        let entry = seeded_environment_admin(&h, &remote, &user);
        let id = entry.id.clone().expect("an id");
        let mut obj = deleting(invitation(true));
        let mut status = observed(&remote);
        status.role_bindings = vec![entry];
        obj.status = Some(status);
        let task = h.reconcile(&obj);

        let note = normal_event(&mut h, "RoleBindingDeleted").await;
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
        normal_event(&mut h, "Deleted").await;
        let seen = h
            .api
            .expect(
                Method::PATCH,
                &format!("{INVITATION_PATH}?"),
                Some(JSON_PATCH),
                "the finalizer removal",
            )
            .await;
        assert_finalizer_removal(&seen);
        let mut released = obj.clone();
        released.metadata.finalizers = None;
        seen.ok(&stored(&released));
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

/// Plays a permissive API server for one reconcile: answers every status patch and Event
/// until it returns; the status written last and the Events' (reason, note).
async fn answer_all(
    h: &mut Harness,
    obj: &Invitation,
    task: JoinHandle<Result<Action, Error>>,
) -> (Option<InvitationStatus>, Vec<(String, String)>) {
    let mut written = None;
    let mut events = Vec::new();
    let mut task = task;
    loop {
        tokio::select! {
            biased;
            request = h.api.0.next_request() => {
                let (request, reply) = request.expect("the client stays");
                let (method, uri) = (request.method().clone(), request.uri().to_string());
                let bytes = request.into_body().collect_bytes().await.expect("body");
                let body: Value = serde_json::from_slice(&bytes).expect("JSON");
                let seen = Seen { method, uri, content_type: None, body, reply };
                if seen.uri.starts_with(&status_path()) {
                    let status = applied_status(&seen);
                    let mut after = obj.clone();
                    after.status = Some(status.clone());
                    written = Some(status);
                    seen.ok(&stored(&after));
                } else if seen.uri.starts_with(&events_path()) {
                    events.push((
                        seen.body["reason"].as_str().unwrap_or_default().to_owned(),
                        seen.body["note"].as_str().unwrap_or_default().to_owned(),
                    ));
                    seen.created_event();
                } else {
                    panic!("unexpected request {} {}", seen.method, seen.uri);
                }
            }
            result = &mut task => {
                result.expect("the reconcile panicked").expect("the reconcile returns");
                return (written, events);
            }
        }
    }
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
        let mut obj = invitation(true);
        obj.spec.role_bindings = vec![crate::role_bindings::resource::RoleBinding {
            role_name: "EnvironmentAdmin".into(),
            crn_pattern: ENV_CRN_REL.into(),
        }];
        let mut status = observed(&remote);
        status.user_id = Some(previous_user.clone());
        status.role_bindings = vec![old];
        obj.status = Some(status);
        h.confluent.inject(Fault {
            method: Some("DELETE".into()),
            path_prefix: "/iam/v2/role-bindings/".into(),
            count: 4,
            action: FaultAction::Status { status: 503 },
        });

        let task = h.reconcile(&obj);
        let (written, _) = answer_all(&mut h, &obj, task).await;
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
                    && r.state == crate::role_bindings::resource::RoleBindingState::Bound
                    && r.id.as_deref() != Some(old_id.as_str())),
            "the new user's binding is created meanwhile: {written:?}"
        );

        obj.status = Some(written);
        let task = h.reconcile(&obj);
        let (written, events) = answer_all(&mut h, &obj, task).await;
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
