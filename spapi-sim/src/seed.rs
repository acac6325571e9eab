//! Deterministic test data: a tiny splitmix64 PRNG (so the crate needs no `rand`) and the order
//! generator behind `SimHandle::seed_orders`. Same seed, same `now`, same orders, on every machine.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

use crate::model::{SimItem, SimOrder, SimStatus};

/// Marketplace of every seeded order (France), so a test only has to pass one MarketplaceIds value.
pub const SEED_MARKETPLACE: &str = "A13V1IB3VIYZZH";
pub const SEED_CURRENCY: &str = "EUR";

/// splitmix64: tiny, fast, and good enough for fixtures and opaque token bytes.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..bound` (bound > 0); the modulo bias is irrelevant for fixtures.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }

    fn digits(&mut self, count: usize) -> String {
        (0..count)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

/// FNV-1a: a stable (across runs and builds) hash, used for seeds derived from names and for the
/// filter fingerprints inside pagination tokens.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

const TITLES: [&str; 8] = [
    "Clavier mécanique sans fil",
    "Souris ergonomique verticale",
    "Câble USB-C 2 m tressé",
    "Support d'écran réglable",
    "Casque audio Bluetooth",
    "Tapis de souris XXL",
    "Hub USB 7 ports",
    "Webcam Full HD 1080p",
];
const BUYER_NAMES: [&str; 6] = [
    "Camille Martin",
    "Lucas Bernard",
    "Chloé Dubois",
    "Hugo Thomas",
    "Léa Robert",
    "Louis Richard",
];

/// Generates `count` orders for one seller. Statuses never include InvoiceUnconfirmed (v2026 has no
/// such value, so both renderings could not agree on it). Quantities shipped are consistent with the
/// status, and about one order in twelve has more than five items to exercise getOrderItems paging.
pub fn generate_orders(
    count: usize,
    seed: u64,
    now: DateTime<Utc>,
    spread: Duration,
) -> Vec<SimOrder> {
    let mut rng = SplitMix64::new(seed);
    let now_secs = now.timestamp();
    let spread_secs = spread.num_seconds().max(0) as u64;
    let vat_rate = Decimal::new(20, 2);
    (0..count)
        .map(|_| {
            let order_id = format!("40{}-{}-{}", rng.digits(1), rng.digits(7), rng.digits(7));
            let purchase_secs = now_secs - rng.below(spread_secs + 1) as i64;
            let age = (now_secs - purchase_secs) as u64;
            let update_secs = purchase_secs + rng.below(age.min(3 * 86_400) + 1) as i64;
            let fulfilled_by_amazon = rng.below(3) == 0;
            let status = match rng.below(100) {
                0..=2 => SimStatus::PendingAvailability,
                3..=14 => SimStatus::Pending,
                15..=34 => SimStatus::Unshipped,
                35..=41 => SimStatus::PartiallyShipped,
                42..=89 => SimStatus::Shipped,
                90..=97 => SimStatus::Canceled,
                _ if fulfilled_by_amazon => SimStatus::Unfulfillable,
                _ => SimStatus::Canceled,
            };
            let item_count = if rng.below(12) == 0 {
                6 + rng.below(4) as usize
            } else {
                1 + rng.below(3) as usize
            };
            let mut items: Vec<SimItem> = (0..item_count)
                .map(|_| {
                    let quantity_ordered = 1 + rng.below(3) as u32;
                    let unit_price = Decimal::new(499 + rng.below(14_500) as i64, 2);
                    let item_tax =
                        (unit_price * Decimal::from(quantity_ordered) * vat_rate).round_dp(2);
                    let shipping_price = if rng.below(3) == 0 {
                        Decimal::new(499, 2)
                    } else {
                        Decimal::ZERO
                    };
                    let shipping_tax = (shipping_price * vat_rate).round_dp(2);
                    let promotion_discount = if rng.below(6) == 0 {
                        Decimal::new(200, 2)
                    } else {
                        Decimal::ZERO
                    };
                    let title_index = rng.below(TITLES.len() as u64) as usize;
                    SimItem {
                        order_item_id: rng.digits(14),
                        asin: format!("B0{}", rng.digits(8)),
                        seller_sku: format!("SKU-{:03}", title_index * 7 + 1),
                        title: TITLES[title_index].to_string(),
                        quantity_ordered,
                        quantity_shipped: 0,
                        unit_price,
                        item_tax,
                        shipping_price,
                        shipping_tax,
                        promotion_discount,
                    }
                })
                .collect();
            match status {
                SimStatus::Shipped => {
                    for item in &mut items {
                        item.quantity_shipped = item.quantity_ordered;
                    }
                }
                SimStatus::PartiallyShipped => {
                    // At least one unit shipped and at least one not, whatever the shape of the order.
                    if items.len() == 1 && items[0].quantity_ordered == 1 {
                        items[0].quantity_ordered = 2;
                        items[0].item_tax = (items[0].item_price() * vat_rate).round_dp(2);
                    }
                    if items.len() == 1 {
                        items[0].quantity_shipped = 1;
                    } else {
                        items[0].quantity_shipped = items[0].quantity_ordered;
                    }
                }
                _ => {}
            }
            let has_buyer = !status.is_pending() && rng.below(10) != 0;
            let buyer_name = BUYER_NAMES[rng.below(BUYER_NAMES.len() as u64) as usize];
            let mailbox = rng.digits(12);
            SimOrder {
                order_id,
                marketplace_id: SEED_MARKETPLACE.to_string(),
                purchase_date: DateTime::from_timestamp(purchase_secs, 0).unwrap_or(now),
                last_update_date: DateTime::from_timestamp(update_secs, 0).unwrap_or(now),
                status,
                fulfilled_by_amazon,
                currency: SEED_CURRENCY.to_string(),
                buyer_email: has_buyer.then(|| format!("{mailbox}@marketplace.amazon.fr")),
                buyer_name: has_buyer.then(|| buyer_name.to_string()),
                items,
                overrides: serde_json::Map::new(),
                indexed_at: None,
                previous: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_consistent() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let a = generate_orders(200, 7, now, Duration::days(20));
        let b = generate_orders(200, 7, now, Duration::days(20));
        assert_eq!(a, b);
        for order in &a {
            assert_ne!(order.status, SimStatus::InvoiceUnconfirmed);
            assert!(order.purchase_date <= order.last_update_date);
            assert!(order.last_update_date <= now);
            match order.status {
                SimStatus::Shipped => assert_eq!(order.items_unshipped(), 0),
                SimStatus::PartiallyShipped => {
                    assert!(order.items_shipped() > 0 && order.items_unshipped() > 0)
                }
                _ => assert_eq!(order.items_shipped(), 0),
            }
        }
        assert!(a.iter().any(|o| o.items.len() > 5));
    }
}
