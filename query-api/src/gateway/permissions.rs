//! What a publishing system may assert. Most events only add to a record; a few change
//! who may read it: a contact, care team or referral gives an organisation a legitimate
//! relationship, the registered practice gives the practice the full record, and a
//! sharing choice opens or closes a sensitive category. A system may assert those for
//! its own organisation (its token's `org`); for another organisation, or for the
//! patient's sharing choices, its token must carry the permission. Nothing may be
//! dated in the future: a contact dated ahead would extend a relationship, and a choice
//! dated ahead would outrank every later one.

use serde::{Deserialize, Serialize};
use spr_schemas::{ClinicalEvent, EpochMillis, Payload};

/// How far ahead of the gateway's clock an event may be dated (clocks differ).
pub const CLOCK_SKEW_MS: EpochMillis = 5 * 60 * 1_000;

/// A permission a publisher token may carry in its `permissions` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Assert relationships for organisations other than its own: encounters at, care
    /// teams of, referrals to and registration with them (for example the e-Referral
    /// Service, a regional shared-care record or a PDS feed).
    Relationships,
    /// Record patients' sharing choices (CONSENT_CHOICE), for example a GP system where
    /// the patient told the practice.
    Consent,
}

impl Permission {
    /// The name in tokens and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Relationships => "relationships",
            Self::Consent => "consent",
        }
    }
}

/// Why a document's events may not be published under a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// An event needs a permission the token lacks.
    #[error("event {index} ({event_type}) {what}; that needs the {:?} permission in the publisher token, which this system's token does not carry. Leave it out, or ask the operators for the permission", permission.as_str())]
    NotPermitted {
        /// The event's position among the document's events.
        index: usize,
        /// Its type.
        event_type: &'static str,
        /// What it asserts.
        what: String,
        /// The permission it needs.
        permission: Permission,
    },
    /// An event is dated after the gateway's clock (beyond the allowed skew).
    #[error("event {index} ({event_type}) is dated {occurred_at} ms since the epoch, {ahead_s} s after the gateway's clock; a record of care cannot be dated in the future (check the resource's time and its time zone)")]
    FutureDated {
        /// The event's position among the document's events.
        index: usize,
        /// Its type.
        event_type: &'static str,
        /// Its date.
        occurred_at: EpochMillis,
        /// How far ahead of the clock, in seconds.
        ahead_s: i64,
    },
}

/// Checks every event of a document from a system of organisation `org` holding
/// `permissions`, at time `now`; the document is refused whole at the first refusal.
pub fn check_events(
    events: &[ClinicalEvent],
    org: &str,
    permissions: &[Permission],
    now: EpochMillis,
) -> Result<(), Refusal> {
    for (index, event) in events.iter().enumerate() {
        let event_type = event.event_type().as_str();
        if event.occurred_at > now.saturating_add(CLOCK_SKEW_MS) {
            return Err(Refusal::FutureDated {
                index,
                event_type,
                occurred_at: event.occurred_at,
                ahead_s: (event.occurred_at - now) / 1_000,
            });
        }
        if let Some((permission, what)) = needed_permission(event, org) {
            if !permissions.contains(&permission) {
                return Err(Refusal::NotPermitted {
                    index,
                    event_type,
                    what,
                    permission,
                });
            }
        }
    }
    Ok(())
}

