use super::*;
use crate::ErrorLocation;

const ADMIN: &str = "u-admin1";

fn t0() -> Timestamp {
    "2026-03-01T12:00:00.750Z".parse().unwrap()
}

fn req(email: &str) -> CreateInvitation {
    CreateInvitation {
        email: email.into(),
        auth_type: None,
    }
}

fn create(org: &mut Org, email: &str) -> InvitationRecord {
    org.create(&req(email), ADMIN, t0()).unwrap()
}

#[test]
fn create_fills_every_field() {
    let mut org = Org::new();
    let r = create(&mut org, "Jane@Example.com");
    assert!(r.id.starts_with("i-") && r.id.len() == 7, "{}", r.id);
    assert!(
        r.id[2..]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    );
    assert!(r.user_id.starts_with("u-"));
    assert_eq!(r.email, "Jane@Example.com");
    assert_eq!(r.auth_type, AUTH_TYPE_SSO);
    assert_eq!(r.status, InviteStatus::Sent);
    assert_eq!(r.created_at.to_string(), "2026-03-01T12:00:00Z");
    assert_eq!(r.expires_at.to_string(), "2026-03-08T12:00:00Z");
    assert_eq!(r.creator_id, ADMIN);
    assert_eq!(r.accepted_at, None);
    let user = org.user(&r.user_id).unwrap();
    assert!(!user.member);
}

