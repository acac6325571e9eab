//! Stop signals: SIGTERM (Kubernetes stopping the Job) and SIGINT (an operator's ctrl-c).

/// Resolves with the signal's name when the process is asked to stop.
pub async fn shutdown() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        },
        Err(e) => {
            tracing::warn!("cannot watch for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}
