//! The `InvitationPolicy` custom resource (`iam.ccloud.dev/v1alpha1`, cluster-scoped), derived
//! into the CRD with kube-derive and schemars. The doc comments below become the schema's
//! descriptions, which is what `kubectl explain invitationpolicy.spec` shows, so they are written
//! for the resource's users (a cluster administrator).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::invitation::resource::{DeletionPolicy, EMAIL_PATTERN};
use crate::role_bindings::OnDisallowed;
use crate::role_bindings::resource::{
    MAX_CRN_PATTERN_LENGTH, ROLE_BINDING_CRN_PATTERN, ROLE_NAME_PATTERN,
};
use crate::runtime::conditions;

/// The schema pattern of an entry of `spec.allowedEmailDomains`: the domain part of
/// [`EMAIL_PATTERN`], so that every domain that can be listed is one an Invitation can have.
pub const EMAIL_DOMAIN_PATTERN: &str = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";

/// The CEL rule on `spec.namespaceSelector`: what apimachinery requires of an expression.
pub const SELECTOR_RULE: &str = "!has(self.matchExpressions) || self.matchExpressions.all(e, (e.operator in ['In', 'NotIn'] && has(e.values) && size(e.values) > 0) || (e.operator in ['Exists', 'DoesNotExist'] && (!has(e.values) || size(e.values) == 0)))";

/// What Invitations may do in the namespaces a selector selects. Every policy that selects an
/// Invitation's namespace applies to it, and each must permit what the Invitation asks: adding
/// a policy can only narrow what is allowed, never widen it. The operator refuses what a policy
/// does not permit (Ready False on the Invitation, naming the policy) and sends nothing to
/// Confluent Cloud for it.
// clippy reads the repeated `type_ = ...` of the printer columns as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "iam.ccloud.dev",
    version = "v1alpha1",
    kind = "InvitationPolicy",
    plural = "invitationpolicies",
    singular = "invitationpolicy",
    status = "InvitationPolicyStatus",
    category = "ccloud",
    doc = "What Invitations may do in the namespaces a selector selects, enforced by confluent-invitation-operator.",
    derive = "PartialEq",
    printcolumn(
        name = "Selector",
        type_ = "string",
        json_path = ".spec.namespaceSelector",
        priority = "1"
    ),
    printcolumn(
        name = "Namespaces",
        type_ = "integer",
        json_path = ".status.selectedNamespaces"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct InvitationPolicySpec {
    /// The namespaces whose Invitations this policy applies to, by their labels
    /// (`matchLabels`, `matchExpressions`). `{}` selects every namespace.
    // The API server checks nothing of a LabelSelector's expressions in a custom resource, and
    // a selector the operator cannot read selects nothing: this rule refuses it at the door.
    #[x_kube(validation = kube::core::Rule::new(SELECTOR_RULE).message("each matchExpressions entry needs operator In or NotIn with values, or Exists or DoesNotExist without values"))]
    pub namespace_selector: LabelSelector,

    /// The email domains Invitations may invite, e.g. `example.com` (compared without regard
    /// to case; a subdomain is not allowed implicitly: list it). Omit it to allow any domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    #[schemars(length(min = 1, max = 100), inner(length(min = 3, max = 253), regex(pattern = EMAIL_DOMAIN_PATTERN)))]
    pub allowed_email_domains: Option<Vec<String>>,

    /// The role bindings Invitations may list in `spec.roleBindings`: an item is allowed when a
    /// grant lists its `roleName` and one of the grant's scopes covers its `crnPattern`. Omit
    /// it (or leave it empty) to allow no role binding at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub grants: Vec<Grant>,

    /// People this policy protects: they are never invited, adopted, bound, stripped of their
    /// bindings or deleted by an Invitation in a selected namespace (e.g. the organization's
    /// owners). Compared without regard to case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    #[schemars(length(max = 100), inner(length(min = 3, max = 254), regex(pattern = EMAIL_PATTERN)))]
    pub protected_emails: Vec<String>,

    /// Whether Invitations may set `exclusiveRoleBindings: true`, which deletes every binding
    /// of the invitee they do not list. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_exclusive_role_bindings: bool,

    /// The `deletionPolicy` values Invitations may use. Default `[Delete, Orphan]`:
    /// `DeleteUser` (which deletes an accepted member's user) only when listed.
    #[serde(default = "default_deletion_policies")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    #[schemars(length(min = 1, max = 3))]
    pub allowed_deletion_policies: Vec<DeletionPolicy>,

    /// What happens to a role binding that exists already but that this policy does not (or no
    /// longer) grants. `Keep` (default): it stays, reported as `Disallowed` on the Invitation,
    /// until the Invitation is deleted. `Revoke`: it is deleted. When several policies apply,
    /// `Revoke` wins.
    #[serde(default)]
    pub on_disallowed_existing: DisallowedExisting,
}

/// The default of `spec.allowedDeletionPolicies`: everything but deleting users.
pub fn default_deletion_policies() -> Vec<DeletionPolicy> {
    vec![DeletionPolicy::Delete, DeletionPolicy::Orphan]
}

/// Roles Invitations may grant, and where.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Confluent Cloud roles, e.g. `DeveloperRead` or `EnvironmentAdmin`, matched exactly.
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    #[schemars(length(min = 1, max = 50), inner(length(min = 1, max = 64), regex(pattern = ROLE_NAME_PATTERN)))]
    pub roles: Vec<String>,

    /// Where these roles may be granted: CRN patterns written as in an Invitation's
    /// `crnPattern`, relative to the Invitation's organization (`environment=env-a`) or
    /// absolute. A scope covers itself and everything below it (`environment=env-a` covers its
    /// clusters and topics, not `environment=env-ab`); a value ending in `*` covers every value
    /// with that prefix (`topic=team-a-*`). A `*` in an Invitation's pattern is allowed only
    /// where the scope has one. The organization itself is covered only by a scope that is the
    /// organization (`organization=<id>`).
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    #[schemars(length(min = 1, max = 50), inner(length(min = 13, max = MAX_CRN_PATTERN_LENGTH), regex(pattern = ROLE_BINDING_CRN_PATTERN)))]
    pub scopes: Vec<String>,
}

// What happens to an existing binding a policy does not grant. (A plain comment: a doc comment
// here would replace the field's description in the generated schema.)
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum DisallowedExisting {
    /// It stays, reported as `Disallowed`, until the Invitation is deleted.
    #[default]
    Keep,
    /// It is deleted.
    Revoke,
}

impl From<DisallowedExisting> for OnDisallowed {
    fn from(rule: DisallowedExisting) -> Self {
        match rule {
            DisallowedExisting::Keep => Self::Keep,
            DisallowedExisting::Revoke => Self::Revoke,
        }
    }
}

/// What the operator last decided of the policy.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationPolicyStatus {
    /// How many namespaces `spec.namespaceSelector` selects (0 while it is invalid).
    #[serde(default)]
    pub selected_namespaces: i64,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` is True while the policy is valid and enforced; False names the field to fix
    /// (while it is, the policy selects no namespace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl InvitationPolicyStatus {
    /// The `Ready` condition, if any.
    pub fn ready(&self) -> Option<&Condition> {
        conditions::ready(&self.conditions)
    }
}

impl InvitationPolicy {
    /// The policy's name (cluster-scoped: the name alone identifies it).
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }
}

/// The CRD as YAML, as a `crd` subcommand would print it and `crds/` would hold it.
pub fn crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let body = serde_saphyr::to_string(&InvitationPolicy::crd())?;
    Ok(format!(
        "# Generated by `confluent-invitation-operator crd`; do not edit.\n{body}"
    ))
}
