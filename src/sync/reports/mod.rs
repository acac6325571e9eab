//! Imports through Amazon's Reports API: a year of history in minutes instead of hours.
//!
//! # Architecture
//! - [`plan`]: the range of an import and its 30-day report windows;
//! - [`job`]: each window's state machine (queued, requested, ready, then imported, empty or
//!   failed), as pure decisions over `report_jobs`;
//! - [`xml`]: reading a document order by order as it arrives; [`map`]: an order into our rows;
//! - [`import`]: one document into the database, batch by batch, resumable;
//! - here: the pass ([`run_report_pass`]), and how `delta` and `backfill --via reports` use it.
//!
//! Asynchronous by design, for a process that runs once and exits: a pass requests the reports
//! its windows need and records them, polls those Amazon is generating (once each), and imports
//! those that are done; no pass waits for Amazon's queue. Every `delta` pass of a tenant with
//! open report jobs runs a report pass first, so the CronJob finishes an import that an operator
//! or a first sync started. A report pass takes the tenant's lock and records a `sync_runs` row
//! (`import`, or `backfill`) like every pass, and each of its commits checks its fence.
//!
//! A tenant whose file says `"initialImport": "reports"` and that has no cursor yet gets its
//! initial lookback through reports (windows ending an hour ago, as reports can be 30 minutes
//! late); its Orders API delta waits until every window is done, and then starts from the end
//! of the windows (or from the start of the first window given up, so nothing is skipped).

pub mod import;
pub mod job;
pub mod map;
pub mod plan;
pub mod xml;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use tracing::Instrument;

use super::locked::{Ending, ending, under_lock};
use super::{Connector, TenantSource, run_pass};
use crate::config::{SyncSettings, TenantConfig};
use crate::error::{Error, Result};
use crate::model::{
    CounterDeltas, ImportCounts, InitialImport, JobPurpose, JobStatus, OperationCount, PassKind,
    PassProgress, PassReport, ReportJob, ReportType, RunOutcome, RunTally, SyncWindow, TenantId,
    WriteCounts,
};
use crate::spapi::{Operation, SpApiClient};
use crate::store::{JobChange, PgStore};
use job::Next;

/// How far back Amazon's order reports reach.
const AMAZON_HISTORY: chrono::Duration = chrono::Duration::days(730);

/// What a report pass needs about one tenant.
pub struct ReportSource {
    pub tenant: TenantConfig,
    pub settings: SyncSettings,
    pub client: SpApiClient,
    /// The pass's progress, for a display (the delta's, when a delta runs it).
    pub progress: Arc<PassProgress>,
}

impl ReportSource {
    pub fn new(connector: &Connector, tenant: &TenantConfig, progress: Arc<PassProgress>) -> Self {
        ReportSource {
            tenant: tenant.clone(),
            settings: connector.config().settings.clone(),
            client: connector.client(tenant),
            progress,
        }
    }
}

/// What a report pass is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportWork {
    /// `backfill --via reports`: the windows of `range` (recorded if they are not yet), and
    /// every other open job of the tenant.
    Backfill {
        range: SyncWindow,
        report_type: ReportType,
    },
    /// The tenant's open jobs; its initial import is planned first when it is due.
    Advance,
}

impl ReportWork {
    /// `sync_runs.command`.
    pub fn command(self) -> &'static str {
        match self {
            ReportWork::Backfill { .. } => "backfill",
            ReportWork::Advance => "import",
        }
    }
}

/// How a tenant's report jobs stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobsSummary {
    pub queued: usize,
    pub requested: usize,
    pub ready: usize,
    pub imported: usize,
    pub empty: usize,
    pub failed: usize,
}

impl JobsSummary {
    pub fn of<'a>(jobs: impl IntoIterator<Item = &'a ReportJob>) -> Self {
        let mut s = JobsSummary::default();
        for j in jobs {
            *match j.status {
                JobStatus::Queued => &mut s.queued,
                JobStatus::Requested => &mut s.requested,
                JobStatus::Ready => &mut s.ready,
                JobStatus::Imported => &mut s.imported,
                JobStatus::Empty => &mut s.empty,
                JobStatus::Failed => &mut s.failed,
            } += 1;
        }
        s
    }

    pub fn total(&self) -> usize {
        self.queued + self.requested + self.ready + self.imported + self.empty + self.failed
    }

    pub fn finished(&self) -> bool {
        self.queued + self.requested + self.ready == 0
    }
}

