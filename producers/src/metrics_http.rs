//! The Prometheus listener each SPR service runs on a port of its own: the text
//! exposition of a registry, and a background server for a `/metrics` router.

use std::net::SocketAddr;

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Router;
use prometheus::{Encoder, Registry, TextEncoder};

/// The metrics of `registry` in Prometheus' text format: what a `/metrics` route answers.
pub fn exposition(registry: &Registry) -> Response {
    let encoder = TextEncoder::new();
    let mut out = Vec::new();
    encoder
        .encode(&registry.gather(), &mut out)
        .expect("text encoding cannot fail");
    ([(CONTENT_TYPE, encoder.format_type().to_owned())], out).into_response()
}

/// Binds `addr` and serves `metrics` there in the background; returns the bound
/// address (port 0 picks a free one). A failure after binding is logged.
pub async fn spawn_metrics_server(
    addr: SocketAddr,
    metrics: Router,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, metrics).await {
            tracing::error!(%error, "the metrics server stopped");
        }
    });
    tracing::info!(addr = %bound, "serving metrics");
    Ok(bound)
}
