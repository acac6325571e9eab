//! Helpers shared by the newer HTTP test files (reqwest against `SimHandle::start`).
#![allow(dead_code)] // Each test binary uses its own subset.

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::{Client, Response};
use serde_json::Value;
use spapi_sim::{SimConfig, SimHandle};

pub const SELLER: &str = "A1SELLER";
pub const REFRESH: &str = "Atzr|refresh-one";

pub async fn sim_with(config: SimConfig) -> SimHandle {
    let sim = SimHandle::start(config).await.expect("start sim");
    sim.grant(REFRESH, SELLER);
    sim
}

pub async fn lwa_body(sim: &SimHandle, refresh: &str) -> Value {
    let response = Client::new()
        .post(sim.lwa_token_url())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", "sim-client-id"),
            ("client_secret", "sim-client-secret"),
        ])
        .send()
        .await
        .expect("lwa request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

pub async fn access_token(sim: &SimHandle, refresh: &str) -> String {
    lwa_body(sim, refresh).await["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

pub async fn get(sim: &SimHandle, token: &str, path: &str, query: &[(&str, &str)]) -> Response {
    Client::new()
        .get(format!("{}{path}", sim.base_url()))
        .header("x-amz-access-token", token)
        .query(query)
        .send()
        .await
        .expect("sp-api request")
}

pub async fn get_json(sim: &SimHandle, token: &str, path: &str, query: &[(&str, &str)]) -> Value {
    let response = get(sim, token, path, query).await;
    assert_eq!(response.status(), 200, "{path} {query:?}");
    response.json().await.expect("json body")
}

pub async fn post_json(sim: &SimHandle, token: &str, path: &str, body: &Value) -> Response {
    Client::new()
        .post(format!("{}{path}", sim.base_url()))
        .header("x-amz-access-token", token)
        .json(body)
        .send()
        .await
        .expect("sp-api request")
}

/// (status, code, "message details") of an Amazon error answer.
pub async fn error_of(response: Response) -> (u16, String, String) {
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

pub fn iso(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn ago(delta: TimeDelta) -> String {
    iso(Utc::now() - delta)
}

/// Whole seconds, as `SimOrder` dates are.
pub fn whole(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).expect("in range")
}
