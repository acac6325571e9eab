//! One pass of one tenant.
//!
//! ```text
//! lock tenant ──► open run ──► restore rate buckets
//!   delta: [resume interrupted window] ──► plan window ──► for each page:
//!            read stored versions ──► fetch items the page needs (v0) ──► commit page + progress
//!          ──► last page commits the cursor ──► items catch-up (budgeted)
//!   items: items catch-up only
//! ──► save rate buckets ──► close run (last_success_at / last_error) ──► unlock
//! ```
//! Any error before a page commits leaves that page, and the cursor, as they were.

use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};

use super::{FetchedOrder, OrdersSource, SyncWindow};
use crate::config::{SyncSettings, TenantConfig};
use crate::error::{Error, Result};
use crate::store::{ItemsUpdate, OrderWrite, PageProgress, PgStore, RunSummary, WriteCounts};

/// Which pass to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKind {
    /// Orders updated since the cursor, their items, then pending items within the budget.
    Delta,
    /// Only orders whose items are missing or stale, at most `limit` of them.
    Items { limit: u32 },
    /// One explicit window (an operator's backfill), then pending items within the budget.
    /// The cursor only moves if the window ends after it.
    Backfill { window: SyncWindow },
}

impl PassKind {
    /// The subcommand that runs this pass, as recorded in `sync_runs.command`.
    pub fn command(self) -> &'static str {
        match self {
            PassKind::Delta => "delta",
            PassKind::Items { .. } => "items",
            PassKind::Backfill { .. } => "backfill",
        }
    }
}

/// Whose window it is: a delta window is resumable and moves the cursor; a backfill window
/// is neither (an interrupted backfill is simply run again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WindowKind {
    Delta,
    Backfill,
}

/// What a pass did.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    pub window: Option<SyncWindow>,
    pub counts: WriteCounts,
    /// Orders still waiting for items when the pass ended.
    pub items_pending: i64,
    pub api_calls: u64,
    pub throttled: u64,
}

struct Pass<'a, S> {
    store: &'a PgStore,
    source: &'a S,
    tenant: &'a TenantConfig,
    settings: &'a SyncSettings,
    /// Per-order item calls left in this pass.
    items_budget: AtomicU32,
    counts: WriteCounts,
    window: Option<SyncWindow>,
}

/// Runs one pass. Returns [`Error::AlreadyRunning`] without touching anything when another
/// process holds the tenant's lock.
#[tracing::instrument(skip_all, fields(tenant = %tenant.id, api = source.api().as_str(), pass = kind.command()))]
pub async fn run_pass<S: OrdersSource>(
    store: &PgStore,
    source: &S,
    tenant: &TenantConfig,
    settings: &SyncSettings,
    kind: PassKind,
    now: DateTime<Utc>,
) -> Result<PassReport> {
    let lock = store.try_lock_tenant(&tenant.id).await?;
    let result = locked_pass(store, source, tenant, settings, kind, now).await;
    if let Err(e) = lock.release().await {
        // Closing the lock's connection releases it anyway; the pass result matters more.
        tracing::warn!("releasing the tenant lock failed: {e}");
    }
    result
}

async fn locked_pass<S: OrdersSource>(
    store: &PgStore,
    source: &S,
    tenant: &TenantConfig,
    settings: &SyncSettings,
    kind: PassKind,
    now: DateTime<Utc>,
) -> Result<PassReport> {
    let run_id = store
        .start_run(&tenant.id, kind.command(), source.api())
        .await?;
    source
        .client()
        .pacer()
        .restore(&store.load_buckets(&tenant.id).await?);

    let budget = match kind {
        PassKind::Delta | PassKind::Backfill { .. } => settings.items_budget,
        PassKind::Items { limit } => limit,
    };
    let mut pass = Pass {
        store,
        source,
        tenant,
        settings,
        items_budget: AtomicU32::new(budget),
        counts: WriteCounts::default(),
        window: None,
    };
    let outcome = match kind {
        PassKind::Delta => pass.delta(now).await,
        PassKind::Items { .. } => pass.items_catch_up().await,
        PassKind::Backfill { window } => pass.backfill(window).await,
    };

    if let Err(e) = store
        .save_buckets(&tenant.id, &source.client().pacer().snapshot())
        .await
    {
        tracing::warn!("saving rate buckets failed: {e}");
    }
    let counters = source.client().counters();
    let items_pending = store.count_awaiting_items(&tenant.id).await.ok();
    let summary = RunSummary {
        window: pass.window,
        counts: pass.counts,
        items_pending,
        api_calls: counters.calls(),
        throttled: counters.throttled(),
        error: outcome.as_ref().err().map(ToString::to_string),
    };
    store
        .finish_run(&tenant.id, run_id, &summary, kind == PassKind::Delta)
        .await?;
    outcome?;
    tracing::info!(
        orders = summary.counts.orders,
        items = summary.counts.items,
        quarantined = summary.counts.quarantined,
        items_pending = items_pending.unwrap_or(-1),
        api_calls = summary.api_calls,
        throttled = summary.throttled,
        "pass finished"
    );
    Ok(PassReport {
        window: summary.window,
        counts: summary.counts,
        items_pending: items_pending.unwrap_or(0),
        api_calls: summary.api_calls,
        throttled: summary.throttled,
    })
}

