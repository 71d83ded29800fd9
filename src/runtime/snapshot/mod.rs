//! Batch observation: one paginated list per credential and resync interval gives the remote
//! state of every invitation, so the operator spends ⌈N/100⌉ calls per resync instead of N.
//!
//! Reconciles read the snapshot instead of one GET each, and fall back to a single GET for an id
//! the snapshot does not hold (created since, or removed out of band). The controller's sweeper
//! refreshes each snapshot once per resync and wakes exactly the resources whose remote state
//! changed. Invitations this operator creates or adopts are recorded in the snapshot at once, so
//! they do not cost a GET until the next refresh.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;

use confluent_client::{ListFilter, ServerRefusal, model::RemoteInvitation};

mod packed;
pub mod role_binding_lists;
use packed::Packed;

/// How old a snapshot a reconcile may read, for a resync interval: one and a half intervals, so
/// the sweeper's once-per-interval refresh keeps it fresh with room for a slow list, and only a
/// refresh that failed (or never ran) makes a reconcile list or GET by itself.
pub fn max_age(resync: Duration) -> Duration {
    resync.saturating_mul(3) / 2
}

/// The remote invitations visible to one credential, as of `taken_at`.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// When the list that built it started: anything created later may be missing.
    pub taken_at: Option<Instant>,
    /// id -> what the planner and status read of the invitation, packed ([`Packed`]).
    by_id: HashMap<Box<str>, Packed>,
    /// lower-cased email -> ids
    by_email: HashMap<Box<str>, Vec<Box<str>>>,
    /// Ids recorded since `taken_at`, with when: a page fetched before a record must not
    /// overwrite it, and the end of a refresh must not drop it. Emptied as refreshes pass.
    recorded: HashMap<String, Instant>,
}

impl Snapshot {
    /// A snapshot of `invitations`, listed starting at `taken_at` (refreshes update the one
    /// snapshot in place; tests build one whole).
    #[cfg(test)]
    pub fn new(taken_at: Instant, invitations: Vec<RemoteInvitation>) -> Self {
        let mut s = Self {
            taken_at: Some(taken_at),
            ..Self::default()
        };
        for inv in &invitations {
            s.upsert(inv);
        }
        s
    }

    /// The invitation with this id, if the snapshot holds it (what the planner and status read).
    pub fn get(&self, id: &str) -> Option<RemoteInvitation> {
        self.by_id.get(id).map(|p| p.unpack(id))
    }

    /// Every invitation for this email (compared case-insensitively).
    pub fn for_email(&self, email: &str) -> Vec<RemoteInvitation> {
        self.by_email
            .get(email.to_ascii_lowercase().as_str())
            .into_iter()
            .flatten()
            .filter_map(|id| self.get(id))
            .collect()
    }

    /// The Confluent organization these invitations belong to: the `organization=` part of the
    /// first CRN held (one credential acts on one organization). None while it holds none.
    pub fn organization(&self) -> Option<String> {
        self.by_id.iter().find_map(|(id, p)| {
            let inv = p.unpack(id);
            confluent_client::role_bindings::organization_of(inv.resource_name()?)
                .map(str::to_owned)
        })
    }

