//! Stop signals: SIGTERM (Kubernetes stopping the Job) and SIGINT (an operator's ctrl-c).
//!
//! [`Shutdown::install`] runs first thing in the process, before it connects anywhere, so that
//! the documented behaviour (a message, runs closed, exit 1) holds from the first instant rather
//! than the default "killed by signal 15" while the database is still being reached.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The process's stop signals, registered once.
pub struct Shutdown {
    term: Option<Signal>,
}

impl Shutdown {
    /// Replaces the default handlers. Needs a tokio runtime.
    pub fn install() -> Self {
        let term = match signal(SignalKind::terminate()) {
            Ok(term) => Some(term),
            Err(e) => {
                tracing::warn!("cannot watch for SIGTERM: {e}");
                None
            }
        };
        Shutdown { term }
    }

    /// Resolves with the signal's name when the process is asked to stop.
    pub async fn recv(&mut self) -> &'static str {
        match &mut self.term {
            Some(term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            None => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
}
