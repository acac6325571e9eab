//! [`Connector`]: the one place that wires a tenant's source. The command, the tests and the
//! benchmark all build sources here, so the chain HTTP client -> Login with Amazon -> SP-API
//! client -> versioned source exists once.

use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::{TenantSource, VersionedSource, v0::V0Source, v2026::V2026Source};
use crate::config::{SyncConfig, TenantConfig};
use crate::error::Result;
use crate::model::{BucketState, OrdersApi, TenantId};
use crate::spapi::auth::LwaClient;
use crate::spapi::pacing::Pacer;
use crate::spapi::{ClientLimits, SpApiClient, http_client};

/// What the tenants of one run share: one HTTP client (one connection pool), one Login with
/// Amazon client for the application, and the run's deadline.
pub struct Connector {
    config: SyncConfig,
    http: reqwest::Client,
    lwa: Arc<LwaClient>,
    deadline: Option<Instant>,
    /// Every source's rate buckets, so that a process told to stop can save them all, even
    /// those of passes it had to drop. A std mutex: pushed to and copied, never held across an
    /// await.
    pacers: Mutex<Vec<(TenantId, Arc<Pacer>)>>,
}

impl Connector {
    /// With `deadline`, no request of any source is started that could not be answered before
    /// it, and no wait goes past it.
    pub fn new(config: &SyncConfig, deadline: Option<Instant>) -> Result<Self> {
        let http = http_client(config.settings.request_timeout)?;
        let lwa = Arc::new(LwaClient::new(
            http.clone(),
            config.endpoints.lwa_token_url.clone(),
            config.credentials.clone(),
            config.settings.retry,
        ));
        Ok(Connector {
            config: config.clone(),
            http,
            lwa,
            deadline,
            pacers: Mutex::default(),
        })
    }

    /// The HTTP client the sources share (also fit for pushing metrics).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The rate buckets of every source built so far, per tenant.
    pub fn bucket_states(&self) -> Vec<(TenantId, Vec<BucketState>)> {
        let pacers = self.pacers.lock().unwrap_or_else(|p| p.into_inner());
        pacers
            .iter()
            .map(|(tenant, pacer)| (tenant.clone(), pacer.snapshot()))
            .filter(|(_, buckets)| !buckets.is_empty())
            .collect()
    }

    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    /// A client of its own for a tenant (its access token, rate buckets, counters), with the
    /// run's limits; [`Connector::source`] wraps one, report imports use one directly.
    pub fn client(&self, tenant: &TenantConfig) -> SpApiClient {
        let settings = &self.config.settings;
        let client = SpApiClient::new(
            self.http.clone(),
            self.config.endpoints.spapi_base(tenant.region),
            self.lwa.clone(),
            tenant,
            ClientLimits {
                retry: settings.retry,
                request_timeout: settings.request_timeout,
                max_response_bytes: settings.max_response_bytes,
                deadline: self.deadline,
            },
        );
        self.pacers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((tenant.id.clone(), client.pacer()));
        client
    }

    /// A tenant's source, with a client of its own (its access token, rate buckets, counters).
    pub fn source(&self, tenant: &TenantConfig) -> TenantSource {
        let settings = &self.config.settings;
        let client = self.client(tenant);
        let marketplaces = tenant.marketplace_ids.clone();
        let orders = match tenant.orders_api {
            OrdersApi::V0 => {
                VersionedSource::V0(V0Source::new(client, marketplaces, settings.page_size))
            }
            OrdersApi::V2026 => VersionedSource::V2026(V2026Source::new(
                client,
                marketplaces,
                settings.page_size,
                tenant.include_pii,
            )),
        };
        TenantSource {
            tenant: tenant.clone(),
            settings: settings.clone(),
            orders,
            progress: Default::default(),
        }
    }
}
