//! The report of an import run: what was published, skipped as a duplicate, left
//! unmapped (per type, with reasons) and rejected.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use spr_schemas::{ClinicalEvent, EventId};

use super::import::{DocumentImport, RejectedDocument};

/// Totals of an import run, built document by document.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// Documents read.
    pub documents: usize,
    /// Resources in the documents that were not rejected.
    pub resources: usize,
    /// Resources mapped, per FHIR type.
    pub mapped: BTreeMap<String, usize>,
    /// Events to publish (after removing duplicates).
    pub events: usize,
    /// Events dropped because an earlier document of the run gave the same event id.
    pub duplicate_ids: usize,
    /// Events the broker acknowledged (0 on a dry run).
    pub published: u64,
    /// Resources not mapped: per FHIR type, per reason, how many.
    pub unmapped: BTreeMap<String, BTreeMap<String, usize>>,
    /// Documents rejected as a whole, with the reason.
    pub rejected: Vec<String>,
    #[serde(skip)]
    seen: HashSet<EventId>,
}

impl ImportReport {
    /// Counts one document's outcome and returns its events not seen earlier in the run.
    pub fn add(&mut self, outcome: Result<DocumentImport, RejectedDocument>) -> Vec<ClinicalEvent> {
        self.documents += 1;
        let import = match outcome {
            Ok(import) => import,
            Err(rejected) => {
                self.rejected.push(rejected.to_string());
                return vec![];
            }
        };
        self.resources += import.resource_count();
        for (resource_type, n) in import.mapped {
            *self.mapped.entry(resource_type).or_default() += n;
        }
        for unmapped in import.unmapped {
            *self
                .unmapped
                .entry(unmapped.resource_type)
                .or_default()
                .entry(unmapped.reason)
                .or_default() += 1;
        }
        let given = import.events.len();
        let fresh: Vec<ClinicalEvent> = import
            .events
            .into_iter()
            .filter(|e| self.seen.insert(e.event_id))
            .collect();
        self.duplicate_ids += given - fresh.len();
        self.events += fresh.len();
        fresh
    }

    /// Resources mapped, over all types.
    pub fn mapped_total(&self) -> usize {
        self.mapped.values().sum()
    }

    /// Resources not mapped, over all types.
    pub fn unmapped_total(&self) -> usize {
        self.unmapped.values().flat_map(BTreeMap::values).sum()
    }

    /// The report as text for a terminal.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} documents, {} resources: {} mapped, {} unmapped; {} events, {} published, {} duplicate ids skipped\n",
            self.documents,
            self.resources,
            self.mapped_total(),
            self.unmapped_total(),
            self.events,
            self.published,
            self.duplicate_ids
        );
        for (resource_type, n) in &self.mapped {
            out.push_str(&format!("  mapped    {resource_type:<22} {n}\n"));
        }
        for (resource_type, reasons) in &self.unmapped {
            for (reason, n) in reasons {
                out.push_str(&format!("  unmapped  {resource_type:<22} {n}  {reason}\n"));
            }
        }
        for rejected in &self.rejected {
            out.push_str(&format!("  REJECTED  {rejected}\n"));
        }
        out
    }
}
