//! The Amazon Selling Partner API client: one [`SpApiClient`] per tenant.
//!
//! Owns everything between "send this request" and "here is the JSON": the access token
//! ([`auth`]), pacing ([`pacing`]), retries with backoff and jitter, timeouts, and turning error
//! answers into [`Error`]s. It knows Amazon's wire shapes ([`v0`], [`v2026`]) but nothing of the
//! database or of sync windows. It must never treat a failed or unreadable answer as an empty page,
//! and never put a token into a message.

pub mod auth;
pub mod pacing;
pub mod v0;
pub mod v2026;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use backon::{ExponentialBuilder, Retryable};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::config::{RetryPolicy, TenantConfig};
use crate::error::{Error, Result};
use crate::model::{BucketState, Secret, TenantId};
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
}

impl Operation {
    pub const ALL: [Operation; 4] = [
        Operation::GetOrdersV0,
        Operation::GetOrderItemsV0,
        Operation::SearchOrders,
        Operation::GetOrder,
    ];

    /// Amazon's operation name (v2026 `getOrder`; v0's getOrder is not used).
    pub fn name(self) -> &'static str {
        match self {
            Operation::GetOrdersV0 => "getOrders",
            Operation::GetOrderItemsV0 => "getOrderItems",
            Operation::SearchOrders => "searchOrders",
            Operation::GetOrder => "getOrder",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Requests per second in Amazon's default usage plan (the models' text).
    pub fn documented_rate(self) -> f64 {
        match self {
            Operation::GetOrdersV0 => 0.0167,
            Operation::GetOrderItemsV0 => 0.5,
            Operation::SearchOrders => 0.0056,
            Operation::GetOrder => 0.5,
        }
    }

    pub fn documented_burst(self) -> f64 {
        match self {
            Operation::GetOrdersV0 | Operation::SearchOrders => 20.0,
            Operation::GetOrderItemsV0 | Operation::GetOrder => 30.0,
        }
    }
}

/// Requests sent and 429s received, for `sync_runs`.
#[derive(Debug, Default)]
struct CallCounters {
    calls: AtomicU64,
    throttled: AtomicU64,
}

/// What a client has sent so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Requests sent, every attempt counted.
    pub calls: u64,
    /// Of which answered 429.
    pub throttled: u64,
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
    pacer: Pacer,
    retry: RetryPolicy,
    counters: CallCounters,
}

impl SpApiClient {
    pub fn new(
        http: reqwest::Client,
        base: Url,
        lwa: Arc<LwaClient>,
        tenant: &TenantConfig,
        retry: RetryPolicy,
    ) -> Self {
        SpApiClient {
            http,
            base,
            tenant: tenant.id.clone(),
            tokens: AccessTokenCache::new(lwa, tenant.id.clone(), tenant.refresh_token.clone()),
            pacer: Pacer::new(),
            retry,
            counters: CallCounters::default(),
        }
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
        Usage {
            calls: self.counters.calls.load(Ordering::Relaxed),
            throttled: self.counters.throttled.load(Ordering::Relaxed),
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
        let attempts = AtomicU64::new(1);
        let result = (|| async { self.attempt(op, &url, query).await })
            .retry(backoff(&self.retry))
            .sleep(tokio::time::sleep)
            .when(Error::is_retryable)
            .notify(|e, delay| {
                attempts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(delay_ms = delay.as_millis() as u64, "{e}; retrying");
            })
            .await;
        match result {
            Err(Error::Api { status: 429, .. }) => Err(Error::Throttled {
                operation: op.name(),
                attempts: attempts.load(Ordering::Relaxed) as u32,
            }),
            other => other,
        }
    }

    async fn attempt(
        &self,
        op: Operation,
        url: &Url,
        query: &[(&str, String)],
    ) -> Result<serde_json::Value> {
        let mut refreshed = false;
        loop {
            self.pacer.acquire(op).await;
            let token = self.tokens.get().await?;
            self.counters.calls.fetch_add(1, Ordering::Relaxed);
            let response = self
                .http
                .get(url.clone())
                .query(query)
                .header("x-amz-access-token", token.expose())
                .send()
                .await
                .map_err(|e| transport(op, &e))?;
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
            let body = response.bytes().await.map_err(|e| transport(op, &e))?;
            tracing::debug!(
                status = status.as_u16(),
                request_id,
                bytes = body.len(),
                "SP-API answered"
            );

            if status.is_success() {
                return serde_json::from_slice(&body).map_err(|e| Error::BadResponse {
                    operation: op.name(),
                    detail: format!(
                        "HTTP {status} body is not complete JSON ({e}; {} bytes; request id {request_id})",
                        body.len()
                    ),
                });
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                self.pacer.throttled(op);
            }
            let error = api_error(op, status, &body, &request_id);
            if status == StatusCode::FORBIDDEN && !refreshed && mentions_expired_token(&error) {
                // Amazon's 403 for an expired token: get a new one once, then resend.
                refreshed = true;
                self.invalidate_token(&token).await;
                continue;
            }
            return Err(error);
        }
    }

    async fn invalidate_token(&self, token: &Secret) {
        tracing::info!("access token expired early; refreshing it");
        self.tokens.invalidate(token).await;
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
