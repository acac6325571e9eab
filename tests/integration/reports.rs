//! Imports through the Reports API against the simulator: the same rows as the Orders API, a
//! tenant's first sync through reports, every terminal state and fault, and interrupted imports.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use keybuzz_sync::config::{ReportSettings, SyncSettings, TenantConfig};
use keybuzz_sync::model::{InitialImport, OrdersApi, PassKind, PassReport, ReportType, SyncWindow};
use keybuzz_sync::store::PgStore;
use keybuzz_sync::sync::reports::{self, delta_with_reports};
use keybuzz_sync::sync::{Connector, run_pass};
use keybuzz_sync::{Error, Result};
use spapi_sim::{Fault, FaultKind, SimConfig, SimHandle, SimOp, SimStatus};
use sqlx::PgPool;

use crate::util::*;

const BY_UPDATE: &str = "GET_XML_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL";

/// A simulator whose reports are ready at once (each test that needs Amazon's queue stalls it
/// explicitly), at 1000x Amazon's rates.
pub async fn report_sim() -> SimHandle {
    SimHandle::start(SimConfig {
        rate_scale: 1000.0,
        report_generation: StdDuration::ZERO,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

/// Small batches, so that a document of a few hundred orders takes several commits.
pub fn report_settings() -> SyncSettings {
    SyncSettings {
        initial_lookback: Duration::days(60),
        reports: ReportSettings {
            batch_orders: 25,
            poll_interval: StdDuration::from_millis(20),
            download_idle_timeout: StdDuration::from_secs(2),
            ..ReportSettings::default()
        },
        ..settings()
    }
}

fn hours_ago(h: i64) -> DateTime<Utc> {
    (Utc::now() - Duration::hours(h)).trunc_subsecs(0)
}

/// The range a backfill of `days` days up to an hour ago covers.
fn range(days: i64) -> SyncWindow {
    SyncWindow {
        after: hours_ago(1) - Duration::days(days),
        before: hours_ago(1),
    }
}

fn with_initial_import(mut t: TenantConfig) -> TenantConfig {
    t.initial_import = InitialImport::Reports;
    t
}

async fn backfill(
    sim: &SimHandle,
    pool: &PgPool,
    tenant: &TenantConfig,
    settings: &SyncSettings,
    range: SyncWindow,
    wait: bool,
) -> Result<PassReport> {
    let store = PgStore::from_pool(pool.clone());
    let connector = Connector::new(&config(sim, settings), None).unwrap();
    let source = connector.source(tenant);
    reports::backfill_with_reports(
        &store,
        &connector,
        &source,
        range,
        ReportType::ByLastUpdate,
        wait,
    )
    .await
}

async fn delta_pass(
    sim: &SimHandle,
    pool: &PgPool,
    tenant: &TenantConfig,
    settings: &SyncSettings,
) -> Result<PassReport> {
    let store = PgStore::from_pool(pool.clone());
    let connector = Connector::new(&config(sim, settings), None).unwrap();
    let source = connector.source(tenant);
    delta_with_reports(&store, &connector, &source, Utc::now()).await
}

/// `(status, failures, report_id, messages_done, error)` of a job.
type JobRow = (String, i32, Option<String>, i32, Option<String>);

/// A tenant's jobs, oldest first.
async fn jobs(pool: &PgPool, tenant: &str) -> Vec<JobRow> {
    sqlx::query_as(
        "SELECT status, failures, report_id, messages_done, error FROM report_jobs
          WHERE tenant_id = $1 ORDER BY data_start",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn statuses(jobs: &[JobRow]) -> Vec<&str> {
    jobs.iter().map(|j| j.0.as_str()).collect()
}

fn created(sim: &SimHandle) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.op == SimOp::CreateReport && r.status == 202)
        .count()
}

/// Seeds `count` orders updated between `days` days and two hours ago, with every status that
/// changes what Amazon serves.
fn seed(sim: &SimHandle, count: usize, days: i64) {
    sim.seed_orders(SELLER, count, 17, hours_ago(2), Duration::days(days));
    let mut all = sim.orders(SELLER);
    all.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    all[0].status = SimStatus::Pending;
    all[0].items[0].quantity_shipped = 0;
    all[1].status = SimStatus::Canceled;
    all[2].status = SimStatus::PendingAvailability;
    for o in &all[..3] {
        sim.upsert_order(SELLER, o.clone());
    }
}

/// The normalized columns a report carries, for comparing a report import with an Orders API
/// sync: orders without their total (the report has none); items without `quantity_shipped`
/// (compared separately where the report knows it).
async fn comparable(pool: &PgPool, tenant: &str) -> (Vec<String>, Vec<String>) {
    let orders: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws('|', external_order_id, coalesce(marketplace_id, '∅'), status,
                purchase_date, last_update_date, coalesce(fulfillment_channel, '∅'))
           FROM orders WHERE tenant_id = $1 ORDER BY external_order_id",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .unwrap();
    let items: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws('|', external_order_id, order_item_id, coalesce(asin, '∅'),
                coalesce(seller_sku, '∅'), coalesce(title, '∅'), quantity_ordered,
                coalesce(item_price_amount::numeric(20,4)::text, '∅'),
                coalesce(item_tax_amount::numeric(20,4)::text, '∅'),
                coalesce(shipping_price_amount::numeric(20,4)::text, '∅'),
                coalesce(promotion_discount_amount::numeric(20,4)::text, '∅'),
                coalesce(currency, '∅'))
           FROM order_items WHERE tenant_id = $1 ORDER BY external_order_id, order_item_id",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .unwrap();
    (orders, items)
}

#[sqlx::test]
async fn reports_and_the_orders_api_write_the_same_rows(pool: PgPool) {
    let sim = report_sim().await;
    seed(&sim, 240, 50);
    let s = report_settings();
    let via_reports = tenant(&sim, "via-reports", OrdersApi::V2026);
    let via_api = tenant(&sim, "via-api", OrdersApi::V2026);

    // One backfill of 55 days: two report windows, imported by the same pass (the simulator
    // generates reports at once here).
    let report = expect_ok(backfill(&sim, &pool, &via_reports, &s, range(55), true).await);
    assert_eq!(report.counts.orders, 240);
    assert_eq!(
        statuses(&jobs(&pool, "via-reports").await),
        ["imported", "imported"]
    );
    assert_eq!(created(&sim), 2);
    expect_ok(
        run_pass(
            &PgStore::from_pool(pool.clone()),
            &source(&sim, &via_api, &s),
            PassKind::Delta,
            Utc::now(),
        )
        .await,
    );

    let (orders_r, items_r) = comparable(&pool, "via-reports").await;
    let (orders_a, items_a) = comparable(&pool, "via-api").await;
    assert_eq!(orders_r.len(), 240);
    assert_eq!(orders_r, orders_a, "every order column the report carries");
    // Items of Pending orders come without an id: staged, not in order_items.
    let pending: Vec<String> = sqlx::query_scalar(
        "SELECT external_order_id FROM orders WHERE tenant_id = 'via-reports'
            AND status IN ('PENDING', 'PENDING_AVAILABILITY') ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(pending.len() >= 2);
    let not_pending = |rows: &[String]| -> Vec<String> {
        rows.iter()
            .filter(|r| !pending.iter().any(|p| r.starts_with(p.as_str())))
            .cloned()
            .collect()
    };
    assert_eq!(
        items_r,
        not_pending(&items_a),
        "every item column the report carries"
    );

    // Documented differences: no order total; quantity_shipped only where the item status
    // says it (Shipped, Cancelled, Pending), and then the same.
    let totals: i64 = count(
        &pool,
        "SELECT count(*) FROM orders WHERE tenant_id = $1 AND order_total_amount IS NOT NULL",
        "via-reports",
    )
    .await;
    assert_eq!(totals, 0);
    let shipped_differs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM order_items r JOIN order_items a USING (external_order_id, order_item_id)
          WHERE r.tenant_id = 'via-reports' AND a.tenant_id = 'via-api'
            AND r.quantity_shipped IS NOT NULL AND r.quantity_shipped <> a.quantity_shipped",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(shipped_differs, 0);
    // Provenance: which report wrote each row.
    let sources: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT source_api FROM orders WHERE tenant_id = 'via-reports'
         UNION SELECT DISTINCT source_api FROM order_items WHERE tenant_id = 'via-reports'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        sources
            .iter()
            .all(|s| s.starts_with(&format!("report:{BY_UPDATE}:"))),
        "{sources:?}"
    );

    // The staged items are those the Orders API lists for those orders; the orders wait for
    // their ids, which the items catch-up fetches (getOrder), and the staging empties.
    let staged: i64 = count(
        &pool,
        "SELECT count(*) FROM report_staged_items WHERE tenant_id = $1",
        "via-reports",
    )
    .await;
    let api_pending_items: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM order_items WHERE tenant_id = 'via-api' AND external_order_id = ANY($1)",
    )
    .bind(&pending)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(staged, api_pending_items);
    let stale: i64 = count(
        &pool,
        "SELECT count(*) FROM orders WHERE tenant_id = $1 AND items_stale",
        "via-reports",
    )
    .await;
    assert_eq!(stale, pending.len() as i64);
    expect_ok(
        run_pass(
            &PgStore::from_pool(pool.clone()),
            &source(&sim, &via_reports, &s),
            PassKind::Items { limit: 100 },
            Utc::now(),
        )
        .await,
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM report_staged_items WHERE tenant_id = $1",
            "via-reports"
        )
        .await,
        0
    );
    let (_, items_r) = comparable(&pool, "via-reports").await;
    assert_eq!(
        items_r, items_a,
        "with the Orders API's ids, every item is there"
    );
}

