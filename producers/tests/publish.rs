//! Publishing against a real broker: keys, order, durability and surfaced errors.

use std::collections::HashMap;
use std::time::Duration;

use spr_producers::synthetic::population;
use spr_producers::{EventPublisher, PublishError};
use spr_schemas::{examples, topics, ClinicalEvent, EventId};
use spr_testkit::{read_patient_events, PatientEventRecord, TestBroker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_keyed_by_nhs_number_kept_in_order_per_patient_and_survive_a_broker_restart() {
    let mut broker = TestBroker::start_durable().await.unwrap();
    let patients = population(40, 3);
    let events: Vec<&ClinicalEvent> = patients.iter().flat_map(|p| p.events.iter()).collect();
    let publisher = EventPublisher::new(&broker.bootstrap(), Duration::from_secs(30)).unwrap();
    let summary = publisher
        .publish_clinical_events(events.iter().copied(), || {})
        .await
        .unwrap();
    assert_eq!(summary.delivered, events.len() as u64);
    drop(publisher);

    broker.restart().await.unwrap();
    assert!(broker.sqlite_path().unwrap().exists());
    let records = read_patient_events(&broker.bootstrap(), events.len()).await;
    let mut partition_of = HashMap::new();
    let mut order: HashMap<_, Vec<EventId>> = HashMap::new();
    for PatientEventRecord {
        partition,
        key,
        event,
    } in &records
    {
        assert_eq!(
            key.as_slice(),
            event.nhs_number.as_str().as_bytes(),
            "keyed by NHS number"
        );
        assert_eq!(
            *partition_of.entry(event.nhs_number).or_insert(*partition),
            *partition,
            "one patient, one partition"
        );
        order
            .entry(event.nhs_number)
            .or_default()
            .push(event.event_id);
    }
    for patient in &patients {
        let published: Vec<_> = patient.events.iter().map(|e| e.event_id).collect();
        assert_eq!(
            order[&patient.nhs_number], published,
            "publication order kept for {}",
            patient.nhs_number
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_cannot_happen_is_an_error_not_a_silent_loss() {
    let mut broker = TestBroker::start_memory().await.unwrap();
    let publisher = EventPublisher::new(&broker.bootstrap(), Duration::from_secs(2)).unwrap();
    let event = examples::allergy("9990000018".parse().unwrap());
    publisher.publish_clinical_event(&event).await.unwrap();
    broker.kill();
    let err = publisher.publish_clinical_event(&event).await.unwrap_err();
    assert!(matches!(err, PublishError::Delivery { .. }), "{err}");
    assert!(
        err.to_string().contains(topics::PATIENT_EVENTS.name),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_projector_would_dead_letter_is_refused_before_it_is_published() {
    let broker = TestBroker::start_memory().await.unwrap();
    let publisher = EventPublisher::new(&broker.bootstrap(), Duration::from_secs(30)).unwrap();
    let patient = "9990000018".parse().unwrap();
    let (before, after) = (examples::allergy(patient), examples::observation(patient));
    let mut invalid = examples::allergy(patient);
    invalid.encounter_id = Some("enc\u{0}1".into());
    let outcomes = publisher
        .publish_clinical_events_settled(&[before.clone(), invalid.clone(), after.clone()])
        .await;
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok(), "{outcomes:?}");
    let Err(PublishError::Invalid { event_id, reason }) = &outcomes[1] else {
        panic!("{:?}", outcomes[1]);
    };
    assert_eq!(*event_id, invalid.event_id);
    assert!(reason.contains("encounter_id"), "{reason}");
    let err = publisher
        .publish_clinical_event(&invalid)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not published"), "{err}");
    // One patient, one partition, in order: the refused event would sit between the two.
    let published: Vec<EventId> = read_patient_events(&broker.bootstrap(), 2)
        .await
        .iter()
        .map(|r| r.event.event_id)
        .collect();
    assert_eq!(published, [before.event_id, after.event_id]);
}
