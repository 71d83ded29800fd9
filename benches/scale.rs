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
//! (their time to Ready and the 429s meanwhile). Last, every email must have exactly one live
//! remote invitation. The operator's RSS and CPU time are sampled from /proc every second
//! throughout.
//!
//! Each size runs (`--runs`): the operator with default flags (no rate flags: it learns the limit;
//! the headline), the operator told the mock's limit (`--confluent-rate-limit`), and the peers'
//! strategy (a blind POST per create, a GET per resource per poll, as Terraform, Pulumi and
//! Crossplane do) measured in this process against a fresh mock with the same settings.
//!
//! Targets are reported, never asserted: a missed one shows as "no" in the table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use confluent_invitation_operator::cli::parse_duration;
use confluent_invitation_operator::crd::{DeletionPolicy, Invitation, InvitationSpec};
use confluent_invitation_operator::mock::{self, CallCounts, MockConfig, MockHandle, RateLimit};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
#[path = "../tests/common/crd.rs"]
mod common_crd;

const API_KEY: &str = "bench-key";
const API_SECRET: &str = "bench-secret-not-a-real-one";
/// The mock's (and Confluent's) largest page: what the physical bound counts list pages in.
const PAGE: u64 = 100;
/// Page size of the benchmark's own LISTs of Invitations.
const KUBE_PAGE: u32 = 500;

/// The benchmark's settings (all optional).
#[derive(Debug, Parser)]
#[command(
    name = "scale",
    about = "Scale benchmark: the operator against a real kube-apiserver and the Confluent mock"
)]
struct Opts {
    /// Numbers of Invitations, one run each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    sizes: Vec<u64>,
    /// The mock's per-credential rate limit (requests/s), also given to the operator as its
    /// ceiling (--confluent-rate-limit) in the `configured` runs.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// What runs at each size: `default` (the operator with no rate flags: it learns the limit),
    /// `configured` (--confluent-rate-limit set to the mock's limit), `peers` (the peers'
    /// strategy, in this process: a blind POST per create, a GET per resource per poll).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "default,configured,peers"
    )]
    runs: Vec<RunKind>,
    /// After the steady state the mock halves its limit and this many more Invitations are
    /// created (0: no such phase).
    #[arg(long = "after-halving", default_value_t = 100)]
    after_halving: u64,
    /// Calls in flight at once in the peers' strategy (Terraform's default -parallelism).
    #[arg(long = "peer-parallelism", default_value_t = 10)]
    peer_parallelism: usize,
    /// Another rate limit for one size, e.g. `10000=100` (repeatable); the table says so.
    #[arg(long = "rate-for", value_parser = parse_rate_for)]
    rate_for: Vec<(u64, f64)>,
    /// Burst of the mock's bucket and of the operator's (--confluent-rate-burst, `configured`).
    #[arg(long, default_value_t = 20)]
    burst: u32,
    /// Latency the mock adds to every API request, in milliseconds.
    #[arg(long = "latency-ms", default_value_t = 50)]
    latency_ms: u64,
    /// The operator's --resync-interval.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    resync: Duration,
    /// How many resync intervals the steady state is measured over.
    #[arg(long = "steady-windows", default_value_t = 2)]
    steady_windows: u32,
    /// The operator's --concurrency.
    #[arg(long, default_value_t = 16)]
    concurrency: u16,
    /// Invitation creates in flight at once.
    #[arg(long = "create-parallelism", default_value_t = 32)]
    create_parallelism: usize,
    /// How many invitations are accepted remotely to time the way to status.
    #[arg(long = "accept-samples", default_value_t = 5)]
    accept_samples: usize,
    /// Give up on an accept reaching status after this long (default: 3 resync intervals, at
    /// least 60s).
    #[arg(long = "accept-timeout", value_parser = parse_duration)]
    accept_timeout: Option<Duration>,
    /// Give up waiting for all Ready after this long (default: 4 × the bound, at least 180s).
    #[arg(long = "converge-timeout", value_parser = parse_duration)]
    converge_timeout: Option<Duration>,
    /// Also write the report (markdown) to this file, rewritten after every size.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The operator binary (default: the release build cargo made for this benchmark).
    #[arg(long)]
    operator: Option<PathBuf>,
    /// Where the operator's logs go (default: target/bench-logs).
    #[arg(long = "log-dir")]
    log_dir: Option<PathBuf>,
    /// Leave each run's namespace and Invitations behind (for a throwaway control plane).
    #[arg(long = "no-cleanup")]
    no_cleanup: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One run at one size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
enum RunKind {
    /// The operator as users run it: no rate flags.
    #[default]
    Default,
    /// The operator told the mock's limit.
    Configured,
    /// Terraform's, Pulumi's and Crossplane's way, measured in this process.
    Peers,
}

fn parse_rate_for(s: &str) -> Result<(u64, f64), String> {
    let (n, r) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not SIZE=RATE"))?;
    let n = n.trim().parse().map_err(|e| format!("{n:?}: {e}"))?;
    let r: f64 = r.trim().parse().map_err(|e| format!("{r:?}: {e}"))?;
    if r <= 0.0 {
        return Err(format!("{s:?}: the rate must be positive"));
    }
    Ok((n, r))
}

impl Opts {
    fn rate_for(&self, n: u64) -> f64 {
        self.rate_for
            .iter()
            .rev()
            .find(|(size, _)| *size == n)
            .map_or(self.rate, |(_, r)| *r)
    }

    fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!(
            "scale benchmark skipped: KUBECONFIG is not set. Run deploy/local/bench.sh, which \
             starts a throwaway kube-apiserver, or point KUBECONFIG at a test cluster."
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn run(opts: Opts) -> Result<(), BoxError> {
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
    let kube = kube::Client::try_default().await?;
    let machine = Machine::describe(&kube, &operator).await;
    eprintln!("scale: {}", machine.one_line());
    common_crd::install_crd(&kube, Duration::from_secs(60)).await?;
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
                let mut row = run_size(&opts, &kube, &operator, &log_dir, n, kind).await?;
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

// ---------------------------------------------------------------------------------------------
// The machine and the settings

struct Machine {
    cpus: usize,
    cpu_model: String,
    memory: String,
    kernel: String,
    apiserver: String,
    operator_version: String,
    commit: String,
    date: String,
}

impl Machine {
    async fn describe(kube: &kube::Client, operator: &Path) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
            .unwrap_or_else(|| "unknown CPU".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or_else(
                || "unknown".into(),
                |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0),
            );
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| format!("Linux {}", s.trim()))
            .unwrap_or_else(|_| "unknown kernel".into());
        let apiserver = match kube.apiserver_version().await {
            Ok(v) => format!("{} ({})", v.git_version, v.platform),
            Err(e) => format!("unknown ({e})"),
        };
        let operator_version = command_output(operator.as_os_str(), &["--version"])
            .unwrap_or_else(|| "unknown".into());
        // bench.sh says what it built the operator from; otherwise, the tree as it is now
        let commit = match std::env::var("BENCH_SOURCE").ok().filter(|s| !s.is_empty()) {
            Some(source) => source,
            None => tree_state(env!("CARGO_MANIFEST_DIR")),
        };
        Self {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            memory,
            kernel,
            apiserver,
            operator_version,
            commit,
            date: jiff::Zoned::now().strftime("%Y-%m-%d %H:%M %Z").to_string(),
        }
    }

    fn one_line(&self) -> String {
        format!(
            "{} CPUs ({}), {} memory, {}; kube-apiserver {}; {} built from {}",
            self.cpus,
            self.cpu_model,
            self.memory,
            self.kernel,
            self.apiserver,
            self.operator_version,
            self.commit
        )
    }
}

/// The commit of the working tree, and whether it has uncommitted changes.
fn tree_state(dir: &str) -> String {
    let Some(commit) = command_output("git".as_ref(), &["-C", dir, "rev-parse", "--short", "HEAD"])
    else {
        return "unknown".into();
    };
    let dirty = command_output(
        "git".as_ref(),
        &["-C", dir, "status", "--porcelain", "--untracked-files=no"],
    )
    .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("commit {commit} + uncommitted changes")
    } else {
        format!("commit {commit}")
    }
}

