//! The access policy: one pure function, [`decide`], from who is asking, for whose
//! record, for what, and the facts the API gathered beforehand, to a [`Decision`]: permit
//! or deny, the tier granted, what is visible, and the reason codes. It does no I/O.
//! Every endpoint that returns patient data asks it first. docs/access-model.md describes
//! the policy in words for review; the tables are in [`table`].

mod reason;
mod table;
mod visibility;
mod vocabulary;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use spr_schemas::{EpochMillis, EventType, NhsNumber, SensitiveCategory, SharingChoice};

pub use reason::ReasonCode;
pub use visibility::{CategoryAccess, Visibility};
pub use vocabulary::{Role, Scope, Tier};

const MINUTE: EpochMillis = 60 * 1000;
const DAY: EpochMillis = 24 * 60 * MINUTE;

/// Who is asking, as far as the policy needs to know. The relationship facts in
/// [`Context`] were gathered for the subject's organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Their role, or the unrecognised role text from the token.
    pub role: Result<Role, String>,
    /// For patients: their own NHS number.
    pub own_nhs_number: Option<NhsNumber>,
}

/// What is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The scope.
    pub scope: Scope,
    /// Asks for the full tier (the whole history) rather than the direct-care tier. The
    /// emergency summary scope is always the emergency tier; patients always get their
    /// whole record.
    pub full_history: bool,
    /// For [`Scope::BreakGlass`]: the reason the person gives.
    pub break_glass_reason: Option<String>,
}

impl Request {
    /// A request for `scope` at the direct-care tier.
    pub fn direct_care(scope: Scope) -> Self {
        Self {
            scope,
            full_history: false,
            break_glass_reason: None,
        }
    }
}

/// Facts about the subject's organisation and the patient, gathered by the API from the
/// projection (encounter, referral, care-team and demographics events).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relationship {
    /// The latest encounter, referral or care-team event at the subject's ODS code.
    pub last_contact_at: Option<EpochMillis>,
    /// The end of an explicit care-team assignment of the subject's organisation.
    pub care_team_until: Option<EpochMillis>,
    /// The subject's organisation is the patient's registered GP practice.
    pub registered_practice: bool,
}

/// A break-glass elevation previously granted to this subject for this patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveBreakGlass {
    /// The reason given when glass was broken.
    pub reason: String,
    /// When the elevation ends.
    pub expires_at: EpochMillis,
}

/// The policy's configurable durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicySettings {
    /// How long after a contact the relationship lasts.
    pub relationship_window: EpochMillis,
    /// How far back the direct-care tier shows history.
    pub direct_care_history: EpochMillis,
    /// How long a break-glass elevation lasts.
    pub break_glass_duration: EpochMillis,
    /// The fewest letters and digits a break-glass reason needs (spaces, punctuation,
    /// control and invisible characters do not count).
    pub break_glass_min_reason_chars: usize,
}

impl Default for PolicySettings {
    /// 365 days, 3 years, 60 minutes, 10 letters or digits.
    fn default() -> Self {
        Self {
            relationship_window: 365 * DAY,
            direct_care_history: 3 * 365 * DAY,
            break_glass_duration: 60 * MINUTE,
            break_glass_min_reason_chars: 10,
        }
    }
}

/// Everything else the decision depends on, gathered before calling [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The current time.
    pub now: EpochMillis,
    /// The subject's organisation's relationship with the patient.
    pub relationship: Relationship,
    /// The patient's sharing choices; a missing category is shared.
    pub choices: HashMap<SensitiveCategory, SharingChoice>,
    /// The subject's break-glass for this patient, if any (possibly expired).
    pub break_glass: Option<ActiveBreakGlass>,
    /// Durations.
    pub settings: PolicySettings,
}

impl Context {
    /// No relationship, no choices (everything shared), no break-glass, default settings.
    pub fn at(now: EpochMillis) -> Self {
        Self {
            now,
            relationship: Relationship::default(),
            choices: HashMap::new(),
            break_glass: None,
            settings: PolicySettings::default(),
        }
    }
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether data may be returned (or, for break-glass, the elevation started).
    pub permit: bool,
    /// The tier granted; `None` on a denial.
    pub tier: Option<Tier>,
    /// What may be shown; nothing on a denial.
    pub visibility: Visibility,
    /// Reason codes, recorded in the access event and returned on a denial.
    pub reasons: BTreeSet<ReasonCode>,
    /// For a permitted break-glass request: when the elevation ends.
    pub break_glass_until: Option<EpochMillis>,
}

