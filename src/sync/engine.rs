//! One pass of one tenant.
//!
//! ```text
//! lock tenant ──► open run (new fencing token) ──► restore rate buckets
//!   delta: [resume interrupted window] ──► sub-windows until caught up, each page:
//!            read stored versions ──► fetch items the page needs (v0)
//!            ──► commit page + progress + run numbers + buckets (fencing token checked)
//!          ──► a window's last page commits the cursor ──► [sweep, when due] ──► items catch-up
//!   items: items catch-up only
//!   backfill: the operator's window, not resumable ──► items catch-up
//! ──► close run (success / partial / failed) ──► unlock
//! ```
//! Any error before a page commits leaves that page, and the cursor, as they were. A pass whose
//! time budget runs out (the client refuses a request that could not be answered in time) stops
//! there and is `partial`: what it committed stays, with its resume point.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, SubsecRound, Utc};
use tokio::time::Instant;
use tracing::Instrument;

use super::locked::{Ending, ending, under_lock};
use super::{OrdersSource, TenantSource};
use crate::error::{Error, Result};
use crate::model::decide::{OrderPlan, catch_up_secs, orders_left, plan_order};
use crate::model::window::{min_span, narrower_span, wider_span};
use crate::model::{
    Backlog, CounterDeltas, FetchedOrder, ItemsUpdate, OperationCount, OrderWrite, PageProgress,
    PassKind, PassReport, RunOutcome, RunTally, SyncWindow, WriteCounts,
};
use crate::store::PgStore;

/// How a window ended, when it did not fail.
enum WindowEnd {
    Done,
    /// Amazon refused the page token (expired between passes, or mid-pass): the window has to
    /// start again, narrower.
    TokenRefused,
}

struct Pass<'a> {
    store: &'a PgStore,
    source: &'a TenantSource,
    run_id: i64,
    /// Per-order item calls left in this pass.
    items_budget: AtomicU32,
    counts: WriteCounts,
    pages: u64,
    window: Option<SyncWindow>,
    /// The end of the delta range this pass works towards (for backlog estimates).
    range_end: Option<DateTime<Utc>>,
    /// Orders read in the current window by this pass, from when on (the window's start; for
    /// a resumed window, where its first page in this pass began, as the orders before were
    /// read by earlier passes), and the latest update they reached while pages came sorted by
    /// last update (`None` once they did not).
    window_orders: u64,
    window_from: Option<DateTime<Utc>>,
    window_reached: Option<DateTime<Utc>>,
    window_sorted: bool,
    /// What the previous pass estimated was left, the fallback of this pass's estimate.
    previous_backlog: Option<i64>,
    /// Orders per second over the last window this pass completed.
    orders_per_sec: Option<f64>,
    /// Orders written in this pass whose items are still to fetch.
    items_deferred: u64,
    /// What the cumulative counters already hold of this pass.
    recorded_counts: WriteCounts,
    recorded_calls: Vec<OperationCount>,
}

/// Runs one pass. Returns [`Error::AlreadyRunning`] without touching anything when another
/// process holds the tenant's lock. Returns the report for a `success` and for a `partial`
/// pass (its time budget ran out), an error for a failed one.
pub async fn run_pass(
    store: &PgStore,
    source: &TenantSource,
    kind: PassKind,
    now: DateTime<Utc>,
) -> Result<PassReport> {
    // Every log line of the pass carries the tenant and, once the run is open, its id.
    let span = tracing::info_span!(
        "pass",
        tenant = %source.tenant.id,
        run_id = tracing::field::Empty,
        api = source.api().as_str(),
        command = kind.command(),
    );
    under_lock(store, &source.tenant.id, |store| async move {
        locked_pass(&store, source, kind, now).await
    })
    .instrument(span)
    .await
}

