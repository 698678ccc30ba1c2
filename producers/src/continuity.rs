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
//! - the broker says the partition ends before it, at three idle checks in a row
//!   ([`LogMismatch::Shorter`]; three, because tansu's high watermark can be below the
//!   true end, while Apache Kafka's is exact).
//!
//! An offset stored without a digest (by a build before this check) is checked for
//! gaps and length only.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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
    /// The partition ends before the stored offset.
    #[error("partition {partition} of {topic} ends at offset {end}, but offsets up to {next} are stored as done: the topic was created again, or this is another cluster's copy")]
    Shorter {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Where the broker says the partition ends.
        end: i64,
        /// The next offset to do, as stored.
        next: i64,
    },
}

/// Idle checks in a row at which the broker must say a partition ends early before
/// [`LogMismatch::Shorter`] is reported.
const SHORT_CHECKS: u32 = 3;

/// The check of [`crate::continuity`](self) for one topic, from a consumer's start
/// until every partition's last done record has come round again.
#[derive(Debug)]
pub struct LogContinuity {
    topic: String,
    /// The partitions still to confirm, with what was stored for them.
    pending: BTreeMap<i32, DoneUpTo>,
    /// Per partition, the offset after the newest record received since the start.
    received: BTreeMap<i32, i64>,
    short_checks: u32,
}

impl LogContinuity {
    /// Starts the check of `topic` against what was stored as done per partition
    /// (partitions with nothing done need none).
    pub fn new(topic: &str, done: BTreeMap<i32, DoneUpTo>) -> Self {
        Self {
            topic: topic.to_owned(),
            pending: done.into_iter().filter(|(_, d)| d.next > 0).collect(),
            received: BTreeMap::new(),
            short_checks: 0,
        }
    }

    /// Whether every partition is confirmed: nothing left to check.
    pub fn confirmed(&self) -> bool {
        self.pending.is_empty()
    }

    /// Checks a batch of records of the topic, in the order received.
    pub fn check(&mut self, records: &[ConsumedRecord]) -> Result<(), LogMismatch> {
        if self.pending.is_empty() {
            return Ok(());
        }
        for record in records.iter().filter(|r| r.topic == self.topic) {
            let received = self.received.entry(record.partition).or_default();
            *received = (*received).max(record.offset + 1);
            let Some(done) = self.pending.get(&record.partition).copied() else {
                continue;
            };
            let last = done.next - 1;
            if record.offset == last {
                if done
                    .last
                    .is_some_and(|digest| digest != record_digest(record))
                {
                    return Err(LogMismatch::Replaced {
                        topic: self.topic.clone(),
                        partition: record.partition,
                        offset: last,
                    });
                }
                self.pending.remove(&record.partition);
            } else if record.offset == done.next {
                // Everything done was deleted (retention), nothing else: nothing to compare.
                self.pending.remove(&record.partition);
            } else if record.offset > done.next {
                return Err(LogMismatch::Gap {
                    topic: self.topic.clone(),
                    partition: record.partition,
                    first: record.offset,
                    next: done.next,
                });
            }
        }
        Ok(())
    }

    /// Checks, when the consumer is idle, the broker's high watermarks (`high`, per
    /// partition; a partition missing from it is not judged): a partition still to
    /// confirm whose watermark is no further than what was received ends before the
    /// stored offset, if the broker says so at [`SHORT_CHECKS`] calls in a row.
    pub fn check_end(&mut self, high: &BTreeMap<i32, i64>) -> Result<(), LogMismatch> {
        let short = self.pending.iter().find_map(|(partition, done)| {
            let received = self.received.get(partition).copied().unwrap_or(0);
            high.get(partition)
                .filter(|high| **high <= received)
                .map(|_| (*partition, received, done.next))
        });
        let Some((partition, end, next)) = short else {
            self.short_checks = 0;
            return Ok(());
        };
        self.short_checks += 1;
        if self.short_checks < SHORT_CHECKS {
            return Ok(());
        }
        Err(LogMismatch::Shorter {
            topic: self.topic.clone(),
            partition,
            end,
            next,
        })
    }
}

/// The broker's high watermarks of some partitions of a topic, asked at most once a
/// second, on a blocking thread. On tansu a watermark can be below the true end of a
/// partition, so it is a lower bound there; on Apache Kafka it is exact.
#[derive(Debug)]
pub struct HighWatermarks {
    topic: &'static str,
    asked_at: Option<Instant>,
    high: BTreeMap<i32, i64>,
}

impl HighWatermarks {
    /// Not asked yet.
    pub fn new(topic: &'static str) -> Self {
        Self {
            topic,
            asked_at: None,
            high: BTreeMap::new(),
        }
    }

