//! The simulator's mutable world behind one mutex: LWA grants and issued access tokens, each
//! seller's orders and reports, token buckets per (refresh token, operation), pending faults,
//! statistics and the request log. No lock is ever held across an `.await`.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::report::queue::Reports;
use crate::seed::SplitMix64;
use crate::{Fault, FaultKind, RecordedRequest, SimConfig, SimOp, SimOrder, SimStats};

pub(crate) struct Shared {
    pub config: SimConfig,
    /// "http://127.0.0.1:PORT": report document URLs point back at the sim.
    pub base_url: String,
    state: Mutex<State>,
}

impl Shared {
    pub fn new(config: SimConfig, base_url: String) -> Shared {
        // Access tokens and request ids must differ between runs, like Amazon's; fixtures do not
        // use this generator.
        let entropy = RandomState::new().hash_one(std::process::id())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
        Shared {
            base_url,
            state: Mutex::new(State {
                reports: Reports::new(&config),
                grants: HashMap::new(),
                access_tokens: HashMap::new(),
                orders: HashMap::new(),
                bucket_overrides: HashMap::new(),
                buckets: HashMap::new(),
                faults: VecDeque::new(),
                lwa_outages: 0,
                stats: SimStats::default(),
                requests: Vec::new(),
                rng: SplitMix64::new(entropy),
            }),
            config,
        }
    }

    /// A panic in one handler must not take the whole simulator down with a poisoned lock.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub(crate) struct AccessGrant {
    pub refresh_token: String,
    pub seller_id: String,
    pub expires_at: Instant,
}

/// Continuous-refill token bucket (Amazon's usage-plan model, FACTS §3.2).
pub(crate) struct Bucket {
    tokens: f64,
    rate: f64,
    burst: u32,
    refilled_at: Instant,
}

impl Bucket {
    fn full(rate: f64, burst: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(burst),
            rate,
            burst,
            refilled_at: now,
        }
    }

    /// Takes one token if at least one is available; a refused request consumes nothing.
    fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(f64::from(self.burst));
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub(crate) enum AuthFailure {
    Missing,
    Invalid,
    Expired,
}

pub(crate) struct State {
    /// refresh token → seller id.
    pub grants: HashMap<String, String>,
    pub access_tokens: HashMap<String, AccessGrant>,
    /// seller id → order id → order.
    pub orders: HashMap<String, BTreeMap<String, SimOrder>>,
    pub bucket_overrides: HashMap<SimOp, (f64, u32)>,
    pub buckets: HashMap<(String, SimOp), Bucket>,
    pub faults: VecDeque<Fault>,
    /// Token requests still to be answered 500 `server_error` (see `SimHandle::fail_lwa`).
    pub lwa_outages: u32,
    pub stats: SimStats,
    pub requests: Vec<RecordedRequest>,
    pub rng: SplitMix64,
    pub reports: Reports,
}

impl State {
    /// `(rate, burst)` currently in force for an operation.
    pub fn plan(&self, config: &SimConfig, op: SimOp) -> (f64, u32) {
        self.bucket_overrides.get(&op).copied().unwrap_or_else(|| {
            // Rounded to 12 significant decimals so the header reads "0.167", not
            // "0.16699999999999998", for 0.0167 × 10; the difference in rate is immaterial.
            let scaled = op.documented_rate() * config.rate_scale;
            ((scaled * 1e12).round() / 1e12, op.documented_burst())
        })
    }

    pub fn take_token(&mut self, config: &SimConfig, refresh_token: &str, op: SimOp) -> bool {
        let (rate, burst) = self.plan(config, op);
        let now = Instant::now();
        self.buckets
            .entry((refresh_token.to_string(), op))
            .or_insert_with(|| Bucket::full(rate, burst, now))
            .try_take(now)
    }

    /// Override one operation's plan; existing buckets for it start again, full, on the new plan.
    pub fn set_bucket(&mut self, op: SimOp, rate: f64, burst: u32) {
        self.bucket_overrides.insert(op, (rate, burst));
        self.buckets.retain(|(_, bucket_op), _| *bucket_op != op);
    }

    pub fn random_alphanumeric(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| char::from(ALPHABET[self.rng.below(ALPHABET.len() as u64) as usize]))
            .collect()
    }

    /// Amazon-like request id (UUID-shaped).
    pub fn request_id(&mut self) -> String {
        let high = self.rng.next_u64();
        let low = self.rng.next_u64();
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            high >> 32,
            (high >> 16) & 0xffff,
            high & 0xffff,
            low >> 48,
            low & 0xffff_ffff_ffff
        )
    }

    pub fn issue_access_token(
        &mut self,
        refresh_token: &str,
        seller_id: &str,
        ttl: Duration,
    ) -> String {
        let token = format!("Atza|IwEB{}", self.random_alphanumeric(120));
        self.access_tokens.insert(
            token.clone(),
            AccessGrant {
                refresh_token: refresh_token.to_string(),
                seller_id: seller_id.to_string(),
                expires_at: Instant::now() + ttl,
            },
        );
        token
    }

    /// The (refresh token, seller id) an access token stands for.
    pub fn authenticate(&self, header: Option<&str>) -> Result<(String, String), AuthFailure> {
        let token = match header.map(str::trim) {
            None | Some("") => return Err(AuthFailure::Missing),
            Some(token) => token,
        };
        let grant = self.access_tokens.get(token).ok_or(AuthFailure::Invalid)?;
        if Instant::now() >= grant.expires_at {
            return Err(AuthFailure::Expired);
        }
        Ok((grant.refresh_token.clone(), grant.seller_id.clone()))
    }

    pub fn expire_access_tokens(&mut self) {
        let now = Instant::now();
        for grant in self.access_tokens.values_mut() {
            grant.expires_at = now;
        }
    }

    /// Brings every report's lifecycle up to now (see `report::queue`).
    pub fn advance_reports(&mut self) {
        self.reports
            .advance(&self.orders, Instant::now(), &mut self.rng);
    }

    /// Inserts or replaces (by order id) one of the seller's orders. Reports due before this
    /// change are finished first, so they never see it.
    pub fn upsert_order(&mut self, seller_id: &str, order: SimOrder) {
        self.advance_reports();
        self.orders
            .entry(seller_id.to_string())
            .or_default()
            .insert(order.order_id.clone(), order);
    }

    /// Consumes one use of the first pending fault that applies to `op`.
    pub fn take_fault(&mut self, op: SimOp) -> Option<FaultKind> {
        self.faults.retain(|fault| fault.times > 0);
        let index = self
            .faults
            .iter()
            .position(|fault| fault.op.is_none_or(|fault_op| fault_op == op))?;
        let fault = self.faults.get_mut(index)?;
        if fault.skip > 0 {
            fault.skip -= 1;
            return None;
        }
        fault.times -= 1;
        let kind = fault.kind.clone();
        if fault.times == 0 {
            self.faults.remove(index);
        }
        Some(kind)
    }
}
