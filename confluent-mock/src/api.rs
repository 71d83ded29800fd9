//! The `/iam/v2` handlers: parse the request, run the organization's rule, render the answer.
//! Authentication, latency, rate limits and faults happen before, in [`super::gate`].

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::rejection::ExtensionRejection;
use axum::extract::{FromRequestParts, Path, RawQuery};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use jiff::Timestamp;

use super::auth::Caller;
use super::error::MockError;
use super::handle::Shared;
use super::query;
use super::respond::{self, json};
use super::state::{ListQuery, Org};
use super::sync::lock;
use super::wire::Links;
use confluent_client::model::CreateInvitation;
use serde::Serialize;
use serde_json::Value;

/// The API routes (state: the shared mock).
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/iam/v2/invitations", get(list).post(create))
        .route("/iam/v2/invitations/{id}", get(get_one).delete(delete_one))
        .route("/iam/v2/users/{id}", get(get_user).delete(delete_user))
}

/// The base URL the client used (from `Host`), so links are followable from where the client
/// stands; the server's own base URL when `Host` is missing or odd.
pub(super) fn base_url(headers: &HeaderMap, shared: &Shared) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b))
        })
        .map(|h| format!("http://{h}"))
        .unwrap_or_else(|| shared.base_url.clone())
}

/// What every API handler starts from: the shared mock, the caller the gate authenticated, and
/// the base URL the client used, which the answer's links are built on.
pub(super) struct ApiCall {
    shared: Arc<Shared>,
    pub caller: Caller,
    base: String,
}

impl FromRequestParts<Arc<Shared>> for ApiCall {
    type Rejection = ExtensionRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let Extension(caller) = Extension::<Caller>::from_request_parts(parts, shared).await?;
        Ok(Self {
            shared: shared.clone(),
            caller,
            base: base_url(&parts.headers, shared),
        })
    }
}

impl ApiCall {
    /// The caller's organization.
    pub fn org(&self) -> &Mutex<Org> {
        self.shared.org_of(&self.caller).0
    }

    /// Links in the caller's organization, from where the client stands.
    pub fn links(&self) -> Links<'_> {
        let (_, org_id) = self.shared.org_of(&self.caller);
        self.shared.links_in(&self.base, org_id)
    }

    /// 200 with what `render` makes of `found`, or the error's own answer.
    pub fn ok<T, B: Serialize, E: IntoResponse>(
        &self,
        found: Result<T, E>,
        render: impl FnOnce(&Links<'_>, &T) -> B,
    ) -> Response {
        match found {
            Ok(found) => json(StatusCode::OK, &render(&self.links(), &found)),
            Err(e) => e.into_response(),
        }
    }
}

/// 204, or the error's own answer.
pub(super) fn no_content<E: IntoResponse>(done: Result<(), E>) -> Response {
    match done {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// A request body that must be a JSON object; which properties it needs is the caller's rule.
pub(super) fn body_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, MockError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(MockError::invalid_body(
            "/",
            "The request body must be a JSON object",
        )),
        Err(e) => Err(MockError::invalid_body(
            "/",
            format!("The request body must be a JSON object: {e}"),
        )),
    }
}

/// A list request's filters, plus their re-encoding for the `first` and `next` links.
#[derive(Debug, PartialEq)]
struct ParsedList {
    query: ListQuery,
    filters: String,
}

/// Parses the list query string: known parameters only, each at most once, empty ones ignored.
fn parse_list(raw: &str) -> Result<ParsedList, MockError> {
    let query::ListParams {
        filters: [email, status, user, creator],
        page_size,
        page_token,
        encoded_filters,
    } = query::parse_list(raw, "invitation", ["email", "status", "user", "creator"])?;
    Ok(ParsedList {
        query: ListQuery {
            email,
            status,
            user,
            creator,
            page_size,
            page_token,
        },
        filters: encoded_filters,
    })
}

