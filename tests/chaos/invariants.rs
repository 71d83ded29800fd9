//! The invariants, checked against one snapshot of both sides: the Invitations in the API server
//! (listed first) and the mock's organization (read after). Reading Kubernetes first matters: a
//! resource missing from the list had its finalizer released before the mock was read, so its
//! cleanup must already show in the mock.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use confluent_client::model::{InviteStatus, RemoteInvitation, User};
use confluent_invitation_operator::invitation::resource::{DeletionPolicy, FINALIZER, Invitation};
use confluent_invitation_operator::invitation::status;
use kube::ResourceExt;

use crate::world::{Planned, Stats, Violation, World};

/// Both sides at (nearly) one moment, with what the test had asked for by then.
pub struct Snapshot {
    /// The resources created before the list was taken.
    pub created: BTreeMap<String, Planned>,
    /// Every email the test planned (read after the mock).
    pub emails: HashSet<String>,
    pub resources: BTreeMap<String, Invitation>,
    pub remote: Vec<RemoteInvitation>,
    pub users: Vec<User>,
    /// Deletions requested before the mock was read (a superset of those that completed).
    pub deleted: BTreeSet<String>,
    /// Ids removed out of band before the mock was read.
    pub removed: BTreeSet<String>,
    /// Deleted before the operator's finalizer was on them.
    pub unowned: BTreeSet<String>,
    /// Whose status the test pointed at another resource's invitation.
    pub forged: BTreeSet<String>,
    /// Emails claimed twice (`pairs.rs`).
    pub pairs: Vec<crate::pairs::Pair>,
    /// The test's namespace (messages name owners as `namespace/name`).
    pub namespace: String,
    /// The mock's role bindings (read with the invitations).
    pub bindings: Vec<confluent_client::role_bindings::RemoteRoleBinding>,
    /// Every binding id each resource's status was ever seen to record, this list included.
    pub recorded_bindings: BTreeMap<String, BTreeSet<String>>,
    /// Unlisted bindings added out of band before the mock was read.
    pub foreign: Vec<crate::bindings::Foreign>,
    /// Binding ids the test removed out of band before the mock was read.
    pub removed_bindings: BTreeSet<String>,
    /// The email (lowercased) of every user id a chaos invitation ever had, removed ones'
    /// included: whose bindings the operator may ever have made.
    pub user_emails: BTreeMap<String, String>,
}

impl Snapshot {
    /// Reads, in this order: what was created (so everything in it was in the API server before
    /// the list), the Invitations, the mock, then what was deleted or removed (so every
    /// completed deletion and removal is known).
    pub async fn take(w: &World) -> Self {
        let created = w.ledger.created();
        let resources: BTreeMap<String, Invitation> = w
            .list()
            .await
            .into_iter()
            .map(|r| (r.name_any(), r))
            .collect();
        let recorded_bindings = {
            let mut recorded = crate::world::lock(&w.ledger.recorded_bindings);
            for (name, r) in &resources {
                let ids = r
                    .status
                    .iter()
                    .flat_map(|s| s.role_bindings.iter())
                    .filter_map(|e| e.id.clone());
                recorded.entry(name.clone()).or_default().extend(ids);
            }
            recorded.clone()
        };
        // before the mock: each of them is in what the mock shows
        let foreign = crate::world::lock(&w.ledger.foreign_bindings).clone();
        let mock = w.remote();
        let remote = mock.invitations();
        let users = mock.users();
        let bindings = mock.role_bindings();
        let user_emails = {
            let mut users = crate::world::lock(&w.ledger.users);
            for r in &remote {
                if let (Some(user), Some(email)) = (r.user_id(), r.email.as_deref()) {
                    users.insert(user.to_owned(), key(email));
                }
            }
            users.clone()
        };
        // planned before their invitations could exist: a superset for the unknown-email check
        let emails = w.ledger.emails();
        Self {
            created,
            emails,
            resources,
            remote,
            users,
            deleted: w.ledger.deleted(),
            removed: w.ledger.removed(),
            unowned: w.ledger.unowned(),
            forged: w.ledger.forged(),
            pairs: crate::world::lock(&w.ledger.pairs).clone(),
            namespace: w.ns.clone(),
            bindings,
            recorded_bindings,
            foreign,
            removed_bindings: crate::world::lock(&w.ledger.removed_bindings).clone(),
            user_emails,
        }
    }

