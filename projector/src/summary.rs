//! Views resolved at read time from the current-state rows: the emergency summary,
//! medications, maternity, discharge, relationships, sharing choices and merged records.
//!
//! Resolution is a pure function of the standing rows, so it does not matter in which
//! order events arrived. Where two sources disagree, both facts are kept, each with its
//! provenance, and a [`Conflict`] says so.

use std::collections::BTreeMap;

use serde::Serialize;
use spr_schemas::{
    Code, EpochMillis, EventId, NhsNumber, Payload, SensitiveCategory, SharingChoice, Verification,
};

use crate::store::{ProjectionStore, StoreError, TimelineEntry};
use crate::views::{relationship_group, View, ViewRow};

/// How long an acute prescription counts as current, and changes count as recent.
pub const RECENT_MILLIS: EpochMillis = 90 * 86_400_000;

/// Two sources disagreeing about one fact.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conflict {
    /// What kind of fact: `allergy`, `problem` or `medication`.
    pub kind: &'static str,
    /// The concept they disagree about.
    pub code: Code,
    /// The disagreement in words.
    pub description: String,
    /// The events that disagree (each is listed with its provenance in the view).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub event_ids: Vec<EventId>,
}

/// The emergency summary: what a clinician needs in the first minute.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmergencySummary {
    /// The patient's latest demographic details.
    pub demographics: Option<TimelineEntry>,
    /// Allergies not refuted, latest per code and source.
    pub allergies: Vec<TimelineEntry>,
    /// Current medications.
    pub medications: Vec<TimelineEntry>,
    /// Active problems, latest per code and source.
    pub problems: Vec<TimelineEntry>,
    /// Active alerts (safeguarding flags).
    pub alerts: Vec<TimelineEntry>,
    /// The latest observation of each code.
    pub latest_observations: Vec<TimelineEntry>,
    /// Where sources disagree; the facts involved are listed above or in `disputed`.
    pub conflicts: Vec<Conflict>,
    /// Facts that are part of a conflict but not current (a refuted allergy, a resolved problem).
    pub disputed: Vec<TimelineEntry>,
}

/// A current medication with its latest supply.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CurrentMedication {
    /// The prescription that stands.
    pub prescription: TimelineEntry,
    /// The latest dispensing of the same medicine, if any.
    pub last_dispensed: Option<TimelineEntry>,
}

/// Medication reconciliation: current medicines across sources and recent changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MedicationView {
    /// Current medications.
    pub current: Vec<CurrentMedication>,
    /// Prescriptions, dispensings and stops in the last 90 days, newest first.
    pub recent_changes: Vec<TimelineEntry>,
    /// The same medicine prescribed differently by two sources.
    pub conflicts: Vec<Conflict>,
}

/// One pregnancy episode and its contacts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PregnancyEpisode {
    /// The episode's identifier.
    pub episode_id: String,
    /// Open: active and no birth recorded.
    pub open: bool,
    /// The latest episode record (status, due date, risks).
    pub episode: Option<TimelineEntry>,
    /// Antenatal visits, oldest first.
    pub visits: Vec<TimelineEntry>,
    /// The birth, if recorded.
    pub birth: Option<TimelineEntry>,
    /// Risks recorded at booking and at visits, each once.
    pub risks: Vec<String>,
}

/// The discharge view: the latest discharge summary and the events of its admission.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DischargeView {
    /// The latest discharge summary.
    pub summary: Option<TimelineEntry>,
    /// Events recorded under the same encounter, oldest first.
    pub admission_events: Vec<TimelineEntry>,
}

/// What gives an organisation a legitimate relationship with a patient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Relationship {
    /// The latest encounter at, referral to or care-team event of the organisation.
    pub last_contact_at: Option<EpochMillis>,
    /// The end of the latest explicit care-team assignment (`None`: none, or open-ended
    /// when `open_ended_care_team`).
    pub care_team_until: Option<EpochMillis>,
    /// An explicit care-team assignment with no end.
    pub open_ended_care_team: bool,
}

