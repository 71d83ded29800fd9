//! Chaos: the real operator binary against the real local kube-apiserver and the Confluent mock,
//! under fire. A few hundred Invitations with mixed policies are created and reconciled while the
//! mock injects 5xx, 429 bursts, dropped connections, creates (and deletes) whose answer is lost,
//! delays and latency spikes, and faults aimed at each role-binding route (403 and 400 on lists,
//! deletes failing several times in a row); the operator is SIGKILLed and restarted at random
//! moments, runs with `--dry-run` for a stretch; the kube-apiserver is restarted once; invitees
//! accept, invitations expire or disappear out of band, resources are deleted; role bindings are
//! listed (some exclusive), edited, removed and added out of band (`bindings.rs`). Then faults
//! stop and the operator must converge, every role binding accounted for; then everything is
//! deleted, under fire again, and accounted for again. Invariants (see `invariants.rs`) are
//! checked every few seconds and at the end; the run prints its counts and fails on any
//! violation.
//!
//! Run: with a control plane from `deploy/local/start-control-plane.sh BINDIR WORKDIR`,
//! `KUBECONFIG=WORKDIR/kubeconfig E2E_CONTROL_PLANE_DIR=WORKDIR cargo test --test chaos -- --nocapture`.
//! Without `KUBECONFIG` or `E2E_CONTROL_PLANE_DIR` it prints why and passes. Size and randomness:
//! `CHAOS_INVITATIONS` (default 200), `CHAOS_KILLS` (default 20), `CHAOS_SEED` (printed).
//! The operator's log: `target/tmp/chaos-logs/<namespace>.log`.

mod bindings;
mod invariants;
mod pairs;
mod tasks;
mod world;

use std::sync::Arc;
use std::time::{Duration, Instant};

use confluent_invitation_operator::invitation::resource::DeletionPolicy;

use invariants::{Snapshot, check_converged, check_final, converged_state};
use tasks::{delete_all, inject_faults, kill_operators, mutate, stop_pair};
use world::{Config, Planned, Stats, Violation, World, lock};

/// Emails claimed by two Invitations each (`pairs.rs`).
const PAIRS: usize = 8;
/// How long the operator gets to converge once faults stopped.
const CONVERGE_WITHIN: Duration = Duration::from_secs(150);
/// How long everything gets to be gone once deleted and faults stopped.
const RELEASE_WITHIN: Duration = Duration::from_secs(180);

