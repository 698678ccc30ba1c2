//! The RocksDB projection: column families, reads for the API, and the content digest.
//!
//! | column family | key | value |
//! |---|---|---|
//! | `events` | event id (16 bytes) | the event's Avro single-object bytes, as published |
//! | `timeline` | NHS number, sortable occurred_at, event id | [`TimelineEntry`], postcard |
//! | `current` | NHS number, view byte, group, sortable occurred_at, event id ([`crate::views`]) | the event, postcard ([`crate::views`]) |
//! | `current` | `~`, NHS number, event id ([`keys::correction_key`]) | the winning [`Supersession`], postcard |
//! | `choices` | NHS number, `C`, category, sortable occurred_at, event id | the consent-choice event, postcard |
//! | `meta` | `offset/{topic}/{partition}` | next offset to consume, i64 big-endian |
//! | `meta` | `last/{topic}/{partition}` | SHA-256 of the key and value of the record before that offset ([`spr_producers::continuity`]) |
//! | `meta` | `readiness` | [`Readiness`] JSON: applied and received offsets, when last caught up |
//! | `meta` | `format` | the storage format and event schema, [`store_format`] |

use std::collections::BTreeMap;
use std::path::Path;

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, IteratorMode, Options, WriteBatch, WriteOptions, DB,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spr_producers::continuity::DoneUpTo;
use spr_schemas::{
    Author, ClinicalEvent, Code, EpochMillis, EventId, EventType, NhsNumber, Source, Status,
};

use crate::keys;
use crate::readiness::Readiness;

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
/// The column families whose keys start with an NHS number (after the `~` of a
/// correction key): their filters also hold each key's first ten bytes.
const PATIENT_CFS: [&str; 3] = [CF_TIMELINE, CF_CURRENT, CF_CHOICES];
/// How many rows of one group [`ProjectionStore::last_of_each_group`] walks through
/// before it seeks to the group's end instead.
const SHORT_GROUP: usize = 8;

/// The storage format this build reads and writes. 1 stored timeline entries and
/// corrections as JSON; 2 stores them as postcard (a third of the size, several times
/// faster to read back); 3 writes a timeline entry's own event id and the id it amends
/// as 16 bytes instead of text, and filters the patients' column families by NHS
/// number; 4 stores view rows as postcard instead of the event's Avro bytes, and the
/// id of a correction (in a timeline row and in a correction row) as 16 bytes. A
/// projection in another format is rebuilt from the log.
pub const STORE_FORMAT: &str = "5";

/// What the projection records as its format: [`STORE_FORMAT`] and the clinical-event
/// schema its postcard rows follow (`4 clinical_event.v2.avsc`). Postcard is not
/// self-describing, so rows written before an event schema changed cannot be read after
/// it: a new schema version means a rebuild, said at open rather than found at read.
pub fn store_format() -> String {
    let schema = spr_schemas::SchemaCatalogue::global().current(ClinicalEvent::AVRO_RECORD);
    format!("{STORE_FORMAT} {}", schema.file)
}

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
    /// The projection was written by a build with another storage format.
    #[error("the projection at {path} is in storage format {found}, this build reads format {expected}; rebuild it from the log (`spr-projector rebuild --db NEW`) and use NEW")]
    Format {
        /// Database path.
        path: String,
        /// The format found.
        found: String,
        /// The format this build reads ([`store_format`]).
        expected: String,
    },
    /// A timeline cursor that this store did not issue.
    #[error("the cursor is not one this API issued; start again without a cursor")]
    BadCursor,
    /// A checkpoint was asked for inside the database's own directory.
    #[error("the checkpoint {out} would be inside the projection {db}; write it beside the projection instead")]
    CheckpointInside {
        /// The checkpoint asked for.
        out: String,
        /// The projection.
        db: String,
    },
    /// A directory that holds no projection was opened as an existing one.
    #[error("{path} is not a projection ({detail}); pass the --db of a projector, or build one with `spr-projector rebuild --db NEW`")]
    NotAProjection {
        /// The directory.
        path: String,
        /// What is missing.
        detail: String,
    },
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
    /// The event this one amends or withdraws.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = "uuid"))]
    pub supersedes: Option<EventId>,
    /// The encounter this fact belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encounter_id: Option<String>,
    /// Set when a later event amended or withdrew this one: it no longer stands,
    /// and is kept for audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<Supersession>,
}

/// The correction that replaced or withdrew an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Supersession {
    /// The correcting event.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
    pub event_id: EventId,
    /// `AMENDED` (replaced) or `ENTERED_IN_ERROR` (withdrawn).
    pub status: spr_schemas::Status,
    /// When the correction was recorded; the latest correction of an event wins.
    pub recorded_at: EpochMillis,
}

impl Supersession {
    /// The correction `event` makes, if it corrects anything.
    pub fn by(event: &ClinicalEvent) -> Option<(EventId, Self)> {
        event.supersedes.map(|target| {
            (
                target,
                Self {
                    event_id: event.event_id,
                    status: event.status,
                    recorded_at: event.recorded_at,
                },
            )
        })
    }

    /// The stored form (postcard of [`Self::stored`]).
    pub(crate) fn to_bytes(self) -> Vec<u8> {
        postcard::to_stdvec(&self.stored()).expect("a Supersession always serialises")
    }

    /// Its fields in stored order, the id as its 16 bytes.
    fn stored(self) -> StoredSupersession {
        (*self.event_id.as_bytes(), self.status, self.recorded_at)
    }

