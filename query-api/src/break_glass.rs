//! Break-glass elevations in force: who broke glass for which record, why, and until when.
//!
//! Each API node holds the elevations in memory. The node that grants one holds it at
//! once; every node also follows the access events on `spr.access-events`
//! ([`spawn_follower`]), where each granted break-glass is recorded before it is
//! granted, and holds the elevations any node granted. So behind a load balancer a
//! clinician who broke glass on one node has the elevation on every node moments later,
//! and a node that restarts reads back the elevations still in force.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use spr_producers::consume::{consumer_config, partitions_from_start, AssignError};
use spr_projector::ProjectionStore;
use spr_schemas::{topics, AccessEvent, Decision, EpochMillis, NhsNumber};

use crate::policy::{ActiveBreakGlass, Scope};

/// The elevations in force that this node knows of, by subject id and record.
#[derive(Debug, Clone, Default)]
pub struct BreakGlassGrants(Arc<Mutex<HashMap<(String, NhsNumber), ActiveBreakGlass>>>);

impl BreakGlassGrants {
    /// Records an elevation, and forgets the ones that have expired. Of two elevations
    /// for the same subject and record, the one that lasts longer is kept.
    pub fn grant(
        &self,
        subject: &str,
        record: NhsNumber,
        grant: ActiveBreakGlass,
        now: EpochMillis,
    ) {
        let mut grants = self.0.lock().expect("not poisoned");
        grants.retain(|_, g| g.expires_at > now);
        let key = (subject.to_owned(), record);
        if grants
            .get(&key)
            .is_none_or(|held| held.expires_at < grant.expires_at)
        {
            grants.insert(key, grant);
        }
    }

    /// The subject's elevation for the record, if one has not expired.
    pub fn active(
        &self,
        subject: &str,
        record: &NhsNumber,
        now: EpochMillis,
    ) -> Option<ActiveBreakGlass> {
        let grants = self.0.lock().expect("not poisoned");
        grants
            .get(&(subject.to_owned(), *record))
            .filter(|g| g.expires_at > now)
            .cloned()
    }

    /// Records the elevation `access` granted, if it is a granted break-glass: it lasts
    /// `duration` from the decision, under the record's surviving NHS number.
    fn learn(
        &self,
        access: &AccessEvent,
        store: &ProjectionStore,
        duration: EpochMillis,
        now: EpochMillis,
    ) {
        let granted =
            access.action == Scope::BreakGlass.action() && access.decision == Decision::Permit;
        let (true, Some(reason)) = (granted, &access.break_glass_reason) else {
            return;
        };
        let expires_at = access.occurred_at.saturating_add(duration);
        if expires_at <= now {
            return;
        }
        let record = match store.record_numbers(&access.nhs_number) {
            Ok(numbers) => numbers.surviving,
            Err(e) => {
                tracing::warn!(error = %e, "break-glass grant read from the log, record not resolved; held under the number asked for");
                access.nhs_number
            }
        };
        let grant = ActiveBreakGlass {
            reason: reason.clone(),
            expires_at,
        };
        self.grant(&access.subject.id, record, grant, now);
    }
}

/// Why the follower could not start.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The consumer could not be created or assigned.
    #[error("following access events for break-glass grants: {0}")]
    Kafka(#[from] KafkaError),
    /// The access-events topic is missing.
    #[error(transparent)]
    Assign(#[from] AssignError),
}

/// Follows the access events of every API node on `bootstrap` and adds each granted
/// break-glass to `grants` (lasting `duration` from its decision), until the task is
/// aborted. It starts at the first access event of the last `duration`, where the
/// broker can say which that is (Apache Kafka), else at the start of the topic, whose
/// older events are read and passed over. Events it cannot decode are passed over (the
/// ledger reports them).
pub fn spawn_follower(
    bootstrap: &str,
    grants: BreakGlassGrants,
    store: Arc<ProjectionStore>,
    duration: EpochMillis,
) -> Result<tokio::task::JoinHandle<()>, FollowError> {
    let consumer: StreamConsumer = consumer_config(bootstrap, "spr-api-break-glass").create()?;
    let since = crate::app::now_millis().saturating_sub(duration);
    consumer.assign(&start_offsets(&consumer, since)?)?;
    Ok(tokio::spawn(async move {
        loop {
            match consumer.recv().await {
                Ok(message) => match message.payload().map(AccessEvent::from_avro) {
                    Some(Ok(access)) => {
                        grants.learn(&access, &store, duration, crate::app::now_millis())
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, offset = message.offset(), "access event not decoded; passed over")
                    }
                    None => {}
                },
                Err(e) => {
                    tracing::warn!(error = %e, "reading access events for break-glass grants; retrying")
                }
            }
        }
    }))
}

