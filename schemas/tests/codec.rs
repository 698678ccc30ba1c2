//! The wire codec against good and bad bytes.

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use proptest::prelude::*;
use spr_schemas::codec::SINGLE_OBJECT_MARKER;
use spr_schemas::{
    compat, examples, AccessEvent, ClinicalEvent, DecodeError, EventType, NhsNumber, Payload,
    SchemaCatalogue,
};

/// Writes a generic value as a raw Avro datum (no header).
fn write_datum(schema: &apache_avro::Schema, value: apache_avro::types::Value) -> Vec<u8> {
    GenericDatumWriter::builder(schema)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap()
}

/// Reads a raw datum written with `writer` as `reader` (schema resolution).
fn read_datum(
    writer: &apache_avro::Schema,
    reader: &apache_avro::Schema,
    mut bytes: &[u8],
) -> apache_avro::AvroResult<apache_avro::types::Value> {
    GenericDatumReader::builder(writer)
        .reader_schema(reader)
        .build()?
        .read_value(&mut bytes)
}

fn patient() -> NhsNumber {
    "9990000018".parse().unwrap()
}

fn every_example() -> Vec<ClinicalEvent> {
    let events = examples::one_of_each_type(patient());
    let types: Vec<_> = events.iter().map(|e| e.event_type()).collect();
    assert_eq!(
        types,
        EventType::ALL,
        "one example of every type, in catalogue order"
    );
    events
}

#[test]
fn every_event_type_round_trips_through_single_object_encoding() {
    for event in every_example() {
        let bytes = event.to_avro().unwrap();
        assert_eq!(bytes[..2], SINGLE_OBJECT_MARKER);
        let current = SchemaCatalogue::global().current(ClinicalEvent::AVRO_RECORD);
        assert_eq!(
            bytes[2..10],
            current.fingerprint,
            "the header carries the writer schema's fingerprint"
        );
        assert_eq!(ClinicalEvent::from_avro(&bytes).unwrap(), event);
    }
    let access = examples::access_event(patient());
    assert_eq!(
        AccessEvent::from_avro(&access.to_avro().unwrap()).unwrap(),
        access
    );
}

#[test]
fn the_fingerprint_is_the_little_endian_crc64_avro_of_the_canonical_form() {
    // CRC-64-AVRO written out from the Avro specification, independent of the library.
    fn crc64_avro(bytes: &[u8]) -> u64 {
        const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
        let table: Vec<u64> = (0..256u64)
            .map(|i| (0..8).fold(i, |fp, _| (fp >> 1) ^ (EMPTY & (fp & 1).wrapping_neg())))
            .collect();
        bytes.iter().fold(EMPTY, |fp, b| {
            (fp >> 8) ^ table[((fp ^ u64::from(*b)) & 0xff) as usize]
        })
    }
    for version in SchemaCatalogue::global().versions() {
        let expected = crc64_avro(version.schema.canonical_form().as_bytes()).to_le_bytes();
        assert_eq!(version.fingerprint, expected, "{}", version.file);
    }
}

/// Fingerprints are on every record in the log: a change (a schema edit, or a library
/// that canonicalises differently) would make records already written unreadable.
/// A new schema version gets a new file and a new line here; existing lines never change.
#[test]
fn the_fingerprints_of_published_schema_versions_never_change() {
    let pinned = [
        ("clinical_event.v1.avsc", "992d6c428b810b34"),
        ("clinical_event.v2.avsc", "4306a574e6e2f710"),
        ("access_event.v1.avsc", "130032da07bede24"),
        ("access_event.v2.avsc", "73e328b65a714069"),
    ];
    let catalogue = SchemaCatalogue::global();
    assert_eq!(
        catalogue.versions().len(),
        pinned.len(),
        "pin the fingerprint of every schema file"
    );
    for (file, fingerprint) in pinned {
        let version = catalogue
            .versions()
            .iter()
            .find(|v| v.file == file)
            .unwrap();
        let hex: String = version
            .fingerprint
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex, fingerprint,
            "{file} changed: add a new version file instead of editing it"
        );
    }
}

