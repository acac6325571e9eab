//! Orders API v2026-01-01 wire shapes (Amazon's `orders_2026-01-01.json`), only the fields the
//! sync reads.
//!
//! No `payload` wrapper here; error bodies are the bare `{"errors": [...]}` that
//! [`super::SpApiClient`] already reads. Amounts are decimal strings parsed into [`Decimal`].

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

pub const SEARCH_ORDERS_PATH: &str = "/orders/2026-01-01/orders";

pub fn get_order_path(order_id: &str) -> String {
    format!(
        "/orders/2026-01-01/orders/{}",
        super::v0::percent_encode_path(order_id)
    )
}

/// `searchOrders` 200 body.
#[derive(Debug, Deserialize)]
pub struct SearchOrdersResponse {
    /// Raw JSON, stored as sent.
    pub orders: Vec<Value>,
    #[serde(default)]
    pub pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    #[serde(default)]
    pub next_token: Option<String>,
}

/// `getOrder` 200 body.
#[derive(Debug, Deserialize)]
pub struct GetOrderResponse {
    pub order: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub order_id: String,
    pub created_time: DateTime<Utc>,
    pub last_updated_time: DateTime<Utc>,
    #[serde(default)]
    pub sales_channel: Option<SalesChannel>,
    #[serde(default)]
    pub fulfillment: Option<OrderFulfillment>,
    #[serde(default)]
    pub proceeds: Option<OrderProceeds>,
    pub order_items: Vec<OrderItem>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SalesChannel {
    #[serde(default)]
    pub marketplace_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFulfillment {
    pub fulfillment_status: String,
    #[serde(default)]
    pub fulfilled_by: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderProceeds {
    #[serde(default)]
    pub grand_total: Option<Money>,
}

/// `{amount, currencyCode}`, both required; `amount` is a decimal string.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    pub amount: Decimal,
    pub currency_code: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub order_item_id: String,
    pub quantity_ordered: i32,
    pub product: ItemProduct,
    #[serde(default)]
    pub proceeds: Option<ItemProceeds>,
    #[serde(default)]
    pub fulfillment: Option<ItemFulfillment>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemProduct {
    #[serde(default)]
    pub asin: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub seller_sku: Option<String>,
    #[serde(default)]
    pub price: Option<ItemPrice>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemPrice {
    #[serde(default)]
    pub unit_price: Option<Money>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemProceeds {
    #[serde(default)]
    pub proceeds_total: Option<Money>,
    #[serde(default)]
    pub breakdowns: Vec<ItemBreakdown>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemBreakdown {
    #[serde(rename = "type")]
    pub kind: String,
    pub subtotal: Money,
    #[serde(default)]
    pub detailed_breakdowns: Vec<DetailedBreakdown>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailedBreakdown {
    #[serde(default)]
    pub subtype: Option<String>,
    /// Optional in Amazon's model.
    #[serde(default)]
    pub value: Option<Money>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemFulfillment {
    #[serde(default)]
    pub quantity_fulfilled: Option<i32>,
}
