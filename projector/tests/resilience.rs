//! The projector surviving its surroundings, against a real tansu broker: a broker
//! restart mid-stream, and instances joining, leaving and being killed while they
//! share the partitions (`--instance i --instances n`).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use spr_producers::continuity::LogMismatch;
use spr_producers::synthetic::{population, SyntheticPatient};
use spr_producers::PublishSummary;
use spr_projector::keys::partition_of;
use spr_projector::ownership::instance_partitions;
use spr_projector::rebuild::rebuild;
use spr_projector::{run_worker, ProjectionStore, WorkerConfig, WorkerError};
use spr_schemas::topics;
use spr_testkit::{eventually, KillOnDrop, TestBroker};
use support::*;

async fn rebuilt_digest(bootstrap: &str, dir: &Path) -> [u8; 32] {
    let config = WorkerConfig {
        max_batch_wait: Duration::from_millis(10),
        ..worker_config(bootstrap, "clean")
    };
    let store = rebuild(config, dir, Duration::from_millis(1500), Default::default())
        .await
        .unwrap();
    store.content_digest().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_and_duplicates_nothing() {
    let mut broker = TestBroker::start_durable().await.unwrap();
    let bootstrap = broker.bootstrap();
    let patients = population(300, 31);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ProjectionStore::open(&dir.path().join("db"), false).unwrap());
    let (stop, handle) = spawn_worker(worker_config(&bootstrap, "restart"), Arc::clone(&store));
    let mut ends = publish(&bootstrap, &patients[..100]).await.end_offsets;
    // Publishing spans the restart: half before the broker dies, the rest while it is
    // down and after it is back.
    let mut publishing = GatedPublisher::start(&bootstrap, &patients[100..200]);
    publishing.publish(50).await;
    assert!(!publishing.is_finished(), "the restart happens mid-stream");
    broker.kill();
    publishing.allow(50);
    broker.restart().await.unwrap();
    merge_ends(&mut ends, publishing.finish().await);
    merge_ends(
        &mut ends,
        publish(&bootstrap, &patients[200..]).await.end_offsets,
    );
    wait_caught_up(&ends, &store, false).await;
    stop.send(()).unwrap();
    handle.await.unwrap();

    let published: usize = patients.iter().map(|p| p.events.len()).sum();
    assert_eq!(store.event_count().unwrap(), published as u64);
    assert_timelines_match(&store, &patients);
    assert_eq!(
        rebuilt_digest(&bootstrap, &dir.path().join("clean")).await,
        store.content_digest().unwrap()
    );
}

/// Starts instance `instance` of `instances` on its own database.
fn start_instance(bootstrap: &str, db: &Path, instance: u32, instances: u32) -> KillOnDrop {
    let (i, n) = (instance.to_string(), instances.to_string());
    KillOnDrop::new(start_projector_process(
        bootstrap,
        db,
        "scale-out",
        &["--instance", &i, "--instances", &n],
    ))
}

/// Waits until each of `instances` instances (on `dbs`) has applied the partitions it
/// owns up to `ends`, reading each through a fresh secondary in `scratch`.
async fn wait_instances(
    dbs: &[PathBuf],
    instances: u32,
    ends: &BTreeMap<i32, i64>,
    scratch: &Path,
) {
    let all: Vec<i32> = (0..topics::PATIENT_EVENTS.partitions).collect();
    for i in 0..instances {
        let owned = instance_partitions(&all, i, instances);
        let owned_ends = ends
            .iter()
            .filter(|(p, _)| owned.contains(p))
            .map(|(p, e)| (*p, *e))
            .collect();
        let secondary = scratch.join(format!("secondary-{instances}-{i}"));
        let follower =
            ProjectionStore::open_secondary(&dbs[i as usize], &secondary, 8 << 20).unwrap();
        wait_caught_up(&owned_ends, &follower, true).await;
    }
}

