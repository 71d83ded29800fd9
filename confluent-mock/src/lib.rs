//! A faithful, stateful mock of the Confluent Cloud IAM v2 invitations API, for tests,
//! benchmarks and the sandbox: start it in-process with [`start`], or run the `confluent-mock`
//! binary.
//!
//! It follows `confluent-client/openapi/iam-v2-invitations.openapi.yaml` for shapes and codes, and the
//! behaviour users of the real service report (`confluent-client/openapi/README.md`): the 409 "This user already
//! exists within the Organization" for a live email, the 400 "The invitation was already
//! accepted", deactivation on delete, expiry after 7 days, opaque page tokens with absolute
//! `next` links, Basic and Bearer authentication, per-credential rate limits with `Retry-After`.
//! Undocumented behaviour is modelled and documented in `state.rs`; notably GET after DELETE of a
//! pending invitation answers it with status `INVITE_STATUS_DEACTIVATED` and
//! `metadata.deleted_at` set (a second DELETE answers 404), and the invitee's user exists from
//! the invitation's creation on.
//!
//! Tests steer it through [`MockHandle`] (or the same controls over HTTP under `/_mock/`):
//! accept or expire invitations, remove them out of band, inject [`Fault`]s (error codes,
//! delays, dropped connections, commits whose answer is lost), change latency and rate limits,
//! and read [`CallCounts`].
//!
//! It serves Confluent's STS token exchange, `POST /sts/v1/oauth2/token`, for keyless
//! credentials: identity pools, subject-JWT claims, short-lived tokens that then authenticate
//! `/iam/v2` (`sts.rs`).
//!
//! It also serves `/iam/v2/role-bindings` (`iam-v2-role-bindings.openapi.yaml`) behind the same
//! gate (authentication, latency, one rate-limit bucket per credential, faults): the rules and the
//! mock's choices where the contract is silent are in `role_bindings.rs`, the test controls
//! (`/_mock/role-bindings`, [`MockHandle::seed_role_binding`], [`RoleBindingCalls`]) in
//! `role_binding_control.rs`.

mod api;
mod auth;
mod clock;
mod control;
mod error;
mod faults;
mod gate;
mod handle;
mod ids;
mod pagination;
mod query;
mod ratelimit;
mod respond;
mod role_binding_api;
mod role_binding_control;
mod role_bindings;
mod server;
mod state;
mod sts;
mod sts_api;
mod sync;
mod wire;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::{ErrorLocation, MockError};
pub use faults::{Fault, FaultAction};
pub use handle::MockHandle;
pub use role_bindings::RoleBindingCalls;
pub use sts::{StsExchanges, StsPool, TOKEN_PREFIX as STS_TOKEN_PREFIX};

use auth::Credentials;
use faults::FaultQueue;
use handle::Shared;
use ratelimit::RateLimiter;
use state::Org;

/// How a mock server starts. Credentials are the ones it accepts; everything else can be changed
/// later through [`MockHandle`].
#[derive(Clone)]
pub struct MockConfig {
    /// Accepted HTTP Basic credentials: (API key id, secret).
    pub api_keys: Vec<(String, String)>,
    /// Accepted `Bearer` tokens.
    pub tokens: Vec<String>,
    /// The organization uuid used in CRNs.
    pub org_id: String,
    /// Added before every `/iam/v2` request.
    pub latency: Duration,
    /// Per-credential limit; `None` = unlimited.
    pub rate_limit: Option<RateLimit>,
    /// API keys and tokens of other organizations, each with invitations and users of its own
    /// (an operator serving several organizations through one endpoint).
    pub other_organizations: Vec<OtherOrganization>,
    /// Identity pools whose subject JWTs `POST /sts/v1/oauth2/token` exchanges (`sts.rs`).
    pub sts_pools: Vec<StsPool>,
    /// The longest life of an STS token (default 900 s, the contract's maximum; tests use a
    /// few seconds to see renewals).
    pub sts_token_lifetime: Duration,
}

/// An API key (and `Bearer` tokens) of another organization than the mock's main one.
#[derive(Clone)]
pub struct OtherOrganization {
    pub api_key: String,
    pub api_secret: String,
    /// Its organization uuid, used in its CRNs.
    pub org_id: String,
    /// Accepted `Bearer` tokens acting in this organization (none: its API key only).
    pub tokens: Vec<String>,
}

impl fmt::Debug for OtherOrganization {
    /// Never prints credentials: the organization and how many tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtherOrganization")
            .field("org_id", &self.org_id)
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl fmt::Debug for MockConfig {
    /// Never prints credentials (not even key ids): only how many there are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockConfig")
            .field("api_keys", &self.api_keys.len())
            .field("tokens", &self.tokens.len())
            .field("org_id", &self.org_id)
            .field("latency", &self.latency)
            .field("rate_limit", &self.rate_limit)
            .field("other_organizations", &self.other_organizations.len())
            .field("sts_pools", &self.sts_pools)
            .field("sts_token_lifetime", &self.sts_token_lifetime)
            .finish()
    }
}

