//! The STS handler, `POST /sts/v1/oauth2/token`: reads the form, runs the exchange
//! ([`super::sts`]), renders the answer or the contract's `Failure`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;

use super::handle::Shared;
use super::respond::{failure, json};
use super::sts::{Refusal, TOKEN_PATH};
use super::sync::lock;

/// The STS route.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route(TOKEN_PATH, post(exchange))
}

async fn exchange(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = read_form(&headers, &body);
    let answer = lock(&shared.sts).answer(form, Instant::now());
    match answer {
        Ok(reply) => {
            tracing::debug!(expires_in = reply.expires_in, "STS token issued");
            json(StatusCode::OK, &reply)
        }
        Err(r) => {
            tracing::debug!(status = %r.status, code = r.code, "STS exchange refused");
            failure(r.status, r.code, "Token Exchange Refused", &r.detail, None)
        }
    }
}

/// The form, each field once, from a form-encoded body.
fn read_form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, Refusal> {
    // the operation declares no security: a client sending a credential here is leaking it
    if headers.contains_key(header::AUTHORIZATION) {
        return Err(Refusal::request(
            "the token exchange takes no Authorization header".into(),
        ));
    }
    let form_typed = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/x-www-form-urlencoded")
        });
    if !form_typed {
        return Err(Refusal::request(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let text =
        std::str::from_utf8(body).map_err(|_| Refusal::request("the body is not UTF-8".into()))?;
    let pairs = super::query::parse(text)
        .ok_or_else(|| Refusal::request("the body is not form-encoded".into()))?;
    let mut form = HashMap::new();
    for (k, v) in pairs {
        if form.insert(k.clone(), v).is_some() {
            return Err(Refusal::request(format!("{k} is given more than once")));
        }
    }
    Ok(form)
}
