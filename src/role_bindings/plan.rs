//! The decision: (what is desired, what was observed, what the ledger records) → the exact
//! reads still needed, the writes, and the ledger as it must stand before any write runs. The
//! controller performs the reads and plans again, records the ledger when a create is to be
//! sent (so a create whose answer is lost is never unrecorded), performs the writes and
//! settles each one into the ledger ([`Plan::settle`]).
//!
//! Every entry of the ledger is carried into the plan's ledger unless Confluent confirmed its
//! binding gone (an exact read of this reconcile found nothing) or it never had a binding (no
//! id, no create in flight). Nothing else drops one: a failed list, a step that did not run, a
//! refusal, a policy, a dry run.

use std::collections::BTreeSet;

use crate::role_bindings::resource::{RoleBindingState, RoleBindingStatus};
use confluent_client::role_bindings::{CreateRoleBinding, user_principal};

use super::desired::{Desired, role_allowed};
use super::ledger::{Key, may_exist};
use super::observed::{Observed, Read, Seen};

/// Why a binding is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteCause {
    /// This resource created (or adopted) it, and its item left the spec.
    RemovedFromSpec,
    /// Another binding of the invitee, removed because of `exclusiveRoleBindings`.
    Exclusive,
    /// A binding of the invitee's previous user: the invitation was sent again (recreated,
    /// re-invited), the invitee is a new user, and the old one's grants must not linger.
    PreviousUser,
    /// Listed, but no longer allowed, and the rule says to revoke what exists.
    Disallowed,
    /// The resource is being deleted with a policy that removes its bindings.
    Cleanup,
}

impl DeleteCause {
    /// What a `Deleting` entry says of itself.
    fn message(self, key: &Key) -> String {
        match self {
            Self::RemovedFromSpec => "no longer in spec.roleBindings: to be deleted".to_owned(),
            Self::Exclusive => {
                "not in spec.roleBindings, and exclusiveRoleBindings is true: to be deleted"
                    .to_owned()
            }
            Self::PreviousUser => format!(
                "a binding of the previous invitee {}: to be deleted",
                key.user()
            ),
            Self::Disallowed => "no longer allowed: to be deleted".to_owned(),
            Self::Cleanup => "the Invitation is deleted: to be deleted".to_owned(),
        }
    }
}

/// What happens to a binding that is listed but not allowed any more.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnDisallowed {
    /// It stays, recorded as `Disallowed`, until the Invitation is deleted.
    #[default]
    Keep,
    /// It is deleted.
    Revoke,
}

/// One write (or, for `Adopt`, an Event with no call), on the plan's ledger entry `entry`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Delete the binding `id` (a 404 or the 403 of a missing binding means done).
    Delete {
        entry: usize,
        id: String,
        cause: DeleteCause,
    },
    /// Create the binding (after a 409: look it up exactly, and take it).
    Create {
        entry: usize,
        request: CreateRoleBinding,
    },
    /// The binding exists already under `id`, unrecorded until now: an Event, no call.
    /// `recovered`: a create of this resource whose answer was lost made it.
    Adopt {
        entry: usize,
        id: String,
        recovered: bool,
    },
}

/// The plan of one reconcile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The ledger as it must be recorded before the writes run: desired items first, in spec
    /// order, then every other binding still to account for. An entry to be created is
    /// `Creating` already.
    pub ledger: Vec<RoleBindingStatus>,
    /// Exact reads to make before the entries they concern can be decided: make them, add
    /// their answers to the observation, and plan again (never asked twice).
    pub reads: Vec<Read>,
    /// The writes: deletes first (access that must go goes before any is added), then
    /// creates; adopts anywhere.
    pub steps: Vec<Step>,
    /// Entries whose binding Confluent confirmed gone by a settled step.
    pub(super) gone: BTreeSet<usize>,
    /// Entries whose binding must go (a deletion policy that keeps one leaves it out).
    pub(super) removing: BTreeSet<usize>,
}

