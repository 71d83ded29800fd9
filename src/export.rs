//! `confluent-invitation-operator export`: the organization's invitations as Invitation
//! manifests, ready for a Git repository. Applying them adopts every invitation by email
//! (the planner's Adopt), so nothing is re-sent. Pure: listing is the caller's job.

use std::collections::{BTreeMap, HashMap};

use crate::crd::{AuthType, DeletionPolicy, Invitation, InvitationSpec};
use confluent_client::model::{AUTH_TYPE_LOCAL, AUTH_TYPE_SSO, InviteStatus, RemoteInvitation};

/// Longest part of a name taken from the email's local part; with the hash suffix the name
/// stays well inside a DNS-1123 label (63).
const MAX_STEM: usize = 40;

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
/// name.
pub fn invitations(
    remote: &[RemoteInvitation],
    options: &Options,
) -> Result<Vec<Invitation>, Error> {
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
    for (email, inv) in by_email {
        let name = resource_name(&email);
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
            role_bindings: Vec::new(),
            exclusive_role_bindings: false,
        };
        let mut resource = Invitation::new(&name, spec);
        resource.metadata.namespace = Some(options.namespace.clone());
        if let Some((other, _)) = named.get(&name) {
            return Err(Error::NameCollision(other.clone(), email, name));
        }
        named.insert(name, (email, resource));
    }
    Ok(named.into_values().map(|(_, r)| r).collect())
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
        let out = invitations(&org, &options(vec![])).unwrap();
        let emails: Vec<_> = out.iter().map(|i| i.spec.email.as_str()).collect();
        assert_eq!(emails.len(), 2);
        assert!(emails.contains(&"a@x.io") && emails.contains(&"b@x.io"));
        for i in &out {
            assert_eq!(i.metadata.namespace.as_deref(), Some("people"));
            assert_eq!(i.spec.deletion_policy, DeletionPolicy::Orphan);
            assert_eq!(i.spec.auth_type, Some(AuthType::Sso));
        }
        let expired = invitations(&org, &options(vec![StatusFilter::Expired])).unwrap();
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
        let out = invitations(&org, &options(vec![])).unwrap();
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
}
