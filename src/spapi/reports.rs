//! Reports API 2021-06-30 (Amazon's `reports_2021-06-30.json`): the three operations a report
//! import calls, and their wire shapes (only the fields the import reads).
//!
//! createReport, getReport and getReportDocument go through [`SpApiClient`]'s pacing, retries and
//! error reading, like the Orders API. The document itself is fetched by [`super::document`],
//! which sends no SP-API header. A document URL is presigned: it is a [`Secret`] here, so it can
//! reach no log line or message.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{Operation, SpApiClient, v0::percent_encode_path};
use crate::error::{Error, Result};
use crate::model::{Secret, amazon_time};

pub const REPORTS_PATH: &str = "/reports/2021-06-30/reports";

pub fn report_path(report_id: &str) -> String {
    format!("{REPORTS_PATH}/{}", percent_encode_path(report_id))
}

pub fn document_path(document_id: &str) -> String {
    format!(
        "/reports/2021-06-30/documents/{}",
        percent_encode_path(document_id)
    )
}

/// `createReport` 202 body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateReportResponse {
    report_id: String,
}

/// A report's `processingStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingStatus {
    InQueue,
    InProgress,
    Done,
    /// Also Amazon's answer for a window with no data: no document then.
    Cancelled,
    Fatal,
}

impl ProcessingStatus {
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "IN_QUEUE" => ProcessingStatus::InQueue,
            "IN_PROGRESS" => ProcessingStatus::InProgress,
            "DONE" => ProcessingStatus::Done,
            "CANCELLED" => ProcessingStatus::Cancelled,
            "FATAL" => ProcessingStatus::Fatal,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProcessingStatus::InQueue => "IN_QUEUE",
            ProcessingStatus::InProgress => "IN_PROGRESS",
            ProcessingStatus::Done => "DONE",
            ProcessingStatus::Cancelled => "CANCELLED",
            ProcessingStatus::Fatal => "FATAL",
        }
    }
}

/// `getReport` 200 body (the model's `Report`; no `payload` wrapper in 2021-06-30).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReportWire {
    report_id: String,
    processing_status: String,
    #[serde(default)]
    report_document_id: Option<String>,
    #[serde(default)]
    processing_start_time: Option<DateTime<Utc>>,
}

/// What the import reads of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub report_id: String,
    pub status: ProcessingStatus,
    /// Set when DONE (a FATAL report may carry one too, for an error document).
    pub document_id: Option<String>,
    pub processing_start: Option<DateTime<Utc>>,
}

/// `getReportDocument` 200 body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReportDocumentWire {
    report_document_id: String,
    url: Secret,
    #[serde(default)]
    compression_algorithm: Option<String>,
}

/// Where a report document is, for the next five minutes.
#[derive(Debug, Clone)]
pub struct ReportDocument {
    pub document_id: String,
    /// Presigned: whoever has it can read the document until it expires. Never printed.
    pub url: Secret,
    /// `GZIP`, or none for a document served as is.
    pub compression: Option<String>,
}

fn bad(op: Operation, detail: String) -> Error {
    Error::BadResponse {
        operation: op.name(),
        detail,
    }
}

