//! Postgres: the only module that writes SQL.
//!
//! One concrete [`PgStore`] (there is one backend, and the guarantees live in SQL), its methods
//! split by table or concern:
//! - [`lock`]: the tenant's advisory lock;
//! - [`state`]: `marketplace_sync_state`, the cursor and the resume point;
//! - [`runs`]: `sync_runs`, and the runs this process has open;
//! - [`orders`]: `orders` and `order_quarantine`, a page and its progress marker;
//! - [`items`]: `order_items` and the items bookkeeping on `orders`;
//! - [`buckets`]: the `api_rate_buckets` table;
//! - [`status`]: what `status` and `check` read;
//! - [`history`]: `sync_runs` as history (`history`) and its retention;
//! - [`metrics`]: the cumulative `sync_counters` and each command's latest run, for metrics.
//!
//! Every multi-row change is one transaction: an order and its items, a page and the progress
//! marker that says it was stored. Rows come out typed (timestamps, enums of [`crate::model`]).
//! The store never decides *what* to sync (the engine does), knows nothing of HTTP or of the
//! Amazon client, and shapes no output (the commands do).

mod buckets;
mod history;
mod items;
mod lock;
mod metrics;
mod orders;
mod runs;
mod state;
mod status;

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tracing::instrument;

use crate::error::{Error, Result};
use crate::model::Secret;
pub use history::HistoryRun;
pub use lock::TenantLock;
pub use metrics::{CounterRow, LastRun};
pub use status::{RunRow, StatusCounts, StatusState, TenantStatus};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Runs this process opened and has not closed yet, for [`PgStore::fail_open_runs`].
    open_runs: runs::OpenRuns,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's options hold the password; say nothing about them.
        f.write_str("PgStore")
    }
}

impl PgStore {
    /// Connects to `DATABASE_URL`. The URL never appears in the error.
    pub async fn connect(database_url: &Secret, max_connections: u32) -> Result<Self> {
        let options = PgConnectOptions::from_str(database_url.expose())
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
}

/// Counters are `u64` in Rust and `integer` in `sync_runs`; a run never writes 2^31 rows, but
/// a clamp is cheaper than an overflow error in the bookkeeping of a run that worked.
fn clamp_i32(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
