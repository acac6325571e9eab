//! One report `<Order>` into the rows the Orders API would write ([`ReportEntry`]), in our
//! vocabulary, with every decision a person may want to check logged by the caller
//! ([`Mapped::notes`]).
//!
//! | report | stored |
//! |---|---|
//! | `AmazonOrderID`, `PurchaseDate`, `LastUpdatedDate` | `external_order_id`, `purchase_date`, `last_update_date` (all required) |
//! | `OrderStatus` `Pending`, `Unshipped`, `PartiallyShipped`, `Shipped`, `Cancelled` (or `Canceled`), ... | the v2026 names; `Shipping` from the item statuses (all `Shipped`: SHIPPED, some: PARTIALLY_SHIPPED, none: UNSHIPPED) |
//! | `SalesChannel` (`Amazon.fr`) | `marketplace_id` through [`marketplace_of`]; NULL when it names none; another marketplace than the tenant's: not imported |
//! | `FulfillmentData/FulfillmentChannel` `Amazon` / `Merchant` | `AFN` / `MFN` |
//! | (none) | `order_total_*`: NULL, the report has no total |
//! | `OrderItem/AmazonOrderItemCode` | `order_item_id`; without one, the item is staged |
//! | `ASIN`, `SKU`, `ProductName`, `Quantity` | `asin`, `seller_sku`, `title`, `quantity_ordered` |
//! | `ItemStatus` | `quantity_shipped`: `Quantity` when `Shipped`, 0 when `Cancelled` or `Pending`, else unknown (NULL): an `Unshipped` line may be partly shipped |
//! | `ItemPrice/Component` `Principal`, `Tax`, `Shipping` (`Amount` and its `currency`) | `item_price_amount`, `item_tax_amount`, `shipping_price_amount`, `currency` |
//! | `Promotion/ItemPromotionDiscount` (any sign) | `promotion_discount_amount`, positive |
//!
//! An item code listed twice (a split shipment) is one item: quantities and amounts are summed.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use super::xml::Node;
use crate::model::{
    ItemRecord, OrderRecord, OrderStatus, ReportEntry, ReportItem, ReportOrder, StagedItem,
};

/// The marketplace a report's `SalesChannel` names (Amazon's marketplace ids, from the
/// SP-API documentation's marketplace table), or `None` for a channel that names none (`Non-Amazon`,
/// an unknown domain): the order is then kept with no marketplace id, as it cannot be told apart.
pub fn marketplace_of(channel: &str) -> Option<&'static str> {
    let id = match channel.trim().to_ascii_lowercase().as_str() {
        "amazon.com" => "ATVPDKIKX0DER",
        "amazon.ca" => "A2EUQ1WTGCTBG2",
        "amazon.com.mx" => "A1AM78C64UM0Y8",
        "amazon.com.br" => "A2Q3Y263D00KWC",
        "amazon.co.uk" => "A1F83G8C2ARO7P",
        "amazon.de" => "A1PA6795UKMFR9",
        "amazon.fr" => "A13V1IB3VIYZZH",
        "amazon.it" => "APJ6JRA9NG5V4",
        "amazon.es" => "A1RKKUPIHCS9HS",
        "amazon.nl" => "A1805IZSGTT6HS",
        "amazon.se" => "A2NODRKZP88ZB9",
        "amazon.pl" => "A1C3SOZRARQ6R3",
        "amazon.com.be" => "AMEN7PMS3EDWL",
        "amazon.ie" => "A28R8C7NBKEWEA",
        "amazon.com.tr" => "A33AVAJ2PDY3EV",
        "amazon.ae" => "A2VIGQ35RCS4UG",
        "amazon.sa" => "A17E79C6D8DWNP",
        "amazon.eg" => "ARBP9OOSHTCHU",
        "amazon.in" => "A21TJRUUN4KGV",
        "amazon.co.za" => "AE08WJ6YKNBMC",
        "amazon.co.jp" => "A1VC38T7YXB528",
        "amazon.com.au" => "A39IBJ37TRP1C6",
        "amazon.sg" => "A19VAU5U5O7RUS",
        _ => return None,
    };
    Some(id)
}

/// What one `<Order>` became, and the decisions worth a log line.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub entry: ReportEntry,
    pub notes: Vec<String>,
}

