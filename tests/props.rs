//! Property-based tests (proptest): the public mapping functions fed generated Amazon JSON, the
//! window and cursor arithmetic, and every response parser fed arbitrary JSON.
//!
//! What each property promises:
//! - amounts and dates: a generated value rendered the way Amazon renders it comes back exactly
//!   (the same `Decimal`, digit for digit, never through `f64`; the same instant); anything else
//!   is a clear error, never a panic and never a silently different number;
//! - windows: never inverted, a sub-window starts where its window starts and is never longer
//!   than its span, a narrower span never goes below `min_span`, and a completed sub-window
//!   always moves the next window's start forward (so the engine's window loop terminates);
//! - parsers: arbitrary JSON (and arbitrary bytes for error bodies) never panics.

use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use keybuzz_sync::model::window::{min_span, narrower_span, wider_span};
use keybuzz_sync::model::{SyncWindow, WindowRules};
use keybuzz_sync::spapi::{Operation, error_from_body};
use keybuzz_sync::sync::{v0, v2026};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// Any `Decimal`: a 96-bit mantissa, either sign, scale 0 to 28.
fn decimal() -> impl Strategy<Value = Decimal> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
        0u32..=28,
    )
        .prop_map(|(lo, mid, hi, negative, scale)| {
            Decimal::from_parts(lo, mid, hi, negative, scale)
        })
}

/// Amounts as Amazon sends them (two decimals, plausible sizes), and the odd extreme.
fn amount() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        3 => (-1_000_000_000i64..1_000_000_000).prop_map(|cents| Decimal::new(cents, 2)),
        1 => decimal(),
    ]
}

/// An instant between 1970 and 2100, whole seconds or with a fraction.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (
        0i64..4_102_444_800,
        prop_oneof![Just(0u32), 0u32..1_000_000_000],
    )
        .prop_map(|(secs, nanos)| Utc.timestamp_opt(secs, nanos).unwrap())
}

/// An instant rendered as RFC 3339 in one of the forms Amazon (or a proxy) may use: `Z`, a
/// numeric offset, with or without a fraction (`at` then has none: see [`whole`]).
fn rendered(at: DateTime<Utc>, offset_minutes: i32, fraction: bool) -> String {
    let offset = chrono::FixedOffset::east_opt(offset_minutes * 60).unwrap();
    let local = at.with_timezone(&offset);
    let format = match (offset_minutes == 0, fraction) {
        (true, false) => "%Y-%m-%dT%H:%M:%SZ",
        (true, true) => "%Y-%m-%dT%H:%M:%S%.fZ",
        (false, false) => "%Y-%m-%dT%H:%M:%S%:z",
        (false, true) => "%Y-%m-%dT%H:%M:%S%.f%:z",
    };
    local.format(format).to_string()
}

/// `at` as a rendering without a fraction carries it.
fn whole(at: DateTime<Utc>, fraction: bool) -> DateTime<Utc> {
    if fraction { at } else { at.trunc_subsecs(0) }
}

fn v0_order(id: &str, purchase: &str, update: &str, total: Value) -> Value {
    json!({
        "AmazonOrderId": id,
        "PurchaseDate": purchase,
        "LastUpdateDate": update,
        "OrderStatus": "Shipped",
        "FulfillmentChannel": "MFN",
        "MarketplaceId": "A13V1IB3VIYZZH",
        "OrderTotal": total,
    })
}

fn v2026_money(amount: &str) -> Value {
    json!({"amount": amount, "currencyCode": "EUR"})
}

/// A v2026 order with one item whose proceeds carry `price`, `tax` and `shipping`, and whose
/// unit price is `unit` for `quantity` units.
fn v2026_order(total: &str, unit: &str, quantity: i32, breakdowns: Value) -> Value {
    json!({
        "orderId": "402-0000000-0000001",
        "createdTime": "2026-11-01T10:00:00Z",
        "lastUpdatedTime": "2026-11-02T10:00:00Z",
        "salesChannel": {"marketplaceId": "A13V1IB3VIYZZH"},
        "fulfillment": {"fulfillmentStatus": "SHIPPED", "fulfilledBy": "MERCHANT"},
        "proceeds": {"grandTotal": v2026_money(total)},
        "orderItems": [{
            "orderItemId": "10000000000001",
            "quantityOrdered": quantity,
            "product": {"asin": "B000000001", "price": {"unitPrice": v2026_money(unit)}},
            "proceeds": {"breakdowns": breakdowns},
        }],
    })
}

