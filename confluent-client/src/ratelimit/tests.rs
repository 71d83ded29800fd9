use super::*;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn window(limit: u64, remaining: u64, reset: u64) -> Window {
    Window {
        limit: Some(limit),
        remaining: Some(remaining),
        reset: Some(Duration::from_secs(reset)),
    }
}

fn ok(window: Window) -> Observation {
    Observation::Answered {
        window,
        latency: Duration::from_millis(50),
    }
}

/// A token-bucket server like the mock: `rate` per second, `burst` at once, headers on every
/// answer, 429 when empty.
struct Server {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
    headers: bool,
}

impl Server {
    fn new(rate: f64, burst: u32, at: Instant) -> Self {
        Self {
            rate,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            at,
            headers: true,
        }
    }

    fn set(&mut self, rate: f64, burst: u32) {
        self.rate = rate;
        self.burst = f64::from(burst);
        self.tokens = self.burst;
    }

    fn call(&mut self, now: Instant) -> Observation {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
        let headers = |tokens: f64, reset: f64| {
            if self.headers {
                window(
                    self.burst as u64,
                    tokens.floor() as u64,
                    reset.ceil() as u64,
                )
            } else {
                Window::default()
            }
        };
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            ok(headers(self.tokens, (self.burst - self.tokens) / self.rate))
        } else {
            let wait = ((1.0 - self.tokens) / self.rate).ceil().max(1.0);
            Observation::Throttled {
                window: headers(0.0, wait),
                retry_after: Some(secs(wait)),
            }
        }
    }
}

/// Drives `pacer` against `server` with an endless backlog for `for_secs` of simulated time,
/// answers arriving after `latency`: (calls, 429s).
fn drive(
    pacer: &mut Pacer,
    server: &mut Server,
    start: Instant,
    for_secs: f64,
    latency: Duration,
) -> (u32, u32) {
    let mut now = start;
    let end = start + secs(for_secs);
    let (mut calls, mut throttled) = (0, 0);
    while now < end {
        let wait = pacer.reserve(now);
        if wait.is_zero() {
            let answer = server.call(now);
            calls += 1;
            if matches!(answer, Observation::Throttled { .. }) {
                throttled += 1;
            }
            let answer = match answer {
                Observation::Answered { window, .. } => Observation::Answered { window, latency },
                other => other,
            };
            pacer.observe(now + latency, answer);
        } else {
            now += wait.min(secs(0.01)).max(Duration::from_millis(1));
        }
    }
    (calls, throttled)
}

/// Like [`drive`], with up to `concurrency` calls in flight, each answered `latency` after it
/// was sent (and counted by the server then), as the operator's workers send them.
fn drive_concurrent(
    pacer: &mut Pacer,
    server: &mut Server,
    start: Instant,
    for_secs: f64,
    latency: Duration,
    concurrency: usize,
) -> (u32, u32) {
    let mut now = start;
    let end = start + secs(for_secs);
    let mut in_flight: Vec<Instant> = Vec::new();
    let (mut calls, mut throttled) = (0, 0);
    while now < end {
        in_flight.sort();
        while in_flight.first().is_some_and(|at| *at <= now) {
            let at = in_flight.remove(0);
            let answer = match server.call(at) {
                Observation::Answered { window, .. } => Observation::Answered { window, latency },
                other => {
                    throttled += 1;
                    other
                }
            };
            pacer.observe(at, answer);
        }
        let wait = if in_flight.len() < concurrency {
            pacer.reserve(now)
        } else {
            secs(1.0)
        };
        if wait.is_zero() {
            calls += 1;
            in_flight.push(now + latency);
            continue;
        }
        let next = in_flight
            .first()
            .copied()
            .unwrap_or(now + wait)
            .min(now + wait);
        now = next.max(now + Duration::from_micros(100));
    }
    // the calls still out are answered: a real caller always observes its permit
    in_flight.sort();
    for at in in_flight {
        let answer = server.call(at);
        if matches!(answer, Observation::Throttled { .. }) {
            throttled += 1;
        }
        pacer.observe(at, answer);
    }
    (calls, throttled)
}

#[test]
fn concurrent_workers_with_latency_use_the_whole_limit() {
    let t = Instant::now();
    let mut p = Pacer::new(None, t);
    let mut s = Server::new(20.0, 20, t);
    let (calls, throttled) =
        drive_concurrent(&mut p, &mut s, t, 50.0, Duration::from_millis(50), 16);
    // the bound is 20 + 20 × 50 = 1 020 calls
    assert!(calls >= 1_000, "{calls} calls");
    assert!(
        f64::from(throttled) < 0.01 * f64::from(calls),
        "{throttled} 429s of {calls}"
    );
    s.set(10.0, 10);
    let (calls, throttled) = drive_concurrent(
        &mut p,
        &mut s,
        t + secs(50.0),
        10.0,
        Duration::from_millis(50),
        16,
    );
    assert!(calls >= 95, "{calls} calls");
    assert!(
        f64::from(throttled) <= 0.03 * f64::from(calls),
        "{throttled} 429s of {calls}"
    );
}

