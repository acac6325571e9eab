//! One pass of one tenant.
//!
//! ```text
//! lock tenant ──► open run ──► restore rate buckets
//!   delta: [resume interrupted window] ──► plan window ──► for each page:
//!            read stored versions ──► fetch items the page needs (v0) ──► commit page + progress
//!          ──► last page commits the cursor ──► items catch-up (budgeted)
//!   items: items catch-up only
//!   backfill: the operator's window, not resumable ──► items catch-up
//! ──► save rate buckets ──► close run (last_success_at / last_error) ──► unlock
//! ```
//! Any error before a page commits leaves that page, and the cursor, as they were.

use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};

use super::{OrdersSource, TenantSource};
use crate::error::{Error, Result};
use crate::model::decide::{OrderPlan, plan_order};
use crate::model::{
    FetchedOrder, ItemsUpdate, OrderWrite, PageProgress, PassKind, PassReport, SyncWindow,
    WriteCounts,
};
use crate::store::PgStore;

struct Pass<'a> {
    store: &'a PgStore,
    source: &'a TenantSource,
    kind: PassKind,
    /// Per-order item calls left in this pass.
    items_budget: AtomicU32,
    counts: WriteCounts,
    window: Option<SyncWindow>,
}

/// Runs one pass. Returns [`Error::AlreadyRunning`] without touching anything when another
/// process holds the tenant's lock.
#[tracing::instrument(skip_all, fields(tenant = %source.tenant.id, api = source.api().as_str(), pass = kind.command()))]
pub async fn run_pass(
    store: &PgStore,
    source: &TenantSource,
    kind: PassKind,
    now: DateTime<Utc>,
) -> Result<PassReport> {
    let lock = store.try_lock_tenant(&source.tenant.id).await?;
    let result = locked_pass(store, source, kind, now).await;
    if let Err(e) = lock.release().await {
        // Closing the lock's connection releases it anyway; the pass result matters more.
        tracing::warn!("releasing the tenant lock failed: {e}");
    }
    result
}

async fn locked_pass(
    store: &PgStore,
    source: &TenantSource,
    kind: PassKind,
    now: DateTime<Utc>,
) -> Result<PassReport> {
    let tenant = &source.tenant.id;
    let run_id = store
        .start_run(tenant, kind.command(), source.api())
        .await?;
    source.restore_buckets(&store.load_buckets(tenant).await?);

    let budget = match kind {
        PassKind::Delta | PassKind::Backfill { .. } => source.settings.items_budget,
        PassKind::Items { limit } => limit,
    };
    let mut pass = Pass {
        store,
        source,
        kind,
        items_budget: AtomicU32::new(budget),
        counts: WriteCounts::default(),
        window: None,
    };
    let outcome = match kind {
        PassKind::Delta => pass.delta(now).await,
        PassKind::Items { .. } => pass.items_catch_up().await,
        PassKind::Backfill { window } => pass.backfill(window).await,
    };

    if let Err(e) = store.save_buckets(tenant, &source.bucket_states()).await {
        tracing::warn!("saving rate buckets failed: {e}");
    }
    let usage = source.usage();
    let items_pending = match store.count_awaiting_items(tenant).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("counting orders awaiting items failed: {e}");
            -1
        }
    };
    let report = PassReport {
        window: pass.window,
        counts: pass.counts,
        items_pending,
        api_calls: usage.calls,
        throttled: usage.throttled,
    };
    let error = outcome.as_ref().err().map(ToString::to_string);
    store
        .finish_run(
            tenant,
            run_id,
            &report,
            error.as_deref(),
            kind.marks_success(),
        )
        .await?;
    outcome?;
    tracing::info!(
        orders = report.counts.orders,
        items = report.counts.items,
        quarantined = report.counts.quarantined,
        items_pending,
        api_calls = report.api_calls,
        throttled = report.throttled,
        "pass finished"
    );
    Ok(report)
}

