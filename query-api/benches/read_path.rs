//! Read-path benchmark: prints a table. Run with `cargo bench -p spr-query-api`.
//!
//! Builds a projection of SPR_BENCH_PATIENTS patients (default 100,000) with 50 events
//! each, written straight into RocksDB through the projector's library (`project_batch`
//! and `ProjectionStore::write`), not through the broker. Then, in one run:
//!
//! - the full stack over HTTP: reqwest with keep-alive in this process against
//!   `spr-api`'s router served on a local port (token check, policy, RocksDB read of a
//!   secondary instance, access event acknowledged by a real tansu broker before the
//!   response), at a fixed arrival rate, open loop, latency measured from each request's
//!   scheduled start; half timelines (a 50-event page), half summaries;
//! - the same with access events sent at once (`spr-api serve --audit-linger-ms 0`;
//!   by default each waits 1 ms to share a produce request with others);
//! - the same with the audit step switched off (`SKIP_AUDIT_FOR_BENCH`), as a ratio;
//! - a 50-event timeline page read from the RocksDB store directly (a secondary with
//!   the API's block cache, `SPR_BENCH_BLOCK_CACHE_MB`, default 1,024), one read at a
//!   time and then from 2 client threads at each fixed rate;
//! - the same page from PostgreSQL (Debian's server, installed by
//!   `benches/setup-postgres.sh` if missing, a cluster in a temp dir), with a prepared
//!   statement over an index on (nhs_number, occurred_at): one at a time over one
//!   connection, then from 8 client threads with a connection each at each fixed rate.
//!
//! Before the API is measured, every patient's page and summary are read once through
//! it (audit off), as the store comparison warms its own reader.
//!
//! Each fixed-rate measurement offers 2,000, 3,000, ... requests a second until one is
//! not sustained, and the table ends with the rates sustained and the p99s at 2,000/s.
//! Before the rates, timelines and summaries are read one request at a time (the service
//! time). SPR_BENCH_SECONDS sets how long each rate is offered (default 5).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use spr_producers::synthetic::population;
use spr_producers::EventPublisher;
use spr_projector::{project_batch, ConsumedRecord, ProjectionStore, TimelineEntry};
use spr_query_api::app::SKIP_AUDIT_FOR_BENCH;
use spr_query_api::auth::{mint_token, Claims, DevKeys, TokenVerifier, AUDIENCE};
use spr_query_api::{router, AppState};
use spr_schemas::{topics, EventId, NhsNumber};
use spr_testkit::TestBroker;

/// The allocator `spr-api` runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS_PER_PATIENT: usize = 50;
/// The readers' block cache: `SPR_BENCH_BLOCK_CACHE_MB`, by default `spr-api serve`'s
/// default `--block-cache-mb`.
fn block_cache_bytes() -> usize {
    (env_or("SPR_BENCH_BLOCK_CACHE_MB", 1_024) as usize) << 20
}
const ISSUER: &str = "spr-bench";
const BENCH_ORG: &str = "A81001";
/// A rate is sustained when at least this share of it completes, all with 200s, and
/// the p99 stays under `SUSTAINED_P99`.
const SUSTAINED_SHARE: f64 = 0.95;
const SUSTAINED_P99: Duration = Duration::from_millis(50);
const RATES: [u64; 7] = [2_000, 3_000, 4_000, 5_000, 6_000, 8_000, 10_000];