fn owner_of(patient: &SyntheticPatient, instances: u32) -> usize {
    let partition = partition_of(
        patient.nhs_number.as_str().as_bytes(),
        topics::PATIENT_EVENTS.partitions,
    );
    partition as usize % instances as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_partitions_join_leave_and_die_without_losing_or_duplicating() {
    let broker = TestBroker::start_memory().await.unwrap();
    let bootstrap = broker.bootstrap();
    let patients = population(240, 17);
    let all: Vec<i32> = (0..topics::PATIENT_EVENTS.partitions).collect();
    let dir = tempfile::tempdir().unwrap();
    let dbs: Vec<_> = (0..3)
        .map(|i| dir.path().join(format!("instance-{i}")))
        .collect();

    // Two instances.
    let mut running: Vec<KillOnDrop> = (0..2)
        .map(|i| start_instance(&bootstrap, &dbs[i as usize], i, 2))
        .collect();
    let mut ends = publish(&bootstrap, &patients[..80]).await.end_offsets;
    // The partitioner the tests assume is the producer's: each partition's end offset
    // is the number of events of the patients keyed to it.
    for partition in &all {
        let keyed: usize = patients[..80]
            .iter()
            .filter(|p| {
                owner_of(p, topics::PATIENT_EVENTS.partitions as u32) == *partition as usize
            })
            .map(|p| p.events.len())
            .sum();
        assert_eq!(ends.get(partition).copied().unwrap_or(0), keyed as i64);
    }

    // A third joins while events arrive: every instance restarts as one of three.
    let mut publishing = GatedPublisher::start(&bootstrap, &patients[80..160]);
    publishing.publish(20).await;
    running.clear();
    running = (0..3)
        .map(|i| start_instance(&bootstrap, &dbs[i as usize], i, 3))
        .collect();
    publishing.publish(30).await;
    // Instance 1 is killed with those events arrived, and comes back while the rest do.
    running[1].kill();
    publishing.allow(10);
    running[1] = start_instance(&bootstrap, &dbs[1], 1, 3);
    merge_ends(&mut ends, publishing.finish().await);
    wait_instances(&dbs, 3, &ends, dir.path()).await;

    // The third leaves: back to two, while the last events arrive.
    running.clear();
    running = (0..2)
        .map(|i| start_instance(&bootstrap, &dbs[i as usize], i, 2))
        .collect();
    merge_ends(
        &mut ends,
        publish(&bootstrap, &patients[160..]).await.end_offsets,
    );
    wait_instances(&dbs, 2, &ends, dir.path()).await;
    running.clear();

    let stores: Vec<ProjectionStore> = dbs[..2]
        .iter()
        .map(|db| ProjectionStore::open(db, false).unwrap())
        .collect();
    for patient in &patients {
        let owner = owner_of(patient, 2);
        assert_timelines_match(&stores[owner], std::slice::from_ref(patient));
        let other = stores[1 - owner]
            .timeline(&patient.nhs_number, None, 10)
            .unwrap();
        assert!(
            other.entries.is_empty(),
            "{} held by a non-owner",
            patient.nhs_number
        );
    }
    let published: usize = patients.iter().map(|p| p.events.len()).sum();
    let held: u64 = stores.iter().map(|s| s.event_count().unwrap()).sum();
    assert_eq!(held, published as u64, "no event lost or held twice");
}

/// Runs a worker over `db` against `bootstrap` until it stops by itself.
async fn run_until_it_stops(bootstrap: &str, db: &Path) -> Result<(), WorkerError> {
    let store = Arc::new(ProjectionStore::open(db, false).unwrap());
    let config = worker_config(bootstrap, "other-log");
    tokio::time::timeout(WAIT, run_worker(config, store, std::future::pending()))
        .await
        .expect("the worker stops by itself")
}

/// Publishes `patients` to `broker`, then runs a worker on the projection at `db`
/// against it until it refuses the log: why.
async fn publish_and_run_until_refused(
    broker: &TestBroker,
    patients: &[SyntheticPatient],
    db: &Path,
) -> WorkerError {
    publish(&broker.bootstrap(), patients).await;
    run_until_it_stops(&broker.bootstrap(), db)
        .await
        .unwrap_err()
}

/// Projects `published` from `bootstrap` into the projection at `db`, then stops.
async fn project_until_caught_up(
    bootstrap: &str,
    db: &Path,
    published: &PublishSummary,
) -> Arc<ProjectionStore> {
    let store = Arc::new(ProjectionStore::open(db, false).unwrap());
    let (stop, handle) = spawn_worker(worker_config(bootstrap, "first"), Arc::clone(&store));
    wait_caught_up(&published.end_offsets, &store, false).await;
    stop.send(()).unwrap();
    handle.await.unwrap();
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_refuses_another_kafka_cluster_even_one_holding_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let events = population(30, 47);
    let built_from = TestBroker::start_memory_in_cluster("spr-a").await.unwrap();
    let published = publish(&built_from.bootstrap(), &events).await;
    let digest = {
        let store = project_until_caught_up(&built_from.bootstrap(), &db, &published).await;
        assert_eq!(store.cluster_id().unwrap().as_deref(), Some("spr-a"));
        store.content_digest().unwrap()
    };
    drop(built_from);

    // Another cluster whose log starts with the same records, and goes on: the stored
    // digests alone would accept it, the cluster id does not.
    let other = TestBroker::start_memory_in_cluster("spr-b").await.unwrap();
    let copied = publish(&other.bootstrap(), &events).await;
    assert_eq!(copied.end_offsets, published.end_offsets);
    publish(&other.bootstrap(), &population(10, 53)).await;
    let error = run_until_it_stops(&other.bootstrap(), &db)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            WorkerError::LogMismatch(LogMismatch::OtherCluster { expected, found })
                if expected == "spr-a" && found == "spr-b"
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("rebuild the projection from it"),
        "{error}"
    );
    let store = ProjectionStore::open(&db, false).unwrap();
    assert_eq!(
        store.content_digest().unwrap(),
        digest,
        "nothing of the other cluster's log was projected"
    );
}

