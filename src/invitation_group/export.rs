//! Pure: `export --groups`: exported Invitations whose invitees share the same access become
//! one InvitationGroup each, so an organization migrates as its teams rather than person by
//! person.
//!
//! Members go together when their Invitations agree on everything a group sets for all of
//! them: the same role bindings (in any order), auth type and deletion policy. An Invitation
//! without role bindings, or whose access nobody shares, stays an Invitation.

use std::collections::BTreeMap;

use super::resource::{InvitationGroup, InvitationGroupSpec};
use crate::invitation::resource::Invitation;
use crate::role_bindings::resource::RoleBinding;
use crate::runtime::hash;

/// The fewest members a group is made for.
const MIN_MEMBERS: usize = 2;

/// What `export --groups` prints: the groups, and the Invitations left as they are.
#[derive(Debug, Default)]
pub struct Grouped {
    pub groups: Vec<InvitationGroup>,
    pub invitations: Vec<Invitation>,
}

/// Groups `exported` (one namespace's Invitations, as `export` makes them).
pub fn grouped(exported: Vec<Invitation>) -> Grouped {
    let mut by_access: BTreeMap<String, Vec<Invitation>> = BTreeMap::new();
    let mut out = Grouped::default();
    for invitation in exported {
        if invitation.spec.role_bindings.is_empty() {
            out.invitations.push(invitation);
            continue;
        }
        by_access
            .entry(access_key(&invitation))
            .or_default()
            .push(invitation);
    }
    for (key, mut members) in by_access {
        if members.len() < MIN_MEMBERS {
            out.invitations.append(&mut members);
            continue;
        }
        members.sort_by(|a, b| {
            a.spec
                .email
                .to_ascii_lowercase()
                .cmp(&b.spec.email.to_ascii_lowercase())
        });
        let first = &members[0];
        let spec = InvitationGroupSpec {
            members: members.iter().map(|m| m.spec.email.clone()).collect(),
            role_bindings: sorted(&first.spec.role_bindings),
            exclusive_role_bindings: false,
            auth_type: first.spec.auth_type,
            credentials_secret_ref: None,
            reinvite_on_expiry: false,
            member_removal_policy: first.spec.deletion_policy,
            max_removals_per_sync: 5,
        };
        let name = format!("team-{}", &hash::sha256_hex(key.as_bytes())[..10]);
        let mut group = InvitationGroup::new(&name, spec);
        group.metadata.namespace = first.metadata.namespace.clone();
        out.groups.push(group);
    }
    out.groups.sort_by_key(|g| g.metadata.name.clone());
    out.invitations.sort_by_key(|i| i.metadata.name.clone());
    out
}

fn sorted(items: &[RoleBinding]) -> Vec<RoleBinding> {
    let mut items = items.to_vec();
    items.sort_by(|a, b| (&a.role_name, &a.crn_pattern).cmp(&(&b.role_name, &b.crn_pattern)));
    items
}

/// What members of one group share, as one string: the sorted bindings, auth type and
/// deletion policy.
fn access_key(invitation: &Invitation) -> String {
    let bindings: Vec<String> = sorted(&invitation.spec.role_bindings)
        .iter()
        .map(|b| format!("{}\u{1f}{}", b.role_name, b.crn_pattern))
        .collect();
    format!(
        "{}\u{1e}{:?}\u{1e}{:?}",
        bindings.join("\u{1d}"),
        invitation.spec.auth_type,
        invitation.spec.deletion_policy
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invitation::resource::{AuthType, DeletionPolicy, InvitationSpec};

    fn exported(email: &str, bindings: &[(&str, &str)], auth: Option<AuthType>) -> Invitation {
        let spec = InvitationSpec {
            auth_type: auth,
            deletion_policy: DeletionPolicy::Orphan,
            role_bindings: bindings
                .iter()
                .map(|(r, p)| {
                    serde_json::from_value(serde_json::json!({"roleName": r, "crnPattern": p}))
                        .unwrap()
                })
                .collect(),
            ..InvitationSpec::of_email(email)
        };
        let mut i = Invitation::new(&format!("inv-{}", &email[..1]), spec);
        i.metadata.namespace = Some("team-a".into());
        i
    }

    #[test]
    fn members_sharing_access_become_one_group_and_the_rest_stay_invitations() {
        let read = ("DeveloperRead", "environment=env-1");
        let write = ("DeveloperWrite", "environment=env-1");
        let out = grouped(vec![
            exported("bo@example.com", &[write, read], None),
            exported("ana@example.com", &[read, write], None),
            exported("cy@example.com", &[read], None),
            exported("dee@example.com", &[], None),
            exported("eve@example.com", &[read, write], Some(AuthType::Local)),
            exported("fay@example.com", &[read], None),
        ]);
        let members: Vec<Vec<&str>> = out
            .groups
            .iter()
            .map(|g| g.spec.members.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(members.len(), 2, "{members:?}");
        assert!(
            members.contains(&vec!["ana@example.com", "bo@example.com"]),
            "{members:?}"
        );
        assert!(
            members.contains(&vec!["cy@example.com", "fay@example.com"]),
            "{members:?}"
        );
        let left: Vec<&str> = out
            .invitations
            .iter()
            .map(|i| i.spec.email.as_str())
            .collect();
        assert_eq!(left, vec!["dee@example.com", "eve@example.com"]);
        for g in &out.groups {
            assert_eq!(g.metadata.namespace.as_deref(), Some("team-a"));
            assert_eq!(
                g.spec.member_removal_policy,
                DeletionPolicy::Orphan,
                "the export's policy"
            );
            assert!(
                g.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("team-"))
            );
        }
        // the same access names the same group, run after run
        let again = grouped(vec![
            exported("ana@example.com", &[read, write], None),
            exported("bo@example.com", &[read, write], None),
        ]);
        assert!(
            out.groups
                .iter()
                .any(|g| g.metadata.name == again.groups[0].metadata.name)
        );
    }
}
