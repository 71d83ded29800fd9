//! The e2e harness: a real kube-apiserver (from `KUBECONFIG`), the project's Confluent mock
//! in-process, and the real operator binary as a child process watching one namespace per test.
//!
//! Every test is `#[ignore]`d with the reason, so a plain `cargo test` lists them as ignored
//! instead of passing them unrun: `tests/run-all.sh` (the README's test command) starts a control
//! plane, sets `KUBECONFIG` and runs them with `--include-ignored`; a test run without
//! `KUBECONFIG` fails at once, saying so. With `E2E_OPERATOR_KUBECONFIG`, the
//! operator runs with that identity (the chart's ServiceAccount token) instead of the admin's.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use confluent_invitation_operator::confluent::model::RemoteInvitation;
use confluent_invitation_operator::crd::{
    DeletionPolicy, FINALIZER, Invitation, InvitationSpec, SecretRef,
};
use confluent_invitation_operator::mock::{self, MockConfig, MockHandle, MockServer};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};

/// The API key the mock accepts and the operator uses by default.
pub const API_KEY: &str = "e2e-key";
/// Its secret: the secret-leak checks grep the operator's logs for it.
pub const API_SECRET: &str = "e2e-secret-5f1c0d8a-never-log-me";
/// Resync interval of the operator under test.
pub const RESYNC: Duration = Duration::from_secs(2);
/// How long a wait may take before the test fails: generous, shared machines are slow.
pub const WAIT: Duration = Duration::from_secs(45);

/// Options of one test environment.
#[derive(Clone, Debug)]
pub struct Options {
    pub default_credentials: bool,
    pub extra_args: Vec<String>,
    /// The operator's `--resync-interval`.
    pub resync: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            default_credentials: true,
            extra_args: Vec::new(),
            resync: RESYNC,
        }
    }
}

/// One test's world.
pub struct Env {
    pub kube: kube::Client,
    pub ns: String,
    pub api: Api<Invitation>,
    pub mock: MockServer,
    pub operator: Option<Operator>,
    options: Options,
    log_path: PathBuf,
    restarts: u32,
}

/// The operator process.
pub struct Operator {
    child: Child,
    pub http: SocketAddr,
}

