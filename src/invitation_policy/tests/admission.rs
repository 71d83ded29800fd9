//! `admit`, `protected_by`, `deletion_under`, `grant_refusal` and `on_disallowed` over the
//! applying policies.

use serde_json::json;

use super::{ORG, abs, policy};
use crate::invitation::resource::{DeletionPolicy, InvitationSpec};
use crate::invitation_policy::{
    Deletion, InvitationPolicy, admit, deletion_under, grant_refusal, on_disallowed, protected_by,
};
use crate::reason;
use crate::role_bindings::OnDisallowed;

#[test]
fn admit_table() {
    let open = policy("open", json!({"namespaceSelector": {}}));
    let domains = policy(
        "domains",
        json!({"namespaceSelector": {}, "allowedEmailDomains": ["Example.com"]}),
    );
    let other_domains = policy(
        "a-domains",
        json!({"namespaceSelector": {}, "allowedEmailDomains": ["corp.io"]}),
    );
    let protects = policy(
        "protects",
        json!({"namespaceSelector": {}, "protectedEmails": ["Owner@Example.com"]}),
    );
    let delete_user = policy(
        "delete-user",
        json!({"namespaceSelector": {}, "allowedDeletionPolicies": ["Delete", "Orphan", "DeleteUser"]}),
    );
    let delete_only = policy(
        "delete-only",
        json!({"namespaceSelector": {}, "allowedDeletionPolicies": ["Delete"]}),
    );
    let exclusive = policy(
        "exclusive",
        json!({"namespaceSelector": {}, "allowExclusiveRoleBindings": true, "allowedDeletionPolicies": ["Delete", "Orphan", "DeleteUser"]}),
    );
    let spec = |email: &str| InvitationSpec::of_email(email);
    let with_policy = |email: &str, d: DeletionPolicy| InvitationSpec {
        deletion_policy: d,
        ..spec(email)
    };
    let excl = |email: &str| InvitationSpec {
        exclusive_role_bindings: true,
        ..spec(email)
    };
    type Want = Result<(), (&'static str, &'static [&'static str])>;
    let cases: Vec<(&str, Vec<&InvitationPolicy>, bool, InvitationSpec, Want)> = vec![
        (
            "no policy, none required: today's behaviour",
            vec![],
            false,
            excl("jane@any.io"),
            Ok(()),
        ),
        (
            "no policy, one required",
            vec![],
            true,
            spec("jane@any.io"),
            Err((reason::POLICY_MISSING, &["no InvitationPolicy selects"])),
        ),
        (
            "a policy of defaults",
            vec![&open],
            true,
            spec("jane@any.io"),
            Ok(()),
        ),
        (
            "a protected email, in another case",
            vec![&protects],
            false,
            spec("owner@example.COM"),
            Err((
                reason::PRINCIPAL_PROTECTED,
                &["owner@example.COM", "protects"],
            )),
        ),
        (
            "protection is checked before domains",
            vec![&other_domains, &protects],
            false,
            spec("owner@example.com"),
            Err((reason::PRINCIPAL_PROTECTED, &["protects"])),
        ),
        (
            "an unprotected email",
            vec![&protects],
            false,
            spec("jane@example.com"),
            Ok(()),
        ),
        (
            "an allowed domain, in another case",
            vec![&domains],
            false,
            spec("jane@EXAMPLE.com"),
            Ok(()),
        ),
        (
            "a domain not allowed",
            vec![&domains],
            false,
            spec("jane@evil.io"),
            Err((
                reason::EMAIL_DOMAIN_NOT_ALLOWED,
                &["\"evil.io\"", "domains", "Example.com"],
            )),
        ),
        (
            "a subdomain is not implied",
            vec![&domains],
            false,
            spec("jane@eu.example.com"),
            Err((reason::EMAIL_DOMAIN_NOT_ALLOWED, &["domains"])),
        ),
        (
            "two domain lists: both must allow",
            vec![&domains, &other_domains],
            false,
            spec("jane@example.com"),
            Err((reason::EMAIL_DOMAIN_NOT_ALLOWED, &["a-domains", "corp.io"])),
        ),
        (
            "DeleteUser is not allowed by default",
            vec![&open],
            false,
            with_policy("jane@x.io", DeletionPolicy::DeleteUser),
            Err((
                reason::POLICY_VIOLATION,
                &["DeleteUser", "open", "Delete, Orphan"],
            )),
        ),
        (
            "DeleteUser when listed",
            vec![&delete_user],
            false,
            with_policy("jane@x.io", DeletionPolicy::DeleteUser),
            Ok(()),
        ),
        (
            "DeleteUser listed by one of two",
            vec![&delete_user, &open],
            false,
            with_policy("jane@x.io", DeletionPolicy::DeleteUser),
            Err((reason::POLICY_VIOLATION, &["InvitationPolicy open"])),
        ),
        (
            "Orphan not listed",
            vec![&delete_only],
            false,
            with_policy("jane@x.io", DeletionPolicy::Orphan),
            Err((
                reason::POLICY_VIOLATION,
                &["Orphan", "delete-only", "(allowedDeletionPolicies: Delete)"],
            )),
        ),
        (
            "exclusiveRoleBindings is not allowed by default",
            vec![&open],
            false,
            excl("jane@x.io"),
            Err((reason::POLICY_VIOLATION, &["exclusiveRoleBindings", "open"])),
        ),
        (
            "exclusiveRoleBindings when allowed",
            vec![&exclusive],
            false,
            excl("jane@x.io"),
            Ok(()),
        ),
        (
            "exclusiveRoleBindings allowed by one of two",
            vec![&exclusive, &delete_user],
            false,
            excl("jane@x.io"),
            Err((reason::POLICY_VIOLATION, &["delete-user"])),
        ),
        (
            "the deletion policy is checked before exclusiveness",
            vec![&open],
            false,
            InvitationSpec {
                exclusive_role_bindings: true,
                ..with_policy("jane@x.io", DeletionPolicy::DeleteUser)
            },
            Err((reason::POLICY_VIOLATION, &["deletionPolicy"])),
        ),
    ];
    for (why, applying, require, spec, want) in cases {
        match (admit(&applying, require, &spec), want) {
            (Ok(()), Ok(())) => {}
            (Err(got), Err((reason, words))) => {
                assert_eq!(got.reason, reason, "{why}: {got:?}");
                for w in words {
                    assert!(
                        got.message.contains(w),
                        "{why}: {w:?} not in {:?}",
                        got.message
                    );
                }
            }
            (got, want) => panic!("{why}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn protected_by_names_the_first_protecting_policy() {
    let b = policy(
        "b",
        json!({"namespaceSelector": {}, "protectedEmails": ["owner@example.com"]}),
    );
    let a = policy(
        "a",
        json!({"namespaceSelector": {}, "protectedEmails": ["OWNER@example.com"]}),
    );
    let open = policy("open", json!({"namespaceSelector": {}}));
    assert_eq!(protected_by(&[&b, &a], "Owner@Example.com"), Some("a"));
    assert_eq!(protected_by(&[&b, &open], "owner@example.com"), Some("b"));
    assert_eq!(protected_by(&[&open], "owner@example.com"), None);
    assert_eq!(protected_by(&[&b], "owner2@example.com"), None);
    assert_eq!(protected_by(&[], "owner@example.com"), None);
}

/// What a deletion must come to, in [`deletion_under_table`].
#[derive(Debug)]
enum Want {
    AsSpecified,
    Untouched,
    Instead(DeletionPolicy),
}

/// (why, applying, the spec's deletionPolicy, what applies).
type DeletionRow<'a> = (&'a str, Vec<&'a InvitationPolicy>, DeletionPolicy, Want);

/// A deletion goes as specified where every policy allows it; else the first of Delete, Orphan,
/// DeleteUser that every policy allows (Delete first: it removes what the Invitation
/// recorded), else Orphan; a protected email is not touched whatever the policy.
#[test]
fn deletion_under_table() {
    use DeletionPolicy::{Delete, DeleteUser, Orphan};
    let allowing = |name: &str, allowed: &[DeletionPolicy]| {
        policy(
            name,
            json!({"namespaceSelector": {}, "allowedDeletionPolicies": allowed}),
        )
    };
    let default = policy("default", json!({"namespaceSelector": {}}));
    let orphan_only = allowing("orphan-only", &[Orphan]);
    let user = allowing("user", &[DeleteUser]);
    let protecting = policy(
        "protecting",
        json!({"namespaceSelector": {}, "protectedEmails": ["jane@example.com"]}),
    );
    let table: Vec<DeletionRow> = vec![
        ("no policy", vec![], DeleteUser, Want::AsSpecified),
        (
            "allowed by default",
            vec![&default],
            Delete,
            Want::AsSpecified,
        ),
        (
            "Orphan allowed by default",
            vec![&default],
            Orphan,
            Want::AsSpecified,
        ),
        (
            "DeleteUser gives way to Delete",
            vec![&default],
            DeleteUser,
            Want::Instead(Delete),
        ),
        (
            "Delete gives way to Orphan",
            vec![&orphan_only],
            Delete,
            Want::Instead(Orphan),
        ),
        (
            "Orphan gives way to the one allowed",
            vec![&user],
            Orphan,
            Want::Instead(DeleteUser),
        ),
        (
            "none allowed by both: Orphan",
            vec![&orphan_only, &user],
            Delete,
            Want::Instead(Orphan),
        ),
        (
            "protected: untouched",
            vec![&default, &protecting],
            Delete,
            Want::Untouched,
        ),
    ];
    for (why, applying, deletion_policy, want) in table {
        let spec = InvitationSpec {
            deletion_policy,
            ..InvitationSpec::of_email("Jane@Example.com")
        };
        let got = deletion_under(&applying, &spec);
        match (&got, &want) {
            (Deletion::AsSpecified, Want::AsSpecified) => {}
            (Deletion::Untouched(r), Want::Untouched) => {
                assert_eq!(r.reason, reason::PRINCIPAL_PROTECTED, "{why}");
                assert!(r.message.contains("protecting"), "{why}: {r:?}");
            }
            (Deletion::Instead(p, r), Want::Instead(want)) => {
                assert_eq!(p, want, "{why}");
                assert_eq!(r.reason, reason::POLICY_VIOLATION, "{why}");
                assert!(
                    r.message.contains(&format!("deleted as {want:?}")),
                    "{why}: {r:?}"
                );
            }
            _ => panic!("{why}: {got:?}, want {want:?}"),
        }
    }
}

/// (why, applying, role, pattern, `None` or the words of the refusal).
type GrantRow<'a> = (
    &'a str,
    Vec<&'a InvitationPolicy>,
    &'a str,
    String,
    Option<&'a [&'a str]>,
);

#[test]
fn grant_refusal_table() {
    const TEAM_A_TOPICS: &str = "environment=env-a/cloud-cluster=lkc-1/kafka=lkc-1/topic=team-a-*";
    let team_a = policy(
        "team-a",
        json!({"namespaceSelector": {}, "grants": [
            {"roles": ["DeveloperRead", "DeveloperWrite"], "scopes": [TEAM_A_TOPICS]},
            {"roles": ["EnvironmentAdmin"], "scopes": ["environment=env-a"]},
            {"roles": ["DeveloperRead"], "scopes": [TEAM_A_TOPICS, "environment=env-b"]},
        ]}),
    );
    let shared = policy(
        "shared",
        json!({"namespaceSelector": {}, "grants": [{"roles": ["DeveloperRead"], "scopes": ["environment=env-a"]}]}),
    );
    let none = policy("none", json!({"namespaceSelector": {}}));
    let topic = |name: &str| {
        abs(&format!(
            "~/environment=env-a/cloud-cluster=lkc-1/kafka=lkc-1/topic={name}"
        ))
    };
    let cases: Vec<GrantRow> = vec![
        (
            "no applying policy",
            vec![],
            "OrganizationAdmin",
            abs("~"),
            None,
        ),
        (
            "a granted role on a covered topic",
            vec![&team_a],
            "DeveloperRead",
            topic("team-a-orders"),
            None,
        ),
        (
            "a granted role on a second grant's scope",
            vec![&team_a],
            "DeveloperRead",
            abs("~/environment=env-b"),
            None,
        ),
        (
            "a granted role on another team's topic",
            vec![&team_a],
            "DeveloperRead",
            topic("team-b-orders"),
            Some(&[
                "team-a",
                "grants role DeveloperRead only on",
                "topic=team-a-*, environment=env-b",
                "topic=team-b-orders",
            ]),
        ),
        (
            "a role granted nowhere",
            vec![&team_a],
            "OrganizationAdmin",
            abs("~"),
            Some(&[
                "team-a does not grant role OrganizationAdmin",
                "(it grants DeveloperRead, DeveloperWrite, EnvironmentAdmin)",
            ]),
        ),
        (
            "roles are matched exactly",
            vec![&team_a],
            "developerread",
            topic("team-a-orders"),
            Some(&["does not grant role developerread"]),
        ),
        (
            "an environment role on its environment",
            vec![&team_a],
            "EnvironmentAdmin",
            abs("~/environment=env-a"),
            None,
        ),
        (
            "an environment role on a sibling",
            vec![&team_a],
            "EnvironmentAdmin",
            abs("~/environment=env-ab"),
            Some(&["grants role EnvironmentAdmin only on environment=env-a,"]),
        ),
        (
            "an environment role on the organization",
            vec![&team_a],
            "EnvironmentAdmin",
            abs("~"),
            Some(&["only on environment=env-a"]),
        ),
        (
            "no grants at all",
            vec![&none],
            "DeveloperRead",
            topic("x"),
            Some(&["none grants no role bindings", "DeveloperRead"]),
        ),
        (
            "both policies grant it",
            vec![&team_a, &shared],
            "DeveloperRead",
            topic("team-a-x"),
            None,
        ),
        (
            "the second does not grant the role",
            vec![&team_a, &shared],
            "DeveloperWrite",
            topic("team-a-x"),
            Some(&["shared does not grant role DeveloperWrite (it grants DeveloperRead)"]),
        ),
        (
            "the first by name refuses the scope",
            vec![&shared, &team_a],
            "DeveloperRead",
            topic("other"),
            Some(&["team-a grants role DeveloperRead only on"]),
        ),
        (
            "both refuse: the first by name is named",
            vec![&team_a, &shared],
            "EnvironmentAdmin",
            abs("~/environment=env-c"),
            Some(&["shared does not grant role EnvironmentAdmin"]),
        ),
        (
            "both refuse, in the other order",
            vec![&shared, &team_a],
            "EnvironmentAdmin",
            abs("~/environment=env-c"),
            Some(&["shared does not grant role EnvironmentAdmin"]),
        ),
        (
            "another organization",
            vec![&shared],
            "DeveloperRead",
            "crn://confluent.cloud/organization=org-2/environment=env-a".into(),
            Some(&["shared grants role DeveloperRead only on environment=env-a"]),
        ),
    ];
    for (why, applying, role, pattern, want) in cases {
        let got = grant_refusal(&applying, role, &pattern, ORG);
        match (got, want) {
            (None, None) => {}
            (Some(got), Some(words)) => {
                for w in words {
                    assert!(got.contains(w), "{why}: {w:?} not in {got:?}");
                }
            }
            (got, want) => panic!("{why}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn on_disallowed_table() {
    let keep = policy("keep", json!({"namespaceSelector": {}}));
    let keep_explicit = policy(
        "keep-explicit",
        json!({"namespaceSelector": {}, "onDisallowedExisting": "Keep"}),
    );
    let revoke = policy(
        "revoke",
        json!({"namespaceSelector": {}, "onDisallowedExisting": "Revoke"}),
    );
    let cases: Vec<(Vec<&InvitationPolicy>, OnDisallowed)> = vec![
        (vec![], OnDisallowed::Keep),
        (vec![&keep], OnDisallowed::Keep),
        (vec![&keep, &keep_explicit], OnDisallowed::Keep),
        (vec![&revoke], OnDisallowed::Revoke),
        (vec![&keep, &revoke], OnDisallowed::Revoke),
        (vec![&revoke, &keep_explicit], OnDisallowed::Revoke),
    ];
    for (applying, want) in cases {
        let names: Vec<&str> = applying.iter().map(|p| p.name()).collect();
        assert_eq!(on_disallowed(&applying), want, "{names:?}");
    }
}
