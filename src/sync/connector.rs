//! [`Connector`]: the one place that wires a tenant's source. The command, the tests and the
//! benchmark all build sources here, so the chain HTTP client -> Login with Amazon -> SP-API
//! client -> versioned source exists once.

use std::sync::Arc;

use super::{TenantSource, VersionedSource, v0::V0Source, v2026::V2026Source};
use crate::config::{SyncConfig, TenantConfig};
use crate::error::Result;
use crate::model::OrdersApi;
use crate::spapi::auth::LwaClient;
use crate::spapi::{SpApiClient, http_client};

/// What the tenants of one run share: one HTTP client (one connection pool) and one Login with
/// Amazon client for the application.
pub struct Connector {
    config: SyncConfig,
    http: reqwest::Client,
    lwa: Arc<LwaClient>,
}

impl Connector {
    pub fn new(config: &SyncConfig) -> Result<Self> {
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
        })
    }

    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    /// A tenant's source, with a client of its own (its access token, rate buckets, counters).
    pub fn source(&self, tenant: &TenantConfig) -> TenantSource {
        let settings = &self.config.settings;
        let client = SpApiClient::new(
            self.http.clone(),
            self.config.endpoints.spapi_base(tenant.region),
            self.lwa.clone(),
            tenant,
            settings.retry,
        );
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
        }
    }
}
