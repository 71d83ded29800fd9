use super::*;
use crate::ErrorLocation;

const ORG: &str = "org-1";

fn t0() -> Timestamp {
    "2026-03-01T12:00:00.750Z".parse().unwrap()
}

fn crn(rest: &str) -> String {
    format!("crn://confluent.cloud/organization={ORG}{rest}")
}

fn req(principal: &str, role: &str, crn_pattern: &str) -> CreateRoleBinding {
    CreateRoleBinding {
        principal: principal.into(),
        role_name: role.into(),
        crn_pattern: crn_pattern.into(),
    }
}

/// A binding of `role` at `rest` (below the organization) for `u-1`.
fn create(
    b: &mut RoleBindings,
    role: &str,
    rest: &str,
) -> Result<RoleBindingRecord, RoleBindingError> {
    create_for(b, "User:u-1", role, rest)
}

/// The same for another principal.
fn create_for(
    b: &mut RoleBindings,
    principal: &str,
    role: &str,
    rest: &str,
) -> Result<RoleBindingRecord, RoleBindingError> {
    b.create(&req(principal, role, &crn(rest)), ORG, true, t0())
}

fn pointer(e: RoleBindingError) -> String {
    match e {
        RoleBindingError::Request(MockError::InvalidRequest {
            at: ErrorLocation::Body(p),
            ..
        }) => p,
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_role_binds_only_at_its_scope() {
    let mut b = RoleBindings::default();
    let ok = [
        ("OrganizationAdmin", ""),
        ("MetricsViewer", ""),
        ("EnvironmentAdmin", "/environment=env-1"),
        ("MetricsViewer", "/environment=env-1"),
        (
            "CloudClusterAdmin",
            "/environment=env-1/cloud-cluster=lkc-1",
        ),
        (
            "DeveloperRead",
            "/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders",
        ),
        (
            "DeveloperWrite",
            "/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/topic=ord*",
        ),
        (
            "ResourceOwner",
            "/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/group=g",
        ),
        (
            "DeveloperRead",
            "/environment=env-1/schema-registry=lsrc-1/subject=orders-value",
        ),
        (
            "DeveloperManage",
            "/environment=env-1/cloud-cluster=lkc-1/connector=c1",
        ),
    ];
    for (role, rest) in ok {
        let r = create(&mut b, role, rest).unwrap_or_else(|e| panic!("{role} {rest}: {e}"));
        assert!(r.id.starts_with("rb-") && r.id.len() == 8, "{}", r.id);
        assert_eq!(r.created_at.to_string(), "2026-03-01T12:00:00Z");
    }
    let wrong = [
        ("DeveloperRead", "/environment=env-1/cloud-cluster=lkc-1"),
        ("EnvironmentAdmin", ""),
        ("OrganizationAdmin", "/environment=env-1"),
        (
            "CloudClusterAdmin",
            "/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/topic=t",
        ),
    ];
    for (role, rest) in wrong {
        let e = create(&mut b, role, rest).unwrap_err();
        let detail = e.to_string();
        assert!(
            detail.contains(role) && detail.contains("cannot be bound"),
            "{detail}"
        );
        assert_eq!(pointer(e), "/role_name");
    }
    assert_eq!(
        pointer(create(&mut b, "Superuser", "").unwrap_err()),
        "/role_name"
    );
    for bad in [
        "https://x",
        "crn://confluent.cloud/environment=env-1",
        "crn://confluent.cloud/organization=org-1/weird=1",
        "crn://confluent.cloud/organization=org-1//environment=e",
    ] {
        let e = b
            .create(&req("User:u-1", "EnvironmentAdmin", bad), ORG, true, t0())
            .unwrap_err();
        assert_eq!(pointer(e), "/crn_pattern", "{bad}");
    }
    let e = b
        .create(
            &req(
                "User:u-1",
                "OrganizationAdmin",
                "crn://confluent.cloud/organization=org-2",
            ),
            ORG,
            true,
            t0(),
        )
        .unwrap_err();
    assert!(matches!(e, RoleBindingError::Forbidden { .. }), "{e:?}");
}

#[test]
fn an_unknown_principal_is_forbidden_and_a_duplicate_conflicts() {
    let mut b = RoleBindings::default();
    let e = b
        .create(
            &req("User:i-abc12", "EnvironmentAdmin", &crn("/environment=e")),
            ORG,
            false,
            t0(),
        )
        .unwrap_err();
    assert!(matches!(e, RoleBindingError::Forbidden { .. }));
    let first = create(&mut b, "EnvironmentAdmin", "/environment=e").unwrap();
    // the same binding, spelt with escapes: still a duplicate
    let escaped = req(
        "User:u-1",
        "EnvironmentAdmin",
        &crn("/environment=e").replace("crn://", "crn%3A//"),
    );
    match b.create(&escaped, ORG, true, t0()) {
        Err(RoleBindingError::Duplicate { existing }) => assert_eq!(existing, first.id),
        other => panic!("{other:?}"),
    }
    // another role or principal is another binding
    create(&mut b, "DataSteward", "/environment=e").unwrap();
    create_for(&mut b, "User:u-2", "EnvironmentAdmin", "/environment=e").unwrap();
    assert_eq!(b.all().len(), 3);
}

#[test]
fn get_and_delete_answer_missing_for_an_unknown_binding() {
    let mut b = RoleBindings::default();
    let r = create(&mut b, "EnvironmentAdmin", "/environment=e").unwrap();
    assert_eq!(b.get(&r.id).unwrap(), r);
    assert_eq!(b.delete(&r.id).unwrap(), r);
    assert!(matches!(
        b.get(&r.id),
        Err(RoleBindingError::Missing { .. })
    ));
    assert!(matches!(
        b.delete(&r.id),
        Err(RoleBindingError::Missing { .. })
    ));
    // ids are never reused
    let again = create(&mut b, "EnvironmentAdmin", "/environment=e").unwrap();
    assert_ne!(again.id, r.id);
}

fn ids(b: &RoleBindings, q: RoleBindingQuery) -> Vec<String> {
    b.list(&q)
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.role_name + "@" + &r.crn_pattern)
        .collect()
}

#[test]
fn list_filters_scope_exactly_or_nested_with_a_star() {
    let mut b = RoleBindings::default();
    create(&mut b, "OrganizationAdmin", "").unwrap();
    create(&mut b, "EnvironmentAdmin", "/environment=e").unwrap();
    create(&mut b, "EnvironmentAdmin", "/environment=e2").unwrap();
    create(
        &mut b,
        "DeveloperRead",
        "/environment=e/cloud-cluster=c/kafka=c/topic=t",
    )
    .unwrap();
    create_for(&mut b, "User:u-2", "EnvironmentAdmin", "/environment=e").unwrap();
    let q = |pattern: String, principal: Option<&str>, role: Option<&str>| RoleBindingQuery {
        crn_pattern: Some(pattern),
        principal: principal.map(str::to_owned),
        role_name: role.map(str::to_owned),
        page_size: Some(100),
        page_token: None,
    };
    assert_eq!(
        ids(&b, q(crn("/environment=e"), None, None)).len(),
        2,
        "that scope only"
    );
    assert_eq!(
        ids(&b, q(crn("/environment=e"), Some("User:u-1"), None)).len(),
        1
    );
    assert_eq!(
        ids(&b, q(crn("/environment=e/*"), None, None)).len(),
        3,
        "nested, not e2"
    );
    assert_eq!(ids(&b, q(crn("/*"), Some("User:u-1"), None)).len(), 4);
    assert_eq!(
        ids(&b, q(crn("/*"), None, Some("EnvironmentAdmin"))).len(),
        3
    );
    assert!(
        ids(&b, q(crn("/environment"), None, None)).is_empty(),
        "no prefix matching"
    );
    assert!(
        ids(&b, q(crn("/*"), Some("User:u"), None)).is_empty(),
        "principal is exact"
    );
    // a percent-encoded filter reads the same
    assert_eq!(
        ids(
            &b,
            q(
                crn("/environment=e").replace("://", "%3A%2F%2F"),
                None,
                None
            )
        )
        .len(),
        2
    );
    // crn_pattern is required
    match b.list(&RoleBindingQuery::default()) {
        Err(RoleBindingError::Request(MockError::InvalidRequest {
            at: ErrorLocation::Query(p),
            ..
        })) => assert_eq!(p, "crn_pattern"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pages_follow_tokens_and_removal_by_principal() {
    let mut b = RoleBindings::default();
    for i in 0..25 {
        create(&mut b, "EnvironmentAdmin", &format!("/environment=e{i}")).unwrap();
    }
    create_for(&mut b, "User:u-2", "OrganizationAdmin", "").unwrap();
    let mut q = RoleBindingQuery {
        crn_pattern: Some(crn("/*")),
        principal: Some("User:u-1".into()),
        page_size: Some(10),
        ..Default::default()
    };
    let mut seen = 0;
    let mut pages = 0;
    loop {
        let page = b.list(&q).unwrap();
        pages += 1;
        assert_eq!(page.total_size, 25);
        seen += page.items.len();
        match page.next_token {
            Some(t) => q.page_token = Some(t),
            None => break,
        }
    }
    assert_eq!((pages, seen), (3, 25));
    b.remove_principal("User:u-1");
    assert_eq!(b.all().len(), 1);
    b.reset();
    assert!(b.all().is_empty());
}

#[test]
fn seeding_skips_validation_and_never_duplicates() {
    let mut b = RoleBindings::default();
    let anything = req(
        "Group:g-1",
        "Whatever",
        "crn://confluent.cloud/organization=elsewhere",
    );
    let (first, created) = b.seed(&anything, t0());
    assert!(created);
    let (again, created) = b.seed(&anything, t0());
    assert!(!created);
    assert_eq!(again.id, first.id);
}

#[test]
fn deleting_a_user_removes_their_bindings_and_an_invitation_deletion_does_not() {
    use crate::state::Org;
    use confluent_client::model::CreateInvitation;
    use confluent_client::role_bindings::user_principal;
    let mut org = Org::new();
    let invite = |org: &mut Org, email: &str| {
        let r = CreateInvitation {
            email: email.into(),
            auth_type: None,
        };
        org.create(&r, "u-admin1", t0()).unwrap()
    };
    let jane = invite(&mut org, "jane@example.com");
    let joe = invite(&mut org, "joe@example.com");
    for inv in [&jane, &joe] {
        let r = req(
            &user_principal(&inv.user_id),
            "EnvironmentAdmin",
            &crn("/environment=e"),
        );
        org.role_bindings.create(&r, ORG, true, t0()).unwrap();
    }
    org.delete_user(&jane.user_id, t0()).unwrap();
    let left: Vec<String> = org
        .role_bindings
        .all()
        .into_iter()
        .map(|r| r.principal)
        .collect();
    assert_eq!(left, vec![user_principal(&joe.user_id)]);
    // a deleted pending invitation leaves its invitee's bindings (undocumented: assumed)
    org.delete(&joe.id, t0()).unwrap();
    assert_eq!(org.role_bindings.all().len(), 1);
    org.reset();
    assert!(org.role_bindings.all().is_empty());
}

#[test]
fn nested_filter_matching() {
    assert!(filter_matches("a/*", "a"));
    assert!(filter_matches("a/*", "a/b=1"));
    assert!(!filter_matches("a/*", "ab"));
    assert!(filter_matches("a", "a"));
    assert!(!filter_matches("a", "a/b=1"));
}

#[test]
fn an_organization_holds_at_most_its_quota_of_bindings() {
    let mut b = RoleBindings::default();
    assert_eq!(b.quota, QUOTA);
    b.quota = 2;
    create(
        &mut b,
        "DeveloperRead",
        "/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders",
    )
    .unwrap();
    create_for(
        &mut b,
        "User:u-2",
        "DeveloperRead",
        "/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders",
    )
    .unwrap();
    let third = create_for(
        &mut b,
        "User:u-3",
        "DeveloperRead",
        "/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders",
    );
    assert!(
        matches!(third, Err(RoleBindingError::QuotaExceeded { quota: 2 })),
        "{third:?}"
    );
    // a duplicate is still a duplicate, not a quota matter
    let again = create(
        &mut b,
        "DeveloperRead",
        "/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders",
    );
    assert!(
        matches!(again, Err(RoleBindingError::Duplicate { .. })),
        "{again:?}"
    );
    // one deleted makes room
    let id = b.records.values().next().unwrap().id.clone();
    b.delete(&id).unwrap();
    create_for(
        &mut b,
        "User:u-3",
        "DeveloperRead",
        "/environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders",
    )
    .unwrap();
}
