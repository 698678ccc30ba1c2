//! Applying a policy decision to a view: every entry the decision does not allow is
//! removed, and so is every conflict that names a removed entry (its existence would
//! say what was withheld).

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
