//! `spr-ledger --metrics-addr` against a real broker: what the service appended, skipped
//! and dead-lettered, how long entries took to become durable, how far it read, and its
//! checkpoints, as Prometheus reads them; and after a restart, the ledger's size and
//! last checkpoint again, with counters that start from zero.

use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::message::OwnedHeaders;
use spr_audit_ledger::checkpoint::CheckpointSigner;
use spr_producers::EventPublisher;
use spr_schemas::{examples, now_millis, topics, AccessEvent};
use spr_testkit::http::{free_local_addr, http_get, metric_value};
use spr_testkit::{eventually, KillOnDrop, TestBroker};

const WAIT: Duration = Duration::from_secs(60);
/// How long before publishing the accesses happened: every delay is at least this.
const ACCESSED_BEFORE_MS: i64 = 30_000;

fn access_events(n: i32, occurred_at: i64) -> Vec<AccessEvent> {
    (0..n)
        .map(|i| {
            let mut event = examples::access_event("9990000018".parse().unwrap());
            event.returned_count = i;
            event.occurred_at = occurred_at;
            event
        })
        .collect()
}

/// The metrics once every series in `wanted` has its value.
async fn metrics_showing(addr: &str, what: &str, wanted: &[(&str, f64)]) -> String {
    eventually(WAIT, what, || {
        let (_, text) = http_get(addr, "/metrics")?;
        wanted
            .iter()
            .all(|(series, value)| metric_value(&text, series) == Some(*value))
            .then_some(text)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_service_reports_appends_duplicates_dead_letters_delay_offsets_and_checkpoints()
{
    let broker = TestBroker::start_memory().await.unwrap();
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.spr");
    let key = dir.path().join("checkpoint.key");
    let signer = CheckpointSigner::generate("spr.test/ledger").unwrap();
    std::fs::write(&key, signer.private_key()).unwrap();

    let published_at = now_millis();
    let events = access_events(20, published_at - ACCESSED_BEFORE_MS);
    let publisher = EventPublisher::new(&bootstrap, Duration::from_secs(30)).unwrap();
    for event in events.iter().chain(&events[..5]) {
        publisher.publish_access_event(event).await.unwrap();
    }
    publisher
        .publish_raw(
            topics::ACCESS_EVENTS.name,
            b"9990000018",
            b"not an access event",
            OwnedHeaders::new(),
        )
        .await
        .unwrap();

    let addr = free_local_addr();
    let start = || {
        KillOnDrop::new(
            Command::new(env!("CARGO_BIN_EXE_spr-ledger"))
                .args(["--bootstrap", &bootstrap, "--max-batch-wait-ms", "5"])
                .args(["--checkpoint-every-ms", "100", "--metrics-addr", &addr])
                .arg("--ledger")
                .arg(&ledger)
                .arg("--checkpoint-key")
                .arg(&key)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let mut service = start();
    assert_eq!(
        topics::ACCESS_EVENTS.partitions,
        1,
        "the ledger reads one partition"
    );
    let metrics = metrics_showing(
        &addr,
        "every record handled and a checkpoint signed",
        &[
            ("spr_ledger_appended_total", 20.0),
            ("spr_ledger_duplicates_total", 5.0),
            ("spr_ledger_dead_letters_total", 1.0),
            ("spr_ledger_entries", 20.0),
            ("spr_ledger_entry_delay_seconds_count", 20.0),
            ("spr_ledger_next_offset{partition=\"0\"}", 26.0),
            ("spr_ledger_checkpoint_entries", 20.0),
        ],
    )
    .await;
    let value = |series: &str| {
        metric_value(&metrics, series).unwrap_or_else(|| panic!("{series} in {metrics}"))
    };
    let mean_delay = value("spr_ledger_entry_delay_seconds_sum") / 20.0;
    let since_accessed = (now_millis() - published_at + ACCESSED_BEFORE_MS) as f64 / 1000.0;
    assert!(
        (ACCESSED_BEFORE_MS as f64 / 1000.0..=since_accessed).contains(&mean_delay),
        "mean delay {mean_delay} s: measured from the access, {since_accessed} s ago"
    );
    assert!(value("spr_ledger_commit_seconds_count") >= 1.0);
    assert!(value("spr_ledger_checkpoints_total") >= 1.0);
    let signed_at = value("spr_ledger_last_checkpoint_timestamp_seconds");
    let now = (now_millis() / 1000) as f64;
    assert!(
        (now - 60.0..=now).contains(&signed_at),
        "{signed_at} vs {now}"
    );

    // After a restart the gauges come from the files, before anything is read...
    service.kill();
    let _service = start();
    metrics_showing(
        &addr,
        "the restarted service's gauges",
        &[
            ("spr_ledger_entries", 20.0),
            ("spr_ledger_checkpoint_entries", 20.0),
            ("spr_ledger_next_offset{partition=\"0\"}", 26.0),
        ],
    )
    .await;
    // ...and the counters count only what this process did: 3 redelivered, 2 new.
    let more = access_events(2, now_millis());
    for event in events[..3].iter().chain(&more) {
        publisher.publish_access_event(event).await.unwrap();
    }
    metrics_showing(
        &addr,
        "the restarted service's counts",
        &[
            ("spr_ledger_appended_total", 2.0),
            ("spr_ledger_duplicates_total", 3.0),
            ("spr_ledger_dead_letters_total", 0.0),
            ("spr_ledger_entries", 22.0),
            ("spr_ledger_next_offset{partition=\"0\"}", 31.0),
        ],
    )
    .await;
}
