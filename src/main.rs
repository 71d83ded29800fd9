//! `confluent-invitation-operator`: `run` (the default) runs the controller; `crd` prints the
//! CustomResourceDefinitions; `export` prints the organization's invitations, with their
//! invitees' role bindings, as manifests.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Parser;
use confluent_client::ClientSettings;
use confluent_invitation_operator::cli::{Cli, Command, CrdKind, ExportArgs, RunArgs};
use confluent_invitation_operator::invitation::{export, resource};
use confluent_invitation_operator::invitation_policy::decide as policy;
use confluent_invitation_operator::invitation_policy::resource::{
    self as policy_resource, InvitationPolicy,
};
use confluent_invitation_operator::operator;
use confluent_invitation_operator::runtime::telemetry;

// jemalloc returns freed memory to the OS by itself (glibc's malloc had to be told, with one
// arena and a trim after each resync), and kept the smallest resident set of the allocators
// measured (README, "Dependencies").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The CRDs `crd` prints: `kind`'s, or every kind's as one YAML stream.
fn crds(kind: Option<CrdKind>) -> Result<String, serde_saphyr::SerializeError> {
    Ok(match kind {
        Some(CrdKind::Invitation) => resource::crd_yaml()?,
        Some(CrdKind::InvitationPolicy) => policy_resource::crd_yaml()?,
        Some(CrdKind::InvitationGroup) => {
            confluent_invitation_operator::invitation_group::crd_yaml()?
        }
        None => format!(
            "{}---\n{}---\n{}",
            resource::crd_yaml()?,
            policy_resource::crd_yaml()?,
            confluent_invitation_operator::invitation_group::crd_yaml()?
        ),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd { kind }) => match crds(kind) {
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
    match runtime.block_on(operator::operate(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "operator stopped");
            ExitCode::FAILURE
        }
    }
}

/// `export`: lists every invitation and, unless `--no-role-bindings`, every role binding of the
/// organization (all pages, progress on stderr), and prints the manifests.
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
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What stops `export` before it prints anything.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error(
        "no credentials: set CONFLUENT_CLOUD_API_KEY and CONFLUENT_CLOUD_API_SECRET, --access-token-file, or --sts-identity-pool-id with --sts-subject-token-file"
    )]
    NoCredentials,
    #[error(transparent)]
    Credentials(#[from] operator::Error),
    /// The endpoint or the HTTP client could not be set up.
    #[error(transparent)]
    Client(confluent_client::Error),
    #[error("listing invitations: {0}")]
    ListInvitations(confluent_client::Error),
    #[error("listing role bindings: {0} (--no-role-bindings exports without them)")]
    ListRoleBindings(confluent_client::Error),
    #[error(transparent)]
    Export(#[from] export::Error),
}

async fn export_manifests(args: &ExportArgs) -> Result<String, ExportError> {
    use futures::TryStreamExt;
    let credentials =
        operator::credentials_from_env(&args.confluent)?.ok_or(ExportError::NoCredentials)?;
    let settings =
        ClientSettings::new(&args.confluent.confluent_endpoint).map_err(ExportError::Client)?;
    let http_client = confluent_client::http_client(args.confluent.request_timeout)
        .map_err(ExportError::Client)?;
    let client = confluent_client::Client::new(http_client, settings, credentials, None);
    let mut remote = Vec::new();
    let mut pages = std::pin::pin!(client.list_pages(&confluent_client::ListFilter::default()));
    let mut page_count = 0u32;
    while let Some(page) = pages
        .try_next()
        .await
        .map_err(ExportError::ListInvitations)?
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
    // One organization-wide list for every invitee, never one per user: the cost is the
    // organization's bindings divided by the page size, whatever the number of invitees.
    let mut bindings = Vec::new();
    if let Some(filter) = export::role_binding_filter(&remote).filter(|_| !args.no_role_bindings) {
        let mut pages = std::pin::pin!(client.role_binding_pages(&filter));
        let mut page_count = 0u32;
        while let Some(page) = pages
            .try_next()
            .await
            .map_err(ExportError::ListRoleBindings)?
        {
            page_count += 1;
            bindings.extend(page);
            eprintln!(
                "listed {} role bindings ({page_count} pages)",
                bindings.len()
            );
        }
    }
    let options = export::Options {
        namespace: args.namespace.clone(),
        deletion_policy: args.deletion_policy.into(),
        statuses: args.status.clone(),
    };
    let exported = export::invitations(&remote, &bindings, &options)?;
    for left_out in &exported.left_out {
        eprintln!("warning: {left_out}");
    }
    let listed: usize = exported
        .resources
        .iter()
        .map(|r| r.spec.role_bindings.len())
        .sum();
    eprintln!(
        "exported {} Invitation manifests (of {} invitations listed) with {listed} role bindings into namespace {}",
        exported.resources.len(),
        remote.len(),
        args.namespace
    );
    let organization = remote
        .iter()
        .find_map(|i| i.resource_name())
        .and_then(confluent_client::role_bindings::organization_of);
    match policies_of(&args.namespace).await {
        Ok((all, labels)) => {
            let all: Vec<&InvitationPolicy> = all.iter().collect();
            // the target namespace's, when it exists: those selecting its labels
            let applying: Option<Vec<&InvitationPolicy>> = labels.map(|labels| {
                all.iter()
                    .copied()
                    .filter(|p| policy::selects(p, &labels).unwrap_or(false))
                    .collect()
            });
            for note in
                export::policy_notes(&exported.resources, organization, applying.as_deref(), &all)
            {
                eprintln!("warning: {note}");
            }
        }
        Err(e) => eprintln!(
            "note: InvitationPolicies not read ({e}): an import into a namespace they select may refuse some of these"
        ),
    }
    if !args.groups {
        return Ok(export::render(&exported.resources)?);
    }
    let grouped =
        confluent_invitation_operator::invitation_group::export::grouped(exported.resources);
    eprintln!(
        "grouped into {} InvitationGroups ({} members); {} Invitations stay",
        grouped.groups.len(),
        grouped
            .groups
            .iter()
            .map(|g| g.spec.members.len())
            .sum::<usize>(),
        grouped.invitations.len()
    );
    Ok(format!(
        "{}{}",
        export::render(&grouped.groups)?,
        export::render(&grouped.invitations)?
    ))
}

/// The cluster's InvitationPolicies (none where the CRD is not installed), and the labels of
/// `namespace` when it exists, from the usual kubeconfig.
async fn policies_of(
    namespace: &str,
) -> Result<(Vec<InvitationPolicy>, Option<BTreeMap<String, String>>), kube::Error> {
    use kube::api::{Api, ListParams};
    let client = kube::Client::try_default().await?;
    let policies: Api<InvitationPolicy> = Api::all(client.clone());
    let all = match policies.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
        Err(e) => return Err(e),
    };
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    let labels = namespaces
        .get_opt(namespace)
        .await?
        .map(|ns| ns.metadata.labels.unwrap_or_default());
    Ok((all, labels))
}