impl std::fmt::Display for JobsSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} windows imported ({} empty, {} failed), {} ready to import, {} at Amazon, {} to request",
            self.imported + self.empty,
            self.total(),
            self.empty,
            self.failed,
            self.ready,
            self.requested,
            self.queued
        )
    }
}

/// One report pass's bookkeeping.
struct Pass<'a> {
    store: &'a PgStore,
    source: &'a ReportSource,
    run_id: i64,
    /// A std mutex: updated after each batch commit and read to build the next one's numbers,
    /// never held across an await.
    totals: std::sync::Mutex<Totals>,
    window: Option<SyncWindow>,
}

/// What a pass has done, and what of it the cumulative counters already hold.
#[derive(Default)]
struct Totals {
    counts: ImportCounts,
    imported_jobs: u64,
    recorded: ImportCounts,
    recorded_calls: Vec<OperationCount>,
}

/// Runs one report pass. Returns [`Error::AlreadyRunning`] without touching anything when
/// another process holds the tenant's lock; a `partial` report when the run's time budget
/// ended it (what it committed stays, and the next pass continues).
pub async fn run_report_pass(
    store: &PgStore,
    source: &ReportSource,
    work: ReportWork,
    now: DateTime<Utc>,
) -> Result<PassReport> {
    let span = tracing::info_span!(
        "pass",
        tenant = %source.tenant.id,
        run_id = tracing::field::Empty,
        command = work.command(),
    );
    under_lock(store, &source.tenant.id, |store| async move {
        locked(&store, source, work, now).await
    })
    .instrument(span)
    .await
}

async fn locked(
    store: &PgStore,
    source: &ReportSource,
    work: ReportWork,
    now: DateTime<Utc>,
) -> Result<PassReport> {
    let tenant = &source.tenant.id;
    let run_id = store
        .start_run(tenant, work.command(), source.tenant.orders_api)
        .await?;
    tracing::Span::current().record("run_id", run_id);
    tracing::info!("report pass started");
    source.progress.update(|p| p.started = true);
    source
        .client
        .restore_buckets(&store.load_buckets(tenant).await?);
    let mut pass = Pass {
        store,
        source,
        run_id,
        totals: Default::default(),
        window: match work {
            ReportWork::Backfill { range, .. } => Some(range),
            ReportWork::Advance => None,
        },
    };
    let Ending {
        result,
        outcome,
        error,
        closing,
    } = ending(store, tenant, pass.work(work, now).await).await;
    let mut tally = pass.tally(&ImportCounts::default());
    tally.report.outcome = outcome;
    tally.report.items_pending = closing.count_awaiting_items(tenant).await.unwrap_or(-1);
    closing
        .finish_run(
            tenant,
            work.command(),
            &tally,
            outcome,
            error.as_deref(),
            false,
        )
        .await?;
    let report = tally.report;
    let counts = pass.totals().counts;
    match result {
        Ok(()) | Err(Error::OutOfTime { .. }) => {
            tracing::info!(
                outcome = outcome.as_str(),
                orders = counts.orders_imported,
                items = counts.items_imported,
                staged = counts.items_staged,
                skipped = counts.orders_skipped,
                other_marketplaces = counts.orders_foreign,
                quarantined = counts.orders_quarantined,
                api_calls = report.api_calls,
                throttled = report.throttled,
                "report pass finished"
            );
            Ok(report)
        }
        Err(e) => {
            tracing::error!(outcome = outcome.as_str(), "report pass finished: {e}");
            Err(e)
        }
    }
}

/// The errors that concern one report window rather than the tenant or Amazon as a whole: the
/// window is retried (or given up) and the pass goes on with the others. A connection failure or
/// a 5xx that outlasted the client's retries is not one: the pass fails, and the window keeps its
/// failures for faults of its own.
fn concerns_the_window(e: &Error) -> bool {
    matches!(
        e,
        Error::ReportDocument { .. }
            | Error::BadResponse { .. }
            | Error::Api {
                status: 400 | 404,
                ..
            }
    )
}