/// The report's `OrderStatus` in our vocabulary; `Shipping` is decided by the caller.
fn status(value: &str) -> Option<OrderStatus> {
    Some(match value {
        "PendingAvailability" => OrderStatus::PendingAvailability,
        "Pending" => OrderStatus::Pending,
        "Unshipped" => OrderStatus::Unshipped,
        "PartiallyShipped" => OrderStatus::PartiallyShipped,
        "Shipped" => OrderStatus::Shipped,
        "Cancelled" | "Canceled" => OrderStatus::Cancelled,
        "Unfulfillable" => OrderStatus::Unfulfillable,
        "InvoiceUnconfirmed" => OrderStatus::InvoiceUnconfirmed,
        _ => return None,
    })
}

fn time(node: &Node, name: &str) -> Result<DateTime<Utc>, String> {
    let text = node.text_of(name).ok_or_else(|| format!("no <{name}>"))?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("<{name}> {text:?} is not an RFC 3339 time: {e}"))
}

fn amount(node: &Node, path: &str) -> Result<Decimal, String> {
    let text = node.text.trim();
    Decimal::from_str(text).map_err(|_| format!("{path} {text:?} is not a decimal amount"))
}

/// Adds to an optional sum (`None` + x = x), refusing an overflow.
fn add(sum: &mut Option<Decimal>, x: Decimal, what: &str) -> Result<(), String> {
    *sum = Some(
        sum.unwrap_or(Decimal::ZERO)
            .checked_add(x)
            .ok_or_else(|| format!("{what} overflows"))?,
    );
    Ok(())
}

/// One `<OrderItem>`, before item codes are merged.
struct Line {
    code: Option<String>,
    item: ReportItem,
    status: Option<String>,
}

fn line(order_id: &str, position: usize, node: &Node) -> Result<Line, String> {
    let at = format!("item {position} of order {order_id}");
    let quantity_text = node
        .text_of("Quantity")
        .ok_or_else(|| format!("{at}: no <Quantity>"))?;
    let quantity: i32 = quantity_text
        .parse()
        .ok()
        .filter(|q| *q >= 0)
        .ok_or_else(|| format!("{at}: <Quantity> {quantity_text:?} is not a count"))?;
    let status = node.text_of("ItemStatus").map(str::to_owned);
    let shipped = match status.as_deref() {
        Some("Shipped") => Some(quantity),
        Some("Cancelled" | "Canceled" | "Pending") => Some(0),
        _ => None,
    };
    let (mut price, mut tax, mut shipping, mut discount) = (None, None, None, None);
    let mut currency: Option<String> = None;
    let price_node = node.child("ItemPrice");
    let priced = price_node.is_some_and(|p| p.child("Component").is_some());
    if let Some(p) = price_node {
        for c in p.children_named("Component") {
            let Some(kind) = c.text_of("Type") else {
                return Err(format!("{at}: an <ItemPrice><Component> without <Type>"));
            };
            let Some(a) = c.child("Amount") else {
                return Err(format!("{at}: component {kind} without <Amount>"));
            };
            let value = amount(a, &format!("{at}: component {kind} amount"))?;
            if currency.is_none() {
                currency = a.attr("currency").map(str::to_owned);
            }
            let what = format!("{at}: {kind}");
            match kind {
                "Principal" => add(&mut price, value, &what)?,
                "Tax" => add(&mut tax, value, &what)?,
                "Shipping" => add(&mut shipping, value, &what)?,
                // ShippingTax, GiftWrap, GiftWrapTax, ...: no column; kept in raw.
                _ => {}
            }
        }
    }
    for promo in node.children_named("Promotion") {
        if let Some(d) = promo.child("ItemPromotionDiscount") {
            if d.text.trim().is_empty() {
                continue;
            }
            // The sign is not documented (REPORTS.md): stored positive, as v0 serves it.
            let value = amount(d, &format!("{at}: ItemPromotionDiscount"))?;
            add(
                &mut discount,
                value.abs(),
                &format!("{at}: promotion discount"),
            )?;
        }
    }
    let code = node.text_of("AmazonOrderItemCode").map(str::to_owned);
    Ok(Line {
        item: ReportItem {
            item: ItemRecord {
                order_item_id: code.clone().unwrap_or_default(),
                asin: node.text_of("ASIN").map(str::to_owned),
                seller_sku: node.text_of("SKU").map(str::to_owned),
                title: node.text_of("ProductName").map(str::to_owned),
                quantity_ordered: quantity,
                quantity_shipped: shipped,
                item_price_amount: price,
                item_tax_amount: tax,
                shipping_price_amount: shipping,
                promotion_discount_amount: discount,
                currency,
                raw: node.to_json(),
            },
            priced,
        },
        code,
        status,
    })
}

