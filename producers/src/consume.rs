//! Batched consumption and dead-lettering, shared by the projector and the ledger.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::{Offset, TopicPartitionList};
use spr_schemas::topics::{self, dead_letter_headers as dlq};

use crate::{EventPublisher, PublishError};

/// The settings of every SPR consumer: a group id (used only for committing progress
/// for lag tools), no automatic commits or offset stores (each consumer keeps its own
/// progress beside its data), `earliest` if an offset falls out of range, and short
/// fetch waits, because tansu holds a fetch for
/// the whole `fetch.wait.max.ms` (librdkafka's default 500 ms) even when data arrives;
/// with the connection security of [`crate::client_config`].
pub fn consumer_config(
    bootstrap: &str,
    group_id: &str,
) -> Result<rdkafka::ClientConfig, KafkaError> {
    let mut config = crate::client_config(bootstrap)?;
    config
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        // Metadata once a minute (librdkafka's default is five), for the cluster id
        // that crate::continuity::ClusterWatch compares.
        .set(
            "topic.metadata.refresh.interval.ms",
            crate::continuity::CLUSTER_LOOK_EVERY
                .as_millis()
                .to_string(),
        )
        // Warnings reach the client's context (rdkafka otherwise passes on only what
        // the `log` crate would print), among them that of another cluster
        // (crate::continuity::ClusterAlert).
        .set_log_level(rdkafka::config::RDKafkaLogLevel::Warning);
    Ok(config)
}

/// How long dropping a [`ClosesWithin`] waits for the consumer inside it to close.
pub const CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// A consumer whose close, when it is dropped, is waited for at most a set time.
///
/// rdkafka closes a consumer that has a group id when it is dropped, and polls until
/// librdkafka reports it closed, with no time limit. A broker that stops answering in
/// the middle of that (tansu's storage can panic and leave the broker so) then keeps
/// the process from ever exiting. Past the limit the close is left to finish on a
/// thread of its own, and whatever the consumer still had to tell the group (a last
/// offset commit for lag tools) is given up: every SPR consumer keeps its progress
/// beside its own data, so nothing is lost.
pub struct ClosesWithin<T: Send + 'static> {
    consumer: Option<T>,
    limit: Duration,
}

impl<T: Send + 'static> std::fmt::Debug for ClosesWithin<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClosesWithin")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> ClosesWithin<T> {
    /// Wraps `consumer`, whose close is waited for at most [`CLOSE_WITHIN`].
    pub fn new(consumer: T) -> Self {
        Self::limited(consumer, CLOSE_WITHIN)
    }

    /// Wraps `consumer`, whose close is waited for at most `limit`.
    fn limited(consumer: T, limit: Duration) -> Self {
        Self {
            consumer: Some(consumer),
            limit,
        }
    }
}

impl<T: Send + 'static> std::ops::Deref for ClosesWithin<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.consumer.as_ref().expect("present until dropped")
    }
}

impl<T: Send + 'static> Drop for ClosesWithin<T> {
    fn drop(&mut self) {
        let Some(consumer) = self.consumer.take() else {
            return;
        };
        let (closed, close) = std::sync::mpsc::channel();
        let closing = std::thread::Builder::new()
            .name("consumer close".into())
            .spawn(move || {
                drop(consumer);
                let _ = closed.send(());
            });
        // Without a thread of its own, the consumer was dropped here, waiting as long
        // as its close takes.
        if closing.is_err() {
            return;
        }
        match close.recv_timeout(self.limit) {
            Ok(()) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => tracing::warn!(
                seconds = self.limit.as_secs_f64(),
                "the Kafka consumer did not close in time (the broker did not answer); going on without it"
            ),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                tracing::error!("closing the Kafka consumer panicked; going on without it")
            }
        }
    }
}

