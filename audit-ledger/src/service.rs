//! The ledger service: consumes `spr.access-events` and appends each access event.
//!
//! Effectively once without transactions: a batch is appended and fsynced
//! ([`Ledger::sync`]) before its offsets are committed to the consumer group, and the
//! ledger skips access event ids it already holds, so a crash between the two only
//! causes a redelivery that changes nothing.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use spr_producers::consume::{next_offsets_list, publish_dead_letter, receive_batch, ConsumedRecord};
use spr_producers::{EventPublisher, PublishError};
use spr_schemas::topics;
use tracing::{info, warn};

use crate::file::{AppendOutcome, Ledger, LedgerError};

/// How the ledger service connects and batches.
#[derive(Debug, Clone)]
pub struct LedgerServiceConfig {
    /// Kafka bootstrap servers.
    pub bootstrap: String,
    /// Consumer group of the ledger service.
    pub group_id: String,
    /// The ledger file.
    pub ledger_path: PathBuf,
    /// Largest group commit.
    pub max_batch: usize,
    /// Longest a batch waits to fill.
    pub max_batch_wait: Duration,
}

/// Why the ledger service stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The consumer failed.
    #[error("Kafka consumer: {0}")]
    Kafka(#[from] KafkaError),
    /// The dead-letter producer failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The ledger file failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Counts from one group commit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchCounts {
    /// New entries appended.
    pub appended: usize,
    /// Redelivered access events already in the ledger.
    pub duplicates: usize,
    /// Records that were not access events, sent to the dead-letter topic.
    pub dead_lettered: usize,
}

/// Runs the ledger service until `shutdown` completes.
pub async fn run_ledger_service(
    config: LedgerServiceConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let mut ledger = Ledger::open(&config.ledger_path)?;
    info!(entries = ledger.len(), head = %ledger.head(), path = %config.ledger_path.display(), "ledger opened");
    let consumer: StreamConsumer = spr_producers::client_config(&config.bootstrap)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[topics::ACCESS_EVENTS.name])?;
    let publisher = EventPublisher::new(&config.bootstrap, Duration::from_secs(30))?;
    tokio::pin!(shutdown);
    loop {
        let records = tokio::select! {
            _ = &mut shutdown => break,
            batch = receive_batch(&consumer, config.max_batch, config.max_batch_wait) => batch,
        };
        let counts = append_batch(&mut ledger, &publisher, &records).await?;
        consumer.commit(&next_offsets_list(&records), CommitMode::Sync)?;
        tracing::debug!(?counts, entries = ledger.len(), "group commit");
    }
    Ok(())
}

/// Appends a batch and syncs it: the group commit. Records that are not access
/// events are dead-lettered (and acknowledged) before the sync.
pub async fn append_batch(
    ledger: &mut Ledger,
    publisher: &EventPublisher,
    records: &[ConsumedRecord],
) -> Result<BatchCounts, ServiceError> {
    let mut counts = BatchCounts::default();
    for record in records {
        let leaf = record.payload.as_deref().unwrap_or_default();
        match ledger.append_access_event(leaf) {
            Ok(AppendOutcome::Appended(_)) => counts.appended += 1,
            Ok(AppendOutcome::Duplicate) => counts.duplicates += 1,
            Err(LedgerError::NotAnAccessEvent(reason)) => {
                warn!(offset = record.offset, %reason, "record on the access-events topic is not an access event");
                publish_dead_letter(publisher, record, &reason).await?;
                counts.dead_lettered += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    ledger.sync()?;
    Ok(counts)
}