#[sqlx::test]
async fn a_first_sync_through_reports_hands_over_to_the_orders_api(pool: PgPool) {
    let sim = report_sim().await;
    seed(&sim, 120, 40);
    // Orders of the last hour: newer than any report window; the Orders API brings them.
    let mut recent = sim.orders(SELLER)[10].clone();
    recent.order_id = "405-0000000-0000001".into();
    recent.purchase_date = hours_ago(0) - Duration::minutes(20);
    recent.last_update_date = recent.purchase_date;
    sim.upsert_order(SELLER, recent.clone());
    let s = report_settings();
    let t = with_initial_import(tenant(&sim, "t1", OrdersApi::V2026));

    // Amazon's queue is stuck: the first pass requests the lookback's two windows, and no
    // Orders API window is read meanwhile (it would cover the whole lookback).
    sim.stall_reports(true);
    let first = expect_ok(delta_pass(&sim, &pool, &t, &s).await);
    assert_eq!(first.counts.orders, 0);
    assert_eq!(
        statuses(&jobs(&pool, "t1").await),
        ["requested", "requested"]
    );
    assert!(!sim.requests().iter().any(|r| r.op == SimOp::SearchOrders));
    assert_eq!(cursor(&pool, "t1").await, None);
    let commands: Vec<String> =
        sqlx::query_scalar("SELECT command FROM sync_runs WHERE tenant_id = 't1'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(commands, ["import"]);

    // The queue moves: the next pass imports both windows, sets the cursor to their end, and
    // the Orders API delta takes over from there in the same run.
    sim.stall_reports(false);
    expect_ok(delta_pass(&sim, &pool, &t, &s).await);
    assert_eq!(statuses(&jobs(&pool, "t1").await), ["imported", "imported"]);
    assert_eq!(order_count(&pool, "t1").await, 121);
    let via_api: String = sqlx::query_scalar(
        "SELECT source_api FROM orders WHERE tenant_id = 't1' AND external_order_id = $1",
    )
    .bind(&recent.order_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(via_api, "2026-01-01");
    let search: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.op == SimOp::SearchOrders)
        .map(|r| r.raw_query.clone())
        .collect();
    assert!(!search.is_empty());
    // The delta's first window started at the reports' end (minus the overlap), not 60 days ago.
    let windows_end = hours_ago(1);
    let first_window: DateTime<Utc> = sqlx::query_scalar(
        "SELECT window_after FROM sync_runs WHERE tenant_id = 't1' AND command = 'delta'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        first_window > windows_end - Duration::minutes(30) && first_window < windows_end,
        "{first_window}"
    );
    assert!(cursor(&pool, "t1").await.unwrap() > windows_end);
    // Later passes are plain deltas.
    let before = sim.requests().len();
    expect_ok(delta_pass(&sim, &pool, &t, &s).await);
    assert!(
        !sim.requests()[before..]
            .iter()
            .any(|r| matches!(r.op, SimOp::CreateReport | SimOp::GetReport))
    );
}

#[sqlx::test]
async fn an_empty_window_is_cancelled_and_that_is_no_error(pool: PgPool) {
    let sim = report_sim().await;
    // Orders of the last 10 days only: the window from 40 to 10 days ago holds none.
    sim.seed_orders(SELLER, 30, 3, hours_ago(2), Duration::days(8));
    let s = report_settings();
    let t = tenant(&sim, "t1", OrdersApi::V2026);
    let r = SyncWindow {
        after: hours_ago(1) - Duration::days(40),
        before: hours_ago(1),
    };
    expect_ok(backfill(&sim, &pool, &t, &s, r, true).await);
    let j = jobs(&pool, "t1").await;
    assert_eq!(statuses(&j), ["empty", "imported"]);
    assert_eq!(j[0].4, None, "no error recorded");
    assert_eq!(order_count(&pool, "t1").await, 30);
    let outcome: String =
        sqlx::query_scalar("SELECT outcome FROM sync_runs WHERE tenant_id = 't1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(outcome, "success");
}

#[sqlx::test]
async fn fatal_reports_are_requested_again_a_bounded_number_of_times(pool: PgPool) {
    let sim = report_sim().await;
    seed(&sim, 50, 20);
    let s = report_settings();
    let t = tenant(&sim, "t1", OrdersApi::V2026);

    // One FATAL: the window is requested again by the next pass, and imported.
    sim.fail_reports(1);
    let r = range(25);
    expect_ok(backfill(&sim, &pool, &t, &s, r, false).await);
    let j = jobs(&pool, "t1").await;
    assert_eq!(statuses(&j), ["queued"]);
    assert_eq!(j[0].1, 1);
    assert!(j[0].4.as_deref().unwrap().contains("FATAL"), "{j:?}");
    expect_ok(backfill(&sim, &pool, &t, &s, r, false).await);
    let j = jobs(&pool, "t1").await;
    assert_eq!(statuses(&j), ["imported"]);
    assert_eq!(order_count(&pool, "t1").await, 50);
    let previous: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(previous_report_ids) FROM report_jobs WHERE tenant_id = 't1'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(previous.len(), 1, "the FATAL report is remembered");

    // FATAL every time: given up after max_failures, and `--wait` says so.
    let t2 = tenant(&sim, "t2", OrdersApi::V2026);
    sim.fail_reports(3);
    let e = expect_err(backfill(&sim, &pool, &t2, &s, r, true).await);
    assert!(
        matches!(&e, Error::ReportsFailed(m) if m.contains("1 of 1 windows were given up")),
        "{e}"
    );
    let j = jobs(&pool, "t2").await;
    assert_eq!(statuses(&j), ["failed"]);
    assert_eq!(j[0].1, 3);
    assert_eq!(order_count(&pool, "t2").await, 0);
}

#[sqlx::test]
async fn a_report_stuck_in_the_queue_is_requested_again(pool: PgPool) {
    let sim = report_sim().await;
    seed(&sim, 40, 20);
    let s = SyncSettings {
        reports: ReportSettings {
            stuck_after: Duration::zero(),
            ..report_settings().reports
        },
        ..report_settings()
    };
    let t = tenant(&sim, "t1", OrdersApi::V2026);
    sim.stall_reports(true);
    let r = range(25);
    expect_ok(backfill(&sim, &pool, &t, &s, r, false).await);
    assert_eq!(statuses(&jobs(&pool, "t1").await), ["requested"]);
    // The next pass finds it still IN_QUEUE past the limit: queued again, to be requested anew.
    expect_ok(backfill(&sim, &pool, &t, &s, r, false).await);
    let j = jobs(&pool, "t1").await;
    assert_eq!(statuses(&j), ["queued"]);
    assert!(
        j[0].4.as_deref().unwrap().contains("still IN_QUEUE"),
        "{j:?}"
    );
    sim.stall_reports(false);
    expect_ok(backfill(&sim, &pool, &t, &s, r, false).await);
    assert_eq!(statuses(&jobs(&pool, "t1").await), ["imported"]);
    assert_eq!(sim.reports(SELLER).len(), 2, "requested a second time");
    assert_eq!(order_count(&pool, "t1").await, 40);
}

#[sqlx::test]
async fn an_expired_document_url_is_asked_for_again(pool: PgPool) {
    let sim = report_sim().await;
    seed(&sim, 40, 20);
    let s = report_settings();
    let t = tenant(&sim, "t1", OrdersApi::V2026);
    // The first download is refused as S3 refuses an expired URL.
    sim.push_fault(Fault {
        op: Some(SimOp::DownloadDocument),
        kind: FaultKind::Status(403),
        times: 1,
        skip: 0,
    });
    let r = range(25);
    expect_ok(backfill(&sim, &pool, &t, &s, r, true).await);
    assert_eq!(statuses(&jobs(&pool, "t1").await), ["imported"]);
    let ops: Vec<SimOp> = sim
        .requests()
        .iter()
        .map(|r| r.op)
        .filter(|op| matches!(op, SimOp::GetReportDocument | SimOp::DownloadDocument))
        .collect();
    assert_eq!(
        ops,
        [
            SimOp::GetReportDocument,
            SimOp::DownloadDocument,
            SimOp::GetReportDocument,
            SimOp::DownloadDocument
        ]
    );

    // URLs that are expired by the time they are used: the window fails for now, with the
    // reason, and the next pass (with URLs that live) imports it.
    let t2 = tenant(&sim, "t2", OrdersApi::V2026);
    sim.set_report_url_ttl(StdDuration::ZERO);
    expect_ok(backfill(&sim, &pool, &t2, &s, r, false).await);
    let j = jobs(&pool, "t2").await;
    assert_eq!(statuses(&j), ["ready"]);
    assert!(
        j[0].4.as_deref().unwrap().contains("refused twice"),
        "{j:?}"
    );
    sim.set_report_url_ttl(StdDuration::from_secs(300));
    expect_ok(backfill(&sim, &pool, &t2, &s, r, false).await);
    assert_eq!(statuses(&jobs(&pool, "t2").await), ["imported"]);
    assert_eq!(order_count(&pool, "t2").await, 40);
}

#[sqlx::test]
async fn a_hidden_create_report_quota_leaves_windows_queued_not_failed(pool: PgPool) {
    let sim = report_sim().await;
    seed(&sim, 60, 50);
    let s = report_settings();
    let t = tenant(&sim, "t1", OrdersApi::V2026);
    sim.set_report_type_quota(BY_UPDATE, 1);
    let r = range(55);
    expect_ok(backfill(&sim, &pool, &t, &s, r, false).await);
    let j = jobs(&pool, "t1").await;
    assert_eq!(statuses(&j), ["imported", "queued"]);
    assert_eq!(j[1].1, 0, "throttling is not a failure of the window");
    sim.set_report_type_quota(BY_UPDATE, u32::MAX);
    expect_ok(backfill(&sim, &pool, &t, &s, r, false).await);
    assert_eq!(statuses(&jobs(&pool, "t1").await), ["imported", "imported"]);
    assert_eq!(order_count(&pool, "t1").await, 60);
}

#[sqlx::test]
async fn a_truncated_document_keeps_what_it_imported_and_the_next_pass_finishes(pool: PgPool) {
    let sim = report_sim().await;
    seed(&sim, 300, 20);
    let s = report_settings();
    let t = tenant(&sim, "t1", OrdersApi::V2026);
    sim.push_fault(Fault {
        op: Some(SimOp::DownloadDocument),
        kind: FaultKind::TruncatedBody,
        times: 1,
        skip: 0,
    });
    let r = range(25);
    expect_ok(backfill(&sim, &pool, &t, &s, r, false).await);
    let j = jobs(&pool, "t1").await;
    assert_eq!(statuses(&j), ["ready"]);
    let (_, failures, report_id, done, error) = &j[0];
    assert_eq!(*failures, 1);
    let error = error.as_deref().unwrap();
    assert!(
        error.contains(&format!("report {}", report_id.as_deref().unwrap()))
            && error.contains("at byte"),
        "{error}"
    );
    assert!(*done > 0, "batches before the cut are committed");
    let kept = order_count(&pool, "t1").await;
    assert!(kept > 0 && kept < 300, "{kept}");
    // The next pass resumes after the committed messages: no order twice, none lost.
    expect_ok(backfill(&sim, &pool, &t, &s, r, false).await);
    assert_eq!(statuses(&jobs(&pool, "t1").await), ["imported"]);
    assert_eq!(order_count(&pool, "t1").await, 300);
    let imported: i32 =
        sqlx::query_scalar("SELECT orders_imported FROM report_jobs WHERE tenant_id = 't1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(imported, 300, "each order written once");
}

#[sqlx::test]
async fn a_report_row_never_overwrites_a_newer_or_equal_orders_api_copy(pool: PgPool) {
    let sim = report_sim().await;
    seed(&sim, 30, 10);
    let s = report_settings();
    let t = tenant(&sim, "t1", OrdersApi::V2026);
    // The Orders API first: every order stored from v2026, with totals.
    let mut wide = s.clone();
    wide.initial_lookback = Duration::days(20);
    expect_ok(delta_with(&sim, &pool, &t, &wide, Utc::now()).await);
    let before = snapshot(&pool, "t1").await;
    // The same updates through a report: a tie, the API copies stay untouched.
    expect_ok(backfill(&sim, &pool, &t, &s, range(15), true).await);
    assert_eq!(snapshot(&pool, "t1").await, before);
    let skipped: i32 =
        sqlx::query_scalar("SELECT orders_skipped FROM report_jobs WHERE tenant_id = 't1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(skipped, 30);

    // A newer update seen only by a report: the report row wins, but keeps the stored total
    // (the report has none) and the stored amounts it leaves empty.
    let mut changed = sim
        .orders(SELLER)
        .into_iter()
        .find(|o| o.status == SimStatus::Unshipped && !o.items.is_empty())
        .expect("an unshipped order");
    changed.status = SimStatus::Shipped;
    for i in &mut changed.items {
        i.quantity_shipped = i.quantity_ordered;
    }
    changed.last_update_date = hours_ago(1) - Duration::minutes(30);
    sim.upsert_order(SELLER, changed.clone());
    let total_before: Option<rust_decimal::Decimal> = sqlx::query_scalar(
        "SELECT order_total_amount FROM orders WHERE tenant_id = 't1' AND external_order_id = $1",
    )
    .bind(&changed.order_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(total_before.is_some());
    let t2_range = SyncWindow {
        after: hours_ago(3),
        before: hours_ago(1),
    };
    expect_ok(backfill(&sim, &pool, &t, &s, t2_range, true).await);
    let (status, total, source): (String, Option<rust_decimal::Decimal>, String) = sqlx::query_as(
        "SELECT status, order_total_amount, source_api FROM orders
          WHERE tenant_id = 't1' AND external_order_id = $1",
    )
    .bind(&changed.order_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(status, "SHIPPED");
    assert_eq!(
        total, total_before,
        "an empty report value never overwrites a stored one"
    );
    assert!(source.starts_with("report:"));
    let shipped: Vec<Option<i32>> = sqlx::query_scalar(
        "SELECT quantity_shipped FROM order_items WHERE tenant_id = 't1' AND external_order_id = $1",
    )
    .bind(&changed.order_id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(shipped.iter().all(Option::is_some));
    // An Orders API copy of a later update wins again over the report's.
    changed.last_update_date = hours_ago(0) - Duration::minutes(10);
    sim.upsert_order(SELLER, changed.clone());
    expect_ok(delta_with(&sim, &pool, &t, &wide, Utc::now()).await);
    let source: String = sqlx::query_scalar(
        "SELECT source_api FROM orders WHERE tenant_id = 't1' AND external_order_id = $1",
    )
    .bind(&changed.order_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(source, "2026-01-01");
}

#[sqlx::test]
async fn item_ids_that_change_are_logged_not_cascaded(pool: PgPool) {
    let sim = report_sim().await;
    seed(&sim, 10, 5);
    let s = report_settings();
    let t = tenant(&sim, "t1", OrdersApi::V2026);
    expect_ok(backfill(&sim, &pool, &t, &s, range(7), true).await);
    let mut order = sim
        .orders(SELLER)
        .into_iter()
        .find(|o| !o.status.is_pending() && o.items.len() >= 2)
        .expect("an order with two items");
    let old_ids: Vec<String> = order
        .items
        .iter()
        .map(|i| i.order_item_id.clone())
        .collect();
    order.items[0].order_item_id = "99999999999999".into();
    order.last_update_date = hours_ago(1) - Duration::minutes(20);
    sim.upsert_order(SELLER, order.clone());
    let r = SyncWindow {
        after: hours_ago(2),
        before: hours_ago(1),
    };
    expect_ok(backfill(&sim, &pool, &t, &s, r, true).await);
    let mut ids: Vec<String> = sqlx::query_scalar(
        "SELECT order_item_id FROM order_items WHERE tenant_id = 't1' AND external_order_id = $1",
    )
    .bind(&order.order_id)
    .fetch_all(&pool)
    .await
    .unwrap();
    ids.sort();
    let mut expected = old_ids.clone();
    expected.push("99999999999999".into());
    expected.sort();
    assert_eq!(ids, expected, "the old item stays, the new one is added");
}

/// A tenant file for the binary, for the simulator's seller.
fn write_tenant_file(dir: &std::path::Path, sim: &SimHandle, id: &str, initial_import: bool) {
    sim.grant(&refresh_token(id), SELLER);
    let mut body = serde_json::json!({
        "refreshToken": refresh_token(id),
        "region": "eu",
        "marketplaceIds": [MARKETPLACE_FR],
    });
    if initial_import {
        body["initialImport"] = "reports".into();
    }
    std::fs::write(dir.join(format!("{id}.json")), body.to_string()).unwrap();
}

/// Waits (bounded) until `done` holds; the binary under test is then at a known point.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + StdDuration::from_secs(30);
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "never reached: {what}"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

#[sqlx::test]
async fn an_import_killed_at_any_point_is_finished_by_the_next_passes(pool: PgPool) {
    let sim = report_sim().await;
    seed(&sim, 200, 50);
    let expected_items: i64 = sim
        .orders(SELLER)
        .iter()
        .filter(|o| !o.status.is_pending())
        .map(|o| o.items.len() as i64)
        .sum();
    let dir = tempfile::tempdir().unwrap();
    let since = keybuzz_sync::model::amazon_time(hours_ago(1) - Duration::days(55));
    let until_arg = keybuzz_sync::model::amazon_time(hours_ago(1));
    let fault = |op, kind| Fault {
        op: Some(op),
        kind,
        times: 1,
        skip: 0,
    };
    let points = [
        (
            "after createReport, in getReport",
            fault(SimOp::GetReport, FaultKind::Hang),
        ),
        (
            "after the report is done, in getReportDocument",
            fault(SimOp::GetReportDocument, FaultKind::Hang),
        ),
        (
            "before the first byte of the document",
            fault(SimOp::DownloadDocument, FaultKind::Hang),
        ),
        (
            "in the middle of the document, batches committed",
            fault(SimOp::DownloadDocument, FaultKind::StallAfter(6_000)),
        ),
    ];
    for (n, (point, fault)) in points.into_iter().enumerate() {
        let id = format!("k{n}");
        write_tenant_file(dir.path(), &sim, &id, false);
        sim.push_fault(fault.clone());
        let seen_before = sim.requests().len();
        let args = [
            "backfill", "--tenant", &id, "--via", "reports", "--since", &since, "--until",
            &until_arg,
        ];
        let child = crate::cli::keybuzz_process(&sim, &pool, dir.path())
            .args(args)
            .args(["--report-batch-orders", "5"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let op = fault.op.unwrap();
        if let FaultKind::StallAfter(_) = fault.kind {
            let (pool, id) = (pool.clone(), id.clone());
            until(point, async || {
                sqlx::query_scalar::<_, i32>(
                    "SELECT coalesce(max(messages_done), 0) FROM report_jobs WHERE tenant_id = $1",
                )
                .bind(&id)
                .fetch_one(&pool)
                .await
                .unwrap()
                    > 0
            })
            .await;
        } else {
            until(point, async || {
                sim.requests()[seen_before..].iter().any(|r| r.op == op)
            })
            .await;
        }
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        tokio::task::spawn_blocking(move || {
            let mut child = child;
            child.wait().unwrap()
        })
        .await
        .unwrap();

        // The next passes finish the import.
        let out = crate::cli::run(
            crate::cli::keybuzz(&sim, &pool, dir.path()),
            &[
                "backfill",
                "--tenant",
                &id,
                "--via",
                "reports",
                "--since",
                &since,
                "--until",
                &until_arg,
                "--wait",
                "--report-poll-secs",
                "1",
            ],
        )
        .await;
        assert!(out.status.success(), "{point}: {}", crate::cli::text(&out));
        assert_eq!(order_count(&pool, &id).await, 200, "{point}: no order lost");
        assert_eq!(item_count(&pool, &id).await, expected_items, "{point}");
        let (requests, imported, previous): (i64, i64, i64) = sqlx::query_as(
            "SELECT sum(requests), sum(orders_imported), sum(cardinality(previous_report_ids))
               FROM report_jobs WHERE tenant_id = $1",
        )
        .bind(&id)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            (requests, previous),
            (2, 0),
            "{point}: no report requested twice"
        );
        assert_eq!(imported, 200, "{point}: no order written twice");
        let outcomes: Vec<String> =
            sqlx::query_scalar("SELECT outcome FROM sync_runs WHERE tenant_id = $1 ORDER BY id")
                .bind(&id)
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(outcomes[0], "abandoned", "{point}: {outcomes:?}");
        assert!(
            outcomes[1..].iter().all(|o| o == "success"),
            "{point}: {outcomes:?}"
        );
    }
}

#[sqlx::test]
async fn backfill_via_reports_refuses_ranges_reports_cannot_serve(pool: PgPool) {
    let sim = report_sim().await;
    let dir = tempfile::tempdir().unwrap();
    write_tenant_file(dir.path(), &sim, "t1", false);
    let recent = keybuzz_sync::model::amazon_time(hours_ago(0) - Duration::minutes(20));
    let old = keybuzz_sync::model::amazon_time(hours_ago(0) - Duration::days(800));
    let since = keybuzz_sync::model::amazon_time(hours_ago(0) - Duration::days(3));
    let cases: [(&[&str], &str); 3] = [
        (
            &["--via", "reports", "--since", &since, "--until", &recent],
            "too recent",
        ),
        (&["--via", "reports", "--since", &old], "two years"),
        (&["--since", &since, "--wait"], "--via reports only"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["backfill", "--tenant", "t1"];
        all.extend_from_slice(args);
        let out = crate::cli::run(crate::cli::keybuzz(&sim, &pool, dir.path()), &all).await;
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {}",
            crate::cli::text(&out)
        );
        assert!(
            crate::cli::text(&out).contains(expected),
            "{}",
            crate::cli::text(&out)
        );
    }
    assert!(sim.requests().is_empty(), "nothing was asked of Amazon");
}
