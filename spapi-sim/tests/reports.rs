//! The Reports API over real HTTP: createReport → getReport until terminal → getReportDocument →
//! download from the presigned URL → gunzip → the XML holds exactly the window's orders, with the
//! item ids the Orders API serves. Plus the lifecycle controls, S3's refusals and the quotas.
//! The only sleeps are poll intervals while waiting past a generation time or URL lifetime the
//! test configured (well under a second), always bounded by a deadline.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use reqwest::{Client, Response};
use serde_json::{Value, json};
use spapi_sim::{
    Fault, FaultKind, ReportStatus, SEED_MARKETPLACE, SimConfig, SimHandle, SimOp, SimStatus,
};

const BY_UPDATE: &str = "GET_XML_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL";
const BY_ORDER_DATE: &str = "GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL";
const REPORTS: &str = "/reports/2021-06-30/reports";

/// A sim with fast report generation and getReport / getReportDocument unthrottled (tests poll).
async fn report_sim(generation: Duration) -> SimHandle {
    let sim = sim_with(SimConfig {
        report_generation: generation,
        ..SimConfig::default()
    })
    .await;
    sim.set_bucket(SimOp::GetReport, 1000.0, 1000);
    sim.set_bucket(SimOp::GetReportDocument, 1000.0, 1000);
    sim
}

fn spec(report_type: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Value {
    json!({
        "reportType": report_type,
        "marketplaceIds": [SEED_MARKETPLACE],
        "dataStartTime": iso(start),
        "dataEndTime": iso(end),
    })
}

async fn create(sim: &SimHandle, token: &str, body: &Value) -> String {
    let response = post_json(sim, token, REPORTS, body).await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["x-amzn-RateLimit-Limit"], "0.0167");
    let body: Value = response.json().await.unwrap();
    let id = body["reportId"].as_str().expect("reportId").to_string();
    assert!(
        id.len() == 11 && id.bytes().all(|b| b.is_ascii_digit()),
        "{id}"
    );
    id
}

async fn report(sim: &SimHandle, token: &str, id: &str) -> Value {
    get_json(sim, token, &format!("{REPORTS}/{id}"), &[]).await
}

/// Polls getReport until the report is DONE, CANCELLED or FATAL (at most 10 s).
async fn until_terminal(sim: &SimHandle, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = report(sim, token, id).await;
        if matches!(
            body["processingStatus"].as_str(),
            Some("DONE" | "CANCELLED" | "FATAL")
        ) {
            return body;
        }
        assert!(Instant::now() < deadline, "report {id} never ended: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn document_url(
    sim: &SimHandle,
    token: &str,
    document_id: &str,
    query: &[(&str, &str)],
) -> String {
    let body = get_json(
        sim,
        token,
        &format!("/reports/2021-06-30/documents/{document_id}"),
        query,
    )
    .await;
    assert_eq!(body["reportDocumentId"], document_id);
    assert_eq!(body["compressionAlgorithm"], "GZIP");
    body["url"].as_str().expect("url").to_string()
}

/// The URL fetched as an S3 client would: no SP-API headers.
async fn download(url: &str) -> Response {
    Client::new().get(url).send().await.expect("download")
}

fn gunzip(bytes: &[u8]) -> std::io::Result<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes).read_to_string(&mut text)?;
    Ok(text)
}

/// Inner texts of every `<tag>…</tag>` in `xml` (tags without attributes).
fn texts<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(open.as_str())
        .skip(1)
        .map(|rest| &rest[..rest.find(close.as_str()).expect("closed")])
        .collect()
}

/// Order id → item codes, from the report.
fn report_items(xml: &str) -> BTreeMap<String, Vec<String>> {
    texts(xml, "Order")
        .into_iter()
        .map(|order| {
            let id = texts(order, "AmazonOrderID")[0].to_string();
            let codes = texts(order, "AmazonOrderItemCode")
                .into_iter()
                .map(str::to_string)
                .collect();
            (id, codes)
        })
        .collect()
}

