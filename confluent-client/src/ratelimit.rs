//! One limiter per credential, in front of every call made with it.
//!
//! Confluent's limits are per user and per organization, unpublished and shared with every other
//! tool of the organization, so the limiter learns its budget from the server instead of being
//! told it. [`Pacer`] is the decision: a pure state machine fed with what each call observed
//! (`X-RateLimit-Limit` / `-Remaining` / relative `-Reset`, 429s with `Retry-After`, latency) and
//! the current time, so that its behaviour is tested with simulated time. [`Limiter`] shares one
//! pacer between the tasks calling with a credential.
//!
//! What it learns:
//! - **headers**: the server grants `X-RateLimit-Limit` calls per window, and the longest
//!   `X-RateLimit-Reset` seen since the limit last changed is that window (a token bucket's reset
//!   is longest when it is empty, a fixed window's right after it opens). The pace is the limit
//!   over the window, the burst is the limit, and the local bucket never holds more tokens than
//!   the server said remain (minus the calls still in flight): other tools spending the same
//!   budget, or a limit that changed, show up there first. After a silence longer than the
//!   window, what the server said may no longer hold: one call goes first and its answer
//!   resynchronizes the bucket before the burst is spent.
//! - **429s alone** (no headers): AIMD. A 429 halves the pace (at most once a second, since the
//!   calls already in flight answer 429 together); each second without one adds a call per second.
//!   Never below one call per `Retry-After` of the last 429: whatever the server counts (a token
//!   bucket's next token, a fixed window's reset), it grants at least one call per such wait, so
//!   a slower pace cannot be what it asks for. Without this floor, 429s that do not follow our
//!   pace (another tool spending the organization's budget) pinned the pace at its minimum: the
//!   slower it went, the larger the share of its few calls that met them.
//! - **latency**: when answers take far longer than the fastest seen, the server is struggling:
//!   the pace shrinks in proportion, down to half.
//! - `Retry-After` (or the relative reset of a 429) pauses every caller of the credential.
//!
//! The user's `--confluent-rate-limit` / `--confluent-rate-burst` stay as a ceiling.

use parking_lot::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// A configured request budget: `per_second` sustained, `burst` at once. With learning, a ceiling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    pub per_second: f64,
    pub burst: u32,
}

/// The `X-RateLimit-*` headers of one answer (each may be absent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// `X-RateLimit-Limit`: calls granted per window.
    pub limit: Option<u64>,
    /// `X-RateLimit-Remaining`: calls left in the window after this one.
    pub remaining: Option<u64>,
    /// `X-RateLimit-Reset`: time until the window is full again (relative, not an epoch).
    pub reset: Option<Duration>,
}

/// What one call granted by [`Pacer::reserve`] ended with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Observation {
    /// Any answer but a 429, after `latency`.
    Answered { window: Window, latency: Duration },
    /// A 429: wait `retry_after` (the server's `Retry-After`, else its relative reset).
    Throttled {
        window: Window,
        retry_after: Option<Duration>,
    },
    /// No answer (network error, timeout): says nothing about the budget.
    Lost,
}

/// The slowest pace learning may settle on, in calls per second.
const MIN_RATE: f64 = 0.2;
/// Additive increase of the 429-only pace, in calls per second per second without a 429.
const INCREASE_PER_SECOND: f64 = 1.0;
/// A second 429 within this time of a decrease belongs to the same overshoot.
const DECREASE_QUIET: Duration = Duration::from_secs(1);
/// Weight of a new latency sample in the running average.
const LATENCY_WEIGHT: f64 = 0.1;
/// The average latency may grow to this multiple of the fastest before the pace shrinks.
const LATENCY_TOLERANCE: f64 = 4.0;
/// Seconds of average latency always tolerated (a fast loopback's floor is close to zero).
const LATENCY_SLACK: f64 = 0.1;
/// How often a caller asks again while a probe is out.
const PROBE_WAIT: Duration = Duration::from_millis(10);
/// Latency samples needed before latency is trusted.
const LATENCY_SAMPLES: u32 = 20;

/// The pure decision of when the next call may go, from what the server said so far.
#[derive(Clone, Debug)]
pub struct Pacer {
    ceiling: Option<Budget>,
    tokens: f64,
    refilled_at: Instant,
    paused_until: Option<Instant>,
    in_flight: u32,
    /// When the last answer came (None: never).
    answered_at: Option<Instant>,
    /// Last `X-RateLimit-Limit`.
    limit: Option<u64>,
    /// Longest reset seen since `limit` last changed.
    window: Option<Duration>,
    /// The pace learnt from 429s alone (None: no 429 yet).
    aimd: Option<f64>,
    /// One call per the last 429's wait: the least the server grants (see the module's doc).
    throttled_floor: f64,
    aimd_changed_at: Instant,
    aimd_decreased_at: Option<Instant>,
    latency_floor: Option<f64>,
    latency_average: Option<f64>,
    latency_samples: u32,
    /// Calls granted since `counted_since`: the pace actually used, for the first decrease.
    granted: u32,
    counted_since: Instant,
}

