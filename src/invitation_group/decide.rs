//! Pure: what a group's children should be, which of them go in this pass, and the group's
//! status. The wiring lists the children and performs the plan.

use std::collections::BTreeMap;
use std::time::Duration;

use super::resource::{InvitationGroupSpec, MemberStatus, RemovalWindow, Summary};
use crate::invitation::resource::{InvitationSpec, InvitationStatus};
use crate::reason;
use crate::runtime::hash;

/// The most a label value may hold.
const MAX_LABEL_VALUE: usize = 63;

/// A member's Invitation name: the group's name and a hash of the lower-cased email (no email
/// in the name; two letter cases are one member), within an object name's 253 characters.
pub fn child_name(group: &str, email: &str) -> String {
    let digest = hash::sha256_hex(email.to_ascii_lowercase().as_bytes());
    let suffix = &digest[..12];
    // 253 = group part + '-' + 12
    let mut group_part: String = group.chars().take(240).collect();
    while group_part.ends_with(['-', '.']) {
        group_part.pop();
    }
    format!("{group_part}-{suffix}")
}

/// The [`super::resource::GROUP_LABEL`] value naming `group` on its children: the name itself
/// when it fits a label value, else `g-` and a hash of it.
pub fn label_value(group: &str) -> String {
    if group.len() <= MAX_LABEL_VALUE {
        group.to_owned()
    } else {
        format!("g-{}", &hash::sha256_hex(group.as_bytes())[..40])
    }
}

/// The labels of a group's children: the group's own (so a child falls in the shard its group
/// is in: a `--label-selector` reads them) and [`super::resource::GROUP_LABEL`] naming it.
pub fn child_labels(group: &str, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = labels.clone();
    out.insert(super::resource::GROUP_LABEL.to_owned(), label_value(group));
    out
}

/// The spec of `email`'s Invitation in a group of `spec`.
pub fn child_spec(spec: &InvitationGroupSpec, email: &str) -> InvitationSpec {
    InvitationSpec {
        email: email.to_owned(),
        auth_type: spec.auth_type,
        credentials_secret_ref: spec.credentials_secret_ref.clone(),
        deletion_policy: spec.member_removal_policy,
        reinvite_on_expiry: spec.reinvite_on_expiry,
        role_bindings: spec.role_bindings.clone(),
        exclusive_role_bindings: spec.exclusive_role_bindings,
    }
}

/// A child Invitation as the wiring observed it.
#[derive(Clone, Debug, PartialEq)]
pub struct Child {
    pub name: String,
    pub spec: InvitationSpec,
    pub labels: BTreeMap<String, String>,
    pub status: Option<InvitationStatus>,
    /// It carries a `deletionTimestamp` (its cleanup runs).
    pub deleting: bool,
}

/// What the role bindings of every Invitation the operator manages add up to, and the limit
/// (`--role-binding-budget`). `used`: `None` when not counted (nothing would grow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub used: Option<usize>,
    pub limit: usize,
}

/// Why a group does not do all it asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

/// One pass over a group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Children to create (name, spec).
    pub create: Vec<(String, InvitationSpec)>,
    /// Children whose spec differs from the group's, or that lack one of its labels (edited by
    /// hand, or the group changed): put back (name, spec), labels merged.
    pub put_back: Vec<(String, InvitationSpec)>,
    /// Children of removed members to delete in this pass.
    pub delete: Vec<String>,
    /// Removed members whose deletion waits for the next window.
    pub throttled: Vec<String>,
    /// The removal window after this pass.
    pub window: Option<RemovalWindow>,
    /// When the next removals may go, if some wait.
    pub next_window: Option<Duration>,
    /// What the group refuses to do.
    pub refusal: Option<Refusal>,
}

/// Whether a plan that grows the group's bindings must count the budget first: the role
/// bindings the group's members would hold after it, against what its children hold now.
pub fn growth(spec: &InvitationGroupSpec, children: &[Child]) -> (usize, usize) {
    let items = spec.role_bindings.len();
    let wanted = spec.members.len() * items;
    let held: usize = children
        .iter()
        .filter(|c| !c.deleting)
        .map(|c| c.spec.role_bindings.len())
        .sum();
    (wanted, held)
}

/// The later of two records of a removal window (the status as the watch cache shows it, and
/// this process's memory of its last write): the one started last, else the one that counts
/// more removals.
pub fn latest<'a>(
    a: Option<&'a RemovalWindow>,
    b: Option<&'a RemovalWindow>,
) -> Option<&'a RemovalWindow> {
    let started = |w: &RemovalWindow| w.started.parse::<jiff::Timestamp>().ok();
    match (a, b) {
        (Some(a), Some(b)) => {
            if (started(b), b.removed) > (started(a), a.removed) {
                Some(b)
            } else {
                Some(a)
            }
        }
        (a, b) => a.or(b),
    }
}

