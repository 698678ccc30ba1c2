//! The RocksDB projection: column families, reads for the API, and the content digest.
//!
//! | column family | key | value |
//! |---|---|---|
//! | `events` | event id (16 bytes) | the event's Avro single-object bytes, as published |
//! | `timeline` | NHS number, sortable occurred_at, event id | [`TimelineEntry`] JSON |
//! | `current` | NHS number, category byte, discriminator | [`TimelineEntry`] JSON |
//! | `choices` | NHS number, category | the patient's sharing choice (reserved) |
//! | `meta` | `offset/{topic}/{partition}` | next offset to consume, i64 big-endian |

use std::path::Path;

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch,
    WriteOptions, DB,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spr_schemas::{ClinicalEvent, EpochMillis, EventId, EventType, NhsNumber};

use crate::keys;

/// Clinical event bytes by event id.
pub const CF_EVENTS: &str = "events";
/// Per-patient, time-ordered summaries.
pub const CF_TIMELINE: &str = "timeline";
/// Per-patient current state: allergies, medications, latest observations.
pub const CF_CURRENT: &str = "current";
/// Per-patient sharing choices.
pub const CF_CHOICES: &str = "choices";
/// Consumed offsets and bookkeeping.
pub const CF_META: &str = "meta";
const ALL_CFS: [&str; 5] = [CF_EVENTS, CF_TIMELINE, CF_CURRENT, CF_CHOICES, CF_META];
/// The column families that hold projected content (everything but `meta`).
const CONTENT_CFS: [&str; 4] = [CF_EVENTS, CF_TIMELINE, CF_CURRENT, CF_CHOICES];

/// `current` category of an allergy, keyed by event id.
pub const CURRENT_ALLERGY: u8 = b'A';
/// `current` category of a medication, keyed by event id.
pub const CURRENT_MEDICATION: u8 = b'M';
/// `current` category of the latest observation of each code, keyed by code.
pub const CURRENT_LATEST_OBSERVATION: u8 = b'O';

/// A RocksDB failure, or stored bytes that do not parse.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB reported an error.
    #[error("RocksDB at {path}: {source}")]
    Rocks {
        /// Database path.
        path: String,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
    /// A stored value could not be read back: the database is damaged or from another version.
    #[error("stored {what} is unreadable ({detail}); rebuild the projection from the log")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// A timeline cursor that this store did not issue.
    #[error("the cursor is not one this API issued; start again without a cursor")]
    BadCursor,
}

/// What a clinician sees for one event in a timeline or summary: compact, with provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    /// The event's id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
    pub event_id: EventId,
    /// Its type.
    pub event_type: EventType,
    /// Clinical time (ms since epoch).
    pub occurred_at: EpochMillis,
    /// Source record time (ms since epoch).
    pub recorded_at: EpochMillis,
    /// What it is.
    pub code: spr_schemas::Code,
    /// Where it came from.
    pub source: spr_schemas::Source,
    /// Who recorded it.
    pub author: spr_schemas::Author,
    /// Final, amended or entered in error.
    pub status: spr_schemas::Status,
    /// Sensitivity labels.
    pub sensitivity: Vec<String>,
    /// One line of type-specific detail ("72 /min", "One tablet once a day").
    pub detail: String,
}

impl TimelineEntry {
    /// The compact summary of an event.
    pub fn of(event: &ClinicalEvent) -> Self {
        use spr_schemas::Payload;
        let detail = match &event.payload {
            Payload::Allergy(a) => format!(
                "{} ({:?}, {:?})",
                a.reaction.as_deref().unwrap_or("reaction not recorded"),
                a.criticality,
                a.verification
            ),
            Payload::MedicationPrescribed(m) => format!("{} ({:?})", m.dose, m.course),
            Payload::Observation(o) => match (o.value, &o.unit, &o.value_text) {
                (Some(v), unit, _) => format!("{v} {}", unit.as_deref().unwrap_or(""))
                    .trim_end()
                    .to_owned(),
                (None, _, Some(text)) => text.clone(),
                (None, _, None) => "no value".into(),
            },
        };
        Self {
            event_id: event.event_id,
            event_type: event.event_type(),
            occurred_at: event.occurred_at,
            recorded_at: event.recorded_at,
            code: event.code.clone(),
            source: event.source.clone(),
            author: event.author.clone(),
            status: event.status,
            sensitivity: event.sensitivity.clone(),
            detail,
        }
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a TimelineEntry always serialises")
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            what: "timeline entry",
            detail: e.to_string(),
        })
    }
}

