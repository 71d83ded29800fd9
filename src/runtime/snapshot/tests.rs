use super::*;
use confluent_client::model::InviteStatus;

fn inv(id: &str, email: &str) -> RemoteInvitation {
    RemoteInvitation {
        id: Some(id.into()),
        email: Some(email.into()),
        status: Some(InviteStatus::Sent),
        ..Default::default()
    }
}

#[test]
fn indexes_by_id_and_case_insensitive_email() {
    let mut s = Snapshot::new(
        Instant::now(),
        vec![
            inv("i-1", "Jane@Example.com"),
            inv("i-2", "jane@example.com"),
            inv("i-3", "x@y.io"),
        ],
    );
    assert_eq!(s.len(), 3);
    assert_eq!(s.get("i-3").unwrap().email.as_deref(), Some("x@y.io"));
    assert_eq!(s.for_email("JANE@example.COM").len(), 2);
    assert!(s.for_email("nobody@example.com").is_empty());
    // an update replaces, never duplicates
    let mut accepted = inv("i-1", "jane@example.com");
    accepted.status = Some(InviteStatus::Accepted);
    s.upsert(&accepted);
    assert_eq!(s.len(), 3);
    assert_eq!(s.for_email("jane@example.com").len(), 2);
    assert_eq!(s.get("i-1").unwrap().status, Some(InviteStatus::Accepted));
    // no id: ignored
    s.upsert(&RemoteInvitation::default());
    assert_eq!(s.len(), 3);
}

#[test]
fn records_only_news_and_a_refresh_keeps_what_its_list_missed() {
    let t0 = Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let mut s = Snapshot::new(t0, vec![inv("i-1", "a@x.io"), inv("i-4", "d@x.io")]);
    // what the snapshot says already is not news
    s.record(&inv("i-1", "a@x.io"), at(0));
    assert!(s.recorded.is_empty());
    // created before the next list started: that list shows it, or it is gone
    s.record(&inv("i-2", "b@x.io"), at(1));
    // the next refresh starts at 2; created at 3, while it runs: its pages may miss it
    s.record(&inv("i-3", "c@x.io"), at(3));
    // accepted, learnt at 5 from a GET; a page fetched at 4 still says Sent
    let mut accepted = inv("i-4", "d@x.io");
    accepted.status = Some(InviteStatus::Accepted);
    s.record(&accepted, at(5));
    let mut seen = HashSet::new();
    let mut expired = inv("i-1", "a@x.io");
    expired.status = Some(InviteStatus::Expired);
    s.apply_page(vec![expired, inv("i-4", "d@x.io")], at(4), &mut seen);
    s.finish_refresh(at(2), &seen);
    assert_eq!(s.get("i-1").unwrap().status, Some(InviteStatus::Expired));
    assert_eq!(
        s.get("i-4").unwrap().status,
        Some(InviteStatus::Accepted),
        "a page older than a record does not overwrite it"
    );
    assert!(s.get("i-2").is_none(), "removed since: gone");
    assert!(s.for_email("b@x.io").is_empty());
    assert_eq!(
        s.for_email("c@x.io").len(),
        1,
        "created during the list: kept"
    );
    assert_eq!(s.taken_at, Some(at(2)));
    // kept once: the refresh after that decides alone
    s.finish_refresh(at(10), &HashSet::new());
    assert!(s.is_empty());
    assert!(s.recorded.is_empty());
}

#[test]
fn held_invitations_are_what_the_planner_reads_and_recording_them_again_is_no_news() {
    let full = RemoteInvitation {
        api_version: Some("iam/v2".into()),
        kind: Some("Invitation".into()),
        auth_type: Some("AUTH_TYPE_SSO".into()),
        expires_at: Some("2026-01-31T00:00:00Z".into()),
        ..inv("i-1", "Jane@example.com")
    };
    let mut s = Snapshot::new(Instant::now(), vec![full.clone()]);
    let held = s.get("i-1").unwrap();
    assert_eq!(held.kind, None, "type tags are not kept");
    assert_eq!(
        (held.auth_type.as_deref(), held.expires_at.as_deref()),
        (Some("AUTH_TYPE_SSO"), Some("2026-01-31T00:00:00Z"))
    );
    assert_eq!(s.for_email("jane@example.com"), vec![held]);
    s.record(&full, Instant::now());
    assert!(s.recorded.is_empty(), "the same again is no news");
}

