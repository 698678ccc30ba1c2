//! Clinical semantics of the projection against a real RocksDB: duplicates, late
//! arrivals, amendments, entered-in-error, merges, conflicts and the current-state
//! views. Records are handed to `project_batch` as the worker would hand them, or
//! decoded ahead of the batch before them as the worker decodes them.

use proptest::prelude::*;
use spr_projector::{
    project_batch, project_decoded, BatchOutcome, ConsumedRecord, DecodedBatch, ProjectionStore,
};
use spr_schemas::*;

const DAY: i64 = 86_400_000;
const NOW: i64 = 1_700_000_000_000;

fn nhs(s: &str) -> NhsNumber {
    s.parse().unwrap()
}

fn patient() -> NhsNumber {
    nhs("9990000018")
}

struct Projection {
    _dir: tempfile::TempDir,
    store: ProjectionStore,
    next_offset: i64,
}

impl Projection {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = ProjectionStore::open(dir.path(), false).unwrap();
        Self {
            _dir: dir,
            store,
            next_offset: 0,
        }
    }

    /// The records of `events`, at the next consecutive offsets.
    fn records(&mut self, events: &[ClinicalEvent]) -> Vec<ConsumedRecord> {
        events
            .iter()
            .map(|e| {
                self.next_offset += 1;
                ConsumedRecord {
                    topic: "spr.patient-events".into(),
                    partition: 0,
                    offset: self.next_offset - 1,
                    key: Some(e.nhs_number.as_str().as_bytes().to_vec()),
                    payload: Some(e.to_avro().unwrap()),
                }
            })
            .collect()
    }

    /// Projects events in one batch each of `batch` records, at consecutive offsets.
    fn apply(&mut self, events: &[ClinicalEvent], batch: usize) {
        let records = self.records(events);
        for chunk in records.chunks(batch.max(1)) {
            let outcome = project_batch(&self.store, chunk).unwrap();
            self.write(outcome);
        }
    }

    /// Like [`Self::apply`], as the worker runs: each batch is decoded before the one
    /// before it is written, and re-delivers that batch's records too (a consumer that
    /// read them again), which only projecting, after the write, can tell were applied.
    fn apply_decoded_ahead(&mut self, events: &[ClinicalEvent], batch: usize) {
        let records = self.records(events);
        let chunks: Vec<&[ConsumedRecord]> = records.chunks(batch.max(1)).collect();
        let mut ahead: Option<(DecodedBatch, usize)> = None;
        for (i, chunk) in chunks.iter().enumerate() {
            let redelivered = if i == 0 { &[][..] } else { chunks[i - 1] };
            let decoded = DecodedBatch::decode(&self.store, [redelivered, chunk].concat());
            if let Some((previous, again)) = ahead.replace((decoded, redelivered.len())) {
                self.write_decoded(&previous, again);
            }
        }
        if let Some((last, again)) = ahead {
            self.write_decoded(&last, again);
        }
    }

    /// Projects and writes a batch decoded ahead whose first `again` records were applied.
    fn write_decoded(&mut self, batch: &DecodedBatch, again: usize) {
        let outcome = project_decoded(&self.store, batch).unwrap();
        assert_eq!(outcome.already_applied, again);
        assert_eq!(
            outcome.projected + outcome.duplicates,
            batch.records().len() - again
        );
        self.write(outcome);
    }

    fn write(&self, outcome: BatchOutcome) {
        assert!(
            outcome.dead_letters.is_empty(),
            "{:?}",
            outcome.dead_letters
        );
        self.store.write(outcome.batch).unwrap();
    }

    fn timeline(&self, n: &NhsNumber) -> Vec<spr_projector::TimelineEntry> {
        let numbers = self.store.record_numbers(n).unwrap().all;
        self.store
            .record_timeline(&numbers, None, 10_000)
            .unwrap()
            .entries
    }

    fn summary(&self, n: &NhsNumber) -> spr_projector::summary::EmergencySummary {
        let numbers = self.store.record_numbers(n).unwrap().all;
        self.store.emergency_summary(&numbers, NOW).unwrap()
    }

    fn digest(&self) -> [u8; 32] {
        self.store.content_digest().unwrap()
    }
}

