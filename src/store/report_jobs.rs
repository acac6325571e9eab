//! `report_jobs`: a tenant's report windows and where each stands (see
//! `sync::reports::job` for the state machine). Every change a pass makes here is one
//! transaction that checks the pass's fencing token, like a page commit: a pass that lost its
//! lock changes no job.

use chrono::{DateTime, Utc};
use sqlx::{Connection, FromRow};
use tracing::instrument;

use super::{PgStore, clamp_i32};
use crate::error::{Error, Result};
use crate::model::{
    ImportCounts, JobPurpose, JobStatus, MARKETPLACE, ReportJob, ReportType, SyncWindow, TenantId,
};

#[derive(FromRow)]
struct JobRow {
    id: i64,
    purpose: String,
    report_type: String,
    data_start: DateTime<Utc>,
    data_end: DateTime<Utc>,
    status: String,
    report_id: Option<String>,
    processing_status: Option<String>,
    document_id: Option<String>,
    requests: i32,
    failures: i32,
    requested_at: Option<DateTime<Utc>>,
    messages_done: i32,
    orders_imported: i32,
    orders_skipped: i32,
    orders_foreign: i32,
    orders_quarantined: i32,
    items_imported: i32,
    items_staged: i32,
    error: Option<String>,
}

const JOB_COLUMNS: &str = "id, purpose, report_type, data_start, data_end, status, report_id,
    processing_status, document_id, requests, failures, requested_at, messages_done,
    orders_imported, orders_skipped, orders_foreign, orders_quarantined, items_imported,
    items_staged, error";

impl TryFrom<JobRow> for ReportJob {
    type Error = Error;
    fn try_from(r: JobRow) -> Result<Self> {
        let unknown = |what: &str, value: &str| {
            Error::Database(sqlx::Error::Protocol(format!(
                "report job {}: unknown {what} {value:?} in the database",
                r.id
            )))
        };
        let n = |v: i32| v.max(0) as u64;
        Ok(ReportJob {
            id: r.id,
            purpose: JobPurpose::from_name(&r.purpose)
                .ok_or_else(|| unknown("purpose", &r.purpose))?,
            report_type: ReportType::from_name(&r.report_type)
                .ok_or_else(|| unknown("report type", &r.report_type))?,
            window: SyncWindow {
                after: r.data_start,
                before: r.data_end,
            },
            status: JobStatus::from_name(&r.status).ok_or_else(|| unknown("status", &r.status))?,
            report_id: r.report_id,
            processing_status: r.processing_status,
            document_id: r.document_id,
            requests: r.requests,
            failures: r.failures,
            requested_at: r.requested_at,
            messages_done: i64::from(r.messages_done),
            counts: ImportCounts {
                orders_imported: n(r.orders_imported),
                orders_skipped: n(r.orders_skipped),
                orders_foreign: n(r.orders_foreign),
                orders_quarantined: n(r.orders_quarantined),
                items_imported: n(r.items_imported),
                items_staged: n(r.items_staged),
                item_id_changes: 0,
            },
            error: r.error,
        })
    }
}

/// A change of one job, as the state machine decides it.
#[derive(Debug, Clone, PartialEq)]
pub enum JobChange {
    /// createReport accepted: `report_id` is the job's report from now on; a previous one
    /// (FATAL, stuck) is remembered in `previous_report_ids`.
    Requested { report_id: String },
    /// getReport answered a status that is not terminal yet.
    Polled { processing_status: String },
    /// DONE: the document is to be imported.
    Ready { document_id: String },
    /// CANCELLED: no data in the window.
    Empty,
    /// The document was imported to its end.
    Imported,
    /// The report failed (FATAL), got stuck, or its import broke off. `retry`: request the
    /// window again (FATAL, stuck) or import the document again from where it stopped
    /// (`requeue: false`); otherwise the job fails for good.
    Failure {
        error: String,
        requeue: bool,
        give_up: bool,
    },
}

