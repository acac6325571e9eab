//! [`OrdersSource`] over Orders API v2026-01-01: `searchOrders` with items inline, `getOrder`
//! for a single order's items.
//!
//! Mapping to the normalized rows (the README has the full table):
//! - status from `fulfillment.fulfillmentStatus`; channel from `fulfilledBy` (AMAZON = AFN,
//!   MERCHANT = MFN); order total from `proceeds.grandTotal`;
//! - per item: price = the `ITEM` proceeds breakdown, else unit price times quantity; tax = the
//!   `ITEM` detail of the `TAX` breakdown (its subtotal also holds shipping tax); shipping and
//!   discount from the `SHIPPING` and `DISCOUNT` breakdowns, absent meaning 0 as v0 serves "0.00";
//!   the discount (its `ITEM` detail when itemised) is stored positive, as v0's
//!   `PromotionDiscount`. Without item proceeds (pending orders) tax, shipping and discount stay
//!   NULL, as v0 serves none then either; the price is unit price times quantity if Amazon sent
//!   a unit price, else NULL.

use rust_decimal::Decimal;
use serde_json::Value;

use super::OrdersSource;
use super::read::{check_unique_items, decode, split_readable, without_nul};
use crate::error::{Error, Result};
use crate::model::{
    BucketState, FetchedOrder, ItemRecord, OrderRecord, OrderStatus, OrdersApi, OrdersPage,
    SyncWindow, amazon_time,
};
use crate::spapi::v2026 as wire;
use crate::spapi::{Operation, SpApiClient, Usage};

pub struct V2026Source {
    client: SpApiClient,
    marketplace_ids: Vec<String>,
    page_size: u32,
    included_data: String,
}

impl V2026Source {
    pub fn new(
        client: SpApiClient,
        marketplace_ids: Vec<String>,
        page_size: u32,
        include_pii: bool,
    ) -> Self {
        V2026Source {
            client,
            marketplace_ids,
            page_size,
            included_data: included_data(include_pii).to_owned(),
        }
    }
}

/// Status needs FULFILLMENT and totals need PROCEEDS; buyer and recipient only on opt-in.
pub fn included_data(include_pii: bool) -> &'static str {
    if include_pii {
        "FULFILLMENT,PROCEEDS,BUYER,RECIPIENT"
    } else {
        "FULFILLMENT,PROCEEDS"
    }
}

/// Maps one v2026 `Order` JSON object, with its items.
pub fn order_with_items(op: Operation, raw: Value) -> Result<(OrderRecord, Vec<ItemRecord>)> {
    let id_hint = raw
        .get("orderId")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    let order: wire::Order = decode(op, &format!("order {id_hint}"), &raw)?;
    let bad = |detail: String| Error::BadResponse {
        operation: op.name(),
        detail,
    };
    let fulfillment = order.fulfillment.as_ref().ok_or_else(|| {
        bad(format!(
            "order {}: no fulfillment.fulfillmentStatus (includedData=FULFILLMENT not honoured?)",
            order.order_id
        ))
    })?;
    let status = OrderStatus::from_v2026(&fulfillment.fulfillment_status).ok_or_else(|| {
        bad(format!(
            "order {}: unknown fulfillmentStatus {:?}",
            order.order_id, fulfillment.fulfillment_status
        ))
    })?;
    let fulfillment_channel = fulfillment.fulfilled_by.as_deref().map(|by| match by {
        "AMAZON" => "AFN".to_owned(),
        "MERCHANT" => "MFN".to_owned(),
        other => other.to_owned(),
    });
    let total = order.proceeds.as_ref().and_then(|p| p.grand_total.clone());
    let items = raw
        .get("orderItems")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .zip(order.order_items)
        .map(|(raw_item, item)| item_record(op, &order.order_id, raw_item, item))
        .collect::<Result<Vec<_>>>()?;
    check_unique_items(op, &order.order_id, &items)?;
    let record = OrderRecord {
        external_order_id: order.order_id,
        marketplace_id: order.sales_channel.and_then(|s| s.marketplace_id),
        status,
        purchase_date: order.created_time,
        last_update_date: order.last_updated_time,
        fulfillment_channel,
        order_total_amount: total.as_ref().map(|m| m.amount),
        order_total_currency: total.map(|m| m.currency_code),
        raw,
    };
    Ok((record, items))
}

/// The `subtype` detail of a breakdown, when Amazon itemised it.
fn detail(b: &wire::ItemBreakdown, subtype: &str) -> Option<Decimal> {
    b.detailed_breakdowns
        .iter()
        .filter(|d| d.subtype.as_deref() == Some(subtype))
        .filter_map(|d| d.value.as_ref().map(|v| v.amount))
        .reduce(|a, b| a.saturating_add(b))
}

