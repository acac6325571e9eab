//! What every pass does around its work, whatever the work (Orders API or reports): take the
//! tenant's lock, run on the lock's connection, release it; and, when the work ended, say how
//! the run ends and through which store it can still be closed.

use std::future::Future;

use crate::error::{Error, Result};
use crate::model::{RunOutcome, TenantId};
use crate::store::PgStore;

/// Runs `pass` holding the tenant's lock, with the store bound to the lock's connection.
/// Returns [`Error::AlreadyRunning`] without running it when another process holds the lock.
pub(super) async fn under_lock<T, F, Fut>(store: &PgStore, tenant: &TenantId, pass: F) -> Result<T>
where
    F: FnOnce(PgStore) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let lock = store.try_lock_tenant(tenant).await?;
    // The pass gets its own handle on the lock's store (a clone shares the connection).
    let result = pass(lock.store().clone()).await;
    if let Err(e) = lock.release().await {
        // Closing the lock's connection releases it anyway; the pass result matters more.
        tracing::debug!("releasing the tenant lock failed: {e}");
    }
    result
}

/// How a pass's work ended, as the run records it.
pub(super) struct Ending {
    pub result: Result<()>,
    pub outcome: RunOutcome,
    pub error: Option<String>,
    /// The store to close the run through: the pass's own, or the pool when the pass's
    /// connection is gone.
    pub closing: PgStore,
}

/// `success`, `partial` when the run's time budget ended the work, `failed` otherwise. A
/// failed statement on the lock's own connection means the lock went with it: that is reported
/// as the lost lock it is.
pub(super) async fn ending(store: &PgStore, tenant: &TenantId, result: Result<()>) -> Ending {
    let alive = store.session_alive().await;
    let result = match result {
        Err(Error::Database(e)) if !alive => Err(Error::LockLost {
            tenant: tenant.clone(),
            detail: format!("its database connection failed: {e}"),
        }),
        other => other,
    };
    let (outcome, error) = match &result {
        Ok(()) => (RunOutcome::Success, None),
        Err(Error::OutOfTime { .. }) => (RunOutcome::Partial, None),
        Err(e) => (RunOutcome::Failed, Some(e.to_string())),
    };
    Ending {
        result,
        outcome,
        error,
        closing: if alive {
            store.clone()
        } else {
            store.unbound()
        },
    }
}