/// Each partition of the access-events topic at the first event at or after `since`
/// (ms), as the broker answers; from its start where it cannot answer.
fn start_offsets(
    consumer: &StreamConsumer,
    since: EpochMillis,
) -> Result<TopicPartitionList, FollowError> {
    let topic = topics::ACCESS_EVENTS.name;
    let mut start = partitions_from_start(consumer, topic, None)?;
    let mut at_time = TopicPartitionList::new();
    for element in start.elements() {
        at_time.add_partition_offset(topic, element.partition(), Offset::Offset(since))?;
    }
    match consumer.offsets_for_times(at_time, Duration::from_secs(10)) {
        Ok(found) => {
            for element in found.elements() {
                if let offset @ (Offset::Offset(_) | Offset::End) = element.offset() {
                    start.set_partition_offset(topic, element.partition(), offset)?;
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "the broker did not say where the last break-glass window starts; reading access events from the start")
        }
    }
    tracing::info!(?start, "following access events for break-glass grants");
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_is_for_one_subject_and_record_until_it_expires() {
        let grants = BreakGlassGrants::default();
        let record: NhsNumber = "9990000018".parse().unwrap();
        let other: NhsNumber = "9990000026".parse().unwrap();
        let grant = ActiveBreakGlass {
            reason: "unconscious in A&E".into(),
            expires_at: 1_000,
        };
        grants.grant("dr-a", record, grant.clone(), 0);
        assert_eq!(grants.active("dr-a", &record, 999), Some(grant.clone()));
        assert_eq!(grants.active("dr-a", &record, 1_000), None);
        assert_eq!(grants.active("dr-b", &record, 0), None);
        assert_eq!(grants.active("dr-a", &other, 0), None);
        // The same elevation read back from the log later never shortens it.
        let shorter = ActiveBreakGlass {
            expires_at: 900,
            ..grant.clone()
        };
        grants.grant("dr-a", record, shorter, 0);
        assert_eq!(grants.active("dr-a", &record, 950), Some(grant));
    }

    #[test]
    fn only_a_granted_break_glass_in_force_is_learnt_from_an_access_event() {
        let dir = tempfile::tempdir().unwrap();
        ProjectionStore::open(&dir.path().join("db"), false).unwrap();
        let store = ProjectionStore::open_secondary(
            &dir.path().join("db"),
            &dir.path().join("secondary"),
            1 << 20,
        )
        .unwrap();
        let record: NhsNumber = "9990000018".parse().unwrap();
        let granted = AccessEvent {
            action: Scope::BreakGlass.action().into(),
            break_glass_reason: Some("unconscious in A&E".into()),
            ..spr_schemas::examples::access_event(record)
        };
        let at = granted.occurred_at;
        let (subject, hour) = (granted.subject.id.clone(), 3_600_000);
        let learnt = |access: &AccessEvent, now: EpochMillis| {
            let grants = BreakGlassGrants::default();
            grants.learn(access, &store, hour, now);
            grants.active(&subject, &record, now)
        };
        assert_eq!(
            learnt(&granted, at + 1),
            Some(ActiveBreakGlass {
                reason: "unconscious in A&E".into(),
                expires_at: at + hour,
            })
        );
        assert_eq!(learnt(&granted, at + hour), None, "expired");
        let refused = AccessEvent {
            decision: Decision::Deny,
            ..granted.clone()
        };
        assert_eq!(learnt(&refused, at + 1), None, "refused");
        let read_under_glass = AccessEvent {
            action: Scope::Timeline.action().into(),
            ..granted.clone()
        };
        assert_eq!(
            learnt(&read_under_glass, at + 1),
            None,
            "a read, not a grant"
        );
        let without_reason = AccessEvent {
            break_glass_reason: None,
            ..granted
        };
        assert_eq!(learnt(&without_reason, at + 1), None, "no reason");
    }
}
