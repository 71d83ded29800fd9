//! `confluent-invitation-operator export`: the organization's invitations as Invitation
//! manifests, ready for a Git repository, each with the invitee's role bindings as
//! `spec.roleBindings`. Applying them adopts every invitation by email (the planner's Adopt)
//! and every listed binding that exists (the role-binding planner's adoption), so nothing is
//! re-sent or re-created. Pure: listing is the caller's job.

use std::collections::{BTreeMap, HashMap};

use crate::invitation::resource::{AuthType, DeletionPolicy, Invitation, InvitationSpec};

use crate::role_bindings::organization_crn;
use crate::role_bindings::resource::{MAX_CRN_PATTERN_LENGTH, RoleBinding};
use confluent_client::model::{AUTH_TYPE_LOCAL, AUTH_TYPE_SSO, InviteStatus, RemoteInvitation};
use confluent_client::role_bindings::organization_of;
use confluent_client::role_bindings::{
    CRN_PREFIX, RemoteRoleBinding, RoleBindingFilter, decoded_crn, user_principal,
};

/// Longest part of a name taken from the email's local part; with the hash suffix the name
/// stays well inside a DNS-1123 label (63).
const MAX_STEM: usize = 40;

/// The most `spec.roleBindings` items the CRD accepts (its schema's `maxItems`; a unit test
/// keeps the two equal).
const MAX_ROLE_BINDINGS: usize = 50;

/// The shortest `crnPattern` the CRD accepts (its schema's `minLength`).
const MIN_CRN_PATTERN_LENGTH: usize = 13;

/// The longest `roleName` the CRD accepts (its schema's `maxLength`).
const MAX_ROLE_NAME_LENGTH: usize = 64;

/// What can stop an export.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two different emails gave the same resource name (a hash collision).
    #[error("{0} and {1} would both be named {2}; rename one manifest by hand")]
    NameCollision(String, String, String),
    /// A manifest could not be rendered as YAML.
    #[error("rendering the manifest of {0}: {1}")]
    Render(String, String),
}

/// A remote status the `--status` filter can select, in the CLI's spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFilter {
    Sent,
    Staged,
    Accepted,
    Expired,
    Deactivated,
}

impl StatusFilter {
    /// The statuses of invitations that stand (the default selection).
    pub const LIVE: [StatusFilter; 3] = [Self::Sent, Self::Staged, Self::Accepted];

    /// Whether applying a manifest of this status adopts the invitation. Expired and
    /// deactivated invitations are history to the planner, not candidates: applying their
    /// manifests sends new invitations.
    pub fn adoptable(self) -> bool {
        Self::LIVE.contains(&self)
    }

    fn matches(self, status: Option<&InviteStatus>) -> bool {
        matches!(
            (self, status),
            (Self::Sent, Some(InviteStatus::Sent))
                | (Self::Staged, Some(InviteStatus::Staged))
                | (Self::Accepted, Some(InviteStatus::Accepted))
                | (Self::Expired, Some(InviteStatus::Expired))
                | (Self::Deactivated, Some(InviteStatus::Deactivated))
        )
    }
}

/// How the manifests are written.
#[derive(Clone, Debug)]
pub struct Options {
    pub namespace: String,
    pub deletion_policy: DeletionPolicy,
    /// Statuses to export (empty: [`StatusFilter::LIVE`]).
    pub statuses: Vec<StatusFilter>,
}

/// The manifests, and the role bindings of their invitees that none of them carries.
#[derive(Clone, Debug, PartialEq)]
pub struct Export {
    /// One Invitation per email, sorted by name.
    pub resources: Vec<Invitation>,
    /// Bindings of exported invitees left out of the manifests; they stay in Confluent Cloud
    /// untouched (an exported manifest is never exclusive).
    pub left_out: Vec<LeftOut>,
}

/// A role binding of an exported invitee that no manifest carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftOut {
    pub email: String,
    /// `rb-…`, or `?` when Confluent gave none.
    pub id: String,
    pub role_name: String,
    pub crn_pattern: String,
    pub why: LeftOutReason,
}

impl std::fmt::Display for LeftOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match self.why {
            LeftOutReason::Unrepresentable => {
                "the Invitation schema does not accept its roleName or crnPattern".to_owned()
            }
            LeftOutReason::TooMany => format!(
                "more than {MAX_ROLE_BINDINGS} role bindings (the most spec.roleBindings lists)"
            ),
        };
        write!(
            f,
            "{}: role binding {} ({} on {}) left out: {why}",
            self.email, self.id, self.role_name, self.crn_pattern
        )
    }
}

/// Why a binding is not written into a manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeftOutReason {
    /// Its role or CRN pattern is outside what the CRD's schema accepts, so the API server
    /// would refuse the manifest.
    Unrepresentable,
    /// The invitee has more bindings than `spec.roleBindings` may list.
    TooMany,
}