impl Pacer {
    /// A pacer that knows nothing yet; `ceiling` is the user's budget, if any.
    pub fn new(ceiling: Option<Budget>, now: Instant) -> Self {
        Self {
            ceiling,
            tokens: ceiling.map_or(0.0, |b| f64::from(b.burst.max(1))),
            refilled_at: now,
            paused_until: None,
            in_flight: 0,
            answered_at: None,
            limit: None,
            window: None,
            aimd: None,
            throttled_floor: MIN_RATE,
            aimd_changed_at: now,
            aimd_decreased_at: None,
            latency_floor: None,
            latency_average: None,
            latency_samples: 0,
            granted: 0,
            counted_since: now,
        }
    }

    /// The pace from the headers: the limit over the window.
    fn header_rate(&self) -> Option<f64> {
        let limit = self.limit? as f64;
        let window = self.window?.as_secs_f64().max(1.0);
        Some((limit / window).max(MIN_RATE))
    }

    /// The pace in force, in calls per second (None: unknown and unbounded).
    pub fn rate(&self) -> Option<f64> {
        let learnt = match self.header_rate() {
            Some(r) => Some(r * self.latency_factor()),
            None => self
                .aimd
                .map(|r| (r * self.latency_factor()).max(self.throttled_floor)),
        };
        match (learnt, self.ceiling) {
            (Some(r), Some(c)) => Some(r.min(c.per_second.max(0.001))),
            (Some(r), None) => Some(r),
            (None, Some(c)) => Some(c.per_second.max(0.001)),
            (None, None) => None,
        }
    }

    /// How many calls may go back to back.
    pub fn burst(&self) -> f64 {
        let learnt = match (self.limit, self.aimd) {
            (Some(limit), _) if self.header_rate().is_some() => Some(limit.max(1) as f64),
            (_, Some(aimd)) => Some(aimd.max(1.0)),
            _ => None,
        };
        let ceiling = self.ceiling.map(|c| f64::from(c.burst.max(1)));
        match (learnt, ceiling) {
            (Some(l), Some(c)) => l.min(c),
            (Some(l), None) => l,
            (None, Some(c)) => c,
            (None, None) => f64::INFINITY,
        }
    }

