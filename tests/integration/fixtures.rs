//! Every example and sandbox response in Amazon's own models goes through our parsers.

use keybuzz_sync::Error;
use keybuzz_sync::model::OrderStatus;
use keybuzz_sync::spapi::{Operation, error_from_body};
use keybuzz_sync::sync::{v0, v2026};
use rust_decimal::Decimal;
use serde_json::Value;

fn model(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture readable"))
        .expect("fixture is JSON")
}

/// (status code, response body) of every example and static sandbox case of one operation.
fn responses(model: &Value, path: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let responses = model["paths"][path]["get"]["responses"]
        .as_object()
        .expect("operation exists");
    for (code, response) in responses {
        if let Some(example) = response.pointer("/examples/application~1json") {
            out.push((code.clone(), example.clone()));
        }
        if let Some(cases) = response
            .pointer("/x-amzn-api-sandbox/static")
            .and_then(Value::as_array)
        {
            for case in cases {
                out.push((code.clone(), case["response"].clone()));
            }
        }
    }
    out
}

fn assert_error_shape(op: Operation, code: &str, body: &Value) {
    let error = error_from_body(op, code.parse().unwrap(), body.to_string().as_bytes());
    match error {
        Error::Api {
            code: c, status, ..
        } => {
            assert_eq!(c, "InvalidInput", "{body}");
            assert_eq!(status.to_string(), code);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn v0_get_orders_examples_and_sandbox_parse() {
    let m = model("ordersV0.json");
    let cases = responses(&m, "/orders/v0/orders");
    assert!(cases.len() >= 5, "{}", cases.len());
    let mut orders = 0;
    for (code, body) in cases {
        if code == "200" {
            for raw in body["payload"]["Orders"].as_array().expect("Orders") {
                let order = v0::order_record(raw.clone()).unwrap_or_else(|e| panic!("{e}: {raw}"));
                assert!(!order.external_order_id.is_empty());
                assert_eq!(&order.raw, raw, "raw is kept exactly");
                orders += 1;
            }
        } else {
            assert_error_shape(Operation::GetOrdersV0, &code, &body);
        }
    }
    assert!(orders >= 4);
}

#[test]
fn v0_get_order_examples_parse_as_orders() {
    let m = model("ordersV0.json");
    for (code, body) in responses(&m, "/orders/v0/orders/{orderId}") {
        if code == "200" {
            let raw = &body["payload"];
            let order = v0::order_record(raw.clone()).unwrap();
            assert_eq!(
                Some(order.status),
                OrderStatus::from_v0(raw["OrderStatus"].as_str().unwrap())
            );
            assert_eq!(
                order.external_order_id,
                raw["AmazonOrderId"].as_str().unwrap()
            );
        } else {
            assert_error_shape(Operation::GetOrdersV0, &code, &body);
        }
    }
}

#[test]
fn v0_get_order_items_examples_parse_with_exact_amounts() {
    let m = model("ordersV0.json");
    let mut seen_sandbox_item = false;
    for (code, body) in responses(&m, "/orders/v0/orders/{orderId}/orderItems") {
        if code != "200" {
            assert_error_shape(Operation::GetOrderItemsV0, &code, &body);
            continue;
        }
        let order_id = body["payload"]["AmazonOrderId"].as_str().unwrap();
        for raw in body["payload"]["OrderItems"].as_array().unwrap() {
            let item =
                v0::item_record(order_id, raw.clone()).unwrap_or_else(|e| panic!("{e}: {raw}"));
            if item.order_item_id == "05015851154158" {
                seen_sandbox_item = true;
                assert_eq!(item.asin.as_deref(), Some("B00551Q3CS"));
                assert_eq!(item.item_price_amount, Some(Decimal::new(1000, 2)));
                assert_eq!(item.item_tax_amount, Some(Decimal::new(101, 2)));
                assert_eq!(item.currency.as_deref(), Some("USD"));
            }
        }
    }
    assert!(
        seen_sandbox_item,
        "the sandbox item of FACTS.md §5 was checked"
    );
}

#[test]
fn v2026_search_orders_examples_and_sandbox_parse_with_items() {
    let m = model("orders_2026-01-01.json");
    let mut orders = 0;
    for (code, body) in responses(&m, "/orders/2026-01-01/orders") {
        if code != "200" {
            assert_error_shape(Operation::SearchOrders, &code, &body);
            continue;
        }
        for raw in body["orders"].as_array().unwrap() {
            let (order, items) = v2026::order_with_items(Operation::SearchOrders, raw.clone())
                .unwrap_or_else(|e| panic!("{e}: {raw}"));
            assert_eq!(items.len(), raw["orderItems"].as_array().unwrap().len());
            assert_eq!(&order.raw, raw);
            orders += 1;
        }
    }
    assert!(orders >= 4);
}

#[test]
fn v2026_get_order_example_maps_tax_and_shipping_as_documented() {
    let m = model("orders_2026-01-01.json");
    let cases = responses(&m, "/orders/2026-01-01/orders/{orderId}");
    for (code, body) in &cases {
        if code != "200" {
            assert_error_shape(Operation::GetOrder, code, body);
            continue;
        }
        v2026::order_with_items(Operation::GetOrder, body["order"].clone()).unwrap();
    }
    // The documented example: ITEM 89.97, SHIPPING 10.00, TAX 4.00 = 3.00 on the item + 1.00 on
    // shipping; the item tax column takes the ITEM part only.
    let example = m.pointer("/paths/~1orders~12026-01-01~1orders~1{orderId}/get/responses/200/examples/application~1json/order").unwrap();
    let (order, items) = v2026::order_with_items(Operation::GetOrder, example.clone()).unwrap();
    assert_eq!(order.order_total_amount, Some("103.97".parse().unwrap()));
    assert_eq!(order.order_total_currency.as_deref(), Some("GBP"));
    let item = &items[0];
    assert_eq!(item.item_price_amount, Some("89.97".parse().unwrap()));
    assert_eq!(item.item_tax_amount, Some("3.00".parse().unwrap()));
    assert_eq!(item.shipping_price_amount, Some("10.00".parse().unwrap()));
    assert_eq!(item.promotion_discount_amount, Some(Decimal::ZERO));
    assert_eq!(item.quantity_shipped, Some(3));
}

#[test]
fn malformed_amounts_and_dates_are_named_errors() {
    let bad_amount = serde_json::json!({
        "AmazonOrderId": "902-1", "PurchaseDate": "2026-01-01T00:00:00Z",
        "LastUpdateDate": "2026-01-01T00:00:00Z", "OrderStatus": "Shipped",
        "OrderTotal": {"CurrencyCode": "EUR", "Amount": "12,50"}
    });
    let e = v0::order_record(bad_amount).unwrap_err().to_string();
    assert!(e.contains("902-1"), "{e}");
    let bad_date = serde_json::json!({
        "AmazonOrderId": "902-2", "PurchaseDate": "yesterday",
        "LastUpdateDate": "2026-01-01T00:00:00Z", "OrderStatus": "Shipped"
    });
    let e = v0::order_record(bad_date).unwrap_err().to_string();
    assert!(e.contains("902-2"), "{e}");
    let bad_status = serde_json::json!({
        "AmazonOrderId": "902-3", "PurchaseDate": "2026-01-01T00:00:00Z",
        "LastUpdateDate": "2026-01-01T00:00:00Z", "OrderStatus": "Lost"
    });
    let e = v0::order_record(bad_status).unwrap_err().to_string();
    assert!(e.contains("Lost"), "{e}");
}

/// Every response body of every operation in both models: the ones the sync reads go through
/// their mapping above; here every error body must read as Amazon's error list, and every
/// success body of the operations we do not call must at least be the documented envelope.
#[test]
fn every_response_in_both_models_is_understood() {
    let mut checked = 0;
    for (file, envelope) in [
        ("ordersV0.json", Some("payload")),
        ("orders_2026-01-01.json", None),
    ] {
        let m = model(file);
        for (path, item) in m["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let Some(responses) = op.get("responses").and_then(Value::as_object) else {
                    continue;
                };
                for (code, response) in responses {
                    let mut bodies = Vec::new();
                    if let Some(example) = response.pointer("/examples/application~1json") {
                        bodies.push(example.clone());
                    }
                    for key in ["static", "dynamic"] {
                        let pointer = format!("/x-amzn-api-sandbox/{key}");
                        for case in response
                            .pointer(&pointer)
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            if let Some(body) = case.get("response") {
                                bodies.push(body.clone());
                            }
                        }
                    }
                    for body in bodies {
                        let what = format!("{file} {method} {path} {code}");
                        let status: u16 = code.parse().unwrap();
                        if status >= 400 {
                            let e = error_from_body(
                                Operation::GetOrdersV0,
                                status,
                                body.to_string().as_bytes(),
                            );
                            // Amazon's own sandbox has a bare `{}` for some 400s: still an
                            // error with its status, only without a code.
                            let listed = body.get("errors").is_some();
                            assert!(
                                matches!(&e, Error::Api { code, status: s, .. }
                                    if *s == status && (code != "-") == listed),
                                "{what}: {e}"
                            );
                        } else if status == 200 {
                            match envelope {
                                Some(key) => assert!(
                                    body.get(key).is_some() || body.get("errors").is_some(),
                                    "{what}"
                                ),
                                None => assert!(body.is_object(), "{what}"),
                            }
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked >= 40, "{checked}");
}
