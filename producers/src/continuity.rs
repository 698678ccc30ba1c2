//! Whether the log a consumer reads is the log its stored offsets came from.
//!
//! SPR's consumers (the projector, the ledger service) keep their offsets beside their
//! own data, re-read each partition from offset 0 at every start and skip what those
//! offsets say is done. Were the topic deleted and created again, or the service
//! pointed at another cluster (a disaster-recovery copy, whose offsets differ), the
//! records below the stored offsets would not be the ones done, and would be skipped
//! without a word. So beside each stored offset a consumer keeps the digest of the
//! record just before it (the last one done, [`record_digest`]), and after a start
//! [`LogContinuity`] checks each partition until that record comes round again:
//!
//! - it arrives with the same key and value: the same log, nothing more to check;
//! - another record stands at its offset: [`LogMismatch::Replaced`];
//! - the first record received lies beyond the stored offset: records not yet done
//!   were deleted ([`LogMismatch::Gap`]; the topics' retention must be unlimited);
//! - the broker says the partition ends before it ([`LogMismatch::Shorter`]; judged
//!   over several answers, because tansu's high watermark can be below the true end,
//!   while Apache Kafka's is exact; see [`LogContinuity::check_end`]).
//!
//! An offset stored without a digest (by a build before this check) is checked for
//! gaps and length only, and once a digest is stored beside it, it is the digest of
//! whatever log was read then.
//!
//! That check runs after a start. A consumer already running follows whatever cluster
//! its bootstrap address reaches: moved to another cluster (a DNS name switched to a
//! disaster-recovery site while it ran), librdkafka reads on from the old offsets in
//! the other log without a word. So a consumer also stores the id of the Kafka cluster
//! its offsets came from (KIP-78: every cluster has one), and [`ClusterWatch`] stops it,
//! at start or at the first batch once librdkafka's metadata names another cluster
//! ([`LogMismatch::OtherCluster`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use sha2::{Digest, Sha256};

use crate::consume::ConsumedRecord;

/// SHA-256 over a record's key and value (each length-prefixed; an absent one is
/// marked as such): what identifies the last record a consumer has done.
pub type RecordDigest = [u8; 32];

/// The [`RecordDigest`] of `record`.
pub fn record_digest(record: &ConsumedRecord) -> RecordDigest {
    let mut hasher = Sha256::new();
    for part in [&record.key, &record.payload] {
        match part {
            Some(bytes) => {
                hasher.update([1]);
                hasher.update((bytes.len() as u64).to_be_bytes());
                hasher.update(bytes);
            }
            None => hasher.update([0]),
        }
    }
    hasher.finalize().into()
}

/// What `records` leave done, per topic and partition: the offset after each
/// partition's last record and that record's digest.
pub fn done_by<'r>(
    records: impl IntoIterator<Item = &'r ConsumedRecord>,
) -> BTreeMap<(&'r str, i32), DoneUpTo> {
    let mut last = BTreeMap::new();
    for record in records {
        last.insert((record.topic.as_str(), record.partition), record);
    }
    last.into_iter()
        .map(|(at, record)| {
            let done = DoneUpTo {
                next: record.offset + 1,
                last: Some(record_digest(record)),
            };
            (at, done)
        })
        .collect()
}

/// What a consumer has done of one partition: the next offset to do and the digest of
/// the record before it (`None` if it was stored without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoneUpTo {
    /// The next offset to do: every record below it is done.
    pub next: i64,
    /// The digest of the record at `next - 1`.
    pub last: Option<RecordDigest>,
}

