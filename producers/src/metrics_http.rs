//! The Prometheus listener each SPR service runs on a port of its own: the text
//! exposition of a registry, and a background server for a `/metrics` router.

use std::net::SocketAddr;

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Router;
use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Registers `metric` in `registry` and returns it, so that each of a service's metrics
/// is made and registered in one expression. A name registered twice is a programming
/// error and panics.
pub fn registered<M: Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique within a service");
    metric
}

/// A counter, registered in `registry`.
pub fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    registered(
        registry,
        IntCounter::new(name, help).expect("valid counter"),
    )
}

/// A gauge, registered in `registry`.
pub fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    registered(registry, IntGauge::new(name, help).expect("valid gauge"))
}

/// A gauge per Kafka partition (label `partition`), registered in `registry`.
pub fn partition_gauge(registry: &Registry, name: &str, help: &str) -> IntGaugeVec {
    let gauge = IntGaugeVec::new(Opts::new(name, help), &["partition"]);
    registered(registry, gauge.expect("valid gauge"))
}

/// A histogram of seconds in 16 buckets doubling from `smallest`, registered in
/// `registry`.
pub fn seconds_histogram(registry: &Registry, name: &str, help: &str, smallest: f64) -> Histogram {
    let buckets = prometheus::exponential_buckets(smallest, 2.0, 16).expect("valid buckets");
    let opts = HistogramOpts::new(name, help).buckets(buckets);
    registered(
        registry,
        Histogram::with_opts(opts).expect("valid histogram"),
    )
}

/// The metrics of `registry` in Prometheus' text format: what a `/metrics` route answers.
pub fn exposition(registry: &Registry) -> Response {
    let encoder = TextEncoder::new();
    let mut out = Vec::new();
    encoder
        .encode(&registry.gather(), &mut out)
        .expect("text encoding cannot fail");
    ([(CONTENT_TYPE, encoder.format_type().to_owned())], out).into_response()
}

/// The metrics address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("binding the metrics address {addr}: {source} (is another process listening there?)")]
pub struct MetricsBindError {
    addr: SocketAddr,
    #[source]
    source: std::io::Error,
}

/// With an address, binds it and serves `metrics` there in the background, and returns
/// the bound address (port 0 picks a free one); without one, does nothing. A failure
/// after binding is logged.
pub async fn spawn_metrics_server(
    addr: Option<SocketAddr>,
    metrics: Router,
) -> Result<Option<SocketAddr>, MetricsBindError> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let failed = |source| MetricsBindError { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, metrics).await {
            tracing::error!(%error, "the metrics server stopped");
        }
    });
    tracing::info!(addr = %bound, "serving metrics");
    Ok(Some(bound))
}
