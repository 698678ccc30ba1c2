//! Prometheus metrics of an HTTP service: requests by route and status, their latency
//! by route, and error responses by error code (so `audit-unavailable`, a read refused
//! because its access event could not be recorded, can be alerted on). `spr-api serve
//! --metrics-addr` serves the API's (`spr_api_*`) and `spr-gateway serve
//! --metrics-addr` the ingestion gateway's (`spr_gateway_*`) at `/metrics` on a
//! listener of its own, away from the port that serves requests.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use spr_producers::metrics_http::registered;

/// The error code of an error response, left in its extensions by
/// [`crate::error::ApiError`] for [`ApiMetrics`].
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// A service's request counters and histogram, in their own registry.
#[derive(Debug)]
pub struct ApiMetrics {
    registry: Registry,
    requests: IntCounterVec,
    seconds: HistogramVec,
    errors: IntCounterVec,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiMetrics {
    /// Fresh metrics of the query API (`spr_api_*`), all zero.
    pub fn new() -> Self {
        Self::named("spr_api")
    }

    /// Fresh metrics of the ingestion gateway (`spr_gateway_*`), all zero.
    pub fn for_gateway() -> Self {
        Self::named("spr_gateway")
    }

    fn named(prefix: &str) -> Self {
        let registry = Registry::new();
        let requests = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    format!("{prefix}_requests_total"),
                    "Requests answered, by route and status",
                ),
                &["route", "status"],
            )
            .expect("valid counter"),
        );
        let seconds = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    format!("{prefix}_request_seconds"),
                    "Time from a request's arrival to its response, by route",
                )
                .buckets(vec![
                    0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
                ]),
                &["route"],
            )
            .expect("valid histogram"),
        );
        let errors = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    format!("{prefix}_errors_total"),
                    "Error responses by error code (the API's `error` in the JSON body, the gateway's first issue's reason)",
                ),
                &["code"],
            )
            .expect("valid counter"),
        );
        Self {
            registry,
            requests,
            seconds,
            errors,
        }
    }

    /// Wraps `routes` so that every request is counted and timed.
    pub fn record(self: &Arc<Self>, routes: Router) -> Router {
        routes.layer(middleware::from_fn_with_state(Arc::clone(self), count))
    }

    /// The `/metrics` route, for a listener of its own.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route(
                "/metrics",
                get(|State(metrics): State<Arc<Self>>| async move {
                    spr_producers::metrics_http::exposition(&metrics.registry)
                }),
            )
            .with_state(self)
    }
}

/// Counts and times one request, labelled by the route it matched (the template, such
/// as `/patients/{nhs_number}/timeline`, never the NHS number itself).
async fn count(State(metrics): State<Arc<ApiMetrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Cloning the matched path shares its text; nothing is copied per request.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let response = next.run(request).await;
    metrics
        .requests
        .with_label_values(&[route, response.status().as_str()])
        .inc();
    metrics
        .seconds
        .with_label_values(&[route])
        .observe(started.elapsed().as_secs_f64());
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
        metrics.errors.with_label_values(&[code]).inc();
    }
    response
}
