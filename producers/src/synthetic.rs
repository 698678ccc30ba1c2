//! A deterministic synthetic population: the same seed gives the same patients,
//! events, ids and times on every machine. Synthetic data only: every NHS number is
//! in the 999 range reserved for testing and passes the Mod 11 check.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spr_schemas::*;

/// 2026-01-01T00:00:00Z: the end of every synthetic patient's history.
const HISTORY_END_MILLIS: i64 = 1_767_225_600_000;
const FIVE_YEARS_MILLIS: i64 = 5 * 365 * 24 * 3_600_000;

/// One synthetic patient and their events, in publication order.
#[derive(Debug, Clone)]
pub struct SyntheticPatient {
    /// Their NHS number (999 range).
    pub nhs_number: NhsNumber,
    /// Their events, in the order a source would publish them.
    pub events: Vec<ClinicalEvent>,
}

impl SyntheticPatient {
    /// Adds a care-team assignment of organisation `ods_code` to the patient, with no
    /// end: the legitimate relationship a clinician there needs to read the whole record.
    pub fn with_care_team(mut self, ods_code: &str) -> Self {
        let mut assignment = examples::one_of_each_type(self.nhs_number)
            .into_iter()
            .find(|e| e.event_type() == EventType::CareTeam)
            .expect("the examples include a care-team event");
        if let Payload::CareTeam(team) = &mut assignment.payload {
            team.ods_code = ods_code.into();
            team.ends_at = None;
        }
        self.events.push(assignment);
        self
    }
}

/// Generates `patients` synthetic patients from `seed`.
pub fn population(patients: usize, seed: u64) -> Vec<SyntheticPatient> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut seen = HashSet::with_capacity(patients);
    let mut out = Vec::with_capacity(patients);
    while out.len() < patients {
        let nhs_number = match synthetic_nhs_number(&mut rng) {
            Some(n) if seen.insert(n) => n,
            _ => continue,
        };
        let events = patient_events(&mut rng, nhs_number);
        out.push(SyntheticPatient { nhs_number, events });
    }
    out
}

/// A random NHS number in the 999 test range, or `None` for a prefix with no valid check digit.
fn synthetic_nhs_number(rng: &mut ChaCha8Rng) -> Option<NhsNumber> {
    let mut prefix = [9u8; 9];
    for digit in &mut prefix[3..] {
        *digit = rng.gen_range(0..10);
    }
    NhsNumber::from_prefix(prefix)
}

const GP_PRACTICES: [(&str, &str); 3] = [
    ("A81001", "emis-web"),
    ("B82005", "systmone"),
    ("C83010", "emis-web"),
];
const TRUSTS: [(&str, &str); 2] = [("RX1", "epr-cerner"), ("RRK", "epr-epic")];

const ALLERGENS: [(&str, &str, &str); 4] = [
    ("764146007", "Penicillin", "Urticaria"),
    ("91935009", "Peanut", "Anaphylaxis"),
    ("387207008", "Ibuprofen", "Bronchospasm"),
    ("111088007", "Latex", "Contact dermatitis"),
];
const MEDICINES: [(&str, &str, &str); 4] = [
    (
        "319283006",
        "Amlodipine 5mg tablets",
        "One tablet once a day",
    ),
    (
        "376688009",
        "Metformin 500mg tablets",
        "One tablet twice a day with meals",
    ),
    (
        "320000009",
        "Atorvastatin 20mg tablets",
        "One tablet at night",
    ),
    (
        "322236009",
        "Paracetamol 500mg tablets",
        "Two tablets up to four times a day",
    ),
];
const MEASURES: [(&str, &str, &str, f64, f64, ObservationKind); 4] = [
    (
        "8867-4",
        "Heart rate",
        "/min",
        50.0,
        110.0,
        ObservationKind::VitalSign,
    ),
    (
        "8480-6",
        "Systolic blood pressure",
        "mm[Hg]",
        95.0,
        170.0,
        ObservationKind::VitalSign,
    ),
    (
        "4548-4",
        "Haemoglobin A1c",
        "mmol/mol",
        30.0,
        80.0,
        ObservationKind::Laboratory,
    ),
    (
        "55423-8",
        "Step count",
        "/d",
        1_000.0,
        15_000.0,
        ObservationKind::Wearable,
    ),
];