impl Pass<'_> {
    fn totals(&self) -> std::sync::MutexGuard<'_, Totals> {
        self.totals.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tally(&self, extra: &ImportCounts) -> RunTally {
        let usage = self.source.client.usage();
        let totals = self.totals();
        let mut counts = totals.counts;
        counts += *extra;
        let calls = usage
            .by_operation
            .iter()
            .map(|c| {
                let before = totals
                    .recorded_calls
                    .iter()
                    .find(|r| r.operation == c.operation);
                OperationCount {
                    operation: c.operation,
                    calls: c.calls - before.map_or(0, |b| b.calls.min(c.calls)),
                    throttled: c.throttled - before.map_or(0, |b| b.throttled.min(c.throttled)),
                }
            })
            .collect();
        RunTally {
            run_id: self.run_id,
            report: PassReport {
                window: self.window,
                counts: WriteCounts {
                    orders: counts.orders_imported,
                    items: counts.items_imported,
                    quarantined: counts.orders_quarantined,
                },
                api_calls: usage.calls,
                throttled: usage.throttled,
                ..PassReport::default()
            },
            pages: totals.imported_jobs,
            unrecorded: CounterDeltas {
                orders: counts
                    .orders_imported
                    .saturating_sub(totals.recorded.orders_imported),
                items: counts
                    .items_imported
                    .saturating_sub(totals.recorded.items_imported),
                calls,
            },
            buckets: self.source.client.bucket_states(),
        }
    }

    /// After a batch commit (or a job imported): its numbers are in the counters and on the
    /// progress display.
    fn recorded(&self, batch: &ImportCounts, jobs_imported: u64) {
        let usage = self.source.client.usage();
        let mut totals = self.totals();
        totals.counts += *batch;
        totals.imported_jobs += jobs_imported;
        totals.recorded = totals.counts;
        totals.recorded_calls = usage.by_operation;
        let (jobs, orders, items) = (
            totals.imported_jobs,
            totals.counts.orders_imported,
            totals.counts.items_imported,
        );
        drop(totals);
        self.source.progress.update(|p| {
            p.started = true;
            p.pages = jobs;
            p.orders = orders;
            p.items = items;
            p.waited = usage.waited;
        });
    }

    async fn change(&self, job: &ReportJob, change: &JobChange) -> Result<()> {
        if let JobChange::Failure { error, give_up, .. } = change {
            if *give_up {
                tracing::error!(job = job.id, window_start = %job.window.after, "report window given up: {error}");
            } else {
                tracing::warn!(job = job.id, window_start = %job.window.after, "report window failed, to be retried: {error}");
            }
        }
        self.store
            .change_report_job(&self.source.tenant.id, job.id, change)
            .await
    }

    async fn work(&mut self, work: ReportWork, now: DateTime<Utc>) -> Result<()> {
        let tenant = &self.source.tenant;
        let settings = &self.source.settings.reports;
        match work {
            ReportWork::Backfill { range, report_type } => {
                let windows = plan::windows(range, settings.window);
                self.store
                    .plan_report_jobs(&tenant.id, JobPurpose::Backfill, report_type, &windows)
                    .await?;
            }
            ReportWork::Advance => {
                if initial_import_due(self.store, tenant).await?
                    && let Some(range) =
                        plan::initial_range(now, self.source.settings.initial_lookback, settings)
                {
                    let windows = plan::windows(range, settings.window);
                    tracing::info!(
                        after = %range.after,
                        before = %range.before,
                        windows = windows.len(),
                        "first sync through reports: requesting the initial lookback"
                    );
                    self.store
                        .plan_report_jobs(
                            &tenant.id,
                            JobPurpose::Initial,
                            ReportType::ByLastUpdate,
                            &windows,
                        )
                        .await?;
                }
            }
        }
        self.request().await?;
        self.poll(now).await?;
        self.import().await?;
        self.finish_initial_import().await
    }

    /// Requests the queued windows, oldest first, while fewer than `max_outstanding` reports
    /// are at Amazon and createReport's bucket has a token (it refills one a minute: the
    /// rest waits for the next pass rather than this one waiting).
    async fn request(&mut self) -> Result<()> {
        let tenant = &self.source.tenant;
        let settings = &self.source.settings.reports;
        let jobs = self.store.report_jobs(&tenant.id, None, true).await?;
        let mut at_amazon = jobs
            .iter()
            .filter(|j| j.status == JobStatus::Requested)
            .count();
        for job in jobs.iter().filter(|j| job::next(j) == Next::Request) {
            if at_amazon >= settings.max_outstanding {
                tracing::info!(
                    at_amazon,
                    "enough reports are at Amazon; the other windows are requested later"
                );
                break;
            }
            if !self.source.client.can_send_now(Operation::CreateReport) {
                tracing::info!(
                    "createReport's rate bucket is empty; the other windows are requested by a later pass"
                );
                break;
            }
            // A window planned near Amazon's two-year limit may have slipped past it since.
            let oldest = Utc::now() - AMAZON_HISTORY + chrono::Duration::minutes(10);
            let start = job.window.after.max(oldest.trunc_subsecs(0));
            if start >= job.window.before {
                let change = JobChange::Failure {
                    error: "the window is older than Amazon's two years of order reports".into(),
                    requeue: true,
                    give_up: true,
                };
                self.change(job, &change).await?;
                continue;
            }
            match self
                .source
                .client
                .create_report(
                    job.report_type.name(),
                    &tenant.marketplace_ids,
                    start,
                    job.window.before,
                )
                .await
            {
                Ok(report_id) => {
                    tracing::info!(job = job.id, report = %report_id, after = %job.window.after, before = %job.window.before, "report requested");
                    self.change(job, &JobChange::Requested { report_id })
                        .await?;
                    at_amazon += 1;
                }
                // The usage plan, or a hidden per-report-type quota: throttling, not a failure
                // of the window; it stays queued.
                Err(e @ (Error::Throttled { .. } | Error::Api { status: 429, .. })) => {
                    tracing::warn!(
                        "{e}; the window stays queued for a later pass (a per-report-type quota may apply)"
                    );
                    break;
                }
                // Amazon refuses this window as asked: asking again would not help.
                Err(e @ Error::Api { status: 400, .. }) => {
                    let change = JobChange::Failure {
                        error: e.to_string(),
                        requeue: true,
                        give_up: true,
                    };
                    self.change(job, &change).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Asks Amazon once where each requested report stands.
    async fn poll(&mut self, now: DateTime<Utc>) -> Result<()> {
        let tenant = &self.source.tenant;
        let settings = &self.source.settings.reports;
        let jobs = self.store.report_jobs(&tenant.id, None, true).await?;
        for job in jobs.iter().filter(|j| job::next(j) == Next::Poll) {
            let Some(report_id) = &job.report_id else {
                continue;
            };
            let change = match self.source.client.get_report(report_id).await {
                Ok(report) => job::after_poll(
                    job,
                    &report,
                    now,
                    settings.stuck_after,
                    settings.max_failures,
                ),
                Err(e) if concerns_the_window(&e) => job::failure(
                    job,
                    format!("getReport {report_id}: {e}"),
                    true,
                    settings.max_failures,
                ),
                Err(e) => return Err(e),
            };
            match &change {
                JobChange::Ready { document_id } => {
                    tracing::info!(job = job.id, report = %report_id, document = %document_id, "report done")
                }
                JobChange::Empty => {
                    tracing::info!(job = job.id, report = %report_id, "report cancelled by Amazon: no orders in the window")
                }
                _ => {}
            }
            self.change(job, &change).await?;
        }
        Ok(())
    }

    /// Imports the documents that are ready, oldest window first.
    async fn import(&mut self) -> Result<()> {
        let tenant = &self.source.tenant;
        let settings = &self.source.settings.reports;
        let jobs = self.store.report_jobs(&tenant.id, None, true).await?;
        for job in jobs.iter().filter(|j| job::next(j) == Next::Import) {
            let started = std::time::Instant::now();
            let result =
                import::import_document(self.store, self.source, job, &|c| self.tally(c), &|c| {
                    self.recorded(c, 0)
                })
                .await;
            match result {
                Ok(done) if done.complete => {
                    self.change(job, &JobChange::Imported).await?;
                    self.recorded(&ImportCounts::default(), 1);
                    tracing::info!(
                        job = job.id,
                        report = job.report_id.as_deref().unwrap_or("?"),
                        orders = done.counts.orders_imported,
                        items = done.counts.items_imported,
                        staged = done.counts.items_staged,
                        skipped = done.counts.orders_skipped,
                        duration_ms = started.elapsed().as_millis() as u64,
                        "report imported"
                    );
                }
                Ok(_) => {}
                Err(e @ Error::OutOfTime { .. }) => return Err(e),
                // The document is gone (reports are kept 30 days): request the window again.
                Err(e @ Error::Api { status: 404, .. }) => {
                    let change = job::failure(job, e.to_string(), true, settings.max_failures);
                    self.change(job, &change).await?;
                }
                Err(e) if concerns_the_window(&e) => {
                    let change = job::failure(job, e.to_string(), false, settings.max_failures);
                    self.change(job, &change).await?;
                }
                Err(e @ (Error::Throttled { .. } | Error::Api { status: 429, .. })) => {
                    tracing::warn!("{e}; the import continues in a later pass");
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// When every window of a tenant's initial import is done, its Orders API delta may start:
    /// the cursor becomes the windows' end, or the start of the first window given up (the
    /// Orders API then reads from there, so nothing is skipped).
    async fn finish_initial_import(&self) -> Result<()> {
        let tenant = &self.source.tenant.id;
        let jobs = self
            .store
            .report_jobs(tenant, Some(JobPurpose::Initial), false)
            .await?;
        if jobs.is_empty() || !JobsSummary::of(&jobs).finished() {
            return Ok(());
        }
        if self.store.sync_state(tenant).await?.cursor.is_some() {
            return Ok(());
        }
        let end = jobs
            .iter()
            .map(|j| j.window.before)
            .max()
            .expect("not empty");
        let cursor = jobs
            .iter()
            .filter(|j| j.status == JobStatus::Failed)
            .map(|j| j.window.after)
            .min()
            .unwrap_or(end);
        if cursor < end {
            tracing::warn!(%cursor, "some report windows of the initial import were given up; the Orders API reads from the first of them");
        }
        self.store.finish_initial_import(tenant, cursor).await?;
        tracing::info!(%cursor, "initial import through reports done; the Orders API delta takes over");
        Ok(())
    }
}

/// Whether a tenant's first sync through reports is due: it asks for it, has no cursor, and has
/// no initial jobs yet.
async fn initial_import_due(store: &PgStore, tenant: &TenantConfig) -> Result<bool> {
    if tenant.initial_import != InitialImport::Reports
        || store.sync_state(&tenant.id).await?.cursor.is_some()
    {
        return Ok(false);
    }
    Ok(store
        .report_jobs(&tenant.id, Some(JobPurpose::Initial), false)
        .await?
        .is_empty())
}

/// Whether a tenant's initial import through reports is under way: its Orders API delta waits.
async fn initial_import_running(store: &PgStore, tenant: &TenantConfig) -> Result<bool> {
    if tenant.initial_import != InitialImport::Reports
        || store.sync_state(&tenant.id).await?.cursor.is_some()
    {
        return Ok(false);
    }
    Ok(!store
        .report_jobs(&tenant.id, Some(JobPurpose::Initial), false)
        .await?
        .is_empty())
}

/// Of the tenants of a `delta` run, those with report work: open report jobs, or a first sync
/// through reports to start. Asked once for the whole run (two queries), so that the others go
/// straight to [`run_pass`] without touching a connection beyond their pass's own.
pub async fn tenants_with_report_work(
    store: &PgStore,
    tenants: &[TenantConfig],
    settings: &SyncSettings,
    now: DateTime<Utc>,
) -> Result<HashSet<TenantId>> {
    let ids: Vec<TenantId> = tenants.iter().map(|t| t.id.clone()).collect();
    let mut work: HashSet<TenantId> = store
        .tenants_with_open_report_jobs(&ids)
        .await?
        .into_iter()
        .collect();
    let wanting: Vec<TenantId> = tenants
        .iter()
        .filter(|t| t.initial_import == InitialImport::Reports)
        .map(|t| t.id.clone())
        .collect();
    if !wanting.is_empty()
        && plan::initial_range(now, settings.initial_lookback, &settings.reports).is_some()
    {
        let standings = store.standings(&wanting).await?;
        work.extend(
            wanting
                .into_iter()
                .filter(|id| standings.get(id).is_none_or(|s| s.cursor.is_none())),
        );
    }
    Ok(work)
}

/// A `delta` pass for a tenant that may have report work: its report jobs are advanced first
/// (and its initial import planned when due); the Orders API delta runs unless the tenant's
/// initial import is still under way. A tenant with no report work goes straight to the delta.
pub async fn delta_with_reports(
    store: &PgStore,
    connector: &Connector,
    source: &TenantSource,
    now: DateTime<Utc>,
) -> Result<PassReport> {
    let tenant = &source.tenant;
    let open = !store.report_jobs(&tenant.id, None, true).await?.is_empty();
    let initial = tenant.initial_import == InitialImport::Reports
        && store.sync_state(&tenant.id).await?.cursor.is_none()
        && plan::initial_range(
            now,
            source.settings.initial_lookback,
            &source.settings.reports,
        )
        .is_some();
    if !open && !initial {
        return run_pass(store, source, PassKind::Delta, now).await;
    }
    let reports = ReportSource::new(connector, tenant, source.progress.clone());
    let imported = run_report_pass(store, &reports, ReportWork::Advance, now).await;
    if initial_import_running(store, tenant).await? {
        // The delta waits: a first Orders API window would read the whole lookback.
        return imported;
    }
    match imported {
        Err(e @ Error::AlreadyRunning(_)) => return Err(e),
        Err(e) => {
            tracing::error!(tenant = %tenant.id, "report jobs: {e}; the delta runs anyway")
        }
        Ok(_) => {}
    }
    run_pass(store, source, PassKind::Delta, Utc::now()).await
}

/// `backfill --via reports`: one report pass, or with `wait`, passes every `poll_interval`
/// (each its own run, releasing the tenant's lock in between, so the CronJob's deltas go on)
/// until every window of the range is done. Fails when a window was given up.
pub async fn backfill_with_reports(
    store: &PgStore,
    connector: &Connector,
    source: &TenantSource,
    range: SyncWindow,
    report_type: ReportType,
    wait: bool,
) -> Result<PassReport> {
    let reports = ReportSource::new(connector, &source.tenant, source.progress.clone());
    let work = ReportWork::Backfill { range, report_type };
    let windows = plan::windows(range, source.settings.reports.window);
    let mut total = PassReport::default();
    loop {
        let report = run_report_pass(store, &reports, work, Utc::now()).await?;
        total.counts += report.counts;
        total.api_calls = report.api_calls;
        total.throttled = report.throttled;
        total.outcome = report.outcome;
        total.window = Some(range);
        let jobs: Vec<ReportJob> = store
            .report_jobs(&source.tenant.id, Some(JobPurpose::Backfill), false)
            .await?
            .into_iter()
            .filter(|j| j.report_type == report_type && windows.contains(&j.window))
            .collect();
        let summary = JobsSummary::of(&jobs);
        tracing::info!(tenant = %source.tenant.id, "reports: {summary}");
        if !wait || report.outcome == RunOutcome::Partial {
            return Ok(total);
        }
        if summary.finished() {
            if summary.failed > 0 {
                let errors: Vec<String> = jobs
                    .iter()
                    .filter(|j| j.status == JobStatus::Failed)
                    .map(|j| {
                        format!(
                            "{}..{}: {}",
                            j.window.after,
                            j.window.before,
                            j.error.as_deref().unwrap_or("?")
                        )
                    })
                    .collect();
                return Err(Error::ReportsFailed(format!(
                    "{} of {} windows were given up: {}",
                    summary.failed,
                    summary.total(),
                    errors.join("; ")
                )));
            }
            return Ok(total);
        }
        let pause = source.settings.reports.poll_interval;
        if connector
            .deadline()
            .is_some_and(|d| tokio::time::Instant::now() + pause > d)
        {
            return Ok(PassReport {
                outcome: RunOutcome::Partial,
                ..total
            });
        }
        tokio::time::sleep(pause).await;
    }
}
