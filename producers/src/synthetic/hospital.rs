//! Hospital journeys: ambulance call-outs, A&E attendances, admissions ending in a
//! discharge summary, and referrals followed by an outpatient appointment.

use rand::Rng;
use spr_schemas::*;

use super::catalogue::{self, Org};
use super::primary_care;
use super::record::{Record, DAY, HOUR, MINUTE};

/// A&E attendances (about 0.3 a year; more for the very young and old), a share arriving
/// by ambulance and a share admitted; and a few planned admissions.
pub(super) fn emergencies_and_admissions(rec: &mut Record) {
    let person = rec.person.clone();
    let age = person.age_at(person.until);
    let (per_year, admitted) = match age {
        0..=4 => (0.5, 0.1),
        75.. => (0.6, 0.5),
        _ => (0.3, 0.2),
    };
    for at in rec.yearly_times(per_year) {
        let conveyed = rec.chance(if age >= 75 { 0.5 } else { 0.2 });
        let arrived = if conveyed { ambulance(rec, at) } else { at };
        let left = emergency_attendance(rec, arrived);
        if rec.chance(admitted) {
            admission(rec, left);
        }
    }
    for at in rec.yearly_times(0.03) {
        let at = rec.in_working_hours(at);
        admission(rec, at);
    }
}

/// An ambulance ENCOUNTER with observations at the scene; returns the arrival time at A&E.
fn ambulance(rec: &mut Record, at: EpochMillis) -> EpochMillis {
    let encounter_id = rec.local_id(&catalogue::AMBULANCE, "INC");
    let handover = at + rec.rng.gen_range(30 * MINUTE..2 * HOUR);
    let reason = rec.pick(&catalogue::EMERGENCY_REASONS);
    rec.emit(
        &catalogue::AMBULANCE,
        at,
        catalogue::AMBULANCE_CALL,
        Payload::Encounter(EncounterPayload {
            encounter_class: EncounterClass::Emergency,
            phase: EncounterPhase::Attendance,
            ended_at: Some(handover),
            location: Some("Patient's home".into()),
            reason: Some(reason.into()),
        }),
    )
    .encounter_id = Some(encounter_id.clone());
    for test in [catalogue::HEART_RATE, catalogue::SPO2] {
        rec.measure(
            &catalogue::AMBULANCE,
            at + 15 * MINUTE,
            test,
            ObservationKind::VitalSign,
            Some(&encounter_id),
        );
    }
    handover
}

/// An A&E ENCOUNTER attendance with triage vitals; returns when the patient left A&E.
fn emergency_attendance(rec: &mut Record, at: EpochMillis) -> EpochMillis {
    let trust = rec.person.trust;
    let encounter_id = rec.local_id(&trust, "AE");
    let left = at + rec.rng.gen_range(HOUR..10 * HOUR);
    let reason = rec.pick(&catalogue::EMERGENCY_REASONS);
    rec.emit(
        &trust,
        at,
        catalogue::EMERGENCY_VISIT,
        Payload::Encounter(EncounterPayload {
            encounter_class: EncounterClass::Emergency,
            phase: EncounterPhase::Attendance,
            ended_at: Some(left),
            location: Some("Emergency department".into()),
            reason: Some(reason.into()),
        }),
    )
    .encounter_id = Some(encounter_id.clone());
    let vitals = rec.rng.gen_range(3..=catalogue::TRIAGE_VITALS.len());
    for test in &catalogue::TRIAGE_VITALS[..vitals] {
        rec.measure(
            &trust,
            at + 20 * MINUTE,
            *test,
            ObservationKind::VitalSign,
            Some(&encounter_id),
        );
    }
    left
}

