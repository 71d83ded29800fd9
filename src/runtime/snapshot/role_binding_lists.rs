//! Batch observation of role bindings: per credential, the lists of bindings one resync needs
//! (one per distinct scope in use, or one organization-wide list), kept and shared by every
//! Invitation of that credential. The controller's sweeper lists them again once per resync
//! (unless the credential's budget is tight) and compares each Invitation with them. A reconcile
//! reads the held lists that cover its scopes, whatever their age, and lists only a scope that
//! nothing held covers (once, whoever asks): a reconcile never spends the credential's budget on
//! what the sweeper keeps. A list older than a resync is safe to create from (a binding it misses
//! is met by the create's `409`), never to forget a binding by (it may predate a create): the
//! decisions (`role_bindings`) forget one only on an exact read of the moment.
//!
//! Bindings this operator creates or deletes are recorded in every list that covers them at
//! once, so the next reconcile does not find a stale list and act twice.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::role_bindings::{covers, in_scope};
use confluent_client::role_bindings::{RemoteRoleBinding, RoleBindingFilter, decoded_crn};

/// One list's last answer, by principal: each Invitation reads its invitee's share only, so a
/// scope every Invitation binds at costs each reconcile a look-up, not a scan of the fleet.
#[derive(Debug)]
struct Listed {
    taken_at: Instant,
    by_principal: HashMap<Box<str>, Vec<RemoteRoleBinding>>,
}

impl Listed {
    fn new(taken_at: Instant, bindings: Vec<RemoteRoleBinding>) -> Self {
        let mut by_principal: HashMap<Box<str>, Vec<RemoteRoleBinding>> = HashMap::new();
        for b in bindings {
            let principal: Box<str> = b.principal.as_deref().unwrap_or_default().into();
            by_principal.entry(principal).or_default().push(lean(b));
        }
        Self {
            taken_at,
            by_principal,
        }
    }

