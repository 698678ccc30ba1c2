//! Publishing one imported document's events, shared by `spr-produce fhir` and the
//! HTTP ingestion gateway: every delivery report is awaited, and the outcome says which
//! events the broker acknowledged, so a failure is never partial without saying so.

use spr_schemas::{ClinicalEvent, EventId};

use super::ImportReport;
use crate::{EventPublisher, PublishError};

/// What the broker did with one document's events.
#[derive(Debug, Default)]
pub struct DocumentDelivery {
    /// Events the broker acknowledged (durably: acks=all), in document order.
    pub acknowledged: Vec<EventId>,
    /// Events it did not acknowledge, with the client's error.
    pub failed: Vec<(EventId, PublishError)>,
}

impl DocumentDelivery {
    /// Whether every event was acknowledged.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }

    /// A sentence for an operator or a publishing system: how many of how many events
    /// were acknowledged, the first error, and that sending the document again is safe.
    pub fn failure_summary(&self) -> String {
        let total = self.acknowledged.len() + self.failed.len();
        let first_error = self
            .failed
            .first()
            .map(|(_, e)| e.to_string())
            .unwrap_or_default();
        format!(
            "the broker acknowledged {} of {total} events ({first_error}); sending the same document again is safe: event ids are stable (UUID v5 of the source system and resource identity), so events already stored are skipped as duplicates",
            self.acknowledged.len()
        )
    }
}

/// Publishes `events` (one document's, from [`ImportReport::add`]), awaits every
/// acknowledgement and adds the acknowledged ones to `report.published`.
pub async fn publish_document_events(
    publisher: &EventPublisher,
    events: &[ClinicalEvent],
    report: &mut ImportReport,
) -> DocumentDelivery {
    let outcomes = publisher.publish_clinical_events_settled(events).await;
    let mut delivery = DocumentDelivery::default();
    for (event, outcome) in events.iter().zip(outcomes) {
        match outcome {
            Ok(_) => delivery.acknowledged.push(event.event_id),
            Err(e) => delivery.failed.push((event.event_id, e)),
        }
    }
    report.published += delivery.acknowledged.len() as u64;
    delivery
}
