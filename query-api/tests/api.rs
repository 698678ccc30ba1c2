//! The query API end to end: a real broker, projector, RocksDB, ledger and HTTP.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use spr_audit_ledger::checkpoint::CheckpointVerifier;
use spr_producers::synthetic::{population, SyntheticPatient};
use spr_query_api::auth::{mint_token, Claims, DevKeys};
use spr_schemas::{examples, AccessEvent, Decision};
use spr_testkit::eventually;
use support::{cared_for, checkpoint_signer, ledger_access_events, Stack, WAIT};

/// A hex SHA-256 digest from a JSON response.
fn digest(value: &Value) -> spr_audit_ledger::Sha256Digest {
    spr_audit_ledger::Sha256Digest(
        hex::decode(value.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    )
}

/// A list of hex digests (a proof) from a JSON response.
fn digests(value: &Value) -> Vec<spr_audit_ledger::Sha256Digest> {
    value.as_array().unwrap().iter().map(digest).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_event_is_read_through_the_api_once_in_order_and_every_read_is_in_a_verified_ledger(
) {
    let patients = cared_for(population(30, 99));
    let stack = Stack::start(&patients, Duration::from_secs(10)).await;
    let token = stack.token("clinician", None);
    let mut requests = 0u64;
    for patient in &patients {
        let mut expected = patient.events.clone();
        expected.sort_by_key(|e| (e.occurred_at, e.event_id));
        let (mut seen, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let mut path = format!(
                "/patients/{}/timeline?limit=4&full_history=true",
                patient.nhs_number
            );
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (status, body) = stack.get(&path, &token).await;
            requests += 1;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["nhs_number"], patient.nhs_number.as_str());
            seen.extend(
                body["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["event_id"].as_str().unwrap().to_owned()),
            );
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let want: Vec<String> = expected.iter().map(|e| e.event_id.to_string()).collect();
        assert_eq!(
            seen, want,
            "timeline of {} (every event once, in time order)",
            patient.nhs_number
        );

        let (status, summary) = stack
            .get(&format!("/patients/{}/summary", patient.nhs_number), &token)
            .await;
        requests += 1;
        assert_eq!(status, 200);
        // The summary lists the latest allergy record per substance and source.
        let mut latest = std::collections::BTreeMap::new();
        for e in &patient.events {
            if let spr_schemas::Payload::Allergy(a) = &e.payload {
                let key = (e.code.code.clone(), e.source.ods_code.clone());
                let newer = latest
                    .get(&key)
                    .is_none_or(|(t, id, _)| (e.occurred_at, e.event_id) > (*t, *id));
                if newer {
                    latest.insert(key, (e.occurred_at, e.event_id, a.verification));
                }
            }
        }
        let allergies = latest
            .values()
            .filter(|(.., v)| *v != spr_schemas::Verification::Refuted)
            .count();
        assert_eq!(summary["allergies"].as_array().unwrap().len(), allergies);
    }

    assert_eq!(
        stack.ledger_entries(requests).await,
        requests,
        "one access event per request, no more"
    );
    let accesses = ledger_access_events(&stack.ledger_path);
    assert!(accesses
        .iter()
        .all(|a| a.decision == Decision::Permit && a.subject.role == "clinician"));
    let published_types: std::collections::HashSet<&str> = patients
        .iter()
        .flat_map(|p| &p.events)
        .map(|e| e.event_type().as_str())
        .collect();
    assert!(
        accesses.iter().all(|a| {
            !a.categories.is_empty()
                && a.categories
                    .iter()
                    .all(|c| published_types.contains(c.as_str()))
        }),
        "every permitted read names what kinds of data it returned"
    );
    let patients_read: std::collections::HashSet<_> =
        accesses.iter().map(|a| a.nhs_number).collect();
    assert_eq!(patients_read.len(), patients.len());

    // The service signed a checkpoint of the whole ledger and published it.
    let verifier =
        CheckpointVerifier::from_verifier_key(&checkpoint_signer().verifier_key()).unwrap();
    let checkpoint_file = spr_audit_ledger::checkpoint::checkpoint_path(&stack.ledger_path);
    let signed = eventually(WAIT, "a checkpoint of every access", || {
        let note = std::fs::read_to_string(&checkpoint_file).ok()?;
        let checkpoint = verifier.verify(&note).unwrap();
        (checkpoint.size == requests).then_some((note, checkpoint))
    })
    .await
    .unwrap();
    let (report, _) = spr_audit_ledger::load_tree(&stack.ledger_path).unwrap();
    assert_eq!(
        (signed.1.root, signed.1.chain_head),
        (report.root, report.head)
    );
    let consumer: rdkafka::consumer::StreamConsumer =
        spr_producers::client_config(&stack.broker.bootstrap())
            .unwrap()
            .set("group.id", "checkpoint-reader")
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
    rdkafka::consumer::Consumer::subscribe(
        &consumer,
        &[spr_schemas::topics::LEDGER_CHECKPOINTS.name],
    )
    .unwrap();
    loop {
        let message = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .expect("checkpoints are published")
            .unwrap();
        let note =
            String::from_utf8(rdkafka::Message::payload(&message).unwrap().to_vec()).unwrap();
        if note == signed.0 {
            break;
        }
        assert!(
            verifier.verify(&note).unwrap().size < requests,
            "only earlier checkpoints come before it"
        );
    }

    // Auditors get the same checkpoint, and proofs that verify against it, from the API.
    assert_eq!(stack.get("/audit/checkpoint", "not-a-token").await.0, 401);
    let served = stack.get_response("/audit/checkpoint", &token).await;
    assert_eq!(served.text().await.unwrap(), signed.0);
    let size = signed.1.size;
    let proof_path = format!("/audit/proof/inclusion?index=3&size={size}");
    // The API reloads its view of the ledger every 50 ms.
    let (_, body) = stack
        .poll(&proof_path, &token, |status, _| status == 200)
        .await;
    let path: Vec<_> = digests(&body["proof"]);
    assert_eq!(digest(&body["root"]), signed.1.root);
    assert!(spr_audit_ledger::merkle::verify_inclusion(
        &digest(&body["leaf_hash"]),
        3,
        size,
        &path,
        &signed.1.root
    ));
    let (status, body) = stack
        .get(
            &format!("/audit/proof/consistency?first=1&second={size}"),
            &token,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let path: Vec<_> = digests(&body["proof"]);
    assert!(spr_audit_ledger::merkle::verify_consistency(
        1,
        size,
        &digest(&body["first_root"]),
        &signed.1.root,
        &path
    ));
    let beyond = format!("/audit/proof/inclusion?index={size}&size={size}");
    for bad in [
        "/audit/proof/inclusion?index=x",
        "/audit/proof/inclusion?index=1&colour=red",
        &beyond,
        "/audit/proof/consistency?first=5&second=2",
    ] {
        let (status, body) = stack.get(bad, &token).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    drop(stack.stops);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_access_event_cannot_be_recorded_the_api_answers_503_and_returns_no_data() {
    let patients = cared_for(population(1, 5));
    let mut stack = Stack::start(&patients, Duration::from_secs(2)).await;
    let token = stack.token("clinician", None);
    let path = format!("/patients/{}/timeline", patients[0].nhs_number);
    let (status, _) = stack.get(&path, &token).await;
    assert_eq!(status, 200);

    stack.broker.kill();
    for path in [
        path.clone(),
        format!("/patients/{}/summary", patients[0].nhs_number),
    ] {
        let response = stack.get_response(&path, &token).await;
        assert_eq!(response.status().as_u16(), 503);
        let text = response.text().await.unwrap();
        assert!(text.contains("audit-unavailable"), "{text}");
        for event in &patients[0].events {
            assert!(
                !text.contains(&event.event_id.to_string()),
                "patient data leaked in a 503: {text}"
            );
        }
        assert!(!text.contains(patients[0].nhs_number.as_str()), "{text}");
    }

    // The refusals are counted by error code, and served at /metrics.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = listener.local_addr().unwrap();
    let metrics_router = Arc::clone(&stack.metrics).router();
    tokio::spawn(async move { axum::serve(listener, metrics_router).await });
    let metrics = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"spr_api_errors_total{code="audit-unavailable"} 2"#,
        r#"spr_api_requests_total{route="/patients/{nhs_number}/timeline",status="200"} 1"#,
        r#"spr_api_requests_total{route="/patients/{nhs_number}/timeline",status="503"} 1"#,
        r#"spr_api_requests_total{route="/patients/{nhs_number}/summary",status="503"} 1"#,
        r#"spr_api_request_seconds_count{route="/patients/{nhs_number}/timeline"} 2"#,
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
    assert!(
        !metrics.contains(patients[0].nhs_number.as_str()),
        "no NHS number in a label: {metrics}"
    );
    drop(stack.stops);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_token_is_refused_with_its_own_code_and_a_bearer_challenge_and_nothing_is_recorded(
) {
    let patients = cared_for(population(1, 6));
    let stack = Stack::start(&patients, Duration::from_secs(10)).await;
    let path = format!("/patients/{}/summary", patients[0].nhs_number);
    let sign =
        |claims: &Claims| mint_token(&stack.keys.private_pem, &stack.keys.kid, claims).unwrap();
    let with = |change: &dyn Fn(&mut Claims)| {
        let mut claims = stack.claims("clinician", None);
        change(&mut claims);
        sign(&claims)
    };
    let other_key = DevKeys::generate(&stack.keys.kid);
    let unknown_key = DevKeys::generate("never-published");
    let valid = stack.token("clinician", None);
    // The header and signature of a valid token around another token's claims.
    let spliced = {
        let [header, _, signature] =
            <[&str; 3]>::try_from(valid.split('.').collect::<Vec<_>>()).unwrap();
        let other = with(&|c| c.role = "patient".into());
        format!("{header}.{}.{signature}", other.split('.').nth(1).unwrap())
    };
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some(stack.keys.kid.clone()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &stack.claims("clinician", None),
        &jsonwebtoken::EncodingKey::from_secret(b"a shared secret"),
    )
    .unwrap();
    let no_kid = {
        let key =
            jsonwebtoken::EncodingKey::from_ed_pem(stack.keys.private_pem.as_bytes()).unwrap();
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        jsonwebtoken::encode(&header, &stack.claims("clinician", None), &key).unwrap()
    };
    let bearer = |token: &str| Some(format!("Bearer {token}"));
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no Authorization header", None, "token-missing"),
        (
            "another scheme",
            Some("Basic dXNlcjpwYXNz".into()),
            "token-missing",
        ),
        (
            "Bearer and nothing",
            Some("Bearer ".into()),
            "token-missing",
        ),
        (
            "Bearer and a space",
            Some("Bearer  x".into()),
            "token-malformed",
        ),
        ("not a JWT", bearer("not.a.jwt"), "token-malformed"),
        (
            "HS256 with a shared secret",
            bearer(&hs256),
            "token-malformed",
        ),
        ("no kid in the header", bearer(&no_kid), "token-malformed"),
        (
            "a kid not in the JWKS",
            bearer(
                &mint_token(
                    &unknown_key.private_pem,
                    &unknown_key.kid,
                    &stack.claims("clinician", None),
                )
                .unwrap(),
            ),
            "token-unknown-key",
        ),
        (
            "expired",
            bearer(&with(&|c| {
                c.exp -= 10_000;
                c.nbf -= 10_000
            })),
            "token-expired",
        ),
        (
            "not yet valid",
            bearer(&with(&|c| c.nbf += 10_000)),
            "token-not-yet-valid",
        ),
        (
            "a control character in a claim",
            bearer(&with(&|c| c.org = "A81\u{0}001".into())),
            "token-malformed",
        ),
        (
            "wrong audience",
            bearer(&with(&|c| c.aud = "another-service".into())),
            "token-wrong-audience",
        ),
        (
            "wrong issuer",
            bearer(&with(&|c| c.iss = "someone-else".into())),
            "token-wrong-issuer",
        ),
        (
            "another key under the same kid",
            bearer(
                &mint_token(
                    &other_key.private_pem,
                    &other_key.kid,
                    &stack.claims("clinician", None),
                )
                .unwrap(),
            ),
            "token-bad-signature",
        ),
        (
            "claims swapped under a valid signature",
            bearer(&spliced),
            "token-bad-signature",
        ),
    ];
    let url = format!("http://{}{path}", stack.api);
    let mut request = stack.http.get(&url).bearer_auth(&valid);
    assert_eq!(
        request.send().await.unwrap().status().as_u16(),
        200,
        "the valid token"
    );
    for (name, authorization, code) in cases {
        request = stack.http.get(&url);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some(code)),
            "{name}: {body}"
        );
        assert!(body["message"].is_string(), "{name}: {body}");
        let expected_challenge = if code == "token-missing" {
            r#"Bearer realm="spr-timeline""#.to_owned()
        } else {
            format!(
                r#"Bearer realm="spr-timeline", error="invalid_token", error_description="{code}""#
            )
        };
        assert_eq!(challenge, expected_challenge, "{name}");
    }
    // Only the valid reads are recorded. The second is recorded after any refusal would
    // have been, on the topic's one partition, so once it is in the ledger the ledger
    // would show a recorded refusal.
    let after = stack
        .http
        .get(&url)
        .bearer_auth(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status().as_u16(), 200, "the valid token again");
    let marker = after.headers()["x-request-id"].to_str().unwrap().to_owned();
    stack.ledger_entries(2).await;
    let recorded: Vec<String> = ledger_access_events(&stack.ledger_path)
        .iter()
        .map(|access| access.request_id.to_string())
        .collect();
    assert_eq!(recorded.len(), 2, "only the two valid reads: {recorded:?}");
    assert_eq!(
        recorded[1], marker,
        "the second valid read is the last entry: {recorded:?}"
    );
    drop(stack.stops);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_400_and_a_denied_request_is_recorded_and_returns_no_data() {
    let patients = cared_for(population(2, 8));
    let stack = Stack::start(&patients, Duration::from_secs(10)).await;
    let (own, other) = (
        patients[0].nhs_number.as_str(),
        patients[1].nhs_number.as_str(),
    );
    let clinician = stack.token("clinician", None);
    let big = "x".repeat(spr_query_api::layers::MAX_REQUEST_BODY + 1);
    let hex48 = "0".repeat(48);
    let cases: Vec<(&str, String, &str, u16, &str)> = vec![
        (
            "GET",
            "/patients/1234567890/timeline".into(),
            "",
            400,
            "bad-nhs-number",
        ),
        (
            "GET",
            "/patients/not-a-number/summary".into(),
            "",
            400,
            "bad-nhs-number",
        ),
        (
            "GET",
            "/patients/%FF%FE/summary".into(),
            "",
            400,
            "bad-request",
        ),
        (
            "GET",
            format!("/patients/{own}0/summary"),
            "",
            400,
            "bad-nhs-number",
        ),
        (
            "GET",
            format!("/patients/{own}/timeline?limit=0"),
            "",
            400,
            "bad-limit",
        ),
        (
            "GET",
            format!("/patients/{own}/timeline?limit=501"),
            "",
            400,
            "bad-limit",
        ),
        (
            "GET",
            format!("/patients/{own}/timeline?limit=-1"),
            "",
            400,
            "bad-query",
        ),
        (
            "GET",
            format!("/patients/{own}/timeline?limit=99999999999999999999999"),
            "",
            400,
            "bad-query",
        ),
        (
            "GET",
            format!("/patients/{own}/timeline?limit="),
            "",
            400,
            "bad-query",
        ),
        (
            "GET",
            format!("/patients/{own}/timeline?limit=ten"),
            "",
            400,
            "bad-query",
        ),
        (
            "GET",
            format!("/patients/{own}/timeline?colour=blue"),
            "",
            400,
            "bad-query",
        ),
        (
            "GET",
            format!("/patients/{own}/timeline?cursor=zz"),
            "",
            400,
            "bad-cursor",
        ),
        (
            "GET",
            format!("/patients/{own}/timeline?cursor={}", "g".repeat(48)),
            "",
            400,
            "bad-cursor",
        ),
        (
            "GET",
            format!("/patients/{own}/timeline?cursor={hex48}00"),
            "",
            400,
            "bad-cursor",
        ),
        (
            "GET",
            "/me/access-log?proofs=maybe".into(),
            "",
            400,
            "bad-query",
        ),
        ("GET", "/audit/proof/inclusion".into(), "", 400, "bad-query"),
        ("GET", "/no/such/route".into(), "", 404, "not-found"),
        ("GET", format!("/patients/{own}"), "", 404, "not-found"),
        (
            "POST",
            format!("/patients/{own}/timeline"),
            "{}",
            405,
            "method-not-allowed",
        ),
        (
            "DELETE",
            format!("/patients/{own}/summary"),
            "",
            405,
            "method-not-allowed",
        ),
        ("PUT", "/health".into(), "", 405, "method-not-allowed"),
        (
            "POST",
            format!("/patients/{own}/summary"),
            &big,
            413,
            "body-too-large",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let response = stack
            .http
            .request(
                method.parse().unwrap(),
                format!("http://{}{path}", stack.api),
            )
            .bearer_auth(&clinician)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let content_type = response.headers().get("content-type").cloned();
        let (got, json) = (response.status().as_u16(), response.json::<Value>().await);
        let json = json.unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e})"));
        assert_eq!(
            (got, json["error"].as_str()),
            (status, Some(code)),
            "{method} {path}: {json}"
        );
        assert!(json["message"].is_string(), "{method} {path}: {json}");
        assert_eq!(content_type.unwrap(), "application/json", "{method} {path}");
    }

    let reception = stack.token("administrative", None);
    let (status, body) = stack
        .get(&format!("/patients/{own}/timeline"), &reception)
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["reasons"],
        serde_json::json!(["role-not-permitted-scope"])
    );
    assert!(body.get("entries").is_none());

    let patient = stack.token("patient", Some(own));
    assert_eq!(
        stack
            .get(&format!("/patients/{own}/timeline"), &patient)
            .await
            .0,
        200
    );
    let (status, body) = stack
        .get(&format!("/patients/{other}/summary"), &patient)
        .await;
    assert_eq!(
        (status, body["reasons"][0].as_str()),
        (403, Some("patient-not-own-record"))
    );

    // Bad input is refused before any decision, so only the three decisions above are recorded.
    stack.ledger_entries(3).await;
    let decisions: Vec<_> = ledger_access_events(&stack.ledger_path)
        .into_iter()
        .map(|a| (a.subject.role, a.decision, a.returned_count, a.reasons))
        .collect();
    assert_eq!(
        decisions,
        vec![
            (
                "administrative".to_owned(),
                Decision::Deny,
                0,
                vec!["role-not-permitted-scope".to_owned()]
            ),
            (
                "patient".to_owned(),
                Decision::Permit,
                patients[0].events.len() as i32,
                vec!["patient-own-record".to_owned()]
            ),
            (
                "patient".to_owned(),
                Decision::Deny,
                0,
                vec!["patient-not-own-record".to_owned()]
            ),
        ]
    );
    drop(stack.stops);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_sees_who_accessed_their_record_with_proofs_and_that_reading_is_audited() {
    let patients = cared_for(population(2, 12));
    let stack = Stack::start(&patients, Duration::from_secs(10)).await;
    let own = patients[0].nhs_number.as_str();
    let timeline = format!("/patients/{own}/timeline");
    assert_eq!(
        stack
            .get(&timeline, &stack.token("clinician", None))
            .await
            .0,
        200
    );
    assert_eq!(
        stack
            .get(&timeline, &stack.token("administrative", None))
            .await
            .0,
        403
    );
    let other_patient = stack.token("patient", Some(patients[1].nhs_number.as_str()));
    assert_eq!(
        stack
            .get(
                &format!("/patients/{}/summary", patients[1].nhs_number),
                &other_patient
            )
            .await
            .0,
        200
    );
    stack.ledger_entries(3).await;

    let patient = stack.token("patient", Some(own));
    // Each read of the access log is itself recorded, so the log grows as we poll:
    // wait until both timeline reads are in it.
    let (_, body) = stack
        .poll("/me/access-log?proofs=true", &patient, |status, body| {
            assert_eq!(status, 200, "{body}");
            let reads = body["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["action"] == "timeline.read")
                .count();
            reads == 2
        })
        .await;
    let entries = body["entries"].as_array().unwrap();
    let reads: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "timeline.read")
        .collect();
    assert_eq!(reads.len(), 2, "{body}");
    assert_eq!(reads[0]["role"], "administrative", "newest first");
    assert_eq!(reads[0]["decision"], "DENY");
    assert_eq!(reads[1]["role"], "clinician");
    assert_eq!(reads[1]["organisation"], "A81001");
    assert!(
        entries.iter().all(|e| e["action"] != "summary.read"),
        "another patient's accesses never appear"
    );
    let (size, root) = (body["tree_size"].as_u64().unwrap(), digest(&body["root"]));
    for entry in entries {
        let proof = &entry["proof"];
        let path: Vec<_> = digests(&proof["proof"]);
        let index = entry["ledger_index"].as_u64().unwrap();
        assert!(spr_audit_ledger::merkle::verify_inclusion(
            &digest(&proof["leaf_hash"]),
            index,
            size,
            &path,
            &root
        ));
    }

    // The patient's reading was itself recorded: it shows up in the next read.
    let (_, body) = stack
        .poll("/me/access-log", &patient, |_, body| {
            body["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "access-log.read")
        })
        .await;
    assert!(
        body["entries"][0].get("proof").is_none(),
        "no proofs unless asked"
    );
    let (status, body) = stack
        .get("/me/access-log", &stack.token("clinician", None))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not-a-patient-token"))
    );
    assert!(body.get("reasons").is_none(), "no policy decision: {body}");
    drop(stack.stops);
}

fn ids(entries: &Value) -> Vec<String> {
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

/// One patient with one event of every type from last month, recorded at a hospital
/// (`RJ1`) and registered with another practice, so the test organisation (`A81001`)
/// has no relationship until a test adds one.
fn every_type_patient() -> Vec<SyntheticPatient> {
    let nhs_number: spr_schemas::NhsNumber = "9990000018".parse().unwrap();
    let last_month = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 30 * 86_400_000;
    let events = examples::one_of_each_type(nhs_number)
        .into_iter()
        .filter(|e| e.event_type() != spr_schemas::EventType::NhsNumberMerge)
        .map(|mut e| {
            e.occurred_at = last_month;
            e.recorded_at = last_month;
            e.source.ods_code = "RJ1".into();
            if let spr_schemas::Payload::Demographics(d) = &mut e.payload {
                d.registered_gp_ods_code = Some("B82002".into());
            }
            e
        })
        .collect();
    vec![SyntheticPatient {
        nhs_number,
        retired_nhs_number: None,
        events,
    }]
}

/// Reads `path` from the API node at `node` until it is permitted (a 403 before), and
/// the page.
async fn until_permitted(stack: &Stack, node: SocketAddr, path: &str, token: &str) -> Value {
    let started = std::time::Instant::now();
    let (_, page) = stack
        .poll_from(node, path, token, |status, page| {
            assert!(matches!(status, 200 | 403), "{status} {page}");
            status == 200
        })
        .await;
    eprintln!("permitted after {:?}", started.elapsed());
    page
}

/// Behind a load balancer: a clinician who broke glass on one node holds the elevation
/// on every node moments later, and a node started afterwards (as after a restart)
/// reads it back from the log; a refused break-glass elevates no one anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_glass_granted_on_one_node_holds_on_every_node() {
    let patients = every_type_patient();
    let nhs = patients[0].nhs_number.as_str();
    let stack = Stack::start(&patients, Duration::from_secs(10)).await;
    let second = stack.another_node("second").await;
    let clinician = stack.token("clinician", None);
    let timeline = format!("/patients/{nhs}/timeline");
    let glass = format!("/patients/{nhs}/break-glass");
    let ask = |reason: &str| {
        stack.send(
            reqwest::Method::POST,
            &glass,
            &clinician,
            serde_json::json!({ "reason": reason }),
        )
    };

    assert_eq!(ask("no").await.0, 403, "too short a reason is refused");
    let reason = "Collapsed in the car park, no records with her";
    let (status, granted) = ask(reason).await;
    assert_eq!(status, 201, "{granted}");
    let page = until_permitted(&stack, second, &timeline, &clinician).await;
    assert!(!page["entries"].as_array().unwrap().is_empty());
    // A node started later, as after a restart, reads the elevation back from the log.
    let third = stack.another_node("third").await;
    until_permitted(&stack, third, &timeline, &clinician).await;

    // Only the clinician who broke glass; another who breaks glass on the second node
    // holds it on the others.
    let mut other = stack.claims("clinician", None);
    other.sub = "clinician-0002".into();
    let other = mint_token(&stack.keys.private_pem, &stack.keys.kid, &other).unwrap();
    for node in [stack.api, second, third] {
        assert_eq!(stack.get_from(node, &timeline, &other).await.0, 403);
    }
    let other_reason = "Anaphylaxis on the ward, allergies unknown";
    let (status, granted) = stack
        .send_to(
            second,
            reqwest::Method::POST,
            &glass,
            &other,
            serde_json::json!({ "reason": other_reason }),
        )
        .await;
    assert_eq!(status, 201, "{granted}");
    for node in [stack.api, third] {
        until_permitted(&stack, node, &timeline, &other).await;
    }

    let under_glass = eventually(WAIT, "the ledger to hold the four reads", || {
        let reads: Vec<AccessEvent> = ledger_access_events(&stack.ledger_path)
            .into_iter()
            .filter(|a| a.action == "timeline.read" && a.decision == Decision::Permit)
            .collect();
        (reads.len() == 4).then_some(reads)
    })
    .await
    .unwrap();
    for read in under_glass {
        let expected = match read.subject.id.as_str() {
            "clinician-0001" => reason,
            _ => other_reason,
        };
        assert_eq!(
            read.break_glass_reason.as_deref(),
            Some(expected),
            "{read:?}"
        );
        assert!(read.reasons.contains(&"break-glass".to_owned()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_relationship_a_clinician_gets_the_emergency_tier_and_break_glass_is_loud() {
    let patients = every_type_patient();
    let nhs = patients[0].nhs_number.as_str();
    let stack = Stack::start(&patients, Duration::from_secs(10)).await;
    let clinician = stack.token("clinician", None);
    let timeline = format!("/patients/{nhs}/timeline");

    let (status, body) = stack.get(&timeline, &clinician).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.get("entries").is_none(), "a denial carries no data");
    assert!(
        body["reasons"]
            .as_array()
            .unwrap()
            .contains(&"no-legitimate-relationship".into()),
        "{body}"
    );
    let (status, summary) = stack
        .get(&format!("/patients/{nhs}/summary"), &clinician)
        .await;
    assert_eq!(
        status, 200,
        "the emergency tier needs no relationship: {summary}"
    );
    assert_eq!(summary["allergies"].as_array().unwrap().len(), 1);

    let glass = format!("/patients/{nhs}/break-glass");
    let (status, body) = stack
        .send(
            reqwest::Method::POST,
            &glass,
            &clinician,
            serde_json::json!({"reason": "no"}),
        )
        .await;
    assert_eq!(status, 403, "a reason must say why: {body}");
    let (status, body) = stack
        .send(
            reqwest::Method::POST,
            &glass,
            &stack.token("administrative", None),
            serde_json::json!({"reason": "patient asked at the desk"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = stack
        .send(
            reqwest::Method::POST,
            &glass,
            &clinician,
            serde_json::json!({"reason": 3}),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad-body")));
    let (status, body) = stack
        .send(
            reqwest::Method::POST,
            &glass,
            &clinician,
            serde_json::json!({"reason": "unconscious ".repeat(100)}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("reason-too-long"))
    );
    let reason = "Unconscious in resus, no history available";
    let (status, granted) = stack
        .send(
            reqwest::Method::POST,
            &glass,
            &clinician,
            serde_json::json!({"reason": reason}),
        )
        .await;
    assert_eq!(status, 201, "{granted}");
    assert!(granted["expires_at"].as_i64().unwrap() > 0);

    let (status, page) = stack
        .get(&format!("{timeline}?limit=500"), &clinician)
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(!page["entries"].as_array().unwrap().is_empty());
    // Another clinician has not broken glass.
    let mut other = stack.claims("clinician", None);
    other.sub = "clinician-0002".into();
    let other = mint_token(&stack.keys.private_pem, &stack.keys.kid, &other).unwrap();
    assert_eq!(stack.get(&timeline, &other).await.0, 403);

    stack.ledger_entries(7).await;
    let accesses = ledger_access_events(&stack.ledger_path);
    let glass_reads: Vec<&AccessEvent> = accesses
        .iter()
        .filter(|a| a.break_glass_reason.as_deref() == Some(reason))
        .collect();
    assert_eq!(
        glass_reads.len(),
        2,
        "the break-glass itself and the read under it"
    );
    assert!(glass_reads
        .iter()
        .all(|a| a.decision == Decision::Permit && a.reasons.contains(&"break-glass".to_owned())));
    let denied: Vec<&AccessEvent> = accesses
        .iter()
        .filter(|a| a.decision == Decision::Deny)
        .collect();
    assert_eq!(
        denied.len(),
        4,
        "each denial is audited like an allowed read"
    );
    assert!(denied.iter().all(|a| a.returned_count == 0));
    drop(stack.stops);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_category_disappears_for_staff_and_stays_visible_to_the_patient() {
    let mut patients = cared_for(every_type_patient());
    let nhs = patients[0].nhs_number;
    let mut sensitive = examples::observation(nhs);
    sensitive.sensitivity = vec!["sexual-health".into()];
    sensitive.occurred_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 86_400_000;
    patients[0]
        .events
        .retain(|e| e.event_type() != spr_schemas::EventType::ConsentChoice);
    patients[0].events.push(sensitive.clone());
    let stack = Stack::start(&patients, Duration::from_secs(10)).await;
    let clinician = stack.token("clinician", None);
    let patient = stack.token("patient", Some(nhs.as_str()));
    let timeline = format!("/patients/{nhs}/timeline?limit=500&full_history=true");
    let visible = |page: &Value| ids(&page["entries"]).contains(&sensitive.event_id.to_string());

    let (status, page) = stack.get(&timeline, &clinician).await;
    assert_eq!(status, 200, "{page}");
    assert!(visible(&page), "shared by default");

    let choice = serde_json::json!({"category": "sexual-health", "choice": "WITHHOLD"});
    let (status, body) = stack
        .send(reqwest::Method::PUT, "/me/choices", &patient, choice)
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, _) = stack
        .send(
            reqwest::Method::PUT,
            "/me/choices",
            &clinician,
            serde_json::json!({"category": "sexual-health", "choice": "SHARE"}),
        )
        .await;
    assert_eq!(status, 403, "only the patient sets their choices");
    let (status, body) = stack
        .send(
            reqwest::Method::PUT,
            "/me/choices",
            &patient,
            serde_json::json!({"category": "gossip", "choice": "SHARE"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("bad-category"))
    );
    let started = std::time::Instant::now();
    loop {
        let (_, choices) = stack.get("/me/choices", &patient).await;
        let withheld = choices
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["category"] == "sexual-health" && c["choice"] == "WITHHOLD");
        if withheld {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the choice was never projected: {choices}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (status, page) = stack.get(&timeline, &clinician).await;
    assert_eq!(status, 200);
    assert!(!visible(&page), "withheld from staff: {page}");
    let (status, record) = stack.get("/me/record?limit=500", &patient).await;
    assert_eq!(status, 200, "{record}");
    assert!(
        visible(&record["timeline"]),
        "the patient still sees their own data"
    );
    let (status, _) = stack.get("/me/record", &clinician).await;
    assert_eq!(status, 403);
    drop(stack.stops);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_views_and_timeline_filters_answer_from_the_projection() {
    let patients = cared_for(every_type_patient());
    let nhs = patients[0].nhs_number;
    let stack = Stack::start(&patients, Duration::from_secs(10)).await;
    // Every record read says how fresh the projection is.
    let response = stack
        .get_response(
            &format!("/patients/{nhs}/summary"),
            &stack.token("clinician", None),
        )
        .await;
    let behind: f64 = response.headers()["x-projection-behind-seconds"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.0..60.0).contains(&behind), "{behind}");
    let midwife = stack.token("midwife", None);
    let (status, maternity) = stack
        .get(&format!("/patients/{nhs}/maternity"), &midwife)
        .await;
    assert_eq!(status, 200, "{maternity}");
    let episode = &maternity["episodes"][0];
    assert_eq!(episode["open"], false, "the birth closed it: {episode}");
    assert_eq!(episode["visits"].as_array().unwrap().len(), 1);

    let clinician = stack.token("clinician", None);
    let (status, meds) = stack
        .get(&format!("/patients/{nhs}/medications"), &clinician)
        .await;
    assert_eq!(status, 200, "{meds}");
    assert!(
        meds["current"].as_array().unwrap().is_empty(),
        "the example stop names the prescription: {meds}"
    );
    let (status, discharge) = stack
        .get(&format!("/patients/{nhs}/discharge"), &clinician)
        .await;
    assert_eq!(status, 200, "{discharge}");
    assert_eq!(discharge["summary"]["event_type"], "DISCHARGE_SUMMARY");

    let base = format!("/patients/{nhs}/timeline?full_history=true&limit=500");
    let (status, page) = stack
        .get(&format!("{base}&types=allergy,condition"), &clinician)
        .await;
    assert_eq!(status, 200, "{page}");
    let types: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 2, "{types:?}");
    let (_, page) = stack
        .get(&format!("{base}&care_setting=maternity"), &clinician)
        .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 3);
    let (_, page) = stack
        .get(&format!("{base}&text=PENICILLIN"), &clinician)
        .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    // 200 letters that are two bytes each are within the 200 characters allowed.
    let (status, body) = stack
        .get(&format!("{base}&text={}", "%C3%A9".repeat(200)), &clinician)
        .await;
    assert_eq!(status, 200, "{body}");
    let too_long = format!("text={}", "%C3%A9".repeat(201));
    for bad in [
        "types=allergy,gossip",
        "types=",
        "types=allergy,,observation",
        "care_setting=",
        "care_setting=gp,%20",
        "from=yesterday",
        "from=2024-02-01T00:00:00Z&to=2024-01-01T00:00:00Z",
        "care_setting=moon",
        &too_long,
    ] {
        let (status, body) = stack.get(&format!("{base}&{bad}"), &clinician).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("bad-filter")),
            "{bad}: {body}"
        );
    }
    let (status, bundle) = stack
        .get(
            &format!("/patients/{nhs}/fhir/$everything?full_history=true"),
            &clinician,
        )
        .await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "searchset");
    assert_eq!(bundle["entry"][0]["resource"]["resourceType"], "Patient");
    let (_, everything) = stack.get(&base, &clinician).await;
    let standing = everything["entries"].as_array().unwrap().len();
    assert!(
        bundle["entry"].as_array().unwrap().len() > standing / 2,
        "{bundle}"
    );
    let (status, _) = stack
        .get(
            &format!("/patients/{nhs}/fhir/$everything"),
            &stack.token("administrative", None),
        )
        .await;
    assert_eq!(status, 403);
    // Reception and social care see pages of the record with only their kinds of data.
    let types_in = |page: &Value| -> Vec<String> {
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap().to_owned())
            .collect()
    };
    let admin = stack.token("administrative", None);
    let (status, page) = stack
        .get(&format!("/patients/{nhs}/administration?limit=500"), &admin)
        .await;
    assert_eq!(status, 200, "{page}");
    let seen = types_in(&page);
    assert!(
        seen.contains(&"DEMOGRAPHICS".to_owned()) && seen.contains(&"ENCOUNTER".to_owned()),
        "{seen:?}"
    );
    for clinical in [
        "ALLERGY",
        "OBSERVATION",
        "MEDICATION_PRESCRIBED",
        "CONDITION",
        "SAFEGUARDING_FLAG",
    ] {
        assert!(
            !seen.contains(&clinical.to_owned()),
            "reception sees no {clinical}: {seen:?}"
        );
    }
    assert_eq!(
        stack
            .get(&format!("/patients/{nhs}/social-care"), &admin)
            .await
            .0,
        403
    );
    let (status, page) = stack
        .get(
            &format!("/patients/{nhs}/social-care?limit=500"),
            &stack.token("social-worker", None),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let seen = types_in(&page);
    assert!(
        seen.contains(&"SAFEGUARDING_FLAG".to_owned()) && seen.contains(&"CARE_PLAN".to_owned()),
        "{seen:?}"
    );
    for clinical in ["OBSERVATION", "GENOMIC_RESULT", "MEDICATION_PRESCRIBED"] {
        assert!(
            !seen.contains(&clinical.to_owned()),
            "social care sees no {clinical}: {seen:?}"
        );
    }
    // Data minimisation: a pharmacist has the medication view but not the maternity one.
    let pharmacist = stack.token("pharmacist", None);
    assert_eq!(
        stack
            .get(&format!("/patients/{nhs}/medications"), &pharmacist)
            .await
            .0,
        200
    );
    let (status, body) = stack
        .get(&format!("/patients/{nhs}/maternity"), &pharmacist)
        .await;
    assert_eq!(status, 403, "{body}");
    drop(stack.stops);
}