fn at(mut event: ClinicalEvent, occurred_at: i64, ods: &str) -> ClinicalEvent {
    event.occurred_at = occurred_at;
    event.recorded_at = occurred_at + 60_000;
    event.source.ods_code = ods.into();
    event
}

fn correction(of: &ClinicalEvent, status: Status, recorded_at: i64) -> ClinicalEvent {
    let mut c = of.clone();
    c.event_id = EventId::random();
    c.status = status;
    c.supersedes = Some(of.event_id);
    c.recorded_at = recorded_at;
    c
}

fn allergy(verification: Verification, ods: &str, t: i64) -> ClinicalEvent {
    let mut e = at(examples::allergy(patient()), t, ods);
    if let Payload::Allergy(a) = &mut e.payload {
        a.verification = verification;
    }
    e
}

#[test]
fn a_redelivered_or_republished_event_changes_nothing() {
    let events = examples::one_of_each_type(patient());
    let mut once = Projection::new();
    once.apply(&events, 100);
    let mut twice = Projection::new();
    twice.apply(&events, 7);
    twice.apply(&events, 3); // republished at later offsets
    assert_eq!(once.digest(), twice.digest());
    assert_eq!(twice.store.event_count().unwrap(), events.len() as u64);
}

#[test]
fn a_late_arriving_event_lands_in_clinical_time_order() {
    let mut p = Projection::new();
    let recent = at(examples::observation(patient()), NOW, "A81001");
    let older = at(examples::observation(patient()), NOW - 30 * DAY, "A81001");
    p.apply(std::slice::from_ref(&recent), 1);
    p.apply(std::slice::from_ref(&older), 1);
    let ids: Vec<EventId> = p.timeline(&patient()).iter().map(|e| e.event_id).collect();
    assert_eq!(ids, [older.event_id, recent.event_id]);
    // The latest observation of the code is still the recent one.
    assert_eq!(
        p.summary(&patient()).latest_observations[0].event_id,
        recent.event_id
    );
}

#[test]
fn an_amendment_replaces_and_entered_in_error_hides_in_either_order() {
    let original = allergy(Verification::Confirmed, "A81001", NOW - DAY);
    let mut amended = correction(&original, Status::Amended, NOW);
    if let Payload::Allergy(a) = &mut amended.payload {
        a.reaction = Some("Anaphylaxis".into());
    }
    let withdrawn_target = at(
        examples::medication_prescribed(patient()),
        NOW - DAY,
        "A81001",
    );
    let withdrawal = correction(&withdrawn_target, Status::EnteredInError, NOW);
    let forward = [
        original.clone(),
        amended.clone(),
        withdrawn_target.clone(),
        withdrawal.clone(),
    ];
    let backward = [
        withdrawal.clone(),
        amended.clone(),
        withdrawn_target.clone(),
        original.clone(),
    ];
    let mut digests = vec![];
    for (events, batch) in [(&forward, 1), (&forward, 4), (&backward, 1), (&backward, 4)] {
        let mut p = Projection::new();
        p.apply(events, batch);
        let summary = p.summary(&patient());
        let allergies: Vec<EventId> = summary.allergies.iter().map(|e| e.event_id).collect();
        assert_eq!(
            allergies,
            [amended.event_id],
            "the amendment replaces the original"
        );
        assert!(
            summary.medications.is_empty(),
            "entered-in-error hides the prescription"
        );
        let timeline = p.timeline(&patient());
        let entry = |id: EventId| timeline.iter().find(|e| e.event_id == id).unwrap().clone();
        assert_eq!(
            entry(original.event_id).superseded_by.unwrap().event_id,
            amended.event_id
        );
        let withdrawn = entry(withdrawn_target.event_id).superseded_by.unwrap();
        assert_eq!(withdrawn.status, Status::EnteredInError);
        assert!(
            !entry(withdrawal.event_id).stands(),
            "a withdrawal is not itself a fact"
        );
        assert!(entry(amended.event_id).stands());
        assert_eq!(timeline.len(), 4, "everything is kept for audit");
        digests.push(p.digest());
    }
    assert!(
        digests.windows(2).all(|w| w[0] == w[1]),
        "order and batching do not matter"
    );
}

