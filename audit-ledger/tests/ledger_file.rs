//! The ledger file on disk: appends, deduplication, recovery and tamper detection.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use spr_audit_ledger::{verify_from_genesis, AppendOutcome, Ledger, LedgerError, HEADER};
use spr_schemas::{examples, AccessEvent};

/// Writes `n` entries, synced, and returns each entry's (start offset, leaf length).
fn ledger_with(path: &Path, n: usize) -> Vec<(u64, usize)> {
    let mut ledger = Ledger::open(path).unwrap();
    let mut frames = Vec::new();
    let mut offset = HEADER.len() as u64;
    for i in 0..n {
        let leaf = common::access_event_leaf(i as i32);
        assert!(matches!(
            ledger.append_access_event(&leaf).unwrap(),
            AppendOutcome::Appended { index, .. } if index == i as u64
        ));
        frames.push((offset, leaf.len()));
        offset += 4 + leaf.len() as u64 + 32;
    }
    ledger.sync().unwrap();
    frames
}

fn flip_byte(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_fresh_ledger_verifies_and_reopening_continues_the_same_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    ledger_with(&path, 10);
    let report = verify_from_genesis(&path).unwrap();
    assert_eq!((report.entries, report.first_failure.clone()), (10, None));

    let mut reopened = Ledger::open(&path).unwrap();
    assert_eq!((reopened.len(), reopened.head()), (10, report.head));
    assert!(matches!(
        reopened
            .append_access_event(&common::access_event_leaf(10))
            .unwrap(),
        AppendOutcome::Appended { index, .. } if index == 10
    ));
    reopened.sync().unwrap();
    let after = verify_from_genesis(&path).unwrap();
    assert_eq!((after.entries, after.first_failure), (11, None));
}

#[test]
fn a_redelivered_access_event_is_not_appended_twice_even_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    let leaf = common::access_event_leaf(1);
    let mut ledger = Ledger::open(&path).unwrap();
    assert!(matches!(
        ledger.append_access_event(&leaf).unwrap(),
        AppendOutcome::Appended { index, .. } if index == 0
    ));
    assert_eq!(
        ledger.append_access_event(&leaf).unwrap(),
        AppendOutcome::Duplicate
    );
    ledger.sync().unwrap();
    drop(ledger);
    let mut reopened = Ledger::open(&path).unwrap();
    assert_eq!(
        reopened.append_access_event(&leaf).unwrap(),
        AppendOutcome::Duplicate
    );
    assert_eq!(reopened.len(), 1);
}

#[test]
fn bytes_that_are_not_an_access_event_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("ledger.spr")).unwrap();
    let clinical = examples::allergy("9990000018".parse().unwrap())
        .to_avro()
        .unwrap();
    for leaf in [b"not avro".to_vec(), clinical, vec![]] {
        assert!(matches!(
            ledger.append_access_event(&leaf),
            Err(LedgerError::NotAnAccessEvent(_))
        ));
    }
    assert!(ledger.is_empty());
}

#[test]
fn a_flipped_byte_anywhere_in_an_entry_is_reported_at_that_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    let frames = ledger_with(&path, 8);
    for (index, (start, leaf_len)) in frames.iter().enumerate() {
        let end = start + 4 + *leaf_len as u64 + 32;
        // The first length byte, a leaf byte, the last leaf byte, and the chain value's last byte.
        for at in [*start, start + 4 + 7, start + 3 + *leaf_len as u64, end - 1] {
            flip_byte(&path, at);
            let report = verify_from_genesis(&path).unwrap();
            let failure = report
                .first_failure
                .unwrap_or_else(|| panic!("flip at byte {at} of entry {index} went unnoticed"));
            assert_eq!(
                failure.index, index as u64,
                "flip at byte {at}: {}",
                failure.reason
            );
            assert_eq!(report.entries, index as u64);
            flip_byte(&path, at);
        }
    }
    assert!(verify_from_genesis(&path).unwrap().first_failure.is_none());
}

