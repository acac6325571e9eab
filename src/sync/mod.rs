//! The sync engine: what one pass of one tenant does, independent of the Orders API version.
//!
//! # Architecture
//! - [`OrdersSource`]: the one interface the engine needs from Amazon; [`v0::V0Source`] and
//!   [`v2026::V2026Source`] implement it and turn Amazon's shapes into the normalized records of
//!   [`crate::model`], which both versions write identically.
//! - [`Connector`]: the one place that wires a tenant's source (HTTP client, Login with Amazon,
//!   SP-API client, the version its tenant file asks for) into a [`TenantSource`].
//! - [`engine`]: the pass itself ([`run_pass`]): lock, window pages, items, cursor, run
//!   bookkeeping.
//!
//! The engine never talks HTTP or SQL itself: it calls a source and [`crate::store::PgStore`].
//! Its one promise: the cursor moves only past data that is committed.

mod connector;
pub mod engine;
mod locked;
mod read;
pub mod reports;
pub mod v0;
pub mod v2026;

use std::future::Future;

use crate::config::{SyncSettings, TenantConfig};
use crate::error::Result;
use crate::model::{BucketState, ItemRecord, OrdersApi, OrdersPage, SyncWindow};
use crate::spapi::{Operation, Usage};
pub use connector::Connector;
pub use engine::run_pass;

/// Where orders come from: one implementation per Orders API version.
pub trait OrdersSource: Send + Sync {
    fn api(&self) -> OrdersApi;

    /// The operation that lists a window's orders (`getOrders`, `searchOrders`).
    fn orders_operation(&self) -> Operation;

    /// The operation that fetches one order's items (`getOrderItems`, `getOrder`).
    fn items_operation(&self) -> Operation;

    /// Whether pages carry their orders' items.
    fn items_inline(&self) -> bool;

    /// How long a page token may be kept to resume an interrupted window.
    fn page_token_ttl(&self) -> chrono::Duration;

    /// One page of the orders updated within `window`, across all the tenant's marketplaces.
    fn orders_page(
        &self,
        window: &SyncWindow,
        page_token: Option<&str>,
    ) -> impl Future<Output = Result<OrdersPage>> + Send;

    /// All items of one order (every page of them).
    fn order_items(&self, order_id: &str) -> impl Future<Output = Result<Vec<ItemRecord>>> + Send;

    /// Seeds the client's rate buckets with those an earlier process saved.
    fn restore_buckets(&self, saved: &[BucketState]);

    /// The client's rate buckets, to save for the next process.
    fn bucket_states(&self) -> Vec<BucketState>;

    /// Requests sent so far, and how many were throttled.
    fn usage(&self) -> Usage;
}

/// The Orders API version a tenant file selects.
pub enum VersionedSource {
    V0(v0::V0Source),
    V2026(v2026::V2026Source),
}

/// Everything a pass needs about one tenant: its configuration, the run's settings, and the
/// source its tenant file selects. Built by [`Connector::source`].
pub struct TenantSource {
    pub tenant: TenantConfig,
    pub settings: SyncSettings,
    pub orders: VersionedSource,
    /// The pass's progress, for a display.
    pub progress: std::sync::Arc<crate::model::PassProgress>,
}

/// Dispatches to the selected version.
macro_rules! each_version {
    ($self:expr, $s:ident => $body:expr) => {
        match &$self.orders {
            VersionedSource::V0($s) => $body,
            VersionedSource::V2026($s) => $body,
        }
    };
}

impl OrdersSource for TenantSource {
    fn api(&self) -> OrdersApi {
        each_version!(self, s => s.api())
    }

    fn orders_operation(&self) -> Operation {
        each_version!(self, s => s.orders_operation())
    }

    fn items_operation(&self) -> Operation {
        each_version!(self, s => s.items_operation())
    }

    fn items_inline(&self) -> bool {
        each_version!(self, s => s.items_inline())
    }

    fn page_token_ttl(&self) -> chrono::Duration {
        each_version!(self, s => s.page_token_ttl())
    }

    async fn orders_page(
        &self,
        window: &SyncWindow,
        page_token: Option<&str>,
    ) -> Result<OrdersPage> {
        each_version!(self, s => s.orders_page(window, page_token).await)
    }

    async fn order_items(&self, order_id: &str) -> Result<Vec<ItemRecord>> {
        each_version!(self, s => s.order_items(order_id).await)
    }

    fn restore_buckets(&self, saved: &[BucketState]) {
        each_version!(self, s => s.restore_buckets(saved))
    }

    fn bucket_states(&self) -> Vec<BucketState> {
        each_version!(self, s => s.bucket_states())
    }

    fn usage(&self) -> Usage {
        each_version!(self, s => s.usage())
    }
}
