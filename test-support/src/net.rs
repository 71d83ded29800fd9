//! Loopback ports for the processes a suite starts.

use std::net::{SocketAddr, TcpListener};

use crate::error::Error;

/// A loopback address with a port free at the time of asking. Another process may take it before
/// the caller binds it: callers that can tell (the operator logs "binding …") retry.
pub fn free_port() -> Result<SocketAddr, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(Error::io("no free port"))?;
    listener
        .local_addr()
        .map_err(Error::io("no address of a bound port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_is_a_loopback_one_that_can_be_bound() {
        let addr = free_port().expect("a free port");
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0);
        TcpListener::bind(addr).expect("still free");
    }
}
