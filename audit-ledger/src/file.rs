//! The ledger file: a header, then framed entries, append-only.
//!
//! Entry: `leaf length (u32 big-endian) | leaf bytes | h_i (32 bytes)`.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use spr_schemas::{AccessEvent, EventId};

use crate::digest::{chain_hash, leaf_hash, Sha256Digest, GENESIS};
use crate::merkle::MerkleTree;

/// The 8 bytes that start every ledger file (format version 1).
pub const HEADER: &[u8; 8] = b"SPRLEDG1";
/// The largest leaf accepted; an access event is a few hundred bytes.
pub const MAX_LEAF_LEN: u32 = 1 << 20;

/// Why the ledger could not be opened or appended to.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Reading or writing the file failed.
    #[error("ledger file {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error (in the message, not the error's source, so it is said once).
        error: std::io::Error,
    },
    /// The file is not a ledger of this version.
    #[error("{0} is not an SPR ledger (it does not start with SPRLEDG1)")]
    NotALedger(PathBuf),
    /// A complete entry fails verification: the file was altered. Never appended to.
    #[error("ledger {path} fails verification at index {index}: {reason}; run `spr-audit verify` and investigate before appending")]
    Tampered {
        /// The file.
        path: PathBuf,
        /// First bad entry.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// A leaf to append is not a valid access event.
    #[error("not an access event: {0}")]
    NotAnAccessEvent(String),
    /// Another process holds the ledger open for appending.
    #[error("ledger {0} is in use by another process (another spr-ledger?); one service appends to a ledger at a time")]
    InUse(PathBuf),
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Appended.
    Appended {
        /// The entry's index.
        index: u64,
        /// When the access happened (the access event's `occurred_at`, ms since epoch).
        occurred_at: i64,
    },
    /// An entry with the same access event id is already in the ledger.
    Duplicate,
}

/// An open ledger, positioned at its end, ready to append.
#[derive(Debug)]
pub struct Ledger {
    file: File,
    path: PathBuf,
    head: Sha256Digest,
    tree: MerkleTree,
    ids: HashSet<EventId>,
}

