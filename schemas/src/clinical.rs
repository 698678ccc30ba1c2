//! Clinical events: the envelope every care setting publishes and its typed payloads.

use serde::{Deserialize, Serialize};

use crate::{EventId, NhsNumber, SensitiveCategory};

/// Milliseconds since the Unix epoch, UTC (Avro `timestamp-millis`).
pub type EpochMillis = i64;

/// Now, in [`EpochMillis`] (0 if the clock is before 1970).
pub fn now_millis() -> EpochMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as EpochMillis)
        .unwrap_or(0)
}

/// One immutable clinical fact about one patient, with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct ClinicalEvent {
    /// Producer-assigned idempotency key.
    pub event_id: EventId,
    /// The patient; also the Kafka key.
    pub nhs_number: NhsNumber,
    /// Clinical time: when it happened.
    pub occurred_at: EpochMillis,
    /// When the source system recorded it.
    pub recorded_at: EpochMillis,
    /// Who published it and from which care setting.
    pub source: Source,
    /// The person who recorded it.
    pub author: Author,
    /// What it is, in SNOMED CT, dm+d or LOINC.
    pub code: Code,
    /// Sensitivity labels (for example `mental-health`).
    pub sensitivity: Vec<String>,
    /// Final, amended or entered in error.
    pub status: Status,
    /// The event this one amends or withdraws.
    pub supersedes: Option<EventId>,
    /// Source identifier of the encounter this fact belongs to (set on encounters too).
    pub encounter_id: Option<String>,
    /// The type-specific content.
    pub payload: Payload,
}

impl ClinicalEvent {
    /// The event's type, derived from its payload.
    pub fn event_type(&self) -> EventType {
        self.payload.event_type()
    }
}

