//! The wiring of InvitationPolicies: a watch cache of the policies and one of the namespaces'
//! labels they select by, each policy's status (how many namespaces it selects, whether it can
//! be applied), and the namespaces whose Invitations must be looked at again because what
//! applies to them changed. Decides nothing: [`super::decide`] does.
//!
//! Fails closed: until both caches are synced nobody may ask which policies apply
//! ([`Policies::ready`]), so no Invitation is reconciled against a partial view. A cluster
//! without the InvitationPolicy CRD has no policies at all, which is what the view then says.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ListParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::decide;
use super::resource::InvitationPolicy;
use crate::runtime::FIELD_MANAGER;

/// What the Invitation controller reads of the policies, and the tasks that keep it current.
pub struct Policies {
    /// `None` when the API server does not serve InvitationPolicies (the CRD is not installed):
    /// no policy can exist then, and no namespace is watched for one.
    caches: Option<Caches>,
    tasks: Vec<JoinHandle<()>>,
}

/// The watch caches the view reads.
struct Caches {
    policies: Store<InvitationPolicy>,
    /// The namespaces' labels, which the policies select by.
    namespaces: Store<PartialObjectMeta<Namespace>>,
}

/// The namespaces whose applying policies may have changed: their Invitations are looked at
/// again.
pub type Changed = mpsc::UnboundedReceiver<String>;

