//! What the e2e suite, the chaos suite and the scale benchmark share to build their worlds: the
//! control plane from the environment ([`ControlPlane`]), the Invitation CRD ([`install_crd`]),
//! one namespace per run ([`create_namespace`]), the Confluent mock in-process ([`start_mock`]),
//! the real operator binary as a child process ([`Launch`], [`Operator`]), its log files
//! ([`logs`]), free ports ([`free_port`]), waiting ([`poll_until`]) and locks ([`lock`]).
//!
//! The operator binary is the caller's to name: `CARGO_BIN_EXE_*` exists only in the operator
//! package's own tests and benches. Setup returns [`Error`]; what a failure means (a failed test,
//! a benchmark that exits non-zero) is the caller's to decide.

mod control_plane;
mod crd;
mod error;
pub mod logs;
mod mock;
mod namespace;
mod net;
mod operator;
mod sync;
mod wait;

pub use control_plane::ControlPlane;
pub use crd::install_crd;
pub use error::Error;
pub use mock::start_mock;
pub use namespace::{create_namespace, delete_namespace, invitation_names, strip_finalizers};
pub use net::free_port;
pub use operator::{Launch, Operator};
pub use sync::lock;
pub use wait::poll_until;
