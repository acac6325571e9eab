//! Imports through Amazon's Reports API: the report types used, what one report order carries
//! ([`ReportOrder`]), and a tenant's report jobs ([`ReportJob`], one per report window).
//!
//! A report order is normalized into the same [`OrderRecord`] and [`ItemRecord`] as the Orders
//! API's, keyed the same way (`AmazonOrderItemCode` is the Orders API's item id), with two
//! differences that the store's merge rules need: a report item keeps the amounts exactly as
//! reported (absent = `None`, so that a missing value never overwrites a stored one), and items
//! listed without an item code are [`StagedItem`]s, never order items.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use super::order::{ItemRecord, OrderRecord};
use super::window::SyncWindow;

/// The two XML all-orders reports. Flat-file reports are not used: their rows carry no order
/// item id, and `(order, sku)` is not unique in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportType {
    /// Orders whose last update falls in the window: the import's default.
    ByLastUpdate,
    /// Orders purchased in the window (`--by-order-date`).
    ByOrderDate,
}

impl ReportType {
    pub const ALL: [ReportType; 2] = [ReportType::ByLastUpdate, ReportType::ByOrderDate];

    /// Amazon's report type name.
    pub fn name(self) -> &'static str {
        match self {
            ReportType::ByLastUpdate => "GET_XML_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL",
            ReportType::ByOrderDate => "GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// How a tenant's first sync reads its history (tenant file key `initialImport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum InitialImport {
    /// Through the Orders API, like every later pass.
    #[default]
    OrdersApi,
    /// Through reports, 30 days per report; the Orders API covers the last hour.
    Reports,
}

/// The provenance a report writes into `source_api`: `report:<reportType>:<reportId>`.
pub fn report_source(report_type: &str, report_id: &str) -> String {
    format!("report:{report_type}:{report_id}")
}

/// One item of a report order, with an item code.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportItem {
    /// Amounts as reported: `None` where the report had no such component.
    pub item: ItemRecord,
    /// Whether the report priced the item (an `ItemPrice` element); Amazon prices nothing while
    /// an order is pending.
    pub priced: bool,
}

impl ReportItem {
    /// The row for an item not stored yet: on a priced item, an absent tax, shipping or
    /// promotion component is 0 (as the Orders API serves `"0.00"`); the price stays unknown.
    pub fn new_row(&self) -> ItemRecord {
        let mut row = self.item.clone();
        if self.priced {
            for amount in [
                &mut row.item_tax_amount,
                &mut row.shipping_price_amount,
                &mut row.promotion_discount_amount,
            ] {
                amount.get_or_insert(Decimal::ZERO);
            }
        }
        row
    }
}

/// An item a report listed without an `AmazonOrderItemCode` (Pending orders): it cannot be an
/// order item (their key is the item id) and is kept aside until the Orders API supplies ids.
#[derive(Debug, Clone, PartialEq)]
pub struct StagedItem {
    /// Its place among the order's `<OrderItem>`s, from 1: the only key it has.
    pub position: i32,
    pub asin: Option<String>,
    pub seller_sku: Option<String>,
    pub title: Option<String>,
    pub quantity_ordered: i32,
    pub item_status: Option<String>,
    pub raw: Value,
}

/// One `<Order>` of a report, normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOrder {
    /// `order_total_*` are always `None` (the report has no order total); `marketplace_id` is
    /// `None` when the sales channel names no marketplace this build knows.
    pub order: OrderRecord,
    pub items: Vec<ReportItem>,
    pub staged: Vec<StagedItem>,
}

impl ReportOrder {
    /// Whether the report gave every item with its id: only then are the order's items up to
    /// date without asking the Orders API.
    pub fn items_complete(&self) -> bool {
        !self.items.is_empty() && self.staged.is_empty()
    }
}

/// What became of one `<Order>` of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportEntry {
    Order(ReportOrder),
    /// Sold through a marketplace the tenant does not sync (reports cover the whole region).
    OtherMarketplace {
        order_id: String,
        channel: String,
    },
    /// Could not be read (a missing id or date, an unknown status, a malformed amount): kept
    /// as sent, with the reason, in `order_quarantine`.
    Unreadable {
        order_id: Option<String>,
        raw: Value,
        error: String,
    },
}

/// Who asked for a report job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobPurpose {
    /// `backfill --via reports`.
    Backfill,
    /// A tenant's first sync, with `"initialImport": "reports"` in its tenant file.
    Initial,
}

