//! Client-side pacing: one token bucket per SP-API operation of a tenant.
//!
//! # Architecture
//! - Amazon meters every (application, seller, operation) with a token bucket: `burst` tokens,
//!   refilled at `rate` per second; a request that finds no token gets 429.
//! - [`TokenBucket`] mirrors that bucket on our side. A caller *reserves* a token and is told how
//!   long to wait; tokens may go negative, so concurrent callers queue in arrival order.
//! - [`Pacer`] holds one bucket per [`Operation`], seeded from Amazon's documented usage plan,
//!   re-rated from the `x-amzn-RateLimit-Limit` header, drained on a 429.
//! - Buckets outlive the process: the engine saves a [`BucketState`] per operation at the end of
//!   a pass and restores it at the start of the next, so a CronJob that starts every 5 minutes does
//!   not assume a full burst that Amazon has not refilled.
//!
//! This module never sleeps on its own: [`Pacer::acquire`] sleeps, nothing else does, and all time
//! comes from `tokio::time`, so tests can pause the clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::Operation;
use crate::model::BucketState;

/// Rates outside this range are not believed (a header of `1e-20` would mean a wait of eons).
const RATE_RANGE: (f64, f64) = (1e-4, 1_000.0);
/// No single wait is longer than this, whatever the bucket says.
const MAX_WAIT: Duration = Duration::from_secs(3_600);

/// A token bucket (rate in tokens per second, capacity `burst`).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.updated = now;
    }

    /// Takes a token and returns how long the caller must wait before using it.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(-self.tokens / self.rate)
                .unwrap_or(MAX_WAIT)
                .min(MAX_WAIT)
        }
    }

    /// Amazon told us the rate it applies.
    pub fn set_rate(&mut self, rate: f64, now: Instant) {
        if !rate.is_finite() {
            return;
        }
        let rate = rate.clamp(RATE_RANGE.0, RATE_RANGE.1);
        if (rate - self.rate).abs() > f64::EPSILON {
            self.refill(now);
            self.rate = rate;
        }
    }

    /// Amazon answered 429: its bucket is empty whatever ours says.
    pub fn drain(&mut self, now: Instant) {
        self.refill(now);
        self.tokens = self.tokens.min(0.0);
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn tokens(&self, now: Instant) -> f64 {
        let mut copy = self.clone();
        copy.refill(now);
        copy.tokens
    }
}

/// The buckets of one tenant.
#[derive(Debug, Default)]
pub struct Pacer {
    buckets: Mutex<HashMap<Operation, TokenBucket>>,
}

impl Pacer {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_bucket<T>(&self, op: Operation, f: impl FnOnce(&mut TokenBucket, Instant) -> T) -> T {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("pacer lock poisoned");
        let bucket = buckets
            .entry(op)
            .or_insert_with(|| TokenBucket::new(op.documented_rate(), op.documented_burst(), now));
        f(bucket, now)
    }

    /// How long a request of `op` would wait if it were sent now (nothing is reserved).
    pub fn wait_time(&self, op: Operation) -> Duration {
        self.with_bucket(op, |b, now| {
            let tokens = b.tokens(now);
            if tokens >= 1.0 {
                Duration::ZERO
            } else {
                Duration::try_from_secs_f64((1.0 - tokens) / b.rate)
                    .unwrap_or(MAX_WAIT)
                    .min(MAX_WAIT)
            }
        })
    }

    /// Waits until a request of `op` may be sent.
    pub async fn acquire(&self, op: Operation) {
        let wait = self.with_bucket(op, |b, now| b.reserve(now));
        if !wait.is_zero() {
            tracing::debug!(
                operation = op.name(),
                wait_ms = wait.as_millis() as u64,
                "pacing"
            );
            tokio::time::sleep(wait).await;
        }
    }

    pub fn observe_rate_limit(&self, op: Operation, rate: f64) {
        self.with_bucket(op, |b, now| b.set_rate(rate, now));
    }

    pub fn throttled(&self, op: Operation) {
        self.with_bucket(op, |b, now| b.drain(now));
    }

