//! What auditors read: the access report (denials, break-glass, flagged accesses,
//! unusual volume) and the FHIR R4 AuditEvent export.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use spr_schemas::{AccessEvent, Decision};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Policy reason codes that mark an access an auditor must look at.
pub const FLAGGED_REASONS: [&str; 2] = ["break-glass", "no-legitimate-relationship"];

/// One ledger entry, as listed in a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedAccess {
    /// Ledger index.
    pub index: u64,
    /// The access event.
    pub event: AccessEvent,
}

/// Someone (a user or a patient) with an unusual number of accesses.
#[derive(Debug, Clone, PartialEq)]
pub struct UnusualVolume {
    /// The user id or NHS number.
    pub who: String,
    /// Their number of accesses.
    pub accesses: usize,
    /// The threshold they exceeded.
    pub threshold: f64,
}

/// The access report over a ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessReport {
    /// Entries read.
    pub entries: usize,
    /// Denied requests.
    pub denied: Vec<ReportedAccess>,
    /// Accesses that used break-glass, and refused attempts (decision `DENY`), each with
    /// the reason given.
    pub break_glass: Vec<ReportedAccess>,
    /// Accesses with a flagged reason code (see [`FLAGGED_REASONS`]).
    pub flagged: Vec<ReportedAccess>,
    /// Accesses that returned a sensitive category (see [`spr_schemas::SensitiveCategory`]).
    pub sensitive: Vec<ReportedAccess>,
    /// Users with unusually many accesses.
    pub unusual_users: Vec<UnusualVolume>,
    /// Patients whose record was accessed unusually often.
    pub unusual_patients: Vec<UnusualVolume>,
}

/// Builds the report. A count is unusual above `max(minimum, mean + 3 × standard deviation)`
/// of the counts of its kind.
pub fn access_report(entries: &[AccessEvent], minimum: usize) -> AccessReport {
    let listed = |keep: &dyn Fn(&AccessEvent) -> bool| -> Vec<ReportedAccess> {
        entries
            .iter()
            .enumerate()
            .filter(|(_, e)| keep(e))
            .map(|(i, e)| ReportedAccess {
                index: i as u64,
                event: e.clone(),
            })
            .collect()
    };
    let by = |key: &dyn Fn(&AccessEvent) -> String| {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        entries
            .iter()
            .for_each(|e| *counts.entry(key(e)).or_default() += 1);
        unusual(&counts, minimum)
    };
    AccessReport {
        entries: entries.len(),
        denied: listed(&|e| e.decision == Decision::Deny),
        break_glass: listed(&|e| e.break_glass_reason.is_some()),
        flagged: listed(&|e| {
            e.reasons
                .iter()
                .any(|r| FLAGGED_REASONS.contains(&r.as_str()))
        }),
        sensitive: listed(&|e| {
            e.categories
                .iter()
                .any(|c| c.parse::<spr_schemas::SensitiveCategory>().is_ok())
        }),
        unusual_users: by(&|e| e.subject.id.clone()),
        unusual_patients: by(&|e| e.nhs_number.to_string()),
    }
}

fn unusual(counts: &BTreeMap<String, usize>, minimum: usize) -> Vec<UnusualVolume> {
    if counts.is_empty() {
        return Vec::new();
    }
    let n = counts.len() as f64;
    let mean = counts.values().sum::<usize>() as f64 / n;
    let variance = counts
        .values()
        .map(|c| (*c as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    let threshold = (mean + 3.0 * variance.sqrt()).max(minimum as f64);
    counts
        .iter()
        .filter(|(_, c)| **c as f64 > threshold)
        .map(|(who, c)| UnusualVolume {
            who: who.clone(),
            accesses: *c,
            threshold,
        })
        .collect()
}

/// The FHIR R4 AuditEvent of one access (outcome 0 for a permitted read, 4 for a denial).
pub fn fhir_audit_event(event: &AccessEvent) -> Value {
    let recorded =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(event.occurred_at) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default();
    let (outcome, outcome_text) = match event.decision {
        Decision::Permit => ("0", "permitted"),
        Decision::Deny => ("4", "denied"),
    };
    let mut details = vec![
        json!({"type": "action", "valueString": event.action}),
        json!({"type": "request-id", "valueString": event.request_id.to_string()}),
        json!({"type": "returned-count", "valueString": event.returned_count.to_string()}),
        json!({"type": "returned-digest", "valueString": event.returned_digest}),
    ];
    if !event.categories.is_empty() {
        details.push(json!({"type": "categories", "valueString": event.categories.join(",")}));
    }
    if let Some(reason) = &event.break_glass_reason {
        details.push(json!({"type": "break-glass-reason", "valueString": reason}));
    }
    json!({
        "resourceType": "AuditEvent",
        "id": event.event_id.to_string(),
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "read", "display": "read"}],
        "action": "R",
        "recorded": recorded,
        "outcome": outcome,
        "outcomeDesc": format!("{outcome_text}: {}", event.reasons.join(", ")),
        "agent": [{
            "type": {"text": event.subject.role},
            "who": {"identifier": {"value": event.subject.id}, "display": event.subject.name},
            "requestor": true
        }, {
            "who": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": event.subject.ods_code}},
            "requestor": false
        }],
        "source": {"observer": {"display": "SPR Timeline query API"}},
        "entity": [{
            "what": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": event.nhs_number.to_string()}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
            "detail": details
        }]
    })
}
