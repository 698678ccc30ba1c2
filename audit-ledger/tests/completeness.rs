//! `spr-audit completeness` against a real broker and ledger.

use std::process::Command;
use std::time::Duration;

use spr_audit_ledger::service::append_batch;
use spr_audit_ledger::Ledger;
use spr_producers::consume::ConsumedRecord;
use spr_producers::EventPublisher;
use spr_schemas::{examples, AccessEvent, AccessSubject};
use spr_testkit::TestBroker;

fn completeness(bootstrap: &str, ledger: &std::path::Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spr-audit"))
        .args([
            "completeness",
            "--idle-ms",
            "1500",
            "--bootstrap",
            bootstrap,
            "--ledger",
        ])
        .arg(ledger)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn record(event: &AccessEvent, offset: i64) -> ConsumedRecord {
    ConsumedRecord {
        topic: spr_schemas::topics::ACCESS_EVENTS.name.into(),
        partition: 0,
        offset,
        key: None,
        payload: Some(event.to_avro().unwrap()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completeness_finds_events_missing_from_either_side() {
    let broker = TestBroker::start_memory().await.unwrap();
    let publisher = EventPublisher::new(&broker.bootstrap(), Duration::from_secs(30)).unwrap();
    let events: Vec<AccessEvent> = (0..12)
        .map(|i| {
            let mut e = examples::access_event("9990000018".parse().unwrap());
            e.returned_count = i;
            e
        })
        .collect();
    for e in &events {
        publisher.publish_access_event(e).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    let mut ledger = Ledger::open(&path).unwrap();
    let records: Vec<_> = events
        .iter()
        .enumerate()
        .map(|(i, e)| record(e, i as i64))
        .collect();
    append_batch(&mut ledger, &publisher, &records[..10])
        .await
        .unwrap();

    let (code, out) = completeness(&broker.bootstrap(), &path);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("12 access events on the topic, 10 entries in the ledger"),
        "{out}"
    );
    for e in &events[10..] {
        assert!(
            out.contains(&format!("missing from the ledger: {}", e.event_id)),
            "{out}"
        );
    }

    append_batch(&mut ledger, &publisher, &records[10..])
        .await
        .unwrap();
    assert_eq!(completeness(&broker.bootstrap(), &path).0, Some(0));

    let never_published = examples::access_event("9990000018".parse().unwrap());
    append_batch(&mut ledger, &publisher, &[record(&never_published, 99)])
        .await
        .unwrap();
    let (code, out) = completeness(&broker.bootstrap(), &path);
    assert_eq!(code, Some(1));
    assert!(
        out.contains(&format!(
            "in the ledger but not on the topic: {}",
            never_published.event_id
        )),
        "{out}"
    );
}

/// Every API node honours what is on `spr.break-glass`, so a grant there that the ledger
/// does not hold as recorded (forged, or altered after it was recorded) is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completeness_finds_break_glass_grants_the_ledger_does_not_hold() {
    let broker = TestBroker::start_memory().await.unwrap();
    let publisher = EventPublisher::new(&broker.bootstrap(), Duration::from_secs(30)).unwrap();
    let grant = |reason: &str| AccessEvent {
        action: "break-glass.start".into(),
        break_glass_reason: Some(reason.into()),
        ..examples::access_event("9990000018".parse().unwrap())
    };
    let recorded = grant("Unconscious in resus, no history available");
    publisher.publish_access_event(&recorded).await.unwrap();
    publisher.publish_break_glass(&recorded).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    let mut ledger = Ledger::open(&path).unwrap();
    append_batch(&mut ledger, &publisher, &[record(&recorded, 0)])
        .await
        .unwrap();
    let (code, out) = completeness(&broker.bootstrap(), &path);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("1 break-glass grants on spr.break-glass"),
        "{out}"
    );

    let forged = grant("Covering for a colleague today");
    let altered = AccessEvent {
        subject: AccessSubject {
            id: "someone-else".into(),
            ..recorded.subject.clone()
        },
        ..recorded.clone()
    };
    publisher.publish_break_glass(&forged).await.unwrap();
    publisher.publish_break_glass(&altered).await.unwrap();
    let (code, out) = completeness(&broker.bootstrap(), &path);
    assert_eq!(code, Some(1), "{out}");
    for id in [forged.event_id, altered.event_id] {
        assert!(
            out.contains(&format!(
                "break-glass grant not in the ledger as recorded (forged or altered): {id}"
            )),
            "{out}"
        );
    }
    assert!(out.contains("3 break-glass grants"), "{out}");
}
