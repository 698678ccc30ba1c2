//! Encoding and decoding cost per event, against apache-avro's generic `Value` decoding
//! of the same bytes, measured side by side in one run. Prints a table.
//!
//! Run: `cargo bench -p spr-schemas` (`SPR_BENCH_ROUNDS` sets the rounds, default 20,000).

use std::hint::black_box;
use std::time::Instant;

use apache_avro::reader::datum::GenericDatumReader;
use spr_schemas::codec::SchemaCatalogue;
use spr_schemas::{examples, AccessEvent, ClinicalEvent};

/// Nanoseconds per call of `f` over `rounds` calls, after a warm-up.
fn per_call(rounds: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..rounds / 10 {
        f();
    }
    let started = Instant::now();
    for _ in 0..rounds {
        f();
    }
    started.elapsed().as_nanos() as f64 / rounds as f64
}

fn main() {
    let rounds: usize = std::env::var("SPR_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let nhs = "9990000018".parse().expect("a valid test number");
    let events = examples::one_of_each_type(nhs);
    let encoded: Vec<Vec<u8>> = events.iter().map(|e| e.to_avro().unwrap()).collect();
    let access = examples::access_event(nhs);
    let access_bytes = access.to_avro().unwrap();
    let schema = &SchemaCatalogue::global()
        .current(ClinicalEvent::AVRO_RECORD)
        .schema;
    let generic = GenericDatumReader::builder(schema).build().unwrap();
    let n = events.len();
    let bytes: usize = encoded.iter().map(Vec::len).sum();

    let baseline = per_call(rounds, || {
        for b in &encoded {
            black_box(generic.read_value(&mut &b[10..]).unwrap());
        }
    }) / n as f64;
    let decode = per_call(rounds, || {
        for b in &encoded {
            black_box(ClinicalEvent::from_avro(b).unwrap());
        }
    }) / n as f64;
    let encode = per_call(rounds, || {
        for e in &events {
            black_box(e.to_avro().unwrap());
        }
    }) / n as f64;
    let access_decode = per_call(rounds, || {
        black_box(AccessEvent::from_avro(&access_bytes).unwrap());
    });
    let access_encode = per_call(rounds, || {
        black_box(access.to_avro().unwrap());
    });

    println!(
        "{n} clinical events, one of each type, {} bytes each on average; {rounds} rounds",
        bytes / n
    );
    println!("| measurement | µs per event | relative to the baseline |");
    println!("|---|---|---|");
    println!(
        "| baseline: apache-avro generic decode into a `Value` tree (no Rust types yet) | {:.2} | 1.00 |",
        baseline / 1000.0
    );
    println!(
        "| `ClinicalEvent::from_avro` (header, schema-aware serde, validation) | {:.2} | {:.2} |",
        decode / 1000.0,
        decode / baseline
    );
    println!(
        "| `ClinicalEvent::to_avro` | {:.2} | {:.2} |",
        encode / 1000.0,
        encode / baseline
    );
    println!(
        "| `AccessEvent::from_avro` | {:.2} | |",
        access_decode / 1000.0
    );
    println!(
        "| `AccessEvent::to_avro` | {:.2} | |",
        access_encode / 1000.0
    );
}