    /// Every remote invitation ever made for `email` (for `pairs.rs`).
    pub fn all_for(&self, email: &str) -> Vec<&RemoteInvitation> {
        self.remote
            .iter()
            .filter(|r| {
                r.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .collect()
    }

    /// How many live remote invitations `email` has.
    pub fn live_count(&self, email: &str) -> usize {
        self.all_for(email)
            .iter()
            .filter(|r| r.status.as_ref().is_some_and(InviteStatus::is_live))
            .count()
    }

    fn index(&self) -> Index<'_> {
        let mut by_id = HashMap::new();
        let mut live: HashMap<String, Vec<&RemoteInvitation>> = HashMap::new();
        let mut all: HashMap<String, Vec<&RemoteInvitation>> = HashMap::new();
        for r in &self.remote {
            if let Some(id) = r.id.as_deref() {
                by_id.insert(id, r);
            }
            all.entry(key(r.email.as_deref().unwrap_or_default()))
                .or_default()
                .push(r);
            if r.status.as_ref().is_some_and(InviteStatus::is_live) {
                live.entry(key(r.email.as_deref().unwrap_or_default()))
                    .or_default()
                    .push(r);
            }
        }
        let user_ids = self.users.iter().filter_map(|u| u.id.as_deref()).collect();
        Index {
            by_id,
            live,
            all,
            user_ids,
        }
    }
}

struct Index<'a> {
    by_id: HashMap<&'a str, &'a RemoteInvitation>,
    /// SENT/STAGED/ACCEPTED invitations by lowercased email.
    live: HashMap<String, Vec<&'a RemoteInvitation>>,
    /// Every invitation (deactivated and expired ones too) by lowercased email.
    all: HashMap<String, Vec<&'a RemoteInvitation>>,
    user_ids: HashSet<&'a str>,
}

impl Index<'_> {
    fn live_for(&self, email: &str) -> &[&RemoteInvitation] {
        self.live.get(&key(email)).map(Vec::as_slice).unwrap_or(&[])
    }

    fn all_for(&self, email: &str) -> &[&RemoteInvitation] {
        self.all.get(&key(email)).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every invitation of the email with its user and acceptance, for violation reports.
    fn history(&self, email: &str) -> String {
        let items: Vec<String> = self
            .all_for(email)
            .iter()
            .map(|r| {
                let user = r.user_id().unwrap_or("?");
                format!(
                    "{} {} user {user}{}{}",
                    r.id.as_deref().unwrap_or("?"),
                    r.status.as_ref().map(|s| s.as_str()).unwrap_or("?"),
                    if self.user_ids.contains(user) {
                        " (exists)"
                    } else {
                        ""
                    },
                    r.accepted_at
                        .as_deref()
                        .map(|a| format!(" accepted {a}"))
                        .unwrap_or_default()
                )
            })
            .collect();
        format!("mock history of {email}: [{}]", items.join("; "))
    }
}

fn key(email: &str) -> String {
    email.to_ascii_lowercase()
}

fn describe(rs: &[&RemoteInvitation]) -> String {
    let items: Vec<String> = rs
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.id.as_deref().unwrap_or("?"),
                r.email.as_deref().unwrap_or("?"),
                r.status.as_ref().map(|s| s.as_str()).unwrap_or("?")
            )
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn status_json(r: &Invitation) -> String {
    let mut s = serde_json::to_value(&r.status).unwrap_or_default();
    // the condition's message repeats the rest; its reason is what matters here
    if let Some(conds) = s.get_mut("conditions").and_then(|c| c.as_array_mut()) {
        for c in conds {
            if let Some(o) = c.as_object_mut() {
                o.remove("message");
                o.remove("lastTransitionTime");
            }
        }
    }
    format!(
        "status {s}, deleting {}, finalizers {:?}, generation {:?}",
        r.metadata.deletion_timestamp.is_some(),
        r.finalizers(),
        r.metadata.generation
    )
}

/// A counter of assertions plus the violations found.
#[derive(Default)]
pub struct Outcome {
    pub assertions: u64,
    pub violations: Vec<Violation>,
}

impl Outcome {
    pub fn assert(&mut self, ok: bool, violation: impl FnOnce() -> Violation) {
        self.assertions += 1;
        if !ok {
            self.violations.push(violation());
        }
    }

