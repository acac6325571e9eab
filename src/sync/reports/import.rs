//! Importing one report document: a fresh URL, the download streamed through gunzip and the XML
//! reader, orders mapped and written in batches, each batch committed with the job's progress.
//!
//! Memory holds one batch of orders at most, whatever the document's size. A document that
//! breaks off (a dropped connection, a truncated or malformed document) keeps every batch
//! committed before; the job records how many messages are done, and the next attempt skips
//! them (no order twice, none lost). An expired URL is asked for again once.

use tokio::time::Instant;

use super::ReportSource;
use super::map::{Mapped, map_order};
use super::xml::{DocumentOrders, RawOrder};
use crate::config::ReportSettings;
use crate::error::{Error, Result};
use crate::model::{ImportCounts, ReportEntry, ReportJob, RunTally, report_source};
use crate::spapi::SpApiClient;
use crate::spapi::document::{DocumentReader, DownloadError, DownloadLimits};
use crate::spapi::reports::ReportDocument;
use crate::store::{ImportBatch, PgStore};

/// Room left before the run's deadline for one more batch to be read and committed.
const BATCH_ALLOWANCE: std::time::Duration = std::time::Duration::from_secs(10);

/// What one import attempt did.
#[derive(Debug, Default)]
pub struct Imported {
    pub counts: ImportCounts,
    /// The document was read to its end: the job is imported.
    pub complete: bool,
}

fn limits(settings: &ReportSettings) -> DownloadLimits {
    DownloadLimits {
        max_download_bytes: settings.max_download_bytes,
        max_document_bytes: settings.max_document_bytes,
        idle_timeout: settings.download_idle_timeout,
    }
}

/// A fresh URL for the document, opened; asked for once more if S3 refuses the first.
async fn open(
    client: &SpApiClient,
    document_id: &str,
    settings: &ReportSettings,
) -> Result<DocumentReader> {
    let limits = limits(settings);
    let mut refused = None;
    for _ in 0..2 {
        let document: ReportDocument = client.get_report_document(document_id).await?;
        match client.open_document(&document, &limits).await {
            Ok(reader) => return Ok(reader),
            Err(DownloadError::UrlRefused { code, message }) => {
                tracing::warn!(
                    document = document_id,
                    "the document URL was refused ({code}: {message}); asking for a new one"
                );
                refused = Some(format!("{code}: {message}"));
            }
            Err(DownloadError::Failed(e)) => return Err(e),
        }
    }
    Err(Error::ReportDocument {
        document: document_id.to_owned(),
        detail: format!(
            "the download was refused twice, with fresh URLs ({})",
            refused.unwrap_or_default()
        ),
    })
}

/// Imports `job`'s document from where it stopped. `tally` gives the run's numbers to record
/// with each batch; `on_batch` is told each batch's counts (progress display, logs).
pub async fn import_document(
    store: &PgStore,
    source: &ReportSource,
    job: &ReportJob,
    tally: &(dyn Fn(&ImportCounts) -> RunTally + Sync),
    on_batch: &(dyn Fn(&ImportCounts) + Sync),
) -> Result<Imported> {
    let (client, tenant) = (&source.client, &source.tenant.id);
    let (marketplaces, settings) = (&source.tenant.marketplace_ids, &source.settings.reports);
    let (Some(report_id), Some(document_id)) = (&job.report_id, &job.document_id) else {
        return Err(Error::Internal(format!(
            "report job {} is ready without a report or a document",
            job.id
        )));
    };
    let source = report_source(job.report_type.name(), report_id);
    let reader = open(client, document_id, settings).await?;
    let mut orders = DocumentOrders::new(reader, report_id);
    let skip = job.messages_done.max(0) as u64;
    if skip > 0 {
        tracing::info!(report = %report_id, messages = skip, "resuming an import after the messages already committed");
    }
    let parse_error = |e: super::xml::ParseError| Error::ReportDocument {
        document: document_id.clone(),
        detail: e.to_string(),
    };
    let mut done = Imported::default();
    // An order read past a batch's end, waiting for the next batch.
    let mut held: Option<RawOrder> = None;
    loop {
        if client
            .deadline()
            .is_some_and(|d| Instant::now() + BATCH_ALLOWANCE > d)
        {
            return Err(Error::OutOfTime {
                operation: "getReportDocument",
            });
        }
        let mut entries: Vec<ReportEntry> = Vec::new();
        let mut last_message = 0;
        let mut ended = false;
        loop {
            let raw = match held.take() {
                Some(raw) => Some(raw),
                None => orders.next_order().await.map_err(parse_error)?,
            };
            let Some(raw) = raw else {
                ended = true;
                break;
            };
            if raw.message <= skip {
                continue;
            }
            // A batch ends between messages, never inside one: `messages_done` must mean that
            // every order of those messages is committed.
            if entries.len() >= settings.batch_orders.max(1) && raw.message != last_message {
                held = Some(raw);
                break;
            }
            last_message = raw.message;
            let Mapped { entry, notes } = map_order(&raw.node, marketplaces);
            for note in notes {
                tracing::info!(report = %report_id, "{note}");
            }
            if let ReportEntry::Unreadable {
                order_id, error, ..
            } = &entry
            {
                tracing::warn!(
                    report = %report_id,
                    order_id = order_id.as_deref().unwrap_or("?"),
                    "order quarantined, not imported: {error}"
                );
            }
            entries.push(entry);
        }
        // At the end, every message of the document is done (those without an order too).
        let messages_done = if ended {
            orders.messages()
        } else {
            last_message
        };
        if !entries.is_empty() || ended {
            let batch = ImportBatch {
                job_id: job.id,
                source: &source,
                entries: &entries,
                messages_done: messages_done.max(skip) as i64,
            };
            let result = store
                .import_report_batch(tenant, &batch, Some(&|c: &ImportCounts| tally(c)))
                .await?;
            for change in &result.item_id_changes {
                tracing::warn!(
                    report = %report_id,
                    order_id = %change.order_id,
                    stored = ?change.stored,
                    reported = ?change.reported,
                    "the report lists other item ids than those stored for this order; none was deleted"
                );
            }
            done.counts += result.counts;
            on_batch(&result.counts);
        }
        if ended {
            done.complete = true;
            return Ok(done);
        }
    }
}
