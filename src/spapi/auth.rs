//! Login with Amazon: exchanging a tenant's refresh token for an access token, and keeping it.
//!
//! One [`AccessTokenCache`] per tenant and process: the token is fetched on first use, reused
//! until a minute before it expires (as Amazon's own SDKs do), and refreshed early when SP-API says
//! it expired. Tokens only exist here as [`Secret`]s; no message built in this module contains one.

use std::sync::Arc;
use std::time::Duration;

use backon::Retryable;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{AppCredentials, RetryPolicy};
use crate::error::{Error, Result};
use crate::model::{Secret, TenantId};
use reqwest::Url;

/// Refresh this long before Amazon's expiry, so a token never dies in flight (Amazon's own SDKs
/// use 60 s for their one-hour tokens)...
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// ...but never more than this share of the token's lifetime: a token that lives 60 s or less
/// would otherwise never be reused, and every SP-API call would cost a Login with Amazon
/// exchange.
fn expiry_margin(lifetime: Duration) -> Duration {
    EXPIRY_MARGIN.min(lifetime / 10)
}

/// The application's side of Login with Amazon, shared by all tenants.
#[derive(Debug)]
pub struct LwaClient {
    http: reqwest::Client,
    token_url: Url,
    credentials: AppCredentials,
    retry: RetryPolicy,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    expires_in: u64,
}

#[derive(Deserialize)]
struct LwaErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// A failed exchange, before it is turned into an [`Error`].
enum LwaFailure {
    Retryable(String),
    Final(Error),
}

impl LwaClient {
    pub fn new(
        http: reqwest::Client,
        token_url: Url,
        credentials: AppCredentials,
        retry: RetryPolicy,
    ) -> Self {
        LwaClient {
            http,
            token_url,
            credentials,
            retry,
        }
    }

    /// Exchanges a refresh token for an access token, retrying transient failures.
    pub async fn exchange(&self, tenant: &TenantId, refresh_token: &Secret) -> Result<AccessToken> {
        let attempt = || async { self.exchange_once(tenant, refresh_token).await };
        let result = attempt
            .retry(super::backoff(&self.retry))
            .sleep(tokio::time::sleep)
            .when(|e| matches!(e, LwaFailure::Retryable(_)))
            .notify(|e, delay| {
                if let LwaFailure::Retryable(why) = e {
                    tracing::warn!(tenant = %tenant, delay_ms = delay.as_millis() as u64, "Login with Amazon failed ({why}); retrying");
                }
            })
            .await;
        match result {
            Ok(token) => Ok(token),
            Err(LwaFailure::Final(e)) => Err(e),
            Err(LwaFailure::Retryable(why)) => Err(Error::Auth(format!(
                "token exchange for tenant {tenant} kept failing: {why}"
            ))),
        }
    }

    async fn exchange_once(
        &self,
        tenant: &TenantId,
        refresh_token: &Secret,
    ) -> Result<AccessToken, LwaFailure> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("client_id", self.credentials.client_id.as_str()),
            ("client_secret", self.credentials.client_secret.expose()),
        ];
        let response = self
            .http
            .post(self.token_url.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| LwaFailure::Retryable(describe_transport(&e)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| LwaFailure::Retryable(describe_transport(&e)))?;
        if status.is_success() {
            let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
                LwaFailure::Retryable(format!("unreadable token response (HTTP {status}): {e}"))
            })?;
            // Amazon says 3600; a day bounds whatever else arrives.
            let lifetime = Duration::from_secs(parsed.expires_in.min(86_400));
            return Ok(AccessToken {
                value: parsed.access_token,
                refresh_at: Instant::now() + lifetime - expiry_margin(lifetime),
            });
        }
        let error = serde_json::from_slice::<LwaErrorBody>(&body).ok();
        let code = error.as_ref().map(|e| e.error.clone()).unwrap_or_default();
        match code.as_str() {
            "invalid_grant" => Err(LwaFailure::Final(Error::ReauthorizationRequired {
                tenant: tenant.clone(),
            })),
            "server_error" | "temporarily_unavailable" => {
                Err(LwaFailure::Retryable(format!("HTTP {status} {code}")))
            }
            _ if status.is_server_error() || status.as_u16() == 429 => {
                Err(LwaFailure::Retryable(format!("HTTP {status}")))
            }
            "" => Err(LwaFailure::Final(Error::Auth(format!(
                "token endpoint answered HTTP {status} without an LWA error body"
            )))),
            code => {
                // error_description is Amazon's text; it does not echo the submitted values.
                let description = error.and_then(|e| e.error_description).unwrap_or_default();
                Err(LwaFailure::Final(Error::Auth(format!(
                    "HTTP {status} {code}: {description}"
                ))))
            }
        }
    }
}

pub(crate) fn describe_transport(e: &reqwest::Error) -> String {
    // reqwest's Display includes the URL, which holds no secret here (tokens travel in headers
    // and form bodies); it is cut out anyway to keep messages short and uniform.
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "broken response body"
    } else {
        "request failed"
    };
    let mut detail = e.to_string();
    if let Some(url) = e.url() {
        detail = detail.replace(&format!(" ({url})"), "");
    }
    format!("{kind}: {detail}")
}

/// An access token and when to stop using it.
#[derive(Clone)]
pub struct AccessToken {
    value: Secret,
    /// When to stop using it: its expiry minus a margin.
    refresh_at: Instant,
}

impl AccessToken {
    fn fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }
}

/// One tenant's access token.
pub struct AccessTokenCache {
    lwa: Arc<LwaClient>,
    tenant: TenantId,
    refresh_token: Secret,
    current: Mutex<Option<AccessToken>>,
}

impl AccessTokenCache {
    pub fn new(lwa: Arc<LwaClient>, tenant: TenantId, refresh_token: Secret) -> Self {
        AccessTokenCache {
            lwa,
            tenant,
            refresh_token,
            current: Mutex::new(None),
        }
    }

    /// A token that is not about to expire.
    pub async fn get(&self) -> Result<Secret> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref().filter(|t| t.fresh(Instant::now())) {
            return Ok(token.value.clone());
        }
        let token = self.lwa.exchange(&self.tenant, &self.refresh_token).await?;
        tracing::debug!(tenant = %self.tenant, "obtained an LWA access token");
        let value = token.value.clone();
        *current = Some(token);
        Ok(value)
    }

    /// SP-API said the token `rejected` expired: forget it (unless another task already did).
    pub async fn invalidate(&self, rejected: &Secret) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|t| &t.value == rejected) {
            *current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_margin_is_a_minute_or_a_tenth_of_a_short_lifetime() {
        assert_eq!(expiry_margin(Duration::from_secs(3600)), EXPIRY_MARGIN);
        assert_eq!(
            expiry_margin(Duration::from_secs(60)),
            Duration::from_secs(6)
        );
        assert_eq!(
            expiry_margin(Duration::from_secs(10)),
            Duration::from_secs(1)
        );
        assert_eq!(expiry_margin(Duration::ZERO), Duration::ZERO);
    }
}
