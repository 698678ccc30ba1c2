//! Completeness: every access event on `spr.access-events` is in the ledger, nothing
//! in the ledger is missing from the topic, and every break-glass grant on
//! `spr.break-glass` (which every API node honours) is in the ledger exactly as recorded.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use spr_producers::consume::{consumer_config, partitions_from_start, AssignError, ClosesWithin};
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
    /// Break-glass grants on `spr.break-glass`.
    pub grants: usize,
    /// Grants the ledger does not hold as they are (no entry with their id, or one that
    /// differs): forged or altered, yet honoured by every API node that reads them.
    pub grants_not_in_ledger: Vec<EventId>,
}

impl CompletenessReport {
    /// Whether the topics and the ledger agree.
    pub fn is_complete(&self) -> bool {
        self.missing_from_ledger.is_empty()
            && self.missing_from_topic.is_empty()
            && self.grants_not_in_ledger.is_empty()
    }
}

/// Compares the ids on the access-events topic and the grants on `spr.break-glass`
/// with the ledger's entries.
pub fn compare(
    topic: &TopicContents,
    grants: &[AccessEvent],
    ledger: &[AccessEvent],
) -> CompletenessReport {
    let by_id: HashMap<EventId, &AccessEvent> = ledger.iter().map(|e| (e.event_id, e)).collect();
    let in_ledger: BTreeSet<EventId> = by_id.keys().copied().collect();
    CompletenessReport {
        on_topic: topic.event_ids.len(),
        in_ledger: ledger.len(),
        missing_from_ledger: topic.event_ids.difference(&in_ledger).copied().collect(),
        missing_from_topic: in_ledger.difference(&topic.event_ids).copied().collect(),
        not_access_events: topic.not_access_events,
        grants: grants.len(),
        grants_not_in_ledger: grants
            .iter()
            .filter(|grant| by_id.get(&grant.event_id) != Some(grant))
            .map(|grant| grant.event_id)
            .collect(),
    }
}

/// Reads every partition of the access-events topic from the start, until no record has
/// arrived for `idle` (tansu's high watermarks cannot tell where a partition ends).
pub async fn read_access_events_topic(
    bootstrap: &str,
    idle: Duration,
) -> Result<TopicContents, AssignError> {
    let mut event_ids = BTreeSet::new();
    let not_access_events = read_topic(bootstrap, topics::ACCESS_EVENTS.name, idle, |event| {
        event_ids.insert(event.event_id);
    })
    .await?;
    Ok(TopicContents {
        event_ids,
        not_access_events,
    })
}

/// The break-glass grants on `spr.break-glass`, read like [`read_access_events_topic`]
/// (records that are not access events are passed over, as the API nodes pass them).
pub async fn read_break_glass_topic(
    bootstrap: &str,
    idle: Duration,
) -> Result<Vec<AccessEvent>, AssignError> {
    let mut grants = Vec::new();
    read_topic(bootstrap, topics::BREAK_GLASS.name, idle, |grant| {
        grants.push(grant)
    })
    .await?;
    Ok(grants)
}

/// Hands each access event on `topic` to `each`, until nothing has arrived for `idle`,
/// and counts the records that are not access events.
async fn read_topic(
    bootstrap: &str,
    topic: &str,
    idle: Duration,
    mut each: impl FnMut(AccessEvent),
) -> Result<u64, AssignError> {
    let consumer: ClosesWithin<StreamConsumer> =
        ClosesWithin::new(consumer_config(bootstrap, "spr-audit-completeness")?.create()?);
    let list = partitions_from_start(&consumer, topic, None)?;
    consumer.assign(&list)?;
    let mut not_access_events = 0;
    while let Ok(received) = tokio::time::timeout(idle, consumer.recv()).await {
        let message = received?;
        match message.payload().map(AccessEvent::from_avro) {
            Some(Ok(event)) => each(event),
            _ => not_access_events += 1,
        }
    }
    Ok(not_access_events)
}
