//! Online checkpoints of a running projection: `spr-projector run --checkpoint-dir DIR
//! --checkpoint-every-s N` writes `DIR/checkpoint-<ms since the epoch>` every N seconds
//! between batches and keeps the newest few. Restoring is starting a projector with
//! `--db` pointing at (a copy of) a checkpoint: it resumes from the offsets inside it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use spr_schemas::now_millis;
use tracing::{info, warn};

use crate::store::ProjectionStore;

/// Name prefix of every checkpoint directory.
const PREFIX: &str = "checkpoint-";

/// Where and how often a running worker checkpoints its projection.
#[derive(Debug, Clone)]
pub struct CheckpointSchedule {
    /// Directory that holds the checkpoints, one sub-directory each.
    pub dir: PathBuf,
    /// Time between checkpoints.
    pub every: Duration,
    /// How many checkpoints to keep (the oldest are deleted); at least one is kept.
    pub keep: usize,
}

impl CheckpointSchedule {
    /// Takes a checkpoint now and prunes old ones. A failure is logged, not returned:
    /// a missed checkpoint must not stall the projection.
    pub fn take(&self, store: &ProjectionStore) {
        let out = self.dir.join(format!("{PREFIX}{}", now_millis()));
        let result = std::fs::create_dir_all(&self.dir)
            .map_err(|e| e.to_string())
            .and_then(|()| store.checkpoint(&out).map_err(|e| e.to_string()))
            .and_then(|()| self.prune().map_err(|e| e.to_string()));
        match result {
            Ok(()) => info!(checkpoint = %out.display(), "checkpoint written"),
            Err(error) => warn!(%error, dir = %self.dir.display(), "checkpoint failed"),
        }
    }

    fn prune(&self) -> std::io::Result<()> {
        let mut existing = list_checkpoints(&self.dir)?;
        let excess = existing.len().saturating_sub(self.keep.max(1));
        for old in existing.drain(..excess) {
            std::fs::remove_dir_all(old)?;
        }
        Ok(())
    }
}

/// The checkpoints in `dir`, oldest first.
pub fn list_checkpoints(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found: Vec<(i64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let stamp = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.parse().ok());
        if let Some(stamp) = stamp {
            found.push((stamp, path));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, path)| path).collect())
}
