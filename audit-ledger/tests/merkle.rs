//! The Merkle tree against the RFC 6962 / Certificate Transparency known answers, an
//! independent naive implementation, and a corruption matrix for every proof.

use sha2::{Digest, Sha256};
use spr_audit_ledger::merkle::{
    empty_root, node_hash, verify_consistency, verify_inclusion, MerkleTree, ProofError,
};
use spr_audit_ledger::{leaf_hash, Sha256Digest};

fn h(hex_text: &str) -> Sha256Digest {
    Sha256Digest(hex::decode(hex_text).unwrap().try_into().unwrap())
}

/// The eight leaves of the Certificate Transparency reference tree.
const CT_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
/// Its published tree heads for sizes 1 to 8.
const CT_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn ct_tree() -> MerkleTree {
    let mut tree = MerkleTree::new();
    for leaf in CT_LEAVES {
        tree.push(leaf_hash(&hex::decode(leaf).unwrap()));
    }
    tree
}

fn tree_of(n: u64) -> MerkleTree {
    let mut tree = MerkleTree::new();
    for i in 0..n {
        tree.push(leaf_hash(&i.to_be_bytes()));
    }
    tree
}

/// MTH written straight from RFC 6962 §2.1, with no stored subtrees.
fn naive_root(leaves: &[Sha256Digest]) -> Sha256Digest {
    match leaves.len() {
        0 => Sha256Digest(Sha256::digest(b"").into()),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

#[test]
fn tree_heads_match_the_published_rfc_6962_roots() {
    let tree = ct_tree();
    assert_eq!(tree.root(0).unwrap(), empty_root());
    assert_eq!(
        empty_root(),
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    for (size, root) in CT_ROOTS.iter().enumerate() {
        assert_eq!(
            tree.root(size as u64 + 1).unwrap(),
            h(root),
            "size {}",
            size + 1
        );
    }
}

#[test]
fn proofs_match_the_published_certificate_transparency_vectors() {
    let tree = ct_tree();
    let inclusion: [(u64, u64, &[&str]); 3] = [
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (0, 1, &[]),
    ];
    for (index, size, expected) in inclusion {
        let proof = tree.inclusion_proof(index, size).unwrap();
        assert_eq!(
            proof,
            expected.iter().map(|e| h(e)).collect::<Vec<_>>(),
            "inclusion {index}/{size}"
        );
        let root = tree.root(size).unwrap();
        assert!(verify_inclusion(
            &tree.leaf(index).unwrap(),
            index,
            size,
            &proof,
            &root
        ));
    }
    let consistency: [(u64, u64, &[&str]); 2] = [
        (
            2,
            8,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (first, second, expected) in consistency {
        let proof = tree.consistency_proof(first, second).unwrap();
        assert_eq!(
            proof,
            expected.iter().map(|e| h(e)).collect::<Vec<_>>(),
            "consistency {first}->{second}"
        );
        let (a, b) = (tree.root(first).unwrap(), tree.root(second).unwrap());
        assert!(verify_consistency(first, second, &a, &b, &proof));
    }
}

#[test]
fn every_root_matches_a_naive_rfc_implementation_and_every_proof_verifies_up_to_70_leaves() {
    let tree = tree_of(70);
    let leaves: Vec<_> = (0..70).map(|i| tree.leaf(i).unwrap()).collect();
    for size in 0..=70u64 {
        let root = tree.root(size).unwrap();
        assert_eq!(root, naive_root(&leaves[..size as usize]), "root of {size}");
        for index in 0..size {
            let proof = tree.inclusion_proof(index, size).unwrap();
            assert!(
                verify_inclusion(&leaves[index as usize], index, size, &proof, &root),
                "{index}/{size}"
            );
        }
        for first in 0..=size {
            let proof = tree.consistency_proof(first, size).unwrap();
            assert!(
                verify_consistency(first, size, &tree.root(first).unwrap(), &root, &proof),
                "{first}->{size}"
            );
        }
    }
}

/// Every way of altering a valid inclusion proof that the ledger's auditors must catch.
#[test]
fn every_corrupted_inclusion_proof_fails() {
    let tree = tree_of(40);
    for size in 1..=40u64 {
        let root = tree.root(size).unwrap();
        let wrong_root = tree.root(size - 1).unwrap_or(root);
        for index in 0..size {
            let leaf = tree.leaf(index).unwrap();
            let proof = tree.inclusion_proof(index, size).unwrap();
            let fails = |leaf: &Sha256Digest,
                         i: u64,
                         n: u64,
                         p: &[Sha256Digest],
                         r: &Sha256Digest,
                         what: &str| {
                assert!(
                    !verify_inclusion(leaf, i, n, p, r),
                    "{what} verified for {index}/{size}"
                );
            };
            if index + 1 < size {
                fails(&leaf, index + 1, size, &proof, &root, "index + 1");
            }
            if index > 0 {
                fails(&leaf, index - 1, size, &proof, &root, "index - 1");
            }
            if size > 1 {
                fails(&leaf, index, size * 2, &proof, &root, "size x 2");
                if index < size / 2 {
                    fails(&leaf, index, size / 2, &proof, &root, "size / 2");
                }
                fails(
                    &leaf_hash(b"someone else"),
                    index,
                    size,
                    &proof,
                    &root,
                    "wrong leaf",
                );
                fails(&leaf, index, size, &proof, &wrong_root, "wrong root");
            }
            for (element, _) in proof.iter().enumerate() {
                for bit in [0usize, 77, 255] {
                    let mut flipped = proof.clone();
                    flipped[element].0[bit / 8] ^= 1 << (bit % 8);
                    fails(&leaf, index, size, &flipped, &root, "flipped bit");
                }
            }
            let mut longer = proof.clone();
            longer.push(leaf_hash(b"extra"));
            fails(&leaf, index, size, &longer, &root, "element added");
            if !proof.is_empty() {
                fails(
                    &leaf,
                    index,
                    size,
                    &proof[..proof.len() - 1],
                    &root,
                    "element removed / truncated",
                );
                fails(
                    &leaf,
                    index,
                    size,
                    &proof[1..],
                    &root,
                    "first element removed",
                );
            }
        }
    }
}

/// Every way of altering a valid consistency proof that a checkpoint verifier must catch.
#[test]
fn every_corrupted_consistency_proof_fails() {
    let tree = tree_of(40);
    for second in 2..=40u64 {
        for first in 1..second {
            let (a, b) = (tree.root(first).unwrap(), tree.root(second).unwrap());
            let proof = tree.consistency_proof(first, second).unwrap();
            let fails = |m: u64,
                         n: u64,
                         a: &Sha256Digest,
                         b: &Sha256Digest,
                         p: &[Sha256Digest],
                         what: &str| {
                assert!(
                    !verify_consistency(m, n, a, b, p),
                    "{what} verified for {first}->{second}"
                );
            };
            fails(
                second,
                first,
                &b,
                &a,
                &proof,
                "swapped sizes and roots (a smaller new size)",
            );
            fails(first, second, &b, &a, &proof, "swapped roots");
            fails(
                first,
                second,
                &a,
                &leaf_hash(b"forged"),
                &proof,
                "wrong new root",
            );
            fails(
                first,
                second,
                &leaf_hash(b"forged"),
                &b,
                &proof,
                "wrong old root",
            );
            if first + 1 < second {
                fails(first + 1, second, &a, &b, &proof, "old size + 1");
            }
            fails(first, second * 2, &a, &b, &proof, "new size x 2");
            for (element, _) in proof.iter().enumerate() {
                let mut flipped = proof.clone();
                flipped[element].0[13] ^= 0x20;
                fails(first, second, &a, &b, &flipped, "flipped bit");
            }
            let mut longer = proof.clone();
            longer.push(leaf_hash(b"extra"));
            fails(first, second, &a, &b, &longer, "element added");
            fails(
                first,
                second,
                &a,
                &b,
                &proof[..proof.len() - 1],
                "truncated",
            );
            fails(first, second, &a, &b, &[], "empty proof");
        }
    }
}

#[test]
fn proofs_beyond_the_tree_are_refused() {
    let tree = tree_of(5);
    assert!(tree.inclusion_proof(5, 5).is_err());
    assert!(tree.inclusion_proof(0, 6).is_err());
    assert_eq!(
        tree.consistency_proof(4, 3),
        Err(ProofError::SizesReversed {
            first: 4,
            second: 3
        }),
        "a reversed pair says so, not that the ledger holds 3 entries"
    );
    assert_eq!(
        tree.consistency_proof(1, 6),
        Err(ProofError::SizeOutOfRange {
            requested: 6,
            available: 5
        })
    );
    assert!(tree.root(6).is_err());
}

#[test]
fn the_streaming_root_equals_the_stored_tree_root_at_every_size() {
    let tree = tree_of(130);
    let mut streaming = spr_audit_ledger::merkle::RootAccumulator::default();
    assert_eq!(streaming.root(), tree.root(0).unwrap());
    for i in 0..130 {
        streaming.push(tree.leaf(i).unwrap());
        assert_eq!(
            streaming.root(),
            tree.root(i + 1).unwrap(),
            "size {}",
            i + 1
        );
    }
}