/// Merges a second line of the same item code into the first: quantities and amounts summed.
fn merge_line(into: &mut ReportItem, other: ReportItem, what: &str) -> Result<(), String> {
    let (a, b) = (&mut into.item, other.item);
    a.quantity_ordered = a
        .quantity_ordered
        .checked_add(b.quantity_ordered)
        .ok_or_else(|| format!("{what}: quantity overflows"))?;
    a.quantity_shipped = match (a.quantity_shipped, b.quantity_shipped) {
        (Some(x), Some(y)) => Some(x.saturating_add(y)),
        _ => None,
    };
    for (sum, x) in [
        (&mut a.item_price_amount, b.item_price_amount),
        (&mut a.item_tax_amount, b.item_tax_amount),
        (&mut a.shipping_price_amount, b.shipping_price_amount),
        (
            &mut a.promotion_discount_amount,
            b.promotion_discount_amount,
        ),
    ] {
        if let Some(x) = x {
            add(sum, x, what)?;
        }
    }
    a.currency = a.currency.take().or(b.currency);
    a.raw = match std::mem::take(&mut a.raw) {
        Value::Array(mut list) => {
            list.push(b.raw);
            Value::Array(list)
        }
        first => Value::Array(vec![first, b.raw]),
    };
    into.priced |= other.priced;
    Ok(())
}

/// Maps one `<Order>`; `marketplaces` are the tenant's.
pub fn map_order(node: &Node, marketplaces: &[String]) -> Mapped {
    let mut notes = Vec::new();
    let order_id = node.text_of("AmazonOrderID").map(str::to_owned);
    let entry = match read(node, marketplaces, &mut notes) {
        Ok(entry) => entry,
        Err(error) => ReportEntry::Unreadable {
            order_id,
            raw: node.to_json(),
            error,
        },
    };
    Mapped { entry, notes }
}