#[test]
fn an_access_event_is_not_read_as_a_clinical_event() {
    let bytes = examples::access_event(patient()).to_avro().unwrap();
    let err = ClinicalEvent::from_avro(&bytes).unwrap_err();
    assert!(matches!(err, DecodeError::WrongRecord { .. }), "{err}");
}

#[test]
fn malformed_records_get_a_reason_not_a_panic() {
    let good = examples::allergy(patient()).to_avro().unwrap();
    let mut unknown_fingerprint = good.clone();
    unknown_fingerprint[5] ^= 0xff;
    let mut trailing = good.clone();
    trailing.push(0);
    type Expectation = fn(&DecodeError) -> bool;
    let cases: Vec<(&str, Vec<u8>, Expectation)> = vec![
        ("empty", vec![], |e| matches!(e, DecodeError::TooShort(0))),
        ("json", br#"{"nhs_number":"9990000018"}"#.to_vec(), |e| {
            matches!(e, DecodeError::BadMarker(..))
        }),
        ("unknown fingerprint", unknown_fingerprint, |e| {
            matches!(e, DecodeError::UnknownFingerprint(_))
        }),
        // Cut into content: apache-avro reads a missing trailing union index as branch 0,
        // so a record cut only in its trailing null payload fields decodes unchanged.
        ("truncated body", good[..good.len() / 2].to_vec(), |e| {
            matches!(e, DecodeError::Avro { .. })
        }),
        ("trailing bytes", trailing, |e| {
            matches!(e, DecodeError::TrailingBytes(1))
        }),
    ];
    for (name, bytes, expected) in cases {
        let err = ClinicalEvent::from_avro(&bytes).unwrap_err();
        assert!(expected(&err), "{name}: got {err}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn an_event_with_an_invalid_nhs_number_inside_is_rejected_with_the_reason() {
    let event = examples::observation(patient());
    let bytes = event.to_avro().unwrap();
    // The NHS number is the second string field: replace its digits in place.
    let position = bytes.windows(10).position(|w| w == b"9990000018").unwrap();
    let mut tampered = bytes;
    tampered[position..position + 10].copy_from_slice(b"9990000019");
    let err = ClinicalEvent::from_avro(&tampered).unwrap_err();
    assert!(err.to_string().contains("check digit should be 8"), "{err}");
}

/// The identifiers and codes the projection files events under are refused when a NUL
/// (which ends a key part) or, in a code system, a `|` (which separates system and
/// code) could make two of them one; other text, control characters included, is kept.
#[test]
fn an_identifier_or_code_that_could_run_into_another_is_rejected_with_the_reason() {
    type Set = fn(&mut ClinicalEvent, String);
    let of_each = examples::one_of_each_type(patient());
    let with = |wanted: EventType| {
        of_each
            .iter()
            .find(|e| e.event_type() == wanted)
            .expect("an example of each type")
            .clone()
    };
    let allergy = examples::allergy(patient());
    let cases: Vec<(&str, ClinicalEvent, Set)> = vec![
        ("source.ods_code", allergy.clone(), |e, v| {
            e.source.ods_code = v
        }),
        ("code.system", allergy.clone(), |e, v| e.code.system = v),
        ("code.code", allergy.clone(), |e, v| e.code.code = v),
        ("encounter_id", allergy.clone(), |e, v| {
            e.encounter_id = Some(v)
        }),
        ("episode_id", with(EventType::PregnancyEpisode), |e, v| {
            let Payload::PregnancyEpisode(p) = &mut e.payload else {
                unreachable!()
            };
            p.episode_id = v;
        }),
        ("episode_id", with(EventType::AntenatalVisit), |e, v| {
            let Payload::AntenatalVisit(p) = &mut e.payload else {
                unreachable!()
            };
            p.episode_id = v;
        }),
        ("episode_id", with(EventType::Birth), |e, v| {
            let Payload::Birth(p) = &mut e.payload else {
                unreachable!()
            };
            p.episode_id = v;
        }),
        ("to_ods_code", with(EventType::Referral), |e, v| {
            let Payload::Referral(p) = &mut e.payload else {
                unreachable!()
            };
            p.to_ods_code = v;
        }),
        ("ods_code", with(EventType::CareTeam), |e, v| {
            let Payload::CareTeam(p) = &mut e.payload else {
                unreachable!()
            };
            p.ods_code = v;
        }),
    ];
    let decode = |event: &ClinicalEvent| ClinicalEvent::from_avro(&event.to_avro().unwrap());
    for (field, event, set) in cases {
        assert_eq!(
            decode(&event).unwrap(),
            event,
            "{field}: the example decodes"
        );
        for bad in ["A81\x00X1", "A81001\0", "\0"] {
            let mut tampered = event.clone();
            set(&mut tampered, bad.to_owned());
            let err = decode(&tampered).unwrap_err();
            assert!(
                matches!(err, DecodeError::Invalid { .. })
                    && err.to_string().contains(field)
                    && err.to_string().contains("NUL"),
                "{field} = {bad:?}: got {err}"
            );
            // Bytes accepted before the rule (the projection's stored copy) still read.
            assert_eq!(
                ClinicalEvent::from_accepted_avro(&tampered.to_avro().unwrap()).unwrap(),
                tampered
            );
        }
        let mut kept = event.clone();
        let printable = match field {
            "code.system" => "https://example.org/Zürich%7C2\t",
            _ => "Zürich Größe\t12-A|b\r\n",
        };
        set(&mut kept, printable.to_owned());
        assert_eq!(
            decode(&kept).unwrap(),
            kept,
            "{field}: printable text is kept"
        );
    }
    let mut piped = allergy;
    piped.code.system = "http://snomed.info/sct|20240101".into();
    let err = decode(&piped).unwrap_err();
    assert!(
        err.to_string().contains("code.system") && err.to_string().contains("'|'"),
        "{err}"
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = ClinicalEvent::from_avro(&bytes);
        let _ = AccessEvent::from_avro(&bytes);
    }

    #[test]
    fn a_valid_header_with_an_arbitrary_body_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = examples::allergy(patient()).to_avro().unwrap()[..10].to_vec();
        bytes.extend_from_slice(&body);
        let _ = ClinicalEvent::from_avro(&bytes);
    }

    #[test]
    fn flipping_any_byte_of_a_record_never_panics(index in 0usize..400, bit in 0u8..8) {
        let mut bytes = examples::medication_prescribed(patient()).to_avro().unwrap();
        let i = index % bytes.len();
        bytes[i] ^= 1 << bit;
        let _ = ClinicalEvent::from_avro(&bytes);
    }
}

