//! Every seller's reports and their lifecycle, the finished documents and the presigned URLs handed
//! out for them, plus the test controls (generation delay, stuck queue, forced failures, hidden
//! per-type quotas).
//!
//! Processing is serial per seller, in creation order (REPORTS.md: a report "may be waiting for
//! another IN_PROGRESS report"), and computed lazily from the clock: `advance(now)` replays what
//! must have happened since the last call. Whatever changes the outcome (orders, settings) calls
//! `advance` first, so a report that finished at T saw the orders as they were at T although its
//! document is built later, when someone looks. Documents are built under the state lock: a report
//! of tens of thousands of orders holds it for a moment (fine for a test simulator).
//!
//! This module never sleeps and never spawns: nothing happens between two looks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::document::Document;
use super::xml::{XmlOptions, write_report};
use super::{ReportStatus, SimReport};
use crate::SimConfig;
use crate::model::SimOrder;
use crate::seed::SplitMix64;

/// The report types the simulator generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportType {
    AllOrdersByLastUpdate,
    AllOrdersByOrderDate,
}

impl ReportType {
    pub fn parse(name: &str) -> Option<ReportType> {
        match name {
            "GET_XML_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL" => {
                Some(ReportType::AllOrdersByLastUpdate)
            }
            "GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL" => {
                Some(ReportType::AllOrdersByOrderDate)
            }
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ReportType::AllOrdersByLastUpdate => "GET_XML_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL",
            ReportType::AllOrdersByOrderDate => "GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
        }
    }

    /// The date the report's window applies to.
    fn date_of(self, order: &SimOrder) -> DateTime<Utc> {
        match self {
            ReportType::AllOrdersByLastUpdate => order.last_update_date,
            ReportType::AllOrdersByOrderDate => order.purchase_date,
        }
    }
}

/// A validated createReport request.
#[derive(Debug, Clone)]
pub struct ReportSpec {
    pub report_type: ReportType,
    /// Echoed back; like Amazon's all-orders reports, the content ignores it.
    pub marketplace_ids: Vec<String>,
    pub data_start: DateTime<Utc>,
    pub data_end: DateTime<Utc>,
}

/// Maps the monotonic clock the lifecycle runs on to wall-clock times for display, from one
/// anchor for all reports so that their times order exactly as their instants do.
#[derive(Debug, Clone, Copy)]
struct Clock {
    instant: Instant,
    utc: DateTime<Utc>,
}

impl Clock {
    fn utc(self, at: Instant) -> DateTime<Utc> {
        let offset = at.saturating_duration_since(self.instant);
        self.utc + chrono::Duration::from_std(offset).unwrap_or_default()
    }
}

pub struct Record {
    pub id: String,
    pub spec: ReportSpec,
    clock: Clock,
    created: Instant,
    pub created_utc: DateTime<Utc>,
    /// Ends FATAL (see `fail_reports`).
    doomed: bool,
    pub status: ReportStatus,
    started: Option<Instant>,
    /// The generation delay in force when processing started.
    generation: Duration,
    finished: Option<Instant>,
    pub document_id: Option<String>,
    order_count: usize,
}

impl Record {
    fn utc(&self, at: Instant) -> DateTime<Utc> {
        self.clock.utc(at)
    }

    pub fn processing_start(&self) -> Option<DateTime<Utc>> {
        self.started.map(|at| self.utc(at))
    }

    pub fn processing_end(&self) -> Option<DateTime<Utc>> {
        self.finished.map(|at| self.utc(at))
    }

    pub fn view(&self) -> SimReport {
        SimReport {
            report_id: self.id.clone(),
            report_type: self.spec.report_type.name().to_string(),
            status: self.status,
            marketplace_ids: self.spec.marketplace_ids.clone(),
            data_start_time: self.spec.data_start,
            data_end_time: self.spec.data_end,
            created_time: self.created_utc,
            processing_start_time: self.processing_start(),
            processing_end_time: self.processing_end(),
            report_document_id: self.document_id.clone(),
            order_count: self.order_count,
        }
    }
}

pub struct StoredDocument {
    pub seller: String,
    pub document: Arc<Document>,
}

/// One presigned URL handed out by getReportDocument.
#[derive(Debug, Clone)]
pub struct Presigned {
    pub document_id: String,
    pub expires_at: Instant,
    pub expires_utc: DateTime<Utc>,
    pub ttl: Duration,
    /// The getReportDocument call asked for `enableContentEncodingUrlHeader=true`.
    pub content_encoding_gzip: bool,
}

/// Why createReport refused a well-formed request.
pub enum Refusal {
    /// The hidden per-type quota is used up.
    TypeQuotaExceeded,
}

