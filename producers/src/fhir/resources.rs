//! Per-resource mapping: what each FHIR R4 resource type becomes (the table in
//! docs/events.md).

use serde_json::{json, Value};
use spr_schemas::*;

use super::elements::{
    code_of, concept_text, first, first_code, has_code, has_coding, identifier_in, list,
    narrative_text, period_end, period_start, text, time_at, ODS_SYSTEM,
};
use super::import::{Fact, ImportContext, Skip};

/// LOINC code of a discharge summary document.
pub(crate) const LOINC_DISCHARGE_SUMMARY: &str = "18842-5";
/// SNOMED CT code of a discharge summary.
pub(crate) const SNOMED_DISCHARGE_SUMMARY: &str = "373942005";
/// SNOMED CT code of a patient referral (ServiceRequest category).
pub(crate) const SNOMED_REFERRAL: &str = "3457005";
/// SNOMED CT pregnancy codes whose Conditions become pregnancy episodes.
const SNOMED_PREGNANCY: [&str; 2] = ["77386006", "72892002"];
/// Discharge summary sections (LOINC), as exported and read back.
pub(crate) const SECTION_HOSPITAL_COURSE: &str = "8648-8";
/// Discharge diagnoses section.
pub(crate) const SECTION_DIAGNOSES: &str = "11535-2";
/// Discharge medications section.
pub(crate) const SECTION_MEDICATIONS: &str = "10183-2";
/// Plan of care (follow-up) section.
pub(crate) const SECTION_FOLLOW_UP: &str = "18776-5";
/// Discharge disposition (destination) section.
pub(crate) const SECTION_DESTINATION: &str = "8650-4";
/// The code given to demographics events.
pub(crate) const DEMOGRAPHICS_CODE: (&str, &str) = ("184099003", "Patient demographics");
/// The code given to care-team events whose CareTeam has no category.
pub(crate) const CARE_TEAM_CODE: (&str, &str) = ("309398001", "Care team assignment");

/// The facts of one resource, or why it has none.
pub(crate) fn facts<'a>(
    context: &ImportContext<'a>,
    r: &'a Value,
    identity: &str,
) -> Result<Vec<Fact>, Skip> {
    let resource_type = text(r, &["resourceType"]).unwrap_or("");
    let code = || code_of(r.get("code")?);
    let one = |code: Option<Code>, payload: Payload| {
        Ok(vec![Fact::new(
            code.unwrap_or_else(|| uncoded(resource_type)),
            payload,
        )])
    };
    match resource_type {
        "Observation" => one(code(), observation(r)),
        "Encounter" => encounter(r),
        "DiagnosticReport" => one(code(), diagnostic_report(context, r)),
        "Condition" => one(code(), condition(r, identity)),
        "AllergyIntolerance" => one(code(), allergy(r)),
        "MedicationRequest" => medication_request(context, r, identity),
        "MedicationDispense" => one(
            medication_code(context, r),
            Payload::MedicationDispensed(MedicationDispensedPayload {
                quantity: r.get("quantity").and_then(quantity_text),
                days_supply: r
                    .get("daysSupply")
                    .and_then(|d| d.get("value")?.as_f64())
                    .map(|d| d as i32),
                prescription_id: first(r, "authorizingPrescription")
                    .and_then(|p| context.referenced_event_id(r, p)),
            }),
        ),
        "Procedure" => one(
            code(),
            Payload::Procedure(ProcedurePayload {
                outcome: r.get("outcome").and_then(concept_text).or_else(|| {
                    (text(r, &["status"]) == Some("not-done")).then(|| "not done".to_owned())
                }),
                body_site: first(r, "bodySite").and_then(concept_text),
                ended_at: period_end(r, "performedPeriod"),
            }),
        ),
        "Immunization" => one(
            r.get("vaccineCode").and_then(code_of),
            Payload::Immunisation(ImmunisationPayload {
                dose_number: first(r, "protocolApplied").and_then(|p| {
                    p.get("doseNumberPositiveInt")
                        .and_then(Value::as_i64)
                        .or_else(|| text(p, &["doseNumberString"])?.parse().ok())
                        .map(|n| n as i32)
                }),
                site: r.get("site").and_then(concept_text),
                batch: text(r, &["lotNumber"]).map(str::to_owned),
                not_given: text(r, &["status"]) == Some("not-done"),
            }),
        ),
        "CarePlan" => one(category_code(r), care_plan(r)),
        "Composition" => discharge_summary(context, r),
        "Flag" => safeguarding_flag(r),
        "ServiceRequest" => referral(context, r),
        "Consent" => consent(r),
        "Patient" => one(
            Some(snomed(DEMOGRAPHICS_CODE)),
            Payload::Demographics(demographics(context, r)),
        ),
        "CareTeam" => one(
            category_code(r).or(Some(snomed(CARE_TEAM_CODE))),
            care_team(context, r),
        ),
        "MedicationStatement" => Err(Skip::unmapped(
            "a MedicationStatement is what the patient reports taking, not a prescription; send the MedicationRequest",
        )),
        "Organization" | "Practitioner" | "PractitionerRole" | "Location" | "Medication"
        | "Provenance" | "Device" => Err(Skip::unmapped(format!(
            "{resource_type} resources are read for provenance and codes, not published as events"
        ))),
        "Bundle" => Err(Skip::unmapped(
            "a Bundle inside a Bundle is not imported; import it as a file of its own",
        )),
        other => Err(Skip::unmapped(format!(
            "no SPR event type holds {other} resources"
        ))),
    }
}

