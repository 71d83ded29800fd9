//! What every kind shares: the Confluent credentials and their clients, one snapshot of
//! invitations and one set of role-binding lists per credential, what is learnt of each
//! credential's organization, metrics, Events, leader election, the HTTP endpoint and
//! telemetry. Nothing here decides about a resource. A kind's context takes the parts it needs
//! ([`Runtime`]'s fields) and adds its own watch cache and memory.

pub mod conditions;
pub mod credentials;
pub mod events;
pub mod hash;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod service_account_token;
pub mod snapshot;
pub mod telemetry;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::Reporter;
use parking_lot::Mutex;

use credentials::CredentialStore;
use metrics::Metrics;
use snapshot::Snapshots;
use snapshot::role_binding_lists::RoleBindingLists;

/// The field manager of the operator's writes (status, Leases) and its Events' reporting
/// controller.
pub const FIELD_MANAGER: &str = "confluent-invitation-operator";

/// Kubernetes: the client and the Event publisher every reconcile shares.
#[derive(Clone)]
pub struct Kube {
    pub client: kube::Client,
    /// Publishes Events, with kube's series aggregation and a bounded memory of them.
    pub events: Arc<events::EventSink>,
}

impl Kube {
    /// The client, and an Event publisher reporting as this operator; `instance` tells
    /// replicas' Events apart (the Pod name).
    pub fn new(client: kube::Client, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance,
        };
        Self {
            events: Arc::new(events::EventSink::new(
                client.clone(),
                reporter,
                events::EVENT_MEMORY,
            )),
            client,
        }
    }
}

/// Confluent: the clients of every credential in use, and what one list per credential
/// observed (invitations, role bindings), shared by every resource of that credential.
pub struct Confluent {
    pub credentials: CredentialStore,
    /// One remote snapshot of invitations per credential (batch observation).
    pub snapshots: Snapshots,
    /// The role-binding lists of each credential.
    pub role_binding_lists: RoleBindingLists,
    /// Credential identity -> the Confluent organization its CRNs name.
    organizations: Mutex<HashMap<String, String>>,
}

impl Confluent {
    /// `resync`: how often the snapshots are refreshed, which bounds how old one may be read.
    pub fn new(credentials: CredentialStore, resync: Duration) -> Self {
        Self {
            credentials,
            snapshots: Snapshots::new(snapshot::max_age(resync)),
            role_binding_lists: RoleBindingLists::default(),
            organizations: Mutex::new(HashMap::new()),
        }
    }

    /// The organization a credential acts in, once learnt.
    pub fn organization_of(&self, identity: &str) -> Option<String> {
        self.organizations.lock().get(identity).cloned()
    }

    /// Records the organization a credential acts in (one entry per credential).
    pub fn learn_organization(&self, identity: &str, organization: &str) {
        let mut orgs = self.organizations.lock();
        if orgs.get(identity).map(String::as_str) != Some(organization) {
            orgs.insert(identity.to_owned(), organization.to_owned());
        }
    }
}

/// The parts every kind's context is made of, built once per process.
#[derive(Clone)]
pub struct Runtime {
    pub kube: Kube,
    pub confluent: Arc<Confluent>,
    pub metrics: Arc<Metrics>,
}