#[tokio::test]
async fn report_round_trip_matches_the_orders_api() {
    let sim = report_sim(Duration::from_millis(50)).await;
    let now0 = whole(Utc::now() - TimeDelta::hours(1));
    let seeded = sim.seed_orders(SELLER, 80, 21, now0, TimeDelta::days(12));
    let token = access_token(&sim, REFRESH).await;
    let (start, end) = (now0 - TimeDelta::days(6), now0 - TimeDelta::hours(12));
    let id = create(&sim, &token, &spec(BY_UPDATE, start, end)).await;

    let done = until_terminal(&sim, &token, &id).await;
    assert_eq!(done["processingStatus"], "DONE", "{done}");
    assert_eq!(done["reportType"], BY_UPDATE);
    assert_eq!(done["marketplaceIds"], json!([SEED_MARKETPLACE]));
    for field in ["createdTime", "processingStartTime", "processingEndTime"] {
        let at = done[field].as_str().unwrap();
        assert!(at.contains("+00:00"), "{field}: {at}");
    }
    assert_eq!(
        DateTime::parse_from_rfc3339(done["dataStartTime"].as_str().unwrap()).unwrap(),
        start
    );
    let document_id = done["reportDocumentId"].as_str().unwrap().to_string();

    let url = document_url(&sim, &token, &document_id, &[]).await;
    assert!(
        url.starts_with(&format!("{}/sim-s3/", sim.base_url())),
        "{url}"
    );
    let response = download(&url).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert!(response.headers().get("content-encoding").is_none());
    let length = response.content_length();
    let bytes = response.bytes().await.unwrap();
    assert_eq!(length, Some(bytes.len() as u64));
    let xml = gunzip(&bytes).expect("gzip");
    assert_eq!(
        sim.report_document_xml(&document_id).as_deref(),
        Some(xml.as_str())
    );
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AmazonEnvelope"));
    assert!(xml.contains("<MessageType>AllOrdersReport</MessageType>"));

    // Exactly the window's orders...
    let in_window: BTreeSet<String> = seeded
        .iter()
        .filter(|o| start <= o.last_update_date && o.last_update_date <= end)
        .map(|o| o.order_id.clone())
        .collect();
    assert!(in_window.len() > 10 && in_window.len() < seeded.len());
    let items = report_items(&xml);
    assert_eq!(items.keys().cloned().collect::<BTreeSet<_>>(), in_window);
    assert_eq!(sim.reports(SELLER)[0].order_count, in_window.len());

    // ...with the item ids searchOrders serves for the same window (none for pending orders).
    let api = get_json(
        &sim,
        &token,
        "/orders/2026-01-01/orders",
        &[
            ("lastUpdatedAfter", iso(start).as_str()),
            ("lastUpdatedBefore", iso(end).as_str()),
            ("includedData", "FULFILLMENT"),
        ],
    )
    .await;
    let api_orders = api["orders"].as_array().unwrap();
    assert_eq!(api_orders.len(), in_window.len());
    let mut pending = 0;
    for order in api_orders {
        let id = order["orderId"].as_str().unwrap();
        let api_ids: Vec<&str> = order["orderItems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["orderItemId"].as_str().unwrap())
            .collect();
        let status = order["fulfillment"]["fulfillmentStatus"].as_str().unwrap();
        if status.starts_with("PENDING") {
            pending += 1;
            assert!(items[id].is_empty(), "{id}");
        } else {
            assert_eq!(items[id], api_ids, "{id}");
        }
    }
    assert!(pending > 0, "no pending order in the window to check");

    // The same URL again, asking for Content-Encoding this time.
    let url = document_url(
        &sim,
        &token,
        &document_id,
        &[("enableContentEncodingUrlHeader", "true")],
    )
    .await;
    let response = download(&url).await;
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(gunzip(&response.bytes().await.unwrap()).unwrap(), xml);

    let stats = sim.stats();
    assert_eq!(stats.requests[&SimOp::CreateReport], 1);
    assert!(stats.requests[&SimOp::GetReport] >= 1);
    assert_eq!(stats.requests[&SimOp::GetReportDocument], 2);
    assert_eq!(stats.requests[&SimOp::DownloadDocument], 2);
    let downloads: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.op == SimOp::DownloadDocument)
        .collect();
    assert!(
        downloads
            .iter()
            .all(|r| r.status == 200 && r.path.starts_with("/sim-s3/"))
    );
}

