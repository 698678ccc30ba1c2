//! A deterministic synthetic population of UK care journeys (docs/events.md, "Synthetic
//! population"): the same configuration gives the same patients, events, ids, times and
//! order on every machine. Synthetic data only: every NHS number is in the 999 range
//! reserved for testing and passes the Mod 11 check.
//!
//! [`Population`] generates patient by patient, so a population of any size streams in
//! bounded memory. Each patient has their own random stream (seed, patient ordinal), so
//! a smaller population is a prefix of a larger one with the same seed.

mod catalogue;
mod hospital;
mod maternity;
mod numbers;
mod person;
mod primary_care;
mod quirks;
mod record;
mod sensitive;
mod tally;
mod wearables;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use spr_schemas::{ClinicalEvent, EpochMillis, NhsNumber};

pub use numbers::MAX_PATIENTS;
pub use tally::StreamTally;

/// 2026-01-01T00:00:00Z: the end of every synthetic patient's history.
pub const HISTORY_END: EpochMillis = 1_767_225_600_000;

/// Which journeys and data-quality problems a population has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Every journey, the sensitive categories, sharing choices, wearables, and real feeds'
    /// problems: amendments, entries in error, late arrivals, duplicated deliveries,
    /// conflicting sources and NHS number merges.
    Realistic,
    /// Clinical journeys only (no sensitive categories, safeguarding, sharing choices or
    /// wearable streams) and no data-quality problems: every event stands alone, is
    /// visible to every clinical role and appears once, for tests that compare a
    /// projection with what was published event for event.
    Clean,
}

/// How big a population is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopulationSize {
    /// Exactly this many patients.
    Patients(u64),
    /// Whole patients until at least this many events have been generated.
    Events(u64),
}

/// What population to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PopulationConfig {
    /// The seed: the same seed gives the same population.
    pub seed: u64,
    /// How many patients or events.
    pub size: PopulationSize,
    /// Which journeys and data-quality problems.
    pub profile: Profile,
    /// Years of history before [`HISTORY_END`] (fewer for patients born since).
    pub history_years: u32,
}

/// A population that cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PopulationError {
    /// More patients than the 999 test range has numbers for.
    #[error("{0} patients requested; the 999 test range has numbers for at most {MAX_PATIENTS}: ask for fewer, or add history with --history-years")]
    TooManyPatients(u64),
    /// A history of zero years has no events.
    #[error("a history of 0 years has no events; use --history-years 1 or more")]
    NoHistory,
}

/// One synthetic patient and their events, in publication order.
#[derive(Debug, Clone)]
pub struct SyntheticPatient {
    /// Their NHS number (999 range); almost every event is keyed by it.
    pub nhs_number: NhsNumber,
    /// A duplicate record's number merged into this one: the events A&E recorded under
    /// it, and one of the two merge events, are keyed by it.
    pub retired_nhs_number: Option<NhsNumber>,
    /// Their events, in the order their sources publish them (by recording time, with
    /// the registration first); a duplicated delivery appears twice.
    pub events: Vec<ClinicalEvent>,
}

impl SyntheticPatient {
    /// Adds a care-team assignment of organisation `ods_code` to the patient, with no
    /// end: the legitimate relationship a clinician there needs to read the whole record.
    pub fn with_care_team(mut self, ods_code: &str) -> Self {
        let mut assignment = spr_schemas::examples::one_of_each_type(self.nhs_number)
            .into_iter()
            .find(|e| e.event_type() == spr_schemas::EventType::CareTeam)
            .expect("the examples include a care-team event");
        if let spr_schemas::Payload::CareTeam(team) = &mut assignment.payload {
            team.ods_code = ods_code.into();
            team.ends_at = None;
        }
        self.events.push(assignment);
        self
    }
}

/// A population, generated one patient at a time.
#[derive(Debug, Clone)]
pub struct Population {
    config: PopulationConfig,
    numbers: numbers::NumberAllocator,
    next_ordinal: u64,
    events_so_far: u64,
}

impl Population {
    /// Prepares the population `config` describes.
    pub fn new(config: PopulationConfig) -> Result<Self, PopulationError> {
        if config.history_years == 0 {
            return Err(PopulationError::NoHistory);
        }
        if let PopulationSize::Patients(n) = config.size {
            if n > MAX_PATIENTS {
                return Err(PopulationError::TooManyPatients(n));
            }
        }
        Ok(Self {
            config,
            numbers: numbers::NumberAllocator::new(config.seed),
            next_ordinal: 0,
            events_so_far: 0,
        })
    }

    fn done(&self) -> bool {
        self.next_ordinal >= MAX_PATIENTS
            || match self.config.size {
                PopulationSize::Patients(n) => self.next_ordinal >= n,
                PopulationSize::Events(n) => self.events_so_far >= n,
            }
    }
}

impl Iterator for Population {
    type Item = SyntheticPatient;

    fn next(&mut self) -> Option<SyntheticPatient> {
        if self.done() {
            return None;
        }
        let nhs_number = self.numbers.next_patient()?;
        let patient = generate(
            &self.config,
            self.next_ordinal,
            nhs_number,
            &mut self.numbers,
        );
        self.next_ordinal += 1;
        self.events_so_far += patient.events.len() as u64;
        Some(patient)
    }
}

/// A small clean population (one year of history), collected in memory: for tests and
/// benchmarks that compare what they published with what came out.
pub fn population(patients: usize, seed: u64) -> Vec<SyntheticPatient> {
    Population::new(PopulationConfig {
        seed,
        size: PopulationSize::Patients(patients as u64),
        profile: Profile::Clean,
        history_years: 1,
    })
    .expect("a one-year population of a test's size is valid")
    .collect()
}

/// One patient's whole record.
fn generate(
    config: &PopulationConfig,
    ordinal: u64,
    nhs_number: NhsNumber,
    numbers: &mut numbers::NumberAllocator,
) -> SyntheticPatient {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(ordinal);
    let person = person::draw(&mut rng, ordinal, nhs_number, config.history_years);
    let mut rec = record::Record::new(person, rng);
    let realistic = config.profile == Profile::Realistic;
    person::demographics(&mut rec);
    let conditions = primary_care::long_term_conditions(&mut rec, realistic);
    for condition in &conditions {
        primary_care::long_term_condition(&mut rec, *condition);
        if condition.mental_health && rec.chance(0.35) {
            sensitive::mental_health_services(&mut rec);
        }
    }
    primary_care::allergies(&mut rec);
    primary_care::consultations(&mut rec);
    primary_care::immunisations(&mut rec, !conditions.is_empty());
    hospital::emergencies_and_admissions(&mut rec);
    maternity::pregnancies(&mut rec, numbers);
    let mut retired_nhs_number = None;
    if realistic {
        wearables::stream(&mut rec);
        sensitive::journeys(&mut rec);
        sensitive::consent_choices(&mut rec);
        quirks::conflicts(&mut rec);
        retired_nhs_number = quirks::merge(&mut rec, numbers);
        quirks::corrections(&mut rec);
    }
    rec.publication_order();
    if realistic {
        quirks::duplicate_deliveries(&mut rec);
    }
    SyntheticPatient {
        nhs_number,
        retired_nhs_number,
        events: rec.events,
    }
}
