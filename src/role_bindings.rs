//! Pure decisions about the role bindings an Invitation lists (`spec.roleBindings`): resolving
//! relative CRN patterns, what to create, adopt and delete, what a deletion policy means for
//! bindings, the status entries and the Ready verdict, and how to batch observation. No IO: the
//! controller lists and calls, this module decides, and its whole table is unit-tested below.
//!
//! The rules (issue 15):
//! - Bindings are for `User:<status.userId>`, known from the invitation's creation on.
//! - Exactly one binding per listed item: a listed item whose binding exists is adopted (its id
//!   recorded in status), never created again; a create that meets a 409 lists again and adopts.
//! - Adopting takes ownership, as adopting an invitation does: a binding recorded in status is
//!   this resource's, and is deleted when its item leaves the spec or the resource is deleted
//!   with `Delete`.
//! - Only the owner of the email plans bindings: an `EmailConflict` loser (`ownership`) touches
//!   none, live or being deleted.
//! - Without `exclusiveRoleBindings`, a binding neither listed nor recorded is never touched.
//!   With it, every other binding of the user in the organization is deleted, but only from an
//!   organization-wide observation (a list per scope cannot show what else exists).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::crd::{DeletionPolicy, RoleBinding, RoleBindingState, RoleBindingStatus};
use crate::ownership::organization_of;
use crate::reason;
use confluent_client::role_bindings::{
    CRN_PREFIX, CreateRoleBinding, RemoteRoleBinding, RoleBindingFilter, decoded_crn, same_crn,
    user_principal,
};

/// The most of a Ready message the binding verdict fills, whatever Confluent says.
pub const MAX_VERDICT_MESSAGE: usize = 2048;

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

/// One listed item, resolved for the invitee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// The item as listed in spec.
    pub item: RoleBinding,
    /// The binding to hold, or why the item cannot become one.
    pub binding: Result<CreateRoleBinding, PatternError>,
}

impl Wanted {
    fn matches(&self, b: &RemoteRoleBinding) -> bool {
        self.binding.as_ref().is_ok_and(|want| b.is(want))
    }

    /// The status entry of this item in `state`.
    pub fn entry(
        &self,
        state: RoleBindingState,
        id: Option<String>,
        message: Option<String>,
    ) -> RoleBindingStatus {
        RoleBindingStatus {
            role_name: self.item.role_name.clone(),
            crn_pattern: match &self.binding {
                Ok(b) => b.crn_pattern.clone(),
                Err(_) => self.item.crn_pattern.clone(),
            },
            id,
            state,
            message,
            principal: None,
        }
    }
}

/// The absolute CRN pattern of a wanted set's items that can become bindings.
pub fn crn_patterns(wanted: &[Wanted]) -> Vec<String> {
    wanted
        .iter()
        .filter_map(|w| w.binding.as_ref().ok().map(|b| b.crn_pattern.clone()))
        .collect()
}

/// The absolute CRN of an organization: `crn://confluent.cloud/organization=<org>`.
pub fn organization_crn(organization: &str) -> String {
    format!("{CRN_PREFIX}organization={organization}")
}

/// The desired set: each listed item as a binding of `User:<user_id>`, in spec order.
pub fn wanted(items: &[RoleBinding], organization: Option<&str>, user_id: &str) -> Vec<Wanted> {
    let principal = user_principal(user_id);
    items
        .iter()
        .map(|item| Wanted {
            item: item.clone(),
            binding: resolve(&item.crn_pattern, organization).map(|crn_pattern| {
                CreateRoleBinding {
                    principal: principal.clone(),
                    role_name: item.role_name.clone(),
                    crn_pattern,
                }
            }),
        })
        .collect()
}

/// The status entries while the invitee's user id is not known yet (no invitation yet): every
/// item `Pending`, nothing to plan.
pub fn waiting_for_user(
    items: &[RoleBinding],
    organization: Option<&str>,
) -> Vec<RoleBindingStatus> {
    items
        .iter()
        .map(|item| RoleBindingStatus {
            role_name: item.role_name.clone(),
            crn_pattern: resolve(&item.crn_pattern, organization)
                .unwrap_or_else(|_| item.crn_pattern.clone()),
            id: None,
            state: RoleBindingState::Pending,
            message: Some("waiting for the invitee's user id".to_owned()),
            principal: None,
        })
        .collect()
}

/// What the lists showed of the invitee's bindings.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    /// Bindings the lists returned (any principal: others are ignored). They must cover every
    /// scope of the wanted items.
    pub bindings: &'a [RemoteRoleBinding],
    /// Whether they come from an organization-wide list (`organization=<org>/*`), which alone
    /// shows every binding of the user, as `exclusiveRoleBindings` needs.
    pub organization_wide: bool,
}

/// Why a binding is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteCause {
    /// This resource created (or adopted) it, and its item left the spec.
    RemovedFromSpec,
    /// Another binding of the user, removed because of `exclusiveRoleBindings` (Event).
    Exclusive,
    /// The resource is being deleted with a policy that removes its bindings.
    Cleanup,
    /// A binding of the invitee's previous user: the invitation was sent again (recreated,
    /// re-invited), the invitee is a new user, and the old one's grants must not linger.
    PreviousUser,
}

/// One remote step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Create the binding of `entries[index]` (after a 409: list again, plan again, adopt).
    Create {
        index: usize,
        request: CreateRoleBinding,
    },
    /// `entries[index]`'s binding exists already under `id`: record it, create nothing.
    Adopt { index: usize, id: String },
    /// Delete this binding (a 404 or the 403 of a missing binding means done).
    Delete {
        id: String,
        /// `role on crn` for Events and logs, when known.
        describes: String,
        cause: DeleteCause,
    },
}

/// The plan of one reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// One status entry per listed item, in spec order, as things stand before the steps run:
    /// `Bound` when observed, `Pending` while to be created, `Refused` when it cannot be made
    /// (its pattern, or an earlier refusal not to be retried). Settle creates with [`settle`].
    pub entries: Vec<RoleBindingStatus>,
    /// Adopts and creates in spec order, then deletes.
    pub steps: Vec<Step>,
}

fn describe(role: Option<&str>, crn: Option<&str>) -> String {
    format!("{} on {}", role.unwrap_or("?"), crn.unwrap_or("?"))
}