impl Default for MockConfig {
    /// API key `mock-key`/`mock-secret`, no tokens, a random organization uuid, no latency, no
    /// rate limit.
    fn default() -> Self {
        Self {
            api_keys: vec![("mock-key".to_owned(), "mock-secret".to_owned())],
            tokens: Vec::new(),
            org_id: respond::uuid(),
            latency: Duration::ZERO,
            rate_limit: None,
            other_organizations: Vec::new(),
            sts_pools: Vec::new(),
            sts_token_lifetime: Duration::from_secs(sts::MAX_LIFETIME_SECS),
        }
    }
}

/// A token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Refill rate in requests per second.
    pub per_second: f64,
    /// Bucket size: how many requests may come back to back.
    pub burst: u32,
}

/// How many `/iam/v2` requests the mock saw, for assertions and benchmarks. Operation counters
/// count every request addressed to the operation whatever its outcome; `rate_limited`,
/// `unauthenticated` and `faults_injected` count refusals (`rate_limited` includes injected
/// 429s); `total` counts every API request, unknown paths included. `/_mock/` calls are not
/// counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallCounts {
    /// `GET /iam/v2/invitations`.
    pub list: u64,
    /// `POST /iam/v2/invitations`.
    pub create: u64,
    /// `GET /iam/v2/invitations/{id}`.
    pub get: u64,
    /// `DELETE /iam/v2/invitations/{id}`.
    pub delete: u64,
    /// `GET /iam/v2/users/{id}`.
    pub get_user: u64,
    /// `DELETE /iam/v2/users/{id}`.
    pub delete_user: u64,
    /// Answered 429.
    pub rate_limited: u64,
    /// Answered 401.
    pub unauthenticated: u64,
    /// Hit by an injected fault.
    pub faults_injected: u64,
    /// Every API request.
    pub total: u64,
}

/// A running mock. Dropping it stops the server abruptly; [`MockServer::shutdown`] lets
/// in-flight requests finish.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    base_url: String,
    handle: MockHandle,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// `http://ip:port`, with a loopback address when bound to the unspecified one, so the URL is
/// usable by a local client.
fn base_url_for(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// The whole application: API and control routes behind the gate and the common headers.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(api::routes())
        .merge(control::routes())
        .merge(role_binding_api::routes())
        .merge(role_binding_control::routes())
        .merge(sts_api::routes())
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            gate::api_gate,
        ))
        .layer(axum::middleware::from_fn(gate::common_headers))
        .with_state(shared)
}

/// Binds `addr` (port 0 picks a free port) and serves the mock until shut down.
pub async fn start(addr: SocketAddr, config: MockConfig) -> Result<MockServer, MockError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MockError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| MockError::Bind { addr, source })?;
    let base_url = base_url_for(local);
    let console_admin = auth::principal_id("console", &config.org_id);
    let shared = Arc::new(Shared {
        org: Mutex::new(Org::new()),
        org_id: config.org_id,
        others: config
            .other_organizations
            .iter()
            .map(|o| (o.org_id.clone(), Mutex::new(Org::new())))
            .collect(),
        base_url: base_url.clone(),
        credentials: std::sync::Mutex::new(
            Credentials::new(&config.api_keys, &config.tokens)
                .with_other_organizations(&config.other_organizations),
        ),
        console_admin,
        latency: Mutex::new(config.latency),
        limiter: RateLimiter::new(config.rate_limit),
        faults: FaultQueue::default(),
        calls: Mutex::new(CallCounts::default()),
        role_binding_calls: Mutex::new(RoleBindingCalls::default()),
        sts: Mutex::new(sts::StsState::new(
            &config.sts_pools,
            config.sts_token_lifetime,
        )),
    });
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(server::serve(listener, router(shared.clone()), rx));
    tracing::info!(%local, "confluent mock listening");
    Ok(MockServer {
        addr: local,
        base_url,
        handle: MockHandle { shared },
        shutdown: tx,
        task: Some(task),
    })
}

impl MockServer {
    /// The bound address (the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the client's base URL.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The controls of this mock.
    pub fn state(&self) -> MockHandle {
        self.handle.clone()
    }

    /// Stops accepting, lets in-flight requests finish (a few seconds at most), then stops.
    pub async fn shutdown(mut self) {
        // The receiver may already be gone if the server task ended; nothing to tell then.
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(server::GRACE + Duration::from_secs(1), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