/// The one list that finds every role binding of the exported invitees: organization-wide
/// (`crn://confluent.cloud/organization=<org>/*`), the organization taken from the first
/// invitation CRN that names one. `None` when no invitation names an organization (none
/// listed): there is nothing to list bindings for.
pub fn role_binding_filter(remote: &[RemoteInvitation]) -> Option<RoleBindingFilter> {
    let org = organization(remote)?;
    Some(RoleBindingFilter::nested(&organization_crn(org)))
}

/// The organization of the listed invitations (one credential acts on one organization).
fn organization(remote: &[RemoteInvitation]) -> Option<&str> {
    remote
        .iter()
        .filter_map(RemoteInvitation::resource_name)
        .find_map(organization_of)
}

/// `crn` as a manifest writes it: relative to the organization `org` when it lies in it
/// (`environment=…/…`, or `organization=<org>` for the organization itself, which
/// `role_bindings::resolve` turns back into the same CRN), absolute otherwise; decoded.
fn relative_pattern(crn: &str, org: Option<&str>) -> String {
    let decoded = decoded_crn(crn);
    if let Some(org) = org {
        let own = organization_crn(org);
        if decoded == own {
            return format!("organization={org}");
        }
        if let Some(rest) = decoded.strip_prefix(&format!("{own}/")) {
            if rest.starts_with("environment=") {
                return rest.to_owned();
            }
            return format!("organization={org}/{rest}");
        }
    }
    decoded.into_owned()
}

/// Whether the CRD's schema accepts the item (`ROLE_NAME_PATTERN`, `ROLE_BINDING_CRN_PATTERN`
/// and their lengths, checked here without a regex engine; a unit test compares the two).
fn fits_schema(item: &RoleBinding) -> bool {
    let role = item.role_name.as_bytes();
    let role_ok = (1..=MAX_ROLE_NAME_LENGTH).contains(&role.len())
        && role.first().is_some_and(u8::is_ascii_alphabetic)
        && role.iter().all(u8::is_ascii_alphanumeric);
    let crn = item.crn_pattern.as_str();
    let length_ok = (MIN_CRN_PATTERN_LENGTH..=MAX_CRN_PATTERN_LENGTH as usize).contains(&crn.len());
    let path = crn.strip_prefix(CRN_PREFIX);
    let value_ok =
        |v: &str| !v.is_empty() && !v.contains(['/', '=']) && !v.contains(char::is_whitespace);
    let key_ok = |k: &str| {
        k.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
            && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
    };
    let segments_ok = path
        .unwrap_or(crn)
        .split('/')
        .enumerate()
        .all(|(i, segment)| {
            segment.split_once('=').is_some_and(|(k, v)| {
                value_ok(v)
                    && if i == 0 {
                        k == "organization" || (path.is_none() && k == "environment")
                    } else {
                        key_ok(k)
                    }
            })
        });
    role_ok && length_ok && segments_ok
}

/// The `spec.roleBindings` of `user_id`: each binding of `User:<user_id>` once, ordered from the
/// widest scope to the narrowest (then by pattern and role) so a re-export diffs cleanly; with
/// what cannot be listed.
fn role_bindings_of(
    email: &str,
    user_id: &str,
    bindings: &[&RemoteRoleBinding],
    org: Option<&str>,
) -> (Vec<RoleBinding>, Vec<LeftOut>) {
    let principal = user_principal(user_id);
    let mut items: BTreeMap<(usize, String, String), &RemoteRoleBinding> = BTreeMap::new();
    for b in bindings {
        if b.principal.as_deref() != Some(principal.as_str()) {
            continue;
        }
        let (Some(role), Some(crn)) = (b.role_name.as_deref(), b.crn_pattern.as_deref()) else {
            continue;
        };
        let pattern = relative_pattern(crn, org);
        // the absolute CRN counts the organization, which a relative pattern leaves out
        let depth = decoded_crn(crn).matches('/').count();
        items.entry((depth, pattern, role.to_owned())).or_insert(b);
    }
    let mut listed = Vec::new();
    let mut left_out = Vec::new();
    for ((_, crn_pattern, role_name), b) in items {
        let item = RoleBinding {
            role_name,
            crn_pattern,
        };
        let why = if !fits_schema(&item) {
            Some(LeftOutReason::Unrepresentable)
        } else if listed.len() >= MAX_ROLE_BINDINGS {
            Some(LeftOutReason::TooMany)
        } else {
            None
        };
        match why {
            None => listed.push(item),
            Some(why) => left_out.push(LeftOut {
                email: email.to_owned(),
                id: b.id.clone().unwrap_or_else(|| "?".to_owned()),
                role_name: item.role_name,
                crn_pattern: item.crn_pattern,
                why,
            }),
        }
    }
    (listed, left_out)
}