/// Declares the event catalogue once: the [`EventType`] enum, the [`Payload`] enum, and
/// the Avro wire record whose optional payload fields mirror `clinical_event.v2.avsc`.
macro_rules! event_catalogue {
    ($( $(#[doc = $doc:literal])* $variant:ident($payload:ident) = $field:ident, $name:literal; )*) => {
        /// The kinds of clinical event (the Avro `EventType` enum).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum EventType {
            /// A type written by a newer schema that this reader does not know.
            #[default]
            Unknown,
            $( $(#[doc = $doc])* $variant, )*
        }

        impl EventType {
            /// Every type this reader knows, in catalogue order.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            /// The lower-case name used in URLs and JSON (`medication-prescribed`).
            pub fn as_str(self) -> &'static str {
                match self {
                    Self::Unknown => "unknown",
                    $( Self::$variant => $name, )*
                }
            }

            /// The type named by [`EventType::as_str`], if any.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|t| t.as_str() == name)
            }
        }

        /// The typed content of a clinical event; the variant is the event's type. Its
        /// serde form (externally tagged) is for compact local stores such as the
        /// projector's rows; the log carries the Avro form ([`ClinicalEvent::to_avro`]).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub enum Payload {
            $( $(#[doc = $doc])* $variant($payload), )*
        }

        impl Payload {
            /// The event type this payload belongs to.
            pub fn event_type(&self) -> EventType {
                match self {
                    $( Self::$variant(_) => EventType::$variant, )*
                }
            }
        }

        /// The Avro form of a clinical event: the envelope and one optional field per type.
        #[derive(Default, Serialize, Deserialize)]
        #[serde(rename = "ClinicalEvent")] // the Avro record's name, which serde-Avro checks
        pub(crate) struct ClinicalEventRecord {
            pub(crate) event_id: String,
            pub(crate) nhs_number: String,
            pub(crate) event_type: EventType,
            pub(crate) occurred_at: i64,
            pub(crate) recorded_at: i64,
            pub(crate) source: Source,
            pub(crate) author: Author,
            pub(crate) code: Code,
            pub(crate) sensitivity: Vec<String>,
            pub(crate) status: Status,
            pub(crate) supersedes: Option<String>,
            pub(crate) encounter_id: Option<String>,
            $( pub(crate) $field: Option<$payload>, )*
        }

        impl ClinicalEventRecord {
            /// Sets the one payload field that matches `payload`.
            pub(crate) fn set_payload(&mut self, payload: &Payload) {
                match payload {
                    $( Payload::$variant(p) => self.$field = Some(p.clone()), )*
                }
            }

            /// Takes the payload, checking that exactly the field of `event_type` is set.
            pub(crate) fn take_payload(&mut self) -> Result<Payload, String> {
                let mut set = Vec::new();
                $( if let Some(p) = self.$field.take() { set.push(Payload::$variant(p)); } )*
                match (self.event_type, set.len()) {
                    (EventType::Unknown, _) => Err(
                        "unknown event type (written by a newer schema this reader does not know)".into(),
                    ),
                    (t, 1) if set[0].event_type() == t => Ok(set.remove(0)),
                    (t, 0) => Err(format!("event_type {} has no payload", t.as_str())),
                    (t, 1) => Err(format!(
                        "event_type {} carries the payload of {}",
                        t.as_str(),
                        set[0].event_type().as_str()
                    )),
                    (_, n) => Err(format!("{n} payload fields are set; exactly one must be")),
                }
            }
        }
    };
}

event_catalogue! {
    /// An allergy or intolerance; the code is the substance.
    Allergy(AllergyPayload) = allergy, "allergy";
    /// A medication prescribed; the code is the dm+d medicine.
    MedicationPrescribed(MedicationPrescribedPayload) = medication_prescribed, "medication-prescribed";
    /// A vital sign, lab result or wearable reading; the code is what was measured.
    Observation(ObservationPayload) = observation, "observation";
    /// An attendance, admission or discharge; the code is the encounter type.
    Encounter(EncounterPayload) = encounter, "encounter";
    /// A lab panel or imaging report bringing observations together.
    DiagnosticReport(DiagnosticReportPayload) = diagnostic_report, "diagnostic-report";
    /// A problem or diagnosis.
    Condition(ConditionPayload) = condition, "condition";
    /// A medication supplied by a pharmacy.
    MedicationDispensed(MedicationDispensedPayload) = medication_dispensed, "medication-dispensed";
    /// A medication discontinued.
    MedicationStopped(MedicationStoppedPayload) = medication_stopped, "medication-stopped";
    /// An operation or intervention.
    Procedure(ProcedurePayload) = procedure, "procedure";
    /// A vaccination given (or recorded as not given).
    Immunisation(ImmunisationPayload) = immunisation, "immunisation";
    /// A plan of care.
    CarePlan(CarePlanPayload) = care_plan, "care-plan";
    /// The summary sent when a patient leaves hospital.
    DischargeSummary(DischargeSummaryPayload) = discharge_summary, "discharge-summary";
    /// A safeguarding alert, raised or lifted.
    SafeguardingFlag(SafeguardingFlagPayload) = safeguarding_flag, "safeguarding-flag";
    /// A pregnancy episode opened at booking, or its status changed.
    PregnancyEpisode(PregnancyEpisodePayload) = pregnancy_episode, "pregnancy-episode";
    /// An antenatal contact in a pregnancy episode.
    AntenatalVisit(AntenatalVisitPayload) = antenatal_visit, "antenatal-visit";
    /// A birth, on the mother's record.
    Birth(BirthPayload) = birth, "birth";
    /// A referral to another service.
    Referral(ReferralPayload) = referral, "referral";
    /// A genomic test result.
    GenomicResult(GenomicResultPayload) = genomic_result, "genomic-result";
    /// The patient's sharing choice for one sensitive category.
    ConsentChoice(ConsentChoicePayload) = consent_choice, "consent-choice";
    /// The patient's demographic details.
    Demographics(DemographicsPayload) = demographics, "demographics";
    /// Two NHS numbers found to be one person.
    NhsNumberMerge(NhsNumberMergePayload) = nhs_number_merge, "nhs-number-merge";
    /// An explicit care-team assignment.
    CareTeam(CareTeamPayload) = care_team, "care-team";
}

/// The publishing system, its organisation and care setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Source {
    /// Name of the publishing system.
    pub system: String,
    /// ODS code of the organisation.
    pub ods_code: String,
    /// The care setting the fact comes from.
    pub care_setting: CareSetting,
    /// The source system's own identifier of this fact (for example a FHIR resource id).
    pub record_id: Option<String>,
}

/// Where care was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CareSetting {
    #[default]
    Unknown,
    Gp,
    Acute,
    MentalHealth,
    Community,
    Ambulance,
    Maternity,
    Pharmacy,
    SocialCare,
    PatientGenerated,
}

/// The person who recorded a fact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Author {
    /// Their identifier in the source system.
    pub id: String,
    /// Their job role.
    pub role: String,
}

/// A coded concept with its display text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Code {
    /// Code system URI.
    pub system: String,
    /// The code.
    pub code: String,
    /// Human-readable text.
    pub display: String,
}

/// SNOMED CT's code system URI.
pub const SNOMED_CT: &str = "http://snomed.info/sct";
/// NHS dictionary of medicines and devices (dm+d) code system URI.
pub const DM_D: &str = "https://dmd.nhs.uk";
/// LOINC's code system URI.
pub const LOINC: &str = "http://loinc.org";

/// Whether an event stands, amends another or withdraws another.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Status {
    /// Stands as recorded.
    #[default]
    Final,
    /// Replaces the event named in `supersedes`.
    Amended,
    /// Withdraws the event named in `supersedes`.
    EnteredInError,
}

