//! The codes and organisations synthetic journeys draw from: real SNOMED CT, dm+d and
//! LOINC concepts, and ODS-style organisation codes.

use spr_schemas::{CareSetting, Code, DM_D, LOINC, SNOMED_CT};

/// A coded concept from one of the code systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Concept {
    pub(super) system: &'static str,
    pub(super) code: &'static str,
    pub(super) display: &'static str,
}

impl Concept {
    /// The envelope's `code`.
    pub(super) fn to_code(self) -> Code {
        Code {
            system: self.system.into(),
            code: self.code.into(),
            display: self.display.into(),
        }
    }
}

const fn sct(code: &'static str, display: &'static str) -> Concept {
    Concept {
        system: SNOMED_CT,
        code,
        display,
    }
}

const fn dmd(code: &'static str, display: &'static str) -> Concept {
    Concept {
        system: DM_D,
        code,
        display,
    }
}

const fn loinc(code: &'static str, display: &'static str) -> Concept {
    Concept {
        system: LOINC,
        code,
        display,
    }
}

/// A publishing organisation: its ODS code, system, care setting and usual author role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Org {
    pub(super) ods: &'static str,
    pub(super) system: &'static str,
    pub(super) setting: CareSetting,
    pub(super) role: &'static str,
}

const fn org(
    ods: &'static str,
    system: &'static str,
    setting: CareSetting,
    role: &'static str,
) -> Org {
    Org {
        ods,
        system,
        setting,
        role,
    }
}

/// GP practices a patient registers with.
pub(super) const GP_PRACTICES: [Org; 8] = [
    org(
        "A81001",
        "emis-web",
        CareSetting::Gp,
        "general-practitioner",
    ),
    org(
        "A81002",
        "systmone",
        CareSetting::Gp,
        "general-practitioner",
    ),
    org(
        "A81004",
        "emis-web",
        CareSetting::Gp,
        "general-practitioner",
    ),
    org(
        "A81005",
        "systmone",
        CareSetting::Gp,
        "general-practitioner",
    ),
    org(
        "B82005",
        "systmone",
        CareSetting::Gp,
        "general-practitioner",
    ),
    org(
        "B86010",
        "emis-web",
        CareSetting::Gp,
        "general-practitioner",
    ),
    org(
        "C83010",
        "emis-web",
        CareSetting::Gp,
        "general-practitioner",
    ),
    org(
        "Y02850",
        "systmone",
        CareSetting::Gp,
        "general-practitioner",
    ),
];
/// Acute trusts (A&E, admissions, outpatients, pathology, maternity).
pub(super) const ACUTE_TRUSTS: [Org; 4] = [
    org("RJ1", "epr-epic", CareSetting::Acute, "hospital-doctor"),
    org(
        "RR8",
        "epr-oracle-health",
        CareSetting::Acute,
        "hospital-doctor",
    ),
    org("RTH", "epr-cerner", CareSetting::Acute, "hospital-doctor"),
    org("R0A", "epr-epic", CareSetting::Acute, "hospital-doctor"),
];
/// Community pharmacies that dispense repeat prescriptions.
pub(super) const PHARMACIES: [Org; 5] = [
    org("FA123", "pharmacy-pmr", CareSetting::Pharmacy, "pharmacist"),
    org("FA456", "pharmacy-pmr", CareSetting::Pharmacy, "pharmacist"),
    org("FH789", "pharmacy-pmr", CareSetting::Pharmacy, "pharmacist"),
    org("FK302", "pharmacy-pmr", CareSetting::Pharmacy, "pharmacist"),
    org("FW617", "pharmacy-pmr", CareSetting::Pharmacy, "pharmacist"),
];
/// The ambulance service.
pub(super) const AMBULANCE: Org = org("RX9", "ambulance-epr", CareSetting::Ambulance, "paramedic");
/// The mental health trust.
pub(super) const MENTAL_HEALTH_TRUST: Org = org(
    "RXT",
    "rio",
    CareSetting::MentalHealth,
    "mental-health-nurse",
);
/// The community health trust (district nursing, diabetes and respiratory teams, sexual health).
pub(super) const COMMUNITY_TRUST: Org = org(
    "RY6",
    "systmone-community",
    CareSetting::Community,
    "community-nurse",
);
/// The local authority's children's and adults' social care.
pub(super) const SOCIAL_CARE: Org = org(
    "E08000035",
    "liquidlogic",
    CareSetting::SocialCare,
    "social-worker",
);
/// The patient themselves, through the NHS App (wearables, sharing choices).
pub(super) const PATIENT_APP: Org = org(
    "PATIENT",
    "nhs-app",
    CareSetting::PatientGenerated,
    "patient",
);
/// The NHS Spine's demographics service, which merges records.
pub(super) const SPINE: Org = org("X26", "pds", CareSetting::Unknown, "spine");
/// The genomic laboratory hub.
pub(super) const GENOMIC_LAB: Org = org(
    "RGT",
    "genomic-lims",
    CareSetting::Acute,
    "clinical-scientist",
);
/// The gender identity clinic.
pub(super) const GENDER_CLINIC: Org = org(
    "RNK",
    "carenotes",
    CareSetting::MentalHealth,
    "clinical-psychologist",
);
/// An independent sector provider of termination of pregnancy and fertility care.
pub(super) const INDEPENDENT_CLINIC: Org =
    org("NMV", "clinic-epr", CareSetting::Community, "nurse");

