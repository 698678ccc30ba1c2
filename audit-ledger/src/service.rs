//! The ledger service: consumes `spr.access-events` and appends each access event.
//!
//! Effectively once without transactions: a batch is appended and fsynced
//! ([`Ledger::sync`]) before the consumed offsets are recorded in the `.consumed` side
//! file, and the ledger skips access event ids it already holds, so a crash between the
//! two only causes a re-read that changes nothing. The service reads its partitions from
//! the beginning and skips records below the recorded offsets, because tansu cannot
//! serve a fetch that starts inside a record batch (see docs/architecture.md).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use spr_producers::admin::{check_connection, ConnectionError, STARTUP_CONNECTION_TIMEOUT};
use spr_producers::consume::{
    consumer_config, partitions_from_start, publish_dead_letter, receive_batch, AssignError,
    ClosesWithin, ConsumedRecord,
};
use spr_producers::continuity::{
    is_cluster_id, ClusterAlert, ClusterWatch, DoneUpTo, HighWatermarks, LogContinuity, LogMismatch,
};
use spr_producers::metrics_http::{spawn_metrics_server, MetricsBindError};
use spr_producers::{EventPublisher, PublishError};
use spr_schemas::{now_millis, topics};
use tracing::{info, warn};

use crate::checkpoint::{
    check_extends, checkpoint_path, sign_consistent, write_checkpoint_file, CheckpointSigner,
    CheckpointVerifier, VerifiedCheckpoint,
};
use crate::file::{AppendOutcome, Ledger, LedgerError};
use crate::metrics::LedgerMetrics;

/// How often, and with which key, the service signs checkpoints.
#[derive(Debug)]
pub struct CheckpointPolicy {
    /// The signing key; its name is the log's origin.
    pub signer: CheckpointSigner,
    /// The shortest time between two checkpoints (one is signed only when the ledger grew).
    pub every: Duration,
}

