//! The schema types of role bindings, as `Invitation` (and any kind that grants access) lists
//! them in spec and records them in status. The doc comments become the CRD's descriptions.

use serde::{Deserialize, Serialize};

/// The schema pattern of a role binding's `roleName`: a Confluent role name (`EnvironmentAdmin`,
/// `DeveloperRead`, ...), letters and digits.
pub const ROLE_NAME_PATTERN: &str = r"^[A-Za-z][A-Za-z0-9]*$";

/// The schema pattern of a role binding's `crnPattern`: an absolute CRN of Confluent Cloud
/// (`crn://confluent.cloud/organization=<id>/...`), or one relative to the invitation's
/// organization that starts at the organization or an environment (`environment=env-abc/...`).
/// Each further part is `key=value`; a value may end in `*` (a topic prefix).
pub const ROLE_BINDING_CRN_PATTERN: &str = r"^(crn://confluent\.cloud/organization=[^/\s=]+|organization=[^/\s=]+|environment=[^/\s=]+)(/[a-z][a-z-]*=[^/\s=]+)*$";

/// The longest `crnPattern` accepted (a topic path with long names fits several times over).
pub const MAX_CRN_PATTERN_LENGTH: u32 = 512;

/// One role granted to the invitee: `roleName` on what `crnPattern` matches, bound to
/// `User:<status.userId>` as soon as the invitation exists.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleBinding {
    /// The Confluent Cloud role, e.g. `EnvironmentAdmin`, `CloudClusterAdmin` or
    /// `DeveloperRead`. Each role binds at one kind of scope (organization, environment,
    /// cluster, or a resource such as a topic); Confluent refuses any other pairing, which is
    /// reported as `RoleBindingRefused`.
    #[schemars(length(min = 1, max = 64), regex(pattern = ROLE_NAME_PATTERN))]
    pub role_name: String,

    /// Where the role applies: an absolute CRN pattern
    /// (`crn://confluent.cloud/organization=<org>/environment=env-abc`), or one relative to the
    /// invitation's organization, starting at `environment=` (or `organization=`), e.g.
    /// `environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders`. End a topic name
    /// with `*` to match a prefix.
    #[schemars(length(min = 13, max = MAX_CRN_PATTERN_LENGTH), regex(pattern = ROLE_BINDING_CRN_PATTERN))]
    pub crn_pattern: String,
}

/// Where one binding of the ledger stands.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum RoleBindingState {
    /// The binding exists in Confluent Cloud (created by this resource, or taken over). The
    /// grant may take a minute or two more to take effect.
    Bound,
    /// Refused: by Confluent (a role the scope does not take, an unknown resource, a scope the
    /// credentials may not grant), or by the operator's rules before anything was sent;
    /// `message` says why. Tried again with backoff, and after the operator restarts.
    Refused,
    /// Not created yet: waiting for the invitee's user id, or for a transient failure to pass.
    Pending,
    /// A create was sent and its answer not confirmed yet (lost, or not recorded): the binding
    /// is looked up before anything else is done for it.
    Creating,
    /// The binding must go (its item left the spec, it is a previous invitee's, or
    /// `exclusiveRoleBindings` found it) and may still be live: Ready is False
    /// (`RoleBindingRevocationPending`) until Confluent confirms it deleted.
    Deleting,
    /// The binding exists but its role is no longer allowed (`--allowed-roles`): kept, with its
    /// id, until the Invitation is deleted.
    Disallowed,
}

impl RoleBindingState {
    /// Every state, in the order the metrics list them.
    pub const ALL: [Self; 6] = [
        Self::Bound,
        Self::Refused,
        Self::Pending,
        Self::Creating,
        Self::Deleting,
        Self::Disallowed,
    ];

    /// The spelling in status (and in the `role_bindings` metric's `state` label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bound => "Bound",
            Self::Refused => "Refused",
            Self::Pending => "Pending",
            Self::Creating => "Creating",
            Self::Deleting => "Deleting",
            Self::Disallowed => "Disallowed",
        }
    }
}

