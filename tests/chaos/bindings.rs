//! Role bindings under chaos: a fixed share of the Invitations ([`SHARE`])
//! list 1–3 bindings over a few shared scopes the mock accepts (some exclusive), and the world
//! changes them mid-run: items added to, replaced in and removed from `spec.roleBindings`,
//! bindings removed out of band, unlisted bindings added out of band for an invitee, invitations
//! removed out of band (re-sent: a new user, whose predecessor's bindings must go), a stretch
//! under `--dry-run`. Faults hit every `/iam/v2/role-bindings` route (`tasks.rs`).
//!
//! Invariants:
//! - always: never two bindings of one (principal, role, CRN) in the mock; a status entry's id,
//!   while the mock has it, is a binding of that entry's principal (its `principal`, else
//!   `status.userId`), role and CRN (ids are never reused); a resource gone after its deletion
//!   with `Delete` or `DeleteUser` left no binding it recorded or listed for any user its email
//!   ever had, existing or not; one deleted before the operator took it on got none;
//! - converged: every live Invitation standing (SENT/STAGED/ACCEPTED) has each listed item
//!   `Bound` in status, in spec order, with the id of the one binding the mock holds for it; an
//!   exclusive one's user holds nothing else; an unlisted binding added out of band for a
//!   non-exclusive one is still there; and the exact accounting ([`account`]);
//! - final: `Orphan` kept the bindings it had at convergence; unlisted bindings of non-exclusive
//!   resources were never touched; the exact accounting again, with nothing left standing.
//!
//! A binding of a user who no longer exists is no less a leak: the mock drops an invitee's user
//! with its last invitation but keeps the user's bindings (the real service's behaviour there is
//! undocumented), and the operator can still delete a binding by id.

use std::collections::{BTreeMap, HashMap, HashSet};

use confluent_client::model::{InviteStatus, RemoteInvitation};
use confluent_client::role_bindings::{
    CreateRoleBinding, RemoteRoleBinding, decoded_crn, same_crn, user_principal,
};
use confluent_invitation_operator::invitation::resource::{DeletionPolicy, Invitation};
use confluent_invitation_operator::reason::EMAIL_CONFLICT;
use confluent_invitation_operator::role_bindings::resolve;
use confluent_invitation_operator::role_bindings::resource::{
    RoleBinding, RoleBindingState, RoleBindingStatus,
};
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};

use crate::invariants::{Outcome, Snapshot};
use crate::world::{ORG_ID, Planned, Stats, Violation, World, lock};

/// The share of the planned Invitations listing role bindings, in percent: 120 of the default
/// 200, whatever the seed.
pub const SHARE: usize = 60;

/// What the chaos Invitations list, relative to the organization: role/scope pairs the mock
/// accepts, over four shared scopes (two environments, a cluster, a topic).
pub const POOL: [(&str, &str); 6] = [
    ("EnvironmentAdmin", "environment=env-chaos0"),
    ("DataSteward", "environment=env-chaos0"),
    ("MetricsViewer", "environment=env-chaos1"),
    (
        "CloudClusterAdmin",
        "environment=env-chaos1/cloud-cluster=lkc-chaos1",
    ),
    (
        "DeveloperRead",
        "environment=env-chaos0/cloud-cluster=lkc-chaos0/kafka=lkc-chaos0/topic=orders",
    ),
    (
        "DeveloperWrite",
        "environment=env-chaos0/cloud-cluster=lkc-chaos0/kafka=lkc-chaos0/topic=orders",
    ),
];

/// The binding the test adds out of band: a pair no Invitation ever lists.
const FOREIGN: (&str, &str) = ("FlinkDeveloper", "environment=env-chaos2");

/// Item `i` of [`POOL`].
pub fn item(i: usize) -> RoleBinding {
    let (role, crn) = POOL[i % POOL.len()];
    RoleBinding {
        role_name: role.into(),
        crn_pattern: crn.into(),
    }
}

/// `k` distinct items of the pool, in random order.
pub fn pick(rng: &mut fastrand::Rng, k: usize) -> Vec<RoleBinding> {
    let mut all: Vec<usize> = (0..POOL.len()).collect();
    rng.shuffle(&mut all);
    all.into_iter().take(k).map(item).collect()
}

