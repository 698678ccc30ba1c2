//! Signed checkpoints: the signed-note format, and every way of forging one.

use spr_audit_ledger::checkpoint::{
    Checkpoint, CheckpointError, CheckpointSigner, CheckpointVerifier,
};
use spr_audit_ledger::{leaf_hash, Sha256Digest};

const ORIGIN: &str = "spr-timeline.test/audit-ledger";

fn checkpoint(size: u64) -> Checkpoint<'static> {
    Checkpoint {
        origin: ORIGIN,
        size,
        root: leaf_hash(&size.to_be_bytes()),
        chain_head: leaf_hash(b"chain"),
    }
}

fn signer() -> (CheckpointSigner, CheckpointVerifier) {
    let signer = CheckpointSigner::generate(ORIGIN).unwrap();
    let verifier = CheckpointVerifier::from_verifier_key(&signer.verifier_key()).unwrap();
    (signer, verifier)
}

#[test]
fn a_signed_checkpoint_verifies_and_reads_back_what_was_signed() {
    let (signer, verifier) = signer();
    let note = signer.sign(&checkpoint(42));
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(lines[0], ORIGIN);
    assert_eq!(lines[1], "42");
    assert!(lines[3].starts_with("chain-head "));
    assert_eq!(lines[4], "");
    assert!(lines[5].starts_with(&format!("\u{2014} {ORIGIN} ")));
    let read = verifier.verify(&note).unwrap();
    assert_eq!(
        (read.origin.as_str(), read.size, read.root, read.chain_head),
        (ORIGIN, 42, checkpoint(42).root, checkpoint(42).chain_head)
    );
}

#[test]
fn keys_round_trip_through_their_text_forms() {
    let (signer, _) = signer();
    let again = CheckpointSigner::from_private_key(&signer.private_key()).unwrap();
    assert_eq!(again.verifier_key(), signer.verifier_key());
    let vkey = signer.verifier_key();
    let parts: Vec<&str> = vkey.splitn(3, '+').collect();
    assert_eq!(parts[0], ORIGIN);
    assert!(
        parts[1].len() == 8 && parts[1].chars().all(|c| c.is_ascii_hexdigit()),
        "{vkey}"
    );
}

#[test]
fn every_alteration_of_a_signed_checkpoint_is_caught() {
    let (signer, verifier) = signer();
    let note = signer.sign(&checkpoint(42));
    let root_line = note.lines().nth(2).unwrap().to_owned();
    let other_root = checkpoint(43).body().lines().nth(2).unwrap().to_owned();
    let altered = [
        ("size changed", note.replacen("\n42\n", "\n43\n", 1)),
        ("root replaced", note.replacen(&root_line, &other_root, 1)),
        ("origin changed", note.replacen(ORIGIN, "another-log", 1)),
        (
            "chain head changed",
            note.replacen("chain-head ", "chain-head A", 1),
        ),
        (
            "body line added",
            note.replacen("\n\n", "\nextra line\n\n", 1),
        ),
    ];
    for (what, text) in altered {
        let result = verifier.verify(&text);
        assert!(result.is_err(), "{what} was accepted");
    }
    // Signed by a different key that claims the same name.
    let impostor = CheckpointSigner::generate(ORIGIN).unwrap();
    let forged = impostor.sign(&checkpoint(42));
    assert_eq!(
        verifier.verify(&forged),
        Err(CheckpointError::NotSignedByKey(ORIGIN.into()))
    );
    // The genuine signature line grafted onto another body.
    let signature_line = note.lines().last().unwrap();
    let other_body = checkpoint(7).body();
    let grafted = format!("{other_body}\n{signature_line}\n");
    assert_eq!(
        verifier.verify(&grafted),
        Err(CheckpointError::BadSignature(ORIGIN.into()))
    );
    // No signatures at all, or not a note.
    assert!(verifier.verify(&checkpoint(42).body()).is_err());
    assert!(verifier.verify("").is_err());
}

#[test]
fn malformed_keys_are_refused_with_a_reason() {
    let (signer, _) = signer();
    let vkey = signer.verifier_key();
    let mut parts: Vec<String> = vkey.split('+').map(str::to_owned).collect();
    parts[1] = "00000000".into();
    for bad in [
        "",
        "name-only",
        "a+b",
        &parts.join("+"),
        &format!("PRIVATE+KEY+{vkey}"),
    ] {
        assert!(
            CheckpointVerifier::from_verifier_key(bad).is_err(),
            "{bad:?}"
        );
    }
    assert!(CheckpointSigner::from_private_key(&vkey).is_err());
    assert!(CheckpointSigner::generate("has space").is_err());
}

#[test]
fn digests_print_as_hex() {
    assert_eq!(Sha256Digest([0xab; 32]).to_string(), "ab".repeat(32));
}
