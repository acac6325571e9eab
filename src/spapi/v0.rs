//! Orders API v0 wire shapes (Amazon's `ordersV0.json`), only the fields the sync reads.
//!
//! Every type here deserializes Amazon's JSON as it is documented: amounts are strings parsed
//! straight into [`Decimal`] (never through `f64`), `IsGift`-style string booleans are not read,
//! unknown fields are ignored so that Amazon adding one never breaks a sync.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

pub const GET_ORDERS_PATH: &str = "/orders/v0/orders";

pub fn get_order_items_path(order_id: &str) -> String {
    format!(
        "/orders/v0/orders/{}/orderItems",
        percent_encode_path(order_id)
    )
}

/// Order ids are `3-7-7` digits; encode anything else rather than trust it in a path.
pub(crate) fn percent_encode_path(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `getOrders` 200 body.
#[derive(Debug, Deserialize)]
pub struct GetOrdersResponse {
    pub payload: OrdersList,
}

#[derive(Debug, Deserialize)]
pub struct OrdersList {
    /// Kept as raw JSON: each order is stored exactly as Amazon sent it.
    #[serde(rename = "Orders")]
    pub orders: Vec<Value>,
    #[serde(rename = "NextToken", default)]
    pub next_token: Option<String>,
}

/// The part of a v0 `Order` the sync normalizes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Order {
    pub amazon_order_id: String,
    pub purchase_date: DateTime<Utc>,
    pub last_update_date: DateTime<Utc>,
    pub order_status: String,
    #[serde(default)]
    pub fulfillment_channel: Option<String>,
    #[serde(default)]
    pub marketplace_id: Option<String>,
    #[serde(default)]
    pub order_total: Option<Money>,
}

/// `{CurrencyCode, Amount}`; `Amount` is a decimal string such as `"11.01"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Money {
    #[serde(default)]
    pub currency_code: Option<String>,
    #[serde(default)]
    pub amount: Option<Decimal>,
}

/// `getOrderItems` 200 body.
#[derive(Debug, Deserialize)]
pub struct GetOrderItemsResponse {
    pub payload: OrderItemsList,
}

#[derive(Debug, Deserialize)]
pub struct OrderItemsList {
    #[serde(rename = "AmazonOrderId")]
    pub amazon_order_id: String,
    #[serde(rename = "OrderItems")]
    pub order_items: Vec<Value>,
    #[serde(rename = "NextToken", default)]
    pub next_token: Option<String>,
}

/// The part of a v0 `OrderItem` the sync normalizes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrderItem {
    #[serde(rename = "ASIN")]
    pub asin: String,
    #[serde(rename = "SellerSKU", default)]
    pub seller_sku: Option<String>,
    pub order_item_id: String,
    #[serde(default)]
    pub title: Option<String>,
    pub quantity_ordered: i32,
    #[serde(default)]
    pub quantity_shipped: Option<i32>,
    #[serde(default)]
    pub item_price: Option<Money>,
    #[serde(default)]
    pub item_tax: Option<Money>,
    #[serde(default)]
    pub shipping_price: Option<Money>,
    #[serde(default)]
    pub promotion_discount: Option<Money>,
}
