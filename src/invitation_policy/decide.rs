//! The decisions over the policies that apply to one Invitation (those whose selector selects
//! its namespace). Every applying policy must permit what the Invitation asks (AND): a policy
//! added can only narrow what is allowed. Where several refuse, the first by name is reported,
//! so the message does not change from one reconcile to the next.

use std::collections::BTreeMap;

use kube::core::{Selector, SelectorExt};

use super::coverage::covers;
use super::resource::{DisallowedExisting, InvitationPolicy, InvitationPolicyStatus};
use crate::invitation::resource::{DeletionPolicy, InvitationSpec};
use crate::reason;
use crate::role_bindings::{OnDisallowed, PatternError, resolve};
use crate::runtime::conditions;

/// Whether `policy` selects a namespace with `namespace_labels`, or why its selector cannot be
/// read (the caller treats that as selecting nothing, and the policy's status reports it).
pub fn selects(
    policy: &InvitationPolicy,
    namespace_labels: &BTreeMap<String, String>,
) -> Result<bool, String> {
    selector(policy).map(|s| s.matches(namespace_labels))
}

/// The policy's selector, checked as apimachinery checks one: kube's conversion takes an `In`
/// without values (which would select nothing) and ignores the values of `Exists`.
fn selector(policy: &InvitationPolicy) -> Result<Selector, String> {
    let given = &policy.spec.namespace_selector;
    for (i, e) in given.match_expressions.iter().flatten().enumerate() {
        let has_values = e.values.as_ref().is_some_and(|v| !v.is_empty());
        let why = match e.operator.as_str() {
            "In" | "NotIn" if !has_values => "needs at least one value",
            "Exists" | "DoesNotExist" if has_values => "takes no values",
            "In" | "NotIn" | "Exists" | "DoesNotExist" => continue,
            _ => "is not In, NotIn, Exists or DoesNotExist",
        };
        return Err(format!(
            "spec.namespaceSelector.matchExpressions[{i}]: operator {} {why}",
            e.operator
        ));
    }
    Selector::try_from(given.clone()).map_err(|e| format!("spec.namespaceSelector: {e}"))
}

/// Why an Invitation is refused: a Ready reason of [`crate::reason`] and a message naming the
/// policy and its rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

/// Whether the applying policies admit an Invitation (its spec, `invitation`) at all (its role bindings are
/// decided one by one, [`grant_refusal`]). Checked in this order: a policy is required but none
/// applies; the email is protected; its domain is not allowed; the deletion policy is not
/// allowed; `exclusiveRoleBindings` is not allowed. No applying policy and none required: Ok.
pub fn admit(
    applying: &[&InvitationPolicy],
    require_policy: bool,
    invitation: &InvitationSpec,
) -> Result<(), Refusal> {
    let policies = by_name(applying);
    if policies.is_empty() {
        if require_policy {
            return Err(Refusal {
                reason: reason::POLICY_MISSING,
                message: "no InvitationPolicy selects this Invitation's namespace, and the \
                          operator admits Invitations only where one does"
                    .to_owned(),
            });
        }
        return Ok(());
    }
    if let Some(name) = protected_by(applying, &invitation.email) {
        return Err(Refusal {
            reason: reason::PRINCIPAL_PROTECTED,
            message: format!(
                "spec.email {} is protected by InvitationPolicy {name}: no Invitation in this \
                 namespace may invite, bind or delete it",
                invitation.email
            ),
        });
    }
    let domain = invitation
        .email
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or_default();
    for p in &policies {
        if let Some(allowed) = &p.spec.allowed_email_domains
            && !allowed.iter().any(|a| a.eq_ignore_ascii_case(domain))
        {
            return Err(Refusal {
                reason: reason::EMAIL_DOMAIN_NOT_ALLOWED,
                message: format!(
                    "spec.email's domain {domain:?} is not in InvitationPolicy {}'s \
                     allowedEmailDomains ({})",
                    p.name(),
                    allowed.join(", ")
                ),
            });
        }
    }
    for p in &policies {
        let allowed = &p.spec.allowed_deletion_policies;
        if !allowed.contains(&invitation.deletion_policy) {
            let names: Vec<String> = allowed.iter().map(|d| format!("{d:?}")).collect();
            return Err(Refusal {
                reason: reason::POLICY_VIOLATION,
                message: format!(
                    "deletionPolicy {:?} is not allowed by InvitationPolicy {} \
                     (allowedDeletionPolicies: {})",
                    invitation.deletion_policy,
                    p.name(),
                    names.join(", ")
                ),
            });
        }
    }
    if invitation.exclusive_role_bindings
        && let Some(p) = policies
            .iter()
            .find(|p| !p.spec.allow_exclusive_role_bindings)
    {
        return Err(Refusal {
            reason: reason::POLICY_VIOLATION,
            message: format!(
                "exclusiveRoleBindings: true is not allowed by InvitationPolicy {} \
                 (allowExclusiveRoleBindings is false)",
                p.name()
            ),
        });
    }
    Ok(())
}

