//! Building responses the way the real API shapes them: JSON bodies, `Failure` error bodies with
//! a fresh error id and the status as a string, and the rate-limit headers.

use axum::Json;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::{ErrorLocation, MockError};
use super::ratelimit::Quota;
use confluent_client::model::{ErrorItem, ErrorSource, Failure};

/// `X-Request-Id`, on every response.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `X-RateLimit-Limit`.
pub const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining`.
pub const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset`: relative seconds, not an epoch.
pub const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// A random version-4 UUID string: request and error ids.
pub fn uuid() -> String {
    let hi = fastrand::u64(..);
    let lo = fastrand::u64(..);
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    (status, Json(body)).into_response()
}

/// A `Failure` response with one error.
pub fn failure(
    status: StatusCode,
    code: &str,
    title: &str,
    detail: &str,
    source: Option<ErrorSource>,
) -> Response {
    let body = Failure {
        errors: vec![ErrorItem {
            id: Some(uuid()),
            status: Some(status.as_u16().to_string()),
            code: Some(code.to_owned()),
            title: Some(title.to_owned()),
            detail: Some(detail.to_owned()),
            source,
        }],
    };
    json(status, &body)
}

/// 401 with `WWW-Authenticate`, as the real API answers a missing or wrong credential.
pub fn unauthenticated() -> Response {
    let mut resp = failure(
        StatusCode::UNAUTHORIZED,
        "user_unauthenticated",
        "Authentication Required",
        "Valid authentication credentials must be provided",
        None,
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            r#"Basic error="invalid_key", error_description="The API Key is invalid""#,
        ),
    );
    resp
}

/// 429 with `Retry-After` and the rate-limit headers. The spec gives 429 no body schema; a small
/// Failure-shaped body is sent so lenient clients can still log something.
pub fn rate_limited(quota: Option<Quota>, retry_after: u64) -> Response {
    let mut resp = failure(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "Too Many Requests",
        "Rate limit exceeded, retry after the number of seconds in Retry-After",
        None,
    );
    let headers = resp.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    match quota {
        Some(q) => add_quota(headers, q),
        None => {
            headers.insert(X_RATELIMIT_RESET, HeaderValue::from(retry_after));
        }
    }
    resp
}

/// Adds `X-RateLimit-Limit`, `-Remaining` and `-Reset`.
pub fn add_quota(headers: &mut HeaderMap, q: Quota) {
    headers.insert(X_RATELIMIT_LIMIT, HeaderValue::from(q.limit));
    headers.insert(X_RATELIMIT_REMAINING, HeaderValue::from(q.remaining));
    headers.insert(X_RATELIMIT_RESET, HeaderValue::from(q.reset_secs));
}

/// The answer of a `Status` fault: the code with a plausible Failure body.
pub fn injected_status(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::TOO_MANY_REQUESTS {
        return rate_limited(None, 1);
    }
    if status == StatusCode::UNAUTHORIZED {
        return unauthenticated();
    }
    let code = match status.as_u16() {
        400 => "invalid_configuration",
        402 => "quota_exceeded",
        403 => "user_unauthorized",
        404 => "not_found",
        409 => "resource_already_exists",
        500 => "internal_server_error",
        502 => "bad_gateway",
        503 => "service_unavailable",
        504 => "gateway_timeout",
        _ => "injected_fault",
    };
    let title = status.canonical_reason().unwrap_or("Injected Fault");
    failure(
        status,
        code,
        title,
        &format!("Injected fault: the mock answers {}", status.as_u16()),
        None,
    )
}

impl IntoResponse for MockError {
    fn into_response(self) -> Response {
        let detail = self.to_string();
        match &self {
            MockError::NotFound { .. } => failure(
                StatusCode::NOT_FOUND,
                "not_found",
                "Not Found",
                &detail,
                None,
            ),
            MockError::AlreadyExists { .. } => failure(
                StatusCode::CONFLICT,
                "resource_already_exists",
                "Resource Already Exists",
                &detail,
                None,
            ),
            MockError::AlreadyAccepted { .. } => failure(
                StatusCode::BAD_REQUEST,
                "invalid_configuration",
                "Bad Request",
                &detail,
                None,
            ),
            MockError::InvalidState { .. } => failure(
                StatusCode::CONFLICT,
                "invalid_state",
                "Conflict",
                &detail,
                None,
            ),
            MockError::InvalidRequest { at, .. } => {
                let (code, title, source) = match at {
                    ErrorLocation::Body(pointer) => (
                        "invalid_configuration",
                        "Invalid Configuration",
                        ErrorSource {
                            pointer: Some(pointer.clone()),
                            parameter: None,
                        },
                    ),
                    ErrorLocation::Query(parameter) => (
                        "invalid_filter",
                        "Invalid Filter",
                        ErrorSource {
                            pointer: None,
                            parameter: Some(parameter.clone()),
                        },
                    ),
                };
                failure(StatusCode::BAD_REQUEST, code, title, &detail, Some(source))
            }
            MockError::Bind { .. } => failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_server_error",
                "Internal Server Error",
                &detail,
                None,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_look_like_v4() {
        let u = uuid();
        assert_eq!(u.len(), 36);
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(uuid(), u);
    }

    #[test]
    fn injected_429_has_retry_after() {
        let r = injected_status(429);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        assert_eq!(r.headers()[X_RATELIMIT_RESET], "1");
        assert_eq!(
            injected_status(7).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
