//! `confluent-invitation-operator export`: the organization's invitations as Invitation
//! manifests, ready for a Git repository, each with the invitee's role bindings as
//! `spec.roleBindings`. Applying them adopts every invitation by email (the planner's Adopt)
//! and every listed binding that exists (the role-binding planner's adoption), so nothing is
//! re-sent or re-created. Pure: listing is the caller's job.

use std::collections::{BTreeMap, HashMap};

use crate::invitation::resource::{AuthType, DeletionPolicy, Invitation, InvitationSpec};

use crate::invitation_policy::decide as policy;
use crate::invitation_policy::resource::InvitationPolicy;
use crate::role_bindings::resource::{MAX_CRN_PATTERN_LENGTH, RoleBinding};
use crate::role_bindings::{organization_crn, resolve};
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

/// What an import of `resources` into the export's namespace would meet from InvitationPolicies,
/// one line each, so that it is no surprise: `applying` are the policies that select that
/// namespace when it exists (every one must permit, as in a reconcile: the resources and items
/// they would refuse, with their words); when it does not exist yet (`None`), the items that no
/// policy of `all` would permit anywhere. Nothing when the cluster has no policy.
pub fn policy_notes(
    resources: &[Invitation],
    organization: Option<&str>,
    applying: Option<&[&InvitationPolicy]>,
    all: &[&InvitationPolicy],
) -> Vec<String> {
    if all.is_empty() {
        return Vec::new();
    }
    let mut notes = Vec::new();
    for r in resources {
        let email = &r.spec.email;
        if let Some(applying) = applying
            && let Err(refusal) = policy::admit(applying, false, &r.spec)
        {
            notes.push(format!(
                "{email} would be refused ({}): {}",
                refusal.reason, refusal.message
            ));
            continue;
        }
        for item in &r.spec.role_bindings {
            let Ok(pattern) = resolve(&item.crn_pattern, organization) else {
                continue;
            };
            let org = organization
                .or_else(|| organization_of(&pattern))
                .unwrap_or_default();
            let refused = |policies: &[&InvitationPolicy]| {
                policy::grant_refusal(policies, &item.role_name, &pattern, org)
            };
            let what = format!("{email}: {} on {}", item.role_name, item.crn_pattern);
            match applying {
                Some(applying) => {
                    if let Some(why) = refused(applying) {
                        notes.push(format!("{what} would be Refused: {why}"));
                    }
                }
                None => {
                    if all.iter().all(|p| refused(&[*p]).is_some()) {
                        notes.push(format!("{what}: no InvitationPolicy would permit it"));
                    }
                }
            }
        }
    }
    notes
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
            auth_type: match inv.auth_type.as_deref() {
                Some(AUTH_TYPE_SSO) => Some(AuthType::Sso),
                Some(AUTH_TYPE_LOCAL) => Some(AuthType::Local),
                _ => None,
            },
            deletion_policy: options.deletion_policy,
            role_bindings,
            ..InvitationSpec::of_email(inv.email.clone().unwrap_or_else(|| email.clone()))
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

/// The resources (Invitations, or the groups of `export --groups`) as one multi-document YAML
/// stream.
pub fn render<K>(resources: &[K]) -> Result<String, Error>
where
    K: kube::Resource + serde::Serialize,
{
    let mut out = String::new();
    for r in resources {
        let yaml = serde_saphyr::to_string(r)
            .map_err(|e| Error::Render(r.meta().name.clone().unwrap_or_default(), e.to_string()))?;
        out.push_str("---\n");
        out.push_str(&yaml);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
