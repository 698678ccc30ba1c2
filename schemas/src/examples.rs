//! Small, valid example events for documentation and tests.

use crate::*;

fn envelope(nhs_number: NhsNumber, code: Code, payload: Payload) -> ClinicalEvent {
    ClinicalEvent {
        event_id: EventId::random(),
        nhs_number,
        occurred_at: 1_700_000_000_000,
        recorded_at: 1_700_000_060_000,
        source: Source {
            system: "example-gp-system".into(),
            ods_code: "A81001".into(),
            care_setting: CareSetting::Gp,
            record_id: None,
        },
        author: Author {
            id: "G1234567".into(),
            role: "general-practitioner".into(),
        },
        code,
        sensitivity: vec![],
        status: Status::Final,
        supersedes: None,
        encounter_id: None,
        payload,
    }
}

/// A confirmed, high-criticality penicillin allergy.
pub fn allergy(nhs_number: NhsNumber) -> ClinicalEvent {
    envelope(
        nhs_number,
        Code {
            system: SNOMED_CT.into(),
            code: "764146007".into(),
            display: "Penicillin".into(),
        },
        Payload::Allergy(AllergyPayload {
            reaction: Some("Urticaria".into()),
            criticality: Criticality::High,
            verification: Verification::Confirmed,
        }),
    )
}

/// A repeat prescription of amlodipine.
pub fn medication_prescribed(nhs_number: NhsNumber) -> ClinicalEvent {
    envelope(
        nhs_number,
        Code {
            system: DM_D.into(),
            code: "319283006".into(),
            display: "Amlodipine 5mg tablets".into(),
        },
        Payload::MedicationPrescribed(MedicationPrescribedPayload {
            dose: "One tablet once a day".into(),
            route: Some("oral".into()),
            quantity: Some("28 tablet".into()),
            course: Course::Repeat,
        }),
    )
}

/// A heart-rate reading.
pub fn observation(nhs_number: NhsNumber) -> ClinicalEvent {
    envelope(
        nhs_number,
        Code {
            system: LOINC.into(),
            code: "8867-4".into(),
            display: "Heart rate".into(),
        },
        Payload::Observation(ObservationPayload {
            kind: ObservationKind::VitalSign,
            value: Some(72.0),
            unit: Some("/min".into()),
            value_text: None,
            interpretation: None,
        }),
    )
}

fn snomed(code: &str, display: &str) -> Code {
    Code {
        system: SNOMED_CT.into(),
        code: code.into(),
        display: display.into(),
    }
}

fn dmd(code: &str, display: &str) -> Code {
    Code {
        system: DM_D.into(),
        code: code.into(),
        display: display.into(),
    }
}