/// Given names by sex (female, male).
pub(super) const GIVEN_NAMES: [[&str; 12]; 2] = [
    [
        "Olivia", "Amelia", "Isla", "Ava", "Mia", "Grace", "Freya", "Aisha", "Zara", "Sophie",
        "Margaret", "Susan",
    ],
    [
        "Oliver", "George", "Noah", "Arthur", "Leo", "Muhammad", "Harry", "Jack", "Oscar", "Ravi",
        "David", "John",
    ],
];
/// Family names.
pub(super) const FAMILY_NAMES: [&str; 16] = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Khan", "Evans", "Thomas", "Roberts", "Walker", "Wright", "Okafor",
];
/// Postcode districts.
pub(super) const POSTCODE_DISTRICTS: [&str; 10] = [
    "LS1", "LS6", "LS11", "LS17", "BD7", "WF1", "HG1", "YO24", "SE1", "M14",
];

/// A long-term condition, the age it appears from and its prevalence, and its repeat medicines.
#[derive(Debug, Clone, Copy)]
pub(super) struct LongTermCondition {
    pub(super) concept: Concept,
    pub(super) from_age: u32,
    /// Probability a patient past `from_age` has it (higher from 65).
    pub(super) prevalence: (f64, f64),
    pub(super) medicines: &'static [Medicine],
    /// The lab tests reviewed each year.
    pub(super) annual_labs: &'static [LabTest],
    /// Whether it is a mental-health condition (a sensitive category).
    pub(super) mental_health: bool,
}

/// A medicine, its dose and the quantity of a 28-day supply.
#[derive(Debug, Clone, Copy)]
pub(super) struct Medicine {
    pub(super) concept: Concept,
    pub(super) dose: &'static str,
    pub(super) route: &'static str,
    pub(super) quantity: &'static str,
}

const fn medicine(
    concept: Concept,
    dose: &'static str,
    route: &'static str,
    quantity: &'static str,
) -> Medicine {
    Medicine {
        concept,
        dose,
        route,
        quantity,
    }
}

/// A measurement: its LOINC concept, unit and normal range (values are drawn around it).
#[derive(Debug, Clone, Copy)]
pub(super) struct LabTest {
    pub(super) concept: Concept,
    pub(super) unit: &'static str,
    pub(super) low: f64,
    pub(super) high: f64,
}

const fn measure(concept: Concept, unit: &'static str, low: f64, high: f64) -> LabTest {
    LabTest {
        concept,
        unit,
        low,
        high,
    }
}