/// The NHS numbers of one person's record after merges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordNumbers {
    /// The number the record lives on.
    pub surviving: NhsNumber,
    /// The surviving number first, then every number merged into it.
    pub all: Vec<NhsNumber>,
}

/// A merge a number takes part in: (retired number, surviving number).
type Merge = (NhsNumber, NhsNumber);

impl ProjectionStore {
    /// The numbers of `nhs`'s record: reading a retired number gives the surviving record.
    /// Every request starts here, so each number's merges are read once (for a number
    /// never merged, which is most, that is one read that finds nothing).
    pub fn record_numbers(&self, nhs: &NhsNumber) -> Result<RecordNumbers, StoreError> {
        let mut read: Vec<(NhsNumber, Vec<Merge>)> = Vec::new();
        let mut merges_of = |number: NhsNumber| -> Result<Vec<Merge>, StoreError> {
            if let Some((_, merges)) = read.iter().find(|(n, _)| *n == number) {
                return Ok(merges.clone());
            }
            let merges = self.merges_of(&number)?;
            read.push((number, merges.clone()));
            Ok(merges)
        };
        let mut surviving = *nhs;
        for _ in 0..8 {
            let next = merges_of(surviving)?
                .into_iter()
                .find_map(|(retired, into)| (retired == surviving).then_some(into));
            match next {
                Some(into) if into != *nhs => surviving = into,
                _ => break,
            }
        }
        let mut all = vec![surviving];
        let mut i = 0;
        while i < all.len() && all.len() < 64 {
            for (retired, into) in merges_of(all[i])? {
                if into == all[i] && !all.contains(&retired) {
                    all.push(retired);
                }
            }
            i += 1;
        }
        Ok(RecordNumbers { surviving, all })
    }

    fn merges_of(&self, nhs: &NhsNumber) -> Result<Vec<Merge>, StoreError> {
        Ok(self
            .view_rows(nhs, View::Merges)?
            .into_iter()
            .filter_map(|row| match row.event.payload {
                Payload::NhsNumberMerge(m) => Some((m.retired_nhs_number, m.surviving_nhs_number)),
                _ => None,
            })
            .collect())
    }

    /// The standing rows of one group of one view of a record, by time.
    fn group_rows(
        &self,
        numbers: &[NhsNumber],
        view: View,
        group: &str,
    ) -> Result<Vec<ViewRow>, StoreError> {
        self.rows_of_numbers(numbers, |nhs| self.view_group_rows(nhs, view, group))
    }

    /// Every standing row of one view of a record, by group then time.
    fn rows(&self, numbers: &[NhsNumber], view: View) -> Result<Vec<ViewRow>, StoreError> {
        self.rows_of_numbers(numbers, |nhs| self.view_rows(nhs, view))
    }

    /// The newest row of each group of one view, read from each of a record's numbers,
    /// by group then time: the last row of a group is its newest across the numbers.
    fn newest_rows(&self, numbers: &[NhsNumber], view: View) -> Result<Vec<ViewRow>, StoreError> {
        self.rows_of_numbers(numbers, |nhs| self.newest_view_rows(nhs, view))
    }

    fn rows_of_numbers(
        &self,
        numbers: &[NhsNumber],
        read: impl Fn(&NhsNumber) -> Result<Vec<ViewRow>, StoreError>,
    ) -> Result<Vec<ViewRow>, StoreError> {
        let mut rows = Vec::new();
        for nhs in numbers {
            rows.extend(read(nhs)?);
        }
        rows.sort_by(|a, b| {
            (&a.group, a.event.occurred_at, a.event.event_id).cmp(&(
                &b.group,
                b.event.occurred_at,
                b.event.event_id,
            ))
        });
        Ok(rows)
    }

    /// The newest event of a view kept in one group (demographics, discharges).
    fn newest_row(&self, numbers: &[NhsNumber], view: View) -> Result<Option<ViewRow>, StoreError> {
        Ok(self.newest_rows(numbers, view)?.pop())
    }

