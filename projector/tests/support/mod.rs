//! Helpers shared by the projector's integration tests.
#![allow(dead_code)] // each test binary uses some of them

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use spr_producers::synthetic::SyntheticPatient;
use spr_producers::{EventPublisher, PublishSummary};
use spr_projector::{run_worker, ProjectionStore, WorkerConfig};
use spr_schemas::topics;
use spr_schemas::ClinicalEvent;
use spr_testkit::eventually;
use tokio::sync::oneshot;

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
