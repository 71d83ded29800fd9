//! The world of the benchmark, built with `test-support`: the API server from the environment,
//! and for each run a fresh namespace, a fresh Confluent mock with the run's latency and limit,
//! and the operator binary watching that namespace; and taking a run's world down again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use confluent_invitation_operator::invitation::resource::Invitation;
use confluent_mock::{MockConfig, MockServer, RateLimit};
use kube::Api;
use test_support::{ControlPlane, Launch, Operator, logs};

use crate::error::BoxError;
use crate::flags::Opts;

pub const API_KEY: &str = "bench-key";
pub const API_SECRET: &str = "bench-secret-not-a-real-one";

/// What every run shares: the API server, the operator binary and where its logs go.
pub struct World {
    pub control_plane: ControlPlane,
    pub kube: kube::Client,
    pub binary: PathBuf,
    pub log_dir: PathBuf,
}

/// One run's namespace and the Invitations API in it.
pub async fn namespace(world: &World, n: u64) -> Result<(String, Api<Invitation>), BoxError> {
    let ns = test_support::create_namespace(&world.kube, &format!("bench-{n}")).await?;
    let api = Api::namespaced(world.kube.clone(), &ns);
    Ok((ns, api))
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

/// Starts the operator on `ns` against the mock at `mock_url`, told `rate` as its limit when
/// given (default flags: none, the operator learns the limit from the server), logging into
/// `log`; and waits for it to be ready.
pub async fn start_operator(
    opts: &Opts,
    world: &World,
    ns: &str,
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
    args.extend([
        "--watch-namespace".to_owned(),
        ns.to_owned(),
        "--resync-interval".to_owned(),
        format!("{}ms", opts.resync.as_millis()),
        "--concurrency".to_owned(),
        opts.concurrency.to_string(),
    ]);
    let mut op = Launch {
        binary: world.binary.clone(),
        kubeconfig: world.control_plane.kubeconfig.clone(),
        endpoint: mock_url.to_owned(),
        credentials: Some((API_KEY.into(), API_SECRET.into())),
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

/// Kills nothing: strips the finalizers (the operator is stopped by then) and deletes the
/// namespace, without waiting for it to go.
pub async fn cleanup(world: &World, api: &Api<Invitation>, ns: &str, parallelism: usize) {
    if let Err(e) = test_support::strip_finalizers(api, parallelism).await {
        eprintln!("  cleanup: cannot list {ns}: {e}");
        return;
    }
    if let Err(e) = test_support::delete_namespace(&world.kube, ns).await {
        eprintln!("  cleanup: {e}");
    }
}