    /// The emergency summary of a record at time `now`.
    pub fn emergency_summary(
        &self,
        numbers: &[NhsNumber],
        now: EpochMillis,
    ) -> Result<EmergencySummary, StoreError> {
        let medications = self.medication_view(numbers, now)?;
        let mut summary = EmergencySummary {
            demographics: self
                .newest_row(numbers, View::Demographics)?
                .map(|r| TimelineEntry::of(&r.event)),
            allergies: vec![],
            medications: medications
                .current
                .into_iter()
                .map(|m| m.prescription)
                .collect(),
            problems: vec![],
            alerts: vec![],
            latest_observations: latest_per_group(&self.newest_rows(numbers, View::Observations)?),
            conflicts: medications.conflicts,
            disputed: vec![],
        };
        for facts in latest_per_source(&self.rows(numbers, View::Allergies)?) {
            let refuted = |r: &&ViewRow| matches!(&r.event.payload, Payload::Allergy(a) if a.verification == Verification::Refuted);
            let (against, for_): (Vec<&ViewRow>, Vec<&ViewRow>) =
                facts.iter().copied().partition(refuted);
            summary
                .allergies
                .extend(for_.iter().map(|r| TimelineEntry::of(&r.event)));
            if !against.is_empty() && !for_.is_empty() {
                summary
                    .disputed
                    .extend(against.iter().map(|r| TimelineEntry::of(&r.event)));
                summary.conflicts.push(conflict(
                    "allergy",
                    &facts,
                    "recorded by one source and refuted by another",
                ));
            }
        }
        for facts in latest_per_source(&self.rows(numbers, View::Problems)?) {
            let active = |r: &&ViewRow| matches!(&r.event.payload, Payload::Condition(c) if c.clinical_status.is_active() && c.verification != Verification::Refuted);
            let (current, other): (Vec<&ViewRow>, Vec<&ViewRow>) =
                facts.iter().copied().partition(active);
            summary
                .problems
                .extend(current.iter().map(|r| TimelineEntry::of(&r.event)));
            if !current.is_empty() && !other.is_empty() {
                summary
                    .disputed
                    .extend(other.iter().map(|r| TimelineEntry::of(&r.event)));
                summary.conflicts.push(conflict(
                    "problem",
                    &facts,
                    "active in one source, resolved or refuted in another",
                ));
            }
        }
        for facts in latest_per_source(&self.rows(numbers, View::Alerts)?) {
            summary.alerts.extend(
                facts
                    .iter()
                    .filter(
                        |r| matches!(&r.event.payload, Payload::SafeguardingFlag(f) if f.active),
                    )
                    .map(|r| TimelineEntry::of(&r.event)),
            );
        }
        Ok(summary)
    }

