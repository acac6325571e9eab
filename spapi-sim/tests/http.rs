//! End-to-end tests of the simulator over real HTTP (reqwest against `SimHandle::start`).
//! No test sleeps to synchronise: every assertion follows the response it depends on.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use reqwest::{Client, Response};
use serde_json::Value;
use spapi_sim::{Fault, FaultKind, SEED_MARKETPLACE, SimConfig, SimHandle, SimOp, SimStatus};

const SELLER: &str = "A1SELLER";
const REFRESH: &str = "Atzr|refresh-one";

async fn sim() -> SimHandle {
    let sim = SimHandle::start(SimConfig::default())
        .await
        .expect("start sim");
    sim.grant(REFRESH, SELLER);
    sim
}

async fn lwa(sim: &SimHandle, form: &[(&str, &str)]) -> Response {
    Client::new()
        .post(sim.lwa_token_url())
        .form(form)
        .send()
        .await
        .expect("lwa request")
}

async fn access_token(sim: &SimHandle, refresh: &str) -> String {
    let response = lwa(
        sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", "sim-client-id"),
            ("client_secret", "sim-client-secret"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

async fn get(sim: &SimHandle, token: &str, path: &str, query: &[(&str, &str)]) -> Response {
    Client::new()
        .get(format!("{}{path}", sim.base_url()))
        .header("x-amz-access-token", token)
        .query(query)
        .send()
        .await
        .expect("sp-api request")
}

fn an_hour_ago() -> String {
    (Utc::now() - TimeDelta::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn long_ago() -> String {
    (Utc::now() - TimeDelta::days(30))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

async fn error_of(response: Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("error body is json");
    let error = &body["errors"][0];
    (
        status,
        error["code"].as_str().unwrap_or_default().to_string(),
        format!(
            "{} {}",
            error["message"].as_str().unwrap_or_default(),
            error["details"].as_str().unwrap_or_default()
        ),
    )
}

#[tokio::test]
async fn lwa_success_invalid_grant_invalid_client_and_missing_parameter() {
    let sim = sim().await;
    let ok = lwa(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", REFRESH),
            ("client_id", "sim-client-id"),
            ("client_secret", "sim-client-secret"),
        ],
    )
    .await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert!(body["access_token"].as_str().unwrap().starts_with("Atza|"));
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["refresh_token"], REFRESH);

    // The Java SDK posts JSON.
    let json_ok = Client::new()
        .post(sim.lwa_token_url())
        .json(
            &serde_json::json!({"grant_type": "refresh_token", "refresh_token": REFRESH,
            "client_id": "sim-client-id", "client_secret": "sim-client-secret"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(json_ok.status(), 200);

    let bad_client = lwa(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", REFRESH),
            ("client_id", "sim-client-id"),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_eq!(bad_client.status(), 401);
    let body: Value = bad_client.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    sim.revoke(REFRESH);
    let revoked = lwa(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", REFRESH),
            ("client_id", "sim-client-id"),
            ("client_secret", "sim-client-secret"),
        ],
    )
    .await;
    assert_eq!(revoked.status(), 400);
    let body: Value = revoked.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "The request has an invalid grant parameter : refresh_token"
    );

    let missing = lwa(&sim, &[("grant_type", "refresh_token")]).await;
    assert_eq!(missing.status(), 400);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");

    let stats = sim.stats();
    assert_eq!(stats.lwa_requests, 5);
    assert_eq!(stats.lwa_failures, 3);
}

#[tokio::test]
async fn sp_api_rejects_missing_unknown_and_expired_tokens() {
    let sim = sim().await;
    let query = [
        ("MarketplaceIds", SEED_MARKETPLACE),
        ("CreatedAfter", "2026-01-01T00:00:00Z"),
    ];
    let missing = Client::new()
        .get(format!("{}/orders/v0/orders", sim.base_url()))
        .query(&query)
        .send()
        .await
        .unwrap();
    assert!(missing.headers().get("x-amzn-RequestId").is_some());
    assert!(missing.headers().get("x-amzn-RateLimit-Limit").is_none());
    let (status, code, text) = error_of(missing).await;
    assert_eq!((status, code.as_str()), (403, "Unauthorized"));
    assert!(text.contains("Access token is missing in the request header."));

    let (status, _, text) =
        error_of(get(&sim, "Atza|bogus", "/orders/v0/orders", &query).await).await;
    assert_eq!(status, 403);
    assert!(text.contains("revoked, malformed or invalid"));

    let token = access_token(&sim, REFRESH).await;
    assert_eq!(
        get(&sim, &token, "/orders/v0/orders", &query)
            .await
            .status(),
        200
    );
    sim.expire_access_tokens();
    let (status, _, text) = error_of(get(&sim, &token, "/orders/v0/orders", &query).await).await;
    assert_eq!(status, 403);
    assert!(text.contains("The access token you provided has expired."));
    // A fresh token works again.
    let fresh = access_token(&sim, REFRESH).await;
    assert_eq!(
        get(&sim, &fresh, "/orders/v0/orders", &query)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn get_orders_paginates_250_orders_with_awkward_tokens() {
    let sim = sim().await;
    let seeded = sim.seed_orders(
        SELLER,
        250,
        42,
        Utc::now() - TimeDelta::hours(1),
        TimeDelta::days(20),
    );
    let token = access_token(&sim, REFRESH).await;
    let after = long_ago();
    let filters = [
        ("MarketplaceIds", SEED_MARKETPLACE),
        ("LastUpdatedAfter", after.as_str()),
    ];

    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = filters.to_vec();
        if let Some(next) = &next {
            query.push(("NextToken", next.as_str()));
        }
        let response = get(&sim, &token, "/orders/v0/orders", &query).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-amzn-RateLimit-Limit"], "0.0167");
        assert!(response.headers().get("x-amzn-RequestId").is_some());
        let body: Value = response.json().await.unwrap();
        let payload = &body["payload"];
        assert!(payload["LastUpdatedBefore"].is_string());
        for order in payload["Orders"].as_array().unwrap() {
            seen.push(order["AmazonOrderId"].as_str().unwrap().to_string());
        }
        pages += 1;
        match payload["NextToken"].as_str() {
            Some(token) => {
                assert!(
                    token.contains('+') && token.contains('/') && token.contains('='),
                    "{token}"
                );
                next = Some(token.to_string());
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), 250);
    assert_eq!(unique.len(), 250);
    let expected: HashSet<String> = seeded.iter().map(|o| o.order_id.clone()).collect();
    assert_eq!(
        unique.into_iter().cloned().collect::<HashSet<_>>(),
        expected
    );

    // A client that does not percent-encode the token: `+` arrives as a space.
    let first: Value = get(&sim, &token, "/orders/v0/orders", &filters)
        .await
        .json()
        .await
        .unwrap();
    let raw_token = first["payload"]["NextToken"].as_str().unwrap();
    let url = format!(
        "{}/orders/v0/orders?MarketplaceIds={SEED_MARKETPLACE}&LastUpdatedAfter={after}&NextToken={raw_token}",
        sim.base_url()
    );
    let response = Client::new()
        .get(url)
        .header("x-amz-access-token", &token)
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("x-amzn-RateLimit-Limit").is_some());
    let (status, code, text) = error_of(response).await;
    assert_eq!((status, code.as_str()), (400, "InvalidInput"));
    assert!(
        text.contains("We could not decode your NextToken."),
        "{text}"
    );

    // The same token with other filters is refused.
    let other_after = an_hour_ago();
    let (status, _, text) = error_of(
        get(
            &sim,
            &token,
            "/orders/v0/orders",
            &[
                ("MarketplaceIds", SEED_MARKETPLACE),
                ("LastUpdatedAfter", other_after.as_str()),
                ("NextToken", raw_token),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("different request parameters"), "{text}");

    let recorded = sim.requests();
    assert_eq!(
        sim.stats().requests[&SimOp::GetOrdersV0],
        recorded.len() as u64
    );
    assert!(recorded.iter().all(|r| r.path == "/orders/v0/orders"));
    assert_eq!(recorded.last().unwrap().status, 400);
}

#[tokio::test]
async fn get_orders_validation_rules() {
    let sim = sim().await;
    let token = access_token(&sim, REFRESH).await;
    let recent = (Utc::now() - TimeDelta::seconds(60))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let after = long_ago();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("CreatedAfter", after.as_str())], "MarketplaceIds"),
        (vec![("MarketplaceIds", SEED_MARKETPLACE)], "CreatedAfter"),
        (
            vec![
                ("MarketplaceIds", SEED_MARKETPLACE),
                ("CreatedAfter", after.as_str()),
                ("LastUpdatedAfter", after.as_str()),
            ],
            "LastUpdatedAfter",
        ),
        (
            vec![
                ("MarketplaceIds", SEED_MARKETPLACE),
                ("CreatedAfter", after.as_str()),
                ("LastUpdatedBefore", after.as_str()),
            ],
            "LastUpdatedBefore",
        ),
        (
            vec![
                ("MarketplaceIds", SEED_MARKETPLACE),
                ("CreatedAfter", "yesterday"),
            ],
            "CreatedAfter",
        ),
        (
            vec![
                ("MarketplaceIds", SEED_MARKETPLACE),
                ("LastUpdatedAfter", after.as_str()),
                ("LastUpdatedBefore", recent.as_str()),
            ],
            "at least 2 minutes before current time",
        ),
        (
            vec![
                ("MarketplaceIds", SEED_MARKETPLACE),
                ("LastUpdatedAfter", after.as_str()),
                ("MaxResultsPerPage", "101"),
            ],
            "MaxResultsPerPage",
        ),
        (
            vec![
                ("MarketplaceIds", SEED_MARKETPLACE),
                ("LastUpdatedAfter", after.as_str()),
                ("NextToken", "garbage"),
            ],
            "We could not decode your NextToken",
        ),
    ];
    for (query, expected) in cases {
        let (status, code, text) =
            error_of(get(&sim, &token, "/orders/v0/orders", &query).await).await;
        assert_eq!((status, code.as_str()), (400, "InvalidInput"), "{query:?}");
        assert!(text.contains(expected), "{query:?}: {text}");
    }
    // Offsets are accepted (when encoded).
    let response = get(
        &sim,
        &token,
        "/orders/v0/orders",
        &[
            ("MarketplaceIds", SEED_MARKETPLACE),
            ("CreatedAfter", "2026-01-01T00:00:00+01:00"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn bucket_throttles_after_burst() {
    let sim = sim().await;
    sim.seed_orders(
        SELLER,
        1,
        1,
        Utc::now() - TimeDelta::hours(1),
        TimeDelta::hours(1),
    );
    let order_id = sim.orders(SELLER)[0].order_id.clone();
    sim.set_bucket(SimOp::GetOrder, 0.0001, 2);
    let token = access_token(&sim, REFRESH).await;
    let path = format!("/orders/2026-01-01/orders/{order_id}");
    for _ in 0..2 {
        let response = get(&sim, &token, &path, &[]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-amzn-RateLimit-Limit"], "0.0001");
    }
    let throttled = get(&sim, &token, &path, &[]).await;
    assert!(throttled.headers().get("x-amzn-RateLimit-Limit").is_none());
    let (status, code, _) = error_of(throttled).await;
    assert_eq!((status, code.as_str()), (429, "QuotaExceeded"));
    assert_eq!(sim.stats().throttled[&SimOp::GetOrder], 1);
    assert_eq!(sim.stats().requests[&SimOp::GetOrder], 3);

    // Buckets are per refresh token (app–seller pair): a second tenant of the same seller is fresh.
    sim.grant("Atzr|refresh-two", SELLER);
    let other = access_token(&sim, "Atzr|refresh-two").await;
    assert_eq!(get(&sim, &other, &path, &[]).await.status(), 200);
}

#[tokio::test]
async fn search_orders_inlines_items_and_paginates() {
    let sim = sim().await;
    let seeded = sim.seed_orders(
        SELLER,
        30,
        9,
        Utc::now() - TimeDelta::hours(1),
        TimeDelta::days(5),
    );
    let token = access_token(&sim, REFRESH).await;
    let after = long_ago();
    let mut seen = HashSet::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![
            ("createdAfter", after.as_str()),
            ("marketplaceIds", SEED_MARKETPLACE),
            ("maxResultsPerPage", "10"),
            ("includedData", "FULFILLMENT,PROCEEDS,BUYER"),
        ];
        if let Some(next) = &next {
            query.push(("paginationToken", next.as_str()));
        }
        let response = get(&sim, &token, "/orders/2026-01-01/orders", &query).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-amzn-RateLimit-Limit"], "0.0056");
        let body: Value = response.json().await.unwrap();
        assert!(body.get("payload").is_none());
        assert!(body["createdBefore"].is_string());
        for order in body["orders"].as_array().unwrap() {
            assert!(!order["orderItems"].as_array().unwrap().is_empty());
            assert!(order["fulfillment"]["fulfillmentStatus"].is_string());
            seen.insert(order["orderId"].as_str().unwrap().to_string());
        }
        pages += 1;
        match body.get("pagination") {
            Some(pagination) => next = Some(pagination["nextToken"].as_str().unwrap().to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), seeded.len());

    // A token sent with another filter is refused; another page size is fine.
    let first: Value = get(
        &sim,
        &token,
        "/orders/2026-01-01/orders",
        &[
            ("createdAfter", after.as_str()),
            ("maxResultsPerPage", "10"),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let page_token = first["pagination"]["nextToken"].as_str().unwrap();
    let resized = get(
        &sim,
        &token,
        "/orders/2026-01-01/orders",
        &[
            ("createdAfter", after.as_str()),
            ("maxResultsPerPage", "50"),
            ("paginationToken", page_token),
        ],
    )
    .await;
    assert_eq!(resized.status(), 200);
    let (status, _, text) = error_of(
        get(
            &sim,
            &token,
            "/orders/2026-01-01/orders",
            &[
                ("createdAfter", after.as_str()),
                ("fulfilledBy", "AMAZON"),
                ("paginationToken", page_token),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("paginationToken"), "{text}");

    let (status, _, text) = error_of(
        get(
            &sim,
            &token,
            "/orders/2026-01-01/orders",
            &[
                ("createdAfter", after.as_str()),
                ("includedData", "EVERYTHING"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("includedData"));
}

/// Both versions render the same order: totals and statuses must agree.
#[tokio::test]
async fn v0_and_v2026_agree_on_money() {
    let sim = sim().await;
    let seeded = sim.seed_orders(
        SELLER,
        40,
        5,
        Utc::now() - TimeDelta::hours(1),
        TimeDelta::days(5),
    );
    // This test is about content, not throttling: ~100 calls must not hit the documented bursts.
    sim.set_bucket(SimOp::GetOrderItemsV0, 1000.0, 1000);
    sim.set_bucket(SimOp::GetOrder, 1000.0, 1000);
    let token = access_token(&sim, REFRESH).await;
    let mut item_pages = 0;
    for order in &seeded {
        let v2026: Value = get(
            &sim,
            &token,
            &format!("/orders/2026-01-01/orders/{}", order.order_id),
            &[("includedData", "PROCEEDS,FULFILLMENT")],
        )
        .await
        .json()
        .await
        .unwrap();
        let v2026 = &v2026["order"];
        let mut v0_items = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let query: Vec<(&str, &str)> = next.iter().map(|t| ("NextToken", t.as_str())).collect();
            let body: Value = get(
                &sim,
                &token,
                &format!("/orders/v0/orders/{}/orderItems", order.order_id),
                &query,
            )
            .await
            .json()
            .await
            .unwrap();
            assert_eq!(body["payload"]["AmazonOrderId"], order.order_id.as_str());
            v0_items.extend(
                body["payload"]["OrderItems"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .cloned(),
            );
            match body["payload"]["NextToken"].as_str() {
                Some(token) => {
                    assert!(token.contains('+') && token.ends_with("=="), "{token}");
                    item_pages += 1;
                    next = Some(token.to_string());
                }
                None => break,
            }
        }
        let v2026_items = v2026["orderItems"].as_array().unwrap();
        assert_eq!(v0_items.len(), order.items.len());
        assert_eq!(v2026_items.len(), order.items.len());
        for (v0_item, new_item) in v0_items.iter().zip(v2026_items) {
            assert_eq!(v0_item["OrderItemId"], new_item["orderItemId"]);
            if order.status.is_pending() {
                assert!(v0_item.get("ItemPrice").is_none());
                assert!(new_item.get("proceeds").is_none());
                assert!(new_item["product"].get("price").is_none());
            } else {
                let item_breakdown = &new_item["proceeds"]["breakdowns"][0];
                assert_eq!(item_breakdown["type"], "ITEM");
                assert_eq!(
                    v0_item["ItemPrice"]["Amount"],
                    item_breakdown["subtotal"]["amount"]
                );
            }
        }
        match order.status {
            SimStatus::Pending | SimStatus::PendingAvailability | SimStatus::Canceled => {
                assert!(v2026.get("proceeds").is_none())
            }
            _ => assert_eq!(
                v2026["proceeds"]["grandTotal"]["amount"].as_str().unwrap(),
                format!("{:.2}", order.total().round_dp(2))
            ),
        }
    }
    assert!(
        item_pages > 0,
        "no order needed a second getOrderItems page"
    );
    let missing = get(
        &sim,
        &token,
        "/orders/v0/orders/999-0000000-0000000/orderItems",
        &[],
    )
    .await;
    assert!(missing.headers().get("x-amzn-RateLimit-Limit").is_some());
    let (status, code, _) = error_of(missing).await;
    assert_eq!((status, code.as_str()), (404, "NotFound"));
}

#[tokio::test]
async fn faults_truncate_html_status_and_hang() {
    let sim = sim().await;
    let token = access_token(&sim, REFRESH).await;
    let query = [
        ("MarketplaceIds", SEED_MARKETPLACE),
        ("CreatedAfter", "2026-01-01T00:00:00Z"),
    ];
    sim.push_fault(Fault {
        op: Some(SimOp::GetOrdersV0),
        kind: FaultKind::TruncatedBody,
        times: 1,
        skip: 0,
    });
    sim.push_fault(Fault {
        op: None,
        kind: FaultKind::HtmlStatus(502),
        times: 1,
        skip: 0,
    });
    sim.push_fault(Fault {
        op: Some(SimOp::SearchOrders),
        kind: FaultKind::Status(503),
        times: 2,
        skip: 0,
    });

    let truncated = get(&sim, &token, "/orders/v0/orders", &query).await;
    assert_eq!(truncated.status(), 200);
    let length = truncated.content_length();
    let bytes = truncated.bytes().await.expect("valid HTTP body");
    assert_eq!(length, Some(bytes.len() as u64));
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());

    let html = get(&sim, &token, "/orders/v0/orders", &query).await;
    assert_eq!(html.status(), 502);
    assert!(
        html.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(serde_json::from_slice::<Value>(&html.bytes().await.unwrap()).is_err());

    // The 503s only hit searchOrders; getOrders is back to normal.
    assert_eq!(
        get(&sim, &token, "/orders/v0/orders", &query)
            .await
            .status(),
        200
    );
    let search = [("createdAfter", "2026-01-01T00:00:00Z")];
    for _ in 0..2 {
        let (status, code, _) =
            error_of(get(&sim, &token, "/orders/2026-01-01/orders", &search).await).await;
        assert_eq!((status, code.as_str()), (503, "ServiceUnavailable"));
    }
    assert_eq!(
        get(&sim, &token, "/orders/2026-01-01/orders", &search)
            .await
            .status(),
        200
    );

    sim.push_fault(Fault {
        op: None,
        kind: FaultKind::Hang,
        times: 1,
        skip: 0,
    });
    let hung = Client::new()
        .get(format!("{}/orders/v0/orders", sim.base_url()))
        .header("x-amz-access-token", &token)
        .query(&query)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung.expect_err("must time out").is_timeout());

    sim.push_fault(Fault {
        op: None,
        kind: FaultKind::Status(500),
        times: 5,
        skip: 0,
    });
    sim.clear_faults();
    assert_eq!(
        get(&sim, &token, "/orders/v0/orders", &query)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn rate_scale_and_upserts_are_visible() {
    let sim = SimHandle::start(SimConfig {
        rate_scale: 10.0,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    sim.grant(REFRESH, SELLER);
    let mut order = sim
        .seed_orders(
            SELLER,
            1,
            3,
            Utc::now() - TimeDelta::hours(2),
            TimeDelta::hours(1),
        )
        .remove(0);
    order.status = SimStatus::Shipped;
    order.last_update_date =
        chrono::DateTime::from_timestamp((Utc::now() - TimeDelta::minutes(30)).timestamp(), 0)
            .unwrap();
    sim.upsert_order(SELLER, order.clone());
    assert_eq!(sim.orders(SELLER), vec![order.clone()]);
    let token = access_token(&sim, REFRESH).await;
    let after = an_hour_ago();
    let response = get(
        &sim,
        &token,
        "/orders/v0/orders",
        &[
            ("MarketplaceIds", SEED_MARKETPLACE),
            ("LastUpdatedAfter", after.as_str()),
            ("OrderStatuses", "Shipped"),
        ],
    )
    .await;
    assert_eq!(response.headers()["x-amzn-RateLimit-Limit"], "0.167");
    let body: Value = response.json().await.unwrap();
    let orders = body["payload"]["Orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["OrderStatus"], "Shipped");
    assert_eq!(orders[0]["AmazonOrderId"], order.order_id.as_str());
}
