//! The organization the mock pretends to be: its invitations and users, as pure logic.
//!
//! Every operation takes the current time as an argument, so the rules (409 on a live email,
//! deactivate-then-reinvite, expiry, pagination, user removal) are unit-tested without a clock or
//! a socket. Rendering into wire types lives in [`super::wire`].
//!
//! Modelled undocumented behaviour (the service's reported behaviour is in
//! `confluent-client/openapi/README.md`):
//! - Deleting a pending (SENT, STAGED or EXPIRED) invitation does not make it disappear: it becomes
//!   `INVITE_STATUS_DEACTIVATED` with `metadata.deleted_at` set, and GET keeps answering it.
//!   Deleting it again answers 404. The email can then be invited again (a new invitation id).
//! - A SENT invitation whose `expires_at` (creation + 7 days) has passed reads as EXPIRED; an
//!   expired invitation can be deleted and its email invited again.
//! - The invitee's user exists from the invitation's creation on (so roles can be bound to it);
//!   it lives while it is a member or has a SENT/STAGED/EXPIRED/ACCEPTED invitation, so a
//!   re-invitation after expiry keeps the user id while one after deactivation gets a new one.
//! - Deleting a user deactivates all their invitations, so the email can be invited again.
//! - Nothing becomes STAGED on its own: the status exists in the enum only.

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};

use super::clock::whole_seconds;
use super::error::MockError;
use super::ids::Ids;
use super::pagination::{self, Page};
use super::role_bindings::RoleBindings;
use confluent_client::model::{AUTH_TYPE_LOCAL, AUTH_TYPE_SSO, CreateInvitation, InviteStatus};
use confluent_client::role_bindings::user_principal;

/// How long an invitation stays SENT before it reads as EXPIRED (observed on the real service).
pub const INVITATION_LIFETIME: SignedDuration = SignedDuration::from_hours(24 * 7);

/// One invitation as the organization stores it (links are added when rendering).
#[derive(Clone, Debug, PartialEq)]
pub struct InvitationRecord {
    /// Creation order; the list sort key and the page cursor.
    pub seq: u64,
    /// `i-` + 5 lowercase alphanumerics.
    pub id: String,
    /// As given at creation (comparisons ignore case).
    pub email: String,
    /// `AUTH_TYPE_SSO` or `AUTH_TYPE_LOCAL` (seeded ones may carry anything).
    pub auth_type: String,
    /// The stored status (expiry is applied by [`Org::sweep`] before every read).
    pub status: InviteStatus,
    /// When it was created (whole seconds).
    pub created_at: Timestamp,
    /// When its status last changed.
    pub updated_at: Timestamp,
    /// When it was deactivated.
    pub deleted_at: Option<Timestamp>,
    /// When it was accepted.
    pub accepted_at: Option<Timestamp>,
    /// When it expires (or expired).
    pub expires_at: Timestamp,
    /// The invitee's user id.
    pub user_id: String,
    /// The creator's user id.
    pub creator_id: String,
}

/// One user of the organization: an invitee (from invitation on) or a member (after accepting).
#[derive(Clone, Debug, PartialEq)]
pub struct UserRecord {
    /// `u-` + 6 lowercase alphanumerics.
    pub id: String,
    /// The email of the invitation that created the user.
    pub email: String,
    /// The auth type of that invitation.
    pub auth_type: String,
    /// When the user was created (with the first invitation).
    pub created_at: Timestamp,
    /// When the user last changed.
    pub updated_at: Timestamp,
    /// Whether the user accepted an invitation.
    pub member: bool,
}

/// Filters and paging of a list request, already split from the query string.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListQuery {
    /// Exact match, case-insensitive.
    pub email: Option<String>,
    /// Exact match on the status string.
    pub status: Option<String>,
    /// Exact match on the invitee's user id.
    pub user: Option<String>,
    /// Exact match on the creator's user id.
    pub creator: Option<String>,
    /// Honoured only without a page token.
    pub page_size: Option<u32>,
    /// An opaque token from a previous page's `next` link.
    pub page_token: Option<String>,
}

/// The organization: invitations in creation order and users by id.
#[derive(Debug)]
pub struct Org {
    records: BTreeMap<u64, InvitationRecord>,
    by_id: HashMap<String, u64>,
    users: BTreeMap<String, UserRecord>,
    /// Ids are never reused, even across [`Org::reset`] (the API promises as much).
    ids: Ids,
    next_seq: u64,
    /// The earliest `expires_at` of a SENT invitation, to make [`Org::sweep`] cheap.
    next_expiry: Option<Timestamp>,
    /// The organization's role bindings (`super::role_bindings`).
    pub(crate) role_bindings: RoleBindings,
    /// `email=` filters compare letter case too. Confluent documents its filters as exact and
    /// does not say whether that includes case: off, the mock compares addresses
    /// case-insensitively; on, a client must find `jane@example.com` whatever case it asks in.
    pub(crate) case_sensitive_email_filter: bool,
}