/// What the deletion of an Invitation (its spec, `invitation`) may do under the applying
/// policies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// Its own `deletionPolicy` applies.
    AsSpecified,
    /// Its `deletionPolicy` is one a policy does not allow (the Invitation predates the policy,
    /// or the policy was tightened since): this one, allowed by every policy, applies instead,
    /// said in a Warning. `Delete` first: it removes what the Invitation recorded (its
    /// bindings, its pending invitation) and never a member, so no grant it made is forgotten.
    Instead(DeletionPolicy, Refusal),
    /// Its email is protected: nothing in Confluent is touched.
    Untouched(Refusal),
}

/// How the deletion of `invitation` goes under `applying` ([`Deletion`]). Where no deletion
/// policy is allowed by every policy, nothing is touched (`Orphan`).
pub fn deletion_under(applying: &[&InvitationPolicy], invitation: &InvitationSpec) -> Deletion {
    if let Some(name) = protected_by(applying, &invitation.email) {
        return Deletion::Untouched(Refusal {
            reason: reason::PRINCIPAL_PROTECTED,
            message: format!(
                "{} is protected by InvitationPolicy {name}: nothing in Confluent Cloud was deleted",
                invitation.email
            ),
        });
    }
    let policies = by_name(applying);
    let allowed = |d: &DeletionPolicy| {
        policies
            .iter()
            .all(|p| p.spec.allowed_deletion_policies.contains(d))
    };
    let Some(refusing) = policies.iter().find(|p| {
        !p.spec
            .allowed_deletion_policies
            .contains(&invitation.deletion_policy)
    }) else {
        return Deletion::AsSpecified;
    };
    let instead = [
        DeletionPolicy::Delete,
        DeletionPolicy::Orphan,
        DeletionPolicy::DeleteUser,
    ]
    .into_iter()
    .find(allowed)
    .unwrap_or(DeletionPolicy::Orphan);
    Deletion::Instead(
        instead,
        Refusal {
            reason: reason::POLICY_VIOLATION,
            message: format!(
                "deletionPolicy {:?} is not allowed by InvitationPolicy {}: deleted as {instead:?} \
                 instead",
                invitation.deletion_policy,
                refusing.name()
            ),
        },
    )
}

/// The first applying policy (by name) that protects `email`, compared without regard to case:
/// cleanup must not delete, and apply must not touch, a protected person.
pub fn protected_by<'a>(applying: &[&'a InvitationPolicy], email: &str) -> Option<&'a str> {
    by_name(applying)
        .into_iter()
        .find(|p| {
            p.spec
                .protected_emails
                .iter()
                .any(|e| e.eq_ignore_ascii_case(email))
        })
        .map(InvitationPolicy::name)
}

/// Why the applying policies do not let an Invitation bind `role` on `pattern` (absolute and
/// decoded, as [`resolve`] returns it) in `organization`, or `None` when every one grants it.
/// The message names the first refusing policy by name and what it does grant, so the user
/// sees what they may ask for.
pub fn grant_refusal(
    applying: &[&InvitationPolicy],
    role: &str,
    pattern: &str,
    organization: &str,
) -> Option<String> {
    by_name(applying)
        .into_iter()
        .find_map(|p| refusal_of(p, role, pattern, organization))
}