impl Decision {
    fn deny(reasons: impl IntoIterator<Item = ReasonCode>) -> Self {
        Self {
            permit: false,
            tier: None,
            visibility: Visibility::nothing(),
            reasons: reasons.into_iter().collect(),
            break_glass_until: None,
        }
    }

    /// The reason codes as their stable strings, in a fixed order.
    pub fn reason_codes(&self) -> Vec<&'static str> {
        self.reasons.iter().map(|r| r.as_str()).collect()
    }
}

/// Decides whether `subject` may have `request` of `patient`'s record, given `context`,
/// and what they may see. The rules are those of docs/access-model.md.
pub fn decide(
    subject: &Subject,
    patient: &NhsNumber,
    request: &Request,
    context: &Context,
) -> Decision {
    match &subject.role {
        Err(_) => Decision::deny([ReasonCode::UnknownRole]),
        Ok(Role::Patient) => decide_for_patient(subject.own_nhs_number, patient, request.scope),
        Ok(role) => decide_for_staff(*role, request, context),
    }
}

fn decide_for_patient(own: Option<NhsNumber>, patient: &NhsNumber, scope: Scope) -> Decision {
    match own {
        None => Decision::deny([ReasonCode::PatientTokenWithoutNhsNumber]),
        Some(own) if own != *patient => Decision::deny([ReasonCode::PatientNotOwnRecord]),
        Some(_) if !table::role_may_ask(Role::Patient, scope) => {
            Decision::deny([ReasonCode::RoleNotPermittedScope])
        }
        Some(_) => Decision {
            permit: true,
            tier: Some(Tier::Full),
            visibility: Visibility {
                event_types: visible_types(Role::Patient, scope),
                history_from: None,
                // The patient's choices are about others; they see their own data.
                categories: SensitiveCategory::ALL
                    .into_iter()
                    .map(|c| (c, role_category_access(Role::Patient, c)))
                    .collect(),
            },
            reasons: [ReasonCode::PatientOwnRecord].into(),
            break_glass_until: None,
        },
    }
}

fn decide_for_staff(role: Role, request: &Request, context: &Context) -> Decision {
    let may_break_glass = table::role_may_ask(role, Scope::BreakGlass);
    let break_glass_active = may_break_glass
        && context
            .break_glass
            .as_ref()
            .is_some_and(|b| b.expires_at > context.now);
    let mut flags = BTreeSet::new();
    if break_glass_active {
        flags.insert(ReasonCode::BreakGlass);
    }
    let scope = request.scope;
    if scope.is_for_the_patient_only() {
        flags.insert(ReasonCode::PatientOnlyScope);
        return Decision::deny(flags);
    }
    if !table::role_may_ask(role, scope) {
        flags.insert(ReasonCode::RoleNotPermittedScope);
        return Decision::deny(flags);
    }
    if scope == Scope::BreakGlass {
        return start_break_glass(request, context, flags);
    }
    let relationship = relationship_reasons(context);
    flags.extend(relationship.iter().copied());
    let tier = if scope == Scope::EmergencySummary {
        flags.insert(ReasonCode::EmergencyTier);
        if relationship.is_empty() {
            flags.insert(ReasonCode::NoLegitimateRelationship);
        }
        Tier::EmergencySummary
    } else {
        let qualified = if break_glass_active
            || relationship.contains(&ReasonCode::CareTeam)
            || relationship.contains(&ReasonCode::RegisteredPractice)
        {
            Tier::Full
        } else if relationship.contains(&ReasonCode::RecentContact) {
            Tier::DirectCare
        } else {
            flags.insert(ReasonCode::NoLegitimateRelationship);
            return Decision::deny(flags);
        };
        let asked = if request.full_history {
            Tier::Full
        } else {
            Tier::DirectCare
        };
        if asked > qualified {
            flags.insert(ReasonCode::FullTierNotQualified);
        }
        asked.min(qualified)
    };
    let categories: BTreeMap<_, _> = SensitiveCategory::ALL
        .into_iter()
        .map(|c| {
            let choice = context
                .choices
                .get(&c)
                .copied()
                .unwrap_or(SharingChoice::Share);
            let emergency = tier == Tier::EmergencySummary || break_glass_active;
            (c, staff_category_access(role, c, choice, emergency))
        })
        .collect();
    let visibility = Visibility {
        event_types: visible_types(role, scope),
        history_from: (tier == Tier::DirectCare)
            .then(|| context.now - context.settings.direct_care_history),
        categories,
    };
    if visibility.withheld().any(|(_, r)| {
        matches!(
            r,
            ReasonCode::PatientWithheldCategory | ReasonCode::PatientWithheldExceptEmergency
        )
    }) {
        flags.insert(ReasonCode::PatientWithheldCategory);
    }
    if visibility.categories.iter().any(|(c, a)| {
        *a == CategoryAccess::Visible
            && context.choices.get(c) == Some(&SharingChoice::WithholdExceptEmergency)
    }) {
        flags.insert(ReasonCode::PatientChoiceEmergencyOverride);
    }
    Decision {
        permit: true,
        tier: Some(tier),
        visibility,
        reasons: flags,
        break_glass_until: None,
    }
}

