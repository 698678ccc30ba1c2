//! The policy's tables, written down once: what each role may ask for and may see, what
//! each scope covers, and which kinds of event stay current however old they are.
//! docs/access-model.md gives the same tables in words, with the reasons for them.

use spr_schemas::{EventType as T, SensitiveCategory as C};

use super::{Role, Scope};

const MEDICATIONS: [T; 3] = [
    T::MedicationPrescribed,
    T::MedicationDispensed,
    T::MedicationStopped,
];

/// The emergency summary: allergies, current medications, active problems, alerts
/// (safeguarding flags, pregnancy, care plans such as advance care plans), the latest
/// observations, and who the patient is.
const EMERGENCY_SUMMARY: &[T] = &[
    T::Allergy,
    T::MedicationPrescribed,
    T::MedicationDispensed,
    T::MedicationStopped,
    T::Condition,
    T::Observation,
    T::SafeguardingFlag,
    T::PregnancyEpisode,
    T::CarePlan,
    T::Demographics,
];

const MATERNITY: &[T] = &[
    T::PregnancyEpisode,
    T::AntenatalVisit,
    T::Birth,
    T::Allergy,
    T::MedicationPrescribed,
    T::MedicationDispensed,
    T::MedicationStopped,
    T::Condition,
    T::Observation,
    T::DiagnosticReport,
    T::Encounter,
    T::Referral,
    T::CarePlan,
    T::SafeguardingFlag,
    T::Immunisation,
    T::Demographics,
    T::CareTeam,
];

const MEDICATION_RECONCILIATION: &[T] = &[
    T::MedicationPrescribed,
    T::MedicationDispensed,
    T::MedicationStopped,
    T::Allergy,
    T::Condition,
    T::Observation,
    T::DiagnosticReport,
    T::PregnancyEpisode,
    T::DischargeSummary,
    T::Immunisation,
    T::Demographics,
];

const DISCHARGE: &[T] = &[
    T::DischargeSummary,
    T::Encounter,
    T::MedicationPrescribed,
    T::MedicationDispensed,
    T::MedicationStopped,
    T::Allergy,
    T::Condition,
    T::Procedure,
    T::CarePlan,
    T::Referral,
    T::SafeguardingFlag,
    T::CareTeam,
    T::Demographics,
];

const SOCIAL_CARE: &[T] = &[
    T::SafeguardingFlag,
    T::CarePlan,
    T::CareTeam,
    T::Referral,
    T::Demographics,
];

const ADMINISTRATION: &[T] = &[
    T::Demographics,
    T::Encounter,
    T::Referral,
    T::CareTeam,
    T::NhsNumberMerge,
];

/// The event types a role may ever see (data minimisation), whatever it asks for.
pub(crate) fn role_sees(role: Role, event_type: T) -> bool {
    match role {
        // Staff never see the consent events themselves: the choices are applied instead.
        Role::Clinician | Role::Nurse => event_type != T::ConsentChoice,
        // Safeguarding flags could put the patient at risk from whoever reads their app.
        Role::Patient => event_type != T::SafeguardingFlag,
        Role::Midwife => MATERNITY.contains(&event_type) || event_type == T::DischargeSummary,
        Role::Pharmacist => MEDICATION_RECONCILIATION.contains(&event_type),
        Role::Paramedic => {
            EMERGENCY_SUMMARY.contains(&event_type)
                || matches!(event_type, T::Encounter | T::CareTeam)
        }
        Role::SocialWorker => SOCIAL_CARE.contains(&event_type),
        Role::Administrative => ADMINISTRATION.contains(&event_type),
    }
}

/// The event types a scope covers.
pub(crate) fn scope_covers(scope: Scope, event_type: T) -> bool {
    match scope {
        Scope::Timeline | Scope::FhirExport | Scope::PatientRecord => true,
        Scope::EmergencySummary => EMERGENCY_SUMMARY.contains(&event_type),
        Scope::MaternityView => MATERNITY.contains(&event_type),
        Scope::MedicationView => MEDICATION_RECONCILIATION.contains(&event_type),
        Scope::DischargeView => DISCHARGE.contains(&event_type),
        Scope::SocialCareView => SOCIAL_CARE.contains(&event_type),
        Scope::AdministrationView => ADMINISTRATION.contains(&event_type),
        Scope::Choices => event_type == T::ConsentChoice,
        Scope::AccessLog | Scope::BreakGlass => false,
    }
}

/// The scopes a role may ask for.
pub(crate) fn role_may_ask(role: Role, scope: Scope) -> bool {
    use Scope::*;
    let scopes: &[Scope] = match role {
        Role::Clinician => &[
            Timeline,
            EmergencySummary,
            MaternityView,
            MedicationView,
            DischargeView,
            FhirExport,
            BreakGlass,
        ],
        Role::Nurse | Role::Midwife => &[
            Timeline,
            EmergencySummary,
            MaternityView,
            MedicationView,
            DischargeView,
            BreakGlass,
        ],
        Role::Pharmacist => &[EmergencySummary, MedicationView, DischargeView],
        Role::Paramedic => &[Timeline, EmergencySummary, BreakGlass],
        Role::SocialWorker => &[SocialCareView, DischargeView],
        Role::Administrative => &[AdministrationView],
        Role::Patient => &[
            PatientRecord,
            AccessLog,
            Choices,
            Timeline,
            EmergencySummary,
        ],
    };
    scopes.contains(&scope)
}

/// The sensitive categories a role may ever see, if the patient shares them.
pub(crate) fn role_sees_category(role: Role, category: C) -> bool {
    let categories: &[C] = match role {
        Role::Clinician | Role::Nurse => &C::ALL,
        Role::Midwife => &[
            C::SexualHealth,
            C::MentalHealth,
            C::HivSti,
            C::Fertility,
            C::TerminationOfPregnancy,
            C::Safeguarding,
        ],
        Role::Pharmacist => &[
            C::SexualHealth,
            C::MentalHealth,
            C::HivSti,
            C::GenderIdentity,
            C::Fertility,
            C::Genomics,
        ],
        Role::Paramedic | Role::SocialWorker => &[C::MentalHealth, C::Safeguarding],
        Role::Administrative => &[],
        Role::Patient => &[
            C::SexualHealth,
            C::MentalHealth,
            C::HivSti,
            C::GenderIdentity,
            C::Fertility,
            C::TerminationOfPregnancy,
            C::Genomics,
        ],
    };
    categories.contains(&category)
}

/// Kinds of event that stay clinically current however old they are, so the
/// direct-care tier shows them whatever their date. Every other kind (encounters,
/// observations, results, procedures, discharges, referrals, pregnancies, births) is
/// history: the direct-care tier shows only its recent part.
pub(crate) fn stays_current(event_type: T) -> bool {
    MEDICATIONS.contains(&event_type)
        || matches!(
            event_type,
            T::Allergy
                | T::Condition
                | T::Immunisation
                | T::SafeguardingFlag
                | T::CarePlan
                | T::Demographics
                | T::CareTeam
                | T::GenomicResult
                | T::ConsentChoice
                | T::NhsNumberMerge
        )
}