/// Plans the bindings of a live resource whose invitee is `user_id`.
///
/// `recorded`: `status.roleBindings` as stored. `exclusive`: `spec.exclusiveRoleBindings`.
/// `allowed_roles`: the roles the operator may grant and, with `exclusive`, delete
/// (`--allowed-roles`; empty: any). A listed item of another role is refused without a call,
/// and an unlisted binding of another role is left alone even with `exclusive`.
/// `retry_refused`: whether to try again an item Confluent refused before (when the spec
/// changed, i.e. `metadata.generation` differs from `status.observedGeneration`); otherwise a
/// refused item stays refused without a call per resync.
pub fn plan(
    user_id: &str,
    wanted: &[Wanted],
    observed: Observed<'_>,
    recorded: &[RoleBindingStatus],
    exclusive: bool,
    allowed_roles: &[String],
    retry_refused: bool,
) -> Plan {
    let mut entries = Vec::with_capacity(wanted.len());
    let mut steps = Vec::new();
    for (index, w) in wanted.iter().enumerate() {
        let request = match &w.binding {
            Ok(r) => r,
            Err(e) => {
                entries.push(w.entry(RoleBindingState::Refused, None, Some(e.to_string())));
                continue;
            }
        };
        if !role_allowed(allowed_roles, &request.role_name) {
            let why = format!(
                "role {} is not among the roles this operator may grant (--allowed-roles: {}); nothing was sent",
                request.role_name,
                allowed_roles.join(", ")
            );
            entries.push(w.entry(RoleBindingState::Refused, None, Some(why)));
            continue;
        }
        let before = recorded.iter().find(|r| {
            r.role_name == request.role_name && same_crn(&r.crn_pattern, &request.crn_pattern)
        });
        if let Some(found) = observed.bindings.iter().find(|b| b.is(request))
            && let Some(id) = found.id.clone()
        {
            if before.and_then(|r| r.id.as_deref()) != Some(id.as_str()) {
                steps.push(Step::Adopt {
                    index,
                    id: id.clone(),
                });
            }
            entries.push(w.entry(RoleBindingState::Bound, Some(id), None));
            continue;
        }
        match before {
            Some(r) if r.state == RoleBindingState::Refused && !retry_refused => {
                entries.push(w.entry(RoleBindingState::Refused, None, r.message.clone()));
            }
            _ => {
                entries.push(w.entry(
                    RoleBindingState::Pending,
                    None,
                    Some("to be created".to_owned()),
                ));
                steps.push(Step::Create {
                    index,
                    request: request.clone(),
                });
            }
        }
    }
    let mut deleting = BTreeSet::new();
    // recorded bindings whose item left the spec: by id, observed or not (a list per scope in
    // use does not show a scope no longer in use)
    for r in recorded {
        let Some(id) = r.id.as_deref() else { continue };
        let still_wanted = wanted.iter().any(|w| {
            w.binding.as_ref().is_ok_and(|b| {
                b.role_name == r.role_name && same_crn(&b.crn_pattern, &r.crn_pattern)
            })
        });
        let kept = entries.iter().any(|e| e.id.as_deref() == Some(id));
        if !still_wanted && !kept && deleting.insert(id.to_owned()) {
            steps.push(Step::Delete {
                id: id.to_owned(),
                describes: describe(Some(&r.role_name), Some(&r.crn_pattern)),
                cause: DeleteCause::RemovedFromSpec,
            });
        }
    }
    // exclusive: every other binding of the user, seen organization-wide only
    if exclusive && observed.organization_wide {
        let principal = user_principal(user_id);
        for b in observed.bindings {
            let Some(id) = b.id.as_deref() else { continue };
            if b.principal.as_deref() != Some(principal.as_str())
                || !b
                    .role_name
                    .as_deref()
                    .is_some_and(|role| role_allowed(allowed_roles, role))
                || wanted.iter().any(|w| w.matches(b))
                || !deleting.insert(id.to_owned())
            {
                continue;
            }
            steps.push(Step::Delete {
                id: id.to_owned(),
                describes: describe(b.role_name.as_deref(), b.crn_pattern.as_deref()),
                cause: DeleteCause::Exclusive,
            });
        }
    }
    Plan { entries, steps }
}

/// Whether `--allowed-roles` (empty: any) lets the operator manage bindings of `role`.
pub fn role_allowed(allowed_roles: &[String], role: &str) -> bool {
    allowed_roles.is_empty() || allowed_roles.iter().any(|r| r == role)
}

/// Whose a recorded binding is: its own `principal` (a previous invitee's, kept until deleted),
/// else the user status recorded (`recorded_user`).
pub fn holder(r: &RoleBindingStatus, recorded_user: Option<&str>) -> Option<String> {
    r.principal
        .clone()
        .or_else(|| recorded_user.map(user_principal))
}

/// The recorded bindings that are `user_id`'s, and the deletes of those that are not: when
/// status recorded them for another user (`recorded_user`: the invitation was sent again,
/// recreated or re-invited, and the invitee is a new user), or an entry names another
/// principal (a previous user's binding whose delete failed before), they are a previous
/// user's, whose grants must not linger, and none of them is the new user's.
pub fn of_current_user(
    recorded: &[RoleBindingStatus],
    recorded_user: Option<&str>,
    user_id: &str,
) -> (Vec<RoleBindingStatus>, Vec<Step>) {
    let current = user_principal(user_id);
    let mut seen = BTreeSet::new();
    let mut own = Vec::new();
    let mut deletes = Vec::new();
    for r in recorded {
        match holder(r, recorded_user) {
            Some(previous) if previous != current => {
                if let Some(id) = r.id.clone()
                    && seen.insert(id.clone())
                {
                    deletes.push(Step::Delete {
                        id,
                        describes: format!(
                            "{} of the previous user {}",
                            describe(Some(&r.role_name), Some(&r.crn_pattern)),
                            previous.strip_prefix("User:").unwrap_or(&previous)
                        ),
                        cause: DeleteCause::PreviousUser,
                    });
                }
            }
            _ => own.push(r.clone()),
        }
    }
    (own, deletes)
}

/// How a create ended, for [`settle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// 201 with this id.
    Bound(String),
    /// Confluent refused it (400, 403, 422...): its own detail.
    Refused(String),
    /// A transient failure (429, 5xx, network): try again later.
    Failed(String),
}

