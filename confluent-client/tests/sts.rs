//! Keyless credentials against the mock's STS over real HTTP: the exchange, single flight,
//! renewal before expiry, the 401 that re-exchanges once, refusals as `CredentialsInvalid` with
//! Confluent's words, 429 and 5xx as transient, a rewritten subject file, and no token in any
//! log line or `Debug` output.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confluent_client::{Client, ClientSettings, Credentials, Error, ListFilter};
use confluent_mock::{Fault, FaultAction, MockConfig, MockServer, StsPool};

const POOL: &str = "pool-test1";
const SUBJECT: &str = "system:serviceaccount:team:operator";

fn jwt(sub: &str, aud: &str) -> String {
    let exp = jiff::Timestamp::now().as_second() + 3600;
    let enc = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
    let payload = serde_json::json!({"aud": [aud], "exp": exp, "sub": sub, "iss": "https://k8s"});
    format!(
        "{}.{}.{}",
        enc(br#"{"alg":"RS256","kid":"k"}"#),
        enc(payload.to_string().as_bytes()),
        enc(b"signature-NEVER-LOGGED")
    )
}

async fn mock(lifetime: Duration) -> MockServer {
    confluent_mock::start(
        "127.0.0.1:0".parse().unwrap(),
        MockConfig {
            sts_pools: vec![StsPool {
                id: POOL.into(),
                audience: "confluent".into(),
                subject: Some(SUBJECT.into()),
            }],
            sts_token_lifetime: lifetime,
            ..MockConfig::default()
        },
    )
    .await
    .unwrap()
}

struct SubjectFile(PathBuf);

impl SubjectFile {
    fn new(name: &str, content: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("cio-sts-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, content).unwrap();
        Self(path)
    }
}

impl Drop for SubjectFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

fn client(server: &MockServer, credentials: Credentials) -> Client {
    let http = confluent_client::http_client(Duration::from_secs(2)).unwrap();
    let mut settings = ClientSettings::new(&server.base_url()).unwrap();
    settings.retry.backoff.base = Duration::from_millis(20);
    Client::new(http, settings, credentials, None)
}

fn sts(file: &SubjectFile, pool: &str) -> Credentials {
    Credentials::sts_file(pool, &file.0, Duration::from_secs(900))
}

#[tokio::test]
async fn fifty_concurrent_calls_make_one_exchange() {
    let server = mock(Duration::from_secs(900)).await;
    let file = SubjectFile::new("flight", &jwt(SUBJECT, "confluent"));
    let c = client(&server, sts(&file, POOL));
    let calls = (0..50).map(|_| {
        let c = c.clone();
        async move { c.list_invitations(&ListFilter::default()).await }
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    let ex = server.state().sts_exchanges();
    assert_eq!(ex.issued, 1, "{ex:?}");
    assert_eq!(ex.total(), 1, "{ex:?}");
    assert_eq!(server.state().calls().list, 50);
    assert_eq!(server.state().calls().unauthenticated, 0);
}

#[tokio::test]
async fn a_token_is_renewed_at_half_a_short_life_using_the_returned_lifetime() {
    // asked for 900 s, the mock returns 2 s: renewal follows the 2 s, at 1 s
    let server = mock(Duration::from_secs(2)).await;
    let file = SubjectFile::new("renew", &jwt(SUBJECT, "confluent"));
    let c = client(&server, sts(&file, POOL));
    c.list_invitations(&ListFilter::default()).await.unwrap();
    c.list_invitations(&ListFilter::default()).await.unwrap();
    assert_eq!(server.state().sts_exchanges().issued, 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    c.list_invitations(&ListFilter::default()).await.unwrap();
    assert_eq!(server.state().sts_exchanges().issued, 2);
    assert_eq!(server.state().calls().unauthenticated, 0);
    // the identity never names a token
    assert_eq!(
        c.identity(),
        format!("sts:{POOL}:{}", file.0.display()),
        "pool and source only"
    );
}

#[tokio::test]
async fn a_401_drops_the_token_and_exchanges_once_a_second_is_credentials_invalid() {
    let server = mock(Duration::from_secs(900)).await;
    let m = server.state();
    let file = SubjectFile::new("401", &jwt(SUBJECT, "confluent"));
    let c = client(&server, sts(&file, POOL));
    let get = |status| {
        Fault::new(
            Some("GET"),
            "/iam/v2/invitations",
            1,
            FaultAction::Status { status },
        )
    };
    m.inject(get(401));
    c.list_invitations(&ListFilter::default()).await.unwrap();
    assert_eq!(
        m.sts_exchanges().issued,
        2,
        "one exchange more after the 401"
    );
    // a POST is repeated too: the 401 executed nothing
    m.inject(Fault::new(
        Some("POST"),
        "/iam/v2/invitations",
        1,
        FaultAction::Status { status: 401 },
    ));
    let created = c
        .create_invitation(&confluent_client::model::CreateInvitation {
            email: "sts@example.com".into(),
            auth_type: None,
        })
        .await
        .unwrap();
    assert_eq!(created.email.as_deref(), Some("sts@example.com"));
    assert_eq!(m.live_invitations_for("sts@example.com").len(), 1);
    assert_eq!(m.sts_exchanges().issued, 3);
    // two 401s in a row: the caller's CredentialsInvalid, after one exchange more only
    m.inject(Fault::new(
        Some("GET"),
        "/iam/v2/invitations",
        2,
        FaultAction::Status { status: 401 },
    ));
    let e = c
        .list_invitations(&ListFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthenticated(_)), "{e:?}");
    assert_eq!(e.reason(), "CredentialsInvalid");
    assert_eq!(m.sts_exchanges().issued, 4);
}

#[tokio::test]
async fn refusals_are_credentials_invalid_with_confluent_s_words() {
    let server = mock(Duration::from_secs(900)).await;
    let m = server.state();
    let good = SubjectFile::new("refused-good", &jwt(SUBJECT, "confluent"));
    let wrong_aud = SubjectFile::new("refused-aud", &jwt(SUBJECT, "kubernetes"));
    for (credentials, words) in [
        (
            sts(&good, "pool-nope"),
            "identity pool pool-nope does not exist",
        ),
        (sts(&wrong_aud, POOL), "aud is not \"confluent\""),
    ] {
        let e = client(&server, credentials)
            .list_invitations(&ListFilter::default())
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "CredentialsInvalid", "{e:?}");
        assert!(e.detail().contains(words), "{}", e.detail());
        assert!(e.detail().contains("invalid_grant"), "{}", e.detail());
    }
    // a revoked pool: its live token answers 401, the exchange again 401: CredentialsInvalid
    let c = client(&server, sts(&good, POOL));
    c.list_invitations(&ListFilter::default()).await.unwrap();
    assert!(m.revoke_sts_pool(POOL));
    let e = c
        .list_invitations(&ListFilter::default())
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "CredentialsInvalid", "{e:?}");
    assert!(e.detail().contains("HTTP 401"), "{}", e.detail());
    assert!(m.restore_sts_pool(POOL));
    c.list_invitations(&ListFilter::default()).await.unwrap();
    // an unreadable subject file is a configuration error naming the file, not a refusal
    let missing = Credentials::sts_file(POOL, "/nonexistent/token", Duration::from_secs(60));
    let e = client(&server, missing)
        .list_invitations(&ListFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/token"), "{e}");
}

#[tokio::test]
async fn a_throttled_or_failing_exchange_is_retried() {
    let server = mock(Duration::from_secs(900)).await;
    let m = server.state();
    let file = SubjectFile::new("retry", &jwt(SUBJECT, "confluent"));
    let c = client(&server, sts(&file, POOL));
    let exchange = |status| {
        Fault::new(
            Some("POST"),
            "/sts/v1/oauth2/token",
            1,
            FaultAction::Status { status },
        )
    };
    m.inject(exchange(429));
    let started = std::time::Instant::now();
    c.list_invitations(&ListFilter::default()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After: 1 honoured through the limiter ({:?})",
        started.elapsed()
    );
    assert_eq!(m.sts_exchanges().issued, 1);
    let c = client(&server, sts(&file, POOL));
    m.inject(exchange(503));
    c.list_invitations(&ListFilter::default()).await.unwrap();
    assert_eq!(m.sts_exchanges().issued, 2);
}

#[tokio::test]
async fn a_living_token_outlasts_a_failing_exchange_without_an_exchange_per_call() {
    let server = mock(Duration::from_secs(4)).await;
    let m = server.state();
    let file = SubjectFile::new("outage", &jwt(SUBJECT, "confluent"));
    let c = client(&server, sts(&file, POOL));
    c.list_invitations(&ListFilter::default()).await.unwrap();
    // past the renewal point (2 s), the STS fails: the token (4 s) is still good
    tokio::time::sleep(Duration::from_millis(2100)).await;
    m.inject(Fault::new(
        Some("POST"),
        "/sts/v1/oauth2/token",
        1,
        FaultAction::Status { status: 503 },
    ));
    for _ in 0..5 {
        c.list_invitations(&ListFilter::default()).await.unwrap();
    }
    assert!(m.pending_faults().is_empty(), "the renewal was tried");
    assert_eq!(m.sts_exchanges().issued, 1, "one attempt, not one per call");
    assert_eq!(m.calls().unauthenticated, 0);
    // the next attempt comes a moment later and succeeds
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.list_invitations(&ListFilter::default()).await.unwrap();
    assert_eq!(m.sts_exchanges().issued, 2);
}

#[tokio::test]
async fn a_rewritten_subject_file_is_used_at_the_next_exchange() {
    let server = mock(Duration::from_secs(1)).await;
    let m = server.state();
    m.set_sts_pool(StsPool {
        id: "pool-any".into(),
        audience: "confluent".into(),
        subject: None,
    });
    let file = SubjectFile::new("rewrite", &jwt("system:serviceaccount:a:one", "confluent"));
    let c = client(&server, sts(&file, "pool-any"));
    c.list_invitations(&ListFilter::default()).await.unwrap();
    std::fs::write(&file.0, jwt("system:serviceaccount:a:two", "confluent")).unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    c.list_invitations(&ListFilter::default()).await.unwrap();
    assert_eq!(
        m.sts_subjects(),
        ["system:serviceaccount:a:one", "system:serviceaccount:a:two"]
    );
}

/// Records what the client tells its observer about STS exchanges and tokens.
#[derive(Default)]
struct Recorder {
    exchanges: Mutex<Vec<confluent_client::StsResult>>,
    remaining: Mutex<Vec<(String, Duration)>>,
}

impl confluent_client::Observer for Recorder {
    fn on_response(&self, _: confluent_client::Operation, _: Option<u16>, _: Duration) {}

    fn on_sts_exchange(&self, result: confluent_client::StsResult) {
        self.exchanges.lock().unwrap().push(result);
    }

    fn on_sts_token(&self, identity: &str, remaining: Duration) {
        self.remaining
            .lock()
            .unwrap()
            .push((identity.to_owned(), remaining));
    }
}

#[tokio::test]
async fn the_observer_counts_exchanges_by_result_and_sees_the_remaining_life() {
    use confluent_client::StsResult;
    let server = mock(Duration::from_secs(30)).await;
    let file = SubjectFile::new("observer", &jwt(SUBJECT, "confluent"));
    let recorder = Arc::new(Recorder::default());
    let observed = |credentials| {
        let http = confluent_client::http_client(Duration::from_secs(2)).unwrap();
        let settings = ClientSettings::new(&server.base_url()).unwrap();
        Client::new(http, settings, credentials, Some(recorder.clone()))
    };
    let c = observed(sts(&file, POOL));
    for _ in 0..3 {
        c.list_invitations(&ListFilter::default()).await.unwrap();
    }
    let _ = observed(sts(&file, "pool-unknown"))
        .list_invitations(&ListFilter::default())
        .await
        .unwrap_err();
    let missing = Credentials::sts_file(POOL, "/nonexistent/subject", Duration::from_secs(60));
    let _ = observed(missing)
        .list_invitations(&ListFilter::default())
        .await
        .unwrap_err();
    assert_eq!(
        *recorder.exchanges.lock().unwrap(),
        [StsResult::Issued, StsResult::Refused, StsResult::Failed]
    );
    let remaining = recorder.remaining.lock().unwrap().clone();
    assert_eq!(remaining.len(), 3, "one per use: {remaining:?}");
    for (identity, left) in remaining {
        assert_eq!(identity, c.identity());
        assert!(
            left <= Duration::from_secs(30) && left >= Duration::from_secs(25),
            "{left:?}"
        );
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_subject_jwt_or_sts_token_reaches_a_log_line_or_debug() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let subject = jwt(SUBJECT, "confluent");
    let file = SubjectFile::new("logs", &subject);
    let mut debug = String::new();
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let server = mock(Duration::from_secs(1)).await;
            let m = server.state();
            let c = client(&server, sts(&file, POOL));
            debug = format!("{c:?}");
            tracing::debug!(client = ?c, "client built");
            c.list_invitations(&ListFilter::default()).await.unwrap();
            m.inject(Fault::new(
                Some("GET"),
                "/iam/v2/invitations",
                2,
                FaultAction::Status { status: 401 },
            ));
            let e = c
                .list_invitations(&ListFilter::default())
                .await
                .unwrap_err();
            tracing::warn!(error = %e, debug = ?e, "failed");
            tokio::time::sleep(Duration::from_millis(600)).await;
            c.list_invitations(&ListFilter::default()).await.unwrap();
            m.revoke_sts_pool(POOL);
            let e = c
                .list_invitations(&ListFilter::default())
                .await
                .unwrap_err();
            tracing::warn!(error = %e, debug = ?e, "failed");
        });
    });
    let text = String::from_utf8_lossy(&capture.0.lock().unwrap()).to_string();
    assert!(
        text.contains("STS token issued"),
        "the capture saw the exchanges:\n{text}"
    );
    let payload = subject.split('.').nth(1).unwrap().to_owned();
    for needle in [
        subject.as_str(),
        payload.as_str(),
        confluent_mock::STS_TOKEN_PREFIX,
    ] {
        assert!(!text.contains(needle), "{needle} was logged");
        assert!(!debug.contains(needle), "{needle} in Debug: {debug}");
    }
    assert!(debug.contains(POOL), "{debug}");
}
