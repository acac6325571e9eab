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
//! - [`bulk`]: the write path of pages and report imports (array parameters, key probes);
//! - [`report_jobs`]: `report_jobs`, a tenant's report windows and where each stands;
//! - [`report_import`]: a batch of report orders, with the report's merge rules;
//! - [`status`]: what `status` and `check` read;
//! - [`history`]: `sync_runs` as history (`history`) and its retention;
//! - [`metrics`]: the cumulative `sync_counters` and each command's latest run, for metrics.
//!
//! Every multi-row change is one transaction: an order and its items, a page and the progress
//! marker that says it was stored. Rows come out typed (timestamps, enums of [`crate::model`]).
//! The store never decides *what* to sync (the engine does), knows nothing of HTTP or of the
//! Amazon client, and shapes no output (the commands do).

mod buckets;
mod bulk;
mod history;
mod items;
mod lock;
mod metrics;
mod orders;
mod report_import;
mod report_jobs;
mod runs;
mod state;
mod status;

use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres};
use tracing::instrument;

use crate::error::{Error, Result};
use crate::model::Secret;
pub use history::HistoryRun;
pub use lock::TenantLock;
pub use metrics::{CounterRow, LastRun};
pub use report_import::{BatchResult, ImportBatch, ItemIdChange};
pub use report_jobs::JobChange;
pub use state::Standing;
pub use status::{RunRow, StatusCounts, StatusState, TenantStatus};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long to wait for the database to accept a connection before saying why it did not.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The store: a pool of connections, or, for a pass, the one connection that holds the
/// tenant's lock (see [`TenantLock::store`]).
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Runs this process opened and has not closed yet, for [`PgStore::fail_open_runs`].
    open_runs: runs::OpenRuns,
    /// Set when this store is bound to a tenant's lock connection.
    session: Option<Arc<lock::Session>>,
    /// The fencing token of the session an [`PgStore::unbound`] store was made from, so that
    /// closing a pass off its failed session still touches the tenant's state only while that
    /// pass holds the newest token.
    unbound_fence: Option<i64>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's options hold the password; say nothing about them.
        f.write_str("PgStore")
    }
}

/// A connection for one store call: from the pool, or the session's own.
enum Conn<'a> {
    Pooled(PoolConnection<Postgres>),
    Session(tokio::sync::MutexGuard<'a, PoolConnection<Postgres>>),
}

impl Deref for Conn<'_> {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        match self {
            Conn::Pooled(c) => c,
            Conn::Session(c) => c,
        }
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            Conn::Pooled(c) => c,
            Conn::Session(c) => c,
        }
    }
}

/// Checks that `DATABASE_URL` is a Postgres URL before anything tries it: another scheme would
/// otherwise fail later as a confusing network error. Only the scheme is quoted.
pub fn check_database_url(url: &Secret) -> Result<PgConnectOptions> {
    let scheme = url.expose().split_once("://").map(|(scheme, _)| scheme);
    match scheme {
        Some("postgres" | "postgresql") => {}
        Some(other)
            if other.len() <= 20
                && other.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') =>
        {
            return Err(Error::Config(format!(
                "DATABASE_URL must be a postgres:// or postgresql:// URL, not {other}://"
            )));
        }
        _ => {
            return Err(Error::Config(
                "DATABASE_URL must be a postgres:// or postgresql:// URL".to_owned(),
            ));
        }
    }
    PgConnectOptions::from_str(url.expose())
        .map_err(|_| Error::Config("DATABASE_URL is not a valid postgres:// URL".to_owned()))
}

impl PgStore {
    /// Connects to `DATABASE_URL` with at most `max_connections` connections, whatever else
    /// happens in the process. One connection is made first, with a short timeout, so that a
    /// refused connection or a failed login is reported as such (a pool would only say that it
    /// timed out). The URL, and so the password, never appears in an error.
    pub async fn connect(database_url: &Secret, max_connections: u32) -> Result<Self> {
        let options = check_database_url(database_url)?;
        let target = format!(
            "the database at {}:{}",
            options.get_host(),
            options.get_port()
        );
        let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| {
                Error::Unavailable(format!(
                    "cannot connect to {target}: no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| Error::Unavailable(format!("cannot connect to {target}: {e}")))?;
        let _ = first.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            // Waiting for a free connection is normal when passes outnumber connections; the
            // caller bounds how many wait at once.
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options)
            .await?;
        Ok(PgStore::from_pool(pool))
    }

    pub fn from_pool(pool: PgPool) -> Self {
        PgStore {
            pool,
            open_runs: Default::default(),
            session: None,
            unbound_fence: None,
        }
    }

    /// A connection for one call. A session store always uses its own connection (it holds the
    /// lock, and every commit of the pass checks the lock on it); the tokio mutex is held across
    /// the call's awaits because a connection runs one statement at a time anyway.
    async fn conn(&self) -> Result<Conn<'_>> {
        Ok(match &self.session {
            Some(session) => Conn::Session(session.conn.lock().await),
            None => Conn::Pooled(self.pool.acquire().await?),
        })
    }

    /// Applies the embedded migrations. sqlx holds an advisory lock meanwhile, so two
    /// concurrent `migrate` runs are safe; applied migrations are skipped.
    #[instrument(skip_all)]
    pub async fn migrate(&self) -> Result<()> {
        let mut c = self.conn().await?;
        MIGRATOR.run(&mut *c).await?;
        Ok(())
    }

    /// Fails with a clear message when `migrate` has not been run against this database.
    #[instrument(skip_all)]
    pub async fn check_schema(&self) -> Result<()> {
        let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let mut c = self.conn().await?;
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&mut *c)
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
