//! Verification from genesis: recompute every chain value and compare.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use crate::digest::{chain_hash, leaf_hash, Sha256Digest};
use crate::file::{genesis, read_full, LedgerError, HEADER, MAX_LEAF_LEN};
use crate::merkle::{MerkleTree, RootAccumulator};

/// The first entry that does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyFailure {
    /// Index of the entry (0 is the first).
    pub index: u64,
    /// Byte offset in the file where that entry starts.
    pub file_offset: u64,
    /// What is wrong, in words.
    pub reason: String,
}

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries that verified (all of them when there is no failure).
    pub entries: u64,
    /// The chain value after the last verified entry.
    pub head: Sha256Digest,
    /// The RFC 6962 tree head of the verified entries.
    pub root: Sha256Digest,
    /// The first entry that does not verify, if any.
    pub first_failure: Option<VerifyFailure>,
}

/// Walks the ledger at `path` from genesis, recomputing `h_i = SHA-256(h_{i-1} || SHA-256(0x00 || leaf_i))`
/// for every entry, and stops at the first one whose frame is incomplete or whose stored
/// chain value differs.
pub fn verify_from_genesis(path: &Path) -> Result<VerifyReport, LedgerError> {
    scan(path, |_, _| Ok(())).map(|s| s.report)
}

/// Verifies the ledger at `path` from genesis and returns its Merkle tree too (for
/// proofs and checkpoints), without changing the file.
pub fn load_tree(path: &Path) -> Result<(VerifyReport, MerkleTree), LedgerError> {
    let mut tree = MerkleTree::new();
    let report = scan(path, |_, leaf_hash| {
        tree.push(leaf_hash);
        Ok(())
    })?
    .report;
    Ok((report, tree))
}

/// The leaves of the verified prefix of the ledger at `path`, in order.
pub fn load_leaves(path: &Path) -> Result<(VerifyReport, Vec<Vec<u8>>), LedgerError> {
    let mut leaves = Vec::new();
    let report = scan(path, |leaf, _| {
        leaves.push(leaf.to_vec());
        Ok(())
    })?
    .report;
    Ok((report, leaves))
}

/// A verification walk plus the length of the file's verified prefix.
pub(crate) struct Scan {
    pub(crate) report: VerifyReport,
    pub(crate) valid_len: u64,
}

/// Walks the file, calling `on_leaf` with each verified leaf and its leaf hash; an `Err`
/// from it is a failure at that index.
pub(crate) fn scan(
    path: &Path,
    mut on_leaf: impl FnMut(&[u8], Sha256Digest) -> Result<(), String>,
) -> Result<Scan, LedgerError> {
    let io = |source| LedgerError::Io {
        path: path.to_owned(),
        source,
    };
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path).map_err(io)?);
    let mut header = [0u8; 8];
    if read_full(&mut reader, &mut header).map_err(io)? != 8 || &header != HEADER {
        return Err(LedgerError::NotALedger(path.to_owned()));
    }
    let mut head = genesis();
    let mut tree = RootAccumulator::default();
    let mut index = 0u64;
    let mut offset = HEADER.len() as u64;
    let mut leaf = Vec::new();
    let fail = |index,
                file_offset,
                reason: String,
                (head, tree): (Sha256Digest, &RootAccumulator),
                valid_len| Scan {
        report: VerifyReport {
            entries: index,
            head,
            root: tree.root(),
            first_failure: Some(VerifyFailure {
                index,
                file_offset,
                reason,
            }),
        },
        valid_len,
    };
    loop {
        let mut len_bytes = [0u8; 4];
        match read_full(&mut reader, &mut len_bytes).map_err(io)? {
            0 => break,
            4 => {}
            n => {
                return Ok(fail(
                    index,
                    offset,
                    format!("entry is incomplete: the file ends {n} bytes into its 4-byte length"),
                    (head, &tree),
                    offset,
                ))
            }
        }
        let len = u32::from_be_bytes(len_bytes);
        if len > MAX_LEAF_LEN {
            return Ok(fail(index, offset, format!("entry length {len} is over the {MAX_LEAF_LEN}-byte limit (altered length field?)"), (head, &tree), offset));
        }
        leaf.resize(len as usize, 0);
        let got = read_full(&mut reader, &mut leaf).map_err(io)?;
        let mut stored = [0u8; 32];
        let got_hash = if got == leaf.len() {
            read_full(&mut reader, &mut stored).map_err(io)?
        } else {
            0
        };
        if got < leaf.len() || got_hash < 32 {
            let have = got + got_hash;
            let want = len as usize + 32;
            return Ok(fail(
                index,
                offset,
                format!("entry is incomplete: the file ends {have} of {want} bytes into it"),
                (head, &tree),
                offset,
            ));
        }
        let this_leaf = leaf_hash(&leaf);
        let expected = chain_hash(&head, &this_leaf);
        if expected.0 != stored {
            let reason = format!(
                "chain value mismatch: stored {}, recomputed {expected} (leaf, length or stored value altered)",
                hex::encode(stored)
            );
            return Ok(fail(index, offset, reason, (head, &tree), offset));
        }
        if let Err(reason) = on_leaf(&leaf, this_leaf) {
            return Ok(fail(index, offset, reason, (head, &tree), offset));
        }
        head = expected;
        tree.push(this_leaf);
        index += 1;
        offset += 4 + u64::from(len) + 32;
    }
    Ok(Scan {
        report: VerifyReport {
            entries: index,
            head,
            root: tree.root(),
            first_failure: None,
        },
        valid_len: offset,
    })
}
