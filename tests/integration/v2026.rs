//! Orders API v2026-01-01: the same rows as v0, the switch between versions, its errors,
//! `items` through getOrder, and resuming an interrupted window.

use chrono::{Duration, SubsecRound, Utc};
use keybuzz_sync::Error;
use keybuzz_sync::config::SyncSettings;
use keybuzz_sync::model::OrdersApi;
use keybuzz_sync::model::amazon_time;
use keybuzz_sync::model::{ItemsUpdate, OrderWrite, PageProgress};
use keybuzz_sync::model::{PassKind, SyncWindow};
use keybuzz_sync::store::PgStore;
use keybuzz_sync::sync::{OrdersSource, VersionedSource, run_pass};
use spapi_sim::{SimOp, SimStatus};
use sqlx::PgPool;

use crate::util::*;

fn query_param(raw_query: &str, name: &str) -> Option<String> {
    raw_query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            // Minimal percent-decoding for the values these tests look at.
            v.replace("%2C", ",").replace("%3A", ":")
        })
    })
}

#[sqlx::test]
async fn v0_and_v2026_write_the_same_normalized_rows(pool: PgPool) {
    let sim = sim().await;
    let now0 = Utc::now().trunc_subsecs(0);
    sim.seed_orders(
        SELLER,
        150,
        42,
        now0 - Duration::hours(1),
        Duration::days(20),
    );
    // Make sure the statuses that change what Amazon serves are all present.
    let mut all = sim.orders(SELLER);
    all[0].status = SimStatus::Pending;
    all[1].status = SimStatus::Canceled;
    all[2].status = SimStatus::PartiallyShipped;
    all[2].items[0].quantity_shipped = 0;
    for o in &all[..3] {
        sim.upsert_order(SELLER, o.clone());
    }
    let a = tenant(&sim, "via-v0", OrdersApi::V0);
    let b = tenant(&sim, "via-v2026", OrdersApi::V2026);
    expect_ok(delta(&sim, &pool, &a, Utc::now()).await);
    let requests_before = sim.requests().len();
    let report = expect_ok(delta(&sim, &pool, &b, Utc::now()).await);

    let (orders_a, items_a) = normalized(&pool, "via-v0").await;
    let (orders_b, items_b) = normalized(&pool, "via-v2026").await;
    assert_eq!(orders_a.len(), 150);
    assert_eq!(orders_a, orders_b);
    assert_eq!(items_a, items_b);
    assert!(items_a.iter().any(|i| i.contains("EUR")));

    // Items came inline: two searchOrders pages, nothing else.
    let ops: Vec<SimOp> = sim.requests()[requests_before..]
        .iter()
        .map(|r| r.op)
        .collect();
    assert_eq!(ops, vec![SimOp::SearchOrders, SimOp::SearchOrders]);
    assert_eq!(report.api_calls, 2);
    let raw_query = &sim.requests()[requests_before].raw_query;
    assert_eq!(
        query_param(raw_query, "includedData").as_deref(),
        Some("FULFILLMENT,PROCEEDS")
    );
}

#[sqlx::test]
async fn a_tenant_switched_from_v0_continues_from_its_cursor(pool: PgPool) {
    let sim = sim().await;
    let now0 = Utc::now().trunc_subsecs(0);
    sim.seed_orders(SELLER, 30, 5, now0 - Duration::hours(1), Duration::days(3));
    let mut t = tenant(&sim, "sw", OrdersApi::V0);
    expect_ok(delta(&sim, &pool, &t, now0 - Duration::minutes(30)).await);
    let cursor1 = cursor(&pool, "sw").await.unwrap();

    let mut changed = sim
        .orders(SELLER)
        .into_iter()
        .find(|o| o.status == SimStatus::Unshipped)
        .unwrap();
    changed.status = SimStatus::Shipped;
    for i in &mut changed.items {
        i.quantity_shipped = i.quantity_ordered;
    }
    changed.last_update_date = now0 - Duration::minutes(20);
    sim.upsert_order(SELLER, changed.clone());

    t.orders_api = OrdersApi::V2026;
    let first_request = sim.requests().len();
    expect_ok(delta(&sim, &pool, &t, Utc::now()).await);
    let search = &sim.requests()[first_request];
    assert_eq!(search.op, SimOp::SearchOrders);
    assert_eq!(
        query_param(&search.raw_query, "lastUpdatedAfter"),
        Some(amazon_time(cursor1 - Duration::minutes(10))),
        "no gap: the v2026 window starts at the v0 cursor minus the overlap"
    );
    assert_eq!(order_count(&pool, "sw").await, 30, "no duplicate");
    let (status, api): (String, String) = sqlx::query_as(
        "SELECT status, source_api FROM orders WHERE tenant_id = 'sw' AND external_order_id = $1",
    )
    .bind(&changed.order_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), api.as_str()), ("SHIPPED", "2026-01-01"));

    // And the result equals a tenant synced through v2026 from the start.
    let fresh = tenant(&sim, "fresh", OrdersApi::V2026);
    expect_ok(delta(&sim, &pool, &fresh, Utc::now()).await);
    assert_eq!(
        normalized(&pool, "sw").await,
        normalized(&pool, "fresh").await
    );
}

