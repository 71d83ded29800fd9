//! The Confluent Cloud IAM v2 client.
//!
//! One [`Client`] per credential: it owns that credential's rate limiter, and shares the HTTP
//! connection pool with every other client built from the same [`reqwest::Client`]. Idempotent
//! calls (GET, list, DELETE) retry transient failures; a POST never does, because the API has no
//! idempotency key: its caller must look the email up before creating again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, TryStreamExt};
use reqwest::header::AUTHORIZATION;
use reqwest::{Method, Url};
use tracing::debug;

use super::auth::Credentials;
use super::error::{Error, bounded};
use super::model::{CreateInvitation, InvitationList, RemoteInvitation, User};
use super::ratelimit::{Budget, Limiter, Observation};
use super::retry::RetryPolicy;

mod rate_headers;
mod sts_token;

use rate_headers::{header_str, observation, server_wait};

/// `page_size` used for every list: the API's maximum, so a sweep costs the fewest calls.
pub const PAGE_SIZE: u32 = 100;
/// A list that claims more pages than this is treated as broken (an endless `next` loop).
pub const MAX_PAGES: usize = 2_000;
/// Response bodies larger than this are refused rather than buffered.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The calls the client makes, for metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    ListInvitations,
    CreateInvitation,
    GetInvitation,
    DeleteInvitation,
    GetUser,
    DeleteUser,
    ListRoleBindings,
    CreateRoleBinding,
    GetRoleBinding,
    DeleteRoleBinding,
    /// `POST /sts/v1/oauth2/token`: a subject JWT for an access token (keyless credentials).
    StsExchange,
}

impl Operation {
    /// A stable snake_case name, used as a metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ListInvitations => "list_invitations",
            Self::CreateInvitation => "create_invitation",
            Self::GetInvitation => "get_invitation",
            Self::DeleteInvitation => "delete_invitation",
            Self::GetUser => "get_user",
            Self::DeleteUser => "delete_user",
            Self::ListRoleBindings => "list_role_bindings",
            Self::CreateRoleBinding => "create_role_binding",
            Self::GetRoleBinding => "get_role_binding",
            Self::DeleteRoleBinding => "delete_role_binding",
            Self::StsExchange => "sts_exchange",
        }
    }
}

/// Receives one call per HTTP exchange, so the operator can count and time Confluent calls
/// without the client knowing about Prometheus.
pub trait Observer: Send + Sync {
    /// `status` is `None` when no response arrived.
    fn on_response(&self, operation: Operation, status: Option<u16>, elapsed: Duration);

    /// A keyless credential's exchange ended: `result` is [`StsResult::as_str`]'s.
    fn on_sts_exchange(&self, result: StsResult) {
        let _ = result;
    }

    /// The keyless credential `identity` holds a token with `remaining` to live (told after
    /// each exchange and each use, so the gauge follows the token of the moment).
    fn on_sts_token(&self, identity: &str, remaining: Duration) {
        let _ = (identity, remaining);
    }
}

/// How one STS exchange ended, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StsResult {
    /// A token was issued.
    Issued,
    /// The STS refused the subject or the pool (400/401/403): the credential does not work.
    Refused,
    /// 429: the credential's limiter waits as asked.
    RateLimited,
    /// 5xx, no answer, or an answer that is not a token: worth another try.
    Failed,
}

impl StsResult {
    /// A stable snake_case name, used as a metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "issued",
            Self::Refused => "refused",
            Self::RateLimited => "rate_limited",
            Self::Failed => "failed",
        }
    }
}

/// A request body and its content type.
pub(super) enum Body {
    Json(Vec<u8>),
    Form(Vec<u8>),
}

/// Filters of `GET /iam/v2/invitations`; all exact matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub email: Option<String>,
    pub status: Option<String>,
    pub user: Option<String>,
    pub creator: Option<String>,
}

impl ListFilter {
    /// Invitations for one email.
    pub fn email(email: impl Into<String>) -> Self {
        Self {
            email: Some(email.into()),
            ..Self::default()
        }
    }
}

/// Settings shared by all clients of one process.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// Base URL, e.g. `https://api.confluent.cloud`.
    pub endpoint: Url,
    /// Retries of idempotent calls.
    pub retry: RetryPolicy,
    /// The request budget of each credential (None: only the server's 429s limit us).
    pub budget: Option<Budget>,
}

impl ClientSettings {
    /// Settings for `endpoint` with default retries and no client-side budget.
    pub fn new(endpoint: &str) -> Result<Self, Error> {
        let endpoint = Url::parse(endpoint)
            .map_err(|e| Error::Config(format!("endpoint {endpoint:?}: {e}")))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.cannot_be_a_base() {
            return Err(Error::Config(format!(
                "endpoint {endpoint} must be an http(s) base URL"
            )));
        }
        Ok(Self {
            endpoint,
            retry: RetryPolicy::default(),
            budget: None,
        })
    }
}