    /// Number of invitations held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    fn upsert(&mut self, inv: &RemoteInvitation) {
        if let Some(id) = &inv.id {
            self.insert(id, Packed::new(inv));
        }
    }

    fn insert(&mut self, id: &str, inv: Packed) {
        if let Some(email) = inv.email() {
            let ids = self
                .by_email
                .entry(email.to_ascii_lowercase().into_boxed_str())
                .or_default();
            if !ids.iter().any(|i| **i == *id) {
                ids.push(id.into());
            }
        }
        match self.by_id.get_mut(id) {
            Some(held) => *held = inv,
            None => {
                self.by_id.insert(id.into(), inv);
            }
        }
    }

    /// Records what a reconcile learned; nothing when the snapshot says the same already.
    fn record(&mut self, inv: &RemoteInvitation, now: Instant) {
        let Some(id) = &inv.id else { return };
        let packed = Packed::new(inv);
        if self.by_id.get(id.as_str()) == Some(&packed) {
            return;
        }
        self.recorded.insert(id.clone(), now);
        self.insert(id, packed);
    }

    /// Applies one page of a refresh fetched from `asked`: what was recorded after that is newer
    /// and stays. Adds the ids the page showed to `seen`.
    fn apply_page(
        &mut self,
        page: Vec<RemoteInvitation>,
        asked: Instant,
        seen: &mut HashSet<String>,
    ) {
        for inv in page {
            let Some(id) = inv.id.clone() else { continue };
            if self.recorded.get(&id).is_none_or(|at| *at <= asked) {
                self.upsert(&inv);
            }
            seen.insert(id);
        }
    }

    /// Ends a refresh whose list started at `started`: what it did not show is gone, unless it
    /// was recorded since (created meanwhile).
    fn finish_refresh(&mut self, started: Instant, seen: &HashSet<String>) {
        self.recorded.retain(|_, at| *at >= started);
        let recorded = &self.recorded;
        let mut gone = Vec::new();
        self.by_id.retain(|id, inv| {
            let keep = seen.contains(&**id) || recorded.contains_key(&**id);
            if !keep {
                gone.push((id.clone(), inv.email().map(str::to_ascii_lowercase)));
            }
            keep
        });
        for (id, email) in gone {
            let Some(key) = email else { continue };
            if let Some(ids) = self.by_email.get_mut(key.as_str()) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    self.by_email.remove(key.as_str());
                }
            }
        }
        self.taken_at = Some(started);
    }
}

/// How soon after a failed list a reader that can do without ([`Snapshots::fresh_unless_listing`])
/// lists again: one after the other, the resources reconciled at once would each start one.
const LIST_AGAIN_AFTER: Duration = Duration::from_secs(2);

/// A refresh that failed, as those who waited for it are told.
#[derive(Clone, Copy, Debug)]
struct Failure {
    at: Instant,
    /// Until when the credential's budget is spent, if the list was refused for that (a 429,
    /// or the limiter's own wait): the waiters' reads would spend the same budget.
    rate_limited_until: Option<Instant>,
}

/// One credential's snapshot and the client that refreshes it.
struct Entry {
    client: confluent_client::Client,
    /// Read and written in place under the lock, never handed out: a reader keeps only what it
    /// looked up, so a record never has to copy the whole map.
    current: RwLock<Snapshot>,
    /// Single flight: concurrent reconciles needing a refresh wait for one list, not N.
    refreshing: tokio::sync::Mutex<()>,
    /// How the last refresh failed: those who waited for it back off instead of listing again.
    failed: Mutex<Option<Failure>>,
    /// Confluent's refusal of the credential itself (401, or a 403 blaming the key), from the
    /// last refresh: definitive, so reads answer it instead of a snapshot that can no longer be
    /// refreshed. Cleared by the next refresh that succeeds.
    refused: Mutex<Option<ServerRefusal>>,
}

impl Entry {
    fn read(&self) -> parking_lot::RwLockReadGuard<'_, Snapshot> {
        self.current.read()
    }

    fn write(&self) -> parking_lot::RwLockWriteGuard<'_, Snapshot> {
        self.current.write()
    }

    /// The credential's refusal, if its last refresh met one.
    fn refusal(&self) -> Option<confluent_client::Error> {
        let refused = self.refused.lock();
        refused
            .clone()
            .map(confluent_client::Error::Unauthenticated)
    }
}

/// The snapshots of every credential in use, one per client ([`confluent_client::Client::key`]): a
/// Secret whose credentials changed gets a new client, hence a new snapshot listed with the new
/// secret. Bounded by the number of distinct credentials: the sweeper drops those no longer
/// in use ([`Snapshots::retain`]).
pub struct Snapshots {
    max_age: Duration,
    entries: Mutex<HashMap<u64, Arc<Entry>>>,
}