pub struct Reports {
    clock: Clock,
    /// Generation time of reports that start from now on.
    pub generation: Duration,
    /// Lifetime of document URLs handed out from now on.
    pub url_ttl: Duration,
    /// Render Unshipped/PartiallyShipped as `Shipping` in documents generated from now on.
    pub status_shipping: bool,
    stalled: bool,
    /// When the queue was last un-stalled: nothing waiting through the stall starts before it.
    resumed_at: Option<Instant>,
    fail_next: u32,
    type_quotas: HashMap<String, u32>,
    next_id: u64,
    by_seller: HashMap<String, Vec<Record>>,
    documents: HashMap<String, StoredDocument>,
    /// Signature → URL.
    presigned: HashMap<String, Presigned>,
}

fn uuid(rng: &mut SplitMix64) -> String {
    let high = rng.next_u64();
    let low = rng.next_u64();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

/// Amazon-like document id, e.g. `amzn1.spdoc.1.4.eu.<uuid>.T2QPXW6QJ3OU8N.2307`.
fn document_id(rng: &mut SplitMix64) -> String {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let tail: String = (0..13)
        .map(|_| char::from(UPPER[rng.below(UPPER.len() as u64) as usize]))
        .collect();
    format!(
        "amzn1.spdoc.1.4.eu.{}.T{tail}.{}",
        uuid(rng),
        1000 + rng.below(9000)
    )
}

impl Reports {
    pub fn new(config: &SimConfig) -> Reports {
        Reports {
            clock: Clock {
                instant: Instant::now(),
                utc: Utc::now(),
            },
            generation: config.report_generation,
            url_ttl: config.report_url_ttl,
            status_shipping: config.report_status_shipping,
            stalled: false,
            resumed_at: None,
            fail_next: 0,
            type_quotas: HashMap::new(),
            // Amazon's report ids are 11-digit numbers ("50039018869").
            next_id: 50_039_018_869,
            by_seller: HashMap::new(),
            documents: HashMap::new(),
            presigned: HashMap::new(),
        }
    }

    /// Brings every report up to `now`. Call before anything that reads or changes reports,
    /// orders or report settings.
    pub fn advance(
        &mut self,
        orders: &HashMap<String, BTreeMap<String, SimOrder>>,
        now: Instant,
        rng: &mut SplitMix64,
    ) {
        let options = XmlOptions {
            status_shipping: self.status_shipping,
        };
        for (seller, queue) in &mut self.by_seller {
            // When the seller's previous report finished: the next one cannot start earlier.
            let mut free_at: Option<Instant> = None;
            for record in queue.iter_mut() {
                if record.status == ReportStatus::InQueue {
                    if self.stalled {
                        break;
                    }
                    let start = [Some(record.created), free_at, self.resumed_at]
                        .into_iter()
                        .flatten()
                        .max()
                        .unwrap_or(record.created);
                    if start > now {
                        break;
                    }
                    record.status = ReportStatus::InProgress;
                    record.started = Some(start);
                    record.generation = self.generation;
                }
                if record.status == ReportStatus::InProgress {
                    let started = record.started.unwrap_or(record.created);
                    let end = started + record.generation;
                    if end > now {
                        break;
                    }
                    let document = finish(record, end, orders.get(seller), options, rng);
                    if let Some((id, document)) = document {
                        self.documents.insert(
                            id,
                            StoredDocument {
                                seller: seller.clone(),
                                document: Arc::new(document),
                            },
                        );
                    }
                }
                free_at = free_at.max(record.finished);
            }
        }
    }

    /// Changes the generation time of every report not finished yet. An IN_PROGRESS report ends
    /// at the later of its start + `generation` and `now`: never in the past, so it cannot miss
    /// an order change already made. Call `advance` first.
    pub fn set_generation(&mut self, generation: Duration, now: Instant) {
        self.generation = generation;
        for record in self.by_seller.values_mut().flatten() {
            if let (ReportStatus::InProgress, Some(started)) = (record.status, record.started) {
                record.generation = generation.max(now.saturating_duration_since(started));
            }
        }
    }

    /// Freezes (or thaws) the queues: while stalled no report leaves IN_QUEUE; reports already
    /// IN_PROGRESS finish. Call `advance` first.
    pub fn set_stalled(&mut self, stalled: bool, now: Instant) {
        if self.stalled && !stalled {
            self.resumed_at = Some(now);
        }
        self.stalled = stalled;
    }

    pub fn fail_next(&mut self, count: u32) {
        self.fail_next = count;
    }

    pub fn set_type_quota(&mut self, report_type: &str, remaining: u32) {
        self.type_quotas.insert(report_type.to_string(), remaining);
    }

    /// Queues a report; returns its id. Call `advance` before and after.
    pub fn create(
        &mut self,
        seller: &str,
        spec: ReportSpec,
        now: Instant,
        rng: &mut SplitMix64,
    ) -> Result<String, Refusal> {
        if let Some(remaining) = self.type_quotas.get_mut(spec.report_type.name()) {
            if *remaining == 0 {
                return Err(Refusal::TypeQuotaExceeded);
            }
            *remaining -= 1;
        }
        let doomed = self.fail_next > 0;
        self.fail_next = self.fail_next.saturating_sub(1);
        let id = self.next_id.to_string();
        // Sparse like Amazon's, and unique across sellers (hence per seller).
        self.next_id += 1 + rng.below(40);
        self.by_seller
            .entry(seller.to_string())
            .or_default()
            .push(Record {
                id: id.clone(),
                spec,
                clock: self.clock,
                created: now,
                created_utc: self.clock.utc(now),
                doomed,
                status: ReportStatus::InQueue,
                started: None,
                generation: self.generation,
                finished: None,
                document_id: None,
                order_count: 0,
            });
        Ok(id)
    }

    /// One of the seller's reports; `None` for an unknown id or another seller's.
    pub fn report(&self, seller: &str, report_id: &str) -> Option<&Record> {
        self.by_seller
            .get(seller)?
            .iter()
            .find(|record| record.id == report_id)
    }

    pub fn list(&self, seller: &str) -> Vec<SimReport> {
        self.by_seller
            .get(seller)
            .map(|queue| queue.iter().map(Record::view).collect())
            .unwrap_or_default()
    }

    /// A document of the seller's; `None` for an unknown id or another seller's.
    pub fn seller_document(&self, seller: &str, document_id: &str) -> Option<Arc<Document>> {
        self.documents
            .get(document_id)
            .filter(|stored| stored.seller == seller)
            .map(|stored| stored.document.clone())
    }

    pub fn document(&self, document_id: &str) -> Option<Arc<Document>> {
        self.documents
            .get(document_id)
            .map(|stored| stored.document.clone())
    }

    /// Hands out a presigned URL for a document; returns its signature.
    pub fn presign(
        &mut self,
        document_id: &str,
        content_encoding_gzip: bool,
        now: Instant,
        rng: &mut SplitMix64,
    ) -> (String, Presigned) {
        let signature: String = (0..4).map(|_| format!("{:016x}", rng.next_u64())).collect();
        let presigned = Presigned {
            document_id: document_id.to_string(),
            expires_at: now + self.url_ttl,
            expires_utc: self.clock.utc(now + self.url_ttl),
            ttl: self.url_ttl,
            content_encoding_gzip,
        };
        self.presigned.insert(signature.clone(), presigned.clone());
        (signature, presigned)
    }

    pub fn presigned(&self, signature: &str) -> Option<&Presigned> {
        self.presigned.get(signature)
    }
}

/// Ends a report at `end`: FATAL if doomed, CANCELLED if its window holds no order, else DONE
/// with a document of the orders visible at that moment. Returns the new document.
fn finish(
    record: &mut Record,
    end: Instant,
    orders: Option<&BTreeMap<String, SimOrder>>,
    options: XmlOptions,
    rng: &mut SplitMix64,
) -> Option<(String, Document)> {
    record.finished = Some(end);
    if record.doomed {
        record.status = ReportStatus::Fatal;
        return None;
    }
    let at = record.utc(end);
    let spec = &record.spec;
    let kind = spec.report_type;
    let mut rows: Vec<&SimOrder> = orders
        .into_iter()
        .flat_map(|orders| orders.values())
        .filter_map(|order| order.visible_at(at))
        .filter(|order| {
            let date = kind.date_of(order);
            spec.data_start <= date && date <= spec.data_end
        })
        .collect();
    if rows.is_empty() {
        record.status = ReportStatus::Cancelled;
        return None;
    }
    rows.sort_by(|a, b| (kind.date_of(a), &a.order_id).cmp(&(kind.date_of(b), &b.order_id)));
    match Document::gzip(|out| write_report(out, &rows, options)) {
        Ok(document) => {
            let id = document_id(rng);
            record.status = ReportStatus::Done;
            record.document_id = Some(id.clone());
            record.order_count = rows.len();
            Some((id, document))
        }
        // Writing to memory cannot fail; if it ever did, Amazon's word for it is FATAL.
        Err(_) => {
            record.status = ReportStatus::Fatal;
            None
        }
    }
}
