//! `spr-projector`: runs a projector worker, rebuilds, checkpoints or inspects its
//! RocksDB, and lists or replays dead letters.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use spr_producers::metrics_http::spawn_metrics_server;
use spr_projector::checkpoints::CheckpointSchedule;
use spr_projector::dead_letters::{read_dead_letters, replay_dead_letters, ReplayState};
use spr_projector::monitor::{self, Monitor};
use spr_projector::ownership::partitions_of_instance;
use spr_projector::rebuild::rebuild;
use spr_projector::{
    run_worker_with, store_format, ProjectionStore, RunOptions, StoreError, WorkerConfig,
};

/// mimalloc: the projector allocates and frees small strings and keys for every event,
/// and spent about a tenth of its time in the system allocator (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// Where to read from and which partitions this instance owns.
#[derive(Args, Debug)]
struct Consume {
    /// Kafka bootstrap servers.
    #[arg(long, env = "SPR_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Consumer group under which progress is committed, for lag monitoring tools.
    #[arg(long, env = "SPR_PROJECTOR_GROUP", default_value = "spr-projector")]
    group: String,
    /// Partitions this instance owns, comma-separated (default: all). Each instance
    /// owns a fixed set of partitions and the RocksDB state built from them.
    #[arg(
        long,
        env = "SPR_PROJECTOR_PARTITIONS",
        value_delimiter = ',',
        conflicts_with = "instance"
    )]
    partitions: Option<Vec<i32>>,
    /// This instance's number, from 0 (e.g. a StatefulSet ordinal): it owns every
    /// partition p with p % instances == instance. Needs --instances.
    #[arg(long, env = "SPR_PROJECTOR_INSTANCE", requires = "instances")]
    instance: Option<u32>,
    /// How many instances share the partitions (with --instance).
    #[arg(long, env = "SPR_PROJECTOR_INSTANCES", requires = "instance", value_parser = clap::value_parser!(u32).range(1..))]
    instances: Option<u32>,
    /// Largest number of records written in one RocksDB batch.
    #[arg(long, default_value_t = 5_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_batch: usize,
    /// Longest a batch waits to fill, in milliseconds.
    #[arg(long, default_value_t = 50)]
    max_batch_wait_ms: u64,
}

