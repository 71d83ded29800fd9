//! The accept loop: one hyper HTTP/1 connection task per socket, serving the axum router.
//!
//! `axum::serve` cannot close a connection without answering, which the `Drop` faults need. Here
//! each connection owns a [`DropSignal`] that handlers find in the request extensions: firing it
//! makes the connection task return, dropping the hyper connection (and with it the socket and
//! the pending handler) before a single response byte is written, so the client sees a
//! connection error exactly as with a lost server.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

/// How long in-flight requests may take to finish after shutdown is asked for.
pub const GRACE: Duration = Duration::from_secs(5);

/// Closes the connection the request came on, without a response.
#[derive(Clone, Debug)]
pub(crate) struct DropSignal(Arc<Notify>);

impl DropSignal {
    /// Asks the connection task to drop the connection.
    fn fire(&self) {
        self.0.notify_one();
    }
}

/// Fires the request's [`DropSignal`] and never returns, so nothing is answered. Without a
/// signal (the router served by something else) this falls back to a 500.
pub(crate) async fn drop_connection(signal: Option<DropSignal>) -> Response {
    match signal {
        Some(s) => {
            s.fire();
            std::future::pending::<Response>().await
        }
        None => {
            tracing::warn!("drop fault outside the mock's own server: answering 500 instead");
            super::respond::injected_status(500)
        }
    }
}

/// Accepts connections until `shutdown` turns true (or its sender is dropped), then lets open
/// connections finish for up to [`GRACE`] and aborts the rest.
pub(crate) async fn serve(listener: TcpListener, app: Router, mut shutdown: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    // Latency matters for benchmarks; failure to set it is harmless.
                    let _ = stream.set_nodelay(true);
                    conns.spawn(connection(stream, app.clone(), shutdown.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let drained =
        tokio::time::timeout(GRACE, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::debug!(
            open = conns.len(),
            "aborting connections after the grace period"
        );
        conns.abort_all();
    }
}

/// Serves one connection until it ends, a handler asks for it to be dropped, or shutdown.
async fn connection(stream: TcpStream, app: Router, mut shutdown: watch::Receiver<bool>) {
    let signal = DropSignal(Arc::new(Notify::new()));
    let service = TowerToHyperService::new(app);
    let for_requests = signal.clone();
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(for_requests.clone());
        hyper::service::Service::call(&service, req)
    });
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let mut draining = *shutdown.borrow();
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = signal.0.notified() => {
                tracing::debug!("dropping the connection without a response (fault)");
                // Returning drops `conn`: the socket closes with nothing written.
                return;
            }
            _ = shutdown.changed(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
