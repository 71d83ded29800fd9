//! The Kubernetes API server's side of the client, and the requests a reconcile sends named
//! as scenario steps: each step checks one request and answers it as stored.

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{
    APPLY_PATCH, Error, FINALIZER, INVITATION_PATH, Invitation, InvitationStatus, JSON, JSON_PATCH,
    STEP, applied_status, event_note, events_path, status_path, stored, with_status,
};

type ApiServerHandle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
type Reply = tower_test::mock::SendResponse<Response<Body>>;

/// Each request is taken, checked and answered by the test, in order.
pub(super) struct ApiServer {
    handle: ApiServerHandle,
    /// How many requests were taken, to say which one failed.
    taken: usize,
}

/// One request of the reconcile, read whole, with its pending answer.
pub(super) struct Seen {
    pub(super) method: Method,
    pub(super) uri: String,
    pub(super) content_type: Option<String>,
    pub(super) body: Value,
    reply: Reply,
}

/// A request checked, its answer ready but not sent: the reconcile waits for it, so the test
/// sees Confluent as it was when the request was sent.
#[must_use = "the reconcile waits until the request is answered"]
pub(super) struct Held {
    seen: Seen,
    status: StatusCode,
    answer: Value,
}

impl Held {
    /// The request's body as sent.
    pub(super) fn sent(&self) -> &Value {
        &self.seen.body
    }

    /// Sends the answer; the reconcile goes on.
    pub(super) fn answer(self) {
        self.seen.respond(self.status, &self.answer);
    }
}

impl ApiServer {
    pub(super) fn new(handle: ApiServerHandle) -> Self {
        Self { handle, taken: 0 }
    }

