//! The chaos world: the real API server (from `KUBECONFIG`) with one namespace, the Confluent mock
//! in-process, the real operator binary as a child process that the killer replaces at will, the
//! ledger of what the test asked for, and the counters the summary prints.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use confluent_invitation_operator::invitation::resource::{
    AuthType, DeletionPolicy, FINALIZER, Invitation, InvitationSpec,
};

use confluent_invitation_operator::role_bindings::resource::RoleBinding;
use confluent_mock::{MockConfig, MockHandle, MockServer};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};
use test_support::{ControlPlane, Launch, logs};

pub use test_support::lock;

/// The API key the mock accepts and the operator uses.
pub const API_KEY: &str = "chaos-key";
/// Its secret.
pub const API_SECRET: &str = "chaos-secret-9b1e-never-log-me";
/// The mock's organization uuid: the CRNs of role bindings are under it.
pub const ORG_ID: &str = "7c4ee2a8-5b1f-4c36-9d0a-c4a05ca1ab1e";
/// The operator's resync interval.
pub const RESYNC: &str = "3s";
/// The operator's concurrency.
pub const CONCURRENCY: &str = "16";
/// How long the test's own kube calls are retried: long enough to outlast an API server restart
/// on a loaded machine.
const KUBE_RETRY_FOR: Duration = Duration::from_secs(120);

/// The suite's size and seed.
#[derive(Clone, Debug)]
pub struct Config {
    pub invitations: usize,
    pub kills: u32,
    pub seed: u64,
    /// The control plane's work dir (start-control-plane.sh's WORKDIR).
    pub control_plane_dir: PathBuf,
    /// The control plane's environment (the operator's identity).
    pub control_plane: ControlPlane,
}

impl Config {
    /// A short tag of this run in emails.
    pub fn run_tag(&self) -> String {
        format!("{:x}", self.seed & 0xffff)
    }

    /// From the environment; panics, saying why, without a control plane (the suite is
    /// `#[ignore]`d outside `tests/run-all.sh`, which starts one).
    pub fn from_env() -> Self {
        let control_plane = ControlPlane::from_env().unwrap_or_else(|e| panic!("chaos: {e}"));
        let control_plane_dir = control_plane
            .dir()
            .unwrap_or_else(|e| panic!("chaos: {e}"))
            .to_owned();
        let num = |var: &str, default: u64| -> u64 {
            match std::env::var(var) {
                Ok(v) => v
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{var}={v} is not a number")),
                Err(_) => default,
            }
        };
        Self {
            invitations: num("CHAOS_INVITATIONS", 200).max(10) as usize,
            kills: num("CHAOS_KILLS", 20).max(4) as u32,
            seed: num("CHAOS_SEED", fastrand::u64(..)),
            control_plane_dir,
            control_plane,
        }
    }
}

/// One Invitation the test made, and how.
#[derive(Clone, Debug)]
pub struct Planned {
    pub name: String,
    pub email: String,
    pub policy: DeletionPolicy,
    pub reinvite: bool,
    pub auth: Option<AuthType>,
    /// An invitation for the email was made out of band first (with this email, in other letter
    /// case): the resource must adopt it.
    pub seeded: Option<String>,
    /// That invitation's id, once made.
    pub seeded_id: Option<String>,
    /// `spec.roleBindings` as the test last set it (`bindings.rs` edits it mid-run).
    pub role_bindings: Vec<RoleBinding>,
    /// `spec.exclusiveRoleBindings`.
    pub exclusive: bool,
}

impl Planned {
    /// A random mix: policies Delete / Orphan / DeleteUser, some re-inviting on expiry, some with
    /// an auth type, and (when `may_seed`) some adopting an invitation made out of band first,
    /// in other letter case; `with_bindings`: listing 1–3 role bindings over a few shared
    /// scopes, a quarter of those exclusive.
    pub fn random(
        rng: &mut fastrand::Rng,
        name: String,
        email: String,
        may_seed: bool,
        with_bindings: bool,
    ) -> Self {
        let policy = match rng.u32(0..100) {
            0..=39 => DeletionPolicy::Delete,
            40..=64 => DeletionPolicy::Orphan,
            _ => DeletionPolicy::DeleteUser,
        };
        let seeded = may_seed && rng.u32(0..100) < 6;
        let auth = match rng.u32(0..100) {
            _ if seeded => None,
            0..=19 => Some(AuthType::Local),
            20..=39 => Some(AuthType::Sso),
            _ => None,
        };
        let reinvite = rng.u32(0..100) < 30;
        let role_bindings = if with_bindings {
            let k = rng.usize(1..=3);
            crate::bindings::pick(rng, k)
        } else {
            Vec::new()
        };
        let exclusive = !role_bindings.is_empty() && rng.u32(0..100) < 25;
        Self {
            name,
            seeded: seeded.then(|| email.to_ascii_uppercase()),
            seeded_id: None,
            email,
            policy,
            reinvite,
            auth,
            role_bindings,
            exclusive,
        }
    }

