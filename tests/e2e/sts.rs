//! Keyless credentials end to end: the real operator binary authenticates with a subject token
//! the real API server minted (TokenRequest for a ServiceAccount of the test namespace, audience
//! `confluent`), exchanged at the mock's STS, whose pool checks that audience and subject.
//!
//! 50 Invitations created at once make one POST each and never two exchanges at once. With 5 s
//! STS tokens and a 1 s resync it keeps working for 60 s with no IAM 401 at all, exchanging
//! about once per half lifetime and listing once per resync; a rewritten subject file is used
//! at the next exchange; a revoked pool shows as `CredentialsInvalid` within a resync and
//! recovers when restored. A namespace's keyless Secret mints a ServiceAccount of its own
//! namespace only: another namespace's Secret naming the same account gets its own account's
//! token, which the pool refuses.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use confluent_invitation_operator::invitation::resource::Invitation;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::{ListParams, ObjectMeta, PostParams};

use crate::harness::*;
use confluent_mock::{STS_TOKEN_PREFIX, StsPool};

const POOL: &str = "pool-e2e1";
const LIFETIME: Duration = Duration::from_secs(5);
const RESYNC_STS: Duration = Duration::from_secs(1);
/// Invitations created at once, each reconcile needing the credential's token.
const BURST: usize = 50;

/// Creates ServiceAccount `name` in `ns` (already there is fine).
async fn service_account(env: &Env, ns: &str, name: &str) -> Api<ServiceAccount> {
    let sas: Api<ServiceAccount> = Api::namespaced(env.kube.clone(), ns);
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    match sas.create(&PostParams::default(), &sa).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("ServiceAccount {name}: {e}"),
    }
    sas
}

/// Creates ServiceAccount `name` in the test namespace and mints its token for `confluent`.
async fn mint(env: &Env, name: &str) -> String {
    let sas = service_account(env, &env.ns, name).await;
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec!["confluent".into()]),
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let minted = sas
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("TokenRequest answered");
    minted.status.and_then(|s| s.token).expect("a token")
}

/// Replaces the file as the kubelet does: a new file renamed over the old one.
fn write_subject(path: &Path, token: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, token).expect("subject written");
    std::fs::rename(&tmp, path).expect("subject renamed");
}

fn subject_of(env: &Env, sa: &str) -> String {
    format!("system:serviceaccount:{}:{sa}", env.ns)
}

