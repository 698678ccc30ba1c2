//! FHIR R4 in and out: importing Bundles, single resources and Bulk Data NDJSON as
//! clinical events, and exporting events as FHIR resources and `searchset` Bundles.
//!
//! The mapping, resource type by resource type, is tabled in docs/events.md. Import is
//! deterministic: the same document imported by the same source system gives the same
//! event ids (UUID v5 of the source system, resource identity and version), so
//! re-importing publishes duplicates the projector skips.
//!
//! ```
//! use spr_producers::fhir::{import_document, Document, ImportSettings};
//! use spr_schemas::CareSetting;
//! let bundle = r#"{"resourceType": "Bundle", "type": "collection", "entry": [
//!   {"fullUrl": "urn:uuid:6f1e0bf4-1f3c-4bfb-a7b6-1b3d9c1e2f00", "resource": {"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01",
//!     "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}]}},
//!   {"resource": {"resourceType": "Observation", "id": "o", "status": "final",
//!     "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
//!     "subject": {"reference": "urn:uuid:6f1e0bf4-1f3c-4bfb-a7b6-1b3d9c1e2f00"},
//!     "effectiveDateTime": "2026-01-01T09:00:00Z", "valueQuantity": {"value": 72, "unit": "/min"}}}]}"#;
//! let settings = ImportSettings {
//!     source_system: "example-epr".into(),
//!     ods_code: "RX1".into(),
//!     care_setting: CareSetting::Acute,
//! };
//! let import = import_document(&Document::from_json("example", bundle).unwrap(), &settings).unwrap();
//! assert_eq!(import.events.len(), 2); // demographics and the heart rate
//! assert_eq!(import.events[1].nhs_number.as_str(), "9990000018");
//! ```

mod document;
mod elements;
mod export;
mod import;
mod publish;
mod report;
mod resources;

pub use document::{find_documents, Document, DocumentSource, Entry, UnreadableDocument};
pub use elements::{
    parse_time, CARE_SETTING_SYSTEM, EVENT_ID_SYSTEM, NHS_NUMBER_SYSTEM, ODS_SYSTEM,
    SDS_USER_SYSTEM, SOURCE_RECORD_SYSTEM, SPR_SENSITIVITY_SYSTEM, V3_ACT_CODE,
};
pub use export::{everything_bundle, patient_resource_id, resource_of};
pub use import::{
    import_document, parse_care_setting, DocumentImport, ImportSettings, RejectedDocument,
    Unmapped, ENCOUNTER_ID_SYSTEM, PREGNANCY_EPISODE_SYSTEM,
};
pub use publish::{publish_document_events, DocumentDelivery};
pub use report::ImportReport;