/// Why a consumer could not be given its partitions.
#[derive(Debug, thiserror::Error)]
pub enum AssignError {
    /// The broker could not be asked.
    #[error("reading topic metadata: {0}")]
    Kafka(#[from] KafkaError),
    /// The topic does not exist or has no partitions.
    #[error("topic {0} has no partitions; create the topics first (spr-produce create-topics)")]
    NoPartitions(String),
    /// A requested partition does not exist.
    #[error("partition {partition} of {topic} does not exist (it has {existing:?})")]
    NoSuchPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// The partitions it has.
        existing: Vec<i32>,
    },
}

/// The partitions of `topic` (all of them, or just `only`), each from its first offset.
/// SPR consumers always start at the beginning and skip what they have applied: tansu
/// cannot serve a fetch that starts inside a record batch (testkit/tests/tansu_gaps.rs).
pub fn partitions_from_start<C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    topic: &str,
    only: Option<&[i32]>,
) -> Result<TopicPartitionList, AssignError> {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(30))?;
    let existing: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if existing.is_empty() {
        return Err(AssignError::NoPartitions(topic.to_owned()));
    }
    let wanted = match only {
        Some(only) => {
            if let Some(missing) = only.iter().find(|p| !existing.contains(p)) {
                return Err(AssignError::NoSuchPartition {
                    topic: topic.to_owned(),
                    partition: *missing,
                    existing,
                });
            }
            only.to_vec()
        }
        None => existing,
    };
    let mut list = TopicPartitionList::new();
    for partition in wanted {
        list.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    Ok(list)
}

/// A record as consumed from the log, owned so it outlives the consumer's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Topic it was read from.
    pub topic: String,
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key, if any.
    pub key: Option<Vec<u8>>,
    /// Its value, if any.
    pub payload: Option<Vec<u8>>,
}

/// Waits for the first record (at most `idle`, if given, then returns an empty batch),
/// then gathers more until `max` records or `wait` has passed since the first. Consume
/// errors are logged and skipped over (librdkafka retries).
pub async fn receive_batch<C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    max: usize,
    wait: Duration,
    idle: Option<Duration>,
) -> Vec<ConsumedRecord> {
    let mut records = Vec::new();
    let mut deadline = idle.map(|i| tokio::time::Instant::now() + i);
    while records.len() < max {
        let received = match deadline {
            None => consumer.recv().await,
            Some(d) => match tokio::time::timeout_at(d, consumer.recv()).await {
                Ok(r) => r,
                Err(_) => break,
            },
        };
        match received {
            Ok(m) => {
                records.push(ConsumedRecord {
                    topic: m.topic().to_owned(),
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().map(<[u8]>::to_vec),
                });
                if records.len() == 1 {
                    deadline = Some(tokio::time::Instant::now() + wait);
                }
            }
            Err(e) => tracing::warn!(error = %e, "consume error; retrying"),
        }
    }
    records
}

/// The offset after the last record of each partition in `records`.
pub fn next_offsets<'r>(
    records: impl IntoIterator<Item = &'r ConsumedRecord>,
) -> BTreeMap<(&'r str, i32), i64> {
    records
        .into_iter()
        .map(|r| ((r.topic.as_str(), r.partition), r.offset + 1))
        .collect()
}

/// Commits each partition's next offset to apply to the consumer's group,
/// asynchronously, only so that standard lag tools (`kafka-consumer-groups`, exporters)
/// see progress: SPR consumers resume from the offsets they keep beside their own data,
/// never from these. A failed commit is logged at debug level and otherwise ignored.
pub fn commit_for_monitoring<C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    topic: &str,
    next_offsets: impl IntoIterator<Item = (i32, i64)>,
) {
    let mut list = TopicPartitionList::new();
    for (partition, next) in next_offsets {
        list.add_partition_offset(topic, partition, Offset::Offset(next))
            .expect("a fresh list accepts any offset");
    }
    if list.count() == 0 {
        return;
    }
    if let Err(e) = consumer.commit(&list, rdkafka::consumer::CommitMode::Async) {
        tracing::debug!(error = %e, "could not commit offsets for monitoring");
    }
}

