//! The `Invitation` custom resource (`iam.ccloud.dev/v1alpha1`), derived into the CRD with
//! kube-derive and schemars. The doc comments below become the schema's descriptions, which is
//! what `kubectl explain invitation.spec` shows, so they are written for the resource's users.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::role_bindings::resource::{RoleBinding, RoleBindingStatus};
use crate::runtime::conditions;

/// The finalizer that guards the remote invitation until the resource's deletion policy ran.
pub const FINALIZER: &str = "iam.ccloud.dev/invitation-cleanup";

/// The annotation that pauses one Invitation: while its value is `"true"` the operator sends
/// nothing to Confluent for it, not even a deletion (Crossplane's `crossplane.io/paused`
/// convention, under this project's group).
pub const PAUSED_ANNOTATION: &str = "iam.ccloud.dev/paused";

/// The schema pattern of `spec.email`: an ASCII address with a dotted domain. ASCII only, so a
/// look-alike Unicode address cannot slip an invitation to someone else.
pub const EMAIL_PATTERN: &str = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";

/// The schema pattern of `spec.credentialsSecretRef.name`: a Kubernetes object name (DNS-1123
/// subdomain), so that the name cannot change the path or query of the Secret's GET.
pub const SECRET_NAME_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// An invitation of one person (by email) into the Confluent Cloud organization. The operator
/// creates the remote invitation (or adopts an existing one for the same email), reports its
/// state and the invitee's user id in status, and removes it according to `deletionPolicy` when
/// this resource is deleted.
// clippy reads the repeated `type_ = ...` of the printer columns as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "iam.ccloud.dev",
    version = "v1alpha1",
    kind = "Invitation",
    plural = "invitations",
    singular = "invitation",
    namespaced,
    status = "InvitationStatus",
    shortname = "inv",
    category = "ccloud",
    doc = "An invitation of one person into the Confluent Cloud organization, reconciled by confluent-invitation-operator.",
    derive = "PartialEq",
    printcolumn(name = "Email", type_ = "string", json_path = ".spec.email"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "User", type_ = "string", json_path = ".status.userId"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = "1"
    ),
    printcolumn(
        name = "Paused",
        type_ = "string",
        json_path = ".metadata.annotations.iam\\.ccloud\\.dev/paused"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct InvitationSpec {
    /// The invitee's email address. Immutable: to invite someone else, create another
    /// Invitation.
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("email is immutable; create a new Invitation instead"))]
    #[schemars(length(min = 3, max = 254), regex(pattern = EMAIL_PATTERN))]
    pub email: String,

    /// How the invitee will log in. Omit it to let Confluent decide (SSO for organizations with
    /// SSO enabled, LOCAL otherwise). Immutable once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("authType is immutable; create a new Invitation instead"))]
    pub auth_type: Option<AuthType>,

    /// A Secret in this Invitation's namespace holding Confluent Cloud credentials: keys
    /// `apiKey` and `apiSecret` (a Cloud API key of an OrganizationAdmin), or `accessToken` (an
    /// OAuth token). Omit it to use the operator's own credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,

    /// What deleting this resource does remotely. `Delete` (default) deletes a pending invitation
    /// and keeps a member who has accepted; `Orphan` leaves everything in Confluent as it is;
    /// `DeleteUser` also deletes an accepted member's user, with their API keys and role bindings.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Send a new invitation when this one expires unaccepted. Default false: an expired
    /// invitation is reported as `Expired` and left alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reinvite_on_expiry: bool,

    /// The access the invitee gets: each item binds `roleName` on `crnPattern` to the invitee
    /// (`User:<status.userId>`) as soon as the invitation exists, before it is accepted. An item
    /// added, removed or changed is applied at the next reconcile; a binding removed in
    /// Confluent Cloud is created again within one resync. Keyed by `roleName` and
    /// `crnPattern`: the same pair twice is refused. Bindings this resource did not create are
    /// left alone unless `exclusiveRoleBindings` is true.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["roleName".into(), "crnPattern".into()]))]
    #[schemars(length(max = 50))]
    pub role_bindings: Vec<RoleBinding>,

    /// When true, `roleBindings` is exactly the invitee's access in the organization: any other
    /// role binding of this user (added in the console, by another tool, or left from before) is
    /// deleted within one resync, with an Event naming it. Default false: bindings this
    /// resource did not create are never touched.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclusive_role_bindings: bool,
}

impl InvitationSpec {
    /// The spec of a manifest that states only `email`: every other field as the API server
    /// defaults it.
    pub fn of_email(email: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            auth_type: None,
            credentials_secret_ref: None,
            deletion_policy: DeletionPolicy::default(),
            reinvite_on_expiry: false,
            role_bindings: Vec::new(),
            exclusive_role_bindings: false,
        }
    }
}

// How the invitee authenticates. (A plain comment: a doc comment here would replace the
// field's description in the generated schema.)
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum AuthType {
    /// Single sign-on through the organization's identity provider.
    #[serde(rename = "AUTH_TYPE_SSO")]
    Sso,
    /// Confluent Cloud's own email and password login.
    #[serde(rename = "AUTH_TYPE_LOCAL")]
    Local,
}

