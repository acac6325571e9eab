//! Rendering orders as Amazon's XML order report (`GET_XML_ALL_ORDERS_DATA_BY_*_GENERAL`): an
//! `AmazonEnvelope` of `AllOrdersReport` messages, one `<Message><Order>` per order, in the shape
//! REPORTS.md documents. Hand-written (no XML crate): the shape is small and fixed, and writing it
//! directly keeps the escaping rules visible in one function.
//!
//! It derives everything from the same `SimOrder` the Orders routes render, so a report import
//! and an Orders API sync of one seller can be compared row by row; it shares no rendering code
//! with them. It must never emit ill-formed XML: all text goes through `escape`.
//!
//! Overrides (`SimOrder::overrides`): a key naming one of the `<Order>` elements `OrderStatus`,
//! `SalesChannel`, `ShipServiceLevel`, `IsBusinessOrder`, `PurchaseDate` or `MerchantOrderID`
//! replaces its text (a string as is, a number or boolean as JSON text; `null` omits the element;
//! arrays and objects are ignored). Every other key only concerns the JSON renderings.

use std::fmt::Write as _;
use std::io::{self, Write};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::model::{SimItem, SimOrder, SimStatus, country_code, money_string, sales_channel_name};

/// Rendering switches.
#[derive(Debug, Clone, Copy, Default)]
pub struct XmlOptions {
    /// Unshipped and PartiallyShipped orders say `Shipping`, the MWS-era value (REPORTS.md).
    pub status_shipping: bool,
}

/// XML text with `&`, `<`, `>`, `"` and `'` escaped, and the characters XML 1.0 cannot carry at
/// all (controls other than tab, LF and CR, such as NUL; U+FFFE and U+FFFF) dropped, as Amazon
/// would have to.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// RFC 3339 with an explicit `+00:00`, as Amazon's reports print dates.
pub fn report_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// The report's `OrderStatus` (note `Cancelled`, double L, unlike v0's `Canceled`).
pub fn order_status(status: SimStatus, options: XmlOptions) -> &'static str {
    match status {
        SimStatus::Unshipped | SimStatus::PartiallyShipped if options.status_shipping => "Shipping",
        SimStatus::Canceled => "Cancelled",
        other => other.v0_name(),
    }
}

fn item_status(order: &SimOrder, item: &SimItem) -> &'static str {
    if order.status == SimStatus::Canceled {
        "Cancelled"
    } else if order.status.is_pending() {
        "Pending"
    } else if item.quantity_shipped >= item.quantity_ordered {
        "Shipped"
    } else {
        "Unshipped"
    }
}

/// Indented element writer over a `String` (one order at a time).
struct Writer {
    out: String,
    depth: usize,
}

impl Writer {
    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn open(&mut self, name: &str) {
        self.indent();
        let _ = writeln!(self.out, "<{name}>");
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.indent();
        let _ = writeln!(self.out, "</{name}>");
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.indent();
        let _ = writeln!(self.out, "<{name}>{}</{name}>", escape(text));
    }

    fn amount(&mut self, currency: &str, amount: Decimal) {
        self.indent();
        let _ = writeln!(
            self.out,
            "<Amount currency=\"{}\">{}</Amount>",
            escape(currency),
            money_string(amount)
        );
    }
}

