//! Importing a document: patient resolution, provenance, stable event ids and the
//! report of what was mapped, what was not and why.

use std::collections::BTreeMap;

use serde_json::Value;
use spr_schemas::{
    Author, CareSetting, ClinicalEvent, Code, EpochMillis, EventId, NhsNumber, Payload, Source,
    Status,
};
use uuid::Uuid;

use super::document::{type_and_id, Document, ReferenceIndex, UnreadableDocument};
use super::elements::{
    at, first, identifier_in, list, parse_time, sensitivity_of, text, time_at, CARE_SETTING_SYSTEM,
    NHS_NUMBER_SYSTEM, ODS_SYSTEM, SDS_USER_SYSTEM,
};
use super::resources;

/// Namespace of the UUID v5 event ids derived from FHIR resource identities.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5b7e_61c4_2d0a_4f59_9a3e_6c1f_f4d2_8e01);

/// The identifier system of encounter ids on exported Encounters.
pub const ENCOUNTER_ID_SYSTEM: &str = "https://spr.nhs.uk/Id/encounter-id";
/// The identifier system of pregnancy episode ids on exported pregnancy Conditions.
pub const PREGNANCY_EPISODE_SYSTEM: &str = "https://spr.nhs.uk/Id/pregnancy-episode";

/// Provenance that the documents do not carry themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSettings {
    /// The publishing system (from the CLI flag or the gateway's credentials); part of every event id.
    pub source_system: String,
    /// ODS code used when a resource names no organisation with an ODS code.
    pub ods_code: String,
    /// Care setting used when neither a `meta.tag` nor the encounter class gives one.
    pub care_setting: CareSetting,
}

/// Parses a care setting as written on a command line or in a token claim
/// (`gp`, `acute`, `mental-health`, ..., or the schema's own `MENTAL_HEALTH`).
pub fn parse_care_setting(text: &str) -> Result<CareSetting, String> {
    serde_json::from_value(serde_json::json!(text.to_ascii_uppercase().replace('-', "_")))
        .map_err(|_| format!("unknown care setting {text:?}; use one of gp, acute, mental-health, community, ambulance, maternity, pharmacy, social-care, patient-generated, unknown"))
}

/// A resource that produced no event, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmapped {
    /// Its FHIR type.
    pub resource_type: String,
    /// Its identity (`Type/id`, an identifier, or its position in the document).
    pub resource: String,
    /// Why it was not mapped.
    pub reason: String,
}

/// What one document gave.
#[derive(Debug, Clone, Default)]
pub struct DocumentImport {
    /// The events, in document order (a stopped MedicationRequest gives two).
    pub events: Vec<ClinicalEvent>,
    /// Resources mapped to at least one event, per FHIR type.
    pub mapped: BTreeMap<String, usize>,
    /// Resources that gave no event, with reasons.
    pub unmapped: Vec<Unmapped>,
}

impl DocumentImport {
    /// How many resources the document held (mapped plus unmapped).
    pub fn resource_count(&self) -> usize {
        self.mapped.values().sum::<usize>() + self.unmapped.len()
    }
}

/// A document that is not imported at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectedDocument {
    /// It could not be read or parsed.
    #[error(transparent)]
    Unreadable(#[from] UnreadableDocument),
    /// One of its patients has no valid NHS number, so none of it is imported.
    #[error("{document}: rejected as a whole: patient {patient} {reason}; give every Patient an identifier with system {NHS_NUMBER_SYSTEM} holding a valid NHS number, then import it again")]
    Patient {
        /// The document.
        document: String,
        /// The patient reference (fullUrl, `Patient/id`, or the identifier given).
        patient: String,
        /// What is wrong with its NHS number.
        reason: String,
    },
}

/// Why one resource gives no event.
#[derive(Debug)]
pub(crate) enum Skip {
    /// Report it and carry on.
    Unmapped(String),
    /// Reject the whole document: a patient's NHS number is missing or invalid.
    Patient {
        /// The patient reference.
        patient: String,
        /// What is wrong.
        reason: String,
    },
}

impl Skip {
    pub(crate) fn unmapped(reason: impl Into<String>) -> Self {
        Self::Unmapped(reason.into())
    }
}

/// One event's worth of content from a resource, before the envelope is added.
#[derive(Debug)]
pub(crate) struct Fact {
    /// Distinguishes the events of one resource (empty for the first).
    pub(crate) discriminator: &'static str,
    /// What it is.
    pub(crate) code: Code,
    /// Its payload.
    pub(crate) payload: Payload,
    /// Clinical time when it is not the resource's own.
    pub(crate) occurred_at: Option<EpochMillis>,
    /// Sensitivity labels the content itself implies.
    pub(crate) sensitivity: Vec<String>,
}