#[test]
fn a_correction_under_another_nhs_number_does_not_touch_the_event() {
    let mut p = Projection::new();
    let original = allergy(Verification::Confirmed, "A81001", NOW);
    let mut foreign = correction(&original, Status::EnteredInError, NOW);
    foreign.nhs_number = nhs("9990000026");
    p.apply(&[original, foreign], 2);
    assert_eq!(p.summary(&patient()).allergies.len(), 1);
    assert!(p.timeline(&patient())[0].stands());
}

#[test]
fn two_sources_disagreeing_keep_both_facts_and_flag_a_conflict() {
    let mut p = Projection::new();
    let gp = allergy(Verification::Confirmed, "A81001", NOW - DAY);
    let hospital = allergy(Verification::Refuted, "RJ1", NOW);
    p.apply(&[gp.clone(), hospital.clone()], 2);
    let summary = p.summary(&patient());
    assert_eq!(
        summary
            .allergies
            .iter()
            .map(|e| e.event_id)
            .collect::<Vec<_>>(),
        [gp.event_id]
    );
    assert_eq!(
        summary
            .disputed
            .iter()
            .map(|e| e.event_id)
            .collect::<Vec<_>>(),
        [hospital.event_id]
    );
    assert_eq!(summary.conflicts.len(), 1);
    let conflict = &summary.conflicts[0];
    assert_eq!(conflict.kind, "allergy");
    assert!(
        conflict.description.contains("A81001") && conflict.description.contains("RJ1"),
        "{}",
        conflict.description
    );
    // The same source refuting its own record is a change of mind, not a conflict.
    let mut q = Projection::new();
    q.apply(&[gp, allergy(Verification::Refuted, "A81001", NOW)], 2);
    let summary = q.summary(&patient());
    assert!(summary.allergies.is_empty() && summary.conflicts.is_empty());
}

/// Facts recorded only in words are told apart by their words: two free-text allergies
/// from one source are two allergies, the same words refuted later are one, and two
/// safeguarding flags with different detail are two alerts.
#[test]
fn facts_recorded_only_in_words_are_told_apart_by_their_words() {
    let in_words = |words: &str, verification: Verification, t: i64| {
        let mut e = allergy(verification, "RJ1", t);
        e.event_id = EventId::random();
        e.code = Code {
            system: String::new(),
            code: String::new(),
            display: words.into(),
        };
        e
    };
    let mut p = Projection::new();
    let penicillin = in_words("Penicillin", Verification::Confirmed, NOW - 2 * DAY);
    let latex = in_words("latex ", Verification::Confirmed, NOW - DAY);
    p.apply(&[penicillin.clone(), latex.clone()], 1);
    let mut shown: Vec<EventId> = p
        .summary(&patient())
        .allergies
        .iter()
        .map(|e| e.event_id)
        .collect();
    shown.sort();
    let mut both = vec![penicillin.event_id, latex.event_id];
    both.sort();
    assert_eq!(shown, both, "two different allergies in words are two");
    p.apply(&[in_words("LATEX", Verification::Refuted, NOW)], 1);
    let shown: Vec<EventId> = p
        .summary(&patient())
        .allergies
        .iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(
        shown,
        [penicillin.event_id],
        "the same words refuted are one fact"
    );

    let flag = |detail: &str, t: i64| {
        let mut e = at(
            examples::one_of_each_type(patient())
                .into_iter()
                .find(|e| e.event_type() == EventType::SafeguardingFlag)
                .unwrap(),
            t,
            "A81001",
        );
        e.event_id = EventId::random();
        e.code = Code {
            system: String::new(),
            code: String::new(),
            display: "Safeguarding concern".into(),
        };
        if let Payload::SafeguardingFlag(f) = &mut e.payload {
            f.active = true;
            f.detail = Some(detail.into());
        }
        e
    };
    p.apply(
        &[flag("neglect", NOW - DAY), flag("domestic abuse", NOW)],
        1,
    );
    assert_eq!(
        p.summary(&patient()).alerts.len(),
        2,
        "two concerns, two alerts"
    );
}

