//! The HTTP application: routes, shared state and the audited read path.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spr_producers::EventPublisher;
use spr_projector::summary::RecordNumbers;
use spr_projector::{ProjectionStore, StoreError, TimelineCursor, TimelineEntry};
use spr_schemas::{
    now_millis, AccessEvent, AccessSubject, Decision, EpochMillis, EventId, NhsNumber,
};
use tracing::instrument;

use crate::auth::{AuthError, Claims, TokenVerifier};
use crate::break_glass::BreakGlassGrants;
use crate::error::ApiError;
use crate::policy::{self, Context, Relationship, Request, Scope, Subject};
use crate::views::RecordView;

/// Largest timeline page.
pub const MAX_PAGE: usize = 500;
/// Timeline page size when none is given.
pub const DEFAULT_PAGE: usize = 50;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The projection (a RocksDB secondary that follows the projector).
    pub store: Arc<ProjectionStore>,
    /// Token verification.
    pub verifier: Arc<TokenVerifier>,
    /// Publishes access events; a response carries data only after its access event is acknowledged.
    pub audit: EventPublisher,
    /// When the projection was last caught up (ms since epoch), for readiness.
    pub last_catch_up_millis: Arc<AtomicI64>,
    /// The audit ledger, for the auditor endpoints (`None`: they answer 503).
    pub ledger: Option<Arc<crate::audit_routes::LedgerView>>,
    /// Break-glass elevations in force, granted here or, once followed, on any node.
    pub break_glass: BreakGlassGrants,
    /// Requests, latencies and error codes, for `/metrics`.
    pub metrics: Arc<crate::metrics::ApiMetrics>,
}

impl AppState {
    /// Follows the primary projection: catches up now and then every `interval`.
    pub fn spawn_catch_up(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let (store, last) = (
            Arc::clone(&self.store),
            Arc::clone(&self.last_catch_up_millis),
        );
        tokio::spawn(async move {
            loop {
                match store.catch_up() {
                    Ok(()) => last.store(now_millis(), Ordering::Relaxed),
                    Err(e) => tracing::warn!(error = %e, "projection catch-up failed"),
                }
                tokio::time::sleep(interval).await;
            }
        })
    }

    /// Follows `spr.break-glass` on `bootstrap`, so that this node holds the break-glass
    /// elevations any node granted ([`crate::break_glass`]).
    pub fn spawn_break_glass_follower(
        &self,
        bootstrap: &str,
    ) -> Result<tokio::task::JoinHandle<()>, crate::break_glass::FollowError> {
        crate::break_glass::spawn_follower(
            bootstrap,
            self.break_glass.clone(),
            Arc::clone(&self.store),
            policy::PolicySettings::default().break_glass_duration,
        )
    }
}

/// The application's routes over `state`, each request counted and timed in
/// `state.metrics`.
pub fn router(state: AppState) -> Router {
    let metrics = Arc::clone(&state.metrics);
    let routes = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/openapi.json", get(crate::openapi::document))
        .route("/patients/{nhs_number}/timeline", get(timeline))
        .route("/patients/{nhs_number}/summary", get(summary))
        .merge(crate::record_routes::routes())
        .route("/me/access-log", get(crate::audit_routes::my_access_log))
        .route("/audit/checkpoint", get(crate::audit_routes::checkpoint))
        .route(
            "/audit/proof/inclusion",
            get(crate::audit_routes::inclusion),
        )
        .route(
            "/audit/proof/consistency",
            get(crate::audit_routes::consistency),
        )
        .fallback(|| async { ApiError::NotFound })
        .with_state(state);
    metrics.record(crate::layers::harden(routes))
}

/// Liveness.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    status: &'static str,
}

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
pub(crate) async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: how fresh the API's view of the projection is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Readiness {
    /// Milliseconds since this API's secondary last caught up with the projection.
    projection_caught_up_ms_ago: i64,
    /// Seconds since the projector last held everything the broker had handed it
    /// (`None` before it first caught up): records may be missing events this recent.
    projector_behind_seconds: Option<f64>,
}

