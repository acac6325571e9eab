//! The tenant's sync lock: at most one pass per tenant at a time, across processes and pods.
//!
//! The lock is a session-level advisory lock on a connection taken from the pool for the whole
//! pass; the pass then runs every statement on that same connection ([`TenantLock::store`]), so
//! a process never holds more connections than its pool allows. Because a lock can vanish without
//! the pass noticing (the connection cut, a failover, a proxy such as PgBouncer in transaction
//! mode), every commit of the pass also checks a fencing token ([`PgStore::check_fence`]): each
//! pass that takes the lock increments the tenant's `fence`, and a commit whose pass no longer
//! holds the newest fence, or whose connection no longer holds the advisory lock, is refused.

use std::sync::Arc;
use std::sync::Mutex;

use sqlx::pool::PoolConnection;
use sqlx::{Postgres, Transaction};
use tracing::instrument;

use super::PgStore;
use crate::error::{Error, Result};
use crate::model::{MARKETPLACE, TenantId};

/// The connection a pass runs on, with the lock and the fencing token it holds.
pub(super) struct Session {
    /// A tokio mutex: a store call holds it across its awaits, one statement at a time, as the
    /// connection itself would anyway.
    pub conn: tokio::sync::Mutex<PoolConnection<Postgres>>,
    pub tenant: TenantId,
    pub key: String,
    /// The fencing token this pass took in `start_run`. A std mutex: set once, read briefly,
    /// never held across an await.
    pub fence: Mutex<Option<i64>>,
}

/// A tenant's sync lock, held by a connection of the pool reserved for the pass.
pub struct TenantLock {
    store: PgStore,
}

impl TenantLock {
    /// The store bound to the lock's connection: the pass runs every statement through it.
    pub fn store(&self) -> &PgStore {
        &self.store
    }

    /// Releases the lock. The connection is closed rather than returned to the pool (closing it
    /// would release the lock anyway, and a connection that failed mid-pass is not reused).
    pub async fn release(self) -> Result<()> {
        let session = self
            .store
            .session
            .as_ref()
            .expect("a lock's store has a session");
        let mut conn = session.conn.lock().await;
        sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(&session.key)
            .execute(&mut **conn)
            .await?;
        Ok(())
    }
}

impl PgStore {
    /// Takes the tenant's lock without waiting; [`Error::AlreadyRunning`] when it is held.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn try_lock_tenant(&self, tenant: &TenantId) -> Result<TenantLock> {
        let mut conn = self.pool.acquire().await?;
        // Dropped without release (a panic, a cancelled pass): close it, so the lock goes with
        // it instead of staying held on a pooled connection.
        conn.close_on_drop();
        let key = format!("keybuzz-sync:{tenant}");
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(&key)
                .fetch_one(&mut *conn)
                .await?;
        if !locked {
            return Err(Error::AlreadyRunning(tenant.clone()));
        }
        let session = super::lock::Session {
            conn: tokio::sync::Mutex::new(conn),
            tenant: tenant.clone(),
            key,
            fence: Mutex::new(None),
        };
        Ok(TenantLock {
            store: PgStore {
                pool: self.pool.clone(),
                open_runs: self.open_runs.clone(),
                session: Some(Arc::new(session)),
                unbound_fence: None,
            },
        })
    }

    /// This store without its session: for what must still be written after the session's
    /// connection failed (closing the run). It keeps the session's fencing token, so that
    /// [`PgStore::finish_run`] still leaves the tenant's state alone once another pass took the
    /// tenant over.
    pub fn unbound(&self) -> PgStore {
        PgStore {
            session: None,
            unbound_fence: self.fence(),
            ..self.clone()
        }
    }

    /// Whether this store's session connection still answers.
    pub async fn session_alive(&self) -> bool {
        match &self.session {
            Some(session) => {
                let mut conn = session.conn.lock().await;
                sqlx::query("SELECT 1").execute(&mut **conn).await.is_ok()
            }
            None => true,
        }
    }

    /// The fencing token this session took (or, unbound, the session it was made from), if any.
    pub(super) fn fence(&self) -> Option<i64> {
        match &self.session {
            Some(session) => *session.fence.lock().unwrap_or_else(|p| p.into_inner()),
            None => self.unbound_fence,
        }
    }

    pub(super) fn set_fence(&self, fence: i64) {
        if let Some(session) = &self.session {
            *session.fence.lock().unwrap_or_else(|p| p.into_inner()) = Some(fence);
        }
    }

    /// In a pass's transaction: fails with [`Error::LockLost`], so that the transaction rolls
    /// back, unless this session still holds the tenant's advisory lock and the newest fencing
    /// token. Locks the tenant's state row until the transaction ends, so that a pass taking
    /// the tenant over (which increments the token on that row) waits for this commit or makes
    /// it fail, never the reverse. A store without a session (tests, tools) is not checked.
    pub(super) async fn check_fence(&self, tx: &mut Transaction<'_, Postgres>) -> Result<()> {
        let (Some(session), Some(fence)) = (&self.session, self.fence()) else {
            return Ok(());
        };
        let (current, locked): (Option<i64>, bool) = sqlx::query_as(
            "SELECT (SELECT fence FROM marketplace_sync_state WHERE tenant_id = $1 AND type = $2 FOR UPDATE),
                    EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
                               AND pid = pg_backend_pid())",
        )
        .bind(session.tenant.as_str())
        .bind(MARKETPLACE)
        .fetch_one(&mut **tx)
        .await?;
        let detail = match (current, locked) {
            (Some(current), true) if current == fence => return Ok(()),
            (Some(current), _) if current != fence => {
                format!(
                    "another pass took the tenant over (fencing token {current}, this pass held {fence})"
                )
            }
            _ => "this pass's database session no longer holds the advisory lock".to_owned(),
        };
        Err(Error::LockLost {
            tenant: session.tenant.clone(),
            detail,
        })
    }
}
