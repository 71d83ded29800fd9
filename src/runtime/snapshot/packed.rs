//! One remote invitation as a snapshot holds it: the fields the planner and the status read,
//! packed into one string.
//!
//! A snapshot holds every invitation of a credential. Kept as the API model (eight optional
//! strings and two nested structs, boxed), they took about three times the heap they take packed
//! (BENCHMARKS.md, "Measured once"), and nine allocations apiece instead of one: packing leaves
//! malloc less to fragment too.

use confluent_client::model::{InviteStatus, ObjectMeta, ObjectReference, RemoteInvitation};

/// The text fields kept, in packing order.
const EMAIL: usize = 0;
const AUTH_TYPE: usize = 1;
const ACCEPTED_AT: usize = 2;
const EXPIRES_AT: usize = 3;
const RESOURCE_NAME: usize = 4;
const CREATED_AT: usize = 5;
const USER_ID: usize = 6;
const FIELDS: usize = 7;
/// Presence bits beyond the fields': whether `metadata` and `user` were there at all.
const HAS_METADATA: u16 = 1 << FIELDS;
const HAS_USER: u16 = 1 << (FIELDS + 1);

/// A remote invitation without its id (which keys the snapshot's table), links, type tags, or
/// the creator: what [`Packed::unpack`] gives back is all the planner and the status read.
#[derive(Clone, Debug, PartialEq)]
pub struct Packed {
    /// The present text fields, back to back.
    text: Box<str>,
    /// Where each field ends in `text` (an absent field ends where the one before it did).
    ends: [u32; FIELDS],
    /// Bit `i`: field `i` is present; then [`HAS_METADATA`] and [`HAS_USER`].
    present: u16,
    status: Option<InviteStatus>,
}

impl Packed {
    /// Packs what a snapshot keeps of `inv`.
    pub fn new(inv: &RemoteInvitation) -> Self {
        let meta = inv.metadata.as_ref();
        let user = inv.user.as_ref();
        let fields: [Option<&str>; FIELDS] = [
            inv.email.as_deref(),
            inv.auth_type.as_deref(),
            inv.accepted_at.as_deref(),
            inv.expires_at.as_deref(),
            meta.and_then(|m| m.resource_name.as_deref()),
            meta.and_then(|m| m.created_at.as_deref()),
            user.and_then(|u| u.id.as_deref()),
        ];
        let mut text = String::with_capacity(fields.iter().flatten().map(|f| f.len()).sum());
        let mut ends = [0u32; FIELDS];
        let mut present = 0u16;
        for (i, field) in fields.iter().enumerate() {
            if let Some(f) = field {
                text.push_str(f);
                present |= 1 << i;
            }
            // a response body is at most 16 MiB (the client refuses more), so this fits
            ends[i] = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        if meta.is_some() {
            present |= HAS_METADATA;
        }
        if user.is_some() {
            present |= HAS_USER;
        }
        Self {
            text: text.into_boxed_str(),
            ends,
            present,
            status: inv.status.clone(),
        }
    }

    /// Field `i`, if present.
    fn field(&self, i: usize) -> Option<&str> {
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] } as usize;
        self.text.get(start..self.ends[i] as usize)
    }

    fn owned(&self, i: usize) -> Option<String> {
        self.field(i).map(str::to_owned)
    }

    /// The invitee's email, as the API reported it.
    pub fn email(&self) -> Option<&str> {
        self.field(EMAIL)
    }

    /// The invitation again, with its `id`: everything packed, nothing else.
    pub fn unpack(&self, id: &str) -> RemoteInvitation {
        RemoteInvitation {
            id: Some(id.to_owned()),
            metadata: (self.present & HAS_METADATA != 0).then(|| ObjectMeta {
                resource_name: self.owned(RESOURCE_NAME),
                created_at: self.owned(CREATED_AT),
                ..Default::default()
            }),
            email: self.owned(EMAIL),
            auth_type: self.owned(AUTH_TYPE),
            status: self.status.clone(),
            accepted_at: self.owned(ACCEPTED_AT),
            expires_at: self.owned(EXPIRES_AT),
            user: (self.present & HAS_USER != 0).then(|| ObjectReference {
                id: self.owned(USER_ID),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(status: InviteStatus) -> RemoteInvitation {
        let reference = |id: &str| ObjectReference {
            id: Some(id.into()),
            related: Some(format!("https://api.confluent.cloud/iam/v2/users/{id}")),
            resource_name: Some(format!("crn://confluent.cloud/user={id}")),
            api_version: Some("iam/v2".into()),
            kind: Some("User".into()),
        };
        RemoteInvitation {
            api_version: Some("iam/v2".into()),
            kind: Some("Invitation".into()),
            id: Some("i-1".into()),
            metadata: Some(ObjectMeta {
                self_link: Some("https://api.confluent.cloud/iam/v2/invitations/i-1".into()),
                resource_name: Some("crn://confluent.cloud/invitation=i-1".into()),
                created_at: Some("2026-01-01T00:00:00Z".into()),
                updated_at: Some("2026-01-02T00:00:00Z".into()),
                deleted_at: None,
            }),
            email: Some("Jane@example.com".into()),
            auth_type: Some("AUTH_TYPE_SSO".into()),
            status: Some(status),
            accepted_at: Some("2026-01-02T00:00:00Z".into()),
            expires_at: Some("2026-01-31T00:00:00Z".into()),
            user: Some(reference("u-1")),
            creator: Some(reference("u-0")),
        }
    }

    #[test]
    fn unpacking_gives_the_status_and_planner_everything_they_read() {
        let now: jiff::Timestamp = "2026-01-03T00:00:00Z".parse().unwrap();
        for status in [
            InviteStatus::Sent,
            InviteStatus::Accepted,
            InviteStatus::Expired,
            InviteStatus::Other("INVITE_STATUS_NEW".into()),
        ] {
            let full = full(status);
            let back = Packed::new(&full).unpack("i-1");
            assert!(back.creator.is_none() && back.kind.is_none());
            // every field the status and the planner read, through the accessors they use
            assert_eq!(back.id, full.id);
            assert_eq!(back.status, full.status);
            assert_eq!(back.auth_type, full.auth_type);
            assert_eq!(back.accepted_at, full.accepted_at);
            assert_eq!(back.created_at(), full.created_at());
            assert_eq!(back.resource_name(), full.resource_name());
            assert_eq!(
                back.expires_at_timestamp().map(|t| t < now),
                full.expires_at_timestamp().map(|t| t < now)
            );
            assert_eq!(back.email, full.email);
            assert_eq!(back.user_id(), Some("u-1"));
            assert_eq!(back.expires_at, full.expires_at);
            assert_eq!(Packed::new(&back), Packed::new(&full), "packing is stable");
        }
    }

    #[test]
    fn absent_and_empty_fields_stay_what_they_were() {
        let mut inv = RemoteInvitation {
            id: Some("i-2".into()),
            email: Some(String::new()),
            expires_at: Some("2026-01-31T00:00:00Z".into()),
            metadata: Some(ObjectMeta::default()),
            ..Default::default()
        };
        let back = Packed::new(&inv).unpack("i-2");
        assert_eq!(back, inv, "Some(\"\") stays Some, None stays None");
        inv.metadata = None;
        inv.user = Some(ObjectReference::default());
        assert_eq!(Packed::new(&inv).unpack("i-2"), inv);
        assert_eq!(
            Packed::new(&RemoteInvitation::default()).unpack("x").email,
            None
        );
    }
}