/// The log does not hold the records a consumer's stored offsets say it has done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogMismatch {
    /// Another record stands where the last one done stood.
    #[error("partition {partition} of {topic}: the record at offset {offset} is not the one done there (another key or value), so this is not the log the stored offsets came from: the topic was created again, or this is another cluster's copy")]
    Replaced {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset of the last record done.
        offset: i64,
    },
    /// The partition starts after the stored offset: records not yet done were deleted.
    #[error("partition {partition} of {topic} starts at offset {first}, beyond the next offset to do, {next}: records {next} to {} were deleted before they were done (the topic's retention must be unlimited)", first - 1)]
    Gap {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The first offset the broker holds.
        first: i64,
        /// The next offset to do, as stored.
        next: i64,
    },
    /// The broker answers as another Kafka cluster than the one the offsets came from.
    #[error("the broker answers as Kafka cluster {found:?}, but the stored offsets came from cluster {expected:?}: the bootstrap address now reaches another cluster (a disaster-recovery copy, a new cluster), whose offsets are not these")]
    OtherCluster {
        /// The cluster id stored beside the offsets.
        expected: String,
        /// The cluster id the broker reports.
        found: String,
    },
    /// The partition ends before the stored offset.
    #[error("partition {partition} of {topic} ends at offset {end}, but records up to offset {} are stored as done: the topic was created again, this is another cluster's copy, or the broker lost records", next - 1)]
    Shorter {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset after the last record received; the broker's watermark was no
        /// further.
        end: i64,
        /// The next offset to do, as stored.
        next: i64,
    },
}

/// Fresh watermark answers in a row at which a pending partition must look short
/// with nothing received in between.
const STILL_CHECKS: u32 = 3;

/// Fresh watermark answers in a row at which a pending partition must look short,
/// records arriving or not (a log created again that receives live traffic).
const SHORT_CHECKS: u32 = 30;

/// The check of [`crate::continuity`](self) for one topic, from a consumer's start
/// until every partition's last done record has come round again.
#[derive(Debug)]
pub struct LogContinuity {
    topic: String,
    /// The partitions still to confirm.
    pending: BTreeMap<i32, Pending>,
    accept_gaps: bool,
    /// What is done of each partition, kept current by [`Self::handled`].
    done: BTreeMap<i32, DoneUpTo>,
    /// Per partition, the offset after the newest record received since the start.
    newest: BTreeMap<i32, i64>,
}

/// A partition still to confirm, against what [`LogContinuity`] holds as done of it.
#[derive(Debug, Default)]
struct Pending {
    /// The offset after the newest record received since the start (0 before any).
    received: i64,
    /// `received` at the last fresh watermark answer.
    received_at_last_answer: i64,
    /// Fresh answers in a row at which the partition looked short, and of those, in a
    /// row with nothing received in between.
    short: u32,
    still: u32,
}

impl LogContinuity {
    /// Starts the check of `topic` against what was stored as done per partition
    /// (partitions with nothing done need none). With `accept_gaps`, a partition that
    /// starts beyond its stored offset is logged as an error and accepted.
    pub fn new(topic: &str, done: BTreeMap<i32, DoneUpTo>, accept_gaps: bool) -> Self {
        let pending = done
            .iter()
            .filter(|(_, d)| d.next > 0)
            .map(|(partition, _)| (*partition, Pending::default()))
            .collect();
        Self {
            topic: topic.to_owned(),
            pending,
            accept_gaps,
            done,
            newest: BTreeMap::new(),
        }
    }

    /// Records that `records` (in order) are handled and their offsets stored: what a
    /// partition that goes back is checked against again.
    pub fn handled(&mut self, records: &[ConsumedRecord]) {
        for ((topic, partition), handled) in done_by(records) {
            if topic != self.topic {
                continue;
            }
            let done = self.done.entry(partition).or_insert(DoneUpTo {
                next: 0,
                last: None,
            });
            if handled.next > done.next {
                *done = handled;
            }
        }
    }

    /// What is done of each partition: as stored at the start, then as handled since.
    pub fn done(&self) -> &BTreeMap<i32, DoneUpTo> {
        &self.done
    }

    /// Whether every partition is confirmed: nothing left to check.
    pub fn confirmed(&self) -> bool {
        self.pending.is_empty()
    }

    /// The partitions still to confirm.
    #[cfg(test)]
    fn pending_partitions(&self) -> Vec<i32> {
        self.pending.keys().copied().collect()
    }

