//! The Invitations the benchmark creates, and what a LIST of them shows.

use std::collections::BTreeMap;
use std::time::Duration;

use confluent_invitation_operator::invitation::resource::{Invitation, InvitationSpec, SecretRef};
use confluent_invitation_operator::invitation_group::resource::{
    InvitationGroup, InvitationGroupSpec,
};

use confluent_invitation_operator::role_bindings::resource::RoleBinding;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};

/// Page size of the benchmark's own LISTs of Invitations.
pub const KUBE_PAGE: u32 = 500;

/// The roles the mock binds at an environment: item j of an Invitation takes the j-th, so an
/// Invitation's items are distinct whatever their scopes.
const ENVIRONMENT_ROLES: [&str; 6] = [
    "EnvironmentAdmin",
    "DataSteward",
    "DataDiscovery",
    "FlinkAdmin",
    "FlinkDeveloper",
    "MetricsViewer",
];

/// The role bindings every Invitation lists (`--role-bindings`, `--binding-scopes`): `per_item`
/// items over `scopes` shared environments, item j of Invitation i in environment (i + j) mod
/// `scopes`, so the bindings spread evenly over the scopes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bindings {
    /// Items per Invitation (K).
    pub per_invitation: u64,
    /// Distinct scopes (S).
    pub scopes: u64,
}

impl Bindings {
    pub fn of(opts: &crate::flags::Opts) -> Self {
        Self {
            per_invitation: opts.role_bindings.min(ENVIRONMENT_ROLES.len() as u64),
            scopes: opts.binding_scopes.max(1),
        }
    }

    pub fn any(self) -> bool {
        self.per_invitation > 0
    }

    /// The environment of item `j` of Invitation `i`.
    pub fn environment(self, i: u64, j: u64) -> String {
        format!("env-bench{:03}", (i + j) % self.scopes.max(1))
    }

    /// The role of item `j`.
    pub fn role(j: u64) -> &'static str {
        ENVIRONMENT_ROLES[j as usize % ENVIRONMENT_ROLES.len()]
    }

    /// Invitation `i`'s items, relative to its organization (as users write them).
    pub fn items(self, i: u64) -> Vec<RoleBinding> {
        (0..self.per_invitation)
            .map(|j| RoleBinding {
                role_name: Self::role(j).to_owned(),
                crn_pattern: format!("environment={}", self.environment(i, j)),
            })
            .collect()
    }

    /// How many bindings each scope in use holds once Invitations `0..n` are bound.
    pub fn per_scope(self, n: u64) -> BTreeMap<String, u64> {
        let mut by_scope = BTreeMap::new();
        for i in 0..n {
            for j in 0..self.per_invitation {
                *by_scope.entry(self.environment(i, j)).or_default() += 1;
            }
        }
        by_scope
    }

    /// The pages of one list per scope in use (pages of `page`): what one observation of every
    /// binding of `n` Invitations costs.
    pub fn list_pages(self, n: u64, page: u64) -> u64 {
        self.per_scope(n).values().map(|c| c.div_ceil(page)).sum()
    }
}

/// Where a run's Invitations go: one namespace with the operator's default credentials, or
/// (`--secrets S`) Invitation i in the i mod S-th of S namespaces, naming the Secret of its
/// namespace (the same API key in each), labelled for the operator's label selector.
#[derive(Clone)]
pub struct Spread {
    /// One Invitations API per namespace; the first is the run's own.
    pub apis: Vec<Api<Invitation>>,
    /// The credentials Secret every Invitation names (None: the operator's defaults).
    pub secret: Option<String>,
    /// The label (key, value) the operator selects on (None: it watches the one namespace).
    pub label: Option<(String, String)>,
}

impl Spread {
    /// The namespace (its API) of Invitation `i`.
    pub fn api(&self, i: u64) -> &Api<Invitation> {
        &self.apis[(i % self.apis.len().max(1) as u64) as usize]
    }
}

pub fn invitation(i: u64, bindings: Bindings, spread: &Spread) -> Invitation {
    let mut inv = Invitation::new(
        &name_of(i),
        InvitationSpec {
            role_bindings: bindings.items(i),
            credentials_secret_ref: spread
                .secret
                .as_ref()
                .map(|name| SecretRef { name: name.clone() }),
            ..InvitationSpec::of_email(email_of(i))
        },
    );
    if let Some((k, v)) = &spread.label {
        inv.metadata.labels = Some(BTreeMap::from([(k.clone(), v.clone())]));
    }
    inv
}

