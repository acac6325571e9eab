//! A batch of report orders into `orders`, `order_items`, `report_staged_items` and
//! `order_quarantine`, with the job's progress, in one transaction: the report's merge rules.
//!
//! Merge rules (README, "Report imports"):
//! - a report order is written only when it is new, or strictly newer (`LastUpdatedDate`) than
//!   the stored copy: it never overwrites a newer Orders API copy, and on a tie the stored copy
//!   (the Orders API's, or an identical report's) stays;
//! - when it overwrites, what the report lacks keeps its stored value: the order total, a
//!   marketplace id the sales channel does not name, and on items any value the report left
//!   empty (an amount, `quantity_shipped`); an empty report value never overwrites a stored
//!   money field;
//! - items are merged by `(tenant, order, item id)`, never replaced as a list: when a stored
//!   order's item ids differ from the report's, the difference is returned for a log line and
//!   no stored item is deleted;
//! - items without an item code go to `report_staged_items` (replacing what an earlier report
//!   staged for that order), and the order is marked `items_stale` so that the Orders API
//!   supplies the ids; the rows of an order whose items are complete are dropped;
//! - unreadable orders are quarantined unless a copy of the order is stored (nothing is lost
//!   then, and the quarantine keeps meaning "Amazon sent something we could not store");
//! - `source_api` of every row written is `report:<reportType>:<reportId>`.
//!
//! Orders seen for the first time are `COPY`-ed straight into the tables (the fast path of a
//! first import); the others go through set-based statements (see [`super::bulk`]).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection, Postgres, Transaction};
use tracing::instrument;

use super::PgStore;
use super::bulk::{ITEMS_BY_ORDER_ID, ItemColumns, copy_rows};
use super::report_jobs::record_job_progress;
use super::runs::record_tally;
use crate::error::Result;
use crate::model::{
    ImportCounts, ItemRecord, MARKETPLACE, ReportEntry, ReportOrder, RunTally, TenantId,
};

/// One batch of a report document.
pub struct ImportBatch<'a> {
    pub job_id: i64,
    /// `report:<reportType>:<reportId>`.
    pub source: &'a str,
    pub entries: &'a [ReportEntry],
    /// Messages of the document committed once this batch is.
    pub messages_done: i64,
}

/// A stored order whose item ids differ from the report's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemIdChange {
    pub order_id: String,
    pub stored: Vec<String>,
    pub reported: Vec<String>,
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchResult {
    pub counts: ImportCounts,
    pub item_id_changes: Vec<ItemIdChange>,
}

const COPY_ORDERS: &str = "COPY orders (tenant_id, marketplace, external_order_id, marketplace_id,
    status, purchase_date, last_update_date, fulfillment_channel, order_total_amount,
    order_total_currency, source_api, raw, items_stale, items_fetched_at, items_fetched_status,
    items_error) FROM STDIN";

const COPY_ITEMS: &str = "COPY order_items (tenant_id, marketplace, source_api, external_order_id,
    order_item_id, asin, seller_sku, title, quantity_ordered, quantity_shipped, item_price_amount,
    item_tax_amount, shipping_price_amount, promotion_discount_amount, currency, raw) FROM STDIN";

fn items_error(o: &ReportOrder) -> Option<String> {
    match (o.items.is_empty(), o.staged.len()) {
        (_, 0) if !o.items.is_empty() => None,
        (true, 0) => Some("the report listed no items for this order".to_owned()),
        (_, n) => Some(format!(
            "the report listed {n} item(s) without an AmazonOrderItemCode (Pending): waiting for the Orders API"
        )),
    }
}

impl PgStore {
    /// Writes one batch with the report's merge rules and records the job's progress (and the
    /// run's numbers, `tally`), all in one transaction checked against the pass's fence.
    #[instrument(skip_all, fields(tenant = %tenant, job = batch.job_id, entries = batch.entries.len()))]
    pub async fn import_report_batch(
        &self,
        tenant: &TenantId,
        batch: &ImportBatch<'_>,
        tally: Option<&dyn Fn(&ImportCounts) -> RunTally>,
    ) -> Result<BatchResult> {
        let mut c = self.conn().await?;
        let mut tx = c.begin().await?;
        self.check_fence(&mut tx).await?;
        let mut result = write_batch(&mut tx, tenant, batch).await?;
        record_job_progress(
            &mut tx,
            tenant,
            batch.job_id,
            batch.messages_done,
            &result.counts,
        )
        .await?;
        if let Some(tally) = tally {
            record_tally(&mut tx, tenant, &tally(&result.counts)).await?;
        }
        tx.commit().await?;
        result.counts.item_id_changes = result.item_id_changes.len() as u64;
        Ok(result)
    }
}

