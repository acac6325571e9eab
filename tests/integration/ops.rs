//! Operating it: `history`, `status` of several tenants, `check`, run retention, metrics pushed
//! to a real Pushgateway, and JSON log lines, through the real binary where an operator would
//! use it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use keybuzz_sync::metrics::{RunMetrics, push_tenant};
use keybuzz_sync::model::{OrdersApi, RunOutcome, TenantId};
use keybuzz_sync::store::PgStore;
use serde_json::Value;
use spapi_sim::{Fault, FaultKind, SimHandle, SimOp};
use sqlx::PgPool;

use crate::cli::{assert_no_secret, keybuzz, run, text, write_tenant};
use crate::util::*;

/// The binary without Amazon credentials: the read-only commands need none.
fn reader(sim: &SimHandle, pool: &PgPool, dir: &Path) -> assert_cmd::Command {
    let mut cmd = keybuzz(sim, pool, dir);
    cmd.env_remove("LWA_CLIENT_ID")
        .env_remove("LWA_CLIENT_SECRET");
    cmd
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", text(out)))
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every searchOrders answers 503 until cleared: the next v2026 pass fails after its retries.
fn fail_search_orders(sim: &SimHandle) {
    sim.push_fault(Fault {
        op: Some(SimOp::SearchOrders),
        kind: FaultKind::Status(503),
        times: 1_000,
        skip: 0,
    });
}

fn seed(sim: &SimHandle) {
    sim.seed_orders(
        SELLER,
        25,
        3,
        Utc::now() - chrono::Duration::hours(1),
        chrono::Duration::days(3),
    );
}

fn is_js_time(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 24 && s.ends_with('Z') && s.as_bytes()[19] == b'.')
}

