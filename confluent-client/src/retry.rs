//! Capped exponential backoff with full jitter, honouring the server's own wait.
//!
//! Used by the client for idempotent calls and by the controller for per-object requeues, so the
//! two agree on how patient the operator is.

use std::time::Duration;

/// How often and how long to retry a transient failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay before jitter.
    pub base: Duration,
    /// No computed delay exceeds this (a server-requested wait may).
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The exponential ceiling for the `attempt`-th retry (0-based), before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before the `attempt`-th retry: a uniformly random point in the upper half of
    /// the exponential ceiling (so retries of many objects spread out but never collapse to
    /// zero), and never less than the server's `Retry-After`.
    pub fn delay(&self, attempt: u32, server_wait: Option<Duration>) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        let span = u64::try_from((ceiling - half).as_millis()).unwrap_or(u64::MAX);
        let jittered = half + Duration::from_millis(fastrand::u64(0..=span));
        match server_wait {
            Some(wait) => jittered.max(wait),
            None => jittered,
        }
    }
}

/// Retry policy of the client's idempotent calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included. 1 disables retries.
    pub max_attempts: u32,
    /// The delays between attempts.
    pub backoff: Backoff,
    /// A server-requested wait longer than this is not slept inside the call: the error goes
    /// back to the caller, which can requeue the work instead of holding a worker.
    pub max_inline_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            backoff: Backoff::default(),
            max_inline_wait: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(4), Duration::from_secs(1));
        assert_eq!(b.ceiling(1000), Duration::from_secs(1));
        for attempt in 0..10 {
            for _ in 0..50 {
                let d = b.delay(attempt, None);
                assert!(
                    d >= b.ceiling(attempt) / 2 && d <= b.ceiling(attempt),
                    "{d:?}"
                );
            }
        }
    }

    #[test]
    fn the_server_wait_is_a_floor() {
        let b = Backoff::default();
        assert_eq!(
            b.delay(0, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
    }
}
