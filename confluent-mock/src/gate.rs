//! What every API request goes through before its handler, in order: counting, the configured
//! latency, authentication (401), the per-credential rate limit (429), and injected faults.
//! `/_mock/` control requests skip all of it. A second, outer layer stamps `X-Request-Id` and
//! `Content-Type` on every response.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::CallCounts;
use super::faults::FaultAction;
use super::handle::Shared;
use super::ratelimit::Decision;
use super::respond::{self, X_REQUEST_ID};
use super::server::{DropSignal, drop_connection};
use super::sync::lock;

/// The API operation a request addresses, for [`CallCounts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    List,
    Create,
    Get,
    Delete,
    GetUser,
    DeleteUser,
}

/// Which operation `method path` is, if any.
pub fn classify(method: &Method, path: &str) -> Option<Op> {
    let one_segment = |rest: &str| !rest.is_empty() && !rest.contains('/');
    if path == "/iam/v2/invitations" {
        match *method {
            Method::GET => Some(Op::List),
            Method::POST => Some(Op::Create),
            _ => None,
        }
    } else if let Some(id) = path.strip_prefix("/iam/v2/invitations/")
        && one_segment(id)
    {
        match *method {
            Method::GET => Some(Op::Get),
            Method::DELETE => Some(Op::Delete),
            _ => None,
        }
    } else if let Some(id) = path.strip_prefix("/iam/v2/users/")
        && one_segment(id)
    {
        match *method {
            Method::GET => Some(Op::GetUser),
            Method::DELETE => Some(Op::DeleteUser),
            _ => None,
        }
    } else {
        None
    }
}

fn count_op(c: &mut CallCounts, op: Option<Op>) {
    c.total += 1;
    match op {
        Some(Op::List) => c.list += 1,
        Some(Op::Create) => c.create += 1,
        Some(Op::Get) => c.get += 1,
        Some(Op::Delete) => c.delete += 1,
        Some(Op::GetUser) => c.get_user += 1,
        Some(Op::DeleteUser) => c.delete_user += 1,
        None => {}
    }
}

/// Whether a path belongs to the unauthenticated test controls.
pub fn is_control(path: &str) -> bool {
    path == "/_mock" || path.starts_with("/_mock/")
}

