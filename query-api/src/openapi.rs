//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` attributes
//! and the response types' schemas, and served without authentication at
//! `GET /openapi.json`.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi};

use crate::error::ErrorBody;

/// The API's OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "SPR Timeline query API",
        description = "Clinicians and patients read projected timelines; every decision is recorded in the audit log before any data is returned."
    ),
    paths(
        crate::app::health,
        crate::app::ready,
        document,
        crate::app::timeline,
        crate::app::summary,
        crate::audit_routes::my_access_log,
        crate::audit_routes::checkpoint,
        crate::audit_routes::inclusion,
        crate::audit_routes::consistency,
        crate::record_routes::maternity,
        crate::record_routes::medications,
        crate::record_routes::discharge,
        crate::record_routes::social_care,
        crate::record_routes::administration,
        crate::record_routes::break_glass,
        crate::record_routes::fhir_everything,
        crate::record_routes::my_record,
        crate::record_routes::my_choices,
        crate::record_routes::set_my_choice,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Adds the `bearer` security scheme (an EdDSA JWT; see docs/access-model.md).
#[derive(Debug)]
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub(crate) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The patient named in the path.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct NhsNumberParam {
    /// The patient's NHS number: 10 digits with a valid Mod 11 check digit.
    #[param(
        example = "9434765919",
        pattern = "^[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}$"
    )]
    pub nhs_number: String,
}

/// The answer of a GET whose `If-None-Match` named the current `ETag`.
#[derive(Debug, IntoResponses)]
pub enum NotModified {
    /// For patient data, the access was decided and recorded like any other read.
    #[response(
        status = 304,
        description = "Not modified; an access to patient data was still recorded"
    )]
    NotModified,
}

/// The answer of a request whose body is over the limit.
#[derive(Debug, IntoResponses)]
pub enum BodyTooLarge {
    /// Nothing recorded.
    #[response(status = 413, description = "body-too-large: the body is over 64 KiB")]
    BodyTooLarge(ErrorBody),
}

/// The answers an authenticated endpoint can give besides its success.
#[derive(Debug, IntoResponses)]
pub enum ErrorResponses {
    /// Bad input (nothing recorded), or an export too large (recorded).
    #[response(
        status = 400,
        description = "Bad input, nothing recorded: bad-nhs-number, bad-query, bad-limit, bad-cursor, bad-filter, bad-proof-request, bad-body, bad-category, reason-too-long; or export-too-large, recorded as a permit that returned nothing"
    )]
    BadRequest(ErrorBody),
    /// No valid token (nothing recorded).
    #[response(
        status = 401,
        description = "No valid bearer token: token-missing, token-malformed, token-unknown-key, token-expired, token-not-yet-valid, token-wrong-audience, token-wrong-issuer, token-bad-signature"
    )]
    Unauthorized(ErrorBody),
    /// The policy denied the request (recorded).
    #[response(
        status = 403,
        description = "Denied by the access policy (recorded; reasons lists the policy's reason codes), or not-a-patient-token on /me (not recorded)"
    )]
    Forbidden(ErrorBody),
    /// The access event could not be recorded (no data returned), or no ledger here.
    #[response(
        status = 503,
        description = "audit-unavailable or ledger-unavailable: nothing returned"
    )]
    Unavailable(ErrorBody),
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The paths `router` registers, read from the source of every module that adds
    /// routes: a route added without a `#[utoipa::path]` fails this test.
    fn routed_paths() -> BTreeSet<String> {
        let source = [include_str!("app.rs"), include_str!("record_routes.rs")].concat();
        let mut paths = BTreeSet::new();
        for (at, _) in source.match_indices(".route(") {
            let rest = source[at + ".route(".len()..].trim_start();
            let path = rest
                .strip_prefix('"')
                .and_then(|r| r.split('"').next())
                .expect("a route path is a string literal");
            paths.insert(path.to_owned());
        }
        paths
    }

    #[test]
    fn every_route_in_the_router_is_in_the_document_and_nothing_else_is() {
        let routed = routed_paths();
        assert!(routed.len() >= 9, "{routed:?}");
        let documented: BTreeSet<String> = ApiDoc::openapi().paths.paths.into_keys().collect();
        assert_eq!(routed, documented);
    }

    #[test]
    fn data_endpoints_document_the_304_and_every_error_code_they_can_give() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for path in [
            "/patients/{nhs_number}/timeline",
            "/patients/{nhs_number}/summary",
            "/patients/{nhs_number}/maternity",
            "/patients/{nhs_number}/medications",
            "/patients/{nhs_number}/discharge",
            "/patients/{nhs_number}/fhir/$everything",
            "/me/record",
            "/me/choices",
            "/me/access-log",
        ] {
            let responses = &doc["paths"][path]["get"]["responses"];
            for status in ["200", "304", "400", "401", "403", "503"] {
                assert!(responses.get(status).is_some(), "{path} {status}");
            }
        }
    }

    #[test]
    fn endpoints_that_take_a_body_document_413_and_never_304() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for (path, method, success) in [
            ("/patients/{nhs_number}/break-glass", "post", "201"),
            ("/me/choices", "put", "202"),
        ] {
            let responses = &doc["paths"][path][method]["responses"];
            for status in [success, "400", "401", "403", "413", "503"] {
                assert!(responses.get(status).is_some(), "{path} {status}");
            }
            assert!(responses.get("304").is_none(), "{path}: {responses}");
        }
    }
}
