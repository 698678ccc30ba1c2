//! Reading `spr.dead-letter` and re-publishing the records that now decode.
//!
//! `spr-projector dead-letters` lists them; `spr-projector replay-dead-letters`
//! re-publishes each one whose bytes now make a valid clinical event (say, once the
//! schema catalogue has learnt its writer schema) to `spr.patient-events`, **once**:
//! the source topic, partition and offset of every replayed dead letter are kept in a
//! small state file, so a second run republishes nothing. Records that still do not
//! decode are reported and left where they are. A crash between publishing and saving
//! the state republishes on the next run; the projector then skips the event as a
//! duplicate by event id, so the projection is still effectively once.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message, OwnedHeaders};
use serde::{Deserialize, Serialize};
use spr_producers::consume::{
    consumer_config, partitions_from_start, AssignError, ClosesWithin, ConsumedRecord,
};
use spr_producers::{EventPublisher, PublishError};
use spr_schemas::topics::{self, dead_letter_headers as dlq};

use crate::project::decode_record;

/// Why dead letters could not be read or replayed.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// The consumer could not be created or assigned.
    #[error("Kafka consumer: {0}")]
    Kafka(#[from] KafkaError),
    /// The dead-letter topic is not usable.
    #[error(transparent)]
    Assign(#[from] AssignError),
    /// A replayed record was not acknowledged.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The replay state file could not be read or written.
    #[error("replay state file {path}: {detail}")]
    State {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

/// Where a dead letter came from: its source topic, partition and offset. Several
/// dead letters can share one (a crash or retry publishes it again).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourcePosition {
    /// Topic the record was read from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

/// One record of `spr.dead-letter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetterRecord {
    /// Offset in the dead-letter topic.
    pub offset: i64,
    /// Where the original record was; `None` if the headers are missing or unreadable.
    pub source: Option<SourcePosition>,
    /// Why it was dead-lettered.
    pub reason: String,
    /// The original key, as text (NHS numbers are ASCII), lossily decoded.
    pub key: String,
    /// Size of the original value in bytes.
    pub size: usize,
    /// Whether the dead letter holds only the start of the value (it was over
    /// [`spr_producers::consume::MAX_DEAD_LETTER_VALUE_BYTES`]); the whole record is at
    /// its source position.
    pub truncated: bool,
    /// When it was dead-lettered (ms since the epoch), if the broker gave a timestamp.
    pub timestamp_ms: Option<i64>,
    /// The original key bytes.
    #[serde(skip)]
    pub key_bytes: Vec<u8>,
    /// The original value bytes.
    #[serde(skip)]
    pub value: Vec<u8>,
}

/// Reads every record of `spr.dead-letter` from the beginning until none has arrived
/// for `idle` (the broker's high watermark cannot say where the topic ends; see
/// docs/architecture.md).
pub async fn read_dead_letters(
    bootstrap: &str,
    idle: Duration,
) -> Result<Vec<DeadLetterRecord>, DeadLetterError> {
    let consumer: ClosesWithin<StreamConsumer> =
        ClosesWithin::new(consumer_config(bootstrap, "spr-dead-letter-reader")?.create()?);
    consumer.assign(&partitions_from_start(
        &consumer,
        topics::DEAD_LETTER.name,
        None,
    )?)?;
    let mut records = Vec::new();
    while let Ok(received) = tokio::time::timeout(idle, consumer.recv()).await {
        let message = match received {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "consume error; retrying");
                continue;
            }
        };
        let header = |name: &str| -> Option<String> {
            let headers = message.headers()?;
            let found = headers.iter().find(|h| h.key == name)?;
            Some(String::from_utf8_lossy(found.value?).into_owned())
        };
        let source = (|| {
            Some(SourcePosition {
                topic: header(dlq::SOURCE_TOPIC)?,
                partition: header(dlq::SOURCE_PARTITION)?.parse().ok()?,
                offset: header(dlq::SOURCE_OFFSET)?.parse().ok()?,
            })
        })();
        let key_bytes = message.key().unwrap_or_default().to_vec();
        let value = message.payload().unwrap_or_default().to_vec();
        let original_size = header(dlq::ORIGINAL_SIZE).and_then(|s| s.parse::<usize>().ok());
        records.push(DeadLetterRecord {
            offset: message.offset(),
            source,
            reason: header(dlq::REASON).unwrap_or_default(),
            key: String::from_utf8_lossy(&key_bytes).into_owned(),
            size: original_size.unwrap_or(value.len()),
            truncated: original_size.is_some_and(|size| size > value.len()),
            timestamp_ms: message.timestamp().to_millis(),
            key_bytes,
            value,
        });
    }
    Ok(records)
}

