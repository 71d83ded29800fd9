//! Command line and environment: every flag also reads an environment variable (the
//! README's configuration table names each), so the Helm chart configures the operator through `env:` alone.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::runtime::telemetry::LogFormat;

/// Confluent Cloud's API, where the operator calls unless told otherwise.
const CONFLUENT_CLOUD: &str = "https://api.confluent.cloud";

/// The leader-election Lease's default name: the operator's own.
const LEASE_NAME: &str = "confluent-invitation-operator";

/// Kubernetes operator for Confluent Cloud IAM v2 invitations.
#[derive(Debug, Parser)]
#[command(
    name = "confluent-invitation-operator",
    version,
    about,
    args_conflicts_with_subcommands = true,
    after_help = "Default Confluent credentials come from the environment only (never flags, which \
                  other users can read in the process list): CONFLUENT_CLOUD_API_KEY + \
                  CONFLUENT_CLOUD_API_SECRET, or CONFLUENT_CLOUD_ACCESS_TOKEN_FILE, or keyless \
                  (STS_IDENTITY_POOL_ID + STS_SUBJECT_TOKEN_FILE). Without them, every \
                  Invitation needs spec.credentialsSecretRef."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller (the default).
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions' YAML: every kind's (one YAML stream), or one's.
    Crd {
        /// Only this kind's CRD.
        #[arg(value_enum)]
        kind: Option<CrdKind>,
    },
    /// Print the organization's invitations as Invitation manifests (stdout; progress on
    /// stderr). Same credentials as `run`.
    Export(Box<ExportArgs>),
}

/// How to reach Confluent Cloud: the flags `run` and `export` share.
#[derive(Debug, Args, Clone)]
pub struct ConfluentArgs {
    /// Confluent Cloud API base URL.
    #[arg(long, env = "CONFLUENT_CLOUD_ENDPOINT", default_value = CONFLUENT_CLOUD)]
    pub confluent_endpoint: String,

    /// A file holding an OAuth access token for Confluent Cloud (instead of
    /// CONFLUENT_CLOUD_API_KEY/SECRET); `run` reads it again when it changes.
    #[arg(long, env = "CONFLUENT_CLOUD_ACCESS_TOKEN_FILE")]
    pub access_token_file: Option<PathBuf>,

    /// Keyless credentials: the Confluent identity pool whose filter admits the subject token
    /// of --sts-subject-token-file (instead of an API key or --access-token-file).
    #[arg(long, env = "STS_IDENTITY_POOL_ID")]
    pub sts_identity_pool_id: Option<String>,

    /// The subject JWT exchanged for STS tokens (a projected ServiceAccount token), read again
    /// before every exchange.
    #[arg(long, env = "STS_SUBJECT_TOKEN_FILE")]
    pub sts_subject_token_file: Option<PathBuf>,

    /// The lifetime asked for each STS token (at most 900s, Confluent's maximum).
    #[arg(long, env = "STS_TOKEN_LIFETIME", default_value = "900s", value_parser = parse_sts_lifetime)]
    pub sts_token_lifetime: std::time::Duration,

    /// Timeout of one Confluent API request.
    #[arg(long, env = "CONFLUENT_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: std::time::Duration,
}

/// Flags of `export`.
#[derive(Debug, Args, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub confluent: ConfluentArgs,

    /// The namespace written into every manifest.
    #[arg(long, default_value = "default")]
    pub namespace: String,

    /// The deletionPolicy of every manifest. Orphan (the default) means that applying and later
    /// deleting the export can never delete anything in Confluent Cloud.
    #[arg(long, value_enum, default_value = "orphan")]
    pub deletion_policy: ExportDeletionPolicy,

    /// Export only invitations with these statuses (comma-separated; default: sent, staged,
    /// accepted).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub status: Vec<crate::invitation::export::StatusFilter>,

    /// Leave role bindings out of the manifests (for organizations that manage access
    /// elsewhere). Without it, each invitee's role bindings become `spec.roleBindings`, read
    /// with one organization-wide list.
    #[arg(long)]
    pub no_role_bindings: bool,

    /// Print the invitees who share the same role bindings (and auth type) as InvitationGroups,
    /// one per set of access, instead of one Invitation each; the others stay Invitations.
    #[arg(long, conflicts_with = "no_role_bindings")]
    pub groups: bool,
}

/// The kinds whose CRD `crd` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CrdKind {
    Invitation,
    InvitationPolicy,
    InvitationGroup,
}

/// `--deletion-policy` of `export`, in the CLI's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportDeletionPolicy {
    Delete,
    Orphan,
    DeleteUser,
}

impl From<ExportDeletionPolicy> for crate::invitation::resource::DeletionPolicy {
    fn from(p: ExportDeletionPolicy) -> Self {
        match p {
            ExportDeletionPolicy::Delete => Self::Delete,
            ExportDeletionPolicy::Orphan => Self::Orphan,
            ExportDeletionPolicy::DeleteUser => Self::DeleteUser,
        }
    }
}