#[test]
fn after_an_idle_spell_one_call_goes_before_the_burst() {
    let t = Instant::now();
    let mut p = Pacer::new(None, t);
    let mut s = Server::new(20.0, 20, t);
    drive_concurrent(&mut p, &mut s, t, 10.0, Duration::from_millis(50), 16);
    // idle for 30 s, during which the server halves its limit: the 20 tokens the pacer
    // refilled meanwhile are no longer there
    s.set(10.0, 10);
    let later = t + secs(40.0);
    let (calls, throttled) =
        drive_concurrent(&mut p, &mut s, later, 10.0, Duration::from_millis(50), 16);
    assert_eq!(throttled, 0, "{throttled} 429s of {calls}");
    assert!(calls >= 100, "{calls} calls");
    // the probe waits for its answer
    let mut p = Pacer::new(None, t);
    assert_eq!(p.reserve(t), Duration::ZERO);
    p.observe(t, ok(window(20, 19, 1)));
    assert_eq!(p.reserve(later), Duration::ZERO);
    assert_eq!(p.reserve(later), PROBE_WAIT);
    p.observe(later, ok(window(20, 10, 1)));
    assert_eq!(p.reserve(later), Duration::ZERO);
}

#[test]
fn nothing_known_sends_freely() {
    let t = Instant::now();
    let mut p = Pacer::new(None, t);
    for _ in 0..100 {
        assert_eq!(p.reserve(t), Duration::ZERO);
    }
    assert_eq!(p.rate(), None);
}

#[test]
fn the_limit_is_learnt_from_the_headers() {
    let t = Instant::now();
    let mut p = Pacer::new(None, t);
    let mut s = Server::new(20.0, 20, t);
    let (calls, throttled) = drive(&mut p, &mut s, t, 30.0, Duration::ZERO);
    assert_eq!(p.rate(), Some(20.0));
    // the bound is 20 + 20 × 30 = 620 calls
    assert!((600..=620).contains(&calls), "{calls} calls");
    assert!(throttled <= 2, "{throttled} 429s");
}

#[test]
fn a_limit_that_halves_then_doubles_is_followed() {
    let t = Instant::now();
    let mut p = Pacer::new(None, t);
    let mut s = Server::new(20.0, 20, t);
    drive(&mut p, &mut s, t, 10.0, Duration::ZERO);
    s.set(10.0, 10);
    let (calls, throttled) = drive(&mut p, &mut s, t + secs(10.0), 20.0, Duration::ZERO);
    assert_eq!(p.rate(), Some(10.0));
    assert!((195..=212).contains(&calls), "{calls} calls");
    assert!(
        f64::from(throttled) <= 0.03 * f64::from(calls),
        "{throttled} 429s"
    );
    s.set(40.0, 40);
    let (calls, throttled) = drive(&mut p, &mut s, t + secs(30.0), 20.0, Duration::ZERO);
    assert_eq!(p.rate(), Some(40.0));
    assert!(calls >= 780, "{calls} calls");
    assert!(throttled <= 2, "{throttled} 429s");
}

#[test]
fn a_longer_window_means_a_slower_pace() {
    let t = Instant::now();
    let mut p = Pacer::new(None, t);
    // 100 calls per minute: the reset grows towards 60 s as the window empties
    p.observe(t, ok(window(100, 99, 1)));
    p.observe(t, ok(window(100, 50, 30)));
    p.observe(t, ok(window(100, 0, 60)));
    let rate = p.rate().unwrap_or_default();
    assert!((rate - 100.0 / 60.0).abs() < 1e-9, "{rate}");
    // and nothing is left: the next call waits for a token
    assert!(p.reserve(t) > Duration::ZERO);
}

#[test]
fn calls_in_flight_count_against_the_remaining_budget() {
    let t = Instant::now();
    let mut p = Pacer::new(None, t);
    for _ in 0..5 {
        assert_eq!(p.reserve(t), Duration::ZERO);
    }
    // the first answer says 3 remain, but 4 calls are still on their way
    p.observe(t, ok(window(10, 3, 1)));
    assert!(p.reserve(t) > Duration::ZERO);
}

