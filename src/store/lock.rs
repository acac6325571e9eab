//! The tenant's sync lock: at most one pass per tenant at a time, across processes and pods.

use sqlx::{Connection, PgConnection};
use tracing::instrument;

use super::PgStore;
use crate::error::{Error, Result};
use crate::model::TenantId;

/// A tenant's sync lock: a session-level advisory lock on a connection of its own (not a pooled
/// one), so that it dies with the process, or with the connection, even if nobody releases it.
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

impl PgStore {
    /// Takes the tenant's lock without waiting; [`Error::AlreadyRunning`] when it is held.
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
}