/// Flags of `run`.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub confluent: ConfluentArgs,

    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,

    /// Only reconcile Invitations matching this label selector, to split a fleet across several
    /// operator deployments (each with a disjoint selector).
    #[arg(long, env = "LABEL_SELECTOR")]
    pub label_selector: Option<String>,

    /// Address serving /metrics, /healthz and /readyz.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// How often each Invitation is compared with Confluent (e.g. 30s, 5m, 1h).
    #[arg(long, env = "RESYNC_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub resync_interval: std::time::Duration,

    /// Reconciles running at once.
    #[arg(long, env = "CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// Ceiling on Confluent calls per second and per credential (default: none; the limit is
    /// learnt from the server's X-RateLimit-* headers and 429s, which are always honoured).
    #[arg(long, env = "CONFLUENT_RATE_LIMIT")]
    pub confluent_rate_limit: Option<f64>,

    /// Ceiling on the calls sent back to back (with --confluent-rate-limit).
    #[arg(long, env = "CONFLUENT_RATE_BURST", default_value_t = 10)]
    pub confluent_rate_burst: u32,

    /// Refuse Invitations without spec.credentialsSecretRef instead of using the operator's own
    /// credentials (for clusters shared by several teams).
    #[arg(long, env = "REQUIRE_CREDENTIALS_REF")]
    pub require_credentials_ref: bool,

    /// Refuse Invitations in namespaces that no InvitationPolicy selects (`PolicyMissing`,
    /// nothing sent), instead of applying no policy there: for clusters where every team's
    /// namespace must be given its limits before it may invite anyone.
    #[arg(long, env = "REQUIRE_POLICY")]
    pub require_policy: bool,

    /// A namespace shared by every installation acting on one Confluent organization: one
    /// Lease there per (organization, email) says which Invitation owns the email, across
    /// installations and shards. Without it, one owner per email holds within this installation
    /// only.
    #[arg(long, env = "CLAIMS_NAMESPACE", requires = "installation_id")]
    pub claims_namespace: Option<String>,

    /// This installation's name in the claims (required with --claims-namespace; the chart
    /// gives `<release namespace>/<release name>`).
    #[arg(long, env = "INSTALLATION_ID")]
    pub installation_id: Option<String>,

    /// Take an email's claim over from a holder whose installation stopped renewing its
    /// heartbeat this long ago (default: never; claimants report the stale holder).
    #[arg(long, env = "CLAIMS_TAKEOVER_AFTER", value_parser = parse_duration, requires = "claims_namespace")]
    pub claims_takeover_after: Option<std::time::Duration>,

    /// Let credentials Secrets be keyless (identityPoolId + serviceAccountName): the operator
    /// mints a token of that ServiceAccount of the Secret's namespace (TokenRequest) for each STS
    /// exchange. Needs `create` on `serviceaccounts/token` (SECURITY.md).
    #[arg(long, env = "ALLOW_SERVICEACCOUNT_TOKENS")]
    pub allow_serviceaccount_tokens: bool,

    /// The audience of the ServiceAccount tokens minted for keyless credentials Secrets.
    #[arg(
        long,
        env = "SERVICEACCOUNT_TOKEN_AUDIENCE",
        default_value = "confluent"
    )]
    pub serviceaccount_token_audience: String,

    /// The life of each minted ServiceAccount token (at least 10m, the API server's minimum).
    #[arg(long, env = "SERVICEACCOUNT_TOKEN_EXPIRATION", default_value = "10m", value_parser = parse_duration)]
    pub serviceaccount_token_expiration: std::time::Duration,

    /// The most role bindings every Invitation this operator manages may list together
    /// (Confluent allows about 1 000 per organization): an InvitationGroup that would pass it
    /// adds nobody (`RoleBindingBudget`).
    #[arg(long, env = "ROLE_BINDING_BUDGET", default_value_t = 900)]
    pub role_binding_budget: usize,

    /// Comma-separated email domains that may be invited (default: any).
    #[arg(long, env = "ALLOWED_EMAIL_DOMAINS", value_delimiter = ',')]
    pub allowed_email_domains: Vec<String>,

    /// Comma-separated Confluent roles that Invitations may grant in spec.roleBindings, and the
    /// only roles exclusiveRoleBindings may delete (default: any). For clusters where the people
    /// who write Invitations must not grant themselves OrganizationAdmin.
    #[arg(long, env = "ALLOWED_ROLES", value_delimiter = ',')]
    pub allowed_roles: Vec<String>,

    /// Preview mode: list, read and plan as usual, but never create, adopt or delete in
    /// Confluent Cloud; report what would be done (logs, `Would*` Events, Ready reason, metric).
    #[arg(long, env = "DRY_RUN")]
    pub dry_run: bool,

    /// Run only while holding a Lease, so that several replicas never act at once.
    #[arg(long, env = "LEADER_ELECTION")]
    pub leader_election: bool,

    /// Name of the leader-election Lease.
    #[arg(long, env = "LEADER_ELECTION_LEASE_NAME", default_value = LEASE_NAME)]
    pub leader_election_lease_name: String,

    /// Namespace of the leader-election Lease (default: POD_NAMESPACE, else "default").
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// The namespace the operator runs in (from the downward API).
    #[arg(long, env = "POD_NAMESPACE", hide = true)]
    pub pod_namespace: Option<String>,

    /// Log format (default: text on a terminal, json otherwise). Levels come from RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Name of this replica, shown in Events (the Pod name).
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
}

