//! The ledger service SIGKILLed again and again while access events arrive: every
//! event ends up in the ledger exactly once and the ledger verifies.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use spr_audit_ledger::verify_from_genesis;
use spr_producers::EventPublisher;
use spr_schemas::{examples, AccessEvent};
use spr_testkit::{eventually, KillOnDrop, TestBroker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_service_killed_during_appends_loses_and_duplicates_nothing() {
    let broker = TestBroker::start_memory().await.unwrap();
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.spr");
    let events: Vec<AccessEvent> = (0..3_000)
        .map(|i| {
            let mut event = examples::access_event("9990000018".parse().unwrap());
            event.returned_count = i;
            event
        })
        .collect();
    let publishing = {
        let (bootstrap, events) = (bootstrap.clone(), events.clone());
        tokio::spawn(async move {
            let publisher = EventPublisher::new(&bootstrap, Duration::from_secs(30)).unwrap();
            for chunk in events.chunks(100) {
                for event in chunk {
                    publisher.publish_access_event(event).await.unwrap();
                }
            }
            // The same events again: a redelivery the ledger must not append twice.
            for event in &events[..500] {
                publisher.publish_access_event(event).await.unwrap();
            }
        })
    };
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_spr-ledger"))
            .args([
                "--bootstrap",
                &bootstrap,
                "--max-batch",
                "50",
                "--max-batch-wait-ms",
                "2",
                "--ledger",
            ])
            .arg(&ledger)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut kills = 0;
    while !publishing.is_finished() || kills < 10 {
        let mut child = KillOnDrop::new(start());
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..900))).await;
        child.kill();
        kills += 1;
    }
    publishing.await.unwrap();
    let mut last = KillOnDrop::new(start());
    let path = ledger.clone();
    let result = eventually(
        Duration::from_secs(90),
        "every access event in the ledger",
        || {
            let report = verify_from_genesis(&path).ok()?;
            (report.entries >= 3_000).then_some(report)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    last.kill();
    let report = result.unwrap();
    assert!(report.first_failure.is_none(), "{:?}", report.first_failure);
    assert_eq!(
        verify_from_genesis(&ledger).unwrap().entries,
        3_000,
        "no duplicates after {kills} kills"
    );
    let in_ledger: HashSet<_> = spr_audit_ledger::load_leaves(&ledger)
        .unwrap()
        .1
        .iter()
        .map(|l| AccessEvent::from_avro(l).unwrap().event_id)
        .collect();
    let published: HashSet<_> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(in_ledger, published);
}