/// An event of each type in the catalogue, in [`EventType::ALL`] order.
pub fn one_of_each_type(nhs_number: NhsNumber) -> Vec<ClinicalEvent> {
    let at = |setting: CareSetting, code: Code, payload: Payload| {
        let mut event = envelope(nhs_number, code, payload);
        event.source.care_setting = setting;
        event
    };
    let day = 86_400_000;
    let encounter = {
        let mut e = at(
            CareSetting::Acute,
            snomed("32485007", "Hospital admission"),
            Payload::Encounter(EncounterPayload {
                encounter_class: EncounterClass::Inpatient,
                phase: EncounterPhase::Admission,
                ended_at: None,
                location: Some("Ward 7".into()),
                reason: Some("Community-acquired pneumonia".into()),
            }),
        );
        e.encounter_id = Some("ADM-0001".into());
        e
    };
    let prescription = medication_prescribed(nhs_number);
    let prescription_id = prescription.event_id;
    let heart_rate = observation(nhs_number);
    let result_ids = vec![heart_rate.event_id];
    let mut genomic = at(
        CareSetting::Acute,
        snomed("1186936003", "Genomic test"),
        Payload::GenomicResult(GenomicResultPayload {
            gene: Some("BRCA2".into()),
            variant: Some("c.5946del".into()),
            interpretation: "pathogenic".into(),
            report_text: None,
        }),
    );
    genomic.sensitivity = vec![SensitiveCategory::Genomics.as_str().into()];
    vec![
        allergy(nhs_number),
        prescription,
        heart_rate,
        encounter,
        at(
            CareSetting::Acute,
            snomed("26604007", "Full blood count"),
            Payload::DiagnosticReport(DiagnosticReportPayload {
                category: Some("LAB".into()),
                conclusion: Some("Normal".into()),
                result_ids,
            }),
        ),
        at(
            CareSetting::Gp,
            snomed("38341003", "Hypertension"),
            Payload::Condition(ConditionPayload {
                clinical_status: ConditionStatus::Active,
                verification: Verification::Confirmed,
                onset_at: Some(1_600_000_000_000),
                abated_at: None,
                severity: None,
            }),
        ),
        at(
            CareSetting::Pharmacy,
            dmd("319283006", "Amlodipine 5mg tablets"),
            Payload::MedicationDispensed(MedicationDispensedPayload {
                quantity: Some("28 tablet".into()),
                days_supply: Some(28),
                prescription_id: Some(prescription_id),
            }),
        ),
        at(
            CareSetting::Gp,
            dmd("319283006", "Amlodipine 5mg tablets"),
            Payload::MedicationStopped(MedicationStoppedPayload {
                prescription_id: Some(prescription_id),
                reason: Some("Ankle swelling".into()),
            }),
        ),
        at(
            CareSetting::Acute,
            snomed("80146002", "Appendicectomy"),
            Payload::Procedure(ProcedurePayload {
                outcome: Some("Successful".into()),
                body_site: None,
                ended_at: None,
            }),
        ),
        at(
            CareSetting::Gp,
            snomed("1119349007", "COVID-19 mRNA vaccination"),
            Payload::Immunisation(ImmunisationPayload {
                dose_number: Some(3),
                site: Some("Left deltoid".into()),
                batch: Some("FK1234".into()),
                not_given: false,
            }),
        ),
        at(
            CareSetting::Community,
            snomed("736353004", "Diabetes care plan"),
            Payload::CarePlan(CarePlanPayload {
                title: "Type 2 diabetes management".into(),
                description: None,
                ends_at: None,
                activities: vec!["HbA1c every 6 months".into()],
            }),
        ),
        at(
            CareSetting::Acute,
            snomed("373942005", "Discharge summary"),
            Payload::DischargeSummary(DischargeSummaryPayload {
                admitted_at: 1_700_000_000_000 - 3 * day,
                discharged_at: 1_700_000_000_000,
                destination: Some("Usual place of residence".into()),
                diagnoses: vec!["Community-acquired pneumonia".into()],
                summary: "Treated with IV antibiotics; recovered.".into(),
                follow_up: Some("GP review in 2 weeks".into()),
                medications_on_discharge: vec!["Amoxicillin 500mg capsules".into()],
            }),
        ),
        at(
            CareSetting::SocialCare,
            snomed("713592005", "Child protection plan"),
            Payload::SafeguardingFlag(SafeguardingFlagPayload {
                active: true,
                detail: None,
                review_at: Some(1_700_000_000_000 + 90 * day),
            }),
        ),
        at(
            CareSetting::Maternity,
            snomed("77386006", "Pregnancy"),
            Payload::PregnancyEpisode(PregnancyEpisodePayload {
                episode_id: "PREG-0001".into(),
                status: PregnancyStatus::Active,
                estimated_delivery_at: Some(1_700_000_000_000 + 200 * day),
                gravida: Some(2),
                parity: Some(1),
                risks: vec![],
            }),
        ),
        at(
            CareSetting::Maternity,
            snomed("424441002", "Antenatal visit"),
            Payload::AntenatalVisit(AntenatalVisitPayload {
                episode_id: "PREG-0001".into(),
                gestation_weeks: Some(12),
                findings: Some("Dating scan normal".into()),
                risks: vec![],
            }),
        ),
        at(
            CareSetting::Maternity,
            snomed("3950001", "Birth"),
            Payload::Birth(BirthPayload {
                episode_id: "PREG-0001".into(),
                outcome: "live birth".into(),
                delivery_method: Some("spontaneous vaginal delivery".into()),
                gestation_weeks: Some(39),
                birth_weight_grams: Some(3_400),
                baby_nhs_number: None,
            }),
        ),
        at(
            CareSetting::Gp,
            snomed("183444007", "Referral to cardiology service"),
            Payload::Referral(ReferralPayload {
                to_ods_code: "RJ1".into(),
                to_service: "Cardiology".into(),
                priority: ReferralPriority::Urgent,
                reason: Some("Exertional chest pain".into()),
            }),
        ),
        genomic,
        at(
            CareSetting::PatientGenerated,
            snomed("887031000000108", "Consent preference"),
            Payload::ConsentChoice(ConsentChoicePayload {
                category: SensitiveCategory::SexualHealth,
                choice: SharingChoice::Withhold,
            }),
        ),
        at(
            CareSetting::Gp,
            snomed("184099003", "Patient demographics"),
            Payload::Demographics(DemographicsPayload {
                given_name: "Alex".into(),
                family_name: "Example".into(),
                birth_date: Some("1970-01-01".into()),
                gender: Some("unknown".into()),
                postcode: Some("LS1 4AP".into()),
                registered_gp_ods_code: Some("A81001".into()),
                deceased_at: None,
            }),
        ),
        at(
            CareSetting::Unknown,
            snomed("1137421000000107", "NHS number merge"),
            Payload::NhsNumberMerge(NhsNumberMergePayload {
                retired_nhs_number: "9990000026".parse().expect("a valid test number"),
                surviving_nhs_number: nhs_number,
            }),
        ),
        at(
            CareSetting::Community,
            snomed("309398001", "Care team assignment"),
            Payload::CareTeam(CareTeamPayload {
                ods_code: "RY6".into(),
                team: Some("District nursing".into()),
                practitioner_id: None,
                ends_at: Some(1_700_000_000_000 + 30 * day),
            }),
        ),
    ]
}

/// A permitted timeline read by a GP.
pub fn access_event(nhs_number: NhsNumber) -> AccessEvent {
    AccessEvent {
        event_id: EventId::random(),
        request_id: EventId::random(),
        occurred_at: 1_700_000_000_000,
        subject: AccessSubject {
            id: "G1234567".into(),
            name: "Dr Example".into(),
            role: "clinician".into(),
            ods_code: "A81001".into(),
        },
        nhs_number,
        action: "timeline.read".into(),
        decision: Decision::Permit,
        reasons: vec!["role-permits-scope".into()],
        returned_count: 0,
        returned_digest: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        break_glass_reason: None,
        categories: vec![],
    }
}