impl Pass<'_> {
    async fn delta(&mut self, now: DateTime<Utc>) -> Result<()> {
        let tenant = &self.source.tenant.id;
        let state = self.store.sync_state(tenant).await?;
        if let Some(resume) = state.resume {
            let fresh = now - resume.saved_at < self.source.page_token_ttl();
            if resume.api == self.source.api() && fresh {
                tracing::info!(after = %resume.window.after, before = %resume.window.before, "resuming an interrupted window");
                match self.window(resume.window, Some(resume.token)).await {
                    Ok(()) => {}
                    // Amazon refused the saved token (expired, or the rules changed): the cursor
                    // never moved past that window, so starting it again loses nothing.
                    Err(Error::Api { status: 400, .. }) => {
                        tracing::warn!(
                            "the saved page token was refused; restarting the window from the cursor"
                        );
                        self.store.clear_resume(tenant).await?;
                    }
                    Err(e) => return Err(e),
                }
            } else {
                self.store.clear_resume(tenant).await?;
            }
        }

        let cursor = self.store.sync_state(tenant).await?.cursor;
        match SyncWindow::plan(cursor, now, &self.source.settings.window_rules()) {
            Some(window) => self.window(window, None).await?,
            None => {
                tracing::info!("nothing to ask Amazon yet: the cursor is at the 2-minute limit")
            }
        }
        self.items_catch_up().await
    }

    async fn backfill(&mut self, window: SyncWindow) -> Result<()> {
        self.window(window, None).await?;
        self.items_catch_up().await
    }

    /// Every page of one window; the last page's commit moves the cursor.
    async fn window(&mut self, window: SyncWindow, mut token: Option<String>) -> Result<()> {
        self.window = Some(window);
        loop {
            let page = self.source.orders_page(&window, token.as_deref()).await?;
            let progress = PageProgress::after_page(
                window,
                self.kind.resumable(),
                page.next_page_token.as_deref(),
            );
            for r in &page.rejected {
                tracing::warn!(
                    order_id = r.order_id.as_deref().unwrap_or("?"),
                    "order quarantined, not synced: {}",
                    r.error
                );
            }
            let readable: Vec<String> = page
                .orders
                .iter()
                .map(|o| o.order.external_order_id.clone())
                .collect();
            let writes = self.prepare_page(page.orders).await?;
            let written = self
                .store
                .write_page(
                    &self.source.tenant.id,
                    self.source.api(),
                    &readable,
                    &writes,
                    &page.rejected,
                    &progress,
                )
                .await?;
            self.counts += written;
            tracing::debug!(
                orders = writes.len(),
                upserted = written.orders,
                "page committed"
            );
            match page.next_page_token {
                Some(next) => token = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// Decides, per order, whether to write it (see [`plan_order`]); fetches the items that the
    /// API does not return inline for the orders written.
    async fn prepare_page(&self, orders: Vec<FetchedOrder>) -> Result<Vec<OrderWrite>> {
        let ids: Vec<String> = orders
            .iter()
            .map(|o| o.order.external_order_id.clone())
            .collect();
        let stored = self
            .store
            .stored_orders(&self.source.tenant.id, &ids)
            .await?;
        let mut writes = Vec::with_capacity(orders.len());
        for fetched in orders {
            let order = fetched.order;
            match plan_order(&order, stored.get(&order.external_order_id)) {
                OrderPlan::SkipOlder | OrderPlan::SkipUnchanged => continue,
                OrderPlan::WriteWithItems => {}
            }
            let items = match fetched.items {
                Some(inline) => ItemsUpdate::Replace(inline),
                None => self.fetch_items(&order.external_order_id).await?,
            };
            writes.push(OrderWrite { order, items });
        }
        Ok(writes)
    }

    /// One order's items, within the pass's budget. Failures that concern only this order
    /// leave it marked for a later pass; those that concern the tenant end the pass.
    async fn fetch_items(&self, order_id: &str) -> Result<ItemsUpdate> {
        let took = self
            .items_budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if !took {
            return Ok(ItemsUpdate::Pending(
                "deferred: this pass's items budget was spent".to_owned(),
            ));
        }
        match self.source.order_items(order_id).await {
            Ok(items) => Ok(ItemsUpdate::Replace(items)),
            Err(e) if e.is_fatal_for_tenant() => Err(e),
            Err(e) => {
                tracing::warn!(order_id, "items not fetched, left for a later pass: {e}");
                Ok(ItemsUpdate::Pending(e.to_string()))
            }
        }
    }

    /// Orders stored without up-to-date items, as far as the budget goes: never tried first,
    /// then the longest waiting (see [`PgStore::orders_awaiting_items`]).
    async fn items_catch_up(&mut self) -> Result<()> {
        let budget = self.items_budget.load(Ordering::Relaxed);
        if budget == 0 {
            return Ok(());
        }
        let tenant = &self.source.tenant.id;
        let pending = self
            .store
            .orders_awaiting_items(tenant, i64::from(budget))
            .await?;
        for order_id in pending {
            let update = self.fetch_items(&order_id).await?;
            let n = self
                .store
                .write_items(tenant, self.source.api(), &order_id, &update)
                .await?;
            self.counts.items += n;
        }
        Ok(())
    }
}
