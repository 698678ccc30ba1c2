//! Primary-care journeys: GP consultations, long-term conditions with their repeat
//! prescriptions, annual reviews, care plans and care teams, allergies and immunisations.

use rand::Rng;
use spr_schemas::*;

use super::catalogue::{self, LongTermCondition, Medicine};
use super::hospital;
use super::record::{Record, DAY, HOUR, MINUTE, YEAR};

/// 2025-10-01T00:00:00Z: the start of the last autumn vaccination season.
const LAST_AUTUMN: EpochMillis = 1_759_276_800_000;

/// The long-term conditions the patient has (only non-sensitive ones unless `sensitive`).
pub(super) fn long_term_conditions(rec: &mut Record, sensitive: bool) -> Vec<LongTermCondition> {
    let age = rec.person.age_at(rec.person.until);
    catalogue::LONG_TERM_CONDITIONS
        .iter()
        .filter(|c| sensitive || !c.mental_health)
        .filter(|c| age >= c.from_age)
        .copied()
        .filter(|c| {
            let p = if age >= 65 {
                c.prevalence.1
            } else {
                c.prevalence.0
            };
            rec.chance(p)
        })
        .collect()
}

/// A diagnosed long-term condition: the CONDITION, repeat prescriptions dispensed by the
/// patient's pharmacy, annual reviews with labs, a care plan and, for some, a care team.
pub(super) fn long_term_condition(rec: &mut Record, condition: LongTermCondition) {
    let person = rec.person.clone();
    let earliest =
        (person.born_at + i64::from(condition.from_age) * YEAR).max(person.until - 15 * YEAR);
    let Some(onset) = rec.time_between(earliest, person.until) else {
        return;
    };
    let diagnosed_at = rec.in_working_hours(onset);
    let label = condition
        .mental_health
        .then_some(SensitiveCategory::MentalHealth);
    rec.diagnose(&person.gp, diagnosed_at, condition.concept, Some(onset));
    label_last(rec, 1, label);
    for (i, medicine) in condition.medicines.iter().enumerate() {
        if i == 0 || rec.chance(0.6) {
            let started = diagnosed_at + rec.rng.gen_range(0..60) * DAY;
            repeat_prescriptions(rec, *medicine, started, label);
        }
    }
    annual_reviews(rec, condition, diagnosed_at, label);
}

fn label_last(rec: &mut Record, n: usize, label: Option<SensitiveCategory>) {
    if let Some(category) = label {
        rec.label_last(n, category);
    }
}

/// A repeat medicine issued every 28 days (± 3) within the history, each issue dispensed
/// by the patient's pharmacy one to three days later (96%), sometimes stopped.
fn repeat_prescriptions(
    rec: &mut Record,
    medicine: Medicine,
    started: EpochMillis,
    label: Option<SensitiveCategory>,
) {
    let person = rec.person.clone();
    let mut at = started.max(person.from + rec.rng.gen_range(0..28) * DAY);
    let stops_after = rec.chance(0.07).then(|| rec.rng.gen_range(1..30));
    let mut issues = 0;
    while at < person.until {
        let issued_at = rec.in_working_hours(at);
        let prescription_id = rec
            .emit(
                &person.gp,
                issued_at,
                medicine.concept,
                Payload::MedicationPrescribed(MedicationPrescribedPayload {
                    dose: medicine.dose.into(),
                    route: Some(medicine.route.into()),
                    quantity: Some(medicine.quantity.into()),
                    course: Course::Repeat,
                }),
            )
            .event_id;
        label_last(rec, 1, label);
        if rec.chance(0.96) {
            let days = rec.rng.gen_range(1..=3);
            let dispensed_at = rec.in_working_hours(issued_at + days * DAY);
            rec.emit(
                &person.pharmacy,
                dispensed_at,
                medicine.concept,
                Payload::MedicationDispensed(MedicationDispensedPayload {
                    quantity: Some(medicine.quantity.into()),
                    days_supply: Some(28),
                    prescription_id: Some(prescription_id),
                }),
            );
            label_last(rec, 1, label);
        }
        issues += 1;
        if stops_after == Some(issues) {
            let days = rec.rng.gen_range(5..25);
            let stopped_at = rec.in_working_hours(issued_at + days * DAY);
            let reason = rec.pick(&[
                "Side effects",
                "No longer needed",
                "Switched to alternative",
            ]);
            rec.emit(
                &person.gp,
                stopped_at,
                medicine.concept,
                Payload::MedicationStopped(MedicationStoppedPayload {
                    prescription_id: Some(prescription_id),
                    reason: Some(reason.into()),
                }),
            );
            label_last(rec, 1, label);
            return;
        }
        at = issued_at + (28 + rec.rng.gen_range(-3..=3)) * DAY;
    }
}

