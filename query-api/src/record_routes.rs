//! Task views for clinicians, break-glass, and the patient's own record and choices.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use spr_projector::summary::EmergencySummary;
use spr_projector::{ProjectionStore, StoreError, TimelinePage};
use spr_schemas::{
    now_millis, Author, CareSetting, ClinicalEvent, Code, ConsentChoicePayload, EpochMillis,
    EventId, NhsNumber, Payload, SensitiveCategory, SharingChoice, Source, Status, SNOMED_CT,
};

use crate::app::{
    access_event, audited_read, authenticate, internal, parse_nhs_number, policy_context, record,
    AppState, PermittedRead, Returned, ViewResponse,
};
use crate::auth::Claims;
use crate::error::ApiError;
use crate::policy::{self, ActiveBreakGlass, Request, Scope, Subject};
use crate::views::RecordView;

/// The routes of this module.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/patients/{nhs_number}/maternity", get(maternity))
        .route("/patients/{nhs_number}/medications", get(medications))
        .route("/patients/{nhs_number}/discharge", get(discharge))
        .route("/patients/{nhs_number}/social-care", get(social_care))
        .route("/patients/{nhs_number}/administration", get(administration))
        .route("/patients/{nhs_number}/break-glass", post(break_glass))
        .route(
            "/patients/{nhs_number}/fhir/$everything",
            get(fhir_everything),
        )
        .route("/me/record", get(my_record))
        .route("/me/choices", get(my_choices).put(set_my_choice))
}

/// Serves one task view: decide, read the view, keep what the decision allows.
async fn task_view<V: RecordView + Serialize>(
    state: AppState,
    headers: HeaderMap,
    nhs_number: String,
    scope: Scope,
    read: impl FnOnce(&ProjectionStore, &PermittedRead) -> Result<V, StoreError>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&state, &headers)?;
    let patient = parse_nhs_number(&nhs_number)?;
    audited_read(
        &state,
        &claims,
        patient,
        Request::direct_care(scope),
        |state, permitted| {
            let (view, returned) = permitted.view(read(&state.store, permitted))?;
            Ok((
                ViewResponse {
                    nhs_number: patient,
                    view,
                },
                returned,
            ))
        },
    )
    .await
}

/// `GET /patients/{nhs}/maternity`: pregnancy episodes (the open one first) with their
/// antenatal visits, birth and risks.
#[utoipa::path(get, path = "/patients/{nhs_number}/maternity", tag = "patient data", params(crate::openapi::NhsNumberParam),
    responses((status = 200, description = "Pregnancy episodes, the open one first", body = ViewResponse<Episodes>), crate::openapi::NotModified, crate::openapi::ErrorResponses),
    security(("bearer" = [])))]
pub(crate) async fn maternity(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(nhs_number): Path<String>,
) -> Result<Response, ApiError> {
    task_view(
        state,
        headers,
        nhs_number,
        Scope::MaternityView,
        |store, p| {
            store
                .maternity_view(&p.numbers.all)
                .map(|episodes| Episodes { episodes })
        },
    )
    .await
}

/// The maternity view's body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Episodes {
    episodes: Vec<spr_projector::summary::PregnancyEpisode>,
}

impl RecordView for Episodes {
    fn retain_visible(&mut self, keep: &dyn Fn(&spr_projector::TimelineEntry) -> bool) {
        self.episodes.retain_visible(keep);
    }
    fn entries(&self) -> Vec<&spr_projector::TimelineEntry> {
        self.episodes.entries()
    }
}

/// `GET /patients/{nhs}/medications`: medication reconciliation.
#[utoipa::path(get, path = "/patients/{nhs_number}/medications", tag = "patient data", params(crate::openapi::NhsNumberParam),
    responses((status = 200, description = "Medication reconciliation", body = ViewResponse<spr_projector::summary::MedicationView>), crate::openapi::NotModified, crate::openapi::ErrorResponses),
    security(("bearer" = [])))]