impl Snapshots {
    /// Snapshots considered fresh for `max_age` ([`max_age`] of the resync interval).
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> parking_lot::MutexGuard<'_, HashMap<u64, Arc<Entry>>> {
        self.entries.lock()
    }

    fn entry(&self, client: &confluent_client::Client) -> Arc<Entry> {
        self.entries()
            .entry(client.key())
            .or_insert_with(|| {
                Arc::new(Entry {
                    client: client.clone(),
                    current: RwLock::new(Snapshot::default()),
                    refreshing: tokio::sync::Mutex::new(()),
                    failed: Mutex::new(None),
                    refused: Mutex::new(None),
                })
            })
            .clone()
    }

    /// The client of a credential in use, by key.
    pub fn client(&self, key: u64) -> Option<confluent_client::Client> {
        self.entries().get(&key).map(|e| e.client.clone())
    }

    /// Makes sure the sweeper refreshes `client`'s snapshot from now on.
    pub fn track(&self, client: &confluent_client::Client) {
        self.entry(client);
    }

    /// Drops the snapshots of clients `in_use` rejects (replaced by a changed Secret, or no
    /// longer used by any resource): their lists would use credentials no resource uses.
    pub fn retain(&self, in_use: impl Fn(u64) -> bool) {
        self.entries().retain(|key, _| in_use(*key));
    }

    /// Whether `entry`'s snapshot is younger than the maximum age.
    fn is_fresh(&self, entry: &Entry) -> bool {
        entry
            .read()
            .taken_at
            .is_some_and(|t| t.elapsed() < self.max_age)
    }

    /// Answers `look` from a snapshot of `client`'s credential no older than the maximum age,
    /// listing first when needed. `look` runs under the snapshot's read lock: keep it short.
    pub async fn fresh<R>(
        &self,
        client: &confluent_client::Client,
        look: impl FnOnce(&Snapshot) -> R,
    ) -> Result<R, confluent_client::Error> {
        let entry = self.entry(client);
        if let Some(refused) = entry.refusal() {
            // the credential was refused: no snapshot of it, fresh or not, is the truth now
            return Err(refused);
        }
        if self.is_fresh(&entry) {
            return Ok(look(&entry.read()));
        }
        let waited_from = Instant::now();
        let _flight = entry.refreshing.lock().await;
        if self.is_fresh(&entry) {
            return Ok(look(&entry.read())); // refreshed by the flight we waited for
        }
        if let Some(refused) = entry.refusal() {
            return Err(refused); // the flight we waited for was refused
        }
        let failed = *entry.failed.lock();
        if let Some(failed) = failed.filter(|f| f.at >= waited_from) {
            // the flight we waited for failed (429, 5xx, network): repeating it now, once per
            // waiting reconcile, would only make it worse
            return Err(match failed.rate_limited_until {
                Some(until) => confluent_client::Error::RateLimited {
                    retry_after: until.saturating_duration_since(Instant::now()),
                    request_id: None,
                },
                None => confluent_client::Error::Network {
                    operation: "list_invitations",
                    message: "the snapshot refresh this reconcile waited for failed; backing off"
                        .into(),
                },
            });
        }
        refresh(&entry).await?;
        Ok(look(&entry.read()))
    }

    /// Like [`Snapshots::fresh`], for a reader that can do without: an unchanged resource,
    /// reconciled again (after a restart or a watch re-list, every resource at once), whose
    /// remote changes the sweeper's next refresh reports anyway. When the snapshot is not fresh
    /// and a list is already in flight, or the last one failed moments ago, `Ok(None)` at once:
    /// waiting for it would hold a worker per resource for the length of a list (on an outage,
    /// many seconds), and resources that changed, or are new, would queue behind them all.
    /// Otherwise it lists, as [`Snapshots::fresh`] does.
    pub async fn fresh_unless_listing<R>(
        &self,
        client: &confluent_client::Client,
        look: impl FnOnce(&Snapshot) -> R,
    ) -> Result<Option<R>, confluent_client::Error> {
        let entry = self.entry(client);
        if let Some(refused) = entry.refusal() {
            return Err(refused);
        }
        if self.is_fresh(&entry) {
            return Ok(Some(look(&entry.read())));
        }
        let Ok(_flight) = entry.refreshing.try_lock() else {
            return Ok(None);
        };
        if self.is_fresh(&entry) {
            return Ok(Some(look(&entry.read())));
        }
        let failed = *entry.failed.lock();
        let now = Instant::now();
        if failed.is_some_and(|f| {
            now.saturating_duration_since(f.at) < LIST_AGAIN_AFTER
                || f.rate_limited_until.is_some_and(|until| until > now)
        }) {
            return Ok(None);
        }
        refresh(&entry).await?;
        Ok(Some(look(&entry.read())))
    }

    /// Answers `look` from `client`'s snapshot as it stands, however old, without listing: for
    /// a reader that confirms what it finds by other calls.
    pub fn held<R>(
        &self,
        client: &confluent_client::Client,
        look: impl FnOnce(&Snapshot) -> R,
    ) -> R {
        look(&self.entry(client).read())
    }

    /// How long past its maximum age `client`'s snapshot is (zero while fresh, or never taken).
    pub fn overdue(&self, client: &confluent_client::Client) -> Duration {
        let entry = self.entry(client);
        let taken_at = entry.read().taken_at;
        taken_at.map_or(Duration::ZERO, |t| t.elapsed().saturating_sub(self.max_age))
    }

    /// Lists again for every credential in use, whatever the age, and runs `look` on each new
    /// snapshot with the client's key and the credential's identity (or reports the error that
    /// prevented it).
    pub async fn refresh_all(
        &self,
        mut look: impl FnMut(u64, &str, Result<&Snapshot, confluent_client::Error>),
    ) {
        let entries: Vec<(u64, Arc<Entry>)> = self
            .entries()
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for (key, entry) in entries {
            let _flight = entry.refreshing.lock().await;
            let identity = entry.client.identity();
            match refresh(&entry).await {
                Ok(()) => look(key, &identity, Ok(&entry.read())),
                Err(e) => look(key, &identity, Err(e)),
            }
        }
    }

    /// Records an invitation this operator just created, adopted or read, so the next reconcile
    /// finds it without a GET. In place and O(1): this runs after every successful reconcile.
    pub fn record(&self, client: &confluent_client::Client, inv: &RemoteInvitation) {
        self.entry(client).write().record(inv, Instant::now());
    }
}

