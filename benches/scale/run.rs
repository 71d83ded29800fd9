//! The world of the benchmark, built with `test-support`: the API server from the environment,
//! and for each run a fresh namespace (or one per credentials Secret, `--secrets`), a fresh
//! Confluent mock with the run's latency and limit, and the operator binary watching that
//! namespace (or selecting the run's Invitations by label); and taking a run's world down again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use confluent_mock::{MockConfig, MockServer, RateLimit};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use test_support::{ControlPlane, Launch, Operator, logs};

use crate::error::BoxError;
use crate::flags::Opts;
use crate::invitations::Spread;

/// The credentials Secret of each namespace with `--secrets`.
pub const SECRET_NAME: &str = "bench-credentials";
/// The label the operator selects a run's Invitations by with `--secrets`.
pub const RUN_LABEL: &str = "bench-run";

pub const API_KEY: &str = "bench-key";
pub const API_SECRET: &str = "bench-secret-not-a-real-one";

/// What every run shares: the API server, the operator binary and where its logs go.
pub struct World {
    pub control_plane: ControlPlane,
    pub kube: kube::Client,
    pub binary: PathBuf,
    pub log_dir: PathBuf,
}

/// One run's namespace (its name) and where its Invitations go: that namespace, or with
/// `secrets` > 0 that many namespaces (the run's, then `<run's>-s1`, …), each with a Secret
/// holding the mock's API key.
pub async fn namespaces(world: &World, n: u64, secrets: u64) -> Result<(String, Spread), BoxError> {
    let ns = test_support::create_namespace(&world.kube, &format!("bench-{n}")).await?;
    let mut spread = Spread {
        apis: vec![Api::namespaced(world.kube.clone(), &ns)],
        secret: None,
        label: None,
    };
    if secrets == 0 {
        return Ok((ns, spread));
    }
    let nss: Api<Namespace> = Api::all(world.kube.clone());
    for s in 1..secrets {
        let name = format!("{ns}-s{s}");
        let mut namespace = Namespace::default();
        namespace.metadata.name = Some(name.clone());
        nss.create(&PostParams::default(), &namespace).await?;
        spread.apis.push(Api::namespaced(world.kube.clone(), &name));
    }
    for api in &spread.apis {
        let Some(namespace) = api.namespace() else {
            continue;
        };
        let mut secret = Secret::default();
        secret.metadata.name = Some(SECRET_NAME.into());
        secret.string_data = Some(BTreeMap::from([
            ("apiKey".to_owned(), API_KEY.to_owned()),
            ("apiSecret".to_owned(), API_SECRET.to_owned()),
        ]));
        Api::<Secret>::namespaced(world.kube.clone(), namespace)
            .create(&PostParams::default(), &secret)
            .await?;
    }
    spread.secret = Some(SECRET_NAME.into());
    spread.label = Some((RUN_LABEL.into(), ns.clone()));
    Ok((ns, spread))
}

/// A fresh mock with the run's latency and `rate` as its per-credential limit.
pub async fn start_mock(opts: &Opts, rate: f64) -> Result<MockServer, BoxError> {
    let config = MockConfig {
        latency: opts.latency(),
        rate_limit: Some(RateLimit {
            per_second: rate,
            burst: opts.burst,
        }),
        ..MockConfig::default()
    };
    Ok(test_support::start_mock(API_KEY, API_SECRET, config).await?)
}

/// Starts the operator on `ns` (or, with `spread`'s Secrets, on the Invitations labelled for the
/// run, with no default credentials) against the mock at `mock_url`, told `rate` as its limit
/// when given (default flags: none, the operator learns the limit from the server), logging into
/// `log`; and waits for it to be ready.
pub async fn start_operator(
    opts: &Opts,
    world: &World,
    (ns, spread): (&str, &Spread),
    mock_url: &str,
    rate: Option<f64>,
    log: &Path,
) -> Result<Operator, BoxError> {
    let mut args = Vec::new();
    if let Some(rate) = rate {
        args.extend([
            "--confluent-rate-limit".to_owned(),
            rate.to_string(),
            "--confluent-rate-burst".to_owned(),
            opts.burst.to_string(),
        ]);
    }
    match &spread.label {
        Some((k, v)) => args.extend(["--label-selector".to_owned(), format!("{k}={v}")]),
        None => args.extend(["--watch-namespace".to_owned(), ns.to_owned()]),
    }
    args.extend([
        "--resync-interval".to_owned(),
        format!("{}ms", opts.resync.as_millis()),
        "--concurrency".to_owned(),
        opts.concurrency.to_string(),
    ]);
    let mut op = Launch {
        binary: world.binary.clone(),
        kubeconfig: world.control_plane.kubeconfig.clone(),
        endpoint: mock_url.to_owned(),
        // with Secrets, only theirs: every client the operator makes is one of theirs
        credentials: spread
            .secret
            .is_none()
            .then(|| (API_KEY.into(), API_SECRET.into())),
        // BENCH_OPERATOR_LOG (e.g. `info`) for a closer look; the table counts WARN/ERROR lines.
        rust_log: std::env::var("BENCH_OPERATOR_LOG").unwrap_or_else(|_| "warn".into()),
        pod_name: format!("bench-{ns}"),
        args,
        log: logs::create(log)?,
    }
    .spawn()?;
    if op.wait_ready(Duration::from_secs(60)).await.is_err() {
        let text = logs::read(log);
        return Err(format!("the operator never became ready; its log:\n{text}").into());
    }
    Ok(op)
}

/// Kills nothing: strips the finalizers of the Invitations and of the Secrets the operator
/// marked in use (the operator is stopped by then) and deletes the namespaces, without waiting
/// for them to go.
pub async fn cleanup(world: &World, spread: &Spread, parallelism: usize) {
    for api in &spread.apis {
        let Some(ns) = api.namespace() else {
            continue;
        };
        if let Err(e) = test_support::strip_finalizers(api, parallelism).await {
            eprintln!("  cleanup: cannot list {ns}: {e}");
            continue;
        }
        if let Some(secret) = &spread.secret {
            let release = serde_json::json!({"metadata": {"finalizers": null}});
            let secrets: Api<Secret> = Api::namespaced(world.kube.clone(), ns);
            if let Err(e) = secrets
                .patch(secret, &PatchParams::default(), &Patch::Merge(&release))
                .await
            {
                eprintln!("  cleanup: Secret {ns}/{secret}: {e}");
            }
        }
        if let Err(e) = test_support::delete_namespace(&world.kube, ns).await {
            eprintln!("  cleanup: {e}");
        }
    }
}