impl PgStore {
    /// Records the windows of a plan as jobs; windows already recorded (the same command run
    /// again) are left as they are. Returns the jobs of these windows, oldest first.
    #[instrument(skip_all, fields(tenant = %tenant, windows = windows.len()))]
    pub async fn plan_report_jobs(
        &self,
        tenant: &TenantId,
        purpose: JobPurpose,
        report_type: ReportType,
        windows: &[SyncWindow],
    ) -> Result<Vec<ReportJob>> {
        let mut c = self.conn().await?;
        let mut tx = c.begin().await?;
        self.check_fence(&mut tx).await?;
        let starts: Vec<DateTime<Utc>> = windows.iter().map(|w| w.after).collect();
        let ends: Vec<DateTime<Utc>> = windows.iter().map(|w| w.before).collect();
        sqlx::query(
            "INSERT INTO report_jobs (tenant_id, purpose, report_type, data_start, data_end)
             SELECT $1, $2, $3, u.s, u.e FROM UNNEST($4::timestamptz[], $5::timestamptz[]) AS u(s, e)
             ON CONFLICT (tenant_id, purpose, report_type, data_start, data_end) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(purpose.as_str())
        .bind(report_type.name())
        .bind(&starts)
        .bind(&ends)
        .execute(&mut *tx)
        .await?;
        let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM report_jobs j
               JOIN UNNEST($4::timestamptz[], $5::timestamptz[]) AS u(s, e)
                 ON j.data_start = u.s AND j.data_end = u.e
              WHERE j.tenant_id = $1 AND j.purpose = $2 AND j.report_type = $3
              ORDER BY j.data_start, j.data_end"
        )))
        .bind(tenant.as_str())
        .bind(purpose.as_str())
        .bind(report_type.name())
        .bind(&starts)
        .bind(&ends)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter().map(ReportJob::try_from).collect()
    }

    /// The tenant's jobs, oldest window first: those of `purpose`, or all; only the open ones
    /// (not terminal) when `open_only`.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn report_jobs(
        &self,
        tenant: &TenantId,
        purpose: Option<JobPurpose>,
        open_only: bool,
    ) -> Result<Vec<ReportJob>> {
        let mut c = self.conn().await?;
        let rows: Vec<JobRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM report_jobs
              WHERE tenant_id = $1 AND ($2::text IS NULL OR purpose = $2)
                AND (NOT $3 OR status IN ('queued', 'requested', 'ready'))
              ORDER BY data_start, data_end, id"
        )))
        .bind(tenant.as_str())
        .bind(purpose.map(JobPurpose::as_str))
        .bind(open_only)
        .fetch_all(&mut *c)
        .await?;
        rows.into_iter().map(ReportJob::try_from).collect()
    }

    /// Of these tenants, those with report jobs that are not done: one question for a whole
    /// run, so that tenants without report work start their pass without an extra query.
    #[instrument(skip_all, fields(tenants = tenants.len()))]
    pub async fn tenants_with_open_report_jobs(
        &self,
        tenants: &[TenantId],
    ) -> Result<Vec<TenantId>> {
        let mut c = self.conn().await?;
        let ids: Vec<&str> = tenants.iter().map(TenantId::as_str).collect();
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT tenant_id FROM report_jobs
              WHERE tenant_id = ANY($1) AND status IN ('queued', 'requested', 'ready')",
        )
        .bind(&ids)
        .fetch_all(&mut *c)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|id| TenantId::parse(id).ok())
            .collect())
    }

    /// Applies one change to a job.
    #[instrument(skip_all, fields(tenant = %tenant, job = job_id))]
    pub async fn change_report_job(
        &self,
        tenant: &TenantId,
        job_id: i64,
        change: &JobChange,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let mut tx = c.begin().await?;
        self.check_fence(&mut tx).await?;
        let q = |sql: &'static str| sqlx::query(sql).bind(tenant.as_str()).bind(job_id);
        let q = match change {
            JobChange::Requested { report_id } => q(
                "UPDATE report_jobs SET status = 'requested', report_id = $3,
                        previous_report_ids = CASE WHEN report_id IS NULL THEN previous_report_ids
                                                   ELSE previous_report_ids || report_id END,
                        processing_status = 'IN_QUEUE', document_id = NULL, requests = requests + 1,
                        requested_at = now(), done_at = NULL, messages_done = 0, updated_at = now()
                  WHERE tenant_id = $1 AND id = $2",
            )
            .bind(report_id),
            JobChange::Polled { processing_status } => q(
                "UPDATE report_jobs SET processing_status = $3, polled_at = now(), updated_at = now()
                  WHERE tenant_id = $1 AND id = $2",
            )
            .bind(processing_status),
            JobChange::Ready { document_id } => q(
                "UPDATE report_jobs SET status = 'ready', processing_status = 'DONE', document_id = $3,
                        polled_at = now(), done_at = now(), updated_at = now()
                  WHERE tenant_id = $1 AND id = $2",
            )
            .bind(document_id),
            JobChange::Empty => q(
                "UPDATE report_jobs SET status = 'empty', processing_status = 'CANCELLED',
                        polled_at = now(), done_at = now(), error = NULL, updated_at = now()
                  WHERE tenant_id = $1 AND id = $2",
            ),
            JobChange::Imported => q(
                "UPDATE report_jobs SET status = 'imported', imported_at = now(), error = NULL,
                        updated_at = now()
                  WHERE tenant_id = $1 AND id = $2",
            ),
            JobChange::Failure {
                error,
                requeue,
                give_up,
            } => q(
                "UPDATE report_jobs SET failures = failures + 1, error = $3,
                        status = CASE WHEN $5 THEN 'failed' WHEN $4 THEN 'queued' ELSE status END,
                        previous_report_ids = CASE WHEN $4 AND report_id IS NOT NULL
                                                   THEN previous_report_ids || report_id
                                                   ELSE previous_report_ids END,
                        report_id = CASE WHEN $4 THEN NULL ELSE report_id END,
                        document_id = CASE WHEN $4 THEN NULL ELSE document_id END,
                        messages_done = CASE WHEN $4 THEN 0 ELSE messages_done END,
                        done_at = CASE WHEN $5 THEN now() ELSE done_at END,
                        updated_at = now()
                  WHERE tenant_id = $1 AND id = $2",
            )
            .bind(error)
            .bind(requeue)
            .bind(give_up),
        };
        let changed = q.execute(&mut *tx).await?.rows_affected();
        if changed != 1 {
            return Err(Error::Database(sqlx::Error::Protocol(format!(
                "report job {job_id} of tenant {tenant} is not stored"
            ))));
        }
        tx.commit().await?;
        Ok(())
    }

    /// A tenant's first sync through reports is done: its cursor becomes `cursor`, unless it
    /// already has one that is later (never backwards). Only while this pass holds the lock.
    #[instrument(skip_all, fields(tenant = %tenant))]
    pub async fn finish_initial_import(
        &self,
        tenant: &TenantId,
        cursor: DateTime<Utc>,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let mut tx = c.begin().await?;
        self.check_fence(&mut tx).await?;
        sqlx::query(
            "UPDATE marketplace_sync_state SET cursor = GREATEST(cursor, $3), updated_at = now()
              WHERE tenant_id = $1 AND type = $2",
        )
        .bind(tenant.as_str())
        .bind(MARKETPLACE)
        .bind(cursor)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// In an import batch's transaction: the job's progress (messages of the document committed)
/// and its counts.
pub(super) async fn record_job_progress(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    tenant: &TenantId,
    job_id: i64,
    messages_done: i64,
    counts: &ImportCounts,
) -> Result<()> {
    let changed = sqlx::query(
        "UPDATE report_jobs SET messages_done = $3,
                orders_imported = orders_imported + $4, orders_skipped = orders_skipped + $5,
                orders_foreign = orders_foreign + $6, orders_quarantined = orders_quarantined + $7,
                items_imported = items_imported + $8, items_staged = items_staged + $9,
                updated_at = now()
          WHERE tenant_id = $1 AND id = $2 AND status = 'ready'",
    )
    .bind(tenant.as_str())
    .bind(job_id)
    .bind(clamp_i32(messages_done.max(0) as u64))
    .bind(clamp_i32(counts.orders_imported))
    .bind(clamp_i32(counts.orders_skipped))
    .bind(clamp_i32(counts.orders_foreign))
    .bind(clamp_i32(counts.orders_quarantined))
    .bind(clamp_i32(counts.items_imported))
    .bind(clamp_i32(counts.items_staged))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if changed != 1 {
        return Err(Error::Database(sqlx::Error::Protocol(format!(
            "report job {job_id} of tenant {tenant} is not ready for import"
        ))));
    }
    Ok(())
}
