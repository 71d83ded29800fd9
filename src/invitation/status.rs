//! Pure status computation: what the resource's status should say after a reconcile, and when to
//! look again. Writing it is the controller's job, and it writes only when this differs from
//! what is stored, so our own writes never trigger a reconcile storm.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::invitation::resource::InvitationStatus;
use crate::reason;
use crate::role_bindings::{self, Verdict};
use crate::runtime::conditions;
use confluent_client::model::{InviteStatus, RemoteInvitation};

/// What this reconcile ended with, as far as status is concerned.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<'a> {
    /// The remote invitation as it now stands.
    Remote(&'a RemoteInvitation),
    /// Nothing was or can be done until someone changes something: Ready=False.
    Failed { reason: &'a str, message: String },
    /// A transient failure (429, 5xx, network): keep what status said, unless it said nothing.
    Transient { reason: &'a str, message: String },
    /// Nothing was sent on purpose (the resource is paused, or the operator only previews):
    /// Ready=False with the reason, and the remote facts last observed kept as they are.
    Held { reason: &'a str, message: String },
}

/// `status.phase`: the remote invitation's state as users read it, or `Pending` before one is
/// known. Produced here and matched through this type everywhere, so a spelling lives once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No remote invitation is known yet.
    Pending,
    Sent,
    Staged,
    Accepted,
    Expired,
    Deactivated,
    /// A remote status this version does not know, shown as Confluent spells it.
    Other(String),
}

impl Phase {
    /// The phase shown for a remote status.
    pub fn of(status: Option<&InviteStatus>) -> Self {
        match status {
            Some(InviteStatus::Sent) => Self::Sent,
            Some(InviteStatus::Staged) => Self::Staged,
            Some(InviteStatus::Accepted) => Self::Accepted,
            Some(InviteStatus::Expired) => Self::Expired,
            Some(InviteStatus::Deactivated) => Self::Deactivated,
            Some(InviteStatus::Other(raw)) => Self::Other(raw.clone()),
            None => Self::Pending,
        }
    }

    /// The phase a stored status shows (`Pending` when it shows none).
    pub fn shown(status: Option<&InvitationStatus>) -> Self {
        let Some(shown) = status.and_then(|s| s.phase.as_deref()) else {
            return Self::Pending;
        };
        Self::KNOWN
            .into_iter()
            .find(|p| p.as_str() == shown)
            .unwrap_or_else(|| Self::Other(shown.to_owned()))
    }

    /// Whether the invitation stands as asked (pending or accepted): what role bindings wait for.
    pub fn stands(&self) -> bool {
        matches!(self, Self::Sent | Self::Staged | Self::Accepted)
    }

    const KNOWN: [Self; 6] = [
        Self::Pending,
        Self::Sent,
        Self::Staged,
        Self::Accepted,
        Self::Expired,
        Self::Deactivated,
    ];

    /// The spelling in `status.phase`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "Pending",
            Self::Sent => "Sent",
            Self::Staged => "Staged",
            Self::Accepted => "Accepted",
            Self::Expired => "Expired",
            Self::Deactivated => "Deactivated",
            Self::Other(raw) => raw,
        }
    }
}

