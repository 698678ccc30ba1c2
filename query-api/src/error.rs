//! One error type for every handler, always answered as `{"error": code, "message": text}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::auth::AuthError;

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

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized(e) => (StatusCode::UNAUTHORIZED, e.code()),
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Forbidden { .. } => (StatusCode::FORBIDDEN, "access-denied"),
            Self::AuditUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "audit-unavailable"),
            Self::LedgerUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "ledger-unavailable"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not-found"),
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
        let mut body = json!({"error": code, "message": self.to_string()});
        if let Self::Forbidden { reasons } = &self {
            body["reasons"] = json!(reasons);
        }
        (status, Json(body)).into_response()
    }
}
