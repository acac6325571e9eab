//! `sync_runs`: one row per pass and tenant, opened when the pass starts and closed with its
//! outcome; and the set of runs this process has open, so that a process told to stop can close
//! its own runs (and no other process's).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tracing::instrument;

use super::{PgStore, clamp_i32};
use crate::error::Result;
use crate::model::{MARKETPLACE, OrdersApi, PassReport, RunOutcome, TenantId};

/// Runs opened through one [`PgStore`] (and its clones) and not closed yet.
///
/// A std `Mutex`: it guards a tiny set for a few instructions and is never held across an
/// `.await`.
#[derive(Clone, Default)]
pub(super) struct OpenRuns(Arc<Mutex<HashSet<i64>>>);

impl OpenRuns {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        // A panic while holding this lock cannot leave the set half-changed.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
    fn insert(&self, id: i64) {
        self.set().insert(id);
    }
    fn remove(&self, id: i64) {
        self.set().remove(&id);
    }
    fn ids(&self) -> Vec<i64> {
        self.set().iter().copied().collect()
    }
}

impl PgStore {
    /// Records the start of a pass: marks runs a dead process left as `running` as abandoned
    /// (the caller holds the lock, so none is really running), stamps `last_polled_at` and
    /// opens a `sync_runs` row.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn start_run(&self, tenant: &TenantId, command: &str, api: OrdersApi) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE sync_runs SET outcome = 'abandoned', finished_at = now(),
                    error = COALESCE(error, 'the process ended before the run finished')
              WHERE tenant_id = $1 AND outcome = 'running'",
        )
        .bind(tenant.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO marketplace_sync_state (tenant_id, type, last_polled_at) VALUES ($1, $2, now())
             ON CONFLICT (tenant_id, type) DO UPDATE SET last_polled_at = now(), updated_at = now()",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .execute(&mut *tx)
        .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sync_runs (tenant_id, command, orders_api) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(tenant.as_str())
        .bind(command)
        .bind(api.as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.open_runs.insert(id);
        Ok(id)
    }

    /// Records a pass that could not even start (its tenant file is invalid): a failed run and
    /// `last_error`, so that `status` tells the operator.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn record_failed_start(
        &self,
        tenant: &TenantId,
        command: &str,
        error: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO sync_runs (tenant_id, command, orders_api, finished_at, outcome, error)
             VALUES ($1, $2, 'unknown', now(), 'failed', $3)",
        )
        .bind(tenant.as_str())
        .bind(command)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO marketplace_sync_state (tenant_id, type, last_error, last_error_at, error_since)
             VALUES ($1, $2, $3, now(), now())
             ON CONFLICT (tenant_id, type) DO UPDATE SET last_error = EXCLUDED.last_error,
                    last_error_at = now(),
                    error_since = COALESCE(marketplace_sync_state.error_since, now()),
                    updated_at = now()",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks the runs this store opened and did not close as failed, with `last_error`, when
    /// the process is told to stop before they finish. Other processes' runs are not touched.
    #[instrument(skip_all)]
    pub async fn fail_open_runs(&self, error: &str) -> Result<()> {
        sqlx::query(
            "WITH failed AS (
                 UPDATE sync_runs SET outcome = 'failed', finished_at = now(), error = $2
                  WHERE id = ANY($1) AND outcome = 'running'
                 RETURNING tenant_id)
             UPDATE marketplace_sync_state SET last_error = $2, last_error_at = now(),
                    error_since = COALESCE(error_since, now()), updated_at = now()
              WHERE type = $3 AND tenant_id IN (SELECT tenant_id FROM failed)",
        )
        .bind(self.open_runs.ids())
        .bind(error)
        .bind(MARKETPLACE)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Closes a run with what the pass did and its error, if any. On success the tenant's
    /// `last_success_at` moves (when `marks_success`) and `last_error` clears; on failure
    /// `last_error` is set. The cursor is not touched here.
    #[instrument(skip_all, fields(tenant = %tenant, run_id))]
    pub async fn finish_run(
        &self,
        tenant: &TenantId,
        run_id: i64,
        report: &PassReport,
        error: Option<&str>,
        marks_success: bool,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let outcome = match error {
            Some(_) => RunOutcome::Failed,
            None => RunOutcome::Success,
        };
        sqlx::query(
            "UPDATE sync_runs SET finished_at = now(), outcome = $2, window_after = $3, window_before = $4,
                    orders_upserted = $5, items_upserted = $6, items_pending = $7, api_calls = $8,
                    throttled = $9, error = $10, orders_quarantined = $11
              WHERE id = $1",
        )
        .bind(run_id)
        .bind(outcome.as_str())
        .bind(report.window.map(|w| w.after))
        .bind(report.window.map(|w| w.before))
        .bind(clamp_i32(report.counts.orders))
        .bind(clamp_i32(report.counts.items))
        .bind((report.items_pending >= 0).then(|| clamp_i32(report.items_pending as u64)))
        .bind(clamp_i32(report.api_calls))
        .bind(clamp_i32(report.throttled))
        .bind(error)
        .bind(clamp_i32(report.counts.quarantined))
        .execute(&mut *tx)
        .await?;
        match error {
            Some(error) => {
                sqlx::query(
                    "UPDATE marketplace_sync_state SET last_error = $3, last_error_at = now(),
                            error_since = COALESCE(error_since, now()), updated_at = now()
                      WHERE tenant_id = $1 AND type = $2",
                )
                .bind(tenant.as_str())
                .bind(MARKETPLACE)
                .bind(error)
                .execute(&mut *tx)
                .await?;
            }
            None if marks_success => {
                sqlx::query(
                    "UPDATE marketplace_sync_state SET last_success_at = now(), last_error = NULL,
                            last_error_at = NULL, error_since = NULL, updated_at = now()
                      WHERE tenant_id = $1 AND type = $2",
                )
                .bind(tenant.as_str())
                .bind(MARKETPLACE)
                .execute(&mut *tx)
                .await?;
            }
            None => {}
        }
        tx.commit().await?;
        self.open_runs.remove(run_id);
        Ok(())
    }
}