fn snomed((code, display): (&str, &str)) -> Code {
    Code {
        system: SNOMED_CT.into(),
        code: code.into(),
        display: display.into(),
    }
}

/// The code of a resource that has none: its type as display text.
fn uncoded(resource_type: &str) -> Code {
    Code {
        system: String::new(),
        code: String::new(),
        display: resource_type.to_owned(),
    }
}

/// The best code among all the codings of the resource's categories.
fn category_code(r: &Value) -> Option<Code> {
    let codings: Vec<Value> = list(r, "category")
        .iter()
        .flat_map(|c| list(c, "coding").iter().cloned())
        .collect();
    code_of(
        &json!({"coding": codings, "text": first(r, "category").and_then(|c| text(c, &["text"]))}),
    )
}

/// `value unit` of a Quantity.
fn quantity_text(quantity: &Value) -> Option<String> {
    let value = quantity.get("value")?;
    let unit = text(quantity, &["unit"]).or_else(|| text(quantity, &["code"]));
    Some(match unit {
        Some(u) => format!("{value} {u}"),
        None => value.to_string(),
    })
}

fn observation(r: &Value) -> Payload {
    let categories = list(r, "category");
    let kind = if categories.iter().any(|c| has_code(c, "laboratory")) {
        ObservationKind::Laboratory
    } else if r.get("device").is_some() {
        ObservationKind::Wearable
    } else if categories.iter().any(|c| has_code(c, "vital-signs")) {
        ObservationKind::VitalSign
    } else {
        ObservationKind::Other
    };
    let (value, unit, value_text) = observation_value(r);
    Payload::Observation(ObservationPayload {
        kind,
        value,
        unit,
        value_text,
        interpretation: first(r, "interpretation")
            .and_then(|i| first_code(i).map(str::to_owned).or_else(|| concept_text(i))),
    })
}