impl Fact {
    pub(crate) fn new(code: Code, payload: Payload) -> Self {
        Self {
            discriminator: "",
            code,
            payload,
            occurred_at: None,
            sensitivity: vec![],
        }
    }
}

/// Imports one document: every Patient must carry a valid NHS number (else the
/// document is rejected); every other resource gives events or an [`Unmapped`] entry.
pub fn import_document(
    document: &Document,
    settings: &ImportSettings,
) -> Result<DocumentImport, RejectedDocument> {
    let context = ImportContext {
        settings,
        index: ReferenceIndex::new(document),
    };
    let reject = |patient: String, reason: String| RejectedDocument::Patient {
        document: document.name.clone(),
        patient,
        reason,
    };
    for (position, entry) in document.entries.iter().enumerate() {
        if text(&entry.resource, &["resourceType"]) == Some("Patient") {
            nhs_number_of(&entry.resource).map_err(|reason| {
                reject(
                    entry_identity(&entry.resource, entry.full_url.as_deref(), position),
                    reason,
                )
            })?;
        }
    }
    let mut import = DocumentImport::default();
    for (position, entry) in document.entries.iter().enumerate() {
        let resource = &entry.resource;
        let resource_type = text(resource, &["resourceType"]).unwrap_or("(no resourceType)");
        let identity = entry_identity(resource, entry.full_url.as_deref(), position);
        match context.events_of(resource, &identity) {
            Ok(events) => {
                *import.mapped.entry(resource_type.to_owned()).or_default() += 1;
                import.events.extend(events);
            }
            Err(Skip::Unmapped(reason)) => import.unmapped.push(Unmapped {
                resource_type: resource_type.to_owned(),
                resource: identity,
                reason,
            }),
            Err(Skip::Patient { patient, reason }) => return Err(reject(patient, reason)),
        }
    }
    Ok(import)
}

/// The NHS number of a Patient resource.
fn nhs_number_of(patient: &Value) -> Result<NhsNumber, String> {
    let identifiers: Vec<&Value> = list(patient, "identifier")
        .iter()
        .chain(patient.get("identifier").filter(|i| i.is_object()))
        .filter(|i| text(i, &["system"]) == Some(NHS_NUMBER_SYSTEM))
        .collect();
    let mut numbers = Vec::new();
    for identifier in identifiers {
        let value = match identifier.get("value") {
            Some(Value::String(value)) => value,
            Some(other) => {
                return Err(format!(
                "has an NHS number identifier whose value is {other}, not a string of ten digits"
            ))
            }
            None => return Err("has an NHS number identifier with no value".into()),
        };
        let number = NhsNumber::parse(value.as_str()).map_err(|e| e.to_string())?;
        if !numbers.contains(&number) {
            numbers.push(number);
        }
    }
    match numbers.as_slice() {
        [] => Err(format!("has no identifier with system {NHS_NUMBER_SYSTEM}")),
        [number] => Ok(*number),
        [first, second, ..] => Err(format!(
            "has two different NHS numbers ({first} and {second}); send one Patient per person"
        )),
    }
}

/// A resource's identity: `Type/id`, else `Type?identifier=system|value`, else its
/// fullUrl, else its position in the document.
fn entry_identity(resource: &Value, full_url: Option<&str>, position: usize) -> String {
    let resource_type = text(resource, &["resourceType"]).unwrap_or("Resource");
    if let Some(id) = text(resource, &["id"]) {
        return format!("{resource_type}/{id}");
    }
    if let Some(identifier) = first(resource, "identifier") {
        if let Some(value) = text(identifier, &["value"]) {
            let system = text(identifier, &["system"]).unwrap_or("");
            return format!("{resource_type}?identifier={system}|{value}");
        }
    }
    full_url
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{resource_type} at entry {position}"))
}

/// What mapping one document needs: the settings and the document's references.
#[derive(Debug)]
pub(crate) struct ImportContext<'a> {
    pub(crate) settings: &'a ImportSettings,
    pub(crate) index: ReferenceIndex<'a>,
}

