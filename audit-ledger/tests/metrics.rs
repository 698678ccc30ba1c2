//! `spr-ledger --metrics-addr` against a real broker: what the service appended, skipped
//! and dead-lettered, how long entries took to become durable, how far it read, and its
//! checkpoints, as Prometheus reads them; and after a restart, the ledger's size again.

use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::message::OwnedHeaders;
use spr_audit_ledger::checkpoint::CheckpointSigner;
use spr_producers::EventPublisher;
use spr_schemas::{examples, now_millis, topics, AccessEvent};
use spr_testkit::http::{free_local_addr, http_get, metric_value};
use spr_testkit::{eventually, KillOnDrop, TestBroker};

const WAIT: Duration = Duration::from_secs(60);

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
    let events: Vec<AccessEvent> = (0..20)
        .map(|i| {
            let mut event = examples::access_event("9990000018".parse().unwrap());
            event.returned_count = i;
            event.occurred_at = published_at;
            event
        })
        .collect();
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
    let scrape = || {
        std::net::TcpStream::connect(&addr).ok()?;
        Some(http_get(&addr, "/metrics").1)
    };
    let metrics = eventually(WAIT, "every record handled and a checkpoint signed", || {
        let text = scrape()?;
        let handled = metric_value(&text, "spr_ledger_appended_total")?
            + metric_value(&text, "spr_ledger_duplicates_total")?
            + metric_value(&text, "spr_ledger_dead_letters_total")?;
        let signed = metric_value(&text, "spr_ledger_checkpoint_entries")?;
        (handled == 26.0 && signed == 20.0).then_some(text)
    })
    .await
    .unwrap();
    let value = |series: &str| {
        metric_value(&metrics, series).unwrap_or_else(|| panic!("{series} in {metrics}"))
    };
    assert_eq!(value("spr_ledger_appended_total"), 20.0);
    assert_eq!(value("spr_ledger_duplicates_total"), 5.0);
    assert_eq!(value("spr_ledger_dead_letters_total"), 1.0);
    assert_eq!(value("spr_ledger_entries"), 20.0);
    assert_eq!(value("spr_ledger_entry_delay_seconds_count"), 20.0);
    let delay = value("spr_ledger_entry_delay_seconds_sum") / 20.0;
    let since_published = (now_millis() - published_at) as f64 / 1000.0;
    assert!(
        (0.0..=since_published).contains(&delay),
        "mean delay {delay} s, published {since_published} s ago"
    );
    assert!(value("spr_ledger_commit_seconds_count") >= 1.0);
    let read: f64 = (0..topics::ACCESS_EVENTS.partitions)
        .map(|p| value(&format!("spr_ledger_next_offset{{partition=\"{p}\"}}")))
        .sum();
    assert_eq!(read, 26.0, "every record read, by offset");
    assert!(value("spr_ledger_checkpoints_total") >= 1.0);
    let signed_at = value("spr_ledger_last_checkpoint_timestamp_seconds");
    let now = (now_millis() / 1000) as f64;
    assert!(
        (now - 60.0..=now).contains(&signed_at),
        "{signed_at} vs {now}"
    );

    // Counters start again with the process; the ledger's size is read from the file.
    service.kill();
    let _service = start();
    let restarted = eventually(WAIT, "the restarted service's metrics", || {
        let text = scrape()?;
        (metric_value(&text, "spr_ledger_entries")? == 20.0).then_some(text)
    })
    .await
    .unwrap();
    assert_eq!(
        metric_value(&restarted, "spr_ledger_appended_total"),
        Some(0.0),
        "nothing appended twice after the restart: {restarted}"
    );
    assert_eq!(
        metric_value(&restarted, "spr_ledger_checkpoint_entries"),
        Some(20.0),
        "the last checkpoint, read at start: {restarted}"
    );
    assert!(
        metric_value(&restarted, "spr_ledger_last_checkpoint_timestamp_seconds").unwrap()
            >= signed_at - 1.0
    );
}
