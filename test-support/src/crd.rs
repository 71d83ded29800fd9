//! Installing the operator's CRDs (Invitation, InvitationPolicy, InvitationGroup) into the API server a suite runs
//! against.

use std::time::Duration;

use confluent_invitation_operator::invitation::resource::Invitation;
use confluent_invitation_operator::invitation_group::resource::InvitationGroup;
use confluent_invitation_operator::invitation_policy::resource::InvitationPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, CustomResourceExt};

use crate::error::Error;

/// Installs every CRD of the operator (each as [`install_one`] does).
pub async fn install_crd(kube: &kube::Client, wait: Duration) -> Result<(), Error> {
    install_one(kube, Invitation::crd(), wait).await?;
    install_one(kube, InvitationPolicy::crd(), wait).await?;
    install_one(kube, InvitationGroup::crd(), wait).await
}

/// Creates the CRD unless it exists, then waits up to `wait` for it to be Established.
async fn install_one(
    kube: &kube::Client,
    crd: CustomResourceDefinition,
    wait: Duration,
) -> Result<(), Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(kube.clone());
    let name = crd
        .metadata
        .name
        .clone()
        .ok_or_else(|| Error::Crd("the CRD has no name".into()))?;
    let version = kube
        .apiserver_version()
        .await
        .map_err(|e| Error::Crd(format!("the API server's version not readable: {e}")))?;
    if knows_cel(&version.major, &version.minor) {
        // As shipped: server-side apply, the CEL rules (x-kubernetes-validations) enforced.
        // Forced, so the CRD is this build's even when another manager (helm) applied it.
        crds.patch(
            &name,
            &PatchParams::apply("test-support").force(),
            &Patch::Apply(&crd),
        )
        .await
        .map_err(|e| Error::Crd(format!("CRD not applied: {e}")))?;
    } else {
        // A pre-1.25 API server refuses to apply the CRD's CEL rules but silently drops them
        // on create.
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

/// Whether a server of this version knows CEL validation rules (on by default since 1.25).
/// Minor versions may carry a suffix (`"25+"` on some distributions).
fn knows_cel(major: &str, minor: &str) -> bool {
    let number = |v: &str| {
        v.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .unwrap_or(0)
    };
    (number(major), number(minor)) >= (1, 25)
}

#[cfg(test)]
mod tests {
    use super::knows_cel;

    #[test]
    fn cel_is_known_from_1_25() {
        assert!(!knows_cel("1", "20"));
        assert!(!knows_cel("1", "24+"));
        assert!(knows_cel("1", "25"));
        assert!(knows_cel("1", "37"));
        assert!(knows_cel("1", "30+"));
    }
}
