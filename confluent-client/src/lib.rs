//! The Confluent Cloud IAM v2 client: typed requests, lenient responses, an error taxonomy a
//! controller can act on, retries, a per-credential rate limiter, and keyless credentials (STS
//! token exchange). Knows nothing of Kubernetes.

pub mod auth;
pub mod client;
pub mod error;
pub mod model;
pub mod ratelimit;
pub mod retry;
pub mod role_bindings;
pub mod sts;

pub use auth::Credentials;
pub use client::{Client, ClientSettings, ListFilter, Observer, Operation, StsResult, http_client};
pub use error::{CREDENTIALS_INVALID, Error, ServerRefusal};
