//! Prometheus metrics of the ledger service, served by `spr-ledger --metrics-addr` at
//! `/metrics`: how many access events it appended, how long a group commit took, how
//! long an access took to become a durable ledger entry, how far it has read each
//! partition, and when it last signed a checkpoint. They let operations alert when the
//! audit trail falls behind the reads it records (docs/ledger.md).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use prometheus::{Histogram, IntCounter, IntGauge, IntGaugeVec, Registry};
use spr_producers::metrics_http::{counter, gauge, partition_gauge, seconds_histogram};

/// The ledger service's counters, histograms and gauges, in their own registry.
#[derive(Debug)]
pub struct LedgerMetrics {
    registry: Registry,
    entries: IntGauge,
    appended: IntCounter,
    duplicates: IntCounter,
    dead_letters: IntCounter,
    commit_seconds: Histogram,
    entry_delay_seconds: Histogram,
    next_offset: IntGaugeVec,
    checkpoints: IntCounter,
    checkpoint_entries: IntGauge,
    checkpoint_timestamp_seconds: IntGauge,
}

impl Default for LedgerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl LedgerMetrics {
    /// Fresh metrics, all zero.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| counter(&registry, name, help);
        let gauge = |name: &str, help: &str| gauge(&registry, name, help);
        Self {
            entries: gauge("spr_ledger_entries", "Entries in the ledger, all durable"),
            appended: counter(
                "spr_ledger_appended_total",
                "Access events appended (durable once their group commit synced)",
            ),
            duplicates: counter(
                "spr_ledger_duplicates_total",
                "Redelivered access events already in the ledger, not appended again",
            ),
            dead_letters: counter(
                "spr_ledger_dead_letters_total",
                "Records on spr.access-events that were not access events, sent to the dead-letter topic",
            ),
            commit_seconds: seconds_histogram(
                &registry,
                "spr_ledger_commit_seconds",
                "Time to append and sync one group commit",
                0.000_25,
            ),
            entry_delay_seconds: seconds_histogram(
                &registry,
                "spr_ledger_entry_delay_seconds",
                "From an access (the access event's occurred_at) to its durable ledger entry",
                0.005,
            ),
            next_offset: partition_gauge(
                &registry,
                "spr_ledger_next_offset",
                "Next offset of spr.access-events to read, per partition: every access event below it is in the ledger",
            ),
            checkpoints: counter(
                "spr_ledger_checkpoints_total",
                "Checkpoints signed and published",
            ),
            checkpoint_entries: gauge(
                "spr_ledger_checkpoint_entries",
                "Ledger size covered by the last checkpoint signed",
            ),
            checkpoint_timestamp_seconds: gauge(
                "spr_ledger_last_checkpoint_timestamp_seconds",
                "When the last checkpoint was signed (Unix time); after a restart, when the checkpoint file was last written",
            ),
            registry,
        }
    }

    /// Records one group commit: what it did, how long it took, the ledger's size after
    /// it, and `synced_at_ms` less each appended access's time as its delay.
    pub(crate) fn committed(
        &self,
        commit: &crate::service::BatchCounts,
        took: Duration,
        entries: u64,
        synced_at_ms: i64,
    ) {
        self.appended.inc_by(commit.appended.len() as u64);
        self.duplicates.inc_by(commit.duplicates as u64);
        self.dead_letters.inc_by(commit.dead_lettered as u64);
        self.commit_seconds.observe(took.as_secs_f64());
        self.entries.set(entries as i64);
        for occurred_at in &commit.appended {
            let delay_ms = synced_at_ms.saturating_sub(*occurred_at).max(0);
            self.entry_delay_seconds.observe(delay_ms as f64 / 1000.0);
        }
    }

    /// Records the next offset to read of each partition.
    pub(crate) fn consumed(
        &self,
        done: &std::collections::BTreeMap<i32, spr_producers::continuity::DoneUpTo>,
    ) {
        for (partition, done) in done {
            self.next_offset
                .with_label_values(&[&partition.to_string()])
                .set(done.next);
        }
    }

    /// Records the ledger's size at start.
    pub(crate) fn opened(&self, entries: u64) {
        self.entries.set(entries as i64);
    }

    /// Records a checkpoint signed over `entries` at `signed_at_ms`.
    pub(crate) fn checkpoint_signed(&self, entries: u64, signed_at_ms: i64) {
        self.checkpoints.inc();
        self.last_checkpoint(entries, Some(signed_at_ms));
    }

    /// Records the last checkpoint, found at start or just signed: over `entries`, at
    /// `signed_at_ms` if known (the time is left as it was otherwise).
    pub(crate) fn last_checkpoint(&self, entries: u64, signed_at_ms: Option<i64>) {
        self.checkpoint_entries.set(entries as i64);
        if let Some(ms) = signed_at_ms {
            self.checkpoint_timestamp_seconds.set(ms / 1000);
        }
    }

    /// The `/metrics` route over these metrics.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/metrics", get(exposition))
            .with_state(self)
    }
}

async fn exposition(State(metrics): State<Arc<LedgerMetrics>>) -> Response {
    spr_producers::metrics_http::exposition(&metrics.registry)
}
