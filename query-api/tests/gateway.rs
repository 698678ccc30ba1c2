//! The HTTP ingestion gateway end to end: a real broker, publisher tokens, `POST /fhir`,
//! and the events read back from the log.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use spr_producers::fhir::everything_bundle;
use spr_producers::metrics_http::spawn_metrics_server;
use spr_producers::EventPublisher;
use spr_query_api::auth::{mint_token, AuthError, Claims, DevKeys, TokenVerifier, AUDIENCE};
use spr_query_api::gateway::permissions::Permission;
use spr_query_api::gateway::{
    router, GatewayState, PublisherClaims, PublisherRateLimit, DEFAULT_MAX_BODY_BYTES,
    INGEST_AUDIENCE,
};
use spr_query_api::metrics::ApiMetrics;
use spr_schemas::{examples, now_millis, CareSetting, EventId, EventType, NhsNumber, Payload};
use spr_testkit::http::metric_value;
use spr_testkit::{read_patient_events, PatientEventRecord, TestBroker};

const ISSUER: &str = "spr-test";
const SYSTEM: &str = "test-epr";

/// A gateway serving on a free port, with the keys that sign its tokens and its
/// metrics on a port of their own.
struct Gateway {
    address: SocketAddr,
    metrics_address: SocketAddr,
    keys: DevKeys,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Gateway {
    /// A gateway with `spr-gateway serve`'s limits.
    async fn with_defaults(bootstrap: &str) -> Self {
        Self::start(
            bootstrap,
            DEFAULT_MAX_BODY_BYTES,
            Duration::from_secs(30),
            PublisherRateLimit::default(),
        )
        .await
    }

    async fn start(
        bootstrap: &str,
        max_body_bytes: usize,
        delivery_timeout: Duration,
        rate_limit: PublisherRateLimit,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = DevKeys::generate("gateway-test");
        keys.write_to(dir.path()).unwrap();
        let verifier =
            TokenVerifier::from_jwks_file(&dir.path().join("jwks.json"), ISSUER).unwrap();
        let metrics = Arc::new(ApiMetrics::for_gateway());
        let metrics_address = spawn_metrics_server(
            Some("127.0.0.1:0".parse().unwrap()),
            Arc::clone(&metrics).router(),
        )
        .await
        .unwrap()
        .expect("an address was given");
        let state = GatewayState {
            verifier: Arc::new(verifier),
            publisher: EventPublisher::new(bootstrap, delivery_timeout).unwrap(),
            max_body_bytes,
            metrics,
            rate_limit: Arc::new(rate_limit),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        Self {
            address,
            metrics_address,
            keys,
            http: reqwest::Client::new(),
            dir,
        }
    }

    /// A trusted system's token: it may assert every kind of event.
    fn publisher_token(&self) -> String {
        self.publisher_token_for(SYSTEM)
    }

    fn publisher_token_for(&self, system: &str) -> String {
        self.publisher_token_with(system, &[Permission::Relationships, Permission::Consent])
    }

    fn publisher_token_with(&self, system: &str, permissions: &[Permission]) -> String {
        let now = unix_seconds();
        let claims = PublisherClaims {
            sub: system.into(),
            org: "RX1".into(),
            care_setting: CareSetting::Acute,
            permissions: permissions.to_vec(),
            iss: ISSUER.into(),
            aud: INGEST_AUDIENCE.into(),
            exp: now + 600,
            nbf: now,
            iat: now,
        };
        mint_token(&self.keys.private_pem, &self.keys.kid, &claims).unwrap()
    }

    fn clinician_token(&self) -> String {
        let now = unix_seconds();
        let claims = Claims {
            sub: "dev-user-0001".into(),
            name: "Dr Dev Example".into(),
            org: "A81001".into(),
            role: "clinician".into(),
            nhs_number: None,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            exp: now + 600,
            nbf: now,
            iat: now,
        };
        mint_token(&self.keys.private_pem, &self.keys.kid, &claims).unwrap()
    }

    /// The value of `series` in the gateway's metrics (0 if absent).
    async fn metric(&self, series: &str) -> f64 {
        let url = format!("http://{}/metrics", self.metrics_address);
        let text = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metric_value(&text, series).unwrap_or(0.0)
    }

    /// POSTs `body` to /fhir and returns the status and the parsed body.
    async fn post(
        &self,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("http://{}/fhir", self.address))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        assert_eq!(
            response.headers()["content-type"],
            "application/fhir+json",
            "every answer is FHIR JSON"
        );
        (status, response.json().await.unwrap())
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn nhs_number() -> NhsNumber {
    NhsNumber::parse("9990000018").unwrap()
}

/// One resource of each event type as a FHIR Bundle, plus a resource the import does not map.
fn small_bundle() -> Value {
    let mut bundle = everything_bundle(&nhs_number(), &examples::one_of_each_type(nhs_number()));
    bundle["entry"]
        .as_array_mut()
        .unwrap()
        .push(json!({"resource": {"resourceType": "Basic", "id": "not-clinical"}}));
    bundle
}

/// Asserts `body` is an OperationOutcome whose first issue has `severity`, `code`, the SPR
/// reason `reason` and diagnostics; returns the diagnostics.
fn first_issue(body: &Value, severity: &str, code: &str, reason: &str) -> String {
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    let issue = &body["issue"][0];
    assert_eq!(issue["severity"], severity, "{body}");
    assert_eq!(issue["code"], code, "{body}");
    assert_eq!(issue["details"]["coding"][0]["code"], reason, "{body}");
    let diagnostics = issue["diagnostics"].as_str().unwrap().to_owned();
    assert!(!diagnostics.is_empty());
    diagnostics
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_is_accepted_once_on_the_log_and_posting_it_again_publishes_the_same_event_ids() {
    let broker = TestBroker::start_memory().await.unwrap();
    let gateway = Gateway::with_defaults(&broker.bootstrap()).await;
    let token = gateway.publisher_token();
    let bundle = small_bundle().to_string();

    let (status, body) = gateway
        .post(
            Some(&token),
            "application/fhir+json; charset=utf-8",
            bundle.clone(),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let summary = first_issue(&body, "information", "informational", "accepted");
    let published: usize = summary
        .strip_prefix("accepted: ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count of published events in {summary:?}"));
    assert!(published >= 20, "{summary}");
    let issues = body["issue"].as_array().unwrap();
    assert!(
        issues.iter().any(|i| i["severity"] == "warning"
            && i["details"]["coding"][0]["code"] == "unmapped"
            && i["expression"][0] == "Basic"),
        "the unmapped resource is a warning: {body}"
    );
    assert!(issues
        .iter()
        .any(|i| i["details"]["coding"][0]["code"] == "mapped"
            && i["expression"][0] == "Observation"));

    let (status, body) = gateway.post(Some(&token), "application/json", bundle).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        first_issue(&body, "information", "informational", "accepted"),
        summary
    );

    let records = read_patient_events(&broker.bootstrap(), 2 * published).await;
    let mut times_published: HashMap<EventId, usize> = HashMap::new();
    for PatientEventRecord { event, .. } in &records {
        *times_published.entry(event.event_id).or_default() += 1;
    }
    assert_eq!(times_published.len(), published);
    assert!(
        times_published.values().all(|&n| n == 2),
        "the second POST gave the same event ids, each once"
    );
    for PatientEventRecord { event, .. } in &records {
        assert_eq!(
            event.source.system, SYSTEM,
            "source.system is the token's sub"
        );
        assert_eq!(event.nhs_number, nhs_number());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_get_an_operation_outcome_with_the_reason() {
    let broker = TestBroker::start_memory().await.unwrap();
    let limit = 4_096;
    let gateway = Gateway::start(
        &broker.bootstrap(),
        limit,
        Duration::from_secs(30),
        PublisherRateLimit::default(),
    )
    .await;
    let token = gateway.publisher_token();
    let fhir = "application/fhir+json";
    let patient = json!({"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}]});

    let (status, body) = gateway.post(None, fhir, patient.to_string()).await;
    assert_eq!(status, 401);
    first_issue(&body, "error", "login", "token-missing");

    let (status, body) = gateway
        .post(Some(&gateway.clinician_token()), fhir, patient.to_string())
        .await;
    assert_eq!(status, 401);
    let diagnostics = first_issue(&body, "error", "login", "token-wrong-audience");
    assert!(diagnostics.contains(INGEST_AUDIENCE), "{diagnostics}");

    let api_verifier =
        TokenVerifier::from_jwks_file(&gateway.dir.path().join("jwks.json"), ISSUER).unwrap();
    assert_eq!(
        api_verifier.verify(&token).unwrap_err(),
        AuthError::WrongAudience,
        "the query API refuses publisher tokens"
    );

    let (status, body) = gateway
        .post(Some(&token), "text/plain", patient.to_string())
        .await;
    assert_eq!(status, 415);
    first_issue(&body, "error", "not-supported", "unsupported-media-type");

    let oversize =
        json!({"resourceType": "Bundle", "type": "collection", "padding": "x".repeat(2 * limit)});
    let (status, body) = gateway.post(Some(&token), fhir, oversize.to_string()).await;
    assert_eq!(status, 413);
    let diagnostics = first_issue(&body, "error", "too-costly", "too-large");
    assert!(diagnostics.contains(&limit.to_string()), "{diagnostics}");

    let (status, body) = gateway
        .post(Some(&token), fhir, "{\"resourceType\": ")
        .await;
    assert_eq!(status, 400);
    first_issue(&body, "error", "structure", "not-json");

    let (status, body) = gateway.post(Some(&token), fhir, "{\"hello\": 1}").await;
    assert_eq!(status, 400);
    first_issue(&body, "error", "structure", "not-fhir");

    let anonymous = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "anonymous", "birthDate": "1970-01-01"}}]});
    let (status, body) = gateway
        .post(Some(&token), fhir, anonymous.to_string())
        .await;
    assert_eq!(status, 422);
    let diagnostics = first_issue(&body, "error", "invalid", "patient-nhs-number");
    assert!(diagnostics.contains("Patient/anonymous"), "{diagnostics}");

    let (status, body) = gateway.post(Some(&token), fhir, patient.to_string()).await;
    assert_eq!(
        status, 202,
        "the same gateway still accepts a good document: {body}"
    );

    for (status, count) in [
        ("202", 1.0),
        ("400", 2.0),
        ("401", 2.0),
        ("413", 1.0),
        ("415", 1.0),
        ("422", 1.0),
    ] {
        let series = format!("spr_gateway_requests_total{{route=\"/fhir\",status=\"{status}\"}}");
        assert_eq!(gateway.metric(&series).await, count, "{series}");
    }
    for code in [
        "token-missing",
        "token-wrong-audience",
        "unsupported-media-type",
        "too-large",
        "not-json",
        "not-fhir",
        "patient-nhs-number",
    ] {
        let series = format!("spr_gateway_errors_total{{code=\"{code}\"}}");
        assert_eq!(gateway.metric(&series).await, 1.0, "{series}");
    }
    assert_eq!(
        gateway
            .metric("spr_gateway_request_seconds_count{route=\"/fhir\"}")
            .await,
        8.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_down_the_answer_is_503_saying_nothing_was_acknowledged_and_retrying_is_safe(
) {
    let mut broker = TestBroker::start_memory().await.unwrap();
    let gateway = Gateway::start(
        &broker.bootstrap(),
        10 << 20,
        Duration::from_secs(2),
        PublisherRateLimit::default(),
    )
    .await;
    broker.kill();
    let (status, body) = gateway
        .post(
            Some(&gateway.publisher_token()),
            "application/fhir+json",
            small_bundle().to_string(),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    let diagnostics = first_issue(&body, "error", "transient", "broker-unavailable");
    assert!(diagnostics.contains("acknowledged 0 of"), "{diagnostics}");
    assert!(diagnostics.contains("safe"), "{diagnostics}");
    assert_eq!(
        body["issue"].as_array().unwrap().len(),
        1,
        "no acknowledged ids to list"
    );
    assert_eq!(
        gateway
            .metric("spr_gateway_errors_total{code=\"broker-unavailable\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_over_its_rate_gets_429_with_retry_after_and_other_systems_are_not_held_back() {
    let broker = TestBroker::start_memory().await.unwrap();
    // One document every five seconds, two at once.
    let limit = PublisherRateLimit::new(12, 2).unwrap();
    let gateway = Gateway::start(
        &broker.bootstrap(),
        10 << 20,
        Duration::from_secs(30),
        limit,
    )
    .await;
    let (busy, quiet) = (
        gateway.publisher_token(),
        gateway.publisher_token_for("other-epr"),
    );
    let fhir = "application/fhir+json";
    let document = || small_bundle().to_string();
    // Refused requests count too, and cost the broker nothing: the burst goes quickly.
    for _ in 0..2 {
        let (status, body) = gateway.post(Some(&busy), "text/plain", document()).await;
        assert_eq!(
            status, 415,
            "within the burst, refused for its type: {body}"
        );
    }
    let refused = gateway
        .http
        .post(format!("http://{}/fhir", gateway.address))
        .header("content-type", fhir)
        .bearer_auth(&busy)
        .body(document())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&retry_after), "Retry-After {retry_after}");
    let body: Value = refused.json().await.unwrap();
    let diagnostics = first_issue(&body, "error", "throttled", "rate-limited");
    assert!(
        diagnostics.contains("12 a minute (in bursts of at most 2)"),
        "{diagnostics}"
    );

    let (status, body) = gateway.post(Some(&quiet), fhir, document()).await;
    assert_eq!(status, 202, "another system is not held back: {body}");

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (status, body) = gateway.post(Some(&busy), fhir, document()).await;
    assert_eq!(status, 202, "accepted again after Retry-After: {body}");
    assert_eq!(
        gateway
            .metric("spr_gateway_errors_total{code=\"rate-limited\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_system_may_assert_depends_on_its_permissions_and_nothing_dated_ahead_is_published()
{
    let broker = TestBroker::start_memory().await.unwrap();
    let gateway = Gateway::with_defaults(&broker.bootstrap()).await;
    let examples = examples::one_of_each_type(nhs_number());
    let example = |event_type: EventType| {
        let mut event = examples
            .iter()
            .find(|e| e.event_type() == event_type)
            .unwrap()
            .clone();
        event.source.ods_code = "RX1".into();
        event
    };
    let bundle = |event: &spr_schemas::ClinicalEvent| {
        everything_bundle(&nhs_number(), std::slice::from_ref(event)).to_string()
    };
    let warnings = |body: &Value| -> Vec<String> {
        body["issue"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["details"]["coding"][0]["code"] == "not-taken")
            .map(|i| i["diagnostics"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut care_team = example(EventType::CareTeam);
    if let Payload::CareTeam(team) = &mut care_team.payload {
        team.ods_code = "EVIL1".into();
    }
    let mut registered = example(EventType::Demographics);
    if let Payload::Demographics(d) = &mut registered.payload {
        d.registered_gp_ods_code = Some("A81001".into());
    }
    let mut ahead = example(EventType::Allergy);
    ahead.occurred_at = now_millis() + 86_400_000;
    let untrusted = gateway.publisher_token_with(SYSTEM, &[]);

    let (status, body) = gateway
        .post(
            Some(&untrusted),
            "application/fhir+json",
            bundle(&care_team),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let diagnostics = first_issue(&body, "error", "forbidden", "not-permitted");
    assert!(
        diagnostics.contains("EVIL1") && diagnostics.contains("\"relationships\" permission"),
        "{diagnostics}"
    );
    let (status, body) = gateway
        .post(
            Some(&untrusted),
            "application/fhir+json",
            bundle(&example(EventType::ConsentChoice)),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let diagnostics = first_issue(&body, "error", "forbidden", "not-permitted");
    assert!(
        diagnostics.contains("\"consent\" permission"),
        "{diagnostics}"
    );
    // An event dated ahead is left out, with a warning; nothing else was in the document.
    let (status, body) = gateway
        .post(
            Some(&gateway.publisher_token()),
            "application/fhir+json",
            bundle(&ahead),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(
        warnings(&body)[0].contains("after the gateway's clock"),
        "{body}"
    );
    // A registered practice from a system without the permission is not taken; the rest
    // of the demographics is.
    let (status, body) = gateway
        .post(
            Some(&untrusted),
            "application/fhir+json",
            bundle(&registered),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(
        warnings(&body)[0].contains("named A81001 as the registered practice"),
        "{body}"
    );
    let (status, body) = gateway
        .post(
            Some(&gateway.publisher_token_with(SYSTEM, &[Permission::Relationships])),
            "application/fhir+json",
            bundle(&care_team),
        )
        .await;
    assert_eq!(status, 202, "{body}");

    // The log holds the demographics without the practice and the permitted care team.
    let records = read_patient_events(&broker.bootstrap(), 2).await;
    match &records[0].event.payload {
        Payload::Demographics(d) => assert_eq!(d.registered_gp_ods_code, None),
        other => panic!("the refused and future documents published nothing: {other:?}"),
    }
    match &records[1].event.payload {
        Payload::CareTeam(team) => assert_eq!(team.ods_code, "EVIL1"),
        other => panic!("then the permitted care team: {other:?}"),
    }
}