pub(crate) async fn medications(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(nhs_number): Path<String>,
) -> Result<Response, ApiError> {
    task_view(
        state,
        headers,
        nhs_number,
        Scope::MedicationView,
        |store, p| store.medication_view(&p.numbers.all, p.now),
    )
    .await
}

/// `GET /patients/{nhs}/discharge`: the latest discharge summary and its admission.
#[utoipa::path(get, path = "/patients/{nhs_number}/discharge", tag = "patient data", params(crate::openapi::NhsNumberParam),
    responses((status = 200, description = "The latest discharge summary and its admission", body = ViewResponse<spr_projector::summary::DischargeView>), crate::openapi::NotModified, crate::openapi::ErrorResponses),
    security(("bearer" = [])))]
pub(crate) async fn discharge(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(nhs_number): Path<String>,
) -> Result<Response, ApiError> {
    task_view(
        state,
        headers,
        nhs_number,
        Scope::DischargeView,
        |store, p| store.discharge_view(&p.numbers.all),
    )
    .await
}

/// Most entries one `$everything` export carries.
pub(crate) const MAX_EXPORT: usize = 20_000;

/// `GET /patients/{nhs}/fhir/$everything`: the record as a FHIR R4 searchset Bundle,
/// built from the projection under the same policy as the timeline (standing events the
/// decision allows; `full_history=true` asks for the full tier).
#[utoipa::path(get, path = "/patients/{nhs_number}/fhir/$everything", tag = "patient data",
    params(crate::openapi::NhsNumberParam, ExportQuery),
    responses((status = 200, description = "A FHIR R4 searchset Bundle (schema: FHIR R4 Bundle)", body = Object),
        crate::openapi::NotModified, crate::openapi::ErrorResponses),
    security(("bearer" = [])))]
pub(crate) async fn fhir_everything(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(nhs_number): Path<String>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&state, &headers)?;
    let patient = parse_nhs_number(&nhs_number)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad-query", e.body_text()))?;
    let request = Request {
        full_history: query.full_history.unwrap_or(false),
        ..Request::direct_care(Scope::FhirExport)
    };
    audited_read(&state, &claims, patient, request, |state, permitted| {
        let page = permitted.standing_page(&state.store, None, MAX_EXPORT)?;
        if page.next_cursor.is_some() {
            return Err(ApiError::bad_request(
                "export-too-large",
                format!("the record has more than {MAX_EXPORT} entries; page the timeline instead"),
            ));
        }
        let ids: Vec<EventId> = page.entries.iter().map(|e| e.event_id).collect();
        let events = state.store.events(&ids).map_err(internal)?;
        let bundle = spr_producers::fhir::everything_bundle(&permitted.numbers.surviving, &events);
        Ok((bundle, Returned::of(&page.entries)))
    })
    .await
}

/// Query of `$everything`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportQuery {
    /// Asks for the full tier (the whole history) where the policy grants it.
    full_history: Option<bool>,
}

/// `GET /patients/{nhs}/social-care[?cursor=&limit=]`: what a social worker needs
/// (safeguarding, care plans, who is involved, demographics) as a page of the record;
/// the policy's data minimisation decides which kinds of event appear.
#[utoipa::path(get, path = "/patients/{nhs_number}/social-care", tag = "patient data", params(crate::openapi::NhsNumberParam, RecordQuery),
    responses((status = 200, description = "A page of the record, social-care data only", body = ViewResponse<spr_projector::TimelinePage>), crate::openapi::NotModified, crate::openapi::ErrorResponses),
    security(("bearer" = [])))]
pub(crate) async fn social_care(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(nhs_number): Path<String>,
    query: Result<Query<RecordQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    scoped_page(state, headers, nhs_number, query, Scope::SocialCareView).await
}

/// `GET /patients/{nhs}/administration[?cursor=&limit=]`: what reception needs
/// (demographics, appointments and admissions, referrals, care team) as a page of the record.
#[utoipa::path(get, path = "/patients/{nhs_number}/administration", tag = "patient data", params(crate::openapi::NhsNumberParam, RecordQuery),
    responses((status = 200, description = "A page of the record, administrative data only", body = ViewResponse<spr_projector::TimelinePage>), crate::openapi::NotModified, crate::openapi::ErrorResponses),
    security(("bearer" = [])))]
