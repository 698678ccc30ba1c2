//! Avro single-object encoding of events, and the catalogue of every schema version.
//!
//! A record on the wire is `C3 01`, the 8-byte little-endian CRC-64-AVRO (Rabin)
//! fingerprint of the writer schema's canonical form, then the Avro binary datum.
//! A reader looks the fingerprint up in [`SchemaCatalogue`] and resolves the writer
//! schema to its own reader schema, so old and new versions read each other.

use std::collections::HashMap;
use std::sync::LazyLock;

use apache_avro::rabin::Rabin;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use serde::{de::DeserializeOwned, Serialize};

/// The two-byte marker that starts every single-object encoded record.
pub const SINGLE_OBJECT_MARKER: [u8; 2] = [0xC3, 0x01];
const HEADER_LEN: usize = 10;

/// Why bytes could not be decoded into an event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the 10-byte header.
    #[error("record is {0} bytes, shorter than the 10-byte Avro single-object header")]
    TooShort(usize),
    /// The first two bytes are not `C3 01`.
    #[error(
        "record does not start with the Avro single-object marker C3 01 (found {0:02X} {1:02X})"
    )]
    BadMarker(u8, u8),
    /// No schema in the catalogue has this fingerprint.
    #[error("writer schema fingerprint {0} is not in the schema catalogue; add the schema under schemas/avro/")]
    UnknownFingerprint(String),
    /// The writer schema is for a different record type.
    #[error("writer schema is {found}, expected {expected}")]
    WrongRecord {
        /// Record name this decoder reads.
        expected: &'static str,
        /// Record name of the writer schema.
        found: String,
    },
    /// The Avro body did not decode against the writer schema.
    #[error("Avro body does not decode with writer schema {schema}: {message}")]
    Avro {
        /// The writer schema's file name.
        schema: &'static str,
        /// The Avro library's message.
        message: String,
    },
    /// Bytes were left after the record.
    #[error("{0} bytes left after the Avro record")]
    TrailingBytes(usize),
    /// The record decoded but its content is not a valid event.
    #[error("invalid {record}: {message}")]
    Invalid {
        /// Record name.
        record: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Why an event could not be encoded (a bug: the Rust type and the schema disagree).
#[derive(Debug, thiserror::Error)]
#[error("could not encode {record} with schema {schema}: {message}")]
pub struct EncodeError {
    record: &'static str,
    schema: &'static str,
    message: String,
}

/// One schema version: its file name under `schemas/avro/`, text and parsed form.
pub struct SchemaVersion {
    /// File name, for example `clinical_event.v1.avsc`.
    pub file: &'static str,
    /// The JSON text.
    pub text: &'static str,
    /// Parsed schema.
    pub schema: Schema,
    /// Rabin fingerprint, as it appears on the wire.
    pub fingerprint: [u8; 8],
    /// The record's full name, worked out once (encoding and decoding compare it).
    record: String,
}

impl std::fmt::Debug for SchemaVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaVersion")
            .field("file", &self.file)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl SchemaVersion {
    fn parse(file: &'static str, text: &'static str) -> Self {
        let schema = Schema::parse_str(text)
            .unwrap_or_else(|e| panic!("schemas/avro/{file} does not parse: {e}"));
        let fingerprint = schema
            .fingerprint::<Rabin>()
            .bytes
            .try_into()
            .expect("Rabin fingerprints are 8 bytes");
        let record = match &schema {
            Schema::Record(r) => r.name.fullname(None),
            other => format!("{other:?}"),
        };
        Self {
            file,
            text,
            schema,
            fingerprint,
            record,
        }
    }

    /// The full name of the record this schema describes (`uk.nhs.spr.ClinicalEvent`).
    pub fn record_name(&self) -> &str {
        &self.record
    }
}

/// Every schema version in the repository.
#[derive(Debug)]
pub struct SchemaCatalogue {
    versions: Vec<SchemaVersion>,
}

/// Every `.avsc` file in schemas/avro/, oldest version first within each record.
const SCHEMA_FILES: &[(&str, &str)] = &[
    (
        "clinical_event.v1.avsc",
        include_str!("../avro/clinical_event.v1.avsc"),
    ),
    (
        "clinical_event.v2.avsc",
        include_str!("../avro/clinical_event.v2.avsc"),
    ),
    (
        "access_event.v1.avsc",
        include_str!("../avro/access_event.v1.avsc"),
    ),
    (
        "access_event.v2.avsc",
        include_str!("../avro/access_event.v2.avsc"),
    ),
];

static CATALOGUE: LazyLock<SchemaCatalogue> = LazyLock::new(|| SchemaCatalogue {
    versions: SCHEMA_FILES
        .iter()
        .map(|(f, t)| SchemaVersion::parse(f, t))
        .collect(),
});

impl SchemaCatalogue {
    /// The catalogue compiled into this binary.
    pub fn global() -> &'static SchemaCatalogue {
        &CATALOGUE
    }

    /// Every version, in file order.
    pub fn versions(&self) -> &[SchemaVersion] {
        &self.versions
    }

    /// The newest version of a record (the one this code writes and reads into).
    pub fn current(&self, record_name: &str) -> &SchemaVersion {
        self.versions
            .iter()
            .rev()
            .find(|v| v.record_name() == record_name)
            .unwrap_or_else(|| panic!("no schema for {record_name} in schemas/avro/"))
    }
}

