//! NHS numbers for a synthetic population: every one in the 999 test range, valid under
//! Mod 11, and unique, without remembering the numbers already used.

use spr_schemas::NhsNumber;

/// Six free digits after the `999` prefix.
const SPACE: u64 = 1_000_000;
/// Candidates `0..PATIENT_CANDIDATES` are patients' numbers; the rest are extra numbers
/// (retired duplicates, babies).
const PATIENT_CANDIDATES: u64 = 800_000;
/// Odd and not a multiple of 5, so `k * STRIDE mod SPACE` visits every candidate once.
const STRIDE: u64 = 7_919;

/// The most patients a population can have (about ten in eleven candidates have a check digit).
pub const MAX_PATIENTS: u64 = 700_000;

/// Hands out distinct NHS numbers: candidate `k` maps to `999` followed by the six digits
/// of `(k * STRIDE + offset) mod 10^6` (a bijection), skipping prefixes without a check digit.
#[derive(Debug, Clone)]
pub(super) struct NumberAllocator {
    offset: u64,
    next_patient: u64,
    next_extra: u64,
}

impl NumberAllocator {
    /// An allocator whose sequence depends on `seed`.
    pub(super) fn new(seed: u64) -> Self {
        Self {
            offset: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) % SPACE,
            next_patient: 0,
            next_extra: PATIENT_CANDIDATES,
        }
    }

    /// The next patient's number, or `None` once the patients' share of the range is used.
    pub(super) fn next_patient(&mut self) -> Option<NhsNumber> {
        Self::next_in(self.offset, &mut self.next_patient, PATIENT_CANDIDATES)
    }

    /// A number for a retired duplicate record or a newborn, or `None` once used up.
    pub(super) fn next_extra(&mut self) -> Option<NhsNumber> {
        Self::next_in(self.offset, &mut self.next_extra, SPACE)
    }

    fn next_in(offset: u64, next: &mut u64, end: u64) -> Option<NhsNumber> {
        while *next < end {
            let k = *next;
            *next += 1;
            let mut n = (k * STRIDE + offset) % SPACE;
            let mut prefix = [9u8, 9, 9, 0, 0, 0, 0, 0, 0];
            for digit in prefix[3..].iter_mut().rev() {
                *digit = (n % 10) as u8;
                n /= 10;
            }
            if let Some(number) = NhsNumber::from_prefix(prefix) {
                return Some(number);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_number_handed_out_is_distinct_valid_and_in_the_999_range() {
        let mut numbers = NumberAllocator::new(3);
        let mut seen = HashSet::new();
        let mut patients = 0;
        while let Some(n) = numbers.next_patient() {
            assert!(n.as_str().starts_with("999"));
            assert_eq!(NhsNumber::parse(n.as_str()), Ok(n));
            assert!(seen.insert(n), "{n} handed out twice");
            patients += 1;
        }
        assert!(patients >= MAX_PATIENTS, "only {patients} patient numbers");
        while let Some(n) = numbers.next_extra() {
            assert!(seen.insert(n), "extra {n} is also someone else's");
        }
        assert!(seen.len() > 900_000, "{} numbers in all", seen.len());
    }
}
