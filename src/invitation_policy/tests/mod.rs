//! Decision tables of the InvitationPolicy kind, a file per concern: [`coverage`] (where a
//! grant reaches), [`admission`] (admit, protection, grants, the rule for existing bindings),
//! [`selection`] (selectors, the policy's status, the CRD's shape).

use std::collections::BTreeMap;

use super::InvitationPolicy;

mod admission;
mod coverage;
mod selection;

const ORG: &str = "org-1";

/// A policy named `name` from its spec as a manifest states it (so the serde defaults are the
/// ones under test too).
fn policy(name: &str, spec: serde_json::Value) -> InvitationPolicy {
    let spec = serde_json::from_value(spec).expect("a valid spec");
    InvitationPolicy::new(name, spec)
}

/// A pattern as an Invitation's item resolves to: `~` stands for the organization's CRN.
fn abs(pattern: &str) -> String {
    pattern.replace('~', "crn://confluent.cloud/organization=org-1")
}

/// A namespace's labels.
fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A timestamp of the tables.
fn ts(s: &str) -> jiff::Timestamp {
    s.parse().expect("a timestamp")
}
