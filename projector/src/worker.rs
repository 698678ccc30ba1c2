//! The consumer-group worker: consume, project, dead-letter, write, repeat.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use spr_producers::consume::{
    consumer_config, next_offsets_list, partitions_from_start, publish_dead_letter, receive_batch,
    AssignError, ConsumedRecord,
};
use spr_producers::{EventPublisher, PublishError};
use spr_schemas::topics;
use tracing::{error, info, instrument};

use crate::project::project_batch;
use crate::store::{ProjectionStore, StoreError};

/// How a worker connects and batches.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Kafka bootstrap servers.
    pub bootstrap: String,
    /// Consumer group under which progress is committed for monitoring tools.
    pub group_id: String,
    /// The partitions this instance owns (all of them when `None`).
    pub partitions: Option<Vec<i32>>,
    /// Largest batch written in one RocksDB WriteBatch.
    pub max_batch: usize,
    /// Longest a batch waits to fill before it is written.
    pub max_batch_wait: Duration,
}

/// Why the worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The consumer could not be created or subscribed.
    #[error("Kafka consumer: {0}")]
    Kafka(#[from] KafkaError),
    /// The dead-letter producer could not be created.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The topic or the owned partitions are not usable.
    #[error(transparent)]
    Assign(#[from] AssignError),
    /// The projection store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs one projector worker until `shutdown` completes, writing into `store`.
pub async fn run_worker(
    config: WorkerConfig,
    store: Arc<ProjectionStore>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    let consumer: StreamConsumer = consumer_config(&config.bootstrap, &config.group_id).create()?;
    // Each owned partition is read from the beginning; project_batch skips what the
    // offsets stored in RocksDB say is applied. The group's offsets never decide it.
    let owned = partitions_from_start(
        &consumer,
        topics::PATIENT_EVENTS.name,
        config.partitions.as_deref(),
    )?;
    consumer.assign(&owned)?;
    let numbers: Vec<i32> = owned.elements().iter().map(|e| e.partition()).collect();
    info!(partitions = ?numbers, "consuming owned partitions; records below the stored offsets are skipped");
    let dead_letter_publisher = EventPublisher::new(&config.bootstrap, Duration::from_secs(30))?;
    info!(topic = topics::PATIENT_EVENTS.name, "projector started");
    tokio::pin!(shutdown);
    loop {
        let records = tokio::select! {
            _ = &mut shutdown => break,
            batch = receive_batch(&consumer, config.max_batch, config.max_batch_wait, None) => batch,
        };
        let counts = write_batch_until_done(&store, &dead_letter_publisher, &records).await;
        // A batch that was all re-read after a restart would move the group's offsets back.
        if counts.already_applied < records.len() {
            commit_for_monitoring(&consumer, &records);
        }
    }
    info!("projector stopped");
    Ok(())
}

/// Projects and writes one batch, retrying with back-off until it lands: a batch is
/// never skipped, so a failing broker or disk stalls the projection rather than losing data.
#[instrument(skip_all, fields(records = records.len()))]
async fn write_batch_until_done(
    store: &ProjectionStore,
    publisher: &EventPublisher,
    records: &[ConsumedRecord],
) -> BatchCounts {
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        match try_write_batch(store, publisher, records).await {
            Ok(counts) => {
                tracing::debug!(
                    projected = counts.projected,
                    duplicates = counts.duplicates,
                    already_applied = counts.already_applied,
                    dead_lettered = counts.dead_lettered,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "batch written"
                );
                return counts;
            }
            Err(e) => {
                error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "batch not written; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn try_write_batch(
    store: &ProjectionStore,
    publisher: &EventPublisher,
    records: &[ConsumedRecord],
) -> Result<BatchCounts, WorkerError> {
    let outcome = project_batch(store, records)?;
    for dead in &outcome.dead_letters {
        publish_dead_letter(publisher, &dead.record, &dead.reason).await?;
    }
    let counts = BatchCounts {
        projected: outcome.projected,
        duplicates: outcome.duplicates,
        already_applied: outcome.already_applied,
        dead_lettered: outcome.dead_letters.len(),
    };
    store.write(outcome.batch)?;
    Ok(counts)
}

/// What one written batch did.
#[derive(Debug, Clone, Copy)]
struct BatchCounts {
    projected: usize,
    duplicates: usize,
    already_applied: usize,
    dead_lettered: usize,
}

/// Commits the batch's offsets to the group too, only so that standard lag tools see
/// progress; the projector itself resumes from the offsets in RocksDB.
fn commit_for_monitoring(consumer: &StreamConsumer, records: &[ConsumedRecord]) {
    if let Err(e) = consumer.commit(
        &next_offsets_list(records),
        rdkafka::consumer::CommitMode::Async,
    ) {
        tracing::debug!(error = %e, "could not commit offsets for monitoring");
    }
}