impl JobPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            JobPurpose::Backfill => "backfill",
            JobPurpose::Initial => "initial",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "backfill" => Some(JobPurpose::Backfill),
            "initial" => Some(JobPurpose::Initial),
            _ => None,
        }
    }
}

/// Where a report job stands (`report_jobs.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// To request: no report yet, or the last one failed or got stuck.
    Queued,
    /// Amazon is generating `report_id`.
    Requested,
    /// Amazon finished it: its document is to be imported (or the import broke off and resumes).
    Ready,
    /// Imported: terminal.
    Imported,
    /// Amazon cancelled the report, its answer for a window without data: terminal, no error.
    Empty,
    /// Given up after too many failures (FATAL, stuck, imports that broke off): terminal.
    Failed,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Queued,
        JobStatus::Requested,
        JobStatus::Ready,
        JobStatus::Imported,
        JobStatus::Empty,
        JobStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Requested => "requested",
            JobStatus::Ready => "ready",
            JobStatus::Imported => "imported",
            JobStatus::Empty => "empty",
            JobStatus::Failed => "failed",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Imported | JobStatus::Empty | JobStatus::Failed
        )
    }
}

/// Rows a report import wrote or set aside (one batch, or a job's total).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Orders the report wrote (new, or newer than the stored copy).
    pub orders_imported: u64,
    /// Orders whose stored copy was newer, or an Orders API copy of the same update.
    pub orders_skipped: u64,
    /// Orders of marketplaces the tenant does not sync.
    pub orders_foreign: u64,
    pub orders_quarantined: u64,
    pub items_imported: u64,
    pub items_staged: u64,
    /// Stored orders whose item ids differ from the report's (logged, nothing deleted).
    pub item_id_changes: u64,
}

impl std::ops::AddAssign for ImportCounts {
    fn add_assign(&mut self, o: Self) {
        self.orders_imported += o.orders_imported;
        self.orders_skipped += o.orders_skipped;
        self.orders_foreign += o.orders_foreign;
        self.orders_quarantined += o.orders_quarantined;
        self.items_imported += o.items_imported;
        self.items_staged += o.items_staged;
        self.item_id_changes += o.item_id_changes;
    }
}

/// One report window of a tenant, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportJob {
    pub id: i64,
    pub purpose: JobPurpose,
    pub report_type: ReportType,
    pub window: SyncWindow,
    pub status: JobStatus,
    pub report_id: Option<String>,
    /// Amazon's last `processingStatus` for `report_id`.
    pub processing_status: Option<String>,
    pub document_id: Option<String>,
    /// createReport calls accepted for this window.
    pub requests: i32,
    /// FATAL answers, stuck reports, imports that broke off.
    pub failures: i32,
    pub requested_at: Option<DateTime<Utc>>,
    /// Messages of the current document already committed.
    pub messages_done: i64,
    pub counts: ImportCounts,
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_round_trip() {
        for t in ReportType::ALL {
            assert_eq!(ReportType::from_name(t.name()), Some(t));
        }
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::from_name(s.as_str()), Some(s));
        }
        for p in [JobPurpose::Backfill, JobPurpose::Initial] {
            assert_eq!(JobPurpose::from_name(p.as_str()), Some(p));
        }
        assert_eq!(
            ReportType::from_name("GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"),
            None
        );
        assert_eq!(
            report_source(ReportType::ByOrderDate.name(), "5012"),
            "report:GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL:5012"
        );
    }

    #[test]
    fn a_new_row_fills_absent_components_of_a_priced_item_only() {
        let item = ItemRecord {
            order_item_id: "1".into(),
            asin: None,
            seller_sku: None,
            title: None,
            quantity_ordered: 1,
            quantity_shipped: None,
            item_price_amount: Some(Decimal::new(1000, 2)),
            item_tax_amount: None,
            shipping_price_amount: None,
            promotion_discount_amount: Some(Decimal::new(200, 2)),
            currency: Some("EUR".into()),
            raw: json!({}),
        };
        let priced = ReportItem {
            item: item.clone(),
            priced: true,
        }
        .new_row();
        assert_eq!(priced.item_tax_amount, Some(Decimal::ZERO));
        assert_eq!(priced.shipping_price_amount, Some(Decimal::ZERO));
        assert_eq!(priced.promotion_discount_amount, Some(Decimal::new(200, 2)));
        let unpriced = ReportItem {
            item: ItemRecord {
                item_price_amount: None,
                ..item
            },
            priced: false,
        }
        .new_row();
        assert_eq!(unpriced.item_tax_amount, None);
        assert_eq!(unpriced.item_price_amount, None);
    }
}
