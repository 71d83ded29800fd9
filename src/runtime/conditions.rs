//! The `Ready` condition every kind's status carries, written the same way for each: its
//! `lastTransitionTime` moves only when its status flips, so GitOps tools and `kubectl wait`
//! see a change exactly when there is one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The condition type GitOps tools read (kstatus, Argo CD health). Printer columns spell it
/// too: attributes take no constants.
pub const READY: &str = "Ready";

/// The `Ready` condition among `conditions`, if any.
pub fn ready(conditions: &[Condition]) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == READY)
}

/// Replaces the `Ready` condition of `conditions` (the other types stay), keeping its
/// `lastTransitionTime` unless `status` differs from the one it replaces.
pub fn set_ready(
    conditions: &mut Vec<Condition>,
    status: &str,
    reason: String,
    message: String,
    generation: Option<i64>,
    now: jiff::Timestamp,
) {
    let transition = ready(conditions)
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    conditions.retain(|c| c.type_ != READY);
    conditions.push(Condition {
        type_: READY.into(),
        status: status.into(),
        reason,
        message,
        observed_generation: generation,
        last_transition_time: transition,
    });
}
