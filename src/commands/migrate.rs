//! `keybuzz-sync migrate`: applies the embedded migrations.

use super::ExitStatus;
use crate::error::Result;

pub async fn run(database_url: Option<&str>) -> Result<ExitStatus> {
    let store = super::connect(database_url, 2).await?;
    store.migrate().await?;
    tracing::info!("database schema is up to date");
    Ok(ExitStatus::Success)
}