/// Yearly reviews after diagnosis: a GP encounter with blood pressure, the condition's lab
/// test and its report; a care plan at the first review; a community team for some.
fn annual_reviews(
    rec: &mut Record,
    condition: LongTermCondition,
    diagnosed_at: EpochMillis,
    label: Option<SensitiveCategory>,
) {
    let person = rec.person.clone();
    let mut at = diagnosed_at + YEAR;
    while at < person.from {
        at += YEAR;
    }
    let mut first = true;
    while at < person.until {
        let days = rec.rng.gen_range(-30..30);
        let seen_at = rec.in_working_hours(at + days * DAY);
        let reason = format!("{} annual review", condition.concept.display);
        let encounter_id = gp_encounter(rec, seen_at, &reason);
        let before = rec.events.len();
        rec.measure(
            &person.gp,
            seen_at,
            catalogue::SYSTOLIC_BP,
            ObservationKind::VitalSign,
            Some(&encounter_id),
        );
        rec.measure(
            &person.gp,
            seen_at,
            catalogue::DIASTOLIC_BP,
            ObservationKind::VitalSign,
            Some(&encounter_id),
        );
        if !condition.annual_labs.is_empty() {
            lab_panel(rec, seen_at, condition.annual_labs);
        }
        if first {
            let title = format!("{} management", condition.concept.display);
            rec.emit(
                &person.gp,
                seen_at + 20 * MINUTE,
                catalogue::CARE_PLAN,
                Payload::CarePlan(CarePlanPayload {
                    title,
                    description: Some("Agreed with the patient at their annual review".into()),
                    ends_at: Some(seen_at + YEAR),
                    activities: vec![
                        "Review every 12 months".into(),
                        "Self-management education".into(),
                    ],
                }),
            )
            .encounter_id = Some(encounter_id.clone());
            if !condition.annual_labs.is_empty() && rec.chance(0.5) {
                let team = format!("{} specialist nursing", condition.concept.display);
                rec.emit(
                    &catalogue::COMMUNITY_TRUST,
                    seen_at + DAY,
                    catalogue::CARE_TEAM,
                    Payload::CareTeam(CareTeamPayload {
                        ods_code: catalogue::COMMUNITY_TRUST.ods.into(),
                        team: Some(team),
                        practitioner_id: None,
                        ends_at: None,
                    }),
                );
            }
            first = false;
        }
        let added = rec.events.len() - before;
        label_last(rec, added + 1, label);
        at += YEAR;
    }
}

/// Blood tests sent to the patient's trust's pathology lab: one result per test, reported
/// a few hours later, and the DIAGNOSTIC_REPORT that brings them together.
pub(super) fn lab_panel(rec: &mut Record, taken_at: EpochMillis, tests: &[catalogue::LabTest]) {
    let lab = catalogue::Org {
        role: "biomedical-scientist",
        ..rec.person.trust
    };
    let reported = taken_at + rec.rng.gen_range(3 * HOUR..30 * HOUR);
    let result_ids = tests
        .iter()
        .map(|test| {
            let id = rec.measure(&lab, taken_at, *test, ObservationKind::Laboratory, None);
            rec.events.last_mut().expect("just measured").recorded_at = reported;
            id
        })
        .collect();
    rec.emit(
        &lab,
        taken_at,
        catalogue::LAB_REPORT,
        Payload::DiagnosticReport(DiagnosticReportPayload {
            category: Some("LAB".into()),
            conclusion: Some("Reviewed".into()),
            result_ids,
        }),
    )
    .recorded_at = reported + MINUTE;
}