/// One binding this Invitation is responsible for: one it lists (desired), holds, or must still
/// remove.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleBindingStatus {
    /// The role.
    pub role_name: String,
    /// The absolute CRN pattern (a relative one resolved with the invitation's organization;
    /// as listed when it cannot be).
    pub crn_pattern: String,
    /// The binding's id in Confluent Cloud (`rb-…`), once it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Bound, Pending, Refused, Creating, Deleting or Disallowed.
    pub state: RoleBindingState,
    /// Confluent's own explanation of a refusal, or what the entry waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whose binding this is (`User:u-…`): the invitee's, or a previous invitee's (the
    /// invitation was sent again to a new user) until its deletion is confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

impl RoleBindingStatus {
    /// "Role on CRN", as Events and status messages name a binding.
    pub fn describe(&self) -> String {
        format!("{} on {}", self.role_name, self.crn_pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crn_pattern_schema_takes_absolute_and_relative_patterns() {
        let re = regex::Regex::new(ROLE_BINDING_CRN_PATTERN).unwrap();
        for ok in [
            "crn://confluent.cloud/organization=9bb441c4-edef-46ac-8a41-c49e44a3fd9a",
            "crn://confluent.cloud/organization=o-1/environment=env-abc",
            "crn://confluent.cloud/organization=o/environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=orders",
            "environment=env-abc",
            "environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/topic=ord*",
            "environment=env-abc/schema-registry=lsrc-1/subject=orders-value",
            "environment=env-abc/cloud-cluster=lkc-1/kafka=lkc-1/transactional-id=tx.1",
            "organization=o-1",
        ] {
            assert!(re.is_match(ok), "{ok}");
        }
        for bad in [
            "",
            "env-abc",
            "crn://confluent.cloud/environment=env-abc",
            "crn://other.cloud/organization=o",
            "https://confluent.cloud/organization=o",
            "cloud-cluster=lkc-1",
            "environment=",
            "environment=env-abc/",
            "environment=env-abc//kafka=lkc-1",
            "environment=env abc",
            "environment=env-abc/Kafka=lkc-1",
            "environment=env-abc/kafka",
            "environment=env-abc\n",
        ] {
            assert!(!re.is_match(bad), "{bad:?}");
        }
        let role = regex::Regex::new(ROLE_NAME_PATTERN).unwrap();
        assert!(role.is_match("DeveloperRead"));
        for bad in ["", "Developer Read", "1Admin", "Admin;"] {
            assert!(!role.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn the_item_schema_is_bounded_and_explained() {
        let schema = serde_json::to_value(schemars::schema_for!(RoleBinding)).unwrap();
        assert_eq!(
            schema["required"],
            serde_json::json!(["roleName", "crnPattern"])
        );
        let props = &schema["properties"];
        assert_eq!(props["roleName"]["maxLength"], 64);
        assert_eq!(props["crnPattern"]["maxLength"], MAX_CRN_PATTERN_LENGTH);
        assert_eq!(props["crnPattern"]["pattern"], ROLE_BINDING_CRN_PATTERN);
        for field in ["roleName", "crnPattern"] {
            let d = props[field]["description"].as_str().unwrap_or_default();
            assert!(d.len() > 40, "{field} lacks a description: {d:?}");
        }
    }

    #[test]
    fn the_status_entry_reads_and_writes_camel_case() {
        let entry = RoleBindingStatus {
            role_name: "DeveloperRead".into(),
            crn_pattern: "crn://confluent.cloud/organization=o/environment=e".into(),
            id: Some("rb-1".into()),
            state: RoleBindingState::Refused,
            message: Some("no".into()),
            principal: None,
        };
        let v = serde_json::to_value(&entry).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"roleName": "DeveloperRead",
                "crnPattern": "crn://confluent.cloud/organization=o/environment=e",
                "id": "rb-1", "state": "Refused", "message": "no"})
        );
        assert_eq!(
            serde_json::from_value::<RoleBindingStatus>(v).unwrap(),
            entry
        );
    }
}