fn main() -> anyhow::Result<()> {
    bench(
        &tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
    )
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs every measurement: the store and PostgreSQL from threads of their own, the API
/// from `runtime`.
fn bench(runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let patients = env_or("SPR_BENCH_PATIENTS", 100_000) as usize;
    let step = Duration::from_secs(env_or("SPR_BENCH_SECONDS", 5));
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let (nhs_numbers, rows) = build_projection(
        &dir.path().join("projection"),
        &dir.path().join("rows.csv"),
        patients,
    )?;
    let events = nhs_numbers.len() * (EVENTS_PER_PATIENT + 1);
    println!(
        "machine: {} cores, {}; {} patients, {events} events projected in {:.0} s",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model(),
        nhs_numbers.len(),
        started.elapsed().as_secs_f64()
    );
    println!();
    println!("| measurement | p50 | p99 | p99.9 | throughput |");
    println!("|---|---|---|---|---|");

    // The projector's primary stays open so that its compactions run while PostgreSQL
    // loads; the page is read as the API reads it, from a secondary with `spr-api
    // serve`'s default block cache.
    let primary = ProjectionStore::open(&dir.path().join("projection"), false)?;
    let reader = ProjectionStore::open_secondary(
        &dir.path().join("projection"),
        &dir.path().join("reader"),
        block_cache_bytes(),
    )?;
    let mut climbs = page_reads_compared(dir.path(), &rows, &nhs_numbers, &reader, step)?;
    drop((reader, primary));

    let broker = runtime.block_on(TestBroker::start_memory())?;
    let (bases, token) = runtime.block_on(serve(dir.path(), &broker.bootstrap()))?;
    // The same requests to each server: half timeline pages, half summaries.
    let targets_of = |base: &str| -> Arc<[String]> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        (0..20_000)
            .map(|i| {
                let nhs = nhs_numbers.choose(&mut rng).expect("patients");
                let [page, summary] = reads_of(base, nhs);
                if i % 2 == 0 {
                    page
                } else {
                    summary
                }
            })
            .collect()
    };
    let (targets, unlingering_targets) = (targets_of(&bases[0]), targets_of(&bases[1]));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1_024)
        .build()?;
    let offer_api =
        |targets, rate, duration| runtime.block_on(offer(&client, targets, &token, rate, duration));
    // The two servers share one secondary: every patient's page and summary are read
    // once before anything is measured (as the store comparison warms its own reader),
    // so that neither server's climb runs on caches the other has filled.
    SKIP_AUDIT_FOR_BENCH.store(true, Ordering::Relaxed);
    let failed = runtime.block_on(warm_every_patient(&client, &bases[0], &nhs_numbers, &token));
    SKIP_AUDIT_FOR_BENCH.store(false, Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} warm-up reads did not answer 200");
    }
    // Warm up connections and the producers.
    offer_api(&targets, 500, Duration::from_secs(2));
    offer_api(&unlingering_targets, 500, Duration::from_secs(2));
    for (audit, audited) in [("audited", true), ("audit off", false)] {
        SKIP_AUDIT_FOR_BENCH.store(!audited, Ordering::Relaxed);
        for (label, kind) in [("timeline page", 0), ("summary", 1)] {
            let urls: Vec<&String> = targets.iter().skip(kind).step_by(2).collect();
            let stats = runtime.block_on(one_at_a_time(&client, &urls, &token));
            println!(
                "{}",
                stats.row(&format!("full stack, {audit}, one {label} at a time"))
            );
        }
    }

    for (label, audited, targets) in [
        ("full stack, audited", true, &targets),
        (
            "full stack, audited, audit linger 0",
            true,
            &unlingering_targets,
        ),
        ("full stack, audit off", false, &targets),
    ] {
        SKIP_AUDIT_FOR_BENCH.store(!audited, Ordering::Relaxed);
        let light = offer_api(targets, 200, step);
        println!(
            "{}",
            light.row(&format!("{label}, offered 200 req/s (light load)"))
        );
        climbs.push(climb(label, |rate| offer_api(targets, rate, step)));
    }
    SKIP_AUDIT_FOR_BENCH.store(false, Ordering::Relaxed);

    println!();
    println!("| result | value |");
    println!("|---|---|");
    for climb in &climbs {
        println!(
            "| {}: max sustained rate (≥{:.0}% completed, no errors, p99 < {} ms) | {} |",
            climb.label,
            SUSTAINED_SHARE * 100.0,
            SUSTAINED_P99.as_millis(),
            match climb.max_sustained {
                0 => "below 2,000/s".to_owned(),
                max => format!("{max}/s"),
            },
        );
        println!(
            "| {}: p50 / p99 at 2,000/s | {} / {} |",
            climb.label,
            ms(climb.at_2000.p(0.5)),
            ms(climb.at_2000.p(0.99))
        );
    }
    let [store, pg, audited, _, unaudited] = &climbs[..] else {
        unreachable!("five measurements climb the rates")
    };
    println!(
        "| store vs PostgreSQL at 2,000/s | RocksDB {:.1}× faster at p99 (p50 {:.1}×) |",
        ratio(pg.at_2000.p(0.99), store.at_2000.p(0.99)),
        ratio(pg.at_2000.p(0.5), store.at_2000.p(0.5))
    );
    println!(
        "| audit cost at 2,000 req/s: audited / audit off | p50 {:.1}×, p99 {:.1}× |",
        ratio(audited.at_2000.p(0.5), unaudited.at_2000.p(0.5)),
        ratio(audited.at_2000.p(0.99), unaudited.at_2000.p(0.99))
    );
    drop(broker);
    Ok(())
}

