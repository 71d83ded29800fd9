//! The `run` command: builds the controller's context from the flags, serves the HTTP endpoints,
//! turns SIGTERM/Ctrl-C into a graceful stop, stands by for leadership when election is on,
//! and runs the controller until it is told to stop or loses the lease. Each of these is a
//! function of its own; [`operate`] only sequences them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::{ConfluentArgs, RunArgs};
use crate::invitation::controller::{self, Settings};
use crate::invitation_group;
use crate::invitation_policy::controller::Policies;
use crate::runtime::credentials::CredentialStore;
use crate::runtime::http;
use crate::runtime::leader::{self, Election};
use crate::runtime::metrics::{self, Metrics};
use crate::runtime::service_account_token::{MIN_EXPIRATION, Minting};
use crate::runtime::{Confluent, Kube, Runtime};
use confluent_client::{ClientSettings, Credentials};

/// Why the operator stopped other than on request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Only one of the API key's two environment variables is set.
    #[error("set both CONFLUENT_CLOUD_API_KEY and CONFLUENT_CLOUD_API_SECRET, or neither")]
    HalfAnApiKey,
    /// Keyless credentials and a key or token at once: which one acts would be a guess.
    #[error(
        "keyless credentials (--sts-identity-pool-id/STS_IDENTITY_POOL_ID) exclude CONFLUENT_CLOUD_API_KEY/CONFLUENT_CLOUD_API_SECRET and --access-token-file (CONFLUENT_CLOUD_ACCESS_TOKEN_FILE): set one kind of credential"
    )]
    ConflictingCredentials,
    /// `--serviceaccount-token-audience` is blank.
    #[error("--serviceaccount-token-audience must name an audience (e.g. confluent)")]
    NoTokenAudience,
    /// `--serviceaccount-token-expiration` below what the API server grants.
    #[error("--serviceaccount-token-expiration must be at least 10m, the API server's minimum")]
    TokenExpirationTooShort,
    /// Only one of the two keyless settings.
    #[error(
        "keyless credentials need both --sts-identity-pool-id (STS_IDENTITY_POOL_ID) and --sts-subject-token-file (STS_SUBJECT_TOKEN_FILE)"
    )]
    HalfAnStsCredential,
    /// The Confluent endpoint or the HTTP client could not be set up.
    #[error("setting up the Confluent client: {0}")]
    ConfluentClient(#[from] confluent_client::Error),
    /// No Kubernetes client (no kubeconfig, no in-cluster service account).
    #[error("connecting to Kubernetes: {0}")]
    Kubernetes(#[from] kube::Error),
    /// The health/metrics endpoint could not bind.
    #[error(transparent)]
    Http(#[from] http::Error),
    /// The Lease could not be joined.
    #[error(transparent)]
    Election(#[from] leader::Error),
    /// `--allowed-roles` was given but names no role (`","`, `" "`): refused rather than read
    /// as "any role".
    #[error("--allowed-roles names no role; omit the flag to allow any role")]
    NoAllowedRoles,
    /// `--claims-namespace` without a usable `--installation-id` (blank, or with spaces):
    /// refused rather than keeping claims no installation can be told apart in.
    #[error(
        "--claims-namespace needs --installation-id (a name without spaces, e.g. <namespace>/<release>)"
    )]
    NoInstallationId,
    /// The election ended (its task failed) before this replica ever led.
    #[error("leader election ended before this replica led")]
    ElectionEnded,
    /// Another replica took the lease: the process exits non-zero so that the Pod restarts and
    /// stands by again with a clean state.
    #[error("lost leadership")]
    LostLeadership,
}

/// Credentials from CONFLUENT_CLOUD_API_KEY + CONFLUENT_CLOUD_API_SECRET, a token file, or
/// keyless (an identity pool and a subject token file); at most one kind.
pub fn credentials_from_env(args: &ConfluentArgs) -> Result<Option<Credentials>, Error> {
    let key = std::env::var("CONFLUENT_CLOUD_API_KEY")
        .ok()
        .filter(|v| !v.is_empty());
    let secret = std::env::var("CONFLUENT_CLOUD_API_SECRET")
        .ok()
        .filter(|v| !v.is_empty());
    credentials_from(args, key, secret)
}

/// [`credentials_from_env`] with the environment's key pair given.
fn credentials_from(
    args: &ConfluentArgs,
    key: Option<String>,
    secret: Option<String>,
) -> Result<Option<Credentials>, Error> {
    let pool = args
        .sts_identity_pool_id
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let subject = args
        .sts_subject_token_file
        .as_deref()
        .filter(|p| !p.as_os_str().is_empty());
    let access_token_file = args.access_token_file.as_deref();
    match (pool, subject) {
        (Some(pool), Some(subject)) => {
            if key.is_some() || secret.is_some() || access_token_file.is_some() {
                return Err(Error::ConflictingCredentials);
            }
            return Ok(Some(Credentials::sts_file(
                pool,
                subject,
                args.sts_token_lifetime,
            )));
        }
        (Some(_), None) | (None, Some(_)) => return Err(Error::HalfAnStsCredential),
        (None, None) => {}
    }
    match (key, secret, access_token_file) {
        (Some(k), Some(s), _) => Ok(Some(Credentials::api_key(k, s))),
        (None, None, Some(path)) => Ok(Some(Credentials::token_file(path))),
        (None, None, None) => Ok(None),
        _ => Err(Error::HalfAnApiKey),
    }
}

/// Runs the operator until a shutdown signal (`Ok`) or a failure.
pub async fn operate(args: RunArgs) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::new());
    let (runtime, settings) = runtime(&args, &metrics).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let endpoint = Endpoint::new(&metrics);
    let http_task = endpoint.serve(args.http_addr, stop_rx.clone()).await?;
    stop_on_signal(stop_tx.clone());

    let election = if args.leader_election {
        match stand_by(&args, &runtime, &metrics, &endpoint, stop_rx.clone()).await? {
            Some(election) => Some(election),
            // asked to stop while standing by
            None => {
                let _ = http_task.await;
                return Ok(());
            }
        }
    } else {
        metrics.set_leader(true);
        None
    };

    let groups = invitation_group::controller::Settings {
        resync: settings.resync,
        namespace: settings.namespace.clone(),
        label_selector: settings.label_selector.clone(),
        role_binding_budget: args.role_binding_budget,
    };
    reconcile_until_stopped(
        &runtime,
        (settings, groups),
        &endpoint,
        election.as_ref(),
        stop_rx,
    )
    .await;
    let lost_leadership = election.as_ref().is_some_and(|e| !*e.is_leader.borrow());
    if let Some(e) = election {
        metrics.set_leader(false);
        e.resign().await;
    }
    let _ = stop_tx.send(true);
    let _ = http_task.await;
    if lost_leadership {
        return Err(Error::LostLeadership);
    }
    Ok(())
}

