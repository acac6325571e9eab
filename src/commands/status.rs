//! `keybuzz-sync status --tenant ID [--json]`: reads the database only; needs no Amazon
//! credentials and prints none.

use std::io::Write;

use chrono::{DateTime, Utc};

use super::ExitStatus;
use crate::cli::StatusArgs;
use crate::error::{Error, Result};
use crate::store::TenantStatus;

pub async fn run(database_url: Option<&str>, args: &StatusArgs) -> Result<ExitStatus> {
    let store = super::connect(database_url, 2).await?;
    store.check_schema().await?;
    let status = store.status(&args.tenant).await?;
    let text = if args.json {
        serde_json::to_string(&status)
            .map_err(|e| Error::Config(format!("cannot encode status: {e}")))?
    } else {
        human(&status, Utc::now())
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`status | head`) is not worth a failure.
    let _ = writeln!(out, "{text}");
    Ok(ExitStatus::Success)
}

fn ago(value: &Option<String>, now: DateTime<Utc>) -> String {
    let Some(v) = value else {
        return "never".to_owned();
    };
    match DateTime::parse_from_rfc3339(v) {
        Ok(t) => {
            let secs = (now - t.with_timezone(&Utc)).num_seconds().max(0);
            let rel = match secs {
                0..=119 => format!("{secs} s ago"),
                120..=7199 => format!("{} min ago", secs / 60),
                7200..=172_799 => format!("{} h ago", secs / 3600),
                _ => format!("{} days ago", secs / 86_400),
            };
            format!("{v} ({rel})")
        }
        Err(_) => v.clone(),
    }
}

/// A short summary for a person at a terminal.
pub fn human(s: &TenantStatus, now: DateTime<Utc>) -> String {
    let st = &s.sync_state;
    let mut lines = vec![
        format!("tenant {} ({})", s.tenant_id, s.marketplace),
        format!(
            "  cursor         {}",
            st.last_updated_after
                .as_deref()
                .unwrap_or("none (first pass not done)")
        ),
        format!("  last polled    {}", ago(&st.last_polled_at, now)),
        format!("  last success   {}", ago(&st.last_success_at, now)),
        match &st.last_error {
            Some(e) => format!(
                "  last error     {} at {}",
                e,
                st.last_error_at.as_deref().unwrap_or("?")
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
