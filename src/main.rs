//! `confluent-invitation-operator`: `run` (the default) runs the controller; `crd` prints the
//! CustomResourceDefinition; `export` prints the organization's invitations as manifests.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use confluent_client::{ClientSettings, Credentials};
use confluent_invitation_operator::cli::{Cli, Command, ExportArgs, RunArgs};
use confluent_invitation_operator::controller::{self, Context, Settings};
use confluent_invitation_operator::credentials::CredentialStore;
use confluent_invitation_operator::leader::Election;
use confluent_invitation_operator::metrics::{self, Metrics};
use confluent_invitation_operator::{crd, export, http, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd) => match crd::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: rendering the CRD: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Export(args)) => export_organization(&args),
        Some(Command::Run(args)) => run(*args),
        None => run(cli.run),
    }
}

fn run(args: RunArgs) -> ExitCode {
    telemetry::init(args.log_format.unwrap_or_else(telemetry::LogFormat::detect));
    confluent_invitation_operator::memory::limit_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(operate(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!(error = %message, "operator stopped");
            ExitCode::FAILURE
        }
    }
}

/// The operator's default credentials, from the environment only.
fn default_credentials(args: &RunArgs) -> Result<Option<Credentials>, String> {
    credentials_from_env(args.access_token_file.as_deref())
}

/// Credentials from CONFLUENT_CLOUD_API_KEY + CONFLUENT_CLOUD_API_SECRET, or a token file.
fn credentials_from_env(
    access_token_file: Option<&std::path::Path>,
) -> Result<Option<Credentials>, String> {
    let key = std::env::var("CONFLUENT_CLOUD_API_KEY")
        .ok()
        .filter(|v| !v.is_empty());
    let secret = std::env::var("CONFLUENT_CLOUD_API_SECRET")
        .ok()
        .filter(|v| !v.is_empty());
    match (key, secret, access_token_file) {
        (Some(k), Some(s), _) => Ok(Some(Credentials::api_key(k, s))),
        (None, None, Some(path)) => Ok(Some(Credentials::token_file(path))),
        (None, None, None) => Ok(None),
        _ => Err(
            "set both CONFLUENT_CLOUD_API_KEY and CONFLUENT_CLOUD_API_SECRET, or neither".into(),
        ),
    }
}

