//! The consumer-group worker: consume, project, dead-letter, write, repeat.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use spr_producers::consume::{next_offsets_list, publish_dead_letter, receive_batch, ConsumedRecord};
use spr_producers::{EventPublisher, PublishError};
use spr_schemas::topics;
use tracing::{error, info, instrument, warn};

use crate::project::project_batch;
use crate::store::{ProjectionStore, StoreError};

/// How a worker connects and batches.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Kafka bootstrap servers.
    pub bootstrap: String,
    /// Consumer group id shared by every projector instance.
    pub group_id: String,
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
    /// The projection store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Seeks every newly assigned partition to the offset stored in RocksDB (or the
/// beginning), so the group's committed offsets never decide what is projected.
struct StoredOffsetsContext {
    store: Arc<ProjectionStore>,
}

impl ClientContext for StoredOffsetsContext {}

impl ConsumerContext for StoredOffsetsContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: rdkafka::types::RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        use rdkafka::types::RDKafkaRespErr::*;
        match err {
            RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let assigned: Vec<(String, i32)> =
                    tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect();
                let mut resumable = TopicPartitionList::new();
                for (topic, partition) in assigned {
                    let offset = match self.store.next_offset(&topic, partition) {
                        Ok(Some(next)) => Offset::Offset(next),
                        Ok(None) => Offset::Beginning,
                        Err(e) => {
                            // Without its stored offset this partition cannot be projected
                            // safely; leave it unassigned so nothing is applied twice.
                            error!(error = %e, partition, "cannot read stored offset; not consuming this partition");
                            continue;
                        }
                    };
                    if let Err(e) = resumable.add_partition_offset(&topic, partition, offset) {
                        error!(error = %e, partition, "cannot set partition offset");
                    }
                }
                info!(partitions = ?partition_numbers(&resumable), "partitions assigned; resuming from stored offsets");
                if let Err(e) = consumer.assign(&resumable) {
                    error!(error = %e, "assign failed");
                }
            }
            RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                info!(partitions = ?partition_numbers(tpl), "partitions revoked");
                if let Err(e) = consumer.unassign() {
                    error!(error = %e, "unassign failed");
                }
            }
            other => error!(error = ?other, "rebalance error"),
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, _: &Rebalance<'_>) {}
}

fn partition_numbers(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

/// Runs one projector worker until `shutdown` completes, writing into `store`.
pub async fn run_worker(
    config: WorkerConfig,
    store: Arc<ProjectionStore>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    let consumer: StreamConsumer<StoredOffsetsContext> = spr_producers::client_config(&config.bootstrap)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create_with_context(StoredOffsetsContext { store: Arc::clone(&store) })?;
    consumer.subscribe(&[topics::PATIENT_EVENTS.name])?;
    let dead_letter_publisher = EventPublisher::new(&config.bootstrap, Duration::from_secs(30))?;
    info!(group = %config.group_id, topic = topics::PATIENT_EVENTS.name, "projector started");
    tokio::pin!(shutdown);
    loop {
        let records = tokio::select! {
            _ = &mut shutdown => break,
            batch = receive_batch(&consumer, config.max_batch, config.max_batch_wait) => batch,
        };
        write_batch_until_done(&store, &dead_letter_publisher, &records).await;
        commit_for_monitoring(&consumer, &records);
    }
    info!("projector stopped");
    Ok(())
}

/// Projects and writes one batch, retrying with back-off until it lands: a batch is
/// never skipped, so a failing broker or disk stalls the projection rather than losing data.
#[instrument(skip_all, fields(records = records.len()))]
async fn write_batch_until_done(store: &ProjectionStore, publisher: &EventPublisher, records: &[ConsumedRecord]) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        match try_write_batch(store, publisher, records).await {
            Ok((projected, duplicates, dead)) => {
                tracing::debug!(projected, duplicates, dead, elapsed_ms = started.elapsed().as_millis() as u64, "batch written");
                return;
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
) -> Result<(usize, usize, usize), WorkerError> {
    let outcome = project_batch(store, records)?;
    for dead in &outcome.dead_letters {
        publish_dead_letter(publisher, &dead.record, &dead.reason).await?;
    }
    let counts = (outcome.projected, outcome.duplicates, outcome.dead_letters.len());
    store.write(outcome.batch)?;
    Ok(counts)
}

/// Commits the batch's offsets to the group too, only so that standard lag tools see
/// progress; the projector itself resumes from the offsets in RocksDB.
fn commit_for_monitoring(consumer: &StreamConsumer<StoredOffsetsContext>, records: &[ConsumedRecord]) {
    if let Err(e) = consumer.commit(&next_offsets_list(records), rdkafka::consumer::CommitMode::Async) {
        warn!(error = %e, "could not commit offsets for monitoring");
    }
}
