//! The scale benchmark: the real operator binary against a
//! real kube-apiserver (from `KUBECONFIG`) and the project's Confluent mock (in-process, with a
//! set latency and per-credential rate limit), for N Invitations per run.
//!
//! One command runs it on a throwaway control plane and writes `BENCHMARKS.md`:
//! `deploy/local/bench.sh` (arguments are passed through, e.g. `--sizes 100`). Against an API
//! server of your own: `KUBECONFIG=... cargo bench --locked --bench scale -- --sizes 100`.
//! Without `KUBECONFIG` it says so and exits successfully.
//!
//! For each N: a fresh mock and namespace, one operator process watching that namespace; N
//! Invitations created (bounded concurrency), the clock started at the first create and stopped
//! when a paginated LIST shows all of them Ready=True. Then, for `--steady-windows` resync
//! intervals, the Confluent calls (and the operator's Kubernetes writes) of the steady state,
//! while a few invitations are accepted remotely and the time until their status says Accepted
//! is measured. Then the mock halves its limit and `--after-halving` more Invitations are created
//! (their time to Ready and the 429s meanwhile). With `--role-bindings K`, every Invitation also
//! lists K role bindings over `--binding-scopes` shared environments: all Ready then means every
//! binding Bound, the steady state's calls are split into invitation lists, role-binding lists
//! and the rest (section "Steady state with bindings"), and the mock must hold exactly one
//! binding per listed item at the end. With `--secrets S`, the N Invitations are spread over S
//! namespaces, each with a credentials Secret holding the same API key, and the operator (with
//! no default credentials) selects them by label: what one credential held by many Secrets
//! costs (section "Secrets sharing one key"). Last, every email must have exactly one live
//! remote invitation. The operator's RSS and CPU time are sampled from /proc every second
//! throughout.
//!
//! With `--groups`, the N Invitations come as the members of InvitationGroups of at most 500
//! (the operator makes their Invitations): the steady state must cost what N Invitations cost.
//!
//! Each size runs (`--runs`): the operator with default flags (no rate flags: it learns the limit;
//! the headline), the operator told the mock's limit (`--confluent-rate-limit`), and the peers'
//! strategy (a blind POST per create, a GET per resource per poll, as Terraform, Pulumi and
//! Crossplane do) measured in this process against a fresh mock with the same settings.
//!
//! Targets are reported, never asserted: a missed one shows as "no" in the table.
//!
//! The files: `flags.rs` (the settings), `run.rs` (the world of a run, built with `test-support`),
//! `invitations.rs` (the load), `phases.rs` (one run, phase by phase), `peers.rs` (the peers'
//! strategy), `measure.rs` and `machine.rs` (what is measured besides time), `report.rs` and
//! `units.rs`, `sections.rs` (BENCHMARKS.md).

mod error;
mod flags;
mod invitations;
mod machine;
mod measure;
mod notes;
mod peers;
mod phases;
mod report;
mod run;
mod sections;
mod units;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use test_support::ControlPlane;

use error::BoxError;
use flags::{Opts, RunKind};
use machine::Machine;
use peers::run_peers;
use phases::run_size;
use report::render;
use run::World;
use units::secs;

fn main() -> ExitCode {
    let opts = Opts::parse();
    let Ok(control_plane) = ControlPlane::from_env() else {
        eprintln!(
            "scale benchmark skipped: KUBECONFIG is not set. Run deploy/local/bench.sh, which \
             starts a throwaway kube-apiserver, or point KUBECONFIG at a test cluster."
        );
        return ExitCode::SUCCESS;
    };
    // (multi-threaded, every driver enabled)
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(opts, control_plane)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every size, every run of it; the report rewritten after each.
async fn run(opts: Opts, control_plane: ControlPlane) -> Result<(), BoxError> {
    let operator = opts
        .operator
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_confluent-invitation-operator")));
    if !operator.is_file() {
        return Err(format!(
            "no operator binary at {} (build it: cargo build --release --locked --bin \
             confluent-invitation-operator)",
            operator.display()
        )
        .into());
    }
    let log_dir = opts
        .log_dir
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-logs"));
    std::fs::create_dir_all(&log_dir)?;
    let kube = control_plane.client().await?;
    let machine = Machine::describe(&kube, &operator).await;
    eprintln!("scale: {}", machine.one_line());
    test_support::install_crd(&kube, Duration::from_secs(60)).await?;
    let world = World {
        control_plane,
        kube,
        binary: operator,
        log_dir,
    };
    let mut rows = Vec::new();
    let mut peers = Vec::new();
    for &n in &opts.sizes {
        let started = Instant::now();
        eprintln!(
            "\n=== N = {n}: rate limit {} req/s (burst {}), latency {} ms, resync {}",
            opts.rate_for(n),
            opts.burst,
            opts.latency_ms,
            secs(opts.resync)
        );
        for &kind in &opts.runs {
            let started = Instant::now();
            if kind == RunKind::Peers {
                eprintln!("--- N = {n}: the peers' strategy");
                peers.push(run_peers(&opts, n).await?);
            } else {
                eprintln!("--- N = {n}: the operator, {kind:?} flags");
                let mut row = run_size(&opts, &world, n, kind).await?;
                row.wall = started.elapsed();
                rows.push(row);
            }
            eprintln!("--- N = {n}, {kind:?} done in {}", secs(started.elapsed()));
            let report = render(&opts, &machine, &rows, &peers);
            if let Some(out) = &opts.out {
                std::fs::write(out, &report)?;
            }
        }
        eprintln!("=== N = {n} done in {}", secs(started.elapsed()));
    }
    println!("{}", render(&opts, &machine, &rows, &peers));
    Ok(())
}
