//! The high-level form of a sync command: the low-level arguments of [`crate::cli`] turned into
//! what to run (tenants, pass kind, settings) and checked, before anything connects anywhere.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use keybuzz_sync::config::{
    AppCredentials, Endpoints, ReportSettings, RetryPolicy, SyncConfig, SyncSettings, TenantConfig,
};
use keybuzz_sync::model::{PassKind, ReportType, SyncWindow, TenantId, amazon_time};
use keybuzz_sync::sync::reports;
use keybuzz_sync::{Error, Result};
use tokio::time::Instant;

use crate::cli::{BackfillArgs, ItemsArgs, Shard, SyncArgs, Via};

/// What a `delta`, `items` or `backfill` command runs.
pub struct SyncPlan {
    pub config: SyncConfig,
    pub kind: PassKind,
    /// The selected tenants, in order. With `--all-tenants`, a file whose name is no tenant id
    /// is an `Err` here, so that it fails alone.
    pub tenants: Vec<Result<TenantId>>,
    /// Whether the tenants were named one by one (`--tenant`), rather than `--all-tenants`:
    /// then a tenant's failure is the command's (see `ExitStatus`).
    pub named: bool,
    /// Passes run at once: `--concurrency`, but never more than the database connections
    /// allow (one per pass, one kept for the process).
    pub concurrency: usize,
    pub max_db_connections: u32,
    /// When the run's time budget ends, and how long it is.
    pub deadline: Option<Instant>,
    pub budget: Option<Duration>,
    /// Runs older than this are deleted at the end of the command.
    pub keep_runs: chrono::Duration,
    /// `backfill --via reports`: the range goes through Amazon's order reports.
    pub reports: Option<ReportsPlan>,
}

/// What `backfill --via reports` asks for.
#[derive(Debug, Clone, Copy)]
pub struct ReportsPlan {
    pub range: SyncWindow,
    pub report_type: ReportType,
    /// Stay until every window is imported.
    pub wait: bool,
}

impl SyncPlan {
    pub fn delta(args: &SyncArgs) -> Result<Self> {
        Self::new(args, |_| Ok(PassKind::Delta))
    }

    pub fn items(args: &ItemsArgs) -> Result<Self> {
        let limit = args.limit;
        Self::new(&args.sync, |settings| {
            Ok(PassKind::Items {
                limit: limit.unwrap_or(settings.items_budget),
            })
        })
    }

    pub fn backfill(args: &BackfillArgs, now: DateTime<Utc>) -> Result<Self> {
        if args.via == Via::Reports {
            let mut reports = None;
            let mut plan = Self::new(&args.sync, |settings| {
                let range =
                    reports::plan::backfill_range(args.since, args.until, now, &settings.reports)?;
                reports = Some(ReportsPlan {
                    range,
                    report_type: if args.by_order_date {
                        ReportType::ByOrderDate
                    } else {
                        ReportType::ByLastUpdate
                    },
                    wait: args.wait,
                });
                Ok(PassKind::Backfill { window: range })
            })?;
            plan.reports = reports;
            return Ok(plan);
        }
        if args.by_order_date || args.wait {
            return Err(Error::Config(
                "--by-order-date and --wait apply to --via reports only".to_owned(),
            ));
        }
        Self::new(&args.sync, |settings| {
            Ok(PassKind::Backfill {
                window: backfill_window(args.since, args.until, now, settings.upper_lag)?,
            })
        })
    }