    fn from_stored((id, status, recorded_at): StoredSupersession) -> Self {
        Self {
            event_id: EventId::from_bytes(id),
            status,
            recorded_at,
        }
    }

    /// Reads the stored form back.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        from_postcard(bytes, "correction").map(Self::from_stored)
    }

    /// Whether this correction wins over `other` (the later record wins; ties by id).
    pub fn wins_over(&self, other: &Self) -> bool {
        (self.recorded_at, self.event_id) > (other.recorded_at, other.event_id)
    }
}

impl TimelineEntry {
    /// The compact summary of an event.
    pub fn of(event: &ClinicalEvent) -> Self {
        let detail = crate::detail::detail_line(&event.payload);
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
            supersedes: event.supersedes,
            encounter_id: event.encounter_id.clone(),
            superseded_by: None,
        }
    }

    /// Whether the event still stands (not amended or withdrawn by a later one, and
    /// not itself a withdrawal).
    pub fn stands(&self) -> bool {
        stands(self.status, self.superseded_by.as_ref())
    }

    /// The stored form of `event`'s entry ([`Self::of`] with `superseded_by`), written
    /// straight from the event: postcard over the fields in order, each present
    /// (postcard is not self-describing, so the fields the JSON form omits when empty
    /// are kept).
    pub(crate) fn stored(event: &ClinicalEvent, superseded_by: Option<Supersession>) -> Vec<u8> {
        postcard::to_stdvec(&(
            event.event_id.as_bytes(),
            event.event_type(),
            event.occurred_at,
            event.recorded_at,
            &event.code,
            &event.source,
            &event.author,
            event.status,
            &event.sensitivity,
            crate::detail::detail_line(&event.payload),
            event.supersedes.as_ref().map(EventId::as_bytes),
            &event.encounter_id,
            superseded_by.map(Supersession::stored),
        ))
        .expect("a TimelineEntry always serialises")
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        let stored: StoredEntry = from_postcard(bytes, "timeline entry")?;
        Ok(Self {
            event_id: EventId::from_bytes(stored.0),
            event_type: stored.1,
            occurred_at: stored.2,
            recorded_at: stored.3,
            code: stored.4,
            source: stored.5,
            author: stored.6,
            status: stored.7,
            sensitivity: stored.8,
            detail: stored.9,
            supersedes: stored.10.map(EventId::from_bytes),
            encounter_id: stored.11,
            superseded_by: stored.12.map(Supersession::from_stored),
        })
    }
}

/// Whether an event with `status`, corrected by `superseded_by`, still stands.
pub(crate) fn stands(status: spr_schemas::Status, superseded_by: Option<&Supersession>) -> bool {
    superseded_by.is_none() && status != spr_schemas::Status::EnteredInError
}

/// [`TimelineEntry`]'s fields in stored order; event ids as their 16 bytes.
type StoredEntry = (
    [u8; 16],
    EventType,
    EpochMillis,
    EpochMillis,
    Code,
    Source,
    Author,
    Status,
    Vec<String>,
    String,
    Option<[u8; 16]>,
    Option<String>,
    Option<StoredSupersession>,
);

/// [`Supersession`]'s fields in stored order: the correcting event's id as its 16
/// bytes, its status, when it was recorded.
type StoredSupersession = ([u8; 16], Status, EpochMillis);

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

/// How many timeline entries one page may examine per NHS number.
pub const SCAN_BUDGET: usize = 10_000;

/// An inclusive range of clinical time; `None` leaves that end open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Earliest `occurred_at`.
    pub from: Option<EpochMillis>,
    /// Latest `occurred_at`.
    pub to: Option<EpochMillis>,
}

impl TimeRange {
    /// No bounds.
    pub const ALL: TimeRange = TimeRange {
        from: None,
        to: None,
    };
}