#[test]
fn problems_follow_the_latest_status_per_source() {
    let condition = |status: ConditionStatus, ods: &str, t: i64| {
        let mut e = at(examples::one_of_each_type(patient())[5].clone(), t, ods);
        match &mut e.payload {
            Payload::Condition(c) => c.clinical_status = status,
            other => panic!("example 5 is a condition, not {other:?}"),
        }
        e
    };
    let mut p = Projection::new();
    p.apply(
        &[
            condition(ConditionStatus::Active, "A81001", NOW - 9 * DAY),
            condition(ConditionStatus::Resolved, "A81001", NOW - DAY),
        ],
        1,
    );
    assert!(
        p.summary(&patient()).problems.is_empty(),
        "resolved later by the same source"
    );
    p.apply(&[condition(ConditionStatus::Active, "RJ1", NOW)], 1);
    let summary = p.summary(&patient());
    assert_eq!(summary.problems.len(), 1);
    assert_eq!(summary.conflicts[0].kind, "problem");
}

#[test]
fn medications_stop_by_prescription_or_by_code_and_restart() {
    let prescribed = |t: i64| at(examples::medication_prescribed(patient()), t, "A81001");
    let stop = |t: i64, id: Option<EventId>| {
        at(
            ClinicalEvent {
                event_id: EventId::random(),
                payload: Payload::MedicationStopped(MedicationStoppedPayload {
                    prescription_id: id,
                    reason: None,
                }),
                ..examples::medication_prescribed(patient())
            },
            t,
            "A81001",
        )
    };
    let first = prescribed(NOW - 60 * DAY);
    let mut p = Projection::new();
    p.apply(
        &[first.clone(), stop(NOW - 50 * DAY, Some(first.event_id))],
        1,
    );
    assert!(p
        .store
        .medication_view(&[patient()], NOW)
        .unwrap()
        .current
        .is_empty());
    let second = prescribed(NOW - 40 * DAY);
    p.apply(std::slice::from_ref(&second), 1);
    let view = p.store.medication_view(&[patient()], NOW).unwrap();
    assert_eq!(
        view.current
            .iter()
            .map(|m| m.prescription.event_id)
            .collect::<Vec<_>>(),
        [second.event_id]
    );
    assert_eq!(view.recent_changes.len(), 3);
    // A stop without a prescription id stops every earlier prescription of the code,
    // even one that arrives after the stop.
    let late = prescribed(NOW - 30 * DAY);
    p.apply(&[stop(NOW - 20 * DAY, None), late], 1);
    assert!(p
        .store
        .medication_view(&[patient()], NOW)
        .unwrap()
        .current
        .is_empty());
}

/// The merge of `retired` into `surviving`, recorded under `under`.
fn merge(retired: NhsNumber, surviving: NhsNumber, under: NhsNumber) -> ClinicalEvent {
    ClinicalEvent {
        event_id: EventId::random(),
        nhs_number: under,
        payload: Payload::NhsNumberMerge(NhsNumberMergePayload {
            retired_nhs_number: retired,
            surviving_nhs_number: surviving,
        }),
        ..examples::observation(under)
    }
}

#[test]
fn an_nhs_number_merge_gives_the_merged_record_under_either_number() {
    let (retired, surviving) = (nhs("9990000026"), patient());
    let merge_under = |n| merge(retired, surviving, n);
    let old = at(examples::allergy(retired), NOW - DAY, "RJ1");
    let new = at(examples::observation(surviving), NOW, "A81001");
    let mut p = Projection::new();
    p.apply(
        &[
            old.clone(),
            new.clone(),
            merge_under(retired),
            merge_under(surviving),
        ],
        2,
    );
    for number in [retired, surviving] {
        let numbers = p.store.record_numbers(&number).unwrap();
        assert_eq!(numbers.surviving, surviving);
        assert_eq!(numbers.all, [surviving, retired]);
        let ids: Vec<EventId> = p
            .timeline(&number)
            .iter()
            .filter(|e| e.event_type != EventType::NhsNumberMerge)
            .map(|e| e.event_id)
            .collect();
        assert_eq!(ids, [old.event_id, new.event_id], "reading {number}");
        assert_eq!(p.summary(&number).allergies.len(), 1);
    }
}

