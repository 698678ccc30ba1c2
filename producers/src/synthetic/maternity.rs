//! Maternity pathways for women aged 16 to 45: booking, antenatal visits at the NICE
//! schedule's weeks, and a birth or an early loss.

use rand::Rng;
use spr_schemas::*;

use super::catalogue::{self, Org};
use super::numbers::NumberAllocator;
use super::primary_care;
use super::record::{Record, Sex, DAY, HOUR};

/// Youngest age at booking.
pub(super) const MIN_AGE: u32 = 16;
/// Oldest age at booking.
pub(super) const MAX_AGE: u32 = 45;

/// Pregnancies of a woman of child-bearing age during her history (about 7% a year from
/// 20 to 39, 3% otherwise), one at a time. Babies get NHS numbers from `numbers`.
pub(super) fn pregnancies(rec: &mut Record, numbers: &mut NumberAllocator) {
    let person = rec.person.clone();
    if person.sex != Sex::Female {
        return;
    }
    let mut gravida = rec.rng.gen_range(0..3);
    let mut parity = gravida.min(rec.rng.gen_range(0..3));
    let mut free_from = person.from;
    for conceived in rec.yearly_times(0.07) {
        let booking = conceived + i64::from(ANTENATAL_BOOKING_WEEK) * 7 * DAY;
        // A margin of two days keeps whole-year ages by the calendar in range too.
        let ages = [
            person.age_at(booking - 2 * DAY),
            person.age_at(booking + 2 * DAY),
        ];
        let age = ages[0];
        let of_age = ages.iter().all(|a| (MIN_AGE..=MAX_AGE).contains(a));
        if conceived < free_from || !of_age || booking + DAY >= person.until {
            continue;
        }
        if !(20..40).contains(&age) && rec.chance(0.6) {
            continue;
        }
        gravida += 1;
        let ended = pregnancy(rec, conceived, gravida, parity, numbers);
        if ended.1 {
            parity += 1;
        }
        free_from = ended.0 + 12 * 7 * DAY;
    }
}

/// One pregnancy from the last menstrual period `lmp`; returns when it ended and whether
/// in a birth.
fn pregnancy(
    rec: &mut Record,
    lmp: EpochMillis,
    gravida: i32,
    parity: i32,
    numbers: &mut NumberAllocator,
) -> (EpochMillis, bool) {
    let person = rec.person.clone();
    let unit = Org {
        setting: CareSetting::Maternity,
        role: "midwife",
        ..person.trust
    };
    let week = |w: i32| lmp + i64::from(w) * 7 * DAY;
    let episode_id = rec.local_id(&unit, "PREG");
    let estimated_delivery_at = week(40);
    let risks: Vec<String> = if rec.chance(0.15) {
        vec![rec
            .pick(&[
                "Gestational diabetes",
                "Raised BMI",
                "Previous caesarean section",
            ])
            .into()]
    } else {
        vec![]
    };
    let episode = |status| {
        Payload::PregnancyEpisode(PregnancyEpisodePayload {
            episode_id: episode_id.clone(),
            status,
            estimated_delivery_at: Some(estimated_delivery_at),
            gravida: Some(gravida),
            parity: Some(parity),
            risks: risks.clone(),
        })
    };
    let booked_at = rec.in_working_hours(week(ANTENATAL_BOOKING_WEEK));
    rec.emit(
        &unit,
        booked_at,
        catalogue::PREGNANCY,
        episode(PregnancyStatus::Active),
    );
    rec.emit(
        &catalogue::COMMUNITY_TRUST,
        booked_at + HOUR,
        catalogue::CARE_TEAM,
        Payload::CareTeam(CareTeamPayload {
            ods_code: person.trust.ods.into(),
            team: Some("Community midwifery".into()),
            practitioner_id: None,
            ends_at: Some(estimated_delivery_at + 6 * 7 * DAY),
        }),
    );
    let lost_at_week = rec.chance(0.12).then(|| rec.rng.gen_range(11..20));
    let birth_week = if rec.chance(0.07) {
        rec.rng.gen_range(30..37)
    } else {
        rec.rng.gen_range(37..42)
    };
    let end_week = lost_at_week.unwrap_or(birth_week);
    for weeks in catalogue::ANTENATAL_WEEKS {
        let at = rec.in_working_hours(week(weeks));
        if weeks >= end_week || at >= person.until {
            break;
        }
        let (concept, findings) = match weeks {
            10 => (
                catalogue::BOOKING_VISIT,
                "Booking appointment; bloods taken",
            ),
            12 => (catalogue::ANTENATAL_VISIT, "Dating scan normal"),
            20 => (catalogue::ANTENATAL_VISIT, "Anomaly scan normal"),
            _ => (catalogue::ANTENATAL_VISIT, "Fundal height as expected"),
        };
        rec.emit(
            &unit,
            at,
            concept,
            Payload::AntenatalVisit(AntenatalVisitPayload {
                episode_id: episode_id.clone(),
                gestation_weeks: Some(weeks),
                findings: Some(findings.into()),
                risks: risks.clone(),
            }),
        );
        if weeks == 20 && rec.chance(0.7) {
            primary_care::vaccinate(rec, at + 14 * DAY, catalogue::PERTUSSIS_VACCINE, 1, false);
        }
    }
    if let Some(lost) = lost_at_week {
        let at = week(lost);
        if at < person.until {
            rec.emit(
                &unit,
                at,
                catalogue::PREGNANCY,
                episode(PregnancyStatus::Ended),
            );
        }
        return (at, false);
    }
    let born_at = week(birth_week) + rec.rng.gen_range(0..7 * DAY);
    if born_at >= person.until {
        return (born_at, false);
    }
    let delivery = match rec.rng.gen::<f64>() {
        u if u < 0.6 => "spontaneous vaginal delivery",
        u if u < 0.72 => "instrumental delivery",
        _ => "caesarean section",
    };
    let weight = 3_400 + (birth_week - 40) * 180 + rec.rng.gen_range(-500..500);
    let baby_nhs_number = numbers.next_extra();
    let outcome = if rec.chance(0.996) {
        "live birth"
    } else {
        "stillbirth"
    };
    rec.emit(
        &unit,
        born_at,
        catalogue::BIRTH,
        Payload::Birth(BirthPayload {
            episode_id: episode_id.clone(),
            outcome: outcome.into(),
            delivery_method: Some(delivery.into()),
            gestation_weeks: Some(birth_week),
            birth_weight_grams: Some(weight),
            baby_nhs_number,
        }),
    );
    rec.emit(
        &unit,
        born_at + 6 * HOUR,
        catalogue::PREGNANCY,
        episode(PregnancyStatus::Completed),
    );
    (born_at, true)
}

/// Gestation week of the booking appointment.
const ANTENATAL_BOOKING_WEEK: i32 = 10;
