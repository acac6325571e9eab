//! `keybuzz-sync history --tenant ID [--limit N] [--json]`: the tenant's recent runs, newest
//! first. Reads the database only; needs no Amazon credentials.
//!
//! Owns the output shapes: a compact table for a person (errors cut to one line), a JSON array
//! (camelCase keys, `toISOString()` times, errors whole) for a program.

use chrono::{DateTime, Utc};
use keybuzz_sync::model::Secret;
use keybuzz_sync::store::HistoryRun;
use keybuzz_sync::{Error, Result};
use serde::Serialize;

use super::ExitStatus;
use super::output::{Align, Table, js_time, one_line, print, run_duration, short_time};
use super::tenants::{Selection, resolve};
use crate::cli::HistoryArgs;

pub async fn run(database_url: Option<&Secret>, args: &HistoryArgs) -> Result<ExitStatus> {
    let store = super::connect(database_url, 2).await?;
    store.check_schema().await?;
    // An unknown id (a typo) exits 5 rather than showing an empty history.
    resolve(
        &store,
        &args.dir.tenants_dir,
        Selection::Named(std::slice::from_ref(&args.tenant)),
    )
    .await?;
    let runs = store.history(&args.tenant, args.limit).await?;
    let text = if args.json {
        let json: Vec<RunJson> = runs.iter().map(RunJson::from).collect();
        serde_json::to_string(&json)
            .map_err(|e| Error::Internal(format!("cannot encode history: {e}")))?
    } else if runs.is_empty() {
        format!(
            "no runs recorded for tenant {} (runs older than the retention, --keep-runs-days, are deleted)",
            args.tenant
        )
    } else {
        table(&runs, Utc::now())
    };
    print(&text);
    Ok(ExitStatus::Success)
}

/// One run in `history --json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunJson {
    run_id: i64,
    command: String,
    orders_api: String,
    started_at: String,
    finished_at: Option<String>,
    /// Finished minus started, to the millisecond; `null` while the run is open.
    duration_seconds: Option<f64>,
    outcome: &'static str,
    window_after: Option<String>,
    window_before: Option<String>,
    orders_upserted: i32,
    orders_quarantined: i32,
    items_upserted: i32,
    items_pending: Option<i32>,
    api_calls: i32,
    throttled: i32,
    pages: i32,
    backlog_orders: Option<i32>,
    catch_up_seconds: Option<i32>,
    error: Option<String>,
}

impl From<&HistoryRun> for RunJson {
    fn from(r: &HistoryRun) -> Self {
        RunJson {
            run_id: r.id,
            command: r.command.clone(),
            orders_api: r.orders_api.clone(),
            started_at: js_time(r.started_at),
            finished_at: r.finished_at.map(js_time),
            duration_seconds: r
                .finished_at
                .map(|f| (f - r.started_at).num_milliseconds().max(0) as f64 / 1000.0),
            outcome: r.outcome.as_str(),
            window_after: r.window_after.map(js_time),
            window_before: r.window_before.map(js_time),
            orders_upserted: r.orders_upserted,
            orders_quarantined: r.orders_quarantined,
            items_upserted: r.items_upserted,
            items_pending: r.items_pending,
            api_calls: r.api_calls,
            throttled: r.throttled,
            pages: r.pages,
            backlog_orders: r.backlog_orders,
            catch_up_seconds: r.catch_up_secs,
            error: r.error.clone(),
        }
    }
}

fn table(runs: &[HistoryRun], now: DateTime<Utc>) -> String {
    let mut table = Table::new(&[
        ("STARTED (UTC)", Align::Left),
        ("COMMAND", Align::Left),
        ("API", Align::Left),
        ("DURATION", Align::Right),
        ("OUTCOME", Align::Left),
        ("ORDERS", Align::Right),
        ("ITEMS", Align::Right),
        ("CALLS", Align::Right),
        ("429", Align::Right),
        ("PAGES", Align::Right),
        ("ERROR", Align::Left),
    ]);
    for r in runs {
        table.row(vec![
            short_time(r.started_at),
            r.command.clone(),
            r.orders_api.clone(),
            match r.finished_at {
                Some(f) => run_duration(f - r.started_at),
                // Open: how long so far.
                None => format!("{}+", run_duration(now - r.started_at)),
            },
            r.outcome.to_string(),
            r.orders_upserted.to_string(),
            r.items_upserted.to_string(),
            r.api_calls.to_string(),
            r.throttled.to_string(),
            r.pages.to_string(),
            r.error
                .as_deref()
                .map(|e| one_line(e, 100))
                .unwrap_or_default(),
        ]);
    }
    table.render()
}
