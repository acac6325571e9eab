//! One module per subcommand, and the exit codes they end with.
//!
//! Commands connect the parts (config, store, client, engine) and report; they hold no sync
//! logic of their own.

pub mod migrate;
pub mod status;
pub mod sync;

use crate::cli::{Cli, Command};
use crate::error::{Error, Result};
use crate::store::PgStore;

/// The process exit codes, as documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// Everything asked for was done.
    Success = 0,
    /// At least one tenant's pass failed (SP-API, Login with Amazon, database), or a command failed.
    Failure = 1,
    /// Usage error, reported by clap (unknown flag, missing `--tenant`, ...).
    Usage = 2,
    /// Invalid configuration: missing credentials, bad URL, schema not migrated, or an unreadable
    /// or invalid tenant file (the other tenants still ran), and no pass failed.
    Config = 3,
    /// A tenant's pass is already running elsewhere (its lock is held); nothing else went wrong.
    Locked = 4,
}

impl ExitStatus {
    /// The status for a failure of the whole command.
    pub fn for_error(error: &Error) -> Self {
        match error {
            Error::Config(_) => ExitStatus::Config,
            Error::AlreadyRunning(_) => ExitStatus::Locked,
            _ => ExitStatus::Failure,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status as u8)
    }
}

/// Connects to the database named by `--database-url` / `DATABASE_URL`.
pub async fn connect(database_url: Option<&str>, max_connections: u32) -> Result<PgStore> {
    let url = database_url
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Error::Config("DATABASE_URL (or --database-url) is not set".to_owned()))?;
    PgStore::connect(url, max_connections).await
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<ExitStatus> {
    let db = cli.global.database_url.as_deref();
    match cli.command {
        Command::Migrate => migrate::run(db).await,
        Command::Delta(args) => sync::run(db, &args, sync::Mode::Delta).await,
        Command::Items(args) => {
            sync::run(db, &args.sync, sync::Mode::Items { limit: args.limit }).await
        }
        Command::Backfill(args) => {
            let mode = sync::Mode::Backfill {
                since: args.since,
                until: args.until,
            };
            sync::run(db, &args.sync, mode).await
        }
        Command::Status(args) => status::run(db, &args).await,
    }
}
