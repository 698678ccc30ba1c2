//! One patient's record under construction: who they are, their random source, and the
//! events their journeys have produced so far.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use spr_schemas::*;

use super::catalogue::{Concept, LabTest, Org};

/// One minute, in milliseconds.
pub(super) const MINUTE: i64 = 60_000;
/// One hour, in milliseconds.
pub(super) const HOUR: i64 = 60 * MINUTE;
/// One day, in milliseconds.
pub(super) const DAY: i64 = 24 * HOUR;
/// One (Julian) year, in milliseconds.
pub(super) const YEAR: i64 = 365 * DAY + DAY / 4;

/// Administrative sex, as recorded in demographics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sex {
    Female,
    Male,
}

/// Who the patient is: fixed when their record is started.
#[derive(Debug, Clone)]
pub(super) struct Person {
    pub(super) ordinal: u64,
    pub(super) nhs_number: NhsNumber,
    pub(super) sex: Sex,
    pub(super) born_at: EpochMillis,
    /// Start of the simulated history (never before birth).
    pub(super) from: EpochMillis,
    /// End of the simulated history: the history end, or death.
    pub(super) until: EpochMillis,
    pub(super) gp: Org,
    pub(super) trust: Org,
    pub(super) pharmacy: Org,
}

impl Person {
    /// Age in whole years at `at`.
    pub(super) fn age_at(&self, at: EpochMillis) -> u32 {
        ((at - self.born_at).max(0) / YEAR) as u32
    }
}

/// A patient's record under construction.
#[derive(Debug)]
pub(super) struct Record {
    pub(super) person: Person,
    pub(super) rng: ChaCha8Rng,
    pub(super) events: Vec<ClinicalEvent>,
    next_local_id: u32,
}

impl Record {
    /// Starts an empty record.
    pub(super) fn new(person: Person, rng: ChaCha8Rng) -> Self {
        Self {
            person,
            rng,
            events: Vec::new(),
            next_local_id: 1,
        }
    }

    /// A fresh identifier in the namespace of `org` (`RR8-ADM-0000042-003`): unique across
    /// the population, since it carries the patient's ordinal.
    pub(super) fn local_id(&mut self, org: &Org, kind: &str) -> String {
        let n = self.next_local_id;
        self.next_local_id += 1;
        format!("{}-{kind}-{:07}-{n:03}", org.ods, self.person.ordinal)
    }

    /// A random event id from the record's own random source (so ids are deterministic).
    pub(super) fn event_id(&mut self) -> EventId {
        EventId::from_uuid(uuid::Builder::from_random_bytes(self.rng.gen()).into_uuid())
    }

    /// Appends an event by `org` that occurred at `at`, recorded a few minutes later,
    /// and returns it for any finishing touches.
    pub(super) fn emit(
        &mut self,
        org: &Org,
        at: EpochMillis,
        concept: Concept,
        payload: Payload,
    ) -> &mut ClinicalEvent {
        self.emit_code(org, at, concept.to_code(), payload)
    }

    /// [`Record::emit`] with a code that is not in the catalogue (one copied from another event).
    pub(super) fn emit_code(
        &mut self,
        org: &Org,
        at: EpochMillis,
        code: Code,
        payload: Payload,
    ) -> &mut ClinicalEvent {
        let event_id = self.event_id();
        let staff = self.rng.gen_range(1..40);
        let recorded_at = at + self.rng.gen_range(MINUTE..30 * MINUTE);
        self.events.push(ClinicalEvent {
            event_id,
            nhs_number: self.person.nhs_number,
            occurred_at: at,
            recorded_at,
            source: Source {
                system: org.system.into(),
                ods_code: org.ods.into(),
                care_setting: org.setting,
                record_id: None,
            },
            author: Author {
                id: format!("{}-{staff:03}", org.ods),
                role: org.role.into(),
            },
            code,
            sensitivity: vec![],
            status: Status::Final,
            supersedes: None,
            encounter_id: None,
            payload,
        });
        self.events.last_mut().expect("just pushed")
    }

