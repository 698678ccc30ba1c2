//! `ClusterWatch` against real brokers: a consumer whose bootstrap address comes to
//! reach another Kafka cluster while it runs (a DNS name switched in a failover) is
//! told so, and a consumer started against another cluster is refused.

use std::time::Duration;

use rdkafka::consumer::StreamConsumer;
use spr_producers::consume::{consumer_config, partitions_from_start};
use spr_producers::continuity::{ClusterAlert, ClusterWatch, LogMismatch};
use spr_schemas::topics;
use spr_testkit::TestBroker;

/// An SPR consumer, watched, that has read the metadata of `spr.patient-events` and
/// asks for metadata every half second (SPR's consumers: once a minute). It is given no
/// partitions: librdkafka 2.12 can crash (SIGSEGV in `rd_kafka_metadata_cache_find`)
/// when a fetch answered by a broker of another tansu cluster reports a new leader.
fn consumer(bootstrap: &str) -> StreamConsumer<ClusterAlert> {
    let mut config = consumer_config(bootstrap, "cluster-watch").unwrap();
    config.set("topic.metadata.refresh.interval.ms", "500");
    let consumer: StreamConsumer<ClusterAlert> =
        config.create_with_context(ClusterAlert::default()).unwrap();
    partitions_from_start(&consumer, topics::PATIENT_EVENTS.name, None).unwrap();
    consumer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_whose_address_comes_to_reach_another_cluster_is_told_so() {
    let mut broker = TestBroker::start_durable_in_cluster("spr-a").await.unwrap();
    let running = consumer(&broker.bootstrap());
    let mut watch = ClusterWatch::start(&running, None).unwrap();
    assert_eq!(
        watch.cluster_id(),
        Some("spr-a"),
        "nothing stored: the broker's"
    );
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        watch.check(&running).unwrap();
    }

    // Seen within seconds, well before the watch's own look a minute after its start:
    // librdkafka's warning of another cluster makes it look at once.
    broker.restart_in_cluster("spr-b").await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            // Polling the consumer serves librdkafka's queue, which carries its warnings.
            let _ = tokio::time::timeout(Duration::from_millis(100), running.recv()).await;
            if let Err(mismatch) = watch.check(&running) {
                return mismatch;
            }
        }
    })
    .await
    .expect("the other cluster seen within 30 s");
    assert_eq!(
        seen,
        LogMismatch::OtherCluster {
            expected: "spr-a".into(),
            found: "spr-b".into()
        }
    );

    let started = consumer(&broker.bootstrap());
    assert_eq!(
        ClusterWatch::start(&started, Some("spr-a".into())).unwrap_err(),
        seen,
        "a consumer started against the other cluster with spr-a stored is refused"
    );
    assert_eq!(
        ClusterWatch::start(&started, Some("spr-b".into()))
            .unwrap()
            .cluster_id(),
        Some("spr-b")
    );
}
