//! Run retention: at the end of each sync command, `sync_runs` rows older than
//! `--keep-runs-days` (every tenant's, never a `running` one) are deleted. The cumulative
//! `sync_counters`, which metrics read, are never pruned.
//!
//! Retention is housekeeping: a failure is logged and never changes the run's exit status.

use keybuzz_sync::store::PgStore;

/// Deletes the runs that started more than `keep` ago; logs what happened.
pub async fn prune_runs(store: &PgStore, keep: chrono::Duration) {
    match store.prune_runs(keep).await {
        Ok(0) => tracing::debug!(
            keep_days = keep.num_days(),
            "no run older than the retention"
        ),
        Ok(pruned) => tracing::info!(
            pruned,
            keep_days = keep.num_days(),
            "deleted runs older than the retention"
        ),
        Err(e) => tracing::warn!("deleting old runs failed (the sync itself is unaffected): {e}"),
    }
}