/// The greatest key tail below `tail` of the same length (the cursor after which `tail`
/// is the next key).
fn previous_key(tail: &[u8]) -> Vec<u8> {
    let mut key = tail.to_vec();
    for byte in key.iter_mut().rev() {
        if *byte > 0 {
            *byte -= 1;
            break;
        }
        *byte = 0xff;
    }
    key
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
        Self::open_primary(path, sync_writes, true)
    }

    /// Opens the primary of a projection that must already exist (for commands that
    /// read or copy one): refuses a directory with no projection in it rather than
    /// creating one there.
    pub fn open_existing(path: &Path) -> Result<Self, StoreError> {
        let not_a_projection = |detail: &str| StoreError::NotAProjection {
            path: path.display().to_string(),
            detail: detail.to_owned(),
        };
        require_database(path)?;
        let store = Self::open_primary(path, false, false).map_err(|e| match e {
            StoreError::Rocks { source, .. } if source.to_string().contains("Column family not found") => {
                not_a_projection("a RocksDB database without the projection's column families; if it is an old projection, rebuild it from the log")
            }
            other => other,
        })?;
        if !store.check_format()? {
            return Err(not_a_projection(
                "a RocksDB database with no projection in it",
            ));
        }
        Ok(store)
    }

    fn open_primary(path: &Path, sync_writes: bool, create: bool) -> Result<Self, StoreError> {
        let mut options = Options::default();
        options.create_if_missing(create);
        options.create_missing_column_families(create);
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let cfs = ALL_CFS
            .map(|name| ColumnFamilyDescriptor::new(name, column_family_options(name, None)));
        let db = DB::open_cf_descriptors(&options, path, cfs).map_err(rocks(path))?;
        let store = Self {
            db,
            path: path.display().to_string(),
            sync_writes,
        };
        if create && !store.check_format()? {
            store
                .db
                .put_cf(store.cf(CF_META), keys::FORMAT_KEY, store_format())
                .map_err(store.rocks_error())?;
        }
        Ok(store)
    }

    /// Refuses a projection in another storage format. True when the format is
    /// recorded, false for an empty projection that records none yet.
    fn check_format(&self) -> Result<bool, StoreError> {
        let meta = self.cf(CF_META);
        let found = match self.db.get_cf(meta, keys::FORMAT_KEY) {
            Ok(Some(found)) => String::from_utf8_lossy(&found).into_owned(),
            Ok(None) => {
                // Format 1 recorded nothing: any bookkeeping at all means format 1.
                let mut rows = self.db.iterator_cf(meta, IteratorMode::Start);
                match rows.next() {
                    None => return Ok(false),
                    Some(_) => "1".to_owned(),
                }
            }
            Err(source) => return Err(self.rocks_error()(source)),
        };
        let expected = store_format();
        if found == expected {
            Ok(true)
        } else {
            Err(StoreError::Format {
                path: self.path.clone(),
                found,
                expected,
            })
        }
    }

    /// Opens a read-only follower of the primary at `primary` (RocksDB secondary
    /// instance, its own files in `secondary`); call [`Self::catch_up`] to see new writes.
    /// Uncompressed blocks it reads stay in a cache of `block_cache_bytes`, shared by
    /// the column families: a reader serving clinicians wants its hot timelines there.
    pub fn open_secondary(
        primary: &Path,
        secondary: &Path,
        block_cache_bytes: usize,
    ) -> Result<Self, StoreError> {
        require_database(primary)?;
        let mut options = Options::default();
        options.set_max_open_files(-1);
        let cache = rocksdb::Cache::new_hyper_clock_cache(block_cache_bytes, 0);
        let cfs = ALL_CFS.map(|name| {
            ColumnFamilyDescriptor::new(name, column_family_options(name, Some(&cache)))
        });
        let db = DB::open_cf_descriptors_as_secondary(&options, primary, secondary, cfs)
            .map_err(rocks(primary))?;
        let store = Self {
            db,
            path: primary.display().to_string(),
            sync_writes: false,
        };
        store.check_format()?;
        Ok(store)
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

    /// Every row of one column family, in key order: read past the filters by NHS
    /// number, which only answer for one patient's keys.
    fn every_row(&self, name: &str) -> rocksdb::DBIteratorWithThreadMode<'_, DB> {
        let mut options = rocksdb::ReadOptions::default();
        options.set_total_order_seek(true);
        self.db
            .iterator_cf_opt(self.cf(name), options, IteratorMode::Start)
    }

    fn rocks_error(&self) -> impl Fn(rocksdb::Error) -> StoreError + '_ {
        move |source| StoreError::Rocks {
            path: self.path.clone(),
            source,
        }
    }

    /// The next offset to consume from a partition, if this store has consumed any of it.
    pub fn next_offset(&self, topic: &str, partition: i32) -> Result<Option<i64>, StoreError> {
        self.meta_value(&keys::offset_key(topic, partition), "offset", |v| {
            let bytes: [u8; 8] = v
                .try_into()
                .map_err(|_| format!("{} bytes, expected 8", v.len()))?;
            Ok(i64::from_be_bytes(bytes))
        })
    }

    /// One `meta` value, read by `parse` (whose error makes it [`StoreError::Corrupt`]
    /// `what`), if stored.
    fn meta_value<T>(
        &self,
        key: &[u8],
        what: &'static str,
        parse: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Result<Option<T>, StoreError> {
        let value = self
            .db
            .get_pinned_cf(self.cf(CF_META), key)
            .map_err(self.rocks_error())?;
        value
            .map(|v| parse(&v).map_err(|detail| StoreError::Corrupt { what, detail }))
            .transpose()
    }

    /// The id of the Kafka cluster the stored offsets came from, if recorded (a
    /// projection written before it was kept has none).
    pub fn cluster_id(&self) -> Result<Option<String>, StoreError> {
        self.meta_value(keys::CLUSTER_KEY, "cluster id", |v| {
            String::from_utf8(v.to_vec()).map_err(|e| e.to_string())
        })
    }

    /// Records the id of the Kafka cluster the offsets come from.
    pub fn record_cluster_id(&self, id: &str) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        self.batch_put(&mut batch, CF_META, keys::CLUSTER_KEY, id.as_bytes());
        self.write(batch)
    }

    /// What is applied of each of `partitions` of `topic`: the next offset and the
    /// digest of the record before it, for checking at a start that the log is the one
    /// projected ([`spr_producers::continuity`]). Partitions with no stored offset are
    /// left out; a digest is missing where a build before the check stored the offset.
    pub fn applied_up_to(
        &self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, DoneUpTo>, StoreError> {
        let mut applied = BTreeMap::new();
        for &partition in partitions {
            let Some(next) = self.next_offset(topic, partition)? else {
                continue;
            };
            let key = keys::last_applied_key(topic, partition);
            let last = self.meta_value(&key, "last applied record's digest", |digest| {
                digest
                    .try_into()
                    .map_err(|_| format!("{} bytes, expected 32", digest.len()))
            })?;
            applied.insert(partition, DoneUpTo { next, last });
        }
        Ok(applied)
    }

    /// Whether an event with this id has been projected.
    pub fn contains_event(&self, event_id: &EventId) -> Result<bool, StoreError> {
        let found = self
            .db
            .get_pinned_cf(self.cf(CF_EVENTS), event_id.as_bytes())
            .map_err(self.rocks_error())?;
        Ok(found.is_some())
    }

    /// Up to `limit` timeline entries of one NHS number, oldest first, after `cursor`.
    pub fn timeline(
        &self,
        nhs: &NhsNumber,
        cursor: Option<&TimelineCursor>,
        limit: usize,
    ) -> Result<TimelinePage, StoreError> {
        self.record_timeline(std::slice::from_ref(nhs), cursor, limit)
    }

    /// Up to `limit` timeline entries of a record, oldest first, after `cursor`. A record
    /// is one or more NHS numbers (a surviving number and those merged into it); their
    /// timelines are merged in (occurred_at, event id) order.
    pub fn record_timeline(
        &self,
        numbers: &[NhsNumber],
        cursor: Option<&TimelineCursor>,
        limit: usize,
    ) -> Result<TimelinePage, StoreError> {
        self.record_timeline_where(numbers, cursor, TimeRange::ALL, limit, |_| true)
    }

    /// Like [`Self::record_timeline`], keeping only entries in `range` for which `keep`
    /// holds. At most [`SCAN_BUDGET`] entries per number are examined for one page, so a
    /// page of a sparse filter may be short; its `next_cursor` continues the scan.
    pub fn record_timeline_where(
        &self,
        numbers: &[NhsNumber],
        cursor: Option<&TimelineCursor>,
        range: TimeRange,
        limit: usize,
        keep: impl Fn(&TimelineEntry) -> bool,
    ) -> Result<TimelinePage, StoreError> {
        type Tail = [u8; keys::TIME_AND_ID_LEN];
        let mut rows: Vec<(Tail, TimelineEntry)> = Vec::with_capacity(limit.min(512) + 1);
        // The scan of a number that ran out of budget stopped here: nothing after it is known.
        let mut scanned_to: Option<Tail> = None;
        let from = keys::sortable_time(range.from.unwrap_or(EpochMillis::MIN));
        for nhs in numbers {
            let prefix = nhs.as_str().as_bytes();
            let mut start = [prefix, &from[..]].concat();
            if let Some(c) = cursor {
                let mut after = [prefix, &c.0].concat();
                after.push(0); // the smallest key after the cursor's own
                start = start.max(after);
            }
            let mut iter = self
                .db
                .raw_iterator_cf_opt(self.cf(CF_TIMELINE), within(prefix));
            iter.seek(&start);
            let (mut matched, mut examined) = (0, 0);
            while let Some((key, value)) = row_under(&iter, prefix) {
                let tail: Tail =
                    key[prefix.len()..]
                        .try_into()
                        .map_err(|_| StoreError::Corrupt {
                            what: "timeline key",
                            detail: format!("{key:02x?} is not {} bytes", keys::TIMELINE_KEY_LEN),
                        })?;
                let time = keys::time_from_sortable(tail[..8].try_into().expect("8 bytes"));
                if range.to.is_some_and(|to| time > to) || matched > limit {
                    break;
                }
                if examined == SCAN_BUDGET {
                    scanned_to = scanned_to.min(Some(tail)).or(Some(tail));
                    break;
                }
                examined += 1;
                let entry = TimelineEntry::from_bytes(value)?;
                if keep(&entry) {
                    rows.push((tail, entry));
                    matched += 1;
                }
                iter.next();
            }
            iter.status().map_err(self.rocks_error())?;
        }
        rows.sort_by_key(|row| row.0);
        if let Some(stop) = &scanned_to {
            rows.retain(|(tail, _)| tail < stop);
        }
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|(tail, _)| hex::encode(tail))
        } else {
            // Resume just before the first unexamined key of a number that ran out of budget.
            scanned_to.map(|stop| hex::encode(previous_key(&stop)))
        };
        Ok(TimelinePage {
            entries: rows.into_iter().map(|(_, e)| e).collect(),
            next_cursor,
        })
    }

    /// The projected events with these ids, in the same order (ids not projected are skipped).
    pub fn events(&self, ids: &[EventId]) -> Result<Vec<ClinicalEvent>, StoreError> {
        let cf = self.cf(CF_EVENTS);
        let found = self
            .db
            .multi_get_cf(ids.iter().map(|id| (cf, id.as_bytes())));
        let mut events = Vec::with_capacity(ids.len());
        for value in found {
            if let Some(bytes) = value.map_err(self.rocks_error())? {
                events.push(projected_event(&bytes)?);
            }
        }
        Ok(events)
    }

    /// Calls `row` on every key and value under `prefix` in one column family, in key order.
    pub(crate) fn scan_prefix<T>(
        &self,
        cf: &str,
        prefix: &[u8],
        mut row: impl FnMut(&[u8], &[u8]) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut rows = self.db.raw_iterator_cf_opt(self.cf(cf), within(prefix));
        rows.seek(prefix);
        while let Some((key, value)) = row_under(&rows, prefix) {
            out.push(row(key, value)?);
            rows.next();
        }
        rows.status().map_err(self.rocks_error())?;
        Ok(out)
    }

    /// Calls `row` on the last row of each group under `prefix`, in key order, where
    /// keys are `prefix | group | 0 | suffix` with a suffix of `suffix_len` bytes. A
    /// group is walked row by row up to [`SHORT_GROUP`] rows (a step costs a fraction of
    /// a seek); from the row after those, two seeks cross it, however long it is.
    pub(crate) fn last_of_each_group<T>(
        &self,
        cf: &str,
        prefix: &[u8],
        suffix_len: usize,
        mut row: impl FnMut(&[u8], &[u8]) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        // The last row seen of the current group; the iterator's slices do not outlive a step.
        let mut last = RowCopy::default();
        let mut rows = self.db.raw_iterator_cf_opt(self.cf(cf), within(prefix));
        rows.seek(prefix);
        while let Some((key, value)) = row_under(&rows, prefix) {
            // `prefix | group | 0`: what every key of this group starts with.
            let group_end = key.len().saturating_sub(suffix_len);
            if group_end <= prefix.len() || key[group_end - 1] != 0 {
                return Err(StoreError::Corrupt {
                    what: "view key",
                    detail: format!("{key:02x?} has no group separator"),
                });
            }
            let group = key[..group_end].to_vec();
            last.copy_from(key, value);
            let mut walked = 1;
            loop {
                rows.next();
                match row_under(&rows, prefix) {
                    Some((key, value)) if key.starts_with(&group) && walked < SHORT_GROUP => {
                        last.copy_from(key, value);
                        walked += 1;
                    }
                    Some((key, _)) if key.starts_with(&group) => {
                        // A long group: its last row is just before the smallest key
                        // after it, `group | 0` with the 0 raised to 1.
                        let mut after_group = group;
                        after_group[group_end - 1] = 1;
                        rows.seek_for_prev(&after_group);
                        rows.status().map_err(self.rocks_error())?;
                        let (key, value) =
                            row_under(&rows, prefix).ok_or_else(|| StoreError::Corrupt {
                                what: "view key",
                                detail: format!(
                                    "no last row before {after_group:02x?}, where rows were read"
                                ),
                            })?;
                        last.copy_from(key, value);
                        rows.seek(&after_group);
                        break;
                    }
                    _ => break, // the next group's first row, or the end
                }
            }
            out.push(row(&last.key, &last.value)?);
        }
        rows.status().map_err(self.rocks_error())?;
        Ok(out)
    }

    /// One value, by column family and key.
    pub(crate) fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get_cf(self.cf(cf), key).map_err(self.rocks_error())
    }

    pub(crate) fn batch_put(&self, batch: &mut WriteBatch, cf: &str, key: &[u8], value: &[u8]) {
        batch.put_cf(self.cf(cf), key, value);
    }

    pub(crate) fn batch_delete(&self, batch: &mut WriteBatch, cf: &str, key: &[u8]) {
        batch.delete_cf(self.cf(cf), key);
    }

    /// Applies a batch atomically (effects and offsets together).
    pub fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut options = WriteOptions::default();
        options.set_sync(self.sync_writes);
        self.db
            .write_opt(batch, &options)
            .map_err(self.rocks_error())
    }

    /// Applies a batch atomically without waiting for the disk: readable at once, durable
    /// after the next [`Self::sync_wal`] (or a synced write). After a crash before that,
    /// RocksDB recovers to an earlier batch boundary, offsets included, and the records
    /// of the lost batches are consumed again.
    pub fn write_unsynced(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.db.write(batch).map_err(self.rocks_error())
    }

    /// Whether batches are fsynced before they count as written (`open`'s `sync_writes`).
    pub fn syncs_writes(&self) -> bool {
        self.sync_writes
    }

    /// Makes every batch written so far durable (fsync of the write-ahead log).
    pub fn sync_wal(&self) -> Result<(), StoreError> {
        self.db.flush_wal(true).map_err(self.rocks_error())
    }

    /// Flushes every column family's memtable to disk, making unsynced writes durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        let cfs: Vec<&ColumnFamily> = ALL_CFS.iter().map(|name| self.cf(name)).collect();
        self.db
            .flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default())
            .map_err(self.rocks_error())
    }

    /// SHA-256 over every key and value of the content column families (not `meta`),
    /// in key order: equal digests mean equal projections.
    pub fn content_digest(&self) -> Result<[u8; 32], StoreError> {
        let mut hasher = Sha256::new();
        for name in CONTENT_CFS {
            hasher.update((name.len() as u64).to_be_bytes());
            hasher.update(name.as_bytes());
            for item in self.every_row(name) {
                let (key, value) = item.map_err(self.rocks_error())?;
                hasher.update((key.len() as u64).to_be_bytes());
                hasher.update(&key);
                hasher.update((value.len() as u64).to_be_bytes());
                hasher.update(&value);
            }
        }
        Ok(hasher.finalize().into())
    }

    /// The projection's progress as its worker last recorded it: how many records and
    /// seconds it may be behind the log ([`Readiness::seconds_behind`]). `None` if no
    /// worker has recorded any yet. On a secondary, call [`Self::catch_up`] first.
    pub fn readiness(&self) -> Result<Option<Readiness>, StoreError> {
        self.meta_value(keys::READINESS_KEY, "readiness", |v| {
            Readiness::from_bytes(v).map_err(|e| e.to_string())
        })
    }

    pub(crate) fn put_readiness(&self, batch: &mut WriteBatch, readiness: &Readiness) {
        self.batch_put(batch, CF_META, keys::READINESS_KEY, &readiness.to_bytes());
    }

    /// Writes a consistent copy of the live database into `out` (a directory that must
    /// not exist yet), as a RocksDB checkpoint: hard links to the table files where
    /// possible. Each batch is one atomic write, so the copy's offsets always match its
    /// content; a projector started on it resumes from them.
    pub fn checkpoint(&self, out: &Path) -> Result<(), StoreError> {
        // A copy inside the database's own directory would be taken for its files.
        let inside = |db: &Path| {
            let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
            let parent = parent.unwrap_or(Path::new("."));
            std::fs::canonicalize(parent)
                .ok()
                .zip(std::fs::canonicalize(db).ok())
                .is_some_and(|(parent, db)| parent.starts_with(db))
        };
        if inside(Path::new(&self.path)) {
            return Err(StoreError::CheckpointInside {
                out: out.display().to_string(),
                db: self.path.clone(),
            });
        }
        rocksdb::checkpoint::Checkpoint::new(&self.db)
            .and_then(|c| c.create_checkpoint(out))
            .map_err(rocks(out))
    }

    /// The partitions of `topic` that this store holds offsets for.
    pub fn stored_partitions(&self, topic: &str) -> Result<Vec<i32>, StoreError> {
        let prefix = keys::offset_prefix(topic);
        let mut partitions = Vec::new();
        for item in self.db.prefix_iterator_cf(self.cf(CF_META), &prefix) {
            let (key, _) = item.map_err(self.rocks_error())?;
            let Some(number) = key.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let number = std::str::from_utf8(number)
                .ok()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| StoreError::Corrupt {
                    what: "offset key",
                    detail: String::from_utf8_lossy(&key).into_owned(),
                })?;
            partitions.push(number);
        }
        Ok(partitions)
    }

    /// Drops everything this store holds from `partitions` of `topic` (which has
    /// `partition_count` partitions): the rows of every patient keyed to them and their
    /// stored offsets, in one atomic write. Used when another instance takes the
    /// partitions over; if they come back, they are rebuilt from the log. Returns how
    /// many rows were deleted.
    pub fn release_partitions(
        &self,
        topic: &str,
        partitions: &[i32],
        partition_count: i32,
    ) -> Result<u64, StoreError> {
        let released = |nhs: &[u8]| partitions.contains(&keys::partition_of(nhs, partition_count));
        let mut batch = WriteBatch::default();
        let mut deleted = 0;
        for name in CONTENT_CFS {
            for item in self.every_row(name) {
                let (key, value) = item.map_err(self.rocks_error())?;
                let nhs = if name == CF_EVENTS {
                    let event = projected_event(&value)?;
                    event.nhs_number.as_str().as_bytes().to_vec()
                } else {
                    keys::nhs_of_content_key(&key).to_vec()
                };
                if released(&nhs) {
                    batch.delete_cf(self.cf(name), &key);
                    deleted += 1;
                }
            }
        }
        for partition in partitions {
            batch.delete_cf(self.cf(CF_META), keys::offset_key(topic, *partition));
            batch.delete_cf(self.cf(CF_META), keys::last_applied_key(topic, *partition));
        }
        self.write(batch)?;
        Ok(deleted)
    }

    /// How many events are projected.
    pub fn event_count(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for item in self.every_row(CF_EVENTS) {
            item.map_err(self.rocks_error())?;
            n += 1;
        }
        Ok(n)
    }
}

