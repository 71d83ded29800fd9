//! What every kind shares: the Confluent credentials and their clients, one snapshot of
//! invitations and one set of role-binding lists per credential, metrics, Events, leader
//! election, the HTTP endpoint and telemetry. Nothing here decides about a resource.

pub mod credentials;
pub mod events;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod snapshot;
pub mod telemetry;