/// A measurement offered each of [`RATES`] in turn, up to the first it did not sustain.
struct Climb {
    label: &'static str,
    at_2000: Stats,
    max_sustained: u64,
}

/// Offers each of [`RATES`] through `measure`, printing a row per rate, until a rate
/// is not sustained (see [`SUSTAINED_SHARE`]).
fn climb(label: &'static str, mut measure: impl FnMut(u64) -> Stats) -> Climb {
    let mut max_sustained = 0;
    let mut at_2000 = None;
    for rate in RATES {
        let stats = measure(rate);
        println!("{}", stats.row(&format!("{label}, offered {rate}/s")));
        let sustained = stats.errors == 0
            && stats.throughput >= SUSTAINED_SHARE * rate as f64
            && stats.p(0.99) < SUSTAINED_P99;
        if rate == 2_000 {
            at_2000 = Some(stats);
        }
        if !sustained {
            break;
        }
        max_sustained = rate;
    }
    Climb {
        label,
        at_2000: at_2000.expect("2,000/s is offered first"),
        max_sustained,
    }
}

/// Latencies of one measurement.
#[derive(Debug)]
struct Stats {
    sorted: Vec<Duration>,
    errors: usize,
    throughput: f64,
}

impl Stats {
    fn new(mut latencies: Vec<Duration>, errors: usize, elapsed: Duration) -> Self {
        latencies.sort();
        Self {
            throughput: (latencies.len() - errors) as f64 / elapsed.as_secs_f64(),
            sorted: latencies,
            errors,
        }
    }

    fn p(&self, q: f64) -> Duration {
        self.sorted[((self.sorted.len() - 1) as f64 * q) as usize]
    }

