//! Ledger benchmark: prints a table. Run with `cargo bench -p spr-audit-ledger`.
//!
//! Measures, in one run on this machine: the raw SHA-256 rate (the physical limit of
//! verification), durable appends with group commit at several batch sizes and their
//! commit latency, full verification from genesis, and proof generation at 10 million
//! entries. Set SPR_BENCH_ENTRIES to change the ledger size (default 1,000,000).

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use spr_audit_ledger::merkle::MerkleTree;
use spr_audit_ledger::{leaf_hash, verify_from_genesis, Ledger, Sha256Digest};
use spr_schemas::examples;

fn main() {
    let entries: usize = std::env::var("SPR_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model()
    );
    println!();
    println!("| measurement | result |");
    println!("|---|---|");

    let raw = raw_sha256_mb_per_s();
    println!("| raw SHA-256 (sha2, 64 MiB buffer) | {raw:.0} MB/s |");

    let dir = tempfile::tempdir().expect("temp dir");
    let leaves = access_event_leaves(entries);
    for batch in [1usize, 100, 1_000, 10_000] {
        let count = if batch == 1 {
            2_000
        } else {
            entries.min(200_000)
        };
        let path = dir.path().join(format!("append-{batch}.spr"));
        let (rate, p50, p99) = durable_appends(&path, &leaves[..count], batch);
        println!("| durable appends, group commit of {batch} (fsync per commit) | {rate:.0} appends/s; commit p50 {:.2} ms, p99 {:.2} ms |", ms(p50), ms(p99));
    }

    let path = dir.path().join("full.spr");
    let (rate, _, _) = durable_appends(&path, &leaves, 10_000);
    let size = std::fs::metadata(&path).expect("ledger").len() as f64;
    let started = Instant::now();
    let report = verify_from_genesis(&path).expect("verifies");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(report.first_failure.is_none() && report.entries == entries as u64);
    let mb_per_s = size / 1e6 / elapsed;
    println!("| building the {entries}-entry ledger (commits of 10,000) | {rate:.0} appends/s |");
    println!(
        "| verify from genesis ({entries} entries, {:.0} MB) | {:.0} entries/s, {mb_per_s:.0} MB/s = {:.2} of raw SHA-256 |",
        size / 1e6,
        entries as f64 / elapsed,
        mb_per_s / raw
    );

    match end_to_end_latency(3_000, 1_000.0) {
        Ok((n, p50, p99, max)) => println!(
            "| access event published → durable ledger entry, {n} events at 1,000/s through tansu memory:// | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms |",
            ms(p50),
            ms(p99),
            ms(max)
        ),
        Err(e) => println!("| access event published → durable ledger entry | skipped: {e} |"),
    }

    let (build, inclusion, consistency) = proofs_at(10_000_000);
    println!(
        "| Merkle tree of 10,000,000 leaf hashes: build | {:.1} s |",
        build.as_secs_f64()
    );
    println!(
        "| inclusion proof at 10,000,000 (mean of 10,000) | {:.1} µs |",
        micros(inclusion)
    );
    println!(
        "| consistency proof at 10,000,000 (mean of 10,000) | {:.1} µs |",
        micros(consistency)
    );
}

fn access_event_leaves(n: usize) -> Vec<Vec<u8>> {
    let template = examples::access_event("9990000018".parse().expect("valid"));
    (0..n)
        .map(|i| {
            let mut event = template.clone();
            event.event_id = spr_schemas::EventId::from_uuid(uuid_from(i as u128));
            event.returned_count = i as i32;
            event.to_avro().expect("encodes")
        })
        .collect()
}

