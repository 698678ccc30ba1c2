//! Turning a batch of consumed records into one RocksDB write: the projection's logic.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use rocksdb::WriteBatch;
use spr_producers::consume::ConsumedRecord;
use spr_producers::continuity::done_by;
use spr_schemas::ClinicalEvent;

use crate::keys;
use crate::store::{
    projected_event, stands, ProjectionStore, StoreError, Supersession, TimelineEntry, CF_CURRENT,
    CF_EVENTS, CF_META, CF_TIMELINE,
};
use crate::views::{rows_of, stored_event};

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
    project(store, records, &[])
}

/// [`project_batch`] over records whose events were decoded ahead ([`DecodedBatch`]).
pub fn project_decoded(
    store: &ProjectionStore,
    batch: &DecodedBatch,
) -> Result<BatchOutcome, StoreError> {
    project(store, &batch.records, &batch.events)
}

/// Consumed records with their events decoded, so that decoding (about a quarter of
/// the projector's work) can run on another thread while the previous batch is
/// projected and written.
#[derive(Debug)]
pub struct DecodedBatch {
    records: Vec<ConsumedRecord>,
    /// The decoded event (or why it is a dead letter) of each record at the same index;
    /// `None` for a record the store had already applied when it was decoded.
    events: Vec<Option<Result<ClinicalEvent, String>>>,
}

impl DecodedBatch {
    /// Decodes each record that `store` has not applied yet. The offsets read here
    /// only save work: projecting decides again against the offsets it reads itself,
    /// and decodes any record that was skipped here. Should reading them fail, the
    /// record is decoded anyway, and projecting meets the failure (and retries).
    pub fn decode(store: &ProjectionStore, records: Vec<ConsumedRecord>) -> Self {
        let mut applied = AppliedOffsets::default();
        let mut events = Vec::with_capacity(records.len());
        for record in &records {
            let skip = applied.contains(store, record).unwrap_or(false);
            events.push((!skip).then(|| decode_record(record)));
        }
        Self { records, events }
    }

    /// The records, in consumption order.
    pub fn records(&self) -> &[ConsumedRecord] {
        &self.records
    }
}

/// Each partition's next offset to apply as stored, read once per batch.
#[derive(Default)]
struct AppliedOffsets<'r>(HashMap<(&'r str, i32), i64>);

impl<'r> AppliedOffsets<'r> {
    /// Whether `record` was applied by an earlier batch.
    fn contains(
        &mut self,
        store: &ProjectionStore,
        record: &'r ConsumedRecord,
    ) -> Result<bool, StoreError> {
        let next = match self.0.entry((record.topic.as_str(), record.partition)) {
            Entry::Occupied(next) => *next.get(),
            Entry::Vacant(slot) => {
                let (topic, partition) = *slot.key();
                *slot.insert(store.next_offset(topic, partition)?.unwrap_or(0))
            }
        };
        Ok(record.offset < next)
    }
}

/// Projects `records`, taking each one's event from `decoded` (same index) where it
/// was decoded ahead and decoding it here otherwise.
fn project(
    store: &ProjectionStore,
    records: &[ConsumedRecord],
    decoded: &[Option<Result<ClinicalEvent, String>>],
) -> Result<BatchOutcome, StoreError> {
    let mut outcome = BatchOutcome::default();
    let mut applied = AppliedOffsets::default();
    let mut new_records = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        if applied.contains(store, record)? {
            outcome.already_applied += 1;
        } else {
            new_records.push((i, record));
        }
    }
    let mut staged = Staged::new(store);
    for &(i, record) in &new_records {
        let event = match decoded.get(i) {
            Some(Some(Ok(event))) => Ok(Cow::Borrowed(event)),
            Some(Some(Err(reason))) => Err(reason.clone()),
            Some(None) | None => decode_record(record).map(Cow::Owned),
        };
        let event = match event {
            Ok(e) => e,
            Err(reason) => {
                outcome.dead_letters.push(DeadLetter {
                    record: record.clone(),
                    reason,
                });
                continue;
            }
        };
        if staged.get(CF_EVENTS, event.event_id.as_bytes())?.is_some() {
            outcome.duplicates += 1;
            continue;
        }
        let payload = record
            .payload
            .as_deref()
            .expect("decoded records have a payload");
        apply_event(&mut staged, &event, payload)?;
        outcome.projected += 1;
    }
    outcome.batch = staged.into_batch();
    for ((topic, partition), done) in done_by(new_records.iter().map(|(_, r)| *r)) {
        store.batch_put(
            &mut outcome.batch,
            CF_META,
            &keys::offset_key(topic, partition),
            &done.next.to_be_bytes(),
        );
        if let Some(digest) = done.last {
            let key = keys::last_applied_key(topic, partition);
            store.batch_put(&mut outcome.batch, CF_META, &key, &digest);
        }
    }
    Ok(outcome)
}

