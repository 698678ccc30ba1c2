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
//! - the same with the audit step switched off (`SKIP_AUDIT_FOR_BENCH`), as a ratio;
//! - a 50-event timeline page read from the RocksDB store directly (a secondary with
//!   the API's block cache, `SPR_BENCH_BLOCK_CACHE_MB`, default 1,024);
//! - the same page from PostgreSQL (Debian's server, installed by
//!   `benches/setup-postgres.sh` if missing, a cluster in a temp dir), with a prepared
//!   statement over an index on (nhs_number, occurred_at).
//!
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
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn bench() -> anyhow::Result<()> {
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
    let (store_stats, pg_stats) =
        page_reads_compared(dir.path(), &rows, &nhs_numbers, &reader).await?;
    drop((reader, primary));
    println!(
        "{}",
        store_stats.row("RocksDB store: 50-event timeline page (1 thread)")
    );
    println!(
        "{}",
        pg_stats.row("PostgreSQL: same page, prepared statement (1 connection)")
    );

    let broker = TestBroker::start_memory().await?;
    let (base, token) = serve(dir.path(), &broker.bootstrap()).await?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let targets: Vec<String> = (0..20_000)
        .map(|i| {
            let nhs = nhs_numbers.choose(&mut rng).expect("patients");
            match i % 2 {
                0 => format!("{base}/patients/{nhs}/timeline?limit=50"),
                _ => format!("{base}/patients/{nhs}/summary"),
            }
        })
        .collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1_024)
        .build()?;
    // Warm up connections, caches and the producer.
    offer(&client, &targets, &token, 500, Duration::from_secs(2)).await;
    for (audit, audited) in [("audited", true), ("audit off", false)] {
        SKIP_AUDIT_FOR_BENCH.store(!audited, Ordering::Relaxed);
        for (label, kind) in [("timeline page", 0), ("summary", 1)] {
            let urls: Vec<&String> = targets.iter().skip(kind).step_by(2).collect();
            let stats = one_at_a_time(&client, &urls, &token).await;
            println!(
                "{}",
                stats.row(&format!("full stack, {audit}, one {label} at a time"))
            );
        }
    }

    let mut summary = Vec::new();
    for (label, audited) in [("audited", true), ("audit off", false)] {
        SKIP_AUDIT_FOR_BENCH.store(!audited, Ordering::Relaxed);
        let light = offer(&client, &targets, &token, 200, step).await;
        println!(
            "{}",
            light.row(&format!(
                "full stack, {label}, offered 200 req/s (light load)"
            ))
        );
        let mut max_sustained = 0;
        let mut at_2000 = None;
        for rate in RATES {
            let stats = offer(&client, &targets, &token, rate, step).await;
            println!(
                "{}",
                stats.row(&format!("full stack, {label}, offered {rate} req/s"))
            );
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
        summary.push((
            label,
            at_2000.expect("2,000 req/s is offered first"),
            max_sustained,
        ));
    }
    SKIP_AUDIT_FOR_BENCH.store(false, Ordering::Relaxed);

    println!();
    println!("| result | value |");
    println!("|---|---|");
    for (label, stats, max) in &summary {
        println!(
            "| full stack, {label}: max sustained rate (≥{:.0}% completed, no errors, p99 < {} ms) | {} |",
            SUSTAINED_SHARE * 100.0,
            SUSTAINED_P99.as_millis(),
            if *max == 0 { "below 2,000 req/s".to_owned() } else { format!("{max} req/s") },
        );
        println!(
            "| full stack, {label}: p99 at 2,000 req/s | {} |",
            ms(stats.p(0.99))
        );
    }
    let (audited, unaudited) = (&summary[0].1, &summary[1].1);
    println!(
        "| audit cost at 2,000 req/s: audited / audit off | p50 {:.1}×, p99 {:.1}× |",
        ratio(audited.p(0.5), unaudited.p(0.5)),
        ratio(audited.p(0.99), unaudited.p(0.99))
    );
    println!(
        "| store vs PostgreSQL, p99 | RocksDB {:.1}× faster (p50 {:.1}×) |",
        ratio(pg_stats.p(0.99), store_stats.p(0.99)),
        ratio(pg_stats.p(0.5), store_stats.p(0.5))
    );
    drop(broker);
    Ok(())
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
async fn page_reads<F, R>(patients: &[NhsNumber], mut read: F) -> anyhow::Result<Stats>
where
    F: FnMut(NhsNumber) -> R,
    R: std::future::Future<Output = anyhow::Result<usize>>,
{
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut latencies = Vec::with_capacity(20_000);
    let started = Instant::now();
    for i in 0..22_000 {
        let nhs = *patients.choose(&mut rng).expect("patients");
        let t = Instant::now();
        let entries = read(nhs).await?;
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

/// Loads the rows into PostgreSQL (which also gives RocksDB's compactions time to
/// settle), then reads the same pages from the store and from PostgreSQL.
async fn page_reads_compared(
    dir: &Path,
    rows: &Path,
    patients: &[NhsNumber],
    store: &ProjectionStore,
) -> anyhow::Result<(Stats, Stats)> {
    let pg = Postgres::start(dir)?;
    pg.psql("CREATE TABLE events (nhs_number char(10) NOT NULL, occurred_at bigint NOT NULL, event_id uuid PRIMARY KEY, entry jsonb NOT NULL)")?;
    pg.psql(&format!(
        "\\copy events FROM '{}' WITH (FORMAT csv)",
        rows.display()
    ))?;
    pg.psql("CREATE INDEX events_by_patient ON events (nhs_number, occurred_at)")?;
    pg.psql("VACUUM ANALYZE events")?;
    store.catch_up()?;
    let store_stats = page_reads(patients, |nhs| async move {
        Ok(store.timeline(&nhs, None, 50)?.entries.len())
    })
    .await?;
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={} user=postgres", pg.port),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(connection);
    let statement = client
        .prepare("SELECT entry::text FROM events WHERE nhs_number = $1 ORDER BY occurred_at, event_id LIMIT 50")
        .await?;
    let pg_stats = page_reads(patients, |nhs| {
        let (client, statement) = (&client, &statement);
        async move {
            let rows = client.query(statement, &[&nhs.as_str()]).await?;
            let page = rows
                .iter()
                .map(|row| serde_json::from_str(row.get::<_, &str>(0)))
                .collect::<Result<Vec<TimelineEntry>, _>>()?;
            Ok(page.len())
        }
    })
    .await?;
    Ok((store_stats, pg_stats))
}

/// Serves the API over the projection (as a secondary, like `spr-api serve`) and
/// returns its base URL and a clinician's token.
async fn serve(dir: &Path, bootstrap: &str) -> anyhow::Result<(String, String)> {
    let keys = DevKeys::generate("bench-key");
    keys.write_to(&dir.join("keys"))?;
    let store = ProjectionStore::open_secondary(
        &dir.join("projection"),
        &dir.join("secondary"),
        block_cache_bytes(),
    )?;
    store.catch_up()?;
    let state = AppState {
        store: Arc::new(store),
        verifier: Arc::new(TokenVerifier::from_jwks_file(
            &dir.join("keys/jwks.json"),
            ISSUER,
        )?),
        audit: EventPublisher::for_requests(bootstrap, Duration::from_secs(5))?,
        last_catch_up_millis: Arc::new(AtomicI64::new(0)),
        ledger: None,
        break_glass: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
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
    Ok((base, mint_token(&keys.private_pem, &keys.kid, &claims)?))
}

/// Offers `rate` requests a second for `duration`, open loop: each request is sent at
/// its scheduled time whatever the earlier ones are doing, and its latency counts from
/// that time, so a stall shows up in the latencies rather than lowering the load.
async fn offer(
    client: &reqwest::Client,
    targets: &[String],
    token: &str,
    rate: u64,
    duration: Duration,
) -> Stats {
    let total = (rate as f64 * duration.as_secs_f64()) as usize;
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let at = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(at).await;
        let request = client.get(&targets[i % targets.len()]).bearer_auth(token);
        tasks.push(tokio::spawn(async move {
            let ok = read_whole_200(request).await;
            (at.elapsed(), ok)
        }));
    }
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
