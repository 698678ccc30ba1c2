//! How far behind the log the projection is, per partition, in records and seconds.
//!
//! tansu's high watermark is below the true end of a batched partition, so the end of
//! a partition is taken from what the consumer has *received* (the offset after the
//! newest record it was handed); the broker's watermark is only a lower bound that
//! must be reached before the projection counts as caught up. Lag in records is therefore
//! what has been received but not yet applied; it cannot see records the broker has
//! not delivered yet. The time dimension covers that: the projection is *caught up*
//! when the consumer had nothing more to hand over (a batch closed before it was full,
//! or no record arrived for a while) and had received every partition up to the
//! broker's high watermark (so a slow first fetch after a start does not count), and
//! [`Readiness::seconds_behind`] is the time
//! since then. A clinician reading the projection may be missing events published in
//! those last seconds.
//!
//! The worker keeps a [`Readiness`] in memory for `/ready` and writes it into the
//! `meta` column family (key [`crate::keys::READINESS_KEY`]) with every batch, so the
//! query API, which opens the database as a secondary, reads the same facts through
//! [`crate::ProjectionStore::readiness`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The applied and received offsets of one partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionLag {
    /// The next offset to apply: everything below it is in the projection.
    pub applied: i64,
    /// The offset after the newest record the consumer has received (0 before any).
    pub received: i64,
}

impl PartitionLag {
    /// Records received but not yet applied.
    pub fn records_behind(&self) -> i64 {
        (self.received - self.applied).max(0)
    }
}

/// The projection's progress, as the worker last recorded it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// When (ms since the epoch) the projection last held everything the consumer had
    /// been handed with nothing more waiting; `None` before the first time.
    pub caught_up_at_ms: Option<i64>,
    /// When (ms since the epoch) this was recorded.
    pub updated_at_ms: i64,
    /// Per owned partition, the applied and received offsets.
    pub partitions: BTreeMap<i32, PartitionLag>,
}

impl Readiness {
    /// Seconds since the projection was last caught up (`None` if it never was): it may
    /// be missing events published in that window.
    pub fn seconds_behind(&self, now_ms: i64) -> Option<f64> {
        self.caught_up_at_ms
            .map(|at| (now_ms - at).max(0) as f64 / 1000.0)
    }

    /// Records received but not applied, over all partitions.
    pub fn records_behind(&self) -> i64 {
        self.partitions
            .values()
            .map(PartitionLag::records_behind)
            .sum()
    }

    /// Notes that the consumer handed over records up to `offset` of `partition`.
    pub fn received(&mut self, partition: i32, offset: i64) {
        let lag = self.partitions.entry(partition).or_default();
        lag.received = lag.received.max(offset + 1);
    }

    /// Notes that everything below `next` of `partition` is applied.
    pub fn applied(&mut self, partition: i32, next: i64) {
        let lag = self.partitions.entry(partition).or_default();
        lag.applied = lag.applied.max(next);
        lag.received = lag.received.max(next);
    }

    /// Marks the projection caught up at `now_ms`.
    pub fn caught_up(&mut self, now_ms: i64) {
        self.caught_up_at_ms = Some(now_ms);
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("readiness always serialises")
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_received_but_unapplied_records_and_time_since_caught_up() {
        let mut readiness = Readiness::default();
        readiness.received(0, 9);
        readiness.applied(0, 4);
        readiness.applied(1, 7);
        assert_eq!(readiness.partitions[&0].records_behind(), 6);
        assert_eq!(readiness.partitions[&1].records_behind(), 0);
        assert_eq!(readiness.records_behind(), 6);
        assert_eq!(readiness.seconds_behind(10_000), None);
        readiness.caught_up(8_500);
        assert_eq!(readiness.seconds_behind(10_000), Some(1.5));
        let bytes = readiness.to_bytes();
        assert_eq!(Readiness::from_bytes(&bytes).unwrap(), readiness);
    }
}