#[test]
fn the_newest_observation_of_each_code_demographics_and_discharge_span_merged_numbers() {
    let (retired, surviving) = (nhs("9990000026"), patient());
    let of_type = |n: NhsNumber, t: EventType, occurred_at: i64| {
        let event = examples::one_of_each_type(n)
            .into_iter()
            .find(|e| e.event_type() == t)
            .expect("an example of each type");
        ClinicalEvent {
            event_id: EventId::random(),
            ..at(event, occurred_at, "A81001")
        }
    };
    let mut events = vec![
        merge(retired, surviving, retired),
        merge(retired, surviving, surviving),
    ];
    // Six readings of each of three codes, alternating between the two numbers, so
    // the newest of a code is on either number.
    let mut newest = Vec::new();
    for (c, code) in ["8480-6", "8462-4", "8867-4"].into_iter().enumerate() {
        for k in 0..6 {
            let n = if (k + c) % 2 == 0 { retired } else { surviving };
            let mut reading = of_type(n, EventType::Observation, NOW - k as i64 * DAY + c as i64);
            reading.code.code = code.into();
            if k == 0 {
                newest.push(reading.event_id);
            }
            events.push(reading);
        }
    }
    let details = [
        of_type(surviving, EventType::Demographics, NOW - 9 * DAY),
        of_type(retired, EventType::Demographics, NOW - DAY),
        of_type(surviving, EventType::Demographics, NOW - 5 * DAY),
    ];
    let discharges = [
        of_type(retired, EventType::DischargeSummary, NOW - 8 * DAY),
        of_type(surviving, EventType::DischargeSummary, NOW - 2 * DAY),
        of_type(retired, EventType::DischargeSummary, NOW - 4 * DAY),
    ];
    events.extend(details.iter().chain(&discharges).cloned());
    events.reverse(); // the newest arrive first
    let mut p = Projection::new();
    p.apply(&events, 4);
    for number in [retired, surviving] {
        let summary = p.summary(&number);
        let mut latest: Vec<EventId> = summary
            .latest_observations
            .iter()
            .map(|e| e.event_id)
            .collect();
        latest.sort();
        newest.sort();
        assert_eq!(latest, newest, "reading {number}");
        assert_eq!(
            summary.demographics.map(|d| d.event_id),
            Some(details[1].event_id)
        );
        let numbers = p.store.record_numbers(&number).unwrap().all;
        let discharge = p.store.discharge_view(&numbers).unwrap();
        assert_eq!(
            discharge.summary.map(|d| d.event_id),
            Some(discharges[1].event_id)
        );
    }
}

#[test]
fn the_registered_practice_is_the_latest_one_named_and_demographics_without_one_keep_it() {
    let demographics = |practice: Option<&str>, occurred_at: i64| {
        let mut event = examples::one_of_each_type(patient())
            .into_iter()
            .find(|e| e.event_type() == EventType::Demographics)
            .expect("a demographics example");
        event.event_id = EventId::random();
        event.occurred_at = occurred_at;
        if let Payload::Demographics(d) = &mut event.payload {
            d.registered_gp_ods_code = practice.map(str::to_owned);
        }
        event
    };
    let mut p = Projection::new();
    let numbers = p.store.record_numbers(&patient()).unwrap().all;
    assert_eq!(p.store.registered_practice(&numbers).unwrap(), None);
    p.apply(&[demographics(Some("A81001"), NOW - 9 * DAY)], 1);
    // A hospital's demographics without the practice, newer: still registered at A81001.
    p.apply(&[demographics(None, NOW - DAY)], 1);
    assert_eq!(
        p.store.registered_practice(&numbers).unwrap().as_deref(),
        Some("A81001")
    );
    // A registration elsewhere, older than the hospital's update but newer than the
    // first: the practice moves.
    p.apply(&[demographics(Some("B82005"), NOW - 5 * DAY)], 1);
    assert_eq!(
        p.store.registered_practice(&numbers).unwrap().as_deref(),
        Some("B82005")
    );
}

