//! One run of the operator at one size, phase by phase: N Invitations created and the clock
//! stopped when all are Ready; the steady state over a few resync intervals while remote accepts
//! are timed; the mock halving its limit while more Invitations arrive; last, what the operator
//! left behind (duplicates, its log).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use confluent_invitation_operator::invitation::resource::Invitation;
use confluent_mock::{CallCounts, MockHandle, RateLimit, RoleBindingCalls};
use futures::StreamExt;
use kube::Api;
use test_support::lock;

use crate::error::BoxError;
use crate::flags::{Opts, RunKind};
use crate::invitations::{Bindings, GROUP_MEMBERS, Spread, create_group, create_one, snapshot};
use crate::measure::{
    BindingCheck, PAGE, Sampler, bound_with_bindings, check_bindings, check_duplicates, diff,
    diff_role_bindings, kube_writes, loadavg, read_log,
};
use crate::run::{self, World};
use crate::units::{mib, rate_str, secs};

/// What one size measured.
#[derive(Debug, Default)]
pub struct Row {
    pub n: u64,
    pub rate: f64,
    /// Default flags or configured.
    pub kind: RunKind,
    /// After the mock halved its limit (None: not run).
    pub halving: Option<Halving>,
    /// How long creating the N objects took.
    pub created_after: Duration,
    /// All Ready after (None: not within the timeout).
    pub ready_after: Option<Duration>,
    /// How many were Ready when the wait ended.
    pub ready_count: u64,
    /// When 25%, 50% and 75% were Ready.
    pub milestones: [Option<Duration>; 3],
    /// Not-ready reasons when the wait ended without all Ready.
    pub not_ready: BTreeMap<String, u64>,
    pub converge_timeout: Duration,
    pub bound: Duration,
    /// Confluent calls from the first create to all Ready.
    pub converge_calls: CallCounts,
    /// The role bindings each Invitation lists (none: K = 0).
    pub bindings: Bindings,
    /// Of `converge_calls`, those to `/iam/v2/role-bindings`.
    pub converge_role_binding_calls: RoleBindingCalls,
    /// Of `steady_calls`, those to `/iam/v2/role-bindings`.
    pub steady_role_binding_calls: Option<RoleBindingCalls>,
    /// The listed bindings in the mock once the run is over (None: no bindings listed).
    pub binding_check: Option<BindingCheck>,
    /// The operator's Kubernetes writes (Invitations, Events) from first create to all Ready.
    pub converge_kube_writes: Option<u64>,
    pub converge_cpu: f64,
    /// Confluent calls during the steady windows (None: not measured).
    pub steady_calls: Option<CallCounts>,
    pub steady_kube_writes: Option<u64>,
    pub steady_cpu: f64,
    pub windows: u32,
    /// Confluent calls over the whole run (for the 429 share).
    pub all_calls: CallCounts,
    pub peak_rss_kib: u64,
    /// Largest RSS during the steady windows (None: never all Ready, so no steady state).
    pub steady_rss_kib: Option<u64>,
    /// RSS when the wait for all Ready ended.
    pub end_rss_kib: u64,
    /// When the Ready count last grew.
    pub last_growth: Duration,
    /// Time for a remote accept to reach status, per sample (None: not seen in time).
    pub accepts: Vec<Option<Duration>>,
    pub accept_timeout: Duration,
    /// Emails without a live remote invitation, and extra live invitations beyond one.
    pub missing: u64,
    pub duplicates: u64,
    pub remote_total: usize,
    pub log_warnings: u64,
    pub log_errors: u64,
    pub log_top: Vec<(String, u64)>,
    pub log_path: PathBuf,
    pub wall: Duration,
    /// The machine's 1-minute load average before and after the run.
    pub load: (f64, f64),
}

/// The phase where the mock halves its limit and more Invitations arrive.
#[derive(Debug, Default)]
pub struct Halving {
    /// The limit after halving.
    pub rate: f64,
    pub extra: u64,
    /// From the first of the extra creates until all are Ready (None: not within the timeout).
    pub ready_after: Option<Duration>,
    pub timeout: Duration,
    /// Confluent calls from the halving until all Ready.
    pub calls: CallCounts,
}