/// The Invitations of a run (see [`Planned::random`]), [`bindings::SHARE`] of them listing
/// role bindings.
fn plan(config: &Config) -> Vec<Planned> {
    let mut rng = fastrand::Rng::with_seed(config.seed);
    let n = config.invitations;
    let mut bound: Vec<bool> = (0..n).map(|i| i < n * bindings::SHARE / 100).collect();
    rng.shuffle(&mut bound);
    bound
        .into_iter()
        .enumerate()
        .map(|(i, bound)| {
            let email = format!("c{i:03}.{}@chaos.example.com", config.run_tag());
            Planned::random(&mut rng, format!("c{i:03}"), email, true, bound)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a control plane: run tests/run-all.sh"]
async fn chaos_keeps_every_invariant() {
    let config = Config::from_env();
    let w = Arc::new(World::start(config).await);
    let seed = w.config.seed;
    let kills_after_converge = (w.config.kills / 4).max(2);
    let kills_before = w.config.kills - kills_after_converge;
    let mut planned = plan(&w.config);
    let mock = w.remote();
    mock.set_latency(tasks::BASE_LATENCY);
    for p in &mut planned {
        if let Some(email) = &p.seeded {
            p.seeded_id = mock.seed_invitation(email, None).id;
            Stats::add(&w.stats.seeded, 1);
        }
        lock(&w.ledger.planned).insert(p.name.clone(), p.clone());
    }
    let mut op = w.spawn_operator(false);
    assert!(
        w.wait_ready(&mut op, Duration::from_secs(60)).await,
        "operator never became ready:\n{}",
        w.log_tail(40)
    );
    let (checker_stop, checker_rx) = stop_pair();
    let checker = tokio::spawn(tasks::check_loop(w.clone(), checker_rx));

    // 1. create everything and change the world, under faults, kills and one API server restart
    let dry_run_at = kills_before * 3 / 4;
    w.say(format_args!("phase 1: create {} Invitations under fire ({kills_before} kills, API server restart after kill {}, --dry-run at kill {dry_run_at})", planned.len(),
        kills_before / 2));
    let (stop, rx) = stop_pair();
    // the world changes over about as long as the kills take; faults go on until both are done
    let spread = Duration::from_millis(2500 * u64::from(kills_before));
    tokio::join!(
        async {
            tokio::join!(
                async {
                    let w = &w;
                    futures::future::join_all(planned.chunks(planned.len().div_ceil(8)).map(
                        |chunk| async move {
                            for p in chunk {
                                w.create(p).await;
                            }
                        },
                    ))
                    .await;
                    w.say(format_args!("all {} created", planned.len()));
                    mutate(w, seed ^ 1, spread).await;
                },
                async {
                    pairs::create_pairs(&w, PAIRS).await;
                    pairs::hand_over_half(&w, spread / 2).await;
                },
                kill_operators(
                    &w,
                    &mut op,
                    kills_before,
                    Some(kills_before / 2),
                    Some(dry_run_at),
                    seed ^ 2,
                ),
            );
            stop.stop();
        },
        inject_faults(&w, rx, seed ^ 3),
    );

    // 2. faults stop: the operator must converge, every status true to the mock
    w.say(format_args!(
        "phase 2: faults stopped; waiting for convergence"
    ));
    let started = Instant::now();
    let mut last_report = Instant::now();
    let (converged, converged_bindings, converged_account) = loop {
        let snap = Snapshot::take(&w).await;
        let out = check_converged(&snap);
        out.count(&w);
        let deleting: Vec<&String> = snap
            .resources
            .keys()
            .filter(|n| snap.deleted.contains(*n))
            .collect();
        if out.violations.is_empty() && deleting.is_empty() {
            w.say(format_args!(
                "converged after {:.1}s: {} live Invitations match the mock",
                started.elapsed().as_secs_f64(),
                snap.resources.len()
            ));
            break (
                converged_state(&snap),
                bindings::converged(&snap),
                bindings::account(&snap).figures(),
            );
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
            for v in &out.violations {
                *kinds
                    .entry(v.key.split(':').next().unwrap_or("?"))
                    .or_default() += 1;
            }
            w.say(format_args!(
                "not converged yet: {kinds:?}, {} still deleting; e.g. {}",
                deleting.len(),
                out.violations
                    .first()
                    .map(|v| v.message.as_str())
                    .unwrap_or("-")
            ));
        }
        if started.elapsed() > CONVERGE_WITHIN {
            w.say(format_args!(
                "NOT converged after {}s: {} mismatches, still deleting {deleting:?}",
                CONVERGE_WITHIN.as_secs(),
                out.violations.len()
            ));
            w.record(out.violations);
            break (
                converged_state(&snap),
                bindings::converged(&snap),
                bindings::account(&snap).figures(),
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };

    // 3. delete everything, under faults and kills again
    w.say(format_args!(
        "phase 3: delete everything under fire ({kills_after_converge} kills)"
    ));
    let (stop, rx) = stop_pair();
    tokio::join!(
        async {
            delete_all(&w, seed ^ 4).await;
            pairs::delete_pairs(&w).await;
        },
        async {
            kill_operators(&w, &mut op, kills_after_converge, None, None, seed ^ 5).await;
            stop.stop();
        },
        inject_faults(&w, rx, seed ^ 6),
    );

    // 4. faults stop: everything must be released, with its policy applied
    w.say(format_args!(
        "phase 4: faults stopped; waiting for every finalizer"
    ));
    let started = Instant::now();
    loop {
        let left = w.list().await.len();
        if left == 0 {
            w.say(format_args!(
                "all released after {:.1}s",
                started.elapsed().as_secs_f64()
            ));
            break;
        }
        if started.elapsed() > RELEASE_WITHIN {
            w.say(format_args!(
                "{left} Invitations still there after {}s",
                RELEASE_WITHIN.as_secs()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    checker_stop.stop();
    checker.await.expect("checker task");
    let snap = Snapshot::take(&w).await;
    let mut out = check_final(&snap, &converged);
    bindings::check_final(&snap, &converged_bindings, &mut out);
    out.count(&w);
    let final_account = bindings::account(&snap).figures();
    w.record(out.violations);
    // credentials never reach the logs, whatever failed on the way
    let log = std::fs::read_to_string(&w.log_path).unwrap_or_default();
    if log.contains(world::API_SECRET) {
        w.record(vec![Violation::new(
            "secret-in-log",
            None,
            format!("the API secret appears in {}", w.log_path.display()),
        )]);
    }
    let alive = op.exited().is_none();
    if !alive {
        w.record(vec![Violation::new(
            "operator-exited-at-end",
            None,
            format!("the operator exited on its own:\n{}", w.log_tail(30)),
        )]);
    }
    drop(op);

    let violations = w.violations();
    summary(&w, &violations, [converged_account, final_account]);
    if violations.is_empty() {
        cleanup_namespace(&w).await;
    }
    assert!(
        violations.is_empty(),
        "{} invariant violations (operator log: {})",
        violations.len(),
        w.log_path.display()
    );
    let kills = Stats::get(&w.stats.kills);
    assert!(
        kills >= u64::from(w.config.kills),
        "only {kills} operator kills"
    );
    assert_eq!(Stats::get(&w.stats.apiserver_restarts), 1);
}

/// `accounts`: the role-binding accounting once converged and once everything was deleted.
fn summary(w: &World, violations: &[(Violation, u64)], accounts: [String; 2]) {
    let planned: Vec<Planned> = lock(&w.ledger.planned).values().cloned().collect();
    let s = &w.stats;
    let g = Stats::get;
    let calls = w.remote().calls();
    let count = |policy| planned.iter().filter(|p| p.policy == policy).count();
    let mut out = String::new();
    let mut row = |k: &str, v: String| out.push_str(&format!("  {k:<28} {v}\n"));
    row(
        "invitations",
        format!(
            "{} (late ones and the probe included): Delete {}, Orphan {}, DeleteUser {}; reinviteOnExpiry {}; adopted {}",
            planned.len(),
            count(DeletionPolicy::Delete),
            count(DeletionPolicy::Orphan),
            count(DeletionPolicy::DeleteUser),
            planned.iter().filter(|p| p.reinvite).count(),
            g(&s.seeded)
        ),
    );
    row(
        "world changes",
        format!(
            "created late {}, accepted {}, expired {}, removed out of band {}, deleted mid-run {} ({} before the operator took them on, {} with a forged status), accepted while deleting {}",
            g(&s.created_mid_run),
            g(&s.accepted),
            g(&s.expired),
            g(&s.removed),
            g(&s.deleted_mid_run),
            w.ledger.unowned().len(),
            g(&s.forged),
            g(&s.accepted_while_deleting)
        ),
    );
    row(
        "faults injected",
        format!(
            "{} hit (mock faults_injected) of {} queued in {} injections; {} latency spikes; {} answered 429",
            calls.faults_injected,
            g(&s.faults_queued),
            g(&s.fault_injections),
            g(&s.latency_spikes),
            calls.rate_limited
        ),
    );
    row(
        "Confluent calls",
        format!(
            "{} (list {}, get {}, create {}, delete {}, delete user {})",
            calls.total, calls.list, calls.get, calls.create, calls.delete, calls.delete_user
        ),
    );
    let rb = w.remote().role_binding_calls();
    row(
        "role bindings",
        format!(
            "{} Invitations listed some when created ({} exclusive), and the {} of the email pairs; {} edits \
             ({} items added, {} replaced, {} removed); out of band: {} invitations of theirs \
             removed (re-sent to a new user), {} bindings removed, {} unlisted added; \
             calls: list {}, create {}, get {}, delete {}",
            g(&s.with_bindings),
            planned.iter().filter(|p| p.exclusive).count(),
            lock(&w.ledger.pairs).len() * 2,
            g(&s.bindings_edited),
            g(&s.items_added),
            g(&s.items_replaced),
            g(&s.items_removed),
            g(&s.removed_with_bindings),
            g(&s.bindings_removed),
            g(&s.bindings_foreign),
            rb.list,
            rb.create,
            rb.get,
            rb.delete,
        ),
    );
    row(
        "role-binding faults",
        tasks::role_binding_faults(w).join("\n                               "),
    );
    row(
        "dry run",
        format!(
            "{}s under --dry-run, {} changes made meanwhile; {} Confluent writes (must be 0); {} \
             checks compared {} recorded binding ids",
            g(&s.dry_run_secs),
            g(&s.dry_run_changes),
            g(&s.dry_run_writes),
            g(&s.dry_run_checks),
            g(&s.dry_run_ids)
        ),
    );
    let [converged, released] = accounts;
    row("bindings once converged", converged);
    row("bindings once all deleted", released);
    let pairs = lock(&w.ledger.pairs).len();
    row(
        "emails claimed twice",
        format!(
            "{pairs} (owners deleted mid-run, handing over: {})",
            pairs.div_ceil(2)
        ),
    );
    row("operator kills (SIGKILL)", g(&s.kills).to_string());
    row("API server restarts", g(&s.apiserver_restarts).to_string());
    row(
        "invariant checks",
        format!(
            "{} ({} assertions; test's kube calls retried {} times)",
            g(&s.checks),
            g(&s.assertions),
            g(&s.kube_retries)
        ),
    );
    row("violations", violations.len().to_string());
    eprintln!(
        "\nchaos summary (seed {}, namespace {}, {:.0}s)\n{out}",
        w.config.seed,
        w.ns,
        w.t()
    );
    for (v, seen) in violations.iter().take(25) {
        eprintln!("VIOLATION {} (seen by {seen} checks): {}", v.key, v.message);
        if let Some(name) = &v.subject {
            for line in w.log_lines_about(name, 12) {
                eprintln!("    {line}");
            }
        }
    }
}

async fn cleanup_namespace(w: &World) {
    let _ = test_support::delete_namespace(&w.kube, &w.ns).await;
}
