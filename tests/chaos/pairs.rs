//! Two Invitations claiming one email, under the same fire as the rest: `<pair>-a`
//! first, `<pair>-b` (the email in capitals) a second later. Half of the owners are deleted
//! mid-run, handing the invitation over. Invariants: never two live remote invitations for one
//! email (`check_always`'s `duplicate-remote`, which covers every email), never a handover that
//! re-sends (no pair email ever gets a second invitation: the mock never removes or expires
//! theirs), and once converged exactly one owner per email, the other `EmailConflict` naming it.
//! Role bindings: the owner lists one item, the rival the same one and another; while the owner
//! lives, the rival's own item is never bound (an `EmailConflict` loser touches no binding), and
//! once both are deleted (`Delete`), neither item is left for any user the email had.

use std::time::Duration;

use confluent_client::model::InviteStatus;
use confluent_invitation_operator::invitation::resource::{Invitation, InvitationSpec};
use confluent_invitation_operator::role_bindings::resource::RoleBinding;
use kube::api::PostParams;

use crate::bindings::{Held, existing_principals, item, principals_ever};
use crate::invariants::{Outcome, Snapshot};
use crate::world::{Violation, World, lock};

/// One email claimed twice.
#[derive(Clone, Debug)]
pub struct Pair {
    pub owner: String,
    pub rival: String,
    pub email: String,
}

/// The owner's items: the rival lists them too.
fn owner_items() -> Vec<RoleBinding> {
    vec![item(0)]
}

/// The rival's items: the owner's and one of its own, bound only after a handover.
fn rival_items() -> Vec<RoleBinding> {
    vec![item(0), item(2)]
}

impl Pair {
    fn manifest(name: &str, email: &str, role_bindings: Vec<RoleBinding>) -> Invitation {
        Invitation::new(
            name,
            InvitationSpec {
                role_bindings,
                ..InvitationSpec::of_email(email)
            },
        )
    }

    /// Whether the test asked for the owner's deletion (a handover).
    fn handed_over(&self, snap: &Snapshot) -> bool {
        snap.deleted.contains(&self.owner)
    }
}

async fn create(w: &World, name: &str, email: &str, role_bindings: Vec<RoleBinding>) {
    let manifest = Pair::manifest(name, email, role_bindings);
    let pp = PostParams::default();
    match w
        .kube("create invitation", || w.api.create(&pp, &manifest))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating {name}: {e}"),
    }
}