/// An event as the `events` column family holds it (its Avro bytes, as consumed), read
/// without today's content rules: it met the rules of the build that projected it.
pub(crate) fn projected_event(bytes: &[u8]) -> Result<ClinicalEvent, StoreError> {
    ClinicalEvent::from_accepted_avro(bytes).map_err(|e| StoreError::Corrupt {
        what: "projected event",
        detail: e.to_string(),
    })
}

/// Reads a row stored in postcard (`what` names it in the error). The whole value must
/// be one `T`: postcard is not self-describing, so bytes left over mean the row was
/// written as something else, and it is refused as corrupt rather than half-read.
pub(crate) fn from_postcard<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt { what, detail };
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| corrupt(e.to_string()))?;
    if !rest.is_empty() {
        return Err(corrupt(format!("{} bytes after the {what}", rest.len())));
    }
    Ok(value)
}

/// Read options that bound an iterator to the keys starting with `prefix`, which starts
/// with a whole NHS number: RocksDB then skips the files whose filter does not hold that
/// number and the blocks of each level that hold only keys past it, instead of reading
/// the next patient's block in every level. The iterator stops where the NHS number
/// changes (`prefix_same_as_start`), the one bound RocksDB promises for a read by
/// filter prefix; [`row_under`] checks `prefix` itself.
fn within(prefix: &[u8]) -> rocksdb::ReadOptions {
    assert!(
        prefix.len() >= keys::NHS_NUMBER_LEN,
        "a read by prefix starts with a whole NHS number: {prefix:?}"
    );
    let mut options = rocksdb::ReadOptions::default();
    options.set_iterate_range(rocksdb::PrefixRange(prefix));
    options.set_prefix_same_as_start(true);
    options
}