#[tokio::test]
async fn order_date_reports_use_purchase_dates_and_ignore_marketplace_ids() {
    let sim = report_sim(Duration::from_millis(20)).await;
    let now0 = whole(Utc::now() - TimeDelta::hours(1));
    let seeded = sim.seed_orders(SELLER, 40, 5, now0, TimeDelta::days(8));
    // An order on another marketplace comes back too, like Amazon's region-wide reports.
    let mut german = seeded[0].clone();
    german.order_id = "303-0000000-0000001".into();
    german.marketplace_id = "A1PA6795UKMFR9".into();
    german.purchase_date = now0 - TimeDelta::days(1);
    german.last_update_date = now0 - TimeDelta::days(1);
    sim.upsert_order(SELLER, german);
    let token = access_token(&sim, REFRESH).await;
    let (start, end) = (now0 - TimeDelta::days(4), now0);
    let id = create(&sim, &token, &spec(BY_ORDER_DATE, start, end)).await;
    let done = until_terminal(&sim, &token, &id).await;
    let xml = sim
        .report_document_xml(done["reportDocumentId"].as_str().unwrap())
        .unwrap();
    let expected: BTreeSet<String> = seeded
        .iter()
        .filter(|o| start <= o.purchase_date && o.purchase_date <= end)
        .map(|o| o.order_id.clone())
        .chain(["303-0000000-0000001".to_string()])
        .collect();
    assert_eq!(
        report_items(&xml).keys().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    assert!(xml.contains("<SalesChannel>Amazon.de</SalesChannel>"));
}

#[tokio::test]
async fn empty_window_is_cancelled_and_fatal_can_be_injected() {
    let sim = report_sim(Duration::from_millis(20)).await;
    let now0 = whole(Utc::now() - TimeDelta::hours(1));
    sim.seed_orders(SELLER, 10, 8, now0, TimeDelta::days(2));
    let token = access_token(&sim, REFRESH).await;
    let empty = spec(
        BY_UPDATE,
        now0 - TimeDelta::days(20),
        now0 - TimeDelta::days(10),
    );
    let id = create(&sim, &token, &empty).await;
    let cancelled = until_terminal(&sim, &token, &id).await;
    assert_eq!(cancelled["processingStatus"], "CANCELLED");
    assert!(cancelled.get("reportDocumentId").is_none());
    assert!(cancelled["processingEndTime"].is_string());

    sim.fail_reports(1);
    let full = spec(BY_UPDATE, now0 - TimeDelta::days(5), now0);
    let failed = create(&sim, &token, &full).await;
    let after = create(&sim, &token, &full).await;
    let fatal = until_terminal(&sim, &token, &failed).await;
    assert_eq!(fatal["processingStatus"], "FATAL");
    assert!(fatal.get("reportDocumentId").is_none());
    let done = until_terminal(&sim, &token, &after).await;
    assert_eq!(done["processingStatus"], "DONE");
    let statuses: Vec<ReportStatus> = sim.reports(SELLER).iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            ReportStatus::Cancelled,
            ReportStatus::Fatal,
            ReportStatus::Done
        ]
    );
}