/// An observation's value: a number with its unit, or text (components are listed).
fn observation_value(r: &Value) -> (Option<f64>, Option<String>, Option<String>) {
    if let Some(q) = r.get("valueQuantity") {
        let unit = text(q, &["unit"])
            .or_else(|| text(q, &["code"]))
            .map(str::to_owned);
        return (q.get("value").and_then(Value::as_f64), unit, None);
    }
    if let Some(n) = r.get("valueInteger").and_then(Value::as_f64) {
        return (Some(n), None, None);
    }
    let value_text = text(r, &["valueString"])
        .map(str::to_owned)
        .or_else(|| r.get("valueCodeableConcept").and_then(concept_text))
        .or_else(|| r.get("valueBoolean").map(|b| b.to_string()))
        .or_else(|| text(r, &["valueDateTime"]).map(str::to_owned))
        .or_else(|| {
            let parts: Vec<String> = list(r, "component")
                .iter()
                .filter_map(|c| {
                    let name = c.get("code").and_then(concept_text)?;
                    let (value, unit, text) = observation_value(c);
                    let shown = match (value, unit, text) {
                        (Some(v), Some(u), _) => format!("{v} {u}"),
                        (Some(v), None, _) => v.to_string(),
                        (None, _, Some(t)) => t,
                        (None, _, None) => return None,
                    };
                    Some(format!("{name}: {shown}"))
                })
                .collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        });
    (None, None, value_text)
}

fn encounter(r: &Value) -> Result<Vec<Fact>, Skip> {
    let class = r.get("class");
    let class_code = class.and_then(|c| text(c, &["code"])).unwrap_or("");
    let encounter_class = match class_code {
        "AMB" => EncounterClass::Outpatient,
        "EMER" => EncounterClass::Emergency,
        "IMP" | "ACUTE" | "NONAC" | "SS" | "OBSENC" | "PRENC" => EncounterClass::Inpatient,
        "VR" => EncounterClass::Virtual,
        "HH" => EncounterClass::HomeVisit,
        _ => EncounterClass::Other,
    };
    let code = first(r, "type")
        .and_then(code_of)
        .or_else(|| class.and_then(|c| code_of(&json!({"coding": [c]}))));
    let payload = Payload::Encounter(EncounterPayload {
        encounter_class,
        phase: if encounter_class == EncounterClass::Inpatient {
            EncounterPhase::Admission
        } else {
            EncounterPhase::Attendance
        },
        ended_at: period_end(r, "period"),
        location: first(r, "location")
            .and_then(|l| text(l, &["location", "display"]))
            .map(str::to_owned),
        reason: first(r, "reasonCode").and_then(concept_text),
    });
    Ok(vec![Fact::new(
        code.unwrap_or_else(|| uncoded("Encounter")),
        payload,
    )])
}

fn diagnostic_report<'a>(context: &ImportContext<'a>, r: &'a Value) -> Payload {
    Payload::DiagnosticReport(DiagnosticReportPayload {
        category: first(r, "category")
            .and_then(|c| first_code(c).map(str::to_owned).or_else(|| concept_text(c))),
        conclusion: text(r, &["conclusion"]).map(str::to_owned),
        result_ids: list(r, "result")
            .iter()
            .filter_map(|reference| context.referenced_event_id(r, reference))
            .collect(),
    })
}

fn verification(r: &Value) -> Verification {
    match r.get("verificationStatus").and_then(first_code) {
        Some("confirmed") => Verification::Confirmed,
        Some("refuted") => Verification::Refuted,
        _ => Verification::Unconfirmed,
    }
}

fn condition(r: &Value, identity: &str) -> Payload {
    let clinical = r
        .get("clinicalStatus")
        .and_then(first_code)
        .unwrap_or("active");
    let code = r.get("code");
    if code.is_some_and(|c| SNOMED_PREGNANCY.iter().any(|p| has_coding(c, SNOMED_CT, p))) {
        return Payload::PregnancyEpisode(PregnancyEpisodePayload {
            episode_id: identifier_in(r, super::import::PREGNANCY_EPISODE_SYSTEM)
                .unwrap_or(identity)
                .to_owned(),
            status: match clinical {
                "active" | "recurrence" | "relapse" => PregnancyStatus::Active,
                _ => PregnancyStatus::Completed,
            },
            estimated_delivery_at: None,
            gravida: None,
            parity: None,
            risks: vec![],
        });
    }
    Payload::Condition(ConditionPayload {
        clinical_status: match clinical {
            "recurrence" => ConditionStatus::Recurrence,
            "relapse" => ConditionStatus::Relapse,
            "inactive" => ConditionStatus::Inactive,
            "remission" => ConditionStatus::Remission,
            "resolved" => ConditionStatus::Resolved,
            _ => ConditionStatus::Active,
        },
        verification: verification(r),
        onset_at: time_at(r, "onsetDateTime").or_else(|| period_start(r, "onsetPeriod")),
        abated_at: time_at(r, "abatementDateTime").or_else(|| period_end(r, "abatementPeriod")),
        severity: r.get("severity").and_then(concept_text),
    })
}

