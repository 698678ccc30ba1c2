//! Where tansu 0.6 differs from Apache Kafka in ways that matter to SPR Timeline.
//! Each test pins the gap down; if tansu fixes one, its test fails and docs/architecture.md
//! ("What we learned about tansu") must be updated along with the design around it.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use spr_producers::EventPublisher;
use spr_schemas::{examples, topics, ClinicalEvent};
use spr_testkit::TestBroker;

/// Publishes 200 events of one patient (so, in practice, one or a few record batches
/// on one partition) and returns that partition and the offset after the last record.
async fn publish_one_patients_events(broker: &TestBroker) -> (i32, i64) {
    let patient = "9990000018".parse().unwrap();
    let events: Vec<ClinicalEvent> = (0..200).map(|_| examples::observation(patient)).collect();
    let publisher = EventPublisher::new(&broker.bootstrap(), Duration::from_secs(30)).unwrap();
    let summary = publisher
        .publish_clinical_events(&events, || {})
        .await
        .unwrap();
    assert_eq!(summary.end_offsets.len(), 1, "one patient, one partition");
    summary.end_offsets.into_iter().next().unwrap()
}

/// Apache Kafka answers ListOffsets(latest) with the offset after the last record.
/// tansu answers with a smaller number once records arrive in multi-record batches, so
/// neither consumer lag nor "caught up" may be computed from it: the tests wait for
/// the end offsets from the producer's delivery reports instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_reports_a_high_watermark_below_the_end_of_a_batched_partition() {
    let broker = TestBroker::start_memory().await.unwrap();
    let (partition, end) = publish_one_patients_events(&broker).await;
    assert_eq!(end, 200);

    let consumer: BaseConsumer = spr_producers::client_config(&broker.bootstrap())
        .unwrap()
        .create()
        .unwrap();
    let (_, high) = consumer
        .fetch_watermarks(
            topics::PATIENT_EVENTS.name,
            partition,
            Duration::from_secs(10),
        )
        .unwrap();
    assert!(
        high < end,
        "tansu now reports the true high watermark ({high}); update the docs and lag design"
    );
}

/// Kafka transactions are not supported, so effectively-once cannot come from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_does_not_commit_kafka_transactions() {
    let broker = TestBroker::start_memory().await.unwrap();
    let bootstrap = broker.bootstrap();
    let outcome = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let producer: ThreadedProducer<DefaultProducerContext> =
            spr_producers::client_config(&bootstrap)
                .unwrap()
                .set("transactional.id", "spr-gap-probe")
                .create()
                .map_err(|e| e.to_string())?;
        let timeout = Duration::from_secs(10);
        producer
            .init_transactions(timeout)
            .map_err(|e| e.to_string())?;
        producer.begin_transaction().map_err(|e| e.to_string())?;
        producer
            .send(
                BaseRecord::to(topics::DEAD_LETTER.name)
                    .key("k")
                    .payload("v"),
            )
            .map_err(|(e, _)| e.to_string())?;
        producer
            .commit_transaction(timeout)
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap();
    assert!(
        outcome.is_err(),
        "tansu committed a transaction; revisit the effectively-once design notes"
    );
}

/// The offsets `consumer` receives until none has arrived for 3 s.
async fn offsets_until_idle(consumer: &rdkafka::consumer::StreamConsumer) -> Vec<i64> {
    use rdkafka::message::Message;
    let mut offsets = Vec::new();
    while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await {
        offsets.push(m.offset());
    }
    offsets
}

/// Apache Kafka serves a fetch from any offset, skipping the earlier records of the
/// batch that holds it. tansu serves nothing from inside a batch (and, once a later
/// batch exists, serves that one, silently skipping the rest of the first). So no SPR
/// consumer seeks to a stored offset: each reads its partitions from the beginning and
/// skips what it has already applied (projector: offsets in RocksDB; ledger: its
/// consumed-offset file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_serves_nothing_when_a_fetch_starts_inside_a_batch() {
    use rdkafka::consumer::StreamConsumer;
    use rdkafka::{Offset, TopicPartitionList};
    let broker = TestBroker::start_memory().await.unwrap();
    let (partition, end) = publish_one_patients_events(&broker).await;
    let from = |start: i64| {
        let consumer: StreamConsumer = spr_producers::client_config(&broker.bootstrap())
            .unwrap()
            .set("group.id", "probe")
            .create()
            .unwrap();
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(
            topics::PATIENT_EVENTS.name,
            partition,
            Offset::Offset(start),
        )
        .unwrap();
        consumer.assign(&list).unwrap();
        consumer
    };
    let whole = from(0);
    assert_eq!(
        offsets_until_idle(&whole).await,
        (0..end).collect::<Vec<_>>(),
        "from the start of the batch every record arrives"
    );
    let inside = from(57);
    let served = offsets_until_idle(&inside).await;
    assert!(served.iter().all(|o| *o >= 57), "{served:?}");
    assert!(
        served.len() < (end - 57) as usize,
        "tansu now serves fetches from inside a batch; the resume design can seek again"
    );
    // The same consumer is served the next batch once there is one: it was fetching
    // all along, and the rest of the first batch is skipped.
    let (_, later_end) = publish_one_patients_events(&broker).await;
    let later = offsets_until_idle(&inside).await;
    assert!(
        !later.is_empty() && later.iter().all(|o| (end..later_end).contains(o)),
        "the next batch, from offset {end}: {later:?}"
    );
}
