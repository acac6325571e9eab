//! Rendering a `SimOrder` as Amazon's JSON: the v0 `Order` and `OrderItem` objects and the v2026
//! `Order` (items inline). Field names follow ordersV0.json and orders_2026-01-01.json exactly.
//!
//! Both versions render the same order, so the prices, totals and statuses a client derives from
//! either must agree; the pending/cancelled omissions below mirror what Amazon leaves out.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::model::{
    SimItem, SimOrder, country_code, money_string, sales_channel_name, time_string,
};

fn v0_money(currency: &str, amount: Decimal) -> Value {
    json!({"CurrencyCode": currency, "Amount": money_string(amount)})
}

fn money(currency: &str, amount: Decimal) -> Value {
    json!({"amount": money_string(amount), "currencyCode": currency})
}

/// Replaces the fields a test asked to corrupt (see [`SimOrder::overrides`]).
fn apply_overrides(out: &mut Map<String, Value>, order: &SimOrder) {
    for (key, value) in &order.overrides {
        if out.contains_key(key) {
            out.insert(key.clone(), value.clone());
        }
    }
}

pub fn v0_order(order: &SimOrder) -> Value {
    let mut out = Map::new();
    out.insert("AmazonOrderId".into(), json!(order.order_id));
    out.insert(
        "PurchaseDate".into(),
        json!(time_string(order.purchase_date)),
    );
    out.insert(
        "LastUpdateDate".into(),
        json!(time_string(order.last_update_date)),
    );
    out.insert("OrderStatus".into(), json!(order.status.v0_name()));
    out.insert(
        "FulfillmentChannel".into(),
        json!(if order.fulfilled_by_amazon {
            "AFN"
        } else {
            "MFN"
        }),
    );
    out.insert(
        "SalesChannel".into(),
        json!(sales_channel_name(&order.marketplace_id)),
    );
    out.insert("ShipServiceLevel".into(), json!("Std FR Dom"));
    if order.status.has_order_total() {
        out.insert(
            "OrderTotal".into(),
            v0_money(&order.currency, order.total()),
        );
    }
    out.insert("NumberOfItemsShipped".into(), json!(order.items_shipped()));
    out.insert(
        "NumberOfItemsUnshipped".into(),
        json!(order.items_unshipped()),
    );
    out.insert("PaymentMethod".into(), json!("Other"));
    out.insert("MarketplaceId".into(), json!(order.marketplace_id));
    out.insert("OrderType".into(), json!("StandardOrder"));
    out.insert("IsBusinessOrder".into(), json!(false));
    out.insert("IsPrime".into(), json!(false));
    out.insert("IsPremiumOrder".into(), json!(false));
    out.insert("IsGlobalExpressEnabled".into(), json!(false));
    out.insert("IsReplacementOrder".into(), json!(false));
    out.insert("IsSoldByAB".into(), json!(false));
    out.insert("IsISPU".into(), json!(false));
    out.insert("IsAccessPointOrder".into(), json!(false));
    let mut buyer = Map::new();
    if let Some(email) = &order.buyer_email {
        buyer.insert("BuyerEmail".into(), json!(email));
    }
    if let Some(name) = &order.buyer_name {
        buyer.insert("BuyerName".into(), json!(name));
    }
    if !buyer.is_empty() {
        out.insert("BuyerInfo".into(), Value::Object(buyer));
    }
    apply_overrides(&mut out, order);
    Value::Object(out)
}