/// A Rust type stored as an Avro record through a serde "wire" form.
pub(crate) trait AvroRecord: Sized {
    /// Full Avro record name.
    const RECORD: &'static str;
    /// The serde form whose fields mirror the schema.
    type Wire: Serialize + DeserializeOwned;
    fn to_wire(&self) -> Self::Wire;
    /// The domain value of a decoded record (ids parsed, the payload taken).
    fn from_wire(wire: Self::Wire) -> Result<Self, String>;
    /// The content rules a new record must meet beyond its types.
    fn check_content(&self) -> Result<(), String> {
        Ok(())
    }
}

/// How one schema version is read and written (found by its fingerprint in `CODECS`),
/// its named types resolved once (resolving them per record cost three quarters of the
/// decoding time).
struct VersionCodec {
    /// The version it reads and writes.
    version: &'static SchemaVersion,
    /// Reads a datum of this version; for an older version, resolves it to the current one.
    reader: GenericDatumReader<'static>,
    /// Writes a datum of this version straight from the serde form.
    writer: GenericDatumWriter<'static>,
    /// Whether this is the newest version of its record, read without resolution.
    current: bool,
}

static CODECS: LazyLock<HashMap<[u8; 8], VersionCodec>> = LazyLock::new(|| {
    let catalogue = SchemaCatalogue::global();
    catalogue
        .versions()
        .iter()
        .map(|version| {
            let fail = |e: apache_avro::Error| -> ! {
                panic!("schemas/avro/{} does not resolve: {e}", version.file)
            };
            let newest = catalogue.current(version.record_name());
            let current = newest.fingerprint == version.fingerprint;
            let reader = GenericDatumReader::builder(&version.schema);
            let reader = if current {
                reader.build()
            } else {
                reader.reader_schema(&newest.schema).build()
            }
            .unwrap_or_else(|e| fail(e));
            let writer = GenericDatumWriter::builder(&version.schema)
                .build()
                .unwrap_or_else(|e| fail(e));
            (
                version.fingerprint,
                VersionCodec {
                    version,
                    reader,
                    writer,
                    current,
                },
            )
        })
        .collect()
});

pub(crate) fn encode<T: AvroRecord>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let version = SchemaCatalogue::global().current(T::RECORD);
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&SINGLE_OBJECT_MARKER);
    out.extend_from_slice(&version.fingerprint);
    CODECS[&version.fingerprint]
        .writer
        .write_ser(&mut out, &value.to_wire())
        .map_err(|e| EncodeError {
            record: T::RECORD,
            schema: version.file,
            message: e.to_string(),
        })?;
    Ok(out)
}