/// The API gate (see the module doc). Operation counters count every request addressed to the
/// operation whatever its outcome; `unauthenticated`, `rate_limited` (bucket or injected 429)
/// and `faults_injected` count the refusals.
pub(crate) async fn api_gate(
    State(shared): State<Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    if is_control(&path) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    // The STS exchange declares no security: no credential, no per-credential bucket. It keeps
    // the latency and the faults, so tests can make it slow, throttled or failing.
    if path == super::sts::TOKEN_PATH {
        return sts_gate(&shared, req, next).await;
    }
    let op = classify(&method, &path);
    shared.count(|c| count_op(c, op));
    super::role_binding_api::count(&shared, &method, &path);

    let latency = *lock(&shared.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let authorization = req.headers().get(header::AUTHORIZATION);
    let caller = lock(&shared.credentials)
        .authenticate(authorization)
        .or_else(|| sts_caller(&shared, authorization));
    let Some(caller) = caller else {
        shared.count(|c| c.unauthenticated += 1);
        tracing::debug!(%method, %path, "401: missing or wrong credentials");
        return respond::unauthenticated();
    };

    let quota = match shared.limiter.check(&caller.bucket, Instant::now()) {
        Decision::Unlimited => None,
        Decision::Admitted(q) => Some(q),
        Decision::Limited { quota, retry_after } => {
            shared.count(|c| c.rate_limited += 1);
            tracing::debug!(%method, %path, retry_after, "429: rate limited");
            return respond::rate_limited(Some(quota), retry_after);
        }
    };
    req.extensions_mut().insert(caller);
    let signal = req.extensions().get::<DropSignal>().cloned();

    // faults match the query too: `/iam/v2/invitations?` singles out lists
    let target = req
        .uri()
        .path_and_query()
        .map_or(path.as_str(), |p| p.as_str())
        .to_owned();
    let mut resp = match shared.faults.take(method.as_str(), &target) {
        None => next.run(req).await,
        Some(action) => {
            shared.count(|c| c.faults_injected += 1);
            tracing::debug!(%method, %path, ?action, "injecting fault");
            match action {
                FaultAction::Status { status } => {
                    if status == 429 {
                        shared.count(|c| c.rate_limited += 1);
                    }
                    respond::injected_status(status)
                }
                FaultAction::Delay { millis } => {
                    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
                    next.run(req).await
                }
                FaultAction::Drop => return drop_connection(signal).await,
                FaultAction::CommitThen500 => {
                    let committed = next.run(req).await;
                    tracing::debug!(status = %committed.status(), "committed, answering 500");
                    respond::injected_status(500)
                }
                FaultAction::CommitThenDrop => {
                    let committed = next.run(req).await;
                    tracing::debug!(status = %committed.status(), "committed, dropping");
                    return drop_connection(signal).await;
                }
            }
        }
    };
    if let Some(q) = quota
        && resp.status() != StatusCode::TOO_MANY_REQUESTS
    {
        respond::add_quota(resp.headers_mut(), q);
    }
    tracing::debug!(%method, %path, status = %resp.status(), "answered");
    resp
}

/// The caller of a live STS token (`Bearer`), if it is one.
fn sts_caller(shared: &Shared, authorization: Option<&HeaderValue>) -> Option<super::auth::Caller> {
    let value = authorization?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    lock(&shared.sts).authenticate(token.trim(), Instant::now())
}

/// The STS exchange's gate: latency and faults only.
async fn sts_gate(shared: &Shared, req: Request, next: Next) -> Response {
    let latency = *lock(&shared.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let signal = req.extensions().get::<DropSignal>().cloned();
    match shared
        .faults
        .take(req.method().as_str(), super::sts::TOKEN_PATH)
    {
        None => next.run(req).await,
        Some(action) => {
            tracing::debug!(?action, "injecting fault into the STS exchange");
            match action {
                FaultAction::Status { status } => respond::injected_status(status),
                FaultAction::Delay { millis } => {
                    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
                    next.run(req).await
                }
                FaultAction::Drop => drop_connection(signal).await,
                FaultAction::CommitThen500 => {
                    let _ = next.run(req).await;
                    respond::injected_status(500)
                }
                FaultAction::CommitThenDrop => {
                    let _ = next.run(req).await;
                    drop_connection(signal).await
                }
            }
        }
    }
}

/// Stamps a fresh `X-Request-Id` and, when missing, `Content-Type: application/json` on every
/// response.
pub(crate) async fn common_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&respond::uuid()) {
        headers.insert(X_REQUEST_ID, id);
    }
    headers
        .entry(header::CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_operations() {
        let cases = [
            (Method::GET, "/iam/v2/invitations", Some(Op::List)),
            (Method::POST, "/iam/v2/invitations", Some(Op::Create)),
            (Method::GET, "/iam/v2/invitations/i-abc12", Some(Op::Get)),
            (
                Method::DELETE,
                "/iam/v2/invitations/i-abc12",
                Some(Op::Delete),
            ),
            (Method::GET, "/iam/v2/users/u-1", Some(Op::GetUser)),
            (Method::DELETE, "/iam/v2/users/u-1", Some(Op::DeleteUser)),
            (Method::PUT, "/iam/v2/invitations/i-abc12", None),
            (Method::GET, "/iam/v2/invitations/", None),
            (Method::GET, "/iam/v2/invitations/a/b", None),
            (Method::GET, "/iam/v2/other", None),
        ];
        for (m, p, want) in cases {
            assert_eq!(classify(&m, p), want, "{m} {p}");
        }
        assert!(is_control("/_mock/calls"));
        assert!(!is_control("/_mockery"));
    }
}
