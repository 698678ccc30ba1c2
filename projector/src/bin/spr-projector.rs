//! `spr-projector`: runs a projector worker, or inspects its RocksDB.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use spr_projector::{run_worker, ProjectionStore, WorkerConfig};

/// Materialises per-patient timelines from the log into RocksDB.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// RocksDB directory of this projector instance.
    #[arg(
        long,
        env = "SPR_PROJECTION_DB",
        default_value = ".spr-local/projection",
        global = true
    )]
    db: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Consumes the patient-events topic and projects it until interrupted (Ctrl-C).
    Run {
        /// Kafka bootstrap servers.
        #[arg(long, env = "SPR_BOOTSTRAP", default_value = "127.0.0.1:9092")]
        bootstrap: String,
        /// Consumer group under which progress is committed, for lag monitoring tools.
        #[arg(long, env = "SPR_PROJECTOR_GROUP", default_value = "spr-projector")]
        group: String,
        /// Partitions this instance owns, comma-separated (default: all). Each instance
        /// owns a fixed set of partitions and the RocksDB state built from them.
        #[arg(long, env = "SPR_PROJECTOR_PARTITIONS", value_delimiter = ',')]
        partitions: Option<Vec<i32>>,
        /// Largest number of records written in one RocksDB batch.
        #[arg(long, default_value_t = 5_000)]
        max_batch: usize,
        /// Longest a batch waits to fill, in milliseconds.
        #[arg(long, default_value_t = 50)]
        max_batch_wait_ms: u64,
        /// Skip fsync on each batch (a power cut may then lose the last batches;
        /// they are re-projected from the log, never duplicated).
        #[arg(long)]
        no_sync: bool,
    },
    /// Prints the SHA-256 content digest and event count of the projection.
    Digest,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    spr_producers::init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            bootstrap,
            group,
            partitions,
            max_batch,
            max_batch_wait_ms,
            no_sync,
        } => {
            let store = ProjectionStore::open(&cli.db, !no_sync)
                .with_context(|| format!("opening the projection at {}", cli.db.display()))?;
            let config = WorkerConfig {
                bootstrap,
                group_id: group,
                partitions,
                max_batch,
                max_batch_wait: Duration::from_millis(max_batch_wait_ms),
            };
            run_worker(config, Arc::new(store), spr_producers::shutdown_signal()).await?;
        }
        Command::Digest => {
            anyhow::ensure!(
                cli.db.exists(),
                "no projection at {} (pass --db or set SPR_PROJECTION_DB)",
                cli.db.display()
            );
            let store = ProjectionStore::open(&cli.db, false).with_context(|| {
                format!(
                    "opening the projection at {} (is a projector running on it?)",
                    cli.db.display()
                )
            })?;
            println!("digest {}", hex::encode(store.content_digest()?));
            println!("events {}", store.event_count()?);
        }
    }
    Ok(())
}
