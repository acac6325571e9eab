//! The Amazon Selling Partner API client: one [`SpApiClient`] per tenant.
//!
//! Owns everything between "send this request" and "here is the JSON": the access token
//! ([`auth`]), pacing ([`pacing`]), retries with backoff and jitter, timeouts, and turning error
//! answers into [`Error`]s. It knows Amazon's wire shapes ([`v0`], [`v2026`]) but nothing of the
//! database or of sync windows. It must never treat a failed or unreadable answer as an empty page,
//! and never put a token into a message.

pub mod auth;
pub mod document;
pub mod pacing;
pub mod reports;
pub mod v0;
pub mod v2026;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use tokio::time::Instant;

use crate::config::{RetryPolicy, TenantConfig};
use crate::error::{Error, Result};
use crate::model::{BucketState, OperationCount, TenantId};
use auth::{AccessTokenCache, LwaClient};
use pacing::Pacer;

/// Sent on every request; Amazon asks for `AppName/Version (Language=...)`.
pub const USER_AGENT: &str = concat!(
    "keybuzz-sync/",
    env!("CARGO_PKG_VERSION"),
    " (Language=Rust; Platform=Linux)"
);

/// The SP-API operations keybuzz-sync calls, each with its own usage plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// v0 `GET /orders/v0/orders`.
    GetOrdersV0,
    /// v0 `GET /orders/v0/orders/{orderId}/orderItems`.
    GetOrderItemsV0,
    /// v2026-01-01 `GET /orders/2026-01-01/orders`.
    SearchOrders,
    /// v2026-01-01 `GET /orders/2026-01-01/orders/{orderId}`.
    GetOrder,
    /// Reports 2021-06-30 `POST /reports/2021-06-30/reports`.
    CreateReport,
    /// Reports 2021-06-30 `GET /reports/2021-06-30/reports/{reportId}`.
    GetReport,
    /// Reports 2021-06-30 `GET /reports/2021-06-30/documents/{reportDocumentId}`.
    GetReportDocument,
}

impl Operation {
    pub const ALL: [Operation; 7] = [
        Operation::GetOrdersV0,
        Operation::GetOrderItemsV0,
        Operation::SearchOrders,
        Operation::GetOrder,
        Operation::CreateReport,
        Operation::GetReport,
        Operation::GetReportDocument,
    ];

    /// Amazon's operation name (v2026 `getOrder`; v0's getOrder is not used).
    pub fn name(self) -> &'static str {
        match self {
            Operation::GetOrdersV0 => "getOrders",
            Operation::GetOrderItemsV0 => "getOrderItems",
            Operation::SearchOrders => "searchOrders",
            Operation::GetOrder => "getOrder",
            Operation::CreateReport => "createReport",
            Operation::GetReport => "getReport",
            Operation::GetReportDocument => "getReportDocument",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Requests per second in Amazon's default usage plan (the models' text; the Reports
    /// operations from `reports_2021-06-30.json`).
    pub fn documented_rate(self) -> f64 {
        match self {
            Operation::GetOrdersV0 => 0.0167,
            Operation::GetOrderItemsV0 => 0.5,
            Operation::SearchOrders => 0.0056,
            Operation::GetOrder => 0.5,
            Operation::CreateReport => 0.0167,
            Operation::GetReport => 2.0,
            Operation::GetReportDocument => 0.0167,
        }
    }

    pub fn documented_burst(self) -> f64 {
        match self {
            Operation::GetOrdersV0 | Operation::SearchOrders => 20.0,
            Operation::GetOrderItemsV0 | Operation::GetOrder => 30.0,
            Operation::CreateReport | Operation::GetReport | Operation::GetReportDocument => 15.0,
        }
    }
}

/// Requests sent and 429s received, per operation, and time spent waiting. A std mutex: a few
/// instructions under it, never held across an await.
#[derive(Debug, Default)]
struct CallCounters(Mutex<HashMap<Operation, (u64, u64)>>, Mutex<Duration>);

impl CallCounters {
    fn waited(&self, wait: Duration) {
        *self.1.lock().unwrap_or_else(|p| p.into_inner()) += wait;
    }

    fn add(&self, op: Operation, calls: u64, throttled: u64) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(op).or_default();
        entry.0 += calls;
        entry.1 += throttled;
    }
}

/// What a client has sent so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Requests sent, every attempt counted.
    pub calls: u64,
    /// Of which answered 429.
    pub throttled: u64,
    /// The same, per operation, sorted by name.
    pub by_operation: Vec<OperationCount>,
    /// Time spent waiting on rate limits and backoffs.
    pub waited: Duration,
}