/// Amlodipine.
pub(super) const AMLODIPINE: Medicine = medicine(
    dmd("319283006", "Amlodipine 5mg tablets"),
    "One tablet once a day",
    "oral",
    "28 tablet",
);
/// Ramipril.
pub(super) const RAMIPRIL: Medicine = medicine(
    dmd("318906001", "Ramipril 5mg capsules"),
    "One capsule once a day",
    "oral",
    "28 capsule",
);
/// Metformin.
pub(super) const METFORMIN: Medicine = medicine(
    dmd("325278007", "Metformin 500mg tablets"),
    "One tablet twice a day with meals",
    "oral",
    "56 tablet",
);
/// Atorvastatin.
pub(super) const ATORVASTATIN: Medicine = medicine(
    dmd("320000009", "Atorvastatin 20mg tablets"),
    "One tablet at night",
    "oral",
    "28 tablet",
);
/// Salbutamol reliever inhaler.
pub(super) const SALBUTAMOL: Medicine = medicine(
    dmd(
        "320176004",
        "Salbutamol 100micrograms/dose inhaler CFC free",
    ),
    "Two puffs when required",
    "inhalation",
    "200 dose",
);
/// Beclometasone preventer inhaler.
pub(super) const BECLOMETASONE: Medicine = medicine(
    dmd(
        "320131007",
        "Beclometasone 100micrograms/dose inhaler CFC free",
    ),
    "Two puffs twice a day",
    "inhalation",
    "200 dose",
);
/// Tiotropium.
pub(super) const TIOTROPIUM: Medicine = medicine(
    dmd(
        "407820004",
        "Tiotropium bromide 18microgram inhalation powder capsules",
    ),
    "Inhale the contents of one capsule once a day",
    "inhalation",
    "30 capsule",
);
/// Sertraline.
pub(super) const SERTRALINE: Medicine = medicine(
    dmd("321949006", "Sertraline 50mg tablets"),
    "One tablet once a day",
    "oral",
    "28 tablet",
);
/// Amoxicillin (an acute course).
pub(super) const AMOXICILLIN: Medicine = medicine(
    dmd("323509004", "Amoxicillin 500mg capsules"),
    "One capsule three times a day for 5 days",
    "oral",
    "15 capsule",
);
/// Paracetamol (an acute course).
pub(super) const PARACETAMOL: Medicine = medicine(
    dmd("322236009", "Paracetamol 500mg tablets"),
    "Two tablets up to four times a day",
    "oral",
    "32 tablet",
);
/// Desogestrel (contraception; sexual health).
pub(super) const DESOGESTREL: Medicine = medicine(
    dmd("412358003", "Desogestrel 75microgram tablets"),
    "One tablet once a day",
    "oral",
    "84 tablet",
);

/// Heart rate.
pub(super) const HEART_RATE: LabTest = measure(loinc("8867-4", "Heart rate"), "/min", 55.0, 100.0);
/// Systolic blood pressure.
pub(super) const SYSTOLIC_BP: LabTest = measure(
    loinc("8480-6", "Systolic blood pressure"),
    "mm[Hg]",
    105.0,
    165.0,
);
/// Diastolic blood pressure.
pub(super) const DIASTOLIC_BP: LabTest = measure(
    loinc("8462-4", "Diastolic blood pressure"),
    "mm[Hg]",
    60.0,
    100.0,
);
/// Body weight.
pub(super) const BODY_WEIGHT: LabTest = measure(loinc("29463-7", "Body weight"), "kg", 50.0, 110.0);
/// Respiratory rate.
pub(super) const RESPIRATORY_RATE: LabTest =
    measure(loinc("9279-1", "Respiratory rate"), "/min", 12.0, 24.0);
/// Body temperature.
pub(super) const TEMPERATURE: LabTest =
    measure(loinc("8310-5", "Body temperature"), "Cel", 36.0, 38.6);
