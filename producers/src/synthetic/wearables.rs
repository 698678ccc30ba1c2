//! Wearable streams: daily step counts and resting heart rate shared from a patient's
//! device through the NHS App.

use rand::Rng;
use spr_schemas::*;

use super::catalogue;
use super::record::{Record, DAY, HOUR};

/// For about one adult in eight: from a start date in the last year of their history,
/// a daily step count and resting heart rate (a few days missed now and then).
pub(super) fn stream(rec: &mut Record) {
    let person = rec.person.clone();
    if person.age_at(person.until) < 16 || !rec.chance(0.12) {
        return;
    }
    let Some(start) = rec.time_between((person.until - 365 * DAY).max(person.from), person.until)
    else {
        return;
    };
    let mut day = start - start.rem_euclid(DAY) + 23 * HOUR;
    while day < person.until {
        if rec.chance(0.9) {
            for test in [catalogue::STEPS, catalogue::RESTING_HEART_RATE] {
                rec.measure(
                    &catalogue::PATIENT_APP,
                    day,
                    test,
                    ObservationKind::Wearable,
                    None,
                );
                let synced = day + rec.rng.gen_range(HOUR..20 * HOUR);
                rec.events.last_mut().expect("just measured").recorded_at = synced;
            }
        }
        day += DAY;
    }
}
