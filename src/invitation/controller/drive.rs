//! The plan/read loop both stages share: ask the stage's planner, perform the read it asks for
//! (one read step for Apply and Cleanup alike), and ask again until the stage's own terminal
//! action comes back, which the stage performs.

use super::context::Context;
use super::error::Error;
use crate::invitation::planner::{ById, Read, Remote, Step};
use crate::invitation::status;
use confluent_client::{ListFilter, model::RemoteInvitation};

/// More steps than any path of the planner takes (get, look-up, create, 409 look-up, create).
const MAX_STEPS: usize = 8;

/// One stage of a reconcile (Apply, Cleanup): its planner and what it does with its terminal
/// actions.
pub(super) trait Stage {
    /// The planner's terminal actions for this stage.
    type Act;
    /// What the stage ends with.
    type Done;
    /// Named in the error of a planner that never settles.
    const NAME: &'static str;

    /// The next step, from what is known of the remote side.
    fn plan(&self, remote: &Remote) -> Step<Self::Act>;

    /// Performs a terminal action. `None` asks the planner again: the action learnt something
    /// (a 409, an invitation accepted meanwhile) and recorded it in `remote`.
    async fn act(
        &mut self,
        act: Self::Act,
        remote: &mut Remote,
    ) -> Result<Option<Self::Done>, Error>;
}

/// How a drive ended.
pub(super) enum Driven<D> {
    /// The stage's terminal action is done.
    Done(D),
    /// An unchanged resource's credential is being listed (or its list failed moments ago): it
    /// waits for that list instead of holding a worker
    /// ([`crate::runtime::snapshot::Snapshots::fresh_unless_listing`]). Not a failure: Apply
    /// looks again quietly.
    AwaitingList,
}

/// Where reads are answered from.
#[derive(Clone, Copy, Debug)]
pub(super) enum Source {
    /// The credential's snapshot where it holds the answer (the Apply stage of a healthy
    /// object): no call per object. When the snapshot cannot be refreshed, a call of its own
    /// (a resource whose spec changed, a new one), except under a 429.
    Snapshot,
    /// The snapshot only: when it is being listed the reconcile does not wait
    /// ([`Driven::AwaitingList`]), and when it cannot be refreshed nothing stands in for it, the
    /// status staying as last observed. For a resource reconciled again unchanged (after a
    /// restart or a watch re-list, every resource at once): a worker held, or a call made, by
    /// each would put the resources that changed, or are new, behind all of them.
    SnapshotOnly,
    /// A call of its own: cleanup, and a look-up after a failure (maybe a create whose
    /// response was lost, which the snapshot may predate).
    Confluent,
}

/// The read step: one credential's client and where each kind of read is answered from.
pub(super) struct Reads<'a> {
    pub(super) ctx: &'a Context,
    pub(super) client: &'a confluent_client::Client,
    pub(super) email: &'a str,
    pub(super) gets: Source,
    pub(super) look_ups: Source,
}

impl Reads<'_> {
    async fn read(&self, read: Read, remote: &mut Remote) -> Result<Driven<()>, Error> {
        match read {
            Read::Get(id) => {
                let found = match self.gets {
                    Source::Snapshot => observe(self.ctx, self.client, &id).await?,
                    Source::SnapshotOnly => {
                        match observe_unchanged(self.ctx, self.client, &id).await? {
                            Some(found) => found,
                            None => return Ok(Driven::AwaitingList),
                        }
                    }
                    Source::Confluent => get(self.client, &id).await?,
                };
                remote.by_id = Some(found);
            }
            Read::LookUp => {
                remote.by_email = Some(match self.look_ups {
                    // (were the snapshot ever to miss an invitation, the create meets a 409,
                    // which looks up afresh)
                    Source::Snapshot | Source::SnapshotOnly => {
                        look_up_in_snapshot(self.ctx, self.client, self.email).await?
                    }
                    Source::Confluent => look_up(self.ctx, self.client, self.email).await?,
                });
            }
        }
        Ok(Driven::Done(()))
    }
}

/// Runs `stage` from its planner's `first` answer (already asked, before credentials were
/// resolved) until its terminal action is done.
pub(super) async fn drive<S: Stage>(
    stage: &mut S,
    reads: &Reads<'_>,
    first: Step<S::Act>,
) -> Result<Driven<S::Done>, Error> {
    let mut remote = Remote::default();
    let mut step = first;
    for _ in 0..MAX_STEPS {
        match step {
            Step::Read(read) => {
                if let Driven::AwaitingList = reads.read(read, &mut remote).await? {
                    return Ok(Driven::AwaitingList);
                }
            }
            Step::Do(act) => {
                if let Some(done) = stage.act(act, &mut remote).await? {
                    return Ok(Driven::Done(done));
                }
            }
        }
        step = stage.plan(&remote);
    }
    Err(Error::Unsettled(S::NAME))
}

