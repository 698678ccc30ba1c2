//! Sensitive categories: the labels a patient's sharing choices are about.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A category of data that follows the patient's own sharing choice
/// (docs/access-model.md). On an event it appears as a sensitivity label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SensitiveCategory {
    /// Sexual health services.
    SexualHealth,
    /// Mental health.
    MentalHealth,
    /// HIV and sexually transmitted infections.
    HivSti,
    /// Gender identity.
    GenderIdentity,
    /// Fertility treatment.
    Fertility,
    /// Termination of pregnancy.
    TerminationOfPregnancy,
    /// Detail of safeguarding concerns (the existence of a flag is not withheld).
    Safeguarding,
    /// Genomic results.
    Genomics,
}

impl SensitiveCategory {
    /// Every category.
    pub const ALL: [SensitiveCategory; 8] = [
        Self::SexualHealth,
        Self::MentalHealth,
        Self::HivSti,
        Self::GenderIdentity,
        Self::Fertility,
        Self::TerminationOfPregnancy,
        Self::Safeguarding,
        Self::Genomics,
    ];

    /// The label as it appears on events and in URLs (`sexual-health`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SexualHealth => "sexual-health",
            Self::MentalHealth => "mental-health",
            Self::HivSti => "hiv-sti",
            Self::GenderIdentity => "gender-identity",
            Self::Fertility => "fertility",
            Self::TerminationOfPregnancy => "termination-of-pregnancy",
            Self::Safeguarding => "safeguarding",
            Self::Genomics => "genomics",
        }
    }
}

/// A label that is not one of the sensitive categories.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a sensitive category; expected one of sexual-health, mental-health, hiv-sti, gender-identity, fertility, termination-of-pregnancy, safeguarding, genomics")]
pub struct UnknownCategory(pub String);

impl FromStr for SensitiveCategory {
    type Err = UnknownCategory;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCategory(s.to_owned()))
    }
}

impl fmt::Display for SensitiveCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SensitiveCategory {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SensitiveCategory {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_parses_back_to_its_category() {
        for c in SensitiveCategory::ALL {
            assert_eq!(c.as_str().parse::<SensitiveCategory>(), Ok(c));
        }
        let err = "gossip".parse::<SensitiveCategory>().unwrap_err();
        assert!(err.to_string().contains("sexual-health"), "{err}");
    }
}