#[tokio::test]
async fn reports_of_a_seller_are_processed_one_at_a_time() {
    // Long enough that nothing finishes before the test lets it (set_report_generation below).
    let sim = report_sim(Duration::from_secs(600)).await;
    let now0 = whole(Utc::now() - TimeDelta::hours(1));
    sim.seed_orders(SELLER, 10, 8, now0, TimeDelta::days(2));
    let token = access_token(&sim, REFRESH).await;
    let body = spec(BY_UPDATE, now0 - TimeDelta::days(5), now0);
    let first = create(&sim, &token, &body).await;
    let second = create(&sim, &token, &body).await;
    assert_ne!(first, second);
    // Another seller's queue is independent: its report starts at once.
    sim.grant("Atzr|other", "A2OTHER");
    let other = access_token(&sim, "Atzr|other").await;
    let third = create(&sim, &other, &body).await;
    assert_eq!(
        report(&sim, &token, &first).await["processingStatus"],
        "IN_PROGRESS"
    );
    let waiting = report(&sim, &token, &second).await;
    assert_eq!(waiting["processingStatus"], "IN_QUEUE");
    assert!(waiting.get("processingStartTime").is_none());
    assert_eq!(
        report(&sim, &other, &third).await["processingStatus"],
        "IN_PROGRESS"
    );
    assert_eq!(
        report(&sim, &token, &second).await["processingStatus"],
        "IN_QUEUE"
    );

    sim.set_report_generation(Duration::from_millis(30));
    let second_done = until_terminal(&sim, &token, &second).await;
    let first_done = report(&sim, &token, &first).await;
    assert_eq!(first_done["processingStatus"], "DONE");
    let at = |report: &Value, field: &str| {
        DateTime::parse_from_rfc3339(report[field].as_str().unwrap()).unwrap()
    };
    assert!(at(&second_done, "processingStartTime") >= at(&first_done, "processingEndTime"));
}

#[tokio::test]
async fn a_stalled_queue_keeps_reports_in_queue_until_released() {
    let sim = report_sim(Duration::from_millis(20)).await;
    let now0 = whole(Utc::now() - TimeDelta::hours(1));
    sim.seed_orders(SELLER, 10, 8, now0, TimeDelta::days(2));
    let token = access_token(&sim, REFRESH).await;
    sim.stall_reports(true);
    let id = create(
        &sim,
        &token,
        &spec(BY_UPDATE, now0 - TimeDelta::days(5), now0),
    )
    .await;
    // Ten generation times later, still waiting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        report(&sim, &token, &id).await["processingStatus"],
        "IN_QUEUE"
    );
    assert_eq!(sim.reports(SELLER)[0].status, ReportStatus::InQueue);
    sim.stall_reports(false);
    let done = until_terminal(&sim, &token, &id).await;
    assert_eq!(done["processingStatus"], "DONE");
}