#[test]
fn deleting_or_swapping_entries_is_reported_at_the_first_changed_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    let frames = ledger_with(&path, 6);
    let bytes = std::fs::read(&path).unwrap();
    let frame = |i: usize| {
        let (start, len) = frames[i];
        bytes[start as usize..start as usize + 4 + len + 32].to_vec()
    };
    let cut = |i: usize| frames[i].0 as usize;
    let cases: [(&str, Vec<u8>, u64); 3] = [
        (
            "entry 3 deleted",
            [&bytes[..cut(3)], &bytes[cut(4)..]].concat(),
            3,
        ),
        (
            "entries 1 and 2 swapped",
            [&bytes[..cut(1)], &frame(2), &frame(1), &bytes[cut(3)..]].concat(),
            1,
        ),
        (
            "entry 4 duplicated",
            [&bytes[..cut(5)], &frame(4), &bytes[cut(5)..]].concat(),
            5,
        ),
    ];
    for (name, altered, index) in cases {
        std::fs::write(&path, &altered).unwrap();
        let failure = verify_from_genesis(&path).unwrap().first_failure;
        assert_eq!(failure.map(|f| f.index), Some(index), "{name}");
    }
}

#[test]
fn a_torn_unsynced_tail_is_cut_off_on_open_and_appending_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    ledger_with(&path, 4);
    let synced = std::fs::metadata(&path).unwrap().len();
    // A crash mid-write: half of a fifth frame reaches the file, never synced.
    let partial = &common::access_event_leaf(99)[..20];
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&(200u32).to_be_bytes()).unwrap();
    file.write_all(partial).unwrap();
    drop(file);
    assert!(verify_from_genesis(&path)
        .unwrap()
        .first_failure
        .unwrap()
        .reason
        .contains("incomplete"));

    let mut ledger = Ledger::open(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), synced);
    assert!(matches!(
        ledger
            .append_access_event(&common::access_event_leaf(4))
            .unwrap(),
        AppendOutcome::Appended { index, .. } if index == 4
    ));
    ledger.sync().unwrap();
    assert_eq!(verify_from_genesis(&path).unwrap().entries, 5);
}

#[test]
fn damage_inside_the_synced_part_is_refused_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    let frames = ledger_with(&path, 5);
    let length_before = std::fs::metadata(&path).unwrap().len();
    flip_byte(&path, frames[2].0 + 10);
    match Ledger::open(&path) {
        Err(LedgerError::Tampered { index, .. }) => assert_eq!(index, 2),
        other => panic!("expected a refusal at index 2, got {other:?}"),
    }
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        length_before,
        "nothing was cut off"
    );
}

#[test]
fn a_file_that_is_not_a_ledger_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.bin");
    std::fs::write(&path, b"PK\x03\x04 something else").unwrap();
    assert!(matches!(
        verify_from_genesis(&path),
        Err(LedgerError::NotALedger(_))
    ));
    assert!(matches!(
        Ledger::open(&path),
        Err(LedgerError::NotALedger(_))
    ));
    // A directory is said to be one, and the OS error is said once.
    let said = verify_from_genesis(dir.path()).unwrap_err().to_string();
    assert!(said.contains("Is a directory"), "{said}");
    let missing = verify_from_genesis(&dir.path().join("missing.spr"))
        .unwrap_err()
        .to_string();
    assert_eq!(missing.matches("No such file").count(), 1, "{missing}");
    assert!(std::error::Error::source(&verify_from_genesis(dir.path()).unwrap_err()).is_none());
}

