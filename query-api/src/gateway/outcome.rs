//! FHIR `OperationOutcome` bodies: the gateway's answer to every request, the 202
//! included, each issue with a FHIR issue type and an SPR reason code.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use spr_producers::fhir::{DocumentDelivery, ImportReport};
use spr_producers::PublishError;

use crate::auth::AuthError;
use crate::metrics::ErrorCode;

use super::credentials::INGEST_AUDIENCE;
use super::permissions::Refusal;

/// The code system of the SPR reason codes in `issue.details.coding`.
pub const REASON_SYSTEM: &str = "https://spr.nhs.uk/CodeSystem/ingest-outcome";

/// One `OperationOutcome.issue`.
#[derive(Debug, Clone)]
struct Issue {
    /// `fatal`, `error`, `warning` or `information`.
    severity: &'static str,
    /// The FHIR IssueType (`login`, `structure`, `transient`, ...).
    code: &'static str,
    /// The SPR reason code (`token-missing`, `not-json`, ...).
    reason: &'static str,
    /// What happened and what to do next.
    diagnostics: String,
    /// FHIRPath of what the issue is about, if any.
    expression: Option<String>,
}

impl Issue {
    fn new(
        severity: &'static str,
        code: &'static str,
        reason: &'static str,
        diagnostics: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            code,
            reason,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    fn about(mut self, expression: &str) -> Self {
        self.expression = Some(expression.to_owned());
        self
    }

    fn to_json(&self) -> Value {
        let mut issue = json!({
            "severity": self.severity,
            "code": self.code,
            "details": {"coding": [{"system": REASON_SYSTEM, "code": self.reason}]},
            "diagnostics": self.diagnostics,
        });
        if let Some(expression) = &self.expression {
            issue["expression"] = json!([expression]);
        }
        issue
    }
}

fn operation_outcome(issues: &[Issue]) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": issues.iter().map(Issue::to_json).collect::<Vec<_>>(),
    })
}

fn fhir_response(status: StatusCode, issues: &[Issue]) -> Response {
    let mut response = (status, Json(operation_outcome(issues))).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json"),
    );
    response
}

/// 202: what was published, per type, what was not mapped, and what the gateway did
/// not take from the mapped events ([`super::permissions::screen`]).
pub(super) fn accepted(report: &ImportReport, not_taken: &[String]) -> Response {
    let mut issues = vec![Issue::new(
        "information",
        "informational",
        "accepted",
        format!(
            "accepted: {} events acknowledged by the broker from {} resources ({} mapped, {} unmapped); {} duplicate event ids within the document skipped",
            report.published,
            report.resources,
            report.mapped_total(),
            report.unmapped_total(),
            report.duplicate_ids
        ),
    )];
    for (resource_type, n) in &report.mapped {
        issues.push(
            Issue::new(
                "information",
                "informational",
                "mapped",
                format!("{resource_type}: {n} mapped"),
            )
            .about(resource_type),
        );
    }
    for (resource_type, reasons) in &report.unmapped {
        for (reason, n) in reasons {
            issues.push(
                Issue::new(
                    "warning",
                    "not-supported",
                    "unmapped",
                    format!("{resource_type}: {n} not mapped: {reason}"),
                )
                .about(resource_type),
            );
        }
    }
    for sentence in not_taken {
        issues.push(Issue::new(
            "warning",
            "business-rule",
            "not-taken",
            sentence.clone(),
        ));
    }
    fhir_response(StatusCode::ACCEPTED, &issues)
}

