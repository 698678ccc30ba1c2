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

/// Every leaf of the ledger at `path`, in order (the file must verify).
pub(crate) fn leaves(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let mut at = spr_audit_ledger::HEADER.len();
    let mut out = Vec::new();
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push(bytes[at + 4..at + 4 + len].to_vec());
        at += 4 + len + 32;
    }
    out
}
