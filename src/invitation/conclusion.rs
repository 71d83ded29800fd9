//! What a reconcile of an Invitation concludes, as a value: the status to write, the Events it
//! deserves, how its failure count moves and when to look again. Pure: the controller decides
//! with these functions and performs the result in one place (`controller::report::conclude`).

use std::time::Duration;

use crate::invitation::resource::InvitationStatus;
use crate::invitation::status::{self, Outcome, ready_changed};
use crate::reason;
use confluent_client::model::RemoteInvitation;

/// One Event to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: String,
    pub text: String,
    /// Never folded into an earlier Event's series: a note that names what it is about (one
    /// role binding each), which a series would hide behind the first note.
    pub distinct: bool,
}

impl Note {
    pub fn normal(reason: &str, text: impl Into<String>) -> Self {
        Self {
            warning: false,
            reason: reason.to_owned(),
            text: text.into(),
            distinct: false,
        }
    }

    pub fn warning(reason: &str, text: impl Into<String>) -> Self {
        Self {
            warning: true,
            ..Self::normal(reason, text)
        }
    }
}

/// When to reconcile again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Look {
    /// When the object changes (or the sweeper finds the remote side changed).
    OnChange,
    /// After this long.
    After(Duration),
    /// After the per-object backoff of another failure: quick for a transient one, slow for a
    /// refusal, never before the server's wait.
    Backoff {
        transient: bool,
        server_wait: Option<Duration>,
    },
}

/// What a conclusion does to the object's streak of failures (which paces its backoff and, after
/// a failure, makes its look-ups fresh), and to the errors metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Streak {
    /// A success: the streak ends.
    Ends,
    /// A failure with this reason and detail: counted, and the streak grows.
    Grows { reason: String, detail: String },
    /// A failure with this reason counted in the metric, the streak as it was (a binding waiting
    /// for the next resync: the invitation itself stands).
    Counted(String),
    /// Nothing to count (a preview).
    Stays,
}

/// A reconcile's conclusion.
#[derive(Clone, Debug, PartialEq)]
pub struct Conclusion {
    /// The status to write (written only when it differs from the stored one).
    pub status: InvitationStatus,
    pub notes: Vec<Note>,
    pub look: Look,
    pub streak: Streak,
}