    /// Counts the check and its assertions into the world's stats.
    pub fn count(&self, w: &World) {
        Stats::add(&w.stats.checks, 1);
        Stats::add(&w.stats.assertions, self.assertions);
    }
}

/// What must hold at every moment, whatever the faults, kills and restarts:
/// - never two live remote invitations for one email;
/// - a status never names an invitation the mock does not have (unless the test removed it) or
///   one made for another email;
/// - a resource gone after its deletion left nothing its policy should have removed: no pending
///   invitation for `Delete` (an accepted one stays, as a kept member), nothing live and no
///   accepted member's user for `DeleteUser`; one deleted before the operator put its finalizer
///   on it got nothing made for it;
/// - an invitation deleted while pending (not after it expired: a re-invite deletes those) is
///   for the email of a resource whose deletion was asked for (of both, for an email claimed
///   twice): an operator never deletes the invitation of another email, whatever a (forged)
///   status names;
/// - no resource disappears without having been deleted, and no live remote invitation is for an
///   email the test never asked for.
pub fn check_always(snap: &Snapshot) -> Outcome {
    let planned = &snap.created;
    let deleted = &snap.deleted;
    let removed = &snap.removed;
    let ix = snap.index();
    let by_email: HashMap<String, &Planned> =
        planned.values().map(|p| (key(&p.email), p)).collect();
    let mut out = Outcome::default();

    for (email, live) in &ix.live {
        let p = by_email.get(email).copied();
        out.assert(live.len() <= 1, || {
            Violation::new(
                "duplicate-remote",
                p,
                format!(
                    "{email} has {} live remote invitations: {}",
                    live.len(),
                    describe(live)
                ),
            )
        });
        out.assert(snap.emails.contains(email), || {
            Violation::new(
                &format!("unknown-email:{email}"),
                None,
                format!(
                    "live remote invitations for an email no Invitation asked for: {}",
                    describe(live)
                ),
            )
        });
    }

    for r in &snap.remote {
        if r.status != Some(InviteStatus::Deactivated) {
            continue;
        }
        let at = |t: Option<&str>| t.and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let deleted_at = at(r.metadata.as_ref().and_then(|m| m.deleted_at.as_deref()));
        let expires_at = at(r.expires_at.as_deref());
        if let (Some(d), Some(e)) = (deleted_at, expires_at)
            && e <= d
        {
            continue; // expired first: deleted by a re-invite
        }
        let email = key(r.email.as_deref().unwrap_or_default());
        let p = by_email.get(&email).copied();
        // a pair's email (`pairs.rs`, outside `planned`): both claimants' deletion was asked for
        let pair_deleted = snap.pairs.iter().any(|pair| {
            key(&pair.email) == email
                && deleted.contains(&pair.owner)
                && deleted.contains(&pair.rival)
        });
        out.assert(pair_deleted || p.is_some_and(|p| deleted.contains(&p.name)), || {
            Violation::new(
                "deleted-foreign-invitation",
                p,
                format!(
                    "{} ({email}) was deleted while pending, but no resource for that email was deleted",
                    r.id.as_deref().unwrap_or("?")
                ),
            )
        },
        );
    }

    for (name, p) in planned {
        match snap.resources.get(name) {
            Some(r) => {
                let Some(id) = r.status.as_ref().and_then(|s| s.invitation_id.as_deref()) else {
                    continue;
                };
                if snap.forged.contains(name) {
                    continue; // the test pointed it elsewhere on purpose
                }
                match ix.by_id.get(id) {
                    None => out.assert(removed.contains(id), || {
                        Violation::new(
                            "status-unknown-id",
                            Some(p),
                            format!(
                                "{name}: status names {id}, which the mock never had; {}",
                                status_json(r)
                            ),
                        )
                    }),
                    Some(remote) => out.assert(
                        remote
                            .email
                            .as_deref()
                            .is_some_and(|e| e.eq_ignore_ascii_case(&p.email)),
                        || {
                            Violation::new(
                                "status-foreign-id",
                                Some(p),
                                format!(
                                    "{name} ({}): status names {id}, made for {:?}",
                                    p.email, remote.email
                                ),
                            )
                        },
                    ),
                }
            }
            None if !deleted.contains(name) => out.assert(false, || {
                Violation::new(
                    "vanished",
                    Some(p),
                    format!("{name} disappeared without being deleted"),
                )
            }),
            None if snap.unowned.contains(name) => untouched(&mut out, &ix, p),
            None => deleted_outcome(&mut out, &ix, p),
        }
    }
    crate::pairs::check_always(snap, &mut out);
    crate::bindings::check_always(snap, &mut out);
    out
}