    /// Medication reconciliation of a record at time `now`.
    pub fn medication_view(
        &self,
        numbers: &[NhsNumber],
        now: EpochMillis,
    ) -> Result<MedicationView, StoreError> {
        let rows = self.rows(numbers, View::Medications)?;
        let mut view = MedicationView {
            current: vec![],
            recent_changes: vec![],
            conflicts: vec![],
        };
        for group in groups(&rows) {
            let stopped_until = group
                .iter()
                .filter_map(|r| match &r.event.payload {
                    Payload::MedicationStopped(s) if s.prescription_id.is_none() => {
                        Some(r.event.occurred_at)
                    }
                    _ => None,
                })
                .max();
            let stopped_ids: Vec<EventId> = group
                .iter()
                .filter_map(|r| match &r.event.payload {
                    Payload::MedicationStopped(s) => s.prescription_id,
                    _ => None,
                })
                .collect();
            let last_dispensed = group
                .iter()
                .rev()
                .find(|r| matches!(r.event.payload, Payload::MedicationDispensed(_)))
                .map(|r| TimelineEntry::of(&r.event));
            let current: Vec<&ViewRow> = group
                .iter()
                .copied()
                .filter(|r| match &r.event.payload {
                    Payload::MedicationPrescribed(p) => {
                        !stopped_ids.contains(&r.event.event_id)
                            && stopped_until.is_none_or(|t| r.event.occurred_at > t)
                            && (p.course == spr_schemas::Course::Repeat
                                || r.event.occurred_at >= now - RECENT_MILLIS)
                    }
                    _ => false,
                })
                .collect();
            // The latest prescription per source stands for that source.
            let mut by_source: BTreeMap<&str, &ViewRow> = BTreeMap::new();
            for row in &current {
                by_source.insert(row.event.source.ods_code.as_str(), row);
            }
            let doses: Vec<&str> = by_source
                .values()
                .filter_map(|r| match &r.event.payload {
                    Payload::MedicationPrescribed(p) => Some(p.dose.as_str()),
                    _ => None,
                })
                .collect();
            if doses.windows(2).any(|w| w[0] != w[1]) {
                let facts: Vec<&ViewRow> = by_source.values().copied().collect();
                view.conflicts.push(conflict(
                    "medication",
                    &facts,
                    "prescribed by two sources with different doses",
                ));
            }
            view.current
                .extend(by_source.values().map(|r| CurrentMedication {
                    prescription: TimelineEntry::of(&r.event),
                    last_dispensed: last_dispensed.clone(),
                }));
            view.recent_changes.extend(
                group
                    .iter()
                    .filter(|r| r.event.occurred_at >= now - RECENT_MILLIS)
                    .map(|r| TimelineEntry::of(&r.event)),
            );
        }
        view.recent_changes
            .sort_by_key(|e| std::cmp::Reverse((e.occurred_at, e.event_id)));
        Ok(view)
    }

    /// The maternity view: every pregnancy episode, the open one first.
    pub fn maternity_view(
        &self,
        numbers: &[NhsNumber],
    ) -> Result<Vec<PregnancyEpisode>, StoreError> {
        let rows = self.rows(numbers, View::Maternity)?;
        let mut episodes: Vec<PregnancyEpisode> = groups(&rows)
            .into_iter()
            .map(|group| {
                let mut episode = PregnancyEpisode {
                    episode_id: group[0].group.clone(),
                    open: false,
                    episode: None,
                    visits: vec![],
                    birth: None,
                    risks: vec![],
                };
                let mut status = None;
                for row in group {
                    let entry = TimelineEntry::of(&row.event);
                    let risks = match &row.event.payload {
                        Payload::PregnancyEpisode(p) => {
                            status = Some(p.status);
                            episode.episode = Some(entry);
                            p.risks.clone()
                        }
                        Payload::AntenatalVisit(v) => {
                            episode.visits.push(entry);
                            v.risks.clone()
                        }
                        Payload::Birth(_) => {
                            episode.birth = Some(entry);
                            vec![]
                        }
                        _ => vec![],
                    };
                    for risk in risks {
                        if !episode.risks.contains(&risk) {
                            episode.risks.push(risk);
                        }
                    }
                }
                episode.open =
                    status == Some(spr_schemas::PregnancyStatus::Active) && episode.birth.is_none();
                episode
            })
            .collect();
        episodes.sort_by_key(|e| {
            (
                !e.open,
                std::cmp::Reverse(e.episode.as_ref().map(|x| x.occurred_at)),
            )
        });
        Ok(episodes)
    }

    /// The latest discharge summary and the events of the admission it closes.
    pub fn discharge_view(&self, numbers: &[NhsNumber]) -> Result<DischargeView, StoreError> {
        let summary = self.newest_row(numbers, View::Discharges)?;
        let admission_events = match summary.as_ref().and_then(|s| s.event.encounter_id.clone()) {
            Some(encounter) => self
                .group_rows(numbers, View::Encounters, &encounter)?
                .iter()
                .map(|r| TimelineEntry::of(&r.event))
                .collect(),
            None => vec![],
        };
        Ok(DischargeView {
            summary: summary.map(|r| TimelineEntry::of(&r.event)),
            admission_events,
        })
    }