/// The status entry after its create ended. (A 409 is not an end: list again and plan again,
/// which adopts.)
pub fn settle(entry: &RoleBindingStatus, created: Created) -> RoleBindingStatus {
    let mut next = entry.clone();
    match created {
        Created::Bound(id) => {
            next.state = RoleBindingState::Bound;
            next.id = Some(id);
            next.message = None;
        }
        Created::Refused(detail) => {
            next.state = RoleBindingState::Refused;
            next.id = None;
            next.message = Some(detail);
        }
        Created::Failed(message) => {
            next.state = RoleBindingState::Pending;
            next.id = None;
            next.message = Some(message);
        }
    }
    next
}

/// What the bindings say about Ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every listed binding is bound (or none is listed): Ready follows the invitation.
    Bound,
    /// Ready=False with `reason` and `message`, the invitation's own facts kept as they are.
    NotReady {
        reason: &'static str,
        message: String,
    },
}

/// The Ready verdict of the bindings: a refused one wins (reason [`reason::ROLE_BINDING_REFUSED`], Confluent's
/// detail naming each refused binding), then a pending one ([`reason::ROLE_BINDING_PENDING`]). It applies
/// only while the invitation's own Ready is True (Sent, Staged, Accepted): the invitation's own
/// reason (Expired, EmailConflict, ...) comes first, and its phase is never changed by bindings.
pub fn verdict(entries: &[RoleBindingStatus]) -> Verdict {
    let refused: Vec<String> = entries
        .iter()
        .filter(|e| e.state == RoleBindingState::Refused)
        .map(|e| {
            format!(
                "{} on {}: {}",
                e.role_name,
                e.crn_pattern,
                e.message.as_deref().unwrap_or("refused by Confluent")
            )
        })
        .collect();
    if !refused.is_empty() {
        return Verdict::NotReady {
            reason: reason::ROLE_BINDING_REFUSED,
            message: bounded(&format!(
                "Confluent refused {} role binding(s): {}",
                refused.len(),
                refused.join("; ")
            )),
        };
    }
    let pending: Vec<String> = entries
        .iter()
        .filter(|e| e.state == RoleBindingState::Pending)
        .map(|e| match &e.message {
            Some(m) => format!("{} on {} ({m})", e.role_name, e.crn_pattern),
            None => format!("{} on {}", e.role_name, e.crn_pattern),
        })
        .collect();
    if pending.is_empty() {
        Verdict::Bound
    } else {
        Verdict::NotReady {
            reason: reason::ROLE_BINDING_PENDING,
            message: bounded(&format!(
                "{} role binding(s) not created yet: {}",
                pending.len(),
                pending.join("; ")
            )),
        }
    }
}

fn bounded(text: &str) -> String {
    if text.len() <= MAX_VERDICT_MESSAGE {
        return text.to_owned();
    }
    let mut cut = MAX_VERDICT_MESSAGE;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// What deleting the resource does to its bindings, per policy.
///
/// - `email_conflict_loser` (another Invitation owns the email): nothing, ever.
/// - `Orphan`: nothing.
/// - `DeleteUser` with an accepted member: nothing here: deleting the user removes their
///   bindings with them.
/// - `Delete` (pending or accepted), and `DeleteUser` with a pending invitation (the invitation
///   goes, the invitee's bindings would stay): delete every binding recorded in status. Run
///   these before deleting the invitation.
/// - `successor`: `Some(its wanted items)` when another Invitation takes the email over
///   (`ownership::successor`): the invitation and the user stay, so even `DeleteUser` deletes
///   the recorded bindings here, except those the successor lists.
pub fn plan_cleanup(
    policy: DeletionPolicy,
    accepted: bool,
    email_conflict_loser: bool,
    recorded: &[RoleBindingStatus],
    successor: Option<&[Wanted]>,
) -> Vec<Step> {
    let removes = match policy {
        _ if email_conflict_loser => false,
        DeletionPolicy::Orphan => false,
        DeletionPolicy::DeleteUser => !accepted || successor.is_some(),
        DeletionPolicy::Delete => true,
    };
    // a previous invitee's binding (recorded with its principal) is no one's to keep: neither
    // the user's deletion nor a successor covers it
    let removes_previous = !email_conflict_loser && policy != DeletionPolicy::Orphan;
    let successor = successor.unwrap_or_default();
    let mut seen = BTreeSet::new();
    recorded
        .iter()
        .filter(|r| {
            if r.principal.is_some() {
                return removes_previous;
            }
            removes
                && !successor.iter().any(|w| {
                    w.binding.as_ref().is_ok_and(|b| {
                        b.role_name == r.role_name && same_crn(&b.crn_pattern, &r.crn_pattern)
                    })
                })
        })
        .filter_map(|r| {
            let id = r.id.clone()?;
            seen.insert(id.clone()).then(|| Step::Delete {
                id,
                describes: describe(Some(&r.role_name), Some(&r.crn_pattern)),
                cause: DeleteCause::Cleanup,
            })
        })
        .collect()
}

/// One resource's need to observe bindings, for [`observation_lists`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Demand {
    /// The key of the credential's client (`Client::key`): lists are per credential.
    pub credential: u64,
    /// The organization that credential acts in.
    pub organization: String,
    /// The absolute CRN patterns of its wanted bindings.
    pub crn_patterns: Vec<String>,
    /// `spec.exclusiveRoleBindings`: needs the organization-wide list.
    pub exclusive: bool,
}

/// The lists one resync makes, per (credential, organization): one per distinct scope in use,
/// or a single organization-wide list (`organization=<org>/*`) when a resource is exclusive or
/// when the distinct scopes exceed `max_scope_lists` (the pages the organization-wide list took
/// last time is a good value: past it, one list is cheaper). So N resources with k bindings over
/// s distinct scopes cost s lists, not N: never a call per Invitation.
pub fn observation_lists(
    demands: &[Demand],
    max_scope_lists: usize,
) -> BTreeMap<(u64, String), Vec<RoleBindingFilter>> {
    let mut scopes: BTreeMap<(u64, String), (BTreeSet<String>, bool)> = BTreeMap::new();
    for d in demands {
        let (set, exclusive) = scopes
            .entry((d.credential, d.organization.clone()))
            .or_default();
        *exclusive |= d.exclusive;
        set.extend(d.crn_patterns.iter().map(|c| decoded_crn(c).into_owned()));
    }
    scopes
        .into_iter()
        .filter(|(_, (set, exclusive))| *exclusive || !set.is_empty())
        .map(|((credential, org), (set, exclusive))| {
            let lists = if exclusive || set.len() > max_scope_lists {
                vec![RoleBindingFilter::nested(&organization_crn(&org))]
            } else {
                set.into_iter().map(RoleBindingFilter::scope).collect()
            };
            ((credential, org), lists)
        })
        .collect()
}