impl<'a> ImportContext<'a> {
    /// The stable event id of a resource identity, version and fact.
    pub(crate) fn event_id(
        &self,
        identity: &str,
        version: Option<&str>,
        discriminator: &str,
    ) -> EventId {
        let name = format!(
            "{}|{identity}|{}|{discriminator}",
            self.settings.source_system,
            version.unwrap_or("")
        );
        EventId::from_uuid(Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes()))
    }

    /// The event id of the resource a reference points to (as its own import would
    /// derive it), resolved in the document or taken from the reference itself.
    pub(crate) fn referenced_event_id(
        &self,
        container: &'a Value,
        reference: &Value,
    ) -> Option<EventId> {
        if let Some(target) = self.index.resolve(container, reference) {
            let identity = entry_identity(target, None, 0);
            return Some(self.event_id(&identity, text(target, &["meta", "versionId"]), ""));
        }
        let literal = text(reference, &["reference"])?;
        let (resource_type, id) = type_and_id(literal)?;
        Some(self.event_id(&format!("{resource_type}/{id}"), None, ""))
    }

    /// The events of one resource.
    fn events_of(&self, resource: &'a Value, identity: &str) -> Result<Vec<ClinicalEvent>, Skip> {
        let facts = resources::facts(self, resource, identity)?;
        let nhs_number = self.patient_of(resource)?;
        let occurred_at = occurred_at(resource);
        let recorded_at = recorded_at(resource);
        let version = text(resource, &["meta", "versionId"]);
        let entered_in_error = is_entered_in_error(resource);
        let (author, ods_code) = self.author_and_organisation(resource);
        let source = Source {
            system: self.settings.source_system.clone(),
            ods_code,
            care_setting: self.care_setting(resource),
            record_id: Some(match version {
                Some(v) => format!("{identity}/_history/{v}"),
                None => identity.to_owned(),
            }),
        };
        let sensitivity = sensitivity_of(resource);
        let encounter_id = self.encounter_id(resource);
        facts
            .into_iter()
            .map(|fact| {
                let occurred_at = match fact.occurred_at {
                    Some(at) => at,
                    None => occurred_at.clone().map_err(Skip::unmapped)?.ok_or_else(|| {
                        Skip::unmapped("no clinical time: none of effective[x], onset[x], period, performed[x], occurrence[x], authoredOn, date, recordedDate, issued or meta.lastUpdated is set")
                    })?,
                };
                let (status, supersedes, discriminator) = if entered_in_error {
                    let previous = previous_version(version);
                    (
                        Status::EnteredInError,
                        Some(self.event_id(identity, previous.as_deref(), fact.discriminator)),
                        format!("{}entered-in-error", fact.discriminator),
                    )
                } else {
                    (Status::Final, None, fact.discriminator.to_owned())
                };
                let mut labels = sensitivity.clone();
                labels.extend(fact.sensitivity);
                labels.sort();
                labels.dedup();
                let event = ClinicalEvent {
                    event_id: self.event_id(identity, version, &discriminator),
                    nhs_number,
                    occurred_at,
                    recorded_at: recorded_at.unwrap_or(occurred_at),
                    source: source.clone(),
                    author: author.clone(),
                    code: fact.code,
                    sensitivity: labels,
                    status,
                    supersedes,
                    encounter_id: encounter_id.clone(),
                    payload: fact.payload,
                };
                event.check().map_err(|reason| {
                    Skip::unmapped(format!("its event would be refused: {reason}"))
                })?;
                Ok(event)
            })
            .collect()
    }

    /// The NHS number of the resource's patient (itself, for a Patient).
    fn patient_of(&self, resource: &'a Value) -> Result<NhsNumber, Skip> {
        if text(resource, &["resourceType"]) == Some("Patient") {
            return nhs_number_of(resource).map_err(|reason| Skip::Patient {
                patient: entry_identity(resource, None, 0),
                reason,
            });
        }
        let reference = resource
            .get("subject")
            .or_else(|| resource.get("patient"))
            .ok_or_else(|| Skip::unmapped("names no subject or patient"))?;
        let described = text(reference, &["reference"])
            .map(str::to_owned)
            .unwrap_or_else(|| reference.to_string());
        if let Some(value) = reference.get("identifier").and_then(|i| {
            (text(i, &["system"]) == Some(NHS_NUMBER_SYSTEM)).then(|| text(i, &["value"]))
        }) {
            let value = value.unwrap_or_default();
            return NhsNumber::parse(value).map_err(|e| Skip::Patient {
                patient: format!("identifier {NHS_NUMBER_SYSTEM}|{value}"),
                reason: e.to_string(),
            });
        }
        match self.index.resolve(resource, reference) {
            Some(patient) if text(patient, &["resourceType"]) == Some("Patient") => {
                nhs_number_of(patient).map_err(|reason| Skip::Patient {
                    patient: described,
                    reason,
                })
            }
            Some(other) => Err(Skip::unmapped(format!(
                "its subject {described} is a {}, not a Patient",
                text(other, &["resourceType"]).unwrap_or("resource")
            ))),
            None => Err(Skip::unmapped(format!(
                "its patient {described} is not in this document; include the Patient (with its NHS number) in the same Bundle"
            ))),
        }
    }

    /// Who recorded the resource, and the ODS code of their organisation.
    fn author_and_organisation(&self, resource: &'a Value) -> (Author, String) {
        let mut author = None;
        // An encounter happens at its service provider, whoever else took part in it.
        let mut ods = resource.get("serviceProvider").and_then(|provider| {
            self.ods_code_of(resource, provider, self.index.resolve(resource, provider))
        });
        for reference in people(resource) {
            let target = self.index.resolve(resource, reference);
            ods = ods.or_else(|| self.ods_code_of(resource, reference, target));
            if author.is_none() {
                author = target.and_then(|t| self.author_of(resource, t));
            }
        }
        (
            author.unwrap_or_else(|| Author {
                id: "unknown".into(),
                role: "unknown".into(),
            }),
            ods.unwrap_or_else(|| self.settings.ods_code.clone()),
        )
    }

    /// The ODS code of a referenced organisation (or of a PractitionerRole's organisation).
    fn ods_code_of(
        &self,
        container: &'a Value,
        reference: &Value,
        target: Option<&'a Value>,
    ) -> Option<String> {
        if let Some(code) = reference
            .get("identifier")
            .filter(|i| text(i, &["system"]) == Some(ODS_SYSTEM))
            .and_then(|i| text(i, &["value"]))
        {
            return Some(code.to_owned());
        }
        let target = target?;
        match text(target, &["resourceType"])? {
            "Organization" => identifier_in(target, ODS_SYSTEM).map(str::to_owned),
            "PractitionerRole" => {
                let organisation = target.get("organization")?;
                self.ods_code_of(
                    target,
                    organisation,
                    self.index
                        .resolve(container, organisation)
                        .or_else(|| self.index.resolve(target, organisation)),
                )
            }
            _ => None,
        }
    }

    /// The author a Practitioner or PractitionerRole describes.
    fn author_of(&self, container: &'a Value, target: &'a Value) -> Option<Author> {
        match text(target, &["resourceType"])? {
            "Practitioner" => Some(Author {
                id: practitioner_id(target),
                role: first(target, "qualification")
                    .and_then(|q| q.get("code"))
                    .and_then(super::elements::concept_text)
                    .unwrap_or_else(|| "unknown".into()),
            }),
            "PractitionerRole" => {
                let practitioner = target.get("practitioner");
                let id = practitioner
                    .and_then(|p| {
                        self.index
                            .resolve(container, p)
                            .or_else(|| self.index.resolve(target, p))
                            .map(practitioner_id)
                            .or_else(|| {
                                p.get("identifier")
                                    .and_then(|i| text(i, &["value"]))
                                    .map(str::to_owned)
                            })
                    })
                    .or_else(|| identifier_in(target, SDS_USER_SYSTEM).map(str::to_owned))
                    .unwrap_or_else(|| entry_identity(target, None, 0));
                let role = first(target, "code")
                    .and_then(super::elements::concept_text)
                    .or_else(|| first(target, "specialty").and_then(super::elements::concept_text))
                    .unwrap_or_else(|| "unknown".into());
                Some(Author { id, role })
            }
            _ => None,
        }
    }

    /// The care setting: a `meta.tag`, else the encounter's class, else the default.
    fn care_setting(&self, resource: &'a Value) -> CareSetting {
        let tagged = at(resource, &["meta", "tag"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|t| text(t, &["system"]) == Some(CARE_SETTING_SYSTEM))
            .and_then(|t| serde_json::from_value(t.get("code")?.clone()).ok());
        let encounter = if text(resource, &["resourceType"]) == Some("Encounter") {
            Some(resource)
        } else {
            resource
                .get("encounter")
                .and_then(|e| self.index.resolve(resource, e))
        };
        tagged
            .or_else(|| encounter.and_then(|e| care_setting_of_class(e.get("class")?)))
            .unwrap_or(self.settings.care_setting)
    }

    /// The source identifier of the encounter the resource belongs to (its own, for an Encounter).
    fn encounter_id(&self, resource: &'a Value) -> Option<String> {
        if text(resource, &["resourceType"]) == Some("Encounter") {
            return identifier_in(resource, ENCOUNTER_ID_SYSTEM)
                .or_else(|| text(resource, &["id"]))
                .map(str::to_owned);
        }
        let reference = resource
            .get("encounter")
            .or_else(|| resource.get("context"))?;
        if let Some(encounter) = self.index.resolve(resource, reference) {
            return identifier_in(encounter, ENCOUNTER_ID_SYSTEM)
                .or_else(|| text(encounter, &["id"]))
                .map(str::to_owned);
        }
        text(reference, &["reference"])
            .and_then(type_and_id)
            .map(|(_, id)| id.to_owned())
            .or_else(|| {
                reference
                    .get("identifier")
                    .and_then(|i| text(i, &["value"]))
                    .map(str::to_owned)
            })
    }
}