/// Exactly equal: the same number and the same scale (what Postgres `numeric` keeps).
fn same(a: Decimal, b: Decimal) -> bool {
    a == b && a.scale() == b.scale()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// v0 `Money` and dates: what Amazon renders comes back exactly.
    #[test]
    fn v0_amounts_and_dates_come_back_exactly(
        total in amount(),
        price in amount(),
        purchase in instant(),
        update in instant(),
        offset in prop_oneof![Just(0i32), -720i32..=840],
        fraction in any::<bool>(),
    ) {
        let raw = v0_order(
            "902-1234567-7654321",
            &rendered(purchase, offset, fraction),
            &rendered(update, 0, fraction),
            json!({"CurrencyCode": "EUR", "Amount": total.to_string()}),
        );
        let order = v0::order_record(raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(same(order.order_total_amount.unwrap(), total), "{:?} != {total}", order.order_total_amount);
        prop_assert_eq!(order.purchase_date, whole(purchase, fraction));
        prop_assert_eq!(order.last_update_date, whole(update, fraction));

        let item = json!({
            "ASIN": "B000000001", "OrderItemId": "10000000000001", "QuantityOrdered": 1,
            "ItemPrice": {"CurrencyCode": "EUR", "Amount": price.to_string()},
            "ItemTax": {"CurrencyCode": "EUR", "Amount": total.to_string()},
        });
        let item = v0::item_record("902-1234567-7654321", item)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(same(item.item_price_amount.unwrap(), price));
        prop_assert!(same(item.item_tax_amount.unwrap(), total));
        prop_assert_eq!(item.currency.as_deref(), Some("EUR"));
    }

    /// Any string as a v0 amount or date: an exact value or a named error, never a panic, and
    /// never a number the string does not say.
    #[test]
    fn v0_arbitrary_amount_and_date_strings_are_exact_or_named_errors(
        amount in prop_oneof![
            "[-+]?[0-9]{0,40}(\\.[0-9]{0,40})?",
            "[0-9eE.,+\\- _]{0,20}",
            any::<String>(),
        ],
        date in prop_oneof!["[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})", any::<String>()],
    ) {
        let raw = v0_order(
            "902-1234567-7654321",
            "2026-01-01T00:00:00Z",
            &date,
            json!({"CurrencyCode": "EUR", "Amount": amount}),
        );
        match v0::order_record(raw) {
            Ok(order) => {
                let parsed = order.order_total_amount.unwrap();
                // Whatever was accepted is the number the text says: compare through the
                // canonical text of both (digits only, no exponent, no float).
                if let Some(exact) = plain_decimal(&amount) {
                    prop_assert_eq!(canonical(&parsed.to_string()), exact, "{:?} read as {}", amount, parsed);
                }
                if let Ok(said) = DateTime::parse_from_rfc3339(&date) {
                    prop_assert_eq!(order.last_update_date, said.with_timezone(&Utc));
                }
            }
            Err(e) => {
                let e = e.to_string();
                prop_assert!(e.contains("getOrders") && e.contains("902-1234567-7654321"), "{e}");
            }
        }
    }

    /// v2026 `Money`: order total, item price (the ITEM breakdown), tax, shipping, discount and
    /// unit price times quantity come back exactly; a unit price times quantity too large for a
    /// `Decimal` is a named error (the order is quarantined), never a panic or a wrapped number.
    /// The product is checked even when an ITEM breakdown gives the price.
    #[test]
    fn v2026_amounts_come_back_exactly_or_overflow_is_named(
        total in amount(),
        price in amount(),
        tax in amount(),
        shipping in amount(),
        discount in amount(),
        unit in decimal(),
        quantity in prop_oneof![1i32..1000, any::<i32>()],
        itemised in any::<bool>(),
    ) {
        let mut breakdowns = vec![
            json!({"type": "TAX", "subtotal": v2026_money(&tax.to_string()),
                   "detailedBreakdowns": [{"subtype": "ITEM", "value": v2026_money(&tax.to_string())}]}),
            json!({"type": "SHIPPING", "subtotal": v2026_money(&shipping.to_string())}),
            json!({"type": "DISCOUNT", "subtotal": v2026_money(&(-discount.abs()).to_string())}),
        ];
        if itemised {
            breakdowns.push(json!({"type": "ITEM", "subtotal": v2026_money(&price.to_string())}));
        }
        let raw = v2026_order(&total.to_string(), &unit.to_string(), quantity, Value::Array(breakdowns));
        let product = unit.checked_mul(Decimal::from(quantity));
        let expected_price = if itemised { Some(price) } else { product };
        match v2026::order_with_items(Operation::SearchOrders, raw) {
            Ok((order, items)) => {
                prop_assert!(same(order.order_total_amount.unwrap(), total));
                let item = &items[0];
                let got = item.item_price_amount.unwrap();
                let want = expected_price.unwrap();
                prop_assert!(got == want, "price {} != {}", got, want);
                if itemised {
                    prop_assert!(same(got, price));
                }
                prop_assert!(same(item.item_tax_amount.unwrap(), tax));
                prop_assert!(same(item.shipping_price_amount.unwrap(), shipping));
                prop_assert_eq!(item.promotion_discount_amount.unwrap(), discount.abs());
            }
            Err(e) => {
                // The only refusal of well-formed money: unit price x quantity overflows.
                prop_assert!(product.is_none(), "unexpected error: {}", e);
                prop_assert!(e.to_string().contains("out of range"), "{}", e);
            }
        }
    }

    /// v2026 dates in any RFC 3339 form come back as the same instant.
    #[test]
    fn v2026_dates_come_back_exactly(
        created in instant(),
        updated in instant(),
        offset in prop_oneof![Just(0i32), -720i32..=840],
        fraction in any::<bool>(),
    ) {
        let mut raw = v2026_order("1.00", "1.00", 1, json!([]));
        raw["createdTime"] = json!(rendered(created, offset, fraction));
        raw["lastUpdatedTime"] = json!(rendered(updated, -offset, fraction));
        let (order, _) = v2026::order_with_items(Operation::SearchOrders, raw)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(order.purchase_date, whole(created, fraction));
        prop_assert_eq!(order.last_update_date, whole(updated, fraction));
    }

    /// Arbitrary JSON never panics any parser: the order and item mappings of both versions,
    /// the response envelopes, and Amazon's error bodies (arbitrary bytes too).
    #[test]
    fn parsers_never_panic_on_arbitrary_json(value in json_value(), bytes in proptest::collection::vec(any::<u8>(), 0..300), status in 100u16..600) {
        let _ = v0::order_record(value.clone());
        let _ = v0::item_record("902-1234567-7654321", value.clone());
        let _ = v2026::order_with_items(Operation::SearchOrders, value.clone());
        let _ = v2026::order_with_items(Operation::GetOrder, value.clone());
        let _ = serde_json::from_value::<keybuzz_sync::spapi::v0::GetOrdersResponse>(value.clone());
        let _ = serde_json::from_value::<keybuzz_sync::spapi::v0::GetOrderItemsResponse>(value.clone());
        let _ = serde_json::from_value::<keybuzz_sync::spapi::v2026::SearchOrdersResponse>(value.clone());
        let _ = serde_json::from_value::<keybuzz_sync::spapi::v2026::GetOrderResponse>(value.clone());
        for op in Operation::ALL {
            let _ = error_from_body(op, status, value.to_string().as_bytes());
            let _ = error_from_body(op, status, &bytes);
        }
    }

    /// Shapes close to real orders, with any value in any field, reach deep into the mappings.
    #[test]
    fn near_miss_orders_never_panic(order in near_miss_v2026(), v0_order in near_miss_v0()) {
        let _ = v2026::order_with_items(Operation::SearchOrders, order);
        let _ = v0::order_record(v0_order.clone());
        let _ = v0::item_record("902-1234567-7654321", v0_order);
    }

    /// `plan` and `plan_within`: never inverted, the sub-window starts at the window's start, is
    /// never longer than its span, and ends where the whole window ends when the span covers it.
    #[test]
    fn windows_are_never_inverted_and_sub_windows_start_at_the_window_start(
        rules in rules(),
        now in instant(),
        cursor in proptest::option::of(instant()),
        span_secs in proptest::option::of(prop_oneof![1i64..10_000, 1i64..(400 * 86_400)]),
    ) {
        let span = span_secs.map(Duration::seconds);
        let whole = SyncWindow::plan(cursor, now, &rules);
        let sub = SyncWindow::plan_within(cursor, now, &rules, span);
        prop_assert_eq!(whole.is_some(), sub.is_some());
        if let (Some(whole), Some(sub)) = (whole, sub) {
            prop_assert!(whole.after < whole.before);
            prop_assert!(sub.after < sub.before, "inverted {:?}", sub);
            prop_assert_eq!(sub.after, whole.after);
            prop_assert!(sub.before <= whole.before);
            prop_assert_eq!(whole.before, (now - rules.upper_lag).trunc_subsecs(0));
            prop_assert_eq!(sub.after, sub.after.trunc_subsecs(0), "whole seconds, as Amazon is asked");
            prop_assert_eq!(sub.before, sub.before.trunc_subsecs(0));
            match span {
                Some(span) => {
                    prop_assert!(sub.length() <= span);
                    prop_assert!(sub.length() == span || sub.before == whole.before);
                }
                None => prop_assert_eq!(sub, whole),
            }
        }
    }

    /// Narrowing: never below `min_span`, strictly narrower whenever the engine narrows (it
    /// gives up on windows of `min_span` or less), and widening doubles up to the lookback.
    #[test]
    fn spans_narrow_to_min_span_and_widen_to_the_lookback(
        rules in rules(),
        after in instant(),
        length_secs in prop_oneof![1i64..10_000, 1i64..200_000, 1i64..(400 * 86_400)],
    ) {
        let window = SyncWindow { after, before: after + Duration::seconds(length_secs) };
        let narrower = narrower_span(&window, &rules);
        prop_assert!(narrower >= min_span(&rules));
        prop_assert!(min_span(&rules) > rules.overlap);
        if window.length() > min_span(&rules) {
            prop_assert!(narrower < window.length(), "{} is not narrower than {}", narrower, window.length());
        }
        match wider_span(narrower, &rules) {
            Some(wider) => {
                prop_assert_eq!(wider, narrower * 2);
                prop_assert!(wider <= rules.initial_lookback);
            }
            None => prop_assert!(narrower * 2 > rules.initial_lookback),
        }
    }

    /// The engine's loop, step by step: a sub-window that completes moves the cursor to its end,
    /// and the next sub-window (at the same span, narrower or wider) starts later than it did,
    /// and its window end never moves back.
    #[test]
    fn a_completed_sub_window_moves_the_next_start_forward(
        rules in rules(),
        now in instant(),
        cursor in proptest::option::of(instant()),
        halvings in 0u32..40,
        widen in any::<bool>(),
    ) {
        // A span the engine can hold: the whole lookback halved a few times, never below
        // min_span (narrower_span's floor).
        let mut span = rules.initial_lookback.max(min_span(&rules));
        for _ in 0..halvings {
            let w = SyncWindow { after: now, before: now + span };
            span = narrower_span(&w, &rules);
        }
        let Some(sub) = SyncWindow::plan_within(cursor, now, &rules, Some(span)) else {
            return Ok(());
        };
        let whole = SyncWindow::plan(cursor, now, &rules).unwrap();
        if sub.before == whole.before {
            // The last sub-window: the engine stops after it.
            return Ok(());
        }
        let moved = Some(cursor.map_or(sub.before, |c| c.max(sub.before)));
        let next_span = if widen { wider_span(span, &rules) } else { Some(span) };
        if let Some(next) = SyncWindow::plan_within(moved, now, &rules, next_span) {
            prop_assert!(next.after > sub.after, "{:?} then {:?} (span {})", sub, next, span);
            prop_assert!(next.before >= sub.before);
        }
    }
}

/// `[+-]digits[.digits]` as a canonical string (no sign for zero, no leading or trailing
/// zeros), or `None` for anything else, or for what a `Decimal` cannot hold exactly (more than
/// 28 digits).
fn plain_decimal(text: &str) -> Option<String> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    if int.len() + frac.len() > 28 {
        return None;
    }
    Some(canonical(&format!(
        "{}{}.{}",
        if negative { "-" } else { "" },
        int,
        frac
    )))
}

