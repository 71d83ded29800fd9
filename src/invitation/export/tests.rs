use super::*;
use confluent_client::model::ObjectMeta;

fn remote(id: &str, email: &str, status: InviteStatus, created: &str) -> RemoteInvitation {
    RemoteInvitation {
        id: Some(id.into()),
        email: Some(email.into()),
        status: Some(status),
        auth_type: Some(AUTH_TYPE_SSO.into()),
        metadata: Some(ObjectMeta {
            created_at: Some(created.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn options(statuses: Vec<StatusFilter>) -> Options {
    Options {
        namespace: "people".into(),
        deletion_policy: DeletionPolicy::Orphan,
        statuses,
    }
}

#[test]
fn names_are_valid_stable_and_distinct() {
    let label = dns_label;
    for email in [
        "jane.doe@example.com",
        "Jane.Doe@Example.com",
        "--@x.io",
        "a+b_c@x.io",
        "a-very-long-local-part-that-goes-on-and-on-and-on-forever@x.io",
    ] {
        let name = resource_name(email);
        assert!(label(&name), "{name:?} from {email:?}");
        assert_eq!(name, resource_name(email), "stable");
    }
    assert_eq!(
        resource_name("Jane.Doe@Example.com"),
        resource_name("jane.doe@example.com"),
        "emails are compared without case"
    );
    assert_ne!(
        resource_name("jane@a.example"),
        resource_name("jane@b.example")
    );
    assert!(resource_name("jane.doe@example.com").starts_with("jane-doe-"));
    assert!(resource_name("--@x.io").starts_with("invitation-"));
    // pinned: a change of the derivation would rename every exported resource
    assert_eq!(resource_name("jane@example.com"), "jane-c57b108c");
}

/// A DNS-1123 label: what every Kubernetes object name accepts.
fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[test]
fn live_invitations_are_exported_once_per_email() {
    let org = [
        remote("i-1", "a@x.io", InviteStatus::Sent, "2026-01-01T00:00:00Z"),
        remote(
            "i-2",
            "b@x.io",
            InviteStatus::Accepted,
            "2026-01-01T00:00:00Z",
        ),
        remote(
            "i-3",
            "c@x.io",
            InviteStatus::Expired,
            "2026-01-01T00:00:00Z",
        ),
        remote(
            "i-4",
            "d@x.io",
            InviteStatus::Deactivated,
            "2026-01-01T00:00:00Z",
        ),
        // an older expired one next to the live one for the same person
        remote(
            "i-5",
            "a@x.io",
            InviteStatus::Expired,
            "2025-01-01T00:00:00Z",
        ),
    ];
    let out = invitations(&org, &[], &options(vec![])).unwrap().resources;
    let emails: Vec<_> = out.iter().map(|i| i.spec.email.as_str()).collect();
    assert_eq!(emails.len(), 2);
    assert!(emails.contains(&"a@x.io") && emails.contains(&"b@x.io"));
    for i in &out {
        assert_eq!(i.metadata.namespace.as_deref(), Some("people"));
        assert_eq!(i.spec.deletion_policy, DeletionPolicy::Orphan);
        assert_eq!(i.spec.auth_type, Some(AuthType::Sso));
    }
    let expired = invitations(&org, &[], &options(vec![StatusFilter::Expired]))
        .unwrap()
        .resources;
    assert!(!StatusFilter::Expired.adoptable() && StatusFilter::Sent.adoptable());
    let mut emails: Vec<_> = expired.iter().map(|i| i.spec.email.as_str()).collect();
    emails.sort_unstable();
    assert_eq!(
        emails,
        ["a@x.io", "c@x.io"],
        "the filter picks the expired ones"
    );
}

#[test]
fn the_yaml_reads_back_as_the_same_resources() {
    let org = [
        remote("i-1", "a@x.io", InviteStatus::Sent, "2026-01-01T00:00:00Z"),
        remote(
            "i-2",
            "b@x.io",
            InviteStatus::Staged,
            "2026-01-01T00:00:00Z",
        ),
    ];
    let out = invitations(&org, &[], &options(vec![])).unwrap().resources;
    let yaml = render(&out).unwrap();
    let back: Vec<Invitation> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str(d).unwrap())
        .collect();
    assert_eq!(back, out);
    assert!(!yaml.contains("status"), "{yaml}");
    assert!(yaml.contains("deletionPolicy: Orphan"), "{yaml}");
}
const ORG: &str = "org-1";

fn invitee(id: &str, email: &str, user: &str) -> RemoteInvitation {
    let mut inv = remote(id, email, InviteStatus::Sent, "2026-01-01T00:00:00Z");
    inv.user = Some(confluent_client::model::ObjectReference {
        id: Some(user.into()),
        ..Default::default()
    });
    if let Some(m) = inv.metadata.as_mut() {
        m.resource_name = Some(format!(
            "crn://confluent.cloud/organization={ORG}/invitation={id}"
        ));
    }
    inv
}

fn binding(id: &str, principal: &str, role: &str, crn: &str) -> RemoteRoleBinding {
    RemoteRoleBinding {
        id: Some(id.into()),
        principal: Some(principal.into()),
        role_name: Some(role.into()),
        crn_pattern: Some(crn.into()),
        ..Default::default()
    }
}

fn abs(rest: &str) -> String {
    format!("crn://confluent.cloud/organization={ORG}{rest}")
}

fn items(i: &Invitation) -> Vec<(&str, &str)> {
    i.spec
        .role_bindings
        .iter()
        .map(|b| (b.role_name.as_str(), b.crn_pattern.as_str()))
        .collect()
}

#[test]
fn bindings_are_one_organization_wide_list() {
    let org = [invitee("i-1", "a@x.io", "u-1")];
    let filter = role_binding_filter(&org).unwrap();
    assert_eq!(
        filter,
        RoleBindingFilter::scope(format!("crn://confluent.cloud/organization={ORG}/*"))
    );
    assert_eq!(
        role_binding_filter(&[]),
        None,
        "nothing listed, nothing to ask"
    );
    let no_crn = [remote(
        "i-1",
        "a@x.io",
        InviteStatus::Sent,
        "2026-01-01T00:00:00Z",
    )];
    assert_eq!(role_binding_filter(&no_crn), None);
}

#[test]
fn each_invitee_lists_its_own_bindings_relative_to_the_organization() {
    let org = [
        invitee("i-1", "a@x.io", "u-1"),
        invitee("i-2", "b@x.io", "u-2"),
        invitee("i-3", "c@x.io", "u-3"),
    ];
    let topic = "/environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders";
    let bindings = [
        binding("rb-1", "User:u-1", "DeveloperRead", &abs(topic)),
        binding(
            "rb-2",
            "User:u-1",
            "EnvironmentAdmin",
            &abs("/environment=env-abc"),
        ),
        binding("rb-3", "User:u-1", "MetricsViewer", &abs("")),
        binding(
            "rb-4",
            "User:u-1",
            "CloudClusterAdmin",
            &abs("/environment=env-abc/cloud-cluster=lkc-1"),
        ),
        // the same binding again, percent-encoded as the server has answered: listed once
        binding(
            "rb-1",
            "User:u-1",
            "DeveloperRead",
            &abs(topic).replace("crn:", "crn%3A"),
        ),
        binding(
            "rb-5",
            "User:u-2",
            "DeveloperRead",
            &abs(&format!("{topic}-*")),
        ),
        // not an exported invitee's: a group, another user
        binding(
            "rb-6",
            "Group:g-1",
            "EnvironmentAdmin",
            &abs("/environment=env-abc"),
        ),
        binding(
            "rb-7",
            "User:u-9",
            "EnvironmentAdmin",
            &abs("/environment=env-abc"),
        ),
    ];
    let out = invitations(&org, &bindings, &options(vec![])).unwrap();
    assert!(out.left_out.is_empty(), "{:?}", out.left_out);
    let by_email = |e: &str| out.resources.iter().find(|i| i.spec.email == e).unwrap();
    let a = by_email("a@x.io");
    assert_eq!(
        items(a),
        [
            ("MetricsViewer", "organization=org-1"),
            ("EnvironmentAdmin", "environment=env-abc"),
            (
                "CloudClusterAdmin",
                "environment=env-abc/cloud-cluster=lkc-1"
            ),
            (
                "DeveloperRead",
                "environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders"
            ),
        ],
        "widest scope first"
    );
    assert_eq!(
        items(by_email("b@x.io")),
        [(
            "DeveloperRead",
            "environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders-*"
        )]
    );
    assert!(by_email("c@x.io").spec.role_bindings.is_empty());
    for i in &out.resources {
        assert!(
            !i.spec.exclusive_role_bindings,
            "an export never takes bindings away"
        );
        for item in &i.spec.role_bindings {
            assert!(fits_schema(item), "{item:?}");
            let back = crate::role_bindings::resolve(&item.crn_pattern, Some(ORG)).unwrap();
            assert!(
                bindings
                    .iter()
                    .any(|b| b.crn_pattern.as_deref() == Some(back.as_str())),
                "{back} resolves back to a listed CRN"
            );
        }
    }
    let yaml = render(&out.resources).unwrap();
    assert!(yaml.contains("crnPattern: environment=env-abc"), "{yaml}");
    let bare = invitations(&org, &[], &options(vec![])).unwrap();
    assert!(
        bare.resources
            .iter()
            .all(|i| i.spec.role_bindings.is_empty()),
        "no list, no bindings"
    );
}

#[test]
fn bindings_a_manifest_cannot_hold_are_reported() {
    let org = [invitee("i-1", "a@x.io", "u-1")];
    let mut bindings: Vec<_> = (0..MAX_ROLE_BINDINGS + 2)
        .map(|n| {
            binding(
                &format!("rb-{n}"),
                "User:u-1",
                "DeveloperRead",
                &abs(&format!(
                    "/environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=t{n:03}"
                )),
            )
        })
        .collect();
    bindings.push(binding(
        "rb-odd",
        "User:u-1",
        "DeveloperRead",
        &abs("/environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=a b"),
    ));
    let out = invitations(&org, &bindings, &options(vec![])).unwrap();
    assert_eq!(out.resources[0].spec.role_bindings.len(), MAX_ROLE_BINDINGS);
    let why: Vec<_> = out
        .left_out
        .iter()
        .map(|l| (l.id.as_str(), l.why))
        .collect();
    assert_eq!(
        why,
        [
            ("rb-odd", LeftOutReason::Unrepresentable),
            ("rb-50", LeftOutReason::TooMany),
            ("rb-51", LeftOutReason::TooMany),
        ]
    );
    let line = out.left_out[0].to_string();
    assert!(
        line.starts_with("a@x.io: role binding rb-odd (DeveloperRead on "),
        "{line}"
    );
}

#[test]
fn the_schema_check_agrees_with_the_crd() {
    use crate::role_bindings::resource::{ROLE_BINDING_CRN_PATTERN, ROLE_NAME_PATTERN};
    let crn = regex::Regex::new(ROLE_BINDING_CRN_PATTERN).unwrap();
    let role = regex::Regex::new(ROLE_NAME_PATTERN).unwrap();
    let long = format!(
        "environment=env-1/cloud-cluster=lkc-1/kafka=lkc-1/topic={}",
        "t".repeat(500)
    );
    for pattern in [
        "organization=org-1",
        "environment=env-abc",
        "environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders-*",
        "crn://confluent.cloud/organization=o/environment=e",
        "crn://confluent.cloud/environment=e",
        "organization=o/environment=e/Topic=x",
        "environment=e/topic=a b",
        "environment=e/topic=a=b",
        "environment=e//topic=a",
        "cloud-cluster=lkc-1",
        "environment=",
        "environment=e1",
        &long,
    ] {
        for role_name in ["DeveloperRead", "9Lives", "Role-X", ""] {
            let item = RoleBinding {
                role_name: role_name.into(),
                crn_pattern: pattern.to_owned(),
            };
            let schema = role.is_match(role_name)
                && role_name.len() <= MAX_ROLE_NAME_LENGTH
                && crn.is_match(pattern)
                && (MIN_CRN_PATTERN_LENGTH..=MAX_CRN_PATTERN_LENGTH as usize)
                    .contains(&pattern.len());
            assert_eq!(fits_schema(&item), schema, "{item:?}");
        }
    }
    let spec = serde_json::to_value(schemars::schema_for!(InvitationSpec)).unwrap();
    let list = &spec["properties"]["roleBindings"];
    assert_eq!(list["maxItems"], MAX_ROLE_BINDINGS);
    let item = serde_json::to_value(schemars::schema_for!(RoleBinding)).unwrap();
    assert_eq!(
        item["properties"]["crnPattern"]["minLength"],
        MIN_CRN_PATTERN_LENGTH
    );
    assert_eq!(
        item["properties"]["roleName"]["maxLength"],
        MAX_ROLE_NAME_LENGTH
    );
}

/// An InvitationPolicy named `name` with `spec` (its selector given or not).
fn policy(name: &str, mut spec: serde_json::Value) -> InvitationPolicy {
    spec.as_object_mut()
        .expect("an object")
        .entry("namespaceSelector")
        .or_insert(serde_json::json!({}));
    InvitationPolicy::new(name, serde_json::from_value(spec).expect("a policy spec"))
}

#[test]
fn an_import_is_told_what_the_policies_would_refuse() {
    let team = policy(
        "team",
        serde_json::json!({"grants": [{"roles": ["EnvironmentAdmin"], "scopes": ["environment=env-a"]}]}),
    );
    let other = policy(
        "other",
        serde_json::json!({"protectedEmails": ["boss@example.com"],
            "grants": [{"roles": ["DeveloperRead"], "scopes": ["environment=env-b"]}]}),
    );
    let item = |role: &str, crn: &str| RoleBinding {
        role_name: role.into(),
        crn_pattern: crn.into(),
    };
    let jane = Invitation::new(
        "jane",
        InvitationSpec {
            role_bindings: vec![
                item("EnvironmentAdmin", "environment=env-a"),
                item("DeveloperRead", "environment=env-b"),
                item("OrganizationAdmin", "organization=org-1"),
            ],
            ..InvitationSpec::of_email("jane@example.com")
        },
    );
    let boss = Invitation::new("boss", InvitationSpec::of_email("Boss@example.com"));
    let resources = [jane, boss];
    let all = [&team, &other];
    let org = Some("org-1");
    // into a namespace `team` selects: its refusals, in its words
    let notes = policy_notes(&resources, org, Some(&[&team]), &all);
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert!(
        notes[0]
            .starts_with("jane@example.com: DeveloperRead on environment=env-b would be Refused"),
        "{notes:#?}"
    );
    assert!(notes[0].contains("team"), "{notes:#?}");
    assert!(
        notes[1].starts_with("jane@example.com: OrganizationAdmin on organization=org-1"),
        "{notes:#?}"
    );
    // into a namespace both select: the protected email is refused whole
    let notes = policy_notes(&resources, org, Some(&[&team, &other]), &all);
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("Boss@example.com would be refused (PrincipalProtected)")),
        "{notes:#?}"
    );
    // into a namespace that does not exist yet: what no policy permits anywhere
    let notes = policy_notes(&resources, org, None, &all);
    assert_eq!(
        notes,
        vec!["jane@example.com: OrganizationAdmin on organization=org-1: no InvitationPolicy would permit it".to_owned()]
    );
    // no policy in the cluster: nothing to say
    assert!(policy_notes(&resources, org, None, &[]).is_empty());
}
