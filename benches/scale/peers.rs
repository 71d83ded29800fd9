//! The peers' strategy, measured in this process against a fresh mock with the same settings:
//! a blind POST per create, then a GET per resource per poll.

use std::time::{Duration, Instant};

use confluent_mock::CallCounts;
use futures::StreamExt;

use crate::error::BoxError;
use crate::flags::Opts;
use crate::invitations::email_of;
use crate::measure::{check_duplicates, diff};
use crate::run::{self, API_KEY, API_SECRET};
use crate::units::secs;

/// What the peers' strategy measured at one size.
#[derive(Debug, Default)]
pub struct PeerRow {
    pub n: u64,
    pub rate: f64,
    /// From the first POST until every one was answered 2xx.
    pub sent_after: Duration,
    /// Confluent calls until then.
    pub create_calls: CallCounts,
    /// How long one poll (a GET per resource) took.
    pub poll_took: Duration,
    /// Confluent calls of one poll.
    pub poll_calls: CallCounts,
    pub duplicates: u64,
    pub missing: u64,
}

/// Terraform, Pulumi (the same provider code) and Crossplane (Terraform's code inside) create
/// with a blind POST and observe with a GET per resource per refresh/poll; their HTTP client
/// retries a 429 after `Retry-After`. Measured here against a fresh mock with the same settings.
pub async fn run_peers(opts: &Opts, n: u64) -> Result<PeerRow, BoxError> {
    let rate = opts.rate_for(n);
    let server = run::start_mock(opts, rate).await?;
    let remote = server.state();
    let base = server.base_url();
    let http = reqwest::Client::new();
    let parallelism = opts.peer_parallelism.max(1);
    let c0 = remote.calls();
    let t0 = Instant::now();
    let ids: Vec<Result<String, String>> = futures::stream::iter(0..n)
        .map(|i| {
            let body = serde_json::json!({ "email": email_of(i) });
            peer_call(
                &http,
                reqwest::Method::POST,
                format!("{base}/iam/v2/invitations"),
                Some(body),
            )
        })
        .buffer_unordered(parallelism)
        .collect()
        .await;
    let sent_after = t0.elapsed();
    let create_calls = diff(&c0, &remote.calls());
    let ids: Vec<String> = ids.into_iter().collect::<Result<_, _>>()?;
    eprintln!(
        "  peers: {n} POSTs answered 2xx after {} ({} calls, {} answered 429)",
        secs(sent_after),
        create_calls.total,
        create_calls.rate_limited
    );
    // a poll comes a poll interval later, when the server's bucket has refilled
    tokio::time::sleep(Duration::from_secs_f64(f64::from(opts.burst) / rate)).await;
    let c1 = remote.calls();
    let t1 = Instant::now();
    let polled: Vec<Result<String, String>> = futures::stream::iter(ids)
        .map(|id| {
            peer_call(
                &http,
                reqwest::Method::GET,
                format!("{base}/iam/v2/invitations/{id}"),
                None,
            )
        })
        .buffer_unordered(parallelism)
        .collect()
        .await;
    let poll_took = t1.elapsed();
    let poll_calls = diff(&c1, &remote.calls());
    polled.into_iter().collect::<Result<Vec<_>, _>>()?;
    eprintln!(
        "  peers: one poll took {} ({} calls, {} answered 429)",
        secs(poll_took),
        poll_calls.total,
        poll_calls.rate_limited
    );
    let (missing, duplicates, _) = {
        let remote = remote.clone();
        tokio::task::spawn_blocking(move || check_duplicates(&remote, n)).await?
    };
    server.shutdown().await;
    Ok(PeerRow {
        n,
        rate,
        sent_after,
        create_calls,
        poll_took,
        poll_calls,
        duplicates,
        missing,
    })
}

/// One call as the peers' HTTP client makes it: retried after `Retry-After` (at least 1 s) on a
/// 429, after a second on a 5xx or a network error; the `id` of the answer.
pub async fn peer_call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<serde_json::Value>,
) -> Result<String, String> {
    for _ in 0..100 {
        let mut request = http
            .request(method.clone(), &url)
            .basic_auth(API_KEY, Some(API_SECRET));
        if let Some(body) = &body {
            request = request.json(body);
        }
        let wait = match request.send().await {
            Ok(r) if r.status().is_success() => {
                let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
                return Ok(v["id"].as_str().unwrap_or_default().to_owned());
            }
            Ok(r) if r.status().as_u16() == 429 => r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .unwrap_or(1)
                .max(1),
            Ok(r) if r.status().is_server_error() => 1,
            Ok(r) => return Err(format!("{method} {url}: {}", r.status())),
            Err(_) => 1,
        };
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
    Err(format!("{method} {url}: still failing after 100 attempts"))
}
