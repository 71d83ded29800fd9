//! The client's error taxonomy: one variant per thing a controller does differently.

use std::time::Duration;

use super::model::Failure;

/// What the server said when it refused a request, kept for status, Events and logs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerRefusal {
    /// HTTP status code.
    pub status: u16,
    /// Confluent's `code` (`quota_exceeded`, `user_unauthorized`, ...).
    pub code: Option<String>,
    /// Confluent's own `detail`, or the `title`, or a fallback naming the status.
    pub detail: String,
    /// `source.pointer` or `source.parameter`: the request part at fault.
    pub source: Option<String>,
    /// `X-Request-Id`, so support can trace the call.
    pub request_id: Option<String>,
}

impl ServerRefusal {
    /// Builds a refusal from a status, the raw body and the request id, taking the first entry of
    /// a `Failure` body when the body is one.
    pub fn from_response(status: u16, body: &[u8], request_id: Option<String>) -> Self {
        let first = serde_json::from_slice::<Failure>(body)
            .ok()
            .and_then(|f| f.errors.into_iter().next());
        let given = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        let (code, detail, source) = match first {
            Some(e) => {
                let source = e
                    .source
                    .and_then(|s| given(s.pointer).or(given(s.parameter)));
                let detail = given(e.detail).or(given(e.title));
                (given(e.code), detail, source)
            }
            None => match serde_json::from_slice::<CodedMessage>(body) {
                // the role-bindings API's answer for a missing binding is not a Failure body
                // (nor, in a third-party copy of the STS spec, the exchange's refusals)
                Ok(CodedMessage {
                    error_code: Some(code),
                    message,
                    ..
                }) => (code_text(&code), given(message), None),
                // RFC 6749's error body, which an OAuth token endpoint such as the STS may send
                Ok(CodedMessage {
                    error: Some(error),
                    error_description,
                    ..
                }) => (given(Some(error)), given(error_description), None),
                _ => (None, None, None),
            },
        };
        let (code, detail, source) = (
            code.as_deref().map(bounded),
            detail.as_deref().map(bounded),
            source.as_deref().map(bounded),
        );
        Self {
            status,
            code,
            detail: detail.unwrap_or_else(|| format!("HTTP {status} without an error body")),
            source,
            request_id: request_id.as_deref().map(bounded),
        }
    }
}

/// The other error body Confluent sends, outside the spec's `Failure` schema: a missing role
/// binding answers `{"error_code": 40301, "message": "Either unauthorized to access role
/// binding or role binding does not exist"}`.
/// RFC 6749's `{"error": "invalid_grant", "error_description": "..."}` is read here too.
#[derive(serde::Deserialize)]
struct CodedMessage {
    /// A number (`40301`) or a string.
    error_code: Option<serde_json::Value>,
    message: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `error_code` as text, whether the server sent a number or a string.
fn code_text(code: &serde_json::Value) -> Option<String> {
    match code {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The most of a server's text (detail, code, request id, echoed links and ids) an error keeps:
/// conditions, Events and log lines stay small whatever the server sends.
pub const MAX_SERVER_TEXT: usize = 1024;

/// `text`, cut at [`MAX_SERVER_TEXT`] bytes on a character boundary, saying how much was cut.
pub fn bounded(text: &str) -> String {
    if text.len() <= MAX_SERVER_TEXT {
        return text.to_owned();
    }
    let mut cut = MAX_SERVER_TEXT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} more bytes)", &text[..cut], text.len() - cut)
}

impl std::fmt::Display for ServerRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.detail)?;
        if let Some(source) = &self.source {
            write!(f, " (at {source})")?;
        }
        write!(f, " [HTTP {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, ", {code}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, ", request id {id}")?;
        }
        write!(f, "]")
    }
}

/// The reason of credentials Confluent refuses (and of a Secret whose content is unusable): the
/// controller matches it to tell whose status already says so.
pub const CREDENTIALS_INVALID: &str = "CredentialsInvalid";

