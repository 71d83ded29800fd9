//! The Confluent mock, in-process, on a free loopback port.

use std::net::{Ipv4Addr, SocketAddr};

use confluent_mock::{MockConfig, MockServer};

use crate::error::Error;

/// Starts a mock that accepts the one credential (API key, secret) on top of `config`.
pub async fn start_mock(
    api_key: &str,
    api_secret: &str,
    config: MockConfig,
) -> Result<MockServer, Error> {
    let mock = confluent_mock::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        MockConfig {
            api_keys: vec![(api_key.into(), api_secret.into())],
            ..config
        },
    )
    .await?;
    Ok(mock)
}
