//! The idempotent event publisher.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use spr_schemas::{topics, AccessEvent, ClinicalEvent, EncodeError};

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The event could not be encoded (its content does not fit the schema).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The event breaks a content rule of the decoder ([`ClinicalEvent::check`]), so the
    /// projector would dead-letter it: it is not published.
    #[error("event {event_id} not published: {reason}")]
    Invalid {
        /// The event.
        event_id: spr_schemas::EventId,
        /// The rule it breaks.
        reason: String,
    },
    /// The broker did not acknowledge the record.
    #[error("the broker did not acknowledge the record on {topic}: {source}")]
    Delivery {
        /// Destination topic.
        topic: String,
        /// The client's error.
        source: KafkaError,
    },
    /// The producer was shut down before the delivery report arrived.
    #[error("the producer shut down before the broker acknowledged the record on {topic}")]
    Cancelled {
        /// Destination topic.
        topic: String,
    },
    /// The producer could not be created.
    #[error("could not create the Kafka producer: {0}")]
    Create(KafkaError),
    /// Records would wait to fill a batch as long as they may wait for the broker.
    #[error(
        "a linger of {linger_ms} ms is not shorter than the delivery timeout of {timeout_ms} ms, \
         so every record would time out; use a linger well below the timeout"
    )]
    LingerNotBelowTimeout {
        /// The linger asked for.
        linger_ms: u32,
        /// The delivery timeout.
        timeout_ms: u128,
    },
}

/// What a batch publish delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishSummary {
    /// Records acknowledged.
    pub delivered: u64,
    /// For each partition written to, the offset after the last acknowledged record:
    /// a consumer that has reached these offsets has seen every record of the batch.
    pub end_offsets: std::collections::BTreeMap<i32, i64>,
}

impl PublishSummary {
    fn record(&mut self, delivered: Delivered) {
        self.delivered += 1;
        let end = self.end_offsets.entry(delivered.partition).or_insert(0);
        *end = (*end).max(delivered.offset + 1);
    }
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// Publishes events with an idempotent producer (acks=all, no duplicates or reordering
/// on retry) and awaits every delivery report, so `Ok` means the broker has the record.
#[derive(Clone)]
pub struct EventPublisher {
    producer: FutureProducer,
    delivery_timeout: Duration,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher")
            .field("delivery_timeout", &self.delivery_timeout)
            .finish()
    }
}

/// How many records a batch publish keeps in flight before awaiting the oldest.
const MAX_IN_FLIGHT: usize = 10_000;

impl EventPublisher {
    /// Connects to `bootstrap`; each record must be acknowledged within `delivery_timeout`.
    /// Records wait up to 5 ms to fill a batch: for publishing many at a time.
    pub fn new(bootstrap: &str, delivery_timeout: Duration) -> Result<Self, PublishError> {
        Self::with_linger(bootstrap, delivery_timeout, 5)
    }

    /// Like [`Self::new`], for a request path that awaits each record before answering
    /// (the query API's access events). Records wait `linger_ms` to fill a batch: with 0
    /// each is sent at once (the lowest latency while the broker keeps up; what queues
    /// while a batch is in flight still goes in the next one); with 1, a busy service
    /// sends far fewer, larger produce requests, which lets the broker keep up with more
    /// requests a second for about 1 ms more per request (docs/performance.md).
    pub fn for_requests(
        bootstrap: &str,
        delivery_timeout: Duration,
        linger_ms: u32,
    ) -> Result<Self, PublishError> {
        Self::with_linger(bootstrap, delivery_timeout, linger_ms)
    }

    fn with_linger(
        bootstrap: &str,
        delivery_timeout: Duration,
        linger_ms: u32,
    ) -> Result<Self, PublishError> {
        if u128::from(linger_ms) >= delivery_timeout.as_millis() {
            return Err(PublishError::LingerNotBelowTimeout {
                linger_ms,
                timeout_ms: delivery_timeout.as_millis(),
            });
        }
        let producer: FutureProducer = crate::client_config(bootstrap)
            .map_err(PublishError::Create)?
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", linger_ms.to_string())
            // Batching is linger's job; Nagle would hold a small produce request back
            // until the previous one is acknowledged (tens of ms with delayed ACKs).
            .set("socket.nagle.disable", "true")
            .set(
                "message.timeout.ms",
                delivery_timeout.as_millis().to_string(),
            )
            .create()
            .map_err(PublishError::Create)?;
        Ok(Self {
            producer,
            delivery_timeout,
        })
    }

    /// Publishes one clinical event keyed by its NHS number and waits for the acknowledgement.
    pub async fn publish_clinical_event(
        &self,
        event: &ClinicalEvent,
    ) -> Result<Delivered, PublishError> {
        let payload = checked_payload(event)?;
        let topic = topics::PATIENT_EVENTS.name;
        self.send(topic, event.nhs_number.as_str().as_bytes(), &payload, None)
            .await?
            .await_delivery(topic)
            .await
    }