/// The runtime's parts from the flags (the credential store with the default credentials from
/// the environment, the Kubernetes client, the metrics) and the controller's settings.
async fn runtime(args: &RunArgs, metrics: &Arc<Metrics>) -> Result<(Runtime, Settings), Error> {
    let defaults = credentials_from_env(&args.confluent)?;
    let mut client_settings = ClientSettings::new(&args.confluent.confluent_endpoint)?;
    client_settings.budget =
        args.confluent_rate_limit
            .map(|per_second| confluent_client::ratelimit::Budget {
                per_second,
                burst: args.confluent_rate_burst,
            });
    let http_client = confluent_client::http_client(args.confluent.request_timeout)?;
    let kube = kube::Client::try_default().await?;
    let credentials = CredentialStore::new(
        http_client,
        client_settings,
        Some(metrics::observer(metrics)),
        defaults,
        args.require_credentials_ref,
    )
    .with_minting(minting(args)?, &kube);
    let settings = controller_settings(args)?;
    if args.dry_run {
        tracing::warn!("dry run: nothing will be created, adopted or deleted in Confluent Cloud");
    }
    tracing::info!(
        endpoint = %args.confluent.confluent_endpoint,
        namespace = settings.namespace.as_deref().unwrap_or("<all>"),
        resync = ?settings.resync,
        concurrency = settings.concurrency,
        "starting confluent-invitation-operator {}",
        env!("CARGO_PKG_VERSION")
    );
    let runtime = Runtime {
        kube: Kube::new(kube, args.pod_name.clone()),
        confluent: Arc::new(Confluent::new(credentials, settings.resync)),
        metrics: metrics.clone(),
    };
    Ok((runtime, settings))
}