/// A resource deleted before the operator put its finalizer on it was never the operator's: the
/// operator must have made nothing for it (what was made out of band for its email may stay).
fn untouched(out: &mut Outcome, ix: &Index<'_>, p: &Planned) {
    let live = ix.live_for(&p.email);
    let made: Vec<&RemoteInvitation> = live
        .iter()
        .copied()
        .filter(|r| r.id.is_none() || r.id != p.seeded_id)
        .collect();
    out.assert(made.is_empty(), || {
        Violation::new(
            "made-for-unowned",
            Some(p),
            format!(
                "{} was deleted before the operator took it on, yet live invitations were made: {}; {}",
                p.name,
                describe(&made),
                ix.history(&p.email)
            ),
        )
    });
}

/// A deleted resource is gone: its policy must have been applied remotely.
fn deleted_outcome(out: &mut Outcome, ix: &Index<'_>, p: &Planned) {
    let live = ix.live_for(&p.email);
    match p.policy {
        DeletionPolicy::Orphan => {}
        DeletionPolicy::Delete => {
            let pending: Vec<&RemoteInvitation> = live
                .iter()
                .copied()
                .filter(|r| r.status != Some(InviteStatus::Accepted))
                .collect();
            out.assert(pending.is_empty(), || {
                Violation::new(
                    "orphan-after-delete",
                    Some(p),
                    format!(
                        "{} (Delete) is gone but pending invitations remain: {}; {}",
                        p.name,
                        describe(&pending),
                        ix.history(&p.email)
                    ),
                )
            });
        }
        DeletionPolicy::DeleteUser => {
            out.assert(live.is_empty(), || {
                Violation::new(
                    "orphan-after-deleteuser",
                    Some(p),
                    format!(
                        "{} (DeleteUser) is gone but live invitations remain: {}; {}",
                        p.name,
                        describe(live),
                        ix.history(&p.email)
                    ),
                )
            });
            // the members it accepted as are gone (an invitee user held by an invitation made
            // out of band, never owned, may stay)
            let members: Vec<&str> = ix
                .all_for(&p.email)
                .iter()
                .filter(|r| r.accepted_at.is_some())
                .filter_map(|r| r.user_id())
                .filter(|u| ix.user_ids.contains(u))
                .collect();
            out.assert(members.is_empty(), || {
                Violation::new(
                    "member-left-after-deleteuser",
                    Some(p),
                    format!(
                        "{} (DeleteUser) is gone but its accepted user(s) {members:?} remain; {}",
                        p.name,
                        ix.history(&p.email)
                    ),
                )
            });
        }
    }
}