/// A break-glass request: permitted with a long enough reason, for the configured time.
fn start_break_glass(
    request: &Request,
    context: &Context,
    mut flags: BTreeSet<ReasonCode>,
) -> Decision {
    let reason_chars = request
        .break_glass_reason
        .as_deref()
        .map_or(0, |r| r.chars().filter(|c| c.is_alphanumeric()).count());
    if reason_chars < context.settings.break_glass_min_reason_chars {
        flags.insert(ReasonCode::BreakGlassReasonTooShort);
        return Decision::deny(flags);
    }
    flags.insert(ReasonCode::BreakGlass);
    Decision {
        permit: true,
        tier: Some(Tier::Full),
        visibility: Visibility::nothing(),
        reasons: flags,
        break_glass_until: Some(context.now + context.settings.break_glass_duration),
    }
}

/// The relationship facts that hold now, as reason codes.
fn relationship_reasons(context: &Context) -> BTreeSet<ReasonCode> {
    let facts = &context.relationship;
    let mut reasons = BTreeSet::new();
    if facts
        .last_contact_at
        .is_some_and(|at| at >= context.now - context.settings.relationship_window)
    {
        reasons.insert(ReasonCode::RecentContact);
    }
    if facts
        .care_team_until
        .is_some_and(|until| until > context.now)
    {
        reasons.insert(ReasonCode::CareTeam);
    }
    if facts.registered_practice {
        reasons.insert(ReasonCode::RegisteredPractice);
    }
    reasons
}

fn visible_types(role: Role, scope: Scope) -> BTreeSet<EventType> {
    EventType::ALL
        .iter()
        .copied()
        .filter(|t| table::scope_covers(scope, *t) && table::role_sees(role, *t))
        .collect()
}

fn role_category_access(role: Role, category: SensitiveCategory) -> CategoryAccess {
    if table::role_sees_category(role, category) {
        CategoryAccess::Visible
    } else {
        CategoryAccess::Withheld(ReasonCode::RoleNotPermittedCategory)
    }
}

/// A staff member's access to one category: the role's ceiling, then the patient's choice.
fn staff_category_access(
    role: Role,
    category: SensitiveCategory,
    choice: SharingChoice,
    emergency: bool,
) -> CategoryAccess {
    match (role_category_access(role, category), choice) {
        (withheld @ CategoryAccess::Withheld(_), _) => withheld,
        (visible, SharingChoice::Share) => visible,
        (_, SharingChoice::Withhold) => {
            CategoryAccess::Withheld(ReasonCode::PatientWithheldCategory)
        }
        (visible, SharingChoice::WithholdExceptEmergency) if emergency => visible,
        (_, SharingChoice::WithholdExceptEmergency) => {
            CategoryAccess::Withheld(ReasonCode::PatientWithheldExceptEmergency)
        }
    }
}