pub(crate) async fn administration(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(nhs_number): Path<String>,
    query: Result<Query<RecordQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    scoped_page(state, headers, nhs_number, query, Scope::AdministrationView).await
}

/// A page of the standing record under `scope`: the decision's visibility is the view.
async fn scoped_page(
    state: AppState,
    headers: HeaderMap,
    nhs_number: String,
    query: Result<Query<RecordQuery>, QueryRejection>,
    scope: Scope,
) -> Result<Response, ApiError> {
    let claims = authenticate(&state, &headers)?;
    let patient = parse_nhs_number(&nhs_number)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad-query", e.body_text()))?;
    let (limit, cursor) = crate::app::paging(query.limit, query.cursor.as_deref())?;
    audited_read(
        &state,
        &claims,
        patient,
        Request::direct_care(scope),
        |state, permitted| {
            let page = permitted.standing_page(&state.store, cursor.as_ref(), limit)?;
            let returned = Returned::of(&page.entries);
            Ok((
                ViewResponse {
                    nhs_number: patient,
                    view: page,
                },
                returned,
            ))
        },
    )
    .await
}

/// The longest break-glass reason taken: it goes into every access event of the elevation.
const MAX_BREAK_GLASS_REASON_CHARS: usize = 1_000;

/// The body of a break-glass request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BreakGlassBody {
    /// Why the record is needed without a legitimate relationship.
    reason: String,
}

/// A granted elevation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BreakGlassGranted {
    #[schema(value_type = String)]
    nhs_number: NhsNumber,
    expires_at: EpochMillis,
    #[schema(value_type = Vec<String>)]
    reasons: Vec<&'static str>,
}

/// `POST /patients/{nhs}/break-glass` with `{"reason": "..."}`: a time-limited elevation,
/// recorded (with its reason) before it takes effect. A refusal is recorded too.
#[utoipa::path(post, path = "/patients/{nhs_number}/break-glass", tag = "patient data", params(crate::openapi::NhsNumberParam),
    request_body = BreakGlassBody,
    responses((status = 201, description = "Granted, time-limited, recorded with its reason", body = BreakGlassGranted), crate::openapi::ErrorResponses, crate::openapi::BodyTooLarge),
    security(("bearer" = [])))]
pub(crate) async fn break_glass(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(nhs_number): Path<String>,
    body: Result<Json<BreakGlassBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&state, &headers)?;
    let patient = parse_nhs_number(&nhs_number)?;
    let Json(body) = body.map_err(|e| ApiError::bad_request("bad-body", e.body_text()))?;
    if body.reason.chars().count() > MAX_BREAK_GLASS_REASON_CHARS {
        return Err(ApiError::bad_request(
            "reason-too-long",
            format!("a break-glass reason is at most {MAX_BREAK_GLASS_REASON_CHARS} characters; say briefly why the record is needed now"),
        ));
    }
    let now = now_millis();
    let numbers = state.store.record_numbers(&patient).map_err(internal)?;
    let context = policy_context(&state, &claims, &numbers, now)?;
    let request = Request {
        break_glass_reason: Some(body.reason.clone()),
        ..Request::direct_care(Scope::BreakGlass)
    };
    let decision = policy::decide(&subject(&claims), &patient, &request, &context);
    let mut access = access_event(&claims, patient, &request, &decision, now);
    let expires_at = match (decision.permit, decision.break_glass_until) {
        (true, Some(until)) => until,
        _ => {
            // A refused break-glass keeps the reason given, for the auditor.
            access.break_glass_reason = Some(body.reason.trim().to_owned());
            record(&state, &access).await?;
            return Err(ApiError::Forbidden {
                reasons: decision.reason_codes(),
            });
        }
    };
    access.decision = spr_schemas::Decision::Permit;
    access.break_glass_reason = Some(body.reason.trim().to_owned());
    record(&state, &access).await?;
    let grant = ActiveBreakGlass {
        reason: body.reason.trim().to_owned(),
        expires_at,
    };
    state
        .break_glass
        .grant(&claims.sub, numbers.surviving, grant, now);
    // Recorded and held here, the elevation stands; should the other nodes not hear
    // of it, they refuse until the clinician asks them again (fail closed).
    if let Err(e) = state.audit.publish_break_glass(&access).await {
        tracing::warn!(error = %e, request_id = %access.request_id, "break-glass granted on this node only: not published to the other nodes");
    }
    let granted = BreakGlassGranted {
        nhs_number: patient,
        expires_at,
        reasons: decision.reason_codes(),
    };
    Ok((StatusCode::CREATED, Json(granted)).into_response())
}

