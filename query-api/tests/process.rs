//! `spr-api serve` as a process: told to stop while its broker hangs and clinicians'
//! reads are under way, it stops.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod support;

use spr_projector::ProjectionStore;
use spr_query_api::auth::DevKeys;
use spr_testkit::http::free_local_addr;
use spr_testkit::tools::successful_stdout;
use spr_testkit::{eventually, KillOnDrop, TestBroker};
use support::{ISSUER, WAIT};

/// A clinician's token from `spr-api token` (as an operator gets one), signed with a
/// key in `keys`.
fn clinician_token(keys: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_spr-api"))
        .args(["--issuer", ISSUER, "token", "--role", "clinician", "--dir"])
        .arg(keys)
        .output()
        .unwrap();
    successful_stdout(&output).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_told_to_stop_while_its_broker_hangs_exits_within_seconds() {
    let broker = TestBroker::start_durable().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("projection");
    let _projection = ProjectionStore::open(&db, false).unwrap();
    let keys = dir.path().join("keys");
    DevKeys::generate("process-key").write_to(&keys).unwrap();
    let token = clinician_token(&keys);
    let listen = free_local_addr();
    let api = KillOnDrop::new(
        Command::new(env!("CARGO_BIN_EXE_spr-api"))
            .args(["--issuer", ISSUER, "serve", "--listen", &listen])
            .args([
                "--bootstrap",
                &broker.bootstrap(),
                "--audit-timeout-ms",
                "2000",
            ])
            .arg("--projection-db")
            .arg(&db)
            .arg("--secondary-dir")
            .arg(dir.path().join("secondary"))
            .arg("--jwks")
            .arg(keys.join("jwks.json"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Every read is recorded (published to the broker) before it is answered; a 200 or
    // a 403 means its access event was acknowledged.
    let recorded = Arc::new(AtomicUsize::new(0));
    let last_status = Arc::new(AtomicU16::new(0));
    let reading = {
        let (recorded, last_status) = (Arc::clone(&recorded), Arc::clone(&last_status));
        let url = format!("http://{listen}/patients/9990000018/timeline");
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                match http.get(&url).bearer_auth(&token).send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        last_status.store(status, Ordering::SeqCst);
                        if matches!(status, 200 | 403) {
                            recorded.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    // Not listening yet.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        })
    };
    eventually(WAIT, "20 reads recorded and answered", || {
        (recorded.load(Ordering::SeqCst) >= 20).then_some(())
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}; the last answer was {}",
            last_status.load(Ordering::SeqCst)
        )
    });
    broker
        .freeze_and_stop(api, reading)
        .await
        .expect("spr-api stops on SIGTERM although the broker hangs");
}