#[test]
fn without_headers_429s_alone_drive_aimd() {
    let t = Instant::now();
    let mut p = Pacer::new(None, t);
    let mut s = Server::new(20.0, 20, t);
    s.headers = false;
    let (calls, throttled) = drive(&mut p, &mut s, t, 120.0, Duration::from_millis(50));
    let rate = p.rate().unwrap_or_default();
    assert!(rate > 5.0 && rate < 30.0, "{rate}");
    // at least half of the server's 20/s is used, and few calls are refused
    assert!(calls >= 1_200, "{calls} calls");
    assert!(
        f64::from(throttled) < 0.05 * f64::from(calls),
        "{throttled} 429s of {calls}"
    );
}

#[test]
fn retry_after_is_honoured() {
    let t = Instant::now();
    let mut p = Pacer::new(None, t);
    assert_eq!(p.reserve(t), Duration::ZERO);
    p.observe(
        t,
        Observation::Throttled {
            window: Window::default(),
            retry_after: Some(Duration::from_secs(7)),
        },
    );
    assert_eq!(p.reserve(t + secs(1.0)), Duration::from_secs(6));
    assert_eq!(p.reserve(t + secs(7.0)), Duration::ZERO);
    // a shorter pause never shortens a longer one
    p.pause(t + secs(7.0), Duration::from_secs(30));
    p.pause(t + secs(7.0), Duration::from_secs(1));
    assert_eq!(p.reserve(t + secs(8.0)), Duration::from_secs(29));
}

#[test]
fn the_users_flag_is_a_ceiling() {
    let t = Instant::now();
    let ceiling = Budget {
        per_second: 5.0,
        burst: 3,
    };
    let mut p = Pacer::new(Some(ceiling), t);
    // before anything is learnt, the flag alone
    for _ in 0..3 {
        assert_eq!(p.reserve(t), Duration::ZERO);
    }
    assert_eq!(p.reserve(t), Duration::from_millis(200));
    let mut s = Server::new(20.0, 20, t);
    let (calls, throttled) = drive(&mut p, &mut s, t + secs(1.0), 10.0, Duration::ZERO);
    assert_eq!(p.rate(), Some(5.0));
    assert!(calls <= 53, "{calls} calls");
    assert_eq!(throttled, 0);
    // and a server limit below it wins
    s.set(2.0, 2);
    drive(&mut p, &mut s, t + secs(11.0), 10.0, Duration::ZERO);
    assert_eq!(p.rate(), Some(2.0));
}

#[test]
fn a_slowing_server_is_paced_down() {
    let t = Instant::now();
    let mut p = Pacer::new(None, t);
    for _ in 0..LATENCY_SAMPLES {
        assert_eq!(p.reserve(t), Duration::ZERO);
        p.observe(t, ok(window(20, 19, 1)));
    }
    assert_eq!(p.rate(), Some(20.0));
    for _ in 0..100 {
        assert_eq!(p.reserve(t + secs(10.0)), Duration::ZERO);
        p.observe(
            t,
            Observation::Answered {
                window: window(20, 19, 1),
                latency: Duration::from_secs(1),
            },
        );
    }
    assert_eq!(p.rate(), Some(10.0));
}

#[tokio::test(start_paused = true)]
async fn long_waits_are_handed_back_to_the_caller() {
    let l = Limiter::new(None);
    let permit = l.acquire(Duration::from_secs(5)).await;
    permit
        .expect("nothing known: the call may go")
        .observe(Observation::Throttled {
            window: Window::default(),
            retry_after: Some(Duration::from_secs(30)),
        });
    assert_eq!(
        l.acquire(Duration::from_secs(5)).await.err(),
        Some(Duration::from_secs(30))
    );
    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(l.acquire(Duration::from_secs(5)).await.is_ok());
}

/// Eight callers wake for each token one at a time: the losers wait again, but none holds
/// on for longer than its own `max_wait` in all.
#[tokio::test(start_paused = true)]
async fn a_caller_never_waits_longer_than_its_max_wait_in_all() {
    let l = std::sync::Arc::new(Limiter::new(Some(Budget {
        per_second: 1.0,
        burst: 1,
    })));
    let max_wait = Duration::from_secs(2);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let l = l.clone();
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let granted = l
                .acquire(max_wait)
                .await
                .map(|p| p.observe(Observation::Lost));
            (started.elapsed(), granted.is_ok())
        }));
    }
    let mut granted = 0;
    for t in tasks {
        let (waited, ok) = t.await.expect("task");
        assert!(waited <= max_wait, "held on for {waited:?}");
        granted += usize::from(ok);
    }
    // one token at once, then one a second for two seconds: the others are handed back
    assert!((1..=4).contains(&granted), "{granted} granted");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_call_is_no_longer_in_flight() {
    let l = Limiter::new(None);
    for _ in 0..3 {
        drop(l.acquire(Duration::ZERO).await);
    }
    assert_eq!(l.lock().in_flight, 0);
    let kept = l.acquire(Duration::ZERO).await;
    assert_eq!(l.lock().in_flight, 1);
    drop(kept);
    assert_eq!(l.lock().in_flight, 0);
}

