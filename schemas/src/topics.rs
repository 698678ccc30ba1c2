//! The Kafka topics of SPR Timeline: the contract between producers and consumers.

/// A topic, its key and its partition count for a local single-broker deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: &'static str,
    /// Partitions created by the local scripts and tests (production sizes are in deploy/).
    pub partitions: i32,
}

/// Clinical events, consent changes, demographics, corrections and merges; keyed by NHS number.
pub const PATIENT_EVENTS: TopicSpec = TopicSpec {
    name: "spr.patient-events",
    partitions: 4,
};
/// Every access decision from the query API; keyed by request id.
pub const ACCESS_EVENTS: TopicSpec = TopicSpec {
    name: "spr.access-events",
    partitions: 1,
};
/// Undecodable or invalid records with their origin and the reason in headers; keyed by the original key.
pub const DEAD_LETTER: TopicSpec = TopicSpec {
    name: "spr.dead-letter",
    partitions: 1,
};
/// Signed ledger checkpoints; keyed by ledger id.
pub const LEDGER_CHECKPOINTS: TopicSpec = TopicSpec {
    name: "spr.ledger-checkpoints",
    partitions: 1,
};

/// Break-glass elevations the query API granted, each as the access event that
/// recorded it; keyed by request id. Every API node follows it.
pub const BREAK_GLASS: TopicSpec = TopicSpec {
    name: "spr.break-glass",
    partitions: 1,
};

/// Every topic, in creation order.
pub const ALL: [TopicSpec; 5] = [
    PATIENT_EVENTS,
    ACCESS_EVENTS,
    DEAD_LETTER,
    LEDGER_CHECKPOINTS,
    BREAK_GLASS,
];

/// Header names on dead-letter records.
pub mod dead_letter_headers {
    /// Topic the record was read from.
    pub const SOURCE_TOPIC: &str = "spr.dlq.source-topic";
    /// Partition the record was read from.
    pub const SOURCE_PARTITION: &str = "spr.dlq.source-partition";
    /// Offset the record was read from.
    pub const SOURCE_OFFSET: &str = "spr.dlq.source-offset";
    /// Why it could not be used.
    pub const REASON: &str = "spr.dlq.reason";
    /// The original value's size in bytes, when the dead letter keeps only its start
    /// (the whole record stays on its source topic, at the source offset).
    pub const ORIGINAL_SIZE: &str = "spr.dlq.original-size";
}
