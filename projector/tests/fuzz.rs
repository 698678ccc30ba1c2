//! Fuzzing the decoder and `project_batch` with arbitrary and mutated records: nothing
//! panics, bad input becomes a dead letter, and the good records around it are projected.

use proptest::prelude::*;
use spr_producers::synthetic::population;
use spr_projector::{project_batch, ConsumedRecord, ProjectionStore};
use spr_schemas::{topics, ClinicalEvent};

/// How one fuzzed record is made from a valid event's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    /// Arbitrary bytes.
    Arbitrary(Vec<u8>),
    /// One bit flipped.
    BitFlip(usize),
    /// Cut to a prefix.
    Truncate(usize),
    /// The valid 10-byte header (marker and known fingerprint) then a random body.
    RandomBody(Vec<u8>),
    /// Bytes appended after a valid record.
    Trailing(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        bytes.clone().prop_map(Mutation::Arbitrary),
        any::<usize>().prop_map(Mutation::BitFlip),
        any::<usize>().prop_map(Mutation::Truncate),
        bytes.prop_map(Mutation::RandomBody),
        proptest::collection::vec(any::<u8>(), 1..20).prop_map(Mutation::Trailing),
    ]
}

fn mutate(valid: &[u8], mutation: &Mutation) -> Vec<u8> {
    match mutation {
        Mutation::Arbitrary(bytes) => bytes.clone(),
        Mutation::BitFlip(at) => {
            let mut bytes = valid.to_vec();
            let bit = at % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            bytes
        }
        Mutation::Truncate(at) => valid[..at % valid.len()].to_vec(),
        Mutation::RandomBody(body) => [&valid[..10], body].concat(),
        Mutation::Trailing(extra) => [valid, extra].concat(),
    }
}

fn record(offset: i64, event: &ClinicalEvent, payload: Vec<u8>) -> ConsumedRecord {
    ConsumedRecord {
        topic: topics::PATIENT_EVENTS.name.into(),
        partition: 0,
        offset,
        key: Some(event.nhs_number.as_str().as_bytes().to_vec()),
        payload: Some(payload),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn bad_records_become_dead_letters_and_good_ones_around_them_are_projected(
        mutations in proptest::collection::vec(mutation(), 1..12),
    ) {
        // Good events and the events mutated come from different patients, so a mutant
        // that still decodes can never shadow a good event's id.
        let good: Vec<ClinicalEvent> = population(4, 1).into_iter().flat_map(|p| p.events).take(12).collect();
        let sources: Vec<ClinicalEvent> = population(4, 2).into_iter().flat_map(|p| p.events).collect();
        let mut records = Vec::new();
        let mut undecodable = Vec::new();
        for (i, m) in mutations.iter().enumerate() {
            let g = &good[i % good.len()];
            records.push(record(records.len() as i64, g, g.to_avro().unwrap()));
            let source = &sources[i % sources.len()];
            let bytes = mutate(&source.to_avro().unwrap(), m);
            let decodes = ClinicalEvent::from_avro(&bytes)
                .is_ok_and(|e| e.nhs_number == source.nhs_number);
            if !decodes {
                undecodable.push(records.len() as i64);
            }
            records.push(record(records.len() as i64, source, bytes));
        }
        let dir = tempfile::tempdir().unwrap();
        let store = ProjectionStore::open(dir.path(), false).unwrap();
        let outcome = project_batch(&store, &records).unwrap();
        let dead: Vec<i64> = outcome.dead_letters.iter().map(|d| d.record.offset).collect();
        prop_assert_eq!(&dead, &undecodable);
        prop_assert_eq!(outcome.projected + outcome.duplicates + dead.len(), records.len());
        store.write(outcome.batch).unwrap();
        for g in good.iter().take(mutations.len()) {
            prop_assert!(store.contains_event(&g.event_id).unwrap(), "good event {} projected", g.event_id);
        }
        prop_assert_eq!(store.next_offset(topics::PATIENT_EVENTS.name, 0).unwrap(), Some(records.len() as i64));
    }
}