/// One policy's refusal of `role` on `pattern`, if it refuses.
fn refusal_of(
    policy: &InvitationPolicy,
    role: &str,
    pattern: &str,
    organization: &str,
) -> Option<String> {
    let granting: Vec<_> = policy
        .spec
        .grants
        .iter()
        .filter(|g| g.roles.iter().any(|r| r == role))
        .collect();
    if granting
        .iter()
        .any(|g| g.scopes.iter().any(|s| covers(s, pattern, organization)))
    {
        return None;
    }
    let name = policy.name();
    if granting.is_empty() {
        let mut roles: Vec<&str> = policy
            .spec
            .grants
            .iter()
            .flat_map(|g| g.roles.iter().map(String::as_str))
            .collect();
        roles.sort_unstable();
        roles.dedup();
        return Some(if roles.is_empty() {
            format!("InvitationPolicy {name} grants no role bindings: role {role} is not allowed")
        } else {
            format!(
                "InvitationPolicy {name} does not grant role {role} (it grants {})",
                roles.join(", ")
            )
        });
    }
    let mut scopes: Vec<&str> = Vec::new();
    for scope in granting.iter().flat_map(|g| &g.scopes) {
        if !scopes.contains(&scope.as_str()) {
            scopes.push(scope);
        }
    }
    Some(format!(
        "InvitationPolicy {name} grants role {role} only on {}, which does not cover {pattern}",
        scopes.join(", ")
    ))
}

/// What happens to an existing binding the policies do not grant: `Revoke` if any applying
/// policy says so (the stricter rule wins, as with every other rule), else `Keep`.
pub fn on_disallowed(applying: &[&InvitationPolicy]) -> OnDisallowed {
    if applying
        .iter()
        .any(|p| p.spec.on_disallowed_existing == DisallowedExisting::Revoke)
    {
        OnDisallowed::Revoke
    } else {
        OnDisallowed::Keep
    }
}

/// The policy's next status: Ready True while its selector and every grant scope can be read,
/// else False naming each bad field. `selected_namespaces` is recorded as given, but as 0 while
/// the selector is invalid (it selects nothing then). `lastTransitionTime` moves only when
/// Ready's status flips (the previous one is `policy.status`).
pub fn status(
    policy: &InvitationPolicy,
    selected_namespaces: usize,
    now: jiff::Timestamp,
) -> InvitationPolicyStatus {
    let mut problems = Vec::new();
    let selector_valid = match selector(policy) {
        Ok(_) => true,
        Err(why) => {
            problems.push(format!(
                "{why}: the policy selects no namespace until it is fixed"
            ));
            false
        }
    };
    for (i, grant) in policy.spec.grants.iter().enumerate() {
        for (j, scope) in grant.scopes.iter().enumerate() {
            // a relative scope is resolved under each Invitation's organization, unknown here
            match resolve(scope, None) {
                Ok(_) | Err(PatternError::OrganizationUnknown { .. }) => {}
                Err(e) => problems.push(format!(
                    "spec.grants[{i}].scopes[{j}]: {e}: it covers nothing"
                )),
            }
        }
    }
    let selected = if selector_valid {
        i64::try_from(selected_namespaces).unwrap_or(i64::MAX)
    } else {
        0
    };
    let (ready, reason, message) = if problems.is_empty() {
        let noun = if selected == 1 {
            "namespace"
        } else {
            "namespaces"
        };
        (
            "True",
            reason::ENFORCED,
            format!("the policy applies to Invitations in {selected} {noun}"),
        )
    } else {
        ("False", reason::INVALID_POLICY, problems.join("; "))
    };
    let mut next = policy.status.clone().unwrap_or_default();
    conditions::set_ready(
        &mut next.conditions,
        ready,
        reason.into(),
        message,
        policy.metadata.generation,
        now,
    );
    next.selected_namespaces = selected;
    next.observed_generation = policy.metadata.generation;
    next
}

/// The policies in name order: where several refuse, the same one is named every time.
fn by_name<'a>(applying: &[&'a InvitationPolicy]) -> Vec<&'a InvitationPolicy> {
    let mut policies = applying.to_vec();
    policies.sort_by(|a, b| a.name().cmp(b.name()));
    policies
}
