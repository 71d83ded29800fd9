//! The state shared by the HTTP handlers and the in-process test controls ([`MockHandle`]), so a
//! test can drive the organization (accept, expire, remove, inject faults) without HTTP.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::auth::Credentials;
use super::error::MockError;
use super::faults::{Fault, FaultQueue};
use super::ratelimit::RateLimiter;
use super::state::Org;
use super::sync::lock;
use super::wire::Links;
use super::{CallCounts, RateLimit};
use confluent_client::model::{RemoteInvitation, User};

/// Everything one mock server holds.
#[derive(Debug)]
pub(crate) struct Shared {
    pub org: Mutex<Org>,
    pub org_id: String,
    /// The organizations of [`super::OtherOrganization`] keys, by uuid.
    pub others: std::collections::HashMap<String, Mutex<Org>>,
    /// `http://127.0.0.1:PORT`: links for in-process controls and requests without `Host`.
    pub base_url: String,
    /// Replaceable at run time ([`MockHandle::set_api_keys`]): key rotation and revocation.
    pub credentials: Mutex<Credentials>,
    /// The creator of seeded (out-of-band) invitations: an organization admin in the console.
    pub console_admin: String,
    pub latency: Mutex<Duration>,
    pub limiter: RateLimiter,
    pub faults: FaultQueue,
    pub calls: Mutex<CallCounts>,
    /// The role-binding operations' counters (kept apart from [`CallCounts`], whose fields
    /// callers build literally).
    pub role_binding_calls: Mutex<super::RoleBindingCalls>,
    /// The STS: identity pools, issued tokens, exchange counters.
    pub sts: Mutex<super::sts::StsState>,
}

impl Shared {
    /// Links built on the server's own base URL.
    pub fn links(&self) -> Links<'_> {
        self.links_for(&self.base_url)
    }

    /// Links built on a given base URL (the one a client used).
    pub fn links_for<'a>(&'a self, base: &'a str) -> Links<'a> {
        Links {
            base,
            org: &self.org_id,
        }
    }

    /// The organization a caller acts on, and its uuid.
    pub fn org_of(&self, caller: &super::auth::Caller) -> (&Mutex<Org>, &str) {
        match caller
            .org_id
            .as_deref()
            .and_then(|id| self.others.get_key_value(id))
        {
            Some((id, org)) => (org, id.as_str()),
            None => (&self.org, self.org_id.as_str()),
        }
    }

    /// Links of `org_id`'s objects built on a given base URL.
    pub fn links_in<'a>(&'a self, base: &'a str, org_id: &'a str) -> Links<'a> {
        Links { base, org: org_id }
    }

    /// Updates the call counters.
    pub fn count(&self, f: impl FnOnce(&mut CallCounts)) {
        f(&mut lock(&self.calls));
    }
}

/// Direct access to a running mock's organization and controls; a cheap clone, usable from any
/// thread. Offers the same operations as the HTTP control endpoints under `/_mock/`.
#[derive(Clone, Debug)]
pub struct MockHandle {
    pub(crate) shared: Arc<Shared>,
}

impl MockHandle {
    /// Every invitation in creation order, deactivated and expired ones included.
    pub fn invitations(&self) -> Vec<RemoteInvitation> {
        let records = lock(&self.shared.org).all(Timestamp::now());
        let links = self.shared.links();
        records.iter().map(|r| links.invitation(r)).collect()
    }

    /// The SENT/STAGED/ACCEPTED invitations of `email` (case-insensitive): what a create would
    /// collide with.
    pub fn live_invitations_for(&self, email: &str) -> Vec<RemoteInvitation> {
        let records = lock(&self.shared.org).live_for(email, Timestamp::now());
        let links = self.shared.links();
        records.iter().map(|r| links.invitation(r)).collect()
    }

    /// The same in another organization ([`super::OtherOrganization`]); empty for an unknown one.
    pub fn live_invitations_in(&self, org_id: &str, email: &str) -> Vec<RemoteInvitation> {
        let Some(org) = self.shared.others.get(org_id) else {
            return Vec::new();
        };
        let records = lock(org).live_for(email, Timestamp::now());
        let links = self.shared.links_in(&self.shared.base_url, org_id);
        records.iter().map(|r| links.invitation(r)).collect()
    }

    /// Sets how many role bindings the main organization may hold (default
    /// [`crate::role_bindings::QUOTA`]): a create beyond it answers 402 `quota_exceeded`.
    pub fn set_role_binding_quota(&self, quota: usize) {
        lock(&self.shared.org).role_bindings.quota = quota;
    }

    /// Makes the main organization's `email=` filter compare letter case too, or not (off by
    /// default: Confluent documents its filters as exact without saying whether case counts).
    pub fn set_case_sensitive_email_filter(&self, on: bool) {
        lock(&self.shared.org).case_sensitive_email_filter = on;
    }

    /// Every invitation of another organization ([`super::OtherOrganization`]) in creation
    /// order, deactivated and expired ones included; empty for an unknown one.
    pub fn invitations_in(&self, org_id: &str) -> Vec<RemoteInvitation> {
        let Some(org) = self.shared.others.get(org_id) else {
            return Vec::new();
        };
        let records = lock(org).all(Timestamp::now());
        let links = self.shared.links_in(&self.shared.base_url, org_id);
        records.iter().map(|r| links.invitation(r)).collect()
    }

    /// Creates an invitation as if made out of band (console, CLI), without validation. If the
    /// email already has a live invitation, that one is returned instead (the real service would
    /// not allow a second).
    pub fn seed_invitation(&self, email: &str, auth_type: Option<&str>) -> RemoteInvitation {
        self.seed(email, auth_type).0
    }

