//! How fast a pass is when Amazon's rate limits are out of the way: the client's own cost
//! (HTTP, JSON, mapping, Postgres writes) per order, and the process's peak memory.
//!
//! `cargo bench --bench pass` runs 5,000 orders per API version against the simulator with its
//! rates scaled by 1e6 (bursts unchanged), in a scratch database on `DATABASE_URL`'s server.
//! Under `cargo test` (no `--bench` argument) it runs a 200-order smoke version.

use std::time::{Duration, Instant};

use chrono::Utc;
use keybuzz_sync::config::{
    AppCredentials, Endpoints, RetryPolicy, SyncConfig, SyncSettings, TenantConfig,
};
use keybuzz_sync::model::{OrdersApi, PassKind, PassReport, Region, Secret, TenantId};
use keybuzz_sync::store::PgStore;
use keybuzz_sync::sync::{Connector, run_pass};
use spapi_sim::{SimConfig, SimHandle};
use sqlx::{Connection, PgConnection};

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

async fn pass(
    sim: &SimHandle,
    store: &PgStore,
    tenant: &TenantConfig,
    settings: &SyncSettings,
) -> PassReport {
    let config = SyncConfig {
        tenants_dir: std::env::temp_dir(),
        credentials: AppCredentials {
            client_id: "sim-client-id".into(),
            client_secret: Secret::new("sim-client-secret"),
        },
        endpoints: Endpoints::new(Some(&sim.base_url()), Some(&sim.lwa_token_url())).unwrap(),
        settings: settings.clone(),
    };
    let source = Connector::new(&config, None).unwrap().source(tenant);
    run_pass(store, &source, PassKind::Delta, Utc::now())
        .await
        .expect("pass succeeds")
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let orders: usize = if full { 5_000 } else { 200 };
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("pass bench: DATABASE_URL is not set; skipped");
        return;
    };
    let db = format!("keybuzz_bench_{}", std::process::id());
    let mut admin = PgConnection::connect(&url)
        .await
        .expect("DATABASE_URL reachable");
    sqlx::raw_sql(format!("CREATE DATABASE {db}").leak() as &'static str)
        .execute(&mut admin)
        .await
        .unwrap();
    let base = url.split('?').next().unwrap();
    let bench_url = format!("{}/{db}", &base[..base.rfind('/').unwrap()]);
    let store = PgStore::connect(&Secret::new(bench_url.clone()), 4)
        .await
        .unwrap();
    store.migrate().await.unwrap();

    let sim = SimHandle::start(SimConfig {
        rate_scale: 1e6,
        items_page_size: 100,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let seeded = sim.seed_orders(
        "S",
        orders,
        1,
        Utc::now() - chrono::Duration::hours(1),
        chrono::Duration::days(25),
    );
    let items: usize = seeded.iter().map(|o| o.items.len()).sum();
    let settings = SyncSettings {
        items_budget: u32::MAX,
        retry: RetryPolicy {
            base_delay: Duration::from_millis(10),
            ..RetryPolicy::default()
        },
        ..SyncSettings::default()
    };
    println!("pass bench: {orders} orders, {items} items");
    for api in [OrdersApi::V2026, OrdersApi::V0] {
        let id = format!("bench-{}", api.as_str().replace('.', "-"));
        let token = format!("Atzr|{id}");
        sim.grant(&token, "S");
        let tenant = TenantConfig {
            id: TenantId::parse(&id).unwrap(),
            refresh_token: Secret::new(token),
            region: Region::Eu,
            marketplace_ids: vec![spapi_sim::SEED_MARKETPLACE.to_owned()],
            orders_api: api,
            include_pii: false,
            initial_import: Default::default(),
        };
        let started = Instant::now();
        let first = pass(&sim, &store, &tenant, &settings).await;
        let first_time = started.elapsed();
        let wide = SyncSettings {
            overlap: chrono::Duration::days(40),
            ..settings.clone()
        };
        let started = Instant::now();
        let again = pass(&sim, &store, &tenant, &wide).await;
        let again_time = started.elapsed();
        println!(
            "  {:>10}: first pass {:>7.2} s ({:>6.0} orders/s, {} requests); re-read of the same orders {:>6.2} s ({} rows changed)",
            api.as_str(),
            first_time.as_secs_f64(),
            first.counts.orders as f64 / first_time.as_secs_f64(),
            first.api_calls,
            again_time.as_secs_f64(),
            again.counts.orders + again.counts.items,
        );
        assert_eq!(first.counts.orders as usize, orders);
        assert_eq!(again.counts.orders, 0);
    }
    if let Some(mib) = peak_rss_mib() {
        println!("  peak RSS of the whole process (simulator included): {mib:.0} MiB");
    }
    drop(store);
    sqlx::raw_sql(format!("DROP DATABASE {db} WITH (FORCE)").leak() as &'static str)
        .execute(&mut admin)
        .await
        .unwrap();
}
