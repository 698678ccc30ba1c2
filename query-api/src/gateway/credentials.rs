//! Publisher credentials: JWTs for the audience `spr-ingest`, signed by a key of the
//! same JWKS as clinician tokens, naming the publishing system and its organisation.

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use spr_producers::fhir::ImportSettings;
use spr_schemas::CareSetting;

use crate::auth::{bearer_token, AuthError, TokenVerifier};
use crate::gateway::permissions::Permission;

/// The audience every publisher token must name (clinician and patient tokens name
/// [`crate::auth::AUDIENCE`] and are refused by the gateway).
pub const INGEST_AUDIENCE: &str = "spr-ingest";

/// The claims of a publishing system's token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublisherClaims {
    /// The publishing system's name: every event's `source.system` and part of every
    /// event id, so it must stay the same across the system's lifetime.
    pub sub: String,
    /// ODS code of the organisation running it: `source.ods_code` when a resource
    /// names no organisation with one.
    pub org: String,
    /// Care setting when neither a `meta.tag` nor the encounter class gives one.
    #[serde(default)]
    pub care_setting: CareSetting,
    /// What the system may assert beyond its own organisation's care
    /// ([`crate::gateway::permissions`]); none when absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<Permission>,
    /// Issuer.
    pub iss: String,
    /// Audience ([`INGEST_AUDIENCE`]).
    pub aud: String,
    /// Expiry (seconds since epoch).
    pub exp: u64,
    /// Not before (seconds since epoch).
    pub nbf: u64,
    /// Issued at (seconds since epoch).
    pub iat: u64,
}

impl PublisherClaims {
    /// The import provenance these credentials give the system's documents.
    pub fn import_settings(&self) -> ImportSettings {
        ImportSettings {
            source_system: self.sub.clone(),
            ods_code: self.org.clone(),
            care_setting: self.care_setting,
        }
    }
}

/// The publishing system behind a request's bearer token.
pub fn authenticate_publisher(
    verifier: &TokenVerifier,
    headers: &HeaderMap,
) -> Result<PublisherClaims, AuthError> {
    let claims: PublisherClaims = verifier.verify_for(bearer_token(headers)?, INGEST_AUDIENCE)?;
    if claims.sub.trim().is_empty() || claims.org.trim().is_empty() {
        return Err(AuthError::Malformed(
            "a publisher token needs a non-empty sub (the system) and org (its ODS code)".into(),
        ));
    }
    Ok(claims)
}
