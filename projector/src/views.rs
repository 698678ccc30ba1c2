//! Current-state views: which rows an event adds to the `current` and `choices` column
//! families, and how to read them back.
//!
//! Every row holds the whole event in its stored form ([`stored_event`]) under
//! `nhs | view | group | time | id` ([`keys::view_key`]). Writing is order-independent:
//! an event adds its rows unless a correction already withdrew it, and a correction
//! deletes its target's rows. What is "current" (the latest status, stopped
//! medications, conflicts) is resolved when reading ([`crate::summary`]), so
//! late-arriving events land in the right place and a replay in any partition
//! interleaving gives the same bytes.

use sha2::{Digest, Sha256};
use spr_schemas::{
    Author, ClinicalEvent, Code, EpochMillis, EventId, NhsNumber, Payload, Source, Status,
};

use crate::keys;
use crate::store::{from_postcard, ProjectionStore, StoreError, CF_CHOICES, CF_CURRENT};

/// A current-state view of a patient's record, by its key byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum View {
    /// Allergies and intolerances, grouped by code.
    Allergies = b'A',
    /// Prescriptions, dispensings and stops, grouped by medicine code.
    Medications = b'M',
    /// Observations, grouped by code (the latest of each is current).
    Observations = b'O',
    /// Conditions, grouped by code.
    Problems = b'P',
    /// Safeguarding flags, grouped by concern code.
    Alerts = b'L',
    /// Pregnancy episodes, antenatal visits and births, grouped by episode.
    Maternity = b'G',
    /// Contacts that give an organisation a legitimate relationship, grouped by ODS code.
    Relationships = b'R',
    /// Every event that names an encounter, grouped by encounter id.
    Encounters = b'E',
    /// Discharge summaries.
    Discharges = b'D',
    /// Demographic details.
    Demographics = b'I',
    /// NHS number merges this number takes part in.
    Merges = b'X',
}

/// The group of an event's concept in a view: `system|code`. A concept recorded only
/// in words (no code) is grouped by its words: `system|text:` and the first 16 bytes
/// of the SHA-256 of the trimmed, lower-cased words, in hex (a safeguarding flag's
/// words are its detail). Otherwise every free-text allergy or alert from one source
/// would share one group, and the newest would hide the others.
fn concept_group(event: &ClinicalEvent) -> String {
    if !event.code.code.is_empty() {
        return format!("{}|{}", event.code.system, event.code.code);
    }
    let words = match &event.payload {
        Payload::SafeguardingFlag(flag) => flag.detail.as_deref().unwrap_or(&event.code.display),
        _ => &event.code.display,
    };
    let digest = Sha256::digest(words.trim().to_lowercase().as_bytes());
    format!("{}|text:{}", event.code.system, hex::encode(&digest[..16]))
}

/// The group a contact with organisation `ods_code` is filed and looked up under in
/// [`View::Relationships`]: the code in capitals, so that it links its organisation
/// whatever case it was sent or asked in.
pub(crate) fn relationship_group(ods_code: &str) -> String {
    ods_code.to_ascii_uppercase()
}

/// The `(column family, key)` rows an event occupies while it stands.
pub fn rows_of(event: &ClinicalEvent) -> Vec<(&'static str, Vec<u8>)> {
    let nhs = &event.nhs_number;
    let row = |view: View, group: &str| {
        (
            CF_CURRENT,
            keys::view_key(nhs, view as u8, group, event.occurred_at, &event.event_id),
        )
    };
    let code = concept_group(event);
    let contact = |ods_code: &str| row(View::Relationships, &relationship_group(ods_code));
    let mut rows = Vec::new();
    if let Some(encounter) = &event.encounter_id {
        rows.push(row(View::Encounters, encounter));
    }
    match &event.payload {
        Payload::Allergy(_) => rows.push(row(View::Allergies, &code)),
        Payload::MedicationPrescribed(_)
        | Payload::MedicationDispensed(_)
        | Payload::MedicationStopped(_) => rows.push(row(View::Medications, &code)),
        Payload::Observation(_) => rows.push(row(View::Observations, &code)),
        Payload::Condition(_) => rows.push(row(View::Problems, &code)),
        Payload::SafeguardingFlag(_) => rows.push(row(View::Alerts, &code)),
        Payload::PregnancyEpisode(p) => rows.push(row(View::Maternity, &p.episode_id)),
        Payload::AntenatalVisit(v) => rows.push(row(View::Maternity, &v.episode_id)),
        Payload::Birth(b) => rows.push(row(View::Maternity, &b.episode_id)),
        Payload::Encounter(_) => rows.push(contact(&event.source.ods_code)),
        Payload::Referral(r) => rows.push(contact(&r.to_ods_code)),
        Payload::CareTeam(t) => rows.push(contact(&t.ods_code)),
        Payload::DischargeSummary(_) => rows.push(row(View::Discharges, "")),
        Payload::Demographics(_) => rows.push(row(View::Demographics, "")),
        Payload::NhsNumberMerge(_) => rows.push(row(View::Merges, "")),
        Payload::ConsentChoice(c) => rows.push((
            CF_CHOICES,
            keys::view_key(
                nhs,
                b'C',
                c.category.as_str(),
                event.occurred_at,
                &event.event_id,
            ),
        )),
        Payload::DiagnosticReport(_)
        | Payload::Procedure(_)
        | Payload::Immunisation(_)
        | Payload::CarePlan(_)
        | Payload::GenomicResult(_) => {}
    }
    rows
}

