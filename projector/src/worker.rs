//! The consumer-group worker: consume, project, dead-letter, write, repeat.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use spr_producers::consume::{
    commit_for_monitoring, consumer_config, next_offsets, partitions_from_start,
    publish_dead_letter, receive_batch, AssignError, ClosesWithin,
};
use spr_producers::continuity::{
    ClusterAlert, ClusterWatch, HighWatermarks, LogContinuity, LogMismatch,
};
use spr_producers::{EventPublisher, PublishError};
use spr_schemas::{now_millis, topics};
use tracing::{error, info, instrument};

use crate::checkpoints::CheckpointSchedule;
use crate::monitor::Monitor;
use crate::project::{project_decoded, DecodedBatch};
use crate::readiness::Readiness;
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
    /// The task receiving and decoding the next batch panicked.
    #[error("receiving the next batch: {0}")]
    Receive(#[from] tokio::task::JoinError),
    /// The log is not the one the projection was built from, or lost records.
    #[error("{0}. {remedy}", remedy = remedy(.0))]
    LogMismatch(#[from] LogMismatch),
}

/// What a worker does besides projecting: report, take checkpoints, stop at the end.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Where the worker records its metrics and readiness (served by [`crate::monitor`]).
    pub monitor: Arc<Monitor>,
    /// Online checkpoints of the projection, if wanted.
    pub checkpoints: Option<CheckpointSchedule>,
    /// Stop once no record has arrived for this long and every owned partition has
    /// been read at least up to the broker's high watermark (a rebuild); `None` runs
    /// until shut down.
    pub stop_when_idle: Option<Duration>,
    /// Go on past a partition that starts beyond its stored offset (records deleted
    /// before they were projected), logging it as an error, instead of stopping
    /// ([`LogMismatch::Gap`]).
    pub accept_log_gaps: bool,
}

/// How often an idle worker records that it is caught up.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// Runs one projector worker until `shutdown` completes, writing into `store`.
pub async fn run_worker(
    config: WorkerConfig,
    store: Arc<ProjectionStore>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    run_worker_with(config, store, RunOptions::default(), shutdown).await
}

