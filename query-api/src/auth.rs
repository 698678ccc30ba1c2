//! Identity: EdDSA (Ed25519) JWT bearer tokens verified against a JWKS file, and
//! minting of local development tokens.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

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
    /// The token is not a well-formed JWT, uses another algorithm, names no key, or
    /// lacks a required claim.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header names a key id that is not (or no longer) in the key set.
    #[error("token is signed with key {0:?}, which is not (or no longer) trusted")]
    UnknownKey(String),
    /// Expired.
    #[error("token has expired")]
    Expired,
    /// Not valid yet.
    #[error("token is not valid yet")]
    NotYetValid,
    /// Issued for another audience.
    #[error("token is for another audience")]
    WrongAudience,
    /// Issued by another issuer.
    #[error("token comes from another issuer")]
    WrongIssuer,
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
            Self::UnknownKey(_) => "token-unknown-key",
            Self::Expired => "token-expired",
            Self::NotYetValid => "token-not-yet-valid",
            Self::WrongAudience => "token-wrong-audience",
            Self::WrongIssuer => "token-wrong-issuer",
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

/// The keys of one reading of the JWKS file.
struct KeySet {
    /// The file's bytes when it was read, to notice a change.
    source: Vec<u8>,
    keys: Vec<(String, DecodingKey)>,
    /// Claims of tokens whose signature, audience and issuer these keys verified, by
    /// audience and token. A client sends the same token with every request until it
    /// expires, and an Ed25519 verification costs more than the rest of a small read;
    /// the validity period is checked again on every use. Replaced with the keys, so a
    /// retired key's tokens stop working at the next reload.
    verified: Arc<quick_cache::sync::Cache<(String, String), serde_json::Value>>,
}

/// How many verified tokens each key set remembers.
const VERIFIED_TOKENS: usize = 10_000;
/// Clock skew allowed on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: u64 = 30;

impl KeySet {
    fn parse(path: &Path, source: Vec<u8>) -> Result<Self, KeyError> {
        let invalid = |message: String| KeyError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let set: JwkSet =
            serde_json::from_slice(&source).map_err(|e| invalid(format!("not a JWKS: {e}")))?;
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
            source,
            keys,
            verified: Arc::new(quick_cache::sync::Cache::new(VERIFIED_TOKENS)),
        })
    }
}

/// Verifies tokens against the keys of a JWKS file. The file may hold several keys
/// (by `kid`) during a rotation, and is read again by [`TokenVerifier::reload`]: a key
/// added to the file is trusted, and a key removed from it is not, without a restart.
pub struct TokenVerifier {
    path: PathBuf,
    issuer: String,
    keys: RwLock<KeySet>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("path", &self.path)
            .field("kids", &self.kids())
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl TokenVerifier {
    /// Loads every Ed25519 key with a `kid` from a JWKS file.
    pub fn from_jwks_file(path: &Path, issuer: &str) -> Result<Self, KeyError> {
        let keys = KeySet::parse(path, read(path)?)?;
        Ok(Self {
            path: path.to_owned(),
            issuer: issuer.to_owned(),
            keys: RwLock::new(keys),
        })
    }

    /// The key ids trusted now.
    pub fn kids(&self) -> Vec<String> {
        let keys = self.keys.read().expect("not poisoned");
        keys.keys.iter().map(|(kid, _)| kid.clone()).collect()
    }

    /// Reads the JWKS file again; if it changed, its keys replace the trusted ones.
    /// Returns whether they changed. A file that cannot be read or parsed leaves the
    /// trusted keys as they were.
    pub fn reload(&self) -> Result<bool, KeyError> {
        let source = read(&self.path)?;
        if self.keys.read().expect("not poisoned").source == source {
            return Ok(false);
        }
        let keys = KeySet::parse(&self.path, source)?;
        *self.keys.write().expect("not poisoned") = keys;
        Ok(true)
    }

    /// Reloads the JWKS file every `interval`, logging changes and failures.
    pub fn spawn_reload(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let verifier = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let v = Arc::clone(&verifier);
                match tokio::task::spawn_blocking(move || v.reload()).await {
                    Ok(Ok(true)) => {
                        tracing::info!(kids = ?verifier.kids(), "token keys reloaded")
                    }
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "token keys not reloaded; keeping the previous keys")
                    }
                    Err(e) => tracing::warn!(error = %e, "token key reload task failed"),
                }
            }
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
        // The cache of the key set current now. The key is looked up later, so it comes
        // from this set or a newer one: a token verified across a reload is remembered
        // only by the replaced set, which is dropped, never by a newer set that may no
        // longer hold its key.
        let verified = Arc::clone(&self.keys.read().expect("not poisoned").verified);
        let cache_key = (audience.to_owned(), token.to_owned());
        let claims = match verified.get(&cache_key) {
            Some(claims) => {
                check_validity_period(&claims)?;
                claims
            }
            None => {
                let claims = self.verify_signature(token, audience)?;
                check_claims_text(&claims)?;
                verified.insert(cache_key, claims.clone());
                claims
            }
        };
        serde_json::from_value(claims)
            .map_err(|e| AuthError::Malformed(format!("the token's claims: {e}")))
    }

    /// Verifies the signature, audience, issuer and validity period; returns the claims.
    fn verify_signature(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<serde_json::Value, AuthError> {
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
        let key = {
            let keys = self.keys.read().expect("not poisoned");
            keys.keys
                .iter()
                .find(|(k, _)| *k == kid)
                .map(|(_, key)| key.clone())
                .ok_or(AuthError::UnknownKey(kid))?
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        // Validated as plain JSON first: jsonwebtoken decodes the claims type before it
        // checks the audience, and a token for another audience (with other claims) must
        // be refused as such, not as malformed.
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidAudience => AuthError::WrongAudience,
                ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                _ => AuthError::Malformed(e.to_string()),
            })
    }
}