/// A group as a pass reads it.
#[derive(Clone, Copy, Debug)]
pub struct Group<'a> {
    pub name: &'a str,
    pub spec: &'a InvitationGroupSpec,
    /// Annotated [`super::resource::ALLOW_EMPTY_ANNOTATION`].
    pub allows_empty: bool,
    /// `status.removals`.
    pub window: Option<&'a RemovalWindow>,
    /// `metadata.labels`: every child carries them ([`child_labels`]).
    pub labels: &'a BTreeMap<String, String>,
}

/// The plan of one pass over `group`, its children as listed, the budget, now and the resync
/// interval (the length of a removal window).
pub fn plan(
    group: Group<'_>,
    children: &[Child],
    budget: Budget,
    now: jiff::Timestamp,
    resync: Duration,
) -> Plan {
    let Group {
        name: group,
        spec,
        allows_empty,
        window,
        labels,
    } = group;
    let labels = child_labels(group, labels);
    let mut plan = Plan {
        window: window.cloned(),
        ..Plan::default()
    };
    if spec.members.is_empty() && !allows_empty {
        plan.refusal = Some(Refusal {
            reason: reason::EMPTY_MEMBERS,
            message: format!(
                "spec.members is empty: nobody is removed until the group is annotated {}: \"true\" (or members are listed again)",
                super::resource::ALLOW_EMPTY_ANNOTATION
            ),
        });
        return plan;
    }
    if let Some(twice) = repeated(&spec.members) {
        plan.refusal = Some(Refusal {
            reason: reason::DUPLICATE_MEMBERS,
            message: format!(
                "spec.members lists {twice} more than once (emails are compared without regard to case): nothing is done until it is listed once"
            ),
        });
        return plan;
    }
    let by_name: BTreeMap<&str, &Child> = children.iter().map(|c| (c.name.as_str(), c)).collect();
    let wanted: BTreeMap<String, (&str, InvitationSpec)> = spec
        .members
        .iter()
        .map(|m| (child_name(group, m), (m.as_str(), child_spec(spec, m))))
        .collect();

    // growth: refused as a whole when it would pass the budget
    let (after, held) = growth(spec, children);
    let over = budget
        .used
        .map(|used| (used - held.min(used) + after).saturating_sub(budget.limit))
        .filter(|over| *over > 0 && after > held);
    if let Some(over) = over {
        plan.refusal = Some(Refusal {
            reason: reason::ROLE_BINDING_BUDGET,
            message: format!(
                "{} members × {} role bindings would pass --role-binding-budget {} by {over} (counted over every Invitation this operator manages): no member is added and no binding granted until the group, or another, asks for fewer",
                spec.members.len(),
                spec.role_bindings.len(),
                budget.limit
            ),
        });
    }
    for (name, (_, desired)) in &wanted {
        match by_name.get(name.as_str()) {
            None if over.is_none() => plan.create.push((name.clone(), desired.clone())),
            None => {}
            Some(child) if child.deleting => {}
            // (an update that adds bindings waits with the rest of the growth)
            Some(child)
                if (child.spec != *desired
                    || labels.iter().any(|(k, v)| child.labels.get(k) != Some(v)))
                    && (over.is_none()
                        || desired.role_bindings.len() <= child.spec.role_bindings.len()) =>
            {
                plan.put_back.push((name.clone(), desired.clone()));
            }
            Some(_) => {}
        }
    }

    // removals: at most maxRemovalsPerSync per resync interval
    let mut removed: Vec<&Child> = children
        .iter()
        .filter(|c| !c.deleting && !wanted.contains_key(&c.name))
        .collect();
    removed.sort_by(|a, b| {
        a.spec
            .email
            .to_ascii_lowercase()
            .cmp(&b.spec.email.to_ascii_lowercase())
    });
    if removed.is_empty() {
        return plan;
    }
    let current = window.filter(|w| {
        w.started
            .parse::<jiff::Timestamp>()
            .is_ok_and(|t| Duration::try_from(now.duration_since(t)).is_ok_and(|age| age < resync))
    });
    let (started, already) = match current {
        Some(w) => (w.started.clone(), w.removed),
        None => (now.to_string(), 0),
    };
    let allowance =
        usize::try_from(spec.max_removals_per_sync.saturating_sub(already)).unwrap_or(0);
    let (now_going, waiting) = removed.split_at(allowance.min(removed.len()));
    plan.delete = now_going.iter().map(|c| c.name.clone()).collect();
    plan.throttled = waiting.iter().map(|c| c.name.clone()).collect();
    plan.window = Some(RemovalWindow {
        started: started.clone(),
        removed: already.saturating_add(i32::try_from(plan.delete.len()).unwrap_or(i32::MAX)),
    });
    if !plan.throttled.is_empty() {
        let age = started
            .parse::<jiff::Timestamp>()
            .ok()
            .and_then(|t| Duration::try_from(now.duration_since(t)).ok())
            .unwrap_or(Duration::ZERO);
        plan.next_window = Some(resync.saturating_sub(age).max(Duration::from_secs(1)));
    }
    plan
}

