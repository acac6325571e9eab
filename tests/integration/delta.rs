//! The engine over Orders API v0: import, updates, idempotence, items, lock, throttling,
//! failures and recovery.

use std::time::Duration as StdDuration;

use chrono::{Duration, SubsecRound, Utc};
use keybuzz_sync::Error;
use keybuzz_sync::config::SyncSettings;
use keybuzz_sync::model::OrdersApi;
use keybuzz_sync::model::SyncWindow;
use keybuzz_sync::model::{ItemsUpdate, OrderWrite, PageProgress};
use keybuzz_sync::store::PgStore;
use keybuzz_sync::sync::{run_pass, v0};
use rust_decimal::Decimal;
use spapi_sim::{Fault, FaultKind, SimOp, SimStatus};
use sqlx::PgPool;

use crate::util::*;

fn hours_ago(h: i64) -> chrono::DateTime<Utc> {
    (Utc::now() - Duration::hours(h)).trunc_subsecs(0)
}

#[sqlx::test]
async fn first_pass_imports_everything_and_a_repeat_changes_nothing(pool: PgPool) {
    let sim = sim().await;
    let seeded = sim.seed_orders(SELLER, 130, 7, hours_ago(1), Duration::days(20));
    let t = tenant(&sim, "t1", OrdersApi::V0);

    let report = expect_ok(delta(&sim, &pool, &t, Utc::now()).await);
    let expected_items: usize = seeded.iter().map(|o| o.items.len()).sum();
    assert_eq!(order_count(&pool, "t1").await, 130);
    assert_eq!(item_count(&pool, "t1").await, expected_items as i64);
    assert_eq!(report.counts.orders, 130);
    assert_eq!(report.items_pending, 0);
    assert_eq!(cursor(&pool, "t1").await, report.window.map(|w| w.before));
    // More than a page of 100, and orders with more items than one getOrderItems page.
    assert!(
        sim.requests()
            .iter()
            .filter(|r| r.op == SimOp::GetOrdersV0)
            .count()
            >= 2
    );
    assert!(
        seeded.iter().any(|o| o.items.len() > 5),
        "seed has multi-page item lists"
    );

    // The same orders again (an overlap covering everything): no row changes, not even
    // updated_at, and no item is rewritten.
    let before = snapshot(&pool, "t1").await;
    let wide = SyncSettings {
        overlap: Duration::days(40),
        ..settings()
    };
    let again = expect_ok(delta_with(&sim, &pool, &t, &wide, Utc::now()).await);
    assert_eq!(again.counts.orders, 0);
    assert_eq!(again.counts.items, 0);
    assert_eq!(snapshot(&pool, "t1").await, before);
}