/// One standing event of a view, with the group it was filed under.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewRow {
    /// The group (code, episode id, ODS code, encounter id, category).
    pub group: String,
    /// The event.
    pub event: ClinicalEvent,
}

impl ProjectionStore {
    /// The standing events of one view of a patient, by group then time (oldest first).
    pub fn view_rows(&self, nhs: &NhsNumber, view: View) -> Result<Vec<ViewRow>, StoreError> {
        self.rows_under(CF_CURRENT, &keys::view_prefix(nhs, view as u8))
    }

    /// The standing events of one group of one view (one ODS code, one encounter), by time.
    pub fn view_group_rows(
        &self,
        nhs: &NhsNumber,
        view: View,
        group: &str,
    ) -> Result<Vec<ViewRow>, StoreError> {
        let mut prefix = keys::view_prefix(nhs, view as u8);
        prefix.extend_from_slice(group.as_bytes());
        prefix.push(0);
        let view_prefix_len = prefix.len() - group.len() - 1;
        self.scan_prefix(CF_CURRENT, &prefix, |key, value| {
            row_of(&key[view_prefix_len..], value)
        })
    }

    /// The newest standing event of each group of one view of a patient, by group: only
    /// those rows are read and decoded, so years of observations of one code cost one
    /// row, not one per observation.
    pub fn newest_view_rows(
        &self,
        nhs: &NhsNumber,
        view: View,
    ) -> Result<Vec<ViewRow>, StoreError> {
        let prefix = keys::view_prefix(nhs, view as u8);
        self.last_of_each_group(CF_CURRENT, &prefix, keys::TIME_AND_ID_LEN, |key, value| {
            row_of(&key[prefix.len()..], value)
        })
    }

    /// The patient's sharing-choice events, by category then time.
    pub fn choice_rows(&self, nhs: &NhsNumber) -> Result<Vec<ViewRow>, StoreError> {
        self.rows_under(CF_CHOICES, &keys::view_prefix(nhs, b'C'))
    }

    fn rows_under(&self, cf: &str, prefix: &[u8]) -> Result<Vec<ViewRow>, StoreError> {
        self.scan_prefix(cf, prefix, |key, value| row_of(&key[prefix.len()..], value))
    }
}

/// The value of an event's view rows: postcard over the event's fields in order, the
/// envelope's ids as 16 bytes (ids inside a payload as text). Reading it back is many
/// times cheaper than decoding the event's Avro, and the summaries and the access
/// policy read these rows on every request. Postcard is not self-describing: the
/// store's format names the event schema these rows follow
/// ([`crate::store::store_format`]), and a test pins the bytes of every postcard row,
/// since reordering a Rust enum or struct changes them without changing the schema.
pub(crate) fn stored_event(event: &ClinicalEvent) -> Vec<u8> {
    postcard::to_stdvec(&(
        event.event_id.as_bytes(),
        event.nhs_number.as_str(),
        event.occurred_at,
        event.recorded_at,
        &event.source,
        &event.author,
        &event.code,
        &event.sensitivity,
        event.status,
        event.supersedes.as_ref().map(EventId::as_bytes),
        &event.encounter_id,
        &event.payload,
    ))
    .expect("a ClinicalEvent always serialises")
}

/// [`stored_event`]'s fields, as read back.
type StoredEvent = (
    [u8; 16],
    String,
    EpochMillis,
    EpochMillis,
    Source,
    Author,
    Code,
    Vec<String>,
    Status,
    Option<[u8; 16]>,
    Option<String>,
    Payload,
);

