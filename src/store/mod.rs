//! Postgres: the only module that writes SQL.
//!
//! Owns orders and items upserts, the per-tenant sync state and cursor, the run log, the tenant
//! lock and saved rate buckets. Every multi-row change is one transaction: an order and its items,
//! a page and the progress marker that says it was stored. It never decides *what* to sync; the
//! engine does.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row, Transaction};
use tracing::instrument;

use crate::config::{OrdersApi, TenantId};
use crate::error::{Error, Result};
use crate::spapi::Operation;
use crate::spapi::pacing::BucketSnapshot;
use crate::sync::{ItemRecord, OrderRecord, RejectedOrder, SyncWindow};

/// The `marketplace` / `type` value of every row this tool writes.
pub const MARKETPLACE: &str = "AMAZON";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Runs this process opened and has not closed yet, for [`PgStore::fail_open_runs`].
    open_runs: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<i64>>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's options hold the password; say nothing about them.
        f.write_str("PgStore")
    }
}

/// What the store knows of an order before a page is applied.
#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub last_update_date: DateTime<Utc>,
    pub status: String,
    pub raw: serde_json::Value,
    pub items_stale: bool,
}

/// What to do with an order's items when writing it.
#[derive(Debug, Clone)]
pub enum ItemsUpdate {
    /// Replace the stored items with these (the whole list).
    Replace(Vec<ItemRecord>),
    /// Leave the stored items as they are.
    Keep,
    /// Fetching them failed or was deferred: keep them marked stale, with the reason.
    Pending(String),
}

#[derive(Debug, Clone)]
pub struct OrderWrite {
    pub order: OrderRecord,
    pub items: ItemsUpdate,
}

/// What a committed page means for the window.
#[derive(Debug, Clone)]
pub enum PageProgress {
    /// More pages follow: remember where to continue if this process dies.
    Continue { window: SyncWindow, token: String },
    /// That was the last page: the cursor moves to the window's end (never backwards) and the
    /// resume point is cleared.
    WindowDone { window: SyncWindow },
    /// A page of an operator's backfill: no resume point is saved or cleared (a delta's stays
    /// intact); after the last page the cursor moves only if the window started at or before it,
    /// so no gap opens, and a tenant without a cursor keeps none.
    Backfill { window: SyncWindow, last_page: bool },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    pub orders: u64,
    pub items: u64,
    pub quarantined: u64,
}

impl std::ops::AddAssign for WriteCounts {
    fn add_assign(&mut self, other: Self) {
        self.orders += other.orders;
        self.items += other.items;
        self.quarantined += other.quarantined;
    }
}

/// An interrupted window.
#[derive(Debug, Clone)]
pub struct ResumePoint {
    pub api: String,
    pub window: SyncWindow,
    pub token: String,
    pub saved_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct SyncState {
    pub cursor: Option<DateTime<Utc>>,
    pub resume: Option<ResumePoint>,
}

/// The numbers of a finished run.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub window: Option<SyncWindow>,
    pub counts: WriteCounts,
    pub items_pending: Option<i64>,
    pub api_calls: u64,
    pub throttled: u64,
    pub error: Option<String>,
}

/// A tenant's sync lock: a session-level advisory lock on a connection of its own, so that it
/// dies with the process even if nobody releases it.
pub struct TenantLock {
    conn: PgConnection,
    key: String,
}

impl TenantLock {
    pub async fn release(mut self) -> Result<()> {
        sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(&self.key)
            .execute(&mut self.conn)
            .await?;
        self.conn.close().await?;
        Ok(())
    }
}