/// What a live Invitation asks of its bindings.
#[derive(Clone, Copy, Debug)]
pub struct Live<'a> {
    /// The invitee's user id (`None` until the invitation carries one: everything waits).
    pub invitee: Option<&'a str>,
    /// The user `status.userId` recorded, whose are the entries written before entries named
    /// their principal.
    pub recorded_user: Option<&'a str>,
    /// The invitation's organization, for the organization-wide list `exclusive` reads.
    pub organization: Option<&'a str>,
    /// `spec.roleBindings`, resolved for the invitee.
    pub desired: &'a [Desired],
    /// `spec.exclusiveRoleBindings`.
    pub exclusive: bool,
    /// The roles the operator may manage (`None`: any): `exclusive` deletes unlisted bindings
    /// of these only.
    pub allowed_roles: Option<&'a [String]>,
    /// What becomes of a listed binding that is not allowed any more.
    pub on_disallowed: OnDisallowed,
    /// Bindings Confluent refused recently: not tried again until their backoff passed.
    pub refused_recently: &'a BTreeSet<Key>,
}

/// Which bindings of a deleted resource's ledger go, as its deletion policy says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Removal {
    /// The invitee's own (those the successor's ledger records excepted).
    pub invitees: bool,
    /// A previous invitee's.
    pub previous: bool,
}

/// What a deleted resource's policy does to its bindings.
#[derive(Clone, Copy, Debug)]
pub struct Cleanup<'a> {
    /// Which bindings go.
    pub removal: Removal,
    /// The invitee `status.userId` recorded.
    pub recorded_user: Option<&'a str>,
    /// The ledger of the Invitation that takes the email over, if one does: the invitation and
    /// the user stay, and a binding stays with them only when that ledger records its id. One
    /// the successor merely lists goes like any other (the successor, woken, creates its own):
    /// kept unrecorded, it would be nobody's once the successor went before adopting it.
    pub successor: Option<&'a [RoleBindingStatus]>,
}