    /// The watermarks of `partitions`, asked again if the last answer is a second old.
    /// A failed question leaves none known (logged as a warning).
    pub async fn refresh<C: ConsumerContext + 'static>(
        &mut self,
        consumer: &std::sync::Arc<StreamConsumer<C>>,
        partitions: Vec<i32>,
    ) -> &BTreeMap<i32, i64> {
        if self
            .asked_at
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            self.asked_at = Some(Instant::now());
            let (consumer, topic) = (std::sync::Arc::clone(consumer), self.topic);
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
                Ok(Ok(high)) => high,
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
        &self.high
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

    #[test]
    fn the_same_log_is_confirmed_when_the_last_record_done_comes_round_again() {
        let log: Vec<_> = (0..5).map(|o| record(0, o, &format!("v{o}"))).collect();
        let mut check = LogContinuity::new(
            "t",
            BTreeMap::from([(0, done(3, Some(&log[2]))), (1, done(0, None))]),
        );
        assert!(
            !check.confirmed(),
            "partition 1 has nothing done to confirm"
        );
        check.check(&log[..2]).unwrap();
        assert!(!check.confirmed());
        check.check(&log[2..]).unwrap();
        assert!(check.confirmed());
        // Once confirmed, nothing is judged any more.
        check.check(&[record(0, 2, "other")]).unwrap();
        check.check_end(&BTreeMap::from([(0, 0)])).unwrap();
    }

    #[test]
    fn another_record_where_the_last_one_done_stood_is_a_replaced_log() {
        let mut check = LogContinuity::new(
            "t",
            BTreeMap::from([(2, done(2, Some(&record(2, 1, "v1"))))]),
        );
        let other = [record(2, 0, "v0"), record(2, 1, "w1")];
        assert_eq!(
            check.check(&other),
            Err(LogMismatch::Replaced {
                topic: "t".into(),
                partition: 2,
                offset: 1
            })
        );
        // The same value under another key is another record too.
        let mut check = LogContinuity::new(
            "t",
            BTreeMap::from([(2, done(2, Some(&record(2, 1, "v1"))))]),
        );
        let mut keyed = record(2, 1, "v1");
        keyed.key = Some(b"9990000026".to_vec());
        assert!(matches!(
            check.check(&[keyed]),
            Err(LogMismatch::Replaced { .. })
        ));
        // Records of other topics are not judged.
        let mut check = LogContinuity::new(
            "t",
            BTreeMap::from([(2, done(2, Some(&record(2, 1, "v1"))))]),
        );
        let mut elsewhere = record(2, 1, "w1");
        elsewhere.topic = "u".into();
        check.check(&[elsewhere]).unwrap();
    }

    #[test]
    fn an_offset_stored_without_a_digest_is_confirmed_by_any_record_there() {
        let mut check = LogContinuity::new("t", BTreeMap::from([(0, done(2, None))]));
        check.check(&[record(0, 1, "anything")]).unwrap();
        assert!(check.confirmed());
    }

    #[test]
    fn a_partition_starting_beyond_the_next_offset_is_a_gap_and_at_it_is_not() {
        let stored = || BTreeMap::from([(0, done(4, Some(&record(0, 3, "v3"))))]);
        let mut check = LogContinuity::new("t", stored());
        assert_eq!(
            check.check(&[record(0, 6, "v6")]),
            Err(LogMismatch::Gap {
                topic: "t".into(),
                partition: 0,
                first: 6,
                next: 4
            })
        );
        assert!(LogMismatch::Gap {
            topic: "t".into(),
            partition: 0,
            first: 6,
            next: 4
        }
        .to_string()
        .contains("records 4 to 5 were deleted"));
        // Everything done deleted by retention, the next record first: nothing lost.
        let mut check = LogContinuity::new("t", stored());
        check.check(&[record(0, 4, "v4")]).unwrap();
        assert!(check.confirmed());
    }

    #[test]
    fn a_partition_the_broker_ends_early_at_three_idle_checks_in_a_row_is_shorter() {
        let stored = BTreeMap::from([
            (0, done(10, Some(&record(0, 9, "v9")))),
            (1, done(5, Some(&record(1, 4, "v4")))),
        ]);
        let mut check = LogContinuity::new("t", stored);
        check
            .check(&[record(0, 0, "v0"), record(0, 1, "v1")])
            .unwrap();
        // The broker says partition 0 ends at 2 (what was received), twice, then
        // further on (tansu's watermark moving), then at 2 three times.
        let early = BTreeMap::from([(0, 2)]);
        check.check_end(&early).unwrap();
        check.check_end(&early).unwrap();
        check.check_end(&BTreeMap::from([(0, 3)])).unwrap();
        check.check_end(&early).unwrap();
        check.check_end(&early).unwrap();
        assert_eq!(
            check.check_end(&early),
            Err(LogMismatch::Shorter {
                topic: "t".into(),
                partition: 0,
                end: 2,
                next: 10
            })
        );
        // Unknown watermarks judge nothing, nor does a watermark beyond what was
        // received (a slow first fetch after a start).
        let mut check = LogContinuity::new("t", BTreeMap::from([(1, done(5, None))]));
        for _ in 0..5 {
            check.check_end(&BTreeMap::new()).unwrap();
            check.check_end(&BTreeMap::from([(1, 5)])).unwrap();
        }
        // An empty partition that once held records is shorter.
        let mut check = LogContinuity::new("t", BTreeMap::from([(1, done(5, None))]));
        let empty = BTreeMap::from([(1, 0)]);
        check.check_end(&empty).unwrap();
        check.check_end(&empty).unwrap();
        assert!(matches!(
            check.check_end(&empty),
            Err(LogMismatch::Shorter { end: 0, .. })
        ));
    }
}
