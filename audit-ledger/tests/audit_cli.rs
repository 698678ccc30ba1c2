//! The auditor's CLI over a real ledger file: proofs, signed checkpoints, and the
//! rollbacks and forks a checkpoint verifier must catch.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use spr_testkit::tools::output_text;

fn spr_audit(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spr-audit"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn proofs_printed_by_the_cli_verify_against_the_printed_root() {
    let dir = tempfile::tempdir().unwrap();
    common::append(&dir.path().join("ledger.spr"), 0, 11);
    let out = spr_audit(
        &["--json", "prove", "--ledger", "ledger.spr", "--index", "6"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let proof: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let digest = |v: &serde_json::Value| {
        spr_audit_ledger::Sha256Digest(
            hex::decode(v.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
        )
    };
    let path: Vec<_> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(digest)
        .collect();
    assert_eq!(proof["tree_size"], 11);
    assert!(spr_audit_ledger::merkle::verify_inclusion(
        &digest(&proof["leaf_hash"]),
        6,
        11,
        &path,
        &digest(&proof["root"])
    ));

    let verify = spr_audit(&["--json", "verify", "--ledger", "ledger.spr"], dir.path());
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(
        report["root"], proof["root"],
        "verify and prove agree on the tree head"
    );

    let out = spr_audit(
        &["prove", "--ledger", "ledger.spr", "--index", "11"],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "an index beyond the ledger is an input error: {}",
        output_text(&out)
    );
}

#[test]
fn checkpoints_extend_each_other_and_rollbacks_forks_and_other_keys_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ledger = d.join("ledger.spr");
    assert!(spr_audit(
        &["keygen", "--origin", "spr.test/ledger", "--dir", "keys"],
        d
    )
    .status
    .success());
    assert!(spr_audit(
        &[
            "keygen",
            "--origin",
            "spr.test/ledger",
            "--dir",
            "other-keys"
        ],
        d
    )
    .status
    .success());

    let sign = |ledger: &str| {
        spr_audit(
            &[
                "checkpoint",
                "--ledger",
                ledger,
                "--key",
                "keys/checkpoint.key",
            ],
            d,
        )
    };
    let again = spr_audit(
        &["keygen", "--origin", "spr.test/ledger", "--dir", "keys"],
        d,
    );
    assert_eq!(
        again.status.code(),
        Some(2),
        "an existing key is never overwritten: {}",
        output_text(&again)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(d.join("keys/checkpoint.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the private key is readable by its owner only"
    );
    common::append(&ledger, 0, 5);
    let first = sign("ledger.spr");
    assert!(first.status.success(), "{}", output_text(&first));
    std::fs::write(d.join("cp5"), &first.stdout).unwrap();
    assert!(String::from_utf8_lossy(&first.stdout).starts_with("spr.test/ledger\n5\n"));

    common::append(&ledger, 5, 4);
    let second = sign("ledger.spr");
    assert!(second.status.success(), "{}", output_text(&second));
    std::fs::write(d.join("cp9"), &second.stdout).unwrap();

    let check = |args: &[&str]| {
        spr_audit(
            &[
                &["verify-checkpoint", "--key", "keys/checkpoint.vkey"],
                args,
            ]
            .concat(),
            d,
        )
    };
    let ok = check(&[
        "--checkpoint",
        "cp9",
        "--trusted",
        "cp5",
        "--ledger",
        "ledger.spr",
    ]);
    assert!(ok.status.success(), "{}", output_text(&ok));
    assert!(output_text(&ok).contains("extends the trusted checkpoint of 5 entries"));

    // A ledger cut back below a checkpoint is called what it is.
    common::append(&d.join("short.spr"), 0, 8);
    let short = check(&["--checkpoint", "cp9", "--ledger", "short.spr"]);
    assert_eq!(short.status.code(), Some(1));
    assert!(
        output_text(&short).contains(
            "rolled back: the ledger holds 8 entries but the checkpoint was signed over 9"
        ),
        "{}",
        output_text(&short)
    );

    let rollback = check(&["--checkpoint", "cp5", "--trusted", "cp9"]);
    assert_eq!(rollback.status.code(), Some(1));
    assert!(
        output_text(&rollback).contains("rollback"),
        "{}",
        output_text(&rollback)
    );

    let private = spr_audit(
        &[
            "verify-checkpoint",
            "--key",
            "keys/checkpoint.key",
            "--checkpoint",
            "cp9",
        ],
        d,
    );
    assert!(
        output_text(&private).contains("this is the private signing key"),
        "{}",
        output_text(&private)
    );

    let other_key = spr_audit(
        &[
            "verify-checkpoint",
            "--key",
            "other-keys/checkpoint.vkey",
            "--checkpoint",
            "cp9",
        ],
        d,
    );
    assert_eq!(
        other_key.status.code(),
        Some(1),
        "{}",
        output_text(&other_key)
    );

    let altered = String::from_utf8_lossy(&second.stdout).replacen("\n9\n", "\n10\n", 1);
    std::fs::write(d.join("cp-altered"), altered).unwrap();
    assert_eq!(
        check(&["--checkpoint", "cp-altered"]).status.code(),
        Some(1)
    );

    // A rewritten history: the same key signs a ledger with different entries.
    let forked = d.join("forked.spr");
    common::append(&forked, 100, 12);
    let fork_note = sign("forked.spr");
    std::fs::write(d.join("cp12-fork"), &fork_note.stdout).unwrap();
    let fork = check(&[
        "--checkpoint",
        "cp12-fork",
        "--trusted",
        "cp9",
        "--ledger",
        "forked.spr",
    ]);
    assert_eq!(fork.status.code(), Some(1));
    assert!(
        output_text(&fork).contains("fork"),
        "{}",
        output_text(&fork)
    );
    let mismatch = check(&["--checkpoint", "cp9", "--ledger", "forked.spr"]);
    assert_eq!(
        mismatch.status.code(),
        Some(1),
        "{}",
        output_text(&mismatch)
    );

    // The signer itself refuses to sign a history that contradicts its last checkpoint.
    std::fs::copy(
        d.join("ledger.spr.checkpoint"),
        d.join("forked.spr.checkpoint"),
    )
    .unwrap();
    let refused = sign("forked.spr");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        output_text(&refused).contains("history was rewritten"),
        "{}",
        output_text(&refused)
    );
}