async fn locked_pass(
    store: &PgStore,
    source: &TenantSource,
    kind: PassKind,
    now: DateTime<Utc>,
) -> Result<PassReport> {
    let started = Instant::now();
    let tenant = &source.tenant.id;
    let run_id = store
        .start_run(tenant, kind.command(), source.api())
        .await?;
    tracing::Span::current().record("run_id", run_id);
    tracing::info!("pass started");
    source.progress.update(|p| p.started = true);
    source.restore_buckets(&store.load_buckets(tenant).await?);

    let budget = match kind {
        PassKind::Delta | PassKind::Backfill { .. } => source.settings.items_budget,
        PassKind::Items { limit } => limit,
    };
    let mut pass = Pass {
        store,
        source,
        run_id,
        items_budget: AtomicU32::new(budget),
        counts: WriteCounts::default(),
        pages: 0,
        window: None,
        range_end: None,
        window_orders: 0,
        window_from: None,
        window_reached: None,
        window_sorted: true,
        previous_backlog: None,
        orders_per_sec: None,
        items_deferred: 0,
        recorded_counts: WriteCounts::default(),
        recorded_calls: Vec::new(),
    };
    let result = match kind {
        PassKind::Delta => pass.delta(now).await,
        PassKind::Items { .. } => pass.items_catch_up().await,
        PassKind::Backfill { window } => pass.backfill(window).await,
    };
    let Ending {
        result,
        outcome,
        error,
        closing,
    } = ending(store, tenant, result).await;
    let items_pending = match closing.count_awaiting_items(tenant).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("counting orders awaiting items failed: {e}");
            -1
        }
    };
    let mut tally = pass.tally(WriteCounts::default(), 0);
    tally.report.outcome = outcome;
    tally.report.items_pending = items_pending;
    if outcome == RunOutcome::Partial {
        tally.report.backlog = Some(pass.estimate_backlog(items_pending.max(0)));
    }
    closing
        .finish_run(
            tenant,
            kind.command(),
            &tally,
            outcome,
            error.as_deref(),
            kind.marks_success(),
        )
        .await?;
    let report = tally.report;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match &result {
        Ok(()) | Err(Error::OutOfTime { .. }) => {
            let backlog = report.backlog.unwrap_or_default();
            tracing::info!(
                outcome = outcome.as_str(),
                duration_ms = elapsed_ms,
                orders = report.counts.orders,
                items = report.counts.items,
                quarantined = report.counts.quarantined,
                pages = pass.pages,
                items_pending,
                api_calls = report.api_calls,
                throttled = report.throttled,
                backlog_orders = backlog.orders,
                catch_up_secs = backlog.catch_up_secs,
                "pass finished"
            );
            Ok(report)
        }
        Err(e) => {
            tracing::error!(
                outcome = outcome.as_str(),
                duration_ms = elapsed_ms,
                orders = report.counts.orders,
                items = report.counts.items,
                api_calls = report.api_calls,
                throttled = report.throttled,
                "pass finished: {e}"
            );
            result.map(|()| report)
        }
    }
}

