//! What Confluent showed of role bindings, as the decisions read it: the lists the credential
//! holds (each for one scope, or organization-wide), and the exact reads of this reconcile
//! (one binding by id, or by principal, role and CRN). A list that failed is kept as such:
//! what it would have shown is unknown, and nothing is decided from its absence. Also how one
//! resync batches its lists.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::ledger::Key;
use super::organization_crn;
use confluent_client::role_bindings::{RemoteRoleBinding, RoleBindingFilter, decoded_crn};

/// An exact read the decisions ask for before they decide an entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Read {
    /// `GET /iam/v2/role-bindings/{id}`: whose binding this id is, or that it is gone.
    ById(String),
    /// A list filtered by this principal, role and CRN: whether the binding exists, and its id.
    ByKey(Key),
}

/// What is known of one binding's existence.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen<'a> {
    /// A list or a read showed it, with its id.
    Present(&'a RemoteRoleBinding),
    /// A list the credential holds did not show it. Enough to create it (a duplicate answers
    /// 409), never to forget it: a held list may predate a create.
    Unlisted,
    /// An exact read of this reconcile showed it absent: Confluent confirmed it gone.
    Gone,
    /// Nothing says: the list that shows it failed (with this detail), or none covers it.
    Unknown(String),
}

/// One list as the decisions see it: one principal's share of its answer.
#[derive(Clone, Debug, PartialEq)]
struct Listed {
    principal: String,
    filter: RoleBindingFilter,
    /// The principal's bindings the list returned, or why it failed.
    shown: Result<Vec<RemoteRoleBinding>, String>,
}

/// Everything observed for one reconcile's decisions. Built by the controller from the held
/// lists and the reads it made; the decisions never call anything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    lists: Vec<Listed>,
    reads: Vec<(Read, Result<Option<RemoteRoleBinding>, String>)>,
}

impl Observed {
    /// Adds what a list with `filter` showed of `principal` (its share of the answer), or why it
    /// failed.
    pub fn list(
        &mut self,
        principal: &str,
        filter: RoleBindingFilter,
        shown: Result<Vec<RemoteRoleBinding>, String>,
    ) {
        self.lists.push(Listed {
            principal: principal.to_owned(),
            filter,
            shown,
        });
    }

    /// Adds the answer of an exact read: the binding, `None` when Confluent says it does not
    /// exist, or why the read failed.
    pub fn read(&mut self, read: Read, answer: Result<Option<RemoteRoleBinding>, String>) {
        self.reads.push((read, answer));
    }

    /// Whether `read` was answered in this reconcile (successfully or not): it is not asked
    /// again.
    pub fn has_read(&self, read: &Read) -> bool {
        self.reads.iter().any(|(r, _)| r == read)
    }

    fn answer(&self, read: &Read) -> Option<&Result<Option<RemoteRoleBinding>, String>> {
        self.reads.iter().find(|(r, _)| r == read).map(|(_, a)| a)
    }

    /// What the exact read of `key` answered in this reconcile, if it was made.
    pub fn found(&self, key: &Key) -> Option<Seen<'_>> {
        self.answer(&Read::ByKey(key.clone())).map(|a| match a {
            Ok(Some(b)) => Seen::Present(b),
            Ok(None) => Seen::Gone,
            Err(why) => Seen::Unknown(why.clone()),
        })
    }

    /// What the read of `id` answered in this reconcile, if it was made.
    pub fn fetched(&self, id: &str) -> Option<Seen<'_>> {
        self.answer(&Read::ById(id.to_owned())).map(|a| match a {
            Ok(Some(b)) => Seen::Present(b),
            Ok(None) => Seen::Gone,
            Err(why) => Seen::Unknown(why.clone()),
        })
    }

    /// What is known of `key`'s binding: the exact read of this reconcile if made, else the
    /// lists that cover it (one that shows it wins; one that failed makes it unknown).
    pub fn presence(&self, key: &Key) -> Seen<'_> {
        if let Some(seen) = self.found(key) {
            return seen;
        }
        let mut seen = Seen::Unknown("no list covers its scope".to_owned());
        for listed in self.lists.iter().filter(|l| l.covers(key)) {
            match &listed.shown {
                Ok(shown) => match shown.iter().find(|b| key.is(b)) {
                    Some(b) => return Seen::Present(b),
                    None if !matches!(seen, Seen::Unknown(_)) => {}
                    None => seen = Seen::Unlisted,
                },
                Err(why) => {
                    if matches!(seen, Seen::Unknown(_)) {
                        seen = Seen::Unknown(why.clone());
                    }
                }
            }
        }
        seen
    }

    /// Whether anything seen shows `id` to be `key`'s binding. Ids are never reused, so a list
    /// of any age that showed it says whose it is.
    pub fn confirms(&self, key: &Key, id: &str) -> bool {
        let is = |b: &RemoteRoleBinding| b.id.as_deref() == Some(id) && key.is(b);
        self.lists
            .iter()
            .filter_map(|l| l.shown.as_ref().ok())
            .flatten()
            .any(is)
            || self
                .reads
                .iter()
                .any(|(_, a)| a.as_ref().is_ok_and(|b| b.as_ref().is_some_and(is)))
    }

    /// `principal`'s bindings in the whole organization, when an organization-wide list of it
    /// succeeded: what `exclusiveRoleBindings` needs.
    pub fn organization_wide(
        &self,
        principal: &str,
        organization: &str,
    ) -> Option<&[RemoteRoleBinding]> {
        let whole = RoleBindingFilter::nested(&organization_crn(organization));
        self.lists
            .iter()
            .find(|l| l.principal == principal && l.filter == whole)
            .and_then(|l| l.shown.as_deref().ok())
    }
}