impl<S: OrdersSource> Pass<'_, S> {
    async fn delta(&mut self, now: DateTime<Utc>) -> Result<()> {
        let state = self.store.sync_state(&self.tenant.id).await?;
        if let Some(resume) = state.resume {
            let fresh = now - resume.saved_at < self.source.page_token_ttl();
            if resume.api == self.source.api().as_str() && fresh {
                tracing::info!(after = %resume.window.after, before = %resume.window.before, "resuming an interrupted window");
                match self
                    .window(resume.window, Some(resume.token), WindowKind::Delta)
                    .await
                {
                    Ok(()) => {}
                    // Amazon refused the saved token (expired, or the rules changed): the cursor
                    // never moved past that window, so starting it again loses nothing.
                    Err(Error::Api { status: 400, .. }) => {
                        tracing::warn!(
                            "the saved page token was refused; restarting the window from the cursor"
                        );
                        self.store.clear_resume(&self.tenant.id).await?;
                    }
                    Err(e) => return Err(e),
                }
            } else {
                self.store.clear_resume(&self.tenant.id).await?;
            }
        }

        let cursor = self.store.sync_state(&self.tenant.id).await?.cursor;
        match SyncWindow::plan(cursor, now, self.settings) {
            Some(window) => self.window(window, None, WindowKind::Delta).await?,
            None => {
                tracing::info!("nothing to ask Amazon yet: the cursor is at the 2-minute limit")
            }
        }
        self.items_catch_up().await
    }

    async fn backfill(&mut self, window: SyncWindow) -> Result<()> {
        self.window(window, None, WindowKind::Backfill).await?;
        self.items_catch_up().await
    }

    /// Every page of one window; the last page's commit moves the cursor.
    async fn window(
        &mut self,
        window: SyncWindow,
        mut token: Option<String>,
        kind: WindowKind,
    ) -> Result<()> {
        self.window = Some(window);
        loop {
            let page = self.source.orders_page(&window, token.as_deref()).await?;
            let progress = match (kind, &page.next_page_token) {
                (WindowKind::Delta, Some(next)) => PageProgress::Continue {
                    window,
                    token: next.clone(),
                },
                (WindowKind::Delta, None) => PageProgress::WindowDone { window },
                (WindowKind::Backfill, next) => PageProgress::Backfill {
                    window,
                    last_page: next.is_none(),
                },
            };
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
                    &self.tenant.id,
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

    /// Decides, per order, whether to write it and what to do with its items; fetches the
    /// items that the API does not return inline.
    async fn prepare_page(&self, orders: Vec<FetchedOrder>) -> Result<Vec<OrderWrite>> {
        let ids: Vec<String> = orders
            .iter()
            .map(|o| o.order.external_order_id.clone())
            .collect();
        let stored = self.store.stored_orders(&self.tenant.id, &ids).await?;
        let mut writes = Vec::with_capacity(orders.len());
        for fetched in orders {
            let order = fetched.order;
            let (changed, stale) = match stored.get(&order.external_order_id) {
                None => (true, true),
                // An older copy (late page, lagging replica): the stored one wins.
                Some(s) if order.last_update_date < s.last_update_date => continue,
                Some(s) => {
                    let changed = order.last_update_date > s.last_update_date
                        || order.raw != s.raw
                        || order.status.as_str() != s.status;
                    (changed, s.items_stale)
                }
            };
            if !changed && !stale {
                // Already stored exactly so, items included: nothing to write.
                continue;
            }
            let items = match fetched.items {
                Some(inline) if changed || stale => ItemsUpdate::Replace(inline),
                Some(_) => ItemsUpdate::Keep,
                None if changed || stale => self.fetch_items(&order.external_order_id).await?,
                None => ItemsUpdate::Keep,
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

    /// Orders stored without up-to-date items, newest first, as far as the budget goes.
    async fn items_catch_up(&mut self) -> Result<()> {
        let budget = self.items_budget.load(Ordering::Relaxed);
        if budget == 0 {
            return Ok(());
        }
        let pending = self
            .store
            .orders_awaiting_items(&self.tenant.id, i64::from(budget))
            .await?;
        for order_id in pending {
            let update = self.fetch_items(&order_id).await?;
            let n = self
                .store
                .write_items(&self.tenant.id, &order_id, &update)
                .await?;
            self.counts.items += n;
        }
        Ok(())
    }
}