/// `GET /iam/v2/invitations`.
async fn list(call: ApiCall, RawQuery(raw): RawQuery) -> Response {
    let parsed = match parse_list(raw.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let page = lock(call.org()).list(&parsed.query, Timestamp::now());
    call.ok(page, |links, page| links.list(page, &parsed.filters))
}

/// Parses a create body leniently about extra properties (the request schema is the whole
/// Invitation, whose read-only fields are ignored) and strictly about `email` and `auth_type`.
fn parse_create(body: &[u8]) -> Result<CreateInvitation, MockError> {
    let obj = body_object(body)?;
    let email = match obj.get("email") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(MockError::invalid_body(
                "/email",
                "The property '/email' must be a string",
            ));
        }
        None => {
            return Err(MockError::invalid_body(
                "/email",
                "The property '/email' is required",
            ));
        }
    };
    let auth_type = match obj.get("auth_type") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(MockError::invalid_body(
                "/auth_type",
                "The property '/auth_type' must be a string",
            ));
        }
    };
    Ok(CreateInvitation { email, auth_type })
}

/// `POST /iam/v2/invitations`: 201 with the invitation and a `Location` header.
async fn create(call: ApiCall, body: Bytes) -> Response {
    let req = match parse_create(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let created = lock(call.org()).create(&req, &call.caller.user_id, Timestamp::now());
    let record = match created {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let links = call.links();
    let mut resp = json(StatusCode::CREATED, &links.invitation(&record));
    if let Ok(location) = HeaderValue::from_str(&links.invitation_url(&record.id)) {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    resp
}

/// `GET /iam/v2/invitations/{id}`: deactivated invitations included.
async fn get_one(call: ApiCall, Path(id): Path<String>) -> Response {
    let record = lock(call.org()).get(&id, Timestamp::now());
    call.ok(record, |links, r| links.invitation(r))
}

/// `DELETE /iam/v2/invitations/{id}`: 204, 400 when accepted, 404 when unknown or deactivated.
async fn delete_one(call: ApiCall, Path(id): Path<String>) -> Response {
    no_content(lock(call.org()).delete(&id, Timestamp::now()))
}

/// `GET /iam/v2/users/{id}`.
async fn get_user(call: ApiCall, Path(id): Path<String>) -> Response {
    let user = lock(call.org()).user(&id);
    call.ok(user, |links, u| links.user(u))
}

/// `DELETE /iam/v2/users/{id}`: the user goes, their invitations become DEACTIVATED.
async fn delete_user(call: ApiCall, Path(id): Path<String>) -> Response {
    no_content(lock(call.org()).delete_user(&id, Timestamp::now()))
}

/// Unknown paths: 404 with a Failure body, after authentication like the real gateway.
pub(crate) async fn not_found() -> Response {
    respond::failure(
        StatusCode::NOT_FOUND,
        "not_found",
        "Not Found",
        "The requested resource was not found",
        None,
    )
}

/// Known paths with the wrong method: 405 with a Failure body.
pub(crate) async fn method_not_allowed() -> Response {
    respond::failure(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method Not Allowed",
        "The method is not allowed on this resource",
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorLocation;

    #[test]
    fn list_query_parsing() {
        let p = parse_list("email=Jane%2Btag%40example.com&page_size=5&status=&user=u-1").unwrap();
        assert_eq!(p.query.email.as_deref(), Some("Jane+tag@example.com"));
        assert_eq!(p.query.page_size, Some(5));
        assert_eq!(p.query.status, None);
        assert_eq!(p.filters, "email=Jane%2Btag%40example.com&user=u-1");
        assert!(matches!(
            parse_list("page_size=abc"),
            Err(MockError::InvalidRequest {
                at: ErrorLocation::Query(p),
                ..
            }) if p == "page_size"
        ));
        assert!(parse_list("emial=x").is_err());
        assert!(parse_list("email=a&email=b").is_err());
        assert!(parse_list("email=%zz").is_err());
        assert_eq!(parse_list("").unwrap().query, ListQuery::default());
    }

    #[test]
    fn create_body_parsing() {
        let ok = parse_create(br#"{"email":"a@b.io","auth_type":null,"status":"x"}"#).unwrap();
        assert_eq!(ok.email, "a@b.io");
        assert_eq!(ok.auth_type, None);
        for (body, pointer) in [
            (&br#"{}"#[..], "/email"),
            (br#"{"email":1}"#, "/email"),
            (br#"{"email":"a@b.io","auth_type":2}"#, "/auth_type"),
            (br#"[]"#, "/"),
            (b"not json", "/"),
        ] {
            match parse_create(body) {
                Err(MockError::InvalidRequest {
                    at: ErrorLocation::Body(p),
                    ..
                }) => assert_eq!(p, pointer),
                other => panic!("{other:?}"),
            }
        }
    }
}
