//! Drawing a person: age, sex, where they are registered and treated, and their
//! demographics events.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use spr_schemas::*;

use super::catalogue::{self, Org};
use super::record::{Person, Record, Sex, DAY, YEAR};
use super::HISTORY_END;

/// Age bands (first age, last age, share of the population), roughly England's.
const AGE_BANDS: [(u32, u32, f64); 5] = [
    (0, 15, 0.19),
    (16, 44, 0.38),
    (45, 64, 0.25),
    (65, 84, 0.15),
    (85, 100, 0.03),
];

/// Draws a person with `history_years` of history ending at [`HISTORY_END`] (or death).
pub(super) fn draw(
    rng: &mut ChaCha8Rng,
    ordinal: u64,
    nhs_number: NhsNumber,
    history_years: u32,
) -> Person {
    let mut u = rng.gen::<f64>();
    let (low, high) = AGE_BANDS
        .iter()
        .find(|(_, _, share)| {
            u -= share;
            u < 0.0
        })
        .map_or((40, 60), |(l, h, _)| (*l, *h));
    let age_days = rng.gen_range(i64::from(low) * YEAR / DAY..(i64::from(high) + 1) * YEAR / DAY);
    let born_at = HISTORY_END - (age_days + 1) * DAY;
    let sex = if rng.gen_bool(0.51) {
        Sex::Female
    } else {
        Sex::Male
    };
    let from = born_at.max(HISTORY_END - i64::from(history_years) * YEAR);
    let death_rate = if high >= 85 {
        0.05
    } else if high >= 65 {
        0.015
    } else {
        0.001
    };
    let until = if rng.gen_bool(death_rate) {
        rng.gen_range(from..HISTORY_END)
    } else {
        HISTORY_END
    };
    let pick = |rng: &mut ChaCha8Rng, orgs: &[Org]| orgs[rng.gen_range(0..orgs.len())];
    Person {
        ordinal,
        nhs_number,
        sex,
        born_at: born_at - born_at.rem_euclid(DAY),
        from,
        until,
        gp: pick(rng, &catalogue::GP_PRACTICES),
        trust: pick(rng, &catalogue::ACUTE_TRUSTS),
        pharmacy: pick(rng, &catalogue::PHARMACIES),
    }
}

/// `YYYY-MM-DD` of an instant.
pub(super) fn date_of(at: EpochMillis) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(at.div_euclid(1_000))
        .expect("synthetic times are in range")
        .date();
    format!(
        "{}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The registration DEMOGRAPHICS event (always published first), an occasional change of
/// address, and the death notification of a patient who dies.
pub(super) fn demographics(rec: &mut Record) {
    let person = rec.person.clone();
    let index = usize::from(person.sex == Sex::Male);
    let given = rec.pick(&catalogue::GIVEN_NAMES[index]);
    let family = rec.pick(&catalogue::FAMILY_NAMES);
    let gender = if person.sex == Sex::Female {
        "female"
    } else {
        "male"
    };
    let mut details = DemographicsPayload {
        given_name: given.into(),
        family_name: family.into(),
        birth_date: Some(date_of(person.born_at)),
        gender: Some(gender.into()),
        postcode: Some(postcode(rec)),
        registered_gp_ods_code: Some(person.gp.ods.into()),
        deceased_at: None,
    };
    let registered_at = person.from.max(person.born_at + DAY);
    rec.emit(
        &person.gp,
        registered_at,
        catalogue::DEMOGRAPHICS,
        Payload::Demographics(details.clone()),
    );
    if rec.chance(0.08) {
        if let Some(moved_at) = rec.time_between(registered_at, person.until) {
            details.postcode = Some(postcode(rec));
            rec.emit(
                &person.gp,
                moved_at,
                catalogue::DEMOGRAPHICS,
                Payload::Demographics(details.clone()),
            );
        }
    }
    if person.until < HISTORY_END {
        details.deceased_at = Some(person.until);
        let notified = rec.emit(
            &person.gp,
            person.until,
            catalogue::DEMOGRAPHICS,
            Payload::Demographics(details),
        );
        notified.recorded_at = person.until + 2 * DAY;
    }
}

fn postcode(rec: &mut Record) -> String {
    let district = rec.pick(&catalogue::POSTCODE_DISTRICTS);
    let letters = b"ABDEFGHJLNPQRSTUWXYZ";
    format!(
        "{district} {}{}{}",
        rec.rng.gen_range(1..10),
        char::from(rec.pick(letters)),
        char::from(rec.pick(letters))
    )
}
