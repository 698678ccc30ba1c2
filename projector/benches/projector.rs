//! Projector throughput against a real tansu broker (`memory://` storage).
//!
//! Pre-fills `spr.patient-events` with `SPR_BENCH_EVENTS` synthetic events (default
//! 2,000,000; set 10000000 for the 10M replay), then measures, each in a child process
//! of its own so that peak RSS is per measurement:
//! (a) a bare rdkafka consume loop that only decodes (`ClinicalEvent::from_avro`), and
//! (b) the full projector (`run_worker_with`, fsync per batch as `run` does by default)
//! into a fresh RocksDB, both from offset 0 to the end. Prints a table.
//!
//! Run: `cargo bench -p spr-projector`.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use spr_producers::consume::{consumer_config, partitions_from_start};
use spr_producers::synthetic::population;
use spr_producers::EventPublisher;
use spr_projector::monitor::Monitor;
use spr_projector::{
    project_batch, run_worker_with, ConsumedRecord, ProjectionStore, RunOptions, WorkerConfig,
};
use spr_schemas::{topics, ClinicalEvent};
use spr_testkit::TestBroker;

/// The allocator `spr-projector` runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROLE: &str = "SPR_BENCH_ROLE";
const BOOTSTRAP: &str = "SPR_BENCH_BOOTSTRAP";
const EVENTS: &str = "SPR_BENCH_EVENTS";
/// Records per RocksDB write batch, as `spr-projector run` uses by default.
const BATCH: usize = 5_000;
/// Partitions of the offline measurement's records, as the topic has.
const PARTITIONS: usize = topics::PATIENT_EVENTS.partitions as usize;

/// One measurement, as a child prints it: events, seconds, peak RSS in KiB, CPU seconds.
struct Measured {
    events: u64,
    seconds: f64,
    peak_rss_kib: u64,
    cpu_seconds: f64,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.events as f64 / self.seconds
    }
}

/// User plus system CPU time of this process so far (from /proc/self/stat, in ticks of 10 ms).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after_name = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            let ticks: u64 =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let events: u64 = std::env::var(EVENTS)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let role = std::env::var(ROLE);
    if role.is_ok() {
        // A child: its warnings and errors (a write that keeps failing) reach the
        // parent's stderr at the level the parent sets.
        spr_producers::init_tracing();
    }
    match role.as_deref() {
        Ok("bare") => report(bare_consume(&bootstrap(), events).await),
        Ok("projector") => report(project(&bootstrap(), events).await),
        Ok("offline") => report(project_offline(events)),
        _ => orchestrate(events).await,
    }
}

fn bootstrap() -> String {
    std::env::var(BOOTSTRAP).expect("set by the parent")
}

fn report(m: Measured) {
    println!(
        "{} {} {} {}",
        m.events, m.seconds, m.peak_rss_kib, m.cpu_seconds
    );
}

async fn orchestrate(wanted: u64) {
    let broker = TestBroker::start_memory().await.expect("tansu starts");
    let started = Instant::now();
    let publisher = EventPublisher::new(&broker.bootstrap(), Duration::from_secs(60)).unwrap();
    let mut delivered = 0;
    for chunk in synthetic_events(wanted) {
        delivered += publisher
            .publish_clinical_events(&chunk, || {})
            .await
            .unwrap()
            .delivered;
    }
    let prefill = started.elapsed().as_secs_f64();
    eprintln!(
        "pre-filled {delivered} events in {prefill:.1} s ({:.0} ev/s)",
        delivered as f64 / prefill
    );
    let bare = child("bare", &broker.bootstrap(), delivered);
    let full = child("projector", &broker.bootstrap(), delivered);
    let offline = child("offline", &broker.bootstrap(), delivered.min(OFFLINE_MAX));
    println!("| measurement ({delivered} events) | events/s | seconds | peak RSS | CPU s of the process | events per CPU s |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| broker pre-fill: idempotent produce, acks=all, lz4 | {:.0} | {prefill:.1} | | | |",
        delivered as f64 / prefill
    );
    for (name, m) in [
        ("(a) bare consume + decode", &bare),
        ("(b) full projector into RocksDB", &full),
        (
            "(c) projection alone: the same events from memory, no broker",
            &offline,
        ),
    ] {
        println!(
            "| {name} | {:.0} | {:.1} | {} MiB | {:.1} | {:.0} |",
            m.rate(),
            m.seconds,
            m.peak_rss_kib / 1024,
            m.cpu_seconds,
            m.events as f64 / m.cpu_seconds
        );
    }
    println!(
        "| ratio b/a | {:.2} | | | | {:.2} |",
        full.rate() / bare.rate(),
        (full.events as f64 / full.cpu_seconds) / (bare.events as f64 / bare.cpu_seconds)
    );
}

