//! The pure planner: from the resource's spec and status and what is known of the remote side,
//! the one next thing to do. It knows neither HTTP nor Kubernetes, so its whole decision table is
//! unit-tested (see the tests below).
//!
//! Reads are steps too ([`Read::Get`], [`Read::LookUp`]): the controller performs them,
//! records the result in [`Remote`] and asks again, until a terminal action ([`Apply`] or [`Cleanup`]) comes back. Every
//! path that can end in a create passes through a look-up by email first, which is what makes a
//! create whose response was lost adopt its own invitation instead of making a second one.

use super::validate;
use crate::invitation::resource::{DeletionPolicy, Invitation, InvitationSpec, InvitationStatus};
use crate::reason;
use confluent_client::model::{CreateInvitation, InviteStatus, RemoteInvitation};

/// What the controller learnt of the remote side during this reconcile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Remote {
    /// The result of reading the invitation by the id in status; `None` until read.
    pub by_id: Option<ById>,
    /// Invitations for the spec's email; `None` until looked up.
    pub by_email: Option<Vec<RemoteInvitation>>,
}

/// The answer to a read by id.
// One value per reconcile, never stored in bulk: boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum ById {
    /// The invitation exists (in whatever state).
    Found(RemoteInvitation),
    /// 404: removed out of band, or never visible to these credentials.
    Gone,
}

/// Why an invitation is being created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateCause {
    /// No invitation existed for this resource yet.
    New,
    /// The invitation in status was removed or deactivated out of band.
    Recreate,
}

/// Why the planner refuses to act.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecRefusal {
    /// An immutable field differs from what the remote invitation was made with.
    ImmutableFieldChanged {
        field: &'static str,
        message: String,
    },
    /// The spec cannot be sent (clusters without schema validation let it through).
    InvalidSpec(String),
    /// The email's domain is not among the operator's allowed email domains.
    EmailDomainNotAllowed(String),
    /// An invitation for the email exists with another auth type.
    AuthTypeConflict(String),
}

impl SpecRefusal {
    /// The condition / Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ImmutableFieldChanged { .. } => reason::IMMUTABLE_FIELD_CHANGED,
            Self::InvalidSpec(_) => reason::INVALID_SPEC,
            Self::EmailDomainNotAllowed(_) => reason::EMAIL_DOMAIN_NOT_ALLOWED,
            Self::AuthTypeConflict(_) => reason::AUTH_TYPE_CONFLICT,
        }
    }

    /// The human explanation.
    pub fn message(&self) -> &str {
        match self {
            Self::ImmutableFieldChanged { message, .. } => message,
            Self::InvalidSpec(m) | Self::EmailDomainNotAllowed(m) | Self::AuthTypeConflict(m) => m,
        }
    }
}

/// A read the planner needs before it can decide; the controller records the answer in
/// [`Remote`] and asks again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    /// Read the invitation with this id.
    Get(String),
    /// List the invitations for the spec's email.
    LookUp,
}

/// The one next step of a stage: a read, or the stage's terminal action `A` ([`Apply`] or
/// [`Cleanup`]). Each stage's planner answers only its own actions, so a stage never meets
/// another's.
#[derive(Clone, Debug, PartialEq)]
pub enum Step<A> {
    Read(Read),
    Do(A),
}

/// What the Apply stage does once it knows enough.
#[derive(Clone, Debug, PartialEq)]
pub enum Apply {
    /// Nothing to change remotely: report this invitation in status.
    Observe(RemoteInvitation),
    /// Take over an existing invitation for the email (made by someone else, or by a create of
    /// ours whose response was lost).
    Adopt(RemoteInvitation),
    /// Send a new invitation.
    Create(CreateInvitation, CreateCause),
    /// Delete the expired invitation `expired_id`, then send a new one.
    Reinvite {
        expired_id: String,
        request: CreateInvitation,
    },
    /// Do nothing remotely; say why in status.
    Refuse(SpecRefusal),
}

/// What the Cleanup stage (the finalizer's) does once it knows enough.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cleanup {
    /// Delete this pending invitation.
    DeleteInvitation(String),
    /// Delete this accepted member's user (`DeletionPolicy::DeleteUser`).
    DeleteUser(String),
    /// Leave the accepted member in place (`DeletionPolicy::Delete`); say so in an Event.
    KeepAcceptedMember(String),
    /// Nothing remote is left to clean: remove the finalizer.
    Release,
}

/// The spec and status of one resource, as the planner needs them.
#[derive(Clone, Copy, Debug)]
pub struct Resource<'a> {
    pub spec: &'a InvitationSpec,
    pub status: Option<&'a InvitationStatus>,
    /// The operator's allowed email domains (empty: all).
    pub allowed_email_domains: &'a [String],
}

