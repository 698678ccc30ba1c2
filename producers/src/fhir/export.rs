//! Exporting events as FHIR R4: one resource per event (the inverse of the import
//! mapping, with provenance kept) and the `searchset` Bundle of `$everything`.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};
use spr_schemas::*;
use uuid::Uuid;

use super::elements::{
    format_time, narrative_div, security_label, CARE_SETTING_SYSTEM, EVENT_ID_SYSTEM,
    NHS_NUMBER_SYSTEM, ODS_SYSTEM, SDS_USER_SYSTEM, SOURCE_RECORD_SYSTEM, V3_ACT_CODE,
};
use super::import::{ENCOUNTER_ID_SYSTEM, PREGNANCY_EPISODE_SYSTEM};
use super::resources::{
    LOINC_DISCHARGE_SUMMARY, SECTION_DESTINATION, SECTION_DIAGNOSES, SECTION_FOLLOW_UP,
    SECTION_HOSPITAL_COURSE, SECTION_MEDICATIONS, SNOMED_REFERRAL,
};

/// Namespace of the UUID v5 ids of exported Patient resources (from the NHS number).
const PATIENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x1c0f_3a9e_77d2_4b4c_8e5f_0d6a_b3c2_9f10);

/// The id of the Patient resource of an NHS number in exported Bundles.
pub fn patient_resource_id(nhs_number: &NhsNumber) -> Uuid {
    Uuid::new_v5(&PATIENT_ID_NAMESPACE, nhs_number.as_str().as_bytes())
}

/// The patient's record as a FHIR R4 `searchset` Bundle (`$everything`): their Patient
/// first (from the latest demographics event, with NHS number merges as `link`), then
/// one resource per event, oldest first. A stop whose prescription is in `events` is
/// folded into that MedicationRequest (status `stopped`) rather than exported alone.
pub fn everything_bundle(nhs_number: &NhsNumber, events: &[ClinicalEvent]) -> Value {
    let patient_url = format!("urn:uuid:{}", patient_resource_id(nhs_number));
    let mut ordered: Vec<&ClinicalEvent> = events.iter().collect();
    ordered.sort_by_key(|e| (e.occurred_at, e.event_id));
    let prescriptions: HashSet<EventId> = ordered
        .iter()
        .filter(|e| e.event_type() == EventType::MedicationPrescribed)
        .map(|e| e.event_id)
        .collect();
    let mut stops: HashMap<EventId, &ClinicalEvent> = HashMap::new();
    for event in &ordered {
        if let Payload::MedicationStopped(MedicationStoppedPayload {
            prescription_id: Some(p),
            ..
        }) = &event.payload
        {
            if prescriptions.contains(p) {
                stops.insert(*p, event);
            }
        }
    }
    let demographics = ordered
        .iter()
        .rev()
        .find(|e| e.event_type() == EventType::Demographics)
        .copied();
    let mut patient = match demographics {
        Some(event) => resource_of(event, &patient_url),
        None => json!({"resourceType": "Patient"}),
    };
    patient["id"] = json!(patient_resource_id(nhs_number).to_string());
    add_identifier(&mut patient, NHS_NUMBER_SYSTEM, nhs_number.as_str());
    let links: Vec<Value> = ordered
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::NhsNumberMerge(m) => Some(json!({
                "other": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": m.retired_nhs_number.as_str()}},
                "type": "replaces"
            })),
            _ => None,
        })
        .collect();
    if !links.is_empty() {
        patient["link"] = json!(links);
    }
    let mut entries = vec![entry(&patient_url, patient)];
    for event in ordered {
        let folded = matches!(&event.payload, Payload::MedicationStopped(MedicationStoppedPayload { prescription_id: Some(p), .. }) if stops.contains_key(p));
        if folded
            || matches!(
                event.event_type(),
                EventType::Demographics | EventType::NhsNumberMerge
            )
        {
            continue;
        }
        let mut resource = resource_of(event, &patient_url);
        if let Some(stop) = stops.get(&event.event_id) {
            fold_stop(&mut resource, stop);
        }
        entries.push(entry(&format!("urn:uuid:{}", event.event_id), resource));
    }
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "entry": entries,
    })
}