/// An allergy or intolerance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllergyPayload {
    /// The reaction, as text.
    pub reaction: Option<String>,
    /// Potential severity of a future reaction.
    pub criticality: Criticality,
    /// How certain the source is.
    pub verification: Verification,
}

/// Potential severity of a future reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Criticality {
    UnableToAssess,
    Low,
    High,
}

/// How certain the source is of an allergy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Verification {
    Unconfirmed,
    Confirmed,
    Refuted,
}

/// A medication prescribed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MedicationPrescribedPayload {
    /// Dosage instruction as written.
    pub dose: String,
    /// Route of administration.
    pub route: Option<String>,
    /// Quantity supplied.
    pub quantity: Option<String>,
    /// Acute or repeat.
    pub course: Course,
}

/// Acute (one-off) or repeat prescription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Course {
    Acute,
    Repeat,
}

/// A vital sign, lab result or wearable reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservationPayload {
    /// What kind of measurement.
    pub kind: ObservationKind,
    /// Numeric value, if any.
    pub value: Option<f64>,
    /// UCUM unit of `value`.
    pub unit: Option<String>,
    /// Textual value, if any.
    pub value_text: Option<String>,
    /// Interpretation flag (for example `H`, `L`).
    pub interpretation: Option<String>,
}

/// What kind of measurement an observation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ObservationKind {
    Other,
    VitalSign,
    Laboratory,
    Wearable,
}

/// An attendance, admission or discharge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncounterPayload {
    /// The kind of contact.
    pub encounter_class: EncounterClass,
    /// Attendance, admission (opens a stay) or discharge (closes it).
    pub phase: EncounterPhase,
    /// When the contact ended, if known.
    pub ended_at: Option<EpochMillis>,
    /// Ward, clinic or place.
    pub location: Option<String>,
    /// Why the patient came, as text.
    pub reason: Option<String>,
}

/// The kind of contact an encounter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum EncounterClass {
    Other,
    GpConsultation,
    Outpatient,
    Emergency,
    Inpatient,
    Virtual,
    HomeVisit,
}

/// Where in a stay an encounter event sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EncounterPhase {
    /// A contact with a start and an end (a GP appointment, an A&E attendance).
    Attendance,
    /// The start of an inpatient stay.
    Admission,
    /// The end of an inpatient stay.
    Discharge,
}

/// A lab panel or imaging report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticReportPayload {
    /// Report category, for example `LAB` or `RAD`.
    pub category: Option<String>,
    /// The reporter's conclusion.
    pub conclusion: Option<String>,
    /// The observation events the report brings together.
    pub result_ids: Vec<EventId>,
}

/// A problem or diagnosis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionPayload {
    /// Whether the condition is current.
    pub clinical_status: ConditionStatus,
    /// How certain the source is.
    pub verification: Verification,
    /// When it began.
    pub onset_at: Option<EpochMillis>,
    /// When it resolved.
    pub abated_at: Option<EpochMillis>,
    /// Severity, as text.
    pub severity: Option<String>,
}

/// Whether a condition is current (FHIR condition-clinical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ConditionStatus {
    Active,
    Recurrence,
    Relapse,
    Inactive,
    Remission,
    Resolved,
}

impl ConditionStatus {
    /// Active, recurrent or relapsed: a current problem.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Active | Self::Recurrence | Self::Relapse)
    }
}

/// A medication supplied by a pharmacy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MedicationDispensedPayload {
    /// Quantity supplied.
    pub quantity: Option<String>,
    /// Days the supply lasts.
    pub days_supply: Option<i32>,
    /// The prescription dispensed.
    pub prescription_id: Option<EventId>,
}

/// A medication discontinued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MedicationStoppedPayload {
    /// The prescription stopped; without it, every current prescription of the same code.
    pub prescription_id: Option<EventId>,
    /// Why it was stopped.
    pub reason: Option<String>,
}

/// An operation or intervention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcedurePayload {
    /// Outcome, as text.
    pub outcome: Option<String>,
    /// Body site, as text.
    pub body_site: Option<String>,
    /// When it ended.
    pub ended_at: Option<EpochMillis>,
}

/// A vaccination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImmunisationPayload {
    /// Dose number in the course.
    pub dose_number: Option<i32>,
    /// Site of injection.
    pub site: Option<String>,
    /// Vaccine batch (lot) number.
    pub batch: Option<String>,
    /// True when recorded as not given.
    pub not_given: bool,
}

/// A plan of care.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarePlanPayload {
    /// Title of the plan.
    pub title: String,
    /// What it is for.
    pub description: Option<String>,
    /// When it ends.
    pub ends_at: Option<EpochMillis>,
    /// Planned activities, as text.
    pub activities: Vec<String>,
}

