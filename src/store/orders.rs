//! `orders` and `order_quarantine`: what is stored of a page's orders, and a page's commit
//! (its orders, their items, its quarantined orders and its progress marker, in one
//! transaction).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Connection;
use sqlx::{FromRow, Postgres, Transaction};
use tracing::instrument;

use super::PgStore;
use super::bulk::{DeltaRow, merge_orders_and_items};
use super::runs::record_tally;
use crate::error::Result;
use crate::model::decide::winning_copies;
use crate::model::{
    MARKETPLACE, OrderStatus, OrderWrite, OrdersApi, PageProgress, RejectedOrder, RunTally,
    StoredOrder, TenantId, WriteCounts,
};

#[derive(FromRow)]
struct StoredOrderRow {
    external_order_id: String,
    last_update_date: DateTime<Utc>,
    #[sqlx(try_from = "String")]
    status: OrderStatus,
    raw: serde_json::Value,
    items_stale: bool,
}

impl PgStore {
    /// The stored version of each of these orders, when there is one.
    #[instrument(skip_all, fields(tenant = %tenant, count = ids.len()))]
    pub async fn stored_orders(
        &self,
        tenant: &TenantId,
        ids: &[String],
    ) -> Result<HashMap<String, StoredOrder>> {
        let mut c = self.conn().await?;
        // One unique-key probe per id, planned for the data at hand (see `super::bulk`): a plan
        // from when the tenant was small scans the whole tenant once it is not.
        let rows: Vec<StoredOrderRow> = sqlx::query_as(
            "SELECT o.external_order_id, o.last_update_date, o.status, o.raw, o.items_stale
               FROM unnest($3::text[]) AS k(order_id)
              CROSS JOIN LATERAL (SELECT * FROM orders
                                   WHERE tenant_id = $1 AND marketplace = $2
                                     AND external_order_id = k.order_id OFFSET 0) o",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .bind(ids)
        .persistent(false)
        .fetch_all(&mut *c)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                (
                    row.external_order_id,
                    StoredOrder {
                        last_update_date: row.last_update_date,
                        status: row.status,
                        raw: row.raw,
                        items_stale: row.items_stale,
                    },
                )
            })
            .collect())
    }

    /// Writes one page and its progress marker in one transaction, with the run's numbers
    /// (`tally`, counting this page) when a pass commits it. `readable` lists every order of
    /// the page that could be read, written or not. A pass that lost its lock commits nothing.
    #[allow(clippy::too_many_arguments)] // one page's parts, each a different thing
    #[instrument(skip_all, fields(tenant = %tenant, orders = writes.len()))]
    pub async fn write_page(
        &self,
        tenant: &TenantId,
        api: OrdersApi,
        readable: &[String],
        writes: &[OrderWrite],
        rejected: &[RejectedOrder],
        progress: &PageProgress,
        tally: Option<&dyn Fn(WriteCounts) -> RunTally>,
    ) -> Result<WriteCounts> {
        let mut c = self.conn().await?;
        let mut tx = c.begin().await?;
        self.check_fence(&mut tx).await?;
        let mut counts = WriteCounts::default();
        // A readable copy of an order supersedes a quarantined one, written or not.
        sqlx::query(
            "DELETE FROM order_quarantine
              WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = ANY($3)",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .bind(readable)
        .execute(&mut *tx)
        .await?;
        counts += write_orders(&mut tx, tenant, api, writes).await?;
        for r in rejected {
            sqlx::query(
                "INSERT INTO order_quarantine (tenant_id, marketplace, external_order_id, source_api, raw, error)
                 VALUES ($1, $2, COALESCE($3, 'unidentified:' || md5($5::text)), $4, $5, $6)
                 ON CONFLICT (tenant_id, marketplace, external_order_id) DO UPDATE SET
                     source_api = EXCLUDED.source_api, raw = EXCLUDED.raw, error = EXCLUDED.error,
                     last_seen_at = now()",
            )
            .bind(tenant.as_str())
            .bind(MARKETPLACE)
            .bind(r.order_id.as_deref())
            .bind(api.as_str())
            .bind(&r.raw)
            .bind(&r.error)
            .execute(&mut *tx)
            .await?;
            counts.quarantined += 1;
        }
        record_progress(&mut tx, tenant, api, progress).await?;
        if let Some(tally) = tally {
            record_tally(&mut tx, tenant, &tally(counts)).await?;
        }
        tx.commit().await?;
        Ok(counts)
    }
}

/// The progress marker of a page, in the page's transaction.
async fn record_progress(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    api: OrdersApi,
    progress: &PageProgress,
) -> Result<()> {
    match progress {
        PageProgress::Continue { window, token } => {
            sqlx::query(
                "UPDATE marketplace_sync_state SET resume_api = $3, resume_after = $4, resume_before = $5,
                        resume_token = $6, resume_saved_at = now(), updated_at = now()
                  WHERE tenant_id = $1 AND type = $2",
            )
            .bind(tenant.as_str())
            .bind(MARKETPLACE)
            .bind(api.as_str())
            .bind(window.after)
            .bind(window.before)
            .bind(token)
            .execute(&mut **tx)
            .await?;
        }
        PageProgress::Backfill {
            window,
            last_page: true,
        } => {
            sqlx::query(
                "UPDATE marketplace_sync_state SET cursor = GREATEST(cursor, $3), updated_at = now()
                  WHERE tenant_id = $1 AND type = $2 AND cursor IS NOT NULL AND $4 <= cursor",
            )
            .bind(tenant.as_str())
            .bind(MARKETPLACE)
            .bind(window.before)
            .bind(window.after)
            .execute(&mut **tx)
            .await?;
        }
        PageProgress::Backfill { .. } => {}
        PageProgress::WindowDone { window } => {
            // GREATEST ignores NULL: a first window sets the cursor, later ones never move it back.
            sqlx::query(
                "UPDATE marketplace_sync_state SET cursor = GREATEST(cursor, $3), resume_api = NULL,
                        resume_after = NULL, resume_before = NULL, resume_token = NULL,
                        resume_saved_at = NULL, updated_at = now()
                  WHERE tenant_id = $1 AND type = $2",
            )
            .bind(tenant.as_str())
            .bind(MARKETPLACE)
            .bind(window.before)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Upserts a page's orders, then applies their items updates: a handful of set-based statements
/// per page, whatever its size (see [`super::bulk`]).
///
/// An order only replaces the stored one when it is newer, or as new but different (a v0 row
/// re-read through v2026, say): an older copy never overwrites a newer one, and an identical one
/// changes nothing, not even `updated_at`.
async fn write_orders(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    api: OrdersApi,
    writes: &[OrderWrite],
) -> Result<WriteCounts> {
    let rows: Vec<DeltaRow<'_>> = winning_copies(writes)
        .into_iter()
        .map(|w| DeltaRow {
            order: &w.order,
            items: &w.items,
        })
        .collect();
    let merged = merge_orders_and_items(tx, tenant, api.as_str(), &rows).await?;
    Ok(WriteCounts {
        orders: merged.orders,
        items: merged.items,
        quarantined: 0,
    })
}