/// How keyless credentials Secrets get their subject tokens, with `--allow-serviceaccount-tokens`.
fn minting(args: &RunArgs) -> Result<Option<Minting>, Error> {
    if !args.allow_serviceaccount_tokens {
        return Ok(None);
    }
    let audience = args.serviceaccount_token_audience.trim();
    if audience.is_empty() {
        return Err(Error::NoTokenAudience);
    }
    if args.serviceaccount_token_expiration < MIN_EXPIRATION {
        return Err(Error::TokenExpirationTooShort);
    }
    Ok(Some(Minting {
        audience: audience.to_owned(),
        expiration: args.serviceaccount_token_expiration,
        sts_lifetime: args.confluent.sts_token_lifetime,
    }))
}

/// The controller's settings from the flags (empty values mean "not set", except for
/// `--allowed-roles`, where a list of blanks is an error: a ceiling must never read as "any").
fn controller_settings(args: &RunArgs) -> Result<Settings, Error> {
    let allowed_roles: Vec<String> = args
        .allowed_roles
        .iter()
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect();
    if !args.allowed_roles.is_empty() && allowed_roles.is_empty() {
        return Err(Error::NoAllowedRoles);
    }
    Ok(Settings {
        resync: args.resync_interval,
        concurrency: args.concurrency,
        namespace: args.watch_namespace.clone().filter(|n| !n.is_empty()),
        label_selector: args.label_selector.clone().filter(|s| !s.is_empty()),
        allowed_email_domains: args
            .allowed_email_domains
            .iter()
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty())
            .collect(),
        allowed_roles: (!allowed_roles.is_empty()).then_some(allowed_roles),
        dry_run: args.dry_run,
        require_policy: args.require_policy,
        claims: claims_config(args)?,
    })
}

/// Where the claims on emails are kept, from `--claims-namespace` and `--installation-id`
/// (blank means not set; a namespace without an id is an error, not "no claims").
fn claims_config(args: &RunArgs) -> Result<Option<controller::email_claims::Config>, Error> {
    let Some(namespace) = args
        .claims_namespace
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    else {
        return Ok(None);
    };
    let installation = args
        .installation_id
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty() && !i.contains(char::is_whitespace))
        .ok_or(Error::NoInstallationId)?;
    Ok(Some(controller::email_claims::Config {
        namespace: namespace.to_owned(),
        installation: installation.to_owned(),
        takeover_after: args.claims_takeover_after,
    }))
}

/// What `/readyz` and `/metrics` read, shared with whoever flips readiness.
struct Endpoint {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    gauges: Arc<OnceLock<http::Gauges>>,
}

impl Endpoint {
    fn new(metrics: &Arc<Metrics>) -> Self {
        Self {
            metrics: metrics.clone(),
            ready: Arc::new(AtomicBool::new(false)),
            gauges: Arc::new(OnceLock::new()),
        }
    }

    /// Serves `/healthz`, `/readyz` and `/metrics` until `stop` says so.
    async fn serve(
        &self,
        addr: SocketAddr,
        stop: watch::Receiver<bool>,
    ) -> Result<JoinHandle<()>, Error> {
        let state = http::HttpState {
            metrics: self.metrics.clone(),
            ready: self.ready.clone(),
            gauges: self.gauges.clone(),
        };
        Ok(http::serve(addr, state, stopped(stop)).await?)
    }

    fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }
}

/// Turns SIGTERM or Ctrl-C into a stop request: in-flight reconciles finish first.
fn stop_on_signal(stop: watch::Sender<bool>) {
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested: finishing in-flight reconciles");
        let _ = stop.send(true);
    });
}

