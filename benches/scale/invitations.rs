//! The Invitations the benchmark creates, and what a LIST of them shows.

use std::collections::BTreeMap;
use std::time::Duration;

use confluent_invitation_operator::invitation::resource::{Invitation, InvitationSpec};

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

pub fn invitation(i: u64, bindings: Bindings) -> Invitation {
    Invitation::new(
        &name_of(i),
        InvitationSpec {
            role_bindings: bindings.items(i),
            ..InvitationSpec::of_email(email_of(i))
        },
    )
}

pub fn name_of(i: u64) -> String {
    format!("inv-{i:05}")
}

pub fn email_of(i: u64) -> String {
    format!("bench-user-{i:05}@example.com")
}

/// Creates one Invitation, retrying what the API server may refuse under load.
pub async fn create_one(api: &Api<Invitation>, i: u64, bindings: Bindings) -> Result<(), String> {
    let inv = invitation(i, bindings);
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
    /// (name, remote invitation id) of the Ready ones.
    pub ready_ids: Vec<(String, String)>,
}

pub fn is_ready(inv: &Invitation) -> bool {
    inv.status
        .as_ref()
        .and_then(|s| s.ready())
        .is_some_and(|c| c.status == "True")
}

pub async fn snapshot(api: &Api<Invitation>, keep_ids: bool) -> Result<Snapshot, kube::Error> {
    let mut snap = Snapshot::default();
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
                    snap.ready_ids.push((inv.name_any(), id));
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
            return Ok(snap);
        }
    }
}
