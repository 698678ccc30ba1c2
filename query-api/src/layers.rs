//! HTTP hardening around the routes, kept apart from them: a request body limit, one
//! JSON error shape for whatever the HTTP layer refuses, gzip, and strong `ETag`s with
//! conditional GET for clients on poor connections.
//!
//! A `304 Not Modified` is produced only after the handler has run, so a conditional
//! GET of patient data is decided and recorded in the audit log exactly like any other
//! read before the 304 goes out.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use sha2::{Digest, Sha256};
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;

use crate::error::ApiError;

/// Largest request body accepted, in bytes (larger ones get `413 body-too-large`).
pub const MAX_REQUEST_BODY: usize = 64 * 1024;
/// Largest response body the conditional-GET layer hashes (larger ones pass unchanged).
const MAX_HASHED_RESPONSE: usize = 64 * 1024 * 1024;
/// Largest error body read back when it is rewritten into the JSON error shape.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// Wraps `routes` in the hardening layers (innermost first): body limit, JSON errors,
/// gzip, conditional GET.
pub fn harden(routes: Router) -> Router {
    routes
        .layer(RequestBodyLimitLayer::new(MAX_REQUEST_BODY))
        .layer(middleware::from_fn(json_errors))
        .layer(CompressionLayer::new().gzip(true))
        .layer(middleware::from_fn(conditional_get))
}

/// Rewrites error responses that did not come from a handler (405 from the router,
/// 413 from the body limit, a plain-text extractor rejection) into the JSON shape.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = to_bytes(body, MAX_ERROR_BODY)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not-found", "no such endpoint".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            "this endpoint does not accept that method".to_owned(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body-too-large",
            format!("request bodies are limited to {MAX_REQUEST_BODY} bytes"),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", text),
        StatusCode::UNPROCESSABLE_ENTITY => ("bad-body", text),
        s if s.is_client_error() => ("bad-request", text),
        _ => return ApiError::Internal(format!("{status}: {text}")).into_response(),
    };
    let mut rewritten = ApiError::Rejected {
        status,
        code,
        message,
    }
    .into_response();
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        rewritten.headers_mut().insert(header::ALLOW, allow.clone());
    }
    rewritten
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Adds a strong `ETag` (a SHA-256 of the body as sent, so each content encoding has
/// its own) and `Cache-Control: private, no-cache` to every successful GET, and answers
/// `304` with no body when `If-None-Match` names that tag. The handler has already run,
/// and recorded its access event, by then.
async fn conditional_get(request: Request, next: Next) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let if_none_match = request.headers().get(header::IF_NONE_MATCH).cloned();
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match to_bytes(body, MAX_HASHED_RESPONSE).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return ApiError::Internal(format!("reading a response body: {e}")).into_response()
        }
    };
    let tag = entity_tag(&bytes);
    parts.headers.insert(header::ETAG, tag.clone());
    parts
        .headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("private, no-cache"));
    if if_none_match.is_some_and(|v| matches_tag(&v, &tag)) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// `"` + the first 16 bytes of the body's SHA-256, in hex, + `"`.
fn entity_tag(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest[..16])))
        .expect("hex is a valid header value")
}

/// `If-None-Match` uses the weak comparison (RFC 9110 section 13.1.2): `*`, or any
/// listed tag equal to ours once a `W/` prefix is dropped.
fn matches_tag(if_none_match: &HeaderValue, tag: &HeaderValue) -> bool {
    let (Ok(list), Ok(tag)) = (if_none_match.to_str(), tag.to_str()) else {
        return false;
    };
    list.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == tag
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_uses_the_weak_comparison_over_a_list() {
        let tag = entity_tag(b"{}");
        let text = tag.to_str().unwrap().to_owned();
        for (header, expected) in [
            (text.clone(), true),
            (format!("W/{text}"), true),
            (format!("\"other\", {text}"), true),
            ("*".to_owned(), true),
            ("\"other\"".to_owned(), false),
            (text.trim_matches('"').to_owned(), false),
            (String::new(), false),
        ] {
            assert_eq!(
                matches_tag(&HeaderValue::from_str(&header).unwrap(), &tag),
                expected,
                "{header:?}"
            );
        }
    }
}
