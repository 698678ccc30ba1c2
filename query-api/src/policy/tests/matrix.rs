//! The exhaustive matrix: every role (and an unknown one) × scope × tier asked ×
//! relationship × break-glass × sensitive category (and none) × patient choice, checked
//! against the tables below, which restate docs/access-model.md in a form of their own.
//! For each decision every kind of event is tried, recent and old, so each cell of
//! each table can fail.

use std::collections::{BTreeSet, HashMap};

use spr_schemas::{EventType, SensitiveCategory, SharingChoice};

use super::{nhs, DAY, NOW, OTHER, PATIENT};
use crate::policy::{
    decide, ActiveBreakGlass, CategoryAccess, Context, Decision, ReasonCode, Relationship, Request,
    Role, Scope, Subject,
};

/// Columns: clinician nurse midwife pharmacist paramedic social-worker administrative patient.
const ROLE_SEES_EVENT_TYPE: &str = "
    allergy                   x x x x x . . x
    medication-prescribed     x x x x x . . x
    medication-dispensed      x x x x x . . x
    medication-stopped        x x x x x . . x
    observation               x x x x x . . x
    encounter                 x x x . x . x x
    diagnostic-report         x x x x . . . x
    condition                 x x x x x . . x
    procedure                 x x . . . . . x
    immunisation              x x x x . . . x
    care-plan                 x x x . x x . x
    discharge-summary         x x x x . . . x
    safeguarding-flag         x x x . x x . .
    pregnancy-episode         x x x x x . . x
    antenatal-visit           x x x . . . . x
    birth                     x x x . . . . x
    referral                  x x x . . x x x
    genomic-result            x x . . . . . x
    consent-choice            . . . . . . . x
    demographics              x x x x x x x x
    nhs-number-merge          x x . . . . x x
    care-team                 x x x . x x x x
";

/// Columns, in the order of `Scope::ALL`: timeline emergency-summary maternity medication
/// discharge social-care administration fhir-export patient-record access-log choices
/// break-glass.
const SCOPE_COVERS_EVENT_TYPE: &str = "
    allergy                   x x x x x . . x x . . .
    medication-prescribed     x x x x x . . x x . . .
    medication-dispensed      x x x x x . . x x . . .
    medication-stopped        x x x x x . . x x . . .
    observation               x x x x . . . x x . . .
    encounter                 x . x . x . x x x . . .
    diagnostic-report         x . x x . . . x x . . .
    condition                 x x x x x . . x x . . .
    procedure                 x . . . x . . x x . . .
    immunisation              x . x x . . . x x . . .
    care-plan                 x x x . x x . x x . . .
    discharge-summary         x . . x x . . x x . . .
    safeguarding-flag         x x x . x x . x x . . .
    pregnancy-episode         x x x x . . . x x . . .
    antenatal-visit           x . x . . . . x x . . .
    birth                     x . x . . . . x x . . .
    referral                  x . x . x x x x x . . .
    genomic-result            x . . . . . . x x . . .
    consent-choice            x . . . . . . x x . x .
    demographics              x x x x x x x x x . . .
    nhs-number-merge          x . . . . . x x x . . .
    care-team                 x . x . x x x x x . . .
";

/// Columns as in SCOPE_COVERS_EVENT_TYPE.
const ROLE_MAY_ASK_SCOPE: &str = "
    clinician                 x x x x x . . x . . . x
    nurse                     x x x x x . . . . . . x
    midwife                   x x x x x . . . . . . x
    pharmacist                . x . x x . . . . . . .
    paramedic                 x x . . . . . . . . . x
    social-worker             . . . . x x . . . . . .
    administrative            . . . . . . x . . . . .
    patient                   x x . . . . . . x x x .
";

/// Columns as in ROLE_SEES_EVENT_TYPE.
const ROLE_SEES_CATEGORY: &str = "
    sexual-health             x x x x . . . x
    mental-health             x x x x x x . x
    hiv-sti                   x x x x . . . x
    gender-identity           x x . x . . . x
    fertility                 x x x x . . . x
    termination-of-pregnancy  x x x . . . . x
    safeguarding              x x x . x x . .
    genomics                  x x . x . . . x
";

