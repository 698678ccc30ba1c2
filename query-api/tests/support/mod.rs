//! The stack every API test runs: a real broker, projector, RocksDB, ledger service and
//! the API on a free port. Each test binary uses part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use spr_audit_ledger::checkpoint::CheckpointSigner;
use spr_audit_ledger::service::{run_ledger_service, CheckpointPolicy, LedgerServiceConfig};
use spr_audit_ledger::verify_from_genesis;
use spr_producers::synthetic::SyntheticPatient;
use spr_producers::EventPublisher;
use spr_projector::{run_worker, ProjectionStore, WorkerConfig};
use spr_query_api::audit_routes::LedgerView;
use spr_query_api::auth::{mint_token, Claims, DevKeys, TokenVerifier, AUDIENCE};
use spr_query_api::metrics::ApiMetrics;
use spr_query_api::{router, AppState};
use spr_schemas::{AccessEvent, ClinicalEvent};
use spr_testkit::{eventually, TestBroker};
use tokio::sync::oneshot;

pub(crate) const ISSUER: &str = "spr-test";
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// Everything one test runs: broker, projector, ledger service and API.
pub(crate) struct Stack {
    pub(crate) broker: TestBroker,
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) keys: DevKeys,
    /// The key directory whose `jwks.json` the API reloads every 50 ms.
    pub(crate) keys_dir: PathBuf,
    pub(crate) api: SocketAddr,
    /// The metrics of the first API node.
    pub(crate) metrics: Arc<ApiMetrics>,
    pub(crate) ledger_path: PathBuf,
    pub(crate) stops: Vec<oneshot::Sender<()>>,
    pub(crate) http: reqwest::Client,
    /// What [`Stack::another_node`] needs to serve more API nodes.
    node: NodeSetup,
}

/// What every API node of a stack shares.
struct NodeSetup {
    bootstrap: String,
    dir: PathBuf,
    verifier: Arc<TokenVerifier>,
    audit_timeout: Duration,
    ledger_path: PathBuf,
    events: u64,
}

impl NodeSetup {
    /// Serves an API node on a free port, with a secondary of its own (`secondary-{name}`)
    /// and the break-glass follower, once its secondary holds every projected event.
    /// Returns its address and its metrics.
    async fn serve(&self, name: &str) -> (SocketAddr, Arc<ApiMetrics>) {
        let api_store = Arc::new(
            ProjectionStore::open_secondary(
                &self.dir.join("projection"),
                &self.dir.join(format!("secondary-{name}")),
                8 << 20,
            )
            .unwrap(),
        );
        let state = AppState {
            store: Arc::clone(&api_store),
            verifier: Arc::clone(&self.verifier),
            audit: EventPublisher::for_requests(&self.bootstrap, self.audit_timeout, 0).unwrap(),
            last_catch_up_millis: Arc::new(AtomicI64::new(0)),
            ledger: Some(Arc::new(LedgerView::new(self.ledger_path.clone()))),
            break_glass: Default::default(),
            metrics: Default::default(),
        };
        let metrics = Arc::clone(&state.metrics);
        state.spawn_catch_up(Duration::from_millis(20));
        state.spawn_break_glass_follower(&self.bootstrap).unwrap();
        state
            .ledger
            .as_ref()
            .unwrap()
            .spawn_refresh(Duration::from_millis(50));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
        // Reading the node's own secondary directly, so that waiting records no access.
        eventually(WAIT, "the node's secondary to catch up", || {
            (api_store.event_count().ok()? == self.events).then_some(())
        })
        .await
        .unwrap();
        (api, metrics)
    }
}