impl Policies {
    /// Starts the watches (and the status writer) on `client`; `Changed` says which namespaces
    /// to look at again.
    pub async fn start(client: &kube::Client) -> (Self, Changed) {
        let (changed_tx, changed) = mpsc::unbounded_channel();
        if !served(client).await {
            tracing::warn!(
                "the API server does not serve InvitationPolicies (their CRD is not installed): no policy applies"
            );
            return (Self::none(), changed);
        }
        let (namespaces, namespace_writer) = reflector::store();
        // metadata only: a namespace's labels are all a policy reads of it
        let namespace_events = watcher(
            Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(namespace_writer)
        .applied_objects();
        let (policies, policy_writer) = reflector::store();
        let policy_events = watcher(
            Api::<InvitationPolicy>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(policy_writer);
        let follower = tokio::spawn(follow(
            client.clone(),
            policies.clone(),
            namespaces.clone(),
            policy_events.boxed(),
            namespace_events.boxed(),
            changed_tx,
        ));
        let caches = Caches {
            policies,
            namespaces,
        };
        (
            Self {
                caches: Some(caches),
                tasks: vec![follower],
            },
            changed,
        )
    }

    /// A view in which no policy exists, and nothing is watched: where the CRD is not served,
    /// and for the controller's tests, which script every request the API server sees.
    pub fn none() -> Self {
        Self {
            caches: None,
            tasks: Vec::new(),
        }
    }

    /// Resolves once both watch caches are synced.
    pub async fn ready(&self) {
        if let Some(caches) = &self.caches {
            let _ = caches.policies.wait_until_ready().await;
            let _ = caches.namespaces.wait_until_ready().await;
        }
    }

    /// The policies that select `namespace`, by name. A namespace not (yet) in the cache has
    /// no labels: only the policies that select every namespace apply to it.
    pub fn applying(&self, namespace: &str) -> Vec<Arc<InvitationPolicy>> {
        let Some(caches) = &self.caches else {
            return Vec::new();
        };
        let labels = caches
            .namespaces
            .get(&reflector::ObjectRef::new(namespace))
            .map(|ns| ns.labels().clone())
            .unwrap_or_default();
        let mut applying: Vec<_> = caches
            .policies
            .state()
            .into_iter()
            .filter(|p| decide::selects(p, &labels).unwrap_or(false))
            .collect();
        applying.sort_by_key(|p| p.name_any());
        applying
    }
}

impl Drop for Policies {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Whether the API server serves InvitationPolicies: a 404 on the list means the CRD is not
/// installed. Any other failure (RBAC, an outage) is no answer: the watch retries and the
/// view stays not ready, so nothing is reconciled without the policies.
async fn served(client: &kube::Client) -> bool {
    let api: Api<InvitationPolicy> = Api::all(client.clone());
    !matches!(
        api.list_metadata(&ListParams::default().limit(1)).await,
        Err(kube::Error::Api(s)) if s.code == 404
    )
}

type Events<K> = futures::stream::BoxStream<'static, Result<K, watcher::Error>>;

/// Follows both watches: after each change, the namespaces whose applying policies may differ
/// are sent on `changed`, and every policy's status is written where it differs. A re-list
/// (after an outage, a watch expiring) repeats every object: what it repeats unchanged wakes
/// nobody, or every Invitation of the cluster would be reconciled at once after each.
async fn follow(
    client: kube::Client,
    policies: Store<InvitationPolicy>,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    policy_events: Events<watcher::Event<InvitationPolicy>>,
    namespace_events: Events<PartialObjectMeta<Namespace>>,
    changed: mpsc::UnboundedSender<String>,
) {
    enum Event {
        Policy(watcher::Event<InvitationPolicy>),
        Namespace(PartialObjectMeta<Namespace>),
    }
    let mut events = futures::stream::select(
        policy_events.map(|e| e.map(Event::Policy)),
        namespace_events.map(|e| e.map(Event::Namespace)),
    );
    let mut seen = Seen::default();
    // until the first full list of policies, the Invitation controller has not started: its
    // first reconcile of everything covers whatever is found meanwhile
    let mut synced = false;
    while let Some(event) = events.next().await {
        let touched = match event {
            Ok(Event::Namespace(ns)) => seen.namespace(&ns),
            Ok(Event::Policy(watcher::Event::Apply(p) | watcher::Event::InitApply(p))) => {
                seen.policy(&p, selection(&p, &namespaces))
            }
            Ok(Event::Policy(watcher::Event::Delete(p))) => seen.gone(&p.name_any()),
            Ok(Event::Policy(watcher::Event::InitDone)) => {
                synced = true;
                let listed: BTreeSet<String> =
                    policies.state().iter().map(|p| p.name_any()).collect();
                seen.not_listed(&listed)
            }
            Ok(Event::Policy(watcher::Event::Init)) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "InvitationPolicy or Namespace watch failed; retrying");
                continue;
            }
        };
        let Some(touched) = touched else {
            continue;
        };
        for policy in policies.state() {
            let now = selection(&policy, &namespaces);
            write_status(&client, &policy, now.len()).await;
            seen.reselect(&policy.name_any(), now);
        }
        if !synced {
            continue;
        }
        for ns in touched {
            if changed.send(ns).is_err() {
                return;
            }
        }
    }
}

/// What the follower remembers between events, to tell a change from a repetition.
#[derive(Default)]
struct Seen {
    /// Each policy's generation and the namespaces it selected, when last looked at.
    policies: HashMap<String, (Option<i64>, BTreeSet<String>)>,
    /// Each namespace's labels, when last seen.
    labels: HashMap<String, BTreeMap<String, String>>,
}

impl Seen {
    /// A namespace seen: `Some` (itself) when its labels changed. A new namespace holds no
    /// Invitation yet, but the policies' counts change (`Some` of nobody).
    fn namespace(&mut self, ns: &PartialObjectMeta<Namespace>) -> Option<BTreeSet<String>> {
        let labels = ns.labels().clone();
        match self.labels.insert(ns.name_any(), labels.clone()) {
            Some(old) if old == labels => None,
            Some(_) => Some(BTreeSet::from([ns.name_any()])),
            None => Some(BTreeSet::new()),
        }
    }

    /// A policy seen, selecting `selection`: the namespaces it selected and selects, unless
    /// neither its spec (generation) nor its selection changed.
    fn policy(
        &mut self,
        policy: &InvitationPolicy,
        selection: BTreeSet<String>,
    ) -> Option<BTreeSet<String>> {
        let generation = policy.metadata.generation;
        match self
            .policies
            .insert(policy.name_any(), (generation, selection.clone()))
        {
            Some((g, old)) if g == generation && old == selection => None,
            Some((_, old)) => Some(old.union(&selection).cloned().collect()),
            None => Some(selection),
        }
    }