impl<'a> Resource<'a> {
    /// The planner's view of `invitation` under the operator's allowed email domains.
    pub fn of(invitation: &'a Invitation, allowed_email_domains: &'a [String]) -> Self {
        Resource {
            spec: &invitation.spec,
            status: invitation.status.as_ref(),
            allowed_email_domains,
        }
    }

    fn invitation_id(&self) -> Option<&str> {
        self.status
            .and_then(|s| s.invitation_id.as_deref())
            .filter(|id| !id.is_empty())
    }

    fn create_request(&self) -> CreateInvitation {
        CreateInvitation {
            email: self.spec.email.clone(),
            auth_type: self.spec.auth_type.map(|a| a.as_str().to_owned()),
        }
    }
}

/// Plans the next step towards "exactly one remote invitation for this live resource".
pub fn plan(invitation: Resource<'_>, remote: &Remote) -> Step<Apply> {
    // the operator's domain policy first: its refusal names the policy, whatever the address
    if let Err(message) =
        validate::email_domain(&invitation.spec.email, invitation.allowed_email_domains)
    {
        return Step::Do(Apply::Refuse(SpecRefusal::EmailDomainNotAllowed(message)));
    }
    if let Err(message) = validate::email(&invitation.spec.email) {
        return Step::Do(Apply::Refuse(SpecRefusal::InvalidSpec(format!(
            "spec.email: {message}"
        ))));
    }
    if let Some(refusal) = immutable_violation(invitation) {
        return Step::Do(Apply::Refuse(refusal));
    }
    match invitation.invitation_id() {
        Some(id) => match &remote.by_id {
            None => Step::Read(Read::Get(id.to_owned())),
            Some(ById::Found(inv)) => plan_known(invitation, remote, inv),
            Some(ById::Gone) => adopt_or_create(invitation, remote, CreateCause::Recreate),
        },
        None => adopt_or_create(invitation, remote, CreateCause::New),
    }
}

/// The id in status answered: keep observing it, unless it ended.
fn plan_known(invitation: Resource<'_>, remote: &Remote, inv: &RemoteInvitation) -> Step<Apply> {
    if let Some(email) = &inv.email
        && !inv.email_matches(&invitation.spec.email)
    {
        return Step::Do(Apply::Refuse(SpecRefusal::ImmutableFieldChanged {
            field: "email",
            message: format!(
                "spec.email is {} but invitation {} was made for {email}; email is immutable: create a new Invitation instead",
                invitation.spec.email,
                inv.id.as_deref().unwrap_or("?")
            ),
        }));
    }
    match inv.status {
        Some(InviteStatus::Expired) if invitation.spec.reinvite_on_expiry => {
            match live_match(invitation, remote) {
                None if remote.by_email.is_none() => Step::Read(Read::LookUp),
                Some(live) => adopt(invitation, live),
                None => Step::Do(Apply::Reinvite {
                    expired_id: inv.id.clone().unwrap_or_default(),
                    request: invitation.create_request(),
                }),
            }
        }
        Some(InviteStatus::Deactivated) => {
            adopt_or_create(invitation, remote, CreateCause::Recreate)
        }
        _ => Step::Do(Apply::Observe(inv.clone())),
    }
}

fn adopt_or_create(invitation: Resource<'_>, remote: &Remote, cause: CreateCause) -> Step<Apply> {
    if remote.by_email.is_none() {
        return Step::Read(Read::LookUp);
    }
    match live_match(invitation, remote) {
        Some(live) => adopt(invitation, live),
        None => Step::Do(Apply::Create(invitation.create_request(), cause)),
    }
}

/// How a found invitation came to be this resource's, for the Event that announces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// It was sent before the resource existed (from the console, another tool, an earlier
    /// resource): someone else's invitation, now managed by this resource.
    Adopted,
    /// It was sent after the resource was created: by this operator (a create whose response or
    /// status write was lost, or another replica running without election), not someone else's.
    Recovered,
}

/// Whether `inv`, found by email, is this operator's own: sent after the second the resource was
/// created in (creation timestamps have whole seconds), or within that second when this
/// operator's own create for the resource may have made it (`own_create_unrecorded`: an earlier
/// attempt failed, or this reconcile's create met a 409 although its look-up found nothing).
/// Without either timestamp the invitation is taken as someone else's (the conservative wording).
pub fn how_found(
    inv: &RemoteInvitation,
    resource_created: Option<jiff::Timestamp>,
    own_create_unrecorded: bool,
) -> Found {
    // compared in whole seconds, as Kubernetes keeps them
    let seconds = |t: jiff::Timestamp| t.as_second();
    let sent = inv
        .created_at()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(seconds);
    match (sent, resource_created.map(seconds)) {
        (Some(sent), Some(created)) if sent > created => Found::Recovered,
        (Some(sent), Some(created)) if sent == created && own_create_unrecorded => Found::Recovered,
        _ => Found::Adopted,
    }
}

