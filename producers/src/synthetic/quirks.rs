//! The data-quality problems real feeds have, applied to a finished record: conflicting
//! facts from two sources, a duplicate record merged into this one, late-arriving events,
//! amendments, entries in error, and duplicated deliveries.

use rand::Rng;
use spr_schemas::*;

use super::catalogue;
use super::numbers::NumberAllocator;
use super::record::{Record, DAY, HOUR, MINUTE};

/// Share of events that arrive late (recorded 20 to 400 days after they happened).
const LATE: f64 = 0.01;
/// Share of amendable events (observations, conditions, allergies, procedures) amended.
const AMENDED: f64 = 0.015;
/// Share of clinical events later marked entered in error.
const ENTERED_IN_ERROR: f64 = 0.004;
/// Share of events delivered twice.
const DUPLICATED: f64 = 0.005;
/// Share of patients with an A&E attendance first registered under another NHS number.
const MERGED: f64 = 0.01;

/// Conflicts between sources: a hospital refutes some GP allergies (8%) and records some
/// GP long-term conditions as resolved (4%).
pub(super) fn conflicts(rec: &mut Record) {
    let trust = rec.person.trust;
    let gp_ods = rec.person.gp.ods;
    let candidates: Vec<ClinicalEvent> = rec
        .events
        .iter()
        .filter(|e| e.source.ods_code == gp_ods)
        .filter(|e| matches!(e.payload, Payload::Allergy(_) | Payload::Condition(_)))
        .cloned()
        .collect();
    for original in candidates {
        let at = original.occurred_at + rec.rng.gen_range(30..700) * DAY;
        if at >= rec.person.until {
            continue;
        }
        let payload = match &original.payload {
            Payload::Allergy(a) if rec.chance(0.08) => Payload::Allergy(AllergyPayload {
                verification: Verification::Refuted,
                reaction: Some("Tolerated a test dose".into()),
                ..a.clone()
            }),
            Payload::Condition(c) if c.clinical_status.is_active() && rec.chance(0.04) => {
                Payload::Condition(ConditionPayload {
                    clinical_status: ConditionStatus::Resolved,
                    abated_at: Some(at - 30 * DAY),
                    ..c.clone()
                })
            }
            _ => continue,
        };
        let event = rec.emit_code(&trust, at, original.code.clone(), payload);
        event.sensitivity = original.sensitivity;
    }
}

/// For a share of patients with an A&E attendance: A&E first registered them under a new
/// number (a DEMOGRAPHICS and the attendance's events go to that number), and weeks later
/// the two records are merged: one NHS_NUMBER_MERGE under each number. Returns the retired
/// number.
pub(super) fn merge(rec: &mut Record, numbers: &mut NumberAllocator) -> Option<NhsNumber> {
    let attendance = rec.events.iter().find(|e| {
        matches!(&e.payload, Payload::Encounter(p) if p.encounter_class == EncounterClass::Emergency)
            && e.source.care_setting == CareSetting::Acute
    })?;
    let (encounter_id, at, trust) = (
        attendance.encounter_id.clone(),
        attendance.occurred_at,
        attendance.source.clone(),
    );
    if !rec.chance(MERGED) {
        return None;
    }
    let retired = numbers.next_extra()?;
    let surviving = rec.person.nhs_number;
    let registration = rec
        .events
        .iter()
        .find(|e| e.event_type() == EventType::Demographics)
        .cloned()?;
    let mut temporary = registration;
    temporary.event_id = rec.event_id();
    temporary.nhs_number = retired;
    temporary.occurred_at = at - 10 * MINUTE;
    temporary.recorded_at = at - 5 * MINUTE;
    temporary.source = trust.clone();
    if let Payload::Demographics(d) = &mut temporary.payload {
        d.postcode = None;
    }
    rec.events.push(temporary);
    for event in &mut rec.events {
        if event.encounter_id == encounter_id && event.source.ods_code == trust.ods_code {
            event.nhs_number = retired;
        }
    }
    let merged_at = at + rec.rng.gen_range(7..60) * DAY;
    for key in [retired, surviving] {
        rec.emit(
            &catalogue::SPINE,
            merged_at,
            catalogue::NHS_NUMBER_MERGE,
            Payload::NhsNumberMerge(NhsNumberMergePayload {
                retired_nhs_number: retired,
                surviving_nhs_number: surviving,
            }),
        )
        .nhs_number = key;
    }
    Some(retired)
}

/// Late arrivals, amendments and entries in error: new events (or later recording times)
/// on top of what the journeys produced.
pub(super) fn corrections(rec: &mut Record) {
    for i in 0..rec.events.len() {
        let kind = rec.events[i].event_type();
        if kind != EventType::Demographics && rec.chance(LATE) {
            rec.events[i].recorded_at += rec.rng.gen_range(20..400) * DAY;
        }
        let amendable = matches!(
            kind,
            EventType::Observation
                | EventType::Condition
                | EventType::Allergy
                | EventType::Procedure
        );
        let withdrawable = !matches!(
            kind,
            EventType::Demographics | EventType::NhsNumberMerge | EventType::ConsentChoice
        );
        if amendable && rec.chance(AMENDED) {
            let mut amendment = follow_up(rec, i, Status::Amended);
            amend(&mut amendment.payload);
            rec.events.push(amendment);
        } else if withdrawable && rec.chance(ENTERED_IN_ERROR) {
            let withdrawal = follow_up(rec, i, Status::EnteredInError);
            rec.events.push(withdrawal);
        }
    }
}

/// A copy of event `i` with a new id and `status`, superseding it, recorded later.
fn follow_up(rec: &mut Record, i: usize, status: Status) -> ClinicalEvent {
    let mut event = rec.events[i].clone();
    event.event_id = rec.event_id();
    event.status = status;
    event.supersedes = Some(rec.events[i].event_id);
    event.recorded_at += rec.rng.gen_range(HOUR..20 * DAY);
    event
}

/// Changes an amendable payload the way a correction would.
fn amend(payload: &mut Payload) {
    match payload {
        Payload::Observation(o) => {
            o.value = o.value.map(|v| (v * 1.1 * 10.0).round() / 10.0);
            o.interpretation = None;
        }
        Payload::Condition(c) => c.severity = Some("Mild".into()),
        Payload::Allergy(a) => a.criticality = Criticality::High,
        Payload::Procedure(p) => p.outcome = Some("Completed with minor complications".into()),
        _ => {}
    }
}

/// Re-delivers a share of events: the same event (same id, same bytes) again a few
/// events after the first delivery.
pub(super) fn duplicate_deliveries(rec: &mut Record) {
    let mut i = 0;
    while i < rec.events.len() {
        if rec.chance(DUPLICATED) {
            let at = (i + rec.rng.gen_range(1..6)).min(rec.events.len());
            let again = rec.events[i].clone();
            rec.events.insert(at, again);
            i = at;
        }
        i += 1;
    }
}