    /// 1 while answers come as fast as they used to; down to 1/2 when they slow down a lot.
    fn latency_factor(&self) -> f64 {
        match (self.latency_floor, self.latency_average) {
            (Some(floor), Some(average)) if self.latency_samples >= LATENCY_SAMPLES => {
                let tolerated = LATENCY_TOLERANCE * floor + LATENCY_SLACK;
                (tolerated / average.max(f64::EPSILON)).clamp(0.5, 1.0)
            }
            _ => 1.0,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(rate) = self.rate() {
            let elapsed = now
                .saturating_duration_since(self.refilled_at)
                .as_secs_f64();
            self.tokens = (self.tokens + elapsed * rate).min(self.burst());
        }
        self.refilled_at = now;
    }

    /// Zero when a call may go now (it is then counted as in flight until observed), else how
    /// long to wait before asking again.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        if let Some(until) = self.paused_until {
            if until > now {
                return until - now;
            }
            self.paused_until = None;
        }
        if self.in_flight > 0 && self.stale(now) {
            return PROBE_WAIT;
        }
        self.refill(now);
        let Some(rate) = self.rate() else {
            return self.grant();
        };
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return self.grant();
        }
        Duration::from_secs_f64((1.0 - self.tokens) / rate)
    }

    /// Nothing was heard from the server for longer than its window: what it said about the
    /// budget may no longer hold (the limit may have dropped meanwhile), so one call goes first
    /// and its answer resynchronizes the bucket before the burst is spent.
    fn stale(&self, now: Instant) -> bool {
        match (self.header_rate(), self.window, self.answered_at) {
            (Some(_), Some(window), Some(at)) => now.saturating_duration_since(at) > window,
            _ => false,
        }
    }

    fn grant(&mut self) -> Duration {
        self.in_flight = self.in_flight.saturating_add(1);
        self.granted = self.granted.saturating_add(1);
        Duration::ZERO
    }

    /// A pause imposed from outside a call (a 429 met by a caller of the same credential).
    pub fn pause(&mut self, now: Instant, wait: Duration) {
        let until = now + wait;
        self.paused_until = Some(self.paused_until.map_or(until, |u| u.max(until)));
        self.refill(now);
        self.tokens = 0.0;
    }

    /// What a granted call ended with.
    pub fn observe(&mut self, now: Instant, observation: Observation) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if observation != Observation::Lost {
            self.answered_at = Some(now);
        }
        match observation {
            Observation::Lost => {}
            Observation::Answered { window, latency } => {
                self.learn_latency(latency);
                self.learn_window(now, window);
                self.increase(now);
            }
            Observation::Throttled {
                window,
                retry_after,
            } => {
                self.learn_window(now, window);
                let asked = retry_after.or(window.reset);
                if self.header_rate().is_none() {
                    self.decrease(now, asked);
                }
                let wait = asked.unwrap_or(Duration::from_secs(1));
                self.pause(now, wait);
            }
        }
    }

    fn learn_latency(&mut self, latency: Duration) {
        let l = latency.as_secs_f64();
        self.latency_floor = Some(self.latency_floor.map_or(l, |f| f.min(l)));
        self.latency_average = Some(
            self.latency_average
                .map_or(l, |a| a + LATENCY_WEIGHT * (l - a)),
        );
        self.latency_samples = self.latency_samples.saturating_add(1);
    }

    fn learn_window(&mut self, now: Instant, window: Window) {
        self.refill(now);
        let known = self.header_rate().is_some();
        if let Some(limit) = window.limit
            && self.limit != Some(limit)
        {
            self.limit = Some(limit);
            self.window = None;
        }
        if let Some(reset) = window.reset {
            let reset = reset.max(Duration::from_secs(1));
            self.window = Some(self.window.map_or(reset, |w| w.max(reset)));
        }
        if let Some(remaining) = window.remaining {
            // The server's count does not include the calls still on their way to it.
            let left = (remaining as f64 - f64::from(self.in_flight)).max(0.0);
            self.tokens = if known || self.ceiling.is_some() {
                self.tokens.min(left)
            } else {
                left.min(self.burst())
            };
        }
    }

    fn increase(&mut self, now: Instant) {
        if let Some(aimd) = self.aimd {
            let elapsed = now.saturating_duration_since(self.aimd_changed_at);
            if elapsed >= Duration::from_secs(1) {
                // one step per second of answers, however long the credential sat idle
                self.aimd = Some(aimd + INCREASE_PER_SECOND);
                self.aimd_changed_at = now;
            }
        }
    }

    /// A 429 that asked to wait `asked` (None: it did not say).
    fn decrease(&mut self, now: Instant, asked: Option<Duration>) {
        self.throttled_floor = asked.map_or(MIN_RATE, |wait| {
            (1.0 / wait.as_secs_f64().max(f64::EPSILON)).max(MIN_RATE)
        });
        if self
            .aimd_decreased_at
            .is_some_and(|at| now.saturating_duration_since(at) < DECREASE_QUIET)
        {
            return;
        }
        let used = match self.aimd {
            Some(r) => r,
            None => {
                let elapsed = now
                    .saturating_duration_since(self.counted_since)
                    .as_secs_f64()
                    .max(1.0);
                f64::from(self.granted) / elapsed
            }
        };
        let used = self.ceiling.map_or(used, |c| used.min(c.per_second));
        self.aimd = Some((used / 2.0).max(self.throttled_floor));
        self.aimd_changed_at = now;
        self.aimd_decreased_at = Some(now);
    }
}

/// A [`Pacer`] shared by the tasks calling with one credential. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Limiter {
    pacer: Mutex<Pacer>,
}

impl Limiter {
    /// A limiter that learns the server's budget, never exceeding `ceiling`.
    pub fn new(ceiling: Option<Budget>) -> Self {
        Self {
            pacer: Mutex::new(Pacer::new(ceiling, Instant::now())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pacer> {
        self.pacer.lock()
    }

    /// Waits until a call may be sent, at most `max_wait` in all; returns the wait still ahead
    /// when that is longer (the caller then gives up and requeues instead of holding a worker).
    /// In all: the pacer reserves nothing for a waiter, so when several wake for one token the
    /// others wait again, and without a deadline a caller could hold its worker for as long as
    /// others keep winning (a reconcile blocked for a minute, new Invitations starved).
    pub async fn acquire(&self, max_wait: Duration) -> Result<Permit<'_>, Duration> {
        let deadline = Instant::now() + max_wait;
        loop {
            let now = Instant::now();
            let wait = self.lock().reserve(now);
            if wait.is_zero() {
                return Ok(Permit {
                    limiter: self,
                    observed: false,
                });
            }
            if now + wait > deadline {
                return Err(wait);
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// One call allowed by [`Limiter::acquire`]: it counts as in flight until observed. A permit
/// dropped unobserved (the call was cancelled) counts as [`Observation::Lost`], so the count of
/// calls in flight never drifts.
#[derive(Debug)]
pub struct Permit<'a> {
    limiter: &'a Limiter,
    observed: bool,
}

impl Permit<'_> {
    /// What the call ended with.
    pub fn observe(mut self, observation: Observation) {
        self.observed = true;
        self.limiter.lock().observe(Instant::now(), observation);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.observed {
            self.limiter
                .lock()
                .observe(Instant::now(), Observation::Lost);
        }
    }
}

#[cfg(test)]
mod tests;