fn command_output(program: &std::ffi::OsStr, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

// ---------------------------------------------------------------------------------------------
// The operator process and its resource use

struct Operator {
    child: Child,
}

impl Operator {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL if it does not stop within a few seconds.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One reading of /proc for the operator.
#[derive(Clone, Copy, Debug, Default)]
struct ProcSample {
    rss_kib: u64,
    hwm_kib: u64,
    cpu_ticks: u64,
}

impl ProcSample {
    fn read(pid: u32) -> Option<Self> {
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
struct Sampler {
    samples: Arc<Mutex<Vec<(Instant, ProcSample)>>>,
    ticks_per_second: f64,
}

impl Sampler {
    fn start(pid: u32) -> (Self, tokio::task::JoinHandle<()>) {
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
    fn now(&self, pid: u32) -> ProcSample {
        match ProcSample::read(pid) {
            Some(p) => {
                lock(&self.samples).push((Instant::now(), p));
                p
            }
            None => self.last(),
        }
    }

    fn last(&self) -> ProcSample {
        lock(&self.samples).last().map(|s| s.1).unwrap_or_default()
    }

    fn cpu_secs(&self, from: ProcSample, to: ProcSample) -> f64 {
        to.cpu_ticks.saturating_sub(from.cpu_ticks) as f64 / self.ticks_per_second
    }

    /// The largest RSS sampled in [from, to].
    fn max_rss_kib(&self, from: Instant, to: Instant) -> u64 {
        lock(&self.samples)
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, p)| p.rss_kib)
            .max()
            .unwrap_or(0)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn free_port() -> Result<SocketAddr, BoxError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

fn spawn_operator(
    opts: &Opts,
    binary: &Path,
    ns: &str,
    mock_url: &str,
    rate: Option<f64>,
    http: SocketAddr,
    log: &Path,
) -> Result<Operator, BoxError> {
    let kubeconfig = std::env::var("KUBECONFIG")?;
    let log_file = std::fs::File::create(log)?;
    let mut command = Command::new(binary);
    command.arg("run");
    // default flags: none, the operator learns the limit from the server
    if let Some(rate) = rate {
        command
            .args(["--confluent-rate-limit", &rate.to_string()])
            .args(["--confluent-rate-burst", &opts.burst.to_string()]);
    }
    let child = command
        .args(["--watch-namespace", ns])
        .args([
            "--resync-interval",
            &format!("{}ms", opts.resync.as_millis()),
        ])
        .args(["--concurrency", &opts.concurrency.to_string()])
        .args(["--http-addr", &http.to_string()])
        .args(["--log-format", "json"])
        .env_clear()
        .env("KUBECONFIG", kubeconfig)
        .env("CONFLUENT_CLOUD_ENDPOINT", mock_url)
        .env("CONFLUENT_CLOUD_API_KEY", API_KEY)
        .env("CONFLUENT_CLOUD_API_SECRET", API_SECRET)
        // BENCH_OPERATOR_LOG (e.g. `info`) for a closer look; the table counts WARN/ERROR lines.
        .env(
            "RUST_LOG",
            std::env::var("BENCH_OPERATOR_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env("POD_NAME", format!("bench-{ns}"))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()?;
    Ok(Operator { child })
}

async fn wait_ready(op: &mut Operator, http: SocketAddr, log: &Path) -> Result<(), BoxError> {
    let url = format!("http://{http}/readyz");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(&url).await
            && r.status().is_success()
        {
            return Ok(());
        }
        if !matches!(op.child.try_wait(), Ok(None)) || Instant::now() > deadline {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("the operator never became ready; its log:\n{text}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes side

fn invitation(i: u64) -> Invitation {
    Invitation::new(
        &name_of(i),
        InvitationSpec {
            email: email_of(i),
            auth_type: None,
            credentials_secret_ref: None,
            deletion_policy: DeletionPolicy::Delete,
            reinvite_on_expiry: false,
        },
    )
}

fn name_of(i: u64) -> String {
    format!("inv-{i:05}")
}

fn email_of(i: u64) -> String {
    format!("bench-user-{i:05}@example.com")
}

/// Creates one Invitation, retrying what the API server may refuse under load.
async fn create_one(api: &Api<Invitation>, i: u64) -> Result<(), String> {
    let inv = invitation(i);
    let mut attempt = 0u32;
    loop {
        match api.create(&PostParams::default(), &inv).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => return Ok(()),
            Err(e) if attempt < 8 => {
                attempt += 1;
                eprintln!("  create {} failed ({e}); retrying", name_of(i));
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            }
            Err(e) => return Err(format!("create {}: {e}", name_of(i))),
        }
    }
}

/// What one LIST of the namespace's Invitations showed.
#[derive(Debug, Default)]
struct Snapshot {
    total: u64,
    ready: u64,
    /// Not-ready reasons (or phases) and how many.
    other: BTreeMap<String, u64>,
    /// (name, remote invitation id) of the Ready ones.
    ready_ids: Vec<(String, String)>,
}

fn is_ready(inv: &Invitation) -> bool {
    inv.status
        .as_ref()
        .and_then(|s| s.ready())
        .is_some_and(|c| c.status == "True")
}

async fn snapshot(api: &Api<Invitation>, keep_ids: bool) -> Result<Snapshot, kube::Error> {
    let mut snap = Snapshot::default();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(KUBE_PAGE);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await?;
        for inv in &page.items {
            snap.total += 1;
            if is_ready(inv) {
                snap.ready += 1;
                if keep_ids
                    && let Some(id) = inv.status.as_ref().and_then(|s| s.invitation_id.clone())
                {
                    snap.ready_ids.push((inv.name_any(), id));
                }
            } else {
                let why = inv
                    .status
                    .as_ref()
                    .and_then(|s| s.ready().map(|c| c.reason.clone()))
                    .unwrap_or_else(|| "no status yet".into());
                *snap.other.entry(why).or_default() += 1;
            }
        }
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(snap);
        }
    }
}

/// The API server's count of write requests (not deletes) to Invitations and Events since it
/// started, from its /metrics; `None` if unreadable.
async fn kube_writes(kube: &kube::Client) -> Option<u64> {
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

/// Kills nothing: strips the finalizers (the operator is stopped by then) and deletes the
/// namespace, without waiting for it to go.
async fn cleanup(kube: &kube::Client, api: &Api<Invitation>, ns: &str, parallelism: usize) {
    let names: Vec<String> = match snapshot_names(api).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("  cleanup: cannot list {ns}: {e}");
            return;
        }
    };
    let patch = serde_json::json!({"metadata": {"finalizers": null}});
    futures::stream::iter(names)
        .map(|name| {
            let patch = patch.clone();
            async move {
                let _ = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
            }
        })
        .buffer_unordered(parallelism)
        .collect::<Vec<()>>()
        .await;
    let nss: Api<Namespace> = Api::all(kube.clone());
    if let Err(e) = nss.delete(ns, &DeleteParams::default()).await {
        eprintln!("  cleanup: namespace {ns} not deleted: {e}");
    }
}

async fn snapshot_names(api: &Api<Invitation>) -> Result<Vec<String>, kube::Error> {
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(KUBE_PAGE);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list_metadata(&lp).await?;
        names.extend(page.items.iter().map(|m| m.name_any()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(names);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One run

/// What one size measured.
#[derive(Debug, Default)]
struct Row {
    n: u64,
    rate: f64,
    /// Default flags or configured.
    kind: RunKind,
    /// After the mock halved its limit (None: not run).
    halving: Option<Halving>,
    /// How long creating the N objects took.
    created_after: Duration,
    /// All Ready after (None: not within the timeout).
    ready_after: Option<Duration>,
    /// How many were Ready when the wait ended.
    ready_count: u64,
    /// When 25%, 50% and 75% were Ready.
    milestones: [Option<Duration>; 3],
    /// Not-ready reasons when the wait ended without all Ready.
    not_ready: BTreeMap<String, u64>,
    converge_timeout: Duration,
    bound: Duration,
    /// Confluent calls from the first create to all Ready.
    converge_calls: CallCounts,
    /// The operator's Kubernetes writes (Invitations, Events) from first create to all Ready.
    converge_kube_writes: Option<u64>,
    converge_cpu: f64,
    /// Confluent calls during the steady windows (None: not measured).
    steady_calls: Option<CallCounts>,
    steady_kube_writes: Option<u64>,
    steady_cpu: f64,
    windows: u32,
    /// Confluent calls over the whole run (for the 429 share).
    all_calls: CallCounts,
    peak_rss_kib: u64,
    /// Largest RSS during the steady windows (None: never all Ready, so no steady state).
    steady_rss_kib: Option<u64>,
    /// RSS when the wait for all Ready ended.
    end_rss_kib: u64,
    /// When the Ready count last grew.
    last_growth: Duration,
    /// Time for a remote accept to reach status, per sample (None: not seen in time).
    accepts: Vec<Option<Duration>>,
    accept_timeout: Duration,
    /// Emails without a live remote invitation, and extra live invitations beyond one.
    missing: u64,
    duplicates: u64,
    remote_total: usize,
    log_warnings: u64,
    log_errors: u64,
    log_top: Vec<(String, u64)>,
    log_path: PathBuf,
    wall: Duration,
    /// The machine's 1-minute load average before and after the run.
    load: (f64, f64),
}

/// The phase where the mock halves its limit and more Invitations arrive.
#[derive(Debug, Default)]
struct Halving {
    /// The limit after halving.
    rate: f64,
    extra: u64,
    /// From the first of the extra creates until all are Ready (None: not within the timeout).
    ready_after: Option<Duration>,
    timeout: Duration,
    /// Confluent calls from the halving until all Ready.
    calls: CallCounts,
}

/// The 1-minute load average: how busy the (shared) machine was.
fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn physical_bound(n: u64, rate: f64) -> Duration {
    Duration::from_secs_f64((n + n.div_ceil(PAGE)) as f64 / rate)
}

fn diff(a: &CallCounts, b: &CallCounts) -> CallCounts {
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

async fn run_size(
    opts: &Opts,
    kube: &kube::Client,
    binary: &Path,
    log_dir: &Path,
    n: u64,
    kind: RunKind,
) -> Result<Row, BoxError> {
    let rate = opts.rate_for(n);
    let bound = physical_bound(n, rate);
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
        converge_timeout,
        accept_timeout,
        windows: opts.steady_windows,
        ..Row::default()
    };

    let ns = format!("bench-{n}-{:04x}", fastrand::u16(..));
    let nss: Api<Namespace> = Api::all(kube.clone());
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(ns.clone());
    nss.create(&PostParams::default(), &namespace).await?;
    let api: Api<Invitation> = Api::namespaced(kube.clone(), &ns);

    let server = mock::start(
        "127.0.0.1:0".parse()?,
        MockConfig {
            api_keys: vec![(API_KEY.into(), API_SECRET.into())],
            latency: opts.latency(),
            rate_limit: Some(RateLimit {
                per_second: rate,
                burst: opts.burst,
            }),
            ..MockConfig::default()
        },
    )
    .await?;
    let remote = server.state();
    let http = free_port()?;
    row.log_path = log_dir.join(format!("{ns}.log"));
    let mut op = spawn_operator(
        opts,
        binary,
        &ns,
        &server.base_url(),
        (kind == RunKind::Configured).then_some(rate),
        http,
        &row.log_path,
    )?;
    let pid = op.pid();
    wait_ready(&mut op, http, &row.log_path).await?;
    let (sampler, sampler_task) = Sampler::start(pid);
    eprintln!(
        "  namespace {ns}, mock {}, operator pid {pid} (log {}); bound {} ({} creates + {} list pages at {} req/s), timeout {}",
        server.base_url(),
        row.log_path.display(),
        secs(bound),
        n,
        n.div_ceil(PAGE),
        rate,
        secs(converge_timeout)
    );

    // --- convergence
    let calls0 = remote.calls();
    let writes0 = kube_writes(kube).await;
    let proc0 = sampler.now(pid);
    let created = AtomicUsize::new(0);
    let t0 = Instant::now();
    let create_all = async {
        let failures: Vec<String> = futures::stream::iter(0..n)
            .map(|i| {
                let api = &api;
                let created = &created;
                async move {
                    let r = create_one(api, i).await;
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
            let snap = match snapshot(&api, false).await {
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
                let p = sampler.last();
                eprintln!(
                    "  t={:>6.1}s created {done}/{n} ready {}/{n} {:?} | confluent calls {} (list {} create {} get {}; 429 {}) | RSS {:.1} MiB, CPU {:.1} s",
                    elapsed.as_secs_f64(),
                    snap.ready,
                    snap.other,
                    c.total - calls0.total,
                    c.list - calls0.list,
                    c.create - calls0.create,
                    c.get - calls0.get,
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
        let mut picks = snapshot(&api, true).await?.ready_ids;
        fastrand::shuffle(&mut picks);
        picks.truncate(opts.accept_samples);
        let c0 = remote.calls();
        let w0 = kube_writes(kube).await;
        let p0 = sampler.now(pid);
        let steady_started = Instant::now();
        let measure = async {
            tokio::time::sleep(window).await;
            let c1 = remote.calls();
            let w1 = kube_writes(kube).await;
            let p1 = sampler.now(pid);
            (c1, w1, p1, Instant::now())
        };
        let accepts = time_accepts(&api, &remote, picks, opts.resync, accept_timeout);
        let ((c1, w1, p1, steady_ended), accepts) = tokio::join!(measure, accepts);
        row.steady_calls = Some(diff(&c0, &c1));
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
        eprintln!(
            "  steady: {:.1} Confluent calls per resync, RSS {:.1} MiB, accepts {:?}",
            row.steady_calls.as_ref().map_or(0, |c| c.total) as f64
                / f64::from(opts.steady_windows.max(1)),
            mib(row.steady_rss_kib.unwrap_or(0)),
            row.accepts
        );
    } else {
        row.steady_rss_kib = None;
    }
    let mut total = n;
    if ready_after.is_some() && opts.after_halving > 0 {
        let halving = halve_and_add(opts, &api, &remote, n).await;
        total += halving.extra;
        row.halving = Some(halving);
    }
    let last = sampler.now(pid);
    row.peak_rss_kib = last.hwm_kib;
    row.all_calls = diff(&calls0, &remote.calls());
    row.load = (load_before, loadavg());

    // --- stop the operator, then look at what it left
    op.stop();
    sampler_task.abort();
    let (missing, duplicates, remote_total) = {
        let remote = remote.clone();
        tokio::task::spawn_blocking(move || check_duplicates(&remote, total)).await?
    };
    row.missing = missing;
    row.duplicates = duplicates;
    row.remote_total = remote_total;
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
        cleanup(kube, &api, &ns, opts.create_parallelism.max(1)).await;
    }
    Ok(row)
}

// ---------------------------------------------------------------------------------------------
// The peers' strategy

/// What the peers' strategy measured at one size.
#[derive(Debug, Default)]
struct PeerRow {
    n: u64,
    rate: f64,
    /// From the first POST until every one was answered 2xx.
    sent_after: Duration,
    /// Confluent calls until then.
    create_calls: CallCounts,
    /// How long one poll (a GET per resource) took.
    poll_took: Duration,
    /// Confluent calls of one poll.
    poll_calls: CallCounts,
    duplicates: u64,
    missing: u64,
}

/// Terraform, Pulumi (the same provider code) and Crossplane (Terraform's code inside) create
/// with a blind POST and observe with a GET per resource per refresh/poll; their HTTP client
/// retries a 429 after `Retry-After`. Measured here against a fresh mock with the same settings.
async fn run_peers(opts: &Opts, n: u64) -> Result<PeerRow, BoxError> {
    let rate = opts.rate_for(n);
    let server = mock::start(
        "127.0.0.1:0".parse()?,
        MockConfig {
            api_keys: vec![(API_KEY.into(), API_SECRET.into())],
            latency: opts.latency(),
            rate_limit: Some(RateLimit {
                per_second: rate,
                burst: opts.burst,
            }),
            ..MockConfig::default()
        },
    )
    .await?;
    let remote = server.state();
    let base = server.base_url();
    let http = reqwest::Client::new();
    let parallelism = opts.peer_parallelism.max(1);
    let c0 = remote.calls();
    let t0 = Instant::now();
    let ids: Vec<Result<String, String>> = futures::stream::iter(0..n)
        .map(|i| {
            let body = serde_json::json!({ "email": email_of(i) });
            peer_call(
                &http,
                reqwest::Method::POST,
                format!("{base}/iam/v2/invitations"),
                Some(body),
            )
        })
        .buffer_unordered(parallelism)
        .collect()
        .await;
    let sent_after = t0.elapsed();
    let create_calls = diff(&c0, &remote.calls());
    let ids: Vec<String> = ids.into_iter().collect::<Result<_, _>>()?;
    eprintln!(
        "  peers: {n} POSTs answered 2xx after {} ({} calls, {} answered 429)",
        secs(sent_after),
        create_calls.total,
        create_calls.rate_limited
    );
    // a poll comes a poll interval later, when the server's bucket has refilled
    tokio::time::sleep(Duration::from_secs_f64(f64::from(opts.burst) / rate)).await;
    let c1 = remote.calls();
    let t1 = Instant::now();
    let polled: Vec<Result<String, String>> = futures::stream::iter(ids)
        .map(|id| {
            peer_call(
                &http,
                reqwest::Method::GET,
                format!("{base}/iam/v2/invitations/{id}"),
                None,
            )
        })
        .buffer_unordered(parallelism)
        .collect()
        .await;
    let poll_took = t1.elapsed();
    let poll_calls = diff(&c1, &remote.calls());
    polled.into_iter().collect::<Result<Vec<_>, _>>()?;
    eprintln!(
        "  peers: one poll took {} ({} calls, {} answered 429)",
        secs(poll_took),
        poll_calls.total,
        poll_calls.rate_limited
    );
    let (missing, duplicates, _) = {
        let remote = remote.clone();
        tokio::task::spawn_blocking(move || check_duplicates(&remote, n)).await?
    };
    server.shutdown().await;
    Ok(PeerRow {
        n,
        rate,
        sent_after,
        create_calls,
        poll_took,
        poll_calls,
        duplicates,
        missing,
    })
}

/// One call as the peers' HTTP client makes it: retried after `Retry-After` (at least 1 s) on a
/// 429, after a second on a 5xx or a network error; the `id` of the answer.
async fn peer_call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<serde_json::Value>,
) -> Result<String, String> {
    for _ in 0..100 {
        let mut request = http
            .request(method.clone(), &url)
            .basic_auth(API_KEY, Some(API_SECRET));
        if let Some(body) = &body {
            request = request.json(body);
        }
        let wait = match request.send().await {
            Ok(r) if r.status().is_success() => {
                let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
                return Ok(v["id"].as_str().unwrap_or_default().to_owned());
            }
            Ok(r) if r.status().as_u16() == 429 => r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .unwrap_or(1)
                .max(1),
            Ok(r) if r.status().is_server_error() => 1,
            Ok(r) => return Err(format!("{method} {url}: {}", r.status())),
            Err(_) => 1,
        };
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
    Err(format!("{method} {url}: still failing after 100 attempts"))
}

/// The mock halves its limit, then `--after-halving` more Invitations are created: how long they
/// take to be Ready and how many calls were answered 429 meanwhile.
async fn halve_and_add(opts: &Opts, api: &Api<Invitation>, remote: &MockHandle, n: u64) -> Halving {
    let extra = opts.after_halving;
    let old = remote.rate_limit();
    let rate = old.map_or(opts.rate, |l| l.per_second) / 2.0;
    let burst = old.map_or(opts.burst, |l| l.burst).div_ceil(2).max(1);
    remote.set_rate_limit(Some(RateLimit {
        per_second: rate,
        burst,
    }));
    let timeout = (physical_bound(extra, rate) * 4).max(Duration::from_secs(120));
    eprintln!(
        "  halving: the mock now allows {} req/s (burst {burst}); {extra} more Invitations",
        rate_str(rate)
    );
    let c0 = remote.calls();
    let t0 = Instant::now();
    let failures: Vec<String> = futures::stream::iter(n..n + extra)
        .map(|i| create_one(api, i))
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
        if let Ok(snap) = snapshot(api, false).await
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
async fn time_accepts(
    api: &Api<Invitation>,
    remote: &MockHandle,
    picks: Vec<(String, String)>,
    spread: Duration,
    timeout: Duration,
) -> Vec<Option<Duration>> {
    let k = picks.len().max(1) as u32;
    let waits = picks
        .into_iter()
        .enumerate()
        .map(|(i, (name, id))| async move {
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

/// (emails without a live invitation, live invitations beyond one per email, remote total).
fn check_duplicates(remote: &MockHandle, n: u64) -> (u64, u64, usize) {
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
fn read_log(path: &Path) -> (u64, u64, Vec<(String, u64)>) {
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

// ---------------------------------------------------------------------------------------------
// The report

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 120.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s ({:.1} min)", s / 60.0)
    }
}

/// A duration as the operator's flags spell it.
fn flag_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// 10000 → "10 000".
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn rate_str(r: f64) -> String {
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r}")
    }
}

fn yes_no(met: bool) -> &'static str {
    if met { "yes" } else { "**no**" }
}

fn per_window(c: &Option<CallCounts>, windows: u32) -> Option<f64> {
    c.as_ref()
        .map(|c| c.total as f64 / f64::from(windows.max(1)))
}

fn rss_cell(r: &Row) -> String {
    match r.steady_rss_kib {
        Some(kib) => format!("{:.1} / {:.1} MiB", mib(r.peak_rss_kib), mib(kib)),
        None => format!(
            "{:.1} / n/a MiB ({:.1} when the wait ended)",
            mib(r.peak_rss_kib),
            mib(r.end_rss_kib)
        ),
    }
}

fn accept_summary(row: &Row) -> String {
    if row.accepts.is_empty() {
        return "not measured".into();
    }
    let mut seen: Vec<Duration> = row.accepts.iter().flatten().copied().collect();
    seen.sort();
    let missed = row.accepts.len() - seen.len();
    let mut s = if seen.is_empty() {
        String::from("none seen")
    } else {
        format!(
            "{} / {}",
            secs(seen[seen.len() / 2]),
            secs(*seen.last().unwrap_or(&Duration::ZERO))
        )
    };
    if missed > 0 {
        let _ = write!(
            s,
            "; {missed} of {} not in status within {}",
            row.accepts.len(),
            secs(row.accept_timeout)
        );
    }
    s
}

fn render(opts: &Opts, m: &Machine, rows: &[Row], peers: &[PeerRow]) -> String {
    let mut out = String::new();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Generated by `benches/scale.rs`, run by `deploy/local/bench.sh` (one command: it starts a \
         throwaway etcd + kube-apiserver, builds the operator in release mode and runs \
         `cargo bench --bench scale`). Re-run with `deploy/local/bench.sh` (default sizes \
         100, 1 000 and 10 000; about an hour on the machine below) or e.g. \
         `deploy/local/bench.sh --sizes 100` for a quick look; the file is rewritten by every run, \
         so do not edit it by hand. The project's performance targets (section Targets) are \
         reported, not asserted. Each size runs the operator as users run it (**default flags**: \
         no rate flags, it learns the limit from the server: the headline), the operator told the \
         mock's exact limit (**configured**), and the **peers' strategy** (section Against the \
         peers).\n"
    );
    let _ = writeln!(out, "## Machine and settings\n");
    let _ = writeln!(out, "- date: {}", m.date);
    let _ = writeln!(
        out,
        "- machine: {} CPUs ({}), {} memory, {}; the API server, etcd, the operator and the \
         benchmark (with the mock) share it",
        m.cpus, m.cpu_model, m.memory, m.kernel
    );
    let _ = writeln!(
        out,
        "- Kubernetes: kube-apiserver {} with etcd, local and loopback-only (deploy/local/start-control-plane.sh)",
        m.apiserver
    );
    let _ = writeln!(
        out,
        "- operator: `{}`, release build from {}; flags `--resync-interval {} --concurrency {}`, \
         plus `--confluent-rate-limit <rate> --confluent-rate-burst {}` in the configured runs \
         only, `RUST_LOG={}`, one process watching one namespace per run",
        m.operator_version,
        m.commit,
        flag_duration(opts.resync),
        opts.concurrency,
        opts.burst,
        std::env::var("BENCH_OPERATOR_LOG").unwrap_or_else(|_| "warn".into())
    );
    let overrides: Vec<String> = rows
        .iter()
        .filter(|r| r.rate != opts.rate)
        .map(|r| format!("{} req/s at N = {}", rate_str(r.rate), count(r.n)))
        .collect();
    let _ = writeln!(
        out,
        "- Confluent mock (`src/mock`, in-process): {} ms latency on every request, rate limit {} \
         req/s per credential with a burst of {}{}",
        opts.latency_ms,
        rate_str(opts.rate),
        opts.burst,
        if overrides.is_empty() {
            String::new()
        } else {
            format!(" (**except {}**)", overrides.join(", "))
        }
    );
    let _ = writeln!(
        out,
        "- load: N Invitations (one email each, default credentials) created {} at a time; \
         readiness polled with paginated LISTs; steady state measured over {} resync \
         interval(s); {} invitations accepted remotely per size",
        opts.create_parallelism, opts.steady_windows, opts.accept_samples
    );
    let command = match std::env::var("BENCH_COMMAND") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_owned(),
        _ => format!("cargo bench --bench scale -- {}", args.join(" ")),
    };
    let _ = writeln!(
        out,
        "- command: `{command}`; load average (1 min) of the machine before each size: {}\n",
        rows.iter()
            .map(|r| format!("{:.2} (N = {})", r.load.0, count(r.n)))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let _ = writeln!(out, "## Results\n");
    let _ = writeln!(
        out,
        "| N | operator rate flags | rate limit | all created after | all Ready after | bound | ratio to bound | \
         Confluent calls to all Ready: list / create / get (total) | calls per invitation | \
         429s received | steady calls per resync: measured (list / create / get) | per-object \
         polling would spend | operator Kubernetes writes: per invitation / per resync | RSS \
         peak / steady | CPU seconds: to all Ready / per resync | remote accept → status: median \
         / max | run took |"
    );
    let _ = writeln!(
        out,
        "|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|---|---:|"
    );
    for r in rows {
        let c = &r.converge_calls;
        let ready = match r.ready_after {
            Some(t) => secs(t),
            None => format!(
                "**not within {}** ({}/{} Ready)",
                secs(r.converge_timeout),
                count(r.ready_count),
                count(r.n)
            ),
        };
        let ratio = match r.ready_after {
            Some(t) => format!("{:.2}×", t.as_secs_f64() / r.bound.as_secs_f64()),
            None => format!(
                "> {:.2}×",
                r.converge_timeout.as_secs_f64() / r.bound.as_secs_f64()
            ),
        };
        let steady = match (&r.steady_calls, per_window(&r.steady_calls, r.windows)) {
            (Some(s), Some(w)) => {
                let k = f64::from(r.windows.max(1));
                format!(
                    "{w:.1} ({:.1} / {:.1} / {:.1})",
                    s.list as f64 / k,
                    s.create as f64 / k,
                    s.get as f64 / k
                )
            }
            _ => "not measured".into(),
        };
        let kube_writes = format!(
            "{} / {}",
            r.converge_kube_writes
                .map_or("?".into(), |w| format!("{:.2}", w as f64 / r.n as f64)),
            r.steady_kube_writes.map_or("n/a".into(), |w| format!(
                "{:.1}",
                w as f64 / f64::from(r.windows.max(1))
            ))
        );
        let all = &r.all_calls;
        let _ = writeln!(
            out,
            "| {} | {} | {} req/s | {} | {} | {} | {} | {} / {} / {} ({}) | {:.2} | {} of {} ({:.2}%) | {} | {} | {} | {} | {:.1} / {} | {} | {} |",
            count(r.n),
            kind_label(r.kind),
            rate_str(r.rate),
            secs(r.created_after),
            ready,
            secs(r.bound),
            ratio,
            count(c.list),
            count(c.create),
            count(c.get),
            count(c.total),
            c.total as f64 / r.n as f64,
            count(all.rate_limited),
            count(all.total),
            pct(all.rate_limited, all.total),
            steady,
            count(r.n),
            kube_writes,
            rss_cell(r),
            r.converge_cpu,
            if r.steady_calls.is_some() {
                format!("{:.2}", r.steady_cpu / f64::from(r.windows.max(1)))
            } else {
                "n/a".into()
            },
            accept_summary(r),
            secs(r.wall)
        );
    }

    let _ = writeln!(out, "\n## Targets\n");
    let _ = writeln!(
        out,
        "The project sets the convergence and halving targets at N = 1 000 (20 req/s, 50 ms, \
         default flags) and the memory target at N = 10 000; they are shown for every run, and \
         \"met?\" is in parentheses where no target is set for that size or run or the settings \
         differ from the target's.\n"
    );
    let _ = writeln!(
        out,
        "| N | operator rate flags | target | measured | met? |"
    );
    let _ = writeln!(out, "|---:|---|---|---|---|");
    for r in rows {
        let issue_settings = r.rate == 20.0 && opts.latency_ms == 50 && r.kind == RunKind::Default;
        let label = kind_label(r.kind);
        let scoped = |in_scope: bool, met: bool| -> String {
            if in_scope {
                yes_no(met).to_owned()
            } else {
                format!("({})", if met { "yes" } else { "no" })
            }
        };
        // convergence
        let (measured, met) = match r.ready_after {
            Some(t) => {
                let ratio = t.as_secs_f64() / r.bound.as_secs_f64();
                (
                    format!("{ratio:.2}× ({} for a bound of {})", secs(t), secs(r.bound)),
                    ratio <= 1.1,
                )
            }
            None => (
                format!("not all Ready within {}", secs(r.converge_timeout)),
                false,
            ),
        };
        let _ = writeln!(
            out,
            "| {} | {label} | all Ready within 1.1 × (N creates + ⌈N/100⌉ list pages) / rate | {measured} | {} |",
            count(r.n),
            scoped(r.n == 1000 && issue_settings, met)
        );
        // steady calls
        let limit = r.n.div_ceil(100) + 5;
        let (measured, met) = match per_window(&r.steady_calls, r.windows) {
            Some(w) => (
                format!(
                    "{w:.1} calls per resync (per-object polling: {})",
                    count(r.n)
                ),
                w <= limit as f64,
            ),
            None => ("not measured (never all Ready)".into(), false),
        };
        let _ = writeln!(
            out,
            "| {} | {label} | steady state ≤ ⌈N/100⌉ + 5 = {} Confluent calls per resync | {measured} | {} |",
            count(r.n),
            count(limit),
            scoped(true, met)
        );
        let _ = writeln!(
            out,
            "| {} | {label} | zero duplicate invitations | {} duplicates, {} emails without a live invitation ({} remote invitations for {} Invitations) | {} |",
            count(r.n),
            count(r.duplicates),
            count(r.missing),
            count(r.remote_total as u64),
            count(r.n + r.halving.as_ref().map_or(0, |h| h.extra)),
            scoped(true, r.duplicates == 0)
        );
        let all = &r.all_calls;
        let share = pct(all.rate_limited, all.total);
        let _ = writeln!(
            out,
            "| {} | {label} | 429s under 1% of calls | {share:.2}% ({} of {}) | {} |",
            count(r.n),
            count(all.rate_limited),
            count(all.total),
            scoped(true, share < 1.0)
        );
        if let Some(h) = &r.halving {
            let share = pct(h.calls.rate_limited, h.calls.total);
            let measured = format!(
                "{share:.2}% ({} of {}); the {} more Ready after {}",
                count(h.calls.rate_limited),
                count(h.calls.total),
                count(h.extra),
                h.ready_after
                    .map_or(format!("**not within {}**", secs(h.timeout)), secs)
            );
            let _ = writeln!(
                out,
                "| {} | {label} | after the server halves its limit, ≤ 3% 429s while the next {} converge | {measured} | {} |",
                count(r.n),
                count(h.extra),
                scoped(
                    r.n == 1000 && issue_settings,
                    share <= 3.0 && h.ready_after.is_some()
                )
            );
        }
        let (measured, met) = match r.steady_rss_kib {
            Some(kib) => (
                format!("{:.1} MiB (peak {:.1} MiB)", mib(kib), mib(r.peak_rss_kib)),
                mib(kib) < 64.0,
            ),
            None => (
                format!(
                    "no steady state (never all Ready); {:.1} MiB when the wait ended, peak {:.1} MiB",
                    mib(r.end_rss_kib),
                    mib(r.peak_rss_kib)
                ),
                false,
            ),
        };
        let _ = writeln!(
            out,
            "| {} | {label} | steady RSS under 64 MiB | {measured} | {} |",
            count(r.n),
            scoped(r.n == 10_000, met)
        );
    }

    render_halving(&mut out, rows);
    render_peers(&mut out, opts, rows, peers);

    let _ = writeln!(out, "\n## Observations (computed from the numbers above)\n");
    for r in rows {
        for note in notes(opts, r) {
            let _ = writeln!(out, "- N = {}, {}: {note}", count(r.n), kind_label(r.kind));
        }
    }

    let _ = writeln!(out, "\n## How to read the columns\n");
    let _ = writeln!(
        out,
        "- **all Ready after**: from the first create to the first LIST that shows all N \
         Invitations with condition Ready=True (LISTs every 0.25 s up to N = 100, 1 s up to \
         1 000, 3 s above). **bound**: the physical bound `(N creates + ⌈N/100⌉ list pages) / \
         rate limit`, what an operator that lists the whole organization once in pages of 100 \
         and then only creates would need; the burst is not subtracted.\n\
         - **Confluent calls**: as counted by the mock, every request whatever its answer \
         (429s included), from the first create to all Ready; **calls per invitation** is their \
         total over N. **429s received**: over the whole run (convergence and steady state).\n\
         - **steady calls per resync**: Confluent calls per resync interval once all are Ready, \
         averaged over the steady windows (a few accepts happen meanwhile); **per-object \
         polling** is the N calls a GET per Invitation per interval would spend.\n\
         - **operator Kubernetes writes**: the API server's count (`apiserver_request_total`) of \
         POST/PUT/PATCH/APPLY requests on Invitations and Events, minus the benchmark's N \
         creates: finalizers, status and Events.\n\
         - **RSS**: `VmHWM` (peak) and the largest `VmRSS` sampled (every second) during the \
         steady windows (steady), from /proc; **CPU seconds**: utime + stime of the operator process.\n\
         - **remote accept → status**: an invitation accepted in the mock until its \
         `status.phase` is Accepted (GET every 0.1 s); the accepts are spread evenly over one \
         resync interval, so they fall at different points of the operator's polling cycle. The operator learns remote changes by \
         polling, so by design this is bounded by the resync interval ({}) when the operator \
         keeps up with its polling, and by the time one polling round takes when it does not.",
        secs(opts.resync)
    );
    // figures measured once, outside these runs, that comments point to
    out.push('\n');
    out.push_str(include_str!("measured-once.md"));
    out
}

/// The operator's rate flags in a run.
fn kind_label(kind: RunKind) -> &'static str {
    match kind {
        RunKind::Default => "default (none: learnt)",
        RunKind::Configured => "configured (`--confluent-rate-limit <rate>`)",
        RunKind::Peers => "peers' strategy",
    }
}

/// The mock halves its limit mid-run: the 429s and the time the next Invitations take.
fn render_halving(out: &mut String, rows: &[Row]) {
    if rows.iter().all(|r| r.halving.is_none()) {
        return;
    }
    let _ = writeln!(out, "\n## The server halves its limit\n");
    let _ = writeln!(
        out,
        "After the steady state, the mock halves its rate limit and burst (as a shared \
         organization budget or a change on Confluent's side would), then more Invitations are \
         created. Calls are counted from the halving until all are Ready; the bound is \
         (extra creates + ⌈extra/100⌉) / the new rate.\n"
    );
    let _ = writeln!(
        out,
        "| N | operator rate flags | new limit | more Invitations | all Ready after | bound | Confluent calls (create / list / get) | 429s |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---|---:|");
    for r in rows {
        let Some(h) = &r.halving else { continue };
        let _ = writeln!(
            out,
            "| {} | {} | {} req/s | {} | {} | {} | {} ({} / {} / {}) | {} of {} ({:.2}%) |",
            count(r.n),
            kind_label(r.kind),
            rate_str(h.rate),
            count(h.extra),
            h.ready_after
                .map_or(format!("**not within {}**", secs(h.timeout)), secs),
            secs(physical_bound(h.extra, h.rate)),
            count(h.calls.total),
            count(h.calls.create),
            count(h.calls.list),
            count(h.calls.get),
            count(h.calls.rate_limited),
            count(h.calls.total),
            pct(h.calls.rate_limited, h.calls.total)
        );
    }
}

/// Our default-flags run next to the peers' strategy at the same size, as ratios.
fn render_peers(out: &mut String, opts: &Opts, rows: &[Row], peers: &[PeerRow]) {
    if peers.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## Against the peers\n");
    let _ = writeln!(
        out,
        "Terraform's `confluent_invitation` (Pulumi runs the same provider code) and the \
         community Crossplane provider (Terraform's code inside) create with a blind POST and \
         observe with one GET per resource per refresh/poll; their HTTP client retries a 429 \
         after `Retry-After`. This benchmark runs that strategy itself against a fresh mock with \
         the same latency and limit ({} calls in flight, Terraform's default parallelism): every \
         POST until all are answered 2xx (**sent after**), then one poll of a GET per resource \
         (**calls per resync**: what each refresh or poll interval costs). Ours is the \
         default-flags run: all Ready after, and its measured steady calls per resync. Ratios \
         are ours ÷ theirs (below 1: ours is faster or cheaper).\n",
        opts.peer_parallelism
    );
    let _ = writeln!(
        out,
        "| N | strategy | all sent after (ratio to bound) | calls to converge | 429s to converge | calls per resync | 429s per resync | duplicates |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|");
    for p in peers {
        let bound = physical_bound(p.n, p.rate);
        let ours = rows
            .iter()
            .find(|r| r.n == p.n && r.kind == RunKind::Default);
        if let Some(r) = ours {
            let c = &r.converge_calls;
            let _ = writeln!(
                out,
                "| {} | this operator, default flags | {} | {} | {} ({:.2}%) | {} | {} | {} |",
                count(r.n),
                r.ready_after.map_or("not all Ready".into(), |t| format!(
                    "{} ({:.2}×)",
                    secs(t),
                    t.as_secs_f64() / r.bound.as_secs_f64()
                )),
                count(c.total),
                count(c.rate_limited),
                pct(c.rate_limited, c.total),
                per_window(&r.steady_calls, r.windows)
                    .map_or("not measured".into(), |w| format!("{w:.1}")),
                r.steady_calls.as_ref().map_or("n/a".into(), |s| format!(
                    "{:.1}",
                    s.rate_limited as f64 / f64::from(r.windows.max(1))
                )),
                count(r.duplicates)
            );
        }
        let _ = writeln!(
            out,
            "| {} | peers: blind POST + GET per resource | {} ({:.2}×) | {} | {} ({:.2}%) | {} | {} | {} |",
            count(p.n),
            secs(p.sent_after),
            p.sent_after.as_secs_f64() / bound.as_secs_f64(),
            count(p.create_calls.total),
            count(p.create_calls.rate_limited),
            pct(p.create_calls.rate_limited, p.create_calls.total),
            count(p.poll_calls.total),
            count(p.poll_calls.rate_limited),
            count(p.duplicates + p.missing)
        );
        if let Some(r) = ours {
            let time = r.ready_after.map_or("n/a".into(), |t| {
                format!(
                    "{:.2}",
                    t.as_secs_f64() / p.sent_after.as_secs_f64().max(1e-9)
                )
            });
            let resync = per_window(&r.steady_calls, r.windows).map_or("n/a".into(), |w| {
                format!("{:.3}", w / (p.poll_calls.total.max(1) as f64))
            });
            let share = |part: u64, whole: u64| pct(part, whole);
            let _ = writeln!(
                out,
                "| {} | **ours ÷ peers** | time {time} | calls {:.2} | 429 share {:.2}% vs {:.2}% | calls per resync {resync} | one poll of theirs took {} | |",
                count(p.n),
                r.converge_calls.total as f64 / p.create_calls.total.max(1) as f64,
                share(r.converge_calls.rate_limited, r.converge_calls.total),
                share(p.create_calls.rate_limited, p.create_calls.total),
                secs(p.poll_took)
            );
        }
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Plain statements derived from one row.
fn notes(opts: &Opts, r: &Row) -> Vec<String> {
    let mut notes = Vec::new();
    let c = &r.converge_calls;
    if r.ready_after.is_some() {
        notes.push(format!(
            "{:.2} Confluent calls per invitation to converge ({} list, {} create, {} get per \
             invitation), against {:.2} for the bound",
            c.total as f64 / r.n as f64,
            ratio(c.list, r.n),
            ratio(c.create, r.n),
            ratio(c.get, r.n),
            (r.n + r.n.div_ceil(PAGE)) as f64 / r.n as f64
        ));
    } else {
        notes.push(format!(
            "not all Ready within {}: {} of {} Ready, the others {:?}; the Ready count last \
             grew {} after the first create; {} Confluent calls were made meanwhile ({} list, {} \
             create, {} get)",
            secs(r.converge_timeout),
            count(r.ready_count),
            count(r.n),
            r.not_ready,
            secs(r.last_growth),
            count(c.total),
            count(c.list),
            count(c.create),
            count(c.get)
        ));
    }
    let marks: Vec<String> = r
        .milestones
        .iter()
        .zip(["25%", "50%", "75%"])
        .map(|(m, label)| match m {
            Some(t) => format!("{label} after {}", secs(*t)),
            None => format!("{label} never"),
        })
        .collect();
    let converging = r.ready_after.unwrap_or(r.converge_timeout);
    notes.push(format!(
        "Ready over time: {}; the operator used {:.2} CPU cores on average until {}",
        marks.join(", "),
        r.converge_cpu / converging.as_secs_f64().max(0.001),
        if r.ready_after.is_some() {
            "all were Ready"
        } else {
            "the wait ended"
        }
    ));
    let resync = opts.resync.as_secs_f64();
    let polling_rate = r.n as f64 / resync;
    if polling_rate > r.rate {
        notes.push(format!(
            "per-object polling (a GET per Invitation per resync) would need {polling_rate:.0} \
             calls/s, more than the {} req/s limit: one such round would take at least {} \
             instead of {}",
            rate_str(r.rate),
            secs(Duration::from_secs_f64(r.n as f64 / r.rate)),
            secs(opts.resync)
        ));
    }
    if let Some(w) = per_window(&r.steady_calls, r.windows) {
        let budget = r.rate * resync;
        notes.push(format!(
            "in steady state the operator spent {:.2} CPU seconds per resync interval ({:.1}% of \
             one core) for {w:.1} Confluent calls",
            r.steady_cpu / f64::from(r.windows.max(1)),
            r.steady_cpu * 100.0 / (resync * f64::from(r.windows.max(1)))
        ));
        if w >= 0.9 * budget {
            notes.push(format!(
                "the steady state uses {:.0}% of the rate limit ({w:.0} of {budget:.0} calls per \
                 resync): nothing is left for new Invitations or retries",
                w * 100.0 / budget
            ));
        } else {
            notes.push(format!(
                "the steady state uses {:.0}% of the rate limit ({w:.0} of {budget:.0} calls per \
                 resync)",
                w * 100.0 / budget
            ));
        }
    }
    if r.log_warnings + r.log_errors > 0 {
        let top: Vec<String> = r
            .log_top
            .iter()
            .map(|(m, k)| format!("{k} × \"{m}\""))
            .collect();
        let mut note = format!(
            "the operator logged {} warnings and {} errors: {}",
            count(r.log_warnings),
            count(r.log_errors),
            top.join(", ")
        );
        if r.log_top
            .iter()
            .any(|(m, _)| m.contains("Server cert bypassed"))
        {
            note.push_str(
                " (\"Server cert bypassed\" is kube-rs noting the throwaway control plane's \
                 `insecure-skip-tls-verify` kubeconfig, once per connection)",
            );
        }
        notes.push(note);
    } else {
        notes.push("the operator logged no warning or error".into());
    }
    notes.push(format!(
        "the whole run took {} (creating the N objects: {}); the machine's 1-minute load \
         average was {:.2} before and {:.2} after",
        secs(r.wall),
        secs(r.created_after),
        r.load.0,
        r.load.1
    ));
    notes
}

fn ratio(part: u64, n: u64) -> String {
    format!("{:.2}", part as f64 / n as f64)
}
