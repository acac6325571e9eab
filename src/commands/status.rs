//! `keybuzz-sync status (--tenant ID ... | --all-tenants) [--json]`: reads the database (and
//! which tenant files exist) only; needs no Amazon credentials and prints none.
//!
//! Owns the output shapes: the old backend's JSON (times in JavaScript's `toISOString()` form),
//! one object for a single `--tenant` and an array otherwise; for a person, a detailed summary of
//! a single tenant, or a table of several.

use chrono::{DateTime, Utc};
use keybuzz_sync::model::{MARKETPLACE, Secret};
use keybuzz_sync::store::TenantStatus;
use keybuzz_sync::{Error, Result};
use serde::Serialize;

use super::ExitStatus;
use super::output::{Align, Table, js_time, one_line, print, short_time, span};
use super::tenants::{KnownTenant, Selection, resolve};
use crate::cli::StatusArgs;

pub async fn run(database_url: Option<&Secret>, args: &StatusArgs) -> Result<ExitStatus> {
    let store = super::connect(database_url, 2).await?;
    store.check_schema().await?;
    let dir = &args.dir.tenants_dir;
    let selection = match args.selection.all_tenants {
        true => Selection::All,
        false => Selection::Named(&args.selection.tenants),
    };
    let tenants = resolve(&store, dir, selection).await?;
    if tenants.is_empty() {
        return Err(Error::Config(format!(
            "no tenant files (*.json) in {} and no tenant in the database",
            dir.display()
        )));
    }
    let mut shown = Vec::with_capacity(tenants.len());
    for tenant in tenants {
        let status = store.status(&tenant.id).await?;
        shown.push((tenant, status));
    }
    let now = Utc::now();
    // One --tenant prints what it always printed (an object, a summary); more, a list.
    let single = !args.selection.all_tenants && shown.len() == 1;
    let text = if args.json {
        let json: Vec<StatusJson> = shown
            .iter()
            .map(|(t, s)| StatusJson::new(t, s, now))
            .collect();
        let encoded = match single {
            true => serde_json::to_string(&json[0]),
            false => serde_json::to_string(&json),
        };
        encoded.map_err(|e| Error::Internal(format!("cannot encode status: {e}")))?
    } else if single {
        human(&shown[0].0, &shown[0].1, now, &dir.display().to_string())
    } else {
        table(&shown, now, &dir.display().to_string())
    };
    print(&text);
    Ok(ExitStatus::Success)
}

