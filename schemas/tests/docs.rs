//! docs/events.md stays the catalogue of the code: a section for every event type, in
//! catalogue order, with a table row for every field of its payload, and a row for
//! every envelope field.

use serde_json::Value;
use spr_schemas::{ClinicalEvent, EventType, SchemaCatalogue};

const EVENTS_MD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.md");

/// The `##` and `###` sections of a markdown document: heading text and body.
fn sections(doc: &str) -> Vec<(&str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for line in doc.lines() {
        if let Some(heading) = line
            .strip_prefix("### ")
            .or_else(|| line.strip_prefix("## "))
        {
            out.push((heading, String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// Whether `body` has a table row whose first cell is `` `name` ``.
fn has_row(body: &str, name: &str) -> bool {
    let row = format!("| `{name}` |");
    body.lines().any(|l| l.starts_with(&row))
}

/// The Avro enum symbol of a type (`MEDICATION_PRESCRIBED`).
fn symbol(event_type: EventType) -> String {
    serde_json::to_string(&event_type)
        .unwrap()
        .trim_matches('"')
        .to_owned()
}

/// The field names of a record schema.
fn field_names(record: &Value) -> Vec<String> {
    record["fields"]
        .as_array()
        .expect("a record has fields")
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The current clinical event schema, as JSON.
fn clinical_schema() -> Value {
    let current = SchemaCatalogue::global().current(ClinicalEvent::AVRO_RECORD);
    serde_json::from_str(current.text).unwrap()
}

/// The record schema of a nullable field (`["null", {record}]`).
fn optional_record<'a>(schema: &'a Value, field: &str) -> Option<&'a Value> {
    let field = schema["fields"]
        .as_array()?
        .iter()
        .find(|f| f["name"] == field)?;
    field["type"]
        .as_array()?
        .iter()
        .find(|branch| branch["type"] == "record")
}

#[test]
fn every_event_type_has_a_section_with_every_payload_field() {
    let doc = std::fs::read_to_string(EVENTS_MD).unwrap();
    let sections = sections(&doc);
    let schema = clinical_schema();
    let mut missing = Vec::new();
    let mut positions = Vec::new();
    for &event_type in EventType::ALL {
        let symbol = symbol(event_type);
        let payload_field = symbol.to_lowercase();
        let payload = optional_record(&schema, &payload_field).unwrap_or_else(|| {
            panic!("the schema has no payload field {payload_field} for {symbol}")
        });
        let heading = format!("`{symbol}`");
        let Some(position) = sections
            .iter()
            .position(|(h, _)| *h == heading || h.starts_with(&format!("{heading}:")))
        else {
            missing.push(format!("a heading \"### {heading}\""));
            continue;
        };
        positions.push((position, symbol.clone()));
        for field in field_names(payload) {
            if !has_row(&sections[position].1, &field) {
                missing.push(format!("a row for `{field}` under {symbol}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/events.md lacks {}; document them from the newest clinical_event schema in schemas/avro/",
        missing.join(", ")
    );
    assert!(
        positions.windows(2).all(|w| w[0].0 < w[1].0),
        "docs/events.md must list event types in catalogue order (EventType::ALL): {positions:?}"
    );
}

#[test]
fn every_envelope_field_has_a_row() {
    let doc = std::fs::read_to_string(EVENTS_MD).unwrap();
    let sections = sections(&doc);
    let (_, envelope) = sections
        .iter()
        .find(|(h, _)| *h == "Envelope")
        .expect("docs/events.md has an \"## Envelope\" section");
    let schema = clinical_schema();
    let payload_fields: Vec<String> = EventType::ALL
        .iter()
        .map(|t| symbol(*t).to_lowercase())
        .collect();
    let mut names = Vec::new();
    for field in schema["fields"].as_array().unwrap() {
        let name = field["name"].as_str().unwrap();
        if payload_fields.iter().any(|p| p == name) {
            continue;
        }
        match &field["type"] {
            nested @ Value::Object(_) if nested["type"] == "record" => names.extend(
                field_names(nested)
                    .into_iter()
                    .map(|sub| format!("{name}.{sub}")),
            ),
            _ => names.push(name.to_owned()),
        }
    }
    let missing: Vec<&String> = names.iter().filter(|n| !has_row(envelope, n)).collect();
    assert!(
        missing.is_empty(),
        "the Envelope table of docs/events.md lacks rows for {missing:?}"
    );
}
