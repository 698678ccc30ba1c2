//! The log client of SPR Timeline: publishing events, consuming them in batches,
//! and dead-lettering what cannot be used.
//!
//! [`EventPublisher`] wraps an idempotent rdkafka producer (acks=all, keyed by NHS
//! number) and surfaces every delivery error; [`admin::ensure_topics`] creates the
//! topics of [`spr_schemas::topics`]; [`synthetic`] generates a deterministic
//! synthetic population for local runs, tests and benchmarks.

pub mod admin;
pub mod consume;
mod publisher;
pub mod synthetic;

pub use publisher::{Delivered, EventPublisher, PublishError, PublishSummary};

/// rdkafka client settings shared by every SPR component: bootstrap servers and
/// conservative timeouts suited to a local single broker and to Apache Kafka alike.
pub fn client_config(bootstrap: &str) -> rdkafka::ClientConfig {
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.keepalive.enable", "true")
        .set("log_level", "4");
    config
}
