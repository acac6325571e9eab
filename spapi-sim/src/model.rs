//! The simulator's order data: one version-neutral `SimOrder` per Amazon order, from which both the
//! v0 and the v2026-01-01 renderings are derived, plus the money arithmetic both renderings share.
//!
//! Keeping a single source of truth here is what lets a test sync one tenant through v0 and another
//! through v2026 and demand identical rows: any divergence is then a client bug, not a sim artefact.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

/// v0 `OrderStatus` values. v2026 has no `InvoiceUnconfirmed`; it is rendered there as `SHIPPED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimStatus {
    PendingAvailability,
    Pending,
    Unshipped,
    PartiallyShipped,
    Shipped,
    InvoiceUnconfirmed,
    Canceled,
    Unfulfillable,
}

impl SimStatus {
    pub const ALL: [SimStatus; 8] = [
        SimStatus::PendingAvailability,
        SimStatus::Pending,
        SimStatus::Unshipped,
        SimStatus::PartiallyShipped,
        SimStatus::Shipped,
        SimStatus::InvoiceUnconfirmed,
        SimStatus::Canceled,
        SimStatus::Unfulfillable,
    ];

    /// The v0 `OrderStatus` string.
    pub fn v0_name(self) -> &'static str {
        match self {
            SimStatus::PendingAvailability => "PendingAvailability",
            SimStatus::Pending => "Pending",
            SimStatus::Unshipped => "Unshipped",
            SimStatus::PartiallyShipped => "PartiallyShipped",
            SimStatus::Shipped => "Shipped",
            SimStatus::InvoiceUnconfirmed => "InvoiceUnconfirmed",
            SimStatus::Canceled => "Canceled",
            SimStatus::Unfulfillable => "Unfulfillable",
        }
    }

    /// The v2026 `fulfillment.fulfillmentStatus` string.
    pub fn v2026_name(self) -> &'static str {
        match self {
            SimStatus::PendingAvailability => "PENDING_AVAILABILITY",
            SimStatus::Pending => "PENDING",
            SimStatus::Unshipped => "UNSHIPPED",
            SimStatus::PartiallyShipped => "PARTIALLY_SHIPPED",
            SimStatus::Shipped | SimStatus::InvoiceUnconfirmed => "SHIPPED",
            SimStatus::Canceled => "CANCELLED",
            SimStatus::Unfulfillable => "UNFULFILLABLE",
        }
    }

    /// Amazon returns no item pricing at all while an order is pending (v0 model note on getOrderItems).
    pub fn is_pending(self) -> bool {
        matches!(self, SimStatus::Pending | SimStatus::PendingAvailability)
    }

    /// Amazon omits the order-level total while pending and for cancelled orders.
    pub fn has_order_total(self) -> bool {
        !self.is_pending() && self != SimStatus::Canceled
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimItem {
    pub order_item_id: String,
    pub asin: String,
    pub seller_sku: String,
    pub title: String,
    pub quantity_ordered: u32,
    pub quantity_shipped: u32,
    /// Per unit.
    pub unit_price: Decimal,
    /// Tax on the item, all units together.
    pub item_tax: Decimal,
    pub shipping_price: Decimal,
    pub shipping_tax: Decimal,
    /// A positive number; rendered negative in v2026 DISCOUNT breakdowns.
    pub promotion_discount: Decimal,
}

impl SimItem {
    /// v0 `ItemPrice` / v2026 ITEM breakdown: unit price × quantity ordered.
    pub fn item_price(&self) -> Decimal {
        self.unit_price * Decimal::from(self.quantity_ordered)
    }

    /// Everything the buyer pays for this line: price + taxes + shipping − promotion.
    pub fn line_total(&self) -> Decimal {
        self.item_price() + self.item_tax + self.shipping_price + self.shipping_tax
            - self.promotion_discount
    }

    pub fn quantity_unshipped(&self) -> u32 {
        self.quantity_ordered.saturating_sub(self.quantity_shipped)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimOrder {
    /// "902-1845936-5435065" style.
    pub order_id: String,
    pub marketplace_id: String,
    /// Whole seconds.
    pub purchase_date: DateTime<Utc>,
    /// Whole seconds.
    pub last_update_date: DateTime<Utc>,
    pub status: SimStatus,
    /// v0 FulfillmentChannel AFN/MFN; v2026 fulfilledBy AMAZON/MERCHANT.
    pub fulfilled_by_amazon: bool,
    pub currency: String,
    /// PII: v0 BuyerInfo; v2026 only with includedData=BUYER.
    pub buyer_email: Option<String>,
    pub buyer_name: Option<String>,
    pub items: Vec<SimItem>,
    /// Test hook for malformed data: top-level fields that replace the rendered order's own, in
    /// whichever rendering has them (`OrderStatus` affects v0 and the XML report, `fulfillment`
    /// v2026 only; see `report::xml` for the report's keys). Empty for every generated order.
    pub overrides: serde_json::Map<String, serde_json::Value>,
    /// Late indexing (Amazon indexes some updates late): until this wall-clock time has passed,
    /// getOrders, searchOrders and reports do not see this version of the order but `previous`
    /// (or nothing when `previous` is `None`), although `last_update_date` is earlier. `None` =
    /// indexed at once. getOrder and getOrderItems look orders up by id and always see this
    /// version, like Amazon's primary store.
    pub indexed_at: Option<DateTime<Utc>>,
    /// The version searches see while this one is not indexed yet (see `indexed_at`).
    pub previous: Option<Box<SimOrder>>,
}

impl SimOrder {
    /// The version of this order that searches (getOrders, searchOrders, reports) see at `at`.
    pub fn visible_at(&self, at: DateTime<Utc>) -> Option<&SimOrder> {
        match self.indexed_at {
            Some(indexed_at) if indexed_at > at => self.previous.as_deref()?.visible_at(at),
            _ => Some(self),
        }
    }

    /// Order total = Σ line totals.
    pub fn total(&self) -> Decimal {
        self.items.iter().map(SimItem::line_total).sum()
    }

    pub fn items_shipped(&self) -> u32 {
        self.items.iter().map(|i| i.quantity_shipped).sum()
    }

    pub fn items_unshipped(&self) -> u32 {
        self.items.iter().map(SimItem::quantity_unshipped).sum()
    }
}

/// Amazon renders every amount as a string with exactly two decimals ("10.00").
pub fn money_string(amount: Decimal) -> String {
    let rounded = amount.round_dp(2);
    // A negative zero would print as "-0.00"; Amazon never sends that.
    let rounded = if rounded.is_zero() {
        Decimal::ZERO
    } else {
        rounded
    };
    format!("{rounded:.2}")
}

/// RFC 3339 UTC with "Z" and whole seconds ("2026-11-28T05:12:33Z").
pub fn time_string(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The v0 `SalesChannel` for the marketplaces a test is likely to use; anything else is "Amazon".
pub fn sales_channel_name(marketplace_id: &str) -> &'static str {
    match marketplace_id {
        "A13V1IB3VIYZZH" => "Amazon.fr",
        "A1PA6795UKMFR9" => "Amazon.de",
        "APJ6JRA9NG5V4" => "Amazon.it",
        "A1RKKUPIHCS9HS" => "Amazon.es",
        "A1F83G8C2ARO7P" => "Amazon.co.uk",
        "A1805IZSGTT6HS" => "Amazon.nl",
        "AMEN7PMS3EDWL" => "Amazon.com.be",
        "ATVPDKIKX0DER" => "Amazon.com",
        "A2EUQ1WTGCTBG2" => "Amazon.ca",
        "A1VC38T7YXB528" => "Amazon.co.jp",
        _ => "Amazon",
    }
}

/// Two-letter country for the fake delivery address.
pub fn country_code(marketplace_id: &str) -> &'static str {
    match marketplace_id {
        "A13V1IB3VIYZZH" => "FR",
        "A1PA6795UKMFR9" => "DE",
        "APJ6JRA9NG5V4" => "IT",
        "A1RKKUPIHCS9HS" => "ES",
        "A1F83G8C2ARO7P" => "GB",
        "A1805IZSGTT6HS" => "NL",
        "AMEN7PMS3EDWL" => "BE",
        "ATVPDKIKX0DER" => "US",
        "A2EUQ1WTGCTBG2" => "CA",
        "A1VC38T7YXB528" => "JP",
        _ => "FR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_always_two_decimals() {
        assert_eq!(money_string(Decimal::new(10, 0)), "10.00");
        assert_eq!(money_string(Decimal::new(1005, 3)), "1.00"); // banker's rounding of 1.005
        assert_eq!(money_string(Decimal::new(-2, 0)), "-2.00");
        assert_eq!(money_string(Decimal::new(-0, 2)), "0.00");
    }
}