pub fn v0_order_item(order: &SimOrder, item: &SimItem) -> Value {
    let mut out = Map::new();
    out.insert("ASIN".into(), json!(item.asin));
    out.insert("SellerSKU".into(), json!(item.seller_sku));
    out.insert("OrderItemId".into(), json!(item.order_item_id));
    out.insert("Title".into(), json!(item.title));
    out.insert("QuantityOrdered".into(), json!(item.quantity_ordered));
    out.insert("QuantityShipped".into(), json!(item.quantity_shipped));
    // NumberOfItems is a string in the current model (changelog: integer → string).
    out.insert("ProductInfo".into(), json!({"NumberOfItems": "1"}));
    if !order.status.is_pending() {
        let currency = &order.currency;
        out.insert("ItemPrice".into(), v0_money(currency, item.item_price()));
        out.insert("ItemTax".into(), v0_money(currency, item.item_tax));
        out.insert(
            "ShippingPrice".into(),
            v0_money(currency, item.shipping_price),
        );
        out.insert("ShippingTax".into(), v0_money(currency, item.shipping_tax));
        out.insert(
            "PromotionDiscount".into(),
            v0_money(currency, item.promotion_discount),
        );
        out.insert(
            "PromotionDiscountTax".into(),
            v0_money(currency, Decimal::ZERO),
        );
    }
    // IsGift is a string in the current model.
    out.insert("IsGift".into(), json!("false"));
    out.insert("ConditionId".into(), json!("New"));
    out.insert("ConditionSubtypeId".into(), json!("New"));
    out.insert("IsTransparency".into(), json!(false));
    out.insert("SerialNumberRequired".into(), json!(false));
    Value::Object(out)
}

/// Which optional v2026 sections the client asked for with `includedData`. Values the sim accepts
/// but has no data for (EXPENSE, PACKAGES, ...) simply add nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Included {
    pub buyer: bool,
    pub recipient: bool,
    pub proceeds: bool,
    pub fulfillment: bool,
}

pub const INCLUDED_DATA_VALUES: [&str; 11] = [
    "BUYER",
    "RECIPIENT",
    "PROCEEDS",
    "EXPENSE",
    "PROMOTION",
    "CANCELLATION",
    "FULFILLMENT",
    "PACKAGES",
    "TAX",
    "PAYMENT",
    "FULFILLMENT_ORDERS",
];

fn breakdown(kind: &str, currency: &str, amount: Decimal) -> Value {
    json!({"type": kind, "subtotal": money(currency, amount)})
}

fn v2026_item(order: &SimOrder, item: &SimItem, included: Included) -> Value {
    let currency = &order.currency;
    let mut product = Map::new();
    product.insert("asin".into(), json!(item.asin));
    product.insert("title".into(), json!(item.title));
    product.insert("sellerSku".into(), json!(item.seller_sku));
    product.insert(
        "condition".into(),
        json!({"conditionType": "NEW", "conditionSubtype": "NEW"}),
    );
    if !order.status.is_pending() {
        product.insert(
            "price".into(),
            json!({"unitPrice": money(currency, item.unit_price)}),
        );
    }
    let mut out = Map::new();
    out.insert("orderItemId".into(), json!(item.order_item_id));
    out.insert("quantityOrdered".into(), json!(item.quantity_ordered));
    out.insert("product".into(), Value::Object(product));
    // Item proceeds exist for cancelled orders too (v0 returns item prices for them); only the
    // order-level total is withheld for Canceled.
    if included.proceeds && !order.status.is_pending() {
        let mut breakdowns = vec![breakdown("ITEM", currency, item.item_price())];
        if !item.shipping_price.is_zero() {
            breakdowns.push(breakdown("SHIPPING", currency, item.shipping_price));
        }
        if !item.promotion_discount.is_zero() {
            breakdowns.push(breakdown("DISCOUNT", currency, -item.promotion_discount));
        }
        breakdowns.push(json!({
            "type": "TAX",
            "subtotal": money(currency, item.item_tax + item.shipping_tax),
            "detailedBreakdowns": [
                {"subtype": "ITEM", "value": money(currency, item.item_tax)},
                {"subtype": "SHIPPING", "value": money(currency, item.shipping_tax)},
            ],
        }));
        out.insert(
            "proceeds".into(),
            json!({"proceedsTotal": money(currency, item.line_total()), "breakdowns": breakdowns}),
        );
    }
    if included.fulfillment {
        out.insert(
            "fulfillment".into(),
            json!({
                "quantityFulfilled": item.quantity_shipped,
                "quantityUnfulfilled": item.quantity_unshipped(),
            }),
        );
    }
    Value::Object(out)
}