/// Kinds of event the direct-care tier shows however old they are.
const STAYS_CURRENT: &[&str] = &[
    "allergy",
    "medication-prescribed",
    "medication-dispensed",
    "medication-stopped",
    "condition",
    "immunisation",
    "safeguarding-flag",
    "care-plan",
    "demographics",
    "care-team",
    "genomic-result",
    "consent-choice",
    "nhs-number-merge",
];

/// Parses a table of names and `x`/`.` cells.
fn grid(text: &'static str, columns: usize) -> HashMap<&'static str, Vec<bool>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut cells = line.split_whitespace();
            let name = cells.next().unwrap();
            let row: Vec<bool> = cells.map(|c| c == "x").collect();
            assert_eq!(row.len(), columns, "table row {name}");
            (name, row)
        })
        .collect()
}

struct Tables {
    role_sees: HashMap<&'static str, Vec<bool>>,
    scope_covers: HashMap<&'static str, Vec<bool>>,
    may_ask: HashMap<&'static str, Vec<bool>>,
    role_sees_category: HashMap<&'static str, Vec<bool>>,
}

impl Tables {
    fn new() -> Self {
        let tables = Self {
            role_sees: grid(ROLE_SEES_EVENT_TYPE, 8),
            scope_covers: grid(SCOPE_COVERS_EVENT_TYPE, 12),
            may_ask: grid(ROLE_MAY_ASK_SCOPE, 12),
            role_sees_category: grid(ROLE_SEES_CATEGORY, 8),
        };
        assert_eq!(tables.role_sees.len(), EventType::ALL.len());
        assert_eq!(tables.scope_covers.len(), EventType::ALL.len());
        assert_eq!(tables.may_ask.len(), Role::ALL.len());
        assert_eq!(
            tables.role_sees_category.len(),
            SensitiveCategory::ALL.len()
        );
        tables
    }

    fn role_column(role: Role) -> usize {
        Role::ALL.iter().position(|r| *r == role).unwrap()
    }

    fn may_ask(&self, role: Role, scope: Scope) -> bool {
        let column = Scope::ALL.iter().position(|s| *s == scope).unwrap();
        self.may_ask[role.as_str()][column]
    }

    fn shows_type(&self, role: Role, scope: Scope, event_type: EventType) -> bool {
        let column = Scope::ALL.iter().position(|s| *s == scope).unwrap();
        self.role_sees[event_type.as_str()][Self::role_column(role)]
            && self.scope_covers[event_type.as_str()][column]
    }