fn allergy(r: &Value) -> Payload {
    let reactions: Vec<String> = list(r, "reaction")
        .iter()
        .flat_map(|reaction| list(reaction, "manifestation"))
        .filter_map(concept_text)
        .collect();
    Payload::Allergy(AllergyPayload {
        reaction: (!reactions.is_empty()).then(|| reactions.join(", ")),
        criticality: match text(r, &["criticality"]) {
            Some("low") => Criticality::Low,
            Some("high") => Criticality::High,
            _ => Criticality::UnableToAssess,
        },
        verification: verification(r),
    })
}

/// The medicine of a MedicationRequest or MedicationDispense: its CodeableConcept, or
/// the code of the Medication it references.
fn medication_code<'a>(context: &ImportContext<'a>, r: &'a Value) -> Option<Code> {
    r.get("medicationCodeableConcept")
        .and_then(code_of)
        .or_else(|| {
            let reference = r.get("medicationReference")?;
            context
                .index
                .resolve(r, reference)
                .and_then(|m| code_of(m.get("code")?))
                .or_else(|| text(reference, &["display"]).map(uncoded))
        })
}

/// A prescription; a stopped or cancelled one also gives the stop.
fn medication_request<'a>(
    context: &ImportContext<'a>,
    r: &'a Value,
    identity: &str,
) -> Result<Vec<Fact>, Skip> {
    let code = medication_code(context, r).unwrap_or_else(|| uncoded("MedicationRequest"));
    let dosage = first(r, "dosageInstruction");
    let prescribed = Payload::MedicationPrescribed(MedicationPrescribedPayload {
        dose: dosage.and_then(dose_text).unwrap_or_default(),
        route: dosage.and_then(|d| d.get("route")).and_then(concept_text),
        quantity: r
            .get("dispenseRequest")
            .and_then(|d| d.get("quantity"))
            .and_then(quantity_text),
        course: if r
            .get("courseOfTherapyType")
            .is_some_and(|c| has_code(c, "continuous"))
        {
            Course::Repeat
        } else {
            Course::Acute
        },
    });
    let mut facts = vec![Fact::new(code.clone(), prescribed)];
    if matches!(text(r, &["status"]), Some("stopped" | "cancelled")) {
        let prescription_id = context.event_id(identity, text(r, &["meta", "versionId"]), "");
        let stopped_at = r
            .get("dispenseRequest")
            .and_then(|d| period_end(d, "validityPeriod"))
            .or_else(|| text(r, &["meta", "lastUpdated"]).and_then(super::elements::parse_time));
        facts.push(Fact {
            discriminator: "stopped",
            occurred_at: stopped_at,
            ..Fact::new(
                code,
                Payload::MedicationStopped(MedicationStoppedPayload {
                    prescription_id: Some(prescription_id),
                    reason: r.get("statusReason").and_then(concept_text),
                }),
            )
        });
    }
    Ok(facts)
}

/// A Dosage as text: its `text`, else its dose and timing.
fn dose_text(dosage: &Value) -> Option<String> {
    if let Some(t) = text(dosage, &["text"]) {
        return Some(t.to_owned());
    }
    let dose = first(dosage, "doseAndRate")
        .and_then(|d| d.get("doseQuantity"))
        .and_then(quantity_text);
    let repeat = dosage.get("timing").and_then(|t| t.get("repeat"));
    let timing = repeat.and_then(|r| {
        Some(format!(
            "{} times per {} {}",
            r.get("frequency")?,
            r.get("period")?,
            text(r, &["periodUnit"])?
        ))
    });
    match (dose, timing) {
        (Some(d), Some(t)) => Some(format!("{d}, {t}")),
        (d, t) => d.or(t),
    }
}