    /// Appends an active, confirmed CONDITION diagnosed by `org` at `at`.
    pub(super) fn diagnose(
        &mut self,
        org: &Org,
        at: EpochMillis,
        concept: Concept,
        onset_at: Option<EpochMillis>,
    ) -> &mut ClinicalEvent {
        self.emit(
            org,
            at,
            concept,
            Payload::Condition(ConditionPayload {
                clinical_status: ConditionStatus::Active,
                verification: Verification::Confirmed,
                onset_at,
                abated_at: None,
                severity: None,
            }),
        )
    }

    /// Appends a numeric measurement drawn from `test`'s range, flagged `H` or `L` when
    /// outside its inner part, and returns its event id.
    pub(super) fn measure(
        &mut self,
        org: &Org,
        at: EpochMillis,
        test: LabTest,
        kind: ObservationKind,
        encounter_id: Option<&str>,
    ) -> EventId {
        let span = test.high - test.low;
        let raw = self
            .rng
            .gen_range(test.low - span * 0.1..test.high + span * 0.1);
        // Counts (steps) are whole; other measurements keep one decimal place.
        let value = if span >= 1_000.0 {
            raw.round()
        } else {
            (raw * 10.0).round() / 10.0
        };
        let interpretation = if value > test.high {
            Some("H".to_owned())
        } else if value < test.low {
            Some("L".to_owned())
        } else {
            None
        };
        let event = self.emit(
            org,
            at,
            test.concept,
            Payload::Observation(ObservationPayload {
                kind,
                value: Some(value),
                unit: Some(test.unit.into()),
                value_text: None,
                interpretation,
            }),
        );
        event.encounter_id = encounter_id.map(str::to_owned);
        event.event_id
    }

    /// A random time in `[from, until)`, or `None` when the span is empty.
    pub(super) fn time_between(
        &mut self,
        from: EpochMillis,
        until: EpochMillis,
    ) -> Option<EpochMillis> {
        (from < until).then(|| self.rng.gen_range(from..until))
    }

    /// A weekday-ish working time (08:00–18:00) on the day of `at`.
    pub(super) fn in_working_hours(&mut self, at: EpochMillis) -> EpochMillis {
        at - at.rem_euclid(DAY) + 8 * HOUR + self.rng.gen_range(0..10 * HOUR)
    }

    /// Times of a Poisson process with `per_year` events a year over the person's history.
    pub(super) fn yearly_times(&mut self, per_year: f64) -> Vec<EpochMillis> {
        let (from, until) = (self.person.from, self.person.until);
        let mut times = Vec::new();
        if per_year <= 0.0 {
            return times;
        }
        let mut t = from;
        loop {
            let gap = -self.rng.gen::<f64>().max(1e-12).ln() / per_year * YEAR as f64;
            t += gap as i64;
            if t >= until {
                return times;
            }
            times.push(t);
        }
    }

    /// Labels the last `n` events with `category`.
    pub(super) fn label_last(&mut self, n: usize, category: SensitiveCategory) {
        let start = self.events.len().saturating_sub(n);
        for event in &mut self.events[start..] {
            event.sensitivity.push(category.as_str().into());
        }
    }

    /// Puts the events in publication order: the registration first, then by recording
    /// time (sources publish when they record, so late arrivals come out of clinical order).
    pub(super) fn publication_order(&mut self) {
        self.events.sort_by_key(|e| e.recorded_at);
        let registration = self.events.iter().position(|e| {
            e.event_type() == EventType::Demographics && e.nhs_number == self.person.nhs_number
        });
        if let Some(first) = registration {
            self.events[..=first].rotate_right(1);
        }
    }

    /// Picks one element of `items`.
    pub(super) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.gen_range(0..items.len())]
    }

    /// True with probability `p`.
    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p.clamp(0.0, 1.0))
    }
}