#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "Caught up with the projection within 5 s", body = Readiness),
    (status = 503, description = "Not caught up for 5 s or more", body = Readiness)))]
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    let age = now_millis() - state.last_catch_up_millis.load(Ordering::Relaxed);
    let body = Json(Readiness {
        projection_caught_up_ms_ago: age,
        projector_behind_seconds: projector_behind_seconds(&state),
    });
    if age < 5_000 {
        body.into_response()
    } else {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

/// Query parameters of the timeline.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TimelineQuery {
    /// Opaque cursor from the previous page's `next_cursor`.
    #[param(pattern = "^[0-9a-fA-F]{48}$")]
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// Asks for the full tier (the whole history) where the policy grants it.
    pub full_history: Option<bool>,
    /// Earliest clinical time, RFC 3339 (`2024-01-31T00:00:00Z`).
    pub from: Option<String>,
    /// Latest clinical time, RFC 3339.
    pub to: Option<String>,
    /// Event types, comma-separated (`allergy,observation`).
    pub types: Option<String>,
    /// Care settings, comma-separated (`GP,ACUTE`).
    pub care_setting: Option<String>,
    /// ODS code of the source organisation.
    pub source_org: Option<String>,
    /// Text to find in the code's display text (case-insensitive).
    pub text: Option<String>,
    /// Also list amended and withdrawn entries (marked `superseded_by`).
    pub include_superseded: Option<bool>,
}

/// A view of one patient's record as returned to the client: the patient's NHS number
/// beside the view's own fields.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ViewResponse<V> {
    /// The patient.
    #[schema(value_type = String)]
    pub(crate) nhs_number: NhsNumber,
    #[serde(flatten)]
    pub(crate) view: V,
}

#[utoipa::path(get, path = "/patients/{nhs_number}/timeline", tag = "patient data",
    params(crate::openapi::NhsNumberParam, TimelineQuery),
    responses((status = 200, description = "A page of the timeline, oldest first", body = ViewResponse<spr_projector::TimelinePage>),
        crate::openapi::NotModified, crate::openapi::ErrorResponses),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(nhs_number = %nhs_number))]
pub(crate) async fn timeline(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(nhs_number): Path<String>,
    query: Result<Query<TimelineQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&state, &headers)?;
    let patient = parse_nhs_number(&nhs_number)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad-query", e.body_text()))?;
    let (limit, cursor) = paging(query.limit, query.cursor.as_deref())?;
    let filter = crate::filter::TimelineFilter::parse(&query)?;
    let request = Request {
        full_history: query.full_history.unwrap_or(false),
        ..Request::direct_care(Scope::Timeline)
    };
    audited_read(&state, &claims, patient, request, |state, permitted| {
        let keep = |e: &TimelineEntry| permitted.allows(e) && filter.matches(e);
        let page = state
            .store
            .record_timeline_where(
                &permitted.numbers.all,
                cursor.as_ref(),
                filter.range,
                limit,
                keep,
            )
            .map_err(internal)?;
        let returned = Returned::of(&page.entries);
        Ok((
            ViewResponse {
                nhs_number: patient,
                view: page,
            },
            returned,
        ))
    })
    .await
}

#[utoipa::path(get, path = "/patients/{nhs_number}/summary", tag = "patient data",
    params(crate::openapi::NhsNumberParam),
    responses((status = 200, description = "The emergency summary", body = ViewResponse<spr_projector::summary::EmergencySummary>),
        crate::openapi::NotModified, crate::openapi::ErrorResponses),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(nhs_number = %nhs_number))]
pub(crate) async fn summary(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(nhs_number): Path<String>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&state, &headers)?;
    let patient = parse_nhs_number(&nhs_number)?;
    let request = Request::direct_care(Scope::EmergencySummary);
    audited_read(&state, &claims, patient, request, |state, permitted| {
        let (summary, returned) = permitted.view(
            state
                .store
                .emergency_summary(&permitted.numbers.all, permitted.now),
        )?;
        Ok((
            ViewResponse {
                nhs_number: patient,
                view: summary,
            },
            returned,
        ))
    })
    .await
}

/// Validates a page size (1 to [`MAX_PAGE`], default [`DEFAULT_PAGE`]) and a cursor.
pub(crate) fn paging(
    limit: Option<usize>,
    cursor: Option<&str>,
) -> Result<(usize, Option<TimelineCursor>), ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "bad-limit",
            format!("limit must be 1 to {MAX_PAGE}"),
        ));
    }
    let cursor = cursor
        .map(TimelineCursor::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request("bad-cursor", e.to_string()))?;
    Ok((limit, cursor))
}