impl Default for Org {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `email` looks like an address: one `@`, a non-empty local part, a dotted domain
/// without empty labels, no whitespace or control characters, at most 254 bytes.
pub fn looks_like_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        })
}

/// Validates a create request: the email's shape and the auth type (default SSO).
pub fn validate_create(req: &CreateInvitation) -> Result<(String, String), MockError> {
    let email = req.email.trim();
    if email.is_empty() {
        return Err(MockError::invalid_body(
            "/email",
            "The property '/email' is required and must not be empty",
        ));
    }
    if !looks_like_email(email) {
        return Err(MockError::invalid_body(
            "/email",
            format!("The property '/email' must be a valid email address, got '{email}'"),
        ));
    }
    let auth_type = match req.auth_type.as_deref() {
        None => AUTH_TYPE_SSO,
        Some(t @ (AUTH_TYPE_SSO | AUTH_TYPE_LOCAL)) => t,
        Some(other) => {
            return Err(MockError::invalid_body(
                "/auth_type",
                format!(
                    "The property '/auth_type' must be one of {AUTH_TYPE_SSO}, {AUTH_TYPE_LOCAL}, got '{other}'"
                ),
            ));
        }
    };
    Ok((email.to_owned(), auth_type.to_owned()))
}

fn is_live(status: &InviteStatus) -> bool {
    matches!(
        status,
        InviteStatus::Sent | InviteStatus::Staged | InviteStatus::Accepted
    )
}

/// Sent and not yet answered: what the invitee can still accept, and what can still expire.
fn is_waiting(status: &InviteStatus) -> bool {
    matches!(status, InviteStatus::Sent | InviteStatus::Staged)
}

fn is_pending(status: &InviteStatus) -> bool {
    matches!(
        status,
        InviteStatus::Sent | InviteStatus::Staged | InviteStatus::Expired
    )
}

impl Org {
    /// An empty organization.
    pub fn new() -> Self {
        Self {
            records: BTreeMap::new(),
            by_id: HashMap::new(),
            users: BTreeMap::new(),
            ids: Ids::new(),
            next_seq: 1,
            next_expiry: None,
            role_bindings: RoleBindings::default(),
            case_sensitive_email_filter: false,
        }
    }

    /// Forgets every invitation and user. Sequence numbers and issued ids keep counting, so
    /// stale page tokens and ids never alias new objects.
    pub fn reset(&mut self) {
        self.records.clear();
        self.by_id.clear();
        self.users.clear();
        self.next_expiry = None;
        self.role_bindings.reset();
    }

    /// Marks SENT invitations whose `expires_at` has passed as EXPIRED. Called before every
    /// operation, so reads, filters and the 409 rule all see the status a client would.
    pub fn sweep(&mut self, now: Timestamp) {
        match self.next_expiry {
            Some(due) if due <= now => {}
            _ => return,
        }
        let mut next = None::<Timestamp>;
        for r in self.records.values_mut() {
            if r.status != InviteStatus::Sent {
                continue;
            }
            if r.expires_at <= now {
                r.status = InviteStatus::Expired;
                r.updated_at = r.expires_at;
            } else {
                next = Some(next.map_or(r.expires_at, |n| n.min(r.expires_at)));
            }
        }
        self.next_expiry = next;
    }

    fn user_by_email(&self, email: &str) -> Option<&UserRecord> {
        self.users
            .values()
            .find(|u| u.email.eq_ignore_ascii_case(email))
    }

    /// Whether a create for `email` must answer 409: a live invitation or a member exists.
    fn email_taken(&self, email: &str) -> bool {
        self.records
            .values()
            .any(|r| is_live(&r.status) && r.email.eq_ignore_ascii_case(email))
            || self
                .users
                .values()
                .any(|u| u.member && u.email.eq_ignore_ascii_case(email))
    }

