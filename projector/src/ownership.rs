//! Which partitions an instance owns when several share the topic.
//!
//! tansu never evicts a consumer-group member killed with SIGKILL, so group
//! rebalancing cannot move partitions (docs/architecture.md). Ownership is explicit
//! instead: instance `i` of `n` (`--instance i --instances n`, e.g. a StatefulSet
//! ordinal) owns every partition `p` with `p % n == i`, and keeps its own RocksDB.
//! When `n` changes, each instance drops the partitions it no longer owns
//! ([`crate::ProjectionStore::release_partitions`]) and rebuilds the ones it gained
//! from the log, reading them from offset 0 as it reads every partition.

use spr_producers::consume::{consumer_config, partitions_from_start, ClosesWithin};
use spr_schemas::topics;

use crate::worker::WorkerError;

/// The partitions among `all` that instance `instance` of `instances` owns.
pub fn instance_partitions(all: &[i32], instance: u32, instances: u32) -> Vec<i32> {
    all.iter()
        .copied()
        .filter(|p| (*p as u32) % instances.max(1) == instance)
        .collect()
}

/// Asks the broker for the partitions of `spr.patient-events` and returns those that
/// instance `instance` of `instances` owns (possibly none, with more instances than
/// partitions).
pub fn partitions_of_instance(
    bootstrap: &str,
    instance: u32,
    instances: u32,
) -> Result<Vec<i32>, WorkerError> {
    let consumer: ClosesWithin<rdkafka::consumer::StreamConsumer> =
        ClosesWithin::new(consumer_config(bootstrap, "spr-projector-metadata")?.create()?);
    let all: Vec<i32> = partitions_from_start(&consumer, topics::PATIENT_EVENTS.name, None)?
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect();
    Ok(instance_partitions(&all, instance, instances))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_has_exactly_one_owner_for_any_instance_count() {
        let all: Vec<i32> = (0..7).collect();
        for instances in 1..=4 {
            let mut owned: Vec<i32> = (0..instances)
                .flat_map(|i| instance_partitions(&all, i, instances))
                .collect();
            owned.sort();
            assert_eq!(owned, all, "{instances} instances");
        }
        assert_eq!(instance_partitions(&all, 1, 3), vec![1, 4]);
    }
}
