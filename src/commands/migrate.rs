//! `keybuzz-sync migrate`: applies the embedded migrations.

use keybuzz_sync::Result;
use keybuzz_sync::model::Secret;

use super::ExitStatus;

pub async fn run(database_url: Option<&Secret>) -> Result<ExitStatus> {
    let store = super::connect(database_url, 2).await?;
    store.migrate().await?;
    tracing::info!("database schema is up to date");
    Ok(ExitStatus::Success)
}
