//! Wire types of the Confluent Cloud IAM v2 API (`iam/v2`), shared by the client and the mock.
//!
//! Responses are parsed leniently, as the real service omits unset fields and adds fields the
//! OpenAPI schema does not list: every field is optional and unknown fields are ignored. The
//! status and auth-type enums are *extensible*, so unknown values are kept as strings instead of
//! failing the parse.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a wire object the way the service writes them: every field optional, a missing or
/// unknown field no error, an unset field left out of the JSON.
macro_rules! sparse_object {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            $($(#[$field_attr:meta])* pub $field:ident: Option<$ty:ty>,)*
        }
    ) => {
        $(#[$attr])*
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct $name {
            $(
                $(#[$field_attr])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        }
    };
}
pub(crate) use sparse_object;

/// `api_version` of every object of this API.
pub const API_VERSION: &str = "iam/v2";

/// The lifecycle state of a remote invitation (`status`), an extensible enum.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum InviteStatus {
    /// `INVITE_STATUS_SENT`: waiting for the invitee.
    Sent,
    /// `INVITE_STATUS_STAGED`: undocumented; treated as pending.
    Staged,
    /// `INVITE_STATUS_ACCEPTED`: the invitee is a member of the organization.
    Accepted,
    /// `INVITE_STATUS_EXPIRED`: `expires_at` passed before acceptance.
    Expired,
    /// `INVITE_STATUS_DEACTIVATED`: deleted while pending, or the user was removed.
    Deactivated,
    /// A value this version does not know; kept verbatim.
    Other(String),
}

impl InviteStatus {
    /// The value as the API spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sent => "INVITE_STATUS_SENT",
            Self::Staged => "INVITE_STATUS_STAGED",
            Self::Accepted => "INVITE_STATUS_ACCEPTED",
            Self::Expired => "INVITE_STATUS_EXPIRED",
            Self::Deactivated => "INVITE_STATUS_DEACTIVATED",
            Self::Other(s) => s,
        }
    }

    /// Parses any string; unknown values become [`InviteStatus::Other`].
    pub fn parse(s: &str) -> Self {
        match s {
            "INVITE_STATUS_SENT" => Self::Sent,
            "INVITE_STATUS_STAGED" => Self::Staged,
            "INVITE_STATUS_ACCEPTED" => Self::Accepted,
            "INVITE_STATUS_EXPIRED" => Self::Expired,
            "INVITE_STATUS_DEACTIVATED" => Self::Deactivated,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether the invitation still stands (pending or accepted): such an email cannot be
    /// invited again (409), and an Invitation resource may adopt it.
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            Self::Sent | Self::Staged | Self::Accepted | Self::Other(_)
        )
    }
}

impl fmt::Display for InviteStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for InviteStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for InviteStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

/// `AUTH_TYPE_SSO` (the server's default for SSO organizations).
pub const AUTH_TYPE_SSO: &str = "AUTH_TYPE_SSO";
/// `AUTH_TYPE_LOCAL` (password login).
pub const AUTH_TYPE_LOCAL: &str = "AUTH_TYPE_LOCAL";

sparse_object! {
    /// `ObjectMeta` of a single resource.
    pub struct ObjectMeta {
        #[serde(rename = "self")]
        pub self_link: Option<String>,
        pub resource_name: Option<String>,
        pub created_at: Option<String>,
        pub updated_at: Option<String>,
        pub deleted_at: Option<String>,
    }
}

sparse_object! {
    /// `GlobalObjectReference`: the invitee (`user`) or the `creator` of an invitation.
    pub struct ObjectReference {
        pub id: Option<String>,
        pub related: Option<String>,
        pub resource_name: Option<String>,
        pub api_version: Option<String>,
        pub kind: Option<String>,
    }
}

sparse_object! {
    /// `iam.v2.Invitation` as the server returns it.
    pub struct RemoteInvitation {
        pub api_version: Option<String>,
        pub kind: Option<String>,
        pub id: Option<String>,
        pub metadata: Option<ObjectMeta>,
        pub email: Option<String>,
        pub auth_type: Option<String>,
        pub status: Option<InviteStatus>,
        pub accepted_at: Option<String>,
        pub expires_at: Option<String>,
        pub user: Option<ObjectReference>,
        pub creator: Option<ObjectReference>,
    }
}

impl RemoteInvitation {
    /// The invitee's user id (`u-…`), known from creation on.
    pub fn user_id(&self) -> Option<&str> {
        self.user.as_ref().and_then(|u| u.id.as_deref())
    }

    /// `metadata.resource_name` (the CRN).
    pub fn resource_name(&self) -> Option<&str> {
        self.metadata
            .as_ref()
            .and_then(|m| m.resource_name.as_deref())
    }

    /// `metadata.created_at`.
    pub fn created_at(&self) -> Option<&str> {
        self.metadata.as_ref().and_then(|m| m.created_at.as_deref())
    }

    /// `expires_at` parsed; `None` when absent or not RFC 3339.
    pub fn expires_at_timestamp(&self) -> Option<jiff::Timestamp> {
        self.expires_at.as_deref().and_then(|s| s.parse().ok())
    }

    /// Whether this invitation's email is `email`, compared case-insensitively (mailbox domains
    /// are case-insensitive and the server normalises them).
    pub fn email_matches(&self, email: &str) -> bool {
        self.email
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(email))
    }
}