/// What bounds a client's requests.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    pub retry: RetryPolicy,
    /// Timeout of one HTTP request, body included.
    pub request_timeout: Duration,
    /// Largest answer read; a larger one is an error, never buffered whole.
    pub max_response_bytes: u64,
    /// When the run's time budget ends: no request is started that could not be answered
    /// before it, and no wait goes past it.
    pub deadline: Option<Instant>,
}

impl ClientLimits {
    /// The least time a request is given: one is not started with less left than this.
    fn request_allowance(&self) -> Duration {
        self.request_timeout.min(Duration::from_secs(5))
    }
}

/// Builds the backoff schedule of a [`RetryPolicy`]: exponential, jittered, bounded in count and
/// in total delay.
pub(crate) fn backoff(policy: &RetryPolicy) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(policy.base_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_retries as usize)
        .with_total_delay(Some(policy.max_total_delay))
        .with_jitter()
}

/// Builds the HTTP client shared by LWA and SP-API calls. TLS certificates are always verified.
/// Redirects are not followed: a redirected request would carry `x-amz-access-token` (or the
/// LWA form with the refresh token and client secret) to wherever the redirect points.
pub fn http_client(timeout: std::time::Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(std::time::Duration::from_secs(10)))
        .build()
        .map_err(|e| Error::Internal(format!("cannot build the HTTP client: {e}")))
}

/// Amazon's error body: `{"errors":[{"code","message","details"?}]}`.
#[derive(Debug, Deserialize)]
struct ErrorList {
    errors: Vec<ApiErrorEntry>,
}

#[derive(Debug, Deserialize)]
struct ApiErrorEntry {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Option<String>,
}

/// One tenant's SP-API client.
pub struct SpApiClient {
    http: reqwest::Client,
    base: Url,
    tenant: TenantId,
    tokens: AccessTokenCache,
    /// Shared with whoever must save the buckets when the process is told to stop.
    pacer: Arc<Pacer>,
    limits: ClientLimits,
    counters: CallCounters,
}

/// How one attempt ended, when it did not succeed.
enum AttemptError {
    /// SP-API said the access token expired: refresh it once and resend.
    ExpiredToken(Error),
    Failed(Error),
}

impl SpApiClient {
    pub fn new(
        http: reqwest::Client,
        base: Url,
        lwa: Arc<LwaClient>,
        tenant: &TenantConfig,
        limits: ClientLimits,
    ) -> Self {
        SpApiClient {
            http,
            base,
            tenant: tenant.id.clone(),
            tokens: AccessTokenCache::new(lwa, tenant.id.clone(), tenant.refresh_token.clone()),
            pacer: Arc::new(Pacer::new()),
            limits,
            counters: CallCounters::default(),
        }
    }

    /// The client's rate buckets, shared.
    pub fn pacer(&self) -> Arc<Pacer> {
        self.pacer.clone()
    }

    /// Seeds the rate buckets with those an earlier process saved.
    pub fn restore_buckets(&self, saved: &[BucketState]) {
        self.pacer.restore(saved);
    }

    /// The rate buckets as they stand, to save for the next process.
    pub fn bucket_states(&self) -> Vec<BucketState> {
        self.pacer.snapshot()
    }

