//! Installing the Invitation CRD into the API server a suite runs against.

use std::time::Duration;

use confluent_invitation_operator::invitation::resource::Invitation;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, CustomResourceExt};

use crate::error::Error;

/// Creates the CRD unless it exists, then waits up to `wait` for it to be Established.
pub async fn install_crd(kube: &kube::Client, wait: Duration) -> Result<(), Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(kube.clone());
    let crd = Invitation::crd();
    let name = crd
        .metadata
        .name
        .clone()
        .ok_or_else(|| Error::Crd("the CRD has no name".into()))?;
    // Create, not server-side apply: a pre-1.25 API server refuses to apply the CRD's CEL
    // rules (x-kubernetes-validations) but silently drops them on create.
    let existing = crds
        .get_opt(&name)
        .await
        .map_err(|e| Error::Crd(format!("CRDs not readable: {e}")))?;
    if existing.is_none() {
        match crds.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(Error::Crd(format!("CRD not created: {e}"))),
        }
    }
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let c = crds
            .get(&name)
            .await
            .map_err(|e| Error::Crd(format!("CRD not readable: {e}")))?;
        let established = c
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::Crd("CRD never became Established".into()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
