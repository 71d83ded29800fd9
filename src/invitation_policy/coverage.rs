//! Whether a policy grant's scope covers an Invitation item's CRN pattern: the one rule that
//! decides where a role may be granted, compared segment by segment so that `environment=env-a`
//! never covers `environment=env-ab` the way a string prefix would.

use confluent_client::role_bindings::CRN_PREFIX;

use crate::role_bindings::resolve;

/// Whether the grant's `grant_scope` (relative or absolute, as a policy lists it) covers
/// `pattern`, an Invitation item's absolute, decoded CRN pattern (as [`resolve`] returns it),
/// in `organization`.
///
/// Both are compared per `key=value` segment after `crn://confluent.cloud/`: the grant covers
/// the pattern when it has no more segments and each of its segments matches the pattern's at
/// the same position (same key; a grant value ending in `*` takes any pattern value with that
/// prefix, itself ending in `*` or not; any other value only the same value without `*`).
/// Whatever the pattern has below the grant's last segment is covered. A scope that does not
/// resolve, or names another organization, covers nothing.
pub fn covers(grant_scope: &str, pattern: &str, organization: &str) -> bool {
    let Ok(grant) = resolve(grant_scope, Some(organization)) else {
        return false;
    };
    let (Some(grant), Some(pattern)) = (segments(&grant), segments(pattern)) else {
        return false;
    };
    grant.len() <= pattern.len()
        && grant
            .iter()
            .zip(&pattern)
            .all(|(&granted, &asked)| segment_covers(granted, asked))
}

/// The `(key, value)` segments of an absolute CRN pattern, or `None` when it is not one: a
/// malformed pattern is covered by nothing rather than guessed at.
fn segments(absolute: &str) -> Option<Vec<(&str, &str)>> {
    absolute
        .strip_prefix(CRN_PREFIX)?
        .split('/')
        .map(|segment| {
            segment
                .split_once('=')
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        })
        .collect()
}

/// Whether one granted segment covers the asked segment at the same position.
fn segment_covers((grant_key, grant_value): (&str, &str), (key, value): (&str, &str)) -> bool {
    if grant_key != key {
        return false;
    }
    match grant_value.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        // a `*` the grant does not have would widen the binding past the grant
        None => grant_value == value && !value.contains('*'),
    }
}
