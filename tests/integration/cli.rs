//! The binary as operators and the CronJob run it: exit codes, the lock, status output, and no
//! secret anywhere in what it prints.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use keybuzz_sync::model::TenantId;
use keybuzz_sync::store::PgStore;
use spapi_sim::SimHandle;
use sqlx::PgPool;

use crate::util::*;

const CLIENT_SECRET: &str = "sim-client-secret";
const DB_PASSWORD: &str = "db-pass-SECRET-5f2c";

/// A `postgres://` URL for the test's own database, with a password (trust auth ignores it).
pub(crate) fn database_url(pool: &PgPool) -> String {
    let o = pool.connect_options();
    format!(
        "postgres://{}:{DB_PASSWORD}@{}:{}/{}",
        o.get_username(),
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or("postgres")
    )
}

pub(crate) fn write_tenant(dir: &Path, sim: &SimHandle, id: &str, api: &str) {
    sim.grant(&refresh_token(id), SELLER);
    let body = serde_json::json!({
        "refreshToken": refresh_token(id),
        "region": "eu",
        "marketplaceIds": [MARKETPLACE_FR],
        "ordersApi": api,
    });
    std::fs::write(dir.join(format!("{id}.json")), body.to_string()).unwrap();
}

/// The binary with a clean environment pointing at the simulator and the test database.
pub(crate) fn keybuzz_process(
    sim: &SimHandle,
    pool: &PgPool,
    tenants: &Path,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_keybuzz-sync"));
    cmd.env_clear()
        .env("DATABASE_URL", database_url(pool))
        .env("KEYBUZZ_TENANTS_DIR", tenants)
        .env("LWA_CLIENT_ID", "sim-client-id")
        .env("LWA_CLIENT_SECRET", CLIENT_SECRET)
        .env("SPAPI_ENDPOINT", sim.base_url())
        .env("LWA_TOKEN_URL", sim.lwa_token_url())
        .env("KEYBUZZ_RETRY_BASE_MS", "5")
        .env("KEYBUZZ_LOG", "debug");
    cmd
}

pub(crate) fn keybuzz(sim: &SimHandle, pool: &PgPool, tenants: &Path) -> Command {
    Command::from_std(keybuzz_process(sim, pool, tenants))
}

