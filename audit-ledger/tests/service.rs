//! The ledger service's start-up checks (no broker is reached: they fail first).

mod common;

use std::time::Duration;

use spr_audit_ledger::checkpoint::{
    checkpoint_path, sign_consistent, write_checkpoint_file, CheckpointSigner,
};
use spr_audit_ledger::service::{
    run_ledger_service, CheckpointPolicy, LedgerServiceConfig, ServiceError,
};

#[tokio::test]
async fn the_service_refuses_to_append_to_a_ledger_that_contradicts_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.spr");
    let signer = CheckpointSigner::generate("spr.test/ledger").unwrap();
    let genuine = common::append(&path, 0, 6);
    let note =
        sign_consistent(&signer, signer.name(), genuine.tree(), genuine.head(), None).unwrap();
    write_checkpoint_file(&checkpoint_path(&path), &note).unwrap();
    drop(genuine);

    // Someone replaces the ledger with another history of the same length.
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(dir.path().join("ledger.spr.committed")).unwrap();
    drop(common::append(&path, 50, 6));

    let config = LedgerServiceConfig {
        bootstrap: "127.0.0.1:1".into(),
        group_id: "ledger".into(),
        ledger_path: path,
        max_batch: 10,
        max_batch_wait: Duration::from_millis(10),
        checkpoints: Some(CheckpointPolicy {
            signer,
            every: Duration::ZERO,
        }),
        metrics: Default::default(),
        metrics_addr: None,
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        run_ledger_service(config, std::future::pending()),
    )
    .await;
    match outcome {
        Ok(Err(ServiceError::Checkpoint(why))) => assert!(why.contains("contradicts"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
