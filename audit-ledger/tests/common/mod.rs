//! Helpers shared by the ledger's integration tests.
// Each test binary compiles this module and uses only some of it.
#![allow(dead_code)]

use std::path::Path;

use spr_audit_ledger::Ledger;
use spr_schemas::examples;

/// The canonical bytes of a distinct access event, numbered `i`.
pub(crate) fn access_event_leaf(i: i32) -> Vec<u8> {
    let mut event = examples::access_event("9990000018".parse().unwrap());
    event.returned_count = i;
    event.to_avro().unwrap()
}

/// Appends access events `first .. first + count` to the ledger at `path` and syncs.
pub(crate) fn append(path: &Path, first: i32, count: i32) -> Ledger {
    let mut ledger = Ledger::open(path).unwrap();
    for i in first..first + count {
        ledger.append_access_event(&access_event_leaf(i)).unwrap();
    }
    ledger.sync().unwrap();
    ledger
}
