//! What the controller observes of an Invitation's bindings: the held lists of its
//! credential, a list where none is held, and the exact reads the decisions ask for.

use kube::runtime::reflector::ObjectRef;

use super::super::context::Context;
use crate::invitation::resource::Invitation;
use crate::invitation_policy::decide as policy;
use crate::invitation_policy::resource::InvitationPolicy;
use crate::role_bindings::resource::RoleBindingStatus;
use crate::role_bindings::{
    self as decide, Demand, Desired, Key, Live, Observed, OnDisallowed, Plan, Read,
};
use confluent_client::role_bindings::{RemoteRoleBinding, RoleBindingFilter, organization_of};

/// Past this many distinct scopes per credential, one organization-wide list replaces the
/// lists per scope (it costs its pages once, whatever the scopes).
pub(super) const MAX_SCOPE_LISTS: usize = 16;

/// Rounds of exact reads one reconcile makes at most: the second answers what the first showed
/// (an id that turned out to be another binding's is looked up by its key).
const READ_ROUNDS: usize = 2;

/// Whether an object has anything to do with bindings: listed, exclusive, or recorded.
pub(super) fn concerned(invitation: &Invitation) -> bool {
    !invitation.spec.role_bindings.is_empty()
        || invitation.spec.exclusive_role_bindings
        || !recorded(invitation).is_empty()
}

pub(in crate::invitation::controller) fn recorded(invitation: &Invitation) -> &[RoleBindingStatus] {
    invitation
        .status
        .as_ref()
        .map(|s| s.role_bindings.as_slice())
        .unwrap_or_default()
}

pub(super) fn recorded_user(invitation: &Invitation) -> Option<&str> {
    invitation
        .status
        .as_ref()
        .and_then(|s| s.user_id.as_deref())
}

/// The lists that show an object's bindings: one per scope its items bind at, or the
/// organization-wide one (exclusive, or too many scopes). Empty when nothing needs a list.
pub(super) fn lists_for(
    credential: u64,
    organization: Option<&str>,
    desired: &[Desired],
    exclusive: bool,
) -> Vec<RoleBindingFilter> {
    let crn_patterns = decide::crn_patterns(desired);
    let Some(org) = organization else {
        // no organization known: the absolute patterns' own scopes, and no exclusive sweep
        return crn_patterns
            .into_iter()
            .map(RoleBindingFilter::scope)
            .collect();
    };
    let demand = Demand {
        credential,
        organization: org.to_owned(),
        crn_patterns,
        exclusive,
    };
    decide::observation_lists(&[demand], MAX_SCOPE_LISTS)
        .into_values()
        .flatten()
        .collect()
}

/// What one object asks of its bindings, owned, so that [`Live`] can borrow it.
pub(super) struct Ask {
    pub(super) organization: Option<String>,
    pub(super) user_id: Option<String>,
    pub(super) desired: Vec<Desired>,
    pub(super) exclusive: bool,
    pub(super) refused_recently: std::collections::BTreeSet<Key>,
    /// What becomes of a binding that exists but is no longer allowed.
    pub(super) on_disallowed: OnDisallowed,
}

impl Ask {
    /// `applying`: the InvitationPolicies that select the Invitation's namespace.
    pub(super) fn new(
        ctx: &Context,
        invitation: &Invitation,
        object: &ObjectRef<Invitation>,
        applying: &[&InvitationPolicy],
        (organization, user_id): (Option<&str>, Option<&str>),
    ) -> Self {
        let mut desired = decide::desired(
            &invitation.spec.role_bindings,
            organization,
            user_id.unwrap_or_default(),
            ctx.settings.allowed_roles.as_deref(),
        );
        // what the namespace's policies do not grant is refused like a role --allowed-roles
        // leaves out: nothing sent, an existing binding Disallowed (kept, or revoked)
        for d in desired.iter_mut().filter(|d| d.refusal.is_none()) {
            if let Ok(b) = &d.binding {
                let org = organization
                    .or_else(|| organization_of(&b.crn_pattern))
                    .unwrap_or_default();
                d.refusal = policy::grant_refusal(applying, &b.role_name, &b.crn_pattern, org);
            }
        }
        Self {
            organization: organization.map(str::to_owned),
            user_id: user_id.map(str::to_owned),
            desired,
            exclusive: invitation.spec.exclusive_role_bindings && organization.is_some(),
            refused_recently: ctx.refused_recently(object),
            on_disallowed: policy::on_disallowed(applying),
        }
    }

    pub(super) fn live<'a>(&'a self, ctx: &'a Context, invitation: &'a Invitation) -> Live<'a> {
        Live {
            invitee: self.user_id.as_deref(),
            recorded_user: recorded_user(invitation),
            organization: self.organization.as_deref(),
            desired: &self.desired,
            exclusive: self.exclusive,
            allowed_roles: ctx.settings.allowed_roles.as_deref(),
            on_disallowed: self.on_disallowed,
            refused_recently: &self.refused_recently,
        }
    }

    /// The lists that show the invitee's desired bindings.
    pub(super) fn filters(&self, credential: u64) -> Vec<RoleBindingFilter> {
        lists_for(
            credential,
            self.organization.as_deref(),
            &self.desired,
            self.exclusive,
        )
    }
}

/// Adds to `observed` what the held lists of `credential` show of every principal
/// `invitation`'s ledger names (no call): whose an id is, for bindings no desired scope covers.
pub(super) fn add_held(
    ctx: &Context,
    credential: u64,
    invitation: &Invitation,
    observed: &mut Observed,
) {
    let recorded_user = recorded_user(invitation);
    let ledger = recorded(invitation);
    let mut principals: Vec<String> = ledger
        .iter()
        .filter_map(|e| Key::of_entry(e, recorded_user).map(|k| k.principal))
        .collect();
    principals.sort();
    principals.dedup();
    for principal in principals {
        for (filter, share) in ctx
            .confluent
            .role_binding_lists
            .held(credential, &principal)
        {
            observed.list(&principal, filter, Ok(share));
        }
    }
}

/// One exact read.
async fn read(
    client: &confluent_client::Client,
    read: &Read,
) -> Result<Option<RemoteRoleBinding>, String> {
    let answer = match read {
        Read::ById(id) => match client.get_role_binding(id).await {
            Ok(b) => Ok(Some(b)),
            Err(confluent_client::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        },
        Read::ByKey(key) => client.find_role_binding(&key.request()).await,
    };
    answer.map_err(|e| e.detail())
}

/// Plans, making the exact reads the plan asks for and planning again with their answers.
pub(super) async fn planned(
    client: &confluent_client::Client,
    observed: &mut Observed,
    plan: impl Fn(&Observed) -> Plan,
) -> Plan {
    let mut current = plan(observed);
    for _ in 0..READ_ROUNDS {
        let reads: Vec<Read> = std::mem::take(&mut current.reads)
            .into_iter()
            .filter(|r| !observed.has_read(r))
            .collect();
        if reads.is_empty() {
            break;
        }
        for r in reads {
            let answer = read(client, &r).await;
            observed.read(r, answer);
        }
        current = plan(observed);
    }
    current
}