    fn row(&self, label: &str) -> String {
        let errors = match self.errors {
            0 => String::new(),
            n => format!(", {n} errors"),
        };
        format!(
            "| {label} | {} | {} | {} | {:.0}/s{errors} |",
            ms(self.p(0.5)),
            ms(self.p(0.99)),
            ms(self.p(0.999)),
            self.throughput
        )
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// Projects the patients through `project_batch` into a new RocksDB at `path` and writes
/// the same timeline entries as CSV rows for PostgreSQL. Returns the NHS numbers.
fn build_projection(
    path: &Path,
    rows_path: &Path,
    patients: usize,
) -> anyhow::Result<(Vec<NhsNumber>, std::path::PathBuf)> {
    use std::io::Write;
    let store = ProjectionStore::open(path, false)?;
    let mut rows = std::io::BufWriter::new(std::fs::File::create(rows_path)?);
    let mut seen = std::collections::HashSet::new();
    let mut offset = 0i64;
    let mut chunk_seed = 0u64;
    while seen.len() < patients {
        chunk_seed += 1;
        let chunk = population((patients - seen.len()).min(1_000), 1_000 + chunk_seed);
        let mut records = Vec::new();
        for patient in chunk {
            if patient.events.is_empty() || !seen.insert(patient.nhs_number) {
                continue;
            }
            // The bench clinician's organisation cares for every patient (the last event).
            let patient = patient.with_care_team(BENCH_ORG);
            // Repeat the patient's events, a day apart, with new ids, to 50 events.
            let (care_team, history) = patient.events.split_last().expect("the care team");
            for i in 0..=EVENTS_PER_PATIENT {
                let mut event = match i {
                    EVENTS_PER_PATIENT => care_team.clone(),
                    _ => history[i % history.len()].clone(),
                };
                event.event_id = EventId::random();
                event.occurred_at -= (i / history.len()) as i64 * 86_400_000;
                let entry = TimelineEntry::of(&event);
                writeln!(
                    rows,
                    "{},{},{},\"{}\"",
                    event.nhs_number,
                    event.occurred_at,
                    event.event_id,
                    serde_json::to_string(&entry)?.replace('"', "\"\"")
                )?;
                records.push(ConsumedRecord {
                    topic: topics::PATIENT_EVENTS.name.to_owned(),
                    partition: 0,
                    offset,
                    key: Some(event.nhs_number.as_str().as_bytes().to_vec()),
                    payload: Some(event.to_avro()?),
                });
                offset += 1;
            }
        }
        let outcome = project_batch(&store, &records)?;
        if !outcome.dead_letters.is_empty() {
            bail!(
                "{} synthetic events did not project",
                outcome.dead_letters.len()
            );
        }
        store.write(outcome.batch)?;
    }
    rows.flush()?;
    Ok((seen.into_iter().collect(), rows_path.to_owned()))
}

/// 2,000 warm-up reads, then 20,000 measured, one at a time, each of a random
/// patient's first 50 events; `read` returns how many entries it got.
fn page_reads(
    patients: &[NhsNumber],
    mut read: impl FnMut(&NhsNumber) -> anyhow::Result<usize>,
) -> anyhow::Result<Stats> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut latencies = Vec::with_capacity(20_000);
    let started = Instant::now();
    for i in 0..22_000 {
        let nhs = patients.choose(&mut rng).expect("patients");
        let t = Instant::now();
        let entries = read(nhs)?;
        if entries != EVENTS_PER_PATIENT {
            bail!("{nhs}: {entries} entries, expected {EVENTS_PER_PATIENT}");
        }
        if i >= 2_000 {
            latencies.push(t.elapsed());
        }
    }
    Ok(Stats::new(latencies, 0, started.elapsed()))
}

/// A PostgreSQL cluster in a temp dir, stopped when dropped.
struct Postgres {
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    port: u16,
}

impl Postgres {
    fn start(dir: &Path) -> anyhow::Result<Self> {
        let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/setup-postgres.sh");
        let output = Command::new("bash").arg(&setup).output()?;
        if !output.status.success() {
            bail!(
                "{}: {}",
                setup.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let bin = std::path::PathBuf::from(String::from_utf8(output.stdout)?.trim());
        let root = dir.join("postgres");
        std::fs::create_dir_all(&root)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let pg = Self {
            data: root.join("data"),
            bin,
            port,
        };
        if is_root() {
            // initdb refuses to run as root: the cluster belongs to the postgres user.
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&root))?;
            run(Command::new("chmod").args(["o+x"]).arg(dir))?;
        }
        pg.as_owner(
            &["initdb", "-A", "trust", "-U", "postgres", "--no-sync", "-D"],
            &[&pg.data],
        )?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=512MB",
            root.display()
        );
        let log = root.join("log");
        pg.as_owner(
            &["pg_ctl", "-w", "-o", &options, "-l"],
            &[&log, Path::new("-D"), &pg.data, Path::new("start")],
        )?;
        Ok(pg)
    }

    fn as_owner(&self, args: &[&str], paths: &[&Path]) -> anyhow::Result<()> {
        let program = self.bin.join(args[0]);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        run(command.args(&args[1..]).args(paths))
    }

