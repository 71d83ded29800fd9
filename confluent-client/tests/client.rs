//! The Confluent client against the project's mock over real HTTP: every operation, pagination,
//! the error taxonomy, retries (idempotent calls only), token files, and no credential in any log
//! line at any level.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confluent_client::model::{CreateInvitation, InviteStatus};
use confluent_client::{Client, ClientSettings, Credentials, Error, ListFilter};
use confluent_mock::{Fault, FaultAction, MockConfig, MockServer};
use futures::TryStreamExt;

const KEY: &str = "client-test-key";
const SECRET: &str = "client-test-secret-3d9f-NEVER-LOGGED";
const TOKEN: &str = "client-test-token-77ab-NEVER-LOGGED";

async fn mock() -> MockServer {
    confluent_mock::start(
        "127.0.0.1:0".parse().unwrap(),
        MockConfig {
            api_keys: vec![(KEY.into(), SECRET.into())],
            tokens: vec![TOKEN.into()],
            ..MockConfig::default()
        },
    )
    .await
    .unwrap()
}

fn client(server: &MockServer, credentials: Credentials) -> Client {
    let http = confluent_client::http_client(Duration::from_secs(2)).unwrap();
    let mut settings = ClientSettings::new(&server.base_url()).unwrap();
    settings.retry.backoff.base = Duration::from_millis(20);
    Client::new(http, settings, credentials, None)
}

fn create(email: &str) -> CreateInvitation {
    CreateInvitation {
        email: email.into(),
        auth_type: None,
    }
}

fn fault(method: &str, count: u32, action: FaultAction) -> Fault {
    Fault {
        method: Some(method.into()),
        path_prefix: "/iam/v2/invitations".into(),
        count,
        action,
    }
}