/// Every schema version can read every other version of the same record, both ways:
/// old readers read new records and new readers read old ones.
#[test]
fn every_schema_version_is_backward_and_forward_compatible_with_the_others() {
    let versions = SchemaCatalogue::global().versions();
    let mut pairs = 0;
    for a in versions {
        for b in versions
            .iter()
            .filter(|b| b.record_name() == a.record_name() && b.file != a.file)
        {
            if let Err(e) = compat::mutual_read(&a.schema, &b.schema) {
                panic!(
                    "{} and {} are not compatible both ways: {e}",
                    a.file, b.file
                );
            }
            pairs += 1;
        }
    }
    assert!(
        pairs >= 4,
        "clinical and access events each have two versions"
    );
}

fn schema_file(file: &str) -> &'static apache_avro::Schema {
    &SchemaCatalogue::global()
        .versions()
        .iter()
        .find(|v| v.file == file)
        .unwrap()
        .schema
}

/// Changes that would break readers are refused, naming where and why.
#[test]
fn an_incompatible_schema_change_is_refused_with_the_reason() {
    let current = SchemaCatalogue::global().current(ClinicalEvent::AVRO_RECORD);
    let original: serde_json::Value = serde_json::from_str(current.text).unwrap();
    type Edit = fn(&mut serde_json::Value);
    let edits: Vec<(&str, Edit, &str)> = vec![
        (
            "a new field without a default",
            |s| {
                s["fields"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({"name": "purpose", "type": "string"}))
            },
            "ClinicalEvent.purpose",
        ),
        (
            "an enum that loses its default",
            |s| {
                let event_type = s["fields"][2]["type"].as_object_mut().unwrap();
                event_type.remove("default");
                event_type["symbols"].as_array_mut().unwrap().pop();
            },
            "writer symbols [\"CARE_TEAM\"] are not in the reader's enum EventType, which has no default",
        ),
        (
            "a field whose type changes",
            |s| s["fields"][3]["type"] = serde_json::json!("string"),
            "ClinicalEvent.occurred_at",
        ),
    ];
    for (what, edit, expected) in edits {
        let mut changed = original.clone();
        edit(&mut changed);
        let changed = apache_avro::Schema::parse_str(&changed.to_string()).unwrap();
        let err = compat::mutual_read(&current.schema, &changed)
            .expect_err(what)
            .to_string();
        assert!(err.contains(expected), "{what}: {err}");
    }
}

