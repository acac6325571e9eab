//! A whole import through reports, as an operator runs it: `keybuzz-sync backfill --via reports
//! --wait` (the release binary, in a child process so that its peak memory is its own) against
//! the simulator, with Amazon's documented Reports API rates and a report generation time
//! scaled down from a realistic one.
//!
//! `cargo bench --bench reports` runs two scenarios: 10,000 orders in one 30-day window, and
//! 100,000 orders over a year (13 windows). Amazon takes "about 3 or 5 minutes" per report when
//! healthy (REPORTS.md), and may process a seller's reports one after another: the simulator
//! takes 2 s per report, one at a time per seller, standing for 4 minutes (a time scale of 120;
//! the client's polling interval of 1 s stands for 2 minutes). The client's own work (download,
//! gunzip, XML, database) is not scaled. The output gives the measured time, the same at real
//! generation time, and the Orders API at Amazon's real rates, computed from the rates.
//!
//! Under `cargo test` (no `--bench` argument) it runs a small smoke version of both.

use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use keybuzz_sync::model::{Secret, amazon_time};
use keybuzz_sync::store::PgStore;
use spapi_sim::{SimConfig, SimHandle};
use sqlx::{Connection, PgConnection};

/// Amazon's time per report that the run's generation time stands for.
const REAL_GENERATION: Duration = Duration::from_secs(240);
/// The run's generation time per report.
const SCALED_GENERATION: Duration = Duration::from_secs(2);

struct Scenario {
    name: &'static str,
    orders: usize,
    days: i64,
}

/// Peak resident memory of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn hours(secs: f64) -> String {
    if secs >= 3600.0 {
        format!("{:.1} h", secs / 3600.0)
    } else {
        format!("{:.1} min", secs / 60.0)
    }
}