/// A GP ENCOUNTER attendance; returns its encounter id.
pub(super) fn gp_encounter(rec: &mut Record, at: EpochMillis, reason: &str) -> String {
    let gp = rec.person.gp;
    let encounter_id = rec.local_id(&gp, "CONS");
    let minutes = rec.rng.gen_range(8..20);
    let class = if rec.chance(0.2) {
        EncounterClass::Virtual
    } else {
        EncounterClass::GpConsultation
    };
    rec.emit(
        &gp,
        at,
        catalogue::GP_CONSULTATION,
        Payload::Encounter(EncounterPayload {
            encounter_class: class,
            phase: EncounterPhase::Attendance,
            ended_at: Some(at + minutes * MINUTE),
            location: Some("Consulting room".into()),
            reason: Some(reason.into()),
        }),
    )
    .encounter_id = Some(encounter_id.clone());
    encounter_id
}

/// Everyday GP consultations (about 3 a year, 6 from 65): vitals for half, an acute
/// prescription for some, and a referral to the patient's trust for a few.
pub(super) fn consultations(rec: &mut Record) {
    let person = rec.person.clone();
    let per_year = if person.age_at(person.until) >= 65 {
        6.0
    } else {
        3.0
    };
    for at in rec.yearly_times(per_year) {
        let at = rec.in_working_hours(at);
        let reason = rec.pick(&catalogue::GP_REASONS);
        let encounter_id = gp_encounter(rec, at, reason);
        if rec.chance(0.5) {
            for test in [
                catalogue::HEART_RATE,
                catalogue::SYSTOLIC_BP,
                catalogue::DIASTOLIC_BP,
            ] {
                rec.measure(
                    &person.gp,
                    at + 5 * MINUTE,
                    test,
                    ObservationKind::VitalSign,
                    Some(&encounter_id),
                );
            }
            if rec.chance(0.4) && person.age_at(at) >= 16 {
                rec.measure(
                    &person.gp,
                    at + 6 * MINUTE,
                    catalogue::BODY_WEIGHT,
                    ObservationKind::VitalSign,
                    Some(&encounter_id),
                );
            }
        }
        if rec.chance(0.2) {
            let medicine = rec.pick(&[catalogue::AMOXICILLIN, catalogue::PARACETAMOL]);
            acute_prescription(
                rec,
                &person.gp,
                at + 10 * MINUTE,
                medicine,
                Some(&encounter_id),
            );
        }
        if rec.chance(0.08) {
            hospital::referral(rec, at + 12 * MINUTE);
        }
    }
}

/// An ACUTE prescription, dispensed by the patient's pharmacy later that day.
pub(super) fn acute_prescription(
    rec: &mut Record,
    prescriber: &catalogue::Org,
    at: EpochMillis,
    medicine: Medicine,
    encounter_id: Option<&str>,
) {
    let prescribed = rec.emit(
        prescriber,
        at,
        medicine.concept,
        Payload::MedicationPrescribed(MedicationPrescribedPayload {
            dose: medicine.dose.into(),
            route: Some(medicine.route.into()),
            quantity: Some(medicine.quantity.into()),
            course: Course::Acute,
        }),
    );
    prescribed.encounter_id = encounter_id.map(str::to_owned);
    let prescription_id = prescribed.event_id;
    let pharmacy = rec.person.pharmacy;
    let dispensed_at = at + rec.rng.gen_range(HOUR..8 * HOUR);
    rec.emit(
        &pharmacy,
        dispensed_at,
        medicine.concept,
        Payload::MedicationDispensed(MedicationDispensedPayload {
            quantity: Some(medicine.quantity.into()),
            days_supply: Some(5),
            prescription_id: Some(prescription_id),
        }),
    );
}