    fn psql(&self, sql: &str) -> anyhow::Result<()> {
        run(Command::new(self.bin.join("psql"))
            .args([
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-p",
            ])
            .arg(self.port.to_string())
            .args(["-c", sql]))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.as_owner(&["pg_ctl", "-m", "fast", "stop", "-D"], &[&self.data]);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output().with_context(|| format!("{command:?}"))?;
    if !output.status.success() {
        bail!("{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

/// Client threads, each with its own PostgreSQL connection, that read the page at a
/// fixed rate (the server runs one process per connection; 8 keep both cores busy).
const PG_CLIENTS: usize = 8;
/// Client threads that read the page from the store at a fixed rate, as the API's two
/// runtime threads do.
const STORE_CLIENTS: usize = 2;
const PAGE_QUERY: &str =
    "SELECT entry::text FROM events WHERE nhs_number = $1 ORDER BY occurred_at, event_id LIMIT 50";

/// Loads the rows into PostgreSQL (which also gives RocksDB's compactions time to
/// settle), then reads the same pages from the store and from PostgreSQL: one at a
/// time (printed), then at each rate in turn.
fn page_reads_compared(
    dir: &Path,
    rows: &Path,
    patients: &[NhsNumber],
    store: &ProjectionStore,
    step: Duration,
) -> anyhow::Result<Vec<Climb>> {
    let pg = Postgres::start(dir)?;
    pg.psql("CREATE TABLE events (nhs_number char(10) NOT NULL, occurred_at bigint NOT NULL, event_id uuid PRIMARY KEY, entry jsonb NOT NULL)")?;
    pg.psql(&format!(
        "\\copy events FROM '{}' WITH (FORMAT csv)",
        rows.display()
    ))?;
    pg.psql("CREATE INDEX events_by_patient ON events (nhs_number, occurred_at)")?;
    pg.psql("VACUUM ANALYZE events")?;
    store.catch_up()?;
    let store_page = |nhs: &NhsNumber| Ok(store.timeline(nhs, None, 50)?.entries.len());
    let mut client = PgClient::connect(pg.port)?;
    // Every patient's page is read once from each before anything is measured, as a
    // service that has been up for a while would have: the readers' caches then hold
    // what fits of the working set.
    for nhs in patients {
        store_page(nhs)?;
        client.page(nhs)?;
    }
    let one = page_reads(patients, store_page)?;
    println!("{}", one.row("RocksDB store: 50-event page, one at a time"));
    let one = page_reads(patients, |nhs| client.page(nhs))?;
    println!("{}", one.row("PostgreSQL: same page, one at a time"));

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let order: Vec<NhsNumber> = (0..20_000)
        .map(|_| *patients.choose(&mut rng).expect("patients"))
        .collect();
    let full_page = |page: anyhow::Result<usize>| matches!(page, Ok(EVENTS_PER_PATIENT));
    let store_climb = climb("RocksDB store: 50-event page", |rate| {
        paced_clients(
            STORE_CLIENTS,
            rate,
            step,
            |_| Ok(()),
            |(), i| full_page(store_page(&order[i % order.len()])),
        )
        .expect("store clients need no set-up")
    });
    let pg_climb = climb("PostgreSQL: same page, 8 connections", |rate| {
        paced_clients(
            PG_CLIENTS,
            rate,
            step,
            |_| PgClient::connect(pg.port),
            |client, i| full_page(client.page(&order[i % order.len()])),
        )
        .expect("PostgreSQL accepts the connections")
    });
    Ok(vec![store_climb, pg_climb])
}

/// A PostgreSQL connection with the page query prepared, used synchronously (each has
/// a single-threaded runtime of its own), like a thread-per-request service would.
struct PgClient {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    statement: tokio_postgres::Statement,
}

impl PgClient {
    fn connect(port: u16) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (client, statement) = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(
                &format!("host=127.0.0.1 port={port} user=postgres"),
                tokio_postgres::NoTls,
            )
            .await?;
            tokio::spawn(connection);
            let statement = client.prepare(PAGE_QUERY).await?;
            anyhow::Ok((client, statement))
        })?;
        Ok(Self {
            runtime,
            client,
            statement,
        })
    }

    /// The patient's first 50 timeline entries; how many there were.
    fn page(&mut self, nhs: &NhsNumber) -> anyhow::Result<usize> {
        let rows = self
            .runtime
            .block_on(self.client.query(&self.statement, &[&nhs.as_str()]))?;
        let page = rows
            .iter()
            .map(|row| serde_json::from_str(row.get::<_, &str>(0)))
            .collect::<Result<Vec<TimelineEntry>, _>>()?;
        Ok(page.len())
    }
}

/// `clients` threads, each set up with `connect(thread)`, together make `rate` calls a
/// second for `duration`, open loop: thread t makes calls t, t + clients, ..., each at
/// its scheduled time. A call that starts late because the thread's previous call was
/// still running is charged the wait (its latency counts from its scheduled time); a
/// call whose thread was idle counts from when the thread woke, since the wake-up's
/// delay (~0.08 ms on this VM) is the load generator's, not the read's. `call` answers
/// whether it succeeded.
fn paced_clients<C>(
    clients: usize,
    rate: u64,
    duration: Duration,
    connect: impl Fn(usize) -> anyhow::Result<C> + Sync,
    call: impl Fn(&mut C, usize) -> bool + Sync,
) -> anyhow::Result<Stats> {
    let total = (rate as f64 * duration.as_secs_f64()) as usize;
    let start = Instant::now() + Duration::from_millis(50);
    let results = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|t| {
                let (connect, call) = (&connect, &call);
                scope.spawn(move || {
                    let mut client = connect(t)?;
                    let mut results = Vec::with_capacity(total / clients + 1);
                    let mut previous_done = start;
                    for i in (t..total).step_by(clients) {
                        let at = start + Duration::from_secs_f64(i as f64 / rate as f64);
                        std::thread::sleep(at.saturating_duration_since(Instant::now()));
                        let from = if previous_done > at {
                            at
                        } else {
                            Instant::now()
                        };
                        let ok = call(&mut client, i);
                        previous_done = Instant::now();
                        results.push((previous_done - from, ok));
                    }
                    anyhow::Ok(results)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a client thread"))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let elapsed = start.elapsed();
    let results: Vec<_> = results.into_iter().flatten().collect();
    let errors = results.iter().filter(|(_, ok)| !ok).count();
    Ok(Stats::new(
        results.into_iter().map(|(latency, _)| latency).collect(),
        errors,
        elapsed,
    ))
}

/// Linger of the access events of the two servers: `spr-api serve`'s default, and
/// `--audit-linger-ms 0`.
const AUDIT_LINGERS_MS: [u32; 2] = [1, 0];

/// Serves the API over the projection (as a secondary, like `spr-api serve`) twice,
/// with each of [`AUDIT_LINGERS_MS`] (sharing the secondary and the key set), and
/// returns their base URLs and a clinician's token.
async fn serve(dir: &Path, bootstrap: &str) -> anyhow::Result<(Vec<String>, String)> {
    let keys = DevKeys::generate("bench-key");
    keys.write_to(&dir.join("keys"))?;
    let store = ProjectionStore::open_secondary(
        &dir.join("projection"),
        &dir.join("secondary"),
        block_cache_bytes(),
    )?;
    store.catch_up()?;
    let store = Arc::new(store);
    let verifier = Arc::new(TokenVerifier::from_jwks_file(
        &dir.join("keys/jwks.json"),
        ISSUER,
    )?);
    let mut bases = Vec::new();
    for linger_ms in AUDIT_LINGERS_MS {
        let state = AppState {
            store: store.clone(),
            verifier: verifier.clone(),
            audit: EventPublisher::for_requests(bootstrap, Duration::from_secs(5), linger_ms)?,
            last_catch_up_millis: Arc::new(AtomicI64::new(0)),
            ledger: None,
            break_glass: Default::default(),
            metrics: Default::default(),
        };
        // As spr-api serve runs: each node also follows spr.break-glass.
        state.spawn_break_glass_follower(bootstrap)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        bases.push(format!("http://{}", listener.local_addr()?));
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = Claims {
        sub: "bench-clinician".into(),
        name: "Dr Bench".into(),
        org: BENCH_ORG.into(),
        role: "clinician".into(),
        nhs_number: None,
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        exp: now + 3_600,
        nbf: now,
        iat: now,
    };
    Ok((bases, mint_token(&keys.private_pem, &keys.kid, &claims)?))
}

/// Offers `rate` requests a second for `duration` to the API, open loop (see
/// [`open_loop`]).
async fn offer(
    client: &reqwest::Client,
    targets: &Arc<[String]>,
    token: &str,
    rate: u64,
    duration: Duration,
) -> Stats {
    let (client, targets, token) = (client.clone(), targets.clone(), token.to_owned());
    open_loop(rate, duration, move |i| {
        read_whole_200(client.get(&targets[i % targets.len()]).bearer_auth(&token))
    })
    .await
}

/// Calls `call(i)` `rate` times a second for `duration`, open loop: each call is
/// spawned at its scheduled time whatever the earlier ones are doing, and its latency
/// counts from that time, so a stall shows up in the latencies rather than lowering
/// the load. The schedule is kept by a thread of its own sleeping to each start
/// (tokio's timer ticks in milliseconds, which would add up to 1 ms to every latency;
/// a thread's sleep ends within Linux's 50 µs timer slack).
/// A call answers whether it succeeded.
async fn open_loop<F, R>(rate: u64, duration: Duration, mut call: F) -> Stats
where
    F: FnMut(usize) -> R + Send + 'static,
    R: std::future::Future<Output = bool> + Send + 'static,
{
    let total = (rate as f64 * duration.as_secs_f64()) as usize;
    let runtime = tokio::runtime::Handle::current();
    let start = Instant::now() + Duration::from_millis(20);
    let tasks = tokio::task::spawn_blocking(move || {
        (0..total)
            .map(|i| {
                let at = start + Duration::from_secs_f64(i as f64 / rate as f64);
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                let call = call(i);
                runtime.spawn(async move {
                    let ok = call.await;
                    (at.elapsed(), ok)
                })
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("the pacing thread");
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0;
    for task in tasks {
        let (latency, ok) = task.await.expect("request task");
        latencies.push(latency);
        errors += usize::from(!ok);
    }
    Stats::new(latencies, errors, start.elapsed())
}

/// 1,000 requests sent one after another: the service time without queueing.
async fn one_at_a_time(client: &reqwest::Client, urls: &[&String], token: &str) -> Stats {
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(1_000);
    let mut errors = 0;
    for url in urls.iter().cycle().take(1_000) {
        let t = Instant::now();
        let ok = read_whole_200(client.get(*url).bearer_auth(token)).await;
        latencies.push(t.elapsed());
        errors += usize::from(!ok);
    }
    Stats::new(latencies, errors, started.elapsed())
}

/// The two reads the bench makes of a patient through the API at `base`: a 50-event
/// timeline page and the summary.
fn reads_of(base: &str, nhs: &NhsNumber) -> [String; 2] {
    [
        format!("{base}/patients/{nhs}/timeline?limit=50"),
        format!("{base}/patients/{nhs}/summary"),
    ]
}

/// Reads every patient's timeline page and summary once through `base`, 8 requests in
/// flight; how many did not answer 200.
async fn warm_every_patient(
    client: &reqwest::Client,
    base: &str,
    patients: &[NhsNumber],
    token: &str,
) -> usize {
    let mut readers = tokio::task::JoinSet::new();
    for chunk in patients.chunks(patients.len().div_ceil(8)) {
        let (client, token) = (client.clone(), token.to_owned());
        let urls: Vec<String> = chunk.iter().flat_map(|nhs| reads_of(base, nhs)).collect();
        readers.spawn(async move {
            let mut failed = 0;
            for url in urls {
                failed += usize::from(!read_whole_200(client.get(&url).bearer_auth(&token)).await);
            }
            failed
        });
    }
    readers.join_all().await.into_iter().sum()
}

/// Sends `request` and reads its whole body; whether it answered 200.
async fn read_whole_200(request: reqwest::RequestBuilder) -> bool {
    match request.send().await {
        Ok(response) => response.status() == 200 && response.bytes().await.is_ok(),
        Err(_) => false,
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