/// The source positions already replayed, kept in a JSON file.
#[derive(Debug)]
pub struct ReplayState {
    path: PathBuf,
    replayed: BTreeSet<SourcePosition>,
}

impl ReplayState {
    /// Loads the state at `path`; a missing file means nothing was replayed yet.
    pub fn load(path: &Path) -> Result<Self, DeadLetterError> {
        let error = |detail: String| DeadLetterError::State {
            path: path.to_owned(),
            detail,
        };
        let replayed = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                error(format!(
                    "not a list of replayed source positions ({e}); it was written by replay-dead-letters: restore it, or move it aside to replay every dead letter that decodes again (events already projected are skipped by their event id)"
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(error(e.to_string())),
        };
        Ok(Self {
            path: path.to_owned(),
            replayed,
        })
    }

    /// Whether the dead letter from `source` was replayed.
    pub fn contains(&self, source: &SourcePosition) -> bool {
        self.replayed.contains(source)
    }

    /// Records `source` as replayed and saves the file atomically (write, fsync, rename).
    pub fn record(&mut self, source: SourcePosition) -> Result<(), DeadLetterError> {
        self.replayed.insert(source);
        let tmp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&serde_json::to_vec(&self.replayed).expect("positions serialise"))?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| DeadLetterError::State {
            path: self.path.clone(),
            detail: e.to_string(),
        })
    }
}

/// What a replay did.
#[derive(Debug, Default, Serialize)]
pub struct ReplayReport {
    /// Dead letters re-published to `spr.patient-events`.
    pub replayed: Vec<SourcePosition>,
    /// Dead letters skipped because they were replayed before (or are copies of one
    /// replayed in this run).
    pub already_replayed: usize,
    /// Dead letters that still do not decode, with the reason now.
    pub still_failing: Vec<(DeadLetterRecord, String)>,
    /// Dead letters from other topics (the ledger's), or without source headers: left alone.
    pub not_replayable: usize,
}

/// Re-publishes, once, every dead letter of `spr.patient-events` that now decodes.
pub async fn replay_dead_letters(
    bootstrap: &str,
    state: &mut ReplayState,
    idle: Duration,
) -> Result<ReplayReport, DeadLetterError> {
    let publisher = EventPublisher::new(bootstrap, Duration::from_secs(30))?;
    let mut report = ReplayReport::default();
    for dead in read_dead_letters(bootstrap, idle).await? {
        let Some(source) = dead
            .source
            .clone()
            .filter(|s| s.topic == topics::PATIENT_EVENTS.name)
        else {
            report.not_replayable += 1;
            continue;
        };
        if state.contains(&source) {
            report.already_replayed += 1;
            continue;
        }
        if dead.truncated {
            let reason = format!(
                "the dead letter keeps only the first {} of its {} bytes; the whole record is at {} partition {} offset {}",
                dead.value.len(),
                dead.size,
                source.topic,
                source.partition,
                source.offset
            );
            report.still_failing.push((dead, reason));
            continue;
        }
        let record = ConsumedRecord {
            topic: source.topic.clone(),
            partition: source.partition,
            offset: source.offset,
            key: Some(dead.key_bytes.clone()),
            payload: Some(dead.value.clone()),
        };
        if let Err(reason) = decode_record(&record) {
            report.still_failing.push((dead, reason));
            continue;
        }
        publisher
            .publish_raw(
                topics::PATIENT_EVENTS.name,
                &dead.key_bytes,
                &dead.value,
                OwnedHeaders::new(),
            )
            .await?;
        state.record(source.clone())?;
        report.replayed.push(source);
    }
    Ok(report)
}
