//! The agents of chaos: the fault injector, the killer (operator SIGKILLs, the one API server
//! restart and the `--dry-run` stretch), the world changing under the operator (invitees accepting, invitations expiring or
//! removed out of band, resources created late or deleted, role bindings edited, removed or added
//! out of band: `bindings.rs`), and the periodic invariant checker.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use confluent_client::model::InviteStatus;
use confluent_invitation_operator::invitation::resource::DeletionPolicy;
use confluent_mock::{Fault, FaultAction};
use kube::ResourceExt;
use tokio::sync::watch;

use crate::invariants::{Outcome, Snapshot, check_always};
use crate::world::{Operator, Planned, Stats, Violation, World, lock};

/// The mock's latency outside spikes.
pub const BASE_LATENCY: Duration = Duration::from_millis(20);
/// How long the operator that rode out the API server restart gets to reconcile Invitations
/// created right after it (its watch re-lists after a backoff of up to 30 s; faults go on).
const PROBE_WITHIN: Duration = Duration::from_secs(120);
/// The probes' names end with this: the world's changes leave them alone (a probe the test
/// deleted itself could never show the operator reconciled it).
const PROBE_SUFFIX: &str = "-probe-after-apiserver-restart";
/// How often the checker compares both sides.
const CHECK_EVERY: Duration = Duration::from_secs(3);

/// Tells tasks to stop.
pub struct StopHandle(watch::Sender<bool>);

/// Watched by tasks.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

pub fn stop_pair() -> (StopHandle, Stop) {
    let (tx, rx) = watch::channel(false);
    (StopHandle(tx), Stop(rx))
}

