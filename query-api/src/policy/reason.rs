//! Reason codes: the stable kebab-case strings a decision records in the access event,
//! returns on a denial, and gives for each withheld sensitive category. They are part of
//! the audit record, so a code is never renamed; docs/access-model.md lists them all.

/// Why a decision went the way it did, or why a category is withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReasonCode {
    /// Deny: the token's role is not one the policy knows.
    UnknownRole,
    /// Deny: a patient token without a usable NHS number.
    PatientTokenWithoutNhsNumber,
    /// Deny: a patient asked for someone else's record.
    PatientNotOwnRecord,
    /// Deny: staff asked for a scope only the patient may use.
    PatientOnlyScope,
    /// Deny: the role may not use this scope.
    RoleNotPermittedScope,
    /// Deny (or, for the emergency summary, a flagged permit): no legitimate relationship.
    NoLegitimateRelationship,
    /// Deny: a break-glass request without a long enough reason.
    BreakGlassReasonTooShort,
    /// Permit: the patient's own record.
    PatientOwnRecord,
    /// Permit: the subject's organisation had contact within the relationship window.
    RecentContact,
    /// Permit: the subject's organisation is on the patient's care team.
    CareTeam,
    /// Permit: the subject's organisation is the patient's registered GP practice.
    RegisteredPractice,
    /// Permit: the emergency summary tier.
    EmergencyTier,
    /// Break-glass: started by this request, or active for this subject and patient.
    BreakGlass,
    /// The full tier was asked for but only the direct-care tier was granted.
    FullTierNotQualified,
    /// The patient withheld a category this role could otherwise see.
    PatientWithheldCategory,
    /// A category withheld except in an emergency is shown, because this is one.
    PatientChoiceEmergencyOverride,
    /// Category withheld: this role never sees it.
    RoleNotPermittedCategory,
    /// Category withheld: the patient chose to withhold it except in an emergency.
    PatientWithheldExceptEmergency,
    /// Category withheld: the request was denied, so nothing is visible.
    AccessDenied,
}

impl ReasonCode {
    /// Every code, for the documentation test.
    pub const ALL: [ReasonCode; 19] = [
        ReasonCode::UnknownRole,
        ReasonCode::PatientTokenWithoutNhsNumber,
        ReasonCode::PatientNotOwnRecord,
        ReasonCode::PatientOnlyScope,
        ReasonCode::RoleNotPermittedScope,
        ReasonCode::NoLegitimateRelationship,
        ReasonCode::BreakGlassReasonTooShort,
        ReasonCode::PatientOwnRecord,
        ReasonCode::RecentContact,
        ReasonCode::CareTeam,
        ReasonCode::RegisteredPractice,
        ReasonCode::EmergencyTier,
        ReasonCode::BreakGlass,
        ReasonCode::FullTierNotQualified,
        ReasonCode::PatientWithheldCategory,
        ReasonCode::PatientChoiceEmergencyOverride,
        ReasonCode::RoleNotPermittedCategory,
        ReasonCode::PatientWithheldExceptEmergency,
        ReasonCode::AccessDenied,
    ];

    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::UnknownRole => "unknown-role",
            ReasonCode::PatientTokenWithoutNhsNumber => "patient-token-without-nhs-number",
            ReasonCode::PatientNotOwnRecord => "patient-not-own-record",
            ReasonCode::PatientOnlyScope => "patient-only-scope",
            ReasonCode::RoleNotPermittedScope => "role-not-permitted-scope",
            ReasonCode::NoLegitimateRelationship => "no-legitimate-relationship",
            ReasonCode::BreakGlassReasonTooShort => "break-glass-reason-too-short",
            ReasonCode::PatientOwnRecord => "patient-own-record",
            ReasonCode::RecentContact => "recent-contact",
            ReasonCode::CareTeam => "care-team",
            ReasonCode::RegisteredPractice => "registered-practice",
            ReasonCode::EmergencyTier => "emergency-tier",
            ReasonCode::BreakGlass => "break-glass",
            ReasonCode::FullTierNotQualified => "full-tier-not-qualified",
            ReasonCode::PatientWithheldCategory => "patient-withheld-category",
            ReasonCode::PatientChoiceEmergencyOverride => "patient-choice-emergency-override",
            ReasonCode::RoleNotPermittedCategory => "role-not-permitted-category",
            ReasonCode::PatientWithheldExceptEmergency => "patient-withheld-except-emergency",
            ReasonCode::AccessDenied => "access-denied",
        }
    }
}
