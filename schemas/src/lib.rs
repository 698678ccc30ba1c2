//! The contract of SPR Timeline: the Avro schemas (in `schemas/avro/`), their Rust
//! types, the wire codec and the topic names.
//!
//! ```
//! use spr_schemas::{ClinicalEvent, NhsNumber};
//! # let event = spr_schemas::examples::allergy("9990000018".parse().unwrap());
//! let bytes = event.to_avro().unwrap();          // C3 01 + fingerprint + Avro body
//! assert_eq!(ClinicalEvent::from_avro(&bytes).unwrap(), event);
//! ```

mod access;
mod clinical;
pub mod codec;
pub mod compat;
mod event_id;
pub mod examples;
mod nhs_number;
mod sensitivity;
pub mod topics;
mod wire;

pub use access::{AccessEvent, AccessSubject, Decision};
pub use clinical::*;
pub use codec::{DecodeError, EncodeError, SchemaCatalogue};
pub use event_id::{EventId, EventIdError};
pub use nhs_number::{NhsNumber, NhsNumberError};
pub use sensitivity::{SensitiveCategory, UnknownCategory};