/// The first member listed twice, compared without regard to case.
fn repeated(members: &[String]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    members
        .iter()
        .find(|m| !seen.insert(m.to_ascii_lowercase()))
        .map(String::as_str)
}

/// The group's members as their Invitations show them, sorted by email, with the counts, and
/// the Ready condition's (status, reason, message).
pub fn status(
    spec: &InvitationGroupSpec,
    group: &str,
    children: &[Child],
    plan: &Plan,
) -> (
    Vec<MemberStatus>,
    Summary,
    (&'static str, &'static str, String),
) {
    let by_name: BTreeMap<&str, &Child> = children.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut members: Vec<MemberStatus> = Vec::new();
    let mut summary = Summary {
        members: i32::try_from(spec.members.len()).unwrap_or(i32::MAX),
        ..Summary::default()
    };
    let mut not_ready = Vec::new();
    for email in &spec.members {
        let name = child_name(group, email);
        let entry = match by_name.get(name.as_str()) {
            Some(child) => member_of(email, child),
            None => MemberStatus {
                email: email.clone(),
                invitation: name,
                ready: "Unknown".into(),
                reason: Some(
                    plan.refusal
                        .as_ref()
                        .map_or(reason::CREATING, |r| r.reason)
                        .to_owned(),
                ),
                ..MemberStatus::default()
            },
        };
        if entry.ready == "True" {
            summary.ready += 1;
        } else {
            not_ready.push(format!(
                "{} ({})",
                entry.email,
                entry.reason.as_deref().unwrap_or("no status yet")
            ));
        }
        match entry.phase.as_deref() {
            Some("Accepted") => summary.accepted += 1,
            None | Some("Pending" | "Sent" | "Staged") => summary.pending += 1,
            Some(_) => {}
        }
        if entry.reason.as_deref() == Some(reason::EMAIL_CONFLICT) {
            summary.conflicts += 1;
        }
        members.push(entry);
    }
    // removed members whose Invitation is still there
    let wanted: std::collections::BTreeSet<String> =
        spec.members.iter().map(|m| child_name(group, m)).collect();
    for child in children.iter().filter(|c| !wanted.contains(&c.name)) {
        let mut entry = member_of(&child.spec.email, child);
        entry.reason = Some(
            if plan.throttled.contains(&child.name) {
                reason::REMOVAL_THROTTLED
            } else {
                reason::REMOVING
            }
            .to_owned(),
        );
        members.push(entry);
    }
    members.sort_by(|a, b| {
        a.email
            .to_ascii_lowercase()
            .cmp(&b.email.to_ascii_lowercase())
    });
    let ready = if let Some(refusal) = &plan.refusal {
        ("False", refusal.reason, refusal.message.clone())
    } else if !plan.throttled.is_empty() {
        (
            "False",
            reason::REMOVAL_THROTTLED,
            format!(
                "{} members removed from spec.members wait: at most {} are removed per resync interval (maxRemovalsPerSync); the rest go at the next one, unless they are listed again",
                plan.throttled.len(),
                spec.max_removals_per_sync
            ),
        )
    } else if not_ready.is_empty() && members.len() == spec.members.len() {
        (
            "True",
            reason::MEMBERS_READY,
            format!("all {} members are Ready", spec.members.len()),
        )
    } else {
        let shown: Vec<&str> = not_ready.iter().take(5).map(String::as_str).collect();
        let more = not_ready.len().saturating_sub(shown.len());
        let removing = members.len() - spec.members.len();
        let mut message = format!("{} of {} members Ready", summary.ready, spec.members.len());
        if !shown.is_empty() {
            message.push_str(&format!("; not yet: {}", shown.join(", ")));
            if more > 0 {
                message.push_str(&format!(" and {more} more"));
            }
        }
        if removing > 0 {
            message.push_str(&format!("; {removing} removed members are being deleted"));
        }
        ("False", reason::MEMBERS_NOT_READY, message)
    };
    (members, summary, ready)
}

fn member_of(email: &str, child: &Child) -> MemberStatus {
    let status = child.status.as_ref();
    let ready = status.and_then(InvitationStatus::ready);
    MemberStatus {
        email: email.to_owned(),
        invitation: child.name.clone(),
        phase: status.and_then(|s| s.phase.clone()),
        user_id: status.and_then(|s| s.user_id.clone()),
        ready: ready.map_or_else(|| "Unknown".to_owned(), |c| c.status.clone()),
        reason: ready.map(|c| c.reason.clone()),
        message: ready
            .filter(|c| c.status != "True")
            .map(|c| c.message.clone()),
    }
}

#[cfg(test)]
mod tests;