    fn new(args: &SyncArgs, kind: impl FnOnce(&SyncSettings) -> Result<PassKind>) -> Result<Self> {
        // The budget counts from the process's first steps, as Kubernetes' deadline does.
        let deadline = args.max_duration.map(|budget| Instant::now() + budget);
        let config = sync_config(args)?;
        let kind = kind(&config.settings)?;
        let shard = shard(args.shard, args.shard_count)?;
        let tenants = if args.selection.all_tenants {
            TenantConfig::list(&config.tenants_dir)?
        } else {
            let mut ids = args.selection.tenants.clone();
            ids.sort();
            ids.dedup();
            ids.into_iter().map(Ok).collect()
        };
        let tenants = match shard {
            None => tenants,
            Some(shard) => {
                tracing::info!(
                    index = shard.index,
                    count = shard.count,
                    "syncing one shard of the tenants"
                );
                tenants
                    .into_iter()
                    .filter(|id| match id {
                        Ok(id) => id.shard(shard.count) == shard.index,
                        // A file that names no tenant is reported by shard 0 only.
                        Err(_) => shard.index == 0,
                    })
                    .collect()
            }
        };
        let concurrency = args.concurrency.min(args.max_db_connections - 1).max(1);
        Ok(SyncPlan {
            config,
            kind,
            tenants,
            named: !args.selection.all_tenants,
            concurrency: concurrency as usize,
            max_db_connections: args.max_db_connections,
            deadline,
            budget: args.max_duration,
            keep_runs: chrono::Duration::days(i64::from(args.keep_runs_days)),
            reports: None,
        })
    }
}

/// `--shard I/N`, or `--shard-count N` with the index from `JOB_COMPLETION_INDEX` (what a
/// Kubernetes Indexed Job sets in each pod).
fn shard(shard: Option<Shard>, count: Option<u32>) -> Result<Option<Shard>> {
    match (shard, count) {
        (Some(shard), _) => Ok(Some(shard)),
        (None, Some(count)) => {
            let index = std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
                Error::Config(
                    "--shard-count (KEYBUZZ_SHARD_COUNT) needs JOB_COMPLETION_INDEX, which a Kubernetes Indexed Job sets; use --shard I/N elsewhere"
                        .to_owned(),
                )
            })?;
            match index.trim().parse::<u32>() {
                Ok(index) if index < count => Ok(Some(Shard { index, count })),
                _ => Err(Error::Config(format!(
                    "JOB_COMPLETION_INDEX {index:?} is not a shard index below KEYBUZZ_SHARD_COUNT {count}"
                ))),
            }
        }
        (None, None) => Ok(None),
    }
}

/// The typed configuration the engine uses.
fn sync_config(args: &SyncArgs) -> Result<SyncConfig> {
    let client_id = args
        .lwa_client_id
        .clone()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::Config("LWA_CLIENT_ID (or --lwa-client-id) is not set".to_owned()))?;
    let client_secret = args
        .lwa_client_secret
        .clone()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Error::Config("LWA_CLIENT_SECRET (or --lwa-client-secret) is not set".to_owned())
        })?;
    let settings = SyncSettings {
        overlap: chrono::Duration::minutes(i64::from(args.overlap_minutes)),
        initial_lookback: chrono::Duration::days(i64::from(args.initial_lookback_days)),
        items_budget: args.items_budget,
        request_timeout: Duration::from_secs(args.request_timeout_secs),
        retry: RetryPolicy {
            max_retries: args.max_retries,
            base_delay: Duration::from_millis(args.retry_base_ms),
            max_delay: Duration::from_secs(60).max(Duration::from_millis(args.retry_base_ms)),
            max_total_delay: Duration::from_secs(args.retry_max_total_secs),
        },
        max_response_bytes: args.max_response_mb * 1024 * 1024,
        sweep_every: args
            .sweep_every
            .map(|d| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)),
        sweep_window: chrono::Duration::from_std(args.sweep_window)
            .unwrap_or(chrono::Duration::days(365)),
        reports: ReportSettings {
            batch_orders: args.report_batch_orders as usize,
            poll_interval: Duration::from_secs(args.report_poll_secs),
            ..ReportSettings::default()
        },
        ..SyncSettings::default()
    };
    Ok(SyncConfig {
        tenants_dir: args.tenants_dir.clone(),
        credentials: AppCredentials {
            client_id,
            client_secret,
        },
        endpoints: Endpoints::new(
            args.spapi_endpoint.as_deref(),
            args.lwa_token_url.as_deref(),
        )?
        .with_pushgateway(args.pushgateway.as_deref())?,
        settings,
    })
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
