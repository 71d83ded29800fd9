//! The HTTP test controls under `/_mock/`: the [`MockHandle`] operations for scripts and the
//! sandbox's curl. No authentication, not counted, not rate limited, never faulted.
//!
//! | request | effect |
//! |---|---|
//! | `GET /_mock/invitations` | every invitation (JSON array) |
//! | `POST /_mock/invitations` `{email, auth_type?}` | seed one out of band (201; 200 if a live one existed) |
//! | `POST /_mock/invitations/{id}/accept` | the invitee accepts (200; 404; 409 if not SENT/STAGED) |
//! | `POST /_mock/invitations/{id}/expire` `{at?}` | it expires now (200; 404; 409 if not SENT/STAGED), or naturally at `at` (RFC 3339; SENT until then) |
//! | `PUT /_mock/api-keys` `[{key, secret}]` | the accepted API keys from now on (204): a key left out is revoked (401) |
//! | `DELETE /_mock/invitations/{id}` | removed entirely (204; 404) |
//! | `GET /_mock/users` | every user (JSON array) |
//! | `GET`/`PUT /_mock/config` `{latency_ms?, rate_limit?: {per_second, burst} \| null}` | latency and rate limit (absent: unchanged) |
//! | `GET`/`POST`/`DELETE /_mock/faults` | list / inject (a [`Fault`]) / clear faults |
//! | `GET /_mock/calls` | the [`CallCounts`] |
//! | `POST /_mock/reset` | [`MockHandle::reset`] (204) |

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::MockError;
use super::faults::{Fault, FaultAction};
use super::handle::{MockHandle, Shared};
use super::respond::json;
use super::{CallCounts, RateLimit};
use confluent_client::model::CreateInvitation;

/// The control routes (state: the shared mock).
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_mock/invitations", get(list).post(seed))
        .route("/_mock/invitations/{id}", delete(remove))
        .route("/_mock/invitations/{id}/accept", post(accept))
        .route("/_mock/invitations/{id}/expire", post(expire))
        .route("/_mock/users", get(users))
        .route("/_mock/api-keys", axum::routing::put(put_api_keys))
        .route("/_mock/config", get(get_config).put(put_config))
        .route(
            "/_mock/faults",
            get(faults).post(inject).delete(clear_faults),
        )
        .route("/_mock/calls", get(calls))
        .route("/_mock/reset", post(reset))
}

fn handle(shared: Arc<Shared>) -> MockHandle {
    MockHandle { shared }
}

/// Parses a JSON body; errors become a 400 with a Failure body.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, MockError> {
    serde_json::from_slice(body)
        .map_err(|e| MockError::invalid_body("/", format!("Invalid JSON body: {e}")))
}

async fn list(State(shared): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &handle(shared).invitations())
}

async fn seed(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: CreateInvitation = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let (inv, created) = handle(shared).seed(&req.email, req.auth_type.as_deref());
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    json(status, &inv)
}

async fn accept(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match handle(shared).accept(&id) {
        Ok(inv) => json(StatusCode::OK, &inv),
        Err(e) => e.into_response(),
    }
}

/// `POST …/expire` body: empty (expires now) or `{"at": RFC 3339}` (expires naturally then).
#[derive(Debug, Default, Deserialize)]
struct ExpireAt {
    at: Option<jiff::Timestamp>,
}

async fn expire(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let when = if body.is_empty() {
        ExpireAt::default()
    } else {
        match parse::<ExpireAt>(&body) {
            Ok(w) => w,
            Err(e) => return e.into_response(),
        }
    };
    let h = handle(shared);
    let expired = match when.at {
        Some(at) => h.expire_at(&id, at),
        None => h.expire(&id),
    };
    match expired {
        Ok(inv) => json(StatusCode::OK, &inv),
        Err(e) => e.into_response(),
    }
}

async fn remove(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match handle(shared).remove(&id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// One accepted API key of `PUT /_mock/api-keys`.
#[derive(Deserialize)]
struct ApiKey {
    key: String,
    secret: String,
}

/// `PUT /_mock/api-keys`: never echoes the secrets back.
async fn put_api_keys(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let keys: Vec<ApiKey> = match parse(&body) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let pairs: Vec<(String, String)> = keys.into_iter().map(|k| (k.key, k.secret)).collect();
    handle(shared).set_api_keys(&pairs);
    StatusCode::NO_CONTENT.into_response()
}

async fn users(State(shared): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &handle(shared).users())
}

/// The tunable settings, as `GET`/`PUT /_mock/config` show them.
#[derive(Debug, Serialize, Deserialize)]
struct ConfigView {
    latency_ms: u64,
    rate_limit: Option<RateLimit>,
}

fn config_view(h: &MockHandle) -> ConfigView {
    ConfigView {
        latency_ms: u64::try_from(h.latency().as_millis()).unwrap_or(u64::MAX),
        rate_limit: h.rate_limit(),
    }
}

async fn get_config(State(shared): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &config_view(&handle(shared)))
}

/// `PUT /_mock/config`: absent properties stay unchanged; `"rate_limit": null` removes the limit.
async fn put_config(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let value: serde_json::Map<String, serde_json::Value> = match parse(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let latency = match value.get("latency_ms") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(ms) => Some(Duration::from_millis(ms)),
            None => {
                return MockError::invalid_body(
                    "/latency_ms",
                    "latency_ms must be a non-negative integer",
                )
                .into_response();
            }
        },
    };
    let rate_limit = match value.get("rate_limit") {
        None => None,
        Some(serde_json::Value::Null) => Some(None),
        Some(v) => match serde_json::from_value::<RateLimit>(v.clone()) {
            Ok(r) if r.per_second.is_finite() && r.per_second > 0.0 && r.burst >= 1 => {
                Some(Some(r))
            }
            _ => {
                return MockError::invalid_body(
                    "/rate_limit",
                    "rate_limit must be null or {\"per_second\": > 0, \"burst\": >= 1}",
                )
                .into_response();
            }
        },
    };
    let h = handle(shared);
    if let Some(d) = latency {
        h.set_latency(d);
    }
    if let Some(r) = rate_limit {
        h.set_rate_limit(r);
    }
    json(StatusCode::OK, &config_view(&h))
}

async fn faults(State(shared): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &handle(shared).pending_faults())
}

async fn inject(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let fault: Fault = match parse(&body) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    if let FaultAction::Status { status } = fault.action
        && StatusCode::from_u16(status).is_err()
    {
        return MockError::invalid_body(
            "/action/status",
            format!("{status} is not an HTTP status code"),
        )
        .into_response();
    }
    let h = handle(shared);
    h.inject(fault.clone());
    json(StatusCode::CREATED, &fault)
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    shared.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn calls(State(shared): State<Arc<Shared>>) -> Response {
    let counts: CallCounts = handle(shared).calls();
    json(StatusCode::OK, &counts)
}

async fn reset(State(shared): State<Arc<Shared>>) -> Response {
    handle(shared).reset();
    StatusCode::NO_CONTENT.into_response()
}
