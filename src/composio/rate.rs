//! The request rate shared by every call of one client: a burst, then a steady
//! pace (GCRA, as in `governor`), adapted to what the server signals.
//!
//! Hand-written because the rate must change while requests wait: `governor`
//! fixes its quota at construction. Composio's limit is per key and per
//! window, and plans differ, so the client starts at `COMPOSIO_MAX_RPS` and
//! learns the server's limit:
//! - `x-ratelimit` / `x-ratelimit-window-size` headers, where present, set the
//!   rate to just under what they allow (never above the ceiling);
//! - otherwise a 429 halves the rate, once per pause: only a request sent
//!   after the last pause ended can cut it again, so a burst of 429s for
//!   requests already out counts once; each success adds a little back (AIMD);
//! - a `Retry-After` pauses every caller, not just the one that got it, and
//!   callers already waiting for a slot wait for the pause too.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Share of a server-announced limit we aim for: room for clock skew and for
/// other clients of the same key.
const SERVER_LIMIT_SHARE: f64 = 0.9;
/// Multiplicative decrease on a 429 without rate headers.
const DECREASE: f64 = 0.5;
/// Additive increase per success, as a share of the ceiling: full recovery
/// from the floor takes about a hundred successful calls.
const INCREASE_SHARE: f64 = 0.01;
/// The lowest rate a server's headers can set (one request in 100 s): below
/// the AIMD floor, since a server that announces less means it.
const MIN_SERVER_RATE: f64 = 0.01;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSnapshot {
    /// Requests per second allowed now.
    pub rate: f64,
    /// What the server's headers announced, if they did.
    pub server_rate: Option<f64>,
}

pub struct AdaptiveRate {
    ceiling: f64,
    floor: f64,
    burst: f64,
    state: Mutex<State>,
}

struct State {
    rate: f64,
    /// GCRA's theoretical arrival time of the next request.
    tat: Instant,
    paused_until: Option<Instant>,
    /// When the pause of the last decrease ended: requests sent before it
    /// were sent at the old rate and do not cut the rate again.
    decreased_until: Option<Instant>,
    server_rate: Option<f64>,
}

/// What a 429 (or any answer) said about the server's limit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerLimit {
    /// Requests allowed per window, and the window.
    pub per_window: Option<(f64, Duration)>,
}

impl ServerLimit {
    fn rate(&self) -> Option<f64> {
        let (requests, window) = self.per_window?;
        let secs = window.as_secs_f64();
        (requests > 0.0 && secs > 0.0).then(|| requests / secs)
    }
}