/// The permission an event needs from a system of organisation `org`, and what the
/// event asserts, if it needs one.
fn needed_permission(event: &ClinicalEvent, org: &str) -> Option<(Permission, String)> {
    let other = |ods: &str| !ods.eq_ignore_ascii_case(org);
    let relationship = |what: String| Some((Permission::Relationships, what));
    match &event.payload {
        Payload::ConsentChoice(_) => Some((
            Permission::Consent,
            "records the patient's sharing choice".into(),
        )),
        Payload::Encounter(_) if other(&event.source.ods_code) => relationship(format!(
            "records a contact at organisation {}",
            event.source.ods_code
        )),
        Payload::CareTeam(team) if other(&team.ods_code) => relationship(format!(
            "puts organisation {} on the patient's care team",
            team.ods_code
        )),
        Payload::Referral(referral) if other(&referral.to_ods_code) => relationship(format!(
            "refers the patient to organisation {}",
            referral.to_ods_code
        )),
        Payload::Demographics(d) => match &d.registered_gp_ods_code {
            Some(practice) if other(practice) => relationship(format!(
                "names {practice} as the patient's registered practice"
            )),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spr_schemas::{examples, EventType};

    const NOW: EpochMillis = 1_790_000_000_000;

    /// The example event of a type, from organisation RX1, a minute before [`NOW`].
    fn example(event_type: EventType) -> ClinicalEvent {
        let mut event = examples::one_of_each_type("9990000018".parse().unwrap())
            .into_iter()
            .find(|e| e.event_type() == event_type)
            .expect("an example of every type");
        event.occurred_at = NOW - 60_000;
        event.source.ods_code = "RX1".into();
        event
    }

    /// The example event of a type, naming organisation `ods` where it names one.
    fn naming(event_type: EventType, ods: &str) -> ClinicalEvent {
        let mut event = example(event_type);
        match &mut event.payload {
            Payload::CareTeam(team) => team.ods_code = ods.into(),
            Payload::Referral(referral) => referral.to_ods_code = ods.into(),
            Payload::Demographics(d) => d.registered_gp_ods_code = Some(ods.into()),
            Payload::Encounter(_) => event.source.ods_code = ods.into(),
            _ => unreachable!("{event_type:?} names no organisation"),
        }
        event
    }

    const RELATIONSHIP_TYPES: [EventType; 4] = [
        EventType::Encounter,
        EventType::CareTeam,
        EventType::Referral,
        EventType::Demographics,
    ];

    fn check(event: &ClinicalEvent, permissions: &[Permission]) -> Result<(), Refusal> {
        check_events(std::slice::from_ref(event), "RX1", permissions, NOW)
    }

    #[test]
    fn relationships_for_the_publishers_own_organisation_need_no_permission() {
        for event_type in RELATIONSHIP_TYPES {
            assert_eq!(check(&naming(event_type, "RX1"), &[]), Ok(()));
            assert_eq!(check(&naming(event_type, "rx1"), &[]), Ok(()), "any case");
        }
    }

    #[test]
    fn relationships_for_another_organisation_need_the_relationships_permission() {
        for event_type in RELATIONSHIP_TYPES {
            let event = naming(event_type, "EVIL1");
            let refused = check(&event, &[]).unwrap_err();
            assert!(
                matches!(
                    refused,
                    Refusal::NotPermitted {
                        permission: Permission::Relationships,
                        ..
                    }
                ),
                "{event_type:?}: {refused}"
            );
            assert!(refused.to_string().contains("EVIL1"), "{refused}");
            assert!(check(&event, &[Permission::Consent]).is_err());
            assert_eq!(check(&event, &[Permission::Relationships]), Ok(()));
        }
    }

    #[test]
    fn demographics_without_a_registered_practice_and_other_events_need_no_permission() {
        let mut patient = example(EventType::Demographics);
        if let Payload::Demographics(d) = &mut patient.payload {
            d.registered_gp_ods_code = None;
        }
        assert_eq!(check(&patient, &[]), Ok(()));
        for event in examples::one_of_each_type("9990000018".parse().unwrap()) {
            let event_type = event.event_type();
            if RELATIONSHIP_TYPES.contains(&event_type) || event_type == EventType::ConsentChoice {
                continue;
            }
            assert_eq!(check(&example(event_type), &[]), Ok(()), "{event_type:?}");
        }
    }

    #[test]
    fn sharing_choices_need_the_consent_permission() {
        let choice = example(EventType::ConsentChoice);
        let refused = check(&choice, &[Permission::Relationships]).unwrap_err();
        assert!(
            refused.to_string().contains("\"consent\" permission"),
            "{refused}"
        );
        assert_eq!(check(&choice, &[Permission::Consent]), Ok(()));
    }

    #[test]
    fn nothing_is_dated_beyond_the_clock_skew() {
        let mut allergy = example(EventType::Allergy);
        allergy.occurred_at = NOW + CLOCK_SKEW_MS;
        assert_eq!(check(&allergy, &[]), Ok(()), "within the skew");
        allergy.occurred_at = NOW + CLOCK_SKEW_MS + 1;
        let every = [Permission::Relationships, Permission::Consent];
        assert!(matches!(
            check(&allergy, &every),
            Err(Refusal::FutureDated { index: 0, .. })
        ));
        allergy.occurred_at = EpochMillis::MAX;
        assert!(check(&allergy, &every).is_err());
    }
}
