//! What a response's headers tell: the `X-RateLimit-*` window the credential's limiter learns
//! from, and the server's wait after a 429 (`Retry-After`, else the relative reset).

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::ratelimit::{Observation, Window};

/// What an answer tells the credential's limiter: its `X-RateLimit-*` headers, and on a 429 the
/// server's wait.
pub(super) fn observation(headers: &HeaderMap, status: u16, latency: Duration) -> Observation {
    let window = Window {
        limit: header_u64(headers, "x-ratelimit-limit"),
        remaining: header_u64(headers, "x-ratelimit-remaining"),
        reset: header_u64(headers, "x-ratelimit-reset").map(Duration::from_secs),
    };
    if status == 429 {
        Observation::Throttled {
            window,
            retry_after: server_wait(headers),
        }
    } else {
        Observation::Answered { window, latency }
    }
}

pub(super) fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    header_str(headers, name).and_then(|v| v.trim().parse().ok())
}

/// The server's wait: `Retry-After` (seconds, or the HTTP-date form RFC 9110 also allows), else
/// the *relative* `X-RateLimit-Reset` seconds. Capped at an hour.
pub(super) fn server_wait(headers: &HeaderMap) -> Option<Duration> {
    server_wait_at(headers, jiff::Timestamp::now())
}

pub(super) fn server_wait_at(headers: &HeaderMap, now: jiff::Timestamp) -> Option<Duration> {
    let cap = Duration::from_secs(3600);
    header_u64(headers, "retry-after")
        .map(Duration::from_secs)
        .or_else(|| retry_after_date(headers, now))
        .or_else(|| header_u64(headers, "x-ratelimit-reset").map(Duration::from_secs))
        .map(|d| d.min(cap))
}

/// `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`: the time left until then (none if past).
fn retry_after_date(headers: &HeaderMap, now: jiff::Timestamp) -> Option<Duration> {
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    let at = PARSER
        .parse_timestamp(header_str(headers, "retry-after")?.trim())
        .ok()?;
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}
