//! Topic creation through the Kafka admin API.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use spr_schemas::topics::TopicSpec;

/// Why topics could not be created.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The admin client could not be built or the request failed.
    #[error(
        "could not reach the broker to create topics: {0}; is it running at the bootstrap address?"
    )]
    Kafka(#[from] KafkaError),
    /// The broker refused to create a topic.
    #[error("the broker refused to create topic {topic}: {code}")]
    Refused {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
}

/// Creates each topic that does not exist yet (existing ones are left as they are).
pub async fn ensure_topics(
    bootstrap: &str,
    topics: &[TopicSpec],
    replication: i32,
) -> Result<(), AdminError> {
    let admin: AdminClient<DefaultClientContext> = crate::client_config(bootstrap)?.create()?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t.name, t.partitions, TopicReplication::Fixed(replication)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(AdminError::Refused { topic, code }),
        }
    }
    Ok(())
}
