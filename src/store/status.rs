//! What `status` and `check` read: a tenant's sync state, its row counts and its latest run,
//! typed; and which tenants have a sync state at all. How it is shown (the backend's JSON shape,
//! a table for a person) and what is healthy are the commands' business.

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
    /// The first failure after the last success (`last_error_at` moves on every failure).
    pub error_since: Option<DateTime<Utc>>,
    /// What the last pass estimated was left: orders, and seconds at Amazon's rates. `None`
    /// when no pass estimated it.
    pub backlog_orders: Option<i32>,
    pub catch_up_secs: Option<i32>,
}

/// A `marketplace_sync_state` row with its tenant.
#[derive(FromRow)]
struct TenantStateRow {
    tenant_id: String,
    #[sqlx(flatten)]
    state: StatusState,
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
            "SELECT cursor, last_polled_at, last_success_at, last_error, last_error_at, error_since,
                    backlog_orders, catch_up_secs
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

    /// Every tenant that has a sync state (it was synced, or a pass of it was at least tried),
    /// with that state, sorted by tenant. One query, no counts: cheap enough for a probe.
    #[instrument(skip_all)]
    pub async fn sync_states(&self) -> Result<Vec<(TenantId, StatusState)>> {
        let rows: Vec<TenantStateRow> = sqlx::query_as(
            "SELECT tenant_id, cursor, last_polled_at, last_success_at, last_error, last_error_at,
                    error_since, backlog_orders, catch_up_secs
               FROM marketplace_sync_state WHERE type = $1 ORDER BY tenant_id",
        )
        .bind(MARKETPLACE)
        .fetch_all(&self.pool)
        .await?;
        // Ids were valid when they were written (they name files); one that is not any more
        // (written by hand) cannot be selected with --tenant either, so it is left out.
        Ok(rows
            .into_iter()
            .filter_map(|r| Some((TenantId::parse(&r.tenant_id).ok()?, r.state)))
            .collect())
    }
}