/// Allergies recorded at the GP (one patient in five has one, some two).
pub(super) fn allergies(rec: &mut Record) {
    let person = rec.person.clone();
    let count = match rec.rng.gen::<f64>() {
        u if u < 0.04 => 2,
        u if u < 0.2 => 1,
        _ => 0,
    };
    let mut chosen: Vec<usize> = Vec::new();
    while chosen.len() < count {
        let i = rec.rng.gen_range(0..catalogue::ALLERGENS.len());
        if !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    for i in chosen {
        let (allergen, reaction) = catalogue::ALLERGENS[i];
        let Some(at) = rec.time_between(person.born_at + YEAR, person.until) else {
            continue;
        };
        let at = rec.in_working_hours(at);
        let criticality = if reaction == "Anaphylaxis" {
            Criticality::High
        } else {
            Criticality::Low
        };
        rec.emit(
            &person.gp,
            at,
            allergen,
            Payload::Allergy(AllergyPayload {
                reaction: Some(reaction.into()),
                criticality,
                verification: Verification::Confirmed,
            }),
        );
    }
}

/// Immunisations by the schedule: MMR in childhood; flu every autumn from 65 or with a
/// long-term condition (a third at a pharmacy); COVID-19 boosters from 75; pneumococcal
/// at 65; shingles at 70.
pub(super) fn immunisations(rec: &mut Record, has_long_term_condition: bool) {
    let person = rec.person.clone();
    let in_history = |at: EpochMillis| at >= person.from && at < person.until;
    for (dose, age_days) in [(1, 365), (2, 1_220)] {
        let at = person.born_at + age_days * DAY;
        if in_history(at) {
            vaccinate(rec, at, catalogue::MMR_VACCINE, dose, false);
        }
    }
    for (age, vaccine) in [
        (65, catalogue::PNEUMOCOCCAL_VACCINE),
        (70, catalogue::SHINGLES_VACCINE),
    ] {
        let at = person.born_at + age * YEAR + rec.rng.gen_range(0..90) * DAY;
        if in_history(at) && rec.chance(0.7) {
            vaccinate(rec, at, vaccine, 1, false);
        }
    }
    let mut autumn = LAST_AUTUMN;
    while autumn >= person.from - YEAR {
        let at = autumn + rec.rng.gen_range(0..60) * DAY;
        let age = person.age_at(at);
        if in_history(at) && (age >= 65 || has_long_term_condition) && rec.chance(0.75) {
            let at_pharmacy = rec.chance(0.33);
            vaccinate(rec, at, catalogue::FLU_VACCINE, 1, at_pharmacy);
        }
        let booster = at + rec.rng.gen_range(1..20) * DAY;
        if in_history(booster) && person.age_at(booster) >= 75 && rec.chance(0.65) {
            vaccinate(rec, booster, catalogue::COVID_VACCINE, 1, false);
        }
        autumn -= YEAR;
    }
}

/// One IMMUNISATION at the GP (or the patient's pharmacy).
pub(super) fn vaccinate(
    rec: &mut Record,
    at: EpochMillis,
    vaccine: catalogue::Concept,
    dose_number: i32,
    at_pharmacy: bool,
) {
    let giver = if at_pharmacy {
        rec.person.pharmacy
    } else {
        rec.person.gp
    };
    let at = rec.in_working_hours(at);
    let batch = format!(
        "{}{:04}",
        rec.pick(&["FK", "PV", "AZ", "SQ"]),
        rec.rng.gen_range(0..10_000)
    );
    let site = rec.pick(&["Left deltoid", "Right deltoid", "Left thigh"]);
    rec.emit(
        &giver,
        at,
        vaccine,
        Payload::Immunisation(ImmunisationPayload {
            dose_number: Some(dose_number),
            site: Some(site.into()),
            batch: Some(batch),
            not_given: false,
        }),
    );
}
