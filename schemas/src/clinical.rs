//! Clinical events: the envelope every care setting publishes and its typed payloads.

use serde::{Deserialize, Serialize};

use crate::{EventId, NhsNumber};

/// Milliseconds since the Unix epoch, UTC (Avro `timestamp-millis`).
pub type EpochMillis = i64;

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
    /// The type-specific content.
    pub payload: Payload,
}

impl ClinicalEvent {
    /// The event's type, derived from its payload.
    pub fn event_type(&self) -> EventType {
        self.payload.event_type()
    }
}

/// The kinds of clinical event this schema version carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventType {
    /// A type written by a newer schema that this reader does not know.
    Unknown,
    /// An allergy or intolerance.
    Allergy,
    /// A medication prescribed.
    MedicationPrescribed,
    /// A vital sign, lab result or wearable reading.
    Observation,
}

impl EventType {
    /// The lower-case name used in URLs and JSON (`medication-prescribed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Allergy => "allergy",
            Self::MedicationPrescribed => "medication-prescribed",
            Self::Observation => "observation",
        }
    }
}

/// The typed content of a clinical event.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// An allergy or intolerance; the event's code is the substance.
    Allergy(AllergyPayload),
    /// A prescription; the event's code is the dm+d medicine.
    MedicationPrescribed(MedicationPrescribedPayload),
    /// A measurement; the event's code is what was measured.
    Observation(ObservationPayload),
}

impl Payload {
    /// The event type this payload belongs to.
    pub fn event_type(&self) -> EventType {
        match self {
            Self::Allergy(_) => EventType::Allergy,
            Self::MedicationPrescribed(_) => EventType::MedicationPrescribed,
            Self::Observation(_) => EventType::Observation,
        }
    }
}

/// The publishing system, its organisation and care setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Source {
    /// Name of the publishing system.
    pub system: String,
    /// ODS code of the organisation.
    pub ods_code: String,
    /// The care setting the fact comes from.
    pub care_setting: CareSetting,
}

/// Where care was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CareSetting {
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Author {
    /// Their identifier in the source system.
    pub id: String,
    /// Their job role.
    pub role: String,
}

/// A coded concept with its display text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Status {
    /// Stands as recorded.
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
