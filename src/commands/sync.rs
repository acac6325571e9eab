//! `keybuzz-sync delta`, `items` and `backfill`: a pass per selected tenant, several tenants at
//! once (Amazon's limits are per seller, so tenants do not slow each other down).

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use futures_util::StreamExt;

use super::ExitStatus;
use crate::cli::SyncArgs;
use crate::config::{SyncConfig, TenantConfig};
use crate::error::{Error, Result};
use crate::spapi::auth::LwaClient;
use crate::spapi::{SpApiClient, http_client};
use crate::store::PgStore;
use crate::sync::window::amazon_time;
use crate::sync::{PassKind, PassReport, SyncWindow, TenantSource};

#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Delta,
    Items {
        limit: Option<u32>,
    },
    Backfill {
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    },
}

/// The backfill window: `until` may not be later than a delta window may end (now - 2 min 15 s).
fn backfill_window(
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    upper_lag: chrono::Duration,
) -> Result<SyncWindow> {
    let latest = (now - upper_lag).trunc_subsecs(0);
    let before = until.unwrap_or(latest);
    if before > latest {
        return Err(Error::Config(format!(
            "--until {} is later than Amazon answers for (now minus 2 min 15 s: {})",
            amazon_time(before),
            amazon_time(latest)
        )));
    }
    if since >= before {
        return Err(Error::Config(format!(
            "--since {} must be before {}",
            amazon_time(since),
            amazon_time(before)
        )));
    }
    Ok(SyncWindow {
        after: since.trunc_subsecs(0),
        before,
    })
}

pub async fn run(database_url: Option<&str>, args: &SyncArgs, mode: Mode) -> Result<ExitStatus> {
    let config = args.to_config()?;
    let ids = if args.selection.all_tenants {
        TenantConfig::list(&config.tenants_dir)?
    } else {
        let mut ids = args.selection.tenants.clone();
        ids.sort();
        ids.dedup();
        ids.into_iter().map(Ok).collect()
    };
    let kind = match mode {
        Mode::Delta => PassKind::Delta,
        Mode::Items { limit } => PassKind::Items {
            limit: limit.unwrap_or(config.settings.items_budget),
        },
        Mode::Backfill { since, until } => PassKind::Backfill {
            window: backfill_window(since, until, Utc::now(), config.settings.upper_lag)?,
        },
    };
    let concurrency = args.concurrency as usize;
    // Each running pass holds a pooled connection at a time plus its lock connection.
    let store = super::connect(database_url, (concurrency as u32) + 2).await?;
    store.check_schema().await?;

    // A broken tenant file fails that tenant only (recorded where `status` shows it); the
    // others are synced.
    let mut tenants = Vec::new();
    let mut broken = 0;
    for id in ids {
        let failure = match id {
            Ok(id) => match TenantConfig::load(&config.tenants_dir, &id) {
                Ok(tenant) => {
                    tenants.push(tenant);
                    continue;
                }
                Err(e) => {
                    store
                        .record_failed_start(&id, kind.command(), &e.to_string())
                        .await?;
                    e
                }
            },
            // A file whose name is no tenant id: nothing to record it under.
            Err(e) => e,
        };
        tracing::error!("{failure}");
        broken += 1;
    }
    if tenants.is_empty() {
        return Ok(ExitStatus::Config);
    }

    let http = http_client(config.settings.request_timeout)?;
    let lwa = Arc::new(LwaClient::new(
        http.clone(),
        config.endpoints.lwa_token_url.clone(),
        config.credentials.clone(),
        config.settings.retry,
    ));

    let passes = futures_util::stream::iter(tenants)
        .map(|tenant| {
            let (store, http, lwa, config) = (&store, http.clone(), lwa.clone(), &config);
            async move {
                let result = pass_for(store, http, lwa, config, &tenant, kind).await;
                (tenant.id.to_string(), result)
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<(String, Result<PassReport>)>>();
    let results = tokio::select! {
        results = passes => results,
        signal = shutdown_signal() => {
            // The passes are dropped here: their open transactions roll back and their lock
            // connections close. What they committed stays, with its resume point.
            let next = match kind {
                PassKind::Delta => "the next pass resumes from the last committed page",
                PassKind::Items { .. } => "the next pass fetches the remaining items",
                PassKind::Backfill { .. } => "run the backfill again",
            };
            let why = format!("terminated by {signal} before the pass finished; {next}");
            tracing::error!("{why}");
            store.fail_open_runs(&why).await?;
            return Ok(ExitStatus::Failure);
        }
    };

    let mut status = if broken == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Config
    };
    for (tenant, result) in &results {
        match result {
            Ok(report) => tracing::info!(
                tenant,
                orders = report.counts.orders,
                items = report.counts.items,
                items_pending = report.items_pending,
                api_calls = report.api_calls,
                throttled = report.throttled,
                "tenant synced"
            ),
            Err(e @ Error::AlreadyRunning(_)) => {
                tracing::warn!(tenant, "{e}");
                if status == ExitStatus::Success {
                    status = ExitStatus::Locked;
                }
            }
            Err(e @ Error::Config(_)) => {
                tracing::error!(tenant, "{e}");
                if status != ExitStatus::Failure {
                    status = ExitStatus::Config;
                }
            }
            Err(e) => {
                tracing::error!(tenant, "{e}");
                status = ExitStatus::Failure;
            }
        }
    }
    Ok(status)
}

/// Resolves on SIGTERM (Kubernetes stopping the Job) or SIGINT (an operator's ctrl-c).
async fn shutdown_signal() -> &'static str {
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

async fn pass_for(
    store: &PgStore,
    http: reqwest::Client,
    lwa: Arc<LwaClient>,
    config: &SyncConfig,
    tenant: &TenantConfig,
    kind: PassKind,
) -> Result<PassReport> {
    let settings = &config.settings;
    let base = config.endpoints.spapi_base(tenant.region);
    let client = SpApiClient::new(http, base, lwa, tenant, settings.retry);
    TenantSource::new(client, tenant, settings)
        .run_pass(store, tenant, settings, kind, Utc::now())
        .await
}
