//! What a generated stream contained: patients, events per type, encoded bytes, and a
//! digest of the encoded stream (equal digests mean byte-identical streams).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use spr_schemas::{ClinicalEvent, EventType};

use super::SyntheticPatient;

/// Counts and a running SHA-256 of a generated stream.
#[derive(Debug, Clone, Default)]
pub struct StreamTally {
    /// Patients seen.
    pub patients: u64,
    /// Events seen.
    pub events: u64,
    /// Events seen, by type.
    pub by_type: BTreeMap<EventType, u64>,
    /// Bytes of the encoded events given to [`StreamTally::encoded`].
    pub encoded_bytes: u64,
    hasher: Sha256,
}

impl StreamTally {
    /// Counts a patient and their events.
    pub fn patient(&mut self, patient: &SyntheticPatient) {
        self.patients += 1;
        self.events += patient.events.len() as u64;
        for event in &patient.events {
            *self.by_type.entry(event.event_type()).or_default() += 1;
        }
    }

    /// Adds one encoded event to the byte count and the digest, keeping the boundary
    /// between events (so two streams with the same bytes split differently differ).
    pub fn encoded(&mut self, bytes: &[u8]) {
        self.encoded_bytes += bytes.len() as u64;
        self.hasher.update((bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
    }

    /// Encodes `event` (Avro single-object) and adds it with [`StreamTally::encoded`].
    pub fn encode(&mut self, event: &ClinicalEvent) -> Result<(), spr_schemas::EncodeError> {
        self.encoded(&event.to_avro()?);
        Ok(())
    }

    /// Hex SHA-256 of the encoded stream so far.
    pub fn digest(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}