/// `status --json`: the old backend's shape, plus a few fields.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusJson {
    tenant_id: String,
    marketplace: &'static str,
    /// `false` for a tenant the database knows but whose file was removed.
    has_tenant_file: bool,
    sync_state: SyncStateJson,
    counts: CountsJson,
    backlog: BacklogJson,
    last_run: Option<RunJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SyncStateJson {
    last_updated_after: Option<String>,
    last_polled_at: Option<String>,
    last_success_at: Option<String>,
    last_error: Option<String>,
    last_error_at: Option<String>,
    /// The first failure after the last success.
    error_since: Option<String>,
    /// Now minus the cursor, in whole seconds; `null` without a cursor.
    lag_seconds: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CountsJson {
    orders: i64,
    items: i64,
    orders_awaiting_items: i64,
    orders_quarantined: i64,
}

/// What the last pass estimated was left; `null`s when it estimated nothing.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BacklogJson {
    orders: Option<i32>,
    catch_up_seconds: Option<i32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunJson {
    command: String,
    orders_api: String,
    started_at: String,
    finished_at: Option<String>,
    outcome: &'static str,
    orders_upserted: i32,
    orders_quarantined: i32,
    items_upserted: i32,
    api_calls: i32,
    throttled: i32,
    error: Option<String>,
}

impl StatusJson {
    fn new(tenant: &KnownTenant, s: &TenantStatus, now: DateTime<Utc>) -> Self {
        let state = s.state.clone().unwrap_or_default();
        StatusJson {
            tenant_id: s.tenant.to_string(),
            marketplace: MARKETPLACE,
            has_tenant_file: tenant.has_file,
            sync_state: SyncStateJson {
                last_updated_after: state.cursor.map(js_time),
                last_polled_at: state.last_polled_at.map(js_time),
                last_success_at: state.last_success_at.map(js_time),
                last_error: state.last_error,
                last_error_at: state.last_error_at.map(js_time),
                error_since: state.error_since.map(js_time),
                lag_seconds: state.cursor.map(|c| (now - c).num_seconds().max(0)),
            },
            counts: CountsJson {
                orders: s.counts.orders,
                items: s.counts.items,
                orders_awaiting_items: s.counts.orders_awaiting_items,
                orders_quarantined: s.counts.orders_quarantined,
            },
            backlog: BacklogJson {
                orders: state.backlog_orders,
                catch_up_seconds: state.catch_up_secs,
            },
            last_run: s.last_run.as_ref().map(|r| RunJson {
                command: r.command.clone(),
                orders_api: r.orders_api.clone(),
                started_at: js_time(r.started_at),
                finished_at: r.finished_at.map(js_time),
                outcome: r.outcome.as_str(),
                orders_upserted: r.orders_upserted,
                orders_quarantined: r.orders_quarantined,
                items_upserted: r.items_upserted,
                api_calls: r.api_calls,
                throttled: r.throttled,
                error: r.error.clone(),
            }),
        }
    }
}

/// "2026-11-28T10:00:00.000Z (3m ago)", or "never".
fn ago(value: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match value {
        Some(t) => format!("{} ({} ago)", js_time(t), span(now - t)),
        None => "never".to_owned(),
    }
}

/// "1200 orders, about 25m to catch up", when the last pass estimated it.
fn backlog(orders: Option<i32>, catch_up_secs: Option<i32>) -> Option<String> {
    let eta = catch_up_secs.map(|s| span(chrono::Duration::seconds(i64::from(s))));
    match (orders, eta) {
        (Some(o), Some(eta)) => Some(format!("{o} orders, about {eta} to catch up")),
        (Some(o), None) => Some(format!("{o} orders")),
        (None, Some(eta)) => Some(format!("about {eta} to catch up")),
        (None, None) => None,
    }
}

/// One tenant, in detail, for a person at a terminal.
fn human(t: &KnownTenant, s: &TenantStatus, now: DateTime<Utc>, dir: &str) -> String {
    let st = s.state.clone().unwrap_or_default();
    let mut lines = vec![format!("tenant {} ({})", s.tenant, MARKETPLACE)];
    if !t.has_file {
        lines.push(format!(
            "  tenant file    none in {dir}: no longer synced (state and orders kept)"
        ));
    }
    lines.push(format!(
        "  cursor         {}",
        match st.cursor {
            Some(c) => format!("{} (lag {})", js_time(c), span(now - c)),
            None => "none (first pass not done)".to_owned(),
        }
    ));
    lines.push(format!("  last polled    {}", ago(st.last_polled_at, now)));
    lines.push(format!("  last success   {}", ago(st.last_success_at, now)));
    lines.push(match &st.last_error {
        Some(e) => {
            let since = st.error_since.or(st.last_error_at);
            format!(
                "  last error     {} at {}{}",
                e,
                st.last_error_at.map(js_time).as_deref().unwrap_or("?"),
                since
                    .map(|t| format!(", failing since {} ({})", js_time(t), span(now - t)))
                    .unwrap_or_default()
            )
        }
        None => "  last error     none".to_owned(),
    });
    lines.push(format!(
        "  stored         {} orders, {} items ({} orders awaiting items)",
        s.counts.orders, s.counts.items, s.counts.orders_awaiting_items
    ));
    if s.counts.orders_quarantined > 0 {
        lines.push(format!(
            "  quarantined    {} orders Amazon sent could not be read (table order_quarantine)",
            s.counts.orders_quarantined
        ));
    }
    if let Some(b) = backlog(st.backlog_orders, st.catch_up_secs) {
        lines.push(format!("  backlog        {b}"));
    }
    if let Some(run) = &s.last_run {
        lines.push(format!(
            "  last run       {} via {}: {}, {} orders and {} items written, {} API calls, {} throttled",
            run.command,
            run.orders_api,
            run.outcome,
            run.orders_upserted,
            run.items_upserted,
            run.api_calls,
            run.throttled
        ));
    }
    lines.join("\n")
}

/// Several tenants: one row each, then a note per tenant that needs one (its error, a missing
/// file).
fn table(shown: &[(KnownTenant, TenantStatus)], now: DateTime<Utc>, dir: &str) -> String {
    let mut table = Table::new(&[
        ("TENANT", Align::Left),
        ("LAG", Align::Right),
        ("LAST SUCCESS (UTC)", Align::Left),
        ("ERROR FOR", Align::Right),
        ("ORDERS", Align::Right),
        ("ITEMS", Align::Right),
        ("AWAITING", Align::Right),
        ("QUARANTINED", Align::Right),
        ("BACKLOG", Align::Left),
    ]);
    let mut notes = Vec::new();
    for (t, s) in shown {
        let st = s.state.clone().unwrap_or_default();
        let since = st.error_since.or(st.last_error_at);
        let dash = || "-".to_owned();
        let name = match t.has_file {
            true => t.id.to_string(),
            false => format!("{}*", t.id),
        };
        table.row(vec![
            name,
            st.cursor.map(|c| span(now - c)).unwrap_or_else(dash),
            match st.last_success_at {
                Some(at) => format!("{} ({} ago)", short_time(at), span(now - at)),
                None if s.state.is_none() => "never synced".to_owned(),
                None => "never".to_owned(),
            },
            match (&st.last_error, since) {
                (Some(_), Some(since)) => span(now - since),
                (Some(_), None) => "?".to_owned(),
                (None, _) => dash(),
            },
            s.counts.orders.to_string(),
            s.counts.items.to_string(),
            s.counts.orders_awaiting_items.to_string(),
            s.counts.orders_quarantined.to_string(),
            match (st.backlog_orders, st.catch_up_secs) {
                (None, None) => dash(),
                (orders, eta) => format!(
                    "{}{}",
                    orders
                        .map(|o| o.to_string())
                        .unwrap_or_else(|| "?".to_owned()),
                    eta.map(|s| format!(" (ETA {})", span(chrono::Duration::seconds(s.into()))))
                        .unwrap_or_default()
                ),
            },
        ]);
        if let Some(error) = &st.last_error {
            notes.push(format!(
                "{}: error since {}: {}",
                t.id,
                since.map(js_time).as_deref().unwrap_or("?"),
                one_line(error, 300)
            ));
        }
    }
    let mut text = table.render();
    if shown.iter().any(|(t, _)| !t.has_file) {
        notes.push(format!(
            "* no tenant file in {dir} any more: no longer synced, its state and orders are kept"
        ));
    }
    if !notes.is_empty() {
        text.push('\n');
        text.push_str(&notes.join("\n"));
    }
    text
}
