//! The `keybuzz-sync` binary: parse flags, set up logging, run one command, map its outcome to
//! an exit code (see [`commands::ExitStatus`]).

mod cli;
mod commands;
mod logging;
mod signal;

use std::process::ExitCode;

use clap::Parser;
use cli::Cli;
use commands::ExitStatus;

fn main() -> ExitCode {
    // clap prints usage errors and exits with 2 on its own.
    let cli = Cli::parse();
    if let Err(e) = logging::init(cli.global.log_format) {
        // No logger yet: say it plainly on stderr.
        eprintln!("keybuzz-sync: {e}");
        return ExitStatus::Config.into();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitStatus::Failure.into();
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(status) => status.into(),
        Err(e) => {
            tracing::error!("{e}");
            ExitStatus::for_error(&e).into()
        }
    }
}
