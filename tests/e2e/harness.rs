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
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use confluent_client::model::RemoteInvitation;
use confluent_client::role_bindings::{CRN_PREFIX, RemoteRoleBinding, user_principal};
use confluent_invitation_operator::invitation::resource::{
    FINALIZER, Invitation, InvitationSpec, PAUSED_ANNOTATION, SecretRef,
};
use confluent_invitation_operator::role_bindings::resource::{
    RoleBinding, RoleBindingState, RoleBindingStatus,
};
use confluent_mock::{MockConfig, MockHandle, MockServer};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, CustomResourceExt, ResourceExt};
use test_support::{ControlPlane, Launch, logs};

pub use test_support::Operator;

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
    /// The mock's organization id (its CRNs' `organization=` part).
    pub org_id: String,
    pub operator: Option<Operator>,
    control_plane: ControlPlane,
    options: Options,
    log_path: PathBuf,
    restarts: u32,
}

/// A test's world; panics when no API server is configured (`KUBECONFIG`).
pub async fn env(name: &str) -> Env {
    env_with(name, Options::default()).await
}

/// Like [`env`] with options.
pub async fn env_with(name: &str, options: Options) -> Env {
    let control_plane = ControlPlane::from_env().unwrap_or_else(|e| panic!("e2e {name}: {e}"));
    logs::init_tracing("warn");
    let kube = control_plane
        .client()
        .await
        .expect("a kube client from KUBECONFIG");
    test_support::install_crd(&kube, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ns = test_support::create_namespace(&kube, &format!("e2e-{name}"))
        .await
        .expect("namespace created");
    let config = MockConfig::default();
    let org_id = config.org_id.clone();
    let mock = test_support::start_mock(API_KEY, API_SECRET, config)
        .await
        .expect("mock started");
    let log_dir =
        logs::log_dir(Path::new(env!("CARGO_TARGET_TMPDIR")), "e2e-logs").expect("log dir");
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
        org_id,
        operator: None,
        control_plane,
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

    /// Starts one more operator process with this scope (`--watch-namespace`, a label
    /// selector...) and extra flags; the caller owns it.
    pub fn spawn_operator_watching(&mut self, scope: &[&str], extra: &[&str]) -> Operator {
        let mut args: Vec<String> = scope.iter().map(|a| a.to_string()).collect();
        args.extend([
            "--resync-interval".into(),
            format!("{}s", self.options.resync.as_secs()),
        ]);
        args.extend(self.options.extra_args.iter().cloned());
        args.extend(extra.iter().map(|a| a.to_string()));
        let operator = Launch {
            binary: env!("CARGO_BIN_EXE_confluent-invitation-operator").into(),
            kubeconfig: self.control_plane.operator_kubeconfig.clone(),
            endpoint: self.mock.base_url(),
            credentials: self
                .options
                .default_credentials
                .then(|| (API_KEY.into(), API_SECRET.into())),
            rust_log: "info,confluent_invitation_operator=debug,confluent_client=debug".into(),
            pod_name: format!("e2e-operator-{}", self.restarts),
            args,
            log: logs::append(&self.log_path).expect("operator log file"),
        }
        .spawn()
        .expect("operator started");
        self.restarts += 1;
        operator
    }

    /// The options the next operator process starts with (a restart with other flags).
    pub fn options_mut(&mut self) -> &mut Options {
        &mut self.options
    }

    /// SIGKILLs the operator: no graceful anything, like a node failure.
    pub fn kill_operator(&mut self) {
        if let Some(mut op) = self.operator.take() {
            op.kill();
        }
    }

    /// Whether the operator process is still running.
    pub fn operator_alive(&mut self) -> bool {
        self.operator.as_mut().is_some_and(Operator::alive)
    }

    /// The Lease for leader election (namespace, name): the chart's own under its RBAC.
    pub fn lease(&self) -> (String, String) {
        self.control_plane.lease(&self.ns)
    }

    /// The namespace for email claims (`--claims-namespace`): the chart's when the suite runs
    /// under its RBAC (`E2E_CLAIMS_NAMESPACE`), otherwise the test's own.
    pub fn claims_namespace(&self) -> String {
        std::env::var("E2E_CLAIMS_NAMESPACE")
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.ns.clone())
    }

    /// The operator's log so far.
    pub fn operator_log(&self) -> String {
        logs::read(&self.log_path)
    }

    /// The operator's HTTP address.
    pub fn http(&self) -> SocketAddr {
        self.operator.as_ref().expect("operator running").http
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&mut self) {
        let Some(mut op) = self.operator.take() else {
            panic!("no operator running");
        };
        self.ready(&mut op).await;
        self.operator = Some(op);
    }

    /// Waits until `op` (an operator of this env) is ready. One whose free port another test
    /// took between the probe and its bind is started again as it was launched, on a new port.
    pub async fn ready(&self, op: &mut Operator) {
        let deadline = Instant::now() + WAIT;
        let mut rebinds = 0;
        loop {
            let within = deadline.saturating_duration_since(Instant::now());
            let Err(e) = op.wait_ready(within).await else {
                return;
            };
            if !op.alive() && rebinds < 3 && self.log_tail().contains("binding 127.0.0.1") {
                rebinds += 1;
                op.respawn().expect("operator started again");
                continue;
            }
            panic!("{e}; log:\n{}", self.log_tail());
        }
    }

    fn log_tail(&self) -> String {
        logs::tail(&self.operator_log(), 40, usize::MAX, |_| true).join("\n")
    }

    /// Sets or removes the pause annotation of `name`.
    pub async fn set_paused(&self, name: &str, paused: bool) {
        let value = if paused {
            serde_json::json!("true")
        } else {
            serde_json::Value::Null
        };
        let patch =
            serde_json::json!({ "metadata": { "annotations": { PAUSED_ANNOTATION: value } } });
        self.api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("annotation patched");
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
        self.secret_in(&self.ns, name, data).await;
    }

    /// Creates a Secret in namespace `ns`.
    pub async fn secret_in(&self, ns: &str, name: &str, data: &[(&str, &str)]) {
        let secrets: Api<Secret> = Api::namespaced(self.kube.clone(), ns);
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
        self.wait_for_within(name, what, WAIT, pred).await
    }

    /// [`Self::wait_for`] with a deadline of its own: for promises of "within N resyncs".
    pub async fn wait_for_within(
        &self,
        name: &str,
        what: &str,
        within: Duration,
        pred: impl Fn(&Invitation) -> bool,
    ) -> Invitation {
        let deadline = Instant::now() + within;
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

    /// The absolute CRN `crn://confluent.cloud/organization=<the mock's>` followed by `rest`
    /// (`/environment=env-abc`, or empty for the organization itself).
    pub fn crn(&self, rest: &str) -> String {
        format!("{CRN_PREFIX}organization={}{rest}", self.org_id)
    }

    /// The mock's role bindings of `User:<user_id>`, in creation order.
    pub fn bindings_of_user(&self, user_id: &str) -> Vec<RemoteRoleBinding> {
        let principal = user_principal(user_id);
        self.remote()
            .role_bindings()
            .into_iter()
            .filter(|b| b.principal.as_deref() == Some(principal.as_str()))
            .collect()
    }

    /// The API server's minor version (the 37 of 1.37; a suffix such as `+` ignored).
    pub async fn server_minor(&self) -> u32 {
        let version = self
            .kube
            .apiserver_version()
            .await
            .expect("the API server's version");
        version
            .minor
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or_else(|_| panic!("minor version {:?}", version.minor))
    }

    /// Whether the API server enforces the CRD's CEL rules (`x-kubernetes-validations`): the
    /// stored CRD still carries the rule on `spec.email`. A server older than 1.25 drops the
    /// rules when the CRD is created and then accepts what they forbid.
    pub async fn server_enforces_cel(&self) -> bool {
        let crds: Api<CustomResourceDefinition> = Api::all(self.kube.clone());
        let crd = crds
            .get(Invitation::crd_name())
            .await
            .expect("the CRD is readable");
        crd.spec.versions.iter().any(|v| {
            v.schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .and_then(|s| {
                    s.properties
                        .as_ref()?
                        .get("spec")?
                        .properties
                        .as_ref()?
                        .get("email")
                })
                .is_some_and(|email| email.x_kubernetes_validations.is_some())
        })
    }

    /// The remote invitation with this id.
    pub fn remote_by_id(&self, id: &str) -> Option<RemoteInvitation> {
        self.remote()
            .invitations()
            .into_iter()
            .find(|i| i.id.as_deref() == Some(id))
    }
}

/// `name` through `api` (another namespace's), once its Ready reason is `reason`.
pub async fn wait_reason_via(api: &Api<Invitation>, name: &str, reason: &str) -> Invitation {
    eventually(&format!("{name} reports {reason}"), WAIT, || {
        let api = api.clone();
        async move {
            let inv = api.get_opt(name).await.ok().flatten()?;
            (ready_of(&inv)?.1 == reason).then_some(inv)
        }
    })
    .await
}

/// `name` through `api` (another namespace's), once Ready is True.
pub async fn wait_ready_via(api: &Api<Invitation>, name: &str) -> Invitation {
    eventually(&format!("{name} Ready"), WAIT, || {
        let api = api.clone();
        async move {
            let inv = api.get_opt(name).await.ok().flatten()?;
            (ready_of(&inv)?.0 == "True").then_some(inv)
        }
    })
    .await
}

/// An Invitation manifest with defaults.
pub fn invitation(name: &str, email: &str) -> Invitation {
    Invitation::new(name, InvitationSpec::of_email(email))
}

/// The same with a credentials Secret.
pub fn with_secret(mut inv: Invitation, secret: &str) -> Invitation {
    inv.spec.credentials_secret_ref = Some(SecretRef {
        name: secret.into(),
    });
    inv
}

/// Polls `probe` every 200 ms until it gives a value; fails naming `what` after `within`.
pub async fn eventually<T, Fut>(what: &str, within: Duration, probe: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    match test_support::poll_until(within, Duration::from_millis(200), probe).await {
        Some(value) => value,
        None => panic!("{what}"),
    }
}

/// The same listing role bindings, given as (roleName, crnPattern).
pub fn with_role_bindings(mut inv: Invitation, items: &[(&str, &str)]) -> Invitation {
    inv.spec.role_bindings = items
        .iter()
        .map(|(role, crn)| RoleBinding {
            role_name: (*role).into(),
            crn_pattern: (*crn).into(),
        })
        .collect();
    inv
}

/// `status.roleBindings`.
pub fn bindings_of(i: &Invitation) -> Vec<RoleBindingStatus> {
    i.status
        .as_ref()
        .map(|s| s.role_bindings.clone())
        .unwrap_or_default()
}

/// Whether `status.roleBindings` has `n` entries, every one Bound with an id, and describes
/// the current generation.
pub fn all_bound(i: &Invitation, n: usize) -> bool {
    let entries = bindings_of(i);
    entries.len() == n
        && entries
            .iter()
            .all(|e| e.state == RoleBindingState::Bound && e.id.is_some())
        && i.status.as_ref().and_then(|s| s.observed_generation) == i.metadata.generation
}

/// `status.userId`.
pub fn user_of(i: &Invitation) -> String {
    i.status
        .as_ref()
        .and_then(|s| s.user_id.clone())
        .expect("status.userId")
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

/// `kubectl apply -f -` of `manifest` with `flags` (`KUBECTL`, else kubectl on PATH): whether it
/// succeeded, and what it printed. kubectl leaves validation to a server that does it (field
/// validation, 1.25+); before that it checks the schema itself unless told not to
/// (`--validate=false`), so a test of the API server's own refusal passes that flag there.
pub fn kubectl_apply(manifest: &str, flags: &[&str]) -> (bool, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let mut child = Command::new(kubectl)
        .args(["apply", "-f", "-"])
        .args(flags)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs (set KUBECTL)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(manifest.as_bytes())
        .expect("manifest written");
    let out = child.wait_with_output().expect("kubectl finished");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
