//! The engine's pure decisions, kept apart from I/O so they can be tested one by one.
//!
//! - [`plan_order`]: given an order from a page and the stored copy, whether to write it (and
//!   replace its items) or skip it.
//! - [`winning_copies`]: when one page lists an order more than once, which copy is written.
//! - [`catch_up_secs`]: how long a backlog takes at the rate a bucket allows.

use std::collections::HashMap;

use super::order::OrderRecord;
use super::run::StoredOrder;
use super::write::{ItemsUpdate, OrderWrite};

/// What to do with one order of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderPlan {
    /// The stored copy is newer (a late page, a lagging replica): it wins.
    SkipOlder,
    /// Stored exactly so, with up-to-date items: nothing to write.
    SkipUnchanged,
    /// Write the order and replace its items (the inline ones, or fetched for it): it is new,
    /// changed (status, LastUpdateDate, any field), or its stored items are stale.
    WriteWithItems,
}

/// Decides what a page does with `incoming`, given the stored copy if there is one.
pub fn plan_order(incoming: &OrderRecord, stored: Option<&StoredOrder>) -> OrderPlan {
    let Some(stored) = stored else {
        return OrderPlan::WriteWithItems;
    };
    if incoming.last_update_date < stored.last_update_date {
        return OrderPlan::SkipOlder;
    }
    let changed = incoming.last_update_date > stored.last_update_date
        || incoming.status != stored.status
        || incoming.raw != stored.raw;
    if changed || stored.items_stale {
        OrderPlan::WriteWithItems
    } else {
        OrderPlan::SkipUnchanged
    }
}

/// How good a copy's items are, for breaking ties between copies of the same update.
fn items_rank(w: &OrderWrite) -> u8 {
    match &w.items {
        ItemsUpdate::Replace(items) if !items.is_empty() => 2,
        ItemsUpdate::Keep => 1,
        _ => 0,
    }
}

/// One copy per order id, sorted by id (Postgres refuses to update a row twice in one
/// statement): the copy with the latest LastUpdateDate wins; on a tie, a copy with fetched items
/// is not given up for one whose items are pending; otherwise the later copy in the page wins.
pub fn winning_copies(writes: &[OrderWrite]) -> Vec<&OrderWrite> {
    let mut latest: HashMap<&str, &OrderWrite> = HashMap::new();
    for w in writes {
        let id = w.order.external_order_id.as_str();
        let keep_previous = latest.get(id).is_some_and(|kept| {
            (kept.order.last_update_date, items_rank(kept))
                > (w.order.last_update_date, items_rank(w))
        });
        if !keep_previous {
            latest.insert(id, w);
        }
    }
    let mut winners: Vec<&OrderWrite> = latest.into_values().collect();
    winners.sort_by(|a, b| a.order.external_order_id.cmp(&b.order.external_order_id));
    winners
}

/// Seconds until `requests` more requests are through a bucket that holds `tokens` now and
/// refills at `rate` per second (Amazon's token bucket: the tokens first, then one per 1/rate).
pub fn catch_up_secs(requests: f64, tokens: f64, rate: f64) -> Option<i64> {
    if !(requests.is_finite() && tokens.is_finite() && rate.is_finite() && rate > 0.0) {
        return None;
    }
    let waiting = (requests - tokens.max(0.0)).max(0.0);
    Some((waiting / rate).ceil() as i64)
}