    pub fn manifest(&self) -> Invitation {
        Invitation::new(
            &self.name,
            InvitationSpec {
                email: self.email.clone(),
                auth_type: self.auth,
                credentials_secret_ref: None,
                deletion_policy: self.policy,
                reinvite_on_expiry: self.reinvite,
                role_bindings: self.role_bindings.clone(),
                exclusive_role_bindings: self.exclusive,
            },
        )
    }
}

/// What the test asked for so far.
#[derive(Default)]
pub struct Ledger {
    /// Every Invitation planned, created or not yet.
    pub planned: Mutex<BTreeMap<String, Planned>>,
    /// Names whose create call returned.
    pub created: Mutex<BTreeSet<String>>,
    /// Names whose deletion the test requested.
    pub deleted: Mutex<BTreeSet<String>>,
    /// Remote invitation ids the test removed out of band.
    pub removed: Mutex<BTreeSet<String>>,
    /// Names deleted before the operator put its finalizer on them: it never owned anything.
    pub unowned: Mutex<BTreeSet<String>>,
    /// Names whose `status.invitationId` the test pointed at another resource's invitation (a
    /// hand-patched status, a restored backup) before deleting them.
    pub forged: Mutex<BTreeSet<String>>,
    /// Emails claimed by two Invitations (`pairs.rs`), outside `planned`.
    pub pairs: Mutex<Vec<crate::pairs::Pair>>,
    /// Every role-binding id each resource's status was seen to record, by name (gathered by
    /// every snapshot).
    pub recorded_bindings: Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// Bindings the test added out of band for a resource's user, never listed by it.
    pub foreign_bindings: Mutex<Vec<crate::bindings::Foreign>>,
    /// Binding ids the test removed out of band (the operator recreates them while the
    /// invitation stands; an expired one's stay gone).
    pub removed_bindings: Mutex<BTreeSet<String>>,
    /// The email (lowercased) of every user id any invitation ever had, gathered by every
    /// snapshot and before each out-of-band removal (a removed invitation leaves the mock, and
    /// its user's bindings must still be accounted for).
    pub users: Mutex<BTreeMap<String, String>>,
}

impl Ledger {
    /// The created Invitations.
    pub fn created(&self) -> BTreeMap<String, Planned> {
        let created = lock(&self.created).clone();
        lock(&self.planned)
            .iter()
            .filter(|(n, _)| created.contains(*n))
            .map(|(n, p)| (n.clone(), p.clone()))
            .collect()
    }
    /// Every planned email, lowercased.
    pub fn emails(&self) -> HashSet<String> {
        let mut emails: HashSet<String> = lock(&self.planned)
            .values()
            .map(|p| p.email.to_ascii_lowercase())
            .collect();
        emails.extend(
            lock(&self.pairs)
                .iter()
                .map(|p| p.email.to_ascii_lowercase()),
        );
        emails
    }
    pub fn deleted(&self) -> BTreeSet<String> {
        lock(&self.deleted).clone()
    }
    pub fn removed(&self) -> BTreeSet<String> {
        lock(&self.removed).clone()
    }
    pub fn unowned(&self) -> BTreeSet<String> {
        lock(&self.unowned).clone()
    }
    pub fn forged(&self) -> BTreeSet<String> {
        lock(&self.forged).clone()
    }
}

