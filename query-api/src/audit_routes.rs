//! Auditor endpoints: the latest signed checkpoint and Merkle proofs, served from a
//! read-only view of the ledger file. They carry hashes only, never patient data.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use spr_audit_ledger::checkpoint::checkpoint_path;
use spr_audit_ledger::merkle::{ConsistencyProof, InclusionProof, MerkleTree};
use spr_audit_ledger::{LedgerFollower, Sha256Digest};
use spr_schemas::{AccessEvent, NhsNumber};

use crate::app::{audited_read, authenticate, AppState, Returned};
use crate::error::ApiError;
use crate::policy::{Request, Scope};

/// The ledger's verified Merkle tree and each patient's entries, extended as the file grows.
#[derive(Debug)]
pub struct LedgerView {
    path: PathBuf,
    follower: RwLock<LedgerFollower>,
    by_patient: RwLock<HashMap<NhsNumber, Vec<(u64, AccessEvent)>>>,
}

impl LedgerView {
    /// A view of the ledger at `path` (empty until the first refresh).
    pub fn new(path: PathBuf) -> Self {
        let follower = RwLock::new(LedgerFollower::new(&path));
        Self {
            path,
            follower,
            by_patient: RwLock::new(HashMap::new()),
        }
    }

    /// Reads and verifies the entries appended since the last refresh. Only verified
    /// entries are ever proven; an entry that does not verify stops the view there.
    pub fn refresh(&self) -> Result<(), spr_audit_ledger::LedgerError> {
        let mut follower = self.follower.write().expect("not poisoned");
        let first = follower.tree().len();
        let leaves = follower.read_new()?;
        let mut by_patient = self.by_patient.write().expect("not poisoned");
        for (index, leaf) in (first..).zip(leaves) {
            match AccessEvent::from_avro(&leaf) {
                Ok(event) => by_patient
                    .entry(event.nhs_number)
                    .or_default()
                    .push((index, event)),
                Err(e) => tracing::warn!(index, error = %e, "ledger entry is not an access event"),
            }
        }
        Ok(())
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

/// Query of `GET /me/access-log`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AccessLogQuery {
    /// Include an inclusion proof with every entry.
    proofs: Option<bool>,
}

/// One access to the patient's record, as the patient sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AccessLogEntry {
    ledger_index: u64,
    occurred_at: i64,
    who: String,
    role: String,
    organisation: String,
    action: String,
    decision: spr_schemas::Decision,
    categories: Vec<String>,
    break_glass_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proof: Option<InclusionProof>,
}

/// The patient's view of who accessed their record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AccessLog {
    #[schema(value_type = String)]
    nhs_number: NhsNumber,
    /// The ledger size and tree head the entries (and proofs) are read from.
    tree_size: u64,
    #[schema(value_type = String)]
    root: Sha256Digest,
    entries: Vec<AccessLogEntry>,
}

/// `GET /me/access-log[?proofs=true]`: every access to the caller's own record, newest
/// first, with break-glass marked; reading it is itself audited (and appears next time).
#[utoipa::path(get, path = "/me/access-log", tag = "patient data", params(AccessLogQuery),
    responses((status = 200, description = "Every access to the caller's own record, newest first", body = AccessLog),
        crate::openapi::NotModified, crate::openapi::ErrorResponses),
    security(("bearer" = [])))]
pub(crate) async fn my_access_log(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AccessLogQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&state, &headers)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("bad-query", e.body_text()))?;
    let patient = crate::record_routes::own_nhs_number(&claims)?;
    ledger_view(&state)?;
    let request = Request::direct_care(Scope::AccessLog);
    audited_read(&state, &claims, patient, request, |state, _| {
        let view = ledger_view(state)?;
        let with_proofs = q.proofs.unwrap_or(false);
        // One pass under the locks: the entries shown and the ids recorded always agree.
        let (log, event_ids) = view.with_tree(|tree| {
            let tree_size = tree.len();
            let by_patient = view.by_patient.read().expect("not poisoned");
            let accesses: Vec<&(u64, AccessEvent)> = by_patient
                .get(&patient)
                .into_iter()
                .flatten()
                .rev()
                .collect();
            let entries = accesses
                .iter()
                .map(|(index, e)| AccessLogEntry {
                    ledger_index: *index,
                    occurred_at: e.occurred_at,
                    who: e.subject.name.clone(),
                    role: e.subject.role.clone(),
                    organisation: e.subject.ods_code.clone(),
                    action: e.action.clone(),
                    decision: e.decision,
                    categories: e.categories.clone(),
                    break_glass_reason: e.break_glass_reason.clone(),
                    proof: with_proofs.then(|| {
                        tree.prove_inclusion(*index, Some(tree_size))
                            .expect("indexed entries are in the tree")
                    }),
                })
                .collect();
            let log = AccessLog {
                nhs_number: patient,
                tree_size,
                root: tree.root(tree_size).expect("whole tree"),
                entries,
            };
            (log, accesses.iter().map(|(_, e)| e.event_id).collect())
        });
        let returned = Returned {
            event_ids,
            categories: ["access-log".to_owned()].into(),
        };
        Ok((log, returned))
    })
    .await
}

fn ledger_view(state: &AppState) -> Result<&LedgerView, ApiError> {
    state.ledger.as_deref().ok_or(ApiError::LedgerUnavailable)
}

/// `GET /audit/checkpoint`: the latest signed checkpoint, as its signed-note text.
#[utoipa::path(get, path = "/audit/checkpoint", tag = "audit", responses(
    (status = 200, description = "The latest signed checkpoint (C2SP signed note)", body = String, content_type = "text/plain"),
    crate::openapi::NotModified, crate::openapi::ErrorResponses), security(("bearer" = [])))]
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
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct InclusionQuery {
    /// The entry's index.
    index: u64,
    /// The tree size (default: the whole ledger).
    size: Option<u64>,
}

/// `GET /audit/proof/inclusion?index=I[&size=N]`: entry I's inclusion proof in the tree of N entries.
#[utoipa::path(get, path = "/audit/proof/inclusion", tag = "audit", params(InclusionQuery), responses(
    (status = 200, description = "RFC 6962 inclusion proof", body = InclusionProof),
    crate::openapi::NotModified, crate::openapi::ErrorResponses), security(("bearer" = [])))]
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
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConsistencyQuery {
    /// The older tree size.
    first: u64,
    /// The newer tree size (default: the whole ledger).
    second: Option<u64>,
}

/// `GET /audit/proof/consistency?first=M[&second=N]`: proof that the tree of M entries is a prefix of the tree of N.
#[utoipa::path(get, path = "/audit/proof/consistency", tag = "audit", params(ConsistencyQuery), responses(
    (status = 200, description = "RFC 6962 consistency proof", body = ConsistencyProof),
    crate::openapi::NotModified, crate::openapi::ErrorResponses), security(("bearer" = [])))]
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