fn adopt(invitation: Resource<'_>, live: &RemoteInvitation) -> Step<Apply> {
    if let (Some(wanted), Some(actual)) = (invitation.spec.auth_type, live.auth_type.as_deref())
        && wanted.as_str() != actual
    {
        return Step::Do(Apply::Refuse(SpecRefusal::AuthTypeConflict(format!(
            "invitation {} for {} already exists with {actual}, but spec.authType is {}; delete it in Confluent Cloud or change spec.authType",
            live.id.as_deref().unwrap_or("?"),
            invitation.spec.email,
            wanted.as_str()
        ))));
    }
    Step::Do(Apply::Adopt(live.clone()))
}

/// The live invitation for the email that this resource should own: an accepted one first,
/// else the newest pending one. Expired and deactivated records are history, not candidates.
fn live_match<'r>(invitation: Resource<'_>, remote: &'r Remote) -> Option<&'r RemoteInvitation> {
    let candidates = remote.by_email.as_deref()?;
    candidates
        .iter()
        .filter(|i| i.email_matches(&invitation.spec.email) && i.id.is_some())
        .filter(|i| i.status.as_ref().is_none_or(InviteStatus::is_live))
        .max_by_key(|i| {
            (
                i.status == Some(InviteStatus::Accepted),
                i.created_at().unwrap_or_default().to_owned(),
            )
        })
}

/// Email and auth type cannot change once an invitation was made (clusters older than 1.25
/// ignore the CRD's CEL rules, so the controller checks too).
fn immutable_violation(invitation: Resource<'_>) -> Option<SpecRefusal> {
    let status = invitation.status?;
    if let Some(email) = &status.email
        && !email.eq_ignore_ascii_case(&invitation.spec.email)
    {
        return Some(SpecRefusal::ImmutableFieldChanged {
            field: "email",
            message: format!(
                "spec.email changed from {email} to {}; email is immutable: create a new Invitation instead",
                invitation.spec.email
            ),
        });
    }
    if let (Some(wanted), Some(actual)) = (invitation.spec.auth_type, status.auth_type.as_deref())
        && status.invitation_id.is_some()
        && wanted.as_str() != actual
    {
        return Some(SpecRefusal::ImmutableFieldChanged {
            field: "authType",
            message: format!(
                "spec.authType is {} but invitation {} has {actual}; authType is immutable: create a new Invitation instead",
                wanted.as_str(),
                status.invitation_id.as_deref().unwrap_or("?")
            ),
        });
    }
    None
}

/// Plans the cleanup of a resource being deleted, per its deletion policy.
pub fn plan_cleanup(invitation: Resource<'_>, remote: &Remote) -> Step<Cleanup> {
    let policy = invitation.spec.deletion_policy;
    if policy == DeletionPolicy::Orphan {
        return Step::Do(Cleanup::Release);
    }
    let known = match invitation.invitation_id() {
        Some(id) => match &remote.by_id {
            None => return Step::Read(Read::Get(id.to_owned())),
            // Only an invitation for this resource's email is its own: a status restored from
            // a backup, or patched by hand, may name another resource's invitation, which
            // cleanup must never touch.
            Some(ById::Found(inv))
                if inv.status != Some(InviteStatus::Deactivated)
                    && inv.email_matches(&invitation.spec.email) =>
            {
                Some(inv)
            }
            // Gone, deactivated or someone else's: a replacement made by a create whose
            // response was lost (its id never reached status) may still stand.
            Some(_) => None,
        },
        // The id never reached status (deleted right after a create).
        None => None,
    };
    // Without a standing invitation by id, find one by email.
    let target = match known {
        Some(inv) => inv,
        None if remote.by_email.is_none() => return Step::Read(Read::LookUp),
        None => match live_match(invitation, remote) {
            Some(inv) => inv,
            None => return Step::Do(Cleanup::Release),
        },
    };
    let Some(id) = target.id.clone() else {
        return Step::Do(Cleanup::Release);
    };
    match &target.status {
        Some(InviteStatus::Deactivated) => Step::Do(Cleanup::Release),
        Some(InviteStatus::Accepted) => match (policy, target.user_id()) {
            (DeletionPolicy::DeleteUser, Some(user)) => {
                Step::Do(Cleanup::DeleteUser(user.to_owned()))
            }
            _ => Step::Do(Cleanup::KeepAcceptedMember(
                target.user_id().unwrap_or(&id).to_owned(),
            )),
        },
        _ => Step::Do(Cleanup::DeleteInvitation(id)),
    }
}

#[cfg(test)]
mod tests;
