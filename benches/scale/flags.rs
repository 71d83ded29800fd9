//! The benchmark's flags: sizes, the mock's settings, the operator's flags and what runs at each
//! size.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use confluent_invitation_operator::cli::parse_duration;

/// The benchmark's settings (all optional).
#[derive(Debug, Parser)]
#[command(
    name = "scale",
    about = "Scale benchmark: the operator against a real kube-apiserver and the Confluent mock"
)]
pub struct Opts {
    /// Numbers of Invitations, one run each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    pub sizes: Vec<u64>,
    /// The mock's per-credential rate limit (requests/s), also given to the operator as its
    /// ceiling (--confluent-rate-limit) in the `configured` runs.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// What runs at each size: `default` (the operator with no rate flags: it learns the limit),
    /// `configured` (--confluent-rate-limit set to the mock's limit), `peers` (the peers'
    /// strategy, in this process: a blind POST per create, a GET per resource per poll).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "default,configured,peers"
    )]
    pub runs: Vec<RunKind>,
    /// After the steady state the mock halves its limit and this many more Invitations are
    /// created (0: no such phase).
    #[arg(long = "after-halving", default_value_t = 100)]
    pub after_halving: u64,
    /// Calls in flight at once in the peers' strategy (Terraform's default -parallelism).
    #[arg(long = "peer-parallelism", default_value_t = 10)]
    pub peer_parallelism: usize,
    /// Another rate limit for one size, e.g. `10000=100` (repeatable); the table says so.
    #[arg(long = "rate-for", value_parser = parse_rate_for)]
    pub rate_for: Vec<(u64, f64)>,
    /// Burst of the mock's bucket and of the operator's (--confluent-rate-burst, `configured`).
    #[arg(long, default_value_t = 20)]
    pub burst: u32,
    /// Latency the mock adds to every API request, in milliseconds.
    #[arg(long = "latency-ms", default_value_t = 50)]
    pub latency_ms: u64,
    /// The operator's --resync-interval.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub resync: Duration,
    /// How many resync intervals the steady state is measured over.
    #[arg(long = "steady-windows", default_value_t = 2)]
    pub steady_windows: u32,
    /// The operator's --concurrency.
    #[arg(long, default_value_t = 16)]
    pub concurrency: u16,
    /// Invitation creates in flight at once.
    #[arg(long = "create-parallelism", default_value_t = 32)]
    pub create_parallelism: usize,
    /// How many invitations are accepted remotely to time the way to status.
    #[arg(long = "accept-samples", default_value_t = 5)]
    pub accept_samples: usize,
    /// Give up on an accept reaching status after this long (default: 3 resync intervals, at
    /// least 60s).
    #[arg(long = "accept-timeout", value_parser = parse_duration)]
    pub accept_timeout: Option<Duration>,
    /// Give up waiting for all Ready after this long (default: 4 × the bound, at least 180s).
    #[arg(long = "converge-timeout", value_parser = parse_duration)]
    pub converge_timeout: Option<Duration>,
    /// Also write the report (markdown) to this file, rewritten after every size.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The operator binary (default: the release build cargo made for this benchmark).
    #[arg(long)]
    pub operator: Option<PathBuf>,
    /// Where the operator's logs go (default: target/bench-logs).
    #[arg(long = "log-dir")]
    pub log_dir: Option<PathBuf>,
    /// Leave each run's namespace and Invitations behind (for a throwaway control plane).
    #[arg(long = "no-cleanup")]
    pub no_cleanup: bool,
    /// Role bindings per Invitation (`spec.roleBindings`), over `--binding-scopes` shared
    /// environment scopes; 0: none. At most 6 (the environment roles the mock knows).
    #[arg(long = "role-bindings", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=6))]
    pub role_bindings: u64,
    /// How many distinct scopes (environments) the role bindings spread over.
    #[arg(long = "binding-scopes", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub binding_scopes: u64,
    /// Spread the N Invitations over this many credentials Secrets, one per namespace, every one
    /// holding the same API key (Invitation i in namespace i mod S): the operator then has no
    /// default credentials and watches every namespace, selecting the run's Invitations by label.
    /// 0: one namespace, the operator's default credentials.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub secrets: u64,
    /// Make the N Invitations as the members of InvitationGroups (at most 500 members each,
    /// every member of a group with that group's role bindings) instead of N resources: the
    /// steady state must then cost what N Invitations cost, the groups calling nothing.
    #[arg(long, conflicts_with = "secrets")]
    pub groups: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    pub bench: bool,
}

/// One run at one size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RunKind {
    /// The operator as users run it: no rate flags.
    #[default]
    Default,
    /// The operator told the mock's limit.
    Configured,
    /// Terraform's, Pulumi's and Crossplane's way, measured in this process.
    Peers,
}

impl RunKind {
    /// The operator's rate flags in a run, as the report names them.
    pub fn label(self) -> &'static str {
        match self {
            RunKind::Default => "default (none: learnt)",
            RunKind::Configured => "configured (`--confluent-rate-limit <rate>`)",
            RunKind::Peers => "peers' strategy",
        }
    }
}

pub fn parse_rate_for(s: &str) -> Result<(u64, f64), String> {
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
    pub fn rate_for(&self, n: u64) -> f64 {
        self.rate_for
            .iter()
            .rev()
            .find(|(size, _)| *size == n)
            .map_or(self.rate, |(_, r)| *r)
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }
}
