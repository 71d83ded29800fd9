//! End-to-end: the real operator binary against a real kube-apiserver and the Confluent mock.
//! See `harness.rs` for how each test gets its own namespace, mock and operator process (built
//! with the shared `test-support` crate).

mod harness;

mod alerts;
mod cel;
mod claims;
mod credentials;
mod deletion;
mod dry_run;
mod endpoints;
mod errors;
mod events;
mod expiry;
mod export;
mod faults;
mod gitops;
mod groups;
mod leader;
mod ledger;
mod lifecycle;
mod namespace_deletion;
mod ownership;
mod pause;
mod policy;
mod ratelimit;
mod restart;
mod role_bindings;
mod sharding;
mod shared_credentials;
mod sts;
mod tenancy;
mod validation;
