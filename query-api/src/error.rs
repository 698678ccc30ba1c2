//! One error type for every handler, always answered as `{"error": code, "message": text}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `token-expired`, `bad-nhs-number`, `access-denied`.
    pub error: String,
    /// What went wrong and what to do, for people.
    pub message: String,
    /// The policy's reason codes (403 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The bearer token is missing or invalid.
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    /// A path or query parameter is invalid.
    #[error("{message}")]
    BadRequest {
        /// Machine-readable code.
        code: &'static str,
        /// What to fix.
        message: String,
    },
    /// The policy denied the request (the denial was recorded).
    #[error("access denied: {}", reasons.join(", "))]
    Forbidden {
        /// The policy's reason codes.
        reasons: Vec<&'static str>,
    },
    /// The access event could not be recorded, so no data is returned.
    #[error("the access could not be recorded in the audit log, so no data is returned; try again shortly")]
    AuditUnavailable,
    /// The audit ledger or its checkpoint is not available to this API.
    #[error("the audit ledger is not available here yet; try again shortly")]
    LedgerUnavailable,
    /// No such route.
    #[error("no such endpoint")]
    NotFound,
    /// A request refused by the HTTP layer before any handler ran (wrong method, body
    /// too large, undecodable path), with the status that layer chose.
    #[error("{message}")]
    Rejected {
        /// The status.
        status: StatusCode,
        /// Machine-readable code.
        code: &'static str,
        /// What to fix.
        message: String,
    },
    /// Something failed inside; details are logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A 400 with a code and message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// The status and code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized(e) => (StatusCode::UNAUTHORIZED, e.code()),
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Forbidden { .. } => (StatusCode::FORBIDDEN, "access-denied"),
            Self::AuditUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "audit-unavailable"),
            Self::LedgerUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "ledger-unavailable"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not-found"),
            Self::Rejected { status, code, .. } => (*status, code),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let body = ErrorBody {
            error: code.to_owned(),
            message: self.to_string(),
            reasons: match &self {
                Self::Forbidden { reasons } => {
                    Some(reasons.iter().map(|r| (*r).to_owned()).collect())
                }
                _ => None,
            },
        };
        let mut response = (status, Json(body)).into_response();
        response
            .extensions_mut()
            .insert(crate::metrics::ErrorCode(code));
        if let Self::Unauthorized(e) = &self {
            // RFC 6750 section 3: no error code when the request carried no token at all.
            let challenge = match e {
                AuthError::Missing => r#"Bearer realm="spr-timeline""#.to_owned(),
                _ => format!(
                    r#"Bearer realm="spr-timeline", error="invalid_token", error_description="{}""#,
                    e.code()
                ),
            };
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}