/// Parses `500ms`, `30s`, `5m`, `1h`, `1h30m` (Go/Kubernetes duration syntax).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let d: kube::core::Duration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration like 30s or 5m: {e}"))?;
    if d.is_negative() {
        return Err(format!("{s:?} is negative"));
    }
    let d = std::time::Duration::from(d);
    if d.is_zero() {
        return Err(format!("{s:?} must be longer than zero"));
    }
    Ok(d)
}

/// `--sts-token-lifetime`: a duration of whole seconds from 1s to 900s (Confluent issues none
/// longer; refused at startup rather than silently shortened).
pub fn parse_sts_lifetime(s: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    let max = confluent_client::sts::MAX_LIFETIME;
    if d > max {
        return Err(format!(
            "{s:?} is longer than {}s, the longest STS token Confluent issues",
            max.as_secs()
        ));
    }
    if d < std::time::Duration::from_secs(1) {
        return Err(format!("{s:?} is shorter than 1s"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_parse_like_kubernetes() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("five").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn sts_lifetimes_are_at_most_900_seconds() {
        assert_eq!(parse_sts_lifetime("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_sts_lifetime("5s"), Ok(Duration::from_secs(5)));
        assert!(parse_sts_lifetime("901s").unwrap_err().contains("900s"));
        assert!(parse_sts_lifetime("1h").is_err());
        assert!(parse_sts_lifetime("500ms").is_err());
        let cli = Cli::try_parse_from(["op"]).unwrap();
        assert_eq!(
            cli.run.confluent.sts_token_lifetime,
            Duration::from_secs(900)
        );
        assert!(Cli::try_parse_from(["op", "--sts-token-lifetime", "16m"]).is_err());
    }

    #[test]
    fn run_is_the_default_and_flags_parse() {
        let cli = Cli::try_parse_from([
            "op",
            "--resync-interval",
            "30s",
            "--allowed-email-domains",
            "a.com,b.org",
            "--allowed-roles",
            "DeveloperRead,EnvironmentAdmin",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.resync_interval, Duration::from_secs(30));
        assert_eq!(cli.run.allowed_email_domains, vec!["a.com", "b.org"]);
        assert_eq!(
            cli.run.allowed_roles,
            vec!["DeveloperRead", "EnvironmentAdmin"]
        );
        assert!(matches!(
            Cli::try_parse_from(["op", "crd"]).unwrap().command,
            Some(Command::Crd { kind: None })
        ));
        assert!(matches!(
            Cli::try_parse_from(["op", "crd", "invitation-policy"])
                .unwrap()
                .command,
            Some(Command::Crd {
                kind: Some(CrdKind::InvitationPolicy)
            })
        ));
        assert!(Cli::try_parse_from(["op", "--concurrency", "0"]).is_err());
    }

    #[test]
    fn export_defaults_to_orphan_and_live_statuses() {
        let Some(Command::Export(args)) = Cli::try_parse_from(["op", "export"]).unwrap().command
        else {
            panic!("export parses");
        };
        assert_eq!(args.deletion_policy, ExportDeletionPolicy::Orphan);
        assert!(args.status.is_empty());
        assert_eq!(args.namespace, "default");
        assert!(!args.no_role_bindings, "bindings are exported by default");
        let Some(Command::Export(args)) = Cli::try_parse_from([
            "op",
            "export",
            "--namespace",
            "people",
            "--deletion-policy",
            "delete-user",
            "--status",
            "sent,expired",
            "--no-role-bindings",
        ])
        .unwrap()
        .command
        else {
            panic!("export parses");
        };
        assert_eq!(args.namespace, "people");
        assert!(args.no_role_bindings);
        assert_eq!(
            crate::invitation::resource::DeletionPolicy::from(args.deletion_policy),
            crate::invitation::resource::DeletionPolicy::DeleteUser
        );
        assert_eq!(
            args.status,
            [
                crate::invitation::export::StatusFilter::Sent,
                crate::invitation::export::StatusFilter::Expired
            ]
        );
    }
}
