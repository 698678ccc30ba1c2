//! Completeness: every access event on `spr.access-events` is in the ledger, and
//! nothing in the ledger is missing from the topic.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use spr_producers::consume::{consumer_config, partitions_from_start, AssignError};
use spr_schemas::{topics, AccessEvent, EventId};

/// What the topic holds, as far as completeness is concerned.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TopicContents {
    /// Distinct access event ids on the topic.
    pub event_ids: BTreeSet<EventId>,
    /// Records that are not access events (the ledger dead-letters them).
    pub not_access_events: u64,
}

/// The comparison of the topic with the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletenessReport {
    /// Distinct access events on the topic.
    pub on_topic: usize,
    /// Entries in the ledger.
    pub in_ledger: usize,
    /// On the topic but not in the ledger.
    pub missing_from_ledger: Vec<EventId>,
    /// In the ledger but never on the topic.
    pub missing_from_topic: Vec<EventId>,
    /// Topic records that are not access events.
    pub not_access_events: u64,
}

impl CompletenessReport {
    /// Whether the two agree.
    pub fn is_complete(&self) -> bool {
        self.missing_from_ledger.is_empty() && self.missing_from_topic.is_empty()
    }
}

/// Compares the ids on the topic with the ledger's entries.
pub fn compare(topic: &TopicContents, ledger: &[EventId]) -> CompletenessReport {
    let in_ledger: BTreeSet<EventId> = ledger.iter().copied().collect();
    CompletenessReport {
        on_topic: topic.event_ids.len(),
        in_ledger: ledger.len(),
        missing_from_ledger: topic.event_ids.difference(&in_ledger).copied().collect(),
        missing_from_topic: in_ledger.difference(&topic.event_ids).copied().collect(),
        not_access_events: topic.not_access_events,
    }
}

/// Reads every partition of the access-events topic from the start, until no record has
/// arrived for `idle` (tansu's high watermarks cannot tell where a partition ends).
pub async fn read_access_events_topic(
    bootstrap: &str,
    idle: Duration,
) -> Result<TopicContents, AssignError> {
    let consumer: StreamConsumer = consumer_config(bootstrap, "spr-audit-completeness").create()?;
    let list = partitions_from_start(&consumer, topics::ACCESS_EVENTS.name, None)?;
    consumer.assign(&list)?;
    let mut contents = TopicContents::default();
    while let Ok(received) = tokio::time::timeout(idle, consumer.recv()).await {
        let message = received?;
        match message.payload().map(AccessEvent::from_avro) {
            Some(Ok(event)) => {
                contents.event_ids.insert(event.event_id);
            }
            _ => contents.not_access_events += 1,
        }
    }
    Ok(contents)
}
