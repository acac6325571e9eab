//! `keybuzz-sync delta`, `items` and `backfill`: a pass per selected tenant, several at once
//! (Amazon's limits are per seller, so tenants do not slow each other down).
//!
//! Scheduling, for a fleet that must stay fresh on every tick:
//! - tenants start in order of how far behind they are (never synced first, then the oldest
//!   cursor);
//! - a tenant catching up (never synced, a backlog left by its last pass, or over an hour
//!   behind) is one pass in one slot; while tenants that are up to date still wait, catching-up
//!   tenants hold at most half the slots, so the others keep flowing;
//! - a tenant that cannot start before the run's deadline is recorded as `skipped`, not failed;
//! - every pass holds one database connection, and one more is kept for the process, so the
//!   process never exceeds `--max-db-connections`; tenants wait for a free one.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use keybuzz_sync::config::TenantConfig;
use keybuzz_sync::metrics::{self, RunMetrics};
use keybuzz_sync::model::{PassKind, PassReport, RunOutcome, Secret, TenantId};
use keybuzz_sync::store::PgStore;
use keybuzz_sync::sync::{Connector, reports, run_pass};
use keybuzz_sync::{Error, Result};
use tokio::time::Instant;

use super::ExitStatus;
use super::plan::SyncPlan;
use super::progress::ProgressDisplay;
use crate::signal::Shutdown;

/// A tenant is not started with less of the run's budget left than this, or a third of the
/// budget when that is less (so that a short budget still runs its first tenants).
const MIN_START: Duration = Duration::from_secs(10);

/// Lagging more than this, a tenant is catching up.
const CATCHING_UP_LAG: chrono::Duration = chrono::Duration::hours(1);

