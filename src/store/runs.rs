//! `sync_runs`: one row per pass and tenant, opened when the pass starts and closed with its
//! outcome; and the set of runs this process has open, so that a process told to stop can close
//! its own runs (and no other process's).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use sqlx::{Connection, Postgres, Transaction};
use tracing::instrument;

use super::{PgStore, clamp_i32};
use crate::error::Result;
use crate::model::{MARKETPLACE, OrdersApi, RunOutcome, RunTally, TenantId};

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
        let mut c = self.conn().await?;
        let mut tx = c.begin().await?;
        // Taking the tenant over: a new fencing token, which every commit of this pass checks.
        // The state row first: a pass that lost its lock and is committing holds that row, so
        // this waits for its commit (which then fails its own fence check) instead of locking
        // its run row first and deadlocking with it.
        let fence: i64 = sqlx::query_scalar(
            "INSERT INTO marketplace_sync_state (tenant_id, type, last_polled_at, fence) VALUES ($1, $2, now(), 1)
             ON CONFLICT (tenant_id, type) DO UPDATE SET last_polled_at = now(),
                    fence = marketplace_sync_state.fence + 1, updated_at = now()
             RETURNING fence",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE sync_runs SET outcome = 'abandoned', finished_at = now(),
                    error = COALESCE(error, 'the process ended before the run finished')
              WHERE tenant_id = $1 AND outcome = 'running'",
        )
        .bind(tenant.as_str())
        .execute(&mut *tx)
        .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sync_runs (tenant_id, command, orders_api, fence) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(tenant.as_str())
        .bind(command)
        .bind(api.as_str())
        .bind(fence)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.set_fence(fence);
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
        let mut c = self.conn().await?;
        let mut tx = c.begin().await?;
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
        let mut c = self.conn().await?;
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
        .execute(&mut *c)
        .await?;
        Ok(())
    }

    /// Records a tenant that could not start in this run (the run's deadline came first, or no
    /// database connection was free), with the reason, as a `skipped` run. Not an error: the
    /// tenant's `last_error` is left alone.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn record_skipped(
        &self,
        tenant: &TenantId,
        command: &str,
        reason: &str,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let mut tx = c.begin().await?;
        sqlx::query(
            "INSERT INTO sync_runs (tenant_id, command, orders_api, finished_at, outcome, error)
             VALUES ($1, $2, 'unknown', now(), 'skipped', $3)",
        )
        .bind(tenant.as_str())
        .bind(command)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        add_run_counter(&mut tx, tenant, command, RunOutcome::Skipped).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Closes a run: its final numbers and outcome, the tenant's health, the counters. The run
    /// row is only closed if it is still `running` (a pass that lost its lock never turns the
    /// `abandoned` its successor wrote back into anything else), and the tenant's state is only
    /// touched while this pass holds the newest fencing token. The cursor is not touched here.
    ///
    /// - `success`: for a delta, `last_success_at` moves and the error clears;
    /// - `partial` (time budget spent): the error clears (the pass made progress) and the
    ///   backlog estimate is kept; `last_success_at` stays, as the tenant is not caught up;
    /// - `failed`: `last_error` is set, `error_since` if it was not.
    #[instrument(skip_all, fields(tenant = %tenant, run_id = tally.run_id))]
    pub async fn finish_run(
        &self,
        tenant: &TenantId,
        command: &str,
        tally: &RunTally,
        outcome: RunOutcome,
        error: Option<&str>,
        marks_success: bool,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let mut tx = c.begin().await?;
        // The state row first, as every transaction touching both does (see `start_run`).
        sqlx::query(
            "SELECT 1 FROM marketplace_sync_state WHERE tenant_id = $1 AND type = $2 FOR UPDATE",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .execute(&mut *tx)
        .await?;
        record_tally(&mut tx, tenant, tally).await?;
        let report = &tally.report;
        let backlog = report.backlog.unwrap_or_default();
        sqlx::query(
            "UPDATE sync_runs SET finished_at = now(), outcome = $2, items_pending = $3, error = $4,
                    backlog_orders = $5, catch_up_secs = $6
              WHERE id = $1 AND outcome = 'running'",
        )
        .bind(tally.run_id)
        .bind(outcome.as_str())
        .bind((report.items_pending >= 0).then(|| clamp_i32(report.items_pending as u64)))
        .bind(error)
        .bind(backlog.orders.map(|n| clamp_i32(n.max(0) as u64)))
        .bind(backlog.catch_up_secs.map(|n| clamp_i32(n.max(0) as u64)))
        .execute(&mut *tx)
        .await?;
        add_run_counter(&mut tx, tenant, command, outcome).await?;
        let fence = self.fence();
        let state_update = match (outcome, error) {
            (_, Some(_)) | (RunOutcome::Failed, None) => Some(
                "UPDATE marketplace_sync_state SET last_error = $4, last_error_at = now(),
                        error_since = COALESCE(error_since, now()), updated_at = now()
                  WHERE tenant_id = $1 AND type = $2 AND ($3::bigint IS NULL OR fence = $3)",
            ),
            (RunOutcome::Success, None) if marks_success => Some(
                "UPDATE marketplace_sync_state SET last_success_at = now(), last_error = NULL,
                        last_error_at = NULL, error_since = NULL, backlog_orders = NULL,
                        catch_up_secs = NULL, updated_at = now()
                  WHERE tenant_id = $1 AND type = $2 AND ($3::bigint IS NULL OR fence = $3)",
            ),
            (RunOutcome::Partial, None) => Some(
                "UPDATE marketplace_sync_state SET last_error = NULL, last_error_at = NULL,
                        error_since = NULL, backlog_orders = $5, catch_up_secs = $6, updated_at = now()
                  WHERE tenant_id = $1 AND type = $2 AND ($3::bigint IS NULL OR fence = $3)",
            ),
            _ => None,
        };
        if let Some(sql) = state_update {
            sqlx::query(sql)
                .bind(tenant.as_str())
                .bind(MARKETPLACE)
                .bind(fence)
                .bind(error.unwrap_or("the pass failed"))
                .bind(backlog.orders.map(|n| clamp_i32(n.max(0) as u64)))
                .bind(backlog.catch_up_secs.map(|n| clamp_i32(n.max(0) as u64)))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.open_runs.remove(tally.run_id);
        Ok(())
    }
}

/// In a commit's transaction: the run's numbers so far, the cumulative counters for what
/// happened since the last commit, and the rate buckets.
pub(super) async fn record_tally(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    tally: &RunTally,
) -> Result<()> {
    let r = &tally.report;
    sqlx::query(
        "UPDATE sync_runs SET window_after = $2, window_before = $3, orders_upserted = $4,
                items_upserted = $5, orders_quarantined = $6, pages = $7, api_calls = $8,
                throttled = $9
          WHERE id = $1 AND outcome = 'running'",
    )
    .bind(tally.run_id)
    .bind(r.window.map(|w| w.after))
    .bind(r.window.map(|w| w.before))
    .bind(clamp_i32(r.counts.orders))
    .bind(clamp_i32(r.counts.items))
    .bind(clamp_i32(r.counts.quarantined))
    .bind(clamp_i32(tally.pages))
    .bind(clamp_i32(r.api_calls))
    .bind(clamp_i32(r.throttled))
    .execute(&mut **tx)
    .await?;
    let d = &tally.unrecorded;
    if !d.is_empty() {
        let mut metrics = vec!["orders_written", "items_written"];
        let mut operations = vec!["", ""];
        let mut values = vec![d.orders as i64, d.items as i64];
        for c in &d.calls {
            metrics.extend(["api_calls", "api_throttled"]);
            operations.extend([c.operation, c.operation]);
            values.extend([c.calls as i64, c.throttled as i64]);
        }
        sqlx::query(
            "INSERT INTO sync_counters (tenant_id, metric, operation, value)
             SELECT $1, u.metric, u.operation, u.value
               FROM UNNEST($2::text[], $3::text[], $4::bigint[]) AS u(metric, operation, value)
              WHERE u.value > 0
             ON CONFLICT (tenant_id, metric, operation, command, outcome)
             DO UPDATE SET value = sync_counters.value + EXCLUDED.value",
        )
        .bind(tenant.as_str())
        .bind(&metrics)
        .bind(&operations)
        .bind(&values)
        .execute(&mut **tx)
        .await?;
    }
    super::buckets::save_buckets(tx, tenant, &tally.buckets).await
}

/// `runs_total{command, outcome}` + 1.
async fn add_run_counter(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    command: &str,
    outcome: RunOutcome,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sync_counters (tenant_id, metric, command, outcome, value)
         VALUES ($1, 'runs', $2, $3, 1)
         ON CONFLICT (tenant_id, metric, operation, command, outcome)
         DO UPDATE SET value = sync_counters.value + 1",
    )
    .bind(tenant.as_str())
    .bind(command)
    .bind(outcome.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