    /// A policy deleted: the namespaces it selected.
    fn gone(&mut self, name: &str) -> Option<BTreeSet<String>> {
        self.policies.remove(name).map(|(_, selected)| selected)
    }

    /// After a full list: the policies remembered but not listed were deleted meanwhile.
    fn not_listed(&mut self, listed: &BTreeSet<String>) -> Option<BTreeSet<String>> {
        let gone: Vec<String> = self
            .policies
            .keys()
            .filter(|name| !listed.contains(*name))
            .cloned()
            .collect();
        let touched: BTreeSet<String> =
            gone.iter().filter_map(|n| self.gone(n)).flatten().collect();
        (!gone.is_empty()).then_some(touched)
    }

    /// What `name` selects now (after a namespace's labels changed).
    fn reselect(&mut self, name: &str, selection: BTreeSet<String>) {
        if let Some((_, selected)) = self.policies.get_mut(name) {
            *selected = selection;
        }
    }
}

/// The namespaces `policy` selects now.
fn selection(
    policy: &InvitationPolicy,
    namespaces: &Store<PartialObjectMeta<Namespace>>,
) -> BTreeSet<String> {
    namespaces
        .state()
        .iter()
        .filter(|ns| decide::selects(policy, ns.labels()).unwrap_or(false))
        .map(|ns| ns.name_any())
        .collect()
}

/// Writes `policy`'s status (server-side apply of the status alone) where it differs.
async fn write_status(client: &kube::Client, policy: &InvitationPolicy, selected: usize) {
    let next = decide::status(policy, selected, jiff::Timestamp::now());
    if policy.status.as_ref() == Some(&next) {
        return;
    }
    let api: Api<InvitationPolicy> = Api::all(client.clone());
    let patch = serde_json::json!({
        "apiVersion": InvitationPolicy::api_version(&()),
        "kind": InvitationPolicy::kind(&()),
        "status": next,
    });
    if let Err(e) = api
        .patch_status(
            &policy.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
    {
        tracing::warn!(policy = %policy.name_any(), error = %e, "InvitationPolicy status not written; written at its next change");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(name: &str, labels: &[(&str, &str)]) -> PartialObjectMeta<Namespace> {
        let mut ns = PartialObjectMeta::<Namespace>::default();
        ns.metadata.name = Some(name.into());
        ns.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        );
        ns
    }

    fn policy(name: &str, generation: i64) -> InvitationPolicy {
        let mut p = InvitationPolicy::new(
            name,
            serde_json::from_value(serde_json::json!({"namespaceSelector": {}}))
                .expect("a policy spec"),
        );
        p.metadata.generation = Some(generation);
        p
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    /// A re-list repeats everything: what it repeats unchanged wakes nobody; a change wakes
    /// exactly the namespaces it concerns.
    #[test]
    fn only_changes_wake_namespaces() {
        let mut seen = Seen::default();
        // first sight: a namespace holds no Invitation yet; a policy concerns what it selects
        assert_eq!(
            seen.namespace(&namespace("a", &[("team", "a")])),
            Some(set(&[]))
        );
        assert_eq!(seen.policy(&policy("p", 1), set(&["a"])), Some(set(&["a"])));
        // the same again (a re-list, or the operator's own status write): nothing
        assert_eq!(seen.namespace(&namespace("a", &[("team", "a")])), None);
        assert_eq!(seen.policy(&policy("p", 1), set(&["a"])), None);
        // a label changed: that namespace; a spec changed: what it selected and selects
        assert_eq!(
            seen.namespace(&namespace("a", &[("team", "b")])),
            Some(set(&["a"]))
        );
        assert_eq!(
            seen.policy(&policy("p", 2), set(&["b"])),
            Some(set(&["a", "b"]))
        );
        // deleted while the watch was down: found by the next full list
        assert_eq!(seen.not_listed(&set(&["p"])), None);
        assert_eq!(seen.not_listed(&set(&[])), Some(set(&["b"])));
        assert_eq!(seen.gone("p"), None);
    }
}