async fn mock() -> (confluent_mock::MockServer, confluent_client::Client) {
    let server = confluent_mock::start(
        "127.0.0.1:0".parse().unwrap(),
        confluent_mock::MockConfig {
            api_keys: vec![("k".into(), "s".into())],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut settings = confluent_client::ClientSettings::new(&server.base_url()).unwrap();
    settings.retry.backoff.base = Duration::from_millis(5);
    let client = confluent_client::Client::new(
        confluent_client::http_client(Duration::from_secs(2)).unwrap(),
        settings,
        confluent_client::Credentials::api_key("k", "s"),
        None,
    );
    (server, client)
}

#[tokio::test]
async fn concurrent_readers_share_one_list_and_back_off_together_when_it_fails() {
    let (server, client) = mock().await;
    server.state().seed_invitation("a@x.io", None);
    server.state().set_latency(Duration::from_millis(100));
    let snapshots = Arc::new(Snapshots::new(Duration::from_secs(60)));
    let read = |snapshots: &Arc<Snapshots>| {
        let (snapshots, client) = (snapshots.clone(), client.clone());
        tokio::spawn(async move {
            snapshots
                .fresh(&client, |s| s.for_email("a@x.io").len())
                .await
        })
    };
    let readers: Vec<_> = (0..8).map(|_| read(&snapshots)).collect();
    for r in readers {
        assert_eq!(r.await.unwrap().unwrap(), 1);
    }
    assert_eq!(server.state().calls().list, 1, "one list for eight readers");
    // fresh: answered without a call
    assert_eq!(read(&snapshots).await.unwrap().unwrap(), 1);
    assert_eq!(server.state().calls().list, 1);

    // a failing list: the readers that waited for it do not each list again
    let stale = Arc::new(Snapshots::new(Duration::ZERO));
    server.state().inject(confluent_mock::Fault {
        method: Some("GET".into()),
        path_prefix: "/iam/v2/invitations".into(),
        count: 1000,
        action: confluent_mock::FaultAction::Status { status: 503 },
    });
    let before = server.state().calls().list;
    assert!(read(&stale).await.unwrap().is_err());
    let one_flight = server.state().calls().list - before;
    assert!(one_flight >= 1);
    let readers: Vec<_> = (0..6).map(|_| read(&stale)).collect();
    for r in readers {
        assert!(r.await.unwrap().is_err());
    }
    let six = server.state().calls().list - before - one_flight;
    assert_eq!(
        six, one_flight,
        "six readers waiting for one failing list: one flight, not six"
    );
}

/// Those who waited for a list the rate limit refused are told so, with the wait: they back
/// off that long, and never read one invitation each instead (`drive::observe`).
#[tokio::test]
async fn the_waiters_of_a_rate_limited_list_are_told_it_was_rate_limited() {
    let (server, client) = mock().await;
    server.state().seed_invitation("a@x.io", None);
    server.state().set_latency(Duration::from_millis(100));
    server.state().inject(confluent_mock::Fault {
        method: Some("GET".into()),
        path_prefix: "/iam/v2/invitations".into(),
        count: 1000,
        action: confluent_mock::FaultAction::Status { status: 429 },
    });
    let snapshots = Arc::new(Snapshots::new(Duration::ZERO));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (snapshots, client) = (snapshots.clone(), client.clone());
            tokio::spawn(async move { snapshots.fresh(&client, |s| s.len()).await })
        })
        .collect();
    for r in readers {
        let e = r.await.unwrap().expect_err("rate limited");
        assert!(
            matches!(e, confluent_client::Error::RateLimited { .. }),
            "{e:?}"
        );
    }
    // one flight: the first attempt and the client's retries, nothing per waiter
    assert!(
        server.state().calls().list <= 4,
        "{:?}",
        server.state().calls()
    );
}

/// A reader that can do without lists when nobody else is, but never right after a list
/// failed: the resources reconciled at once would each start one, back to back.
#[tokio::test]
async fn a_reader_that_can_do_without_does_not_list_again_right_after_a_failure() {
    let (server, client) = mock().await;
    server.state().seed_invitation("a@x.io", None);
    let snapshots = Snapshots::new(Duration::ZERO);
    server.state().inject(confluent_mock::Fault {
        method: Some("GET".into()),
        path_prefix: "/iam/v2/invitations".into(),
        count: 4,
        action: confluent_mock::FaultAction::Status { status: 503 },
    });
    assert!(
        snapshots
            .fresh_unless_listing(&client, |s| s.len())
            .await
            .is_err()
    );
    let listed = server.state().calls().list;
    assert_eq!(listed, 4, "the first one lists (and retries)");
    for _ in 0..5 {
        assert_eq!(
            snapshots
                .fresh_unless_listing(&client, |s| s.len())
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        server.state().calls().list,
        listed,
        "none lists again at once"
    );
    // one that needs the answer still lists
    assert_eq!(snapshots.fresh(&client, |s| s.len()).await.unwrap(), 1);
}

#[tokio::test]
async fn a_refused_credential_is_answered_without_listing_until_a_refresh_succeeds() {
    let (server, client) = mock().await;
    server.state().seed_invitation("a@x.io", None);
    let snapshots = Snapshots::new(Duration::from_secs(60));
    let count = |s: &Snapshot| s.for_email("a@x.io").len();
    assert_eq!(snapshots.fresh(&client, count).await.unwrap(), 1);
    // revoked: a fresh snapshot no longer speaks for the credential once a list is refused
    server.state().set_api_keys(&[]);
    let mut refused = Vec::new();
    snapshots
        .refresh_all(|key, identity, r| refused.push((key, identity.to_owned(), r.is_err())))
        .await;
    assert_eq!(refused, vec![(client.key(), "api-key:k".to_owned(), true)]);
    let lists = server.state().calls().list;
    for _ in 0..3 {
        assert!(matches!(
            snapshots.fresh(&client, count).await,
            Err(confluent_client::Error::Unauthenticated(_))
        ));
    }
    assert_eq!(server.state().calls().list, lists, "no list per reader");
    // working again: the next refresh clears the refusal
    server.state().set_api_keys(&[("k".into(), "s".into())]);
    snapshots.refresh_all(|_, _, r| assert!(r.is_ok())).await;
    assert_eq!(snapshots.fresh(&client, count).await.unwrap(), 1);
    // a replaced client is dropped with its snapshot
    snapshots.retain(|key| key != client.key());
    assert!(snapshots.entries().is_empty());
}