/// The references that may name who recorded a resource or their organisation, in
/// order of preference.
fn people(resource: &Value) -> Vec<&Value> {
    const KEYS: [&str; 10] = [
        "recorder",
        "asserter",
        "requester",
        "author",
        "performer",
        "participant",
        "serviceProvider",
        "managingOrganization",
        "custodian",
        "organization",
    ];
    let mut found = Vec::new();
    for key in KEYS {
        let items: Vec<&Value> = match resource.get(key) {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(item) => vec![item],
            None => continue,
        };
        for item in items {
            let reference = ["actor", "individual", "member"]
                .iter()
                .find_map(|k| item.get(*k))
                .unwrap_or(item);
            found.push(reference);
        }
    }
    found
}

/// A Practitioner's id: its SDS user id, else its first identifier, else `Practitioner/id`.
fn practitioner_id(practitioner: &Value) -> String {
    identifier_in(practitioner, SDS_USER_SYSTEM)
        .or_else(|| first(practitioner, "identifier").and_then(|i| text(i, &["value"])))
        .map(str::to_owned)
        .unwrap_or_else(|| entry_identity(practitioner, None, 0))
}

/// The care setting an Encounter class (v3 ActCode) implies, if any.
pub(crate) fn care_setting_of_class(class: &Value) -> Option<CareSetting> {
    match text(class, &["code"])? {
        "EMER" | "IMP" | "ACUTE" | "NONAC" | "SS" | "OBSENC" | "PRENC" => Some(CareSetting::Acute),
        "HH" => Some(CareSetting::Community),
        _ => None,
    }
}

