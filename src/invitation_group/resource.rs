//! The `InvitationGroup` custom resource (`iam.ccloud.dev/v1alpha1`, namespaced), derived into
//! the CRD with kube-derive and schemars. The doc comments below become the schema's
//! descriptions, which is what `kubectl explain invitationgroup.spec` shows, so they are written
//! for the resource's users (a team lead listing the team).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::invitation::resource::{AuthType, DeletionPolicy, EMAIL_PATTERN, SecretRef};
use crate::role_bindings::resource::RoleBinding;
use crate::runtime::conditions;

/// The annotation that lets an edit empty `spec.members` (deleting every member): without it an
/// empty list is refused, so a template or a merge that drops the list by mistake removes
/// nobody.
pub const ALLOW_EMPTY_ANNOTATION: &str = "iam.ccloud.dev/allow-empty";

/// The label on every child Invitation naming its group (the group's name, or a hash of it when
/// it is longer than a label value may be).
pub const GROUP_LABEL: &str = "iam.ccloud.dev/group";

/// A team as one resource: these people, with these roles. The operator keeps one child
/// `Invitation` per member (named from the group and the email, owned by the group), so every
/// member gets exactly what an Invitation gives: one remote invitation, its role bindings, its
/// finalizer, the tenant policies. A member removed from the list has its Invitation deleted,
/// which applies `memberRemovalPolicy`.
// clippy reads the repeated `type_ = ...` of the printer columns as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "iam.ccloud.dev",
    version = "v1alpha1",
    kind = "InvitationGroup",
    plural = "invitationgroups",
    singular = "invitationgroup",
    namespaced,
    status = "InvitationGroupStatus",
    shortname = "invgroup",
    category = "ccloud",
    doc = "A team of people invited into the Confluent Cloud organization with the same role bindings, one child Invitation per member, kept by confluent-invitation-operator.",
    derive = "PartialEq",
    printcolumn(
        name = "Members",
        type_ = "integer",
        json_path = ".status.summary.members"
    ),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.summary.ready"),
    printcolumn(
        name = "Accepted",
        type_ = "integer",
        json_path = ".status.summary.accepted"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct InvitationGroupSpec {
    /// The members' email addresses, each invited once: the API server refuses a repeated
    /// address, and the operator also refuses two letter cases of one (`DuplicateMembers`,
    /// nothing done). An empty list is refused unless the group is annotated
    /// `iam.ccloud.dev/allow-empty: "true"`.
    // A CEL rule comparing every pair without regard to case costs more than the API server
    // allows for 500 members: exact duplicates are refused by the list type, case by the
    // operator.
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    #[schemars(length(max = 500), inner(length(min = 3, max = 254), regex(pattern = EMAIL_PATTERN)))]
    pub members: Vec<String>,

    /// The access every member gets: the items of an Invitation's `spec.roleBindings`
    /// (`roleName`, `crnPattern` relative to the organization or a full CRN).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["roleName".into(), "crnPattern".into()]))]
    #[schemars(length(max = 50))]
    pub role_bindings: Vec<RoleBinding>,

    /// Each member's `exclusiveRoleBindings`: any other binding of a member in the
    /// organization is deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclusive_role_bindings: bool,

    /// How the members log in (each member's `authType`). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("authType is immutable; create a new InvitationGroup instead"))]
    pub auth_type: Option<AuthType>,

    /// A Secret in this namespace with the Confluent Cloud credentials every member's
    /// Invitation uses; omit it to use the operator's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,

    /// Send a member a new invitation when theirs expires unaccepted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reinvite_on_expiry: bool,

    /// What removing a member (or deleting the group) does remotely: each member Invitation's
    /// `deletionPolicy`. `Delete` (default) deletes a pending invitation and the member's
    /// bindings, keeping an accepted member; `Orphan` touches nothing; `DeleteUser` also
    /// deletes an accepted member's user.
    #[serde(default)]
    pub member_removal_policy: DeletionPolicy,

    /// At most this many members are removed per resync interval: an edit that drops many
    /// members by mistake removes this many, shows `RemovalThrottled`, and waits for the next
    /// resync (time to revert it). Default 5.
    #[serde(default = "default_max_removals")]
    #[schemars(range(min = 1, max = 500))]
    pub max_removals_per_sync: i32,
}

fn default_max_removals() -> i32 {
    5
}

/// What the operator last observed of the group's members.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationGroupStatus {
    /// One entry per member (and per removed member whose Invitation is still going), sorted by
    /// email.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberStatus>,
    /// Counts over `members`.
    #[serde(default)]
    pub summary: Summary,
    /// When the current removal window started (RFC 3339) and how many members it removed:
    /// at most `maxRemovalsPerSync` per resync interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removals: Option<RemovalWindow>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` is True when every member's Invitation is Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl InvitationGroupStatus {
    /// The `Ready` condition, if any.
    pub fn ready(&self) -> Option<&Condition> {
        conditions::ready(&self.conditions)
    }
}

/// One member as its Invitation shows it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    pub email: String,
    /// The member's Invitation (in this namespace).
    pub invitation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The Invitation's Ready status (`True`, `False`, `Unknown`), or `Unknown` before it has one.
    pub ready: String,
    /// Its Ready reason (`Removing` while a removed member's Invitation is being deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its Ready message when it is not Ready (an `EmailConflict` names the owner of the email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Counts over the members.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub members: i32,
    pub ready: i32,
    /// Invited and not accepted yet (Sent, Staged, or no invitation yet).
    pub pending: i32,
    pub accepted: i32,
    /// Members whose email another Invitation owns.
    pub conflicts: i32,
}

/// A window of removals.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemovalWindow {
    /// When it started (RFC 3339).
    pub started: String,
    /// Members removed in it.
    pub removed: i32,
}

impl InvitationGroup {
    /// Whether the allow-empty annotation is `"true"`.
    pub fn allows_empty(&self) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ALLOW_EMPTY_ANNOTATION))
            .is_some_and(|v| v == "true")
    }
}

/// The CRD as YAML, exactly as `confluent-invitation-operator crd` prints it and `crds/` holds it.
pub fn crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let body = serde_saphyr::to_string(&InvitationGroup::crd())?;
    Ok(format!(
        "# Generated by `confluent-invitation-operator crd`; do not edit.\n{body}"
    ))
}
