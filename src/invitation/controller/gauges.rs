//! The gauges counted from the watch cache at scrape time: Invitations by phase, the oldest
//! deletion still held by its finalizer, and the ledgers' role bindings by state.

use std::collections::BTreeMap;

use kube::runtime::reflector::Store;

use crate::invitation::resource::Invitation;
use crate::invitation::status::Phase;
use crate::role_bindings::resource::RoleBindingState;
use crate::runtime::http::Gauges;
use crate::runtime::metrics::Metrics;

/// The gauges of the Invitations in `store`, for the HTTP endpoint to set at each scrape.
pub fn of(store: Store<Invitation>) -> Gauges {
    Box::new(move |metrics: &Metrics| {
        let now = jiff::Timestamp::now();
        let mut phases = BTreeMap::<String, i64>::new();
        let mut oldest_deletion = 0;
        // every state, zeros included: an alert on bindings left to delete needs the series
        let mut bindings: BTreeMap<&'static str, i64> = RoleBindingState::ALL
            .iter()
            .map(|s| (s.as_str(), 0))
            .collect();
        for invitation in store.state() {
            if let Some(deleted) = &invitation.metadata.deletion_timestamp {
                oldest_deletion = oldest_deletion.max(now.duration_since(deleted.0).as_secs());
            }
            let status = invitation.status.as_ref();
            *phases
                .entry(Phase::shown(status).as_str().to_owned())
                .or_default() += 1;
            for entry in status.iter().flat_map(|s| &s.role_bindings) {
                *bindings.entry(entry.state.as_str()).or_default() += 1;
            }
        }
        metrics.set_phases(phases.iter().map(|(p, n)| (p.as_str(), *n)));
        metrics.set_oldest_deletion(oldest_deletion);
        metrics.set_role_binding_states(bindings.iter().map(|(s, n)| (*s, *n)));
    })
}
