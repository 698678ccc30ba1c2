//! Journeys in the sensitive categories (each event labelled with its category), the
//! safeguarding flags, and the patients' sharing choices about those categories.

use rand::Rng;
use spr_schemas::*;

use super::catalogue::{self, Org};
use super::hospital;
use super::primary_care;
use super::record::{Record, Sex, DAY, HOUR, MINUTE, YEAR};

/// Every sensitive journey the patient's age and sex make possible, each for a small share.
pub(super) fn journeys(rec: &mut Record) {
    let person = rec.person.clone();
    let age = person.age_at(person.until);
    let female = person.sex == Sex::Female;
    if (16..=50).contains(&age) && rec.chance(0.08) {
        sexual_health(rec);
    }
    if age >= 18 && rec.chance(0.004) {
        hiv(rec);
    }
    if female && (25..=45).contains(&age) && rec.chance(0.03) {
        fertility(rec);
    }
    if female && (16..=45).contains(&age) && rec.chance(0.02) {
        termination(rec);
    }
    if (17..=45).contains(&age) && rec.chance(0.005) {
        gender_identity(rec);
    }
    if age >= 18 && rec.chance(0.01) {
        genomics(rec);
    }
    if rec.chance(0.015) {
        safeguarding(rec);
    }
}

/// An instant in the history at which the patient is at least `min_age`.
fn when_aged(rec: &mut Record, min_age: u32) -> Option<EpochMillis> {
    let from = rec
        .person
        .from
        .max(rec.person.born_at + i64::from(min_age) * YEAR);
    let at = rec.time_between(from, rec.person.until)?;
    Some(rec.in_working_hours(at))
}

/// Labels every event appended since `start` with `categories`.
fn label_since(rec: &mut Record, start: usize, categories: &[SensitiveCategory]) {
    for event in &mut rec.events[start..] {
        event
            .sensitivity
            .extend(categories.iter().map(|c| c.as_str().to_owned()));
    }
}

/// Sexual health clinic attendances with a chlamydia screen, contraception for some women.
fn sexual_health(rec: &mut Record) {
    let clinic = Org {
        role: "sexual-health-nurse",
        ..catalogue::COMMUNITY_TRUST
    };
    for _ in 0..rec.rng.gen_range(1..=3) {
        let Some(at) = when_aged(rec, 16) else {
            return;
        };
        let start = rec.events.len();
        let encounter_id = rec.local_id(&clinic, "SHC");
        rec.emit(
            &clinic,
            at,
            catalogue::SEXUAL_HEALTH_CONSULTATION,
            Payload::Encounter(EncounterPayload {
                encounter_class: EncounterClass::Outpatient,
                phase: EncounterPhase::Attendance,
                ended_at: Some(at + 20 * MINUTE),
                location: Some("Sexual health clinic".into()),
                reason: Some("Sexual health check".into()),
            }),
        )
        .encounter_id = Some(encounter_id.clone());
        if rec.person.sex == Sex::Female && rec.chance(0.3) {
            primary_care::acute_prescription(
                rec,
                &clinic,
                at + 15 * MINUTE,
                catalogue::DESOGESTREL,
                Some(&encounter_id),
            );
        }
        label_since(rec, start, &[SensitiveCategory::SexualHealth]);
        let result = if rec.chance(0.05) {
            "Detected"
        } else {
            "Not detected"
        };
        let screen = rec.emit(
            &clinic,
            at + 10 * MINUTE,
            catalogue::CHLAMYDIA_TEST,
            Payload::Observation(ObservationPayload {
                kind: ObservationKind::Laboratory,
                value: None,
                unit: None,
                value_text: Some(result.into()),
                interpretation: (result == "Detected").then(|| "POS".to_owned()),
            }),
        );
        screen.encounter_id = Some(encounter_id);
        screen.recorded_at = at + 3 * DAY;
        let last = rec.events.len() - 1;
        label_since(
            rec,
            last,
            &[SensitiveCategory::SexualHealth, SensitiveCategory::HivSti],
        );
    }
}

