//! Auditor endpoints: the latest signed checkpoint and Merkle proofs, served from a
//! read-only view of the ledger file. They carry hashes only, never patient data.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use spr_audit_ledger::checkpoint::checkpoint_path;
use spr_audit_ledger::merkle::MerkleTree;
use spr_audit_ledger::LedgerFollower;

use crate::app::{authenticate, AppState};
use crate::error::ApiError;

/// The ledger's verified Merkle tree, extended as the file grows.
#[derive(Debug)]
pub struct LedgerView {
    path: PathBuf,
    follower: RwLock<LedgerFollower>,
}

impl LedgerView {
    /// A view of the ledger at `path` (empty until the first refresh).
    pub fn new(path: PathBuf) -> Self {
        let follower = RwLock::new(LedgerFollower::new(&path));
        Self { path, follower }
    }

    /// Reads and verifies the entries appended since the last refresh. Only verified
    /// entries are ever proven; an entry that does not verify stops the view there.
    pub fn refresh(&self) -> Result<(), spr_audit_ledger::LedgerError> {
        self.follower
            .write()
            .expect("not poisoned")
            .read_new()
            .map(|_| ())
    }

    /// Refreshes now and then every `interval`, off the async threads.
    pub fn spawn_refresh(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let view = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let v = Arc::clone(&view);
                match tokio::task::spawn_blocking(move || v.refresh()).await {
                    Ok(Err(e)) => tracing::warn!(error = %e, "ledger view not refreshed"),
                    Err(e) => tracing::warn!(error = %e, "ledger refresh task failed"),
                    Ok(Ok(())) => {}
                }
                tokio::time::sleep(interval).await;
            }
        })
    }

    /// Runs `read` over the current tree (under a short read lock, never across an await).
    fn with_tree<T>(&self, read: impl FnOnce(&MerkleTree) -> T) -> T {
        read(self.follower.read().expect("not poisoned").tree())
    }
}

fn ledger_view(state: &AppState) -> Result<&LedgerView, ApiError> {
    state.ledger.as_deref().ok_or(ApiError::LedgerUnavailable)
}

/// `GET /audit/checkpoint`: the latest signed checkpoint, as its signed-note text.
pub(crate) async fn checkpoint(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers)?;
    let path = checkpoint_path(&ledger_view(&state)?.path);
    let note = tokio::fs::read_to_string(&path)
        .await
        .map_err(|_| ApiError::LedgerUnavailable)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

/// Query of `GET /audit/proof/inclusion`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InclusionQuery {
    index: u64,
    size: Option<u64>,
}

/// `GET /audit/proof/inclusion?index=I[&size=N]`: entry I's inclusion proof in the tree of N entries.
pub(crate) async fn inclusion(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<InclusionQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("bad-query", e.body_text()))?;
    let proof = ledger_view(&state)?
        .with_tree(|tree| tree.prove_inclusion(q.index, q.size))
        .map_err(|e| ApiError::bad_request("bad-proof-request", e.to_string()))?;
    Ok(Json(proof).into_response())
}

/// Query of `GET /audit/proof/consistency`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsistencyQuery {
    first: u64,
    second: Option<u64>,
}

/// `GET /audit/proof/consistency?first=M[&second=N]`: proof that the tree of M entries is a prefix of the tree of N.
pub(crate) async fn consistency(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("bad-query", e.body_text()))?;
    let proof = ledger_view(&state)?
        .with_tree(|tree| tree.prove_consistency(q.first, q.second))
        .map_err(|e| ApiError::bad_request("bad-proof-request", e.to_string()))?;
    Ok(Json(proof).into_response())
}