/// [`run_worker`] with metrics, checkpoints or a stop at the end of the log.
///
/// Before consuming, the worker drops from `store` every partition it holds offsets
/// for but no longer owns ([`ProjectionStore::release_partitions`]): ownership has
/// moved to another instance, and should it come back, the partition is rebuilt from
/// the log rather than resumed from stale state.
pub async fn run_worker_with(
    config: WorkerConfig,
    store: Arc<ProjectionStore>,
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    let topic = topics::PATIENT_EVENTS.name;
    let consumer: ClosesWithin<StreamConsumer<ClusterAlert>> = ClosesWithin::new(
        consumer_config(&config.bootstrap, &config.group_id)?
            .create_with_context(ClusterAlert::default())?,
    );
    // Each owned partition is read from the beginning; project_batch skips what the
    // offsets stored in RocksDB say is applied. The group's offsets never decide it.
    let owned = partitions_from_start(&consumer, topic, config.partitions.as_deref())?;
    let numbers: Vec<i32> = owned.elements().iter().map(|e| e.partition()).collect();
    // Before the store changes: the cluster the offsets came from (the one recorded,
    // else the broker's, recorded once the log is confirmed as the one projected).
    let recorded_cluster = store.cluster_id()?;
    let mut cluster_unrecorded = recorded_cluster.is_none();
    let mut cluster = ClusterWatch::start(&consumer, recorded_cluster)?;
    release_moved_partitions(&consumer, &store, &numbers)?;
    consumer.assign(&owned)?;
    info!(partitions = ?numbers, "consuming owned partitions; records below the stored offsets are skipped");
    let dead_letter_publisher = EventPublisher::new(&config.bootstrap, Duration::from_secs(30))?;
    let monitor = &options.monitor;
    let mut readiness = store.readiness()?.unwrap_or_default();
    readiness.partitions.retain(|p, _| numbers.contains(p));
    for partition in &numbers {
        readiness.applied(
            *partition,
            store.next_offset(topic, *partition)?.unwrap_or(0),
        );
    }
    monitor.set_readiness(readiness);
    let applied = store.applied_up_to(topic, &numbers)?;
    let mut continuity = LogContinuity::new(topic, applied, options.accept_log_gaps);
    let mut record_cluster_once_confirmed =
        |continuity: &LogContinuity, cluster: &ClusterWatch| match cluster.cluster_id() {
            Some(id) if cluster_unrecorded && continuity.confirmed() => {
                cluster_unrecorded = false;
                store.record_cluster_id(id)
            }
            _ => Ok(()),
        };
    record_cluster_once_confirmed(&continuity, &cluster)?;
    let mut last_checkpoint = Instant::now();
    let mut wal_sync = WalSync::default();
    let mut watermarks = HighWatermarks::new(topic, numbers.clone());
    let consumer = Arc::new(consumer);
    let idle = options.stop_when_idle.unwrap_or(IDLE_TICK);
    let receive_ahead = || {
        let (consumer, store) = (Arc::clone(&consumer), Arc::clone(&store));
        let (max, wait) = (config.max_batch, config.max_batch_wait);
        // Decoding a batch holds a runtime thread for a few milliseconds. It is not
        // given to a blocking thread: once this task is aborted and awaited, nothing
        // may still hold the store (a rebuild takes it back).
        tokio::spawn(async move {
            let records = receive_batch(&consumer, max, wait, Some(idle)).await;
            DecodedBatch::decode(&store, records)
        })
    };
    // The next batch is received and decoded while this one is projected and written.
    let mut next_batch = receive_ahead();
    info!(topic, "projector started");
    let consumed: Result<(), WorkerError> = async {
        tokio::pin!(shutdown);
        loop {
            let received = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                received = &mut next_batch => received,
            };
            let batch = received?;
            next_batch = receive_ahead();
            let records = batch.records();
            continuity.check(records)?;
            cluster.check(&consumer)?;
            if records.is_empty() {
                // Nothing arrived for a while: caught up, unless the broker says its
                // partitions reach further than what was received (the first fetches
                // after a start can take longer than the idle time), or the log is not
                // yet confirmed as the one projected.
                let answer = tokio::select! {
                    _ = &mut shutdown => return Ok(()),
                    answer = watermarks.refresh(&consumer) => answer,
                };
                continuity.check_end(answer)?;
                if continuity.confirmed() && reached(answer.high, &monitor.readiness()) {
                    wal_sync.wait().await;
                    record_caught_up(&store, monitor)?;
                    if options.stop_when_idle.is_some() {
                        return Ok(());
                    }
                }
                continue;
            }
            let mut received = monitor.readiness();
            for record in records {
                received.received(record.partition, record.offset);
            }
            let full = records.len() >= config.max_batch;
            let drained = if continuity.confirmed() && full {
                false
            } else {
                // Until the log is confirmed, the broker is asked at least once a
                // second, busy or not, and the projection is not caught up.
                let answer = tokio::select! {
                    _ = &mut shutdown => return Ok(()),
                    answer = watermarks.refresh(&consumer) => answer,
                };
                continuity.check_end(answer)?;
                continuity.confirmed() && !full && reached(answer.high, &received)
            };
            monitor.set_readiness(received);
            // A batch that keeps failing (a full disk, a broker refusing dead letters) is
            // retried until it lands, but a stop request still ends the worker: nothing
            // of the batch is applied, and it is read again at the next start.
            let counts = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                counts = write_batch_until_done(
                    &store,
                    &dead_letter_publisher,
                    monitor,
                    &batch,
                    drained,
                    &mut wal_sync,
                ) => counts,
            };
            continuity.handled(batch.records());
            record_cluster_once_confirmed(&continuity, &cluster)?;
            commit_for_monitoring(&consumer, topics::PATIENT_EVENTS.name, counts.applied);
            if let Some(schedule) = &options.checkpoints {
                if last_checkpoint.elapsed() >= schedule.every {
                    schedule.take(&store);
                    last_checkpoint = Instant::now();
                }
            }
        }
    }
    .await;
    // However the loop ended, nothing it started may outlive it holding the store (a
    // rebuild takes the store back). Records received ahead and not projected are read
    // again on the next start.
    next_batch.abort();
    let _ = next_batch.await;
    wal_sync.wait().await;
    consumed?;
    info!("projector stopped");
    Ok(())
}

