//! What the benchmark measures besides time: the operator's RSS and CPU from /proc, the API
//! server's count of the operator's writes, the mock's call counts, the remote state left behind
//! and the operator's log.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confluent_mock::{CallCounts, MockHandle, RoleBindingCalls};
use test_support::lock;

use crate::invitations::{Bindings, email_of};
use crate::machine::command_output;

/// The mock's (and Confluent's) largest page: what the physical bound counts list pages in.
pub const PAGE: u64 = 100;

/// One reading of /proc for the operator.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub cpu_ticks: u64,
}

impl ProcSample {
    pub fn read(pid: u32) -> Option<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib = |key: &str| -> Option<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // after the command name in parentheses: field 3 (state) is index 0, so utime (14) and
        // stime (15) are 11 and 12
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some(Self {
            rss_kib: kib("VmRSS:")?,
            hwm_kib: kib("VmHWM:")?,
            cpu_ticks: utime + stime,
        })
    }
}

/// Samples the operator every second in the background.
#[derive(Clone)]
pub struct Sampler {
    pub samples: Arc<Mutex<Vec<(Instant, ProcSample)>>>,
    pub ticks_per_second: f64,
}

impl Sampler {
    pub fn start(pid: u32) -> (Self, tokio::task::JoinHandle<()>) {
        let ticks_per_second = command_output("getconf".as_ref(), &["CLK_TCK"])
            .and_then(|s| s.parse().ok())
            .unwrap_or(100.0);
        let s = Self {
            samples: Arc::default(),
            ticks_per_second,
        };
        let samples = s.samples.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                match ProcSample::read(pid) {
                    Some(p) => lock(&samples).push((Instant::now(), p)),
                    None => return,
                }
            }
        });
        (s, task)
    }

    /// Reads now (not waiting for the next tick) and records it.
    pub fn now(&self, pid: u32) -> ProcSample {
        match ProcSample::read(pid) {
            Some(p) => {
                lock(&self.samples).push((Instant::now(), p));
                p
            }
            None => self.last(),
        }
    }

    pub fn last(&self) -> ProcSample {
        lock(&self.samples).last().map(|s| s.1).unwrap_or_default()
    }

    pub fn cpu_secs(&self, from: ProcSample, to: ProcSample) -> f64 {
        to.cpu_ticks.saturating_sub(from.cpu_ticks) as f64 / self.ticks_per_second
    }

    /// The largest RSS sampled in [from, to].
    pub fn max_rss_kib(&self, from: Instant, to: Instant) -> u64 {
        lock(&self.samples)
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, p)| p.rss_kib)
            .max()
            .unwrap_or(0)
    }
}