/// Runs off the async runtime, which keeps serving the simulator meanwhile.
pub(crate) async fn run(mut cmd: Command, args: &[&str]) -> Output {
    cmd.args(args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub(crate) fn assert_no_secret(out: &Output) {
    let all = text(out);
    for secret in [CLIENT_SECRET, DB_PASSWORD, "refresh-", "Atza|"] {
        assert!(!all.contains(secret), "{secret:?} printed in:\n{all}");
    }
}

#[sqlx::test]
async fn delta_syncs_tenants_independently_and_status_keeps_the_backend_shape(pool: PgPool) {
    let sim = sim().await;
    sim.seed_orders(
        SELLER,
        25,
        3,
        chrono::Utc::now() - chrono::Duration::hours(1),
        chrono::Duration::days(3),
    );
    let dir = tempfile::tempdir().unwrap();
    write_tenant(dir.path(), &sim, "good", "2026-01-01");
    write_tenant(dir.path(), &sim, "legacy", "v0");
    write_tenant(dir.path(), &sim, "revoked", "v0");
    sim.revoke(&refresh_token("revoked"));

    let out = run(keybuzz(&sim, &pool, dir.path()), &["migrate"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = run(
        keybuzz(&sim, &pool, dir.path()),
        &["delta", "--all-tenants"],
    )
    .await;
    // A fleet run: one tenant needing re-authorization is that tenant's health (its lastError,
    // metrics, `check`), not a failed Job.
    assert_eq!(
        out.status.code(),
        Some(0),
        "one tenant failed, the fleet run did not:\n{}",
        text(&out)
    );
    assert!(text(&out).contains("must re-authorize"), "{}", text(&out));
    // Named explicitly, its failure is the command's.
    let named = run(
        keybuzz(&sim, &pool, dir.path()),
        &["delta", "--tenant", "revoked"],
    )
    .await;
    assert_eq!(named.status.code(), Some(1), "{}", text(&named));
    assert_no_secret(&named);
    assert_no_secret(&out);
    assert_eq!(
        order_count(&pool, "good").await,
        25,
        "other tenants continue"
    );
    assert_eq!(order_count(&pool, "legacy").await, 25);

    let out = run(
        keybuzz(&sim, &pool, dir.path()),
        &["status", "--tenant", "good", "--json"],
    )
    .await;
    assert!(out.status.success());
    assert_no_secret(&out);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["tenantId"], "good");
    assert_eq!(status["marketplace"], "AMAZON");
    let state = &status["syncState"];
    for key in ["lastUpdatedAfter", "lastPolledAt", "lastSuccessAt"] {
        let v = state[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {status}"));
        assert!(
            v.len() == 24 && v.ends_with('Z') && v.as_bytes()[19] == b'.',
            "{key}: {v} is JS toISOString form"
        );
    }
    assert!(state["lastError"].is_null());
    assert_eq!(status["counts"]["orders"], 25);
    assert!(status["counts"]["items"].as_i64().unwrap() >= 25);

    let out = run(
        keybuzz(&sim, &pool, dir.path()),
        &["status", "--tenant", "revoked", "--json"],
    )
    .await;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        status["syncState"]["lastError"]
            .as_str()
            .unwrap()
            .contains("re-authorize")
    );
    assert_no_secret(&out);

    let out = run(
        keybuzz(&sim, &pool, dir.path()),
        &["status", "--tenant", "good"],
    )
    .await;
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(
        human.contains("tenant good") && human.contains("25 orders"),
        "{human}"
    );

    // A second run over the same data is clean.
    let out = run(
        keybuzz(&sim, &pool, dir.path()),
        &["delta", "--tenant", "good", "--tenant", "legacy"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[sqlx::test]
async fn a_pass_already_running_elsewhere_exits_4_and_touches_nothing(pool: PgPool) {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    write_tenant(dir.path(), &sim, "busy", "2026-01-01");
    let store = PgStore::from_pool(pool.clone());
    let lock = store
        .try_lock_tenant(&TenantId::parse("busy").unwrap())
        .await
        .unwrap();

    let out = run(
        keybuzz(&sim, &pool, dir.path()),
        &["delta", "--tenant", "busy"],
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("already running"), "{}", text(&out));
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM sync_runs WHERE tenant_id = $1",
            "busy"
        )
        .await,
        0
    );
    assert_eq!(sim.stats().lwa_requests, 0);
    lock.release().await.unwrap();

    let out = run(
        keybuzz(&sim, &pool, dir.path()),
        &["delta", "--tenant", "busy"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[sqlx::test]
async fn configuration_errors_exit_3_and_name_the_problem(pool: PgPool) {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.json"),
        r#"{"refreshToken": "Atzr|refresh-broken-SECRET", "region": "moon", "marketplaceIds": ["A13V1IB3VIYZZH"]}"#,
    )
    .unwrap();
    let out = run(
        keybuzz(&sim, &pool, dir.path()),
        &["delta", "--tenant", "broken"],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("broken.json") && text(&out).contains("moon"),
        "{}",
        text(&out)
    );
    assert_no_secret(&out);
    // status tells the operator too.
    let out = run(
        keybuzz(&sim, &pool, dir.path()),
        &["status", "--tenant", "broken", "--json"],
    )
    .await;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let last_error = status["syncState"]["lastError"]
        .as_str()
        .unwrap_or_default();
    assert!(last_error.contains("moon"), "{status}");
    assert_eq!(status["lastRun"]["outcome"], "failed");

    let out = run(
        keybuzz(&sim, &pool, dir.path()),
        &["delta", "--tenant", "missing"],
    )
    .await;
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out).contains("missing.json"), "{}", text(&out));
    // A mistyped id is no tenant: nothing is recorded under it.
    for sql in [
        "SELECT count(*) FROM sync_runs WHERE tenant_id = $1",
        "SELECT count(*) FROM marketplace_sync_state WHERE tenant_id = $1",
    ] {
        assert_eq!(count(&pool, sql, "missing").await, 0, "{sql}");
    }

    let mut cmd = keybuzz(&sim, &pool, dir.path());
    cmd.env_remove("LWA_CLIENT_ID");
    let out = run(cmd, &["delta", "--all-tenants"]).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out).contains("LWA_CLIENT_ID"));

    // With --all-tenants a broken file fails alone: the others are synced, the broken tenant's
    // state says why, and the fleet run itself succeeded.
    write_tenant(dir.path(), &sim, "fine", "2026-01-01");
    std::fs::write(dir.path().join("not.a.tenant.json"), "{}").unwrap();
    let out = run(
        keybuzz(&sim, &pool, dir.path()),
        &["delta", "--all-tenants"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("broken.json") && text(&out).contains("not.a.tenant.json"));
    let synced = count(
        &pool,
        "SELECT count(*) FROM sync_runs WHERE tenant_id = $1 AND outcome = 'success'",
        "fine",
    )
    .await;
    assert_eq!(synced, 1);
    assert_no_secret(&out);

    // clap's own usage errors keep clap's code.
    let out = run(
        keybuzz(&sim, &pool, dir.path()),
        &["delta", "--tenant", "../etc/passwd"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = run(keybuzz(&sim, &pool, dir.path()), &["delta"]).await;
    assert_eq!(out.status.code(), Some(2));
}

#[sqlx::test(migrations = false)]
async fn migrate_is_required_idempotent_and_safe_in_parallel(pool: PgPool) {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    write_tenant(dir.path(), &sim, "t1", "2026-01-01");
    let out = run(
        keybuzz(&sim, &pool, dir.path()),
        &["delta", "--tenant", "t1"],
    )
    .await;
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out).contains("keybuzz-sync migrate"),
        "{}",
        text(&out)
    );

    let (a, b) = tokio::join!(
        run(keybuzz(&sim, &pool, dir.path()), &["migrate"]),
        run(keybuzz(&sim, &pool, dir.path()), &["migrate"])
    );
    assert!(
        a.status.success() && b.status.success(),
        "{}\n{}",
        text(&a),
        text(&b)
    );
    let out = run(keybuzz(&sim, &pool, dir.path()), &["migrate"]).await;
    assert!(out.status.success());
    let out = run(
        keybuzz(&sim, &pool, dir.path()),
        &["delta", "--tenant", "t1"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[sqlx::test]
async fn help_shows_no_secret_from_the_environment(pool: PgPool) {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["delta", "--help"],
        &["items", "--help"],
        &["status", "--help"],
    ] {
        let out = run(keybuzz(&sim, &pool, dir.path()), args).await;
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
        assert_no_secret(&out);
    }
}

#[sqlx::test]
async fn sigterm_fails_the_open_run_with_a_reason_and_releases_the_lock(pool: PgPool) {
    let sim = sim().await;
    sim.seed_orders(
        SELLER,
        5,
        3,
        chrono::Utc::now() - chrono::Duration::hours(1),
        chrono::Duration::days(1),
    );
    let dir = tempfile::tempdir().unwrap();
    write_tenant(dir.path(), &sim, "t1", "2026-01-01");
    // The first searchOrders never answers: the pass is in flight when the signal comes.
    sim.push_fault(spapi_sim::Fault {
        op: Some(spapi_sim::SimOp::SearchOrders),
        kind: spapi_sim::FaultKind::Hang,
        times: 1,
        skip: 0,
    });
    let child = keybuzz_process(&sim, &pool, dir.path())
        .args(["delta", "--tenant", "t1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until the simulator has seen the request that hangs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !sim
        .requests()
        .iter()
        .any(|r| r.op == spapi_sim::SimOp::SearchOrders)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the pass never reached searchOrders"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("terminated by SIGTERM"),
        "{}",
        text(&out)
    );
    let (outcome, error): (String, String) =
        sqlx::query_as("SELECT outcome, error FROM sync_runs WHERE tenant_id = 't1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(outcome, "failed");
    assert!(error.contains("SIGTERM"));
    assert!(last_error(&pool, "t1").await.unwrap().contains("SIGTERM"));

    // The lock went with the process: the next pass runs.
    let out = run(
        keybuzz(&sim, &pool, dir.path()),
        &["delta", "--tenant", "t1"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(order_count(&pool, "t1").await, 5);
}
