//! The official HL7 FHIR R4 examples (npm hl7.fhir.r4.examples@4.0.1): every resource of
//! the clinical types parses and is either mapped or reported with a reason.

mod support;

use std::collections::BTreeMap;

use serde_json::{json, Value};
use spr_producers::fhir::{import_document, Document, ImportSettings};
use spr_schemas::{CareSetting, EventType, Payload};

const TYPES: [&str; 22] = [
    "Patient",
    "Observation",
    "Encounter",
    "DiagnosticReport",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "MedicationDispense",
    "MedicationStatement",
    "Procedure",
    "Immunization",
    "CarePlan",
    "Composition",
    "Flag",
    "ServiceRequest",
    "Consent",
    "CareTeam",
    "EpisodeOfCare",
    "Medication",
    "Practitioner",
    "PractitionerRole",
    "Organization",
];
const BUNDLES: [&str; 5] = [
    "Bundle-father.json",
    "Bundle-lipids.json",
    "Bundle-micro.json",
    "Bundle-report.json",
    "Bundle-bundle-transaction.json",
];

fn settings() -> ImportSettings {
    ImportSettings {
        source_system: "hl7-examples".into(),
        ods_code: "X26".into(),
        care_setting: CareSetting::Acute,
    }
}

/// Gives every Patient in `resources`, contained ones included, its own valid
/// 999-range NHS number.
fn give_nhs_numbers<'a>(resources: impl Iterator<Item = &'a mut Value>, next: &mut usize) {
    for resource in resources {
        if let Some(contained) = resource.get_mut("contained").and_then(Value::as_array_mut) {
            give_nhs_numbers(contained.iter_mut(), next);
        }
        if resource["resourceType"] == "Patient" {
            support::give_nhs_number(resource, &support::test_nhs_number(*next));
            *next += 1;
        }
    }
}