/// How the ledger service connects and batches.
#[derive(Debug)]
pub struct LedgerServiceConfig {
    /// Kafka bootstrap servers.
    pub bootstrap: String,
    /// Consumer group id given to the client (offsets are kept in the `.consumed` file).
    pub group_id: String,
    /// The ledger file.
    pub ledger_path: PathBuf,
    /// Largest group commit.
    pub max_batch: usize,
    /// Longest a batch waits to fill.
    pub max_batch_wait: Duration,
    /// Signed checkpoints, written beside the ledger and published on
    /// `spr.ledger-checkpoints`; none when `None`.
    pub checkpoints: Option<CheckpointPolicy>,
    /// Where the service counts what it does.
    pub metrics: Arc<LedgerMetrics>,
    /// Where to serve [`Self::metrics`] at `/metrics`, once the ledger is open; none
    /// when `None`.
    pub metrics_addr: Option<SocketAddr>,
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
    /// The consumed-offsets side file could not be read or written.
    #[error("consumed-offsets file {0}")]
    Consumed(String),
    /// The broker refused this client or could not be reached at start.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The metrics address could not be bound.
    #[error(transparent)]
    Metrics(#[from] MetricsBindError),
    /// The topic is not usable.
    #[error(transparent)]
    Assign(#[from] AssignError),
    /// The last signed checkpoint is unreadable or contradicts the ledger.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// `spr.access-events` is not the log `.consumed` was recorded from, or lost records.
    #[error("{mismatch}. {}", remedy(.mismatch, .consumed))]
    LogMismatch {
        /// How the log differs from the one recorded.
        mismatch: LogMismatch,
        /// The consumed-offsets file that recorded it.
        consumed: PathBuf,
    },
}

/// What one group commit did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchCounts {
    /// When each access appended as a new entry happened (its `occurred_at`, ms since
    /// epoch), in ledger order.
    pub appended: Vec<i64>,
    /// Redelivered access events already in the ledger.
    pub duplicates: usize,
    /// Records that were not access events, sent to the dead-letter topic.
    pub dead_lettered: usize,
}

/// Runs the ledger service until `shutdown` completes: opens the ledger and its side
/// files (refusing one that contradicts its last checkpoint), serves its metrics,
/// checks that the broker answers ([`check_connection`]), then appends what arrives.
pub async fn run_ledger_service(
    config: LedgerServiceConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    // The last signed checkpoint is read first: the entries it covers were synced, so
    // opening the ledger must never cut them off as a torn tail.
    let mut checkpointer = config
        .checkpoints
        .as_ref()
        .map(|policy| Checkpointer::load(policy, &config.ledger_path))
        .transpose()?;
    let signed_entries = checkpointer
        .as_ref()
        .and_then(|c| c.last.as_ref())
        .map_or(0, |last| last.size);
    let mut ledger = Ledger::open_signed(&config.ledger_path, signed_entries)?;
    if let Some(checkpointer) = &checkpointer {
        checkpointer.check_extended_by(&ledger)?;
    }
    config.metrics.opened(ledger.len());
    info!(entries = ledger.len(), head = %ledger.head(), path = %config.ledger_path.display(), "ledger opened");
    if let Some((last, written_at_ms)) = checkpointer.as_ref().and_then(Checkpointer::found) {
        config.metrics.last_checkpoint(last, written_at_ms);
    }
    let consumed_path = consumed_offsets_path(&config.ledger_path);
    let consumed = read_consumed_offsets(&consumed_path)?;
    config.metrics.consumed(&consumed.done);
    let topic = topics::ACCESS_EVENTS.name;
    // What is consumed is kept by the continuity check from here on.
    let mut continuity = LogContinuity::new(topic, consumed.done, false);
    // The ledger and its side files are read, and the metrics served, before waiting
    // for the broker.
    spawn_metrics_server(config.metrics_addr, Arc::clone(&config.metrics).router()).await?;
    check_connection(&config.bootstrap, STARTUP_CONNECTION_TIMEOUT).await?;
    let consumer: ClosesWithin<StreamConsumer<ClusterAlert>> = ClosesWithin::new(
        consumer_config(&config.bootstrap, &config.group_id)?
            .create_with_context(ClusterAlert::default())?,
    );
    let partitions = partitions_from_start(&consumer, topic, None)?;
    let numbers: Vec<i32> = partitions
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect();
    consumer.assign(&partitions)?;
    let mismatch = |mismatch| ServiceError::LogMismatch {
        mismatch,
        consumed: consumed_path.clone(),
    };
    let mut cluster = ClusterWatch::start(&consumer, consumed.cluster).map_err(mismatch)?;
    let consumer = Arc::new(consumer);
    let mut watermarks = HighWatermarks::new(topic, numbers);
    let publisher = EventPublisher::new(&config.bootstrap, Duration::from_secs(30))?;
    // While idle, wake up now and then so the last entries get their checkpoint too,
    // and, until the log is confirmed as the one `.consumed` came from, to check its end.
    let checkpoint_idle = config
        .checkpoints
        .as_ref()
        .map(|p| p.every.max(Duration::from_millis(100)));
    tokio::pin!(shutdown);
    loop {
        let idle = if continuity.confirmed() {
            checkpoint_idle
        } else {
            Some(checkpoint_idle.map_or(CONTINUITY_IDLE, |c| c.min(CONTINUITY_IDLE)))
        };
        let records = tokio::select! {
            _ = &mut shutdown => break,
            batch = receive_batch(&consumer, config.max_batch, config.max_batch_wait, idle) => batch,
        };
        continuity.check(&records).map_err(mismatch)?;
        cluster.check(&consumer).map_err(mismatch)?;
        if !continuity.confirmed() {
            let answer = tokio::select! {
                _ = &mut shutdown => break,
                answer = watermarks.refresh(&consumer) => answer,
            };
            continuity.check_end(answer).map_err(mismatch)?;
        }
        let unread: Vec<ConsumedRecord> = records
            .into_iter()
            .filter(|r| {
                let done = continuity.done().get(&r.partition);
                r.offset >= done.map_or(0, |d| d.next)
            })
            .collect();
        if !unread.is_empty() {
            let started = Instant::now();
            let counts = append_batch(&mut ledger, &publisher, &unread).await?;
            config
                .metrics
                .committed(&counts, started.elapsed(), ledger.len(), now_millis());
            continuity.handled(&unread);
            write_consumed_offsets(&consumed_path, cluster.cluster_id(), continuity.done())?;
            config.metrics.consumed(continuity.done());
            tracing::debug!(
                appended = counts.appended.len(),
                duplicates = counts.duplicates,
                dead_lettered = counts.dead_lettered,
                entries = ledger.len(),
                "group commit"
            );
        }
        if let Some(checkpointer) = checkpointer.as_mut() {
            if checkpointer.sign_if_due(&ledger, &publisher).await? {
                config.metrics.checkpoint_signed(ledger.len(), now_millis());
            }
        }
    }
    Ok(())
}

/// Signs checkpoints that always extend the last one signed.
struct Checkpointer<'a> {
    policy: &'a CheckpointPolicy,
    path: PathBuf,
    last: Option<VerifiedCheckpoint>,
    last_signed_at: Option<Instant>,
}

