//! What can go wrong while a test or benchmark sets up its world. The suites turn these into a
//! failed test with the message; the benchmark prints it and exits non-zero.

use std::path::PathBuf;
use std::time::Duration;

/// A world that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No API server to run against.
    #[error(
        "KUBECONFIG is not set: this needs a real kube-apiserver (run tests/run-all.sh or \
         deploy/local/bench.sh, which start one)"
    )]
    NoKubeconfig,
    /// A suite that restarts the API server was not told where the control plane lives.
    #[error(
        "E2E_CONTROL_PLANE_DIR is not set (the control plane's work dir from \
         deploy/local/start-control-plane.sh, needed to restart the kube-apiserver)"
    )]
    NoControlPlaneDir,
    /// `E2E_CONTROL_PLANE_DIR` names a folder without the control plane's files.
    #[error(
        "E2E_CONTROL_PLANE_DIR={} has no apiserver.cmd: start the control plane with \
         deploy/local/start-control-plane.sh",
        .0.display()
    )]
    NotAControlPlaneDir(PathBuf),
    /// A Kubernetes call failed.
    #[error("{what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    /// The CRD could not be installed or never became Established.
    #[error("{0}")]
    Crd(String),
    /// The in-process Confluent mock did not start.
    #[error("the Confluent mock did not start: {0}")]
    Mock(#[from] confluent_mock::MockError),
    /// A file, a port or a process.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The operator process did not answer `/readyz` with 200.
    #[error("the operator never became ready ({})", if *.exited { "it exited".to_owned() } else { format!("not within {:?}", .within) })]
    NeverReady { exited: bool, within: Duration },
}

impl Error {
    pub(crate) fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let what = what.into();
        move |source| Self::Kube { what, source }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