/// Builds the process-wide HTTP client: pooled connections, a request timeout, and a
/// `User-Agent` naming the operator so Confluent support can tell its calls apart.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .user_agent(concat!(
            env!("CARGO_PKG_NAME"),
            "/",
            env!("CARGO_PKG_VERSION")
        ))
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Config(format!("HTTP client: {e}")))
}

/// A client for one credential. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// Tells this client's credential apart from every other one the process built, even with
    /// the same key id (a Secret whose API secret was fixed or rotated is a new credential).
    key: u64,
    http: reqwest::Client,
    settings: ClientSettings,
    credentials: Credentials,
    limiter: Limiter,
    observer: Option<Arc<dyn Observer>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.settings.endpoint.as_str())
            .field("credentials", &self.inner.credentials)
            .finish()
    }
}

/// A successful response: status, body, request id.
pub(super) struct Reply {
    pub(super) body: Vec<u8>,
    pub(super) request_id: Option<String>,
}

impl Client {
    /// A client for `credentials`, sharing `http`'s connection pool.
    pub fn new(
        http: reqwest::Client,
        settings: ClientSettings,
        credentials: Credentials,
        observer: Option<Arc<dyn Observer>>,
    ) -> Self {
        static NEXT_KEY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let limiter = Limiter::new(settings.budget);
        Self {
            inner: Arc::new(Inner {
                key: NEXT_KEY.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                http,
                settings,
                credentials,
                limiter,
                observer,
            }),
        }
    }

    /// The credential's non-secret identity.
    pub fn identity(&self) -> String {
        self.inner.credentials.identity()
    }

    /// A key unique to this client among all built by the process: caches of what a credential
    /// sees (snapshots) are kept per client, so a changed secret never reads a cache its
    /// predecessor filled. Not derived from the secret.
    pub fn key(&self) -> u64 {
        self.inner.key
    }

    /// Whether this client was built from exactly `credentials` (to keep using it when a
    /// Secret changed in something else than its credentials).
    pub fn uses(&self, credentials: &Credentials) -> bool {
        self.inner.credentials.same_as(credentials)
    }

    pub(super) fn url(&self, path: &str) -> Result<Url, Error> {
        self.inner
            .settings
            .endpoint
            .join(path)
            .map_err(|e| Error::Config(format!("URL for {path}: {e}")))
    }

    /// Lists every invitation matching `filter`, following `next` to the end.
    pub async fn list_invitations(
        &self,
        filter: &ListFilter,
    ) -> Result<Vec<RemoteInvitation>, Error> {
        let mut all = Vec::new();
        let mut pages = std::pin::pin!(self.list_pages(filter));
        while let Some(page) = pages.try_next().await? {
            all.extend(page);
        }
        Ok(all)
    }