impl Listed {
    /// Whether this list returns `key`'s binding, were it there.
    fn covers(&self, key: &Key) -> bool {
        self.principal == key.principal
            && in_scope(&decoded_crn(&self.filter.crn_pattern), &key.crn_pattern)
            && self
                .filter
                .principal
                .as_deref()
                .is_none_or(|p| p == key.principal)
            && self
                .filter
                .role_name
                .as_deref()
                .is_none_or(|r| r == key.role_name)
    }
}

/// One resource's need to observe bindings, for [`observation_lists`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Demand {
    /// The key of the credential's client (`Client::key`): lists are per credential.
    pub credential: u64,
    /// The organization that credential acts in.
    pub organization: String,
    /// The absolute CRN patterns of its desired bindings.
    pub crn_patterns: Vec<String>,
    /// `spec.exclusiveRoleBindings`: needs the organization-wide list.
    pub exclusive: bool,
}

/// The lists one resync makes, per (credential, organization): one per distinct scope in use,
/// or a single organization-wide list (`organization=<org>/*`) when a resource is exclusive or
/// when the distinct scopes exceed `max_scope_lists` (past it, one list is cheaper). So N
/// resources with k bindings over s distinct scopes cost s lists, not N: never a call per
/// Invitation.
pub fn observation_lists(
    demands: &[Demand],
    max_scope_lists: usize,
) -> BTreeMap<(u64, String), Vec<RoleBindingFilter>> {
    let mut scopes: BTreeMap<(u64, String), (BTreeSet<String>, bool)> = BTreeMap::new();
    for d in demands {
        let (set, exclusive) = scopes
            .entry((d.credential, d.organization.clone()))
            .or_default();
        *exclusive |= d.exclusive;
        set.extend(d.crn_patterns.iter().map(|c| decoded_crn(c).into_owned()));
    }
    scopes
        .into_iter()
        .filter(|(_, (set, exclusive))| *exclusive || !set.is_empty())
        .map(|((credential, org), (set, exclusive))| {
            let lists = if exclusive || set.len() > max_scope_lists {
                vec![RoleBindingFilter::nested(&organization_crn(&org))]
            } else {
                set.into_iter().map(RoleBindingFilter::scope).collect()
            };
            ((credential, org), lists)
        })
        .collect()
}

/// Whether a list's `crn_pattern` filter matches the scope `crn` (both decoded): the scope
/// exactly, or with a trailing `/*` that scope and every scope beneath it.
pub fn in_scope(pattern: &str, crn: &str) -> bool {
    match pattern.strip_suffix("/*") {
        Some(base) => crn == base || crn.strip_prefix(base).is_some_and(|r| r.starts_with('/')),
        None => crn == pattern,
    }
}

/// Whether a list with `filter` returns `binding` (the API's matching: the scope exactly, or with
/// a trailing `/*` that scope and beneath; `principal` and `role_name` exact).
pub fn covers(filter: &RoleBindingFilter, binding: &RemoteRoleBinding) -> bool {
    let Some(crn) = binding.crn_pattern.as_deref() else {
        return false;
    };
    in_scope(&decoded_crn(&filter.crn_pattern), &decoded_crn(crn))
        && filter
            .principal
            .as_deref()
            .is_none_or(|p| binding.principal.as_deref() == Some(p))
        && filter
            .role_name
            .as_deref()
            .is_none_or(|r| binding.role_name.as_deref() == Some(r))
}

/// The listed bindings by principal, so each resource plans from its user's share.
pub fn by_principal(bindings: Vec<RemoteRoleBinding>) -> HashMap<String, Vec<RemoteRoleBinding>> {
    let mut out: HashMap<String, Vec<RemoteRoleBinding>> = HashMap::new();
    for b in bindings {
        if let Some(p) = b.principal.clone() {
            out.entry(p).or_default().push(b);
        }
    }
    out
}