/// An HIV diagnosis: a positive antibody test, the CONDITION, and HIV clinic follow-up.
fn hiv(rec: &mut Record) {
    let Some(at) = when_aged(rec, 18) else {
        return;
    };
    let start = rec.events.len();
    let trust = rec.person.trust;
    rec.emit(
        &trust,
        at,
        catalogue::HIV_TEST,
        Payload::Observation(ObservationPayload {
            kind: ObservationKind::Laboratory,
            value: None,
            unit: None,
            value_text: Some("Reactive".into()),
            interpretation: Some("POS".into()),
        }),
    );
    let condition = if rec.chance(0.8) {
        catalogue::HIV_INFECTION
    } else {
        catalogue::GONORRHOEA
    };
    rec.diagnose(&trust, at + 2 * DAY, condition, Some(at));
    let clinic = Org {
        role: "consultant",
        ..trust
    };
    let mut next = at + 30 * DAY;
    while next < rec.person.until {
        hospital::outpatient(rec, &clinic, next, "HIV clinic", "HIV follow-up");
        next += rec.rng.gen_range(90..200) * DAY;
    }
    label_since(rec, start, &[SensitiveCategory::HivSti]);
}

/// Infertility, a referral to a fertility clinic, and a cycle of IVF.
fn fertility(rec: &mut Record) {
    let Some(at) = when_aged(rec, 25) else {
        return;
    };
    let start = rec.events.len();
    let gp = rec.person.gp;
    rec.diagnose(&gp, at, catalogue::INFERTILITY, Some(at - YEAR));
    hospital::refer(
        rec,
        &gp,
        at + 10 * MINUTE,
        catalogue::INDEPENDENT_CLINIC.ods,
        "Fertility service",
        ReferralPriority::Routine,
        "Unable to conceive after two years",
    );
    let treated_at = at + rec.rng.gen_range(60..200) * DAY;
    if treated_at < rec.person.until {
        rec.emit(
            &catalogue::INDEPENDENT_CLINIC,
            treated_at,
            catalogue::IVF,
            Payload::Procedure(ProcedurePayload {
                outcome: Some("Embryo transfer completed".into()),
                body_site: None,
                ended_at: Some(treated_at + 2 * HOUR),
            }),
        );
    }
    label_since(rec, start, &[SensitiveCategory::Fertility]);
}

/// A termination of pregnancy at an independent-sector clinic.
fn termination(rec: &mut Record) {
    let Some(at) = when_aged(rec, 16) else {
        return;
    };
    let start = rec.events.len();
    let method = rec.pick(&["Medical", "Surgical"]);
    rec.emit(
        &catalogue::INDEPENDENT_CLINIC,
        at,
        catalogue::TERMINATION,
        Payload::Procedure(ProcedurePayload {
            outcome: Some(format!("{method} termination completed")),
            body_site: None,
            ended_at: Some(at + 4 * HOUR),
        }),
    );
    label_since(rec, start, &[SensitiveCategory::TerminationOfPregnancy]);
}

/// Gender dysphoria recorded at the GP, a referral to the gender identity clinic, and
/// appointments there.
fn gender_identity(rec: &mut Record) {
    let Some(at) = when_aged(rec, 17) else {
        return;
    };
    let start = rec.events.len();
    let gp = rec.person.gp;
    rec.diagnose(&gp, at, catalogue::GENDER_DYSPHORIA, None);
    hospital::refer(
        rec,
        &gp,
        at + 10 * MINUTE,
        catalogue::GENDER_CLINIC.ods,
        "Gender identity clinic",
        ReferralPriority::Routine,
        "Gender incongruence",
    );
    let mut next = at + rec.rng.gen_range(180..400) * DAY;
    while next < rec.person.until {
        hospital::outpatient(
            rec,
            &catalogue::GENDER_CLINIC,
            next,
            "Gender identity clinic",
            "Assessment",
        );
        next += rec.rng.gen_range(60..180) * DAY;
    }
    label_since(rec, start, &[SensitiveCategory::GenderIdentity]);
}

/// A referral to clinical genetics and a GENOMIC_RESULT from the genomic laboratory hub.
fn genomics(rec: &mut Record) {
    let Some(at) = when_aged(rec, 18) else {
        return;
    };
    let start = rec.events.len();
    let trust = rec.person.trust;
    hospital::refer(
        rec,
        &rec.person.gp.clone(),
        at,
        trust.ods,
        "Clinical genetics",
        ReferralPriority::Routine,
        "Family history",
    );
    let (gene, variant, interpretation) = rec.pick(&catalogue::GENOMIC_FINDINGS);
    let reported_at = at + rec.rng.gen_range(40..120) * DAY;
    if reported_at < rec.person.until {
        rec.emit(
            &catalogue::GENOMIC_LAB,
            reported_at,
            catalogue::GENOMIC_TEST,
            Payload::GenomicResult(GenomicResultPayload {
                gene: Some(gene.into()),
                variant: Some(variant.into()),
                interpretation: interpretation.into(),
                report_text: Some(format!("{gene} {variant}: {interpretation}")),
            }),
        );
    }
    label_since(rec, start, &[SensitiveCategory::Genomics]);
}

