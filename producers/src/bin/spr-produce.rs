//! `spr-produce`: publishes clinical events to the log.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use spr_producers::fhir::{self, ImportReport, ImportSettings};
use spr_producers::synthetic::{
    Population, PopulationConfig, PopulationSize, Profile, StreamTally, SyntheticPatient,
};
use spr_producers::{admin, EventPublisher};
use spr_schemas::{topics, CareSetting, EventType, Status};
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
    Synthetic(SyntheticArgs),
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

#[derive(Args, Debug)]
struct SyntheticArgs {
    /// How many patients (1,000 unless --target-events is given).
    #[arg(long, conflicts_with = "target_events")]
    patients: Option<u64>,
    /// Generate whole patients until at least this many events (10000000 for a 10M run).
    #[arg(long)]
    target_events: Option<u64>,
    /// Seed; the same seed publishes the same events (re-publishing is idempotent downstream).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Years of history per patient.
    #[arg(long, default_value_t = 5)]
    history_years: u32,
    /// Which journeys and data-quality problems (see docs/events.md, "Synthetic population").
    #[arg(long, value_enum, default_value_t = Profile::Realistic)]
    profile: Profile,
    /// Generate only, without a broker (measures the generator); prints counts per type.
    #[arg(long)]
    dry_run: bool,
    /// With --dry-run: also encode every event (Avro) and print the stream's SHA-256
    /// (the same flags give the same digest on every machine).
    #[arg(long, requires = "dry_run")]
    digest: bool,
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
    spr_producers::exit_quietly_when_stdout_closes();
    spr_producers::init_tracing();
    let cli = Cli::parse();
    let dry_run = match &cli.command {
        Command::Synthetic(args) => args.dry_run,
        Command::Fhir(args) => args.dry_run,
        Command::CreateTopics { .. } => false,
    };
    if !dry_run {
        admin::check_connection(&cli.bootstrap, admin::STARTUP_CONNECTION_TIMEOUT).await?;
    }
    match cli.command {
        Command::Synthetic(args) => synthetic(&cli.bootstrap, &args).await,
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

async fn synthetic(bootstrap: &str, args: &SyntheticArgs) -> anyhow::Result<()> {
    let size = match (args.patients, args.target_events) {
        (_, Some(events)) => PopulationSize::Events(events),
        (patients, None) => PopulationSize::Patients(patients.unwrap_or(1_000)),
    };
    let population = Population::new(PopulationConfig {
        seed: args.seed,
        size,
        profile: args.profile,
        history_years: args.history_years,
    })?;
    let bar = progress_bar(size);
    let started = Instant::now();
    let mut tally = StreamTally::default();
    let mut example = None;
    let events = population.flat_map(|patient| {
        tally.patient(&patient);
        if example.is_none() && is_plain(&patient) {
            let practice = patient.events.iter().find_map(|e| match &e.payload {
                spr_schemas::Payload::Demographics(d) => d.registered_gp_ods_code.clone(),
                _ => None,
            });
            example = Some((patient.nhs_number, patient.events.len(), practice));
        }
        bar.set_position(match size {
            PopulationSize::Patients(_) => tally.patients,
            PopulationSize::Events(_) => tally.events,
        });
        bar.set_message(format!("{} events", tally.events));
        patient.events
    });
    let mut digest = None;
    if args.dry_run {
        let mut encoded = StreamTally::default();
        let mut encoding = Duration::ZERO;
        for event in events {
            if args.digest {
                let start = Instant::now();
                encoded
                    .encode(&event)
                    .context("encoding a synthetic event")?;
                encoding += start.elapsed();
            }
        }
        digest = args.digest.then_some((encoded, encoding));
    } else {
        let publisher = EventPublisher::new(bootstrap, Duration::from_secs(60))?;
        publisher
            .publish_clinical_events(events, || {})
            .await
            .with_context(|| format!("publishing to {bootstrap}; is the broker running (deploy/local/run.sh starts one)?"))?;
    }
    bar.finish();
    let seconds = started.elapsed().as_secs_f64();
    let verb = if args.dry_run {
        "generated"
    } else {
        "published"
    };
    println!(
        "{verb} {} events for {} patients (seed {}, {} profile) in {seconds:.1} s: {:.0} events/s",
        tally.events,
        tally.patients,
        args.seed,
        args.profile
            .to_possible_value()
            .expect("no skipped variants")
            .get_name(),
        tally.events as f64 / seconds.max(1e-9),
    );
    for (event_type, count) in &tally.by_type {
        println!("  {:<22} {count:>12}", event_type.as_str());
    }
    if let Some((encoded, encoding)) = digest {
        let generating = seconds - encoding.as_secs_f64();
        println!(
            "generating took {generating:.1} s ({:.0} events/s), Avro encoding {:.1} s; encoded {} bytes; stream sha256 {}",
            tally.events as f64 / generating.max(1e-9),
            encoding.as_secs_f64(),
            encoded.encoded_bytes,
            encoded.digest()
        );
    }
    if let Some((nhs_number, events, practice)) = example {
        let practice = practice.as_deref().unwrap_or("unknown");
        println!("example patient {nhs_number} with {events} events registered at {practice}");
    }
    Ok(())
}

fn progress_bar(size: PopulationSize) -> ProgressBar {
    let (len, unit) = match size {
        PopulationSize::Patients(n) => (n, "patients"),
        PopulationSize::Events(n) => (n, "events"),
    };
    ProgressBar::new(len).with_style(
        ProgressStyle::with_template(&format!(
            "{{bar:40}} {{human_pos}}/{{human_len}} {unit} ({{msg}}, {{per_sec}}, eta {{eta}})"
        ))
        .expect("valid template"),
    )
}

/// A patient whose timeline shows exactly their events: no data-quality problems,
/// sensitive labels or sharing choices, and few enough events for one page (the run
/// script reads this patient's timeline back).
fn is_plain(patient: &SyntheticPatient) -> bool {
    let mut ids: Vec<_> = patient.events.iter().map(|e| e.event_id).collect();
    ids.sort();
    ids.dedup();
    patient.retired_nhs_number.is_none()
        && ids.len() == patient.events.len()
        && patient.events.len() <= 400
        && patient.events.iter().all(|e| {
            e.status == Status::Final
                && e.sensitivity.is_empty()
                && e.event_type() != EventType::ConsentChoice
        })
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
