//! The audit ledger: every access to a patient record, in an append-only,
//! SHA-256 hash-chained file that an auditor can verify from genesis.
//!
//! Leaves are the canonical bytes of access events (their Avro single-object
//! encoding, exactly as published on `spr.access-events`). With
//! `leaf_hash_i = SHA-256(0x00 || leaf_i)` (the RFC 6962 leaf hash) and
//! `h_{-1}` = 32 zero bytes, each entry stores `h_i = SHA-256(h_{i-1} || leaf_hash_i)`.
//! The file format is in `docs/ledger.md`.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use spr_audit_ledger::{Ledger, verify_from_genesis};
//! let path = dir.path().join("ledger.spr");
//! let mut ledger = Ledger::open(&path).unwrap();
//! let access = spr_schemas::examples::access_event("9990000018".parse().unwrap());
//! ledger.append_access_event(&access.to_avro().unwrap()).unwrap();
//! ledger.sync().unwrap();
//! let report = verify_from_genesis(&path).unwrap();
//! assert_eq!(report.entries, 1);
//! assert!(report.first_failure.is_none());
//! ```

pub mod checkpoint;
pub mod completeness;
mod digest;
mod file;
pub mod merkle;
pub mod metrics;
pub mod report;
pub mod service;
mod verify;

pub use digest::{chain_hash, leaf_hash, Sha256Digest, GENESIS};
pub use file::{AppendOutcome, Ledger, LedgerError, HEADER, MAX_LEAF_LEN};
pub use verify::{
    load_leaves, load_tree, verify_from_genesis, verify_with_progress, LedgerFollower,
    VerifyFailure, VerifyReport,
};
