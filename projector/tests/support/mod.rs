//! Helpers shared by the projector's integration tests.
#![allow(dead_code)] // each test binary uses some of them

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use spr_producers::synthetic::SyntheticPatient;
use spr_producers::{EventPublisher, PublishSummary};
use spr_projector::{run_worker, ProjectionStore, WorkerConfig};
use spr_schemas::topics;
use spr_schemas::ClinicalEvent;
use spr_testkit::eventually;
use tokio::sync::{oneshot, Semaphore};

pub(crate) const WAIT: Duration = Duration::from_secs(90);

pub(crate) fn worker_config(bootstrap: &str, group: &str) -> WorkerConfig {
    WorkerConfig {
        bootstrap: bootstrap.into(),
        group_id: group.into(),
        partitions: None,
        max_batch: 500,
        max_batch_wait: Duration::from_millis(20),
    }
}

/// Runs a worker in this process until the returned sender is dropped or fired.
pub(crate) fn spawn_worker(
    config: WorkerConfig,
    store: Arc<ProjectionStore>,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        run_worker(config, store, async {
            let _ = stopped.await;
        })
        .await
        .expect("worker runs");
    });
    (stop, handle)
}

pub(crate) async fn publish(bootstrap: &str, patients: &[SyntheticPatient]) -> PublishSummary {
    let publisher = EventPublisher::new(bootstrap, Duration::from_secs(30)).unwrap();
    let events: Vec<&ClinicalEvent> = patients.iter().flat_map(|p| p.events.iter()).collect();
    publisher
        .publish_clinical_events(events, || {})
        .await
        .unwrap()
}

/// Waits until `store` has consumed every record up to `ends` (refreshing a secondary
/// first). The end offsets come from the producer's delivery reports: tansu's
/// ListOffsets answer is not the true high watermark (see testkit/tests/tansu_gaps.rs).
pub(crate) async fn wait_caught_up(
    ends: &BTreeMap<i32, i64>,
    store: &ProjectionStore,
    secondary: bool,
) {
    let stored = |store: &ProjectionStore| -> Vec<(i32, Option<i64>)> {
        ends.keys()
            .map(|p| {
                (
                    *p,
                    store.next_offset(topics::PATIENT_EVENTS.name, *p).unwrap(),
                )
            })
            .collect()
    };
    let what = format!("the projection to reach offsets {ends:?}");
    let result = eventually(WAIT, &what, || {
        if secondary {
            store.catch_up().ok()?;
        }
        stored(store)
            .iter()
            .all(|(p, next)| next.is_some_and(|n| n >= ends[p]))
            .then_some(())
    })
    .await;
    if let Err(e) = result {
        panic!("{e}; stored next offsets {:?}", stored(store));
    }
}

pub(crate) fn expected_timeline(patient: &SyntheticPatient) -> Vec<ClinicalEvent> {
    let mut events = patient.events.clone();
    events.sort_by_key(|e| (e.occurred_at, e.event_id));
    events
}

pub(crate) fn assert_timelines_match(store: &ProjectionStore, patients: &[SyntheticPatient]) {
    for patient in patients {
        let page = store.timeline(&patient.nhs_number, None, 10_000).unwrap();
        let got: Vec<_> = page.entries.iter().map(|e| e.event_id).collect();
        let want: Vec<_> = expected_timeline(patient)
            .iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(got, want, "timeline of {}", patient.nhs_number);
    }
}

pub(crate) fn start_projector_process(
    bootstrap: &str,
    db: &Path,
    group: &str,
    extra: &[&str],
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_spr-projector"))
        .arg("--db")
        .arg(db)
        .args([
            "run",
            "--bootstrap",
            bootstrap,
            "--group",
            group,
            "--max-batch",
            "50",
            "--max-batch-wait-ms",
            "2",
        ])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spr-projector starts")
}

/// Keeps in `into` the larger end offset of each partition.
pub(crate) fn merge_ends(into: &mut BTreeMap<i32, i64>, more: BTreeMap<i32, i64>) {
    for (partition, end) in more {
        let e = into.entry(partition).or_insert(0);
        *e = (*e).max(end);
    }
}

/// A publisher of `patients` one at a time, each only once the test allows it, so a
/// test can act while events are arriving, however fast the machine.
pub(crate) struct GatedPublisher {
    allowed: Arc<Semaphore>,
    /// How many patients the test has allowed so far.
    granted: usize,
    published: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<BTreeMap<i32, i64>>,
}

impl GatedPublisher {
    /// Starts the publisher, with no patient allowed yet.
    pub(crate) fn start(bootstrap: &str, patients: &[SyntheticPatient]) -> Self {
        let allowed = Arc::new(Semaphore::new(0));
        let published = Arc::new(AtomicUsize::new(0));
        let task = {
            let (bootstrap, patients) = (bootstrap.to_owned(), patients.to_vec());
            let (allowed, published) = (Arc::clone(&allowed), Arc::clone(&published));
            tokio::spawn(async move {
                let publisher = EventPublisher::new(&bootstrap, Duration::from_secs(60)).unwrap();
                let mut ends = BTreeMap::new();
                for patient in &patients {
                    allowed.acquire().await.unwrap().forget();
                    let summary = publisher
                        .publish_clinical_events(&patient.events, || {})
                        .await
                        .unwrap();
                    merge_ends(&mut ends, summary.end_offsets);
                    published.fetch_add(1, Ordering::SeqCst);
                }
                ends
            })
        };
        Self {
            allowed,
            granted: 0,
            published,
            task,
        }
    }

    /// Allows `more` patients to be published, and goes on.
    pub(crate) fn allow(&mut self, more: usize) {
        self.granted += more;
        self.allowed.add_permits(more);
    }

    /// Allows `more` patients and waits until every patient allowed is published.
    pub(crate) async fn publish(&mut self, more: usize) {
        self.allow(more);
        let what = format!("{} patients published", self.granted);
        eventually(WAIT, &what, || {
            (self.published.load(Ordering::SeqCst) >= self.granted || self.task.is_finished())
                .then_some(())
        })
        .await
        .unwrap();
        if self.published.load(Ordering::SeqCst) < self.granted {
            (&mut self.task).await.expect("the publisher runs");
            panic!("the publisher ended before {what}");
        }
    }

    /// Whether every patient is published (or the publisher failed).
    pub(crate) fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Allows the rest and waits until every patient is published; their end offsets.
    pub(crate) async fn finish(mut self) -> BTreeMap<i32, i64> {
        self.allow(Semaphore::MAX_PERMITS - self.granted);
        self.task.await.expect("the publisher runs")
    }
}