/// `status --json`: the old backend's shape, plus a few fields.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    pub tenant_id: String,
    pub marketplace: &'static str,
    pub sync_state: SyncStateView,
    pub counts: Counts,
    pub last_run: Option<RunView>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStateView {
    pub last_updated_after: Option<String>,
    pub last_polled_at: Option<String>,
    pub last_success_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub orders: i64,
    pub items: i64,
    /// Orders whose items are missing or stale.
    pub orders_awaiting_items: i64,
    /// Orders Amazon sent that could not be read (table `order_quarantine`).
    pub orders_quarantined: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    pub command: String,
    pub orders_api: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: String,
    pub orders_upserted: i32,
    pub orders_quarantined: i32,
    pub items_upserted: i32,
    pub api_calls: i32,
    pub throttled: i32,
    pub error: Option<String>,
}

/// JavaScript's `toISOString()` form, which the old endpoint served.
pub fn js_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl PgStore {
    /// Connects to `DATABASE_URL`. The URL never appears in the error.
    pub async fn connect(database_url: &str, max_connections: u32) -> Result<Self> {
        let options = PgConnectOptions::from_str(database_url)
            .map_err(|_| Error::Config("DATABASE_URL is not a valid postgres:// URL".to_owned()))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(15))
            .connect_with(options)
            .await?;
        Ok(PgStore::from_pool(pool))
    }

    pub fn from_pool(pool: PgPool) -> Self {
        PgStore {
            pool,
            open_runs: Default::default(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the embedded migrations. sqlx holds an advisory lock meanwhile, so two
    /// concurrent `migrate` runs are safe; applied migrations are skipped.
    #[instrument(skip_all)]
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Fails with a clear message when `migrate` has not been run against this database.
    #[instrument(skip_all)]
    pub async fn check_schema(&self) -> Result<()> {
        let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .unwrap_or(None);
        match applied {
            Some(v) if v >= latest => Ok(()),
            _ => Err(Error::Config(
                "the database schema is missing or out of date: run `keybuzz-sync migrate` first"
                    .to_owned(),
            )),
        }
    }

    /// Takes the tenant's lock without waiting.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn try_lock_tenant(&self, tenant: &TenantId) -> Result<TenantLock> {
        let options = self.pool.connect_options();
        let mut conn = PgConnection::connect_with(&options).await?;
        let key = format!("keybuzz-sync:{tenant}");
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(&key)
                .fetch_one(&mut conn)
                .await?;
        if !locked {
            let _ = conn.close().await;
            return Err(Error::AlreadyRunning(tenant.clone()));
        }
        Ok(TenantLock { conn, key })
    }

    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn sync_state(&self, tenant: &TenantId) -> Result<SyncState> {
        let row = sqlx::query(
            "SELECT cursor, resume_api, resume_after, resume_before, resume_token, resume_saved_at
               FROM marketplace_sync_state WHERE tenant_id = $1 AND type = $2",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(SyncState::default());
        };
        let resume = match (
            row.try_get::<Option<String>, _>("resume_api")?,
            row.try_get::<Option<DateTime<Utc>>, _>("resume_after")?,
            row.try_get::<Option<DateTime<Utc>>, _>("resume_before")?,
            row.try_get::<Option<String>, _>("resume_token")?,
            row.try_get::<Option<DateTime<Utc>>, _>("resume_saved_at")?,
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
        Ok(SyncState {
            cursor: row.try_get("cursor")?,
            resume,
        })
    }

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
        self.open_runs
            .lock()
            .expect("open runs lock poisoned")
            .insert(id);
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
            "INSERT INTO marketplace_sync_state (tenant_id, type, last_error, last_error_at)
             VALUES ($1, $2, $3, now())
             ON CONFLICT (tenant_id, type) DO UPDATE SET last_error = EXCLUDED.last_error,
                    last_error_at = now(), updated_at = now()",
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
        let ids: Vec<i64> = self
            .open_runs
            .lock()
            .expect("open runs lock poisoned")
            .iter()
            .copied()
            .collect();
        sqlx::query(
            "WITH failed AS (
                 UPDATE sync_runs SET outcome = 'failed', finished_at = now(), error = $2
                  WHERE id = ANY($1) AND outcome = 'running'
                 RETURNING tenant_id)
             UPDATE marketplace_sync_state SET last_error = $2, last_error_at = now(), updated_at = now()
              WHERE type = $3 AND tenant_id IN (SELECT tenant_id FROM failed)",
        )
        .bind(&ids)
        .bind(error)
        .bind(MARKETPLACE)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Closes a run. On success the tenant's `last_success_at` moves (for delta passes) and
    /// `last_error` clears; on failure `last_error` is set. The cursor is not touched here.
    #[instrument(skip_all, fields(tenant = %tenant, run_id))]
    pub async fn finish_run(
        &self,
        tenant: &TenantId,
        run_id: i64,
        summary: &RunSummary,
        marks_success: bool,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let outcome = if summary.error.is_some() {
            "failed"
        } else {
            "success"
        };
        sqlx::query(
            "UPDATE sync_runs SET finished_at = now(), outcome = $2, window_after = $3, window_before = $4,
                    orders_upserted = $5, items_upserted = $6, items_pending = $7, api_calls = $8,
                    throttled = $9, error = $10, orders_quarantined = $11
              WHERE id = $1",
        )
        .bind(run_id)
        .bind(outcome)
        .bind(summary.window.map(|w| w.after))
        .bind(summary.window.map(|w| w.before))
        .bind(clamp_i32(summary.counts.orders))
        .bind(clamp_i32(summary.counts.items))
        .bind(summary.items_pending.map(|n| n as i32))
        .bind(clamp_i32(summary.api_calls))
        .bind(clamp_i32(summary.throttled))
        .bind(summary.error.as_deref())
        .bind(clamp_i32(summary.counts.quarantined))
        .execute(&mut *tx)
        .await?;
        match &summary.error {
            Some(error) => {
                sqlx::query(
                    "UPDATE marketplace_sync_state SET last_error = $3, last_error_at = now(), updated_at = now()
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
                            last_error_at = NULL, updated_at = now()
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
        self.open_runs
            .lock()
            .expect("open runs lock poisoned")
            .remove(&run_id);
        Ok(())
    }

    /// The stored version of each of these orders, when there is one.
    #[instrument(skip_all, fields(tenant = %tenant, count = ids.len()))]
    pub async fn stored_orders(
        &self,
        tenant: &TenantId,
        ids: &[String],
    ) -> Result<HashMap<String, StoredOrder>> {
        let rows = sqlx::query(
            "SELECT external_order_id, last_update_date, status, raw, items_stale
               FROM orders WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = ANY($3)",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok((
                    row.try_get("external_order_id")?,
                    StoredOrder {
                        last_update_date: row.try_get("last_update_date")?,
                        status: row.try_get("status")?,
                        raw: row.try_get("raw")?,
                        items_stale: row.try_get("items_stale")?,
                    },
                ))
            })
            .collect()
    }

    /// Writes one page and its progress marker in one transaction. `readable` lists every order
    /// of the page that could be read, written or not.
    #[instrument(skip_all, fields(tenant = %tenant, orders = writes.len()))]
    pub async fn write_page(
        &self,
        tenant: &TenantId,
        api: OrdersApi,
        readable: &[String],
        writes: &[OrderWrite],
        rejected: &[RejectedOrder],
        progress: &PageProgress,
    ) -> Result<WriteCounts> {
        let mut tx = self.pool.begin().await?;
        let mut counts = WriteCounts::default();
        // A readable copy of an order supersedes a quarantined one, written or not.
        sqlx::query(
            "DELETE FROM order_quarantine
              WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = ANY($3)",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .bind(readable)
        .execute(&mut *tx)
        .await?;
        counts += write_orders(&mut tx, tenant, api, writes).await?;
        for r in rejected {
            sqlx::query(
                "INSERT INTO order_quarantine (tenant_id, marketplace, external_order_id, source_api, raw, error)
                 VALUES ($1, $2, COALESCE($3, 'unidentified:' || md5($5::text)), $4, $5, $6)
                 ON CONFLICT (tenant_id, marketplace, external_order_id) DO UPDATE SET
                     source_api = EXCLUDED.source_api, raw = EXCLUDED.raw, error = EXCLUDED.error,
                     last_seen_at = now()",
            )
            .bind(tenant.as_str())
            .bind(MARKETPLACE)
            .bind(r.order_id.as_deref())
            .bind(api.as_str())
            .bind(&r.raw)
            .bind(&r.error)
            .execute(&mut *tx)
            .await?;
            counts.quarantined += 1;
        }
        match progress {
            PageProgress::Continue { window, token } => {
                sqlx::query(
                    "UPDATE marketplace_sync_state SET resume_api = $3, resume_after = $4, resume_before = $5,
                            resume_token = $6, resume_saved_at = now(), updated_at = now()
                      WHERE tenant_id = $1 AND type = $2",
                )
                .bind(tenant.as_str())
                .bind(MARKETPLACE)
                .bind(api.as_str())
                .bind(window.after)
                .bind(window.before)
                .bind(token)
                .execute(&mut *tx)
                .await?;
            }
            PageProgress::Backfill {
                window,
                last_page: true,
            } => {
                sqlx::query(
                    "UPDATE marketplace_sync_state SET cursor = GREATEST(cursor, $3), updated_at = now()
                      WHERE tenant_id = $1 AND type = $2 AND cursor IS NOT NULL AND $4 <= cursor",
                )
                .bind(tenant.as_str())
                .bind(MARKETPLACE)
                .bind(window.before)
                .bind(window.after)
                .execute(&mut *tx)
                .await?;
            }
            PageProgress::Backfill { .. } => {}
            PageProgress::WindowDone { window } => {
                // GREATEST ignores NULL: a first window sets the cursor, later ones never move it back.
                sqlx::query(
                    "UPDATE marketplace_sync_state SET cursor = GREATEST(cursor, $3), resume_api = NULL,
                            resume_after = NULL, resume_before = NULL, resume_token = NULL,
                            resume_saved_at = NULL, updated_at = now()
                      WHERE tenant_id = $1 AND type = $2",
                )
                .bind(tenant.as_str())
                .bind(MARKETPLACE)
                .bind(window.before)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(counts)
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

    /// Orders whose items are missing or stale: never tried first, then the longest waiting,
    /// most recently updated first among equals.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn orders_awaiting_items(
        &self,
        tenant: &TenantId,
        limit: i64,
    ) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT external_order_id FROM orders
              WHERE tenant_id = $1 AND marketplace = $2 AND items_stale
              ORDER BY items_attempted_at NULLS FIRST, last_update_date DESC, external_order_id
              LIMIT $3",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn count_awaiting_items(&self, tenant: &TenantId) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM orders WHERE tenant_id = $1 AND marketplace = $2 AND items_stale",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Stores (or marks as still pending) the items of an order that is already stored.
    #[instrument(skip_all, fields(tenant = %tenant, order_id))]
    pub async fn write_items(
        &self,
        tenant: &TenantId,
        order_id: &str,
        items: &ItemsUpdate,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let n = apply_items(&mut tx, tenant, &[(order_id, items)]).await?;
        tx.commit().await?;
        Ok(n)
    }

    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn load_buckets(&self, tenant: &TenantId) -> Result<Vec<BucketSnapshot>> {
        let rows = sqlx::query(
            "SELECT operation, rate, burst, tokens, saved_at FROM api_rate_buckets WHERE tenant_id = $1",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let name: String = row.try_get("operation")?;
            // A bucket of an operation this build does not know is ignored, not an error.
            if let Some(operation) = Operation::from_name(&name) {
                out.push(BucketSnapshot {
                    operation,
                    rate: row.try_get("rate")?,
                    burst: row.try_get("burst")?,
                    tokens: row.try_get("tokens")?,
                    at: row.try_get("saved_at")?,
                });
            }
        }
        Ok(out)
    }

    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn save_buckets(&self, tenant: &TenantId, buckets: &[BucketSnapshot]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for b in buckets {
            sqlx::query(
                "INSERT INTO api_rate_buckets (tenant_id, operation, rate, burst, tokens, saved_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant_id, operation) DO UPDATE SET rate = EXCLUDED.rate,
                        burst = EXCLUDED.burst, tokens = EXCLUDED.tokens, saved_at = EXCLUDED.saved_at",
            )
            .bind(tenant.as_str())
            .bind(b.operation.name())
            .bind(b.rate)
            .bind(b.burst)
            .bind(b.tokens)
            .bind(b.at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// What `status` shows.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn status(&self, tenant: &TenantId) -> Result<TenantStatus> {
        let state = sqlx::query(
            "SELECT cursor, last_polled_at, last_success_at, last_error, last_error_at
               FROM marketplace_sync_state WHERE tenant_id = $1 AND type = $2",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .fetch_optional(&self.pool)
        .await?;
        let time = |row: &Option<sqlx::postgres::PgRow>, col: &str| -> Result<Option<String>> {
            Ok(match row {
                Some(r) => r.try_get::<Option<DateTime<Utc>>, _>(col)?.map(js_time),
                None => None,
            })
        };
        let sync_state = SyncStateView {
            last_updated_after: time(&state, "cursor")?,
            last_polled_at: time(&state, "last_polled_at")?,
            last_success_at: time(&state, "last_success_at")?,
            last_error: match &state {
                Some(r) => r.try_get("last_error")?,
                None => None,
            },
            last_error_at: time(&state, "last_error_at")?,
        };
        let counts = sqlx::query(
            "SELECT (SELECT count(*) FROM orders WHERE tenant_id = $1 AND marketplace = $2) AS orders,
                    (SELECT count(*) FROM order_items WHERE tenant_id = $1 AND marketplace = $2) AS items,
                    (SELECT count(*) FROM orders WHERE tenant_id = $1 AND marketplace = $2 AND items_stale) AS awaiting,
                    (SELECT count(*) FROM order_quarantine WHERE tenant_id = $1 AND marketplace = $2) AS quarantined",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .fetch_one(&self.pool)
        .await?;
        let last_run = sqlx::query(
            "SELECT command, orders_api, started_at, finished_at, outcome, orders_upserted,
                    orders_quarantined, items_upserted,
                    api_calls, throttled, error
               FROM sync_runs WHERE tenant_id = $1 ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        .bind(tenant.as_str())
        .fetch_optional(&self.pool)
        .await?
        .map(|r| -> Result<RunView> {
            Ok(RunView {
                command: r.try_get("command")?,
                orders_api: r.try_get("orders_api")?,
                started_at: js_time(r.try_get("started_at")?),
                finished_at: r
                    .try_get::<Option<DateTime<Utc>>, _>("finished_at")?
                    .map(js_time),
                outcome: r.try_get("outcome")?,
                orders_upserted: r.try_get("orders_upserted")?,
                orders_quarantined: r.try_get("orders_quarantined")?,
                items_upserted: r.try_get("items_upserted")?,
                api_calls: r.try_get("api_calls")?,
                throttled: r.try_get("throttled")?,
                error: r.try_get("error")?,
            })
        })
        .transpose()?;
        Ok(TenantStatus {
            tenant_id: tenant.to_string(),
            marketplace: MARKETPLACE,
            sync_state,
            counts: Counts {
                orders: counts.try_get("orders")?,
                items: counts.try_get("items")?,
                orders_awaiting_items: counts.try_get("awaiting")?,
                orders_quarantined: counts.try_get("quarantined")?,
            },
            last_run,
        })
    }
}

fn clamp_i32(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Upserts a page's orders, then applies their items updates: a handful of statements per
/// page, whatever its size.
///
/// An order only replaces the stored one when it is newer, or as new but different (a v0 row
/// re-read through v2026, say): an older copy never overwrites a newer one, and an identical one
/// changes nothing, not even `updated_at`.
async fn write_orders(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    api: OrdersApi,
    writes: &[OrderWrite],
) -> Result<WriteCounts> {
    // One row per order id (Postgres refuses to update a row twice in one statement): if a page
    // lists an order twice, the copy with the latest LastUpdateDate wins, the later one on a tie.
    // On a tie, a copy with fetched items is not given up for one whose items are pending.
    let items_rank = |w: &OrderWrite| match &w.items {
        ItemsUpdate::Replace(items) if !items.is_empty() => 2,
        ItemsUpdate::Keep => 1,
        _ => 0,
    };
    let mut latest: HashMap<&str, &OrderWrite> = HashMap::new();
    for w in writes {
        let id = w.order.external_order_id.as_str();
        let keep_previous = latest.get(id).is_some_and(|kept| {
            (kept.order.last_update_date, items_rank(kept))
                > (w.order.last_update_date, items_rank(w))
        });
        if !keep_previous {
            latest.insert(id, w);
        }
    }
    let mut writes: Vec<&OrderWrite> = latest.into_values().collect();
    writes.sort_by(|a, b| a.order.external_order_id.cmp(&b.order.external_order_id));
    if writes.is_empty() {
        return Ok(WriteCounts::default());
    }
    let column = |f: fn(&OrderRecord) -> Option<String>| {
        writes.iter().map(|w| f(&w.order)).collect::<Vec<_>>()
    };
    let upserted = sqlx::query(
        "INSERT INTO orders (tenant_id, marketplace, source_api, items_stale, external_order_id,
                             marketplace_id, status, purchase_date, last_update_date,
                             fulfillment_channel, order_total_amount, order_total_currency, raw)
         SELECT $1, $2, $3, true, u.*
           FROM UNNEST($4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::timestamptz[],
                       $9::text[], $10::numeric[], $11::text[], $12::jsonb[])
             AS u(external_order_id, marketplace_id, status, purchase_date, last_update_date,
                  fulfillment_channel, order_total_amount, order_total_currency, raw)
         ON CONFLICT (tenant_id, marketplace, external_order_id) DO UPDATE SET
             marketplace_id = EXCLUDED.marketplace_id,
             status = EXCLUDED.status,
             purchase_date = EXCLUDED.purchase_date,
             last_update_date = EXCLUDED.last_update_date,
             fulfillment_channel = EXCLUDED.fulfillment_channel,
             order_total_amount = EXCLUDED.order_total_amount,
             order_total_currency = EXCLUDED.order_total_currency,
             source_api = EXCLUDED.source_api,
             raw = EXCLUDED.raw,
             items_stale = orders.items_stale
                 OR orders.last_update_date <> EXCLUDED.last_update_date
                 OR orders.status <> EXCLUDED.status,
             updated_at = now()
         WHERE orders.last_update_date < EXCLUDED.last_update_date
            OR (orders.last_update_date = EXCLUDED.last_update_date AND orders.raw IS DISTINCT FROM EXCLUDED.raw)",
    )
    .bind(tenant.as_str())
    .bind(MARKETPLACE)
    .bind(api.as_str())
    .bind(column(|o| Some(o.external_order_id.clone())))
    .bind(column(|o| o.marketplace_id.clone()))
    .bind(column(|o| Some(o.status.as_str().to_owned())))
    .bind(writes.iter().map(|w| w.order.purchase_date).collect::<Vec<_>>())
    .bind(writes.iter().map(|w| w.order.last_update_date).collect::<Vec<_>>())
    .bind(column(|o| o.fulfillment_channel.clone()))
    .bind(writes.iter().map(|w| w.order.order_total_amount).collect::<Vec<_>>())
    .bind(column(|o| o.order_total_currency.clone()))
    .bind(writes.iter().map(|w| w.order.raw.clone()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let updates: Vec<(&str, &ItemsUpdate)> = writes
        .iter()
        .map(|w| (w.order.external_order_id.as_str(), &w.items))
        .collect();
    let items = apply_items(tx, tenant, &updates).await?;
    Ok(WriteCounts {
        orders: upserted,
        items,
        quarantined: 0,
    })
}

/// Applies items updates to orders that are stored: replaced lists in one delete and one insert
/// (per 1,000 items: Postgres takes at most 65,535 parameters), pending marks in one update.
async fn apply_items(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    updates: &[(&str, &ItemsUpdate)],
) -> Result<u64> {
    let mut replaced: Vec<&str> = Vec::new();
    let mut rows: Vec<(&str, &ItemRecord)> = Vec::new();
    let mut pending: Vec<(&str, &str)> = Vec::new();
    for (order_id, update) in updates {
        match update {
            ItemsUpdate::Keep => {}
            // Every Amazon order has at least one item: an empty list is not an answer to keep.
            ItemsUpdate::Replace(items) if items.is_empty() => {
                pending.push((order_id, "Amazon returned no items for this order"));
            }
            ItemsUpdate::Replace(items) => {
                replaced.push(order_id);
                rows.extend(items.iter().map(|item| (*order_id, item)));
            }
            ItemsUpdate::Pending(reason) => pending.push((order_id, reason.as_str())),
        }
    }

    if !pending.is_empty() {
        sqlx::query(
            "UPDATE orders o SET items_stale = true, items_error = u.reason, items_attempted_at = now()
               FROM UNNEST($3::text[], $4::text[]) AS u(external_order_id, reason)
              WHERE o.tenant_id = $1 AND o.marketplace = $2 AND o.external_order_id = u.external_order_id",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .bind(pending.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(pending.iter().map(|(_, reason)| *reason).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if replaced.is_empty() {
        return Ok(0);
    }
    sqlx::query(
        "DELETE FROM order_items WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = ANY($3)",
    )
    .bind(tenant.as_str())
    .bind(MARKETPLACE)
    .bind(&replaced)
    .execute(&mut **tx)
    .await?;
    for chunk in rows.chunks(1_000) {
        let mut insert = sqlx::QueryBuilder::<Postgres>::new(
            "INSERT INTO order_items (tenant_id, marketplace, external_order_id, order_item_id, asin,
                                      seller_sku, title, quantity_ordered, quantity_shipped,
                                      item_price_amount, item_tax_amount, shipping_price_amount,
                                      promotion_discount_amount, currency, raw) ",
        );
        insert.push_values(chunk, |mut row, (order_id, item)| {
            row.push_bind(tenant.as_str())
                .push_bind(MARKETPLACE)
                .push_bind(*order_id)
                .push_bind(&item.order_item_id)
                .push_bind(&item.asin)
                .push_bind(&item.seller_sku)
                .push_bind(&item.title)
                .push_bind(item.quantity_ordered)
                .push_bind(item.quantity_shipped)
                .push_bind(item.item_price_amount)
                .push_bind(item.item_tax_amount)
                .push_bind(item.shipping_price_amount)
                .push_bind(item.promotion_discount_amount)
                .push_bind(&item.currency)
                .push_bind(&item.raw);
        });
        insert.build().execute(&mut **tx).await?;
    }
    let updated = sqlx::query(
        "UPDATE orders SET items_stale = false, items_fetched_at = now(),
                items_fetched_status = status, items_error = NULL
          WHERE tenant_id = $1 AND marketplace = $2 AND external_order_id = ANY($3)",
    )
    .bind(tenant.as_str())
    .bind(MARKETPLACE)
    .bind(&replaced)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if updated != replaced.len() as u64 {
        // Items without their order would be orphans; the foreign key refuses them too, this
        // just says so in words.
        return Err(Error::Database(sqlx::Error::Protocol(format!(
            "items for {} orders of tenant {tenant}, of which only {updated} are stored",
            replaced.len()
        ))));
    }
    Ok(rows.len() as u64)
}