/// The invitation with this id from the credential's snapshot, or, when the snapshot does not
/// hold it (created since, or removed out of band) or cannot be refreshed (the list failed), from
/// a single GET, which the credential's rate limiter paces like every call, when
/// [`call_may_stand_in`]; else the status stays as last observed and the reconcile waits.
async fn observe(
    ctx: &Context,
    client: &confluent_client::Client,
    id: &str,
) -> Result<ById, Error> {
    match ctx.confluent.snapshots.fresh(client, |s| s.get(id)).await {
        Ok(found) => from_snapshot(client, id, found).await,
        Err(e) => {
            let e = call_may_stand_in(e)?;
            tracing::debug!(error = %e, "no fresh snapshot; reading the invitation by id");
            get(client, id).await
        }
    }
}

/// The snapshot's failure back when one call of the reconcile's own may stand in for it: a
/// 5xx or no answer (the list alone may be what is broken); not a 429 (the call would spend the
/// budget that just ran out, one call per resource instead of one list), nor a refusal.
fn call_may_stand_in(e: confluent_client::Error) -> Result<confluent_client::Error, Error> {
    match e {
        confluent_client::Error::RateLimited { .. } => Err(e.into()),
        e if e.is_transient() => Ok(e),
        e => Err(e.into()),
    }
}

/// [`Source::SnapshotOnly`]: the invitation with this id from a fresh snapshot, or `None`
/// while the list is awaited.
async fn observe_unchanged(
    ctx: &Context,
    client: &confluent_client::Client,
    id: &str,
) -> Result<Option<ById>, Error> {
    match ctx
        .confluent
        .snapshots
        .fresh_unless_listing(client, |s| s.get(id))
        .await?
    {
        Some(found) => Ok(Some(from_snapshot(client, id, found).await?)),
        None => Ok(None),
    }
}

/// What a fresh snapshot says of `id`, or a GET when it cannot say: it does not hold the id
/// (created since, or removed out of band), or it predates the invitation's expiry (a snapshot
/// taken before expiresAt still says SENT: the wake-up at expiry asks again).
async fn from_snapshot(
    client: &confluent_client::Client,
    id: &str,
    found: Option<RemoteInvitation>,
) -> Result<ById, Error> {
    match found {
        Some(inv) if !status::pending_past_expiry(&inv, jiff::Timestamp::now()) => {
            Ok(ById::Found(inv))
        }
        _ => get(client, id).await,
    }
}

/// The invitations for an email from the credential's snapshot, or, when it cannot be
/// refreshed, from one filtered list: a new Invitation needs one call then, not the whole
/// organization's pages to come through (a long list is the likeliest to meet a failure), when
/// [`call_may_stand_in`].
async fn look_up_in_snapshot(
    ctx: &Context,
    client: &confluent_client::Client,
    email: &str,
) -> Result<Vec<RemoteInvitation>, Error> {
    match ctx
        .confluent
        .snapshots
        .fresh(client, |s| s.for_email(email))
        .await
    {
        Ok(found) => Ok(found),
        Err(e) => {
            let e = call_may_stand_in(e)?;
            tracing::debug!(error = %e, "no fresh snapshot; looking the email up");
            look_up(ctx, client, email).await
        }
    }
}

/// Reads an invitation by id; 404 (and a 403 that does not blame the key) means gone.
async fn get(client: &confluent_client::Client, id: &str) -> Result<ById, Error> {
    match client.get_invitation(id).await {
        Ok(inv) => Ok(ById::Found(inv)),
        Err(confluent_client::Error::NotFound(_)) => Ok(ById::Gone),
        Err(e) => Err(e.into()),
    }
}

/// Looks an email up in Confluent itself. The server's filter is exact, while ownership compares
/// emails case-insensitively: a successor whose spec says `Shared@Example.com` must find the
/// invitation its predecessor sent to `shared@example.com`, not send a second one. So besides
/// the filter on the spec's email, the lower-cased email is asked too (when it differs), and
/// every invitation the credential's snapshot holds for the email in another case is read by id
/// (the snapshot as it stands, never refreshed for this: what it does not hold yet, the create's
/// 409 looks for again). Usually one call: the email as written matches, the snapshot holds no
/// other case.
pub(super) async fn look_up(
    ctx: &Context,
    client: &confluent_client::Client,
    email: &str,
) -> Result<Vec<RemoteInvitation>, Error> {
    let mut found = client.list_invitations(&ListFilter::email(email)).await?;
    let lower = email.to_ascii_lowercase();
    if lower != email {
        found.extend(client.list_invitations(&ListFilter::email(&lower)).await?);
    }
    let held = ctx.confluent.snapshots.held(client, |s| s.for_email(email));
    for other in held {
        let Some(id) = other.id.as_deref() else {
            continue;
        };
        if found.iter().any(|f| f.id.as_deref() == Some(id)) {
            continue;
        }
        if let ById::Found(inv) = get(client, id).await? {
            found.push(inv);
        }
    }
    let mut seen = std::collections::HashSet::new();
    found.retain(|inv| inv.id.as_ref().is_none_or(|id| seen.insert(id.clone())));
    Ok(found)
}
