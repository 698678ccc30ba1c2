//! How many documents each publishing system may post: a sustained rate and a burst per
//! system (the token's `sub`), so that one system sending in a loop cannot crowd the
//! others off the gateway or flood the log. Over it, `429` with `Retry-After`.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};

/// Documents a minute per system when none is configured (50 a second).
pub const DEFAULT_DOCUMENTS_PER_MINUTE: u32 = 3_000;
/// Documents a system may send at once, above its rate, when none is configured.
pub const DEFAULT_BURST_DOCUMENTS: u32 = 100;

/// Systems tracked before those idle long enough to have a full burst again are
/// forgotten (a forgotten system starts with a full burst, as it would anyway).
const PRUNE_ABOVE_SYSTEMS: usize = 1_000;

/// One rate and burst, applied to each publishing system on its own: a document every
/// `60 / per_minute` seconds, and up to `burst` at once after a quiet spell (GCRA).
#[derive(Debug)]
pub struct PublisherRateLimit {
    limiter: DefaultKeyedRateLimiter<String>,
    per_minute: NonZeroU32,
    burst: NonZeroU32,
}

/// Why a limit cannot be built.
#[derive(Debug, thiserror::Error)]
#[error(
    "the gateway's rate limit needs at least one document a minute and a burst of at least one"
)]
pub struct ZeroRateLimit;

impl PublisherRateLimit {
    /// At most `per_minute` documents a minute from each system, `burst` of them at once.
    pub fn new(per_minute: u32, burst: u32) -> Result<Self, ZeroRateLimit> {
        let per_minute = NonZeroU32::new(per_minute).ok_or(ZeroRateLimit)?;
        let burst = NonZeroU32::new(burst).ok_or(ZeroRateLimit)?;
        Ok(Self {
            limiter: DefaultKeyedRateLimiter::keyed(
                Quota::per_minute(per_minute).allow_burst(burst),
            ),
            per_minute,
            burst,
        })
    }

    /// Counts one document from `system`; if it is over its limit, how long until the
    /// next is accepted (a refused document is not counted).
    pub(crate) fn check(&self, system: &str) -> Result<(), Duration> {
        if self.limiter.len() > PRUNE_ABOVE_SYSTEMS {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter
            .check_key(&system.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// The sustained rate and the burst, for messages.
    pub(crate) fn limits(&self) -> (u32, u32) {
        (self.per_minute.get(), self.burst.get())
    }
}

impl Default for PublisherRateLimit {
    fn default() -> Self {
        Self::new(DEFAULT_DOCUMENTS_PER_MINUTE, DEFAULT_BURST_DOCUMENTS)
            .expect("the defaults are not zero")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_system_has_its_own_burst_and_waits_for_its_rate() {
        let limit = PublisherRateLimit::new(1, 2).unwrap();
        assert_eq!(limit.check("a"), Ok(()));
        assert_eq!(limit.check("a"), Ok(()));
        let wait = limit.check("a").unwrap_err();
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert_eq!(limit.check("b"), Ok(()), "another system is not held back");
    }

    #[test]
    fn a_zero_rate_or_burst_is_refused() {
        assert!(PublisherRateLimit::new(0, 1).is_err());
        assert!(PublisherRateLimit::new(1, 0).is_err());
    }
}
