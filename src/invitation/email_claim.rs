//! One owner per email across installations: a claim every installation acting on one
//! organization sees, kept as a coordination.k8s.io Lease in a namespace they share
//! (`--claims-namespace`). Pure: what a claim's Lease says, and what an Invitation may do about
//! it; the controller reads and writes the Leases.
//!
//! Within one installation [`super::ownership`] decides (the oldest Invitation it sees);
//! across installations the claim does: whoever holds it owns the email, and it never moves
//! while its holder lives (Gateway API's rule: what works is not broken by a newcomer, however
//! old). The holder is the Invitation's UID, not its installation: a label flip between shards
//! or a restart under another installation id keeps it.
//!
//! A holder whose Invitation is gone releases the claim: its own cleanup does, or, when it was
//! force-deleted, its installation's resync sweep. When the installation itself is gone, its
//! heartbeat (one Lease per installation, renewed while it runs) goes stale: claimants say so,
//! and take the claim over only after `--claims-takeover-after`, when it is set.

use std::cmp::Ordering;
use std::time::Duration;

use super::ownership::{self, Scope};
use crate::runtime::hash;

/// The label on every Lease this operator keeps in the claims namespace: its value says which
/// kind ([`CLAIM`] or [`HEARTBEAT`]). The watch selects by it.
pub const KIND_LABEL: &str = "iam.ccloud.dev/claim";
/// [`KIND_LABEL`]'s value on an email's claim.
pub const CLAIM: &str = "email";
/// [`KIND_LABEL`]'s value on an installation's heartbeat.
pub const HEARTBEAT: &str = "installation";
/// Annotation: the holder's `namespace/name`.
pub const HOLDER_ANNOTATION: &str = "iam.ccloud.dev/holder";
/// Annotation: the installation that reconciles the holder (or the heartbeat's installation).
pub const INSTALLATION_ANNOTATION: &str = "iam.ccloud.dev/installation";
/// Annotations: the claimant that takes the claim over when its holder goes, as
/// `uid namespace/name installation creationTimestamp` (one value, written at once).
pub const SUCCESSOR_ANNOTATION: &str = "iam.ccloud.dev/successor";

/// How long an installation's heartbeat stands without renewal; it is renewed every third of
/// that, so one missed renewal (an API server hiccup) never makes a live installation stale.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(60);

/// The claim Lease's name for `email` where `scope` says the Invitation acts: `inv-` and the
/// hex SHA-256 of the organization, a newline and the lower-cased email (no email in the name:
/// whoever may list Leases there learns no address). Before any invitation of the organization
/// was seen its id is unknown: the credential's identity stands for it (see README, "One owner
/// per email across installations"). `None`: not known where it acts yet.
pub fn claim_name(scope: &Scope, email: &str) -> Option<String> {
    let organization = match scope {
        Scope::Organization(org) => org.clone(),
        Scope::Credential(identity) => format!("credential:{identity}"),
        Scope::Unknown => return None,
    };
    let text = format!("{organization}\n{}", email.to_ascii_lowercase());
    Some(format!("inv-{}", hash::sha256_hex(text.as_bytes())))
}

/// An installation's heartbeat Lease name: `installation-` and the hex SHA-256 of its id (ids
/// like `team-a/operator` are not object names).
pub fn heartbeat_name(installation: &str) -> String {
    format!("installation-{}", hash::sha256_hex(installation.as_bytes()))
}

/// An Invitation as a claimant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimant {
    pub uid: String,
    /// `namespace/name`.
    pub key: String,
    pub installation: String,
    /// `metadata.creationTimestamp` (None sorts last).
    pub created: Option<jiff::Timestamp>,
}

impl Claimant {
    /// The [`SUCCESSOR_ANNOTATION`] value naming this claimant.
    pub fn to_annotation(&self) -> String {
        let created = self.created.map(|t| t.to_string()).unwrap_or_default();
        format!("{} {} {} {created}", self.uid, self.key, self.installation)
    }

    /// A [`SUCCESSOR_ANNOTATION`] value read back; `None` when it is not one (edited by hand).
    pub fn from_annotation(value: &str) -> Option<Self> {
        let mut parts = value.split(' ');
        let uid = parts.next().filter(|p| !p.is_empty())?.to_owned();
        let key = parts.next().filter(|p| p.contains('/'))?.to_owned();
        let installation = parts.next().filter(|p| !p.is_empty())?.to_owned();
        let created = match parts.next() {
            None | Some("") => None,
            Some(t) => Some(t.parse().ok()?),
        };
        Some(Self {
            uid,
            key,
            installation,
            created,
        })
    }

    /// Older first, then `namespace/name`: who of two waiting claimants succeeds.
    fn precedes(&self, other: &Claimant) -> bool {
        ownership::by_age(self.created.as_ref(), other.created.as_ref())
            .then_with(|| self.key.cmp(&other.key))
            == Ordering::Less
    }
}

