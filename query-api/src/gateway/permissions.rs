//! What a publishing system may assert. Most events only add to a record; a few change
//! who may read it. A registered practice or a care team gives an organisation the full
//! record, so only systems trusted with the `relationships` permission may assert them
//! (a PDS feed, a GP system, a regional shared-care record). An encounter gives the
//! organisation where it happened direct care for a while, and a referral the
//! organisation referred to: a system may record its own organisation's encounters and
//! referrals within it, and others' only with the permission (otherwise any publisher
//! could give any organisation direct care with one referral). A sharing choice opens or closes a
//! sensitive category: only systems with the `consent` permission may record one. And
//! nothing may be dated in the future: a contact dated ahead would stretch a
//! relationship, and a choice dated ahead would outrank every later one.

use serde::{Deserialize, Serialize};
use spr_schemas::{ClinicalEvent, EpochMillis, Payload};

/// How far ahead of the gateway's clock an event may be dated (clocks differ).
pub const CLOCK_SKEW_MS: EpochMillis = 5 * 60 * 1_000;

/// A permission a publisher token may carry in its `permissions` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Assert registered practices and care teams, and encounters at or referrals to
    /// organisations other than its own.
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

/// Why a document may not be published under a token: it is refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {index} ({event_type}) {what}; that needs the {:?} permission in the publisher token, which this system's token does not carry. Leave it out, or ask the operators for the permission", permission.as_str())]
pub struct Refusal {
    /// The event's position among the document's events.
    pub index: usize,
    /// Its type.
    pub event_type: &'static str,
    /// What it asserts.
    pub what: String,
    /// The permission it needs.
    pub permission: Permission,
}

/// A document's events as they may be published, and what was left out of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Screened {
    /// The events to publish.
    pub events: Vec<ClinicalEvent>,
    /// What was not taken, one sentence each, for the answer's warnings.
    pub not_taken: Vec<String>,
}

