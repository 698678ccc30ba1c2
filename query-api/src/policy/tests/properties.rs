//! Properties of the policy over random subjects, requests, contexts and entries.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use spr_schemas::{EpochMillis, EventType, SensitiveCategory, SharingChoice};

use super::{nhs, DAY, NOW, OTHER, PATIENT};
use crate::policy::{
    decide, ActiveBreakGlass, Context, Decision, Relationship, Request, Role, Scope, Subject, Tier,
    Visibility,
};

/// An entry a view might show.
#[derive(Debug, Clone)]
struct Entry {
    event_type: EventType,
    occurred_at: EpochMillis,
    labels: Vec<String>,
}

fn entry() -> impl Strategy<Value = Entry> {
    let label = prop_oneof![
        9 => proptest::sample::select(SensitiveCategory::ALL.to_vec()).prop_map(|c| c.as_str().to_owned()),
        1 => Just("unheard-of".to_owned()),
    ];
    (
        proptest::sample::select(EventType::ALL.to_vec()),
        -5 * 365 * DAY..DAY,
        proptest::collection::vec(label, 0..3),
    )
        .prop_map(|(event_type, ago, labels)| Entry {
            event_type,
            occurred_at: NOW + ago,
            labels,
        })
}

fn choice() -> impl Strategy<Value = SharingChoice> {
    proptest::sample::select(vec![
        SharingChoice::Share,
        SharingChoice::Withhold,
        SharingChoice::WithholdExceptEmergency,
    ])
}

fn relationship() -> impl Strategy<Value = Relationship> {
    (
        proptest::option::of(-800 * DAY..DAY),
        proptest::option::of(-DAY..100 * DAY),
        any::<bool>(),
    )
        .prop_map(|(contact, care_team, registered_practice)| Relationship {
            last_contact_at: contact.map(|c| NOW + c),
            care_team_until: care_team.map(|c| NOW + c),
            registered_practice,
        })
}

fn context() -> impl Strategy<Value = Context> {
    (
        relationship(),
        proptest::collection::hash_map(
            proptest::sample::select(SensitiveCategory::ALL.to_vec()),
            choice(),
            0..8,
        ),
        proptest::option::of(-60_000i64..3_600_000),
    )
        .prop_map(|(relationship, choices, break_glass)| Context {
            relationship,
            choices,
            break_glass: break_glass.map(|left| ActiveBreakGlass {
                reason: "unconscious, no history available".into(),
                expires_at: NOW + left,
            }),
            ..Context::at(NOW)
        })
}

fn subject() -> impl Strategy<Value = Subject> {
    (
        prop_oneof![
            8 => proptest::sample::select(Role::ALL.to_vec()).prop_map(Ok),
            1 => Just(Err("surgeon-general".to_owned())),
        ],
        proptest::sample::select(vec![Some(PATIENT), Some(OTHER), None]),
    )
        .prop_map(|(role, own)| Subject {
            role,
            own_nhs_number: own.map(nhs),
        })
}

fn request() -> impl Strategy<Value = Request> {
    (
        proptest::sample::select(Scope::ALL.to_vec()),
        any::<bool>(),
        proptest::option::of("[a-z ]{0,30}"),
    )
        .prop_map(|(scope, full_history, break_glass_reason)| Request {
            scope,
            full_history,
            break_glass_reason,
        })
}

fn shows(visibility: &Visibility, entry: &Entry) -> bool {
    visibility.allows(entry.event_type, entry.occurred_at, &entry.labels)
}

fn labelled(entry: &Entry, category: SensitiveCategory) -> bool {
    entry.labels.iter().any(|l| l == category.as_str())
}

