//! The HTTP ingestion gateway, for care-setting systems that cannot speak Kafka:
//! `POST /fhir` takes a FHIR R4 Bundle or single resource from an authenticated
//! publishing system, maps it with the same code as `spr-produce fhir`
//! ([`spr_producers::fhir`]) and answers 202 only once the broker has acknowledged
//! every event (idempotent producer, acks=all). Every answer is an `OperationOutcome`.
//!
//! It lives in this crate, as its own binary `spr-gateway`, to share token
//! verification ([`crate::auth`]) without copying it; it shares no state or routes
//! with the clinician-facing API, so it scales and fails on its own.

mod credentials;
mod outcome;
pub mod permissions;
mod rate_limit;

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use spr_producers::fhir::{import_document, publish_document_events, Document, ImportReport};
use spr_producers::EventPublisher;
use spr_schemas::now_millis;
use tracing::instrument;

use crate::auth::TokenVerifier;
use crate::metrics::ApiMetrics;

pub use credentials::{authenticate_publisher, PublisherClaims, INGEST_AUDIENCE};
pub use outcome::{IngestError, REASON_SYSTEM};
pub use rate_limit::{
    PublisherRateLimit, ZeroRateLimit, DEFAULT_BURST_DOCUMENTS, DEFAULT_DOCUMENTS_PER_MINUTE,
};

/// Largest request body accepted when none is configured: 10 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The content types a document may be sent as.
const ACCEPTED_CONTENT_TYPES: [&str; 2] = ["application/fhir+json", "application/json"];

/// What the gateway's handlers share.
#[derive(Clone, Debug)]
pub struct GatewayState {
    /// Verifies publisher tokens.
    pub verifier: Arc<TokenVerifier>,
    /// Publishes the mapped events.
    pub publisher: EventPublisher,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Counts and times every request ([`ApiMetrics::for_gateway`]).
    pub metrics: Arc<ApiMetrics>,
    /// How many documents each publishing system may post.
    pub rate_limit: Arc<PublisherRateLimit>,
}

/// The gateway's routes over `state`.
pub fn router(state: GatewayState) -> Router {
    let metrics = Arc::clone(&state.metrics);
    let routes = Router::new()
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/fhir", post(ingest))
        .fallback(|| async { IngestError::NotFound })
        .method_not_allowed_fallback(|| async { IngestError::MethodNotAllowed })
        .with_state(state);
    metrics.record(routes)
}

/// `POST /fhir`: authenticate, count the document against the system's rate, check
/// and read the body (only then: a refused request is not read), map it, publish it,
/// and say what happened.
#[instrument(skip_all, fields(system))]
async fn ingest(
    State(state): State<GatewayState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    let publisher = authenticate_publisher(&state.verifier, &headers)?;
    tracing::Span::current().record("system", publisher.sub.as_str());
    state
        .rate_limit
        .check(&publisher.sub)
        .map_err(|retry_after| {
            let (per_minute, burst) = state.rate_limit.limits();
            IngestError::RateLimited {
                per_minute,
                burst,
                retry_after,
            }
        })?;
    require_fhir_json(&headers)?;
    let body = to_bytes(body, state.max_body_bytes)
        .await
        .map_err(|error| {
            let source = std::error::Error::source(&error);
            if source.is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) {
                IngestError::TooLarge {
                    limit: state.max_body_bytes,
                }
            } else {
                IngestError::Unreadable {
                    reason: "body-unreadable",
                    message: format!("the body could not be read ({error}); send it again"),
                }
            }
        })?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| IngestError::Unreadable {
            reason: "not-json",
            message: format!("the body is not JSON ({e}); send a FHIR R4 resource or Bundle"),
        })?;
    let document = Document::from_value("the posted document", value).map_err(|message| {
        IngestError::Unreadable {
            reason: "not-fhir",
            message,
        }
    })?;
    let mut import = import_document(&document, &publisher.import_settings())
        .map_err(|rejected| IngestError::Rejected(rejected.to_string()))?;
    let screened = permissions::screen(
        std::mem::take(&mut import.events),
        &publisher.org,
        &publisher.permissions,
        now_millis(),
    )?;
    import.events = screened.events;
    let mut report = ImportReport::default();
    let events = report.add(Ok(import));
    let delivery = publish_document_events(&state.publisher, &events, &mut report).await;
    if !delivery.is_complete() {
        return Err(IngestError::NotPublished(delivery));
    }
    tracing::info!(
        published = report.published,
        unmapped = report.unmapped_total(),
        "document accepted"
    );
    Ok(outcome::accepted(&report, &screened.not_taken))
}

/// Refuses a body not declared as FHIR JSON (parameters such as `charset` are allowed).
fn require_fhir_json(headers: &HeaderMap) -> Result<(), IngestError> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let media_type = declared.split(';').next().unwrap_or("").trim();
    if ACCEPTED_CONTENT_TYPES
        .iter()
        .any(|accepted| media_type.eq_ignore_ascii_case(accepted))
    {
        Ok(())
    } else {
        Err(IngestError::UnsupportedMediaType(declared))
    }
}
