//! Rendering stored records into the API's wire types ([`confluent_client::model`]), with links
//! built from the base URL the client used, so `self`, `related`, `Location` and `next` links are
//! followable from wherever the client reaches the mock (a port-forward, a Service name, ...).

use jiff::Timestamp;

use super::clock::whole_seconds;
use super::pagination::Page;
use super::state::{InvitationRecord, UserRecord};
use confluent_client::model::{
    API_VERSION, InvitationList, ListMeta, ObjectMeta, ObjectReference, RemoteInvitation, User,
};

/// RFC 3339, UTC, seconds precision, `Z` suffix: how the real service renders timestamps.
pub fn rfc3339(ts: Timestamp) -> String {
    whole_seconds(ts).to_string()
}

/// The `metadata` of a list page: `first` and `next` are `url` with the paging parameters (the
/// page size, and for `next` the token; no `next` on the last page). `last` and `prev` are not
/// supported, which the spec allows.
pub fn list_meta<T>(page: &Page<T>, url: impl Fn(&str) -> String) -> ListMeta {
    let size = format!("page_size={}", page.page_size);
    ListMeta {
        first: Some(url(&size)),
        last: None,
        prev: None,
        next: page
            .next_token
            .as_ref()
            .map(|t| url(&format!("{size}&page_token={t}"))),
        total_size: Some(page.total_size),
    }
}

/// The base URL and organization every link and CRN is built from.
#[derive(Clone, Copy, Debug)]
pub struct Links<'a> {
    /// `http://host:port`, no trailing slash.
    pub base: &'a str,
    /// The organization uuid of CRNs.
    pub org: &'a str,
}

impl Links<'_> {
    /// The URL of an invitation (its `metadata.self` and the create's `Location`).
    pub fn invitation_url(&self, id: &str) -> String {
        format!("{}/iam/v2/invitations/{id}", self.base)
    }

    /// The URL of a user.
    pub fn user_url(&self, id: &str) -> String {
        format!("{}/iam/v2/users/{id}", self.base)
    }

    /// A `GlobalObjectReference` to a user, with the `api_version` and `kind` real responses add.
    pub fn user_ref(&self, id: &str) -> ObjectReference {
        ObjectReference {
            id: Some(id.to_owned()),
            related: Some(self.user_url(id)),
            resource_name: Some(format!(
                "crn://confluent.cloud/organization={}/user={id}",
                self.org
            )),
            api_version: Some(API_VERSION.to_owned()),
            kind: Some("User".to_owned()),
        }
    }

    /// The full `iam.v2.Invitation`.
    pub fn invitation(&self, r: &InvitationRecord) -> RemoteInvitation {
        RemoteInvitation {
            api_version: Some(API_VERSION.to_owned()),
            kind: Some("Invitation".to_owned()),
            id: Some(r.id.clone()),
            metadata: Some(ObjectMeta {
                self_link: Some(self.invitation_url(&r.id)),
                resource_name: Some(format!(
                    "crn://confluent.cloud/organization={}/invitation={}",
                    self.org, r.id
                )),
                created_at: Some(rfc3339(r.created_at)),
                updated_at: Some(rfc3339(r.updated_at)),
                deleted_at: r.deleted_at.map(rfc3339),
            }),
            email: Some(r.email.clone()),
            auth_type: Some(r.auth_type.clone()),
            status: Some(r.status.clone()),
            accepted_at: r.accepted_at.map(rfc3339),
            expires_at: Some(rfc3339(r.expires_at)),
            user: Some(self.user_ref(&r.user_id)),
            creator: Some(self.user_ref(&r.creator_id)),
        }
    }

    /// The full `iam.v2.User`. `full_name` is the email's local part, as invitees have not
    /// chosen a name.
    pub fn user(&self, u: &UserRecord) -> User {
        let full_name = u.email.split('@').next().unwrap_or_default().to_owned();
        User {
            api_version: Some(API_VERSION.to_owned()),
            kind: Some("User".to_owned()),
            id: Some(u.id.clone()),
            metadata: Some(ObjectMeta {
                self_link: Some(self.user_url(&u.id)),
                resource_name: Some(format!(
                    "crn://confluent.cloud/organization={}/user={}",
                    self.org, u.id
                )),
                created_at: Some(rfc3339(u.created_at)),
                updated_at: Some(rfc3339(u.updated_at)),
                deleted_at: None,
            }),
            email: Some(u.email.clone()),
            full_name: Some(full_name),
            auth_type: Some(u.auth_type.clone()),
        }
    }

    /// An `iam.v2.InvitationList` page. `first` and `next` repeat the filters (`filters` is an
    /// already encoded query string without paging parameters, possibly empty), then the paging
    /// of [`list_meta`].
    pub fn list(&self, page: &Page<InvitationRecord>, filters: &str) -> InvitationList {
        let url = |paging: &str| {
            let sep = if filters.is_empty() { "" } else { "&" };
            format!("{}/iam/v2/invitations?{filters}{sep}{paging}", self.base)
        };
        InvitationList {
            api_version: Some(API_VERSION.to_owned()),
            kind: Some("InvitationList".to_owned()),
            metadata: list_meta(page, url),
            data: page.items.iter().map(|r| self.invitation(r)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confluent_client::model::InviteStatus;

    fn record() -> InvitationRecord {
        let ts: Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
        InvitationRecord {
            seq: 1,
            id: "i-abc12".into(),
            email: "jane@example.com".into(),
            auth_type: "AUTH_TYPE_SSO".into(),
            status: InviteStatus::Sent,
            created_at: ts,
            updated_at: ts,
            deleted_at: None,
            accepted_at: None,
            expires_at: ts,
            user_id: "u-xyz987".into(),
            creator_id: "u-admin1".into(),
        }
    }

    #[test]
    fn invitation_links_and_crns() {
        let links = Links {
            base: "http://127.0.0.1:1",
            org: "org-1",
        };
        let inv = links.invitation(&record());
        let v = serde_json::to_value(&inv).unwrap();
        assert_eq!(
            v["metadata"]["self"],
            "http://127.0.0.1:1/iam/v2/invitations/i-abc12"
        );
        assert_eq!(
            v["metadata"]["resource_name"],
            "crn://confluent.cloud/organization=org-1/invitation=i-abc12"
        );
        assert_eq!(v["metadata"]["created_at"], "2026-03-01T12:00:00Z");
        assert_eq!(
            v["user"]["related"],
            "http://127.0.0.1:1/iam/v2/users/u-xyz987"
        );
        assert_eq!(v["user"]["kind"], "User");
        assert!(v.get("accepted_at").is_none());
        assert!(v["metadata"].get("deleted_at").is_none());
    }

    #[test]
    fn list_links_carry_filters_and_paging() {
        let links = Links {
            base: "http://h",
            org: "o",
        };
        let page = Page {
            items: vec![record()],
            next_token: Some("tok".into()),
            total_size: 3,
            page_size: 1,
        };
        let list = links.list(&page, "email=a%40b.io");
        assert_eq!(
            list.metadata.first.as_deref(),
            Some("http://h/iam/v2/invitations?email=a%40b.io&page_size=1")
        );
        assert_eq!(
            list.metadata.next.as_deref(),
            Some("http://h/iam/v2/invitations?email=a%40b.io&page_size=1&page_token=tok")
        );
        let last = Page {
            next_token: None,
            ..page
        };
        assert_eq!(links.list(&last, "").metadata.next, None);
    }
}