/// Screens the events of a document from a system of organisation `org` holding
/// `permissions`, at time `now`. An event that asserts what the system may not refuses
/// the document; a registered practice the system may not set is taken out of its
/// demographics (the rest of them is kept); an event dated in the future is left out.
pub fn screen(
    events: Vec<ClinicalEvent>,
    org: &str,
    permissions: &[Permission],
    now: EpochMillis,
) -> Result<Screened, Refusal> {
    let may = |permission| permissions.contains(&permission);
    let mut screened = Screened {
        events: Vec::with_capacity(events.len()),
        not_taken: vec![],
    };
    for (index, mut event) in events.into_iter().enumerate() {
        let event_type = event.event_type().as_str();
        if event.occurred_at > now.saturating_add(CLOCK_SKEW_MS) {
            screened.not_taken.push(format!(
                "event {index} ({event_type}) is dated {} s after the gateway's clock and was not published: a record of care cannot be dated ahead (a planned encounter or a booking is not care yet; check the time zone)",
                (event.occurred_at - now) / 1_000
            ));
            continue;
        }
        let refuse = |what: String, permission| Refusal {
            index,
            event_type,
            what,
            permission,
        };
        match &mut event.payload {
            Payload::ConsentChoice(_) if !may(Permission::Consent) => {
                return Err(refuse(
                    "records the patient's sharing choice".into(),
                    Permission::Consent,
                ))
            }
            Payload::CareTeam(team) if !may(Permission::Relationships) => {
                return Err(refuse(
                    format!(
                        "puts organisation {} on the patient's care team, which gives it the full record",
                        team.ods_code
                    ),
                    Permission::Relationships,
                ))
            }
            Payload::Encounter(_)
                if !event.source.ods_code.eq_ignore_ascii_case(org)
                    && !may(Permission::Relationships) =>
            {
                return Err(refuse(
                    format!(
                        "records a contact at organisation {}, not at this system's own ({org})",
                        event.source.ods_code
                    ),
                    Permission::Relationships,
                ))
            }
            Payload::Referral(referral)
                if !referral.to_ods_code.trim().is_empty()
                    && !referral.to_ods_code.eq_ignore_ascii_case(org)
                    && !may(Permission::Relationships) =>
            {
                return Err(refuse(
                    format!(
                        "refers the patient to organisation {}, which gives it direct care; a referral to another organisation",
                        referral.to_ods_code
                    ),
                    Permission::Relationships,
                ))
            }
            Payload::Demographics(d)
                if d.registered_gp_ods_code.is_some() && !may(Permission::Relationships) =>
            {
                let practice = d.registered_gp_ods_code.take().unwrap_or_default();
                screened.not_taken.push(format!(
                    "event {index} ({event_type}) named {practice} as the registered practice, which was not taken: only systems with the \"relationships\" permission set it (the rest of the demographics was published)"
                ));
            }
            _ => {}
        }
        screened.events.push(event);
    }
    Ok(screened)
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

    fn screen_one(event: ClinicalEvent, permissions: &[Permission]) -> Result<Screened, Refusal> {
        screen(vec![event], "RX1", permissions, NOW)
    }

    #[test]
    fn own_encounters_and_referrals_need_no_permission_and_other_events_neither() {
        for event in [
            naming(EventType::Encounter, "RX1"),
            naming(EventType::Encounter, "rx1"),
            naming(EventType::Referral, "RX1"),
            naming(EventType::Referral, ""),
        ] {
            let screened = screen_one(event.clone(), &[]).unwrap();
            assert_eq!(screened.events, [event]);
            assert!(screened.not_taken.is_empty());
        }
        for event in examples::one_of_each_type("9990000018".parse().unwrap()) {
            let event_type = event.event_type();
            if matches!(
                event_type,
                EventType::CareTeam
                    | EventType::ConsentChoice
                    | EventType::Demographics
                    | EventType::Referral
            ) {
                continue;
            }
            let event = example(event_type);
            assert_eq!(screen_one(event.clone(), &[]).unwrap().events, [event]);
        }
    }

    #[test]
    fn care_teams_anywhere_and_encounters_and_referrals_elsewhere_need_the_relationships_permission(
    ) {
        for event in [
            naming(EventType::CareTeam, "RX1"),
            naming(EventType::CareTeam, "EVIL1"),
            naming(EventType::Encounter, "EVIL1"),
            naming(EventType::Referral, "evil1"),
        ] {
            let refused = screen_one(event.clone(), &[Permission::Consent]).unwrap_err();
            assert_eq!(refused.permission, Permission::Relationships, "{refused}");
            let screened = screen_one(event.clone(), &[Permission::Relationships]).unwrap();
            assert_eq!(screened.events, [event]);
        }
        let refused = screen_one(naming(EventType::CareTeam, "EVIL1"), &[]).unwrap_err();
        assert!(refused.to_string().contains("EVIL1"), "{refused}");
    }

    #[test]
    fn a_registered_practice_is_taken_only_with_the_permission_and_the_rest_is_kept() {
        let patient = naming(EventType::Demographics, "RX1");
        let screened = screen_one(patient.clone(), &[]).unwrap();
        let Payload::Demographics(kept) = &screened.events[0].payload else {
            unreachable!()
        };
        assert_eq!(kept.registered_gp_ods_code, None, "not even its own");
        let Payload::Demographics(sent) = &patient.payload else {
            unreachable!()
        };
        assert_eq!(kept.family_name, sent.family_name);
        assert!(screened.not_taken[0].contains("named RX1 as the registered practice"));
        let trusted = screen_one(patient.clone(), &[Permission::Relationships]).unwrap();
        assert_eq!(trusted.events, [patient]);
        assert!(trusted.not_taken.is_empty());
    }

    #[test]
    fn sharing_choices_need_the_consent_permission() {
        let choice = example(EventType::ConsentChoice);
        let refused = screen_one(choice.clone(), &[Permission::Relationships]).unwrap_err();
        assert!(
            refused.to_string().contains("\"consent\" permission"),
            "{refused}"
        );
        assert_eq!(
            screen_one(choice.clone(), &[Permission::Consent])
                .unwrap()
                .events,
            [choice]
        );
    }

    #[test]
    fn events_dated_beyond_the_clock_skew_are_left_out_and_the_rest_is_kept() {
        let mut within = example(EventType::Allergy);
        within.occurred_at = NOW + CLOCK_SKEW_MS;
        let mut ahead = example(EventType::Observation);
        ahead.occurred_at = NOW + CLOCK_SKEW_MS + 1;
        let mut far = example(EventType::Encounter);
        far.occurred_at = EpochMillis::MAX;
        let screened = screen(vec![within.clone(), ahead, far], "RX1", &[], NOW).unwrap();
        assert_eq!(screened.events, [within]);
        assert_eq!(screened.not_taken.len(), 2);
        assert!(screened.not_taken[0].starts_with("event 1 (observation) is dated 300 s after"));
    }
}