#[sqlx::test]
async fn later_passes_pick_up_updates_new_and_late_orders(pool: PgPool) {
    let sim = sim().await;
    let now0 = Utc::now().trunc_subsecs(0);
    sim.seed_orders(
        SELLER,
        40,
        11,
        now0 - Duration::hours(1),
        Duration::days(10),
    );
    let t = tenant(&sim, "t1", OrdersApi::V0);
    let first = expect_ok(delta(&sim, &pool, &t, now0 - Duration::minutes(30)).await);
    let cursor1 = cursor(&pool, "t1").await.unwrap();
    assert_eq!(Some(cursor1), first.window.map(|w| w.before));

    // (a) an order that shipped after the cursor, losing one of its items on the way;
    let mut shipped = sim
        .orders(SELLER)
        .into_iter()
        .find(|o| o.items.len() >= 2 && o.status == SimStatus::Unshipped)
        .expect("seed has an unshipped order with 2+ items");
    shipped.status = SimStatus::Shipped;
    shipped.items.pop();
    for item in &mut shipped.items {
        item.quantity_shipped = item.quantity_ordered;
    }
    shipped.last_update_date = now0 - Duration::minutes(20);
    sim.upsert_order(SELLER, shipped.clone());
    // (b) a new order; (c) a late one, indexed after the first pass but dated before its end,
    // inside the overlap;
    let others: Vec<_> = sim
        .orders(SELLER)
        .into_iter()
        .filter(|o| o.order_id != shipped.order_id)
        .collect();
    let template = others[0].clone();
    let mut new = template.clone();
    new.order_id = "171-0000000-0000001".into();
    new.purchase_date = now0 - Duration::minutes(15);
    new.last_update_date = new.purchase_date;
    sim.upsert_order(SELLER, new.clone());
    let mut late = template.clone();
    late.order_id = "171-0000000-0000002".into();
    late.purchase_date = cursor1 - Duration::minutes(5);
    late.last_update_date = late.purchase_date;
    sim.upsert_order(SELLER, late.clone());
    // (d) an update newer than Amazon answers for yet (less than 2 minutes old).
    let mut too_new = others[1].clone();
    too_new.last_update_date = Utc::now().trunc_subsecs(0);
    too_new.status = SimStatus::Canceled;
    sim.upsert_order(SELLER, too_new.clone());

    let second = expect_ok(delta(&sim, &pool, &t, Utc::now()).await);
    assert_eq!(
        second.window.unwrap().after,
        cursor1 - Duration::minutes(10)
    );
    assert_eq!(order_count(&pool, "t1").await, 42);

    let status: String =
        sqlx::query_scalar("SELECT status FROM orders WHERE external_order_id = $1")
            .bind(&shipped.order_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "SHIPPED");
    let items: Vec<(i32, Option<i32>)> = sqlx::query_as(
        "SELECT quantity_ordered, quantity_shipped FROM order_items WHERE external_order_id = $1 ORDER BY order_item_id",
    )
    .bind(&shipped.order_id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        items.len(),
        shipped.items.len(),
        "items replaced, not added to"
    );
    assert!(
        items
            .iter()
            .all(|(ordered, shipped)| Some(*ordered) == *shipped)
    );

    for id in [&new.order_id, &late.order_id] {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM order_items WHERE external_order_id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(n, template.items.len() as i64, "order {id} has its items");
    }
    let stored_status: String =
        sqlx::query_scalar("SELECT status FROM orders WHERE external_order_id = $1")
            .bind(&too_new.order_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_ne!(
        stored_status, "CANCELLED",
        "not visible to a window ending 2 minutes ago"
    );
    assert!(cursor(&pool, "t1").await.unwrap() < too_new.last_update_date);
}

#[sqlx::test]
async fn an_older_copy_never_overwrites_a_newer_order(pool: PgPool) {
    let store = PgStore::from_pool(pool.clone());
    let tenant = keybuzz_sync::model::TenantId::parse("t1").unwrap();
    let order = |lud: &str, status: &str| {
        v0::order_record(serde_json::json!({
            "AmazonOrderId": "902-0000000-0000001", "PurchaseDate": "2026-11-01T10:00:00Z",
            "LastUpdateDate": lud, "OrderStatus": status,
            "OrderTotal": {"CurrencyCode": "EUR", "Amount": "19.99"}
        }))
        .unwrap()
    };
    let window = SyncWindow {
        after: Utc::now() - Duration::days(1),
        before: Utc::now(),
    };
    let write = |o| OrderWrite {
        order: o,
        items: ItemsUpdate::Keep,
    };
    let done = PageProgress::WindowDone { window };
    let n = store
        .write_page(
            &tenant,
            OrdersApi::V0,
            &[],
            &[write(order("2026-11-02T10:00:00Z", "Shipped"))],
            &[],
            &done,
            None,
        )
        .await
        .unwrap();
    assert_eq!(n.orders, 1);
    let n = store
        .write_page(
            &tenant,
            OrdersApi::V0,
            &[],
            &[write(order("2026-11-01T12:00:00Z", "Unshipped"))],
            &[],
            &done,
            None,
        )
        .await
        .unwrap();
    assert_eq!(n.orders, 0);
    let (status, total): (String, Decimal) =
        sqlx::query_as("SELECT status, order_total_amount FROM orders WHERE tenant_id = 't1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "SHIPPED");
    assert_eq!(total, Decimal::new(1999, 2), "money is exact");

    // One page listing the same order twice: the later copy wins, whatever the order.
    let n = store
        .write_page(
            &tenant,
            OrdersApi::V0,
            &[],
            &[
                write(order("2026-11-03T10:00:00Z", "Canceled")),
                write(order("2026-11-02T12:00:00Z", "Unshipped")),
            ],
            &[],
            &done,
            None,
        )
        .await
        .unwrap();
    assert_eq!(n.orders, 1);
    let status: String = sqlx::query_scalar("SELECT status FROM orders WHERE tenant_id = 't1'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "CANCELLED");
}

#[sqlx::test]
async fn a_second_pass_for_a_locked_tenant_touches_nothing(pool: PgPool) {
    let sim = sim().await;
    sim.seed_orders(SELLER, 5, 1, hours_ago(1), Duration::days(1));
    let t = tenant(&sim, "t1", OrdersApi::V0);
    let store = PgStore::from_pool(pool.clone());
    let lock = store.try_lock_tenant(&t.id).await.unwrap();

    let err = expect_err(delta(&sim, &pool, &t, Utc::now()).await);
    assert!(matches!(err, Error::AlreadyRunning(_)), "{err}");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM sync_runs WHERE tenant_id = $1",
            "t1"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM marketplace_sync_state WHERE tenant_id = $1",
            "t1"
        )
        .await,
        0
    );
    assert_eq!(
        sim.stats().lwa_requests,
        0,
        "not even a token was asked for"
    );

    lock.release().await.unwrap();
    expect_ok(delta(&sim, &pool, &t, Utc::now()).await);
    assert_eq!(order_count(&pool, "t1").await, 5);
}

#[sqlx::test]
async fn paced_requests_stay_within_amazons_buckets_across_processes(pool: PgPool) {
    let sim = sim().await;
    // Amazon's real burst, at a rate fast enough for a test.
    sim.set_bucket(SimOp::GetOrderItemsV0, 40.0, 30);
    let now0 = Utc::now().trunc_subsecs(0);
    sim.seed_orders(SELLER, 45, 3, now0 - Duration::hours(1), Duration::days(5));
    let t = tenant(&sim, "t1", OrdersApi::V0);
    let started = std::time::Instant::now();
    let first = expect_ok(delta(&sim, &pool, &t, now0 - Duration::minutes(30)).await);
    assert_eq!(
        first.throttled, 0,
        "burst, then paced at the header's rate: no 429"
    );
    // 45 item calls: 30 from the burst, 15 paced at 40/s, so never faster than 375 ms.
    assert!(
        started.elapsed() >= StdDuration::from_millis(375),
        "{:?}",
        started.elapsed()
    );

    // A new process right away: Amazon's bucket is still nearly empty. Restored from the
    // database, ours is too, so again no 429.
    let template = sim.orders(SELLER)[0].clone();
    for i in 0..35 {
        let mut o = template.clone();
        o.order_id = format!("171-1000000-{i:07}");
        o.last_update_date = now0 - Duration::minutes(20);
        sim.upsert_order(SELLER, o);
    }
    let second = expect_ok(delta(&sim, &pool, &t, Utc::now()).await);
    assert_eq!(second.throttled, 0);
    assert_eq!(sim.stats().throttled.values().sum::<u64>(), 0);
    assert_eq!(item_count(&pool, "t1").await, {
        let n: usize = sim.orders(SELLER).iter().map(|o| o.items.len()).sum();
        n as i64
    });
}

#[sqlx::test]
async fn throttled_requests_are_retried_and_counted(pool: PgPool) {
    let sim = sim().await;
    // Amazon gives this seller a smaller burst than documented: 429s are certain.
    sim.set_bucket(SimOp::GetOrderItemsV0, 200.0, 2);
    sim.seed_orders(SELLER, 30, 5, hours_ago(1), Duration::days(5));
    let t = tenant(&sim, "t1", OrdersApi::V0);
    let report = expect_ok(delta(&sim, &pool, &t, Utc::now()).await);
    let sim_throttled = sim
        .stats()
        .throttled
        .get(&SimOp::GetOrderItemsV0)
        .copied()
        .unwrap_or(0);
    assert!(sim_throttled > 0);
    assert_eq!(report.throttled, sim_throttled);
    assert_eq!(
        report.items_pending, 0,
        "every order got its items in the end"
    );
    let logged: i32 = sqlx::query_scalar("SELECT throttled FROM sync_runs WHERE tenant_id = 't1'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(logged as u64, sim_throttled);
}

#[sqlx::test]
async fn failed_answers_fail_the_run_keep_the_cursor_and_the_next_pass_recovers(pool: PgPool) {
    let sim = sim().await;
    let now0 = Utc::now().trunc_subsecs(0);
    sim.seed_orders(SELLER, 20, 9, now0 - Duration::hours(2), Duration::days(5));
    // 150 orders changed after the first pass: two pages of getOrders for the second.
    let template = sim.orders(SELLER)[0].clone();
    let later: Vec<_> = (0..150)
        .map(|i| {
            let mut o = template.clone();
            o.order_id = format!("171-4000000-{i:07}");
            o.last_update_date = now0 - Duration::minutes(20);
            o
        })
        .collect();
    let kinds = [
        ("t-503", FaultKind::Status(503), "503"),
        ("t-html", FaultKind::HtmlStatus(502), "502"),
        ("t-trunc", FaultKind::TruncatedBody, "not complete JSON"),
    ];
    for (id, kind, expected) in kinds {
        for o in &later {
            sim.upsert_order(SELLER, SimOrderExt::older(o, now0));
        }
        let t = tenant(&sim, id, OrdersApi::V0);
        expect_ok(delta(&sim, &pool, &t, now0 - Duration::minutes(30)).await);
        let cursor1 = cursor(&pool, id).await.unwrap();
        assert_eq!(order_count(&pool, id).await, 20);
        for o in &later {
            sim.upsert_order(SELLER, o.clone());
        }

        // Page 1 of the second pass is served and committed; page 2 keeps failing.
        sim.push_fault(Fault {
            op: Some(SimOp::GetOrdersV0),
            kind,
            times: 100,
            skip: 1,
        });
        let err = expect_err(delta(&sim, &pool, &t, Utc::now()).await);
        assert!(err.to_string().contains(expected), "{id}: {err}");
        assert_eq!(
            order_count(&pool, id).await,
            20 + 100,
            "{id}: page 1 was kept"
        );
        assert_eq!(
            cursor(&pool, id).await,
            Some(cursor1),
            "{id}: cursor unchanged"
        );
        let last = last_error(&pool, id).await.expect("lastError set");
        assert!(last.contains(expected), "{last}");
        let outcome: String = sqlx::query_scalar(
            "SELECT outcome FROM sync_runs WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(outcome, "failed");

        sim.clear_faults();
        let before = sim.requests().len();
        expect_ok(delta(&sim, &pool, &t, Utc::now()).await);
        let resumed = sim.requests()[before..]
            .iter()
            .find(|r| r.op == SimOp::GetOrdersV0)
            .unwrap()
            .raw_query
            .clone();
        assert!(
            resumed.contains("NextToken="),
            "{id}: resumed at page 2: {resumed}"
        );
        assert_eq!(order_count(&pool, id).await, 170, "{id}: nothing lost");
        assert!(
            cursor(&pool, id).await.unwrap() > cursor1,
            "{id}: cursor moves again"
        );
        assert_eq!(last_error(&pool, id).await, None, "{id}: lastError cleared");
    }
}

/// The 150 "later" orders as they looked before their update: outside every first pass.
struct SimOrderExt;
impl SimOrderExt {
    fn older(o: &spapi_sim::SimOrder, now0: chrono::DateTime<Utc>) -> spapi_sim::SimOrder {
        let mut old = o.clone();
        old.purchase_date = now0 - Duration::days(60);
        old.last_update_date = now0 - Duration::days(60);
        old
    }
}

#[sqlx::test]
async fn transient_faults_and_hangs_are_retried_within_the_pass(pool: PgPool) {
    let sim = sim().await;
    sim.seed_orders(SELLER, 10, 4, hours_ago(1), Duration::days(2));
    let t = tenant(&sim, "t1", OrdersApi::V0);
    for (op, kind) in [
        (SimOp::GetOrdersV0, FaultKind::Status(500)),
        (SimOp::GetOrdersV0, FaultKind::Hang),
        (SimOp::GetOrderItemsV0, FaultKind::TruncatedBody),
    ] {
        sim.push_fault(Fault {
            op: Some(op),
            kind,
            times: 1,
            skip: 0,
        });
    }
    let s = SyncSettings {
        request_timeout: StdDuration::from_millis(500),
        ..settings()
    };
    let report = expect_ok(delta_with(&sim, &pool, &t, &s, Utc::now()).await);
    assert_eq!(order_count(&pool, "t1").await, 10);
    assert_eq!(
        report.items_pending, 0,
        "the truncated items answer was retried"
    );
    let requests = sim.requests();
    assert_eq!(
        report.api_calls,
        requests.len() as u64,
        "every attempt is counted"
    );
    let orders: Vec<u16> = requests
        .iter()
        .filter(|r| r.op == SimOp::GetOrdersV0)
        .map(|r| r.status)
        .collect();
    assert_eq!(
        orders,
        vec![500, 0, 200],
        "500, then a hang (never answered), then success"
    );
}

#[sqlx::test]
async fn an_order_served_without_items_stays_marked(pool: PgPool) {
    let sim = sim().await;
    sim.seed_orders(SELLER, 3, 4, hours_ago(2), Duration::days(2));
    let mut empty = sim.orders(SELLER)[0].clone();
    empty.order_id = "171-5000000-0000001".into();
    empty.items.clear();
    empty.last_update_date = hours_ago(1);
    sim.upsert_order(SELLER, empty.clone());
    let t = tenant(&sim, "t1", OrdersApi::V0);
    let report = expect_ok(delta(&sim, &pool, &t, Utc::now()).await);
    assert_eq!(report.items_pending, 1);
    let error: Option<String> = sqlx::query_scalar(
        "SELECT items_error FROM orders WHERE external_order_id = $1 AND items_stale",
    )
    .bind(&empty.order_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(error.unwrap().contains("no items"));
}

#[sqlx::test]
async fn an_expired_access_token_is_refreshed_once(pool: PgPool) {
    let sim = sim().await;
    sim.seed_orders(SELLER, 3, 2, hours_ago(1), Duration::days(1));
    let t = tenant(&sim, "t1", OrdersApi::V0);
    let s = settings();
    let store = PgStore::from_pool(pool.clone());
    let src = source(&sim, &t, &s);
    expect_ok(
        run_pass(
            &store,
            &src,
            keybuzz_sync::model::PassKind::Delta,
            Utc::now() - Duration::minutes(5),
        )
        .await,
    );
    assert_eq!(sim.stats().lwa_requests, 1, "one token for the whole pass");
    sim.expire_access_tokens();
    expect_ok(
        run_pass(
            &store,
            &src,
            keybuzz_sync::model::PassKind::Delta,
            Utc::now(),
        )
        .await,
    );
    assert_eq!(sim.stats().lwa_requests, 2, "refreshed after Amazon's 403");
}

#[sqlx::test]
async fn a_revoked_grant_asks_for_reauthorization(pool: PgPool) {
    let sim = sim().await;
    sim.seed_orders(SELLER, 3, 2, hours_ago(1), Duration::days(1));
    let t = tenant(&sim, "t1", OrdersApi::V0);
    sim.revoke(&refresh_token("t1"));
    let err = expect_err(delta(&sim, &pool, &t, Utc::now()).await);
    assert!(
        matches!(err, Error::ReauthorizationRequired { .. }),
        "{err}"
    );
    let last = last_error(&pool, "t1").await.unwrap();
    assert!(last.contains("re-authorize"), "{last}");
    assert!(!last.contains("SECRET"));
    assert_eq!(cursor(&pool, "t1").await, None);
}

#[sqlx::test]
async fn item_budget_leaves_orders_marked_and_the_items_pass_finishes_them(pool: PgPool) {
    let sim = sim().await;
    sim.seed_orders(SELLER, 12, 8, hours_ago(1), Duration::days(2));
    let t = tenant(&sim, "t1", OrdersApi::V0);
    let s = SyncSettings {
        items_budget: 5,
        ..settings()
    };
    let report = expect_ok(delta_with(&sim, &pool, &t, &s, Utc::now()).await);
    assert_eq!(
        order_count(&pool, "t1").await,
        12,
        "orders are stored even without items"
    );
    assert_eq!(report.items_pending, 7);
    let errors = count(
        &pool,
        "SELECT count(*) FROM orders WHERE tenant_id = $1 AND items_error LIKE 'deferred%'",
        "t1",
    )
    .await;
    assert_eq!(errors, 7);

    let store = PgStore::from_pool(pool.clone());
    let items = run_pass(
        &store,
        &source(&sim, &t, &s),
        keybuzz_sync::model::PassKind::Items { limit: 100 },
        Utc::now(),
    )
    .await;
    assert_eq!(expect_ok(items).items_pending, 0);
    let expected: usize = sim.orders(SELLER).iter().map(|o| o.items.len()).sum();
    assert_eq!(item_count(&pool, "t1").await, expected as i64);
}

#[sqlx::test]
async fn pending_orders_get_their_prices_when_they_leave_pending(pool: PgPool) {
    let sim = sim().await;
    let now0 = Utc::now().trunc_subsecs(0);
    sim.seed_orders(SELLER, 5, 21, now0 - Duration::hours(2), Duration::days(1));
    let mut pending = sim.orders(SELLER)[0].clone();
    pending.order_id = "171-2000000-0000001".into();
    pending.status = SimStatus::Pending;
    pending.last_update_date = now0 - Duration::hours(1);
    sim.upsert_order(SELLER, pending.clone());
    let t = tenant(&sim, "t1", OrdersApi::V0);
    expect_ok(delta(&sim, &pool, &t, now0 - Duration::minutes(30)).await);
    let price = |pool: PgPool| async move {
        sqlx::query_scalar::<_, Option<Decimal>>(
            "SELECT item_price_amount FROM order_items WHERE external_order_id = '171-2000000-0000001' LIMIT 1",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    assert_eq!(
        price(pool.clone()).await,
        None,
        "Amazon serves no price while pending"
    );

    pending.status = SimStatus::Unshipped;
    pending.last_update_date = now0 - Duration::minutes(20);
    sim.upsert_order(SELLER, pending.clone());
    expect_ok(delta(&sim, &pool, &t, Utc::now()).await);
    let expected = pending.items[0].unit_price * Decimal::from(pending.items[0].quantity_ordered);
    let mut got = price(pool.clone())
        .await
        .expect("priced after leaving Pending");
    got.rescale(expected.scale());
    assert_eq!(got, expected);
}

#[sqlx::test]
async fn a_backfill_reads_old_history_without_moving_the_cursor_past_a_gap(pool: PgPool) {
    let sim = sim().await;
    let now0 = Utc::now().trunc_subsecs(0);
    sim.seed_orders(SELLER, 10, 6, now0 - Duration::hours(1), Duration::days(5));
    let mut ancient = sim.orders(SELLER)[0].clone();
    ancient.order_id = "171-3000000-0000001".into();
    ancient.purchase_date = now0 - Duration::days(40);
    ancient.last_update_date = ancient.purchase_date;
    sim.upsert_order(SELLER, ancient.clone());
    let t = tenant(&sim, "t1", OrdersApi::V0);
    expect_ok(delta(&sim, &pool, &t, now0 - Duration::minutes(30)).await);
    assert_eq!(
        order_count(&pool, "t1").await,
        10,
        "40 days is beyond the 30-day lookback"
    );
    let cursor1 = cursor(&pool, "t1").await.unwrap();

    let s = settings();
    let store = PgStore::from_pool(pool.clone());
    let old = SyncWindow {
        after: now0 - Duration::days(45),
        before: now0 - Duration::days(35),
    };
    let report = run_pass(
        &store,
        &source(&sim, &t, &s),
        keybuzz_sync::model::PassKind::Backfill { window: old },
        Utc::now(),
    )
    .await;
    expect_ok(report);
    assert_eq!(order_count(&pool, "t1").await, 11);
    assert_eq!(
        cursor(&pool, "t1").await,
        Some(cursor1),
        "an old range leaves the cursor"
    );

    // A range that starts after the cursor would leave a gap behind it: the cursor stays.
    let ahead = SyncWindow {
        after: cursor1 + Duration::minutes(5),
        before: now0 - Duration::minutes(10),
    };
    expect_ok(
        run_pass(
            &store,
            &source(&sim, &t, &s),
            keybuzz_sync::model::PassKind::Backfill { window: ahead },
            Utc::now(),
        )
        .await,
    );
    assert_eq!(cursor(&pool, "t1").await, Some(cursor1));
}

#[sqlx::test]
async fn an_unreadable_order_is_quarantined_without_stalling_the_tenant(pool: PgPool) {
    let sim = sim().await;
    let now0 = Utc::now().trunc_subsecs(0);
    sim.seed_orders(SELLER, 8, 12, now0 - Duration::hours(2), Duration::days(2));
    let mut odd = sim.orders(SELLER)[0].clone();
    odd.order_id = "171-6000000-0000001".into();
    odd.last_update_date = now0 - Duration::hours(1);
    odd.overrides.insert("OrderStatus".into(), "OnHold".into());
    odd.overrides.insert(
        "fulfillment".into(),
        serde_json::json!({"fulfillmentStatus": "ON_HOLD"}),
    );
    sim.upsert_order(SELLER, odd.clone());

    for (id, api, expected) in [
        ("t-v0", OrdersApi::V0, "OnHold"),
        ("t-v2026", OrdersApi::V2026, "ON_HOLD"),
    ] {
        let t = tenant(&sim, id, api);
        let report = expect_ok(delta(&sim, &pool, &t, now0 - Duration::minutes(30)).await);
        assert_eq!(report.counts.quarantined, 1, "{id}");
        assert_eq!(
            order_count(&pool, id).await,
            8,
            "{id}: the others are synced"
        );
        assert!(
            cursor(&pool, id).await.is_some(),
            "{id}: the cursor moves on"
        );
        let (error, raw): (String, serde_json::Value) = sqlx::query_as(
            "SELECT error, raw FROM order_quarantine WHERE tenant_id = $1 AND external_order_id = $2",
        )
        .bind(id)
        .bind(&odd.order_id)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(
            error.contains(expected) && error.contains(&odd.order_id),
            "{id}: {error}"
        );
        assert!(
            raw.to_string().contains(expected),
            "{id}: kept as Amazon sent it"
        );
    }

    // Amazon (or a fixed parser) sends a readable copy: it is synced and leaves quarantine.
    odd.overrides.clear();
    odd.last_update_date = now0 - Duration::minutes(20);
    sim.upsert_order(SELLER, odd.clone());
    for (id, api) in [("t-v0", OrdersApi::V0), ("t-v2026", OrdersApi::V2026)] {
        let t = tenant(&sim, id, api);
        expect_ok(delta(&sim, &pool, &t, Utc::now()).await);
        assert_eq!(order_count(&pool, id).await, 9, "{id}");
        assert_eq!(
            count(
                &pool,
                "SELECT count(*) FROM order_quarantine WHERE tenant_id = $1",
                id
            )
            .await,
            0,
            "{id}"
        );
    }
}

#[sqlx::test]
async fn a_login_with_amazon_outage_is_retried(pool: PgPool) {
    let sim = sim().await;
    sim.seed_orders(SELLER, 3, 2, hours_ago(1), Duration::days(1));
    let t = tenant(&sim, "t1", OrdersApi::V2026);
    sim.fail_lwa(2);
    expect_ok(delta(&sim, &pool, &t, Utc::now()).await);
    let stats = sim.stats();
    assert_eq!((stats.lwa_requests, stats.lwa_failures), (3, 2));
    assert_eq!(order_count(&pool, "t1").await, 3);

    // An outage longer than the retry budget fails the pass with a clear message.
    sim.fail_lwa(100);
    let err = expect_err(delta(&sim, &pool, &t, Utc::now()).await);
    assert!(matches!(err, Error::Auth(_)), "{err}");
    assert!(err.to_string().contains("500"), "{err}");
}

#[sqlx::test]
async fn orders_whose_items_always_fail_do_not_starve_the_others(pool: PgPool) {
    let sim = sim().await;
    let now0 = Utc::now().trunc_subsecs(0);
    sim.seed_orders(SELLER, 1, 30, now0 - Duration::hours(3), Duration::hours(1));
    let normal = sim.orders(SELLER)[0].clone();
    let mut hopeless = normal.clone();
    hopeless.order_id = "171-7000000-0000001".into();
    hopeless.items.clear(); // Amazon answers with no items, every time
    hopeless.last_update_date = now0 - Duration::hours(1); // newer than `normal`
    sim.upsert_order(SELLER, hopeless.clone());
    let t = tenant(&sim, "t1", OrdersApi::V0);
    let no_items = SyncSettings {
        items_budget: 0,
        ..settings()
    };
    expect_ok(delta_with(&sim, &pool, &t, &no_items, Utc::now()).await);
    assert_eq!(item_count(&pool, "t1").await, 0);

    let store = PgStore::from_pool(pool.clone());
    let s = settings();
    let one = keybuzz_sync::model::PassKind::Items { limit: 1 };
    // Both were deferred together; the newer (hopeless) one is tried first and fails...
    expect_ok(run_pass(&store, &source(&sim, &t, &s), one, Utc::now()).await);
    assert_eq!(item_count(&pool, "t1").await, 0);
    // ...and the next pass moves on to the one that waited longest instead of retrying it.
    let report = expect_ok(run_pass(&store, &source(&sim, &t, &s), one, Utc::now()).await);
    assert_eq!(item_count(&pool, "t1").await, normal.items.len() as i64);
    assert_eq!(report.items_pending, 1);
}

#[sqlx::test]
async fn nul_characters_and_duplicate_item_ids_do_not_stall_a_tenant(pool: PgPool) {
    let sim = sim().await;
    let now0 = Utc::now().trunc_subsecs(0);
    sim.seed_orders(SELLER, 4, 31, now0 - Duration::hours(3), Duration::hours(1));
    let mut nul = sim.orders(SELLER)[0].clone();
    nul.order_id = "171-8000000-0000001".into();
    nul.overrides
        .insert("SalesChannel".into(), "Amazon\u{0}.fr".into());
    nul.overrides
        .insert("programs".into(), serde_json::json!(["PRIME\u{0}"]));
    sim.upsert_order(SELLER, nul.clone());
    let mut dup = sim.orders(SELLER)[1].clone();
    dup.order_id = "171-8000000-0000002".into();
    let first = dup.items[0].clone();
    dup.items.push(first);
    sim.upsert_order(SELLER, dup.clone());

    for (id, api) in [("t-v0", OrdersApi::V0), ("t-v2026", OrdersApi::V2026)] {
        let t = tenant(&sim, id, api);
        let report = expect_ok(delta(&sim, &pool, &t, Utc::now()).await);
        let raw: String = sqlx::query_scalar(
            "SELECT raw::text FROM orders WHERE tenant_id = $1 AND external_order_id = $2",
        )
        .bind(id)
        .bind(&nul.order_id)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(raw.contains('\u{FFFD}'), "{id}: {raw}");
        match api {
            // v0: the order is stored, its items wait with the reason.
            OrdersApi::V0 => {
                let error: String = sqlx::query_scalar(
                    "SELECT items_error FROM orders WHERE tenant_id = $1 AND external_order_id = $2 AND items_stale",
                )
                .bind(id)
                .bind(&dup.order_id)
                .fetch_one(&pool)
                .await
                .unwrap();
                assert!(error.contains("twice"), "{error}");
            }
            // v2026: order and items are one record: quarantined.
            OrdersApi::V2026 => assert_eq!(report.counts.quarantined, 1),
        }
        assert!(cursor(&pool, id).await.is_some(), "{id}");
    }
}

#[sqlx::test]
async fn a_stopping_process_fails_only_its_own_runs(pool: PgPool) {
    let ours = PgStore::from_pool(pool.clone());
    let theirs = PgStore::from_pool(pool.clone());
    let a = keybuzz_sync::model::TenantId::parse("a").unwrap();
    let b = keybuzz_sync::model::TenantId::parse("b").unwrap();
    let our_run = ours.start_run(&a, "delta", OrdersApi::V2026).await.unwrap();
    let their_run = theirs
        .start_run(&b, "delta", OrdersApi::V2026)
        .await
        .unwrap();
    ours.fail_open_runs("terminated by SIGTERM").await.unwrap();
    let outcome = |id: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT outcome FROM sync_runs WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(outcome(our_run).await, "failed");
    assert_eq!(outcome(their_run).await, "running");
    assert_eq!(last_error(&pool, "b").await, None);
}
