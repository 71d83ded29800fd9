//! A plan's writes settled into its ledger as they end, and the ledger that results: the
//! entries Confluent confirmed gone leave it, every other one stays.

use super::ledger::Done;
use super::plan::{Plan, Step};
use crate::role_bindings::resource::{RoleBindingState, RoleBindingStatus};

impl Plan {
    /// Settles a write's end into its entry.
    pub fn settle(&mut self, entry: usize, done: Done) {
        let Some(e) = self.ledger.get_mut(entry) else {
            return;
        };
        match done {
            Done::Created(id) => {
                e.state = RoleBindingState::Bound;
                e.id = Some(id);
                e.message = None;
            }
            // what an id the entry had stands for is unchanged by a create that made nothing
            Done::Refused(detail) => {
                e.state = RoleBindingState::Refused;
                e.message = Some(detail);
            }
            Done::NotSent(why) => {
                e.state = if e.id.is_some() {
                    RoleBindingState::Bound
                } else {
                    RoleBindingState::Pending
                };
                e.message = Some(why);
            }
            Done::Unanswered(why) => {
                e.state = RoleBindingState::Creating;
                e.message = Some(format!("a create was sent and its answer was lost: {why}"));
            }
            Done::Deleted => {
                self.gone.insert(entry);
            }
            Done::NotDeleted(why) => {
                e.state = RoleBindingState::Deleting;
                let cause = e.message.take().unwrap_or_default();
                let cause = cause.split(';').next().unwrap_or_default().to_owned();
                e.message = Some(if cause.is_empty() {
                    format!("not deleted yet: {why}")
                } else {
                    format!("{cause}; not deleted yet: {why}")
                });
            }
        }
    }

    /// The ledger once every write settled: the entries Confluent confirmed gone leave it.
    pub fn into_ledger(self) -> Vec<RoleBindingStatus> {
        let gone = self.gone;
        self.ledger
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !gone.contains(i))
            .map(|(_, e)| e)
            .collect()
    }

    /// The ledger of a dry run: nothing ran, so every entry is as it was recorded, except that
    /// an entry to be created says so instead of claiming a create in flight.
    pub fn previewed(mut self) -> Vec<RoleBindingStatus> {
        for step in &self.steps {
            match step {
                Step::Create { entry, .. } => {
                    if let Some(e) = self.ledger.get_mut(*entry) {
                        e.state = if e.id.is_some() {
                            RoleBindingState::Bound
                        } else {
                            RoleBindingState::Pending
                        };
                        e.message = Some("dry run: would be created".to_owned());
                    }
                }
                Step::Delete { entry, .. } => {
                    if let Some(e) = self.ledger.get_mut(*entry) {
                        let cause = e.message.take().unwrap_or_default();
                        e.message = Some(format!("dry run: would be deleted ({cause})"));
                    }
                }
                Step::Adopt { .. } => {}
            }
        }
        self.ledger
    }

    /// Whether entries remain whose binding this plan removes and Confluent has not confirmed
    /// gone (cleanup is not done until none does).
    pub fn removals_outstanding(&self) -> bool {
        self.removing.iter().any(|i| !self.gone.contains(i))
    }
}
