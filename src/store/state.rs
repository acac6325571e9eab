//! `marketplace_sync_state`: a tenant's cursor and the resume point of an interrupted window.
//! The cursor itself only moves in [`super::orders`], in the transaction of a window's last page.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use tracing::instrument;

use super::PgStore;
use crate::error::Result;
use crate::model::{MARKETPLACE, OrdersApi, ResumePoint, SyncState, SyncWindow, TenantId};

#[derive(FromRow)]
struct StateRow {
    cursor: Option<DateTime<Utc>>,
    resume_api: Option<String>,
    resume_after: Option<DateTime<Utc>>,
    resume_before: Option<DateTime<Utc>>,
    resume_token: Option<String>,
    resume_saved_at: Option<DateTime<Utc>>,
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
        }
    }
}

impl PgStore {
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn sync_state(&self, tenant: &TenantId) -> Result<SyncState> {
        let row: Option<StateRow> = sqlx::query_as(
            "SELECT cursor, resume_api, resume_after, resume_before, resume_token, resume_saved_at
               FROM marketplace_sync_state WHERE tenant_id = $1 AND type = $2",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(SyncState::from).unwrap_or_default())
    }

    /// Forgets an interrupted window (its token expired or was refused).
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn clear_resume(&self, tenant: &TenantId) -> Result<()> {
        sqlx::query(
            "UPDATE marketplace_sync_state SET resume_api = NULL, resume_after = NULL, resume_before = NULL,
                    resume_token = NULL, resume_saved_at = NULL, updated_at = now()
              WHERE tenant_id = $1 AND type = $2",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