/// The summary sent when a patient leaves hospital.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DischargeSummaryPayload {
    /// Start of the stay.
    pub admitted_at: EpochMillis,
    /// End of the stay.
    pub discharged_at: EpochMillis,
    /// Where the patient went (home, care home, another hospital).
    pub destination: Option<String>,
    /// Discharge diagnoses, as display text.
    pub diagnoses: Vec<String>,
    /// The clinical narrative.
    pub summary: String,
    /// Follow-up arranged.
    pub follow_up: Option<String>,
    /// Medications on discharge, as text.
    pub medications_on_discharge: Vec<String>,
}

/// A safeguarding alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafeguardingFlagPayload {
    /// False when the flag is lifted.
    pub active: bool,
    /// Detail of the concern (sensitive: shown only where the policy allows).
    pub detail: Option<String>,
    /// When the flag is due for review.
    pub review_at: Option<EpochMillis>,
}

/// A pregnancy episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PregnancyEpisodePayload {
    /// Identifier of the episode, shared by its visits and birth.
    pub episode_id: String,
    /// Active, completed (a birth) or ended (a loss or termination).
    pub status: PregnancyStatus,
    /// Estimated date of delivery.
    pub estimated_delivery_at: Option<EpochMillis>,
    /// Number of pregnancies including this one.
    pub gravida: Option<i32>,
    /// Number of previous births.
    pub parity: Option<i32>,
    /// Risk factors, as text.
    pub risks: Vec<String>,
}

/// The state of a pregnancy episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum PregnancyStatus {
    Active,
    Completed,
    Ended,
}

/// An antenatal contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AntenatalVisitPayload {
    /// The pregnancy episode.
    pub episode_id: String,
    /// Completed weeks of gestation.
    pub gestation_weeks: Option<i32>,
    /// Findings, as text.
    pub findings: Option<String>,
    /// Risk factors identified, as text.
    pub risks: Vec<String>,
}

/// A birth, on the mother's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BirthPayload {
    /// The pregnancy episode it completes.
    pub episode_id: String,
    /// For example `live birth`.
    pub outcome: String,
    /// For example `spontaneous vaginal delivery`.
    pub delivery_method: Option<String>,
    /// Completed weeks of gestation.
    pub gestation_weeks: Option<i32>,
    /// Birth weight in grams.
    pub birth_weight_grams: Option<i32>,
    /// The baby's NHS number, once issued.
    pub baby_nhs_number: Option<NhsNumber>,
}

/// A referral.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralPayload {
    /// ODS code of the organisation referred to.
    pub to_ods_code: String,
    /// The service referred to.
    pub to_service: String,
    /// How urgent.
    pub priority: ReferralPriority,
    /// Why, as text.
    pub reason: Option<String>,
}

/// How urgent a referral is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ReferralPriority {
    Routine,
    Urgent,
    TwoWeekWait,
    Emergency,
}

/// A genomic test result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenomicResultPayload {
    /// Gene symbol.
    pub gene: Option<String>,
    /// Variant in HGVS notation.
    pub variant: Option<String>,
    /// For example `pathogenic`.
    pub interpretation: String,
    /// The report, as text.
    pub report_text: Option<String>,
}

/// The patient's sharing choice for one sensitive category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentChoicePayload {
    /// The category the choice is about.
    pub category: SensitiveCategory,
    /// The choice.
    pub choice: SharingChoice,
}

/// What a patient chose for a sensitive category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SharingChoice {
    /// Shared with everyone the policy allows.
    Share,
    /// Withheld from everyone but the patient.
    Withhold,
    /// Withheld except in an emergency (emergency tier or break-glass).
    WithholdExceptEmergency,
}

/// The patient's demographic details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemographicsPayload {
    /// Given name(s).
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Date of birth, `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// Administrative gender.
    pub gender: Option<String>,
    /// Postcode.
    pub postcode: Option<String>,
    /// ODS code of the registered GP practice.
    pub registered_gp_ods_code: Option<String>,
    /// Date of death.
    pub deceased_at: Option<EpochMillis>,
}

/// Two NHS numbers found to be one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NhsNumberMergePayload {
    /// The number no longer used.
    pub retired_nhs_number: NhsNumber,
    /// The number the record lives on.
    pub surviving_nhs_number: NhsNumber,
}

/// An explicit care-team assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CareTeamPayload {
    /// Organisation whose staff join the care team.
    pub ods_code: String,
    /// The team, as text.
    pub team: Option<String>,
    /// A single practitioner, when the assignment is personal.
    pub practitioner_id: Option<String>,
    /// When the assignment ends.
    pub ends_at: Option<EpochMillis>,
}
