//! Faults and lifetimes for the client's reliability work, over real HTTP: repeating page tokens,
//! huge bodies with and without Content-Length, late indexing, page-token and access-token expiry.
//! The only sleeps wait past a lifetime the test itself configured (about a second).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::*;
use serde_json::Value;
use spapi_sim::{Fault, FaultKind, SEED_MARKETPLACE, SimConfig, SimOp, SimStatus};

fn fault(op: SimOp, kind: FaultKind) -> Fault {
    Fault {
        op: Some(op),
        kind,
        times: 1,
        skip: 0,
    }
}

fn ids(orders: &Value, field: &str) -> Vec<String> {
    orders
        .as_array()
        .expect("array")
        .iter()
        .map(|o| o[field].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn repeat_page_token_on_a_first_page_loops_forever() {
    let sim = sim_with(SimConfig::default()).await;
    sim.seed_orders(
        SELLER,
        30,
        9,
        Utc::now() - TimeDelta::hours(1),
        TimeDelta::days(5),
    );
    sim.set_bucket(SimOp::SearchOrders, 1000.0, 1000);
    let token = access_token(&sim, REFRESH).await;
    let after = ago(TimeDelta::days(30));
    let query = [
        ("createdAfter", after.as_str()),
        ("maxResultsPerPage", "10"),
    ];
    sim.push_fault(fault(SimOp::SearchOrders, FaultKind::RepeatPageToken));
    let first = get_json(&sim, &token, "/orders/2026-01-01/orders", &query).await;
    let first_ids = ids(&first["orders"], "orderId");
    let repeating = first["pagination"]["nextToken"]
        .as_str()
        .expect("a next token")
        .to_string();
    // The fault is used up; the token alone keeps the loop going.
    for _ in 0..3 {
        let mut paged = query.to_vec();
        paged.push(("paginationToken", repeating.as_str()));
        let page = get_json(&sim, &token, "/orders/2026-01-01/orders", &paged).await;
        assert_eq!(ids(&page["orders"], "orderId"), first_ids);
        assert_eq!(page["pagination"]["nextToken"], repeating.as_str());
    }
}

#[tokio::test]
async fn repeat_page_token_echoes_the_sent_token_for_v0_orders_and_items() {
    let sim = sim_with(SimConfig::default()).await;
    let seeded = sim.seed_orders(
        SELLER,
        30,
        9,
        Utc::now() - TimeDelta::hours(1),
        TimeDelta::days(5),
    );
    let token = access_token(&sim, REFRESH).await;
    let after = ago(TimeDelta::days(30));
    let filters = [
        ("MarketplaceIds", SEED_MARKETPLACE),
        ("CreatedAfter", after.as_str()),
        ("MaxResultsPerPage", "10"),
    ];
    let first = get_json(&sim, &token, "/orders/v0/orders", &filters).await;
    let next = first["payload"]["NextToken"].as_str().unwrap().to_string();
    sim.push_fault(fault(SimOp::GetOrdersV0, FaultKind::RepeatPageToken));
    let mut paged = filters.to_vec();
    paged.push(("NextToken", next.as_str()));
    let second = get_json(&sim, &token, "/orders/v0/orders", &paged).await;
    assert_eq!(second["payload"]["NextToken"], next.as_str());
    // Page 2's content is still page 2: only the token lies.
    let first_ids: BTreeSet<String> = ids(&first["payload"]["Orders"], "AmazonOrderId")
        .into_iter()
        .collect();
    let second_ids = ids(&second["payload"]["Orders"], "AmazonOrderId");
    assert_eq!(second_ids.len(), 10);
    assert!(second_ids.iter().all(|id| !first_ids.contains(id)));

    // getOrderItems: a first page gets the repeating token, which keeps serving items 1..5.
    let big = seeded
        .iter()
        .find(|o| o.items.len() > 5)
        .expect("a big order");
    let path = format!("/orders/v0/orders/{}/orderItems", big.order_id);
    sim.push_fault(fault(SimOp::GetOrderItemsV0, FaultKind::RepeatPageToken));
    let items = get_json(&sim, &token, &path, &[]).await;
    let repeating = items["payload"]["NextToken"].as_str().unwrap().to_string();
    let again = get_json(&sim, &token, &path, &[("NextToken", repeating.as_str())]).await;
    assert_eq!(again["payload"]["NextToken"], repeating.as_str());
    assert_eq!(
        ids(&again["payload"]["OrderItems"], "OrderItemId"),
        ids(&items["payload"]["OrderItems"], "OrderItemId")
    );
}

/// Reads a body to the end without keeping it; returns its length.
async fn drain(mut response: reqwest::Response) -> u64 {
    let mut total = 0;
    while let Some(chunk) = response.chunk().await.expect("body chunk") {
        total += chunk.len() as u64;
    }
    total
}

#[tokio::test]
async fn huge_bodies_with_and_without_content_length() {
    let sim = sim_with(SimConfig::default()).await;
    let token = access_token(&sim, REFRESH).await;
    let query = [
        ("MarketplaceIds", SEED_MARKETPLACE),
        ("CreatedAfter", "2026-01-01T00:00:00Z"),
    ];
    const SIZE: u64 = 12 * 1024 * 1024 + 7;
    sim.push_fault(fault(SimOp::GetOrdersV0, FaultKind::HugeBody(SIZE)));
    let sized = get(&sim, &token, "/orders/v0/orders", &query).await;
    assert_eq!(sized.status(), 200);
    assert_eq!(sized.content_length(), Some(SIZE));
    assert_eq!(drain(sized).await, SIZE);

    sim.push_fault(fault(SimOp::SearchOrders, FaultKind::HugeBodyChunked(SIZE)));
    let chunked = get(
        &sim,
        &token,
        "/orders/2026-01-01/orders",
        &[("createdAfter", "2026-01-01T00:00:00Z")],
    )
    .await;
    assert_eq!(chunked.status(), 200);
    assert_eq!(chunked.content_length(), None);
    assert!(chunked.headers().get("content-length").is_none());
    assert_eq!(drain(chunked).await, SIZE);

    // A small one parses: the bytes are real JSON, shaped like the answer.
    sim.push_fault(fault(SimOp::GetOrdersV0, FaultKind::HugeBody(5000)));
    let small: Value = get(&sim, &token, "/orders/v0/orders", &query)
        .await
        .json()
        .await
        .expect("valid JSON");
    assert!(!small["payload"]["Orders"].as_array().unwrap().is_empty());
    assert!(sim.requests().iter().all(|r| r.status == 200));
}

#[tokio::test]
async fn late_indexed_versions_stay_invisible_to_searches_until_indexed() {
    let sim = sim_with(SimConfig::default()).await;
    let mut order = sim
        .seed_orders(
            SELLER,
            1,
            3,
            Utc::now() - TimeDelta::hours(3),
            TimeDelta::hours(1),
        )
        .remove(0);
    order.status = SimStatus::Unshipped;
    order.last_update_date = whole(Utc::now() - TimeDelta::hours(2));
    sim.upsert_order(SELLER, order.clone());
    let token = access_token(&sim, REFRESH).await;
    let after = ago(TimeDelta::days(1));
    let v0_query = [
        ("MarketplaceIds", SEED_MARKETPLACE),
        ("LastUpdatedAfter", after.as_str()),
    ];
    let v2026_query = [
        ("lastUpdatedAfter", after.as_str()),
        ("includedData", "FULFILLMENT"),
    ];

    let mut shipped = order.clone();
    shipped.status = SimStatus::Shipped;
    for item in &mut shipped.items {
        item.quantity_shipped = item.quantity_ordered;
    }
    shipped.last_update_date = whole(Utc::now() - TimeDelta::hours(1));
    sim.upsert_order_indexed_late(SELLER, shipped.clone(), Duration::from_secs(3600));

    // Searches still see the Unshipped version, although the update is an hour old.
    let v0 = get_json(&sim, &token, "/orders/v0/orders", &v0_query).await;
    let orders = v0["payload"]["Orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["OrderStatus"], "Unshipped");
    let v2026 = get_json(&sim, &token, "/orders/2026-01-01/orders", &v2026_query).await;
    assert_eq!(
        v2026["orders"][0]["fulfillment"]["fulfillmentStatus"],
        "UNSHIPPED"
    );
    // A lookup by id sees the new version at once.
    let direct = get_json(
        &sim,
        &token,
        &format!("/orders/2026-01-01/orders/{}", order.order_id),
        &[("includedData", "FULFILLMENT")],
    )
    .await;
    assert_eq!(
        direct["order"]["fulfillment"]["fulfillmentStatus"],
        "SHIPPED"
    );

    // A brand-new order indexed late is simply absent from searches.
    let mut fresh = order.clone();
    fresh.order_id = "405-0000000-0000001".into();
    fresh.indexed_at = Some(Utc::now() + TimeDelta::hours(1));
    fresh.previous = None;
    sim.upsert_order(SELLER, fresh);
    let v0 = get_json(&sim, &token, "/orders/v0/orders", &v0_query).await;
    assert_eq!(v0["payload"]["Orders"].as_array().unwrap().len(), 1);

    // Once indexed (here: indexed_at moved into the past), the new version shows.
    let mut indexed = sim
        .orders(SELLER)
        .into_iter()
        .find(|o| o.order_id == order.order_id)
        .unwrap();
    assert_eq!(indexed.previous.as_deref(), Some(&order));
    indexed.indexed_at = Some(Utc::now() - TimeDelta::seconds(1));
    sim.upsert_order(SELLER, indexed);
    let v0 = get_json(&sim, &token, "/orders/v0/orders", &v0_query).await;
    let orders = v0["payload"]["Orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["OrderStatus"], "Shipped");
}

#[tokio::test]
async fn page_tokens_expire_after_the_configured_lifetimes() {
    let sim = sim_with(SimConfig {
        page_token_ttl_v2026: Some(Duration::from_secs(1)),
        page_token_ttl_v0: Some(Duration::from_secs(1)),
        ..SimConfig::default()
    })
    .await;
    sim.seed_orders(
        SELLER,
        30,
        9,
        Utc::now() - TimeDelta::hours(1),
        TimeDelta::days(5),
    );
    sim.set_bucket(SimOp::SearchOrders, 1000.0, 1000);
    let token = access_token(&sim, REFRESH).await;
    let after = ago(TimeDelta::days(30));
    let v2026 = [
        ("createdAfter", after.as_str()),
        ("maxResultsPerPage", "10"),
    ];
    let v0 = [
        ("MarketplaceIds", SEED_MARKETPLACE),
        ("CreatedAfter", after.as_str()),
        ("MaxResultsPerPage", "10"),
    ];
    let page = get_json(&sim, &token, "/orders/2026-01-01/orders", &v2026).await;
    let v2026_token = page["pagination"]["nextToken"]
        .as_str()
        .unwrap()
        .to_string();
    let page = get_json(&sim, &token, "/orders/v0/orders", &v0).await;
    let v0_token = page["payload"]["NextToken"].as_str().unwrap().to_string();
    // Fresh tokens work.
    let mut paged = v2026.to_vec();
    paged.push(("paginationToken", v2026_token.as_str()));
    assert_eq!(
        get(&sim, &token, "/orders/2026-01-01/orders", &paged)
            .await
            .status(),
        200
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, code, text) =
        error_of(get(&sim, &token, "/orders/2026-01-01/orders", &paged).await).await;
    assert_eq!((status, code.as_str()), (400, "InvalidInput"));
    assert!(text.contains("paginationToken has expired"), "{text}");
    let mut paged = v0.to_vec();
    paged.push(("NextToken", v0_token.as_str()));
    let (status, _, text) = error_of(get(&sim, &token, "/orders/v0/orders", &paged).await).await;
    assert_eq!(status, 400);
    assert!(text.contains("NextToken has expired"), "{text}");
}

#[tokio::test]
async fn v0_tokens_live_forever_by_default() {
    let sim = sim_with(SimConfig {
        page_token_ttl_v2026: Some(Duration::from_millis(1)),
        ..SimConfig::default()
    })
    .await;
    sim.seed_orders(
        SELLER,
        30,
        9,
        Utc::now() - TimeDelta::hours(1),
        TimeDelta::days(5),
    );
    let token = access_token(&sim, REFRESH).await;
    let after = ago(TimeDelta::days(30));
    let v0 = [
        ("MarketplaceIds", SEED_MARKETPLACE),
        ("CreatedAfter", after.as_str()),
        ("MaxResultsPerPage", "10"),
    ];
    let page = get_json(&sim, &token, "/orders/v0/orders", &v0).await;
    let next = page["payload"]["NextToken"].as_str().unwrap().to_string();
    // Outlives the (tiny) v2026 lifetime: v0 has its own, unlimited by default.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut paged = v0.to_vec();
    paged.push(("NextToken", next.as_str()));
    assert_eq!(
        get(&sim, &token, "/orders/v0/orders", &paged)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn short_access_token_lifetimes_are_advertised_and_enforced() {
    let thirty = sim_with(SimConfig {
        access_token_ttl: Duration::from_secs(30),
        ..SimConfig::default()
    })
    .await;
    assert_eq!(lwa_body(&thirty, REFRESH).await["expires_in"], 30);
    let fractional = sim_with(SimConfig {
        access_token_ttl: Duration::from_millis(1500),
        ..SimConfig::default()
    })
    .await;
    assert_eq!(lwa_body(&fractional, REFRESH).await["expires_in"], 2);

    let sim = sim_with(SimConfig {
        access_token_ttl: Duration::from_secs(1),
        ..SimConfig::default()
    })
    .await;
    let body = lwa_body(&sim, REFRESH).await;
    assert_eq!(body["expires_in"], 1);
    let token = body["access_token"].as_str().unwrap().to_string();
    let query = [
        ("MarketplaceIds", SEED_MARKETPLACE),
        ("CreatedAfter", "2026-01-01T00:00:00Z"),
    ];
    assert_eq!(
        get(&sim, &token, "/orders/v0/orders", &query)
            .await
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, code, text) = error_of(get(&sim, &token, "/orders/v0/orders", &query).await).await;
    assert_eq!((status, code.as_str()), (403, "Unauthorized"));
    assert!(text.contains("has expired"), "{text}");
}
