//! `SimHandle`: starting the server and the control surface tests use to arrange the world
//! (grants, orders, usage plans, faults, report processing) and to observe what the client did
//! (stats, request log, reports and their documents).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::seed::generate_orders;
use crate::server::router;
use crate::state::Shared;
use crate::{Fault, RecordedRequest, SimConfig, SimOp, SimOrder, SimReport, SimStats};

/// A running simulator. Cheap to clone; every clone controls the same server.
#[derive(Clone)]
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

impl SimHandle {
    /// Binds 127.0.0.1 on a free port and serves on the current tokio runtime.
    pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
        SimHandle::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimHandle> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, format!("http://{addr}")));
        let app = router(shared.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "spapi-sim server stopped");
            }
        });
        Ok(SimHandle { shared, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The SP-API endpoint, e.g. "http://127.0.0.1:8700".
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn lwa_token_url(&self) -> String {
        format!("{}/auth/o2/token", self.base_url())
    }

    /// Authorises a refresh token for a seller. Several tokens may map to one seller.
    pub fn grant(&self, refresh_token: &str, seller_id: &str) {
        self.shared
            .lock()
            .grants
            .insert(refresh_token.to_string(), seller_id.to_string());
    }

    /// LWA answers invalid_grant for this refresh token from now on. Access tokens already issued
    /// for it stay valid until they expire.
    pub fn revoke(&self, refresh_token: &str) {
        self.shared.lock().grants.remove(refresh_token);
    }

    /// Every access token issued so far is expired from now on (SP-API answers 403 expired).
    pub fn expire_access_tokens(&self) {
        self.shared.lock().expire_access_tokens();
    }

    /// Inserts or replaces (by order id) one of the seller's orders.
    pub fn upsert_order(&self, seller_id: &str, order: SimOrder) {
        self.shared.lock().upsert_order(seller_id, order);
    }

    /// Late indexing: stores `order` so that searches (getOrders, searchOrders, reports) only see
    /// it once `index_delay` of wall-clock time has passed; until then they see the version stored
    /// before this call (or nothing, for a new order). getOrder and getOrderItems see `order` at
    /// once. Sets `order.indexed_at` and `order.previous`; see [`SimOrder::indexed_at`].
    pub fn upsert_order_indexed_late(
        &self,
        seller_id: &str,
        mut order: SimOrder,
        index_delay: std::time::Duration,
    ) {
        let mut state = self.shared.lock();
        let previous = state
            .orders
            .get(seller_id)
            .and_then(|orders| orders.get(&order.order_id))
            .cloned();
        order.indexed_at = Some(
            Utc::now() + chrono::Duration::from_std(index_delay).unwrap_or(chrono::Duration::MAX),
        );
        order.previous = previous.map(Box::new);
        state.upsert_order(seller_id, order);
    }

    /// The seller's orders, by order id.
    pub fn orders(&self, seller_id: &str) -> Vec<SimOrder> {
        self.shared
            .lock()
            .orders
            .get(seller_id)
            .map(|orders| orders.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Deterministically generates `count` orders (marketplace `SEED_MARKETPLACE`, EUR) with
    /// purchase dates in `[now − spread, now]`, inserts them and returns them.
    pub fn seed_orders(
        &self,
        seller_id: &str,
        count: usize,
        seed: u64,
        now: DateTime<Utc>,
        spread: chrono::Duration,
    ) -> Vec<SimOrder> {
        let generated = generate_orders(count, seed, now, spread);
        for order in &generated {
            self.upsert_order(seller_id, order.clone());
        }
        generated
    }

    /// Overrides one operation's usage plan (rate used as given, not scaled; the
    /// x-amzn-RateLimit-Limit header reports it). Existing buckets for the op restart full.
    pub fn set_bucket(&self, op: SimOp, rate_per_sec: f64, burst: u32) {
        self.shared.lock().set_bucket(op, rate_per_sec, burst);
    }

    pub fn push_fault(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// The next `times` LWA token requests answer 500 `server_error`, whatever they carry.
    pub fn fail_lwa(&self, times: u32) {
        self.shared.lock().lwa_outages = times;
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    pub fn stats(&self) -> SimStats {
        self.shared.lock().stats.clone()
    }

    /// Every SP-API request (and document download), in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Generation time (see [`SimConfig::report_generation`]) of every report not finished yet.
    /// One already IN_PROGRESS ends at the later of its start + `generation` and now, so a test
    /// can hold reports IN_PROGRESS with a long delay, look, then let them finish.
    pub fn set_report_generation(&self, generation: Duration) {
        let mut state = self.shared.lock();
        state.advance_reports();
        state
            .reports
            .set_generation(generation, std::time::Instant::now());
    }

    /// The next `count` reports created (by any seller) end FATAL, with no document, once their
    /// generation time has passed. Replaces any count still pending; 0 cancels it.
    pub fn fail_reports(&self, count: u32) {
        self.shared.lock().reports.fail_next(count);
    }

    /// A stuck queue: while `true`, no report of any seller leaves IN_QUEUE (those already
    /// IN_PROGRESS finish). `false` releases the queues; waiting reports then start one after
    /// another per seller, the first at once.
    pub fn stall_reports(&self, stalled: bool) {
        let mut state = self.shared.lock();
        state.advance_reports();
        state
            .reports
            .set_stalled(stalled, std::time::Instant::now());
    }

    /// A hidden per-report-type createReport quota (selling-partner-api-docs #2998): each report
    /// of that type created from now on uses one; at 0, createReport answers 429 QuotaExceeded
    /// even with usage-plan tokens left. Applies to every seller; `u32::MAX` is as good as none.
    pub fn set_report_type_quota(&self, report_type: &str, remaining: u32) {
        self.shared
            .lock()
            .reports
            .set_type_quota(report_type, remaining);
    }

    /// The seller's reports in creation order, with their status as of now.
    pub fn reports(&self, seller_id: &str) -> Vec<SimReport> {
        let mut state = self.shared.lock();
        state.advance_reports();
        state.reports.list(seller_id)
    }

    /// A report document's XML, uncompressed, for assertions; `None` for an unknown id.
    pub fn report_document_xml(&self, report_document_id: &str) -> Option<String> {
        let document = self.shared.lock().reports.document(report_document_id)?;
        // Decompressed outside the lock.
        document.text()
    }

    /// Lifetime of document URLs handed out from now on (see [`SimConfig::report_url_ttl`]).
    pub fn set_report_url_ttl(&self, ttl: Duration) {
        self.shared.lock().reports.url_ttl = ttl;
    }

    /// Whether reports generated from now on say `Shipping` for Unshipped and PartiallyShipped
    /// orders (see [`SimConfig::report_status_shipping`]).
    pub fn set_report_status_shipping(&self, shipping: bool) {
        let mut state = self.shared.lock();
        state.advance_reports();
        state.reports.status_shipping = shipping;
    }
}
