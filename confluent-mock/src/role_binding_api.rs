//! The `/iam/v2/role-bindings` handlers: parse the request, run the organization's rule
//! ([`super::role_bindings`]), render the answer. Authentication, latency, the rate limit and
//! faults happen before, in [`super::gate`], exactly as for invitations (one gate, one bucket per
//! credential).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;

use super::api::{ApiCall, body_object};
use super::error::MockError;
use super::handle::Shared;
use super::pagination::Page;
use super::query;
use super::respond::{self, json};
use super::role_bindings::{
    RoleBindingCalls, RoleBindingError, RoleBindingQuery, RoleBindingRecord,
};
use super::sync::lock;
use super::wire::{Links, list_meta, rfc3339};
use confluent_client::model::{API_VERSION, ObjectMeta};
use confluent_client::role_bindings::{
    CreateRoleBinding, RemoteRoleBinding, RemoteRoleBindingList,
};

const COLLECTION: &str = "/iam/v2/role-bindings";

/// The role-binding routes (state: the shared mock).
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(COLLECTION, get(list).post(create))
        .route(
            "/iam/v2/role-bindings/{id}",
            get(get_one).delete(delete_one),
        )
}

/// Counts a request in [`RoleBindingCalls`] when it addresses a role-binding operation.
pub(crate) fn count(shared: &Shared, method: &Method, path: &str) {
    let collection = path == COLLECTION;
    let one = path
        .strip_prefix("/iam/v2/role-bindings/")
        .is_some_and(|id| !id.is_empty() && !id.contains('/'));
    let mut calls = lock(&shared.role_binding_calls);
    match *method {
        Method::GET if collection => calls.list += 1,
        Method::POST if collection => calls.create += 1,
        Method::GET if one => calls.get += 1,
        Method::DELETE if one => calls.delete += 1,
        _ => {}
    }
}

/// The URL of a binding (its `metadata.self`, and `Location`).
pub(crate) fn binding_url(links: &Links<'_>, id: &str) -> String {
    format!("{}{COLLECTION}/{id}", links.base)
}

/// The full `iam.v2.RoleBinding`.
pub(crate) fn render(links: &Links<'_>, r: &RoleBindingRecord) -> RemoteRoleBinding {
    RemoteRoleBinding {
        api_version: Some(API_VERSION.to_owned()),
        kind: Some("RoleBinding".to_owned()),
        id: Some(r.id.clone()),
        metadata: Some(ObjectMeta {
            self_link: Some(binding_url(links, &r.id)),
            resource_name: Some(format!(
                "crn://confluent.cloud/organization={}/role-binding={}",
                links.org, r.id
            )),
            created_at: Some(rfc3339(r.created_at)),
            updated_at: Some(rfc3339(r.created_at)),
            deleted_at: None,
        }),
        principal: Some(r.principal.clone()),
        role_name: Some(r.role_name.clone()),
        crn_pattern: Some(r.crn_pattern.clone()),
    }
}

/// An `iam.v2.RoleBindingList` page; `first` and `next` repeat the (encoded) filters.
fn render_list(
    links: &Links<'_>,
    page: &Page<RoleBindingRecord>,
    filters: &str,
) -> RemoteRoleBindingList {
    let url = |paging: &str| format!("{}{COLLECTION}?{filters}&{paging}", links.base);
    RemoteRoleBindingList {
        api_version: Some(API_VERSION.to_owned()),
        kind: Some("RoleBindingList".to_owned()),
        metadata: list_meta(page, url),
        data: page.items.iter().map(|r| render(links, r)).collect(),
    }
}

impl IntoResponse for RoleBindingError {
    fn into_response(self) -> Response {
        let detail = self.to_string();
        match self {
            Self::Request(e) => e.into_response(),
            // outside the Failure schema, as the real service answers
            Self::Missing { .. } => json(
                StatusCode::FORBIDDEN,
                &serde_json::json!({
                    // MISSING_BINDING_CODE, as the JSON number the service sends
                    "error_code": 40301,
                    "message": detail,
                }),
            ),
            Self::Forbidden { .. } => respond::failure(
                StatusCode::FORBIDDEN,
                "user_unauthorized",
                "User Access Unauthorized",
                &detail,
                None,
            ),
            Self::QuotaExceeded { .. } => respond::failure(
                StatusCode::PAYMENT_REQUIRED,
                "quota_exceeded",
                "Quota Exceeded",
                &detail,
                None,
            ),
            Self::Duplicate { .. } => respond::failure(
                StatusCode::CONFLICT,
                "resource_already_exists",
                "Resource Already Exists",
                &detail,
                None,
            ),
        }
    }
}

/// Parses the list query: known parameters only, each at most once, empty ones ignored.
fn parse_list(raw: &str) -> Result<(RoleBindingQuery, String), MockError> {
    let query::ListParams {
        filters: [crn_pattern, principal, role_name],
        page_size,
        page_token,
        encoded_filters,
    } = query::parse_list(
        raw,
        "role-binding",
        ["crn_pattern", "principal", "role_name"],
    )?;
    let q = RoleBindingQuery {
        crn_pattern,
        principal,
        role_name,
        page_size,
        page_token,
    };
    Ok((q, encoded_filters))
}