/// A server whose faults come at their own pace, not ours (another tool spending the same
/// budget, an incident): up to 12 faults queued at once, one added every 0.3–1.2 s, each
/// hitting the next 1–5 calls as a 5xx, a 429 (`Retry-After: 1`), a dropped connection or a
/// 1–3 s delay. The slower the pacer goes, the larger the share of its calls that fail.
struct Flaky {
    rng: fastrand::Rng,
    queue: std::collections::VecDeque<(u8, u32)>,
    next_fault: Instant,
}

impl Flaky {
    fn new(seed: u64, at: Instant) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
            queue: std::collections::VecDeque::new(),
            next_fault: at,
        }
    }

    /// The answer to a call sent at `now`, and when it arrives.
    fn call(&mut self, now: Instant) -> (Observation, Instant) {
        while self.next_fault <= now {
            if self.queue.len() < 12 {
                let kind = self.rng.u8(0..4);
                let hits = if kind == 1 {
                    self.rng.u32(2..=5)
                } else {
                    self.rng.u32(1..=3)
                };
                self.queue.push_back((kind, hits));
            }
            self.next_fault += Duration::from_millis(self.rng.u64(300..1200));
        }
        let fast = Duration::from_millis(50);
        let Some((kind, hits)) = self.queue.front_mut() else {
            return (ok(Window::default()), now + fast);
        };
        let kind = *kind;
        *hits -= 1;
        if *hits == 0 {
            self.queue.pop_front();
        }
        match kind {
            0 => (ok(Window::default()), now + fast),
            1 => (
                Observation::Throttled {
                    window: Window::default(),
                    retry_after: Some(Duration::from_secs(1)),
                },
                now + fast,
            ),
            2 => (Observation::Lost, now + fast),
            _ => {
                let latency = Duration::from_millis(self.rng.u64(1000..3000));
                (
                    Observation::Answered {
                        window: Window::default(),
                        latency,
                    },
                    now + latency,
                )
            }
        }
    }
}

#[test]
fn throttling_at_its_own_pace_does_not_pin_the_pace_to_the_floor() {
    for seed in 0..10 {
        let t = Instant::now();
        let mut p = Pacer::new(None, t);
        let mut s = Flaky::new(seed, t);
        let mut now = t;
        let end = t + secs(120.0);
        let mut in_flight: Vec<(Instant, Observation)> = Vec::new();
        let mut calls = 0u32;
        let mut per_10s = vec![0u32; 12];
        while now < end {
            in_flight.sort_by_key(|(at, _)| *at);
            while in_flight.first().is_some_and(|(at, _)| *at <= now) {
                let (at, o) = in_flight.remove(0);
                p.observe(at, o);
            }
            let wait = if in_flight.len() < 16 {
                p.reserve(now)
            } else {
                secs(1.0)
            };
            if wait.is_zero() {
                calls += 1;
                per_10s[((now - t).as_secs() / 10) as usize] += 1;
                let (o, at) = s.call(now);
                in_flight.push((at, o));
                continue;
            }
            let next = in_flight
                .first()
                .map(|(at, _)| *at)
                .unwrap_or(now + wait)
                .min(now + wait);
            now = next.max(now + Duration::from_micros(100));
        }
        // at least one call per Retry-After (1 s) and per pause: one every 2 s at worst
        // (before the floor, 1 call in 10 s for 90 s on end)
        assert!(
            per_10s.iter().all(|n| *n >= 5),
            "seed {seed}: {calls} calls; per 10 s {per_10s:?}"
        );
    }
}

#[test]
fn a_429_never_paces_slower_than_one_call_per_its_retry_after() {
    let t = Instant::now();
    let mut p = Pacer::new(None, t);
    let throttled = |wait: u64| Observation::Throttled {
        window: Window::default(),
        retry_after: Some(Duration::from_secs(wait)),
    };
    for i in 0..10 {
        let now = t + secs(f64::from(i) * 3.0);
        p.reserve(now);
        p.observe(now, throttled(2));
    }
    assert_eq!(p.rate(), Some(0.5));
    // 429s that say nothing: halved down to the pacer's own floor
    for i in 0..3 {
        let now = t + secs(40.0 + f64::from(i) * 3.0);
        p.reserve(now);
        p.observe(
            now,
            Observation::Throttled {
                window: Window::default(),
                retry_after: None,
            },
        );
    }
    assert_eq!(p.rate(), Some(MIN_RATE));
}