/// The Orders API at Amazon's documented rates, computed (REPORTS.md, "Time, worked out"):
/// 100 orders a page; v2026 searchOrders 20 pages at once then one every 178.6 s (items
/// inline); v0 getOrders 20 pages then one a minute, plus getOrderItems for each order, 30 at
/// once then one every 2 s.
fn orders_api_secs(orders: usize) -> (f64, f64) {
    let pages = orders.div_ceil(100) as f64;
    let v2026 = (pages - 20.0).max(0.0) * (1.0 / 0.0056);
    let v0_pages = (pages - 20.0).max(0.0) * (1.0 / 0.0167);
    let v0_items = (orders as f64 - 30.0).max(0.0) * 2.0;
    (v2026, v0_pages.max(v0_items))
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("reports bench: DATABASE_URL is not set; skipped");
        return;
    };
    let scenarios = if full {
        vec![
            Scenario {
                name: "10,000 orders, one 30-day window",
                orders: 10_000,
                days: 29,
            },
            Scenario {
                name: "100,000 orders over a year",
                orders: 100_000,
                days: 365,
            },
        ]
    } else {
        vec![
            Scenario {
                name: "smoke: 300 orders, one window",
                orders: 300,
                days: 29,
            },
            Scenario {
                name: "smoke: 1,000 orders over 60 days",
                orders: 1_000,
                days: 60,
            },
        ]
    };
    let generation = if full {
        SCALED_GENERATION
    } else {
        Duration::from_millis(50)
    };
    println!(
        "reports bench: report generation {:.1} s per report, one at a time per seller (standing for {} min: time scale {:.0}); Reports API at Amazon's documented rates",
        generation.as_secs_f64(),
        REAL_GENERATION.as_secs() / 60,
        REAL_GENERATION.as_secs_f64() / SCALED_GENERATION.as_secs_f64()
    );

    let db = format!("keybuzz_bench_reports_{}", std::process::id());
    let mut admin = PgConnection::connect(&url)
        .await
        .expect("DATABASE_URL reachable");
    sqlx::raw_sql(format!("CREATE DATABASE {db}").leak() as &'static str)
        .execute(&mut admin)
        .await
        .unwrap();
    let base = url.split('?').next().unwrap();
    let bench_url = format!("{}/{db}", &base[..base.rfind('/').unwrap()]);
    let store = PgStore::connect(&Secret::new(bench_url.clone()), 2)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let mut check = PgConnection::connect(&bench_url).await.unwrap();

    for (n, scenario) in scenarios.iter().enumerate() {
        let sim = SimHandle::start(SimConfig {
            report_generation: generation,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let seller = format!("S{n}");
        let tenant = format!("bench-{n}");
        let now = Utc::now().trunc_subsecs(0);
        let seeded = sim.seed_orders(
            &seller,
            scenario.orders,
            n as u64 + 1,
            now - chrono::Duration::hours(2),
            chrono::Duration::days(scenario.days),
        );
        let items: usize = seeded.iter().map(|o| o.items.len()).sum();
        let token = format!("Atzr|{tenant}");
        sim.grant(&token, &seller);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(format!("{tenant}.json")),
            serde_json::json!({
                "refreshToken": token,
                "region": "eu",
                "marketplaceIds": [spapi_sim::SEED_MARKETPLACE],
            })
            .to_string(),
        )
        .unwrap();
        let since = amazon_time(now - chrono::Duration::days(scenario.days + 1));
        let until = amazon_time(now - chrono::Duration::hours(1));
        let started = Instant::now();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keybuzz-sync"))
            .env_clear()
            .env("DATABASE_URL", &bench_url)
            .env("KEYBUZZ_TENANTS_DIR", dir.path())
            .env("LWA_CLIENT_ID", "sim-client-id")
            .env("LWA_CLIENT_SECRET", "sim-client-secret")
            .env("SPAPI_ENDPOINT", sim.base_url())
            .env("LWA_TOKEN_URL", sim.lwa_token_url())
            .env("KEYBUZZ_LOG", "warn")
            .args([
                "backfill",
                "--tenant",
                &tenant,
                "--via",
                "reports",
                "--since",
                &since,
                "--until",
                &until,
                "--wait",
                "--report-poll-secs",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the keybuzz-sync binary runs");
        let pid = child.id();
        let mut peak = 0;
        // Sampled every 20 ms: an import's memory is flat after its first batch.
        let status = loop {
            if let Some(kib) = peak_rss_kib(pid) {
                peak = peak.max(kib);
            }
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let elapsed = started.elapsed();
        assert!(status.success(), "{}: the import failed", scenario.name);
        let (stored_orders, stored_items): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM orders WHERE tenant_id = $1),
                    (SELECT count(*) FROM order_items WHERE tenant_id = $1)
                  + (SELECT count(*) FROM report_staged_items WHERE tenant_id = $1)",
        )
        .bind(&tenant)
        .fetch_one(&mut check)
        .await
        .unwrap();
        assert_eq!(stored_orders as usize, scenario.orders, "{}", scenario.name);
        assert_eq!(stored_items as usize, items, "{}", scenario.name);
        let windows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM report_jobs WHERE tenant_id = $1")
                .bind(&tenant)
                .fetch_one(&mut check)
                .await
                .unwrap();
        // At real generation time: the reports' generation, one after another, replaces the
        // scaled one; the client's work overlaps it except for the last report's import.
        let scaled_amazon = generation.as_secs_f64() * windows as f64;
        let client = (elapsed.as_secs_f64() - scaled_amazon).max(0.0);
        let real = REAL_GENERATION.as_secs_f64() * windows as f64 + client;
        let (v2026, v0) = orders_api_secs(scenario.orders);
        println!(
            "  {}: {} orders, {items} items, {windows} report(s): {:.1} s measured, peak RSS {:.0} MiB; \
             at real generation time about {} (Amazon {} + client {:.0} s); Orders API at Amazon's rates: v2026 {}, v0 {}",
            scenario.name,
            stored_orders,
            elapsed.as_secs_f64(),
            peak as f64 / 1024.0,
            hours(real),
            hours(REAL_GENERATION.as_secs_f64() * windows as f64),
            client,
            hours(v2026),
            hours(v0),
        );
    }
    drop(check);
    drop(store);
    sqlx::raw_sql(format!("DROP DATABASE {db} WITH (FORCE)").leak() as &'static str)
        .execute(&mut admin)
        .await
        .unwrap();
}