async fn write_batch(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    batch: &ImportBatch<'_>,
) -> Result<BatchResult> {
    let mut counts = ImportCounts::default();
    // One copy per order: the latest update (a document may list an order twice).
    let mut latest: HashMap<&str, &ReportOrder> = HashMap::new();
    let mut unreadable: Vec<(Option<&str>, &Value, &str)> = Vec::new();
    for entry in batch.entries {
        match entry {
            ReportEntry::Order(o) => {
                let id = o.order.external_order_id.as_str();
                match latest.get(id) {
                    Some(kept) if kept.order.last_update_date > o.order.last_update_date => {
                        counts.orders_skipped += 1;
                    }
                    Some(_) => {
                        counts.orders_skipped += 1;
                        latest.insert(id, o);
                    }
                    None => {
                        latest.insert(id, o);
                    }
                }
            }
            ReportEntry::OtherMarketplace { .. } => counts.orders_foreign += 1,
            ReportEntry::Unreadable {
                order_id,
                raw,
                error,
            } => unreadable.push((order_id.as_deref(), raw, error.as_str())),
        }
    }
    let mut orders: Vec<&ReportOrder> = latest.into_values().collect();
    orders.sort_by(|a, b| a.order.external_order_id.cmp(&b.order.external_order_id));

    // What is stored of these orders.
    let ids: Vec<&str> = orders
        .iter()
        .map(|o| o.order.external_order_id.as_str())
        .collect();
    let stored: HashMap<String, DateTime<Utc>> = sqlx::query_as::<_, (String, DateTime<Utc>)>(
        "SELECT k.order_id, p.last_update_date FROM unnest($3::text[]) AS k(order_id)
          CROSS JOIN LATERAL (SELECT last_update_date FROM orders
                               WHERE tenant_id = $1 AND marketplace = $2
                                 AND external_order_id = k.order_id OFFSET 0) p",
    )
    .bind(tenant.as_str())
    .bind(MARKETPLACE)
    .bind(&ids)
    .persistent(false)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .collect();
    let (mut new, mut newer) = (Vec::new(), Vec::new());
    for o in orders {
        match stored.get(&o.order.external_order_id) {
            None => new.push(o),
            Some(at) if *at < o.order.last_update_date => newer.push(o),
            // The stored copy is newer, or the same update (an Orders API copy wins a tie).
            Some(_) => counts.orders_skipped += 1,
        }
    }

    let now = Utc::now();
    let source = batch.source;
    if !new.is_empty() {
        counts.orders_imported += copy_rows(tx, COPY_ORDERS, &new, |out, o| {
            let r = &o.order;
            let complete = o.items_complete();
            out.text(Some(tenant.as_str()))
                .text(Some(MARKETPLACE))
                .text(Some(&r.external_order_id))
                .text(r.marketplace_id.as_deref())
                .text(Some(r.status.as_str()))
                .time(r.purchase_date)
                .time(r.last_update_date)
                .text(r.fulfillment_channel.as_deref())
                .display(r.order_total_amount)
                .text(r.order_total_currency.as_deref())
                .text(Some(source))
                .json(&r.raw)
                .text(Some(if complete { "f" } else { "t" }))
                .display(complete.then(|| now.to_rfc3339()))
                .text(complete.then(|| r.status.as_str()))
                .text(items_error(o).as_deref());
        })
        .await?;
        let rows: Vec<(&str, ItemRecord)> = new
            .iter()
            .flat_map(|o| {
                o.items
                    .iter()
                    .map(|i| (o.order.external_order_id.as_str(), i.new_row()))
            })
            .collect();
        if !rows.is_empty() {
            counts.items_imported += copy_rows(tx, COPY_ITEMS, &rows, |out, (order_id, i)| {
                out.text(Some(tenant.as_str()))
                    .text(Some(MARKETPLACE))
                    .text(Some(source))
                    .text(Some(order_id))
                    .text(Some(&i.order_item_id))
                    .text(i.asin.as_deref())
                    .text(i.seller_sku.as_deref())
                    .text(i.title.as_deref())
                    .display(Some(i.quantity_ordered))
                    .display(i.quantity_shipped)
                    .display(i.item_price_amount)
                    .display(i.item_tax_amount)
                    .display(i.shipping_price_amount)
                    .display(i.promotion_discount_amount)
                    .text(i.currency.as_deref())
                    .json(&i.raw);
            })
            .await?;
        }
    }

    let mut item_id_changes = Vec::new();
    let mut written: Vec<&ReportOrder> = new.clone();
    if !newer.is_empty() {
        let won = update_orders(tx, tenant, source, &newer).await?;
        counts.orders_imported += won.len() as u64;
        newer.retain(|o| won.contains(o.order.external_order_id.as_str()));
        let (changes, items) = merge_items(tx, tenant, source, &newer).await?;
        item_id_changes = changes;
        counts.items_imported += items;
        written.extend(newer.iter().copied());
    }

    if !written.is_empty() {
        let ids: Vec<&str> = written
            .iter()
            .map(|o| o.order.external_order_id.as_str())
            .collect();
        // Most tenants have nothing quarantined or staged: a small question saves sending every
        // id of the batch twice.
        let (quarantined, staged): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM order_quarantine WHERE tenant_id = $1 AND marketplace = $2),
                    EXISTS (SELECT 1 FROM report_staged_items WHERE tenant_id = $1 AND marketplace = $2)",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .persistent(false)
        .fetch_one(&mut **tx)
        .await?;
        if quarantined {
            // A readable copy that was stored supersedes a quarantined one.
            sqlx::query(
                "DELETE FROM order_quarantine
                  WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = ANY($3)",
            )
            .bind(tenant.as_str())
            .bind(MARKETPLACE)
            .bind(&ids)
            .persistent(false)
            .execute(&mut **tx)
            .await?;
        }
        counts.items_staged +=
            stage_items(tx, tenant, source, staged.then_some(&ids[..]), &written).await?;
    }

    if !unreadable.is_empty() {
        counts.orders_quarantined += sqlx::query(
            "INSERT INTO order_quarantine (tenant_id, marketplace, external_order_id, source_api, raw, error)
             SELECT $1, $2, COALESCE(u.order_id, 'unidentified:' || md5(u.raw::text)), $3, u.raw, u.error
               FROM UNNEST($4::text[], $5::jsonb[], $6::text[]) AS u(order_id, raw, error)
              WHERE u.order_id IS NULL OR NOT EXISTS (
                    SELECT 1 FROM orders o WHERE o.tenant_id = $1 AND o.marketplace = $2
                       AND o.external_order_id = u.order_id)
             ON CONFLICT (tenant_id, marketplace, external_order_id) DO UPDATE SET
                 source_api = EXCLUDED.source_api, raw = EXCLUDED.raw, error = EXCLUDED.error,
                 last_seen_at = now()
             WHERE order_quarantine.source_api LIKE 'report:%'",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .bind(source)
        .bind(unreadable.iter().map(|u| u.0).collect::<Vec<_>>())
        .bind(unreadable.iter().map(|u| u.1).collect::<Vec<_>>())
        .bind(unreadable.iter().map(|u| u.2).collect::<Vec<_>>())
        .persistent(false)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        // The others have a stored copy: nothing is lost.
        counts.orders_skipped += unreadable.len() as u64 - counts.orders_quarantined;
    }
    Ok(BatchResult {
        counts,
        item_id_changes,
    })
}