#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn the_operator_runs_keyless_on_a_service_account_token() {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("token dir");
    let subject_file = dir.join("token");
    let file_arg = subject_file.display().to_string();
    // no API key: the operator's only credential is the pool and the file, read lazily
    let env = env_with(
        "sts",
        Options {
            default_credentials: false,
            extra_args: [
                "--sts-identity-pool-id",
                POOL,
                "--sts-subject-token-file",
                &file_arg,
                "--sts-token-lifetime",
                "5s",
            ]
            .map(String::from)
            .to_vec(),
            resync: RESYNC_STS,
        },
    )
    .await;
    let m = env.remote();
    let first = mint(&env, "confluent-operator").await;
    write_subject(&subject_file, &first);
    m.set_sts_pool(StsPool {
        id: POOL.into(),
        audience: "confluent".into(),
        subject: Some(subject_of(&env, "confluent-operator")),
    });
    m.set_sts_token_lifetime(LIFETIME);

    // 1. keyless: an Invitation goes Ready
    env.create(&invitation("k1", "k1@example.com")).await;
    env.wait_phase("k1", "Sent", "True").await;
    assert_eq!(m.sts_subjects()[0], subject_of(&env, "confluent-operator"));

    // 2. 50 Invitations reconciled at once, then 5 s tokens over 60 s of 1 s resyncs: no 401,
    // about one exchange per half lifetime, never two at once, one list per resync
    let before = m.sts_exchanges();
    let first_exchange = m.sts_issued_at().len();
    let refused = m.calls().unauthenticated;
    let started = Instant::now();
    let names: Vec<String> = (1..=BURST).map(|n| format!("k{n}")).collect();
    let env_ref = &env;
    futures::future::join_all(names[1..].iter().map(|name| async move {
        env_ref
            .create(&invitation(name, &format!("{name}@example.com")))
            .await
    }))
    .await;
    for name in &names[1..] {
        env.wait_phase(name, "Sent", "True").await;
    }
    let creates = m.calls().create;
    assert_eq!(creates, BURST as u64, "one POST per Invitation");
    let lists_before = m.calls().list;
    let steady = Instant::now();
    let mut reasons = std::collections::BTreeSet::new();
    while steady.elapsed() < Duration::from_secs(60) {
        for inv in env.api.list(&ListParams::default()).await.expect("listed") {
            if let Some((_, reason, _)) = ready_of(&inv) {
                reasons.insert(reason);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let steady_secs = steady.elapsed().as_secs_f64();
    let lists = m.calls().list - lists_before;
    let elapsed = started.elapsed().as_secs_f64();
    let after = m.sts_exchanges();
    let exchanges = after.issued - before.issued;
    let issued_at = m.sts_issued_at();
    let closest = issued_at[first_exchange.saturating_sub(1)..]
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .min()
        .expect("exchanges");
    eprintln!(
        "sts e2e: {exchanges} exchanges in {elapsed:.1} s of 5 s tokens, the closest two {closest:?} apart \
         ({} IAM 401s, Ready reasons {reasons:?}); {lists} invitation lists in {steady_secs:.1} s of 1 s resyncs",
        m.calls().unauthenticated - refused
    );
    assert_eq!(m.calls().unauthenticated, refused, "an IAM call met a 401");
    assert_eq!(
        after.total() - before.total(),
        exchanges,
        "an exchange was refused"
    );
    assert!(
        !reasons.contains("CredentialsInvalid"),
        "a 401 reached a status: {reasons:?}"
    );
    // A token is renewed at half its 5 s life (2.5 s) by the first call after that, one
    // exchange at a time: two exchanges closer than that half were two at once (the burst's
    // reconciles each exchanging). Slack below for the mock's clock against the operator's.
    assert!(
        closest >= Duration::from_secs(2),
        "two exchanges {closest:?} apart"
    );
    // Calls come at least every 1 s resync: never fewer than one exchange per 5 s (a gap would
    // have meant an expired token, i.e. 401s), never more than one per 2.5 s.
    let (low, high) = (elapsed / 5.0 - 2.0, elapsed / 2.5 + 2.0);
    assert!(
        (low..=high).contains(&(exchanges as f64)),
        "{exchanges} exchanges in {elapsed:.1} s, expected {low:.0}..={high:.0}"
    );
    // A resync lists ⌈50/100⌉ = 1 page, as with an API key: renewals cost no list again.
    let resyncs = steady_secs / RESYNC_STS.as_secs_f64();
    assert!(
        (resyncs / 3.0..=resyncs + 3.0).contains(&(lists as f64)),
        "{lists} invitation lists in {resyncs:.0} resyncs"
    );

    // 3. the kubelet rotates the file: the next exchange sends the new subject
    m.set_sts_pool(StsPool {
        id: POOL.into(),
        audience: "confluent".into(),
        subject: None,
    });
    let second = mint(&env, "confluent-operator-2").await;
    write_subject(&subject_file, &second);
    let want = subject_of(&env, "confluent-operator-2");
    eventually("the new subject exchanged", Duration::from_secs(15), || {
        let seen = m.sts_subjects();
        let want = want.clone();
        async move { seen.last().filter(|s| **s == want).map(|_| ()) }
    })
    .await;
    env.create(&invitation("rotated", "rotated@example.com"))
        .await;
    env.wait_phase("rotated", "Sent", "True").await;

    // 4. a revoked pool: CredentialsInvalid within a resync or so; restored: Ready again
    assert!(m.revoke_sts_pool(POOL));
    let revoked = Instant::now();
    env.wait_reason("k1", "CredentialsInvalid").await;
    let shown = revoked.elapsed();
    eprintln!("sts e2e: revocation shown after {shown:?}");
    assert!(
        shown < RESYNC_STS * 2 + LIFETIME,
        "the revoked pool was shown after {shown:?}"
    );
    let inv = env.api.get("k1").await.expect("readable");
    let message = ready_of(&inv).expect("Ready").2;
    assert!(
        message.contains(POOL),
        "Confluent's words name the pool: {message}"
    );
    assert!(m.restore_sts_pool(POOL));
    for name in &names {
        env.wait_phase(name, "Sent", "True").await;
    }

    // neither the subject JWTs nor an STS token reached the log, a status or an Event
    let log = env.operator_log();
    assert!(
        log.contains("STS token issued"),
        "the log saw the exchanges"
    );
    let secrets = [first.as_str(), second.as_str(), STS_TOKEN_PREFIX];
    let shown = |secret: &str| secret[..secret.len().min(12)].to_string();
    for secret in secrets {
        assert!(!log.contains(secret), "{}… reached the log", shown(secret));
    }
    for name in &names {
        let notes: Vec<String> = env.events(name).await.into_iter().map(|e| e.2).collect();
        let inv = env.api.get(name).await.expect("readable");
        let status = serde_json::to_string(&inv.status).expect("serializable");
        for secret in secrets {
            assert!(
                !notes.iter().any(|note| note.contains(secret)),
                "{}… in an Event",
                shown(secret)
            );
            assert!(!status.contains(secret), "{}… in a status", shown(secret));
        }
    }
    let metrics = env.operator.as_ref().expect("running").metrics().await;
    assert!(
        metrics.contains("confluent_invitation_operator_sts_exchanges_total{result=\"issued\"}"),
        "{metrics}"
    );
    let remaining = metrics
        .lines()
        .find_map(|l| l.strip_prefix("confluent_invitation_operator_sts_token_remaining_seconds "))
        .and_then(|v| v.trim().parse::<i64>().ok())
        .expect("the remaining-life gauge");
    assert!((0..=5).contains(&remaining), "{remaining}");
    assert!(!metrics.contains(STS_TOKEN_PREFIX) && !metrics.contains(&first));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A namespace's own keyless credentials: a Secret naming an identity pool and a ServiceAccount
/// of its namespace, whose token the operator mints (TokenRequest) for each exchange, only with
/// `--allow-serviceaccount-tokens`.
#[tokio::test]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn a_keyless_secret_uses_a_service_account_of_its_namespace() {
    let mut env = env("sts-secret").await;
    let m = env.remote();
    // the ServiceAccount exists (its token is minted by the operator, not by the test)
    let _ = mint(&env, "team-bot").await;
    m.set_sts_pool(StsPool {
        id: "pool-team1".into(),
        audience: "confluent".into(),
        subject: Some(subject_of(&env, "team-bot")),
    });
    m.set_sts_token_lifetime(LIFETIME);
    env.secret(
        "keyless",
        &[
            ("identityPoolId", "pool-team1"),
            ("serviceAccountName", "team-bot"),
        ],
    )
    .await;

    // without the flag: refused, saying which flag
    env.create(&with_secret(invitation("t1", "t1@example.com"), "keyless"))
        .await;
    let refused = env.wait_reason("t1", "CredentialsInvalid").await;
    let message = ready_of(&refused).expect("Ready").2;
    assert!(
        message.contains("--allow-serviceaccount-tokens"),
        "{message}"
    );
    assert_eq!(
        m.sts_exchanges().total(),
        0,
        "nothing exchanged without the flag"
    );

    // with it: the operator mints team-bot's token, the pool admits it
    env.kill_operator();
    env.options_mut().extra_args = [
        "--allow-serviceaccount-tokens",
        "--sts-token-lifetime",
        "5s",
    ]
    .map(String::from)
    .to_vec();
    env.start_operator();
    env.wait_ready().await;
    env.wait_phase("t1", "Sent", "True").await;
    assert_eq!(m.sts_subjects()[0], subject_of(&env, "team-bot"));
    let invite = m.live_invitations_for("t1@example.com");
    assert_eq!(invite.len(), 1);

    // a ServiceAccount the pool does not admit: CredentialsInvalid with Confluent's words
    let _ = mint(&env, "other-bot").await;
    env.secret(
        "keyless-other",
        &[
            ("identityPoolId", "pool-team1"),
            ("serviceAccountName", "other-bot"),
        ],
    )
    .await;
    env.create(&with_secret(
        invitation("t2", "t2@example.com"),
        "keyless-other",
    ))
    .await;
    let refused = env.wait_reason("t2", "CredentialsInvalid").await;
    let message = ready_of(&refused).expect("Ready").2;
    assert!(message.contains("sub is not"), "{message}");
    assert!(m.live_invitations_for("t2@example.com").is_empty());

    // another namespace's Secret naming `team-bot` gets a token of its own namespace's
    // `team-bot`, which the pool does not admit: a Secret reaches its namespace's accounts only
    let other = test_support::create_namespace(&env.kube, "e2e-sts-other")
        .await
        .expect("namespace created");
    service_account(&env, &other, "team-bot").await;
    env.secret_in(
        &other,
        "keyless",
        &[
            ("identityPoolId", "pool-team1"),
            ("serviceAccountName", "team-bot"),
        ],
    )
    .await;
    let mut other_operator = env.spawn_operator_watching(&["--watch-namespace", &other], &[]);
    env.ready(&mut other_operator).await;
    let other_api: Api<Invitation> = Api::namespaced(env.kube.clone(), &other);
    other_api
        .create(
            &PostParams::default(),
            &with_secret(invitation("t3", "t3@example.com"), "keyless"),
        )
        .await
        .expect("t3 created");
    let refused = wait_reason_via(&other_api, "t3", "CredentialsInvalid").await;
    let message = ready_of(&refused).expect("Ready").2;
    assert!(
        message.contains("sub is not") && message.contains(&subject_of(&env, "team-bot")),
        "{message}"
    );
    assert!(m.live_invitations_for("t3@example.com").is_empty());
    assert!(
        !m.sts_subjects()
            .contains(&format!("system:serviceaccount:{other}:team-bot")),
        "the other namespace's account was admitted"
    );
    // this namespace's own keyless Secret still works alongside
    env.create(&with_secret(invitation("t4", "t4@example.com"), "keyless"))
        .await;
    env.wait_phase("t4", "Sent", "True").await;

    drop(other_operator);
    let _ = test_support::strip_finalizers(&other_api, 4).await;
    let _ = test_support::delete_namespace(&env.kube, &other).await;
    let log = env.operator_log();
    assert!(!log.contains(STS_TOKEN_PREFIX) && !log.contains("eyJhbGciOi"));
}
