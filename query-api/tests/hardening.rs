//! Transport hardening against the real stack: key rotation without a restart, dev
//! tokens for every role, conditional GET (still audited) and gzip, and a bounded
//! schemathesis run against the served OpenAPI document.

mod support;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use spr_producers::synthetic::population;
use spr_query_api::auth::{mint_token, retire_key, DevKeys};
use spr_query_api::policy::Role;
use spr_schemas::Decision;
use support::{cared_for, ledger_access_events, Stack, ISSUER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_rotated_without_a_restart_and_a_retired_key_is_refused() {
    let patients = cared_for(population(1, 21));
    let stack = Stack::start(&patients, Duration::from_secs(10)).await;
    let path = format!("/patients/{}/summary", patients[0].nhs_number);
    let old = stack.token("clinician", None);
    assert_eq!(stack.get(&path, &old).await.0, 200);

    let next = DevKeys::generate("key-2");
    next.write_to(&stack.keys_dir).unwrap();
    let new = mint_token(
        &next.private_pem,
        &next.kid,
        &stack.claims("clinician", None),
    )
    .unwrap();
    // The API reads the file every 50 ms.
    stack.poll(&path, &new, |status, _| status == 200).await;
    assert_eq!(
        stack.get(&path, &old).await.0,
        200,
        "both keys during the overlap"
    );

    // Every role of the policy can be minted by the CLI, with --kid and --ttl.
    for role in Role::ALL {
        let mut args = vec![
            "--issuer",
            ISSUER,
            "token",
            "--role",
            role.as_str(),
            "--kid",
            "key-2",
            "--ttl",
            "120",
        ];
        let own = patients[0].nhs_number.as_str();
        if role == Role::Patient {
            args.extend(["--nhs-number", own]);
        }
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_spr-api"))
            .args(&args)
            .arg("--dir")
            .arg(&stack.keys_dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{role:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        let claims: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["role"], role.as_str());
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            120
        );
        let (status, body) = stack.get(&path, &token).await;
        assert!(
            matches!(status, 200 | 403),
            "{role:?} was not accepted: {body}"
        );
    }

    retire_key(&stack.keys_dir, &stack.keys.kid).unwrap();
    let (status, body) = stack.poll(&path, &old, |status, _| status == 401).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("token-unknown-key"))
    );
    assert_eq!(stack.get(&path, &new).await.0, 200);

    // A JWKS file that cannot be read as one leaves the keys as they were: the API's
    // verifier, told to read it now, refuses it and keeps the key it trusts.
    std::fs::write(stack.keys_dir.join("jwks.json"), "{ half a file").unwrap();
    assert!(stack.verifier().reload().is_err());
    assert_eq!(stack.verifier().kids(), vec![next.kid.clone()]);
    assert_eq!(stack.get(&path, &new).await.0, 200);
    assert_eq!(stack.get(&path, &old).await.0, 401);
    drop(stack.stops);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conditional_get_answers_304_only_after_the_access_is_recorded_and_gzip_has_its_own_etag()
{
    let patients = cared_for(population(1, 22));
    let mut stack = Stack::start(&patients, Duration::from_secs(2)).await;
    let clinician = stack.token("clinician", None);
    let nhs = patients[0].nhs_number.as_str();
    let get = |path: String, headers: Vec<(&'static str, String)>| {
        let mut request = stack
            .http
            .get(format!("http://{}{path}", stack.api))
            .bearer_auth(&clinician);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let mut recorded = 0;
    for path in [
        format!("/patients/{nhs}/timeline?limit=3"),
        format!("/patients/{nhs}/summary"),
    ] {
        let first = get(path.clone(), vec![]).await.unwrap();
        assert_eq!(first.status().as_u16(), 200);
        let tag = header(&first, "etag").expect("an ETag");
        assert!(tag.starts_with('"') && tag.len() == 34, "{tag}");
        assert_eq!(
            header(&first, "cache-control").as_deref(),
            Some("private, no-cache")
        );
        let body = first.bytes().await.unwrap();

        let again = get(path.clone(), vec![("if-none-match", tag.clone())])
            .await
            .unwrap();
        assert_eq!(again.status().as_u16(), 304, "{path}");
        assert_eq!(header(&again, "etag"), Some(tag.clone()));
        assert!(
            header(&again, "x-request-id").is_some(),
            "a 304 is a recorded access"
        );
        assert!(again.bytes().await.unwrap().is_empty());

        let stale = get(path.clone(), vec![("if-none-match", "\"stale\"".into())])
            .await
            .unwrap();
        assert_eq!(stale.status().as_u16(), 200);
        assert_eq!(stale.bytes().await.unwrap(), body);

        let zipped = get(path.clone(), vec![("accept-encoding", "gzip".into())])
            .await
            .unwrap();
        assert_eq!(header(&zipped, "content-encoding").as_deref(), Some("gzip"));
        let zipped_tag = header(&zipped, "etag").unwrap();
        assert_ne!(zipped_tag, tag, "each encoding has its own strong tag");
        assert_eq!(&zipped.bytes().await.unwrap()[..2], &[0x1f, 0x8b]);
        let zipped_again = get(
            path.clone(),
            vec![
                ("accept-encoding", "gzip".into()),
                ("if-none-match", zipped_tag),
            ],
        )
        .await
        .unwrap();
        assert_eq!(zipped_again.status().as_u16(), 304);
        recorded += 5;
    }
    // A known ETag does not get round the policy.
    let reception = stack.token("administrative", None);
    let denied = stack
        .http
        .get(format!("http://{}/patients/{nhs}/summary", stack.api))
        .bearer_auth(&reception)
        .header("if-none-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 403);
    recorded += 1;

    stack.ledger_entries(recorded).await;
    let events = ledger_access_events(&stack.ledger_path);
    assert_eq!(events.len() as u64, recorded);
    let permits: Vec<_> = events
        .iter()
        .filter(|e| e.decision == Decision::Permit)
        .collect();
    assert_eq!(permits.len() as u64, recorded - 1);
    for pair in permits.chunks(5) {
        assert!(
            pair.iter()
                .all(|e| e.returned_digest == pair[0].returned_digest && e.action == pair[0].action),
            "each of the five reads (304s included) records what it confirmed"
        );
    }

    // With no audit log, not even a 304 is answered.
    let path = format!("/patients/{nhs}/summary");
    let tag = header(&get(path.clone(), vec![]).await.unwrap(), "etag").unwrap();
    stack.broker.kill();
    let response = get(path, vec![("if-none-match", tag)]).await.unwrap();
    assert_eq!(response.status().as_u16(), 503);
    drop(stack.stops);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_response_outside_the_served_openapi_document() {
    let st =
        std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/spr/venv/bin/st");
    assert!(
        st.exists(),
        "schemathesis is not installed at {}; run deploy/local/install.sh",
        st.display()
    );
    let patients = cared_for(population(3, 23));
    let stack = Stack::start(&patients, Duration::from_secs(10)).await;
    let document: Value = stack
        .http
        .get(format!("http://{}/openapi.json", stack.api))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(document["paths"]["/patients/{nhs_number}/timeline"].is_object());

    let token = stack.token("clinician", None);
    // schemathesis keeps a cache in its working directory: not in the source tree. Its
    // configuration there draws half the NHS numbers it sends from the patients this
    // clinician cares for, so that every view's 200 body is checked against its schema,
    // and the other half from the parameter's schema (bad and unknown numbers).
    let workdir = tempfile::tempdir().unwrap();
    let numbers: Vec<String> = patients
        .iter()
        .map(|p| format!("\"{}\"", p.nhs_number))
        .collect();
    std::fs::write(
        workdir.path().join("schemathesis.toml"),
        format!(
            "[dictionaries.patients]\nvalues = [{}]\n\n[parameters]\n\"path.nhs_number\" = {{ dictionary = \"patients\", probability = 0.5 }}\n",
            numbers.join(", ")
        ),
    )
    .unwrap();
    let output = tokio::process::Command::new(&st)
        .current_dir(workdir.path())
        .args(["run", &format!("http://{}/openapi.json", stack.api)])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args([
            "--max-examples",
            "25",
            "--max-time",
            "60",
            "--seed",
            "7",
            "--workers",
            "1",
        ])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}"
    );
    drop(stack.stops);
}
