//! `spr-produce`: publishes clinical events to the log.

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use spr_producers::fhir::{self, ImportReport, ImportSettings};
use spr_producers::{admin, synthetic, EventPublisher};
use spr_schemas::{topics, CareSetting};
use std::path::PathBuf;

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
    /// Imports FHIR R4 JSON (Bundles, single resources) and Bulk Data NDJSON, publishing
    /// one event per mapped resource; exits non-zero if any document is rejected.
    Fhir(FhirArgs),
    /// Creates the SPR topics that do not exist yet.
    CreateTopics {
        /// Replication factor (1 for a local broker, 3 in production).
        #[arg(long, default_value_t = 1)]
        replication: i32,
    },
}

/// Options of `spr-produce fhir`.
#[derive(clap::Args, Debug)]
struct FhirArgs {
    /// Files or directories (searched recursively for .json and .ndjson files).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The publishing system's name (part of every event id: keep it stable).
    #[arg(long, default_value = "fhir-import")]
    source_system: String,
    /// ODS code used when a resource names no organisation with one.
    #[arg(long, default_value = "X99999")]
    ods_code: String,
    /// Care setting used when no tag or encounter class gives one (gp, acute, mental-health, ...).
    #[arg(long, default_value = "unknown", value_parser = fhir::parse_care_setting)]
    care_setting: CareSetting,
    /// Map and report without publishing.
    #[arg(long)]
    dry_run: bool,
    /// Print the final report as JSON.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    spr_producers::init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Synthetic { patients, seed } => {
            publish_synthetic(&cli.bootstrap, patients, seed).await
        }
        Command::Fhir(args) => {
            let report = import_fhir(&cli.bootstrap, &args).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            if !report.rejected.is_empty() {
                std::process::exit(2);
            }
            Ok(())
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

/// Imports every document under `args.paths`, publishing each document's new events
/// before reading the next.
async fn import_fhir(bootstrap: &str, args: &FhirArgs) -> anyhow::Result<ImportReport> {
    let (sources, skipped) = fhir::find_documents(&args.paths).context("finding FHIR files")?;
    for path in &skipped {
        tracing::info!(path = %path.display(), "skipped: not a .json or .ndjson file");
    }
    let settings = ImportSettings {
        source_system: args.source_system.clone(),
        ods_code: args.ods_code.clone(),
        care_setting: args.care_setting,
    };
    let publisher = if args.dry_run {
        None
    } else {
        Some(EventPublisher::new(bootstrap, Duration::from_secs(60))?)
    };
    let bar = ProgressBar::new(sources.len() as u64).with_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} documents ({per_sec}, eta {eta})")
            .expect("valid template"),
    );
    let mut report = ImportReport::default();
    for source in &sources {
        let outcome = source
            .load()
            .map_err(fhir::RejectedDocument::from)
            .and_then(|document| fhir::import_document(&document, &settings));
        let events = report.add(outcome);
        bar.set_message(format!(
            "{} resources, {} events",
            report.resources, report.events
        ));
        if let Some(publisher) = &publisher {
            let delivery = fhir::publish_document_events(publisher, &events, &mut report).await;
            if !delivery.is_complete() {
                anyhow::bail!(
                    "publishing {} to {bootstrap}: {}; is the broker running (deploy/local/run.sh starts one)?",
                    source.name(),
                    delivery.failure_summary()
                );
            }
        }
        bar.inc(1);
    }
    bar.finish();
    Ok(report)
}