pub fn v2026_order(order: &SimOrder, included: Included) -> Value {
    let currency = &order.currency;
    let mut out = Map::new();
    out.insert("orderId".into(), json!(order.order_id));
    out.insert(
        "createdTime".into(),
        json!(time_string(order.purchase_date)),
    );
    out.insert(
        "lastUpdatedTime".into(),
        json!(time_string(order.last_update_date)),
    );
    out.insert("programs".into(), json!([]));
    out.insert(
        "salesChannel".into(),
        json!({
            "channelName": "AMAZON",
            "marketplaceId": order.marketplace_id,
            "marketplaceName": sales_channel_name(&order.marketplace_id),
        }),
    );
    if included.buyer {
        let mut buyer = Map::new();
        if let Some(email) = &order.buyer_email {
            buyer.insert("buyerEmail".into(), json!(email));
        }
        if let Some(name) = &order.buyer_name {
            buyer.insert("buyerName".into(), json!(name));
        }
        out.insert("buyer".into(), Value::Object(buyer));
    }
    if included.recipient {
        out.insert(
            "recipient".into(),
            json!({"deliveryAddress": {
                "name": order.buyer_name.as_deref().unwrap_or("Dominique Petit"),
                "addressLine1": "12 rue de Rivoli",
                "city": "Paris",
                "stateOrRegion": "Île-de-France",
                "postalCode": "75001",
                "countryCode": country_code(&order.marketplace_id),
                "addressType": "RESIDENTIAL",
            }}),
        );
    }
    if included.proceeds && order.status.has_order_total() {
        let sum = |f: fn(&SimItem) -> Decimal| -> Decimal { order.items.iter().map(f).sum() };
        let item_total = sum(SimItem::item_price);
        let shipping_total = sum(|i| i.shipping_price);
        let tax_total = sum(|i| i.item_tax + i.shipping_tax);
        let discount_total = sum(|i| i.promotion_discount);
        let mut breakdowns = vec![breakdown("ITEM", currency, item_total)];
        if !shipping_total.is_zero() {
            breakdowns.push(breakdown("SHIPPING", currency, shipping_total));
        }
        breakdowns.push(breakdown("TAX", currency, tax_total));
        if !discount_total.is_zero() {
            breakdowns.push(breakdown("DISCOUNT", currency, -discount_total));
        }
        out.insert(
            "proceeds".into(),
            json!({"grandTotal": money(currency, order.total()), "breakdowns": breakdowns}),
        );
    }
    if included.fulfillment {
        out.insert(
            "fulfillment".into(),
            json!({
                "fulfillmentStatus": order.status.v2026_name(),
                "fulfilledBy": if order.fulfilled_by_amazon { "AMAZON" } else { "MERCHANT" },
                "fulfillmentServiceLevel": "STANDARD",
            }),
        );
    }
    let items: Vec<Value> = order
        .items
        .iter()
        .map(|item| v2026_item(order, item, included))
        .collect();
    out.insert("orderItems".into(), Value::Array(items));
    apply_overrides(&mut out, order);
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SimStatus;
    use chrono::DateTime;

    fn order(status: SimStatus) -> SimOrder {
        let item =
            |id: &str, qty: u32, unit: i64, tax: i64, ship: i64, ship_tax: i64, promo: i64| {
                SimItem {
                    order_item_id: id.into(),
                    asin: "B000000001".into(),
                    seller_sku: "SKU-1".into(),
                    title: "Thing".into(),
                    quantity_ordered: qty,
                    quantity_shipped: 0,
                    unit_price: Decimal::new(unit, 2),
                    item_tax: Decimal::new(tax, 2),
                    shipping_price: Decimal::new(ship, 2),
                    shipping_tax: Decimal::new(ship_tax, 2),
                    promotion_discount: Decimal::new(promo, 2),
                }
            };
        SimOrder {
            order_id: "402-1234567-7654321".into(),
            marketplace_id: "A13V1IB3VIYZZH".into(),
            purchase_date: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            last_update_date: DateTime::from_timestamp(1_800_000_600, 0).unwrap(),
            status,
            fulfilled_by_amazon: false,
            currency: "EUR".into(),
            buyer_email: Some("x@marketplace.amazon.fr".into()),
            buyer_name: Some("Camille Martin".into()),
            // 2 × 10.00 + 4.00 tax + 4.99 shipping + 1.00 shipping tax − 2.00 = 27.99; + 5.50 + 1.10 = 6.60
            items: vec![
                item("1", 2, 1000, 400, 499, 100, 200),
                item("2", 1, 550, 110, 0, 0, 0),
            ],
            overrides: serde_json::Map::new(),
            indexed_at: None,
            previous: None,
        }
    }

    const ALL: Included = Included {
        buyer: true,
        recipient: true,
        proceeds: true,
        fulfillment: true,
    };

    #[test]
    fn shipped_order_renders_the_same_money_in_both_versions() {
        let order = order(SimStatus::Shipped);
        let v0 = v0_order(&order);
        assert_eq!(
            v0["OrderTotal"],
            json!({"CurrencyCode": "EUR", "Amount": "34.59"})
        );
        assert_eq!(v0["PurchaseDate"], "2027-01-15T08:00:00Z");
        assert_eq!(v0["FulfillmentChannel"], "MFN");
        let item = v0_order_item(&order, &order.items[0]);
        assert_eq!(item["ItemPrice"]["Amount"], "20.00");
        assert_eq!(item["PromotionDiscount"]["Amount"], "2.00");
        assert_eq!(item["PromotionDiscountTax"]["Amount"], "0.00");

        let v26 = v2026_order(&order, ALL);
        assert_eq!(
            v26["proceeds"]["grandTotal"],
            json!({"amount": "34.59", "currencyCode": "EUR"})
        );
        let types: Vec<&str> = v26["proceeds"]["breakdowns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["ITEM", "SHIPPING", "TAX", "DISCOUNT"]);
        assert_eq!(
            v26["proceeds"]["breakdowns"][3]["subtotal"]["amount"],
            "-2.00"
        );
        assert_eq!(
            v26["proceeds"]["breakdowns"][2]["subtotal"]["amount"],
            "6.10"
        );
        let first = &v26["orderItems"][0];
        assert_eq!(first["proceeds"]["proceedsTotal"]["amount"], "27.99");
        assert_eq!(first["product"]["price"]["unitPrice"]["amount"], "10.00");
        assert_eq!(
            first["fulfillment"],
            json!({"quantityFulfilled": 0, "quantityUnfulfilled": 2})
        );
        let second_types: Vec<&str> = v26["orderItems"][1]["proceeds"]["breakdowns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap())
            .collect();
        assert_eq!(second_types, ["ITEM", "TAX"]);
        assert_eq!(v26["fulfillment"]["fulfillmentStatus"], "SHIPPED");
        assert_eq!(v26["fulfillment"]["fulfilledBy"], "MERCHANT");
        assert_eq!(v26["buyer"]["buyerEmail"], "x@marketplace.amazon.fr");
    }

    #[test]
    fn pending_and_cancelled_omit_what_amazon_omits() {
        let pending = order(SimStatus::Pending);
        assert!(v0_order(&pending).get("OrderTotal").is_none());
        assert!(
            v0_order_item(&pending, &pending.items[0])
                .get("ItemPrice")
                .is_none()
        );
        let v26 = v2026_order(&pending, ALL);
        assert!(v26.get("proceeds").is_none());
        assert!(v26["orderItems"][0].get("proceeds").is_none());
        assert!(v26["orderItems"][0]["product"].get("price").is_none());

        let cancelled = order(SimStatus::Canceled);
        assert!(v0_order(&cancelled).get("OrderTotal").is_none());
        assert!(
            v0_order_item(&cancelled, &cancelled.items[0])
                .get("ItemPrice")
                .is_some()
        );
        let v26 = v2026_order(&cancelled, ALL);
        assert!(v26.get("proceeds").is_none());
        assert!(v26["orderItems"][0].get("proceeds").is_some());
        assert_eq!(v26["fulfillment"]["fulfillmentStatus"], "CANCELLED");

        let bare = v2026_order(&order(SimStatus::Shipped), Included::default());
        for absent in ["proceeds", "fulfillment", "buyer", "recipient"] {
            assert!(bare.get(absent).is_none(), "{absent}");
        }
        assert!(bare["orderItems"][0]["product"]["price"].is_object());
    }
}