fn ask(subject: &Subject, request: &Request, context: &Context) -> Decision {
    decide(subject, &nhs(PATIENT), request, context)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn withholding_a_category_never_shows_more(
        subject in subject(),
        request in request(),
        context in context(),
        category in proptest::sample::select(SensitiveCategory::ALL.to_vec()),
        (looser, stricter) in proptest::sample::select(vec![
            (SharingChoice::Share, SharingChoice::WithholdExceptEmergency),
            (SharingChoice::Share, SharingChoice::Withhold),
            (SharingChoice::WithholdExceptEmergency, SharingChoice::Withhold),
        ]),
        entries in proptest::collection::vec(entry(), 1..20),
    ) {
        let (mut context, mut withheld) = (context.clone(), context);
        context.choices.insert(category, looser);
        withheld.choices.insert(category, stricter);
        let (open, closed) = (ask(&subject, &request, &context), ask(&subject, &request, &withheld));
        prop_assert_eq!(open.permit, closed.permit);
        for entry in &entries {
            prop_assert!(!shows(&closed.visibility, entry) || shows(&open.visibility, entry), "{:?}", entry);
        }
    }

    #[test]
    fn break_glass_never_reveals_a_withheld_category_and_reveals_except_emergency_only_as_stated(
        subject in subject(),
        request in request(),
        context in context(),
        entries in proptest::collection::vec(entry(), 1..20),
    ) {
        prop_assume!(subject.role.as_ref().is_ok_and(|r| *r != Role::Patient));
        let decision = ask(&subject, &request, &context);
        let break_glass = decision.reasons.contains(&crate::policy::ReasonCode::BreakGlass);
        for entry in entries.iter().filter(|e| shows(&decision.visibility, e)) {
            for (category, choice) in &context.choices {
                if labelled(entry, *category) {
                    prop_assert_ne!(*choice, SharingChoice::Withhold);
                    if *choice == SharingChoice::WithholdExceptEmergency {
                        prop_assert!(
                            break_glass || decision.tier == Some(Tier::EmergencySummary),
                            "{:?} shown without an emergency", entry
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_denial_never_makes_anything_visible(
        subject in subject(),
        request in request(),
        context in context(),
        entries in proptest::collection::vec(entry(), 1..20),
    ) {
        let decision = ask(&subject, &request, &context);
        if !decision.permit {
            prop_assert_eq!(decision.tier, None);
            for entry in &entries {
                prop_assert!(!shows(&decision.visibility, entry), "{:?}", entry);
            }
        }
    }

    #[test]
    fn a_patient_never_sees_another_patients_record(
        request in request(),
        context in context(),
        entries in proptest::collection::vec(entry(), 1..20),
    ) {
        let subject = Subject { role: Ok(Role::Patient), own_nhs_number: Some(nhs(OTHER)) };
        let decision = ask(&subject, &request, &context);
        prop_assert!(!decision.permit);
        for entry in &entries {
            prop_assert!(!shows(&decision.visibility, entry));
        }
    }

    #[test]
    fn adding_a_relationship_never_reduces_what_is_visible(
        subject in subject(),
        request in request(),
        context in context(),
        added in relationship(),
        entries in proptest::collection::vec(entry(), 1..20),
    ) {
        let mut related = context.clone();
        let facts = &mut related.relationship;
        facts.last_contact_at = facts.last_contact_at.max(added.last_contact_at);
        facts.care_team_until = facts.care_team_until.max(added.care_team_until);
        facts.registered_practice |= added.registered_practice;
        let (before, after) = (ask(&subject, &request, &context), ask(&subject, &request, &related));
        prop_assert!(!before.permit || after.permit);
        prop_assert!(before.tier <= after.tier);
        for entry in &entries {
            prop_assert!(!shows(&before.visibility, entry) || shows(&after.visibility, entry), "{:?}", entry);
        }
    }
}

#[test]
fn the_generators_give_permits_denials_and_every_tier() {
    // A property that only ever meets denials would prove nothing.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let cases = (subject(), request(), context());
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..2000 {
        let (subject, request, context) = cases.new_tree(&mut runner).unwrap().current();
        let decision = ask(&subject, &request, &context);
        seen.insert((decision.permit, decision.tier));
    }
    let want = [
        (false, None),
        (true, Some(Tier::EmergencySummary)),
        (true, Some(Tier::DirectCare)),
        (true, Some(Tier::Full)),
    ];
    assert_eq!(seen, want.into_iter().collect());
}