impl AdaptiveRate {
    /// `ceiling` requests a second at most, `burst` of them at once.
    pub fn new(ceiling: u32, burst: u32) -> Self {
        let ceiling = f64::from(ceiling.max(1));
        Self {
            ceiling,
            floor: ceiling.min(1.0),
            burst: f64::from(burst.max(1)),
            state: Mutex::new(State {
                rate: ceiling,
                tat: Instant::now(),
                paused_until: None,
                decreased_until: None,
                server_rate: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for this request's slot; returns when it may be sent. A pause
    /// that began while it waited is waited out too.
    pub async fn acquire(&self) -> Instant {
        loop {
            let slot = self.reserve(Instant::now());
            tokio::time::sleep_until(slot.into()).await;
            let paused = self.lock().paused_until.is_some_and(|p| p > Instant::now());
            if !paused {
                return Instant::now();
            }
        }
    }

    /// The slot of the next request, reserved: a burst, then one per interval.
    fn reserve(&self, now: Instant) -> Instant {
        let mut s = self.lock();
        let interval = Duration::from_secs_f64(1.0 / s.rate);
        let tolerance = interval.mul_f64(self.burst - 1.0);
        let start = s.paused_until.map_or(now, |p| p.max(now));
        let tat = s.tat.max(start);
        let slot = start.max(tat.checked_sub(tolerance).unwrap_or(start));
        s.tat = tat.max(slot) + interval;
        slot
    }

    pub fn on_success(&self, server: ServerLimit) {
        let mut s = self.lock();
        if let Some(rate) = server.rate() {
            s.server_rate = Some(rate);
            s.rate = (rate * SERVER_LIMIT_SHARE)
                .max(MIN_SERVER_RATE)
                .min(self.ceiling);
        } else if s.server_rate.is_none() {
            s.rate = (s.rate + self.ceiling * INCREASE_SHARE).min(self.ceiling);
        }
    }

    /// A 429 for a request sent at `sent_at`: pause everyone for `pause`, and
    /// slow down once per burst of 429s.
    pub fn on_throttled(&self, sent_at: Instant, pause: Duration, server: ServerLimit) {
        let now = Instant::now();
        let mut s = self.lock();
        let resume = now + pause;
        s.paused_until = Some(s.paused_until.map_or(resume, |p| p.max(resume)));
        if let Some(rate) = server.rate() {
            s.server_rate = Some(rate);
            s.rate = (rate * SERVER_LIMIT_SHARE)
                .max(MIN_SERVER_RATE)
                .min(self.ceiling);
        } else if s.decreased_until.is_none_or(|until| sent_at >= until) {
            s.rate = (s.rate * DECREASE).max(self.floor);
            s.decreased_until = s.paused_until;
        }
        // After the pause, resume at the steady pace: no burst into a window
        // that has only just reopened.
        let interval = Duration::from_secs_f64(1.0 / s.rate);
        let empty_bucket = resume + interval.mul_f64(self.burst - 1.0);
        s.tat = s.tat.max(empty_bucket);
    }

    pub fn snapshot(&self) -> RateSnapshot {
        let s = self.lock();
        RateSnapshot {
            rate: s.rate,
            server_rate: s.server_rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_a_steady_pace() {
        let limiter = AdaptiveRate::new(10, 3);
        let now = Instant::now();
        let slots: Vec<Duration> = (0..6).map(|_| limiter.reserve(now) - now).collect();
        let ms: Vec<u128> = slots.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [0, 0, 0, 100, 200, 300]);
    }

    #[test]
    fn a_429_pauses_everyone_and_halves_the_rate_once_per_pause() {
        let limiter = AdaptiveRate::new(20, 1);
        let sent = Instant::now();
        limiter.on_throttled(sent, Duration::from_millis(500), ServerLimit::default());
        // More 429s for requests sent before that pause ended: no further cut.
        for _ in 0..3 {
            limiter.on_throttled(sent, Duration::from_millis(500), ServerLimit::default());
            limiter.on_throttled(
                Instant::now() + Duration::from_millis(100),
                Duration::from_millis(500),
                ServerLimit::default(),
            );
        }
        assert_eq!(limiter.snapshot().rate, 10.0);
        let next = limiter.reserve(Instant::now());
        assert!(next >= sent + Duration::from_millis(490), "paused");
        // A request sent after the pause that is refused again cuts again.
        let after = limiter.lock().paused_until.unwrap() + Duration::from_millis(1);
        limiter.on_throttled(after, Duration::ZERO, ServerLimit::default());
        assert_eq!(limiter.snapshot().rate, 5.0);
    }

    #[test]
    fn the_rate_never_falls_below_the_floor() {
        let limiter = AdaptiveRate::new(8, 1);
        for _ in 0..20 {
            let after =
                limiter.lock().paused_until.unwrap_or_else(Instant::now) + Duration::from_millis(1);
            limiter.on_throttled(after, Duration::ZERO, ServerLimit::default());
        }
        assert_eq!(limiter.snapshot().rate, 1.0);
    }

    #[test]
    fn successes_recover_slowly_up_to_the_ceiling() {
        let limiter = AdaptiveRate::new(100, 1);
        limiter.on_throttled(Instant::now(), Duration::ZERO, ServerLimit::default());
        assert_eq!(limiter.snapshot().rate, 50.0);
        limiter.on_success(ServerLimit::default());
        assert_eq!(limiter.snapshot().rate, 51.0);
        for _ in 0..200 {
            limiter.on_success(ServerLimit::default());
        }
        assert_eq!(limiter.snapshot().rate, 100.0);
    }

    #[test]
    fn server_headers_set_the_rate_under_the_ceiling() {
        let limiter = AdaptiveRate::new(25, 1);
        let per_minute = ServerLimit {
            per_window: Some((600.0, Duration::from_secs(60))),
        };
        limiter.on_throttled(Instant::now(), Duration::from_secs(1), per_minute);
        let snap = limiter.snapshot();
        assert_eq!(snap.server_rate, Some(10.0));
        assert!((snap.rate - 9.0).abs() < 1e-9, "{snap:?}");
        // Successes do not creep above what the server announced.
        for _ in 0..100 {
            limiter.on_success(ServerLimit::default());
        }
        assert!((limiter.snapshot().rate - 9.0).abs() < 1e-9);
        let generous = ServerLimit {
            per_window: Some((100_000.0, Duration::from_secs(60))),
        };
        limiter.on_success(generous);
        assert_eq!(limiter.snapshot().rate, 25.0, "never above the ceiling");
        // A limit under our floor is obeyed: 30 a minute is 0.45 a second.
        let stingy = ServerLimit {
            per_window: Some((30.0, Duration::from_secs(60))),
        };
        limiter.on_success(stingy);
        assert!(
            (limiter.snapshot().rate - 0.45).abs() < 1e-9,
            "{:?}",
            limiter.snapshot()
        );
    }
}