/// Publishes `count` access events at `rate` per second to a real broker while the ledger
/// service runs, and measures from each send to the moment its entry is fsynced (the
/// `.committed` side file covers it). Returns (count, p50, p99, max).
fn end_to_end_latency(
    count: usize,
    rate: f64,
) -> anyhow::Result<(usize, Duration, Duration, Duration)> {
    use spr_audit_ledger::service::{run_ledger_service, LedgerServiceConfig};
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let broker = spr_testkit::TestBroker::start_memory().await?;
        let dir = tempfile::tempdir()?;
        let ledger = dir.path().join("ledger.spr");
        let config = LedgerServiceConfig {
            bootstrap: broker.bootstrap(),
            group_id: "bench-ledger".into(),
            ledger_path: ledger.clone(),
            max_batch: 1_000,
            max_batch_wait: Duration::from_millis(5),
            checkpoints: None,
            metrics: Default::default(),
            metrics_addr: None,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let service = tokio::spawn(run_ledger_service(config, async {
            let _ = stopped.await;
        }));
        let publisher =
            spr_producers::EventPublisher::new(&broker.bootstrap(), Duration::from_secs(30))?;
        let template = examples::access_event("9990000018".parse()?);
        let frame = (4 + template.to_avro()?.len() + 32) as u64;
        let committed = dir.path().join("ledger.spr.committed");
        // Warm up: the first entry waits for the service to connect; measure after it.
        publisher.publish_access_event(&template).await?;
        let read_committed = {
            let committed = committed.clone();
            move || -> u64 {
                std::fs::read_to_string(&committed)
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(0)
            }
        };
        let warm_up = Instant::now();
        while read_committed() < 8 + frame {
            anyhow::ensure!(
                warm_up.elapsed() < Duration::from_secs(60),
                "the ledger service did not start"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let poller = tokio::task::spawn_blocking(move || {
            let mut durable_at = Vec::with_capacity(count);
            let deadline = Instant::now() + Duration::from_secs(120);
            while durable_at.len() < count && Instant::now() < deadline {
                // Entries after the warm-up one that are fsynced.
                let durable = (read_committed().saturating_sub(8 + frame) / frame) as usize;
                while durable_at.len() < durable.min(count) {
                    durable_at.push(Instant::now());
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            durable_at
        });
        let mut sent = std::collections::HashMap::with_capacity(count);
        let started = Instant::now();
        let mut deliveries = Vec::with_capacity(count);
        for i in 0..count {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
            let mut event = template.clone();
            event.event_id = spr_schemas::EventId::random();
            sent.insert(event.event_id, Instant::now());
            let publisher = publisher.clone();
            deliveries.push(tokio::spawn(async move {
                publisher.publish_access_event(&event).await
            }));
        }
        for delivery in deliveries {
            delivery.await??;
        }
        let durable_at = poller.await?;
        let _ = stop.send(());
        service.await??;
        let (_, leaves) = spr_audit_ledger::load_leaves(&ledger)?;
        let mut latencies: Vec<Duration> = leaves[1..]
            .iter()
            .zip(&durable_at)
            .map(|(leaf, at)| {
                let id = spr_schemas::AccessEvent::from_avro(leaf)
                    .expect("access event")
                    .event_id;
                at.duration_since(sent[&id])
            })
            .collect();
        anyhow::ensure!(
            latencies.len() == count,
            "only {} of {count} entries became durable",
            latencies.len()
        );
        latencies.sort();
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        Ok((
            count,
            at(0.5),
            at(0.99),
            *latencies.last().expect("non-empty"),
        ))
    })
}

fn uuid_from(i: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(i | (0x4000 << 64))
}

/// Appends `leaves` in commits of `batch`, returning appends/s and commit latency p50/p99.
fn durable_appends(
    path: &std::path::Path,
    leaves: &[Vec<u8>],
    batch: usize,
) -> (f64, Duration, Duration) {
    let mut ledger = Ledger::open(path).expect("opens");
    let mut latencies = Vec::new();
    let started = Instant::now();
    for chunk in leaves.chunks(batch) {
        let commit = Instant::now();
        for leaf in chunk {
            ledger.append_access_event(leaf).expect("appends");
        }
        ledger.sync().expect("syncs");
        latencies.push(commit.elapsed());
    }
    let rate = leaves.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (rate, at(0.5), at(0.99))
}

fn raw_sha256_mb_per_s() -> f64 {
    let buffer = vec![0x5au8; 64 << 20];
    let started = Instant::now();
    let digest = Sha256::digest(&buffer);
    std::hint::black_box(digest);
    buffer.len() as f64 / 1e6 / started.elapsed().as_secs_f64()
}

fn proofs_at(n: u64) -> (Duration, Duration, Duration) {
    let started = Instant::now();
    let mut tree = MerkleTree::new();
    for i in 0..n {
        tree.push(leaf_hash(&i.to_be_bytes()));
    }
    let build = started.elapsed();
    let samples = 10_000u64;
    let mut index = 12_345u64;
    let started = Instant::now();
    for _ in 0..samples {
        index = index
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1)
            % n;
        std::hint::black_box(tree.inclusion_proof(index, n).expect("in range"));
    }
    let inclusion = started.elapsed() / samples as u32;
    let started = Instant::now();
    for _ in 0..samples {
        index = (index
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1))
            % n;
        std::hint::black_box(tree.consistency_proof(index.max(1), n).expect("in range"));
    }
    let consistency = started.elapsed() / samples as u32;
    std::hint::black_box::<Option<Sha256Digest>>(tree.leaf(0));
    (build, inclusion, consistency)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