    /// Publishes clinical events in order (per-patient order is kept on each partition),
    /// keeping many in flight, and returns once every one is acknowledged.
    /// `events` may be borrowed or owned (a generated stream that is never all in memory).
    /// `on_delivered` is called once per acknowledged event, for progress reporting.
    pub async fn publish_clinical_events<E: Borrow<ClinicalEvent>>(
        &self,
        events: impl IntoIterator<Item = E>,
        mut on_delivered: impl FnMut(),
    ) -> Result<PublishSummary, PublishError> {
        let topic = topics::PATIENT_EVENTS.name;
        let mut in_flight: VecDeque<PendingDelivery> = VecDeque::new();
        let mut summary = PublishSummary::default();
        for event in events {
            let event = event.borrow();
            let payload = checked_payload(event)?;
            in_flight.push_back(
                self.send(topic, event.nhs_number.as_str().as_bytes(), &payload, None)
                    .await?,
            );
            if in_flight.len() >= MAX_IN_FLIGHT {
                summary.record(
                    in_flight
                        .pop_front()
                        .expect("non-empty")
                        .await_delivery(topic)
                        .await?,
                );
                on_delivered();
            }
        }
        for pending in in_flight {
            summary.record(pending.await_delivery(topic).await?);
            on_delivered();
        }
        Ok(summary)
    }

    /// Publishes clinical events like [`Self::publish_clinical_events`] but does not stop
    /// at the first failure: every delivery report is awaited and one outcome per event
    /// is returned, in order, so a caller can say exactly which events the broker has.
    pub async fn publish_clinical_events_settled(
        &self,
        events: &[ClinicalEvent],
    ) -> Vec<Result<Delivered, PublishError>> {
        let topic = topics::PATIENT_EVENTS.name;
        let mut outcomes = Vec::with_capacity(events.len());
        let mut in_flight: VecDeque<Result<PendingDelivery, PublishError>> = VecDeque::new();
        for event in events {
            let pending = match checked_payload(event) {
                Ok(payload) => {
                    self.send(topic, event.nhs_number.as_str().as_bytes(), &payload, None)
                        .await
                }
                Err(e) => Err(e),
            };
            in_flight.push_back(pending);
            if in_flight.len() >= MAX_IN_FLIGHT {
                let oldest = in_flight.pop_front().expect("non-empty");
                outcomes.push(settle(oldest, topic).await);
            }
        }
        for pending in in_flight {
            outcomes.push(settle(pending, topic).await);
        }
        outcomes
    }

    /// Publishes an access event keyed by its request id and waits for the acknowledgement.
    pub async fn publish_access_event(
        &self,
        event: &AccessEvent,
    ) -> Result<Delivered, PublishError> {
        self.publish_access_event_to(topics::ACCESS_EVENTS.name, event)
            .await
    }

    /// Publishes the access event that granted a break-glass elevation to
    /// `spr.break-glass`, for every API node to hold, and waits for the acknowledgement.
    pub async fn publish_break_glass(
        &self,
        event: &AccessEvent,
    ) -> Result<Delivered, PublishError> {
        self.publish_access_event_to(topics::BREAK_GLASS.name, event)
            .await
    }

    async fn publish_access_event_to(
        &self,
        topic: &str,
        event: &AccessEvent,
    ) -> Result<Delivered, PublishError> {
        let payload = event.to_avro()?;
        self.send(
            topic,
            event.request_id.to_string().as_bytes(),
            &payload,
            None,
        )
        .await?
        .await_delivery(topic)
        .await
    }

    /// Publishes raw bytes with headers (for dead letters) and waits for the acknowledgement.
    pub async fn publish_raw(
        &self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        headers: OwnedHeaders,
    ) -> Result<Delivered, PublishError> {
        self.send(topic, key, payload, Some(headers))
            .await?
            .await_delivery(topic)
            .await
    }

    /// Enqueues a record without awaiting, retrying while the local queue is full.
    async fn send(
        &self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<PendingDelivery, PublishError> {
        let mut record = FutureRecord::to(topic).key(key).payload(payload);
        if let Some(h) = headers {
            record = record.headers(h);
        }
        loop {
            match self.producer.send_result(record) {
                Ok(future) => return Ok(PendingDelivery(future)),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((source, _)) => {
                    return Err(PublishError::Delivery {
                        topic: topic.into(),
                        source,
                    })
                }
            }
        }
    }
}

/// The delivery outcome of a record that may not even have been handed to the client.
async fn settle(
    pending: Result<PendingDelivery, PublishError>,
    topic: &str,
) -> Result<Delivered, PublishError> {
    pending?.await_delivery(topic).await
}

/// A record handed to the client whose acknowledgement has not been awaited yet.
struct PendingDelivery(DeliveryFuture);

impl PendingDelivery {
    async fn await_delivery(self, topic: &str) -> Result<Delivered, PublishError> {
        match self.0.await {
            Ok(Ok(d)) => Ok(Delivered {
                partition: d.partition,
                offset: d.offset,
            }),
            Ok(Err((source, _))) => Err(PublishError::Delivery {
                topic: topic.into(),
                source,
            }),
            Err(_) => Err(PublishError::Cancelled {
                topic: topic.into(),
            }),
        }
    }
}

/// The Avro bytes of `event`, if it passes the decoder's content rules: an event the
/// projector would dead-letter is refused here, where its producer hears why.
fn checked_payload(event: &ClinicalEvent) -> Result<Vec<u8>, PublishError> {
    event.check().map_err(|reason| PublishError::Invalid {
        event_id: event.event_id,
        reason,
    })?;
    Ok(event.to_avro()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linger_as_long_as_the_delivery_timeout_is_refused() {
        let refused = EventPublisher::for_requests("127.0.0.1:9092", Duration::from_millis(5), 5);
        assert!(matches!(
            refused,
            Err(PublishError::LingerNotBelowTimeout {
                linger_ms: 5,
                timeout_ms: 5
            })
        ));
        // Creating a producer does not contact the broker.
        assert!(
            EventPublisher::for_requests("127.0.0.1:9092", Duration::from_millis(5), 1).is_ok()
        );
    }
}