/// The text an override gives an element: `None` = no override, `Some(None)` = omit it.
fn overridden(order: &SimOrder, element: &str) -> Option<Option<String>> {
    match order.overrides.get(element)? {
        Value::Null => Some(None),
        Value::String(text) => Some(Some(text.clone())),
        Value::Bool(_) | Value::Number(_) => Some(Some(order.overrides[element].to_string())),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// An order-level element, unless an override replaces or removes it.
fn order_leaf(w: &mut Writer, order: &SimOrder, name: &str, text: &str) {
    match overridden(order, name) {
        None => w.leaf(name, text),
        Some(Some(replacement)) => w.leaf(name, &replacement),
        Some(None) => {}
    }
}

fn render_item(w: &mut Writer, order: &SimOrder, item: &SimItem) {
    let pending = order.status.is_pending();
    w.open("OrderItem");
    // The 2017 fixture had no item code on a Pending order (REPORTS.md).
    if !pending {
        w.leaf("AmazonOrderItemCode", &item.order_item_id);
    }
    w.leaf("ASIN", &item.asin);
    w.leaf("SKU", &item.seller_sku);
    w.leaf("ItemStatus", item_status(order, item));
    w.leaf("ProductName", &item.title);
    w.leaf("Quantity", &item.quantity_ordered.to_string());
    // Like the Orders API, no prices while pending.
    if !pending {
        let currency = &order.currency;
        let mut components = vec![("Principal", item.item_price()), ("Tax", item.item_tax)];
        if !item.shipping_price.is_zero() || !item.shipping_tax.is_zero() {
            components.push(("Shipping", item.shipping_price));
            components.push(("ShippingTax", item.shipping_tax));
        }
        w.open("ItemPrice");
        for (kind, amount) in components {
            w.open("Component");
            w.leaf("Type", kind);
            w.amount(currency, amount);
            w.close("Component");
        }
        w.close("ItemPrice");
        if !item.promotion_discount.is_zero() {
            // Rendered negative; the sign is UNVERIFIED (REPORTS.md), clients must normalise.
            w.open("Promotion");
            w.leaf(
                "ItemPromotionDiscount",
                &money_string(-item.promotion_discount),
            );
            w.leaf("ShipPromotionDiscount", &money_string(Decimal::ZERO));
            w.close("Promotion");
        }
    }
    w.close("OrderItem");
}

/// One `<Message>` with its `<Order>`, indented one level inside the envelope.
pub fn render_order(order: &SimOrder, options: XmlOptions) -> String {
    let mut w = Writer {
        out: String::new(),
        depth: 1,
    };
    w.open("Message");
    w.open("Order");
    w.leaf("AmazonOrderID", &order.order_id);
    order_leaf(&mut w, order, "MerchantOrderID", &order.order_id);
    order_leaf(
        &mut w,
        order,
        "PurchaseDate",
        &report_time(order.purchase_date),
    );
    w.leaf("LastUpdatedDate", &report_time(order.last_update_date));
    order_leaf(
        &mut w,
        order,
        "OrderStatus",
        order_status(order.status, options),
    );
    order_leaf(
        &mut w,
        order,
        "SalesChannel",
        sales_channel_name(&order.marketplace_id),
    );
    w.open("FulfillmentData");
    w.leaf(
        "FulfillmentChannel",
        if order.fulfilled_by_amazon {
            "Amazon"
        } else {
            "Merchant"
        },
    );
    order_leaf(&mut w, order, "ShipServiceLevel", "Std FR Dom");
    // Non-PII address fields only: the report carries no customer-identifying data.
    w.open("Address");
    w.leaf("City", "Paris");
    w.leaf("State", "Île-de-France");
    w.leaf("PostalCode", "75001");
    w.leaf("Country", country_code(&order.marketplace_id));
    w.close("Address");
    w.close("FulfillmentData");
    order_leaf(&mut w, order, "IsBusinessOrder", "false");
    for item in &order.items {
        render_item(&mut w, order, item);
    }
    w.close("Order");
    w.close("Message");
    w.out
}

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AmazonEnvelope xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:noNamespaceSchemaLocation=\"amzn-envelope.xsd\">\n  <Header>\n    <DocumentVersion>1.01</DocumentVersion>\n  </Header>\n  <MessageType>AllOrdersReport</MessageType>\n";
const TAIL: &str = "</AmazonEnvelope>\n";

/// The whole document, written order by order (never held in memory as one string).
pub fn write_report(
    out: &mut dyn Write,
    orders: &[&SimOrder],
    options: XmlOptions,
) -> io::Result<()> {
    out.write_all(HEAD.as_bytes())?;
    for order in orders {
        out.write_all(render_order(order, options).as_bytes())?;
    }
    out.write_all(TAIL.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(status: SimStatus) -> SimOrder {
        let item = |id: &str, qty: u32, shipped: u32, unit: i64, ship: i64, promo: i64| SimItem {
            order_item_id: id.into(),
            asin: "B000000001".into(),
            seller_sku: "SKU-1".into(),
            title: "Câble <USB-C> & co".into(),
            quantity_ordered: qty,
            quantity_shipped: shipped,
            unit_price: Decimal::new(unit, 2),
            item_tax: Decimal::new(unit * i64::from(qty) / 5, 2),
            shipping_price: Decimal::new(ship, 2),
            shipping_tax: Decimal::new(ship / 5, 2),
            promotion_discount: Decimal::new(promo, 2),
        };
        SimOrder {
            order_id: "402-1234567-7654321".into(),
            marketplace_id: "A13V1IB3VIYZZH".into(),
            purchase_date: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            last_update_date: DateTime::from_timestamp(1_800_000_600, 0).unwrap(),
            status,
            fulfilled_by_amazon: false,
            currency: "EUR".into(),
            buyer_email: None,
            buyer_name: None,
            items: vec![
                item("12345678901234", 2, 2, 1000, 499, 150),
                item("12345678901235", 1, 0, 550, 0, 0),
            ],
            overrides: serde_json::Map::new(),
            indexed_at: None,
            previous: None,
        }
    }

    #[test]
    fn shipped_order_has_codes_prices_and_negative_promotion() {
        let xml = render_order(&order(SimStatus::PartiallyShipped), XmlOptions::default());
        assert!(xml.contains("<AmazonOrderItemCode>12345678901234</AmazonOrderItemCode>"));
        assert!(xml.contains("<PurchaseDate>2027-01-15T08:00:00+00:00</PurchaseDate>"));
        assert!(xml.contains("<OrderStatus>PartiallyShipped</OrderStatus>"));
        assert!(xml.contains("<SalesChannel>Amazon.fr</SalesChannel>"));
        assert!(xml.contains("<FulfillmentChannel>Merchant</FulfillmentChannel>"));
        assert!(xml.contains("<ProductName>Câble &lt;USB-C&gt; &amp; co</ProductName>"));
        assert!(xml.contains("<Amount currency=\"EUR\">20.00</Amount>"));
        assert!(xml.contains("<ItemPromotionDiscount>-1.50</ItemPromotionDiscount>"));
        assert_eq!(xml.matches("<ItemStatus>Shipped</ItemStatus>").count(), 1);
        assert_eq!(xml.matches("<ItemStatus>Unshipped</ItemStatus>").count(), 1);
        // The second item has no shipping and no promotion.
        assert_eq!(xml.matches("<Type>Shipping</Type>").count(), 1);
        assert_eq!(xml.matches("<Promotion>").count(), 1);

        let shipping = render_order(
            &order(SimStatus::Unshipped),
            XmlOptions {
                status_shipping: true,
            },
        );
        assert!(shipping.contains("<OrderStatus>Shipping</OrderStatus>"));
    }

    #[test]
    fn pending_and_cancelled_follow_the_fixture() {
        let pending = render_order(&order(SimStatus::Pending), XmlOptions::default());
        assert!(!pending.contains("AmazonOrderItemCode"));
        assert!(!pending.contains("ItemPrice"));
        assert!(!pending.contains("Promotion"));
        assert!(pending.contains("<ItemStatus>Pending</ItemStatus>"));
        let cancelled = render_order(&order(SimStatus::Canceled), XmlOptions::default());
        assert!(cancelled.contains("<OrderStatus>Cancelled</OrderStatus>"));
        assert!(cancelled.contains("<ItemStatus>Cancelled</ItemStatus>"));
        assert!(cancelled.contains("AmazonOrderItemCode"));
    }

    #[test]
    fn illegal_characters_are_dropped_and_overrides_apply() {
        assert_eq!(escape("a\u{0}b\u{1}c\td'\"é"), "abc\td&apos;&quot;é");
        let mut odd = order(SimStatus::Shipped);
        odd.overrides
            .insert("SalesChannel".into(), "Amazon\u{0}.fr".into());
        odd.overrides.insert("OrderStatus".into(), "OnHold".into());
        odd.overrides
            .insert("MerchantOrderID".into(), serde_json::Value::Null);
        odd.overrides
            .insert("fulfillment".into(), serde_json::json!({"x": 1}));
        let xml = render_order(&odd, XmlOptions::default());
        assert!(xml.contains("<SalesChannel>Amazon.fr</SalesChannel>"));
        assert!(xml.contains("<OrderStatus>OnHold</OrderStatus>"));
        assert!(!xml.contains("MerchantOrderID"));
    }
}