fn subject(claims: &Claims) -> Subject {
    Subject {
        role: claims.role.parse(),
        own_nhs_number: claims.nhs_number.as_deref().and_then(|n| n.parse().ok()),
    }
}

/// The caller's own NHS number, from a patient token.
pub(crate) fn own_nhs_number(claims: &Claims) -> Result<NhsNumber, ApiError> {
    claims
        .nhs_number
        .as_deref()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ApiError::Rejected {
            status: StatusCode::FORBIDDEN,
            code: "not-a-patient-token",
            message: "this endpoint serves patients their own record; the token names no NHS number (sign in as the patient)".into(),
        })
}

/// Paging of `/me/record`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct RecordQuery {
    /// Opaque cursor from the previous page's `next_cursor`.
    #[param(pattern = "^[0-9a-fA-F]{48}$")]
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// The patient's own record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MyRecord {
    #[schema(value_type = String)]
    nhs_number: NhsNumber,
    summary: EmergencySummary,
    timeline: TimelinePage,
}

/// `GET /me/record[?cursor=&limit=]`: the caller's own record, as the policy lets
/// patients see it: their summary and a page of their timeline. Audited.
#[utoipa::path(get, path = "/me/record", tag = "patient data", params(RecordQuery),
    responses((status = 200, description = "The caller's own summary and a page of their timeline", body = MyRecord), crate::openapi::NotModified, crate::openapi::ErrorResponses),
    security(("bearer" = [])))]
pub(crate) async fn my_record(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<RecordQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&state, &headers)?;
    let patient = own_nhs_number(&claims)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad-query", e.body_text()))?;
    let (limit, cursor) = crate::app::paging(query.limit, query.cursor.as_deref())?;
    let request = Request::direct_care(Scope::PatientRecord);
    audited_read(&state, &claims, patient, request, |state, permitted| {
        let (summary, _) = permitted.view(
            state
                .store
                .emergency_summary(&permitted.numbers.all, permitted.now),
        )?;
        let timeline = permitted.standing_page(&state.store, cursor.as_ref(), limit)?;
        let returned = Returned::of(summary.entries().into_iter().chain(&timeline.entries));
        Ok((
            MyRecord {
                nhs_number: patient,
                summary,
                timeline,
            },
            returned,
        ))
    })
    .await
}

/// One category's choice as the patient sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ChoiceView {
    #[schema(value_type = String)]
    category: SensitiveCategory,
    choice: SharingChoice,
    /// When the patient made it; absent for the default (share).
    chosen_at: Option<EpochMillis>,
}

/// `GET /me/choices`: the caller's sharing choice for every sensitive category.
#[utoipa::path(get, path = "/me/choices", tag = "patient data",
    responses((status = 200, description = "The caller's choice for every sensitive category", body = Vec<ChoiceView>), crate::openapi::NotModified, crate::openapi::ErrorResponses),
    security(("bearer" = [])))]
pub(crate) async fn my_choices(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let claims = authenticate(&state, &headers)?;
    let patient = own_nhs_number(&claims)?;
    let request = Request::direct_care(Scope::Choices);
    audited_read(&state, &claims, patient, request, |state, permitted| {
        let chosen = state
            .store
            .sharing_choices(&permitted.numbers.all)
            .map_err(internal)?;
        let returned = Returned::of(chosen.values().map(|(_, entry)| entry));
        let choices: Vec<ChoiceView> = SensitiveCategory::ALL
            .into_iter()
            .map(|category| match chosen.get(&category) {
                Some((choice, entry)) => ChoiceView {
                    category,
                    choice: *choice,
                    chosen_at: Some(entry.occurred_at),
                },
                None => ChoiceView {
                    category,
                    choice: SharingChoice::Share,
                    chosen_at: None,
                },
            })
            .collect();
        Ok((choices, returned))
    })
    .await
}