async fn operate(args: RunArgs) -> Result<(), String> {
    let defaults = default_credentials(&args)?;
    let mut settings = ClientSettings::new(&args.confluent_endpoint).map_err(|e| e.to_string())?;
    settings.budget =
        args.confluent_rate_limit
            .map(|per_second| confluent_client::ratelimit::Budget {
                per_second,
                burst: args.confluent_rate_burst,
            });
    let http_client =
        confluent_client::http_client(args.request_timeout).map_err(|e| e.to_string())?;
    let metrics = Arc::new(Metrics::new());
    let store = CredentialStore::new(
        http_client,
        settings,
        Some(metrics::observer(&metrics)),
        defaults,
        args.require_credentials_ref,
    );
    let kube = kube::Client::try_default()
        .await
        .map_err(|e| format!("connecting to Kubernetes: {e}"))?;
    let controller_settings = Settings {
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
        dry_run: args.dry_run,
    };
    if args.dry_run {
        tracing::warn!("dry run: nothing will be created, adopted or deleted in Confluent Cloud");
    }
    tracing::info!(
        endpoint = %args.confluent_endpoint,
        namespace = controller_settings.namespace.as_deref().unwrap_or("<all>"),
        resync = ?controller_settings.resync,
        concurrency = controller_settings.concurrency,
        "starting confluent-invitation-operator {}",
        env!("CARGO_PKG_VERSION")
    );
    let ctx = Arc::new(Context::new(
        kube,
        store,
        metrics.clone(),
        controller_settings,
        args.pod_name.clone(),
    ));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let ready = Arc::new(AtomicBool::new(false));
    let state = http::HttpState {
        metrics: metrics.clone(),
        ready: ready.clone(),
        store: Arc::new(std::sync::OnceLock::new()),
    };
    let store_slot = state.store.clone();
    let http_stop = wait_for(stop_rx.clone());
    let http_task = http::serve(args.http_addr, state, http_stop)
        .await
        .map_err(|e| e.to_string())?;
    let stop_signal = stop_tx.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested: finishing in-flight reconciles");
        let _ = stop_signal.send(true);
    });

    let mut election = None;
    if args.leader_election {
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
        let mut joined = Election::join(ctx.kube.clone(), &namespace, lease, &identity)
            .await
            .map_err(|e| e.to_string())?;
        // A standby is healthy and ready: reporting otherwise would stall rolling updates.
        ready.store(true, Ordering::Relaxed);
        metrics.set_leader(false);
        tracing::info!(lease = %format!("{namespace}/{lease}"), %identity, "standing by for leadership");
        tokio::select! {
            leader = joined.until_leader() => {
                if !leader {
                    return Err("leader election ended before this replica led".into());
                }
            }
            _ = wait_for(stop_rx.clone()) => {
                joined.resign().await;
                let _ = http_task.await;
                return Ok(());
            }
        }
        tracing::info!(%identity, "became leader");
        metrics.set_leader(true);
        election = Some(joined);
    }

    if election.is_none() {
        metrics.set_leader(true);
    }
    let lost = election.as_ref().map(|e| e.is_leader.clone());
    let controller_stop = async move {
        let lost = async {
            match lost {
                Some(rx) => Election::until_lost(rx).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = wait_for(stop_rx) => {}
            _ = lost => tracing::error!("lost leadership: stopping reconciles"),
        }
    };
    controller::run(ctx, controller_stop, move |store| {
        let _ = store_slot.set(store);
        ready.store(true, Ordering::Relaxed);
        tracing::info!("watch cache synced: ready");
    })
    .await;
    let lost_leadership = election.as_ref().is_some_and(|e| !*e.is_leader.borrow());
    if let Some(e) = election {
        metrics.set_leader(false);
        e.resign().await;
    }
    let _ = stop_tx.send(true);
    let _ = http_task.await;
    if lost_leadership {
        // exit non-zero: the Pod restarts and stands by again with a clean state
        return Err("lost leadership".into());
    }
    Ok(())
}

/// `export`: lists every invitation (all pages, progress on stderr) and prints the manifests.
fn export_organization(args: &ExportArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(export_manifests(args)) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn export_manifests(args: &ExportArgs) -> Result<String, String> {
    use futures::TryStreamExt;
    let credentials = credentials_from_env(args.access_token_file.as_deref())?.ok_or(
        "no credentials: set CONFLUENT_CLOUD_API_KEY and CONFLUENT_CLOUD_API_SECRET, or --access-token-file",
    )?;
    let settings = ClientSettings::new(&args.confluent_endpoint).map_err(|e| e.to_string())?;
    let http_client =
        confluent_client::http_client(args.request_timeout).map_err(|e| e.to_string())?;
    let client = confluent_client::Client::new(http_client, settings, credentials, None);
    let mut remote = Vec::new();
    let mut pages = std::pin::pin!(client.list_pages(&confluent_client::ListFilter::default()));
    let mut page_count = 0u32;
    while let Some(page) = pages
        .try_next()
        .await
        .map_err(|e| format!("listing invitations: {e}"))?
    {
        page_count += 1;
        remote.extend(page);
        eprintln!("listed {} invitations ({page_count} pages)", remote.len());
    }
    if args.status.iter().any(|s| !s.adoptable()) {
        eprintln!(
            "warning: expired and deactivated invitations cannot be adopted: applying their manifests sends new invitations"
        );
    }
    let options = export::Options {
        namespace: args.namespace.clone(),
        deletion_policy: args.deletion_policy.into(),
        statuses: args.status.clone(),
    };
    let resources = export::invitations(&remote, &options).map_err(|e| e.to_string())?;
    eprintln!(
        "exported {} Invitation manifests (of {} invitations listed) into namespace {}",
        resources.len(),
        remote.len(),
        args.namespace
    );
    export::render(&resources).map_err(|e| e.to_string())
}

async fn wait_for(mut rx: tokio::sync::watch::Receiver<bool>) {
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