/// Body of `POST /iam/v2/invitations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateInvitation {
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auth_type: Option<String>,
}

sparse_object! {
    /// `ListMeta` of a page.
    pub struct ListMeta {
        pub first: Option<String>,
        pub last: Option<String>,
        pub prev: Option<String>,
        pub next: Option<String>,
        pub total_size: Option<u64>,
    }
}

/// `iam.v2.InvitationList`: one page of a list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InvitationList {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub metadata: ListMeta,
    pub data: Vec<RemoteInvitation>,
}

sparse_object! {
    /// `iam.v2.User`.
    pub struct User {
        pub api_version: Option<String>,
        pub kind: Option<String>,
        pub id: Option<String>,
        pub metadata: Option<ObjectMeta>,
        pub email: Option<String>,
        pub full_name: Option<String>,
        pub auth_type: Option<String>,
    }
}

sparse_object! {
    /// `Error_source`: the request part an error points at.
    pub struct ErrorSource {
        pub pointer: Option<String>,
        pub parameter: Option<String>,
    }
}

sparse_object! {
    /// One entry of a `Failure` body.
    pub struct ErrorItem {
        pub id: Option<String>,
        pub status: Option<String>,
        pub code: Option<String>,
        pub title: Option<String>,
        pub detail: Option<String>,
        pub source: Option<ErrorSource>,
    }
}

/// `Failure`: the body of every documented error response.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Failure {
    pub errors: Vec<ErrorItem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_real_response_with_unknown_fields_and_values() {
        let body = r#"{
            "api_version": "iam/v2", "kind": "Invitation", "id": "i-abc12",
            "metadata": {"self": "https://api.confluent.cloud/iam/v2/invitations/i-abc12",
                         "resource_name": "crn://confluent.cloud/organization=o/invitation=i-abc12",
                         "created_at": "2026-01-01T00:00:00Z", "something_new": 1},
            "email": "jane@example.com", "auth_type": "AUTH_TYPE_PASSKEY",
            "status": "INVITE_STATUS_FROZEN", "accepted_at": null,
            "expires_at": "2026-01-08T00:00:00Z",
            "user": {"id": "u-xyz98", "api_version": "iam/v2", "kind": "User"},
            "creator": {"id": "u-admin"}, "extra": {"nested": [1, 2]}
        }"#;
        let inv: RemoteInvitation = serde_json::from_str(body).unwrap();
        assert_eq!(inv.id.as_deref(), Some("i-abc12"));
        assert_eq!(inv.user_id(), Some("u-xyz98"));
        assert_eq!(
            inv.status,
            Some(InviteStatus::Other("INVITE_STATUS_FROZEN".into()))
        );
        assert_eq!(inv.auth_type.as_deref(), Some("AUTH_TYPE_PASSKEY"));
        assert_eq!(inv.accepted_at, None);
        assert_eq!(
            inv.expires_at_timestamp().map(|t| t.as_second()),
            Some(1_767_830_400)
        );
        // unknown values survive a round trip verbatim
        let back = serde_json::to_value(&inv).unwrap();
        assert_eq!(back["status"], "INVITE_STATUS_FROZEN");
    }

    #[test]
    fn parses_a_minimal_response() {
        let inv: RemoteInvitation = serde_json::from_str("{}").unwrap();
        assert_eq!(inv, RemoteInvitation::default());
        let list: InvitationList = serde_json::from_str(r#"{"data": []}"#).unwrap();
        assert!(list.metadata.next.is_none());
    }

    #[test]
    fn known_statuses_round_trip() {
        for s in [
            InviteStatus::Sent,
            InviteStatus::Staged,
            InviteStatus::Accepted,
            InviteStatus::Expired,
            InviteStatus::Deactivated,
        ] {
            assert_eq!(InviteStatus::parse(s.as_str()), s);
        }
        assert!(!InviteStatus::Expired.is_live());
        assert!(!InviteStatus::Deactivated.is_live());
        assert!(InviteStatus::Accepted.is_live());
    }

    #[test]
    fn email_comparison_ignores_case() {
        let inv = RemoteInvitation {
            email: Some("Jane@Example.com".into()),
            ..Default::default()
        };
        assert!(inv.email_matches("jane@example.com"));
        assert!(!inv.email_matches("jane@example.org"));
    }
}
