//! Event identifiers: UUIDs assigned by whoever creates the event.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// The idempotency key of an event: a UUID, written in its hyphenated lower-case form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(Uuid);

/// The text is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an event id is a UUID such as 0b6c2a5e-4f1d-4a4e-9c39-5d6f2f0a1b2c; got {0:?}")]
pub struct EventIdError(String);

impl EventId {
    /// Wraps a UUID.
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// A fresh random (v4) id.
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// Parses the hyphenated form.
    pub fn parse(input: &str) -> Result<Self, EventIdError> {
        Uuid::try_parse(input)
            .map(Self)
            .map_err(|_| EventIdError(input.to_owned()))
    }

    /// The 16 bytes of the UUID, for compact keys.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// The id whose [`Self::as_bytes`] these are.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Uuid::from_bytes(bytes))
    }
}

impl FromStr for EventId {
    type Err = EventIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}
