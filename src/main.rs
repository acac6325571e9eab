//! The `keybuzz-sync` binary: parse flags, set up logging, run one command, map its outcome to
//! an exit code (see [`commands::ExitStatus`]).

mod cli;
mod commands;
mod signal;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, LogFormat};
use commands::ExitStatus;
use tracing_subscriber::EnvFilter;

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_env("KEYBUZZ_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(false).init();
    } else {
        builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(|| commands::progress::TerminalWriter)
            .init();
    }
}

fn main() -> ExitCode {
    // clap prints usage errors and exits with 2 on its own.
    let cli = Cli::parse();
    init_tracing(cli.global.log_format);
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
