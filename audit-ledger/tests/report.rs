//! The access report and the FHIR AuditEvent export.

mod common;

use std::process::Command;

use spr_audit_ledger::report::{access_report, fhir_audit_event};
use spr_schemas::{examples, AccessEvent, Decision, NhsNumber};

fn access(user: &str, patient: &str) -> AccessEvent {
    let mut e = examples::access_event(patient.parse().unwrap());
    e.event_id = spr_schemas::EventId::random();
    e.subject.id = user.into();
    e
}

#[test]
fn the_report_lists_denials_break_glass_flags_and_unusual_volumes() {
    let patients: Vec<NhsNumber> = (0..30u8)
        .filter_map(|i| NhsNumber::from_prefix([9, 9, 9, 0, 0, 0, 1, i / 10, i % 10]))
        .collect();
    let mut entries = Vec::new();
    for (i, p) in patients.iter().enumerate() {
        entries.push(access(&format!("user-{i:02}"), p.as_str()));
        entries.push(access(&format!("user-{i:02}"), p.as_str()));
    }
    for _ in 0..60 {
        entries.push(access("snooper", patients[0].as_str()));
    }
    let mut denied = access("receptionist", patients[1].as_str());
    denied.decision = Decision::Deny;
    denied.reasons = vec!["role-not-permitted-scope".into()];
    entries.push(denied.clone());
    let mut glass = access("a-and-e-doctor", patients[2].as_str());
    glass.break_glass_reason = Some("unconscious patient, no relationship yet".into());
    glass.reasons = vec!["break-glass".into()];
    entries.push(glass.clone());

    let mut sensitive = access("psychiatrist", patients[3].as_str());
    sensitive.categories = vec!["mental-health".into(), "observation".into()];
    entries.push(sensitive.clone());

    let report = access_report(&entries, 20);
    assert_eq!(report.entries, entries.len());
    assert_eq!(
        report
            .denied
            .iter()
            .map(|r| r.event.event_id)
            .collect::<Vec<_>>(),
        vec![denied.event_id]
    );
    assert_eq!(report.denied[0].index, entries.len() as u64 - 3);
    assert_eq!(
        report
            .sensitive
            .iter()
            .map(|r| r.event.event_id)
            .collect::<Vec<_>>(),
        vec![sensitive.event_id]
    );
    assert_eq!(
        report
            .break_glass
            .iter()
            .map(|r| r.event.event_id)
            .collect::<Vec<_>>(),
        vec![glass.event_id]
    );
    assert_eq!(report.flagged.len(), 1, "break-glass is a flagged reason");
    assert_eq!(
        report
            .unusual_users
            .iter()
            .map(|v| (v.who.as_str(), v.accesses))
            .collect::<Vec<_>>(),
        vec![("snooper", 60)]
    );
    assert_eq!(
        report
            .unusual_patients
            .iter()
            .map(|v| v.who.clone())
            .collect::<Vec<_>>(),
        vec![patients[0].to_string()]
    );

    let quiet = access_report(&entries[..60], 20);
    assert!(
        quiet.unusual_users.is_empty() && quiet.denied.is_empty() && quiet.break_glass.is_empty()
    );
}

#[test]
fn every_access_exports_as_a_fhir_audit_event() {
    let mut denied = access("receptionist", "9990000018");
    denied.decision = Decision::Deny;
    let permit = fhir_audit_event(&access("gp-1", "9990000018"));
    let deny = fhir_audit_event(&denied);
    for (event, outcome) in [(&permit, "0"), (&deny, "4")] {
        assert_eq!(event["resourceType"], "AuditEvent");
        assert_eq!(event["outcome"], outcome);
        assert_eq!(event["action"], "R");
        assert_eq!(
            event["entity"][0]["what"]["identifier"]["system"],
            "https://fhir.nhs.uk/Id/nhs-number"
        );
        assert_eq!(
            event["entity"][0]["what"]["identifier"]["value"],
            "9990000018"
        );
        assert_eq!(event["recorded"], "2023-11-14T22:13:20Z");
        assert_eq!(event["agent"][0]["requestor"], true);
    }
    assert_eq!(
        deny["agent"][0]["who"]["identifier"]["value"],
        "receptionist"
    );
}

