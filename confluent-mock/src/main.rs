//! `confluent-mock`: the Confluent Cloud IAM v2 invitations and role-bindings mock as a
//! standalone server, for the sandbox, scripts and manual testing. Test controls are under
//! `/_mock/` on the same port (see the `confluent_mock` library).
//!
//! Credential values are never logged or echoed (`--help` hides values taken from the
//! environment).

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use confluent_mock::{MockConfig, RateLimit, StsPool};
use tracing_subscriber::EnvFilter;

/// A faithful, stateful mock of the Confluent Cloud IAM v2 invitations and role-bindings APIs.
#[derive(Parser)]
#[command(name = "confluent-mock", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "MOCK_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,

    /// Accepted Cloud API key id (HTTP Basic user); repeat with --api-secret for several pairs.
    #[arg(
        long = "api-key",
        env = "CONFLUENT_MOCK_API_KEY",
        default_value = "mock-key",
        hide_env_values = true
    )]
    api_keys: Vec<String>,

    /// Secret of the --api-key at the same position (HTTP Basic password).
    #[arg(
        long = "api-secret",
        env = "CONFLUENT_MOCK_API_SECRET",
        default_value = "mock-secret",
        hide_env_values = true
    )]
    api_secrets: Vec<String>,

    /// Accepted OAuth Bearer token; repeatable (the environment variable takes a comma list).
    #[arg(
        long = "token",
        env = "CONFLUENT_MOCK_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    tokens: Vec<String>,

    /// Organization uuid used in CRNs (default: random).
    #[arg(long, env = "MOCK_ORG_ID")]
    org_id: Option<String>,

    /// Delay added before every /iam/v2 request, in milliseconds.
    #[arg(long, env = "MOCK_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,

    /// Per-credential rate limit in requests per second (default: unlimited).
    #[arg(long, env = "MOCK_RATE_LIMIT_PER_SECOND")]
    rate_limit_per_second: Option<f64>,

    /// Rate-limit bucket size: requests allowed back to back (default: the rate, at least 1).
    #[arg(
        long,
        env = "MOCK_RATE_LIMIT_BURST",
        requires = "rate_limit_per_second"
    )]
    rate_limit_burst: Option<u32>,

    /// An STS identity pool, `ID,AUDIENCE[,SUBJECT]` (e.g.
    /// `pool-a1,confluent,system:serviceaccount:ns:sa`); repeatable.
    #[arg(long = "sts-pool", env = "MOCK_STS_POOLS", value_delimiter = ';')]
    sts_pools: Vec<String>,

    /// The longest life of an STS token, in seconds (at most 900).
    #[arg(long, env = "MOCK_STS_TOKEN_LIFETIME_SECONDS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=900))]
    sts_token_lifetime_seconds: u64,
}

/// `ID,AUDIENCE[,SUBJECT]` as a pool.
fn sts_pool(spec: &str) -> Result<StsPool, String> {
    let mut parts = spec.splitn(3, ',').map(str::trim);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(id), Some(audience), subject) if !id.is_empty() && !audience.is_empty() => {
            Ok(StsPool {
                id: id.to_owned(),
                audience: audience.to_owned(),
                subject: subject.filter(|s| !s.is_empty()).map(str::to_owned),
            })
        }
        _ => Err(format!("--sts-pool {spec:?} is not ID,AUDIENCE[,SUBJECT]")),
    }
}

impl Args {
    /// Turns the flags into a [`MockConfig`], checking what clap cannot.
    fn config(self) -> Result<MockConfig, String> {
        if self.api_keys.len() != self.api_secrets.len() {
            return Err(format!(
                "--api-key given {} times but --api-secret {} times: give them in pairs",
                self.api_keys.len(),
                self.api_secrets.len()
            ));
        }
        let rate_limit = match self.rate_limit_per_second {
            None => None,
            Some(r) if !(r.is_finite() && r > 0.0) => {
                return Err("--rate-limit-per-second must be a positive number".to_owned());
            }
            Some(per_second) => {
                let burst = self
                    .rate_limit_burst
                    .unwrap_or_else(|| per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32);
                if burst == 0 {
                    return Err("--rate-limit-burst must be at least 1".to_owned());
                }
                Some(RateLimit { per_second, burst })
            }
        };
        let defaults = MockConfig::default();
        Ok(MockConfig {
            api_keys: self.api_keys.into_iter().zip(self.api_secrets).collect(),
            tokens: self.tokens.into_iter().filter(|t| !t.is_empty()).collect(),
            org_id: self.org_id.unwrap_or(defaults.org_id),
            latency: Duration::from_millis(self.latency_ms),
            rate_limit,
            other_organizations: Vec::new(),
            sts_pools: self
                .sts_pools
                .iter()
                .map(|p| sts_pool(p))
                .collect::<Result<_, _>>()?,
            sts_token_lifetime: Duration::from_secs(self.sts_token_lifetime_seconds),
        })
    }
}

/// Installs the SIGINT/SIGTERM handlers now (so a signal right after the "listening" line is not
/// lost) and returns a future resolving on the first of them.
fn stop_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                (term, int) => {
                    let e = term.err().or(int.err());
                    tracing::warn!(error = ?e, "cannot watch SIGTERM/SIGINT; stop with SIGKILL");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot watch Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let args = Args::parse();
    let stop = stop_signal();
    let listen = args.listen;
    let config = match args.config() {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("confluent-mock: {msg}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(?config, "starting");
    let server = match confluent_mock::start(listen, config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("confluent-mock: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    // A closed stdout must not stop the server; the line is a convenience for scripts.
    let _ = writeln!(
        stdout,
        "confluent-mock listening on http://{}",
        server.addr()
    );
    let _ = stdout.flush();
    drop(stdout);

    stop.await;
    tracing::info!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_pools_parse_with_or_without_a_subject() {
        let p = sts_pool("pool-a1,confluent,system:serviceaccount:ns:sa").unwrap();
        assert_eq!(
            (p.id.as_str(), p.audience.as_str(), p.subject.as_deref()),
            ("pool-a1", "confluent", Some("system:serviceaccount:ns:sa"))
        );
        assert_eq!(sts_pool("pool-b, confluent").unwrap().subject, None);
        for bad in ["pool-a1", ",confluent", "pool-a1,"] {
            assert!(sts_pool(bad).is_err(), "{bad}");
        }
        let args = Args::try_parse_from([
            "confluent-mock",
            "--sts-pool",
            "pool-a1,confluent",
            "--sts-token-lifetime-seconds",
            "5",
        ])
        .unwrap();
        let config = args.config().unwrap();
        assert_eq!(config.sts_pools.len(), 1);
        assert_eq!(config.sts_token_lifetime, Duration::from_secs(5));
        assert!(
            Args::try_parse_from(["confluent-mock", "--sts-token-lifetime-seconds", "901"])
                .is_err()
        );
    }
}