#[sqlx::test]
async fn v2026_errors_are_read_from_the_bare_error_list(pool: PgPool) {
    let sim = sim().await;
    let t = tenant(&sim, "t1", OrdersApi::V2026);
    let s = settings();
    let VersionedSource::V2026(src) = source(&sim, &t, &s).orders else {
        unreachable!()
    };
    // A window ending now breaks Amazon's 2-minute rule.
    let window = SyncWindow {
        after: Utc::now() - Duration::hours(1),
        before: Utc::now(),
    };
    match src.orders_page(&window, None).await {
        Err(Error::Api {
            status: 400,
            code,
            message,
            operation,
        }) => {
            assert_eq!(code, "InvalidInput");
            assert_eq!(operation, "searchOrders");
            assert!(message.contains("2 minutes"), "{message}");
        }
        other => panic!("expected a 400, got {other:?}"),
    }
    drop(pool);
}

#[sqlx::test]
async fn pii_is_requested_only_when_the_tenant_opts_in(pool: PgPool) {
    let sim = sim().await;
    sim.seed_orders(
        SELLER,
        3,
        1,
        Utc::now() - Duration::hours(1),
        Duration::days(1),
    );
    let mut t = tenant(&sim, "pii", OrdersApi::V2026);
    t.include_pii = true;
    expect_ok(delta(&sim, &pool, &t, Utc::now()).await);
    let q = &sim.requests().last().unwrap().raw_query.clone();
    assert_eq!(
        query_param(q, "includedData").as_deref(),
        Some("FULFILLMENT,PROCEEDS,BUYER,RECIPIENT")
    );
}

#[sqlx::test]
async fn items_on_a_v2026_tenant_use_get_order(pool: PgPool) {
    let sim = sim().await;
    sim.seed_orders(
        SELLER,
        10,
        3,
        Utc::now() - Duration::hours(1),
        Duration::days(2),
    );
    let t = tenant(&sim, "t1", OrdersApi::V2026);
    expect_ok(delta(&sim, &pool, &t, Utc::now()).await);
    let full = item_count(&pool, "t1").await;
    // Three orders lose their items (say, a manual clean-up) and are marked for re-fetch.
    sqlx::query(
        "WITH picked AS (SELECT external_order_id FROM orders WHERE tenant_id = 't1' ORDER BY external_order_id LIMIT 3)
         , gone AS (DELETE FROM order_items WHERE external_order_id IN (SELECT external_order_id FROM picked))
         UPDATE orders SET items_stale = true WHERE external_order_id IN (SELECT external_order_id FROM picked)",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert!(item_count(&pool, "t1").await < full);

    let s = settings();
    let store = PgStore::from_pool(pool.clone());
    let report = expect_ok(
        run_pass(
            &store,
            &source(&sim, &t, &s),
            PassKind::Items { limit: 50 },
            Utc::now(),
        )
        .await,
    );
    assert_eq!(report.items_pending, 0);
    assert_eq!(item_count(&pool, "t1").await, full);
    assert_eq!(sim.stats().requests.get(&SimOp::GetOrder).copied(), Some(3));
}

#[sqlx::test]
async fn an_interrupted_window_resumes_from_its_page_token(pool: PgPool) {
    let sim = sim().await;
    let now0 = Utc::now().trunc_subsecs(0);
    sim.seed_orders(SELLER, 35, 8, now0 - Duration::hours(1), Duration::days(2));
    let t = tenant(&sim, "t1", OrdersApi::V2026);
    let s = SyncSettings {
        page_size: 10,
        ..settings()
    };
    let store = PgStore::from_pool(pool.clone());

    // What a process killed after its first page leaves behind: a running run, page 1 stored,
    // and the token of page 2.
    store
        .start_run(&t.id, "delta", OrdersApi::V2026)
        .await
        .unwrap();
    let window = SyncWindow::plan(None, now0 - Duration::minutes(30), &s.window_rules()).unwrap();
    let VersionedSource::V2026(src) = source(&sim, &t, &s).orders else {
        unreachable!()
    };
    let page = src.orders_page(&window, None).await.unwrap();
    let token = page.next_page_token.clone().unwrap();
    let writes: Vec<OrderWrite> = page
        .orders
        .into_iter()
        .map(|o| OrderWrite {
            order: o.order,
            items: ItemsUpdate::Replace(o.items.unwrap()),
        })
        .collect();
    store
        .write_page(
            &t.id,
            OrdersApi::V2026,
            &[],
            &writes,
            &[],
            &PageProgress::Continue {
                window,
                token: token.clone(),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        cursor(&pool, "t1").await,
        None,
        "the cursor waits for the whole window"
    );

    let first_request = sim.requests().len();
    expect_ok(delta_with(&sim, &pool, &t, &s, Utc::now()).await);
    let resumed = &sim.requests()[first_request];
    assert!(
        resumed.raw_query.contains("paginationToken="),
        "{}",
        resumed.raw_query
    );
    assert_eq!(order_count(&pool, "t1").await, 35);
    assert!(cursor(&pool, "t1").await.unwrap() > window.before);
    let abandoned = count(
        &pool,
        "SELECT count(*) FROM sync_runs WHERE tenant_id = $1 AND outcome = 'abandoned'",
        "t1",
    )
    .await;
    assert_eq!(abandoned, 1);
}
