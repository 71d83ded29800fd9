//! How the benchmark fails: with the message of whatever went wrong (the API server, the mock,
//! the operator process, a file), after which it exits non-zero.

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
