//! Two Invitations claiming one email (issue 13), under the same fire as the rest: `<pair>-a`
//! first, `<pair>-b` (the email in capitals) a second later. Half of the owners are deleted
//! mid-run, handing the invitation over. Invariants: never two live remote invitations for one
//! email (`check_always`'s `duplicate-remote`, which covers every email), never a handover that
//! re-sends (no pair email ever gets a second invitation: the mock never removes or expires
//! theirs), and once converged exactly one owner per email, the other `EmailConflict` naming it.

use std::time::Duration;

use confluent_client::model::InviteStatus;
use confluent_invitation_operator::crd::{DeletionPolicy, Invitation, InvitationSpec};
use kube::api::PostParams;

use crate::invariants::{Outcome, Snapshot};
use crate::world::{Violation, World, lock};

/// One email claimed twice.
#[derive(Clone, Debug)]
pub struct Pair {
    pub owner: String,
    pub rival: String,
    pub email: String,
}

impl Pair {
    fn manifest(name: &str, email: &str) -> Invitation {
        Invitation::new(
            name,
            InvitationSpec {
                email: email.into(),
                auth_type: None,
                credentials_secret_ref: None,
                deletion_policy: DeletionPolicy::Delete,
                reinvite_on_expiry: false,
                role_bindings: Vec::new(),
                exclusive_role_bindings: false,
            },
        )
    }

    /// Whether the test asked for the owner's deletion (a handover).
    fn handed_over(&self, snap: &Snapshot) -> bool {
        snap.deleted.contains(&self.owner)
    }
}

async fn create(w: &World, name: &str, email: &str) {
    let manifest = Pair::manifest(name, email);
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
        create(w, &p.owner, &p.email).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for p in &pairs {
        create(w, &p.rival, &p.email.to_ascii_uppercase()).await;
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
/// rival that created its own).
pub fn check_always(snap: &Snapshot, out: &mut Outcome) {
    for p in &snap.pairs {
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

/// After everything was deleted: the last claimant's `Delete` policy removed the invitation.
pub fn check_final(snap: &Snapshot, out: &mut Outcome) {
    for p in &snap.pairs {
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
