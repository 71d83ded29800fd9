//! Single reconcile steps, checked request by request: the Kubernetes API server is a
//! `tower_test` mock answered by a scripted verifier (kube-rs's controller-rs `fixtures.rs`
//! pattern), Confluent is the crate's in-process mock. Each test asserts the exact Kubernetes
//! requests of one reconcile, in the order kube sends them (method, path and query, content type,
//! JSON body), answers them as an API server would, and counts the Confluent calls.
//!
//! The requests a reconcile sends are few and always the same kinds, so [`ApiServer`] names them
//! (`status_patch`, `event`, `finalizer_added`, `finalizer_removal`): each checks one request and
//! answers it as stored. A test that looks at Confluent while the reconcile waits for an answer
//! takes the `_held` variant and answers once it has looked, since the reconcile may call
//! Confluent again as soon as it is answered.
//!
//! After the scripted requests, [`ApiServer::finish`] waits for the reconcile to return while
//! failing on any further request, so a missing request fails with a timeout and an extra one
//! fails by name instead of hanging (or vanishing: Event errors are only logged).

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::client::Body;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{Context, Error, Settings};
use crate::invitation::controller;
use crate::invitation::resource::{FINALIZER, Invitation, InvitationSpec, InvitationStatus};
use crate::invitation::status::{self, Outcome};
use crate::runtime::FIELD_MANAGER;
use crate::runtime::credentials::CredentialStore;
use crate::runtime::metrics::Metrics;
use confluent_client::model::RemoteInvitation;
use confluent_client::{ClientSettings, Credentials};
use confluent_mock::{Fault, FaultAction, MockConfig, MockHandle, MockServer};

mod api_server;
mod claims;
mod lifecycle;
mod role_bindings;

use api_server::{ApiServer, Seen};

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

/// The object whose status already says what Confluent says of `remote`.
fn observing(mut inv: Invitation, remote: &RemoteInvitation) -> Invitation {
    inv.status = Some(observed(remote));
    inv
}

/// The object with `status` written.
fn with_status(inv: &Invitation, status: &InvitationStatus) -> Invitation {
    let mut inv = inv.clone();
    inv.status = Some(status.clone());
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

/// The fault for the next `count` Confluent requests `method path_prefix...`.
fn fault(method: &str, path_prefix: &str, count: u32, action: FaultAction) -> Fault {
    Fault {
        method: Some(method.into()),
        path_prefix: path_prefix.into(),
        count,
        action,
    }
}

/// The credential's invitation list answering `status` on every attempt: the client's first
/// try and its three retries.
fn failing_lists(status: u16) -> Fault {
    fault(
        "GET",
        "/iam/v2/invitations?",
        4,
        FaultAction::Status { status },
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
        require_policy: false,
        claims: None,
    };
    let runtime = crate::runtime::Runtime {
        kube: crate::runtime::Kube::new(kube, None),
        confluent: Arc::new(crate::runtime::Confluent::new(credentials, settings.resync)),
        metrics: Arc::new(Metrics::new()),
    };
    let (store, writer) = kube::runtime::reflector::store();
    let (wake, _woken) = futures::channel::mpsc::unbounded();
    let policies = Arc::new(crate::invitation_policy::controller::Policies::none());
    let ctx = Context::new(&runtime, settings, store, policies, wake);
    Harness {
        ctx: Arc::new(ctx),
        cache: parking_lot::Mutex::new(writer),
        api: ApiServer::new(handle),
        confluent: server.state(),
        _server: server,
    }
}

impl Harness {
    /// Starts one reconcile of `obj`; the test then plays the API server.
    fn reconcile(&self, obj: &Invitation) -> JoinHandle<Result<Action, Error>> {
        tokio::spawn(controller::reconcile(
            Arc::new(obj.clone()),
            self.ctx.clone(),
        ))
    }

    /// Puts `objects` in the controller's watch cache, as the reflector would.
    fn cache(&self, objects: &[Invitation]) {
        let mut writer = self.cache.lock();
        for o in objects {
            writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(o.clone()));
        }
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
