//! The access policy: one pure function from who is asking, for whose record and
//! for what, to a decision with its reasons. Every endpoint that returns patient data
//! asks it first. This is the foundation policy; `docs/access-model.md` describes it.

use std::str::FromStr;

use spr_schemas::NhsNumber;

/// Job roles, modelled on NHS national RBAC baseline roles, plus patients themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// What a request asks to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The full time-ordered record.
    Timeline,
    /// The emergency summary: allergies, medications, latest observations.
    Summary,
    /// Who accessed the record (the patient's own view of the audit ledger).
    AccessLog,
}

impl Scope {
    /// The access event's action name.
    pub fn action(self) -> &'static str {
        match self {
            Scope::Timeline => "timeline.read",
            Scope::Summary => "summary.read",
            Scope::AccessLog => "access-log.read",
        }
    }
}

/// Who is asking, as far as the policy needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// Their role, or the unrecognised role text from the token.
    pub role: Result<Role, String>,
    /// For patients: their own NHS number.
    pub own_nhs_number: Option<NhsNumber>,
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDecision {
    /// Whether data may be returned.
    pub permit: bool,
    /// Reason codes, recorded in the access event and returned on denial.
    pub reasons: Vec<&'static str>,
}

impl PolicyDecision {
    fn permit(reason: &'static str) -> Self {
        Self {
            permit: true,
            reasons: vec![reason],
        }
    }
    fn deny(reason: &'static str) -> Self {
        Self {
            permit: false,
            reasons: vec![reason],
        }
    }
}

/// Decides whether `requester` may see `scope` of `patient`'s record.
pub fn decide(requester: &Requester, patient: &NhsNumber, scope: Scope) -> PolicyDecision {
    let role = match &requester.role {
        Ok(role) => *role,
        Err(_) => return PolicyDecision::deny("unknown-role"),
    };
    match (role, scope) {
        (Role::Patient, _) => match requester.own_nhs_number {
            Some(own) if own == *patient => PolicyDecision::permit("patient-own-record"),
            Some(_) => PolicyDecision::deny("patient-not-own-record"),
            None => PolicyDecision::deny("patient-token-without-nhs-number"),
        },
        (_, Scope::AccessLog) => PolicyDecision::deny("access-log-is-for-the-patient"),
        (Role::Clinician | Role::Nurse | Role::Midwife | Role::Paramedic, _) => {
            PolicyDecision::permit("clinical-role-direct-care")
        }
        (Role::Pharmacist, Scope::Summary) => PolicyDecision::permit("pharmacist-summary"),
        (Role::Pharmacist | Role::SocialWorker | Role::Administrative, _) => {
            PolicyDecision::deny("role-not-permitted-scope")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENT: &str = "9990000018";
    const OTHER: &str = "9434765919";

    fn nhs(s: &str) -> NhsNumber {
        s.parse().unwrap()
    }

    /// The whole decision table: role × scope × (patient's own record or not).
    #[test]
    fn every_role_scope_and_ownership_matches_the_table() {
        use Role::*;
        use Scope::*;
        let table: &[(Role, Scope, bool, bool, &str)] = &[
            (
                Clinician,
                Timeline,
                false,
                true,
                "clinical-role-direct-care",
            ),
            (Clinician, Summary, false, true, "clinical-role-direct-care"),
            (Nurse, Timeline, false, true, "clinical-role-direct-care"),
            (Nurse, Summary, false, true, "clinical-role-direct-care"),
            (Midwife, Timeline, false, true, "clinical-role-direct-care"),
            (Midwife, Summary, false, true, "clinical-role-direct-care"),
            (
                Paramedic,
                Timeline,
                false,
                true,
                "clinical-role-direct-care",
            ),
            (Paramedic, Summary, false, true, "clinical-role-direct-care"),
            (
                Pharmacist,
                Timeline,
                false,
                false,
                "role-not-permitted-scope",
            ),
            (Pharmacist, Summary, false, true, "pharmacist-summary"),
            (
                SocialWorker,
                Timeline,
                false,
                false,
                "role-not-permitted-scope",
            ),
            (
                SocialWorker,
                Summary,
                false,
                false,
                "role-not-permitted-scope",
            ),
            (
                Administrative,
                Timeline,
                false,
                false,
                "role-not-permitted-scope",
            ),
            (
                Administrative,
                Summary,
                false,
                false,
                "role-not-permitted-scope",
            ),
            (Patient, Timeline, true, true, "patient-own-record"),
            (Patient, Summary, true, true, "patient-own-record"),
            (Patient, Timeline, false, false, "patient-not-own-record"),
            (Patient, Summary, false, false, "patient-not-own-record"),
            (Patient, AccessLog, true, true, "patient-own-record"),
            (Patient, AccessLog, false, false, "patient-not-own-record"),
            (
                Clinician,
                AccessLog,
                false,
                false,
                "access-log-is-for-the-patient",
            ),
            (
                Nurse,
                AccessLog,
                false,
                false,
                "access-log-is-for-the-patient",
            ),
            (
                Midwife,
                AccessLog,
                false,
                false,
                "access-log-is-for-the-patient",
            ),
            (
                Paramedic,
                AccessLog,
                false,
                false,
                "access-log-is-for-the-patient",
            ),
            (
                Pharmacist,
                AccessLog,
                false,
                false,
                "access-log-is-for-the-patient",
            ),
            (
                SocialWorker,
                AccessLog,
                false,
                false,
                "access-log-is-for-the-patient",
            ),
            (
                Administrative,
                AccessLog,
                false,
                false,
                "access-log-is-for-the-patient",
            ),
        ];
        for role in Role::ALL {
            for scope in [Timeline, Summary, AccessLog] {
                for own in [true, false] {
                    let requester = Requester {
                        role: Ok(role),
                        own_nhs_number: Some(nhs(if own { PATIENT } else { OTHER })),
                    };
                    let got = decide(&requester, &nhs(PATIENT), scope);
                    let row = table
                        .iter()
                        .find(|(r, s, o, ..)| {
                            *r == role && *s == scope && (*o == own || role != Patient)
                        })
                        .unwrap_or_else(|| panic!("no table row for {role:?} {scope:?} own={own}"));
                    assert_eq!(
                        (got.permit, got.reasons.as_slice()),
                        (row.3, &[row.4][..]),
                        "{role:?} {scope:?} own={own}"
                    );
                }
            }
        }
    }

    #[test]
    fn an_unknown_role_is_denied() {
        let requester = Requester {
            role: Err("surgeon-general".into()),
            own_nhs_number: None,
        };
        assert_eq!(
            decide(&requester, &nhs(PATIENT), Scope::Summary),
            PolicyDecision::deny("unknown-role")
        );
    }

    #[test]
    fn a_patient_token_without_an_nhs_number_sees_nothing() {
        let requester = Requester {
            role: Ok(Role::Patient),
            own_nhs_number: None,
        };
        assert!(!decide(&requester, &nhs(PATIENT), Scope::Timeline).permit);
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
    }
}
