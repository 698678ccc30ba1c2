//! Serde forms that mirror the Avro schemas field for field, and their conversion
//! to the domain types (which is where content is validated).

use serde::{Deserialize, Serialize};

use crate::clinical::*;
use crate::codec::{self, AvroRecord, DecodeError, EncodeError};
use crate::{AccessEvent, EventId, NhsNumber};

#[derive(Serialize, Deserialize)]
pub(crate) struct ClinicalEventRecord {
    event_id: String,
    nhs_number: String,
    event_type: EventType,
    occurred_at: i64,
    recorded_at: i64,
    source: Source,
    author: Author,
    code: Code,
    sensitivity: Vec<String>,
    status: Status,
    supersedes: Option<String>,
    allergy: Option<AllergyPayload>,
    medication_prescribed: Option<MedicationPrescribedPayload>,
    observation: Option<ObservationPayload>,
}

impl AvroRecord for ClinicalEvent {
    const RECORD: &'static str = "uk.nhs.spr.ClinicalEvent";
    type Wire = ClinicalEventRecord;

    fn to_wire(&self) -> ClinicalEventRecord {
        let (mut allergy, mut medication_prescribed, mut observation) = (None, None, None);
        match &self.payload {
            Payload::Allergy(p) => allergy = Some(p.clone()),
            Payload::MedicationPrescribed(p) => medication_prescribed = Some(p.clone()),
            Payload::Observation(p) => observation = Some(p.clone()),
        }
        ClinicalEventRecord {
            event_id: self.event_id.to_string(),
            nhs_number: self.nhs_number.to_string(),
            event_type: self.event_type(),
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            source: self.source.clone(),
            author: self.author.clone(),
            code: self.code.clone(),
            sensitivity: self.sensitivity.clone(),
            status: self.status,
            supersedes: self.supersedes.map(|s| s.to_string()),
            allergy,
            medication_prescribed,
            observation,
        }
    }

    fn from_wire(w: ClinicalEventRecord) -> Result<Self, String> {
        let event_id = EventId::parse(&w.event_id).map_err(|e| format!("event_id: {e}"))?;
        let nhs_number = NhsNumber::parse(&w.nhs_number).map_err(|e| format!("nhs_number: {e}"))?;
        let supersedes = w
            .supersedes
            .as_deref()
            .map(EventId::parse)
            .transpose()
            .map_err(|e| format!("supersedes: {e}"))?;
        if w.status != Status::Final && supersedes.is_none() {
            return Err(format!(
                "status {:?} needs supersedes to name the event it replaces",
                w.status
            ));
        }
        let set = [
            w.allergy.is_some(),
            w.medication_prescribed.is_some(),
            w.observation.is_some(),
        ];
        if set.iter().filter(|s| **s).count() > 1 {
            return Err("more than one payload field is set".into());
        }
        let payload = match (
            w.event_type,
            w.allergy,
            w.medication_prescribed,
            w.observation,
        ) {
            (EventType::Allergy, Some(p), None, None) => Payload::Allergy(p),
            (EventType::MedicationPrescribed, None, Some(p), None) => {
                Payload::MedicationPrescribed(p)
            }
            (EventType::Observation, None, None, Some(p)) => Payload::Observation(p),
            (EventType::Unknown, ..) => {
                return Err(
                    "unknown event type (written by a newer schema this reader does not know)"
                        .into(),
                )
            }
            (t, ..) => {
                return Err(format!(
                    "event_type {t:?} but its payload field is not the one set"
                ))
            }
        };
        Ok(Self {
            event_id,
            nhs_number,
            occurred_at: w.occurred_at,
            recorded_at: w.recorded_at,
            source: w.source,
            author: w.author,
            code: w.code,
            sensitivity: w.sensitivity,
            status: w.status,
            supersedes,
            payload,
        })
    }
}

impl AvroRecord for AccessEvent {
    const RECORD: &'static str = "uk.nhs.spr.AccessEvent";
    type Wire = AccessEvent;

    fn to_wire(&self) -> AccessEvent {
        self.clone()
    }

    fn from_wire(wire: AccessEvent) -> Result<Self, String> {
        Ok(wire)
    }
}

impl ClinicalEvent {
    /// Encodes as an Avro single-object record with the current schema.
    pub fn to_avro(&self) -> Result<Vec<u8>, EncodeError> {
        codec::encode(self)
    }

    /// Decodes an Avro single-object record written with any schema version in the catalogue.
    pub fn from_avro(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode(bytes)
    }
}

impl AccessEvent {
    /// Encodes as an Avro single-object record; these bytes are also the ledger leaf.
    pub fn to_avro(&self) -> Result<Vec<u8>, EncodeError> {
        codec::encode(self)
    }

    /// Decodes an Avro single-object record written with any schema version in the catalogue.
    pub fn from_avro(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode(bytes)
    }
}
