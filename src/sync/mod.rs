//! The sync engine: what one pass of one tenant does, independent of the Orders API version.
//!
//! # Architecture
//! - [`window`]: which `LastUpdatedAfter`/`LastUpdatedBefore` a pass asks for.
//! - [`OrdersSource`]: the one interface the engine talks to; [`v0::V0Source`] and
//!   [`v2026::V2026Source`] implement it and turn Amazon's shapes into [`OrderRecord`] and
//!   [`ItemRecord`], the normalized rows both versions write identically.
//! - [`engine`]: the pass itself: lock, window pages, items, cursor, run bookkeeping.
//!
//! The engine never talks HTTP or SQL itself: it calls a source and [`crate::store::PgStore`].
//! Its one promise: the cursor moves only past data that is committed.

pub mod engine;
pub mod v0;
pub mod v2026;
pub mod window;

use std::future::Future;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::config::OrdersApi;
use crate::error::Result;
use crate::spapi::SpApiClient;
pub use engine::{PassKind, PassReport, run_pass};

use crate::config::{SyncSettings, TenantConfig};
use crate::store::PgStore;

/// The source a tenant file selects (`ordersApi`), for callers that pick it at run time.
pub enum TenantSource {
    V0(v0::V0Source),
    V2026(v2026::V2026Source),
}

impl TenantSource {
    pub fn new(client: SpApiClient, tenant: &TenantConfig, settings: &SyncSettings) -> Self {
        let marketplaces = tenant.marketplace_ids.clone();
        match tenant.orders_api {
            OrdersApi::V0 => {
                TenantSource::V0(v0::V0Source::new(client, marketplaces, settings.page_size))
            }
            OrdersApi::V2026 => TenantSource::V2026(v2026::V2026Source::new(
                client,
                marketplaces,
                settings.page_size,
                tenant.include_pii,
            )),
        }
    }

    /// [`run_pass`] with this source.
    pub async fn run_pass(
        &self,
        store: &PgStore,
        tenant: &TenantConfig,
        settings: &SyncSettings,
        kind: PassKind,
        now: DateTime<Utc>,
    ) -> Result<PassReport> {
        match self {
            TenantSource::V0(s) => run_pass(store, s, tenant, settings, kind, now).await,
            TenantSource::V2026(s) => run_pass(store, s, tenant, settings, kind, now).await,
        }
    }
}
pub use window::SyncWindow;

/// Order status, stored in the v2026 vocabulary so both API versions write the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    PendingAvailability,
    Pending,
    Unshipped,
    PartiallyShipped,
    Shipped,
    Cancelled,
    Unfulfillable,
    InvoiceUnconfirmed,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingAvailability => "PENDING_AVAILABILITY",
            OrderStatus::Pending => "PENDING",
            OrderStatus::Unshipped => "UNSHIPPED",
            OrderStatus::PartiallyShipped => "PARTIALLY_SHIPPED",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Unfulfillable => "UNFULFILLABLE",
            OrderStatus::InvoiceUnconfirmed => "INVOICE_UNCONFIRMED",
        }
    }

    /// v0 `OrderStatus` (`Pending`, `Canceled`, ...).
    pub fn from_v0(value: &str) -> Option<Self> {
        Some(match value {
            "PendingAvailability" => OrderStatus::PendingAvailability,
            "Pending" => OrderStatus::Pending,
            "Unshipped" => OrderStatus::Unshipped,
            "PartiallyShipped" => OrderStatus::PartiallyShipped,
            "Shipped" => OrderStatus::Shipped,
            "Canceled" => OrderStatus::Cancelled,
            "Unfulfillable" => OrderStatus::Unfulfillable,
            "InvoiceUnconfirmed" => OrderStatus::InvoiceUnconfirmed,
            _ => return None,
        })
    }

    /// v2026 `fulfillment.fulfillmentStatus` (`PENDING`, `CANCELLED`, ...).
    pub fn from_v2026(value: &str) -> Option<Self> {
        Some(match value {
            "PENDING_AVAILABILITY" => OrderStatus::PendingAvailability,
            "PENDING" => OrderStatus::Pending,
            "UNSHIPPED" => OrderStatus::Unshipped,
            "PARTIALLY_SHIPPED" => OrderStatus::PartiallyShipped,
            "SHIPPED" => OrderStatus::Shipped,
            "CANCELLED" => OrderStatus::Cancelled,
            "UNFULFILLABLE" => OrderStatus::Unfulfillable,
            "INVOICE_UNCONFIRMED" => OrderStatus::InvoiceUnconfirmed,
            _ => return None,
        })
    }
}