    /// [`Self::seed_invitation`], also telling whether a new invitation was created.
    pub(crate) fn seed(&self, email: &str, auth_type: Option<&str>) -> (RemoteInvitation, bool) {
        let (record, created) = lock(&self.shared.org).seed(
            email,
            auth_type,
            &self.shared.console_admin,
            Timestamp::now(),
        );
        (self.shared.links().invitation(&record), created)
    }

    /// The invitee accepts a SENT or STAGED invitation and becomes a member.
    pub fn accept(&self, id: &str) -> Result<RemoteInvitation, MockError> {
        let record = lock(&self.shared.org).accept(id, Timestamp::now())?;
        Ok(self.shared.links().invitation(&record))
    }

    /// A SENT or STAGED invitation expires now (status EXPIRED, `expires_at` = now).
    pub fn expire(&self, id: &str) -> Result<RemoteInvitation, MockError> {
        let record = lock(&self.shared.org).expire(id, Timestamp::now())?;
        Ok(self.shared.links().invitation(&record))
    }

    /// A SENT invitation expires naturally at `at`: SENT until then, EXPIRED from then on.
    pub fn expire_at(&self, id: &str, at: Timestamp) -> Result<RemoteInvitation, MockError> {
        let record = lock(&self.shared.org).expire_at(id, at, Timestamp::now())?;
        Ok(self.shared.links().invitation(&record))
    }

    /// Adds (or replaces, unrevoked) an STS identity pool.
    pub fn set_sts_pool(&self, pool: super::StsPool) {
        lock(&self.shared.sts).set_pool(pool);
    }

    /// Revokes an identity pool: its exchanges answer 401 `invalid_grant`, and the tokens it
    /// issued answer 401 on `/iam/v2`. `false` when there is no such pool.
    pub fn revoke_sts_pool(&self, id: &str) -> bool {
        lock(&self.shared.sts).set_revoked(id, true)
    }

    /// Restores a revoked identity pool (its unexpired tokens work again).
    pub fn restore_sts_pool(&self, id: &str) -> bool {
        lock(&self.shared.sts).set_revoked(id, false)
    }

    /// Sets the longest life of the STS tokens issued from now on.
    pub fn set_sts_token_lifetime(&self, lifetime: Duration) {
        lock(&self.shared.sts).set_lifetime(lifetime);
    }

    /// STS exchanges by result since the start (or the last [`Self::reset`]).
    pub fn sts_exchanges(&self) -> super::StsExchanges {
        lock(&self.shared.sts).counts()
    }

    /// The `sub` of every subject JWT exchanged successfully, in order (empty when absent).
    pub fn sts_subjects(&self) -> Vec<String> {
        lock(&self.shared.sts).subjects()
    }

    /// When each token was issued, in order: how close two exchanges of one credential came
    /// (one at a time, renewed at half a short life, means never closer than that half).
    pub fn sts_issued_at(&self) -> Vec<Instant> {
        lock(&self.shared.sts).issued_at()
    }

    /// Replaces the accepted API keys (tokens stay): a key left out is revoked (401 from now
    /// on), a new one is accepted. A key keeps its principal across changes of its secret.
    pub fn set_api_keys(&self, api_keys: &[(String, String)]) {
        let mut credentials = lock(&self.shared.credentials);
        credentials.set_api_keys(api_keys);
    }

    /// Removes an invitation entirely, as if deleted out of band: GET answers 404 afterwards.
    pub fn remove(&self, id: &str) -> Result<(), MockError> {
        lock(&self.shared.org).remove(id)
    }

    /// Every user of the organization: invitees (from invitation on) and members.
    pub fn users(&self) -> Vec<User> {
        let users = lock(&self.shared.org).users();
        let links = self.shared.links();
        users.iter().map(|u| links.user(u)).collect()
    }

    /// Sets the delay added before every `/iam/v2` request.
    pub fn set_latency(&self, d: Duration) {
        *lock(&self.shared.latency) = d;
    }

    /// The delay added before every `/iam/v2` request.
    pub fn latency(&self) -> Duration {
        *lock(&self.shared.latency)
    }

    /// Replaces the per-credential rate limit (`None`: unlimited); buckets start full.
    pub fn set_rate_limit(&self, r: Option<RateLimit>) {
        self.shared.limiter.set(r);
    }

    /// The rate limit in force (after sanitizing: burst ≥ 1, rate > 0).
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.shared.limiter.get()
    }

    /// Queues a fault for the next matching `/iam/v2` requests.
    pub fn inject(&self, fault: Fault) {
        self.shared.faults.push(fault);
    }

    /// Drops the faults not yet consumed (a refusal that lasted until the test saw it ends).
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// The faults not yet consumed.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.shared.faults.pending()
    }

    /// A snapshot of the call counters.
    pub fn calls(&self) -> CallCounts {
        lock(&self.shared.calls).clone()
    }

    /// Forgets invitations, users, role bindings, pending faults and counters (STS counters and
    /// subjects too; pools and issued tokens stay), and refills the
    /// rate-limit buckets. Credentials, the organization id, the latency and the rate-limit
    /// setting stay.
    pub fn reset(&self) {
        lock(&self.shared.org).reset();
        self.shared.faults.clear();
        self.shared.limiter.refill();
        *lock(&self.shared.calls) = CallCounts::default();
        *lock(&self.shared.role_binding_calls) = super::RoleBindingCalls::default();
        lock(&self.shared.sts).reset_counts();
    }
}