impl Operator {
    /// Sends a signal (e.g. "TERM", "KILL") to the process.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status();
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The operator's /metrics text.
    pub async fn metrics(&self) -> String {
        match reqwest::get(format!("http://{}/metrics", self.http)).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("bound address")
}

/// A test's world; panics when no API server is configured (`KUBECONFIG`).
pub async fn env(name: &str) -> Env {
    env_with(name, Options::default()).await
}

/// Like [`env`] with options.
pub async fn env_with(name: &str, options: Options) -> Env {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "e2e {name}: KUBECONFIG is not set: this suite needs a real kube-apiserver (run tests/run-all.sh, which starts one)"
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
    let kube = kube::Client::try_default()
        .await
        .expect("a kube client from KUBECONFIG");
    crate::common_crd::install_crd(&kube, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ns = format!("e2e-{name}-{:04x}", fastrand::u16(..));
    let nss: Api<Namespace> = Api::all(kube.clone());
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(ns.clone());
    nss.create(&PostParams::default(), &namespace)
        .await
        .expect("namespace created");
    let mock = mock::start(
        "127.0.0.1:0".parse().expect("an address"),
        MockConfig {
            api_keys: vec![(API_KEY.into(), API_SECRET.into())],
            ..MockConfig::default()
        },
    )
    .await
    .expect("mock started");
    let log_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-logs");
    std::fs::create_dir_all(&log_dir).expect("log dir");
    let log_path = log_dir.join(format!("{ns}.log"));
    eprintln!(
        "e2e {name}: namespace {ns}, mock {}, operator log {}",
        mock.base_url(),
        log_path.display()
    );
    let mut env = Env {
        api: Api::namespaced(kube.clone(), &ns),
        kube,
        ns,
        mock,
        operator: None,
        options,
        log_path,
        restarts: 0,
    };
    env.start_operator();
    env.wait_ready().await;
    env
}

impl Env {
    /// The mock's controls.
    pub fn remote(&self) -> MockHandle {
        self.mock.state()
    }

    /// Starts (or restarts) the operator process.
    pub fn start_operator(&mut self) {
        let op = self.spawn_operator(&[]);
        self.operator = Some(op);
    }

    /// Starts one more operator process on this namespace and mock, with extra flags; the
    /// caller owns it (dropping it kills it).
    pub fn spawn_operator(&mut self, extra: &[&str]) -> Operator {
        let ns = self.ns.clone();
        self.spawn_operator_watching(&["--watch-namespace", &ns], extra)
    }

    /// Starts the operator on every namespace, limited to the Invitations labelled
    /// `e2e=<this test's namespace>` (other tests' objects stay out of its sight), as
    /// `self.operator`: for tests that span namespaces.
    pub fn start_operator_across_namespaces(&mut self) {
        let selector = format!("e2e={}", self.ns);
        let op = self.spawn_operator_watching(&["--label-selector", &selector], &[]);
        self.operator = Some(op);
    }

    fn spawn_operator_watching(&mut self, scope: &[&str], extra: &[&str]) -> Operator {
        let http = free_port();
        let kubeconfig = std::env::var("E2E_OPERATOR_KUBECONFIG")
            .or_else(|_| std::env::var("KUBECONFIG"))
            .expect("KUBECONFIG");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("operator log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_confluent-invitation-operator"));
        cmd.arg("run")
            .args(scope)
            .args([
                "--resync-interval",
                &format!("{}s", self.options.resync.as_secs()),
            ])
            .args(["--http-addr", &http.to_string()])
            .args(["--log-format", "json"])
            .args(&self.options.extra_args)
            .args(extra)
            .env_clear()
            .env("KUBECONFIG", kubeconfig)
            .env("CONFLUENT_CLOUD_ENDPOINT", self.mock.base_url())
            .env("RUST_LOG", "info,confluent_invitation_operator=debug")
            .env("POD_NAME", format!("e2e-operator-{}", self.restarts))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        if self.options.default_credentials {
            cmd.env("CONFLUENT_CLOUD_API_KEY", API_KEY)
                .env("CONFLUENT_CLOUD_API_SECRET", API_SECRET);
        }
        let child = cmd.spawn().expect("operator started");
        self.restarts += 1;
        Operator { child, http }
    }

    /// SIGKILLs the operator: no graceful anything, like a node failure.
    pub fn kill_operator(&mut self) {
        if let Some(mut op) = self.operator.take() {
            let _ = op.child.kill();
            let _ = op.child.wait();
        }
    }

    /// Whether the operator process is still running.
    pub fn operator_alive(&mut self) -> bool {
        match &mut self.operator {
            Some(op) => matches!(op.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The operator's log so far.
    pub fn operator_log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The operator's HTTP address.
    pub fn http(&self) -> SocketAddr {
        self.operator.as_ref().expect("operator running").http
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        let mut rebinds = 0;
        loop {
            let url = format!("http://{}/readyz", self.http());
            if let Ok(r) = reqwest::get(&url).await
                && r.status().is_success()
            {
                return;
            }
            if !self.operator_alive()
                && rebinds < 3
                && self.log_tail().contains("binding 127.0.0.1")
            {
                // another test took the free port between our probe and the operator's bind
                rebinds += 1;
                self.start_operator();
                continue;
            }
            if !self.operator_alive() || Instant::now() > deadline {
                panic!("operator never became ready; log:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = self.operator_log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Creates an Invitation.
    pub async fn create(&self, inv: &Invitation) -> Invitation {
        self.api
            .create(&PostParams::default(), inv)
            .await
            .expect("Invitation created")
    }

    /// Merges `spec` into the named Invitation's spec (a user's edit: bumps the generation).
    pub async fn patch_spec(&self, name: &str, spec: serde_json::Value) -> Invitation {
        self.api
            .patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(serde_json::json!({ "spec": spec })),
            )
            .await
            .expect("spec patched")
    }

    /// Creates a Secret in the test namespace.
    pub async fn secret(&self, name: &str, data: &[(&str, &str)]) {
        let secrets: Api<Secret> = Api::namespaced(self.kube.clone(), &self.ns);
        let mut s = Secret::default();
        s.metadata.name = Some(name.into());
        s.string_data = Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        );
        secrets
            .create(&PostParams::default(), &s)
            .await
            .expect("Secret created");
    }

    /// Waits until the named Invitation satisfies `pred`; fails with its last state otherwise.
    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        pred: impl Fn(&Invitation) -> bool,
    ) -> Invitation {
        let deadline = Instant::now() + WAIT;
        let mut last = None;
        loop {
            if let Some(inv) = self.api.get_opt(name).await.expect("Invitation readable") {
                if pred(&inv) {
                    return inv;
                }
                last = Some(inv);
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {name} to be {what}; last seen: {:#?}\noperator log:\n{}",
                    last.map(|i| i.status),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits for phase and Ready status.
    pub async fn wait_phase(&self, name: &str, phase: &str, ready: &str) -> Invitation {
        self.wait_for(name, &format!("{phase}/Ready={ready}"), |i| {
            phase_of(i) == Some(phase) && ready_of(i).map(|r| r.0) == Some(ready.to_owned())
        })
        .await
    }

    /// Waits for Ready=False with `reason`.
    pub async fn wait_reason(&self, name: &str, reason: &str) -> Invitation {
        self.wait_for(name, &format!("Ready reason {reason}"), |i| {
            ready_of(i).is_some_and(|r| r.1 == reason)
        })
        .await
    }

    /// Deletes an Invitation and waits until it is gone (its finalizer released).
    pub async fn delete_and_wait_gone(&self, name: &str) {
        self.api
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete accepted");
        self.wait_gone(name).await;
    }

    /// Waits until the named Invitation no longer exists.
    pub async fn wait_gone(&self, name: &str) {
        let deadline = Instant::now() + WAIT;
        while self.api.get_opt(name).await.expect("readable").is_some() {
            assert!(
                Instant::now() < deadline,
                "{name} was never released; operator log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The Events about `name` as (type, reason, note).
    pub async fn events(&self, name: &str) -> Vec<(String, String, String)> {
        let api: Api<Event> = Api::namespaced(self.kube.clone(), &self.ns);
        let list = api
            .list(&ListParams::default())
            .await
            .expect("events listable");
        list.items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Waits until an Event with `reason` about `name` exists; returns (type, note).
    pub async fn wait_event(&self, name: &str, reason: &str) -> (String, String) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some((t, _, n)) = self.events(name).await.into_iter().find(|e| e.1 == reason) {
                return (t, n);
            }
            assert!(
                Instant::now() < deadline,
                "no {reason} Event for {name}: {:?}",
                self.events(name).await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Live (SENT/STAGED/ACCEPTED) remote invitations for an email.
    pub fn live(&self, email: &str) -> Vec<RemoteInvitation> {
        self.remote().live_invitations_for(email)
    }

    /// The remote invitation with this id.
    pub fn remote_by_id(&self, id: &str) -> Option<RemoteInvitation> {
        self.remote()
            .invitations()
            .into_iter()
            .find(|i| i.id.as_deref() == Some(id))
    }
}

/// An Invitation manifest with defaults.
pub fn invitation(name: &str, email: &str) -> Invitation {
    Invitation::new(
        name,
        InvitationSpec {
            email: email.into(),
            auth_type: None,
            credentials_secret_ref: None,
            deletion_policy: DeletionPolicy::Delete,
            reinvite_on_expiry: false,
        },
    )
}

/// The same with a credentials Secret.
pub fn with_secret(mut inv: Invitation, secret: &str) -> Invitation {
    inv.spec.credentials_secret_ref = Some(SecretRef {
        name: secret.into(),
    });
    inv
}

/// Polls `probe` every 200 ms until it gives a value; fails naming `what` after `within`.
pub async fn eventually<T, Fut>(what: &str, within: Duration, mut probe: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `status.phase`.
pub fn phase_of(i: &Invitation) -> Option<&str> {
    i.status.as_ref().and_then(|s| s.phase.as_deref())
}

/// Ready's (status, reason, message).
pub fn ready_of(i: &Invitation) -> Option<(String, String, String)> {
    i.status
        .as_ref()
        .and_then(|s| s.ready())
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// `status.invitationId`.
pub fn id_of(i: &Invitation) -> String {
    i.status
        .as_ref()
        .and_then(|s| s.invitation_id.clone())
        .expect("status.invitationId")
}

/// Whether our finalizer is on the object.
pub fn has_finalizer(i: &Invitation) -> bool {
    i.finalizers().iter().any(|f| f == FINALIZER)
}