/// Overwrites the stored orders the report has newer copies of; returns those it wrote (a
/// stored copy that became newer meanwhile is left alone).
async fn update_orders(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    source: &str,
    orders: &[&ReportOrder],
) -> Result<BTreeSet<String>> {
    let ids: Vec<&str> = orders
        .iter()
        .map(|o| o.order.external_order_id.as_str())
        .collect();
    let errors: Vec<Option<String>> = orders.iter().map(|o| items_error(o)).collect();
    let written: Vec<String> = sqlx::query_scalar(
        "UPDATE orders o SET status = u.status, purchase_date = u.purchase_date,
                last_update_date = u.last_update_date,
                fulfillment_channel = COALESCE(u.fulfillment_channel, o.fulfillment_channel),
                marketplace_id = COALESCE(u.marketplace_id, o.marketplace_id),
                raw = u.raw, source_api = $3,
                items_stale = NOT u.complete, items_error = u.items_error,
                items_fetched_at = CASE WHEN u.complete THEN now() ELSE o.items_fetched_at END,
                items_fetched_status = CASE WHEN u.complete THEN u.status ELSE o.items_fetched_status END,
                updated_at = now()
           FROM (SELECT k.*, p.id
                   FROM UNNEST($4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[],
                               $8::text[], $9::text[], $10::jsonb[], $11::bool[], $12::text[])
                     AS k(order_id, status, purchase_date, last_update_date, fulfillment_channel,
                          marketplace_id, raw, complete, items_error)
                  CROSS JOIN LATERAL (SELECT id FROM orders
                                       WHERE tenant_id = $1 AND marketplace = $2
                                         AND external_order_id = k.order_id OFFSET 0) p) u
          WHERE o.id = u.id AND o.last_update_date < u.last_update_date
         RETURNING o.external_order_id",
    )
    .bind(tenant.as_str())
    .bind(MARKETPLACE)
    .bind(source)
    .bind(&ids)
    .bind(orders.iter().map(|o| o.order.status.as_str()).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.order.purchase_date).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.order.last_update_date).collect::<Vec<_>>())
    .bind(
        orders
            .iter()
            .map(|o| o.order.fulfillment_channel.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(
        orders
            .iter()
            .map(|o| o.order.marketplace_id.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(orders.iter().map(|o| &o.order.raw).collect::<Vec<_>>())
    .bind(orders.iter().map(|o| o.items_complete()).collect::<Vec<_>>())
    .bind(errors)
    .persistent(false)
    .fetch_all(&mut **tx)
    .await?;
    Ok(written.into_iter().collect())
}

/// Merges the items of orders the report overwrote: stored items take what the report says,
/// keeping their stored value where the report has none; new ids are inserted; none is
/// deleted. Returns the orders whose id sets differ, and the items written.
async fn merge_items(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    source: &str,
    orders: &[&ReportOrder],
) -> Result<(Vec<ItemIdChange>, u64)> {
    if orders.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let ids: Vec<&str> = orders
        .iter()
        .map(|o| o.order.external_order_id.as_str())
        .collect();
    let existing: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT u.external_order_id, u.order_item_id FROM {ITEMS_BY_ORDER_ID}"
    )))
    .bind(tenant.as_str())
    .bind(MARKETPLACE)
    .bind(&ids)
    .persistent(false)
    .fetch_all(&mut **tx)
    .await?;
    let mut stored: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for (order, item) in &existing {
        stored
            .entry(order.as_str())
            .or_default()
            .insert(item.as_str());
    }

    let mut changes = Vec::new();
    let mut updates = ItemColumns::default();
    let mut inserts: Vec<(&str, ItemRecord)> = Vec::new();
    for o in orders {
        let id = o.order.external_order_id.as_str();
        let have = stored.get(id).cloned().unwrap_or_default();
        let reported: BTreeSet<&str> = o
            .items
            .iter()
            .map(|i| i.item.order_item_id.as_str())
            .collect();
        if !have.is_empty() && !reported.is_empty() && have != reported {
            changes.push(ItemIdChange {
                order_id: id.to_owned(),
                stored: have.iter().map(|s| s.to_string()).collect(),
                reported: reported.iter().map(|s| s.to_string()).collect(),
            });
        }
        for item in &o.items {
            if have.contains(item.item.order_item_id.as_str()) {
                updates.push(id, &item.item);
            } else {
                inserts.push((id, item.new_row()));
            }
        }
    }
    let mut written = 0;
    if !updates.is_empty() {
        written += updates
            .bind(
                sqlx::query(
                    "UPDATE order_items i SET asin = COALESCE(u.asin, i.asin),
                            seller_sku = COALESCE(u.seller_sku, i.seller_sku),
                            title = COALESCE(u.title, i.title),
                            quantity_ordered = u.quantity_ordered,
                            quantity_shipped = COALESCE(u.quantity_shipped, i.quantity_shipped),
                            item_price_amount = COALESCE(u.item_price_amount, i.item_price_amount),
                            item_tax_amount = COALESCE(u.item_tax_amount, i.item_tax_amount),
                            shipping_price_amount = COALESCE(u.shipping_price_amount, i.shipping_price_amount),
                            promotion_discount_amount = COALESCE(u.promotion_discount_amount, i.promotion_discount_amount),
                            currency = COALESCE(u.currency, i.currency),
                            raw = u.raw, source_api = $3, updated_at = now()
                       FROM (SELECT k.*, p.id
                               FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                                           $9::integer[], $10::integer[], $11::numeric[], $12::numeric[],
                                           $13::numeric[], $14::numeric[], $15::text[], $16::jsonb[])
                                 AS k(external_order_id, order_item_id, asin, seller_sku, title,
                                      quantity_ordered, quantity_shipped, item_price_amount,
                                      item_tax_amount, shipping_price_amount,
                                      promotion_discount_amount, currency, raw)
                              CROSS JOIN LATERAL (SELECT id FROM order_items
                                                   WHERE tenant_id = $1 AND marketplace = $2
                                                     AND external_order_id = k.external_order_id
                                                     AND order_item_id = k.order_item_id OFFSET 0) p) u
                      WHERE i.id = u.id",
                )
                .bind(tenant.as_str())
                .bind(MARKETPLACE)
                .bind(source),
            )
            .persistent(false)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    if !inserts.is_empty() {
        let mut columns = ItemColumns::default();
        for (order_id, item) in &inserts {
            columns.push(order_id, item);
        }
        written += columns
            .bind(
                sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO order_items (tenant_id, marketplace, source_api, external_order_id,
                                              order_item_id, asin, seller_sku, title, quantity_ordered,
                                              quantity_shipped, item_price_amount, item_tax_amount,
                                              shipping_price_amount, promotion_discount_amount,
                                              currency, raw)
                     SELECT $1, $2, $3, u.* FROM {}
                     ON CONFLICT (tenant_id, marketplace, external_order_id, order_item_id) DO NOTHING",
                    super::bulk::UNNEST_ITEMS
                )))
                .bind(tenant.as_str())
                .bind(MARKETPLACE)
                .bind(source),
            )
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    Ok((changes, written))
}