    fn sees_category(&self, role: Role, category: SensitiveCategory) -> bool {
        self.role_sees_category[category.as_str()][Self::role_column(role)]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Facts {
    None,
    RecentContact,
    ExpiredContact,
    CareTeam,
    EndedCareTeam,
    RegisteredPractice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BreakGlassState {
    None,
    Active,
    Expired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// A staff role, or a patient whose token names this patient.
    Own,
    /// A patient whose token names another patient.
    Other,
    /// A patient token without an NHS number.
    Missing,
}

#[derive(Debug, Clone, Copy)]
struct Row {
    role: Option<Role>,
    token: Token,
    scope: Scope,
    full_history: bool,
    facts: Facts,
    break_glass: BreakGlassState,
    break_glass_reason_ok: bool,
    category: Option<SensitiveCategory>,
    choice: SharingChoice,
}

/// The expected decision, from the tables and the rules of docs/access-model.md.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    permit: bool,
    tier: Option<&'static str>,
    reasons: BTreeSet<&'static str>,
    /// The row's category: visible, or withheld with this reason.
    category: Option<Result<(), &'static str>>,
    history_limited: bool,
}

impl Expected {
    fn deny(reasons: BTreeSet<&'static str>) -> Self {
        Self {
            permit: false,
            tier: None,
            reasons,
            category: None,
            history_limited: false,
        }
    }
}

fn expected(t: &Tables, row: &Row) -> Expected {
    let mut expected = expected_before_categories_of_denials(t, row);
    if !expected.permit {
        // A denial makes nothing visible.
        expected.category = row.category.map(|_| Err("access-denied"));
    }
    expected
}

fn expected_before_categories_of_denials(t: &Tables, row: &Row) -> Expected {
    let Some(role) = row.role else {
        return Expected::deny(["unknown-role"].into());
    };
    if role == Role::Patient {
        return match row.token {
            Token::Missing => Expected::deny(["patient-token-without-nhs-number"].into()),
            Token::Other => Expected::deny(["patient-not-own-record"].into()),
            Token::Own if !t.may_ask(role, row.scope) => {
                Expected::deny(["role-not-permitted-scope"].into())
            }
            Token::Own => Expected {
                permit: true,
                tier: Some("full"),
                reasons: ["patient-own-record"].into(),
                category: row.category.map(|c| {
                    if t.sees_category(role, c) {
                        Ok(())
                    } else {
                        Err("role-not-permitted-category")
                    }
                }),
                history_limited: false,
            },
        };
    }
    let break_glass =
        row.break_glass == BreakGlassState::Active && t.may_ask(role, Scope::BreakGlass);
    let mut reasons: BTreeSet<&str> = BTreeSet::new();
    if break_glass {
        reasons.insert("break-glass");
    }
    if matches!(
        row.scope,
        Scope::PatientRecord | Scope::AccessLog | Scope::Choices
    ) {
        reasons.insert("patient-only-scope");
        return Expected::deny(reasons);
    }
    if !t.may_ask(role, row.scope) {
        reasons.insert("role-not-permitted-scope");
        return Expected::deny(reasons);
    }
    if row.scope == Scope::BreakGlass {
        if !row.break_glass_reason_ok {
            reasons.insert("break-glass-reason-too-short");
            return Expected::deny(reasons);
        }
        reasons.insert("break-glass");
        return Expected {
            permit: true,
            tier: Some("full"),
            reasons,
            category: row.category.map(|_| Err("access-denied")),
            history_limited: false,
        };
    }
    let relationship = match row.facts {
        Facts::RecentContact => Some("recent-contact"),
        Facts::CareTeam => Some("care-team"),
        Facts::RegisteredPractice => Some("registered-practice"),
        Facts::None | Facts::ExpiredContact | Facts::EndedCareTeam => None,
    };
    reasons.extend(relationship);
    let tier = if row.scope == Scope::EmergencySummary {
        reasons.insert("emergency-tier");
        if relationship.is_none() {
            reasons.insert("no-legitimate-relationship");
        }
        "emergency-summary"
    } else {
        let full_allowed =
            break_glass || matches!(row.facts, Facts::CareTeam | Facts::RegisteredPractice);
        let direct_allowed = full_allowed || row.facts == Facts::RecentContact;
        if !direct_allowed {
            reasons.insert("no-legitimate-relationship");
            return Expected::deny(reasons);
        }
        if row.full_history && !full_allowed {
            reasons.insert("full-tier-not-qualified");
        }
        if row.full_history && full_allowed {
            "full"
        } else {
            "direct-care"
        }
    };
    let category = row.category.map(|c| {
        if !t.sees_category(role, c) {
            return Err("role-not-permitted-category");
        }
        match row.choice {
            SharingChoice::Share => Ok(()),
            SharingChoice::Withhold => {
                reasons.insert("patient-withheld-category");
                Err("patient-withheld-category")
            }
            SharingChoice::WithholdExceptEmergency
                if tier == "emergency-summary" || break_glass =>
            {
                reasons.insert("patient-choice-emergency-override");
                Ok(())
            }
            SharingChoice::WithholdExceptEmergency => {
                reasons.insert("patient-withheld-category");
                Err("patient-withheld-except-emergency")
            }
        }
    });
    Expected {
        permit: true,
        tier: Some(tier),
        reasons,
        category,
        history_limited: tier == "direct-care",
    }
}

fn context(row: &Row) -> Context {
    let mut context = Context::at(NOW);
    context.relationship = match row.facts {
        Facts::None => Relationship::default(),
        Facts::RecentContact => Relationship {
            last_contact_at: Some(NOW - 30 * DAY),
            ..Relationship::default()
        },
        Facts::ExpiredContact => Relationship {
            last_contact_at: Some(NOW - 366 * DAY),
            ..Relationship::default()
        },
        Facts::CareTeam => Relationship {
            care_team_until: Some(NOW + DAY),
            ..Relationship::default()
        },
        Facts::EndedCareTeam => Relationship {
            care_team_until: Some(NOW - 1),
            ..Relationship::default()
        },
        Facts::RegisteredPractice => Relationship {
            registered_practice: true,
            ..Relationship::default()
        },
    };
    context.break_glass = match row.break_glass {
        BreakGlassState::None => None,
        BreakGlassState::Active => Some(ActiveBreakGlass {
            reason: "unconscious in resus, no history available".into(),
            expires_at: NOW + 60_000,
        }),
        BreakGlassState::Expired => Some(ActiveBreakGlass {
            reason: "unconscious in resus, no history available".into(),
            expires_at: NOW,
        }),
    };
    if let Some(c) = row.category {
        context.choices.insert(c, row.choice);
    }
    context
}

fn run(row: &Row) -> Decision {
    let own = match row.token {
        Token::Own => Some(nhs(PATIENT)),
        Token::Other => Some(nhs(OTHER)),
        Token::Missing => None,
    };
    let subject = Subject {
        role: row.role.ok_or_else(|| "surgeon-general".to_owned()),
        own_nhs_number: own,
    };
    let request = Request {
        scope: row.scope,
        full_history: row.full_history,
        break_glass_reason: Some(if row.break_glass_reason_ok {
            "  patient unconscious  ".into()
        } else {
            "  urgent  ".into()
        }),
    };
    decide(&subject, &nhs(PATIENT), &request, &context(row))
}

/// Every row of the matrix.
fn rows() -> Vec<Row> {
    let roles = Role::ALL.into_iter().map(Some).chain([None]);
    let mut rows = vec![];
    for role in roles {
        let tokens: &[Token] = if role == Some(Role::Patient) {
            &[Token::Own, Token::Other, Token::Missing]
        } else {
            &[Token::Own]
        };
        for &token in tokens {
            for scope in Scope::ALL {
                let reason_ok: &[bool] = if scope == Scope::BreakGlass {
                    &[true, false]
                } else {
                    &[true]
                };
                for &break_glass_reason_ok in reason_ok {
                    for full_history in [false, true] {
                        for facts in [
                            Facts::None,
                            Facts::RecentContact,
                            Facts::ExpiredContact,
                            Facts::CareTeam,
                            Facts::EndedCareTeam,
                            Facts::RegisteredPractice,
                        ] {
                            for break_glass in [
                                BreakGlassState::None,
                                BreakGlassState::Active,
                                BreakGlassState::Expired,
                            ] {
                                let categories =
                                    SensitiveCategory::ALL.into_iter().map(Some).chain([None]);
                                for category in categories {
                                    let choices: &[SharingChoice] = if category.is_some() {
                                        &[
                                            SharingChoice::Share,
                                            SharingChoice::Withhold,
                                            SharingChoice::WithholdExceptEmergency,
                                        ]
                                    } else {
                                        &[SharingChoice::Share]
                                    };
                                    for &choice in choices {
                                        rows.push(Row {
                                            role,
                                            token,
                                            scope,
                                            full_history,
                                            facts,
                                            break_glass,
                                            break_glass_reason_ok,
                                            category,
                                            choice,
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    rows
}

#[test]
fn every_decision_of_the_matrix_matches_the_tables() {
    let tables = Tables::new();
    let stays_current: BTreeSet<&str> = STAYS_CURRENT.iter().copied().collect();
    let (recent, old) = (NOW - DAY, NOW - 4 * 365 * DAY);
    let mut emitted = BTreeSet::new();
    let rows = rows();
    for row in &rows {
        let got = run(row);
        let want = expected(&tables, row);
        let got_category = row.category.map(|c| match got.visibility.categories[&c] {
            CategoryAccess::Visible => Ok(()),
            CategoryAccess::Withheld(reason) => Err(reason.as_str()),
        });
        assert_eq!(
            Expected {
                permit: got.permit,
                tier: got.tier.map(|t| t.as_str()),
                reasons: got.reason_codes().into_iter().collect(),
                category: got_category,
                history_limited: got.visibility.history_from.is_some(),
            },
            want,
            "{row:?}"
        );
        assert_eq!(
            got.break_glass_until.is_some(),
            got.permit && row.scope == Scope::BreakGlass,
            "{row:?}"
        );
        let labels: Vec<String> = row.category.iter().map(|c| c.as_str().into()).collect();
        for &event_type in EventType::ALL {
            let shown = want.permit
                && row
                    .role
                    .is_some_and(|r| tables.shows_type(r, row.scope, event_type))
                && want.category.is_none_or(|c| c.is_ok());
            assert_eq!(
                got.visibility.allows(event_type, recent, &labels),
                shown,
                "{row:?} {event_type:?} recent"
            );
            let old_shown =
                shown && (!want.history_limited || stays_current.contains(event_type.as_str()));
            assert_eq!(
                got.visibility.allows(event_type, old, &labels),
                old_shown,
                "{row:?} {event_type:?} old"
            );
        }
        emitted.extend(got.reasons.iter().copied());
        emitted.extend(got.visibility.withheld().map(|(_, reason)| reason));
    }
    assert!(rows.len() > 100_000, "{} rows", rows.len());
    assert_eq!(
        emitted,
        ReasonCode::ALL.into_iter().collect(),
        "the matrix reaches every reason code, and every code it reaches is listed"
    );
}

#[test]
fn a_label_that_is_not_a_known_category_hides_the_entry_from_everyone() {
    let tables = Tables::new();
    for role in Role::ALL {
        let row = Row {
            role: Some(role),
            token: Token::Own,
            scope: Scope::Timeline,
            full_history: true,
            facts: Facts::CareTeam,
            break_glass: BreakGlassState::Active,
            break_glass_reason_ok: true,
            category: None,
            choice: SharingChoice::Share,
        };
        let decision = run(&row);
        for &event_type in EventType::ALL {
            let visible = decision.visibility.allows(event_type, NOW, &[]);
            assert_eq!(
                visible,
                tables.may_ask(role, Scope::Timeline)
                    && tables.shows_type(role, Scope::Timeline, event_type),
                "{role:?} {event_type:?}"
            );
            for labels in [vec!["unheard-of"], vec!["unheard-of", "mental-health"]] {
                let labels: Vec<String> = labels.into_iter().map(String::from).collect();
                assert!(
                    !decision.visibility.allows(event_type, NOW, &labels),
                    "{role:?} {event_type:?} {labels:?}"
                );
            }
        }
    }
}

#[test]
fn break_glass_lasts_the_configured_time_and_needs_a_reason() {
    let subject = Subject {
        role: Ok(Role::Paramedic),
        own_nhs_number: None,
    };
    let mut context = Context::at(NOW);
    context.settings.break_glass_duration = 15 * 60_000;
    context.settings.break_glass_min_reason_chars = 20;
    let ask = |reason: Option<&str>| {
        decide(
            &subject,
            &nhs(PATIENT),
            &Request {
                break_glass_reason: reason.map(String::from),
                ..Request::direct_care(Scope::BreakGlass)
            },
            &context,
        )
    };
    let granted = ask(Some("cardiac arrest, no history at hand"));
    assert_eq!(
        (granted.permit, granted.break_glass_until),
        (true, Some(NOW + 15 * 60_000))
    );
    for short in [
        None,
        Some(""),
        Some("    twelve chars  "),
        Some("!!!!!!!!!!!!!!!!!!!!!!!! ----------------"),
        Some("\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}\u{200b}"),
        Some("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
        Some("a b c d e f g h i j k l m n o p q r s"),
    ] {
        let refused = ask(short);
        assert_eq!(
            (refused.permit, refused.reason_codes()),
            (false, vec!["break-glass-reason-too-short"]),
            "{short:?}"
        );
    }
}

#[test]
fn a_relationship_lasts_the_configured_window() {
    let subject = Subject {
        role: Ok(Role::Nurse),
        own_nhs_number: None,
    };
    let mut context = Context::at(NOW);
    context.settings.relationship_window = 10 * DAY;
    for (contact, permit) in [(NOW - 10 * DAY, true), (NOW - 10 * DAY - 1, false)] {
        context.relationship.last_contact_at = Some(contact);
        let decision = decide(
            &subject,
            &nhs(PATIENT),
            &Request::direct_care(Scope::Timeline),
            &context,
        );
        assert_eq!(decision.permit, permit, "contact at {contact}");
    }
}

#[test]
fn role_names_round_trip() {
    for role in Role::ALL {
        assert_eq!(role.as_str().parse::<Role>(), Ok(role));
    }
    assert!("surgeon-general".parse::<Role>().is_err());
}
