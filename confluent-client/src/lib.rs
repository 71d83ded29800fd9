//! The Confluent Cloud IAM v2 client: typed requests, lenient responses, an error taxonomy a
//! controller can act on, retries, and a per-credential rate limiter. Knows nothing of Kubernetes.

pub mod auth;
pub mod client;
pub mod error;
pub mod model;
pub mod ratelimit;
pub mod retry;

pub use auth::Credentials;
pub use client::{Client, ClientSettings, ListFilter, Observer, Operation, http_client};
pub use error::{CREDENTIALS_INVALID, Error, ServerRefusal};