/// The row `rows` is at, if its key starts with `prefix`: a row of the next patient is
/// never taken for this one's, whatever the iterator's bounds did.
fn row_under<'a>(
    rows: &'a rocksdb::DBRawIterator<'_>,
    prefix: &[u8],
) -> Option<(&'a [u8], &'a [u8])> {
    let (key, value) = (rows.key()?, rows.value()?);
    key.starts_with(prefix).then_some((key, value))
}

/// A copy of one row, its buffers reused from row to row.
#[derive(Default)]
struct RowCopy {
    key: Vec<u8>,
    value: Vec<u8>,
}

impl RowCopy {
    fn copy_from(&mut self, key: &[u8], value: &[u8]) {
        self.key.clear();
        self.key.extend_from_slice(key);
        self.value.clear();
        self.value.extend_from_slice(value);
    }
}

/// LZ4 blocks with a bloom filter, and a bloom filter over each memtable: most point
/// lookups while projecting (is this event id new? has this event been corrected?) are
/// for keys that do not exist, which a filter answers without searching the memtable or
/// reading every level. In the patients' column families the filters also hold each
/// key's NHS number, so a read of one patient skips the files that hold none of their
/// rows (most files, when a patient's rows are in one level). `block_cache` replaces
/// RocksDB's small default block cache.
fn column_family_options(name: &str, block_cache: Option<&rocksdb::Cache>) -> Options {
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    if let Some(cache) = block_cache {
        table.set_block_cache(cache);
    }
    let mut options = Options::default();
    if PATIENT_CFS.contains(&name) {
        options.set_prefix_extractor(rocksdb::SliceTransform::create_fixed_prefix(
            keys::NHS_NUMBER_LEN,
        ));
    }
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    options.set_block_based_table_factory(&table);
    options.set_memtable_prefix_bloom_ratio(0.1);
    options.set_memtable_whole_key_filtering(true);
    // Files flushed from memory and those of the first level are compacted again soon;
    // compressing them costs CPU that the projector needs (levels 2 and below stay LZ4).
    options.set_compression_per_level(&[
        rocksdb::DBCompressionType::None,
        rocksdb::DBCompressionType::None,
        rocksdb::DBCompressionType::Lz4,
        rocksdb::DBCompressionType::Lz4,
        rocksdb::DBCompressionType::Lz4,
        rocksdb::DBCompressionType::Lz4,
        rocksdb::DBCompressionType::Lz4,
    ]);
    options
}