/// The absolute CRN of a listed pattern in the mock's organization.
pub fn absolute(crn_pattern: &str) -> String {
    resolve(crn_pattern, Some(ORG_ID)).unwrap_or_else(|_| crn_pattern.to_owned())
}

/// An unlisted binding the test added out of band for a resource's user.
#[derive(Clone, Debug)]
pub struct Foreign {
    pub name: String,
    pub id: String,
    pub principal: String,
    /// Whether the resource is exclusive (then the binding must go).
    pub exclusive: bool,
}

/// (principal, role, decoded CRN).
type Key = (String, String, String);

fn key_of(principal: &str, role: &str, crn: &str) -> Key {
    (
        principal.to_owned(),
        role.to_owned(),
        decoded_crn(crn).into_owned(),
    )
}

/// The mock's bindings, indexed.
pub struct Held<'a> {
    by_id: HashMap<&'a str, &'a RemoteRoleBinding>,
    by_key: HashMap<Key, Vec<&'a RemoteRoleBinding>>,
    by_principal: HashMap<&'a str, Vec<&'a RemoteRoleBinding>>,
}

impl<'a> Held<'a> {
    pub fn of(bindings: &'a [RemoteRoleBinding]) -> Self {
        let mut held = Self {
            by_id: HashMap::new(),
            by_key: HashMap::new(),
            by_principal: HashMap::new(),
        };
        for b in bindings {
            if let Some(id) = b.id.as_deref() {
                held.by_id.insert(id, b);
            }
            let (Some(p), Some(r), Some(c)) = (
                b.principal.as_deref(),
                b.role_name.as_deref(),
                b.crn_pattern.as_deref(),
            ) else {
                continue;
            };
            held.by_key.entry(key_of(p, r, c)).or_default().push(b);
            held.by_principal.entry(p).or_default().push(b);
        }
        held
    }

