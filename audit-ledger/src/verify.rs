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
    verify_with_progress(path, |_| {})
}

/// [`verify_from_genesis`], calling `progress` with the number of entries verified so
/// far after every 65,536 of them (for progress bars on large ledgers).
pub fn verify_with_progress(
    path: &Path,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, LedgerError> {
    let mut verified = 0u64;
    scan(path, |_, _| {
        verified += 1;
        if verified.is_multiple_of(65_536) {
            progress(verified);
        }
        Ok(())
    })
    .map(|s| s.report)
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
    /// left for the next call; a missing file is an empty ledger until entries have been
    /// read; an entry that does not verify, a file shorter than what was read, or a file
    /// gone after entries were read is an error naming where.
    pub fn read_new(&mut self) -> Result<Vec<Vec<u8>>, LedgerError> {
        let removed = |reason: String| LedgerError::Tampered {
            path: self.path.clone(),
            index: self.position.entries,
            reason,
        };
        let length = match std::fs::metadata(&self.path) {
            Ok(metadata) => metadata.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.position.entries == 0 {
                    return Ok(Vec::new());
                }
                return Err(removed(format!(
                    "the ledger file is gone after {} entries were read and verified",
                    self.position.entries
                )));
            }
            Err(source) => {
                return Err(LedgerError::Io {
                    path: self.path.clone(),
                    error: source,
                })
            }
        };
        // A ledger being created is empty until its header is written: only a file
        // shorter than entries already read is a removal.
        if self.position.entries == 0 && length < HEADER.len() as u64 {
            return Ok(Vec::new());
        }
        if length < self.position.offset {
            return Err(removed(format!(
                "the file is {length} bytes, shorter than the {} bytes of the {} entries already read and verified: entries were removed from its end",
                self.position.offset, self.position.entries
            )));
        }
        let mut leaves = Vec::new();
        let tree = &mut self.tree;
        let scan = scan_from(&self.path, self.position.clone(), |leaf, leaf_hash| {
            leaves.push(leaf.to_vec());
            tree.push(leaf_hash);
            Ok(())
        })?;
        // The tree already holds every entry verified before a failure: move past them
        // either way, so a retry never adds them twice.
        self.position = scan.end;
        if let Some(failure) = scan.report.first_failure.filter(|f| !f.incomplete) {
            return Err(LedgerError::Tampered {
                path: self.path.clone(),
                index: failure.index,
                reason: failure.reason,
            });
        }
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

/// Frames read and leaf-hashed ahead of verification, in one shared buffer.
struct FrameBatch {
    bytes: Vec<u8>,
    frames: Vec<Frame>,
    /// Set on the last batch: `None` at a clean end, or why reading stopped.
    end: Option<Option<(String, bool)>>,
}

struct Frame {
    start: usize,
    len: usize,
    leaf_hash: Sha256Digest,
    stored: [u8; 32],
}

/// Reads frames in batches of up to 1,024, hashing each leaf, until the end of the file
/// or the first frame that is cut short or too long.
fn read_frame_batches(
    mut reader: BufReader<File>,
    sender: std::sync::mpsc::SyncSender<std::io::Result<FrameBatch>>,
) {
    loop {
        let mut batch = FrameBatch {
            bytes: Vec::with_capacity(1 << 18),
            frames: Vec::with_capacity(1024),
            end: None,
        };
        while batch.frames.len() < 1024 && batch.end.is_none() {
            match read_frame(&mut reader, &mut batch.bytes) {
                Ok(Ok(Some((start, len, stored)))) => {
                    let leaf_hash = leaf_hash(&batch.bytes[start..start + len]);
                    batch.frames.push(Frame {
                        start,
                        len,
                        leaf_hash,
                        stored,
                    });
                }
                Ok(Ok(None)) => batch.end = Some(None),
                Ok(Err(stop)) => batch.end = Some(Some(stop)),
                Err(e) => {
                    let _ = sender.send(Err(e));
                    return;
                }
            }
        }
        let last = batch.end.is_some();
        if sender.send(Ok(batch)).is_err() || last {
            return;
        }
    }
}

/// Reads one frame, appending its leaf to `bytes`: `Ok(Ok(Some((start, len, stored))))`,
/// `Ok(Ok(None))` at a clean end, or `Ok(Err((reason, incomplete)))` for a bad frame.
#[allow(clippy::type_complexity)]
fn read_frame(
    reader: &mut BufReader<File>,
    bytes: &mut Vec<u8>,
) -> std::io::Result<Result<Option<(usize, usize, [u8; 32])>, (String, bool)>> {
    let mut len_bytes = [0u8; 4];
    match read_full(reader, &mut len_bytes)? {
        0 => return Ok(Ok(None)),
        4 => {}
        n => {
            return Ok(Err((
                format!("entry is incomplete: the file ends {n} bytes into its 4-byte length"),
                true,
            )))
        }
    }
    let len = u32::from_be_bytes(len_bytes);
    if len > MAX_LEAF_LEN {
        let reason = format!(
            "entry length {len} is over the {MAX_LEAF_LEN}-byte limit (altered length field?)"
        );
        return Ok(Err((reason, false)));
    }
    let start = bytes.len();
    bytes.resize(start + len as usize, 0);
    let got = read_full(reader, &mut bytes[start..])?;
    let mut stored = [0u8; 32];
    let got_hash = if got == len as usize {
        read_full(reader, &mut stored)?
    } else {
        0
    };
    if got < len as usize || got_hash < 32 {
        let (have, want) = (got + got_hash, len as usize + 32);
        return Ok(Err((
            format!("entry is incomplete: the file ends {have} of {want} bytes into it"),
            true,
        )));
    }
    Ok(Ok(Some((start, len as usize, stored))))
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
        error: source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut header = [0u8; 8];
    match file.read_exact(&mut header) {
        // A directory opens, and fails only when read: say what it is.
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => return Err(io(e)),
        Ok(()) if &header == HEADER => {}
        _ => return Err(LedgerError::NotALedger(path.to_owned())),
    }
    file.seek(SeekFrom::Start(position.offset)).map_err(io)?;
    let reader = BufReader::with_capacity(1 << 20, file);
    // Reading and leaf hashing run on a second thread, ahead of the sequential chain
    // and tree; the channel is bounded so memory stays small.
    let failure = std::thread::scope(|scope| -> Result<_, LedgerError> {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<std::io::Result<FrameBatch>>(4);
        scope.spawn(move || read_frame_batches(reader, sender));
        let failure = 'walk: loop {
            let batch = match receiver.recv() {
                Ok(Ok(batch)) => batch,
                Ok(Err(e)) => return Err(io(e)),
                Err(_) => break None,
            };
            for frame in &batch.frames {
                let leaf = &batch.bytes[frame.start..frame.start + frame.len];
                let expected = chain_hash(&position.head, &frame.leaf_hash);
                if expected.0 != frame.stored {
                    let reason = format!(
                        "chain value mismatch: stored {}, recomputed {expected} (leaf, length or stored value altered)",
                        hex::encode(frame.stored)
                    );
                    break 'walk Some((reason, false));
                }
                if let Err(reason) = on_leaf(leaf, frame.leaf_hash) {
                    break 'walk Some((reason, false));
                }
                position.head = expected;
                position.tree.push(frame.leaf_hash);
                position.entries += 1;
                position.offset += 4 + frame.len as u64 + 32;
            }
            if let Some(end) = batch.end {
                break end;
            }
        };
        // Unblocks the reader if the walk stopped early.
        drop(receiver);
        Ok(failure)
    })?;
    Ok(Scan {
        report: position.report(failure),
        valid_len: position.offset,
        end: position,
    })
}