    pub fn usage(&self) -> Usage {
        let map = self.counters.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_operation: Vec<OperationCount> = map
            .iter()
            .map(|(op, (calls, throttled))| OperationCount {
                operation: op.name(),
                calls: *calls,
                throttled: *throttled,
            })
            .collect();
        by_operation.sort_by_key(|c| c.operation);
        Usage {
            calls: by_operation.iter().map(|c| c.calls).sum(),
            throttled: by_operation.iter().map(|c| c.throttled).sum(),
            by_operation,
            waited: *self.counters.1.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// GETs `path` with `query` (values are percent-encoded here, which matters for page
    /// tokens holding `+`, `/` and `=`), retrying what is worth retrying.
    #[tracing::instrument(skip_all, fields(tenant = %self.tenant, operation = op.name()))]
    pub async fn get_json(
        &self,
        op: Operation,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<serde_json::Value> {
        let url = self.base.join(path).map_err(|e| {
            Error::Internal(format!("cannot build the SP-API URL for {path:?}: {e}"))
        })?;
        self.send(op, || self.http.get(url.clone()).query(query))
            .await
    }

    /// POSTs `body` as JSON to `path` (createReport), with the same pacing, retries and error
    /// reading as [`SpApiClient::get_json`].
    #[tracing::instrument(skip_all, fields(tenant = %self.tenant, operation = op.name()))]
    pub async fn post_json(
        &self,
        op: Operation,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        let url = self.base.join(path).map_err(|e| {
            Error::Internal(format!("cannot build the SP-API URL for {path:?}: {e}"))
        })?;
        self.send(op, || self.http.post(url.clone()).json(body))
            .await
    }

    /// Whether a request of `op` could be sent now without waiting for the rate bucket: a pass
    /// that must never wait on a slow operation (createReport refills one token a minute)
    /// leaves the rest for the next pass instead.
    pub fn can_send_now(&self, op: Operation) -> bool {
        self.pacer.wait_time(op).is_zero()
    }

    /// When the run's time budget ends, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.limits.deadline
    }

    /// Sends a request until it succeeds, fails for good, or waiting longer is not allowed.
    ///
    /// Every wait counts: the pacing wait before each attempt and the backoff after a failure.
    /// Before the first failure, only the run's deadline bounds them (a paced request is not a
    /// retried one); from the first failure on, the retry budget (`--retry-max-total-secs`) does
    /// too. When the next attempt could not be answered within those bounds, the request gives
    /// up: with its last error if it had failed (a tenant whose every request is throttled ends
    /// with "throttled", not "out of time"), else with [`Error::OutOfTime`].
    async fn send(
        &self,
        op: Operation,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<serde_json::Value> {
        let limits = &self.limits;
        let mut backoff = backoff(&limits.retry).build();
        let mut first_failure: Option<Instant> = None;
        let mut last_error: Option<Error> = None;
        let mut attempts = 0u32;
        let mut refreshed = false;
        loop {
            let end = limits.end(first_failure);
            let wait = self.pacer.wait_time(op);
            if let Some((end, bound)) = end
                && Instant::now() + wait + limits.request_allowance() > end
            {
                return Err(give_up(op, last_error, attempts, bound));
            }
            let end = end.map(|(end, _)| end);
            self.counters.waited(wait);
            self.pacer.acquire(op).await;
            attempts += 1;
            let error = match self.attempt(op, &request, end).await {
                Ok(value) => return Ok(value),
                Err(AttemptError::ExpiredToken(e)) if !refreshed => {
                    // Amazon's 403 for an expired token: get a new one once, then resend.
                    refreshed = true;
                    tracing::info!("access token expired early; refreshing it");
                    last_error = Some(e);
                    continue;
                }
                Err(AttemptError::ExpiredToken(e) | AttemptError::Failed(e)) => e,
            };
            if !error.is_retryable() {
                return Err(error);
            }
            first_failure.get_or_insert_with(Instant::now);
            let Some(delay) = backoff.next() else {
                return Err(give_up(op, Some(error), attempts, Bound::Retries));
            };
            if let Some((end, bound)) = limits.end(first_failure)
                && Instant::now() + delay + limits.request_allowance() > end
            {
                return Err(give_up(op, Some(error), attempts, bound));
            }
            tracing::warn!(delay_ms = delay.as_millis() as u64, "{error}; retrying");
            self.counters.waited(delay);
            tokio::time::sleep(delay).await;
            last_error = Some(error);
        }
    }

    /// One request, answered by `end` at the latest.
    async fn attempt(
        &self,
        op: Operation,
        request: &impl Fn() -> reqwest::RequestBuilder,
        end: Option<Instant>,
    ) -> Result<serde_json::Value, AttemptError> {
        let fail = AttemptError::Failed;
        let token = match self.limits.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, self.tokens.get())
                .await
                .map_err(|_| {
                    fail(Error::OutOfTime {
                        operation: op.name(),
                    })
                })?,
            None => self.tokens.get().await,
        }
        .map_err(fail)?;
        let timeout = match end {
            Some(end) => self
                .limits
                .request_timeout
                .min(end.saturating_duration_since(Instant::now())),
            None => self.limits.request_timeout,
        };
        // A request whose timeout the deadline shortened, and which times out, ran out of the
        // run's time rather than failed.
        let cut_by_deadline = timeout < self.limits.request_timeout
            && self.limits.deadline.is_some_and(|d| Some(d) <= end);
        self.counters.add(op, 1, 0);
        let answer = self
            .read(
                op,
                request()
                    .header("x-amz-access-token", token.expose())
                    .timeout(timeout),
            )
            .await;
        let (status, body, request_id) = match answer {
            Ok(answer) => answer,
            Err(Error::Transport { .. }) if cut_by_deadline => {
                return Err(fail(Error::OutOfTime {
                    operation: op.name(),
                }));
            }
            Err(e) => return Err(fail(e)),
        };
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                fail(Error::BadResponse {
                    operation: op.name(),
                    detail: format!(
                        "HTTP {status} body is not complete JSON ({e}; {} bytes; request id {request_id})",
                        body.len()
                    ),
                })
            });
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.counters.add(op, 0, 1);
            self.pacer.throttled(op);
        }
        let error = api_error(op, status, &body, &request_id);
        if status == StatusCode::FORBIDDEN && mentions_expired_token(&error) {
            self.tokens.invalidate(&token).await;
            return Err(AttemptError::ExpiredToken(error));
        }
        Err(fail(error))
    }

    /// Sends the request and reads the answer, at most `max_response_bytes` of it, chunk by
    /// chunk (an answer is never buffered beyond the cap, whatever its Content-Length says).
    async fn read(
        &self,
        op: Operation,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>, String)> {
        let mut response = request.send().await.map_err(|e| transport(op, &e))?;
        let status = response.status();
        if let Some(rate) = rate_limit_header(&response) {
            self.pacer.observe_rate_limit(op, rate);
        }
        let request_id = response
            .headers()
            .get("x-amzn-RequestId")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        let cap = self.limits.max_response_bytes;
        let too_large = || Error::ResponseTooLarge {
            operation: op.name(),
            limit_mib: cap.div_ceil(1024 * 1024),
        };
        if response.content_length().is_some_and(|n| n > cap) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport(op, &e))? {
            if body.len() as u64 + chunk.len() as u64 > cap {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(
            status = status.as_u16(),
            request_id,
            bytes = body.len(),
            "SP-API answered"
        );
        Ok((status, body, request_id))
    }
}