/// The writes of a batch, readable so that later events in a batch see the effects of
/// earlier ones. Kept in key order and written in that order: RocksDB inserts sorted
/// keys into its memtable much faster than the random order of event ids, and the last
/// write of a key is the only one that reaches the batch.
/// Values borrow the consumed records' bytes where they can (`'r`).
struct Staged<'s, 'r> {
    store: &'s ProjectionStore,
    writes: BTreeMap<StagedKey, Option<Cow<'r, [u8]>>>,
}

/// A column family and a key in it.
type StagedKey = (&'static str, Vec<u8>);

impl<'s, 'r> Staged<'s, 'r> {
    fn new(store: &'s ProjectionStore) -> Self {
        Self {
            store,
            writes: BTreeMap::new(),
        }
    }

    fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.writes.get(&(cf, key.to_vec())) {
            Some(value) => Ok(value.as_deref().map(<[u8]>::to_vec)),
            None => self.store.get(cf, key),
        }
    }

    fn put(&mut self, cf: &'static str, key: Vec<u8>, value: impl Into<Cow<'r, [u8]>>) {
        self.writes.insert((cf, key), Some(value.into()));
    }

    fn delete(&mut self, cf: &'static str, key: Vec<u8>) {
        self.writes.insert((cf, key), None);
    }

    /// The writes as one RocksDB batch, in key order within each column family.
    fn into_batch(self) -> WriteBatch {
        let mut batch = WriteBatch::default();
        for ((cf, key), value) in self.writes {
            match value {
                Some(value) => self.store.batch_put(&mut batch, cf, &key, &value),
                None => self.store.batch_delete(&mut batch, cf, &key),
            }
        }
        batch
    }
}

/// Decodes a record, checking that it is keyed by its own NHS number.
pub(crate) fn decode_record(record: &ConsumedRecord) -> Result<ClinicalEvent, String> {
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

/// Applies one new event. The result does not depend on the order in which an event
/// and its corrections arrive: the winning correction of each event is recorded under
/// the event's id, an event that arrives already corrected is filed as superseded, and
/// a correction that arrives later re-files the event it corrects.
fn apply_event<'r>(
    staged: &mut Staged<'_, 'r>,
    event: &ClinicalEvent,
    bytes: &'r [u8],
) -> Result<(), StoreError> {
    let nhs = &event.nhs_number;
    staged.put(CF_EVENTS, event.event_id.as_bytes().to_vec(), bytes);
    let correction = read_correction(staged, &keys::correction_key(nhs, &event.event_id))?;
    if stands(event.status, correction.as_ref()) {
        let rows = rows_of(event);
        if !rows.is_empty() {
            let stored = stored_event(event);
            for (cf, key) in rows {
                staged.put(cf, key, stored.clone());
            }
        }
    }
    staged.put(
        CF_TIMELINE,
        keys::timeline_key(nhs, event.occurred_at, &event.event_id),
        TimelineEntry::stored(event, correction),
    );
    if let Some((target, supersession)) = Supersession::by(event) {
        let key = keys::correction_key(nhs, &target);
        if read_correction(staged, &key)?.is_none_or(|current| supersession.wins_over(&current)) {
            staged.put(CF_CURRENT, key, supersession.to_bytes());
            refile_corrected(staged, nhs, &target, supersession)?;
        }
    }
    Ok(())
}

fn read_correction(
    staged: &Staged<'_, '_>,
    key: &[u8],
) -> Result<Option<Supersession>, StoreError> {
    staged
        .get(CF_CURRENT, key)?
        .map(|v| Supersession::from_bytes(&v))
        .transpose()
}

/// Marks an already projected event of the same patient as superseded and takes it
/// out of the current-state views. An event not yet projected is marked when it arrives.
fn refile_corrected(
    staged: &mut Staged<'_, '_>,
    nhs: &spr_schemas::NhsNumber,
    target: &spr_schemas::EventId,
    supersession: Supersession,
) -> Result<(), StoreError> {
    let Some(bytes) = staged.get(CF_EVENTS, target.as_bytes())? else {
        return Ok(());
    };
    let corrected = projected_event(&bytes)?;
    if corrected.nhs_number != *nhs {
        return Ok(()); // corrections apply within one NHS number only
    }
    for (cf, key) in rows_of(&corrected) {
        staged.delete(cf, key);
    }
    staged.put(
        CF_TIMELINE,
        keys::timeline_key(nhs, corrected.occurred_at, target),
        TimelineEntry::stored(&corrected, Some(supersession)),
    );
    Ok(())
}