pub(crate) fn decode<T: AvroRecord>(bytes: &[u8]) -> Result<T, DecodeError> {
    let value = decode_accepted::<T>(bytes)?;
    value
        .check_content()
        .map_err(|message| DecodeError::Invalid {
            record: T::RECORD,
            message,
        })?;
    Ok(value)
}

/// Like [`decode`], without the content rules: for bytes that met them when they were
/// accepted, so that a rule added since does not make them unreadable.
pub(crate) fn decode_accepted<T: AvroRecord>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::TooShort(bytes.len()));
    }
    if bytes[..2] != SINGLE_OBJECT_MARKER {
        return Err(DecodeError::BadMarker(bytes[0], bytes[1]));
    }
    let fingerprint: [u8; 8] = bytes[2..HEADER_LEN].try_into().expect("8 bytes");
    let codec = CODECS
        .get(&fingerprint)
        .ok_or_else(|| DecodeError::UnknownFingerprint(hex_string(&fingerprint)))?;
    let writer = codec.version;
    if writer.record_name() != T::RECORD {
        return Err(DecodeError::WrongRecord {
            expected: T::RECORD,
            found: writer.record_name().to_owned(),
        });
    }
    let avro_error = |e: apache_avro::Error| DecodeError::Avro {
        schema: writer.file,
        message: e.to_string(),
    };
    let mut rest = &bytes[HEADER_LEN..];
    // The current version deserialises straight from the bytes; an older one is read
    // into a value and resolved to the current schema first.
    let wire: T::Wire = if codec.current {
        codec.reader.read_deser(&mut rest).map_err(avro_error)?
    } else {
        let value = codec.reader.read_value(&mut rest).map_err(avro_error)?;
        apache_avro::from_value(&value).map_err(avro_error)?
    };
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    T::from_wire(wire).map_err(|message| DecodeError::Invalid {
        record: T::RECORD,
        message,
    })
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{examples, AccessEvent, ClinicalEvent};

    /// The schema-resolving encoder the cached writer replaced, kept as the reference.
    fn reference_encode<T: AvroRecord>(value: &T) -> Vec<u8> {
        let version = SchemaCatalogue::global().current(T::RECORD);
        let avro = apache_avro::to_value(value.to_wire())
            .unwrap()
            .resolve(&version.schema)
            .unwrap();
        let mut out = SINGLE_OBJECT_MARKER.to_vec();
        out.extend_from_slice(&version.fingerprint);
        out.extend(
            GenericDatumWriter::builder(&version.schema)
                .build()
                .unwrap()
                .write_value_to_vec(avro)
                .unwrap(),
        );
        out
    }

    #[test]
    fn the_cached_writer_writes_the_bytes_schema_resolution_would() {
        let nhs = "9990000018".parse().unwrap();
        let mut events = examples::one_of_each_type(nhs);
        for event in &mut events {
            event.sensitivity.push("mental-health".into());
            event.encounter_id = Some("E1".into());
            event.source.record_id = Some("Observation/1".into());
        }
        for event in &events {
            assert_eq!(
                encode(event).unwrap(),
                reference_encode(event),
                "{:?}",
                event.event_type()
            );
            assert_eq!(
                &ClinicalEvent::from_avro(&encode(event).unwrap()).unwrap(),
                event
            );
        }
        let mut access = examples::access_event(nhs);
        assert_eq!(encode(&access).unwrap(), reference_encode(&access));
        access.break_glass_reason = Some("unconscious".into());
        access.categories = vec!["allergy".into()];
        assert_eq!(encode(&access).unwrap(), reference_encode(&access));
        assert_eq!(
            AccessEvent::from_avro(&encode(&access).unwrap()).unwrap(),
            access
        );
    }
}