#[test]
fn every_example_resource_of_the_clinical_types_is_mapped_or_reported() {
    let patterns: Vec<String> = TYPES
        .iter()
        .map(|t| format!("{t}-*"))
        .chain(BUNDLES.iter().map(|b| (*b).to_owned()))
        .collect();
    let package = support::hl7_examples(&patterns.iter().map(String::as_str).collect::<Vec<_>>());
    let mut resources: Vec<Value> = Vec::new();
    let mut bundles = Vec::new();
    for entry in std::fs::read_dir(&package).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if BUNDLES.contains(&name.as_str()) {
            bundles.push((name, support::read_json(&path)));
        } else if TYPES.iter().any(|t| name.starts_with(&format!("{t}-"))) {
            resources.push(support::read_json(&path));
        }
    }
    let mut next = 0;
    give_nhs_numbers(resources.iter_mut(), &mut next);
    let mut per_type: BTreeMap<String, usize> = BTreeMap::new();
    for r in &resources {
        *per_type
            .entry(r["resourceType"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let total = resources.len();
    assert!(
        total > 150,
        "the package holds the clinical examples ({total})"
    );
    let collection = json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": resources.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>(),
    });
    let document = Document::from_value("hl7 examples", collection).unwrap();
    let import = import_document(&document, &settings()).expect("every patient has an NHS number");

    let mut unmapped: BTreeMap<&str, usize> = BTreeMap::new();
    let mut reasons: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for u in &import.unmapped {
        assert!(!u.reason.is_empty(), "{u:?}");
        *reasons.entry((&u.resource_type, &u.reason)).or_default() += 1;
        *unmapped.entry(&u.resource_type).or_default() += 1;
    }
    for (resource_type, n) in &per_type {
        let mapped = import.mapped.get(resource_type).copied().unwrap_or(0);
        let reported = unmapped.get(resource_type.as_str()).copied().unwrap_or(0);
        println!("{resource_type:<20} {n:>3} = {mapped:>3} mapped + {reported:>3} reported");
        assert_eq!(
            mapped + reported,
            *n,
            "{resource_type}: no resource silently dropped"
        );
    }
    for ((resource_type, reason), n) in &reasons {
        println!("  reported {resource_type} x{n}: {reason}");
    }
    assert_eq!(import.resource_count(), total);
    for event in &import.events {
        event
            .to_avro()
            .unwrap_or_else(|e| panic!("{:?} does not encode: {e}", event.source.record_id));
    }
    let events_of = |t: EventType| import.events.iter().filter(|e| e.event_type() == t).count();
    assert!(
        events_of(EventType::Observation) >= 40,
        "most example Observations map"
    );
    assert!(events_of(EventType::MedicationPrescribed) >= 20);
    assert!(events_of(EventType::Condition) >= 5);
    assert!(events_of(EventType::Demographics) >= 15);
    for reported in ["Practitioner", "Organization", "Medication"] {
        assert_eq!(
            import.mapped.get(reported),
            None,
            "{reported} is never an event"
        );
    }

    for (name, mut bundle) in bundles {
        let entries = bundle["entry"].as_array().map_or(0, |e| {
            e.iter().filter(|e| e.get("resource").is_some()).count()
        });
        give_nhs_numbers(
            bundle["entry"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .filter_map(|e| e.get_mut("resource")),
            &mut next,
        );
        let document = Document::from_value(&name, bundle).unwrap();
        let import = import_document(&document, &settings()).unwrap_or_else(|e| panic!("{e}"));
        println!(
            "{name}: {entries} entries, {:?} mapped, {} reported",
            import.mapped,
            import.unmapped.len()
        );
        assert_eq!(
            import.resource_count(),
            entries,
            "{name}: every entry mapped or reported"
        );
    }
}

/// A resource whose event the decoder would refuse (an identifier or code that could
/// run into another in the projection's keys) is reported with the decoder's reason,
/// not published to be dead-lettered; the rest of the document is imported.
#[test]
fn a_resource_whose_event_would_be_refused_is_reported_with_the_reason() {
    let mut patient = json!({"resourceType": "Patient", "id": "p1", "birthDate": "1980-01-01"});
    support::give_nhs_number(&mut patient, &support::test_nhs_number(0));
    let condition = |id: &str, system: &str, code: &str| {
        json!({
            "resourceType": "Condition",
            "id": id,
            "subject": {"reference": "Patient/p1"},
            "onsetDateTime": "2024-03-01",
            "code": {"coding": [{"system": system, "code": code, "display": "Asthma"}]},
        })
    };
    let collection = json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": patient},
            {"resource": condition("fine", "http://snomed.info/sct", "195967001")},
            {"resource": condition("piped", "http://snomed.info/sct|20240101", "195967001")},
            {"resource": condition("nul", "http://snomed.info/sct", "1959\u{0}67001")},
        ],
    });
    let document = Document::from_value("refused", collection).unwrap();
    let import = import_document(&document, &settings()).unwrap();
    let reported: Vec<(&str, &str)> = import
        .unmapped
        .iter()
        .map(|u| (u.resource.as_str(), u.reason.as_str()))
        .collect();
    assert_eq!(reported.len(), 2, "{reported:?}");
    assert_eq!(reported[0].0, "Condition/piped");
    assert!(
        reported[0]
            .1
            .starts_with("its event would be refused: code.system")
            && reported[0].1.contains("'|'"),
        "{reported:?}"
    );
    assert_eq!(reported[1].0, "Condition/nul");
    assert!(
        reported[1]
            .1
            .starts_with("its event would be refused: code.code")
            && reported[1].1.contains("NUL"),
        "{reported:?}"
    );
    let conditions: Vec<_> = import
        .events
        .iter()
        .filter(|e| e.event_type() == EventType::Condition)
        .collect();
    assert_eq!(conditions.len(), 1);
    assert_eq!(conditions[0].code.code, "195967001");
}