/// What stopped a request from trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// `--max-retries`.
    Retries,
    /// `--retry-max-total-secs`, counted from the first failure.
    RetryTime,
    /// The run's time budget.
    Deadline,
}

impl ClientLimits {
    /// Until when a request may still wait, and which bound that is: the run's deadline and,
    /// once it has failed, its retry budget.
    fn end(&self, first_failure: Option<Instant>) -> Option<(Instant, Bound)> {
        let retry_end = first_failure.map(|t| (t + self.retry.max_total_delay, Bound::RetryTime));
        let deadline = self.deadline.map(|d| (d, Bound::Deadline));
        match (deadline, retry_end) {
            (Some(d), Some(r)) => Some(if d.0 <= r.0 { d } else { r }),
            (d, r) => d.or(r),
        }
    }
}

/// The error a request that may not wait any longer ends with: [`Error::OutOfTime`] if it never
/// failed (the budget ran out before it could go), else its last error, throttling named as such
/// with what stopped the retries.
fn give_up(op: Operation, last_error: Option<Error>, attempts: u32, bound: Bound) -> Error {
    match last_error {
        None => Error::OutOfTime {
            operation: op.name(),
        },
        Some(Error::Api { status: 429, .. }) => Error::Throttled {
            operation: op.name(),
            attempts,
            stopped_by: match bound {
                Bound::Retries => "no retry left (--max-retries)",
                Bound::RetryTime => "its retry time ran out (--retry-max-total-secs)",
                Bound::Deadline => "the run's time budget left no room to try again",
            },
        },
        Some(e) => e,
    }
}

fn transport(op: Operation, e: &reqwest::Error) -> Error {
    Error::Transport {
        operation: op.name(),
        detail: auth::describe_transport(e),
    }
}

fn rate_limit_header(response: &reqwest::Response) -> Option<f64> {
    response
        .headers()
        .get("x-amzn-RateLimit-Limit")?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0)
}

fn mentions_expired_token(error: &Error) -> bool {
    matches!(error, Error::Api { message, .. } if message.to_ascii_lowercase().contains("expired"))
}

/// Reads Amazon's error list (`{"errors":[...]}`, both API versions); a body that is not one (an
/// HTML page from a load balancer, say) is reported by status with a short excerpt.
pub fn error_from_body(op: Operation, status: u16, body: &[u8]) -> Error {
    api_error(
        op,
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
        "-",
    )
}

fn api_error(op: Operation, status: StatusCode, body: &[u8], request_id: &str) -> Error {
    let (code, message) = match serde_json::from_slice::<ErrorList>(body) {
        Ok(list) if !list.errors.is_empty() => {
            let first = &list.errors[0];
            let mut message = first.message.clone();
            if let Some(details) = first.details.as_deref().filter(|d| !d.is_empty()) {
                message = format!("{message} ({details})");
            }
            (first.code.clone(), message)
        }
        _ => {
            let excerpt: String = String::from_utf8_lossy(body)
                .chars()
                .take(120)
                .collect::<String>()
                .replace(['\n', '\r'], " ");
            (
                "-".to_owned(),
                format!("unexpected error body: {excerpt:?}"),
            )
        }
    };
    Error::Api {
        operation: op.name(),
        status: status.as_u16(),
        code,
        message: format!("{message} [request id {request_id}]"),
    }
}