/// Reads [`stored_event`]'s bytes back.
fn event_from_stored(bytes: &[u8]) -> Result<ClinicalEvent, StoreError> {
    let stored: StoredEvent = from_postcard(bytes, "view row")?;
    Ok(ClinicalEvent {
        event_id: EventId::from_bytes(stored.0),
        nhs_number: NhsNumber::parse(&stored.1).map_err(|e| StoreError::Corrupt {
            what: "view row",
            detail: e.to_string(),
        })?,
        occurred_at: stored.2,
        recorded_at: stored.3,
        source: stored.4,
        author: stored.5,
        code: stored.6,
        sensitivity: stored.7,
        status: stored.8,
        supersedes: stored.9.map(EventId::from_bytes),
        encounter_id: stored.10,
        payload: stored.11,
    })
}

/// A view row from its key after the view prefix (`group | 0 | time | id`) and value.
fn row_of(rest: &[u8], value: &[u8]) -> Result<ViewRow, StoreError> {
    let end = rest.len().saturating_sub(keys::TIME_AND_ID_LEN + 1);
    let group = String::from_utf8_lossy(&rest[..end]).into_owned();
    Ok(ViewRow {
        group,
        event: event_from_stored(value)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_reads_back_from_its_stored_form_as_written() {
        let nhs = "9990000018".parse().unwrap();
        let mut events = spr_schemas::examples::one_of_each_type(nhs);
        let mut amendment = events[0].clone();
        amendment.event_id = EventId::random();
        amendment.status = Status::Amended;
        amendment.supersedes = Some(events[0].event_id);
        events.push(amendment);
        for event in events {
            let stored = stored_event(&event);
            assert_eq!(event_from_stored(&stored).unwrap(), event);
            let mut longer = stored.clone();
            longer.push(0);
            assert!(matches!(
                event_from_stored(&longer),
                Err(StoreError::Corrupt { .. })
            ));
            for cut in [0, 1, stored.len() / 2, stored.len() - 1] {
                assert!(
                    matches!(
                        event_from_stored(&stored[..cut]),
                        Err(StoreError::Corrupt { .. })
                    ),
                    "{} cut at {cut}",
                    event.event_type().as_str()
                );
            }
        }
    }

    /// Fails when the bytes of the projection's postcard rows change (a field or an enum
    /// variant added, removed or moved in the envelope, a payload or a timeline entry):
    /// projections written before could then be misread. Bump `STORE_FORMAT` in
    /// store.rs, then pin the new digest here.
    #[test]
    fn the_stored_forms_of_every_event_type_are_pinned() {
        use crate::store::{Supersession, TimelineEntry};
        use sha2::{Digest, Sha256};
        let nhs = "9990000018".parse().unwrap();
        let fixed = |n: u8| EventId::from_bytes([n; 16]);
        let mut digest = Sha256::new();
        for (i, mut event) in spr_schemas::examples::one_of_each_type(nhs)
            .into_iter()
            .enumerate()
        {
            // The examples' ids are random: fix them, in the envelope and in payloads.
            event.event_id = fixed(i as u8);
            match &mut event.payload {
                Payload::DiagnosticReport(r) => r.result_ids = vec![fixed(0xA0)],
                Payload::MedicationDispensed(d) => d.prescription_id = Some(fixed(0xA1)),
                Payload::MedicationStopped(s) => s.prescription_id = Some(fixed(0xA2)),
                _ => {}
            }
            let correction = Supersession {
                event_id: fixed(0xA3),
                status: Status::Amended,
                recorded_at: event.recorded_at + 1,
            };
            digest.update(stored_event(&event));
            digest.update(TimelineEntry::stored(&event, Some(correction)));
            digest.update(correction.to_bytes());
        }
        assert_eq!(
            hex::encode(digest.finalize()),
            "885714dbe038636ff2d1897e59b5c3f9c19e76400a8023f1d103e218f91656e9"
        );
    }

    #[test]
    fn every_event_type_is_placed_deliberately() {
        // Types with no current-state view live on the timeline only.
        let timeline_only = [
            "diagnostic-report",
            "procedure",
            "immunisation",
            "care-plan",
            "genomic-result",
        ];
        let nhs = "9990000018".parse().unwrap();
        for event in spr_schemas::examples::one_of_each_type(nhs) {
            let rows = rows_of(&event);
            let name = event.event_type().as_str();
            assert_eq!(
                rows.is_empty(),
                timeline_only.contains(&name) && event.encounter_id.is_none(),
                "{name}: {rows:?}"
            );
        }
    }
}