/// Verifies the request's bearer token.
pub(crate) fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Claims, ApiError> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?;
    // The scheme is case-insensitive (RFC 9110 section 11.1).
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .ok_or(AuthError::Missing)?
        .1;
    Ok(state.verifier.verify(token.trim())?)
}

pub(crate) fn parse_nhs_number(text: &str) -> Result<NhsNumber, ApiError> {
    text.parse().map_err(|e: spr_schemas::NhsNumberError| {
        ApiError::bad_request("bad-nhs-number", e.to_string())
    })
}

/// What a permitted read may use: the record's numbers, the decision and the time.
#[derive(Debug)]
pub(crate) struct PermittedRead {
    /// The record's NHS numbers (surviving first, then those merged into it).
    pub(crate) numbers: RecordNumbers,
    /// The policy's decision (permitted).
    pub(crate) decision: policy::Decision,
    /// When the request was decided.
    pub(crate) now: EpochMillis,
}

impl PermittedRead {
    /// Whether the decision lets this entry be shown.
    pub(crate) fn allows(&self, entry: &TimelineEntry) -> bool {
        self.decision
            .visibility
            .allows(entry.event_type, entry.occurred_at, &entry.sensitivity)
    }

    /// A page of the record's standing entries (not amended or withdrawn) that the
    /// decision allows, oldest first.
    pub(crate) fn standing_page(
        &self,
        store: &ProjectionStore,
        cursor: Option<&TimelineCursor>,
        limit: usize,
    ) -> Result<spr_projector::TimelinePage, ApiError> {
        store
            .record_timeline_where(
                &self.numbers.all,
                cursor,
                spr_projector::TimeRange::ALL,
                limit,
                |e| self.allows(e) && e.stands(),
            )
            .map_err(internal)
    }

    /// Keeps what the decision allows of a view just read, and names what is returned.
    pub(crate) fn view<V: RecordView>(
        &self,
        view: Result<V, StoreError>,
    ) -> Result<(V, Returned), ApiError> {
        let mut view = view.map_err(internal)?;
        view.retain_visible(&|e| self.allows(e));
        let returned = Returned::of(view.entries());
        Ok((view, returned))
    }
}

/// Gathers the facts the policy needs, decides, reads, records the access event
/// (awaiting the broker's acknowledgement), and only then returns the data. Denials are
/// recorded too. If the access event cannot be recorded the answer is 503 and carries
/// no patient data.
pub(crate) async fn audited_read<T: Serialize>(
    state: &AppState,
    claims: &Claims,
    patient: NhsNumber,
    request: Request,
    read: impl FnOnce(&AppState, &PermittedRead) -> Result<(T, Returned), ApiError>,
) -> Result<Response, ApiError> {
    let now = now_millis();
    let subject = Subject {
        role: claims.role.parse(),
        own_nhs_number: claims.nhs_number.as_deref().and_then(|n| n.parse().ok()),
    };
    let numbers = state.store.record_numbers(&patient).map_err(internal)?;
    let context = policy_context(state, claims, &numbers, now)?;
    let decision = policy::decide(&subject, &patient, &request, &context);
    let mut access = access_event(claims, patient, &request, &decision, now);
    access.break_glass_reason = context
        .break_glass
        .filter(|_| decision.reasons.contains(&policy::ReasonCode::BreakGlass))
        .map(|grant| grant.reason);
    if !decision.permit {
        record(state, &access).await?;
        return Err(ApiError::Forbidden {
            reasons: decision.reason_codes(),
        });
    }
    let permitted = PermittedRead {
        numbers,
        decision,
        now,
    };
    access.decision = Decision::Permit;
    let (body, returned) = match read(state, &permitted) {
        Ok(read) => read,
        Err(e) => {
            // A permitted request that failed to read still reached a decision: record it
            // (returning nothing) so the ledger has every decision.
            record(state, &access).await?;
            return Err(e);
        }
    };
    access.returned_count = returned.event_ids.len() as i32;
    access.returned_digest = returned_digest(&returned.event_ids);
    access.categories = returned.categories.into_iter().collect();
    record(state, &access).await?;
    let mut response = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&access.request_id.to_string()) {
        response.headers_mut().insert("x-request-id", v);
    }
    // How fresh the record is: it may lack events from the last this-many seconds.
    if let Some(behind) = projector_behind_seconds(state) {
        if let Ok(v) = HeaderValue::from_str(&format!("{behind:.1}")) {
            response
                .headers_mut()
                .insert("x-projection-behind-seconds", v);
        }
    }
    Ok(response)
}