#[test]
fn spr_audit_export_writes_one_audit_event_per_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    common::append(&path, 0, 7);
    let out = Command::new(env!("CARGO_BIN_EXE_spr-audit"))
        .args(["export", "--fhir", "--ledger"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    assert!(lines.iter().all(|l| l["resourceType"] == "AuditEvent"));
    let report = Command::new(env!("CARGO_BIN_EXE_spr-audit"))
        .args(["--json", "report", "--ledger"])
        .arg(&path)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["entries"], 7);
}

#[test]
fn spr_audit_watch_raises_a_break_glass_access_within_seconds() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    drop(common::append(&path, 0, 3));
    let mut watch = Command::new(env!("CARGO_BIN_EXE_spr-audit"))
        .args(["watch", "--interval-ms", "100", "--ledger"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It has read the three entries there are before it says it is watching; only the
    // entries after them are new to it.
    let mut stderr = BufReader::new(watch.stderr.take().unwrap());
    let mut watching = String::new();
    stderr.read_line(&mut watching).unwrap();
    assert!(watching.contains("from entry 3"), "{watching}");
    let mut glass = access("a-and-e-doctor", "9990000018");
    glass.break_glass_reason = Some("collapsed in the waiting room".into());
    let mut ledger = spr_audit_ledger::Ledger::open(&path).unwrap();
    ledger
        .append_access_event(&access("gp-1", "9990000018").to_avro().unwrap())
        .unwrap();
    ledger
        .append_access_event(&glass.to_avro().unwrap())
        .unwrap();
    ledger.sync().unwrap();
    let (alerts, alerted) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = alerts.send(line);
    });
    let line = alerted.recv_timeout(std::time::Duration::from_secs(5));
    watch.kill().unwrap();
    watch.wait().unwrap();
    // Held open until now: a closed pipe would fail the watcher's next line on stderr.
    drop(stderr);
    let line = line.expect("an alert within 5 s of the break-glass access");
    assert!(
        line.starts_with("ALERT break-glass #4: a-and-e-doctor"),
        "{line}"
    );
    assert!(line.contains("collapsed in the waiting room"), "{line}");
}

#[test]
fn the_follower_reads_each_new_entry_once_and_stops_at_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    let mut follower = spr_audit_ledger::LedgerFollower::new(&path);
    assert!(
        follower.read_new().unwrap().is_empty(),
        "no file yet is an empty ledger"
    );
    drop(common::append(&path, 0, 4));
    assert_eq!(follower.read_new().unwrap().len(), 4);
    assert!(follower.read_new().unwrap().is_empty());
    drop(common::append(&path, 4, 3));
    assert_eq!(follower.read_new().unwrap().len(), 3);
    assert_eq!(
        follower.tree().root(7).unwrap(),
        spr_audit_ledger::verify_from_genesis(&path).unwrap().root
    );
    drop(common::append(&path, 7, 2));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    for _ in 0..2 {
        assert!(matches!(
            follower.read_new(),
            Err(spr_audit_ledger::LedgerError::Tampered { index: 8, .. })
        ));
        assert_eq!(
            follower.tree().len(),
            8,
            "entries before the tampered one are held once, however often it retries"
        );
    }
}

#[test]
fn the_follower_stops_when_the_ledger_is_cut_short_or_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    drop(common::append(&path, 0, 5));
    let mut follower = spr_audit_ledger::LedgerFollower::new(&path);
    // A ledger being created is empty for a moment: not a removal.
    let creating = dir.path().join("new.spr");
    std::fs::write(&creating, b"").unwrap();
    assert!(spr_audit_ledger::LedgerFollower::new(&creating)
        .read_new()
        .unwrap()
        .is_empty());
    assert_eq!(follower.read_new().unwrap().len(), 5);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    match follower.read_new() {
        Err(spr_audit_ledger::LedgerError::Tampered { reason, .. }) => {
            assert!(reason.contains("entries were removed"), "{reason}")
        }
        other => panic!("expected the cut to be reported, got {other:?}"),
    }
    std::fs::remove_file(&path).unwrap();
    match follower.read_new() {
        Err(spr_audit_ledger::LedgerError::Tampered { reason, .. }) => {
            assert!(reason.contains("gone after 5 entries"), "{reason}")
        }
        other => panic!("expected the removal to be reported, got {other:?}"),
    }
}