/// Why a request to the gateway was not accepted; each answers with an OperationOutcome.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The bearer token is missing, invalid, or not a publisher token.
    #[error("{0}; the gateway accepts publisher tokens (audience {INGEST_AUDIENCE:?}, minted by `spr-gateway token`), not clinician or patient tokens")]
    Unauthorized(#[from] AuthError),
    /// The body is not declared as FHIR JSON.
    #[error("content type {0:?} is not accepted; send application/fhir+json or application/json")]
    UnsupportedMediaType(String),
    /// The body is larger than the gateway accepts.
    #[error("the body is larger than {limit} bytes; split the Bundle into smaller ones (each is accepted or refused on its own)")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not JSON, or not a FHIR resource or importable Bundle.
    #[error("{message}")]
    Unreadable {
        /// `not-json` or `not-fhir`.
        reason: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// The document was rejected as a whole (a patient without a valid NHS number).
    #[error("{0}")]
    Rejected(String),
    /// The broker did not acknowledge every event.
    #[error("{}", .0.failure_summary())]
    NotPublished(DocumentDelivery),
    /// No such route.
    #[error("no such endpoint; POST FHIR R4 resources and Bundles to /fhir")]
    NotFound,
    /// The publishing system sent more documents than its limit allows.
    #[error("this system sent documents faster than its {per_minute} a minute (in bursts of at most {burst}); retry after {} s (each document is accepted or refused whole, so retrying is safe)", retry_after_seconds(*.retry_after))]
    RateLimited {
        /// The sustained rate allowed.
        per_minute: u32,
        /// The most documents accepted at once.
        burst: u32,
        /// How long until the next document is accepted.
        retry_after: Duration,
    },
    /// The route exists but not for this method.
    #[error("method not allowed; POST FHIR R4 resources and Bundles to /fhir")]
    MethodNotAllowed,
    /// An event asserts what the system may not.
    #[error("the document was refused and nothing of it was published: {0}")]
    Refused(#[from] Refusal),
}

impl IngestError {
    /// The status, the reason code of the error (also the first issue's), and the issues.
    fn status_and_issues(&self) -> (StatusCode, &'static str, Vec<Issue>) {
        let message = self.to_string();
        let (status, code, reason) = match self {
            Self::Unauthorized(e) => (StatusCode::UNAUTHORIZED, "login", e.code()),
            Self::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not-supported",
                "unsupported-media-type",
            ),
            Self::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too-costly", "too-large"),
            Self::Unreadable { reason, .. } => (StatusCode::BAD_REQUEST, "structure", *reason),
            Self::Rejected(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "patient-nhs-number",
            ),
            Self::RateLimited { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "throttled", "rate-limited")
            }
            Self::NotPublished(delivery) => return not_published(delivery, message),
            Self::NotFound => (StatusCode::NOT_FOUND, "not-found", "not-found"),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "not-supported",
                "method-not-allowed",
            ),
            Self::Refused(_) => (StatusCode::FORBIDDEN, "forbidden", "not-permitted"),
        };
        (
            status,
            reason,
            vec![Issue::new("error", code, reason, message)],
        )
    }
}

/// 503 when the broker did not acknowledge (retrying is safe), 500 when an event could
/// not even be encoded (a mapping defect: retrying will not help); either way the
/// acknowledged event ids are listed, so a partial publish is never silent.
fn not_published(
    delivery: &DocumentDelivery,
    message: String,
) -> (StatusCode, &'static str, Vec<Issue>) {
    let encoding_failed = delivery
        .failed
        .iter()
        .any(|(_, e)| matches!(e, PublishError::Encode(_) | PublishError::Invalid { .. }));
    let (status, code, reason) = if encoding_failed {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "event-not-encoded",
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "transient",
            "broker-unavailable",
        )
    };
    let mut issues = vec![Issue::new("error", code, reason, message)];
    if !delivery.acknowledged.is_empty() {
        let ids: Vec<String> = delivery
            .acknowledged
            .iter()
            .map(ToString::to_string)
            .collect();
        issues.push(Issue::new(
            "information",
            "informational",
            "acknowledged",
            format!("acknowledged event ids: {}", ids.join(", ")),
        ));
    }
    (status, reason, issues)
}

/// Whole seconds to wait, rounded up and at least one (`Retry-After` takes seconds).
fn retry_after_seconds(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let (status, reason, issues) = self.status_and_issues();
        if status.is_server_error() {
            tracing::warn!(error = %self, "document not published");
        }
        let mut response = fhir_response(status, &issues);
        response.extensions_mut().insert(ErrorCode(reason));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"spr-ingest\""),
            );
        }
        if let Self::RateLimited { retry_after, .. } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_seconds(retry_after).into());
        }
        response
    }
}