fn entry(full_url: &str, resource: Value) -> Value {
    json!({"fullUrl": full_url, "resource": resource, "search": {"mode": "match"}})
}

/// Marks a MedicationRequest stopped: status, reason, and the stop time as the end of
/// its validity period.
fn fold_stop(resource: &mut Value, stop: &ClinicalEvent) {
    resource["status"] = json!("stopped");
    if let Payload::MedicationStopped(s) = &stop.payload {
        if let Some(reason) = &s.reason {
            resource["statusReason"] = json!({"text": reason});
        }
    }
    resource["dispenseRequest"]["validityPeriod"] = json!({"end": format_time(stop.occurred_at)});
}

fn add_identifier(resource: &mut Value, system: &str, value: &str) {
    let identifiers = resource
        .as_object_mut()
        .expect("a resource is an object")
        .entry("identifier")
        .or_insert_with(|| json!([]));
    if let Some(list) = identifiers.as_array_mut() {
        list.push(json!({"system": system, "value": value}));
    }
}

/// A Code as a CodeableConcept.
fn concept(code: &Code) -> Value {
    if code.code.is_empty() {
        return json!({"text": code.display});
    }
    json!({"coding": [{"system": code.system, "code": code.code, "display": code.display}], "text": code.display})
}

fn text_concept(text: &str) -> Value {
    json!({"text": text})
}

fn time(at: EpochMillis) -> Value {
    json!(format_time(at))
}

/// `"28 tablet"` as a Quantity (the number kept as written, and the unit), or as a
/// unit-only quantity when the text does not start with a number.
fn quantity(text: &str) -> Value {
    let (number, unit) = text.split_once(' ').unwrap_or((text, ""));
    match serde_json::from_str::<serde_json::Number>(number) {
        Ok(value) if unit.is_empty() => json!({"value": value}),
        Ok(value) => json!({"value": value, "unit": unit}),
        Err(_) => json!({"unit": text}),
    }
}

/// One event as a FHIR R4 resource whose subject is `patient_url`.
pub fn resource_of(event: &ClinicalEvent, patient_url: &str) -> Value {
    let author = json!({
        "reference": "#author",
        "display": format!("{} ({})", event.author.id, event.author.role),
    });
    let (resource_type, subject_key, author_key, body) = body_of(event, &author);
    let mut resource = Map::new();
    resource.insert("resourceType".into(), json!(resource_type));
    resource.insert("id".into(), json!(event.event_id.to_string()));
    let mut meta = json!({
        "lastUpdated": time(event.recorded_at),
        "source": event.source.system,
        "tag": [{"system": CARE_SETTING_SYSTEM, "code": event.source.care_setting}],
    });
    if !event.sensitivity.is_empty() {
        meta["security"] = event
            .sensitivity
            .iter()
            .map(|l| security_label(l))
            .collect();
    }
    resource.insert("meta".into(), meta);
    let mut identifiers =
        vec![json!({"system": EVENT_ID_SYSTEM, "value": event.event_id.to_string()})];
    if let Some(record) = &event.source.record_id {
        identifiers.push(json!({"system": SOURCE_RECORD_SYSTEM, "value": record}));
    }
    if let (EventType::Encounter, Some(id)) = (event.event_type(), &event.encounter_id) {
        identifiers.push(json!({"system": ENCOUNTER_ID_SYSTEM, "value": id}));
    }
    resource.insert("identifier".into(), json!(identifiers));
    resource.insert(
        "contained".into(),
        json!([{
            "resourceType": "PractitionerRole",
            "id": "author",
            "practitioner": {"identifier": {"system": SDS_USER_SYSTEM, "value": event.author.id}},
            "organization": {"identifier": {"system": ODS_SYSTEM, "value": event.source.ods_code}},
            "code": [{"text": event.author.role}],
        }]),
    );
    if let Some(key) = subject_key {
        resource.insert(key.into(), json!({"reference": patient_url}));
    }
    if let Some((key, value)) = author_key {
        resource.insert(key.into(), value);
    }
    if event.event_type() != EventType::Encounter {
        if let Some(id) = &event.encounter_id {
            resource.insert(
                "encounter".into(),
                json!({"identifier": {"system": ENCOUNTER_ID_SYSTEM, "value": id}}),
            );
        }
    }
    if let Value::Object(fields) = body {
        resource.extend(fields);
    }
    if event.status == Status::EnteredInError {
        mark_entered_in_error(resource_type, &mut resource);
    }
    let mut resource = Value::Object(resource);
    if let Payload::PregnancyEpisode(p) = &event.payload {
        add_identifier(&mut resource, PREGNANCY_EPISODE_SYSTEM, &p.episode_id);
    }
    remove_empty(&mut resource);
    resource
}

