//! The synthetic population: deterministic, valid on the wire, with every journey and
//! every data-quality problem it promises (docs/events.md, "Synthetic population").

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use spr_producers::synthetic::{
    population, Population, PopulationConfig, PopulationSize, Profile, StreamTally,
    SyntheticPatient,
};
use spr_schemas::*;

fn realistic(patients: u64, seed: u64) -> Population {
    Population::new(PopulationConfig {
        seed,
        size: PopulationSize::Patients(patients),
        profile: Profile::Realistic,
        history_years: 5,
    })
    .unwrap()
}

fn digest(population: Population) -> (u64, String) {
    let mut tally = StreamTally::default();
    for patient in population {
        for event in &patient.events {
            tally.encode(event).unwrap();
        }
    }
    (tally.encoded_bytes, tally.digest())
}

#[test]
fn the_same_seed_gives_a_byte_identical_stream_and_a_smaller_population_is_a_prefix() {
    let (bytes, first) = digest(realistic(100, 7));
    assert!(bytes > 1_000_000, "only {bytes} bytes for 100 patients");
    assert_eq!(digest(realistic(100, 7)), (bytes, first.clone()));
    assert_ne!(
        digest(realistic(100, 8)).1,
        first,
        "another seed, another stream"
    );

    let small: Vec<_> = realistic(40, 7).collect();
    let large: Vec<_> = realistic(80, 7).take(40).collect();
    for (a, b) in small.iter().zip(&large) {
        assert_eq!(a.nhs_number, b.nhs_number);
        assert_eq!(a.events, b.events);
    }
}

#[test]
fn a_target_event_count_stops_at_the_first_whole_patient_past_it() {
    let config = |size| PopulationConfig {
        seed: 3,
        size,
        profile: Profile::Realistic,
        history_years: 5,
    };
    let patients: Vec<_> = Population::new(config(PopulationSize::Events(20_000)))
        .unwrap()
        .collect();
    let total: usize = patients.iter().map(|p| p.events.len()).sum();
    let before_last = total - patients.last().unwrap().events.len();
    assert!(
        total >= 20_000 && before_last < 20_000,
        "{before_last} then {total}"
    );
    assert!(Population::new(config(PopulationSize::Patients(10_000_000))).is_err());
    let no_history = PopulationConfig {
        history_years: 0,
        ..config(PopulationSize::Patients(1))
    };
    let err = Population::new(no_history).unwrap_err();
    assert!(err.to_string().contains("--history-years"), "{err}");
}

/// Every number a patient's events may be keyed by.
fn numbers_of(patient: &SyntheticPatient) -> Vec<NhsNumber> {
    std::iter::once(patient.nhs_number)
        .chain(patient.retired_nhs_number)
        .collect()
}

#[test]
fn every_event_round_trips_through_avro_and_validation_and_is_keyed_by_its_patient() {
    let mut seen_numbers = HashSet::new();
    // Encoding and decoding in a debug build is slow: 400 patients (about 70,000 events).
    for patient in realistic(400, 1) {
        assert!(patient.nhs_number.as_str().starts_with("999"));
        for number in numbers_of(&patient) {
            assert!(seen_numbers.insert(number), "{number} used by two patients");
        }
        assert_eq!(
            patient.events[0].event_type(),
            EventType::Demographics,
            "{} is registered first",
            patient.nhs_number
        );
        for event in &patient.events {
            let decoded = ClinicalEvent::from_avro(&event.to_avro().unwrap())
                .unwrap_or_else(|e| panic!("{e}: {event:?}"));
            assert_eq!(decoded, *event);
            assert!(
                numbers_of(&patient).contains(&event.nhs_number),
                "{} carries {}",
                patient.nhs_number,
                event.nhs_number
            );
            assert!(event.recorded_at >= event.occurred_at, "{event:?}");
            for label in &event.sensitivity {
                label.parse::<SensitiveCategory>().unwrap();
            }
        }
    }
}

/// Age in whole years on `at` of someone born on `birth_date` (`YYYY-MM-DD`).
fn age_on(birth_date: &str, at: EpochMillis) -> i64 {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let born = time::Date::parse(birth_date, &format).unwrap();
    let on = time::OffsetDateTime::from_unix_timestamp(at / 1_000)
        .unwrap()
        .date();
    let had_birthday = (on.month() as u8, on.day()) >= (born.month() as u8, born.day());
    i64::from(on.year() - born.year()) - i64::from(!had_birthday)
}

