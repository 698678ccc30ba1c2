//! Tests of the policy: the exhaustive decision matrix against tables written here
//! independently of the implementation, properties over random contexts, and the
//! documentation of every reason code.

mod docs;
mod matrix;
mod properties;

use spr_schemas::{EpochMillis, NhsNumber};

/// The patient whose record is asked for.
const PATIENT: &str = "9990000018";
/// Another patient.
const OTHER: &str = "9434765919";
/// The time of every decision in the tests.
const NOW: EpochMillis = 1_800_000_000_000;
const DAY: EpochMillis = 24 * 60 * 60 * 1000;

fn nhs(s: &str) -> NhsNumber {
    s.parse().unwrap()
}