fn canonical(text: &str) -> String {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let body = match (int.is_empty(), frac.is_empty()) {
        (true, true) => return "0".to_owned(),
        (_, true) => int.to_owned(),
        (true, false) => format!("0.{frac}"),
        (false, false) => format!("{int}.{frac}"),
    };
    if negative { format!("-{body}") } else { body }
}

fn rules() -> impl Strategy<Value = WindowRules> {
    let overlap = prop_oneof![Just(10i64), Just(0), 0i64..=1440];
    let lookback = prop_oneof![Just(30i64), 1i64..=3650];
    let lag = prop_oneof![Just(135i64), 0i64..=600];
    (overlap, lookback, lag).prop_map(|(overlap, lookback, lag)| WindowRules {
        overlap: Duration::minutes(overlap),
        initial_lookback: Duration::days(lookback),
        upper_lag: Duration::seconds(lag),
    })
}

/// Any JSON value, keys drawn mostly from the names the parsers look for, so that the search
/// goes past the first missing field.
fn json_value() -> impl Strategy<Value = Value> {
    const KEYS: &[&str] = &[
        "payload",
        "Orders",
        "NextToken",
        "AmazonOrderId",
        "OrderItems",
        "orders",
        "pagination",
        "nextToken",
        "order",
        "orderId",
        "orderItems",
        "errors",
        "code",
        "message",
        "details",
        "Amount",
        "amount",
        "CurrencyCode",
        "currencyCode",
        "proceeds",
        "breakdowns",
        "type",
        "subtotal",
        "x",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(proptest::sample::select(KEYS), inner, 0..6).prop_map(
                |m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            ),
        ]
    })
}