#[test]
fn the_population_has_every_journey_where_and_for_whom_it_belongs() {
    let mut types = BTreeMap::<EventType, u64>::new();
    let mut labels = BTreeSet::new();
    let (mut mothers, mut wearers, mut patients) = (0, 0, 0);
    for patient in realistic(2_000, 1) {
        patients += 1;
        let Payload::Demographics(person) = &patient.events[0].payload else {
            unreachable!("registration first (checked elsewhere)")
        };
        let birth_date = person.birth_date.clone().unwrap();
        let (mut prescriptions, mut dispensed) = (HashSet::new(), Vec::new());
        let mut admissions = HashMap::new();
        let mut summaries = HashMap::new();
        let mut ids = HashSet::new();
        let mut episodes = HashMap::<String, Vec<(EpochMillis, PregnancyStatus)>>::new();
        for event in &patient.events {
            *types.entry(event.event_type()).or_default() += 1;
            labels.extend(event.sensitivity.iter().cloned());
            let first_delivery = ids.insert(event.event_id);
            if !first_delivery || event.status != Status::Final {
                continue;
            }
            match &event.payload {
                Payload::PregnancyEpisode(_) | Payload::AntenatalVisit(_) | Payload::Birth(_) => {
                    assert_eq!(person.gender.as_deref(), Some("female"), "{event:?}");
                    let age = age_on(&birth_date, event.occurred_at);
                    assert!((16..=46).contains(&age), "maternity at {age}: {event:?}");
                    assert_eq!(event.source.care_setting, CareSetting::Maternity);
                    if let Payload::PregnancyEpisode(p) = &event.payload {
                        if p.status == PregnancyStatus::Active {
                            assert!((16..=45).contains(&age), "booked at {age}");
                        }
                        episodes
                            .entry(p.episode_id.clone())
                            .or_default()
                            .push((event.occurred_at, p.status));
                    }
                }
                Payload::MedicationPrescribed(_) => {
                    prescriptions.insert(event.event_id);
                }
                Payload::MedicationDispensed(d) => {
                    assert_eq!(event.source.care_setting, CareSetting::Pharmacy);
                    dispensed.push(
                        d.prescription_id
                            .expect("dispensing names its prescription"),
                    );
                }
                Payload::Encounter(e) if e.phase == EncounterPhase::Admission => {
                    let id = event.encounter_id.clone().unwrap();
                    assert!(admissions.insert(id, event.occurred_at).is_none());
                }
                Payload::DischargeSummary(d) => {
                    let id = event.encounter_id.clone().expect("summary names its stay");
                    assert!(summaries.insert(id, d.admitted_at).is_none());
                }
                Payload::Observation(o) if o.kind == ObservationKind::Wearable => {
                    assert_eq!(event.source.care_setting, CareSetting::PatientGenerated);
                }
                Payload::GenomicResult(_) => {
                    assert!(event.sensitivity.contains(&"genomics".to_owned()));
                }
                _ => {}
            }
        }
        assert_eq!(
            admissions, summaries,
            "one discharge summary per admission, same stay and start, for {}",
            patient.nhs_number
        );
        assert!(
            dispensed.iter().all(|id| prescriptions.contains(id)),
            "every dispensing names one of {}'s prescriptions",
            patient.nhs_number
        );
        for (episode, mut statuses) in episodes {
            // In clinical order: a late-arriving booking may be published after the birth.
            statuses.sort_by_key(|(at, _)| *at);
            assert_eq!(
                statuses[0].1,
                PregnancyStatus::Active,
                "{episode} opens at booking"
            );
            assert!(statuses.len() <= 2, "{episode}: {statuses:?}");
        }
        mothers += u64::from(
            patient
                .events
                .iter()
                .any(|e| e.event_type() == EventType::Birth),
        );
        wearers += u64::from(patient.events.iter().any(|e| {
            matches!(&e.payload, Payload::Observation(o) if o.kind == ObservationKind::Wearable)
        }));
    }
    let missing: Vec<_> = EventType::ALL
        .iter()
        .filter(|t| !types.contains_key(t))
        .collect();
    assert!(missing.is_empty(), "no {missing:?} in {types:?}");
    let wanted: BTreeSet<String> = [
        SensitiveCategory::SexualHealth,
        SensitiveCategory::MentalHealth,
        SensitiveCategory::HivSti,
        SensitiveCategory::Fertility,
        SensitiveCategory::TerminationOfPregnancy,
        SensitiveCategory::GenderIdentity,
        SensitiveCategory::Genomics,
        SensitiveCategory::Safeguarding,
    ]
    .iter()
    .map(|c| c.as_str().to_owned())
    .collect();
    assert_eq!(labels, wanted);
    assert!(
        (20..=300).contains(&mothers),
        "{mothers} of {patients} gave birth"
    );
    assert!(
        (80..=400).contains(&wearers),
        "{wearers} of {patients} wear a device"
    );
}