/// Joins the election and waits to lead: `Some` once leading, `None` when asked to stop first.
async fn stand_by(
    args: &RunArgs,
    runtime: &Runtime,
    metrics: &Metrics,
    endpoint: &Endpoint,
    stop: watch::Receiver<bool>,
) -> Result<Option<Election>, Error> {
    let namespace = args
        .leader_election_namespace
        .clone()
        .or_else(|| args.pod_namespace.clone())
        .unwrap_or_else(|| "default".into());
    let identity = args.pod_name.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "operator".into());
        format!("{host}-{}", std::process::id())
    });
    let lease = &args.leader_election_lease_name;
    let mut joined =
        Election::join(runtime.kube.client.clone(), &namespace, lease, &identity).await?;
    // A standby is healthy and ready: reporting otherwise would stall rolling updates.
    endpoint.set_ready();
    metrics.set_leader(false);
    tracing::info!(lease = %format!("{namespace}/{lease}"), %identity, "standing by for leadership");
    tokio::select! {
        leader = joined.until_leader() => {
            if !leader {
                return Err(Error::ElectionEnded);
            }
        }
        _ = stopped(stop) => {
            joined.resign().await;
            return Ok(None);
        }
    }
    tracing::info!(%identity, "became leader");
    metrics.set_leader(true);
    Ok(Some(joined))
}