/// Oxygen saturation.
pub(super) const SPO2: LabTest = measure(
    loinc(
        "59408-5",
        "Oxygen saturation in Arterial blood by Pulse oximetry",
    ),
    "%",
    91.0,
    99.0,
);
/// HbA1c (IFCC, mmol/mol).
pub(super) const HBA1C: LabTest = measure(
    loinc(
        "59261-8",
        "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol",
    ),
    "mmol/mol",
    38.0,
    75.0,
);
/// Total cholesterol.
pub(super) const CHOLESTEROL: LabTest = measure(
    loinc("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma"),
    "mmol/L",
    3.5,
    7.0,
);
/// Creatinine.
pub(super) const CREATININE: LabTest = measure(
    loinc("14682-9", "Creatinine [Moles/volume] in Serum or Plasma"),
    "umol/L",
    55.0,
    130.0,
);
/// Haemoglobin.
pub(super) const HAEMOGLOBIN: LabTest = measure(
    loinc("718-7", "Hemoglobin [Mass/volume] in Blood"),
    "g/L",
    105.0,
    165.0,
);
/// C-reactive protein.
pub(super) const CRP: LabTest = measure(
    loinc(
        "1988-5",
        "C reactive protein [Mass/volume] in Serum or Plasma",
    ),
    "mg/L",
    1.0,
    120.0,
);
/// FEV1 (spirometry).
pub(super) const FEV1: LabTest = measure(loinc("20150-9", "FEV1"), "L", 1.0, 3.8);
/// Daily step count from a wearable.
pub(super) const STEPS: LabTest = measure(
    loinc("55423-8", "Number of steps in unspecified time Pedometer"),
    "/d",
    1_500.0,
    14_000.0,
);
/// Resting heart rate from a wearable.
pub(super) const RESTING_HEART_RATE: LabTest =
    measure(loinc("40443-4", "Heart rate --resting"), "/min", 48.0, 85.0);
/// Lab tests taken on admission.
pub(super) const ADMISSION_BLOODS: [LabTest; 3] = [HAEMOGLOBIN, CRP, CREATININE];
/// Vital signs taken at triage and on the ward.
pub(super) const TRIAGE_VITALS: [LabTest; 5] =
    [HEART_RATE, RESPIRATORY_RATE, TEMPERATURE, SPO2, SYSTOLIC_BP];

/// Hypertension.
pub(super) const HYPERTENSION: Concept =
    sct("38341003", "Hypertensive disorder, systemic arterial");
/// The long-term conditions, with their prevalence (under 65, 65 and over).
pub(super) const LONG_TERM_CONDITIONS: [LongTermCondition; 5] = [
    LongTermCondition {
        concept: HYPERTENSION,
        from_age: 35,
        prevalence: (0.15, 0.5),
        medicines: &[AMLODIPINE, RAMIPRIL],
        annual_labs: &[CREATININE],
        mental_health: false,
    },
    LongTermCondition {
        concept: sct("44054006", "Diabetes mellitus type 2"),
        from_age: 30,
        prevalence: (0.05, 0.16),
        medicines: &[METFORMIN, ATORVASTATIN],
        annual_labs: &[HBA1C, CHOLESTEROL],
        mental_health: false,
    },
    LongTermCondition {
        concept: sct("195967001", "Asthma"),
        from_age: 4,
        prevalence: (0.1, 0.08),
        medicines: &[SALBUTAMOL, BECLOMETASONE],
        annual_labs: &[],
        mental_health: false,
    },
    LongTermCondition {
        concept: sct("13645005", "Chronic obstructive lung disease"),
        from_age: 45,
        prevalence: (0.03, 0.09),
        medicines: &[TIOTROPIUM, SALBUTAMOL],
        annual_labs: &[FEV1],
        mental_health: false,
    },
    LongTermCondition {
        concept: sct("35489007", "Depressive disorder"),
        from_age: 16,
        prevalence: (0.1, 0.08),
        medicines: &[SERTRALINE],
        annual_labs: &[],
        mental_health: true,
    },
];

/// Allergens with their usual reaction.
pub(super) const ALLERGENS: [(Concept, &str); 5] = [
    (sct("764146007", "Penicillin"), "Urticaria"),
    (sct("91935009", "Allergy to peanuts"), "Anaphylaxis"),
    (sct("387207008", "Ibuprofen"), "Bronchospasm"),
    (sct("111088007", "Latex"), "Contact dermatitis"),
    (sct("387406002", "Sulfamethoxazole"), "Rash"),
];

