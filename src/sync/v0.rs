//! [`OrdersSource`] over Orders API v0: `getOrders` for the window, `getOrderItems` per order.
//!
//! Maps v0 shapes to the normalized records: status to the v2026 vocabulary, amounts as exact
//! decimals. Items never come inline on this path, so pages carry `items: None` and the engine
//! asks [`V0Source::order_items`] for the orders that need them.

use serde_json::Value;

use super::OrdersSource;
use super::read::{check_unique_items, decode, split_readable, without_nul};
use crate::error::{Error, Result};
use crate::model::{
    BucketState, FetchedOrder, ItemRecord, OrderRecord, OrderStatus, OrdersApi, OrdersPage,
    SyncWindow, amazon_time,
};
use crate::spapi::v0 as wire;
use crate::spapi::{Operation, SpApiClient, Usage};

pub struct V0Source {
    client: SpApiClient,
    marketplace_ids: Vec<String>,
    page_size: u32,
}

impl V0Source {
    pub fn new(client: SpApiClient, marketplace_ids: Vec<String>, page_size: u32) -> Self {
        V0Source {
            client,
            marketplace_ids,
            page_size,
        }
    }
}

/// Maps one v0 `Order` JSON object.
pub fn order_record(raw: Value) -> Result<OrderRecord> {
    let op = Operation::GetOrdersV0;
    let id_hint = raw
        .get("AmazonOrderId")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    let order: wire::Order = decode(op, &format!("order {id_hint}"), &raw)?;
    let status = OrderStatus::from_v0(&order.order_status).ok_or_else(|| Error::BadResponse {
        operation: op.name(),
        detail: format!(
            "order {}: unknown OrderStatus {:?}",
            order.amazon_order_id, order.order_status
        ),
    })?;
    let (amount, currency) = match order.order_total {
        Some(m) => (m.amount, m.currency_code),
        None => (None, None),
    };
    Ok(OrderRecord {
        external_order_id: order.amazon_order_id,
        marketplace_id: order.marketplace_id,
        status,
        purchase_date: order.purchase_date,
        last_update_date: order.last_update_date,
        fulfillment_channel: order.fulfillment_channel,
        order_total_amount: amount,
        order_total_currency: currency,
        raw,
    })
}

/// Maps one v0 `OrderItem` JSON object.
pub fn item_record(order_id: &str, raw: Value) -> Result<ItemRecord> {
    let item: wire::OrderItem = decode(
        Operation::GetOrderItemsV0,
        &format!("order {order_id} item"),
        &raw,
    )?;
    let amount = |m: &Option<wire::Money>| m.as_ref().and_then(|m| m.amount);
    let currency = [
        &item.item_price,
        &item.item_tax,
        &item.shipping_price,
        &item.promotion_discount,
    ]
    .into_iter()
    .find_map(|m| m.as_ref().and_then(|m| m.currency_code.clone()));
    Ok(ItemRecord {
        item_price_amount: amount(&item.item_price),
        item_tax_amount: amount(&item.item_tax),
        shipping_price_amount: amount(&item.shipping_price),
        promotion_discount_amount: amount(&item.promotion_discount),
        currency,
        order_item_id: item.order_item_id,
        asin: Some(item.asin),
        seller_sku: item.seller_sku,
        title: item.title,
        quantity_ordered: item.quantity_ordered,
        quantity_shipped: item.quantity_shipped,
        raw,
    })
}

impl OrdersSource for V0Source {
    fn api(&self) -> OrdersApi {
        OrdersApi::V0
    }

    fn orders_operation(&self) -> Operation {
        Operation::GetOrdersV0
    }

    fn items_operation(&self) -> Operation {
        Operation::GetOrderItemsV0
    }

    fn items_inline(&self) -> bool {
        false
    }

    fn page_token_ttl(&self) -> chrono::Duration {
        // Amazon documents no lifetime for v0 NextTokens; an hour is a guess on the safe side.
        chrono::Duration::hours(1)
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
        let op = Operation::GetOrdersV0;
        // The same filters on every page, plus NextToken (Amazon's current model: the token only
        // paginates, it does not replace the filters).
        let mut query = vec![
            ("MarketplaceIds", self.marketplace_ids.join(",")),
            ("LastUpdatedAfter", amazon_time(window.after)),
            ("LastUpdatedBefore", amazon_time(window.before)),
            ("MaxResultsPerPage", self.page_size.to_string()),
        ];
        if let Some(token) = page_token {
            query.push(("NextToken", token.to_owned()));
        }
        let body = self
            .client
            .get_json(op, wire::GET_ORDERS_PATH, &query)
            .await?;
        let list: wire::GetOrdersResponse = decode(op, "response", &body)?;
        let (orders, rejected) = split_readable(list.payload.orders, "AmazonOrderId", |raw| {
            order_record(raw).map(|order| FetchedOrder { order, items: None })
        });
        Ok(OrdersPage {
            orders,
            rejected,
            next_page_token: list.payload.next_token.filter(|t| !t.is_empty()),
        })
    }

    async fn order_items(&self, order_id: &str) -> Result<Vec<ItemRecord>> {
        let op = Operation::GetOrderItemsV0;
        let path = wire::get_order_items_path(order_id);
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        // As for a window's pages (engine.rs): a NextToken that comes back again would page
        // forever through the same items.
        let mut seen = std::collections::HashSet::new();
        let mut pages = 0u32;
        loop {
            let query: Vec<(&str, String)> =
                token.iter().map(|t| ("NextToken", t.clone())).collect();
            let body = self.client.get_json(op, &path, &query).await?;
            let list: wire::GetOrderItemsResponse =
                decode(op, &format!("order {order_id} items"), &body)?;
            if list.payload.amazon_order_id != order_id {
                return Err(Error::BadResponse {
                    operation: op.name(),
                    detail: format!(
                        "asked for the items of order {order_id}, got those of {}",
                        list.payload.amazon_order_id
                    ),
                });
            }
            for raw in list.payload.order_items {
                items.push(item_record(order_id, without_nul(raw))?);
            }
            pages += 1;
            match list.payload.next_token.filter(|t| !t.is_empty()) {
                Some(next) if !seen.insert(next.clone()) => {
                    return Err(Error::EndlessPages {
                        operation: op.name(),
                        detail: format!(
                            "page {pages} of the items of order {order_id} returned a page token already used"
                        ),
                    });
                }
                Some(next) => token = Some(next),
                None => {
                    check_unique_items(op, order_id, &items)?;
                    return Ok(items);
                }
            }
        }
    }
}