/// Every way a Confluent call can fail, classified for the caller.
///
/// The variants follow what a controller must do differently: adopt (409), treat as gone (404),
/// keep the member (already accepted), stop and explain (401/402/403/400/422), or back off
/// (429/5xx/network). Credentials never reach these values: only the server's words do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404; on an invitation read by id also a 403 that does not blame the API key (the
    /// Terraform provider's reading: "not found or not allowed to know"); on a role binding
    /// read or delete the 403 with `error_code 40301` only.
    #[error("not found: {0}")]
    NotFound(ServerRefusal),
    /// 409: the email already has a pending invitation or is a member.
    #[error("already exists: {0}")]
    AlreadyExists(ServerRefusal),
    /// 400 "The invitation was already accepted" on deleting an accepted invitation.
    #[error("already accepted: {0}")]
    AlreadyAccepted(ServerRefusal),
    /// 402: the organization's `invitations_per_org` quota is used up.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(ServerRefusal),
    /// 401 (or a 403 that names an invalid API key): the credentials are wrong.
    #[error("unauthenticated: {0}")]
    Unauthenticated(ServerRefusal),
    /// 403: the principal may not do this.
    #[error("forbidden: {0}")]
    Forbidden(ServerRefusal),
    /// 400/422: the request was invalid; `detail`/`source` say why.
    #[error("invalid request: {0}")]
    Invalid(ServerRefusal),
    /// 429: wait at least `retry_after` before calling again with this credential.
    #[error("rate limited, retry after {retry_after:?}{}", request_suffix(.request_id))]
    RateLimited {
        retry_after: Duration,
        request_id: Option<String>,
    },
    /// 5xx: the server failed; the request may or may not have taken effect.
    #[error("server error: {0}")]
    Server(ServerRefusal),
    /// Any other status the API does not document for this call.
    #[error("unexpected response: {0}")]
    Unexpected(ServerRefusal),
    /// No response: connection refused or dropped, timeout. The request may have taken effect.
    #[error("network error calling Confluent ({operation}): {message}")]
    Network {
        operation: &'static str,
        message: String,
    },
    /// A 2xx whose body is not what the API describes.
    #[error("malformed response from Confluent ({operation}): {message}{}", request_suffix(.request_id))]
    Decode {
        operation: &'static str,
        message: String,
        request_id: Option<String>,
    },
    /// The client could not build credentials or a request (unreadable token file, bad URL).
    #[error("client configuration: {0}")]
    Config(String),
}

fn request_suffix(id: &Option<String>) -> String {
    id.as_ref()
        .map(|id| format!(" [request id {id}]"))
        .unwrap_or_default()
}

impl Error {
    /// Classifies a non-2xx response.
    pub fn from_status(
        status: u16,
        body: &[u8],
        request_id: Option<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        if status == 429 {
            return Self::RateLimited {
                retry_after: retry_after.unwrap_or(Duration::from_secs(1)),
                request_id: request_id.as_deref().map(bounded),
            };
        }
        let r = ServerRefusal::from_response(status, body, request_id);
        match status {
            401 => Self::Unauthenticated(r),
            403 if blames_api_key(&r) => Self::Unauthenticated(r),
            403 => Self::Forbidden(r),
            404 => Self::NotFound(r),
            409 => Self::AlreadyExists(r),
            402 => Self::QuotaExceeded(r),
            400 if r.detail.to_ascii_lowercase().contains("already accepted") => {
                Self::AlreadyAccepted(r)
            }
            400 | 422 => Self::Invalid(r),
            500..=599 => Self::Server(r),
            _ => Self::Unexpected(r),
        }
    }

    /// Whether repeating the same idempotent call later may succeed without anyone changing
    /// anything (429, 5xx, network).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Server(_) | Self::Network { .. }
        )
    }

    /// The server's requested wait, for 429.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The refusal behind this error, when the server answered.
    pub fn refusal(&self) -> Option<&ServerRefusal> {
        match self {
            Self::NotFound(r)
            | Self::AlreadyExists(r)
            | Self::AlreadyAccepted(r)
            | Self::QuotaExceeded(r)
            | Self::Unauthenticated(r)
            | Self::Forbidden(r)
            | Self::Invalid(r)
            | Self::Server(r)
            | Self::Unexpected(r) => Some(r),
            _ => None,
        }
    }

    /// `X-Request-Id` of the failed call, when there was a response.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::RateLimited { request_id, .. } | Self::Decode { request_id, .. } => {
                request_id.as_deref()
            }
            other => other.refusal().and_then(|r| r.request_id.as_deref()),
        }
    }

    /// Confluent's own explanation (or ours, when there was no response).
    pub fn detail(&self) -> String {
        match self.refusal() {
            Some(r) => r.to_string(),
            None => self.to_string(),
        }
    }

    /// A short, stable, CamelCase name: used as a metrics label and a condition/Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "NotFound",
            Self::AlreadyExists(_) => "AlreadyExists",
            Self::AlreadyAccepted(_) => "AlreadyAccepted",
            Self::QuotaExceeded(_) => "QuotaExceeded",
            Self::Unauthenticated(_) => CREDENTIALS_INVALID,
            Self::Forbidden(_) => "Forbidden",
            Self::Invalid(_) => "InvalidRequest",
            Self::RateLimited { .. } => "RateLimited",
            Self::Server(_) => "ConfluentServerError",
            Self::Unexpected(_) => "UnexpectedResponse",
            Self::Network { .. } => "NetworkError",
            Self::Decode { .. } => "MalformedResponse",
            Self::Config(_) => "ClientConfiguration",
        }
    }
}

