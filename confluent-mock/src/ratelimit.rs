//! A token bucket per credential, as the real service limits per principal: exhausting it answers
//! 429 with `Retry-After`, and every admitted response advertises the remaining budget in the
//! `X-RateLimit-*` headers, so a client's limiter and back-off can be exercised.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::RateLimit;
use super::sync::lock;

/// The budget advertised in `X-RateLimit-Limit`, `-Remaining` and `-Reset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// The bucket size (`burst`).
    pub limit: u32,
    /// Whole tokens left after this request.
    pub remaining: u32,
    /// Seconds until the bucket is full again (on a 429: until the next token).
    pub reset_secs: u64,
}

/// The verdict on one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No limit is configured: no headers either.
    Unlimited,
    /// A token was taken.
    Admitted(Quota),
    /// The bucket is empty: answer 429 and wait `retry_after` seconds (at least 1).
    Limited {
        /// What to advertise.
        quota: Quota,
        /// Seconds until a token is available, rounded up, at least 1.
        retry_after: u64,
    },
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    limit: Option<RateLimit>,
    buckets: HashMap<String, Bucket>,
}

/// The buckets of every credential under one (changeable) limit.
#[derive(Debug, Default)]
pub struct RateLimiter {
    inner: Mutex<Inner>,
}

/// Sanitizes a limit: at least one token of burst and a positive, finite refill rate.
fn sanitize(limit: RateLimit) -> RateLimit {
    let per_second = if limit.per_second.is_finite() && limit.per_second > 0.0 {
        limit.per_second
    } else {
        0.001
    };
    RateLimit {
        per_second,
        burst: limit.burst.max(1),
    }
}

impl RateLimiter {
    /// A limiter with `limit` (`None`: unlimited).
    pub fn new(limit: Option<RateLimit>) -> Self {
        Self {
            inner: Mutex::new(Inner {
                limit: limit.map(sanitize),
                buckets: HashMap::new(),
            }),
        }
    }

    /// Replaces the limit; every bucket starts full again.
    pub fn set(&self, limit: Option<RateLimit>) {
        let mut inner = lock(&self.inner);
        inner.limit = limit.map(sanitize);
        inner.buckets.clear();
    }

    /// The limit in force.
    pub fn get(&self) -> Option<RateLimit> {
        lock(&self.inner).limit
    }

    /// Refills every bucket.
    pub fn refill(&self) {
        lock(&self.inner).buckets.clear();
    }

    /// Takes a token from `key`'s bucket at time `now`.
    pub fn check(&self, key: &str, now: Instant) -> Decision {
        let mut inner = lock(&self.inner);
        let Some(limit) = inner.limit else {
            return Decision::Unlimited;
        };
        let burst = f64::from(limit.burst);
        let rate = limit.per_second;
        let bucket = inner.buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Decision::Admitted(Quota {
                limit: limit.burst,
                remaining: bucket.tokens.floor() as u32,
                reset_secs: ((burst - bucket.tokens) / rate).ceil() as u64,
            })
        } else {
            let retry_after = (((1.0 - bucket.tokens) / rate).ceil() as u64).max(1);
            Decision::Limited {
                quota: Quota {
                    limit: limit.burst,
                    remaining: 0,
                    reset_secs: retry_after,
                },
                retry_after,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn unlimited_by_default() {
        let rl = RateLimiter::new(None);
        assert_eq!(rl.check("k", Instant::now()), Decision::Unlimited);
    }

    #[test]
    fn burst_then_refill() {
        let rl = RateLimiter::new(Some(RateLimit {
            per_second: 2.0,
            burst: 3,
        }));
        let t = Instant::now();
        for remaining in [2, 1, 0] {
            match rl.check("k", t) {
                Decision::Admitted(q) => {
                    assert_eq!(q.remaining, remaining);
                    assert_eq!(q.limit, 3);
                }
                other => panic!("{other:?}"),
            }
        }
        match rl.check("k", t) {
            Decision::Limited { retry_after, quota } => {
                assert_eq!(retry_after, 1);
                assert_eq!(quota.remaining, 0);
            }
            other => panic!("{other:?}"),
        }
        // other credentials have their own bucket
        assert!(matches!(rl.check("other", t), Decision::Admitted(_)));
        // half a second refills one token at 2/s
        assert!(matches!(
            rl.check("k", t + Duration::from_millis(500)),
            Decision::Admitted(_)
        ));
    }

    #[test]
    fn retry_after_rounds_up_slow_rates() {
        let rl = RateLimiter::new(Some(RateLimit {
            per_second: 0.1,
            burst: 1,
        }));
        let t = Instant::now();
        assert!(matches!(rl.check("k", t), Decision::Admitted(_)));
        match rl.check("k", t + Duration::from_secs(1)) {
            Decision::Limited { retry_after, .. } => assert_eq!(retry_after, 9),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn set_replaces_and_refills() {
        let rl = RateLimiter::new(Some(RateLimit {
            per_second: 1.0,
            burst: 1,
        }));
        let t = Instant::now();
        rl.check("k", t);
        assert!(matches!(rl.check("k", t), Decision::Limited { .. }));
        rl.set(Some(RateLimit {
            per_second: 1.0,
            burst: 0,
        }));
        assert_eq!(rl.get().map(|l| l.burst), Some(1));
        assert!(matches!(rl.check("k", t), Decision::Admitted(_)));
        rl.set(None);
        assert_eq!(rl.check("k", t), Decision::Unlimited);
    }
}