/// Gene, variant and report text as notes.
fn genomic_notes(p: &GenomicResultPayload) -> Vec<Value> {
    [&p.gene, &p.variant, &p.report_text]
        .into_iter()
        .flatten()
        .map(|t| json!({"text": t}))
        .collect()
}

/// Removes nulls, and the objects and arrays left empty, which FHIR JSON does not allow.
fn remove_empty(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.values_mut().for_each(remove_empty);
            fields.retain(|_, v| !is_empty(v));
        }
        Value::Array(items) => {
            items.iter_mut().for_each(remove_empty);
            items.retain(|v| !is_empty(v));
        }
        _ => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(fields) => fields.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// Sets the element that says `entered-in-error` for this resource type.
fn mark_entered_in_error(resource_type: &str, resource: &mut Map<String, Value>) {
    match resource_type {
        "AllergyIntolerance" | "Condition" => {
            resource.remove("clinicalStatus");
            resource.insert(
                "verificationStatus".into(),
                json!({"coding": [{"code": "entered-in-error"}]}),
            );
        }
        _ => {
            resource.insert("status".into(), json!("entered-in-error"));
        }
    }
}

type Body = (
    &'static str,
    Option<&'static str>,
    Option<(&'static str, Value)>,
    Value,
);

/// The type, the subject element, the author element and the type-specific fields.
fn body_of(event: &ClinicalEvent, author: &Value) -> Body {
    let code = concept(&event.code);
    let at = time(event.occurred_at);
    let opt = |t: &Option<EpochMillis>| t.map(time);
    let as_list = |v: &Value| json!([v]);
    match &event.payload {
        Payload::Allergy(p) => (
            "AllergyIntolerance",
            Some("patient"),
            Some(("recorder", author.clone())),
            json!({
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "verificationStatus": {"coding": [{"code": match p.verification {
                    Verification::Confirmed => "confirmed",
                    Verification::Refuted => "refuted",
                    Verification::Unconfirmed => "unconfirmed",
                }}]},
                "criticality": match p.criticality {
                    Criticality::Low => "low",
                    Criticality::High => "high",
                    Criticality::UnableToAssess => "unable-to-assess",
                },
                "code": code,
                "onsetDateTime": at,
                "reaction": p.reaction.as_ref().map(|r| json!([{"manifestation": [text_concept(r)]}])),
            }),
        ),
        Payload::MedicationPrescribed(p) => (
            "MedicationRequest",
            Some("subject"),
            Some(("requester", author.clone())),
            json!({
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": code,
                "authoredOn": at,
                "courseOfTherapyType": {"coding": [{"code": match p.course { Course::Repeat => "continuous", Course::Acute => "acute" }}]},
                "dosageInstruction": [{"text": p.dose, "route": p.route.as_deref().map(text_concept)}],
                "dispenseRequest": {"quantity": p.quantity.as_deref().map(quantity)},
            }),
        ),
        Payload::MedicationStopped(p) => (
            "MedicationRequest",
            Some("subject"),
            Some(("requester", author.clone())),
            json!({
                "status": "stopped",
                "intent": "order",
                "medicationCodeableConcept": code,
                "authoredOn": at,
                "statusReason": p.reason.as_deref().map(text_concept),
                "priorPrescription": p.prescription_id.map(|id| json!({"reference": format!("MedicationRequest/{id}")})),
                "dispenseRequest": {"validityPeriod": {"end": at}},
            }),
        ),
        Payload::MedicationDispensed(p) => (
            "MedicationDispense",
            Some("subject"),
            Some(("performer", json!([{"actor": author}]))),
            json!({
                "status": "completed",
                "medicationCodeableConcept": code,
                "whenHandedOver": at,
                "quantity": p.quantity.as_deref().map(quantity),
                "daysSupply": p.days_supply.map(|d| json!({"value": d})),
                "authorizingPrescription": p.prescription_id.map(|id| json!([{"reference": format!("MedicationRequest/{id}")}])),
            }),
        ),
        Payload::Observation(p) => {
            let mut body = json!({
                "status": "final",
                "code": code,
                "effectiveDateTime": at,
                "issued": time(event.recorded_at),
                "interpretation": p.interpretation.as_ref().map(|i| json!([{"coding": [{"code": i}]}])),
            });
            let category = match p.kind {
                ObservationKind::VitalSign => Some("vital-signs"),
                ObservationKind::Laboratory => Some("laboratory"),
                ObservationKind::Wearable => {
                    body["device"] = json!({"display": "wearable device"});
                    None
                }
                ObservationKind::Other => None,
            };
            if let Some(c) = category {
                body["category"] = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": c}]}]);
            }
            match (p.value, &p.value_text) {
                (Some(v), _) => body["valueQuantity"] = json!({"value": v, "unit": p.unit}),
                (None, Some(t)) => body["valueString"] = json!(t),
                (None, None) => {}
            }
            (
                "Observation",
                Some("subject"),
                Some(("performer", as_list(author))),
                body,
            )
        }
        Payload::Encounter(p) => {
            let (class, display) = match p.encounter_class {
                EncounterClass::Outpatient | EncounterClass::GpConsultation => {
                    ("AMB", "ambulatory")
                }
                EncounterClass::Emergency => ("EMER", "emergency"),
                EncounterClass::Inpatient => ("IMP", "inpatient encounter"),
                EncounterClass::Virtual => ("VR", "virtual"),
                EncounterClass::HomeVisit => ("HH", "home health"),
                EncounterClass::Other => ("OTH", "other"),
            };
            (
                "Encounter",
                Some("subject"),
                Some(("participant", json!([{"individual": author}]))),
                json!({
                    "status": if p.ended_at.is_some() { "finished" } else { "in-progress" },
                    "class": {"system": V3_ACT_CODE, "code": class, "display": display},
                    "type": [code],
                    "period": {"start": at, "end": opt(&p.ended_at)},
                    "location": p.location.as_ref().map(|l| json!([{"location": {"display": l}}])),
                    "reasonCode": p.reason.as_deref().map(|r| json!([text_concept(r)])),
                }),
            )
        }
        Payload::DiagnosticReport(p) => (
            "DiagnosticReport",
            Some("subject"),
            Some(("performer", as_list(author))),
            json!({
                "status": "final",
                "category": p.category.as_ref().map(|c| json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": c}]}])),
                "code": code,
                "effectiveDateTime": at,
                "issued": time(event.recorded_at),
                "conclusion": p.conclusion,
                "result": p.result_ids.iter().map(|id| json!({"reference": format!("urn:uuid:{id}")})).collect::<Vec<_>>(),
            }),
        ),
        Payload::Condition(p) => (
            "Condition",
            Some("subject"),
            Some(("recorder", author.clone())),
            json!({
                "clinicalStatus": {"coding": [{"code": format!("{:?}", p.clinical_status).to_ascii_lowercase()}]},
                "verificationStatus": {"coding": [{"code": format!("{:?}", p.verification).to_ascii_lowercase()}]},
                "code": code,
                "onsetDateTime": opt(&p.onset_at).unwrap_or(at),
                "abatementDateTime": opt(&p.abated_at),
                "severity": p.severity.as_deref().map(text_concept),
                "recordedDate": time(event.recorded_at),
            }),
        ),
        Payload::PregnancyEpisode(p) => (
            "Condition",
            Some("subject"),
            Some(("recorder", author.clone())),
            json!({
                "clinicalStatus": {"coding": [{"code": if p.status == PregnancyStatus::Active { "active" } else { "resolved" }}]},
                "code": code,
                "onsetDateTime": at,
                "note": [{"text": format!("pregnancy episode {}", p.episode_id)}],
            }),
        ),
        Payload::Procedure(p) => (
            "Procedure",
            Some("subject"),
            Some(("recorder", author.clone())),
            json!({
                "status": "completed",
                "code": code,
                "performedPeriod": {"start": at, "end": opt(&p.ended_at)},
                "outcome": p.outcome.as_deref().map(text_concept),
                "bodySite": p.body_site.as_deref().map(|b| json!([text_concept(b)])),
            }),
        ),
        Payload::Birth(p) => (
            "Procedure",
            Some("subject"),
            Some(("recorder", author.clone())),
            json!({
                "status": "completed",
                "code": code,
                "performedDateTime": at,
                "outcome": text_concept(&p.outcome),
                "note": [{"text": format!("pregnancy episode {}", p.episode_id)}],
            }),
        ),
        Payload::Immunisation(p) => (
            "Immunization",
            Some("patient"),
            Some(("performer", json!([{"actor": author}]))),
            json!({
                "status": if p.not_given { "not-done" } else { "completed" },
                "vaccineCode": code,
                "occurrenceDateTime": at,
                "recorded": time(event.recorded_at),
                "lotNumber": p.batch,
                "site": p.site.as_deref().map(text_concept),
                "protocolApplied": p.dose_number.map(|n| json!([{"doseNumberPositiveInt": n}])),
            }),
        ),
        Payload::CarePlan(p) => (
            "CarePlan",
            Some("subject"),
            Some(("author", author.clone())),
            json!({
                "status": "active",
                "intent": "plan",
                "category": [code],
                "title": p.title,
                "description": p.description,
                "period": {"start": at, "end": opt(&p.ends_at)},
                "activity": p.activities.iter().map(|a| json!({"detail": {"status": "scheduled", "description": a}})).collect::<Vec<_>>(),
            }),
        ),
        Payload::DischargeSummary(p) => {
            let section = |code: &str, title: &str, div: Option<&str>, entries: &[String]| {
                json!({
                    "title": title,
                    "code": {"coding": [{"system": LOINC, "code": code}]},
                    "text": div.map(|d| json!({"status": "generated", "div": narrative_div(d)})),
                    "entry": (!entries.is_empty()).then(|| entries.iter().map(|e| json!({"display": e})).collect::<Vec<_>>()),
                })
            };
            let mut sections = vec![section(
                SECTION_HOSPITAL_COURSE,
                "Hospital course",
                Some(&p.summary),
                &[],
            )];
            if !p.diagnoses.is_empty() {
                sections.push(section(
                    SECTION_DIAGNOSES,
                    "Discharge diagnoses",
                    Some(&p.diagnoses.join("; ")),
                    &p.diagnoses,
                ));
            }
            if !p.medications_on_discharge.is_empty() {
                sections.push(section(
                    SECTION_MEDICATIONS,
                    "Medications on discharge",
                    Some(&p.medications_on_discharge.join("; ")),
                    &p.medications_on_discharge,
                ));
            }
            if let Some(f) = &p.follow_up {
                sections.push(section(SECTION_FOLLOW_UP, "Follow-up", Some(f), &[]));
            }
            if let Some(d) = &p.destination {
                sections.push(section(
                    SECTION_DESTINATION,
                    "Discharge destination",
                    Some(d),
                    &[],
                ));
            }
            let mut doc_type = concept(&event.code);
            if event.code.system != LOINC || event.code.code != LOINC_DISCHARGE_SUMMARY {
                let loinc = json!({"system": LOINC, "code": LOINC_DISCHARGE_SUMMARY, "display": "Discharge summary"});
                match doc_type["coding"].as_array_mut() {
                    Some(codings) => codings.push(loinc),
                    None => doc_type["coding"] = json!([loinc]),
                }
            }
            (
                "Composition",
                Some("subject"),
                Some(("author", as_list(author))),
                json!({
                    "status": "final",
                    "type": doc_type,
                    "date": at,
                    "title": "Discharge summary",
                    "event": [{"period": {"start": time(p.admitted_at), "end": time(p.discharged_at)}}],
                    "section": sections,
                }),
            )
        }
        Payload::SafeguardingFlag(p) => {
            let mut flag_code = code;
            if let Some(d) = &p.detail {
                flag_code["text"] = json!(d);
            }
            (
                "Flag",
                Some("subject"),
                Some(("author", author.clone())),
                json!({
                    "status": if p.active { "active" } else { "inactive" },
                    "category": [{"coding": [{"system": "https://spr.nhs.uk/CodeSystem/flag-category", "code": "safeguarding", "display": "Safeguarding"}]}],
                    "code": flag_code,
                    "period": {"start": at, "end": opt(&p.review_at)},
                }),
            )
        }
        Payload::AntenatalVisit(p) => (
            "Encounter",
            Some("subject"),
            Some(("participant", json!([{"individual": author}]))),
            json!({
                "status": "finished",
                "class": {"system": V3_ACT_CODE, "code": "AMB", "display": "ambulatory"},
                "type": [code],
                "period": {"start": at},
                "reasonCode": p.findings.as_deref().map(|f| json!([text_concept(f)])),
                "episodeOfCare": [{"display": format!("pregnancy episode {}", p.episode_id)}],
            }),
        ),
        Payload::Referral(p) => (
            "ServiceRequest",
            Some("subject"),
            Some(("requester", author.clone())),
            json!({
                "status": "active",
                "intent": "order",
                "category": [{"coding": [{"system": SNOMED_CT, "code": SNOMED_REFERRAL, "display": "Patient referral"}]}],
                "code": code,
                "priority": match p.priority {
                    ReferralPriority::Routine => "routine",
                    ReferralPriority::Urgent | ReferralPriority::TwoWeekWait => "urgent",
                    ReferralPriority::Emergency => "stat",
                },
                "authoredOn": at,
                "performerType": text_concept(&p.to_service),
                "performer": [{"identifier": {"system": ODS_SYSTEM, "value": p.to_ods_code}, "display": p.to_service}],
                "reasonCode": p.reason.as_deref().map(|r| json!([text_concept(r)])),
            }),
        ),
        Payload::GenomicResult(p) => (
            "Observation",
            Some("subject"),
            Some(("performer", as_list(author))),
            json!({
                "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                "code": code,
                "effectiveDateTime": at,
                "valueString": p.interpretation,
                "note": genomic_notes(p),
            }),
        ),
        Payload::ConsentChoice(p) => {
            let (kind, emergency) = match p.choice {
                SharingChoice::Share => ("permit", None),
                SharingChoice::Withhold => ("deny", None),
                SharingChoice::WithholdExceptEmergency => (
                    "deny",
                    Some(
                        json!([{"type": "permit", "purpose": [{"system": V3_ACT_CODE, "code": "ETREAT"}]}]),
                    ),
                ),
            };
            (
                "Consent",
                Some("patient"),
                Some(("performer", as_list(author))),
                json!({
                    "status": "active",
                    "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
                    "category": [code],
                    "dateTime": at,
                    "provision": {"type": kind, "securityLabel": [security_label(p.category.as_str())], "provision": emergency},
                }),
            )
        }
        Payload::Demographics(p) => (
            "Patient",
            None,
            None,
            json!({
                "name": [{"use": "official", "family": p.family_name, "given": p.given_name.split(' ').filter(|g| !g.is_empty()).collect::<Vec<_>>()}],
                "birthDate": p.birth_date,
                "gender": p.gender,
                "address": p.postcode.as_ref().map(|pc| json!([{"postalCode": pc}])),
                "generalPractitioner": p.registered_gp_ods_code.as_ref().map(|o| json!([{"identifier": {"system": ODS_SYSTEM, "value": o}}])),
                "deceasedDateTime": opt(&p.deceased_at),
            }),
        ),
        Payload::NhsNumberMerge(p) => (
            "Patient",
            None,
            None,
            json!({"link": [{"other": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": p.retired_nhs_number.as_str()}}, "type": "replaces"}]}),
        ),
        Payload::CareTeam(p) => (
            "CareTeam",
            Some("subject"),
            None,
            json!({
                "status": "active",
                "category": [code],
                "name": p.team,
                "period": {"start": at, "end": opt(&p.ends_at)},
                "managingOrganization": [{"identifier": {"system": ODS_SYSTEM, "value": p.ods_code}}],
                "participant": std::iter::once(json!({"member": author}))
                    .chain(p.practitioner_id.as_ref().map(|id| json!({"member": {"type": "Practitioner", "identifier": {"system": SDS_USER_SYSTEM, "value": id}}})))
                    .collect::<Vec<_>>(),
            }),
        ),
    }
}