/// Publishes a record's original key and bytes to the dead-letter topic, with its
/// topic, partition, offset and `reason` in headers, and awaits the acknowledgement.
pub async fn publish_dead_letter(
    publisher: &EventPublisher,
    record: &ConsumedRecord,
    reason: &str,
) -> Result<(), PublishError> {
    let reason = cut_text(reason, MAX_DEAD_LETTER_REASON_CHARS);
    let reason = reason.as_ref();
    tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, reason, "dead-lettering record");
    let (partition, offset) = (record.partition.to_string(), record.offset.to_string());
    let key = record.key.as_deref().unwrap_or_default();
    let key = &key[..key.len().min(MAX_DEAD_LETTER_KEY_BYTES)];
    let payload = record.payload.as_deref().unwrap_or_default();
    let original_size = payload.len().to_string();
    let kept = &payload[..payload.len().min(MAX_DEAD_LETTER_VALUE_BYTES)];
    let mut headers = OwnedHeaders::new()
        .insert(Header {
            key: dlq::SOURCE_TOPIC,
            value: Some(record.topic.as_str()),
        })
        .insert(Header {
            key: dlq::SOURCE_PARTITION,
            value: Some(partition.as_str()),
        })
        .insert(Header {
            key: dlq::SOURCE_OFFSET,
            value: Some(offset.as_str()),
        })
        .insert(Header {
            key: dlq::REASON,
            value: Some(reason),
        });
    if kept.len() < payload.len() {
        headers = headers.insert(Header {
            key: dlq::ORIGINAL_SIZE,
            value: Some(original_size.as_str()),
        });
    }
    publisher
        .publish_raw(topics::DEAD_LETTER.name, key, kept, headers)
        .await?;
    Ok(())
}

/// The most of a record's value a dead letter keeps. A record too large to use may be
/// too large to publish again whole (the client's `message.max.bytes` is 1 MB), and a
/// dead letter that cannot be published would stop its consumer: past this size only
/// the start is kept, and the `spr.dlq.original-size` header says how much there was.
pub const MAX_DEAD_LETTER_VALUE_BYTES: usize = 256 * 1024;
/// The most of a record's key a dead letter keeps (keys are NHS numbers).
const MAX_DEAD_LETTER_KEY_BYTES: usize = 1024;
/// The most of a reason a dead letter keeps (reasons can quote the record).
const MAX_DEAD_LETTER_REASON_CHARS: usize = 2000;

/// `text` cut to at most `max` characters, marked with `…` when cut.
fn cut_text(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]).into(),
        None => text.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    /// Takes `closing` to drop, then records that it was dropped.
    struct SlowClose {
        closing: Duration,
        closed: Arc<AtomicBool>,
    }

    impl Drop for SlowClose {
        fn drop(&mut self) {
            std::thread::sleep(self.closing);
            self.closed.store(true, Ordering::SeqCst);
        }
    }

    fn slow_close(closing: Duration) -> (SlowClose, Arc<AtomicBool>) {
        let closed = Arc::new(AtomicBool::new(false));
        let consumer = SlowClose {
            closing,
            closed: Arc::clone(&closed),
        };
        (consumer, closed)
    }

    #[test]
    fn a_close_that_finishes_in_time_is_waited_for() {
        let (consumer, closed) = slow_close(Duration::from_millis(50));
        drop(ClosesWithin::limited(consumer, Duration::from_secs(60)));
        assert!(
            closed.load(Ordering::SeqCst),
            "closed before the drop returned"
        );
    }

    #[test]
    fn a_close_that_hangs_is_given_up_after_the_limit() {
        let (consumer, closed) = slow_close(Duration::from_secs(30));
        let started = Instant::now();
        drop(ClosesWithin::limited(consumer, Duration::from_millis(100)));
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the drop returned after the limit, not after the close"
        );
        assert!(!closed.load(Ordering::SeqCst));
    }
}