impl StopHandle {
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl Stop {
    pub fn stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Sleeps; false if stopped meanwhile (or before).
    pub async fn sleep(&mut self, d: Duration) -> bool {
        if self.stopped() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(d) => !self.stopped(),
            _ = self.0.changed() => false,
        }
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Injects random faults with small counts until stopped: 5xx, 429 bursts, dropped connections,
/// creates (and deletes) whose answer is lost (invitations, users and role bindings), delays and
/// latency spikes; and, alongside, faults aimed at each role-binding route
/// ([`role_binding_fault`]).
pub async fn inject_faults(w: &World, mut stop: Stop, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mock = w.remote();
    let any = |count: u32, action: FaultAction| Fault {
        method: None,
        path_prefix: "/iam/v2".into(),
        count,
        action,
    };
    while stop.sleep(ms(rng.u64(300..1200))).await {
        let pending = mock.pending_faults();
        if pending.len() >= 12 {
            continue;
        }
        if rng.u32(0..100) < 45
            && let Some(fault) = role_binding_fault(&mut rng, &pending)
        {
            inject(w, fault);
        }
        // faults on writes wait for a write: keep only a few queued
        let writes_pending = pending
            .iter()
            .filter(|f| f.method.as_deref().is_some_and(|m| m != "GET"))
            .count();
        let fault = match rng.u32(0..100) {
            0..=23 => any(
                rng.u32(1..=3),
                FaultAction::Status {
                    status: [500, 502, 503, 504][rng.usize(0..4)],
                },
            ),
            // a 429 pauses every call of the credential for its Retry-After (1 s): a burst of
            // n stalls the whole operator for about n seconds
            24..=29 => any(rng.u32(2..=5), FaultAction::Status { status: 429 }),
            30..=45 => any(rng.u32(1..=2), FaultAction::Drop),
            46..=61 if writes_pending < 3 => {
                // and, as often again as not, a role-binding create whose answer is lost
                if rng.bool() {
                    inject(w, lost(&mut rng, "POST", "/iam/v2/role-bindings"));
                }
                lost(&mut rng, "POST", "/iam/v2/invitations")
            }
            62..=71 if writes_pending < 3 => {
                if rng.bool() {
                    inject(w, lost(&mut rng, "DELETE", "/iam/v2/role-bindings/"));
                }
                let path = if rng.bool() {
                    "/iam/v2/invitations/"
                } else {
                    "/iam/v2/users/"
                };
                lost(&mut rng, "DELETE", path)
            }
            72..=87 => any(
                rng.u32(1..=3),
                FaultAction::Delay {
                    millis: rng.u64(1000..3000),
                },
            ),
            88..=99 => {
                mock.set_latency(ms(rng.u64(300..1200)));
                Stats::add(&w.stats.latency_spikes, 1);
                stop.sleep(ms(rng.u64(500..2500))).await;
                mock.set_latency(BASE_LATENCY);
                continue;
            }
            _ => continue,
        };
        inject(w, fault);
    }
    mock.set_latency(BASE_LATENCY);
}

/// One write to `path_prefix` that goes through and whose answer is lost (a 500 or a dropped
/// connection).
fn lost(rng: &mut fastrand::Rng, method: &str, path_prefix: &str) -> Fault {
    Fault {
        method: Some(method.into()),
        path_prefix: path_prefix.into(),
        count: 1,
        action: if rng.bool() {
            FaultAction::CommitThen500
        } else {
            FaultAction::CommitThenDrop
        },
    }
}

/// Role-binding lists (faults match the query too: `?` singles them out).
const RB_LIST: &str = "/iam/v2/role-bindings?";
/// Role-binding creates (with `POST`), or every role-binding route.
const RB_COLLECTION: &str = "/iam/v2/role-bindings";
/// One role binding by id: reads and deletes.
const RB_ONE: &str = "/iam/v2/role-bindings/";

/// A fault on one role-binding route, or `None` when enough faults already wait for a
/// role-binding write. Lists: 403 and 400 with a real Failure body (a credential that may not
/// read a scope, a refused filter), 5xx, drops. Creates: 5xx, drops, commits whose answer is
/// lost. By id: 5xx and drops on reads and deletes, deletes whose answer is lost, and several
/// 500s in a row on deletes (a revocation failing for a while). 429 on any of them. Never a 403
/// by id: on a read the client takes any 403 for "gone" (as the Terraform provider does), which
/// the binding would not be.
fn role_binding_fault(rng: &mut fastrand::Rng, pending: &[Fault]) -> Option<Fault> {
    let on = |method: Option<&str>, path_prefix: &str, count: u32, action: FaultAction| Fault {
        method: method.map(str::to_owned),
        path_prefix: path_prefix.into(),
        count,
        action,
    };
    let status = |status: u16| FaultAction::Status { status };
    let five_xx = [500, 502, 503, 504][rng.usize(0..4)];
    let writes_pending = pending
        .iter()
        .filter(|f| f.path_prefix.starts_with(RB_COLLECTION))
        .filter(|f| f.method.as_deref().is_some_and(|m| m != "GET"))
        .count();
    Some(match rng.u32(0..100) {
        0..=11 => on(Some("GET"), RB_LIST, rng.u32(1..=2), status(403)),
        12..=19 => on(Some("GET"), RB_LIST, 1, status(400)),
        20..=29 => on(Some("GET"), RB_LIST, rng.u32(1..=3), status(five_xx)),
        30..=37 => on(Some("GET"), RB_LIST, rng.u32(1..=2), FaultAction::Drop),
        38..=43 => on(None, RB_COLLECTION, rng.u32(2..=3), status(429)),
        44..=51 => on(None, RB_ONE, rng.u32(1..=2), status(five_xx)),
        52..=57 => on(None, RB_ONE, 1, FaultAction::Drop),
        _ if writes_pending >= 2 => return None,
        58..=65 => on(Some("POST"), RB_COLLECTION, 1, status(five_xx)),
        66..=71 => on(Some("POST"), RB_COLLECTION, 1, FaultAction::Drop),
        72..=81 => lost(rng, "POST", RB_COLLECTION),
        82..=89 => lost(rng, "DELETE", RB_ONE),
        _ => on(Some("DELETE"), RB_ONE, rng.u32(4..=8), status(500)),
    })
}

/// Which role-binding route a fault aims at, for the summary (`None`: not only role bindings).
pub fn role_binding_route(f: &Fault) -> Option<&'static str> {
    let method = f.method.as_deref();
    Some(match (f.path_prefix.as_str(), method) {
        (RB_LIST, _) => "list",
        (RB_COLLECTION, Some("POST")) => "create",
        (RB_COLLECTION, _) => "any",
        (RB_ONE, Some("DELETE")) => "delete",
        (RB_ONE, _) => "get/delete by id",
        _ => return None,
    })
}

/// What a fault does, for the summary.
pub fn fault_kind(a: &FaultAction) -> String {
    match a {
        FaultAction::Status { status } => status.to_string(),
        FaultAction::Delay { .. } => "delay".into(),
        FaultAction::Drop => "drop".into(),
        FaultAction::CommitThen500 => "commit-then-500".into(),
        FaultAction::CommitThenDrop => "commit-then-drop".into(),
    }
}

/// The role-binding faults queued, per route and kind, and how many of them were hit (queued
/// minus those still pending).
pub fn role_binding_faults(w: &World) -> Vec<String> {
    let queued = lock(&w.stats.role_binding_faults).clone();
    let mut pending: BTreeMap<(&str, String), u64> = BTreeMap::new();
    for f in w.remote().pending_faults() {
        if let Some(route) = role_binding_route(&f) {
            *pending.entry((route, fault_kind(&f.action))).or_default() += u64::from(f.count);
        }
    }
    let mut routes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((route, kind), n) in &queued {
        let left = pending.get(&(*route, kind.clone())).copied().unwrap_or(0);
        routes
            .entry(route)
            .or_default()
            .push(format!("{kind} ×{n} ({} hit)", n - left));
    }
    routes
        .into_iter()
        .map(|(route, kinds)| format!("{route}: {}", kinds.join(", ")))
        .collect()
}

/// Queues a fault in the mock and counts it.
fn inject(w: &World, fault: Fault) {
    Stats::add(&w.stats.fault_injections, 1);
    Stats::add(&w.stats.faults_queued, u64::from(fault.count));
    if let Some(route) = role_binding_route(&fault) {
        *lock(&w.stats.role_binding_faults)
            .entry((route, fault_kind(&fault.action)))
            .or_default() += u64::from(fault.count);
    }
    w.remote().inject(fault);
}

/// SIGKILLs and restarts the operator `kills` times at random moments (some while it is still
/// starting up); after kill number `apiserver_after`, restarts the kube-apiserver; kill number
/// `dry_run_at` starts the `--dry-run` stretch ([`dry_run_stretch`]) instead.
pub async fn kill_operators(
    w: &World,
    op: &mut Operator,
    kills: u32,
    apiserver_after: Option<u32>,
    dry_run_at: Option<u32>,
    seed: u64,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    for k in 1..=kills {
        tokio::time::sleep(ms(rng.u64(300..7000))).await;
        if dry_run_at == Some(k) {
            dry_run_stretch(w, op, &mut rng).await;
        } else {
            kill(w, op);
            start(w, op, false).await;
        }
        if apiserver_after == Some(k) {
            restart_apiserver(w, op).await;
        }
    }
}

/// SIGKILLs the operator (noting first whether it had exited on its own).
fn kill(w: &World, op: &mut Operator) {
    if let Some(status) = op.exited() {
        w.record(vec![Violation::new(
            &format!("operator-exited-{}", op.incarnation),
            None,
            format!(
                "operator #{} exited on its own ({status}); log tail:\n{}",
                op.incarnation,
                w.log_tail(30)
            ),
        )]);
    }
    op.kill();
    Stats::add(&w.stats.kills, 1);
}

/// Starts the next operator (with `--dry-run` when `dry_run`) and waits until it is ready.
async fn start(w: &World, op: &mut Operator, dry_run: bool) {
    *op = w.spawn_operator(dry_run);
    if !w.wait_ready(op, Duration::from_secs(90)).await {
        w.record(vec![Violation::new(
            &format!("operator-not-ready-{}", op.incarnation),
            None,
            format!(
                "operator #{} never became ready; log tail:\n{}",
                op.incarnation,
                w.log_tail(30)
            ),
        )]);
    }
}

/// How long the operator runs with `--dry-run`.
const DRY_RUN_FOR: Duration = Duration::from_secs(12);
/// How many changes the world makes during it that the preview must hold: items removed or
/// replaced on resources with recorded bindings, invitations removed out of band.
const DRY_RUN_EDITS: usize = 6;
const DRY_RUN_REMOVALS: usize = 2;
/// After a SIGKILL, how long what the dead process sent may still be arriving: the mock counts
/// a request when it reads it, the API server applies a status write when it reads it.
const SETTLE: Duration = Duration::from_secs(2);

/// The mock's write calls so far: invitation creates and deletes, user deletes, role-binding
/// creates and deletes (counted as they arrive, whatever their answer).
fn writes(w: &World) -> [u64; 5] {
    let mock = w.remote();
    let c = mock.calls();
    let rb = mock.role_binding_calls();
    [c.create, c.delete, c.delete_user, rb.create, rb.delete]
}

/// The role-binding ids each live resource's status records.
fn recorded_ids(
    resources: &[confluent_invitation_operator::invitation::resource::Invitation],
) -> BTreeMap<String, BTreeSet<String>> {
    resources
        .iter()
        .map(|r| {
            let ids = r
                .status
                .iter()
                .flat_map(|s| &s.role_bindings)
                .filter_map(|e| e.id.clone())
                .collect();
            (r.name_any(), ids)
        })
        .collect()
}

/// Replaces the operator by one with `--dry-run` for [`DRY_RUN_FOR`] while the world changes
/// what it would have to act on, then by one without. Meanwhile the operator writes nothing to
/// Confluent (the mock's write counters do not move), and no status forgets a binding id it
/// recorded before that the mock still holds (the list first, then the mock: an id held after
/// the list was held at it, so no exact list could have shown it gone). Faults go on.
async fn dry_run_stretch(w: &World, op: &mut Operator, rng: &mut fastrand::Rng) {
    kill(w, op);
    tokio::time::sleep(SETTLE).await;
    let before_writes = writes(w);
    let before = recorded_ids(&w.list().await);
    start(w, op, true).await;
    w.say(format_args!(
        "operator #{} runs with --dry-run for {}s ({} statuses record {} binding ids)",
        op.incarnation,
        DRY_RUN_FOR.as_secs(),
        before.values().filter(|ids| !ids.is_empty()).count(),
        before.values().map(BTreeSet::len).sum::<usize>()
    ));
    let started = Instant::now();
    let mut changes: Vec<bool> = std::iter::repeat_n(true, DRY_RUN_EDITS)
        .chain(std::iter::repeat_n(false, DRY_RUN_REMOVALS))
        .collect();
    rng.shuffle(&mut changes);
    let step = DRY_RUN_FOR / (changes.len() as u32 + 1);
    while started.elapsed() < DRY_RUN_FOR {
        if let Some(edit) = changes.pop() {
            let bound: Vec<Planned> = candidates(w)
                .into_iter()
                .filter(|p| before.get(&p.name).is_some_and(|ids| !ids.is_empty()))
                .collect();
            let with_sent = with_sent(w, &bound);
            if edit && !bound.is_empty() {
                crate::bindings::edit(w, rng, &bound, true).await;
                Stats::add(&w.stats.dry_run_changes, 1);
            } else if !edit && !with_sent.is_empty() {
                remove_invitation(w, rng, &with_sent);
                Stats::add(&w.stats.dry_run_changes, 1);
            }
        }
        tokio::time::sleep(step).await;
        check_dry_run(w, &before).await;
    }
    kill(w, op);
    tokio::time::sleep(SETTLE).await;
    let after_writes = writes(w);
    Stats::add(&w.stats.dry_run_secs, started.elapsed().as_secs());
    let wrote: u64 = after_writes
        .iter()
        .zip(&before_writes)
        .map(|(a, b)| a - b)
        .sum();
    Stats::add(&w.stats.dry_run_writes, wrote);
    let mut out = Outcome::default();
    out.assert(wrote == 0, || {
        Violation::new(
            "dry-run-wrote",
            None,
            format!(
                "the operator wrote to Confluent under --dry-run: [invitation create, invitation \
                 delete, user delete, role-binding create, role-binding delete] went from \
                 {before_writes:?} to {after_writes:?}"
            ),
        )
    });
    out.count(w);
    w.record(out.violations);
    w.say(format_args!(
        "--dry-run stretch over ({} Confluent writes meanwhile); back to a normal operator",
        wrote
    ));
    start(w, op, false).await;
}

/// During the dry run: every binding id a status recorded before it, which the mock still
/// holds, is still recorded.
async fn check_dry_run(w: &World, before: &BTreeMap<String, BTreeSet<String>>) {
    let now = recorded_ids(&w.list().await);
    let held: HashSet<String> = w
        .remote()
        .role_bindings()
        .into_iter()
        .filter_map(|b| b.id)
        .collect();
    let mut out = Outcome::default();
    for (name, ids) in before {
        let Some(recorded) = now.get(name) else {
            continue; // gone (an Orphan's cleanup needs no Confluent call)
        };
        let lost: Vec<&String> = ids
            .iter()
            .filter(|id| held.contains(*id) && !recorded.contains(*id))
            .collect();
        Stats::add(&w.stats.dry_run_ids, ids.len() as u64);
        out.assert(lost.is_empty(), || Violation {
            key: format!("dry-run-dropped-id:{name}"),
            subject: Some(name.clone()),
            message: format!(
                "{name}: under --dry-run its status no longer records {lost:?}, which the mock \
                 still holds (recorded before: {ids:?}, now: {recorded:?})"
            ),
        });
    }
    Stats::add(&w.stats.dry_run_checks, 1);
    out.count(w);
    w.record(out.violations);
}

/// Restarts the kube-apiserver (etcd keeps the data), then proves the running operator rode it
/// out: the same process is alive and picks up an Invitation created afterwards.
async fn restart_apiserver(w: &World, op: &mut Operator) {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/local/restart-apiserver.sh");
    let dir = w.config.control_plane_dir.clone();
    let pid = op.pid();
    w.say(format_args!(
        "restarting the kube-apiserver (operator #{} pid {pid} keeps running)",
        op.incarnation
    ));
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(script).arg(dir).stdin(Stdio::null()).output()
    })
    .await
    .expect("restart task joined")
    .expect("restart-apiserver.sh runs");
    assert!(
        out.status.success(),
        "restart-apiserver.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Stats::add(&w.stats.apiserver_restarts, 1);
    w.say(format_args!(
        "kube-apiserver back after {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    // Invitations created while the operator's watch is still recovering; their names sort
    // first, in the middle and last, so they come at different points of its re-list.
    let mut probes = Vec::new();
    for (i, prefix) in ["a", "m", "z"].into_iter().enumerate() {
        let probe = Planned {
            name: format!("{prefix}{PROBE_SUFFIX}"),
            email: format!("{prefix}-probe.{}@chaos.example.com", w.config.run_tag()),
            policy: DeletionPolicy::Delete,
            reinvite: false,
            auth: None,
            seeded: None,
            seeded_id: None,
            role_bindings: Vec::new(),
            exclusive: false,
        };
        w.create(&probe).await;
        probes.push(probe);
        if i < 2 {
            tokio::time::sleep(ms(1500)).await;
        }
    }
    let deadline = Instant::now() + PROBE_WITHIN;
    let mut waiting = probes.clone();
    while !waiting.is_empty() && Instant::now() < deadline && op.exited().is_none() {
        let mut still = Vec::new();
        for p in waiting {
            let got = w
                .kube("get probe", || w.api.get_opt(&p.name))
                .await
                .expect("probe readable");
            if got
                .and_then(|i| i.status)
                .and_then(|s| s.invitation_id)
                .is_none()
            {
                still.push(p);
            }
        }
        waiting = still;
        tokio::time::sleep(ms(500)).await;
    }
    let survived = op.exited().is_none();
    w.say(format_args!(
        "after the API server restart: operator pid {pid} {}; {} of {} new Invitations reconciled",
        if survived { "still running" } else { "EXITED" },
        probes.len() - waiting.len(),
        probes.len()
    ));
    if !survived {
        w.record(vec![Violation::new(
            "apiserver-restart-exit",
            None,
            format!(
                "the operator exited after the API server restart; log tail:\n{}",
                w.log_tail(30)
            ),
        )]);
    }
    for p in &waiting {
        w.record(vec![Violation::new(
            "not-reconciled-after-apiserver-restart",
            Some(p),
            format!(
                "{} was created right after the API server restart and operator #{} (still {}) \
                 did not reconcile it within {} s",
                p.name,
                op.incarnation,
                if survived { "running" } else { "exited" },
                PROBE_WITHIN.as_secs()
            ),
        )]);
    }
}

#[derive(Clone, Copy, Debug)]
enum Change {
    Accept,
    Expire,
    Remove,
    Delete,
    RemoveThenDelete,
    Create,
    /// Point a resource's `status.invitationId` at another resource's invitation, then delete it.
    ForgeThenDelete,
    /// Add an item to a resource's `spec.roleBindings` or remove one.
    EditBindings,
    /// Remove a recorded binding out of band.
    RemoveBinding,
    /// Add an unlisted binding out of band for a resource's user.
    AddForeignBinding,
}

/// Changes the world under the operator, spread over `spread`: invitees accept,
/// invitations expire or are removed out of band, resources are created late or deleted (some
/// right after their invitation was removed, while the operator is recreating it).
pub async fn mutate(w: &World, seed: u64, spread: Duration) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let n = w.config.invitations;
    let share = |pct: usize| (n * pct / 100).max(1);
    let mut changes = Vec::new();
    for (change, count) in [
        (Change::Accept, share(20)),
        (Change::Expire, share(5)),
        (Change::Remove, share(6)),
        (Change::Delete, share(8)),
        (Change::RemoveThenDelete, share(4)),
        (Change::Create, share(5)),
        (Change::ForgeThenDelete, share(3)),
        (Change::EditBindings, share(12)),
        (Change::RemoveBinding, share(5)),
        (Change::AddForeignBinding, share(4)),
    ] {
        changes.extend(std::iter::repeat_n(change, count));
    }
    rng.shuffle(&mut changes);
    let step = spread / changes.len() as u32;
    let mock = w.remote();
    let mut late = 0;
    for change in changes {
        let jitter = ms(rng.u64(0..=step.as_millis() as u64));
        tokio::time::sleep(step / 2 + jitter).await;
        let candidates = candidates(w);
        if candidates.is_empty() {
            continue;
        }
        let with_sent = with_sent(w, &candidates);
        match change {
            Change::Create => {
                let name = format!("late{late:03}");
                let email = format!("{name}.{}@chaos.example.com", w.config.run_tag());
                late += 1;
                let bound = rng.usize(0..100) < crate::bindings::SHARE;
                let p = Planned::random(&mut rng, name, email, false, bound);
                lock(&w.ledger.planned).insert(p.name.clone(), p.clone());
                w.create(&p).await;
                Stats::add(&w.stats.created_mid_run, 1);
            }
            Change::Delete => {
                let p = &candidates[rng.usize(0..candidates.len())];
                w.delete(&p.name).await;
                Stats::add(&w.stats.deleted_mid_run, 1);
            }
            Change::EditBindings => crate::bindings::edit(w, &mut rng, &candidates, false).await,
            Change::RemoveBinding => crate::bindings::remove_out_of_band(w, &mut rng).await,
            Change::AddForeignBinding => crate::bindings::add_foreign(w, &mut rng).await,
            _ if with_sent.is_empty() => {}
            Change::Accept => {
                let (_, id) = &with_sent[rng.usize(0..with_sent.len())];
                if mock.accept(id).is_ok() {
                    Stats::add(&w.stats.accepted, 1);
                }
            }
            Change::Expire => {
                let (_, id) = &with_sent[rng.usize(0..with_sent.len())];
                if mock.expire(id).is_ok() {
                    Stats::add(&w.stats.expired, 1);
                }
            }
            Change::ForgeThenDelete => {
                let (p, _) = with_sent[rng.usize(0..with_sent.len())];
                let Some((_, theirs)) = with_sent.iter().find(|(q, _)| q.name != p.name) else {
                    continue;
                };
                lock(&w.ledger.forged).insert(p.name.clone());
                let patch = serde_json::json!({"status": {"invitationId": theirs}});
                let pp = kube::api::PatchParams::default();
                let merge = kube::api::Patch::Merge(&patch);
                let forged = w
                    .kube("forge status", || w.api.patch_status(&p.name, &pp, &merge))
                    .await;
                if forged.is_ok() {
                    Stats::add(&w.stats.forged, 1);
                }
                tokio::time::sleep(ms(rng.u64(0..3000))).await;
                w.delete(&p.name).await;
                Stats::add(&w.stats.deleted_mid_run, 1);
            }
            Change::Remove | Change::RemoveThenDelete => {
                let p = remove_invitation(w, &mut rng, &with_sent);
                if matches!(change, Change::RemoveThenDelete) {
                    // while the operator notices and recreates it (within a resync)
                    tokio::time::sleep(ms(rng.u64(200..5000))).await;
                    w.delete(&p.name).await;
                    Stats::add(&w.stats.deleted_mid_run, 1);
                }
            }
        }
    }
}

/// The resources the world's changes may pick: created, not deleted, no probe.
fn candidates(w: &World) -> Vec<Planned> {
    let deleted = w.ledger.deleted();
    w.ledger
        .created()
        .into_values()
        .filter(|p| !deleted.contains(&p.name) && !p.name.ends_with(PROBE_SUFFIX))
        .collect()
}

/// The candidates whose email has a SENT invitation, with its id.
fn with_sent<'a>(w: &World, candidates: &'a [Planned]) -> Vec<(&'a Planned, String)> {
    let sent: HashMap<String, String> = w
        .remote()
        .invitations()
        .into_iter()
        .filter(|i| i.status == Some(InviteStatus::Sent))
        .filter_map(|i| Some((i.email?.to_ascii_lowercase(), i.id?)))
        .collect();
    candidates
        .iter()
        .filter_map(|p| {
            let id = sent.get(&p.email.to_ascii_lowercase())?;
            Some((p, id.clone()))
        })
        .collect()
}

