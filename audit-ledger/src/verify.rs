//! Verification from genesis: recompute every chain value and compare.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
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
    /// True when the entry is merely cut short (a write in progress or torn by a crash),
    /// false when it is complete but does not verify.
    pub incomplete: bool,
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

/// Follows a ledger file as it grows: each call reads, verifies and returns the entries
/// appended since the last one, continuing the same hash chain and Merkle tree.
#[derive(Debug)]
pub struct LedgerFollower {
    path: std::path::PathBuf,
    position: ScanPosition,
    tree: MerkleTree,
}

impl LedgerFollower {
    /// A follower of the ledger at `path`, before its first entry.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            position: ScanPosition::genesis(),
            tree: MerkleTree::new(),
        }
    }

    /// The leaves appended since the last call, verified. An entry still being written is
    /// left for the next call; a missing file is an empty ledger; an entry that does not
    /// verify is an error naming it.
    pub fn read_new(&mut self) -> Result<Vec<Vec<u8>>, LedgerError> {
        if !self.path.exists() {
            return Ok(Vec::new());
        }
        let mut leaves = Vec::new();
        let tree = &mut self.tree;
        let scan = scan_from(&self.path, self.position.clone(), |leaf, leaf_hash| {
            leaves.push(leaf.to_vec());
            tree.push(leaf_hash);
            Ok(())
        })?;
        if let Some(failure) = scan.report.first_failure.filter(|f| !f.incomplete) {
            return Err(LedgerError::Tampered {
                path: self.path.clone(),
                index: failure.index,
                reason: failure.reason,
            });
        }
        self.position = scan.end;
        Ok(leaves)
    }

    /// The Merkle tree of every entry read so far.
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }
}

/// Where a walk of the ledger stands: after `entries` verified entries, ending at byte
/// `offset`, with the chain value and tree head so far. A walk can resume from here.
#[derive(Debug, Clone)]
pub(crate) struct ScanPosition {
    offset: u64,
    entries: u64,
    head: Sha256Digest,
    tree: RootAccumulator,
}

impl ScanPosition {
    /// Before the first entry.
    pub(crate) fn genesis() -> Self {
        Self {
            offset: HEADER.len() as u64,
            entries: 0,
            head: genesis(),
            tree: RootAccumulator::default(),
        }
    }

    fn report(&self, first_failure: Option<(String, bool)>) -> VerifyReport {
        VerifyReport {
            entries: self.entries,
            head: self.head,
            root: self.tree.root(),
            first_failure: first_failure.map(|(reason, incomplete)| VerifyFailure {
                index: self.entries,
                file_offset: self.offset,
                reason,
                incomplete,
            }),
        }
    }
}

/// A verification walk: the report, the length of the verified prefix, and where it ended.
pub(crate) struct Scan {
    pub(crate) report: VerifyReport,
    pub(crate) valid_len: u64,
    pub(crate) end: ScanPosition,
}

/// Walks the file from genesis; see [`scan_from`].
pub(crate) fn scan(
    path: &Path,
    on_leaf: impl FnMut(&[u8], Sha256Digest) -> Result<(), String>,
) -> Result<Scan, LedgerError> {
    scan_from(path, ScanPosition::genesis(), on_leaf)
}

/// Walks the file from `position`, calling `on_leaf` with each verified leaf and its
/// leaf hash; an `Err` from it is a failure at that index. Stops at the first entry that
/// is incomplete or does not verify.
pub(crate) fn scan_from(
    path: &Path,
    mut position: ScanPosition,
    mut on_leaf: impl FnMut(&[u8], Sha256Digest) -> Result<(), String>,
) -> Result<Scan, LedgerError> {
    let io = |source| LedgerError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut header = [0u8; 8];
    if file.read_exact(&mut header).is_err() || &header != HEADER {
        return Err(LedgerError::NotALedger(path.to_owned()));
    }
    file.seek(SeekFrom::Start(position.offset)).map_err(io)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut leaf = Vec::new();
    let failure = loop {
        let mut len_bytes = [0u8; 4];
        match read_full(&mut reader, &mut len_bytes).map_err(io)? {
            0 => break None,
            4 => {}
            n => {
                break Some((
                    format!("entry is incomplete: the file ends {n} bytes into its 4-byte length"),
                    true,
                ))
            }
        }
        let len = u32::from_be_bytes(len_bytes);
        if len > MAX_LEAF_LEN {
            break Some((
                format!("entry length {len} is over the {MAX_LEAF_LEN}-byte limit (altered length field?)"),
                false,
            ));
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
            let (have, want) = (got + got_hash, len as usize + 32);
            break Some((
                format!("entry is incomplete: the file ends {have} of {want} bytes into it"),
                true,
            ));
        }
        let this_leaf = leaf_hash(&leaf);
        let expected = chain_hash(&position.head, &this_leaf);
        if expected.0 != stored {
            let reason = format!(
                "chain value mismatch: stored {}, recomputed {expected} (leaf, length or stored value altered)",
                hex::encode(stored)
            );
            break Some((reason, false));
        }
        if let Err(reason) = on_leaf(&leaf, this_leaf) {
            break Some((reason, false));
        }
        position.head = expected;
        position.tree.push(this_leaf);
        position.entries += 1;
        position.offset += 4 + u64::from(len) + 32;
    };
    Ok(Scan {
        report: position.report(failure),
        valid_len: position.offset,
        end: position,
    })
}
