//! The state machine of a report job, as pure decisions (the pass applies them through
//! [`crate::store::JobChange`]).
//!
//! ```text
//!            createReport                getReport: DONE            document imported
//!  queued ─────────────────► requested ─────────────────► ready ──────────────────► imported
//!    ▲                         │   │  getReport: CANCELLED (no data in the window)
//!    │                         │   └───────────────────────────────────────────────► empty
//!    │  FATAL, or stuck past   │
//!    └──── `stuck_after` ──────┘   (each a failure; at `max_failures`: ─────────────► failed)
//!
//!  ready: an import that breaks off (download, document, parse) is a failure too; the next
//!         pass resumes it after the last committed message, with a fresh document URL.
//! ```
//! A 429 on createReport (the usage plan, or a hidden per-report-type quota) is throttling, not
//! a failure: the window stays queued for the next pass.

use chrono::{DateTime, Utc};

use crate::model::{JobStatus, ReportJob};
use crate::spapi::reports::{ProcessingStatus, Report};
use crate::store::JobChange;

/// What a pass does next for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Request,
    Poll,
    Import,
    Nothing,
}

pub fn next(job: &ReportJob) -> Next {
    match job.status {
        JobStatus::Queued => Next::Request,
        JobStatus::Requested => Next::Poll,
        JobStatus::Ready => Next::Import,
        JobStatus::Imported | JobStatus::Empty | JobStatus::Failed => Next::Nothing,
    }
}

/// A failure of `job` with `error`: the window is requested again (`requeue`) or its import
/// resumed, unless this is its `max_failures`-th failure.
pub fn failure(job: &ReportJob, error: String, requeue: bool, max_failures: u32) -> JobChange {
    let give_up = (job.failures.max(0) as u32).saturating_add(1) >= max_failures.max(1);
    JobChange::Failure {
        error,
        requeue,
        give_up,
    }
}

/// What getReport's answer means for `job`.
pub fn after_poll(
    job: &ReportJob,
    report: &Report,
    now: DateTime<Utc>,
    stuck_after: chrono::Duration,
    max_failures: u32,
) -> JobChange {
    match report.status {
        ProcessingStatus::Done => match &report.document_id {
            Some(document_id) => JobChange::Ready {
                document_id: document_id.clone(),
            },
            // getReport refuses this already; kept total.
            None => failure(
                job,
                format!("report {} is DONE without a document", report.report_id),
                true,
                max_failures,
            ),
        },
        ProcessingStatus::Cancelled => JobChange::Empty,
        ProcessingStatus::Fatal => failure(
            job,
            format!(
                "Amazon could not generate report {} (FATAL)",
                report.report_id
            ),
            true,
            max_failures,
        ),
        ProcessingStatus::InQueue | ProcessingStatus::InProgress => {
            let waited = job.requested_at.map(|t| now - t);
            match waited {
                Some(waited) if waited > stuck_after => failure(
                    job,
                    format!(
                        "report {} still {} {} minutes after it was requested",
                        report.report_id,
                        report.status.as_str(),
                        waited.num_minutes()
                    ),
                    true,
                    max_failures,
                ),
                _ => JobChange::Polled {
                    processing_status: report.status.as_str().to_owned(),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ImportCounts, JobPurpose, ReportType, SyncWindow};
    use chrono::{Duration, TimeZone};

    fn job(status: JobStatus, failures: i32) -> ReportJob {
        let t = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        ReportJob {
            id: 1,
            purpose: JobPurpose::Backfill,
            report_type: ReportType::ByLastUpdate,
            window: SyncWindow {
                after: t - Duration::days(30),
                before: t,
            },
            status,
            report_id: Some("R1".into()),
            processing_status: Some("IN_QUEUE".into()),
            document_id: None,
            requests: 1,
            failures,
            requested_at: Some(t),
            messages_done: 0,
            counts: ImportCounts::default(),
            error: None,
        }
    }

    fn report(status: ProcessingStatus, document: Option<&str>) -> Report {
        Report {
            report_id: "R1".into(),
            status,
            document_id: document.map(str::to_owned),
            processing_start: None,
        }
    }

    #[test]
    fn every_status_has_its_next_step() {
        assert_eq!(next(&job(JobStatus::Queued, 0)), Next::Request);
        assert_eq!(next(&job(JobStatus::Requested, 0)), Next::Poll);
        assert_eq!(next(&job(JobStatus::Ready, 0)), Next::Import);
        for s in [JobStatus::Imported, JobStatus::Empty, JobStatus::Failed] {
            assert_eq!(next(&job(s, 0)), Next::Nothing);
        }
    }

    #[test]
    fn terminal_answers_and_faults() {
        let j = job(JobStatus::Requested, 0);
        let now = j.requested_at.unwrap() + Duration::minutes(5);
        let stuck = Duration::hours(3);
        assert_eq!(
            after_poll(
                &j,
                &report(ProcessingStatus::Done, Some("D1")),
                now,
                stuck,
                3
            ),
            JobChange::Ready {
                document_id: "D1".into()
            }
        );
        assert_eq!(
            after_poll(
                &j,
                &report(ProcessingStatus::Cancelled, None),
                now,
                stuck,
                3
            ),
            JobChange::Empty,
            "CANCELLED is an empty window, not an error"
        );
        assert!(matches!(
            after_poll(&j, &report(ProcessingStatus::Fatal, None), now, stuck, 3),
            JobChange::Failure {
                requeue: true,
                give_up: false,
                ..
            }
        ));
        assert!(
            matches!(
                after_poll(
                    &job(JobStatus::Requested, 2),
                    &report(ProcessingStatus::Fatal, None),
                    now,
                    stuck,
                    3
                ),
                JobChange::Failure { give_up: true, .. }
            ),
            "the third FATAL gives up"
        );
        assert_eq!(
            after_poll(
                &j,
                &report(ProcessingStatus::InProgress, None),
                now,
                stuck,
                3
            ),
            JobChange::Polled {
                processing_status: "IN_PROGRESS".into()
            }
        );
        let late = j.requested_at.unwrap() + Duration::hours(4);
        let JobChange::Failure { error, requeue, .. } =
            after_poll(&j, &report(ProcessingStatus::InQueue, None), late, stuck, 3)
        else {
            panic!()
        };
        assert!(
            requeue && error.contains("still IN_QUEUE 240 minutes"),
            "{error}"
        );
    }
}