impl Ledger {
    /// Opens (or creates) the ledger at `path`, verifies it from genesis, and cuts off
    /// a torn last entry left by a crash mid-write. Refuses a ledger that fails
    /// verification anywhere else, and one that another process has open to append
    /// (an exclusive lock on the file, held while the ledger is open).
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        Self::open_signed(path, 0)
    }

    /// [`Self::open`] for a ledger of which a checkpoint covering `signed_entries` was
    /// signed: those entries were synced before they were signed, so a failure among
    /// them is tampering, never a torn tail to cut off, whatever `.committed` says.
    pub fn open_signed(path: &Path, signed_entries: u64) -> Result<Self, LedgerError> {
        let io = |source| LedgerError::Io {
            path: path.to_owned(),
            error: source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LedgerError::InUse(path.to_owned()))
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(io(source)),
        }
        if file.metadata().map_err(io)?.len() == 0 {
            let committed = read_committed_len(path)?;
            if committed != u64::MAX && committed > HEADER.len() as u64 {
                return Err(LedgerError::Tampered {
                    path: path.to_owned(),
                    index: 0,
                    reason: format!("the file is empty (or was missing) but {committed} bytes were synced: the ledger was removed or emptied"),
                });
            }
            if signed_entries > 0 {
                return Err(LedgerError::Tampered {
                    path: path.to_owned(),
                    index: 0,
                    reason: format!("the file is empty (or was missing) but a checkpoint of {signed_entries} entries was signed"),
                });
            }
            file.write_all(HEADER).map_err(io)?;
            file.sync_all().map_err(io)?;
            write_committed_len(path, HEADER.len() as u64)?;
        }
        let mut ids = HashSet::new();
        let mut tree = MerkleTree::new();
        let scan = crate::verify::scan(path, |leaf, leaf_hash| {
            let event = AccessEvent::from_avro(leaf)
                .map_err(|e| format!("leaf is not an access event: {e}"))?;
            ids.insert(event.event_id);
            tree.push(leaf_hash);
            Ok(())
        })?;
        let committed = read_committed_len(path)?;
        let length = file.metadata().map_err(io)?.len();
        if committed != u64::MAX && length < committed {
            return Err(LedgerError::Tampered {
                path: path.to_owned(),
                index: scan.report.entries,
                reason: format!("the file is {length} bytes but {committed} bytes were synced: entries were removed from its end"),
            });
        }
        if let Some(failure) = scan.report.first_failure {
            // Bytes past the last synced length were never acknowledged (their source
            // offsets were not committed), so a crash may have torn them; anything before
            // it was durable and must verify.
            if failure.file_offset < committed || failure.index < signed_entries {
                return Err(LedgerError::Tampered {
                    path: path.to_owned(),
                    index: failure.index,
                    reason: failure.reason,
                });
            }
            tracing::warn!(index = failure.index, reason = %failure.reason, "cutting off an unsynced, torn tail");
            file.set_len(scan.valid_len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok(Self {
            file,
            path: path.to_owned(),
            head: scan.report.head,
            tree,
            ids,
        })
    }

    /// Appends an access event's canonical bytes unless its event id is already present.
    /// The entry is durable only after [`Ledger::sync`].
    pub fn append_access_event(&mut self, leaf: &[u8]) -> Result<AppendOutcome, LedgerError> {
        let event = AccessEvent::from_avro(leaf)
            .map_err(|e| LedgerError::NotAnAccessEvent(e.to_string()))?;
        if leaf.len() > MAX_LEAF_LEN as usize {
            return Err(LedgerError::NotAnAccessEvent(format!(
                "{} bytes is over the {MAX_LEAF_LEN}-byte limit",
                leaf.len()
            )));
        }
        if self.ids.contains(&event.event_id) {
            return Ok(AppendOutcome::Duplicate);
        }
        let this_leaf = leaf_hash(leaf);
        let head = chain_hash(&self.head, &this_leaf);
        let mut frame = Vec::with_capacity(4 + leaf.len() + 32);
        frame.extend_from_slice(&(leaf.len() as u32).to_be_bytes());
        frame.extend_from_slice(leaf);
        frame.extend_from_slice(&head.0);
        self.file
            .write_all(&frame)
            .map_err(|source| LedgerError::Io {
                path: self.path.clone(),
                error: source,
            })?;
        self.ids.insert(event.event_id);
        self.head = head;
        self.tree.push(this_leaf);
        Ok(AppendOutcome::Appended {
            index: self.tree.len() - 1,
            occurred_at: event.occurred_at,
        })
    }

    /// Makes every appended entry durable (fdatasync), then records the synced length
    /// in the `.committed` side file: the group commit point.
    pub fn sync(&mut self) -> Result<(), LedgerError> {
        let io = |source| LedgerError::Io {
            path: self.path.clone(),
            error: source,
        };
        self.file.sync_data().map_err(io)?;
        let len = self.file.metadata().map_err(io)?.len();
        write_committed_len(&self.path, len)
    }

    /// The chain value after the last entry.
    pub fn head(&self) -> Sha256Digest {
        self.head
    }

    /// How many entries the ledger holds.
    pub fn len(&self) -> u64 {
        self.tree.len()
    }

    /// Whether the ledger has no entries.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// The RFC 6962 Merkle tree over the ledger's entries, for tree heads and proofs.
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }
}

/// Reads exactly `buf.len()` bytes, or reports how many were available (0 at a clean end).
pub(crate) fn read_full(reader: &mut BufReader<File>, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The side file holding the ledger's last synced length in bytes.
fn committed_path(ledger: &Path) -> PathBuf {
    let mut name = ledger.as_os_str().to_owned();
    name.push(".committed");
    PathBuf::from(name)
}

/// Records the synced length: write a temporary file, fsync it, rename it over the
/// side file, fsync the directory.
fn write_committed_len(ledger: &Path, len: u64) -> Result<(), LedgerError> {
    let committed = committed_path(ledger);
    let io = |source| LedgerError::Io {
        path: committed.clone(),
        error: source,
    };
    let temporary = committed.with_extension("committed.tmp");
    std::fs::write(&temporary, format!("{len}\n")).map_err(io)?;
    File::open(&temporary)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&temporary, &committed).map_err(io)?;
    let dir = committed
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

/// The last synced length. Without the side file every byte counts as synced, so
/// damage anywhere is refused rather than cut off.
fn read_committed_len(ledger: &Path) -> Result<u64, LedgerError> {
    let path = committed_path(ledger);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|_| LedgerError::Io {
            path,
            error: std::io::Error::new(
                ErrorKind::InvalidData,
                format!("expected a byte count, found {text:?}"),
            ),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(u64::MAX),
        Err(source) => Err(LedgerError::Io {
            path,
            error: source,
        }),
    }
}

pub(crate) fn genesis() -> Sha256Digest {
    GENESIS
}