impl Consume {
    fn worker_config(self) -> anyhow::Result<WorkerConfig> {
        let partitions = match (self.instance, self.instances) {
            (Some(instance), Some(instances)) => {
                anyhow::ensure!(
                    instance < instances,
                    "--instance {instance} must be below --instances {instances}"
                );
                Some(partitions_of_instance(
                    &self.bootstrap,
                    instance,
                    instances,
                )?)
            }
            _ => self.partitions,
        };
        Ok(WorkerConfig {
            bootstrap: self.bootstrap,
            group_id: self.group,
            partitions,
            max_batch: self.max_batch,
            max_batch_wait: Duration::from_millis(self.max_batch_wait_ms),
        })
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Consumes the patient-events topic and projects it until interrupted (Ctrl-C).
    Run {
        #[command(flatten)]
        consume: Consume,
        /// Skip fsync on each batch (a power cut may then lose the last batches;
        /// they are re-projected from the log, never duplicated).
        #[arg(long)]
        no_sync: bool,
        /// Serve Prometheus metrics at /metrics and readiness at /ready on this address.
        #[arg(long, env = "SPR_PROJECTOR_METRICS_ADDR")]
        metrics_addr: Option<SocketAddr>,
        /// /ready answers 503 once the projection was last caught up longer ago than this.
        #[arg(long, default_value_t = 10)]
        ready_max_behind_s: u64,
        /// Take online RocksDB checkpoints into this directory (checkpoint-<ms> each).
        #[arg(long)]
        checkpoint_dir: Option<PathBuf>,
        /// Seconds between checkpoints (with --checkpoint-dir).
        #[arg(long, default_value_t = 300)]
        checkpoint_every_s: u64,
        /// How many checkpoints to keep (with --checkpoint-dir).
        #[arg(long, default_value_t = 3)]
        checkpoint_keep: usize,
        /// Go on past a partition that starts beyond its stored offset (records deleted
        /// before they were projected), logging it as an error, instead of stopping.
        #[arg(long)]
        accept_log_gaps: bool,
    },
    /// Builds a fresh projection in --db (which must be new or empty) from offset 0 to
    /// the end of the log, with a progress bar, then exits.
    Rebuild {
        #[command(flatten)]
        consume: Consume,
        /// The log has ended once no record has arrived for this long (milliseconds).
        #[arg(long, default_value_t = 3_000)]
        idle_ms: u64,
    },
    /// Writes a RocksDB checkpoint of a stopped projection (--db) into --out. For a
    /// running projector use `run --checkpoint-dir`. Restore by starting a projector
    /// with --db pointing at (a copy of) the checkpoint.
    Checkpoint {
        /// New directory for the checkpoint.
        #[arg(long)]
        out: PathBuf,
    },
    /// Lists the records on the dead-letter topic.
    DeadLetters {
        /// Kafka bootstrap servers.
        #[arg(long, env = "SPR_BOOTSTRAP", default_value = "127.0.0.1:9092")]
        bootstrap: String,
        /// One JSON object per dead letter instead of a table.
        #[arg(long)]
        json: bool,
        /// The topic has ended once no record has arrived for this long (milliseconds).
        #[arg(long, default_value_t = 2_000)]
        idle_ms: u64,
    },
    /// Re-publishes, once, each dead letter of spr.patient-events that now decodes.
    ReplayDeadLetters {
        /// Kafka bootstrap servers.
        #[arg(long, env = "SPR_BOOTSTRAP", default_value = "127.0.0.1:9092")]
        bootstrap: String,
        /// File recording which dead letters were replayed.
        #[arg(long, default_value = ".spr-local/dead-letter-replay.json")]
        state: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// The topic has ended once no record has arrived for this long (milliseconds).
        #[arg(long, default_value_t = 2_000)]
        idle_ms: u64,
    },
    /// Prints the SHA-256 content digest and event count of the projection.
    Digest,
    /// Checks, by opening it, that this build reads the projection's storage format;
    /// otherwise fails and says how to rebuild it. Use it before swapping builds.
    CheckFormat,
}

impl Command {
    /// The broker this command reads or writes, checked before anything else, if it
    /// uses one. `run` checks it itself, once its projection is open and its metrics
    /// are served.
    fn bootstrap_checked_first(&self) -> Option<&str> {
        match self {
            Command::Rebuild { consume, .. } => Some(&consume.bootstrap),
            Command::DeadLetters { bootstrap, .. }
            | Command::ReplayDeadLetters { bootstrap, .. } => Some(bootstrap),
            Command::Run { .. }
            | Command::Checkpoint { .. }
            | Command::Digest
            | Command::CheckFormat => None,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    spr_producers::init_tracing();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run { .. }) {
        spr_producers::exit_quietly_when_stdout_closes();
    }
    if let Some(bootstrap) = cli.command.bootstrap_checked_first() {
        spr_producers::admin::check_connection(
            bootstrap,
            spr_producers::admin::STARTUP_CONNECTION_TIMEOUT,
        )
        .await?;
    }
    match cli.command {
        Command::Run {
            consume,
            no_sync,
            metrics_addr,
            ready_max_behind_s,
            checkpoint_dir,
            checkpoint_every_s,
            checkpoint_keep,
            accept_log_gaps,
        } => {
            let store = ProjectionStore::open(&cli.db, !no_sync)
                .with_context(|| format!("opening the projection at {}", cli.db.display()))?;
            let options = RunOptions {
                monitor: Arc::new(Monitor::new()),
                checkpoints: checkpoint_dir.map(|dir| CheckpointSchedule {
                    dir,
                    every: Duration::from_secs(checkpoint_every_s),
                    keep: checkpoint_keep,
                }),
                stop_when_idle: None,
                accept_log_gaps,
            };
            let max_behind = Duration::from_secs(ready_max_behind_s);
            let routes = monitor::router(Arc::clone(&options.monitor), max_behind);
            spawn_metrics_server(metrics_addr, routes).await?;
            spr_producers::admin::check_connection(
                &consume.bootstrap,
                spr_producers::admin::STARTUP_CONNECTION_TIMEOUT,
            )
            .await?;
            let config = consume.worker_config()?;
            run_worker_with(
                config,
                Arc::new(store),
                options,
                spr_producers::shutdown_signal(),
            )
            .await?;
        }
        Command::Rebuild {
            mut consume,
            idle_ms,
        } => {
            consume.group = format!("{}-rebuild", consume.group);
            let monitor = Arc::new(Monitor::new());
            let bar = indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {elapsed} {pos} records read ({per_sec}) {msg}",
                )
                .expect("valid template"),
            );
            let ticker = {
                let (bar, monitor) = (bar.clone(), Arc::clone(&monitor));
                tokio::spawn(async move {
                    loop {
                        bar.set_position(monitor.records_read());
                        bar.set_message(format!("{} projected", monitor.events_projected.get()));
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                })
            };
            let config = consume.worker_config()?;
            let store = rebuild(
                config,
                &cli.db,
                Duration::from_millis(idle_ms),
                Arc::clone(&monitor),
            )
            .await?;
            ticker.abort();
            bar.set_position(monitor.records_read());
            bar.finish_with_message(format!("{} projected", monitor.events_projected.get()));
            println!("digest {}", hex::encode(store.content_digest()?));
            println!("events {}", store.event_count()?);
        }
        Command::Checkpoint { out } => {
            let store = open_existing(&cli.db)?;
            store
                .checkpoint(&out)
                .with_context(|| format!("writing a checkpoint to {}", out.display()))?;
            println!("checkpoint {}", out.display());
        }
        Command::DeadLetters {
            bootstrap,
            json,
            idle_ms,
        } => {
            let dead = read_dead_letters(&bootstrap, Duration::from_millis(idle_ms)).await?;
            for d in &dead {
                if json {
                    println!("{}", serde_json::to_string(d)?);
                } else {
                    let source = d.source.as_ref().map_or("?".to_owned(), |s| {
                        format!("{}/{}@{}", s.topic, s.partition, s.offset)
                    });
                    println!(
                        "#{} {source} key={} size={}{} time={} reason={}",
                        d.offset,
                        printable(&d.key),
                        d.size,
                        if d.truncated { " (truncated)" } else { "" },
                        d.timestamp_ms.map_or("?".into(), |t| t.to_string()),
                        printable(&d.reason)
                    );
                }
            }
            if !json {
                println!("{} dead letters", dead.len());
            }
        }
        Command::ReplayDeadLetters {
            bootstrap,
            state,
            json,
            idle_ms,
        } => {
            let mut state = ReplayState::load(&state)?;
            let report =
                replay_dead_letters(&bootstrap, &mut state, Duration::from_millis(idle_ms)).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                for (dead, reason) in &report.still_failing {
                    println!("still failing #{}: {reason}", dead.offset);
                }
                println!(
                    "replayed {}, already replayed {}, still failing {}, not replayable {}",
                    report.replayed.len(),
                    report.already_replayed,
                    report.still_failing.len(),
                    report.not_replayable
                );
            }
        }
        Command::Digest => {
            let store = open_existing(&cli.db)?;
            println!("digest {}", hex::encode(store.content_digest()?));
            println!("events {}", store.event_count()?);
        }
        Command::CheckFormat => {
            open_existing(&cli.db)?;
            println!("format {}: this build reads it", store_format());
        }
    }
    Ok(())
}

/// Opens an existing projection that no projector is running on.
fn open_existing(db: &std::path::Path) -> anyhow::Result<ProjectionStore> {
    anyhow::ensure!(
        db.exists(),
        "no projection at {} (pass --db or set SPR_PROJECTION_DB)",
        db.display()
    );
    ProjectionStore::open_existing(db).map_err(|e| {
        let hint = match &e {
            StoreError::Rocks { source, .. } if source.to_string().contains("lock") => {
                "a projector (or another command) has it open; stop it first"
            }
            StoreError::Rocks { .. } => {
                "if the projection is damaged, rebuild it from the log: spr-projector rebuild --db NEW"
            }
            _ => "",
        };
        let opening = format!("opening the projection at {}", db.display());
        match hint {
            "" => anyhow::Error::new(e).context(opening),
            hint => anyhow::Error::new(e).context(format!("{opening} ({hint})")),
        }
    })
}

/// `text` with control characters escaped (`\u{1b}`), so that a dead letter's key or
/// reason cannot move the cursor or clear the operator's terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