/// What the operator must have converged to once faults stopped, for every live resource: the
/// finalizer; a status naming the one remote invitation of its email with the mock's phase, raw
/// status, user and a matching Ready; `observedGeneration` current; an expired one only where
/// `reinviteOnExpiry` is off, with nothing live beside it.
pub fn check_converged(snap: &Snapshot) -> Outcome {
    let planned = &snap.created;
    let deleted = &snap.deleted;
    let ix = snap.index();
    let mut out = Outcome::default();
    for (name, p) in planned {
        if deleted.contains(name) {
            continue;
        }
        let Some(r) = snap.resources.get(name) else {
            continue; // check_always reports it
        };
        let v = |kind: &str, what: String| {
            Violation::new(
                kind,
                Some(p),
                format!("{name} ({}): {what}; {}", p.email, status_json(r)),
            )
        };
        out.assert(r.finalizers().iter().any(|f| f == FINALIZER), || {
            v("no-finalizer", "the finalizer is missing".into())
        });
        let Some(st) = r.status.as_ref() else {
            out.assert(false, || v("no-status", "no status".into()));
            continue;
        };
        let Some(id) = st.invitation_id.as_deref() else {
            out.assert(false, || {
                v("no-invitation-id", "no status.invitationId".into())
            });
            continue;
        };
        let Some(remote) = ix.by_id.get(id).copied() else {
            out.assert(false, || v("stale-id", format!("{id} is not in the mock")));
            continue;
        };
        let live = ix.live_for(&p.email);
        let want_phase = status::Phase::of(remote.status.as_ref());
        out.assert(st.phase.as_deref() == Some(want_phase.as_str()), || {
            v(
                "phase",
                format!(
                    "phase {:?} but the mock says {} for {id}",
                    st.phase,
                    want_phase.as_str()
                ),
            )
        });
        out.assert(
            st.remote_status.as_deref() == remote.status.as_ref().map(|s| s.as_str()),
            || v("remote-status", format!("mock has {:?}", remote.status)),
        );
        out.assert(st.user_id.as_deref() == remote.user_id(), || {
            v("user-id", format!("mock's user is {:?}", remote.user_id()))
        });
        out.assert(st.observed_generation == r.metadata.generation, || {
            v("observed-generation", "observedGeneration is stale".into())
        });
        let want_ready = match remote.status {
            Some(InviteStatus::Sent | InviteStatus::Staged | InviteStatus::Accepted) => "True",
            Some(InviteStatus::Expired | InviteStatus::Deactivated) => "False",
            _ => "Unknown",
        };
        out.assert(
            st.ready().is_some_and(|c| {
                c.status == want_ready && c.observed_generation == r.metadata.generation
            }),
            || v("ready", format!("Ready should be {want_ready}")),
        );
        match remote.status {
            Some(InviteStatus::Expired) => {
                out.assert(!p.reinvite, || {
                    v(
                        "not-reinvited",
                        format!("{id} expired but reinviteOnExpiry is on"),
                    )
                });
                out.assert(live.is_empty(), || {
                    v("expired-beside-live", format!("live: {}", describe(live)))
                });
            }
            Some(InviteStatus::Deactivated) => out.assert(false, || {
                v("deactivated", format!("{id} is deactivated, not recreated"))
            }),
            _ => out.assert(live.len() == 1 && live[0].id.as_deref() == Some(id), || {
                v(
                    "not-exactly-one",
                    format!("status names {id}; live for the email: {}", describe(live)),
                )
            }),
        }
    }
    crate::pairs::check_converged(snap, &mut out);
    crate::bindings::check_converged(snap, &mut out);
    out
}

/// What each converged resource pointed at, to check after everything is deleted that `Orphan`
/// left it alone and `Delete` kept accepted members.
pub type Converged = BTreeMap<String, (String, Option<InviteStatus>)>;

pub fn converged_state(snap: &Snapshot) -> Converged {
    let ix = snap.index();
    snap.resources
        .iter()
        .filter_map(|(name, r)| {
            let id = r.status.as_ref()?.invitation_id.clone()?;
            let remote = ix.by_id.get(id.as_str())?;
            Some((name.clone(), (id, remote.status.clone())))
        })
        .collect()
}

/// After everything was deleted: nothing stuck with its finalizer, every policy applied
/// ([`check_always`]), `Orphan` invitations untouched, accepted `Delete` members kept.
pub fn check_final(snap: &Snapshot, converged: &Converged) -> Outcome {
    let mut out = check_always(snap);
    crate::pairs::check_final(snap, &mut out);
    let planned = &snap.created;
    let ix = snap.index();
    for (name, r) in &snap.resources {
        let p = planned.get(name);
        out.assert(false, || {
            Violation::new(
                "stuck",
                p,
                format!("{name} is still there after deletion: {}", status_json(r)),
            )
        });
    }
    for (name, (id, was)) in converged {
        let Some(p) = planned.get(name) else { continue };
        let now = ix.by_id.get(id.as_str()).and_then(|r| r.status.clone());
        match p.policy {
            DeletionPolicy::Orphan => out.assert(
                now.is_some() && now != Some(InviteStatus::Deactivated),
                || {
                    Violation::new(
                        "orphan-touched",
                        Some(p),
                        format!("{name} (Orphan): {id} was {was:?}, is now {now:?}"),
                    )
                },
            ),
            DeletionPolicy::Delete if *was == Some(InviteStatus::Accepted) => out.assert(
                now == Some(InviteStatus::Accepted)
                    && ix
                        .by_id
                        .get(id.as_str())
                        .and_then(|r| r.user_id())
                        .is_some_and(|u| ix.user_ids.contains(u)),
                || {
                    Violation::new(
                        "member-not-kept",
                        Some(p),
                        format!(
                            "{name} (Delete): accepted {id} is now {now:?}, or its user is gone"
                        ),
                    )
                },
            ),
            _ => {}
        }
    }
    out
}
