//! One namespace per test or benchmark run, so runs sharing an API server never see each other's
//! objects; and taking it down again.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

use confluent_invitation_operator::invitation::resource::Invitation;

use crate::error::Error;

/// Page size of the LISTs that collect a namespace's Invitations.
const PAGE: u32 = 500;

/// Creates a namespace named `<prefix>-<4 random hex digits>`; its name.
pub async fn create_namespace(kube: &kube::Client, prefix: &str) -> Result<String, Error> {
    let name = format!("{prefix}-{:04x}", fastrand::u16(..));
    let nss: Api<Namespace> = Api::all(kube.clone());
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(name.clone());
    nss.create(&PostParams::default(), &namespace)
        .await
        .map_err(Error::kube(format!("namespace {name} not created")))?;
    Ok(name)
}

/// Asks for the namespace's deletion, without waiting for it to go.
pub async fn delete_namespace(kube: &kube::Client, ns: &str) -> Result<(), Error> {
    let nss: Api<Namespace> = Api::all(kube.clone());
    nss.delete(ns, &DeleteParams::default())
        .await
        .map(|_| ())
        .map_err(Error::kube(format!("namespace {ns} not deleted")))
}

/// Removes every finalizer from the namespace's Invitations, `parallelism` patches at a time
/// (a patch that fails is left alone): with the operator stopped, nothing else would release
/// them and the namespace would never go.
pub async fn strip_finalizers(api: &Api<Invitation>, parallelism: usize) -> Result<(), Error> {
    let names = invitation_names(api).await?;
    let patch = serde_json::json!({"metadata": {"finalizers": null}});
    futures::stream::iter(names)
        .map(|name| {
            let patch = patch.clone();
            async move {
                let _ = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
            }
        })
        .buffer_unordered(parallelism.max(1))
        .collect::<Vec<()>>()
        .await;
    Ok(())
}

/// The names of the Invitations `api` sees, over paginated metadata LISTs.
pub async fn invitation_names(api: &Api<Invitation>) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(PAGE);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api
            .list_metadata(&lp)
            .await
            .map_err(Error::kube("Invitations not listable"))?;
        names.extend(page.items.iter().map(|m| m.name_any()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(names);
        }
    }
}
