//! What the Invitation asks for: each `spec.roleBindings` item resolved into the binding of the
//! invitee it stands for (`User:<status.userId>`, an absolute CRN pattern), with whether the
//! operator may grant it.

use crate::role_bindings::resource::RoleBinding;
use confluent_client::role_bindings::organization_of;
use confluent_client::role_bindings::{CRN_PREFIX, CreateRoleBinding, decoded_crn, user_principal};

/// Why a listed `crnPattern` cannot become an absolute CRN of the invitation's organization.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A relative pattern, and no CRN of the organization has been seen yet.
    #[error(
        "crnPattern {crn_pattern:?} is relative, and the invitation's organization is not known yet"
    )]
    OrganizationUnknown { crn_pattern: String },
    /// The pattern names another organization than the invitation's.
    #[error(
        "crnPattern {crn_pattern:?} is in organization {named}, not in the invitation's organization {organization}"
    )]
    OtherOrganization {
        crn_pattern: String,
        named: String,
        organization: String,
    },
    /// Not a CRN pattern (a cluster without schema validation let it through).
    #[error("crnPattern {crn_pattern:?} is not a CRN pattern: {why}")]
    Malformed {
        crn_pattern: String,
        why: &'static str,
    },
}

/// The absolute CRN pattern of a listed `crnPattern`: an absolute one as it is (decoded); one
/// starting at `organization=` under `crn://confluent.cloud/`; any other relative one under the
/// invitation's organization (`organization`: the `organization=` part of a CRN the API
/// returned, see [`organization_of`]).
pub fn resolve(crn_pattern: &str, organization: Option<&str>) -> Result<String, PatternError> {
    let given = crn_pattern.trim();
    let decoded = decoded_crn(given);
    let malformed = |why| PatternError::Malformed {
        crn_pattern: given.to_owned(),
        why,
    };
    let absolute = if decoded.starts_with(CRN_PREFIX) {
        decoded.into_owned()
    } else if decoded.starts_with("organization=") {
        format!("{CRN_PREFIX}{decoded}")
    } else if decoded.starts_with("crn:") || decoded.contains("://") {
        return Err(malformed(
            "an absolute pattern starts with crn://confluent.cloud/",
        ));
    } else if !decoded.starts_with("environment=") {
        return Err(malformed(
            "a relative pattern starts at organization= or environment=",
        ));
    } else {
        let Some(org) = organization else {
            return Err(PatternError::OrganizationUnknown {
                crn_pattern: given.to_owned(),
            });
        };
        format!("{}/{decoded}", organization_crn(org))
    };
    let path = &absolute[CRN_PREFIX.len()..];
    if path.split('/').any(|segment| {
        segment
            .split_once('=')
            .is_none_or(|(k, v)| k.is_empty() || v.is_empty())
    }) {
        return Err(malformed("every part must be key=value"));
    }
    if !path.starts_with("organization=") {
        return Err(malformed(
            "a pattern starts at organization= or environment=",
        ));
    }
    match (organization_of(&absolute), organization) {
        (Some(named), Some(org)) if named != org => Err(PatternError::OtherOrganization {
            crn_pattern: given.to_owned(),
            named: named.to_owned(),
            organization: org.to_owned(),
        }),
        _ => Ok(absolute),
    }
}

/// The absolute CRN of an organization: `crn://confluent.cloud/organization=<org>`.
pub fn organization_crn(organization: &str) -> String {
    format!("{CRN_PREFIX}organization={organization}")
}

/// One listed item, resolved for the invitee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// The item as listed in spec.
    pub item: RoleBinding,
    /// The binding to hold, or why the item cannot become one.
    pub binding: Result<CreateRoleBinding, PatternError>,
    /// Why the operator may not grant it (`--allowed-roles`), if it may not: nothing is sent for
    /// it, and a binding of it that exists already is `Disallowed`.
    pub refusal: Option<String>,
}

impl Desired {
    /// The CRN pattern its status entry shows: the absolute one, or the item's as listed when
    /// it cannot be resolved.
    pub fn shown_crn(&self) -> &str {
        match &self.binding {
            Ok(b) => &b.crn_pattern,
            Err(_) => &self.item.crn_pattern,
        }
    }
}

/// The desired set: each listed item as a binding of `User:<user_id>`, in spec order, each
/// checked against the roles the operator may grant (`allowed_roles`; `None`: any).
pub fn desired(
    items: &[RoleBinding],
    organization: Option<&str>,
    user_id: &str,
    allowed_roles: Option<&[String]>,
) -> Vec<Desired> {
    let principal = user_principal(user_id);
    items
        .iter()
        .map(|item| Desired {
            item: item.clone(),
            binding: resolve(&item.crn_pattern, organization).map(|crn_pattern| {
                CreateRoleBinding {
                    principal: principal.clone(),
                    role_name: item.role_name.clone(),
                    crn_pattern,
                }
            }),
            refusal: role_refusal(allowed_roles, &item.role_name),
        })
        .collect()
}

/// The absolute CRN patterns of the items that can become bindings.
pub fn crn_patterns(desired: &[Desired]) -> Vec<String> {
    desired
        .iter()
        .filter_map(|d| d.binding.as_ref().ok().map(|b| b.crn_pattern.clone()))
        .collect()
}

/// Whether `--allowed-roles` lets the operator manage bindings of `role` (`None`: any role).
pub fn role_allowed(allowed_roles: Option<&[String]>, role: &str) -> bool {
    allowed_roles.is_none_or(|allowed| allowed.iter().any(|r| r == role))
}

/// Why `role` may not be granted under `allowed_roles`, or `None` when it may. The message
/// names the roles that are allowed now, so it is never stale: it is computed at every
/// reconcile, never stored as a decision.
pub fn role_refusal(allowed_roles: Option<&[String]>, role: &str) -> Option<String> {
    if role_allowed(allowed_roles, role) {
        return None;
    }
    Some(format!(
        "role {role} is not among the roles this operator may grant (--allowed-roles: {})",
        allowed_roles.unwrap_or_default().join(", ")
    ))
}