    /// The same list, one page at a time, so a caller holds no more than a page.
    pub fn list_pages(
        &self,
        filter: &ListFilter,
    ) -> impl Stream<Item = Result<Vec<RemoteInvitation>, Error>> + Send + 'static {
        self.pages::<InvitationList>(Operation::ListInvitations, self.first_page_url(filter))
    }

    /// Every page of a list from `first` on, one at a time: `next` links are followed only on
    /// the API's own origin, and a link that repeats or a list longer than [`MAX_PAGES`] pages is
    /// refused rather than followed forever.
    pub(super) fn pages<L: ListPage>(
        &self,
        op: Operation,
        first: Result<Url, Error>,
    ) -> impl Stream<Item = Result<Vec<L::Item>, Error>> + Send + 'static {
        let client = self.clone();
        futures::stream::try_unfold(
            (first.map(Some), Vec::<Url>::new()),
            move |(next, mut seen)| {
                let client = client.clone();
                async move {
                    let url = match next? {
                        Some(url) => url,
                        None => return Ok(None),
                    };
                    if seen.len() >= MAX_PAGES || seen.contains(&url) {
                        return Err(Error::Decode {
                            operation: op.as_str(),
                            message: format!(
                                "pagination does not end (page {} repeats or exceeds {MAX_PAGES})",
                                seen.len() + 1
                            ),
                            request_id: None,
                        });
                    }
                    let reply = client.idempotent(op, Method::GET, &url).await?;
                    let (items, next) = decode::<L>(op, &reply)?.into_parts();
                    let next = match next.as_deref().filter(|n| !n.is_empty()) {
                        Some(n) => Some(client.same_origin(op, n, &reply)?),
                        None => None,
                    };
                    seen.push(url);
                    Ok(Some((items, (Ok(next), seen))))
                }
            },
        )
    }

    fn first_page_url(&self, filter: &ListFilter) -> Result<Url, Error> {
        let mut url = self.url("/iam/v2/invitations")?;
        {
            let mut q = url.query_pairs_mut();
            for (name, value) in [
                ("email", &filter.email),
                ("status", &filter.status),
                ("user", &filter.user),
                ("creator", &filter.creator),
            ] {
                if let Some(v) = value {
                    q.append_pair(name, v);
                }
            }
            q.append_pair("page_size", &PAGE_SIZE.to_string());
        }
        Ok(url)
    }

    /// A `next` link must point back at the configured endpoint: following a link elsewhere would
    /// hand our credentials to whoever wrote it.
    pub(super) fn same_origin(
        &self,
        op: Operation,
        next: &str,
        reply: &Reply,
    ) -> Result<Url, Error> {
        let base = &self.inner.settings.endpoint;
        let url = base.join(next).map_err(|e| Error::Decode {
            operation: op.as_str(),
            message: format!("next link {:?}: {e}", bounded(next)),
            request_id: reply.request_id.clone(),
        })?;
        if url.origin() != base.origin() {
            return Err(Error::Decode {
                operation: op.as_str(),
                message: format!(
                    "next link leaves {}: refused",
                    base.origin().ascii_serialization()
                ),
                request_id: reply.request_id.clone(),
            });
        }
        Ok(url)
    }

    /// Creates an invitation. Never retried: on a lost response the caller must look the email
    /// up before creating again (a retry would meet a 409, or worse).
    pub async fn create_invitation(
        &self,
        request: &CreateInvitation,
    ) -> Result<RemoteInvitation, Error> {
        let url = self.url("/iam/v2/invitations")?;
        let body = serde_json::to_vec(request)
            .map_err(|e| Error::Config(format!("encoding the create request: {e}")))?;
        let reply = self
            .send(Operation::CreateInvitation, Method::POST, &url, Some(body))
            .await?;
        decode(Operation::CreateInvitation, &reply)
    }

    /// Reads one invitation by id.
    pub async fn get_invitation(&self, id: &str) -> Result<RemoteInvitation, Error> {
        let url = self.url(&format!("/iam/v2/invitations/{}", path_segment(id)?))?;
        let reply = self
            .idempotent(Operation::GetInvitation, Method::GET, &url)
            .await
            .map_err(forbidden_read_is_not_found)?;
        decode(Operation::GetInvitation, &reply)
    }

    /// Deletes an invitation: a pending one is deactivated; an accepted one answers
    /// [`Error::AlreadyAccepted`]; a missing one [`Error::NotFound`].
    pub async fn delete_invitation(&self, id: &str) -> Result<(), Error> {
        let url = self.url(&format!("/iam/v2/invitations/{}", path_segment(id)?))?;
        self.idempotent(Operation::DeleteInvitation, Method::DELETE, &url)
            .await
            .map(drop)
    }

    /// Reads one user by id.
    pub async fn get_user(&self, id: &str) -> Result<User, Error> {
        let url = self.url(&format!("/iam/v2/users/{}", path_segment(id)?))?;
        let reply = self
            .idempotent(Operation::GetUser, Method::GET, &url)
            .await
            .map_err(forbidden_read_is_not_found)?;
        decode(Operation::GetUser, &reply)
    }

    /// Deletes a user, with their API keys and role bindings: destructive, only on opt-in.
    pub async fn delete_user(&self, id: &str) -> Result<(), Error> {
        let url = self.url(&format!("/iam/v2/users/{}", path_segment(id)?))?;
        self.idempotent(Operation::DeleteUser, Method::DELETE, &url)
            .await
            .map(drop)
    }

    /// Sends an idempotent request, retrying transient failures per the retry policy.
    pub(super) async fn idempotent(
        &self,
        op: Operation,
        method: Method,
        url: &Url,
    ) -> Result<Reply, Error> {
        let policy = self.inner.settings.retry;
        let mut attempt = 0;
        loop {
            match self.send(op, method.clone(), url, None).await {
                Err(e) if e.is_transient() && attempt + 1 < policy.max_attempts => {
                    let wait = policy.backoff.delay(attempt, e.retry_after());
                    if wait > policy.max_inline_wait {
                        return Err(e);
                    }
                    debug!(operation = op.as_str(), attempt, ?wait, error = %e, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One call with this client's credential. A keyless credential's token is exchanged first
    /// when there is none (or it is due for renewal); a 401 met with it drops the token and the
    /// call is made once more with a fresh one (a 401 executed nothing, so a POST may be
    /// repeated too); a second 401 is the caller's [`Error::Unauthenticated`].
    pub(super) async fn send(
        &self,
        op: Operation,
        method: Method,
        url: &Url,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, Error> {
        let Credentials::Sts(sts) = &self.inner.credentials else {
            let authorization = self.inner.credentials.authorization().await?;
            return self
                .send_once(op, method, url, body.map(Body::Json), Some(authorization))
                .await;
        };
        let (authorization, generation) = self.sts_authorization(sts).await?;
        let first = self
            .send_once(
                op,
                method.clone(),
                url,
                body.clone().map(Body::Json),
                Some(authorization),
            )
            .await;
        match first {
            Err(Error::Unauthenticated(_)) => {
                debug!(
                    operation = op.as_str(),
                    "401 with an STS token: exchanging again"
                );
                sts.invalidate(generation).await;
                let (authorization, _) = self.sts_authorization(sts).await?;
                self.send_once(op, method, url, body.map(Body::Json), Some(authorization))
                    .await
            }
            other => other,
        }
    }

    /// One HTTP exchange, through the credential's limiter.
    pub(super) async fn send_once(
        &self,
        op: Operation,
        method: Method,
        url: &Url,
        body: Option<Body>,
        authorization: Option<reqwest::header::HeaderValue>,
    ) -> Result<Reply, Error> {
        let inner = &self.inner;
        let permit = inner
            .limiter
            .acquire(inner.settings.retry.max_inline_wait)
            .await
            .map_err(|wait| Error::RateLimited {
                retry_after: wait,
                request_id: None,
            })?;
        let mut request = inner.http.request(method, url.clone());
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        match body {
            Some(Body::Json(body)) => {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body);
            }
            Some(Body::Form(body)) => {
                request = request
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body);
            }
            None => {}
        }
        let started = Instant::now();
        let result = request.send().await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                permit.observe(Observation::Lost);
                self.observe(op, None, started);
                return Err(Error::Network {
                    operation: op.as_str(),
                    message: describe(&e),
                });
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        // The answer's head is what the server's pace shows in: the body's transfer is ours.
        permit.observe(observation(&headers, status, started.elapsed()));
        let request_id = header_str(&headers, "x-request-id").map(bounded);
        let body = read_body(response, op).await;
        self.observe(op, Some(status), started);
        let body = body.map_err(|message| Error::Network {
            operation: op.as_str(),
            message,
        })?;
        debug!(
            operation = op.as_str(),
            status,
            request_id = request_id.as_deref(),
            "confluent call"
        );
        if (200..300).contains(&status) {
            Ok(Reply { body, request_id })
        } else {
            let retry_after = server_wait(&headers);
            Err(Error::from_status(status, &body, request_id, retry_after))
        }
    }

    fn observe(&self, op: Operation, status: Option<u16>, started: Instant) {
        if let Some(o) = &self.inner.observer {
            o.on_response(op, status, started.elapsed());
        }
    }
}

/// A 403 on a read by id that does not blame the key reads as "not found" (the Terraform
/// provider's rule). Deletes keep their 403: treating it as success could orphan an invitation.
fn forbidden_read_is_not_found(e: Error) -> Error {
    match e {
        Error::Forbidden(r) => Error::NotFound(r),
        other => other,
    }
}

/// Ids become one path segment; anything that could change the path is refused.
pub(super) fn path_segment(id: &str) -> Result<&str, Error> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(id)
    } else {
        Err(Error::Config(format!(
            "not a valid Confluent id: {:?}",
            bounded(id)
        )))
    }
}

/// A page of a list as the API returns it: its items and the link to the next page.
pub(super) trait ListPage: serde::de::DeserializeOwned {
    type Item: Send + 'static;
    fn into_parts(self) -> (Vec<Self::Item>, Option<String>);
}

impl ListPage for InvitationList {
    type Item = RemoteInvitation;
    fn into_parts(self) -> (Vec<RemoteInvitation>, Option<String>) {
        (self.data, self.metadata.next)
    }
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(
    op: Operation,
    reply: &Reply,
) -> Result<T, Error> {
    let malformed = |message: String| Error::Decode {
        operation: op.as_str(),
        message,
        request_id: reply.request_id.clone(),
    };
    // serde's derived structs also read a JSON array (fields by position, defaults for the rest):
    // the API answers objects only, and `[]` must not read as "no invitations".
    if reply.body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(malformed("expected a JSON object, got an array".into()));
    }
    serde_json::from_slice(&reply.body).map_err(|e| malformed(e.to_string()))
}

async fn read_body(mut response: reqwest::Response, op: Operation) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!(
                "{} response body exceeds {MAX_BODY_BYTES} bytes",
                op.as_str()
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A reqwest error with its causes ("error sending request: connection closed before message
/// completed"), which the top-level message alone does not say.
fn describe(e: &reqwest::Error) -> String {
    let mut message = if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.without_url_ref().to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        match self.url() {
            Some(url) => self.to_string().replace(&format!(" ({url})"), ""),
            None => self.to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
