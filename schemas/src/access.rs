//! Access events: one per API request, recorded before any patient data leaves.

use serde::{Deserialize, Serialize};

use crate::{EpochMillis, EventId, NhsNumber};

/// One access decision made by the query API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEvent {
    /// Unique id of this access event; the ledger deduplicates on it.
    pub event_id: EventId,
    /// The HTTP request it belongs to.
    pub request_id: EventId,
    /// When the decision was made.
    pub occurred_at: EpochMillis,
    /// Who asked.
    pub subject: AccessSubject,
    /// Whose record was asked for.
    pub nhs_number: NhsNumber,
    /// What was asked for, for example `timeline.read`.
    pub action: String,
    /// Permitted or denied.
    pub decision: Decision,
    /// Why, in policy reason codes.
    pub reasons: Vec<String>,
    /// How many events the response carries.
    pub returned_count: i32,
    /// Hex SHA-256 over the returned event ids, each followed by a newline.
    pub returned_digest: String,
    /// Set when the subject used break-glass or asked to (a refusal is a `DENY`), with
    /// their stated reason.
    pub break_glass_reason: Option<String>,
    /// What kinds of data the response carried: event types and sensitivity labels,
    /// each once, sorted (schema version 2; empty when read from version 1).
    pub categories: Vec<String>,
}

/// The person (or system) behind a request, as their token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Subject")] // the Avro record's name, which serde-Avro checks
pub struct AccessSubject {
    /// Subject identifier from the token.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Job role.
    pub role: String,
    /// ODS code of their organisation.
    pub ods_code: String,
}

/// The outcome of an access decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Decision {
    /// Data was returned.
    Permit,
    /// No patient data was returned.
    Deny,
}
