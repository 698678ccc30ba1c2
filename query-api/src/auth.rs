//! Identity: EdDSA (Ed25519) JWT bearer tokens verified against a JWKS file, and
//! minting of local development tokens.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The audience every SPR token must name.
pub const AUDIENCE: &str = "spr-timeline";

/// The claims an SPR token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject identifier (for staff, their smartcard/user id).
    pub sub: String,
    /// Display name.
    pub name: String,
    /// ODS code of their organisation.
    pub org: String,
    /// Job role (see the access model).
    pub role: String,
    /// For patients: their own NHS number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nhs_number: Option<String>,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry (seconds since epoch).
    pub exp: u64,
    /// Not before (seconds since epoch).
    pub nbf: u64,
    /// Issued at (seconds since epoch).
    pub iat: u64,
}

/// Why a token was refused; the code goes back to the caller in a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token: send Authorization: Bearer <token>")]
    Missing,
    /// The token is not a well-formed JWT, or its header names no known key.
    #[error("malformed token or unknown key id: {0}")]
    Malformed(String),
    /// Expired.
    #[error("token has expired")]
    Expired,
    /// Not valid yet.
    #[error("token is not valid yet")]
    NotYetValid,
    /// Wrong audience or issuer.
    #[error("token is for another audience or issuer")]
    WrongAudience,
    /// The signature does not verify.
    #[error("token signature does not verify")]
    BadSignature,
}

impl AuthError {
    /// A short machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "token-missing",
            Self::Malformed(_) => "token-malformed",
            Self::Expired => "token-expired",
            Self::NotYetValid => "token-not-yet-valid",
            Self::WrongAudience => "token-wrong-audience",
            Self::BadSignature => "token-bad-signature",
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is
/// case-insensitive, RFC 9110 section 11.1).
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Result<&str, AuthError> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .map(|(_, token)| token.trim())
        .ok_or(AuthError::Missing)
}

/// Why keys could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// File I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file's content is not usable.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Verifies tokens against the keys of a JWKS (several keys may be live during rotation).
pub struct TokenVerifier {
    keys: Vec<(String, DecodingKey)>,
    issuer: String,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self.keys.iter().map(|(k, _)| k).collect();
        f.debug_struct("TokenVerifier")
            .field("kids", &kids)
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl TokenVerifier {
    /// Loads every Ed25519 key with a `kid` from a JWKS file.
    pub fn from_jwks_file(path: &Path, issuer: &str) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let invalid = |message: String| KeyError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let set: JwkSet =
            serde_json::from_str(&text).map_err(|e| invalid(format!("not a JWKS: {e}")))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let kid = jwk
                .common
                .key_id
                .clone()
                .ok_or_else(|| invalid("a key has no kid".into()))?;
            let key = DecodingKey::from_jwk(jwk).map_err(|e| invalid(format!("key {kid}: {e}")))?;
            keys.push((kid, key));
        }
        if keys.is_empty() {
            return Err(invalid("the JWKS holds no keys".into()));
        }
        Ok(Self {
            keys,
            issuer: issuer.to_owned(),
        })
    }

    /// Verifies a token's signature, audience, issuer and validity period.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_for(token, AUDIENCE)
    }

    /// Verifies a token issued for `audience`, decoding its claims as `C` (the
    /// ingestion gateway's publisher tokens have their own audience and claims).
    pub fn verify_for<C: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<C, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Malformed(format!(
                "algorithm {:?} is not accepted; use EdDSA",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Malformed("token header has no kid".into()))?;
        let key = self
            .keys
            .iter()
            .find(|(k, _)| *k == kid)
            .map(|(_, key)| key)
            .ok_or_else(|| AuthError::Malformed(format!("no key {kid} in the JWKS")))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        // Validated as plain JSON first: jsonwebtoken decodes the claims type before it
        // checks the audience, and a token for another audience (with other claims) must
        // be refused as such, not as malformed.
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer => AuthError::WrongAudience,
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                _ => AuthError::Malformed(e.to_string()),
            })?;
        serde_json::from_value(claims)
            .map_err(|e| AuthError::Malformed(format!("the token's claims: {e}")))
    }
}

/// A development signing key and the JWKS that publishes its public half.
#[derive(Debug)]
pub struct DevKeys {
    /// PKCS#8 PEM of the private key.
    pub private_pem: String,
    /// JWKS JSON with the public key.
    pub jwks_json: String,
    /// The key id.
    pub kid: String,
}

impl DevKeys {
    /// Generates a fresh Ed25519 key pair with key id `kid`.
    pub fn generate(kid: &str) -> Self {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        let private_pem = signing
            .to_pkcs8_pem(LineEnding::LF)
            .expect("an Ed25519 key encodes as PKCS#8")
            .to_string();
        let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
        let jwks = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}]});
        Self {
            private_pem,
            jwks_json: serde_json::to_string_pretty(&jwks).expect("json"),
            kid: kid.to_owned(),
        }
    }

    /// Writes `signing-key.pem` and `jwks.json` into `dir`.
    pub fn write_to(&self, dir: &Path) -> Result<(), KeyError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| KeyError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let (pem, jwks) = (dir.join("signing-key.pem"), dir.join("jwks.json"));
        std::fs::write(&pem, &self.private_pem).map_err(io(&pem))?;
        std::fs::write(&jwks, &self.jwks_json).map_err(io(&jwks))?;
        Ok(())
    }
}

/// Signs `claims` with a PKCS#8 PEM Ed25519 key, naming `kid` in the header.
pub fn mint_token(
    private_pem: &str,
    kid: &str,
    claims: &impl Serialize,
) -> Result<String, KeyError> {
    let invalid = |message: String| KeyError::Invalid {
        path: "signing key".into(),
        message,
    };
    let key =
        EncodingKey::from_ed_pem(private_pem.as_bytes()).map_err(|e| invalid(e.to_string()))?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).map_err(|e| invalid(e.to_string()))
}

/// Reads the key id from a JWKS file's first key (the one `spr-api keygen` wrote).
pub fn first_kid(jwks_path: &Path) -> Result<String, KeyError> {
    let invalid = |message: String| KeyError::Invalid {
        path: jwks_path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(jwks_path).map_err(|source| KeyError::Io {
        path: jwks_path.display().to_string(),
        source,
    })?;
    let set: JwkSet = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    set.keys
        .first()
        .and_then(|k| k.common.key_id.clone())
        .ok_or_else(|| invalid("no key with a kid".into()))
}