impl<'a> Checkpointer<'a> {
    /// Reads and verifies the last signed checkpoint, if there is one.
    fn load(policy: &'a CheckpointPolicy, ledger_path: &Path) -> Result<Self, ServiceError> {
        let path = checkpoint_path(ledger_path);
        let verifier = CheckpointVerifier::from_verifier_key(&policy.signer.verifier_key())
            .map_err(|e| ServiceError::Checkpoint(e.to_string()))?;
        let last = match std::fs::read_to_string(&path) {
            Ok(note) => Some(
                verifier
                    .verify(&note)
                    .map_err(|e| ServiceError::Checkpoint(format!("{}: {e}", path.display())))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(ServiceError::Checkpoint(format!("{}: {e}", path.display()))),
        };
        Ok(Self {
            policy,
            path,
            last,
            last_signed_at: None,
        })
    }

    /// Refuses to go on if the ledger contradicts the last signed checkpoint (fewer
    /// entries, or another tree head at the signed size).
    fn check_extended_by(&self, ledger: &Ledger) -> Result<(), ServiceError> {
        match &self.last {
            Some(last) => check_extends(ledger.tree(), last).map_err(|refused| {
                ServiceError::Checkpoint(format!(
                    "the ledger contradicts the checkpoint already signed: {refused}; investigate before appending"
                ))
            }),
            None => Ok(()),
        }
    }

    /// The size of the checkpoint found at start, and when its file was last written
    /// (if the file system says).
    fn found(&self) -> Option<(u64, Option<i64>)> {
        let last = self.last.as_ref()?;
        let written = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64);
        Some((last.size, written))
    }

    /// Signs, stores and publishes a checkpoint if the ledger grew and one is due; true
    /// if it did.
    async fn sign_if_due(
        &mut self,
        ledger: &Ledger,
        publisher: &EventPublisher,
    ) -> Result<bool, ServiceError> {
        let grew = self.last.as_ref().is_none_or(|l| ledger.len() > l.size);
        let due = self
            .last_signed_at
            .is_none_or(|t| t.elapsed() >= self.policy.every);
        if !grew || !due {
            return Ok(false);
        }
        let signer = &self.policy.signer;
        let note = sign_consistent(
            signer,
            signer.name(),
            ledger.tree(),
            ledger.head(),
            self.last.as_ref(),
        )
        .map_err(|e| ServiceError::Checkpoint(e.to_string()))?;
        write_checkpoint_file(&self.path, &note)
            .map_err(|e| ServiceError::Checkpoint(format!("{}: {e}", self.path.display())))?;
        publisher
            .publish_raw(
                topics::LEDGER_CHECKPOINTS.name,
                signer.name().as_bytes(),
                note.as_bytes(),
                OwnedHeaders::new(),
            )
            .await?;
        let root = ledger.tree().root(ledger.len()).expect("whole tree");
        self.last = Some(VerifiedCheckpoint {
            origin: signer.name().to_owned(),
            size: ledger.len(),
            root,
            chain_head: ledger.head(),
        });
        self.last_signed_at = Some(Instant::now());
        info!(size = ledger.len(), %root, "checkpoint signed and published");
        Ok(true)
    }
}

/// What to do about a [`LogMismatch`] recorded in the file `consumed`, for the error's
/// message.
fn remedy(mismatch: &LogMismatch, consumed: &Path) -> String {
    let consumed = consumed.display();
    match mismatch {
        LogMismatch::Gap { .. } => format!("Those access events are not in the ledger and cannot be read from this log: record the gap for the auditors, set the topic's retention to cover any outage of the ledger service, then move {consumed} aside and start again (every access event the log still holds is read; those the ledger holds are skipped by their id)"),
        LogMismatch::Replaced { .. } | LogMismatch::Shorter { .. } | LogMismatch::OtherCluster { .. } => format!("Access events of this log at offsets that {consumed} records as handled would be skipped. Check --bootstrap; if this is the right log, move {consumed} aside and start again (every access event of this log is then read; those the ledger holds are skipped by their id, and the others are appended after the entries of the old log)"),
    }
}

/// How long the service waits for a record, until the log is confirmed as the one
/// `.consumed` came from, before it asks the broker where the partitions end.
const CONTINUITY_IDLE: Duration = Duration::from_secs(1);

/// The side file recording, per access-events partition, the next offset to read and
/// the digest of the record before it.
fn consumed_offsets_path(ledger: &Path) -> PathBuf {
    let mut name = ledger.as_os_str().to_owned();
    name.push(".consumed");
    PathBuf::from(name)
}