#[tokio::test]
async fn document_urls_behave_like_presigned_s3_urls() {
    let sim = report_sim(Duration::from_millis(20)).await;
    let now0 = whole(Utc::now() - TimeDelta::hours(1));
    sim.seed_orders(SELLER, 10, 8, now0, TimeDelta::days(2));
    let token = access_token(&sim, REFRESH).await;
    let id = create(
        &sim,
        &token,
        &spec(BY_UPDATE, now0 - TimeDelta::days(5), now0),
    )
    .await;
    let done = until_terminal(&sim, &token, &id).await;
    let document_id = done["reportDocumentId"].as_str().unwrap().to_string();
    let url = document_url(&sim, &token, &document_id, &[]).await;
    assert!(url.contains("X-Amz-Expires=300&"), "{url}");

    // SP-API headers are refused.
    let with_token = Client::new()
        .get(&url)
        .header("x-amz-access-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 403);
    assert_eq!(with_token.headers()["content-type"], "application/xml");
    let text = with_token.text().await.unwrap();
    assert!(text.contains("<Code>AccessDenied</Code>"), "{text}");
    assert!(
        text.contains("<HeadersNotSigned>x-amz-access-token</HeadersNotSigned>"),
        "{text}"
    );
    let with_authorization = Client::new()
        .get(&url)
        .header("Authorization", "Bearer x")
        .send()
        .await
        .unwrap();
    assert_eq!(with_authorization.status(), 400);
    assert!(
        with_authorization
            .text()
            .await
            .unwrap()
            .contains("<Code>InvalidArgument</Code>")
    );
    let tampered = download(&url.replace("X-Amz-Signature=", "X-Amz-Signature=0")).await;
    assert_eq!(tampered.status(), 403);
    assert!(
        tampered
            .text()
            .await
            .unwrap()
            .contains("SignatureDoesNotMatch")
    );

    // Faults aimed at the download, with S3-style bodies.
    for kind in [FaultKind::Status(503), FaultKind::TruncatedBody] {
        sim.push_fault(Fault {
            op: Some(SimOp::DownloadDocument),
            kind,
            times: 1,
            skip: 0,
        });
    }
    let slow = download(&url).await;
    assert_eq!(slow.status(), 503);
    assert!(slow.text().await.unwrap().contains("<Code>SlowDown</Code>"));
    let truncated = download(&url).await;
    assert_eq!(truncated.status(), 200);
    assert!(gunzip(&truncated.bytes().await.unwrap()).is_err());
    assert_eq!(download(&url).await.status(), 200);

    // Expiry: a short lifetime, then past it.
    sim.set_report_url_ttl(Duration::from_millis(500));
    let short = document_url(&sim, &token, &document_id, &[]).await;
    assert_eq!(download(&short).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let expired = download(&short).await;
    assert_eq!(expired.status(), 403);
    let text = expired.text().await.unwrap();
    assert!(
        text.contains("<Code>AccessDenied</Code><Message>Request has expired</Message>"),
        "{text}"
    );
}

#[tokio::test]
async fn create_report_validation_and_another_sellers_reports() {
    let sim = report_sim(Duration::from_millis(20)).await;
    let now0 = whole(Utc::now() - TimeDelta::hours(1));
    sim.seed_orders(SELLER, 10, 8, now0, TimeDelta::days(2));
    let token = access_token(&sim, REFRESH).await;
    let cases = [
        (
            spec(BY_UPDATE, now0 - TimeDelta::days(31), now0),
            "upto 30 days",
        ),
        (
            spec(BY_UPDATE, now0, now0 - TimeDelta::days(1)),
            "dataEndTime",
        ),
        (
            spec("GET_FLAT_FILE_ORDERS_DATA", now0 - TimeDelta::days(1), now0),
            "reportType",
        ),
        (json!({"reportType": BY_UPDATE}), "marketplaceIds"),
    ];
    for (body, expected) in cases {
        let response = post_json(&sim, &token, REPORTS, &body).await;
        assert!(response.headers().get("x-amzn-RateLimit-Limit").is_some());
        let (status, code, text) = error_of(response).await;
        assert_eq!((status, code.as_str()), (400, "InvalidInput"), "{body}");
        assert!(text.contains(expected), "{body}: {text}");
    }

    let id = create(
        &sim,
        &token,
        &spec(BY_UPDATE, now0 - TimeDelta::days(5), now0),
    )
    .await;
    let done = until_terminal(&sim, &token, &id).await;
    let document_id = done["reportDocumentId"].as_str().unwrap();
    sim.grant("Atzr|other", "A2OTHER");
    let other = access_token(&sim, "Atzr|other").await;
    let (status, code, _) =
        error_of(get(&sim, &other, &format!("{REPORTS}/{id}"), &[]).await).await;
    assert_eq!((status, code.as_str()), (404, "NotFound"));
    let (status, _, _) = error_of(
        get(
            &sim,
            &other,
            &format!("/reports/2021-06-30/documents/{document_id}"),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) =
        error_of(get(&sim, &token, &format!("{REPORTS}/12345678901"), &[]).await).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn create_report_quotas_bucket_and_hidden_per_type() {
    let sim = report_sim(Duration::from_millis(20)).await;
    let now0 = whole(Utc::now() - TimeDelta::hours(1));
    let token = access_token(&sim, REFRESH).await;
    let body = spec(BY_UPDATE, now0 - TimeDelta::days(2), now0);

    // Hidden quota: 429 with usage-plan tokens left.
    sim.set_report_type_quota(BY_UPDATE, 1);
    create(&sim, &token, &body).await;
    let refused = post_json(&sim, &token, REPORTS, &body).await;
    assert!(refused.headers().get("x-amzn-RateLimit-Limit").is_none());
    let (status, code, _) = error_of(refused).await;
    assert_eq!((status, code.as_str()), (429, "QuotaExceeded"));
    let other_type = spec(BY_ORDER_DATE, now0 - TimeDelta::days(2), now0);
    create(&sim, &token, &other_type).await;
    assert_eq!(sim.stats().throttled[&SimOp::CreateReport], 1);

    // The usage plan: burst 15 (two tokens above and the refused one are spent already).
    sim.set_report_type_quota(BY_UPDATE, u32::MAX);
    for _ in 0..12 {
        create(&sim, &token, &body).await;
    }
    let (status, code, _) = error_of(post_json(&sim, &token, REPORTS, &body).await).await;
    assert_eq!((status, code.as_str()), (429, "QuotaExceeded"));
    assert_eq!(sim.stats().throttled[&SimOp::CreateReport], 2);
    assert_eq!(sim.reports(SELLER).len(), 14);
}

#[tokio::test]
async fn reports_see_orders_as_indexed_when_generated_and_can_say_shipping() {
    let sim = report_sim(Duration::from_millis(20)).await;
    let now0 = whole(Utc::now() - TimeDelta::hours(1));
    let mut order = sim
        .seed_orders(SELLER, 1, 4, now0, TimeDelta::hours(1))
        .remove(0);
    order.status = SimStatus::Unshipped;
    for item in &mut order.items {
        item.quantity_shipped = 0;
    }
    order.last_update_date = now0 - TimeDelta::hours(3);
    sim.upsert_order(SELLER, order.clone());
    let mut shipped = order.clone();
    shipped.status = SimStatus::Shipped;
    for item in &mut shipped.items {
        item.quantity_shipped = item.quantity_ordered;
    }
    shipped.last_update_date = now0 - TimeDelta::hours(2);
    sim.upsert_order_indexed_late(SELLER, shipped, Duration::from_secs(3600));
    sim.set_report_status_shipping(true);
    let token = access_token(&sim, REFRESH).await;
    let id = create(
        &sim,
        &token,
        &spec(BY_UPDATE, now0 - TimeDelta::days(1), now0),
    )
    .await;
    let done = until_terminal(&sim, &token, &id).await;
    let xml = sim
        .report_document_xml(done["reportDocumentId"].as_str().unwrap())
        .unwrap();
    // The late-indexed Shipped version is not in the report yet; the Unshipped one is, as Shipping.
    assert_eq!(texts(&xml, "OrderStatus"), ["Shipping"]);
    assert!(texts(&xml, "ItemStatus").iter().all(|s| *s == "Unshipped"));
    let expected = order
        .last_update_date
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string();
    assert_eq!(texts(&xml, "LastUpdatedDate"), [expected.as_str()]);
}

#[tokio::test]
async fn a_stalled_download_sends_its_first_bytes_then_nothing() {
    let sim = report_sim(Duration::from_millis(1)).await;
    let now0 = whole(Utc::now() - TimeDelta::hours(1));
    sim.seed_orders(SELLER, 40, 9, now0, TimeDelta::days(2));
    let token = access_token(&sim, REFRESH).await;
    let id = create(
        &sim,
        &token,
        &spec(BY_UPDATE, now0 - TimeDelta::days(3), now0),
    )
    .await;
    let done = until_terminal(&sim, &token, &id).await;
    let document = done["reportDocumentId"].as_str().unwrap().to_string();
    let url = document_url(&sim, &token, &document, &[]).await;
    sim.push_fault(Fault {
        op: Some(SimOp::DownloadDocument),
        kind: FaultKind::StallAfter(100),
        times: 1,
        skip: 0,
    });
    let mut response = download(&url).await;
    assert_eq!(response.status(), 200);
    let full = response.content_length().unwrap();
    assert!(full > 100);
    let mut received = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(300), response.chunk()).await {
            Ok(Ok(Some(chunk))) => received.extend_from_slice(&chunk),
            Ok(other) => panic!("the body ended: {other:?}"),
            Err(_) => break,
        }
    }
    assert_eq!(received.len(), 100, "the first 100 bytes, then silence");
    // The fault is used up: the next download is whole.
    let whole_body = download(&url).await.bytes().await.unwrap();
    assert_eq!(whole_body.len() as u64, full);
    assert_eq!(&whole_body[..100], &received[..]);
}
