//! The query API: clinicians and patients read projected timelines over HTTP, and
//! every access is recorded on the access-events topic before any data is returned.
//!
//! [`app::router`] builds the axum application from an [`app::AppState`]; the
//! `spr-api` binary wires it to a RocksDB secondary of the projection, a JWKS file
//! and the broker.
//!
//! [`gateway`] is the HTTP ingestion gateway (`spr-gateway`), a separate service that
//! shares only token verification with the API.

pub mod app;
pub mod audit_routes;
pub mod auth;
pub mod break_glass;
pub mod error;
pub mod filter;
pub mod gateway;
pub mod layers;
pub mod metrics;
pub mod openapi;
pub mod policy;
mod record_routes;
mod views;

pub use app::{router, AppState};
