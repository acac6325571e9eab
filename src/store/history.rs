//! `sync_runs` as history: a tenant's recent runs for `history`, and retention (old runs pruned).
//!
//! Reads and deletes only finished runs' bookkeeping: it never touches a `running` row (a pass
//! holding its lock owns that row until it closes it), nor the cumulative `sync_counters`, which
//! metrics read and which are never pruned.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use tracing::instrument;

use super::PgStore;
use crate::error::{Error, Result};
use crate::model::{RunOutcome, TenantId};

/// One `sync_runs` row, as `history` shows it.
#[derive(Debug, Clone, FromRow)]
pub struct HistoryRun {
    pub id: i64,
    pub command: String,
    /// `v0`, `2026-01-01`, or `unknown` for a run whose tenant file could not be read.
    pub orders_api: String,
    pub started_at: DateTime<Utc>,
    /// `None` while the run is open (or its process died and no pass has found it yet).
    pub finished_at: Option<DateTime<Utc>>,
    #[sqlx(try_from = "String")]
    pub outcome: RunOutcome,
    pub window_after: Option<DateTime<Utc>>,
    pub window_before: Option<DateTime<Utc>>,
    pub orders_upserted: i32,
    pub orders_quarantined: i32,
    pub items_upserted: i32,
    /// Orders still waiting for items when the run ended; `None` when not counted.
    pub items_pending: Option<i32>,
    pub api_calls: i32,
    pub throttled: i32,
    /// Order pages committed.
    pub pages: i32,
    /// What the run estimated was left when it ended; `None` when it estimated nothing.
    pub backlog_orders: Option<i32>,
    pub catch_up_secs: Option<i32>,
    pub error: Option<String>,
}

impl PgStore {
    /// The tenant's `limit` most recent runs, newest first.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn history(&self, tenant: &TenantId, limit: u32) -> Result<Vec<HistoryRun>> {
        let runs = sqlx::query_as(
            "SELECT id, command, orders_api, started_at, finished_at, outcome, window_after,
                    window_before, orders_upserted, orders_quarantined, items_upserted, items_pending,
                    api_calls, throttled, pages, backlog_orders, catch_up_secs, error
               FROM sync_runs WHERE tenant_id = $1
              ORDER BY started_at DESC, id DESC LIMIT $2",
        )
        .bind(tenant.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(runs)
    }

    /// Deletes the runs of every tenant that started more than `older_than` ago, by the
    /// database's clock (the one that stamped them); returns how many went. A `running` row is
    /// never deleted, however old: its pass may still close it, and the next pass that takes
    /// the lock marks it abandoned, after which it ages out like the others.
    #[instrument(skip_all)]
    pub async fn prune_runs(&self, older_than: chrono::Duration) -> Result<u64> {
        if older_than < chrono::Duration::zero() {
            return Err(Error::Config(
                "run retention must not be negative".to_owned(),
            ));
        }
        // Whole milliseconds are plenty; an interval from seconds avoids sqlx's interval
        // encoding, which refuses some durations (nanoseconds).
        let secs = older_than.num_milliseconds() as f64 / 1000.0;
        let done = sqlx::query(
            "DELETE FROM sync_runs
              WHERE started_at < now() - make_interval(secs => $1) AND outcome <> 'running'",
        )
        .bind(secs)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
