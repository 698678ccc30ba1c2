//! Serde forms that mirror the Avro schemas field for field, and their conversion
//! to the domain types (which is where content is validated).

use crate::clinical::*;
use crate::codec::{self, AvroRecord, DecodeError, EncodeError};
use crate::{AccessEvent, EventId, NhsNumber, SensitiveCategory};

impl AvroRecord for ClinicalEvent {
    const RECORD: &'static str = ClinicalEvent::AVRO_RECORD;
    type Wire = ClinicalEventRecord;

    fn to_wire(&self) -> ClinicalEventRecord {
        let mut record = ClinicalEventRecord {
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
            encounter_id: self.encounter_id.clone(),
            ..ClinicalEventRecord::default()
        };
        record.set_payload(&self.payload);
        record
    }

    fn from_wire(mut w: ClinicalEventRecord) -> Result<Self, String> {
        let event_id = EventId::parse(&w.event_id).map_err(|e| format!("event_id: {e}"))?;
        let nhs_number = NhsNumber::parse(&w.nhs_number).map_err(|e| format!("nhs_number: {e}"))?;
        let supersedes = w
            .supersedes
            .as_deref()
            .map(EventId::parse)
            .transpose()
            .map_err(|e| format!("supersedes: {e}"))?;
        let payload = w.take_payload()?;
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
            encounter_id: w.encounter_id,
            payload,
        })
    }

    fn check_content(&self) -> Result<(), String> {
        self.check()
    }
}

impl ClinicalEvent {
    /// The content rules the decoder applies beyond the types (docs/events.md, "Rules
    /// for every event" and each type's own): the reason an event would be refused and
    /// dead-lettered, which a producer can learn before publishing it.
    pub fn check(&self) -> Result<(), String> {
        if self.status != Status::Final && self.supersedes.is_none() {
            return Err(format!(
                "status {:?} needs supersedes to name the event it replaces",
                self.status
            ));
        }
        check_key_parts(self)?;
        check_payload(self)
    }
}

/// The identifiers and codes the projection files events under must keep apart what
/// is apart: in a key each part ends at a NUL byte, so none may hold one, and a code is
/// filed as `system|code`, so no `|` may be in a code system (in a URI it is written
/// `%7C`). Other control characters (a tab in an identifier) are legal FHIR and kept.
fn check_key_parts(event: &ClinicalEvent) -> Result<(), String> {
    let of_payload = match &event.payload {
        Payload::PregnancyEpisode(p) => Some(("episode_id", &p.episode_id)),
        Payload::AntenatalVisit(v) => Some(("episode_id", &v.episode_id)),
        Payload::Birth(b) => Some(("episode_id", &b.episode_id)),
        Payload::Referral(r) => Some(("to_ods_code", &r.to_ods_code)),
        Payload::CareTeam(t) => Some(("ods_code", &t.ods_code)),
        _ => None,
    };
    let parts = [
        Some(("source.ods_code", &event.source.ods_code)),
        Some(("code.system", &event.code.system)),
        Some(("code.code", &event.code.code)),
        event.encounter_id.as_ref().map(|id| ("encounter_id", id)),
        of_payload,
    ];
    for (field, value) in parts.into_iter().flatten() {
        if value.contains('\0') {
            return Err(format!(
                "{field} {value:?} contains a NUL character, which ends a part of the projection's keys"
            ));
        }
    }
    if event.code.system.contains('|') {
        return Err(format!(
            "code.system {:?} contains '|', which separates a code system from its code; write it %7C",
            event.code.system
        ));
    }
    Ok(())
}

/// Rules that tie a payload to its envelope, beyond what the schema can say.
fn check_payload(event: &ClinicalEvent) -> Result<(), String> {
    match &event.payload {
        Payload::Encounter(_) if event.encounter_id.is_none() => {
            Err("an encounter needs encounter_id, its identifier in the source system".into())
        }
        Payload::NhsNumberMerge(m) => {
            if m.retired_nhs_number == m.surviving_nhs_number {
                Err(format!(
                    "a merge needs two different NHS numbers; both are {}",
                    m.retired_nhs_number
                ))
            } else if ![m.retired_nhs_number, m.surviving_nhs_number].contains(&event.nhs_number) {
                Err(format!(
                    "a merge of {} into {} must be published under one of those numbers, not {}",
                    m.retired_nhs_number, m.surviving_nhs_number, event.nhs_number
                ))
            } else {
                Ok(())
            }
        }
        Payload::DischargeSummary(d) if d.discharged_at < d.admitted_at => Err(format!(
            "discharge summary: discharged_at {} is before admitted_at {}",
            d.discharged_at, d.admitted_at
        )),
        Payload::GenomicResult(_)
            if !event
                .sensitivity
                .iter()
                .any(|l| l == SensitiveCategory::Genomics.as_str()) =>
        {
            Err("a genomic result must carry the genomics sensitivity label".into())
        }
        _ => Ok(()),
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
    /// The full name of its Avro record, as [`SchemaCatalogue::current`] looks it up.
    ///
    /// [`SchemaCatalogue::current`]: crate::SchemaCatalogue::current
    pub const AVRO_RECORD: &'static str = "uk.nhs.spr.ClinicalEvent";

    /// Encodes as an Avro single-object record with the current schema.
    pub fn to_avro(&self) -> Result<Vec<u8>, EncodeError> {
        codec::encode(self)
    }

    /// Decodes an Avro single-object record written with any schema version in the catalogue.
    pub fn from_avro(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode(bytes)
    }

    /// Decodes a record that was accepted before, such as the projection's stored copy,
    /// without applying the content rules ([`Self::check`]) again: a rule added since
    /// then must not make an event already projected unreadable.
    pub fn from_accepted_avro(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode_accepted(bytes)
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
