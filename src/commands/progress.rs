//! Progress of the running passes, for a person or a log store.
//!
//! On a terminal: a live line per running tenant (pages, orders and items written, items
//! pending, time spent waiting on Amazon, estimated time left), redrawn a few times a second.
//! Off a terminal: one INFO line per running tenant every 30 seconds. Either way the engine's
//! "pass finished" line is the per-tenant summary at the end.
//!
//! The display only reads the [`PassProgress`] each pass publishes after its commits; it never
//! touches the passes themselves.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use keybuzz_sync::model::{PassProgress, ProgressSnapshot, TenantId};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::output::span;

/// How often a log line per running tenant is written off a terminal.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// The bars of the terminal display, when there is one. Logging writes through
/// [`TerminalWriter`], which hides them for the moment a line is written, so lines and bars do
/// not overwrite each other.
static BARS: std::sync::OnceLock<MultiProgress> = std::sync::OnceLock::new();

struct Running {
    tenant: TenantId,
    progress: Arc<PassProgress>,
    started: Instant,
    bar: Option<ProgressBar>,
}

/// The display of one run. A std mutex around the list: the ticker and the scheduler touch it
/// for a few instructions, never across an await.
pub struct ProgressDisplay {
    running: Arc<Mutex<Vec<Running>>>,
    ticker: JoinHandle<()>,
    terminal: bool,
}

impl ProgressDisplay {
    pub fn start() -> Self {
        let terminal = std::io::stderr().is_terminal();
        let running: Arc<Mutex<Vec<Running>>> = Arc::default();
        let list = running.clone();
        let ticker = tokio::spawn(async move {
            let period = if terminal {
                Duration::from_millis(250)
            } else {
                LOG_EVERY
            };
            let mut tick = tokio::time::interval_at(Instant::now() + period, period);
            loop {
                tick.tick().await;
                let list = list.lock().unwrap_or_else(|p| p.into_inner());
                for r in list.iter() {
                    let snapshot = r.progress.snapshot();
                    match &r.bar {
                        Some(bar) => bar.set_message(line(&snapshot, r.started)),
                        None if snapshot.started => log_line(&r.tenant, &snapshot, r.started),
                        None => {}
                    }
                }
            }
        });
        ProgressDisplay {
            running,
            ticker,
            terminal,
        }
    }

    pub fn add(&self, tenant: &TenantId, progress: Arc<PassProgress>) {
        let bar = self.terminal.then(|| {
            let bars =
                BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
            let bar = bars.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:.bold} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(tenant.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Running {
                tenant: tenant.clone(),
                progress,
                started: Instant::now(),
                bar,
            });
    }

    pub fn remove(&self, tenant: &TenantId) {
        let mut list = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = list.iter().position(|r| &r.tenant == tenant) {
            let r = list.remove(i);
            if let (Some(bar), Some(bars)) = (r.bar, BARS.get()) {
                bar.finish_and_clear();
                bars.remove(&bar);
            }
        }
    }

    pub fn clear(&self) {
        let tenants: Vec<TenantId> = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|r| r.tenant.clone())
            .collect();
        for tenant in tenants {
            self.remove(&tenant);
        }
    }
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}

/// The display's durations, in the tables' compact form.
fn minutes(d: Duration) -> String {
    span(chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX))
}

fn line(s: &ProgressSnapshot, started: Instant) -> String {
    let eta = match s.backlog.and_then(|b| b.catch_up_secs) {
        Some(secs) => format!(
            ", about {} left at Amazon's rates",
            minutes(Duration::from_secs(secs.max(0) as u64))
        ),
        None => String::new(),
    };
    format!(
        "{} pages, {} orders, {} items written, {} awaiting items, {} waiting on Amazon, {} so far{eta}",
        s.pages,
        s.orders,
        s.items,
        s.items_deferred,
        minutes(s.waited),
        minutes(started.elapsed()),
    )
}

fn log_line(tenant: &TenantId, s: &ProgressSnapshot, started: Instant) {
    let backlog = s.backlog.unwrap_or_default();
    tracing::info!(
        tenant = %tenant,
        pages = s.pages,
        orders = s.orders,
        items = s.items,
        items_pending = s.items_deferred,
        waited_secs = s.waited.as_secs(),
        elapsed_secs = started.elapsed().as_secs(),
        backlog_orders = backlog.orders,
        catch_up_secs = backlog.catch_up_secs,
        "progress"
    );
}

/// stderr, with the progress bars hidden while a line is written.
pub struct TerminalWriter;

impl std::io::Write for TerminalWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match BARS.get() {
            Some(bars) => bars.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
