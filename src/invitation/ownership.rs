//! One owner per email per Confluent organization: which of the Invitations that claim an email
//! acts on the remote invitation. Pure: the controller gathers the claims from its watch cache.
//!
//! The rule is Gateway API's for conflicting routes: among the live claims whose email matches
//! case-insensitively and that act on the same organization, the oldest `creationTimestamp`
//! wins, then the lexically first `namespace/name`. Claims being deleted never own: they hand
//! over to the next one.

use std::cmp::Ordering;

/// Where a claim acts, as far as the operator knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The Confluent organization id (the `organization=` part of a CRN it has seen).
    Organization(String),
    /// Only the identity of its credential is known (no CRN seen yet): two claims with the same
    /// credential act on the same organization.
    Credential(String),
    /// Not reconciled by this process yet: it conflicts with nothing until it is.
    Unknown,
}

impl Scope {
    /// Whether two claims certainly act on the same organization.
    pub fn same_as(&self, other: &Scope) -> bool {
        match (self, other) {
            (Self::Organization(a), Self::Organization(b)) => a == b,
            (Self::Credential(a), Self::Credential(b)) => a == b,
            _ => false,
        }
    }
}

/// One Invitation's claim on an email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub namespace: String,
    pub name: String,
    /// `metadata.creationTimestamp` (None sorts last: an object not stored yet is the newest).
    pub created: Option<jiff::Timestamp>,
    pub email: String,
    pub scope: Scope,
    /// It carries a `deletionTimestamp`.
    pub deleting: bool,
}

impl Claim {
    /// `namespace/name`, as messages name it.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn same_object(&self, other: &Claim) -> bool {
        self.namespace == other.namespace && self.name == other.name
    }

    /// Whether `other` claims the same remote invitation as `self`.
    fn contends_with(&self, other: &Claim) -> bool {
        !self.same_object(other)
            && self.email.eq_ignore_ascii_case(&other.email)
            && self.scope.same_as(&other.scope)
    }

    /// Gateway API's precedence: older first, then namespace, then name.
    fn precedence(&self, other: &Claim) -> Ordering {
        by_age(self.created.as_ref(), other.created.as_ref())
            .then_with(|| self.namespace.cmp(&other.namespace))
            .then_with(|| self.name.cmp(&other.name))
    }
}

/// Older first; a claim without a `creationTimestamp` (not stored yet) is the newest.
pub fn by_age(a: Option<&jiff::Timestamp>, b: Option<&jiff::Timestamp>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// The live claim that owns `claim`'s email when it is not `claim`: `claim`'s Invitation must
/// then touch nothing remote and report `EmailConflict` naming it. `None`: `claim` owns it.
pub fn owner_other_than<'a>(
    claim: &Claim,
    others: impl IntoIterator<Item = &'a Claim>,
) -> Option<&'a Claim> {
    others
        .into_iter()
        .filter(|o| !o.deleting && claim.contends_with(o))
        .filter(|o| o.precedence(claim) == Ordering::Less)
        .min_by(|a, b| a.precedence(b))
}

