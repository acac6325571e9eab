//! `keybuzz-sync check [--tenant ID ... | --all-tenants] [--max-error-age 30m] [--max-lag 1h]`:
//! a health check for a shell, a cron monitor or a probe. Exit 0 with "all N tenants healthy",
//! or exit 1 with one `UNHEALTHY tenant X: ...` line per unhealthy tenant (stdout); an unknown
//! tenant exits 5.
//!
//! Reads one row per tenant (`marketplace_sync_state`) and which tenant files exist: no counts,
//! no Amazon credentials, quick. It never changes anything. Owns what "healthy" means:
//! [`assess`].

use chrono::{DateTime, Utc};
use keybuzz_sync::model::Secret;
use keybuzz_sync::{Error, Result};

use super::ExitStatus;
use super::output::{js_time, one_line, print, span};
use super::tenants::{KnownTenant, Selection, resolve};
use crate::cli::CheckArgs;

/// The limits a tenant must stay within.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long `lastError` may stay set (since the first failure after the last success).
    pub max_error_age: chrono::Duration,
    /// How far the cursor may be behind now.
    pub max_lag: chrono::Duration,
}

pub async fn run(database_url: Option<&Secret>, args: &CheckArgs) -> Result<ExitStatus> {
    let store = super::connect(database_url, 1).await?;
    store.check_schema().await?;
    let dir = &args.dir.tenants_dir;
    let named = &args.selection.tenants;
    let selection = match named.is_empty() {
        true => Selection::All,
        false => Selection::Named(named),
    };
    let tenants = resolve(&store, dir, selection).await?;
    // Tenants without a file are no longer synced: with every tenant checked, they are left
    // out (their lag only grows); named explicitly, they are checked like any other.
    let (checked, unchecked): (Vec<KnownTenant>, Vec<KnownTenant>) = tenants
        .into_iter()
        .partition(|t| t.has_file || !named.is_empty());
    if checked.is_empty() {
        // A wrong --tenants-dir must not look like a healthy fleet.
        return Err(Error::Config(format!(
            "no tenant files (*.json) in {}",
            dir.display()
        )));
    }
    let limits = Limits {
        max_error_age: chrono::Duration::from_std(args.max_error_age)
            .unwrap_or(chrono::Duration::MAX),
        max_lag: chrono::Duration::from_std(args.max_lag).unwrap_or(chrono::Duration::MAX),
    };
    let now = Utc::now();
    let unhealthy: Vec<String> = checked
        .iter()
        .filter_map(|t| {
            let reasons = assess(t, now, limits);
            (!reasons.is_empty())
                .then(|| format!("UNHEALTHY tenant {}: {}", t.id, reasons.join("; ")))
        })
        .collect();
    if !unhealthy.is_empty() {
        print(&unhealthy.join("\n"));
        return Ok(ExitStatus::Failure);
    }
    let n = checked.len();
    let mut line = format!("all {n} tenant{} healthy", if n == 1 { "" } else { "s" });
    if !unchecked.is_empty() {
        let ids: Vec<String> = unchecked.iter().map(|t| t.id.to_string()).collect();
        line.push_str(&format!(
            " (not checked, no tenant file: {})",
            ids.join(", ")
        ));
    }
    print(&line);
    Ok(ExitStatus::Success)
}

/// Why a tenant is unhealthy; empty when it is healthy.
///
/// - never synced (no sync state, or no window completed yet): unhealthy, whatever its age; a
///   new tenant shows here until its first window completes (minutes for most);
/// - `lastError` set for longer than `max_error_age`, counted from `error_since` (the first
///   failure after the last success), so a tenant failing every pass stays unhealthy, and one
///   failure that the next pass repairs never counts;
/// - cursor more than `max_lag` behind now.
pub fn assess(tenant: &KnownTenant, now: DateTime<Utc>, limits: Limits) -> Vec<String> {
    let Some(state) = &tenant.state else {
        return vec!["never synced".to_owned()];
    };
    let mut reasons = Vec::new();
    if let Some(error) = &state.last_error {
        match state.error_since.or(state.last_error_at) {
            Some(since) if now - since <= limits.max_error_age => {}
            Some(since) => reasons.push(format!(
                "lastError set for {} (since {}): {}",
                span(now - since),
                js_time(since),
                one_line(error, 300)
            )),
            None => reasons.push(format!("lastError set: {}", one_line(error, 300))),
        }
    }
    match state.cursor {
        None => reasons.push("never synced: no window completed yet".to_owned()),
        Some(cursor) if now - cursor > limits.max_lag => reasons.push(format!(
            "lag {} exceeds {}",
            span(now - cursor),
            humantime::format_duration(limits.max_lag.to_std().unwrap_or_default())
        )),
        Some(_) => {}
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use keybuzz_sync::model::TenantId;
    use keybuzz_sync::store::StatusState;

    fn tenant(state: Option<StatusState>) -> KnownTenant {
        KnownTenant {
            id: TenantId::parse("t1").unwrap(),
            has_file: true,
            state,
        }
    }

    const LIMITS: Limits = Limits {
        max_error_age: chrono::Duration::minutes(30),
        max_lag: chrono::Duration::hours(1),
    };

    #[test]
    fn healthy_stale_failing_and_never_synced() {
        let now = Utc::now();
        let min = chrono::Duration::minutes;
        let ok = StatusState {
            cursor: Some(now - min(8)),
            ..StatusState::default()
        };
        assert!(assess(&tenant(Some(ok.clone())), now, LIMITS).is_empty());

        let lagging = StatusState {
            cursor: Some(now - min(192)),
            ..ok.clone()
        };
        assert_eq!(
            assess(&tenant(Some(lagging)), now, LIMITS),
            ["lag 3h12m exceeds 1h"]
        );

        // A fresh error is tolerated; an old one is not, counted from error_since.
        let fresh_error = StatusState {
            last_error: Some("SP-API searchOrders answered HTTP 503".into()),
            last_error_at: Some(now - min(1)),
            error_since: Some(now - min(10)),
            ..ok.clone()
        };
        assert!(assess(&tenant(Some(fresh_error.clone())), now, LIMITS).is_empty());
        let old_error = StatusState {
            error_since: Some(now - min(42)),
            ..fresh_error
        };
        let reasons = assess(&tenant(Some(old_error)), now, LIMITS);
        assert_eq!(reasons.len(), 1);
        assert!(
            reasons[0].starts_with("lastError set for 42m (since ")
                && reasons[0].ends_with("): SP-API searchOrders answered HTTP 503"),
            "{reasons:?}"
        );

        assert_eq!(assess(&tenant(None), now, LIMITS), ["never synced"]);
        assert_eq!(
            assess(&tenant(Some(StatusState::default())), now, LIMITS),
            ["never synced: no window completed yet"]
        );
    }
}