/// Whether the resource's status or verification status is `entered-in-error`.
fn is_entered_in_error(resource: &Value) -> bool {
    text(resource, &["status"]) == Some("entered-in-error")
        || resource
            .get("verificationStatus")
            .is_some_and(|v| super::elements::has_code(v, "entered-in-error"))
}

/// The version an entered-in-error resource withdraws: the one before it when versions
/// are numbers (`3` withdraws `2`), else the unversioned identity.
fn previous_version(version: Option<&str>) -> Option<String> {
    let n: u64 = version?.parse().ok()?;
    (n > 1).then(|| (n - 1).to_string())
}

/// Clinical time: the first of the resource's time elements that is set, in this order
/// (a `.start` suffix means the start of a Period); an error if that element does not parse.
fn occurred_at(resource: &Value) -> Result<Option<EpochMillis>, String> {
    const TIMES: [&str; 20] = [
        "effectiveDateTime",
        "effectiveInstant",
        "effectivePeriod.start",
        "onsetDateTime",
        "onsetPeriod.start",
        "performedDateTime",
        "performedPeriod.start",
        "occurrenceDateTime",
        "occurrencePeriod.start",
        "period.start",
        "authoredOn",
        "whenHandedOver",
        "whenPrepared",
        "dateTime",
        "date",
        "created",
        "recordedDate",
        "issued",
        "meta.lastUpdated",
        "birthDate",
    ];
    for path in TIMES {
        let keys: Vec<&str> = path.split('.').collect();
        if let Some(value) = text(resource, &keys) {
            // The first time present decides: one that does not parse is an error, not
            // a reason to date the event by a later element such as meta.lastUpdated.
            return parse_time(value).map(Some).ok_or_else(|| {
                format!(
                    "{path} {value:?} is not a valid FHIR date or dateTime (a real calendar date; a time needs seconds and a time zone, such as 2024-01-31T09:30:00Z)"
                )
            });
        }
    }
    Ok(None)
}

/// Record time: `meta.lastUpdated`, `recordedDate`, `recorded`, `issued`, `authoredOn` or `date`.
fn recorded_at(resource: &Value) -> Option<EpochMillis> {
    text(resource, &["meta", "lastUpdated"])
        .and_then(parse_time)
        .or_else(|| {
            ["recordedDate", "recorded", "issued", "authoredOn", "date"]
                .iter()
                .find_map(|k| time_at(resource, k))
        })
}
