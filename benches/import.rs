//! How fast rows reach Postgres: the same orders and items written by
//! (a) the row-by-row path the delta used up to migration 0003 (a frozen copy of its statements,
//!     one transaction per page of 100),
//! (b) the bulk path (`COPY` into staging tables, then set-based merges): the delta's
//!     `write_page` per page of 100, and the report import's batches,
//! (c) a bare `COPY` of the same rows into the same (empty) tables, the floor.
//! Each variant starts from empty tables; the variants take turns, several rounds, and the
//! median of each is reported with its speed relative to the bare `COPY`.
//!
//! `cargo bench --bench import` writes 10,000 orders (about 25,000 items) fetched from the
//! simulator through Orders API v2026 (so `raw` is Amazon's real shape), in a scratch database on
//! `DATABASE_URL`'s server. Under `cargo test` (no `--bench` argument) it runs a 300-order smoke
//! version of the same, checking that every variant writes the same rows.

use std::time::{Duration, Instant};

use chrono::Utc;
use keybuzz_sync::config::{AppCredentials, Endpoints, SyncConfig, SyncSettings, TenantConfig};
use keybuzz_sync::model::{
    ItemRecord, ItemsUpdate, JobPurpose, MARKETPLACE, OrderRecord, OrderWrite, OrdersApi,
    PageProgress, Region, ReportEntry, ReportItem, ReportOrder, ReportType, Secret, SyncWindow,
    TenantId,
};
use keybuzz_sync::store::{ImportBatch, JobChange, PgStore};
use keybuzz_sync::sync::{Connector, OrdersSource};
use spapi_sim::{SimConfig, SimHandle};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};

const TENANT: &str = "bench";

/// The orders of the benchmark, as the v2026 source maps them.
async fn fetch_orders(count: usize) -> Vec<(OrderRecord, Vec<ItemRecord>)> {
    let sim = SimHandle::start(SimConfig {
        rate_scale: 1e6,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let now = Utc::now();
    sim.seed_orders(
        "S",
        count,
        3,
        now - chrono::Duration::hours(1),
        chrono::Duration::days(25),
    );
    sim.grant("Atzr|bench", "S");
    let tenant = TenantConfig {
        id: TenantId::parse(TENANT).unwrap(),
        refresh_token: Secret::new("Atzr|bench"),
        region: Region::Eu,
        marketplace_ids: vec![spapi_sim::SEED_MARKETPLACE.to_owned()],
        orders_api: OrdersApi::V2026,
        include_pii: false,
        initial_import: Default::default(),
    };
    let config = SyncConfig {
        tenants_dir: std::env::temp_dir(),
        credentials: AppCredentials {
            client_id: "sim-client-id".into(),
            client_secret: Secret::new("sim-client-secret"),
        },
        endpoints: Endpoints::new(Some(&sim.base_url()), Some(&sim.lwa_token_url())).unwrap(),
        settings: SyncSettings::default(),
    };
    let source = Connector::new(&config, None).unwrap().source(&tenant);
    let window = SyncWindow {
        after: now - chrono::Duration::days(30),
        before: now - chrono::Duration::minutes(5),
    };
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = source.orders_page(&window, token.as_deref()).await.unwrap();
        out.extend(page.orders.into_iter().map(|o| (o.order, o.items.unwrap())));
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => return out,
        }
    }
}

