//! `spapi-sim`: a local simulator of Amazon's Selling Partner API Orders operations (v0 getOrders and
//! getOrderItems, v2026-01-01 searchOrders and getOrder), of the Reports API 2021-06-30 for the XML
//! all-orders reports (createReport, getReport, getReportDocument and the presigned S3 download),
//! and of the Login with Amazon token endpoint.
//!
//! It behaves like Amazon on everything a sync client depends on (auth, per app–seller token
//! buckets, parameter validation, the 2-minute rule, base64 pagination tokens that break when not
//! percent-encoded, Amazon-shaped error bodies and headers, report processing queues, expiring
//! document URLs) and can inject faults. Tests drive it in-process through [`SimHandle`]; the
//! `spapi-sim` binary serves it for demos. Reports are generated from the same orders the Orders
//! routes serve, so a report import and an Orders API sync of one seller can be compared.
//!
//! This crate is deliberately independent of keybuzz-sync: it is a second implementation of the
//! same documents, so client bugs show up as disagreements instead of being shared.
//!
//! Modules:
//! - this one: the public configuration, operation, fault and statistics types;
//! - `handle`: [`SimHandle`], starting the server and the test control surface;
//! - `server`: the router and the Orders handlers; `pipeline`: record → auth → fault → bucket →
//!   operation, Amazon's headers and error bodies; `lwa`: the LWA token endpoint;
//! - `api`: Orders validation, filtering and pagination; `render`: Orders JSON; `token`: page
//!   tokens; `model`: `SimOrder`; `seed`: deterministic orders;
//! - `report`: the Reports API (`queue` lifecycle, `xml` document, `document` gzip, `api`,
//!   `routes`, `s3` download URL);
//! - `huge`: the streamed bodies of `HugeBody` faults;
//! - `state`: the mutable world behind one mutex.

mod api;
mod handle;
mod huge;
mod lwa;
mod model;
mod pipeline;
mod render;
mod report;
mod seed;
mod server;
mod state;
mod token;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use handle::SimHandle;
pub use model::{SimItem, SimOrder, SimStatus};
pub use report::{ReportStatus, SimReport};
pub use seed::{SEED_CURRENCY, SEED_MARKETPLACE};

/// How the simulator is set up. Everything has a default matching Amazon's documented behaviour.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Multiplies Amazon's documented rates (not bursts), so demos need not wait minutes.
    pub rate_scale: f64,
    /// LWA app credentials the sim accepts.
    pub client_id: String,
    pub client_secret: String,
    /// Lifetime of LWA access tokens (Amazon: one hour). Any length works, down to a second or
    /// less; `expires_in` reports it in whole seconds, rounded up.
    pub access_token_ttl: Duration,
    /// v0 getOrderItems page size; small so that ordinary orders already need NextToken paging.
    pub items_page_size: usize,
    /// Page size when maxResultsPerPage / MaxResultsPerPage is absent (Amazon's default is 100).
    pub orders_page_default: usize,
    /// How long a v2026 `paginationToken` stays usable (Amazon: 24 hours); `None` = forever.
    /// Past it, searchOrders answers 400 InvalidInput.
    pub page_token_ttl_v2026: Option<Duration>,
    /// How long a v0 `NextToken` stays usable; `None` (the default) = forever, as Amazon
    /// documents no lifetime.
    pub page_token_ttl_v0: Option<Duration>,
    /// How long a report stays IN_PROGRESS before it ends (Amazon: minutes, no SLA). Default 2 s
    /// so tests stay quick; tests usually set tens of milliseconds. Reports of one seller are
    /// processed one at a time, so the n-th queued report ends after about n times this.
    pub report_generation: Duration,
    /// Lifetime of the document URLs getReportDocument hands out (Amazon: 5 minutes).
    pub report_url_ttl: Duration,
    /// Reports render Unshipped and PartiallyShipped orders as `Shipping` (the MWS-era value).
    pub report_status_shipping: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            rate_scale: 1.0,
            client_id: "sim-client-id".to_string(),
            client_secret: "sim-client-secret".to_string(),
            access_token_ttl: Duration::from_secs(3600),
            items_page_size: 5,
            orders_page_default: 100,
            page_token_ttl_v2026: Some(Duration::from_secs(24 * 3600)),
            page_token_ttl_v0: None,
            report_generation: Duration::from_secs(2),
            report_url_ttl: Duration::from_secs(300),
            report_status_shipping: false,
        }
    }
}