/// One run of the operator at size `n`: its world, then the phases (convergence, the steady state
/// with remote accepts timed, the halving), then what it left behind.
pub async fn run_size(opts: &Opts, world: &World, n: u64, kind: RunKind) -> Result<Row, BoxError> {
    let kube = &world.kube;
    let rate = opts.rate_for(n);
    let bindings = Bindings::of(opts);
    let bound = bound_with_bindings(n, rate, bindings);
    let load_before = loadavg();
    let converge_timeout = opts
        .converge_timeout
        .unwrap_or_else(|| (bound * 4).max(Duration::from_secs(180)));
    let accept_timeout = opts
        .accept_timeout
        .unwrap_or_else(|| (opts.resync * 3).max(Duration::from_secs(60)));
    let mut row = Row {
        n,
        rate,
        kind,
        bound,
        bindings,
        converge_timeout,
        accept_timeout,
        windows: opts.steady_windows,
        ..Row::default()
    };

    let (ns, spread) = run::namespaces(world, n, opts.secrets).await?;
    let server = run::start_mock(opts, rate).await?;
    let remote = server.state();
    row.log_path = world.log_dir.join(format!("{ns}.log"));
    let mut op = run::start_operator(
        opts,
        world,
        (&ns, &spread),
        &server.base_url(),
        (kind == RunKind::Configured).then_some(rate),
        &row.log_path,
    )
    .await?;
    let pid = op.pid();
    let (sampler, sampler_task) = Sampler::start(pid);
    eprintln!(
        "  namespace {ns}, mock {}, operator pid {pid} (log {}); bound {} ({} creates + {} list pages + {} binding creates + {} binding list pages at {} req/s), timeout {}",
        server.base_url(),
        row.log_path.display(),
        secs(bound),
        n,
        n.div_ceil(PAGE),
        n * bindings.per_invitation,
        bindings.list_pages(n, PAGE),
        rate,
        secs(converge_timeout)
    );

    // --- convergence
    let calls0 = remote.calls();
    let rb0 = remote.role_binding_calls();
    let writes0 = kube_writes(kube).await;
    let proc0 = sampler.now(pid);
    let created = AtomicUsize::new(0);
    let t0 = Instant::now();
    let create_all = async {
        if opts.groups {
            // the members come as ⌈N/500⌉ groups; the operator makes their Invitations
            let mut failures = Vec::new();
            for g in 0..n.div_ceil(GROUP_MEMBERS) {
                match create_group((kube, &ns), &spread, g, n, bindings).await {
                    Ok(members) => {
                        created.fetch_add(members as usize, Ordering::Relaxed);
                    }
                    Err(e) => failures.push(e),
                }
            }
            return (t0.elapsed(), failures);
        }
        let failures: Vec<String> = futures::stream::iter(0..n)
            .map(|i| {
                let spread = &spread;
                let created = &created;
                async move {
                    let r = create_one(spread, i, bindings).await;
                    if r.is_ok() {
                        created.fetch_add(1, Ordering::Relaxed);
                    }
                    r
                }
            })
            .buffer_unordered(opts.create_parallelism.max(1))
            .filter_map(|r| async move { r.err() })
            .collect()
            .await;
        (t0.elapsed(), failures)
    };
    let poll_every = if n <= 100 {
        Duration::from_millis(250)
    } else if n <= 1000 {
        Duration::from_millis(1000)
    } else {
        Duration::from_secs(3)
    };
    let milestones = Mutex::new([None::<Duration>; 3]);
    let last_growth = Mutex::new(Duration::ZERO);
    let wait_all = async {
        let mut last_progress = Instant::now();
        let mut ready_before = 0;
        loop {
            tokio::time::sleep(poll_every).await;
            let done = created.load(Ordering::Relaxed) as u64;
            let snap = match snapshot(&spread, false).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("  list failed: {e}");
                    continue;
                }
            };
            let elapsed = t0.elapsed();
            let mut grown = lock(&last_growth);
            if snap.ready > ready_before {
                ready_before = snap.ready;
                *grown = elapsed;
            }
            drop(grown);
            for (k, m) in lock(&milestones).iter_mut().enumerate() {
                if m.is_none() && snap.ready * 4 >= n * (k as u64 + 1) {
                    *m = Some(elapsed);
                }
            }
            if done == n && snap.ready == n {
                return (Some(elapsed), snap);
            }
            if last_progress.elapsed() >= Duration::from_secs(10) {
                last_progress = Instant::now();
                let c = remote.calls();
                let rb = diff_role_bindings(&rb0, &remote.role_binding_calls());
                let p = sampler.last();
                eprintln!(
                    "  t={:>6.1}s created {done}/{n} ready {}/{n} {:?} | confluent calls {} (list {} create {} get {}; role bindings: list {} create {}; 429 {}) | RSS {:.1} MiB, CPU {:.1} s",
                    elapsed.as_secs_f64(),
                    snap.ready,
                    snap.other,
                    c.total - calls0.total,
                    c.list - calls0.list,
                    c.create - calls0.create,
                    c.get - calls0.get,
                    rb.list,
                    rb.create,
                    c.rate_limited - calls0.rate_limited,
                    mib(p.rss_kib),
                    sampler.cpu_secs(proc0, p)
                );
            }
            if elapsed > converge_timeout {
                return (None, snap);
            }
        }
    };
    let ((created_after, failures), (ready_after, snap)) = tokio::join!(create_all, wait_all);
    if !failures.is_empty() {
        return Err(format!("{} creates failed, e.g. {}", failures.len(), failures[0]).into());
    }
    let proc1 = sampler.now(pid);
    row.end_rss_kib = proc1.rss_kib;
    row.last_growth = *lock(&last_growth);
    row.created_after = created_after;
    row.milestones = *lock(&milestones);
    row.ready_after = ready_after;
    row.ready_count = snap.ready;
    row.not_ready = snap.other;
    row.converge_calls = diff(&calls0, &remote.calls());
    row.converge_role_binding_calls = diff_role_bindings(&rb0, &remote.role_binding_calls());
    row.converge_kube_writes = match (writes0, kube_writes(kube).await) {
        // minus the benchmark's own N creates
        (Some(a), Some(b)) => Some(b.saturating_sub(a).saturating_sub(n)),
        _ => None,
    };
    row.converge_cpu = sampler.cpu_secs(proc0, proc1);
    match ready_after {
        Some(t) => eprintln!(
            "  all {n} Ready after {} (created after {}); {:.2} × the bound; {} Confluent calls",
            secs(t),
            secs(created_after),
            t.as_secs_f64() / bound.as_secs_f64(),
            row.converge_calls.total
        ),
        None => eprintln!(
            "  NOT all Ready after {}: {}/{n} Ready",
            secs(converge_timeout),
            row.ready_count
        ),
    }

    // --- steady state, with remote accepts timed meanwhile
    if ready_after.is_some() {
        let window = opts.resync * opts.steady_windows.max(1);
        eprintln!(
            "  steady state: {} resync windows ({}), accepting {} invitations meanwhile",
            opts.steady_windows,
            secs(window),
            opts.accept_samples
        );
        let mut picks = snapshot(&spread, true).await?.ready_ids;
        fastrand::shuffle(&mut picks);
        picks.truncate(opts.accept_samples);
        let c0 = remote.calls();
        let rb0 = remote.role_binding_calls();
        let w0 = kube_writes(kube).await;
        let p0 = sampler.now(pid);
        let steady_started = Instant::now();
        let measure = async {
            tokio::time::sleep(window).await;
            let c1 = remote.calls();
            let rb1 = remote.role_binding_calls();
            let w1 = kube_writes(kube).await;
            let p1 = sampler.now(pid);
            (c1, rb1, w1, p1, Instant::now())
        };
        let accepts = time_accepts(kube, &remote, picks, opts.resync, accept_timeout);
        let ((c1, rb1, w1, p1, steady_ended), accepts) = tokio::join!(measure, accepts);
        row.steady_calls = Some(diff(&c0, &c1));
        row.steady_role_binding_calls = Some(diff_role_bindings(&rb0, &rb1));
        row.steady_kube_writes = match (w0, w1) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        row.steady_cpu = sampler.cpu_secs(p0, p1);
        row.steady_rss_kib = Some(
            p1.rss_kib
                .max(sampler.max_rss_kib(steady_started, steady_ended)),
        );
        row.accepts = accepts;
        let per = f64::from(opts.steady_windows.max(1));
        eprintln!(
            "  steady: {:.1} Confluent calls per resync ({:.1} invitation lists, {:.1} role-binding lists), RSS {:.1} MiB, accepts {:?}",
            row.steady_calls.as_ref().map_or(0, |c| c.total) as f64 / per,
            row.steady_calls.as_ref().map_or(0, |c| c.list) as f64 / per,
            row.steady_role_binding_calls.as_ref().map_or(0, |c| c.list) as f64 / per,
            mib(row.steady_rss_kib.unwrap_or(0)),
            row.accepts
        );
    } else {
        row.steady_rss_kib = None;
    }
    let mut total = n;
    if ready_after.is_some() && opts.after_halving > 0 {
        let halving = halve_and_add(opts, &spread, &remote, n).await;
        total += halving.extra;
        row.halving = Some(halving);
    }
    let last = sampler.now(pid);
    row.peak_rss_kib = last.hwm_kib;
    row.all_calls = diff(&calls0, &remote.calls());
    row.load = (load_before, loadavg());

    // --- stop the operator, then look at what it left
    op.stop(Duration::from_secs(10));
    sampler_task.abort();
    let (missing, duplicates, remote_total) = {
        let remote = remote.clone();
        tokio::task::spawn_blocking(move || check_duplicates(&remote, total)).await?
    };
    row.missing = missing;
    row.duplicates = duplicates;
    row.remote_total = remote_total;
    if bindings.any() {
        let check = {
            let remote = remote.clone();
            tokio::task::spawn_blocking(move || check_bindings(&remote, total, bindings)).await?
        };
        eprintln!(
            "  role bindings: {} of {} listed items bound exactly once, {} missing, {} duplicates ({} bindings in the mock)",
            check.bound_once, check.expected, check.missing, check.duplicates, check.remote_total
        );
        row.binding_check = Some(check);
    }
    let (warnings, errors, top) = read_log(&row.log_path);
    row.log_warnings = warnings;
    row.log_errors = errors;
    row.log_top = top;
    eprintln!(
        "  remote: {remote_total} invitations, {missing} emails without one, {duplicates} duplicates; operator log: {warnings} WARN, {errors} ERROR {:?}",
        row.log_top
    );
    server.shutdown().await;
    if !opts.no_cleanup {
        run::cleanup(world, &spread, opts.create_parallelism.max(1)).await;
    }
    Ok(row)
}

