//! Confluent answering badly: the real `confluent_client::Client` against a tiny raw HTTP server that
//! answers canned bytes per case (malformed JSON, HTML, gigantic or endless bodies, pagination
//! loops, links and redirects to another origin, absurd `Retry-After`, dropped connections,
//! hostile ids...). Every case must end in the documented `Error` variant with a clear message,
//! within a bounded time, without a wrong remote call and without a secret in the error.
//!
//! The cases are a table run by one test (`confluent_answering_badly`), each under a deadline so
//! that a wedged client fails the suite instead of hanging it. The separate tests named after
//! a behaviour (arrays are not objects, server text is bounded) guard fixes of bugs this suite
//! found.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use confluent_client::client::{MAX_BODY_BYTES, MAX_PAGES};
use confluent_client::model::{CreateInvitation, InviteStatus, RemoteInvitation};
use confluent_client::role_bindings::{RemoteRoleBinding, RoleBindingFilter};
use confluent_client::{Client, ClientSettings, Credentials, Error, ListFilter, http_client};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const KEY: &str = "hostile-key";
const SECRET: &str = "hostile-secret-3b9f-never-in-an-error";
/// Request timeout of the clients under test.
const TIMEOUT: Duration = Duration::from_millis(600);
/// Request timeout of the clients reading gigantic bodies (so the size limit answers first).
const BIG: Duration = Duration::from_secs(20);
/// What a machine shared with other tests may add to a timing.
const SLACK: Duration = Duration::from_millis(2_500);
/// A case taking longer than this is wedged.
const CASE_DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// The raw server

/// One request as the raw server read it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    authorization: Option<String>,
}

/// What the raw server does with one request.
enum Reply {
    /// Write these bytes, then close.
    Bytes(Vec<u8>),
    /// Write `head`, then `chunk` again and again until the peer goes away or `limit` bytes.
    Endless {
        head: Vec<u8>,
        chunk: Vec<u8>,
        limit: usize,
    },
    /// Write `head`, then `body` one byte every `every`.
    Trickle {
        head: Vec<u8>,
        body: Vec<u8>,
        every: Duration,
    },
    /// Never answer (the connection stays open until the test ends).
    Hang,
}

type Handler = Arc<dyn Fn(usize, &Seen) -> Reply + Send + Sync>;