/// The simulated SP-API operations; each has its own usage plan (token bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimOp {
    GetOrdersV0,
    GetOrderItemsV0,
    SearchOrders,
    GetOrder,
    CreateReport,
    GetReport,
    GetReportDocument,
    /// Fetching a report document from its presigned URL (S3): never metered, but faults apply.
    DownloadDocument,
}

impl SimOp {
    /// Requests per second from the current models (FACTS §3.1, reports_2021-06-30.json).
    /// `DownloadDocument` is S3, not SP-API: unmetered (infinite).
    pub fn documented_rate(self) -> f64 {
        match self {
            SimOp::GetOrdersV0 => 0.0167,
            SimOp::GetOrderItemsV0 => 0.5,
            SimOp::SearchOrders => 0.0056,
            SimOp::GetOrder => 0.5,
            SimOp::CreateReport => 0.0167,
            SimOp::GetReport => 2.0,
            SimOp::GetReportDocument => 0.0167,
            SimOp::DownloadDocument => f64::INFINITY,
        }
    }

    /// `DownloadDocument` is unmetered (`u32::MAX`).
    pub fn documented_burst(self) -> u32 {
        match self {
            SimOp::GetOrdersV0 => 20,
            SimOp::GetOrderItemsV0 => 30,
            SimOp::SearchOrders => 20,
            SimOp::GetOrder => 30,
            SimOp::CreateReport | SimOp::GetReport | SimOp::GetReportDocument => 15,
            SimOp::DownloadDocument => u32::MAX,
        }
    }
}

/// What an injected fault does to the request it hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// That HTTP status with an Amazon JSON error body (InternalFailure, ServiceUnavailable, ...).
    Status(u16),
    /// That status with an HTML body, like a load balancer's error page.
    HtmlStatus(u16),
    /// HTTP 200 whose JSON body is cut in half; Content-Length matches the cut body.
    TruncatedBody,
    /// Wait, then answer normally.
    Delay(Duration),
    /// Never answer (sleeps about an hour); the client must time out.
    Hang,
    /// getOrders v0, getOrderItems v0 and searchOrders only (other ops answer normally): the
    /// answer's next-page token is the token the request sent, or, on a first page, a fixed token
    /// that the sim keeps answering with the same first page and the same token forever (even once
    /// the fault is used up). A client that follows tokens blindly loops forever.
    RepeatPageToken,
    /// HTTP 200 whose body is that many bytes of valid JSON (once it is large enough to be JSON
    /// at all) shaped like the operation's answer: a long array of stub orders or items for the
    /// Orders ops, a long `errors` array for the Reports ops and document downloads, padded with
    /// spaces to the exact size. Streamed in 64 KiB pieces so the sim stays small. Sends a
    /// correct Content-Length.
    HugeBody(u64),
    /// As `HugeBody`, but with no Content-Length (chunked transfer encoding): the client only
    /// learns the size by reading.
    HugeBodyChunked(u64),
    /// Document downloads only (SP-API ops answer normally): the first that many bytes of the
    /// document, with its full Content-Length, then nothing more while the connection stays
    /// open, as a transfer that stops mid-way. A client must time out, and a test can stop the
    /// client at a known point of an import.
    StallAfter(u64),
}

/// A fault applying to `times` requests of `op` (`None` = any SP-API op, never LWA), after
/// letting `skip` matching requests through (to fail page 2 after page 1, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub op: Option<SimOp>,
    pub kind: FaultKind,
    pub times: u32,
    pub skip: u32,
}

#[derive(Debug, Clone, Default)]
pub struct SimStats {
    /// Every SP-API request that reached an operation route, whatever its outcome.
    pub requests: HashMap<SimOp, u64>,
    /// Requests answered 429 by the token bucket or by a hidden createReport quota (injected
    /// `Status(429)` faults are not counted).
    pub throttled: HashMap<SimOp, u64>,
    pub lwa_requests: u64,
    /// LWA requests answered with anything but 200.
    pub lwa_failures: u64,
}

#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub op: SimOp,
    pub path: String,
    /// The query string exactly as received (still percent-encoded), "" when absent.
    pub raw_query: String,
    /// Final HTTP status; 0 while the request is still being answered (e.g. a `Hang` fault).
    pub status: u16,
    pub at: DateTime<Utc>,
}