#[test]
fn data_quality_problems_are_well_formed_and_each_one_occurs() {
    let (mut amended, mut withdrawn, mut late, mut duplicated, mut refuted, mut resolved) =
        (0, 0, 0, 0, 0, 0);
    let mut merged = 0;
    for patient in realistic(2_000, 1) {
        let mut earlier: HashMap<EventId, &ClinicalEvent> = HashMap::new();
        let mut latest_occurred = i64::MIN;
        let mut gp_allergies = HashSet::new();
        let mut gp_conditions = HashSet::new();
        let mut merges = Vec::new();
        let (mut refuted_allergies, mut resolved_conditions) = (Vec::new(), Vec::new());
        for event in &patient.events {
            if let Some(first) = earlier.get(&event.event_id) {
                assert_eq!(first.to_avro().unwrap(), event.to_avro().unwrap());
                duplicated += 1;
                continue;
            }
            if let Some(target) = event.supersedes {
                let original = earlier.get(&target).unwrap_or_else(|| {
                    panic!(
                        "{:?} supersedes an event not published before it",
                        event.status
                    )
                });
                assert_eq!(original.nhs_number, event.nhs_number);
                assert_eq!(original.event_type(), event.event_type());
                match event.status {
                    Status::Amended => amended += 1,
                    Status::EnteredInError => withdrawn += 1,
                    Status::Final => panic!("a final event supersedes another: {event:?}"),
                }
            }
            if event.recorded_at - event.occurred_at > 20 * 86_400_000
                && event.occurred_at < latest_occurred
            {
                late += 1;
            }
            latest_occurred = latest_occurred.max(event.occurred_at);
            let from_gp = event.source.care_setting == CareSetting::Gp;
            match &event.payload {
                Payload::Allergy(a) if from_gp && a.verification == Verification::Confirmed => {
                    gp_allergies.insert(event.code.code.clone());
                }
                Payload::Allergy(a) if a.verification == Verification::Refuted => {
                    assert_eq!(event.source.care_setting, CareSetting::Acute);
                    refuted_allergies.push(event.code.code.clone());
                }
                Payload::Condition(c) if from_gp && c.clinical_status.is_active() => {
                    gp_conditions.insert(event.code.code.clone());
                }
                Payload::Condition(c) if c.clinical_status == ConditionStatus::Resolved => {
                    assert_eq!(event.source.care_setting, CareSetting::Acute);
                    resolved_conditions.push(event.code.code.clone());
                }
                Payload::NhsNumberMerge(m) => merges.push((event.nhs_number, m.clone())),
                _ => {}
            }
            earlier.insert(event.event_id, event);
        }
        // A late-arriving GP record may be published after the hospital's contradiction.
        for (contradicted, at_gp) in [
            (&refuted_allergies, &gp_allergies),
            (&resolved_conditions, &gp_conditions),
        ] {
            assert!(
                contradicted.iter().all(|code| at_gp.contains(code)),
                "{}: {contradicted:?} contradict nothing the GP recorded ({at_gp:?})",
                patient.nhs_number
            );
        }
        refuted += refuted_allergies.len();
        resolved += resolved_conditions.len();
        if let Some(retired) = patient.retired_nhs_number {
            merged += 1;
            let expected = NhsNumberMergePayload {
                retired_nhs_number: retired,
                surviving_nhs_number: patient.nhs_number,
            };
            merges.sort_by_key(|(key, _)| *key);
            let mut wanted = vec![(retired, expected.clone()), (patient.nhs_number, expected)];
            wanted.sort_by_key(|(key, _)| *key);
            assert_eq!(
                merges, wanted,
                "the merge is published once under each number"
            );
            assert!(patient
                .events
                .iter()
                .any(|e| e.nhs_number == retired && e.event_type() == EventType::Encounter));
        } else {
            assert!(merges.is_empty());
        }
    }
    for (what, count) in [
        ("amendments", amended),
        ("entries in error", withdrawn),
        ("late arrivals published out of clinical order", late),
        ("duplicated deliveries", duplicated),
        ("GP allergies refuted by a hospital", refuted),
        ("GP conditions resolved at a hospital", resolved),
        ("merged records", merged),
    ] {
        assert!(count >= 5, "only {count} {what} in 2,000 patients");
    }
}

#[test]
fn the_clean_population_has_no_problems_labels_or_choices() {
    let patients = population(300, 4);
    assert_eq!(patients.len(), 300);
    let mut ids = HashSet::new();
    let mut types = HashSet::new();
    for patient in &patients {
        assert_eq!(patient.retired_nhs_number, None);
        for event in &patient.events {
            assert!(
                ids.insert(event.event_id),
                "{:?} delivered twice",
                event.event_id
            );
            assert_eq!(event.nhs_number, patient.nhs_number);
            assert_eq!((event.status, event.supersedes), (Status::Final, None));
            assert!(event.sensitivity.is_empty(), "{event:?}");
            types.insert(event.event_type());
        }
    }
    for absent in [
        EventType::ConsentChoice,
        EventType::SafeguardingFlag,
        EventType::GenomicResult,
        EventType::NhsNumberMerge,
    ] {
        assert!(!types.contains(&absent), "{absent:?} in a clean population");
    }
    for present in [
        EventType::Demographics,
        EventType::Encounter,
        EventType::MedicationDispensed,
        EventType::DischargeSummary,
    ] {
        assert!(
            types.contains(&present),
            "no {present:?} in a clean population"
        );
    }
}