    fn insert(
        &mut self,
        email: &str,
        auth_type: &str,
        creator: &str,
        now: Timestamp,
    ) -> InvitationRecord {
        let now = whole_seconds(now);
        let user_id = match self.user_by_email(email) {
            Some(u) => u.id.clone(),
            None => {
                let id = self.ids.fresh("u-", 6);
                self.users.insert(
                    id.clone(),
                    UserRecord {
                        id: id.clone(),
                        email: email.to_owned(),
                        auth_type: auth_type.to_owned(),
                        created_at: now,
                        updated_at: now,
                        member: false,
                    },
                );
                id
            }
        };
        let id = self.ids.fresh("i-", 5);
        let expires_at = now.checked_add(INVITATION_LIFETIME).unwrap_or(now);
        let seq = self.next_seq;
        self.next_seq += 1;
        let record = InvitationRecord {
            seq,
            id: id.clone(),
            email: email.to_owned(),
            auth_type: auth_type.to_owned(),
            status: InviteStatus::Sent,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            accepted_at: None,
            expires_at,
            user_id,
            creator_id: creator.to_owned(),
        };
        self.next_expiry = Some(self.next_expiry.map_or(expires_at, |n| n.min(expires_at)));
        self.by_id.insert(id, seq);
        self.records.insert(seq, record.clone());
        record
    }

    /// `POST /iam/v2/invitations`: validates, refuses a live email with 409, else creates a
    /// SENT invitation (reusing the email's user if one exists).
    pub fn create(
        &mut self,
        req: &CreateInvitation,
        creator: &str,
        now: Timestamp,
    ) -> Result<InvitationRecord, MockError> {
        self.sweep(now);
        let (email, auth_type) = validate_create(req)?;
        if self.email_taken(&email) {
            return Err(MockError::AlreadyExists { email });
        }
        Ok(self.insert(&email, &auth_type, creator, now))
    }

    /// A test control: an invitation as if created out of band (console, CLI). Not validated;
    /// if the email already has a live invitation, that one is returned with `false`, as a real
    /// out-of-band create would have met a 409.
    pub fn seed(
        &mut self,
        email: &str,
        auth_type: Option<&str>,
        creator: &str,
        now: Timestamp,
    ) -> (InvitationRecord, bool) {
        self.sweep(now);
        if let Some(existing) = self
            .records
            .values()
            .find(|r| is_live(&r.status) && r.email.eq_ignore_ascii_case(email))
        {
            return (existing.clone(), false);
        }
        let auth_type = auth_type.unwrap_or(AUTH_TYPE_SSO);
        (self.insert(email, auth_type, creator, now), true)
    }

    fn record_mut(&mut self, id: &str) -> Result<&mut InvitationRecord, MockError> {
        self.by_id
            .get(id)
            .and_then(|seq| self.records.get_mut(seq))
            .ok_or_else(|| MockError::invitation_not_found(id))
    }

    /// Invitation `id` for a test control (`action`) that applies only in the states `applies`
    /// accepts, after the sweep at `now`; in another state the control is refused.
    fn control_target(
        &mut self,
        id: &str,
        now: Timestamp,
        action: &'static str,
        applies: impl Fn(&InviteStatus) -> bool,
    ) -> Result<&mut InvitationRecord, MockError> {
        self.sweep(now);
        let record = self.record_mut(id)?;
        if !applies(&record.status) {
            return Err(MockError::InvalidState {
                id: id.to_owned(),
                status: record.status.to_string(),
                action,
            });
        }
        Ok(record)
    }

    /// `GET /iam/v2/invitations/{id}`: any stored invitation, deactivated ones included.
    pub fn get(&mut self, id: &str, now: Timestamp) -> Result<InvitationRecord, MockError> {
        self.sweep(now);
        self.record_mut(id).map(|r| r.clone())
    }

    /// `GET /iam/v2/invitations`: filters, sorts by creation and pages.
    pub fn list(
        &mut self,
        q: &ListQuery,
        now: Timestamp,
    ) -> Result<Page<InvitationRecord>, MockError> {
        self.sweep(now);
        let cursor = pagination::start(q.page_token.as_deref(), q.page_size)?;
        let case_sensitive = self.case_sensitive_email_filter;
        Ok(pagination::page(&self.records, cursor, |r| {
            q.email.as_deref().is_none_or(|e| {
                if case_sensitive {
                    r.email == e
                } else {
                    r.email.eq_ignore_ascii_case(e)
                }
            }) && q.status.as_deref().is_none_or(|s| r.status.as_str() == s)
                && q.user.as_deref().is_none_or(|u| r.user_id == u)
                && q.creator.as_deref().is_none_or(|c| r.creator_id == c)
        }))
    }