#[test]
fn maternity_discharge_relationship_and_choice_views() {
    let every = examples::one_of_each_type(patient());
    let by_type = |t: EventType| every.iter().find(|e| e.event_type() == t).unwrap().clone();
    let mut p = Projection::new();
    let episode = by_type(EventType::PregnancyEpisode);
    let visit = by_type(EventType::AntenatalVisit);
    p.apply(&[episode, visit], 2);
    let maternity = p.store.maternity_view(&[patient()]).unwrap();
    assert!(maternity[0].open && maternity[0].visits.len() == 1);
    p.apply(&[by_type(EventType::Birth)], 1);
    assert!(
        !p.store.maternity_view(&[patient()]).unwrap()[0].open,
        "a birth closes the episode"
    );

    let admission = by_type(EventType::Encounter);
    let encounter_id = admission.encounter_id.clone();
    let mut during = at(examples::observation(patient()), NOW - DAY, "RJ1");
    during.encounter_id = encounter_id.clone();
    let mut discharge = by_type(EventType::DischargeSummary);
    discharge.encounter_id = encounter_id;
    p.apply(&[admission.clone(), during.clone(), discharge.clone()], 3);
    let view = p.store.discharge_view(&[patient()]).unwrap();
    assert_eq!(view.summary.unwrap().event_id, discharge.event_id);
    let ids: Vec<EventId> = view.admission_events.iter().map(|e| e.event_id).collect();
    assert!(
        ids.contains(&admission.event_id) && ids.contains(&during.event_id),
        "{ids:?}"
    );

    let relationship = p
        .store
        .relationship(&[patient()], &admission.source.ods_code)
        .unwrap();
    assert_eq!(relationship.last_contact_at, Some(admission.occurred_at));
    assert_eq!(
        p.store.relationship(&[patient()], "ZZZ99").unwrap(),
        Default::default()
    );
    let team = by_type(EventType::CareTeam);
    p.apply(&[team], 1);
    assert!(p
        .store
        .relationship(&[patient()], "RY6")
        .unwrap()
        .care_team_until
        .is_some());
    // A referral to a service named without an organisation links no organisation.
    let mut unnamed = by_type(EventType::Referral);
    if let Payload::Referral(r) = &mut unnamed.payload {
        r.to_ods_code = String::new();
    }
    p.apply(&[unnamed], 1);
    for nobody in ["", " "] {
        assert_eq!(
            p.store.relationship(&[patient()], nobody).unwrap(),
            Default::default()
        );
    }
    // An ODS code sent in lower case links its organisation, asked for in either case.
    let mut lower = by_type(EventType::Encounter);
    lower.event_id = EventId::random();
    lower.source.ods_code = "rgt01".into();
    p.apply(std::slice::from_ref(&lower), 1);
    for asked in ["RGT01", "rgt01"] {
        assert_eq!(
            p.store
                .relationship(&[patient()], asked)
                .unwrap()
                .last_contact_at,
            Some(lower.occurred_at),
            "{asked}"
        );
    }

    let choice = |c: SharingChoice, t: i64| {
        let mut e = at(by_type(EventType::ConsentChoice), t, "A81001");
        e.event_id = EventId::random();
        if let Payload::ConsentChoice(p) = &mut e.payload {
            p.choice = c;
        }
        e
    };
    // The latest choice wins, whatever order the events arrive in.
    p.apply(
        &[
            choice(SharingChoice::Share, NOW),
            choice(SharingChoice::Withhold, NOW - DAY),
        ],
        1,
    );
    let choices = p.store.sharing_choices(&[patient()]).unwrap();
    assert_eq!(
        choices[&SensitiveCategory::SexualHealth].0,
        SharingChoice::Share
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Any arrival order and batching of one patient's events and their corrections
    /// gives byte-identical projected state, whether each batch is decoded as it is
    /// projected or ahead, while the batch before it is written.
    #[test]
    fn the_projection_does_not_depend_on_arrival_order_or_batching(
        seed in any::<u64>(),
        batch_a in 1usize..8,
        batch_b in 1usize..8,
    ) {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut events = examples::one_of_each_type(patient());
        for (i, e) in events.iter_mut().enumerate() {
            e.occurred_at = NOW - (i as i64 % 5) * DAY;
        }
        let corrections: Vec<ClinicalEvent> = events
            .iter()
            .take(6)
            .enumerate()
            .map(|(i, e)| correction(e, if i % 2 == 0 { Status::Amended } else { Status::EnteredInError }, NOW + i as i64))
            .collect();
        events.extend(corrections);
        events.push(events[0].clone()); // a duplicate delivery
        let mut shuffled = events.clone();
        shuffled.shuffle(&mut rng);
        let (mut a, mut b, mut c) = (Projection::new(), Projection::new(), Projection::new());
        a.apply(&events, batch_a);
        b.apply(&shuffled, batch_b);
        c.apply_decoded_ahead(&shuffled, batch_b);
        prop_assert_eq!(a.digest(), b.digest());
        prop_assert_eq!(b.digest(), c.digest());
    }
}

/// Decoding ahead skips the records the store had applied; if projecting finds one of
/// them not applied after all (here: another store), it decodes it itself.
#[test]
fn a_record_skipped_when_decoded_ahead_is_decoded_when_projected() {
    let events = examples::one_of_each_type(patient());
    let mut applied = Projection::new();
    applied.apply(&events, 100);
    let mut fresh = Projection::new();
    let decoded = DecodedBatch::decode(&applied.store, fresh.records(&events));
    let outcome = project_decoded(&fresh.store, &decoded).unwrap();
    assert_eq!(outcome.projected, events.len());
    fresh.write(outcome);
    assert_eq!(fresh.digest(), applied.digest());
}

#[test]
fn a_filtered_timeline_pages_through_sparse_matches_and_time_ranges() {
    use spr_projector::store::SCAN_BUDGET;
    use spr_projector::{TimeRange, TimelineCursor};
    let mut p = Projection::new();
    let mut events: Vec<ClinicalEvent> = (0..SCAN_BUDGET as i64 + 500)
        .map(|i| {
            at(
                examples::observation(patient()),
                NOW - 1_000_000 + i,
                "A81001",
            )
        })
        .collect();
    let rare = at(examples::allergy(patient()), NOW, "RJ1");
    events.push(rare.clone());
    p.apply(&events, 5_000);
    let is_allergy = |e: &spr_projector::TimelineEntry| e.event_type == EventType::Allergy;
    let numbers = [patient()];
    let mut cursor = None;
    let mut found = vec![];
    let mut pages = 0;
    loop {
        let page = p
            .store
            .record_timeline_where(&numbers, cursor.as_ref(), TimeRange::ALL, 10, is_allergy)
            .unwrap();
        pages += 1;
        found.extend(page.entries.iter().map(|e| e.event_id));
        match page.next_cursor {
            Some(c) => cursor = Some(TimelineCursor::parse(&c).unwrap()),
            None => break,
        }
    }
    assert_eq!(found, [rare.event_id]);
    assert_eq!(
        pages, 2,
        "the first page stops at the scan budget and says where to go on"
    );

    let range = TimeRange {
        from: Some(NOW - 1_000_000 + 10),
        to: Some(NOW - 1_000_000 + 19),
    };
    let page = p
        .store
        .record_timeline_where(&numbers, None, range, 100, |_| true)
        .unwrap();
    let times: Vec<i64> = page.entries.iter().map(|e| e.occurred_at).collect();
    assert_eq!(
        times,
        (NOW - 1_000_000 + 10..=NOW - 1_000_000 + 19).collect::<Vec<_>>()
    );
    assert!(page.next_cursor.is_none());
}
