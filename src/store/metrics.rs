//! What metrics read besides `status`: a tenant's cumulative `sync_counters`, and the latest
//! finished run of each command (so that a push after `items` still carries the last `delta`'s
//! gauges). Typed rows out; the exposition format is [`crate::metrics`]' business.
//!
//! Reads only: the counters are written by the engine, in the transactions of the work they
//! count.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use tracing::instrument;

use super::PgStore;
use crate::error::Result;
use crate::model::{RunOutcome, TenantId};

/// One `sync_counters` row. Which label columns matter depends on `metric`: `operation` for
/// `api_calls` and `api_throttled`, `command` and `outcome` for `runs`; the others are `''`.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct CounterRow {
    pub metric: String,
    pub operation: String,
    pub command: String,
    pub outcome: String,
    pub value: i64,
}

/// The latest finished run of one command.
#[derive(Debug, Clone, FromRow)]
pub struct LastRun {
    pub command: String,
    #[sqlx(try_from = "String")]
    pub outcome: RunOutcome,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

impl PgStore {
    /// The tenant's cumulative counters, in a stable order.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn counters(&self, tenant: &TenantId) -> Result<Vec<CounterRow>> {
        let rows = sqlx::query_as(
            "SELECT metric, operation, command, outcome, value FROM sync_counters
              WHERE tenant_id = $1 ORDER BY metric, operation, command, outcome",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// The latest finished run of each command the tenant ran (within run retention), sorted by
    /// command.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn last_runs(&self, tenant: &TenantId) -> Result<Vec<LastRun>> {
        let rows = sqlx::query_as(
            "SELECT DISTINCT ON (command) command, outcome, started_at, finished_at
               FROM sync_runs
              WHERE tenant_id = $1 AND outcome <> 'running' AND finished_at IS NOT NULL
              ORDER BY command, finished_at DESC, id DESC",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}