/// The API server's count of write requests (not deletes) to Invitations and Events since it
/// started, from its /metrics; `None` if unreadable.
pub async fn kube_writes(kube: &kube::Client) -> Option<u64> {
    let req = http::Request::get("/metrics").body(Vec::new()).ok()?;
    let text = kube.request_text(req).await.ok()?;
    let writes = ["POST", "PUT", "PATCH", "APPLY"];
    let total: f64 = text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| {
            (l.contains("resource=\"invitations\"") || l.contains("resource=\"events\""))
                && writes.iter().any(|v| l.contains(&format!("verb=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    Some(total as u64)
}

/// The 1-minute load average: how busy the (shared) machine was.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The physical bound: N creates and ⌈N/100⌉ list pages at the rate limit, what an operator
/// that lists the whole organization once and then only creates would need.
pub fn physical_bound(n: u64, rate: f64) -> Duration {
    Duration::from_secs_f64((n + n.div_ceil(PAGE)) as f64 / rate)
}

/// The physical bound with role bindings: also the N·K binding creates and one list per scope
/// in use (its pages once all are bound) at the rate limit.
pub fn bound_with_bindings(n: u64, rate: f64, bindings: Bindings) -> Duration {
    let extra = n * bindings.per_invitation + bindings.list_pages(n, PAGE);
    physical_bound(n, rate) + Duration::from_secs_f64(extra as f64 / rate)
}

/// The role-binding calls between two readings of the mock's counters.
pub fn diff_role_bindings(a: &RoleBindingCalls, b: &RoleBindingCalls) -> RoleBindingCalls {
    RoleBindingCalls {
        list: b.list - a.list,
        create: b.create - a.create,
        get: b.get - a.get,
        delete: b.delete - a.delete,
    }
}

/// What the mock holds of the listed bindings once the run is over.
#[derive(Clone, Copy, Debug, Default)]
pub struct BindingCheck {
    /// Listed items (N·K).
    pub expected: u64,
    /// Listed items with exactly one binding for the invitee.
    pub bound_once: u64,
    /// Listed items with none.
    pub missing: u64,
    /// Bindings beyond one per listed item.
    pub duplicates: u64,
    /// Every binding in the mock.
    pub remote_total: u64,
}

/// Compares every Invitation's listed bindings with the mock's: per (invitee, role,
/// environment), exactly one binding.
pub fn check_bindings(remote: &MockHandle, n: u64, bindings: Bindings) -> BindingCheck {
    let all = remote.role_bindings();
    let mut held: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for b in &all {
        let (Some(p), Some(r), Some(c)) = (&b.principal, &b.role_name, &b.crn_pattern) else {
            continue;
        };
        let env = c.rsplit_once("/environment=").map_or("", |(_, e)| e);
        *held
            .entry((p.clone(), r.clone(), env.to_owned()))
            .or_default() += 1;
    }
    let users: BTreeMap<String, String> = remote
        .invitations()
        .into_iter()
        .filter(|i| {
            i.status
                .as_ref()
                .is_some_and(confluent_client::model::InviteStatus::is_live)
        })
        .filter_map(|i| {
            let user = i.user_id()?.to_owned();
            Some((i.email?.to_ascii_lowercase(), user))
        })
        .collect();
    let mut check = BindingCheck {
        expected: n * bindings.per_invitation,
        remote_total: all.len() as u64,
        ..BindingCheck::default()
    };
    for i in 0..n {
        let user = users.get(&email_of(i).to_ascii_lowercase());
        for j in 0..bindings.per_invitation {
            let found = user.map_or(0, |u| {
                held.get(&(
                    format!("User:{u}"),
                    Bindings::role(j).to_owned(),
                    bindings.environment(i, j),
                ))
                .copied()
                .unwrap_or(0)
            });
            match found {
                0 => check.missing += 1,
                k => {
                    check.bound_once += 1;
                    check.duplicates += k - 1;
                }
            }
        }
    }
    check
}

/// Calls per resync window of a steady stretch.
pub fn per_window(c: &Option<CallCounts>, windows: u32) -> Option<f64> {
    c.as_ref()
        .map(|c| c.total as f64 / f64::from(windows.max(1)))
}

/// The calls between two readings of the mock's counters.
pub fn diff(a: &CallCounts, b: &CallCounts) -> CallCounts {
    CallCounts {
        list: b.list - a.list,
        create: b.create - a.create,
        get: b.get - a.get,
        delete: b.delete - a.delete,
        get_user: b.get_user - a.get_user,
        delete_user: b.delete_user - a.delete_user,
        rate_limited: b.rate_limited - a.rate_limited,
        unauthenticated: b.unauthenticated - a.unauthenticated,
        faults_injected: b.faults_injected - a.faults_injected,
        total: b.total - a.total,
    }
}

/// (emails without a live invitation, live invitations beyond one per email, remote total).
pub fn check_duplicates(remote: &MockHandle, n: u64) -> (u64, u64, usize) {
    let mut missing = 0;
    let mut duplicates = 0;
    for i in 0..n {
        match remote.live_invitations_for(&email_of(i)).len() {
            0 => missing += 1,
            k => duplicates += k as u64 - 1,
        }
    }
    (missing, duplicates, remote.invitations().len())
}

/// Counts WARN and ERROR lines of the operator's JSON log, and its most frequent messages.
pub fn read_log(path: &Path) -> (u64, u64, Vec<(String, u64)>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (mut warnings, mut errors) = (0, 0);
    let mut by_message: BTreeMap<String, u64> = BTreeMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let level = v["level"].as_str().unwrap_or("");
        match level {
            "WARN" => warnings += 1,
            "ERROR" => errors += 1,
            _ => continue,
        }
        let fields = &v["fields"];
        let mut key = format!("{level} {}", fields["message"].as_str().unwrap_or("?"));
        if let Some(reason) = fields["reason"].as_str() {
            let _ = write!(key, " ({reason})");
        }
        *by_message.entry(key).or_default() += 1;
    }
    let mut top: Vec<(String, u64)> = by_message.into_iter().collect();
    top.sort_by_key(|t| std::cmp::Reverse(t.1));
    top.truncate(4);
    (warnings, errors, top)
}