/// Parses a create body: the three properties are required strings; other (read-only)
/// properties of the RoleBinding schema are ignored.
fn parse_create(body: &[u8]) -> Result<CreateRoleBinding, MockError> {
    let obj = body_object(body)?;
    let field = |name: &str| -> Result<String, MockError> {
        match obj.get(name) {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(serde_json::Value::String(_)) | None => Err(MockError::invalid_body(
                &format!("/{name}"),
                format!("The property '/{name}' is required"),
            )),
            Some(_) => Err(MockError::invalid_body(
                &format!("/{name}"),
                format!("The property '/{name}' must be a string"),
            )),
        }
    };
    let req = CreateRoleBinding {
        principal: field("principal")?,
        role_name: field("role_name")?,
        crn_pattern: field("crn_pattern")?,
    };
    // the schema's patterns
    if !(req.principal.starts_with("User:") || req.principal.starts_with("Group:"))
        || req.principal.ends_with(':')
    {
        return Err(MockError::invalid_body(
            "/principal",
            format!(
                "The property '/principal' must match (^User:.+$)|(^Group:.+$), got '{}'",
                req.principal
            ),
        ));
    }
    Ok(req)
}

/// `GET /iam/v2/role-bindings`.
async fn list(call: ApiCall, RawQuery(raw): RawQuery) -> Response {
    let (q, filters) = match parse_list(raw.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let page = lock(call.org()).role_bindings.list(&q);
    call.ok(page, |links, page| render_list(links, page, &filters))
}

/// `POST /iam/v2/role-bindings`: 201 with the binding and `Location`.
async fn create(call: ApiCall, body: Bytes) -> Response {
    let req = match parse_create(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let links = call.links();
    let created = {
        let mut org = lock(call.org());
        let is_user = req
            .principal
            .strip_prefix("User:")
            .is_some_and(|id| org.user(id).is_ok());
        org.role_bindings
            .create(&req, links.org, is_user, Timestamp::now())
    };
    let (mut resp, location) = match created {
        Ok(record) => (
            json(StatusCode::CREATED, &render(&links, &record)),
            binding_url(&links, &record.id),
        ),
        Err(e) => {
            let location = match &e {
                RoleBindingError::Duplicate { existing } => binding_url(&links, existing),
                _ => return e.into_response(),
            };
            (e.into_response(), location)
        }
    };
    if let Ok(location) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    resp
}

/// `GET /iam/v2/role-bindings/{id}`: 403 (`40301`) when missing.
async fn get_one(call: ApiCall, Path(id): Path<String>) -> Response {
    let found = lock(call.org()).role_bindings.get(&id);
    call.ok(found, render)
}

/// `DELETE /iam/v2/role-bindings/{id}`: 200 with the deleted binding; 403 (`40301`) when
/// missing.
async fn delete_one(call: ApiCall, Path(id): Path<String>) -> Response {
    let deleted = lock(call.org()).role_bindings.delete(&id);
    call.ok(deleted, render)
}

/// A snapshot of [`RoleBindingCalls`].
pub(crate) fn calls(shared: &Shared) -> RoleBindingCalls {
    lock(&shared.role_binding_calls).clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorLocation;

    #[test]
    fn list_query_parsing() {
        let (q, filters) =
            parse_list("crn_pattern=crn%3A%2F%2Fconfluent.cloud%2Forganization%3Do%2F*&principal=User%3Au-1&page_size=5")
                .unwrap();
        assert_eq!(
            q.crn_pattern.as_deref(),
            Some("crn://confluent.cloud/organization=o/*")
        );
        assert_eq!(q.principal.as_deref(), Some("User:u-1"));
        assert_eq!(q.page_size, Some(5));
        assert_eq!(
            filters,
            "crn_pattern=crn%3A%2F%2Fconfluent.cloud%2Forganization%3Do%2F%2A&principal=User%3Au-1"
        );
        for bad in [
            "email=x",
            "principal=a&principal=b",
            "page_size=x",
            "crn_pattern=%zz",
        ] {
            assert!(parse_list(bad).is_err(), "{bad}");
        }
        // missing crn_pattern parses; the organization's rule refuses it
        assert_eq!(parse_list("").unwrap().0, RoleBindingQuery::default());
    }

    #[test]
    fn a_missing_binding_answers_the_code_the_client_reads_as_gone() {
        let resp = RoleBindingError::Missing { id: "rb-1".into() }.into_response();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let body =
            futures::executor::block_on(axum::body::to_bytes(resp.into_body(), 4096)).unwrap();
        let e = confluent_client::Error::from_status(403, &body, None, None);
        assert_eq!(
            e.refusal().and_then(|r| r.code.as_deref()),
            Some(confluent_client::role_bindings::MISSING_BINDING_CODE)
        );
    }

    #[test]
    fn create_body_parsing() {
        let ok = parse_create(
            br#"{"principal":"User:u-1","role_name":"DeveloperRead","crn_pattern":"crn://x","id":"ignored"}"#,
        )
        .unwrap();
        assert_eq!(ok.role_name, "DeveloperRead");
        for (body, at) in [
            (
                &br#"{"role_name":"R","crn_pattern":"crn://x"}"#[..],
                "/principal",
            ),
            (
                br#"{"principal":"User:u-1","role_name":1,"crn_pattern":"crn://x"}"#,
                "/role_name",
            ),
            (
                br#"{"principal":"User:u-1","role_name":"R","crn_pattern":""}"#,
                "/crn_pattern",
            ),
            (
                br#"{"principal":"u-1","role_name":"R","crn_pattern":"crn://x"}"#,
                "/principal",
            ),
            (
                br#"{"principal":"User:","role_name":"R","crn_pattern":"crn://x"}"#,
                "/principal",
            ),
            (br#"[]"#, "/"),
        ] {
            match parse_create(body) {
                Err(MockError::InvalidRequest {
                    at: ErrorLocation::Body(p),
                    ..
                }) => assert_eq!(p, at, "{}", String::from_utf8_lossy(body)),
                other => panic!("{other:?}"),
            }
        }
    }
}