/// Encounter types.
pub(super) const GP_CONSULTATION: Concept = sct("11429006", "Consultation");
/// An A&E attendance.
pub(super) const EMERGENCY_VISIT: Concept = sct("4525004", "Emergency department patient visit");
/// An ambulance call-out.
pub(super) const AMBULANCE_CALL: Concept = sct("409971007", "Emergency medical services");
/// An admission.
pub(super) const ADMISSION: Concept = sct("32485007", "Hospital admission");
/// A discharge.
pub(super) const DISCHARGE: Concept = sct("58000006", "Patient discharge");
/// An outpatient appointment.
pub(super) const OUTPATIENT: Concept = sct("281036007", "Follow-up consultation");
/// A discharge summary.
pub(super) const DISCHARGE_SUMMARY: Concept = sct("373942005", "Discharge summary");
/// A care plan.
pub(super) const CARE_PLAN: Concept = sct("734163000", "Care plan");
/// A care-team assignment.
pub(super) const CARE_TEAM: Concept = sct("309398001", "Care team assignment");
/// A referral.
pub(super) const REFERRAL: Concept = sct("306206005", "Referral to service");
/// Patient demographics.
pub(super) const DEMOGRAPHICS: Concept = sct("184099003", "Patient demographics");
/// A lab panel report.
pub(super) const LAB_REPORT: Concept = sct("26604007", "Full blood count");
/// A sharing preference.
pub(super) const CONSENT_PREFERENCE: Concept = sct("887031000000108", "Consent preference");
/// An NHS number merge.
pub(super) const NHS_NUMBER_MERGE: Concept = sct("1137421000000107", "NHS number merge");

/// Why people are admitted: the diagnosis, the procedure done and the ward.
pub(super) const ADMISSION_REASONS: [(Concept, Concept, &str); 6] = [
    (
        sct("385093006", "Community acquired pneumonia"),
        sct("281789004", "Antibiotic therapy"),
        "Respiratory ward",
    ),
    (
        sct("68566005", "Urinary tract infectious disease"),
        sct("281789004", "Antibiotic therapy"),
        "Acute medical unit",
    ),
    (
        sct(
            "195951007",
            "Acute exacerbation of chronic obstructive airways disease",
        ),
        sct("371908008", "Oxygen administration by mask"),
        "Respiratory ward",
    ),
    (
        sct("5913000", "Fracture of neck of femur"),
        sct("52734007", "Total replacement of hip"),
        "Trauma and orthopaedics ward",
    ),
    (
        sct("57054005", "Acute myocardial infarction"),
        sct("415070008", "Percutaneous coronary intervention"),
        "Coronary care unit",
    ),
    (
        sct("74400008", "Appendicitis"),
        sct("80146002", "Appendicectomy"),
        "Surgical ward",
    ),
];

/// Reasons for a GP appointment.
pub(super) const GP_REASONS: [&str; 8] = [
    "Cough",
    "Back pain",
    "Medication review",
    "Sore throat",
    "Rash",
    "Headache",
    "Chest pain",
    "Fatigue",
];
/// Reasons for an A&E attendance.
pub(super) const EMERGENCY_REASONS: [&str; 6] = [
    "Fall",
    "Chest pain",
    "Shortness of breath",
    "Abdominal pain",
    "Head injury",
    "Laceration",
];

/// Outpatient specialties a GP refers to, with the investigation done at the first appointment.
pub(super) const SPECIALTIES: [(&str, &str, Concept); 5] = [
    (
        "Cardiology",
        "Exertional chest pain",
        sct("40701008", "Echocardiography"),
    ),
    (
        "Respiratory medicine",
        "Persistent cough",
        sct("399208008", "Plain chest X-ray"),
    ),
    (
        "Gastroenterology",
        "Change in bowel habit",
        sct("73761001", "Colonoscopy"),
    ),
    (
        "Dermatology",
        "Changing pigmented lesion",
        sct("240977001", "Excision biopsy of skin"),
    ),
    (
        "Trauma and orthopaedics",
        "Knee pain",
        sct("609588000", "Total knee replacement"),
    ),
];

