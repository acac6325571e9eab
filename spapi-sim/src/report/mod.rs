//! The Reports API 2021-06-30 for the two XML all-orders report types, over the same seller orders
//! the Orders routes serve: createReport, getReport, getReportDocument, and the presigned
//! S3-style URL the document is downloaded from.
//!
//! - `queue`: each report's life (IN_QUEUE → IN_PROGRESS → DONE | CANCELLED | FATAL), serial per
//!   seller, computed lazily from the clock; the test controls (stall, fail, hidden quotas).
//! - `xml`: the AllOrdersReport document; `document`: its gzip bytes.
//! - `api`: request validation and the JSON answers; `routes`: the three SP-API handlers.
//! - `s3`: the download URL, which behaves like S3 rather than like SP-API.

pub(crate) mod api;
pub(crate) mod document;
pub(crate) mod queue;
pub(crate) mod routes;
pub(crate) mod s3;
pub(crate) mod xml;

use chrono::{DateTime, Utc};

/// A report's `processingStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportStatus {
    InQueue,
    InProgress,
    Done,
    /// Also Amazon's answer when the window holds no data (no document then).
    Cancelled,
    Fatal,
}

impl ReportStatus {
    /// The model's enum value (`IN_QUEUE`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::InQueue => "IN_QUEUE",
            ReportStatus::InProgress => "IN_PROGRESS",
            ReportStatus::Done => "DONE",
            ReportStatus::Cancelled => "CANCELLED",
            ReportStatus::Fatal => "FATAL",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ReportStatus::Done | ReportStatus::Cancelled | ReportStatus::Fatal
        )
    }
}

/// What `SimHandle::reports` shows of one report, as of the call.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReport {
    pub report_id: String,
    pub report_type: String,
    pub status: ReportStatus,
    pub marketplace_ids: Vec<String>,
    pub data_start_time: DateTime<Utc>,
    pub data_end_time: DateTime<Utc>,
    pub created_time: DateTime<Utc>,
    pub processing_start_time: Option<DateTime<Utc>>,
    pub processing_end_time: Option<DateTime<Utc>>,
    /// Set when DONE.
    pub report_document_id: Option<String>,
    /// Orders in the document (0 unless DONE).
    pub order_count: usize,
}
