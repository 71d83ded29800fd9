//! The keyless credential's side of every call: the STS token of the moment (exchanged at most
//! once at a time per credential, renewed before it is due) and the exchange itself.

use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use tracing::debug;

use super::{Body, Client, Operation, Reply, StsResult};
use crate::auth::sensitive_header;
use crate::error::{Error, bounded};
use crate::sts::{self, Issued, Sts};

impl Client {
    /// The keyless credential's `Authorization` header and its token's generation.
    pub(super) async fn sts_authorization(
        &self,
        sts: &Sts,
    ) -> Result<(reqwest::header::HeaderValue, u64), Error> {
        let (token, generation, expires_at) = self.sts_token(sts).await?;
        if let Some(o) = &self.inner.observer {
            o.on_sts_token(
                &self.identity(),
                expires_at.saturating_duration_since(tokio::time::Instant::now()),
            );
        }
        let header = sensitive_header(&format!("Bearer {}", token.expose_secret()))?;
        Ok((header, generation))
    }

    /// The token of the moment, exchanging for a new one when there is none or it is due. The
    /// lock is held across the exchange: callers arriving meanwhile wait for its token instead
    /// of exchanging too (one exchange per credential at a time).
    async fn sts_token(
        &self,
        sts: &Sts,
    ) -> Result<(SecretString, u64, tokio::time::Instant), Error> {
        let mut current = sts.current().lock().await;
        if let Some(issued) = current.as_ref()
            && tokio::time::Instant::now() < issued.refresh_at
        {
            return Ok((issued.token.clone(), issued.generation, issued.expires_at));
        }
        let previous = current.as_ref().map_or(0, |i| i.generation);
        let issued = match self.exchange(sts, previous + 1).await {
            Ok(issued) => issued,
            Err(e) => {
                let now = tokio::time::Instant::now();
                // A token not yet expired stays in use while the STS is throttling or down; the
                // next attempt waits a little (at most a second, at most half of what is left),
                // so that an outage does not turn every call into an exchange.
                if let Some(old) = current.as_mut()
                    && e.is_transient()
                    && now < old.expires_at
                {
                    let left = old.expires_at.saturating_duration_since(now);
                    old.refresh_at = now + (left / 2).min(Duration::from_secs(1));
                    debug!(error = %e, "STS exchange failed; the current token still lives");
                    return Ok((old.token.clone(), old.generation, old.expires_at));
                }
                *current = None;
                return Err(e);
            }
        };
        let answer = (issued.token.clone(), issued.generation, issued.expires_at);
        *current = Some(issued);
        Ok(answer)
    }

    /// One exchange at the STS: no `Authorization`, a form body. Refusals (400/401/403) are the
    /// credential's [`Error::Unauthenticated`], with the server's words; 429 goes through the
    /// credential's limiter like any call; 5xx and network errors stay transient.
    async fn exchange(&self, sts: &Sts, generation: u64) -> Result<Issued, Error> {
        let started = tokio::time::Instant::now();
        let result = self.exchange_once(sts, generation, started).await;
        let (result, outcome) = match result {
            Ok(issued) => (Ok(issued), StsResult::Issued),
            Err(
                Error::Invalid(r)
                | Error::Unauthenticated(r)
                | Error::Forbidden(r)
                | Error::AlreadyAccepted(r),
            ) => (Err(Error::Unauthenticated(r)), StsResult::Refused),
            Err(e @ Error::RateLimited { .. }) => (Err(e), StsResult::RateLimited),
            Err(e) => (Err(e), StsResult::Failed),
        };
        if let Some(o) = &self.inner.observer {
            o.on_sts_exchange(outcome);
        }
        match &result {
            Ok(i) => debug!(
                pool = sts.pool(),
                lifetime = ?i.expires_at.saturating_duration_since(started),
                "STS token issued"
            ),
            Err(e) => debug!(pool = sts.pool(), error = %e, "STS exchange failed"),
        }
        result
    }

    /// The subject token of the moment, sent to the STS; the answer read as a token.
    async fn exchange_once(
        &self,
        sts: &Sts,
        generation: u64,
        started: tokio::time::Instant,
    ) -> Result<Issued, Error> {
        let subject = sts.source().subject_token().await?;
        let body = sts::form(sts.pool(), subject.expose_secret(), sts.lifetime())?;
        drop(subject);
        let url = self.url(sts::TOKEN_PATH)?;
        let reply = self
            .send_once(
                Operation::StsExchange,
                Method::POST,
                &url,
                Some(Body::Form(body)),
                None,
            )
            .await?;
        issued(&reply, started, generation)
    }
}

/// The token of a 200 answer, due for renewal per [`sts::refresh_after`] of the lifetime the
/// server returned (not the one asked for: the contract's own example answers above the
/// maximum). The answer is never quoted in the error: it holds the token.
fn issued(reply: &Reply, started: tokio::time::Instant, generation: u64) -> Result<Issued, Error> {
    let malformed = |message: &str| Error::Decode {
        operation: Operation::StsExchange.as_str(),
        message: message.to_owned(),
        request_id: reply.request_id.clone(),
    };
    let answer: sts::Reply = serde_json::from_slice(&reply.body).map_err(|_| {
        malformed("the answer is not {access_token, token_type, expires_in} (not quoted: it may hold a token)")
    })?;
    if !answer.token_type.eq_ignore_ascii_case("bearer") {
        return Err(malformed(&format!(
            "token_type {:?} is not Bearer",
            bounded(&answer.token_type)
        )));
    }
    let token = answer.access_token.trim();
    if token.is_empty() || sensitive_header(&format!("Bearer {token}")).is_err() {
        return Err(malformed("access_token is empty or not usable in a header"));
    }
    let lifetime = u64::try_from(answer.expires_in)
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| malformed(&format!("expires_in {} is not positive", answer.expires_in)))?;
    Ok(Issued {
        token: SecretString::from(token.to_owned()),
        generation,
        refresh_at: started + sts::refresh_after(lifetime),
        expires_at: started + lifetime,
    })
}