/// Runs the controller until a stop request or, with an election, the loss of the lease; the
/// endpoint turns ready once the watch cache has synced.
async fn reconcile_until_stopped(
    runtime: &Runtime,
    (settings, group_settings): (Settings, invitation_group::controller::Settings),
    endpoint: &Endpoint,
    election: Option<&Election>,
    stop: watch::Receiver<bool>,
) {
    let lost = election.map(|e| e.is_leader.clone());
    let controller_stop = async move {
        let lost = async {
            match lost {
                Some(rx) => Election::until_lost(rx).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stopped(stop) => {}
            _ = lost => tracing::error!("lost leadership: stopping reconciles"),
        }
    };
    let gauges = endpoint.gauges.clone();
    let ready = endpoint.ready.clone();
    let policies = Policies::start(&runtime.kube.client).await;
    // one stop for every kind's controller
    let controller_stop = futures::FutureExt::shared(Box::pin(controller_stop));
    let groups =
        invitation_group::controller::run(runtime, group_settings, controller_stop.clone());
    let invitations = controller::run(runtime, settings, policies, controller_stop, move |store| {
        let _ = gauges.set(controller::gauges::of(store));
        ready.store(true, Ordering::Relaxed);
        tracing::info!("watch cache synced: ready");
    });
    futures::join!(invitations, groups);
}

/// Resolves once a stop is requested.
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings_of(args: &[&str]) -> Result<Settings, Error> {
        let cli =
            crate::cli::Cli::try_parse_from(std::iter::once("op").chain(args.iter().copied()))
                .expect("flags parse");
        controller_settings(&cli.run)
    }

    /// Claims need an installation id, and a takeover needs claims: refused at startup, never
    /// run with claims nobody can tell apart.
    #[test]
    fn claims_need_an_installation_id() {
        let parse = |args: &[&str]| {
            crate::cli::Cli::try_parse_from(std::iter::once("op").chain(args.iter().copied()))
        };
        assert!(parse(&["--claims-namespace", "claims"]).is_err());
        assert!(parse(&["--claims-takeover-after", "1h"]).is_err());
        assert!(matches!(
            settings_of(&["--claims-namespace", "claims", "--installation-id", " "]),
            Err(Error::NoInstallationId)
        ));
        assert!(matches!(
            settings_of(&["--claims-namespace", "claims", "--installation-id", "a b"]),
            Err(Error::NoInstallationId)
        ));
        let s = settings_of(&[
            "--claims-namespace",
            "claims",
            "--installation-id",
            "team-a/operator",
            "--claims-takeover-after",
            "1h",
        ])
        .expect("valid");
        let claims = s.claims.expect("claims kept");
        assert_eq!(
            (claims.namespace.as_str(), claims.installation.as_str()),
            ("claims", "team-a/operator")
        );
        assert_eq!(
            claims.takeover_after,
            Some(std::time::Duration::from_secs(3600))
        );
        assert!(settings_of(&[]).expect("valid").claims.is_none());
        assert!(
            settings_of(&["--claims-namespace", "", "--installation-id", "x"])
                .expect("valid")
                .claims
                .is_none()
        );
    }

    /// Keyless credentials exclude a key and a token file, and need both their settings; the
    /// identity names the pool and the file, never a token.
    #[test]
    fn keyless_credentials_exclude_the_other_kinds() {
        let args = |extra: &[&str]| {
            crate::cli::Cli::try_parse_from(std::iter::once("op").chain(extra.iter().copied()))
                .expect("flags parse")
                .run
                .confluent
        };
        let sts = args(&[
            "--sts-identity-pool-id",
            "pool-a1",
            "--sts-subject-token-file",
            "/var/run/secrets/confluent/token",
            "--sts-token-lifetime",
            "5m",
        ]);
        let c = credentials_from(&sts, None, None)
            .expect("valid")
            .expect("credentials");
        assert_eq!(c.identity(), "sts:pool-a1:/var/run/secrets/confluent/token");
        let e = credentials_from(&sts, Some("K".into()), Some("S".into())).unwrap_err();
        assert!(matches!(e, Error::ConflictingCredentials));
        let message = e.to_string();
        assert!(
            message.contains("CONFLUENT_CLOUD_API_KEY") && message.contains("--access-token-file"),
            "{message}"
        );
        let mut with_file = sts.clone();
        with_file.access_token_file = Some("/t".into());
        assert!(matches!(
            credentials_from(&with_file, None, None),
            Err(Error::ConflictingCredentials)
        ));
        assert!(matches!(
            credentials_from(&args(&["--sts-identity-pool-id", "pool-a1"]), None, None),
            Err(Error::HalfAnStsCredential)
        ));
        assert!(matches!(
            credentials_from(&args(&["--sts-subject-token-file", "/t"]), None, None),
            Err(Error::HalfAnStsCredential)
        ));
        assert!(
            credentials_from(&args(&[]), None, None)
                .expect("valid")
                .is_none()
        );
    }

    /// ServiceAccount tokens are minted only when allowed, for a real audience and at least the
    /// API server's minimum life.
    #[test]
    fn minting_needs_the_flag_an_audience_and_ten_minutes() {
        let run = |extra: &[&str]| {
            crate::cli::Cli::try_parse_from(std::iter::once("op").chain(extra.iter().copied()))
                .expect("flags parse")
                .run
        };
        assert_eq!(minting(&run(&[])).expect("valid"), None);
        let m = minting(&run(&[
            "--allow-serviceaccount-tokens",
            "--sts-token-lifetime",
            "5m",
        ]))
        .expect("valid")
        .expect("allowed");
        assert_eq!(m.audience, "confluent");
        assert_eq!(m.expiration, MIN_EXPIRATION);
        assert_eq!(m.sts_lifetime, std::time::Duration::from_secs(300));
        assert!(matches!(
            minting(&run(&[
                "--allow-serviceaccount-tokens",
                "--serviceaccount-token-audience",
                " "
            ])),
            Err(Error::NoTokenAudience)
        ));
        assert!(matches!(
            minting(&run(&[
                "--allow-serviceaccount-tokens",
                "--serviceaccount-token-expiration",
                "5m"
            ])),
            Err(Error::TokenExpirationTooShort)
        ));
    }

    /// `--allowed-roles` naming no role is a startup error, never "any role"; a policy is
    /// required only when asked.
    #[test]
    fn an_allowed_roles_flag_naming_no_role_is_refused() {
        for blank in [",", " ", " , "] {
            assert!(
                matches!(
                    settings_of(&["--allowed-roles", blank]),
                    Err(Error::NoAllowedRoles)
                ),
                "{blank:?}"
            );
        }
        let s =
            settings_of(&["--allowed-roles", "DeveloperRead, ,EnvironmentAdmin"]).expect("valid");
        assert_eq!(
            s.allowed_roles.as_deref(),
            Some(&["DeveloperRead".to_owned(), "EnvironmentAdmin".to_owned()][..])
        );
        assert_eq!(settings_of(&[]).expect("valid").allowed_roles, None);
        assert!(!settings_of(&[]).expect("valid").require_policy);
        assert!(
            settings_of(&["--require-policy"])
                .expect("valid")
                .require_policy
        );
    }
}
