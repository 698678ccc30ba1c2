//! Turning a batch of consumed records into one RocksDB write: the projection's logic.

use std::collections::{HashMap, HashSet};

use rocksdb::WriteBatch;
use spr_producers::consume::{next_offsets, ConsumedRecord};
use spr_schemas::{ClinicalEvent, Payload};

use crate::keys;
use crate::store::{
    ProjectionStore, StoreError, TimelineEntry, CF_CURRENT, CF_EVENTS, CF_META, CF_TIMELINE,
    CURRENT_ALLERGY, CURRENT_LATEST_OBSERVATION, CURRENT_MEDICATION,
};

/// A record that cannot be projected, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The record, with its origin.
    pub record: ConsumedRecord,
    /// Why it was rejected.
    pub reason: String,
}

/// The effects of one batch, ready to be written atomically.
#[derive(Default)]
pub struct BatchOutcome {
    /// Projection effects plus the next offset of every partition in the batch.
    pub batch: WriteBatch,
    /// Events newly projected.
    pub projected: usize,
    /// Events skipped because their event id was already projected.
    pub duplicates: usize,
    /// Records skipped because their offset was already applied (re-read after a restart).
    pub already_applied: usize,
    /// Records to publish to the dead-letter topic before `batch` is written.
    pub dead_letters: Vec<DeadLetter>,
}

impl std::fmt::Debug for BatchOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchOutcome")
            .field("writes", &self.batch.len())
            .field("projected", &self.projected)
            .field("duplicates", &self.duplicates)
            .field("already_applied", &self.already_applied)
            .field("dead_letters", &self.dead_letters)
            .finish()
    }
}

/// Projects `records` (in consumption order) against `store`'s current state.
///
/// Records below a partition's stored next offset were applied by an earlier batch and
/// are skipped (consumers re-read partitions from the start; see the worker).
/// Nothing is written: the caller publishes `dead_letters`, then writes `batch`,
/// whose offsets make the whole batch count as consumed exactly when its effects land.
pub fn project_batch(
    store: &ProjectionStore,
    records: &[ConsumedRecord],
) -> Result<BatchOutcome, StoreError> {
    let mut outcome = BatchOutcome::default();
    let mut seen_in_batch = HashSet::new();
    let mut latest_in_batch: HashMap<Vec<u8>, TimelineEntry> = HashMap::new();
    let mut applied_up_to: HashMap<(&str, i32), i64> = HashMap::new();
    let mut new_records = Vec::with_capacity(records.len());
    for record in records {
        let key = (record.topic.as_str(), record.partition);
        let next = match applied_up_to.get(&key) {
            Some(n) => *n,
            None => *applied_up_to
                .entry(key)
                .or_insert(store.next_offset(key.0, key.1)?.unwrap_or(0)),
        };
        if record.offset < next {
            outcome.already_applied += 1;
        } else {
            new_records.push(record.clone());
        }
    }
    for record in &new_records {
        let event = match decode_record(record) {
            Ok(e) => e,
            Err(reason) => {
                outcome.dead_letters.push(DeadLetter {
                    record: record.clone(),
                    reason,
                });
                continue;
            }
        };
        if !seen_in_batch.insert(event.event_id) || store.contains_event(&event.event_id)? {
            outcome.duplicates += 1;
            continue;
        }
        let payload = record
            .payload
            .as_deref()
            .expect("decoded records have a payload");
        apply_event(
            store,
            &mut outcome.batch,
            &mut latest_in_batch,
            &event,
            payload,
        )?;
        outcome.projected += 1;
    }
    for ((topic, partition), next) in next_offsets(&new_records) {
        store.batch_put(
            &mut outcome.batch,
            CF_META,
            &keys::offset_key(topic, partition),
            &next.to_be_bytes(),
        );
    }
    Ok(outcome)
}

/// Decodes a record, checking that it is keyed by its own NHS number.
fn decode_record(record: &ConsumedRecord) -> Result<ClinicalEvent, String> {
    let payload = record
        .payload
        .as_deref()
        .ok_or("record has no value (tombstone)")?;
    let event = ClinicalEvent::from_avro(payload).map_err(|e| e.to_string())?;
    match record.key.as_deref() {
        Some(key) if key == event.nhs_number.as_str().as_bytes() => Ok(event),
        Some(key) => Err(format!(
            "record key {:?} is not the event's NHS number {}; producers must key by NHS number",
            String::from_utf8_lossy(key),
            event.nhs_number
        )),
        None => Err(format!(
            "record has no key; producers must key by NHS number ({})",
            event.nhs_number
        )),
    }
}

fn apply_event(
    store: &ProjectionStore,
    batch: &mut WriteBatch,
    latest_in_batch: &mut HashMap<Vec<u8>, TimelineEntry>,
    event: &ClinicalEvent,
    payload: &[u8],
) -> Result<(), StoreError> {
    let entry = TimelineEntry::of(event);
    let entry_bytes = entry.to_bytes();
    let nhs = &event.nhs_number;
    store.batch_put(batch, CF_EVENTS, event.event_id.as_bytes(), payload);
    store.batch_put(
        batch,
        CF_TIMELINE,
        &keys::timeline_key(nhs, event.occurred_at, &event.event_id),
        &entry_bytes,
    );
    match &event.payload {
        Payload::Allergy(_) => {
            let key = keys::current_key(nhs, CURRENT_ALLERGY, event.event_id.as_bytes());
            store.batch_put(batch, CF_CURRENT, &key, &entry_bytes);
        }
        Payload::MedicationPrescribed(_) => {
            let key = keys::current_key(nhs, CURRENT_MEDICATION, event.event_id.as_bytes());
            store.batch_put(batch, CF_CURRENT, &key, &entry_bytes);
        }
        Payload::Observation(_) => {
            let code = format!("{}|{}", event.code.system, event.code.code);
            let key = keys::current_key(nhs, CURRENT_LATEST_OBSERVATION, code.as_bytes());
            let previous = match latest_in_batch.get(&key) {
                Some(e) => Some(e.clone()),
                None => store.get_current(&key)?,
            };
            if previous
                .is_none_or(|p| (p.occurred_at, p.event_id) < (entry.occurred_at, entry.event_id))
            {
                store.batch_put(batch, CF_CURRENT, &key, &entry_bytes);
                latest_in_batch.insert(key, entry);
            }
        }
        _ => {}
    }
    Ok(())
}
