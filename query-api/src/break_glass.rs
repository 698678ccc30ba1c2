//! Break-glass elevations in force: who broke glass for which record, why, and until when.
//!
//! Held in memory on the API node that granted them (a restart ends every elevation,
//! which fails closed). Behind a load balancer, route a clinician's requests to one node
//! or share grants through a store; see docs/access-model.md.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use spr_schemas::{EpochMillis, NhsNumber};

use crate::policy::ActiveBreakGlass;

/// The elevations granted on this node, by subject id and record.
#[derive(Debug, Clone, Default)]
pub struct BreakGlassGrants(Arc<Mutex<HashMap<(String, NhsNumber), ActiveBreakGlass>>>);

impl BreakGlassGrants {
    /// Records an elevation (replacing an earlier one for the same subject and record),
    /// and forgets the ones that have expired.
    pub fn grant(
        &self,
        subject: &str,
        record: NhsNumber,
        grant: ActiveBreakGlass,
        now: EpochMillis,
    ) {
        let mut grants = self.0.lock().expect("not poisoned");
        grants.retain(|_, g| g.expires_at > now);
        grants.insert((subject.to_owned(), record), grant);
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
        assert_eq!(grants.active("dr-a", &record, 999), Some(grant));
        assert_eq!(grants.active("dr-a", &record, 1_000), None);
        assert_eq!(grants.active("dr-b", &record, 0), None);
        assert_eq!(grants.active("dr-a", &other, 0), None);
    }
}