fn item_record(
    op: Operation,
    order_id: &str,
    raw: Value,
    item: wire::OrderItem,
) -> Result<ItemRecord> {
    let overflow = || Error::BadResponse {
        operation: op.name(),
        detail: format!(
            "order {order_id} item {}: amount out of range",
            item.order_item_id
        ),
    };
    let breakdown = |kind: &str| {
        item.proceeds
            .as_ref()
            .and_then(|p| p.breakdowns.iter().find(|b| b.kind == kind))
    };
    let unit_price = item
        .product
        .price
        .as_ref()
        .and_then(|p| p.unit_price.clone());
    let unit_times_quantity = match &unit_price {
        Some(u) => Some(
            u.amount
                .checked_mul(Decimal::from(item.quantity_ordered))
                .ok_or_else(overflow)?,
        ),
        None => None,
    };
    let (price, tax, shipping, discount) = match &item.proceeds {
        Some(_) => {
            let price = breakdown("ITEM")
                .map(|b| b.subtotal.amount)
                .or(unit_times_quantity);
            // The TAX subtotal holds shipping (and gift wrap) tax too; only its ITEM detail is
            // the item's tax. Without details it is the item's tax only when nothing else was
            // charged that could have been taxed.
            let taxable_extras = ["SHIPPING", "GIFT_WRAP"]
                .iter()
                .any(|kind| breakdown(kind).is_some_and(|b| !b.subtotal.amount.is_zero()));
            let tax = match breakdown("TAX") {
                None => Some(Decimal::ZERO),
                Some(tax) if tax.detailed_breakdowns.is_empty() => {
                    (!taxable_extras).then_some(tax.subtotal.amount)
                }
                Some(tax) => Some(detail(tax, "ITEM").unwrap_or(Decimal::ZERO)),
            };
            let shipping = breakdown("SHIPPING").map_or(Decimal::ZERO, |b| b.subtotal.amount);
            // v0's PromotionDiscount excludes shipping discounts: take the ITEM detail when
            // Amazon itemised the discount. Stored positive, as v0 serves it.
            let discount = breakdown("DISCOUNT").map_or(Decimal::ZERO, |b| {
                if b.detailed_breakdowns.is_empty() {
                    b.subtotal.amount.abs()
                } else {
                    detail(b, "ITEM").unwrap_or(Decimal::ZERO).abs()
                }
            });
            (price, tax, Some(shipping), Some(discount))
        }
        None => (unit_times_quantity, None, None, None),
    };
    let currency = item
        .proceeds
        .as_ref()
        .and_then(|p| {
            p.proceeds_total
                .as_ref()
                .map(|m| m.currency_code.clone())
                .or_else(|| {
                    p.breakdowns
                        .first()
                        .map(|b| b.subtotal.currency_code.clone())
                })
        })
        .or_else(|| unit_price.map(|u| u.currency_code));
    Ok(ItemRecord {
        order_item_id: item.order_item_id,
        asin: item.product.asin,
        seller_sku: item.product.seller_sku,
        title: item.product.title,
        quantity_ordered: item.quantity_ordered,
        quantity_shipped: item.fulfillment.and_then(|f| f.quantity_fulfilled),
        item_price_amount: price,
        item_tax_amount: tax,
        shipping_price_amount: shipping,
        promotion_discount_amount: discount,
        currency,
        raw,
    })
}

impl OrdersSource for V2026Source {
    fn api(&self) -> OrdersApi {
        OrdersApi::V2026
    }

    fn orders_operation(&self) -> Operation {
        Operation::SearchOrders
    }

    fn items_operation(&self) -> Operation {
        Operation::GetOrder
    }

    fn items_inline(&self) -> bool {
        true
    }

    fn page_token_ttl(&self) -> chrono::Duration {
        // Amazon: "The token will expire after 24 hours"; keep an hour of margin.
        chrono::Duration::hours(23)
    }

    fn restore_buckets(&self, saved: &[BucketState]) {
        self.client.restore_buckets(saved);
    }

    fn bucket_states(&self) -> Vec<BucketState> {
        self.client.bucket_states()
    }

    fn usage(&self) -> Usage {
        self.client.usage()
    }

    async fn orders_page(
        &self,
        window: &SyncWindow,
        page_token: Option<&str>,
    ) -> Result<OrdersPage> {
        let op = Operation::SearchOrders;
        let mut query = vec![
            ("marketplaceIds", self.marketplace_ids.join(",")),
            ("lastUpdatedAfter", amazon_time(window.after)),
            ("lastUpdatedBefore", amazon_time(window.before)),
            ("maxResultsPerPage", self.page_size.to_string()),
            ("includedData", self.included_data.clone()),
        ];
        if let Some(token) = page_token {
            query.push(("paginationToken", token.to_owned()));
        }
        let body = self
            .client
            .get_json(op, wire::SEARCH_ORDERS_PATH, &query)
            .await?;
        let list: wire::SearchOrdersResponse = decode(op, "response", &body)?;
        let (orders, rejected) = split_readable(list.orders, "orderId", |raw| {
            order_with_items(op, raw).map(|(order, items)| FetchedOrder {
                order,
                items: Some(items),
            })
        });
        Ok(OrdersPage {
            orders,
            rejected,
            next_page_token: list
                .pagination
                .and_then(|p| p.next_token)
                .filter(|t| !t.is_empty()),
        })
    }

    async fn order_items(&self, order_id: &str) -> Result<Vec<ItemRecord>> {
        let op = Operation::GetOrder;
        let query = [("includedData", self.included_data.clone())];
        let body = self
            .client
            .get_json(op, &wire::get_order_path(order_id), &query)
            .await?;
        let response: wire::GetOrderResponse = decode(op, &format!("order {order_id}"), &body)?;
        let (order, items) = order_with_items(op, without_nul(response.order))?;
        if order.external_order_id != order_id {
            return Err(Error::BadResponse {
                operation: op.name(),
                detail: format!(
                    "asked for order {order_id}, got {}",
                    order.external_order_id
                ),
            });
        }
        Ok(items)
    }
}