/// The mock halves its limit, then `--after-halving` more Invitations are created: how long they
/// take to be Ready and how many calls were answered 429 meanwhile.
pub async fn halve_and_add(opts: &Opts, spread: &Spread, remote: &MockHandle, n: u64) -> Halving {
    let extra = opts.after_halving;
    let old = remote.rate_limit();
    let rate = old.map_or(opts.rate, |l| l.per_second) / 2.0;
    let burst = old.map_or(opts.burst, |l| l.burst).div_ceil(2).max(1);
    remote.set_rate_limit(Some(RateLimit {
        per_second: rate,
        burst,
    }));
    let bindings = Bindings::of(opts);
    let timeout = (bound_with_bindings(extra, rate, bindings) * 4).max(Duration::from_secs(120));
    eprintln!(
        "  halving: the mock now allows {} req/s (burst {burst}); {extra} more Invitations",
        rate_str(rate)
    );
    let c0 = remote.calls();
    let t0 = Instant::now();
    let failures: Vec<String> = futures::stream::iter(n..n + extra)
        .map(|i| create_one(spread, i, bindings))
        .buffer_unordered(opts.create_parallelism.max(1))
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    for f in &failures {
        eprintln!("  {f}");
    }
    let mut ready_after = None;
    while t0.elapsed() < timeout {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(snap) = snapshot(spread, false).await
            && snap.ready == n + extra
        {
            ready_after = Some(t0.elapsed());
            break;
        }
    }
    let calls = diff(&c0, &remote.calls());
    eprintln!(
        "  halving: {} Ready after {}; {} of {} calls answered 429",
        extra,
        ready_after.map_or("(timeout)".into(), secs),
        calls.rate_limited,
        calls.total
    );
    Halving {
        rate,
        extra,
        ready_after,
        timeout,
        calls,
    }
}

/// Accepts each picked invitation remotely, spread evenly over one resync interval (so the
/// samples fall at different points of the operator's polling cycle), and times until its status
/// says Accepted.
pub async fn time_accepts(
    kube: &kube::Client,
    remote: &MockHandle,
    picks: Vec<(String, String, String)>,
    spread: Duration,
    timeout: Duration,
) -> Vec<Option<Duration>> {
    let k = picks.len().max(1) as u32;
    let waits = picks
        .into_iter()
        .enumerate()
        .map(|(i, (ns, name, id))| async move {
            let api: Api<Invitation> = Api::namespaced(kube.clone(), &ns);
            tokio::time::sleep(spread * i as u32 / k).await;
            if let Err(e) = remote.accept(&id) {
                eprintln!("  accept {id} ({name}) refused by the mock: {e}");
                return None;
            }
            let t = Instant::now();
            loop {
                if let Ok(inv) = api.get(&name).await
                    && inv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Accepted")
                {
                    return Some(t.elapsed());
                }
                if t.elapsed() > timeout {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    futures::future::join_all(waits).await
}