fn care_plan(r: &Value) -> Payload {
    let title = text(r, &["title"])
        .map(str::to_owned)
        .or_else(|| category_code(r).map(|c| c.display))
        .unwrap_or_else(|| "Care plan".into());
    Payload::CarePlan(CarePlanPayload {
        title,
        description: text(r, &["description"]).map(str::to_owned),
        ends_at: period_end(r, "period"),
        activities: list(r, "activity")
            .iter()
            .filter_map(|a| {
                let detail = a.get("detail");
                detail
                    .and_then(|d| text(d, &["description"]).map(str::to_owned))
                    .or_else(|| detail.and_then(|d| d.get("code")).and_then(concept_text))
                    .or_else(|| text(a, &["reference", "display"]).map(str::to_owned))
            })
            .collect(),
    })
}

/// The narrative of the Composition section coded `code`, if any.
fn section<'v>(r: &'v Value, code: &str) -> Option<&'v Value> {
    list(r, "section")
        .iter()
        .find(|s| s.get("code").is_some_and(|c| has_code(c, code)))
}

fn section_text(r: &Value, code: &str) -> Option<String> {
    section(r, code)
        .and_then(|s| text(s, &["text", "div"]))
        .map(narrative_text)
        .filter(|t| !t.is_empty())
}

fn discharge_summary<'a>(context: &ImportContext<'a>, r: &'a Value) -> Result<Vec<Fact>, Skip> {
    let doc_type = r
        .get("type")
        .ok_or_else(|| Skip::unmapped("Composition has no type"))?;
    if !has_coding(doc_type, LOINC, LOINC_DISCHARGE_SUMMARY)
        && !has_coding(doc_type, SNOMED_CT, SNOMED_DISCHARGE_SUMMARY)
    {
        return Err(Skip::unmapped(format!(
            "Composition of type {} is not a discharge summary (LOINC {LOINC_DISCHARGE_SUMMARY} or SNOMED CT {SNOMED_DISCHARGE_SUMMARY})",
            concept_text(doc_type).unwrap_or_default()
        )));
    }
    let event_period = first(r, "event").and_then(|e| e.get("period"));
    let encounter = r.get("encounter").and_then(|e| context.index.resolve(r, e));
    let stay = event_period
        .or_else(|| encounter.and_then(|e| e.get("period")))
        .cloned()
        .unwrap_or_default();
    let date = time_at(r, "date");
    let admitted_at = time_at(&stay, "start").or(date).unwrap_or_default();
    let discharged_at = time_at(&stay, "end").or(date).unwrap_or(admitted_at);
    let entries = |code: &str| -> Vec<String> {
        section(r, code)
            .map(|s| list(s, "entry"))
            .unwrap_or_default()
            .iter()
            .filter_map(|entry| {
                let target = context.index.resolve(r, entry);
                target
                    .and_then(|t| {
                        t.get("code")
                            .or_else(|| t.get("medicationCodeableConcept"))
                            .and_then(concept_text)
                    })
                    .or_else(|| text(entry, &["display"]).map(str::to_owned))
            })
            .collect()
    };
    let summary = section_text(r, SECTION_HOSPITAL_COURSE)
        .or_else(|| text(r, &["text", "div"]).map(narrative_text))
        .or_else(|| text(r, &["title"]).map(str::to_owned))
        .unwrap_or_default();
    let code = code_of(doc_type).unwrap_or_else(|| uncoded("Composition"));
    Ok(vec![Fact {
        occurred_at: Some(discharged_at),
        ..Fact::new(
            code,
            Payload::DischargeSummary(DischargeSummaryPayload {
                admitted_at,
                discharged_at,
                destination: section_text(r, SECTION_DESTINATION),
                diagnoses: entries(SECTION_DIAGNOSES),
                summary,
                follow_up: section_text(r, SECTION_FOLLOW_UP),
                medications_on_discharge: entries(SECTION_MEDICATIONS),
            }),
        )
    }])
}