#[test]
fn spr_audit_verify_prints_the_head_or_names_the_first_bad_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    let frames = ledger_with(&path, 7);
    let head = verify_from_genesis(&path).unwrap().head.to_string();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_spr-audit"))
            .args(["verify", "--ledger"])
            .arg(&path)
            .output()
            .unwrap()
    };

    let ok = run();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{stdout}");
    assert!(
        stdout.contains("7 entries verified") && stdout.contains(&head),
        "{stdout}"
    );

    let missing = Command::new(env!("CARGO_BIN_EXE_spr-audit"))
        .args(["verify", "--ledger"])
        .arg(dir.path().join("no-such-ledger.spr"))
        .output()
        .unwrap();
    assert_eq!(
        missing.status.code(),
        Some(2),
        "an unreadable ledger is not a verification failure"
    );

    flip_byte(&path, frames[5].0 + 30);
    let bad = run();
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILED: entry 5 "), "{stdout}");
}

#[test]
fn every_leaf_in_the_ledger_decodes_as_the_access_event_that_was_appended() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    let frames = ledger_with(&path, 3);
    let bytes = std::fs::read(&path).unwrap();
    for (i, (start, len)) in frames.iter().enumerate() {
        let leaf = &bytes[*start as usize + 4..*start as usize + 4 + len];
        assert_eq!(
            AccessEvent::from_avro(leaf).unwrap().returned_count,
            i as i32
        );
    }
}

#[test]
fn entries_cut_off_the_end_of_the_synced_part_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    let frames = ledger_with(&path, 5);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..frames[3].0 as usize]).unwrap();
    assert!(matches!(
        Ledger::open(&path),
        Err(LedgerError::Tampered { .. })
    ));
}

#[test]
fn without_its_committed_file_a_damaged_ledger_is_refused_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    let frames = ledger_with(&path, 5);
    std::fs::remove_file(dir.path().join("ledger.spr.committed")).unwrap();
    flip_byte(&path, frames[1].0 + 12);
    let length_before = std::fs::metadata(&path).unwrap().len();
    assert!(matches!(
        Ledger::open(&path),
        Err(LedgerError::Tampered { index: 1, .. })
    ));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), length_before);
}

#[test]
fn a_ledger_another_process_appends_to_is_refused_until_it_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    ledger_with(&path, 2);
    let first = Ledger::open(&path).unwrap();
    match Ledger::open(&path) {
        Err(e @ LedgerError::InUse(_)) => {
            assert!(e.to_string().contains("in use by another process"), "{e}")
        }
        other => panic!("expected the ledger in use, got {other:?}"),
    }
    drop(first);
    assert_eq!(Ledger::open(&path).unwrap().len(), 2);
}

#[test]
fn an_emptied_or_removed_ledger_is_refused_when_bytes_were_synced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    ledger_with(&path, 3);
    std::fs::write(&path, b"").unwrap();
    match Ledger::open(&path) {
        Err(LedgerError::Tampered { reason, .. }) => {
            assert!(reason.contains("bytes were synced"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        Ledger::open(&path),
        Err(LedgerError::Tampered { .. })
    ));
    // Without its side file, an empty ledger with a signed checkpoint is refused too.
    std::fs::remove_file(dir.path().join("ledger.spr.committed")).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        Ledger::open_signed(&path, 3),
        Err(LedgerError::Tampered { .. })
    ));
}

#[test]
fn entries_a_signed_checkpoint_covers_are_never_cut_off_as_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    let frames = ledger_with(&path, 5);
    // Damage entry 3 and claim only entries 0-2 were synced.
    flip_byte(&path, frames[3].0 + 10);
    std::fs::write(
        dir.path().join("ledger.spr.committed"),
        frames[3].0.to_string(),
    )
    .unwrap();
    let length_before = std::fs::metadata(&path).unwrap().len();
    assert!(matches!(
        Ledger::open_signed(&path, 5),
        Err(LedgerError::Tampered { index: 3, .. })
    ));
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        length_before,
        "nothing was cut off"
    );
    // Without a checkpoint over them, the same tail is cut as torn.
    assert_eq!(Ledger::open(&path).unwrap().len(), 3);
}