/// How a reconcile of a live Invitation ended, before it is concluded ([`of`]).
#[derive(Debug)]
pub enum Ending {
    /// The remote invitation stands as this; the Event its arrival deserves; its bindings.
    Stands {
        invitation: Box<RemoteInvitation>,
        event: Option<(&'static str, String)>,
        bindings: Bindings,
    },
    /// Refused (the spec, the credentials, Confluent, another owner of the email).
    Refused { reason: String, message: String },
    /// A transient failure (429, 5xx, no answer).
    Transient(confluent_client::Error),
    /// A write held by the preview: its `Would*` reason and message.
    Held {
        reason: &'static str,
        message: String,
    },
    /// Nothing to say yet: the credential's list is in flight; look again after this long.
    Waiting(Duration),
}

impl Ending {
    /// A refusal with its reason and message.
    pub fn refused(reason: &str, message: String) -> Self {
        Self::Refused {
            reason: reason.to_owned(),
            message,
        }
    }
}

/// The conclusion of an ending, from the `status` stored.
pub fn of(
    ending: Ending,
    status: Option<&InvitationStatus>,
    generation: Option<i64>,
    now: jiff::Timestamp,
    resync: Duration,
) -> Conclusion {
    match ending {
        Ending::Stands {
            invitation,
            event,
            bindings,
        } => stands(
            status,
            &invitation,
            event,
            bindings,
            generation,
            now,
            resync,
        ),
        Ending::Refused { reason, message } => refused(status, &reason, message, generation, now),
        Ending::Transient(e) => transient(status, &e, generation, now),
        Ending::Held { reason, message } => held(
            status,
            reason,
            message,
            (Look::After(resync), Streak::Stays),
            generation,
            now,
        ),
        Ending::Waiting(wait) => unchanged(status, wait),
    }
}

/// The binding verdicts that are a Warning Event when Ready turns to them: a refusal, access
/// that must go but is still live, access kept that is no longer allowed.
const WARNED_BINDING_REASONS: [&str; 3] = [
    reason::ROLE_BINDING_REFUSED,
    reason::ROLE_BINDING_REVOCATION_PENDING,
    reason::ROLE_BINDING_DISALLOWED,
];

/// Every Ready reason the bindings give (the invitation itself stands): what a dry run's
/// `Would*` reason replaces.
const BINDING_REASONS: [&str; 4] = [
    reason::ROLE_BINDING_REFUSED,
    reason::ROLE_BINDING_REVOCATION_PENDING,
    reason::ROLE_BINDING_DISALLOWED,
    reason::ROLE_BINDING_PENDING,
];

/// What a dry run would have done to the bindings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Would {
    /// The Ready reason (`WouldCreateRoleBinding`, `WouldDeleteRoleBinding`) and message.
    pub reason: &'static str,
    pub message: String,
    /// An Event per write: its reason and note.
    pub events: Vec<(&'static str, String)>,
}

/// What the role bindings of a reconcile came to, for [`stands`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bindings {
    /// The ledger after the writes (`None`: the Invitation has nothing to do with bindings).
    pub ledger: Option<Vec<crate::role_bindings::resource::RoleBindingStatus>>,
    /// A transient failure (or a delete that did not go through) to try again after: its
    /// reason and the server's wait.
    pub retry: Option<(&'static str, Option<Duration>)>,
    /// Dry run: what would change.
    pub would: Option<Would>,
    /// When a binding Confluent refused is tried again.
    pub refused_retry: Option<Duration>,
}

/// The remote invitation stands as `inv` (created, adopted, observed): its status with the
/// bindings' ledger, the Event its arrival deserves (`event`), and the Warning of a binding
/// verdict Ready turns to.
pub fn stands(
    status: Option<&InvitationStatus>,
    inv: &RemoteInvitation,
    event: Option<(&'static str, String)>,
    bindings: Bindings,
    generation: Option<i64>,
    now: jiff::Timestamp,
    resync: Duration,
) -> Conclusion {
    // the ledger first, so Ready weighs the bindings with the invitation
    let mut base = status.cloned();
    if let Some(ledger) = bindings.ledger {
        base.get_or_insert_with(Default::default).role_bindings = ledger;
    }
    let mut next = status::next_status(base.as_ref(), &Outcome::Remote(inv), generation, now);
    if let Some(Would {
        reason, message, ..
    }) = &bindings.would
        && next
            .ready()
            .is_some_and(|c| c.status == "True" || BINDING_REASONS.contains(&c.reason.as_str()))
    {
        // a dry run: Ready says what would change, instead of what is
        let held = Outcome::Held {
            reason,
            message: message.clone(),
        };
        next = status::next_status(Some(&next), &held, generation, now);
    }
    let mut notes = Vec::new();
    if let Some((reason, text)) = event {
        notes.push(Note::normal(reason, text));
    } else if status.and_then(|p| p.phase.as_deref()) != next.phase.as_deref()
        && let Some(ready) = next.ready()
    {
        notes.push(Note {
            warning: ready.status == "False",
            ..Note::normal(&ready.reason, ready.message.clone())
        });
    }
    if ready_changed(status, &next)
        && let Some(ready) = next.ready()
    {
        if WARNED_BINDING_REASONS.contains(&ready.reason.as_str()) {
            notes.push(Note::warning(&ready.reason, ready.message.clone()));
        }
        for (action, text) in bindings.would.iter().flat_map(|w| &w.events) {
            notes.push(Note {
                distinct: true,
                ..Note::normal(action, text.clone())
            });
        }
    }
    let (look, streak) = if bindings.would.is_some() {
        // the preview follows Confluent, as the invitation's does
        (Look::After(resync), Streak::Stays)
    } else if let Some((reason, wait)) = bindings.retry {
        // A binding waits for a transient failure (429, 5xx, no answer) to pass, or a delete
        // to go through: tried again at the next resync, not on the quick backoff of
        // invitations. The invitation stands; a herd of binding retries would spend the
        // credential's budget when it is tightest.
        let wait = wait.map_or(resync, |w| w.max(resync));
        (Look::After(wait), Streak::Counted(reason.to_owned()))
    } else {
        // The sweeper compares every resource with each fresh snapshot: no timer per resource,
        // except for an invitation that expires before the next resync, and a refused binding
        // whose backoff ends first.
        let check = status::next_check(&next, now, resync);
        let soonest = match (check, bindings.refused_retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let look = soonest.map_or(Look::OnChange, |d| {
            Look::After(d.max(Duration::from_secs(1)))
        });
        (look, Streak::Ends)
    };
    Conclusion {
        status: next,
        notes,
        look,
        streak,
    }
}

/// A refusal or a permanent error: Ready=False with the reason, one Warning Event per change,
/// and a slow retry (someone has to change something first).
pub fn refused(
    status: Option<&InvitationStatus>,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> Conclusion {
    let look = Look::Backoff {
        transient: false,
        server_wait: None,
    };
    let outcome = Outcome::Failed {
        reason,
        message: message.clone(),
    };
    failing(
        status,
        &outcome,
        Note::warning(reason, message),
        look,
        generation,
        now,
    )
}

/// 429, 5xx or no response: status as it was (unless it was empty), a quick backoff per object
/// that honours the server's wait.
pub fn transient(
    status: Option<&InvitationStatus>,
    e: &confluent_client::Error,
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> Conclusion {
    let look = Look::Backoff {
        transient: true,
        server_wait: e.retry_after(),
    };
    let outcome = Outcome::Transient {
        reason: e.reason(),
        message: e.detail(),
    };
    let note = Note::warning(e.reason(), e.detail());
    failing(status, &outcome, note, look, generation, now)
}

/// What refusals and transient failures share: the status, a Warning Event per change of
/// Ready, the failure counted.
fn failing(
    status: Option<&InvitationStatus>,
    outcome: &Outcome<'_>,
    note: Note,
    look: Look,
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> Conclusion {
    let streak = Streak::Grows {
        reason: note.reason.clone(),
        detail: note.text.clone(),
    };
    with_note(status, outcome, note, (look, streak), generation, now)
}

/// The next status after `outcome`, and `note` as its Event when Ready changed.
fn with_note(
    status: Option<&InvitationStatus>,
    outcome: &Outcome<'_>,
    note: Note,
    (look, streak): (Look, Streak),
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> Conclusion {
    let next = status::next_status(status, outcome, generation, now);
    let notes = if ready_changed(status, &next) {
        vec![note]
    } else {
        Vec::new()
    };
    Conclusion {
        status: next,
        notes,
        look,
        streak,
    }
}

/// Nothing was sent on purpose (paused, or a preview): Ready=False with the reason, the remote
/// facts as last observed, a Normal Event per change, and when to look again.
pub fn held(
    status: Option<&InvitationStatus>,
    reason: &str,
    message: String,
    (look, streak): (Look, Streak),
    generation: Option<i64>,
    now: jiff::Timestamp,
) -> Conclusion {
    let outcome = Outcome::Held {
        reason,
        message: message.clone(),
    };
    let note = Note::normal(reason, message);
    with_note(status, &outcome, note, (look, streak), generation, now)
}

/// Nothing changed that status would show (waiting for a list in flight): status as it is, no
/// Event, the streak as it was, a look again after `wait`.
pub fn unchanged(status: Option<&InvitationStatus>, wait: Duration) -> Conclusion {
    Conclusion {
        status: status.cloned().unwrap_or_default(),
        notes: Vec::new(),
        look: Look::After(wait),
        streak: Streak::Stays,
    }
}
