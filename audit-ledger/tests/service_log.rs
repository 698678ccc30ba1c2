//! The ledger service against an access-events log other than the one its `.consumed`
//! came from (the topic created again, another cluster): it stops rather than skip
//! access events, and carries on once `.consumed` is moved aside. It signs checkpoints
//! every 100 ms, so that it wakes up ten times a second while idle: only fresh answers
//! from the broker may count towards a verdict.

use std::path::Path;
use std::time::Duration;

use spr_audit_ledger::checkpoint::CheckpointSigner;
use spr_audit_ledger::service::{
    run_ledger_service, CheckpointPolicy, LedgerServiceConfig, ServiceError,
};
use spr_audit_ledger::verify_from_genesis;
use spr_producers::continuity::LogMismatch;
use spr_producers::EventPublisher;
use spr_schemas::{examples, AccessEvent};
use spr_testkit::{eventually, TestBroker};

const WAIT: Duration = Duration::from_secs(90);

/// The checkpoint key of every run (a fixed seed, so that each run can verify the
/// checkpoints of the runs before).
fn signer() -> CheckpointSigner {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        CheckpointSigner::generate("spr.test/ledger")
            .unwrap()
            .private_key()
    });
    CheckpointSigner::from_private_key(key).unwrap()
}

fn config(bootstrap: &str, ledger: &Path) -> LedgerServiceConfig {
    LedgerServiceConfig {
        bootstrap: bootstrap.into(),
        group_id: "ledger".into(),
        ledger_path: ledger.to_owned(),
        max_batch: 50,
        max_batch_wait: Duration::from_millis(5),
        checkpoints: Some(CheckpointPolicy {
            signer: signer(),
            every: Duration::from_millis(100),
        }),
        metrics: Default::default(),
        metrics_addr: None,
    }
}

/// `count` access events of their own (`returned_count` from `first`).
fn access_events(first: i32, count: i32) -> Vec<AccessEvent> {
    (first..first + count)
        .map(|i| {
            let mut event = examples::access_event("9990000018".parse().unwrap());
            event.returned_count = i;
            event
        })
        .collect()
}

/// Publishes `events`, in order.
async fn publish_events(bootstrap: &str, events: &[AccessEvent]) {
    let publisher = EventPublisher::new(bootstrap, Duration::from_secs(30)).unwrap();
    for event in events {
        publisher.publish_access_event(event).await.unwrap();
    }
}

/// Publishes `count` access events of their own (`returned_count` from `first`).
async fn publish(bootstrap: &str, first: i32, count: i32) {
    publish_events(bootstrap, &access_events(first, count)).await;
}

/// Runs the service until the ledger holds `entries`, then stops it.
async fn run_until(bootstrap: &str, ledger: &Path, entries: u64) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(run_ledger_service(config(bootstrap, ledger), async {
        let _ = stopped.await;
    }));
    let path = ledger.to_owned();
    eventually(WAIT, &format!("{entries} entries in the ledger"), || {
        let report = verify_from_genesis(&path).ok()?;
        (report.entries == entries).then_some(())
    })
    .await
    .unwrap();
    stop.send(()).unwrap();
    service.await.unwrap().unwrap();
}

/// Runs the service until it stops by itself.
async fn run_until_it_stops(bootstrap: &str, ledger: &Path) -> ServiceError {
    let run = run_ledger_service(config(bootstrap, ledger), std::future::pending());
    tokio::time::timeout(WAIT, run)
        .await
        .expect("the service stops by itself")
        .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_service_refuses_an_access_log_other_than_its_own_until_told_to_read_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.spr");
    let first = TestBroker::start_memory().await.unwrap();
    publish(&first.bootstrap(), 0, 120).await;
    run_until(&first.bootstrap(), &ledger, 120).await;
    drop(first);

    // The topic created again, with fewer records than `.consumed` counts as handled.
    let shorter = TestBroker::start_memory().await.unwrap();
    publish(&shorter.bootstrap(), 1_000, 30).await;
    let error = run_until_it_stops(&shorter.bootstrap(), &ledger).await;
    assert!(
        matches!(
            error,
            ServiceError::LogMismatch {
                mismatch: LogMismatch::Shorter {
                    end: 30,
                    next: 120,
                    ..
                },
                ..
            }
        ),
        "{error}"
    );
    let consumed = dir.path().join("ledger.spr.consumed");
    assert!(
        error
            .to_string()
            .contains(&format!("move {} aside", consumed.display())),
        "the remedy names the file to move: {error}"
    );
    drop(shorter);

    // Another log with other records at the offsets handled.
    let replaced = TestBroker::start_memory().await.unwrap();
    publish(&replaced.bootstrap(), 2_000, 150).await;
    let error = run_until_it_stops(&replaced.bootstrap(), &ledger).await;
    assert!(
        matches!(
            error,
            ServiceError::LogMismatch {
                mismatch: LogMismatch::Replaced { offset: 119, .. },
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        verify_from_genesis(&ledger).unwrap().entries,
        120,
        "nothing appended"
    );

    // Told to read this log whole, the service appends its access events after the old.
    std::fs::rename(&consumed, dir.path().join("ledger.spr.consumed.old-log")).unwrap();
    run_until(&replaced.bootstrap(), &ledger, 270).await;
    let report = verify_from_genesis(&ledger).unwrap();
    assert!(report.first_failure.is_none(), "{:?}", report.first_failure);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_service_refuses_another_kafka_cluster_even_one_holding_the_same_access_events()
{
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.spr");
    let events = access_events(0, 40);
    let first = TestBroker::start_memory_in_cluster("ledger-a")
        .await
        .unwrap();
    publish_events(&first.bootstrap(), &events).await;
    run_until(&first.bootstrap(), &ledger, 40).await;
    drop(first);

    // A copy of the log in another cluster, and more: the digests alone would accept it.
    let other = TestBroker::start_memory_in_cluster("ledger-b")
        .await
        .unwrap();
    publish_events(&other.bootstrap(), &events).await;
    publish(&other.bootstrap(), 40, 10).await;
    let error = run_until_it_stops(&other.bootstrap(), &ledger).await;
    assert!(
        matches!(
            &error,
            ServiceError::LogMismatch {
                mismatch: LogMismatch::OtherCluster { expected, found },
                ..
            } if expected == "ledger-a" && found == "ledger-b"
        ),
        "{error}"
    );
    assert_eq!(
        verify_from_genesis(&ledger).unwrap().entries,
        40,
        "nothing appended"
    );

    // Moved aside, `.consumed` no longer names a cluster: the service reads this log
    // whole, skipping the access events the ledger holds by their id.
    std::fs::rename(
        dir.path().join("ledger.spr.consumed"),
        dir.path().join("ledger.spr.consumed.cluster-a"),
    )
    .unwrap();
    run_until(&other.bootstrap(), &ledger, 50).await;
    let consumed = std::fs::read_to_string(dir.path().join("ledger.spr.consumed")).unwrap();
    assert!(consumed.starts_with("cluster ledger-b\n"), "{consumed}");
}