/// Whether a concept mentions safeguarding in a code, display or text.
fn mentions_safeguarding(concept: &Value) -> bool {
    let mentions =
        |s: Option<&str>| s.is_some_and(|s| s.to_ascii_lowercase().contains("safeguarding"));
    mentions(text(concept, &["text"]))
        || list(concept, "coding")
            .iter()
            .any(|c| mentions(text(c, &["code"])) || mentions(text(c, &["display"])))
}

fn safeguarding_flag(r: &Value) -> Result<Vec<Fact>, Skip> {
    let is_safeguarding = list(r, "category").iter().any(mentions_safeguarding)
        || r.get("code").is_some_and(mentions_safeguarding);
    if !is_safeguarding {
        return Err(Skip::unmapped(
            "Flag is not a safeguarding flag (no category or code mentions safeguarding)",
        ));
    }
    // A code with only text is the concern told in words: that is the detail, which is
    // sensitive, so it must not become the code's display, which everyone sees.
    let code = r
        .get("code")
        .filter(|c| {
            list(c, "coding")
                .iter()
                .any(|c| text(c, &["code"]).is_some())
        })
        .and_then(code_of)
        .unwrap_or_else(|| uncoded("Safeguarding concern"));
    let detail = text(r, &["code", "text"])
        .filter(|t| *t != code.display)
        .map(str::to_owned);
    let sensitivity = if detail.is_some() {
        vec![SensitiveCategory::Safeguarding.as_str().to_owned()]
    } else {
        vec![]
    };
    Ok(vec![Fact {
        sensitivity,
        ..Fact::new(
            code,
            Payload::SafeguardingFlag(SafeguardingFlagPayload {
                active: text(r, &["status"]) == Some("active"),
                detail,
                review_at: period_end(r, "period"),
            }),
        )
    }])
}

fn referral<'a>(context: &ImportContext<'a>, r: &'a Value) -> Result<Vec<Fact>, Skip> {
    let is_referral = list(r, "category")
        .iter()
        .any(|c| has_coding(c, SNOMED_CT, SNOMED_REFERRAL))
        || list(r, "category")
            .iter()
            .chain(r.get("code"))
            .filter_map(concept_text)
            .any(|t| t.to_ascii_lowercase().contains("referral"));
    if !is_referral {
        return Err(Skip::unmapped(format!(
            "ServiceRequest is not a referral (no category SNOMED CT {SNOMED_REFERRAL} and no mention of referral)"
        )));
    }
    let performer = first(r, "performer");
    let to_ods_code = performer
        .and_then(|p| {
            p.get("identifier")
                .filter(|i| text(i, &["system"]) == Some(ODS_SYSTEM))
                .and_then(|i| text(i, &["value"]))
                .or_else(|| identifier_in(context.index.resolve(r, p)?, ODS_SYSTEM))
        })
        .unwrap_or_default()
        .to_owned();
    let code = r.get("code").and_then(code_of).or_else(|| category_code(r));
    let to_service = r
        .get("performerType")
        .and_then(concept_text)
        .or_else(|| {
            performer
                .and_then(|p| text(p, &["display"]))
                .map(str::to_owned)
        })
        .or_else(|| code.as_ref().map(|c| c.display.clone()))
        .unwrap_or_default();
    let payload = Payload::Referral(ReferralPayload {
        to_ods_code,
        to_service,
        priority: match text(r, &["priority"]) {
            Some("urgent" | "asap") => ReferralPriority::Urgent,
            Some("stat") => ReferralPriority::Emergency,
            _ => ReferralPriority::Routine,
        },
        reason: first(r, "reasonCode").and_then(concept_text),
    });
    Ok(vec![Fact::new(
        code.unwrap_or_else(|| uncoded("ServiceRequest")),
        payload,
    )])
}