impl AuthType {
    /// The value as the Confluent API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sso => confluent_client::model::AUTH_TYPE_SSO,
            Self::Local => confluent_client::model::AUTH_TYPE_LOCAL,
        }
    }
}

/// A reference to a Secret in the Invitation's own namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub struct SecretRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253), regex(pattern = SECRET_NAME_PATTERN))]
    pub name: String,
}

/// What happens remotely when the Invitation is deleted.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum DeletionPolicy {
    /// Delete a pending invitation (the invitee is deactivated); keep an accepted member.
    #[default]
    Delete,
    /// Touch nothing in Confluent Cloud.
    Orphan,
    /// Delete a pending invitation, and delete an accepted member's user (with their API keys and
    /// role bindings).
    DeleteUser,
}

/// What the operator last observed of the remote invitation.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationStatus {
    /// The remote invitation's id (`i-…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_id: Option<String>,
    /// The invitee's user id (`u-…`), known from creation on: role bindings can use it at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The email the remote invitation was made for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Pending, Sent, Staged, Accepted, Expired, Deactivated, or a remote value this version does
    /// not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The remote status exactly as Confluent reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_status: Option<String>,
    /// The auth type as Confluent decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<String>,
    /// When the remote invitation was created (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the remote invitation expires unless accepted (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// When the invitee accepted (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<String>,
    /// The remote invitation's Confluent resource name (CRN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// The ledger of role bindings: first one entry per item of `spec.roleBindings`, in spec
    /// order, then every other binding this Invitation holds or must still delete (a removed
    /// item's, a previous invitee's), each with its principal, absolute CRN pattern, id once it
    /// exists, and state. An entry whose binding may exist stays until Confluent confirms the
    /// binding gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_bindings: Vec<RoleBindingStatus>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` is True while the invitation stands as asked (Sent, Staged or Accepted), every
    /// listed role binding is Bound and none is left to delete; its reason and message explain
    /// anything else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl InvitationStatus {
    /// The `Ready` condition, if any.
    pub fn ready(&self) -> Option<&Condition> {
        conditions::ready(&self.conditions)
    }
}

impl DeletionPolicy {
    /// Which role bindings of the ledger a deletion removes under this policy:
    ///
    /// - an `EmailConflict` loser (`email_conflict_loser`), and `Orphan`: none;
    /// - `DeleteUser` with an `accepted` member: none of the invitee's own: deleting the user
    ///   removes their bindings with them;
    /// - `Delete` (pending or accepted), and `DeleteUser` with a pending invitation (the
    ///   invitation goes, the invitee's bindings would stay): every one;
    /// - `handed_over` (another Invitation takes the email over): the invitation and the user
    ///   stay, so even `DeleteUser` removes the invitee's bindings here (except those the
    ///   successor lists);
    /// - a previous invitee's are nobody's to keep: removed under every policy but `Orphan`
    ///   (and by nobody for a loser).
    pub fn binding_removal(
        self,
        accepted: bool,
        email_conflict_loser: bool,
        handed_over: bool,
    ) -> crate::role_bindings::Removal {
        let invitees = match self {
            _ if email_conflict_loser => false,
            Self::Orphan => false,
            Self::DeleteUser => !accepted || handed_over,
            Self::Delete => true,
        };
        crate::role_bindings::Removal {
            invitees,
            previous: !email_conflict_loser && self != Self::Orphan,
        }
    }
}

impl Invitation {
    /// Whether the pause annotation is set to `"true"`.
    pub fn paused(&self) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PAUSED_ANNOTATION))
            .is_some_and(|v| v == "true")
    }

    /// Whether the spec changed since status was last written for it (or status never was).
    pub fn spec_changed(&self) -> bool {
        self.status.as_ref().and_then(|s| s.observed_generation) != self.metadata.generation
    }
}

/// The CRD as YAML, exactly as `confluent-invitation-operator crd` prints it and `crds/` holds it.
pub fn crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let body = serde_saphyr::to_string(&Invitation::crd())?;
    Ok(format!(
        "# Generated by `confluent-invitation-operator crd`; do not edit.\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `spec.roleBindings` is a list keyed by both fields (the API server refuses a duplicate
    /// pair), bounded.
    #[test]
    fn role_bindings_are_a_map_list_keyed_by_role_and_pattern() {
        let crd = Invitation::crd();
        let schema = serde_json::to_value(crd.spec.versions[0].schema.as_ref().unwrap()).unwrap();
        let list = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["roleBindings"];
        assert_eq!(list["x-kubernetes-list-type"], "map", "{list:#}");
        assert_eq!(
            list["x-kubernetes-list-map-keys"],
            serde_json::json!(["roleName", "crnPattern"])
        );
        assert_eq!(list["maxItems"], 50);
        // map keys must be required (or defaulted): both are
        assert_eq!(
            list["items"]["required"],
            serde_json::json!(["crnPattern", "roleName"])
        );
    }
}
