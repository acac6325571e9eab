//! Orders and items as both Orders API versions write them: the normalized rows.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

/// Order status, stored in the v2026 vocabulary so both API versions write the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    pub const ALL: [OrderStatus; 8] = [
        OrderStatus::PendingAvailability,
        OrderStatus::Pending,
        OrderStatus::Unshipped,
        OrderStatus::PartiallyShipped,
        OrderStatus::Shipped,
        OrderStatus::Cancelled,
        OrderStatus::Unfulfillable,
        OrderStatus::InvoiceUnconfirmed,
    ];

    /// The stored name (v2026 vocabulary).
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

    /// v2026 `fulfillment.fulfillmentStatus` (`PENDING`, `CANCELLED`, ...), which is also the
    /// stored name.
    pub fn from_v2026(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// Amazon serves no item prices while an order is pending.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            OrderStatus::Pending | OrderStatus::PendingAvailability
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip_and_v0_canceled_is_cancelled() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::from_v2026(s.as_str()), Some(s));
        }
        assert_eq!(
            OrderStatus::from_v0("Canceled"),
            Some(OrderStatus::Cancelled)
        );
        assert_eq!(OrderStatus::from_v0("OnHold"), None);
    }
}
