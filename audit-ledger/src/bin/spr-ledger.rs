//! `spr-ledger`: appends every access event from the log to the audit ledger.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use spr_audit_ledger::checkpoint::CheckpointSigner;
use spr_audit_ledger::service::{run_ledger_service, CheckpointPolicy, LedgerServiceConfig};

/// Appends every access event on spr.access-events to the hash-chained audit ledger.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Kafka bootstrap servers.
    #[arg(long, env = "SPR_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Consumer group id given to the Kafka client (progress is kept beside the ledger).
    #[arg(long, env = "SPR_LEDGER_GROUP", default_value = "spr-ledger")]
    group: String,
    /// The ledger file (created if missing; its directory must exist).
    #[arg(long, env = "SPR_LEDGER", default_value = ".spr-local/ledger.spr")]
    ledger: PathBuf,
    /// Largest group commit, in entries.
    #[arg(long, default_value_t = 5_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_batch: usize,
    /// Checkpoint signing key (from `spr-audit keygen`); without it no checkpoints are signed.
    #[arg(long, env = "SPR_CHECKPOINT_KEY")]
    checkpoint_key: Option<PathBuf>,
    /// Shortest time between two signed checkpoints, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    checkpoint_every_ms: u64,
    /// Longest a group commit waits to fill, in milliseconds.
    #[arg(long, default_value_t = 20)]
    max_batch_wait_ms: u64,
    /// Serve Prometheus metrics at /metrics on this address (a port of its own).
    #[arg(long, env = "SPR_LEDGER_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    spr_producers::init_tracing();
    let cli = Cli::parse();
    let checkpoints = match &cli.checkpoint_key {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("reading {} (spr-audit keygen writes one)", path.display())
            })?;
            Some(CheckpointPolicy {
                signer: CheckpointSigner::from_private_key(&text)?,
                every: Duration::from_millis(cli.checkpoint_every_ms),
            })
        }
        None => None,
    };
    let config = LedgerServiceConfig {
        bootstrap: cli.bootstrap,
        group_id: cli.group,
        ledger_path: cli.ledger,
        max_batch: cli.max_batch,
        max_batch_wait: Duration::from_millis(cli.max_batch_wait_ms),
        checkpoints,
        metrics: Default::default(),
        metrics_addr: cli.metrics_addr,
    };
    run_ledger_service(config, spr_producers::shutdown_signal()).await?;
    Ok(())
}
