//! What `status` reads: a tenant's sync state, its row counts and its latest run, typed. How it
//! is shown (the backend's JSON shape, a summary for a person) is the command's business.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use tracing::instrument;

use super::PgStore;
use crate::error::Result;
use crate::model::{MARKETPLACE, RunOutcome, TenantId};

/// `marketplace_sync_state`, as `status` shows it.
#[derive(Debug, Clone, Default, FromRow)]
pub struct StatusState {
    pub cursor: Option<DateTime<Utc>>,
    pub last_polled_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, FromRow)]
pub struct StatusCounts {
    pub orders: i64,
    pub items: i64,
    /// Orders whose items are missing or stale.
    pub orders_awaiting_items: i64,
    /// Orders Amazon sent that could not be read (table `order_quarantine`).
    pub orders_quarantined: i64,
}

/// One `sync_runs` row.
#[derive(Debug, Clone, FromRow)]
pub struct RunRow {
    pub command: String,
    /// `v0`, `2026-01-01`, or `unknown` for a run whose tenant file could not be read.
    pub orders_api: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "String")]
    pub outcome: RunOutcome,
    pub orders_upserted: i32,
    pub orders_quarantined: i32,
    pub items_upserted: i32,
    pub api_calls: i32,
    pub throttled: i32,
    pub error: Option<String>,
}

/// Everything `status` shows of one tenant.
#[derive(Debug, Clone)]
pub struct TenantStatus {
    pub tenant: TenantId,
    /// `None` for a tenant that was never synced.
    pub state: Option<StatusState>,
    pub counts: StatusCounts,
    pub last_run: Option<RunRow>,
}

impl PgStore {
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn status(&self, tenant: &TenantId) -> Result<TenantStatus> {
        let mut c = self.conn().await?;
        let state: Option<StatusState> = sqlx::query_as(
            "SELECT cursor, last_polled_at, last_success_at, last_error, last_error_at
               FROM marketplace_sync_state WHERE tenant_id = $1 AND type = $2",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .fetch_optional(&mut *c)
        .await?;
        let counts: StatusCounts = sqlx::query_as(
            "SELECT (SELECT count(*) FROM orders WHERE tenant_id = $1 AND marketplace = $2) AS orders,
                    (SELECT count(*) FROM order_items WHERE tenant_id = $1 AND marketplace = $2) AS items,
                    (SELECT count(*) FROM orders WHERE tenant_id = $1 AND marketplace = $2 AND items_stale)
                        AS orders_awaiting_items,
                    (SELECT count(*) FROM order_quarantine WHERE tenant_id = $1 AND marketplace = $2)
                        AS orders_quarantined",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .fetch_one(&mut *c)
        .await?;
        let last_run: Option<RunRow> = sqlx::query_as(
            "SELECT command, orders_api, started_at, finished_at, outcome, orders_upserted,
                    orders_quarantined, items_upserted, api_calls, throttled, error
               FROM sync_runs WHERE tenant_id = $1 ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        .bind(tenant.as_str())
        .fetch_optional(&mut *c)
        .await?;
        Ok(TenantStatus {
            tenant: tenant.clone(),
            state,
            counts,
            last_run,
        })
    }
}