/// Creates `n` pairs (owners, then rivals a second later: creationTimestamp has one-second
/// resolution), recording them first so their emails are known to the checks.
pub async fn create_pairs(w: &World, n: usize) {
    let pairs: Vec<Pair> = (0..n)
        .map(|i| Pair {
            owner: format!("pair{i:02}-a"),
            rival: format!("pair{i:02}-b"),
            email: format!("pair{i:02}.{}@chaos.example.com", w.config.run_tag()),
        })
        .collect();
    lock(&w.ledger.pairs).extend(pairs.iter().cloned());
    for p in &pairs {
        create(w, &p.owner, &p.email, owner_items()).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for p in &pairs {
        create(w, &p.rival, &p.email.to_ascii_uppercase(), rival_items()).await;
    }
}

/// Deletes the owners of every other pair, after `after`: the rivals must adopt.
pub async fn hand_over_half(w: &World, after: Duration) {
    tokio::time::sleep(after).await;
    let pairs = lock(&w.ledger.pairs).clone();
    for p in pairs.iter().step_by(2) {
        w.delete(&p.owner).await;
    }
}

/// Deletes what is left of every pair.
pub async fn delete_pairs(w: &World) {
    let pairs = lock(&w.ledger.pairs).clone();
    for p in pairs {
        w.delete(&p.owner).await;
        w.delete(&p.rival).await;
    }
}

fn violation(kind: &str, subject: &str, message: String) -> Violation {
    Violation {
        key: format!("{kind}:{subject}"),
        subject: Some(subject.to_owned()),
        message,
    }
}

/// At every moment: no pair email ever got a second invitation (a handover that re-sent, or a
/// rival that created its own); while the owner lives, the rival's own item is not bound.
pub fn check_always(snap: &Snapshot, out: &mut Outcome) {
    let held = Held::of(&snap.bindings);
    let own = item(2);
    for p in &snap.pairs {
        if !p.handed_over(snap) {
            let bound: Vec<String> = existing_principals(snap, &p.email)
                .iter()
                .flat_map(|principal| held.granting(principal, &own))
                .filter_map(|b| b.id.clone())
                .collect();
            out.assert(bound.is_empty(), || {
                violation(
                    "pair-loser-bound",
                    &p.rival,
                    format!(
                        "{} lost the email to {} yet its own item {} on {} is bound: {bound:?}",
                        p.rival, p.owner, own.role_name, own.crn_pattern
                    ),
                )
            });
        }
        let all = snap.all_for(&p.email);
        out.assert(all.len() <= 1, || {
            violation(
                "pair-resent",
                &p.owner,
                format!(
                    "{} got {} invitations: {:?}",
                    p.email,
                    all.len(),
                    all.iter()
                        .map(|r| (r.id.clone(), r.status.clone()))
                        .collect::<Vec<_>>()
                ),
            )
        });
    }
}

/// Once converged: the one live owner is Ready=True on the email's only invitation (the rival
/// after a handover, with the owner's invitation id), the other `EmailConflict` naming it.
pub fn check_converged(snap: &Snapshot, out: &mut Outcome) {
    for p in &snap.pairs {
        let all = snap.all_for(&p.email);
        let Some(first) = all.first() else {
            out.assert(false, || {
                violation(
                    "pair-no-invitation",
                    &p.owner,
                    format!("{} has none", p.email),
                )
            });
            continue;
        };
        let owner = if p.handed_over(snap) {
            &p.rival
        } else {
            &p.owner
        };
        let ready = |name: &str| {
            snap.resources
                .get(name)
                .and_then(|r| r.status.as_ref())
                .and_then(|s| {
                    let c = s.ready()?;
                    Some((
                        c.status.clone(),
                        c.reason.clone(),
                        c.message.clone(),
                        s.invitation_id.clone(),
                    ))
                })
        };
        let got = ready(owner);
        out.assert(
            got.as_ref().is_some_and(|(status, _, _, id)| {
                status == "True" && *id == first.id && first.status == Some(InviteStatus::Sent)
            }),
            || {
                violation(
                    "pair-owner",
                    owner,
                    format!(
                        "{owner} should own {:?} ({:?}) of {}: {got:?}",
                        first.id, first.status, p.email
                    ),
                )
            },
        );
        if !p.handed_over(snap) {
            let got = ready(&p.rival);
            let named = format!("{}/{}", snap.namespace, p.owner);
            out.assert(
                got.as_ref().is_some_and(|(status, reason, message, _)| {
                    status == "False" && reason == "EmailConflict" && message.contains(&named)
                }),
                || {
                    violation(
                        "pair-conflict",
                        &p.rival,
                        format!(
                            "{} should report EmailConflict naming {named}: {got:?}",
                            p.rival
                        ),
                    )
                },
            );
        }
    }
}

/// After everything was deleted: the last claimant's `Delete` policy removed the invitation and
/// every binding either listed, for every user the email had.
pub fn check_final(snap: &Snapshot, out: &mut Outcome) {
    let held = Held::of(&snap.bindings);
    for p in &snap.pairs {
        let left: Vec<String> = principals_ever(snap, &p.email)
            .iter()
            .flat_map(|principal| {
                rival_items()
                    .into_iter()
                    .flat_map(|i| held.granting(principal, &i).to_vec())
                    .collect::<Vec<_>>()
            })
            .filter_map(|b| b.id.clone())
            .collect();
        out.assert(left.is_empty(), || {
            violation(
                "pair-binding-left-behind",
                &p.rival,
                format!("{} is gone but its bindings {left:?} remain", p.email),
            )
        });
        let live = snap.live_count(&p.email);
        out.assert(live == 0, || {
            violation(
                "pair-left-behind",
                &p.rival,
                format!("{} still has {live} live invitation(s)", p.email),
            )
        });
    }
}