/// Prints a child's progress to stderr every ten seconds, with what it is doing when
/// nothing moved for a minute (a stall is reported, not waited out silently).
struct Progress {
    role: &'static str,
    wanted: u64,
    started: Instant,
    last_print: Instant,
    last_count: u64,
    last_moved: Instant,
}

impl Progress {
    fn new(role: &'static str, wanted: u64) -> Self {
        let now = Instant::now();
        Self {
            role,
            wanted,
            started: now,
            last_print: now,
            last_count: 0,
            last_moved: now,
        }
    }

    fn report(&mut self, count: u64, detail: impl FnOnce() -> String) {
        if count != self.last_count {
            self.last_count = count;
            self.last_moved = Instant::now();
        }
        if self.last_print.elapsed() < Duration::from_secs(10) {
            return;
        }
        self.last_print = Instant::now();
        let stalled = self.last_moved.elapsed() >= Duration::from_secs(60);
        eprintln!(
            "{}: {count} of {} records in {:.0} s ({:.0}/s), peak RSS {} MiB{}",
            self.role,
            self.wanted,
            self.started.elapsed().as_secs_f64(),
            count as f64 / self.started.elapsed().as_secs_f64(),
            peak_rss_kib() / 1024,
            if stalled {
                format!(
                    "; NO PROGRESS for {:.0} s: {}",
                    self.last_moved.elapsed().as_secs_f64(),
                    detail()
                )
            } else {
                String::new()
            }
        );
    }
}

/// The bench's events, `wanted` in all, in chunks of 5,000 patients' records.
fn synthetic_events(wanted: u64) -> impl Iterator<Item = Vec<ClinicalEvent>> {
    let mut remaining = wanted as usize;
    (0..).map_while(move |seed| {
        let chunk: Vec<ClinicalEvent> = population(5_000, seed)
            .into_iter()
            .flat_map(|p| p.events)
            .take(remaining)
            .collect();
        remaining -= chunk.len();
        (!chunk.is_empty()).then_some(chunk)
    })
}

/// The offline measurement's cap: its records are held in memory a chunk at a time,
/// but it exists to show the projector's own cost, which 2 million events show.
const OFFLINE_MAX: u64 = 2_000_000;

/// (c): `project_batch` and the RocksDB write (fsync per batch) over records built in
/// memory, as the worker would receive them, with no broker. Only projecting and
/// writing are timed, not generating and encoding the records.
fn project_offline(events: u64) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let store = ProjectionStore::open(dir.path(), true).unwrap();
    let mut next_offset = [0i64; PARTITIONS];
    let (mut projected, mut timed) = (0, Duration::ZERO);
    let cpu_before = cpu_seconds();
    let mut cpu_untimed = 0.0;
    let mut progress = Progress::new("offline", events);
    for chunk in synthetic_events(events) {
        let build_started = cpu_seconds();
        let records: Vec<ConsumedRecord> = chunk
            .iter()
            .map(|event| {
                let key = event.nhs_number.as_str().as_bytes().to_vec();
                let partition = (crc32fast::hash(&key) as usize) % PARTITIONS;
                next_offset[partition] += 1;
                ConsumedRecord {
                    topic: topics::PATIENT_EVENTS.name.to_owned(),
                    partition: partition as i32,
                    offset: next_offset[partition] - 1,
                    key: Some(key),
                    payload: Some(event.to_avro().unwrap()),
                }
            })
            .collect();
        drop(chunk);
        cpu_untimed += cpu_seconds() - build_started;
        let started = Instant::now();
        for batch in records.chunks(BATCH) {
            let outcome = project_batch(&store, batch).unwrap();
            projected += outcome.projected as u64;
            store.write(outcome.batch).unwrap();
        }
        timed += started.elapsed();
        progress.report(projected, String::new);
    }
    Measured {
        events: projected,
        seconds: timed.as_secs_f64(),
        peak_rss_kib: peak_rss_kib(),
        cpu_seconds: cpu_seconds() - cpu_before - cpu_untimed,
    }
}