/// Deletes the projection's record of its Kafka cluster, as in a projection written
/// before it was kept.
fn forget_cluster_id(db: &Path) {
    let options = rocksdb::Options::default();
    let families = rocksdb::DB::list_cf(&options, db).unwrap();
    let rocks = rocksdb::DB::open_cf(&options, db, &families).unwrap();
    let meta = rocks.cf_handle(spr_projector::store::CF_META).unwrap();
    rocks
        .delete_cf(meta, spr_projector::keys::CLUSTER_KEY)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_without_its_cluster_id_records_only_the_cluster_of_the_log_it_was_built_from()
{
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let built_from = TestBroker::start_memory_in_cluster("spr-a").await.unwrap();
    let published = publish(&built_from.bootstrap(), &population(20, 59)).await;
    drop(project_until_caught_up(&built_from.bootstrap(), &db, &published).await);
    forget_cluster_id(&db);

    // First started against another cluster's log: refused by its records, and that
    // cluster is not recorded as the projection's.
    let other = TestBroker::start_memory_in_cluster("spr-b").await.unwrap();
    let error = publish_and_run_until_refused(&other, &population(40, 61), &db).await;
    assert!(
        matches!(
            error,
            WorkerError::LogMismatch(LogMismatch::Replaced { .. })
        ),
        "{error}"
    );
    let store = Arc::new(ProjectionStore::open(&db, false).unwrap());
    assert_eq!(store.cluster_id().unwrap(), None);

    // Started against its own log, it records that cluster once the log is confirmed.
    let (stop, handle) = spawn_worker(
        worker_config(&built_from.bootstrap(), "first"),
        Arc::clone(&store),
    );
    eventually(WAIT, "the cluster recorded", || {
        store.cluster_id().unwrap().filter(|id| id == "spr-a")
    })
    .await
    .unwrap();
    stop.send(()).unwrap();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_refuses_a_log_other_than_the_one_it_was_built_from() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let built_from = TestBroker::start_memory().await.unwrap();
    let published = publish(&built_from.bootstrap(), &population(40, 41)).await;
    let (digest, caught_up_at) = {
        let store = project_until_caught_up(&built_from.bootstrap(), &db, &published).await;
        let readiness = store.readiness().unwrap().unwrap();
        (store.content_digest().unwrap(), readiness.caught_up_at_ms)
    };
    drop(built_from);

    // The topic created again (another broker): other records at the same offsets.
    let replaced = TestBroker::start_memory().await.unwrap();
    let error = publish_and_run_until_refused(&replaced, &population(80, 43), &db).await;
    assert!(
        matches!(
            error,
            WorkerError::LogMismatch(LogMismatch::Replaced { .. })
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("rebuild the projection from it"),
        "{error}"
    );
    drop(replaced);

    // The topic created again and still empty: it ends before the stored offsets.
    let empty = TestBroker::start_memory().await.unwrap();
    let error = run_until_it_stops(&empty.bootstrap(), &db)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            WorkerError::LogMismatch(LogMismatch::Shorter { end: 0, .. })
        ),
        "{error}"
    );

    let store = ProjectionStore::open(&db, false).unwrap();
    assert_eq!(
        store.content_digest().unwrap(),
        digest,
        "nothing of the other logs was projected"
    );
    assert_eq!(
        store.readiness().unwrap().unwrap().caught_up_at_ms,
        caught_up_at,
        "never caught up with a log that is not the one projected"
    );
    for (partition, end) in &published.end_offsets {
        assert_eq!(
            store
                .next_offset(topics::PATIENT_EVENTS.name, *partition)
                .unwrap(),
            Some(*end)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_told_to_stop_while_its_broker_hangs_exits_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_durable().await.unwrap();
    let bootstrap = broker.bootstrap();
    // The publisher goes on until the broker hangs, so the projector is mid-stream
    // however fast this machine projects.
    let publishing = {
        let bootstrap = bootstrap.clone();
        tokio::spawn(async move {
            for seed in 49.. {
                publish(&bootstrap, &population(200, seed)).await;
            }
        })
    };
    let db = dir.path().join("db");
    let projector = KillOnDrop::new(start_projector_process(
        &bootstrap,
        &db,
        "projector-stopped-while-the-broker-hangs",
        &[],
    ));
    let follower = eventually(WAIT, "the projector created its database", || {
        ProjectionStore::open_secondary(&db, &dir.path().join("secondary"), 8 << 20).ok()
    })
    .await
    .unwrap();
    eventually(WAIT, "the projector projected some events", || {
        follower.catch_up().ok()?;
        (0..topics::PATIENT_EVENTS.partitions)
            .any(|p| {
                follower
                    .next_offset(topics::PATIENT_EVENTS.name, p)
                    .unwrap()
                    .is_some_and(|next| next > 1_000)
            })
            .then_some(())
    })
    .await
    .unwrap();
    // Mid-stream the broker stops answering (tansu's storage can panic and leave it
    // so), with the consumer's fetches and offset commits on their way: rdkafka's
    // close of the consumer then never finishes, and must not keep the process alive.
    broker
        .freeze_and_stop(projector, publishing)
        .await
        .expect("spr-projector stops on SIGTERM although the broker hangs");
}
