//! The policy's vocabulary: roles, scopes (what is asked for) and tiers (how much).

use std::str::FromStr;

/// Job roles, modelled on NHS national RBAC baseline roles, plus patients themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Doctor (GP, hospital doctor).
    Clinician,
    /// Registered nurse.
    Nurse,
    /// Registered midwife.
    Midwife,
    /// Pharmacist.
    Pharmacist,
    /// Paramedic.
    Paramedic,
    /// Social worker.
    SocialWorker,
    /// Administrative or reception staff.
    Administrative,
    /// The patient, for their own record.
    Patient,
}

impl Role {
    /// Every role, for exhaustive tests and token minting.
    pub const ALL: [Role; 8] = [
        Role::Clinician,
        Role::Nurse,
        Role::Midwife,
        Role::Pharmacist,
        Role::Paramedic,
        Role::SocialWorker,
        Role::Administrative,
        Role::Patient,
    ];

    /// The name used in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clinician => "clinician",
            Role::Nurse => "nurse",
            Role::Midwife => "midwife",
            Role::Pharmacist => "pharmacist",
            Role::Paramedic => "paramedic",
            Role::SocialWorker => "social-worker",
            Role::Administrative => "administrative",
            Role::Patient => "patient",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}"))
    }
}

/// What a request asks for: one view of the record, or one of the patient's own
/// functions, or a break-glass elevation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// The time-ordered clinical record.
    Timeline,
    /// The emergency summary: allergies, current medications, active problems, alerts
    /// and the latest observations. The only scope of the emergency tier.
    EmergencySummary,
    /// Pregnancy, antenatal care and birth, with what maternity care needs alongside.
    MaternityView,
    /// Medication reconciliation: medicines with allergies, conditions and results.
    MedicationView,
    /// Discharge: the admission, its summary, medicines and follow-up.
    DischargeView,
    /// Social care: safeguarding, care plans, who is involved, demographics.
    SocialCareView,
    /// Administration: demographics, appointments and admissions, referrals.
    AdministrationView,
    /// The whole record as FHIR, for transfer of care.
    FhirExport,
    /// The patient's own record (`/me/record`).
    PatientRecord,
    /// Who accessed the record (`/me/access-log`).
    AccessLog,
    /// The patient's sharing choices, read or update (`/me/choices`).
    Choices,
    /// Asking to break glass: a time-limited elevation without a relationship.
    BreakGlass,
}

impl Scope {
    /// Every scope, for exhaustive tests.
    pub const ALL: [Scope; 12] = [
        Scope::Timeline,
        Scope::EmergencySummary,
        Scope::MaternityView,
        Scope::MedicationView,
        Scope::DischargeView,
        Scope::SocialCareView,
        Scope::AdministrationView,
        Scope::FhirExport,
        Scope::PatientRecord,
        Scope::AccessLog,
        Scope::Choices,
        Scope::BreakGlass,
    ];

    /// The access event's action name.
    pub fn action(self) -> &'static str {
        match self {
            Scope::Timeline => "timeline.read",
            Scope::EmergencySummary => "summary.read",
            Scope::MaternityView => "maternity.read",
            Scope::MedicationView => "medication.read",
            Scope::DischargeView => "discharge.read",
            Scope::SocialCareView => "social-care.read",
            Scope::AdministrationView => "administration.read",
            Scope::FhirExport => "fhir-export.read",
            Scope::PatientRecord => "record.read",
            Scope::AccessLog => "access-log.read",
            Scope::Choices => "choices",
            Scope::BreakGlass => "break-glass.start",
        }
    }

    /// Whether only the patient may ask for this scope.
    pub fn is_for_the_patient_only(self) -> bool {
        matches!(
            self,
            Scope::PatientRecord | Scope::AccessLog | Scope::Choices
        )
    }
}

/// How much of the record a decision grants, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// The emergency summary, available to clinical roles without a relationship.
    EmergencySummary,
    /// The current record and recent history, for a legitimate relationship.
    DirectCare,
    /// The whole history, for the registered practice, the care team or break-glass.
    Full,
}

impl Tier {
    /// The name used in documents and access events.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::EmergencySummary => "emergency-summary",
            Tier::DirectCare => "direct-care",
            Tier::Full => "full",
        }
    }
}