/// The status after `outcome`, keeping `lastTransitionTime` unless Ready's status flips.
pub fn next_status(
    status: Option<&InvitationStatus>,
    outcome: &Outcome<'_>,
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> InvitationStatus {
    let mut next = status.cloned().unwrap_or_default();
    let (ready, reason, message) = match outcome {
        Outcome::Remote(inv) => {
            apply_remote(&mut next, inv);
            let (ready, reason, message) = ready_from_remote(inv);
            // a standing invitation is Ready only with every listed binding in place; the
            // invitation's own reasons (Expired, ...) come first
            match role_bindings::verdict(&next.role_bindings) {
                Verdict::NotReady { reason, message } if ready == "True" => {
                    ("False", reason.to_owned(), message)
                }
                _ => (ready, reason, message),
            }
        }
        Outcome::Failed { reason, message } => {
            if next.phase.is_none() {
                next.phase = Some(Phase::Pending.as_str().into());
            }
            ("False", (*reason).to_owned(), message.clone())
        }
        Outcome::Held { reason, message } => {
            if next.phase.is_none() {
                next.phase = Some(Phase::Pending.as_str().into());
            }
            ("False", (*reason).to_owned(), message.clone())
        }
        Outcome::Transient { reason, message } => {
            if let Some(status) = status.filter(|p| p.ready().is_some()) {
                return status.clone();
            }
            next.phase = Some(Phase::Pending.as_str().into());
            ("Unknown", (*reason).to_owned(), message.clone())
        }
    };
    next.observed_generation = generation;
    // (next's conditions are the stored ones: Ready keeps its transition time unless it flips)
    conditions::set_ready(
        &mut next.conditions,
        ready,
        reason,
        message,
        generation,
        now,
    );
    next
}

fn apply_remote(next: &mut InvitationStatus, inv: &RemoteInvitation) {
    next.invitation_id = inv.id.clone();
    next.user_id = inv.user_id().map(str::to_owned);
    next.email = inv.email.clone().or(next.email.take());
    next.phase = Some(Phase::of(inv.status.as_ref()).as_str().to_owned());
    next.remote_status = inv.status.as_ref().map(|s| s.as_str().to_owned());
    next.auth_type = inv.auth_type.clone();
    next.created_at = inv.created_at().map(str::to_owned);
    next.expires_at = inv.expires_at.clone();
    next.accepted_at = inv.accepted_at.clone();
    next.resource_name = inv.resource_name().map(str::to_owned);
}

fn ready_from_remote(inv: &RemoteInvitation) -> (&'static str, String, String) {
    let id = inv.id.as_deref().unwrap_or("?");
    let email = inv.email.as_deref().unwrap_or("the invitee");
    let expires = inv.expires_at.as_deref().unwrap_or("an unknown time");
    match &inv.status {
        Some(InviteStatus::Sent) | None => (
            "True",
            Phase::Sent.as_str().into(),
            format!("Invitation {id} sent to {email}; it expires at {expires} unless accepted"),
        ),
        Some(InviteStatus::Staged) => (
            "True",
            Phase::Staged.as_str().into(),
            format!("Invitation {id} for {email} is staged by Confluent"),
        ),
        Some(InviteStatus::Accepted) => (
            "True",
            Phase::Accepted.as_str().into(),
            format!(
                "{email} accepted invitation {id} at {}",
                inv.accepted_at.as_deref().unwrap_or("an unknown time")
            ),
        ),
        Some(InviteStatus::Expired) => (
            "False",
            Phase::Expired.as_str().into(),
            format!(
                "Invitation {id} for {email} expired at {expires} unaccepted; set spec.reinviteOnExpiry: true to send a new one"
            ),
        ),
        Some(InviteStatus::Deactivated) => (
            "False",
            Phase::Deactivated.as_str().into(),
            format!("Invitation {id} for {email} was deactivated in Confluent Cloud"),
        ),
        Some(InviteStatus::Other(raw)) => (
            "Unknown",
            reason::UNKNOWN_REMOTE_STATUS.into(),
            format!(
                "Invitation {id} for {email} has status {raw}, unknown to this operator version"
            ),
        ),
    }
}

/// Whether a successful reconcile must look at the resource again by itself, and when: only a
/// pending invitation that expires before the next resync, just after it expires. Everything
/// else is watched by the controller's sweeper, which compares every resource with the fresh
/// snapshot once per resync; a per-object timer for every healthy resource would hold scheduler
/// state apiece and find nothing the sweeper does not.
pub fn next_check(
    status: &InvitationStatus,
    now: jiff::Timestamp,
    resync: Duration,
) -> Option<Duration> {
    match Phase::shown(Some(status)) {
        Phase::Sent | Phase::Staged => {
            let at = status
                .expires_at
                .as_deref()?
                .parse::<jiff::Timestamp>()
                .ok()?;
            let until_expiry = Duration::try_from(at.duration_since(now)).ok()?;
            (until_expiry < resync).then(|| until_expiry + Duration::from_secs(1))
        }
        _ => None,
    }
}

/// Whether a remote invitation reads as pending although its `expiresAt` has passed: what a
/// snapshot listed before the expiry says. Not to be trusted: the service has expired it since.
pub fn pending_past_expiry(inv: &RemoteInvitation, now: jiff::Timestamp) -> bool {
    matches!(inv.status, Some(InviteStatus::Sent | InviteStatus::Staged))
        && inv.expires_at_timestamp().is_some_and(|at| at <= now)
}

/// Whether the Ready condition's status, reason or message differ between two statuses: the
/// transitions worth an Event.
pub fn ready_changed(status: Option<&InvitationStatus>, next: &InvitationStatus) -> bool {
    let key =
        |c: Option<&Condition>| c.map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()));
    key(status.and_then(InvitationStatus::ready)) != key(next.ready())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::conditions::READY;
    use confluent_client::model::{ObjectMeta, ObjectReference};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn t(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn remote(status: InviteStatus) -> RemoteInvitation {
        RemoteInvitation {
            id: Some("i-1".into()),
            email: Some("jane@example.com".into()),
            status: Some(status),
            auth_type: Some("AUTH_TYPE_SSO".into()),
            expires_at: Some("2026-01-08T00:00:00Z".into()),
            user: Some(ObjectReference {
                id: Some("u-1".into()),
                ..Default::default()
            }),
            metadata: Some(ObjectMeta {
                created_at: Some("2026-01-01T00:00:00Z".into()),
                resource_name: Some("crn://confluent.cloud/organization=o/invitation=i-1".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_sent_invitation_is_ready_with_every_field() {
        let s = next_status(
            None,
            &Outcome::Remote(&remote(InviteStatus::Sent)),
            Some(3),
            t("2026-01-01T00:00:05Z"),
        );
        assert_eq!(s.invitation_id.as_deref(), Some("i-1"));
        assert_eq!(s.user_id.as_deref(), Some("u-1"));
        assert_eq!(s.phase.as_deref(), Some("Sent"));
        assert_eq!(s.remote_status.as_deref(), Some("INVITE_STATUS_SENT"));
        assert_eq!(s.auth_type.as_deref(), Some("AUTH_TYPE_SSO"));
        assert_eq!(s.created_at.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(s.expires_at.as_deref(), Some("2026-01-08T00:00:00Z"));
        assert!(s.resource_name.unwrap().ends_with("invitation=i-1"));
        assert_eq!(s.observed_generation, Some(3));
        let ready = s.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Sent")
        );
        assert_eq!(ready.observed_generation, Some(3));
    }

    #[test]
    fn each_remote_state_maps_to_phase_and_ready() {
        for (state, phase, ready, reason) in [
            (InviteStatus::Staged, "Staged", "True", "Staged"),
            (InviteStatus::Accepted, "Accepted", "True", "Accepted"),
            (InviteStatus::Expired, "Expired", "False", "Expired"),
            (
                InviteStatus::Deactivated,
                "Deactivated",
                "False",
                "Deactivated",
            ),
            (
                InviteStatus::Other("INVITE_STATUS_NEW".into()),
                "INVITE_STATUS_NEW",
                "Unknown",
                "UnknownRemoteStatus",
            ),
        ] {
            let s = next_status(
                None,
                &Outcome::Remote(&remote(state)),
                Some(1),
                t("2026-01-02T00:00:00Z"),
            );
            assert_eq!(s.phase.as_deref(), Some(phase));
            let c = s.ready().unwrap();
            assert_eq!((c.status.as_str(), c.reason.as_str()), (ready, reason));
        }
    }

    #[test]
    fn a_written_phase_reads_back_as_the_same_phase() {
        let states = [
            None,
            Some(InviteStatus::Sent),
            Some(InviteStatus::Staged),
            Some(InviteStatus::Accepted),
            Some(InviteStatus::Expired),
            Some(InviteStatus::Deactivated),
            Some(InviteStatus::Other("INVITE_STATUS_NEW".into())),
        ];
        for state in states {
            let phase = Phase::of(state.as_ref());
            let written = InvitationStatus {
                phase: Some(phase.as_str().to_owned()),
                ..Default::default()
            };
            assert_eq!(Phase::shown(Some(&written)), phase);
        }
        assert_eq!(Phase::shown(None), Phase::Pending);
        assert_eq!(
            Phase::shown(Some(&InvitationStatus::default())),
            Phase::Pending
        );
    }

    #[test]
    fn an_unchanged_outcome_gives_an_identical_status() {
        let first = next_status(
            None,
            &Outcome::Remote(&remote(InviteStatus::Sent)),
            Some(1),
            t("2026-01-01T00:00:05Z"),
        );
        let again = next_status(
            Some(&first),
            &Outcome::Remote(&remote(InviteStatus::Sent)),
            Some(1),
            t("2026-01-01T00:09:00Z"),
        );
        assert_eq!(first, again, "a resync must not rewrite status");
        // Sent -> Accepted: same Ready status, so the transition time stays
        let accepted = next_status(
            Some(&first),
            &Outcome::Remote(&remote(InviteStatus::Accepted)),
            Some(1),
            t("2026-01-03T00:00:00Z"),
        );
        assert_eq!(
            accepted.ready().unwrap().last_transition_time,
            first.ready().unwrap().last_transition_time
        );
        // a flip moves it
        let failed = next_status(
            Some(&accepted),
            &Outcome::Failed {
                reason: "Forbidden",
                message: "no".into(),
            },
            Some(2),
            t("2026-01-04T00:00:00Z"),
        );
        let c = failed.ready().unwrap();
        assert_eq!(c.last_transition_time, Time(t("2026-01-04T00:00:00Z")));
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "Forbidden")
        );
        assert_eq!(
            failed.invitation_id.as_deref(),
            Some("i-1"),
            "remote facts are kept"
        );
        assert_eq!(failed.observed_generation, Some(2));
    }

    #[test]
    fn transient_errors_keep_a_known_status_and_explain_an_empty_one() {
        let known = next_status(
            None,
            &Outcome::Remote(&remote(InviteStatus::Sent)),
            Some(1),
            t("2026-01-01T00:00:05Z"),
        );
        let transient = Outcome::Transient {
            reason: "RateLimited",
            message: "429".into(),
        };
        assert_eq!(
            next_status(Some(&known), &transient, Some(1), t("2026-01-01T00:01:00Z")),
            known
        );
        let fresh = next_status(None, &transient, Some(1), t("2026-01-01T00:01:00Z"));
        assert_eq!(fresh.phase.as_deref(), Some(Phase::Pending.as_str()));
        assert_eq!(fresh.ready().unwrap().status, "Unknown");
    }

    #[test]
    fn a_held_resource_keeps_its_remote_facts_and_says_why() {
        let known = next_status(
            None,
            &Outcome::Remote(&remote(InviteStatus::Sent)),
            Some(1),
            t("2026-01-01T00:00:05Z"),
        );
        let held = Outcome::Held {
            reason: "Paused",
            message: "paused".into(),
        };
        let paused = next_status(Some(&known), &held, Some(2), t("2026-01-02T00:00:00Z"));
        assert_eq!(paused.phase.as_deref(), Some("Sent"));
        assert_eq!(paused.invitation_id.as_deref(), Some("i-1"));
        assert_eq!(paused.observed_generation, Some(2));
        let c = paused.ready().unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "Paused"));
        assert_eq!(
            next_status(Some(&paused), &held, Some(2), t("2026-01-03T00:00:00Z")),
            paused,
            "holding again rewrites nothing"
        );
        let fresh = next_status(None, &held, Some(1), t("2026-01-01T00:00:00Z"));
        assert_eq!(fresh.phase.as_deref(), Some(Phase::Pending.as_str()));
        assert_eq!(fresh.invitation_id, None);
    }

    #[test]
    fn only_invitations_expiring_before_the_next_resync_get_their_own_check() {
        let resync = Duration::from_secs(300);
        let mut s = InvitationStatus {
            phase: Some("Sent".into()),
            expires_at: Some("2026-01-08T00:00:00Z".into()),
            ..Default::default()
        };
        assert_eq!(next_check(&s, t("2026-01-01T00:00:00Z"), resync), None);
        assert_eq!(
            next_check(&s, t("2026-01-07T23:59:50Z"), resync),
            Some(Duration::from_secs(11))
        );
        s.phase = Some("Staged".into());
        assert_eq!(
            next_check(&s, t("2026-01-07T23:55:01Z"), resync),
            Some(Duration::from_secs(300))
        );
        // already past expiry: the sweeper's comparison sees it at once
        assert_eq!(next_check(&s, t("2026-01-09T00:00:00Z"), resync), None);
        s.phase = Some("Accepted".into());
        assert_eq!(next_check(&s, t("2026-01-07T23:59:50Z"), resync), None);
        s.phase = Some("Expired".into());
        assert_eq!(next_check(&s, t("2026-01-09T00:00:00Z"), resync), None);
    }

    #[test]
    fn a_pending_invitation_past_its_expiry_is_not_trusted() {
        let mut inv = remote(InviteStatus::Sent);
        inv.expires_at = Some("2026-03-01T12:00:00Z".into());
        assert!(!pending_past_expiry(&inv, t("2026-03-01T11:59:59Z")));
        assert!(pending_past_expiry(&inv, t("2026-03-01T12:00:00Z")));
        for settled in [InviteStatus::Expired, InviteStatus::Accepted] {
            inv.status = Some(settled);
            assert!(!pending_past_expiry(&inv, t("2026-03-02T00:00:00Z")));
        }
        inv.status = Some(InviteStatus::Sent);
        inv.expires_at = None;
        assert!(!pending_past_expiry(&inv, t("2026-03-02T00:00:00Z")));
    }
}