pub async fn run(
    database_url: Option<&Secret>,
    plan: SyncPlan,
    shutdown: &mut Shutdown,
) -> Result<ExitStatus> {
    let store = tokio::select! {
        store = super::connect(database_url, plan.max_db_connections) => store?,
        signal = shutdown.recv() => {
            tracing::error!("terminated by {signal} before any pass started; nothing was changed");
            return Ok(ExitStatus::Failure);
        }
    };
    store.check_schema().await?;

    let (tenants, broken) = load_tenants(&store, &plan).await?;
    if tenants.is_empty() {
        if broken.is_empty() {
            tracing::info!("no tenant to sync in this selection");
            return Ok(ExitStatus::Success);
        }
        return Ok(ExitStatus::fold(broken));
    }
    // Tenants with report jobs to advance (or a first sync through reports) run a report pass
    // before their delta; asked once here, so the others need no extra query.
    let report_work = match (&plan.reports, plan.kind) {
        (None, PassKind::Delta) => {
            reports::tenants_with_report_work(&store, &tenants, &plan.config.settings, Utc::now())
                .await?
        }
        _ => Default::default(),
    };
    let (mut current, mut catching_up) = queues(&store, tenants).await?;
    let connector = Connector::new(&plan.config, plan.deadline)?;
    let display = ProgressDisplay::start();
    // While tenants that are up to date wait, catching-up ones take at most half the slots
    // (none when there is one slot: the quick ones go first then).
    let catching_up_cap = plan.concurrency / 2;

    let mut running = FuturesUnordered::new();
    let mut running_catching_up = 0;
    let mut outcomes: Vec<ExitStatus> = broken;
    let mut any_ran = false;
    loop {
        while running.len() < plan.concurrency {
            let take_catching_up = !catching_up.is_empty()
                && (current.is_empty() || running_catching_up < catching_up_cap);
            let (tenant, heavy) = match (take_catching_up, current.pop_front()) {
                (true, front) => {
                    if let Some(front) = front {
                        current.push_front(front);
                    }
                    (catching_up.pop_front().expect("not empty"), true)
                }
                (false, Some(tenant)) => (tenant, false),
                (false, None) => break,
            };
            if plan
                .deadline
                .zip(plan.budget)
                .is_some_and(|(d, budget)| Instant::now() + MIN_START.min(budget / 3) > d)
            {
                let left = std::iter::once(tenant)
                    .chain(current.drain(..))
                    .chain(catching_up.drain(..));
                for tenant in left {
                    skip(&store, &plan, &tenant.id).await;
                    push_metrics(
                        &connector,
                        &store,
                        &plan,
                        &tenant.id,
                        RunOutcome::Skipped,
                        Duration::ZERO,
                    )
                    .await;
                }
                break;
            }
            running_catching_up += usize::from(heavy);
            let source = connector.source(&tenant);
            display.add(&tenant.id, source.progress.clone());
            let with_reports = report_work.contains(&tenant.id);
            let (store, connector, plan) = (&store, &connector, &plan);
            running.push(async move {
                let started = Instant::now();
                let result = match (&plan.reports, plan.kind) {
                    (Some(r), _) => {
                        reports::backfill_with_reports(
                            store,
                            connector,
                            &source,
                            r.range,
                            r.report_type,
                            r.wait,
                        )
                        .await
                    }
                    (None, PassKind::Delta) if with_reports => {
                        reports::delta_with_reports(store, connector, &source, Utc::now()).await
                    }
                    (None, kind) => run_pass(store, &source, kind, Utc::now()).await,
                };
                let outcome = match &result {
                    Ok(report) => Some(report.outcome),
                    // Whoever holds the lock pushes that tenant's metrics.
                    Err(Error::AlreadyRunning(_)) => None,
                    Err(_) => Some(RunOutcome::Failed),
                };
                if let Some(outcome) = outcome {
                    push_metrics(
                        connector,
                        store,
                        plan,
                        &tenant.id,
                        outcome,
                        started.elapsed(),
                    )
                    .await;
                }
                (tenant.id, heavy, result, started.elapsed())
            });
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            Some((tenant, heavy, result, _elapsed)) = running.next() => {
                running_catching_up -= usize::from(heavy);
                display.remove(&tenant);
                any_ran |= result.is_ok();
                outcomes.push(status_of(&tenant, &result));
            }
            signal = shutdown.recv() => {
                // The passes are dropped here: their open transactions roll back and their lock
                // connections close. What they committed stays, with its resume point.
                drop(running);
                display.clear();
                let why = format!(
                    "terminated by {signal} before the pass finished; {}",
                    plan.kind.after_interruption()
                );
                tracing::error!("{why}");
                for (tenant, buckets) in connector.bucket_states() {
                    if let Err(e) = store.save_buckets(&tenant, &buckets).await {
                        tracing::warn!(tenant = %tenant, "saving rate buckets failed: {e}");
                    }
                }
                store.fail_open_runs(&why).await?;
                return Ok(ExitStatus::Failure);
            }
        }
    }
    display.clear();
    super::retention::prune_runs(&store, plan.keep_runs).await;
    Ok(exit_status(&plan, outcomes, any_ran))
}

/// Reads the selected tenants' files. A broken file fails that tenant only, recorded where
/// `status` shows it; the others are synced. A name with no file at all is only reported: it
/// is no tenant, and must not appear in the fleet's state.
async fn load_tenants(
    store: &PgStore,
    plan: &SyncPlan,
) -> Result<(Vec<TenantConfig>, Vec<ExitStatus>)> {
    let mut tenants = Vec::new();
    let mut broken = Vec::new();
    for id in &plan.tenants {
        match id {
            Ok(id) => match TenantConfig::load(&plan.config.tenants_dir, id) {
                Ok(tenant) => tenants.push(tenant),
                Err(e) => {
                    tracing::error!(tenant = %id, "{e}");
                    if TenantConfig::exists(&plan.config.tenants_dir, id) {
                        store
                            .record_failed_start(id, plan.kind.command(), &e.to_string())
                            .await?;
                    }
                    broken.push(ExitStatus::for_error(&e));
                }
            },
            // A file whose name is no tenant id: nothing to record it under.
            Err(e) => {
                tracing::error!("{e}");
                broken.push(ExitStatus::for_error(e));
            }
        }
    }
    Ok((tenants, broken))
}

