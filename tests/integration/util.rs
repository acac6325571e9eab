//! Helpers shared by the integration tests: a simulator, tenants, settings, and a pass runner.

use std::time::Duration;

use chrono::{DateTime, Utc};
use keybuzz_sync::config::{
    AppCredentials, Endpoints, RetryPolicy, SyncConfig, SyncSettings, TenantConfig,
};
use keybuzz_sync::model::{OrdersApi, PassKind, PassReport, Region, Secret, TenantId};
use keybuzz_sync::store::PgStore;
use keybuzz_sync::sync::{Connector, TenantSource, run_pass};
use keybuzz_sync::{Error, Result};
use spapi_sim::{SimConfig, SimHandle};
use sqlx::{PgPool, Row};

pub const MARKETPLACE_FR: &str = "A13V1IB3VIYZZH";
pub const SELLER: &str = "SELLER-1";

/// A simulator whose rates are 1000x Amazon's (bursts unchanged), so paced tests run fast.
pub async fn sim() -> SimHandle {
    SimHandle::start(SimConfig {
        rate_scale: 1000.0,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

pub fn refresh_token(tenant: &str) -> String {
    format!("Atzr|refresh-{tenant}-SECRET")
}

/// A tenant whose refresh token the simulator grants for `SELLER`, asking for every marketplace
/// the seller has orders in (seed first).
pub fn tenant(sim: &SimHandle, id: &str, api: OrdersApi) -> TenantConfig {
    let token = refresh_token(id);
    sim.grant(&token, SELLER);
    let mut marketplace_ids: Vec<String> = sim
        .orders(SELLER)
        .into_iter()
        .map(|o| o.marketplace_id)
        .collect();
    marketplace_ids.sort();
    marketplace_ids.dedup();
    if marketplace_ids.is_empty() {
        marketplace_ids.push(MARKETPLACE_FR.to_owned());
    }
    TenantConfig {
        id: TenantId::parse(id).unwrap(),
        refresh_token: Secret::new(token),
        region: Region::Eu,
        marketplace_ids,
        orders_api: api,
        include_pii: false,
        initial_import: Default::default(),
    }
}

/// Quick retries so failure tests end in well under a second.
pub fn settings() -> SyncSettings {
    SyncSettings {
        request_timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(40),
            max_total_delay: Duration::from_secs(2),
        },
        ..SyncSettings::default()
    }
}

/// The configuration a command would build, pointing at the simulator.
pub fn config(sim: &SimHandle, settings: &SyncSettings) -> SyncConfig {
    SyncConfig {
        tenants_dir: std::env::temp_dir(),
        credentials: AppCredentials {
            client_id: "sim-client-id".into(),
            client_secret: Secret::new("sim-client-secret"),
        },
        endpoints: Endpoints::new(Some(&sim.base_url()), Some(&sim.lwa_token_url())).unwrap(),
        settings: settings.clone(),
    }
}

/// A tenant's source, with its own HTTP client, as `commands::sync` builds it.
pub fn source(sim: &SimHandle, tenant: &TenantConfig, settings: &SyncSettings) -> TenantSource {
    Connector::new(&config(sim, settings), None)
        .unwrap()
        .source(tenant)
}

/// One delta pass with a fresh client, as one CronJob run does.
pub async fn delta(
    sim: &SimHandle,
    pool: &PgPool,
    tenant: &TenantConfig,
    now: DateTime<Utc>,
) -> Result<PassReport> {
    delta_with(sim, pool, tenant, &settings(), now).await
}

pub async fn delta_with(
    sim: &SimHandle,
    pool: &PgPool,
    tenant: &TenantConfig,
    settings: &SyncSettings,
    now: DateTime<Utc>,
) -> Result<PassReport> {
    let store = PgStore::from_pool(pool.clone());
    run_pass(&store, &source(sim, tenant, settings), PassKind::Delta, now).await
}

pub fn expect_ok(result: Result<PassReport>) -> PassReport {
    match result {
        Ok(r) => r,
        Err(e) => panic!("pass failed: {e}"),
    }
}

pub fn expect_err(result: Result<PassReport>) -> Error {
    match result {
        Ok(r) => panic!("pass should have failed, got {r:?}"),
        Err(e) => e,
    }
}

pub async fn cursor(pool: &PgPool, tenant: &str) -> Option<DateTime<Utc>> {
    sqlx::query_scalar("SELECT cursor FROM marketplace_sync_state WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_optional(pool)
        .await
        .unwrap()
        .flatten()
}

pub async fn last_error(pool: &PgPool, tenant: &str) -> Option<String> {
    sqlx::query_scalar("SELECT last_error FROM marketplace_sync_state WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_optional(pool)
        .await
        .unwrap()
        .flatten()
}

pub async fn count(pool: &PgPool, sql: &'static str, tenant: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(tenant)
        .fetch_one(pool)
        .await
        .unwrap()
}

pub async fn order_count(pool: &PgPool, tenant: &str) -> i64 {
    count(
        pool,
        "SELECT count(*) FROM orders WHERE tenant_id = $1",
        tenant,
    )
    .await
}

pub async fn item_count(pool: &PgPool, tenant: &str) -> i64 {
    count(
        pool,
        "SELECT count(*) FROM order_items WHERE tenant_id = $1",
        tenant,
    )
    .await
}

/// Every row of a tenant, as text, to compare whole states.
pub async fn snapshot(pool: &PgPool, tenant: &str) -> Vec<String> {
    let orders = sqlx::query(
        "SELECT o::text AS t FROM orders o WHERE tenant_id = $1 ORDER BY external_order_id",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .unwrap();
    let items = sqlx::query(
        "SELECT i::text AS t FROM order_items i WHERE tenant_id = $1 ORDER BY external_order_id, order_item_id",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .unwrap();
    orders
        .iter()
        .chain(items.iter())
        .map(|r| r.get::<String, _>("t"))
        .collect()
}

/// The normalized columns of a tenant's orders and items, for comparing two tenants.
pub async fn normalized(pool: &PgPool, tenant: &str) -> (Vec<String>, Vec<String>) {
    let orders = sqlx::query(
        // concat_ws would drop NULLs, hiding NULL-vs-0 differences: spell them out.
        "SELECT concat_ws('|', external_order_id, marketplace, coalesce(marketplace_id, '∅'), status,
                purchase_date, last_update_date, coalesce(fulfillment_channel, '∅'),
                coalesce(order_total_amount::numeric(20,4)::text, '∅'), coalesce(order_total_currency, '∅')) AS t
           FROM orders WHERE tenant_id = $1 ORDER BY external_order_id",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .unwrap();
    let items = sqlx::query(
        "SELECT concat_ws('|', external_order_id, order_item_id, coalesce(asin, '∅'), coalesce(seller_sku, '∅'),
                coalesce(title, '∅'), quantity_ordered, coalesce(quantity_shipped::text, '∅'),
                coalesce(item_price_amount::numeric(20,4)::text, '∅'), coalesce(item_tax_amount::numeric(20,4)::text, '∅'),
                coalesce(shipping_price_amount::numeric(20,4)::text, '∅'),
                coalesce(promotion_discount_amount::numeric(20,4)::text, '∅'), coalesce(currency, '∅')) AS t
           FROM order_items WHERE tenant_id = $1 ORDER BY external_order_id, order_item_id",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .unwrap();
    let text =
        |rows: Vec<sqlx::postgres::PgRow>| rows.iter().map(|r| r.get::<String, _>("t")).collect();
    (text(orders), text(items))
}
