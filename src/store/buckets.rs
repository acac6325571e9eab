//! `api_rate_buckets`: the client-side rate buckets of a tenant, saved between processes so that
//! the next CronJob run does not assume a burst Amazon has not refilled. Stored by Amazon's
//! operation name; what the numbers mean is the Amazon client's business.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
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
        let rows: Vec<BucketRow> = sqlx::query_as(
            "SELECT operation, rate, burst, tokens, saved_at FROM api_rate_buckets WHERE tenant_id = $1",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        for b in buckets {
            sqlx::query(
                "INSERT INTO api_rate_buckets (tenant_id, operation, rate, burst, tokens, saved_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant_id, operation) DO UPDATE SET rate = EXCLUDED.rate,
                        burst = EXCLUDED.burst, tokens = EXCLUDED.tokens, saved_at = EXCLUDED.saved_at",
            )
            .bind(tenant.as_str())
            .bind(&b.operation)
            .bind(b.rate)
            .bind(b.burst)
            .bind(b.tokens)
            .bind(b.saved_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