/// Replaces what is staged for the orders written with their code-less items; `replace` names
/// the orders whose earlier staged rows go first (`None`: the tenant has none).
async fn stage_items(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    source: &str,
    replace: Option<&[&str]>,
    orders: &[&ReportOrder],
) -> Result<u64> {
    if let Some(ids) = replace {
        sqlx::query(
            "DELETE FROM report_staged_items
              WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = ANY($3)",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .bind(ids)
        .persistent(false)
        .execute(&mut **tx)
        .await?;
    }
    let staged: Vec<(&str, &crate::model::StagedItem)> = orders
        .iter()
        .flat_map(|o| {
            o.staged
                .iter()
                .map(|s| (o.order.external_order_id.as_str(), s))
        })
        .collect();
    if staged.is_empty() {
        return Ok(0);
    }
    let n = sqlx::query(
        "INSERT INTO report_staged_items (tenant_id, marketplace, source_api, external_order_id,
                                          position, asin, seller_sku, title, quantity_ordered,
                                          item_status, raw)
         SELECT $1, $2, $3, u.* FROM UNNEST($4::text[], $5::integer[], $6::text[], $7::text[],
                                            $8::text[], $9::integer[], $10::text[], $11::jsonb[])
           AS u(external_order_id, position, asin, seller_sku, title, quantity_ordered, item_status, raw)",
    )
    .bind(tenant.as_str())
    .bind(MARKETPLACE)
    .bind(source)
    .bind(staged.iter().map(|s| s.0).collect::<Vec<_>>())
    .bind(staged.iter().map(|s| s.1.position).collect::<Vec<_>>())
    .bind(staged.iter().map(|s| s.1.asin.as_deref()).collect::<Vec<_>>())
    .bind(staged.iter().map(|s| s.1.seller_sku.as_deref()).collect::<Vec<_>>())
    .bind(staged.iter().map(|s| s.1.title.as_deref()).collect::<Vec<_>>())
    .bind(staged.iter().map(|s| s.1.quantity_ordered).collect::<Vec<_>>())
    .bind(staged.iter().map(|s| s.1.item_status.as_deref()).collect::<Vec<_>>())
    .bind(staged.iter().map(|s| &s.1.raw).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n)
}