impl SpApiClient {
    /// `createReport` for one window; returns the report id. Amazon answers 429 for its usage
    /// plan and, for some report types, for a hidden per-type quota: both are throttling, retried
    /// like any 429, and never a failure of the window.
    pub async fn create_report(
        &self,
        report_type: &str,
        marketplace_ids: &[String],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<String> {
        let op = Operation::CreateReport;
        let body = json!({
            "reportType": report_type,
            "marketplaceIds": marketplace_ids,
            "dataStartTime": amazon_time(start),
            "dataEndTime": amazon_time(end),
        });
        let answer = self.post_json(op, REPORTS_PATH, &body).await?;
        let created: CreateReportResponse = serde_json::from_value(answer)
            .map_err(|e| bad(op, format!("createReport answer: {e}")))?;
        if created.report_id.is_empty() {
            return Err(bad(
                op,
                "createReport answered an empty reportId".to_owned(),
            ));
        }
        Ok(created.report_id)
    }

    /// `getReport`: where a report stands.
    pub async fn get_report(&self, report_id: &str) -> Result<Report> {
        let op = Operation::GetReport;
        let answer = self.get_json(op, &report_path(report_id), &[]).await?;
        let wire: ReportWire = serde_json::from_value(answer)
            .map_err(|e| bad(op, format!("report {report_id}: {e}")))?;
        if wire.report_id != report_id {
            return Err(bad(
                op,
                format!("asked for report {report_id}, got {}", wire.report_id),
            ));
        }
        let status = ProcessingStatus::parse(&wire.processing_status).ok_or_else(|| {
            bad(
                op,
                format!(
                    "report {report_id}: unknown processingStatus {:?}",
                    wire.processing_status
                ),
            )
        })?;
        if status == ProcessingStatus::Done && wire.report_document_id.is_none() {
            return Err(bad(
                op,
                format!("report {report_id} is DONE without a reportDocumentId"),
            ));
        }
        Ok(Report {
            report_id: wire.report_id,
            status,
            document_id: wire.report_document_id,
            processing_start: wire.processing_start_time,
        })
    }

    /// `getReportDocument`: a fresh presigned URL for a document (they expire after five
    /// minutes, so one is asked for right before each download).
    pub async fn get_report_document(&self, document_id: &str) -> Result<ReportDocument> {
        let op = Operation::GetReportDocument;
        let answer = self.get_json(op, &document_path(document_id), &[]).await?;
        let wire: ReportDocumentWire = serde_json::from_value(answer)
            // serde's message could quote the URL: say only which field failed.
            .map_err(|e| {
                bad(
                    op,
                    format!(
                        "document {document_id}: the answer is not a ReportDocument (line {}, column {})",
                        e.line(),
                        e.column()
                    ),
                )
            })?;
        if wire.report_document_id != document_id {
            return Err(bad(
                op,
                format!(
                    "asked for document {document_id}, got {}",
                    wire.report_document_id
                ),
            ));
        }
        Ok(ReportDocument {
            document_id: wire.report_document_id,
            url: wire.url,
            compression: wire.compression_algorithm,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_encode_ids_and_statuses_round_trip() {
        assert_eq!(report_path("123/4"), "/reports/2021-06-30/reports/123%2F4");
        assert_eq!(
            document_path("amzn1.tortuga.4.eu.x"),
            "/reports/2021-06-30/documents/amzn1.tortuga.4.eu.x"
        );
        for s in [
            ProcessingStatus::InQueue,
            ProcessingStatus::InProgress,
            ProcessingStatus::Done,
            ProcessingStatus::Cancelled,
            ProcessingStatus::Fatal,
        ] {
            assert_eq!(ProcessingStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ProcessingStatus::parse("DONE_NO_DATA"), None);
    }

    #[test]
    fn reports_operations_have_amazons_usage_plans_and_their_buckets_survive_a_restart() {
        let plans = [
            (Operation::CreateReport, "createReport", 0.0167, 15.0),
            (Operation::GetReport, "getReport", 2.0, 15.0),
            (
                Operation::GetReportDocument,
                "getReportDocument",
                0.0167,
                15.0,
            ),
        ];
        for (op, name, rate, burst) in plans {
            assert_eq!(op.name(), name);
            // Saved buckets are restored by name.
            assert_eq!(Operation::from_name(name), Some(op));
            assert_eq!((op.documented_rate(), op.documented_burst()), (rate, burst));
        }
    }

    #[test]
    fn a_document_answer_that_does_not_parse_never_quotes_its_url() {
        let raw = json!({"reportDocumentId": 5, "url": "https://s3/doc?X-Amz-Signature=SECRET"});
        let e = serde_json::from_value::<ReportDocumentWire>(raw)
            .err()
            .unwrap();
        let shown = format!("line {}, column {}", e.line(), e.column());
        assert!(!shown.contains("SECRET"));
    }
}
