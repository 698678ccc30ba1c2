//! The projector: consumer-group workers that materialise per-patient timelines from
//! the log into RocksDB, effectively once.
//!
//! Each instance owns a fixed set of partitions and the RocksDB state built from
//! them. Each batch's effects and the consumed offsets are written in one RocksDB
//! `WriteBatch` ([`project::project_batch`]); on start the worker seeks to the offsets
//! stored beside the data, never to the group's committed offsets, so a crash anywhere
//! neither loses nor re-applies an event. Kafka transactions are not needed (and tansu
//! does not support them).

pub mod checkpoints;
pub mod dead_letters;
pub mod detail;
pub mod keys;
pub mod monitor;
pub mod ownership;
pub mod project;
pub mod readiness;
pub mod rebuild;
pub mod store;
pub mod summary;
pub mod views;
pub mod worker;

pub use project::{project_batch, project_decoded, BatchOutcome, DeadLetter, DecodedBatch};
pub use readiness::{PartitionLag, Readiness};
pub use spr_producers::consume::ConsumedRecord;
pub use store::{
    store_format, ProjectionStore, StoreError, TimeRange, TimelineCursor, TimelineEntry,
    TimelinePage,
};
pub use worker::{run_worker, run_worker_with, RunOptions, WorkerConfig, WorkerError};
