//! The projector against a real tansu broker and a real RocksDB.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message, OwnedHeaders};
use spr_producers::synthetic::population;
use spr_producers::EventPublisher;
use spr_projector::{ProjectionStore, TimelineCursor};
use spr_schemas::topics::{self, dead_letter_headers as dlq};
use spr_schemas::{examples, NhsNumber};
use spr_testkit::{eventually, KillOnDrop, TestBroker};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_event_is_projected_once_in_time_order_and_republishing_changes_nothing() {
    let broker = TestBroker::start_memory().await.unwrap();
    let patients = population(60, 11);
    let published = publish(&broker.bootstrap(), &patients).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ProjectionStore::open(dir.path(), false).unwrap());
    let (stop, handle) = spawn_worker(
        worker_config(&broker.bootstrap(), "projector-a"),
        Arc::clone(&store),
    );

    wait_caught_up(&published.end_offsets, &store, false).await;
    assert_eq!(store.event_count().unwrap(), published.delivered);
    assert_timelines_match(&store, &patients);
    let digest = store.content_digest().unwrap();

    // The same events again (a producer retrying after a lost acknowledgement, say).
    let again = publish(&broker.bootstrap(), &patients).await;
    wait_caught_up(&again.end_offsets, &store, false).await;
    assert_eq!(store.event_count().unwrap(), published.delivered);
    assert_eq!(
        store.content_digest().unwrap(),
        digest,
        "re-published events changed the projection"
    );

    // Paging walks the same timeline in pieces without gaps or repeats.
    let patient = patients.iter().max_by_key(|p| p.events.len()).unwrap();
    let (mut cursor, mut paged) = (None, Vec::new());
    loop {
        let page = store
            .timeline(&patient.nhs_number, cursor.as_ref(), 3)
            .unwrap();
        paged.extend(page.entries.iter().map(|e| e.event_id));
        match page.next_cursor {
            Some(c) => cursor = Some(TimelineCursor::parse(&c).unwrap()),
            None => break,
        }
    }
    assert_eq!(
        paged,
        expected_timeline(patient)
            .iter()
            .map(|e| e.event_id)
            .collect::<Vec<_>>()
    );
    stop.send(()).unwrap();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_records_are_dead_lettered_and_the_good_ones_around_them_are_projected() {
    let broker = TestBroker::start_memory().await.unwrap();
    let bootstrap = broker.bootstrap();
    let patient: NhsNumber = "9990000018".parse().unwrap();
    let publisher = EventPublisher::new(&bootstrap, Duration::from_secs(30)).unwrap();
    let before = examples::allergy(patient);
    let after = examples::observation(patient);
    let garbage = b"{\"not\": \"avro\"}".to_vec();
    let wrong_key = examples::medication_prescribed(patient).to_avro().unwrap();
    let headers = OwnedHeaders::new;
    let topic = topics::PATIENT_EVENTS.name;
    let deliveries = [
        publisher.publish_clinical_event(&before).await.unwrap(),
        publisher
            .publish_raw(topic, patient.as_str().as_bytes(), &garbage, headers())
            .await
            .unwrap(),
        publisher
            .publish_raw(topic, b"9434765919", &wrong_key, headers())
            .await
            .unwrap(),
        publisher.publish_clinical_event(&after).await.unwrap(),
    ];
    let mut ends = BTreeMap::new();
    for d in deliveries {
        let end = ends.entry(d.partition).or_insert(0);
        *end = (*end).max(d.offset + 1);
    }

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ProjectionStore::open(dir.path(), false).unwrap());
    let (stop, handle) = spawn_worker(
        worker_config(&bootstrap, "projector-dlq"),
        Arc::clone(&store),
    );
    wait_caught_up(&ends, &store, false).await;
    let timeline: Vec<_> = store
        .timeline(&patient, None, 100)
        .unwrap()
        .entries
        .iter()
        .map(|e| e.event_id)
        .collect();
    // Both examples share an occurred_at, so the timeline orders them by event id.
    let mut expected = vec![before.event_id, after.event_id];
    expected.sort();
    assert_eq!(timeline, expected);

    let consumer: StreamConsumer = spr_producers::client_config(&bootstrap)
        .unwrap()
        .set("group.id", "dlq-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topics::DEAD_LETTER.name]).unwrap();
    let mut dead = HashMap::new();
    while dead.len() < 2 {
        let m = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .expect("dead letters arrive")
            .unwrap();
        let header = |name: &str| {
            let headers = m.headers().expect("dead letters carry headers");
            let h = headers
                .iter()
                .find(|h| h.key == name)
                .unwrap_or_else(|| panic!("header {name}"));
            String::from_utf8(h.value.unwrap().to_vec()).unwrap()
        };
        assert_eq!(header(dlq::SOURCE_TOPIC), topic);
        assert!(header(dlq::SOURCE_PARTITION).parse::<i32>().unwrap() >= 0);
        header(dlq::SOURCE_OFFSET).parse::<i64>().unwrap();
        dead.insert(m.payload().unwrap().to_vec(), header(dlq::REASON));
    }
    assert!(
        dead[&garbage].contains("single-object marker"),
        "{}",
        dead[&garbage]
    );
    assert!(
        dead[&wrong_key].contains("not the event's NHS number"),
        "{}",
        dead[&wrong_key]
    );
    stop.send(()).unwrap();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_mid_stream_ends_with_the_same_state_as_an_uninterrupted_run() {
    let broker = TestBroker::start_memory().await.unwrap();
    let bootstrap = broker.bootstrap();
    let patients = population(400, 23);
    let (first, second) = patients.split_at(200);
    let mut ends = publish(&bootstrap, first).await.end_offsets;

    let dir = tempfile::tempdir().unwrap();
    let (killed_db, secondary) = (dir.path().join("killed"), dir.path().join("secondary"));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    // A patient at a time, so that the log grows while the first projectors run.
    let mut publishing = GatedPublisher::start(&bootstrap, second);
    publishing.allow(second.len());
    // At least 20 kills, and more until the second half is fully published.
    let mut round = 0;
    while round < 20 || !publishing.is_finished() {
        let mut child = KillOnDrop::new(start_projector_process(
            &bootstrap,
            &killed_db,
            "projector-killed",
            &[],
        ));
        if round == 0 {
            eventually(WAIT, "the projector to create its database", || {
                killed_db.exists().then_some(())
            })
            .await
            .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..900))).await;
        child.kill();
        round += 1;
    }
    merge_ends(&mut ends, publishing.finish().await);
    let mut last = KillOnDrop::new(start_projector_process(
        &bootstrap,
        &killed_db,
        "projector-killed",
        &[],
    ));
    let follower = ProjectionStore::open_secondary(&killed_db, &secondary, 8 << 20).unwrap();
    wait_caught_up(&ends, &follower, true).await;
    last.kill();
    drop(follower);

    let clean_dir = tempfile::tempdir().unwrap();
    let clean = Arc::new(ProjectionStore::open(clean_dir.path(), false).unwrap());
    let (stop, handle) = spawn_worker(
        worker_config(&bootstrap, "projector-clean"),
        Arc::clone(&clean),
    );
    wait_caught_up(&ends, &clean, false).await;
    stop.send(()).unwrap();
    handle.await.unwrap();

    let killed = ProjectionStore::open(&killed_db, false).unwrap();
    let published: usize = patients.iter().map(|p| p.events.len()).sum();
    assert_eq!(
        killed.event_count().unwrap(),
        published as u64,
        "no event lost or duplicated"
    );
    assert_timelines_match(&killed, &patients);
    assert_eq!(
        hex::encode(killed.content_digest().unwrap()),
        hex::encode(clean.content_digest().unwrap()),
        "a killed and restarted projector must match an uninterrupted one"
    );
}