/// Removes one of the SENT invitations `with_sent` (not empty) out of band, preferring one
/// whose resource lists role bindings: the operator sends it again, to a new user, and must
/// delete the bindings of the user removed. That user goes into the ledger first, since the
/// mock forgets it with the invitation. The resource whose invitation went.
fn remove_invitation<'a>(
    w: &World,
    rng: &mut fastrand::Rng,
    with_sent: &[(&'a Planned, String)],
) -> &'a Planned {
    let bound: Vec<(&Planned, String)> = with_sent
        .iter()
        .filter(|(p, _)| !p.role_bindings.is_empty())
        .cloned()
        .collect();
    let from = if bound.is_empty() { with_sent } else { &bound };
    let (p, id) = &from[rng.usize(0..from.len())];
    let mock = w.remote();
    let user = mock
        .invitations()
        .into_iter()
        .find(|i| i.id.as_deref() == Some(id.as_str()))
        .and_then(|i| i.user_id().map(str::to_owned));
    if let Some(user) = user {
        lock(&w.ledger.users).insert(user, p.email.to_ascii_lowercase());
    }
    lock(&w.ledger.removed).insert(id.clone());
    if mock.remove(id).is_ok() {
        Stats::add(&w.stats.removed, 1);
        if !p.role_bindings.is_empty() {
            Stats::add(&w.stats.removed_with_bindings, 1);
        }
    }
    p
}

/// Deletes every remaining resource, in random order; a few invitees accept right after their
/// resource's deletion was asked for, racing the cleanup.
pub async fn delete_all(w: &World, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let deleted = w.ledger.deleted();
    let mut names: Vec<Planned> = w
        .ledger
        .created()
        .into_values()
        .filter(|p| !deleted.contains(&p.name))
        .collect();
    rng.shuffle(&mut names);
    let mock = w.remote();
    for p in names {
        w.delete(&p.name).await;
        if rng.u32(0..100) < 4 {
            tokio::time::sleep(ms(rng.u64(0..400))).await;
            let sent = mock
                .live_invitations_for(&p.email)
                .into_iter()
                .find(|i| i.status == Some(InviteStatus::Sent))
                .and_then(|i| i.id);
            if let Some(id) = sent
                && mock.accept(&id).is_ok()
            {
                Stats::add(&w.stats.accepted_while_deleting, 1);
            }
        }
    }
}

/// Checks the always-invariants every few seconds until stopped.
pub async fn check_loop(w: Arc<World>, mut stop: Stop) {
    while stop.sleep(CHECK_EVERY).await {
        let snap = Snapshot::take(&w).await;
        let out = check_always(&snap);
        out.count(&w);
        w.record(out.violations);
    }
}
