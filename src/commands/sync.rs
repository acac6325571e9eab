//! `keybuzz-sync delta`, `items` and `backfill`: a pass per selected tenant, several tenants at
//! once (Amazon's limits are per seller, so tenants do not slow each other down).

use chrono::Utc;
use futures_util::StreamExt;
use keybuzz_sync::config::TenantConfig;
use keybuzz_sync::model::{PassReport, Secret};
use keybuzz_sync::store::PgStore;
use keybuzz_sync::sync::{Connector, run_pass};
use keybuzz_sync::{Error, Result};

use super::ExitStatus;
use super::plan::SyncPlan;

pub async fn run(database_url: Option<&Secret>, plan: SyncPlan) -> Result<ExitStatus> {
    // Each running pass holds a pooled connection at a time plus its lock connection.
    let store = super::connect(database_url, (plan.concurrency as u32) + 2).await?;
    store.check_schema().await?;

    let (tenants, broken) = load_tenants(&store, &plan).await?;
    if tenants.is_empty() {
        return Ok(ExitStatus::Config);
    }
    let connector = Connector::new(&plan.config)?;
    let passes = futures_util::stream::iter(tenants)
        .map(|tenant| {
            let (store, connector) = (&store, &connector);
            async move {
                let source = connector.source(&tenant);
                let result = run_pass(store, &source, plan.kind, Utc::now()).await;
                (tenant.id.to_string(), result)
            }
        })
        .buffer_unordered(plan.concurrency)
        .collect::<Vec<(String, Result<PassReport>)>>();
    let results = tokio::select! {
        results = passes => results,
        signal = crate::signal::shutdown() => {
            // The passes are dropped here: their open transactions roll back and their lock
            // connections close. What they committed stays, with its resume point.
            let why = format!(
                "terminated by {signal} before the pass finished; {}",
                plan.kind.after_interruption()
            );
            tracing::error!("{why}");
            store.fail_open_runs(&why).await?;
            return Ok(ExitStatus::Failure);
        }
    };

    super::retention::prune_runs(&store, plan.keep_runs).await;

    let broken = std::iter::repeat_n(ExitStatus::Config, broken);
    let passes = results
        .iter()
        .map(|(tenant, result)| report(tenant, result));
    Ok(ExitStatus::fold(broken.chain(passes)))
}

/// Reads the selected tenants' files. A broken file fails that tenant only, recorded where
/// `status` shows it; the others are synced. Returns the good ones and the number of broken ones.
async fn load_tenants(store: &PgStore, plan: &SyncPlan) -> Result<(Vec<TenantConfig>, usize)> {
    let mut tenants = Vec::new();
    let mut broken = 0;
    for id in &plan.tenants {
        let failure = match id {
            Ok(id) => match TenantConfig::load(&plan.config.tenants_dir, id) {
                Ok(tenant) => {
                    tenants.push(tenant);
                    continue;
                }
                Err(e) => {
                    store
                        .record_failed_start(id, plan.kind.command(), &e.to_string())
                        .await?;
                    e.to_string()
                }
            },
            // A file whose name is no tenant id: nothing to record it under.
            Err(e) => e.to_string(),
        };
        tracing::error!("{failure}");
        broken += 1;
    }
    Ok((tenants, broken))
}

/// Logs how one tenant's pass ended and says what it means for the exit status.
fn report(tenant: &str, result: &Result<PassReport>) -> ExitStatus {
    match result {
        Ok(report) => {
            tracing::info!(
                tenant,
                orders = report.counts.orders,
                items = report.counts.items,
                items_pending = report.items_pending,
                api_calls = report.api_calls,
                throttled = report.throttled,
                "tenant synced"
            );
            ExitStatus::Success
        }
        Err(e @ Error::AlreadyRunning(_)) => {
            tracing::warn!(tenant, "{e}");
            ExitStatus::Locked
        }
        Err(e) => {
            tracing::error!(tenant, "{e}");
            ExitStatus::for_error(e)
        }
    }
}