/// FNV-1a, 64 bits: a hash that never changes between builds or Rust versions (the standard
/// library's does not promise that), so a name derived from an email stays the same forever.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The resource name for an email: its local part made a DNS-1123 label (lower case, `-` for
/// anything else, at most 40 characters) and 8 hex digits of the whole address's hash, so two
/// addresses with the same local part get different names and a re-export gives the same ones.
pub fn resource_name(email: &str) -> String {
    let email = email.to_ascii_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    let mut stem = String::with_capacity(MAX_STEM);
    for c in local.chars() {
        if stem.len() >= MAX_STEM {
            break;
        }
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (stem.is_empty() || stem.ends_with('-'))) {
            stem.push(c);
        }
    }
    let stem = stem.trim_end_matches('-');
    let stem = if stem.is_empty() { "invitation" } else { stem };
    format!("{stem}-{:08x}", fnv1a(email.as_bytes()) & 0xffff_ffff)
}

/// Which of several invitations of one email represents it: the one that stands, newest first.
fn rank(inv: &RemoteInvitation) -> (u8, std::cmp::Reverse<Option<String>>) {
    let standing = match inv.status {
        Some(InviteStatus::Accepted) => 0,
        Some(InviteStatus::Sent) => 1,
        Some(InviteStatus::Staged) => 2,
        Some(InviteStatus::Expired) => 3,
        _ => 4,
    };
    (
        standing,
        std::cmp::Reverse(inv.created_at().map(str::to_owned)),
    )
}

/// The Invitation resources for `remote`: one per email among the selected statuses, sorted by
/// name, each listing the role bindings `bindings` holds for its invitee's user (`bindings`:
/// the list of [`role_binding_filter`], or nothing to leave bindings out).
pub fn invitations(
    remote: &[RemoteInvitation],
    bindings: &[RemoteRoleBinding],
    options: &Options,
) -> Result<Export, Error> {
    let org = organization(remote);
    let mut by_principal: HashMap<&str, Vec<&RemoteRoleBinding>> = HashMap::new();
    for b in bindings {
        if let Some(p) = b.principal.as_deref() {
            by_principal.entry(p).or_default().push(b);
        }
    }
    let statuses: &[StatusFilter] = if options.statuses.is_empty() {
        &StatusFilter::LIVE
    } else {
        &options.statuses
    };
    let mut by_email: HashMap<String, &RemoteInvitation> = HashMap::new();
    for inv in remote {
        let Some(email) = inv.email.as_deref() else {
            continue;
        };
        if !statuses.iter().any(|s| s.matches(inv.status.as_ref())) {
            continue;
        }
        let slot = by_email.entry(email.to_ascii_lowercase()).or_insert(inv);
        if rank(inv) < rank(slot) {
            *slot = inv;
        }
    }
    let mut named: BTreeMap<String, (String, Invitation)> = BTreeMap::new();
    let mut left_out = Vec::new();
    for (email, inv) in by_email {
        let name = resource_name(&email);
        let (role_bindings, unlisted) = match inv.user_id() {
            Some(user) => role_bindings_of(
                &email,
                user,
                by_principal
                    .get(user_principal(user).as_str())
                    .map_or(&[][..], Vec::as_slice),
                org,
            ),
            None => (Vec::new(), Vec::new()),
        };
        left_out.extend(unlisted);
        let spec = InvitationSpec {
            email: inv.email.clone().unwrap_or_else(|| email.clone()),
            auth_type: match inv.auth_type.as_deref() {
                Some(AUTH_TYPE_SSO) => Some(AuthType::Sso),
                Some(AUTH_TYPE_LOCAL) => Some(AuthType::Local),
                _ => None,
            },
            credentials_secret_ref: None,
            deletion_policy: options.deletion_policy,
            reinvite_on_expiry: false,
            role_bindings,
            exclusive_role_bindings: false,
        };
        let mut resource = Invitation::new(&name, spec);
        resource.metadata.namespace = Some(options.namespace.clone());
        if let Some((other, _)) = named.get(&name) {
            return Err(Error::NameCollision(other.clone(), email, name));
        }
        named.insert(name, (email, resource));
    }
    left_out.sort_by(|a, b| (&a.email, &a.crn_pattern).cmp(&(&b.email, &b.crn_pattern)));
    Ok(Export {
        resources: named.into_values().map(|(_, r)| r).collect(),
        left_out,
    })
}

/// The resources as one multi-document YAML stream.
pub fn render(resources: &[Invitation]) -> Result<String, Error> {
    let mut out = String::new();
    for r in resources {
        let yaml = serde_saphyr::to_string(r)
            .map_err(|e| Error::Render(r.spec.email.clone(), e.to_string()))?;
        out.push_str("---\n");
        out.push_str(&yaml);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
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
}