    /// `principal`'s bindings that a list with `filter` returns (`whole`: this list is that
    /// list).
    fn share(
        &self,
        principal: &str,
        filter: &RoleBindingFilter,
        whole: bool,
    ) -> Vec<RemoteRoleBinding> {
        self.by_principal
            .get(principal)
            .map(|held| {
                held.iter()
                    .filter(|b| whole || covers(filter, b))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One list: its last answer, and the lock that makes concurrent askers wait for one call.
#[derive(Debug, Default)]
struct List {
    listed: Mutex<Option<Listed>>,
    flight: tokio::sync::Mutex<()>,
}

/// The lists of every credential in use, by client key and filter. Bounded by the credentials
/// in use times the scopes their Invitations list: the sweeper drops what is no longer asked for
/// ([`RoleBindingLists::retain`]).
#[derive(Default)]
pub struct RoleBindingLists {
    lists: Mutex<HashMap<(u64, RoleBindingFilter), Arc<List>>>,
}

/// Keeps of a binding what the decisions read: no metadata, no self links (a fleet's lists are
/// held all the time).
fn lean(b: RemoteRoleBinding) -> RemoteRoleBinding {
    RemoteRoleBinding {
        id: b.id,
        principal: b.principal,
        role_name: b.role_name,
        crn_pattern: b.crn_pattern.map(|c| decoded_crn(&c).into_owned()),
        ..RemoteRoleBinding::default()
    }
}

/// Whether a list made with `wider` returns everything a list with `filter` returns.
fn contains(wider: &RoleBindingFilter, filter: &RoleBindingFilter) -> bool {
    if wider == filter {
        return true;
    }
    // only an unfiltered nested list holds more than its own answer
    wider.principal.is_none()
        && wider.role_name.is_none()
        && wider.crn_pattern.ends_with("/*")
        && in_scope(
            &wider.crn_pattern,
            filter.crn_pattern.trim_end_matches("/*"),
        )
}

impl RoleBindingLists {
    fn list(&self, client: u64, filter: &RoleBindingFilter) -> Arc<List> {
        self.lists
            .lock()
            .entry((client, filter.clone()))
            .or_default()
            .clone()
    }

    /// `principal`'s share of the youngest held list of `client` that contains `filter`'s
    /// answer, if one is held.
    fn held_covering(
        &self,
        client: u64,
        filter: &RoleBindingFilter,
        principal: &str,
    ) -> Option<Vec<RemoteRoleBinding>> {
        let lists: Vec<(RoleBindingFilter, Arc<List>)> = self
            .lists
            .lock()
            .iter()
            .filter(|((key, wider), _)| *key == client && contains(wider, filter))
            .map(|((_, wider), list)| (wider.clone(), list.clone()))
            .collect();
        lists
            .into_iter()
            .filter_map(|(wider, list)| {
                let listed = list.listed.lock();
                let listed = listed.as_ref()?;
                Some((
                    listed.taken_at,
                    listed.share(principal, filter, wider == *filter),
                ))
            })
            .max_by_key(|(taken_at, _)| *taken_at)
            .map(|(_, share)| share)
    }

    /// What each of `filters` returns of `principal`: from the held list that can answer, else
    /// listed (each once, however many reconciles ask at the same time), or why that list
    /// failed. One failing scope fails only its own answer. Never a list again for a held one,
    /// also after a failure: a create whose answer may have been lost is recorded and looked up
    /// exactly (see `role_bindings`), which costs less than listing every page of its scope again.
    pub async fn look(
        &self,
        client: &confluent_client::Client,
        filters: &[RoleBindingFilter],
        principal: &str,
    ) -> Vec<(
        RoleBindingFilter,
        Result<Vec<RemoteRoleBinding>, confluent_client::Error>,
    )> {
        let mut answers = Vec::with_capacity(filters.len());
        for filter in filters {
            let answer = match self.held_covering(client.key(), filter, principal) {
                Some(held) => Ok(held),
                None => self.listed_again(client, filter, true).await.map(|list| {
                    list.listed
                        .lock()
                        .as_ref()
                        .map(|l| l.share(principal, filter, true))
                        .unwrap_or_default()
                }),
            };
            answers.push((filter.clone(), answer));
        }
        answers
    }

    /// What the held lists of `client` show of `principal`, for each of `filters` that one can
    /// answer (no call).
    pub fn look_held(
        &self,
        client: u64,
        filters: &[RoleBindingFilter],
        principal: &str,
    ) -> Vec<(RoleBindingFilter, Vec<RemoteRoleBinding>)> {
        filters
            .iter()
            .filter_map(|f| Some((f.clone(), self.held_covering(client, f, principal)?)))
            .collect()
    }

    /// Every held list of `client`, with `principal`'s share of it (no call): what says whose
    /// an id is, for bindings no desired scope covers (a removed item's, a previous invitee's).
    pub fn held(
        &self,
        client: u64,
        principal: &str,
    ) -> Vec<(RoleBindingFilter, Vec<RemoteRoleBinding>)> {
        let lists: Vec<(RoleBindingFilter, Arc<List>)> = self
            .lists
            .lock()
            .iter()
            .filter(|((key, _), _)| *key == client)
            .map(|((_, filter), list)| (filter.clone(), list.clone()))
            .collect();
        lists
            .into_iter()
            .filter_map(|(filter, list)| {
                let listed = list.listed.lock();
                let share = listed.as_ref()?.share(principal, &filter, true);
                Some((filter, share))
            })
            .collect()
    }

    /// Lists `filter` again and keeps the answer (the sweeper, once per resync).
    pub async fn refresh(
        &self,
        client: &confluent_client::Client,
        filter: &RoleBindingFilter,
    ) -> Result<(), confluent_client::Error> {
        self.listed_again(client, filter, false).await.map(drop)
    }

    /// Lists `filter` again and keeps the answer. With `reuse`, an answer another caller got
    /// while this one waited for the list's lock is taken instead.
    async fn listed_again(
        &self,
        client: &confluent_client::Client,
        filter: &RoleBindingFilter,
        reuse: bool,
    ) -> Result<Arc<List>, confluent_client::Error> {
        let list = self.list(client.key(), filter);
        let waited_from = Instant::now();
        let flight = list.flight.lock().await;
        let reused = reuse
            && list
                .listed
                .lock()
                .as_ref()
                .is_some_and(|held| held.taken_at >= waited_from);
        if !reused {
            let taken_at = Instant::now();
            let bindings = client.list_role_bindings(filter).await?;
            *list.listed.lock() = Some(Listed::new(taken_at, bindings));
        }
        drop(flight);
        Ok(list)
    }

    /// Records a binding this operator created (or found) in every held list of `client` that
    /// returns it.
    pub fn record(&self, client: u64, binding: &RemoteRoleBinding) {
        for ((key, filter), list) in self.lists.lock().iter() {
            if *key != client || !covers(filter, binding) {
                continue;
            }
            if let Some(listed) = list.listed.lock().as_mut() {
                let principal: Box<str> = binding.principal.as_deref().unwrap_or_default().into();
                let held = listed.by_principal.entry(principal).or_default();
                if !held.iter().any(|b| b.id == binding.id) {
                    held.push(lean(binding.clone()));
                }
            }
        }
    }

    /// Forgets a binding this operator deleted (or found gone) in every held list of `client`.
    pub fn forget(&self, client: u64, id: &str) {
        for ((key, _), list) in self.lists.lock().iter() {
            if *key != client {
                continue;
            }
            if let Some(listed) = list.listed.lock().as_mut() {
                for held in listed.by_principal.values_mut() {
                    held.retain(|b| b.id.as_deref() != Some(id));
                }
            }
        }
    }

    /// Drops the lists `keep` rejects (a credential no longer used, a scope no longer listed).
    pub fn retain(&self, keep: impl Fn(u64, &RoleBindingFilter) -> bool) {
        self.lists
            .lock()
            .retain(|(client, filter), _| keep(*client, filter));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "crn://confluent.cloud/organization=o";

    fn binding(id: &str, crn: &str) -> RemoteRoleBinding {
        RemoteRoleBinding {
            id: Some(id.into()),
            principal: Some("User:u-1".into()),
            role_name: Some("EnvironmentAdmin".into()),
            crn_pattern: Some(crn.into()),
            ..RemoteRoleBinding::default()
        }
    }

    fn held(
        lists: &RoleBindingLists,
        filter: &RoleBindingFilter,
        bindings: Vec<RemoteRoleBinding>,
    ) {
        *lists.list(1, filter).listed.lock() = Some(Listed::new(Instant::now(), bindings));
    }

    #[test]
    fn an_organization_wide_list_answers_for_every_scope_beneath() {
        let org = RoleBindingFilter::nested(ORG);
        let env = RoleBindingFilter::scope(format!("{ORG}/environment=e1"));
        assert!(contains(&org, &env));
        assert!(contains(
            &org,
            &RoleBindingFilter::nested(&format!("{ORG}/environment=e1"))
        ));
        assert!(!contains(&env, &org));
        assert!(!contains(
            &RoleBindingFilter::nested("crn://confluent.cloud/organization=o2"),
            &RoleBindingFilter::scope(format!("{ORG}/environment=e1"))
        ));
        let lists = RoleBindingLists::default();
        held(
            &lists,
            &org,
            vec![
                binding("rb-1", &format!("{ORG}/environment=e1")),
                binding("rb-2", &format!("{ORG}/environment=e2")),
            ],
        );
        let got = lists.held_covering(1, &env, "User:u-1").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id.as_deref(), Some("rb-1"));
        // another credential's lists answer nothing
        assert!(lists.held_covering(2, &env, "User:u-1").is_none());
    }

    #[test]
    fn own_creates_and_deletes_show_in_held_lists_at_once() {
        let env = RoleBindingFilter::scope(format!("{ORG}/environment=e1"));
        let lists = RoleBindingLists::default();
        held(&lists, &env, Vec::new());
        lists.record(1, &binding("rb-3", &format!("{ORG}/environment=e1")));
        // not this list's scope: not recorded in it
        lists.record(1, &binding("rb-4", &format!("{ORG}/environment=e2")));
        let got = lists.held_covering(1, &env, "User:u-1").unwrap();
        assert_eq!(got.len(), 1);
        lists.forget(1, "rb-3");
        assert!(lists.held_covering(1, &env, "User:u-1").unwrap().is_empty());
    }

    #[test]
    fn the_youngest_covering_list_answers() {
        let org = RoleBindingFilter::nested(ORG);
        let env = RoleBindingFilter::scope(format!("{ORG}/environment=e1"));
        let lists = RoleBindingLists::default();
        held(&lists, &env, Vec::new());
        // listed later: the organization-wide list, which shows a binding the scope's list
        // predates
        held(
            &lists,
            &org,
            vec![binding("rb-5", &format!("{ORG}/environment=e1"))],
        );
        let got = lists.held_covering(1, &env, "User:u-1").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id.as_deref(), Some("rb-5"));
    }
}
