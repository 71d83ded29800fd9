//! The control plane a suite runs against, as `tests/run-all.sh`, `deploy/local/bench.sh` or a
//! developer describe it in the environment:
//! - `KUBECONFIG`: the admin's kubeconfig (required);
//! - `E2E_OPERATOR_KUBECONFIG`: the identity the operator under test runs with (the chart's
//!   ServiceAccount token, so a missing RBAC rule fails the suite); the admin's when unset;
//! - `E2E_LEASE_NAMESPACE`, `E2E_LEASE_NAME`: the Lease the chart's Role lets the operator use;
//! - `E2E_CONTROL_PLANE_DIR`: the work dir of `deploy/local/start-control-plane.sh`, for the
//!   suites that restart the kube-apiserver.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The control plane's environment.
#[derive(Clone, Debug)]
pub struct ControlPlane {
    /// The admin's kubeconfig (`KUBECONFIG`).
    pub kubeconfig: OsString,
    /// The operator's kubeconfig (`E2E_OPERATOR_KUBECONFIG`, else `KUBECONFIG`).
    pub operator_kubeconfig: OsString,
    lease_namespace: Option<String>,
    lease_name: Option<String>,
    dir: Option<PathBuf>,
}

impl ControlPlane {
    /// Reads the environment; [`Error::NoKubeconfig`] without `KUBECONFIG`.
    pub fn from_env() -> Result<Self, Error> {
        let kubeconfig = std::env::var_os("KUBECONFIG").ok_or(Error::NoKubeconfig)?;
        let set = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
        Ok(Self {
            operator_kubeconfig: std::env::var_os("E2E_OPERATOR_KUBECONFIG")
                .unwrap_or_else(|| kubeconfig.clone()),
            kubeconfig,
            lease_namespace: set("E2E_LEASE_NAMESPACE"),
            lease_name: set("E2E_LEASE_NAME"),
            dir: std::env::var_os("E2E_CONTROL_PLANE_DIR").map(PathBuf::from),
        })
    }

    /// A client with the admin's identity.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        kube::Client::try_default()
            .await
            .map_err(Error::kube("a kube client from KUBECONFIG"))
    }

    /// The Lease for leader election: the chart's own when the suite runs under its RBAC,
    /// otherwise `e2e-lease` in `namespace` (the test's own).
    pub fn lease(&self, namespace: &str) -> (String, String) {
        (
            self.lease_namespace
                .clone()
                .unwrap_or_else(|| namespace.to_owned()),
            self.lease_name
                .clone()
                .unwrap_or_else(|| "e2e-lease".into()),
        )
    }

    /// The control plane's work dir, checked to hold what `deploy/local/restart-apiserver.sh`
    /// needs.
    pub fn dir(&self) -> Result<&Path, Error> {
        let dir = self.dir.as_deref().ok_or(Error::NoControlPlaneDir)?;
        if dir.join("apiserver.cmd").is_file() {
            Ok(dir)
        } else {
            Err(Error::NotAControlPlaneDir(dir.to_owned()))
        }
    }
}
