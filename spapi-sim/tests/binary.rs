//! The `spapi-sim` binary: prints exactly one "listening" line, then serves what its flags say.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use chrono::{TimeDelta, Utc};
use serde_json::Value;

/// Kills the child even when an assertion fails, so no stray server outlives the test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_prints_url_and_serves_grants_and_seeds() {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_spapi-sim"))
            .args([
                "--grant",
                "Atzr|demo=SELLER1",
                "--seed",
                "SELLER1=12",
                "--rate-scale",
                "100",
                "--report-generation-secs",
                "0.05",
                "--report-url-ttl-secs",
                "60",
                "--report-status-shipping",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn spapi-sim"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    let base_url = line
        .trim_end()
        .strip_prefix("spapi-sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(base_url.starts_with("http://127.0.0.1:"));

    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{base_url}/auth/o2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "Atzr|demo"),
            ("client_id", "sim-client-id"),
            ("client_secret", "sim-client-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap();
    let after = (Utc::now() - TimeDelta::days(30))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let response = client
        .get(format!("{base_url}/orders/2026-01-01/orders"))
        .header("x-amz-access-token", access)
        .query(&[("createdAfter", after.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-amzn-RateLimit-Limit"], "0.56");
    let body: Value = response.json().await.unwrap();
    // Orders created in the last 2 minutes are not visible yet; at most a couple can be that recent.
    let count = body["orders"].as_array().unwrap().len();
    assert!((10..=12).contains(&count), "{count}");

    // Reports are served too, with the configured generation time.
    let start = (Utc::now() - TimeDelta::days(25))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let created: Value = client
        .post(format!("{base_url}/reports/2021-06-30/reports"))
        .header("x-amz-access-token", access)
        .json(&serde_json::json!({
            "reportType": "GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
            "marketplaceIds": ["A13V1IB3VIYZZH"],
            "dataStartTime": start,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let report_id = created["reportId"].as_str().expect("reportId");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let report: Value = client
            .get(format!("{base_url}/reports/2021-06-30/reports/{report_id}"))
            .header("x-amz-access-token", access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if report["processingStatus"] == "DONE" {
            assert!(report["reportDocumentId"].is_string());
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{report}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