/// Orders left in a window whose orders come sorted by last update, from how many came so far
/// and how far into the window they reached.
pub fn orders_left(fetched: u64, after: i64, reached: i64, before: i64) -> Option<i64> {
    if reached <= after || before < reached || fetched == 0 {
        return None;
    }
    let left = fetched as f64 * (before - reached) as f64 / (reached - after) as f64;
    Some(left.ceil() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ItemRecord, OrderStatus};
    use chrono::{DateTime, TimeZone, Utc};
    use serde_json::json;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, hour, 0, 0).unwrap()
    }

    fn order(id: &str, updated: DateTime<Utc>, status: OrderStatus) -> OrderRecord {
        OrderRecord {
            external_order_id: id.to_owned(),
            marketplace_id: None,
            status,
            purchase_date: at(1),
            last_update_date: updated,
            fulfillment_channel: None,
            order_total_amount: None,
            order_total_currency: None,
            raw: json!({"id": id, "status": status.as_str(), "at": updated.to_rfc3339()}),
        }
    }

    fn stored(o: &OrderRecord, items_stale: bool) -> StoredOrder {
        StoredOrder {
            last_update_date: o.last_update_date,
            status: o.status,
            raw: o.raw.clone(),
            items_stale,
        }
    }

    fn item(id: &str) -> ItemRecord {
        ItemRecord {
            order_item_id: id.to_owned(),
            asin: None,
            seller_sku: None,
            title: None,
            quantity_ordered: 1,
            quantity_shipped: None,
            item_price_amount: None,
            item_tax_amount: None,
            shipping_price_amount: None,
            promotion_discount_amount: None,
            currency: None,
            raw: json!({}),
        }
    }

    #[test]
    fn a_new_order_is_written_with_its_items() {
        let o = order("A", at(5), OrderStatus::Unshipped);
        assert_eq!(plan_order(&o, None), OrderPlan::WriteWithItems);
    }

    #[test]
    fn an_older_copy_never_replaces_the_stored_one() {
        let newer = order("A", at(6), OrderStatus::Shipped);
        let older = order("A", at(5), OrderStatus::Unshipped);
        assert_eq!(
            plan_order(&older, Some(&stored(&newer, true))),
            OrderPlan::SkipOlder,
            "even when the stored items are stale"
        );
    }

    #[test]
    fn an_identical_copy_is_skipped_unless_its_items_are_stale() {
        let o = order("A", at(5), OrderStatus::Unshipped);
        assert_eq!(
            plan_order(&o, Some(&stored(&o, false))),
            OrderPlan::SkipUnchanged
        );
        assert_eq!(
            plan_order(&o, Some(&stored(&o, true))),
            OrderPlan::WriteWithItems
        );
    }

    #[test]
    fn any_change_rewrites_the_order_and_its_items() {
        let o = order("A", at(5), OrderStatus::Pending);
        let s = stored(&o, false);
        // Leaving Pending: Amazon serves prices only now.
        let mut priced = o.clone();
        priced.status = OrderStatus::Unshipped;
        assert_eq!(plan_order(&priced, Some(&s)), OrderPlan::WriteWithItems);
        let newer = order("A", at(6), OrderStatus::Pending);
        assert_eq!(plan_order(&newer, Some(&s)), OrderPlan::WriteWithItems);
        // Same update, other content (a v0 row read again through v2026, say).
        let mut other = o.clone();
        other.raw = json!({"another": "shape"});
        assert_eq!(plan_order(&other, Some(&s)), OrderPlan::WriteWithItems);
    }

    #[test]
    fn the_latest_copy_of_an_order_wins_whatever_its_place_in_the_page() {
        let w = |hour, status| OrderWrite {
            order: order("A", at(hour), status),
            items: ItemsUpdate::Keep,
        };
        let page = [w(7, OrderStatus::Cancelled), w(6, OrderStatus::Unshipped)];
        let winners = winning_copies(&page);
        assert_eq!(winners.len(), 1);
        assert_eq!(winners[0].order.status, OrderStatus::Cancelled);
        let page = [w(6, OrderStatus::Unshipped), w(7, OrderStatus::Cancelled)];
        assert_eq!(
            winning_copies(&page)[0].order.status,
            OrderStatus::Cancelled
        );
    }

    #[test]
    fn on_a_tie_the_copy_with_fetched_items_is_kept() {
        let o = order("A", at(5), OrderStatus::Unshipped);
        let fetched = OrderWrite {
            order: o.clone(),
            items: ItemsUpdate::Replace(vec![item("1")]),
        };
        let pending = OrderWrite {
            order: o.clone(),
            items: ItemsUpdate::Pending("deferred".into()),
        };
        let empty = OrderWrite {
            order: o.clone(),
            items: ItemsUpdate::Replace(vec![]),
        };
        for page in [
            [fetched.clone(), pending.clone()],
            [pending.clone(), fetched.clone()],
        ] {
            let winners = winning_copies(&page);
            assert!(
                matches!(&winners[0].items, ItemsUpdate::Replace(i) if i.len() == 1),
                "{:?}",
                winners[0].items
            );
        }
        // An empty list is no better than a pending one: the later copy wins then.
        let page = [pending.clone(), empty.clone()];
        let winners = winning_copies(&page);
        assert!(matches!(&winners[0].items, ItemsUpdate::Replace(i) if i.is_empty()));
    }

    #[test]
    fn winners_are_one_per_order_sorted_by_id() {
        let w = |id| OrderWrite {
            order: order(id, at(5), OrderStatus::Shipped),
            items: ItemsUpdate::Keep,
        };
        let page = [w("C"), w("A"), w("B"), w("A")];
        let ids: Vec<_> = winning_copies(&page)
            .iter()
            .map(|w| w.order.external_order_id.as_str())
            .collect();
        assert_eq!(ids, ["A", "B", "C"]);
    }

    #[test]
    fn catching_up_spends_the_tokens_then_waits_at_the_rate() {
        // searchOrders: 20 tokens, then one per 178.6 s.
        assert_eq!(catch_up_secs(10.0, 20.0, 0.0056), Some(0));
        assert_eq!(catch_up_secs(30.0, 20.0, 0.0056), Some(1786));
        assert_eq!(catch_up_secs(5.0, -2.0, 0.5), Some(10));
        assert_eq!(catch_up_secs(5.0, 0.0, 0.0), None);
    }

    #[test]
    fn orders_left_scale_with_the_part_of_the_window_not_reached() {
        assert_eq!(orders_left(100, 0, 25, 100), Some(300));
        assert_eq!(orders_left(100, 0, 100, 100), Some(0));
        assert_eq!(orders_left(0, 0, 50, 100), None);
        assert_eq!(orders_left(10, 50, 50, 100), None);
    }
}