/// Any leaf value, or a well-formed one: what near-miss orders put in each field.
fn field() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => json_value(),
        1 => amount().prop_map(|d| json!(d.to_string())),
        1 => any::<i32>().prop_map(|n| json!(n)),
        1 => Just(json!("2026-11-02T10:00:00Z")),
    ]
}

/// A v2026 order whose every field may be replaced by anything.
fn near_miss_v2026() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec((0usize..14, field()), 0..5),
        decimal(),
        any::<i32>(),
    )
        .prop_map(|(replacements, unit, quantity)| {
            let mut order = v2026_order(
                "10.00",
                &unit.to_string(),
                quantity,
                json!([
                    {"type": "ITEM", "subtotal": v2026_money("1.00")},
                    {"type": "TAX", "subtotal": v2026_money("0.20"),
                     "detailedBreakdowns": [{"subtype": "ITEM", "value": v2026_money("0.10")},
                                            {"subtype": "ITEM", "value": v2026_money("0.10")}]},
                    {"type": "DISCOUNT", "subtotal": v2026_money("-1.00"),
                     "detailedBreakdowns": [{"subtype": "ITEM"}]},
                ]),
            );
            const PATHS: [&str; 14] = [
                "/orderId",
                "/createdTime",
                "/lastUpdatedTime",
                "/fulfillment",
                "/fulfillment/fulfillmentStatus",
                "/proceeds/grandTotal",
                "/proceeds/grandTotal/amount",
                "/orderItems",
                "/orderItems/0/quantityOrdered",
                "/orderItems/0/product",
                "/orderItems/0/product/price/unitPrice/amount",
                "/orderItems/0/proceeds",
                "/orderItems/0/proceeds/breakdowns/0/subtotal/amount",
                "/orderItems/0/proceeds/breakdowns/1/detailedBreakdowns/0/value",
            ];
            for (path, value) in replacements {
                if let Some(slot) = order.pointer_mut(PATHS[path]) {
                    *slot = value;
                }
            }
            order
        })
}

/// A v0 order (and item, the same object read as one) whose fields may be replaced by anything.
fn near_miss_v0() -> impl Strategy<Value = Value> {
    proptest::collection::vec((0usize..9, field()), 0..5).prop_map(|replacements| {
        let mut order = v0_order(
            "902-1234567-7654321",
            "2026-01-01T00:00:00Z",
            "2026-01-02T00:00:00Z",
            json!({"CurrencyCode": "EUR", "Amount": "10.00"}),
        );
        order["ASIN"] = json!("B000000001");
        order["OrderItemId"] = json!("10000000000001");
        order["QuantityOrdered"] = json!(1);
        order["ItemPrice"] = json!({"CurrencyCode": "EUR", "Amount": "10.00"});
        const KEYS: [&str; 9] = [
            "AmazonOrderId",
            "PurchaseDate",
            "LastUpdateDate",
            "OrderStatus",
            "OrderTotal",
            "ASIN",
            "OrderItemId",
            "QuantityOrdered",
            "ItemPrice",
        ];
        for (key, value) in replacements {
            order[KEYS[key]] = value;
        }
        order
    })
}