/// What a sender got wrong is reported as such: a Patient with two NHS numbers, or one
/// given as a number, refuses the document; a clinical time that does not parse is
/// named (not replaced by a later element); a safeguarding Flag told in words keeps the
/// words as its sensitive detail, not as the code everyone sees.
#[test]
fn bad_identities_and_times_are_reported_and_a_flag_in_words_keeps_its_detail_sensitive() {
    let nhs = support::test_nhs_number(0);
    let other = support::test_nhs_number(1);
    let with_identifiers = |values: Vec<Value>| {
        let identifiers: Vec<Value> = values
            .into_iter()
            .map(|v| json!({"system": "https://fhir.nhs.uk/Id/nhs-number", "value": v}))
            .collect();
        let patient = json!({"resourceType": "Patient", "id": "p1", "identifier": identifiers});
        let document = Document::from_value("identity", patient).unwrap();
        import_document(&document, &settings()).map(|_| ())
    };
    assert!(with_identifiers(vec![json!(nhs.to_string()), json!(nhs.to_string())]).is_ok());
    let refused = with_identifiers(vec![json!(nhs.to_string()), json!(other.to_string())])
        .unwrap_err()
        .to_string();
    assert!(refused.contains("two different NHS numbers"), "{refused}");
    let as_number: u64 = nhs.to_string().parse().unwrap();
    let refused = with_identifiers(vec![json!(as_number)])
        .unwrap_err()
        .to_string();
    assert!(refused.contains("not a string of ten digits"), "{refused}");

    let mut patient = json!({"resourceType": "Patient", "id": "p1", "birthDate": "1980-01-01"});
    support::give_nhs_number(&mut patient, &nhs);
    let observation = |id: &str, effective: &str| {
        json!({
            "resourceType": "Observation", "id": id, "status": "final",
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
            "effectiveDateTime": effective,
            "meta": {"lastUpdated": "2024-01-05T10:00:00Z"},
        })
    };
    let flag = json!({
        "resourceType": "Flag", "id": "f1", "status": "active",
        "subject": {"reference": "Patient/p1"},
        "category": [{"text": "safeguarding"}],
        "code": {"text": "Safeguarding concern: domestic abuse"},
        "period": {"start": "2024-02-01"},
    });
    // A coding with a display but no code is no code either: the words stay the detail.
    let mut flag_display_only = flag.clone();
    flag_display_only["id"] = json!("f2");
    flag_display_only["code"]["coding"] =
        json!([{"display": "Safeguarding concern: domestic abuse"}]);
    flag_display_only["code"]["text"] = json!("Safeguarding concern: neglect");
    let mut entries = vec![
        json!({"resource": patient}),
        json!({"resource": flag}),
        json!({"resource": flag_display_only}),
    ];
    let bad_times = [
        "2024-13-01",
        "2024-02-30",
        "2024-01-01T25:00:00Z",
        "2024-01-01T10:00:00",
    ];
    for (i, effective) in bad_times.iter().enumerate() {
        entries.push(json!({"resource": observation(&format!("o{i}"), effective)}));
    }
    entries.push(json!({"resource": observation("fine", "2024-01-01T09:30:00+01:00")}));
    let document = Document::from_value(
        "times",
        json!({"resourceType": "Bundle", "type": "collection", "entry": entries}),
    )
    .unwrap();
    let import = import_document(&document, &settings()).unwrap();
    let reasons: Vec<(&str, &str)> = import
        .unmapped
        .iter()
        .map(|u| (u.resource.as_str(), u.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), bad_times.len(), "{reasons:?}");
    for ((resource, reason), bad) in reasons.iter().zip(bad_times) {
        assert!(
            reason.contains(&format!("effectiveDateTime {bad:?} is not a valid FHIR")),
            "{resource}: {reason}"
        );
    }
    let observations: Vec<_> = import
        .events
        .iter()
        .filter(|e| e.event_type() == EventType::Observation)
        .collect();
    assert_eq!(observations.len(), 1);
    assert_eq!(observations[0].occurred_at, 1_704_097_800_000, "08:30 UTC");

    let flags: Vec<_> = import
        .events
        .iter()
        .filter(|e| e.event_type() == EventType::SafeguardingFlag)
        .collect();
    assert_eq!(flags.len(), 2, "both flags are mapped");
    for (flag, words) in flags.iter().zip(["domestic abuse", "neglect"]) {
        assert_eq!(flag.code.display, "Safeguarding concern", "{:?}", flag.code);
        let Payload::SafeguardingFlag(payload) = &flag.payload else {
            unreachable!()
        };
        assert!(
            payload
                .detail
                .as_deref()
                .is_some_and(|d| d.ends_with(words)),
            "{payload:?}"
        );
        assert_eq!(flag.sensitivity, ["safeguarding"]);
    }
}