/// Vaccinations.
pub(super) const FLU_VACCINE: Concept = sct("86198006", "Influenza vaccination");
/// COVID-19 booster.
pub(super) const COVID_VACCINE: Concept = sct("1119349007", "COVID-19 mRNA vaccination");
/// Pneumococcal vaccine at 65.
pub(super) const PNEUMOCOCCAL_VACCINE: Concept = sct("12866006", "Pneumococcal vaccination");
/// Shingles vaccine at 70.
pub(super) const SHINGLES_VACCINE: Concept = sct("722215002", "Herpes zoster vaccination");
/// MMR in childhood.
pub(super) const MMR_VACCINE: Concept = sct("38598009", "Measles-mumps-rubella vaccination");
/// Pertussis vaccine in pregnancy.
pub(super) const PERTUSSIS_VACCINE: Concept = sct("39343008", "Pertussis vaccination");

/// Maternity concepts.
pub(super) const PREGNANCY: Concept = sct("77386006", "Pregnancy");
/// The booking appointment.
pub(super) const BOOKING_VISIT: Concept = sct("424441002", "Prenatal initial visit");
/// A later antenatal appointment.
pub(super) const ANTENATAL_VISIT: Concept = sct("424619006", "Prenatal visit");
/// A birth.
pub(super) const BIRTH: Concept = sct("3950001", "Birth");
/// Weeks of gestation at which antenatal appointments happen (NICE NG201 schedule).
pub(super) const ANTENATAL_WEEKS: [i32; 10] = [10, 12, 16, 20, 25, 28, 31, 34, 36, 38];

/// Safeguarding alerts: for children, for adults.
pub(super) const SAFEGUARDING: [Concept; 2] = [
    sct("713592005", "Child protection plan"),
    sct("1107131000000103", "Adult safeguarding concern"),
];

/// Sexual health: a chlamydia screen.
pub(super) const CHLAMYDIA_TEST: Concept = loinc(
    "21613-5",
    "Chlamydia trachomatis DNA [Presence] in Specimen by NAA with probe detection",
);
/// Sexual health clinic attendance.
pub(super) const SEXUAL_HEALTH_CONSULTATION: Concept =
    sct("1082001000000106", "Sexual health consultation");
/// HIV antibody test.
pub(super) const HIV_TEST: Concept = loinc("7917-8", "HIV 1 Ab [Presence] in Serum");
/// HIV infection.
pub(super) const HIV_INFECTION: Concept = sct("86406008", "Human immunodeficiency virus infection");
/// Gonorrhoea.
pub(super) const GONORRHOEA: Concept = sct("15628003", "Gonorrhea");
/// Infertility.
pub(super) const INFERTILITY: Concept = sct("8619003", "Infertile");
/// IVF.
pub(super) const IVF: Concept = sct("52637005", "In vitro fertilization");
/// Termination of pregnancy.
pub(super) const TERMINATION: Concept = sct("386639001", "Termination of pregnancy");
/// Gender dysphoria.
pub(super) const GENDER_DYSPHORIA: Concept = sct("93461009", "Gender dysphoria");
/// A genomic test.
pub(super) const GENOMIC_TEST: Concept = sct("1186936003", "Genomic test");
/// Genomic findings: gene, variant (HGVS) and interpretation.
pub(super) const GENOMIC_FINDINGS: [(&str, &str, &str); 5] = [
    ("BRCA1", "c.68_69del", "pathogenic"),
    ("BRCA2", "c.5946del", "pathogenic"),
    ("CFTR", "c.1521_1523del", "pathogenic (carrier)"),
    ("HFE", "c.845G>A", "pathogenic"),
    ("MLH1", "c.1852_1853delinsGC", "uncertain significance"),
];