/// Refuses claims whose text holds a control character (a NUL in an ODS code, say):
/// names, organisations and roles go into access events and published events, which
/// would refuse them later, after the access was decided.
fn check_claims_text(claims: &serde_json::Value) -> Result<(), AuthError> {
    let Some(claims) = claims.as_object() else {
        return Ok(()); // decoding the claims type refuses it
    };
    for (name, value) in claims {
        if value
            .as_str()
            .is_some_and(|t| t.chars().any(char::is_control))
        {
            return Err(AuthError::Malformed(format!(
                "the token's {name} claim holds a control character"
            )));
        }
    }
    Ok(())
}

/// The `exp` and `nbf` checks of a token verified earlier, against the clock now.
fn check_validity_period(claims: &serde_json::Value) -> Result<(), AuthError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let seconds = |name: &str| claims.get(name).and_then(serde_json::Value::as_u64);
    if seconds("exp").is_none_or(|exp| exp.saturating_add(LEEWAY_SECONDS) < now) {
        return Err(AuthError::Expired);
    }
    if seconds("nbf").is_some_and(|nbf| nbf > now + LEEWAY_SECONDS) {
        return Err(AuthError::NotYetValid);
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn invalid_at(path: &Path) -> impl Fn(String) -> KeyError + '_ {
    move |message| KeyError::Invalid {
        path: path.display().to_string(),
        message,
    }
}

/// The JWKS file in a key directory.
pub const JWKS_FILE: &str = "jwks.json";

