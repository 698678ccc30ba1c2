//! The projector's operational commands against a real tansu broker and a real
//! RocksDB: dead-letter listing and replay, rebuild, checkpoints, metrics and readiness.

mod support;

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use spr_producers::consume::MAX_DEAD_LETTER_VALUE_BYTES;
use spr_producers::synthetic::population;
use spr_producers::EventPublisher;
use spr_projector::dead_letters::{read_dead_letters, replay_dead_letters, ReplayState};
use spr_projector::{store_format, ProjectionStore};
use spr_schemas::topics::{self, dead_letter_headers as dlq};
use spr_schemas::{examples, NhsNumber};
use spr_testkit::http::{free_local_addr, http_get};
use spr_testkit::tools::successful_stdout;
use spr_testkit::{committed_offsets, eventually, KillOnDrop, TestBroker};
use support::*;

fn projector(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spr-projector"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("spr-projector runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_that_now_decodes_is_replayed_once_and_one_that_does_not_is_left() {
    let broker = TestBroker::start_memory().await.unwrap();
    let bootstrap = broker.bootstrap();
    let patient: NhsNumber = "9990000018".parse().unwrap();
    let publisher = EventPublisher::new(&bootstrap, Duration::from_secs(30)).unwrap();
    let garbage = b"not avro at all".to_vec();
    let delivered = publisher
        .publish_raw(
            topics::PATIENT_EVENTS.name,
            patient.as_str().as_bytes(),
            &garbage,
            OwnedHeaders::new(),
        )
        .await
        .unwrap();
    // A record an older projector could not decode (say, an unknown fingerprint), now
    // valid, dead-lettered twice (a retry publishes a dead letter again).
    let fixed = examples::allergy(patient);
    for _ in 0..2 {
        let headers = [
            (dlq::SOURCE_TOPIC, topics::PATIENT_EVENTS.name),
            (dlq::SOURCE_PARTITION, "3"),
            (dlq::SOURCE_OFFSET, "999"),
            (
                dlq::REASON,
                "writer schema fingerprint is not in the schema catalogue",
            ),
        ]
        .into_iter()
        .fold(OwnedHeaders::new(), |h, (key, value)| {
            h.insert(Header {
                key,
                value: Some(value),
            })
        });
        publisher
            .publish_raw(
                topics::DEAD_LETTER.name,
                patient.as_str().as_bytes(),
                &fixed.to_avro().unwrap(),
                headers,
            )
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ProjectionStore::open(&dir.path().join("db"), false).unwrap());
    let (stop, handle) = spawn_worker(worker_config(&bootstrap, "dlq"), Arc::clone(&store));
    let ends = [(delivered.partition, delivered.offset + 1)].into();
    wait_caught_up(&ends, &store, false).await;

    let listed = successful_stdout(&projector(&[
        "dead-letters",
        "--bootstrap",
        &bootstrap,
        "--json",
        "--idle-ms",
        "1500",
    ]));
    let lines: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(lines
        .iter()
        .any(|l| l["reason"].as_str().unwrap().contains("marker")));
    assert!(lines.iter().all(|l| l["key"] == patient.as_str()));

    let mut state = ReplayState::load(&dir.path().join("replay.json")).unwrap();
    let idle = Duration::from_millis(1500);
    let report = replay_dead_letters(&bootstrap, &mut state, idle)
        .await
        .unwrap();
    assert_eq!(report.replayed.len(), 1, "{report:?}");
    assert_eq!(
        report.already_replayed, 1,
        "the second copy is not replayed"
    );
    assert_eq!(report.still_failing.len(), 1);
    assert_eq!(report.still_failing[0].0.value, garbage);
    eventually(WAIT, "the replayed event projected", || {
        store.contains_event(&fixed.event_id).unwrap().then_some(())
    })
    .await
    .unwrap();

    let mut reloaded = ReplayState::load(&dir.path().join("replay.json")).unwrap();
    let damaged = dir.path().join("damaged.json");
    std::fs::write(&damaged, "{not json").unwrap();
    let refused = ReplayState::load(&damaged).unwrap_err().to_string();
    assert!(refused.contains("move it aside"), "{refused}");
    let again = replay_dead_letters(&bootstrap, &mut reloaded, idle)
        .await
        .unwrap();
    assert!(again.replayed.is_empty(), "{again:?}");
    assert_eq!(again.already_replayed, 2);
    assert_eq!(again.still_failing.len(), 1);
    assert_eq!(
        read_dead_letters(&bootstrap, idle).await.unwrap().len(),
        3,
        "dead letters are left on their topic"
    );
    stop.send(()).unwrap();
    handle.await.unwrap();
}

/// A record over the client's message size cannot be dead-lettered whole: its start is
/// kept, marked, and the projection goes on past it (it once stalled every partition).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_too_large_to_dead_letter_whole_keeps_its_start_and_the_projection_goes_on() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let broker = TestBroker::start_memory().await.unwrap();
    let bootstrap = broker.bootstrap();
    let patient: NhsNumber = "9990000018".parse().unwrap();
    let large: FutureProducer = spr_producers::client_config(&bootstrap)
        .unwrap()
        .set("message.max.bytes", "4000000")
        .create()
        .unwrap();
    let huge = vec![0xc3_u8; 1_100_000];
    let key = format!("\u{1b}[2J{patient}");
    large
        .send(
            FutureRecord::to(topics::PATIENT_EVENTS.name)
                .key(key.as_bytes())
                .payload(&huge)
                .partition(0),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let publisher = EventPublisher::new(&bootstrap, Duration::from_secs(30)).unwrap();
    let good = examples::allergy(patient);
    let delivered = publisher.publish_clinical_event(&good).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ProjectionStore::open(&dir.path().join("db"), false).unwrap());
    let (stop, handle) = spawn_worker(worker_config(&bootstrap, "large"), Arc::clone(&store));
    let ends = [(delivered.partition, delivered.offset + 1)].into();
    wait_caught_up(&ends, &store, false).await;
    assert!(store.contains_event(&good.event_id).unwrap());

    let idle = Duration::from_millis(1500);
    let dead = read_dead_letters(&bootstrap, idle).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].truncated);
    assert_eq!(dead[0].size, huge.len());
    assert_eq!(dead[0].value.len(), MAX_DEAD_LETTER_VALUE_BYTES);
    let listed = successful_stdout(&projector(&[
        "dead-letters",
        "--bootstrap",
        &bootstrap,
        "--idle-ms",
        "1500",
    ]));
    assert!(
        listed.contains("size=1100000 (truncated)") && listed.contains("\\u{1b}[2J"),
        "{listed}"
    );
    assert!(
        !listed.contains('\u{1b}'),
        "no raw escape reaches the terminal"
    );
    let mut state = ReplayState::load(&dir.path().join("replay.json")).unwrap();
    let report = replay_dead_letters(&bootstrap, &mut state, idle)
        .await
        .unwrap();
    assert!(report.replayed.is_empty());
    assert_eq!(report.still_failing.len(), 1);
    assert!(
        report.still_failing[0]
            .1
            .contains("keeps only the first 262144 of its 1100000 bytes"),
        "{report:?}"
    );
    stop.send(()).unwrap();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rebuilds_of_the_log_give_the_same_digest_check_format_accepts_them_and_a_used_directory_is_refused(
) {
    let broker = TestBroker::start_memory().await.unwrap();
    let bootstrap = broker.bootstrap();
    let published = publish(&bootstrap, &population(80, 3)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for name in ["first", "second"] {
        let db = dir.path().join(name);
        let out = successful_stdout(&projector(&[
            "--db",
            db.to_str().unwrap(),
            "rebuild",
            "--bootstrap",
            &bootstrap,
            "--idle-ms",
            "1500",
        ]));
        assert!(
            out.contains(&format!("events {}", published.delivered)),
            "{out}"
        );
        digests.push(
            out.lines()
                .find(|l| l.starts_with("digest"))
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(digests[0], digests[1]);
    let first = dir.path().join("first");
    let checked = successful_stdout(&projector(&[
        "--db",
        first.to_str().unwrap(),
        "check-format",
    ]));
    assert!(checked.contains(&store_format()), "{checked}");
    let missing = projector(&[
        "--db",
        dir.path().join("none").to_str().unwrap(),
        "check-format",
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no projection at"));
    let refused = projector(&[
        "--db",
        dir.path().join("first").to_str().unwrap(),
        "rebuild",
        "--bootstrap",
        &bootstrap,
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not empty"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_taken_online_resumes_to_the_same_digest_as_an_uninterrupted_run() {
    let broker = TestBroker::start_memory().await.unwrap();
    let bootstrap = broker.bootstrap();
    let patients = population(200, 8);
    let (first, second) = patients.split_at(100);
    let first_ends = publish(&bootstrap, first).await.end_offsets;
    let dir = tempfile::tempdir().unwrap();
    let live = Arc::new(ProjectionStore::open(&dir.path().join("live"), false).unwrap());
    let (stop, handle) = spawn_worker(worker_config(&bootstrap, "live"), Arc::clone(&live));
    wait_caught_up(&first_ends, &live, false).await;
    let inside = dir.path().join("live").join("copy");
    assert!(
        matches!(
            live.checkpoint(&inside),
            Err(spr_projector::StoreError::CheckpointInside { .. })
        ),
        "a checkpoint inside the live database is refused"
    );
    assert!(!inside.exists());
    let checkpoint = dir.path().join("checkpoint");
    live.checkpoint(&checkpoint).unwrap();
    let mut ends = first_ends.clone();
    ends.extend(publish(&bootstrap, second).await.end_offsets);
    wait_caught_up(&ends, &live, false).await;
    stop.send(()).unwrap();
    handle.await.unwrap();

    let restored = Arc::new(ProjectionStore::open(&checkpoint, false).unwrap());
    for (partition, end) in &first_ends {
        let stored = restored
            .next_offset(topics::PATIENT_EVENTS.name, *partition)
            .unwrap();
        assert!(
            stored.is_some_and(|s| s <= ends[partition] && s >= *end),
            "{stored:?}"
        );
    }
    let (stop, handle) = spawn_worker(worker_config(&bootstrap, "restored"), Arc::clone(&restored));
    wait_caught_up(&ends, &restored, false).await;
    stop.send(()).unwrap();
    handle.await.unwrap();
    assert_eq!(
        restored.content_digest().unwrap(),
        live.content_digest().unwrap()
    );

    // The offline command copies a stopped projection.
    drop(live);
    let copy = dir.path().join("copy");
    successful_stdout(&projector(&[
        "--db",
        dir.path().join("live").to_str().unwrap(),
        "checkpoint",
        "--out",
        copy.to_str().unwrap(),
    ]));
    assert_eq!(
        ProjectionStore::open(&copy, false)
            .unwrap()
            .content_digest()
            .unwrap(),
        restored.content_digest().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_ready_the_stored_readiness_and_the_group_offsets_report_progress() {
    let broker = TestBroker::start_memory().await.unwrap();
    let bootstrap = broker.bootstrap();
    let published = publish(&bootstrap, &population(50, 4)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let addr = free_local_addr();
    let _projector = KillOnDrop::new(start_projector_process(
        &bootstrap,
        &db,
        "metrics",
        &["--metrics-addr", &addr],
    ));
    let follower = eventually(WAIT, "the projector created its database", || {
        ProjectionStore::open_secondary(&db, &dir.path().join("secondary"), 8 << 20).ok()
    })
    .await
    .unwrap();
    wait_caught_up(&published.end_offsets, &follower, true).await;
    // Lag tools read the group's offsets: every partition's end, once it is projected.
    let partitions = topics::PATIENT_EVENTS.partitions;
    let ends: Vec<Option<i64>> = (0..partitions)
        .map(|p| published.end_offsets.get(&p).copied())
        .collect();
    eventually(
        WAIT,
        "the group's offsets at the end of each partition",
        || {
            let committed = committed_offsets(
                &bootstrap,
                "metrics",
                topics::PATIENT_EVENTS.name,
                partitions,
            );
            (committed.ok()? == ends).then_some(())
        },
    )
    .await
    .unwrap();

    let expected = format!(
        "spr_projector_events_projected_total {}",
        published.delivered
    );
    let metrics = eventually(WAIT, "the metrics count every event", || {
        let (_, body) = http_get(&addr, "/metrics")?;
        body.contains(&expected).then_some(body)
    })
    .await
    .unwrap();
    for name in [
        "spr_projector_dead_letters_total 0",
        "spr_projector_batch_write_seconds_bucket",
        "spr_projector_applied_offset{partition=\"0\"}",
        "spr_projector_lag_records{partition=\"3\"} 0",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
    let (status, body) = http_get(&addr, "/ready").expect("/ready answers");
    assert_eq!(status, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["partitions"].as_array().unwrap().len(), 4);
    assert!(ready["seconds_behind"].as_f64().unwrap() < 10.0);

    let readiness = eventually(WAIT, "the readiness in meta", || {
        follower.catch_up().ok()?;
        follower.readiness().unwrap()
    })
    .await
    .unwrap();
    let now = spr_schemas::now_millis();
    assert!(
        readiness.seconds_behind(now).unwrap() < 10.0,
        "{readiness:?}"
    );
    assert_eq!(readiness.records_behind(), 0);
    for (partition, end) in &published.end_offsets {
        assert_eq!(readiness.partitions[partition].applied, *end);
    }
}

/// The commands that read or copy a projection refuse a directory that holds none,
/// and leave it as it was, rather than creating an empty projection there and
/// reporting on it.
#[test]
fn commands_on_an_existing_projection_refuse_a_directory_without_one_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes");
    std::fs::create_dir(&notes).unwrap();
    std::fs::write(notes.join("readme.txt"), "not a projection").unwrap();
    let out = dir.path().join("copy");
    let out = out.to_str().unwrap();
    let db = notes.to_str().unwrap();
    for args in [
        vec!["--db", db, "digest"],
        vec!["--db", db, "check-format"],
        vec!["--db", db, "checkpoint", "--out", out],
    ] {
        let output = projector(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr.contains("is not a projection (no RocksDB database in it)"),
            "{args:?}: {stderr}"
        );
        let left: Vec<_> = std::fs::read_dir(&notes)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            ["readme.txt"],
            "{args:?} left the directory as it was"
        );
    }
    // A RocksDB database that is not a projection is refused as such too.
    let other = dir.path().join("other-db");
    drop(rocksdb::DB::open_default(&other).unwrap());
    let output = projector(&["--db", other.to_str().unwrap(), "digest"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(
            "is not a projection (a RocksDB database without the projection's column families"
        ),
        "{stderr}"
    );
}