/// The body of a choice change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChoiceBody {
    category: String,
    choice: SharingChoice,
}

/// A choice change the broker has accepted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ChoiceAccepted {
    /// The CONSENT_CHOICE event published.
    #[schema(value_type = String, format = "uuid")]
    event_id: EventId,
    #[schema(value_type = String)]
    category: SensitiveCategory,
    choice: SharingChoice,
}

/// `PUT /me/choices` with `{"category": "sexual-health", "choice": "WITHHOLD"}`: publishes
/// the patient's choice as a CONSENT_CHOICE event and answers 202 once the broker has it.
/// The request is audited first; the projection applies the choice within seconds.
#[utoipa::path(put, path = "/me/choices", tag = "patient data", request_body = ChoiceBody,
    responses((status = 202, description = "Published; the projection applies it within seconds", body = ChoiceAccepted), crate::openapi::ErrorResponses, crate::openapi::BodyTooLarge),
    security(("bearer" = [])))]
pub(crate) async fn set_my_choice(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<ChoiceBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&state, &headers)?;
    let patient = own_nhs_number(&claims)?;
    let Json(body) = body.map_err(|e| ApiError::bad_request("bad-body", e.body_text()))?;
    let category: SensitiveCategory =
        body.category
            .parse()
            .map_err(|e: spr_schemas::UnknownCategory| {
                ApiError::bad_request("bad-category", e.to_string())
            })?;
    let now = now_millis();
    let numbers = state.store.record_numbers(&patient).map_err(internal)?;
    let context = policy_context(&state, &claims, &numbers, now)?;
    let request = Request::direct_care(Scope::Choices);
    let decision = policy::decide(&subject(&claims), &patient, &request, &context);
    let mut access = access_event(&claims, patient, &request, &decision, now);
    if !decision.permit {
        record(&state, &access).await?;
        return Err(ApiError::Forbidden {
            reasons: decision.reason_codes(),
        });
    }
    let event = choice_event(numbers.surviving, &claims, category, body.choice, now);
    access.decision = spr_schemas::Decision::Permit;
    access.categories = vec!["consent-choice".into(), category.as_str().into()];
    record(&state, &access).await?;
    state
        .audit
        .publish_clinical_event(&event)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "sharing choice not published");
            // The request itself is in the audit log; the choice is not on the log yet.
            ApiError::Rejected {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "choice-not-published",
                message:
                    "your choice could not be saved just now and nothing changed; try again shortly"
                        .into(),
            }
        })?;
    let accepted = ChoiceAccepted {
        event_id: event.event_id,
        category,
        choice: body.choice,
    };
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

/// The CONSENT_CHOICE event a patient's change publishes.
fn choice_event(
    nhs_number: NhsNumber,
    claims: &Claims,
    category: SensitiveCategory,
    choice: SharingChoice,
    now: EpochMillis,
) -> ClinicalEvent {
    ClinicalEvent {
        event_id: EventId::random(),
        nhs_number,
        occurred_at: now,
        recorded_at: now,
        source: Source {
            system: "spr-api".into(),
            ods_code: claims.org.clone(),
            care_setting: CareSetting::PatientGenerated,
            record_id: None,
        },
        author: Author {
            id: claims.sub.clone(),
            role: "patient".into(),
        },
        code: Code {
            system: SNOMED_CT.into(),
            code: "887031000000108".into(),
            display: "Consent preference".into(),
        },
        sensitivity: vec![],
        status: Status::Final,
        supersedes: None,
        encounter_id: None,
        payload: Payload::ConsentChoice(ConsentChoicePayload { category, choice }),
    }
}