/// What a claim's Lease says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The holder's UID (`spec.holderIdentity`).
    pub holder: String,
    /// The holder's `namespace/name` and installation, as annotated.
    pub holder_key: String,
    pub installation: String,
    /// The claimant waiting to take over, if one recorded itself.
    pub successor: Option<Claimant>,
}

/// Whether the object or installation behind a claim is still there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Live,
    /// Not renewed for this long past its heartbeat's lifetime (or never seen: `None`).
    Stale(Option<Duration>),
    /// Certainly gone: the holder's own installation looked for its Invitation and it is not
    /// there (force-deleted, or another object under its name).
    Gone,
}

/// What a claimant does about an email's claim before any write for that email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Nobody holds it: create it, holding it (atomic: a second creator meets a conflict).
    Create,
    /// The claimant holds it; `annotate`: its annotations name another object or installation
    /// (a restart under another id, a shard flip) and are written again.
    Mine { annotate: bool },
    /// The holder is gone, or stale for longer than `--claims-takeover-after`: the claim is
    /// replaced by one the claimant holds (with the Lease's resourceVersion: a holder renewing
    /// meanwhile wins).
    TakeOver,
    /// Another holds it: nothing is sent for the email. `record`: the claimant writes itself
    /// as the successor (none is recorded, the recorded one is stale, or it is younger).
    Taken {
        holder: String,
        installation: String,
        stale: Option<Option<Duration>>,
        record: bool,
    },
}

/// The claimant `me` and the claim as read (`None`: no Lease), with the liveness of its
/// holder and of the successor it records.
pub fn hold(
    me: &Claimant,
    claim: Option<&Claim>,
    holder: Liveness,
    successor: Liveness,
    takeover_after: Option<Duration>,
) -> Hold {
    let Some(claim) = claim else {
        return Hold::Create;
    };
    if claim.holder == me.uid {
        let annotate = claim.holder_key != me.key || claim.installation != me.installation;
        return Hold::Mine { annotate };
    }
    let stale = match holder {
        Liveness::Gone => return Hold::TakeOver,
        Liveness::Live => None,
        Liveness::Stale(for_how_long) => {
            // never seen renewing: as stale as can be, it has no age to wait out
            let past = for_how_long.unwrap_or(Duration::MAX);
            if takeover_after.is_some_and(|after| past >= after) {
                return Hold::TakeOver;
            }
            Some(for_how_long)
        }
    };
    let record = match &claim.successor {
        None => true,
        Some(s) if s.uid == me.uid => s != me,
        Some(s) => successor != Liveness::Live || me.precedes(s),
    };
    Hold::Taken {
        holder: claim.holder_key.clone(),
        installation: claim.installation.clone(),
        stale,
        record,
    }
}

/// The claimant the holder leaves the remote invitation to when it goes: the recorded
/// successor while it lives.
pub fn successor(claim: &Claim, liveness: Liveness) -> Option<&Claimant> {
    claim
        .successor
        .as_ref()
        .filter(|_| liveness == Liveness::Live)
}

/// An installation's heartbeat renewed at `renewed` (`None`: never) for `lifetime`, as of `now`.
pub fn heartbeat(
    renewed: Option<jiff::Timestamp>,
    lifetime: Duration,
    now: jiff::Timestamp,
) -> Liveness {
    let Some(renewed) = renewed else {
        return Liveness::Stale(None);
    };
    // a clock a little behind the renewer's reads a renewal from the future: live
    let age = Duration::try_from(now.duration_since(renewed)).unwrap_or(Duration::ZERO);
    match age.checked_sub(lifetime) {
        Some(past) if !past.is_zero() => Liveness::Stale(Some(past)),
        _ => Liveness::Live,
    }
}

/// The `EmailConflict` message of a claim `holder` holds; `stale`: its installation and how
/// long past its heartbeat's lifetime (`None`: never seen renewing).
pub fn taken_message(holder: &str, stale: Option<(&str, Option<Duration>)>) -> String {
    let mut message = format!(
        "{holder} holds the claim on this email in the same Confluent organization (a Lease in the claims namespace, shared by every installation): it owns the invitation, and this Invitation changes nothing in Confluent Cloud until {holder} releases it"
    );
    if let Some((installation, age)) = stale {
        let since = match age {
            Some(age) => format!(
                "has not renewed its heartbeat for {}s past its lifetime",
                age.as_secs()
            ),
            None => "has no heartbeat".to_owned(),
        };
        message.push_str(&format!(
            "; the holder looks stale: its installation {installation} {since} (deleting the claim's Lease hands it over; --claims-takeover-after takes it over by itself)"
        ));
    }
    message
}

#[cfg(test)]
mod tests;