/// Whether a list's `crn_pattern` filter matches the scope `crn` (both decoded): the scope
/// exactly, or with a trailing `/*` that scope and every scope beneath it.
pub fn in_scope(pattern: &str, crn: &str) -> bool {
    match pattern.strip_suffix("/*") {
        Some(base) => crn == base || crn.strip_prefix(base).is_some_and(|r| r.starts_with('/')),
        None => crn == pattern,
    }
}

/// Whether a list with `filter` returns `binding` (the API's matching: the scope exactly, or with
/// a trailing `/*` that scope and beneath; `principal` and `role_name` exact). A binding a list
/// covers but did not return does not exist.
pub fn covers(filter: &RoleBindingFilter, binding: &RemoteRoleBinding) -> bool {
    let Some(crn) = binding.crn_pattern.as_deref() else {
        return false;
    };
    in_scope(&decoded_crn(&filter.crn_pattern), &decoded_crn(crn))
        && filter
            .principal
            .as_deref()
            .is_none_or(|p| binding.principal.as_deref() == Some(p))
        && filter
            .role_name
            .as_deref()
            .is_none_or(|r| binding.role_name.as_deref() == Some(r))
}

/// The listed bindings by principal, so each resource plans from its user's share.
pub fn by_principal(bindings: Vec<RemoteRoleBinding>) -> HashMap<String, Vec<RemoteRoleBinding>> {
    let mut out: HashMap<String, Vec<RemoteRoleBinding>> = HashMap::new();
    for b in bindings {
        if let Some(p) = b.principal.clone() {
            out.entry(p).or_default().push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "9bb441c4-edef-46ac-8a41-c49e44a3fd9a";
    const USER: &str = "u-jane1";

    fn abs(rest: &str) -> String {
        format!("crn://confluent.cloud/organization={ORG}{rest}")
    }

    fn item(role: &str, crn: &str) -> RoleBinding {
        RoleBinding {
            role_name: role.into(),
            crn_pattern: crn.into(),
        }
    }

    fn remote(id: &str, principal: &str, role: &str, crn: &str) -> RemoteRoleBinding {
        RemoteRoleBinding {
            id: Some(id.into()),
            principal: Some(principal.into()),
            role_name: Some(role.into()),
            crn_pattern: Some(crn.into()),
            ..RemoteRoleBinding::default()
        }
    }

    fn mine(id: &str, role: &str, rest: &str) -> RemoteRoleBinding {
        remote(id, "User:u-jane1", role, &abs(rest))
    }

    fn recorded(
        id: Option<&str>,
        role: &str,
        rest: &str,
        state: RoleBindingState,
    ) -> RoleBindingStatus {
        RoleBindingStatus {
            role_name: role.into(),
            crn_pattern: abs(rest),
            id: id.map(str::to_owned),
            state,
            message: None,
            principal: None,
        }
    }

    /// A Bound EnvironmentAdmin binding kept for the previous user `u-old` (its delete failed).
    fn previous_users(id: &str) -> RoleBindingStatus {
        RoleBindingStatus {
            principal: Some("User:u-old".into()),
            ..recorded(Some(id), "EnvironmentAdmin", ENV, RoleBindingState::Bound)
        }
    }

    fn scoped(bindings: &[RemoteRoleBinding]) -> Observed<'_> {
        Observed {
            bindings,
            organization_wide: false,
        }
    }

    fn org_wide(bindings: &[RemoteRoleBinding]) -> Observed<'_> {
        Observed {
            bindings,
            organization_wide: true,
        }
    }

    const ENV: &str = "/environment=env-abc";
    const TOPIC: &str = "/environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders";

    fn two() -> Vec<Wanted> {
        wanted(
            &[
                item("EnvironmentAdmin", &abs(ENV)),
                item("DeveloperRead", &TOPIC[1..]),
            ],
            Some(ORG),
            USER,
        )
    }

    #[test]
    fn relative_patterns_resolve_in_the_invitations_organization() {
        let cases: [(&str, Option<&str>, Result<String, &str>); 11] = [
            (&abs(ENV), Some(ORG), Ok(abs(ENV))),
            (&abs(ENV), None, Ok(abs(ENV))),
            ("environment=env-abc", Some(ORG), Ok(abs(ENV))),
            (&TOPIC[1..], Some(ORG), Ok(abs(TOPIC))),
            (&format!("organization={ORG}"), None, Ok(abs(""))),
            // the service's own escapes are decoded
            (
                &abs(ENV).replace("crn://", "crn%3A//"),
                Some(ORG),
                Ok(abs(ENV)),
            ),
            ("environment=env-abc", None, Err("OrganizationUnknown")),
            (
                "crn://confluent.cloud/organization=other/environment=e",
                Some(ORG),
                Err("OtherOrganization"),
            ),
            (
                "crn://confluent.cloud/environment=e",
                Some(ORG),
                Err("Malformed"),
            ),
            ("environment=env-abc//topic=x", Some(ORG), Err("Malformed")),
            ("cloud-cluster=lkc-1", Some(ORG), Err("Malformed")),
        ];
        for (pattern, org, want) in cases {
            let got = resolve(pattern, org).map_err(|e| match e {
                PatternError::OrganizationUnknown { .. } => "OrganizationUnknown",
                PatternError::OtherOrganization { .. } => "OtherOrganization",
                PatternError::Malformed { .. } => "Malformed",
            });
            assert_eq!(got, want, "{pattern} in {org:?}");
        }
        assert!(matches!(
            resolve("https://x/organization=o", Some(ORG)),
            Err(PatternError::Malformed { .. })
        ));
        // the organization comes from any CRN the API returned
        let inv = format!("crn://confluent.cloud/organization={ORG}/invitation=i-abc12");
        assert_eq!(
            resolve("environment=env-abc", organization_of(&inv)),
            Ok(abs(ENV))
        );
    }

    #[test]
    fn the_desired_set_is_for_the_user_principal() {
        let w = two();
        assert_eq!(w.len(), 2);
        let b = w[1].binding.as_ref().unwrap();
        assert_eq!(b.principal, "User:u-jane1");
        assert_eq!(b.role_name, "DeveloperRead");
        assert_eq!(b.crn_pattern, abs(TOPIC));
        let unknown = wanted(&[item("DeveloperRead", "environment=e")], None, USER);
        assert!(unknown[0].binding.is_err());
        // before the invitation exists: every item pending, resolved when the organization is known
        let before = waiting_for_user(
            &[item("EnvironmentAdmin", "environment=env-abc")],
            Some(ORG),
        );
        assert_eq!(before[0].state, RoleBindingState::Pending);
        assert_eq!(before[0].crn_pattern, abs(ENV));
        assert_eq!(
            waiting_for_user(&[item("X", "environment=e")], None)[0].crn_pattern,
            "environment=e"
        );
    }

    /// The decision table of a live resource: (observed, recorded, exclusive) → steps.
    #[test]
    fn create_what_is_missing_adopt_what_exists() {
        // nothing exists: create both, entries Pending in spec order
        let p = plan(USER, &two(), scoped(&[]), &[], false, &[], false);
        assert_eq!(
            p.entries.iter().map(|e| e.state).collect::<Vec<_>>(),
            [RoleBindingState::Pending; 2]
        );
        assert!(matches!(
            &p.steps[..],
            [Step::Create { index: 0, .. }, Step::Create { index: 1, .. }]
        ));
        // both exist (ours by status, or made out of band, or by a create whose answer was
        // lost): adopt the unrecorded one, create nothing
        let seen = [
            mine("rb-1", "EnvironmentAdmin", ENV),
            mine("rb-2", "DeveloperRead", TOPIC),
        ];
        let rec = [recorded(
            Some("rb-1"),
            "EnvironmentAdmin",
            ENV,
            RoleBindingState::Bound,
        )];
        let p = plan(USER, &two(), scoped(&seen), &rec, false, &[], false);
        assert_eq!(
            p.steps,
            vec![Step::Adopt {
                index: 1,
                id: "rb-2".into()
            }]
        );
        assert_eq!(p.entries[0].id.as_deref(), Some("rb-1"));
        assert_eq!(p.entries[1].id.as_deref(), Some("rb-2"));
        assert!(p.entries.iter().all(|e| e.state == RoleBindingState::Bound));
        // steady state: nothing at all
        let rec = [
            recorded(
                Some("rb-1"),
                "EnvironmentAdmin",
                ENV,
                RoleBindingState::Bound,
            ),
            recorded(
                Some("rb-2"),
                "DeveloperRead",
                TOPIC,
                RoleBindingState::Bound,
            ),
        ];
        let p = plan(USER, &two(), scoped(&seen), &rec, false, &[], false);
        assert!(p.steps.is_empty());
        // removed out of band: created again, within the resync that sees it gone
        let p = plan(USER, &two(), scoped(&seen[..1]), &rec, false, &[], false);
        assert_eq!(
            p.steps,
            vec![Step::Create {
                index: 1,
                request: two()[1].binding.clone().unwrap()
            }]
        );
        // the CRN came back percent-encoded: still the same binding
        let escaped = [remote(
            "rb-1",
            "User:u-jane1",
            "EnvironmentAdmin",
            &abs(ENV).replace("crn://", "crn%3A//"),
        )];
        let p = plan(
            USER,
            &two()[..1],
            scoped(&escaped),
            &rec[..1],
            false,
            &[],
            false,
        );
        assert!(p.steps.is_empty());
        // someone else's identical binding is not the user's
        let other = [remote("rb-9", "User:u-joe", "EnvironmentAdmin", &abs(ENV))];
        let p = plan(USER, &two()[..1], scoped(&other), &[], false, &[], false);
        assert!(matches!(&p.steps[..], [Step::Create { .. }]));
    }

    #[test]
    fn removed_and_changed_items_delete_what_this_resource_recorded_only() {
        let seen = [
            mine("rb-1", "EnvironmentAdmin", ENV),
            mine("rb-2", "DeveloperRead", TOPIC),
            mine("rb-3", "DataSteward", ENV), // made out of band, never recorded
        ];
        let rec = [
            recorded(
                Some("rb-1"),
                "EnvironmentAdmin",
                ENV,
                RoleBindingState::Bound,
            ),
            recorded(
                Some("rb-2"),
                "DeveloperRead",
                TOPIC,
                RoleBindingState::Bound,
            ),
        ];
        // the topic item removed: its binding goes, by id; the unrecorded one stays
        let p = plan(USER, &two()[..1], scoped(&seen), &rec, false, &[], false);
        assert_eq!(
            p.steps,
            vec![Step::Delete {
                id: "rb-2".into(),
                describes: format!("DeveloperRead on {}", abs(TOPIC)),
                cause: DeleteCause::RemovedFromSpec,
            }]
        );
        // even when no list covers its scope any more
        let p = plan(
            USER,
            &two()[..1],
            scoped(&seen[..1]),
            &rec,
            false,
            &[],
            false,
        );
        assert!(matches!(&p.steps[..], [Step::Delete { id, .. }] if id == "rb-2"));
        // a changed item (no update in the API): delete the old, create the new
        let changed = wanted(
            &[
                item("EnvironmentAdmin", &abs(ENV)),
                item("DeveloperWrite", &abs(TOPIC)),
            ],
            Some(ORG),
            USER,
        );
        let p = plan(USER, &changed, scoped(&seen), &rec, false, &[], false);
        assert!(
            matches!(&p.steps[..], [Step::Create { index: 1, .. }, Step::Delete { id, cause: DeleteCause::RemovedFromSpec, .. }] if id == "rb-2")
        );
        // every item removed: every recorded binding goes, nothing else
        let p = plan(USER, &[], scoped(&seen), &rec, false, &[], false);
        assert_eq!(p.steps.len(), 2);
        assert!(p.entries.is_empty());
        // a recorded entry without id (never created) deletes nothing
        let pending = [recorded(
            None,
            "DeveloperRead",
            TOPIC,
            RoleBindingState::Pending,
        )];
        assert!(
            plan(USER, &[], scoped(&[]), &pending, false, &[], false)
                .steps
                .is_empty()
        );
    }

    #[test]
    fn exclusive_removes_every_other_binding_of_the_user_from_an_organization_wide_view_only() {
        let seen = [
            mine("rb-1", "EnvironmentAdmin", ENV),
            mine("rb-3", "DataSteward", ENV),
            mine("rb-4", "OrganizationAdmin", ""),
            remote("rb-5", "User:u-joe", "OrganizationAdmin", &abs("")),
        ];
        let rec = [recorded(
            Some("rb-1"),
            "EnvironmentAdmin",
            ENV,
            RoleBindingState::Bound,
        )];
        let w = &two()[..1];
        let p = plan(USER, w, org_wide(&seen), &rec, true, &[], false);
        let deleted: Vec<(&str, DeleteCause)> = p
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Delete { id, cause, .. } => Some((id.as_str(), *cause)),
                _ => None,
            })
            .collect();
        assert_eq!(
            deleted,
            [
                ("rb-3", DeleteCause::Exclusive),
                ("rb-4", DeleteCause::Exclusive)
            ]
        );
        // without the flag, or from lists per scope, none of them is touched
        assert!(
            plan(USER, w, org_wide(&seen), &rec, false, &[], false)
                .steps
                .is_empty()
        );
        assert!(
            plan(USER, w, scoped(&seen), &rec, true, &[], false)
                .steps
                .is_empty()
        );
        // a binding both removed from spec and unlisted is deleted once
        let rec2 = [
            recorded(
                Some("rb-1"),
                "EnvironmentAdmin",
                ENV,
                RoleBindingState::Bound,
            ),
            recorded(Some("rb-3"), "DataSteward", ENV, RoleBindingState::Bound),
        ];
        let p = plan(USER, w, org_wide(&seen), &rec2, true, &[], false);
        let ids: Vec<&str> = p
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Delete { id, .. } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(ids, ["rb-3", "rb-4"]);
        // an exclusive resource that lists nothing clears the user's bindings
        let p = plan(USER, &[], org_wide(&seen), &[], true, &[], false);
        assert_eq!(p.steps.len(), 3, "{:?}", p.steps);
        assert!(
            plan(USER, &[], scoped(&seen), &[], true, &[], false)
                .steps
                .is_empty()
        );
        assert!(
            plan(USER, &[], org_wide(&seen), &[], false, &[], false)
                .steps
                .is_empty()
        );
    }

    #[test]
    fn a_new_user_gets_new_bindings_and_the_previous_users_go() {
        let rec = [
            recorded(
                Some("rb-1"),
                "EnvironmentAdmin",
                ENV,
                RoleBindingState::Bound,
            ),
            recorded(None, "DeveloperRead", TOPIC, RoleBindingState::Pending),
        ];
        // the same user: everything recorded is theirs
        let (mine, deletes) = of_current_user(&rec, Some(USER), USER);
        assert_eq!(mine.len(), 2);
        assert!(deletes.is_empty());
        assert_eq!(of_current_user(&rec, None, USER).0.len(), 2);
        // the invitation was sent again: a new user, whose plan starts from nothing recorded
        let (mine, deletes) = of_current_user(&rec, Some("u-old"), USER);
        assert!(mine.is_empty());
        let [
            Step::Delete {
                id,
                describes,
                cause,
            },
        ] = &deletes[..]
        else {
            panic!("{deletes:?}")
        };
        assert_eq!((id.as_str(), *cause), ("rb-1", DeleteCause::PreviousUser));
        assert!(describes.contains("previous user u-old"), "{describes}");
        let p = plan(USER, &two(), scoped(&[]), &mine, false, &[], false);
        assert_eq!(
            p.steps.len(),
            2,
            "both created for the new user: {:?}",
            p.steps
        );
    }

    #[test]
    fn roles_outside_allowed_roles_are_refused_unsent_and_never_deleted() {
        let allowed = ["EnvironmentAdmin".to_owned()];
        // DeveloperRead is not allowed: refused with the reason, no create, even when it exists
        let seen = [mine("rb-9", "DeveloperRead", TOPIC)];
        let p = plan(USER, &two(), scoped(&seen), &[], false, &allowed, false);
        assert!(
            matches!(&p.steps[..], [Step::Create { index: 0, .. }]),
            "{:?}",
            p.steps
        );
        assert_eq!(p.entries[1].state, RoleBindingState::Refused);
        let why = p.entries[1].message.as_deref().unwrap_or_default();
        assert!(why.contains("--allowed-roles: EnvironmentAdmin"), "{why}");
        // exclusive deletes only unlisted bindings of allowed roles
        let seen = [
            mine("rb-1", "EnvironmentAdmin", ENV),
            mine("rb-2", "EnvironmentAdmin", "/environment=env-other"),
            mine("rb-3", "OrganizationAdmin", ""),
        ];
        let p = plan(
            USER,
            &two()[..1],
            org_wide(&seen),
            &[],
            true,
            &allowed,
            false,
        );
        let deleted: Vec<&str> = p
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Delete { id, .. } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            deleted,
            ["rb-2"],
            "OrganizationAdmin is not the operator's to delete"
        );
        assert!(role_allowed(&[], "OrganizationAdmin"), "no list: any role");
    }

    #[test]
    fn refusals_are_kept_until_the_spec_changes() {
        let w = &two()[1..];
        let mut refused = recorded(None, "DeveloperRead", TOPIC, RoleBindingState::Refused);
        refused.message = Some("The role 'DeveloperRead' cannot be bound".into());
        let p = plan(
            USER,
            w,
            scoped(&[]),
            std::slice::from_ref(&refused),
            false,
            &[],
            false,
        );
        assert!(
            p.steps.is_empty(),
            "no POST per resync for a refused binding"
        );
        assert_eq!(p.entries[0].state, RoleBindingState::Refused);
        assert_eq!(p.entries[0].message, refused.message);
        let p = plan(
            USER,
            w,
            scoped(&[]),
            std::slice::from_ref(&refused),
            false,
            &[],
            true,
        );
        assert!(matches!(&p.steps[..], [Step::Create { .. }]));
        // a pending one is retried every time
        let pending = recorded(None, "DeveloperRead", TOPIC, RoleBindingState::Pending);
        let p = plan(USER, w, scoped(&[]), &[pending], false, &[], false);
        assert!(matches!(&p.steps[..], [Step::Create { .. }]));
        // a pattern that cannot resolve is refused without any call
        let bad = wanted(&[item("DeveloperRead", "environment=e")], None, USER);
        let p = plan(USER, &bad, scoped(&[]), &[], false, &[], true);
        assert!(p.steps.is_empty());
        assert_eq!(p.entries[0].state, RoleBindingState::Refused);
        assert_eq!(
            p.entries[0].crn_pattern, "environment=e",
            "the pattern as listed"
        );
    }

    #[test]
    fn settling_a_create() {
        let p = plan(USER, &two(), scoped(&[]), &[], false, &[], false);
        let e = &p.entries[0];
        let bound = settle(e, Created::Bound("rb-7".into()));
        assert_eq!(
            (bound.state, bound.id.as_deref(), bound.message.as_deref()),
            (RoleBindingState::Bound, Some("rb-7"), None)
        );
        let refused = settle(e, Created::Refused("nope [HTTP 400]".into()));
        assert_eq!(refused.state, RoleBindingState::Refused);
        assert_eq!(refused.message.as_deref(), Some("nope [HTTP 400]"));
        let failed = settle(e, Created::Failed("rate limited".into()));
        assert_eq!(failed.state, RoleBindingState::Pending);
    }

    #[test]
    fn the_ready_verdict() {
        assert_eq!(verdict(&[]), Verdict::Bound);
        let bound = recorded(
            Some("rb-1"),
            "EnvironmentAdmin",
            ENV,
            RoleBindingState::Bound,
        );
        assert_eq!(verdict(std::slice::from_ref(&bound)), Verdict::Bound);
        let mut refused = recorded(
            None,
            "DeveloperRead",
            "/environment=env-abc/cloud-cluster=lkc-1",
            RoleBindingState::Refused,
        );
        refused.message = Some("The role 'DeveloperRead' cannot be bound at the cluster scope [HTTP 400, invalid_configuration]".into());
        let pending = recorded(None, "DataSteward", ENV, RoleBindingState::Pending);
        match verdict(&[bound.clone(), pending.clone(), refused.clone()]) {
            Verdict::NotReady { reason, message } => {
                assert_eq!(reason, "RoleBindingRefused");
                assert!(message.contains("DeveloperRead on crn://"), "{message}");
                assert!(
                    message.contains("cannot be bound at the cluster scope"),
                    "{message}"
                );
                assert!(!message.contains("DataSteward"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        match verdict(&[bound, pending]) {
            Verdict::NotReady { reason, message } => {
                assert_eq!(reason, "RoleBindingPending");
                assert!(message.contains("DataSteward"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // a flood of refusals stays bounded
        let mut many = Vec::new();
        for _ in 0..100 {
            let mut r = refused.clone();
            r.message = Some("é".repeat(100));
            many.push(r);
        }
        match verdict(&many) {
            Verdict::NotReady { message, .. } => assert!(message.len() <= MAX_VERDICT_MESSAGE + 4),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deletion_policies_and_the_email_conflict_loser() {
        let rec = [
            recorded(
                Some("rb-1"),
                "EnvironmentAdmin",
                ENV,
                RoleBindingState::Bound,
            ),
            recorded(
                Some("rb-2"),
                "DeveloperRead",
                TOPIC,
                RoleBindingState::Bound,
            ),
            recorded(None, "DataSteward", ENV, RoleBindingState::Refused),
        ];
        let ids = |steps: Vec<Step>| -> Vec<String> {
            steps
                .into_iter()
                .map(|s| match s {
                    Step::Delete {
                        id,
                        cause: DeleteCause::Cleanup,
                        ..
                    } => id,
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        let both = vec!["rb-1".to_string(), "rb-2".to_string()];
        // (policy, accepted, loser) → deleted
        let table: [(DeletionPolicy, bool, bool, Vec<String>); 8] = [
            (DeletionPolicy::Delete, false, false, both.clone()),
            (DeletionPolicy::Delete, true, false, both.clone()), // keep the member, remove the bindings
            (DeletionPolicy::DeleteUser, false, false, both.clone()), // the invitation goes, bindings would stay
            (DeletionPolicy::DeleteUser, true, false, vec![]), // the user's deletion removes them
            (DeletionPolicy::Orphan, false, false, vec![]),
            (DeletionPolicy::Orphan, true, false, vec![]),
            (DeletionPolicy::Delete, false, true, vec![]), // the loser touches nothing
            (DeletionPolicy::DeleteUser, false, true, vec![]),
        ];
        for (policy, accepted, loser, want) in table {
            assert_eq!(
                ids(plan_cleanup(policy, accepted, loser, &rec, None)),
                want,
                "{policy:?} accepted={accepted} loser={loser}"
            );
        }
        // the successor's listed bindings stay with the user; with a successor the user stays,
        // so DeleteUser removes this resource's other bindings itself
        let successor = wanted(
            &[item("EnvironmentAdmin", "environment=env-abc")],
            Some(ORG),
            USER,
        );
        for policy in [DeletionPolicy::Delete, DeletionPolicy::DeleteUser] {
            assert_eq!(
                ids(plan_cleanup(policy, true, false, &rec, Some(&successor))),
                ["rb-2"],
                "{policy:?}"
            );
        }
        assert_eq!(
            ids(plan_cleanup(
                DeletionPolicy::DeleteUser,
                true,
                false,
                &rec,
                Some(&[])
            )),
            both
        );
        assert!(
            plan_cleanup(DeletionPolicy::Orphan, true, false, &rec, Some(&successor)).is_empty()
        );
        assert!(
            plan_cleanup(DeletionPolicy::Delete, true, true, &rec, Some(&successor)).is_empty()
        );
        // a previous user's binding whose delete failed: neither the current user's deletion
        // nor a successor covers it; only Orphan and the loser leave it
        let previous = previous_users("rb-9");
        let with_previous = [rec[0].clone(), previous];
        for (policy, accepted, loser, successor, want) in [
            (DeletionPolicy::DeleteUser, true, false, None, vec!["rb-9"]),
            (
                DeletionPolicy::Delete,
                true,
                false,
                Some(&successor[..]),
                vec!["rb-9"],
            ),
            (
                DeletionPolicy::Delete,
                false,
                false,
                None,
                vec!["rb-1", "rb-9"],
            ),
            (DeletionPolicy::Orphan, true, false, None, vec![]),
            (DeletionPolicy::Delete, false, true, None, vec![]),
        ] {
            assert_eq!(
                ids(plan_cleanup(
                    policy,
                    accepted,
                    loser,
                    &with_previous,
                    successor
                )),
                want,
                "{policy:?} accepted={accepted} loser={loser}"
            );
        }
    }

    #[test]
    fn a_previous_users_binding_kept_with_its_principal_is_deleted_not_adopted() {
        let previous = previous_users("rb-9");
        let mine_now = recorded(
            Some("rb-1"),
            "EnvironmentAdmin",
            ENV,
            RoleBindingState::Bound,
        );
        // status.userId is the current user already: the entry's principal says whose it is
        let (own, deletes) = of_current_user(&[mine_now.clone(), previous], Some(USER), USER);
        assert_eq!(own, [mine_now]);
        let [
            Step::Delete {
                id,
                describes,
                cause: DeleteCause::PreviousUser,
            },
        ] = &deletes[..]
        else {
            panic!("{deletes:?}")
        };
        assert_eq!(id, "rb-9");
        assert!(describes.contains("previous user u-old"), "{describes}");
        // an entry naming the current user is the current user's
        let mut named = recorded(
            Some("rb-1"),
            "EnvironmentAdmin",
            ENV,
            RoleBindingState::Bound,
        );
        named.principal = Some(format!("User:{USER}"));
        let (own, deletes) = of_current_user(std::slice::from_ref(&named), Some("u-old"), USER);
        assert_eq!((own.len(), deletes.len()), (1, 0));
    }

    #[test]
    fn observation_costs_one_list_per_distinct_scope_not_one_per_invitation() {
        // N = 1 000 resources, k = 3 bindings each, over s = 7 distinct scopes, one credential
        let scopes: Vec<String> = (0..7)
            .map(|i| abs(&format!("/environment=env-{i}")))
            .collect();
        let demands: Vec<Demand> = (0..1000)
            .map(|n| Demand {
                credential: 1,
                organization: ORG.into(),
                crn_patterns: (0..3).map(|j| scopes[(n + j) % 7].clone()).collect(),
                exclusive: false,
            })
            .collect();
        let lists = observation_lists(&demands, 50);
        assert_eq!(lists.len(), 1);
        let filters = &lists[&(1, ORG.to_string())];
        assert_eq!(filters.len(), 7, "s lists, not N");
        assert!(
            filters
                .iter()
                .all(|f| f.principal.is_none() && !f.crn_pattern.ends_with("/*"))
        );

        // pages: each list returns its scope's bindings, 100 a page
        let mut remote_bindings = Vec::new();
        for (n, d) in demands.iter().enumerate() {
            for (j, crn) in d.crn_patterns.iter().enumerate() {
                remote_bindings.push(remote(
                    &format!("rb-{n}-{j}"),
                    &format!("User:u-{n}"),
                    "EnvironmentAdmin",
                    crn,
                ));
            }
        }
        let pages: usize = filters
            .iter()
            .map(|f| {
                remote_bindings
                    .iter()
                    .filter(|b| covers(f, b))
                    .count()
                    .div_ceil(100)
                    .max(1)
            })
            .sum();
        // 3 000 bindings over 7 scopes: ⌈428.6/100⌉ or so each
        assert_eq!(pages, 7 * 5, "s lists of ⌈b_s/100⌉ pages");
        let by_user = by_principal(remote_bindings);
        assert_eq!(by_user.len(), 1000);
        assert_eq!(by_user["User:u-0"].len(), 3);

        // an exclusive resource turns its credential's lists into one organization-wide list;
        // another credential keeps its own
        let mut more = demands.clone();
        more[0].exclusive = true;
        more.push(Demand {
            credential: 2,
            organization: "other-org".into(),
            crn_patterns: vec!["crn://confluent.cloud/organization=other-org/environment=e".into()],
            exclusive: false,
        });
        let lists = observation_lists(&more, 50);
        assert_eq!(
            lists[&(1, ORG.to_string())],
            vec![RoleBindingFilter::nested(&abs(""))]
        );
        assert_eq!(lists[&(2, "other-org".to_string())].len(), 1);
        // more distinct scopes than the cap: one organization-wide list
        assert_eq!(
            observation_lists(&demands, 6)[&(1, ORG.to_string())].len(),
            1
        );
        // nothing listed and not exclusive: no list at all
        let none = [Demand {
            credential: 3,
            organization: ORG.into(),
            crn_patterns: vec![],
            exclusive: false,
        }];
        assert!(observation_lists(&none, 50).is_empty());
        // the same scope spelt with escapes is one scope
        let twice = [
            Demand {
                credential: 4,
                organization: ORG.into(),
                crn_patterns: vec![abs(ENV)],
                exclusive: false,
            },
            Demand {
                credential: 4,
                organization: ORG.into(),
                crn_patterns: vec![abs(ENV).replace("crn://", "crn%3A//")],
                exclusive: false,
            },
        ];
        assert_eq!(
            observation_lists(&twice, 50)[&(4, ORG.to_string())].len(),
            1
        );
    }

    #[test]
    fn what_a_list_covers() {
        let b = mine("rb-1", "DeveloperRead", TOPIC);
        assert!(covers(&RoleBindingFilter::scope(abs(TOPIC)), &b));
        assert!(!covers(&RoleBindingFilter::scope(abs(ENV)), &b));
        assert!(covers(&RoleBindingFilter::nested(&abs(ENV)), &b));
        assert!(covers(&RoleBindingFilter::nested(&abs("")), &b));
        assert!(!covers(
            &RoleBindingFilter::nested(&abs("/environment=env-ab")),
            &b
        ));
        let mut f = RoleBindingFilter::nested(&abs(""));
        f.principal = Some("User:u-joe".into());
        assert!(!covers(&f, &b));
        f.principal = Some("User:u-jane1".into());
        f.role_name = Some("DeveloperRead".into());
        assert!(covers(&f, &b));
        assert!(!covers(&f, &RemoteRoleBinding::default()));
    }
}
