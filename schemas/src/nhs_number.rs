//! The NHS number: ten digits whose last is a Mod 11 check digit.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not an NHS number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    /// Not ten digits once spaces or dashes in the standard 3-3-4 grouping are removed.
    #[error(
        "an NHS number has 10 digits (optionally grouped 3-3-4 with spaces or dashes); got {0:?}"
    )]
    Format(String),
    /// The Mod 11 check gives 10, which no valid NHS number can have.
    #[error("{0} is not a valid NHS number: its first nine digits give check value 10, which is never issued")]
    UnusableCheckValue(String),
    /// The check digit does not match the first nine digits.
    #[error(
        "{number} is not a valid NHS number: the check digit should be {expected}, not {actual}"
    )]
    CheckDigit {
        /// The ten digits as given.
        number: String,
        /// The check digit the first nine digits require.
        expected: u8,
        /// The last digit as given.
        actual: u8,
    },
}

/// A valid NHS number, stored as its ten digits.
///
/// Constructed only by parsing, so holding one means the Mod 11 check passed:
/// ```
/// use spr_schemas::NhsNumber;
/// let n: NhsNumber = "943 476 5919".parse().unwrap();
/// assert_eq!(n.as_str(), "9434765919");
/// assert!("9434765918".parse::<NhsNumber>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NhsNumber([u8; 10]);

impl NhsNumber {
    /// Parses ten digits, optionally grouped 3-3-4 by single spaces or dashes.
    pub fn parse(input: &str) -> Result<Self, NhsNumberError> {
        let digits =
            strip_grouping(input).ok_or_else(|| NhsNumberError::Format(input.to_owned()))?;
        let expected = check_digit(&digits[..9]);
        let number = || String::from_utf8_lossy(&digits).into_owned();
        match expected {
            None => Err(NhsNumberError::UnusableCheckValue(number())),
            Some(e) if e != digits[9] - b'0' => Err(NhsNumberError::CheckDigit {
                number: number(),
                expected: e,
                actual: digits[9] - b'0',
            }),
            Some(_) => Ok(Self(digits)),
        }
    }

    /// Builds the valid NHS number whose first nine digits are given, if one exists
    /// (about one prefix in eleven has none).
    pub fn from_prefix(prefix: [u8; 9]) -> Option<Self> {
        if prefix.iter().any(|d| *d > 9) {
            return None;
        }
        let ascii = prefix.map(|d| d + b'0');
        let check = check_digit(&ascii)?;
        let mut digits = [0u8; 10];
        digits[..9].copy_from_slice(&ascii);
        digits[9] = check + b'0';
        Some(Self(digits))
    }

    /// The ten digits, without grouping.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).expect("NHS number digits are ASCII")
    }
}

/// Removes 3-3-4 grouping, returning the ten ASCII digits.
fn strip_grouping(input: &str) -> Option<[u8; 10]> {
    let bytes = input.as_bytes();
    let ungrouped: Vec<u8> = match bytes.len() {
        10 => bytes.to_vec(),
        12 if bytes[3] == bytes[7] && matches!(bytes[3], b' ' | b'-') => {
            [&bytes[..3], &bytes[4..7], &bytes[8..]].concat()
        }
        _ => return None,
    };
    if !ungrouped.iter().all(u8::is_ascii_digit) {
        return None;
    }
    ungrouped.try_into().ok()
}

/// The Mod 11 check digit of nine ASCII digits: weights 10 down to 2, sum,
/// 11 minus the remainder mod 11, with 11 meaning 0 and 10 meaning invalid.
fn check_digit(nine: &[u8]) -> Option<u8> {
    let sum: u32 = nine
        .iter()
        .zip((2..=10).rev())
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    match 11 - (sum % 11) {
        11 => Some(0),
        10 => None,
        c => Some(c as u8),
    }
}

impl FromStr for NhsNumber {
    type Err = NhsNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for NhsNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NhsNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn published_example_numbers_are_valid() {
        for n in [
            "9434765919",
            "943 476 5919",
            "943-476-5919",
            "9990000018",
            "4010232137",
        ] {
            assert!(NhsNumber::parse(n).is_ok(), "{n} should be valid");
        }
    }

    #[test]
    fn a_wrong_check_digit_names_the_expected_one() {
        let err = NhsNumber::parse("9434765918").unwrap_err();
        assert_eq!(
            err,
            NhsNumberError::CheckDigit {
                number: "9434765918".into(),
                expected: 9,
                actual: 8
            }
        );
        assert!(err.to_string().contains("should be 9"));
    }

    #[test]
    fn malformed_inputs_are_format_errors() {
        for n in [
            "",
            "943476591",
            "94347659190",
            "943476591a",
            "943 4765919",
            "943-476 5919",
            "９４３４７６５９１９",
            " 9434765919",
        ] {
            assert!(
                matches!(NhsNumber::parse(n), Err(NhsNumberError::Format(_))),
                "{n:?}"
            );
        }
    }

    #[test]
    fn a_check_value_of_ten_is_never_valid() {
        let prefix = (0u32..1000)
            .map(|i| format!("{:09}", 999_000_000 + i))
            .find(|p| check_digit(p.as_bytes()).is_none())
            .expect("about one prefix in eleven has check value 10");
        for last in 0..10 {
            let n = format!("{prefix}{last}");
            assert!(matches!(
                NhsNumber::parse(&n),
                Err(NhsNumberError::UnusableCheckValue(_))
            ));
        }
    }

    proptest! {
        #[test]
        fn from_prefix_always_parses_back(prefix in proptest::array::uniform9(0u8..10)) {
            if let Some(n) = NhsNumber::from_prefix(prefix) {
                prop_assert_eq!(NhsNumber::parse(n.as_str()), Ok(n));
            }
        }

        #[test]
        fn exactly_one_last_digit_is_valid_unless_the_check_value_is_ten(prefix in "[0-9]{9}") {
            let valid = (0..10).filter(|d| NhsNumber::parse(&format!("{prefix}{d}")).is_ok()).count();
            let expected = if check_digit(prefix.as_bytes()).is_some() { 1 } else { 0 };
            prop_assert_eq!(valid, expected);
        }

        #[test]
        fn a_single_digit_change_is_always_detected(n in proptest::array::uniform9(0u8..10), pos in 0usize..10, delta in 1u8..10) {
            if let Some(valid) = NhsNumber::from_prefix(n) {
                let mut digits = valid.as_str().as_bytes().to_vec();
                digits[pos] = b'0' + (digits[pos] - b'0' + delta) % 10;
                let changed = String::from_utf8(digits).unwrap();
                prop_assert!(NhsNumber::parse(&changed).is_err());
            }
        }
    }
}