/// A development signing key and the JWK that publishes its public half.
#[derive(Debug)]
pub struct DevKeys {
    /// PKCS#8 PEM of the private key.
    pub private_pem: String,
    /// The public key as a JWK (with `kid`, `alg` and `use`).
    pub public_jwk: serde_json::Value,
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
        let public_jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"});
        Self {
            private_pem,
            public_jwk,
            kid: kid.to_owned(),
        }
    }

    /// Adds this key to `dir`: its private half as `{kid}.pem` (mode 0600) and its
    /// public half to `jwks.json` (created if missing, other keys kept), so that it is
    /// the newest key there and the one [`signing_key`] picks by default.
    pub fn write_to(&self, dir: &Path) -> Result<(), KeyError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| KeyError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let jwks_path = dir.join(JWKS_FILE);
        let mut jwks = match std::fs::read(&jwks_path) {
            Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
                .map_err(|e| invalid_at(&jwks_path)(format!("not a JWKS: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({"keys": []}),
            Err(e) => return Err(io(&jwks_path)(e)),
        };
        let keys = jwks["keys"]
            .as_array_mut()
            .ok_or_else(|| invalid_at(&jwks_path)("no \"keys\" array".into()))?;
        if keys.iter().any(|k| k["kid"] == self.kid.as_str()) {
            return Err(invalid_at(&jwks_path)(format!(
                "key {} is already there",
                self.kid
            )));
        }
        keys.push(self.public_jwk.clone());
        let pem = dir.join(format!("{}.pem", self.kid));
        write_private(&pem, &self.private_pem).map_err(io(&pem))?;
        let text = serde_json::to_string_pretty(&jwks).expect("json");
        std::fs::write(&jwks_path, text).map_err(io(&jwks_path))
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(text.as_bytes())
}

/// Removes key `kid` from the directory's `jwks.json`: tokens it signed are refused
/// (`token-unknown-key`) once the API reloads the file. Its private key file stays.
pub fn retire_key(dir: &Path, kid: &str) -> Result<(), KeyError> {
    let path = dir.join(JWKS_FILE);
    let mut jwks: serde_json::Value = serde_json::from_slice(&read(&path)?)
        .map_err(|e| invalid_at(&path)(format!("not a JWKS: {e}")))?;
    let keys = jwks["keys"]
        .as_array_mut()
        .ok_or_else(|| invalid_at(&path)("no \"keys\" array".into()))?;
    let before = keys.len();
    keys.retain(|k| k["kid"] != kid);
    if keys.len() == before {
        return Err(invalid_at(&path)(format!("no key {kid}")));
    }
    if keys.is_empty() {
        return Err(invalid_at(&path)(format!(
            "{kid} is the last key; add another (spr-api keygen) before retiring it"
        )));
    }
    let text = serde_json::to_string_pretty(&jwks).expect("json");
    std::fs::write(&path, text).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The signing key for `kid` in `dir` (by default the newest key in `jwks.json`), as
/// `(kid, PKCS#8 PEM)`. Directories written before keys were kept per kid hold a
/// single `signing-key.pem`, which is used when `{kid}.pem` is absent.
pub fn signing_key(dir: &Path, kid: Option<&str>) -> Result<(String, String), KeyError> {
    let jwks_path = dir.join(JWKS_FILE);
    let kid = match kid {
        Some(kid) => kid.to_owned(),
        None => {
            let set: JwkSet = serde_json::from_slice(&read(&jwks_path)?)
                .map_err(|e| invalid_at(&jwks_path)(e.to_string()))?;
            set.keys
                .last()
                .and_then(|k| k.common.key_id.clone())
                .ok_or_else(|| invalid_at(&jwks_path)("no key with a kid".into()))?
        }
    };
    let per_kid = dir.join(format!("{kid}.pem"));
    let legacy = dir.join("signing-key.pem");
    let path = if per_kid.exists() {
        per_kid
    } else if legacy.exists() {
        legacy
    } else {
        return Err(invalid_at(dir)(format!(
            "no private key for key id {kid:?} (no {kid}.pem): name a key id listed in {JWKS_FILE}, or run spr-api keygen"
        )));
    };
    let pem = std::fs::read_to_string(&path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok((kid, pem))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_token_is_still_refused_once_expired_or_before_it_is_valid() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = |exp: u64, nbf: u64| serde_json::json!({ "exp": exp, "nbf": nbf });
        assert!(check_validity_period(&claims(now + 60, now - 60)).is_ok());
        assert!(
            check_validity_period(&claims(now - 10, now - 60)).is_ok(),
            "within the leeway"
        );
        assert!(matches!(
            check_validity_period(&claims(now - LEEWAY_SECONDS - 2, now - 600)),
            Err(AuthError::Expired)
        ));
        assert!(matches!(
            check_validity_period(&claims(now + 600, now + LEEWAY_SECONDS + 2)),
            Err(AuthError::NotYetValid)
        ));
        assert!(matches!(
            check_validity_period(&serde_json::json!({})),
            Err(AuthError::Expired)
        ));
        assert!(
            check_validity_period(&claims(u64::MAX, now - 60)).is_ok(),
            "the largest expiry does not overflow"
        );
    }
}