fn patient_events(rng: &mut ChaCha8Rng, nhs_number: NhsNumber) -> Vec<ClinicalEvent> {
    let gp = GP_PRACTICES[rng.gen_range(0..GP_PRACTICES.len())];
    let trust = TRUSTS[rng.gen_range(0..TRUSTS.len())];
    let mut events = Vec::new();
    for _ in 0..rng.gen_range(0..=2) {
        let (code, display, reaction) = ALLERGENS[rng.gen_range(0..ALLERGENS.len())];
        let payload = Payload::Allergy(AllergyPayload {
            reaction: Some(reaction.into()),
            criticality: if rng.gen_bool(0.3) {
                Criticality::High
            } else {
                Criticality::Low
            },
            verification: Verification::Confirmed,
        });
        events.push(event(
            rng,
            nhs_number,
            gp,
            CareSetting::Gp,
            (SNOMED_CT, code, display),
            payload,
        ));
    }
    for _ in 0..rng.gen_range(1..=4) {
        let (code, display, dose) = MEDICINES[rng.gen_range(0..MEDICINES.len())];
        let payload = Payload::MedicationPrescribed(MedicationPrescribedPayload {
            dose: dose.into(),
            route: Some("oral".into()),
            quantity: Some("56 tablet".into()),
            course: if rng.gen_bool(0.7) {
                Course::Repeat
            } else {
                Course::Acute
            },
        });
        events.push(event(
            rng,
            nhs_number,
            gp,
            CareSetting::Gp,
            (DM_D, code, display),
            payload,
        ));
    }
    for _ in 0..rng.gen_range(3..=12) {
        let (code, display, unit, low, high, kind) = MEASURES[rng.gen_range(0..MEASURES.len())];
        let (org, setting) = match kind {
            ObservationKind::Laboratory => (trust, CareSetting::Acute),
            ObservationKind::Wearable => (("PATIENT", "nhs-app"), CareSetting::PatientGenerated),
            _ => (gp, CareSetting::Gp),
        };
        let value = (rng.gen_range(low..high) * 10.0_f64).round() / 10.0;
        let payload = Payload::Observation(ObservationPayload {
            kind,
            value: Some(value),
            unit: Some(unit.into()),
            value_text: None,
            interpretation: None,
        });
        events.push(event(
            rng,
            nhs_number,
            org,
            setting,
            (LOINC, code, display),
            payload,
        ));
    }
    events
}

fn event(
    rng: &mut ChaCha8Rng,
    nhs_number: NhsNumber,
    (ods_code, system): (&str, &str),
    care_setting: CareSetting,
    (code_system, code, display): (&str, &str, &str),
    payload: Payload,
) -> ClinicalEvent {
    let occurred_at = HISTORY_END_MILLIS - rng.gen_range(0..FIVE_YEARS_MILLIS);
    let event_id = EventId::from_uuid(uuid::Builder::from_random_bytes(rng.gen()).into_uuid());
    ClinicalEvent {
        event_id,
        nhs_number,
        occurred_at,
        recorded_at: occurred_at + rng.gen_range(0..3_600_000),
        source: Source {
            system: system.into(),
            ods_code: ods_code.into(),
            care_setting,
            record_id: None,
        },
        author: Author {
            id: format!("{ods_code}-{:04}", rng.gen_range(0..10_000)),
            role: author_role(care_setting).into(),
        },
        code: Code {
            system: code_system.into(),
            code: code.into(),
            display: display.into(),
        },
        sensitivity: vec![],
        status: Status::Final,
        supersedes: None,
        encounter_id: None,
        payload,
    }
}

fn author_role(care_setting: CareSetting) -> &'static str {
    match care_setting {
        CareSetting::PatientGenerated => "patient",
        CareSetting::Acute => "biomedical-scientist",
        _ => "general-practitioner",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_population() {
        let a = population(50, 7);
        let b = population(50, 7);
        let ids = |p: &[SyntheticPatient]| -> Vec<_> {
            p.iter().flat_map(|x| x.events.iter().cloned()).collect()
        };
        assert_eq!(ids(&a), ids(&b));
        assert_ne!(ids(&a), ids(&population(50, 8)));
    }

    #[test]
    fn every_patient_is_in_the_999_range_unique_and_every_event_encodes() {
        let people = population(300, 1);
        let unique: HashSet<_> = people.iter().map(|p| p.nhs_number).collect();
        assert_eq!(unique.len(), 300);
        for p in &people {
            assert!(p.nhs_number.as_str().starts_with("999"));
            assert!(!p.events.is_empty());
            for e in &p.events {
                assert_eq!(e.nhs_number, p.nhs_number);
                assert_eq!(ClinicalEvent::from_avro(&e.to_avro().unwrap()).unwrap(), *e);
            }
        }
    }
}