/// One order, normalized: the `orders` row minus bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    pub external_order_id: String,
    pub marketplace_id: Option<String>,
    pub status: OrderStatus,
    pub purchase_date: DateTime<Utc>,
    pub last_update_date: DateTime<Utc>,
    /// `AFN` (fulfilled by Amazon) or `MFN` (by the merchant).
    pub fulfillment_channel: Option<String>,
    pub order_total_amount: Option<Decimal>,
    pub order_total_currency: Option<String>,
    /// The order exactly as Amazon sent it.
    pub raw: Value,
}

/// One order item, normalized: the `order_items` row minus bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRecord {
    pub order_item_id: String,
    pub asin: Option<String>,
    pub seller_sku: Option<String>,
    pub title: Option<String>,
    pub quantity_ordered: i32,
    pub quantity_shipped: Option<i32>,
    /// Unit price times quantity (Amazon's v0 `ItemPrice`).
    pub item_price_amount: Option<Decimal>,
    pub item_tax_amount: Option<Decimal>,
    pub shipping_price_amount: Option<Decimal>,
    /// A positive amount taken off the price.
    pub promotion_discount_amount: Option<Decimal>,
    pub currency: Option<String>,
    pub raw: Value,
}

/// An order as one page delivered it; `items` is `Some` when the API returns them inline.
#[derive(Debug, Clone)]
pub struct FetchedOrder {
    pub order: OrderRecord,
    pub items: Option<Vec<ItemRecord>>,
}

/// An order of a page that could not be read: it is quarantined, not allowed to stall the
/// tenant.
#[derive(Debug, Clone)]
pub struct RejectedOrder {
    pub order_id: Option<String>,
    pub raw: Value,
    pub error: String,
}

/// One page of a window.
#[derive(Debug, Clone)]
pub struct OrdersPage {
    pub orders: Vec<FetchedOrder>,
    pub rejected: Vec<RejectedOrder>,
    /// Absent on the last page.
    pub next_page_token: Option<String>,
}

/// Postgres refuses U+0000 in `text` and `jsonb`: one such character from Amazon would fail the
/// page forever. It is replaced by U+FFFD, the one change made to what Amazon sent.
pub(crate) fn without_nul(value: Value) -> Value {
    match value {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "\u{FFFD}")),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.replace('\0', "\u{FFFD}"), without_nul(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Fails when an order lists the same item id twice (the whole list is then suspect).
pub(crate) fn check_unique_items(
    op: crate::spapi::Operation,
    order_id: &str,
    items: &[ItemRecord],
) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    match items
        .iter()
        .find(|i| !seen.insert(i.order_item_id.as_str()))
    {
        Some(dup) => Err(crate::error::Error::BadResponse {
            operation: op.name(),
            detail: format!("order {order_id} lists item {} twice", dup.order_item_id),
        }),
        None => Ok(()),
    }
}

/// Splits a page's raw orders into readable ones and rejected ones.
pub(crate) fn sort_orders(
    raws: Vec<Value>,
    id_key: &str,
    read: impl Fn(Value) -> Result<FetchedOrder>,
) -> (Vec<FetchedOrder>, Vec<RejectedOrder>) {
    let mut orders = Vec::new();
    let mut rejected = Vec::new();
    for raw in raws.into_iter().map(without_nul) {
        match read(raw.clone()) {
            Ok(order) => orders.push(order),
            Err(e) => rejected.push(RejectedOrder {
                order_id: raw.get(id_key).and_then(Value::as_str).map(str::to_owned),
                raw,
                error: e.to_string(),
            }),
        }
    }
    (orders, rejected)
}

/// Where orders come from: one implementation per Orders API version.
pub trait OrdersSource: Send + Sync {
    fn api(&self) -> OrdersApi;

    /// How long a page token may be kept to resume an interrupted window.
    fn page_token_ttl(&self) -> chrono::Duration;

    /// The tenant's HTTP client (counters, pacing state).
    fn client(&self) -> &SpApiClient;

    /// One page of the orders updated within `window`, across all the tenant's marketplaces.
    fn orders_page(
        &self,
        window: &SyncWindow,
        page_token: Option<&str>,
    ) -> impl Future<Output = Result<OrdersPage>> + Send;

    /// All items of one order (every page of them).
    fn order_items(&self, order_id: &str) -> impl Future<Output = Result<Vec<ItemRecord>>> + Send;
}