/// Seconds since the projector was last caught up, from the readiness it records.
fn projector_behind_seconds(state: &AppState) -> Option<f64> {
    let readiness = state.store.readiness().ok().flatten()?;
    readiness.seconds_behind(now_millis())
}

/// The access event of a decision, before anything is returned (a denial as it stands).
pub(crate) fn access_event(
    claims: &Claims,
    patient: NhsNumber,
    request: &Request,
    decision: &policy::Decision,
    now: EpochMillis,
) -> AccessEvent {
    AccessEvent {
        event_id: EventId::random(),
        request_id: EventId::random(),
        occurred_at: now,
        subject: AccessSubject {
            id: claims.sub.clone(),
            name: claims.name.clone(),
            role: claims.role.clone(),
            ods_code: claims.org.clone(),
        },
        nhs_number: patient,
        action: request.scope.action().into(),
        decision: Decision::Deny,
        reasons: decision
            .reason_codes()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        returned_count: 0,
        returned_digest: returned_digest(&[]),
        break_glass_reason: None,
        categories: vec![],
    }
}

/// The facts about this subject's organisation and this record that the policy weighs:
/// its relationship (contacts, care team, registered practice), the patient's sharing
/// choices, and any break-glass this subject holds for the patient.
pub(crate) fn policy_context(
    state: &AppState,
    claims: &Claims,
    numbers: &RecordNumbers,
    now: EpochMillis,
) -> Result<Context, ApiError> {
    let store = &state.store;
    let found = store
        .relationship(&numbers.all, &claims.org)
        .map_err(internal)?;
    let registered = store.registered_practice(&numbers.all).map_err(internal)?;
    let choices = store.sharing_choices(&numbers.all).map_err(internal)?;
    Ok(Context {
        relationship: Relationship {
            last_contact_at: found.last_contact_at,
            care_team_until: if found.open_ended_care_team {
                Some(EpochMillis::MAX)
            } else {
                found.care_team_until
            },
            registered_practice: registered
                .as_deref()
                .is_some_and(|practice| practice.eq_ignore_ascii_case(&claims.org)),
        },
        choices: choices
            .into_iter()
            .map(|(category, (choice, _))| (category, choice))
            .collect(),
        break_glass: state
            .break_glass
            .active(&claims.sub, &numbers.surviving, now),
        ..Context::at(now)
    })
}

/// Benchmarks only: skips recording access events, to measure what the audit step
/// costs. Compiled only with the `bench-unaudited` feature, which only the crate's own
/// benchmarks and tests enable; no command-line option or request can reach it.
#[cfg(feature = "bench-unaudited")]
pub static SKIP_AUDIT_FOR_BENCH: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

pub(crate) async fn record(state: &AppState, access: &AccessEvent) -> Result<(), ApiError> {
    #[cfg(feature = "bench-unaudited")]
    if SKIP_AUDIT_FOR_BENCH.load(Ordering::Relaxed) {
        return Ok(());
    }
    state.audit.publish_access_event(access).await.map(|_| ()).map_err(|e| {
        tracing::error!(error = %e, request_id = %access.request_id, "access event not recorded; withholding data");
        ApiError::AuditUnavailable
    })
}

/// A store failure: logged, never shown to the caller.
pub(crate) fn internal(e: StoreError) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// What a response carries, as its access event names it.
#[derive(Debug, Default)]
pub(crate) struct Returned {
    pub(crate) event_ids: Vec<EventId>,
    /// Event types and sensitivity labels, each once, sorted.
    pub(crate) categories: std::collections::BTreeSet<String>,
}

impl Returned {
    pub(crate) fn of<'a>(entries: impl IntoIterator<Item = &'a TimelineEntry>) -> Self {
        let mut returned = Self::default();
        for entry in entries {
            returned.event_ids.push(entry.event_id);
            returned
                .categories
                .insert(entry.event_type.as_str().to_owned());
            returned
                .categories
                .extend(entry.sensitivity.iter().cloned());
        }
        returned
    }
}

/// Hex SHA-256 over the returned event ids, each followed by a newline.
pub fn returned_digest(ids: &[EventId]) -> String {
    let mut h = Sha256::new();
    for id in ids {
        h.update(id.to_string().as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}