    /// `DELETE /iam/v2/invitations/{id}`: a pending invitation becomes DEACTIVATED (and its
    /// invitee user goes away unless still needed); ACCEPTED answers 400; DEACTIVATED or
    /// unknown answers 404.
    pub fn delete(&mut self, id: &str, now: Timestamp) -> Result<(), MockError> {
        self.sweep(now);
        let now = whole_seconds(now);
        let record = self.record_mut(id)?;
        match record.status {
            InviteStatus::Accepted => Err(MockError::AlreadyAccepted { id: id.to_owned() }),
            ref s if is_pending(s) => {
                record.status = InviteStatus::Deactivated;
                record.deleted_at = Some(now);
                record.updated_at = now;
                let user = record.user_id.clone();
                self.collect_user(&user);
                Ok(())
            }
            _ => Err(MockError::invitation_not_found(id)),
        }
    }

    /// A test control: the invitee accepts; they become a member.
    pub fn accept(&mut self, id: &str, now: Timestamp) -> Result<InvitationRecord, MockError> {
        let record = self.control_target(id, now, "accept", is_waiting)?;
        let now = whole_seconds(now);
        record.status = InviteStatus::Accepted;
        record.accepted_at = Some(now);
        record.updated_at = now;
        let record = record.clone();
        if let Some(user) = self.users.get_mut(&record.user_id) {
            user.member = true;
            user.updated_at = now;
        }
        Ok(record)
    }

    /// A test control: a pending invitation expires now.
    pub fn expire(&mut self, id: &str, now: Timestamp) -> Result<InvitationRecord, MockError> {
        let record = self.control_target(id, now, "expire", is_waiting)?;
        let now = whole_seconds(now);
        record.status = InviteStatus::Expired;
        record.expires_at = now;
        record.updated_at = now;
        Ok(record.clone())
    }

    /// A test control: a pending invitation expires naturally at `at` (read as SENT until then,
    /// EXPIRED after, as the real service does).
    pub fn expire_at(
        &mut self,
        id: &str,
        at: Timestamp,
        now: Timestamp,
    ) -> Result<InvitationRecord, MockError> {
        let record = self.control_target(id, now, "expire", |s| *s == InviteStatus::Sent)?;
        let at = whole_seconds(at);
        record.expires_at = at;
        let record = record.clone();
        self.next_expiry = Some(self.next_expiry.map_or(at, |n| n.min(at)));
        Ok(record)
    }

    /// A test control: the invitation disappears entirely (GET answers 404), as if removed out
    /// of band. A member stays a member.
    pub fn remove(&mut self, id: &str) -> Result<(), MockError> {
        let seq = self
            .by_id
            .remove(id)
            .ok_or_else(|| MockError::invitation_not_found(id))?;
        if let Some(r) = self.records.remove(&seq) {
            self.collect_user(&r.user_id);
        }
        Ok(())
    }

    /// Drops a user who is no member and no longer referenced by a non-deactivated invitation.
    fn collect_user(&mut self, user_id: &str) {
        let needed = self.users.get(user_id).is_some_and(|u| u.member)
            || self
                .records
                .values()
                .any(|r| r.user_id == user_id && r.status != InviteStatus::Deactivated);
        if !needed {
            self.users.remove(user_id);
        }
    }

    /// `GET /iam/v2/users/{id}`.
    pub fn user(&self, id: &str) -> Result<UserRecord, MockError> {
        self.users
            .get(id)
            .cloned()
            .ok_or_else(|| MockError::user_not_found(id))
    }

    /// `DELETE /iam/v2/users/{id}`: the user is gone with their role bindings, and every
    /// invitation of theirs becomes DEACTIVATED, so the email can be invited again.
    pub fn delete_user(&mut self, id: &str, now: Timestamp) -> Result<(), MockError> {
        self.sweep(now);
        let now = whole_seconds(now);
        if self.users.remove(id).is_none() {
            return Err(MockError::user_not_found(id));
        }
        self.role_bindings.remove_principal(&user_principal(id));
        for r in self.records.values_mut() {
            if r.user_id == id && r.status != InviteStatus::Deactivated {
                r.status = InviteStatus::Deactivated;
                r.deleted_at = Some(now);
                r.updated_at = now;
            }
        }
        Ok(())
    }

    /// Every user, by id.
    pub fn users(&self) -> Vec<UserRecord> {
        self.users.values().cloned().collect()
    }

    /// Every stored invitation in creation order, deactivated and expired ones included.
    pub fn all(&mut self, now: Timestamp) -> Vec<InvitationRecord> {
        self.sweep(now);
        self.records.values().cloned().collect()
    }

    /// The SENT/STAGED/ACCEPTED invitations of `email` (case-insensitive).
    pub fn live_for(&mut self, email: &str, now: Timestamp) -> Vec<InvitationRecord> {
        self.sweep(now);
        self.records
            .values()
            .filter(|r| is_live(&r.status) && r.email.eq_ignore_ascii_case(email))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests;