    /// The ODS code of the registered GP practice in the latest demographics that name
    /// one: many feeds send demographics without the practice (and the ingestion gateway
    /// takes it only from systems permitted to set it), which
    /// says nothing about registration.
    pub fn registered_practice(&self, numbers: &[NhsNumber]) -> Result<Option<String>, StoreError> {
        Ok(self
            .rows(numbers, View::Demographics)?
            .into_iter()
            .rev()
            .find_map(|r| match r.event.payload {
                Payload::Demographics(d) => d.registered_gp_ods_code,
                _ => None,
            }))
    }

    /// What links organisation `ods_code` to the record.
    pub fn relationship(
        &self,
        numbers: &[NhsNumber],
        ods_code: &str,
    ) -> Result<Relationship, StoreError> {
        let mut relationship = Relationship::default();
        // A referral to a service named without an organisation files its contact under
        // an empty code: that links no organisation, least of all a token with none.
        if ods_code.trim().is_empty() {
            return Ok(relationship);
        }
        for row in self
            .group_rows(numbers, View::Relationships, &relationship_group(ods_code))?
            .iter()
        {
            let at = row.event.occurred_at;
            relationship.last_contact_at = relationship.last_contact_at.max(Some(at));
            if let Payload::CareTeam(team) = &row.event.payload {
                match team.ends_at {
                    Some(end) => {
                        relationship.care_team_until = relationship.care_team_until.max(Some(end))
                    }
                    None => relationship.open_ended_care_team = true,
                }
            }
        }
        Ok(relationship)
    }

    /// The patient's current sharing choice per category (the latest choice wins;
    /// categories never chosen are absent, meaning share).
    pub fn sharing_choices(
        &self,
        numbers: &[NhsNumber],
    ) -> Result<BTreeMap<SensitiveCategory, (SharingChoice, TimelineEntry)>, StoreError> {
        let mut rows = Vec::new();
        for nhs in numbers {
            rows.extend(self.choice_rows(nhs)?);
        }
        rows.sort_by_key(|r| (r.event.occurred_at, r.event.recorded_at, r.event.event_id));
        let mut choices = BTreeMap::new();
        for row in rows {
            if let Payload::ConsentChoice(c) = &row.event.payload {
                choices.insert(c.category, (c.choice, TimelineEntry::of(&row.event)));
            }
        }
        Ok(choices)
    }
}

/// Rows split into runs of the same group (rows are sorted by group).
fn groups(rows: &[ViewRow]) -> Vec<Vec<&ViewRow>> {
    let mut out: Vec<Vec<&ViewRow>> = Vec::new();
    for row in rows {
        match out.last_mut() {
            Some(group) if group[0].group == row.group => group.push(row),
            _ => out.push(vec![row]),
        }
    }
    out
}

/// The latest row of each group.
fn latest_per_group(rows: &[ViewRow]) -> Vec<TimelineEntry> {
    groups(rows)
        .into_iter()
        .filter_map(|g| g.last().map(|r| TimelineEntry::of(&r.event)))
        .collect()
}

/// For each group, the latest row from each source organisation.
fn latest_per_source(rows: &[ViewRow]) -> Vec<Vec<&ViewRow>> {
    groups(rows)
        .into_iter()
        .map(|group| {
            let mut by_source: BTreeMap<&str, &ViewRow> = BTreeMap::new();
            for row in group {
                by_source.insert(row.event.source.ods_code.as_str(), row);
            }
            by_source.into_values().collect()
        })
        .collect()
}

fn conflict(kind: &'static str, facts: &[&ViewRow], what: &str) -> Conflict {
    let sources: Vec<&str> = facts
        .iter()
        .map(|r| r.event.source.ods_code.as_str())
        .collect();
    Conflict {
        kind,
        code: facts[0].event.code.clone(),
        description: format!(
            "{} {what} ({})",
            facts[0].event.code.display,
            sources.join(", ")
        ),
        event_ids: facts.iter().map(|r| r.event.event_id).collect(),
    }
}