#[tokio::test]
async fn every_operation_round_trips() {
    let server = mock().await;
    let c = client(&server, Credentials::api_key(KEY, SECRET));
    let inv = c
        .create_invitation(&create("jane@example.com"))
        .await
        .unwrap();
    let id = inv.id.clone().unwrap();
    assert_eq!(inv.status, Some(InviteStatus::Sent));
    assert!(inv.user_id().unwrap().starts_with("u-"));
    assert_eq!(c.get_invitation(&id).await.unwrap(), inv);
    let user = c.get_user(inv.user_id().unwrap()).await.unwrap();
    assert_eq!(user.email.as_deref(), Some("jane@example.com"));
    let listed = c
        .list_invitations(&ListFilter::email("jane@example.com"))
        .await
        .unwrap();
    assert_eq!(listed, vec![inv.clone()]);

    // 409 on a second invitation for the same email
    let e = c
        .create_invitation(&create("jane@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::AlreadyExists(_)), "{e:?}");
    assert!(
        e.detail()
            .contains("This user already exists within the Organization")
    );
    assert!(e.request_id().is_some(), "every error keeps X-Request-Id");

    // accepted: delete refused with its own variant; the member goes with delete_user
    server.state().accept(&id).unwrap();
    let e = c.delete_invitation(&id).await.unwrap_err();
    assert!(matches!(e, Error::AlreadyAccepted(_)), "{e:?}");
    c.delete_user(inv.user_id().unwrap()).await.unwrap();
    assert!(matches!(
        c.get_user(inv.user_id().unwrap()).await,
        Err(Error::NotFound(_))
    ));

    // a pending one is deleted (deactivated), a missing one is NotFound
    let other = c
        .create_invitation(&create("john@example.com"))
        .await
        .unwrap();
    c.delete_invitation(other.id.as_deref().unwrap())
        .await
        .unwrap();
    assert!(matches!(
        c.delete_invitation("i-nope0").await,
        Err(Error::NotFound(_))
    ));
    // path characters never reach the server
    assert!(matches!(
        c.get_invitation("../users/u-1").await,
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn lists_follow_next_to_the_end_a_page_at_a_time() {
    let server = mock().await;
    for i in 0..250 {
        server
            .state()
            .seed_invitation(&format!("user{i}@example.com"), None);
    }
    let c = client(&server, Credentials::api_key(KEY, SECRET));
    let before = server.state().calls().list;
    let pages: Vec<Vec<_>> = c
        .list_pages(&ListFilter::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    assert_eq!(
        server.state().calls().list - before,
        3,
        "page_size 100: 3 calls"
    );
    let all = c.list_invitations(&ListFilter::default()).await.unwrap();
    let mut ids: Vec<_> = all.iter().filter_map(|i| i.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 250, "no page twice, none missed");
    // filters are exact
    let one = c
        .list_invitations(&ListFilter {
            status: Some("INVITE_STATUS_SENT".into()),
            email: Some("user7@example.com".into()),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
}

#[tokio::test]
async fn bad_credentials_are_unauthenticated_and_tokens_work() {
    let server = mock().await;
    let wrong = client(&server, Credentials::api_key(KEY, "wrong"));
    let e = wrong
        .list_invitations(&ListFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthenticated(_)), "{e:?}");
    assert_eq!(e.reason(), "CredentialsInvalid");
    assert!(!format!("{e} {e:?}").contains("wrong"));

    let token = client(&server, Credentials::token(TOKEN));
    token
        .list_invitations(&ListFilter::default())
        .await
        .unwrap();

    // a token file is re-read when it changes
    let dir = std::env::temp_dir().join(format!("cio-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("token");
    std::fs::write(&path, "stale-token").unwrap();
    let from_file = client(&server, Credentials::token_file(&path));
    assert!(matches!(
        from_file.list_invitations(&ListFilter::default()).await,
        Err(Error::Unauthenticated(_))
    ));
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(TOKEN.as_bytes()).unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(2))
        .unwrap();
    drop(f);
    from_file
        .list_invitations(&ListFilter::default())
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn idempotent_calls_retry_transient_failures_and_posts_never_do() {
    let server = mock().await;
    let c = client(&server, Credentials::api_key(KEY, SECRET));
    let m = server.state();
    // GET/list: 503, a dropped connection and a 429 are retried within one call
    m.inject(fault("GET", 1, FaultAction::Status { status: 503 }));
    m.inject(fault("GET", 1, FaultAction::Drop));
    let before = m.calls().list;
    c.list_invitations(&ListFilter::default()).await.unwrap();
    assert_eq!(m.calls().list - before, 3, "two failures, then success");

    m.inject(fault("GET", 1, FaultAction::Status { status: 429 }));
    let started = Instant::now();
    c.list_invitations(&ListFilter::default()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited the server's Retry-After: 1"
    );

    // POST: a 500 is returned to the caller, not retried (the create might have happened)
    m.inject(fault("POST", 1, FaultAction::CommitThen500));
    let before = m.calls().create;
    let e = c
        .create_invitation(&create("lost@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Server(_)), "{e:?}");
    assert!(e.is_transient());
    assert_eq!(m.calls().create - before, 1, "exactly one POST");
    assert_eq!(
        m.live_invitations_for("lost@example.com").len(),
        1,
        "it did commit"
    );

    m.inject(fault("POST", 1, FaultAction::CommitThenDrop));
    let e = c
        .create_invitation(&create("dropped@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Network { .. }), "{e:?}");
    assert_eq!(m.calls().create - before, 2);

    // retries give up after the policy's attempts, with the last error
    m.inject(fault("GET", 10, FaultAction::Status { status: 500 }));
    let before = m.calls().list;
    let e = c
        .list_invitations(&ListFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Server(_)), "{e:?}");
    assert_eq!(m.calls().list - before, 4, "max_attempts");
}

#[tokio::test]
async fn a_429_pauses_the_whole_credential() {
    let server = mock().await;
    let m = server.state();
    m.set_rate_limit(Some(confluent_mock::RateLimit {
        per_second: 2.0,
        burst: 2,
    }));
    let c = client(&server, Credentials::api_key(KEY, SECRET));
    let started = Instant::now();
    for _ in 0..6 {
        c.list_invitations(&ListFilter::default()).await.unwrap();
    }
    let calls = m.calls();
    assert!(
        calls.rate_limited <= 2,
        "the limiter learns from the server instead of hammering it: {calls:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
}

/// Captures every tracing line, at every level, of every crate (reqwest and hyper included).
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_credential_reaches_any_log_line_at_any_level() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let server = mock().await;
            let m = server.state();
            for credentials in [
                Credentials::api_key(KEY, SECRET),
                Credentials::api_key(KEY, "wrong-secret-NEVER-LOGGED"),
                Credentials::token(TOKEN),
            ] {
                let c = client(&server, credentials);
                tracing::debug!(client = ?c, "client built");
                m.inject(fault("GET", 1, FaultAction::Status { status: 500 }));
                let _ = c.list_invitations(&ListFilter::default()).await;
                let _ = c.create_invitation(&create("log@example.com")).await;
                let _ = c.get_invitation("i-missing").await;
            }
        });
    });
    let text = String::from_utf8_lossy(&capture.0.lock().unwrap()).to_string();
    assert!(text.len() > 1000, "the capture saw the traffic:\n{text}");
    for needle in [
        SECRET,
        TOKEN,
        "wrong-secret-NEVER-LOGGED",
        // the Basic header's base64 of key:secret
        "Y2xpZW50LXRlc3Qta2V5OmNsaWVudC10ZXN0LXNlY3JldC0zZDlmLU5FVkVSLUxPR0dFRA",
    ] {
        assert!(!text.contains(needle), "{needle} was logged");
    }
}