/// Lists again, page by page, updating the snapshot in place: no second copy of it and no
/// list of everything are ever held.
async fn refresh(entry: &Entry) -> Result<(), confluent_client::Error> {
    let started = Instant::now();
    let mut seen = HashSet::new();
    let mut pages = std::pin::pin!(entry.client.list_pages(&ListFilter::default()));
    loop {
        let asked = Instant::now();
        match pages.try_next().await {
            Ok(Some(page)) => entry.write().apply_page(page, asked, &mut seen),
            Ok(None) => break,
            Err(e) => {
                let at = Instant::now();
                let rate_limited_until = match &e {
                    confluent_client::Error::RateLimited { retry_after, .. } => {
                        Some(at + *retry_after)
                    }
                    _ => None,
                };
                *entry.failed.lock() = Some(Failure {
                    at,
                    rate_limited_until,
                });
                if let confluent_client::Error::Unauthenticated(r) = &e {
                    *entry.refused.lock() = Some(r.clone());
                }
                return Err(e);
            }
        }
    }
    *entry.refused.lock() = None;
    let held = {
        let mut current = entry.write();
        current.finish_refresh(started, &seen);
        current.len()
    };
    tracing::debug!(
        credential = %entry.client.identity(),
        invitations = held,
        elapsed = ?started.elapsed(),
        "remote snapshot refreshed"
    );
    Ok(())
}

#[cfg(test)]
mod tests;