/// Consent: one sharing choice per sensitive category named in `provision.securityLabel`.
fn consent(r: &Value) -> Result<Vec<Fact>, Skip> {
    let status = text(r, &["status"]).unwrap_or("(none)");
    if status != "active" && status != "entered-in-error" {
        return Err(Skip::unmapped(format!(
            "Consent status {status:?} is not a current choice (only active consents are imported)"
        )));
    }
    let provision = r.get("provision").cloned().unwrap_or_default();
    let labels = json!({"meta": {"security": list(&provision, "securityLabel")}});
    let categories = super::elements::sensitivity_of(&labels);
    if categories.is_empty() {
        return Err(Skip::unmapped(
            "Consent names no sensitive category in provision.securityLabel (see the security label table in docs/events.md)",
        ));
    }
    let emergency_exception = list(&provision, "provision").iter().any(|p| {
        text(p, &["type"]) == Some("permit")
            && list(p, "purpose")
                .iter()
                .any(|purpose| matches!(text(purpose, &["code"]), Some("ETREAT" | "BTG")))
    });
    let choice = match (text(&provision, &["type"]), emergency_exception) {
        (Some("deny"), true) => SharingChoice::WithholdExceptEmergency,
        (Some("deny"), false) => SharingChoice::Withhold,
        _ => SharingChoice::Share,
    };
    let code = category_code(r).unwrap_or_else(|| uncoded("Consent"));
    Ok(categories
        .iter()
        .filter_map(|label| label.parse::<SensitiveCategory>().ok())
        .map(|category| Fact {
            discriminator: if categories.len() == 1 {
                ""
            } else {
                category.as_str()
            },
            ..Fact::new(
                code.clone(),
                Payload::ConsentChoice(ConsentChoicePayload { category, choice }),
            )
        })
        .collect())
}

fn demographics<'a>(context: &ImportContext<'a>, r: &'a Value) -> DemographicsPayload {
    let names = list(r, "name");
    let name = names
        .iter()
        .find(|n| text(n, &["use"]) == Some("official"))
        .or(names.first());
    let given = name
        .map(|n| {
            list(n, "given")
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    DemographicsPayload {
        given_name: given,
        family_name: name
            .and_then(|n| text(n, &["family"]))
            .unwrap_or_default()
            .to_owned(),
        birth_date: text(r, &["birthDate"]).map(str::to_owned),
        gender: text(r, &["gender"]).map(str::to_owned),
        postcode: first(r, "address")
            .and_then(|a| text(a, &["postalCode"]))
            .map(str::to_owned),
        registered_gp_ods_code: list(r, "generalPractitioner").iter().find_map(|gp| {
            gp.get("identifier")
                .filter(|i| text(i, &["system"]) == Some(ODS_SYSTEM))
                .and_then(|i| text(i, &["value"]))
                .or_else(|| identifier_in(context.index.resolve(r, gp)?, ODS_SYSTEM))
                .map(str::to_owned)
        }),
        deceased_at: time_at(r, "deceasedDateTime"),
    }
}

fn care_team<'a>(context: &ImportContext<'a>, r: &'a Value) -> Payload {
    let ods_code = list(r, "managingOrganization")
        .iter()
        .find_map(|o| {
            o.get("identifier")
                .filter(|i| text(i, &["system"]) == Some(ODS_SYSTEM))
                .and_then(|i| text(i, &["value"]))
                .or_else(|| identifier_in(context.index.resolve(r, o)?, ODS_SYSTEM))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| context.settings.ods_code.clone());
    let practitioners: Vec<String> = list(r, "participant")
        .iter()
        .filter_map(|p| {
            let member = p.get("member")?;
            let target = context.index.resolve(r, member);
            let is_practitioner = target.map_or_else(
                || text(member, &["type"]) == Some("Practitioner"),
                |t| text(t, &["resourceType"]) == Some("Practitioner"),
            );
            if !is_practitioner {
                return None;
            }
            target
                .and_then(|t| first(t, "identifier"))
                .or_else(|| member.get("identifier"))
                .and_then(|i| text(i, &["value"]))
                .map(str::to_owned)
        })
        .collect();
    Payload::CareTeam(CareTeamPayload {
        ods_code,
        team: text(r, &["name"]).map(str::to_owned),
        practitioner_id: match practitioners.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        },
        ends_at: period_end(r, "period"),
    })
}