/// What one entry is to become.
#[derive(Clone, Copy, Debug)]
enum Want<'a> {
    /// Desired and allowed: hold it.
    Hold(&'a CreateRoleBinding),
    /// Desired, not allowed: the reason.
    Disallowed(&'a str, OnDisallowed),
    /// Not desired: it must go.
    Remove(DeleteCause),
    /// Left as it is (a deletion policy that keeps it).
    Keep,
}

/// What the decision of one entry came to.
enum Decision {
    /// Nothing exists (any more): the entry leaves the ledger.
    Drop,
    /// Recorded as this, nothing to do now.
    Record(RoleBindingStatus),
    /// Recorded as this until `Read` is answered.
    Read(RoleBindingStatus, Read),
    /// Recorded as this, and a write.
    Write(RoleBindingStatus, Write),
}

enum Write {
    Delete(String, DeleteCause),
    Create(CreateRoleBinding),
    Adopt(String, bool),
}

fn bound(key: &Key, id: &str) -> RoleBindingStatus {
    key.entry(RoleBindingState::Bound, Some(id.to_owned()), None)
}

fn id_of(b: &confluent_client::role_bindings::RemoteRoleBinding) -> Option<&str> {
    b.id.as_deref()
}

/// Holds a desired, allowed binding.
fn hold(
    key: &Key,
    entry: Option<&RoleBindingStatus>,
    request: &CreateRoleBinding,
    observed: &Observed,
    refused_recently: bool,
) -> Decision {
    let recorded_id = entry.and_then(|e| e.id.clone());
    let create = |message: Option<String>| {
        Decision::Write(
            key.entry(RoleBindingState::Creating, recorded_id.clone(), message),
            Write::Create(request.clone()),
        )
    };
    let take = |id: &str, recovered: bool| {
        let entry = bound(key, id);
        if recorded_id.as_deref() == Some(id) && !recovered {
            Decision::Record(entry)
        } else {
            Decision::Write(entry, Write::Adopt(id.to_owned(), recovered))
        }
    };
    if entry.is_some_and(|e| e.state == RoleBindingState::Creating) {
        // a create of ours may have gone through: only an exact read of now tells
        return match observed.found(key) {
            Some(Seen::Present(b)) => id_of(b).map_or(Decision::Drop, |id| take(id, true)),
            Some(Seen::Gone) => create(None),
            Some(Seen::Unknown(why)) => Decision::Record(key.entry(
                RoleBindingState::Creating,
                recorded_id,
                Some(format!(
                    "a create was sent and could not be confirmed yet: {why}"
                )),
            )),
            Some(Seen::Unlisted) | None => match observed.presence(key) {
                Seen::Present(b) => id_of(b).map_or(Decision::Drop, |id| take(id, true)),
                _ => Decision::Read(
                    entry
                        .cloned()
                        .unwrap_or_else(|| key.entry(RoleBindingState::Creating, None, None)),
                    Read::ByKey(key.clone()),
                ),
            },
        };
    }
    match observed.presence(key) {
        Seen::Present(b) => id_of(b).map_or(Decision::Drop, |id| take(id, false)),
        Seen::Unlisted | Seen::Gone => match entry {
            Some(e) if e.state == RoleBindingState::Refused && refused_recently => {
                Decision::Record(e.clone())
            }
            _ => create(None),
        },
        Seen::Unknown(why) => Decision::Record(match entry {
            Some(e) if e.state == RoleBindingState::Refused => e.clone(),
            Some(e) if e.id.is_some() => key.entry(RoleBindingState::Bound, e.id.clone(), None),
            _ => key.entry(
                RoleBindingState::Pending,
                None,
                Some(format!("not listed yet: {why}")),
            ),
        }),
    }
}

/// A desired binding that is not allowed: refused when nothing exists, `Disallowed` with its
/// id while one does (or deleted under `Revoke`).
fn disallowed(
    key: &Key,
    entry: Option<&RoleBindingStatus>,
    why: &str,
    rule: OnDisallowed,
    observed: &Observed,
) -> Decision {
    let refused = || {
        Decision::Record(key.entry(
            RoleBindingState::Refused,
            None,
            Some(format!("{why}; nothing was sent")),
        ))
    };
    let Some(e) = entry.filter(|e| may_exist(e)) else {
        return refused();
    };
    if rule == OnDisallowed::Revoke {
        return match remove(key, e, DeleteCause::Disallowed, observed) {
            Decision::Drop => refused(),
            other => other,
        };
    }
    let kept = |id: Option<String>| {
        Decision::Record(key.entry(
            RoleBindingState::Disallowed,
            id,
            Some(format!(
                "{why}; the binding exists and is kept until the Invitation is deleted"
            )),
        ))
    };
    let seen = if e.state == RoleBindingState::Creating && e.id.is_none() {
        match observed.found(key) {
            Some(seen) => seen,
            None => match observed.presence(key) {
                present @ Seen::Present(_) => present,
                _ => return Decision::Read(e.clone(), Read::ByKey(key.clone())),
            },
        }
    } else {
        observed.presence(key)
    };
    match seen {
        Seen::Present(b) => kept(b.id.clone()),
        Seen::Gone => refused(),
        Seen::Unlisted | Seen::Unknown(_) if e.id.is_some() => kept(e.id.clone()),
        // a create in flight of a role no longer allowed, not confirmed either way
        Seen::Unlisted | Seen::Unknown(_) => Decision::Record(e.clone()),
    }
}

/// A binding that must go: deleted once Confluent shows it is this entry's (an id is deleted
/// only when a list or a read shows it is the entry's principal, role and CRN, so an id written
/// into status by hand cannot delete someone else's binding), dropped once Confluent shows it
/// gone, kept as `Deleting` meanwhile.
fn remove(key: &Key, e: &RoleBindingStatus, cause: DeleteCause, observed: &Observed) -> Decision {
    if !may_exist(e) {
        return Decision::Drop;
    }
    let deleting = |id: Option<String>, message: String| {
        key.entry(RoleBindingState::Deleting, id, Some(message))
    };
    let delete = |id: &str| {
        Decision::Write(
            deleting(Some(id.to_owned()), cause.message(key)),
            Write::Delete(id.to_owned(), cause),
        )
    };
    let waiting = |why: &str| {
        Decision::Record(deleting(
            e.id.clone(),
            format!("{}; it cannot be checked yet: {why}", cause.message(key)),
        ))
    };
    let by_key = || match observed.found(key) {
        Some(Seen::Present(b)) => id_of(b).map_or(Decision::Drop, delete),
        Some(Seen::Gone) => Decision::Drop,
        Some(Seen::Unknown(why)) => waiting(&why),
        Some(Seen::Unlisted) | None => match observed.presence(key) {
            Seen::Present(b) => id_of(b).map_or(Decision::Drop, delete),
            _ => Decision::Read(
                deleting(e.id.clone(), cause.message(key)),
                Read::ByKey(key.clone()),
            ),
        },
    };
    let Some(id) =
        e.id.as_deref()
            .filter(|_| e.state != RoleBindingState::Creating)
    else {
        // a create may have made it: look the key up
        return by_key();
    };
    if observed.confirms(key, id) {
        return delete(id);
    }
    match observed.fetched(id) {
        Some(Seen::Gone) => Decision::Drop,
        // the id is another binding's (a hand-written or restored status): never touched;
        // this entry's binding, if any, is found by its key
        Some(Seen::Present(_)) => by_key(),
        Some(Seen::Unknown(why)) => waiting(&why),
        Some(Seen::Unlisted) | None => match observed.presence(key) {
            Seen::Present(b) => id_of(b).map_or(Decision::Drop, delete),
            _ => Decision::Read(
                deleting(e.id.clone(), cause.message(key)),
                Read::ById(id.to_owned()),
            ),
        },
    }
}

fn decide(
    key: &Key,
    entry: Option<&RoleBindingStatus>,
    want: Want<'_>,
    observed: &Observed,
    refused_recently: &BTreeSet<Key>,
) -> Decision {
    match want {
        Want::Hold(request) => hold(
            key,
            entry,
            request,
            observed,
            refused_recently.contains(key),
        ),
        Want::Disallowed(why, rule) => disallowed(key, entry, why, rule, observed),
        Want::Remove(cause) => entry.map_or(Decision::Drop, |e| remove(key, e, cause, observed)),
        Want::Keep => entry.map_or(Decision::Drop, |e| Decision::Record(e.clone())),
    }
}

impl Plan {
    fn take(&mut self, decision: Decision) {
        let index = self.ledger.len();
        if let Decision::Record(e) | Decision::Read(e, _) | Decision::Write(e, _) = &decision
            && e.state == RoleBindingState::Deleting
        {
            self.removing.insert(index);
        }
        match decision {
            Decision::Drop => {}
            Decision::Record(entry) => self.ledger.push(entry),
            Decision::Read(entry, read) => {
                self.ledger.push(entry);
                if !self.reads.contains(&read) {
                    self.reads.push(read);
                }
            }
            Decision::Write(entry, write) => {
                self.ledger.push(entry);
                self.steps.push(match write {
                    Write::Delete(id, cause) => Step::Delete {
                        entry: index,
                        id,
                        cause,
                    },
                    Write::Create(request) => Step::Create {
                        entry: index,
                        request,
                    },
                    Write::Adopt(id, recovered) => Step::Adopt {
                        entry: index,
                        id,
                        recovered,
                    },
                });
            }
        }
    }

    /// Deletes first, then creates: what must go goes before anything is added.
    fn ordered(mut self) -> Self {
        self.steps.sort_by_key(|s| matches!(s, Step::Create { .. }));
        self
    }

    /// Whether a create is among the writes: the ledger is recorded before they run.
    pub fn creates(&self) -> bool {
        self.steps.iter().any(|s| matches!(s, Step::Create { .. }))
    }
}

/// The ledger's entries with their keys, one per key (a hand-edited status may repeat one: the
/// entry with an id wins). Entries whose principal cannot be told are kept aside, untouched.
fn keyed(
    ledger: &[RoleBindingStatus],
    recorded_user: Option<&str>,
) -> (Vec<(Key, RoleBindingStatus)>, Vec<RoleBindingStatus>) {
    let mut keyed: Vec<(Key, RoleBindingStatus)> = Vec::with_capacity(ledger.len());
    let mut unkeyed = Vec::new();
    for e in ledger {
        let Some(key) = Key::of_entry(e, recorded_user) else {
            unkeyed.push(e.clone());
            continue;
        };
        match keyed.iter_mut().find(|(k, _)| *k == key) {
            Some((_, held)) => {
                if !may_exist(held) && may_exist(e) {
                    *held = e.clone();
                }
            }
            None => keyed.push((key, e.clone())),
        }
    }
    (keyed, unkeyed)
}

/// Plans the bindings of a live Invitation.
pub fn plan(live: &Live<'_>, ledger: &[RoleBindingStatus], observed: &Observed) -> Plan {
    let (mut entries, unkeyed) = keyed(ledger, live.recorded_user);
    let mut plan = Plan::default();
    let Some(user) = live.invitee else {
        // no invitee yet: every entry stays as recorded; a desired item without one of the
        // recorded invitee waits
        let recorded = live.recorded_user.map(user_principal);
        for d in live.desired {
            let shown = d.shown_crn();
            if !entries.iter().any(|(k, _)| {
                Some(&k.principal) == recorded.as_ref()
                    && k.role_name == d.item.role_name
                    && confluent_client::role_bindings::same_crn(&k.crn_pattern, shown)
            }) {
                plan.ledger.push(RoleBindingStatus {
                    role_name: d.item.role_name.clone(),
                    crn_pattern: shown.to_owned(),
                    id: None,
                    state: RoleBindingState::Pending,
                    message: Some("waiting for the invitee's user id".to_owned()),
                    principal: None,
                });
            }
        }
        plan.ledger.extend(entries.into_iter().map(|(_, e)| e));
        plan.ledger.extend(unkeyed);
        return plan;
    };
    let current = user_principal(user);
    let mut desired_keys: Vec<Key> = Vec::new();
    for d in live.desired {
        let request = match &d.binding {
            Ok(request) => request,
            Err(e) => {
                plan.ledger.push(RoleBindingStatus {
                    role_name: d.item.role_name.clone(),
                    crn_pattern: d.item.crn_pattern.clone(),
                    id: None,
                    state: RoleBindingState::Refused,
                    message: Some(e.to_string()),
                    principal: Some(current.clone()),
                });
                continue;
            }
        };
        let key = Key::of_request(request);
        if desired_keys.contains(&key) {
            plan.ledger.push(key.entry(
                RoleBindingState::Refused,
                None,
                Some("the same binding as an earlier item of spec.roleBindings".to_owned()),
            ));
            continue;
        }
        desired_keys.push(key.clone());
        let entry = entries
            .iter()
            .position(|(k, _)| *k == key)
            .map(|i| entries.remove(i).1);
        let want = match &d.refusal {
            None => Want::Hold(request),
            Some(why) => Want::Disallowed(why, live.on_disallowed),
        };
        plan.take(decide(
            &key,
            entry.as_ref(),
            want,
            observed,
            live.refused_recently,
        ));
    }
    for (key, e) in entries {
        let cause = if key.principal == current {
            DeleteCause::RemovedFromSpec
        } else {
            DeleteCause::PreviousUser
        };
        plan.take(decide(
            &key,
            Some(&e),
            Want::Remove(cause),
            observed,
            live.refused_recently,
        ));
    }
    plan.ledger.extend(unkeyed);
    if live.exclusive
        && let Some(org) = live.organization
        && let Some(all) = observed.organization_wide(&current, org)
    {
        for b in all {
            let (Some(key), Some(id)) = (Key::of_remote(b), b.id.as_deref()) else {
                continue;
            };
            let known = plan.ledger.iter().any(|e| {
                e.id.as_deref() == Some(id)
                    || Key::of_entry(e, Some(user)).is_some_and(|k| k == key)
            });
            if known
                || key.principal != current
                || desired_keys.contains(&key)
                || !role_allowed(live.allowed_roles, &key.role_name)
            {
                continue;
            }
            plan.take(Decision::Write(
                key.entry(
                    RoleBindingState::Deleting,
                    Some(id.to_owned()),
                    Some(DeleteCause::Exclusive.message(&key)),
                ),
                Write::Delete(id.to_owned(), DeleteCause::Exclusive),
            ));
        }
    }
    plan.ordered()
}

/// Plans what a deleted resource's policy does to its bindings: the entries `c.removal` removes
/// go (the invitee's own except those the successor's ledger records), the others are left as
/// they are.
/// Cleanup is done when [`Plan::removals_outstanding`] says so after the writes.
pub fn plan_cleanup(c: &Cleanup<'_>, ledger: &[RoleBindingStatus], observed: &Observed) -> Plan {
    let Removal {
        invitees: removes_invitees,
        previous: removes_previous,
    } = c.removal;
    let current = c.recorded_user.map(user_principal);
    let successor_keeps = |e: &RoleBindingStatus| {
        c.successor
            .is_some_and(|ledger| e.id.is_some() && ledger.iter().any(|theirs| theirs.id == e.id))
    };
    let (entries, unkeyed) = keyed(ledger, c.recorded_user);
    let mut plan = Plan::default();
    for (key, e) in entries {
        let invitees = current.as_deref() == Some(key.principal.as_str());
        let removes = if invitees {
            removes_invitees && !successor_keeps(&e)
        } else {
            removes_previous
        };
        let want = if removes {
            Want::Remove(DeleteCause::Cleanup)
        } else {
            Want::Keep
        };
        match want {
            Want::Keep => plan.ledger.push(e),
            _ => plan.take(decide(&key, Some(&e), want, observed, &BTreeSet::new())),
        }
    }
    plan.ledger.extend(unkeyed);
    plan.ordered()
}