#[test]
fn validation_points_at_the_field() {
    let mut org = Org::new();
    for bad in [
        "",
        "jane",
        "jane@",
        "@example.com",
        "jane@example",
        "ja ne@example.com",
    ] {
        match org.create(&req(bad), ADMIN, t0()) {
            Err(MockError::InvalidRequest { at, .. }) => {
                assert_eq!(at, ErrorLocation::Body("/email".into()), "{bad}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    let bad_auth = CreateInvitation {
        email: "a@example.com".into(),
        auth_type: Some("AUTH_TYPE_PASSKEY".into()),
    };
    assert!(matches!(
        org.create(&bad_auth, ADMIN, t0()),
        Err(MockError::InvalidRequest {
            at: ErrorLocation::Body(p),
            ..
        }) if p == "/auth_type"
    ));
    let local = CreateInvitation {
        email: "a@example.com".into(),
        auth_type: Some(AUTH_TYPE_LOCAL.into()),
    };
    assert_eq!(
        org.create(&local, ADMIN, t0()).unwrap().auth_type,
        AUTH_TYPE_LOCAL
    );
}

#[test]
fn a_live_email_is_refused_case_insensitively() {
    let mut org = Org::new();
    let r = create(&mut org, "jane@example.com");
    let err = org
        .create(&req("JANE@example.COM"), ADMIN, t0())
        .unwrap_err();
    assert!(matches!(err, MockError::AlreadyExists { .. }));
    assert_eq!(
        err.to_string(),
        "This user already exists within the Organization"
    );
    // still refused once accepted (a member)
    org.accept(&r.id, t0()).unwrap();
    assert!(matches!(
        org.create(&req("jane@example.com"), ADMIN, t0()),
        Err(MockError::AlreadyExists { .. })
    ));
    // and even when the accepted invitation was removed out of band
    org.remove(&r.id).unwrap();
    assert!(matches!(
        org.create(&req("jane@example.com"), ADMIN, t0()),
        Err(MockError::AlreadyExists { .. })
    ));
}

#[test]
fn deactivate_then_reinvite() {
    let mut org = Org::new();
    let first = create(&mut org, "jane@example.com");
    org.delete(&first.id, t0()).unwrap();
    let got = org.get(&first.id, t0()).unwrap();
    assert_eq!(got.status, InviteStatus::Deactivated);
    assert!(got.deleted_at.is_some());
    // deleting again: 404
    assert!(matches!(
        org.delete(&first.id, t0()),
        Err(MockError::NotFound { .. })
    ));
    // the invitee went away with the deactivation
    assert!(org.user(&first.user_id).is_err());
    let second = create(&mut org, "jane@example.com");
    assert_ne!(second.id, first.id);
    assert_ne!(second.user_id, first.user_id);
    assert_eq!(org.live_for("Jane@example.com", t0()), vec![second]);
    assert_eq!(org.all(t0()).len(), 2);
}

#[test]
fn accepted_cannot_be_deleted() {
    let mut org = Org::new();
    let r = create(&mut org, "jane@example.com");
    let accepted = org.accept(&r.id, t0()).unwrap();
    assert_eq!(accepted.status, InviteStatus::Accepted);
    assert!(accepted.accepted_at.is_some());
    let err = org.delete(&r.id, t0()).unwrap_err();
    assert_eq!(err.to_string(), "The invitation was already accepted");
    assert!(org.user(&r.user_id).unwrap().member);
    assert!(matches!(
        org.accept(&r.id, t0()),
        Err(MockError::InvalidState { .. })
    ));
}

#[test]
fn expiry_by_time_and_by_control() {
    let mut org = Org::new();
    let r = create(&mut org, "jane@example.com");
    let before = t0()
        .checked_add(SignedDuration::from_hours(24 * 7 - 1))
        .unwrap();
    assert_eq!(org.get(&r.id, before).unwrap().status, InviteStatus::Sent);
    let after = t0()
        .checked_add(SignedDuration::from_hours(24 * 7))
        .unwrap();
    let got = org.get(&r.id, after).unwrap();
    assert_eq!(got.status, InviteStatus::Expired);
    // an expired email can be invited again, keeping its user
    let again = org.create(&req("jane@example.com"), ADMIN, after).unwrap();
    assert_eq!(again.user_id, r.user_id);
    // expired invitations can still be deleted (deactivated); cannot be accepted
    assert!(matches!(
        org.accept(&r.id, after),
        Err(MockError::InvalidState { .. })
    ));
    org.delete(&r.id, after).unwrap();
    assert_eq!(
        org.get(&r.id, after).unwrap().status,
        InviteStatus::Deactivated
    );
    // the user survives: the new invitation still needs it
    assert!(org.user(&r.user_id).is_ok());

    let other = create(&mut org, "joe@example.com");
    let expired = org.expire(&other.id, t0()).unwrap();
    assert_eq!(expired.status, InviteStatus::Expired);
    assert_eq!(expired.expires_at, whole_seconds(t0()));
    assert!(org.live_for("joe@example.com", t0()).is_empty());
}

#[test]
fn pagination_follows_tokens_to_the_end() {
    let mut org = Org::new();
    for i in 0..25 {
        create(&mut org, &format!("user{i}@example.com"));
    }
    let mut q = ListQuery {
        page_size: Some(10),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = org.list(&q, t0()).unwrap();
        pages += 1;
        assert_eq!(page.total_size, 25);
        seen.extend(page.items.iter().map(|r| r.email.clone()));
        match page.next_token {
            Some(t) => {
                // page_size is ignored once a token is given
                q = ListQuery {
                    page_size: Some(1),
                    page_token: Some(t),
                    ..Default::default()
                }
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("user{i}@example.com")).collect();
    assert_eq!(seen, expected);
}

#[test]
fn pagination_defaults_and_bounds() {
    let mut org = Org::new();
    for i in 0..10 {
        create(&mut org, &format!("user{i}@example.com"));
    }
    let page = org.list(&ListQuery::default(), t0()).unwrap();
    assert_eq!(page.items.len(), 10);
    assert_eq!(page.page_size, 10);
    assert_eq!(
        page.next_token, None,
        "an exactly full last page has no next"
    );
    for bad in [0, 101] {
        let q = ListQuery {
            page_size: Some(bad),
            ..Default::default()
        };
        assert!(matches!(
            org.list(&q, t0()),
            Err(MockError::InvalidRequest {
                at: ErrorLocation::Query(p),
                ..
            }) if p == "page_size"
        ));
    }
    let q = ListQuery {
        page_token: Some("garbage".into()),
        ..Default::default()
    };
    assert!(matches!(
        org.list(&q, t0()),
        Err(MockError::InvalidRequest {
            at: ErrorLocation::Query(p),
            ..
        }) if p == "page_token"
    ));
}

#[test]
fn filters_are_exact() {
    let mut org = Org::new();
    let a = create(&mut org, "a@example.com");
    let b = org.create(&req("b@example.com"), "u-other1", t0()).unwrap();
    org.accept(&b.id, t0()).unwrap();
    let by = |q: ListQuery, org: &mut Org| -> Vec<String> {
        org.list(&q, t0())
            .unwrap()
            .items
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    let q = ListQuery {
        email: Some("A@EXAMPLE.COM".into()),
        ..Default::default()
    };
    assert_eq!(by(q, &mut org), vec![a.id.clone()]);
    org.case_sensitive_email_filter = true;
    let q = ListQuery {
        email: Some("A@EXAMPLE.COM".into()),
        ..Default::default()
    };
    assert!(by(q, &mut org).is_empty(), "a case-sensitive filter");
    let q = ListQuery {
        email: Some("a@example.com".into()),
        ..Default::default()
    };
    assert_eq!(by(q, &mut org), vec![a.id.clone()]);
    org.case_sensitive_email_filter = false;
    let q = ListQuery {
        email: Some("example.com".into()),
        ..Default::default()
    };
    assert!(by(q, &mut org).is_empty());
    let q = ListQuery {
        status: Some("INVITE_STATUS_ACCEPTED".into()),
        ..Default::default()
    };
    assert_eq!(by(q, &mut org), vec![b.id.clone()]);
    let q = ListQuery {
        user: Some(a.user_id.clone()),
        ..Default::default()
    };
    assert_eq!(by(q, &mut org), vec![a.id.clone()]);
    let q = ListQuery {
        creator: Some("u-other1".into()),
        ..Default::default()
    };
    assert_eq!(by(q, &mut org), vec![b.id]);
}

#[test]
fn deleting_a_user_deactivates_their_invitations() {
    let mut org = Org::new();
    let r = create(&mut org, "jane@example.com");
    org.accept(&r.id, t0()).unwrap();
    assert_eq!(org.users().len(), 1);
    org.delete_user(&r.user_id, t0()).unwrap();
    assert!(org.users().is_empty());
    assert!(matches!(
        org.delete_user(&r.user_id, t0()),
        Err(MockError::NotFound { .. })
    ));
    let got = org.get(&r.id, t0()).unwrap();
    assert_eq!(got.status, InviteStatus::Deactivated);
    assert!(got.deleted_at.is_some());
    let again = create(&mut org, "jane@example.com");
    assert_ne!(again.user_id, r.user_id);
}

#[test]
fn seed_and_remove() {
    let mut org = Org::new();
    let (seeded, created) = org.seed("x@example.com", Some("AUTH_TYPE_FUTURE"), "u-cons", t0());
    assert!(created);
    assert_eq!(seeded.auth_type, "AUTH_TYPE_FUTURE");
    let (again, created) = org.seed("X@example.com", None, "u-cons", t0());
    assert!(!created);
    assert_eq!(again.id, seeded.id);
    org.remove(&seeded.id).unwrap();
    assert!(matches!(
        org.get(&seeded.id, t0()),
        Err(MockError::NotFound { .. })
    ));
    assert!(org.users().is_empty());
    assert!(org.remove(&seeded.id).is_err());
}

#[test]
fn ids_are_unique_and_never_reused_after_reset() {
    let mut org = Org::new();
    let mut ids = std::collections::HashSet::new();
    for i in 0..500 {
        let r = create(&mut org, &format!("u{i}@example.com"));
        assert!(ids.insert(r.id));
    }
    org.reset();
    assert!(org.all(t0()).is_empty());
    let r = create(&mut org, "u0@example.com");
    assert!(!ids.contains(&r.id));
}

#[test]
fn email_shapes() {
    assert!(looks_like_email("jane.doe+tag@sub.example.co"));
    assert!(looks_like_email("x@a-b.io"));
    assert!(!looks_like_email("a@b@c.io"));
    assert!(!looks_like_email("a@.io"));
    assert!(!looks_like_email("a@io."));
    assert!(!looks_like_email("a\n@b.io"));
}