/// Specialist mental-health care for a patient with a mental-health condition: a referral
/// to the community mental health team, appointments and a care-team assignment.
pub(super) fn mental_health_services(rec: &mut Record) {
    let Some(at) = when_aged(rec, 16) else {
        return;
    };
    let start = rec.events.len();
    let gp = rec.person.gp;
    let trust = catalogue::MENTAL_HEALTH_TRUST;
    hospital::refer(
        rec,
        &gp,
        at,
        trust.ods,
        "Community mental health team",
        ReferralPriority::Urgent,
        "Low mood not responding to treatment",
    );
    let practitioner = format!("{}-{:03}", trust.ods, rec.rng.gen_range(1..40));
    rec.emit(
        &trust,
        at + 7 * DAY,
        catalogue::CARE_TEAM,
        Payload::CareTeam(CareTeamPayload {
            ods_code: trust.ods.into(),
            team: Some("Community mental health team".into()),
            practitioner_id: Some(practitioner),
            ends_at: Some(at + YEAR),
        }),
    );
    let mut next = at + 14 * DAY;
    while next < rec.person.until.min(at + YEAR) {
        let seen_at = rec.in_working_hours(next);
        hospital::outpatient(
            rec,
            &trust,
            seen_at,
            "Community mental health team base",
            "Review",
        );
        next += rec.rng.gen_range(14..60) * DAY;
    }
    label_since(rec, start, &[SensitiveCategory::MentalHealth]);
}

/// A safeguarding flag (a child protection plan from social care, or an adult concern from
/// the GP), lifted later for some.
fn safeguarding(rec: &mut Record) {
    let Some(at) = when_aged(rec, 0) else {
        return;
    };
    let child = rec.person.age_at(at) < 18;
    let (raiser, concept, detail) = if child {
        (
            catalogue::SOCIAL_CARE,
            catalogue::SAFEGUARDING[0],
            "Child protection plan: neglect",
        )
    } else {
        (
            rec.person.gp,
            catalogue::SAFEGUARDING[1],
            "Concern about financial abuse by a relative",
        )
    };
    let start = rec.events.len();
    let flag = |active| {
        Payload::SafeguardingFlag(SafeguardingFlagPayload {
            active,
            detail: Some(detail.into()),
            review_at: Some(at + 90 * DAY),
        })
    };
    rec.emit(&raiser, at, concept, flag(true));
    if rec.chance(0.4) {
        let lifted_at = at + rec.rng.gen_range(90..400) * DAY;
        if lifted_at < rec.person.until {
            rec.emit(&raiser, lifted_at, concept, flag(false));
        }
    }
    label_since(rec, start, &[SensitiveCategory::Safeguarding]);
}

/// CONSENT_CHOICE events from the NHS App: about one patient in three with sensitive data
/// (and 2% of the others) withholds a category, completely or except in an emergency;
/// some later choose to share it again.
pub(super) fn consent_choices(rec: &mut Record) {
    let labelled: Vec<SensitiveCategory> = SensitiveCategory::ALL
        .into_iter()
        .filter(|c| {
            rec.events
                .iter()
                .any(|e| e.sensitivity.iter().any(|l| l == c.as_str()))
        })
        .collect();
    let p = if labelled.is_empty() { 0.02 } else { 0.35 };
    if !rec.chance(p) {
        return;
    }
    let category = if labelled.is_empty() {
        rec.pick(&SensitiveCategory::ALL)
    } else {
        rec.pick(&labelled)
    };
    let Some(at) = when_aged(rec, 13) else {
        return;
    };
    let choice = if rec.chance(0.5) {
        SharingChoice::Withhold
    } else {
        SharingChoice::WithholdExceptEmergency
    };
    let choose = |choice| Payload::ConsentChoice(ConsentChoicePayload { category, choice });
    rec.emit(
        &catalogue::PATIENT_APP,
        at,
        catalogue::CONSENT_PREFERENCE,
        choose(choice),
    );
    if rec.chance(0.15) {
        let changed_at = at + rec.rng.gen_range(30..300) * DAY;
        if changed_at < rec.person.until {
            rec.emit(
                &catalogue::PATIENT_APP,
                changed_at,
                catalogue::CONSENT_PREFERENCE,
                choose(SharingChoice::Share),
            );
        }
    }
}