fn child(role: &str, bootstrap: &str, events: u64) -> Measured {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, role)
        .env(BOOTSTRAP, bootstrap)
        .env(EVENTS, events.to_string())
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("the bench re-runs itself");
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<f64> = text
        .split_whitespace()
        .map(|f| f.parse().expect("a number"))
        .collect();
    assert!(
        out.status.success() && fields.len() == 4,
        "{role} failed (its stderr is above): {text}"
    );
    Measured {
        events: fields[0] as u64,
        seconds: fields[1],
        peak_rss_kib: fields[2] as u64,
        cpu_seconds: fields[3],
    }
}

async fn bare_consume(bootstrap: &str, events: u64) -> Measured {
    let consumer: StreamConsumer = consumer_config(bootstrap, "bench-bare")
        .unwrap()
        .create()
        .unwrap();
    let partitions = partitions_from_start(&consumer, topics::PATIENT_EVENTS.name, None).unwrap();
    consumer.assign(&partitions).unwrap();
    let started = Instant::now();
    let mut decoded = 0;
    let mut progress = Progress::new("bare", events);
    while decoded < events {
        let message = consumer.recv().await.unwrap();
        ClinicalEvent::from_avro(message.payload().unwrap()).unwrap();
        decoded += 1;
        if decoded % 10_000 == 0 {
            progress.report(decoded, String::new);
        }
    }
    Measured {
        events: decoded,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_kib: peak_rss_kib(),
        cpu_seconds: cpu_seconds(),
    }
}

async fn project(bootstrap: &str, events: u64) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ProjectionStore::open(dir.path(), true).unwrap());
    let monitor = Arc::new(Monitor::new());
    let config = WorkerConfig {
        bootstrap: bootstrap.into(),
        group_id: "bench-projector".into(),
        partitions: None,
        max_batch: BATCH,
        max_batch_wait: Duration::from_millis(50),
    };
    let options = RunOptions {
        monitor: Arc::clone(&monitor),
        ..RunOptions::default()
    };
    let started = Instant::now();
    let done = {
        let monitor = Arc::clone(&monitor);
        async move {
            let mut progress = Progress::new("projector", events);
            while monitor.records_read() < events {
                tokio::time::sleep(Duration::from_millis(5)).await;
                progress.report(monitor.records_read(), || {
                    format!(
                        "{} projected, {} duplicates, {} dead letters; per partition {:?}",
                        monitor.events_projected.get(),
                        monitor.duplicates.get(),
                        monitor.dead_letters.get(),
                        monitor.readiness().partitions
                    )
                });
            }
        }
    };
    run_worker_with(config, store, options, done).await.unwrap();
    eprintln!(
        "projector: {} projected, {} duplicates, {} dead letters, {} already applied",
        monitor.events_projected.get(),
        monitor.duplicates.get(),
        monitor.dead_letters.get(),
        monitor.already_applied.get()
    );
    Measured {
        events: monitor.events_projected.get(),
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_kib: peak_rss_kib(),
        cpu_seconds: cpu_seconds(),
    }
}
