//! `api_rate_buckets`: the client-side rate buckets of a tenant, saved between processes so that
//! the next CronJob run does not assume a burst Amazon has not refilled. Stored by Amazon's
//! operation name; what the numbers mean is the Amazon client's business.

use chrono::{DateTime, Utc};
use sqlx::{Connection, FromRow, Postgres, Transaction};
use tracing::instrument;

use super::PgStore;
use crate::error::Result;
use crate::model::{BucketState, TenantId};

#[derive(FromRow)]
struct BucketRow {
    operation: String,
    rate: f64,
    burst: f64,
    tokens: f64,
    saved_at: DateTime<Utc>,
}

impl PgStore {
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn load_buckets(&self, tenant: &TenantId) -> Result<Vec<BucketState>> {
        let mut c = self.conn().await?;
        let rows: Vec<BucketRow> = sqlx::query_as(
            "SELECT operation, rate, burst, tokens, saved_at FROM api_rate_buckets WHERE tenant_id = $1",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut *c)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| BucketState {
                operation: r.operation,
                rate: r.rate,
                burst: r.burst,
                tokens: r.tokens,
                saved_at: r.saved_at,
            })
            .collect())
    }

    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn save_buckets(&self, tenant: &TenantId, buckets: &[BucketState]) -> Result<()> {
        let mut c = self.conn().await?;
        let mut tx = c.begin().await?;
        self.check_fence(&mut tx).await?;
        save_buckets(&mut tx, tenant, buckets).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Upserts the buckets, in the caller's transaction.
pub(super) async fn save_buckets(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    buckets: &[BucketState],
) -> Result<()> {
    if buckets.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO api_rate_buckets (tenant_id, operation, rate, burst, tokens, saved_at)
         SELECT $1, u.* FROM UNNEST($2::text[], $3::float8[], $4::float8[], $5::float8[], $6::timestamptz[])
             AS u(operation, rate, burst, tokens, saved_at)
         ON CONFLICT (tenant_id, operation) DO UPDATE SET rate = EXCLUDED.rate,
                burst = EXCLUDED.burst, tokens = EXCLUDED.tokens, saved_at = EXCLUDED.saved_at",
    )
    .bind(tenant.as_str())
    .bind(buckets.iter().map(|b| b.operation.as_str()).collect::<Vec<_>>())
    .bind(buckets.iter().map(|b| b.rate).collect::<Vec<_>>())
    .bind(buckets.iter().map(|b| b.burst).collect::<Vec<_>>())
    .bind(buckets.iter().map(|b| b.tokens).collect::<Vec<_>>())
    .bind(buckets.iter().map(|b| b.saved_at).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