    /// The next request; fails the test if none comes within [`STEP`].
    async fn next(&mut self, what: &str) -> Seen {
        self.taken += 1;
        let n = self.taken;
        let (request, reply) = tokio::time::timeout(STEP, self.handle.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request {n} came: expected {what}"))
            .unwrap_or_else(|| panic!("the client went away: expected {what} as request {n}"));
        Seen::read(request, reply).await
    }

    /// The next request, checked to be `method uri` with `content_type`.
    pub(super) async fn expect(
        &mut self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        what: &str,
    ) -> Seen {
        let seen = self.next(what).await;
        let n = self.taken;
        assert_eq!(
            (&seen.method, seen.uri.as_str()),
            (&method, uri),
            "request {n}, {what}: wrong request (body {})",
            seen.body
        );
        assert_eq!(
            seen.content_type.as_deref(),
            content_type,
            "request {n}, {what}: content type"
        );
        seen
    }

    /// The status patch, checked; its answer is `obj` with the status written, held.
    pub(super) async fn status_patch_held(&mut self, obj: &Invitation) -> (InvitationStatus, Held) {
        let seen = self
            .expect(
                Method::PATCH,
                &status_path(),
                Some(APPLY_PATCH),
                "the status patch",
            )
            .await;
        let written = applied_status(&seen);
        let answer = stored(&with_status(obj, &written));
        let held = Held {
            seen,
            status: StatusCode::OK,
            answer,
        };
        (written, held)
    }

    /// The status patch, checked and answered as stored; returns the status written.
    pub(super) async fn status_patch(&mut self, obj: &Invitation) -> InvitationStatus {
        let (written, held) = self.status_patch_held(obj).await;
        held.answer();
        written
    }

    /// A new `type_` Event for `reason`, checked with [`event_note`]; its answer (201, the
    /// Event as stored) held; returns its note.
    pub(super) async fn event_held(&mut self, type_: &str, reason: &str) -> (String, Held) {
        let what = format!("the {type_} {reason} Event");
        let seen = self
            .expect(Method::POST, &events_path(), Some(JSON), &what)
            .await;
        let note = event_note(&seen, type_, reason);
        let answer = created(&seen.body);
        let held = Held {
            seen,
            status: StatusCode::CREATED,
            answer,
        };
        (note, held)
    }

    /// A new `type_` Event for `reason`, checked and answered; returns its note.
    pub(super) async fn event(&mut self, type_: &str, reason: &str) -> String {
        let (note, held) = self.event_held(type_, reason).await;
        held.answer();
        note
    }

    /// The JSON patch of kube-runtime's finalizer helper adding ours, checked to be `patch`;
    /// answered with `obj` and our finalizer after its others.
    pub(super) async fn finalizer_added(&mut self, obj: &Invitation, patch: &Value) {
        let seen = self
            .expect(
                Method::PATCH,
                &format!("{INVITATION_PATH}?"),
                Some(JSON_PATCH),
                "the finalizer patch",
            )
            .await;
        assert_eq!(&seen.body, patch, "the finalizer patch");
        let mut patched = obj.clone();
        patched
            .metadata
            .finalizers
            .get_or_insert_with(Vec::new)
            .push(FINALIZER.into());
        seen.ok(&stored(&patched));
    }

    /// The read of an object being deleted, before its cleanup decides; answered with `obj`
    /// (what the API server holds, which the watch cache may not show yet).
    pub(super) async fn current_read(&mut self, obj: &Invitation) {
        let seen = self
            .expect(
                Method::GET,
                INVITATION_PATH,
                None,
                "the read before cleanup",
            )
            .await;
        seen.ok(&stored(obj));
    }

    /// The JSON patch of kube-runtime's finalizer helper removing ours (the only one), checked;
    /// answered with `obj` released.
    pub(super) async fn finalizer_removal(&mut self, obj: &Invitation) {
        let seen = self
            .expect(
                Method::PATCH,
                &format!("{INVITATION_PATH}?"),
                Some(JSON_PATCH),
                "the finalizer removal",
            )
            .await;
        assert_eq!(
            seen.body,
            json!([
                { "op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER },
                { "op": "remove", "path": "/metadata/finalizers/0" },
            ])
        );
        let mut released = obj.clone();
        released.metadata.finalizers = None;
        seen.ok(&stored(&released));
    }

    /// Waits for the reconcile to return, failing on any request it sends meanwhile.
    pub(super) async fn finish(
        &mut self,
        task: JoinHandle<Result<Action, Error>>,
    ) -> Result<Action, Error> {
        let done = tokio::time::timeout(STEP, task);
        tokio::select! {
            biased;
            request = self.handle.next_request() => match request {
                Some((r, _)) => panic!("unexpected request {} {}", r.method(), r.uri()),
                None => panic!("the client went away before the reconcile returned"),
            },
            result = done => result
                .expect("the reconcile did not return")
                .expect("the reconcile panicked"),
        }
    }

    /// Whether no request comes for `wait`.
    pub(super) async fn quiet_for(&mut self, wait: std::time::Duration) -> bool {
        tokio::time::timeout(wait, self.handle.next_request())
            .await
            .is_err()
    }

    /// Plays a permissive API server for one reconcile: answers every status patch and Event
    /// until it returns; the status written last and the Events' (reason, note).
    pub(super) async fn answer_all(
        &mut self,
        obj: &Invitation,
        mut task: JoinHandle<Result<Action, Error>>,
    ) -> (Option<InvitationStatus>, Vec<(String, String)>) {
        let mut written = None;
        let mut events = Vec::new();
        loop {
            tokio::select! {
                biased;
                request = self.handle.next_request() => {
                    let (request, reply) = request.expect("the client stays");
                    let seen = Seen::read(request, reply).await;
                    if seen.uri.starts_with(&status_path()) {
                        let status = applied_status(&seen);
                        seen.ok(&stored(&with_status(obj, &status)));
                        written = Some(status);
                    } else if seen.uri.starts_with(&events_path()) {
                        events.push((
                            seen.body["reason"].as_str().unwrap_or_default().to_owned(),
                            seen.body["note"].as_str().unwrap_or_default().to_owned(),
                        ));
                        let answer = created(&seen.body);
                        seen.respond(StatusCode::CREATED, &answer);
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
}

/// An Event as the API server stores a POST of `event`, answered with 201.
fn created(event: &Value) -> Value {
    let mut event = event.clone();
    let meta = &mut event["metadata"];
    meta["uid"] = json!("0d7f6c2a-3e1b-4c5d-8e9f-a0b1c2d3e4f5");
    meta["resourceVersion"] = json!("2001");
    meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
    event
}

impl Seen {
    /// Reads a request whole.
    async fn read(request: Request<Body>, reply: Reply) -> Seen {
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

    /// Answers with `status` and a JSON body.
    pub(super) fn respond(self, status: StatusCode, body: &Value) {
        let response = Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, JSON)
            .body(Body::from(serde_json::to_vec(body).expect("JSON")))
            .expect("response");
        self.reply.send_response(response);
    }

    /// Answers 200 with `body`.
    pub(super) fn ok(self, body: &Value) {
        self.respond(StatusCode::OK, body);
    }
}