    /// The bindings granting `item` (relative or absolute) to `principal`.
    pub fn granting(&self, principal: &str, item: &RoleBinding) -> &[&'a RemoteRoleBinding] {
        self.by_key
            .get(&key_of(
                principal,
                &item.role_name,
                &absolute(&item.crn_pattern),
            ))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

fn describe(b: &RemoteRoleBinding) -> String {
    format!(
        "{} {} {} on {}",
        b.id.as_deref().unwrap_or("?"),
        b.principal.as_deref().unwrap_or("?"),
        b.role_name.as_deref().unwrap_or("?"),
        b.crn_pattern.as_deref().unwrap_or("?")
    )
}

/// Every user id any invitation of `email` ever had (existing or not; removed invitations'
/// included).
pub fn users_ever(snap: &Snapshot, email: &str) -> Vec<String> {
    let email = email.to_ascii_lowercase();
    snap.user_emails
        .iter()
        .filter(|(_, e)| **e == email)
        .map(|(u, _)| u.clone())
        .collect()
}

/// The principals of every user `email` ever had.
pub fn principals_ever(snap: &Snapshot, email: &str) -> Vec<String> {
    users_ever(snap, email)
        .iter()
        .map(|u| user_principal(u))
        .collect()
}

/// The principals of `email`'s users that still exist.
pub fn existing_principals(snap: &Snapshot, email: &str) -> Vec<String> {
    let existing: HashSet<&str> = snap.users.iter().filter_map(|u| u.id.as_deref()).collect();
    users_ever(snap, email)
        .into_iter()
        .filter(|u| existing.contains(u.as_str()))
        .map(|u| user_principal(&u))
        .collect()
}

/// Whose binding a status entry records: its `principal`, else the invitee's (`userId`). Read
/// through JSON so that this holds whatever type the field has.
fn entry_principal(e: &RoleBindingStatus, user_id: Option<&str>) -> Option<String> {
    serde_json::to_value(e)
        .ok()
        .and_then(|v| v.get("principal")?.as_str().map(str::to_owned))
        .or_else(|| user_id.map(user_principal))
}

/// See the module's comment, "always".
pub fn check_always(snap: &Snapshot, out: &mut Outcome) {
    let held = Held::of(&snap.bindings);
    for ((principal, role, crn), found) in &held.by_key {
        out.assert(found.len() <= 1, || {
            Violation::new(
                &format!("duplicate-binding:{principal}:{role}:{crn}"),
                None,
                format!(
                    "{} bindings of {role} on {crn} for {principal}: {}",
                    found.len(),
                    found
                        .iter()
                        .map(|b| describe(b))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            )
        });
    }
    for (name, r) in &snap.resources {
        if snap.forged.contains(name) {
            continue;
        }
        let Some(status) = r.status.as_ref() else {
            continue;
        };
        let subject = snap.created.get(name);
        for e in &status.role_bindings {
            let Some(b) = e.id.as_deref().and_then(|id| held.by_id.get(id)) else {
                continue; // not (yet, or any more) in the mock: checked once converged
            };
            let principal = entry_principal(e, status.user_id.as_deref());
            out.assert(
                b.role_name.as_deref() == Some(e.role_name.as_str())
                    && b.crn_pattern
                        .as_deref()
                        .is_some_and(|c| same_crn(c, &e.crn_pattern))
                    && (principal.is_none() || b.principal == principal),
                || Violation {
                    key: format!("status-binding-foreign:{name}"),
                    subject: subject.map(|p| p.name.clone()).or(Some(name.clone())),
                    message: format!(
                        "{name}: status entry {} on {} for {} names {}, another principal, role or scope",
                        e.role_name,
                        e.crn_pattern,
                        principal.as_deref().unwrap_or("?"),
                        describe(b)
                    ),
                },
            );
        }
    }
    for (name, p) in &snap.created {
        if snap.resources.contains_key(name)
            || !snap.deleted.contains(name)
            || snap.forged.contains(name)
        {
            continue;
        }
        let unowned = snap.unowned.contains(name);
        if !unowned && p.policy == DeletionPolicy::Orphan {
            continue;
        }
        let recorded = snap.recorded_bindings.get(name);
        let mut left: Vec<String> = Vec::new();
        for principal in principals_ever(snap, &p.email) {
            for b in held
                .by_principal
                .get(principal.as_str())
                .into_iter()
                .flatten()
            {
                let was_recorded =
                    b.id.as_deref()
                        .is_some_and(|id| recorded.is_some_and(|r| r.contains(id)));
                let listed = p.role_bindings.iter().any(|item| {
                    b.role_name.as_deref() == Some(item.role_name.as_str())
                        && b.crn_pattern
                            .as_deref()
                            .is_some_and(|c| same_crn(c, &absolute(&item.crn_pattern)))
                });
                if was_recorded || listed {
                    left.push(format!(
                        "{}{}",
                        describe(b),
                        if was_recorded {
                            " (recorded in its status)"
                        } else {
                            " (listed, never seen in its status)"
                        }
                    ));
                }
            }
        }
        let kind = if unowned {
            "bound-for-unowned"
        } else {
            "binding-left-behind"
        };
        out.assert(left.is_empty(), || {
            Violation::new(
                kind,
                Some(p),
                format!(
                    "{name} ({:?}{}) is gone but its bindings remain: {}",
                    p.policy,
                    if unowned {
                        ", deleted before the operator took it on"
                    } else {
                        ""
                    },
                    left.join("; ")
                ),
            )
        });
    }
}

/// See the module's comment, "converged".
pub fn check_converged(snap: &Snapshot, out: &mut Outcome) {
    let held = Held::of(&snap.bindings);
    let remote = remote_by_id(snap);
    for (name, p) in &snap.created {
        if snap.deleted.contains(name) {
            continue;
        }
        let Some(r) = snap.resources.get(name) else {
            continue;
        };
        let Some(status) = r.status.as_ref() else {
            continue; // invariants.rs reports it
        };
        let standing = status
            .invitation_id
            .as_deref()
            .and_then(|id| remote.get(id))
            .and_then(|i| i.status.as_ref())
            .is_some_and(InviteStatus::is_live);
        let Some(user) = status.user_id.as_deref().filter(|_| standing) else {
            continue;
        };
        let principal = user_principal(user);
        let v = |kind: &str, what: String| {
            Violation::new(
                kind,
                Some(p),
                format!(
                    "{name} ({}, exclusive {}): {what}; status.roleBindings {}",
                    p.email,
                    p.exclusive,
                    serde_json::to_string(&status.role_bindings).unwrap_or_default()
                ),
            )
        };
        let entries_match = status.role_bindings.len() == p.role_bindings.len()
            && status
                .role_bindings
                .iter()
                .zip(&p.role_bindings)
                .all(|(e, item)| {
                    e.role_name == item.role_name
                        && same_crn(&e.crn_pattern, &absolute(&item.crn_pattern))
                        && e.state == RoleBindingState::Bound
                        && e.id.is_some()
                });
        out.assert(entries_match, || {
            v(
                "binding-status",
                format!(
                    "spec lists {:?}; every item should be Bound, in spec order",
                    p.role_bindings
                        .iter()
                        .map(|i| format!("{} on {}", i.role_name, i.crn_pattern))
                        .collect::<Vec<_>>()
                ),
            )
        });
        for item in &p.role_bindings {
            let found = held.granting(&principal, item);
            let recorded = status
                .role_bindings
                .iter()
                .find(|e| {
                    e.role_name == item.role_name
                        && same_crn(&e.crn_pattern, &absolute(&item.crn_pattern))
                })
                .and_then(|e| e.id.as_deref());
            out.assert(
                found.len() == 1 && found[0].id.as_deref() == recorded && recorded.is_some(),
                || {
                    v(
                        "binding-not-exactly-one",
                        format!(
                            "{} on {}: the mock holds [{}], status names {recorded:?}",
                            item.role_name,
                            item.crn_pattern,
                            found
                                .iter()
                                .map(|b| describe(b))
                                .collect::<Vec<_>>()
                                .join("; ")
                        ),
                    )
                },
            );
        }
        if p.exclusive {
            let all = held
                .by_principal
                .get(principal.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let unlisted: Vec<String> = all
                .iter()
                .filter(|b| {
                    !p.role_bindings.iter().any(|item| {
                        b.role_name.as_deref() == Some(item.role_name.as_str())
                            && b.crn_pattern
                                .as_deref()
                                .is_some_and(|c| same_crn(c, &absolute(&item.crn_pattern)))
                    })
                })
                .map(|b| describe(b))
                .collect();
            out.assert(unlisted.is_empty(), || {
                v(
                    "exclusive-extra",
                    format!("the user holds unlisted bindings: {}", unlisted.join("; ")),
                )
            });
        }
    }
    foreign_untouched(snap, &held, out);
    account(snap).assert(out);
}

/// Unlisted bindings added out of band for a non-exclusive resource's user are never touched
/// (while the user exists).
fn foreign_untouched(snap: &Snapshot, held: &Held<'_>, out: &mut Outcome) {
    let existing: HashSet<String> = snap
        .users
        .iter()
        .filter_map(|u| u.id.as_deref().map(user_principal))
        .collect();
    for f in &snap.foreign {
        if f.exclusive || !existing.contains(&f.principal) {
            continue;
        }
        out.assert(held.by_id.contains_key(f.id.as_str()), || Violation {
            key: format!("foreign-binding-touched:{}", f.name),
            subject: Some(f.name.clone()),
            message: format!(
                "{} (not exclusive): the unlisted binding {} of {} added out of band is gone",
                f.name, f.id, f.principal
            ),
        });
    }
}

/// The binding ids each live resource recorded as Bound once converged.
pub type Converged = BTreeMap<String, Vec<String>>;

pub fn converged(snap: &Snapshot) -> Converged {
    snap.resources
        .iter()
        .filter_map(|(name, r)| {
            let ids: Vec<String> = r
                .status
                .as_ref()?
                .role_bindings
                .iter()
                .filter(|e| e.state == RoleBindingState::Bound)
                .filter_map(|e| e.id.clone())
                .collect();
            (!ids.is_empty()).then(|| (name.clone(), ids))
        })
        .collect()
}

/// See the module's comment, "final".
pub fn check_final(snap: &Snapshot, converged: &Converged, out: &mut Outcome) {
    let held = Held::of(&snap.bindings);
    for (name, ids) in converged {
        let Some(p) = snap.created.get(name) else {
            continue;
        };
        if p.policy != DeletionPolicy::Orphan {
            continue;
        }
        // (the test's own out-of-band removals are not the operator's doing: an expired
        // invitation's bindings are not recreated, and convergence does not check them)
        let gone: Vec<&String> = ids
            .iter()
            .filter(|id| !held.by_id.contains_key(id.as_str()))
            .filter(|id| !snap.removed_bindings.contains(id.as_str()))
            .collect();
        out.assert(gone.is_empty(), || {
            Violation::new(
                "orphan-binding-touched",
                Some(p),
                format!("{name} (Orphan): its bindings {gone:?} are gone"),
            )
        });
    }
    foreign_untouched(snap, &held, out);
    account(snap).assert(out);
}

/// The mock's invitations by id.
fn remote_by_id(snap: &Snapshot) -> HashMap<&str, &RemoteInvitation> {
    snap.remote
        .iter()
        .filter_map(|r| Some((r.id.as_deref()?, r)))
        .collect()
}

/// The current user of a live resource that stands: not being deleted, its status not forged,
/// not an `EmailConflict` loser, naming a SENT/STAGED/ACCEPTED invitation.
fn standing_user<'a>(
    snap: &Snapshot,
    remote: &HashMap<&str, &'a RemoteInvitation>,
    name: &str,
    r: &Invitation,
) -> Option<&'a str> {
    if r.metadata.deletion_timestamp.is_some() || snap.forged.contains(name) {
        return None;
    }
    let status = r.status.as_ref()?;
    if status
        .ready()
        .is_some_and(|c| c.reason.as_str() == EMAIL_CONFLICT)
    {
        return None;
    }
    let inv = remote.get(status.invitation_id.as_deref()?)?;
    if !inv.status.as_ref().is_some_and(InviteStatus::is_live) {
        return None;
    }
    inv.user_id()
}

/// The exact accounting of the mock's bindings at a moment the operator should be done (faults
/// stopped; converged, or everything deleted). Each binding is wanted (an item of a live,
/// standing, non-conflicting Invitation, for its current user) or one of the exceptions counted
/// below; anything else is leaked: a previous user's, a removed item's, a deleted `Delete` or
/// `DeleteUser` resource's, one made for an Invitation and forgotten. Each wanted binding is
/// held exactly once, and no binding id is recorded by two status entries.
#[derive(Default)]
pub struct Accounting {
    /// The users the chaos emails ever had (current and previous, existing or not).
    pub principals: usize,
    /// The mock's bindings.
    pub held: usize,
    /// The (principal, role, CRN) the standing Invitations want, and how many of them are held.
    pub wanted: usize,
    pub matched: usize,
    /// Unlisted bindings the test added out of band for a user not of a standing exclusive
    /// Invitation: never the operator's to delete.
    pub foreign: usize,
    /// Of the users of an `Orphan` Invitation deleted: its policy leaves them.
    pub orphan_kept: usize,
    /// Recorded by a live Invitation that does not stand (expired, or being deleted): it keeps
    /// them until it stands again or its cleanup runs.
    pub kept: usize,
    /// Of the email of a resource whose status the test forged (not judged, as elsewhere).
    pub forged: usize,
    pub leaked: Vec<Violation>,
    pub missing: Vec<Violation>,
    pub duplicated: Vec<Violation>,
}

impl Accounting {
    /// Its figures, for progress lines and the summary.
    pub fn figures(&self) -> String {
        format!(
            "{} bindings held, {} principals ever: {} of {} wanted held; leaked {}, missing {}, \
             duplicated {}; left alone: {} unlisted of the test's, {} kept by Orphan, {} recorded \
             by Invitations not standing, {} of forged statuses",
            self.held,
            self.principals,
            self.matched,
            self.wanted,
            self.leaked.len(),
            self.missing.len(),
            self.duplicated.len(),
            self.foreign,
            self.orphan_kept,
            self.kept,
            self.forged
        )
    }

    /// Its violations, into `out` (one assertion per binding held and per binding wanted).
    pub fn assert(&self, out: &mut Outcome) {
        out.assertions += (self.held + self.wanted) as u64;
        for v in self
            .leaked
            .iter()
            .chain(&self.missing)
            .chain(&self.duplicated)
        {
            out.assert(false, || v.clone());
        }
    }
}

/// See [`Accounting`].
pub fn account(snap: &Snapshot) -> Accounting {
    let held = Held::of(&snap.bindings);
    let remote = remote_by_id(snap);
    let mut acc = Accounting {
        principals: snap.user_emails.len(),
        held: snap.bindings.len(),
        ..Accounting::default()
    };
    let violation = |kind: &str, key: &str, subject: Option<&str>, message: String| Violation {
        key: format!("{kind}:{key}"),
        subject: subject.map(str::to_owned),
        message,
    };
    // the live resources: who stands (with its current user), by email; who records which id,
    // and which binding (an entry without an id yet, a create whose answer is not confirmed,
    // still records its principal, role and pattern)
    let mut standing: HashMap<&str, Option<&str>> = HashMap::new();
    let mut live: HashMap<String, Vec<&str>> = HashMap::new();
    let mut recorded: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut recorded_keys: HashMap<Key, Vec<&str>> = HashMap::new();
    let mut wanted: BTreeMap<Key, &str> = BTreeMap::new();
    let mut exclusive: HashSet<String> = HashSet::new();
    for (name, r) in &snap.resources {
        let user = standing_user(snap, &remote, name, r);
        standing.insert(name, user);
        live.entry(r.spec.email.to_ascii_lowercase())
            .or_default()
            .push(name);
        if let Some(status) = r.status.as_ref().filter(|_| !snap.forged.contains(name)) {
            for e in &status.role_bindings {
                if let Some(id) = e.id.as_deref() {
                    recorded.entry(id).or_default().push(name);
                }
                if let Some(principal) = entry_principal(e, status.user_id.as_deref()) {
                    let k = key_of(&principal, &e.role_name, &e.crn_pattern);
                    recorded_keys.entry(k).or_default().push(name);
                }
            }
        }
        let Some(user) = user else { continue };
        let principal = user_principal(user);
        for item in &r.spec.role_bindings {
            let k = key_of(&principal, &item.role_name, &absolute(&item.crn_pattern));
            wanted.entry(k).or_insert(name);
        }
        if r.spec.exclusive_role_bindings {
            exclusive.insert(principal);
        }
    }
    // the resources gone, by email, with their policy (none: deleted before the operator took
    // it on, so nothing may have been made for it)
    let mut gone: HashMap<String, Vec<(&str, Option<DeletionPolicy>)>> = HashMap::new();
    let pairs = snap.pairs.iter().flat_map(|p| {
        [&p.owner, &p.rival].map(|name| (name, p.email.as_str(), DeletionPolicy::Delete))
    });
    let planned = snap
        .created
        .iter()
        .map(|(name, p)| (name, p.email.as_str(), p.policy));
    for (name, email, policy) in planned.chain(pairs) {
        if snap.deleted.contains(name) && !snap.resources.contains_key(name) {
            let policy = (!snap.unowned.contains(name)).then_some(policy);
            gone.entry(email.to_ascii_lowercase())
                .or_default()
                .push((name, policy));
        }
    }
    let forged: HashSet<String> = snap
        .forged
        .iter()
        .filter_map(|n| snap.created.get(n))
        .map(|p| p.email.to_ascii_lowercase())
        .collect();
    let foreign: HashSet<&str> = snap.foreign.iter().map(|f| f.id.as_str()).collect();

    for b in &snap.bindings {
        let (Some(id), Some(principal), Some(role), Some(crn)) = (
            b.id.as_deref(),
            b.principal.as_deref(),
            b.role_name.as_deref(),
            b.crn_pattern.as_deref(),
        ) else {
            continue; // the mock always renders all four
        };
        let k = key_of(principal, role, crn);
        if wanted.contains_key(&k) {
            continue; // counted with what is wanted, below
        }
        let user = principal.strip_prefix("User:").unwrap_or(principal);
        let email = snap.user_emails.get(user);
        let names_of_email: Vec<&str> = email
            .and_then(|e| live.get(e))
            .into_iter()
            .flatten()
            .copied()
            .collect();
        let recorders: Vec<&str> = recorded
            .get(id)
            .into_iter()
            .chain(recorded_keys.get(&k))
            .flatten()
            .copied()
            .collect();
        let why = if foreign.contains(id) {
            if !exclusive.contains(principal) {
                acc.foreign += 1;
                continue;
            }
            "an unlisted binding added out of band for the user of an exclusive Invitation".into()
        } else if email.is_some_and(|e| forged.contains(e)) {
            acc.forged += 1;
            continue;
        } else if recorders.iter().any(|n| standing.get(n) == Some(&None)) {
            acc.kept += 1;
            continue;
        } else if let Some(e) = email
            && names_of_email.is_empty()
            && gone
                .get(e)
                .is_some_and(|g| g.iter().any(|(_, p)| *p == Some(DeletionPolicy::Orphan)))
        {
            acc.orphan_kept += 1;
            continue;
        } else if let Some(n) = recorders.first() {
            format!(
                "recorded by {n}, which does not want it (a removed item, or a previous user's: its user is {:?})",
                standing.get(n).copied().flatten()
            )
        } else if let Some(n) = names_of_email.first() {
            format!(
                "of a user of {n}'s email, recorded by no status ({n}'s user is {:?}; users ever: {:?})",
                standing.get(n).copied().flatten(),
                email.map(|e| users_ever(snap, e)).unwrap_or_default()
            )
        } else if let Some(g) = email.and_then(|e| gone.get(e)) {
            let names: Vec<String> = g
                .iter()
                .map(|(n, p)| match p {
                    Some(p) => format!("{n} ({p:?})"),
                    None => format!("{n} (deleted before the operator took it on)"),
                })
                .collect();
            format!("of a user of deleted {}", names.join(", "))
        } else {
            "for a principal no chaos email ever had".into()
        };
        let subject = recorders
            .first()
            .or(names_of_email.first())
            .copied()
            .or_else(|| {
                email
                    .and_then(|e| gone.get(e))
                    .and_then(|g| g.first())
                    .map(|(n, _)| *n)
            });
        acc.leaked.push(violation(
            "binding-leaked",
            id,
            subject,
            format!(
                "{}: {why}; statuses that ever recorded its id: {:?}",
                describe(b),
                snap.recorded_bindings
                    .iter()
                    .filter(|(_, ids)| ids.contains(id))
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>()
            ),
        ));
    }
    for (k, name) in &wanted {
        acc.wanted += 1;
        if held.by_key.contains_key(k) {
            acc.matched += 1;
            continue;
        }
        let (principal, role, crn) = k;
        acc.missing.push(violation(
            "binding-missing",
            &format!("{name}:{role}:{crn}"),
            Some(name),
            format!("{name} wants {role} on {crn} for {principal}; the mock holds none"),
        ));
    }
    for ((principal, role, crn), found) in &held.by_key {
        if found.len() > 1 {
            acc.duplicated.push(violation(
                "binding-duplicated",
                &format!("{principal}:{role}:{crn}"),
                None,
                format!(
                    "{} bindings of {role} on {crn} for {principal}",
                    found.len()
                ),
            ));
        }
    }
    for (id, names) in &recorded {
        if names.len() > 1 {
            acc.duplicated.push(violation(
                "binding-recorded-twice",
                id,
                names.first().copied(),
                format!(
                    "{id} is recorded by {} status entries: {names:?}",
                    names.len()
                ),
            ));
        }
    }
    acc
}

/// The live resources and their status, for the tasks below.
async fn standing(
    w: &World,
) -> Vec<confluent_invitation_operator::invitation::resource::Invitation> {
    w.list()
        .await
        .into_iter()
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .collect()
}

/// Changes a resource's `spec.roleBindings`: adds an item, replaces one by another (in its
/// place), or removes one; with `shrink`, only the last two, so that a binding must go. Records
/// the spec as it then stands (a patch whose answer was lost may still have gone through).
pub async fn edit(w: &World, rng: &mut fastrand::Rng, candidates: &[Planned], shrink: bool) {
    let p = &candidates[rng.usize(0..candidates.len())];
    let mut items = p.role_bindings.clone();
    let absent: Vec<RoleBinding> = (0..POOL.len())
        .map(item)
        .filter(|i| !items.contains(i))
        .collect();
    let new = absent[rng.usize(0..absent.len())].clone(); // the pool is twice the longest list
    enum Edit {
        Add,
        Replace,
        Remove,
    }
    let edit = match rng.u32(0..3) {
        _ if items.is_empty() && shrink => return,
        _ if items.is_empty() => Edit::Add,
        0 if !shrink && items.len() < 3 => Edit::Add,
        0 | 1 => Edit::Replace,
        _ => Edit::Remove,
    };
    let counter = match edit {
        Edit::Add => {
            items.push(new);
            &w.stats.items_added
        }
        Edit::Replace => {
            let i = rng.usize(0..items.len());
            items[i] = new;
            &w.stats.items_replaced
        }
        Edit::Remove => {
            items.remove(rng.usize(0..items.len()));
            &w.stats.items_removed
        }
    };
    let patch = serde_json::json!({"spec": {"roleBindings": items}});
    let pp = PatchParams::default();
    let merge = Patch::Merge(&patch);
    let _ = w
        .kube("edit role bindings", || w.api.patch(&p.name, &pp, &merge))
        .await;
    if let Ok(Some(now)) = w.kube("read edited", || w.api.get_opt(&p.name)).await
        && let Some(planned) = lock(&w.ledger.planned).get_mut(&p.name)
    {
        planned.role_bindings = now.spec.role_bindings.clone();
    }
    Stats::add(counter, 1);
    Stats::add(&w.stats.bindings_edited, 1);
}

/// Removes one recorded binding of a live resource out of band.
pub async fn remove_out_of_band(w: &World, rng: &mut fastrand::Rng) {
    let bound: Vec<String> = standing(w)
        .await
        .iter()
        .filter_map(|r| r.status.as_ref())
        .flat_map(|s| s.role_bindings.iter())
        .filter(|e| e.state == RoleBindingState::Bound)
        .filter_map(|e| e.id.clone())
        .collect();
    if bound.is_empty() {
        return;
    }
    let id = &bound[rng.usize(0..bound.len())];
    // in the ledger first: a snapshot taken meanwhile must not blame the operator
    lock(&w.ledger.removed_bindings).insert(id.clone());
    if w.remote().remove_role_binding(id).is_ok() {
        Stats::add(&w.stats.bindings_removed, 1);
    }
}

/// Adds an unlisted binding out of band for a live resource's user: an exclusive resource must
/// delete it, any other must leave it alone.
pub async fn add_foreign(w: &World, rng: &mut fastrand::Rng) {
    let planned = lock(&w.ledger.planned).clone();
    let users: Vec<(String, String, bool)> = standing(w)
        .await
        .iter()
        .filter_map(|r| {
            let user = r.status.as_ref()?.user_id.clone()?;
            let p = planned.get(&r.name_any())?;
            Some((r.name_any(), user, p.exclusive))
        })
        .collect();
    if users.is_empty() {
        return;
    }
    let (name, user, exclusive) = &users[rng.usize(0..users.len())];
    let principal = user_principal(user);
    let seeded = w.remote().seed_role_binding(&CreateRoleBinding {
        principal: principal.clone(),
        role_name: FOREIGN.0.into(),
        crn_pattern: absolute(FOREIGN.1),
    });
    if let Some(id) = seeded.id {
        lock(&w.ledger.foreign_bindings).push(Foreign {
            name: name.clone(),
            id,
            principal,
            exclusive: *exclusive,
        });
        Stats::add(&w.stats.bindings_foreign, 1);
    }
}
