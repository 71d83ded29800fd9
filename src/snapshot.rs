//! Batch observation: one paginated list per credential and resync interval gives the remote
//! state of every invitation, so the operator spends ⌈N/100⌉ calls per resync instead of N.
//!
//! Reconciles read the snapshot instead of one GET each, and fall back to a single GET for an id
//! the snapshot does not hold (created since, or removed out of band). The controller's sweeper
//! refreshes each snapshot once per resync and wakes exactly the resources whose remote state
//! changed. Invitations this operator creates or adopts are recorded in the snapshot at once, so
//! they do not cost a GET until the next refresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::confluent::{self, ListFilter, model::Invitation};

/// The remote invitations visible to one credential, as of `taken_at`.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// When the list that built it started: anything created later may be missing.
    pub taken_at: Option<Instant>,
    by_id: HashMap<String, Invitation>,
    /// lower-cased email -> ids
    by_email: HashMap<String, Vec<String>>,
}

impl Snapshot {
    /// A snapshot of `invitations`, listed starting at `taken_at`.
    pub fn new(taken_at: Instant, invitations: Vec<Invitation>) -> Self {
        let mut s = Self {
            taken_at: Some(taken_at),
            ..Self::default()
        };
        for inv in invitations {
            s.upsert(inv);
        }
        s
    }

    /// The invitation with this id, if the snapshot holds it.
    pub fn get(&self, id: &str) -> Option<&Invitation> {
        self.by_id.get(id)
    }

    /// Every invitation for this email (compared case-insensitively).
    pub fn for_email(&self, email: &str) -> Vec<Invitation> {
        self.by_email
            .get(&email.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id).cloned())
            .collect()
    }

    /// Number of invitations held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    fn upsert(&mut self, inv: Invitation) {
        let Some(id) = inv.id.clone() else { return };
        if let Some(email) = &inv.email {
            let ids = self.by_email.entry(email.to_ascii_lowercase()).or_default();
            if !ids.contains(&id) {
                ids.push(id.clone());
            }
        }
        self.by_id.insert(id, inv);
    }
}

/// One credential's snapshot and the client that refreshes it.
struct Entry {
    client: confluent::Client,
    current: RwLock<Arc<Snapshot>>,
    /// Single flight: concurrent reconciles needing a refresh wait for one list, not N.
    refreshing: tokio::sync::Mutex<()>,
    /// When the last refresh failed: those who waited for it back off instead of listing again.
    failed_at: Mutex<Option<Instant>>,
}

/// The snapshots of every credential in use. Bounded by the number of distinct credentials.
pub struct Snapshots {
    max_age: Duration,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
}

impl Snapshots {
    /// Snapshots considered fresh for `max_age` (the resync interval).
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        // Entries are replaced whole: a poisoned map is still consistent.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn entry(&self, client: &confluent::Client) -> Arc<Entry> {
        self.entries()
            .entry(client.identity())
            .or_insert_with(|| {
                Arc::new(Entry {
                    client: client.clone(),
                    current: RwLock::new(Arc::new(Snapshot::default())),
                    refreshing: tokio::sync::Mutex::new(()),
                    failed_at: Mutex::new(None),
                })
            })
            .clone()
    }

    /// A snapshot for `client`'s credential no older than the maximum age, listing when needed.
    pub async fn fresh(
        &self,
        client: &confluent::Client,
    ) -> Result<Arc<Snapshot>, confluent::Error> {
        let entry = self.entry(client);
        let is_fresh = |s: &Snapshot| s.taken_at.is_some_and(|t| t.elapsed() < self.max_age);
        let current = read(&entry);
        if is_fresh(&current) {
            return Ok(current);
        }
        let waited_from = Instant::now();
        let _flight = entry.refreshing.lock().await;
        let current = read(&entry);
        if is_fresh(&current) {
            return Ok(current); // refreshed by the flight we waited for
        }
        let failed_at = *entry.failed_at.lock().unwrap_or_else(|e| e.into_inner());
        if failed_at.is_some_and(|at| at >= waited_from) {
            // the flight we waited for failed (429, 5xx, network): repeating it now, once per
            // waiting reconcile, would only make it worse
            return Err(confluent::Error::Network {
                operation: "list_invitations",
                message: "the snapshot refresh this reconcile waited for failed; backing off"
                    .into(),
            });
        }
        refresh(&entry).await
    }

    /// Lists again for every credential in use, whatever the age; returns each credential's
    /// identity with its new snapshot (or the error that prevented it).
    pub async fn refresh_all(&self) -> Vec<(String, Result<Arc<Snapshot>, confluent::Error>)> {
        let entries: Vec<(String, Arc<Entry>)> = self
            .entries()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out = Vec::with_capacity(entries.len());
        for (identity, entry) in entries {
            let _flight = entry.refreshing.lock().await;
            out.push((identity, refresh(&entry).await));
        }
        out
    }

    /// Records an invitation this operator just created, adopted or read, so the next reconcile
    /// finds it without a GET.
    pub fn record(&self, client: &confluent::Client, inv: &Invitation) {
        let entry = self.entry(client);
        let mut guard = entry.current.write().unwrap_or_else(|e| e.into_inner());
        let mut next = Snapshot {
            taken_at: guard.taken_at,
            by_id: guard.by_id.clone(),
            by_email: guard.by_email.clone(),
        };
        next.upsert(inv.clone());
        *guard = Arc::new(next);
    }
}

fn read(entry: &Entry) -> Arc<Snapshot> {
    entry
        .current
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

async fn refresh(entry: &Entry) -> Result<Arc<Snapshot>, confluent::Error> {
    let started = Instant::now();
    let all = entry
        .client
        .list_invitations(&ListFilter::default())
        .await?;
    let snapshot = Arc::new(Snapshot::new(started, all));
    *entry.current.write().unwrap_or_else(|e| e.into_inner()) = snapshot.clone();
    tracing::debug!(
        credential = %entry.client.identity(),
        invitations = snapshot.len(),
        elapsed = ?started.elapsed(),
        "remote snapshot refreshed"
    );
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confluent::model::InviteStatus;

    fn inv(id: &str, email: &str) -> Invitation {
        Invitation {
            id: Some(id.into()),
            email: Some(email.into()),
            status: Some(InviteStatus::Sent),
            ..Default::default()
        }
    }

    #[test]
    fn indexes_by_id_and_case_insensitive_email() {
        let mut s = Snapshot::new(
            Instant::now(),
            vec![
                inv("i-1", "Jane@Example.com"),
                inv("i-2", "jane@example.com"),
                inv("i-3", "x@y.io"),
            ],
        );
        assert_eq!(s.len(), 3);
        assert_eq!(s.get("i-3").unwrap().email.as_deref(), Some("x@y.io"));
        assert_eq!(s.for_email("JANE@example.COM").len(), 2);
        assert!(s.for_email("nobody@example.com").is_empty());
        // an update replaces, never duplicates
        let mut accepted = inv("i-1", "jane@example.com");
        accepted.status = Some(InviteStatus::Accepted);
        s.upsert(accepted);
        assert_eq!(s.len(), 3);
        assert_eq!(s.for_email("jane@example.com").len(), 2);
        assert_eq!(s.get("i-1").unwrap().status, Some(InviteStatus::Accepted));
        // no id: ignored
        s.upsert(Invitation::default());
        assert_eq!(s.len(), 3);
    }
}