/// Refuses a directory with no RocksDB database in it, before RocksDB is asked to open
/// one there (which would create the directory, or the database, on the way).
fn require_database(path: &Path) -> Result<(), StoreError> {
    if path.join("CURRENT").is_file() {
        Ok(())
    } else {
        Err(StoreError::NotAProjection {
            path: path.display().to_string(),
            detail: "no RocksDB database in it".into(),
        })
    }
}

fn rocks(path: &Path) -> impl Fn(rocksdb::Error) -> StoreError + '_ {
    move |source| StoreError::Rocks {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reopen_with_format(format: Option<&str>) -> StoreError {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = ProjectionStore::open(dir.path(), false).unwrap();
            let mut batch = WriteBatch::default();
            store.batch_put(
                &mut batch,
                CF_META,
                &keys::offset_key("t", 0),
                &1i64.to_be_bytes(),
            );
            store.write(batch).unwrap();
            let meta = store.cf(CF_META);
            match format {
                Some(f) => store.db.put_cf(meta, keys::FORMAT_KEY, f).unwrap(),
                None => store.db.delete_cf(meta, keys::FORMAT_KEY).unwrap(),
            }
        }
        ProjectionStore::open(dir.path(), false).unwrap_err()
    }

    /// `n` NHS numbers in a row: valid (Mod 11), in the 999 range, neighbours in key order.
    fn neighbouring_numbers(n: usize) -> Vec<NhsNumber> {
        (9_990_000_000u64..)
            .filter_map(|n| n.to_string().parse().ok())
            .take(n)
            .collect()
    }

    /// Three timeline rows of `nhs` from time `at`, with a view row (in groups `g0` and
    /// `g1`) for each, in one batch.
    fn write_rows(store: &ProjectionStore, nhs: &NhsNumber, at: EpochMillis) {
        let mut event = spr_schemas::examples::one_of_each_type(*nhs).remove(0);
        let mut batch = WriteBatch::default();
        for t in at..at + 3 {
            event.event_id = EventId::random();
            event.occurred_at = t;
            let key = keys::timeline_key(nhs, t, &event.event_id);
            store.batch_put(
                &mut batch,
                CF_TIMELINE,
                &key,
                &TimelineEntry::stored(&event, None),
            );
            let group = format!("g{}", t % 2);
            let key = keys::view_key(nhs, b'O', &group, t, &event.event_id);
            store.batch_put(&mut batch, CF_CURRENT, &key, b"row");
        }
        store.write(batch).unwrap();
    }

    // Groups of 1 to 30 rows: up to and well past `SHORT_GROUP`.
    const _: () = assert!(SHORT_GROUP < 30);

    #[test]
    fn the_last_row_of_each_group_is_found_in_short_and_long_groups_wherever_rows_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProjectionStore::open(dir.path(), false).unwrap();
        let patients = neighbouring_numbers(3);
        let id = |n: usize| EventId::from_bytes([n as u8; 16]);
        // The middle patient's groups hold 1 to 30 rows, around the step limit, half of
        // each group flushed to a file and half in the memtable; its neighbours hold a
        // group each, so a scan that strayed past the patient would find them.
        for round in 0..2 {
            let mut batch = WriteBatch::default();
            for size in 1..=30 {
                let group = format!("g{size:02}");
                for t in (0..size).filter(|t| t % 2 == round) {
                    let key = keys::view_key(&patients[1], b'O', &group, t as i64, &id(t));
                    store.batch_put(
                        &mut batch,
                        CF_CURRENT,
                        &key,
                        format!("{group}@{t}").as_bytes(),
                    );
                }
            }
            for nhs in [&patients[0], &patients[2]] {
                let key = keys::view_key(nhs, b'O', "g01", round as i64, &id(round));
                store.batch_put(&mut batch, CF_CURRENT, &key, b"neighbour");
            }
            store.write(batch).unwrap();
            if round == 0 {
                store.flush().unwrap();
            }
        }
        let prefix = keys::view_prefix(&patients[1], b'O');
        let newest = store
            .last_of_each_group(CF_CURRENT, &prefix, keys::TIME_AND_ID_LEN, |_, value| {
                Ok(String::from_utf8(value.to_vec()).unwrap())
            })
            .unwrap();
        let expected: Vec<String> = (1..=30)
            .map(|size| format!("g{size:02}@{}", size - 1))
            .collect();
        assert_eq!(newest, expected);
    }

    #[test]
    fn reads_by_nhs_number_find_every_row_in_the_memtable_and_in_flushed_and_compacted_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProjectionStore::open(dir.path(), false).unwrap();
        let patients = neighbouring_numbers(6);
        // Patients 0 and 2 in the bottom level, 1 and 5 in files of level 0, 3 only in
        // the memtable, 0 in the memtable too, 4 nowhere.
        write_rows(&store, &patients[0], 0);
        write_rows(&store, &patients[2], 0);
        store.flush().unwrap();
        for cf in [CF_TIMELINE, CF_CURRENT] {
            store
                .db
                .compact_range_cf(store.cf(cf), None::<&[u8]>, None::<&[u8]>);
        }
        write_rows(&store, &patients[1], 0);
        store.flush().unwrap();
        write_rows(&store, &patients[5], 0);
        store.flush().unwrap();
        write_rows(&store, &patients[3], 0);
        write_rows(&store, &patients[0], 10);

        for (i, expected) in [6, 3, 3, 3, 0, 3].into_iter().enumerate() {
            let nhs = &patients[i];
            let page = store.timeline(nhs, None, 100).unwrap();
            let times: Vec<EpochMillis> = page.entries.iter().map(|e| e.occurred_at).collect();
            let mut sorted = times.clone();
            sorted.sort_unstable();
            assert_eq!((times.len(), &times), (expected, &sorted), "patient {i}");
            assert!(page.entries.iter().all(|e| !e.code.code.is_empty()));
            let prefix = keys::view_prefix(nhs, b'O');
            let rows = store
                .scan_prefix(CF_CURRENT, &prefix, |key, _| Ok(key.to_vec()))
                .unwrap();
            assert_eq!(rows.len(), expected, "patient {i}'s view rows");
            assert!(rows.iter().all(|key| key.starts_with(&prefix)));
            let newest = store
                .last_of_each_group(CF_CURRENT, &prefix, keys::TIME_AND_ID_LEN, |key, _| {
                    Ok(key.to_vec())
                })
                .unwrap();
            assert_eq!(newest.len(), expected.min(2), "patient {i}'s groups");
        }
        // A full scan still sees every row of every patient.
        let digest_rows = store.every_row(CF_TIMELINE).count();
        assert_eq!(digest_rows, 18);
    }

    #[test]
    fn a_projection_in_another_storage_format_is_refused_with_what_to_do() {
        // "4" alone: the format of this build with no event schema named.
        for (format, found) in [
            (None, "1"),
            (Some("2"), "2"),
            (Some("3"), "3"),
            (Some("4"), "4"),
        ] {
            let error = reopen_with_format(format);
            assert!(
                matches!(&error, StoreError::Format { found: f, .. } if f == found),
                "{error:?}"
            );
            assert!(
                error.to_string().contains("spr-projector rebuild"),
                "{error}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        drop(ProjectionStore::open(dir.path(), false).unwrap());
        ProjectionStore::open(dir.path(), false).expect("its own format reopens");
    }

    #[test]
    fn stored_timeline_entries_and_corrections_read_back_as_written() {
        let nhs = "9990000018".parse().unwrap();
        for mut event in spr_schemas::examples::one_of_each_type(nhs) {
            let stored = TimelineEntry::stored(&event, None);
            assert_eq!(
                TimelineEntry::from_bytes(&stored).unwrap(),
                TimelineEntry::of(&event)
            );
            let correction = Supersession {
                event_id: EventId::random(),
                status: spr_schemas::Status::Amended,
                recorded_at: 7,
            };
            event.encounter_id = Some("E1".into());
            let mut entry = TimelineEntry::of(&event);
            entry.superseded_by = Some(correction);
            let stored = TimelineEntry::stored(&event, Some(correction));
            assert_eq!(TimelineEntry::from_bytes(&stored).unwrap(), entry);
            assert_eq!(
                Supersession::from_bytes(&correction.to_bytes()).unwrap(),
                correction
            );
            // Bytes after the stored form mean it was written as something else.
            let longer = |mut bytes: Vec<u8>| {
                bytes.push(0);
                bytes
            };
            assert!(matches!(
                TimelineEntry::from_bytes(&longer(stored)),
                Err(StoreError::Corrupt {
                    what: "timeline entry",
                    ..
                })
            ));
            assert!(matches!(
                Supersession::from_bytes(&longer(correction.to_bytes())),
                Err(StoreError::Corrupt {
                    what: "correction",
                    ..
                })
            ));
        }
        assert!(matches!(
            TimelineEntry::from_bytes(b"{\"event_id\":1}"),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
