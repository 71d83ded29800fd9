//! The operator's own HTTP endpoint: `/healthz` (the process serves), `/readyz` (the watch cache
//! has synced, so reconciles see the whole picture) and `/metrics` (Prometheus text).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use kube::runtime::reflector::Store;

use crate::invitation::resource::Invitation;
use crate::runtime::metrics::Metrics;

/// What the endpoint reads.
#[derive(Clone)]
pub struct HttpState {
    pub metrics: Arc<Metrics>,
    pub ready: Arc<AtomicBool>,
    /// The watch cache, once synced: the per-phase gauge is counted from it at scrape time.
    pub store: Arc<OnceLock<Store<Invitation>>>,
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds `addr` and serves until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    state: HttpState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "HTTP endpoint failed");
        }
    }))
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "watch cache not synced yet",
        )
    }
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    if let Some(store) = state.store.get() {
        let mut counts = std::collections::BTreeMap::<String, i64>::new();
        let now = jiff::Timestamp::now();
        let mut oldest_deletion = 0;
        // every state, zeros included: an alert on bindings left to delete needs the series
        let mut bindings: std::collections::BTreeMap<&'static str, i64> =
            crate::role_bindings::resource::RoleBindingState::ALL
                .iter()
                .map(|s| (s.as_str(), 0))
                .collect();
        for inv in store.state() {
            if let Some(deleted) = &inv.metadata.deletion_timestamp {
                oldest_deletion = oldest_deletion.max(now.duration_since(deleted.0).as_secs());
            }
            let phase = crate::invitation::status::Phase::shown(inv.status.as_ref());
            *counts.entry(phase.as_str().to_owned()).or_default() += 1;
            for entry in inv.status.iter().flat_map(|s| &s.role_bindings) {
                *bindings.entry(entry.state.as_str()).or_default() += 1;
            }
        }
        state
            .metrics
            .set_phases(counts.iter().map(|(p, n)| (p.as_str(), *n)));
        state.metrics.set_oldest_deletion(oldest_deletion);
        state
            .metrics
            .set_role_binding_states(bindings.iter().map(|(s, n)| (*s, *n)));
    }
    match state.metrics.encode() {
        Ok(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
