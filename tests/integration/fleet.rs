//! The fleet as the CronJob runs it: the real binary, `delta --all-tenants`, against the
//! simulator over HTTP and a real Postgres. What these tests prove:
//!
//! - a heavy tenant onboarding under `--max-duration` takes its share of the budget, is
//!   `partial` with its backlog shown, resumes without refetching, and converges, while every
//!   light tenant is synced on every run (v2026 pages; v0 items, each order's fetched once);
//! - several heavy tenants onboarding at once leave a slot to the light ones;
//! - SIGKILL at random instants loses nothing, duplicates nothing, and the counters add up;
//! - shards cover every tenant exactly once (`--shard I/N`, `--shard-count N` with
//!   `JOB_COMPLETION_INDEX`);
//! - a tenant whose every request is throttled ends within the budget, saying so;
//! - tenants the budget leaves no time for are `skipped`, and go first the next time;
//! - a long pass off a terminal logs progress lines naming its tenant; on a terminal (a pty
//!   from util-linux `script`) a running pass shows a live line.
//!
//! `measure_freshness_while_a_heavy_tenant_onboards` (ignored: minutes long) is the measurement
//! behind the README's numbers; `bash scripts/freshness.sh` runs it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::Value;
use spapi_sim::{Fault, FaultKind, SimConfig, SimHandle, SimOp, SimStatus};
use sqlx::PgPool;

use crate::cli::{keybuzz, keybuzz_process, run, text};
use crate::util::*;

/// Germany: the heavy tenants sell there, so that their requests can be told apart in the
/// simulator's log from the light tenants' (France).
const DE: &str = "A1PA6795UKMFR9";

/// How long after its budget a run may take to end: the request in flight is already cut to
/// the deadline, so what remains is committing, closing the runs and exiting. Generous for a
/// loaded 2-core CI machine.
const BUDGET_MARGIN: StdDuration = StdDuration::from_secs(10);

/// A tenant file whose refresh token the simulator grants for `seller`.
fn tenant_file(dir: &Path, sim: &SimHandle, id: &str, seller: &str, api: &str, marketplace: &str) {
    let token = refresh_token(id);
    sim.grant(&token, seller);
    let body = serde_json::json!({
        "refreshToken": token,
        "region": "eu",
        "marketplaceIds": [marketplace],
        "ordersApi": api,
    });
    std::fs::write(dir.join(format!("{id}.json")), body.to_string()).unwrap();
}

/// `count` orders for `seller` in `marketplace`, purchased over the `days` before an hour ago
/// (well inside a first pass's 30-day lookback, and well before any window's overlap).
fn seed(sim: &SimHandle, seller: &str, count: usize, seed: u64, days: i64, marketplace: &str) {
    let orders = sim.seed_orders(
        seller,
        count,
        seed,
        Utc::now() - Duration::hours(1),
        Duration::days(days),
    );
    if marketplace != spapi_sim::SEED_MARKETPLACE {
        for mut order in orders {
            order.marketplace_id = marketplace.to_owned();
            sim.upsert_order(seller, order);
        }
    }
}

/// New business for a seller since the last pass: `new` orders updated 3 minutes ago (inside
/// the next window, which ends 2 min 15 s ago), and one existing order cancelled then.
fn new_business(sim: &SimHandle, seller: &str, new: usize, seed: u64) {
    let at = (Utc::now() - Duration::minutes(3)).trunc_subsecs(0);
    sim.seed_orders(seller, new, seed, at, Duration::zero());
    let mut orders = sim.orders(seller);
    orders.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    if let Some(mut order) = orders
        .into_iter()
        .find(|o| o.status != SimStatus::Canceled && o.last_update_date < at)
    {
        order.status = SimStatus::Canceled;
        for item in &mut order.items {
            item.quantity_shipped = 0;
        }
        order.last_update_date = at;
        sim.upsert_order(seller, order);
    }
}

/// Runs the binary to its end, off the async runtime (which keeps serving the simulator), and
/// measures how long it took.
async fn timed(mut cmd: assert_cmd::Command, args: &[&str]) -> (Output, StdDuration) {
    cmd.args(args);
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let out = cmd.output().unwrap();
        (out, started.elapsed())
    })
    .await
    .unwrap()
}

/// The JSON log lines of a run (stderr off a terminal).
fn log_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// What is stored of a tenant, or served for a seller, compared as: orders (id, last update,
/// status in the v2026 vocabulary) and items (order id, item id, quantity ordered).
type Rows = (
    Vec<(String, DateTime<Utc>, String)>,
    Vec<(String, String, i64)>,
);

fn served(sim: &SimHandle, seller: &str) -> Rows {
    let orders = sim.orders(seller);
    let mut o: Vec<_> = orders
        .iter()
        .map(|o| {
            (
                o.order_id.clone(),
                o.last_update_date,
                o.status.v2026_name().to_owned(),
            )
        })
        .collect();
    let mut i: Vec<_> = orders
        .iter()
        .flat_map(|o| {
            o.items.iter().map(|it| {
                (
                    o.order_id.clone(),
                    it.order_item_id.clone(),
                    i64::from(it.quantity_ordered),
                )
            })
        })
        .collect();
    o.sort();
    i.sort();
    (o, i)
}

async fn stored(pool: &PgPool, tenant: &str) -> Rows {
    let o: Vec<(String, DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT external_order_id, last_update_date, status FROM orders
          WHERE tenant_id = $1 ORDER BY 1",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .unwrap();
    let i: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT external_order_id, order_item_id, quantity_ordered::bigint FROM order_items
          WHERE tenant_id = $1 ORDER BY 1, 2",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .unwrap();
    (o, i)
}

/// The tenant's orders and items are exactly the seller's on the simulator, none awaits its
/// items, and nothing is stored twice.
async fn assert_ground_truth(pool: &PgPool, sim: &SimHandle, tenant: &str, seller: &str) {
    let (want_orders, want_items) = served(sim, seller);
    let (got_orders, got_items) = stored(pool, tenant).await;
    fn first_difference<T: PartialEq + std::fmt::Debug>(a: &[T], b: &[T]) -> String {
        match a.iter().zip(b).position(|(x, y)| x != y) {
            Some(i) => format!(
                "first difference at {i}: stored {:?}, served {:?}",
                a[i], b[i]
            ),
            None => format!("stored {} rows, served {}", a.len(), b.len()),
        }
    }
    assert!(
        got_orders == want_orders,
        "{tenant}: orders differ from the simulator's: {}",
        first_difference(&got_orders, &want_orders)
    );
    assert!(
        got_items == want_items,
        "{tenant}: items differ from the simulator's: {}",
        first_difference(&got_items, &want_items)
    );
    let awaiting = count(
        pool,
        "SELECT count(*) FROM orders WHERE tenant_id = $1 AND items_stale",
        tenant,
    )
    .await;
    assert_eq!(awaiting, 0, "{tenant}: orders awaiting items");
}

/// One `sync_runs` row, as the tests read it.
#[derive(Debug, Clone, sqlx::FromRow)]
struct RunRow {
    id: i64,
    outcome: String,
    orders_upserted: i32,
    items_upserted: i32,
    api_calls: i32,
    throttled: i32,
    pages: i32,
    backlog_orders: Option<i32>,
    catch_up_secs: Option<i32>,
    error: Option<String>,
}

/// A tenant's runs, oldest first.
async fn runs(pool: &PgPool, tenant: &str) -> Vec<RunRow> {
    sqlx::query_as(
        "SELECT id, outcome, orders_upserted, items_upserted, api_calls, throttled, pages,
                backlog_orders, catch_up_secs, error
           FROM sync_runs WHERE tenant_id = $1 ORDER BY id",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn last_run(pool: &PgPool, tenant: &str) -> RunRow {
    runs(pool, tenant)
        .await
        .pop()
        .unwrap_or_else(|| panic!("{tenant} has no run"))
}

/// A cumulative counter (`sync_counters`), summed over its labels matching `operation` (all
/// operations when `None`).
async fn counter(pool: &PgPool, tenant: &str, metric: &str, operation: Option<&str>) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(value), 0)::bigint FROM sync_counters
          WHERE tenant_id = $1 AND metric = $2 AND ($3::text IS NULL OR operation = $3)",
    )
    .bind(tenant)
    .bind(metric)
    .bind(operation)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// `status --json` of one tenant.