impl Stack {
    pub(crate) async fn start(patients: &[SyntheticPatient], audit_timeout: Duration) -> Stack {
        let broker = TestBroker::start_memory().await.unwrap();
        let bootstrap = broker.bootstrap();
        let dir = tempfile::tempdir().unwrap();
        let mut stops = Vec::new();

        let publisher = EventPublisher::new(&bootstrap, Duration::from_secs(30)).unwrap();
        let events: Vec<&ClinicalEvent> = patients.iter().flat_map(|p| p.events.iter()).collect();
        let published = publisher
            .publish_clinical_events(events, || {})
            .await
            .unwrap();

        let primary =
            Arc::new(ProjectionStore::open(&dir.path().join("projection"), false).unwrap());
        let config = WorkerConfig {
            bootstrap: bootstrap.clone(),
            group_id: "projector".into(),
            partitions: None,
            max_batch: 500,
            max_batch_wait: Duration::from_millis(10),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        tokio::spawn(run_worker(config, Arc::clone(&primary), async {
            let _ = stopped.await;
        }));
        let expected = published.delivered;
        eventually(WAIT, "every event projected", || {
            (primary.event_count().ok()? == expected).then_some(())
        })
        .await
        .unwrap();

        let ledger_path = dir.path().join("ledger.spr");
        let ledger_config = LedgerServiceConfig {
            bootstrap: bootstrap.clone(),
            group_id: "ledger".into(),
            ledger_path: ledger_path.clone(),
            max_batch: 100,
            max_batch_wait: Duration::from_millis(10),
            checkpoints: Some(CheckpointPolicy {
                signer: CheckpointSigner::from_private_key(&checkpoint_signer().private_key())
                    .unwrap(),
                every: Duration::ZERO,
            }),
            metrics: Default::default(),
            metrics_addr: None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        tokio::spawn(run_ledger_service(ledger_config, async {
            let _ = stopped.await;
        }));

        let keys = DevKeys::generate("test-key");
        let keys_dir = dir.path().join("keys");
        keys.write_to(&keys_dir).unwrap();
        let verifier =
            Arc::new(TokenVerifier::from_jwks_file(&keys_dir.join("jwks.json"), ISSUER).unwrap());
        verifier.spawn_reload(Duration::from_millis(50));
        let node = NodeSetup {
            bootstrap: bootstrap.clone(),
            dir: dir.path().to_owned(),
            verifier,
            audit_timeout,
            ledger_path: ledger_path.clone(),
            events: expected,
        };
        let (api, metrics) = node.serve("first").await;
        Stack {
            broker,
            _dir: dir,
            keys,
            keys_dir,
            api,
            metrics,
            ledger_path,
            stops,
            http: reqwest::Client::new(),
            node,
        }
    }

    /// Serves another API node over the same projection and broker (as behind a load
    /// balancer); `name` keeps its secondary apart.
    pub(crate) async fn another_node(&self, name: &str) -> SocketAddr {
        self.node.serve(name).await.0
    }

    pub(crate) fn claims(&self, role: &str, nhs_number: Option<&str>) -> Claims {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        Claims {
            sub: format!("{role}-0001"),
            name: format!("Test {role}"),
            org: "A81001".into(),
            role: role.into(),
            nhs_number: nhs_number.map(str::to_owned),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            exp: now + 600,
            nbf: now - 1,
            iat: now,
        }
    }

    pub(crate) fn token(&self, role: &str, nhs_number: Option<&str>) -> String {
        mint_token(
            &self.keys.private_pem,
            &self.keys.kid,
            &self.claims(role, nhs_number),
        )
        .unwrap()
    }

    pub(crate) async fn get_response(&self, path: &str, token: &str) -> reqwest::Response {
        self.response_from(self.api, path, token).await
    }

    async fn response_from(&self, node: SocketAddr, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!("http://{node}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.get_from(self.api, path, token).await
    }

    /// A GET to the API node at `node`.
    pub(crate) async fn get_from(&self, node: SocketAddr, path: &str, token: &str) -> (u16, Value) {
        let response = self.response_from(node, path, token).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (u16, Value) {
        self.send_to(self.api, method, path, token, body).await
    }

    /// A request with a JSON body to the API node at `node`.
    pub(crate) async fn send_to(
        &self,
        node: SocketAddr,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (u16, Value) {
        let response = self
            .http
            .request(method, format!("http://{node}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls `path` with `token` every 50 ms until `done(status, body)` holds (a change
    /// the API makes in the background has taken effect), and returns that answer; fails
    /// after [`WAIT`].
    pub(crate) async fn poll(
        &self,
        path: &str,
        token: &str,
        done: impl Fn(u16, &Value) -> bool,
    ) -> (u16, Value) {
        self.poll_from(self.api, path, token, done).await
    }

    /// [`Stack::poll`] against the API node at `node`.
    pub(crate) async fn poll_from(
        &self,
        node: SocketAddr,
        path: &str,
        token: &str,
        done: impl Fn(u16, &Value) -> bool,
    ) -> (u16, Value) {
        let started = std::time::Instant::now();
        loop {
            let (status, body) = self.get_from(node, path, token).await;
            if done(status, &body) {
                return (status, body);
            }
            assert!(
                started.elapsed() < WAIT,
                "{node}{path} still answers {status} {body} after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The token verifier every node of the stack uses.
    pub(crate) fn verifier(&self) -> &TokenVerifier {
        &self.node.verifier
    }

    pub(crate) async fn ledger_entries(&self, at_least: u64) -> u64 {
        let path = self.ledger_path.clone();
        eventually(WAIT, "the ledger to hold every access", || {
            let report = verify_from_genesis(&path).ok()?;
            assert!(report.first_failure.is_none(), "{:?}", report.first_failure);
            (report.entries >= at_least).then_some(report.entries)
        })
        .await
        .unwrap()
    }
}

/// The test organisation (every token's `org`) on each patient's care team, open-ended:
/// the legitimate relationship a clinician there needs to read the whole record.
pub(crate) fn cared_for(patients: Vec<SyntheticPatient>) -> Vec<SyntheticPatient> {
    patients
        .into_iter()
        .map(|p| p.with_care_team("A81001"))
        .collect()
}

/// The one checkpoint key of the test process.
pub(crate) fn checkpoint_signer() -> &'static CheckpointSigner {
    static SIGNER: std::sync::OnceLock<CheckpointSigner> = std::sync::OnceLock::new();
    SIGNER.get_or_init(|| CheckpointSigner::generate("spr.test/audit-ledger").unwrap())
}

/// The leaves of the ledger, decoded.
pub(crate) fn ledger_access_events(path: &Path) -> Vec<AccessEvent> {
    let (_, leaves) = spr_audit_ledger::load_leaves(path).unwrap();
    leaves
        .iter()
        .map(|leaf| AccessEvent::from_avro(leaf).unwrap())
        .collect()
}
