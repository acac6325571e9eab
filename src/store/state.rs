//! `marketplace_sync_state`: a tenant's cursor and the resume point of an interrupted window.
//! The cursor itself only moves in [`super::orders`], in the transaction of a window's last page.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Connection, FromRow};
use tracing::instrument;

use super::PgStore;
use crate::error::Result;
use crate::model::{MARKETPLACE, OrdersApi, ResumePoint, SyncState, SyncWindow, TenantId};

/// How far behind a tenant is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Standing {
    /// `None` for a tenant never synced.
    pub cursor: Option<DateTime<Utc>>,
    /// What its last pass left, when it stopped before catching up.
    pub backlog_orders: Option<i32>,
}

#[derive(FromRow)]
struct StateRow {
    cursor: Option<DateTime<Utc>>,
    resume_api: Option<String>,
    resume_after: Option<DateTime<Utc>>,
    resume_before: Option<DateTime<Utc>>,
    resume_token: Option<String>,
    resume_saved_at: Option<DateTime<Utc>>,
    window_span_secs: Option<i32>,
    last_sweep_at: Option<DateTime<Utc>>,
    backlog_orders: Option<i32>,
}

impl From<StateRow> for SyncState {
    fn from(row: StateRow) -> Self {
        // A resume point is all five columns or none; one of another build's API names (or a
        // half-written one) is no resume point, and the next window starts from the cursor.
        let resume = match (
            row.resume_api.as_deref().and_then(OrdersApi::from_name),
            row.resume_after,
            row.resume_before,
            row.resume_token,
            row.resume_saved_at,
        ) {
            (Some(api), Some(after), Some(before), Some(token), Some(saved_at)) => {
                Some(ResumePoint {
                    api,
                    window: SyncWindow { after, before },
                    token,
                    saved_at,
                })
            }
            _ => None,
        };
        SyncState {
            cursor: row.cursor,
            resume,
            window_span: row
                .window_span_secs
                .filter(|s| *s > 0)
                .map(|s| chrono::Duration::seconds(i64::from(s))),
            last_sweep_at: row.last_sweep_at,
            backlog_orders: row.backlog_orders.map(i64::from),
        }
    }
}

impl PgStore {
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn sync_state(&self, tenant: &TenantId) -> Result<SyncState> {
        let mut c = self.conn().await?;
        let row: Option<StateRow> = sqlx::query_as(
            "SELECT cursor, resume_api, resume_after, resume_before, resume_token, resume_saved_at,
                    window_span_secs, last_sweep_at, backlog_orders
               FROM marketplace_sync_state WHERE tenant_id = $1 AND type = $2",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .fetch_optional(&mut *c)
        .await?;
        Ok(row.map(SyncState::from).unwrap_or_default())
    }

    /// Forgets an interrupted window (its token expired or was refused).
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn clear_resume(&self, tenant: &TenantId) -> Result<()> {
        let mut c = self.conn().await?;
        let mut tx = c.begin().await?;
        self.check_fence(&mut tx).await?;
        sqlx::query(
            "UPDATE marketplace_sync_state SET resume_api = NULL, resume_after = NULL, resume_before = NULL,
                    resume_token = NULL, resume_saved_at = NULL, updated_at = now()
              WHERE tenant_id = $1 AND type = $2",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Remembers the delta sub-window length that completes within a pass (`None`: whole
    /// windows).
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn set_window_span(
        &self,
        tenant: &TenantId,
        span: Option<chrono::Duration>,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let mut tx = c.begin().await?;
        self.check_fence(&mut tx).await?;
        sqlx::query(
            "UPDATE marketplace_sync_state SET window_span_secs = $3, updated_at = now()
              WHERE tenant_id = $1 AND type = $2",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .bind(span.map(|s| i32::try_from(s.num_seconds()).unwrap_or(i32::MAX)))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that a sweep completed.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn mark_swept(&self, tenant: &TenantId, at: DateTime<Utc>) -> Result<()> {
        let mut c = self.conn().await?;
        let mut tx = c.begin().await?;
        self.check_fence(&mut tx).await?;
        sqlx::query(
            "UPDATE marketplace_sync_state SET last_sweep_at = $3, updated_at = now()
              WHERE tenant_id = $1 AND type = $2",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// How far behind each of these tenants is, to start the furthest behind first.
    #[instrument(skip_all, fields(count = tenants.len()))]
    pub async fn standings(&self, tenants: &[TenantId]) -> Result<HashMap<TenantId, Standing>> {
        let mut c = self.conn().await?;
        let ids: Vec<&str> = tenants.iter().map(TenantId::as_str).collect();
        let rows: Vec<(String, Option<DateTime<Utc>>, Option<i32>)> = sqlx::query_as(
            "SELECT tenant_id, cursor, backlog_orders FROM marketplace_sync_state
              WHERE type = $1 AND tenant_id = ANY($2)",
        )
        .bind(MARKETPLACE)
        .bind(&ids)
        .fetch_all(&mut *c)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, cursor, backlog)| {
                let standing = Standing {
                    cursor,
                    backlog_orders: backlog,
                };
                Some((TenantId::parse(&id).ok()?, standing))
            })
            .collect())
    }
}