/// Where a timeline page ends: the time and event id of its last entry.
/// Clients see it as opaque hex in `next_cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineCursor([u8; keys::TIMELINE_KEY_LEN - 10]);

impl TimelineCursor {
    /// Parses a cursor that [`ProjectionStore::timeline`] issued.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let bytes = hex::decode(text).map_err(|_| StoreError::BadCursor)?;
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| StoreError::BadCursor)
    }
}

/// One page of a patient's timeline, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelinePage {
    /// The entries on this page.
    pub entries: Vec<TimelineEntry>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A patient's current state for the emergency summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PatientSummary {
    /// Recorded allergies and intolerances.
    pub allergies: Vec<TimelineEntry>,
    /// Prescribed medications.
    pub medications: Vec<TimelineEntry>,
    /// The latest observation of each code.
    pub latest_observations: Vec<TimelineEntry>,
}

/// The projection database of one projector instance.
pub struct ProjectionStore {
    db: DB,
    path: String,
    sync_writes: bool,
}

impl std::fmt::Debug for ProjectionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionStore")
            .field("path", &self.path)
            .finish()
    }
}

impl ProjectionStore {
    /// Opens (creating if needed) the primary, writable projection at `path`.
    /// With `sync_writes`, each batch is fsynced before it counts as written.
    pub fn open(path: &Path, sync_writes: bool) -> Result<Self, StoreError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let cfs = ALL_CFS.map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&options, path, cfs).map_err(rocks(path))?;
        Ok(Self {
            db,
            path: path.display().to_string(),
            sync_writes,
        })
    }

    /// Opens a read-only follower of the primary at `primary` (RocksDB secondary
    /// instance, its own files in `secondary`); call [`Self::catch_up`] to see new writes.
    pub fn open_secondary(primary: &Path, secondary: &Path) -> Result<Self, StoreError> {
        let mut options = Options::default();
        options.set_max_open_files(-1);
        let db = DB::open_cf_as_secondary(&options, primary, secondary, ALL_CFS)
            .map_err(rocks(primary))?;
        Ok(Self {
            db,
            path: primary.display().to_string(),
            sync_writes: false,
        })
    }

    /// Brings a secondary up to date with its primary's latest writes.
    pub fn catch_up(&self) -> Result<(), StoreError> {
        self.db
            .try_catch_up_with_primary()
            .map_err(self.rocks_error())
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("every column family is opened")
    }

    fn rocks_error(&self) -> impl Fn(rocksdb::Error) -> StoreError + '_ {
        move |source| StoreError::Rocks {
            path: self.path.clone(),
            source,
        }
    }

    /// The next offset to consume from a partition, if this store has consumed any of it.
    pub fn next_offset(&self, topic: &str, partition: i32) -> Result<Option<i64>, StoreError> {
        let value = self
            .db
            .get_cf(self.cf(CF_META), keys::offset_key(topic, partition))
            .map_err(self.rocks_error())?;
        value
            .map(|v| {
                let bytes: [u8; 8] = v.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                    what: "offset",
                    detail: format!("{} bytes, expected 8", v.len()),
                })?;
                Ok(i64::from_be_bytes(bytes))
            })
            .transpose()
    }

    /// Whether an event with this id has been projected.
    pub fn contains_event(&self, event_id: &EventId) -> Result<bool, StoreError> {
        let found = self
            .db
            .get_pinned_cf(self.cf(CF_EVENTS), event_id.as_bytes())
            .map_err(self.rocks_error())?;
        Ok(found.is_some())
    }

    /// Up to `limit` timeline entries of a patient, oldest first, after `cursor`.
    pub fn timeline(
        &self,
        nhs: &NhsNumber,
        cursor: Option<&TimelineCursor>,
        limit: usize,
    ) -> Result<TimelinePage, StoreError> {
        let prefix = nhs.as_str().as_bytes();
        let start = match cursor {
            Some(c) => {
                let mut key = [prefix, &c.0].concat();
                key.push(0); // the smallest key after the cursor's own
                key
            }
            None => prefix.to_vec(),
        };
        let mut entries = Vec::with_capacity(limit.min(1024));
        let mut last_key = None;
        let mut more = false;
        let iter = self.db.iterator_cf(
            self.cf(CF_TIMELINE),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(self.rocks_error())?;
            if !key.starts_with(prefix) {
                break;
            }
            if entries.len() == limit {
                more = true;
                break;
            }
            entries.push(TimelineEntry::from_bytes(&value)?);
            last_key = Some(key);
        }
        let next_cursor = if more {
            last_key.map(|k| hex::encode(&k[prefix.len()..]))
        } else {
            None
        };
        Ok(TimelinePage {
            entries,
            next_cursor,
        })
    }

    /// The patient's current state.
    pub fn summary(&self, nhs: &NhsNumber) -> Result<PatientSummary, StoreError> {
        let prefix = nhs.as_str().as_bytes();
        let mut summary = PatientSummary {
            allergies: vec![],
            medications: vec![],
            latest_observations: vec![],
        };
        for item in self.db.prefix_iterator_cf(self.cf(CF_CURRENT), prefix) {
            let (key, value) = item.map_err(self.rocks_error())?;
            if !key.starts_with(prefix) {
                break;
            }
            let entry = TimelineEntry::from_bytes(&value)?;
            match key.get(prefix.len()) {
                Some(&CURRENT_ALLERGY) => summary.allergies.push(entry),
                Some(&CURRENT_MEDICATION) => summary.medications.push(entry),
                Some(&CURRENT_LATEST_OBSERVATION) => summary.latest_observations.push(entry),
                _ => {
                    return Err(StoreError::Corrupt {
                        what: "current-state key",
                        detail: format!("{key:?}"),
                    })
                }
            }
        }
        Ok(summary)
    }

    pub(crate) fn get_current(&self, key: &[u8]) -> Result<Option<TimelineEntry>, StoreError> {
        let value = self
            .db
            .get_pinned_cf(self.cf(CF_CURRENT), key)
            .map_err(self.rocks_error())?;
        value.map(|v| TimelineEntry::from_bytes(&v)).transpose()
    }

    pub(crate) fn batch_put(&self, batch: &mut WriteBatch, cf: &str, key: &[u8], value: &[u8]) {
        batch.put_cf(self.cf(cf), key, value);
    }

    /// Applies a batch atomically (effects and offsets together).
    pub fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut options = WriteOptions::default();
        options.set_sync(self.sync_writes);
        self.db
            .write_opt(batch, &options)
            .map_err(self.rocks_error())
    }

    /// SHA-256 over every key and value of the content column families (not `meta`),
    /// in key order: equal digests mean equal projections.
    pub fn content_digest(&self) -> Result<[u8; 32], StoreError> {
        let mut hasher = Sha256::new();
        for name in CONTENT_CFS {
            hasher.update((name.len() as u64).to_be_bytes());
            hasher.update(name.as_bytes());
            for item in self.db.iterator_cf(self.cf(name), IteratorMode::Start) {
                let (key, value) = item.map_err(self.rocks_error())?;
                hasher.update((key.len() as u64).to_be_bytes());
                hasher.update(&key);
                hasher.update((value.len() as u64).to_be_bytes());
                hasher.update(&value);
            }
        }
        Ok(hasher.finalize().into())
    }

    /// How many events are projected.
    pub fn event_count(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for item in self.db.iterator_cf(self.cf(CF_EVENTS), IteratorMode::Start) {
            item.map_err(self.rocks_error())?;
            n += 1;
        }
        Ok(n)
    }
}

fn rocks(path: &Path) -> impl Fn(rocksdb::Error) -> StoreError + '_ {
    move |source| StoreError::Rocks {
        path: path.display().to_string(),
        source,
    }
}