/// Whether a 403 is really an authentication failure ("invalid API key"), as the Terraform
/// provider distinguishes them.
fn blames_api_key(r: &ServerRefusal) -> bool {
    let d = r.detail.to_ascii_lowercase();
    d.contains("invalid api key") || d.contains("api key is invalid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(status: &str, code: &str, detail: &str) -> Vec<u8> {
        serde_json::json!({"errors": [{"id": "x", "status": status, "code": code,
            "title": "T", "detail": detail, "source": {"pointer": "/email"}}]})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn classifies_every_documented_status() {
        let rid = Some("req-1".to_string());
        let cases: Vec<(u16, &str, &str)> = vec![
            (401, "user_unauthenticated", "CredentialsInvalid"),
            (403, "user_unauthorized", "Forbidden"),
            (404, "not_found", "NotFound"),
            (409, "resource_already_exists", "AlreadyExists"),
            (402, "quota_exceeded", "QuotaExceeded"),
            (400, "invalid_configuration", "InvalidRequest"),
            (422, "invalid_configuration", "InvalidRequest"),
            (500, "out_of_gas", "ConfluentServerError"),
            (503, "unavailable", "ConfluentServerError"),
            (418, "teapot", "UnexpectedResponse"),
        ];
        for (status, code, reason) in cases {
            let e = Error::from_status(status, &body("s", code, "the detail"), rid.clone(), None);
            assert_eq!(e.reason(), reason, "status {status}");
            assert_eq!(e.request_id(), Some("req-1"));
            let r = e.refusal().unwrap();
            assert_eq!(r.detail, "the detail");
            assert_eq!(r.code.as_deref(), Some(code));
            assert_eq!(r.source.as_deref(), Some("/email"));
        }
    }

    #[test]
    fn already_accepted_and_invalid_key_are_recognised_by_detail() {
        let e = Error::from_status(
            400,
            &body(
                "400",
                "invalid_configuration",
                "The invitation was already accepted",
            ),
            None,
            None,
        );
        assert!(matches!(e, Error::AlreadyAccepted(_)));
        let e = Error::from_status(
            403,
            &body("403", "user_unauthorized", "Invalid API Key"),
            None,
            None,
        );
        assert!(matches!(e, Error::Unauthenticated(_)));
    }

    #[test]
    fn a_coded_message_body_gives_its_code_and_message() {
        let e = Error::from_status(
            403,
            br#"{"error_code": 40301, "message": "Either unauthorized to access role binding or role binding does not exist"}"#,
            None,
            None,
        );
        assert!(matches!(e, Error::Forbidden(_)), "{e:?}");
        let r = e.refusal().unwrap();
        assert_eq!(r.code.as_deref(), Some("40301"));
        assert!(r.detail.starts_with("Either unauthorized"), "{}", r.detail);
        // neither shape: the fallback
        let e = Error::from_status(403, br#"{"message": "x"}"#, None, None);
        assert_eq!(
            e.refusal().unwrap().detail,
            "HTTP 403 without an error body"
        );
    }

    #[test]
    fn oauth_and_string_coded_bodies_give_their_words() {
        let e = Error::from_status(
            400,
            br#"{"error": "invalid_grant", "error_description": "audience mismatch"}"#,
            None,
            None,
        );
        let r = e.refusal().unwrap();
        assert_eq!(r.code.as_deref(), Some("invalid_grant"));
        assert_eq!(r.detail, "audience mismatch");
        let e = Error::from_status(
            401,
            br#"{"error_code": "unauthorized", "message": "pool revoked"}"#,
            None,
            None,
        );
        let r = e.refusal().unwrap();
        assert_eq!(
            (r.code.as_deref(), r.detail.as_str()),
            (Some("unauthorized"), "pool revoked")
        );
    }

    #[test]
    fn rate_limit_keeps_the_wait_and_defaults_to_one_second() {
        let e = Error::from_status(429, b"", Some("r".into()), Some(Duration::from_secs(7)));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(e.is_transient());
        let e = Error::from_status(429, b"", None, None);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn a_body_that_is_not_a_failure_still_gives_a_message() {
        let e = Error::from_status(502, b"<html>bad gateway</html>", None, None);
        assert_eq!(
            e.refusal().unwrap().detail,
            "HTTP 502 without an error body"
        );
        assert!(e.is_transient());
    }

    #[test]
    fn display_names_detail_status_and_request_id() {
        let e = Error::from_status(
            402,
            &body("402", "quota_exceeded", "quota: invitations_per_org"),
            Some("abc".into()),
            None,
        );
        assert_eq!(
            e.to_string(),
            "quota exceeded: quota: invitations_per_org (at /email) [HTTP 402, quota_exceeded, request id abc]"
        );
    }
}
