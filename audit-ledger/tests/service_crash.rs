//! The ledger service as a process: SIGKILLed again and again while access events
//! arrive, every event ends up in the ledger exactly once and the ledger verifies; told
//! to stop while its broker hangs, it stops.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use spr_audit_ledger::verify_from_genesis;
use spr_producers::EventPublisher;
use spr_schemas::{examples, AccessEvent};
use spr_testkit::{eventually, KillOnDrop, TestBroker};

/// Starts `spr-ledger` appending the access events on `bootstrap` to `ledger`.
fn start_ledger_service(bootstrap: &str, ledger: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_spr-ledger"))
        .args([
            "--bootstrap",
            bootstrap,
            "--max-batch",
            "50",
            "--max-batch-wait-ms",
            "2",
            "--ledger",
        ])
        .arg(ledger)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

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
    // Published last: once it is in the ledger, so is everything before it on the
    // topic's one partition, the redeliveries included.
    let marker = examples::access_event("9990000018".parse().unwrap());
    let publishing = {
        let (bootstrap, events, marker) = (bootstrap.clone(), events.clone(), marker.clone());
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
            publisher.publish_access_event(&marker).await.unwrap();
        })
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut kills = 0;
    while !publishing.is_finished() || kills < 10 {
        let mut child = KillOnDrop::new(start_ledger_service(&bootstrap, &ledger));
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..900))).await;
        child.kill();
        kills += 1;
    }
    publishing.await.unwrap();
    let mut last = KillOnDrop::new(start_ledger_service(&bootstrap, &ledger));
    let result = eventually(
        Duration::from_secs(90),
        "every access event in the ledger, the last published last",
        || {
            let (_, leaves) = spr_audit_ledger::load_leaves(&ledger).ok()?;
            let newest = AccessEvent::from_avro(leaves.last()?).ok()?;
            (newest.event_id == marker.event_id).then_some(())
        },
    )
    .await;
    last.kill();
    result.unwrap();
    let report = verify_from_genesis(&ledger).unwrap();
    assert!(report.first_failure.is_none(), "{:?}", report.first_failure);
    assert_eq!(report.entries, 3_001, "no duplicates after {kills} kills");
    let in_ledger: HashSet<_> = spr_audit_ledger::load_leaves(&ledger)
        .unwrap()
        .1
        .iter()
        .map(|l| AccessEvent::from_avro(l).unwrap().event_id)
        .collect();
    let published: HashSet<_> = events.iter().chain([&marker]).map(|e| e.event_id).collect();
    assert_eq!(in_ledger, published);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_service_told_to_stop_while_its_broker_hangs_exits_within_seconds() {
    let broker = TestBroker::start_durable().await.unwrap();
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.spr");
    // The service commits no offsets to the group (its progress is beside the ledger),
    // so today its consumer's close has nothing to wait for even without the limit of
    // `ClosesWithin`: this guards that it stops within that limit and a margin.
    // The publisher goes on until the broker hangs, so the service is mid-stream.
    let publishing = {
        let bootstrap = bootstrap.clone();
        tokio::spawn(async move {
            let publisher = EventPublisher::new(&bootstrap, Duration::from_secs(30)).unwrap();
            loop {
                let event = examples::access_event("9990000018".parse().unwrap());
                publisher.publish_access_event(&event).await.unwrap();
            }
        })
    };
    let service = KillOnDrop::new(start_ledger_service(&bootstrap, &ledger));
    eventually(
        Duration::from_secs(90),
        "the service appending access events",
        || (verify_from_genesis(&ledger).ok()?.entries > 1_000).then_some(()),
    )
    .await
    .unwrap();
    broker
        .freeze_and_stop(service, publishing)
        .await
        .expect("spr-ledger stops on SIGTERM although the broker hangs");
}