async fn status_json(sim: &SimHandle, pool: &PgPool, dir: &Path, tenant: &str) -> Value {
    let out = run(
        keybuzz(sim, pool, dir),
        &["status", "--tenant", tenant, "--json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn migrate(sim: &SimHandle, pool: &PgPool, dir: &Path) {
    let out = run(keybuzz(sim, pool, dir), &["migrate"]).await;
    assert!(out.status.success(), "{}", text(&out));
}

/// A query parameter of a recorded request, still percent-encoded (only compared).
fn param<'a>(raw_query: &'a str, name: &str) -> Option<&'a str> {
    raw_query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The heavy tenant's searchOrders requests (the only ones asking for Germany).
fn heavy_requests(sim: &SimHandle) -> Vec<spapi_sim::RecordedRequest> {
    sim.requests()
        .into_iter()
        .filter(|r| {
            r.op == SimOp::SearchOrders && param(&r.raw_query, "marketplaceIds") == Some(DE)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------

/// The main scenario. Light tenants (v0 and v2026) are up to date; a heavy v2026 tenant
/// with 2,500 orders arrives while Amazon lets it have 5 pages at once, then one every 2 s: about
/// 45 s of requests, over twice the 20 s budget. Each `delta --all-tenants --max-duration 20s`
/// ends within the budget and exits 0; every light tenant equals the simulator after every run;
/// the heavy tenant's first run is `partial`, with its backlog in the database and in
/// `status --json`; the next runs resume from the saved page token (no page is fetched twice)
/// and converge to the simulator's orders.
#[sqlx::test]
async fn a_heavy_tenant_onboards_within_the_budget_while_light_tenants_stay_fresh(pool: PgPool) {
    let sim = sim().await;
    // Every seller's searchOrders: burst 5, then one page every 2 s.
    sim.set_bucket(SimOp::SearchOrders, 0.5, 5);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lights = [
        ("light-a", "v0"),
        ("light-b", "2026-01-01"),
        ("light-c", "v0"),
        ("light-d", "2026-01-01"),
        ("light-e", "v0"),
        ("light-f", "2026-01-01"),
    ];
    let seller_of = |id: &str| format!("SELLER-{id}");
    for (i, (id, api)) in lights.iter().enumerate() {
        seed(&sim, &seller_of(id), 12, 100 + i as u64, 20, MARKETPLACE_FR);
        tenant_file(d, &sim, id, &seller_of(id), api, MARKETPLACE_FR);
    }
    migrate(&sim, &pool, d).await;
    let out = run(keybuzz(&sim, &pool, d), &["delta", "--all-tenants"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (id, _) in &lights {
        assert_ground_truth(&pool, &sim, id, &seller_of(id)).await;
    }

    // The heavy tenant arrives: orders over 29 of the first pass's 30 days, so that the pass's
    // backlog estimate (from how far into the window its sorted pages reached) has uniform data.
    const HEAVY_ORDERS: usize = 2_500;
    seed(&sim, "SELLER-heavy", HEAVY_ORDERS, 7, 29, DE);
    tenant_file(d, &sim, "heavy", "SELLER-heavy", "2026-01-01", DE);
    let heavy_total = sim.orders("SELLER-heavy").len();

    let mut run_number = 0;
    loop {
        run_number += 1;
        assert!(
            run_number <= 6,
            "the heavy tenant did not converge in 5 budgeted runs"
        );
        for (i, (id, _)) in lights.iter().enumerate() {
            new_business(&sim, &seller_of(id), 2, 1_000 * run_number + i as u64);
        }
        let (out, took) = timed(
            keybuzz(&sim, &pool, d),
            &["delta", "--all-tenants", "--max-duration", "20s"],
        )
        .await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "run {run_number}: {}",
            text(&out)
        );
        eprintln!("run {run_number}: {took:?}");
        assert!(
            took <= StdDuration::from_secs(20) + BUDGET_MARGIN,
            "run {run_number} took {took:?} with a 20 s budget"
        );
        // Every light tenant was synced by this run, and is exactly the simulator's.
        for (id, _) in &lights {
            assert_eq!(last_run(&pool, id).await.outcome, "success", "{id}");
            assert_ground_truth(&pool, &sim, id, &seller_of(id)).await;
        }
        let heavy = last_run(&pool, "heavy").await;
        eprintln!("run {run_number}: heavy {heavy:?}");
        let stored_orders = order_count(&pool, "heavy").await;
        if heavy.outcome == "partial" {
            // What is left, after each cut run (the first, and those that resumed a window): an
            // estimate, within a factor of two on uniform data (or a few orders, when a run
            // finished the backlog and was cut at the next, minutes-long window), and the time
            // it takes at the bucket's rate.
            let left = (heavy_total as i64) - stored_orders;
            let backlog = i64::from(heavy.backlog_orders.expect("backlog estimated"));
            assert!(
                backlog >= left / 2 && backlog <= (left * 2).max(left + 10),
                "run {run_number}: backlog estimate {backlog}, really left {left}"
            );
            assert!(
                heavy.catch_up_secs.is_some_and(|s| s > 0 || left < 10),
                "{heavy:?}"
            );
        }
        if run_number == 1 {
            assert_eq!(heavy.outcome, "partial", "{heavy:?}\n{}", text(&out));
            assert_eq!(heavy.error, None);
            assert!(
                stored_orders > 0 && (stored_orders as usize) < heavy_total,
                "the first run stored part of the backlog: {stored_orders} of {heavy_total}"
            );
            assert_eq!(heavy.orders_upserted as i64, stored_orders);
            assert_eq!(i64::from(heavy.pages), stored_orders / 100, "{heavy:?}");
            let backlog = i64::from(heavy.backlog_orders.unwrap());
            let catch_up = i64::from(heavy.catch_up_secs.unwrap());
            // The resume point is saved, the window not done: no cursor yet.
            let (token, cursor): (Option<String>, Option<DateTime<Utc>>) = sqlx::query_as(
                "SELECT resume_token, cursor FROM marketplace_sync_state WHERE tenant_id = 'heavy'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            assert!(token.is_some() && cursor.is_none(), "{token:?} {cursor:?}");
            // status --json tells the operator the same.
            let status = status_json(&sim, &pool, d, "heavy").await;
            assert_eq!(status["lastRun"]["outcome"], "partial", "{status}");
            assert_eq!(status["backlog"]["orders"], backlog, "{status}");
            assert_eq!(status["backlog"]["catchUpSeconds"], catch_up, "{status}");
            assert_eq!(status["counts"]["orders"], stored_orders, "{status}");
            assert!(status["syncState"]["lastError"].is_null(), "{status}");
        }
        if heavy.outcome == "success" {
            break;
        }
        assert_eq!(heavy.outcome, "partial", "run {run_number}: {heavy:?}");
    }
    assert!(run_number >= 2, "the heavy tenant needed more than one run");
    assert_ground_truth(&pool, &sim, "heavy", "SELLER-heavy").await;
    let status = status_json(&sim, &pool, d, "heavy").await;
    assert!(
        status["backlog"]["orders"].is_null() && status["backlog"]["catchUpSeconds"].is_null(),
        "a caught-up tenant shows no backlog: {status}"
    );

    // Resumed, never refetched: among the pages Amazon answered, no (window, page token) twice,
    // and the first window's first page (no token) once; every page answered was committed, and
    // every request is in the runs' numbers (each run ended normally).
    let requests = heavy_requests(&sim);
    let answered: Vec<_> = requests.iter().filter(|r| r.status == 200).collect();
    let mut pages = BTreeSet::new();
    for r in &answered {
        let key = (
            param(&r.raw_query, "lastUpdatedAfter"),
            param(&r.raw_query, "lastUpdatedBefore"),
            param(&r.raw_query, "paginationToken"),
        );
        assert!(pages.insert(key), "page fetched twice: {}", r.raw_query);
    }
    let first_window_after = answered
        .first()
        .and_then(|r| param(&r.raw_query, "lastUpdatedAfter"))
        .unwrap();
    let first_window: Vec<_> = answered
        .iter()
        .filter(|r| param(&r.raw_query, "lastUpdatedAfter") == Some(first_window_after))
        .collect();
    assert_eq!(
        first_window.len(),
        heavy_total.div_ceil(100),
        "the first window's pages, each fetched once"
    );
    assert_eq!(
        first_window
            .iter()
            .filter(|r| param(&r.raw_query, "paginationToken").is_none())
            .count(),
        1,
        "later runs resumed from the saved token instead of starting the window again"
    );
    let heavy_runs = runs(&pool, "heavy").await;
    let sum = |f: fn(&RunRow) -> i32| heavy_runs.iter().map(|r| i64::from(f(r))).sum::<i64>();
    assert_eq!(sum(|r| r.pages), answered.len() as i64, "{heavy_runs:?}");
    assert_eq!(
        sum(|r| r.api_calls),
        requests.len() as i64,
        "{heavy_runs:?}"
    );
    assert_eq!(
        sum(|r| r.throttled),
        requests.iter().filter(|r| r.status == 429).count() as i64
    );
    assert_eq!(sum(|r| r.orders_upserted), heavy_total as i64);
}

// ---------------------------------------------------------------------------------------------

/// Three heavy tenants onboard at once, with two slots: the catching-up tenants hold at most
/// one slot while up-to-date tenants wait, so every light tenant is synced in the run, the
/// heavy tenants taking the rest of the budget (the first one all of it).
#[sqlx::test]
async fn heavy_tenants_onboarding_together_leave_a_slot_to_the_light_ones(pool: PgPool) {
    let sim = sim().await;
    sim.set_bucket(SimOp::SearchOrders, 0.5, 5);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lights = ["light-1", "light-2", "light-3", "light-4"];
    for (i, id) in lights.iter().enumerate() {
        let seller = format!("SELLER-{id}");
        seed(&sim, &seller, 8, 70 + i as u64, 10, MARKETPLACE_FR);
        let api = if i % 2 == 0 { "v0" } else { "2026-01-01" };
        tenant_file(d, &sim, id, &seller, api, MARKETPLACE_FR);
    }
    migrate(&sim, &pool, d).await;
    let out = run(keybuzz(&sim, &pool, d), &["delta", "--all-tenants"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Each heavy tenant alone needs about 25 s of searchOrders (15 pages, 5 at once, then one
    // every 2 s): more than the budget.
    let heavies = ["heavy-1", "heavy-2", "heavy-3"];
    for (i, id) in heavies.iter().enumerate() {
        let seller = format!("SELLER-{id}");
        seed(&sim, &seller, 1_500, 80 + i as u64, 29, DE);
        tenant_file(d, &sim, id, &seller, "2026-01-01", DE);
    }
    for (i, id) in lights.iter().enumerate() {
        new_business(&sim, &format!("SELLER-{id}"), 2, 90 + i as u64);
    }
    let (out, took) = timed(
        keybuzz(&sim, &pool, d),
        &[
            "delta",
            "--all-tenants",
            "--concurrency",
            "2",
            "--max-duration",
            "20s",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        took <= StdDuration::from_secs(20) + BUDGET_MARGIN,
        "{took:?}"
    );
    for id in lights {
        assert_eq!(last_run(&pool, id).await.outcome, "success", "{id}");
        assert_ground_truth(&pool, &sim, id, &format!("SELLER-{id}")).await;
    }
    let mut outcomes = Vec::new();
    for id in heavies {
        let outcome = runs(&pool, id).await.pop().map(|r| r.outcome);
        outcomes.push(outcome.unwrap_or_default());
    }
    eprintln!("heavy tenants: {outcomes:?} in {took:?}");
    // The furthest behind (never synced, then by id) first: heavy-1 ran for the whole budget.
    assert_eq!(outcomes[0], "partial", "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| o == "partial" || o == "skipped"),
        "{outcomes:?}"
    );
}

// ---------------------------------------------------------------------------------------------

/// v0, where every new order costs a getOrderItems call (0.5/s at Amazon; 15/s here, after a
/// burst of 10): 350 new orders' items do not fit a 20 s budget. When the budget ends in the
/// middle of a page, that page is committed with its remaining orders awaiting their items,
/// the run is `partial` and `status` shows what awaits; the next runs resume the window and
/// fetch the awaiting items, each order's items once (only an order whose item pages the
/// budget cut in two is asked again, at most one per cut run), and converge.
#[sqlx::test]
async fn a_heavy_v0_tenant_fetches_each_orders_items_once_across_budgeted_runs(pool: PgPool) {
    let sim = sim().await;
    sim.set_bucket(SimOp::GetOrderItemsV0, 15.0, 10);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    seed(&sim, "SELLER-legacy", 350, 61, 29, MARKETPLACE_FR);
    tenant_file(d, &sim, "legacy", "SELLER-legacy", "v0", MARKETPLACE_FR);
    migrate(&sim, &pool, d).await;

    let mut partial_runs = 0;
    for run_number in 1.. {
        assert!(run_number <= 5, "no convergence in 4 budgeted runs");
        let (out, took) = timed(
            keybuzz(&sim, &pool, d),
            &["delta", "--all-tenants", "--max-duration", "20s"],
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(
            took <= StdDuration::from_secs(20) + BUDGET_MARGIN,
            "{took:?}"
        );
        let last = last_run(&pool, "legacy").await;
        eprintln!("run {run_number}: {took:?}: {last:?}");
        if run_number == 1 {
            assert_eq!(last.outcome, "partial", "{last:?}");
            let status = status_json(&sim, &pool, d, "legacy").await;
            let awaiting = status["counts"]["ordersAwaitingItems"].as_i64().unwrap();
            assert!(awaiting > 0, "{status}");
            assert!(
                status["backlog"]["catchUpSeconds"].as_i64().unwrap() > 0,
                "{status}"
            );
            let pending: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM orders WHERE tenant_id = 'legacy' AND items_stale
                    AND items_error LIKE '%time budget%'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            assert!(pending > 0, "orders deferred by the budget say so");
        }
        match last.outcome.as_str() {
            "success" => break,
            "partial" => partial_runs += 1,
            other => panic!("{other}: {last:?}"),
        }
    }
    assert_ground_truth(&pool, &sim, "legacy", "SELLER-legacy").await;

    let requests = sim.requests();
    let items_of = |r: &&spapi_sim::RecordedRequest| {
        r.path
            .strip_prefix("/orders/v0/orders/")
            .and_then(|p| p.strip_suffix("/orderItems"))
            .map(str::to_owned)
    };
    let mut first_pages: BTreeMap<String, usize> = BTreeMap::new();
    let mut answered_item_pages = 0;
    for r in requests
        .iter()
        .filter(|r| r.op == SimOp::GetOrderItemsV0 && r.status == 200)
    {
        answered_item_pages += 1;
        if param(&r.raw_query, "NextToken").is_none() {
            *first_pages.entry(items_of(&r).unwrap()).or_default() += 1;
        }
    }
    let orders = sim.orders("SELLER-legacy");
    assert_eq!(
        first_pages.len(),
        orders.len(),
        "every order's items were asked for"
    );
    let asked_again: Vec<_> = first_pages.iter().filter(|(_, n)| **n > 1).collect();
    for (id, n) in &asked_again {
        let order = orders.iter().find(|o| &o.order_id == *id).unwrap();
        assert!(
            order.items.len() > 5 && **n == 2,
            "{id} asked {n} times with {} items",
            order.items.len()
        );
    }
    assert!(
        asked_again.len() <= partial_runs,
        "{asked_again:?} asked again after {partial_runs} cut runs"
    );
    let needed: usize = orders.iter().map(|o| o.items.len().div_ceil(5)).sum();
    assert!(
        answered_item_pages >= needed && answered_item_pages <= needed + partial_runs,
        "{answered_item_pages} item pages answered, {needed} needed"
    );
    // No getOrders page twice, and every request in the runs' numbers.
    let mut pages = BTreeSet::new();
    for r in requests
        .iter()
        .filter(|r| r.op == SimOp::GetOrdersV0 && r.status == 200)
    {
        assert!(
            pages.insert(r.raw_query.clone()),
            "page fetched twice: {}",
            r.raw_query
        );
    }
    let all = runs(&pool, "legacy").await;
    assert_eq!(
        all.iter().map(|r| i64::from(r.api_calls)).sum::<i64>(),
        requests.len() as i64
    );
    assert_eq!(
        all.iter().map(|r| i64::from(r.pages)).sum::<i64>(),
        pages.len() as i64
    );
}

// ---------------------------------------------------------------------------------------------

/// splitmix64, for the kill instants (the seed is printed, and can be set).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// Waits (bounded) until no session of the test's database holds a tenant lock: the backends
/// of killed processes have gone.
async fn wait_for_locks_released(pool: &PgPool) {
    let deadline = Instant::now() + StdDuration::from_secs(30);
    loop {
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
              WHERE l.locktype = 'advisory' AND d.datname = current_database()",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if held == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "tenant locks still held 30 s after the last kill"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

/// SIGKILL at random instants (`KEYBUZZ_KILL_SEED`, `KEYBUZZ_KILL_ITERATIONS` to replay or
/// lengthen), then one run left alone: the stored orders are the simulator's, and the numbers
/// add up.
///
/// What "add up" means, exactly. A run's numbers (`sync_runs`) and the cumulative counters
/// (`sync_counters`) are written in the transaction of each commit (a page, an order's items,
/// the run's end), so:
/// - per tenant, each counter equals the sum of its runs' column (orders, items, API calls,
///   429s), exactly, whatever was killed, and the runs counter per outcome equals the runs that
///   reached that outcome;
/// - a kill between a request and the commit that would have recorded it loses that request
///   from both (the work it fetched was not stored either, and is fetched again): so a killed
///   process's run records at most what the simulator received from it, and for v2026 at most
///   one page's attempts less (one request per page, 1 + 5 retries); in total the API call
///   counters are at most the simulator's count;
/// - a run that ended normally records every request it sent at its end: for every process
///   that ended on its own, and the final one, its runs' calls equal the simulator's count
///   over it (checked process by process, the processes running one after another);
/// - nothing committed is fetched again (a resumed window continues after its last committed
///   page), so orders and items written, summed over all runs, equal the seller's orders and
///   items: no order was written twice.
#[sqlx::test]
async fn sigkill_at_random_instants_loses_nothing_and_the_counters_add_up(pool: PgPool) {
    let kill_seed = std::env::var("KEYBUZZ_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let iterations: usize = std::env::var("KEYBUZZ_KILL_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    eprintln!(
        "kill test: seed {kill_seed}, {iterations} kills (replay: KEYBUZZ_KILL_SEED={kill_seed})"
    );
    let mut rng = Rng(kill_seed);

    let sim = sim().await;
    // Several seconds of work each, so that many kills land mid-pass, with commits often
    // enough (about two a second) for progress between kills: v2026 at 2 pages a second after
    // a burst of 5 (2,400 orders, 24 pages); v0 at 200 item requests a second (1,000 orders, 10
    // pages of about 110 item requests each).
    sim.set_bucket(SimOp::SearchOrders, 2.0, 5);
    sim.set_bucket(SimOp::GetOrderItemsV0, 200.0, 30);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    seed(&sim, "SELLER-new", 2_400, 11, 20, MARKETPLACE_FR);
    seed(&sim, "SELLER-old", 1_000, 12, 20, MARKETPLACE_FR);
    tenant_file(d, &sim, "new", "SELLER-new", "2026-01-01", MARKETPLACE_FR);
    tenant_file(d, &sim, "old", "SELLER-old", "v0", MARKETPLACE_FR);
    migrate(&sim, &pool, d).await;

    let process = || {
        let mut cmd = keybuzz_process(&sim, &pool, d);
        cmd.args(["delta", "--all-tenants"])
            .env("KEYBUZZ_ITEMS_BUDGET", "100000")
            .env("KEYBUZZ_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    let max_run_id = || async {
        sqlx::query_scalar::<_, Option<i64>>("SELECT max(id) FROM sync_runs")
            .fetch_one(&pool)
            .await
            .unwrap()
            .unwrap_or(0)
    };
    // Per iteration: whether it was killed, the simulator's counts before and after, and the
    // runs it opened (ids above `first_run`, up to `last_run`).
    struct Iteration {
        killed: bool,
        before: spapi_sim::SimStats,
        after: spapi_sim::SimStats,
        runs: (i64, i64),
    }
    let mut record = Vec::new();
    let mut killed = 0usize;
    for i in 0..iterations {
        let after = StdDuration::from_millis(rng.between(50, 2_500));
        let (stats_before, first_run) = (sim.stats(), max_run_id().await);
        let mut child = process().spawn().unwrap();
        // The random instant of the kill (what is tested), not a wait for something to happen.
        tokio::time::sleep(after).await;
        let exited = child.try_wait().unwrap();
        if exited.is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        eprintln!(
            "iteration {i}: after {after:?}: {}",
            match exited {
                Some(s) => format!("had ended ({s})"),
                None => format!("killed ({status})"),
            }
        );
        // The killed process's sessions end (their locks with them) before the next starts, so
        // that no tenant is refused for a lock held by the dead; the awaits also let the
        // simulator record anything the dead process had sent.
        wait_for_locks_released(&pool).await;
        record.push(Iteration {
            killed: exited.is_none(),
            before: stats_before,
            after: sim.stats(),
            runs: (first_run, max_run_id().await),
        });
    }
    // The work is about 10 s at the simulator's rates, so a good part of the kills land
    // mid-run (about 15 of 20 here); the rest find the process ended (an up-to-date pass).
    assert!(
        killed >= iterations / 3,
        "too few kills landed mid-run ({killed} of {iterations})"
    );

    wait_for_locks_released(&pool).await;
    let before = sim.stats();
    let out = tokio::task::spawn_blocking({
        let mut cmd = process();
        move || cmd.stderr(Stdio::piped()).output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let after = sim.stats();
    let sent = |stats: &spapi_sim::SimStats, op| stats.requests.get(&op).copied().unwrap_or(0);
    let during = |op| (sent(&after, op) - sent(&before, op)) as i64;

    for (tenant, seller, ops) in [
        ("new", "SELLER-new", &[SimOp::SearchOrders][..]),
        (
            "old",
            "SELLER-old",
            &[SimOp::GetOrdersV0, SimOp::GetOrderItemsV0][..],
        ),
    ] {
        assert_ground_truth(&pool, &sim, tenant, seller).await;
        let all = runs(&pool, tenant).await;
        let last = all.last().unwrap();
        assert_eq!(last.outcome, "success", "{tenant}: {last:?}");
        let outcomes: BTreeMap<&str, usize> = all.iter().fold(BTreeMap::new(), |mut m, r| {
            *m.entry(r.outcome.as_str()).or_default() += 1;
            m
        });
        eprintln!("{tenant}: runs {outcomes:?}");
        assert!(
            outcomes
                .keys()
                .all(|o| ["success", "abandoned"].contains(o)),
            "{tenant}: {outcomes:?}"
        );

        let sum = |f: fn(&RunRow) -> i32| all.iter().map(|r| i64::from(f(r))).sum::<i64>();
        let (orders, items) = served(&sim, seller);
        let orders_written = counter(&pool, tenant, "orders_written", None).await;
        let items_written = counter(&pool, tenant, "items_written", None).await;
        assert_eq!(orders_written, sum(|r| r.orders_upserted), "{tenant}");
        assert_eq!(items_written, sum(|r| r.items_upserted), "{tenant}");
        assert_eq!(
            orders_written,
            orders.len() as i64,
            "{tenant}: no order written twice"
        );
        assert_eq!(
            items_written,
            items.len() as i64,
            "{tenant}: no item written twice"
        );
        for outcome in ["success", "partial", "failed", "skipped"] {
            let counted: i64 = sqlx::query_scalar(
                "SELECT coalesce(sum(value), 0)::bigint FROM sync_counters
                  WHERE tenant_id = $1 AND metric = 'runs' AND outcome = $2",
            )
            .bind(tenant)
            .bind(outcome)
            .fetch_one(&pool)
            .await
            .unwrap();
            assert_eq!(
                counted,
                outcomes.get(outcome).copied().unwrap_or(0) as i64,
                "{tenant}: runs counter for {outcome}"
            );
        }

        let calls = counter(&pool, tenant, "api_calls", None).await;
        let throttled = counter(&pool, tenant, "api_throttled", None).await;
        assert_eq!(calls, sum(|r| r.api_calls), "{tenant}");
        assert_eq!(throttled, sum(|r| r.throttled), "{tenant}");
        let mut simulated = 0;
        for &op in ops {
            let name = match op {
                SimOp::SearchOrders => "searchOrders",
                SimOp::GetOrdersV0 => "getOrders",
                _ => "getOrderItems",
            };
            let counted = counter(&pool, tenant, "api_calls", Some(name)).await;
            let total = sent(&after, op) as i64;
            eprintln!("{tenant} {name}: {counted} counted, {total} received by the simulator");
            assert!(counted <= total, "{tenant} {name}: {counted} > {total}");
            simulated += total;
        }
        if tenant == "new" {
            // At most one page in flight per killed process, each with 1 + 5 retries.
            assert!(
                simulated - calls <= 6 * killed as i64,
                "{tenant}: {} requests unaccounted for after {killed} kills",
                simulated - calls
            );
        }
        // Run by run: a process that ended normally recorded every request it sent; a killed
        // one, what it had committed, and (v2026) at most one page's attempts less.
        for (i, it) in record.iter().enumerate() {
            let mine: Vec<&RunRow> = all
                .iter()
                .filter(|r| r.id > it.runs.0 && r.id <= it.runs.1)
                .collect();
            assert!(mine.len() <= 1, "{tenant}: iteration {i}: {mine:?}");
            let recorded = mine.first().map_or(0, |r| i64::from(r.api_calls));
            let received: i64 = ops
                .iter()
                .map(|&op| (sent(&it.after, op) - sent(&it.before, op)) as i64)
                .sum();
            if it.killed {
                assert!(
                    recorded <= received,
                    "{tenant}: iteration {i}: {recorded} recorded, {received} received"
                );
                if tenant == "new" {
                    assert!(
                        received - recorded <= 6,
                        "{tenant}: iteration {i}: {received} received, {recorded} recorded: more than one page in flight (1 + 5 retries)"
                    );
                }
            } else {
                assert_eq!(recorded, received, "{tenant}: iteration {i} ended normally");
            }
        }
        let final_calls: i64 = ops.iter().map(|&op| during(op)).sum();
        assert_eq!(
            i64::from(last.api_calls),
            final_calls,
            "{tenant}: the final run's calls are the simulator's count over it"
        );
    }
}

// ---------------------------------------------------------------------------------------------

/// The tenants a run's passes were for, from its "pass started" lines.
fn passes_of(out: &Output) -> BTreeSet<String> {
    log_lines(out)
        .iter()
        .filter(|l| l["message"] == "pass started")
        .filter_map(|l| l["tenant"].as_str().map(str::to_owned))
        .collect()
}

/// N processes, one per shard, run at once as an Indexed Job's pods do: every tenant of the
/// tenants dir is synced by exactly one of them, whether the shard is given as `--shard I/N` or
/// as `--shard-count N` with `JOB_COMPLETION_INDEX`, and both forms split the same way.
#[sqlx::test]
async fn shards_together_cover_every_tenant_exactly_once(pool: PgPool) {
    const TENANTS: usize = 40;
    const SHARDS: usize = 3;
    let sim = sim().await;
    sim.seed_orders(
        SELLER,
        3,
        5,
        Utc::now() - Duration::hours(1),
        Duration::days(2),
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ids: BTreeSet<String> = (0..TENANTS).map(|i| format!("shop-{i:02}")).collect();
    for id in &ids {
        tenant_file(d, &sim, id, SELLER, "2026-01-01", MARKETPLACE_FR);
    }
    migrate(&sim, &pool, d).await;

    let mut splits = Vec::new();
    for form in ["--shard", "--shard-count"] {
        let outs = futures_util::future::join_all((0..SHARDS).map(|i| {
            let mut cmd = keybuzz(&sim, &pool, d);
            cmd.env("KEYBUZZ_LOG", "info");
            let shard = format!("{i}/{SHARDS}");
            let count = SHARDS.to_string();
            let args: Vec<String> = if form == "--shard" {
                vec![
                    "delta".into(),
                    "--all-tenants".into(),
                    "--shard".into(),
                    shard,
                ]
            } else {
                cmd.env("JOB_COMPLETION_INDEX", i.to_string());
                vec![
                    "delta".into(),
                    "--all-tenants".into(),
                    "--shard-count".into(),
                    count,
                ]
            };
            async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                run(cmd, &args).await
            }
        }))
        .await;
        let mut split = Vec::new();
        let mut union = BTreeSet::new();
        for (i, out) in outs.iter().enumerate() {
            assert_eq!(out.status.code(), Some(0), "{form} {i}: {}", text(out));
            let mine = passes_of(out);
            assert!(!mine.is_empty(), "{form} {i} synced no tenant");
            for id in &mine {
                assert!(
                    union.insert(id.clone()),
                    "{form}: {id} synced by two shards"
                );
            }
            split.push(mine);
        }
        assert_eq!(union, ids, "{form}: the shards together cover every tenant");
        splits.push(split);
    }
    assert_eq!(
        splits[0], splits[1],
        "both forms split the tenants the same way"
    );
    // In the database: every tenant exactly one successful run per round, no other.
    let per_tenant: Vec<(String, i64)> = sqlx::query_as(
        "SELECT tenant_id, count(*) FILTER (WHERE outcome = 'success') FROM sync_runs
          GROUP BY tenant_id HAVING count(*) FILTER (WHERE outcome = 'success') = count(*)
          ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        per_tenant,
        ids.iter().map(|id| (id.clone(), 2)).collect::<Vec<_>>(),
        "one run per tenant and round, every one a success"
    );

    // An Indexed Job's environment that does not fit the count is a configuration error.
    for (index, count) in [(None, "3"), (Some("3"), "3"), (Some("x"), "3")] {
        let mut cmd = keybuzz(&sim, &pool, d);
        if let Some(index) = index {
            cmd.env("JOB_COMPLETION_INDEX", index);
        }
        let out = run(cmd, &["delta", "--all-tenants", "--shard-count", count]).await;
        assert_eq!(out.status.code(), Some(3), "{index:?}: {}", text(&out));
        assert!(
            text(&out).contains("JOB_COMPLETION_INDEX"),
            "{}",
            text(&out)
        );
    }
}

// ---------------------------------------------------------------------------------------------

/// Amazon answers 429 to every searchOrders, and the retry budget (`--retry-max-total-secs
/// 120`) is far longer than the run's (15 s): the pass still ends within the run's budget, as a
/// failure whose lastError names the throttling, after retrying (not at once), with every
/// attempt counted; the fleet run exits 0 and its other tenant is synced.
#[sqlx::test]
async fn a_tenant_throttled_on_every_request_ends_within_the_budget_saying_so(pool: PgPool) {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    seed(&sim, "SELLER-busy", 30, 21, 5, MARKETPLACE_FR);
    seed(&sim, "SELLER-calm", 10, 22, 5, MARKETPLACE_FR);
    tenant_file(d, &sim, "busy", "SELLER-busy", "2026-01-01", MARKETPLACE_FR);
    tenant_file(d, &sim, "calm", "SELLER-calm", "v0", MARKETPLACE_FR);
    migrate(&sim, &pool, d).await;
    // A first pass learns Amazon's rate for searchOrders (the header) and keeps it in the
    // saved buckets: the throttled pass then paces quickly and keeps retrying, rather than
    // waiting out the documented 3 minutes.
    let out = run(keybuzz(&sim, &pool, d), &["delta", "--all-tenants"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    sim.push_fault(Fault {
        op: Some(SimOp::SearchOrders),
        kind: FaultKind::Status(429),
        times: 10_000,
        skip: 0,
    });
    new_business(&sim, "SELLER-calm", 2, 23);
    let before = sim.stats();
    let mut cmd = keybuzz(&sim, &pool, d);
    cmd.env("KEYBUZZ_RETRY_BASE_MS", "200")
        .env("KEYBUZZ_MAX_RETRIES", "20");
    let (out, took) = timed(
        cmd,
        &[
            "delta",
            "--all-tenants",
            "--max-duration",
            "15s",
            "--retry-max-total-secs",
            "120",
        ],
    )
    .await;
    eprintln!("throttled run: {took:?}");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        took <= StdDuration::from_secs(15) + BUDGET_MARGIN,
        "took {took:?} with a 15 s budget"
    );

    let busy = last_run(&pool, "busy").await;
    assert_eq!(busy.outcome, "failed", "{busy:?}");
    let error = busy.error.clone().unwrap_or_default();
    assert!(
        error.contains("throttled") && error.contains("429"),
        "{error}"
    );
    let status = status_json(&sim, &pool, d, "busy").await;
    let last_error = status["syncState"]["lastError"]
        .as_str()
        .unwrap_or_default();
    assert!(last_error.contains("throttled"), "{status}");
    assert_eq!(status["lastRun"]["outcome"], "failed", "{status}");
    let during = sim.stats().requests[&SimOp::SearchOrders] - before.requests[&SimOp::SearchOrders];
    assert!(
        during >= 5,
        "it retried before giving up: {during} requests"
    );
    assert_eq!(busy.api_calls as u64, during, "every attempt counted");
    assert_eq!(busy.throttled as u64, during, "every attempt answered 429");

    assert_eq!(last_run(&pool, "calm").await.outcome, "success");
    assert_ground_truth(&pool, &sim, "calm", "SELLER-calm").await;
}

// ---------------------------------------------------------------------------------------------

/// With one slot and passes of 4 s each, a 15 s budget leaves time to start only the first
/// tenants (none starts with less than 5 s, a third of the budget, left; the last one started
/// may be cut short, `partial`): the others get a `skipped` run with the
/// reason, their state is not an error, and the next run starts them first, as they are now
/// the furthest behind.
#[sqlx::test]
async fn tenants_the_budget_cannot_start_are_skipped_and_go_first_next_time(pool: PgPool) {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ids = ["t1", "t2", "t3", "t4", "t5"];
    for (i, id) in ids.iter().enumerate() {
        let seller = format!("SELLER-{id}");
        seed(&sim, &seller, 3, 30 + i as u64, 5, MARKETPLACE_FR);
        tenant_file(d, &sim, id, &seller, "v0", MARKETPLACE_FR);
    }
    migrate(&sim, &pool, d).await;
    // Up to date, one after another: the cursors are in id order (or equal, then by id).
    let out = run(
        keybuzz(&sim, &pool, d),
        &["delta", "--all-tenants", "--concurrency", "1"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // As the previous tick, 5 minutes ago, would have left them: cursors whole seconds apart
    // (the time a test compresses would otherwise leave several in the same second, where
    // "furthest behind" is a tie broken by id).
    sqlx::query(
        "UPDATE marketplace_sync_state
            SET cursor = date_trunc('second', now()) - interval '7 minutes'
                         + interval '1 second' * right(tenant_id, 1)::int",
    )
    .execute(&pool)
    .await
    .unwrap();

    // Each pass now takes 4 s (its one getOrders answers late).
    sim.push_fault(Fault {
        op: Some(SimOp::GetOrdersV0),
        kind: FaultKind::Delay(StdDuration::from_secs(4)),
        times: 1_000,
        skip: 0,
    });
    let (out, took) = timed(
        keybuzz(&sim, &pool, d),
        &[
            "delta",
            "--all-tenants",
            "--concurrency",
            "1",
            "--max-duration",
            "15s",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        took <= StdDuration::from_secs(15) + BUDGET_MARGIN,
        "{took:?}"
    );
    let mut ran = Vec::new();
    let mut skipped = Vec::new();
    for id in ids {
        let last = last_run(&pool, id).await;
        match last.outcome.as_str() {
            "success" | "partial" => ran.push(id),
            "skipped" => {
                let reason = last.error.clone().unwrap_or_default();
                assert!(
                    reason.contains("time budget") && reason.contains("next run"),
                    "{id}: {reason}"
                );
                assert_eq!(
                    last_error(&pool, id).await,
                    None,
                    "{id}: skipped is no error"
                );
                assert_eq!(
                    counter(&pool, id, "runs", None).await,
                    2,
                    "{id}: one success, one skip"
                );
                let status = status_json(&sim, &pool, d, id).await;
                assert_eq!(status["lastRun"]["outcome"], "skipped", "{status}");
                skipped.push(id);
            }
            other => panic!("{id}: {other}: {last:?}"),
        }
    }
    eprintln!("ran {ran:?}, skipped {skipped:?} in {took:?}");
    assert!(
        !ran.is_empty() && !skipped.is_empty(),
        "{ran:?} {skipped:?}"
    );
    // The tenants were taken in order of their cursors: those that ran come first.
    assert_eq!(ran, ids[..ran.len()], "ran {ran:?}");

    // Next run: the skipped tenants start first, the ones synced last time after them.
    sim.clear_faults();
    let first_new_run: i64 = sqlx::query_scalar("SELECT max(id) FROM sync_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    let out = run(
        keybuzz(&sim, &pool, d),
        &["delta", "--all-tenants", "--concurrency", "1"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let order: Vec<String> = sqlx::query_scalar(
        "SELECT tenant_id FROM sync_runs WHERE id > $1 AND outcome = 'success' ORDER BY id",
    )
    .bind(first_new_run)
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected: Vec<&str> = skipped.iter().chain(&ran).copied().collect();
    assert_eq!(order, expected, "the skipped tenants first");
    for id in ids {
        assert_ground_truth(&pool, &sim, id, &format!("SELLER-{id}")).await;
    }
}

// ---------------------------------------------------------------------------------------------

/// Off a terminal, a pass running longer than 30 s writes an INFO "progress" line naming its
/// tenant, while it runs.
#[sqlx::test]
async fn a_long_pass_off_a_terminal_logs_progress_naming_its_tenant(pool: PgPool) {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    seed(&sim, "SELLER-slow", 5, 41, 2, MARKETPLACE_FR);
    tenant_file(d, &sim, "slow", "SELLER-slow", "2026-01-01", MARKETPLACE_FR);
    migrate(&sim, &pool, d).await;
    // Its one page answers after 34 s: the pass is still running when the 30 s line is due.
    sim.push_fault(Fault {
        op: Some(SimOp::SearchOrders),
        kind: FaultKind::Delay(StdDuration::from_secs(34)),
        times: 1,
        skip: 0,
    });
    let mut child = keybuzz_process(&sim, &pool, d)
        .args(["delta", "--all-tenants"])
        .env("KEYBUZZ_LOG", "info")
        .env("KEYBUZZ_REQUEST_TIMEOUT_SECS", "60")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reader = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // Read the log as it is written, until the progress line or the end of the process.
    let mut seen = Vec::new();
    let progress = loop {
        let line = tokio::time::timeout(StdDuration::from_secs(120), received.recv())
            .await
            .expect("no log line for 2 minutes");
        let Some(line) = line else {
            panic!(
                "the process ended without a progress line:\n{}",
                seen.join("\n")
            );
        };
        seen.push(line.clone());
        if let Ok(json) = serde_json::from_str::<Value>(&line)
            && json["message"] == "progress"
        {
            break json;
        }
    };
    // It came while the pass was running: its summary was not written yet.
    assert!(
        !seen.iter().any(|l| l.contains("pass finished")),
        "{}",
        seen.join("\n")
    );
    assert_eq!(progress["level"], "INFO", "{progress}");
    assert_eq!(progress["tenant"], "slow", "{progress}");
    assert!(
        progress["elapsed_secs"].as_u64().unwrap() >= 29,
        "{progress}"
    );
    for field in ["pages", "orders", "items", "waited_secs"] {
        assert!(progress[field].is_u64(), "{field}: {progress}");
    }
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    reader.await.unwrap();
    assert!(status.success(), "{status}");
    assert_ground_truth(&pool, &sim, "slow", "SELLER-slow").await;
}

// ---------------------------------------------------------------------------------------------

/// What one simulated CronJob saw.
struct Measured {
    /// (start, end) of each run, from the experiment's start.
    runs: Vec<(StdDuration, StdDuration)>,
    /// When the heavy tenant's first successful pass ended (caught up), from the start.
    heavy_done: StdDuration,
    /// Per light tenant, its successful passes until the heavy tenant caught up.
    light_syncs: Vec<usize>,
    /// Between the ends of consecutive successful passes of a light tenant, every light tenant.
    light_gaps: Vec<StdDuration>,
}

/// One simulated CronJob with `concurrencyPolicy: Forbid`: it ticks every `tick`, and a tick
/// that comes while the previous run is still going is skipped, so a run starts at the first
/// tick after the previous one ended. Runs until the heavy tenant has caught up, and one tick
/// more (so that the light tenants' last gap shows).
async fn cronjob(
    sim: &SimHandle,
    pool: &PgPool,
    dir: &Path,
    lights: &[&str],
    heavy: &str,
    tick: StdDuration,
    budget: Option<&str>,
) -> Measured {
    let start = Instant::now();
    let wall_start = Utc::now();
    let mut runs = Vec::new();
    let mut heavy_done: Option<(StdDuration, DateTime<Utc>)> = None;
    let mut next_tick = StdDuration::ZERO;
    loop {
        let now = start.elapsed();
        if now < next_tick {
            // The schedule's next tick: this wait is the CronJob, not a synchronisation.
            tokio::time::sleep(next_tick - now).await;
        }
        let began = start.elapsed();
        let mut cmd = keybuzz(sim, pool, dir);
        cmd.env("KEYBUZZ_LOG", "info");
        let mut args = vec!["delta", "--all-tenants"];
        if let Some(budget) = budget {
            args.extend(["--max-duration", budget]);
        }
        let out = run(cmd, &args).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let ended = start.elapsed();
        eprintln!(
            "  run {}: {:.1}s .. {:.1}s, heavy {} orders",
            runs.len() + 1,
            began.as_secs_f64(),
            ended.as_secs_f64(),
            order_count(pool, heavy).await
        );
        runs.push((began, ended));
        next_tick = tick * ((ended.as_secs_f64() / tick.as_secs_f64()).floor() as u32 + 1);
        if heavy_done.is_some() {
            break;
        }
        if last_run(pool, heavy).await.outcome == "success" {
            heavy_done = Some((ended, Utc::now()));
        }
        assert!(runs.len() < 100, "the heavy tenant never caught up");
    }
    let (heavy_done, heavy_done_at) = heavy_done.unwrap();
    let mut light_syncs = Vec::new();
    let mut light_gaps = Vec::new();
    for id in lights {
        let ends: Vec<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT finished_at FROM sync_runs WHERE tenant_id = $1 AND outcome = 'success'
                AND started_at >= $2 ORDER BY finished_at",
        )
        .bind(id)
        .bind(wall_start)
        .fetch_all(pool)
        .await
        .unwrap();
        light_syncs.push(ends.iter().filter(|&&e| e <= heavy_done_at).count());
        for pair in ends.windows(2) {
            light_gaps.push((pair[1] - pair[0]).to_std().unwrap_or_default());
        }
    }
    Measured {
        runs,
        heavy_done,
        light_syncs,
        light_gaps,
    }
}

/// The measurement behind the README's freshness numbers (ignored: it takes minutes; run it
/// with `bash scripts/freshness.sh`). Time is scaled by 10: the simulator answers at Amazon's
/// rates x 10 (bursts unchanged), the CronJob ticks every 30 s (5 min) and the budget is 24 s
/// (4 min). Four light tenants (two v0, two v2026) are up to date; a v2026 tenant with 2,500
/// orders onboards: 25 pages, a burst of 20, then one page every 3 min at Amazon's rate.
/// BEFORE: no budget, a run lasts as long as the heavy tenant's pass, and the light tenants wait
/// for the next run. AFTER: `--max-duration` fits the tick, and every light tenant is synced on
/// every tick. Not scaled: the 10 s before the deadline after which no tenant starts, and the
/// 5 s a request must have left (100 s and 50 s in real terms here, so the heavy tenant gets
/// somewhat fewer pages per tick than it would for real).
#[sqlx::test]
#[ignore = "a measurement of several minutes: bash scripts/freshness.sh"]
async fn measure_freshness_while_a_heavy_tenant_onboards(pool: PgPool) {
    const SCALE: f64 = 10.0;
    let tick = StdDuration::from_secs(30);
    let sim = SimHandle::start(SimConfig {
        rate_scale: SCALE,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let real = |d: StdDuration| d.as_secs_f64() * SCALE / 60.0;
    let mut report = Vec::new();
    for (mode, budget) in [
        ("BEFORE, no budget", None),
        ("AFTER, --max-duration", Some("24s")),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Tenants of their own in each mode (and so rate buckets of their own).
        let tag = if budget.is_some() { "after" } else { "before" };
        let lights: Vec<String> = (0..4).map(|i| format!("{tag}-light-{i}")).collect();
        let heavy = format!("{tag}-heavy");
        for (i, id) in lights.iter().enumerate() {
            seed(&sim, id, 20, 50 + i as u64, 10, MARKETPLACE_FR);
            let api = if i % 2 == 0 { "v0" } else { "2026-01-01" };
            tenant_file(d, &sim, id, id, api, MARKETPLACE_FR);
        }
        migrate(&sim, &pool, d).await;
        let out = run(keybuzz(&sim, &pool, d), &["delta", "--all-tenants"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        seed(&sim, &heavy, 2_500, 9, 29, DE);
        tenant_file(d, &sim, &heavy, &heavy, "2026-01-01", DE);

        eprintln!("{mode}:");
        let light_ids: Vec<&str> = lights.iter().map(String::as_str).collect();
        let m = cronjob(&sim, &pool, d, &light_ids, &heavy, tick, budget).await;
        let mut gaps = m.light_gaps.clone();
        gaps.sort();
        let worst = gaps.last().copied().unwrap_or_default();
        let median = gaps.get(gaps.len() / 2).copied().unwrap_or_default();
        let longest_run = m
            .runs
            .iter()
            .map(|(s, e)| *e - *s)
            .max()
            .unwrap_or_default();
        let line = format!(
            "{mode}: heavy tenant caught up after {:.0}s ({:.0} min real) in {} runs, the longest \
             {:.0}s ({:.0} min real); meanwhile each light tenant was synced {:?} times; time \
             between a light tenant's syncs: median {:.0}s, worst {:.0}s ({:.0} / {:.0} min real)",
            m.heavy_done.as_secs_f64(),
            real(m.heavy_done),
            m.runs.len() - 1,
            longest_run.as_secs_f64(),
            real(longest_run),
            m.light_syncs,
            median.as_secs_f64(),
            worst.as_secs_f64(),
            real(median),
            real(worst),
        );
        eprintln!("{line}");
        report.push(line);
        for id in &lights {
            assert_ground_truth(&pool, &sim, id, id).await;
        }
        assert_ground_truth(&pool, &sim, &heavy, &heavy).await;
    }
    println!(
        "freshness (time x{SCALE}: tick 30s = 5 min, budget 24s = 4 min):\n{}",
        report.join("\n")
    );
}

/// On a terminal (a pseudo-terminal from util-linux `script`), a running pass shows a live line
/// with its tenant and what it has done and waited so far.
#[sqlx::test]
async fn on_a_terminal_a_running_pass_shows_a_live_line(pool: PgPool) {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    seed(&sim, "SELLER-shown", 5, 42, 2, MARKETPLACE_FR);
    tenant_file(
        d,
        &sim,
        "shown",
        "SELLER-shown",
        "2026-01-01",
        MARKETPLACE_FR,
    );
    migrate(&sim, &pool, d).await;
    // Its page answers after 3 s: the line is drawn several times meanwhile (every 250 ms).
    sim.push_fault(Fault {
        op: Some(SimOp::SearchOrders),
        kind: FaultKind::Delay(StdDuration::from_secs(3)),
        times: 1,
        skip: 0,
    });
    // The binary's environment, around `script`, which runs it on a pseudo-terminal and copies
    // what it draws to its own stdout.
    let binary = keybuzz_process(&sim, &pool, d);
    let mut cmd = std::process::Command::new("script");
    cmd.env_clear();
    for (key, value) in binary.get_envs() {
        if let Some(value) = value {
            cmd.env(key, value);
        }
    }
    cmd.env("KEYBUZZ_LOG", "info")
        .env("TERM", "xterm")
        .args(["-q", "-e", "-c"])
        .arg(format!(
            "'{}' delta --all-tenants",
            binary.get_program().to_string_lossy()
        ))
        .arg("/dev/null")
        .stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{screen}", text(&out));
    let live = screen
        .split(['\r', '\n'])
        .find(|l| l.contains("shown") && l.contains("waiting on Amazon"))
        .unwrap_or_else(|| panic!("no live line for the tenant:\n{screen}"));
    eprintln!("live line: {live:?}");
    assert!(live.contains("pages") && live.contains("so far"), "{live}");
    assert_ground_truth(&pool, &sim, "shown", "SELLER-shown").await;
}