/// A server on 127.0.0.1:0 answering every request with its handler, counting connections and
/// recording requests.
struct Raw {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Raw {
    async fn start<R: Into<Reply>>(
        handler: impl Fn(usize, &Seen) -> R + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let handler: Handler = Arc::new(move |i, seen| handler(i, seen).into());
        let task = tokio::spawn({
            let seen = seen.clone();
            let connections = connections.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve(stream, handler.clone(), seen.clone()));
                }
            }
        });
        Self {
            addr,
            seen,
            connections,
            task,
        }
    }

    /// A server that answers every request with the same bytes.
    async fn canned(bytes: Vec<u8>) -> Self {
        Self::start(move |_, _| bytes.clone()).await
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: TcpStream, handler: Handler, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default().to_owned();
    let mut authorization = None;
    let mut content_length = 0usize;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "authorization" => authorization = Some(value.trim().to_owned()),
                "content-length" => content_length = value.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    // read (and drop) a request body, so the client is not reset while still sending
    let mut have = buf.len() - head_end;
    while have < content_length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => have += n,
        }
    }
    let request = Seen {
        method,
        target,
        authorization,
    };
    let index = {
        let mut seen = seen.lock().unwrap();
        seen.push(request.clone());
        seen.len() - 1
    };
    match handler(index, &request) {
        Reply::Bytes(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::Endless { head, chunk, limit } => {
            if stream.write_all(&head).await.is_err() {
                return;
            }
            let mut sent = 0;
            while sent < limit {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
                sent += chunk.len();
            }
        }
        Reply::Trickle { head, body, every } => {
            if stream.write_all(&head).await.is_err() {
                return;
            }
            for b in body {
                tokio::time::sleep(every).await;
                if stream.write_all(&[b]).await.is_err() {
                    return;
                }
            }
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
    }
}

/// An HTTP/1.1 response with `Content-Length` and `Connection: close`.
fn http(status: u16, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> Vec<u8> {
    let body = body.as_ref();
    let mut out = format!(
        "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn json(status: u16, body: impl AsRef<[u8]>) -> Vec<u8> {
    http(status, &[JSON, ("X-Request-Id", "req-hostile")], body)
}

/// The `next` member of a page's `metadata`: this link, or the empty string of a last page.
fn next_field(next: Option<&str>) -> String {
    match next {
        Some(n) => format!(r#""next": {}"#, serde_json::Value::from(n)),
        None => r#""next": """#.to_owned(),
    }
}

/// A list page with one invitation and this `next` link.
fn page(n: usize, next: Option<&str>) -> Vec<u8> {
    let next = next_field(next);
    json(
        200,
        format!(
            r#"{{"api_version": "iam/v2", "kind": "InvitationList",
                "metadata": {{"total_size": 1000000, {next}}},
                "data": [{{"id": "i-{n}", "email": "p{n}@example.com", "status": "INVITE_STATUS_SENT"}}]}}"#
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// The client under test

/// A client with `attempts` tries per idempotent call (4 is the operator's default).
fn client(base: &str, attempts: u32) -> Client {
    client_with(base, attempts, TIMEOUT)
}

/// The same with another request timeout.
fn client_with(base: &str, attempts: u32, timeout: Duration) -> Client {
    let mut settings = ClientSettings::new(base).expect("endpoint");
    settings.retry.max_attempts = attempts;
    Client::new(
        http_client(timeout).expect("HTTP client"),
        settings,
        Credentials::api_key(KEY, SECRET),
        None,
    )
}

fn basic_header() -> String {
    format!(
        "Basic {}",
        BASE64_STANDARD.encode(format!("{KEY}:{SECRET}"))
    )
}

fn create_request() -> CreateInvitation {
    CreateInvitation {
        email: "jane@example.com".into(),
        auth_type: None,
    }
}

// The calls most cases make, each on a fresh client of `s` with the default 4 attempts.

/// Every invitation (no filter).
async fn list_all(s: &Raw) -> Result<Vec<RemoteInvitation>, Error> {
    client(&s.base(), 4)
        .list_invitations(&ListFilter::default())
        .await
}

/// The look-up by email the operator makes before a create.
async fn list_by_email(s: &Raw) -> Result<Vec<RemoteInvitation>, Error> {
    client(&s.base(), 4)
        .list_invitations(&ListFilter::email("a@example.com"))
        .await
}

/// `i-1`, a valid id.
async fn get_one(s: &Raw) -> Result<RemoteInvitation, Error> {
    client(&s.base(), 4).get_invitation("i-1").await
}

/// An invitation for jane@example.com.
async fn create_one(s: &Raw) -> Result<RemoteInvitation, Error> {
    client(&s.base(), 4)
        .create_invitation(&create_request())
        .await
}

type Checked = Result<String, String>;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

/// The error's words must name neither the secret nor the header made from it.
fn no_secret(e: &Error) -> Result<(), String> {
    let header = basic_header();
    let b64 = header.trim_start_matches("Basic ");
    for text in [e.to_string(), format!("{e:?}"), e.detail()] {
        ensure!(
            !text.contains(SECRET) && !text.contains(b64),
            "a credential reached an error: {text}"
        );
    }
    Ok(())
}

fn decode_error<T: std::fmt::Debug>(
    r: Result<T, Error>,
    operation: &str,
    words: &str,
) -> Result<Error, String> {
    match r {
        Err(e @ Error::Decode { .. }) => {
            let Error::Decode {
                operation: op,
                message,
                ..
            } = &e
            else {
                unreachable!()
            };
            ensure!(*op == operation, "operation {op}, wanted {operation}");
            ensure!(
                message.contains(words),
                "Decode message {message:?} lacks {words:?}"
            );
            ensure!(e.reason() == "MalformedResponse", "reason {}", e.reason());
            ensure!(!e.is_transient(), "a malformed answer is not retried");
            no_secret(&e)?;
            Ok(e)
        }
        other => Err(format!("wanted Decode ({words}), got {other:?}")),
    }
}

fn network_error<T: std::fmt::Debug>(r: Result<T, Error>, words: &str) -> Result<Error, String> {
    match r {
        Err(e @ Error::Network { .. }) => {
            ensure!(
                e.to_string().contains(words),
                "Network error {e} lacks {words:?}"
            );
            ensure!(e.reason() == "NetworkError", "reason {}", e.reason());
            no_secret(&e)?;
            Ok(e)
        }
        other => Err(format!("wanted Network ({words}), got {other:?}")),
    }
}

fn config_error<T: std::fmt::Debug>(r: Result<T, Error>, words: &str) -> Result<Error, String> {
    match r {
        Err(e @ Error::Config(_)) => {
            ensure!(e.to_string().contains(words), "{e} lacks {words:?}");
            Ok(e)
        }
        other => Err(format!("wanted Config ({words}), got {other:?}")),
    }
}

fn rate_limited<T: std::fmt::Debug>(r: Result<T, Error>, wait: Duration) -> Result<(), String> {
    match r {
        Err(
            e @ Error::RateLimited {
                retry_after: got, ..
            },
        ) => {
            ensure!(got == wait, "retry_after {got:?}, wanted {wait:?}");
            ensure!(got <= Duration::from_secs(3600), "unbounded wait {got:?}");
            ensure!(e.is_transient(), "429 is transient");
            no_secret(&e)
        }
        other => Err(format!("wanted RateLimited({wait:?}), got {other:?}")),
    }
}

fn within(started: Instant, bound: Duration) -> Result<(), String> {
    let took = started.elapsed();
    ensure!(took <= bound, "took {took:?}, bound {bound:?}");
    Ok(())
}

fn requests(server: &Raw, wanted: usize) -> Result<(), String> {
    let got = server.count();
    ensure!(
        got == wanted,
        "server saw {got} requests, wanted {wanted}: {:?}",
        server.requests()
    );
    Ok(())
}

/// What a default client (4 attempts) may spend retrying: the timeouts, the backoff ceilings
/// (200 ms, 400 ms, 800 ms) and slack.
fn retry_bound(per_attempt: Duration) -> Duration {
    per_attempt * 4 + Duration::from_millis(1_400) + SLACK
}

// ---------------------------------------------------------------------------------------------
// The cases

type CaseFuture = Pin<Box<dyn Future<Output = Checked> + Send>>;

fn case<F>(name: &'static str, f: F) -> (&'static str, CaseFuture)
where
    F: Future<Output = Checked> + Send + 'static,
{
    (name, Box::pin(f))
}

fn cases() -> Vec<(&'static str, CaseFuture)> {
    vec![
        case("malformed JSON", async {
            let s = Raw::canned(json(200, r#"{"data": [{"id": "i-1", "#)).await;
            decode_error(list_by_email(&s).await, "list_invitations", "EOF")?;
            requests(&s, 1)?;
            Ok("Decode, not retried".into())
        }),
        case("HTML with a text/html content type", async {
            let s = Raw::canned(http(
                200,
                &[("Content-Type", "text/html")],
                "<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>",
            ))
            .await;
            let e = decode_error(get_one(&s).await, "get_invitation", "expected value")?;
            ensure!(
                e.request_id().is_none(),
                "no request id was sent: {:?}",
                e.request_id()
            );
            Ok(e.to_string())
        }),
        case("a 200 whose body is a JSON string", async {
            let s = Raw::canned(json(200, r#""ok""#)).await;
            let e = decode_error(get_one(&s).await, "get_invitation", "invalid type: string")?;
            ensure!(
                e.request_id() == Some("req-hostile"),
                "request id kept for support"
            );
            Ok(e.to_string())
        }),
        case("a 200 whose body is null", async {
            let s = Raw::canned(json(200, "null")).await;
            decode_error(
                create_one(&s).await,
                "create_invitation",
                "invalid type: null",
            )
            .map(|e| e.to_string())
        }),
        case("a 200 whose body is a number", async {
            let s = Raw::canned(json(200, "42")).await;
            decode_error(
                list_all(&s).await,
                "list_invitations",
                "invalid type: integer",
            )
            .map(|e| e.to_string())
        }),
        case("an empty 200 body", async {
            let s = Raw::canned(json(200, "")).await;
            decode_error(get_one(&s).await, "get_invitation", "EOF").map(|e| e.to_string())
        }),
        case(
            "a list page without data (proto-JSON omits empty lists)",
            async {
                let s =
                    Raw::canned(json(200, r#"{"kind": "InvitationList", "metadata": {}}"#)).await;
                let got = list_by_email(&s)
                    .await
                    .map_err(|e| format!("an empty page is a valid answer: {e}"))?;
                ensure!(got.is_empty(), "{got:?}");
                Ok("empty list".into())
            },
        ),
        case("a list whose data is null", async {
            let s = Raw::canned(json(200, r#"{"data": null, "metadata": null}"#)).await;
            decode_error(list_all(&s).await, "list_invitations", "invalid type: null")
                .map(|e| e.to_string())
        }),
        case("an invitation with null everywhere", async {
            let s = Raw::canned(json(
                200,
                r#"{"api_version": null, "kind": null, "id": null, "metadata": null,
                    "email": null, "auth_type": null, "status": null, "accepted_at": null,
                    "expires_at": null, "user": null, "creator": null}"#,
            ))
            .await;
            let inv = get_one(&s)
                .await
                .map_err(|e| format!("nulls are absent fields: {e}"))?;
            ensure!(
                inv.id.is_none() && inv.status.is_none() && inv.user_id().is_none(),
                "{inv:?}"
            );
            Ok("every field absent".into())
        }),
        case("unknown status values and auth types are kept", async {
            let s = Raw::canned(json(
                200,
                r#"{"id": "i-1", "email": "a@example.com", "status": "INVITE_STATUS_QUARANTINED",
                    "auth_type": "AUTH_TYPE_PASSKEY", "expires_at": "not a date",
                    "user": {"id": "u-1", "extra": [1, {"x": null}]}, "new_field": {"a": [true]}}"#,
            ))
            .await;
            let inv = get_one(&s)
                .await
                .map_err(|e| format!("unknown values are valid: {e}"))?;
            ensure!(
                inv.status == Some(InviteStatus::Other("INVITE_STATUS_QUARANTINED".into())),
                "{:?}",
                inv.status
            );
            ensure!(
                inv.auth_type.as_deref() == Some("AUTH_TYPE_PASSKEY"),
                "{:?}",
                inv.auth_type
            );
            ensure!(
                inv.expires_at_timestamp().is_none(),
                "a bad date is no date"
            );
            Ok("kept verbatim".into())
        }),
        case("duplicated keys", async {
            let s = Raw::canned(json(
                200,
                r#"{"id": "i-mine", "email": "a@example.com", "id": "i-someone-elses"}"#,
            ))
            .await;
            decode_error(
                client(&s.base(), 4).get_invitation("i-mine").await,
                "get_invitation",
                "duplicate field `id`",
            )
            .map(|e| e.to_string())
        }),
        case("deeply nested junk in a known field", async {
            let depth = 100_000;
            let body = format!(
                r#"{{"id": "i-1", "user": {}{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            let s = Raw::canned(json(200, body)).await;
            decode_error(
                get_one(&s).await,
                "get_invitation",
                "invalid type: sequence",
            )
            .map(|e| e.to_string())
        }),
        case("deeply nested junk in an unknown field", async {
            // unknown fields are skipped without recursion: no stack overflow, the rest is read
            let depth = 200_000;
            let body = format!(
                r#"{{"id": "i-1", "junk": {}0{}, "email": "a@example.com"}}"#,
                "[{\"a\":".repeat(depth),
                "}]".repeat(depth)
            );
            let s = Raw::canned(json(200, body)).await;
            let inv = get_one(&s)
                .await
                .map_err(|e| format!("an unknown field is ignored: {e}"))?;
            ensure!(
                inv.id.as_deref() == Some("i-1") && inv.email.as_deref() == Some("a@example.com"),
                "{inv:?}"
            );
            Ok("skipped, the known fields read".into())
        }),
        case("invalid UTF-8 in a string", async {
            let mut body = br#"{"id": "i-1", "email": "ja"#.to_vec();
            body.extend_from_slice(&[0xff, 0xfe, 0xc3]);
            body.extend_from_slice(br#"ne@example.com"}"#);
            let s = Raw::canned(json(200, body)).await;
            decode_error(get_one(&s).await, "get_invitation", "invalid unicode")
                .map(|e| e.to_string())
        }),
        case("a gigantic page (declared length)", async {
            let s = Raw::start(|_, _| Reply::Endless {
                head: b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1099511627776\r\n\r\n{\"data\": [".to_vec(),
                chunk: br#"{"id": "i-1", "email": "x@example.com"},"#.repeat(1600),
                limit: 64 * 1024 * 1024,
            })
            .await;
            let started = Instant::now();
            let e = network_error(
                client_with(&s.base(), 1, BIG).get_invitation("i-1").await,
                &format!("response body exceeds {MAX_BODY_BYTES} bytes"),
            )?;
            within(started, BIG)?;
            requests(&s, 1)?;
            Ok(e.to_string())
        }),
        case("a gigantic page (streamed, chunked, endless)", async {
            let chunk_body = br#"{"id": "i-1", "email": "x@example.com"},"#.repeat(1600);
            let mut chunk = format!("{:x}\r\n", chunk_body.len()).into_bytes();
            chunk.extend_from_slice(&chunk_body);
            chunk.extend_from_slice(b"\r\n");
            let s = Raw::start(move |_, _| Reply::Endless {
                head: b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
                chunk: chunk.clone(),
                limit: 256 * 1024 * 1024,
            })
            .await;
            let started = Instant::now();
            // the default client: an oversized body counts as a lost answer and is retried,
            // a bounded number of times, each read stopped at the limit
            let e = network_error(
                client_with(&s.base(), 4, BIG)
                    .list_invitations(&ListFilter::email("a@example.com"))
                    .await,
                &format!("exceeds {MAX_BODY_BYTES} bytes"),
            )?;
            within(started, Duration::from_secs(50))?;
            ensure!((1..=4).contains(&s.count()), "{} requests", s.count());
            Ok(format!("{e} after {} requests", s.count()))
        }),
        case("an endless next loop (the same link)", async {
            let s = Raw::start(|i, _| page(i, Some("/iam/v2/invitations?page_token=again"))).await;
            decode_error(
                list_by_email(&s).await,
                "list_invitations",
                "pagination does not end",
            )?;
            // the first page, the linked page once; its repeat is refused before it is sent
            requests(&s, 2)?;
            Ok("refused on the first repeat".into())
        }),
        case("a next cycle across two pages", async {
            let s = Raw::start(|i, req| {
                let next = if req.target.contains("page_token=a") {
                    "/iam/v2/invitations?page_token=b"
                } else {
                    "/iam/v2/invitations?page_token=a"
                };
                page(i, Some(next))
            })
            .await;
            decode_error(list_all(&s).await, "list_invitations", "repeats")?;
            requests(&s, 3)?;
            Ok("refused on the first repeat".into())
        }),
        case("10 000 pages (MAX_PAGES)", async {
            let s = Raw::start(|i, _| {
                page(
                    i,
                    Some(&format!("/iam/v2/invitations?page_token=p{}", i + 1)),
                )
            })
            .await;
            let started = Instant::now();
            let mut pages = std::pin::pin!(client(&s.base(), 4).list_pages(&ListFilter::default()));
            let mut held = 0;
            let mut last = None;
            while let Some(page) = pages.next().await {
                match page {
                    Ok(p) => held += p.len(),
                    Err(e) => {
                        last = Some(e);
                        break;
                    }
                }
            }
            decode_error::<()>(
                Err(last.ok_or("the list ended without an error")?),
                "list_invitations",
                &format!("exceeds {MAX_PAGES}"),
            )?;
            requests(&s, MAX_PAGES)?;
            ensure!(held == MAX_PAGES, "{held} invitations seen");
            Ok(format!(
                "refused after {MAX_PAGES} pages in {:?}",
                started.elapsed()
            ))
        }),
        case("a next link to another origin", async {
            let evil = Raw::canned(page(0, None)).await;
            let link = format!("{}/iam/v2/invitations?page_token=steal", evil.base());
            let s = Raw::canned(page(0, Some(&link))).await;
            decode_error(list_all(&s).await, "list_invitations", "next link leaves")?;
            requests(&s, 1)?;
            ensure!(
                s.requests()[0].authorization.as_deref() == Some(basic_header().as_str()),
                "the real server got the credentials"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            ensure!(
                evil.connections() == 0,
                "the other origin was contacted {} times",
                evil.connections()
            );
            Ok("refused, the other origin never contacted".into())
        }),
        case("a protocol-relative next link to another origin", async {
            let evil = Raw::canned(page(0, None)).await;
            let link = format!("//{}/iam/v2/invitations?page_token=steal", evil.addr);
            let s = Raw::canned(page(0, Some(&link))).await;
            decode_error(list_all(&s).await, "list_invitations", "next link leaves")?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            ensure!(evil.connections() == 0, "the other origin was contacted");
            Ok("refused".into())
        }),
        case(
            "a next link to the same host and port with another scheme",
            async {
                let own = Arc::new(std::sync::OnceLock::<SocketAddr>::new());
                let s = Raw::start({
                    let own = own.clone();
                    move |i, _| {
                        let addr = own.get().copied().expect("address known");
                        page(
                            i,
                            Some(&format!("https://{addr}/iam/v2/invitations?page_token=tls")),
                        )
                    }
                })
                .await;
                own.set(s.addr).expect("set once");
                decode_error(list_all(&s).await, "list_invitations", "next link leaves")?;
                requests(&s, 1)?;
                Ok("refused".into())
            },
        ),
        case("a redirect to another origin", async {
            let evil = Raw::canned(json(200, r#"{"id": "i-1"}"#)).await;
            let location = format!("{}/iam/v2/invitations/i-1", evil.base());
            let s = Raw::canned(http(302, &[("Location", location.as_str())], "")).await;
            let r = get_one(&s).await;
            let e = match r {
                Err(e @ Error::Unexpected(_)) => e,
                other => return Err(format!("wanted Unexpected(302), got {other:?}")),
            };
            ensure!(e.to_string().contains("HTTP 302"), "{e}");
            no_secret(&e)?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            ensure!(evil.connections() == 0, "the redirect was followed");
            Ok(e.to_string())
        }),
        case("a server slower than the request timeout (create)", async {
            let s = Raw::start(|_, _| Reply::Hang).await;
            let started = Instant::now();
            network_error(create_one(&s).await, "timed out")?;
            within(started, TIMEOUT + SLACK)?;
            requests(&s, 1)?;
            Ok(format!("timed out after {:?}", started.elapsed()))
        }),
        case(
            "a server slower than the request timeout (list, retried)",
            async {
                let s = Raw::start(|_, _| Reply::Hang).await;
                let started = Instant::now();
                network_error(list_all(&s).await, "timed out")?;
                within(started, retry_bound(TIMEOUT))?;
                requests(&s, 4)?;
                Ok(format!("4 attempts, gave up after {:?}", started.elapsed()))
            },
        ),
        case("a body trickling slower than the request timeout", async {
            let s = Raw::start(|_, _| Reply::Trickle {
                head: b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n".to_vec(),
                body: vec![b' '; 400],
                every: Duration::from_millis(100),
            })
            .await;
            let started = Instant::now();
            network_error(
                client(&s.base(), 1).get_invitation("i-1").await,
                "timed out",
            )?;
            within(started, TIMEOUT + SLACK)?;
            Ok(format!("timed out after {:?}", started.elapsed()))
        }),
        case("429 with a huge Retry-After", async {
            let s = Raw::canned(http(429, &[("Retry-After", "18446744073709551615")], "")).await;
            let c = client(&s.base(), 4);
            let started = Instant::now();
            // longer than the inline wait: handed back to the caller at once, capped at an hour
            rate_limited(
                c.list_invitations(&ListFilter::default()).await,
                Duration::from_secs(3600),
            )?;
            within(started, Duration::from_secs(1) + SLACK)?;
            // the credential is paused: the next call is refused without being sent
            let next = c.get_invitation("i-1").await;
            ensure!(
                matches!(next, Err(Error::RateLimited { retry_after, .. }) if retry_after > Duration::from_secs(3000)),
                "{next:?}"
            );
            requests(&s, 1)?;
            Ok("1 h, and nothing more sent".into())
        }),
        case("429 with an overflowing Retry-After", async {
            let s = Raw::canned(http(
                429,
                &[("Retry-After", "99999999999999999999999999999")],
                "",
            ))
            .await;
            rate_limited(create_one(&s).await, Duration::from_secs(1))?;
            requests(&s, 1)?;
            Ok("unparsable: the 1 s default".into())
        }),
        case("429 with a negative Retry-After", async {
            let s = Raw::canned(http(429, &[("Retry-After", "-30")], "")).await;
            rate_limited(create_one(&s).await, Duration::from_secs(1))?;
            Ok("the 1 s default".into())
        }),
        case("429 with a non-numeric Retry-After", async {
            let s = Raw::canned(http(
                429,
                &[
                    ("Retry-After", "soon, maybe"),
                    ("X-RateLimit-Reset", "also junk"),
                ],
                "",
            ))
            .await;
            rate_limited(create_one(&s).await, Duration::from_secs(1))?;
            Ok("the 1 s default".into())
        }),
        case("429 with Retry-After: 0 is not a hot loop", async {
            let s = Raw::canned(http(429, &[("Retry-After", "0")], "")).await;
            let started = Instant::now();
            rate_limited(get_one(&s).await, Duration::ZERO)?;
            // three backoffs of at least half their ceilings (100 + 200 + 400 ms)
            let took = started.elapsed();
            ensure!(took >= Duration::from_millis(650), "retried hot: {took:?}");
            // Without rate-limit headers each 429 also halves the credential's pace (AIMD, at
            // most once a second, never below 0.2 calls/s): 1 call/s used, then 0.5, 0.25 and
            // 0.2, so the three retries wait for permits 2 + 4 + 5 s on top of the backoffs.
            within(
                started,
                retry_bound(Duration::ZERO) + Duration::from_secs(2 + 4 + 5),
            )?;
            requests(&s, 4)?;
            Ok(format!("4 attempts over {took:?}"))
        }),
        case("5xx with an HTML body", async {
            let s = Raw::canned(http(
                502,
                &[("Content-Type", "text/html")],
                "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>",
            ))
            .await;
            let started = Instant::now();
            let r = get_one(&s).await;
            let e = match r {
                Err(e @ Error::Server(_)) => e,
                other => return Err(format!("wanted Server, got {other:?}")),
            };
            ensure!(
                e.detail() == "HTTP 502 without an error body [HTTP 502]",
                "{}",
                e.detail()
            );
            ensure!(e.reason() == "ConfluentServerError", "{}", e.reason());
            within(started, retry_bound(Duration::ZERO))?;
            requests(&s, 4)?;
            Ok(e.to_string())
        }),
        case("503 on a create is not retried", async {
            let s = Raw::canned(http(503, &[("Content-Type", "text/html")], "<h1>down</h1>")).await;
            match create_one(&s).await {
                Err(Error::Server(_)) => {}
                other => return Err(format!("wanted Server, got {other:?}")),
            }
            requests(&s, 1)?;
            Ok("one POST only".into())
        }),
        case("401 without a body", async {
            let s = Raw::canned(http(401, &[], "")).await;
            let r = get_one(&s).await;
            let e = match r {
                Err(e @ Error::Unauthenticated(_)) => e,
                other => return Err(format!("wanted Unauthenticated, got {other:?}")),
            };
            ensure!(
                e.to_string() == "unauthenticated: HTTP 401 without an error body [HTTP 401]",
                "{e}"
            );
            ensure!(e.reason() == "CredentialsInvalid", "{}", e.reason());
            no_secret(&e)?;
            requests(&s, 1)?;
            Ok(e.to_string())
        }),
        case("an undocumented status code", async {
            let s = Raw::canned(json(418, r#"{"errors": [{"detail": "I'm a teapot"}]}"#)).await;
            match client(&s.base(), 4).delete_invitation("i-1").await {
                Err(e @ Error::Unexpected(_)) if e.to_string().contains("I'm a teapot") => {
                    requests(&s, 1)?;
                    Ok(e.to_string())
                }
                other => Err(format!("wanted Unexpected, got {other:?}")),
            }
        }),
        case("ids with path characters in responses", async {
            let victim = r#"[{"id": "../users/u-victim", "email": "jane@example.com", "status": "INVITE_STATUS_SENT"},
                             {"id": "i-1/../../users/u-victim", "email": "jane@example.com"},
                             {"id": "i-1?delete=all", "email": "jane@example.com"},
                             {"id": "i-1#frag", "email": "jane@example.com"},
                             {"id": "%2e%2e%2fusers", "email": "jane@example.com"},
                             {"id": "i 1", "email": "jane@example.com"},
                             {"id": "і-1", "email": "jane@example.com"},
                             {"id": "", "email": "jane@example.com"}]"#;
            let s = Raw::canned(json(200, format!(r#"{{"data": {victim}}}"#))).await;
            let c = client(&s.base(), 4);
            let found = c
                .list_invitations(&ListFilter::email("jane@example.com"))
                .await
                .map_err(|e| format!("the list itself is valid: {e}"))?;
            ensure!(found.len() == 8, "{found:?}");
            for inv in &found {
                let id = inv.id.as_deref().unwrap_or_default();
                config_error(c.get_invitation(id).await, "not a valid Confluent id")?;
                config_error(c.delete_invitation(id).await, "not a valid Confluent id")?;
                config_error(c.get_user(id).await, "not a valid Confluent id")?;
                config_error(c.delete_user(id).await, "not a valid Confluent id")?;
            }
            // only the list reached the server: no read, and above all no delete
            requests(&s, 1)?;
            ensure!(s.requests()[0].method == "GET", "{:?}", s.requests());
            Ok("every id refused client-side".into())
        }),
        case("a connection closed mid-body", async {
            let s = Raw::canned(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\": \"i-1\", \"ema"
                    .to_vec(),
            )
            .await;
            network_error(create_one(&s).await, "")?;
            requests(&s, 1)?;
            Ok("Network, the POST not retried".into())
        }),
        case("a connection closed mid-body on a list (retried)", async {
            let s = Raw::canned(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"data\": [{\"id\":"
                    .to_vec(),
            )
            .await;
            let started = Instant::now();
            network_error(list_all(&s).await, "")?;
            within(started, retry_bound(Duration::ZERO))?;
            requests(&s, 4)?;
            Ok("Network after 4 attempts".into())
        }),
        case("a connection closed without an answer", async {
            let s = Raw::canned(Vec::new()).await;
            let e = network_error(client(&s.base(), 1).get_invitation("i-1").await, "")?;
            Ok(e.to_string())
        }),
        case("an answer that is not HTTP", async {
            let s = Raw::canned(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\r\n".to_vec()).await;
            let e = network_error(client(&s.base(), 1).get_invitation("i-1").await, "")?;
            Ok(e.to_string())
        }),
        case("a Failure body with the wrong shapes", async {
            let s = Raw::canned(json(
                400,
                r#"{"errors": {"detail": "not a list"}, "detail": ["neither"]}"#,
            ))
            .await;
            match create_one(&s).await {
                Err(e @ Error::Invalid(_)) => {
                    ensure!(
                        e.detail()
                            == "HTTP 400 without an error body [HTTP 400, request id req-hostile]",
                        "{}",
                        e.detail()
                    );
                    Ok(e.to_string())
                }
                other => Err(format!("wanted Invalid, got {other:?}")),
            }
        }),
    ]
}

/// Handlers answering canned bytes.
impl From<Vec<u8>> for Reply {
    fn from(bytes: Vec<u8>) -> Self {
        Reply::Bytes(bytes)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_answering_badly() {
    let cases = cases();
    let total = cases.len();
    let results: Vec<(&str, Checked, Duration)> = futures::stream::iter(cases)
        .map(|(name, run)| async move {
            let started = Instant::now();
            let result = match tokio::time::timeout(CASE_DEADLINE, tokio::spawn(run)).await {
                Ok(Ok(r)) => r,
                Ok(Err(panic)) => Err(format!("panicked: {panic}")),
                Err(_) => Err(format!("wedged: no result within {CASE_DEADLINE:?}")),
            };
            (name, result, started.elapsed())
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let mut failed = Vec::new();
    for (name, result, took) in &results {
        match result {
            Ok(summary) => println!("ok    {name} ({took:.1?}): {summary}"),
            Err(why) => {
                println!("FAIL  {name} ({took:.1?}): {why}");
                failed.push(*name);
            }
        }
    }
    println!("hostile Confluent cases: {total}, failed: {}", failed.len());
    assert!(total >= 25, "at least 25 cases, have {total}");
    assert!(failed.is_empty(), "failed cases: {failed:?}");
}

/// Runs bug cases like the table does, one by one, failing on the first wrong answer.
async fn run_all(cases: Vec<(&'static str, CaseFuture)>) {
    let mut failed = Vec::new();
    for (name, run) in cases {
        match tokio::time::timeout(CASE_DEADLINE, run).await {
            Ok(Ok(summary)) => println!("ok    {name}: {summary}"),
            Ok(Err(why)) => {
                println!("FAIL  {name}: {why}");
                failed.push(name);
            }
            Err(_) => {
                println!("FAIL  {name}: wedged");
                failed.push(name);
            }
        }
    }
    assert!(failed.is_empty(), "failed cases: {failed:?}");
}

/// serde's derived `Deserialize` also reads a struct from a JSON array (fields by position), and
/// `#[serde(default)]` fills what is missing: a `200 []` to the look-up by email reads as "no
/// invitation", so the operator goes on to POST a create; a `200 [...]` to a create reads as a
/// success without id. The API only ever answers objects.
/// Fix: `decode` in confluent-client/src/client.rs refuses a body whose first non-whitespace byte is not
/// `{` with `Error::Decode { message: "expected a JSON object", .. }`.
#[tokio::test]
async fn json_arrays_are_not_objects() {
    run_all(vec![
        case("a 200 whose body is a JSON array (list)", async {
            let s = Raw::canned(json(200, "[]")).await;
            decode_error(
                list_by_email(&s).await,
                "list_invitations",
                "expected a JSON object",
            )
            .map(|e| e.to_string())
        }),
        case("a 200 whose body is a JSON array (get)", async {
            let s = Raw::canned(json(200, r#"["iam/v2", "Invitation", "i-1"]"#)).await;
            decode_error(
                get_one(&s).await,
                "get_invitation",
                "expected a JSON object",
            )
            .map(|e| e.to_string())
        }),
        case("a 200 whose body is a JSON array (create)", async {
            let s = Raw::canned(json(200, "[]")).await;
            decode_error(
                create_one(&s).await,
                "create_invitation",
                "expected a JSON object",
            )
            .map(|e| e.to_string())
        }),
    ])
    .await;
}

/// The longest error text the operator should ever derive from a server's answer: it goes into
/// the Ready condition, Events (cut at 1 kB there), metrics-free logs.
const MAX_ERROR_TEXT: usize = 4096;

/// Text chosen by the server reaches errors unbounded: a 10 MiB `detail` (under MAX_BODY_BYTES)
/// becomes a 10 MiB condition message, which the API server refuses (request too large), so the
/// status never explains anything, the refusal is retried at the transient pace (a POST each
/// time) and every attempt logs the 10 MiB. Same for `X-Request-Id`, an unparsable `next` link
/// and an id echoed by `path_segment`.
/// Fix: cut server text to 1 KiB on a char boundary where it enters an error: `detail`, `code`,
/// `source` in `ServerRefusal::from_response`, the request id read in `Client::send`, `next` in
/// `Client::same_origin`'s message and `id` in `path_segment`'s message.
#[tokio::test]
async fn server_text_in_errors_is_bounded() {
    fn bounded(e: &Error) -> Checked {
        let text = e.to_string();
        ensure!(
            text.len() <= MAX_ERROR_TEXT && e.detail().len() <= MAX_ERROR_TEXT,
            "{} bytes of error text: {}…",
            text.len(),
            &text[..200.min(text.len())]
        );
        Ok(format!("{} bytes", text.len()))
    }
    run_all(vec![
        case("a 10 MiB detail", async {
            let detail = "x".repeat(10 * 1024 * 1024);
            let s = Raw::canned(json(
                400,
                format!(r#"{{"errors": [{{"code": "invalid", "detail": "{detail}"}}]}}"#),
            ))
            .await;
            match create_one(&s).await {
                Err(e @ Error::Invalid(_)) => bounded(&e),
                other => Err(format!("wanted Invalid, got {:.200}", format!("{other:?}"))),
            }
        }),
        case("a 60 KiB request id", async {
            let id = "r".repeat(60 * 1024);
            let s = Raw::canned(http(404, &[("X-Request-Id", id.as_str())], "")).await;
            match client(&s.base(), 4).get_user("u-1").await {
                Err(e @ Error::NotFound(_)) => bounded(&e),
                other => Err(format!(
                    "wanted NotFound, got {:.200}",
                    format!("{other:?}")
                )),
            }
        }),
        case("a 1 MiB unparsable next link", async {
            let link = format!("http://[{}", "1".repeat(1024 * 1024));
            let s = Raw::canned(page(0, Some(&link))).await;
            match list_all(&s).await {
                Err(e @ Error::Decode { .. }) => bounded(&e),
                other => Err(format!("wanted Decode, got {:.200}", format!("{other:?}"))),
            }
        }),
        case("a 1 MiB id", async {
            let id = "/".repeat(1024 * 1024);
            match client("http://127.0.0.1:9", 4).get_invitation(&id).await {
                Err(e @ Error::Config(_)) => bounded(&e),
                other => Err(format!("wanted Config, got {:.200}", format!("{other:?}"))),
            }
        }),
    ])
    .await;
}

/// A role-binding list page with one binding and this `next` link.
fn binding_page(n: usize, next: Option<&str>) -> Vec<u8> {
    let next = next_field(next);
    json(
        200,
        format!(
            r#"{{"api_version": "iam/v2", "kind": "RoleBindingList", "metadata": {{{next}}},
                "data": [{{"id": "rb-{n}", "principal": "User:u-1", "role_name": "EnvironmentAdmin",
                           "crn_pattern": "crn://confluent.cloud/organization=o/environment=e{n}"}}]}}"#
        ),
    )
}

fn all_role_bindings() -> RoleBindingFilter {
    RoleBindingFilter::nested("crn://confluent.cloud/organization=o")
}

/// Every role binding of the organization.
async fn list_bindings(s: &Raw) -> Result<Vec<RemoteRoleBinding>, Error> {
    client(&s.base(), 4)
        .list_role_bindings(&all_role_bindings())
        .await
}

/// The role-binding calls share the client's defences: pagination that does not end, links to
/// another origin, arrays, and the 403s that mean "gone" only when they say so.
#[tokio::test]
async fn role_bindings_answering_badly() {
    run_all(vec![
        case("a role-binding next link to another origin", async {
            let evil = Raw::canned(binding_page(0, None)).await;
            let link = format!("{}/iam/v2/role-bindings?page_token=steal", evil.base());
            let s = Raw::canned(binding_page(0, Some(&link))).await;
            decode_error(
                list_bindings(&s).await,
                "list_role_bindings",
                "next link leaves",
            )?;
            requests(&s, 1)?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            ensure!(evil.connections() == 0, "the other origin was contacted");
            Ok("refused, the other origin never contacted".into())
        }),
        case("a role-binding next link that repeats", async {
            let s = Raw::start(|i, _| {
                binding_page(i, Some("/iam/v2/role-bindings?crn_pattern=x&page_token=same"))
            })
            .await;
            decode_error(
                list_bindings(&s).await,
                "list_role_bindings",
                "repeats",
            )?;
            requests(&s, 2)?;
            Ok("refused at the first repeated page".into())
        }),
        case("a role-binding list answered with an array", async {
            let s = Raw::canned(json(200, "[]")).await;
            decode_error(
                list_bindings(&s).await,
                "list_role_bindings",
                "expected a JSON object",
            )
            .map(|e| e.to_string())
        }),
        case("a missing binding's 403 on GET and DELETE is gone", async {
            let body = r#"{"error_code": 40301, "message": "Either unauthorized to access role binding or role binding does not exist"}"#;
            let s = Raw::canned(json(403, body)).await;
            let c = client(&s.base(), 4);
            let got = c.get_role_binding("rb-1").await;
            ensure!(matches!(got, Err(Error::NotFound(_))), "GET: {got:?}");
            let deleted = c.delete_role_binding("rb-1").await;
            ensure!(matches!(deleted, Err(Error::NotFound(_))), "DELETE: {deleted:?}");
            requests(&s, 2)?;
            Ok("NotFound, not retried".into())
        }),
        case("a 403 without the missing binding's code is no proof it is gone", async {
            let body = r#"{"errors": [{"status": "403", "code": "forbidden", "detail": "Not allowed to read role bindings at this scope"}]}"#;
            let s = Raw::canned(json(403, body)).await;
            let c = client(&s.base(), 4);
            let got = c.get_role_binding("rb-1").await;
            ensure!(matches!(got, Err(Error::Forbidden(_))), "GET: {got:?}");
            let deleted = c.delete_role_binding("rb-1").await;
            ensure!(matches!(deleted, Err(Error::Forbidden(_))), "DELETE: {deleted:?}");
            requests(&s, 2)?;
            Ok("Forbidden on GET and DELETE, not NotFound".into())
        }),
        case("a 403 naming the API key is the credential's refusal", async {
            let body = r#"{"errors": [{"status": "403", "code": "user_unauthorized", "detail": "Invalid API Key"}]}"#;
            let s = Raw::canned(json(403, body)).await;
            let c = client(&s.base(), 4);
            for r in [
                c.get_role_binding("rb-1").await.map(drop),
                c.delete_role_binding("rb-1").await,
            ] {
                match r {
                    Err(e @ Error::Unauthenticated(_)) => no_secret(&e)?,
                    other => return Err(format!("wanted Unauthenticated, got {other:?}")),
                }
            }
            Ok("Unauthenticated on GET and DELETE".into())
        }),
        case("a role-binding id that would change the path", async {
            let s = Raw::canned(json(200, "{}")).await;
            config_error(
                client(&s.base(), 4).delete_role_binding("../users/u-1").await,
                "not a valid Confluent id",
            )?;
            requests(&s, 0)?;
            Ok("refused before any request".into())
        }),
    ])
    .await;
}