/// The counters of the summary.
#[derive(Default)]
pub struct Stats {
    pub fault_injections: AtomicU64,
    pub faults_queued: AtomicU64,
    pub latency_spikes: AtomicU64,
    pub kills: AtomicU64,
    pub apiserver_restarts: AtomicU64,
    pub checks: AtomicU64,
    pub assertions: AtomicU64,
    pub seeded: AtomicU64,
    pub accepted: AtomicU64,
    pub expired: AtomicU64,
    pub removed: AtomicU64,
    pub deleted_mid_run: AtomicU64,
    pub created_mid_run: AtomicU64,
    pub accepted_while_deleting: AtomicU64,
    /// Statuses pointed at another resource's invitation (then deleted).
    pub forged: AtomicU64,
    /// `spec.roleBindings` edits (an item added or removed).
    pub bindings_edited: AtomicU64,
    /// Bindings removed out of band.
    pub bindings_removed: AtomicU64,
    /// Unlisted bindings added out of band.
    pub bindings_foreign: AtomicU64,
    /// Invitations that listed role bindings when created (pairs not included).
    pub with_bindings: AtomicU64,
    /// `spec.roleBindings` edits by kind: an item added, one replaced by another, one removed.
    pub items_added: AtomicU64,
    pub items_replaced: AtomicU64,
    pub items_removed: AtomicU64,
    /// Invitations removed out of band whose resource listed role bindings (re-sent to a new
    /// user: the previous user's bindings must go).
    pub removed_with_bindings: AtomicU64,
    /// The `--dry-run` stretch: seconds, status checks during it, recorded ids they compared,
    /// Confluent writes before and after it, edits and removals made during it.
    pub dry_run_secs: AtomicU64,
    pub dry_run_checks: AtomicU64,
    pub dry_run_ids: AtomicU64,
    pub dry_run_writes: AtomicU64,
    pub dry_run_changes: AtomicU64,
    /// Role-binding faults queued, by (route, what): see `tasks::role_binding_route`.
    pub role_binding_faults: Mutex<BTreeMap<(&'static str, String), u64>>,
    pub kube_retries: AtomicU64,
}

impl Stats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// One invariant violation: a stable key (so a persisting problem counts once) and what was seen.
#[derive(Clone, Debug)]
pub struct Violation {
    pub key: String,
    /// The resource it is about, to pull its operator log lines.
    pub subject: Option<String>,
    pub message: String,
}

impl Violation {
    pub fn new(kind: &str, subject: Option<&Planned>, message: String) -> Self {
        Self {
            key: format!("{kind}:{}", subject.map(|p| p.name.as_str()).unwrap_or("-")),
            subject: subject.map(|p| p.name.clone()),
            message,
        }
    }
}

/// Everything the tasks share.
pub struct World {
    pub config: Config,
    pub kube: kube::Client,
    pub ns: String,
    pub api: Api<Invitation>,
    pub mock: MockServer,
    pub ledger: Ledger,
    pub stats: Stats,
    violations: Mutex<BTreeMap<String, (Violation, u64)>>,
    pub log_path: PathBuf,
    incarnations: AtomicU64,
    pub started: Instant,
}

impl World {
    pub async fn start(config: Config) -> Self {
        // the test's own kube client complains loudly while the API server restarts
        logs::init_tracing("warn,kube_client=off");
        let kube = config
            .control_plane
            .client()
            .await
            .expect("a kube client from KUBECONFIG");
        test_support::install_crd(&kube, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let ns = test_support::create_namespace(&kube, "chaos")
            .await
            .expect("namespace created");
        let mock = test_support::start_mock(
            API_KEY,
            API_SECRET,
            MockConfig {
                org_id: ORG_ID.into(),
                ..MockConfig::default()
            },
        )
        .await
        .expect("mock started");
        let log_dir =
            logs::log_dir(Path::new(env!("CARGO_TARGET_TMPDIR")), "chaos-logs").expect("log dir");
        let log_path = log_dir.join(format!("{ns}.log"));
        eprintln!(
            "chaos: {} invitations, {} kills, seed {}; namespace {ns}, mock {}, operator log {}",
            config.invitations,
            config.kills,
            config.seed,
            mock.base_url(),
            log_path.display()
        );
        Self {
            api: Api::namespaced(kube.clone(), &ns),
            config,
            kube,
            ns,
            mock,
            ledger: Ledger::default(),
            stats: Stats::default(),
            violations: Mutex::new(BTreeMap::new()),
            log_path,
            incarnations: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// The mock's controls.
    pub fn remote(&self) -> MockHandle {
        self.mock.state()
    }

    /// Seconds since the start, for progress lines.
    pub fn t(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Prints a line of the run's progress, stamped with the seconds since it started.
    pub fn say(&self, line: std::fmt::Arguments<'_>) {
        eprintln!("[{:7.1}s] {line}", self.t());
    }

    /// Records violations; prints each new one at once.
    pub fn record(&self, found: Vec<Violation>) {
        let mut all = lock(&self.violations);
        for v in found {
            match all.get_mut(&v.key) {
                Some((_, seen)) => *seen += 1,
                None => {
                    self.say(format_args!("VIOLATION {}: {}", v.key, v.message));
                    all.insert(v.key.clone(), (v, 1));
                }
            }
        }
    }

    /// The distinct violations so far, with how many checks saw each.
    pub fn violations(&self) -> Vec<(Violation, u64)> {
        lock(&self.violations).values().cloned().collect()
    }

    /// Retries a kube call through API server restarts and overload; other errors are returned.
    pub async fn kube<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, kube::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let deadline = Instant::now() + KUBE_RETRY_FOR;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) if retriable(&e) && Instant::now() < deadline => {
                    Stats::add(&self.stats.kube_retries, 1);
                    tracing::debug!(what, error = %e, "kube call failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Lists the namespace's Invitations (retried).
    pub async fn list(&self) -> Vec<Invitation> {
        let lp = ListParams::default();
        self.kube("list invitations", || self.api.list(&lp))
            .await
            .expect("Invitations listable")
            .items
    }

    /// Creates the resource (retried; a 409 after a retry means the first attempt went through)
    /// and records it.
    pub async fn create(&self, p: &Planned) {
        lock(&self.ledger.planned).insert(p.name.clone(), p.clone());
        if !p.role_bindings.is_empty() {
            Stats::add(&self.stats.with_bindings, 1);
        }
        let manifest = p.manifest();
        let pp = PostParams::default();
        match self
            .kube("create invitation", || self.api.create(&pp, &manifest))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => panic!("creating {}: {e}", p.name),
        }
        lock(&self.ledger.created).insert(p.name.clone());
    }

    /// Asks for the resource's deletion (retried; 404 is fine). Notes when it went at once,
    /// without the operator's finalizer: the operator never took it on.
    pub async fn delete(&self, name: &str) {
        lock(&self.ledger.deleted).insert(name.to_owned());
        let dp = DeleteParams::default();
        match self
            .kube("delete invitation", || self.api.delete(name, &dp))
            .await
        {
            // the object as it stands when it waits for finalizers; a Status when it went at once
            Ok(answer) => {
                let held = answer
                    .left()
                    .is_some_and(|obj| obj.finalizers().iter().any(|f| f == FINALIZER));
                if !held {
                    lock(&self.ledger.unowned).insert(name.to_owned());
                }
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => panic!("deleting {name}: {e}"),
        }
    }

    /// Starts a new operator process (appending to the shared log, with a marker line), with
    /// `--dry-run` when `dry_run`.
    pub fn spawn_operator(&self, dry_run: bool) -> Operator {
        let n = self.incarnations.fetch_add(1, Ordering::Relaxed);
        let mut log = logs::append(&self.log_path).expect("operator log file");
        let _ = writeln!(
            log,
            "==== chaos t={:.1}s: operator #{n} starting{} ====",
            self.t(),
            if dry_run { " with --dry-run" } else { "" }
        );
        let mut args = [
            "--watch-namespace",
            self.ns.as_str(),
            "--resync-interval",
            RESYNC,
            "--concurrency",
            CONCURRENCY,
        ]
        .map(String::from)
        .to_vec();
        if dry_run {
            args.push("--dry-run".into());
        }
        let process = Launch {
            binary: env!("CARGO_BIN_EXE_confluent-invitation-operator").into(),
            kubeconfig: self.config.control_plane.operator_kubeconfig.clone(),
            endpoint: self.mock.base_url(),
            credentials: Some((API_KEY.into(), API_SECRET.into())),
            rust_log:
                "info,confluent_invitation_operator=debug,confluent_client=debug,kube_runtime=debug"
                    .into(),
            pod_name: format!("chaos-operator-{n}"),
            args,
            log,
        }
        .spawn()
        .expect("operator started");
        Operator {
            process,
            incarnation: n,
        }
    }

    /// Waits until the operator's `/readyz` answers 200; false if it died or took too long.
    pub async fn wait_ready(&self, op: &mut Operator, within: Duration) -> bool {
        op.process.wait_ready(within).await.is_ok()
    }

    /// The operator's log lines about the resource `name` (by its name in a span or field, or
    /// its object reference), the last `n` of them.
    pub fn log_lines_about(&self, name: &str, n: usize) -> Vec<String> {
        let quoted = format!("\"{name}\"");
        let object_ref = format!("/{name}.{}", self.ns);
        logs::tail(&logs::read(&self.log_path), n, 600, |l| {
            l.contains(&quoted) || l.contains(&object_ref)
        })
    }

    /// The last `n` lines of the operator's log above DEBUG (plus controller-level errors, which
    /// kube-runtime hands over at DEBUG).
    pub fn log_tail(&self, n: usize) -> String {
        logs::tail(&logs::read(&self.log_path), n, 600, |l| {
            !l.contains("\"level\":\"DEBUG\"") || l.contains("reconcile error")
        })
        .join("\n")
    }
}

/// Connection failures, 5xx and 429 are worth retrying; anything else is an answer.
fn retriable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        _ => true,
    }
}

/// One incarnation of the operator process; dropping it kills it.
pub struct Operator {
    process: test_support::Operator,
    pub incarnation: u64,
}

impl Operator {
    /// SIGKILL, like a node failure; waits for the process to be gone.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Whether (and how) the process ended on its own.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.exited()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}