    /// The current state of every bucket used so far, by Amazon's operation name.
    pub fn snapshot(&self) -> Vec<BucketState> {
        let now = Instant::now();
        let wall = Utc::now();
        let buckets = self.buckets.lock().expect("pacer lock poisoned");
        let mut out: Vec<_> = buckets
            .iter()
            .map(|(op, b)| BucketState {
                operation: op.name().to_owned(),
                rate: b.rate,
                burst: b.burst,
                tokens: b.tokens(now),
                saved_at: wall,
            })
            .collect();
        out.sort_by(|a, b| a.operation.cmp(&b.operation));
        out
    }

    /// Restores buckets saved by an earlier process, refilled for the time that has passed.
    /// A bucket of an operation this build does not know, or with absurd numbers, is ignored.
    pub fn restore(&self, saved: &[BucketState]) {
        let now = Instant::now();
        let wall = Utc::now();
        let mut buckets = self.buckets.lock().expect("pacer lock poisoned");
        for s in saved {
            let Some(operation) = Operation::from_name(&s.operation) else {
                continue;
            };
            if !(s.rate.is_finite() && s.rate > 0.0 && s.burst >= 1.0 && s.tokens.is_finite()) {
                continue;
            }
            let elapsed = (wall - s.saved_at)
                .to_std()
                .unwrap_or(Duration::ZERO)
                .as_secs_f64();
            let rate = s.rate.clamp(RATE_RANGE.0, RATE_RANGE.1);
            let tokens = (s.tokens + elapsed * rate).min(s.burst);
            buckets.insert(
                operation,
                TokenBucket {
                    rate,
                    burst: s.burst,
                    tokens,
                    updated: now,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_is_free_then_requests_are_spaced_at_the_rate() {
        let mut b = TokenBucket::new(0.5, 3.0, Instant::now());
        let now = Instant::now();
        assert_eq!(b.reserve(now), Duration::ZERO);
        assert_eq!(b.reserve(now), Duration::ZERO);
        assert_eq!(b.reserve(now), Duration::ZERO);
        // Fourth and fifth: one and two refill periods (2 s each at 0.5/s).
        assert_eq!(b.reserve(now), Duration::from_secs(2));
        assert_eq!(b.reserve(now), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_refills_up_to_burst_only() {
        let start = Instant::now();
        let mut b = TokenBucket::new(1.0, 2.0, start);
        b.reserve(start);
        b.reserve(start);
        let later = start + Duration::from_secs(100);
        assert!((b.tokens(later) - 2.0).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn header_rate_replaces_documented_rate_and_429_drains() {
        let start = Instant::now();
        let mut b = TokenBucket::new(0.0167, 1.0, start);
        b.reserve(start);
        b.set_rate(10.0, start);
        assert_eq!(b.reserve(start), Duration::from_millis(100));
        let mut full = TokenBucket::new(1.0, 5.0, start);
        full.drain(start);
        assert_eq!(full.reserve(start), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn absurd_header_rates_are_clamped_instead_of_waiting_forever() {
        let start = Instant::now();
        let mut b = TokenBucket::new(0.5, 1.0, start);
        b.set_rate(1e-20, start);
        b.reserve(start);
        assert_eq!(b.reserve(start), MAX_WAIT);
        b.set_rate(f64::INFINITY, start);
        assert!((b.rate() - RATE_RANGE.0).abs() < 1e-12);
    }

    #[tokio::test(start_paused = true)]
    async fn pacer_acquire_waits_on_the_paused_clock() {
        let pacer = Pacer::new();
        pacer.observe_rate_limit(Operation::GetOrderItemsV0, 0.5);
        let start = Instant::now();
        for _ in 0..30 {
            pacer.acquire(Operation::GetOrderItemsV0).await;
        }
        assert_eq!(Instant::now(), start, "the burst of 30 costs no time");
        pacer.acquire(Operation::GetOrderItemsV0).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn snapshot_round_trips_and_refills_with_elapsed_wall_time() {
        let pacer = Pacer::new();
        for _ in 0..20 {
            pacer.acquire(Operation::SearchOrders).await;
        }
        let mut snap = pacer.snapshot();
        assert_eq!(snap.len(), 1);
        assert!(snap[0].tokens.abs() < 1e-6);
        // Pretend it was saved 360 s ago: 0.0056/s * 360 s = 2.016 tokens.
        snap[0].saved_at -= chrono::Duration::seconds(360);
        let restored = Pacer::new();
        restored.restore(&snap);
        let tokens = restored.snapshot()[0].tokens;
        assert!((tokens - 2.016).abs() < 0.01, "{tokens}");
    }
}
