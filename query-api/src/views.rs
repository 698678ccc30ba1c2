//! Applying a policy decision to a view: every entry the decision does not allow is
//! removed, and so is every conflict that names a removed entry (its existence would
//! say what was withheld), and every disputed entry of such a conflict (it is disputed
//! only because the withheld entry exists).

use std::collections::HashSet;

use spr_projector::summary::{
    Conflict, DischargeView, EmergencySummary, MedicationView, PregnancyEpisode,
};
use spr_projector::{TimelineEntry, TimelinePage};
use spr_schemas::EventId;

/// A view of the record whose entries can be filtered and listed.
pub(crate) trait RecordView {
    /// Keeps only the entries for which `keep` holds (and the conflicts among them).
    fn retain_visible(&mut self, keep: &dyn Fn(&TimelineEntry) -> bool);
    /// Every entry the view returns.
    fn entries(&self) -> Vec<&TimelineEntry>;
}

fn retain_conflicts(conflicts: &mut Vec<Conflict>, shown: &[&TimelineEntry]) {
    let ids: HashSet<EventId> = shown.iter().map(|e| e.event_id).collect();
    conflicts.retain(|c| c.event_ids.iter().all(|id| ids.contains(id)));
}

impl RecordView for TimelinePage {
    fn retain_visible(&mut self, keep: &dyn Fn(&TimelineEntry) -> bool) {
        self.entries.retain(|e| keep(e));
    }
    fn entries(&self) -> Vec<&TimelineEntry> {
        self.entries.iter().collect()
    }
}

impl RecordView for EmergencySummary {
    fn retain_visible(&mut self, keep: &dyn Fn(&TimelineEntry) -> bool) {
        self.demographics = self.demographics.take().filter(|e| keep(e));
        for list in [
            &mut self.allergies,
            &mut self.medications,
            &mut self.problems,
            &mut self.alerts,
            &mut self.latest_observations,
            &mut self.disputed,
        ] {
            list.retain(|e| keep(e));
        }
        // A disputed entry (a refuted allergy, a resolved problem) is listed only because
        // another source holds the opposite: if that entry was withheld, listing the
        // disputed one would say the withheld one exists.
        let shown: HashSet<EventId> = self.entries().iter().map(|e| e.event_id).collect();
        let of_withheld: HashSet<EventId> = self
            .conflicts
            .iter()
            .filter(|c| !c.event_ids.iter().all(|id| shown.contains(id)))
            .flat_map(|c| c.event_ids.iter().copied())
            .collect();
        self.disputed.retain(|e| !of_withheld.contains(&e.event_id));
        let shown: Vec<TimelineEntry> = self.entries().into_iter().cloned().collect();
        retain_conflicts(&mut self.conflicts, &shown.iter().collect::<Vec<_>>());
    }
    fn entries(&self) -> Vec<&TimelineEntry> {
        [
            &self.allergies,
            &self.medications,
            &self.problems,
            &self.alerts,
            &self.latest_observations,
            &self.disputed,
        ]
        .into_iter()
        .flatten()
        .chain(&self.demographics)
        .collect()
    }
}

impl RecordView for MedicationView {
    fn retain_visible(&mut self, keep: &dyn Fn(&TimelineEntry) -> bool) {
        self.current.retain(|m| keep(&m.prescription));
        for m in &mut self.current {
            m.last_dispensed = m.last_dispensed.take().filter(|e| keep(e));
        }
        self.recent_changes.retain(|e| keep(e));
        let shown: Vec<TimelineEntry> = self.entries().into_iter().cloned().collect();
        retain_conflicts(&mut self.conflicts, &shown.iter().collect::<Vec<_>>());
    }
    fn entries(&self) -> Vec<&TimelineEntry> {
        self.current
            .iter()
            .flat_map(|m| std::iter::once(&m.prescription).chain(&m.last_dispensed))
            .chain(&self.recent_changes)
            .collect()
    }
}

impl RecordView for Vec<PregnancyEpisode> {
    fn retain_visible(&mut self, keep: &dyn Fn(&TimelineEntry) -> bool) {
        for episode in self.iter_mut() {
            let before = episode.visits.len()
                + usize::from(episode.episode.is_some())
                + usize::from(episode.birth.is_some());
            episode.episode = episode.episode.take().filter(|e| keep(e));
            episode.birth = episode.birth.take().filter(|e| keep(e));
            episode.visits.retain(|e| keep(e));
            let after = episode.visits.len()
                + usize::from(episode.episode.is_some())
                + usize::from(episode.birth.is_some());
            if after < before {
                // Risks are gathered from every record of the episode; some are hidden.
                episode.risks.clear();
            }
        }
        self.retain(|e| e.episode.is_some() || e.birth.is_some() || !e.visits.is_empty());
    }
    fn entries(&self) -> Vec<&TimelineEntry> {
        self.iter()
            .flat_map(|e| e.episode.iter().chain(&e.visits).chain(&e.birth))
            .collect()
    }
}

impl RecordView for DischargeView {
    fn retain_visible(&mut self, keep: &dyn Fn(&TimelineEntry) -> bool) {
        self.summary = self.summary.take().filter(|e| keep(e));
        self.admission_events.retain(|e| keep(e));
    }
    fn entries(&self) -> Vec<&TimelineEntry> {
        self.summary.iter().chain(&self.admission_events).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spr_schemas::{examples, Code};

    #[test]
    fn a_disputed_entry_whose_counterpart_is_withheld_is_removed_with_the_conflict() {
        let nhs = "9990000018".parse().unwrap();
        let entry = |source: &str| {
            let mut event = examples::allergy(nhs);
            event.event_id = EventId::random();
            event.source.ods_code = source.into();
            TimelineEntry::of(&event)
        };
        let (withheld, probe, other) = (entry("RX1"), entry("EVIL1"), entry("RY6"));
        let conflict = |ids: [&TimelineEntry; 2]| Conflict {
            kind: "problem",
            code: Code {
                system: "http://snomed.info/sct".into(),
                code: "76272004".into(),
                display: "Syphilis".into(),
            },
            description: "disputed".into(),
            event_ids: ids.iter().map(|e| e.event_id).collect(),
        };
        let mut summary = EmergencySummary {
            demographics: None,
            allergies: vec![],
            medications: vec![],
            problems: vec![withheld.clone(), other.clone()],
            alerts: vec![],
            latest_observations: vec![],
            conflicts: vec![conflict([&withheld, &probe]), conflict([&other, &probe])],
            disputed: vec![probe.clone()],
        };
        let mut shown_all = summary.clone();
        shown_all.retain_visible(&|_| true);
        assert_eq!(shown_all, summary, "nothing withheld, nothing removed");

        summary.conflicts.pop();
        summary.retain_visible(&|e| e.event_id != withheld.event_id);
        assert!(
            summary.disputed.is_empty() && summary.conflicts.is_empty(),
            "{summary:?}"
        );
        assert_eq!(summary.problems, [other]);
    }
}
