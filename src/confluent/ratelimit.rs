//! One limiter per credential, in front of every call made with it.
//!
//! Confluent's limits are per user and per organization and unpublished, so the limiter both
//! enforces a configured budget (a token bucket) and learns from the server: a 429 pauses every
//! caller of that credential until the server's `Retry-After` / relative `X-RateLimit-Reset`, and a
//! nearly exhausted `X-RateLimit-Remaining` spreads the rest of the window out.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A configured request budget: `per_second` sustained, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    pub per_second: f64,
    pub burst: u32,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    refilled_at: Instant,
    paused_until: Option<Instant>,
}

/// A token bucket plus a server-imposed pause. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Limiter {
    budget: Option<Budget>,
    state: Mutex<State>,
}

impl Limiter {
    /// A limiter enforcing `budget` (None: only the server's pauses).
    pub fn new(budget: Option<Budget>) -> Self {
        let tokens = budget.map(|b| f64::from(b.burst.max(1))).unwrap_or(0.0);
        Self {
            budget,
            state: Mutex::new(State {
                tokens,
                refilled_at: Instant::now(),
                paused_until: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is plain numbers, valid at every step: a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long the caller must wait before it may send, taking a token when it may send now.
    /// Returns zero when the call may go ahead.
    pub fn reserve(&self) -> Duration {
        let now = Instant::now();
        let mut s = self.lock();
        if let Some(until) = s.paused_until {
            if until > now {
                return until - now;
            }
            s.paused_until = None;
        }
        let Some(budget) = self.budget else {
            return Duration::ZERO;
        };
        let rate = budget.per_second.max(0.001);
        let burst = f64::from(budget.burst.max(1));
        let elapsed = now.saturating_duration_since(s.refilled_at).as_secs_f64();
        s.tokens = (s.tokens + elapsed * rate).min(burst);
        s.refilled_at = now;
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - s.tokens) / rate)
        }
    }

    /// Waits until a call may be sent, at most `max_wait`; returns the remaining wait when it
    /// would be longer (the caller then gives up and requeues instead of holding a worker).
    pub async fn acquire(&self, max_wait: Duration) -> Result<(), Duration> {
        loop {
            let wait = self.reserve();
            if wait.is_zero() {
                return Ok(());
            }
            if wait > max_wait {
                return Err(wait);
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// The server said 429: nobody sends with this credential for `wait`.
    pub fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut s = self.lock();
        s.paused_until = Some(s.paused_until.map_or(until, |u| u.max(until)));
        s.tokens = 0.0;
    }

    /// The server's `X-RateLimit-Remaining` and relative `X-RateLimit-Reset` of a response: when
    /// the window is nearly used up, spread what is left over the time until it resets.
    pub fn observe_window(&self, remaining: u64, reset: Duration) {
        if remaining > 1 || reset.is_zero() {
            return;
        }
        if remaining == 0 {
            self.pause(reset);
        } else {
            // one call left: let it go, but not before half the window has passed
            self.pause(reset / 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_bucket_allows_a_burst_then_the_rate() {
        let l = Limiter::new(Some(Budget {
            per_second: 10.0,
            burst: 3,
        }));
        for _ in 0..3 {
            assert_eq!(l.reserve(), Duration::ZERO);
        }
        let wait = l.reserve();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(l.reserve(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_everyone_and_long_waits_are_handed_back() {
        let l = Limiter::new(None);
        assert_eq!(l.reserve(), Duration::ZERO);
        l.pause(Duration::from_secs(30));
        assert_eq!(
            l.acquire(Duration::from_secs(5)).await,
            Err(Duration::from_secs(30))
        );
        l.pause(Duration::from_secs(1)); // a shorter pause never shortens a longer one
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(l.acquire(Duration::from_secs(5)).await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn an_exhausted_window_pauses_until_reset() {
        let l = Limiter::new(None);
        l.observe_window(10, Duration::from_secs(60));
        assert_eq!(l.reserve(), Duration::ZERO);
        l.observe_window(0, Duration::from_secs(8));
        assert_eq!(l.reserve(), Duration::from_secs(8));
    }
}