impl Pass<'_> {
    async fn delta(&mut self, now: DateTime<Utc>) -> Result<()> {
        let tenant = &self.source.tenant.id;
        let rules = self.source.settings.window_rules();
        let state = self.store.sync_state(tenant).await?;
        self.previous_backlog = state.backlog_orders;
        let mut span = state.window_span;
        self.range_end = Some((now - rules.upper_lag).trunc_subsecs(0));
        if let Some(resume) = state.resume {
            let fresh = now - resume.saved_at < self.source.page_token_ttl();
            if resume.api != self.source.api() {
                self.store.clear_resume(tenant).await?;
            } else if !fresh {
                // The token is too old to use: that window took longer than its token lives.
                tracing::info!("the saved page token is too old; the window restarts, narrower");
                self.store.clear_resume(tenant).await?;
                span = Some(narrower_span(&resume.window, &rules));
                self.store.set_window_span(tenant, span).await?;
            } else {
                tracing::info!(after = %resume.window.after, before = %resume.window.before, "resuming an interrupted window");
                match self.window(resume.window, Some(resume.token), true).await? {
                    WindowEnd::Done => {}
                    // Amazon refused the saved token (expired, or the rules changed): the cursor
                    // never moved past that window, so starting it again loses nothing.
                    WindowEnd::TokenRefused => {
                        tracing::warn!(
                            "the saved page token was refused; restarting the window from the cursor, narrower"
                        );
                        self.store.clear_resume(tenant).await?;
                        span = Some(narrower_span(&resume.window, &rules));
                        self.store.set_window_span(tenant, span).await?;
                    }
                }
            }
        }

        loop {
            let cursor = self.store.sync_state(tenant).await?.cursor;
            let Some(window) = SyncWindow::plan_within(cursor, now, &rules, span) else {
                tracing::info!("nothing to ask Amazon yet: the cursor is at the 2-minute limit");
                break;
            };
            let last =
                SyncWindow::plan(cursor, now, &rules).map(|w| w.before) == Some(window.before);
            match self.window(window, None, true).await? {
                WindowEnd::Done => {
                    if let Some(s) = span {
                        span = wider_span(s, &rules);
                        self.store.set_window_span(tenant, span).await?;
                    }
                    if last {
                        break;
                    }
                }
                WindowEnd::TokenRefused if window.length() <= min_span(&rules) => {
                    return Err(Error::EndlessPages {
                        operation: self.source.orders_operation().name(),
                        detail: format!(
                            "page tokens are refused before the next page of even a {}-minute window can be asked for",
                            window.length().num_minutes()
                        ),
                    });
                }
                WindowEnd::TokenRefused => {
                    span = Some(narrower_span(&window, &rules));
                    tracing::warn!(
                        span_minutes = span.map(|s| s.num_minutes()),
                        "a page token was refused mid-window; trying a narrower sub-window"
                    );
                    self.store.set_window_span(tenant, span).await?;
                }
            }
        }
        self.sweep_if_due(now).await?;
        self.items_catch_up().await
    }

    /// A deeper re-read of the last `sweep_window`, every `sweep_every`: catches updates Amazon
    /// indexed later than the overlap. It moves no cursor and is optional work: a sweep cut
    /// short by the time budget is simply due again at the next pass.
    async fn sweep_if_due(&mut self, now: DateTime<Utc>) -> Result<()> {
        let settings = &self.source.settings;
        let Some(every) = settings.sweep_every else {
            return Ok(());
        };
        let tenant = &self.source.tenant.id;
        let state = self.store.sync_state(tenant).await?;
        let (Some(cursor), false) = (
            state.cursor,
            state.last_sweep_at.is_some_and(|t| now - t < every),
        ) else {
            return Ok(());
        };
        let window = SyncWindow {
            after: (now - settings.sweep_window).trunc_subsecs(0),
            before: cursor.min((now - settings.upper_lag).trunc_subsecs(0)),
        };
        if window.after >= window.before {
            return Ok(());
        }
        tracing::info!(after = %window.after, before = %window.before, "sweep: re-reading for late-indexed updates");
        match self.window(window, None, false).await {
            Ok(WindowEnd::Done) => self.store.mark_swept(tenant, now).await,
            Ok(WindowEnd::TokenRefused) => {
                tracing::warn!("sweep: a page token was refused; the next pass sweeps again");
                Ok(())
            }
            Err(Error::OutOfTime { .. }) => {
                tracing::info!("sweep: the run's time budget ran out; the next pass sweeps again");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn backfill(&mut self, window: SyncWindow) -> Result<()> {
        self.range_end = Some(window.before);
        match self.window(window, None, false).await? {
            WindowEnd::Done => self.items_catch_up().await,
            WindowEnd::TokenRefused => Err(Error::Api {
                operation: self.source.orders_operation().name(),
                status: 400,
                code: "InvalidInput".to_owned(),
                message: "a page token was refused mid-backfill; run the backfill again (what was stored stays)".to_owned(),
            }),
        }
    }

    /// Every page of one window. With `resumable`, each commit saves the next page token, and
    /// the last page's commit moves the cursor; otherwise (backfill, sweep) see
    /// [`PageProgress::Backfill`].
    async fn window(
        &mut self,
        window: SyncWindow,
        mut token: Option<String>,
        resumable: bool,
    ) -> Result<WindowEnd> {
        self.window = Some(window);
        self.window_orders = 0;
        self.window_from = token.is_none().then_some(window.after);
        self.window_reached = None;
        self.window_sorted = true;
        let op = self.source.orders_operation().name();
        let max_pages = self.source.settings.max_window_pages;
        let mut seen: HashSet<String> = token.iter().cloned().collect();
        let mut pages = 0u32;
        loop {
            let page = match self.source.orders_page(&window, token.as_deref()).await {
                Ok(page) => page,
                Err(Error::Api { status: 400, .. }) if token.is_some() => {
                    return Ok(WindowEnd::TokenRefused);
                }
                Err(e) => return Err(e),
            };
            pages += 1;
            if let Some(next) = &page.next_page_token {
                if !seen.insert(next.clone()) {
                    return Err(Error::EndlessPages {
                        operation: op,
                        detail: format!(
                            "page {pages} of the window {} .. {} returned a page token already used",
                            window.after, window.before
                        ),
                    });
                }
                if pages >= max_pages {
                    return Err(Error::EndlessPages {
                        operation: op,
                        detail: format!(
                            "the window {} .. {} needed more than {max_pages} pages",
                            window.after, window.before
                        ),
                    });
                }
            }
            let progress =
                PageProgress::after_page(window, resumable, page.next_page_token.as_deref());
            for r in &page.rejected {
                tracing::warn!(
                    order_id = r.order_id.as_deref().unwrap_or("?"),
                    "order quarantined, not synced: {}",
                    r.error
                );
            }
            self.note_progress(&page.orders);
            let readable: Vec<String> = page
                .orders
                .iter()
                .map(|o| o.order.external_order_id.clone())
                .collect();
            let (writes, out_of_time) = self.prepare_page(page.orders).await?;
            let tally = |counts: WriteCounts| self.tally(counts, 1);
            let written = self
                .store
                .write_page(
                    &self.source.tenant.id,
                    self.source.api(),
                    &readable,
                    &writes,
                    &page.rejected,
                    &progress,
                    Some(&tally),
                )
                .await?;
            self.counts += written;
            self.pages += 1;
            self.items_deferred += writes
                .iter()
                .filter(|w| matches!(w.items, ItemsUpdate::Pending(_)))
                .count() as u64;
            self.mark_recorded();
            tracing::debug!(
                orders = writes.len(),
                upserted = written.orders,
                "page committed"
            );
            if let Some(e) = out_of_time {
                return Err(e);
            }
            match page.next_page_token {
                Some(next) => token = Some(next),
                None => {
                    // The tenant's order rate over what this pass read of the window, for
                    // estimating a next window it may not get to read.
                    let from = self.window_from.unwrap_or(window.after);
                    let secs = (window.before - from).num_seconds().max(1) as f64;
                    self.orders_per_sec = Some(self.window_orders as f64 / secs);
                    return Ok(WindowEnd::Done);
                }
            }
        }
    }

    /// Tracks how far into the window the pages reached, while they come sorted by last update.
    fn note_progress(&mut self, orders: &[FetchedOrder]) {
        self.window_orders += orders.len() as u64;
        let (Some(min), Some(max)) = (
            orders.iter().map(|o| o.order.last_update_date).min(),
            orders.iter().map(|o| o.order.last_update_date).max(),
        ) else {
            return;
        };
        self.window_from.get_or_insert(min);
        if self.window_reached.is_some_and(|reached| min < reached) {
            self.window_sorted = false;
        }
        self.window_reached = Some(self.window_reached.map_or(max, |r| r.max(max)));
    }

    /// Decides, per order, whether to write it (see [`plan_order`]); fetches the items that the
    /// API does not return inline for the orders written. When the time budget runs out while
    /// fetching items, the remaining orders keep their items pending and the page is still
    /// committed; the budget's error is returned beside the writes.
    async fn prepare_page(
        &self,
        orders: Vec<FetchedOrder>,
    ) -> Result<(Vec<OrderWrite>, Option<Error>)> {
        let ids: Vec<String> = orders
            .iter()
            .map(|o| o.order.external_order_id.clone())
            .collect();
        let stored = self
            .store
            .stored_orders(&self.source.tenant.id, &ids)
            .await?;
        let mut writes = Vec::with_capacity(orders.len());
        let mut out_of_time = None;
        for fetched in orders {
            let order = fetched.order;
            match plan_order(&order, stored.get(&order.external_order_id)) {
                OrderPlan::SkipOlder | OrderPlan::SkipUnchanged => continue,
                OrderPlan::WriteWithItems => {}
            }
            let items = match (fetched.items, &out_of_time) {
                (Some(inline), _) => ItemsUpdate::Replace(inline),
                (None, Some(_)) => {
                    ItemsUpdate::Pending("deferred: the run's time budget ran out".to_owned())
                }
                (None, None) => match self.fetch_items(&order.external_order_id).await {
                    Err(e @ Error::OutOfTime { .. }) => {
                        out_of_time = Some(e);
                        ItemsUpdate::Pending("deferred: the run's time budget ran out".to_owned())
                    }
                    other => other?,
                },
            };
            writes.push(OrderWrite { order, items });
        }
        Ok((writes, out_of_time))
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
            let tally = |items: u64| {
                self.tally(
                    WriteCounts {
                        items,
                        ..WriteCounts::default()
                    },
                    0,
                )
            };
            let n = self
                .store
                .write_items(tenant, self.source.api(), &order_id, &update, Some(&tally))
                .await?;
            self.counts.items += n;
            self.mark_recorded();
        }
        Ok(())
    }

    /// The run's numbers as a commit that adds `extra` rows and `pages` pages records them.
    fn tally(&self, extra: WriteCounts, pages: u64) -> RunTally {
        let usage = self.source.usage();
        let mut counts = self.counts;
        counts += extra;
        let recorded: HashMap<&str, (u64, u64)> = self
            .recorded_calls
            .iter()
            .map(|c| (c.operation, (c.calls, c.throttled)))
            .collect();
        let calls = usage
            .by_operation
            .iter()
            .map(|c| {
                let (calls, throttled) = recorded.get(c.operation).copied().unwrap_or_default();
                OperationCount {
                    operation: c.operation,
                    calls: c.calls.saturating_sub(calls),
                    throttled: c.throttled.saturating_sub(throttled),
                }
            })
            .collect();
        RunTally {
            run_id: self.run_id,
            report: PassReport {
                window: self.window,
                counts,
                api_calls: usage.calls,
                throttled: usage.throttled,
                ..PassReport::default()
            },
            pages: self.pages + pages,
            unrecorded: CounterDeltas {
                orders: counts.orders.saturating_sub(self.recorded_counts.orders),
                items: counts.items.saturating_sub(self.recorded_counts.items),
                calls,
            },
            buckets: self.source.bucket_states(),
        }
    }

    /// After a commit: its numbers are in the counters, and on the progress display.
    fn mark_recorded(&mut self) {
        let usage = self.source.usage();
        self.recorded_counts = self.counts;
        self.recorded_calls = usage.by_operation;
        let backlog = self.estimate_backlog(self.items_deferred as i64);
        self.source.progress.update(|p| {
            p.started = true;
            p.pages = self.pages;
            p.orders = self.counts.orders;
            p.items = self.counts.items;
            p.items_deferred = self.items_deferred;
            p.waited = usage.waited;
            p.backlog = Some(backlog);
        });
    }

    /// What is left when the time budget ended the pass: orders still to fetch (estimated from
    /// how far into the range the sorted pages reached), orders awaiting items, and how long
    /// that takes at the rates of the tenant's buckets.
    fn estimate_backlog(&self, awaiting_items: i64) -> Backlog {
        let orders = match (self.window_from, self.window_reached, self.range_end) {
            (Some(from), Some(reached), Some(end)) if self.window_sorted => orders_left(
                self.window_orders,
                from.timestamp(),
                reached.timestamp(),
                end.timestamp(),
            ),
            // No page of the current window read: from the order rate of a window this pass
            // completed; with none, what the previous pass estimated still stands.
            _ => match (self.orders_per_sec, self.window, self.range_end) {
                (Some(rate), Some(window), Some(end)) => {
                    Some((rate * (end - window.after).num_seconds().max(0) as f64).round() as i64)
                }
                _ => self.previous_backlog,
            },
        };
        let buckets = self.source.bucket_states();
        let bucket = |name: &str| buckets.iter().find(|b| b.operation == name);
        let secs_for = |name: &str, requests: f64| match bucket(name) {
            Some(b) => catch_up_secs(requests, b.tokens, b.rate),
            None => {
                let op = crate::spapi::Operation::from_name(name)?;
                catch_up_secs(requests, op.documented_burst(), op.documented_rate())
            }
        };
        let page_size = f64::from(self.source.settings.page_size.max(1));
        let pages_secs = orders
            .map(|n| (n as f64 / page_size).ceil())
            .and_then(|pages| secs_for(self.source.orders_operation().name(), pages));
        // Items come inline on v2026; on v0 every new order, and every order awaiting items,
        // costs an item call.
        let item_calls = awaiting_items as f64
            + if self.source.items_inline() {
                0.0
            } else {
                orders.unwrap_or(0) as f64
            };
        let items_secs = secs_for(self.source.items_operation().name(), item_calls);
        let catch_up_secs = match (pages_secs, items_secs) {
            (Some(p), Some(i)) => Some(p + i),
            (p, i) => p.or(i).filter(|_| orders.is_some() || awaiting_items > 0),
        };
        Backlog {
            orders,
            awaiting_items,
            catch_up_secs,
        }
    }
}