fn read(
    node: &Node,
    marketplaces: &[String],
    notes: &mut Vec<String>,
) -> Result<ReportEntry, String> {
    let order_id = node
        .text_of("AmazonOrderID")
        .ok_or("no <AmazonOrderID>")?
        .to_owned();
    let fail = |e: String| format!("order {order_id}: {e}");
    let channel = node.text_of("SalesChannel").unwrap_or("").to_owned();
    let marketplace_id = marketplace_of(&channel).map(str::to_owned);
    if let Some(id) = &marketplace_id
        && !marketplaces.iter().any(|m| m == id)
    {
        return Ok(ReportEntry::OtherMarketplace { order_id, channel });
    }
    if marketplace_id.is_none() {
        notes.push(format!(
            "order {order_id}: sales channel {channel:?} names no known marketplace; marketplace_id left NULL"
        ));
    }
    let purchase_date = time(node, "PurchaseDate").map_err(fail)?;
    let last_update_date = time(node, "LastUpdatedDate").map_err(fail)?;
    let status_text = node
        .text_of("OrderStatus")
        .ok_or_else(|| fail("no <OrderStatus>".to_owned()))?
        .to_owned();
    let fulfillment_channel = node
        .child("FulfillmentData")
        .and_then(|f| f.text_of("FulfillmentChannel"))
        .map(|c| match c {
            "Amazon" => "AFN".to_owned(),
            "Merchant" => "MFN".to_owned(),
            other => other.to_owned(),
        });

    let mut items: Vec<ReportItem> = Vec::new();
    let mut staged = Vec::new();
    let mut item_statuses = Vec::new();
    for (n, item_node) in node.children_named("OrderItem").enumerate() {
        let position = n + 1;
        let l = line(&order_id, position, item_node)?;
        item_statuses.push(l.status.clone());
        match l.code {
            Some(code) => match items.iter_mut().find(|i| i.item.order_item_id == code) {
                Some(first) => {
                    notes.push(format!(
                        "order {order_id}: item {code} is listed more than once (a split shipment?); quantities and amounts summed"
                    ));
                    merge_line(first, l.item, &format!("order {order_id} item {code}"))
                        .map_err(fail)?;
                }
                None => items.push(l.item),
            },
            None => staged.push(StagedItem {
                position: position as i32,
                asin: l.item.item.asin,
                seller_sku: l.item.item.seller_sku,
                title: l.item.item.title,
                quantity_ordered: l.item.item.quantity_ordered,
                item_status: l.status,
                raw: l.item.item.raw,
            }),
        }
    }

    let status = match status(&status_text) {
        Some(s) => s,
        None if status_text == "Shipping" => {
            let shipped = item_statuses
                .iter()
                .filter(|s| s.as_deref() == Some("Shipped"))
                .count();
            let decided = match shipped {
                0 => OrderStatus::Unshipped,
                n if n == item_statuses.len() => OrderStatus::Shipped,
                _ => OrderStatus::PartiallyShipped,
            };
            notes.push(format!(
                "order {order_id}: report status Shipping stored as {} ({shipped} of {} items Shipped)",
                decided.as_str(),
                item_statuses.len()
            ));
            decided
        }
        None => return Err(fail(format!("unknown <OrderStatus> {status_text:?}"))),
    };
    Ok(ReportEntry::Order(ReportOrder {
        order: OrderRecord {
            external_order_id: order_id,
            marketplace_id,
            status,
            purchase_date,
            last_update_date,
            fulfillment_channel,
            order_total_amount: None,
            order_total_currency: None,
            raw: node.to_json(),
        },
        items,
        staged,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::reports::xml::DocumentOrders;

    const DOC: &str = include_str!("../../../tests/fixtures/reports/all_orders.xml");
    const FR: &str = "A13V1IB3VIYZZH";
    const DE: &str = "A1PA6795UKMFR9";

    async fn mapped(marketplaces: &[&str]) -> Vec<Mapped> {
        let marketplaces: Vec<String> = marketplaces.iter().map(|m| m.to_string()).collect();
        let mut orders = DocumentOrders::new(DOC.as_bytes(), "50001");
        let mut out = Vec::new();
        while let Some(raw) = orders.next_order().await.unwrap() {
            out.push(map_order(&raw.node, &marketplaces));
        }
        out
    }

    fn order(m: &Mapped) -> &ReportOrder {
        match &m.entry {
            ReportEntry::Order(o) => o,
            other => panic!("not an order: {other:?}"),
        }
    }

    fn d(s: &str) -> Option<Decimal> {
        Some(Decimal::from_str(s).unwrap())
    }

    #[tokio::test]
    async fn a_shipped_fba_order_maps_to_the_orders_api_vocabulary() {
        let all = mapped(&[FR]).await;
        let o = order(&all[0]);
        assert!(all[0].notes.is_empty(), "{:?}", all[0].notes);
        assert_eq!(o.order.external_order_id, "402-1111111-1111111");
        assert_eq!(o.order.status, OrderStatus::Shipped);
        assert_eq!(o.order.marketplace_id.as_deref(), Some(FR));
        assert_eq!(o.order.fulfillment_channel.as_deref(), Some("AFN"));
        assert_eq!(o.order.order_total_amount, None);
        assert_eq!(
            o.order.last_update_date,
            DateTime::parse_from_rfc3339("2026-10-04T16:40:12Z").unwrap()
        );
        assert!(o.items_complete());
        let i = &o.items[0].item;
        assert_eq!(i.order_item_id, "11111111111101");
        assert_eq!(i.seller_sku.as_deref(), Some("SKU-001"));
        assert_eq!(i.quantity_ordered, 2);
        assert_eq!(i.quantity_shipped, Some(2));
        assert_eq!(i.item_price_amount, d("59.98"));
        assert_eq!(i.item_tax_amount, d("12.00"));
        assert_eq!(i.shipping_price_amount, d("4.99"));
        assert_eq!(i.promotion_discount_amount, d("2.00"), "stored positive");
        assert_eq!(i.currency.as_deref(), Some("EUR"));
        assert!(o.items[0].priced);
        assert_eq!(o.order.raw["OrderItem"][0]["ASIN"], "B0CLAVIER1");
    }

    #[tokio::test]
    async fn pending_items_without_a_code_are_staged_not_dropped() {
        let all = mapped(&[FR]).await;
        let o = order(&all[1]);
        assert_eq!(o.order.status, OrderStatus::Pending);
        assert_eq!(o.order.fulfillment_channel.as_deref(), Some("MFN"));
        assert!(o.items.is_empty());
        assert!(!o.items_complete());
        let staged: Vec<_> = o
            .staged
            .iter()
            .map(|s| (s.position, s.asin.as_deref().unwrap(), s.quantity_ordered))
            .collect();
        assert_eq!(staged, [(1, "B0SOURIS01", 1), (2, "B0CABLE001", 3)]);
        assert_eq!(o.staged[1].title.as_deref(), Some("Câble USB-C"));
    }

    #[tokio::test]
    async fn a_split_item_code_is_summed_and_shipping_is_decided_from_the_items() {
        let all = mapped(&[FR]).await;
        let o = order(&all[2]);
        assert_eq!(o.order.status, OrderStatus::PartiallyShipped);
        assert_eq!(o.items.len(), 2);
        let hub = &o.items[0].item;
        assert_eq!(hub.order_item_id, "33333333333301");
        assert_eq!(hub.quantity_ordered, 3);
        assert_eq!(hub.item_price_amount, d("60.00"));
        assert_eq!(hub.item_tax_amount, d("12.00"));
        assert_eq!(
            hub.quantity_shipped, None,
            "one line shipped, one not: unknown"
        );
        assert_eq!(hub.raw.as_array().map(Vec::len), Some(2));
        // The webcam has no Tax component: unknown as reported, 0 for a new row.
        let cam = &o.items[1];
        assert_eq!(cam.item.item_tax_amount, None);
        assert_eq!(cam.new_row().item_tax_amount, Some(Decimal::ZERO));
        assert_eq!(cam.new_row().item_price_amount, d("35.50"));
        let notes = all[2].notes.join("\n");
        assert!(notes.contains("listed more than once"), "{notes}");
        assert!(
            notes.contains("Shipping stored as PARTIALLY_SHIPPED"),
            "{notes}"
        );
    }

    #[tokio::test]
    async fn other_marketplaces_are_left_out_and_unknown_channels_kept_without_an_id() {
        let all = mapped(&[FR]).await;
        assert_eq!(
            all[3].entry,
            ReportEntry::OtherMarketplace {
                order_id: "402-4444444-4444444".into(),
                channel: "Amazon.de".into()
            }
        );
        let both = mapped(&[FR, DE]).await;
        let de = order(&both[3]);
        assert_eq!(de.order.status, OrderStatus::Cancelled);
        assert_eq!(de.items[0].item.quantity_shipped, Some(0));
        assert!(!de.items[0].priced);

        let mcf = order(&all[5]);
        assert_eq!(mcf.order.marketplace_id, None);
        assert!(all[5].notes[0].contains("Non-Amazon"));
    }

    #[tokio::test]
    async fn an_unreadable_order_names_what_is_wrong_and_keeps_what_was_sent() {
        let all = mapped(&[FR]).await;
        let ReportEntry::Unreadable {
            order_id,
            raw,
            error,
        } = &all[4].entry
        else {
            panic!("{:?}", all[4]);
        };
        assert_eq!(order_id.as_deref(), Some("402-5555555-5555555"));
        assert!(
            error.contains("unknown <OrderStatus> \"OnHold\""),
            "{error}"
        );
        assert_eq!(raw["OrderStatus"], "OnHold");

        let bad = Node {
            name: "Order".into(),
            children: vec![
                Node {
                    name: "AmazonOrderID".into(),
                    text: "1".into(),
                    ..Node::default()
                },
                Node {
                    name: "PurchaseDate".into(),
                    text: "yesterday".into(),
                    ..Node::default()
                },
            ],
            ..Node::default()
        };
        let ReportEntry::Unreadable { error, .. } = map_order(&bad, &[]).entry else {
            panic!()
        };
        assert!(error.contains("<PurchaseDate> \"yesterday\""), "{error}");
    }

    #[test]
    fn sales_channels_name_marketplaces_whatever_their_case() {
        assert_eq!(marketplace_of("Amazon.fr"), Some(FR));
        assert_eq!(marketplace_of(" AMAZON.CO.UK "), Some("A1F83G8C2ARO7P"));
        assert_eq!(marketplace_of("Non-Amazon"), None);
        assert_eq!(marketplace_of(""), None);
    }
}
