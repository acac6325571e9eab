//! `keybuzz-sync status --tenant ID [--json]`: reads the database only; needs no Amazon
//! credentials and prints none.
//!
//! Owns the output shapes: the old backend's JSON (times in JavaScript's `toISOString()` form)
//! and a short summary for a person.

use std::io::Write;

use chrono::{DateTime, Utc};
use keybuzz_sync::model::{MARKETPLACE, Secret};
use keybuzz_sync::store::TenantStatus;
use keybuzz_sync::{Error, Result};
use serde::Serialize;

use super::ExitStatus;
use crate::cli::StatusArgs;

pub async fn run(database_url: Option<&Secret>, args: &StatusArgs) -> Result<ExitStatus> {
    let store = super::connect(database_url, 2).await?;
    store.check_schema().await?;
    let status = store.status(&args.tenant).await?;
    let text = if args.json {
        serde_json::to_string(&StatusJson::from(&status))
            .map_err(|e| Error::Internal(format!("cannot encode status: {e}")))?
    } else {
        human(&status, Utc::now())
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`status | head`) is not worth a failure.
    let _ = writeln!(out, "{text}");
    Ok(ExitStatus::Success)
}

/// `status --json`: the old backend's shape, plus a few fields.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusJson {
    tenant_id: String,
    marketplace: &'static str,
    sync_state: SyncStateJson,
    counts: CountsJson,
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
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CountsJson {
    orders: i64,
    items: i64,
    orders_awaiting_items: i64,
    orders_quarantined: i64,
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

/// JavaScript's `toISOString()` form, which the old endpoint served.
fn js_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl From<&TenantStatus> for StatusJson {
    fn from(s: &TenantStatus) -> Self {
        let state = s.state.clone().unwrap_or_default();
        StatusJson {
            tenant_id: s.tenant.to_string(),
            marketplace: MARKETPLACE,
            sync_state: SyncStateJson {
                last_updated_after: state.cursor.map(js_time),
                last_polled_at: state.last_polled_at.map(js_time),
                last_success_at: state.last_success_at.map(js_time),
                last_error: state.last_error,
                last_error_at: state.last_error_at.map(js_time),
            },
            counts: CountsJson {
                orders: s.counts.orders,
                items: s.counts.items,
                orders_awaiting_items: s.counts.orders_awaiting_items,
                orders_quarantined: s.counts.orders_quarantined,
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

/// "2026-11-28T10:00:00.000Z (3 min ago)", or "never".
fn ago(value: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(t) = value else {
        return "never".to_owned();
    };
    let secs = (now - t).num_seconds().max(0);
    let rel = match secs {
        0..=119 => format!("{secs} s ago"),
        120..=7199 => format!("{} min ago", secs / 60),
        7200..=172_799 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    };
    format!("{} ({rel})", js_time(t))
}

/// A short summary for a person at a terminal.
fn human(s: &TenantStatus, now: DateTime<Utc>) -> String {
    let st = s.state.clone().unwrap_or_default();
    let mut lines = vec![
        format!("tenant {} ({})", s.tenant, MARKETPLACE),
        format!(
            "  cursor         {}",
            st.cursor
                .map(js_time)
                .unwrap_or_else(|| "none (first pass not done)".to_owned())
        ),
        format!("  last polled    {}", ago(st.last_polled_at, now)),
        format!("  last success   {}", ago(st.last_success_at, now)),
        match &st.last_error {
            Some(e) => format!(
                "  last error     {} at {}",
                e,
                st.last_error_at.map(js_time).as_deref().unwrap_or("?")
            ),
            None => "  last error     none".to_owned(),
        },
        format!(
            "  stored         {} orders, {} items ({} orders awaiting items)",
            s.counts.orders, s.counts.items, s.counts.orders_awaiting_items
        ),
    ];
    if s.counts.orders_quarantined > 0 {
        lines.push(format!(
            "  quarantined    {} orders Amazon sent could not be read (table order_quarantine)",
            s.counts.orders_quarantined
        ));
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
