//! Byte layouts of RocksDB keys. Every key starts with the ten ASCII digits of the
//! NHS number so that one patient's rows are contiguous and range-scannable.

use spr_schemas::{EpochMillis, EventId, NhsNumber};

/// Length of the NHS number that starts every per-patient key.
pub const NHS_NUMBER_LEN: usize = 10;

/// Length of a `timeline` key: NHS number, sortable time, event id.
pub const TIMELINE_KEY_LEN: usize = NHS_NUMBER_LEN + TIME_AND_ID_LEN;

/// Length of the sortable time and event id that end timeline and view keys.
pub const TIME_AND_ID_LEN: usize = 8 + 16;

/// Encodes a signed time so that byte order is numeric order (sign bit flipped, big-endian).
pub fn sortable_time(t: EpochMillis) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverse of [`sortable_time`].
pub fn time_from_sortable(bytes: [u8; 8]) -> EpochMillis {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// `timeline` key: `nhs | occurred_at | event_id`.
pub fn timeline_key(nhs: &NhsNumber, occurred_at: EpochMillis, event_id: &EventId) -> Vec<u8> {
    let mut key = Vec::with_capacity(TIMELINE_KEY_LEN);
    key.extend_from_slice(nhs.as_str().as_bytes());
    key.extend_from_slice(&sortable_time(occurred_at));
    key.extend_from_slice(event_id.as_bytes());
    key
}

/// Current-state view key: `nhs | view | group | 0x00 | occurred_at | event_id`.
/// A view's rows for one patient are contiguous, grouped (by code, episode or
/// organisation) and time-ordered within a group, so reads resolve "latest" by scanning.
pub fn view_key(
    nhs: &NhsNumber,
    view: u8,
    group: &str,
    occurred_at: EpochMillis,
    event_id: &EventId,
) -> Vec<u8> {
    let mut key = view_prefix(nhs, view);
    key.extend_from_slice(group.as_bytes());
    key.push(0);
    key.extend_from_slice(&sortable_time(occurred_at));
    key.extend_from_slice(event_id.as_bytes());
    key
}

/// The prefix of one patient's rows in one view.
pub fn view_prefix(nhs: &NhsNumber, view: u8) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    key.extend_from_slice(nhs.as_str().as_bytes());
    key.push(view);
    key
}

/// Key of the correction (amendment or entered-in-error) that wins for an event:
/// `~ | nhs | event_id`. Corrections only apply within one NHS number.
pub fn correction_key(nhs: &NhsNumber, target: &EventId) -> Vec<u8> {
    let mut key = Vec::with_capacity(27);
    key.push(b'~');
    key.extend_from_slice(nhs.as_str().as_bytes());
    key.extend_from_slice(target.as_bytes());
    key
}

/// The NHS number a `timeline`, `current` or `choices` key belongs to: its first ten
/// bytes, after the `~` of a correction key.
pub fn nhs_of_content_key(key: &[u8]) -> &[u8] {
    let rest = key.strip_prefix(b"~").unwrap_or(key);
    rest.get(..10).unwrap_or(rest)
}

/// `meta` key of the next offset to consume from one partition.
pub fn offset_key(topic: &str, partition: i32) -> Vec<u8> {
    format!("offset/{topic}/{partition:05}").into_bytes()
}

/// `meta` key of the digest of the last record applied from `partition` of `topic`
/// (the record before its stored offset; [`spr_producers::continuity`]).
pub fn last_applied_key(topic: &str, partition: i32) -> Vec<u8> {
    format!("last/{topic}/{partition:05}").into_bytes()
}

/// `meta` key of the projection's [`crate::readiness::Readiness`], as JSON.
pub const READINESS_KEY: &[u8] = b"readiness";
/// `meta` key of the id of the Kafka cluster the stored offsets came from
/// ([`spr_producers::continuity::ClusterWatch`]).
pub const CLUSTER_KEY: &[u8] = b"cluster";
/// Meta key of the storage format ([`crate::store::store_format`]).
pub const FORMAT_KEY: &[u8] = b"format";

/// `meta` key prefix of every stored offset of `topic`.
pub fn offset_prefix(topic: &str) -> Vec<u8> {
    format!("offset/{topic}/").into_bytes()
}

/// The partition a record keyed `key` goes to among `partition_count`, as the
/// producer's default partitioner (librdkafka `consistent_random`) places it:
/// CRC-32 of the key, modulo the count. Every content row starts with the NHS number
/// its record was keyed by, so this says which partition a row came from.
pub fn partition_of(key: &[u8], partition_count: i32) -> i32 {
    (crc32fast::hash(key) % partition_count as u32) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_time_orders_bytes_like_numbers() {
        let times = [i64::MIN, -1_000, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        for pair in times.windows(2) {
            assert!(sortable_time(pair[0]) < sortable_time(pair[1]), "{pair:?}");
            assert_eq!(time_from_sortable(sortable_time(pair[0])), pair[0]);
        }
    }
}
