//! `order_items`, and the items bookkeeping on `orders` (`items_stale`, `items_error`,
//! `items_attempted_at`): replacing an order's items as a whole, marking them pending, and
//! choosing which orders' items to fetch next.

use sqlx::Connection;
use sqlx::{Postgres, Transaction};
use tracing::instrument;

use super::PgStore;
use crate::error::{Error, Result};
use crate::model::{ItemRecord, ItemsUpdate, MARKETPLACE, OrdersApi, RunTally, TenantId};

impl PgStore {
    /// Orders whose items are missing or stale: never tried first, then the longest waiting,
    /// most recently updated first among equals.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn orders_awaiting_items(
        &self,
        tenant: &TenantId,
        limit: i64,
    ) -> Result<Vec<String>> {
        let mut c = self.conn().await?;
        Ok(sqlx::query_scalar(
            "SELECT external_order_id FROM orders
              WHERE tenant_id = $1 AND marketplace = $2 AND items_stale
              ORDER BY items_attempted_at NULLS FIRST, last_update_date DESC, external_order_id
              LIMIT $3",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .bind(limit)
        .fetch_all(&mut *c)
        .await?)
    }

    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn count_awaiting_items(&self, tenant: &TenantId) -> Result<i64> {
        let mut c = self.conn().await?;
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM orders WHERE tenant_id = $1 AND marketplace = $2 AND items_stale",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .fetch_one(&mut *c)
        .await?)
    }

    /// Stores (or marks as still pending) the items of an order that is already stored, as
    /// `api` returned them, with the run's numbers (`tally`, counting these items) when a pass
    /// commits them.
    #[instrument(skip_all, fields(tenant = %tenant, order_id))]
    pub async fn write_items(
        &self,
        tenant: &TenantId,
        api: OrdersApi,
        order_id: &str,
        items: &ItemsUpdate,
        tally: Option<&dyn Fn(u64) -> RunTally>,
    ) -> Result<u64> {
        let mut c = self.conn().await?;
        let mut tx = c.begin().await?;
        self.check_fence(&mut tx).await?;
        let n = apply_items(&mut tx, tenant, api, &[(order_id, items)]).await?;
        if let Some(tally) = tally {
            super::runs::record_tally(&mut tx, tenant, &tally(n)).await?;
        }
        tx.commit().await?;
        Ok(n)
    }
}

/// Applies items updates to orders that are stored: replaced lists in one delete and one insert
/// (per 1,000 items: Postgres takes at most 65,535 parameters), pending marks in one update.
/// Items a report import staged without an id are dropped once the Orders API replaced the
/// order's items. (Pages go through [`super::bulk`]; this serves the items catch-up.)
pub(super) async fn apply_items(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    api: OrdersApi,
    updates: &[(&str, &ItemsUpdate)],
) -> Result<u64> {
    let mut replaced: Vec<&str> = Vec::new();
    let mut rows: Vec<(&str, &ItemRecord)> = Vec::new();
    let mut pending: Vec<(&str, &str)> = Vec::new();
    for (order_id, update) in updates {
        match update {
            ItemsUpdate::Keep => {}
            // Every Amazon order has at least one item: an empty list is not an answer to keep.
            ItemsUpdate::Replace(items) if items.is_empty() => {
                pending.push((order_id, "Amazon returned no items for this order"));
            }
            ItemsUpdate::Replace(items) => {
                replaced.push(order_id);
                rows.extend(items.iter().map(|item| (*order_id, item)));
            }
            ItemsUpdate::Pending(reason) => pending.push((order_id, reason.as_str())),
        }
    }

    if !pending.is_empty() {
        sqlx::query(
            "UPDATE orders o SET items_stale = true, items_error = u.reason, items_attempted_at = now()
               FROM UNNEST($3::text[], $4::text[]) AS u(external_order_id, reason)
              WHERE o.tenant_id = $1 AND o.marketplace = $2 AND o.external_order_id = u.external_order_id",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .bind(pending.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(pending.iter().map(|(_, reason)| *reason).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if replaced.is_empty() {
        return Ok(0);
    }
    sqlx::query(
        "DELETE FROM order_items WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = ANY($3)",
    )
    .bind(tenant.as_str())
    .bind(MARKETPLACE)
    .bind(&replaced)
    .execute(&mut **tx)
    .await?;
    for chunk in rows.chunks(1_000) {
        let mut insert = sqlx::QueryBuilder::<Postgres>::new(
            "INSERT INTO order_items (tenant_id, marketplace, source_api, external_order_id,
                                      order_item_id, asin, seller_sku, title, quantity_ordered,
                                      quantity_shipped, item_price_amount, item_tax_amount,
                                      shipping_price_amount, promotion_discount_amount, currency,
                                      raw) ",
        );
        insert.push_values(chunk, |mut row, (order_id, item)| {
            row.push_bind(tenant.as_str())
                .push_bind(MARKETPLACE)
                .push_bind(api.as_str())
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
    let updated = sqlx::query(
        "UPDATE orders SET items_stale = false, items_fetched_at = now(),
                items_fetched_status = status, items_error = NULL
          WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = ANY($3)",
    )
    .bind(tenant.as_str())
    .bind(MARKETPLACE)
    .bind(&replaced)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if updated != replaced.len() as u64 {
        // Items without their order would be orphans; the foreign key refuses them too, this
        // just says so in words.
        return Err(Error::Database(sqlx::Error::Protocol(format!(
            "items for {} orders of tenant {tenant}, of which only {updated} are stored",
            replaced.len()
        ))));
    }
    sqlx::query(
        "DELETE FROM report_staged_items
          WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = ANY($3)",
    )
    .bind(tenant.as_str())
    .bind(MARKETPLACE)
    .bind(&replaced)
    .execute(&mut **tx)
    .await?;
    Ok(rows.len() as u64)
}
