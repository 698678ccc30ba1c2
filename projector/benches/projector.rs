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
use spr_projector::{run_worker_with, ProjectionStore, RunOptions, WorkerConfig};
use spr_schemas::{topics, ClinicalEvent};
use spr_testkit::TestBroker;

const ROLE: &str = "SPR_BENCH_ROLE";
const BOOTSTRAP: &str = "SPR_BENCH_BOOTSTRAP";
const EVENTS: &str = "SPR_BENCH_EVENTS";

/// One measurement, as a child prints it: events, seconds, peak RSS in KiB.
struct Measured {
    events: u64,
    seconds: f64,
    peak_rss_kib: u64,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.events as f64 / self.seconds
    }
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
    match std::env::var(ROLE).as_deref() {
        Ok("bare") => report(bare_consume(&bootstrap(), events).await),
        Ok("projector") => report(project(&bootstrap(), events).await),
        _ => orchestrate(events).await,
    }
}

fn bootstrap() -> String {
    std::env::var(BOOTSTRAP).expect("set by the parent")
}

fn report(m: Measured) {
    println!("{} {} {}", m.events, m.seconds, m.peak_rss_kib);
}

async fn orchestrate(wanted: u64) {
    let broker = TestBroker::start_memory().await.expect("tansu starts");
    let started = Instant::now();
    let publisher = EventPublisher::new(&broker.bootstrap(), Duration::from_secs(60)).unwrap();
    let (mut delivered, mut seed) = (0, 0);
    while delivered < wanted {
        let chunk: Vec<ClinicalEvent> = population(5_000, seed)
            .into_iter()
            .flat_map(|p| p.events)
            .take((wanted - delivered) as usize)
            .collect();
        delivered += publisher
            .publish_clinical_events(&chunk, || {})
            .await
            .unwrap()
            .delivered;
        seed += 1;
    }
    let prefill = started.elapsed().as_secs_f64();
    eprintln!(
        "pre-filled {delivered} events in {prefill:.1} s ({:.0} ev/s)",
        delivered as f64 / prefill
    );
    let bare = child("bare", &broker.bootstrap(), delivered);
    let full = child("projector", &broker.bootstrap(), delivered);
    println!("| measurement ({delivered} events) | events/s | seconds | peak RSS |");
    println!("|---|---|---|---|");
    println!(
        "| broker pre-fill: idempotent produce, acks=all, lz4 | {:.0} | {prefill:.1} | (not measured) |",
        delivered as f64 / prefill
    );
    for (name, m) in [
        ("(a) bare consume + decode", &bare),
        ("(b) full projector into RocksDB", &full),
    ] {
        println!(
            "| {name} | {:.0} | {:.1} | {} MiB |",
            m.rate(),
            m.seconds,
            m.peak_rss_kib / 1024
        );
    }
    println!("| ratio b/a | {:.2} | | |", full.rate() / bare.rate());
}

fn child(role: &str, bootstrap: &str, events: u64) -> Measured {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, role)
        .env(BOOTSTRAP, bootstrap)
        .env(EVENTS, events.to_string())
        .env("RUST_LOG", "warn")
        .output()
        .expect("the bench re-runs itself");
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<f64> = text
        .split_whitespace()
        .map(|f| f.parse().expect("a number"))
        .collect();
    assert!(
        out.status.success() && fields.len() == 3,
        "{role} failed: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Measured {
        events: fields[0] as u64,
        seconds: fields[1],
        peak_rss_kib: fields[2] as u64,
    }
}

async fn bare_consume(bootstrap: &str, events: u64) -> Measured {
    let consumer: StreamConsumer = consumer_config(bootstrap, "bench-bare").create().unwrap();
    let partitions = partitions_from_start(&consumer, topics::PATIENT_EVENTS.name, None).unwrap();
    consumer.assign(&partitions).unwrap();
    let started = Instant::now();
    let mut decoded = 0;
    while decoded < events {
        let message = consumer.recv().await.unwrap();
        ClinicalEvent::from_avro(message.payload().unwrap()).unwrap();
        decoded += 1;
    }
    Measured {
        events: decoded,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_kib: peak_rss_kib(),
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
        max_batch: 5_000,
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
            while monitor.events_projected.get() < events {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    run_worker_with(config, store, options, done).await.unwrap();
    Measured {
        events: monitor.events_projected.get(),
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_kib: peak_rss_kib(),
    }
}
