//! Break-glass elevations in force: who broke glass for which record, why, and until when.
//!
//! Each API node holds the elevations in memory. The node that grants one holds it at
//! once and publishes the access event that recorded it to `spr.break-glass`; every
//! node follows that topic ([`spawn_follower`]) and holds the elevations any node
//! granted. So behind a load balancer a clinician who broke glass on one node has the
//! elevation on every node moments later, and a node that restarts reads back the
//! elevations still in force.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::Message;
use spr_producers::consume::{consumer_config, partitions_from_start, AssignError, ClosesWithin};
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
    /// `duration` from the decision (or from `now`, if the decision's clock ran ahead),
    /// under the record's surviving NHS number. A decision more than [`MAX_CLOCK_SKEW`]
    /// in the future is not a grant this node will honour.
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
        if access.occurred_at > now.saturating_add(MAX_CLOCK_SKEW) {
            tracing::warn!(request_id = %access.request_id, occurred_at = access.occurred_at, "break-glass grant dated in the future; not honoured");
            return;
        }
        let expires_at = access.occurred_at.min(now).saturating_add(duration);
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

/// How far ahead of this node's clock a grant's decision may be dated (the granting
/// node's clock may run a little ahead).
pub const MAX_CLOCK_SKEW: EpochMillis = 60_000;

/// Why the follower could not start.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The consumer could not be created or assigned.
    #[error("following spr.break-glass: {0}")]
    Kafka(#[from] KafkaError),
    /// The topic is missing.
    #[error(transparent)]
    Assign(#[from] AssignError),
}

/// How long a fetch of the follower waits for a new grant: it bounds how soon the other
/// nodes hold one (tansu answers a fetch only when the wait is over).
const FOLLOW_WAIT_MS: &str = "100";

/// Follows `spr.break-glass` on `bootstrap` from its start and adds each granted
/// break-glass to `grants` (lasting `duration` from its decision, so the expired ones
/// are passed over), until the task is aborted. Records it cannot decode are passed
/// over (the same access events are in the ledger).
pub fn spawn_follower(
    bootstrap: &str,
    grants: BreakGlassGrants,
    store: Arc<ProjectionStore>,
    duration: EpochMillis,
) -> Result<tokio::task::JoinHandle<()>, FollowError> {
    let consumer: ClosesWithin<StreamConsumer> = ClosesWithin::new(
        consumer_config(bootstrap, "spr-api-break-glass")?
            .set("fetch.wait.max.ms", FOLLOW_WAIT_MS)
            .create()?,
    );
    consumer.assign(&partitions_from_start(
        &consumer,
        topics::BREAK_GLASS.name,
        None,
    )?)?;
    Ok(tokio::spawn(async move {
        loop {
            match consumer.recv().await {
                Ok(message) => match message.payload().map(AccessEvent::from_avro) {
                    Some(Ok(access)) => {
                        grants.learn(&access, &store, duration, spr_schemas::now_millis())
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, offset = message.offset(), "break-glass record not decoded; passed over")
                    }
                    None => {}
                },
                Err(e) => {
                    tracing::warn!(error = %e, "reading break-glass grants; retrying")
                }
            }
        }
    }))
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
        // A decision dated ahead of this node's clock lasts from now, and one dated
        // further ahead than the skew allowed is not honoured at all.
        assert_eq!(
            learnt(&granted, at - 30_000).map(|g| g.expires_at),
            Some(at - 30_000 + hour)
        );
        assert_eq!(
            learnt(&granted, at - MAX_CLOCK_SKEW - 1),
            None,
            "from the future"
        );
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