/// An inpatient stay at the patient's trust: ENCOUNTER ADMISSION, then (all with the
/// stay's encounter id) the diagnosis, daily observations, admission bloods, a procedure
/// and an inpatient medicine, ENCOUNTER DISCHARGE, and the DISCHARGE_SUMMARY.
fn admission(rec: &mut Record, admitted_at: EpochMillis) {
    let trust = rec.person.trust;
    let until = rec.person.until;
    if admitted_at >= until {
        return;
    }
    let (diagnosis, procedure, ward) = rec.pick(&catalogue::ADMISSION_REASONS);
    let encounter_id = rec.local_id(&trust, "ADM");
    let stay_days = rec.rng.gen_range(1..12);
    let discharged_at = (admitted_at + stay_days * DAY + rec.rng.gen_range(0..8 * HOUR)).min(until);
    let in_stay = |e: &mut ClinicalEvent| e.encounter_id = Some(encounter_id.clone());
    in_stay(rec.emit(
        &trust,
        admitted_at,
        catalogue::ADMISSION,
        Payload::Encounter(EncounterPayload {
            encounter_class: EncounterClass::Inpatient,
            phase: EncounterPhase::Admission,
            ended_at: None,
            location: Some(ward.into()),
            reason: Some(diagnosis.display.into()),
        }),
    ));
    in_stay(rec.emit(
        &trust,
        admitted_at + HOUR,
        diagnosis,
        Payload::Condition(ConditionPayload {
            clinical_status: ConditionStatus::Active,
            verification: Verification::Unconfirmed,
            onset_at: Some(admitted_at),
            abated_at: None,
            severity: Some("Moderate".into()),
        }),
    ));
    let mut day = admitted_at + 2 * HOUR;
    while day < discharged_at {
        for test in [
            catalogue::HEART_RATE,
            catalogue::TEMPERATURE,
            catalogue::SPO2,
        ] {
            rec.measure(
                &trust,
                day,
                test,
                ObservationKind::VitalSign,
                Some(&encounter_id),
            );
        }
        day += DAY;
    }
    let before = rec.events.len();
    primary_care::lab_panel(rec, admitted_at + HOUR, &catalogue::ADMISSION_BLOODS);
    for event in &mut rec.events[before..] {
        event.encounter_id = Some(encounter_id.clone());
    }
    let operated_at = (admitted_at + rec.rng.gen_range(2 * HOUR..DAY)).min(discharged_at);
    let operation_ended_at = operated_at + rec.rng.gen_range(30 * MINUTE..3 * HOUR);
    in_stay(rec.emit(
        &trust,
        operated_at,
        procedure,
        Payload::Procedure(ProcedurePayload {
            outcome: Some("Successful".into()),
            body_site: None,
            ended_at: Some(operation_ended_at),
        }),
    ));
    let medicine = catalogue::AMOXICILLIN;
    in_stay(rec.emit(
        &trust,
        admitted_at + 3 * HOUR,
        medicine.concept,
        Payload::MedicationPrescribed(MedicationPrescribedPayload {
            dose: medicine.dose.into(),
            route: Some(medicine.route.into()),
            quantity: None,
            course: Course::Acute,
        }),
    ));
    in_stay(rec.emit(
        &trust,
        discharged_at,
        catalogue::DISCHARGE,
        Payload::Encounter(EncounterPayload {
            encounter_class: EncounterClass::Inpatient,
            phase: EncounterPhase::Discharge,
            ended_at: Some(discharged_at),
            location: Some(ward.into()),
            reason: None,
        }),
    ));
    let destination = rec.pick(&["Usual place of residence", "Care home", "Another hospital"]);
    let written_at = discharged_at + rec.rng.gen_range(2 * HOUR..3 * DAY);
    let summary = rec.emit(
        &trust,
        discharged_at,
        catalogue::DISCHARGE_SUMMARY,
        Payload::DischargeSummary(DischargeSummaryPayload {
            admitted_at,
            discharged_at,
            destination: Some(destination.into()),
            diagnoses: vec![diagnosis.display.into()],
            summary: format!(
                "Admitted with {}. {} performed. Recovered well.",
                diagnosis.display.to_lowercase(),
                procedure.display
            ),
            follow_up: Some("GP review in 2 weeks".into()),
            medications_on_discharge: vec![medicine.concept.display.into()],
        }),
    );
    summary.encounter_id = Some(encounter_id);
    summary.recorded_at = written_at;
}

/// A REFERRAL from the GP to a specialty at the patient's trust, followed (if it falls
/// within the history) by an outpatient ENCOUNTER there, with an investigation for some.
pub(super) fn referral(rec: &mut Record, at: EpochMillis) {
    let person = rec.person.clone();
    let (service, reason, investigation) = rec.pick(&catalogue::SPECIALTIES);
    let priority = match rec.rng.gen::<f64>() {
        u if u < 0.1 => ReferralPriority::TwoWeekWait,
        u if u < 0.3 => ReferralPriority::Urgent,
        _ => ReferralPriority::Routine,
    };
    refer(
        rec,
        &person.gp,
        at,
        person.trust.ods,
        service,
        priority,
        reason,
    );
    let wait_days = match priority {
        ReferralPriority::TwoWeekWait => rec.rng.gen_range(5..14),
        ReferralPriority::Urgent => rec.rng.gen_range(14..42),
        _ => rec.rng.gen_range(28..126),
    };
    let seen_at = rec.in_working_hours(at + wait_days * DAY);
    if seen_at >= person.until {
        return;
    }
    let clinic = Org {
        role: "consultant",
        ..person.trust
    };
    let encounter_id = outpatient(rec, &clinic, seen_at, &format!("{service} clinic"), reason);
    if rec.chance(0.6) {
        rec.emit(
            &clinic,
            seen_at + 30 * MINUTE,
            investigation,
            Payload::Procedure(ProcedurePayload {
                outcome: Some("Completed".into()),
                body_site: None,
                ended_at: Some(seen_at + HOUR),
            }),
        )
        .encounter_id = Some(encounter_id);
    }
}

/// A REFERRAL event by `from` to `service` at `to_ods_code`.
pub(super) fn refer(
    rec: &mut Record,
    from: &Org,
    at: EpochMillis,
    to_ods_code: &str,
    service: &str,
    priority: ReferralPriority,
    reason: &str,
) {
    rec.emit(
        from,
        at,
        catalogue::REFERRAL,
        Payload::Referral(ReferralPayload {
            to_ods_code: to_ods_code.into(),
            to_service: service.into(),
            priority,
            reason: Some(reason.into()),
        }),
    );
}

/// An outpatient ENCOUNTER attendance at `clinic`; returns its encounter id.
pub(super) fn outpatient(
    rec: &mut Record,
    clinic: &Org,
    at: EpochMillis,
    location: &str,
    reason: &str,
) -> String {
    let encounter_id = rec.local_id(clinic, "OPA");
    rec.emit(
        clinic,
        at,
        catalogue::OUTPATIENT,
        Payload::Encounter(EncounterPayload {
            encounter_class: EncounterClass::Outpatient,
            phase: EncounterPhase::Attendance,
            ended_at: Some(at + 30 * MINUTE),
            location: Some(location.into()),
            reason: Some(reason.into()),
        }),
    )
    .encounter_id = Some(encounter_id.clone());
    encounter_id
}