#[sqlx::test]
async fn history_and_status_show_several_tenants_with_partial_and_failed_runs(pool: PgPool) {
    let sim = sim().await;
    seed(&sim);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (id, api) in [
        ("good", "2026-01-01"),
        ("legacy", "v0"),
        ("revoked", "v0"),
        ("gone", "2026-01-01"),
    ] {
        write_tenant(d, &sim, id, api);
    }
    sim.revoke(&refresh_token("revoked"));
    let out = run(keybuzz(&sim, &pool, d), &["delta", "--all-tenants"]).await;
    // A fleet run: one tenant's failure is its own health, not the Job's.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // `gone` was synced, then removed from the tenants dir; `fresh` was added and never synced.
    std::fs::remove_file(d.join("gone.json")).unwrap();
    write_tenant(d, &sim, "fresh", "2026-01-01");

    // good: success, then a failed pass, then a partial run (which the engine's time budget
    // produces; written here as the engine records it).
    fail_search_orders(&sim);
    let out = run(keybuzz(&sim, &pool, d), &["delta", "--tenant", "good"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    sim.clear_faults();
    sqlx::query(
        "INSERT INTO sync_runs (tenant_id, command, orders_api, started_at, finished_at, outcome,
                               orders_upserted, items_upserted, api_calls, pages, backlog_orders)
         VALUES ('good', 'delta', '2026-01-01', now() + interval '1 second', now() + interval '3 seconds',
                 'partial', 7, 9, 2, 1, 40)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE marketplace_sync_state SET backlog_orders = 40, catch_up_secs = 900 WHERE tenant_id = 'good'",
    )
    .execute(&pool)
    .await
    .unwrap();

    // history --json: newest first, every field.
    let out = run(
        reader(&sim, &pool, d),
        &["history", "--tenant", "good", "--json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_no_secret(&out);
    let runs = json(&out);
    let runs = runs.as_array().unwrap();
    let outcomes: Vec<&str> = runs
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["partial", "failed", "success"], "{runs:?}");
    let (partial, failed, success) = (&runs[0], &runs[1], &runs[2]);
    assert_eq!(partial["ordersUpserted"], 7);
    assert_eq!(partial["pages"], 1);
    assert_eq!(partial["backlogOrders"], 40);
    assert_eq!(partial["durationSeconds"], 2.0);
    assert!(
        failed["error"].as_str().unwrap().contains("503"),
        "{failed}"
    );
    assert!(
        failed["apiCalls"].as_i64().unwrap() > 1,
        "retries counted: {failed}"
    );
    assert_eq!(success["ordersUpserted"], 25);
    assert_eq!(success["command"], "delta");
    assert_eq!(success["ordersApi"], "2026-01-01");
    assert!(success["error"].is_null());
    for run in runs {
        for key in ["startedAt", "finishedAt"] {
            assert!(is_js_time(&run[key]), "{key} in {run}");
        }
        assert!(run["durationSeconds"].as_f64().unwrap() >= 0.0);
        assert!(run["runId"].as_i64().is_some());
    }

    // history for a person, and --limit.
    let out = run(
        reader(&sim, &pool, d),
        &["history", "--tenant", "good", "--limit", "2"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "header and 2 runs:\n{table}");
    assert!(lines[0].starts_with("STARTED (UTC)") && lines[0].contains("OUTCOME"));
    assert!(lines[1].contains("partial"), "{table}");
    assert!(
        lines[2].contains("failed") && lines[2].contains("503"),
        "{table}"
    );
    let out = run(reader(&sim, &pool, d), &["history", "--tenant", "nobody"]).await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("unknown tenant nobody"),
        "{}",
        text(&out)
    );

    // status --all-tenants --json: the files and the tenant only the database knows, sorted.
    let out = run(
        reader(&sim, &pool, d),
        &["status", "--all-tenants", "--json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_no_secret(&out);
    let all = json(&out);
    let by_id: BTreeMap<&str, &Value> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["tenantId"].as_str().unwrap(), s))
        .collect();
    assert_eq!(
        by_id.keys().copied().collect::<Vec<_>>(),
        ["fresh", "gone", "good", "legacy", "revoked"]
    );
    let good = by_id["good"];
    assert_eq!(good["marketplace"], "AMAZON");
    assert_eq!(good["hasTenantFile"], true);
    assert!(
        good["syncState"]["lastError"]
            .as_str()
            .unwrap()
            .contains("503")
    );
    assert!(is_js_time(&good["syncState"]["errorSince"]), "{good}");
    assert!(is_js_time(&good["syncState"]["lastUpdatedAfter"]));
    let lag = good["syncState"]["lagSeconds"].as_i64().unwrap();
    assert!((0..3600).contains(&lag), "{good}");
    assert_eq!(good["counts"]["orders"], 25);
    assert_eq!(good["backlog"]["orders"], 40);
    assert_eq!(good["backlog"]["catchUpSeconds"], 900);
    assert_eq!(good["lastRun"]["outcome"], "partial");
    let legacy = by_id["legacy"];
    assert!(legacy["syncState"]["lastError"].is_null());
    assert!(legacy["syncState"]["errorSince"].is_null());
    assert_eq!(legacy["counts"]["orders"], 25);
    assert!(legacy["backlog"]["orders"].is_null() && legacy["backlog"]["catchUpSeconds"].is_null());
    assert!(
        by_id["revoked"]["syncState"]["lastError"]
            .as_str()
            .unwrap()
            .contains("re-authorize")
    );
    assert_eq!(by_id["gone"]["hasTenantFile"], false);
    assert_eq!(by_id["gone"]["counts"]["orders"], 25);
    let fresh = by_id["fresh"];
    assert_eq!(fresh["hasTenantFile"], true);
    assert!(fresh["syncState"]["lastUpdatedAfter"].is_null() && fresh["lastRun"].is_null());
    assert!(fresh["syncState"]["lagSeconds"].is_null());

    // Several --tenant: an array; one: the object it always was.
    let out = run(
        reader(&sim, &pool, d),
        &["status", "--tenant", "legacy", "--tenant", "gone", "--json"],
    )
    .await;
    assert_eq!(
        json(&out).as_array().map(Vec::len),
        Some(2),
        "{}",
        text(&out)
    );
    let out = run(
        reader(&sim, &pool, d),
        &["status", "--tenant", "gone", "--json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["tenantId"], "gone");

    // The table for a person: a row per tenant, then the notes.
    let out = run(reader(&sim, &pool, d), &["status", "--all-tenants"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_no_secret(&out);
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("TENANT") && lines[0].contains("LAG"),
        "{table}"
    );
    for (row, tenant) in ["fresh ", "gone* ", "good ", "legacy ", "revoked "]
        .iter()
        .enumerate()
    {
        assert!(
            lines[row + 1].starts_with(tenant),
            "{tenant:?} in row {row}:\n{table}"
        );
    }
    assert!(lines[1].contains("never synced"), "{table}");
    assert!(lines[3].contains("40 (ETA 15m)"), "{table}");
    assert!(
        table.contains("\ngood: error since ") && table.contains("HTTP 503"),
        "{table}"
    );
    assert!(table.contains("\nrevoked: error since ") && table.contains("re-authorize"));
    assert!(table.contains("* no tenant file in "), "{table}");

    // Unknown: no file and never synced. Not "never synced": exit 5.
    let out = run(reader(&sim, &pool, d), &["status", "--tenant", "nobody"]).await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("unknown tenant nobody: no tenant file in")
            && text(&out).contains("never synced"),
        "{}",
        text(&out)
    );
    assert!(out.stdout.is_empty());
}

#[sqlx::test]
async fn check_follows_a_tenant_from_healthy_to_failing_and_back(pool: PgPool) {
    let sim = sim().await;
    seed(&sim);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_tenant(d, &sim, "t1", "2026-01-01");
    let check = |args: &'static [&'static str]| {
        let cmd = reader(&sim, &pool, d);
        async move {
            let out = run(cmd, args).await;
            assert_no_secret(&out);
            (out.status.code(), stdout(&out), text(&out))
        }
    };

    let (code, out, all) = check(&["check"]).await;
    assert_eq!(code, Some(1), "{all}");
    assert_eq!(out, "UNHEALTHY tenant t1: never synced\n");

    let out = run(keybuzz(&sim, &pool, d), &["delta", "--tenant", "t1"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (code, out, all) = check(&["check"]).await;
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(out, "all 1 tenant healthy\n");

    // A failing pass: tolerated while the error is younger than --max-error-age.
    fail_search_orders(&sim);
    let out = run(keybuzz(&sim, &pool, d), &["delta", "--tenant", "t1"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let (code, _, all) = check(&["check", "--max-error-age", "1h"]).await;
    assert_eq!(code, Some(0), "{all}");
    // Made old by backdating its start rather than by waiting.
    sqlx::query(
        "UPDATE marketplace_sync_state SET error_since = now() - interval '42 minutes' WHERE tenant_id = 't1'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (code, out, all) = check(&["check", "--all-tenants", "--max-error-age", "1s"]).await;
    assert_eq!(code, Some(1), "{all}");
    assert!(
        out.starts_with("UNHEALTHY tenant t1: lastError set for 42m (since ")
            && out.contains("): SP-API searchOrders")
            && out.contains("503")
            && out.lines().count() == 1,
        "{out}"
    );
    // A second failure does not restart the clock: error_since is the first failure.
    let out = run(keybuzz(&sim, &pool, d), &["delta", "--tenant", "t1"]).await;
    assert_eq!(out.status.code(), Some(1));
    let (code, out, _) = check(&["check", "--tenant", "t1", "--max-error-age", "30m"]).await;
    assert_eq!(code, Some(1));
    assert!(out.contains("lastError set for 42m"), "{out}");

    // The next successful pass clears it.
    sim.clear_faults();
    let out = run(keybuzz(&sim, &pool, d), &["delta", "--tenant", "t1"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (code, out, all) = check(&["check", "--max-error-age", "1s"]).await;
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "all 1 tenant healthy\n"),
        "{all}"
    );

    // Lag: the cursor far behind now.
    sqlx::query(
        "UPDATE marketplace_sync_state SET cursor = now() - interval '3 hours 12 minutes 30 seconds' WHERE tenant_id = 't1'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (code, out, _) = check(&["check"]).await;
    assert_eq!(code, Some(1));
    assert_eq!(out, "UNHEALTHY tenant t1: lag 3h12m exceeds 1h\n");
    let (code, _, _) = check(&["check", "--max-lag", "4h"]).await;
    assert_eq!(code, Some(0));

    // A tenant only the database knows (its file removed) is left out of the fleet's check,
    // and checked when named.
    sqlx::query(
        "INSERT INTO marketplace_sync_state (tenant_id, cursor) VALUES ('gone', now() - interval '2 days')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (code, out, _) = check(&["check", "--max-lag", "4h"]).await;
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        "all 1 tenant healthy (not checked, no tenant file: gone)\n"
    );
    let (code, out, _) = check(&["check", "--tenant", "gone"]).await;
    assert_eq!(code, Some(1));
    assert!(
        out.starts_with("UNHEALTHY tenant gone: lag 2d00h exceeds 1h"),
        "{out}"
    );

    // Unknown tenants, bad durations, an empty tenants dir.
    let (code, out, all) = check(&["check", "--tenant", "t1", "--tenant", "nobody"]).await;
    assert_eq!(code, Some(5), "{all}");
    assert!(
        out.is_empty() && all.contains("unknown tenant nobody"),
        "{all}"
    );
    let (code, _, all) = check(&["check", "--max-lag", "soon"]).await;
    assert_eq!(code, Some(2), "{all}");
    let empty = tempfile::tempdir().unwrap();
    let out = run(reader(&sim, &pool, empty.path()), &["check"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("no tenant files"), "{}", text(&out));
}

#[sqlx::test]
async fn retention_deletes_old_runs_but_never_a_running_one(pool: PgPool) {
    let store = PgStore::from_pool(pool.clone());
    sqlx::query(
        "INSERT INTO sync_runs (tenant_id, command, orders_api, started_at, finished_at, outcome) VALUES
            ('r1', 'delta', 'v0', now() - interval '40 days', now() - interval '40 days', 'success'),
            ('r1', 'delta', 'v0', now() - interval '40 days', NULL, 'running'),
            ('r1', 'delta', 'v0', now() - interval '1 day', now() - interval '1 day', 'failed'),
            ('r2', 'items', 'v0', now() - interval '31 days', now() - interval '31 days', 'abandoned')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let pruned = store.prune_runs(chrono::Duration::days(30)).await.unwrap();
    assert_eq!(pruned, 2);
    let left: Vec<(String, String)> =
        sqlx::query_as("SELECT tenant_id, outcome FROM sync_runs ORDER BY tenant_id, outcome")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        left,
        [
            ("r1".into(), "failed".into()),
            ("r1".into(), "running".into())
        ]
    );
    assert_eq!(
        store.prune_runs(chrono::Duration::days(30)).await.unwrap(),
        0
    );

    // Through a sync command, with --keep-runs-days.
    let sim = sim().await;
    seed(&sim);
    let dir = tempfile::tempdir().unwrap();
    write_tenant(dir.path(), &sim, "t1", "2026-01-01");
    let out = run(
        keybuzz(&sim, &pool, dir.path()),
        &["delta", "--tenant", "t1", "--keep-runs-days", "1"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("deleted runs older than the retention"),
        "{}",
        text(&out)
    );
    let left: Vec<(String, String)> =
        sqlx::query_as("SELECT tenant_id, outcome FROM sync_runs ORDER BY tenant_id, outcome")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        left,
        [
            ("r1".into(), "running".into()),
            ("t1".into(), "success".into())
        ]
    );
    let mut cmd = keybuzz(&sim, &pool, dir.path());
    cmd.env("KEYBUZZ_KEEP_RUNS_DAYS", "0");
    let out = run(cmd, &["delta", "--tenant", "t1"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Series by name: each one's labels and value.
type Series = BTreeMap<String, Vec<(BTreeMap<String, String>, f64)>>;

/// The Pushgateway's series of one group.
async fn pushed_series(http: &reqwest::Client, base: &str, tenant: &str) -> Series {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut series: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, rest)) = line.split_once('{') else {
            continue;
        };
        let (labels, value) = rest.rsplit_once("} ").unwrap();
        // Our label values hold no `",` sequence; enough for these series.
        let labels: BTreeMap<String, String> = labels
            .split("\",")
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once("=\"").unwrap();
                (k.to_owned(), v.trim_end_matches('"').to_owned())
            })
            .collect();
        if labels.get("tenant").map(String::as_str) == Some(tenant)
            && labels.get("job").map(String::as_str) == Some("keybuzz-sync")
        {
            series
                .entry(name.to_owned())
                .or_default()
                .push((labels, value.parse::<f64>().unwrap()));
        }
    }
    series
}

/// The value of the one series of `name` whose labels include `with`.
fn value_of(series: &Series, name: &str, with: &[(&str, &str)]) -> f64 {
    let matching: Vec<f64> = series
        .get(name)
        .unwrap_or_else(|| panic!("{name} not pushed: {series:#?}"))
        .iter()
        .filter(|(labels, _)| {
            with.iter()
                .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(matching.len(), 1, "{name} {with:?}: {series:#?}");
    matching[0]
}

#[sqlx::test]
async fn metrics_of_a_real_pass_reach_a_real_pushgateway(pool: PgPool) {
    // CI sets PUSHGATEWAY_URL (scripts/pushgateway.sh); a developer without one is told so.
    let Ok(base) = std::env::var("PUSHGATEWAY_URL") else {
        eprintln!(
            "SKIPPED metrics_of_a_real_pass_reach_a_real_pushgateway: PUSHGATEWAY_URL is not set (scripts/pushgateway.sh sets it)"
        );
        return;
    };
    let base = base.trim_end_matches('/').to_owned();
    let http = reqwest::Client::new();
    // Unique per test run: parallel tests and earlier runs share the Pushgateway.
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let id = format!("metrics-{}-{nanos}", std::process::id());
    let tenant_id = TenantId::parse(&id).unwrap();

    let sim = sim().await;
    seed(&sim);
    let tenant = tenant(&sim, &id, OrdersApi::V2026);
    let started = std::time::Instant::now();
    let report = expect_ok(delta(&sim, &pool, &tenant, Utc::now()).await);
    let run_metrics = RunMetrics {
        command: "delta",
        outcome: RunOutcome::Success,
        duration: started.elapsed(),
        finished_at: Utc::now(),
    };
    // The counters as the engine keeps them (set, so the values are known whatever the
    // engine wrote), and a backlog estimate.
    for (metric, operation, command, outcome, value) in [
        ("orders_written", "", "", "", 25i64),
        ("items_written", "", "", "", 60),
        ("api_calls", "searchOrders", "", "", 3),
        ("api_calls", "getOrder", "", "", 5),
        ("api_throttled", "searchOrders", "", "", 1),
        ("runs", "", "delta", "success", 4),
        ("runs", "", "delta", "failed", 1),
    ] {
        sqlx::query(
            "INSERT INTO sync_counters (tenant_id, metric, operation, command, outcome, value)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant_id, metric, operation, command, outcome) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(&id)
        .bind(metric)
        .bind(operation)
        .bind(command)
        .bind(outcome)
        .bind(value)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE marketplace_sync_state SET backlog_orders = 40 WHERE tenant_id = $1")
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();

    let store = PgStore::from_pool(pool.clone());
    let pushgateway = reqwest::Url::parse(&base).unwrap();
    push_tenant(&http, &pushgateway, &store, &tenant_id, &run_metrics)
        .await
        .unwrap();

    let series = pushed_series(&http, &base, &id).await;
    let v = |name: &str, with: &[(&str, &str)]| value_of(&series, name, with);
    assert_eq!(v("keybuzz_sync_orders_written_total", &[]), 25.0);
    assert_eq!(v("keybuzz_sync_items_written_total", &[]), 60.0);
    assert_eq!(
        v(
            "keybuzz_sync_api_calls_total",
            &[("operation", "searchOrders")]
        ),
        3.0
    );
    assert_eq!(
        v("keybuzz_sync_api_calls_total", &[("operation", "getOrder")]),
        5.0
    );
    assert_eq!(
        v(
            "keybuzz_sync_api_throttled_total",
            &[("operation", "searchOrders")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "keybuzz_sync_runs_total",
            &[("command", "delta"), ("outcome", "failed")]
        ),
        1.0
    );
    let duration = v(
        "keybuzz_sync_last_run_duration_seconds",
        &[("command", "delta")],
    );
    assert!(
        (duration - run_metrics.duration.as_secs_f64()).abs() < 0.001,
        "{duration}"
    );
    for (outcome, expected) in [
        ("success", 1.0),
        ("partial", 0.0),
        ("failed", 0.0),
        ("skipped", 0.0),
    ] {
        assert_eq!(
            v(
                "keybuzz_sync_last_run_outcome",
                &[("command", "delta"), ("outcome", outcome)]
            ),
            expected,
            "{outcome}"
        );
    }
    let finished = v(
        "keybuzz_sync_last_run_timestamp_seconds",
        &[("command", "delta")],
    );
    assert_eq!(
        finished,
        run_metrics.finished_at.timestamp_millis() as f64 / 1000.0
    );
    let cursor = cursor(&pool, &id).await.unwrap();
    assert_eq!(
        v("keybuzz_sync_cursor_timestamp_seconds", &[]),
        cursor.timestamp_millis() as f64 / 1000.0
    );
    let lag = v("keybuzz_sync_lag_seconds", &[]);
    assert!(
        (130.0..600.0).contains(&lag),
        "window ends 2 min 15 s ago: {lag}"
    );
    let success = v("keybuzz_sync_last_success_timestamp_seconds", &[]);
    assert!(
        (Utc::now().timestamp() as f64 - success).abs() < 120.0,
        "{success}"
    );
    assert_eq!(v("keybuzz_sync_error_since_timestamp_seconds", &[]), 0.0);
    assert_eq!(v("keybuzz_sync_orders_stored", &[]), 25.0);
    assert_eq!(
        v("keybuzz_sync_items_stored", &[]),
        item_count(&pool, &id).await as f64
    );
    let awaiting = count(
        &pool,
        "SELECT count(*) FROM orders WHERE tenant_id = $1 AND items_stale",
        &id,
    )
    .await;
    assert_eq!(
        v("keybuzz_sync_orders_awaiting_items", &[]),
        awaiting as f64
    );
    assert_eq!(v("keybuzz_sync_orders_quarantined", &[]), 0.0);
    assert_eq!(v("keybuzz_sync_backlog_orders", &[]), 40.0);
    assert_eq!(report.counts.orders, 25);
    // The Pushgateway accepted the body as it is (a body it refuses is a failed push).
    assert_eq!(v("push_failure_time_seconds", &[]), 0.0);

    // A later `items` run replaces the group: the delta's last-run gauges stay (read back from
    // sync_runs), the items run's join them, the backlog (no longer estimated) goes.
    sqlx::query("UPDATE marketplace_sync_state SET backlog_orders = NULL WHERE tenant_id = $1")
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();
    let items_run = RunMetrics {
        command: "items",
        outcome: RunOutcome::Failed,
        duration: Duration::from_millis(1_250),
        finished_at: Utc::now(),
    };
    push_tenant(&http, &pushgateway, &store, &tenant_id, &items_run)
        .await
        .unwrap();
    let series = pushed_series(&http, &base, &id).await;
    let v = |name: &str, with: &[(&str, &str)]| value_of(&series, name, with);
    assert_eq!(
        v(
            "keybuzz_sync_last_run_outcome",
            &[("command", "items"), ("outcome", "failed")]
        ),
        1.0
    );
    assert_eq!(
        v(
            "keybuzz_sync_last_run_duration_seconds",
            &[("command", "items")]
        ),
        1.25
    );
    assert_eq!(
        v(
            "keybuzz_sync_last_run_outcome",
            &[("command", "delta"), ("outcome", "success")]
        ),
        1.0
    );
    assert!(
        !series.contains_key("keybuzz_sync_backlog_orders"),
        "{series:#?}"
    );

    // A Pushgateway that is not there: an error for the caller to log, quickly.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let nowhere = reqwest::Url::parse(&format!("http://{closed}")).unwrap();
    let err = push_tenant(&http, &nowhere, &store, &tenant_id, &items_run)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Pushgateway"), "{err}");

    let deleted = http
        .delete(format!("{base}/metrics/job/keybuzz-sync/tenant/{id}"))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    assert!(pushed_series(&http, &base, &id).await.is_empty());
}

#[sqlx::test]
async fn json_log_lines_carry_the_tenant_on_every_line_of_a_pass(pool: PgPool) {
    let sim = sim().await;
    seed(&sim);
    let dir = tempfile::tempdir().unwrap();
    write_tenant(dir.path(), &sim, "t1", "v0");
    let mut cmd = keybuzz(&sim, &pool, dir.path());
    cmd.env("KEYBUZZ_LOG_FORMAT", "json")
        .env("KEYBUZZ_LOG", "debug");
    let out = run(cmd, &["delta", "--tenant", "t1"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_no_secret(&out);

    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    let lines: Vec<serde_json::Map<String, Value>> = stderr
        .lines()
        .map(|l| match serde_json::from_str(l) {
            Ok(Value::Object(map)) => map,
            _ => panic!("not a JSON object: {l}"),
        })
        .collect();
    for line in &lines {
        assert!(
            line["level"].is_string() && line["message"].is_string(),
            "{line:?}"
        );
        assert!(
            line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line:?}"
        );
    }
    let spans = |line: &serde_json::Map<String, Value>| -> Vec<String> {
        line.get("spans")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    // The engine's pass span: `run_pass` today; the engine engineer is adding `pass` with
    // tenant and run_id.
    let in_pass = |line: &serde_json::Map<String, Value>| {
        spans(line).iter().any(|s| s == "run_pass" || s == "pass")
    };
    let inside: Vec<usize> = (0..lines.len()).filter(|&i| in_pass(&lines[i])).collect();
    assert!(
        inside.len() >= 5,
        "lines inside the pass: {}\n{stderr}",
        inside.len()
    );
    for &i in &inside {
        assert_eq!(
            lines[i].get("tenant"),
            Some(&Value::from("t1")),
            "{:?}",
            lines[i]
        );
    }
    // Between the pass's first and last line, every line of ours is the pass's (one tenant).
    let (first, last) = (inside[0], *inside.last().unwrap());
    for line in &lines[first..=last] {
        if line["target"]
            .as_str()
            .unwrap_or_default()
            .starts_with("keybuzz_sync")
        {
            assert_eq!(line.get("tenant"), Some(&Value::from("t1")), "{line:?}");
        }
    }
    assert!(
        inside
            .iter()
            .any(|&i| lines[i]["message"] == "pass finished"),
        "the pass's summary is inside it:\n{stderr}"
    );
    // From the moment its run is open ("pass started"), every line of the pass carries the
    // run's id too (only taking the lock and opening the run come before it).
    let pass_lines: Vec<_> = lines
        .iter()
        .filter(|l| spans(l).iter().any(|s| s == "pass"))
        .collect();
    let opened = pass_lines
        .iter()
        .position(|l| l["message"] == "pass started")
        .expect("a 'pass started' line");
    assert!(pass_lines[opened..].len() > 3, "{stderr}");
    for line in &pass_lines[opened..] {
        assert!(line.get("run_id").is_some_and(Value::is_i64), "{line:?}");
    }
    let finished = lines
        .iter()
        .find(|l| l["message"] == "pass finished")
        .expect("a 'pass finished' line");
    assert_eq!(finished["tenant"], "t1");
    assert_eq!(finished["orders"], 25);
    assert_eq!(finished["outcome"], "success");
    assert!(finished["duration_ms"].is_u64(), "{finished:?}");
}

#[sqlx::test]
async fn an_invalid_log_filter_exits_3_naming_the_variable(pool: PgPool) {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = reader(&sim, &pool, dir.path());
    cmd.env("KEYBUZZ_LOG", "info,keybuzz_sync=loud");
    let out = run(cmd, &["status", "--tenant", "t1"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("invalid KEYBUZZ_LOG filter") && text(&out).contains("loud"),
        "{}",
        text(&out)
    );
    for args in [&["history", "--help"][..], &["check", "--help"]] {
        let out = run(reader(&sim, &pool, dir.path()), args).await;
        assert!(out.status.success() && stdout(&out).contains("Usage"));
        assert_no_secret(&out);
    }
}
