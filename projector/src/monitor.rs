//! Prometheus metrics and readiness of a running projector, served over HTTP by
//! `spr-projector run --metrics-addr` at `/metrics` and `/ready`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus::{Histogram, IntCounter, IntGaugeVec, Registry};

use spr_producers::metrics_http::{counter, partition_gauge, seconds_histogram};
use spr_schemas::now_millis;

use crate::readiness::Readiness;

/// The projector's counters, histogram and gauges, and its current [`Readiness`].
#[derive(Debug)]
pub struct Monitor {
    registry: Registry,
    /// Events newly projected.
    pub events_projected: IntCounter,
    /// Records published to the dead-letter topic.
    pub dead_letters: IntCounter,
    /// Events skipped because their event id was already projected.
    pub duplicates: IntCounter,
    /// Records skipped because their offset was already applied (re-read after a start).
    pub already_applied: IntCounter,
    /// Time to project, dead-letter and write one batch.
    pub batch_write_seconds: Histogram,
    consumed_offset: IntGaugeVec,
    lag_records: IntGaugeVec,
    readiness: Mutex<Readiness>,
}

impl Default for Monitor {
    fn default() -> Self {
        Self::new()
    }
}

impl Monitor {
    /// Fresh metrics, all zero, registered in their own registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| counter(&registry, name, help);
        let per_partition = |name: &str, help: &str| partition_gauge(&registry, name, help);
        Self {
            events_projected: counter(
                "spr_projector_events_projected_total",
                "Events newly projected",
            ),
            dead_letters: counter(
                "spr_projector_dead_letters_total",
                "Records published to the dead-letter topic",
            ),
            duplicates: counter(
                "spr_projector_duplicates_total",
                "Events skipped because their event id was already projected",
            ),
            already_applied: counter(
                "spr_projector_already_applied_total",
                "Records skipped because their offset was already applied",
            ),
            batch_write_seconds: seconds_histogram(
                &registry,
                "spr_projector_batch_write_seconds",
                "Time to project, dead-letter and write one batch",
                0.0005,
            ),
            consumed_offset: per_partition(
                "spr_projector_applied_offset",
                "Next offset to apply, per partition: every record below it is projected",
            ),
            lag_records: per_partition(
                "spr_projector_lag_records",
                "Records received from the broker but not yet applied, per partition \
                 (the broker's high watermark is not used: tansu reports it too low)",
            ),
            registry,
            readiness: Mutex::new(Readiness::default()),
        }
    }

    /// Records handed to the projector so far: projected, duplicates, dead letters
    /// and already applied.
    pub fn records_read(&self) -> u64 {
        self.events_projected.get()
            + self.duplicates.get()
            + self.dead_letters.get()
            + self.already_applied.get()
    }

    /// A copy of the current readiness.
    pub fn readiness(&self) -> Readiness {
        self.readiness.lock().expect("readiness lock").clone()
    }

    /// Replaces the readiness and refreshes the per-partition gauges.
    pub fn set_readiness(&self, readiness: Readiness) {
        for (partition, lag) in &readiness.partitions {
            let label = partition.to_string();
            self.consumed_offset
                .with_label_values(&[&label])
                .set(lag.applied);
            self.lag_records
                .with_label_values(&[&label])
                .set(lag.records_behind());
        }
        *self.readiness.lock().expect("readiness lock") = readiness;
    }
}

/// What `/ready` answers: per partition, how far behind the projection is.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReadyReport {
    /// Whether the projection was caught up within the allowed time.
    pub ready: bool,
    /// Seconds since it was last caught up (`null` if never).
    pub seconds_behind: Option<f64>,
    /// Per partition: applied and received offsets and records behind.
    pub partitions: Vec<PartitionReport>,
}

/// One partition in a [`ReadyReport`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionReport {
    /// The partition.
    pub partition: i32,
    /// Next offset to apply.
    pub applied: i64,
    /// Offset after the newest record received.
    pub received: i64,
    /// Records received but not applied.
    pub records_behind: i64,
    /// Seconds since the projection was last caught up (the same for every partition).
    pub seconds_behind: Option<f64>,
}

impl ReadyReport {
    /// Judges `readiness` at `now_ms`: ready while last caught up at most `max_behind` ago.
    pub fn of(readiness: &Readiness, now_ms: i64, max_behind: Duration) -> Self {
        let seconds_behind = readiness.seconds_behind(now_ms);
        Self {
            ready: seconds_behind.is_some_and(|s| s <= max_behind.as_secs_f64()),
            seconds_behind,
            partitions: readiness
                .partitions
                .iter()
                .map(|(partition, lag)| PartitionReport {
                    partition: *partition,
                    applied: lag.applied,
                    received: lag.received,
                    records_behind: lag.records_behind(),
                    seconds_behind,
                })
                .collect(),
        }
    }
}

#[derive(Clone)]
struct ServerState {
    monitor: Arc<Monitor>,
    max_behind: Duration,
}

/// The `/metrics` and `/ready` routes. `/ready` answers 200 while the projection was
/// caught up at most `max_behind` ago, else 503, with a [`ReadyReport`] either way.
pub fn router(monitor: Arc<Monitor>, max_behind: Duration) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/ready", get(ready))
        .with_state(ServerState {
            monitor,
            max_behind,
        })
}

async fn metrics(State(state): State<ServerState>) -> Response {
    spr_producers::metrics_http::exposition(&state.monitor.registry)
}

async fn ready(State(state): State<ServerState>) -> Response {
    let report = ReadyReport::of(&state.monitor.readiness(), now_millis(), state.max_behind);
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}