    /// Checks a batch of records of the topic, in the order received.
    ///
    /// A partition whose offsets go back (the consumer's position was reset, say to
    /// the start of a log put in place of the one it read) is checked again, against
    /// what is done now, as after a start.
    pub fn check(&mut self, records: &[ConsumedRecord]) -> Result<(), LogMismatch> {
        for record in records.iter().filter(|r| r.topic == self.topic) {
            let newest = self.newest.entry(record.partition).or_insert(0);
            let went_back = record.offset < *newest
                && !self.pending.contains_key(&record.partition)
                && self.done.get(&record.partition).is_some_and(|d| d.next > 0);
            if went_back {
                tracing::warn!(
                    topic = %self.topic,
                    partition = record.partition,
                    from = *newest,
                    to = record.offset,
                    "the partition went back; checking again that it is the log handled"
                );
                self.pending.insert(record.partition, Pending::default());
            }
            *newest = (*newest).max(record.offset + 1);
            let Some(pending) = self.pending.get_mut(&record.partition) else {
                continue;
            };
            pending.received = pending.received.max(record.offset + 1);
            let DoneUpTo { next, last: digest } = self.done[&record.partition];
            if record.offset == next - 1 {
                if digest.is_some_and(|digest| digest != record_digest(record)) {
                    return Err(LogMismatch::Replaced {
                        topic: self.topic.clone(),
                        partition: record.partition,
                        offset: next - 1,
                    });
                }
                self.pending.remove(&record.partition);
            } else if record.offset == next {
                // Everything done was deleted (retention), nothing else: nothing to compare.
                self.pending.remove(&record.partition);
            } else if record.offset > next {
                let gap = LogMismatch::Gap {
                    topic: self.topic.clone(),
                    partition: record.partition,
                    first: record.offset,
                    next,
                };
                if !self.accept_gaps {
                    return Err(gap);
                }
                tracing::error!(%gap, "accepted: the records deleted are not handled");
                self.pending.remove(&record.partition);
            }
        }
        Ok(())
    }

    /// Checks the broker's high watermarks ([`HighWatermarks::refresh`]; only a fresh
    /// answer counts). A partition still to confirm looks short when everything the
    /// broker admits to has been received (the watermark is no further than what was
    /// received) and the record before the stored offset has not come: it ends before
    /// that offset if it looks so at [`STILL_CHECKS`] answers in a row with nothing
    /// received in between, or at [`SHORT_CHECKS`] in a row whatever arrived (a log
    /// created again that keeps receiving records). Both, because tansu's watermark
    /// can be below the true end, while Apache Kafka's is exact.
    pub fn check_end(&mut self, answer: WatermarkAnswer<'_>) -> Result<(), LogMismatch> {
        if !answer.fresh {
            return Ok(());
        }
        for (partition, pending) in &mut self.pending {
            let looks_short = answer
                .high
                .get(partition)
                .is_some_and(|high| *high <= pending.received);
            let moved = pending.received != pending.received_at_last_answer;
            pending.received_at_last_answer = pending.received;
            if !looks_short {
                (pending.short, pending.still) = (0, 0);
                continue;
            }
            pending.short += 1;
            pending.still = if moved { 0 } else { pending.still + 1 };
            if pending.still >= STILL_CHECKS || pending.short >= SHORT_CHECKS {
                return Err(LogMismatch::Shorter {
                    topic: self.topic.clone(),
                    partition: *partition,
                    end: pending.received,
                    next: self.done[partition].next,
                });
            }
        }
        Ok(())
    }
}

/// How often a running consumer compares the cluster id librdkafka last saw with the
/// one its offsets came from, warned or not ([`ClusterAlert`]). librdkafka learns the id
/// from each metadata answer, which SPR's consumers ask for as often
/// ([`crate::consume::consumer_config`]), so once the consumer's connections reach
/// another cluster, the switch is seen within about twice this even unwarned.
pub const CLUSTER_LOOK_EVERY: Duration = Duration::from_secs(60);