pub fn name_of(i: u64) -> String {
    format!("inv-{i:05}")
}

pub fn email_of(i: u64) -> String {
    format!("bench-user-{i:05}@example.com")
}

/// The most members an InvitationGroup takes.
pub const GROUP_MEMBERS: u64 = 500;

/// Group `g` of `--groups`: the members `g*500 .. min(n, (g+1)*500)`, with group `g`'s items.
pub fn group(g: u64, n: u64, bindings: Bindings, spread: &Spread) -> InvitationGroup {
    let members = (g * GROUP_MEMBERS..n.min((g + 1) * GROUP_MEMBERS))
        .map(email_of)
        .collect();
    let spec = InvitationGroupSpec {
        members,
        role_bindings: bindings.items(g),
        exclusive_role_bindings: false,
        auth_type: None,
        credentials_secret_ref: spread
            .secret
            .as_ref()
            .map(|name| SecretRef { name: name.clone() }),
        reinvite_on_expiry: false,
        member_removal_policy: Default::default(),
        max_removals_per_sync: 5,
    };
    InvitationGroup::new(&format!("bench-group-{g:03}"), spec)
}

/// Creates group `g` of `n` members in all; returns how many members it holds.
pub async fn create_group(
    (kube, namespace): (&kube::Client, &str),
    spread: &Spread,
    g: u64,
    n: u64,
    bindings: Bindings,
) -> Result<u64, String> {
    let group = group(g, n, bindings, spread);
    let members = group.spec.members.len() as u64;
    let api: Api<InvitationGroup> = Api::namespaced(kube.clone(), namespace);
    match api.create(&PostParams::default(), &group).await {
        Ok(_) => Ok(members),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(members),
        Err(e) => Err(format!("create group {g}: {e}")),
    }
}

/// Creates one Invitation, retrying what the API server may refuse under load.
pub async fn create_one(spread: &Spread, i: u64, bindings: Bindings) -> Result<(), String> {
    let inv = invitation(i, bindings, spread);
    let api = spread.api(i);
    let mut attempt = 0u32;
    loop {
        match api.create(&PostParams::default(), &inv).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => return Ok(()),
            Err(e) if attempt < 8 => {
                attempt += 1;
                eprintln!("  create {} failed ({e}); retrying", name_of(i));
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            }
            Err(e) => return Err(format!("create {}: {e}", name_of(i))),
        }
    }
}

/// What one LIST of the namespace's Invitations showed.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub total: u64,
    pub ready: u64,
    /// Not-ready reasons (or phases) and how many.
    pub other: BTreeMap<String, u64>,
    /// (namespace, name, remote invitation id) of the Ready ones.
    pub ready_ids: Vec<(String, String, String)>,
}

pub fn is_ready(inv: &Invitation) -> bool {
    inv.status
        .as_ref()
        .and_then(|s| s.ready())
        .is_some_and(|c| c.status == "True")
}

/// What paginated LISTs of every namespace of the run show.
pub async fn snapshot(spread: &Spread, keep_ids: bool) -> Result<Snapshot, kube::Error> {
    let mut snap = Snapshot::default();
    for api in &spread.apis {
        list_into(api, keep_ids, &mut snap).await?;
    }
    Ok(snap)
}

async fn list_into(
    api: &Api<Invitation>,
    keep_ids: bool,
    snap: &mut Snapshot,
) -> Result<(), kube::Error> {
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(KUBE_PAGE);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await?;
        for inv in &page.items {
            snap.total += 1;
            if is_ready(inv) {
                snap.ready += 1;
                if keep_ids
                    && let Some(id) = inv.status.as_ref().and_then(|s| s.invitation_id.clone())
                {
                    snap.ready_ids
                        .push((inv.namespace().unwrap_or_default(), inv.name_any(), id));
                }
            } else {
                let why = inv
                    .status
                    .as_ref()
                    .and_then(|s| s.ready().map(|c| c.reason.clone()))
                    .unwrap_or_else(|| "no status yet".into());
                *snap.other.entry(why).or_default() += 1;
            }
        }
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(());
        }
    }
}
