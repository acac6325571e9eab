//! The high-level form of a sync command: the low-level arguments of [`crate::cli`] turned into
//! what to run (tenants, pass kind, settings) and checked, before anything connects anywhere.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use keybuzz_sync::config::{
    AppCredentials, Endpoints, RetryPolicy, SyncConfig, SyncSettings, TenantConfig,
};
use keybuzz_sync::model::{PassKind, SyncWindow, TenantId, amazon_time};
use keybuzz_sync::{Error, Result};

use crate::cli::{BackfillArgs, ItemsArgs, SyncArgs};

/// What a `delta`, `items` or `backfill` command runs.
pub struct SyncPlan {
    pub config: SyncConfig,
    pub kind: PassKind,
    /// The selected tenants, in order. With `--all-tenants`, a file whose name is no tenant id
    /// is an `Err` here, so that it fails alone.
    pub tenants: Vec<Result<TenantId>>,
    /// Tenants synced at once.
    pub concurrency: usize,
    /// Runs older than this are deleted at the end of the command.
    pub keep_runs: chrono::Duration,
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
        Self::new(&args.sync, |settings| {
            Ok(PassKind::Backfill {
                window: backfill_window(args.since, args.until, now, settings.upper_lag)?,
            })
        })
    }

    fn new(args: &SyncArgs, kind: impl FnOnce(&SyncSettings) -> Result<PassKind>) -> Result<Self> {
        let config = sync_config(args)?;
        let kind = kind(&config.settings)?;
        let tenants = if args.selection.all_tenants {
            TenantConfig::list(&config.tenants_dir)?
        } else {
            let mut ids = args.selection.tenants.clone();
            ids.sort();
            ids.dedup();
            ids.into_iter().map(Ok).collect()
        };
        Ok(SyncPlan {
            config,
            kind,
            tenants,
            concurrency: args.concurrency as usize,
            keep_runs: chrono::Duration::days(i64::from(args.keep_runs_days)),
        })
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