/// The context of a consumer watched by a [`ClusterWatch`]: it notes librdkafka's
/// warning (facility `CLUSTERID`) that a broker reports another cluster id than the
/// one the client knew, logged the moment a metadata answer names another cluster, so
/// that [`ClusterWatch::check`] looks at once rather than at its next minute. Logging
/// is otherwise librdkafka's default.
#[derive(Debug, Default, Clone)]
pub struct ClusterAlert(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl ClientContext for ClusterAlert {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if fac == "CLUSTERID" {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        DefaultClientContext.log(level, fac, log_message);
    }
}

impl ConsumerContext for ClusterAlert {}

impl ClusterAlert {
    /// Whether librdkafka has warned of another cluster since the last call.
    fn raised(&self) -> bool {
        self.0.swap(false, std::sync::atomic::Ordering::Relaxed)
    }
}

/// The Kafka cluster a consumer's stored offsets came from, compared with the one its
/// broker answers as: at start, and then through [`Self::check`] at once when
/// librdkafka warns of another cluster ([`ClusterAlert`]), and at least every
/// [`CLUSTER_LOOK_EVERY`].
///
/// Every Apache Kafka cluster has an id of its own. Every tansu broker reports
/// `tansu_cluster` unless started with `--cluster-id` (or `CLUSTER_ID` set), so between
/// tansu brokers the watch tells nothing apart. While neither the store nor the broker
/// has named a cluster, nothing is judged, and the first id seen is adopted.
#[derive(Debug)]
pub struct ClusterWatch {
    expected: Option<String>,
    looked_at: Instant,
}

impl ClusterWatch {
    /// Compares the cluster id in the consumer's metadata (call it once the consumer has
    /// fetched some, as [`crate::consume::partitions_from_start`] does) with `stored`,
    /// the id kept beside the offsets, if any. With none stored, the broker's becomes the
    /// expected one, to be stored ([`Self::cluster_id`]) once the log is confirmed.
    pub fn start<C: ConsumerContext>(
        consumer: &StreamConsumer<C>,
        stored: Option<String>,
    ) -> Result<Self, LogMismatch> {
        let mut watch = Self {
            expected: stored,
            looked_at: Instant::now(),
        };
        watch.observe(cluster_id_seen(consumer))?;
        Ok(watch)
    }

    /// The cluster id the offsets belong to, to be stored beside them (`None` while
    /// neither the store nor the broker has named one).
    pub fn cluster_id(&self) -> Option<&str> {
        self.expected.as_deref()
    }

    /// Compares the cluster id librdkafka last saw (it does not ask the broker) with the
    /// expected one, if librdkafka has warned of another cluster or the last look is
    /// [`CLUSTER_LOOK_EVERY`] old. Call it before each write of what was consumed,
    /// and while idle.
    pub fn check(&mut self, consumer: &StreamConsumer<ClusterAlert>) -> Result<(), LogMismatch> {
        if !consumer.context().raised() && self.looked_at.elapsed() < CLUSTER_LOOK_EVERY {
            return Ok(());
        }
        self.looked_at = Instant::now();
        self.observe(cluster_id_seen(consumer))
    }

    /// Judges `found`, the id the broker reports now: another one than expected is a
    /// mismatch; the first one seen, when none was expected, is adopted.
    fn observe(&mut self, found: Option<String>) -> Result<(), LogMismatch> {
        match (&self.expected, found) {
            (Some(expected), Some(found)) if *expected != found => Err(LogMismatch::OtherCluster {
                expected: expected.clone(),
                found,
            }),
            (None, found) => {
                self.expected = found;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Whether `id` can be a cluster id as SPR stores it, on a line of its own: not empty,
/// no control characters such as a line break (Apache Kafka's ids are 22 characters
/// of URL-safe base64; tansu takes any `--cluster-id`).
pub fn is_cluster_id(id: &str) -> bool {
    !id.is_empty() && !id.chars().any(char::is_control)
}

/// The cluster id in librdkafka's latest metadata, if it has one that [`is_cluster_id`]
/// (one that is not is logged, and the cluster is then not judged). (rdkafka 0.38 does
/// not free librdkafka's copy of the id, a few dozen bytes a call: hence a look when
/// warned and once a minute, not one per batch.)
fn cluster_id_seen<C: ConsumerContext>(consumer: &StreamConsumer<C>) -> Option<String> {
    let id = consumer.client().fetch_cluster_id(Duration::ZERO)?;
    if !is_cluster_id(&id) {
        tracing::warn!(cluster_id = ?id, "the broker's cluster id is empty or holds control characters; the cluster is not checked");
        return None;
    }
    Some(id)
}

/// The broker's high watermarks, as [`HighWatermarks::refresh`] last had them.
#[derive(Debug, Clone, Copy)]
pub struct WatermarkAnswer<'a> {
    /// Per partition (missing where unknown).
    pub high: &'a BTreeMap<i32, i64>,
    /// Whether the broker answered in this call (not an answer kept from before).
    pub fresh: bool,
}

/// The broker's high watermarks of some partitions of a topic, asked at most once a
/// second, on a blocking thread. On tansu a watermark can be below the true end of a
/// partition, so it is a lower bound there; on Apache Kafka it is exact.
#[derive(Debug)]
pub struct HighWatermarks {
    topic: &'static str,
    partitions: Vec<i32>,
    asked_at: Option<Instant>,
    high: BTreeMap<i32, i64>,
}

impl HighWatermarks {
    /// The watermarks of `partitions` of `topic`, not asked yet.
    pub fn new(topic: &'static str, partitions: Vec<i32>) -> Self {
        Self {
            topic,
            partitions,
            asked_at: None,
            high: BTreeMap::new(),
        }
    }

    /// The watermarks, asked again if the last answer is a second old. A failed
    /// question leaves none known (logged as a warning).
    pub async fn refresh<C: ConsumerContext + 'static>(
        &mut self,
        consumer: &std::sync::Arc<crate::consume::ClosesWithin<StreamConsumer<C>>>,
    ) -> WatermarkAnswer<'_> {
        let due = self
            .asked_at
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
        let mut fresh = false;
        if due {
            self.asked_at = Some(Instant::now());
            let (consumer, topic) = (std::sync::Arc::clone(consumer), self.topic);
            let partitions = self.partitions.clone();
            let asked = tokio::task::spawn_blocking(move || {
                partitions
                    .into_iter()
                    .map(|partition| {
                        consumer
                            .fetch_watermarks(topic, partition, Duration::from_secs(2))
                            .map(|(_, high)| (partition, high))
                    })
                    .collect::<Result<BTreeMap<i32, i64>, KafkaError>>()
            })
            .await;
            self.high = match asked {
                Ok(Ok(high)) => {
                    fresh = true;
                    high
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not read the high watermarks");
                    BTreeMap::new()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the high watermarks failed");
                    BTreeMap::new()
                }
            };
        }
        WatermarkAnswer {
            high: &self.high,
            fresh,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(partition: i32, offset: i64, value: &str) -> ConsumedRecord {
        ConsumedRecord {
            topic: "t".into(),
            partition,
            offset,
            key: Some(b"9990000018".to_vec()),
            payload: Some(value.as_bytes().to_vec()),
        }
    }

    fn done(next: i64, last: Option<&ConsumedRecord>) -> DoneUpTo {
        DoneUpTo {
            next,
            last: last.map(record_digest),
        }
    }

    fn continuity(stored: impl IntoIterator<Item = (i32, DoneUpTo)>) -> LogContinuity {
        LogContinuity::new("t", stored.into_iter().collect(), false)
    }

    fn fresh(high: &BTreeMap<i32, i64>) -> WatermarkAnswer<'_> {
        WatermarkAnswer { high, fresh: true }
    }

    #[test]
    fn the_same_log_is_confirmed_when_the_last_record_done_comes_round_again() {
        let log: Vec<_> = (0..5).map(|o| record(0, o, &format!("v{o}"))).collect();
        let mut check = continuity([(0, done(3, Some(&log[2]))), (1, done(0, None))]);
        assert_eq!(
            check.pending_partitions(),
            [0],
            "nothing done of partition 1"
        );
        check.check(&log[..2]).unwrap();
        assert!(!check.confirmed());
        check.check(&log[2..]).unwrap();
        assert!(check.confirmed());
        // Once confirmed, records going forward are not judged, nor watermarks.
        check
            .check(&[record(0, 5, "v5"), record(0, 9, "v9")])
            .unwrap();
        let empty = BTreeMap::from([(0, 0)]);
        for _ in 0..SHORT_CHECKS {
            check.check_end(fresh(&empty)).unwrap();
        }
    }

    #[test]
    fn another_record_where_the_last_one_done_stood_is_a_replaced_log() {
        let stored = || [(2, done(2, Some(&record(2, 1, "v1"))))];
        let other = [record(2, 0, "v0"), record(2, 1, "w1")];
        assert_eq!(
            continuity(stored()).check(&other),
            Err(LogMismatch::Replaced {
                topic: "t".into(),
                partition: 2,
                offset: 1
            })
        );
        // The same value under another key is another record too.
        let mut keyed = record(2, 1, "v1");
        keyed.key = Some(b"9990000026".to_vec());
        assert!(matches!(
            continuity(stored()).check(&[keyed]),
            Err(LogMismatch::Replaced { .. })
        ));
        // Records of other topics are not judged.
        let mut elsewhere = record(2, 1, "w1");
        elsewhere.topic = "u".into();
        continuity(stored()).check(&[elsewhere]).unwrap();
    }

    #[test]
    fn an_offset_stored_without_a_digest_is_confirmed_by_any_record_there() {
        let mut check = continuity([(0, done(2, None))]);
        check.check(&[record(0, 1, "anything")]).unwrap();
        assert!(check.confirmed());
    }

    #[test]
    fn a_partition_starting_beyond_the_next_offset_is_a_gap_unless_gaps_are_accepted() {
        let stored = || BTreeMap::from([(0, done(4, Some(&record(0, 3, "v3"))))]);
        let gap = LogMismatch::Gap {
            topic: "t".into(),
            partition: 0,
            first: 6,
            next: 4,
        };
        let mut strict = LogContinuity::new("t", stored(), false);
        assert_eq!(strict.check(&[record(0, 6, "v6")]), Err(gap.clone()));
        assert!(gap.to_string().contains("records 4 to 5 were deleted"));
        let mut accepting = LogContinuity::new("t", stored(), true);
        accepting.check(&[record(0, 6, "v6")]).unwrap();
        assert!(accepting.confirmed());
        // Everything done deleted by retention, the next record first: nothing lost.
        let mut check = LogContinuity::new("t", stored(), false);
        check.check(&[record(0, 4, "v4")]).unwrap();
        assert!(check.confirmed());
    }

    #[test]
    fn a_partition_ending_early_is_shorter_after_three_still_answers_or_thirty_of_any_kind() {
        let stored = || [(0, done(10, Some(&record(0, 9, "v9"))))];
        let early = BTreeMap::from([(0, 2)]);
        let mut check = continuity(stored());
        check
            .check(&[record(0, 0, "v0"), record(0, 1, "v1")])
            .unwrap();
        // Answers kept from before do not count, however many.
        for _ in 0..10 {
            let kept = WatermarkAnswer {
                high: &early,
                fresh: false,
            };
            check.check_end(kept).unwrap();
        }
        // The first fresh answer sees progress since the start; then two still ones.
        check.check_end(fresh(&early)).unwrap();
        check.check_end(fresh(&early)).unwrap();
        check.check_end(fresh(&early)).unwrap();
        let shorter = LogMismatch::Shorter {
            topic: "t".into(),
            partition: 0,
            end: 2,
            next: 10,
        };
        assert_eq!(check.check_end(fresh(&early)), Err(shorter.clone()));
        assert!(shorter
            .to_string()
            .contains("records up to offset 9 are stored as done"));

        // A record arriving between answers starts the still count again, and a
        // watermark beyond what was received (a re-read in progress) both counts.
        let mut check = continuity(stored());
        for offset in 0..8 {
            check.check(&[record(0, offset, "v")]).unwrap();
            let at = BTreeMap::from([(0, offset + 1)]);
            check.check_end(fresh(&at)).unwrap();
            check.check_end(fresh(&BTreeMap::from([(0, 10)]))).unwrap();
        }
        // Unknown watermarks judge nothing.
        for _ in 0..SHORT_CHECKS {
            check.check_end(fresh(&BTreeMap::new())).unwrap();
        }

        // A log created again that keeps receiving records: short at every answer,
        // never still, found at the thirtieth.
        let mut check = continuity([(0, done(100, Some(&record(0, 99, "v99"))))]);
        for offset in 0..SHORT_CHECKS as i64 - 1 {
            check.check(&[record(0, offset, "live")]).unwrap();
            check
                .check_end(fresh(&BTreeMap::from([(0, offset + 1)])))
                .unwrap();
        }
        check.check(&[record(0, 29, "live")]).unwrap();
        assert!(matches!(
            check.check_end(fresh(&BTreeMap::from([(0, 30)]))),
            Err(LogMismatch::Shorter { end: 30, .. })
        ));

        // An empty partition that once held records.
        let mut check = continuity(stored());
        let empty = BTreeMap::from([(0, 0)]);
        for _ in 0..STILL_CHECKS - 1 {
            check.check_end(fresh(&empty)).unwrap();
        }
        assert!(matches!(
            check.check_end(fresh(&empty)),
            Err(LogMismatch::Shorter { end: 0, .. })
        ));
    }

    #[test]
    fn a_partition_that_goes_back_is_checked_again_against_what_is_done_now() {
        let log: Vec<_> = (0..6).map(|o| record(0, o, &format!("v{o}"))).collect();
        let mut check = continuity([(0, done(2, Some(&log[1])))]);
        check.check(&log[..4]).unwrap();
        assert!(check.confirmed());
        check.handled(&log[..4]);
        // The same log delivered again from an earlier offset: confirmed again at 3.
        check.check(&log[1..3]).unwrap();
        assert!(!check.confirmed());
        check.check(&log[3..]).unwrap();
        assert!(check.confirmed());
        check.handled(&log[3..]);
        // Another log from offset 0 (the broker replaced under the running consumer).
        let other: Vec<_> = (0..8).map(|o| record(0, o, &format!("w{o}"))).collect();
        assert!(matches!(
            check.check(&other),
            Err(LogMismatch::Replaced { offset: 5, .. })
        ));
        // An empty log put in place, then a few new records: judged by the watermarks.
        let mut check = continuity([(0, done(2, Some(&log[1])))]);
        check.check(&log[..6]).unwrap();
        check.handled(&log[..6]);
        check.check(&other[..2]).unwrap();
        assert!(!check.confirmed());
        let two = BTreeMap::from([(0, 2)]);
        for _ in 0..STILL_CHECKS {
            let _ = check.check_end(fresh(&two));
        }
        assert!(matches!(
            check.check_end(fresh(&two)),
            Err(LogMismatch::Shorter {
                end: 2,
                next: 6,
                ..
            })
        ));
    }

    fn watch(expected: Option<&str>) -> ClusterWatch {
        ClusterWatch {
            expected: expected.map(str::to_owned),
            looked_at: Instant::now(),
        }
    }

    #[test]
    fn a_cluster_is_judged_only_when_both_ids_are_known() {
        let ids = |stored: Option<&str>, found: Option<&str>| {
            let mut watch = watch(stored);
            watch
                .observe(found.map(str::to_owned))
                .map(|()| watch.cluster_id().map(str::to_owned))
        };
        assert_eq!(ids(Some("a"), Some("a")), Ok(Some("a".into())));
        assert_eq!(
            ids(None, Some("b")),
            Ok(Some("b".into())),
            "nothing stored: the broker's id is the one to store"
        );
        assert_eq!(
            ids(Some("a"), None),
            Ok(Some("a".into())),
            "a broker that names no cluster is not judged"
        );
        assert_eq!(ids(None, None), Ok(None));
        assert_eq!(
            ids(Some("a"), Some("b")),
            Err(LogMismatch::OtherCluster {
                expected: "a".into(),
                found: "b".into()
            })
        );
    }

    #[test]
    fn a_running_watch_adopts_the_first_id_it_sees_and_holds_to_it() {
        let mut watch = watch(None);
        assert_eq!(watch.observe(None), Ok(()));
        assert_eq!(watch.cluster_id(), None);
        assert_eq!(watch.observe(Some("a".into())), Ok(()), "adopted");
        assert_eq!(watch.observe(Some("a".into())), Ok(()));
        assert_eq!(watch.observe(None), Ok(()));
        assert!(matches!(
            watch.observe(Some("b".into())),
            Err(LogMismatch::OtherCluster { expected, found }) if expected == "a" && found == "b"
        ));
        assert_eq!(watch.cluster_id(), Some("a"), "a mismatch changes nothing");
    }

    #[test]
    fn a_cluster_id_fits_on_a_line() {
        assert!(is_cluster_id("4L6g3nShT-eMCtK--X86sw"));
        assert!(is_cluster_id("tansu_cluster"));
        assert!(is_cluster_id("x y"), "tansu takes spaces");
        for bad in ["", "a\r", "a\nb", "\t"] {
            assert!(!is_cluster_id(bad), "{bad:?}");
        }
    }
}