/// The checker's verdicts agree with the real decoder on each rule it implements.
#[test]
fn the_compatibility_checker_agrees_with_the_decoder() {
    use apache_avro::types::Value;
    let enum_schema = |symbols: &str, default: &str| {
        format!(
            r#"{{"type":"record","name":"R","fields":[{{"name":"e","type":{{"type":"enum","name":"E","symbols":[{symbols}]{default}}}}}]}}"#
        )
    };
    let record = |fields: &str| format!(r#"{{"type":"record","name":"R","fields":[{fields}]}}"#);
    let cases = [
        // (writer, reader, a datum in the writer schema)
        (
            enum_schema(r#""A","B""#, ""),
            enum_schema(r#""A""#, r#","default":"A""#),
            Value::Record(vec![("e".into(), Value::Enum(1, "B".into()))]),
        ),
        (
            enum_schema(r#""A","B""#, ""),
            enum_schema(r#""A""#, ""),
            Value::Record(vec![("e".into(), Value::Enum(1, "B".into()))]),
        ),
        (
            record(r#"{"name":"a","type":"int"}"#),
            record(r#"{"name":"a","type":"int"},{"name":"b","type":"string","default":"x"}"#),
            Value::Record(vec![("a".into(), Value::Int(1))]),
        ),
        (
            record(r#"{"name":"a","type":"int"}"#),
            record(r#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#),
            Value::Record(vec![("a".into(), Value::Int(1))]),
        ),
        (
            record(r#"{"name":"a","type":"int"}"#),
            record(r#"{"name":"a","type":"long"}"#),
            Value::Record(vec![("a".into(), Value::Int(1))]),
        ),
        (
            record(r#"{"name":"a","type":"string"}"#),
            record(r#"{"name":"a","type":"int"}"#),
            Value::Record(vec![("a".into(), Value::String("x".into()))]),
        ),
        (
            record(r#"{"name":"a","type":["null","int"]}"#),
            record(r#"{"name":"a","type":"int"}"#),
            Value::Record(vec![("a".into(), Value::Union(0, Box::new(Value::Null)))]),
        ),
    ];
    for (writer, reader, datum) in cases {
        let writer = apache_avro::Schema::parse_str(&writer).unwrap();
        let reader = apache_avro::Schema::parse_str(&reader).unwrap();
        let bytes = write_datum(&writer, datum);
        let decodes = read_datum(&writer, &reader, &bytes).is_ok();
        let verdict = compat::can_read(&writer, &reader);
        assert_eq!(
            verdict.is_ok(),
            decodes,
            "{writer:?} read as {reader:?}: checker says {verdict:?}"
        );
    }
}

/// A reader built before version 2 reads a version 2 record of a type it does not know
/// as UNKNOWN (and the projector dead-letters it), and reads a known type in full.
#[test]
fn an_old_reader_reads_new_records() {
    use apache_avro::types::Value;
    let (v1, v2) = (
        schema_file("clinical_event.v1.avsc"),
        schema_file("clinical_event.v2.avsc"),
    );
    for event in every_example() {
        let bytes = event.to_avro().unwrap();
        let read = read_datum(v2, v1, &bytes[10..]).unwrap();
        let Value::Record(fields) = read else {
            panic!("a record")
        };
        let event_type = fields.iter().find(|(n, _)| n == "event_type").unwrap();
        let expected = match event.event_type() {
            t @ (EventType::Allergy | EventType::MedicationPrescribed | EventType::Observation) => {
                format!("{t:?}")
                    .to_uppercase()
                    .replace("MEDICATIONPRESCRIBED", "MEDICATION_PRESCRIBED")
            }
            _ => "UNKNOWN".into(),
        };
        assert!(
            matches!(&event_type.1, Value::Enum(_, s) if *s == expected),
            "{:?}: {:?}",
            event.event_type(),
            event_type.1
        );
    }
}

/// A record written with version 1 (as in logs written before version 2) reads as today's type.
#[test]
fn a_new_reader_reads_old_records() {
    let v1 = SchemaCatalogue::global()
        .versions()
        .iter()
        .find(|v| v.file == "clinical_event.v1.avsc")
        .unwrap();
    for event in every_example().into_iter().take(3) {
        let current = event.to_avro().unwrap();
        // Re-encode the same content with the version 1 schema.
        let value = read_datum(
            schema_file("clinical_event.v2.avsc"),
            &v1.schema,
            &current[10..],
        )
        .unwrap();
        let mut old = SINGLE_OBJECT_MARKER.to_vec();
        old.extend_from_slice(&v1.fingerprint);
        old.extend(write_datum(&v1.schema, value));
        assert_ne!(old[2..10], current[2..10]);
        assert_eq!(ClinicalEvent::from_avro(&old).unwrap(), event);
    }
}

/// An access event written with version 1 (as in ledgers written before version 2) is
/// read by today's code, with no categories.
#[test]
fn a_version_1_access_event_reads_as_the_current_type() {
    use apache_avro::types::Value;
    let catalogue = SchemaCatalogue::global();
    let v1 = catalogue
        .versions()
        .iter()
        .find(|v| v.file == "access_event.v1.avsc")
        .unwrap();
    let event = examples::access_event(patient());
    let record = Value::Record(vec![
        ("event_id".into(), Value::String(event.event_id.to_string())),
        (
            "request_id".into(),
            Value::String(event.request_id.to_string()),
        ),
        (
            "occurred_at".into(),
            Value::TimestampMillis(event.occurred_at),
        ),
        (
            "subject".into(),
            Value::Record(vec![
                ("id".into(), Value::String(event.subject.id.clone())),
                ("name".into(), Value::String(event.subject.name.clone())),
                ("role".into(), Value::String(event.subject.role.clone())),
                (
                    "ods_code".into(),
                    Value::String(event.subject.ods_code.clone()),
                ),
            ]),
        ),
        (
            "nhs_number".into(),
            Value::String(event.nhs_number.to_string()),
        ),
        ("action".into(), Value::String(event.action.clone())),
        ("decision".into(), Value::Enum(0, "PERMIT".into())),
        (
            "reasons".into(),
            Value::Array(vec![Value::String("role-permits-scope".into())]),
        ),
        ("returned_count".into(), Value::Int(0)),
        (
            "returned_digest".into(),
            Value::String(event.returned_digest.clone()),
        ),
        (
            "break_glass_reason".into(),
            Value::Union(0, Box::new(Value::Null)),
        ),
    ]);
    let mut bytes = SINGLE_OBJECT_MARKER.to_vec();
    bytes.extend_from_slice(&v1.fingerprint);
    bytes.extend(write_datum(&v1.schema, record));
    let read = AccessEvent::from_avro(&bytes).unwrap();
    assert_eq!(
        read,
        AccessEvent {
            categories: vec![],
            ..event
        }
    );
    assert_ne!(
        bytes[2..10],
        examples::access_event(patient()).to_avro().unwrap()[2..10],
        "today's code writes version 2"
    );
}