/// The live claim that takes over when `claim` goes: the next owner, if any. While one exists
/// the remote invitation must stay, whatever `claim`'s deletion policy.
pub fn successor<'a>(
    claim: &Claim,
    others: impl IntoIterator<Item = &'a Claim>,
) -> Option<&'a Claim> {
    others
        .into_iter()
        .filter(|o| !o.deleting && claim.contends_with(o))
        .min_by(|a, b| a.precedence(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(ns: &str, name: &str, created: Option<&str>, email: &str, scope: &Scope) -> Claim {
        Claim {
            namespace: ns.into(),
            name: name.into(),
            created: created.map(|c| c.parse().unwrap()),
            email: email.into(),
            scope: scope.clone(),
            deleting: false,
        }
    }

    const T1: &str = "2026-01-01T00:00:00Z";
    const T2: &str = "2026-01-02T00:00:00Z";

    fn org(id: &str) -> Scope {
        Scope::Organization(id.into())
    }

    #[test]
    fn the_oldest_then_namespace_then_name_owns_the_email() {
        let o = org("o1");
        // (me, others, the owner other than me)
        let table: Vec<(Claim, Vec<Claim>, Option<&str>)> = vec![
            // older elsewhere, email in another case
            (
                claim("team-b", "x", Some(T2), "Shared@Example.com", &o),
                vec![claim("team-a", "x", Some(T1), "shared@example.com", &o)],
                Some("team-a/x"),
            ),
            // I am the oldest
            (
                claim("team-b", "x", Some(T1), "a@b.c", &o),
                vec![claim("team-a", "x", Some(T2), "a@b.c", &o)],
                None,
            ),
            // same age: namespace decides, then name
            (
                claim("team-b", "x", Some(T1), "a@b.c", &o),
                vec![claim("team-a", "z", Some(T1), "a@b.c", &o)],
                Some("team-a/z"),
            ),
            (
                claim("team-a", "b", Some(T1), "a@b.c", &o),
                vec![claim("team-a", "a", Some(T1), "a@b.c", &o)],
                Some("team-a/a"),
            ),
            // no timestamp: newest
            (
                claim("a", "a", None, "a@b.c", &o),
                vec![claim("z", "z", Some(T2), "a@b.c", &o)],
                Some("z/z"),
            ),
            // another email never conflicts
            (
                claim("b", "x", Some(T2), "a@b.c", &o),
                vec![claim("a", "x", Some(T1), "other@b.c", &o)],
                None,
            ),
            // another organization never conflicts
            (
                claim("b", "x", Some(T2), "a@b.c", &o),
                vec![claim("a", "x", Some(T1), "a@b.c", &org("o2"))],
                None,
            ),
            // the oldest of several
            (
                claim("c", "x", Some(T2), "a@b.c", &o),
                vec![
                    claim("b", "x", Some(T1), "a@b.c", &o),
                    claim("a", "x", Some("2026-01-01T12:00:00Z"), "a@b.c", &o),
                ],
                Some("b/x"),
            ),
            // myself in the list does not count
            (
                claim("a", "x", Some(T2), "a@b.c", &o),
                vec![claim("a", "x", Some(T1), "a@b.c", &o)],
                None,
            ),
        ];
        for (me, others, want) in table {
            let got = owner_other_than(&me, &others).map(Claim::key);
            assert_eq!(got.as_deref(), want, "{me:?} vs {others:?}");
        }
    }

    #[test]
    fn scopes_conflict_only_when_known_to_be_the_same_organization() {
        let cred = |c: &str| Scope::Credential(c.into());
        for (a, b, same) in [
            (org("o1"), org("o1"), true),
            (org("o1"), org("o2"), false),
            (cred("api-key:K1"), cred("api-key:K1"), true),
            (cred("api-key:K1"), cred("api-key:K2"), false),
            (org("o1"), cred("api-key:K1"), false),
            (Scope::Unknown, Scope::Unknown, false),
            (org("o1"), Scope::Unknown, false),
        ] {
            assert_eq!(a.same_as(&b), same, "{a:?} {b:?}");
            assert_eq!(b.same_as(&a), same, "{b:?} {a:?}");
        }
    }

    #[test]
    fn a_claim_being_deleted_neither_owns_nor_succeeds() {
        let o = org("o1");
        let me = claim("b", "x", Some(T2), "a@b.c", &o);
        let mut going = claim("a", "x", Some(T1), "a@b.c", &o);
        going.deleting = true;
        assert_eq!(owner_other_than(&me, [&going]), None);
        assert_eq!(successor(&me, [&going]), None);
    }

    #[test]
    fn the_successor_is_the_oldest_other_live_claim_even_if_younger() {
        let o = org("o1");
        let owner = claim("a", "x", Some(T1), "a@b.c", &o);
        let younger = claim("c", "x", Some(T2), "A@B.C", &o);
        let youngest = claim("b", "x", Some("2026-01-03T00:00:00Z"), "a@b.c", &o);
        let other_org = claim("d", "x", Some(T1), "a@b.c", &org("o2"));
        let others = [youngest, younger.clone(), other_org];
        assert_eq!(successor(&owner, &others), Some(&younger));
        assert_eq!(successor(&owner, &others[2..]), None);
    }
}