/// Splits the tenants into those up to date and those catching up, each furthest behind first.
async fn queues(
    store: &PgStore,
    tenants: Vec<TenantConfig>,
) -> Result<(VecDeque<TenantConfig>, VecDeque<TenantConfig>)> {
    let ids: Vec<TenantId> = tenants.iter().map(|t| t.id.clone()).collect();
    let standings = store.standings(&ids).await?;
    let now = Utc::now();
    let mut ranked: Vec<(Option<chrono::DateTime<Utc>>, bool, TenantConfig)> = tenants
        .into_iter()
        .map(|t| {
            let standing = standings.get(&t.id).copied().unwrap_or_default();
            let cursor = standing.cursor;
            let catching_up = cursor.is_none_or(|c| now - c > CATCHING_UP_LAG)
                || standing.backlog_orders.is_some();
            (cursor, catching_up, t)
        })
        .collect();
    // `None` (never synced) sorts first: the furthest behind.
    ranked.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.id.cmp(&b.2.id)));
    let (catching_up, current): (Vec<_>, Vec<_>) = ranked.into_iter().partition(|r| r.1);
    Ok((
        current.into_iter().map(|r| r.2).collect(),
        catching_up.into_iter().map(|r| r.2).collect(),
    ))
}

/// Pushes a tenant's metrics after its pass, when a Pushgateway is configured. A failed push is
/// logged and never fails the sync.
async fn push_metrics(
    connector: &Connector,
    store: &PgStore,
    plan: &SyncPlan,
    tenant: &TenantId,
    outcome: RunOutcome,
    duration: Duration,
) {
    let Some(url) = &plan.config.endpoints.pushgateway else {
        return;
    };
    let run = RunMetrics {
        command: plan.kind.command(),
        outcome,
        duration,
        finished_at: Utc::now(),
    };
    if let Err(e) = metrics::push_tenant(connector.http(), url, store, tenant, &run).await {
        tracing::warn!(tenant = %tenant, "{e}");
    }
}

/// Records a tenant the run had no time left for.
async fn skip(store: &PgStore, plan: &SyncPlan, tenant: &TenantId) {
    let reason =
        "the run's time budget ended before this tenant could start; the next run takes it first";
    tracing::warn!(tenant = %tenant, outcome = "skipped", "{reason}");
    if let Err(e) = store
        .record_skipped(tenant, plan.kind.command(), reason)
        .await
    {
        tracing::warn!(tenant = %tenant, "recording the skipped tenant failed: {e}");
    }
}

/// What one tenant's pass means for the exit status (the engine logged how it went).
fn status_of(tenant: &TenantId, result: &Result<PassReport>) -> ExitStatus {
    match result {
        Ok(_) => ExitStatus::Success,
        Err(e @ Error::AlreadyRunning(_)) => {
            tracing::warn!(tenant = %tenant, outcome = "skipped", "{e}");
            ExitStatus::Locked
        }
        Err(e) => ExitStatus::for_error(e),
    }
}

/// The exit status policy (README, "Exit codes"): tenants named one by one make their failures
/// the command's; in a fleet run (`--all-tenants`), a tenant's failure or held lock is that
/// tenant's health, watched by metrics and `check`, and the run fails only when no tenant could
/// be synced at all, so that Kubernetes' "job failed" means the job, not one seller.
fn exit_status(plan: &SyncPlan, outcomes: Vec<ExitStatus>, any_ran: bool) -> ExitStatus {
    if plan.named || !any_ran {
        let failures = outcomes
            .into_iter()
            .filter(|s| plan.named || *s != ExitStatus::Locked);
        ExitStatus::fold(failures)
    } else {
        ExitStatus::Success
    }
}
