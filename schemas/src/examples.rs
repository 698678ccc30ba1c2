//! Small, valid example events for documentation and tests.

use crate::*;

fn envelope(nhs_number: NhsNumber, code: Code, payload: Payload) -> ClinicalEvent {
    ClinicalEvent {
        event_id: EventId::random(),
        nhs_number,
        occurred_at: 1_700_000_000_000,
        recorded_at: 1_700_000_060_000,
        source: Source {
            system: "example-gp-system".into(),
            ods_code: "A81001".into(),
            care_setting: CareSetting::Gp,
        },
        author: Author {
            id: "G1234567".into(),
            role: "general-practitioner".into(),
        },
        code,
        sensitivity: vec![],
        status: Status::Final,
        supersedes: None,
        payload,
    }
}

/// A confirmed, high-criticality penicillin allergy.
pub fn allergy(nhs_number: NhsNumber) -> ClinicalEvent {
    envelope(
        nhs_number,
        Code {
            system: SNOMED_CT.into(),
            code: "764146007".into(),
            display: "Penicillin".into(),
        },
        Payload::Allergy(AllergyPayload {
            reaction: Some("Urticaria".into()),
            criticality: Criticality::High,
            verification: Verification::Confirmed,
        }),
    )
}

/// A repeat prescription of amlodipine.
pub fn medication_prescribed(nhs_number: NhsNumber) -> ClinicalEvent {
    envelope(
        nhs_number,
        Code {
            system: DM_D.into(),
            code: "319283006".into(),
            display: "Amlodipine 5mg tablets".into(),
        },
        Payload::MedicationPrescribed(MedicationPrescribedPayload {
            dose: "One tablet once a day".into(),
            route: Some("oral".into()),
            quantity: Some("28 tablet".into()),
            course: Course::Repeat,
        }),
    )
}

/// A heart-rate reading.
pub fn observation(nhs_number: NhsNumber) -> ClinicalEvent {
    envelope(
        nhs_number,
        Code {
            system: LOINC.into(),
            code: "8867-4".into(),
            display: "Heart rate".into(),
        },
        Payload::Observation(ObservationPayload {
            kind: ObservationKind::VitalSign,
            value: Some(72.0),
            unit: Some("/min".into()),
            value_text: None,
            interpretation: None,
        }),
    )
}

/// A permitted timeline read by a GP.
pub fn access_event(nhs_number: NhsNumber) -> AccessEvent {
    AccessEvent {
        event_id: EventId::random(),
        request_id: EventId::random(),
        occurred_at: 1_700_000_000_000,
        subject: AccessSubject {
            id: "G1234567".into(),
            name: "Dr Example".into(),
            role: "clinician".into(),
            ods_code: "A81001".into(),
        },
        nhs_number,
        action: "timeline.read".into(),
        decision: Decision::Permit,
        reasons: vec!["role-permits-scope".into()],
        returned_count: 0,
        returned_digest: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        break_glass_reason: None,
        categories: vec![],
    }
}