/// The fsync of the last batch written, running on a blocking thread while the next
/// batch is received and projected (it cost about a tenth of the projector's time when
/// each write waited for it). It is awaited before the next write, so at most one
/// written batch is not yet durable; a crash loses at most that batch and its offsets
/// together, and its records are consumed again.
#[derive(Default)]
struct WalSync(Option<tokio::task::JoinHandle<()>>);

impl WalSync {
    /// Starts syncing everything `store` has written so far, retrying until it succeeds
    /// (a failing disk stalls the projection rather than losing data).
    fn start(&mut self, store: Arc<ProjectionStore>) {
        self.0 = Some(tokio::task::spawn_blocking(move || {
            let mut backoff = Duration::from_millis(100);
            while let Err(e) = store.sync_wal() {
                error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "write-ahead log not synced; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }));
    }

    /// Waits for the sync started last, if any. Cancelled, it keeps the sync to wait
    /// for next time, so the worker's last wait still sees it.
    async fn wait(&mut self) {
        if let Some(task) = self.0.as_mut() {
            if let Err(e) = task.await {
                error!(error = %e, "the write-ahead log sync task failed");
            }
            self.0 = None;
        }
    }
}

/// What to do about a [`LogMismatch`], for the error's message.
fn remedy(mismatch: &LogMismatch) -> &'static str {
    match mismatch {
        LogMismatch::Gap { .. } => "Those records cannot be projected from this log: republish them from their sources if they can be found (they are projected when they arrive), set the topic's retention to unlimited, and start with --accept-log-gaps to go on without them (docs/operations.md)",
        LogMismatch::OtherCluster { .. } => "Offsets do not carry over between Kafka clusters, even between copies of one log. Check --bootstrap and the DNS name behind it; if that cluster is now the log's home, rebuild the projection from it (`spr-projector --db NEW rebuild`, with the same --partitions or --instance/--instances) and run the projector and the API on NEW (docs/operations.md)",
        LogMismatch::Replaced { .. } | LogMismatch::Shorter { .. } => "The projection holds events this log does not, and would skip this log's records at offsets it counts as applied. Check --bootstrap; if this is the right log, rebuild the projection from it (`spr-projector --db NEW rebuild`, with the same --partitions or --instance/--instances) and run the projector and the API on NEW (docs/operations.md)",
    }
}

/// Drops the partitions `store` holds offsets for that are not in `owned`.
fn release_moved_partitions(
    consumer: &StreamConsumer<ClusterAlert>,
    store: &ProjectionStore,
    owned: &[i32],
) -> Result<(), WorkerError> {
    let topic = topics::PATIENT_EVENTS.name;
    let moved: Vec<i32> = store
        .stored_partitions(topic)?
        .into_iter()
        .filter(|p| !owned.contains(p))
        .collect();
    if !moved.is_empty() {
        let count = partitions_from_start(consumer, topic, None)?.count() as i32;
        let rows = store.release_partitions(topic, &moved, count)?;
        info!(partitions = ?moved, rows, "dropped partitions now owned elsewhere");
    }
    Ok(())
}

/// Records that nothing is waiting: the projection holds everything received.
fn record_caught_up(store: &ProjectionStore, monitor: &Monitor) -> Result<(), StoreError> {
    let mut readiness = monitor.readiness();
    readiness.caught_up(now_millis());
    let mut batch = rocksdb::WriteBatch::default();
    store.put_readiness(&mut batch, &readiness);
    store.write(batch)?;
    monitor.set_readiness(readiness);
    Ok(())
}

/// Whether every owned partition has been received at least up to the broker's high
/// watermark (`high`, [`HighWatermarks::refresh`]): a condition of being caught up. On
/// tansu the watermark is below the true end, so this is only a lower bound and the idle
/// time does the rest; on Apache Kafka it is exact. A watermark that cannot be read
/// counts as not reached.
fn reached(high: &std::collections::BTreeMap<i32, i64>, readiness: &Readiness) -> bool {
    readiness.partitions.iter().all(|(partition, lag)| {
        high.get(partition)
            .is_some_and(|high| lag.received >= *high)
    })
}

/// Projects and writes one batch, retrying with back-off until it lands: a batch is
/// never skipped, so a failing broker or disk stalls the projection rather than losing data.
#[instrument(skip_all, fields(records = batch.records().len()))]
async fn write_batch_until_done(
    store: &Arc<ProjectionStore>,
    publisher: &EventPublisher,
    monitor: &Monitor,
    batch: &DecodedBatch,
    drained: bool,
    wal_sync: &mut WalSync,
) -> BatchCounts {
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        match try_write_batch(store, publisher, monitor, batch, drained, wal_sync).await {
            Ok(counts) => {
                monitor
                    .batch_write_seconds
                    .observe(started.elapsed().as_secs_f64());
                monitor.events_projected.inc_by(counts.projected as u64);
                monitor.duplicates.inc_by(counts.duplicates as u64);
                monitor
                    .already_applied
                    .inc_by(counts.already_applied as u64);
                monitor.dead_letters.inc_by(counts.dead_lettered as u64);
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

/// One attempt: project, publish dead letters, then write the effects, the offsets and
/// the new readiness in one atomic batch, and start syncing it ([`WalSync`]). `drained`
/// says the consumer had nothing more waiting, so once written the projection is caught up.
async fn try_write_batch(
    store: &Arc<ProjectionStore>,
    publisher: &EventPublisher,
    monitor: &Monitor,
    batch: &DecodedBatch,
    drained: bool,
    wal_sync: &mut WalSync,
) -> Result<BatchCounts, WorkerError> {
    let mut outcome = project_decoded(store, batch)?;
    for dead in &outcome.dead_letters {
        publish_dead_letter(publisher, &dead.record, &dead.reason).await?;
    }
    let mut counts = BatchCounts {
        projected: outcome.projected,
        duplicates: outcome.duplicates,
        already_applied: outcome.already_applied,
        dead_lettered: outcome.dead_letters.len(),
        applied: Vec::new(),
    };
    let mut readiness = monitor.readiness();
    for ((topic, partition), next) in next_offsets(batch.records()) {
        let applied = store.next_offset(topic, partition)?.unwrap_or(0).max(next);
        readiness.applied(partition, applied);
        counts.applied.push((partition, applied));
    }
    if drained {
        readiness.caught_up(now_millis());
    }
    store.put_readiness(&mut outcome.batch, &readiness);
    wal_sync.wait().await;
    store.write_unsynced(outcome.batch)?;
    if store.syncs_writes() {
        wal_sync.start(Arc::clone(store));
    }
    monitor.set_readiness(readiness);
    Ok(counts)
}

/// What one written batch did.
#[derive(Debug, Clone)]
struct BatchCounts {
    projected: usize,
    duplicates: usize,
    already_applied: usize,
    dead_lettered: usize,
    /// The next offset to apply of each partition in the batch, as now stored (never
    /// behind what an earlier batch stored, even for records read again after a start).
    applied: Vec<(i32, i64)>,
}
