//! `spr-produce`: publishes clinical events to the log.

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use spr_producers::{admin, synthetic, EventPublisher};
use spr_schemas::topics;

/// Publishes clinical events to the SPR Timeline log.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        env = "SPR_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    bootstrap: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Publishes a deterministic synthetic population (999-range NHS numbers only).
    Synthetic {
        /// How many patients.
        #[arg(long, default_value_t = 1_000)]
        patients: usize,
        /// Seed; the same seed publishes the same events (re-publishing is idempotent downstream).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Creates the SPR topics that do not exist yet.
    CreateTopics {
        /// Replication factor (1 for a local broker, 3 in production).
        #[arg(long, default_value_t = 1)]
        replication: i32,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    spr_producers::init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Synthetic { patients, seed } => {
            publish_synthetic(&cli.bootstrap, patients, seed).await
        }
        Command::CreateTopics { replication } => {
            admin::ensure_topics(&cli.bootstrap, &topics::ALL, replication)
                .await
                .context("creating topics")?;
            println!("topics ready: {}", topics::ALL.map(|t| t.name).join(", "));
            Ok(())
        }
    }
}

async fn publish_synthetic(bootstrap: &str, patients: usize, seed: u64) -> anyhow::Result<()> {
    let population = synthetic::population(patients, seed);
    let events: Vec<_> = population.iter().flat_map(|p| &p.events).collect();
    let publisher = EventPublisher::new(bootstrap, Duration::from_secs(60))?;
    let bar = ProgressBar::new(events.len() as u64).with_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} events ({per_sec}, eta {eta})")
            .expect("valid template"),
    );
    bar.set_message(format!("publishing {patients} patients"));
    let summary = publisher
        .publish_clinical_events(events.iter().copied(), || bar.inc(1))
        .await
        .with_context(|| format!("publishing to {bootstrap}; is the broker running (deploy/local/run.sh starts one)?"))?;
    bar.finish();
    println!(
        "published {} events for {patients} patients (seed {seed})",
        summary.delivered
    );
    if let Some(first) = population.first() {
        println!(
            "example patient {} with {} events",
            first.nhs_number,
            first.events.len()
        );
    }
    Ok(())
}
