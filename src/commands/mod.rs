//! One module per subcommand, and the exit codes they end with.
//!
//! Commands turn the command line into a plan ([`plan`]), connect the parts (config, store,
//! sources, engine) and report; they hold no sync logic of their own.

mod check;
mod history;
mod migrate;
mod output;
mod plan;
pub mod progress;
mod retention;
mod status;
mod sync;
mod tenants;

use keybuzz_sync::model::Secret;
use keybuzz_sync::store::PgStore;
use keybuzz_sync::{Error, Result};

use crate::cli::{Cli, Command};
use crate::signal::Shutdown;

/// The process exit codes, as documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// Everything asked for was done.
    Success = 0,
    /// At least one tenant's pass failed (SP-API, Login with Amazon, database), or a command failed.
    Failure = 1,
    /// Usage error, reported by clap (unknown flag, missing `--tenant`, ...).
    #[allow(dead_code)] // clap exits with it on its own; listed for the documentation.
    Usage = 2,
    /// Invalid configuration: missing credentials, bad URL, schema not migrated, or an unreadable
    /// or invalid tenant file (the other tenants still ran), and no pass failed.
    Config = 3,
    /// A tenant's pass is already running elsewhere (its lock is held); nothing else went wrong.
    Locked = 4,
    /// A tenant id that names no tenant: no tenant file and never synced (`status`, `history`,
    /// `check`).
    UnknownTenant = 5,
}

impl ExitStatus {
    /// The status for a failure of the whole command.
    pub fn for_error(error: &Error) -> Self {
        match error {
            e if e.is_config() => ExitStatus::Config,
            Error::AlreadyRunning(_) => ExitStatus::Locked,
            Error::UnknownTenant { .. } => ExitStatus::UnknownTenant,
            _ => ExitStatus::Failure,
        }
    }

    /// Which status wins when tenants end differently: a failure over a configuration error
    /// over a held lock over success.
    fn severity(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Locked => 1,
            ExitStatus::Config => 2,
            ExitStatus::UnknownTenant => 3,
            ExitStatus::Usage => 4,
            ExitStatus::Failure => 5,
        }
    }

    /// The status of a run whose tenants ended with these.
    pub fn fold(statuses: impl IntoIterator<Item = ExitStatus>) -> ExitStatus {
        statuses
            .into_iter()
            .max_by_key(|s| s.severity())
            .unwrap_or(ExitStatus::Success)
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status as u8)
    }
}

/// Connects to the database named by `--database-url` / `DATABASE_URL`.
async fn connect(database_url: Option<&Secret>, max_connections: u32) -> Result<PgStore> {
    let url = database_url
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Error::Config("DATABASE_URL (or --database-url) is not set".to_owned()))?;
    PgStore::connect(url, max_connections).await
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<ExitStatus> {
    // First: from now on SIGTERM and SIGINT end the process the documented way.
    let mut shutdown = Shutdown::install();
    let db = cli.global.database_url.as_ref();
    let plan = match &cli.command {
        Command::Delta(args) => Some(plan::SyncPlan::delta(args)?),
        Command::Items(args) => Some(plan::SyncPlan::items(args)?),
        Command::Backfill(args) => Some(plan::SyncPlan::backfill(args, chrono::Utc::now())?),
        _ => None,
    };
    match (plan, cli.command) {
        (Some(plan), _) => sync::run(db, plan, &mut shutdown).await,
        (None, command) => {
            let other = async {
                match command {
                    Command::Migrate => migrate::run(db).await,
                    Command::Status(args) => status::run(db, &args).await,
                    Command::History(args) => history::run(db, &args).await,
                    Command::Check(args) => check::run(db, &args).await,
                    Command::Delta(_) | Command::Items(_) | Command::Backfill(_) => {
                        unreachable!("sync commands are matched above")
                    }
                }
            };
            tokio::select! {
                result = other => result,
                signal = shutdown.recv() => {
                    tracing::error!("terminated by {signal}");
                    Ok(ExitStatus::Failure)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_outranks_a_configuration_error_which_outranks_a_held_lock() {
        use ExitStatus::*;
        assert_eq!(ExitStatus::fold([]), Success);
        assert_eq!(ExitStatus::fold([Success, Locked]), Locked);
        assert_eq!(ExitStatus::fold([Locked, Config, Success]), Config);
        assert_eq!(ExitStatus::fold([Config, Failure, Locked]), Failure);
    }
}