/// (a) The page write of migration 0003's delta, frozen here as it was: one multi-row upsert
/// (arrays), items deleted and re-inserted with a bind parameter per value (1,000 rows per
/// statement), then the items bookkeeping.
async fn old_page(
    tx: &mut Transaction<'_, Postgres>,
    page: &[(OrderRecord, Vec<ItemRecord>)],
) -> sqlx::Result<()> {
    let ids: Vec<&str> = page
        .iter()
        .map(|(o, _)| o.external_order_id.as_str())
        .collect();
    sqlx::query(
        "DELETE FROM order_quarantine
          WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = ANY($3)",
    )
    .bind(TENANT)
    .bind(MARKETPLACE)
    .bind(&ids)
    .execute(&mut **tx)
    .await?;
    let text =
        |f: fn(&OrderRecord) -> Option<String>| page.iter().map(|(o, _)| f(o)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO orders (tenant_id, marketplace, source_api, items_stale, external_order_id,
                             marketplace_id, status, purchase_date, last_update_date,
                             fulfillment_channel, order_total_amount, order_total_currency, raw)
         SELECT $1, $2, $3, true, u.*
           FROM UNNEST($4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::timestamptz[],
                       $9::text[], $10::numeric[], $11::text[], $12::jsonb[])
             AS u(external_order_id, marketplace_id, status, purchase_date, last_update_date,
                  fulfillment_channel, order_total_amount, order_total_currency, raw)
         ON CONFLICT (tenant_id, marketplace, external_order_id) DO UPDATE SET
             marketplace_id = EXCLUDED.marketplace_id, status = EXCLUDED.status,
             purchase_date = EXCLUDED.purchase_date, last_update_date = EXCLUDED.last_update_date,
             fulfillment_channel = EXCLUDED.fulfillment_channel,
             order_total_amount = EXCLUDED.order_total_amount,
             order_total_currency = EXCLUDED.order_total_currency,
             source_api = EXCLUDED.source_api, raw = EXCLUDED.raw,
             items_stale = orders.items_stale
                 OR orders.last_update_date <> EXCLUDED.last_update_date
                 OR orders.status <> EXCLUDED.status,
             updated_at = now()
         WHERE orders.last_update_date < EXCLUDED.last_update_date
            OR (orders.last_update_date = EXCLUDED.last_update_date AND orders.raw IS DISTINCT FROM EXCLUDED.raw)",
    )
    .bind(TENANT)
    .bind(MARKETPLACE)
    .bind(OrdersApi::V2026.as_str())
    .bind(text(|o| Some(o.external_order_id.clone())))
    .bind(text(|o| o.marketplace_id.clone()))
    .bind(text(|o| Some(o.status.as_str().to_owned())))
    .bind(page.iter().map(|(o, _)| o.purchase_date).collect::<Vec<_>>())
    .bind(page.iter().map(|(o, _)| o.last_update_date).collect::<Vec<_>>())
    .bind(text(|o| o.fulfillment_channel.clone()))
    .bind(page.iter().map(|(o, _)| o.order_total_amount).collect::<Vec<_>>())
    .bind(text(|o| o.order_total_currency.clone()))
    .bind(page.iter().map(|(o, _)| o.raw.clone()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM order_items WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = ANY($3)",
    )
    .bind(TENANT)
    .bind(MARKETPLACE)
    .bind(&ids)
    .execute(&mut **tx)
    .await?;
    let rows: Vec<(&str, &ItemRecord)> = page
        .iter()
        .flat_map(|(o, items)| items.iter().map(|i| (o.external_order_id.as_str(), i)))
        .collect();
    for chunk in rows.chunks(1_000) {
        let mut insert = sqlx::QueryBuilder::<Postgres>::new(
            "INSERT INTO order_items (tenant_id, marketplace, external_order_id, order_item_id, asin,
                                      seller_sku, title, quantity_ordered, quantity_shipped,
                                      item_price_amount, item_tax_amount, shipping_price_amount,
                                      promotion_discount_amount, currency, raw) ",
        );
        insert.push_values(chunk, |mut row, (order_id, item)| {
            row.push_bind(TENANT)
                .push_bind(MARKETPLACE)
                .push_bind(*order_id)
                .push_bind(&item.order_item_id)
                .push_bind(&item.asin)
                .push_bind(&item.seller_sku)
                .push_bind(&item.title)
                .push_bind(item.quantity_ordered)
                .push_bind(item.quantity_shipped)
                .push_bind(item.item_price_amount)
                .push_bind(item.item_tax_amount)
                .push_bind(item.shipping_price_amount)
                .push_bind(item.promotion_discount_amount)
                .push_bind(&item.currency)
                .push_bind(&item.raw);
        });
        insert.build().execute(&mut **tx).await?;
    }
    sqlx::query(
        "UPDATE orders SET items_stale = false, items_fetched_at = now(),
                items_fetched_status = status, items_error = NULL
          WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = ANY($3)",
    )
    .bind(TENANT)
    .bind(MARKETPLACE)
    .bind(&ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A `COPY` text-format value: `\N` for NULL; `\`, tab, newline and carriage return escaped.
fn copy_value(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => out.extend_from_slice(b"\\N"),
        Some(v) => {
            for &b in v.as_bytes() {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b => out.push(b),
                }
            }
        }
    }
}

fn copy_row(out: &mut Vec<u8>, values: &[Option<String>]) {
    for (n, v) in values.iter().enumerate() {
        if n > 0 {
            out.push(b'\t');
        }
        copy_value(out, v.as_deref());
    }
    out.push(b'\n');
}

/// (c) The floor: the same rows, `COPY`-ed straight into `orders` and `order_items` in one
/// transaction (text format, 1 MiB per `CopyData`), no staging and no merge rule.
async fn plain_copy(pool: &PgPool, orders: &[(OrderRecord, Vec<ItemRecord>)]) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    let t = |v: &str| Some(v.to_owned());
    let o = |v: &Option<String>| v.clone();
    let d = |v: Option<rust_decimal::Decimal>| v.map(|d| d.to_string());
    let time = |v: chrono::DateTime<Utc>| Some(v.to_rfc3339());
    let api = OrdersApi::V2026.as_str();
    let mut copy = tx
        .copy_in_raw(
            "COPY orders (tenant_id, marketplace, external_order_id, marketplace_id, status,
                purchase_date, last_update_date, fulfillment_channel, order_total_amount,
                order_total_currency, source_api, raw, items_stale) FROM STDIN",
        )
        .await?;
    let mut buf = Vec::new();
    for (order, _) in orders {
        copy_row(
            &mut buf,
            &[
                t(TENANT),
                t(MARKETPLACE),
                t(&order.external_order_id),
                o(&order.marketplace_id),
                t(order.status.as_str()),
                time(order.purchase_date),
                time(order.last_update_date),
                o(&order.fulfillment_channel),
                d(order.order_total_amount),
                o(&order.order_total_currency),
                t(api),
                Some(order.raw.to_string()),
                t("f"),
            ],
        );
        if buf.len() > 1 << 20 {
            copy.send(std::mem::take(&mut buf)).await?;
        }
    }
    copy.send(std::mem::take(&mut buf)).await?;
    copy.finish().await?;
    let mut copy = tx
        .copy_in_raw(
            "COPY order_items (tenant_id, marketplace, source_api, external_order_id, order_item_id,
                asin, seller_sku, title, quantity_ordered, quantity_shipped, item_price_amount,
                item_tax_amount, shipping_price_amount, promotion_discount_amount, currency, raw)
             FROM STDIN",
        )
        .await?;
    for (order, items) in orders {
        for i in items {
            copy_row(
                &mut buf,
                &[
                    t(TENANT),
                    t(MARKETPLACE),
                    t(api),
                    t(&order.external_order_id),
                    t(&i.order_item_id),
                    o(&i.asin),
                    o(&i.seller_sku),
                    o(&i.title),
                    Some(i.quantity_ordered.to_string()),
                    i.quantity_shipped.map(|q| q.to_string()),
                    d(i.item_price_amount),
                    d(i.item_tax_amount),
                    d(i.shipping_price_amount),
                    d(i.promotion_discount_amount),
                    o(&i.currency),
                    Some(i.raw.to_string()),
                ],
            );
            if buf.len() > 1 << 20 {
                copy.send(std::mem::take(&mut buf)).await?;
            }
        }
    }
    copy.send(buf).await?;
    copy.finish().await?;
    tx.commit().await
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    OldPages,
    BulkPages,
    ReportBatches,
    PlainCopy,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::OldPages => "(a) row-by-row path (0003), pages of 100",
            Variant::BulkPages => "(b) bulk path: delta write_page, pages of 100",
            Variant::ReportBatches => "(b) bulk path: report import, batches of 2,000",
            Variant::PlainCopy => "(c) bare COPY into the same tables, one transaction",
        }
    }
}

async fn empty_tables(pool: &PgPool) {
    sqlx::raw_sql("TRUNCATE orders, order_items, report_staged_items, order_quarantine")
        .execute(pool)
        .await
        .unwrap();
    // Same starting point for every variant: no dead rows, fresh statistics.
    sqlx::raw_sql("VACUUM ANALYZE orders, order_items")
        .execute(pool)
        .await
        .unwrap();
}

async fn run(
    variant: Variant,
    store: &PgStore,
    pool: &PgPool,
    orders: &[(OrderRecord, Vec<ItemRecord>)],
) -> Duration {
    let tenant = TenantId::parse(TENANT).unwrap();
    // Inputs in the shape each path takes, built before the clock starts.
    let size = if variant == Variant::BulkPages {
        100
    } else {
        2_000
    };
    let writes: Vec<OrderWrite> = orders
        .iter()
        .map(|(o, items)| OrderWrite {
            order: o.clone(),
            items: ItemsUpdate::Replace(items.clone()),
        })
        .collect();
    let entries: Vec<ReportEntry> = orders
        .iter()
        .map(|(o, items)| {
            ReportEntry::Order(ReportOrder {
                order: o.clone(),
                items: items
                    .iter()
                    .map(|i| ReportItem {
                        item: i.clone(),
                        priced: true,
                    })
                    .collect(),
                staged: Vec::new(),
            })
        })
        .collect();
    let batches: Vec<(&[OrderWrite], Vec<String>)> = writes
        .chunks(size)
        .map(|c| {
            (
                c,
                c.iter()
                    .map(|w| w.order.external_order_id.clone())
                    .collect(),
            )
        })
        .collect();
    empty_tables(pool).await;
    let started = Instant::now();
    match variant {
        Variant::OldPages => {
            for page in orders.chunks(100) {
                let mut tx = pool.begin().await.unwrap();
                old_page(&mut tx, page).await.unwrap();
                tx.commit().await.unwrap();
            }
        }
        Variant::BulkPages => {
            let window = SyncWindow {
                after: Utc::now() - chrono::Duration::days(40),
                before: Utc::now(),
            };
            for (writes, ids) in &batches {
                let progress = PageProgress::Backfill {
                    window,
                    last_page: false,
                };
                store
                    .write_page(&tenant, OrdersApi::V2026, ids, writes, &[], &progress, None)
                    .await
                    .unwrap();
            }
        }
        Variant::ReportBatches => {
            // A job ready for import, as a report pass leaves it.
            let window = SyncWindow {
                after: Utc::now() - chrono::Duration::days(30),
                before: Utc::now(),
            };
            let job = store
                .plan_report_jobs(
                    &tenant,
                    JobPurpose::Backfill,
                    ReportType::ByLastUpdate,
                    &[window],
                )
                .await
                .unwrap()[0]
                .id;
            for change in [
                JobChange::Requested {
                    report_id: "B1".into(),
                },
                JobChange::Ready {
                    document_id: "D1".into(),
                },
            ] {
                store
                    .change_report_job(&tenant, job, &change)
                    .await
                    .unwrap();
            }
            let source = keybuzz_sync::model::report_source(ReportType::ByLastUpdate.name(), "B1");
            for (n, batch) in entries.chunks(2_000).enumerate() {
                let batch = ImportBatch {
                    job_id: job,
                    source: &source,
                    entries: batch,
                    messages_done: ((n + 1) * 2_000) as i64,
                };
                store
                    .import_report_batch(&tenant, &batch, None)
                    .await
                    .unwrap();
            }
            sqlx::query("DELETE FROM report_jobs")
                .execute(pool)
                .await
                .unwrap();
        }
        Variant::PlainCopy => plain_copy(pool, orders).await.unwrap(),
    }
    let elapsed = started.elapsed();
    let (n_orders, n_items): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM order_items)")
            .fetch_one(pool)
            .await
            .unwrap();
    let expected_items: usize = orders.iter().map(|(_, i)| i.len()).sum();
    assert_eq!(n_orders as usize, orders.len(), "{variant:?}");
    assert_eq!(n_items as usize, expected_items, "{variant:?}");
    elapsed
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (count, rounds) = if full { (10_000, 3) } else { (300, 1) };
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("import bench: DATABASE_URL is not set; skipped");
        return;
    };
    let db = format!("keybuzz_bench_import_{}", std::process::id());
    let mut admin = PgConnection::connect(&url)
        .await
        .expect("DATABASE_URL reachable");
    sqlx::raw_sql(format!("CREATE DATABASE {db}").leak() as &'static str)
        .execute(&mut admin)
        .await
        .unwrap();
    let base = url.split('?').next().unwrap();
    let bench_url = format!("{}/{db}", &base[..base.rfind('/').unwrap()]);
    let store = PgStore::connect(&Secret::new(bench_url.clone()), 4)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let pool = PgPool::connect(&bench_url).await.unwrap();

    let orders = fetch_orders(count).await;
    let items: usize = orders.iter().map(|(_, i)| i.len()).sum();
    let raw: usize = orders
        .iter()
        .map(|(o, i)| {
            o.raw.to_string().len() + i.iter().map(|i| i.raw.to_string().len()).sum::<usize>()
        })
        .sum();
    println!(
        "import bench: {} orders, {items} items, {:.1} MiB of raw JSON; median of {rounds} rounds",
        orders.len(),
        raw as f64 / (1 << 20) as f64
    );
    let variants = [
        Variant::PlainCopy,
        Variant::ReportBatches,
        Variant::BulkPages,
        Variant::OldPages,
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        // Take turns, starting from a different variant each round, so that a burst of load
        // on this shared machine does not land on one variant only.
        for k in 0..variants.len() {
            let v = (round + k) % variants.len();
            times[v].push(run(variants[v], &store, &pool, &orders).await);
        }
    }
    let copy = median(times[0].clone());
    for (variant, times) in variants.iter().zip(times) {
        let t = median(times);
        println!(
            "  {:<58} {:>7.2} s  {:>7.0} rows/s  speed vs COPY {:>5.2}",
            variant.label(),
            t.as_secs_f64(),
            (orders.len() + items) as f64 / t.as_secs_f64(),
            copy.as_secs_f64() / t.as_secs_f64()
        );
    }
    drop(store);
    pool.close().await;
    sqlx::raw_sql(format!("DROP DATABASE {db} WITH (FORCE)").leak() as &'static str)
        .execute(&mut admin)
        .await
        .unwrap();
}