/// What the side file records: the Kafka cluster the offsets came from, and per
/// partition what is done.
#[derive(Debug, Default, PartialEq, Eq)]
struct Consumed {
    cluster: Option<String>,
    done: BTreeMap<i32, DoneUpTo>,
}

/// Reads the side file: a line `cluster ID` (absent in files written before it was
/// kept, or when the broker named no cluster), then lines of `partition next_offset
/// digest` (the digest of the record before `next_offset` in hex; absent in files
/// written before it was kept).
fn read_consumed_offsets(path: &Path) -> Result<Consumed, ServiceError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Consumed::default()),
        Err(e) => return Err(ServiceError::Consumed(format!("{}: {e}", path.display()))),
    };
    let mut consumed = Consumed::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || {
            ServiceError::Consumed(format!(
                "{}: bad line {line:?}: the file holds at most one line `cluster ID`, first, then lines `partition next_offset [digest]`. Move it aside to read the whole topic again (access events the ledger holds are skipped by their id)",
                path.display()
            ))
        };
        match line.strip_prefix("cluster ") {
            Some(id)
                if is_cluster_id(id) && consumed.cluster.is_none() && consumed.done.is_empty() =>
            {
                consumed.cluster = Some(id.to_owned());
            }
            Some(_) => return Err(bad()),
            None => {
                let (partition, done) = parse_consumed_line(line).ok_or_else(bad)?;
                consumed.done.insert(partition, done);
            }
        }
    }
    Ok(consumed)
}

fn parse_consumed_line(line: &str) -> Option<(i32, DoneUpTo)> {
    let mut fields = line.split(' ');
    let partition = fields.next()?.parse().ok()?;
    let next = fields.next()?.parse().ok()?;
    let last = match fields.next() {
        Some(digest) => Some(hex::decode(digest).ok()?.try_into().ok()?),
        None => None,
    };
    fields
        .next()
        .is_none()
        .then_some((partition, DoneUpTo { next, last }))
}

/// Replaces the side file atomically (write, fsync, rename).
fn write_consumed_offsets(
    path: &Path,
    cluster: Option<&str>,
    offsets: &BTreeMap<i32, DoneUpTo>,
) -> Result<(), ServiceError> {
    let line = |(partition, done): (&i32, &DoneUpTo)| match done.last {
        Some(digest) => format!("{partition} {} {}\n", done.next, hex::encode(digest)),
        None => format!("{partition} {}\n", done.next),
    };
    let cluster = cluster.map(|id| format!("cluster {id}\n"));
    let text: String = cluster
        .into_iter()
        .chain(offsets.iter().map(line))
        .collect();
    let temporary = path.with_extension("consumed.tmp");
    let fail = |e: std::io::Error| ServiceError::Consumed(format!("{}: {e}", path.display()));
    std::fs::write(&temporary, text).map_err(fail)?;
    std::fs::File::open(&temporary)
        .and_then(|f| f.sync_all())
        .map_err(fail)?;
    std::fs::rename(&temporary, path).map_err(fail)
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
            Ok(AppendOutcome::Appended { occurred_at, .. }) => counts.appended.push(occurred_at),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumed_lines_round_trip_and_older_lines_without_a_digest_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.spr.consumed");
        let offsets = BTreeMap::from([
            (
                0,
                DoneUpTo {
                    next: 17,
                    last: Some([7; 32]),
                },
            ),
            (
                1,
                DoneUpTo {
                    next: 3,
                    last: None,
                },
            ),
        ]);
        write_consumed_offsets(&path, None, &offsets).unwrap();
        assert_eq!(read_consumed_offsets(&path).unwrap().done, offsets);
        write_consumed_offsets(&path, Some("kafka-a"), &offsets).unwrap();
        assert_eq!(
            read_consumed_offsets(&path).unwrap(),
            Consumed {
                cluster: Some("kafka-a".into()),
                done: offsets
            }
        );
        for bad in [
            "0 5\ncluster kafka-a\n",
            "cluster a\ncluster b\n",
            "cluster \n",
            "cluster a\tb\n",
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(
                read_consumed_offsets(&path).is_err(),
                "{bad:?}: one cluster line, first, naming one cluster id"
            );
        }
        assert_eq!(
            parse_consumed_line("0 1733"),
            Some((
                0,
                DoneUpTo {
                    next: 1733,
                    last: None
                }
            ))
        );
        for bad in [
            "0",
            "0 x",
            "0 5 abc",
            &format!("0 5 {}", "ab".repeat(31)),
            &format!("0 5 {} 1", "ab".repeat(32)),
        ] {
            assert_eq!(parse_consumed_line(bad), None, "{bad:?}");
        }
    }
}
