//! `spr-projector rebuild`: a fresh projection from offset 0 to the end of the log.
//!
//! **End of the log.** tansu's high watermark is below the true end of a batched
//! partition, so it cannot say where the log ends. The rebuild therefore stops when no
//! record has arrived for `idle` (default 3 s; the consumer's fetches return within
//! 10 ms) *and* every owned partition has been read at least up to the high watermark
//! the broker reports (a lower bound on tansu, exact on Apache Kafka). Records
//! published while the rebuild runs are included as long as they keep arriving; the
//! projector started on the rebuilt database afterwards continues from its stored offsets.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::monitor::Monitor;
use crate::store::{ProjectionStore, StoreError};
use crate::worker::{run_worker_with, RunOptions, WorkerConfig, WorkerError};

/// Why a rebuild did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The target directory already holds something.
    #[error("{0} is not empty; a rebuild writes into a new or empty directory")]
    NotEmpty(String),
    /// The target directory could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The projection store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Consuming or projecting failed.
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

/// Projects the owned partitions of the log from offset 0 into a new database at `db`
/// until the end of the log (see the module docs), then flushes it and returns it.
/// `monitor` counts progress as it goes (for a progress bar).
pub async fn rebuild(
    config: WorkerConfig,
    db: &Path,
    idle: Duration,
    monitor: Arc<Monitor>,
) -> Result<ProjectionStore, RebuildError> {
    let io = |source| RebuildError::Io {
        path: db.display().to_string(),
        source,
    };
    if db.exists() && std::fs::read_dir(db).map_err(io)?.next().is_some() {
        return Err(RebuildError::NotEmpty(db.display().to_string()));
    }
    // Unsynced batches for speed; the flush at the end makes the result durable.
    let store = Arc::new(ProjectionStore::open(db, false)?);
    let options = RunOptions {
        monitor,
        checkpoints: None,
        stop_when_idle: Some(idle),
        accept_log_gaps: false,
    };
    run_worker_with(config, Arc::clone(&store), options, std::future::pending()).await?;
    store.flush()?;
    Ok(Arc::into_inner(store).expect("the worker has finished with the store"))
}
